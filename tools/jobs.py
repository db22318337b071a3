"""Background jobs: long tools (generate, pretrain, finetune, embed, build_index, anomaly_scan) run in
their own process (``python -m tools.jobs run JOB_ID``, in a new session so that it outlives the
chat app that started it), while their state lives in a ``jobs`` table of the workspace catalog:
any process that opens the workspace sees, polls and cancels them.

States: queued -> running -> done | failed | cancelled. Progress is read off the tqdm bars the
operations already draw: the worker replaces tqdm with a bar that also writes n/total to the job
row (at most once a second). A worker that vanished without reporting (killed, out of memory) is
found when its job is next read and marked failed. Cancelling terminates the worker's process
group; every file the operations write is written atomically, so nothing half-written is left.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jetfm.backbone.atomic import process_alive
from jetfm.tools.catalog import Catalog, CatalogError
from jetfm.tools.registry import ToolError, call_tool, validate_args
from jetfm.tools.result import ToolResult

STATES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
PROGRESS_INTERVAL_S = 1.0
CANCEL_GRACE_S = 5.0  # time to exit cleanly on SIGTERM before the group gets SIGKILL

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    state TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    result TEXT,
    error TEXT,
    pid INTEGER,
    log TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    updated REAL NOT NULL
)
"""
_COLUMNS = (
    "id", "tool", "args", "state", "progress", "message", "result", "error", "pid", "log",
    "created", "started", "finished", "updated",
)  # fmt: skip

# Workers this process started, by pid: polling them also reaps them, so they never linger as zombies.
_launched: dict[int, subprocess.Popen] = {}


@dataclass
class Job:
    id: str
    tool: str
    args: dict[str, Any]
    state: str
    progress: float
    message: str
    result: dict[str, Any] | None
    error: str | None
    pid: int | None
    log: str
    created: float
    started: float | None
    finished: float | None
    updated: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.state == "running":
            return f"running, {self.progress:.0%} ({self.message or 'starting'})"
        if self.state == "done":
            return f"done in {self.finished - (self.started or self.created):.0f} s"
        if self.state == "failed":
            return f"failed: {self.error}"
        return self.state


class JobStore:
    """The jobs table, in the catalog's SQLite file; every call is its own short transaction."""

    def __init__(self, root: str | Path | None = None) -> None:
        # The catalog owns the file and its connection settings; jobs are one more table in it.
        self.catalog = Catalog(root)
        self.root = self.catalog.root
        with self.catalog._connect() as db:
            db.execute(_SCHEMA)

    def create(self, tool: str, args: dict[str, Any]) -> Job:
        job_id = f"job-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        now = time.time()
        log = self.root / "jobs" / f"{job_id}.log"
        row = (job_id, tool, json.dumps(args), "queued", 0.0, "", None, None, None, str(log), now, None, None, now)
        with self.catalog._connect() as db:
            db.execute(f"INSERT INTO jobs VALUES ({', '.join('?' * len(_COLUMNS))})", row)
        return self.get(job_id)

    def update(self, job_id: str, only_if: tuple[str, ...] = STATES, **fields: Any) -> bool:
        """Set ``fields`` if the job is in one of the states ``only_if``; True if it was. The state
        guard is what settles races, e.g. a worker finishing while someone cancels it."""
        fields["updated"] = time.time()
        for key in ("args", "result"):
            if key in fields and fields[key] is not None:
                fields[key] = json.dumps(fields[key], default=str)
        assignments = ", ".join(f"{k} = ?" for k in fields)
        states = ", ".join("?" * len(only_if))
        with self.catalog._connect() as db:
            cursor = db.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ? AND state IN ({states})",
                (*fields.values(), job_id, *only_if),
            )
        return cursor.rowcount == 1

    def finish(self, job_id: str, state: str, **fields: Any) -> bool:
        """Move an active job to a final state and record it in the catalog (kind ``job``)."""
        if not self.update(job_id, only_if=ACTIVE, state=state, finished=time.time(), **fields):
            return False
        job = self.get(job_id)
        produced = (job.result or {}).get("data", {}).get("name")
        meta = {"tool": job.tool, "args": job.args, "state": state, "produced": produced, "error": job.error}
        seconds = job.finished - (job.started or job.created)
        with contextlib.suppress(CatalogError):  # a name clash must not lose the job's own record
            self.catalog.register(job_id, "job", job.log, meta=meta, metrics={"seconds": round(seconds, 1)})
        return True

    def get(self, job_id: str) -> Job:
        with self.catalog._connect() as db:
            row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            recent = [j.id for j in self.list_jobs()[-5:]]
            raise ToolError(f"no job {job_id!r} in {self.root}; recent jobs: {', '.join(recent) or 'none'}")
        return self._check_alive(_row_to_job(row))

    def list_jobs(self) -> list[Job]:
        with self.catalog._connect() as db:
            rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY created").fetchall()
        return [self._check_alive(_row_to_job(r)) for r in rows]

    def _check_alive(self, job: Job) -> Job:
        """A job still marked active whose worker is gone crashed or was killed: mark it failed."""
        if job.state not in ACTIVE or job.pid is None or _alive(job.pid):
            return job
        error = f"the worker (pid {job.pid}) ended without reporting a result (killed or crashed); see {job.log}"
        self.finish(job.id, "failed", error=error)
        return self.get(job.id)


def _row_to_job(row: tuple) -> Job:
    values = dict(zip(_COLUMNS, row))
    values["args"] = json.loads(values["args"])
    values["result"] = json.loads(values["result"]) if values["result"] else None
    return Job(**values)


def _alive(pid: int) -> bool:
    proc = _launched.get(pid)
    if proc is not None:
        return proc.poll() is None
    return process_alive(pid)


# --- starting, polling, cancelling -------------------------------------------------------------


def submit(tool_name: str, args: dict[str, Any] | None = None) -> str:
    """Validate the arguments here (so a bad call fails at once), then run the tool in a new
    background process; returns the job id."""
    validated = validate_args(tool_name, args)
    store = JobStore()
    job = store.create(tool_name, validated.model_dump(mode="json"))
    Path(job.log).parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "JETFM_HOME": str(store.root)}
    command = [sys.executable, "-m", "jetfm.tools.jobs", "run", job.id]
    try:
        with open(job.log, "ab") as log:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
    except OSError as err:
        store.finish(job.id, "failed", error=f"could not start the worker: {err}")
        raise ToolError(f"could not start a background process for {tool_name}: {err}") from None
    _launched[proc.pid] = proc
    store.update(job.id, pid=proc.pid)
    return job.id


def status(job_id: str) -> Job:
    return JobStore().get(job_id)


def list_jobs() -> list[Job]:
    return JobStore().list_jobs()


def cancel(job_id: str, grace_s: float = CANCEL_GRACE_S) -> Job:
    """Stop a queued or running job (from any process); a finished job is returned unchanged."""
    store = JobStore()
    job = store.get(job_id)
    if store.finish(job_id, "cancelled", message="cancelled by the user") and job.pid is not None:
        _terminate_group(job.pid, grace_s)
    return store.get(job_id)


def _terminate_group(pid: int, grace_s: float) -> None:
    """SIGTERM to the worker's process group (its generator processes too), SIGKILL after ``grace_s``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # stragglers of the group, or a worker that ignored SIGTERM


# --- the tools ---------------------------------------------------------------------------------


def job_status(job_id: str) -> ToolResult:
    job = status(job_id)
    text = f"Job {job.id} ({job.tool}): {job.summary()}."
    plots: list[str] = []
    if job.state == "done" and job.result:
        text += "\n" + job.result["text"]
        plots = job.result.get("plots", [])
    return ToolResult(text=text, data=job.to_dict(), plots=plots)


def cancel_job(job_id: str) -> ToolResult:
    job = cancel(job_id)
    if job.state == "cancelled":
        text = f"Job {job.id} ({job.tool}) is cancelled; nothing half-written was kept."
    else:
        text = f"Job {job.id} ({job.tool}) had already ended: {job.summary()}."
    return ToolResult(text=text, data=job.to_dict())


# --- the worker side ---------------------------------------------------------------------------


def progress_writer(store: JobStore, job_id: str, interval_s: float = PROGRESS_INTERVAL_S) -> Callable[..., None]:
    """A ``(fraction, message, force=False)`` callback writing to the job row at most every ``interval_s``."""
    last = -float("inf")

    def write(fraction: float, message: str, force: bool = False) -> None:
        nonlocal last
        now = time.monotonic()
        if force or now - last >= interval_s:
            last = now
            store.update(job_id, only_if=("running",), progress=min(max(fraction, 0.0), 1.0), message=message)

    return write


def install_progress(write: Callable[..., None]) -> None:
    """Make every tqdm bar created from now on in this process also report to ``write``. The
    operations import ``tqdm.auto.tqdm`` when they run, so replacing the module attribute suffices."""
    import tqdm
    import tqdm.auto
    import tqdm.std

    class JobBar(tqdm.std.tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("mininterval", PROGRESS_INTERVAL_S)  # also paces updates from iteration
            super().__init__(*args, **kwargs)
            self._report(force=True)

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            self._report()
            return shown

        def close(self) -> None:
            self._report(force=True)
            super().close()

        def _report(self, force: bool = False) -> None:
            if self.disable or not self.total:
                return
            count = f"{self.n:g}/{self.total:g} {self.unit}"
            write(self.n / self.total, f"{self.desc.rstrip(': ')}: {count}" if self.desc else count, force)

    tqdm.auto.tqdm = JobBar
    tqdm.tqdm = JobBar


def _stop(signum: int, frame: Any) -> None:
    # Unwinding (rather than dying on the spot) lets the atomic writers delete their temporary files.
    raise SystemExit(128 + signum)


def run_job(job_id: str) -> int:
    """The worker: run one queued job to its end, reporting progress, result or error to its row."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = JobStore()
    job = store.get(job_id)
    if not store.update(job_id, only_if=("queued",), state="running", pid=os.getpid(), started=time.time()):
        return 0  # cancelled before it started
    signal.signal(signal.SIGTERM, _stop)
    install_progress(progress_writer(store, job_id))
    try:
        result = call_tool(job.tool, job.args)
    except ToolError as err:
        store.finish(job_id, "failed", error=str(err))
        return 1
    except BaseException:
        store.finish(job_id, "failed", error=f"stopped by a signal before finishing; see {job.log}")
        raise
    store.finish(job_id, "done", progress=1.0, message="finished", result=asdict(result))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "run":
        print("usage: python -m tools.jobs run JOB_ID  (started by tools.jobs.submit)", file=sys.stderr)
        return 2
    return run_job(argv[1])


if __name__ == "__main__":
    # Run the copy imported as tools.jobs, not this __main__ one, so there is one set of module state.
    from jetfm.tools.jobs import main as _main

    sys.exit(_main(sys.argv[1:]))
