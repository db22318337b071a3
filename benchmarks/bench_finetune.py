"""What pretraining buys for top tagging: AUC and background rejection against the number of labels.

    .venv/bin/python benchmarks/bench_finetune.py --train DATA/train --test DATA/test \\
        --pretrained MODELS/pretrained [--labels 1000 10000 all] [--steps 2000]

`--train` and `--test` are dataset folders of ROOT shards holding top and QCD jets (the test set is
never trained on); `--pretrained` is a model folder written by pretraining. For every label count a
balanced subset of the training pool (nested: the 1000 jets are among the 10000) trains:

- ``scratch``: our architecture from a random initialisation;
- ``full``: the pretrained encoder finetuned (encoder at 0.1x the head's learning rate);
- ``linear_probe``: the pretrained encoder frozen, only the head trained;
- ``weaver_part``: weaver-core's ParticleTransformer at the same sizes, from scratch;
- ``gbdt``: sklearn's HistGradientBoostingClassifier on jet mass, soft-drop mass, tau21, tau32.

The four networks get the same optimiser, schedule, batch size and number of steps. Results: a
Markdown table on stdout, JSON (machine, command, date, settings, rows) and a plot of AUC against
the number of labels.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from backbone.atomic import write_json  # noqa: E402
from backbone.checkpoint import from_pretrained  # noqa: E402
from backbone.config import KINEMATIC_CHARGE_PID_FEATURES, EncoderConfig  # noqa: E402
from backbone.data.cache import JetCache, open_cache  # noqa: E402
from backbone.data.features import FeatureConfig  # noqa: E402
from backbone.encoder import JetEncoder  # noqa: E402
from backbone.evaluate import save_figure  # noqa: E402
from backbone.finetune import LabelSubset, build_classifier, class_indices, class_lookup  # noqa: E402
from backbone.metrics import classification_report  # noqa: E402
from backbone.train import BatchSource, TrainConfig, Trainer, to_tensors  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.peers import weaver_part  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "finetune.json"
CLASSES = ("qcd", "top")
OUR_MODES = ("scratch", "full", "linear_probe")
METHODS = (*OUR_MODES, "weaver_part", "gbdt")
GBDT_FEATURES = ("mass", "sdmass", "tau21", "tau32")
HEAD_HIDDEN, HEAD_DROPOUT = 128, 0.1  # as backbone.finetune.HeadConfig's defaults, for weaver's head too


class WeaverClassifier(nn.Module):
    """weaver-core's ParticleTransformer with a classifier, behind the Trainer's forward(batch) contract."""

    def __init__(self, config: EncoderConfig, num_classes: int) -> None:
        super().__init__()
        self.net = weaver_part(config, num_classes, fc_params=[(HEAD_HIDDEN, HEAD_DROPOUT, "gelu")])
        self.register_buffer("label_to_class", torch.from_numpy(class_lookup(CLASSES)), persistent=False)

    def logits(self, batch: dict[str, Tensor]) -> Tensor:
        # weaver takes channels-first inputs and a float (B, 1, P) mask
        return self.net(
            batch["features"].transpose(1, 2), batch["vectors"].transpose(1, 2), batch["mask"][:, None].float()
        )

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        logits = self.logits(batch)
        targets = self.label_to_class[batch["labels"]]
        return F.cross_entropy(logits, targets), {"accuracy": float((logits.argmax(-1) == targets).float().mean())}

    def predict_proba(self, data: BatchSource, batch_size: int = 512) -> np.ndarray:
        self.eval()
        device = next(self.parameters()).device
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(data), batch_size):
                batch = to_tensors(data.batch(np.arange(start, min(start + batch_size, len(data)))), device)
                chunks.append(self.logits(batch).float().softmax(-1).cpu().numpy())
        return np.concatenate(chunks)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True, help="dataset folder of ROOT shards: the label pool")
    parser.add_argument("--test", type=Path, required=True, help="dataset folder of ROOT shards: the test set")
    parser.add_argument("--pretrained", type=Path, required=True, help="pretrained model folder")
    parser.add_argument("--labels", nargs="+", default=["1000", "10000", "all"], help="label counts, or 'all'")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps per network and label count")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--work", type=Path, default=Path("jetfm-workspace/bench_finetune"), help="caches, runs")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON path; the plot goes beside it")
    return parser.parse_args()


def label_counts(values: list[str], pool: int) -> list[int | None]:
    """Sorted label counts; None (every labelled jet of the pool) for 'all' or a count above the pool."""
    return sorted({None if v == "all" or int(v) >= pool else int(v) for v in values}, key=lambda n: n or pool + 1)


def open_dataset(folder: Path, work: Path, encoder: EncoderConfig) -> JetCache:
    """The cached model inputs of a dataset folder, with the features the encoder was trained on."""
    features = FeatureConfig(
        max_particles=encoder.max_particles, include_charge_pid=encoder.input_dim == KINEMATIC_CHARGE_PID_FEATURES
    )
    return open_cache(folder, work / "cache" / folder.resolve().name, features)


def train_network(model: nn.Module, data: BatchSource, args: argparse.Namespace, run_dir: Path) -> float:
    """Trains `model` on `data` with the shared budget into a fresh `run_dir`; returns seconds taken."""
    shutil.rmtree(run_dir, ignore_errors=True)  # a stale run of another model would otherwise be resumed
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=max(1, args.steps // 10),
        checkpoint_every=args.steps,
        log_every=max(1, args.steps // 20),
        seed=args.seed,
        device=args.device,
    )
    groups = model.param_groups() if hasattr(model, "param_groups") else None
    start = time.perf_counter()
    Trainer(model, data, config, run_dir, param_groups=groups).fit(show_progress=False)
    return time.perf_counter() - start


def network(method: str, pretrained: JetEncoder) -> nn.Module:
    """A fresh network: a copy of the pretrained encoder is finetuned, so that runs do not share weights."""
    if method == "weaver_part":
        return WeaverClassifier(pretrained.config, len(CLASSES))
    return build_classifier(copy.deepcopy(pretrained), CLASSES, mode=method)


def jet_observables(cache: JetCache, indices: np.ndarray) -> np.ndarray:
    """(N, 4) mass, soft-drop mass, tau21, tau32; NaN where missing (the GBDT handles it natively)."""
    jets = cache[indices]
    return np.stack([getattr(jets, name) for name in GBDT_FEATURES], axis=1)


def run_gbdt(train: JetCache, subset: LabelSubset, test: JetCache, test_subset: LabelSubset, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(random_state=seed)
    start = time.perf_counter()
    model.fit(jet_observables(train, subset.indices), class_indices(subset.labels, CLASSES))
    seconds = time.perf_counter() - start
    return model.predict_proba(jet_observables(test, test_subset.indices)), seconds


def run_one(method: str, subset: LabelSubset, ctx: dict[str, Any], run_dir: Path) -> tuple[np.ndarray, float, int]:
    """Class probabilities on the test set, training seconds and the number of trained parameters."""
    if method == "gbdt":
        probs, seconds = run_gbdt(ctx["train"], subset, ctx["test"], ctx["test_subset"], ctx["args"].seed)
        return probs, seconds, 0
    torch.manual_seed(ctx["args"].seed)
    model = network(method, ctx["encoder"])
    seconds = train_network(model, subset, ctx["args"], run_dir)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model.predict_proba(ctx["test_subset"]), seconds, trained


def summary_row(method: str, n_labels: int, report: dict[str, Any], seconds: float, trained: int) -> dict[str, Any]:
    return {
        "method": method,
        "num_labels": n_labels,
        "auc": report["auc"],
        "accuracy": report["accuracy"],
        "rejection_at_0.5": report["background_rejection"]["0.5"],
        "rejection_at_0.3": report["background_rejection"]["0.3"],
        "train_seconds": round(seconds, 1),
        "trained_parameters": trained,
        "roc": report["roc"],
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    def rejection(value: float | None) -> str:
        return "inf (no background passes)" if value is None else f"{value:.1f}"

    lines = [
        "| labels | method | AUC | 1/eps_B @ eps_S=0.5 | 1/eps_B @ eps_S=0.3 | train s |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['num_labels']} | {r['method']} | {r['auc']:.4f} | {rejection(r['rejection_at_0.5'])} "
            f"| {rejection(r['rejection_at_0.3'])} | {r['train_seconds']} |"
        )
    return "\n".join(lines)


def plot_auc(rows: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for method in dict.fromkeys(r["method"] for r in rows):
        points = sorted((r["num_labels"], r["auc"]) for r in rows if r["method"] == method)
        ax.plot(*zip(*points), marker="o", label=method)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training jets")
    ax.set_ylabel("AUC (top vs QCD)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(frameon=False)
    return save_figure(fig, path)


def available_methods(requested: list[str]) -> tuple[list[str], dict[str, str]]:
    """The requested methods that can run here, and why the others cannot."""
    skipped = {}
    for method, module, package in (("weaver_part", "weaver", "weaver-core"), ("gbdt", "sklearn", "scikit-learn")):
        if method not in requested:
            continue
        try:
            __import__(module)
        except ImportError:
            skipped[method] = f"{package} is not installed"
    return [m for m in requested if m not in skipped], skipped


def main() -> None:
    args = parse_args()
    methods, skipped = available_methods(args.methods)
    for method, why in skipped.items():
        print(f"skipping {method}: {why}", file=sys.stderr)
    encoder = from_pretrained(args.pretrained)
    train, test = (open_dataset(folder, args.work, encoder.config) for folder in (args.train, args.test))
    pool_labels = train[:].labels
    test_subset = LabelSubset(test, None, CLASSES, labels=test[:].labels)
    test_targets = class_indices(test_subset.labels, CLASSES)
    ctx = {"args": args, "encoder": encoder, "train": train, "test": test, "test_subset": test_subset}
    rows = []
    for n_labels in label_counts(args.labels, len(pool_labels)):
        subset = LabelSubset(train, n_labels, CLASSES, seed=args.seed, labels=pool_labels)
        for method in methods:
            probs, seconds, trained = run_one(method, subset, ctx, args.work / "runs" / f"{method}-{len(subset)}")
            report = classification_report(probs, test_targets, CLASSES, signal="top")
            rows.append(summary_row(method, len(subset), report, seconds, trained))
            print(f"{len(subset)} labels, {method}: AUC {report['auc']:.4f} ({seconds:.0f} s)", flush=True)
    table = markdown_table(rows)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot = plot_auc(rows, args.out.with_name(f"{args.out.stem}_auc.png"))
    write_json(
        args.out,
        {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine_info(),
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "pretrained_config": encoder.config.to_dict(),
            "train_pool_jets": int((class_indices(pool_labels, CLASSES) >= 0).sum()),
            "test_jets": len(test_subset),
            "test_class_counts": {c: int((test_targets == k).sum()) for k, c in enumerate(CLASSES)},
            "skipped_methods": skipped,
            "plot": str(plot),
            "table_markdown": table,
            "results": rows,
        },
    )
    print(f"wrote {args.out} and {plot}")


if __name__ == "__main__":
    main()
