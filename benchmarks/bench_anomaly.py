"""Anomaly-detection benchmark: top jets, and separately H -> bb jets, injected at 1% and 10% into QCD;
AUC and maximum SIC of the knn and mpm scores against a jet-mass-only baseline; embedding throughput.

    python benchmarks/bench_anomaly.py --qcd DATA/qcd --top DATA/top --hbb DATA/hbb --model MODELS/mpm

Each dataset is a file, folder or glob the readers accept; the model folder is MPM-pretrained (for
any other objective the mpm score is skipped and the reason recorded). QCD is split in half at
random: the first half is the reference (background) set of the knn score and of the baseline, the
second half is the background of the test sample, into which signal jets are drawn at random so
that they make up 1% (10%) of it.

- knn: mean cosine distance of a jet's embedding to its k nearest reference jets.
- mpm: minus the mean masked-particle log-likelihood.
- mass baseline: minus the log density of reference QCD jets at the jet's (soft-drop, where the
  files have it) mass, from a 60-bin histogram: a jet is anomalous where QCD is rare in mass alone.

SIC is taken over thresholds passing >= 50 background jets (backbone.anomaly.MIN_BACKGROUND).
Results: benchmarks/results/anomaly.json and anomaly.png (SIC against signal efficiency).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine_info  # noqa: E402
from jetfm.backbone.anomaly import MIN_BACKGROUND, detection_metrics, knn_scores, mpm_scores  # noqa: E402
from jetfm.backbone.atomic import atomic_path  # noqa: E402
from jetfm.backbone.checkpoint import load_features  # noqa: E402
from jetfm.backbone.data.cache import JetCache, open_cache  # noqa: E402
from jetfm.backbone.embed import EmbeddingSet, embed_dataset  # noqa: E402
from jetfm.backbone.metrics import roc_curve  # noqa: E402
from jetfm.backbone.pretrain.base import load_objective  # noqa: E402
from jetfm.backbone.train import resolve_device  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FRACTIONS = (0.01, 0.10)
SIGNALS = ("top", "hbb")


def mass_of(embeddings: EmbeddingSet) -> np.ndarray:
    """Soft-drop mass where the files have it, else the jet mass."""
    sdmass = embeddings.metadata["sdmass"].to_numpy(np.float64)
    return sdmass if np.isfinite(sdmass).all() else embeddings.metadata["mass"].to_numpy(np.float64)


def mass_density_score(mass: np.ndarray, reference_mass: np.ndarray) -> np.ndarray:
    edges = np.histogram_bin_edges(np.concatenate([mass, reference_mass]), bins=60)
    density, _ = np.histogram(reference_mass, bins=edges, density=True)
    bins = np.clip(np.searchsorted(edges, mass, side="right") - 1, 0, len(density) - 1)
    return -np.log(density[bins] + 1e-12)


def prepare(name: str, source: str, model: Path, work: Path, device: str) -> dict[str, Any]:
    features = load_features(model)
    cache = open_cache(source, work / f"cache-{name}", features)
    t0 = time.perf_counter()
    embeddings = embed_dataset(model, cache, work / f"emb-{name}", device=device)
    seconds = time.perf_counter() - t0
    return {"cache": cache, "embeddings": embeddings, "embed_s": seconds, "mass": mass_of(embeddings)}


def mpm_or_reason(model: Path, caches: dict[str, JetCache], device: str) -> dict[str, np.ndarray] | str:
    objective = load_objective(model, device=resolve_device(device))
    if objective.name != "mpm":
        return f"model was pretrained with {objective.name!r}, not 'mpm'"
    return {name: mpm_scores(objective, cache, device=device) for name, cache in caches.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("qcd", *SIGNALS):
        parser.add_argument(f"--{name}", required=True, help=f"{name} jets: a file, folder or glob")
    parser.add_argument("--model", type=Path, required=True, help="an MPM-pretrained model folder")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="folder for caches and embeddings (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="jetfm-anomaly-"))
    data = {name: prepare(name, getattr(args, name), args.model, work, args.device) for name in ("qcd", *SIGNALS)}
    mpm = mpm_or_reason(args.model, {name: d["cache"] for name, d in data.items()}, args.device)

    rng = np.random.default_rng(args.seed)
    n_qcd = len(data["qcd"]["embeddings"])
    order = rng.permutation(n_qcd)
    reference, background = np.sort(order[: n_qcd // 2]), np.sort(order[n_qcd // 2 :])
    qcd_vectors = np.asarray(data["qcd"]["embeddings"].vectors)
    ref_vectors, ref_mass = qcd_vectors[reference], data["qcd"]["mass"][reference]
    bg_knn = knn_scores(qcd_vectors[background], ref_vectors, args.k)

    studies, curves = [], {}
    for signal in SIGNALS:
        sig = data[signal]
        sig_knn = knn_scores(np.asarray(sig["embeddings"].vectors), ref_vectors, args.k)
        for fraction in FRACTIONS:
            wanted = int(round(fraction / (1 - fraction) * len(background)))
            picked = np.sort(rng.choice(len(sig_knn), min(wanted, len(sig_knn)), replace=False))
            is_signal = np.r_[np.zeros(len(background), bool), np.ones(len(picked), bool)]
            scores = {
                "knn": np.r_[bg_knn, sig_knn[picked]],
                "mass_baseline": mass_density_score(
                    np.r_[data["qcd"]["mass"][background], sig["mass"][picked]], ref_mass
                ),
            }
            if isinstance(mpm, dict):
                scores["mpm"] = np.r_[mpm["qcd"][background], mpm[signal][picked]]
            row = {"signal": signal, "fraction": fraction, "n_background": len(background), "n_signal": len(picked)}
            row["methods"] = {m: detection_metrics(s, is_signal, MIN_BACKGROUND) for m, s in scores.items()}
            studies.append(row)
            curves[(signal, fraction)] = {m: roc_curve(s, is_signal) for m, s in scores.items()}
            print(json.dumps(row), flush=True)

    qcd = data["qcd"]
    results = {
        "machine": machine_info(),
        "model": str(args.model.resolve()),
        "k": args.k,
        "reference_qcd_jets": len(reference),
        "mpm": "computed" if isinstance(mpm, dict) else f"skipped: {mpm}",
        "embedding_throughput": {
            "device": str(resolve_device(args.device)),
            "jets": len(qcd["embeddings"]),
            "seconds": round(qcd["embed_s"], 2),
            "jets_per_s": round(len(qcd["embeddings"]) / qcd["embed_s"], 1),
        },
        "studies": studies,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "anomaly.json").write_text(json.dumps(results, indent=2))
    plot(curves, len(background), args.out / "anomaly.png")
    print(f"wrote {args.out / 'anomaly.json'} and anomaly.png; work files in {work}")


def plot(
    curves: dict[tuple[str, float], dict[str, tuple[np.ndarray, np.ndarray]]], n_background: int, path: Path
) -> None:
    """SIC against signal efficiency, where at least MIN_BACKGROUND background jets pass."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(SIGNALS), len(FRACTIONS), figsize=(10, 8), squeeze=False)
    for (signal, fraction), methods in curves.items():
        ax = axes[SIGNALS.index(signal)][FRACTIONS.index(fraction)]
        for method, (eps_s, eps_b) in methods.items():
            usable = eps_b * n_background >= MIN_BACKGROUND
            ax.plot(eps_s[usable], eps_s[usable] / np.sqrt(eps_b[usable]), label=method)
        ax.set_title(f"{signal} injected at {fraction:.0%}")
        ax.set_xlabel(r"$\epsilon_S$")
        ax.set_ylabel(r"SIC = $\epsilon_S/\sqrt{\epsilon_B}$")
        ax.legend(frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
