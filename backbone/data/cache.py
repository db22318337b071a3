"""An on-disk, memory-mapped cache of model-ready tensors.

A cache is a folder of ``.npy`` files (one per :class:`JetTensors` field, provenance included:
``file_index`` indexes the files listed in the manifest's ``source``, ``entry`` is the jet's entry
in that file) and ``manifest.json`` with the :class:`FeatureConfig`, the source fingerprint
(paths, sizes, mtimes, in file-index order) and the read report (how many jets were dropped and
why). It is built chunk by chunk from any source the readers accept, written under a temporary
name and renamed into place, and rebuilt whenever the source files or the feature configuration
change.

:class:`JetCache` reads it with numpy memory maps and needs no torch; ``JetTorchDataset`` (torch
imported on first use) wraps it for a ``DataLoader``.
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from jetfm.backbone.atomic import recover_folder, replace_folder
from jetfm.backbone.data.errors import DataError
from jetfm.backbone.data.features import MODEL_INPUTS, FeatureConfig, JetTensors, iterate_tensors
from jetfm.backbone.data.readers import PathLike, ReadReport, Source, count_jets, resolve_paths

CACHE_VERSION = 3  # 2: per-jet provenance (file_index, entry); 3: tau43
MANIFEST = "manifest.json"
TENSOR_FIELDS = MODEL_INPUTS


def source_fingerprint(source: Source) -> list[dict[str, Any]]:
    """Absolute path, size and mtime of every file in ``source``: a change means a rebuild."""
    out = []
    for path in resolve_paths(source):
        try:
            stat = path.stat()
        except FileNotFoundError as err:
            raise DataError(f"{path}: no such file; check the path") from err
        out.append({"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return out


def cache_is_fresh(source: Source, cache_dir: PathLike, cfg: FeatureConfig | None = None) -> bool:
    """True when ``cache_dir`` holds a complete cache of ``source`` made with ``cfg``."""
    cfg = FeatureConfig() if cfg is None else cfg
    try:
        manifest = json.loads((recover_folder(cache_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return (
        manifest.get("version") == CACHE_VERSION
        and manifest.get("feature_config") == cfg.to_dict()
        and manifest.get("source") == source_fingerprint(source)
    )


def open_cache(
    source: Source,
    cache_dir: PathLike,
    cfg: FeatureConfig | None = None,
    step_size: int = 50_000,
    rebuild: bool = False,
) -> JetCache:
    """The cache of ``source`` in ``cache_dir``, (re)built first if missing or stale."""
    if rebuild or not cache_is_fresh(source, cache_dir, cfg):
        build_cache(source, cache_dir, cfg, step_size)
    return JetCache(cache_dir)


def build_cache(
    source: Source,
    cache_dir: PathLike,
    cfg: FeatureConfig | None = None,
    step_size: int = 50_000,
) -> Path:
    """Write the tensors of every jet in ``source`` to ``cache_dir``, atomically.

    Memory use is bounded by ``step_size`` jets; the arrays are filled through memory maps.
    """
    cfg = FeatureConfig() if cfg is None else cfg
    cache_dir = Path(cache_dir)
    fingerprint = source_fingerprint(source)
    capacity = count_jets(source)
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir.with_name(f".{cache_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        report = ReadReport()
        n = _write_arrays(tmp, iterate_tensors(source, cfg, step_size, report), capacity)
        if n == 0:
            raise DataError(f"no jets to cache from {_describe(source)}: {report.message()}")
        manifest = {
            "version": CACHE_VERSION,
            "num_jets": n,
            "feature_config": cfg.to_dict(),
            "feature_names": list(cfg.feature_names),
            "source": fingerprint,
            "read_report": report.to_dict(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        replace_folder(tmp, cache_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cache_dir


def _describe(source: Source) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"{len(source)} inputs"


def _write_arrays(folder: Path, chunks: Iterator[JetTensors], capacity: int) -> int:
    """Fill one ``.npy`` per field, sized for ``capacity`` jets, then trim to the jets kept."""
    maps: dict[str, np.memmap] = {}
    n = 0
    for tensors in chunks:
        for name, values in tensors.arrays().items():
            if name not in maps:
                shape = (capacity, *values.shape[1:])
                maps[name] = np.lib.format.open_memmap(folder / f"{name}.npy", "w+", values.dtype, shape)
            maps[name][n : n + len(values)] = values
        n += len(tensors)
    for name, array in maps.items():
        array.flush()
        del array
        _trim_npy(folder / f"{name}.npy", n)
    return n


def _trim_npy(path: Path, n: int) -> None:
    """Shrink a ``.npy`` file in place to its first ``n`` rows.

    Dropped jets are only known after reading, so files are sized for every stored jet. The
    header is rewritten at its original length (a shorter shape only adds padding spaces) and
    the unused tail is cut off, so no data is copied.
    """
    with open(path, "r+b") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        data_start = f.tell()
        if shape[0] == n:
            return
        text_start = 10 if version == (1, 0) else 12
        header = repr(
            {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran, "shape": (n, *shape[1:])}
        )
        width = data_start - text_start - 1
        f.seek(text_start)
        f.write(header.ljust(width).encode("latin1") + b"\n")
        f.truncate(data_start + n * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)


class JetCache:
    """Read-only view of a cache folder; indexing returns :class:`JetTensors` of numpy arrays.

    Pages of the memory-mapped files count in the process's resident memory once read (as file
    pages, which the kernel may drop, but which a long run's RSS shows growing to the size of every
    jet it has read). `batch` hands them back after every ``release_every`` bytes it has copied out.
    """

    release_every = 256 << 20

    def __init__(self, cache_dir: PathLike) -> None:
        self.path = recover_folder(cache_dir)
        try:
            self.manifest: dict[str, Any] = json.loads((self.path / MANIFEST).read_text())
        except (OSError, ValueError) as err:
            raise DataError(
                f"{self.path}: not a jet cache (no readable {MANIFEST}); build it with build_cache"
            ) from err
        if self.manifest.get("version") != CACHE_VERSION:
            raise DataError(
                f"{self.path}: cache format version {self.manifest.get('version')}, this jetfm reads "
                f"{CACHE_VERSION}; rebuild it with open_cache(..., rebuild=True)"
            )
        self.config = FeatureConfig.from_dict(self.manifest["feature_config"])
        names = JetTensors.__dataclass_fields__
        self._arrays = {name: np.load(self.path / f"{name}.npy", mmap_mode="r") for name in names}
        self._counts: np.ndarray | None = None
        self._read_since_release = 0

    def __len__(self) -> int:
        return int(self.manifest["num_jets"])

    @property
    def files(self) -> list[str]:
        """The source files, in the order ``file_index`` counts them."""
        return [entry["path"] for entry in self.manifest["source"]]

    @property
    def report(self) -> dict[str, Any]:
        """The read report of the build: jets read, kept, dropped (and why)."""
        return self.manifest["read_report"]

    def __getitem__(self, index: Any) -> JetTensors:
        """Slices give memory-map views (no copy); integer arrays give copies."""
        return JetTensors(**{name: array[index] for name, array in self._arrays.items()})

    def particle_counts(self) -> np.ndarray:
        """(N,) int32 real particles of every jet, from the mask (read once, in chunks): what
        ``backbone.data.batching`` buckets batches by."""
        if self._counts is None:
            mask = self._arrays["mask"]
            chunk = 1 << 16
            parts = [mask[start : start + chunk].sum(1, dtype=np.int32) for start in range(0, len(self), chunk)]
            self._counts = np.concatenate(parts) if parts else np.empty(0, np.int32)
        return self._counts

    def batch(self, indices: np.ndarray, fields: tuple[str, ...] = TENSOR_FIELDS) -> dict[str, np.ndarray]:
        """The model inputs of the jets at ``indices`` (sorted indices read the map in order);
        this is the ``BatchSource`` interface of ``backbone.train``."""
        out = {name: np.array(self._arrays[name][indices]) for name in fields}
        self._read_since_release += sum(values.nbytes for values in out.values())
        if self._read_since_release >= self.release_every:
            self.release_pages()
        return out

    def release_pages(self) -> None:
        """Unmaps the pages of the cache files this process has read (madvise DONTNEED; they stay
        in the page cache, so reading them again costs a page fault, not a disk read). Views from
        earlier `__getitem__` calls stay valid: their pages come back when touched."""
        self._read_since_release = 0
        if not hasattr(mmap, "MADV_DONTNEED"):
            return
        for array in self._arrays.values():
            mapping = getattr(array, "_mmap", None)
            if mapping is not None:
                mapping.madvise(mmap.MADV_DONTNEED)

    def batches(
        self, batch_size: int, shuffle: bool = False, seed: int | None = None, drop_last: bool = False
    ) -> Iterator[JetTensors]:
        """Batches in order, or shuffled (each shuffled batch is read in ascending index order,
        which keeps memory-map reads local; the set of jets per batch is still random)."""
        n = len(self)
        if not shuffle:
            stops = range(batch_size, n + (0 if drop_last else batch_size), batch_size)
            for stop in stops:
                yield self[stop - batch_size : min(stop, n)]
            return
        order = np.random.default_rng(seed).permutation(n)
        for start in range(0, n, batch_size):
            picked = order[start : start + batch_size]
            if drop_last and len(picked) < batch_size:
                return
            yield self[np.sort(picked)]


def _torch_dataset_class() -> type:
    import torch
    from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

    class JetTorchDataset(Dataset):
        """A :class:`JetCache` as a torch map-style dataset of dicts of tensors.

        ``dataset[i]`` is one jet; ``dataset[list_of_indices]`` a whole batch, which is what
        :meth:`loader` asks for (one fancy-indexed read per batch instead of one per jet).
        """

        def __init__(self, cache: JetCache | PathLike, fields: tuple[str, ...] = TENSOR_FIELDS) -> None:
            self.cache = cache if isinstance(cache, JetCache) else JetCache(cache)
            self.fields = fields

        def __len__(self) -> int:
            return len(self.cache)

        def __getitem__(self, index: Any) -> dict[str, torch.Tensor]:
            if isinstance(index, list):
                index = np.asarray(index)
            part = self.cache[index]
            # np.array copies out of the read-only memory map, which torch needs.
            return {name: torch.from_numpy(np.array(getattr(part, name))) for name in self.fields}

        def loader(self, batch_size: int, shuffle: bool = False, drop_last: bool = False, **kwargs: Any):
            sampler = RandomSampler(self) if shuffle else SequentialSampler(self)
            batches = BatchSampler(sampler, batch_size, drop_last)
            return DataLoader(self, sampler=batches, batch_size=None, **kwargs)

    return JetTorchDataset


_LAZY: dict[str, type] = {}


def __getattr__(name: str) -> Any:
    # ``JetTorchDataset`` imports torch only when asked for, so the cache itself stays torch-free.
    if name == "JetTorchDataset":
        if name not in _LAZY:
            _LAZY[name] = _torch_dataset_class()
        return _LAZY[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
