"""IVF indexes bigger than one machine's memory: shards built separately, merged on disk.

1. :func:`train_template` trains one IVF coarse quantizer (and PQ codebooks) on a sample and
   writes the empty, trained index; every shard starts from this same template.
2. :func:`build_shard` adds one slice of the vectors, with their global ids, to a copy of the
   template and writes it. Shards are independent: build them in parallel, on other machines.
3. :func:`merge_shards` reads the shards memory-mapped and merges their inverted lists into one
   ``lists.ivfdata`` file (FAISS ``OnDiskInvertedLists``), written beside ``index.faiss`` in a
   folder that :meth:`retrieval.index.JetIndex.load` opens. Only the coarse quantizer is in RAM
   at search time; the lists are paged in from disk as queries probe them.

The result equals an in-memory IVF index built with the same template (same lists, same ids).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from jetfm.backbone.atomic import atomic_path, staged_folder
from jetfm.backbone.embed import ModelRef, l2_normalised
from jetfm.retrieval.index import (
    INDEX_FILE,
    IVF_KINDS,
    METADATA_FILE,
    RetrievalError,
    make_faiss_index,
    write_info,
)

LISTS_FILE = "lists.ivfdata"


def train_template(
    sample: np.ndarray, path: str | os.PathLike, kind: str = "ivfflat", nlist: int = 1024, pq_m: int | None = None
) -> Path:
    """Train an empty ``ivfflat``/``ivfpq`` index on ``sample`` (raw or normalised) and write it to ``path``."""
    if kind not in IVF_KINDS:
        raise RetrievalError(f"sharded indexes are IVF; choose kind from {', '.join(IVF_KINDS)}, not {kind!r}")
    unit = l2_normalised(sample)
    if len(unit) < nlist:
        raise RetrievalError(f"training {nlist} lists needs at least {nlist} sample vectors, got {len(unit)}")
    index = make_faiss_index(kind, unit.shape[1], len(unit), nlist, pq_m)
    index.train(unit)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(index, path)
    return path


def build_shard(template: str | os.PathLike, vectors: np.ndarray, first_id: int, path: str | os.PathLike) -> Path:
    """Add ``vectors`` with ids ``first_id, first_id + 1, ...`` to the template and write the shard."""
    index = faiss.read_index(str(template))
    if vectors.ndim != 2 or vectors.shape[1] != index.d:
        raise RetrievalError(f"shard vectors must be (N, {index.d}) like the template, got {vectors.shape}")
    index.add_with_ids(l2_normalised(vectors), np.arange(first_id, first_id + len(vectors), dtype=np.int64))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(index, path)
    return path


def merge_shards(
    template: str | os.PathLike,
    shards: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    metadata: pd.DataFrame | None = None,
    model: ModelRef | None = None,
    nprobe: int = 32,
) -> Path:
    """Merge shard files into an index folder with on-disk inverted lists; returns the folder.

    Shards must cover ids ``0..N-1`` exactly once (as :func:`build_shard` with consecutive
    ``first_id`` gives), so that id = metadata row.
    """
    out_dir = Path(out_dir)
    with staged_folder(out_dir) as tmp:
        index = faiss.read_index(str(template))
        kind = "ivfpq" if isinstance(faiss.extract_index_ivf(index), faiss.IndexIVFPQ) else "ivfflat"
        _merge_lists(index, [str(s) for s in shards], tmp / LISTS_FILE)
        n = int(index.ntotal)
        if metadata is not None and len(metadata) != n:
            raise RetrievalError(f"the shards hold {n} vectors but metadata has {len(metadata)} rows")
        faiss.write_index(index, str(tmp / INDEX_FILE))
        if metadata is not None:
            metadata.to_parquet(tmp / METADATA_FILE, index=False)
        write_info(tmp, kind, int(index.d), n, model, {"nprobe": nprobe}, ondisk=True)
    return out_dir


def _merge_lists(index: faiss.Index, shards: list[str], lists_path: Path) -> None:
    """FAISS's merge of shard inverted lists into ``OnDiskInvertedLists`` at ``lists_path``
    (``faiss.contrib.ondisk.merge_ondisk``), after checking every shard fits the template."""
    from faiss.contrib.ondisk import merge_ondisk

    ivf = faiss.extract_index_ivf(index)
    for shard in shards:
        loaded = faiss.read_index(shard, faiss.IO_FLAG_MMAP)  # kept alive: the IVF view below points into it
        other = faiss.extract_index_ivf(loaded)
        if other.nlist != ivf.nlist or other.code_size != ivf.code_size or other.d != ivf.d:
            raise RetrievalError(f"{shard}: not built from this template (different lists or codes); rebuild it")
    merge_ondisk(index, shards, str(lists_path))


def _write_atomic(index: faiss.Index, path: Path) -> None:
    with atomic_path(path) as tmp:
        faiss.write_index(index, str(tmp))
