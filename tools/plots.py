"""Physics plots with hist + mplhep, written as PNG files into the workspace."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from backbone.atomic import save_figure
from backbone.data.schema import PROCESS_TITLES

# observable -> (axis label, bins, low, high)
OBSERVABLE_AXES: dict[str, tuple[str, int, float, float]] = {
    "pt": (r"Jet $p_T$ [GeV]", 50, 500.0, 700.0),
    "eta": (r"Jet $\eta$", 40, -2.0, 2.0),
    "mass": ("Jet mass [GeV]", 60, 0.0, 300.0),
    "sdmass": ("Soft-drop mass [GeV]", 60, 0.0, 300.0),
    "n_constituents": ("Number of constituents", 50, 0.0, 200.0),
    "tau21": (r"$\tau_{21}$", 50, 0.0, 1.0),
    "tau32": (r"$\tau_{32}$", 50, 0.0, 1.0),
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_by_class(
    values_by_class: dict[str, np.ndarray],
    observable: str,
    path: str | Path,
    title: str | None = None,
    density: bool = True,
) -> Path:
    """Overlay one normalised histogram per class (process name -> values)."""
    import hist
    import mplhep

    plt = _pyplot()
    label, bins, lo, hi = OBSERVABLE_AXES[observable]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    hists, labels = [], []
    for process, values in values_by_class.items():
        values = np.asarray(values, dtype=np.float64)
        h = hist.Hist.new.Reg(bins, lo, hi, name=observable, label=label).Weight()
        h.fill(values[np.isfinite(values)])
        hists.append(h)
        labels.append(f"{PROCESS_TITLES.get(process, process)} ({len(values)})")
    with warnings.catch_warnings():
        # mplhep warns about Poisson error bars on integer counts; step plots here draw none.
        warnings.filterwarnings("ignore", message="Integer weights indicate poissonian data")
        mplhep.histplot(hists, ax=ax, label=labels, density=density, histtype="step", linewidth=1.6, yerr=False)
    ax.set_xlabel(label)
    ax.set_ylabel("Fraction of jets / bin" if density else "Jets / bin")
    ax.set_xlim(lo, hi)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    out = save_figure(fig, path)
    plt.close(fig)
    return out
