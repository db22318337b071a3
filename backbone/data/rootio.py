"""Writing jets as ROOT TTrees (JetClass schema) with provenance, atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from jetfm.backbone.atomic import atomic_path
from jetfm.backbone.data.schema import (
    JET_BRANCHES,
    LABEL_BRANCHES,
    PARTICLE_BRANCHES,
    PROVENANCE_KEY,
    TREE_NAME,
)

_INT_JET_BRANCHES = {"jet_nparticles"}
BASKET_JETS = 10_000


_PARTICLE_PREFIX = "part"
_PARTICLE_FIELDS = [name.removeprefix(f"{_PARTICLE_PREFIX}_") for name in PARTICLE_BRANCHES]


def _branch_types() -> dict[str, Any]:
    # One jagged record "part" -> branches part_px, part_py, ... sharing one counter "npart".
    shape = "var * {" + ", ".join(f"{f}: float32" for f in _PARTICLE_FIELDS) + "}"
    types: dict[str, Any] = {_PARTICLE_PREFIX: ak.types.from_datashape(shape, highlevel=False)}
    for name in JET_BRANCHES:
        types[name] = np.int32 if name in _INT_JET_BRANCHES else np.float32
    for name in LABEL_BRANCHES.values():
        types[name] = np.int32
    return types


def _as_branches(jets: ak.Array) -> dict[str, Any]:
    out: dict[str, Any] = {
        _PARTICLE_PREFIX: ak.zip(
            {
                f: ak.values_astype(jets[name], np.float32)
                for f, name in zip(_PARTICLE_FIELDS, PARTICLE_BRANCHES)
            }
        )
    }
    for name in JET_BRANCHES:
        out[name] = ak.to_numpy(jets[name]).astype(np.int32 if name in _INT_JET_BRANCHES else np.float32)
    for name in LABEL_BRANCHES.values():
        out[name] = ak.to_numpy(jets[name]).astype(np.int32)
    return out


def write_jets(path: str | os.PathLike, jets: ak.Array, provenance: dict[str, Any]) -> Path:
    """Write ``jets`` (schema fields) to ``path`` as TTree ``tree`` plus a provenance string.

    The file is written under a temporary name and renamed, so an interrupted write never
    leaves a half-written file where a good one was expected.
    """
    path = Path(path)
    with atomic_path(path) as tmp, uproot.recreate(tmp) as f:
        # mktree + extend writes a classic TTree; f[name] = {...} would write an RNTuple.
        tree = f.mktree(TREE_NAME, _branch_types(), title="jetfm jets")
        # One extend per basket: readers then decompress ~10k jets at a time, not the whole file.
        for start in range(0, len(jets), BASKET_JETS):
            tree.extend(_as_branches(jets[start : start + BASKET_JETS]))
        f[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True)
    return path


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """The generator settings and seed stored in one of our files ({} for foreign files)."""
    with uproot.open(path) as f:
        if PROVENANCE_KEY not in f:
            return {}
        return json.loads(str(f[PROVENANCE_KEY]))
