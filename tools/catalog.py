"""The artifact catalog: a SQLite file in the workspace naming every dataset, model, index...

Each artifact has a unique name, a kind, a path, its parents (lineage: model <- dataset,
index <- model + dataset), metrics and free-form metadata. Tools and the agent refer to
artifacts by name only.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jetfm.backbone.atomic import recover_folder
from jetfm.errors import JetfmError
from jetfm.tools.workspace import KINDS, workspace_root

CATALOG_FILE = "catalog.sqlite"
# Matched with fullmatch: with match, "$" also matches before a final newline, so "name\n" passed.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS artifacts (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    parents TEXT NOT NULL DEFAULT '[]',
    metrics TEXT NOT NULL DEFAULT '{}',
    meta TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
)
"""


class CatalogError(JetfmError, LookupError):
    """An artifact name that is missing, taken or malformed; the message lists what exists."""


@dataclass
class Artifact:
    name: str
    kind: str
    path: str
    parents: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "path": self.path,
            "parents": self.parents,
            "metrics": self.metrics,
            "meta": self.meta,
            "created": self.created,
        }


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise CatalogError(
            f"invalid artifact name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting "
            "with a letter or digit"
        )
    return name


class Catalog:
    """Opened on demand; every call is its own short transaction, so jobs can share it."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else workspace_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / CATALOG_FILE
        with self._connect() as db:
            db.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def register(
        self,
        name: str,
        kind: str,
        path: str | Path,
        parents: list[str] | tuple[str, ...] = (),
        metrics: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
        replace: bool = False,
    ) -> Artifact:
        validate_name(name)
        if kind not in KINDS:
            raise CatalogError(f"unknown artifact kind {kind!r}; choose from {', '.join(KINDS)}")
        for parent in parents:
            self.get(parent)
        existing = self.find(name)
        if existing is not None and not (replace and existing.kind == kind):
            raise CatalogError(
                f"the name {name!r} is already used by a {existing.kind} ({existing.path}); choose another name"
            )
        art = Artifact(name, kind, str(path), list(parents), metrics or {}, meta or {}, time.time())
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    kind,
                    art.path,
                    json.dumps(art.parents),
                    json.dumps(art.metrics),
                    json.dumps(art.meta),
                    art.created,
                ),
            )
        return art

    def find(self, name: str) -> Artifact | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM artifacts WHERE name = ?", (name,)).fetchone()
        return _recovered(_row_to_artifact(row)) if row else None

    def get(self, name: str, kind: str | None = None) -> Artifact:
        """The artifact ``name``; if missing (or of another kind) the error lists those that exist."""
        art = self.find(name)
        if art is None or (kind is not None and art.kind != kind):
            known = [a.name for a in self.list(kind)]
            what = kind or "artifact"
            listing = ", ".join(known) if known else "none yet"
            plural = "indexes" if what == "index" else f"{what}s"
            raise CatalogError(f"no {what} named {name!r} in {self.path}; known {plural}: {listing}")
        return art

    def list(self, kind: str | None = None) -> list[Artifact]:
        with self._connect() as db:
            if kind is None:
                rows = db.execute("SELECT * FROM artifacts ORDER BY created").fetchall()
            else:
                rows = db.execute("SELECT * FROM artifacts WHERE kind = ? ORDER BY created", (kind,)).fetchall()
        return [_recovered(_row_to_artifact(r)) for r in rows]

    def update_metrics(self, name: str, metrics: dict[str, Any]) -> Artifact:
        art = self.get(name)
        art.metrics.update(metrics)
        with self._connect() as db:
            db.execute("UPDATE artifacts SET metrics = ? WHERE name = ?", (json.dumps(art.metrics), name))
        return art

    def remove(self, name: str, confirm: bool = False) -> None:
        """Forget an artifact (its files stay). Needs ``confirm=True``: deleting is never implicit."""
        self.get(name)
        if not confirm:
            raise CatalogError(f"removing {name!r} needs an explicit confirmation (confirm=True / --yes)")
        children = [a.name for a in self.list() if name in a.parents]
        if children:
            raise CatalogError(f"{name!r} is a parent of {', '.join(children)}; remove those first")
        with self._connect() as db:
            db.execute("DELETE FROM artifacts WHERE name = ?", (name,))


def _recovered(art: Artifact) -> Artifact:
    """``art``, its folder first put back if a write of it was cut between the two renames of a swap."""
    if not Path(art.path).exists():
        recover_folder(art.path)
    return art


def _row_to_artifact(row: tuple) -> Artifact:
    name, kind, path, parents, metrics, meta, created = row
    return Artifact(name, kind, path, json.loads(parents), json.loads(metrics), json.loads(meta), created)
