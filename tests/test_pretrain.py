"""Pretraining: the particle codebook, masked particle modelling, augmentations, contrastive learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_readers import make_jets

from backbone.data.features import KINEMATIC_FEATURES, FeatureConfig, JetTensors, make_tensors
from backbone.pretrain.augment import (
    Particles,
    augment,
    collinear_split,
    features_from_vectors,
    jet_axis,
    rotate,
    soft_split,
)
from backbone.pretrain.base import create_objective, load_objective
from backbone.pretrain.codebook import IGNORE_INDEX, ParticleCodebook, feature_indices, sample_particles
from backbone.pretrain.contrastive import nt_xent
from backbone.pretrain.mpm import MaskedParticleObjective, encode_hidden, sample_hidden
from backbone.registry import create_model
from backbone.train import TrainConfig, Trainer

SLOTS = 16
NUM_CODES = 16


def source(n: int = 200, seed: int = 0, include_charge_pid: bool = False) -> JetTensors:
    jets = make_jets(n, seed=seed)
    return make_tensors(jets, FeatureConfig(max_particles=SLOTS, include_charge_pid=include_charge_pid))


def torch_batch(data: JetTensors, n: int = 8) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in data.batch(np.arange(n)).items()}


def fitted_codebook(data: JetTensors, seed: int = 0) -> ParticleCodebook:
    return ParticleCodebook(NUM_CODES).fit(sample_particles(data, 5000, seed), seed=seed)


def mpm(data: JetTensors | None = None, **config) -> MaskedParticleObjective:
    torch.manual_seed(0)
    objective = create_objective(
        "mpm", create_model("tiny", dropout=0.0, max_particles=SLOTS), num_codes=NUM_CODES, **config
    )
    objective.prepare(data or source(), seed=0)
    return objective


# -- codebook ------------------------------------------------------------------------------------


def test_codebook_assign_decode_round_trip_and_seeded_fit():
    data = source()
    codebook = fitted_codebook(data)
    assert torch.equal(codebook.centroids, fitted_codebook(data).centroids)
    assert not torch.equal(codebook.centroids, fitted_codebook(data, seed=1).centroids)

    batch = torch_batch(data, 32)
    ids = codebook.assign(batch["features"], batch["mask"])
    assert ids.dtype == torch.int64 and ids.shape == batch["mask"].shape
    assert (ids[~batch["mask"]] == IGNORE_INDEX).all()
    assert ((ids[batch["mask"]] >= 0) & (ids[batch["mask"]] < NUM_CODES)).all()

    # a particle placed exactly on its centroid is assigned that centroid again
    centres = codebook.decode(ids)
    assert (centres[~batch["mask"]] == 0).all()
    snapped = batch["features"].clone()
    snapped[..., feature_indices(codebook.columns)] = centres
    assert torch.equal(codebook.assign(snapped, batch["mask"]), ids)

    restored = ParticleCodebook(NUM_CODES)
    restored.load_state_dict(codebook.state_dict())
    assert restored.fitted and torch.equal(restored.assign(batch["features"], batch["mask"]), ids)


def test_codebook_errors_say_what_to_do():
    with pytest.raises(RuntimeError, match="prepare"):
        ParticleCodebook(NUM_CODES).assign(torch.zeros(2, 3, 7))
    with pytest.raises(ValueError, match="too few"):
        ParticleCodebook(NUM_CODES).fit(np.zeros((10, 7), np.float32))
    with pytest.raises(ValueError, match="include_charge_pid"):
        ParticleCodebook(NUM_CODES, columns=("part_deta", "part_charge")).fit(np.zeros((100, 7), np.float32))


# -- masked particle modelling -------------------------------------------------------------------


def test_hidden_particles_fraction_and_never_padding():
    mask = torch.arange(SLOTS)[None, :] < torch.tensor([1, 2, 5, 10, 16])[:, None]
    hidden = sample_hidden(mask, 0.4)
    assert not (hidden & ~mask).any()
    assert hidden.sum(1).tolist() == [1, 1, 2, 4, 6]


def test_nothing_hidden_is_exactly_forward_particles():
    objective = mpm().eval()
    batch = torch_batch(source(), 8)
    hidden = torch.zeros_like(batch["mask"])
    with torch.no_grad():
        expected = objective.encoder.forward_particles(batch["features"], batch["vectors"], batch["mask"])
        got = encode_hidden(
            objective.encoder, batch["features"], batch["vectors"], batch["mask"], hidden, objective.mask_token
        )
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_hidden_particles_do_not_leak():
    """Train mode (batch statistics) is the strictest case: what a hidden particle is must not change
    any prediction at hidden positions, while changing a visible particle does."""
    objective = mpm().train()
    batch = torch_batch(source(), 8)
    hidden = sample_hidden(batch["mask"], 0.4)

    def logits(b: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return objective.token_head(objective.hidden_states(b, hidden))

    changed = {k: v.clone() for k, v in batch.items()}
    changed["features"][hidden] = torch.randn_like(changed["features"][hidden])
    changed["vectors"][hidden] = changed["vectors"][hidden] * 3.0 + 1.0
    torch.testing.assert_close(logits(changed), logits(batch), rtol=0, atol=0)

    visible = batch["mask"] & ~hidden
    changed["features"][visible] += 1.0
    assert not torch.allclose(logits(changed), logits(batch))


def test_masked_loss_is_permutation_invariant():
    objective = mpm().eval()
    batch = torch_batch(source(), 8)
    hidden = sample_hidden(batch["mask"], 0.4)
    perm = torch.randperm(SLOTS, generator=torch.Generator().manual_seed(1))
    shuffled = {k: (v[:, perm] if v.dim() > 1 else v) for k, v in batch.items()}
    with torch.no_grad():
        loss, _ = objective.masked_loss(batch, hidden)
        loss_shuffled, _ = objective.masked_loss(shuffled, hidden[:, perm])
    torch.testing.assert_close(loss_shuffled, loss, rtol=1e-5, atol=1e-6)


def test_mpm_loss_decreases_with_trainer(tmp_path):
    data = source(256)
    objective = mpm(data)
    config = TrainConfig(steps=30, batch_size=32, lr=3e-3, warmup_steps=3, checkpoint_every=1000, device="cpu")
    history = Trainer(objective, data, config, tmp_path / "run").fit(show_progress=False)
    losses = [row["loss"] for row in history]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.1
    assert {"masked_accuracy", "token_loss", "regression_loss"} <= set(history[-1])


def test_particle_log_likelihood_scores_every_jet():
    objective = mpm().train()
    batch = torch_batch(source(), 8)
    scores = objective.particle_log_likelihood(batch, n_passes=3, seed=0)
    assert scores.shape == (8,) and torch.isfinite(scores).all() and (scores < 0).all()
    assert torch.equal(scores, objective.particle_log_likelihood(batch, n_passes=3, seed=0))
    assert objective.training  # the mode it was called in is restored


# -- augmentations -------------------------------------------------------------------------------


@pytest.mark.parametrize("include_charge_pid", [False, True])
def test_features_from_vectors_match_make_tensors(include_charge_pid):
    batch = torch_batch(source(40, include_charge_pid=include_charge_pid), 40)
    extra = batch["features"][..., len(KINEMATIC_FEATURES) :]
    features = features_from_vectors(batch["vectors"], batch["mask"], extra)
    torch.testing.assert_close(features, batch["features"], rtol=1e-4, atol=2e-4)


def particles_with_room(n: int = 12) -> Particles:
    """Jets of at most SLOTS // 2 particles, so that splitting every particle still fits."""
    jets = make_jets(n, seed=3, counts=np.random.default_rng(3).integers(1, SLOTS // 2 + 1, n))
    tensors = make_tensors(jets, FeatureConfig(max_particles=SLOTS, include_charge_pid=True))
    features = torch.from_numpy(tensors.features)
    return Particles(
        torch.from_numpy(tensors.vectors).double(),
        torch.from_numpy(tensors.mask),
        features[..., len(KINEMATIC_FEATURES) :].double(),
    )


def assert_valid_jets(particles: Particles) -> None:
    """Front-packed, pT-ordered, zero on padding."""
    vectors, mask, extra = particles
    pt = torch.hypot(vectors[..., 0], vectors[..., 1])
    assert torch.equal(mask, torch.arange(mask.size(1)) < mask.sum(1, keepdim=True))
    assert (pt[:, :-1] >= pt[:, 1:]).all()
    assert (vectors[~mask] == 0).all() and (extra[~mask] == 0).all()


@pytest.mark.parametrize("split", [soft_split, collinear_split])
def test_splits_conserve_the_jet_four_momentum(split):
    before = particles_with_room()
    after = split(before, probability=1.0, generator=torch.Generator().manual_seed(0))
    assert_valid_jets(after)
    torch.testing.assert_close(jet_axis(after.vectors, after.mask), jet_axis(before.vectors, before.mask))
    added = after.mask.sum(1) - before.mask.sum(1)
    assert (added >= 1).all() and (added <= before.mask.sum(1)).all()
    # the pieces keep their parent's charge and PID: the set of flag rows is unchanged
    assert torch.equal(torch.unique(after.extra[after.mask], dim=0), torch.unique(before.extra[before.mask], dim=0))


def test_split_of_full_jets_drops_the_softest():
    tensors = make_tensors(make_jets(4, seed=1, counts=[SLOTS + 3] * 4), FeatureConfig(max_particles=SLOTS))
    full = Particles(torch.from_numpy(tensors.vectors), torch.from_numpy(tensors.mask), torch.zeros(4, SLOTS, 0))
    after = collinear_split(full, probability=1.0)
    assert after.mask.all() and after.vectors.shape == full.vectors.shape
    assert_valid_jets(after)
    assert (jet_axis(after.vectors, after.mask)[:, 3] < jet_axis(full.vectors, full.mask)[:, 3]).all()


def test_rotation_keeps_each_particle_pt():
    before = particles_with_room()
    after = rotate(before, generator=torch.Generator().manual_seed(0))
    assert_valid_jets(after)
    assert torch.equal(after.mask, before.mask)
    pt = lambda p: torch.hypot(p.vectors[..., 0], p.vectors[..., 1])  # noqa: E731
    torch.testing.assert_close(pt(after), pt(before))


@pytest.mark.parametrize("include_charge_pid", [False, True])
def test_augmented_batch_is_consistent(include_charge_pid):
    batch = torch_batch(source(40, include_charge_pid=include_charge_pid), 40)
    view = augment(batch, generator=torch.Generator().manual_seed(0))
    assert view.keys() == batch.keys() and all(view[k].shape == batch[k].shape for k in batch)
    assert torch.equal(view["labels"], batch["labels"])
    extra = view["features"][..., len(KINEMATIC_FEATURES) :]
    assert_valid_jets(Particles(view["vectors"], view["mask"], extra))
    assert (view["mask"].sum(1) >= batch["mask"].sum(1)).all()
    torch.testing.assert_close(view["features"], features_from_vectors(view["vectors"], view["mask"], extra))
    assert not torch.allclose(view["vectors"], batch["vectors"])


# -- contrastive ---------------------------------------------------------------------------------


def test_nt_xent_accuracy_and_batch_of_two():
    views = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1).repeat(2, 1)  # identical view pairs
    loss, accuracy = nt_xent(views, temperature=0.1)
    assert torch.isfinite(loss) and accuracy == 1.0


def test_contrastive_loss_decreases_from_a_batch_of_two():
    torch.manual_seed(0)
    objective = create_objective(
        "contrastive", create_model("tiny", dropout=0.0, max_particles=SLOTS), projection_dim=16
    )
    batch = torch_batch(source(), 2)
    loss, metrics = objective(batch)
    assert torch.isfinite(loss) and 0.0 <= metrics["positive_accuracy"] <= 1.0

    batch = torch_batch(source(), 16)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss, _ = objective(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


# -- saving and loading --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mpm", "contrastive"])
def test_save_and_load_objective_give_identical_losses(name, tmp_path):
    data = source()
    if name == "mpm":
        objective = mpm(data)
    else:
        torch.manual_seed(0)
        objective = create_objective(name, create_model("tiny", max_particles=SLOTS), projection_dim=16)
    objective.eval()
    batch = torch_batch(data, 8)
    torch.manual_seed(5)
    expected, _ = objective(batch)

    objective.save_pretrained(tmp_path / "model")
    loaded = load_objective(tmp_path / "model")
    assert type(loaded) is type(objective) and loaded.objective_config() == objective.objective_config()
    torch.manual_seed(5)
    got, _ = loaded(batch)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
