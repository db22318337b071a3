"""Jet embeddings of a whole dataset, written to disk resumably, with per-jet metadata.

An embedding set is a folder:

- ``embeddings.npy``: (N, D) float32, the encoder's raw outputs (not normalised; cosine users,
  :class:`retrieval.index.JetIndex` and :func:`backbone.anomaly.knn_scores`, L2-normalise at
  index time, so the stored vectors stay usable for any metric). Load it memory-mapped.
- ``metadata.parquet``: one row per jet, in the order of the embeddings: ``file`` (categorical,
  the source file), ``entry`` (its entry in that file), ``label`` (index into
  ``backbone.data.schema.PROCESSES``, -1 unknown), ``pt eta phi mass sdmass tau21 tau32 tau43``
  (NaN where the source had none) and ``nparticles``.
- ``manifest.json``: the model (folder and weight fingerprint), the dataset cache it came from and
  the fingerprint of the dataset's files (``source``), N and D.

Embedding runs in chunks of jets under ``.NAME.partial`` beside the target folder; after every
chunk the array is flushed and ``progress.json`` records how many rows are done, so a killed run
resumes where it stopped (if model and dataset are unchanged). The finished folder is renamed into
place, so a reader never sees half a set.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from jetfm.backbone.atomic import FORMAT_VERSION, recover_folder, replace_folder, write_json
from jetfm.backbone.checkpoint import from_pretrained
from jetfm.backbone.data.cache import JetCache
from jetfm.backbone.encoder import JetEncoder
from jetfm.backbone.train import resolve_device, to_tensors
from jetfm.errors import JetfmError, UsageError

EMBEDDINGS = "embeddings.npy"
METADATA = "metadata.parquet"
MANIFEST = "manifest.json"
PROGRESS = "progress.json"
METADATA_COLUMNS = (
    "file", "entry", "label", "pt", "eta", "phi", "mass", "sdmass", "tau21", "tau32", "tau43", "nparticles"
)
_INPUTS = ("features", "vectors", "mask")


class EmbeddingError(JetfmError, ValueError):
    """An embedding set that is missing, incomplete or inconsistent; the message says what to do."""


@dataclass(frozen=True)
class ModelRef:
    """Which model made a set of vectors: a name (its folder) and a fingerprint of its weights."""

    name: str
    fingerprint: str

    def describe(self) -> str:
        return f"{self.name} (weights sha256 {self.fingerprint[:12]})"


def weights_fingerprint(encoder: JetEncoder) -> str:
    """sha256 over the encoder's weights (names, dtypes, shapes, bytes).

    Computed from the state dict, not the file, so a model folder and the same model in memory
    (on any device) agree.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        values = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{values.dtype}:{tuple(values.shape)};".encode())
        digest.update(values.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def folder_fingerprint(folder: str | os.PathLike) -> str:
    """:func:`weights_fingerprint` of the encoder saved in ``folder``; read once per version of its
    weights file (keyed on its path, size and modification time)."""
    weights = Path(folder).resolve() / "model.safetensors"
    stat = weights.stat()
    return _folder_fingerprint(str(weights.parent), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _folder_fingerprint(folder: str, size: int, mtime_ns: int) -> str:
    return weights_fingerprint(from_pretrained(folder, device="cpu"))


def model_ref(encoder: JetEncoder, name: str) -> ModelRef:
    return ModelRef(name, weights_fingerprint(encoder))


def load_encoder(model: JetEncoder | str | os.PathLike, device: str = "auto") -> tuple[JetEncoder, ModelRef]:
    """An encoder in eval mode on ``device`` and its :class:`ModelRef`, from a folder or an instance."""
    if isinstance(model, JetEncoder):
        return model.to(resolve_device(device)).eval(), model_ref(model, f"in-memory {type(model).__name__}")
    encoder = from_pretrained(model, device=resolve_device(device))
    return encoder, model_ref(encoder, str(Path(model).resolve()))


@dataclass
class EmbeddingSet:
    """A loaded embedding set: ``vectors`` (N, D) float32 (memory-mapped), ``metadata`` one row per jet."""

    path: Path
    vectors: np.ndarray
    metadata: pd.DataFrame
    model: ModelRef
    manifest: dict[str, Any]

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def jet_metadata(cache: JetCache) -> pd.DataFrame:
    """One row per jet of ``cache``: source file and entry, label and jet observables."""
    jets = cache[:]  # memory-map views; only the small jet-level columns are read
    columns: dict[str, Any] = {
        "file": pd.Categorical.from_codes(np.asarray(jets.file_index), categories=cache.files),
        "entry": np.asarray(jets.entry),
        "label": np.asarray(jets.labels, np.int8),
    }
    for name in METADATA_COLUMNS[3:]:
        columns[name] = np.asarray(getattr(jets, name))
    return pd.DataFrame(columns)


def embed_dataset(
    model: JetEncoder | str | os.PathLike,
    cache: JetCache,
    out_dir: str | os.PathLike,
    batch_size: int = 512,
    device: str = "auto",
    show_progress: bool = True,
    chunk_size: int = 16_384,
) -> EmbeddingSet:
    """Embed every jet of ``cache`` with ``model`` (a model folder or an encoder) into ``out_dir``.

    Rows are written ``chunk_size`` jets at a time; rerunning after a crash or kill resumes from
    the last finished chunk, as long as the model weights and the dataset cache are the same
    (otherwise the partial work is discarded and the run starts over).
    """
    if len(cache) == 0:
        raise EmbeddingError(f"{cache.path}: the dataset has no jets; nothing to embed")
    if batch_size < 1 or chunk_size < 1:
        raise UsageError(f"batch_size and chunk_size must be >= 1, got {batch_size} and {chunk_size}")
    encoder, ref = load_encoder(model, device)
    if encoder.config.input_dim != cache.config.num_features:
        raise EmbeddingError(
            f"model {ref.describe()} takes {encoder.config.input_dim} particle features but the dataset cache "
            f"{cache.path} has {cache.config.num_features} ({', '.join(cache.config.feature_names)}); "
            "embed with a model trained on the same feature configuration"
        )
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = out_dir.with_name(f".{out_dir.name}.partial")
    job = {"model": asdict(ref), "cache": str(cache.path.resolve()), "source": cache.manifest["source"]}
    job |= {"num_jets": len(cache), "dim": encoder.config.embed_dim}
    done = _resume_point(work, job)
    vectors = np.lib.format.open_memmap(
        work / EMBEDDINGS, "r+" if done else "w+", np.float32, (len(cache), encoder.config.embed_dim)
    )
    _embed_rows(encoder, cache, vectors, work, job, done, batch_size, chunk_size, show_progress)
    del vectors
    _finish(work, out_dir, cache, job)
    return load_embeddings(out_dir)


def _resume_point(work: Path, job: dict[str, Any]) -> int:
    """Rows already embedded by an earlier run of the same job in ``work``; 0 after a fresh start."""
    try:
        progress = json.loads((work / PROGRESS).read_text())
        if progress["job"] == job and (work / EMBEDDINGS).is_file():
            return int(progress["done"])
    except (OSError, ValueError, KeyError):
        pass
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    return 0


def _embed_rows(
    encoder: JetEncoder,
    cache: JetCache,
    vectors: np.ndarray,
    work: Path,
    job: dict[str, Any],
    done: int,
    batch_size: int,
    chunk_size: int,
    show_progress: bool,
) -> None:
    from tqdm.auto import tqdm

    device = next(encoder.parameters()).device
    n = len(cache)
    with tqdm(total=n, initial=done, unit="jet", desc="embedding", disable=not show_progress) as bar:
        for chunk_start in range(done, n, chunk_size):
            chunk_stop = min(chunk_start + chunk_size, n)
            for start in range(chunk_start, chunk_stop, batch_size):
                stop = min(start + batch_size, chunk_stop)
                batch = to_tensors(cache.batch(np.arange(start, stop), _INPUTS), device)
                with torch.inference_mode():
                    vectors[start:stop] = encoder(**batch).float().cpu().numpy()
                bar.update(stop - start)
            vectors.flush()  # rows on disk before the progress file claims them
            write_json(work / PROGRESS, {"job": job, "done": chunk_stop})


def _finish(work: Path, out_dir: Path, cache: JetCache, job: dict[str, Any]) -> None:
    jet_metadata(cache).to_parquet(work / METADATA, index=False)
    manifest = {
        "version": FORMAT_VERSION,
        "model": job["model"],
        "dataset_cache": job["cache"],
        "source": job["source"],  # the dataset files (paths, sizes, mtimes) the vectors were made from
        "num_jets": job["num_jets"],
        "dim": job["dim"],
        "normalised": False,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(work / MANIFEST, manifest)
    (work / PROGRESS).unlink()
    replace_folder(work, out_dir)


def load_embeddings(path: str | os.PathLike) -> EmbeddingSet:
    """An embedding set written by :func:`embed_dataset`; the vectors stay memory-mapped."""
    path = recover_folder(path)  # a write killed between the two renames of its swap is finished
    if not (path / MANIFEST).is_file():
        partial = path.with_name(f".{path.name}.partial")
        hint = f"; an unfinished run is in {partial}: rerun embed_dataset to finish it" if partial.exists() else ""
        raise EmbeddingError(f"{path}: no embedding set here (no {MANIFEST}){hint}")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        vectors = np.load(path / EMBEDDINGS, mmap_mode="r")
        metadata = pd.read_parquet(path / METADATA)
    except (OSError, ValueError) as err:
        raise EmbeddingError(f"{path}: unreadable embedding set ({err}); re-embed the dataset") from err
    if vectors.shape != (manifest["num_jets"], manifest["dim"]) or len(metadata) != len(vectors):
        raise EmbeddingError(
            f"{path}: embeddings {vectors.shape}, metadata {len(metadata)} rows, manifest says "
            f"({manifest['num_jets']}, {manifest['dim']}); the set is inconsistent, re-embed the dataset"
        )
    return EmbeddingSet(path, vectors, metadata, ModelRef(**manifest["model"]), manifest)


def l2_normalised(vectors: np.ndarray) -> np.ndarray:
    """A float32 copy of (N, D) ``vectors`` with unit rows (zero rows stay zero): cosine = inner product."""
    out = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if out.ndim != 2:
        raise UsageError(f"expected (N, D) vectors, got shape {out.shape}")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out
