"""Classifier metrics as physicists quote them, in numpy alone.

A ROC curve here is (eps_S, eps_B): the signal and background efficiencies of the cut
``score >= threshold`` over every distinct threshold, from (0, 0) to (1, 1). Taggers are compared
by AUC and by the background rejection 1/eps_B at a fixed signal efficiency (ParT quotes it at
eps_S = 0.5 and 0.3), read off the curve by linear interpolation between its points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jetfm.errors import UsageError

SIGNAL_EFFICIENCIES = (0.3, 0.5)
ROC_POINTS = 200


def roc_curve(scores: np.ndarray, is_signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eps_S, eps_B), both non-decreasing, one point per distinct score plus the origin.

    Tied scores form one threshold, so a constant score gives the diagonal (AUC 0.5), not a
    staircase whose area depends on the order of the jets.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    is_signal = np.asarray(is_signal, dtype=bool).ravel()
    if scores.shape != is_signal.shape:
        raise UsageError(f"scores and is_signal differ in length: {scores.size} vs {is_signal.size}")
    if not np.isfinite(scores).all():
        raise UsageError("scores contain NaN or inf; check the model outputs")
    n_signal = int(is_signal.sum())
    n_background = is_signal.size - n_signal
    if n_signal == 0 or n_background == 0:
        raise UsageError(f"a ROC curve needs both classes; got {n_signal} signal and {n_background} background jets")
    order = np.argsort(-scores, kind="stable")
    signal_passing = np.cumsum(is_signal[order])
    background_passing = np.arange(1, scores.size + 1) - signal_passing
    # the last jet of each run of equal scores closes that threshold
    last_of_threshold = np.r_[np.diff(scores[order]) != 0, True]
    eps_s = np.r_[0.0, signal_passing[last_of_threshold] / n_signal]
    eps_b = np.r_[0.0, background_passing[last_of_threshold] / n_background]
    return eps_s, eps_b


def auc(eps_s: np.ndarray, eps_b: np.ndarray) -> float:
    """Area under the ROC curve (integral of eps_S over eps_B), trapezoidal."""
    return float(np.sum(np.diff(eps_b) * (eps_s[1:] + eps_s[:-1]) / 2))


def background_efficiency_at(eps_s: np.ndarray, eps_b: np.ndarray, targets: Sequence[float] | np.ndarray) -> np.ndarray:
    """eps_B of the best working point with signal efficiency `targets`, interpolated linearly.

    Where the curve rises vertically (eps_S fixed while eps_B grows) the lowest eps_B is taken:
    that is the cut a physicist would choose.
    """
    targets = np.asarray(targets, dtype=np.float64)
    if ((targets < 0) | (targets > 1)).any():
        raise UsageError(f"signal efficiencies must lie in [0, 1], got {targets}")
    upper = np.searchsorted(eps_s, targets, side="left")  # first point with eps_S >= target
    lower = np.maximum(upper - 1, 0)
    rise = eps_s[upper] - eps_s[lower]
    fraction = np.divide(targets - eps_s[lower], rise, out=np.ones_like(targets), where=rise > 0)
    return eps_b[lower] + fraction * (eps_b[upper] - eps_b[lower])


def background_rejection(eps_s: np.ndarray, eps_b: np.ndarray, signal_efficiency: float) -> float:
    """1/eps_B at `signal_efficiency`; math.inf when no background passes there."""
    eps = float(background_efficiency_at(eps_s, eps_b, [signal_efficiency])[0])
    return float("inf") if eps == 0 else 1.0 / eps


def rejection_error(eps_b: float, n_background: int) -> float | None:
    """Binomial standard error of 1/eps_B from `n_background` background jets: eps_B = k / n has
    error sqrt(eps_B (1 - eps_B) / n), and 1/eps_B that error times 1/eps_B^2. None where eps_B = 0."""
    if eps_b <= 0:
        return None
    return float(np.sqrt(eps_b * (1 - eps_b) / n_background) / eps_b**2)


def auc_standard_error(area: float, n_signal: int, n_background: int) -> float:
    """Standard error of an AUC estimated on `n_signal` and `n_background` jets (Hanley and
    McNeil 1982, exponential approximation)."""
    q1, q2 = area / (2 - area), 2 * area**2 / (1 + area)
    variance = area * (1 - area) + (n_signal - 1) * (q1 - area**2) + (n_background - 1) * (q2 - area**2)
    return float(np.sqrt(max(variance, 0.0) / (n_signal * n_background)))


def downsample_roc(eps_s: np.ndarray, eps_b: np.ndarray, points: int = ROC_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """The curve at `points` evenly spaced signal efficiencies: small enough for JSON, and the
    spacing a rejection-vs-efficiency plot needs."""
    grid = np.linspace(0.0, 1.0, points)
    return grid, background_efficiency_at(eps_s, eps_b, grid)


def cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-probability of the true class (probabilities floored at 1e-12)."""
    picked = np.asarray(probs, dtype=np.float64)[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, None))))


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of jets whose most probable class is their label."""
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def one_vs_rest_auc(probs: np.ndarray, labels: np.ndarray) -> list[float | None]:
    """AUC of class k against all others, scored by probs[:, k]; None for a class with no jets
    (or with every jet), where no curve exists."""
    out: list[float | None] = []
    for k in range(probs.shape[1]):
        is_k = labels == k
        out.append(auc(*roc_curve(probs[:, k], is_k)) if 0 < is_k.sum() < labels.size else None)
    return out


def macro_auc(per_class: Sequence[float | None]) -> float | None:
    """Unweighted mean of the one-vs-rest AUCs that exist (sklearn's ``average="macro"``)."""
    defined = [a for a in per_class if a is not None]
    return float(np.mean(defined)) if defined else None


def classification_report(
    probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], signal: str | None = None
) -> dict[str, Any]:
    """JSON-ready metrics of class probabilities (N, C) against class indices `labels` (N,).

    The signal-vs-background figures (AUC, eps_B and 1/eps_B at eps_S = 0.3 and 0.5, the ROC curve
    at ROC_POINTS efficiencies) score jets by probs[:, signal]. `signal` defaults to the second of
    two classes (with PROCESSES order, "top" in top vs QCD); with more classes and no signal only
    the multi-class figures are given. A rejection is None where eps_B = 0: no background jet of
    this sample passes, so the rejection is only bounded below by the number of background jets.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    classes = list(classes)
    if probs.ndim != 2 or probs.shape != (labels.size, len(classes)):
        raise UsageError(f"probs must have shape ({labels.size}, {len(classes)}), got {probs.shape}")
    if ((labels < 0) | (labels >= len(classes))).any():
        raise UsageError(f"labels must be class indices in 0..{len(classes) - 1}")
    per_class = one_vs_rest_auc(probs, labels)
    report: dict[str, Any] = {
        "num_jets": int(labels.size),
        "classes": classes,
        "class_counts": {c: int((labels == k).sum()) for k, c in enumerate(classes)},
        "accuracy": accuracy(probs, labels),
        "one_vs_rest_auc": dict(zip(classes, per_class)),
        "macro_auc": macro_auc(per_class),
    }
    if signal is None and len(classes) == 2:
        signal = classes[1]
    if signal is not None:
        report.update(signal_report(probs, labels, classes, signal))
    return report


def signal_report(probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], signal: str) -> dict[str, Any]:
    """The signal-vs-rest part of `classification_report`."""
    if signal not in classes:
        raise UsageError(f"signal {signal!r} is not one of the classes {list(classes)}")
    k = list(classes).index(signal)
    eps_s, eps_b = roc_curve(probs[:, k], labels == k)
    at = background_efficiency_at(eps_s, eps_b, SIGNAL_EFFICIENCIES)
    grid, curve = downsample_roc(eps_s, eps_b)
    return {
        "signal": signal,
        "auc": auc(eps_s, eps_b),
        "background_efficiency": {str(s): float(e) for s, e in zip(SIGNAL_EFFICIENCIES, at)},
        "background_rejection": {str(s): (None if e == 0 else float(1 / e)) for s, e in zip(SIGNAL_EFFICIENCIES, at)},
        "roc": {"eps_s": grid.round(6).tolist(), "eps_b": curve.round(9).tolist()},
    }
