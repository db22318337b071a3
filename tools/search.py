"""Embedding, FAISS indexes, similar-jet search and anomaly scans, as named workspace artifacts:
embeddings <- model + dataset, index <- model + dataset."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from jetfm.backbone.anomaly import knn_scores, mpm_scores, write_scores
from jetfm.backbone.data.cache import source_fingerprint
from jetfm.backbone.data.schema import PROCESSES
from jetfm.backbone.embed import EmbeddingSet, embed_dataset, folder_fingerprint, load_embeddings
from jetfm.backbone.pretrain.base import load_objective
from jetfm.errors import UsageError
from jetfm.retrieval.index import JetFilter, JetIndex, RetrievalError
from jetfm.tools.catalog import Catalog
from jetfm.tools.datasets import dataset_files
from jetfm.tools.models import dataset_cache, model_folder, slug
from jetfm.tools.result import ToolResult
from jetfm.tools.workspace import artifact_dir, workspace_root


def _lineage(catalog: Catalog, *names: str) -> list[str]:
    return [n for n in names if catalog.find(n) is not None]


def embed(
    model: str, dataset: str, batch_size: int = 512, device: str = "auto", show_progress: bool = True
) -> ToolResult:
    """Embed every jet of a dataset with a backbone (resumable), with per-jet metadata."""
    catalog = Catalog()
    folder = model_folder(model, catalog)
    from jetfm.backbone.checkpoint import load_features

    cache = dataset_cache(dataset, load_features(folder))
    name = f"emb-{slug(model)}-{slug(dataset)}"
    out = artifact_dir("embedding", name)
    emb = embed_dataset(folder, cache, out, batch_size=batch_size, device=device, show_progress=show_progress)
    catalog.register(
        name,
        "embedding",
        out,
        parents=_lineage(catalog, model, dataset),
        meta={"model": emb.model.describe(), "dim": emb.dim},
        metrics={"n_jets": len(emb)},
        replace=True,
    )
    text = f"Embedded {len(emb)} jets of {dataset!r} with {model!r} ({emb.dim} dimensions) into {name!r}."
    return ToolResult(text=text, data={"name": name, "path": str(out), "n_jets": len(emb), "dim": emb.dim})


def embeddings_for(model: str, dataset: str, show_progress: bool = True) -> EmbeddingSet:
    """The embeddings of ``dataset`` by ``model``, computed on first use and again once the dataset's
    files or the model's weights changed (a retrained model saved under the same name, or a new
    shipped default after an upgrade). A dataset whose files are gone is refused, so nothing answers
    from stale vectors."""
    source = source_fingerprint(dataset_files(dataset))
    path = artifact_dir("embedding", f"emb-{slug(model)}-{slug(dataset)}")
    if (path / "manifest.json").exists():
        emb = load_embeddings(path)
        same_source = emb.manifest.get("source", source) == source  # sets made before sources were recorded pass
        if same_source and emb.model.fingerprint == folder_fingerprint(model_folder(model)):
            return emb
    embed(model, dataset, show_progress=show_progress)
    return load_embeddings(path)


def source_digest(source: list[dict[str, Any]]) -> str:
    """A short fingerprint of a dataset's files (paths, sizes, mtimes) for the catalog."""
    return hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:16]


def build_index(dataset: str, model: str, kind: str = "auto", name: str | None = None) -> ToolResult:
    """A FAISS index (cosine) over the jet embeddings of a dataset; its type follows its size."""
    catalog = Catalog()
    emb = embeddings_for(model, dataset)
    index = JetIndex.from_embeddings(emb, kind=kind)
    name = name or f"idx-{slug(dataset)}-{slug(model)}"
    path = index.save(artifact_dir("index", name))
    catalog.register(
        name,
        "index",
        path,
        parents=_lineage(catalog, model, dataset),
        meta={
            "kind": index.kind,
            "model": emb.model.describe(),
            "dataset": dataset,
            "embedding_model": model,
            "source_digest": source_digest(emb.manifest["source"]) if "source" in emb.manifest else None,
        },
        metrics={"n_jets": len(index)},
        replace=True,
    )
    text = f"Built index {name!r} over dataset {dataset!r}: {index.describe()}."
    return ToolResult(text=text, data={"name": name, "path": str(path), "kind": index.kind, "n_jets": len(index)})


def _load_index(index: str, catalog: Catalog) -> tuple[JetIndex, dict[str, Any]]:
    """An index, refused when the dataset it was built over is gone or has changed since."""
    art = catalog.get(index, kind="index")
    dataset = art.meta.get("dataset")
    if dataset is not None and catalog.find(dataset) is not None:
        files = dataset_files(dataset, catalog)  # refuses a dataset whose files are missing
        built_from = art.meta.get("source_digest")
        if built_from is not None and built_from != source_digest(source_fingerprint(files)):
            raise RetrievalError(
                f"index {index!r} was built over dataset {dataset!r} before its files changed, so its answers "
                f"would be stale; rebuild it (build_index with dataset={dataset!r}, "
                f"model={art.meta.get('embedding_model')!r}, name={index!r}) and search again"
            )
    return JetIndex.load(art.path), art.meta


def query_vector(model: str, path: str, entry: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Embed one jet given as constituents: entry ``entry`` of any jet file the readers accept."""
    import torch

    from jetfm.backbone.checkpoint import from_pretrained
    from jetfm.backbone.data.features import make_tensors
    from jetfm.backbone.data.readers import count_jets, open_jets

    n = count_jets(path)
    if not 0 <= entry < n:
        raise RetrievalError(f"entry {entry} is out of range: {path} holds {n} jets (0..{n - 1})")
    encoder = from_pretrained(model_folder(model))
    jets = open_jets(path, entry_start=entry, entry_stop=entry + 1)
    if len(jets) == 0:
        raise RetrievalError(f"{path} entry {entry} is not a usable jet (no constituents or NaN values)")
    tensors = make_tensors(jets, encoder.features)
    with torch.inference_mode():
        inputs = (torch.from_numpy(getattr(tensors, f)) for f in ("features", "vectors", "mask"))
        vector = encoder(*inputs).numpy()
    return vector, {"file": path, "entry": entry, "mass": float(tensors.mass[0]), "pt": float(tensors.pt[0])}


def latest_index(dataset: str, catalog: Catalog | None = None) -> str:
    """The most recent index built over ``dataset`` (its lineage names the dataset)."""
    catalog = catalog or Catalog()
    found = [a for a in catalog.list("index") if dataset in a.parents]
    if not found:
        raise RetrievalError(
            f"no index over {dataset!r} yet; build one first (build_index with dataset={dataset!r}), "
            "then search again"
        )
    return max(found, key=lambda a: a.created).name


def search_similar(
    dataset: str | None,
    index: str | None = None,
    entry: int = 0,
    k: int = 10,
    mass_min: float | None = None,
    mass_max: float | None = None,
    pt_min: float | None = None,
    pt_max: float | None = None,
    labels: list[str] | None = None,
    query_file: str | None = None,
) -> ToolResult:
    """The k jets in ``index`` most similar to a query jet, optionally only those passing mass / pT
    windows and labels. The query is jet number ``entry`` of ``dataset`` (itself excluded), or, with
    ``query_file``, entry ``entry`` of any jet file: a jet given as its constituents."""
    catalog = Catalog()
    if index is None:
        if dataset is None:
            raise RetrievalError("give the index to search, or the dataset whose latest index to use")
        index = latest_index(dataset, catalog)
    jet_index, meta = _load_index(index, catalog)
    model = meta["embedding_model"]
    if query_file is not None:
        vector, query = query_vector(model, query_file, entry)
        query_model, source = jet_index.model, f"{query_file}[{entry}]"
    elif dataset is not None:
        emb = embeddings_for(model, dataset)
        if not 0 <= entry < len(emb):
            raise RetrievalError(f"entry {entry} is out of range: {dataset!r} has {len(emb)} jets (0..{len(emb) - 1})")
        vector, query, query_model = emb.vectors[entry : entry + 1], emb.metadata.iloc[entry].to_dict(), emb.model
        source = f"{dataset}[{entry}]"
    else:
        raise RetrievalError("give the query jet: a dataset and entry, or a file of its constituents (query_file)")
    filters = None
    if any(v is not None for v in (mass_min, mass_max, pt_min, pt_max, labels)):
        filters = JetFilter(
            mass=None if mass_min is None and mass_max is None else (mass_min or 0.0, mass_max or np.inf),
            pt=None if pt_min is None and pt_max is None else (pt_min or 0.0, pt_max or np.inf),
            labels=labels,
        )
    same_jets = query_file is None and meta.get("dataset") == dataset
    want = k + int(same_jets)  # the query jet itself comes back first when it is in the index
    if want > len(jet_index):
        raise RetrievalError(
            f"k={k} but index {index!r} holds only {len(jet_index) - int(same_jets)} other jets; ask for fewer"
        )
    hits = jet_index.search(vector, k=want, filters=filters, model=query_model)[0]
    records = [r for r, i in zip(hits.records(), hits.ids) if not (same_jets and i == entry)][:k]
    lines = [f"{len(records)} jets most similar to {source} (mass {query['mass']:.0f} GeV):"]
    lines += [
        f"  #{r['id']}: similarity {r['similarity']:.3f}, mass {r['mass']:.0f} GeV, pT {r['pt']:.0f} GeV, "
        f"{label_name(r['label'])}"
        for r in records
    ]
    return ToolResult(
        text="\n".join(lines), data={"query": json_record(query), "results": [json_record(r) for r in records]}
    )


def anomaly_scan(
    dataset: str,
    model: str,
    reference: str | None = None,
    method: str = "knn",
    k: int = 10,
    show_progress: bool = True,
) -> ToolResult:
    """Per-jet anomaly scores, a ranked list and the score distribution. ``knn``: mean cosine distance
    to the k nearest jets of ``reference`` (default: the dataset itself, each jet excluding itself);
    ``mpm``: masked-particle reconstruction likelihood of an MPM-pretrained backbone."""
    if method not in ("knn", "mpm"):
        raise UsageError(f"unknown method {method!r}; choose knn or mpm")
    folder = model_folder(model)
    if method == "knn":
        emb = embeddings_for(model, dataset, show_progress)
        if reference is None or reference == dataset:
            scores = knn_scores(emb.vectors, emb.vectors, k=k, exclude_self=True)
        else:
            scores = knn_scores(emb.vectors, embeddings_for(model, reference, show_progress).vectors, k=k)
        metadata = emb.metadata
    else:
        objective = load_objective(folder)
        if objective.name != "mpm":
            raise UsageError(
                f"method mpm needs an MPM-pretrained model; {model!r} was pretrained with {objective.name!r}"
            )
        cache = dataset_cache(dataset, objective.encoder.features)
        scores = mpm_scores(objective, cache, show_progress=show_progress)
        from jetfm.backbone.embed import jet_metadata

        metadata = jet_metadata(cache)
    out = workspace_root() / "anomaly" / f"{slug(dataset)}-{slug(model)}-{method}"
    paths = write_scores(out, scores, metadata, method)
    top = metadata.assign(score=scores).sort_values("score", ascending=False).head(5)
    lines = [f"Scored {len(scores)} jets of {dataset!r} with {method} ({model}); most anomalous:"]
    lines += [
        f"  jet {i}: score {r.score:.4g}, mass {r.mass:.0f} GeV, {label_name(r.label)}" for i, r in top.iterrows()
    ]
    return ToolResult(
        text="\n".join(lines),
        data={"scores": str(paths["scores"]), "ranked": str(paths["ranked"]), "n_jets": int(len(scores))},
        plots=[str(paths["plot"])],
    )


def label_name(label: int) -> str:
    return PROCESSES[int(label)] if 0 <= int(label) < len(PROCESSES) else "unlabelled"


def json_record(record: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready values (numpy scalars -> Python, categoricals -> str)."""
    out = {}
    for key, value in record.items():
        if isinstance(value, np.generic):
            value = value.item()
        elif not isinstance(value, (int, float, str, bool, type(None))):
            value = str(value)
        out[key] = value
    return out
