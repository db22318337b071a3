"""The training loop shared by pretraining and finetuning.

AdamW, linear warm-up then cosine decay, gradient clipping, bf16 autocast on GPU, a loss curve
(CSV + plot), checkpoints every N steps with *exact* resume (model, optimizer, schedule, RNG and
data position are all restored, so a killed run continues its loss curve as if uninterrupted),
and DDP under ``torchrun`` (each rank reads its own slice of every batch order; rank 0 writes).

The model is any ``nn.Module`` whose ``forward(batch)`` returns ``(loss, metrics)`` (forward, not
another method, so that DDP synchronises gradients); data is anything with ``len()`` and
``batch(indices) -> dict[str, np.ndarray]``.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from backbone.atomic import new_figure, save_figure

log = logging.getLogger(__name__)

TRAIN_STATE = "train_state.pt"
LOSS_CSV = "loss.csv"


class BatchSource(Protocol):
    def __len__(self) -> int: ...

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]: ...


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    checkpoint_every: int = 200
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_lr_ratio`` at the last step."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistInfo:
    """Join the process group torchrun set up (gloo on CPU, nccl on GPU); single process otherwise."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank)
    return info


def epoch_order(n: int, epoch: int, seed: int) -> np.ndarray:
    """The data order of one epoch: a permutation fixed by (seed, epoch), the same on every rank."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(step: int, n: int, global_batch: int, seed: int, dist: DistInfo) -> np.ndarray:
    """Indices of this rank's share of global batch ``step``; a pure function of step, so that a
    resumed run reads exactly the batches the uninterrupted run would have read."""
    per_epoch = max(1, n // global_batch)
    epoch, k = divmod(step, per_epoch)
    order = epoch_order(n, epoch, seed)
    if n < global_batch:  # tiny datasets: cycle through the permutation
        order = np.resize(order, global_batch)
    chunk = order[k * global_batch : (k + 1) * global_batch]
    return np.array_split(chunk, dist.world_size)[dist.rank]


def to_tensors(arrays: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device, non_blocking=True) for k, v in arrays.items()}


class Trainer:
    """Runs ``config.steps`` optimisation steps of ``model(batch)`` over ``data`` into ``run_dir``."""

    def __init__(
        self,
        model: nn.Module,
        data: BatchSource,
        config: TrainConfig,
        run_dir: str | Path,
        param_groups: list[dict[str, Any]] | None = None,
        on_step: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.dist = init_distributed()
        self.device = resolve_device(config.device)
        if self.dist.world_size > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.model = model.to(self.device)
        self.data = data
        self.on_step = on_step
        groups = param_groups or [{"params": [p for p in model.parameters() if p.requires_grad]}]
        for g in groups:
            g.setdefault("lr_scale", 1.0)
            g["lr"] = config.lr * g["lr_scale"]
        self.optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.wrapped: nn.Module = self.model
        if self.dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            # Objectives may use part of the encoder (MPM and NTP never run the class-attention
            # pooling), so DDP must not expect a gradient for every parameter.
            self.wrapped = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)

    # -- checkpoints ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "config": asdict(self.config),
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        }

    def save_checkpoint(self) -> Path | None:
        if not self.dist.is_main:
            return None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / TRAIN_STATE
        tmp = path.with_name(f".{TRAIN_STATE}.{os.getpid()}.tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)  # a kill mid-save leaves the previous checkpoint intact
        return path

    def maybe_resume(self) -> bool:
        """Continue from ``run_dir/train_state.pt`` if present; True if it did."""
        path = self.run_dir / TRAIN_STATE
        if not path.exists():
            return False
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except Exception as err:  # noqa: BLE001
            raise RuntimeError(f"cannot read checkpoint {path} ({err}); delete it to start over") from err
        if state["config"] != asdict(self.config):
            raise RuntimeError(
                f"{path} was written by a run with other settings ({state['config']}); "
                "use another --name or delete the folder to start over"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]
        self.history = state["history"]
        rng = state["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"].cpu())
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        log.info("resumed %s at step %d", self.run_dir, self.step)
        return True

    # -- the loop -------------------------------------------------------------------------------
    def _set_lr(self) -> float:
        factor = lr_factor(self.step, self.config)
        for g in self.optimizer.param_groups:
            g["lr"] = self.config.lr * g["lr_scale"] * factor
        return self.config.lr * factor

    def _autocast(self):
        enabled = self.config.amp and self.device.type == "cuda"
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def train_step(self) -> dict[str, float]:
        idx = batch_indices(
            self.step, len(self.data), self.config.batch_size, self.config.seed, self.dist
        )
        batch = to_tensors(self.data.batch(np.sort(idx)), self.device)
        lr = self._set_lr()
        self.wrapped.train()
        with self._autocast():
            loss, metrics = self.wrapped(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.step += 1
        return {"step": self.step, "loss": float(loss.detach()), "lr": lr, "grad_norm": float(grad_norm), **metrics}

    def fit(self, stop_after: int | None = None, show_progress: bool = True) -> list[dict[str, float]]:
        """Train to ``config.steps`` (or only ``stop_after`` more steps, used to test resume)."""
        from tqdm.auto import tqdm

        self.maybe_resume()
        last = self.config.steps if stop_after is None else min(self.config.steps, self.step + stop_after)
        bar = tqdm(
            total=self.config.steps, initial=self.step, unit="step", disable=not (show_progress and self.dist.is_main)
        )
        t0 = time.perf_counter()
        try:
            while self.step < last:
                row = self.train_step()
                row["seconds"] = time.perf_counter() - t0
                self.history.append(row)
                bar.update(1)
                if self.step % self.config.log_every == 0:
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
                if self.on_step:
                    self.on_step(self.step, row)
                if self.step % self.config.checkpoint_every == 0 or self.step == self.config.steps:
                    self.save_checkpoint()
                    self.write_curve()
        finally:
            bar.close()
        return self.history

    def write_curve(self) -> Path | None:
        """loss.csv + loss.png in the run folder (rank 0 only)."""
        if not self.dist.is_main or not self.history:
            return None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        keys = list(dict.fromkeys(k for row in self.history for k in row))
        path = self.run_dir / LOSS_CSV
        tmp = path.with_name(f".{LOSS_CSV}.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.history)
        os.replace(tmp, path)
        plot_loss_curve(self.history, self.run_dir / "loss.png")
        return path


def plot_loss_curve(history: list[dict[str, float]], path: Path) -> None:

    steps = [r["step"] for r in history]
    fig, ax = new_figure(figsize=(6, 4))
    ax.plot(steps, [r["loss"] for r in history], lw=0.8, alpha=0.5, label="loss")
    window = max(1, len(steps) // 50)
    if window > 1:
        smooth = np.convolve([r["loss"] for r in history], np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, lw=1.6, label=f"running mean ({window})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(frameon=False)
    save_figure(fig, path)
