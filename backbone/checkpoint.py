"""Model folders: `config.json` (model type + config) beside `model.safetensors`, written atomically.

`save_pretrained` builds the folder under a temporary sibling name and renames it into place, so a
crash never leaves a half-written model where a good one was. The folder is replaced as a whole:
write files that belong with it (e.g. `train_state.pt`) after saving the model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from backbone.atomic import replace_folder
from backbone.config import EncoderConfig
from backbone.encoder import JetEncoder, maybe_compile

MODEL_TYPE = "jet_encoder"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_WRITTEN_BY = "model folders are written by save_pretrained / JetEncoder.save_pretrained"


class CheckpointError(ValueError):
    """A model folder that exists but cannot be loaded; the message names the file and the fix."""


def save_pretrained(
    model: JetEncoder, folder: str | Path, extra: Callable[[Path], None] | None = None
) -> Path:
    """Writes `model` to `folder` (created or replaced) and returns the folder's path.

    `extra(staging)` may write more files that belong with the model (a pretraining head, a
    codebook, a model card) into the staging folder, so they land in the same atomic rename.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder; choose another path for the model")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        _write_model_files(model, staging)
        if extra is not None:
            extra(staging)
        replace_folder(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _write_model_files(model: JetEncoder, staging: Path) -> None:
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, staging / WEIGHTS_NAME, metadata={"format": "pt"})
    config = {"model_type": MODEL_TYPE, "format_version": FORMAT_VERSION, "config": model.config.to_dict()}
    (staging / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    for name in (WEIGHTS_NAME, CONFIG_NAME):
        _fsync(staging / name)  # the rename below must not become visible before the data is on disk


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_config(folder: str | Path) -> EncoderConfig:
    """The `EncoderConfig` stored in a model folder, without reading the weights."""
    folder = _existing_folder(Path(folder))
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}; {_WRITTEN_BY}")
    try:
        stored: Any = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); re-save the model") from err
    if not isinstance(stored, dict) or stored.get("model_type") != MODEL_TYPE:
        found = stored.get("model_type") if isinstance(stored, dict) else type(stored).__name__
        raise CheckpointError(f"{path} is not a {MODEL_TYPE!r} config (model_type={found!r})")
    if stored.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {stored['format_version']}, newer than this jetfm reads "
            f"({FORMAT_VERSION}); upgrade jetfm"
        )
    try:
        return EncoderConfig.from_dict(stored.get("config", {}))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path} holds an invalid encoder config: {err}") from err


def from_pretrained(folder: str | Path, device: str | torch.device = "cpu") -> JetEncoder:
    """Loads a model folder written by `save_pretrained`, in eval mode, on `device`."""
    folder = Path(folder)
    model = JetEncoder(load_config(folder))
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{folder} has no {WEIGHTS_NAME}; {_WRITTEN_BY}")
    try:
        state = load_file(weights)
    except SafetensorError as err:
        raise CheckpointError(f"{weights} is corrupt or truncated ({err}); re-save or re-copy it") from err
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"{weights} does not match {folder / CONFIG_NAME}; the two come from different models.\n{err}"
        ) from err
    return maybe_compile(model.to(device).eval())


def _existing_folder(folder: Path) -> Path:
    if folder.is_dir():
        return folder
    if folder.exists():
        raise NotADirectoryError(f"{folder} is a file; a model is a folder of {CONFIG_NAME} + {WEIGHTS_NAME}")
    hint = ""
    interrupted = sorted(folder.parent.glob(f".{folder.name}.old-*")) if folder.parent.is_dir() else []
    if interrupted:
        hint = f"; an interrupted save left the previous model at {interrupted[-1]}: rename it back"
    raise FileNotFoundError(f"no model folder at {folder}{hint}")
