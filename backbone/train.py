"""The training loop shared by pretraining and finetuning.

AdamW (fused where torch has the kernel) with weight decay on weight matrices only
(`backbone.optim.parameter_groups`), linear warm-up then cosine decay, gradient clipping, bf16
autocast and optionally ``torch.compile`` on GPU, a loss curve (CSV + plot), checkpoints every N
steps with *exact* resume (model, optimizer, schedule, RNG, data position and the validation
state are all restored, so a killed run continues its loss curve as if uninterrupted), and DDP
under ``torchrun`` (each rank reads its own slice of every batch order; rank 0 writes).

With a ``validate`` function and ``eval_every``, the model is scored every ``eval_every`` steps;
the best weights are kept, training stops after ``patience`` validations without improvement,
and the model ends with its best weights (``Trainer.best`` says which step that was).

For batches of jets (a dict with a (B, P) bool ``mask``), ``bucket`` draws batches of similar
multiplicity (`backbone.data.batching.LengthBuckets`), so that the encoder, which runs as many
slots as the longest jet of a batch, runs fewer; ``trim`` adds weaver's random trimming of the
longest jets (an augmentation, off by default); ``compile`` cuts every batch to the slots its jets
use, rounded up to a multiple of 8, so that a compiled model sees at most 16 shapes.

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

from jetfm.backbone import memory
from jetfm.backbone.atomic import new_figure, save_figure
from jetfm.backbone.data.batching import PAD_MULTIPLE, LengthBuckets, fit_slots, particle_counts, random_trim
from jetfm.backbone.encoder import JetEncoder
from jetfm.backbone.optim import parameter_groups
from jetfm.errors import JetfmError, UsageError

log = logging.getLogger(__name__)

TRAIN_STATE = "train_state.pt"
LOSS_CSV = "loss.csv"


class BatchSource(Protocol):
    def __len__(self) -> int: ...

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]: ...


class TrainStateError(JetfmError, RuntimeError):
    """A run folder whose saved state cannot be resumed as asked."""


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
    eval_every: int = 0  # steps between validations (0: none); needs Trainer(validate=...)
    patience: int = 0  # stop after this many validations without improvement (0: never stop early)
    bucket: bool = False  # batches of jets of similar multiplicity (LengthBuckets): less padding to run
    trim: bool = False  # weaver's random trimming of the longest jets of each batch (an augmentation)
    # torch.compile (meant for GPU): batches cut to multiples of 8 slots, the encoder not packing them;
    # not for objectives whose augmentations split particles into the padding (pretraining)
    compile: bool = False

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise UsageError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "patience"):
            if getattr(self, name) < 0:
                raise UsageError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise UsageError(f"TrainConfig.lr must be > 0, got {self.lr}")


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


def finish_distributed() -> None:
    """Leave the process group torchrun set up, on every rank, after the work succeeded.

    The ranks first wait for each other, so none tears the group down while another is still in a
    collective; left to interpreter exit instead, gloo's worker threads can abort a finished run.
    Not for the error path: a barrier there would wait forever on a rank that already failed."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


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


def is_jet_batch(arrays: dict[str, np.ndarray]) -> bool:
    """Batches of padded jets carry a (B, P) bool mask; other models' batches pass unchanged."""
    mask = arrays.get("mask")
    return mask is not None and mask.ndim == 2 and mask.dtype == np.bool_


def adamw(groups: list[dict[str, Any]], lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel where it has one for `device` (CPU and CUDA in torch >= 2.4:
    ~3x faster steps of the optimizer on CPU), the default implementation elsewhere."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=device.type in ("cpu", "cuda"))
    except (RuntimeError, TypeError):  # an older torch, or parameters the fused kernel does not take
        return torch.optim.AdamW(groups, lr=lr)


def decay_split(model: nn.Module, groups: list[dict[str, Any]], weight_decay: float) -> list[dict[str, Any]]:
    """Each group split in two: the weight matrices that `backbone.optim.parameter_groups` decays,
    and the rest (biases, norms, learned tokens) without decay. Groups that set their own
    ``weight_decay`` are kept as they are."""
    decayed = {id(p) for g in parameter_groups(model, weight_decay) if g["weight_decay"] for p in g["params"]}
    out = []
    for group in groups:
        if "weight_decay" in group:
            out.append(group)
            continue
        params = [p for p in group["params"] if p.requires_grad]
        for decay in (True, False):
            part = [p for p in params if (id(p) in decayed) == decay]
            if part:
                out.append({**group, "params": part, "weight_decay": weight_decay if decay else 0.0})
    return out


@dataclass
class Best:
    """The best validation so far: its step, score (higher is better) and metrics."""

    step: int
    score: float
    metrics: dict[str, float]


class Trainer:
    """Runs ``config.steps`` optimisation steps of ``model(batch)`` over ``data`` into ``run_dir``.

    ``param_groups``: AdamW groups, each with an optional ``lr_scale`` (times the scheduled rate);
    default one group of every trainable parameter. Weight decay goes to weight matrices only.
    ``validate``: a function of no arguments returning metrics (the model is in eval mode while it
    runs), called every ``config.eval_every`` steps and at the last step; ``monitor`` names the
    metric that decides the best step, where higher is better unless ``maximize`` is False.
    """

    compile_backend = "inductor"  # torch.compile's backend; the CPU tests use "eager"

    def __init__(
        self,
        model: nn.Module,
        data: BatchSource,
        config: TrainConfig,
        run_dir: str | Path,
        param_groups: list[dict[str, Any]] | None = None,
        on_step: Callable[[int, dict[str, float]], None] | None = None,
        validate: Callable[[], dict[str, float]] | None = None,
        monitor: str = "val_loss",
        maximize: bool = False,
    ) -> None:
        if config.eval_every and validate is None:
            raise UsageError("TrainConfig.eval_every is set but the Trainer has no validate function")
        memory.keep_heap_flat()
        self.config = config
        self.run_dir = Path(run_dir)
        self.dist = init_distributed()
        self.device = resolve_device(config.device)
        if self.dist.world_size > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.model = model.to(self.device)
        self.data = data
        self.on_step = on_step
        self.validate, self.monitor, self.maximize = validate, monitor, maximize
        groups = param_groups or [{"params": [p for p in model.parameters() if p.requires_grad]}]
        groups = decay_split(self.model, groups, config.weight_decay)
        for g in groups:
            g.setdefault("lr_scale", 1.0)
            g["lr"] = config.lr * g["lr_scale"]
        self.optimizer = adamw(groups, config.lr, self.device)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.best: Best | None = None
        self._best_weights: dict[str, torch.Tensor] | None = None
        self.stale = 0  # validations since the best one
        self.stopped_early = False
        self.buckets = LengthBuckets(particle_counts(data), config.batch_size, config.seed) if config.bucket else None
        self.wrapped: nn.Module = self.model
        if self.dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            # Objectives may use part of the encoder (MPM and NTP never run the class-attention
            # pooling), so DDP must not expect a gradient for every parameter.
            self.wrapped = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)
        if config.compile:
            self.wrapped = compile_for_buckets(self.wrapped, self.compile_backend)

    # -- checkpoints ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "validation": {
                "best": None if self.best is None else asdict(self.best),
                "best_weights": self._best_weights,
                "stale": self.stale,
                "stopped_early": self.stopped_early,
            },
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
            raise TrainStateError(f"cannot read checkpoint {path} ({err}); delete it to start over") from err
        # settings added since the checkpoint was written count as their defaults
        if {**asdict(TrainConfig()), **state["config"]} != asdict(self.config):
            raise TrainStateError(
                f"{path} was written by a run with other settings ({state['config']}); "
                "use another --name or delete the folder to start over"
            )
        self.model.load_state_dict(state["model"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except ValueError as err:  # e.g. written before weight decay was split off norms and biases
            raise TrainStateError(
                f"{path} holds optimizer state of other parameter groups ({err}); it was written by another "
                "version of jetfm: use another --name or delete the folder to start over"
            ) from err
        self.step = state["step"]
        self.history = state["history"]
        validation = state.get("validation")
        if validation is not None:
            self.best = None if validation["best"] is None else Best(**validation["best"])
            self._best_weights = validation["best_weights"]
            self.stale, self.stopped_early = validation["stale"], validation["stopped_early"]
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

    def batch_arrays(self, step: int) -> dict[str, np.ndarray]:
        """The (rank's share of the) batch of `step`, trimmed (and randomly trimmed with ``trim``)."""
        if self.buckets is None:
            idx = batch_indices(step, len(self.data), self.config.batch_size, self.config.seed, self.dist)
        else:
            idx = np.array_split(self.buckets.global_batch(step), self.dist.world_size)[self.dist.rank]
        arrays = self.data.batch(np.sort(idx))
        # Batches keep their slots unless trimmed or compiled: the encoder drops slots that are
        # padding in every jet anyway, and augmentations (pretraining) split particles into the padding.
        if not (is_jet_batch(arrays) and (self.config.trim or self.config.compile)):
            return arrays
        width = arrays["mask"].shape[1]
        if self.config.trim:
            rng = np.random.default_rng([self.config.seed, step, self.dist.rank, 2])
            arrays = random_trim(arrays, rng)
        return fit_slots(arrays, PAD_MULTIPLE, capacity=width)

    def train_step(self) -> dict[str, float]:
        batch = to_tensors(self.batch_arrays(self.step), self.device)
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

    # -- validation -----------------------------------------------------------------------------
    def run_validation(self) -> dict[str, float]:
        """Scores the model (in eval mode) and keeps its weights if they are the best so far."""
        was_training = self.model.training
        self.model.eval()
        try:
            metrics = {k: float(v) for k, v in self.validate().items()}
        finally:
            self.model.train(was_training)
        if self.monitor not in metrics:
            raise UsageError(f"the validation gave {sorted(metrics)}, not the monitored metric {self.monitor!r}")
        score = metrics[self.monitor] if self.maximize else -metrics[self.monitor]
        if math.isfinite(score) and (self.best is None or score > self.best.score):
            self.best = Best(self.step, score, metrics)
            self._best_weights = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            self.stale = 0
        else:
            self.stale += 1
        self.stopped_early = bool(self.config.patience and self.stale >= self.config.patience)
        memory.release_free_memory()
        return metrics

    def _validation_due(self) -> bool:
        every = self.config.eval_every
        return bool(every) and (self.step % every == 0 or self.step == self.config.steps)

    def restore_best(self) -> None:
        """Loads the best validated weights into the model (nothing without validation)."""
        if self._best_weights is not None:
            self.model.load_state_dict(self._best_weights)

    @property
    def finished(self) -> bool:
        return self.step >= self.config.steps or self.stopped_early

    def fit(self, stop_after: int | None = None, show_progress: bool = True) -> list[dict[str, float]]:
        """Train to ``config.steps`` or an early stop (or only ``stop_after`` more steps, used to
        test resume). A finished run ends with the best validated weights."""
        from tqdm.auto import tqdm

        self.maybe_resume()
        last = self.config.steps if stop_after is None else min(self.config.steps, self.step + stop_after)
        bar = tqdm(
            total=self.config.steps, initial=self.step, unit="step", disable=not (show_progress and self.dist.is_main)
        )
        t0 = time.perf_counter()
        try:
            while self.step < last and not self.stopped_early:
                row = self.train_step()
                row["seconds"] = time.perf_counter() - t0
                if self._validation_due():
                    row.update(self.run_validation())
                self.history.append(row)
                bar.update(1)
                if self.step % self.config.log_every == 0:
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
                if self.on_step:
                    self.on_step(self.step, row)
                if self.step % self.config.checkpoint_every == 0 or self.finished:
                    self.save_checkpoint()
                    self.write_curve()
                    memory.release_free_memory()
        finally:
            bar.close()
        if self.finished:
            self.restore_best()
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


def compile_for_buckets(model: nn.Module, backend: str = "inductor") -> nn.Module:
    """``torch.compile`` of a training model whose batches come in multiples of 8 slots.

    The jet encoders inside are told not to pack their inputs (`fit_slots` already cut the batch),
    so every step has one of at most max_particles / 8 static shapes instead of a new length; the
    recompile limit is raised to let each of them compile once.
    """
    import torch._dynamo

    for module in model.modules():
        if isinstance(module, JetEncoder):
            module.pack_padding = False
    limit = max(torch._dynamo.config.cache_size_limit, 128 // PAD_MULTIPLE + 2)
    torch._dynamo.config.cache_size_limit = limit
    return torch.compile(model, backend=backend, dynamic=False)


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
