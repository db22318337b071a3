"""Generation with Pythia 8 + FastJet: tests that fail if the physics or the bookkeeping breaks."""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from conftest import N_PER_PROCESS  # noqa: E402
from conftest import read_jets as _read

from jetfm.backbone.data import generate as gen  # noqa: E402
from jetfm.backbone.data.errors import DataError, GenerationError  # noqa: E402
from jetfm.backbone.data.generate import GenerationConfig, generate, plan_shards  # noqa: E402
from jetfm.backbone.data.rootio import read_provenance, write_jets  # noqa: E402
from jetfm.backbone.data.schema import ALL_BRANCHES, LABEL_BRANCHES, PROCESSES  # noqa: E402


def _mass_mode(mass: np.ndarray) -> float:
    """Centre of the most populated 10 GeV bin after a 3-bin running mean (robust for ~200 jets: the
    tests pass on seeds 11, 12 and 13)."""
    counts, edges = np.histogram(mass, bins=40, range=(0, 400))
    smooth = np.convolve(counts, np.ones(3) / 3, mode="same")
    k = int(np.argmax(smooth))
    return 0.5 * (edges[k] + edges[k + 1])


def test_schema_round_trip(physics_sample):
    jets = physics_sample["top"]
    assert set(ALL_BRANCHES) <= set(jets.fields)
    assert len(jets) == N_PER_PROCESS
    assert ak.all(jets.label_Tbqq == 1) and ak.all(jets.label_QCD == 0)
    n_kept = ak.num(jets.part_px)
    assert ak.all(n_kept == np.minimum(jets.jet_nparticles, 128))
    # pT-ordered constituents inside the anti-kT cone (a distance in rapidity, not pseudorapidity)
    pt = np.hypot(jets.part_px, jets.part_py)
    assert ak.all(pt[:, :-1] >= pt[:, 1:] - 1e-3)
    y = 0.5 * np.log((jets.part_energy + jets.part_pz) / (jets.part_energy - jets.part_pz))
    jet_pz = jets.jet_pt * np.sinh(jets.jet_eta)
    jet_y = 0.5 * np.log((jets.jet_energy + jet_pz) / (jets.jet_energy - jet_pz))
    dr = ak.flatten(np.hypot(y - jet_y, jets.part_dphi))
    assert ak.max(dr) < 1.0 and ak.mean(dr < 0.8) > 0.99
    assert ak.all((jets.jet_pt >= 550) & (jets.jet_pt < 650) & (abs(jets.jet_eta) < 2))
    # each particle has exactly one PID flag
    flags = sum(jets[f] for f in ("part_isChargedHadron", "part_isNeutralHadron", "part_isPhoton",
                                  "part_isElectron", "part_isMuon"))
    assert ak.all(flags == 1)


@pytest.mark.parametrize(
    "process, low, high",
    [
        ("top", 150, 200),
        ("wqq", 65, 95),
        ("zqq", 75, 105),
        ("hbb", 100, 140),
        ("hcc", 100, 145),
        ("hgg", 100, 145),
        ("h4q", 100, 145),
        # The neutrino escapes: the visible mass of H -> l nu qq' and t -> b l nu sits below the resonance.
        ("hlvqq", 75, 125),
        ("tbl", 90, 165),
    ],
)
def test_mass_peaks(physics_sample, process, low, high):
    mode = _mass_mode(ak.to_numpy(physics_sample[process].jet_mass))
    assert low <= mode <= high, f"{process} jet-mass peak at {mode} GeV, expected {low}-{high}"


def test_qcd_mass_falls(physics_sample):
    mass = ak.to_numpy(physics_sample["qcd"].jet_mass)
    counts, _ = np.histogram(mass, bins=[0, 100, 200, 300, 400])
    assert counts[1] > counts[2] > counts[3], counts
    assert _mass_mode(mass) < 120


def test_nsubjettiness_separates(physics_sample):
    def mean_ratio(proc, num, den):
        j = physics_sample[proc]
        return float(np.mean(j[num] / j[den]))

    assert mean_ratio("top", "jet_tau3", "jet_tau2") < mean_ratio("qcd", "jet_tau3", "jet_tau2") - 0.1
    assert mean_ratio("wqq", "jet_tau2", "jet_tau1") < mean_ratio("qcd", "jet_tau2", "jet_tau1") - 0.1


def test_h4q_is_four_pronged(physics_sample):
    def mean_tau43(proc):
        j = physics_sample[proc]
        return float(np.mean(j.jet_tau4 / j.jet_tau3))

    assert mean_tau43("h4q") < mean_tau43("qcd") - 0.08
    assert mean_tau43("h4q") < mean_tau43("hbb") - 0.05  # four prongs, not two


@pytest.mark.parametrize("process", ["tbl", "hlvqq"])
def test_leptonic_classes_carry_their_lepton(physics_sample, process):
    """The truth rule puts the W's charged lepton inside the jet, and it arrives flagged as one."""

    def lepton_fraction(proc):
        j = physics_sample[proc]
        return float(np.mean(ak.to_numpy(ak.sum(j.part_isElectron + j.part_isMuon, axis=1)) >= 1))

    assert lepton_fraction(process) > 0.97
    assert lepton_fraction(process) > lepton_fraction("qcd") + 0.5
    assert lepton_fraction("top") < 0.6  # the hadronic top keeps its W's quarks, not a lepton


def test_every_class_has_its_label(physics_sample):
    for process, jets in physics_sample.items():
        branch = LABEL_BRANCHES[process]
        assert ak.all(jets[branch] == 1), process
        assert ak.all(sum(jets[b] for b in LABEL_BRANCHES.values()) == 1), process


def test_softdrop_mass(physics_sample):
    top, qcd = physics_sample["top"], physics_sample["qcd"]
    assert ak.all(top.jet_sdmass <= top.jet_mass + 1e-3)
    assert np.median(top.jet_sdmass) > 140 and np.median(qcd.jet_sdmass) < 80


def test_same_seed_same_jets_any_workers(tmp_path):
    config = GenerationConfig(processes=("qcd", "wqq"), n_jets=20, seed=5, jets_per_shard=5)
    a = generate(config, tmp_path / "a", workers=1, show_progress=False)
    b = generate(config, tmp_path / "b", workers=2, show_progress=False)
    assert [s.n_jets for s in a.shards] == [s.n_jets for s in b.shards]
    for sa, sb in zip(sorted(a.shards, key=lambda s: s.path), sorted(b.shards, key=lambda s: s.path)):
        ja, jb = _read(sa.path), _read(sb.path)
        for field in ja.fields:
            assert ak.all(ja[field] == jb[field]), field
    other = generate(GenerationConfig(processes=("qcd",), n_jets=10, seed=6), tmp_path / "c", show_progress=False)
    assert not np.array_equal(_read(other.shards[0].path).jet_pt, _read(a.shards[0].path).jet_pt)


def test_provenance_stored(tmp_path):
    config = GenerationConfig(processes=("zqq",), n_jets=5, seed=9)
    s = generate(config, tmp_path, show_progress=False)
    prov = read_provenance(s.shards[0].path)
    assert prov["seed"] == 9 and prov["process"] == "zqq"
    assert "Beams:eCM = 14000" in prov["pythia_settings"]
    assert any(line.startswith("Random:seed") for line in prov["pythia_settings"])


def test_rerun_completes_only_missing_shards(tmp_path):
    config = GenerationConfig(processes=("qcd",), n_jets=20, seed=2, jets_per_shard=10)
    first = generate(config, tmp_path, show_progress=False)
    keep, lost = sorted(s.path for s in first.shards)
    mtime = os.stat(keep).st_mtime_ns
    os.remove(lost)
    again = generate(config, tmp_path, show_progress=False)
    assert sorted(s.skipped for s in again.shards) == [False, True]
    assert os.stat(keep).st_mtime_ns == mtime
    assert len(_read(lost)) == 10


def test_truncated_shard_is_regenerated(tmp_path):
    config = GenerationConfig(processes=("qcd",), n_jets=8, seed=2)
    path = generate(config, tmp_path, show_progress=False).shards[0].path
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    again = generate(config, tmp_path, show_progress=False)
    assert not again.shards[0].skipped
    assert len(_read(path)) == 8


def test_batch_shards_cover_the_sample(tmp_path):
    config = GenerationConfig(processes=("qcd", "top"), n_jets=20, seed=4, jets_per_shard=5)
    for i in range(3):
        generate(config, tmp_path, shard=f"{i}/3", show_progress=False)
    planned = {t.path for t in plan_shards(config, tmp_path)}
    assert {str(p) for p in tmp_path.glob("*.root")} == planned
    assert sum(len(_read(p)) for p in planned) == 20


def test_other_settings_in_same_folder_refused(tmp_path):
    generate(GenerationConfig(processes=("qcd",), n_jets=3, seed=1), tmp_path, show_progress=False)
    with pytest.raises(DataError, match="other settings"):
        generate(GenerationConfig(processes=("qcd",), n_jets=3, seed=2), tmp_path, show_progress=False)


def test_class_mix():
    config = GenerationConfig(processes=("top", "qcd", "hbb"), n_jets=10)
    assert config.jets_per_process() == {"top": 4, "qcd": 3, "hbb": 3}
    mixed = GenerationConfig(processes=("top", "qcd"), n_jets=100, fractions=(1, 3))
    assert mixed.jets_per_process() == {"top": 25, "qcd": 75}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"processes": ("tops",)}, "unknown process 'tops'"),
        ({"processes": ()}, "no process"),
        ({"pt_min": 700, "pt_max": 600}, "pT window 700-600"),
        ({"pt_min": 5, "pt_max": 10}, "pT window"),
        ({"pt_max": 9000}, "pt_max = 9000"),
        ({"n_jets": 0}, "n_jets"),
        ({"fractions": (1.0, 2.0)}, "fractions"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"processes": ("qcd",), "n_jets": 10, **kwargs}
    with pytest.raises(DataError, match=match):
        GenerationConfig(**args)


def test_bad_shard_spec(tmp_path):
    config = GenerationConfig(processes=("qcd",), n_jets=1)
    for spec in ("3/2", "a/b", "1"):
        with pytest.raises(DataError, match="--shard"):
            generate(config, tmp_path, shard=spec, show_progress=False)


def test_unfillable_window(tmp_path, monkeypatch):
    # Top jets at 20-30 GeV never contain all three quarks in R = 0.8: Pythia cannot fill this.
    monkeypatch.setattr(gen, "MAX_EVENTS_WITHOUT_JET", 128)
    config = GenerationConfig(processes=("top",), n_jets=5, pt_min=20, pt_max=30)
    with pytest.raises(GenerationError, match="20-30 GeV"):
        generate(config, tmp_path, show_progress=False)
    assert not list(tmp_path.glob("*.root"))


def test_interrupted_write_keeps_good_file(tmp_path, physics_sample, monkeypatch):
    path = tmp_path / "good.root"
    jets = physics_sample["qcd"][:10]
    write_jets(path, jets, {"seed": 1})
    before = path.read_bytes()

    def explode(self, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(uproot.writing.writable.WritableTree, "extend", explode)
    with pytest.raises(KeyboardInterrupt):
        write_jets(path, physics_sample["top"], {"seed": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["good.root"]


def test_labels_one_hot(physics_sample):
    for process, jets in physics_sample.items():
        onehot = np.stack([ak.to_numpy(jets[b]) for b in LABEL_BRANCHES.values()], axis=1)
        assert np.all(onehot.sum(axis=1) == 1)
        assert np.all(onehot[:, PROCESSES.index(process)] == 1)


def test_truth_level_skip_changes_no_jet(tmp_path, monkeypatch):
    """Events ruled out from their truth record before their particles are read (the speed-up) are
    exactly those that could give no jet: the output is the same as reading every event."""
    config = GenerationConfig(processes=("tbl",), n_jets=12, seed=21)
    fast = generate(config, tmp_path / "fast", show_progress=False)
    assert fast.shards[0].n_skipped > 0
    monkeypatch.setattr(gen, "could_be_contained", lambda *args, **kwargs: True)
    slow = generate(config, tmp_path / "slow", show_progress=False)
    assert slow.shards[0].n_skipped == 0
    a, b = _read(fast.shards[0].path), _read(slow.shards[0].path)
    for field in a.fields:
        assert ak.all(a[field] == b[field]), field
