"""FAISS jet indexes: exact and approximate search, filters, persistence (mmap), add, on-disk shards,
and every bad input as a clear error that leaves the saved index alone."""

from __future__ import annotations

import faiss
import numpy as np
import pandas as pd
import pytest

from jetfm.backbone.embed import ModelRef, l2_normalised
from jetfm.retrieval.index import FLAT_MAX, HNSW_MAX, JetFilter, JetIndex, RetrievalError, choose_kind
from jetfm.retrieval.ondisk import build_shard, merge_shards, train_template

DIM = 32
MODEL = ModelRef("models/a", "a" * 64)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def clustered(n: int, seed: int = 0, centers: int = 40) -> np.ndarray:
    """Points around the same ``centers`` cluster centres whatever the ``seed``, so queries are like the data."""
    middle = np.random.default_rng(1234).standard_normal((centers, DIM))
    rng = np.random.default_rng(seed)
    return (middle[rng.integers(0, centers, n)] + 0.35 * rng.standard_normal((n, DIM))).astype(np.float32)


def metadata(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "file": pd.Categorical.from_codes(rng.integers(0, 2, n), categories=["a.root", "b.root"]),
            "entry": np.arange(n),
            "label": rng.integers(0, 5, n).astype(np.int8),
            "pt": rng.uniform(500, 1000, n).astype(np.float32),
            "mass": rng.uniform(0, 300, n).astype(np.float32),
        }
    )


def exact(vectors: np.ndarray, queries: np.ndarray, k: int, keep: np.ndarray | None = None) -> np.ndarray:
    sims = l2_normalised(queries) @ l2_normalised(vectors).T
    if keep is not None:
        sims[:, ~keep] = -np.inf
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def recall(hits, truth: np.ndarray) -> float:
    return float(np.mean([len(set(h.ids) & set(t)) / len(t) for h, t in zip(hits, truth)]))


def test_flat_search_is_exact_cosine():
    vectors, queries = clustered(2000), clustered(20, seed=1)
    index = JetIndex.build(vectors * 7.0, metadata(2000), kind="flat", model=MODEL)
    hits = index.search(queries, k=10)
    truth = exact(vectors, queries, 10)
    np.testing.assert_array_equal(np.stack([h.ids for h in hits]), truth)
    want = np.sort(l2_normalised(queries) @ l2_normalised(vectors).T, axis=1)[:, ::-1][:, :10]
    np.testing.assert_allclose(np.stack([h.similarity for h in hits]), want, atol=1e-5)
    assert hits[0].metadata["entry"].tolist() == hits[0].ids.tolist()
    assert hits[0].records()[0].keys() >= {"id", "similarity", "mass", "file"}


@pytest.mark.parametrize("kind", ["hnsw", "ivfflat", "ivfpq"])
def test_approximate_recall_is_high_on_clustered_data(kind):
    # PQ training is the slow part (and its 16-byte codes bound the recall), so it gets fewer jets
    n, floor = (4000, 0.6) if kind == "ivfpq" else (20_000, 0.95)
    vectors, queries = clustered(n), clustered(100, seed=1)
    index = JetIndex.build(vectors, kind=kind, ef_search=64, nprobe=16)
    assert recall(index.search(queries, k=10), exact(vectors, queries, 10)) >= floor


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfflat", "ivfpq"])
def test_a_filter_keeping_one_percent_still_returns_k(kind):
    n = 20_000
    vectors, queries, meta = clustered(n), clustered(10, seed=1), metadata(n)
    window = JetFilter(mass=(0.0, 3.0))  # 1% of a uniform 0..300 mass
    keep = window.mask(meta)
    assert 150 < keep.sum() < 250
    index = JetIndex.build(vectors, meta, kind=kind, ef_search=16, nprobe=4, pq_m=4)
    hits = index.search(queries, k=10, filters=window)
    assert all(len(h) == 10 and (h.metadata["mass"] <= 3.0).all() and keep[h.ids].all() for h in hits)
    if kind in ("flat", "hnsw"):
        assert recall(hits, exact(vectors, queries, 10, keep)) == 1.0


def test_filters_on_label_and_pt_and_fewer_passing_than_k():
    n = 500
    meta = metadata(n)
    index = JetIndex.build(clustered(n), meta, kind="flat")
    rule = JetFilter(labels=["top"], pt=(500.0, 520.0))
    passing = int(rule.mask(meta).sum())
    assert 0 < passing < 10
    hits = index.search(clustered(2, seed=3), k=10, filters=rule)
    assert [len(h) for h in hits] == [passing, passing]
    assert set(hits[0].metadata["label"]) == {1}
    with pytest.raises(RetrievalError, match="unknown label 'gluon'"):
        index.search(clustered(1), k=3, filters=JetFilter(labels=["gluon"]))
    with pytest.raises(RetrievalError, match="cannot filter on 'sdmass'"):
        index.search(clustered(1), k=3, filters=JetFilter(sdmass=(0, 1)))


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfflat", "ivfpq"])
def test_save_load_mmap_round_trip(tmp_path, kind):
    vectors, queries = clustered(3000), clustered(5, seed=1)
    index = JetIndex.build(vectors, metadata(3000), kind=kind, model=MODEL, nprobe=8)
    before = index.search(queries, k=5)
    index.save(tmp_path / "idx")
    loaded = JetIndex.load(tmp_path / "idx", mmap=True)
    assert loaded.mmapped and loaded.kind == kind and loaded.model == MODEL and loaded.params["nprobe"] == 8
    with open("/proc/self/maps") as maps:  # FAISS mapped the file rather than reading it
        assert str(tmp_path / "idx" / "index.faiss") in maps.read()
    after = loaded.search(queries, k=5)
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a.ids, b.ids)
        pd.testing.assert_frame_equal(a.metadata, b.metadata)
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]


def test_add_to_a_saved_index(tmp_path):
    first, second = clustered(1000), clustered(500, seed=2)
    JetIndex.build(first, metadata(1000), kind="hnsw", model=MODEL).save(tmp_path / "idx")
    index = JetIndex.load(tmp_path / "idx")
    extra = metadata(500, seed=1).assign(file=lambda m: pd.Categorical(["c.root"] * 500))
    index.add(second, extra, model=MODEL)
    assert len(index) == 1500 and not index.mmapped
    hits = index.search(second[:3], k=1)
    assert [h.ids[0] for h in hits] == [1000, 1001, 1002]
    index.save(tmp_path / "idx")
    again = JetIndex.load(tmp_path / "idx")
    assert len(again) == 1500 and set(again.metadata["file"].cat.categories) == {"a.root", "b.root", "c.root"}


def test_bad_queries_and_additions_are_clear_and_change_nothing(tmp_path):
    vectors = clustered(300)
    JetIndex.build(vectors, metadata(300), kind="flat", model=MODEL).save(tmp_path / "idx")
    saved = (tmp_path / "idx" / "index.faiss").read_bytes()
    index = JetIndex.load(tmp_path / "idx")
    other = ModelRef("models/b", "b" * 64)
    with pytest.raises(RetrievalError, match=r"model models/b .*holds embeddings of models/a"):
        index.search(vectors[:1], k=3, model=other)
    with pytest.raises(RetrievalError, match="16 dimensions but the index holds 32-dimensional embeddings of models/a"):
        index.search(np.ones((1, 16), np.float32), k=3)
    with pytest.raises(RetrievalError, match="k=301 but the index holds only 300 jets"):
        index.search(vectors[:1], k=301)
    with pytest.raises(RetrievalError, match="non-empty"):
        JetIndex.build(np.zeros((0, DIM), np.float32))
    with pytest.raises(RetrievalError, match="NaN"):
        index.search(np.full((1, DIM), np.nan, np.float32), k=3)
    with pytest.raises(RetrievalError, match="holds embeddings of models/a"):
        index.add(vectors[:5], metadata(5), model=other)
    with pytest.raises(RetrievalError, match="5 vectors but 4 metadata rows"):
        index.add(vectors[:5], metadata(4))
    with pytest.raises(RetrievalError, match="metadata columns"):
        index.add(vectors[:5], metadata(5).drop(columns="pt"))
    assert len(index) == 300 and len(index.metadata) == 300
    assert (tmp_path / "idx" / "index.faiss").read_bytes() == saved


def test_missing_or_corrupt_index_files(tmp_path):
    with pytest.raises(RetrievalError, match="no index folder"):
        JetIndex.load(tmp_path / "none")
    JetIndex.build(clustered(300), metadata(300), kind="hnsw").save(tmp_path / "idx")
    path = tmp_path / "idx" / "index.faiss"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RetrievalError, match="truncated or corrupt, rebuild"):
        JetIndex.load(tmp_path / "idx")
    path.write_bytes(b"\0" * len(data))
    with pytest.raises(RetrievalError, match="FAISS cannot read it"):
        JetIndex.load(tmp_path / "idx")
    path.unlink()
    with pytest.raises(RetrievalError, match="no index.faiss"):
        JetIndex.load(tmp_path / "idx")


def test_auto_kind_follows_the_size():
    assert choose_kind(1000) == "flat" and choose_kind(FLAT_MAX) == "hnsw" and choose_kind(HNSW_MAX + 1) == "ivfpq"
    assert JetIndex.build(clustered(100)).kind == "flat"
    with pytest.raises(RetrievalError, match="unknown index kind"):
        JetIndex.build(clustered(100), kind="lsh")


def test_shards_merged_on_disk_equal_an_in_memory_ivf(tmp_path):
    vectors, queries = clustered(20_000), clustered(50, seed=1)
    template = train_template(vectors[::4], tmp_path / "template.faiss", nlist=64)
    shards = [
        build_shard(template, part, first, tmp_path / f"shard{i}.faiss")
        for i, (first, part) in enumerate((s, vectors[s : s + 5000]) for s in range(0, 20_000, 5000))
    ]
    merge_shards(template, shards, tmp_path / "merged", metadata(20_000), MODEL, nprobe=8)
    merged = JetIndex.load(tmp_path / "merged")
    assert merged.ondisk and len(merged) == 20_000 and (tmp_path / "merged" / "lists.ivfdata").is_file()

    memory = faiss.read_index(str(template))
    memory.add(l2_normalised(vectors))
    sims, ids = memory.search(l2_normalised(queries), 10, params=faiss.SearchParametersIVF(nprobe=8))
    hits = merged.search(queries, k=10)
    np.testing.assert_array_equal(np.stack([h.ids for h in hits]), ids)
    np.testing.assert_allclose(np.stack([h.similarity for h in hits]), sims, rtol=1e-6)
    assert hits[0].metadata["entry"].tolist() == ids[0].tolist()
    with pytest.raises(RetrievalError, match="another shard and merge"):
        merged.add(vectors[:2], metadata(2))
