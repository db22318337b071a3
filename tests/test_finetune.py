"""Finetuning modes, label subsets, metrics, evaluation, save/load and ONNX export, on tiny synthetic jets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from jetfm.backbone.checkpoint import from_pretrained
from jetfm.backbone.data.schema import PROCESSES
from jetfm.backbone.evaluate import evaluate_classifier, plot_roc, validation_metrics
from jetfm.backbone.finetune import (
    CLASSIFIER_NAME,
    HEAD_NAME,
    LINEAR_HEAD,
    HeadConfig,
    LabelSubset,
    build_classifier,
    classes_from_labels,
    fit_linear_probe,
    load_classifier,
    logistic_regression,
)
from jetfm.backbone.metrics import (
    auc,
    background_rejection,
    classification_report,
    one_vs_rest_auc,
    roc_curve,
)
from jetfm.backbone.registry import create_model
from jetfm.backbone.train import TrainConfig, Trainer

QCD, TOP = PROCESSES.index("qcd"), PROCESSES.index("top")
SLOTS = 16


class SyntheticJets:
    """Two separable kinds of jet: "top" jets have more, wider-spread constituents than "qcd" jets."""

    def __init__(self, n: int, seed: int = 0, codes: tuple[int, ...] = (QCD, TOP)) -> None:
        rng = np.random.default_rng(seed)
        self.labels = np.array(codes, dtype=np.int64)[rng.integers(0, len(codes), n)]
        is_top = self.labels == TOP
        counts = np.where(is_top, rng.integers(9, SLOTS + 1, n), rng.integers(2, 7, n))
        self.mask = np.arange(SLOTS)[None, :] < counts[:, None]
        spread = np.where(is_top, 0.4, 0.1)[:, None]
        deta, dphi = rng.normal(size=(2, n, SLOTS)) * spread
        pt = np.sort(rng.exponential(20.0, (n, SLOTS)) + 1.0, axis=1)[:, ::-1]
        energy = pt * np.cosh(deta)
        self.vectors = (np.stack([pt * np.cos(dphi), pt * np.sin(dphi), pt * np.sinh(deta), energy], -1)
                        * self.mask[..., None]).astype(np.float32)
        jet_pt, jet_e = (pt * self.mask).sum(1, keepdims=True), (energy * self.mask).sum(1, keepdims=True)
        features = [np.log(pt), np.log(energy), np.log(pt / jet_pt), np.log(energy / jet_e)]
        features += [np.hypot(deta, dphi), deta, dphi]
        self.features = (np.stack(features, -1) * self.mask[..., None]).astype(np.float32)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return {"features": self.features[indices], "vectors": self.vectors[indices],
                "mask": self.mask[indices], "labels": self.labels[indices]}


def _train(classifier, data, tmp_path, steps: int = 5, lr: float = 1e-3):
    config = TrainConfig(steps=steps, batch_size=32, lr=lr, warmup_steps=2, checkpoint_every=1000, log_every=1000)
    trainer = Trainer(classifier, data, config, tmp_path / "run", param_groups=classifier.param_groups())
    trainer.fit(show_progress=False)
    return trainer


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# -- metrics ----------------------------------------------------------------------------------------

def test_roc_of_perfect_inverted_and_random_scores():
    truth = np.array([0, 0, 1, 1], bool)
    assert auc(*roc_curve(np.array([0.1, 0.2, 0.8, 0.9]), truth)) == 1.0
    assert auc(*roc_curve(np.array([0.9, 0.8, 0.2, 0.1]), truth)) == 0.0
    assert auc(*roc_curve(np.full(4, 0.5), truth)) == 0.5  # ties make one threshold, not a staircase
    rng = np.random.default_rng(0)
    assert auc(*roc_curve(rng.random(20_000), rng.random(20_000) < 0.5)) == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match="both classes"):
        roc_curve(np.ones(3), np.ones(3, bool))


def test_rejection_interpolates_and_is_inf_without_background():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.85, 0.5, 0.4, 0.3])
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    eps_s, eps_b = roc_curve(scores, truth)
    assert background_rejection(eps_s, eps_b, 0.5) == pytest.approx(4.0)  # cut at 0.8: 2/4 signal, 1/4 background
    assert background_rejection(eps_s, eps_b, 0.3) == pytest.approx(4.0)  # the lowest eps_B reaching 0.3
    assert background_rejection(eps_s, eps_b, 1.0) == pytest.approx(4.0)  # every signal jet is above 0.5
    perfect = roc_curve(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1], bool))
    assert math.isinf(background_rejection(*perfect, 0.5))
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    report = classification_report(probs, np.array([0, 0, 1, 1]), ["qcd", "top"])
    assert report["signal"] == "top" and report["accuracy"] == 1.0 and report["auc"] == 1.0
    assert report["background_rejection"] == {"0.3": None, "0.5": None}
    assert len(report["roc"]["eps_s"]) == 200
    json.dumps(report, allow_nan=False)


def test_metrics_agree_with_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    truth = rng.random(3000) < 0.4
    scores = np.round(rng.normal(size=3000) + truth, 1)  # rounding makes ties
    assert auc(*roc_curve(scores, truth)) == pytest.approx(metrics.roc_auc_score(truth, scores), abs=1e-12)
    labels = rng.integers(0, 3, 3000)
    probs = rng.dirichlet(np.ones(3), 3000) + np.eye(3)[labels] * 0.3
    probs /= probs.sum(1, keepdims=True)
    ours = classification_report(probs, labels, ["qcd", "top", "wqq"])
    assert ours["macro_auc"] == pytest.approx(metrics.roc_auc_score(labels, probs, multi_class="ovr"), abs=1e-12)
    assert one_vs_rest_auc(probs, labels)[1] == pytest.approx(metrics.roc_auc_score(labels == 1, probs[:, 1]))
    assert "auc" not in ours  # no signal named among three classes


# -- label subsets ----------------------------------------------------------------------------------

def test_label_subset_is_balanced_deterministic_and_nested():
    data = SyntheticJets(300, codes=(QCD, TOP, PROCESSES.index("wqq")))
    subset = LabelSubset(data, 40, classes=("qcd", "top"), seed=3)
    assert len(subset) == 40 and np.bincount(subset.labels, minlength=2)[[QCD, TOP]].tolist() == [20, 20]
    assert np.array_equal(subset.indices, LabelSubset(data, 40, classes=("qcd", "top"), seed=3).indices)
    assert not np.array_equal(subset.indices, LabelSubset(data, 40, classes=("qcd", "top"), seed=4).indices)
    assert set(subset.indices) <= set(LabelSubset(data, 80, classes=("qcd", "top"), seed=3).indices)
    assert np.array_equal(subset.batch(np.array([0, 1]))["labels"], data.labels[subset.indices[:2]])
    assert LabelSubset(data, None).classes == ("qcd", "top", "wqq")
    with pytest.raises(ValueError, match="at most"):
        LabelSubset(data, 10_000, classes=("qcd", "top"))
    assert classes_from_labels(np.array([TOP, QCD, -1])) == ("qcd", "top")


# -- modes ------------------------------------------------------------------------------------------

def test_mlp_probe_trains_only_the_head(tmp_path):
    torch.manual_seed(0)
    classifier = build_classifier(create_model("tiny"), ("qcd", "top"), mode="mlp_probe")
    encoder_before, head_before = _state(classifier.encoder), _state(classifier.head)
    trainer = _train(classifier, SyntheticJets(64), tmp_path)
    assert {g["lr_scale"] for g in trainer.optimizer.param_groups} == {1.0}
    trained = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert trained == {id(p) for p in classifier.head.parameters()}
    assert not classifier.encoder.training  # Trainer's train() must not wake up drop-path and batch statistics
    encoder_after = classifier.encoder.state_dict()
    assert all(torch.equal(encoder_before[k], encoder_after[k]) for k in encoder_before)  # buffers included
    assert any(not torch.equal(head_before[k], v) for k, v in classifier.head.state_dict().items())


def test_linear_probe_is_a_convergedlogistic_regression_on_frozen_embeddings():
    torch.manual_seed(0)
    classifier = build_classifier(create_model("tiny"), ("qcd", "top"), mode="linear_probe")
    assert classifier.head_config == LINEAR_HEAD
    assert [type(m) for m in classifier.head.mlp] == [torch.nn.Linear]  # no norm, no hidden layer
    encoder_before = _state(classifier.encoder)
    train, val = LabelSubset(SyntheticJets(300, seed=1), None).split(0.25, seed=0)
    result = fit_linear_probe(classifier, train, val)
    assert result["l2_strength"] in (1e-5, 1e-4, 1e-3, 1e-2, 1e-1) and len(result["validation"]) == 5
    chosen = result["validation"][str(result["l2_strength"])]["val_auc"]
    assert chosen == max(v["val_auc"] for v in result["validation"].values())
    assert all(torch.equal(v, classifier.encoder.state_dict()[k]) for k, v in encoder_before.items())
    # the folded head reproduces the regression on standardised embeddings, and it separates the jets
    assert validation_metrics(classifier, val)["val_auc"] == pytest.approx(chosen, abs=1e-6)
    assert validation_metrics(classifier, train)["val_auc"] > 0.9
    # the regression is at its optimum: the penalised loss has no gradient left
    x = torch.randn(200, 5, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * torch.randn(200, dtype=torch.float64) > 0).long()
    weight, bias = logistic_regression(x, y, 2, strength=1e-2)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(x @ weight + bias, y) + 0.5e-2 * weight.square().sum()
    loss.backward()
    assert max(weight.grad.abs().max(), bias.grad.abs().max()) < 1e-6


def test_full_mode_rates_pooling_with_the_head_and_decays_by_layer():
    encoder = create_model("tiny")
    full = build_classifier(encoder, ("qcd", "top"), mode="full", layer_decay=0.5)
    groups = full.param_groups()
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in full.parameters())  # every parameter exactly once
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    pooling = [encoder.class_token, *encoder.class_blocks.parameters(), *encoder.jet_norm.parameters()]
    assert all(scale[id(p)] == 1.0 for p in [*full.head.parameters(), *pooling])  # untrained: full rate
    depth = len(encoder.blocks)
    for k, block in enumerate(encoder.blocks):
        assert all(scale[id(p)] == 0.5 ** (depth - k) for p in block.parameters())
    assert all(scale[id(p)] == 0.5 ** (depth + 1) for p in encoder.particle_embed.parameters())
    assert all(scale[id(p)] == 0.5 ** (depth + 1) for p in encoder.pair_embed.parameters())

    trainer = Trainer(full, SyntheticJets(8), TrainConfig(steps=1, lr=1e-3, warmup_steps=1), "unused", groups)
    trainer._set_lr()
    lr = {id(p): g["lr"] for g in trainer.optimizer.param_groups for p in g["params"]}
    assert lr[id(encoder.blocks[0].attn.query.weight)] == pytest.approx(0.5**depth * lr[id(encoder.class_token)])

    scratch = build_classifier(encoder, ("qcd", "top"), mode="scratch")
    assert scratch.encoder is not encoder and scratch.encoder.config == encoder.config
    assert not torch.equal(scratch.encoder.class_token, encoder.class_token)
    assert [g["lr_scale"] for g in scratch.param_groups()] == [1.0]


def test_no_weight_decay_on_norms_biases_and_tokens():
    classifier = build_classifier(create_model("tiny"), ("qcd", "top"), mode="full")
    config = TrainConfig(steps=1, weight_decay=0.05)
    trainer = Trainer(classifier, SyntheticJets(8), config, "unused", classifier.param_groups())
    decay = {id(p): g["weight_decay"] for g in trainer.optimizer.param_groups for p in g["params"]}
    assert len(decay) == len(list(classifier.parameters()))
    encoder = classifier.encoder
    exempt = [encoder.class_token, encoder.jet_norm.weight, encoder.blocks[0].attn_norm.weight,
              encoder.blocks[0].attn.query.bias, classifier.head.mlp[0].weight]  # head.mlp[0]: its LayerNorm
    assert all(decay[id(p)] == 0.0 for p in exempt)
    assert decay[id(encoder.blocks[0].attn.query.weight)] == 0.05
    assert decay[id(classifier.head.mlp[-1].weight)] == 0.05


def test_validation_split_is_stratified_disjoint_and_seeded():
    subset = LabelSubset(SyntheticJets(400, seed=3), 100, seed=1)
    train, val = subset.split(0.2, seed=5)
    assert len(train) == 80 and len(val) == 20
    assert not set(train.indices) & set(val.indices) and set(train.indices) | set(val.indices) == set(subset.indices)
    assert np.bincount(val.labels)[[QCD, TOP]].tolist() == [10, 10]
    assert np.array_equal(val.indices, subset.split(0.2, seed=5)[1].indices)
    assert np.array_equal(val.batch(np.arange(3))["labels"], val.labels[:3])


def test_training_on_separable_jets_reaches_high_auc(tmp_path):
    torch.manual_seed(0)
    classifier = build_classifier(create_model("tiny", dropout=0.0), ("qcd", "top"), mode="scratch")
    _train(classifier, SyntheticJets(256, seed=1), tmp_path, steps=30, lr=3e-3)
    report = evaluate_classifier(classifier, SyntheticJets(200, seed=2))
    assert report["auc"] > 0.8 and report["mode"] == "scratch"
    assert plot_roc({"scratch": report}, tmp_path / "roc.png").stat().st_size > 0
    with pytest.raises(ValueError, match="not among the classes"):
        evaluate_classifier(classifier, SyntheticJets(20, codes=(QCD, PROCESSES.index("hbb"))))


def test_save_and_load_give_identical_probabilities(tmp_path):
    torch.manual_seed(0)
    classifier = build_classifier(create_model("tiny"), ("qcd", "top"), mode="mlp_probe",
                                  head=HeadConfig(hidden_dims=(32, 16)))
    _train(classifier, SyntheticJets(64), tmp_path, steps=2)
    folder = classifier.save_pretrained(tmp_path / "clf")
    assert (folder / CLASSIFIER_NAME).is_file() and (folder / HEAD_NAME).is_file()
    loaded = load_classifier(folder)
    assert (loaded.classes, loaded.mode) == (classifier.classes, "mlp_probe")
    assert loaded.head_config == classifier.head_config
    test = SyntheticJets(50, seed=5)
    assert np.array_equal(loaded.predict_proba(test, batch_size=16), classifier.predict_proba(test, batch_size=16))
    assert from_pretrained(folder).config == classifier.encoder.config  # still an encoder folder

    linear = build_classifier(create_model("tiny"), ("qcd", "top"), mode="linear_probe")
    fit_linear_probe(linear, LabelSubset(SyntheticJets(64, seed=2), None))
    loaded = load_classifier(linear.save_pretrained(tmp_path / "linear"))
    assert loaded.mode == "linear_probe" and loaded.head_config == LINEAR_HEAD
    assert np.array_equal(loaded.predict_proba(test), linear.predict_proba(test))


def test_predictions_do_not_depend_on_batching_by_multiplicity():
    torch.manual_seed(0)
    classifier = build_classifier(create_model("tiny"), ("qcd", "top"), mode="scratch").eval()
    test = SyntheticJets(40, seed=6)
    one_by_one = np.concatenate([
        classifier.logits(*(torch.from_numpy(test.batch(np.array([i]))[k]) for k in ("features", "vectors", "mask")))
        .softmax(-1).detach().numpy() for i in range(len(test))
    ])
    np.testing.assert_allclose(classifier.predict_proba(test, batch_size=8), one_by_one, atol=1e-5)


# -- ONNX -------------------------------------------------------------------------------------------

@pytest.mark.slow  # ~20 s; `jetfm export` (tests/test_models.py) runs the same check on two shapes
def test_onnx_export_matches_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from jetfm.backbone.onnx_export import check_onnx, example_inputs, export_onnx

    torch.manual_seed(0)
    classifier = build_classifier(create_model("tiny"), ("qcd", "top"), mode="full")
    path = export_onnx(classifier, tmp_path / "clf.onnx", max_particles=64)
    for batch_size, particles in ((3, 40), (7, 64)):
        features, vectors, mask = example_inputs(batch_size, particles, 7, seed=batch_size)
        mask[1, 5:] = False  # padding inside the batch, and the last jet's slots all real for some
        batch = {"features": features * mask[..., None], "vectors": vectors * mask[..., None], "mask": mask}
        assert check_onnx(classifier, path, batch) < 1e-4
    assert classifier.training  # the mode is restored after export and checks
