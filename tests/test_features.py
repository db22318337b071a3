"""Model-ready tensors: hand-computed features, ordering, padding, truncation, labels."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
from test_readers import make_jets, write_root

from jetfm.backbone.data.errors import DataError
from jetfm.backbone.data.features import FeatureConfig, JetTensors, iterate_tensors, make_tensors
from jetfm.backbone.data.schema import LABEL_BRANCHES, PID_FLAGS


def with_particles(jets: ak.Array, **fields: list[list[float]]) -> ak.Array:
    for name, values in fields.items():
        jets = ak.with_field(jets, ak.values_astype(ak.Array(values), np.float32), name)
    return jets


def two_particle_jet() -> ak.Array:
    """One jet, soft particle first so that pT ordering has to swap them."""
    jets = with_particles(
        make_jets(1, counts=[2]),
        part_px=[[0.0, 3.0]],
        part_py=[[1.0, 4.0]],
        part_pz=[[0.0, 0.0]],
        part_energy=[[1.0, 5.0]],
        part_deta=[[0.3, 0.1]],
        part_dphi=[[0.4, -0.2]],
        part_charge=[[0.0, -1.0]],
        part_isChargedHadron=[[0.0, 1.0]],
        part_isNeutralHadron=[[0.0, 0.0]],
        part_isPhoton=[[1.0, 0.0]],
        part_isElectron=[[0.0, 0.0]],
        part_isMuon=[[0.0, 0.0]],
    )
    jets = ak.with_field(jets, np.array([10.0], np.float32), "jet_pt")
    return ak.with_field(jets, np.array([6.0], np.float32), "jet_energy")


def test_hand_computed_two_particle_jet():
    out = make_tensors(two_particle_jet(), FeatureConfig(max_particles=4))
    hard = [np.log(5), np.log(5), np.log(0.5), np.log(5 / 6), np.hypot(0.1, 0.2), 0.1, -0.2]
    soft = [0.0, 0.0, np.log(0.1), np.log(1 / 6), 0.5, 0.3, 0.4]
    np.testing.assert_allclose(out.features[0, :2], [hard, soft], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out.mask, [[True, True, False, False]])
    np.testing.assert_array_equal(out.vectors[0, :2], [[3, 4, 0, 5], [0, 1, 0, 1]])
    assert not out.features[0, 2:].any() and not out.vectors[0, 2:].any()
    assert out.features.dtype == np.float32 and out.vectors.dtype == np.float32
    assert out.mask.dtype == bool and out.labels.dtype == np.int64
    assert out.nparticles[0] == 2


def test_charge_and_pid_follow_the_kinematics():
    cfg = FeatureConfig(max_particles=3, include_charge_pid=True)
    out = make_tensors(two_particle_jet(), cfg)
    assert out.features.shape == (1, 3, 13) and cfg.num_features == 13
    assert cfg.feature_names[7:] == ("part_charge", *PID_FLAGS)
    np.testing.assert_array_equal(out.features[0, 0, 7:], [-1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(out.features[0, 1, 7:], [0, 0, 0, 1, 0, 0])


def test_particles_are_pt_ordered_and_padding_is_zero():
    jets = make_jets(200, seed=3)
    out = make_tensors(jets, FeatureConfig(max_particles=16))
    log_pt = np.where(out.mask, out.features[..., 0], -1e30)
    assert (np.diff(log_pt, axis=1) <= 0).all()
    assert not out.features[~out.mask].any() and not out.vectors[~out.mask].any()
    np.testing.assert_array_equal(out.mask.sum(axis=1), np.minimum(ak.num(jets.part_px), 16))
    # Same particles, only reordered: the four-momentum sums are unchanged.
    np.testing.assert_allclose(out.vectors.sum(axis=1)[:, 3], ak.sum(jets.part_energy, axis=1), rtol=1e-5)


def test_truncation_keeps_the_hardest_particles():
    pts = [[1.0, 7.0, 3.0, 9.0, 5.0, 2.0]]
    jets = with_particles(
        make_jets(1, counts=[6]),
        part_px=pts,
        part_py=[[0.0] * 6],
        part_pz=[[0.0] * 6],
        part_energy=pts,
    )
    out = make_tensors(jets, FeatureConfig(max_particles=3))
    np.testing.assert_allclose(out.vectors[0, :, 0], [9, 7, 5])
    assert out.mask.all() and out.nparticles[0] == 6


def test_labels_and_jet_level_arrays():
    jets = make_jets(6, seed=1)
    jets = ak.with_field(jets, np.zeros(6, np.int32), LABEL_BRANCHES["hbb"])
    tau1 = ak.to_numpy(jets.jet_tau1).copy()
    tau1[2] = 0.0
    jets = ak.with_field(jets, tau1, "jet_tau1")
    onehot = np.stack([ak.to_numpy(jets[branch]) for branch in LABEL_BRANCHES.values()], 1)
    out = make_tensors(jets)
    want = np.where(onehot.sum(1) == 1, onehot.argmax(1), -1)
    np.testing.assert_array_equal(out.labels, want)
    assert np.isnan(out.tau21[2]) and np.isfinite(np.delete(out.tau21, 2)).all()
    np.testing.assert_allclose(out.tau32, ak.to_numpy(jets.jet_tau3 / jets.jet_tau2), rtol=1e-6)
    np.testing.assert_allclose(out.sdmass, ak.to_numpy(jets.jet_sdmass), rtol=1e-6)


def test_empty_input_gives_empty_tensors():
    out = make_tensors(make_jets(3)[:0], FeatureConfig(max_particles=8))
    assert out.features.shape == (0, 8, 7) and len(out) == 0


def test_iterate_tensors_matches_in_memory_with_and_without_prefetch(tmp_path):
    jets = make_jets(40, seed=2)
    path = write_root(tmp_path / "jets.root", jets)
    whole = make_tensors(jets)
    for prefetch in (True, False):
        streamed = JetTensors.concat(list(iterate_tensors(path, step_size=9, prefetch=prefetch)))
        for name, values in whole.arrays().items():
            np.testing.assert_allclose(getattr(streamed, name), values, rtol=1e-6)


def test_prefetch_passes_reader_errors_through(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        next(iterate_tensors(tmp_path / "missing.root"))


def test_config_rejects_nonsense():
    with pytest.raises(DataError, match="max_particles"):
        FeatureConfig(max_particles=0)
    assert FeatureConfig.from_dict(FeatureConfig(64, True).to_dict()) == FeatureConfig(64, True)
