"""``jetfm``: the command line, a thin layer over the operations in tools/."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from jetfm.errors import JetfmError, UsageError
from jetfm.tools.catalog import Catalog, CatalogError
from jetfm.tools.cli_args import CliSpec, add_tool_arguments, validated
from jetfm.tools.registry import get_tool
from jetfm.tools.result import ToolResult

# A user error (JetfmError) or the system refusing a file (OSError names it) is shown in one line;
# anything else is a bug and keeps its traceback.
USER_ERRORS = (JetfmError, OSError)


def _csv_floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _emit(result: ToolResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.data, indent=2, default=str))
        return
    print(result.text)
    for plot in result.plots:
        print(f"plot: {plot}")


def cmd_tool(args: argparse.Namespace) -> ToolResult:
    """Any registered tool by name, exactly as the agent calls it (long tools become jobs)."""
    from jetfm.tools.run import run_tool

    try:
        arguments = json.loads(args.args)
    except json.JSONDecodeError as err:
        raise UsageError(f"--args must be a JSON object, e.g. '{{\"dataset\": \"tq\"}}' ({err})") from None
    return run_tool(args.name, arguments, wait=args.wait)


def cmd_job(args: argparse.Namespace) -> ToolResult:
    from jetfm.tools.jobs import cancel_job, job_status

    return cancel_job(args.job_id) if args.cancel else job_status(args.job_id)


def cmd_allow_path(args: argparse.Namespace) -> ToolResult:
    from jetfm.tools.safety import allow_path

    folder = allow_path(args.folder)
    return ToolResult(text=f"Tools may now read files under {folder}.", data={"allowed": str(folder)})


def cmd_remove(args: argparse.Namespace) -> ToolResult:
    """Forget an artifact; only a person can do this (the agent has no such tool), and only after
    typing its name again (or --yes in scripts)."""
    catalog = Catalog()
    art = catalog.get(args.name)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CatalogError(f"removing {args.name!r} needs confirmation: run in a terminal, or add --yes")
        typed = input(f"Remove {art.kind} {art.name!r} from the catalog (files stay in {art.path})? Type its name: ")
        if typed.strip() != art.name:
            # An error, not a result: a script (or a person) must not read "nothing removed" as success.
            raise UsageError(f"not removed: you typed {typed.strip()!r}, not {art.name!r}; the catalog is unchanged")
    catalog.remove(args.name, confirm=True)
    return ToolResult(text=f"Removed {art.kind} {art.name!r} from the catalog; its files remain in {art.path}.")


def cmd_export(args: argparse.Namespace) -> ToolResult:
    from jetfm.tools.models import export

    return export(args.model, out=args.out)


def cmd_sample(args: argparse.Namespace) -> ToolResult:
    from jetfm.tools.models import sample

    return sample(
        args.model,
        n_jets=args.n_jets,
        name=args.name,
        reference=args.reference,
        jet_pt=args.jet_pt,
        temperature=args.temperature,
        seed=args.seed,
    )


def cmd_align(args: argparse.Namespace) -> ToolResult:
    from jetfm.tools.text_search import align

    return align(args.dataset, model=args.model, name=args.name, steps=args.steps, seed=args.seed)


def cmd_describe_jet(args: argparse.Namespace) -> ToolResult:
    from jetfm.tools.text_search import describe_jet

    return describe_jet(args.dataset, entry=args.entry, k=args.k, aligner=args.aligner)


# --- commands that are typed tools: their options come from the tool's schema ----------------------


def _generate_extras(p: argparse.ArgumentParser) -> None:
    # Batch-system and file-layout options: for people at a terminal or a scheduler, not the agent.
    p.add_argument("--shard", default=None, help="i/N: run job i of N (batch systems)")
    p.add_argument("--out", default=None, help="output folder (default: the workspace)")
    p.add_argument("--fractions", type=_csv_floats, default=None, help="class mix, e.g. 0.1,0.9")


def _search_extras(p: argparse.ArgumentParser) -> None:
    _aligner_extra(p)
    p.add_argument("--mass-min", type=float, default=None, help="keep only jets with mass above this [GeV]")
    p.add_argument("--mass-max", type=float, default=None, help="keep only jets with mass below this [GeV]")
    p.add_argument("--labels", type=_csv, default=None, help="keep only these classes, e.g. top,wqq")


def _aligner_extra(p: argparse.ArgumentParser) -> None:
    p.add_argument("--aligner", default="jetfm-align-default", help="jet-text alignment (catalog or shipped name)")


def _similar_extras(p: argparse.ArgumentParser) -> None:
    p.add_argument("--query-file", default=None, help="the query jet from a ROOT/HDF5/parquet file (with --index)")


def _plot_extras(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inclusive", dest="tool__by_label", action="store_false", help="one histogram for all classes")


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


@dataclass(frozen=True)
class ToolCommand:
    """A CLI command over one typed tool: its options are the tool's schema fields, plus ``extras``
    that only a person at a terminal needs (read by ``extra_names``), run in this process."""

    command: str
    spec: CliSpec
    help: str
    extras: Callable[[argparse.ArgumentParser], None] | None = None
    extra_names: tuple[str, ...] = ()
    target: str | None = None  # "module:function" when the CLI calls something other than the tool's target


TOOL_COMMANDS = (
    ToolCommand(
        "generate",
        CliSpec("generate_dataset"),
        "generate jets with Pythia 8 + FastJet into a named dataset",
        _generate_extras,
        ("shard", "out", "fractions"),
    ),
    ToolCommand("describe", CliSpec("describe_dataset", positional=("dataset",)), "counts per class and observables"),
    # A person may import any file they can read; the agent's import_dataset is confined to the workspace.
    ToolCommand(
        "import",
        CliSpec("import_dataset", positional=("path",)),
        "register a ROOT/HDF5/parquet jet file as a dataset",
        target="jetfm.tools.datasets:import_dataset",
    ),
    ToolCommand(
        "plot",
        CliSpec("plot_observable", positional=("dataset",)),
        "histogram an observable of a dataset, by class",
        _plot_extras,
    ),
    ToolCommand(
        "show-jet",
        CliSpec("show_jet", positional=("dataset",), renames={"index": "entry"}),
        "an image of one jet's constituents in the eta-phi plane",
    ),
    ToolCommand("pretrain", CliSpec("pretrain"), "self-supervised pretraining of a backbone on a dataset (no labels)"),
    ToolCommand("finetune", CliSpec("finetune"), "train a jet classifier from a pretrained backbone (or from scratch)"),
    ToolCommand("evaluate", CliSpec("evaluate"), "accuracy, AUC, background rejection and ROC curve of a classifier"),
    ToolCommand("embed", CliSpec("embed"), "embed every jet of a dataset with a backbone (resumable), with metadata"),
    ToolCommand("index", CliSpec("build_index"), "build a FAISS index (cosine) over a dataset's jet embeddings"),
    ToolCommand(
        "similar",
        CliSpec("search_similar", filled=("dataset",)),  # with --query-file, the index's dataset
        "the k jets most similar to a given jet, with metadata and similarity",
        _similar_extras,
        ("query_file",),
        target="jetfm.tools.cli:run_similar",
    ),
    ToolCommand("anomaly", CliSpec("anomaly_scan"), "score jets for anomalies (knn in embedding space, or MPM)"),
    ToolCommand(
        "search",
        CliSpec("search_text", positional=("query",)),
        "find jets by a description in words",
        _search_extras,
        ("aligner", "mass_min", "mass_max", "labels"),
        target="jetfm.tools.text_search:search_text",
    ),
    ToolCommand(
        "zero-shot",
        CliSpec("zero_shot_classify"),
        "classify a dataset's jets among label phrases you choose (comma-separated)",
        _aligner_extra,
        ("aligner",),
        target="jetfm.tools.text_search:zero_shot_classify",
    ),
    ToolCommand("list", CliSpec("list_artifacts"), "list the artifacts in the workspace catalog"),
)


def run_similar(dataset: str, query_file: str | None = None, **options: Any) -> ToolResult:
    """``search_similar``; with ``--query-file`` the query jet comes from a file, not the dataset."""
    from jetfm.tools.search import search_similar

    return search_similar(None if query_file else dataset, query_file=query_file, **options)


def run_tool_command(args: argparse.Namespace) -> ToolResult:
    command: ToolCommand = args.tool_command
    if command.command == "similar" and args.query_file and not hasattr(args, "tool__dataset"):
        # The query jet is in a file: the dataset only names the index to search, which must be given.
        if not hasattr(args, "tool__index"):
            raise UsageError("with --query-file, give the index to search with --index")
        args.tool__dataset = _index_dataset(args.tool__index)
    values = validated(args, command.spec)
    values.update({name: getattr(args, name) for name in command.extra_names})
    target = command.target or get_tool(command.spec.tool).target
    module, attr = target.split(":")
    function = getattr(importlib.import_module(module), attr)
    if "show_progress" in inspect.signature(function).parameters:
        values["show_progress"] = not args.json
    return function(**values)


def _index_dataset(index: str) -> str:
    art = Catalog().get(index, kind="index")
    datasets = [p for p in art.parents if (found := Catalog().find(p)) is not None and found.kind == "dataset"]
    if not datasets:
        raise UsageError(f"index {index!r} has no dataset in its lineage; give --dataset")
    return datasets[0]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jetfm", description="A foundation model for jets and an assistant that drives it."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], ToolResult], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=func)
        return p

    for command in TOOL_COMMANDS:
        p = add(command.command, run_tool_command, command.help)
        p.set_defaults(tool_command=command)
        add_tool_arguments(p, command.spec)
        if command.extras:
            command.extras(p)

    p = add("export", cmd_export, "export a model to ONNX (checked against PyTorch with onnxruntime)")
    p.add_argument("--model", required=True)
    p.add_argument("--out", default=None)

    p = add("sample", cmd_sample, "sample new jets from a next-token (ntp) model and compare them with data")
    p.add_argument("--model", required=True)
    p.add_argument("--n-jets", type=positive_int, default=1000)
    p.add_argument("--name", default=None, help="dataset name for the samples (default MODEL-samples)")
    p.add_argument("--reference", default=None, help="dataset to compare with (default: the training data)")
    p.add_argument("--jet-pt", type=float, default=600.0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)

    p = add(
        "align", cmd_align, "train a CLIP-style jet-text alignment on a dataset (captions from truth + observables)"
    )
    p.add_argument("--dataset", required=True, help="labelled jets to caption (truth + observables) and align")
    p.add_argument("--model", default="jetfm-default", help="backbone whose jet embeddings are aligned")
    p.add_argument("--name", required=True, help="name of the new alignment in the catalog")
    p.add_argument("--steps", type=positive_int, default=2000, help="training steps of the projection heads")
    p.add_argument("--seed", type=int, default=0, help="seed for captions, batches and initialisation")

    p = add("describe-jet", cmd_describe_jet, "the descriptions in words that best match one jet")
    p.add_argument("--dataset", required=True)
    p.add_argument("--entry", type=int, default=0)
    p.add_argument("-k", type=positive_int, default=5)
    p.add_argument("--aligner", default="jetfm-align-default")

    p = add("tool", cmd_tool, "run one of the agent's tools by name with JSON arguments")
    p.add_argument("name", help="e.g. describe_dataset, generate_dataset (see jetfm.tools.registry)")
    p.add_argument("--args", default="{}", help='JSON object, e.g. \'{"dataset": "tq"}\'')
    p.add_argument("--wait", action="store_true", help="run a long tool here instead of as a background job")

    p = add("job", cmd_job, "status of a background job (progress, result), or cancel it")
    p.add_argument("job_id")
    p.add_argument("--cancel", action="store_true")

    p = add("allow-path", cmd_allow_path, "let the tools (and the agent) read files under a folder")
    p.add_argument("folder")

    p = add("remove", cmd_remove, "forget an artifact (asks you to type its name; files stay on disk)")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="no question (for scripts)")

    # Layers above tools/ (the agent, the chat app, the demo that ends in it) add their commands
    # through the "jetfm.cli" entry point, so tools/ never imports them.
    for plugin in entry_points(group="jetfm.cli"):
        plugin.load()(sub, add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Our own loggers speak at INFO; libraries (faiss, numexpr, ...) only when something is wrong.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("jetfm").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        result = args.func(args)
    except USER_ERRORS as err:
        if args.verbose:
            raise
        print(f"jetfm {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"jetfm {args.command}: interrupted; finished shards are kept, rerun to complete", file=sys.stderr)
        return 130
    _emit(result, args.json)
    if "torch" in sys.modules:  # a command that never imported torch never joined a process group
        from jetfm.backbone.train import finish_distributed

        finish_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
