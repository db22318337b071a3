"""Model operations: pretrain (and, as they land, finetune, evaluate, export). Each trains in a run
folder (``runs/NAME``: train_state.pt, loss.csv, loss.png; rerunning resumes) and writes the
model folder ``models/NAME`` atomically at the end, with a model card, registered in the catalog
with its lineage (model <- dataset)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jetfm.backbone.atomic import recover_folder
from jetfm.backbone.checkpoint import from_pretrained, load_config, load_features
from jetfm.backbone.data.batching import particle_counts
from jetfm.backbone.data.cache import JetCache, open_cache
from jetfm.backbone.data.classes import PROCESSES
from jetfm.backbone.data.features import FeatureConfig
from jetfm.backbone.evaluate import evaluate_classifier, plot_roc, validation_metrics
from jetfm.backbone.finetune import MODES, LabelSubset, build_classifier, fit_linear_probe, load_classifier
from jetfm.backbone.hardware import device_description
from jetfm.backbone.pretrain.base import create_objective, objective_names
from jetfm.backbone.registry import create_model, list_models
from jetfm.backbone.train import LOSS_CSV, TRAIN_STATE, TrainConfig, Trainer, init_distributed, resolve_device
from jetfm.errors import UsageError
from jetfm.tools.catalog import Catalog, CatalogError, validate_name
from jetfm.tools.datasets import dataset_files
from jetfm.tools.manifest import MANIFEST_KEY, file_manifest
from jetfm.tools.result import ToolResult
from jetfm.tools.shipped import DEFAULT_MODEL, SHIPPED_DIR, shipped_models
from jetfm.tools.workspace import artifact_dir, plots_dir, workspace_root

MODEL_CARD = "README.md"
TEST_FRACTION = 0.2  # the held-out share of a dataset a model was trained on, used by evaluate
VALIDATION_FRACTION = 0.2  # the share of the labelled training jets that picks the best step
PATIENCE = 10  # validations without improvement before finetuning stops


def dataset_cache(dataset: str, features: FeatureConfig | None = None) -> JetCache:
    """The memory-mapped tensors of a dataset, built on first use and rebuilt if the files change."""
    features = features or FeatureConfig()
    tag = f"p{features.max_particles}{'-pid' if features.include_charge_pid else ''}"
    safe = dataset.replace("/", "_").replace("\\", "_")
    return open_cache(dataset_files(dataset), workspace_root() / "caches" / f"{safe}-{tag}", features)


def model_folder(model: str, catalog: Catalog | None = None) -> Path:
    """A model by catalog name, shipped name (``jetfm-default``) or folder path."""
    catalog = catalog or Catalog()
    art = catalog.find(model)
    if art is not None:
        if art.kind != "model":
            raise CatalogError(f"{model!r} is a {art.kind}, not a model")
        return Path(art.path)
    if model in shipped_models():
        return SHIPPED_DIR / model
    if recover_folder(model).is_dir():
        return Path(model)
    known = [a.name for a in catalog.list("model")] + shipped_models()
    raise CatalogError(f"no model named {model!r}; known models: {', '.join(known) or 'none yet'}")


def check_classes_present(data: JetCache, dataset: str, classes: list[str], test_idx: np.ndarray) -> None:
    """Refuses, before any training, classes the dataset cannot train and evaluate: each needs jets
    in the training split and in the held-out split (the ROC curve is drawn on it)."""
    labels = np.asarray(data[:].labels, dtype=np.int64)
    held_out = np.zeros(len(labels), bool)
    held_out[test_idx] = True
    counts = np.bincount(labels[labels >= 0], minlength=len(PROCESSES))
    holds = ", ".join(f"{PROCESSES[i]}: {n}" for i, n in enumerate(counts) if n) or "no labelled jets"
    for name in classes:
        code = PROCESSES.index(name)
        n_test = int(np.count_nonzero(held_out & (labels == code)))
        if counts[code] == 0:
            raise UsageError(
                f"classes: dataset {dataset!r} has no {name} jets (it holds {holds}); choose classes among "
                "those it holds. Nothing was trained"
            )
        if n_test == 0 or n_test == counts[code]:
            split = "held-out 20%" if n_test == 0 else "training 80%"
            raise UsageError(
                f"classes: dataset {dataset!r} has only {counts[code]} {name} jets, none in its {split} split; "
                f"add {name} jets to the dataset or leave {name} out. Nothing was trained"
            )


def rank0_first(make: Any) -> Any:
    """Under torchrun, rank 0 runs ``make()`` first (e.g. builds a cache) while the others wait, then
    they run it too (and find the result ready); without torchrun it is just ``make()``."""
    dist = init_distributed()
    if dist.world_size == 1:
        return make()
    import torch.distributed as tdist

    result = make() if dist.is_main else None
    tdist.barrier()
    return result if dist.is_main else make()


def split_indices(n: int, seed: int = 0, test_fraction: float = TEST_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """A fixed train/test split of a dataset's jets: the same for finetune and evaluate."""
    order = np.random.default_rng([seed, n]).permutation(n)
    n_test = int(round(test_fraction * n))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


class IndexSubset:
    """A ``BatchSource`` view over some jets of another one."""

    def __init__(self, source: Any, indices: np.ndarray) -> None:
        self.source, self.indices = source, np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return self.source.batch(self.indices[np.asarray(indices)])

    def particle_counts(self) -> np.ndarray:
        return particle_counts(self.source)[self.indices]


def _pretrain_config(steps: int, batch_size: int, lr: float, seed: int, device: str) -> TrainConfig:
    """The schedule of every tool run: 10% warm-up (at most 200 steps), ~5 checkpoints per run.
    Pretraining draws batches of similar multiplicity (no labels to unbalance; the encoder runs
    fewer padded slots); it is not compiled, since its augmentations split particles into the
    padding that compiled shapes would cut."""
    return TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        warmup_steps=min(200, max(1, steps // 10)),
        checkpoint_every=max(50, min(500, steps // 5)),
        bucket=True,
    )


def _finetune_config(steps: int, batch_size: int, lr: float, seed: int, device: str) -> TrainConfig:
    """Pretraining's schedule with ~20 validations per run and early stopping after PATIENCE of
    them without improvement, on random batches: multiplicity tells top from QCD, so length
    buckets would give batches of mostly one class. (``TrainConfig(compile=True)`` is not set: its
    up to 16 compilations are untested on GPU and would dominate a short finetune.)"""
    return replace(
        _pretrain_config(steps, batch_size, lr, seed, device),
        eval_every=max(1, min(100, steps // 20)),
        patience=PATIENCE,
        bucket=False,
    )


def _check_new_model_name(catalog: Catalog, name: str) -> None:
    validate_name(name)
    existing = catalog.find(name)
    if existing is not None:
        raise UsageError(f"the name {name!r} is already used by {existing.kind} {existing.path}; choose another --name")


def _model_card(title: str, facts: dict[str, Any]) -> str:
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in facts.items()]
    return "\n".join(lines) + "\n"


def _copy_run_files(run_dir: Path, card: str) -> Any:
    def extra(staging: Path) -> None:
        for name in (TRAIN_STATE, LOSS_CSV, "loss.png"):
            if (run_dir / name).exists():
                shutil.copy2(run_dir / name, staging / name)
        (staging / MODEL_CARD).write_text(card)

    return extra


def pretrain(
    dataset: str,
    objective: str = "mpm",
    size: str = "tiny",
    steps: int = 1000,
    name: str = "pretrained",
    batch_size: int = 128,
    lr: float = 5e-4,
    seed: int = 0,
    device: str = "auto",
    show_progress: bool = True,
) -> ToolResult:
    """Self-supervised pretraining of a fresh backbone on a dataset (labels are not used)."""
    if objective not in objective_names():
        raise UsageError(f"unknown objective {objective!r}; choose from {', '.join(objective_names())}")
    if size not in list_models():
        raise UsageError(f"unknown size {size!r}; choose from {', '.join(list_models())}")
    catalog = Catalog()
    _check_new_model_name(catalog, name)
    data = rank0_first(lambda: dataset_cache(dataset))
    torch.manual_seed(seed)
    encoder = create_model(size, input_dim=data.config.num_features, max_particles=data.config.max_particles)
    model = create_objective(objective, encoder)
    model.prepare(data, seed=seed)
    config = _pretrain_config(steps, batch_size, lr, seed, device)
    run_dir = workspace_root() / "runs" / name
    trainer = Trainer(model, data, config, run_dir)
    t0 = time.perf_counter()
    history = trainer.fit(show_progress=show_progress)
    wall = time.perf_counter() - t0
    if not trainer.dist.is_main:  # under torchrun only rank 0 writes the model and the catalog
        return ToolResult(text=f"rank {trainer.dist.rank} done", data={"rank": trainer.dist.rank})
    final = {k: float(np.mean([r[k] for r in history[-20:]])) for k in history[-1] if k not in ("step", "seconds")}
    device_name = device_description(resolve_device(device))
    facts = {
        "objective": objective,
        "size": f"{size} ({encoder.num_parameters():,} parameters)",
        "data": f"{dataset} ({len(data)} jets, labels not used)",
        "steps": f"{steps} x batch {batch_size}, AdamW lr {lr:g}, warm-up + cosine",
        "device": device_name,
        "wall time": f"{wall:.0f} s (this invocation)",
        "final loss (mean of last 20 steps)": f"{final.get('loss', float('nan')):.4f}",
        "metrics": json.dumps({k: round(v, 4) for k, v in final.items()}),
    }
    folder = artifact_dir("model", name)
    model.save_pretrained(folder, extra=_copy_run_files(run_dir, _model_card(f"jetfm backbone {name}", facts)))
    catalog.register(
        name,
        "model",
        folder,
        parents=_parents(catalog, dataset),
        metrics={"final_loss": final.get("loss"), **{k: v for k, v in final.items() if k != "loss"}},
        meta={"objective": objective, "size": size, "steps": steps, "device": device_name, "wall_s": round(wall, 1)},
    )
    text = (
        f"Pretrained {name!r} ({objective}, {size}, {encoder.num_parameters():,} parameters) on {dataset!r} "
        f"for {steps} steps on {device_name} in {wall:.0f} s; final loss {final.get('loss', float('nan')):.4f}. "
        f"Saved to {folder}."
    )
    return ToolResult(text=text, data={"name": name, "path": str(folder), **final}, plots=[str(folder / "loss.png")])


def _parents(catalog: Catalog, dataset: str) -> list[str]:
    """Lineage: the dataset's catalog name if it has one (a raw path has none)."""
    return [dataset] if catalog.find(dataset) is not None else []


def finetune(
    model: str = DEFAULT_MODEL,
    dataset: str = "",
    mode: str = "full",
    n_labels: int | None = None,
    name: str = "finetuned",
    steps: int = 500,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "auto",
    classes: list[str] | None = None,
    show_progress: bool = True,
) -> ToolResult:
    """Train a classifier on the labelled jets of a dataset (its training split), from a pretrained
    backbone (``full``: head and pooling at ``lr``, the backbone's blocks with layer-wise decay;
    ``mlp_probe``: frozen backbone, MLP head; ``linear_probe``: logistic regression on the frozen
    embeddings, fitted by L-BFGS, so steps, batch size and lr do not apply) or from scratch with
    the same architecture (``model`` may then also be a size: tiny/small/base). A fifth of the
    labelled jets validates: the best validated step is kept and training stops early when the
    validation AUC stops improving. Then the classifier is evaluated on the held-out split."""
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    catalog = Catalog()
    _check_new_model_name(catalog, name)
    if mode == "scratch" and model in list_models():
        encoder, base = create_model(model), None
    else:
        base = model_folder(model, catalog)
        encoder = from_pretrained(base)
    data = rank0_first(lambda: dataset_cache(dataset, encoder.features))
    train_idx, test_idx = split_indices(len(data))
    if classes:
        check_classes_present(data, dataset, classes, test_idx)
    labelled = LabelSubset(IndexSubset(data, train_idx), n_labels, classes, seed)
    train, val = labelled.split(VALIDATION_FRACTION, seed)
    torch.manual_seed(seed)
    classifier = build_classifier(encoder, labelled.classes, mode)
    run_dir = workspace_root() / "runs" / name
    t0 = time.perf_counter()
    if mode == "linear_probe":
        probe = fit_linear_probe(classifier, train, val)
        validation = {"best_step": None, **validation_metrics(classifier, val)}
        recipe = f"logistic regression (L-BFGS) on frozen embeddings, L2 strength {probe['l2_strength']:g}"
        is_main = init_distributed().is_main
    else:
        config = _finetune_config(steps, batch_size, lr, seed, device)
        trainer = Trainer(
            classifier, train, config, run_dir, param_groups=classifier.param_groups(),
            validate=lambda: validation_metrics(classifier, val), monitor="val_auc", maximize=True,
        )
        trainer.fit(show_progress=show_progress)
        best = trainer.best
        validation = {"best_step": best.step, **best.metrics, "steps_run": trainer.step,
                      "stopped_early": trainer.stopped_early}
        recipe = f"{trainer.step} of {steps} steps x batch {batch_size}, AdamW lr {lr:g}, best step {best.step}"
        is_main = trainer.dist.is_main
    wall = time.perf_counter() - t0
    if not is_main:
        rank = init_distributed().rank
        return ToolResult(text=f"rank {rank} done", data={"rank": rank})
    test = LabelSubset(IndexSubset(data, test_idx), None, labelled.classes)
    report = evaluate_classifier(classifier, test)
    roc = plot_roc(report, plots_dir() / f"{name}-roc.png", title=f"{name} on {dataset} (held-out)")
    device_name = device_description(resolve_device(device))
    headline = _headline(report)
    facts = {
        "task": f"{' vs '.join(labelled.classes)} classification, mode {mode}",
        "backbone": str(base) if base else f"{model} (random init)",
        "data": f"{dataset}: {len(train)} labelled training jets, {len(val)} validation jets, "
        f"{len(test)} held-out test jets",
        "training": recipe,
        "validation": _validation_line(validation),
        "device": device_name,
        "wall time": f"{wall:.0f} s",
        "held-out metrics": headline,
    }
    folder = artifact_dir("model", name)
    card = _model_card(f"jetfm classifier {name}", facts)
    classifier.save_pretrained(folder, extra=_copy_run_files(run_dir, card))
    parents = _parents(catalog, dataset)
    if base is not None and catalog.find(model) is not None:
        parents.insert(0, model)
    catalog.register(
        name,
        "model",
        folder,
        parents=parents,
        metrics=_metrics(report),
        meta={
            "task": "classification",
            "mode": mode,
            "classes": list(labelled.classes),
            "n_labels": len(labelled),
            "n_train": len(train),
            "n_validation": len(val),
            "best_step": validation["best_step"],
        },
    )
    text = (
        f"Finetuned {name!r} ({mode}, {len(labelled)} labels, {' vs '.join(labelled.classes)}): {recipe}, "
        f"in {wall:.0f} s on {device_name}. Validation ({len(val)} jets): {_validation_line(validation)}. "
        f"Held-out {len(test)} jets: {headline}."
    )
    data = {"name": name, "path": str(folder), **_metrics(report), "validation": validation}
    return ToolResult(text=text, data=data, plots=[str(roc)])


def _validation_line(validation: dict[str, Any]) -> str:
    where = "" if validation["best_step"] is None else f"best at step {validation['best_step']}: "
    return f"{where}AUC {validation['val_auc']:.4f}, loss {validation['val_loss']:.4f}"


def evaluate(model: str, dataset: str, signal: str | None = None) -> ToolResult:
    """Accuracy, AUC and background rejection of a classifier on a dataset, with a ROC plot.
    On the dataset a model was trained on, only its held-out split is used."""
    catalog = Catalog()
    folder = model_folder(model, catalog)
    classifier = load_classifier(folder)
    data = dataset_cache(dataset, load_features(folder))
    art = catalog.find(model)
    held_out = art is not None and dataset in art.parents
    source = IndexSubset(data, split_indices(len(data))[1]) if held_out else data
    subset = LabelSubset(source, None, classifier.classes)
    report = evaluate_classifier(classifier, subset, signal)
    roc = plot_roc(
        report, plots_dir() / f"{model}-on-{dataset.replace('/', '_')}-roc.png", title=f"{model} on {dataset}"
    )
    if art is not None:
        catalog.update_metrics(model, {f"{dataset}/{k}": v for k, v in _metrics(report).items()})
    scope = "held-out split" if held_out else "all jets"
    text = f"{model} on {dataset} ({scope}, {len(subset)} jets): {_headline(report)}. ROC curve: {roc}"
    return ToolResult(text=text, data={**report, "scope": scope}, plots=[str(roc)])


def export(model: str, out: str | None = None) -> ToolResult:
    """ONNX export (dynamic batch and particle count), checked against PyTorch with onnxruntime."""
    from jetfm.backbone.onnx_export import check_onnx, example_inputs, export_onnx

    folder = model_folder(model)
    try:
        net: torch.nn.Module = load_classifier(folder)
        kind = "classifier"
    except FileNotFoundError:
        net, kind = from_pretrained(folder), "encoder"
    path = Path(out) if out else folder / "model.onnx"
    export_onnx(net, path)
    config = load_config(folder)
    # Two shapes, neither the traced one, with padded jets: the dynamic axes and the mask must hold.
    shapes = [(5, min(37, config.max_particles)), (3, min(90, config.max_particles))]
    diff = 0.0
    for i, (n_jets, slots) in enumerate(shapes):
        features, vectors, mask = example_inputs(n_jets, slots, config.input_dim, seed=i)
        diff = max(diff, check_onnx(net, path, {"features": features, "vectors": vectors, "mask": mask}))
    checked = " and ".join(f"({n} jets, {slots} slots)" for n, slots in shapes)
    text = f"Exported {kind} {model!r} to {path}; onnxruntime matches PyTorch to {diff:.1e} on batches of {checked}."
    return ToolResult(text=text, data={"path": str(path), "kind": kind, "max_abs_diff": diff})


def _metrics(report: dict[str, Any]) -> dict[str, Any]:
    out = {"accuracy": report["accuracy"]}
    if "auc" in report:
        out["auc"] = report["auc"]
        for eff, value in report["background_rejection"].items():
            out[f"rejection@{eff}"] = value
    else:
        out["macro_auc"] = report["macro_auc"]
    return out


def _headline(report: dict[str, Any]) -> str:
    parts = [f"accuracy {report['accuracy']:.3f}"]
    if "auc" in report:
        parts.append(f"AUC {report['auc']:.4f}")
        for eff, value in report["background_rejection"].items():
            shown = "inf (no background passes)" if value is None else f"{value:.1f}"
            parts.append(f"1/eps_B at eps_S={eff}: {shown}")
    else:
        parts.append(f"macro AUC {report['macro_auc']:.4f}")
    return ", ".join(parts)


def sample(
    model: str,
    n_jets: int = 1000,
    name: str | None = None,
    reference: str | None = None,
    jet_pt: float = 600.0,
    temperature: float = 1.0,
    seed: int = 0,
) -> ToolResult:
    """Sample new jets from a next-token (ntp) pretrained model, write them as a ROOT dataset, and
    compare their mass, tau32 and multiplicity with the reference (default: the training data)."""
    from jetfm.backbone.data.readers import check_files, open_jets
    from jetfm.backbone.data.rootio import write_jets
    from jetfm.backbone.pretrain.base import load_objective
    from jetfm.backbone.pretrain.sampling import compare_samples, plot_sample_comparison, sample_jets

    catalog = Catalog()
    folder = model_folder(model, catalog)
    objective = load_objective(folder)
    if objective.name != "ntp":
        raise UsageError(f"sampling needs a next-token (ntp) model; {model!r} was pretrained with {objective.name!r}")
    name = name or f"{model}-samples"
    _check_new_model_name(catalog, name)
    jets = sample_jets(objective, n_jets, jet_pt=jet_pt, temperature=temperature, seed=seed)
    out = artifact_dir("dataset", name)
    provenance = {"generator": f"jetfm ntp model {model}", "n_jets": n_jets, "jet_pt": jet_pt, "seed": seed}
    samples = write_jets(out / "samples-0000.root", jets, provenance)
    art = catalog.find(model)
    reference = reference or next((p for p in (art.parents if art else []) if catalog.find(p).kind == "dataset"), None)
    catalog.register(
        name,
        "dataset",
        out,
        parents=[model] if art else [],
        meta={"source": "sampled", **provenance, MANIFEST_KEY: file_manifest(check_files(samples))},
        metrics={"n_jets": len(jets)},
    )
    text = f"Sampled {len(jets)} jets from {model!r} into dataset {name!r}."
    plots: list[str] = []
    data: dict[str, Any] = {"name": name, "path": str(out), "n_jets": len(jets)}
    if reference is not None:
        ref = open_jets(dataset_files(reference, catalog), entry_stop=max(5 * n_jets, 5000))
        comparison = compare_samples(jets, ref, seed=seed)
        plots.append(str(plot_sample_comparison(comparison, plots_dir() / f"{name}-vs-{slug(reference)}.png")))
        w1 = {k: round(v["wasserstein"], 4) for k, v in comparison["observables"].items()}
        floor = {k: round(v["wasserstein_reference_halves"], 4) for k, v in comparison["observables"].items()}
        text += f" Wasserstein-1 to {reference!r}: {w1} (between halves of the reference: {floor})."
        data["comparison"] = {
            k: {kk: vv for kk, vv in v.items() if not isinstance(vv, list)}
            for k, v in comparison["observables"].items()
        }
    return ToolResult(text=text, data=data, plots=plots)


def slug(text: str) -> str:
    """``text`` as part of an artifact name. A model given as a folder path is named by its last
    part and a short hash of the whole path, so that two folders called ``model`` stay apart and
    the name stays within the catalog's 64 characters."""
    if "/" in text or os.sep in text:
        path = str(Path(text).resolve())
        text = f"{Path(path).name[:24]}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
