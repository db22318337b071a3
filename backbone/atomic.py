"""Atomic writes: a file or folder appears whole or not at all, so an interrupted run never leaves
a half-written file where a good one was (or was expected)."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# The layout version of every artifact file jetfm writes (model folders, embeddings, indexes); a
# reader refuses a file newer than the version it knows.
FORMAT_VERSION = 1


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary sibling of ``path`` to write; renamed over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    return write_text(path, json.dumps(payload, indent=2, default=str) + "\n")


def new_figure(*grid: int, **subplots: Any) -> tuple[Any, Any]:
    """A figure and its axes (``subplots`` as for ``plt.subplots``) made without pyplot: pyplot keeps
    global state, so figures drawn from several threads at once (the chat app) would mix."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=subplots.pop("figsize", None))
    return fig, fig.subplots(*grid, **subplots)


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure (PNG by the suffix) atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return Path(path)


def replace_folder(staging: Path, folder: Path) -> None:
    """Renames the finished ``staging`` folder to ``folder``. An existing folder is first renamed aside
    (``.NAME.old-*``) and deleted once the new one is in place. While the two renames run, a journal
    beside them (``.NAME.swap``) names both, so a crash between them is finished by the next
    :func:`recover_folder`, which every open of such a folder runs."""
    recover_folder(folder)
    if not folder.exists():
        staging.rename(folder)
        return
    old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
    journal = _journal(folder)
    write_json(journal, {"staging": str(staging), "old": old.name, "pid": os.getpid(), "thread": threading.get_ident()})
    folder.rename(old)
    staging.rename(folder)
    journal.unlink()
    shutil.rmtree(old, ignore_errors=True)


# A staging folder whose name carries no process id counts as abandoned after this long.
STALE_STAGING_S = 3600.0
_SWAP_WAIT_S = 1.0
_STAGING_PID = re.compile(r"(\d+)(?:-.*)?")  # the suffix of .NAME.tmp-PID or .NAME.tmp-PID-RANDOM


def recover_folder(folder: str | os.PathLike) -> Path:
    """Puts ``folder`` back in a consistent state after a writer died in :func:`replace_folder`: a
    swap cut between its two renames is finished (the new copy was complete) or, when the new copy
    is gone too, rolled back to the old one. Then removes what earlier writes left beside it:
    renamed-aside copies (``.NAME.old-*``) and staging folders (``.NAME.tmp-*``) of processes that
    are gone. A swap another live writer is in the middle of is left to it."""
    folder = Path(folder)
    parent = folder.parent
    if not parent.is_dir():
        return folder
    journal = _journal(folder)
    if journal.exists():
        info = _read_journal(journal)
        deadline = time.monotonic() + _SWAP_WAIT_S
        while info is not None and _swap_running(info):
            if time.monotonic() > deadline:
                return folder
            time.sleep(0.01)
            info = _read_journal(journal)
        if info is not None and not folder.exists():
            staging, old = Path(info["staging"]), parent / info["old"]
            if staging.is_dir():
                staging.rename(folder)
            elif old.is_dir():
                old.rename(folder)
        journal.unlink(missing_ok=True)
    prefix = glob.escape(f".{folder.name}")
    olds = sorted(parent.glob(f"{prefix}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds and not folder.exists():
        olds.pop().rename(folder)  # a crash between the renames of a swap that kept no journal: roll back
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)
    for staging in parent.glob(f"{prefix}.tmp-*"):
        if staging.is_dir() and _abandoned(staging, staging.name[len(folder.name) + 6 :]):
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _journal(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.swap")


def _read_journal(journal: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(journal.read_text())
        return info if {"staging", "old", "pid"} <= set(info) else None
    except (OSError, ValueError, TypeError):  # gone meanwhile (the swap finished), or not ours
        return None


def _swap_running(info: dict[str, Any]) -> bool:
    """Whether the writer named in a journal may still be between its renames."""
    if info["pid"] != os.getpid():
        return process_alive(int(info["pid"]))
    # This process: another thread may be mid-swap; this thread, here, is not.
    return info.get("thread") != threading.get_ident() and any(
        t.ident == info.get("thread") for t in threading.enumerate()
    )


def _abandoned(staging: Path, suffix: str) -> bool:
    """Whether a staging folder (``.NAME.tmp-SUFFIX``) was left by a writer that is gone."""
    match = _STAGING_PID.fullmatch(suffix)
    if match is not None:
        pid = int(match.group(1))
        return pid != os.getpid() and not process_alive(pid)
    try:
        return time.time() - staging.stat().st_mtime > STALE_STAGING_S
    except OSError:
        return False


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` is running on this machine (an exited, unreaped one is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # an exited process its parent has not reaped still answers kill(pid, 0); Linux tells via /proc
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@contextmanager
def staged_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yields an empty temporary sibling of ``folder`` to fill; it replaces ``folder`` (through
    ``replace_folder``) only if the block succeeds, and is removed otherwise."""
    import tempfile

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder; choose another path")
    folder.parent.mkdir(parents=True, exist_ok=True)
    # The process id in the name tells recover_folder whether its writer is still alive.
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-{os.getpid()}-", dir=folder.parent))
    try:
        yield staging
        replace_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
