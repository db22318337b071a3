"""Text queries whose conditions are conditions: the rule parser on held-out phrasings, exact
filtering (no result breaks a stated cut), nearest misses when nothing passes, and the same parser
behind the search tool, the registry and the app's Search tab."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jetfm.backbone.data.schema import PROCESSES
from jetfm.retrieval.align import TextSearch
from jetfm.retrieval.captions import prong_count
from jetfm.retrieval.constraints import parse_query, prong_cuts
from jetfm.retrieval.index import JetFilter, JetIndex
from jetfm.retrieval.query import run_query

# Written apart from the parser's own examples (module docstring, the developer's checks): other
# words, symbols, units, number words and orders.
PHRASINGS = [json.loads(line) for line in (Path(__file__).parent / "data" / "constraint_phrasings.jsonl")
             .read_text().splitlines() if line.strip()]
COLUMN = {"abs_eta": "eta"}


def expected_windows(spec: dict) -> dict[str, tuple[float, float]]:
    """The closed windows a hand-written spec means (strict bounds one float inwards)."""
    out: dict[str, tuple[float, float]] = {}

    def narrow(observable: str, lo: float, hi: float) -> None:
        old = out.get(observable, (-math.inf, math.inf))
        out[observable] = (max(old[0], lo), min(old[1], hi))

    for observable, conditions in spec.items():
        if observable == "prongs":
            for cut in prong_cuts(conditions, ""):
                narrow(cut.observable, *cut.window())
            continue
        for op, *values in conditions:
            value = float(values[0])
            lo, hi = {
                "lt": (-math.inf, math.nextafter(value, -math.inf)), "le": (-math.inf, value),
                "gt": (math.nextafter(value, math.inf), math.inf), "ge": (value, math.inf),
                "range": (value, float(values[-1])),
            }[op]
            narrow(observable, lo, hi)
    return out


@pytest.mark.parametrize("case", PHRASINGS, ids=[c["text"][:40] for c in PHRASINGS])
def test_parser_reads_held_out_phrasings(case):
    parsed = parse_query(case["text"])
    got = parsed.windows()
    want = expected_windows(case["cuts"])
    assert got.keys() == want.keys(), parsed.describe()
    for observable, window in want.items():  # exactly: strict and non-strict bounds differ by one float
        assert got[observable] == window, (observable, parsed.describe())
    assert parsed.classes == (None if case["classes"] is None else tuple(case["classes"])), parsed.describe()


def test_parser_says_what_it_assumed():
    parsed = parse_query("jets near 91 GeV in mass, and a 125 GeV scalar above 600 GeV")
    lines = parsed.describe()
    assert "81 <= mass <= 101 GeV" in lines[0] and "+/- 10 GeV" in lines[0]
    assert lines[1].startswith("pT > 600 GeV") and "GeV taken as pT" in lines[1]
    assert parsed.ignored == ("125",)
    assert parse_query("mass near 91 GeV, above 80 GeV").windows()["mass"][0] > 80  # the comma continues
    assert "unit" not in " ".join(parse_query("tau21 below 0.3").describe())
    unplaced = parse_query("jets with 0.4 or less")
    assert not unplaced.cuts and "not applied" in unplaced.notes[0]


@pytest.mark.parametrize(("text", "classes"), [
    ("H -> c c-bar jets", ("hcc",)),  # a decay arrow with spaces, as people type it
    ("H -> WW* -> 4q candidates", ("h4q",)),
    ("jets from a top quark", ("top",)),  # "from" that opens no "from X to Y" range leaves the class alone
    ("anything from t->b l nu decays", ("tbl",)),
    ("Higgs to bb", ("hbb",)),
    ("Higgs to b b-bar jets", ("hbb",)),  # every spelling of one decay: parent names, bars, spaces
    ("h->bbbar", ("hbb",)),
    ("W -> q q-bar' jets", ("wqq",)),
    ("Z->qqbar", ("zqq",)),
    ("H → c c̄", ("hcc",)),  # an arrow sign and a combining overline
    ("very light jets", None),  # light in mass, not light flavour
    ("a pair of light subjets", None),
    ("light jets", ("qcd",)),  # light flavour: the b-tagging convention
])
def test_parser_reads_class_words_in_their_sense(text, classes):
    assert parse_query(text).classes == classes, parse_query(text).describe()


@pytest.mark.parametrize(("text", "observable", "window"), [
    ("soft-drop to jet mass ratio below 0.5", "sd_over_mass", (-math.inf, math.nextafter(0.5, -math.inf))),
    ("groomed mass fraction of at least 0.9", "sd_over_mass", (0.9, math.inf)),
    ("m_SD/m < 0.4", "sd_over_mass", (-math.inf, math.nextafter(0.4, -math.inf))),
    ("mass-to-pT ratio exceeding 0.25", "mass_over_pt", (math.nextafter(0.25, math.inf), math.inf)),
    ("ratio of the jet mass to its transverse momentum between 0.1 and 0.2", "mass_over_pt", (0.1, 0.2)),
])
def test_ratios_are_observables_not_masses(text, observable, window):
    assert parse_query(text).windows() == {observable: window}, parse_query(text).describe()


def test_ratio_filters_compute_the_ratio():
    metadata = pd.DataFrame({"mass": [100.0, 100.0, 0.0], "sdmass": [30.0, 95.0, 0.0], "pt": [600.0, 300.0, 600.0]})
    groomed_away = parse_query("soft-drop mass / mass below 0.5").filter()
    assert groomed_away.mask(metadata).tolist() == [True, False, False]  # 0/0 is unknown and never passes
    wide = parse_query("m/pT above 0.3").filter()
    assert wide.mask(metadata).tolist() == [False, True, False]


def test_constituent_particles_are_the_constituent_count():
    assert parse_query("H->gg jets having more than 60 constituent particles").windows() == {
        "nparticles": (math.nextafter(60.0, math.inf), math.inf)}


def test_a_particles_mass_is_compared_with_the_jets_mass():
    assert parse_query("jets near the Z mass").windows() == {"mass": (pytest.approx(81.2), pytest.approx(101.2))}
    assert parse_query("between the W and the top mass").windows() == {"mass": (80.4, 173.0)}
    assert parse_query("pT around the top mass").windows().keys() == {"pt"}  # a named observable wins


@pytest.mark.parametrize(("text", "window"), [
    ("boosted W's at roughly 82 GeV", {"mass": (72.0, 92.0)}),
    ("H->cc candidates from 110 to 140 GeV", {"mass": (110.0, 140.0)}),
    ("hadronic top jets above 450 GeV", {"pt": (math.nextafter(450.0, math.inf), math.inf)}),  # far from 173: pT
    ("QCD jets near 90 GeV", {"pt": (70.0, 110.0)}),  # QCD has no mass of its own
])
def test_gev_without_an_observable_near_a_named_class_mass_is_the_jet_mass(text, window):
    parsed = parse_query(text)
    assert parsed.windows() == {k: (pytest.approx(lo), pytest.approx(hi)) for k, (lo, hi) in window.items()}
    assert any(("mass" if "mass" in window else "pT") in note for cut in parsed.cuts for note in [cut.describe()])


@pytest.mark.parametrize(("text", "typed", "meant", "window"), [
    ("groomed mass abvoe 60 GeV", "abvoe", "above", {"sdmass": (math.nextafter(60.0, math.inf), math.inf)}),
    ("lihgter than 50 GeV", "lihgter", "lighter", {"mass": (-math.inf, math.nextafter(50.0, -math.inf))}),
    ("tau32 bleow 0.5", "bleow", "below", {"tau32": (-math.inf, math.nextafter(0.5, -math.inf))}),
    ("mass betwen 60 and 100 GeV", "betwen", "between", {"mass": (60.0, 100.0)}),
])
def test_typing_slips_in_comparison_words_are_read_and_said(text, typed, meant, window):
    parsed = parse_query(text)
    assert parsed.windows() == window
    assert f"read {typed!r} as {meant!r}" in parsed.notes


def test_words_that_are_no_slips_stay_as_written():
    for text in ("a round jet with mass above 100 GeV", "jets from the hbb_belwo sample", "beyond 200 GeV"):
        assert not any(n.startswith("read ") for n in parse_query(text).notes), text


# ------------------------------------------------------------------------------ exact filtering


class StubAligner:
    """Ranks by a fixed random direction per query: the filtering, not the ranking, is under test."""

    def search_text(self, query: str, index: JetIndex, k: int = 10, filters: JetFilter | None = None) -> TextSearch:
        direction = np.random.default_rng(zlib.crc32(query.encode())).standard_normal(index.dim)
        hits = index.search(direction[None].astype(np.float32), k=k, filters=filters)[0]
        return TextSearch(query, hits, 0.9, False, False)


def toy_index(n: int = 3000, seed: int = 0, labelled: bool = True) -> JetIndex:
    rng = np.random.default_rng(seed)
    metadata = pd.DataFrame({
        "file": pd.Categorical(["toy.root"] * n), "entry": np.arange(n),
        "label": (rng.integers(0, len(PROCESSES), n) if labelled else np.full(n, -1)).astype(np.int8),
        "pt": rng.uniform(550, 650, n).astype(np.float32), "eta": rng.uniform(-2, 2, n).astype(np.float32),
        "phi": np.zeros(n, np.float32), "mass": rng.uniform(0, 300, n).astype(np.float32),
        "sdmass": rng.uniform(0, 250, n).astype(np.float32), "tau21": rng.uniform(0, 1, n).astype(np.float32),
        "tau32": rng.uniform(0.2, 1, n).astype(np.float32), "tau43": rng.uniform(0.4, 1, n).astype(np.float32),
        "nparticles": rng.integers(10, 130, n).astype(np.int32),
    })
    return JetIndex.build(rng.standard_normal((n, 8)).astype(np.float32), metadata, "flat")


def meets(row: dict, spec: dict, classes: list[str] | None) -> bool:
    """Whether one jet meets a hand-written spec, judged without the parser."""
    for observable, conditions in spec.items():
        if observable == "prongs":
            if prong_count(row["tau21"], row["tau32"], row["tau43"]) != conditions:
                return False
            continue
        value = float(row[COLUMN.get(observable, observable)])
        value = abs(value) if observable == "abs_eta" else value
        for op, *values in conditions:
            ok = {"lt": value < values[0], "le": value <= values[0], "gt": value > values[0],
                  "ge": value >= values[0], "range": values[0] <= value <= values[-1]}[op]
            if not ok:
                return False
    return classes is None or PROCESSES[row["label"]] in classes


@pytest.fixture(scope="module")
def index() -> JetIndex:
    return toy_index()


def test_no_result_breaks_a_stated_cut(index):
    stub = StubAligner()
    checked = 0
    for case in PHRASINGS:
        found = run_query(stub, index, case["text"], k=10)
        truth = [meets(r, case["cuts"], case["classes"]) for r in index.metadata.to_dict("records")]
        assert found.n_passed == sum(truth), case["text"]
        assert all(meets(r, case["cuts"], case["classes"]) for r in found.hits.records()), case["text"]
        assert len(found.hits) == min(10, found.n_passed)
        checked += len(found.hits)
    assert checked > 300


def test_nothing_passes_shows_nearest_misses(index):
    found = run_query(StubAligner(), index, "jets heavier than 2 TeV", k=5)
    assert found.n_passed == 0 and len(found.hits) == 0
    assert len(found.misses) == 5 and all(found.miss_reasons)
    masses = found.misses.metadata["mass"].to_numpy()
    assert np.all(np.diff(masses) <= 0) and masses[0] == index.metadata["mass"].max()
    assert all("wanted mass > 2000 GeV" in why[0] for why in found.miss_reasons)
    assert "0 of 3000 jets pass" in found.summary()
    contradictory = run_query(StubAligner(), index, "jets with mass above 200 GeV and below 100 GeV", k=3)
    assert contradictory.n_passed == 0 and any("contradict" in n for n in contradictory.notes)
    assert len(contradictory.misses) == 3


def test_class_words_on_unlabelled_jets_only_steer_the_ranking():
    found = run_query(StubAligner(), toy_index(200, labelled=False), "top jets with mass below 150 GeV", k=10)
    assert not found.classes_applied and "no truth labels" in found.notes[0]
    assert len(found.hits) == 10 and (found.hits.metadata["mass"] < 150).all()
    assert "class in" not in found.summary()


# ------------------------------------------------------------------------------ the three faces


@pytest.fixture
def search_tool(tmp_path, monkeypatch, index):
    """The search_text tool over the toy index (no dataset, embedding or aligner files needed)."""
    from jetfm.tools import text_search

    monkeypatch.setenv("JETFM_HOME", str(tmp_path))
    monkeypatch.setattr(text_search, "_latest_dataset", lambda catalog: "toy")
    monkeypatch.setattr(text_search, "_aligned_index", lambda aligner, dataset, catalog: (StubAligner(), index))
    return text_search


def test_tool_and_registry_apply_the_parsed_conditions(search_tool):
    from jetfm.tools.run import run_tool

    query = "jets lighter than 50 GeV with more than 60 constituents"
    for result in (run_tool("search_text", {"query": query, "k": 5}), search_tool.search_text(query, k=5)):
        data = result.data
        assert data["conditions"]["read_as"][0].startswith("mass < 50 GeV")
        assert data["n_passed"] > 5 and len(data["results"]) == 5 and not data["misses"]
        assert all(r["mass"] < 50 and r["nparticles"] > 60 for r in data["results"])
        assert "read as: mass < 50 GeV" in result.text and f"{data['n_passed']} of 3000 jets pass" in result.text
    narrowed = search_tool.search_text(query, k=5, mass_max=20.0, labels=["top"])
    assert all(r["mass"] <= 20 and r["label"] == PROCESSES.index("top") for r in narrowed.data["results"])
    empty = run_tool("search_text", {"query": "jets with pT above 1 TeV"})
    assert empty.data["results"] == [] and len(empty.data["misses"]) == 10
    assert "NOT matches" in empty.text and all(m["breaks"] for m in empty.data["misses"])


def test_app_search_tab_shows_conditions_and_labelled_misses(search_tool, monkeypatch):
    from jetfm.agent import app_search

    monkeypatch.setattr(app_search.JetImages, "gallery", lambda self, dataset, records, miss=False: [
        ("jet.png", app_search.miss_caption(r) if miss else app_search.caption(r)) for r in records])
    tab = app_search.SearchTab()
    gallery, hits, status = tab.search_text("three-prong jets above 150 GeV in mass", 4, None)
    assert len(gallery) == 4 and "read as:" in status and "150" in status and "jets pass" in status
    assert all(r["mass"] > 150 and prong_count(r["tau21"], r["tau32"], r["tau43"]) == 3 for r in hits["records"])
    gallery, hits, status = tab.search_text("jets with fewer than 3 constituents", 4, None)
    assert "No jet" in status and "nearest misses" in status
    assert len(gallery) == 4 and all(c.startswith("MISS (breaks constituents") for _, c in gallery)
