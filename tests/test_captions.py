"""Captions: physically right, deterministic, and evaluation phrasings never used for training."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from backbone.data.schema import PROCESSES
from retrieval.captions import (
    CLASS_PHYSICS,
    PRONG_WORDS,
    TEMPLATES,
    JetFacts,
    captions_for,
    class_queries,
    jet_facts,
    mass_window_queries,
    prong_count,
    templates,
)

# (process, mass, sdmass, tau21, tau32): typical jets of each class.
TYPICAL = {
    "qcd": (60.0, 30.0, 0.7, 0.85),
    "top": (178.0, 174.0, 0.5, 0.45),
    "wqq": (88.0, 80.0, 0.3, 0.8),
    "zqq": (97.0, 91.0, 0.3, 0.8),
    "hbb": (130.0, 124.0, 0.3, 0.75),
}


def facts(process: str, **changes: float) -> JetFacts:
    mass, sdmass, tau21, tau32 = TYPICAL[process]
    values = {"mass": mass, "sdmass": sdmass, "pt": 600.0, "tau21": tau21, "tau32": tau32, "nparticles": 55.0}
    return JetFacts(process, **(values | changes))


def many_jets(n_per_class: int = 40, seed: int = 0) -> list[JetFacts]:
    rng = np.random.default_rng(seed)
    return [
        facts(p, mass=float(rng.uniform(20, 300)), sdmass=float(rng.uniform(0, 250)),
              nparticles=float(rng.integers(10, 128)))
        for p in PROCESSES
        for _ in range(n_per_class)
    ]


def template_regex(template: str) -> re.Pattern[str]:
    """A full-match pattern for captions of ``template`` with the exact vocabulary of each field."""
    alternatives = {
        "name": [n for p in CLASS_PHYSICS.values() for n in p.names],
        "decay": [p.decay for p in CLASS_PHYSICS.values()],
        "flavour": [p.flavour for p in CLASS_PHYSICS.values()],
        "prongs": list(PRONG_WORDS.values()),
        "multiplicity": ["low", "moderate", "high"],
    }
    patterns = {k: "(?:" + "|".join(map(re.escape, v)) + ")" for k, v in alternatives.items()}
    patterns |= {"mass": r"\d+", "sdmass": r"\d+", "pt": r"\d+", "n": r"\d+", "nominal": r"\d+ GeV",
                 "window": r"between \d+ and \d+ GeV"}
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else patterns[p] for i, p in enumerate(parts)))


def test_class_physics_matches_the_particle_data():
    expected = {"qcd": (1, None), "top": (3, 173), "wqq": (2, 80), "zqq": (2, 91), "hbb": (2, 125)}
    for process, (prongs, mass) in expected.items():
        physics = CLASS_PHYSICS[process]
        assert physics.prongs == prongs
        assert (physics.nominal_mass is None) if mass is None else abs(physics.nominal_mass - mass) < 1
    assert "b-quark" in CLASS_PHYSICS["hbb"].flavour and "two" in CLASS_PHYSICS["hbb"].flavour
    assert "b-quark" in CLASS_PHYSICS["top"].flavour
    assert "gluon" in CLASS_PHYSICS["qcd"].decay


def test_prong_count_from_tau_ratios():
    assert [prong_count(*TYPICAL[p][2:]) for p in PROCESSES] == [1, 3, 2, 2, 2]
    assert prong_count(float("nan"), float("nan")) == 1


def test_captions_state_the_observables_they_mention():
    for jet in many_jets(10):
        for text in captions_for([jet], per_jet=6)[0]:
            assert not re.search(r"\bnan\b", text)
            for pattern, value in ((r"(?<!soft-drop )mass (?:of )?(\d+) GeV", jet.mass),
                                   (r"(?:soft-drop|groomed) mass (?:is )?(\d+) GeV", jet.sdmass),
                                   (r"(\d+) constituents", jet.nparticles)):
                for number in re.findall(pattern, text):
                    assert abs(int(number) - value) <= 2.5, (text, value)
            window = re.search(r"between (\d+) and (\d+) GeV", text)
            if window:
                assert int(window[1]) <= jet.sdmass < int(window[2]), text
            for prongs, word in PRONG_WORDS.items():
                if word in text:
                    assert prongs == prong_count(jet.tau21, jet.tau32), text


def test_captions_name_the_right_class():
    others = {p: [n for q in PROCESSES if q != p for n in CLASS_PHYSICS[q].names] for p in PROCESSES}
    for jet in many_jets(10):
        physics = CLASS_PHYSICS[jet.process]
        for text in captions_for([jet], per_jet=8)[0]:
            assert any(n in text for n in physics.names) or physics.decay in text, text
            assert not any(n in text for n in others[jet.process]), text


def test_template_splits_are_disjoint_and_fixed():
    train, evaluation = templates("train"), templates("eval")
    assert set(train).isdisjoint(evaluation)
    assert set(train) | set(evaluation) == set(TEMPLATES)
    assert len(evaluation) >= 4 and len(train) >= 3 * len(evaluation) - 1
    with pytest.raises(ValueError, match="choose from train, eval"):
        templates("test")


def test_training_captions_never_use_evaluation_phrasings():
    jets = many_jets(20)
    train_patterns = [template_regex(t) for t in templates("train")]
    eval_patterns = [template_regex(t) for t in templates("eval")]
    for text in (c for per_jet in captions_for(jets, per_jet=4, split="train") for c in per_jet):
        assert any(p.fullmatch(text) for p in train_patterns), text
        assert not any(p.fullmatch(text) for p in eval_patterns), text
    for text in (c for per_jet in captions_for(jets, per_jet=2, split="eval") for c in per_jet):
        assert any(p.fullmatch(text) for p in eval_patterns), text


def test_captions_are_deterministic_in_the_seed():
    jets = many_jets(5)
    assert captions_for(jets, 3, seed=1) == captions_for(jets, 3, seed=1)
    assert captions_for(jets, 3, seed=1) != captions_for(jets, 3, seed=2)


def test_unknown_observables_leave_their_templates_out():
    jet = facts("top", sdmass=float("nan"), tau21=float("nan"), tau32=float("nan"))
    for text in captions_for([jet], per_jet=10)[0]:
        assert not re.search(r"\bnan\b", text) and "soft-drop" not in text and "pronged" not in text


def test_jet_facts_needs_labels():
    metadata = pd.DataFrame({"label": [1, -1], "mass": [170.0, 90.0], "sdmass": [165.0, 85.0], "pt": [600.0] * 2,
                             "tau21": [0.5, 0.3], "tau32": [0.4, 0.8], "nparticles": [70, 40]})
    with pytest.raises(ValueError, match="no known class"):
        jet_facts(metadata)
    assert jet_facts(metadata.iloc[:1])[0].process == "top"


def test_benchmark_queries():
    queries = class_queries()
    assert list(queries) == list(PROCESSES) and all(len(q) >= 3 for q in queries.values())
    assert "top quark" in queries["top"][0]
    for text, (lo, hi) in mass_window_queries():
        assert f"{lo}" in text and f"{hi}" in text and lo < hi
