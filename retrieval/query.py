"""A text query run against an aligned index: the query's stated conditions applied exactly, the
aligner's similarity ranking only the jets that pass, and, when none pass, the nearest misses.

This is the one implementation behind ``jetfm search``, the agent's ``search_text`` tool and the
app's Search tab (all three reach it through ``tools.text_search.search_text``), and the search the
alignment benchmark scores. The conditions come from :func:`retrieval.constraints.parse_query`; a
result never holds a jet that breaks one of them. When nothing passes, :attr:`QueryResult.misses`
holds the jets that break the conditions least (distance outside each window in units of the
observable's :data:`~retrieval.constraints.TOLERANCE`, plus one per wrong class), each with what it
breaks: they are shown as misses, never as matches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from jetfm.backbone.data.classes import PROCESSES
from jetfm.retrieval.constraints import OBSERVABLES, TOLERANCE, ParsedQuery, parse_query
from jetfm.retrieval.index import Hits, JetFilter, JetIndex, observable_values

NO_LABELS_NOTE = (
    "this dataset has no truth labels, so the class words cannot be checked: they only steer the ranking"
)


@dataclass
class QueryResult:
    """Jets that meet every stated condition, best match first, and how the query was read."""

    parsed: ParsedQuery
    hits: Hits
    n_jets: int
    n_passed: int
    relevance: float
    low_similarity: bool
    truncated: bool
    misses: Hits | None = None  # only when nothing passes: the nearest misses, least broken first
    miss_reasons: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    classes_applied: bool = True

    def summary(self) -> str:
        """How the query was read and how many jets passed, in one line."""
        conditions = self.parsed.describe() if self.classes_applied else [
            line for line in self.parsed.describe() if not line.startswith("class in")]
        if not conditions:
            return f"no conditions read from the query: all {self.n_jets} jets ranked by similarity"
        return f"read as: {'; '.join(conditions)}. {self.n_passed} of {self.n_jets} jets pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "conditions": self.parsed.to_dict(),
            "classes_applied": self.classes_applied,
            "n_jets": self.n_jets,
            "n_passed": self.n_passed,
            "notes": self.notes,
            "summary": self.summary(),
        }


def run_query(aligner: Any, index: JetIndex, query: str | ParsedQuery, k: int = 10) -> QueryResult:
    """The ``k`` best jets of ``index`` (built by the aligner's ``aligned_index``) among those that meet
    the query's conditions; ``aligner`` ranks with ``search_text``."""
    parsed = query if isinstance(query, ParsedQuery) else parse_query(query)
    metadata = index.metadata
    notes = list(parsed.notes)
    use_classes = parsed.classes is None or "label" not in metadata or bool((metadata["label"] >= 0).any())
    if not use_classes:
        notes.append(NO_LABELS_NOTE)
    notes += [f"the conditions contradict each other ({c}): no jet can pass" for c in parsed.contradictions()]
    if parsed.ignored:
        notes.append(f"not read as conditions (no observable or comparison next to them): "
                     f"{', '.join(repr(n) for n in parsed.ignored)}; they only steer the ranking")
    filters = parsed.filter(use_classes)
    passing = np.ones(len(metadata), bool) if filters is None else filters.mask(metadata)
    n_passed = int(passing.sum())
    k = min(k, len(index))
    found = aligner.search_text(parsed.text, index, k=k, filters=filters)
    result = QueryResult(parsed, found.hits, len(index), n_passed, found.relevance, found.low_similarity,
                         found.truncated, notes=notes, classes_applied=use_classes)
    if n_passed == 0:
        result.misses, result.miss_reasons = nearest_misses(aligner, index, parsed, k, use_classes)
    return result


def violations(metadata: pd.DataFrame, parsed: ParsedQuery, use_classes: bool = True) -> np.ndarray:
    """How far each jet is from meeting the conditions: 0 for jets that pass (see the module docstring)."""
    total = np.zeros(len(metadata))
    for observable, (lo, hi) in parsed.windows().items():
        values = observable_values(metadata, observable)
        outside = np.maximum(lo - values, 0) + np.maximum(values - hi, 0)
        if lo > hi:  # contradictory: every jet misses by the gap at least
            outside = np.maximum(outside, lo - hi)
        total += np.where(np.isnan(values), np.inf, outside / TOLERANCE[observable])
    classes = parsed.classes if use_classes else None
    if classes is not None:
        allowed = [PROCESSES.index(c) for c in classes]
        total += ~np.isin(metadata["label"].to_numpy(), allowed)
    return total


def nearest_misses(
    aligner: Any, index: JetIndex, parsed: ParsedQuery, k: int, use_classes: bool = True
) -> tuple[Hits, list[list[str]]]:
    """The ``k`` jets that break the conditions least, with what each breaks."""
    distance = violations(index.metadata, parsed, use_classes)
    candidates = np.flatnonzero(np.isfinite(distance))
    if candidates.size == 0:
        empty = index.metadata.iloc[[]]
        return Hits(np.empty(0, np.int64), np.empty(0, np.float32), empty), []
    rows = candidates[np.argsort(distance[candidates], kind="stable")[:k]]
    found = aligner.search_text(parsed.text, index, k=len(rows), filters=JetFilter(rows=rows.tolist())).hits
    order = np.lexsort((-found.similarity, distance[found.ids]))
    hits = Hits(found.ids[order], found.similarity[order], found.metadata.iloc[order].reset_index(drop=True))
    return hits, [broken(row, parsed, use_classes) for row in hits.metadata.to_dict("records")]


def broken(row: dict[str, Any], parsed: ParsedQuery, use_classes: bool = True) -> list[str]:
    """What one jet (a metadata row) breaks of the conditions, in words."""
    out = []
    for cut in parsed.cuts:
        value = float(observable_values(pd.DataFrame([row]), cut.observable)[0])
        if math.isnan(value) or not cut.allows(value):
            name, unit = OBSERVABLES[cut.observable]
            shown = "unknown" if math.isnan(value) else f"{value:.3g}{' ' + unit if unit else ''}"
            out.append(f"{name} {shown}, wanted {cut.describe()}")
    classes = parsed.classes if use_classes else None
    label = int(row.get("label", -1))
    if classes is not None and (label < 0 or PROCESSES[label] not in classes):
        out.append(f"class {PROCESSES[label] if label >= 0 else 'unknown'}, wanted {', '.join(classes) or 'none'}")
    return out
