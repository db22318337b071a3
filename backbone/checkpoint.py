"""Functions over encoder model folders (`config.json` + `model.safetensors` + `features.json`),
for code that holds a folder rather than a model; the format itself lives in backbone/model_folder.py
and `JetEncoder.save_pretrained` / `JetEncoder.from_pretrained`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from jetfm.backbone.config import EncoderConfig
from jetfm.backbone.encoder import JetEncoder, load_features
from jetfm.backbone.model_folder import CONFIG_NAME, WEIGHTS_NAME, CheckpointError

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "CheckpointError",
    "from_pretrained",
    "load_config",
    "load_features",
    "save_pretrained",
]


def save_pretrained(model: JetEncoder, folder: str | Path, extra: Callable[[Path], None] | None = None) -> Path:
    """Writes `model` to `folder` (created or replaced) and returns the folder's path."""
    return model.save_pretrained(folder, extra=extra)


def load_config(folder: str | Path) -> EncoderConfig:
    """The `EncoderConfig` stored in a model folder, without reading the weights."""
    return JetEncoder.load_config(folder)


def from_pretrained(folder: str | Path, device: str | torch.device = "cpu") -> JetEncoder:
    """Loads a model folder written by `save_pretrained`, in eval mode, on `device`."""
    return JetEncoder.from_pretrained(folder, device=device)
