"""The shared training loop: schedule, exact resume after a kill, DDP with two gloo processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from backbone.train import TRAIN_STATE, DistInfo, TrainConfig, Trainer, batch_indices, lr_factor


class ArraySource:
    def __init__(self, n: int = 100, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(n, 8)).astype(np.float32)
        self.y = (self.x[:, 0] > 0).astype(np.int64)

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return {"x": self.x[indices], "labels": self.y[indices]}


class Toy(nn.Module):
    """Dropout makes the loss depend on the RNG state, so resume must restore it exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))

    def forward(self, batch):
        loss = nn.functional.cross_entropy(self.net(batch["x"]), batch["labels"])
        return loss, {}


def _trainer(run_dir: Path, steps: int = 20) -> Trainer:
    torch.manual_seed(0)
    config = TrainConfig(steps=steps, batch_size=16, lr=1e-2, warmup_steps=3, checkpoint_every=5, log_every=5)
    return Trainer(Toy(), ArraySource(), config, run_dir)


def test_schedule_warms_up_then_decays():
    config = TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    factors = [lr_factor(s, config) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] == pytest.approx(0.1, abs=0.01)


def test_batches_cover_epoch_and_split_over_ranks():
    idx = np.concatenate([batch_indices(s, 64, 16, 0, DistInfo()) for s in range(4)])
    assert sorted(idx) == list(range(64))
    ranks = [batch_indices(3, 64, 16, 0, DistInfo(rank=r, world_size=2)) for r in range(2)]
    assert sorted(np.concatenate(ranks)) == sorted(batch_indices(3, 64, 16, 0, DistInfo()))


def test_exact_resume_after_kill(tmp_path):
    straight = _trainer(tmp_path / "a").fit(show_progress=False)
    first = _trainer(tmp_path / "b")
    first.fit(stop_after=10, show_progress=False)  # the "kill": the process stops after step 10
    assert (tmp_path / "b" / TRAIN_STATE).exists()
    resumed = _trainer(tmp_path / "b")  # a new process: fresh model, fresh RNG
    history = resumed.fit(show_progress=False)
    assert [r["step"] for r in history] == list(range(1, 21))
    np.testing.assert_allclose([r["loss"] for r in history], [r["loss"] for r in straight], rtol=0, atol=1e-6)
    assert (tmp_path / "b" / "loss.csv").read_text().count("\n") == 21
    assert (tmp_path / "b" / "loss.png").exists()


def test_resume_with_other_settings_refused(tmp_path):
    _trainer(tmp_path, steps=10).fit(show_progress=False)
    with pytest.raises(RuntimeError, match="other settings"):
        _trainer(tmp_path, steps=30).fit(show_progress=False)


DDP_SCRIPT = """
import sys, torch
sys.path.insert(0, {root!r})
sys.path.insert(0, {tests!r})
from test_train import _trainer
import torch.distributed as dist
trainer = _trainer(__import__("pathlib").Path({run!r}), steps=6)
trainer.fit(show_progress=False)
# DDP keeps the replicas identical: compare a parameter across ranks
w = trainer.model.net[0].weight.detach().clone()
gathered = [torch.zeros_like(w) for _ in range(dist.get_world_size())]
dist.all_gather(gathered, w)
assert all(torch.equal(gathered[0], g) for g in gathered), "replicas diverged"
print("rank", dist.get_rank(), "world", dist.get_world_size(), "ok")
dist.destroy_process_group()
"""


def test_ddp_two_cpu_processes_gloo(tmp_path):
    script = tmp_path / "ddp_train.py"
    root = str(Path(__file__).resolve().parents[1])
    script.write_text(DDP_SCRIPT.format(root=root, tests=str(Path(__file__).parent), run=str(tmp_path / "run")))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count(" ok") == 2
    assert (tmp_path / "run" / TRAIN_STATE).exists()
