"""Jets and words in one space: train an alignment, search jets by text, describe a jet in words,
zero-shot classify with any label phrases. The shipped ``jetfm-align-default`` sits beside the
shipped backbone and works on any freshly generated sample.

A text search applies the conditions its words state exactly (retrieval.constraints, through
retrieval.query.run_query) and says how it read them; the CLI, the agent's ``search_text`` tool and
the app's Search tab all call :func:`search_text` here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jetfm.backbone.data.schema import PROCESSES
from jetfm.errors import UsageError
from jetfm.retrieval.align import load_aligner, train_alignment
from jetfm.retrieval.constraints import parse_query, tool_cuts
from jetfm.retrieval.index import JetIndex
from jetfm.retrieval.query import run_query
from jetfm.tools.catalog import Catalog, CatalogError
from jetfm.tools.models import DEFAULT_MODEL, SHIPPED_DIR, model_folder, slug
from jetfm.tools.result import ToolResult
from jetfm.tools.search import embeddings_for, json_record, label_name
from jetfm.tools.workspace import artifact_dir, workspace_root

DEFAULT_ALIGNER = "jetfm-align-default"


def aligner_folder(aligner: str, catalog: Catalog) -> tuple[Path, str]:
    """An aligner's folder and the name of the backbone it was trained on."""
    art = catalog.find(aligner)
    if art is not None and art.meta.get("type") == "aligner":
        return Path(art.path), art.meta["backbone"]
    if (SHIPPED_DIR / aligner / "config.json").exists():
        return SHIPPED_DIR / aligner, DEFAULT_MODEL
    known = [a.name for a in catalog.list("model") if a.meta.get("type") == "aligner"] + [DEFAULT_ALIGNER]
    raise CatalogError(f"no jet-text alignment named {aligner!r}; known: {', '.join(known)}")


def align(
    dataset: str, model: str = DEFAULT_MODEL, name: str = "aligner", steps: int = 2000, seed: int = 0
) -> ToolResult:
    """Train a CLIP-style jet-text alignment on a dataset's jets (captions from truth + observables)."""
    import torch

    catalog = Catalog()
    if catalog.find(name) is not None:
        raise CatalogError(f"the name {name!r} is already used; choose another --name")
    model_folder(model, catalog)  # a clear error for an unknown backbone
    emb = embeddings_for(model, dataset)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small heads: one thread is fastest and does not fight other work
    try:
        aligner = train_alignment(emb, steps=steps, seed=seed, run_dir=workspace_root() / "runs" / name)
    finally:
        torch.set_num_threads(threads)
    folder = aligner.save_pretrained(artifact_dir("model", name))
    parents = [p for p in (model, dataset) if catalog.find(p) is not None]
    catalog.register(
        name, "model", folder, parents=parents, meta={"type": "aligner", "backbone": model, "steps": steps}
    )
    text = f"Trained jet-text alignment {name!r} on {len(emb)} jets of {dataset!r} (backbone {model!r}, {steps} steps)."
    return ToolResult(text=text, data={"name": name, "path": str(folder)}, plots=[str(folder / "loss.png")])


def _latest_dataset(catalog: Catalog) -> str:
    datasets = catalog.list("dataset")
    if not datasets:
        raise CatalogError("no dataset in the workspace yet; generate or import one first")
    return datasets[-1].name


def _aligned_index(aligner_name: str, dataset: str, catalog: Catalog) -> tuple[Any, JetIndex]:
    folder, backbone = aligner_folder(aligner_name, catalog)
    aligner = load_aligner(folder)
    emb = embeddings_for(backbone, dataset, show_progress=False)  # refuses a dataset whose files are gone
    path = artifact_dir("index", f"txt-{slug(dataset)}-{slug(aligner_name)}")
    # The saved index is reused only if it was built after the embeddings it indexes were made.
    if (path / "index.json").exists() and (path / "index.json").stat().st_mtime >= emb.path.stat().st_mtime:
        index = JetIndex.load(path)
        if index.model == aligner.ref:
            return aligner, index
    index = aligner.aligned_index(emb)
    index.save(path)
    return aligner, index


def search_text(
    query: str,
    k: int = 10,
    dataset: str | None = None,
    aligner: str = DEFAULT_ALIGNER,
    mass_min: float | None = None,
    mass_max: float | None = None,
    labels: list[str] | None = None,
) -> ToolResult:
    """The k jets of a dataset (default: the most recent one) that best match a description, among
    those that meet every condition the description states (and the explicit mass/label arguments)."""
    catalog = Catalog()
    dataset = dataset or _latest_dataset(catalog)
    model, index = _aligned_index(aligner, dataset, catalog)
    parsed = parse_query(query).with_conditions(tool_cuts(mass_min, mass_max), labels)
    found = run_query(model, index, parsed, k=k)
    records = found.hits.records()
    lines = [f"Search of {dataset!r} for {query!r}: {found.summary()}."]
    lines += [f"  ({note})" for note in found.notes]
    if found.low_similarity:
        lines.append("  (the query looks unrelated to jet physics: these are weak matches)")
    if found.truncated:
        lines.append("  (the query was long and was truncated to the text model's limit)")
    if records:
        lines.append(f"The {len(records)} best matches{' among them' if found.n_passed < found.n_jets else ''}:")
        lines += [f"  #{r['id']}: {_jet_line(r)}" for r in records]
    misses = []
    if found.misses is not None:
        misses = [json_record(r) | {"breaks": why} for r, why in zip(found.misses.records(), found.miss_reasons)]
        lines.append(f"No jet meets these conditions. The {len(misses)} nearest misses (NOT matches: each breaks "
                     "a condition):")
        lines += [f"  MISS #{r['id']}: {_jet_line(r)}; breaks {'; '.join(r['breaks'])}" for r in misses]
    data = {
        "dataset": dataset,
        "query": query,
        **found.to_dict(),
        "low_similarity": found.low_similarity,
        "truncated": found.truncated,
        "relevance": found.relevance,
        "results": [json_record(r) for r in records],
        "misses": misses,
    }
    return ToolResult(text="\n".join(lines), data=data)


def _jet_line(record: dict[str, Any]) -> str:
    return (f"similarity {record['similarity']:.3f}, mass {record['mass']:.0f} GeV, soft-drop mass "
            f"{record['sdmass']:.0f} GeV, pT {record['pt']:.0f} GeV, {record['nparticles']:.0f} constituents, "
            f"{label_name(record['label'])}")


def describe_jet(dataset: str, entry: int = 0, k: int = 5, aligner: str = DEFAULT_ALIGNER) -> ToolResult:
    """The descriptions in words that best match one jet."""
    catalog = Catalog()
    folder, backbone = aligner_folder(aligner, catalog)
    model = load_aligner(folder)
    emb = embeddings_for(backbone, dataset, show_progress=False)
    if not 0 <= entry < len(emb):
        raise UsageError(f"entry {entry} is out of range: {dataset!r} has {len(emb)} jets (0..{len(emb) - 1})")
    vector = model.jet_vectors(emb.vectors[entry : entry + 1], emb.metadata.iloc[entry : entry + 1])[0]
    best = model.describe_jet(vector, k=k)
    row = emb.metadata.iloc[entry]
    lines = [f"{dataset}[{entry}] (mass {row['mass']:.0f} GeV, {label_name(row['label'])}) reads as:"]
    lines += [f"  {sim:.3f}  {text}" for text, sim in best]
    return ToolResult(text="\n".join(lines), data={"descriptions": [{"text": t, "similarity": s} for t, s in best]})


def zero_shot_classify(dataset: str, labels: list[str], aligner: str = DEFAULT_ALIGNER) -> ToolResult:
    """Classify every jet of a dataset among label phrases; with truth labels, a table by true class."""
    catalog = Catalog()
    folder, backbone = aligner_folder(aligner, catalog)
    model = load_aligner(folder)
    emb = embeddings_for(backbone, dataset, show_progress=False)
    result = model.zero_shot(model.jet_vectors(emb), labels)
    counts = {label: int((result.predictions == i).sum()) for i, label in enumerate(labels)}
    truth = emb.metadata["label"].to_numpy()
    table: dict[str, dict[str, int]] = {}
    for code in np.unique(truth[truth >= 0]):
        picked = result.predictions[truth == code]
        table[PROCESSES[code]] = {label: int((picked == i).sum()) for i, label in enumerate(labels)}
    lines = [f"Zero-shot classification of {len(emb)} jets of {dataset!r} into {labels}:"]
    lines.append("  predicted: " + ", ".join(f"{label} {n}" for label, n in counts.items()))
    for process, row in table.items():
        lines.append(f"  true {process}: " + ", ".join(f"{label} {n}" for label, n in row.items()))
    return ToolResult(text="\n".join(lines), data={"labels": labels, "predicted": counts, "by_true_class": table})
