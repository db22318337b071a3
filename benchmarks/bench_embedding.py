"""What a backbone's frozen jet embedding holds, measured the way a user meets it.

    .venv/bin/python benchmarks/bench_embedding.py --classes-data eval10 --binary-data tq_test \\
        --models jetfm-default MY-MODEL random:tiny [--probe-train 10000] [--splits 3]

Datasets are catalog names of the workspace (``$JETFM_HOME``); models are catalog names, shipped
names, folders, or ``random:SIZE`` (an untrained encoder of that size: the floor). Per model:

- **spread**: the mean cosine similarity of the embeddings of different jets (near 1: every jet
  looks alike to `jetfm similar`), on the jets of ``--classes-data``;
- **kNN class purity**: the share of each jet's 10 nearest neighbours (cosine) of its own class,
  overall and per class, on ``--classes-data`` (the labels are read only here);
- **top vs QCD, frozen**: a logistic regression on the standardised embedding (L2 strength chosen on
  a validation fifth of the training jets), trained on ``--probe-train`` jets of ``--binary-data``
  and tested on all the others; AUC with its Hanley-McNeil error, 1/eps_B at eps_S = 0.3 and 0.5
  with binomial errors; the mean and spread over ``--splits`` random splits. The same splits train
  two baselines on (mass, soft-drop mass, tau21, tau32): a logistic regression and a GBDT
  (HistGradientBoosting, early-stopped on the same validation fifth);
- **masked-token accuracy** (models saved with their MPM objective): on ``--classes-data``, 40% of
  each jet's particles hidden (seeded), against the per-jet majority-token baseline (the ceiling of a
  model that cannot tell a jet's hidden particles apart).

Results: a Markdown table on stdout and JSON (machine, command, date, every figure) in
benchmarks/results/embedding.json (``--out``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.machine import machine_info  # noqa: E402
from jetfm.backbone.atomic import write_json  # noqa: E402
from jetfm.backbone.checkpoint import from_pretrained  # noqa: E402
from jetfm.backbone.data.batching import inference_batches  # noqa: E402
from jetfm.backbone.data.cache import JetCache  # noqa: E402
from jetfm.backbone.data.classes import PROCESSES  # noqa: E402
from jetfm.backbone.encoder import JetEncoder  # noqa: E402
from jetfm.backbone.finetune import LabelSubset  # noqa: E402
from jetfm.backbone.metrics import (  # noqa: E402
    auc,
    auc_standard_error,
    background_rejection,
    rejection_error,
    roc_curve,
)
from jetfm.backbone.pretrain.base import load_objective  # noqa: E402
from jetfm.backbone.pretrain.jet_term import sample_hidden  # noqa: E402
from jetfm.backbone.registry import create_model  # noqa: E402
from jetfm.backbone.train import to_tensors  # noqa: E402
from jetfm.tools.models import dataset_cache, model_folder  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "embedding.json"
OBSERVABLES = ("mass", "sdmass", "tau21", "tau32")
NEIGHBOURS = 10
STRENGTHS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # inverse of sklearn's C, as jetfm's linear probe uses them


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="names, folders, or random:SIZE")
    parser.add_argument("--classes-data", required=True, help="dataset with several classes (spread, purity, MPM)")
    parser.add_argument("--binary-data", required=True, help="dataset of top and QCD jets (frozen probe)")
    parser.add_argument("--probe-train", type=int, default=10_000, help="jets that train each probe")
    parser.add_argument("--splits", type=int, default=3, help="random train/test splits of the probe")
    parser.add_argument("--max-jets", type=int, default=5_000, help="jets of --classes-data used")
    parser.add_argument("--max-binary-jets", type=int, default=0, help="jets of --binary-data used (0: all)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args()


def load_model(spec: str, data: JetCache) -> tuple[JetEncoder, Path | None]:
    """The encoder named by ``spec`` and its folder (None for ``random:SIZE``)."""
    if spec.startswith("random:"):
        torch.manual_seed(0)
        size = spec.split(":", 1)[1]
        return create_model(size, input_dim=data.config.num_features, max_particles=data.config.max_particles), None
    folder = model_folder(spec)
    return from_pretrained(folder), folder


@torch.inference_mode()
def embed(encoder: JetEncoder, data: Any, batch_size: int = 512) -> np.ndarray:
    encoder.eval()
    out = np.empty((len(data), encoder.config.embed_dim), dtype=np.float32)
    for positions, arrays in inference_batches(data, batch_size):
        batch = to_tensors(arrays, torch.device("cpu"))
        out[positions] = encoder(batch["features"], batch["vectors"], batch["mask"]).float().numpy()
    return out


def spread_and_purity(vectors: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Mean cosine of different jets; kNN class purity overall and per class."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)
    cosine = unit @ unit.T
    n = len(unit)
    mean_cosine = float((cosine.sum() - np.trace(cosine)) / (n * (n - 1)))
    np.fill_diagonal(cosine, -np.inf)
    neighbours = np.argpartition(-cosine, NEIGHBOURS, axis=1)[:, :NEIGHBOURS]
    same = labels[neighbours] == labels[:, None]
    per_class = {PROCESSES[c]: round(float(same[labels == c].mean()), 4) for c in np.unique(labels)}
    chance = float(np.sum((np.bincount(labels) / n) ** 2))
    return {"mean_cosine": round(mean_cosine, 4), "knn_purity": round(float(same.mean()), 4),
            "knn_purity_chance": round(chance, 4), "knn_purity_per_class": per_class}


def binary_figures(scores: np.ndarray, is_top: np.ndarray) -> dict[str, float | None]:
    eps_s, eps_b = roc_curve(scores, is_top)
    area = auc(eps_s, eps_b)
    n_sig, n_bkg = int(is_top.sum()), int((~is_top).sum())
    out: dict[str, float | None] = {"auc": area, "auc_err": auc_standard_error(area, n_sig, n_bkg)}
    for eff in (0.3, 0.5):
        rejection = background_rejection(eps_s, eps_b, eff)
        out[f"rej{int(eff * 100)}"] = rejection
        out[f"rej{int(eff * 100)}_err"] = rejection_error(1 / rejection, n_bkg) if np.isfinite(rejection) else None
    return out


def probe_splits(n: int, n_train: int, splits: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(train, validation, test) positions for each split: a fifth of the training jets validates."""
    out = []
    for seed in range(splits):
        order = np.random.default_rng(seed).permutation(n)
        n_val = n_train // 5
        out.append((order[n_val:n_train], order[:n_val], order[n_train:]))
    return out


def logistic(x: np.ndarray, y: np.ndarray, split: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Test scores of a standardised L2 logistic regression, its strength chosen on validation AUC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, val, test = split
    best: tuple[float, Any] | None = None
    for strength in STRENGTHS:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1 / strength, max_iter=2000))
        model.fit(x[train], y[train])
        score = roc_auc_score(y[val], model.decision_function(x[val]))
        if best is None or score > best[0]:
            best = (score, model)
    return best[1].decision_function(x[test])


def gbdt(x: np.ndarray, y: np.ndarray, split: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier

    train, val, test = split
    fit = np.concatenate([train, val])
    model = HistGradientBoostingClassifier(
        max_iter=500, early_stopping=True, validation_fraction=len(val) / len(fit), n_iter_no_change=20, random_state=0
    )
    model.fit(x[fit], y[fit])
    return model.predict_proba(x[test])[:, 1]


def summarise(runs: list[dict[str, float | None]]) -> dict[str, Any]:
    """Mean over splits of each figure, with the spread over splits and the mean statistical error."""
    out: dict[str, Any] = {"runs": runs}
    for key in ("auc", "rej30", "rej50"):
        values = np.array([r[key] for r in runs], dtype=float)
        errors = np.array([r[f"{key}_err"] if r[f"{key}_err"] is not None else np.nan for r in runs], dtype=float)
        out[key] = float(values.mean())
        out[f"{key}_spread"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[f"{key}_err"] = float(np.nanmean(errors)) if np.isfinite(errors).any() else None
    return out


@torch.inference_mode()
def masked_accuracy(folder: Path, data: Any, batch_size: int = 256) -> dict[str, float] | None:
    """Masked-token accuracy and the per-jet majority baseline, weighted by hidden particles."""
    if not (folder / "pretraining.json").is_file():
        return None
    objective = load_objective(folder)
    if objective.name != "mpm":
        return None
    objective.eval()
    generator = torch.Generator().manual_seed(0)
    totals = {"masked_accuracy": 0.0, "majority_accuracy": 0.0}
    hidden_total = 0
    for _, arrays in inference_batches(data, batch_size):
        batch = to_tensors(arrays, torch.device("cpu"))
        hidden = sample_hidden(batch["mask"], objective.mask_fraction, generator)
        _, metrics = objective.masked_loss(batch, hidden)
        n = int(hidden.sum())
        hidden_total += n
        for key in totals:
            totals[key] += metrics[key] * n
    return {key: round(value / hidden_total, 4) for key, value in totals.items()}


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    classes = dataset_cache(args.classes_data)
    class_jets = LabelSubset(classes, min(args.max_jets, len(classes)), seed=0)  # balanced over its classes
    class_labels = class_jets.labels
    binary = LabelSubset(dataset_cache(args.binary_data), args.max_binary_jets or None, ("qcd", "top"), seed=0)
    jets = binary.data[binary.indices]  # jet-level columns (and particles) of the top and QCD jets
    is_top = binary.labels == PROCESSES.index("top")
    observables = np.stack([np.asarray(getattr(jets, name), dtype=np.float64) for name in OBSERVABLES], 1)
    observables = np.nan_to_num(observables, nan=-1.0)
    splits = probe_splits(len(binary), args.probe_train, args.splits)

    results: dict[str, Any] = {"machine": machine_info(), "settings": {k: str(v) for k, v in vars(args).items()}}
    baselines = {
        "logistic on (mass, sdmass, tau21, tau32)": logistic,
        "GBDT on (mass, sdmass, tau21, tau32)": gbdt,
    }
    results["baselines"] = {
        name: summarise([binary_figures(fit(observables, is_top, s), is_top[s[2]]) for s in splits])
        for name, fit in baselines.items()
    }
    results["models"] = {}
    for spec in args.models:
        encoder, folder = load_model(spec, classes)
        print(f"{spec}: embedding {len(class_jets)} + {len(binary)} jets", file=sys.stderr, flush=True)
        figures: dict[str, Any] = {"parameters": encoder.num_parameters()}
        figures |= spread_and_purity(embed(encoder, class_jets), class_labels)
        vectors = embed(encoder, binary)
        figures["probe"] = summarise([binary_figures(logistic(vectors, is_top, s), is_top[s[2]]) for s in splits])
        if folder is not None:
            figures["mpm"] = masked_accuracy(folder, class_jets)
        results["models"][spec] = figures
    write_json(args.out, results)
    print_table(results)


def print_table(results: dict[str, Any]) -> None:
    def fmt(fig: dict[str, Any]) -> str:
        return (f"{fig['auc']:.4f} ± {fig['auc_spread']:.4f} | {fig['rej30']:.1f} ± {fig['rej30_err'] or 0:.1f} | "
                f"{fig['rej50']:.1f} ± {fig['rej50_err'] or 0:.1f}")

    print("| model | mean cosine | kNN purity@10 | masked acc. / majority | probe AUC | 1/eps_B@0.3 | 1/eps_B@0.5 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for spec, fig in results["models"].items():
        mpm = fig.get("mpm")
        mpm_text = f"{mpm['masked_accuracy']:.3f} / {mpm['majority_accuracy']:.3f}" if mpm else "-"
        print(f"| {spec} | {fig['mean_cosine']:.3f} | {fig['knn_purity']:.3f} | {mpm_text} | {fmt(fig['probe'])} |")
    for name, fig in results["baselines"].items():
        print(f"| {name} | - | - | - | {fmt(fig)} |")


if __name__ == "__main__":
    main()
