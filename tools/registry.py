"""Every operation a user or the agent can run, typed: one pydantic argument schema per tool, a
description written for an LLM, and one way to call it (``run_tool`` in tools/run.py) shared by
Python, the CLI and the agent. ``tool_schemas()`` gives the OpenAI function-calling schemas for LLM backends.

Arguments name artifacts, never paths (``import_dataset`` excepted, and its path is confined by
tools/safety.py); names of existing artifacts are checked against the catalog while validating, so
a wrong name fails before any work starts, with the list of names that exist. Long operations run
as background jobs (tools/jobs.py) unless the caller asks to wait.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from jetfm.backbone.data.classes import PROCESSES, classes_help
from jetfm.backbone.data.schema import DEFAULT_PT_WINDOW
from jetfm.errors import JetfmError, UsageError
from jetfm.tools.catalog import Catalog, CatalogError, validate_name
from jetfm.tools.result import ToolResult
from jetfm.tools.safety import clean_data, clean_text, confine_path

log = logging.getLogger(__name__)

# The vocabularies of the operations, spelled out so the schemas read on their own; a test checks
# they agree with backbone's registries (PROCESSES, OBSERVABLES, objectives, sizes, modes).
Process = Literal[PROCESSES]  # the table of jet classes (backbone/data/classes.py)
Observable = Literal["pt", "eta", "mass", "sdmass", "n_constituents", "tau21", "tau32"]
Objective = Literal["mpm", "contrastive", "ntp"]
Size = Literal["tiny", "small", "base"]
Mode = Literal["linear_probe", "mlp_probe", "full", "scratch"]
AnomalyMethod = Literal["knn", "mpm"]
ArtifactKind = Literal["dataset", "model", "embedding", "index", "plot", "job"]
IndexKind = Literal["auto", "flat", "hnsw", "ivfflat", "ivfpq"]

MAX_SEED = 2**31 - 1
DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"
JOB_ID_PATTERN = r"^job-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$"


class ToolError(JetfmError):
    """A tool call that cannot run as asked; the message says what to change (never a traceback)."""


# --- argument types --------------------------------------------------------------------------


def _new_name(value: str) -> str:
    try:
        return validate_name(value)
    except CatalogError as err:  # pydantic reports ValueErrors as field errors; a LookupError escapes
        raise UsageError(str(err)) from None


def _known(value: str, kind: str) -> str:
    _new_name(value)
    try:
        Catalog().get(value, kind=kind)
    except CatalogError as err:
        raise UsageError(str(err)) from None
    return value


def _path_allowed(value: str, info: ValidationInfo | None) -> bool:
    """A person at the CLI may name a file or folder where a catalog name is expected (the
    ``allow_paths`` validation context); the agent may not: its paths go through import_dataset."""
    context = info.context if info is not None else None
    return bool(context and context.get("allow_paths")) and Path(value).expanduser().exists()


def _dataset(value: str, info: ValidationInfo | None) -> str:
    if _path_allowed(value, info):
        return value
    return _known(value, "dataset")


def _index(value: str) -> str:
    return _known(value, "index")


def _model(value: str, info: ValidationInfo | None) -> str:
    """A model in the catalog or shipped with jetfm (by name; a folder path only from the CLI)."""
    from jetfm.tools.shipped import shipped_models

    if _path_allowed(value, info):
        return value
    _new_name(value)
    art = Catalog().find(value)
    if (art is not None and art.kind == "model") or value in shipped_models():
        return value
    known = [a.name for a in Catalog().list("model")] + shipped_models()
    raise UsageError(f"no model named {value!r}; known models: {', '.join(known)}")


NewName = Annotated[str, AfterValidator(_new_name)]
DatasetName = Annotated[str, AfterValidator(_dataset)]
ModelName = Annotated[str, AfterValidator(_model)]
IndexName = Annotated[str, AfterValidator(_index)]
Device = Annotated[str, Field(pattern=DEVICE_PATTERN)]

_DEVICE_HELP = "where to run: auto (a GPU if present), cpu, cuda, cuda:N or mps"


class ToolArgs(BaseModel):
    """Unknown arguments are refused rather than ignored, so a misspelt one is noticed."""

    model_config = ConfigDict(extra="forbid")


# --- schemas, one per tool --------------------------------------------------------------------


class ListArtifactsArgs(ToolArgs):
    kind: ArtifactKind | None = Field(None, description="only artifacts of this kind; omit to list everything")


class GenerateDatasetArgs(ToolArgs):
    name: NewName = Field(description="name of the new dataset in the catalog (letters, digits, _ - .)")
    processes: list[Process] = Field(
        ["top", "qcd"],
        min_length=1,
        max_length=len(PROCESSES),
        description="jet classes to generate: " + classes_help(),
    )
    n_jets: int = Field(1000, ge=1, le=10_000_000, description="total number of jets, split equally over processes")
    pt_min: float = Field(
        DEFAULT_PT_WINDOW[0], ge=20.0, le=6000.0,
        description="lower edge of the jet pT window [GeV]; given alone above the default window, the upper edge "
        "follows it",
    )
    pt_max: float = Field(DEFAULT_PT_WINDOW[1], gt=20.0, le=6300.0, description="upper edge of the jet pT window [GeV]")
    seed: int = Field(1, ge=0, le=MAX_SEED, description="generator seed: the same seed gives the same jets")
    workers: int = Field(1, ge=1, le=64, description="parallel generator processes")

    @model_validator(mode="after")
    def _window(self) -> GenerateDatasetArgs:
        # "jets above 1 TeV" states one edge beyond the default window: the other edge follows it,
        # keeping the default window's relative width, instead of an error about an edge nobody set
        stated = self.model_fields_set
        low, high = DEFAULT_PT_WINDOW
        if "pt_min" in stated and "pt_max" not in stated and self.pt_min >= self.pt_max:
            self.pt_max = min(float(round(self.pt_min * high / low)), 6300.0)
        elif "pt_max" in stated and "pt_min" not in stated and self.pt_min >= self.pt_max:
            self.pt_min = max(float(round(self.pt_max * low / high)), 20.0)
        if self.pt_min >= self.pt_max:
            raise UsageError(f"pt_min ({self.pt_min:g}) must be below pt_max ({self.pt_max:g})")
        return self


class ImportDatasetArgs(ToolArgs):
    path: str = Field(
        min_length=1,
        max_length=4096,
        description="a ROOT/HDF5/parquet jet file or a folder of them, inside the workspace or a folder "
        "the user registered for import; relative paths are taken from the workspace",
    )
    name: NewName = Field(description="name to register the dataset under")


class DescribeDatasetArgs(ToolArgs):
    dataset: DatasetName = Field(description="dataset name in the catalog")


class PlotObservableArgs(ToolArgs):
    dataset: DatasetName = Field(description="dataset name in the catalog")
    observable: Observable = Field(
        "mass",
        description="pt, eta, mass, sdmass (soft-drop mass), n_constituents, tau21 or tau32 (N-subjettiness ratios)",
    )
    by_label: bool = Field(True, description="one histogram per jet class (true) or one for all jets (false)")


class ShowJetArgs(ToolArgs):
    dataset: DatasetName = Field(description="dataset name in the catalog")
    index: int = Field(0, ge=0, description="the jet's number in the dataset, from 0")


class PretrainArgs(ToolArgs):
    dataset: DatasetName = Field(description="dataset to pretrain on (labels are not used)")
    objective: Objective = Field(
        "mpm",
        description="mpm (masked-particle modelling), contrastive (augmented views) or ntp (next-token, "
        "can also sample jets)",
    )
    size: Size = Field("tiny", description="backbone size: tiny (fast, CPU), small, base (GPU)")
    steps: int = Field(1000, ge=1, le=1_000_000, description="optimizer steps")
    name: NewName = Field(description="name of the new model in the catalog")
    batch_size: int = Field(128, ge=1, le=65536, description="jets per step")
    lr: float = Field(5e-4, gt=0.0, le=1.0, description="peak learning rate (AdamW, warm-up then cosine)")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed for initialisation and batching")
    device: Device = Field("auto", description=_DEVICE_HELP)


class FinetuneArgs(ToolArgs):
    model: str = Field(
        "jetfm-default",
        description="pretrained model to start from (catalog or shipped name); with mode scratch, a size "
        "(tiny/small/base) may be given instead",
    )
    dataset: DatasetName = Field(
        description="labelled dataset; a fifth of it is held out for evaluation, and a fifth of the labelled "
        "training jets validates (best step, early stopping)"
    )
    mode: Mode = Field(
        "full",
        description="full (train backbone and head), linear_probe (logistic regression on the frozen backbone's "
        "embeddings), mlp_probe (MLP head on the frozen backbone) or scratch (random init)",
    )
    n_labels: int | None = Field(
        None, ge=1, le=10_000_000, description="labelled training jets to use, balanced over classes; omit for all"
    )
    name: NewName = Field(description="name of the new classifier in the catalog")
    classes: list[Process] | None = Field(
        None, min_length=2, description="classes to separate; omit for those present in the dataset"
    )
    steps: int = Field(500, ge=1, le=1_000_000, description="optimizer steps")
    batch_size: int = Field(128, ge=1, le=65536, description="jets per step")
    lr: float = Field(
        1e-3, gt=0.0, le=1.0, description="learning rate of the head and pooling (lower backbone layers get less)"
    )
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed for the label subset, initialisation and batching")
    device: Device = Field("auto", description=_DEVICE_HELP)

    @model_validator(mode="after")
    def _model_exists(self, info: ValidationInfo) -> FinetuneArgs:
        from jetfm.backbone.registry import list_models

        if not (self.mode == "scratch" and self.model in list_models()):
            _model(self.model, info)
        return self


class EvaluateArgs(ToolArgs):
    model: ModelName = Field(description="a finetuned classifier")
    dataset: DatasetName = Field(description="labelled dataset (only its held-out split if the model trained on it)")
    signal: Process | None = Field(None, description="signal class for the ROC curve; omit for the default")


class EmbedArgs(ToolArgs):
    model: ModelName = Field("jetfm-default", description="backbone that embeds the jets")
    dataset: DatasetName = Field(description="dataset to embed")
    batch_size: int = Field(512, ge=1, le=65536, description="jets per forward pass")
    device: Device = Field("auto", description=_DEVICE_HELP)


class BuildIndexArgs(ToolArgs):
    dataset: DatasetName = Field(description="dataset to index (embedded first if needed)")
    model: ModelName = Field("jetfm-default", description="backbone whose embeddings are indexed")
    kind: IndexKind = Field("auto", description="FAISS index type; auto picks by dataset size")
    name: NewName | None = Field(None, description="index name; omit for idx-DATASET-MODEL")


class SearchTextArgs(ToolArgs):
    query: str = Field(
        min_length=1, max_length=500, description="what to look for, in words, e.g. 'three-prong jets near 175 GeV'"
    )
    k: int = Field(10, ge=1, le=1000, description="number of jets to return")
    dataset: DatasetName | None = Field(None, description="dataset to search; omit to search the most recent one")


class SearchSimilarArgs(ToolArgs):
    dataset: DatasetName = Field(description="dataset holding the query jet")
    index: IndexName | None = Field(
        None, description="index to search (see build_index); omit for the latest index built over the dataset"
    )
    k: int = Field(10, ge=1, le=1000, description="number of similar jets to return")
    entry: int = Field(0, ge=0, description="the query jet's number in the dataset, from 0")
    mass_min: float | None = Field(None, ge=0.0, description="keep only jets with mass above this [GeV]")
    mass_max: float | None = Field(None, gt=0.0, description="keep only jets with mass below this [GeV]")
    pt_min: float | None = Field(None, ge=0.0, description="keep only jets with pT above this [GeV]")
    pt_max: float | None = Field(None, gt=0.0, description="keep only jets with pT below this [GeV]")
    labels: list[Process] | None = Field(None, min_length=1, description="keep only jets of these classes")


class AnomalyScanArgs(ToolArgs):
    dataset: DatasetName = Field(description="dataset to score")
    model: ModelName = Field("jetfm-default", description="backbone (must be MPM-pretrained for method mpm)")
    reference: DatasetName | None = Field(
        None, description="background-like dataset for knn; omit to compare the dataset with itself"
    )
    method: AnomalyMethod = Field(
        "knn", description="knn (distance to nearest reference jets in embedding space) or mpm (reconstruction)"
    )
    k: int = Field(10, ge=1, le=1000, description="neighbours for knn")


class ZeroShotClassifyArgs(ToolArgs):
    dataset: DatasetName = Field(description="dataset whose jets to classify")
    labels: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=2, max_length=20, description="candidate classes described in words, e.g. 'boosted top quark jet'"
    )


class JobIdArgs(ToolArgs):
    job_id: str = Field(pattern=JOB_ID_PATTERN, description="the job id a long tool returned, e.g. job-20250101-...")


# --- adapters: the few tools that are not a plain call of an operation -------------------------


def import_confined(path: str, name: str) -> ToolResult:
    """``import_dataset`` for paths inside the workspace or a folder the user registered."""
    from jetfm.tools.datasets import import_dataset

    return import_dataset(str(confine_path(path)), name)


def search_text(query: str, k: int = 10, dataset: str | None = None) -> ToolResult:
    """Jets matching a description in words: its stated conditions applied exactly
    (retrieval.constraints), the jet-text alignment ranking what passes."""
    from jetfm.tools.text_search import search_text as run

    return run(query, k=k, dataset=dataset)


def zero_shot_classify(dataset: str, labels: list[str]) -> ToolResult:
    """Classify jets against classes described in words (jet-text alignment)."""
    from jetfm.tools.text_search import zero_shot_classify as run

    return run(dataset, labels)


# --- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[ToolArgs]
    target: str  # "module:function", imported on first call so that listing tools stays light
    long_running: bool = False

    @property
    def function(self) -> Callable[..., ToolResult]:
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)


_LONG = " Runs as a background job: returns a job id at once; poll it with job_status."

TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        Tool(
            "list_artifacts",
            "List the datasets, models, indexes, embeddings and jobs in the workspace, with key metrics.",
            ListArtifactsArgs,
            "jetfm.tools.artifacts:list_artifacts",
        ),
        Tool(
            "generate_dataset",
            "Simulate a new labelled jet dataset with Pythia 8 + FastJet (anti-kT R=0.8, |eta|<2) in a pT window."
            + _LONG,
            GenerateDatasetArgs,
            "jetfm.tools.datasets:generate_dataset",
            long_running=True,
        ),
        Tool(
            "import_dataset",
            "Register a jet file the user brought (ROOT JetClass-style, top-tagging HDF5, Aspen HDF5, parquet) "
            "as a named dataset. Only files in the workspace or in folders the user registered are allowed.",
            ImportDatasetArgs,
            "jetfm.tools.registry:import_confined",
        ),
        Tool(
            "describe_dataset",
            "Summarise a dataset: jets per class and mean/std/quantiles of pt, eta, mass, sdmass, n_constituents, "
            "tau21, tau32, overall and per class.",
            DescribeDatasetArgs,
            "jetfm.tools.datasets:describe_dataset",
        ),
        Tool(
            "plot_observable",
            "Histogram one jet observable of a dataset, one curve per class; returns the plot.",
            PlotObservableArgs,
            "jetfm.tools.datasets:plot_observable",
        ),
        Tool(
            "show_jet",
            "Draw one jet in the (delta eta, delta phi) plane, constituents sized and coloured by pT.",
            ShowJetArgs,
            "jetfm.tools.datasets:show_jet",
        ),
        Tool(
            "pretrain",
            "Self-supervised pretraining of a new transformer backbone on a dataset (no labels needed)." + _LONG,
            PretrainArgs,
            "jetfm.tools.models:pretrain",
            long_running=True,
        ),
        Tool(
            "finetune",
            "Train a jet classifier on labelled jets from a pretrained backbone (or from scratch), then report "
            "accuracy, AUC and background rejection on held-out jets with a ROC curve." + _LONG,
            FinetuneArgs,
            "jetfm.tools.models:finetune",
            long_running=True,
        ),
        Tool(
            "evaluate",
            "Accuracy, AUC, background rejection and ROC curve of a classifier on a labelled dataset.",
            EvaluateArgs,
            "jetfm.tools.models:evaluate",
        ),
        Tool(
            "embed",
            "Compute the backbone embedding of every jet of a dataset (needed by search and anomaly tools)." + _LONG,
            EmbedArgs,
            "jetfm.tools.search:embed",
            long_running=True,
        ),
        Tool(
            "build_index",
            "Build a FAISS similarity index over a dataset's jet embeddings (embeds first if needed)." + _LONG,
            BuildIndexArgs,
            "jetfm.tools.search:build_index",
            long_running=True,
        ),
        Tool(
            "search_text",
            "Find jets matching a description in words, e.g. 'two-prong jets with mass near 90 GeV'. Conditions "
            "the words state (mass, soft-drop mass, pT, eta, tau21/tau32/tau43, constituents, prongs, class) are "
            "applied exactly; the result says how they were read and how many jets passed.",
            SearchTextArgs,
            "jetfm.tools.registry:search_text",
        ),
        Tool(
            "search_similar",
            "Find the k jets in an index most similar to one jet of a dataset, optionally within mass/pT windows "
            "or classes.",
            SearchSimilarArgs,
            "jetfm.tools.search:search_similar",
        ),
        Tool(
            "anomaly_scan",
            "Score every jet of a dataset for how unusual it is and rank the most anomalous ones." + _LONG,
            AnomalyScanArgs,
            "jetfm.tools.search:anomaly_scan",
            long_running=True,
        ),
        Tool(
            "zero_shot_classify",
            "Classify the jets of a dataset into classes described in words, without training a classifier.",
            ZeroShotClassifyArgs,
            "jetfm.tools.registry:zero_shot_classify",
        ),
        Tool(
            "job_status",
            "State, progress and result of a background job.",
            JobIdArgs,
            "jetfm.tools.jobs:job_status",
        ),
        Tool(
            "cancel_job",
            "Stop a background job; what it finished writing stays valid, nothing half-written is kept.",
            JobIdArgs,
            "jetfm.tools.jobs:cancel_job",
        ),
    )
}

# Errors an operation raises for a request it cannot serve; anything else is a bug and is logged.
_USER_ERRORS = (JetfmError, OSError)


def get_tool(name: str) -> Tool:
    if name not in TOOLS:
        raise ToolError(f"unknown tool {name!r}; available tools: {', '.join(TOOLS)}")
    return TOOLS[name]


def validate_args(
    name: str, args: dict[str, Any] | None, spell: Callable[[str], str] | None = None, allow_paths: bool = False
) -> ToolArgs:
    """The arguments checked against the tool's schema; a ToolError lists every bad field, each
    named as ``spell`` writes it (the CLI passes its option names: ``--seed``). ``allow_paths`` lets
    an existing file or folder stand for a dataset or model (the CLI, never the agent)."""
    tool = get_tool(name)
    try:
        return tool.args.model_validate(args or {}, context={"allow_paths": allow_paths})
    except ValidationError as err:
        raise ToolError(_describe_errors(tool, err, spell)) from None


def _describe_errors(tool: Tool, err: ValidationError, spell: Callable[[str], str] | None = None) -> str:
    problems = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        if loc and spell is not None:
            loc = [spell(loc[0])]  # an option, not an element of it: --processes, not --processes.1
        where = ".".join(loc) or "arguments"
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "literal_error":
            expected = str(e.get("ctx", {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
            problems.append(f"{where}: unknown value {clean_text(repr(e['input']), 200)}; choose from {expected}")
        elif e["type"] in ("missing", "extra_forbidden"):
            problems.append(f"{where}: {message}")
        else:
            problems.append(f"{where}: {message} (got {clean_text(repr(e['input']), 200)})")
    if spell is not None:
        return "; ".join(problems)
    fields = ", ".join(f"{n}{'' if f.is_required() else '?'}" for n, f in tool.args.model_fields.items())
    return f"bad arguments for {tool.name}: " + "; ".join(problems) + f". Arguments (? = optional): {fields}"


def call_tool(name: str, args: dict[str, Any] | None = None) -> ToolResult:
    """Validate and run a tool here, in this process, whether long or not (what a job worker does)."""
    tool = get_tool(name)
    validated = validate_args(name, args)
    try:
        result = tool.function(**validated.model_dump())
    except ToolError:
        raise
    except _USER_ERRORS as err:
        raise ToolError(f"{name}: {err}") from None
    except Exception as err:
        log.exception("tool %s failed", name)
        raise ToolError(f"{name} failed unexpectedly ({type(err).__name__}: {err}); details are in the log") from None
    return ToolResult(text=clean_text(result.text), data=clean_data(result.data), plots=list(result.plots))


def tool_schemas() -> list[dict[str, Any]]:
    """The tools in the OpenAI function-calling format (``tools=[...]`` of a chat request)."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": _parameters(t.args)},
        }
        for t in TOOLS.values()
    ]


def _parameters(args: type[ToolArgs]) -> dict[str, Any]:
    """The JSON schema of ``args`` without pydantic's titles, which repeat the field names and cost a
    small model's context for nothing."""
    schema = args.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema
