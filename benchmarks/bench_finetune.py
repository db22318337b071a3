"""Jet tagging with few labels (top vs QCD by default; any two classes with `--signal` and
`--background`, e.g. H->bb vs QCD): jetfm (from scratch, or pretrained and finetuned) against
weaver-core's ParticleTransformer from scratch and a GBDT on substructure, trained to convergence.

    .venv/bin/python benchmarks/bench_finetune.py --train DATA/train --test DATA/test \\
        [--pretrained MODELS/pretrained] [--labels 1000 10000] [--seeds 0 1 2] [--methods scratch weaver_part] \\
        [--signal hbb --background qcd]

`--train` and `--test` are dataset folders of ROOT shards holding jets of both classes (others are
left out; the test set is never trained on); `--pretrained` is a model folder written by
pretraining (needed by ``full``, ``mlp_probe`` and ``linear_probe``). For every label count and
seed a balanced subset of the training pool is drawn (nested over label counts) and a fifth of
it, balanced, is held out as the validation split. Methods:

- ``scratch``: jetfm's architecture from a random initialisation (the size of `--pretrained`, or
  `--size` without it);
- ``full``: the pretrained encoder finetuned with jetfm's recipe (head and pooling at the full rate,
  layer-wise decay below);
- ``mlp_probe``: the pretrained encoder frozen, an MLP head trained;
- ``linear_probe``: logistic regression on the frozen embeddings (L-BFGS; strength chosen on the
  validation split);
- ``weaver_part``: weaver-core's ParticleTransformer at the same sizes, from scratch, with a head of
  the same width (and weaver's own random trimming of long jets in training);
- ``gbdt``: sklearn's HistGradientBoostingClassifier on jet mass, soft-drop mass, tau21, tau32
  (its own early stopping on the same validation split).

The networks trained by steps share everything but the model: optimiser (AdamW, no decay on
norms, biases and tokens), warm-up + cosine schedule over `--max-steps`, batch size, the batches
themselves, validation every `--eval-every` steps on the validation AUC, early stopping after
`--patience` validations without improvement, and the best validated weights for the test. On
the test set: AUC (with its Hanley-McNeil error) and 1/eps_B at eps_S = 0.3 and 0.5 with binomial
errors from the number of background jets; per method, the mean and spread over seeds. Results:
a Markdown table on stdout, JSON (machine, command, date, settings, every run) and a plot.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
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

from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.peers import weaver_part  # noqa: E402
from jetfm.backbone.atomic import new_figure, save_figure, write_json  # noqa: E402
from jetfm.backbone.checkpoint import from_pretrained  # noqa: E402
from jetfm.backbone.config import EncoderConfig  # noqa: E402
from jetfm.backbone.data.batching import inference_batches  # noqa: E402
from jetfm.backbone.data.cache import JetCache, open_cache  # noqa: E402
from jetfm.backbone.data.classes import PROCESSES  # noqa: E402
from jetfm.backbone.encoder import JetEncoder, default_features  # noqa: E402
from jetfm.backbone.evaluate import validation_metrics  # noqa: E402
from jetfm.backbone.finetune import (  # noqa: E402
    LabelSubset,
    build_classifier,
    class_indices,
    class_lookup,
    fit_linear_probe,
)
from jetfm.backbone.metrics import auc_standard_error, classification_report, rejection_error  # noqa: E402
from jetfm.backbone.registry import create_model, list_models  # noqa: E402
from jetfm.backbone.train import TrainConfig, Trainer, to_tensors  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "finetune_converged.json"
PRETRAINED_METHODS = ("full", "mlp_probe", "linear_probe")
METHODS = ("scratch", *PRETRAINED_METHODS, "weaver_part", "gbdt")
GBDT_FEATURES = ("mass", "sdmass", "tau21", "tau32")
HEAD_HIDDEN, HEAD_DROPOUT = 128, 0.1  # as backbone.finetune.HeadConfig's defaults, for weaver's head too
VALIDATION_FRACTION = 0.2


class WeaverClassifier(nn.Module):
    """weaver-core's ParticleTransformer with a classifier, behind the Trainer's forward(batch) contract
    and the ``classes`` / ``predict_proba`` that `validation_metrics` reads."""

    def __init__(self, config: EncoderConfig, classes: tuple[str, ...]) -> None:
        super().__init__()
        self.classes = classes
        self.net = weaver_part(config, len(classes), fc_params=[(HEAD_HIDDEN, HEAD_DROPOUT, "gelu")])
        self.register_buffer("label_to_class", torch.from_numpy(class_lookup(classes)), persistent=False)

    def logits(self, batch: dict[str, Tensor]) -> Tensor:
        # weaver takes channels-first inputs and a float (B, 1, P) mask
        return self.net(
            batch["features"].transpose(1, 2), batch["vectors"].transpose(1, 2), batch["mask"][:, None].float()
        )

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        logits = self.logits(batch)
        targets = self.label_to_class[batch["labels"]]
        return F.cross_entropy(logits, targets), {"accuracy": float((logits.argmax(-1) == targets).float().mean())}

    def predict_proba(self, data: Any, batch_size: int = 512) -> np.ndarray:
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        out = np.empty((len(data), len(self.classes)), dtype=np.float32)
        with torch.inference_mode():
            for positions, arrays in inference_batches(data, batch_size):
                out[positions] = self.logits(to_tensors(arrays, device)).float().softmax(-1).cpu().numpy()
        self.train(was_training)
        return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, help="dataset folder of ROOT shards: the label pool")
    parser.add_argument("--test", type=Path, help="dataset folder of ROOT shards: the test set")
    parser.add_argument("--combine", nargs="+", type=Path, metavar="JSON",
                        help="train nothing: merge the runs of earlier result files (e.g. methods run in "
                             "parallel processes on the same data) into --out, with one table and plot")
    parser.add_argument("--pretrained", type=Path, help="pretrained model folder (full, mlp_probe, linear_probe)")
    parser.add_argument("--tag", default="",
                        help="a name for --pretrained in the pretrained methods' labels and run folders "
                             "(e.g. no-hcc: full[no-hcc]), so that runs of two backbones share a table via --combine")
    parser.add_argument("--size", default="tiny", choices=list_models(), help="network size without --pretrained")
    parser.add_argument("--encoder", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="EncoderConfig fields changed for scratch (e.g. block_norms=true init=xavier)")
    parser.add_argument("--signal", default="top", choices=PROCESSES, help="the class to tag")
    parser.add_argument("--background", default="qcd", choices=PROCESSES, help="the class to reject")
    parser.add_argument("--labels", nargs="+", type=int, default=[1000], help="labelled jets (train + validation)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="label subset, init and batches")
    parser.add_argument("--methods", nargs="+", default=["scratch", "weaver_part"], choices=METHODS)
    parser.add_argument("--max-steps", type=int, default=1500, help="step budget (the cosine schedule's length)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=25, help="steps between validations")
    parser.add_argument("--patience", type=int, default=12, help="validations without improvement before stopping")
    parser.add_argument("--bucket", action="store_true", help="batches of similar multiplicity (both networks)")
    parser.add_argument("--trim", action="store_true", help="jetfm with weaver's random trimming of long jets")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-only", action="store_true",
                        help="train (and checkpoint) every run, evaluate nothing: a later run resumes them")
    parser.add_argument("--fresh", action="store_true", help="discard earlier runs of the same settings")
    parser.add_argument("--work", type=Path, default=Path("jetfm-workspace/bench_finetune"), help="caches, runs")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON path; the plot goes beside it")
    return parser.parse_args()


def encoder_overrides(pairs: list[str]) -> dict[str, Any]:
    """``FIELD=VALUE`` strings -> EncoderConfig overrides, values read as JSON where they parse
    (true, 0.1, [64, 64]) and as strings otherwise (xavier)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--encoder expects FIELD=VALUE, got {pair!r}")
        try:
            overrides[name] = json.loads(value)
        except json.JSONDecodeError:
            overrides[name] = value
    return overrides


def open_dataset(folder: Path, work: Path, encoder: EncoderConfig) -> JetCache:
    """The cached model inputs of a dataset folder, with the features the encoder reads."""
    return open_cache(folder, work / "cache" / folder.resolve().name, default_features(encoder))


def train_config(args: argparse.Namespace, seed: int) -> TrainConfig:
    return TrainConfig(
        steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=max(1, args.max_steps // 20),
        checkpoint_every=4 * args.eval_every,  # a killed benchmark resumes where it was
        log_every=50,
        seed=seed,
        device=args.device,
        eval_every=args.eval_every,
        patience=args.patience,
        bucket=args.bucket,
    )


def train_network(model: nn.Module, fit: LabelSubset, val: LabelSubset, config: TrainConfig, run_dir: Path):
    """Trains `model` with the shared recipe in `run_dir` (resuming a run found there, which the
    Trainer refuses if its settings differ); it ends with its best weights."""
    groups = model.param_groups() if hasattr(model, "param_groups") else None
    trainer = Trainer(
        model, fit, config, run_dir, param_groups=groups,
        validate=lambda: validation_metrics(model, val), monitor="val_auc", maximize=True,
    )
    trainer.fit(show_progress=False)
    return {
        "best_step": trainer.best.step,
        "steps_run": trainer.step,
        "val_auc": trainer.best.metrics["val_auc"],
        "seconds": training_seconds(trainer.history),
    }


def training_seconds(history: list[dict[str, float]]) -> float:
    """Seconds spent on the steps in `history`, over every invocation that trained them: each
    invocation (a resumed one too) counts its ``seconds`` from zero. Steps redone after a kill
    (between the last checkpoint and the kill) are not counted."""
    seconds = [row["seconds"] for row in history]
    ends = [a for a, b in zip(seconds, seconds[1:]) if b < a] + seconds[-1:]
    return float(sum(ends))


def jet_observables(cache: JetCache, indices: np.ndarray) -> np.ndarray:
    """(N, 4) mass, soft-drop mass, tau21, tau32; NaN where missing (the GBDT handles it natively)."""
    jets = cache[indices]
    return np.stack([getattr(jets, name) for name in GBDT_FEATURES], axis=1)


def run_gbdt(ctx: dict[str, Any], fit: LabelSubset, val: LabelSubset, seed: int) -> tuple[np.ndarray, dict]:
    """The GBDT's boosting iterations play the steps: the iteration with the best validation AUC
    scores the test set."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(random_state=seed, early_stopping=False, max_iter=500)
    classes = ctx["classes"]
    model.fit(jet_observables(ctx["train"], fit.indices), class_indices(fit.labels, classes))
    val_targets = class_indices(val.labels, classes)
    val_auc = [
        classification_report(p, val_targets, classes)["auc"]
        for p in model.staged_predict_proba(jet_observables(ctx["train"], val.indices))
    ]
    best = int(np.argmax(val_auc))
    staged = model.staged_predict_proba(jet_observables(ctx["test"], ctx["test_subset"].indices))
    probs = next(p for k, p in enumerate(staged) if k == best)
    return probs, {"best_step": best + 1, "steps_run": len(val_auc), "val_auc": val_auc[best]}


def network(method: str, ctx: dict[str, Any]) -> nn.Module:
    """A fresh network; pretrained methods finetune a copy, so that runs do not share weights."""
    if method == "weaver_part":
        return WeaverClassifier(ctx["config"], ctx["classes"])
    if method == "scratch":
        return build_classifier(JetEncoder(ctx["config"]), ctx["classes"], mode="scratch")
    return build_classifier(copy.deepcopy(ctx["pretrained"]), ctx["classes"], mode=method)


def run_one(method: str, fit: LabelSubset, val: LabelSubset, seed: int, ctx: dict[str, Any]) -> dict[str, Any]:
    """Test-set probabilities, training seconds, trained parameters and what validation chose."""
    args = ctx["args"]
    torch.manual_seed(seed)
    start = time.perf_counter()
    if method == "gbdt":
        probs, chosen = run_gbdt(ctx, fit, val, seed)
        return {"probs": probs, "seconds": time.perf_counter() - start, "trained": 0, **chosen}
    model = network(method, ctx)
    if method == "linear_probe":
        probe = fit_linear_probe(model, fit, val)
        chosen = {"best_step": None, "l2_strength": probe["l2_strength"], **validation_metrics(model, val)}
    else:
        config = train_config(args, seed)
        if args.trim and method != "weaver_part":
            config.trim = True
        variant = "".join(f"-{o}" for o in args.encoder) if method == "scratch" else ""
        if method in PRETRAINED_METHODS and args.tag:
            variant = f"-{args.tag}"  # another backbone's runs must not be resumed as this one's
        run_dir = args.work / "runs" / f"{method}{variant}-{len(fit)}-{seed}"
        if args.fresh:
            shutil.rmtree(run_dir, ignore_errors=True)
        chosen = train_network(model, fit, val, config, run_dir)
    seconds = chosen.pop("seconds", time.perf_counter() - start)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    probs = None if args.train_only else model.predict_proba(ctx["test_subset"])
    return {"probs": probs, "seconds": seconds, "trained": trained, **chosen}


def method_label(method: str, args: argparse.Namespace) -> str:
    """The name a method's rows carry: its encoder overrides (scratch) or the backbone's tag."""
    if method == "scratch" and args.encoder:
        return f"{method}[{','.join(args.encoder)}]"
    if method in PRETRAINED_METHODS and args.tag:
        return f"{method}[{args.tag}]"
    return method


def summary_row(method: str, n_labels: int, seed: int, run: dict[str, Any], targets: np.ndarray,
                classes: tuple[str, str]) -> dict[str, Any]:
    report = classification_report(run["probs"], targets, classes, signal=classes[1])
    n_signal, n_background = int((targets == 1).sum()), int((targets == 0).sum())
    row = {
        "method": method,
        "num_labels": n_labels,
        "seed": seed,
        "auc": report["auc"],
        "auc_error": auc_standard_error(report["auc"], n_signal, n_background),
        "accuracy": report["accuracy"],
        "best_step": run.get("best_step"),
        "steps_run": run.get("steps_run"),
        "val_auc": run.get("val_auc"),
        "train_seconds": round(run["seconds"], 1),
        "trained_parameters": run["trained"],
        "roc": report["roc"],
    }
    for eff in ("0.3", "0.5"):
        eps_b = report["background_efficiency"][eff]
        row[f"rejection_at_{eff}"] = report["background_rejection"][eff]
        row[f"rejection_at_{eff}_error"] = rejection_error(eps_b, n_background)
        row[f"background_passing_at_{eff}"] = round(eps_b * n_background)
    if "l2_strength" in run:
        row["l2_strength"] = run["l2_strength"]
    return row


def _value(value: float | None, error: float | None = None, digits: int = 1) -> str:
    if value is None:
        return "inf (no background passes)"
    return f"{value:.{digits}f}" if error is None else f"{value:.{digits}f} ± {error:.{digits}f}"


def runs_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| labels | method | seed | AUC | 1/eps_B @ eps_S=0.3 | 1/eps_B @ eps_S=0.5 | best step / run | train s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        steps = "" if r["best_step"] is None else f"{r['best_step']} / {r['steps_run'] or ''}".rstrip(" /")
        lines.append(
            f"| {r['num_labels']} | {r['method']} | {r['seed']} | {_value(r['auc'], r['auc_error'], 4)} "
            f"| {_value(r['rejection_at_0.3'], r['rejection_at_0.3_error'])} "
            f"| {_value(r['rejection_at_0.5'], r['rejection_at_0.5_error'])} | {steps} | {r['train_seconds']} |"
        )
    return "\n".join(lines)


def seed_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (labels, method): mean and standard deviation over seeds of AUC and the rejections."""
    out = []
    for key in dict.fromkeys((r["num_labels"], r["method"]) for r in rows):
        runs = [r for r in rows if (r["num_labels"], r["method"]) == key]
        entry: dict[str, Any] = {"num_labels": key[0], "method": key[1], "seeds": len(runs)}
        for name in ("auc", "rejection_at_0.3", "rejection_at_0.5"):
            values = np.array([np.inf if r[name] is None else r[name] for r in runs], dtype=float)
            entry[name] = float(values.mean())
            entry[f"{name}_seed_std"] = float(values.std(ddof=1)) if len(values) > 1 else None
        out.append(entry)
    return out


def summary_table(summary: list[dict[str, Any]]) -> str:
    lines = [
        "| labels | method | seeds | AUC (mean ± sd) | 1/eps_B @ 0.3 (mean ± sd) | 1/eps_B @ 0.5 (mean ± sd) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for s in summary:
        lines.append(
            f"| {s['num_labels']} | {s['method']} | {s['seeds']} | {_value(s['auc'], s['auc_seed_std'], 4)} "
            f"| {_value(s['rejection_at_0.3'], s['rejection_at_0.3_seed_std'])} "
            f"| {_value(s['rejection_at_0.5'], s['rejection_at_0.5_seed_std'])} |"
        )
    return "\n".join(lines)


METHOD_LABELS = {
    "full": "jetfm pretrained + full finetune",
    "linear_probe": "jetfm linear probe (frozen)",
    "mlp_probe": "jetfm MLP probe (frozen)",
    "scratch": "jetfm from scratch",
    "weaver_part": "weaver-core ParT from scratch",
    "gbdt": "GBDT on 4 observables",
}


def task_name(classes: tuple[str, str]) -> str:
    """'top vs qcd': the signal first."""
    return f"{classes[1]} vs {classes[0]}"


def plot_auc(summary: list[dict[str, Any]], path: Path, task: str, test_jets: int) -> Path:
    """AUC and 1/eps_B at 30% and 50% against the label count, one colour per method on every panel."""
    fig, axes = new_figure(1, 3, figsize=(15, 4.5))
    panels = (("auc", f"AUC ({task})", False), ("rejection_at_0.3", "1/eps_B at eps_S = 0.3", True),
              ("rejection_at_0.5", "1/eps_B at eps_S = 0.5", True))
    for index, method in enumerate(dict.fromkeys(s["method"] for s in summary)):
        runs = sorted((s for s in summary if s["method"] == method), key=lambda s: s["num_labels"])
        for ax, (key, _, _) in zip(axes, panels):
            x = [s["num_labels"] for s in runs]
            y = [s[key] for s in runs]
            err = [s[f"{key}_seed_std"] or 0.0 for s in runs]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, color=f"C{index}",
                        label=f"{METHOD_LABELS.get(method, method)} (seeds: {'/'.join(str(s['seeds']) for s in runs)})")
    for ax, (_, label, log_y) in zip(axes, panels):
        ax.set_xscale("log")
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel("labelled jets (training + validation)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(frameon=False, fontsize="small")
    fig.suptitle(f"{task}: mean ± sd over seeds; {test_jets:,}-jet test set")
    return save_figure(fig, path)


def available_methods(requested: list[str], pretrained: Path | None) -> tuple[list[str], dict[str, str]]:
    """The requested methods that can run here, and why the others cannot."""
    skipped = {m: "needs --pretrained" for m in requested if m in PRETRAINED_METHODS and pretrained is None}
    for method, module, package in (("weaver_part", "weaver", "weaver-core"), ("gbdt", "sklearn", "scikit-learn")):
        if method not in requested:
            continue
        try:
            __import__(module)
        except ImportError:
            skipped[method] = f"{package} is not installed"
    return [m for m in requested if m not in skipped], skipped


def combine(parts: list[Path], out: Path) -> None:
    """One result file from several runs of this benchmark on the same test set."""
    loaded = [json.loads(path.read_text()) for path in parts]
    counts = {json.dumps(part["test_class_counts"], sort_keys=True) for part in loaded}
    if len(counts) != 1:
        raise SystemExit(f"--combine: the files were tested on different test sets ({sorted(counts)}); "
                         "only runs on one test set can share a table")
    rows = [row for part in loaded for row in part["results"]]
    summary = seed_summary(rows)
    tables = f"{summary_table(summary)}\n\n{runs_table(rows)}"
    print(tables)
    task = loaded[0].get("task", "top vs qcd")  # files from before --signal were all top vs QCD
    plot = plot_auc(summary, out.with_name(f"{out.stem}_auc.png"), task, sum(loaded[0]["test_class_counts"].values()))
    write_json(out, {
        **{k: loaded[0][k] for k in ("date", "machine", "test_class_counts")},
        "task": task,
        "combined_from": [{"file": str(path), "date": part["date"], "settings": part["settings"],
                           "machine": part["machine"], "complete": part.get("complete", True)}
                          for path, part in zip(parts, loaded)],
        "plot": str(plot),
        "tables_markdown": tables,
        "summary": summary,
        "results": rows,
    })
    print(f"wrote {out} and {plot}")


def main() -> None:
    args = parse_args()
    if args.combine:
        combine(args.combine, args.out)
        return
    if args.train is None or args.test is None:
        raise SystemExit("bench_finetune: --train and --test are required (or --combine JSON files)")
    if args.signal == args.background:
        raise SystemExit(f"bench_finetune: --signal and --background are both {args.signal!r}; name two classes")
    if args.threads:
        torch.set_num_threads(args.threads)
    methods, skipped = available_methods(args.methods, args.pretrained)
    for method, why in skipped.items():
        print(f"skipping {method}: {why}", file=sys.stderr)
    pretrained = from_pretrained(args.pretrained) if args.pretrained else None
    config = pretrained.config if pretrained is not None else create_model(args.size).config
    config = config.replace(**encoder_overrides(args.encoder))
    train = open_dataset(args.train, args.work, config)
    test = None if args.train_only else open_dataset(args.test, args.work, config)
    classes = (args.background, args.signal)  # index 1 is the signal
    pool_labels = train[:].labels
    test_subset = None if test is None else LabelSubset(test, None, classes, labels=test[:].labels)
    test_targets = None if test_subset is None else class_indices(test_subset.labels, classes)
    ctx = {"args": args, "config": config, "pretrained": pretrained, "train": train, "test": test,
           "test_subset": test_subset, "classes": classes}
    rows = []
    for n_labels in sorted(args.labels):
        for seed in args.seeds:
            fit, val = LabelSubset(train, n_labels, classes, seed=seed, labels=pool_labels).split(
                VALIDATION_FRACTION, seed
            )
            for method in methods:
                if args.train_only and method == "gbdt":
                    continue  # seconds to fit: nothing to resume
                run = run_one(method, fit, val, seed, ctx)
                if args.train_only:
                    print(f"{n_labels} labels, seed {seed}, {method}: trained, best step {run['best_step']} "
                          f"(validation AUC {run['val_auc']:.4f}) in {run['seconds']:.0f} s", flush=True)
                    continue
                label = method_label(method, args)
                rows.append(summary_row(label, n_labels, seed, run, test_targets, classes))
                r = rows[-1]
                print(
                    f"{n_labels} labels, seed {seed}, {method}: AUC {r['auc']:.4f}, 1/eps_B@0.3 "
                    f"{_value(r['rejection_at_0.3'], r['rejection_at_0.3_error'])}, best step {r['best_step']} "
                    f"of {r['steps_run']} ({r['train_seconds']:.0f} s)",
                    flush=True,
                )
                write_results(rows, ctx, pool_labels, test_targets, skipped, final=False)
    if not args.train_only:
        write_results(rows, ctx, pool_labels, test_targets, skipped, final=True)


def write_results(rows: list[dict[str, Any]], ctx: dict[str, Any], pool_labels: np.ndarray,
                  test_targets: np.ndarray, skipped: dict[str, str], final: bool) -> None:
    """The JSON and plot of the runs so far: written after every run, so that a run cut off
    midway keeps what finished (``complete`` says whether every requested run is in)."""
    args = ctx["args"]
    summary = seed_summary(rows)
    tables = f"{summary_table(summary)}\n\n{runs_table(rows)}"
    if final:
        print(tables)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    classes = ctx["classes"]
    plot = plot_auc(summary, args.out.with_name(f"{args.out.stem}_auc.png"), task_name(classes),
                    len(ctx["test_subset"]))
    write_json(
        args.out,
        {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "complete": final,
            "machine": machine_info(),
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "encoder_config": ctx["config"].to_dict(),
            "validation_fraction": VALIDATION_FRACTION,
            "task": task_name(classes),
            "train_pool_jets": int((class_indices(pool_labels, classes) >= 0).sum()),
            "test_jets": len(ctx["test_subset"]),
            "test_class_counts": {c: int((test_targets == k).sum()) for k, c in enumerate(classes)},
            "skipped_methods": skipped,
            "plot": str(plot),
            "tables_markdown": tables,
            "summary": summary,
            "results": rows,
        },
    )
    if final:
        print(f"wrote {args.out} and {plot}")


if __name__ == "__main__":
    main()
