"""Background jobs: progress moves, state is shared through the catalog file, cancel and crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jetfm.tools.catalog import Catalog
from jetfm.tools.jobs import JobStore, _launched, cancel, install_progress, status, submit
from jetfm.tools.registry import ToolError
from jetfm.tools.run import run_tool

pytest.importorskip("pythia8mc")


def wait_for(job_id: str, until, timeout: float = 120.0) -> list:
    """Poll a job until ``until(job)`` holds; returns every (state, progress) seen on the way."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = status(job_id)
        seen.append((job.state, job.progress))
        if until(job):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} timed out; last: {job}; log:\n{Path(job.log).read_text()[-2000:]}")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("ws")
        mp.setenv("JETFM_HOME", str(root))
        mp.setenv("OMP_NUM_THREADS", "1")  # the workers share two cores with everything else
        yield root


@pytest.fixture(scope="module")
def generated(workspace):
    """A generate_dataset job of 30 jets started the way the agent starts one, followed to its end."""
    started = run_tool("generate_dataset", {"name": "gen", "processes": ["top", "qcd"], "n_jets": 30, "seed": 5})
    job_id = started.data["job_id"]
    seen = wait_for(job_id, lambda j: j.state not in ("queued", "running"))
    return job_id, seen


def test_generate_job_runs_in_the_background(generated, workspace):
    job_id, seen = generated
    job = JobStore(workspace).get(job_id)  # a fresh store: what a restarted chat app would open
    assert job.state == "done", job.error
    assert any(state == "running" and 0.0 < progress < 1.0 for state, progress in seen)  # it moved
    assert job.progress == 1.0 and job.result["data"]["n_jets"] == 30
    assert Catalog(workspace).get("gen", kind="dataset").metrics["n_jets"] == 30
    record = Catalog(workspace).get(job_id, kind="job")
    assert record.meta["produced"] == "gen" and record.meta["tool"] == "generate_dataset"
    assert "generating gen" in Path(job.log).read_text()
    shown = run_tool("job_status", {"job_id": job_id})
    assert "done" in shown.text and "Dataset 'gen': 30 jets" in shown.text
    assert job_id in run_tool("list_artifacts", {"kind": "job"}).text


def test_bad_arguments_fail_before_a_job_starts(workspace):
    with pytest.raises(ToolError, match="steps: Input should be greater than or equal to 1"):
        submit("pretrain", {"dataset": "gen", "name": "m", "steps": 0})
    with pytest.raises(ToolError, match="no job 'job-20000101-000000-abcdef'"):
        status("job-20000101-000000-abcdef")


def test_progress_comes_from_tqdm_bars(monkeypatch):
    import tqdm
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.auto.tqdm)  # restored after the test
    monkeypatch.setattr(tqdm, "tqdm", tqdm.tqdm)
    calls = []
    install_progress(lambda fraction, message, force=False: calls.append((round(fraction, 2), message)))
    from tqdm.auto import tqdm as bar_class

    with bar_class(total=4, desc="embedding", unit="jet", disable=False) as bar:
        bar.update(1)
    bar_class(total=3, disable=True).update(1)  # a disabled bar reports nothing
    assert calls[0] == (0.0, "embedding: 0/4 jet") and (0.25, "embedding: 1/4 jet") in calls
    assert len(calls) == 3


def test_cancel_from_another_process_stops_pretraining(generated, workspace):
    args = {"dataset": "gen", "objective": "mpm", "size": "tiny", "steps": 100_000, "name": "long", "batch_size": 8}
    job_id = submit("pretrain", args)
    first = wait_for(job_id, lambda j: j.progress > 0.0, timeout=180)[-1][1]
    wait_for(job_id, lambda j: j.progress > first, timeout=60)  # the fraction moves
    assert status(job_id).message.endswith("/100000 step")
    pid = status(job_id).pid
    code = f"from tools.jobs import cancel; print(cancel({job_id!r}).state)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "cancelled"
    job = status(job_id)
    assert job.state == "cancelled" and job.message == "cancelled by the user"
    _launched[pid].wait(timeout=10)  # the worker this process started has exited
    models = workspace / "models"
    assert not (models / "long").exists() and not list(models.glob(".long*"))
    assert Catalog(workspace).find("long") is None
    assert cancel(job_id).state == "cancelled"  # cancelling again changes nothing


def test_a_killed_worker_is_reported_failed(generated, workspace):
    job_id = submit("generate_dataset", {"name": "big", "n_jets": 1_000_000, "seed": 9})
    wait_for(job_id, lambda j: j.state == "running" and j.progress > 0.0, timeout=60)
    os.killpg(status(job_id).pid, signal.SIGKILL)  # what the OOM killer or a crash would do
    wait_for(job_id, lambda j: j.state == "failed", timeout=10)
    job = status(job_id)
    assert "ended without reporting a result" in job.error
    assert Catalog(workspace).find("big") is None
