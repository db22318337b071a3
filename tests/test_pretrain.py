"""Pretraining: the particle codebook, masked particle modelling, augmentations, contrastive learning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_readers import make_jets

from jetfm.backbone.anomaly import mpm_scores
from jetfm.backbone.data.features import KINEMATIC_FEATURES, FeatureConfig, JetTensors, make_tensors
from jetfm.backbone.metrics import auc, roc_curve
from jetfm.backbone.pretrain.augment import (
    Particles,
    augment,
    collinear_split,
    features_from_vectors,
    jet_axis,
    rotate,
    soft_split,
)
from jetfm.backbone.pretrain.base import create_objective, load_objective
from jetfm.backbone.pretrain.codebook import IGNORE_INDEX, ParticleCodebook, feature_indices, sample_particles
from jetfm.backbone.pretrain.contrastive import nt_xent
from jetfm.backbone.pretrain.mpm import (
    MaskedParticleObjective,
    encode_hidden,
    majority_accuracy,
    pt_rank,
    sample_hidden,
)
from jetfm.backbone.pretrain.sampling import jets_from_constituents, massless_constituents
from jetfm.backbone.registry import create_model
from jetfm.backbone.train import TrainConfig, Trainer

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
    """Train mode (batch statistics) is the strictest case: beyond its pT rank, nothing of what a
    hidden particle is may change any prediction, while changing a visible particle does."""
    objective = mpm().train()
    batch = torch_batch(source(), 8)
    hidden = sample_hidden(batch["mask"], 0.4)

    def logits(b: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return objective.token_head(objective.hidden_states(b, hidden)[0])

    changed = {k: v.clone() for k, v in batch.items()}
    changed["features"][hidden] = torch.randn_like(changed["features"][hidden])
    # another direction, mass and energy, the same pT (so the same rank)
    px, py, pz, _ = changed["vectors"][hidden].unbind(-1)
    pt, angle = torch.hypot(px, py), torch.rand(len(px)) * 6.0
    pz = 3.0 * pz + 1.0
    changed["vectors"][hidden] = torch.stack([pt * angle.cos(), pt * angle.sin(), pz, (pt**2 + pz**2).sqrt() + 1.0], -1)
    assert torch.equal(pt_rank(changed["vectors"], batch["mask"]), pt_rank(batch["vectors"], batch["mask"]))
    torch.testing.assert_close(logits(changed), logits(batch), rtol=0, atol=0)

    visible = batch["mask"] & ~hidden
    changed["features"][visible] += 1.0
    assert not torch.allclose(logits(changed), logits(batch))


def test_hidden_particles_of_one_jet_get_different_predictions():
    """Each hidden slot carries its pT rank, so two hidden particles of a jet are told apart (MPM v1
    gave every hidden particle of a jet the same output, identical to the last bit)."""
    objective = mpm().eval()
    batch = torch_batch(source(), 8)
    hidden = sample_hidden(batch["mask"], 0.4)
    with torch.no_grad():
        probabilities = objective.token_head(objective.hidden_states(batch, hidden)[0]).softmax(-1)
    jet = hidden.nonzero()[:, 0]
    compared = 0
    for j in jet.unique():
        rows = probabilities[jet == j]
        if len(rows) > 1:
            assert (rows[1:] - rows[0]).abs().amax(-1).min() > 1e-4
            compared += 1
    assert compared >= 4


def test_pt_rank_orders_real_particles_by_pt():
    vectors = torch.zeros(1, 5, 4)
    vectors[0, :, 0] = torch.tensor([3.0, 9.0, 1.0, 5.0, 0.0])
    mask = torch.tensor([[True, True, True, True, False]])
    assert pt_rank(vectors, mask).tolist() == [[2, 0, 3, 1, 4]]


def test_majority_accuracy_is_the_best_one_token_per_jet_guess():
    targets = torch.tensor([4, 4, 1, 2, 2, 2, 7])
    jet = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    assert majority_accuracy(targets, jet, num_codes=8) == pytest.approx((2 + 3) / 7)


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
    metrics = {"masked_accuracy", "majority_accuracy", "token_loss", "regression_loss", "jet_loss", "jet_view_accuracy"}
    assert metrics <= set(history[-1])


def test_particle_log_likelihood_scores_every_jet():
    objective = mpm().train()
    batch = torch_batch(source(), 8)
    scores = objective.particle_log_likelihood(batch, n_passes=3, seed=0)
    assert scores.shape == (8,) and torch.isfinite(scores).all() and (scores < 0).all()
    assert torch.equal(scores, objective.particle_log_likelihood(batch, n_passes=3, seed=0))
    assert objective.training  # the mode it was called in is restored


def two_prong_jets(n: int, seed: int, scrambled: bool = False) -> JetTensors:
    """Toy jets of 8..16 massless particles in two back-to-back prongs at a random orientation, pT
    falling with rank; the k-th hardest particle sits in prong k % 2 (``scrambled``: a random prong,
    which leaves the jets' token statistics alone but breaks the rule)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(8, SLOTS + 1, n)
    rows = []
    for count in counts:
        theta = rng.uniform(0, 2 * np.pi)
        fractions = 0.75 ** np.arange(count) * rng.uniform(0.97, 1.03, count)
        prong = rng.integers(0, 2, count) if scrambled else np.arange(count) % 2
        sign = np.where(prong == 0, 1.0, -1.0)
        deta = sign * 0.15 * np.cos(theta) + rng.normal(0, 0.01, count)
        dphi = sign * 0.15 * np.sin(theta) + rng.normal(0, 0.01, count)
        rows.append(np.stack([np.log(fractions / fractions.sum()), deta, dphi], axis=1))
    jets = jets_from_constituents(*massless_constituents(np.concatenate(rows), 600.0, 0.0), counts)
    return make_tensors(jets, FeatureConfig(max_particles=SLOTS))


@pytest.fixture(scope="module")
def toy_mpm(tmp_path_factory) -> MaskedParticleObjective:
    """MPM pretrained briefly on two-prong toy jets, where each particle's prong follows from its rank."""
    data = two_prong_jets(512, seed=0)
    # The jet term's views are masked but not augmented: splits shift the ranks the toy's rule is built
    # on, and translations move log E/E_jet off the toy's jets, all at eta = 0, where its codebook is.
    unaugmented = {"soft_split_probability": 0.0, "collinear_split_probability": 0.0, "smear_stochastic": 0.0}
    unaugmented |= {"smear_constant": 0.0, "rotate": False, "translate_std": 0.0}
    objective = mpm(data, jet_augmentations=unaugmented)
    config = TrainConfig(steps=120, batch_size=64, lr=3e-3, warmup_steps=10, checkpoint_every=10**6, device="cpu")
    Trainer(objective, data, config, tmp_path_factory.mktemp("toy-mpm")).fit(show_progress=False)
    return objective.eval()


def test_mpm_predicts_each_hidden_particle_better_than_one_token_per_jet(toy_mpm):
    """Held-out toy jets: the masked accuracy clearly beats the per-jet majority token, the ceiling
    of a model that predicts one token for all hidden particles of a jet (as MPM v1 did)."""
    batch = torch_batch(two_prong_jets(200, seed=1), 200)
    hidden = sample_hidden(batch["mask"], 0.4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        predicted = toy_mpm.token_head(toy_mpm.hidden_states(batch, hidden)[0]).argmax(-1)
    targets = toy_mpm.codebook.assign(batch["features"], batch["mask"])[hidden]
    accuracy = float((predicted == targets).float().mean())
    majority = majority_accuracy(targets, hidden.nonzero()[:, 0], NUM_CODES)
    assert accuracy > majority + 0.2, (accuracy, majority)


def test_mpm_anomaly_scores_are_higher_for_jets_that_break_the_training_pattern(toy_mpm):
    """The known answer: scrambled-prong jets are the anomalies; ``mpm_scores`` (minus the mean
    log-likelihood of each masked particle) must rank them above held-out jets of the training kind."""
    typical, scrambled = two_prong_jets(150, seed=2), two_prong_jets(150, seed=3, scrambled=True)
    scores = [mpm_scores(toy_mpm, d, batch_size=50, device="cpu", show_progress=False) for d in (typical, scrambled)]
    is_anomalous = np.r_[np.zeros(150, bool), np.ones(150, bool)]
    assert auc(*roc_curve(np.concatenate(scores), is_anomalous)) > 0.9


def test_mpm_v1_models_load_and_score_but_do_not_train(tmp_path):
    """Models pretrained before v2 have no decoder and no jet term in their heads or pretraining.json:
    they load as v1 (decoder_layers=0) and still score, but refuse further training."""
    data = source()
    v1 = mpm(data, decoder_layers=0, jet_weight=0.0).eval()
    folder = v1.save_pretrained(tmp_path / "v1")
    stored = json.loads((folder / "pretraining.json").read_text())
    for added in ("decoder_layers", "jet_weight"):
        del stored["config"][added]
    (folder / "pretraining.json").write_text(json.dumps(stored))
    loaded = load_objective(folder)
    assert loaded.decoder is None and loaded.jet_term is None
    batch = torch_batch(data, 8)
    torch.testing.assert_close(
        loaded.particle_log_likelihood(batch), v1.particle_log_likelihood(batch), rtol=0, atol=0
    )
    with pytest.raises(ValueError, match="decoder_layers >= 1"):
        loaded.train()(batch)


# -- the jet embedding ---------------------------------------------------------------------------

EMBEDDING_CLASSES = ("qcd", "wqq", "top")
EMBEDDING_SLOTS = 32


@pytest.fixture(scope="module")
def three_classes(physics_sample) -> JetTensors:
    """The generated qcd, W->qq and top jets (300 of each; their 32 hardest particles). Pretraining
    never sees labels, so the same jets serve to evaluate, and 900 of them keep the purity steady."""
    config = FeatureConfig(max_particles=EMBEDDING_SLOTS)
    return JetTensors.concat([make_tensors(physics_sample[name], config) for name in EMBEDDING_CLASSES])


def embedding_quality(encoder, data: JetTensors, k: int = 10) -> tuple[float, float]:
    """kNN class purity (share of each jet's k nearest neighbours by cosine in its class) and the
    mean cosine similarity of different jets' embeddings."""
    batch = torch_batch(data, len(data))
    with torch.no_grad():
        embeddings = F.normalize(encoder.eval()(batch["features"], batch["vectors"], batch["mask"]), dim=-1)
    similarity = embeddings @ embeddings.T
    n = len(embeddings)
    mean_cosine = float((similarity.sum() - similarity.diagonal().sum()) / (n * (n - 1)))
    neighbours = similarity.fill_diagonal_(-2.0).topk(k, dim=1).indices
    labels = batch["labels"]
    return float((labels[neighbours] == labels[:, None]).float().mean()), mean_cosine


@pytest.mark.parametrize("name", ["mpm", "contrastive", "ntp"])
def test_every_objective_trains_the_jet_embedding(name, three_classes, tmp_path):
    """What embed/similar/knn/alignment/finetuning read (``JetEncoder.forward``) is trained: after a
    short pretraining, jets of one class are each other's neighbours more often than with a random
    encoder, and different jets no longer share one direction (an untrained class token gives every
    jet a cosine of ~0.999 with every other)."""
    jets = three_classes
    torch.manual_seed(0)
    encoder = create_model("tiny", max_particles=EMBEDDING_SLOTS)
    random_purity, random_cosine = embedding_quality(encoder, jets)
    objective = create_objective(name, encoder, **({} if name == "contrastive" else {"num_codes": 64}))
    objective.prepare(jets, seed=0)
    # 40 steps: on other generated jets purity goes 0.50 -> 0.66-0.67 and cosine 0.99 -> 0.46-0.58 for
    # each objective, well past what is asserted
    config = TrainConfig(steps=40, batch_size=64, lr=1e-3, warmup_steps=5, checkpoint_every=10**6, device="cpu")
    Trainer(objective, jets, config, tmp_path / "run").fit(show_progress=False)
    purity, cosine = embedding_quality(objective.encoder, jets)
    assert random_cosine > 0.99 and cosine < 0.9, (random_cosine, cosine)
    assert purity > random_purity + 0.05, (random_purity, purity)


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
    optimizer = torch.optim.AdamW(objective.parameters(), lr=1e-3)
    losses = []
    for _ in range(60):  # the augmentations are redrawn each step: compare averages, not single steps
        loss, _ = objective(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


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
