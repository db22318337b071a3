"""Reading jets a physicist brings -- ROOT, HDF5, parquet -- into the schema awkward form.

Supported inputs (the format is told by the file's magic bytes, never by its extension):

- ROOT: our files and JetClass files, TTree ``tree`` with JetClass branch names. Branches we do
  not know are ignored.
- HDF5, top-tagging reference (pandas HDFStore, key ``table``, columns ``E_i PX_i PY_i PZ_i``
  zero-padded, ``is_signal_new``: 1 top, 0 QCD).
- HDF5, Aspen-Open-Jets style (datasets ``PFCands`` (N, P, F) and ``jet_kinematics`` (N, k)).
- parquet, JetClass-II style (JetClass column names, particle columns as lists).

Branches a foreign file lacks are filled so that every array has the full schema:
``part_deta``/``part_dphi`` relative to the jet axis and ``jet_pt/eta/phi/energy/mass/nparticles``
are derived from the constituent four-vector sum; charge and particle-ID flags become 0; labels
become all 0 (unknown). ``jet_sdmass`` and ``jet_tau1..4`` cannot be derived without
re-clustering, so they become NaN: they are jet-level observables only, never model inputs, and
consumers (summaries, plots) must skip NaN. What was filled is recorded in :class:`ReadReport`.

Jets with NaN/inf values or no constituents are dropped; every drop is counted in the
:class:`ReadReport` and logged as a warning, never silent. Entry ranges (``entry_start``,
``entry_stop``) count the jets stored in the files, before any drop.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import awkward as ak
import numpy as np

from jetfm.backbone.data.errors import DataError
from jetfm.backbone.data.kinematics import pt_eta_phi_mass, wrap_phi
from jetfm.backbone.data.schema import (
    ALL_BRANCHES,
    JET_BRANCHES,
    LABEL_BRANCHES,
    PARTICLE_BRANCHES,
    PARTICLE_KINEMATICS,
    PID_FLAGS,
    TREE_NAME,
    pid_flags,
)

log = logging.getLogger(__name__)

PathLike = str | os.PathLike
Source = PathLike | Sequence[PathLike]

FORMATS = ("root", "hdf5", "parquet")
# Files in a directory or glob with these suffixes are meant as data: a bad one is an error, not
# skipped. Other files there are taken only if their magic bytes say ROOT/HDF5/parquet.
_DATA_SUFFIXES = {".root", ".h5", ".hdf5", ".hdf", ".parquet", ".pq"}
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# HDF5 allows a user block before the superblock, so the signature may sit at these offsets.
_HDF5_OFFSETS = (0, 512, 1024, 2048, 4096)

_INT_JET_BRANCHES = {"jet_nparticles"}
# Absent -> NaN: they need re-clustering to compute. Jet-level observables only, never features.
_NAN_IF_ABSENT = ("jet_sdmass", "jet_tau1", "jet_tau2", "jet_tau3", "jet_tau4")
_DERIVED_JET = ("jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_mass", "jet_nparticles")
_LABELS = tuple(LABEL_BRANCHES.values())
# Yes/no branches may be stored as booleans; a boolean momentum, charge or observable is a broken file.
_BOOLEAN_OK = frozenset((*PID_FLAGS, *_LABELS))
_FIX = "check the file, re-copy or regenerate it"


# --------------------------------------------------------------------------- report


@dataclass
class ReadReport:
    """What a read delivered and what it dropped or filled; pass one in to collect the counts.

    ``filled`` maps a file to the schema branches it lacked (derived, zero- or NaN-filled).
    """

    files: list[str] = field(default_factory=list)
    jets_read: int = 0
    jets_kept: int = 0
    dropped_nonfinite: int = 0
    dropped_empty: int = 0
    filled: dict[str, list[str]] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return self.dropped_nonfinite + self.dropped_empty

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "dropped": self.dropped}

    def message(self) -> str:
        """One line for a CLI: how many jets were kept and why the others were dropped."""
        return (
            f"read {self.jets_read} jets from {len(self.files)} file(s), kept {self.jets_kept}, "
            f"dropped {self.dropped} ({self.dropped_nonfinite} with NaN/inf values, "
            f"{self.dropped_empty} with no constituents)"
        )


# --------------------------------------------------------------------------- paths and formats


def detect_format(path: PathLike) -> str:
    """``"root"``, ``"hdf5"`` or ``"parquet"`` from the file's magic bytes; DataError otherwise."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path (a directory or glob of shards works too)")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    kind = _sniff(path)
    if kind is None:
        raise DataError(
            f"{path}: not a ROOT, HDF5 or parquet file (unrecognised magic bytes); "
            "jetfm reads ROOT TTrees, top-tagging/Aspen HDF5 and JetClass-II parquet"
        )
    return kind


def _sniff(path: Path) -> str | None:
    with open(path, "rb") as f:
        head = f.read(4)
        if head == b"root":
            return "root"
        if head == b"PAR1":
            return "parquet"
        for offset in _HDF5_OFFSETS:
            f.seek(offset)
            if f.read(8) == _HDF5_MAGIC:
                return "hdf5"
    return None


def resolve_paths(source: Source) -> list[Path]:
    """Files named by ``source``: a file, a directory of shards, a glob, or a list of these.

    Directories and globs expand to their sorted data files (hidden and temporary files, such
    as a writer's ``.name.tmp``, are skipped); explicitly named files are taken as they are.
    """
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not items:
        raise DataError("no input files given; pass a file, a directory of shards or a glob")
    paths: list[Path] = []
    for item in items:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            found = _data_files(sorted(path.iterdir()))
            if not found:
                raise DataError(f"{path}: directory holds no ROOT, HDF5 or parquet files")
            paths.extend(found)
        elif not path.exists() and any(c in text for c in "*?["):
            found = _data_files([Path(p) for p in sorted(glob.glob(text))])
            if not found:
                raise DataError(f"{text}: the pattern matches no ROOT, HDF5 or parquet files")
            paths.extend(found)
        else:
            paths.append(path)
    return paths


def _data_files(candidates: list[Path]) -> list[Path]:
    return [
        p
        for p in candidates
        if p.is_file() and not p.name.startswith(".") and (p.suffix.lower() in _DATA_SUFFIXES or _sniff(p) is not None)
    ]


# --------------------------------------------------------------------------- chunks


@dataclass
class _Chunk:
    """Jets in flat form: particle fields share ``offsets``; ``invalid`` marks jets with nulls."""

    path: Path
    start: int
    offsets: np.ndarray
    part: dict[str, np.ndarray]
    jet: dict[str, np.ndarray]
    invalid: np.ndarray | None = None
    entries: np.ndarray | None = None  # stored entry of each jet in its file; None: start, start + 1, ...

    @property
    def n(self) -> int:
        return len(self.offsets) - 1

    def entry_numbers(self) -> np.ndarray:
        if self.entries is None:
            return np.arange(self.start, self.start + self.n, dtype=np.int64)
        return self.entries


class _Reader(Protocol):
    path: Path
    absent: list[str]

    def __len__(self) -> int: ...

    def chunks(self, start: int, stop: int, step: int) -> Iterator[_Chunk]: ...

    def verify(self) -> None: ...

    def close(self) -> None: ...


class _Base:
    """Opens and checks a file; whatever was opened is closed again if the check fails."""

    absent: list[str]

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._setup(path)
        except BaseException:
            self.close()
            raise

    def _setup(self, path: Path) -> None:
        raise NotImplementedError

    def close(self) -> None:
        for name in ("_file", "_store"):
            handle = getattr(self, name, None)
            if handle is not None:
                handle.close()


class _RandomAccess(_Base):
    """Chunking for readers that can read any row range cheaply (HDF5, parquet)."""

    def read(self, start: int, stop: int) -> _Chunk:
        raise NotImplementedError

    def chunks(self, start: int, stop: int, step: int) -> Iterator[_Chunk]:
        for first in range(start, stop, step):
            yield self.read(first, min(first + step, stop))

    def verify(self) -> None:
        """Reads the last jet: the end of the data is where a cut-short copy fails."""
        n = len(self)
        if n:
            self.read(n - 1, n)


def flat_particles(jets: ak.Array, names: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Shared offsets (N+1, from 0) and flat numpy contents of the jagged fields ``names``."""
    offsets: np.ndarray | None = None
    flat: dict[str, np.ndarray] = {}
    for name in names:
        layout = ak.to_layout(jets[name])
        if not isinstance(layout, ak.contents.ListOffsetArray) or not isinstance(
            layout.content, ak.contents.NumpyArray
        ):
            layout = ak.to_layout(ak.to_packed(jets[name]))
        if not isinstance(layout, ak.contents.ListOffsetArray) or not isinstance(
            layout.content, ak.contents.NumpyArray
        ):
            raise DataError(f"field {name!r} is {ak.type(jets[name])}, expected var * number")
        own = np.asarray(layout.offsets.data, dtype=np.int64)
        flat[name] = np.asarray(layout.content.data)[own[0] : own[-1]]
        own = own - own[0]
        if offsets is None:
            offsets = own
        elif not np.array_equal(offsets, own):
            raise DataError(f"field {name!r} has different particle counts than {names[0]!r}")
    assert offsets is not None, "flat_particles needs at least one field"
    return offsets, flat


def _jet_index(offsets: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def _number_kinds(name: str) -> str:
    """The numpy dtype kinds branch ``name`` may hold: booleans only for flags and labels."""
    return "fiub" if name in _BOOLEAN_OK else "fiu"


def _numeric(values: np.ndarray, path: Path, name: str) -> np.ndarray:
    if values.dtype.kind not in _number_kinds(name):
        want = "numbers (not booleans)" if values.dtype.kind == "b" else "numbers"
        raise DataError(
            f"{path}: branch {name!r} holds {values.dtype} values, expected {want}; "
            "the file is not a jet file in the JetClass schema"
        )
    return values


def _complete(chunk: _Chunk) -> _Chunk:
    """Fill every schema branch the file lacks (derive kinematics, zero flags, NaN observables)."""
    part, jet, offsets = chunk.part, chunk.jet, chunk.offsets
    n = chunk.n
    needs_axis = [b for b in ("part_deta", "part_dphi", *_DERIVED_JET) if b not in part and b not in jet]
    if needs_axis:
        _derive_from_constituents(part, jet, offsets)
    for name in PARTICLE_BRANCHES:
        part.setdefault(name, np.zeros(offsets[-1], np.float32))
    for name in _NAN_IF_ABSENT:
        jet.setdefault(name, np.full(n, np.nan, np.float32))
    for name in _LABELS:
        jet.setdefault(name, np.zeros(n, np.int32))
    return chunk


def _derive_from_constituents(part: dict, jet: dict, offsets: np.ndarray) -> None:
    """Jet axis and kinematics from the constituent sum, for the branches that are absent."""
    n = len(offsets) - 1
    idx = _jet_index(offsets)
    px, py, pz, e = (part[b].astype(np.float64) for b in PARTICLE_KINEMATICS)
    sums = [np.bincount(idx, weights=v, minlength=n) for v in (px, py, pz, e)]
    jpt, jeta, jphi, jmass = pt_eta_phi_mass(*sums)
    with np.errstate(divide="ignore", invalid="ignore"):
        derived = {
            "jet_pt": jpt,
            "jet_eta": jeta,
            "jet_phi": jphi,
            "jet_energy": sums[3],
            "jet_mass": jmass,
            "jet_nparticles": np.diff(offsets),
        }
        for name, values in derived.items():
            jet.setdefault(name, values.astype(np.int32 if name in _INT_JET_BRANCHES else np.float32))
        # The axis is the jet's (stored or derived) eta/phi, so deta/dphi agree with jet_eta/phi.
    _, eta, phi, _ = pt_eta_phi_mass(px, py, pz, e)
    if "part_deta" not in part:
        part["part_deta"] = (eta - jet["jet_eta"][idx]).astype(np.float32)
    if "part_dphi" not in part:
        part["part_dphi"] = wrap_phi(phi - jet["jet_phi"][idx]).astype(np.float32)


def _bad_jets(chunk: _Chunk, checked_jet: Sequence[str]) -> np.ndarray:
    """Jets with a NaN/inf value in a particle field or in one of ``checked_jet``."""
    n, offsets = chunk.n, chunk.offsets
    bad = np.zeros(n, bool) if chunk.invalid is None else chunk.invalid.copy()
    flat_bad: np.ndarray | None = None
    for values in chunk.part.values():
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            here = ~np.isfinite(values)
            flat_bad = here if flat_bad is None else flat_bad | here
    if flat_bad is not None:
        bad[np.searchsorted(offsets, np.flatnonzero(flat_bad), side="right") - 1] = True
    for name in checked_jet:
        values = chunk.jet[name]
        if values.dtype.kind == "f":
            bad |= ~np.isfinite(values)
    return bad


def _select(chunk: _Chunk, keep: np.ndarray) -> _Chunk:
    counts = np.diff(chunk.offsets)
    keep_part = np.repeat(keep, counts)
    offsets = np.concatenate([[0], np.cumsum(counts[keep])]).astype(np.int64)
    part = {k: v[keep_part] for k, v in chunk.part.items()}
    jet = {k: v[keep] for k, v in chunk.jet.items()}
    return _Chunk(chunk.path, chunk.start, offsets, part, jet, entries=chunk.entry_numbers()[keep])


def _clean(chunk: _Chunk, absent: Sequence[str], report: ReadReport) -> _Chunk:
    """Drop jets with NaN/inf values or no constituents, counting and logging the drops."""
    checked = [b for b in JET_BRANCHES if b not in absent or b in _DERIVED_JET]
    empty = np.diff(chunk.offsets) == 0
    nonfinite = _bad_jets(chunk, checked) & ~empty
    n_empty, n_nonfinite = int(empty.sum()), int(nonfinite.sum())
    report.jets_read += chunk.n
    report.dropped_empty += n_empty
    report.dropped_nonfinite += n_nonfinite
    if n_empty or n_nonfinite:
        log.warning(
            "%s: dropped %d of %d jets in entries [%d, %d): %d with NaN/inf values, %d with no constituents",
            chunk.path,
            n_empty + n_nonfinite,
            chunk.n,
            chunk.start,
            chunk.start + chunk.n,
            n_nonfinite,
            n_empty,
        )
        chunk = _select(chunk, ~(empty | nonfinite))
    report.jets_kept += chunk.n
    return chunk


def _to_awkward(chunk: _Chunk) -> ak.Array:
    """The schema record array; particle fields share one offsets buffer (no copies)."""
    offsets = ak.index.Index64(chunk.offsets)
    contents: list[ak.contents.Content] = []
    for name in ALL_BRANCHES:
        if name in chunk.part:
            values = np.ascontiguousarray(chunk.part[name], dtype=np.float32)
            contents.append(ak.contents.ListOffsetArray(offsets, ak.contents.NumpyArray(values)))
        else:
            dtype = np.int32 if name in _INT_JET_BRANCHES or name in _LABELS else np.float32
            contents.append(ak.contents.NumpyArray(np.ascontiguousarray(chunk.jet[name], dtype=dtype)))
    return ak.Array(ak.contents.RecordArray(contents, list(ALL_BRANCHES), length=chunk.n))


# --------------------------------------------------------------------------- ROOT


class _RootReader(_Base):
    """Our files and JetClass files: TTree ``tree`` with JetClass branch names."""

    def _setup(self, path: Path) -> None:
        import uproot

        try:
            self._file = uproot.open(path)
            keys = self._file.keys(cycle=False)
        except Exception as err:
            raise DataError(f"{path}: cannot open as ROOT ({err}); the file is truncated or corrupt, {_FIX}") from err
        if TREE_NAME not in keys:
            raise DataError(
                f"{path}: no TTree {TREE_NAME!r} (found: {', '.join(keys) or 'nothing'}); "
                "jetfm reads JetClass-style files whose jets are in a TTree named 'tree'"
            )
        classname = self._file.classname_of(TREE_NAME)
        if classname != "TTree":
            raise DataError(
                f"{path}: {TREE_NAME!r} is a {classname}, not a TTree; jetfm reads TTrees (uproot writes "
                "them with mktree + extend, as backbone.data.rootio does)"
            )
        try:
            self._tree = self._file[TREE_NAME]
            names = set(self._tree.keys())
        except Exception as err:
            raise DataError(f"{path}: cannot read TTree {TREE_NAME!r} ({err}); {_FIX}") from err
        _require(path, names, "branches")
        self._branches = [b for b in ALL_BRANCHES if b in names]
        self.absent = [b for b in ALL_BRANCHES if b not in names]
        for name in self._branches:
            self._check_interpretation(name)

    def _check_interpretation(self, name: str) -> None:
        import uproot

        interp = self._tree[name].interpretation
        jagged = name in PARTICLE_BRANCHES
        inner = interp.content if isinstance(interp, uproot.AsJagged) else interp
        ok = (isinstance(interp, uproot.AsJagged) == jagged) and isinstance(inner, uproot.AsDtype)
        boolean = isinstance(inner, uproot.AsDtype) and inner.to_dtype.kind == "b"
        if ok:
            dtype = inner.to_dtype
            ok = dtype.kind in _number_kinds(name) and dtype.shape == ()
        if not ok:
            want = "a list of numbers per jet (e.g. vector<float>)" if jagged else "one number per jet"
            if boolean:
                want += ", not booleans"
            raise DataError(
                f"{self.path}: branch {name!r} has type {self._tree[name].typename}, expected {want}; "
                "the file does not follow the JetClass schema"
            )

    def __len__(self) -> int:
        return int(self._tree.num_entries)

    def verify(self) -> None:
        """Every basket of the branches read lies inside the file, and the last entry (the last
        basket of each branch) decompresses: a truncated or cut-short copy fails here, cheaply."""
        n = len(self)
        if n == 0:
            return
        size = self.path.stat().st_size
        for name in self._branches:
            branch = self._tree[name]
            for part in (branch, branch.count_branch):  # a TBranch has a len (its sub-branches): test None
                baskets = 0 if part is None else part.num_baskets
                if baskets == 0:  # no counter, or the data is embedded in the tree's own record
                    continue
                ends = part.member("fBasketSeek")[:baskets] + part.member("fBasketBytes")[:baskets]
                end = int(ends.max())
                if end > size:
                    raise DataError(
                        f"{self.path}: truncated: the file is {size} bytes but branch {part.name!r} has data up "
                        f"to byte {end}; the copy was cut short, {_FIX}"
                    )
        try:
            self._tree.arrays(self._branches, entry_start=n - 1, entry_stop=n, library="ak")
        except Exception as err:
            raise DataError(
                f"{self.path}: cannot read its last entry {n - 1} ({err}); the file is truncated or corrupt, {_FIX}"
            ) from err

    def chunks(self, start: int, stop: int, step: int) -> Iterator[_Chunk]:
        # uproot's iterate keeps a basket that spans two steps instead of decompressing it twice.
        steps = self._tree.iterate(self._branches, step_size=step, entry_start=start, entry_stop=stop, library="ak")
        while True:
            try:
                arrays = next(steps)
            except StopIteration:
                return
            except Exception as err:
                raise DataError(
                    f"{self.path}: cannot read entries from {start} on ({err}); the file is truncated "
                    f"or corrupt, {_FIX}"
                ) from err
            yield self._chunk(arrays, start)
            start += len(arrays)

    def _chunk(self, arrays: ak.Array, start: int) -> _Chunk:
        particles = [b for b in self._branches if b in PARTICLE_BRANCHES]
        try:
            offsets, part = flat_particles(arrays, particles)
        except DataError as err:
            raise DataError(f"{self.path}: {err}; the file is inconsistent, {_FIX}") from err
        jet = {b: ak.to_numpy(arrays[b]) for b in self._branches if b not in PARTICLE_BRANCHES}
        return _Chunk(self.path, start, offsets, part, jet)


def _require(path: Path, names: set[str], what: str) -> None:
    missing = [b for b in PARTICLE_KINEMATICS if b not in names]
    if missing:
        raise DataError(
            f"{path}: required {what} {', '.join(missing)} missing; jetfm needs the constituent "
            f"four-momenta {', '.join(PARTICLE_KINEMATICS)} (JetClass names)"
        )


# --------------------------------------------------------------------------- HDF5


def _open_hdf5(path: Path) -> _Reader:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            keys = list(f.keys())
    except Exception as err:
        raise DataError(f"{path}: cannot open as HDF5 ({err}); the file is truncated or corrupt, {_FIX}") from err
    if "PFCands" in keys:
        return _AspenReader(path)
    if "table" in keys:
        return _TopTaggingReader(path)
    raise DataError(
        f"{path}: HDF5 file with neither 'PFCands' (Aspen Open Jets) nor 'table' (top-tagging "
        f"reference) (found: {', '.join(keys) or 'nothing'}); jetfm cannot tell which jets it holds"
    )


class _TopTaggingReader(_RandomAccess):
    """The top-tagging reference: a pandas HDFStore, key ``table``, ``E_i PX_i PY_i PZ_i``."""

    def _setup(self, path: Path) -> None:
        import pandas as pd

        try:
            self._store = pd.HDFStore(path, mode="r")
            storer = self._store.get_storer("table")
            head = self._store.select("table", start=0, stop=1)
        except Exception as err:
            raise DataError(
                f"{path}: cannot read pandas table 'table' ({err}); the file is truncated or corrupt, {_FIX}"
            ) from err
        self._is_table = bool(storer.is_table)
        self._n = int(storer.nrows if self._is_table else storer.shape[0])
        self._slots = _count_slots(path, list(head.columns))
        self._label = "is_signal_new" in head.columns
        provided = {*PARTICLE_KINEMATICS, *(("label_QCD", "label_Tbqq") if self._label else ())}
        self.absent = [b for b in ALL_BRANCHES if b not in provided]
        for col in self._columns():
            # Only the label may be boolean; constituent momenta must be numbers.
            if head[col].dtype.kind not in ("fiub" if col == "is_signal_new" else "fiu"):
                raise DataError(
                    f"{path}: column {col!r} holds {head[col].dtype} values, expected numbers"
                    f"{' (not booleans)' if head[col].dtype.kind == 'b' else ''}; "
                    "the file is not a top-tagging reference file"
                )

    def _columns(self) -> list[str]:
        cols = [f"{p}_{i}" for p in ("E", "PX", "PY", "PZ") for i in range(self._slots)]
        return [*cols, "is_signal_new"] if self._label else cols

    def __len__(self) -> int:
        return self._n

    def read(self, start: int, stop: int) -> _Chunk:
        try:
            # Fixed-format stores (not tables) accept row ranges but no column selection.
            columns = self._columns() if self._is_table else None
            df = self._store.select("table", start=start, stop=stop, columns=columns)
        except Exception as err:
            raise DataError(f"{self.path}: cannot read rows [{start}, {stop}) ({err}); {_FIX}") from err
        dense = {
            name: df[[f"{p}_{i}" for i in range(self._slots)]].to_numpy(np.float32)
            for name, p in zip(PARTICLE_KINEMATICS, ("PX", "PY", "PZ", "E"), strict=True)
        }
        offsets, part = _from_padded(dense, dense["part_energy"] != 0)
        jet: dict[str, np.ndarray] = {}
        if self._label:
            top = df["is_signal_new"].to_numpy() == 1
            jet[LABEL_BRANCHES["top"]] = top.astype(np.int32)
            jet[LABEL_BRANCHES["qcd"]] = (~top).astype(np.int32)
        return _Chunk(self.path, start, offsets, part, jet)


def _count_slots(path: Path, columns: list[str]) -> int:
    """Number of constituent slots: the largest i with all of E_i, PX_i, PY_i, PZ_i, plus one."""
    slots = 0
    have = set(columns)
    while all(f"{p}_{slots}" in have for p in ("E", "PX", "PY", "PZ")):
        slots += 1
    if slots == 0:
        raise DataError(
            f"{path}: table has no constituent columns E_0, PX_0, PY_0, PZ_0; a top-tagging "
            "reference file stores constituents as E_i, PX_i, PY_i, PZ_i"
        )
    return slots


def _from_padded(dense: dict[str, np.ndarray], mask: np.ndarray) -> tuple[np.ndarray, dict]:
    """Zero-padded (N, P) arrays -> offsets and flat contents of the real (masked) particles."""
    counts = mask.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return offsets, {name: values[mask] for name, values in dense.items()}


def _hdf5_dataset(path: Path, file: Any, key: str, shape: str, optional: bool = False) -> Any:
    """``file[key]`` if it is an HDF5 dataset (not a group, a broken link, ...); DataError otherwise."""
    import h5py

    try:
        item = file.get(key)
    except Exception as err:  # e.g. a link to a file that is not there
        raise DataError(f"{path}: cannot open {key!r} ({err}); {_FIX}") from err
    if item is None and optional and key not in list(file):  # iterating lists links to nothing too; "in" does not
        return None
    if not isinstance(item, h5py.Dataset):
        kind = "a group" if isinstance(item, h5py.Group) else type(item).__name__
        kind = "a link to nothing (a dangling or external link)" if item is None else kind
        raise DataError(
            f"{path}: {key!r} is {kind}, not a dataset; an Aspen-Open-Jets-style file stores {key!r} as one "
            f"array of numbers shaped {shape}"
        )
    return item


class _AspenReader(_RandomAccess):
    """Aspen-Open-Jets-style HDF5: ``PFCands`` (N, P, F) and ``jet_kinematics`` (N, k).

    Column order, checked against a public Aspen Open Jets loader (it reads px, py, pz, E from
    columns 0-3, d0, d0Err, dz, dzErr from 4-7 and pdgId from the second-to-last column) and the
    dataset description (PFCands: px, py, pz, E, d0, d0Err, dz, dzErr, charge, pdgId, PUPPI
    weight): charge is column 8, pdgId column 9. ``jet_kinematics`` holds pt, eta, phi,
    msoftdrop in columns 0-3. Zero-energy rows are padding.
    """

    _CHARGE, _PDGID = 8, 9

    def _setup(self, path: Path) -> None:
        import h5py

        self._file = h5py.File(path, "r")
        self._pf = _hdf5_dataset(path, self._file, "PFCands", "(jets, particles, features)")
        self._kin = _hdf5_dataset(path, self._file, "jet_kinematics", "(jets, k>=4)", optional=True)
        self._check()
        self._has_pid = self._pf.shape[2] > self._PDGID
        provided = {*PARTICLE_KINEMATICS}
        if self._has_pid:
            provided |= {"part_charge", *PID_FLAGS}
        if self._kin is not None:
            provided |= {"jet_pt", "jet_eta", "jet_phi", "jet_sdmass"}
        self.absent = [b for b in ALL_BRANCHES if b not in provided]

    def _check(self) -> None:
        pf, kin = self._pf, self._kin
        if pf.ndim != 3 or pf.shape[2] < 4 or pf.dtype.kind not in "fiu":
            raise DataError(
                f"{self.path}: dataset 'PFCands' is {pf.dtype} {pf.shape}, expected numbers shaped "
                "(jets, particles, features) with px, py, pz, E in the first four features"
            )
        if kin is not None and (kin.ndim != 2 or kin.shape[1] < 4 or kin.dtype.kind not in "fiu"):
            raise DataError(
                f"{self.path}: dataset 'jet_kinematics' is {kin.dtype} {kin.shape}, expected numbers "
                "shaped (jets, k>=4) with pt, eta, phi, msoftdrop"
            )
        if kin is not None and kin.shape[0] != pf.shape[0]:
            raise DataError(
                f"{self.path}: 'jet_kinematics' has {kin.shape[0]} jets but 'PFCands' has "
                f"{pf.shape[0]}; the file is inconsistent, {_FIX}"
            )

    def __len__(self) -> int:
        return int(self._pf.shape[0])

    def read(self, start: int, stop: int) -> _Chunk:
        try:
            pf = self._pf[start:stop]
            kin = None if self._kin is None else self._kin[start:stop]
        except Exception as err:
            raise DataError(f"{self.path}: cannot read jets [{start}, {stop}) ({err}); {_FIX}") from err
        dense = {name: pf[:, :, col] for col, name in enumerate(PARTICLE_KINEMATICS)}
        if self._has_pid:
            dense["part_charge"] = pf[:, :, self._CHARGE]
            dense.update(pid_flags(np.abs(pf[:, :, self._PDGID]), pf[:, :, self._CHARGE]))
        offsets, part = _from_padded(dense, pf[:, :, 3] != 0)
        jet: dict[str, np.ndarray] = {}
        if kin is not None:
            for col, name in enumerate(("jet_pt", "jet_eta", "jet_phi", "jet_sdmass")):
                jet[name] = kin[:, col]
        return _Chunk(self.path, start, offsets, part, jet)


# --------------------------------------------------------------------------- parquet


class _ParquetReader(_RandomAccess):
    """JetClass-II-style parquet: JetClass column names, particle columns as lists."""

    def _setup(self, path: Path) -> None:
        import pyarrow.parquet as pq

        try:
            self._file = pq.ParquetFile(path)
            schema = self._file.schema_arrow
        except Exception as err:
            raise DataError(
                f"{path}: cannot open as parquet ({err}); the file is truncated or corrupt, {_FIX}"
            ) from err
        _require(path, set(schema.names), "columns")
        self._columns = [b for b in ALL_BRANCHES if b in schema.names]
        self.absent = [b for b in ALL_BRANCHES if b not in schema.names]
        for name in self._columns:
            _check_arrow_type(path, name, schema.field(name).type)
        meta = self._file.metadata
        self._group_starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])

    def __len__(self) -> int:
        return int(self._group_starts[-1])

    def read(self, start: int, stop: int) -> _Chunk:
        # Only the row groups that overlap [start, stop) are read.
        first = int(np.searchsorted(self._group_starts, start, side="right") - 1)
        last = int(np.searchsorted(self._group_starts, stop, side="left"))
        try:
            table = self._file.read_row_groups(list(range(first, last)), columns=self._columns)
        except Exception as err:
            raise DataError(f"{self.path}: cannot read rows [{start}, {stop}) ({err}); {_FIX}") from err
        table = table.slice(start - int(self._group_starts[first]), stop - start)
        invalid = np.zeros(table.num_rows, bool)
        offsets: np.ndarray | None = None
        part: dict[str, np.ndarray] = {}
        jet: dict[str, np.ndarray] = {}
        for name in self._columns:
            column = table.column(name).combine_chunks()
            invalid |= _nulls(column)
            if name in PARTICLE_BRANCHES:
                own = np.asarray(column.offsets, dtype=np.int64)
                own = own - own[0]
                if offsets is None:
                    offsets = own
                elif not np.array_equal(offsets, own):
                    raise DataError(
                        f"{self.path}: column {name!r} has different particle counts than "
                        f"{self._columns[0]!r}; the file is inconsistent, {_FIX}"
                    )
                part[name] = _arrow_numbers(_list_values(column))
            else:
                jet[name] = _arrow_numbers(column)
        assert offsets is not None
        return _Chunk(self.path, start, offsets, part, jet, invalid)


def _check_arrow_type(path: Path, name: str, dtype: Any) -> None:
    import pyarrow as pa

    jagged = name in PARTICLE_BRANCHES
    is_list = pa.types.is_list(dtype) or pa.types.is_large_list(dtype)
    inner = dtype.value_type if is_list else dtype
    numeric = pa.types.is_integer(inner) or pa.types.is_floating(inner)
    numeric = numeric or (pa.types.is_boolean(inner) and name in _BOOLEAN_OK)
    if is_list != jagged or not numeric:
        want = "a list of numbers per jet" if jagged else "one number per jet"
        if pa.types.is_boolean(inner):
            want += ", not booleans"
        raise DataError(
            f"{path}: column {name!r} has type {dtype}, expected {want}; the file does not follow the JetClass schema"
        )


def _nulls(column: Any) -> np.ndarray:
    """Jets with a null entry (a null list or a null value inside one): they count as invalid."""
    import pyarrow as pa

    bad = np.zeros(len(column), bool)
    if column.null_count:
        bad |= np.asarray(column.is_null())
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        values = _list_values(column)
        if values.null_count:
            own = np.asarray(column.offsets, dtype=np.int64)
            where = np.flatnonzero(np.asarray(values.is_null()))
            bad[np.searchsorted(own - own[0], where, side="right") - 1] = True
    return bad


def _list_values(column: Any) -> Any:
    """The values behind a (possibly sliced) list array, aligned with its offsets.

    ``ListArray.flatten`` would skip values behind null lists and break that alignment.
    """
    own = column.offsets
    first, last = own[0].as_py(), own[len(own) - 1].as_py()
    return column.values.slice(first, last - first)


def _arrow_numbers(array: Any) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if array.null_count:
        # Nulls become NaN here; the jets holding them are dropped through ``invalid``.
        array = pc.fill_null(array.cast(pa.float64()), np.nan)
    return array.to_numpy(zero_copy_only=False)


# --------------------------------------------------------------------------- public API


def _open(path: Path) -> _Reader:
    kind = detect_format(path)
    if kind == "root":
        return _RootReader(path)
    if kind == "hdf5":
        return _open_hdf5(path)
    return _ParquetReader(path)


class CheckedFile(NamedTuple):
    """A file read through to its last entry: its jet count (stored jets) and its size in bytes."""

    path: Path
    n_jets: int
    size: int


def check_files(source: Source) -> list[CheckedFile]:
    """Every file of ``source`` opened, its layout checked and its last entry read, so a file
    cut short or corrupt at the end is found now, not halfway through a later read. A DataError
    names every file that fails (and why); nothing is returned then."""
    checked: list[CheckedFile] = []
    problems: list[str] = []
    paths = resolve_paths(source)
    for path in paths:
        try:
            reader = _open(path)
            try:
                reader.verify()
                n = len(reader)
            finally:
                reader.close()
        except DataError as err:
            problems.append(str(err))
            continue
        checked.append(CheckedFile(path, n, path.stat().st_size))
    if problems:
        raise DataError(
            f"{len(problems)} of {len(paths)} file(s) cannot be read: " + " | ".join(problems)
        )
    return checked


def count_jets(source: Source) -> int:
    """Number of jets stored in ``source`` (metadata only; drops on reading may deliver fewer)."""
    total = 0
    for path in resolve_paths(source):
        reader = _open(path)
        try:
            total += len(reader)
        finally:
            reader.close()
    return total


class LocatedJets(NamedTuple):
    """A chunk of jets and where each came from: ``file_index`` into the resolved files of the
    source (``resolve_paths(source)``), ``entries`` the jets' stored entry numbers in that file."""

    jets: ak.Array
    file_index: int
    entries: np.ndarray


def iterate_jets(
    source: Source,
    step_size: int = 100_000,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    report: ReadReport | None = None,
) -> Iterator[ak.Array]:
    """Stream jets in schema form, at most ``step_size`` stored jets per chunk.

    ``entry_start``/``entry_stop`` index the stored jets across all files of ``source`` in
    order. Chunks never span files and never hold more than ``step_size`` jets; chunks whose
    jets were all dropped are skipped. Pass a :class:`ReadReport` to collect drop counts.
    """
    for located in iterate_located_jets(source, step_size, entry_start, entry_stop, report):
        yield located.jets


def iterate_located_jets(
    source: Source,
    step_size: int = 100_000,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    report: ReadReport | None = None,
) -> Iterator[LocatedJets]:
    """:func:`iterate_jets` with the source file and entry of every kept jet.

    Dropped jets leave gaps in ``entries``, which is why a jet's row is not its entry.
    """
    if step_size <= 0:
        raise DataError(f"step_size must be positive, got {step_size}")
    report = ReadReport() if report is None else report
    for file_index, path, lo, hi in _plan(resolve_paths(source), entry_start, entry_stop):
        reader = _open(path)
        try:
            report.files.append(str(path))
            if reader.absent:
                report.filled[str(path)] = list(reader.absent)
                log.info("%s: absent branches filled or derived: %s", path, ", ".join(reader.absent))
            hi = len(reader) if hi is None else hi
            for chunk in reader.chunks(lo, hi, step_size):
                chunk = _clean(_complete(_check_dtypes(chunk)), reader.absent, report)
                if chunk.n:
                    yield LocatedJets(_to_awkward(chunk), file_index, chunk.entry_numbers())
        finally:
            reader.close()


def open_jets(
    source: Source,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    report: ReadReport | None = None,
) -> ak.Array:
    """All jets of ``source`` (or the stored entries ``[entry_start, entry_stop)``) in memory."""
    chunks = list(iterate_jets(source, 1 << 62, entry_start, entry_stop, report))
    if not chunks:
        empty = {b: np.zeros(0, np.float32) for b in PARTICLE_KINEMATICS}
        return _to_awkward(_complete(_Chunk(Path(), 0, np.zeros(1, np.int64), empty, {})))
    return chunks[0] if len(chunks) == 1 else ak.concatenate(chunks)


def _check_dtypes(chunk: _Chunk) -> _Chunk:
    for name, values in (*chunk.part.items(), *chunk.jet.items()):
        _numeric(values, chunk.path, name)
    return chunk


def _plan(
    paths: list[Path], entry_start: int | None, entry_stop: int | None
) -> Iterator[tuple[int, Path, int, int | None]]:
    """(file index, file, first, stop) per file for a global entry range; ``stop=None`` means to the end."""
    if (entry_start is not None and entry_start < 0) or (entry_stop is not None and entry_stop < 0):
        raise DataError(f"entry range must be non-negative, got [{entry_start}, {entry_stop})")
    if entry_start is None and entry_stop is None:
        # Whole files: no need to open each one twice just to count it.
        yield from ((i, path, 0, None) for i, path in enumerate(paths))
        return
    start = entry_start or 0
    offset = 0
    for i, path in enumerate(paths):
        if entry_stop is not None and offset >= entry_stop:
            return
        n = count_jets(path)
        lo = max(start - offset, 0)
        hi = n if entry_stop is None else min(entry_stop - offset, n)
        if lo < hi:
            yield i, path, lo, hi
        offset += n
