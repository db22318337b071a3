"""The compact text form in which the embedded router reads a request and writes tool calls, shared
by the training data and the decoder so that both see exactly the same token pieces.

    Datasets: run2, tq5k
    Models: jetfm-default
    Before: describe_dataset dataset=run2
    Request: simulate 5k top and QCD jets and plot their mass
    Found: class=top,qcd; observable=mass; number=5000 jets
    Call: generate_dataset processes=top,qcd n_jets=5000 name=top-qcd-5k
    Call: plot_observable dataset=top-qcd-5k observable=mass
    Call: end

``Before:`` holds the calls of the conversation's previous turn and ``Found:`` what the request
names, typed (agent/entities.py): the model binds those to arguments.

A call is a list of *segments* (the tool name, each `` key=`` and each value); each segment is
tokenized on its own, both when training and when decoding, so that a candidate scored at decoding
time has the very tokens the model was trained on. Free text is quoted (``query="boosted W jets"``);
lists of classes are comma-joined; zero-shot labels are joined by ``|``.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from jetfm.agent.context import PlanContext
from jetfm.agent.entities import Entities, extract, hint_line
from jetfm.tools.registry import TOOLS, Tool

__all__ = ["PlanContext"]  # defined in agent/context.py; imported from here by the planner and the tests

END = "end"  # the tool name that closes a plan (alone: no tool fits the request)
CALL_PREFIX = "\nCall:"
LIST_SEP = ","
TEXT_LIST_SEP = "|"
MAX_CONTEXT_NAMES = 4  # artifacts shown in the prompt, most recent first
MAX_CONTEXT_JOBS = 2
MAX_PREVIOUS_CALLS = 2  # calls of the previous turn shown on the prompt's Before: line

FieldKind = Literal[
    "enum",
    "enum_list",
    "bool",
    "int",
    "float",
    "text",
    "text_list",
    "new_name",
    "dataset",
    "model",
    "index",
    "job",
    "device",
]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: FieldKind
    required: bool
    default: Any
    options: tuple[str, ...] = ()  # enum values
    bounds: tuple[tuple[str, float], ...] = field(default=())  # ("ge", 1), ("le", 1e7), ... from the schema

    def accepts(self, value: float) -> bool:
        """Whether a number lies within the schema's bounds (lr 256 does not)."""
        ops = {"ge": value.__ge__, "gt": value.__gt__, "le": value.__le__, "lt": value.__lt__}
        return all(ops[op](limit) for op, limit in self.bounds)


_REF_FIELDS: dict[str, FieldKind] = {
    "dataset": "dataset",
    "reference": "dataset",
    "model": "model",
    "index": "index",
    "job_id": "job",
    "device": "device",
}


def _strip_optional(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _base(annotation: Any) -> Any:
    """``Annotated[X, ...]`` -> X."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def field_spec(tool: Tool, name: str) -> FieldSpec:
    info = tool.args.model_fields[name]
    ann = _base(_strip_optional(info.annotation))
    origin = typing.get_origin(ann)
    required = info.is_required()
    default = None if required else info.default
    if origin is Literal:
        return FieldSpec(name, "enum", required, default, tuple(typing.get_args(ann)))
    if origin is list:
        item = _base(typing.get_args(ann)[0])
        if typing.get_origin(item) is Literal:
            return FieldSpec(name, "enum_list", required, default, tuple(typing.get_args(item)))
        return FieldSpec(name, "text_list", required, default)
    if ann is bool:
        return FieldSpec(name, "bool", required, default)
    if ann in (int, float):
        bounds = tuple(
            (op, float(getattr(m, op))) for m in info.metadata for op in ("ge", "gt", "le", "lt") if hasattr(m, op)
        )
        return FieldSpec(name, "int" if ann is int else "float", required, default, bounds=bounds)
    if name == "name":
        return FieldSpec(name, "new_name", required, default)
    if name in _REF_FIELDS:
        return FieldSpec(name, _REF_FIELDS[name], required, default)
    return FieldSpec(name, "text", required, default)


def tool_fields(tool_name: str) -> list[FieldSpec]:
    """The fields of a tool in the order the router writes them: schema order, ``name`` last (so that
    an automatic name can be derived from the arguments before it)."""
    tool = TOOLS[tool_name]
    specs = [field_spec(tool, n) for n in tool.args.model_fields]
    return [s for s in specs if s.name != "name"] + [s for s in specs if s.name == "name"]


def router_tools() -> list[str]:
    return list(TOOLS)


# --- rendering --------------------------------------------------------------------------------


def prompt_text(request: str, context: PlanContext | None = None, entities: Entities | None = None) -> str:
    """The router's prompt: the workspace, the previous turn's calls (``Before:``), the request and
    what it names, typed (``Found:``, agent/entities.py)."""
    context = context or PlanContext()
    entities = entities if entities is not None else extract(request, context)
    lines = []
    if context.datasets:
        lines.append("Datasets: " + ", ".join(context.datasets[:MAX_CONTEXT_NAMES]))
    if context.models:
        lines.append("Models: " + ", ".join(context.models[:MAX_CONTEXT_NAMES]))
    if context.jobs:
        lines.append("Jobs: " + ", ".join(context.jobs[:MAX_CONTEXT_JOBS]))
    if context.previous:
        lines.append("Before: " + " | ".join(call_text(c) for c in context.previous[-MAX_PREVIOUS_CALLS:]))
    lines.append("Request: " + " ".join(request.split()))
    found = hint_line(entities)
    if found:
        lines.append("Found: " + found)
    return "\n".join(lines) + CALL_PREFIX


def call_text(call: dict[str, Any]) -> str:
    """One call on one line, as the router writes it: ``plot_observable dataset=run2 observable=mass``."""
    return "".join(call_segments(call["tool"], call.get("args") or {})).removesuffix(CALL_PREFIX).strip()


def format_number(value: float | int) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"


def value_segments(spec: FieldSpec, value: Any) -> list[str]:
    """A value as the decoder produces it: one segment per list item (the separator leading each
    item after the first), quotes as their own segments around free text."""
    if spec.kind == "enum_list":
        return [str(v) if i == 0 else LIST_SEP + str(v) for i, v in enumerate(value)]
    if spec.kind == "bool":
        return ["true" if value else "false"]
    if spec.kind in ("int", "float"):
        return [format_number(value)]
    if spec.kind == "text":
        return ['"', _clean_text(str(value)), '"']
    if spec.kind == "text_list":
        return ['"', TEXT_LIST_SEP.join(_clean_text(str(v)) for v in value), '"']
    return [str(value)]


def _clean_text(text: str) -> str:
    return " ".join(text.replace('"', "'").replace(TEXT_LIST_SEP, "/").split())


def call_segments(tool: str, args: dict[str, Any]) -> list[str]:
    """One call after ``Call:``: `` tool``, then `` key=`` and the value segments per argument (in the
    router's field order), then the newline and ``Call:`` that open the next decision."""
    segs = [" " + tool]
    if tool != END:
        for spec in tool_fields(tool):
            if spec.name in args and args[spec.name] is not None:
                segs.append(f" {spec.name}=")
                segs.extend(value_segments(spec, args[spec.name]))
        segs.append(CALL_PREFIX)
    return segs


def plan_segments(calls: list[dict[str, Any]]) -> list[str]:
    segs: list[str] = []
    for call in calls:
        segs.extend(call_segments(call["tool"], call["args"]))
    segs.extend(call_segments(END, {}))
    return segs


# --- automatic names for new artifacts --------------------------------------------------------


def human_count(n: int) -> str:
    """5000 -> 5k, 2500000 -> 2.5M: how physicists name samples."""
    for div, suffix in ((1_000_000, "M"), (1000, "k")):
        if n >= div and n % (div // 10) == 0:
            return f"{n / div:g}{suffix}"
    return str(n)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:60] or "x"


def auto_name(tool: str, args: dict[str, Any], taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A readable, unique name for what ``tool`` creates, derived from its other arguments."""
    defaults = {s.name: s.default for s in tool_fields(tool)}
    get = lambda key: args.get(key, defaults.get(key))  # noqa: E731
    if tool == "generate_dataset":
        base = "-".join(get("processes") or ["top", "qcd"]) + "-" + human_count(int(get("n_jets") or 1000))
    elif tool == "import_dataset":
        base = re.split(r"[\\/]", str(get("path")).rstrip("/\\"))[-1].rsplit(".", 1)[0]
    elif tool == "pretrain":
        base = f"{get('objective')}-{get('size')}-{get('dataset')}"
    elif tool == "finetune":
        labels = get("n_labels")
        base = f"{get('mode')}-{get('dataset')}" + (f"-{human_count(int(labels))}" if labels else "")
    else:
        base = f"{tool}-{get('dataset') or 'out'}"
    base = _slug(base)
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def catalog_context() -> PlanContext:
    """The workspace's artifacts, most recent first, and its unfinished jobs."""
    from jetfm.tools.catalog import Catalog
    from jetfm.tools.jobs import JobStore
    from jetfm.tools.shipped import shipped_models

    arts = sorted(Catalog().list(), key=lambda a: a.created, reverse=True)
    of = lambda kind: [a.name for a in arts if a.kind == kind]  # noqa: E731
    jobs = [
        j.id
        for j in sorted(JobStore().list_jobs(), key=lambda j: j.created, reverse=True)
        if j.state in ("queued", "running")
    ]
    return PlanContext(datasets=of("dataset"), models=of("model") + shipped_models(), indexes=of("index"), jobs=jobs)
