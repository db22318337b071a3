"""Readers: every format into the schema form, streaming, shards, validation, drop reporting."""

from __future__ import annotations

import logging
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jetfm.backbone.data.errors import DataError
from jetfm.backbone.data.readers import (
    ReadReport,
    count_jets,
    detect_format,
    iterate_jets,
    iterate_located_jets,
    open_jets,
    resolve_paths,
)
from jetfm.backbone.data.rootio import write_jets
from jetfm.backbone.data.schema import (
    ALL_BRANCHES,
    JET_BRANCHES,
    LABEL_BRANCHES,
    PARTICLE_BRANCHES,
    PID_FLAGS,
    PROCESSES,
)


def make_jets(n: int = 20, seed: int = 0, counts: np.ndarray | None = None) -> ak.Array:
    """Small synthetic jets in schema form with consistent kinematics (no Pythia)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 12, n) if counts is None else np.asarray(counts)
    n, total = len(counts), int(counts.sum())
    owner = np.repeat(np.arange(n), counts)
    axis_eta, axis_phi = rng.uniform(-2, 2, n), rng.uniform(-3, 3, n)
    pt = rng.uniform(1, 100, total)
    eta, phi = axis_eta[owner] + rng.normal(0, 0.2, total), axis_phi[owner] + rng.normal(0, 0.2, total)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2)
    # The stored jet axis is the constituent sum, as a reader derives it for foreign files.
    jpx, jpy, jpz = (np.bincount(owner, v, n) for v in (px, py, pz))
    with np.errstate(invalid="ignore"):  # empty jets have no axis
        jet_pt, jet_eta, jet_phi = np.hypot(jpx, jpy), np.arcsinh(jpz / np.hypot(jpx, jpy)), np.arctan2(jpy, jpx)
    pid = rng.integers(0, 5, total)
    part = {
        "part_px": px,
        "part_py": py,
        "part_pz": pz,
        "part_energy": energy,
        "part_deta": eta - jet_eta[owner],
        "part_dphi": (phi - jet_phi[owner] + np.pi) % (2 * np.pi) - np.pi,
        "part_charge": np.where(pid == 0, 1.0, 0.0),
        **{flag: (pid == k).astype(float) for k, flag in enumerate(PID_FLAGS)},
    }
    label = rng.integers(0, len(PROCESSES), n)
    fields = {name: ak.unflatten(part[name].astype(np.float32), counts) for name in PARTICLE_BRANCHES}
    fields.update(
        jet_pt=jet_pt,
        jet_eta=jet_eta,
        jet_phi=jet_phi,
        jet_energy=np.bincount(owner, energy, n),
        jet_mass=rng.uniform(10, 200, n),
        jet_sdmass=rng.uniform(10, 200, n),
        jet_nparticles=counts,
        **{f"jet_tau{k}": rng.uniform(0.1, 1, n) / k for k in range(1, 5)},
        **{LABEL_BRANCHES[p]: (label == k).astype(np.int32) for k, p in enumerate(PROCESSES)},
    )
    return ak.zip(fields, depth_limit=1)


def write_root(path: Path, jets: ak.Array) -> Path:
    return write_jets(path, jets, {"test": True})


def padded(jets: ak.Array, name: str, slots: int) -> np.ndarray:
    return ak.to_numpy(ak.fill_none(ak.pad_none(jets[name], slots, clip=True), 0.0))


def write_top_tagging(path: Path, jets: ak.Array, slots: int = 16, fmt: str = "table") -> Path:
    columns: dict[str, np.ndarray] = {}
    for prefix, name in (("E", "part_energy"), ("PX", "part_px"), ("PY", "part_py"), ("PZ", "part_pz")):
        values = padded(jets, name, slots)
        columns.update({f"{prefix}_{i}": values[:, i] for i in range(slots)})
    columns["is_signal_new"] = ak.to_numpy(jets[LABEL_BRANCHES["top"]]).astype(np.int64)
    pd.DataFrame(columns).to_hdf(path, key="table", format=fmt)
    return path


def write_aspen(path: Path, jets: ak.Array, slots: int = 16, features: int = 11) -> Path:
    pf = np.zeros((len(jets), slots, features), np.float32)
    for col, name in enumerate(("part_px", "part_py", "part_pz", "part_energy")):
        pf[:, :, col] = padded(jets, name, slots)
    charge = padded(jets, "part_charge", slots)
    pf[:, :, 8] = charge
    pf[:, :, 9] = np.where(charge != 0, 211, 22) * (pf[:, :, 3] > 0)
    kin = np.stack([ak.to_numpy(jets[b]) for b in ("jet_pt", "jet_eta", "jet_phi", "jet_sdmass")], axis=1)
    with h5py.File(path, "w") as f:
        f["PFCands"] = pf
        f["jet_kinematics"] = kin
    return path


def write_parquet(path: Path, jets: ak.Array, row_group_size: int = 7) -> Path:
    table = ak.to_arrow_table(jets[[b for b in ALL_BRANCHES if b != "jet_tau4"]], extensionarray=False)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def assert_kinematics_equal(got: ak.Array, want: ak.Array) -> None:
    assert len(got) == len(want)
    for name in ("part_px", "part_py", "part_pz", "part_energy"):
        assert ak.all(ak.num(got[name]) == ak.num(want[name]))
        np.testing.assert_allclose(ak.flatten(got[name]), ak.flatten(want[name]), rtol=1e-5, atol=1e-4)


# --------------------------------------------------------------------------- formats


def test_root_round_trip_keeps_every_branch(tmp_path):
    jets = make_jets(30)
    got = open_jets(write_root(tmp_path / "jets.root", jets))
    assert got.fields == list(ALL_BRANCHES)
    assert_kinematics_equal(got, jets)
    for name in (*JET_BRANCHES, *LABEL_BRANCHES.values()):
        np.testing.assert_allclose(ak.to_numpy(got[name]), ak.to_numpy(jets[name]), rtol=1e-6)


def test_format_is_detected_by_magic_not_extension(tmp_path):
    jets = make_jets(5)
    assert detect_format(write_root(tmp_path / "jets.h5", jets)) == "root"
    assert detect_format(write_parquet(tmp_path / "jets.root", jets)) == "parquet"
    assert detect_format(write_aspen(tmp_path / "jets.parquet", jets)) == "hdf5"
    assert len(open_jets(tmp_path / "jets.h5")) == 5


def test_foreign_root_without_optional_branches_is_completed(tmp_path):
    jets = make_jets(12)
    path = tmp_path / "foreign.root"
    # A JetClass-like file: kinematics only, plus a branch we do not know.
    branches = {b: jets[b] for b in ("part_px", "part_py", "part_pz", "part_energy")}
    write_tree(path, {**branches, "aux_genpart_pt": jets.jet_pt})
    report = ReadReport()
    got = open_jets(path, report=report)
    assert_kinematics_equal(got, jets)
    np.testing.assert_allclose(got.jet_pt, jets.jet_pt, rtol=1e-4)
    np.testing.assert_allclose(got.jet_energy, jets.jet_energy, rtol=1e-4)
    np.testing.assert_allclose(ak.flatten(got.part_deta), ak.flatten(jets.part_deta), atol=1e-4)
    np.testing.assert_allclose(ak.flatten(got.part_dphi), ak.flatten(jets.part_dphi), atol=1e-4)
    np.testing.assert_array_equal(got.jet_nparticles, ak.num(jets.part_px))
    assert np.isnan(ak.to_numpy(got.jet_sdmass)).all() and np.isnan(ak.to_numpy(got.jet_tau2)).all()
    assert all(ak.all(got[label] == 0) for label in LABEL_BRANCHES.values())
    assert "jet_sdmass" in report.filled[str(path)] and "part_deta" in report.filled[str(path)]


@pytest.mark.parametrize("fmt", ["table", "fixed"])
def test_top_tagging_hdf5(tmp_path, fmt):
    jets = make_jets(25)
    path = write_top_tagging(tmp_path / "top.h5", jets, fmt=fmt)
    assert [len(c) for c in iterate_jets(path, step_size=10)] == [10, 10, 5]
    assert_kinematics_equal(open_jets(path, entry_start=4, entry_stop=19), jets[4:19])
    got = open_jets(path)
    assert_kinematics_equal(got, jets)
    np.testing.assert_array_equal(got.label_Tbqq, jets.label_Tbqq)
    np.testing.assert_array_equal(got.label_QCD, 1 - ak.to_numpy(jets.label_Tbqq))
    np.testing.assert_allclose(got.jet_pt, jets.jet_pt, rtol=1e-4)


def test_aspen_hdf5(tmp_path):
    jets = make_jets(25)
    got = open_jets(write_aspen(tmp_path / "aspen.h5", jets))
    assert_kinematics_equal(got, jets)
    np.testing.assert_allclose(got.jet_sdmass, jets.jet_sdmass, rtol=1e-6)
    np.testing.assert_allclose(got.jet_pt, jets.jet_pt, rtol=1e-6)
    charged = ak.flatten(jets.part_charge) != 0
    np.testing.assert_array_equal(ak.flatten(got.part_isChargedHadron), charged)
    np.testing.assert_array_equal(ak.flatten(got.part_isPhoton), ~charged)
    assert all(ak.all(got[label] == 0) for label in LABEL_BRANCHES.values())


def test_parquet_across_row_groups(tmp_path):
    jets = make_jets(30)
    path = write_parquet(tmp_path / "jets.parquet", jets, row_group_size=7)
    assert_kinematics_equal(open_jets(path, entry_start=5, entry_stop=23), jets[5:23])
    chunks = list(iterate_jets(path, step_size=4))
    assert [len(c) for c in chunks] == [4] * 7 + [2]
    assert_kinematics_equal(ak.concatenate(chunks), jets)
    assert np.isnan(ak.to_numpy(open_jets(path).jet_tau4)).all()


# --------------------------------------------------------------------------- streaming and shards


def test_iterate_streams_in_bounded_chunks_across_shards(tmp_path):
    jets = make_jets(50)
    for k, (lo, hi) in enumerate(((0, 20), (20, 35), (35, 50))):
        write_root(tmp_path / "ds" / f"shard-{k:05d}.root", jets[lo:hi])
    (tmp_path / "ds" / ".shard-00003.root.123.tmp").write_bytes(b"half written")
    assert count_jets(tmp_path / "ds") == 50
    assert len(resolve_paths(str(tmp_path / "ds" / "shard-*.root"))) == 3
    chunks = list(iterate_jets(tmp_path / "ds", step_size=8))
    assert max(len(c) for c in chunks) <= 8
    assert_kinematics_equal(ak.concatenate(chunks), jets)
    assert_kinematics_equal(open_jets(tmp_path / "ds", entry_start=15, entry_stop=40), jets[15:40])
    assert_kinematics_equal(open_jets([tmp_path / "ds" / "shard-00002.root"]), jets[35:50])


# --------------------------------------------------------------------------- validation


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        open_jets(tmp_path / "nope.root")


def test_unknown_format_is_a_data_error(tmp_path):
    path = tmp_path / "jets.root"
    path.write_text("px,py,pz,E\n1,2,3,4\n")
    with pytest.raises(DataError, match=r"jets\.root.*not a ROOT, HDF5 or parquet"):
        count_jets(path)


@pytest.mark.parametrize("writer", [write_root, write_parquet, write_aspen])
def test_truncated_file_is_a_data_error(tmp_path, writer):
    path = writer(tmp_path / "jets.bin", make_jets(200))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"jets\.bin"):
        open_jets(path)


def write_tree(path: Path, branches: dict[str, ak.Array]) -> Path:
    import uproot

    with uproot.recreate(path) as f:
        f.mktree("tree", {name: values.type.content for name, values in branches.items()})
        f["tree"].extend(branches)
    return path


def test_missing_required_branch_names_it(tmp_path):
    jets = make_jets(4)
    path = write_tree(tmp_path / "nopz.root", {b: jets[b] for b in ("part_px", "part_py", "part_energy")})
    with pytest.raises(DataError, match=r"nopz\.root.*part_pz"):
        open_jets(path)


def test_branch_of_wrong_shape_is_a_data_error(tmp_path):
    jets = make_jets(4)
    branches = {b: jets[b] for b in ("part_px", "part_py", "part_pz", "part_energy")}
    path = write_tree(tmp_path / "shape.root", {**branches, "jet_pt": jets.part_px})
    with pytest.raises(DataError, match=r"shape\.root.*'jet_pt'.*one number per jet"):
        open_jets(path)


def test_rntuple_is_a_data_error(tmp_path):
    import uproot

    path = tmp_path / "rntuple.root"
    jets = make_jets(3)
    with uproot.recreate(path) as f:
        f["tree"] = {b: jets[b] for b in ("part_px", "part_py", "part_pz", "part_energy")}
    with pytest.raises(DataError, match=r"rntuple\.root.*not a TTree"):
        open_jets(path)


def test_string_column_is_a_data_error(tmp_path):
    jets = make_jets(4)
    table = ak.to_arrow_table(jets, extensionarray=False)
    table = table.set_column(table.schema.get_field_index("jet_pt"), "jet_pt", pa.array(["a", "b", "c", "d"]))
    path = tmp_path / "strings.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataError, match=r"strings\.parquet.*jet_pt"):
        open_jets(path)


def test_hdf5_of_unknown_layout_is_a_data_error(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((3, 4, 4))
    with pytest.raises(DataError, match=r"other\.h5.*PFCands.*table"):
        open_jets(path)


def test_top_tagging_without_constituent_columns_is_a_data_error(tmp_path):
    path = tmp_path / "top.h5"
    pd.DataFrame({"is_signal_new": [0, 1]}).to_hdf(path, key="table", format="table")
    with pytest.raises(DataError, match=r"top\.h5.*E_0"):
        open_jets(path)


# --------------------------------------------------------------------------- drops


def test_nan_and_empty_jets_are_dropped_and_counted(tmp_path, caplog):
    jets = make_jets(10, counts=[3, 0, 4, 2, 0, 5, 1, 2, 3, 4])
    px = ak.to_list(jets.part_px)
    px[2][1] = float("nan")
    jets = ak.with_field(jets, ak.Array(px), "part_px")
    energy = ak.to_numpy(jets.jet_energy).copy()
    energy[7] = np.inf
    jets = ak.with_field(jets, energy, "jet_energy")
    path = write_root(tmp_path / "bad.root", jets)
    report = ReadReport()
    with caplog.at_level(logging.WARNING):
        got = open_jets(path, report=report)
    assert len(got) == 6
    assert (report.dropped_empty, report.dropped_nonfinite, report.jets_kept) == (2, 2, 6)
    assert "dropped 4 of 10 jets" in caplog.text and "bad.root" in caplog.text
    np.testing.assert_array_equal(ak.num(got.part_px), [3, 2, 5, 1, 3, 4])
    assert "dropped 4" in report.message()


def test_parquet_nulls_are_dropped_as_invalid(tmp_path):
    jets = make_jets(4)
    table = ak.to_arrow_table(jets, extensionarray=False)
    pt = pa.array([1.0, None, 3.0, 4.0], pa.float32())
    table = table.set_column(table.schema.get_field_index("jet_pt"), "jet_pt", pt)
    path = tmp_path / "nulls.parquet"
    pq.write_table(table, path)
    report = ReadReport()
    assert len(open_jets(path, report=report)) == 3
    assert report.dropped_nonfinite == 1


# --------------------------------------------------------------------------- summary


def test_summarize_counts_classes_and_observables(tmp_path):
    import json

    from jetfm.backbone.data.summary import OBSERVABLES, summarize

    jets = make_jets(40, seed=4)
    path = write_root(tmp_path / "jets.root", jets)
    aspen = write_aspen(tmp_path / "aspen.h5", make_jets(5, seed=6))
    summary = summarize([path, aspen], step_size=7)
    json.dumps(summary, allow_nan=False)
    assert summary["num_jets"] == 45
    labels = np.stack([ak.to_numpy(jets[LABEL_BRANCHES[p]]) for p in PROCESSES], 1).argmax(1)
    want = {p: int((labels == k).sum()) for k, p in enumerate(PROCESSES) if (labels == k).any()}
    assert summary["counts"] == {**want, "unlabelled": 5}
    pt = summary["observables"]["pt"]
    all_pt = np.r_[ak.to_numpy(jets.jet_pt), ak.to_numpy(open_jets(aspen).jet_pt)]
    assert pt["n"] == 45 and pt["mean"] == pytest.approx(all_pt.mean(), rel=1e-5)
    assert pt["quantiles"]["0.5"] == pytest.approx(np.median(all_pt), rel=1e-5)
    # Aspen files carry no N-subjettiness: those jets are left out, not counted as NaN.
    assert summary["observables"]["tau21"]["n"] == 40
    assert summary["per_class"]["unlabelled"]["tau21"]["mean"] is None
    assert set(summary["per_class"]["top"]) == set(OBSERVABLES)


def test_located_jets_give_file_and_entry_of_every_kept_jet(tmp_path):
    # file b holds an empty jet at entry 2 and a NaN jet at entry 4: both dropped, leaving gaps
    write_root(tmp_path / "a.root", make_jets(5, seed=1))
    jets_b = make_jets(6, counts=[3, 2, 0, 4, 5, 1], seed=2)
    jets_b = ak.with_field(jets_b, np.where(np.arange(6) == 4, np.nan, jets_b.jet_mass), "jet_mass")
    write_root(tmp_path / "b.root", jets_b)
    located = list(iterate_located_jets(tmp_path, step_size=4, entry_start=3))
    got = [(loc.file_index, entry) for loc in located for entry in loc.entries.tolist()]
    assert got == [(0, 3), (0, 4), (1, 0), (1, 1), (1, 3), (1, 5)]
    assert sum(len(loc.jets) for loc in located) == len(got)
