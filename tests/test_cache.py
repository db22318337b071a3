"""Tensor cache: round trip, hit, rebuild on source/config change, atomic writes, torch wrapper."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_readers import make_jets, write_root

from jetfm.backbone.data import cache as cache_module
from jetfm.backbone.data.cache import JetCache, build_cache, cache_is_fresh, open_cache
from jetfm.backbone.data.errors import DataError
from jetfm.backbone.data.features import FeatureConfig, make_tensors
from jetfm.backbone.data.readers import open_jets

CFG = FeatureConfig(max_particles=8)


@pytest.fixture
def source(tmp_path):
    jets = make_jets(30, counts=np.r_[np.arange(1, 15), 0, np.arange(1, 16)])
    return write_root(tmp_path / "jets.root", jets)


def test_cache_round_trip_matches_make_tensors(tmp_path, source):
    cache = open_cache(source, tmp_path / "cache", CFG, step_size=7)
    want = make_tensors(open_jets(source), CFG)
    assert len(cache) == 29 == len(want)  # the empty jet is dropped ...
    assert cache.report["dropped_empty"] == 1  # ... and the drop is on record
    for name, values in want.arrays().items():
        np.testing.assert_array_equal(getattr(cache[:], name), values)
    np.testing.assert_array_equal(np.load(tmp_path / "cache" / "features.npy").shape, (29, 8, 7))
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["feature_config"] == CFG.to_dict() and manifest["source"][0]["path"] == str(source)


def test_cache_hit_does_not_rebuild(tmp_path, source, monkeypatch):
    open_cache(source, tmp_path / "cache", CFG)
    monkeypatch.setattr(cache_module, "build_cache", lambda *a, **k: pytest.fail("rebuilt a fresh cache"))
    assert len(open_cache(source, tmp_path / "cache", CFG)) == 29


def test_cache_rebuilds_when_config_or_source_changes(tmp_path, source):
    cache_dir = tmp_path / "cache"
    open_cache(source, cache_dir, CFG)
    assert not cache_is_fresh(source, cache_dir, FeatureConfig(max_particles=4))
    assert open_cache(source, cache_dir, FeatureConfig(max_particles=4))[:].features.shape[1] == 4
    write_root(source, make_jets(12, seed=5))
    os.utime(source, ns=(1, 1))  # a new mtime even on coarse-clock filesystems
    assert not cache_is_fresh(source, cache_dir, FeatureConfig(max_particles=4))
    assert len(open_cache(source, cache_dir, FeatureConfig(max_particles=4))) == 12
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_failed_build_leaves_the_old_cache_alone(tmp_path, source):
    cache_dir = tmp_path / "cache"
    open_cache(source, cache_dir, CFG)
    source.write_bytes(source.read_bytes()[:2000])
    with pytest.raises(DataError, match="jets.root"):
        build_cache(source, cache_dir, CFG)
    assert len(JetCache(cache_dir)) == 29
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_all_jets_dropped_is_a_data_error(tmp_path):
    path = write_root(tmp_path / "empty.root", make_jets(3, counts=[0, 0, 0]))
    with pytest.raises(DataError, match="no jets to cache.*3 with no constituents"):
        build_cache(path, tmp_path / "cache", CFG)


def test_batches_cover_every_jet_once(tmp_path, source):
    cache = open_cache(source, tmp_path / "cache", CFG)
    ordered = list(cache.batches(8))
    assert [len(b) for b in ordered] == [8, 8, 8, 5]
    assert [len(b) for b in cache.batches(8, drop_last=True)] == [8, 8, 8]
    picked = np.concatenate([b.nparticles for b in cache.batches(8, shuffle=True, seed=1)])
    np.testing.assert_array_equal(np.sort(picked), np.sort(cache[:].nparticles))


def test_not_a_cache_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not a jet cache"):
        JetCache(tmp_path)


def test_torch_dataset_and_loader(tmp_path, source):
    torch = pytest.importorskip("torch")
    from jetfm.backbone.data.cache import JetTorchDataset

    dataset = JetTorchDataset(open_cache(source, tmp_path / "cache", CFG))
    one = dataset[3]
    assert one["features"].shape == (8, 7) and one["labels"].dtype == torch.int64
    batches = list(dataset.loader(batch_size=10))
    assert [b["features"].shape[0] for b in batches] == [10, 10, 9]
    assert batches[0]["mask"].dtype == torch.bool
    np.testing.assert_array_equal(batches[1]["labels"].numpy(), dataset.cache[10:20].labels)
    assert bool((batches[0]["mask"].sum(1) >= 1).all())


def test_cache_records_source_file_and_entry_of_each_jet(tmp_path, source):
    second = write_root(tmp_path / "more.root", make_jets(4, seed=9))
    cache = open_cache([source, second], tmp_path / "cache", CFG, step_size=7)
    jets = cache[:]
    assert cache.files == [str(source), str(second)]
    np.testing.assert_array_equal(jets.file_index, [0] * 29 + [1] * 4)
    # entry 14 of the first file is the empty jet, dropped: rows after it are one behind their entry
    np.testing.assert_array_equal(jets.entry, [*range(14), *range(15, 30), *range(4)])
    assert jets.entry.dtype == np.int64 and jets.file_index.dtype == np.int32


def test_cache_of_an_older_format_asks_for_a_rebuild(tmp_path, source):
    cache_dir = tmp_path / "cache"
    open_cache(source, cache_dir, CFG)
    manifest = json.loads((cache_dir / "manifest.json").read_text())
    (cache_dir / "manifest.json").write_text(json.dumps({**manifest, "version": 1}))
    with pytest.raises(DataError, match="rebuild"):
        JetCache(cache_dir)
    assert len(open_cache(source, cache_dir, CFG)) == 29


def _file_pages_mib() -> float | None:
    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.exists() else []
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("RssFile:")), None)


def test_reading_batches_does_not_keep_the_cache_resident(tmp_path, monkeypatch):
    """A long run reads every jet of a large cache many times; its mapped pages must not pile up in
    the process's resident memory."""
    if _file_pages_mib() is None:
        pytest.skip("needs /proc/self/status")
    source = write_root(tmp_path / "many.root", make_jets(3000, counts=np.full(3000, 60)))
    cache = open_cache(source, tmp_path / "cache", FeatureConfig(max_particles=128))  # ~17 MiB of tensors
    monkeypatch.setattr(JetCache, "release_every", 1 << 20, raising=False)
    before = _file_pages_mib()
    order = np.random.default_rng(0).permutation(len(cache))
    for start in range(0, len(cache), 100):
        batch = cache.batch(np.sort(order[start : start + 100]))
    assert _file_pages_mib() - before < 6  # MiB: without the release, all ~17 MiB stay mapped
    assert batch["features"].shape == (100, 128, 7) and batch["features"].flags.writeable
