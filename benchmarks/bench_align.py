"""Text -> jet search and jet-text alignment on held-out jets, held-out queries and held-out wordings.

    python benchmarks/bench_align.py --embeddings EMB --aligner ALIGNER [--limit N]

EMB is an embedding set (backbone.embed) of a generated dataset of all ten classes that the aligner
was *not* trained on (seed >= 9000), made with the aligner's backbone; ALIGNER an aligner folder.

- The query benchmark (``tests/data/search_queries.jsonl``, written apart from the caption
  vocabulary and the parser's examples): half explicit conditions on observables and classes, half
  paraphrases with no class keyword and no condition. Each query has a hand-written relevance
  (classes and/or observable windows, prong counts, ratios); precision@10 is the relevant fraction
  of the 10 jets the search returns, over the whole set. Two searches are scored:
  ``embedding`` (retrieval.query.run_query: parsed conditions applied exactly, the aligner ranking
  what passes, as ``jetfm search`` does) and ``keyword`` (the baseline: the same parsed
  conditions, class keywords included, and no embedding: a random order of the jets that pass,
  scored by its expected precision, the relevant fraction of the passing jets).
- Controls: within one class (``filters`` to the class), do "the heaviest" / "the most
  constituents" queries rank the class's heavier / busier jets first (fraction of the top 10 above
  the class median; chance 0.5)? Do captions with numbers shuffled between jets score lower
  (cosine with the own jet, recall@10)? Recall@1/5/10 both ways among jets whose evaluation
  captions are no near-duplicates of each other (word-set Jaccard < ``DUPLICATE_JACCARD``).
- Zero-shot accuracy over the ten class labels, against a logistic-regression probe on the
  backbone embeddings (trained on the other half) and against the rule baseline (the class whose
  nominal mass and prong count of the classes table best fit the jet's soft-drop mass and
  N-subjettiness prongs; QCD for one prong).
- Describe-jet (jet -> text): how often the best description names the jet's class, its prong
  count and its soft-drop mass window, against the same rule baseline.
- Relevance (the unrelated-text check) of the queries and of sentences unrelated to physics.
- A second, blind query set (``tests/data/search_queries_fresh.jsonl``, 60 queries: a helper wrote
  it from the class list and the metadata schema alone, without reading the caption vocabulary,
  the parser, the first set or these results), scored the same way (``search_fresh``). Its
  paraphrases may state a prong count in words (a condition the parser applies) but no class word
  and no number.
- A third query set (``tests/data/search_queries_blind2.jsonl``, 60 queries, same split and rules),
  written by another helper from a prompt that gave only the class list, the observables' ranges
  and the relevance format (it read no file of the repository), scored the same way
  (``search_blind2``).

Results: benchmarks/results/align.json (``--out``) and align.png.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine_info  # noqa: E402
from jetfm.backbone.atomic import save_figure, write_json  # noqa: E402
from jetfm.backbone.data.classes import CLASSES, PROCESSES  # noqa: E402
from jetfm.backbone.embed import load_embeddings  # noqa: E402
from jetfm.retrieval.align import JetTextAligner, class_label_phrases, load_aligner  # noqa: E402
from jetfm.retrieval.captions import MASS_BIN, captions_for, jet_facts, prong_count  # noqa: E402
from jetfm.retrieval.constraints import parse_query  # noqa: E402
from jetfm.retrieval.index import JetFilter, JetIndex  # noqa: E402
from jetfm.retrieval.query import run_query  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
QUERIES = Path(__file__).resolve().parents[1] / "tests" / "data" / "search_queries.jsonl"
FRESH_QUERIES = QUERIES.with_name("search_queries_fresh.jsonl")
BLIND2_QUERIES = QUERIES.with_name("search_queries_blind2.jsonl")
KS = (1, 5, 10)
DUPLICATE_JACCARD = 0.5
UNRELATED = ("a recipe for chocolate cake", "the stock market fell sharply today", "my cat sleeps on the sofa")
# Within-class controls: (query, observable, +1 if the top should be above the class median, -1 below).
WITHIN_CLASS = (
    ("the heaviest {label} jets", "mass", 1),
    ("the lightest {label} jets", "mass", -1),
    ("{label} jets with the most constituents", "nparticles", 1),
    ("{label} jets with the fewest constituents", "nparticles", -1),
)
GOALS = {"explicit_min": 1.0, "paraphrase_mean": 0.9, "paraphrase_min": 0.6}


def load_queries(path: Path = QUERIES) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def relevant(metadata: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
    """Which jets a hand-written relevance spec accepts (judged without the parser)."""
    keep = np.ones(len(metadata), bool)
    derived = {
        "abs_eta": lambda m: np.abs(m["eta"].to_numpy(np.float64)),
        "sd_over_mass": lambda m: m["sdmass"].to_numpy(np.float64) / np.maximum(m["mass"].to_numpy(np.float64), 1e-9),
        "mass_over_pt": lambda m: m["mass"].to_numpy(np.float64) / np.maximum(m["pt"].to_numpy(np.float64), 1e-9),
    }
    for key, conditions in spec.items():
        if key == "classes":
            keep &= np.isin(metadata["label"].to_numpy(), [PROCESSES.index(c) for c in conditions])
        elif key == "prongs":
            counts = np.array([prong_count(a, b, c) for a, b, c in
                               metadata[["tau21", "tau32", "tau43"]].to_numpy(np.float64)])
            keep &= counts == conditions
        else:
            values = derived[key](metadata) if key in derived else metadata[key].to_numpy(np.float64)
            for op, *bounds in conditions:
                keep &= {"lt": values < bounds[0], "le": values <= bounds[0], "gt": values > bounds[0],
                         "ge": values >= bounds[0], "range": (values >= bounds[0]) & (values <= bounds[-1])}[op]
    return keep


def query_benchmark(
    aligner: JetTextAligner, index: JetIndex, queries: list[dict[str, Any]], plain: bool = False
) -> dict[str, Any]:
    """Precision@10 of each query, by the search and by the keyword baseline; ``plain`` ranks by
    similarity alone (the search before conditions were parsed)."""
    rows = []
    for q in queries:
        truth = relevant(index.metadata, q["relevant"])
        if plain:
            ids = aligner.search_text(q["query"], index, k=10).hits.ids
            n_passed = len(index)
        else:
            found = run_query(aligner, index, q["query"], k=10)
            ids, n_passed = found.hits.ids, found.n_passed
        parsed = parse_query(q["query"])
        baseline_filter = parsed.filter()
        passing = np.ones(len(truth), bool) if baseline_filter is None else baseline_filter.mask(index.metadata)
        rows.append({
            "query": q["query"], "kind": q["kind"], "before": q.get("before"),
            "read_as": parsed.describe(), "n_relevant": int(truth.sum()), "n_passed": n_passed,
            "embedding": float(truth[ids].mean()) if len(ids) else 0.0,
            "keyword": float(truth[passing].mean()) if passing.any() else 0.0,
            "chance": float(truth.mean()),
            "n_returned": len(ids),
            "returned": [PROCESSES[int(label)] for label in index.metadata["label"].to_numpy()[ids]],
        })
    # A query no jet of the sample meets is scored apart: right when nothing is returned as a match.
    empty = [r for r in rows if r["n_relevant"] == 0]
    out: dict[str, Any] = {"queries": rows, "no_relevant_jet": [
        {"query": r["query"], "returned_as_matches": r["n_returned"]} for r in empty]}
    for kind in ("explicit", "paraphrase"):
        chosen = [r for r in rows if r["kind"] == kind and r["n_relevant"] > 0]
        out[kind] = {method: {"mean": float(np.mean([r[method] for r in chosen])),
                              "min": float(np.min([r[method] for r in chosen]))}
                     for method in ("embedding", "keyword", "chance")} | {"n": len(chosen)}
    para, expl = out["paraphrase"], out["explicit"]
    out["goals"] = {
        "explicit precision@10 = 1.0 on every query": expl["embedding"]["min"] >= GOALS["explicit_min"],
        "paraphrase mean precision@10 >= 0.9": para["embedding"]["mean"] >= GOALS["paraphrase_mean"],
        "no paraphrase below 0.6": para["embedding"]["min"] >= GOALS["paraphrase_min"],
        "beats the keyword baseline on paraphrases": para["embedding"]["mean"] > para["keyword"]["mean"],
        "matches the keyword baseline on explicit queries": expl["embedding"]["mean"] >= expl["keyword"]["mean"],
        "nothing returned as a match where no jet is relevant": all(r["n_returned"] == 0 for r in empty),
    }
    return out


def within_class(aligner: JetTextAligner, index: JetIndex) -> dict[str, Any]:
    """Fraction of each class's 10 best jets on the right side of the class median (chance 0.5)."""
    labels = index.metadata["label"].to_numpy()
    per_query: dict[str, dict[str, float]] = {}
    for template, column, sign in WITHIN_CLASS:
        scores = {}
        for process in PROCESSES:
            own = labels == PROCESSES.index(process)
            if own.sum() < 20:
                continue
            values = index.metadata[column].to_numpy(np.float64)
            median = np.median(values[own])
            query = template.format(label=CLASSES[process].label)
            hits = aligner.search_text(query, index, k=10, filters=JetFilter(labels=[process])).hits
            scores[process] = float(np.mean(sign * (values[hits.ids] - median) > 0))
        per_query[template] = scores
    means = {t: float(np.mean(list(s.values()))) for t, s in per_query.items()}
    return {"per_query": per_query, "mean": means, "overall": float(np.mean(list(means.values()))), "chance": 0.5}


NUMBER = r"(?<![\d.])\d+(?![\d.])"  # a stated value (whole numbers; "R = 0.8" is wording)


def shuffle_numbers(captions: list[str], seed: int) -> tuple[list[str], np.ndarray]:
    """Each caption with the values of another caption of the same wording (same text once the
    values are blanked), so only the numbers are wrong; and which captions changed (those with a
    same-wording partner stating other values)."""
    rng = np.random.default_rng(seed)
    skeletons = [re.sub(NUMBER, "#", c) for c in captions]
    out, changed = list(captions), np.zeros(len(captions), bool)
    groups: dict[str, list[int]] = {}
    for i, skeleton in enumerate(skeletons):
        if "#" in skeleton:
            groups.setdefault(skeleton, []).append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        order = rng.permutation(members)
        for own, donor in zip(order, np.roll(order, -1)):  # a derangement within the group
            values = iter(re.findall(NUMBER, captions[donor]))
            out[own] = re.sub(NUMBER, lambda _, values=values: next(values), captions[own])
            changed[own] = out[own] != captions[own]
    return out, changed


def distinct_rows(captions: list[str], limit: float = DUPLICATE_JACCARD) -> list[int]:
    """Indices of captions, in order, none a near-duplicate (word-set Jaccard >= ``limit``) of an earlier kept one."""
    kept: list[int] = []
    words: list[set[str]] = []
    for i, caption in enumerate(captions):
        mine = set(caption.lower().replace(",", " ").split())
        if all(len(mine & w) / len(mine | w) < limit for w in words):
            kept.append(i)
            words.append(mine)
    return kept


def recall_at_k(jets: np.ndarray, texts: np.ndarray) -> dict[str, dict[str, float]]:
    """Recall@k both ways for paired rows of aligned jet and text vectors."""
    sims = jets @ texts.T
    own = np.diag(sims)
    text_rank = (own[:, None] < sims.T).sum(1)  # text -> jet: jets scoring above the captioned one
    jet_rank = (sims > own[:, None]).sum(1)  # jet -> text: captions scoring above the jet's own
    n = len(own)
    return {
        "text_to_jet": {f"R@{k}": float((text_rank < k).mean()) for k in KS},
        "jet_to_text": {f"R@{k}": float((jet_rank < k).mean()) for k in KS},
        "chance": {f"R@{k}": k / n for k in KS},
    }


def caption_controls(aligner: JetTextAligner, jets: np.ndarray, metadata: pd.DataFrame, n: int,
                     seed: int) -> dict[str, Any]:
    """Recall among ``n`` jets with distinct evaluation captions; the shuffled-number control on ``n`` jets."""
    jets, metadata = jets[:n], metadata.iloc[:n].reset_index(drop=True)
    captions = [c[0] for c in captions_for(jet_facts(metadata), 1, "eval", seed)]
    order = np.random.default_rng(seed).permutation(len(captions))
    keep = [int(order[i]) for i in distinct_rows([captions[j] for j in order])]
    own = [captions[i] for i in keep]
    vectors = jets[keep]
    # The shuffled-number control: all test jets' captions, so that same-wording partners exist.
    shuffled, changed = shuffle_numbers(captions, seed)
    real_all, shuffled_all = aligner.text_vectors(captions).vectors, aligner.text_vectors(shuffled).vectors
    moved = np.flatnonzero(changed)
    return {
        "n_jets": len(keep),
        "examples": own[:5],
        "recall": recall_at_k(vectors, aligner.text_vectors(own).vectors),
        "shuffled_numbers": {
            "n_captions": int(changed.sum()),
            "example": [captions[moved[0]], shuffled[moved[0]]] if moved.size else [],
            "own_cosine_real": float(np.mean(np.sum(jets[moved] * real_all[moved], 1))),
            "own_cosine_shuffled": float(np.mean(np.sum(jets[moved] * shuffled_all[moved], 1))),
            "recall_real": recall_at_k(jets[moved], real_all[moved])["text_to_jet"],
            "recall_shuffled": recall_at_k(jets[moved], shuffled_all[moved])["text_to_jet"],
        },
    }


def rule_class(metadata: pd.DataFrame) -> np.ndarray:
    """The rule baseline's class per jet: QCD for one prong, else the class of the table whose prong
    count matches (if any does) and whose nominal mass is nearest the soft-drop mass."""
    out = np.zeros(len(metadata), np.int64)
    for i, (t21, t32, t43, sd) in enumerate(metadata[["tau21", "tau32", "tau43", "sdmass"]].to_numpy(np.float64)):
        prongs = prong_count(t21, t32, t43)
        if prongs == 1:
            continue
        candidates = [p for p in PROCESSES if CLASSES[p].nominal_mass and CLASSES[p].prongs == prongs] or [
            p for p in PROCESSES if CLASSES[p].nominal_mass]
        out[i] = PROCESSES.index(min(candidates, key=lambda p: abs(CLASSES[p].nominal_mass - sd)))
    return out


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(train_x, train_y)
    return float((probe.predict(test_x) == test_y).mean())


def describe_benchmark(aligner: JetTextAligner, jets: np.ndarray, metadata: pd.DataFrame, n: int) -> dict[str, Any]:
    """Best description of each of ``n`` jets: right class, prong word and soft-drop mass window?"""
    rows = np.arange(min(n, len(jets)))
    hits = {"class": [], "prongs": [], "window": []}
    for i in rows:
        text = aligner.describe_jet(jets[i], k=1)[0][0]
        row = metadata.iloc[i]
        process = PROCESSES[int(row["label"])]
        hits["class"].append(CLASSES[process].names[0] in text.split(":")[0])
        word = re.search(r"(\w+)-pronged", text)
        hits["prongs"].append(bool(word) and ["one", "two", "three", "four"].index(word[1]) + 1 == prong_count(
            row["tau21"], row["tau32"], row["tau43"]))
        window = re.search(r"between (\d+) and (\d+) GeV", text)
        hits["window"].append(bool(window) and int(window[1]) <= max(row["sdmass"], 0) < int(window[2]))
    rule = rule_class(metadata.iloc[rows])
    return {
        "n_jets": len(rows),
        "embedding": {k: float(np.mean(v)) for k, v in hits.items()},
        "rule_baseline": {"class": float((rule == metadata["label"].to_numpy()[rows]).mean()),
                          "prongs": 1.0, "window": 1.0},
        "note": f"the rule reads prongs and the {MASS_BIN} GeV window straight off the observables",
    }


def run(embeddings_path: Path, aligner_path: Path, limit: int | None, recall_jets: int, seed: int,
        plain: bool = False) -> dict[str, Any]:
    embeddings = load_embeddings(embeddings_path)
    aligner = load_aligner(aligner_path)
    aligner.check_backbone(embeddings.model)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(len(embeddings))[:limit])
    raw = np.asarray(embeddings.vectors, np.float32)[rows]
    metadata = embeddings.metadata.iloc[rows].reset_index(drop=True)
    labels = metadata["label"].to_numpy()

    t0 = time.perf_counter()
    jets = aligner.jet_vectors(raw, metadata)
    index = JetIndex.build(jets, metadata, "flat", model=aligner.ref)
    queries = load_queries()
    search = query_benchmark(aligner, index, queries, plain)
    search_fresh = query_benchmark(aligner, index, load_queries(FRESH_QUERIES), plain)
    search_blind2 = query_benchmark(aligner, index, load_queries(BLIND2_QUERIES), plain)

    half = rng.permutation(len(rows))
    probe_rows, test_rows = np.sort(half[: len(half) // 2]), np.sort(half[len(half) // 2:])
    zero_shot = aligner.zero_shot(jets[test_rows], class_label_phrases())
    test_meta = metadata.iloc[test_rows].reset_index(drop=True)
    relevance = aligner.text_vectors([q["query"] for q in queries]).relevance
    return {
        "embeddings": str(embeddings_path),
        "aligner": str(aligner_path),
        "search_mode": "similarity alone (no parsed conditions)" if plain else "parsed conditions + similarity",
        "backbone": embeddings.model.describe(),
        "n_jets": len(rows),
        "per_class": {p: int((labels == i).sum()) for i, p in enumerate(PROCESSES)},
        "search": search,
        "search_fresh": search_fresh,
        "search_blind2": search_blind2,
        "within_class": within_class(aligner, index),
        "captions": caption_controls(aligner, jets[test_rows], test_meta, recall_jets, seed),
        "zero_shot": {
            "embedding": float((zero_shot.predictions == labels[test_rows]).mean()),
            "linear_probe": linear_probe(raw[probe_rows], labels[probe_rows], raw[test_rows], labels[test_rows]),
            "rule_baseline": float((rule_class(test_meta) == labels[test_rows]).mean()),
            "chance": 1 / len(PROCESSES),
        },
        "describe_jet": describe_benchmark(aligner, jets[test_rows], test_meta, 300),
        "relevance": {"unrelated": {q: float(r) for q, r in zip(UNRELATED, aligner.text_vectors(
                          list(UNRELATED)).relevance)},
                      "queries_min": float(relevance.min()), "threshold": aligner.config.low_relevance},
        "eval_seconds": time.perf_counter() - t0,
        "machine": machine_info(),
    }


def plot(result: dict[str, Any], path: Path, key: str = "search") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result[key]["queries"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    for ax, kind in zip(axes, ("explicit", "paraphrase")):
        chosen = [r for r in rows if r["kind"] == kind]
        x = np.arange(len(chosen))
        ax.bar(x - 0.2, [r["embedding"] for r in chosen], 0.4, label="embedding + parsed conditions")
        ax.bar(x + 0.2, [r["keyword"] for r in chosen], 0.4, label="keyword baseline (no embedding)")
        ax.axhline(GOALS["paraphrase_mean"] if kind == "paraphrase" else 1.0, color="k", ls="--", lw=0.8)
        ax.set_title(f"{kind} queries ({len(chosen)})")
        ax.set_xlabel("query")
        ax.set_ylim(0, 1.05)
    axes[0].set_ylabel("precision@10")
    axes[0].legend(frameon=False, loc="lower left")
    save_figure(fig, path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", type=Path, required=True, help="held-out embedding set (all ten classes)")
    parser.add_argument("--aligner", type=Path, required=True, help="aligner folder")
    parser.add_argument("--limit", type=int, default=None, help="use this many jets at random (default: all)")
    parser.add_argument("--recall-jets", type=int, default=1000, help="jets in the recall@k test (at most)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain", action="store_true", help="rank by similarity alone (the search before issue 12)")
    parser.add_argument("--out", type=Path, default=RESULTS / "align.json")
    args = parser.parse_args()
    result = run(args.embeddings, args.aligner, args.limit, args.recall_jets, args.seed, args.plain)
    write_json(args.out, result)
    plot(result, args.out.with_suffix(".png"))
    plot(result, args.out.with_name(args.out.stem + "_fresh.png"), "search_fresh")
    plot(result, args.out.with_name(args.out.stem + "_blind2.png"), "search_blind2")
    for key in ("search", "search_fresh", "search_blind2"):
        print(key, json.dumps({k: result[key][k] for k in ("explicit", "paraphrase", "goals")}, indent=2))
    print(json.dumps({k: result[k] for k in ("within_class", "zero_shot", "describe_jet")}, indent=2))
    print(json.dumps(result["captions"]["shuffled_numbers"], indent=2), result["captions"]["recall"])


if __name__ == "__main__":
    main()
