"""The shared training loop: schedule, exact resume after a kill, DDP with two gloo processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from jetfm.backbone.train import TRAIN_STATE, DistInfo, TrainConfig, Trainer, batch_indices, lr_factor


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
sys.path.insert(0, {tests!r})
from test_train import _trainer
import torch.distributed as dist
from jetfm.backbone.train import finish_distributed
trainer = _trainer(__import__("pathlib").Path({run!r}), steps=6)
trainer.fit(show_progress=False)
# DDP keeps the replicas identical: compare a parameter across ranks
w = trainer.model.net[0].weight.detach().clone()
gathered = [torch.zeros_like(w) for _ in range(dist.get_world_size())]
dist.all_gather(gathered, w)
assert all(torch.equal(gathered[0], g) for g in gathered), "replicas diverged"
# One file per rank: the two processes' prints can interleave on the shared stdout
done = __import__("pathlib").Path({run!r})
done.mkdir(parents=True, exist_ok=True)
(done / f"ok.rank{{dist.get_rank()}}of{{dist.get_world_size()}}").touch()
finish_distributed()  # what `jetfm pretrain` does at the end under torchrun
"""


def test_ddp_two_cpu_processes_gloo(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent), run=str(tmp_path / "run")))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "run").glob("ok.*")) == ["ok.rank0of2", "ok.rank1of2"]
    assert (tmp_path / "run" / TRAIN_STATE).exists()


class Scripted:
    """A validation whose scores are given in advance; counts its calls."""

    def __init__(self, scores: list[float]) -> None:
        self.scores, self.calls = scores, 0

    def __call__(self) -> dict[str, float]:
        self.calls += 1
        return {"val_auc": self.scores[self.calls - 1]}


def _validated(run_dir: Path, scores: list[float], patience: int = 3) -> tuple[Trainer, Scripted]:
    torch.manual_seed(0)
    config = TrainConfig(steps=20, batch_size=16, lr=1e-2, warmup_steps=3, checkpoint_every=4, log_every=5,
                         eval_every=2, patience=patience)
    scripted = Scripted(scores)
    weights: dict[int, dict[str, torch.Tensor]] = {}
    model = Toy()
    trainer = Trainer(model, ArraySource(), config, run_dir, validate=scripted, monitor="val_auc", maximize=True,
                      on_step=lambda step, row: weights.update({step: {k: v.clone() for k, v in
                                                                      model.state_dict().items()}}))
    trainer.weights_at = weights
    return trainer, scripted


def test_validation_keeps_the_best_step_and_stops_early(tmp_path):
    trainer, scripted = _validated(tmp_path / "a", [0.5, 0.7, 0.6, 0.65, 0.69, 0.9])
    history = trainer.fit(show_progress=False)
    # validations at steps 2, 4, 6, 8, 10: the best is step 4; three without improvement stop at 10
    assert scripted.calls == 5 and trainer.step == 10 and trainer.stopped_early
    assert trainer.best.step == 4 and trainer.best.metrics == {"val_auc": 0.7}
    assert [r["val_auc"] for r in history if "val_auc" in r] == [0.5, 0.7, 0.6, 0.65, 0.69]
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in trainer.weights_at[4].items())  # ends with the best weights
    assert not all(torch.equal(state[k], v) for k, v in trainer.weights_at[10].items())


def test_validation_state_survives_a_resume(tmp_path):
    straight, _ = _validated(tmp_path / "a", [0.5, 0.7, 0.6, 0.65, 0.69])
    straight.fit(show_progress=False)
    first, _ = _validated(tmp_path / "b", [0.5, 0.7, 0.6, 0.65, 0.69])
    first.fit(stop_after=8, show_progress=False)  # killed after step 8: best at 4, two stale validations
    resumed, scripted = _validated(tmp_path / "b", [0.69])  # the new process validates only step 10
    resumed.fit(show_progress=False)
    assert scripted.calls == 1 and resumed.step == 10 and resumed.stopped_early and resumed.best.step == 4
    assert all(torch.equal(v, straight.model.state_dict()[k]) for k, v in resumed.model.state_dict().items())
    again, scripted = _validated(tmp_path / "b", [])  # rerunning a finished run trains nothing
    again.fit(show_progress=False)
    assert scripted.calls == 0 and again.step == 10


def test_validation_needs_a_function_and_names_the_missing_metric(tmp_path):
    with pytest.raises(ValueError, match="no validate function"):
        Trainer(Toy(), ArraySource(), TrainConfig(steps=2, eval_every=1), tmp_path)
    trainer = Trainer(Toy(), ArraySource(), TrainConfig(steps=2, batch_size=8, eval_every=1), tmp_path,
                      validate=lambda: {"val_auc": 0.5}, monitor="val_loss")
    with pytest.raises(ValueError, match="not the monitored metric 'val_loss'"):
        trainer.fit(show_progress=False)


def test_checkpoints_without_the_newer_settings_resume_with_them_at_their_defaults(tmp_path):
    trainer = _trainer(tmp_path, steps=10)
    trainer.fit(stop_after=5, show_progress=False)
    state = torch.load(tmp_path / TRAIN_STATE, weights_only=False)
    for name in ("eval_every", "patience", "bucket", "trim", "compile"):
        del state["config"][name]
    del state["validation"]
    torch.save(state, tmp_path / TRAIN_STATE)
    assert len(_trainer(tmp_path, steps=10).fit(show_progress=False)) == 10


def test_optimizer_is_fused_where_torch_has_the_kernel():
    trainer = Trainer(Toy(), ArraySource(), TrainConfig(steps=1), "unused")
    assert all(g["fused"] for g in trainer.optimizer.param_groups)


def _anonymous_mib() -> float | None:
    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.exists() else []
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("RssAnon:")), None)


_FREED_MEMORY_CHECK = """
import torch
from test_train import ArraySource, Toy, _anonymous_mib
from jetfm.backbone.train import TrainConfig, Trainer

Trainer(Toy(), ArraySource(), TrainConfig(steps=1), "unused")
raise_threshold = torch.ones(4 << 20)  # 16 MiB: freeing it lifts a dynamic threshold to 16 MiB
del raise_threshold
before = _anonymous_mib()
blocks = [torch.ones(size << 18) for size in (2, 3, 4, 5, 6, 7)]  # 2-7 MiB, like one step's activations
del blocks
print(_anonymous_mib() - before)
"""


def test_trainer_hands_freed_activation_memory_back():
    """The resident-memory growth of training runs: glibc raised its mmap threshold to the size of
    each freed block, so the next steps' activations came from a heap that never shrank. Measured in
    a fresh interpreter: threads that earlier tests left behind would allocate inside the window."""
    if _anonymous_mib() is None:
        pytest.skip("needs /proc/self/status")
    out = subprocess.run([sys.executable, "-c", _FREED_MEMORY_CHECK], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parent, check=True)
    grown = float(out.stdout.split()[-1])
    assert grown < 8, grown  # MiB; 27 MiB stay resident with glibc's dynamic threshold
