"""The workspace folder (``JETFM_HOME``): where datasets, models, plots and the catalog live."""

from __future__ import annotations

import os
from pathlib import Path

from jetfm.errors import UsageError

DEFAULT_HOME = "jetfm-workspace"
KINDS = ("dataset", "model", "embedding", "index", "plot", "job")


def workspace_root() -> Path:
    """``$JETFM_HOME`` if set, else ``./jetfm-workspace``; created on first use."""
    root = Path(os.environ.get("JETFM_HOME", DEFAULT_HOME)).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def artifact_dir(kind: str, name: str) -> Path:
    """The folder an artifact of ``kind`` named ``name`` is written to (not created here)."""
    if kind not in KINDS:
        raise UsageError(f"unknown artifact kind {kind!r}; choose from {', '.join(KINDS)}")
    return workspace_root() / ("indexes" if kind == "index" else f"{kind}s") / name


def plots_dir() -> Path:
    path = workspace_root() / "plots"
    path.mkdir(parents=True, exist_ok=True)
    return path
