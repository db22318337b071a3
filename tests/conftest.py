"""Shared test settings."""

from __future__ import annotations

import os

import awkward as ak
import pytest
import torch
import uproot

from jetfm.backbone.data.schema import PROCESSES, TREE_NAME

N_PER_PROCESS = 200
# The physics tests' thresholds must hold for any seed: JETFM_TEST_SEED=12 pytest reruns them on other jets.
_SEED = os.environ.get("JETFM_TEST_SEED", "11")
if not _SEED.isdigit():
    raise pytest.UsageError(f"JETFM_TEST_SEED={_SEED!r}: give a non-negative integer seed, e.g. JETFM_TEST_SEED=12")
PHYSICS_SEED = int(_SEED)


def read_jets(path) -> ak.Array:
    with uproot.open(path) as f:
        return f[TREE_NAME].arrays()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # The tiny test models are dominated by thread overheads; on a 2-core machine running other
    # work, two threads made steps ~100x slower. One thread keeps the suite fast and repeatable.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def physics_sample_dir(tmp_path_factory, worker_id):
    """A few hundred jets of every process, generated inside the test run (two generator processes).

    The suite runs on two xdist workers (`-n 2` in pyproject.toml). They share one sample: the first
    to get here generates it under a lock while the other waits; the second then finds every shard
    complete and generation skips them (it only completes missing shards)."""
    pytest.importorskip("pythia8mc")
    from filelock import FileLock

    from jetfm.backbone.data.generate import GenerationConfig, generate

    # Under xdist, each worker's basetemp sits in one shared per-run folder.
    root = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    out = root / "physics"
    config = GenerationConfig(processes=PROCESSES, n_jets=N_PER_PROCESS * len(PROCESSES), seed=PHYSICS_SEED)
    with FileLock(str(root / "physics.lock")):
        summary = generate(config, out, workers=2, show_progress=False)
    assert summary.n_jets == config.n_jets
    return out


@pytest.fixture(scope="session")
def physics_sample(physics_sample_dir) -> dict[str, ak.Array]:
    """The generated sample, by process name."""
    return {p: read_jets(next(physics_sample_dir.glob(f"{p}-*.root"))) for p in PROCESSES}
