"""Dataset embedding: output files and metadata, resume after a kill, model fingerprints, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_readers import make_jets, write_root

from jetfm.backbone.data.cache import open_cache
from jetfm.backbone.data.features import FeatureConfig
from jetfm.backbone.embed import (
    METADATA_COLUMNS,
    EmbeddingError,
    embed_dataset,
    l2_normalised,
    load_embeddings,
    load_encoder,
    weights_fingerprint,
)
from jetfm.backbone.registry import create_model

CFG = FeatureConfig(max_particles=8)


@pytest.fixture
def cache(tmp_path):
    counts = np.r_[np.arange(1, 12), 0, np.arange(1, 30)]  # entry 11 is empty and dropped
    path = write_root(tmp_path / "jets.root", make_jets(len(counts), counts=counts))
    return open_cache(path, tmp_path / "cache", CFG)


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    return create_model("tiny", max_particles=8).save_pretrained(tmp_path / "model")


def test_embeddings_match_the_encoder_and_carry_metadata(tmp_path, cache, model_dir):
    out = embed_dataset(model_dir, cache, tmp_path / "emb", batch_size=8, chunk_size=16, show_progress=False)
    encoder, ref = load_encoder(model_dir, "cpu")
    with torch.inference_mode():
        inputs = cache.batch(np.arange(len(cache)), ("features", "vectors", "mask"))
        want = encoder(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    np.testing.assert_allclose(out.vectors, want.numpy(), rtol=1e-5, atol=1e-5)
    assert isinstance(out.vectors, np.memmap) and out.vectors.dtype == np.float32 and out.dim == 48
    assert out.model == ref
    assert tuple(out.metadata.columns) == METADATA_COLUMNS
    assert out.metadata["entry"].tolist() == [*range(11), *range(12, 41)]
    assert set(out.metadata["file"]) == {str(cache.files[0])}
    np.testing.assert_array_equal(out.metadata["pt"], cache[:].pt)
    manifest = json.loads((tmp_path / "emb" / "manifest.json").read_text())
    assert manifest["model"]["name"] == str(model_dir.resolve()) and manifest["num_jets"] == 40
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_killed_run_resumes_after_the_last_chunk(tmp_path, cache, model_dir):
    whole = embed_dataset(model_dir, cache, tmp_path / "whole", batch_size=8, chunk_size=16, show_progress=False)
    encoder, _ = load_encoder(model_dir, "cpu")
    calls = {"n": 0}
    forward = encoder.forward

    def dies_in_second_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # batches of 8, chunks of 16: the first chunk is done, the second is not
            raise KeyboardInterrupt
        return forward(*args, **kwargs)

    encoder.forward = dies_in_second_chunk
    with pytest.raises(KeyboardInterrupt):
        embed_dataset(encoder, cache, tmp_path / "emb", batch_size=8, chunk_size=16, show_progress=False)
    assert not (tmp_path / "emb").exists()
    progress = json.loads((tmp_path / ".emb.partial" / "progress.json").read_text())
    assert progress["done"] == 16
    with pytest.raises(EmbeddingError, match="unfinished run"):
        load_embeddings(tmp_path / "emb")

    calls["n"] = 0
    encoder.forward = lambda *a, **k: (calls.__setitem__("n", calls["n"] + 1), forward(*a, **k))[1]
    resumed = embed_dataset(encoder, cache, tmp_path / "emb", batch_size=8, chunk_size=16, show_progress=False)
    assert calls["n"] == 3  # rows 16..39 only
    np.testing.assert_array_equal(resumed.vectors, whole.vectors)
    assert not (tmp_path / ".emb.partial").exists()


def test_changed_model_restarts_instead_of_mixing(tmp_path, cache, model_dir):
    encoder, _ = load_encoder(model_dir, "cpu")
    encoder.forward = lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        embed_dataset(encoder, cache, tmp_path / "emb", batch_size=8, chunk_size=8, show_progress=False)
    torch.manual_seed(1)
    other = create_model("tiny", max_particles=8)
    out = embed_dataset(other, cache, tmp_path / "emb", batch_size=8, chunk_size=8, show_progress=False)
    assert out.model.fingerprint == weights_fingerprint(other) != weights_fingerprint(encoder)


def test_fingerprint_is_the_same_for_folder_and_memory(model_dir):
    torch.manual_seed(0)
    in_memory = create_model("tiny", max_particles=8)
    _, ref = load_encoder(model_dir, "cpu")
    assert ref.fingerprint == weights_fingerprint(in_memory)
    with torch.no_grad():
        in_memory.jet_norm.bias.add_(1e-3)
    assert ref.fingerprint != weights_fingerprint(in_memory)


def test_bad_inputs_are_clear_errors(tmp_path, cache, model_dir):
    with pytest.raises(EmbeddingError, match="13 particle features.*has 7"):
        embed_dataset(create_model("tiny", input_dim=13, max_particles=8), cache, tmp_path / "emb", show_progress=False)
    with pytest.raises(EmbeddingError, match="no jets"):
        embed_dataset(model_dir, EmptyCache(tmp_path), tmp_path / "emb", show_progress=False)
    with pytest.raises(EmbeddingError, match="no embedding set"):
        load_embeddings(tmp_path / "nothing")
    assert not (tmp_path / "emb").exists()


class EmptyCache:
    def __init__(self, path):
        self.path = path

    def __len__(self) -> int:
        return 0


def test_l2_normalised_keeps_zero_rows():
    out = l2_normalised(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert out.dtype == np.float32
