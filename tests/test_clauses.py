"""A request's actions, in order, and what each of them names (agent/clauses.py, Entities.within)."""

from __future__ import annotations

import pytest

from jetfm.agent.clauses import action_clauses
from jetfm.agent.context import PlanContext
from jetfm.agent.entities import extract

CTX = PlanContext(datasets=["wz_mix", "qcd_bg", "tt_sample"], models=["clr_tiny", "jetfm-default"])


@pytest.mark.parametrize(
    ("request_", "tools"),
    [
        # one action: an "and" between classes, numbers or cuts cuts nothing
        ("simulate 3k W and 3k Z jets with pT between 400 and 600 GeV", [("generate_dataset",)]),
        ("plot the soft-drop mass and tau21 of wz_mix", [("plot_observable",)]),
        # several actions, whatever joins them
        ("summarise qcd_bg and afterwards draw its mass", [("describe_dataset",), ("plot_observable",)]),
        ("make 2k top jets; pretrain a tiny backbone on them; then embed tt_sample",
         [("generate_dataset",), ("pretrain",), ("embed",)]),
        ("kill job-20261203-120000-abcdef and relaunch pretraining on qcd_bg",
         [("cancel_job",), ("pretrain",)]),
        ("what's the progress of job-20261203-120000-abcdef, and list my datasets",
         [("job_status",), ("list_artifacts",)]),
        # two things made and named in one action: one call each ("5k top and 5k QCD called tq" is one)
        ("generate a 3000-jet H->bb sample called hbb3k and a 3000-jet QCD sample called qcd3k",
         [("generate_dataset",), ("generate_dataset",)]),
        ("simulate 1k Z jets named z1k, and 1k W jets named w1k", [("generate_dataset",), ("generate_dataset",)]),
        ("make 5k top and 5k QCD jets called tq10k", [("generate_dataset",)]),
        # an action said not to be wanted starts none; "from scratch", "to separate" is a classifier
        ("As a no-pretraining baseline, train a tiny transformer from scratch on wz_mix to separate W from Z",
         [("finetune",)]),
        ("is that finished yet?", [("job_status",)]),
        # an action named by its product after "and"; a lead-in up to a colon; "pull out" is a search
        ("Summarise qcd_bg \u2014 and a mass histogram too, if it's no trouble",
         [("describe_dataset",), ("plot_observable",)]),
        ("For tt_sample: first a short overview, after that the eta distribution",
         [("describe_dataset",), ("plot_observable",)]),
        ("what I'd like is this: fit a linear probe of clr_tiny on wz_mix", [("finetune",)]),
        ("index wz_mix, then pull out the 8 jets closest to jet 3", [("build_index",), ("search_similar",)]),
    ],
)
def test_actions_are_found_in_order(request_: str, tools: list[tuple[str, ...]]) -> None:
    found = [c.tools for c in action_clauses(request_)]
    assert len(found) == len(tools), found
    for got, expected in zip(found, tools):
        assert set(expected) <= set(got)


def test_a_piece_without_an_action_belongs_to_the_action_before() -> None:
    clauses = action_clauses("pretrain on qcd_bg, 300 steps, batch size 64, then embed wz_mix with it")
    assert [c.tools for c in clauses] == [("pretrain",), ("embed",)]
    assert "batch size 64" in clauses[0].text


def test_each_action_reads_its_own_numbers_and_names() -> None:
    ent = extract("fine-tune clr_tiny on tt_sample with 500 labels and then evaluate it on qcd_bg", CTX)
    first, second = (ent.within(c) for c in ent.clauses)
    assert [n.value for n in first.numbers] == [500] and second.numbers == []
    assert first.models == ["clr_tiny"] and first.datasets == ["tt_sample"]
    # "it" points back: the evaluate step names no model of its own (the router gives it what the plan
    # made, else what an earlier action named)
    assert second.anaphora and second.datasets == ["qcd_bg"] and second.models == []
    assert second.earlier["models"] == ["clr_tiny"]
    # two samples made in one sentence: each action's classes are its own, in its class fields too
    ent = extract("generate a 3000-jet H->bb sample called hbb3k and a 3000-jet QCD sample called qcd3k", CTX)
    first, second = (ent.within(c) for c in ent.clauses)
    assert first.terms["class"] == first.classes == ["hbb"] and second.terms["class"] == second.classes == ["qcd"]
    assert first.new_names == ["hbb3k"] and second.new_names == ["qcd3k"]


def test_a_back_reference_means_an_earlier_name_and_a_new_name_stays_with_its_action() -> None:
    ent = extract("describe wz_mix and plot its constituent multiplicity", CTX)
    assert ent.within(ent.clauses[1]).earlier["datasets"] == ["wz_mix"]
    ent = extract("pretrain a contrastive model on qcd_bg called clr_big, then fine-tune it on wz_mix", CTX)
    first, second = (ent.within(c) for c in ent.clauses)
    assert first.new_names == ["clr_big"] and second.new_names == []
    assert second.datasets == ["wz_mix"]


def test_the_router_reads_each_action_in_its_own_words() -> None:
    """Without the model: which values each step of a two-action plan is offered."""
    from jetfm.agent.callformat import tool_fields
    from jetfm.agent.router import current_clause, grounded_values, stated_settings

    def field(tool: str, name: str):
        return next(f for f in tool_fields(tool) if f.name == name)

    ent = extract("fine-tune clr_tiny on tt_sample with 500 labels, then evaluate it on qcd_bg", CTX)
    done = [{"tool": "finetune", "args": {"model": "clr_tiny", "dataset": "tt_sample", "n_labels": 500,
                                          "name": "ft-tt"}}]
    made = {"dataset": [], "model": ["ft-tt"], "index": []}
    second = ent.within(current_clause(ent, done))
    assert grounded_values(field("evaluate", "model"), "evaluate", second, CTX, made, {}) == ["ft-tt"]
    assert grounded_values(field("evaluate", "dataset"), "evaluate", second, CTX, made, {}) == ["qcd_bg"]
    # the second step is offered none of the first step's numbers
    ent = extract("generate 4k top jets with seed 11, then pretrain on them for 300 steps", CTX)
    first, second = (ent.within(c) for c in ent.clauses)
    assert stated_settings("generate_dataset", first, []) == {"seed"}
    assert stated_settings("pretrain", second, []) == {"steps"}
    assert grounded_values(field("pretrain", "steps"), "pretrain", second, CTX, made, {}) == [300]
    # "similar to jet 4": the entry is a stated setting of a similarity search
    ent = extract("find 12 jets similar to jet 4 of wz_mix", CTX)
    assert stated_settings("search_similar", ent, []) == {"k", "entry", "dataset"}


@pytest.mark.parametrize(
    ("request_", "tools"),
    [
        # how to do an action is not an action: an index kind after a comma stays with its index
        ("index tt_sample with clr_tiny embeddings, product-quantised IVF", [("build_index",)]),
        ("build a FAISS index of wz_mix; HNSW please", [("build_index",)]),
        # "product" is not "produce"
        ("tell me the product of the jet masses", []),
        # a kNN setting ("25 neighbours") is not a request for a similarity search
        ("which jets of wz_mix stand out the most? use 25 neighbours", [("anomaly_scan",)]),
        ("list the 10 nearest neighbours of entry 3 in wz_mix", [("search_similar",)]),
        # an action word inside a name is part of the name
        ("linear probe of clr_tiny on wz_mix with 1000 labels, name probe-1k", [("finetune",)]),
    ],
)
def test_naming_words_and_settings_start_no_action(request_: str, tools: list[tuple[str, ...]]) -> None:
    found = [c.tools for c in action_clauses(request_)]
    assert len(found) == len(tools), found
    for got, expected in zip(found, tools):
        assert set(expected) <= set(got)
    if "stand out" in request_:
        assert "search_similar" not in found[0]


def test_a_named_model_and_named_classes_are_written() -> None:
    from jetfm.agent.router import stated_settings

    ent = extract("score qcd_bg for anomalies with the masked-particle likelihood of clr_tiny", CTX)
    assert "model" in stated_settings("anomaly_scan", ent, [])
    # once an earlier step used it, a later step does not have to write it again
    assert "model" not in stated_settings("anomaly_scan", ent, [{"tool": "embed", "args": {"model": "clr_tiny"}}])
    ent = extract("train a tagger on wz_mix that separates W, Z and light-quark/gluon jets", CTX)
    assert "classes" in stated_settings("finetune", ent, [])
    # one class alone is a signal, not a list of classes
    ent = extract("fine-tune clr_tiny on tt_sample to tag tops", CTX)
    assert "classes" not in stated_settings("finetune", ent, [])
    assert "model" in stated_settings("finetune", ent, [])


def test_it_with_nothing_to_point_at_asks_which() -> None:
    """"describe it" in a fresh conversation: the router asks which dataset, whatever the model
    says; after a turn that used a dataset, "it" is that dataset and nothing is asked."""
    from jetfm.agent.context import NeedsAnswer, after_turn
    from jetfm.agent.router import _ask_for_a_missing_referent

    made = {"dataset": [], "model": [], "index": []}
    ent = extract("describe it", CTX)
    with pytest.raises(NeedsAnswer, match="wz_mix"):
        _ask_for_a_missing_referent("describe_dataset", ent, CTX, made)
    later = after_turn(CTX, [{"tool": "plot_observable", "args": {"dataset": "qcd_bg"}}])
    _ask_for_a_missing_referent("describe_dataset", extract("describe it", later), later, made)


def test_classes_are_read_in_their_own_action() -> None:
    """The classes of a generate step are not the classes of the finetune step after it."""
    from jetfm.agent.router import stated_settings

    ent = extract("generate 10k top/qcd jets, finetune jetfm-default on them with 1000 labels", CTX)
    first, second = (ent.within(c) for c in ent.clauses)
    assert set(first.classes) == {"top", "qcd"} and second.classes == []
    assert "classes" not in stated_settings("finetune", second, [])


def test_one_action_on_several_targets_has_a_call_for_each() -> None:
    from jetfm.agent.router import next_target

    ent = extract("embed wz_mix and tt_sample with clr_tiny", CTX)
    first = [{"tool": "embed", "args": {"model": "clr_tiny", "dataset": "wz_mix"}}]
    assert next_target(ent, first) == ("embed", "dataset", ["tt_sample"])
    assert next_target(ent, [*first, {"tool": "embed", "args": {"model": "clr_tiny", "dataset": "tt_sample"}}]) is None
    ent = extract("cancel job-20261203-120000-abcdef and job-20261203-120001-bcdef0", CTX)
    done = [{"tool": "cancel_job", "args": {"job_id": "job-20261203-120000-abcdef"}}]
    assert next_target(ent, done) == ("cancel_job", "job_id", ["job-20261203-120001-bcdef0"])
    # a scan's second dataset is its reference, not a second scan
    ent = extract("knn anomaly scan of tt_sample against qcd_bg", CTX)
    assert next_target(ent, [{"tool": "anomaly_scan", "args": {"dataset": "tt_sample"}}]) is None
    # one dataset: nothing left
    ent = extract("describe wz_mix", CTX)
    assert next_target(ent, [{"tool": "describe_dataset", "args": {"dataset": "wz_mix"}}]) is None


def test_a_step_that_names_its_dataset_is_not_offered_what_the_plan_made() -> None:
    from jetfm.agent.callformat import tool_fields
    from jetfm.agent.router import grounded_values

    ent = extract("generate 10k top/qcd jets, finetune clr_tiny on them, and evaluate on tt_sample", CTX)
    third = ent.within(ent.clauses[2])
    made = {"dataset": ["top-qcd-10k"], "model": ["ft-1"], "index": []}
    field = next(f for f in tool_fields("evaluate") if f.name == "dataset")
    assert grounded_values(field, "evaluate", third, CTX, made, {}) == ["tt_sample"]
    second = ent.within(ent.clauses[1])  # "on them": what the plan made
    field = next(f for f in tool_fields("finetune") if f.name == "dataset")
    assert grounded_values(field, "finetune", second, CTX, made, {}) == ["top-qcd-10k"]


def test_a_name_after_a_comma_is_a_new_name() -> None:
    ent = extract("linear probe of clr_tiny on wz_mix with 1000 labels, name probe-1k", CTX)
    assert ent.new_names == ["probe-1k"]


def test_named_settings_that_a_call_must_write() -> None:
    """What the request names for an optional field is written: an index, a scan's reference, the
    classes a search keeps, the size of a tagger from scratch, and cuts on pT or mass."""
    from jetfm.agent.router import stated_settings

    ctx = PlanContext(datasets=["wz_mix", "qcd_bg"], models=["jetfm-default"], indexes=["idx-wz_mix-jetfm-default"])
    ent = extract("using idx-wz_mix-jetfm-default, the 20 jets closest to entry 7 of wz_mix with mass "
                  "between 140 and 210 GeV", ctx)
    assert {"index", "entry", "k", "mass_min", "mass_max"} <= stated_settings("search_similar", ent, [])
    ent = extract("kNN anomaly scan of wz_mix with qcd_bg as the background reference", ctx)
    assert "reference" in stated_settings("anomaly_scan", ent, [])
    ent = extract("jets nearest to jet #3 of wz_mix, restricted to W and QCD, pT above 300 GeV", ctx)
    assert {"labels", "pt_min"} <= stated_settings("search_similar", ent, [])
    ent = extract("train a tiny tagger from scratch on wz_mix", ctx)
    assert "model" in stated_settings("finetune", ent, [])
    ent = extract("find 25 three-prong jets in qcd_bg with soft-drop mass between 150 and 200 GeV", ctx)
    assert "dataset" in stated_settings("search_text", ent, [])  # optional there, but named
    assert "dataset" not in stated_settings("search_text", ent, [{"tool": "embed", "args": {"dataset": "qcd_bg"}}])


def test_a_unit_after_a_range_is_both_edges_and_an_mlp_probe_is_not_linear() -> None:
    from jetfm.agent.lexicon import find_terms

    ent = extract("generate 3k W jets with pT from 1.2 to 1.5 TeV", CTX)
    assert [(n.value, n.role) for n in ent.numbers if n.role.startswith("pt")] == [(1200, "pt_min"), (1500, "pt_max")]
    assert find_terms("finetune it with an MLP probe")["mode"] == ["mlp_probe"]
    assert find_terms("fit a linear probe")["mode"] == ["linear_probe"]


def test_the_same_action_again_on_it_is_one_action() -> None:
    assert [c.tools for c in action_clauses("import the file imports/run3.parquet and register it as run3")] == [
        ("import_dataset",)
    ]
    assert len(action_clauses("describe wz_mix and then describe qcd_bg")) == 2


@pytest.mark.parametrize(
    ("request_", "tools"),
    [
        # a jet pointed at: a similar-jet search or its display, not a text search
        ("find jets like #256 in qcd_bg, 100 of them", ("search_similar",)),
        ("now find the ten jets most similar to that one", ("search_similar",)),
        ("show me the very first jet of tt_sample", ("show_jet",)),
        ("draw jets 3 and 4 of wz_mix", ("show_jet",)),  # drawing jets pointed at is their display
        ("Draw jet number forty-two from wz_mix in the eta-phi plane", ("show_jet",)),
        ("abort that pretraining run, the learning rate was wrong", ("cancel_job",)),
        ("using index ivf_wz, show the jets most similar to entry 7 of wz_mix", ("search_similar",)),
        ("wat's in wz_mix? class counts n mass quantiles pls", ("describe_dataset",)),
        ("train a tiny tagger from random init on wz_mix", ("finetune",)),
        # "look like" with no jet: a description to search for
        ("find jets that look like a boosted W in wz_mix", ("search_text",)),
        ("give me 20 jets looking like a hadronic top from wz_mix", ("search_text",)),
        ("display three jets resembling a Higgs to charm pair", ("search_text",)),
        # a generic verb gives way to a specific action word
        ("find the weirdest jets in tt_sample compared to qcd_bg", ("anomaly_scan",)),
        ("what's the average number of constituents per jet in qcd_bg?", ("describe_dataset",)),
        ("show me my indexes", ("build_index", "list_artifacts")),
        # embeddings another action uses are no embedding action
        ("index tt_sample with clr_tiny embeddings, product-quantised IVF", ("build_index",)),
        # a kind of index named for a neighbour search without a jet: building that index
        ("I want approximate nearest-neighbour search on wz_mix using an HNSW graph", ("build_index",)),
        ("nearest neighbours of entry 3 in the hnsw index of wz_mix", ("build_index", "search_similar")),
        # "show me" a quantity is a distribution to look at; "show me jets with ..." a search, no display
        ("then show me their soft-drop mass", ("plot_observable",)),
        ("show me jets with mass above 100 GeV in wz_mix", ("search_text",)),
        ("show me ten jets of wz_mix with tau21 under 0.4", ("search_text",)),
        # what the user does themselves, or rules out, is no ask; "make" yields to a specific tool
        ("we will histogram the masses ourselves; describe wz_mix for us", ("describe_dataset",)),
        ("brute-force search is not an option for wz_mix; build an HNSW index", ("build_index",)),
        ("make an IVF index of wz_mix", ("build_index",)),
        ("an HNSW index of wz_mix, with embeddings from clr_tiny", ("build_index",)),
    ],
)
def test_proposed_tools_are_specific(request_: str, tools: tuple[str, ...]) -> None:
    assert [c.tools for c in action_clauses(request_)] == [tools]


def test_requests_outside_jetfm_are_told_apart() -> None:
    from jetfm.agent.entities import off_topic

    for request_ in ("book a meeting room for tomorrow at 10", "can you order pizza for the group meeting?", "hi!",
                     # what the field knows, not the workspace
                     "what background rejection do state-of-the-art W taggers report?",
                     "which papers introduced the Lund jet plane?",
                     # an explanation asked for, a verb no tool has
                     "Why does the top-quark jet mass peak near 173 GeV while W jets peak around 80 GeV?",
                     "Book a meeting with my supervisor for Thursday at 3pm to discuss the tagger results."):
        assert off_topic(extract(request_, CTX)), request_
    for request_ in ("what is in the workspace?", "how many jets does qcd_bg hold", "what's my top tagger's AUC",
                     "thanks, and plot it again",
                     "evaluate clr_tiny on tt_sample as in the published top-tagging paper",
                     "why is tt_sample so small? describe it"):
        assert not off_topic(extract(request_, CTX)), request_


def test_one_call_per_named_observable_model_and_an_index_by_its_kind() -> None:
    from jetfm.agent.router import _indexes_of_kind, next_target

    ent = extract("For wz_mix, plot both tau21 and the jet mass, per class", CTX)
    assert next_target(ent, [{"tool": "plot_observable", "args": {"dataset": "wz_mix", "observable": "tau21"}}]) \
        == ("plot_observable", "observable", ["mass"])
    ent = extract("evaluate both clr_tiny and jetfm-default on tt_sample", CTX)
    assert next_target(ent, [{"tool": "evaluate", "args": {"model": "clr_tiny", "dataset": "tt_sample"}}]) \
        == ("evaluate", "model", ["jetfm-default"])
    ctx = PlanContext(datasets=["qcd_ref"], indexes=["hnsw_qcd", "ivf_qcd"])
    assert _indexes_of_kind(extract("repeat that lookup but with the IVF index instead", ctx), ctx) == ["ivf_qcd"]


def test_that_one_is_the_jet_the_previous_turn_showed() -> None:
    from jetfm.agent.callformat import tool_fields
    from jetfm.agent.router import grounded_values

    ctx = PlanContext(datasets=["tt_sample"], previous=[{"tool": "show_jet", "args": {"dataset": "tt_sample",
                                                                                          "index": 5}}])
    entry = next(f for f in tool_fields("search_similar") if f.name == "entry")
    ent = extract("now find the ten jets most similar to that one", ctx)
    assert 5 in grounded_values(entry, "search_similar", ent, ctx, {"dataset": [], "model": [], "index": []}, {})


@pytest.mark.parametrize(
    ("request_", "described"),
    [
        ("find 25 three-prong jets in tt_sample with soft-drop mass between 150 and 200 GeV",
         "three-prong jets with soft-drop mass between 150 and 200 GeV"),
        ("please show me ten jets with mass above 150 GeV from qcd_bg, thanks", "jets with mass above 150 GeV"),
        ("search wz_mix for two-prong jets near the W mass", "two-prong jets near the W mass"),
        ("find top", ""),  # nothing worth a candidate: the model writes the query
        # one phrase in quotes is what to look for, as written
        ("in qcd_bg, the 5 jets that best match \"fat jets with a hard core\"", "fat jets with a hard core"),
    ],
)
def test_a_search_query_candidate_keeps_the_requests_words(request_: str, described: str) -> None:
    from jetfm.agent.entities import search_description

    ent = extract(request_, CTX)
    assert search_description(ent.within(ent.clauses[0])) == described


def test_a_tool_named_only_to_refuse_it_is_told_apart() -> None:
    from jetfm.agent.clauses import tools_of

    request_ = "a from-scratch tagger on wz_mix, so without any pretraining, 2k steps"
    assert tools_of(request_) == ("finetune",) and tools_of(request_, negated=True) == ("pretrain",)
    # named once refused and once wanted: wanted
    assert tools_of("pretrain on qcd_bg, then a finetune with no pretraining", negated=True) == ()


def test_a_name_pasted_as_a_keyword_or_an_option_is_the_new_name() -> None:
    for request_ in ("finetune(dataset='wz_mix', mode='full', name=\"wz-full-2\")",
                     "jetfm finetune --dataset wz_mix --mode full --name wz-full-2"):
        assert extract(request_, CTX).new_names == ["wz-full-2"]
    assert extract("what name should the wz_mix tagger get?", CTX).new_names == []


def test_counts_of_jet_parts_are_no_counts_of_jets() -> None:
    from jetfm.agent.numbers import typed_numbers

    assert [n.role for n in typed_numbers("look for jets with two b-tagged subjets")] == ["parts"]
    assert [n.role for n in typed_numbers("find 10 jets with 3 prongs")] == ["jets", "parts"]
    assert "parts" not in [n.role for n in typed_numbers("20000 light quark and gluon jets please")]
    assert [n.role for n in typed_numbers("find me 50 high-mass gluon jets")] == ["jets"]
    assert [c.tools for c in action_clauses("gen 3k hbb jets pt 300 to 400")] == [("generate_dataset",)]
