"""Next-token pretraining: the causal encoder path, tokens, training, sampling, saving, comparison."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
from test_encoder import make_jets

from jetfm.backbone.data.features import JetTensors, make_tensors
from jetfm.backbone.data.schema import ALL_BRANCHES
from jetfm.backbone.encoder import pack_particles, particle_attention_bias
from jetfm.backbone.pretrain.base import load_objective
from jetfm.backbone.pretrain.ntp import NextTokenObjective, particle_inputs
from jetfm.backbone.pretrain.sampling import (
    compare_samples,
    jets_from_constituents,
    massless_constituents,
    plot_sample_comparison,
    sample_jets,
)
from jetfm.backbone.registry import create_model
from jetfm.backbone.train import TrainConfig, Trainer

TOLERANCE = dict(rtol=1e-5, atol=1e-5)
MAX_PARTICLES = 32


def synthetic_jets(n: int, seed: int = 0) -> ak.Array:
    """Schema jets of 4..15 massless particles: Dirichlet pT fractions, Gaussian (deta, dphi)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(4, 16, n)
    fractions = np.concatenate([np.sort(rng.dirichlet(np.ones(c)))[::-1] for c in counts])
    deta, dphi = rng.normal(0.0, 0.15, (2, counts.sum()))
    centroids = np.stack([np.log(fractions), deta, dphi], axis=1)
    return jets_from_constituents(*massless_constituents(centroids, 600.0, 0.0), counts)


def as_batch(source: JetTensors, n: int) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(values) for name, values in source.batch(np.arange(n)).items()}


@pytest.fixture(scope="module")
def jets() -> ak.Array:
    return synthetic_jets(200)


@pytest.fixture(scope="module")
def source(jets: ak.Array) -> JetTensors:
    return make_tensors(jets)


def new_objective(source: JetTensors) -> NextTokenObjective:
    torch.manual_seed(0)
    objective = NextTokenObjective(create_model("tiny", max_particles=MAX_PARTICLES), num_codes=16)
    objective.prepare(source, seed=0)
    return objective


@pytest.fixture(scope="module")
def trained(source: JetTensors, tmp_path_factory: pytest.TempPathFactory) -> tuple[NextTokenObjective, list]:
    objective = new_objective(source)
    config = TrainConfig(steps=30, batch_size=32, lr=3e-3, warmup_steps=3, checkpoint_every=100, device="cpu")
    history = Trainer(objective, source, config, tmp_path_factory.mktemp("ntp-run")).fit(show_progress=False)
    return objective.eval(), history


# -- the causal encoder path ----------------------------------------------------------------------
@pytest.mark.parametrize("j", [1, 4, 8])
def test_causal_outputs_do_not_see_later_particles(j: int) -> None:
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    features, vectors, mask = make_jets([6, 10, 9], slots=10)
    other_features, other_vectors, _ = make_jets([10, 10, 10], slots=10, seed=1)
    changed = torch.arange(10)[None, :, None] >= j
    real = mask[..., None]
    features_j = torch.where(changed, other_features, features) * real
    vectors_j = torch.where(changed, other_vectors, vectors) * real
    with torch.no_grad():
        before = model.forward_particles(features, vectors, mask, causal=True)
        after = model.forward_particles(features_j, vectors_j, mask, causal=True)
    torch.testing.assert_close(after[:, :j], before[:, :j], rtol=0, atol=0)
    assert (after[:, j] - before[:, j]).abs().amax() > 1e-2


def test_default_encoder_path_is_the_unmasked_one() -> None:
    """The default is exactly the particle-attention path built from its parts, with no causal mask."""
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    features, vectors, mask = make_jets([7, 10, 2], slots=10)
    with torch.no_grad():
        packed_features, packed_vectors, packed_mask, _ = pack_particles(features, vectors, mask)
        x = model.particle_embed(packed_features, packed_mask)
        bias = particle_attention_bias(model.pair_embed(packed_vectors, packed_mask), packed_mask)
        for block in model.blocks:
            x = block(x, bias)
        expected = model.particle_norm(x) * packed_mask[..., None]
        default = model.forward_particles(features, vectors, mask)
        causal = model.forward_particles(features, vectors, mask, causal=True)
    torch.testing.assert_close(default, expected, rtol=0, atol=0)
    torch.testing.assert_close(model.forward_particles(features, vectors, mask, causal=False), default)
    assert not torch.allclose(causal, default, **TOLERANCE)


# -- tokens and training --------------------------------------------------------------------------
def test_tokens_round_trip(source: JetTensors) -> None:
    objective = new_objective(source)
    batch = as_batch(source, 64)
    ids, counts, jet_pt = objective.tokenize(batch)
    real = torch.arange(ids.size(1)) < counts[:, None]
    torch.testing.assert_close(counts, batch["mask"].sum(1))
    torch.testing.assert_close(jet_pt, torch.from_numpy(source.pt[:64]), rtol=1e-4, atol=0)
    assert ((ids >= 0) & (ids < objective.stop_token))[real].all() and (ids[~real] < 0).all()

    # decoded tokens rebuild features whose tokens are the same ids
    features, vectors = particle_inputs(objective.decode_tokens(ids), jet_pt)
    again, _, _ = objective.tokenize({"features": features * real[..., None], "vectors": vectors, "mask": real})
    torch.testing.assert_close(again, ids)
    # and sit closer to the particles than the spread of the particles themselves
    measured = batch["features"][..., [2, 5, 6]][batch["mask"]]
    error = (objective.decode_tokens(ids)[real] - measured).abs().mean(0)
    assert (error < measured.std(0)).all()


def test_rebuilt_inputs_are_consistent_with_the_data_features(source: JetTensors) -> None:
    """A rebuilt particle at the data's relative position has the data's pT, dR and four-vector pT."""
    batch = as_batch(source, 8)
    measured = batch["features"][..., [2, 5, 6]]
    features, vectors = particle_inputs(measured, torch.from_numpy(source.pt[:8]))
    real = batch["mask"]
    torch.testing.assert_close(features[real][:, [0, 2, 4, 5, 6]], batch["features"][real][:, [0, 2, 4, 5, 6]])
    torch.testing.assert_close(vectors[real][:, :2].norm(dim=-1), features[real][:, 0].exp())


def test_loss_decreases_with_training(trained: tuple[NextTokenObjective, list]) -> None:
    _, history = trained
    losses = [row["loss"] for row in history]
    assert len(losses) == 30 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.2
    assert {"accuracy", "perplexity", "token_loss", "jet_loss"} <= set(history[-1])
    assert history[-1]["perplexity"] == pytest.approx(np.exp(history[-1]["token_loss"]), rel=1e-5)


def test_objective_needs_kinematic_inputs_only() -> None:
    with pytest.raises(ValueError, match="input_dim=7"):
        NextTokenObjective(create_model("tiny", input_dim=13), num_codes=16)


# -- sampling -------------------------------------------------------------------------------------
def test_sampled_jets_follow_the_schema_and_stop(trained: tuple[NextTokenObjective, list]) -> None:
    objective, _ = trained
    jets = sample_jets(objective, 40, seed=3, max_particles=MAX_PARTICLES)
    assert set(jets.fields) == set(ALL_BRANCHES) and len(jets) == 40
    counts = ak.to_numpy(jets["jet_nparticles"])
    torch.testing.assert_close(ak.num(jets["part_px"]).to_numpy(), counts.astype(np.int64), check_dtype=False)
    assert ((counts >= 2) & (counts <= MAX_PARTICLES)).all()
    assert (counts < MAX_PARTICLES).any(), "no jet ever sampled the stop token"
    mass = ak.to_numpy(jets["jet_mass"])
    assert np.isfinite(mass).all() and (mass > 0).all()
    pt = np.hypot(jets["part_px"], jets["part_py"])
    assert np.isfinite(ak.flatten(pt).to_numpy()).all()
    assert ak.all(pt[:, 1:] <= pt[:, :-1]), "constituents are not pT-ordered"
    assert ak.all(jets["part_charge"] == 0) and ak.all(jets["label_QCD"] == 0)


def test_sampling_is_deterministic_for_a_seed_and_respects_max_particles(
    trained: tuple[NextTokenObjective, list],
) -> None:
    objective, _ = trained
    first = sample_jets(objective, 10, seed=7, top_k=5, temperature=0.8, max_particles=MAX_PARTICLES)
    again = sample_jets(objective, 10, seed=7, top_k=5, temperature=0.8, max_particles=MAX_PARTICLES)
    other = sample_jets(objective, 10, seed=8, top_k=5, temperature=0.8, max_particles=MAX_PARTICLES)
    assert ak.to_list(first) == ak.to_list(again)
    assert ak.to_list(first["part_px"]) != ak.to_list(other["part_px"])
    short = sample_jets(objective, 10, seed=7, max_particles=3)
    assert (ak.to_numpy(short["jet_nparticles"]) <= 3).all()
    with pytest.raises(ValueError, match="max_particles"):
        sample_jets(objective, 2, max_particles=MAX_PARTICLES + 1)


def test_saved_objective_loads_and_samples_the_same_jets(
    trained: tuple[NextTokenObjective, list], tmp_path: Path
) -> None:
    objective, _ = trained
    objective.save_pretrained(tmp_path / "ntp-model")
    loaded = load_objective(tmp_path / "ntp-model")
    assert isinstance(loaded, NextTokenObjective) and loaded.stop_token == objective.stop_token
    expected = sample_jets(objective, 8, seed=11, max_particles=MAX_PARTICLES)
    assert ak.to_list(sample_jets(loaded, 8, seed=11, max_particles=MAX_PARTICLES)) == ak.to_list(expected)


def test_compare_samples_gives_finite_distances_and_a_plot(
    trained: tuple[NextTokenObjective, list], jets: ak.Array, tmp_path: Path
) -> None:
    objective, _ = trained
    comparison = compare_samples(sample_jets(objective, 40, seed=5, max_particles=MAX_PARTICLES), jets)
    assert comparison["n_samples"] == 40 and comparison["n_reference"] == len(jets)
    for name in ("mass", "tau32"):
        observable = comparison["observables"][name]
        assert np.isfinite(observable["wasserstein"]) and observable["wasserstein"] >= 0
        assert np.isfinite(observable["wasserstein_reference_halves"])
        widths = np.diff(observable["edges"])
        assert np.sum(np.asarray(observable["reference"]) * widths) == pytest.approx(1.0)
    assert compare_samples(jets, jets)["observables"]["mass"]["wasserstein"] == 0.0
    path = plot_sample_comparison(comparison, tmp_path / "plots" / "ntp.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
