"""Anomaly scores: knn separates an injected cluster, self-matches, MPM likelihood, ranking, outputs,
AUC/SIC, and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from test_pretrain import SLOTS, mpm, source

from jetfm.backbone.anomaly import (
    detection_metrics,
    knn_scores,
    max_sic,
    mpm_scores,
    rank,
    signal_mask,
    write_scores,
)
from jetfm.backbone.pretrain.base import create_objective
from jetfm.backbone.registry import create_model


def blobs(n: int, centre: float, seed: int, dim: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = np.zeros(dim)
    middle[0] = centre
    return (middle + np.array([1.0] + [0.0] * (dim - 1)) + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)


def test_knn_scores_separate_an_injected_cluster():
    reference = blobs(2000, 0.0, seed=0)
    background, signal = blobs(900, 0.0, seed=1), np.roll(blobs(100, 0.0, seed=2), 1, axis=1)  # another direction
    scores = knn_scores(np.concatenate([background, signal]), reference, k=10)
    is_signal = np.r_[np.zeros(900, bool), np.ones(100, bool)]
    metrics = detection_metrics(scores, is_signal, min_background=20)
    assert metrics["auc"] > 0.99 and metrics["max_sic"] > 5
    assert scores.dtype == np.float32 and ((scores >= 0) & (scores <= 2)).all()


def test_scoring_the_reference_itself_skips_the_self_match():
    reference = blobs(300, 0.0, seed=0)
    with_self = knn_scores(reference, reference.copy(), k=1)  # not the same object: self counts
    without = knn_scores(reference, reference, k=1)
    np.testing.assert_allclose(with_self, 0.0, atol=1e-5)
    assert (without > 1e-4).all()
    duplicated = np.concatenate([reference[:1], reference[:1], reference[1:10]])
    assert knn_scores(duplicated, duplicated, k=1)[0] == pytest.approx(0.0, abs=1e-5)  # its twin remains


def test_knn_bad_inputs():
    reference = blobs(10, 0.0, seed=0)
    with pytest.raises(ValueError, match="has 10 jets, fewer than the 11 neighbours k=11"):
        knn_scores(reference[:3], reference, k=11)
    with pytest.raises(ValueError, match=r"fewer than the 11 neighbours k=10 needs \(plus the jet itself\)"):
        knn_scores(reference, reference, k=10)
    with pytest.raises(ValueError, match="different models"):
        knn_scores(reference[:, :8], reference, k=3)


def test_mpm_scores_are_minus_the_particle_log_likelihood():
    data = source(n=40)
    objective = mpm(data)
    scores = mpm_scores(objective, data, batch_size=16, n_passes=2, device="cpu", show_progress=False)
    batch = {k: torch.from_numpy(v) for k, v in data.batch(np.arange(16)).items() if k != "labels"}
    want = -objective.particle_log_likelihood(batch, n_passes=2, seed=0).numpy()
    np.testing.assert_allclose(scores[:16], want, rtol=1e-5)
    assert scores.shape == (40,) and np.isfinite(scores).all() and (scores > 0).all()
    contrastive = create_objective("contrastive", create_model("tiny", max_particles=SLOTS))
    with pytest.raises(ValueError, match="pretrained with the 'mpm' objective"):
        mpm_scores(contrastive, data, show_progress=False)


def test_rank_and_written_outputs(tmp_path):
    scores = np.array([0.1, 0.9, 0.5, 0.7], np.float32)
    meta = pd.DataFrame({"entry": [10, 11, 12, 13], "label": [0, 1, 0, 4]})
    ranked = rank(scores, meta, top=3)
    assert ranked["row"].tolist() == [1, 3, 2] and ranked["entry"].tolist() == [11, 13, 12]
    assert ranked["rank"].tolist() == [1, 2, 3]
    paths = write_scores(tmp_path / "out", scores, meta, "knn", top=2)
    assert pd.read_parquet(paths["scores"])["score"].tolist() == pytest.approx(scores.tolist())
    assert len(pd.read_csv(paths["ranked"])) == 2 and paths["plot"].stat().st_size > 1000
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["ranked.csv", "score_distribution.png", "scores.parquet"]
    with pytest.raises(ValueError, match="4 scores but 3 metadata rows"):
        rank(scores, meta[:3])


def test_max_sic_ignores_thresholds_with_too_little_background():
    # the best jet is signal and alone above every background jet: without a floor SIC is infinite
    scores = np.r_[10.0, np.linspace(0, 1, 1000), np.linspace(0.5, 1, 100)]
    is_signal = np.r_[True, np.zeros(1000, bool), np.ones(100, bool)]
    best = max_sic(scores, is_signal, min_background=50)
    assert best["eps_b"] * 1000 >= 50 and np.isfinite(best["sic"])
    with pytest.raises(ValueError, match="fewer than min_background"):
        max_sic(scores[:20], is_signal[:20], min_background=50)


def test_signal_mask_by_process_name():
    np.testing.assert_array_equal(signal_mask(np.array([0, 1, 4, -1]), ["top", "hbb"]), [False, True, True, False])
    with pytest.raises(ValueError, match="unknown process"):
        signal_mask(np.array([0]), "gluon")
