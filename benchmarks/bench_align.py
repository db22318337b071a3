"""Jet-text alignment benchmark on held-out jets and held-out (evaluation-only) phrasings.

    python benchmarks/bench_align.py --embeddings EMB --aligner ALIGNER [--limit N]

EMB is an embedding set (backbone.embed) of a generated dataset of all five processes that the
aligner was *not* trained on, made with the aligner's backbone; ALIGNER an aligner folder. The jets
are split in half at random: the first half trains the linear probe, the second half is the test
set of everything else.

- recall@1/5/10, text -> jet and jet -> text, among ``--recall-jets`` test jets, each with one
  caption from the evaluation-only templates. Text -> jet: the captioned jet is in the top k.
  Jet -> text: the jet's caption (or an identical sentence) is among the top k captions.
- class-query precision@10: for every query naming a class (retrieval.captions.class_queries),
  the fraction of the 10 best test jets of that class; per class, averaged over its phrasings.
- mass-window precision@10: for queries naming a soft-drop mass window, the fraction of the 10 best
  test jets whose soft-drop mass lies in it, beside the fraction of all test jets in it (chance).
- zero-shot accuracy over the five class labels against a logistic-regression probe on the same
  backbone embeddings (standardised), trained on the other half.
- relevance (the unrelated-text check) of the class queries and of sentences unrelated to physics.

Results: benchmarks/results/align.json and align.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backbone.atomic import save_figure, write_json  # noqa: E402
from backbone.data.schema import PROCESSES  # noqa: E402
from backbone.embed import load_embeddings  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from retrieval.align import JetTextAligner, class_label_phrases, load_aligner  # noqa: E402
from retrieval.captions import captions_for, class_queries, jet_facts, mass_window_queries  # noqa: E402
from retrieval.index import JetIndex  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
KS = (1, 5, 10)
UNRELATED = ("a recipe for chocolate cake", "the stock market fell sharply today", "my cat sleeps on the sofa")


def recall_at_k(jets: np.ndarray, texts: np.ndarray, captions: list[str]) -> dict[str, dict[str, float]]:
    """Recall@k both ways for paired rows of aligned jet and text vectors."""
    sims = jets @ texts.T
    n = len(captions)
    own = np.diag(sims)
    # Text -> jet: rank of the captioned jet among all jets for that caption (ties counted against).
    text_rank = (own[:, None] < sims.T).sum(1)
    # Jet -> text: best rank of any caption with the jet's own sentence.
    codes = np.unique(np.array(captions), return_inverse=True)[1]
    same_text = codes[:, None] == codes[None, :]
    best_own = np.where(same_text, sims, -np.inf).max(1)
    jet_rank = (np.where(same_text, -np.inf, sims) > best_own[:, None]).sum(1)
    return {
        "text_to_jet": {f"R@{k}": float((text_rank < k).mean()) for k in KS},
        "jet_to_text": {f"R@{k}": float((jet_rank < k).mean()) for k in KS},
        "chance": {f"R@{k}": k / n for k in KS},
    }


def class_precision(aligner: JetTextAligner, index: JetIndex, labels: np.ndarray) -> dict[str, Any]:
    per_class, per_query = {}, {}
    for process, queries in class_queries().items():
        values = []
        for query in queries:
            hits = aligner.search_text(query, index, k=10).hits
            values.append(float((labels[hits.ids] == PROCESSES.index(process)).mean()))
            per_query[query] = values[-1]
        per_class[process] = float(np.mean(values))
    return {"per_class": per_class, "min": min(per_class.values()), "per_query": per_query}


def mass_precision(aligner: JetTextAligner, index: JetIndex, sdmass: np.ndarray) -> dict[str, Any]:
    rows = []
    for query, (lo, hi) in mass_window_queries():
        hits = aligner.search_text(query, index, k=10).hits
        inside = (sdmass >= lo) & (sdmass <= hi)
        rows.append({"query": query, "window": [lo, hi], "precision@10": float(inside[hits.ids].mean()),
                     "chance": float(inside.mean())})
    return {"mean": float(np.mean([r["precision@10"] for r in rows])), "queries": rows}


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> dict[str, Any]:
    """Accuracy of the probe, and the precision@10 of its 10 most confident jets per class: what the
    backbone allows a class query to reach."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(train_x, train_y)
    probs = probe.predict_proba(test_x)
    top = {
        PROCESSES[c]: float((test_y[np.argsort(-probs[:, i])[:10]] == c).mean()) for i, c in enumerate(probe.classes_)
    }
    return {"accuracy": float((probs.argmax(1) == np.searchsorted(probe.classes_, test_y)).mean()),
            "precision@10": top}


def run(embeddings_path: Path, aligner_path: Path, limit: int | None, recall_jets: int, seed: int) -> dict[str, Any]:
    embeddings = load_embeddings(embeddings_path)
    aligner = load_aligner(aligner_path)
    aligner.check_backbone(embeddings.model)
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(embeddings))[:limit]
    half = len(rows) // 2
    probe_rows, test_rows = np.sort(rows[:half]), np.sort(rows[half:])
    raw = np.asarray(embeddings.vectors, np.float32)
    labels = embeddings.metadata["label"].to_numpy()
    metadata = embeddings.metadata.iloc[test_rows].reset_index(drop=True)

    t0 = time.perf_counter()
    jets = aligner.jet_vectors(raw[test_rows])
    index = JetIndex.build(jets, metadata, "flat", model=aligner.ref)
    test_labels = labels[test_rows]

    pick = np.sort(rng.choice(len(test_rows), min(recall_jets, len(test_rows)), replace=False))
    captions = [c[0] for c in captions_for(jet_facts(metadata.iloc[pick]), 1, "eval", seed)]
    recall = recall_at_k(jets[pick], aligner.text_vectors(captions).vectors, captions)

    zero_shot = aligner.zero_shot(jets, class_label_phrases())
    relevance = {q: float(r) for q, r in zip(UNRELATED, aligner.text_vectors(list(UNRELATED)).relevance)}
    class_relevance = aligner.text_vectors([q for qs in class_queries().values() for q in qs]).relevance
    return {
        "embeddings": str(embeddings_path),
        "aligner": str(aligner_path),
        "backbone": embeddings.model.describe(),
        "n_test_jets": len(test_rows),
        "n_probe_jets": len(probe_rows),
        "n_recall_jets": len(pick),
        "recall": recall,
        "class_query_precision@10": class_precision(aligner, index, test_labels),
        "mass_window_precision@10": mass_precision(aligner, index, metadata["sdmass"].to_numpy()),
        "zero_shot_accuracy": float((zero_shot.predictions == test_labels).mean()),
        "linear_probe": linear_probe(raw[probe_rows], labels[probe_rows], raw[test_rows], test_labels),
        "relevance": {"unrelated": relevance, "class_queries_min": float(class_relevance.min()),
                      "threshold": aligner.config.low_relevance},
        "eval_seconds": time.perf_counter() - t0,
        "machine": machine_info(),
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    per_class = result["class_query_precision@10"]["per_class"]
    bars = [*per_class.values(), result["mass_window_precision@10"]["mean"]]
    left.bar([*per_class, "mass\nwindow"], bars, color=["C0"] * len(per_class) + ["C1"])
    left.axhline(0.9, color="k", ls="--", lw=0.8, label="goal (classes)")
    left.set_ylim(0, 1.05)
    left.set_ylabel("precision@10 of text queries")
    left.set_title(f"zero-shot {result['zero_shot_accuracy']:.3f} vs probe {result['linear_probe']['accuracy']:.3f}")
    left.legend(frameon=False)
    recall = result["recall"]
    for key, style in (("text_to_jet", "o-"), ("jet_to_text", "s-"), ("chance", "k:")):
        right.plot(KS, [recall[key][f"R@{k}"] for k in KS], style, label=key.replace("_", " "))
    right.set_xlabel("k")
    right.set_ylabel(f"recall@k among {result['n_recall_jets']} held-out jets")
    right.set_xticks(KS)
    right.legend(frameon=False)
    save_figure(fig, path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", type=Path, required=True, help="held-out embedding set (all five processes)")
    parser.add_argument("--aligner", type=Path, required=True, help="aligner folder")
    parser.add_argument("--limit", type=int, default=None, help="use this many jets at random (default: all)")
    parser.add_argument("--recall-jets", type=int, default=1000, help="jets in the recall@k test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "align.json")
    args = parser.parse_args()
    result = run(args.embeddings, args.aligner, args.limit, args.recall_jets, args.seed)
    write_json(args.out, result)
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps({k: result[k] for k in ("recall", "zero_shot_accuracy", "linear_probe")}, indent=2))
    print("class-query precision@10:", result["class_query_precision@10"]["per_class"])
    print("mass-window precision@10:", result["mass_window_precision@10"]["mean"])


if __name__ == "__main__":
    main()
