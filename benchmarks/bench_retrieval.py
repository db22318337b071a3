"""Retrieval benchmark: recall@10 of the approximate JetIndex kinds against exact search, queries/s
single-threaded (one query per call, one FAISS thread) and batched (all queries in one call, all
threads), build time and memory (index size on disk, RSS growth while building).

    python benchmarks/bench_retrieval.py                          # 100k vectors
    python benchmarks/bench_retrieval.py --sizes 100000 1000000
    python benchmarks/bench_retrieval.py --embeddings WORKSPACE/embeddings/NAME [NAME2 ...]
    python benchmarks/bench_retrieval.py --embeddings ... --real-only --sizes 100000

Vectors: with ``--embeddings`` (sets written by backbone.embed with one backbone, pooled), N
vectors are drawn from the real embeddings, each plus Gaussian noise of 0.3x the typical
nearest-neighbour distance, so a set of generated jets stands in for a million without repeating
points. With ``--real-only`` nothing is resampled: N distinct real embeddings are indexed and the
queries are other real embeddings of the pool, never indexed (N + queries <= the pool). Without it, a
synthetic stand-in with the shape of encoder outputs: a mixture of 200 Gaussian clusters in a
16-dimensional latent space, mapped linearly to ``--dim`` dimensions, plus isotropic noise (jet
embeddings are anisotropic and of low intrinsic dimension). Queries are fresh draws, not indexed.

For each kind the search setting (HNSW efSearch, IVF nprobe) is swept; the operating point is the
cheapest setting with recall@10 >= 0.95. Results go to benchmarks/results/retrieval.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine_info  # noqa: E402
from jetfm.backbone.atomic import write_json  # noqa: E402
from jetfm.backbone.embed import l2_normalised, load_embeddings  # noqa: E402
from jetfm.retrieval.index import JetIndex  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "retrieval.json"
K = 10
TARGET_QPS = 1000
TARGET_RECALL = 0.95
SWEEPS = {"hnsw": [16, 32, 64, 128, 256], "ivfflat": [8, 16, 32, 64, 128], "ivfpq": [8, 16, 32, 64, 128]}


def synthetic(n: int, dim: int, seed: int) -> np.ndarray:
    """Mixture of 200 clusters in a 16-d latent space, mapped linearly to ``dim``, plus noise."""
    structure = np.random.default_rng(12345)  # the same distribution for data and queries
    centres = 3.0 * structure.standard_normal((200, 16))
    widths = structure.uniform(0.3, 1.2, 200)
    mapping = structure.standard_normal((16, dim)) / 4.0
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 200_000):  # bounded temporaries
        m = min(200_000, n - start)
        pick = rng.integers(0, 200, m)
        latent = centres[pick] + widths[pick, None] * rng.standard_normal((m, 16))
        out[start : start + m] = latent @ mapping + 0.15 * rng.standard_normal((m, dim))
    return out


def pooled(paths: list[Path]) -> np.ndarray:
    """The vectors of several embedding sets, which must come from one backbone."""
    sets = [load_embeddings(p) for p in paths]
    models = {s.model.fingerprint for s in sets if s.model is not None}
    if len(models) > 1:
        raise SystemExit(f"--embeddings mixes backbones ({', '.join(str(p) for p in paths)}); pass sets of one model")
    return np.concatenate([np.asarray(s.vectors, np.float32) for s in sets])


def augmented(base: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` draws from real embeddings ``base``, each plus noise of 0.3x the nearest-neighbour distance."""
    unit = l2_normalised(base)
    flat = faiss.IndexFlatIP(unit.shape[1])
    flat.add(unit)
    sims, _ = flat.search(unit[: min(2000, len(unit))], 2)
    nn_distance = float(np.median(np.sqrt(np.maximum(2 - 2 * sims[:, 1], 0))))
    rng = np.random.default_rng(seed)
    noise = 0.3 * nn_distance / np.sqrt(unit.shape[1])
    return unit[rng.integers(0, len(unit), n)] + noise * rng.standard_normal((n, unit.shape[1])).astype(np.float32)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(l2_normalised(vectors))
    return flat.search(l2_normalised(queries), K)[1]


def recall_at_k(found: list[np.ndarray], truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(f, t)) / K for f, t in zip(found, truth)]))


def measure(index: JetIndex, queries: np.ndarray, truth: np.ndarray, setting: dict[str, int]) -> dict[str, float]:
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    single = queries[:300]
    t0 = time.perf_counter()
    for q in single:
        index.search(q[None], K, **setting)
    single_qps = len(single) / (time.perf_counter() - t0)
    faiss.omp_set_num_threads(threads)
    t0 = time.perf_counter()
    hits = index.search(queries, K, **setting)
    batched_qps = len(queries) / (time.perf_counter() - t0)
    found = [h.ids for h in hits]
    return {
        **setting,
        "recall_at_10": round(recall_at_k(found, truth), 4),
        "qps_single_thread": round(single_qps),
        "qps_batched": round(batched_qps),
    }


def bench_kind(kind: str, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    rss0 = rss_mb()
    t0 = time.perf_counter()
    index = JetIndex.build(vectors, kind=kind)
    build_s = time.perf_counter() - t0
    rss_growth = rss_mb() - rss0
    folder = Path(tempfile.mkdtemp(prefix="jetfm-bench-"))
    try:
        index.save(folder / "idx")
        disk_mb = (folder / "idx" / "index.faiss").stat().st_size / 2**20
    finally:
        shutil.rmtree(folder)
    knob = "ef_search" if kind == "hnsw" else "nprobe"
    sweep = (
        [measure(index, queries, truth, {knob: v}) for v in SWEEPS.get(kind, [None])]
        if kind != "flat"
        else [measure(index, queries, truth, {})]
    )
    good = [row for row in sweep if row["recall_at_10"] >= TARGET_RECALL]
    best = max(good, key=lambda r: r["qps_single_thread"]) if good else max(sweep, key=lambda r: r["recall_at_10"])
    row = {
        "kind": kind,
        "build_s": round(build_s, 1),
        "rss_growth_mb": round(rss_growth),
        "disk_mb": round(disk_mb, 1),
        "sweep": sweep,
        "operating_point": best,
        # the goal: recall@10 >= 0.95 at >= 1,000 single-threaded queries/s
        "meets_target": bool(good) and best["qps_single_thread"] >= TARGET_QPS,
    }
    print(json.dumps({k: v for k, v in row.items() if k != "sweep"}), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivfflat", "ivfpq"])
    parser.add_argument("--embeddings", type=Path, nargs="+",
                        help="embedding sets of one backbone, pooled, to draw realistic vectors from")
    parser.add_argument("--real-only", action="store_true",
                        help="index distinct real embeddings and query with held-out real ones (no resampling)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    base = None if args.embeddings is None else pooled(args.embeddings)
    if args.real_only and base is None:
        parser.error("--real-only needs --embeddings")
    if args.real_only and max(args.sizes) + args.queries > len(base):
        parser.error(f"--real-only: the pool holds {len(base)} embeddings, fewer than the largest size "
                     f"{max(args.sizes)} plus {args.queries} queries; pass a smaller --sizes or more --embeddings")
    dim = args.dim if base is None else base.shape[1]
    names = None if base is None else ", ".join(p.name for p in args.embeddings)
    source = (
        f"synthetic: 200-cluster mixture in a 16-d latent space mapped to {dim}-d plus noise"
        if base is None
        else f"{len(base)} distinct real embeddings ({names}), indexed as they are, queries held out"
        if args.real_only
        else f"{len(base)} real embeddings ({names}), resampled with noise of 0.3x the NN distance"
    )
    results: dict[str, Any] = {"machine": machine_info(), "vectors": source, "dim": dim, "k": K, "runs": []}
    for n in args.sizes:
        if args.real_only:
            order = np.random.default_rng(0).permutation(len(base))
            vectors, queries = base[order[:n]], base[order[n : n + args.queries]]
        else:
            make = (lambda m, seed: synthetic(m, dim, seed)) if base is None else (
                lambda m, seed: augmented(base, m, seed))
            vectors, queries = make(n, 0), make(args.queries, 1)
        t0 = time.perf_counter()
        truth = exact_neighbours(vectors, queries)
        print(f"n={n}: exact ground truth in {time.perf_counter() - t0:.1f} s", flush=True)
        for kind in args.kinds:
            results["runs"].append({"n": n, **bench_kind(kind, vectors, queries, truth)})
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
