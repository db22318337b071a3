"""``jetfm``: the command line, a thin layer over the operations in tools/."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from backbone.data.errors import DataError, GenerationError
from backbone.data.schema import PROCESSES
from tools.catalog import Catalog, CatalogError
from tools.registry import ToolError
from tools.result import ToolResult

# ValueError covers RetrievalError, EmbeddingError, CheckpointError and AlignmentError.
USER_ERRORS = (DataError, GenerationError, CatalogError, FileNotFoundError, ValueError, LookupError, ToolError)


def _csv_floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _positive_int(text: str) -> int:
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


def cmd_generate(args: argparse.Namespace) -> ToolResult:
    from tools.datasets import generate_dataset

    return generate_dataset(
        name=args.name,
        processes=args.processes,
        n_jets=args.n_jets,
        pt_min=args.pt_min,
        pt_max=args.pt_max,
        seed=args.seed,
        workers=args.workers,
        shard=args.shard,
        out=args.out,
        fractions=args.fractions,
        show_progress=not args.json,
    )


def cmd_describe(args: argparse.Namespace) -> ToolResult:
    from tools.datasets import describe_dataset

    return describe_dataset(args.dataset)


def cmd_import(args: argparse.Namespace) -> ToolResult:
    from tools.datasets import import_dataset

    return import_dataset(args.path, args.name)


def cmd_plot(args: argparse.Namespace) -> ToolResult:
    from tools.datasets import plot_observable

    return plot_observable(args.dataset, args.observable, by_label=not args.inclusive)


def cmd_show_jet(args: argparse.Namespace) -> ToolResult:
    from tools.datasets import show_jet

    return show_jet(args.dataset, args.entry)


def cmd_tool(args: argparse.Namespace) -> ToolResult:
    """Any registered tool by name, exactly as the agent calls it (long tools become jobs)."""
    from tools.registry import run_tool

    try:
        arguments = json.loads(args.args)
    except json.JSONDecodeError as err:
        raise ValueError(f"--args must be a JSON object, e.g. '{{\"dataset\": \"tq\"}}' ({err})") from None
    return run_tool(args.name, arguments, wait=args.wait)


def cmd_job(args: argparse.Namespace) -> ToolResult:
    from tools.jobs import cancel_job, job_status

    return cancel_job(args.job_id) if args.cancel else job_status(args.job_id)


def cmd_allow_path(args: argparse.Namespace) -> ToolResult:
    from tools.safety import allow_path

    folder = allow_path(args.folder)
    return ToolResult(text=f"Tools may now read files under {folder}.", data={"allowed": str(folder)})


def cmd_list(args: argparse.Namespace) -> ToolResult:
    from tools.registry import list_artifacts

    return list_artifacts(args.kind)


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
            return ToolResult(text="Not removed (the name did not match).")
    catalog.remove(args.name, confirm=True)
    return ToolResult(text=f"Removed {art.kind} {art.name!r} from the catalog; its files remain in {art.path}.")


def cmd_pretrain(args: argparse.Namespace) -> ToolResult:
    from tools.models import pretrain

    return pretrain(
        dataset=args.dataset,
        objective=args.objective,
        size=args.size,
        steps=args.steps,
        name=args.name,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        show_progress=not args.json,
    )


def cmd_finetune(args: argparse.Namespace) -> ToolResult:
    from tools.models import finetune

    return finetune(
        model=args.model,
        dataset=args.dataset,
        mode=args.mode,
        n_labels=args.n_labels,
        name=args.name,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        classes=args.classes.split(",") if args.classes else None,
        show_progress=not args.json,
    )


def cmd_evaluate(args: argparse.Namespace) -> ToolResult:
    from tools.models import evaluate

    return evaluate(args.model, args.dataset, signal=args.signal)


def cmd_export(args: argparse.Namespace) -> ToolResult:
    from tools.models import export

    return export(args.model, out=args.out)


def cmd_sample(args: argparse.Namespace) -> ToolResult:
    from tools.models import sample

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
    from tools.text_search import align

    return align(args.dataset, model=args.model, name=args.name, steps=args.steps, seed=args.seed)


def cmd_search(args: argparse.Namespace) -> ToolResult:
    from tools.text_search import search_text

    labels = args.labels.split(",") if args.labels else None
    return search_text(
        args.text,
        k=args.k,
        dataset=args.dataset,
        aligner=args.aligner,
        mass_min=args.mass_min,
        mass_max=args.mass_max,
        labels=labels,
    )


def cmd_zero_shot(args: argparse.Namespace) -> ToolResult:
    from tools.text_search import zero_shot_classify

    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    return zero_shot_classify(args.dataset, labels, aligner=args.aligner)


def cmd_describe_jet(args: argparse.Namespace) -> ToolResult:
    from tools.text_search import describe_jet

    return describe_jet(args.dataset, entry=args.entry, k=args.k, aligner=args.aligner)


def cmd_embed(args: argparse.Namespace) -> ToolResult:
    from tools.search import embed

    return embed(args.model, args.dataset, batch_size=args.batch_size, device=args.device, show_progress=not args.json)


def cmd_index(args: argparse.Namespace) -> ToolResult:
    from tools.search import build_index

    return build_index(args.dataset, args.model, kind=args.kind, name=args.name)


def cmd_similar(args: argparse.Namespace) -> ToolResult:
    from tools.search import search_similar

    return search_similar(
        args.dataset,
        args.index,
        entry=args.entry,
        k=args.k,
        mass_min=args.mass_min,
        mass_max=args.mass_max,
        pt_min=args.pt_min,
        pt_max=args.pt_max,
        labels=args.labels.split(",") if args.labels else None,
        query_file=args.query_file,
    )


def cmd_anomaly(args: argparse.Namespace) -> ToolResult:
    from tools.search import anomaly_scan

    return anomaly_scan(
        args.dataset, args.model, reference=args.reference, method=args.method, k=args.k, show_progress=not args.json
    )


def cmd_demo(args: argparse.Namespace) -> ToolResult:
    from tools.demo import run_demo, serve_demo

    result = run_demo(n_jets=args.n_jets, workers=args.workers)
    if args.no_serve:
        return result
    serve_demo(result, host=args.host, port=args.port, auth=args.auth, max_upload_mb=args.max_upload_mb)
    return ToolResult(text="The chat app has stopped.")


def cmd_serve(args: argparse.Namespace) -> ToolResult:
    from agent.app import serve
    from agent.cli import backend_from

    upload_bytes = args.max_upload_mb * 1024**2
    # backend: the LLM each new browser session starts with (each session may switch in the app)
    serve(host=args.host, port=args.port, auth=args.auth, max_upload_bytes=upload_bytes, backend=backend_from(args))
    return ToolResult(text="The chat app has stopped.")


def _user_password(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not (sep and user and password):
        raise argparse.ArgumentTypeError("expected USER:PASSWORD")
    return user, password


def _serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: reachable from other machines)")
    p.add_argument("--port", type=_positive_int, default=7860)
    p.add_argument("--auth", type=_user_password, default=None, metavar="USER:PASSWORD", help="ask for a password")
    p.add_argument("--max-upload-mb", type=_positive_int, default=2048, help="largest jet file one may upload")


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

    p = add("generate", cmd_generate, "generate jets with Pythia 8 + FastJet into a named dataset")
    p.add_argument("--processes", default="top,qcd", help=f"comma-separated subset of {','.join(PROCESSES)}")
    p.add_argument("--n-jets", type=_positive_int, default=1000, help="total jets, split over processes")
    p.add_argument("--name", required=True, help="dataset name in the workspace catalog")
    p.add_argument("--pt-min", type=float, default=550.0, help="jet pT window low edge [GeV]")
    p.add_argument("--pt-max", type=float, default=650.0, help="jet pT window high edge [GeV]")
    p.add_argument("--seed", type=int, default=1, help="generator seed (same seed, same jets)")
    p.add_argument("--workers", type=_positive_int, default=1, help="parallel generator processes")
    p.add_argument("--shard", default=None, help="i/N: run job i of N (batch systems)")
    p.add_argument("--out", default=None, help="output folder (default: the workspace)")
    p.add_argument("--fractions", type=_csv_floats, default=None, help="class mix, e.g. 0.1,0.9")

    p = add("describe", cmd_describe, "counts per class and observable summaries of a dataset")
    p.add_argument("dataset", help="dataset name or path to a file/folder")

    p = add("import", cmd_import, "register a ROOT/HDF5/parquet jet file as a dataset")
    p.add_argument("path")
    p.add_argument("--name", required=True)

    p = add("plot", cmd_plot, "histogram an observable of a dataset, by class")
    p.add_argument("dataset")
    p.add_argument(
        "--observable",
        default="mass",
        choices=["pt", "eta", "mass", "sdmass", "n_constituents", "tau21", "tau32"],
    )
    p.add_argument("--inclusive", action="store_true", help="one histogram for all classes")

    p = add("show-jet", cmd_show_jet, "an image of one jet's constituents in the eta-phi plane")
    p.add_argument("dataset")
    p.add_argument("--entry", type=int, default=0, help="the jet's number in the dataset")

    p = add("pretrain", cmd_pretrain, "self-supervised pretraining of a backbone on a dataset (no labels)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--objective", default="mpm", choices=["mpm", "contrastive", "ntp"])
    p.add_argument("--size", default="tiny", choices=["tiny", "small", "base"])
    p.add_argument("--steps", type=_positive_int, default=1000)
    p.add_argument("--name", required=True, help="model name in the catalog")
    p.add_argument("--batch-size", type=_positive_int, default=128)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")

    p = add("finetune", cmd_finetune, "train a jet classifier from a pretrained backbone (or from scratch)")
    p.add_argument("--model", default="jetfm-default", help="pretrained model name/folder; a size for --mode scratch")
    p.add_argument("--dataset", required=True)
    p.add_argument("--mode", default="full", choices=["linear_probe", "full", "scratch"])
    p.add_argument("--n-labels", type=_positive_int, default=None, help="labelled jets to use (balanced); default all")
    p.add_argument("--classes", default=None, help="e.g. qcd,top (default: the processes in the dataset)")
    p.add_argument("--name", required=True)
    p.add_argument("--steps", type=_positive_int, default=500)
    p.add_argument("--batch-size", type=_positive_int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")

    p = add("evaluate", cmd_evaluate, "accuracy, AUC, background rejection and ROC curve of a classifier")
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--signal", default=None, help="signal class for the ROC (default: the second of two)")

    p = add("export", cmd_export, "export a model to ONNX (checked against PyTorch with onnxruntime)")
    p.add_argument("--model", required=True)
    p.add_argument("--out", default=None)

    p = add("sample", cmd_sample, "sample new jets from a next-token (ntp) model and compare them with data")
    p.add_argument("--model", required=True)
    p.add_argument("--n-jets", type=_positive_int, default=1000)
    p.add_argument("--name", default=None, help="dataset name for the samples (default MODEL-samples)")
    p.add_argument("--reference", default=None, help="dataset to compare with (default: the training data)")
    p.add_argument("--jet-pt", type=float, default=600.0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)

    p = add("embed", cmd_embed, "embed every jet of a dataset with a backbone (resumable), with jet metadata")
    p.add_argument("--model", default="jetfm-default")
    p.add_argument("--dataset", required=True)
    p.add_argument("--batch-size", type=_positive_int, default=512)
    p.add_argument("--device", default="auto")

    p = add("index", cmd_index, "build a FAISS index (cosine) over a dataset's jet embeddings")
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", default="jetfm-default")
    p.add_argument("--kind", default="auto", choices=["auto", "flat", "hnsw", "ivfflat", "ivfpq"])
    p.add_argument("--name", default=None, help="index name (default idx-DATASET-MODEL)")

    p = add("similar", cmd_similar, "the k jets most similar to a given jet, with metadata and similarity")
    p.add_argument("--dataset", default=None, help="dataset holding the query jet")
    p.add_argument("--query-file", default=None, help="or: a ROOT/HDF5/parquet file with the query jet's constituents")
    p.add_argument("--index", required=True)
    p.add_argument("--entry", type=int, default=0, help="the query jet's number in the dataset (or file)")
    p.add_argument("-k", type=_positive_int, default=10)
    p.add_argument("--mass-min", type=float, default=None)
    p.add_argument("--mass-max", type=float, default=None)
    p.add_argument("--pt-min", type=float, default=None)
    p.add_argument("--pt-max", type=float, default=None)
    p.add_argument("--labels", default=None, help="keep only these classes, e.g. top,wqq")

    p = add("anomaly", cmd_anomaly, "score jets for anomalies (knn in embedding space, or MPM likelihood)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", default="jetfm-default")
    p.add_argument("--reference", default=None, help="background dataset for knn (default: the dataset itself)")
    p.add_argument("--method", default="knn", choices=["knn", "mpm"])
    p.add_argument("-k", type=_positive_int, default=10)

    p = add(
        "align", cmd_align, "train a CLIP-style jet-text alignment on a dataset (captions from truth + observables)"
    )
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", default="jetfm-default", help="backbone whose jet embeddings are aligned")
    p.add_argument("--name", required=True)
    p.add_argument("--steps", type=_positive_int, default=2000)
    p.add_argument("--seed", type=int, default=0)

    p = add("search", cmd_search, "find jets by a description in words")
    p.add_argument("text", help='e.g. "three-prong jets with mass near 175 GeV"')
    p.add_argument("--dataset", default=None, help="dataset to search (default: the most recent)")
    p.add_argument("-k", type=_positive_int, default=10)
    p.add_argument("--aligner", default="jetfm-align-default")
    p.add_argument("--mass-min", type=float, default=None)
    p.add_argument("--mass-max", type=float, default=None)
    p.add_argument("--labels", default=None, help="keep only these classes, e.g. top,wqq")

    p = add("zero-shot", cmd_zero_shot, "classify a dataset's jets among label phrases you choose")
    p.add_argument("--dataset", required=True)
    p.add_argument("--labels", required=True, help='comma-separated phrases, e.g. "top quark,W boson,QCD"')
    p.add_argument("--aligner", default="jetfm-align-default")

    p = add("describe-jet", cmd_describe_jet, "the descriptions in words that best match one jet")
    p.add_argument("--dataset", required=True)
    p.add_argument("--entry", type=int, default=0)
    p.add_argument("-k", type=_positive_int, default=5)
    p.add_argument("--aligner", default="jetfm-align-default")

    p = add("tool", cmd_tool, "run one of the agent's tools by name with JSON arguments")
    p.add_argument("name", help="e.g. describe_dataset, generate_dataset (see tools.registry)")
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

    p = add("list", cmd_list, "list the artifacts in the workspace catalog")
    p.add_argument("--kind", default=None, choices=["dataset", "model", "embedding", "index", "plot", "job"])

    p = add("demo", cmd_demo, "the main job: generate a small mixed sample, summarise it, search it, open the chat app")
    p.add_argument("--n-jets", type=_positive_int, default=1000)
    p.add_argument("--workers", type=_positive_int, default=2)
    p.add_argument("--no-serve", action="store_true", help="stop after the sample and searches (no chat app)")
    _serve_options(p)

    from agent.cli import register as register_agent

    register_agent(sub, add)

    p = add("serve", cmd_serve, "the chat app (Gradio): chat with the agent, search jets, add datasets")
    _serve_options(p)
    from agent.cli import backend_options

    backend_options(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Our own loggers speak at INFO; libraries (faiss, numexpr, ...) only when something is wrong.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    for package in ("backbone", "retrieval", "tools", "agent"):
        logging.getLogger(package).setLevel(logging.DEBUG if args.verbose else logging.INFO)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
