"""Model operations: pretrain (and, as they land, finetune, evaluate, export). Each trains in a run
folder (``runs/NAME``: train_state.pt, loss.csv, loss.png; rerunning resumes) and writes the
model folder ``models/NAME`` atomically at the end, with a model card, registered in the catalog
with its lineage (model <- dataset)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backbone.data.cache import JetCache, open_cache
from backbone.data.features import FeatureConfig
from backbone.hardware import device_description
from backbone.pretrain.base import create_objective, objective_names
from backbone.registry import create_model, list_models
from backbone.train import LOSS_CSV, TRAIN_STATE, TrainConfig, Trainer, resolve_device
from tools.catalog import Catalog, validate_name
from tools.datasets import dataset_files
from tools.result import ToolResult
from tools.workspace import artifact_dir, workspace_root

MODEL_CARD = "README.md"
TEST_FRACTION = 0.2  # the held-out share of a dataset a model was trained on, used by evaluate


def dataset_cache(dataset: str, features: FeatureConfig | None = None) -> JetCache:
    """The memory-mapped tensors of a dataset, built on first use and rebuilt if the files change."""
    features = features or FeatureConfig()
    tag = f"p{features.max_particles}{'-pid' if features.include_charge_pid else ''}"
    safe = dataset.replace("/", "_").replace("\\", "_")
    return open_cache(dataset_files(dataset), workspace_root() / "caches" / f"{safe}-{tag}", features)


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


def _check_new_model_name(catalog: Catalog, name: str) -> None:
    validate_name(name)
    existing = catalog.find(name)
    if existing is not None:
        raise ValueError(f"the name {name!r} is already used by {existing.kind} {existing.path}; choose another --name")


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
        raise ValueError(f"unknown objective {objective!r}; choose from {', '.join(objective_names())}")
    if size not in list_models():
        raise ValueError(f"unknown size {size!r}; choose from {', '.join(list_models())}")
    catalog = Catalog()
    _check_new_model_name(catalog, name)
    data = dataset_cache(dataset)
    torch.manual_seed(seed)
    encoder = create_model(size, input_dim=data.config.num_features, max_particles=data.config.max_particles)
    model = create_objective(objective, encoder)
    model.prepare(data, seed=seed)
    config = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        warmup_steps=min(200, max(1, steps // 10)),
        checkpoint_every=max(50, min(500, steps // 5)),
    )
    run_dir = workspace_root() / "runs" / name
    trainer = Trainer(model, data, config, run_dir)
    t0 = time.perf_counter()
    history = trainer.fit(show_progress=show_progress)
    wall = time.perf_counter() - t0
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
