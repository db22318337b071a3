"""What the workspace holds, for people and the agent: catalog artifacts and background jobs."""

from __future__ import annotations

from typing import Any

from jetfm.tools.catalog import Catalog
from jetfm.tools.jobs import JobStore
from jetfm.tools.manifest import artifact_problems
from jetfm.tools.result import ToolResult


def list_artifacts(kind: str | None = None) -> ToolResult:
    """Catalog artifacts (all kinds but jobs) and background jobs in every state."""
    catalog = Catalog()
    arts = [] if kind == "job" else [a for a in catalog.list(kind) if a.kind != "job"]
    # Flag what cannot be used as listed; an embedding or index is judged by its dataset too.
    problems = artifact_problems([*arts, *catalog.list("dataset")]) if arts else {}
    jobs = JobStore().list_jobs() if kind in (None, "job") else []
    lines = [
        f"{a.kind:9s} {a.name:28s} {_headline_metrics(a.metrics)}".rstrip()
        + (f"  !! {problems[a.name]}" if a.name in problems else "")
        for a in arts
    ]
    lines += [f"job       {j.id:28s} {j.tool} {j.summary()}" for j in jobs]
    artifacts = [{**a.to_dict(), "problem": problems.get(a.name)} for a in arts]
    data = {"artifacts": artifacts, "jobs": [j.to_dict() for j in jobs]}
    empty = f"no artifacts of kind {kind} yet" if kind else "the workspace is empty"
    return ToolResult(text="\n".join(lines) or empty, data=data)


def _headline_metrics(metrics: dict[str, Any]) -> str:
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and "/" not in k}
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in list(shown.items())[:3])
