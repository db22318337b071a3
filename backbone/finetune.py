"""Jet classification on top of the encoder: probes of frozen embeddings, full finetuning, or
training from scratch.

A `JetClassifier` is an encoder plus a head (by default LayerNorm + MLP -> one logit per class).
Its ``forward(batch)`` returns ``(cross-entropy loss, metrics)``, so `backbone.train.Trainer`
trains it; `JetClassifier.param_groups` gives the Trainer the learning rates of the chosen mode:

- ``linear_probe``: logistic regression on the frozen encoder's embeddings: the head is one
  Linear layer, fitted by `fit_linear_probe` (L-BFGS on the embeddings, the L2 strength chosen on
  validation jets), not by the Trainer. What the embeddings alone separate linearly.
- ``mlp_probe``: the encoder frozen (and kept in eval mode, so neither drop-path nor the input
  batch-norm statistics move); only the MLP head trains.
- ``full``: everything trains. The head and the pooling (class-attention blocks, class token, jet
  norm; untrained by the pretraining objectives that predict particles) at the head's rate; the
  particle-attention blocks with layer-wise decay (block k of L at ``layer_decay ** (L - k)``) and
  the particle and pair embeddings below them at ``layer_decay ** (L + 1)``, so that what
  pretraining learned in the lower layers moves least.
- ``scratch``: the same architecture from a random initialisation, everything at one rate: the
  baseline that tells what pretraining is worth.

Labels in batches index `PROCESSES`; a classifier knows its own ``classes`` (a subset of them, e.g.
("qcd", "top")) and maps one to the other. A saved classifier is the encoder's model folder plus
``classifier.json`` and ``head.safetensors``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jetfm.backbone.checkpoint import from_pretrained
from jetfm.backbone.data.batching import inference_batches, particle_counts
from jetfm.backbone.data.schema import PROCESSES
from jetfm.backbone.encoder import JetEncoder, maybe_compile
from jetfm.backbone.metrics import classification_report, cross_entropy
from jetfm.backbone.model_folder import existing_folder, read_json, read_weights, write_json, write_weights
from jetfm.backbone.train import BatchSource, to_tensors
from jetfm.errors import UsageError

MODES = ("linear_probe", "mlp_probe", "full", "scratch")
FROZEN_MODES = ("linear_probe", "mlp_probe")  # the encoder does not train
LAYER_DECAY = 0.75
L2_STRENGTHS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)  # the linear probe's candidates (on standardised embeddings)
CLASSIFIER_NAME = "classifier.json"
CLASSIFIER_TYPE = "jet_classifier"
HEAD_NAME = "head.safetensors"
_LABEL_CHUNK = 65_536


@dataclass(frozen=True)
class HeadConfig:
    hidden_dims: tuple[int, ...] = (128,)
    dropout: float = 0.1
    norm: bool = True  # a LayerNorm on the embedding first

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_dims", tuple(int(d) for d in self.hidden_dims))  # JSON gives lists
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"HeadConfig.dropout must be in [0, 1), got {self.dropout}")


LINEAR_HEAD = HeadConfig(hidden_dims=(), dropout=0.0, norm=False)  # logistic regression: one Linear layer


class ClassifierHead(nn.Module):
    """LayerNorm (with ``norm``), then (Linear, GELU, Dropout) per hidden width, then Linear to the
    class logits."""

    def __init__(self, embed_dim: int, num_classes: int, config: HeadConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.LayerNorm(embed_dim)] if config.norm else []
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
        layer_decay: float = LAYER_DECAY,
    ) -> None:
        super().__init__()
        self.classes = _check_classes(classes)
        if mode not in MODES:
            raise UsageError(f"unknown finetuning mode {mode!r}; choose one of {', '.join(MODES)}")
        if not 0.0 < layer_decay <= 1.0:
            raise UsageError(f"layer_decay must be in (0, 1] (1: no decay), got {layer_decay}")
        self.mode = mode
        self.head_config = head or (LINEAR_HEAD if mode == "linear_probe" else HeadConfig())
        if mode == "linear_probe" and self.head_config != LINEAR_HEAD:
            raise UsageError(f"a linear probe's head is one Linear layer ({LINEAR_HEAD}); for an MLP use mlp_probe")
        self.layer_decay = layer_decay
        self.encoder = encoder
        self.head = ClassifierHead(encoder.config.embed_dim, len(self.classes), self.head_config)
        self.register_buffer("label_to_class", torch.from_numpy(class_lookup(self.classes)), persistent=False)
        if mode in FROZEN_MODES:
            self.encoder.requires_grad_(False)
        self.train()

    def train(self, mode: bool = True) -> JetClassifier:
        """As nn.Module.train, except that a probe's frozen encoder always stays in eval mode (the
        Trainer calls ``train()`` on every step)."""
        super().train(mode)
        if self.mode in FROZEN_MODES:
            self.encoder.eval()
        return self

    def param_groups(self) -> list[dict[str, Any]]:
        """Parameter groups with ``lr_scale`` for `Trainer(param_groups=...)` (which also takes
        weight decay off biases, norms and tokens); see the module docstring for the rates."""
        if self.mode in FROZEN_MODES:
            return [{"params": list(self.head.parameters()), "lr_scale": 1.0}]
        if self.mode == "scratch":
            return [{"params": list(self.parameters()), "lr_scale": 1.0}]
        encoder = self.encoder
        pooling = [encoder.class_token, *encoder.class_blocks.parameters(), *encoder.jet_norm.parameters()]
        groups = [{"params": [*self.head.parameters(), *pooling], "lr_scale": 1.0}]
        depth = len(encoder.blocks)
        for k, block in enumerate(encoder.blocks):
            groups.append({"params": list(block.parameters()), "lr_scale": self.layer_decay ** (depth - k)})
        listed = {id(p) for g in groups for p in g["params"]}
        # the particle and pair embeddings (and the particle norm, which classification never uses)
        below = [p for p in encoder.parameters() if id(p) not in listed]
        groups.append({"params": below, "lr_scale": self.layer_decay ** (depth + 1)})
        return groups

    def embed(self, features: Tensor, vectors: Tensor, mask: Tensor) -> Tensor:
        """(B, D) jet embeddings as the head sees them (float32)."""
        if self.mode in FROZEN_MODES:
            with torch.no_grad():  # no activations kept for a backward pass that never reaches the encoder
                return self.encoder(features, vectors, mask).float()
        return self.encoder(features, vectors, mask).float()

    def logits(self, features: Tensor, vectors: Tensor, mask: Tensor) -> Tensor:
        return self.head(self.embed(features, vectors, mask))

    def targets(self, labels: Tensor) -> Tensor:
        """Process indices (PROCESSES) -> class indices (self.classes); -1 for other processes."""
        return self.label_to_class[labels.clamp_min(0)].masked_fill(labels < 0, -1)

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        logits = self.logits(batch["features"], batch["vectors"], batch["mask"])
        targets = self.targets(batch["labels"])
        if bool((targets < 0).any()):
            raise UsageError(
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
        return self._over_data(data, batch_size, len(self.classes), lambda *inputs: self.logits(*inputs).softmax(-1))

    def embeddings(self, data: BatchSource, batch_size: int = 512) -> np.ndarray:
        """(len(data), D) jet embeddings, in eval mode."""
        return self._over_data(data, batch_size, self.encoder.config.embed_dim, self.embed)

    def _over_data(self, data: BatchSource, batch_size: int, width: int, compute: Callable[..., Tensor]) -> np.ndarray:
        # Batches of similar multiplicity pad less; in eval mode a jet's output does not depend on
        # the other jets of its batch.
        was_training = self.training
        self.eval()
        out = np.empty((len(data), width), dtype=np.float32)
        try:
            with torch.inference_mode():
                for positions, arrays in inference_batches(data, batch_size):
                    batch = to_tensors(arrays, self.device)
                    out[positions] = compute(batch["features"], batch["vectors"], batch["mask"]).float().cpu().numpy()
        finally:
            self.train(was_training)
        return out

    def classifier_config(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "mode": self.mode,
            "layer_decay": self.layer_decay,
            "head": {**asdict(self.head_config), "hidden_dims": list(self.head_config.hidden_dims)},
        }

    def save_pretrained(self, folder: str | Path, extra: Callable[[Path], None] | None = None) -> Path:
        """The encoder's model folder + classifier.json + head.safetensors, in one atomic write;
        `from_pretrained` on the folder still gives the (finetuned) encoder alone."""

        def write(staging: Path) -> None:
            write_json(staging / CLASSIFIER_NAME, CLASSIFIER_TYPE, **self.classifier_config())
            write_weights(staging / HEAD_NAME, self.head.state_dict())
            if extra is not None:
                extra(staging)

        return self.encoder.save_pretrained(folder, extra=write)


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    classes = tuple(classes)
    unknown = [c for c in classes if c not in PROCESSES]
    if unknown or len(classes) < 2 or len(set(classes)) != len(classes):
        raise UsageError(f"classes must be two or more distinct names from {PROCESSES}, got {classes}")
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
    layer_decay: float = LAYER_DECAY,
) -> JetClassifier:
    """A classifier around `encoder` (a JetEncoder or a model folder). In ``scratch`` mode only the
    encoder's architecture is used: its weights are replaced by a fresh random initialisation."""
    if not isinstance(encoder, JetEncoder):
        encoder = from_pretrained(encoder)
    if mode == "scratch":
        encoder = maybe_compile(JetEncoder(encoder.config))
    return JetClassifier(encoder, classes, mode, head, layer_decay)


def load_classifier(folder: str | Path, device: str | torch.device = "cpu") -> JetClassifier:
    """A classifier written by `JetClassifier.save_pretrained`, in eval mode, on `device`."""
    folder = existing_folder(folder)
    stored = read_json(folder / CLASSIFIER_NAME, CLASSIFIER_TYPE, "it is not a saved JetClassifier (jetfm finetune)")
    head = HeadConfig(**stored["head"])
    # classifiers saved before mlp_probe existed called their frozen-encoder MLP a linear probe
    mode = "mlp_probe" if stored["mode"] == "linear_probe" and head != LINEAR_HEAD else stored["mode"]
    classifier = JetClassifier(
        from_pretrained(folder), stored["classes"], mode, head, stored.get("layer_decay", LAYER_DECAY)
    )
    classifier.head.load_state_dict(read_weights(folder / HEAD_NAME, "the classifier's head is missing; re-save it"))
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
        raise UsageError(f"classification needs jets of at least two processes; the labels hold only {found}")
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
        raise UsageError(
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

    def particle_counts(self) -> np.ndarray:
        return particle_counts(self.data)[self.indices]

    def take(self, positions: np.ndarray) -> LabelSubset:
        """The jets at `positions` of this subset, as a subset of the same data (no labels re-read)."""
        view = object.__new__(LabelSubset)
        view.data, view.classes = self.data, self.classes
        view.indices, view.labels = self.indices[positions], self.labels[positions]
        return view

    def split(self, fraction: float, seed: int = 0) -> tuple[LabelSubset, LabelSubset]:
        """(rest, held out): `fraction` of the jets of every class (at least one of each class
        with two or more jets) held out, e.g. for validation; chosen by `seed`."""
        if not 0.0 < fraction < 1.0:
            raise UsageError(f"the held-out fraction must be in (0, 1), got {fraction}")
        held: list[np.ndarray] = []
        for code in (PROCESSES.index(c) for c in self.classes):
            pool = np.flatnonzero(self.labels == code)
            count = min(max(int(round(fraction * len(pool))), 1), len(pool) - 1) if len(pool) > 1 else 0
            held.append(np.random.default_rng([seed, code, 1]).permutation(pool)[:count])
        out = np.zeros(len(self), dtype=bool)
        out[np.concatenate(held)] = True
        return self.take(np.flatnonzero(~out)), self.take(np.flatnonzero(out))


def fit_linear_probe(
    classifier: JetClassifier,
    train: LabelSubset,
    validation: LabelSubset | None = None,
    strengths: Sequence[float] = L2_STRENGTHS,
    batch_size: int = 512,
) -> dict[str, Any]:
    """Fits a linear probe's head: multinomial logistic regression on the frozen embeddings.

    The embeddings are standardised (with the training jets' mean and spread, folded into the
    Linear layer afterwards) and the L2-penalised cross-entropy is minimised to convergence by
    L-BFGS, once per strength in `strengths`; the strength with the best validation AUC (macro AUC
    with more than two classes; ties go to the stronger penalty) is kept. Without validation jets,
    the median strength. Returns the chosen strength and the validation metrics of every strength.
    """
    if classifier.mode != "linear_probe":
        raise UsageError(f"fit_linear_probe fits a linear_probe classifier, not mode {classifier.mode!r}")
    x = torch.from_numpy(classifier.embeddings(train, batch_size)).double()
    y = torch.from_numpy(class_indices(train.labels, classifier.classes))
    mean = x.mean(0)
    scale = x.std(0).clamp_min(1e-6) if len(x) > 1 else torch.ones_like(mean)
    x = (x - mean) / scale
    if validation is None or len(validation) == 0:
        strengths = [sorted(strengths)[len(strengths) // 2]]
    else:
        x_val = (torch.from_numpy(classifier.embeddings(validation, batch_size)).double() - mean) / scale
        y_val = class_indices(validation.labels, classifier.classes)
    scores: dict[float, dict[str, float]] = {}
    best: tuple[float, float, Tensor, Tensor] | None = None
    for strength in sorted(strengths, reverse=True):
        weight, bias = logistic_regression(x, y, len(classifier.classes), strength)
        score = 0.0
        if len(strengths) > 1:
            probs = (x_val @ weight + bias).softmax(-1).numpy()
            report = classification_report(probs, y_val, classifier.classes)
            score = report["auc"] if "auc" in report else report["macro_auc"]
            scores[strength] = {"val_auc": score, "val_loss": cross_entropy(probs, y_val)}
        if best is None or score > best[0]:
            best = (score, strength, weight, bias)
    _, strength, weight, bias = best
    linear = classifier.head.mlp[-1]
    with torch.no_grad():
        folded = weight / scale[:, None]
        linear.weight.copy_(folded.T.to(linear.weight.dtype))
        linear.bias.copy_((bias - mean @ folded).to(linear.bias.dtype))
    return {"l2_strength": strength, "validation": {str(k): v for k, v in scores.items()}}


def logistic_regression(x: Tensor, y: Tensor, num_classes: int, strength: float) -> tuple[Tensor, Tensor]:
    """(D, C) weights and (C,) biases minimising mean cross-entropy + strength/2 * |W|^2 (L-BFGS)."""
    weight = torch.zeros(x.size(1), num_classes, dtype=x.dtype, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=1000, tolerance_grad=1e-9, tolerance_change=1e-12,
        history_size=20, line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + 0.5 * strength * weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()
