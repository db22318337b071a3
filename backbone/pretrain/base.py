"""What every pretraining objective shares: the encoder it trains, its heads, and how the pair is
saved beside the encoder in one model folder.

A pretrained model folder is the encoder's ``config.json`` + ``model.safetensors`` plus
``pretraining.json`` (objective name and its settings) and ``heads.safetensors`` (everything the
objective holds besides the encoder: prediction heads, codebooks). ``from_pretrained`` on the
encoder alone still works on such a folder; ``load_objective`` brings back the heads too (for
MPM anomaly scores or NTP sampling).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from backbone.checkpoint import from_pretrained, save_pretrained
from backbone.encoder import JetEncoder

PRETRAINING_NAME = "pretraining.json"
HEADS_NAME = "heads.safetensors"

_OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(cls: type[Objective]) -> type[Objective]:
    _OBJECTIVES[cls.name] = cls
    return cls


def objective_names() -> list[str]:
    _load_builtin_objectives()
    return sorted(_OBJECTIVES)


class Objective(nn.Module):
    """A self-supervised loss around ``self.encoder``; ``forward(batch) -> (loss, metrics)``."""

    name: ClassVar[str] = ""

    def __init__(self, encoder: JetEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def prepare(self, data: Any, seed: int = 0) -> None:
        """Fit data-dependent parts (e.g. a k-means codebook) before training. Default: nothing."""

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def objective_config(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this objective around a loaded encoder."""
        return {}

    def head_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    def write_heads(self, folder: Path) -> None:
        meta = {"objective": self.name, "config": self.objective_config()}
        (folder / PRETRAINING_NAME).write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
        state = {k: v.detach().cpu().contiguous() for k, v in self.head_state().items()}
        if state:
            save_file(state, folder / HEADS_NAME)

    def save_pretrained(self, folder: str | Path, extra: Callable[[Path], None] | None = None) -> Path:
        """Encoder + heads (+ ``extra`` files such as a model card), in one atomic write."""

        def write(staging: Path) -> None:
            self.write_heads(staging)
            if extra is not None:
                extra(staging)

        return save_pretrained(self.encoder, folder, extra=write)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in {PRETRAINING_NAME}")


def create_objective(name: str, encoder: JetEncoder, **config: Any) -> Objective:
    if name not in objective_names():
        raise ValueError(f"unknown pretraining objective {name!r}; choose from {', '.join(objective_names())}")
    return _OBJECTIVES[name](encoder, **config)


def load_objective(folder: str | Path, device: str | torch.device = "cpu") -> Objective:
    """The objective (encoder + heads) saved in a pretrained model folder, in eval mode."""
    folder = Path(folder)
    meta_path = folder / PRETRAINING_NAME
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{folder} has no {PRETRAINING_NAME}: it is not a pretrained model (pretrain one with jetfm pretrain)"
        )
    meta = json.loads(meta_path.read_text())
    objective = create_objective(meta["objective"], from_pretrained(folder, device=device), **meta["config"])
    heads = folder / HEADS_NAME
    if heads.is_file():
        missing, unexpected = objective.load_state_dict(load_file(heads), strict=False)
        missing = [k for k in missing if not k.startswith("encoder.")]
        if missing or unexpected:
            raise ValueError(f"{heads} does not match objective {meta['objective']!r}: {missing or unexpected}")
    return objective.to(device).eval()


def _load_builtin_objectives() -> None:
    # Importing the modules registers them; done lazily so base.py has no import cycle.
    import importlib

    for module in ("mpm", "contrastive", "ntp"):
        try:
            importlib.import_module(f"backbone.pretrain.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"backbone.pretrain.{module}":
                raise
