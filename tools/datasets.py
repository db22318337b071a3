"""Dataset operations: generate, import, describe, plot. Each exists once, here; the CLI and the
agent only adapt them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from jetfm.backbone.data.errors import DataError
from jetfm.backbone.data.generate import GenerationConfig, dataset_shards, generate, parse_shard_spec
from jetfm.backbone.data.jets import DEFAULT_PT_WINDOW
from jetfm.backbone.data.kinematics import transverse_momentum
from jetfm.backbone.data.readers import (
    ReadReport,
    check_files,
    count_jets,
    detect_format,
    iterate_jets,
    open_jets,
    resolve_paths,
)
from jetfm.backbone.data.schema import PROCESSES, parse_processes
from jetfm.backbone.data.summary import OBSERVABLES, UNLABELLED, jet_classes, jet_observables, summarize
from jetfm.tools.catalog import Catalog, validate_name
from jetfm.tools.manifest import MANIFEST_KEY, file_manifest, generated_files, registered_files
from jetfm.tools.plots import plot_by_class, plot_jet_image
from jetfm.tools.result import ToolResult
from jetfm.tools.workspace import artifact_dir, plots_dir


def dataset_files(dataset: str, catalog: Catalog | None = None) -> list[Path]:
    """The files of a dataset given by catalog name (checked against its manifest: a missing or
    changed file is refused by name), or by a path to a file or folder."""
    catalog = catalog or Catalog()
    art = catalog.find(dataset)
    if art is not None:
        if art.kind != "dataset":
            raise DataError(f"{dataset!r} is a {art.kind}, not a dataset")
        return registered_files(art)
    if os.sep in dataset or Path(dataset).exists():
        path = Path(dataset)
    else:
        catalog.get(dataset, kind="dataset")  # raises, listing the datasets that exist
        raise AssertionError("unreachable")
    if not path.exists():
        raise DataError(f"dataset {dataset!r}: {path} does not exist (moved or deleted?)")
    files = dataset_shards(path) if path.is_dir() else resolve_paths(path)
    if not files:
        raise DataError(f"dataset {dataset!r}: no data files in {path}")
    return files


def generate_dataset(
    name: str,
    processes: list[str] | str = ("top", "qcd"),
    n_jets: int = 1000,
    pt_min: float = DEFAULT_PT_WINDOW[0],
    pt_max: float = DEFAULT_PT_WINDOW[1],
    seed: int = 1,
    workers: int = 1,
    shard: str | None = None,
    out: str | None = None,
    fractions: list[float] | None = None,
    show_progress: bool = True,
) -> ToolResult:
    """Generate jets with Pythia 8 + FastJet and register them as dataset ``name``."""
    validate_name(name)
    parse_shard_spec(shard)  # a bad --shard is refused before any folder is made
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
    # The catalog holds every shard in the folder, also those other batch jobs (--shard) made.
    shards, complete = generated_files(config, out_dir)
    registered: dict[str, int] = {}
    for process, file in shards:
        registered[process] = registered.get(process, 0) + file.n_jets
    meta = {"source": "generated", "config": summary.config, "complete": complete, "format": "root"}
    catalog.register(
        name,
        "dataset",
        out_dir.resolve(),
        meta={**meta, MANIFEST_KEY: file_manifest(file for _, file in shards)},
        metrics={"n_jets": sum(registered.values()), "jets_per_process": registered},
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


def import_dataset(path: str, name: str) -> ToolResult:
    """Register a file (or folder of shards) a physicist brings: validated, then named."""
    validate_name(name)
    catalog = Catalog()
    if catalog.find(name) is not None:
        raise DataError(f"the name {name!r} is already in the catalog; choose another --name")
    files = resolve_paths(path)
    formats = sorted({detect_format(f) for f in files})
    try:
        checked = check_files(files)  # every file read through to its last entry
    except DataError as err:
        raise DataError(
            f"{path} was not imported: {err}. Nothing was registered; re-copy or fix the file(s) named, or move "
            "them aside and import the rest"
        ) from None
    n_jets = sum(f.n_jets for f in checked)
    report = ReadReport()
    first = next(iterate_jets(files, step_size=min(n_jets, 1000) or 1, report=report), None)
    if first is None or len(first) == 0:
        raise DataError(f"{path}: no readable jets (read report: {report.message()})")
    source = Path(path).resolve()
    catalog.register(
        name,
        "dataset",
        source,
        meta={"source": "imported", "format": formats, "files": len(files), MANIFEST_KEY: file_manifest(checked)},
        metrics={"n_jets": n_jets},
    )
    text = f"Imported {path} as dataset {name!r}: {n_jets} jets in {len(files)} file(s) ({', '.join(formats)})."
    if report.dropped:
        text += f" Note: {report.message()}"
    return ToolResult(text=text, data={"name": name, "path": str(source), "n_jets": n_jets, "formats": formats})


def describe_dataset(dataset: str) -> ToolResult:
    """Counts per class and observable summaries (mean, std, quantiles), overall and per class."""
    summary = summarize(dataset_files(dataset))
    lines = [f"Dataset {dataset!r}: {summary['num_jets']} jets"]
    lines.append("  " + ", ".join(f"{cls}: {n}" for cls, n in summary["counts"].items()))
    header = f"  {'observable':15s}" + "".join(f"{cls:>16s}" for cls in summary["per_class"])
    lines += ["  mean (std) per class:", header]
    for obs in OBSERVABLES:
        cells = []
        for stats in summary["per_class"].values():
            st = stats.get(obs, {})
            mean, std = st.get("mean"), st.get("std")
            cells.append(f"{mean:.3g} ({std:.2g})" if mean is not None and std is not None else "n/a")
        lines.append(f"  {obs:15s}" + "".join(f"{c:>16s}" for c in cells))
    report = summary["read_report"]
    if report["dropped"]:
        lines.append(
            f"  dropped while reading: {report['dropped']} jets ({report['dropped_nonfinite']} with NaN/inf, "
            f"{report['dropped_empty']} with no constituents)"
        )
    return ToolResult(text="\n".join(lines), data=summary)


def plot_observable(dataset: str, observable: str = "mass", by_label: bool = True) -> ToolResult:
    """Histogram one jet observable of a dataset, one curve per class (or inclusive)."""
    if observable not in OBSERVABLES:
        raise DataError(f"unknown observable {observable!r}; choose from {', '.join(OBSERVABLES)}")
    column = OBSERVABLES.index(observable)
    values: dict[str, list[np.ndarray]] = {}
    report = ReadReport()
    for jets in iterate_jets(dataset_files(dataset), report=report):
        obs = jet_observables(jets)[:, column]
        if not by_label:
            values.setdefault("all", []).append(obs)
            continue
        classes = jet_classes(jets)
        for index in np.unique(classes):
            key = PROCESSES[index] if index >= 0 else UNLABELLED
            values.setdefault(key, []).append(obs[classes == index])
    order = [*PROCESSES, UNLABELLED, "all"]
    merged = {k: np.concatenate(values[k]) for k in order if k in values}
    if not merged:
        raise DataError(f"nothing to plot: {dataset!r} has no usable jets ({report.message()}); no plot was written")
    # NaN marks an observable the files do not hold (e.g. tau21 without N-subjettiness branches).
    defined = {k: v[np.isfinite(v)] for k, v in merged.items()}
    undefined = [k for k, v in defined.items() if not len(v)]
    if len(undefined) == len(defined):
        raise DataError(
            f"nothing to plot: {observable} is undefined (NaN) for all {report.jets_kept} jets of {dataset!r}: "
            f"{_UNDEFINED_WHY.get(observable, 'the files hold no value for it')}. No plot was written; "
            "pt, eta, mass and n_constituents are defined for every jet"
        )
    shown = {k: v for k, v in defined.items() if len(v)}
    path = plots_dir() / f"{dataset.replace('/', '_')}-{observable}{'-by-class' if by_label else ''}.png"
    plot_by_class(shown, observable, path, title=f"{dataset}: {observable}")
    medians = ", ".join(f"{k} {np.median(v):.3g}" for k, v in shown.items())
    n_total = sum(len(v) for v in shown.values())
    text = f"Plotted {observable} of {dataset!r} ({n_total} jets) to {path}. Medians: {medians}."
    n_undefined = sum(len(merged[k]) - len(defined[k]) for k in merged)
    if n_undefined:
        classes = f" (all of {', '.join(undefined)})" if undefined else ""
        text += f" Left out: {n_undefined} jets with no {observable} value{classes}."
    counts = {k: len(v) for k, v in shown.items()}
    return ToolResult(text=text, data={"path": str(path), "counts": counts}, plots=[str(path)])


_UNDEFINED_WHY = {
    "sdmass": "the files have no soft-drop mass branch (jet_sdmass)",
    "tau21": "the files have no N-subjettiness branches (jet_tau1, jet_tau2)",
    "tau32": "the files have no N-subjettiness branches (jet_tau2, jet_tau3)",
}


def show_jet(dataset: str, index: int = 0) -> ToolResult:
    """An image of jet number ``index`` of a dataset in the (delta eta, delta phi) plane."""
    files = dataset_files(dataset)
    n_jets = count_jets(files)
    if not 0 <= index < n_jets:
        raise DataError(f"jet {index} is out of range: {dataset!r} holds {n_jets} jets (0..{n_jets - 1})")
    jets = open_jets(files, entry_start=index, entry_stop=index + 1)
    if len(jets) == 0:
        raise DataError(f"jet {index} of {dataset!r} is not usable (no constituents or NaN values); pick another")
    jet = jets[0]
    pt = transverse_momentum(np.asarray(jet.part_px), np.asarray(jet.part_py))
    label = int(jet_classes(jets)[0])
    process = PROCESSES[label] if label >= 0 else UNLABELLED
    facts = {
        "index": index,
        "label": process,
        "pt": float(jet.jet_pt),
        "eta": float(jet.jet_eta),
        "mass": float(jet.jet_mass),
        "n_constituents": len(pt),
    }
    title = (
        f"{dataset} jet {index} ({process})\n$p_T$ {facts['pt']:.0f} GeV, mass {facts['mass']:.1f} GeV, "
        f"{len(pt)} constituents"
    )
    path = plots_dir() / f"{dataset.replace('/', '_')}-jet{index}.png"
    plot_jet_image(np.asarray(jet.part_deta), np.asarray(jet.part_dphi), pt, path, title)
    text = (
        f"Jet {index} of {dataset!r} ({process}): pT {facts['pt']:.0f} GeV, eta {facts['eta']:.2f}, "
        f"mass {facts['mass']:.1f} GeV, {len(pt)} constituents. Image: {path}"
    )
    return ToolResult(text=text, data={**facts, "path": str(path)}, plots=[str(path)])
