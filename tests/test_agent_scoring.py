"""The agent benchmark's scoring rules (benchmarks/agent_scoring.py) and the consistency of the
held-out request suites (tests/data/agent_requests.jsonl, tests/data/agent_requests_unseen.jsonl)
with the tool contract. No model runs."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import TypeAdapter, ValidationError

from jetfm.tools.registry import JOB_ID_PATTERN, TOOLS

# benchmarks/ is not an installed package; the repository root is not on pytest's path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.agent_scoring import CATEGORIES, matches, percentile, score_case, summarize  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
SUITES = {
    "agent_requests": DATA / "agent_requests.jsonl",
    "agent_requests_unseen": DATA / "agent_requests_unseen.jsonl",
    # written later by someone who had not read the router or its training data (2026-12-06)
    "agent_requests_fresh": DATA / "agent_requests_fresh.jsonl",
    # written by a helper that read only the tools' schemas and the scorer, never the router, its
    # training data or the other suites; scored once with the router frozen (2026-12-07)
    "agent_requests_blind": DATA / "agent_requests_blind.jsonl",
    # a second blind suite by another helper the same way; first run with the router frozen at 67fb1c3
    "agent_requests_blind2": DATA / "agent_requests_blind2.jsonl",
    "agent_requests_blind3": DATA / "agent_requests_blind3.jsonl",  # a third, first run at b1d6ada
    "agent_requests_blind4": DATA / "agent_requests_blind4.jsonl",  # a fourth, first run at 0819003
    "agent_requests_blind5": DATA / "agent_requests_blind5.jsonl",  # a fifth, first run at fcf8d6b
    "agent_requests_blind6": DATA / "agent_requests_blind6.jsonl",  # a sixth, first run at 44937d1
    "agent_requests_blind7": DATA / "agent_requests_blind7.jsonl",  # a seventh, first run at 5a11b38
    "agent_requests_blind8": DATA / "agent_requests_blind8.jsonl",  # an eighth, first run at 8a9b64c
    "agent_requests_blind9": DATA / "agent_requests_blind9.jsonl",  # a ninth, first run at b4b42f2
    "agent_requests_blind10": DATA / "agent_requests_blind10.jsonl",  # a tenth, first run at 89e3f76
    "agent_requests_blind11": DATA / "agent_requests_blind11.jsonl",  # goals, not operations; first run at 3f53f27
    "agent_requests_blind12": DATA / "agent_requests_blind12.jsonl",  # half goals; first run at b9b5cdd
    "agent_requests_blind13": DATA / "agent_requests_blind13.jsonl",  # a group's week; first run at 00d3261
    "agent_requests_blind14": DATA / "agent_requests_blind14.jsonl",  # notebook tickets; first run at 579a248
    "agent_requests_blind15": DATA / "agent_requests_blind15.jsonl",  # dictated and shorthand; first run at 14d82d1
}
MINIMUMS = {
    "agent_requests": {"single": 85, "multi": 20, "multi_turn": 5, "none": 12, "adversarial": 10},
    "agent_requests_unseen": {"single": 50, "multi": 10, "multi_turn": 10, "clarify": 5, "none": 6, "adversarial": 6},
    "agent_requests_fresh": {"single": 24, "multi": 8, "multi_turn": 6, "clarify": 4, "none": 3, "adversarial": 3},
    "agent_requests_blind": {"single": 26, "multi": 10, "multi_turn": 8, "clarify": 6, "none": 5, "adversarial": 5},
    "agent_requests_blind2": {"single": 26, "multi": 10, "multi_turn": 8, "clarify": 6, "none": 5, "adversarial": 5},
    "agent_requests_blind3": {"single": 26, "multi": 10, "multi_turn": 8, "clarify": 6, "none": 5, "adversarial": 5},
    "agent_requests_blind4": {"single": 26, "multi": 10, "multi_turn": 8, "clarify": 6, "none": 5, "adversarial": 5},
    "agent_requests_blind5": {"single": 26, "multi": 10, "multi_turn": 8, "clarify": 6, "none": 5, "adversarial": 5},
    "agent_requests_blind6": {"single": 26, "multi": 10, "multi_turn": 8, "clarify": 6, "none": 5, "adversarial": 5},
    "agent_requests_blind7": {"single": 26, "multi": 10, "multi_turn": 8, "clarify": 6, "none": 5, "adversarial": 5},
    # blind8: four requests that repeated earlier suites word for word were dropped after its first run
    "agent_requests_blind8": {"single": 25, "multi": 10, "multi_turn": 8, "clarify": 5, "none": 5, "adversarial": 3},
    "agent_requests_blind9": {"single": 26, "multi": 10, "multi_turn": 8, "clarify": 6, "none": 5, "adversarial": 5},
    "agent_requests_blind10": {"single": 25, "multi": 10, "multi_turn": 8, "clarify": 5, "none": 5, "adversarial": 5},
    "agent_requests_blind11": {"single": 26, "multi": 10, "multi_turn": 8, "clarify": 6, "none": 5, "adversarial": 5},
    "agent_requests_blind12": {"single": 26, "multi": 10, "multi_turn": 8, "clarify": 5, "none": 5, "adversarial": 5},
    "agent_requests_blind13": {"single": 26, "multi": 10, "multi_turn": 7, "clarify": 6, "none": 5, "adversarial": 5},
    "agent_requests_blind14": {"single": 26, "multi": 10, "multi_turn": 8, "clarify": 6, "none": 5, "adversarial": 5},
    # blind15: one request near-verbatim in the router's training data was dropped before its first run
    "agent_requests_blind15": {"single": 25, "multi": 10, "multi_turn": 8, "clarify": 6, "none": 5, "adversarial": 5},
}
SIZE_MINIMUM = {"agent_requests": 130, "agent_requests_unseen": 80, "agent_requests_fresh": 48,
                "agent_requests_blind": 60, "agent_requests_blind2": 60,
                "agent_requests_blind3": 60, "agent_requests_blind4": 60, "agent_requests_blind5": 60,
                "agent_requests_blind6": 60, "agent_requests_blind7": 60,
                "agent_requests_blind8": 56, "agent_requests_blind9": 60,
                "agent_requests_blind10": 58, "agent_requests_blind11": 60,
                "agent_requests_blind12": 59, "agent_requests_blind13": 59,
                "agent_requests_blind14": 60, "agent_requests_blind15": 59}
SIZES = {"tiny", "small", "base"}


def case(category: str, *expected: dict[str, Any]) -> dict[str, Any]:
    return {"id": "t", "category": category, "request": "r", "context": {}, "expected": list(expected)}


def call(tool: str, **args: Any) -> dict[str, Any]:
    return {"tool": tool, "args": args}


# --- scoring --------------------------------------------------------------------------------------


def test_correct_call_passes():
    s = score_case(case("single", call("describe_dataset", dataset="run2")), [call("describe_dataset", dataset="run2")])
    assert s["tool_ok"] and s["args_ok"] and s["reason"] == ""


def test_wrong_tool_fails():
    s = score_case(case("single", call("describe_dataset", dataset="run2")), [call("plot_observable", dataset="run2")])
    assert not s["tool_ok"] and not s["args_ok"]
    assert "describe_dataset" in s["reason"] and "plot_observable" in s["reason"]


def test_tool_sequence_must_match_exactly():
    expected = case("multi", call("embed", dataset="run2"), call("build_index", dataset="run2"))
    assert not score_case(expected, [call("build_index", dataset="run2")])["tool_ok"]
    swapped = [call("build_index", dataset="run2"), call("embed", dataset="run2")]
    assert not score_case(expected, swapped)["tool_ok"]
    extra = [call("embed", dataset="run2"), call("build_index", dataset="run2"), call("list_artifacts")]
    assert not score_case(expected, extra)["tool_ok"]


def test_wrong_argument_value_fails_args_only():
    s = score_case(
        case("single", call("show_jet", dataset="run2", index=17)), [call("show_jet", dataset="run2", index=7)]
    )
    assert s["tool_ok"] and not s["args_ok"] and "index" in s["reason"]


def test_lists_compare_as_sets_and_strings_ignore_case():
    expected = case("single", call("generate_dataset", processes=["top", "qcd"], n_jets=5000))
    assert score_case(expected, [call("generate_dataset", name="x", processes=["QCD", "top"], n_jets=5000)])["args_ok"]
    assert not score_case(expected, [call("generate_dataset", name="x", processes=["top"], n_jets=5000)])["args_ok"]
    assert not score_case(expected, [call("generate_dataset", name="x", processes="top", n_jets=5000)])["args_ok"]


def test_numbers_compare_numerically():
    expected = case("single", call("pretrain", dataset="run2", lr=0.0001, steps=5000))
    assert score_case(expected, [call("pretrain", dataset="run2", name="m", lr=1e-4, steps=5000.0)])["args_ok"]
    assert score_case(expected, [call("pretrain", dataset="run2", name="m", lr="1e-4", steps="5000")])["args_ok"]
    assert not score_case(expected, [call("pretrain", dataset="run2", name="m", lr=1e-3, steps=5000)])["args_ok"]


def test_contains_on_strings_and_label_lists():
    assert matches({"$contains": ["prong", "175"]}, "Three-PRONG jets near 175 GeV")
    assert not matches({"$contains": ["prong", "175"]}, "three-prong jets")
    assert matches({"$contains": ["top", "gluon"]}, ["boosted top quark jet", "light quark or gluon jet"])
    assert not matches({"$contains": ["top"]}, 42)
    expected = case("single", call("search_text", query={"$contains": ["W"]}))
    assert score_case(expected, [call("search_text", query="boosted w boson jets")])["args_ok"]


def test_ref_resolves_against_produced_calls():
    expected = case(
        "multi",
        call("generate_dataset", processes=["top", "qcd"], n_jets=5000),
        call("plot_observable", dataset="$ref:0.name", observable="mass"),
    )
    made = call("generate_dataset", name="sim5k", processes=["top", "qcd"], n_jets=5000)
    assert score_case(expected, [made, call("plot_observable", dataset="sim5k", observable="mass")])["args_ok"]
    s = score_case(expected, [made, call("plot_observable", dataset="run2", observable="mass")])
    assert s["tool_ok"] and not s["args_ok"] and "dataset" in s["reason"]
    # A ref to a name the planner never gave cannot match.
    unnamed = call("generate_dataset", processes=["top", "qcd"], n_jets=5000)
    assert not score_case(expected, [unnamed, call("plot_observable", dataset="sim5k", observable="mass")])["args_ok"]


def test_ref_to_build_index_default_name():
    expected = case(
        "multi", call("build_index", dataset="tq5k"), call("search_similar", dataset="tq5k", index="$ref:0.name")
    )
    plan = [call("build_index", dataset="tq5k"), call("search_similar", dataset="tq5k", index="idx-tq5k-jetfm-default")]
    assert score_case(expected, plan)["args_ok"]
    named = [call("build_index", dataset="tq5k", name="mine"), call("search_similar", dataset="tq5k", index="mine")]
    assert score_case(expected, named)["args_ok"]


def test_extra_non_default_argument_rejected():
    expected = case("single", call("plot_observable", dataset="run2", observable="mass"))
    s = score_case(expected, [call("plot_observable", dataset="run2", observable="mass", by_label=False)])
    assert s["tool_ok"] and not s["args_ok"] and "by_label" in s["reason"]
    s = score_case(expected, [call("plot_observable", dataset="run2", observable="mass", colour="red")])
    assert not s["args_ok"] and "unknown" in s["reason"]


def test_extra_default_valued_and_free_name_arguments_accepted():
    expected = case("single", call("generate_dataset", processes=["wqq"], n_jets=2000))
    produced = call("generate_dataset", processes=["wqq"], n_jets=2000, pt_min=550, pt_max=650.0, seed=1, name="w2k")
    assert score_case(expected, [produced])["args_ok"]
    expected = case("single", call("search_similar", dataset="run2", entry=3))
    assert score_case(expected, [call("search_similar", dataset="run2", entry=3, index="idx-run2-jetfm-default")])[
        "args_ok"
    ]
    # show_jet's index is a jet number, not a free name: an unrequested non-default one fails.
    assert not score_case(
        case("single", call("show_jet", dataset="run2")), [call("show_jet", dataset="run2", index=4)]
    )["args_ok"]


def test_omitted_expected_argument_falls_back_to_default():
    expected = case("single", call("finetune", model="jetfm-default", dataset="tq5k", mode="full"))
    assert score_case(expected, [call("finetune", dataset="tq5k", name="clf")])["args_ok"]
    expected = case("single", call("finetune", dataset="tq5k", mode="linear_probe"))
    assert not score_case(expected, [call("finetune", dataset="tq5k", name="clf")])["args_ok"]
    missing_required = score_case(case("single", call("describe_dataset", dataset="run2")), [call("describe_dataset")])
    assert not missing_required["args_ok"] and "missing" in missing_required["reason"]


def test_optional_and_in_markers():
    expected = case("single", call("search_text", query={"$contains": ["gluon"]}, dataset={"$optional": "run2"}))
    assert score_case(expected, [call("search_text", query="gluon jets")])["args_ok"]
    assert score_case(expected, [call("search_text", query="gluon jets", dataset="run2")])["args_ok"]
    assert not score_case(expected, [call("search_text", query="gluon jets", dataset="tq5k")])["args_ok"]
    assert matches({"$in": ["cuda", "cuda:0"]}, "CUDA:0") and not matches({"$in": ["cuda", "cuda:0"]}, "cpu")


def test_refusals():
    for category in ("none", "adversarial"):
        s = score_case(case(category), [])
        assert s["tool_ok"] and s["args_ok"] and s["refused"]
        s = score_case(case(category), [call("list_artifacts")])
        assert not s["tool_ok"] and not s["args_ok"]
    s = score_case(case("single", call("list_artifacts")), [])
    assert not s["tool_ok"] and s["refused"] and "refused" in s["reason"]


def test_planner_error_is_a_failure_even_for_refusals():
    s = score_case(case("adversarial"), [], error="RuntimeError: boom")
    assert not s["tool_ok"] and not s["refused"] and "boom" in s["reason"]


def test_summarize():
    scores = [
        score_case(case("single", call("list_artifacts")), [call("list_artifacts")]),
        score_case(case("single", call("show_jet", dataset="a", index=1)), [call("show_jet", dataset="a", index=2)]),
        score_case(case("single", call("list_artifacts")), []),
        score_case(case("none"), []),
        score_case(case("adversarial"), [call("list_artifacts")]),
    ]
    for s, times in zip(scores, [[0.1, 0.2], [0.3], [0.4], [0.5], []]):
        s["decision_seconds"] = times
    summary = summarize(scores)
    assert summary["n_cases"] == 5
    assert summary["tool_accuracy"] == pytest.approx(3 / 5)
    assert summary["argument_accuracy"] == pytest.approx(1 / 3) and summary["n_with_calls"] == 3
    assert summary["correct_refusal_rate"] == pytest.approx(1 / 2)
    assert summary["false_refusals"] == 1
    assert summary["per_category"]["single"] == {"n": 3, "tool_accuracy": 2 / 3, "argument_accuracy": 1 / 3}
    assert summary["latency"]["n_decisions"] == 5 and summary["latency"]["median_s"] == pytest.approx(0.3)
    assert summary["latency"]["p90_s"] == pytest.approx(0.46)


def test_percentile_matches_numpy_linear():
    np = pytest.importorskip("numpy")
    values = [0.3, 1.2, 0.05, 7.0, 2.2, 0.9]
    for q in (0, 50, 90, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 90) is None


# --- the suite ------------------------------------------------------------------------------------


def load_suite(name: str) -> list[dict[str, Any]]:
    lines = [line for line in SUITES[name].read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


suites = pytest.mark.parametrize("suite", list(SUITES))


def history_names(case: dict[str, Any]) -> set[str]:
    """What the case's earlier turns made or used: names a follow-up may refer to."""
    names = set()
    for turn in case.get("history") or []:
        for c in turn["calls"]:
            names |= {v for k, v in c["args"].items() if k in ("name", "dataset", "model") and isinstance(v, str)}
    return names


def _plain_values(value: Any) -> bool:
    """Values without scoring markers, which can be checked against the field's type."""
    if isinstance(value, dict):
        return False
    if isinstance(value, str):
        return not value.startswith("$")
    if isinstance(value, list):
        return all(_plain_values(v) for v in value)
    return True


@suites
def test_suite_lines_are_well_formed(suite):
    cases = load_suite(suite)
    assert len(cases) >= SIZE_MINIMUM[suite]
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "duplicate ids"
    requests = [c["request"].strip().casefold() for c in cases]
    assert len(requests) == len(set(requests)), "duplicate requests"
    for c in cases:
        assert {"id", "category", "request", "context", "expected"} <= set(c) <= {
            "id", "category", "request", "context", "expected", "history", "clarify"}, c["id"]
        assert c["category"] in CATEGORIES, c["id"]
        assert isinstance(c["request"], str) and c["request"].strip(), c["id"]
        assert {"datasets", "models", "indexes"} <= set(c["context"]) <= {"datasets", "models", "indexes", "jobs"}, (
            c["id"]
        )
        assert "jetfm-default" in c["context"]["models"], c["id"]
        assert bool(c.get("history")) == (c["category"] == "multi_turn"), c["id"]
        assert bool(c.get("clarify")) == (c["category"] == "clarify"), c["id"]
        n = len(c["expected"])
        assert {"single": n == 1, "multi": 2 <= n <= 3, "multi_turn": n >= 1}.get(c["category"], n == 0), c["id"]


def test_the_suites_share_no_request():
    requests = [{c["request"].strip().casefold() for c in load_suite(name)} for name in SUITES]
    for i, a in enumerate(requests):
        for b in requests[i + 1 :]:
            assert not a & b


@suites
def test_suite_uses_only_contract_tools_and_arguments(suite):
    for c in load_suite(suite):
        for i, expected in enumerate(c["expected"]):
            assert set(expected) == {"tool", "args"}, c["id"]
            assert expected["tool"] in TOOLS, f"{c['id']}: unknown tool {expected['tool']}"
            fields = TOOLS[expected["tool"]].args.model_fields
            for key, value in expected["args"].items():
                assert key in fields, f"{c['id']}: {expected['tool']} has no argument {key}"
                for ref in re.findall(r"\$ref:(\d+)\.(\w+)", json.dumps(value)):
                    assert int(ref[0]) < i, f"{c['id']}: $ref to a later call"
                    assert ref[1] in TOOLS[c["expected"][int(ref[0])]["tool"]].args.model_fields, c["id"]
                if key in ("dataset", "reference", "model") or (key == "index" and expected["tool"] != "show_jet"):
                    continue  # artifact names: checked against the context below, not the (empty) catalog
                if _plain_values(value):
                    field = fields[key]
                    try:
                        kind = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
                        TypeAdapter(kind).validate_python(value)
                    except ValidationError as err:
                        pytest.fail(f"{c['id']}: {expected['tool']}.{key}={value!r} is invalid: {err}")


@suites
def test_suite_refers_only_to_artifacts_in_context(suite):
    for c in load_suite(suite):
        ctx = dict(c["context"])
        made = history_names(c)
        ctx["datasets"], ctx["models"] = [*ctx["datasets"], *made], [*ctx["models"], *made]
        for expected in c["expected"]:
            args, tool = expected["args"], expected["tool"]
            for key, value in args.items():
                value = value.get("$optional") if isinstance(value, dict) else value
                if not isinstance(value, str) or value.startswith("$ref:"):
                    continue
                if key in ("dataset", "reference"):
                    assert value in ctx["datasets"], f"{c['id']}: no dataset {value} in context"
                elif key == "model" and not (tool == "finetune" and value in SIZES):
                    assert value in ctx["models"], f"{c['id']}: no model {value} in context"
                elif key == "index" and tool == "search_similar":
                    assert value in ctx["indexes"], f"{c['id']}: no index {value} in context"
                elif key == "name":
                    assert value not in {*c["context"]["datasets"], *c["context"]["models"], *ctx["indexes"]}, c["id"]
                elif key == "job_id":
                    assert re.fullmatch(JOB_ID_PATTERN, value), c["id"]
                    assert value in c["request"] or value in ctx.get("jobs", []), c["id"]
            if tool == "search_similar" and "index" not in args:
                assert ctx["indexes"] or any(e["tool"] == "build_index" for e in c["expected"]), c["id"]
            name = args.get("name")  # "... called tq_800, then fine-tune on it": later calls may use it
            if isinstance(name, str):
                ctx["datasets"], ctx["models"], ctx["indexes"] = (
                    [*ctx[kind], name] for kind in ("datasets", "models", "indexes"))


@suites
def test_suite_covers_every_tool_and_category(suite):
    cases = load_suite(suite)
    tools = Counter(e["tool"] for c in cases for e in c["expected"])
    small = ("agent_requests_fresh", "agent_requests_blind", "agent_requests_blind2", "agent_requests_blind3",
             "agent_requests_blind4", "agent_requests_blind5", "agent_requests_blind6", "agent_requests_blind7",
             "agent_requests_blind8", "agent_requests_blind9", "agent_requests_blind10",
             "agent_requests_blind11", "agent_requests_blind12", "agent_requests_blind13",
             "agent_requests_blind14", "agent_requests_blind15")
    per_tool = 1 if suite in small else 2  # small suites: each tool once
    for name in TOOLS:
        assert tools[name] >= per_tool, f"tool {name} appears {tools[name]} times"
    categories = Counter(c["category"] for c in cases)
    for category, minimum in MINIMUMS[suite].items():
        assert categories[category] >= minimum, f"{category}: {categories[category]} < {minimum}"


def test_clarify_cases_pass_only_with_a_question_and_no_call():
    c = {**case("clarify"), "clarify": True}
    assert score_case(c, [], question="Which dataset should I plot: a or b?")["tool_ok"]
    assert not score_case(c, [])["tool_ok"]
    assert not score_case(c, [call("plot_observable", dataset="a")], question=None)["tool_ok"]
    asked = score_case(case("single", call("list_artifacts")), [], question="Which one?")
    assert not asked["tool_ok"] and asked["asked"] and "asked back" in asked["reason"]
    summary = summarize([score_case(c, [], question="Which?"), asked])
    assert summary["clarify_rate"] == 1.0 and summary["needless_questions"] == 1
