"""What every pretraining objective shares: the encoder it trains, its heads, and how the pair is
saved beside the encoder in one model folder.

A pretrained model folder is the encoder's ``config.json`` + ``model.safetensors`` plus
``pretraining.json`` (objective name and its settings) and ``heads.safetensors`` (everything the
objective holds besides the encoder: prediction heads, codebooks). ``from_pretrained`` on the
encoder alone still works on such a folder; ``load_objective`` brings back the heads too (for
MPM anomaly scores or NTP sampling).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from jetfm.backbone.checkpoint import from_pretrained
from jetfm.backbone.encoder import JetEncoder
from jetfm.backbone.model_folder import existing_folder, read_json, read_weights, write_json, write_weights
from jetfm.errors import UsageError

PRETRAINING_NAME = "pretraining.json"
PRETRAINING_TYPE = "jet_pretraining"
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
    # Settings added after the first models were saved, with the values that rebuild those models
    # (a saved config without the setting was written before it existed).
    legacy_config: ClassVar[dict[str, Any]] = {}

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
        write_json(folder / PRETRAINING_NAME, PRETRAINING_TYPE, objective=self.name, config=self.objective_config())
        state = self.head_state()
        if state:
            write_weights(folder / HEADS_NAME, state)

    def save_pretrained(self, folder: str | Path, extra: Callable[[Path], None] | None = None) -> Path:
        """Encoder + heads (+ ``extra`` files such as a model card), in one atomic write."""

        def write(staging: Path) -> None:
            self.write_heads(staging)
            if extra is not None:
                extra(staging)

        return self.encoder.save_pretrained(folder, extra=write)


def create_objective(name: str, encoder: JetEncoder, **config: Any) -> Objective:
    if name not in objective_names():
        raise UsageError(f"unknown pretraining objective {name!r}; choose from {', '.join(objective_names())}")
    return _OBJECTIVES[name](encoder, **config)


def load_objective(folder: str | Path, device: str | torch.device = "cpu") -> Objective:
    """The objective (encoder + heads) saved in a pretrained model folder, in eval mode."""
    folder = existing_folder(folder)
    meta = read_json(folder / PRETRAINING_NAME, PRETRAINING_TYPE, "it is not a pretrained model (jetfm pretrain)")
    name = meta["objective"]
    config = {**_OBJECTIVES[name].legacy_config, **meta["config"]} if name in objective_names() else meta["config"]
    objective = create_objective(name, from_pretrained(folder, device=device), **config)
    heads = folder / HEADS_NAME
    if heads.is_file():
        missing, unexpected = objective.load_state_dict(read_weights(heads, "re-save the model"), strict=False)
        missing = [k for k in missing if not k.startswith("encoder.")]
        if missing or unexpected:
            raise UsageError(f"{heads} does not match objective {meta['objective']!r}: {missing or unexpected}")
    return objective.to(device).eval()


def _load_builtin_objectives() -> None:
    # Importing the modules registers them; done lazily so base.py has no import cycle.
    import importlib

    for module in ("mpm", "contrastive", "ntp"):
        try:
            importlib.import_module(f"jetfm.backbone.pretrain.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"jetfm.backbone.pretrain.{module}":
                raise
