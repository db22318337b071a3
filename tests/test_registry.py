"""The tool registry: every tool of the contract is typed and described, bad calls are refused with a
clear message, and the cheap tools run end to end on a tiny generated dataset."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from jetfm.tools.registry import TOOLS, ToolError, tool_schemas, validate_args
from jetfm.tools.run import run_tool

# The contract: tool -> the arguments it must accept (more may exist).
CONTRACT = {
    "list_artifacts": ["kind"],
    "generate_dataset": ["name", "processes", "n_jets", "pt_min", "pt_max", "seed"],
    "import_dataset": ["path", "name"],
    "describe_dataset": ["dataset"],
    "plot_observable": ["dataset", "observable", "by_label"],
    "show_jet": ["dataset", "index"],
    "pretrain": ["dataset", "objective", "size", "steps", "name"],
    "finetune": ["model", "dataset", "mode", "n_labels", "name"],
    "evaluate": ["model", "dataset"],
    "embed": ["model", "dataset"],
    "build_index": ["dataset", "model"],
    "search_text": ["query", "k", "dataset"],
    "search_similar": ["dataset", "index", "k"],
    "anomaly_scan": ["dataset", "model", "reference", "method"],
    "zero_shot_classify": ["dataset", "labels"],
    "job_status": ["job_id"],
}
LONG = {"generate_dataset", "pretrain", "finetune", "embed", "build_index", "anomaly_scan"}


def test_contract_tools_and_arguments_exist():
    for name, args in CONTRACT.items():
        assert name in TOOLS, name
        assert set(args) <= set(TOOLS[name].args.model_fields), name
    assert {n for n, t in TOOLS.items() if t.long_running} == LONG


def test_every_field_and_tool_is_described():
    for tool in TOOLS.values():
        assert len(tool.description) > 20, tool.name
        for field, info in tool.args.model_fields.items():
            assert info.description, f"{tool.name}.{field} has no description"


def test_targets_resolve_to_functions_taking_the_fields():
    import inspect

    for tool in TOOLS.values():
        params = inspect.signature(tool.function).parameters
        assert set(tool.args.model_fields) <= set(params), tool.name


def _literal(tool: str, field: str) -> tuple:
    annotation = TOOLS[tool].args.model_fields[field].annotation
    while typing.get_origin(annotation) is not typing.Literal:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return typing.get_args(annotation)


def test_vocabularies_match_the_operations():
    from jetfm.backbone.data.schema import PROCESSES
    from jetfm.backbone.data.summary import OBSERVABLES
    from jetfm.backbone.pretrain.base import objective_names
    from jetfm.backbone.registry import list_models
    from jetfm.retrieval.index import KINDS as INDEX_KINDS
    from jetfm.tools.models import MODES
    from jetfm.tools.workspace import KINDS

    assert _literal("generate_dataset", "processes") == PROCESSES
    assert _literal("plot_observable", "observable") == OBSERVABLES
    assert sorted(_literal("pretrain", "objective")) == objective_names()
    assert sorted(_literal("pretrain", "size")) == list_models()
    assert _literal("finetune", "mode") == MODES
    assert _literal("list_artifacts", "kind") == KINDS
    assert _literal("build_index", "kind") == INDEX_KINDS


def test_schemas_are_openai_function_json_schemas():
    schemas = json.loads(json.dumps(tool_schemas()))
    assert [s["function"]["name"] for s in schemas] == list(TOOLS)
    for entry in schemas:
        assert entry["type"] == "function"
        params = entry["function"]["parameters"]
        assert params["type"] == "object" and params["additionalProperties"] is False
        assert set(params.get("required", [])) <= set(params["properties"])
        for prop in params["properties"].values():
            assert prop["description"] and ("type" in prop or "anyOf" in prop or "enum" in prop)
    steps = next(s for s in schemas if s["function"]["name"] == "pretrain")["function"]["parameters"]
    assert steps["properties"]["steps"]["minimum"] == 1 and steps["properties"]["steps"]["maximum"] == 1_000_000
    assert steps["properties"]["objective"]["enum"] == ["mpm", "contrastive", "ntp"]


@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    [
        ("generate_dataset", {"name": "x", "n_jets": 0}, "n_jets: Input should be greater than or equal to 1"),
        (
            "generate_dataset",
            {"name": "x", "processes": ["top", "gluino"]},
            "processes.1: unknown value 'gluino'; choose from qcd, top",
        ),
        ("generate_dataset", {"name": "bad name!"}, "invalid artifact name 'bad name!'"),
        ("generate_dataset", {"name": "x", "pt_min": 700, "pt_max": 600}, "pt_min (700) must be below pt_max"),
        ("generate_dataset", {"name": "x", "n_jetz": 5}, "n_jetz: Extra inputs are not permitted"),
        ("generate_dataset", {}, "name: Field required"),
        ("pretrain", {"dataset": "d", "name": "m", "steps": 10**9}, "steps: Input should be less than or equal to"),
        (
            "pretrain",
            {"dataset": "d", "name": "m", "objective": "bert"},
            "objective: unknown value 'bert'; choose from mpm, contrastive, ntp",
        ),
        ("pretrain", {"dataset": "d", "name": "m", "device": "rm -rf /"}, "device: String should match pattern"),
        ("search_similar", {"dataset": "d", "index": "i", "k": 0}, "k: Input should be greater than or equal to 1"),
        ("describe_dataset", {"dataset": "../../etc/passwd"}, "invalid artifact name"),
        ("job_status", {"job_id": "1; DROP TABLE jobs"}, "job_id: String should match pattern"),
    ],
)
def test_bad_arguments_are_refused_clearly(tool, args, expected, tmp_path, monkeypatch):
    monkeypatch.setenv("JETFM_HOME", str(tmp_path))
    with pytest.raises(ToolError, match="bad arguments") as err:
        validate_args(tool, args)
    assert expected in str(err.value) and "Traceback" not in str(err.value)
    assert "Arguments (? = optional)" in str(err.value)


def test_unknown_tool_lists_the_tools():
    with pytest.raises(ToolError, match="unknown tool 'rm'; available tools: list_artifacts, generate_dataset"):
        run_tool("rm", {"path": "/"})


def test_search_text_in_an_empty_workspace_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("JETFM_HOME", str(tmp_path))
    with pytest.raises(ToolError, match="no dataset in the workspace yet; generate or import one first"):
        run_tool("search_text", {"query": "three-prong jets"})


# --- end to end on a tiny dataset -------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    pytest.importorskip("pythia8mc")
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("ws")
        mp.setenv("JETFM_HOME", str(root))
        args = {"name": "tiny", "processes": ["top", "qcd"], "n_jets": 20, "seed": 3}
        result = run_tool("generate_dataset", args, wait=True)
        assert result.data["n_jets"] == 20
        yield root


def test_unknown_dataset_lists_the_known_ones(workspace):
    with pytest.raises(ToolError, match="no dataset named 'nope'.*known datasets: tiny"):
        run_tool("describe_dataset", {"dataset": "nope"})


def test_describe_and_plot(workspace):
    described = run_tool("describe_dataset", {"dataset": "tiny"})
    assert "20 jets" in described.text and described.data["counts"] == {"qcd": 10, "top": 10}
    plotted = run_tool("plot_observable", {"dataset": "tiny", "observable": "tau32"})
    assert plotted.plots and Path(plotted.plots[0]).read_bytes()[:4] == b"\x89PNG"


def test_show_jet(workspace):
    shown = run_tool("show_jet", {"dataset": "tiny", "index": 3})
    assert shown.text.startswith("Jet 3 of 'tiny'") and shown.data["n_constituents"] > 0
    assert Path(shown.plots[0]).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ToolError, match=r"jet 20 is out of range: 'tiny' holds 20 jets \(0..19\)"):
        run_tool("show_jet", {"dataset": "tiny", "index": 20})


def test_import_from_the_workspace_and_list(workspace):
    shard = next((workspace / "datasets" / "tiny").glob("top-*.root")).relative_to(workspace)
    imported = run_tool("import_dataset", {"path": str(shard), "name": "just-top"})
    assert "10 jets" in imported.text
    listed = run_tool("list_artifacts", {"kind": "dataset"})
    assert [a["name"] for a in listed.data["artifacts"]] == ["tiny", "just-top"]
    assert "dataset   tiny" in listed.text and "n_jets 20" in listed.text
    with pytest.raises(ToolError, match="already in the catalog"):
        run_tool("import_dataset", {"path": str(shard), "name": "just-top"})


def test_a_path_stands_for_a_dataset_only_from_the_cli(tmp_path):
    """A person at the CLI may name a folder of jet files; the agent's calls go through the catalog
    (and import_dataset, whose path is confined to the workspace)."""
    args = {"dataset": str(tmp_path), "name": "m"}
    assert validate_args("pretrain", args, allow_paths=True).dataset == str(tmp_path)
    with pytest.raises(ToolError, match="invalid artifact name"):
        validate_args("pretrain", args)
    with pytest.raises(ToolError, match="invalid artifact name"):  # a path that does not exist is still a name
        validate_args("pretrain", {"dataset": str(tmp_path / "nope"), "name": "m"}, allow_paths=True)


def test_one_stated_pt_edge_beyond_the_default_window_moves_the_other():
    """"jets above 1 TeV" (pt_min alone) is a window starting at 1 TeV, not an error about the
    default upper edge; two stated edges in the wrong order are still refused."""
    args = validate_args("generate_dataset", {"name": "hi", "pt_min": 1000})
    assert args.pt_min == 1000 and args.pt_max > 1000
    args = validate_args("generate_dataset", {"name": "lo", "pt_max": 300})
    assert args.pt_min < 300 and args.pt_max == 300
    args = validate_args("generate_dataset", {"name": "in", "pt_min": 600})
    assert (args.pt_min, args.pt_max) == (600, 650)
    with pytest.raises(ToolError, match="pt_min"):
        validate_args("generate_dataset", {"name": "bad", "pt_min": 1000, "pt_max": 900})
