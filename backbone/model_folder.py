"""Model folders, for every kind of model jetfm saves: one home for how they are written and read.

A model folder holds JSON files that say what it is (``model_type``, ``format_version``, settings)
beside safetensors weights: the encoder's ``config.json`` + ``model.safetensors``, and what other
kinds add beside it (a classifier's head, pretraining heads, an aligner's heads). ``write_folder``
builds the whole folder under a temporary sibling name and renames it into place, so a crash never
leaves a half-written model where a good one was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from jetfm.backbone.atomic import FORMAT_VERSION, staged_folder
from jetfm.errors import JetfmError, MissingFileError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CheckpointError(JetfmError, ValueError):
    """A model folder that exists but cannot be loaded; the message names the file and the fix."""


def write_folder(folder: str | Path, write: Callable[[Path], None]) -> Path:
    """Create or replace ``folder`` with what ``write(staging)`` puts in a staging folder."""
    with staged_folder(folder) as staging:
        write(staging)
        for path in staging.iterdir():
            if path.is_file():
                _fsync(path)  # the rename must not become visible before the data is on disk
    return Path(folder)


def write_json(path: Path, model_type: str, **content: Any) -> None:
    """A JSON file naming its model type and format version, then ``content``."""
    stored = {"model_type": model_type, "format_version": FORMAT_VERSION, **content}
    path.write_text(json.dumps(stored, indent=2, default=_plain) + "\n")


def read_json(path: Path, model_type: str, hint: str) -> dict[str, Any]:
    """A file written by ``write_json`` for ``model_type``; ``hint`` says how such files are made."""
    if not path.is_file():
        raise MissingFileError(f"{path.parent} has no {path.name}; {hint}")
    try:
        stored: Any = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); re-save the model") from err
    if not isinstance(stored, dict) or stored.get("model_type") != model_type:
        found = stored.get("model_type") if isinstance(stored, dict) else type(stored).__name__
        raise CheckpointError(f"{path} is not a {model_type!r} file (model_type={found!r})")
    if stored.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {stored['format_version']}, newer than this jetfm reads "
            f"({FORMAT_VERSION}); upgrade jetfm"
        )
    return stored


def write_weights(path: Path, state: dict[str, torch.Tensor]) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, path, metadata={"format": "pt"})


def read_weights(path: Path, hint: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise MissingFileError(f"{path.parent} has no {path.name}; {hint}")
    try:
        return load_file(path)
    except SafetensorError as err:
        raise CheckpointError(f"{path} is corrupt or truncated ({err}); re-save or re-copy it") from err


def existing_folder(folder: str | Path) -> Path:
    """``folder`` if it is a folder; else an error that says what happened and how to recover."""
    folder = Path(folder)
    if folder.is_dir():
        return folder
    if folder.exists():
        raise NotADirectoryError(f"{folder} is a file; a model is a folder of {CONFIG_NAME} + {WEIGHTS_NAME}")
    hint = ""
    interrupted = sorted(folder.parent.glob(f".{folder.name}.old-*")) if folder.parent.is_dir() else []
    if interrupted:
        hint = f"; an interrupted save left the previous model at {interrupted[-1]}: rename it back"
    raise MissingFileError(f"no model folder at {folder}{hint}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a model folder's JSON")


class PretrainedModel:
    """``save_pretrained`` / ``from_pretrained`` for a ``torch.nn.Module`` whose ``config`` has
    ``to_dict`` / ``from_dict`` (the Hugging Face convention): ``config.json`` + ``model.safetensors``."""

    model_type: ClassVar[str]
    config_class: ClassVar[type]
    written_by: ClassVar[str] = "model folders are written by save_pretrained"

    def save_pretrained(self, folder: str | Path, extra: Callable[[Path], None] | None = None) -> Path:
        """Write the model to ``folder`` (created or replaced). ``extra(staging)`` may add files that
        belong with it (heads, a model card) so they land in the same atomic rename."""

        def write(staging: Path) -> None:
            write_weights(staging / WEIGHTS_NAME, self.state_dict())  # type: ignore[attr-defined]
            write_json(staging / CONFIG_NAME, self.model_type, config=self.config.to_dict())  # type: ignore[attr-defined]
            self.write_extra_files(staging)
            if extra is not None:
                extra(staging)

        return write_folder(folder, write)

    def write_extra_files(self, staging: Path) -> None:
        """Files of this model kind beside its config and weights. Default: none."""

    @classmethod
    def load_config(cls, folder: str | Path) -> Any:
        """The model's config, without reading the weights."""
        path = existing_folder(folder) / CONFIG_NAME
        stored = read_json(path, cls.model_type, cls.written_by)
        try:
            return cls.config_from_stored(stored.get("config", {}))
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{path} holds an invalid {cls.model_type} config: {err}") from err

    @classmethod
    def config_from_stored(cls, values: dict[str, Any]) -> Any:
        """The config of a stored ``config.json``; a model kind whose config gained fields fills in
        here the values that rebuild folders saved before them."""
        return cls.config_class.from_dict(values)  # type: ignore[attr-defined]

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "cpu") -> Any:
        """The model saved in ``folder``, in eval mode, on ``device``."""
        folder = existing_folder(folder)
        model = cls(cls.load_config(folder))  # type: ignore[call-arg]
        state = read_weights(folder / WEIGHTS_NAME, cls.written_by)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise CheckpointError(
                f"{folder / WEIGHTS_NAME} does not match {folder / CONFIG_NAME}; the two come from different "
                f"models.\n{err}"
            ) from err
        model.read_extra_files(folder)
        return model.loaded(device)

    def read_extra_files(self, folder: Path) -> None:
        """Read what ``write_extra_files`` wrote. Default: nothing."""

    def loaded(self, device: str | torch.device) -> Any:
        return self.to(device).eval()  # type: ignore[attr-defined]
