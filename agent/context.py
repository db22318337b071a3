"""What a request is planned against: the workspace's artifacts and the conversation so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PlanContext:
    """The artifacts a request may refer to, most recent first (the catalog, plus what earlier calls
    of the conversation created), and the calls of the conversation's previous turn (``previous``,
    in the order they ran), which "it", "that job" and "do the same" refer to."""

    datasets: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    previous: list[dict[str, Any]] = field(default_factory=list)
    # what the conversation's calls made, most recent first, with the tool that made each: "the model
    # you pretrained" (two turns back) is the last a pretraining made, not the last model named
    created: list[tuple[str, str]] = field(default_factory=list)


class NeedsAnswer(Exception):
    """A required argument the request does not ground (no dataset named, none made, none in the
    conversation): the router asks back instead of guessing; the message is the question."""


_MADE = {"generate_dataset": "datasets", "import_dataset": "datasets", "pretrain": "models", "finetune": "models"}
_USED = {"dataset": "datasets", "reference": "datasets", "model": "models", "index": "indexes"}


def after_turn(context: PlanContext, calls: list[dict[str, Any]], jobs: list[str] = ()) -> PlanContext:
    """``context`` once a turn made ``calls``: what they made or used comes first (most recent
    first), the jobs they started first among the jobs, and they become the previous turn."""
    lists = {"datasets": list(context.datasets), "models": list(context.models), "indexes": list(context.indexes)}
    created = list(context.created)
    for call in calls:
        args, tool = call.get("args") or {}, call.get("tool")
        named: list[tuple[str, Any]] = [(kind, args.get(key)) for key, kind in _USED.items()]
        made: Any = None
        if tool in _MADE:
            made = args.get("name")
            named.append((_MADE[tool], made))
        if tool == "build_index" and args.get("dataset"):
            made = args.get("name") or f"idx-{args['dataset']}-{args.get('model') or 'jetfm-default'}"
            named.append(("indexes", made))
        for kind, name in named:
            if isinstance(name, str) and name:
                lists[kind] = [name, *[n for n in lists[kind] if n != name]]
        if isinstance(made, str) and made:
            created = [(tool, made), *[c for c in created if c[1] != made]]
    started = [j for j in jobs if j]
    return PlanContext(
        datasets=lists["datasets"],
        models=lists["models"],
        indexes=lists["indexes"],
        jobs=[*started, *[j for j in context.jobs if j not in started]],
        previous=[dict(c) for c in calls],
        created=created,
    )
