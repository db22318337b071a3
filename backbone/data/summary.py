"""A JSON-ready summary of a jet dataset: counts per class and observable statistics.

Streams over the source in chunks. Means, standard deviations, minima and maxima are exact;
quantiles are exact up to ``sample_size`` jets per group and otherwise come from a uniform
random sample of that many jets (``quantiles_exact`` says which). NaN observables (e.g.
``sdmass``/``tau21`` of files without them) are left out and ``n`` counts the finite values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np

from jetfm.backbone.data.readers import ReadReport, Source, iterate_jets
from jetfm.backbone.data.schema import PROCESSES, label_indices

OBSERVABLES = ("pt", "eta", "mass", "sdmass", "n_constituents", "tau21", "tau32")
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
UNLABELLED = "unlabelled"


def summarize(source: Source, step_size: int = 100_000, sample_size: int = 1_000_000, seed: int = 0) -> dict[str, Any]:
    """Jet counts per class and per-observable statistics, overall and per class."""
    report = ReadReport()
    rng = np.random.default_rng(seed)
    groups: dict[str, _Group] = {}
    for jets in iterate_jets(source, step_size=step_size, report=report):
        values, classes = jet_observables(jets), jet_classes(jets)
        keys = rng.random(len(jets))
        groups.setdefault("all", _Group(sample_size)).add(values, keys)
        for index in np.unique(classes):
            name = PROCESSES[index] if index >= 0 else UNLABELLED
            picked = classes == index
            groups.setdefault(name, _Group(sample_size)).add(values[picked], keys[picked])
    everything = groups.pop("all", _Group(sample_size))
    order = [*PROCESSES, UNLABELLED]
    return {
        "num_jets": everything.count,
        "counts": {name: groups[name].count for name in order if name in groups},
        "observables": everything.stats(),
        "per_class": {name: groups[name].stats() for name in order if name in groups},
        "read_report": report.to_dict(),
    }


def jet_observables(jets: ak.Array) -> np.ndarray:
    """(N, len(OBSERVABLES)) float64; NaN where a file had no value."""
    column = {
        "pt": jets.jet_pt,
        "eta": jets.jet_eta,
        "mass": jets.jet_mass,
        "sdmass": jets.jet_sdmass,
        "n_constituents": ak.num(jets.part_px),
        "tau21": _ratio(jets.jet_tau2, jets.jet_tau1),
        "tau32": _ratio(jets.jet_tau3, jets.jet_tau2),
    }
    return np.stack([np.asarray(ak.to_numpy(column[name]), np.float64) for name in OBSERVABLES], axis=1)


def _ratio(num: ak.Array, den: ak.Array) -> np.ndarray:
    num, den = ak.to_numpy(num).astype(np.float64), ak.to_numpy(den).astype(np.float64)
    out = np.full(len(num), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def jet_classes(jets: ak.Array) -> np.ndarray:
    """Index into PROCESSES per jet; -1 where the one-hot label is absent or ambiguous."""
    return label_indices(jets)


@dataclass
class _Group:
    """Running moments per observable plus a bottom-k (uniform) sample for quantiles."""

    capacity: int
    count: int = 0
    n: np.ndarray = field(default_factory=lambda: np.zeros(len(OBSERVABLES)))
    total: np.ndarray = field(default_factory=lambda: np.zeros(len(OBSERVABLES)))
    squares: np.ndarray = field(default_factory=lambda: np.zeros(len(OBSERVABLES)))
    low: np.ndarray = field(default_factory=lambda: np.full(len(OBSERVABLES), np.inf))
    high: np.ndarray = field(default_factory=lambda: np.full(len(OBSERVABLES), -np.inf))
    keys: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sample: np.ndarray = field(default_factory=lambda: np.zeros((0, len(OBSERVABLES))))

    def add(self, values: np.ndarray, keys: np.ndarray) -> None:
        finite = np.isfinite(values)
        zeroed = np.where(finite, values, 0.0)
        self.count += len(values)
        self.n += finite.sum(axis=0)
        self.total += zeroed.sum(axis=0)
        self.squares += (zeroed**2).sum(axis=0)
        self.low = np.fmin(self.low, np.where(finite, values, np.inf).min(axis=0, initial=np.inf))
        self.high = np.fmax(self.high, np.where(finite, values, -np.inf).max(axis=0, initial=-np.inf))
        # Keeping the jets with the smallest random keys is a uniform sample without replacement.
        keys, sample = np.concatenate([self.keys, keys]), np.concatenate([self.sample, values])
        if len(keys) > self.capacity:
            keep = np.argpartition(keys, self.capacity)[: self.capacity]
            keys, sample = keys[keep], sample[keep]
        self.keys, self.sample = keys, sample

    def stats(self) -> dict[str, dict[str, Any]]:
        out = {}
        for k, name in enumerate(OBSERVABLES):
            n = int(self.n[k])
            values = self.sample[:, k]
            values = values[np.isfinite(values)]
            mean = self.total[k] / n if n else math.nan
            var = max(self.squares[k] / n - mean**2, 0.0) if n else math.nan
            out[name] = {
                "n": n,
                "mean": _json(mean),
                "std": _json(math.sqrt(var)),
                "min": _json(self.low[k]),
                "max": _json(self.high[k]),
                "quantiles": {str(q): _json(v) for q, v in zip(QUANTILES, _quantiles(values), strict=True)},
                "quantiles_exact": self.count <= self.capacity,
            }
        return out


def _quantiles(values: np.ndarray) -> list[float]:
    return list(np.quantile(values, QUANTILES)) if len(values) else [math.nan] * len(QUANTILES)


def _json(value: float) -> float | None:
    """A plain float, or None for NaN/inf (which strict JSON cannot hold)."""
    value = float(value)
    return value if math.isfinite(value) else None
