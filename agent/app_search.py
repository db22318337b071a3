"""The search tab's logic: jets found by a description in words shown as a gallery of jet images,
and the jets most similar to one of them. The searches are the registry's tools (search_text,
search_similar, build_index); images are tools.datasets.show_jet's, drawn once per jet."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from jetfm.backbone.data.readers import count_jets
from jetfm.tools.catalog import Catalog
from jetfm.tools.datasets import dataset_files, show_jet
from jetfm.tools.registry import ToolError
from jetfm.tools.run import run_tool
from jetfm.tools.search import label_name
from jetfm.tools.shipped import DEFAULT_MODEL

AUTO_INDEX = "auto"  # use the dataset's index with the default backbone, built on first use

Gallery = list[tuple[str, str]]


def dataset_names() -> list[str]:
    """Datasets in the catalog, newest first (the one a fresh search most likely means)."""
    return [a.name for a in reversed(Catalog().list("dataset"))]


def index_names(dataset: str | None) -> list[str]:
    """Similarity indexes built over ``dataset``."""
    return [a.name for a in Catalog().list("index") if dataset and a.meta.get("dataset") == dataset]


def caption(record: dict[str, Any]) -> str:
    return (
        f"#{record['id']} {label_name(record['label'])} · m {record['mass']:.0f} GeV · "
        f"pT {record['pt']:.0f} GeV · sim {record['similarity']:.3f}"
    )


def miss_caption(record: dict[str, Any]) -> str:
    """A nearest miss of a search: marked as one, with the conditions it breaks."""
    return f"MISS (breaks {'; '.join(record['breaks'])}) · {caption(record)}"


class JetImages:
    """Images of search hits, by (dataset, file, entry in file): show_jet draws each jet once."""

    def __init__(self) -> None:
        self._paths: dict[tuple[str, str, int], str] = {}
        # pyplot keeps global state: two sessions drawing at once could mix their figures.
        self._lock = threading.Lock()

    def gallery(self, dataset: str, records: list[dict[str, Any]], miss: bool = False) -> Gallery:
        offsets = self._file_offsets(dataset)
        items = []
        for record in records:
            key = (dataset, str(Path(record["file"]).resolve()), int(record["entry"]))
            path = self._paths.get(key)
            if path is None or not Path(path).exists():
                with self._lock:
                    # show_jet numbers jets across the dataset's files in order; hits name file + entry.
                    path = show_jet(dataset, offsets[key[1]] + key[2]).data["path"]
                self._paths[key] = path
            items.append((path, miss_caption(record) if miss else caption(record)))
        return items

    @staticmethod
    def _file_offsets(dataset: str) -> dict[str, int]:
        offsets, total = {}, 0
        for file in dataset_files(dataset):
            offsets[str(file.resolve())] = total
            total += count_jets(file)
        return offsets


def _similarity_index(dataset: str, index: str | None) -> tuple[str, str]:
    """The index to search (building the default one if the dataset has none) and a note saying so."""
    if index and index != AUTO_INDEX:
        return index, ""
    existing = index_names(dataset)
    if existing:
        return existing[0], ""
    built = run_tool("build_index", {"dataset": dataset, "model": DEFAULT_MODEL}, wait=True)
    return built.data["name"], built.text


class SearchTab:
    """The handlers of the search tab; the state they share is only the image cache."""

    def __init__(self) -> None:
        self.images = JetImages()

    def search_text(self, query: str, k: float, dataset: str | None) -> tuple[Gallery, dict[str, Any], str]:
        """Gallery of the k best matches, the hits (for a click on one), and a status line that says how
        the query's conditions were read and how many jets met them."""
        if not (query or "").strip():
            return [], {}, "Type a description, e.g. *three-prong jets with mass near 175 GeV*."
        try:
            found = run_tool("search_text", {"query": query, "k": int(k), "dataset": dataset or None})
            records, misses = found.data["results"], found.data["misses"]
            hits = {"dataset": found.data["dataset"], "records": records or misses}
            if records:
                gallery = self.images.gallery(hits["dataset"], records)
            else:  # nothing met the conditions: the nearest misses, each captioned with what it breaks
                gallery = self.images.gallery(hits["dataset"], misses, miss=True)
        except (ToolError, LookupError, ValueError, OSError) as err:
            return [], {}, f"**Could not search**: {err}"
        summary = found.data["summary"]
        if records:
            status = f"{len(gallery)} jets of `{hits['dataset']}` matching *{query.strip()}* ({summary}). " \
                     "Click a jet for its look-alikes."
        else:
            status = f"**No jet of `{hits['dataset']}` meets the conditions** of *{query.strip()}* ({summary}). " \
                     f"Shown: the {len(gallery)} nearest misses, which break them."
        status += "".join(f" ({note.capitalize()}.)" for note in found.data["notes"])
        if found.data["low_similarity"]:
            status += " (The query looks unrelated to jet physics: these are weak matches.)"
        return gallery, hits, status

    def similar(self, entry: float | None, k: float, dataset: str | None, index: str | None) -> tuple[Gallery, str]:
        """Gallery of the jets most similar to jet ``entry`` of ``dataset``, and a status line."""
        if entry is None or not dataset:
            return [], "Pick a dataset and a jet number (or click a jet in the results above)."
        try:
            index, built = _similarity_index(dataset, index)
            args = {"dataset": dataset, "index": index, "entry": int(entry), "k": int(k)}
            found = run_tool("search_similar", args)
            index_dataset = Catalog().get(index, kind="index").meta.get("dataset", dataset)
            gallery = self.images.gallery(index_dataset, found.data["results"])
        except (ToolError, LookupError, ValueError, OSError) as err:
            return [], f"**Could not search**: {err}"
        query = found.data["query"]
        status = (
            f"{len(gallery)} jets in `{index}` most similar to jet #{int(entry)} of `{dataset}` "
            f"({label_name(query.get('label', -1))}, mass {query['mass']:.0f} GeV)."
        )
        return gallery, f"{built}\n\n{status}" if built else status

    def similar_to_hit(
        self, hits: dict[str, Any], position: int, k: float, index: str | None
    ) -> tuple[float | None, Gallery, str]:
        """A click on result ``position`` of the text search: that jet's number and look-alikes."""
        records = hits.get("records") or []
        if not 0 <= position < len(records):
            return None, [], "Run a search first, then click one of its jets."
        entry = records[position]["id"]
        return (entry, *self.similar(entry, k, hits["dataset"], index))
