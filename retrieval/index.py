"""FAISS indexes of jet embeddings with cosine similarity, per-jet metadata and filters.

Cosine similarity is the inner product of L2-normalised vectors: the index normalises whatever it
is given (build, add, search), so raw encoder outputs can be passed straight in.

Index kinds and when ``kind="auto"`` picks them (numbers from ``benchmarks/bench_retrieval.py``
on this 2-core CPU, 128-dim vectors; see ``benchmarks/results/retrieval.json``):

- ``flat`` (exact) below ``FLAT_MAX`` = 200k vectors: an exact query costs N*D multiply-adds;
  measured 232 single-threaded queries/s at 100k and 27 at 1M, so ~115/s at 200k, still
  interactive, builds instantly and never misses.
- ``hnsw`` (HNSW graph, M=32, efConstruction=80, vectors stored flat) up to ``HNSW_MAX`` = 5M:
  at 1M, recall@10 0.988 at efSearch=32 and ~2800 single-threaded queries/s (JetIndex overhead
  included); costs the vectors plus the graph (0.75 GB at 1M x 128) and a 5.6-minute build on two
  busy cores. Beyond ~5M the RAM (~4 GB) and build time (~30 min) make it a poor default.
- ``ivfpq`` (inverted lists of product-quantised codes, D/2 bytes per vector, 8x smaller than
  float32) beyond: the only kind here that does not need the full vectors in RAM; its recall is
  bounded by the quantisation (recall@10 ~0.82 at 100k in the benchmark).
- ``ivfflat`` is never auto-picked; it is exact within the probed lists and is the kind the
  on-disk sharded build (:mod:`retrieval.ondisk`) produces.

An index is a folder: ``index.faiss``, ``metadata.parquet`` (one row per vector, id = row) and
``index.json`` (kind, dimension, size, model, search parameters, the index file's byte count). It is
saved atomically (written under a temporary name, then renamed). ``load(mmap=True)`` memory-maps
what FAISS can map: the vector storage of ``flat`` and ``hnsw`` (``IO_FLAG_MMAP_IFC``; the HNSW
graph itself is read into RAM) and the inverted lists of ``ivfflat``/``ivfpq`` (``IO_FLAG_MMAP``).
A memory-mapped index is read-only; :meth:`JetIndex.add` first reads it fully into memory.

Searching for more jets than the index holds is an error (it names the size); a filter that fewer
than k jets pass returns all that pass.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd

from jetfm.backbone.atomic import FORMAT_VERSION, recover_folder, replace_folder
from jetfm.backbone.data.schema import PROCESSES
from jetfm.backbone.embed import EmbeddingSet, ModelRef, l2_normalised
from jetfm.errors import JetfmError

INDEX_FILE = "index.faiss"
METADATA_FILE = "metadata.parquet"
INFO_FILE = "index.json"
KINDS = ("auto", "flat", "hnsw", "ivfflat", "ivfpq")
IVF_KINDS = ("ivfflat", "ivfpq")
FLAT_MAX = 200_000
HNSW_MAX = 5_000_000
HNSW_M = 32
DEFAULT_EF_SEARCH = 64
DEFAULT_NPROBE = 32
# FAISS k-means warns below 39 training points per list; keep lists well filled.
_POINTS_PER_LIST = 39
_MAX_TRAIN = 256 * 1024


class RetrievalError(JetfmError, ValueError):
    """A bad index, query or filter; the message names what is wrong and what to do."""


Window = tuple[float, float]
# Observables a filter can bound, and the metadata columns each one reads (abs_eta: |eta|; the ratios
# sd_over_mass = soft-drop mass / mass, how much grooming keeps, and mass_over_pt, how wide the decay
# opens: ~2m/pT for two prongs).
FILTER_COLUMNS: dict[str, tuple[str, ...]] = {
    "mass": ("mass",), "sdmass": ("sdmass",), "pt": ("pt",), "eta": ("eta",), "abs_eta": ("eta",),
    "tau21": ("tau21",), "tau32": ("tau32",), "tau43": ("tau43",), "nparticles": ("nparticles",),
    "sd_over_mass": ("sdmass", "mass"), "mass_over_pt": ("mass", "pt"),
}


def observable_values(metadata: pd.DataFrame, name: str) -> np.ndarray:
    """One filter observable of every jet (float64; NaN where unknown or a ratio's denominator is not
    positive): the one place that knows how each observable is computed from the metadata."""
    columns = [_column(metadata, c).astype(np.float64) for c in FILTER_COLUMNS[name]]
    if name == "abs_eta":
        return np.abs(columns[0])
    if len(columns) == 2:
        numerator, denominator = columns
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denominator > 0, numerator / denominator, np.nan)
    return columns[0]


@dataclass(frozen=True)
class JetFilter:
    """Keep jets whose observables lie in closed windows [lo, hi] (``mass``, ``sdmass``, ``pt``,
    ``eta``, ``abs_eta`` = |eta|, ``tau21``, ``tau32``, ``tau43``, ``nparticles``, ``sd_over_mass``,
    ``mass_over_pt``; -inf/inf for an
    open side), whose label is in ``labels`` (process names such as ``"top"`` or label indices) and,
    with ``rows``, whose row id is one of those. NaN values never pass a window."""

    mass: Window | None = None
    sdmass: Window | None = None
    pt: Window | None = None
    eta: Window | None = None
    abs_eta: Window | None = None
    tau21: Window | None = None
    tau32: Window | None = None
    tau43: Window | None = None
    nparticles: Window | None = None
    sd_over_mass: Window | None = None
    mass_over_pt: Window | None = None
    labels: Sequence[str | int] | None = None
    rows: Sequence[int] | None = None

    def windows(self) -> dict[str, Window]:
        """The bounded observables and their windows."""
        return {name: getattr(self, name) for name in FILTER_COLUMNS if getattr(self, name) is not None}

    def mask(self, metadata: pd.DataFrame) -> np.ndarray:
        keep = np.ones(len(metadata), bool)
        for name, (lo, hi) in self.windows().items():
            values = observable_values(metadata, name)
            keep &= (values >= lo) & (values <= hi)
        if self.labels is not None:
            keep &= np.isin(_column(metadata, "label"), [_label_index(label) for label in self.labels])
        if self.rows is not None:
            rows = np.asarray(self.rows, np.int64)
            if rows.size and (rows.min() < 0 or rows.max() >= len(metadata)):
                raise RetrievalError(f"rows must be jet ids in 0..{len(metadata) - 1}")
            chosen = np.zeros(len(metadata), bool)
            chosen[rows] = True
            keep &= chosen
        return keep


def _column(metadata: pd.DataFrame, name: str) -> np.ndarray:
    if name not in metadata.columns:
        raise RetrievalError(
            f"cannot filter on {name!r}: the index metadata has no such column (it has: "
            f"{', '.join(metadata.columns) or 'none'}); build the index from an embedding set to get jet metadata"
        )
    return metadata[name].to_numpy()


def _label_index(label: str | int) -> int:
    if isinstance(label, str):
        if label not in PROCESSES:
            raise RetrievalError(f"unknown label {label!r}; choose from {', '.join(PROCESSES)}")
        return PROCESSES.index(label)
    return int(label)


@dataclass
class Hits:
    """The jets found for one query, best first: row ids, cosine similarity, their metadata rows."""

    ids: np.ndarray
    similarity: np.ndarray
    metadata: pd.DataFrame

    def __len__(self) -> int:
        return len(self.ids)

    def records(self) -> list[dict[str, Any]]:
        """One dict per hit (id, similarity and the metadata columns), for JSON and tables."""
        rows = self.metadata.to_dict("records")
        return [{"id": int(i), "similarity": float(s), **row} for i, s, row in zip(self.ids, self.similarity, rows)]


def choose_kind(n: int) -> str:
    """The index kind ``kind="auto"`` builds for ``n`` vectors (see the module docstring)."""
    if n < FLAT_MAX:
        return "flat"
    return "hnsw" if n <= HNSW_MAX else "ivfpq"


def default_nlist(n: int) -> int:
    """Inverted lists for ``n`` vectors: ~4 sqrt(n), a power of two, with >= 39 training points each."""
    target = 1 << max(0, int(round(np.log2(max(1.0, 4 * np.sqrt(n))))))
    return max(1, min(target, n // _POINTS_PER_LIST))


def make_faiss_index(kind: str, dim: int, n: int, nlist: int | None, pq_m: int | None) -> faiss.Index:
    """An empty inner-product FAISS index of ``kind`` for ``n`` vectors (cosine on unit vectors)."""
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        return index
    nlist = nlist or default_nlist(n)
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivfflat":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        pq_m = pq_m or max(1, dim // 2)
        if dim % pq_m:
            raise RetrievalError(f"ivfpq needs pq_m dividing the dimension {dim}; got pq_m={pq_m}")
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m, 8, faiss.METRIC_INNER_PRODUCT)
    return index


def _check_vectors(vectors: np.ndarray, what: str) -> np.ndarray:
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0:
        raise RetrievalError(f"{what}: expected a non-empty (N, D) array of embeddings, got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise RetrievalError(f"{what}: the embeddings contain NaN or inf; check the model outputs")
    return vectors


class JetIndex:
    """A FAISS cosine-similarity index over jet embeddings, with one metadata row per vector."""

    def __init__(
        self,
        index: faiss.Index,
        metadata: pd.DataFrame,
        kind: str,
        model: ModelRef | None = None,
        params: dict[str, Any] | None = None,
        path: Path | None = None,
        mmapped: bool = False,
        ondisk: bool = False,
    ) -> None:
        self.index, self.metadata, self.kind, self.model = index, metadata.reset_index(drop=True), kind, model
        self.params = {"ef_search": DEFAULT_EF_SEARCH, "nprobe": DEFAULT_NPROBE, **(params or {})}
        self.path, self.mmapped, self.ondisk = path, mmapped, ondisk

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        metadata: pd.DataFrame | None = None,
        kind: str = "auto",
        model: ModelRef | None = None,
        nlist: int | None = None,
        pq_m: int | None = None,
        **params: Any,
    ) -> JetIndex:
        """Index ``vectors`` (N, D), raw or normalised; ``metadata`` has one row per vector.

        ``params`` are the default search settings (``ef_search`` for hnsw, ``nprobe`` for IVF).
        """
        vectors = _check_vectors(vectors, "build")
        if kind not in KINDS:
            raise RetrievalError(f"unknown index kind {kind!r}; choose from {', '.join(KINDS)}")
        n, dim = vectors.shape
        metadata = pd.DataFrame(index=range(n)) if metadata is None else metadata
        if len(metadata) != n:
            raise RetrievalError(f"{n} vectors but {len(metadata)} metadata rows; give one row per vector")
        kind = choose_kind(n) if kind == "auto" else kind
        index = make_faiss_index(kind, dim, n, nlist, pq_m)
        unit = l2_normalised(vectors)
        if not index.is_trained:
            if n < _POINTS_PER_LIST:
                raise RetrievalError(
                    f"{kind} needs at least {_POINTS_PER_LIST} vectors to train, got {n}; use kind='flat'"
                )
            sample = np.random.default_rng(0).choice(n, min(n, _MAX_TRAIN), replace=False)
            index.train(unit[np.sort(sample)])
        index.add(unit)
        return cls(index, metadata, kind, model, params)

    @classmethod
    def from_embeddings(cls, embeddings: EmbeddingSet, kind: str = "auto", **options: Any) -> JetIndex:
        """An index of an embedding set, with its jet metadata and model."""
        return cls.build(embeddings.vectors, embeddings.metadata, kind, embeddings.model, **options)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def describe(self) -> str:
        model = self.model.describe() if self.model else "an unknown model"
        return f"{self.kind} index of {len(self)} jets x {self.dim} dims from {model}"

    # ------------------------------------------------------------------ checks

    def _check_model(self, model: ModelRef | None, what: str) -> None:
        if model is not None and self.model is not None and model.fingerprint != self.model.fingerprint:
            raise RetrievalError(
                f"{what}: the embeddings come from model {model.describe()}, but the index holds embeddings of "
                f"{self.model.describe()}; embed with the index's model or build an index for the other one"
            )

    def _check_dim(self, vectors: np.ndarray, what: str) -> None:
        if vectors.shape[1] != self.dim:
            model = self.model.describe() if self.model else "its model"
            raise RetrievalError(
                f"{what}: embeddings have {vectors.shape[1]} dimensions but the index holds {self.dim}-dimensional "
                f"embeddings of {model}; they come from different models, embed with the index's model"
            )

    # ------------------------------------------------------------------ adding

    def add(self, vectors: np.ndarray, metadata: pd.DataFrame | None = None, model: ModelRef | None = None) -> None:
        """Append jets; their ids continue after the existing ones. Nothing changes if a check fails."""
        vectors = _check_vectors(vectors, "add")
        self._check_model(model, "add")
        self._check_dim(vectors, "add")
        metadata = pd.DataFrame(index=range(len(vectors))) if metadata is None else metadata
        if len(metadata) != len(vectors):
            raise RetrievalError(f"add: {len(vectors)} vectors but {len(metadata)} metadata rows")
        if set(metadata.columns) != set(self.metadata.columns):
            raise RetrievalError(
                f"add: metadata columns {sorted(metadata.columns)} differ from the index's "
                f"{sorted(self.metadata.columns)}; give the new jets the same metadata columns"
            )
        if self.ondisk:
            raise RetrievalError(
                "add: this index keeps its lists on disk; build the new jets as another shard and merge "
                "(retrieval.ondisk.merge_shards)"
            )
        if self.mmapped:
            self.index = _read_faiss(self.path / INDEX_FILE, 0)
            self.mmapped = False
        self.index.add(l2_normalised(vectors))
        self.metadata = _concat_metadata(self.metadata, metadata)

    # ------------------------------------------------------------------ searching

    def search(
        self,
        queries: np.ndarray,
        k: int = 10,
        filters: JetFilter | None = None,
        model: ModelRef | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
    ) -> list[Hits]:
        """The ``k`` most similar jets for each query (Q, D), best first.

        With ``filters`` only passing jets are returned, and k of them whenever k pass: where the
        approximate search finds fewer, hnsw falls back to exact search over the passing jets and
        IVF to probing every list.
        """
        queries = _check_vectors(np.atleast_2d(queries), "search")
        self._check_model(model, "search")
        self._check_dim(queries, "search")
        if k < 1:
            raise RetrievalError(f"k must be >= 1, got {k}")
        if k > len(self):
            raise RetrievalError(f"k={k} but the index holds only {len(self)} jets; ask for k <= {len(self)}")
        unit = l2_normalised(queries)
        passing = None if filters is None else filters.mask(self.metadata)
        available = len(self) if passing is None else int(passing.sum())
        if available == 0:
            return [self._hits(np.empty(0, np.int64), np.empty(0, np.float32)) for _ in unit]
        sel = None if passing is None else faiss.IDSelectorBitmap(np.packbits(passing, bitorder="little"))
        ef = max(ef_search or self.params["ef_search"], k)
        sims, ids = self.index.search(unit, k, params=self._search_params(sel, ef, nprobe or self.params["nprobe"]))
        short = (ids >= 0).sum(1) < min(k, available)
        if short.any():
            sims[short], ids[short] = self._exhaustive(unit[short], k, sel, passing)
        return [self._hits(i[i >= 0], s[i >= 0]) for i, s in zip(ids, sims)]

    def _search_params(self, sel: Any, ef_search: int, nprobe: int) -> faiss.SearchParameters:
        if self.kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=sel, efSearch=ef_search)
        if self.kind in IVF_KINDS:
            return faiss.SearchParametersIVF(sel=sel, nprobe=min(nprobe, self._nlist()))
        return faiss.SearchParameters(sel=sel)

    def _nlist(self) -> int:
        return int(faiss.extract_index_ivf(self.index).nlist)

    def _exhaustive(
        self, unit: np.ndarray, k: int, sel: Any, passing: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search that cannot miss a passing jet: every IVF list, or exact over the jets that pass."""
        if self.kind != "hnsw":
            nprobe = self._nlist() if self.kind in IVF_KINDS else 0
            return self.index.search(unit, k, params=self._search_params(sel, k, nprobe))
        keep = np.arange(len(self)) if passing is None else np.flatnonzero(passing)
        exact = faiss.IndexFlatIP(self.dim)
        exact.add(self.index.reconstruct_batch(keep))
        sims, local = exact.search(unit, min(k, len(keep)))
        ids = np.where(local >= 0, keep[np.maximum(local, 0)], -1)
        pad = k - ids.shape[1]
        return np.pad(sims, ((0, 0), (0, pad))), np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)

    def _hits(self, ids: np.ndarray, sims: np.ndarray) -> Hits:
        return Hits(ids.astype(np.int64), sims.astype(np.float32), self.metadata.iloc[ids].reset_index(drop=True))

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike) -> Path:
        """Write the index folder atomically: a failure leaves any earlier index at ``path`` intact."""
        path = Path(path)
        if self.ondisk:
            raise RetrievalError(
                f"{self.path}: an on-disk index is written by retrieval.ondisk.merge_shards, not saved"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            faiss.write_index(self.index, str(tmp / INDEX_FILE))
            self.metadata.to_parquet(tmp / METADATA_FILE, index=False)
            write_info(tmp, self.kind, self.dim, len(self), self.model, self.params)
            replace_folder(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, mmap: bool = True) -> JetIndex:
        """An index folder written by :meth:`save` (or ``retrieval.ondisk``); see the module docstring for mmap."""
        path = Path(path)
        info = read_info(path)
        ondisk = bool(info.get("ondisk"))
        if ondisk:
            flags = faiss.IO_FLAG_ONDISK_SAME_DIR
        elif not mmap:
            flags = 0
        else:
            flags = faiss.IO_FLAG_MMAP if info["kind"] in IVF_KINDS else faiss.IO_FLAG_MMAP_IFC
        index = _read_faiss(path / INDEX_FILE, flags)
        metadata = _read_metadata(path, info)
        if index.ntotal != info["ntotal"] or index.d != info["dim"] or len(metadata) != info["ntotal"]:
            raise RetrievalError(
                f"{path}: {INDEX_FILE} holds {index.ntotal} x {index.d}, {METADATA_FILE} {len(metadata)} rows, "
                f"{INFO_FILE} says {info['ntotal']} x {info['dim']}; the folder is inconsistent, rebuild the index"
            )
        model = ModelRef(**info["model"]) if info.get("model") else None
        return cls(index, metadata, info["kind"], model, info.get("params"), path, mmapped=bool(flags), ondisk=ondisk)


def write_info(
    folder: Path,
    kind: str,
    dim: int,
    ntotal: int,
    model: ModelRef | None,
    params: dict[str, Any],
    ondisk: bool = False,
) -> None:
    """``index.json`` beside a written ``index.faiss`` (whose byte count it records to catch truncation)."""
    info = {
        "version": FORMAT_VERSION,
        "kind": kind,
        "dim": dim,
        "ntotal": ntotal,
        "model": asdict(model) if model else None,
        "params": params,
        "ondisk": ondisk,
        "index_bytes": (folder / INDEX_FILE).stat().st_size,
    }
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2))


def read_info(path: Path) -> dict[str, Any]:
    recover_folder(path)  # a rebuild killed between its two renames is finished or rolled back
    if not path.is_dir():
        raise RetrievalError(f"{path}: no index folder here; build one with JetIndex.build(...).save(path)")
    for name in (INFO_FILE, INDEX_FILE):
        if not (path / name).is_file():
            raise RetrievalError(f"{path}: the index folder has no {name}; it is incomplete, rebuild the index")
    try:
        info = json.loads((path / INFO_FILE).read_text())
        expected = int(info["index_bytes"])
    except (ValueError, KeyError, TypeError) as err:
        raise RetrievalError(f"{path / INFO_FILE}: unreadable ({err}); the index is corrupt, rebuild it") from err
    actual = (path / INDEX_FILE).stat().st_size
    if actual != expected:
        raise RetrievalError(
            f"{path / INDEX_FILE}: {actual} bytes, {INFO_FILE} says {expected}; the file is truncated or "
            "corrupt, rebuild the index"
        )
    return info


def _read_faiss(path: Path, flags: int) -> faiss.Index:
    try:
        return faiss.read_index(str(path), flags)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RetrievalError(f"{path}: FAISS cannot read it ({first}); the file is corrupt, rebuild the index") from err


def _read_metadata(path: Path, info: dict[str, Any]) -> pd.DataFrame:
    if not (path / METADATA_FILE).is_file():
        return pd.DataFrame(index=range(info["ntotal"]))
    try:
        metadata = pd.read_parquet(path / METADATA_FILE)
    except (OSError, ValueError) as err:
        raise RetrievalError(f"{path / METADATA_FILE}: unreadable ({err}); rebuild the index") from err
    # An index built without metadata stores a frame with no columns, and parquet keeps no row count for it.
    return metadata if len(metadata.columns) else pd.DataFrame(index=range(info["ntotal"]))


def _concat_metadata(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    if old.columns.empty:
        return pd.DataFrame(index=range(len(old) + len(new)))
    merged = pd.concat([old, new[old.columns]], ignore_index=True)
    # Categoricals with different categories (e.g. other source files) concatenate as objects.
    for name in old.columns:
        if isinstance(old[name].dtype, pd.CategoricalDtype):
            merged[name] = merged[name].astype("category")
    return merged
