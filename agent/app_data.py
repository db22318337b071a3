"""The data side of the app: registering an uploaded jet file as a dataset, and the background-jobs
panel. Both go through the registry's tools (import_dataset, job_status, cancel_job)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from jetfm.backbone.atomic import atomic_path
from jetfm.backbone.data.errors import DataError
from jetfm.backbone.data.readers import detect_format
from jetfm.tools.catalog import Catalog, CatalogError, validate_name
from jetfm.tools.jobs import list_jobs
from jetfm.tools.registry import ToolError
from jetfm.tools.run import run_tool
from jetfm.tools.workspace import workspace_root

DEFAULT_MAX_UPLOAD_BYTES = 2 * 1024**3
UPLOADS_DIR = "uploads"
JOBS_SHOWN = 10


def human_size(n_bytes: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def _default_name(filename: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.\-]+", "-", Path(filename).stem).strip("-._")
    return (stem or "upload")[:64]


def register_upload(upload: str | None, name: str, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> str:
    """Copy an uploaded file into the workspace (whole, or not at all) and register it as a dataset;
    returns what happened, for the user. Nothing is copied for a file that cannot be a dataset."""
    if not upload:
        return "Choose a ROOT or HDF5 file to upload first."
    source = Path(upload)
    name = (name or "").strip() or _default_name(source.name)
    uploads = workspace_root() / UPLOADS_DIR
    try:
        validate_name(name)
        if Catalog().find(name) is not None:
            raise CatalogError(f"the name {name!r} is already in the catalog; choose another")
        size = source.stat().st_size
        if size > max_bytes:
            raise DataError(
                f"{source.name} is {human_size(size)}, over the upload limit of {human_size(max_bytes)}; copy large "
                "files next to the app and use `jetfm import`, or raise the limit with `jetfm serve --max-upload-mb`"
            )
        kind = detect_format(source)  # magic bytes: a renamed text file is refused before any copying
        target = uploads / name / source.name
        free = shutil.disk_usage(workspace_root()).free
        if free < size:
            raise DataError(f"not enough disk space in the workspace for {human_size(size)} ({human_size(free)} free)")
        with atomic_path(target) as tmp:  # a copy cut short leaves no file behind
            shutil.copyfile(source, tmp)
        try:
            result = run_tool("import_dataset", {"path": str(target), "name": name})
        except ToolError:
            shutil.rmtree(target.parent, ignore_errors=True)
            raise
    except (ToolError, DataError, CatalogError, OSError) as err:
        return f"**Not registered**: {as_user_file(str(err), source, uploads)}"
    return f"**Registered**: {result.text} ({kind}, {human_size(size)})"


def as_user_file(message: str, source: Path, uploads: Path) -> str:
    """``message`` with the server's paths of an upload (its temporary file, the copy in the
    workspace and that copy's temporary name) written as the user's file name: they mean nothing
    to the user, and tell a stranger where the server keeps its files."""
    folders = {str(p) for f in (source.parent, uploads) for p in (f, f.resolve())}
    for folder in sorted(folders, key=len, reverse=True):
        quoted = re.escape(folder)
        # The workspace copy (uploads/NAME/FILE) and the copy's temporary name (.STEM.PID.ID.tmpSUFFIX).
        message = re.sub(quoted + r"/[^/]+/\.[^/]*?\.tmp" + re.escape(source.suffix), source.name, message)
        message = message.replace(f"{folder}/{source.name}", source.name)
        message = re.sub(quoted + r"/[^/\s'\"]+/" + re.escape(source.name), source.name, message)
        message = message.replace(f"{folder}/", "")
    return message


# --- background jobs ---------------------------------------------------------------------------


def jobs_table() -> str:
    """The latest background jobs with their progress, as Markdown."""
    jobs = list_jobs()[-JOBS_SHOWN:]
    if not jobs:
        return "No background jobs yet: long tools (generate, pretrain, finetune, embed, index, anomaly scan) run here."
    rows = ["| job | tool | state | progress |", "|---|---|---|---|"]
    for job in reversed(jobs):
        progress = f"{job.progress:.0%} {job.message}" if job.state == "running" else job.summary()
        rows.append(f"| `{job.id}` | {job.tool} | {job.state} | {progress.replace('|', '/')} |")
    return "\n".join(rows)


def job_details(job_id: str, cancel: bool = False) -> tuple[str, list[str]]:
    """A job's state and result (or cancel it): text and plots."""
    job_id = (job_id or "").strip()
    if not job_id:
        return "Paste a job id from the table above.", []
    try:
        result = run_tool("cancel_job" if cancel else "job_status", {"job_id": job_id})
    except ToolError as err:
        return f"**Error**: {err}", []
    return f"```text\n{result.text}\n```", result.plots
