"""The router's training data (agent/training/): the generator's examples are valid calls of the
tool contract that state only what the request says; no request of either evaluation suite appears
in the shipped training data, even near-verbatim; and the runtime never imports the training code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from jetfm.agent.callformat import PlanContext
from jetfm.agent.training import tables
from jetfm.agent.training.generator import CLASS_WORDS, SuiteFilter, build_examples, near_verbatim, skeleton
from jetfm.tools.registry import TOOLS, validate_args

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "agent" / "adapters" / "smollm2-router" / "train.jsonl"
RUNTIME = ["router.py", "planner.py", "graph.py", "chat_model.py", "app.py", "app_chat.py", "app_data.py",
           "app_search.py", "cli.py", "llm.py", "entities.py", "lexicon.py", "numbers.py", "callformat.py",
           "answers.py", "context.py", "tools.py", "backends.py", "prompts.py"]


@pytest.fixture(scope="module")
def examples():
    return build_examples(400, seed=7)


def test_examples_are_valid_calls_that_state_only_what_was_said(examples, tmp_path, monkeypatch):
    from jetfm.agent.entities import extract

    monkeypatch.setenv("JETFM_HOME", str(tmp_path))
    kinds = {"single": 0, "multi": 0, "follow-up": 0, "refusal": 0}
    for ex in examples:
        calls, ctx = ex["calls"], ex["context"]
        kinds["refusal" if not calls else "follow-up" if ctx.previous else "multi" if len(calls) > 1 else "single"] += 1
        said = {n.value for n in extract(ex["request"], ctx).numbers}
        said |= {float(v) for c in ctx.previous for v in c["args"].values() if isinstance(v, (int, float))}
        for call in calls:
            assert call["tool"] in TOOLS
            fields = TOOLS[call["tool"]].args.model_fields
            assert set(call["args"]) <= set(fields), ex
            for key, value in call["args"].items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    assert float(value) in said, (ex["request"], key, value)  # never a number not written
    assert all(n >= 20 for n in kinds.values()), kinds


def test_the_tables_cover_every_tool_and_class_words_come_from_the_classes_table():
    from jetfm.agent.lexicon import class_phrases

    assert set(tables.TEMPLATES) == set(TOOLS)
    for name, words in CLASS_WORDS.items():
        assert set(words) <= set(class_phrases()[name])


def test_no_suite_request_is_in_the_training_data_even_near_verbatim():
    rows = [json.loads(line) for line in TRAIN.read_text().splitlines() if line.strip()]
    held_out = SuiteFilter()
    leaked = [r["request"] for r in rows if held_out(r["request"])]
    assert not leaked, leaked[:10]
    assert len(rows) >= 2000


def test_near_verbatim_ignores_names_and_numbers_but_not_phrasing():
    assert skeleton("Describe run2!") == skeleton("describe tq5k")
    assert near_verbatim("plot the jet mass of run2", "Plot the jet mass of hbb_2k")
    assert near_verbatim("generate 5k top and QCD jets", "generate 20000 top and qcd jets")
    assert not near_verbatim("plot the jet mass of run2", "histogram the soft-drop mass in run2 by class")


def test_the_runtime_does_not_import_the_training_code():
    for name in RUNTIME:
        tree = ast.parse((ROOT / "agent" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert "training" not in node.module.split("."), f"agent/{name} imports {node.module}"
            if isinstance(node, ast.Import):
                assert not any("training" in a.name.split(".") for a in node.names), f"agent/{name}"
    code = ("import sys, jetfm.agent.graph, jetfm.agent.planner, jetfm.agent.router, jetfm.agent.app; "
            "print(sorted(m for m in sys.modules if m.startswith('jetfm.agent.training')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]"


def test_the_generator_rebuilds_the_same_data_from_the_same_seed():
    a = build_examples(30, seed=3)
    b = build_examples(30, seed=3)
    assert [x["request"] for x in a] == [x["request"] for x in b]
    ctx = a[0]["context"]
    assert isinstance(ctx, PlanContext)
    for ex in a:
        for call in ex["calls"]:
            if call["tool"] in ("job_status", "cancel_job"):
                validate_args(call["tool"], call["args"])
