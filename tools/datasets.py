"""Dataset operations: generate, import, describe, plot. Each exists once, here; the CLI and the
agent only adapt them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from backbone.data.errors import DataError
from backbone.data.generate import GenerationConfig, dataset_shards, generate
from backbone.data.schema import parse_processes
from tools.catalog import Catalog, validate_name
from tools.result import ToolResult
from tools.workspace import artifact_dir


def dataset_files(dataset: str, catalog: Catalog | None = None) -> list[Path]:
    """The files of a dataset given by catalog name, or by a path to a file or folder."""
    catalog = catalog or Catalog()
    art = catalog.find(dataset)
    if art is not None:
        if art.kind != "dataset":
            raise DataError(f"{dataset!r} is a {art.kind}, not a dataset")
        path = Path(art.path)
    elif os.sep in dataset or Path(dataset).exists():
        path = Path(dataset)
    else:
        catalog.get(dataset, kind="dataset")  # raises, listing the datasets that exist
        raise AssertionError("unreachable")
    if not path.exists():
        raise DataError(f"dataset {dataset!r}: {path} does not exist (moved or deleted?)")
    files = dataset_shards(path) if path.is_dir() else [path]
    if not files:
        raise DataError(f"dataset {dataset!r}: no .root files in {path}")
    return files


def generate_dataset(
    name: str,
    processes: list[str] | str = ("top", "qcd"),
    n_jets: int = 1000,
    pt_min: float = 550.0,
    pt_max: float = 650.0,
    seed: int = 1,
    workers: int = 1,
    shard: str | None = None,
    out: str | None = None,
    fractions: list[float] | None = None,
    show_progress: bool = True,
) -> ToolResult:
    """Generate jets with Pythia 8 + FastJet and register them as dataset ``name``."""
    validate_name(name)
    catalog = Catalog()
    existing = catalog.find(name)
    out_dir = Path(out) if out else (Path(existing.path) if existing else artifact_dir("dataset", name))
    if existing is not None and (existing.kind != "dataset" or Path(existing.path) != out_dir.resolve()):
        raise DataError(f"the name {name!r} is already used by {existing.kind} at {existing.path}; pick another")
    config = GenerationConfig(
        processes=tuple(parse_processes(processes)),
        n_jets=n_jets,
        pt_min=pt_min,
        pt_max=pt_max,
        seed=seed,
        fractions=tuple(fractions) if fractions else None,
    )
    summary = generate(config, out_dir, workers=workers, shard=shard, show_progress=show_progress)
    counts = summary.jets_per_process()
    complete = shard is None or shard.endswith("/1")
    catalog.register(
        name,
        "dataset",
        out_dir.resolve(),
        meta={"source": "generated", "config": summary.config, "complete": complete, "format": "root"},
        metrics={"n_jets": summary.n_jets, "jets_per_process": counts},
        replace=True,
    )
    made = [s for s in summary.shards if not s.skipped]
    seconds = sum(s.seconds for s in made)
    mix = ", ".join(f"{counts.get(p, 0)} {p}" for p in config.processes)
    text = (
        f"Dataset {name!r}: {summary.n_jets} jets ({mix}), pT {pt_min:g}-{pt_max:g} GeV, |eta| < 2, "
        f"anti-kT R=0.8, seed {seed}; {len(made)} shard(s) generated, "
        f"{len(summary.shards) - len(made)} already complete; written to {out_dir}."
    )
    data: dict[str, Any] = {
        "name": name,
        "path": str(out_dir),
        "n_jets": summary.n_jets,
        "jets_per_process": counts,
        "shards_generated": len(made),
        "shards_skipped": len(summary.shards) - len(made),
        "cpu_seconds": round(seconds, 1),
    }
    return ToolResult(text=text, data=data)
