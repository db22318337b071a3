"""Physics plots with hist + mplhep, written as PNG files into the workspace."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from matplotlib import patches

from jetfm.backbone.atomic import new_figure, save_figure
from jetfm.backbone.data.schema import PROCESS_TITLES

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

    label, bins, lo, hi = OBSERVABLE_AXES[observable]
    fig, ax = new_figure(figsize=(6.4, 4.8))
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
    return out


def plot_jet_image(
    deta: np.ndarray, dphi: np.ndarray, pt: np.ndarray, path: str | Path, title: str, radius: float = 0.8
) -> Path:
    """One jet in the (delta eta, delta phi) plane: a circle per constituent, area and colour by pT."""
    from matplotlib.colors import LogNorm

    pt = np.asarray(pt, dtype=np.float64)
    order = np.argsort(-pt)  # hardest first, so the soft ones stay visible on top of them
    deta, dphi, pt = np.asarray(deta)[order], np.asarray(dphi)[order], pt[order]
    fig, ax = new_figure(figsize=(5.6, 4.8))
    # Area proportional to the pT share, so the hard prongs stand out against the soft spray.
    sizes = 20.0 + 2000.0 * pt / max(float(pt.sum()), 1e-9)
    norm = LogNorm(vmin=max(pt.min(), 1e-3), vmax=max(pt.max(), 1e-2))
    style = {"cmap": "viridis", "alpha": 0.75, "edgecolors": "black", "linewidths": 0.4}
    points = ax.scatter(deta, dphi, s=sizes, c=pt, norm=norm, **style)
    fig.colorbar(points, ax=ax, label=r"Constituent $p_T$ [GeV]")
    ax.add_patch(patches.Circle((0.0, 0.0), radius, fill=False, linestyle="--", color="grey"))
    ax.set_xlim(-radius * 1.1, radius * 1.1)
    ax.set_ylim(-radius * 1.1, radius * 1.1)
    ax.set_aspect("equal")
    ax.set_xlabel(r"$\Delta\eta$ to the jet axis")
    ax.set_ylabel(r"$\Delta\phi$ to the jet axis")
    ax.set_title(title, fontsize=10)
    out = save_figure(fig, path)
    return out
