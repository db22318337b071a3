"""Anomaly scores for jets (higher = more anomalous), the ranked list, the plot, and the metrics
a weakly supervised search quotes.

- ``knn``: mean cosine distance of a jet's embedding to its k nearest neighbours in a reference
  (background) set, found exactly with FAISS (``IndexFlatIP`` on unit vectors). Cost grows as
  queries x reference x D; a 100k x 100k x 128 scoring is ~1e12 multiply-adds, minutes on a CPU.
- ``mpm``: minus the mean over a jet's particles of log p(the particle's true token | it is masked)
  under an MPM-pretrained backbone
  (:meth:`~backbone.pretrain.mpm.MaskedParticleObjective.particle_log_likelihood`), each particle
  predicted on its own (MPM v2): jets whose particles the model reconstructs badly are unlike its
  training data, so higher = more anomalous.

Metrics: AUC, and the maximum significance improvement SIC = eps_S / sqrt(eps_B) over score
thresholds. At tight thresholds eps_B rests on a handful of background jets and SIC is noise,
so only thresholds passing at least ``min_background`` background jets (default 50, a 14%
statistical error on eps_B) are considered.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd

from jetfm.backbone.atomic import atomic_path, new_figure, save_figure
from jetfm.backbone.data.schema import PROCESSES
from jetfm.backbone.embed import l2_normalised
from jetfm.backbone.metrics import auc, roc_curve
from jetfm.backbone.train import BatchSource, resolve_device, to_tensors
from jetfm.errors import UsageError

MIN_BACKGROUND = 50
_INPUTS = ("features", "vectors", "mask")


def knn_scores(
    embeddings: np.ndarray, reference: np.ndarray, k: int = 10, exclude_self: bool | None = None
) -> np.ndarray:
    """(N,) mean cosine distance (1 - cosine similarity) to the ``k`` nearest reference jets.

    ``exclude_self`` (default: when ``embeddings is reference``) scores the reference set itself:
    row i is then not its own neighbour, so query i must be reference jet i.
    """
    exclude_self = embeddings is reference if exclude_self is None else exclude_self
    queries, ref = l2_normalised(embeddings), l2_normalised(reference)
    needed = k + 1 if exclude_self else k
    if k < 1:
        raise UsageError(f"k must be >= 1, got {k}")
    if len(ref) < needed:
        raise UsageError(
            f"the reference set has {len(ref)} jets, fewer than the {needed} neighbours k={k} needs"
            f"{' (plus the jet itself)' if exclude_self else ''}; use a larger reference set or a smaller k"
        )
    if queries.shape[1] != ref.shape[1]:
        raise UsageError(
            f"embeddings have {queries.shape[1]} dimensions, the reference {ref.shape[1]}: they come from "
            "different models; embed both with the same model"
        )
    if exclude_self and len(queries) != len(ref):
        raise UsageError("exclude_self needs the queries to be the reference set itself (same rows)")
    index = faiss.IndexFlatIP(ref.shape[1])
    index.add(ref)
    sims, ids = index.search(queries, needed)
    if exclude_self:
        sims = _drop_self(sims, ids)
    return (1.0 - sims.mean(axis=1)).astype(np.float32)


def _drop_self(sims: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Remove each row's own id from its neighbours (the last one if a duplicate outranked it)."""
    own = ids == np.arange(len(ids))[:, None]
    own[~own.any(axis=1), -1] = True
    return sims[~own].reshape(len(sims), -1)


def mpm_scores(
    objective: Any,
    data: BatchSource,
    batch_size: int = 256,
    n_passes: int = 3,
    device: str = "auto",
    seed: int = 0,
    show_progress: bool = True,
) -> np.ndarray:
    """(N,) minus the mean masked-particle log-likelihood per jet; ``objective`` is an MPM objective
    (``load_objective`` of an MPM-pretrained model folder), ``data`` a cache or any batch source."""
    from tqdm.auto import tqdm

    if not hasattr(objective, "particle_log_likelihood"):
        raise UsageError(
            f"the {getattr(objective, 'name', type(objective).__name__)!r} objective has no particle likelihood; "
            "mpm scores need a model pretrained with the 'mpm' objective"
        )
    target = resolve_device(device)
    objective = objective.to(target).eval()
    n = len(data)
    out = np.empty(n, np.float32)
    for start in tqdm(range(0, n, batch_size), desc="mpm scores", unit="batch", disable=not show_progress):
        stop = min(start + batch_size, n)
        batch = to_tensors(data.batch(np.arange(start, stop)), target)
        inputs = {name: batch[name] for name in _INPUTS}
        # a seed per batch: reruns give the same masks whatever the batch order on other devices
        log_likelihood = objective.particle_log_likelihood(inputs, n_passes=n_passes, seed=seed + start)
        out[start:stop] = -log_likelihood.float().cpu().numpy()
    return out


def rank(scores: np.ndarray, metadata: pd.DataFrame | None = None, top: int = 50) -> pd.DataFrame:
    """The ``top`` highest-scoring jets: ``row`` (position in the dataset), ``score``, and their metadata."""
    scores = np.asarray(scores)
    order = np.argsort(-scores, kind="stable")[:top]
    ranked = pd.DataFrame({"rank": np.arange(1, len(order) + 1), "row": order, "score": scores[order]})
    if metadata is not None:
        if len(metadata) != len(scores):
            raise UsageError(f"{len(scores)} scores but {len(metadata)} metadata rows; give both for the same jets")
        ranked = pd.concat([ranked, metadata.iloc[order].reset_index(drop=True)], axis=1)
    return ranked


def plot_score_distribution(
    scores: np.ndarray,
    path: str | os.PathLike,
    labels: np.ndarray | None = None,
    xlabel: str = "anomaly score",
    title: str | None = None,
) -> Path:
    """Histogram of ``scores`` on a log y axis, one line per process if ``labels`` are known; atomic write."""
    import mplhep

    scores = np.asarray(scores, dtype=np.float64)
    edges = np.histogram_bin_edges(scores[np.isfinite(scores)], bins=60)
    fig, ax = new_figure(figsize=(6, 4))
    for name, picked in _groups(labels, len(scores)):
        counts, _ = np.histogram(scores[picked], bins=edges)
        mplhep.histplot(counts, edges, ax=ax, label=f"{name} ({int(picked.sum())})")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("jets")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    save_figure(fig, path)
    return Path(path)


def _groups(labels: np.ndarray | None, n: int) -> list[tuple[str, np.ndarray]]:
    if labels is None or (np.asarray(labels) < 0).all():
        return [("all jets", np.ones(n, bool))]
    labels = np.asarray(labels)
    names = {k: PROCESSES[k] if 0 <= k < len(PROCESSES) else "unknown" for k in np.unique(labels)}
    return [(names[k], labels == k) for k in sorted(names)]


def write_scores(
    out_dir: str | os.PathLike, scores: np.ndarray, metadata: pd.DataFrame, method: str, top: int = 50
) -> dict[str, Path]:
    """Per-jet scores (``scores.parquet``: metadata + score), the ranked list (``ranked.csv``) and
    the distribution plot (``score_distribution.png``) in ``out_dir``; each file written atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"scores": out_dir / "scores.parquet", "ranked": out_dir / "ranked.csv"}
    table = metadata.reset_index(drop=True).assign(score=np.asarray(scores))
    with atomic_path(paths["scores"]) as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(paths["ranked"]) as tmp:
        rank(scores, metadata, top).to_csv(tmp, index=False)
    labels = metadata["label"].to_numpy() if "label" in metadata else None
    paths["plot"] = plot_score_distribution(
        scores, out_dir / "score_distribution.png", labels, xlabel=f"{method} anomaly score"
    )
    return paths
def max_sic(scores: np.ndarray, is_signal: np.ndarray, min_background: int = MIN_BACKGROUND) -> dict[str, float]:
    """Maximum of eps_S / sqrt(eps_B) over thresholds passing >= ``min_background`` background jets,
    with the efficiencies where it is reached."""
    eps_s, eps_b = roc_curve(scores, is_signal)
    n_background = int((~np.asarray(is_signal, bool)).sum())
    usable = eps_b * n_background >= min_background
    if not usable.any():
        raise UsageError(
            f"only {n_background} background jets, fewer than min_background={min_background}; "
            "use more background or lower min_background"
        )
    sic = np.where(usable, eps_s / np.sqrt(np.where(usable, eps_b, 1.0)), -np.inf)
    best = int(np.argmax(sic))
    return {"sic": float(sic[best]), "eps_s": float(eps_s[best]), "eps_b": float(eps_b[best])}


def detection_metrics(
    scores: np.ndarray, is_signal: np.ndarray, min_background: int = MIN_BACKGROUND
) -> dict[str, float]:
    """AUC and maximum SIC of ``scores`` (higher = more signal-like) for the jets ``is_signal``."""
    eps_s, eps_b = roc_curve(scores, is_signal)
    best = max_sic(scores, is_signal, min_background)
    return {"auc": auc(eps_s, eps_b), "max_sic": best["sic"], "sic_eps_s": best["eps_s"], "sic_eps_b": best["eps_b"]}


def signal_mask(labels: np.ndarray, signal: str | Sequence[str]) -> np.ndarray:
    """True for jets whose label is one of the ``signal`` process names."""
    names = [signal] if isinstance(signal, str) else list(signal)
    unknown = [n for n in names if n not in PROCESSES]
    if unknown:
        raise UsageError(f"unknown process {', '.join(unknown)}; choose from {', '.join(PROCESSES)}")
    return np.isin(np.asarray(labels), [PROCESSES.index(n) for n in names])
