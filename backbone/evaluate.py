"""Evaluation of a `JetClassifier` on a labelled set, and the ROC plot physicists draw.

The plot is background rejection 1/eps_B on a log axis against signal efficiency eps_S, with the
random classifier (1/eps_S) for reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jetfm.backbone import atomic
from jetfm.backbone.data.schema import PROCESSES
from jetfm.backbone.finetune import JetClassifier, LabelSubset, class_indices, read_labels
from jetfm.backbone.metrics import classification_report, cross_entropy
from jetfm.backbone.train import BatchSource
from jetfm.errors import UsageError


def evaluate_classifier(
    classifier: JetClassifier,
    data: BatchSource,
    signal: str | None = None,
    batch_size: int = 512,
    labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy, one-vs-rest and macro AUC, and for the `signal` class (default: the second of two)
    AUC, eps_B and 1/eps_B at eps_S = 0.3 and 0.5 and ~200 ROC points; see `classification_report`.

    Every jet of `data` must belong to one of the classifier's classes: evaluate on
    ``LabelSubset(test, None, classes=classifier.classes)`` to drop other processes.
    `labels` (every jet's, if at hand; a LabelSubset knows its own) saves reading them.
    """
    if labels is None:
        labels = data.labels if isinstance(data, LabelSubset) else read_labels(data)
    targets = class_indices(labels, classifier.classes)
    if (targets < 0).any():
        foreign = sorted({PROCESSES[i] if i >= 0 else "unknown" for i in np.unique(labels[targets < 0])})
        raise UsageError(
            f"the data holds {foreign} jets, which are not among the classes {classifier.classes}; "
            "evaluate on LabelSubset(data, None, classes=classifier.classes)"
        )
    probs = classifier.predict_proba(data, batch_size)
    return {"mode": classifier.mode, **classification_report(probs, targets, classifier.classes, signal)}


def validation_metrics(classifier: JetClassifier, data: LabelSubset, batch_size: int = 512) -> dict[str, float]:
    """What the Trainer watches on validation jets: ``val_loss`` (cross-entropy), ``val_accuracy``
    and ``val_auc`` (of the signal, the second of two classes; macro AUC with more classes)."""
    probs = classifier.predict_proba(data, batch_size)
    targets = class_indices(data.labels, classifier.classes)
    report = classification_report(probs, targets, classifier.classes)
    return {
        "val_loss": cross_entropy(probs, targets),
        "val_accuracy": report["accuracy"],
        "val_auc": report["auc"] if "auc" in report else report["macro_auc"],
    }


def plot_roc(reports: Mapping[str, Any], path: str | Path, title: str | None = None) -> Path:
    """Rejection vs signal efficiency of one report (from `evaluate_classifier`) or of several,
    given as {legend label: report}; written atomically to `path` (format from its suffix)."""

    curves = {"": reports} if "roc" in reports else dict(reports)
    fig, ax = atomic.new_figure(figsize=(5.5, 4.5))
    for label, report in curves.items():
        eps_s, eps_b = np.asarray(report["roc"]["eps_s"]), np.asarray(report["roc"]["eps_b"])
        drawn = eps_b > 0  # 1/eps_B is unbounded where no background passes
        ax.plot(eps_s[drawn], 1 / eps_b[drawn], lw=1.6, label=f"{label} (AUC {report['auc']:.4f})".strip())
    grid = np.linspace(0.01, 1, 200)
    ax.plot(grid, 1 / grid, color="grey", ls="--", lw=1, label="random")
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel(r"signal efficiency $\varepsilon_S$")
    ax.set_ylabel(r"background rejection $1/\varepsilon_B$")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(frameon=False)
    return atomic.save_figure(fig, path)
