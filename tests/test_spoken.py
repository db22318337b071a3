"""Dictated and shorthand requests are read as their written form (agent/spoken.py). The phrasings
here are this file's own; the blind suites' requests are not used."""

import pytest

from jetfm.agent.spoken import (
    apply_corrections,
    drop_fillers,
    join_letters,
    spell_out,
    write_names,
    write_numbers,
    written_form,
)

NAMES = ["qcd-ref7", "zprime-4tev", "hww-2l", "mpm-base-v2", "clr-r5", "ttbar-ul17", "flat-wz", "lowpt-tt"]


@pytest.mark.parametrize("said, written", [
    ("um make uh two thousand W jets", "make two thousand W jets"),
    ("okay so plot the mass of qcd-ref7", "plot the mass of qcd-ref7"),
    ("pretrain for like ten thousand steps", "pretrain for ten thousand steps"),
    ("hmm, describe qcd-ref7 you know", "describe qcd-ref7"),
])
def test_fillers_go(said, written):
    assert drop_fillers(said) == written


@pytest.mark.parametrize("text", [
    "find jets that look like two-prong W jets",
    "jets like jet 5 in qcd-ref7",
    "something like 40 neighbours",
    "I'd like 3000 top jets",
])
def test_like_that_means_like_stays(text):
    assert drop_fillers(text) == text


@pytest.mark.parametrize("said, written", [
    ("gen wqq n=2k seed=9", "generate wqq 2k jets seed=9"),
    ("eval clr-r5 on qcd-ref7 sig=top", "evaluate clr-r5 on qcd-ref7 top as the signal"),
    ("ft mpm-base-v2 w/ lp, 300 labels", "fine-tune mpm-base-v2 with linear probe, 300 labels"),
    ("faiss idx on hww-2l", "faiss index on hww-2l"),
    ("AD on hww-2l w/o a reference", "anomaly detection on hww-2l without a reference"),
    ("10 NN of entry=44", "10 nearest neighbours of entry 44"),
    ("gen hbb -> describe -> plot msd", "generate hbb, then describe, then plot msd"),
    ("describe qcd-ref7 + mass hist", "describe qcd-ref7 + mass histogram"),
    ("leptonic + hadronic top jets", "leptonic + hadronic top jets"),
    ("cancel that gen job", "cancel that generation job"),
    ("jets with msd ≥ 60 and ~90 GeV mass", "jets with msd at least 60 and around 90 GeV mass"),
])
def test_shorthand_is_spelled_out(said, written):
    assert spell_out(said) == written


@pytest.mark.parametrize("text", [
    "t->bqq' jets against QCD",  # a decay, no step
    "H -> bb jets",
    "gen_test is my dataset",  # a name
    "tagger-lp-3 on run2",
])
def test_decays_and_names_are_no_shorthand(text):
    assert spell_out(text) == text


@pytest.mark.parametrize("said, written", [
    ("half w half q c d", "half w half qcd"),
    ("t t bar jets at high p t", "ttbar jets at high pt"),
    ("higgs to b b bar", "higgs to bbbar"),
    ("h four q jets", "h4q jets"),
    ("a top and a W", "a top and a W"),  # "a" is a word
])
def test_letters_said_one_by_one_are_joined(said, written):
    assert join_letters(said) == written


@pytest.mark.parametrize("said, written", [
    ("pt from six hundred to seven twenty gev", "pt from six hundred to 720 gev"),
    ("mass near one twenty five GeV", "mass near 125 GeV"),
    ("above one point five tev", "above 1.5 tev"),
    ("twenty k QCD jets", "20k QCD jets"),
    ("plot tau thirty two and tau two one", "plot tau32 and tau21"),
    ("tau forty three", "tau43"),
    ("one twenty jets", "one twenty jets"),  # no unit: no hundreds read in
])
def test_numbers_said_aloud_are_written(said, written):
    assert write_numbers(said) == written


@pytest.mark.parametrize("said, written", [
    ("describe the z prime four tev sample", "describe the zprime-4tev sample"),
    ("embed h w w two l with m p m base v two", "embed hww-2l with mpm-base-v2"),
    ("the t t bar u l seventeen jets", "the ttbar-ul17 jets"),
    ("search the flat w z index", "search the flat-wz index"),
    ("clr r five", "clr-r5"),
])
def test_names_said_aloud_are_written_as_named(said, written):
    assert write_names(join_letters(said), NAMES) == written


def test_a_name_said_aloud_is_not_a_count():
    assert write_names("run two jobs", ["run2"]) == "run two jobs"
    assert write_names("run two", ["run2"]) == "run2"
    assert write_names("qcd-ref7", NAMES) == "qcd-ref7"  # written already


@pytest.mark.parametrize("said, written", [
    ("make three thousand no wait five thousand top jets", "make five thousand top jets"),
    ("train for 400 steps, sorry no, 900 steps", "train for 900 steps"),
    ("pretrain for eight thousand steps or rather twelve thousand",
     "pretrain for twelve thousand steps"),
    ("histogram its pt actually no the soft-drop mass", "histogram its soft-drop mass"),
    ("embed qcd-ref7 no wait hww-2l with the default", "embed hww-2l with the default"),
    ("use a tiny no sorry a small backbone", "use a small backbone"),
])
def test_a_self_correction_keeps_only_the_correction(said, written):
    assert apply_corrections(said, NAMES) == written


def test_i_mean_that_corrects_nothing_stays():
    text = "I mean to compare the taggers later, plot the mass of qcd-ref7"
    assert apply_corrections(text, NAMES) == text


@pytest.mark.parametrize("text", [
    "Generate 5000 top and 5000 QCD jets with pT between 500 and 600 GeV, seed 11",
    "Fine-tune jetfm-default on qcd-ref7 with 1k labels, linear probe mode",
    "Find jets in hww-2l with tau21 below 0.4 and mass near 80 GeV",
    "Search the flat-wz index for jets like jet 17",
    "Is job-20261201-101010-abcdef finished yet?",
])
def test_a_written_request_passes_unchanged(text):
    assert written_form(text, NAMES) == text


def test_a_dictated_request_end_to_end():
    said = ("um okay so generate like four thousand no wait six thousand jets half z prime four tev half q c d "
            "with jet p t up to nine fifty gev")
    assert written_form(said, NAMES) == "generate six thousand jets half zprime-4tev half qcd with jet pt up to 950 gev"


def test_a_spaced_plus_starts_an_action_only_where_and_would():
    from jetfm.agent.clauses import action_clauses

    assert [c.tools for c in action_clauses("describe qcd-ref7 + tau32 histogram")] == [
        ("describe_dataset",), ("plot_observable",)]
    assert [c.tools for c in action_clauses("make 3k leptonic + hadronic top jets")] == [("generate_dataset",)]


def test_a_name_holding_an_action_word_names_no_action():
    from jetfm.agent.clauses import action_clauses

    clauses = action_clauses("describe wz-scan-b and show jet 4 of it", ["wz-scan-b"])
    assert [c.tools for c in clauses] == [("describe_dataset",), ("show_jet",)]
    assert clauses[0].text == "describe wz-scan-b"
