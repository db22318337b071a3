"""Captions: physically right, deterministic, mostly class-free, and evaluation wordings never used
for training."""

from __future__ import annotations

import re
import string

import numpy as np
import pandas as pd
import pytest

from jetfm.backbone.data.schema import PROCESSES
from jetfm.retrieval.captions import (
    CLASS_PHYSICS,
    CLASS_SHARE,
    COUNT_STEP,
    MASS_STEP,
    PARTICLE_MASSES,
    PRONG_NUMBERS,
    PT_STEP,
    VOCABULARY,
    JetFacts,
    captions_for,
    class_subjects,
    description_bank,
    jet_facts,
    prong_count,
)

# (process, mass, sdmass, tau21, tau32): typical jets of each class.
TYPICAL = {
    "qcd": (60.0, 30.0, 0.7, 0.85),
    "top": (178.0, 174.0, 0.5, 0.45),
    "wqq": (88.0, 80.0, 0.3, 0.8),
    "zqq": (97.0, 91.0, 0.3, 0.8),
    "hbb": (130.0, 124.0, 0.3, 0.75),
    "hcc": (130.0, 123.0, 0.3, 0.75),
    "hgg": (135.0, 120.0, 0.35, 0.75),
    "h4q": (130.0, 122.0, 0.45, 0.55),
    "hlvqq": (110.0, 100.0, 0.4, 0.7),
    "tbl": (150.0, 140.0, 0.35, 0.7),
}


def facts(process: str, **changes: float) -> JetFacts:
    mass, sdmass, tau21, tau32 = TYPICAL[process]
    values = {"mass": mass, "sdmass": sdmass, "pt": 600.0, "tau21": tau21, "tau32": tau32, "nparticles": 55.0,
              "tau43": 0.8}
    return JetFacts(process, **(values | changes))


def many_jets(n_per_class: int = 40, seed: int = 0) -> list[JetFacts]:
    rng = np.random.default_rng(seed)
    return [
        facts(p, mass=float(rng.uniform(20, 300)), sdmass=float(rng.uniform(0, 250)),
              nparticles=float(rng.integers(10, 128)), pt=float(rng.uniform(550, 650)),
              tau21=float(rng.uniform(0.1, 0.9)), tau32=float(rng.uniform(0.2, 0.95)),
              tau43=float(rng.uniform(0.5, 0.95)))
        for p in PROCESSES
        for _ in range(n_per_class)
    ]


def fragments(split: str) -> set[str]:
    """The literal words of a split's vocabulary (placeholders cut out), 4+ characters long."""
    out = set()
    for phrasings in VOCABULARY[split].values():
        for phrasing in (w for p in phrasings for w in ((p,) if isinstance(p, str) else p)):
            for literal, *_ in string.Formatter().parse(phrasing):
                for part in re.split(r"[,:;]", literal):
                    if len(part.strip()) >= 4:
                        out.add(part.strip())
    return out


def test_class_physics_matches_the_particle_data():
    expected = {"qcd": (1, None), "top": (3, 173), "wqq": (2, 80), "zqq": (2, 91), "hbb": (2, 125)}
    for process, (prongs, mass) in expected.items():
        physics = CLASS_PHYSICS[process]
        assert physics.prongs == prongs
        assert (physics.nominal_mass is None) if mass is None else abs(physics.nominal_mass - mass) < 1
    assert "b-quark" in CLASS_PHYSICS["hbb"].flavour and "two" in CLASS_PHYSICS["hbb"].flavour
    assert set(PARTICLE_MASSES) == {"top quark", "W boson", "Z boson", "Higgs boson"}


def test_prong_count_from_tau_ratios():
    assert [prong_count(*TYPICAL[p][2:]) for p in TYPICAL] == [1, 3, 2, 2, 2, 2, 2, 3, 2, 2]
    assert prong_count(float("nan"), float("nan")) == 1
    assert prong_count(0.3, 0.5, 0.6) == 4 and prong_count(0.3, 0.5, 0.7) == 3


def test_captions_state_the_observables_they_mention():
    for jet in many_jets(6):
        for text in captions_for([jet], per_jet=8)[0]:
            assert not re.search(r"\bnan\b", text)
            for pattern, value, step in ((r"(?<!soft-drop )(?<!groomed )mass (?:of )?(\d+) GeV", jet.mass, MASS_STEP),
                                         (r"(?:soft-drop|groomed) mass (\d+) GeV", jet.sdmass, MASS_STEP),
                                         (r"(\d+) constituents", jet.nparticles, COUNT_STEP),
                                         (r"(?:pT|momentum) (\d+) GeV", jet.pt, PT_STEP)):
                for number in re.findall(pattern, text):
                    assert abs(int(number) - value) <= step / 2, (text, value)
            prongs = re.search(r"(\w+)-pronged|with (\w+) prongs|(\w+) distinct subjets|(\w+)-body substructure", text)
            if prongs:
                word = next(g for g in prongs.groups() if g)
                assert PRONG_NUMBERS[prong_count(jet.tau21, jet.tau32, jet.tau43)] == word, text
            near = re.search(r"near the (.+?) mass|consistent with a (.+?)(?:,|$)", text)
            if near:
                assert abs(PARTICLE_MASSES[near[1] or near[2]] - jet.sdmass) <= 10, text
            levels = VOCABULARY["train"]["mass_levels"]
            if "very massive" in text:
                assert jet.mass >= 150, text
            if re.search(r"\bvery low-mass\b", text):
                assert jet.mass < 40 and "very low-mass" in levels[0], text
            if re.search(r"\bvery (low in mass|high-mass)\b", text):
                assert (jet.mass < 40) == ("very low in" in text), text
                assert (jet.mass >= 150) == ("very high-mass" in text), text
            if "grooming keeps almost all" in text:
                assert jet.sdmass / jet.mass >= 0.85, text
            if "very collimated" in text:
                assert jet.mass / jet.pt < 0.12, text


def test_most_captions_avoid_the_class_and_the_rest_name_the_right_one():
    named = 0
    captions = [c for per_jet in captions_for(many_jets(10), per_jet=4) for c in per_jet]
    owners = [jet.process for jet in many_jets(10) for _ in range(4)]
    for text, process in zip(captions, owners):
        own = [s for s in class_subjects(process, "train") if s in text]
        others = [s for p in PROCESSES if p != process for s in class_subjects(p, "train")
                  if s in text and not any(s in o for o in own)]
        assert not others, text
        named += bool(own)
    assert abs(named / len(captions) - CLASS_SHARE) < 0.08


def test_vocabularies_are_disjoint():
    jets = many_jets(10)
    train = [c for per_jet in captions_for(jets, per_jet=4, split="train") for c in per_jet]
    evaluation = [c for per_jet in captions_for(jets, per_jet=4, split="eval") for c in per_jet]
    eval_words, train_words = fragments("eval"), fragments("train")
    assert eval_words and train_words and not eval_words & train_words
    for text in train:
        assert not [w for w in eval_words if w in text], text
    for text in evaluation:
        assert not [w for w in train_words if w in text], text
        assert not any(s in text for p in PROCESSES for s in class_subjects(p, "train")[3:]), text


def test_captions_are_deterministic_in_the_seed():
    jets = many_jets(5)
    assert captions_for(jets, 3, seed=1) == captions_for(jets, 3, seed=1)
    assert captions_for(jets, 3, seed=1) != captions_for(jets, 3, seed=2)
    with pytest.raises(ValueError, match="choose from train, eval"):
        captions_for(jets, 3, split="test")


def test_unknown_observables_leave_their_clauses_out():
    nan = float("nan")
    jet = facts("top", sdmass=nan, tau21=nan, tau32=nan, tau43=nan)
    for text in captions_for([jet], per_jet=10)[0]:
        assert not re.search(r"\bnan\b", text) and "soft-drop" not in text and "-pronged" not in text
        assert not re.search(r"with \w+ prongs", text)
        assert "groom" not in text


def test_jet_facts_needs_labels():
    metadata = pd.DataFrame({"label": [1, -1], "mass": [170.0, 90.0], "sdmass": [165.0, 85.0], "pt": [600.0] * 2,
                             "tau21": [0.5, 0.3], "tau32": [0.4, 0.8], "nparticles": [70, 40]})
    with pytest.raises(ValueError, match="no known class"):
        jet_facts(metadata)
    jet = jet_facts(metadata.iloc[:1])[0]
    assert jet.process == "top" and np.isnan(jet.tau43)  # an older embedding set without tau43


def test_description_bank_covers_every_class_and_prong_count():
    bank = description_bank()
    assert len(bank) == len(set(bank)) == len(PROCESSES) * 4 * 15
    assert all(any(CLASS_PHYSICS[p].names[0] in d for d in bank) for p in PROCESSES)


# ------------------------------------------------------------------------------ benchmark controls


def test_benchmark_queries_are_held_out_and_split_as_promised():
    from benchmarks.bench_align import load_queries
    from jetfm.retrieval.constraints import parse_query

    queries = load_queries()
    kinds = [q["kind"] for q in queries]
    assert len(queries) >= 60 and kinds.count("explicit") >= 30 and kinds.count("paraphrase") >= 30
    for q in queries:
        parsed = parse_query(q["query"])
        if q["kind"] == "paraphrase":  # no class keyword, no condition: only the embedding can answer
            assert parsed.empty and not parsed.mentions, (q["query"], parsed.describe())
        else:
            assert not parsed.empty, q["query"]
    # Written apart from the training captions: no run of four words in common.
    train = {c for per_jet in captions_for(many_jets(10), per_jet=6) for c in per_jet}

    def grams(text: str) -> set[tuple[str, ...]]:
        words = re.sub(r"[^\w\s-]", " ", text.lower()).split()
        return {tuple(words[i : i + 4]) for i in range(len(words) - 3)}

    seen = set().union(*(grams(c) for c in train))
    assert not [q["query"] for q in queries if grams(q["query"]) & seen]


@pytest.mark.parametrize("name", ["FRESH_QUERIES", "BLIND2_QUERIES"])
def test_blind_query_set_is_split_as_promised(name: str):
    """The blind sets were written without the parser: explicit queries must give it something to read,
    and whatever class it reads from a paraphrase must be one the query is about."""
    import benchmarks.bench_align as bench
    from jetfm.retrieval.constraints import parse_query

    queries = bench.load_queries(getattr(bench, name))
    kinds = [q["kind"] for q in queries]
    assert kinds.count("explicit") >= 30 and kinds.count("paraphrase") >= 30
    for q in queries:
        parsed = parse_query(q["query"])
        if q["kind"] == "explicit":
            assert not parsed.empty, q["query"]
        elif parsed.classes is not None:
            assert set(parsed.classes) <= set(q["relevant"].get("classes", PROCESSES)), (q["query"], parsed.describe())
        assert not re.search(r"\d", q["query"]) or q["kind"] == "explicit", q["query"]


def test_shuffled_numbers_keep_the_wording_and_change_the_values():
    from benchmarks.bench_align import shuffle_numbers

    captions = ["a jet: mass 80 GeV, pT 600 GeV", "a jet: mass 170 GeV, pT 560 GeV", "an R = 0.8 jet - broad",
                "a fat jet, 40 constituents"]
    shuffled, changed = shuffle_numbers(captions, seed=0)
    assert changed.tolist() == [True, True, False, False]
    assert shuffled[:2] == captions[1::-1] and shuffled[2:] == captions[2:]


def test_recall_set_drops_near_duplicate_captions():
    from benchmarks.bench_align import distinct_rows, recall_at_k

    texts = ["a jet: broad, p_T = 600", "a jet: broad, p_T = 620", "a R = 0.8 jet - m_SD = 80, built from 40 particles"]
    assert distinct_rows(texts) == [0, 2]
    eye = np.eye(3, dtype=np.float32)
    assert recall_at_k(eye, eye)["text_to_jet"]["R@1"] == 1.0
    assert recall_at_k(eye, eye[[1, 0, 2]])["jet_to_text"]["R@1"] == pytest.approx(1 / 3)


def test_rule_baseline_and_relevance_judge_observables():
    from benchmarks.bench_align import relevant, rule_class

    metadata = pd.DataFrame({"label": [1, 0, 2], "mass": [175.0, 30.0, 85.0], "sdmass": [172.0, 10.0, 81.0],
                             "pt": [600.0, 600.0, 600.0], "eta": [0.1, -1.8, 1.0], "tau21": [0.5, 0.8, 0.2],
                             "tau32": [0.4, 0.9, 0.8], "tau43": [0.8, 0.9, 0.9], "nparticles": [80, 20, 45]})
    assert rule_class(metadata).tolist() == [PROCESSES.index("top"), 0, PROCESSES.index("wqq")]
    assert relevant(metadata, {"prongs": 3, "mass": [["gt", 150]]}).tolist() == [True, False, False]
    assert relevant(metadata, {"abs_eta": [["gt", 0.5]], "classes": ["qcd", "wqq"]}).tolist() == [False, True, True]
    assert relevant(metadata, {"mass_over_pt": [["lt", 0.12]]}).tolist() == [False, True, False]
