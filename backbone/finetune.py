"""Jet classification on top of the encoder: linear probe, full finetuning, or training from scratch.

A `JetClassifier` is an encoder plus a small head (LayerNorm + MLP -> one logit per class). Its
``forward(batch)`` returns ``(cross-entropy loss, metrics)``, so `backbone.train.Trainer` trains it;
`JetClassifier.param_groups` gives the Trainer the learning rates of the chosen mode:

- ``linear_probe``: the encoder is frozen (and kept in eval mode, so neither dropout nor the input
  batch-norm statistics move); only the head trains.
- ``full``: everything trains, the encoder at ``encoder_lr_scale`` (0.1) times the head's rate, so
  that early large head gradients do not wash out what pretraining learned.
- ``scratch``: the same architecture from a random initialisation, everything at one rate: the
  baseline that tells what pretraining is worth.

Labels in batches index `PROCESSES`; a classifier knows its own ``classes`` (a subset of them, e.g.
("qcd", "top")) and maps one to the other. A saved classifier is the encoder's model folder plus
``classifier.json`` and ``head.safetensors``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from backbone.checkpoint import from_pretrained, save_pretrained
from backbone.data.schema import PROCESSES
from backbone.encoder import JetEncoder, maybe_compile
from backbone.train import BatchSource, to_tensors

MODES = ("linear_probe", "full", "scratch")
CLASSIFIER_NAME = "classifier.json"
HEAD_NAME = "head.safetensors"
FORMAT_VERSION = 1
_LABEL_CHUNK = 65_536


@dataclass(frozen=True)
class HeadConfig:
    hidden_dims: tuple[int, ...] = (128,)
    dropout: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_dims", tuple(int(d) for d in self.hidden_dims))  # JSON gives lists
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"HeadConfig.dropout must be in [0, 1), got {self.dropout}")


class ClassifierHead(nn.Module):
    """LayerNorm, then (Linear, GELU, Dropout) per hidden width, then Linear to the class logits."""

    def __init__(self, embed_dim: int, num_classes: int, config: HeadConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.LayerNorm(embed_dim)]
        dims = (embed_dim, *config.hidden_dims)
        for d_in, d_out in pairwise(dims):
            layers += [nn.Linear(d_in, d_out), nn.GELU(), nn.Dropout(config.dropout)]
        layers.append(nn.Linear(dims[-1], num_classes))
        self.mlp = nn.Sequential(*layers)

    def forward(self, embedding: Tensor) -> Tensor:
        return self.mlp(embedding)


class JetClassifier(nn.Module):
    """Encoder + head; ``forward(batch) -> (loss, {"accuracy": ...})``. Build one with `build_classifier`."""

    def __init__(
        self,
        encoder: JetEncoder,
        classes: Sequence[str],
        mode: str = "full",
        head: HeadConfig | None = None,
        encoder_lr_scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.classes = _check_classes(classes)
        if mode not in MODES:
            raise ValueError(f"unknown finetuning mode {mode!r}; choose one of {', '.join(MODES)}")
        self.mode = mode
        self.head_config = head or HeadConfig()
        self.encoder_lr_scale = encoder_lr_scale
        self.encoder = encoder
        self.head = ClassifierHead(encoder.config.embed_dim, len(self.classes), self.head_config)
        self.register_buffer("label_to_class", torch.from_numpy(class_lookup(self.classes)), persistent=False)
        if mode == "linear_probe":
            self.encoder.requires_grad_(False)
        self.train()

    def train(self, mode: bool = True) -> JetClassifier:
        """As nn.Module.train, except that a linear probe's frozen encoder always stays in eval mode
        (the Trainer calls ``train()`` on every step)."""
        super().train(mode)
        if self.mode == "linear_probe":
            self.encoder.eval()
        return self

    def param_groups(self) -> list[dict[str, Any]]:
        """Parameter groups with ``lr_scale`` for `Trainer(param_groups=...)`."""
        head = list(self.head.parameters())
        if self.mode == "linear_probe":
            return [{"params": head, "lr_scale": 1.0}]
        if self.mode == "full":
            return [
                {"params": list(self.encoder.parameters()), "lr_scale": self.encoder_lr_scale},
                {"params": head, "lr_scale": 1.0},
            ]
        return [{"params": list(self.parameters()), "lr_scale": 1.0}]

    def logits(self, features: Tensor, vectors: Tensor, mask: Tensor) -> Tensor:
        if self.mode == "linear_probe":
            with torch.no_grad():  # no activations kept for a backward pass that never reaches the encoder
                embedding = self.encoder(features, vectors, mask)
        else:
            embedding = self.encoder(features, vectors, mask)
        return self.head(embedding.float())

    def targets(self, labels: Tensor) -> Tensor:
        """Process indices (PROCESSES) -> class indices (self.classes); -1 for other processes."""
        return self.label_to_class[labels.clamp_min(0)].masked_fill(labels < 0, -1)

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        logits = self.logits(batch["features"], batch["vectors"], batch["mask"])
        targets = self.targets(batch["labels"])
        if bool((targets < 0).any()):
            raise ValueError(
                f"batch holds jets whose label is not one of the classes {self.classes}; "
                "train on LabelSubset(data, n_labels, classes=...)"
            )
        loss = F.cross_entropy(logits, targets)
        accuracy = (logits.argmax(-1) == targets).float().mean()
        return loss, {"accuracy": float(accuracy)}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def predict_proba(self, data: BatchSource, batch_size: int = 512) -> np.ndarray:
        """(len(data), num_classes) class probabilities, in eval mode; the training mode is restored."""
        was_training = self.training
        self.eval()
        out = np.empty((len(data), len(self.classes)), dtype=np.float32)
        try:
            with torch.inference_mode():
                for start in range(0, len(data), batch_size):
                    index = np.arange(start, min(start + batch_size, len(data)))
                    batch = to_tensors(data.batch(index), self.device)
                    logits = self.logits(batch["features"], batch["vectors"], batch["mask"])
                    out[index] = logits.float().softmax(-1).cpu().numpy()
        finally:
            self.train(was_training)
        return out

    def classifier_config(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "classes": list(self.classes),
            "mode": self.mode,
            "encoder_lr_scale": self.encoder_lr_scale,
            "head": {**asdict(self.head_config), "hidden_dims": list(self.head_config.hidden_dims)},
        }

    def save_pretrained(self, folder: str | Path, extra: Callable[[Path], None] | None = None) -> Path:
        """The encoder's model folder + classifier.json + head.safetensors, in one atomic write;
        `from_pretrained` on the folder still gives the (finetuned) encoder alone."""

        def write(staging: Path) -> None:
            (staging / CLASSIFIER_NAME).write_text(json.dumps(self.classifier_config(), indent=2) + "\n")
            head = {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
            save_file(head, staging / HEAD_NAME)
            if extra is not None:
                extra(staging)

        return save_pretrained(self.encoder, folder, extra=write)


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    classes = tuple(classes)
    unknown = [c for c in classes if c not in PROCESSES]
    if unknown or len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be two or more distinct names from {PROCESSES}, got {classes}")
    return classes


def class_lookup(classes: Sequence[str]) -> np.ndarray:
    """(len(PROCESSES),) int64 array: process index -> index in `classes`, -1 for other processes."""
    lookup = np.full(len(PROCESSES), -1, dtype=np.int64)
    lookup[[PROCESSES.index(c) for c in classes]] = np.arange(len(classes))
    return lookup


def class_indices(labels: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Process indices -> indices into `classes`; -1 for unknown labels and other processes."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.where(labels >= 0, class_lookup(classes)[labels.clip(0)], -1)


def build_classifier(
    encoder: JetEncoder | str | Path,
    classes: Sequence[str],
    mode: str = "full",
    head: HeadConfig | None = None,
    encoder_lr_scale: float = 0.1,
) -> JetClassifier:
    """A classifier around `encoder` (a JetEncoder or a model folder). In ``scratch`` mode only the
    encoder's architecture is used: its weights are replaced by a fresh random initialisation."""
    if not isinstance(encoder, JetEncoder):
        encoder = from_pretrained(encoder)
    if mode == "scratch":
        encoder = maybe_compile(JetEncoder(encoder.config))
    return JetClassifier(encoder, classes, mode, head, encoder_lr_scale)


def load_classifier(folder: str | Path, device: str | torch.device = "cpu") -> JetClassifier:
    """A classifier written by `JetClassifier.save_pretrained`, in eval mode, on `device`."""
    folder = Path(folder)
    path = folder / CLASSIFIER_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {CLASSIFIER_NAME}: it is not a saved JetClassifier")
    stored = json.loads(path.read_text())
    if stored.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} has format_version {stored['format_version']}, newer than this jetfm; upgrade jetfm")
    classifier = JetClassifier(
        from_pretrained(folder),
        stored["classes"],
        stored["mode"],
        HeadConfig(**stored["head"]),
        stored["encoder_lr_scale"],
    )
    classifier.head.load_state_dict(load_file(folder / HEAD_NAME))
    return classifier.to(device).eval()


def read_labels(data: BatchSource) -> np.ndarray:
    """Labels of every jet of `data`, read in chunks through ``batch()``."""
    chunks = [
        data.batch(np.arange(start, min(start + _LABEL_CHUNK, len(data))))["labels"]
        for start in range(0, len(data), _LABEL_CHUNK)
    ]
    return np.concatenate(chunks).astype(np.int64) if chunks else np.empty(0, np.int64)


def classes_from_labels(labels: np.ndarray) -> tuple[str, ...]:
    """The processes present in `labels`, in PROCESSES order (("qcd", "top") for top tagging)."""
    present = np.unique(labels[labels >= 0])
    if len(present) < 2:
        found = [PROCESSES[i] for i in present]
        raise ValueError(f"classification needs jets of at least two processes; the labels hold only {found}")
    return tuple(PROCESSES[i] for i in present)


def balanced_indices(labels: np.ndarray, codes: Sequence[int], n_labels: int | None, seed: int) -> np.ndarray:
    """Sorted indices of `n_labels` jets split evenly over the process `codes` (the remainder to
    the first ones), or every jet of those processes when `n_labels` is None.

    Each process draws from its own permutation seeded by (seed, code), so with one seed a smaller
    subset is contained in a larger one: label-count scans add labels rather than resample them.
    """
    pools = [np.flatnonzero(labels == code) for code in codes]
    if n_labels is None:
        return np.sort(np.concatenate(pools))
    share, remainder = divmod(n_labels, len(codes))
    wanted = [share + (k < remainder) for k in range(len(codes))]
    short = {PROCESSES[c]: len(p) for c, p, w in zip(codes, pools, wanted) if len(p) < w}
    if short:
        raise ValueError(
            f"{n_labels} balanced labels need {max(wanted)} jets per class, but only {short} are available; "
            f"use at most {min(len(p) for p in pools) * len(codes)} labels"
        )
    picked = [np.random.default_rng([seed, code]).permutation(pool)[:n] for code, pool, n in zip(codes, pools, wanted)]
    return np.sort(np.concatenate(picked))


class LabelSubset:
    """A BatchSource view of `n_labels` jets of `data` balanced over `classes` (None: every jet of
    those classes), chosen by `seed`. `labels` (every jet's, if already at hand) saves a read."""

    def __init__(
        self,
        data: BatchSource,
        n_labels: int | None,
        classes: Sequence[str] | None = None,
        seed: int = 0,
        labels: np.ndarray | None = None,
    ) -> None:
        all_labels = read_labels(data) if labels is None else np.asarray(labels, dtype=np.int64)
        self.classes = classes_from_labels(all_labels) if classes is None else _check_classes(classes)
        self.data = data
        self.indices = balanced_indices(all_labels, [PROCESSES.index(c) for c in self.classes], n_labels, seed)
        self.labels = all_labels[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return self.data.batch(self.indices[indices])
