"""The models shipped inside the package (backbone/pretrained): where they are and their names.

Kept apart from tools/models.py, which imports torch and the data stack, so that naming a shipped
model (the registry's validators, the assistant's catalog context) costs no heavy imports.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "backbone" / "pretrained"
DEFAULT_MODEL = "jetfm-default"


def shipped_models() -> list[str]:
    """Names of the shipped model folders (those with a config.json), sorted."""
    return sorted(p.name for p in SHIPPED_DIR.glob("*") if (p / "config.json").exists())
