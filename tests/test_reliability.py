"""Issue 14: a dataset is what its manifest says -- nothing registered that cannot be read, nothing
silently missing, no traceback on any input. Each test is the regression test of one case of the
issue; docs/reliability.md lists the cases with what they gave before and after."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot
from test_readers import make_jets, write_aspen, write_parquet, write_root, write_top_tagging

from jetfm.backbone.atomic import recover_folder, replace_folder
from jetfm.backbone.data.errors import DataError
from jetfm.backbone.data.readers import check_files, open_jets
from jetfm.backbone.data.schema import LABEL_BRANCHES, PARTICLE_BRANCHES
from jetfm.errors import UsageError
from jetfm.tools.catalog import Catalog, CatalogError, validate_name
from jetfm.tools.cli import main
from jetfm.tools.registry import ToolError, validate_args


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    monkeypatch.setenv("JETFM_HOME", str(root))
    return root


def cut_short(source: Path, target: Path, fraction: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def two_shards(folder: Path, n: int = 300) -> Path:
    folder.mkdir(parents=True)
    write_root(folder / "a.root", make_jets(n, seed=1))
    write_root(folder / "b.root", make_jets(n, seed=2))
    return folder


# --- 1. import reads every file through to its last entry ----------------------------------------


def test_import_refuses_a_file_cut_short(workspace, tmp_path, capsys):
    full = write_root(tmp_path / "full.root", make_jets(3000, seed=1))
    cut = cut_short(full, tmp_path / "cut.root", 0.6)
    assert main(["import", str(cut), "--name", "cut"]) == 2
    err = capsys.readouterr().err
    assert "cut.root" in err and "truncated" in err and "Nothing was registered" in err
    assert Catalog(workspace).find("cut") is None


def test_import_of_a_folder_names_the_file_that_cannot_be_read(workspace, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_root(folder / "a.root", make_jets(100, seed=1))
    cut_short(write_root(tmp_path / "big.root", make_jets(3000, seed=2)), folder / "b.root", 0.6)
    assert main(["import", str(folder), "--name", "mixed"]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 file(s)" in err and f"{folder / 'b.root'}: truncated" in err and "a.root" not in err
    assert Catalog(workspace).find("mixed") is None


def test_a_corrupt_last_basket_inside_the_file_is_found(tmp_path):
    path = write_root(tmp_path / "jets.root", make_jets(500, seed=3))
    with uproot.open(path) as f:
        branch = f["tree"]["jet_tau4"]
        seek, size = int(branch.member("fBasketSeek")[0]), int(branch.member("fBasketBytes")[0])
    data = bytearray(path.read_bytes())
    data[seek + size - 40 : seek + size] = b"\xff" * 40  # the compressed payload's tail, within the file
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="cannot read its last entry"):
        check_files(path)


def test_import_records_every_file_it_read(workspace, tmp_path):
    folder = two_shards(tmp_path / "two")
    assert main(["import", str(folder), "--name", "two"]) == 0
    art = Catalog(workspace).get("two")
    assert art.metrics["n_jets"] == 600
    assert [(Path(e["path"]).name, e["n_jets"]) for e in art.meta["manifest"]] == [("a.root", 300), ("b.root", 300)]
    assert all(e["size"] == Path(e["path"]).stat().st_size for e in art.meta["manifest"])


# --- 2. a missing shard is refused by every read, and nothing is replaced by less ------------------


def test_a_missing_shard_is_refused_and_the_good_embedding_is_kept(workspace, tmp_path, capsys):
    from jetfm.backbone.embed import load_embeddings
    from jetfm.tools.search import embed

    folder = two_shards(tmp_path / "two")
    assert main(["import", str(folder), "--name", "two"]) == 0
    emb = embed("jetfm-default", "two", show_progress=False)
    assert emb.data["n_jets"] == 600
    away = tmp_path / "b-moved.root"
    shutil.move(folder / "b.root", away)
    capsys.readouterr()
    assert main(["describe", "two"]) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'b.root'} (300 jets) is missing" in err and "Nothing was read" in err
    assert main(["embed", "--dataset", "two"]) == 2  # the CLI runs it here; a refusal, not a smaller embedding
    assert "b.root (300 jets) is missing" in capsys.readouterr().err
    assert len(load_embeddings(emb.data["path"])) == 600
    assert Catalog(workspace).get("two").metrics["n_jets"] == 600
    assert Catalog(workspace).get(emb.data["name"]).metrics["n_jets"] == 600
    assert main(["list"]) == 0
    assert "!! INCOMPLETE" in capsys.readouterr().out
    shutil.move(away, folder / "b.root")
    assert main(["describe", "two"]) == 0
    assert "600 jets" in capsys.readouterr().out


def test_a_missing_generated_shard_names_the_command_that_makes_it_again(workspace, capsys):
    pytest.importorskip("pythia8mc")
    assert main(["generate", "--processes", "top,qcd", "--n-jets", "20", "--name", "tq", "--seed", "3"]) == 0
    shard = workspace / "datasets" / "tq" / "qcd-0000.root"
    shard.unlink()
    capsys.readouterr()
    assert main(["describe", "tq"]) == 2
    err = capsys.readouterr().err
    assert "qcd-0000.root (10 jets) is missing" in err
    command = re.search(r"`(jetfm generate [^`]+)`", err).group(1)
    assert "--seed 3" in command and "--n-jets 20" in command
    assert main(shlex.split(command)[1:]) == 0  # the seeded shard comes back
    capsys.readouterr()
    assert main(["describe", "tq"]) == 0
    assert "'tq': 20 jets" in capsys.readouterr().out


def test_a_dataset_registered_before_manifests_is_checked_as_far_as_it_can_be(workspace, tmp_path, capsys):
    folder = two_shards(tmp_path / "old", n=20)
    Catalog(workspace).register("old", "dataset", folder, meta={"source": "imported", "files": 2})
    assert main(["describe", "old"]) == 0
    (folder / "b.root").unlink()
    capsys.readouterr()
    assert main(["describe", "old"]) == 2
    assert "holds 1 data file(s), registered with 2" in capsys.readouterr().err


def test_a_glob_import_reads_its_files(workspace, tmp_path, capsys):
    folder = two_shards(tmp_path / "g", n=20)
    assert main(["import", str(folder / "*.root"), "--name", "g"]) == 0
    assert main(["describe", "g"]) == 0
    assert "'g': 40 jets" in capsys.readouterr().out


# --- 3. a deleted dataset is flagged, and search refuses its stale vectors --------------------------


def test_a_deleted_dataset_is_flagged_and_searches_refuse(workspace, tmp_path, capsys):
    from jetfm.tools.search import build_index, search_similar

    folder = two_shards(tmp_path / "two", n=100)
    assert main(["import", str(folder), "--name", "two"]) == 0
    build_index("two", "jetfm-default")
    assert len(search_similar("two", k=3).data["results"]) == 3
    shutil.rmtree(folder)
    capsys.readouterr()
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"dataset +two .*!! MISSING", listing)
    assert re.search(r"embedding +emb-jetfm-default-two .*!! STALE", listing)
    assert re.search(r"index +idx-two-jetfm-default .*!! STALE", listing)
    with pytest.raises(DataError, match="does not exist"):
        search_similar("two", k=3)
    with pytest.raises(DataError, match="does not exist"):
        search_similar(None, index="idx-two-jetfm-default", k=3, query_file=str(tmp_path / "x.root"))


def test_text_search_refuses_a_deleted_dataset(workspace, tmp_path):
    pytest.importorskip("transformers")  # the text tower
    from jetfm.retrieval.align import load_aligner
    from jetfm.retrieval.index import JetIndex
    from jetfm.tools.search import embeddings_for
    from jetfm.tools.text_search import DEFAULT_ALIGNER, aligner_folder, search_text
    from jetfm.tools.workspace import artifact_dir

    folder = two_shards(tmp_path / "two", n=50)
    assert main(["import", str(folder), "--name", "two"]) == 0
    emb = embeddings_for("jetfm-default", "two", show_progress=False)
    # The aligned index a first text search saves (vectors made up: only its reuse matters here).
    aligner = load_aligner(aligner_folder(DEFAULT_ALIGNER, Catalog(workspace))[0])
    vectors = np.random.default_rng(0).standard_normal((len(emb), aligner.config.shared_dim)).astype(np.float32)
    JetIndex.build(vectors, emb.metadata, model=aligner.ref).save(artifact_dir("index", f"txt-two-{DEFAULT_ALIGNER}"))
    assert len(search_text("jets from the decay of a heavy particle", k=3, dataset="two").data["results"]) == 3
    shutil.rmtree(folder)
    with pytest.raises(DataError, match="does not exist"):
        search_text("jets from the decay of a heavy particle", k=3, dataset="two")


def test_embeddings_follow_a_model_retrained_under_the_same_name(workspace, tmp_path):
    """Vectors of old weights are never served for new ones (a model saved again under its name, or
    a new shipped default after an upgrade): the set is recomputed and says which weights made it."""
    import torch

    from jetfm.backbone.embed import weights_fingerprint
    from jetfm.backbone.registry import create_model
    from jetfm.tools.search import embeddings_for

    folder = two_shards(tmp_path / "two", n=40)
    assert main(["import", str(folder), "--name", "two"]) == 0
    model_dir = tmp_path / "mine"
    torch.manual_seed(0)
    create_model("tiny").save_pretrained(model_dir)
    first = embeddings_for(str(model_dir), "two", show_progress=False)
    first_vectors = np.array(first.vectors)
    torch.manual_seed(1)
    retrained = create_model("tiny")
    retrained.save_pretrained(model_dir)
    second = embeddings_for(str(model_dir), "two", show_progress=False)
    assert second.model.fingerprint == weights_fingerprint(retrained) != first.model.fingerprint
    assert not np.allclose(np.array(second.vectors), first_vectors)


# --- 4. every reader's layout check: wrong object kinds, shapes and dtypes --------------------------


def _aspen(pf=None, kin=None):
    """An Aspen-style file; ``pf``/``kin`` are the arrays to store, or functions that put something there."""

    def write(path: Path) -> None:
        with h5py.File(path, "w") as f:
            if callable(pf):
                pf(f)
            else:
                f.create_dataset("PFCands", data=np.ones((5, 4, 4), np.float32) if pf is None else pf)
            if callable(kin):
                kin(f)
            elif kin is not None:
                f.create_dataset("jet_kinematics", data=kin)

    return write


def _root(branches: dict[str, tuple[object, object]]):
    def write(path: Path) -> None:
        with uproot.recreate(path) as f:
            tree = f.mktree("tree", {k: t for k, (t, _) in branches.items()})
            tree.extend({k: v for k, (_, v) in branches.items()})

    return write


def _root_other(put):
    def write(path: Path) -> None:
        with uproot.recreate(path) as f:
            put(f)

    return write


def _parquet(columns: dict[str, object]):
    def write(path: Path) -> None:
        pq.write_table(pa.table(columns), path)

    return write


def _top_tagging(frame: pd.DataFrame | None = None, put=None):
    def write(path: Path) -> None:
        if put is not None:
            with h5py.File(path, "w") as f:
                put(f)
        else:
            frame.to_hdf(path, key="table", format="table")

    return write


_JETS = make_jets(5, seed=9)
_FLOATS = {n: ak.values_astype(_JETS[n], np.float32) for n in ("part_px", "part_py", "part_pz", "part_energy")}


def _with_part(drop: str | None = None, **fields: object) -> dict:
    """Branches part_px, part_py, ... (one jagged record "part", as backbone.data.rootio writes them)."""
    record = {n[5:]: v for n, v in _FLOATS.items() if n != drop}
    record.update(fields)
    zipped = ak.zip(record)
    return {"part": (zipped.type.content, zipped)}


_PARTS = _with_part()


def _columns(**overrides: object) -> dict:
    lists = {n: pa.array(ak.to_list(v), pa.list_(pa.float32())) for n, v in _FLOATS.items()}
    lists.update(overrides)
    return lists


def _toptag_frame(kind: str) -> pd.DataFrame:
    columns = {f"{p}_{i}": np.ones(5, np.float32) for p in ("E", "PX", "PY", "PZ") for i in range(2)}
    if kind == "bool":
        columns["PX_0"] = np.ones(5, bool)
    elif kind == "text":
        columns["E_1"] = np.array(["a"] * 5, dtype=object)
    elif kind == "no-constituents":
        columns = {"is_signal_new": np.ones(5, np.int64)}
    elif kind == "text-label":
        columns["is_signal_new"] = np.array(["top"] * 5, dtype=object)
    return pd.DataFrame(columns)


LAYOUT_FUZZ = {
    # HDF5, Aspen Open Jets: PFCands (N, P, F) and jet_kinematics (N, k)
    "aspen-pfcands-group": (_aspen(pf=lambda f: f.create_group("PFCands")), "h5"),
    "aspen-pfcands-group-with-data": (
        _aspen(pf=lambda f: f.create_group("PFCands").create_dataset("x", data=[1])),
        "h5",
    ),
    "aspen-pfcands-dangling-link": (_aspen(pf=lambda f: f.__setitem__("PFCands", h5py.SoftLink("/nowhere"))), "h5"),
    "aspen-pfcands-external-link": (
        _aspen(pf=lambda f: f.__setitem__("PFCands", h5py.ExternalLink("/no/such.h5", "/x"))),
        "h5",
    ),
    "aspen-pfcands-scalar": (_aspen(pf=np.float32(3)), "h5"),
    "aspen-pfcands-1d": (_aspen(pf=np.ones(5)), "h5"),
    "aspen-pfcands-2d": (_aspen(pf=np.ones((5, 4))), "h5"),
    "aspen-pfcands-4d": (_aspen(pf=np.ones((5, 4, 4, 2))), "h5"),
    "aspen-pfcands-3-features": (_aspen(pf=np.ones((5, 4, 3))), "h5"),
    "aspen-pfcands-bool": (_aspen(pf=np.ones((5, 4, 4), bool)), "h5"),
    "aspen-pfcands-bytes": (_aspen(pf=np.full((5, 4, 4), b"a")), "h5"),
    "aspen-pfcands-compound": (_aspen(pf=np.zeros((5, 4, 4), dtype=[("a", "f4"), ("b", "i4")])), "h5"),
    "aspen-pfcands-complex": (_aspen(pf=np.ones((5, 4, 4), np.complex64)), "h5"),
    "aspen-kinematics-group": (_aspen(kin=lambda f: f.create_group("jet_kinematics")), "h5"),
    "aspen-kinematics-dangling-link": (
        _aspen(kin=lambda f: f.__setitem__("jet_kinematics", h5py.SoftLink("/nowhere"))),
        "h5",
    ),
    "aspen-kinematics-1d": (_aspen(kin=np.ones(5)), "h5"),
    "aspen-kinematics-scalar": (_aspen(kin=np.float32(1)), "h5"),
    "aspen-kinematics-3-columns": (_aspen(kin=np.ones((5, 3))), "h5"),
    "aspen-kinematics-bool": (_aspen(kin=np.ones((5, 4), bool)), "h5"),
    "aspen-kinematics-other-length": (_aspen(kin=np.ones((6, 4))), "h5"),
    # HDF5, top-tagging reference: a pandas table "table"
    "toptag-table-is-a-dataset": (_top_tagging(put=lambda f: f.create_dataset("table", data=np.ones(5))), "h5"),
    "toptag-table-empty-group": (_top_tagging(put=lambda f: f.create_group("table")), "h5"),
    "toptag-bool-momentum": (_top_tagging(_toptag_frame("bool")), "h5"),
    "toptag-text-energy": (_top_tagging(_toptag_frame("text")), "h5"),
    "toptag-no-constituents": (_top_tagging(_toptag_frame("no-constituents")), "h5"),
    "toptag-text-label": (_top_tagging(_toptag_frame("text-label")), "h5"),
    # ROOT: TTree "tree" with JetClass branches
    "root-bool-part_px": (_root(_with_part(px=ak.values_astype(_FLOATS["part_px"], bool))), "root"),
    "root-bool-jet_pt": (_root({**_PARTS, "jet_pt": (np.bool_, np.ones(5, bool))}), "root"),
    "root-jagged-jet_pt": (_root({**_PARTS, "jet_pt": (_FLOATS["part_px"].type.content, _FLOATS["part_px"])}), "root"),
    "root-fixed-size-jet_pt": (_root({**_PARTS, "jet_pt": ("3 * float32", np.ones((5, 3), np.float32))}), "root"),
    "root-flat-part_px": (
        _root({**_with_part(drop="part_px"), "part_px": (np.float32, np.ones(5, np.float32))}),
        "root",
    ),
    "root-no-tree": (_root_other(lambda f: f.__setitem__("other", "text")), "root"),
    "root-tree-is-a-histogram": (_root_other(lambda f: f.__setitem__("tree", np.histogram([1.0, 2.0]))), "root"),
    "root-tree-is-a-string": (_root_other(lambda f: f.__setitem__("tree", "not a tree")), "root"),
    "root-tree-is-an-rntuple": (_root_other(lambda f: f.__setitem__("tree", {"part_px": _FLOATS["part_px"]})), "root"),
    "root-tree-without-momenta": (_root({"jet_pt": (np.float32, np.ones(5, np.float32))}), "root"),
    # parquet, JetClass-II columns
    "parquet-bool-part_px": (_parquet(_columns(part_px=pa.array([[True]] * 5, pa.list_(pa.bool_())))), "parquet"),
    "parquet-flat-part_px": (_parquet(_columns(part_px=pa.array([1.0] * 5))), "parquet"),
    "parquet-text-part_py": (_parquet(_columns(part_py=pa.array([["a"]] * 5))), "parquet"),
    "parquet-nested-part_pz": (_parquet(_columns(part_pz=pa.array([[[1.0]]] * 5))), "parquet"),
    "parquet-struct-part_energy": (_parquet(_columns(part_energy=pa.array([[{"x": 1.0}]] * 5))), "parquet"),
    "parquet-jagged-jet_pt": (_parquet(_columns(jet_pt=pa.array([[1.0]] * 5))), "parquet"),
    "parquet-bool-jet_mass": (_parquet(_columns(jet_mass=pa.array([True] * 5))), "parquet"),
    "parquet-text-jet_eta": (_parquet(_columns(jet_eta=pa.array(["x"] * 5))), "parquet"),
    "parquet-without-momenta": (_parquet({"jet_pt": pa.array([1.0] * 5)}), "parquet"),
}


@pytest.mark.parametrize("case", sorted(LAYOUT_FUZZ))
def test_a_wrong_layout_is_a_data_error_that_names_the_file(case, tmp_path):
    write, suffix = LAYOUT_FUZZ[case]
    path = tmp_path / f"{case}.{suffix}"
    write(path)
    for read in (open_jets, check_files):
        with pytest.raises(DataError) as info:  # any other exception would be a traceback for the user
            read(path)
        assert str(path) in str(info.value)


def test_booleans_are_refused_where_numbers_belong_and_kept_where_they_are_flags(tmp_path):
    jets = make_jets(8, seed=4)
    flags = {name: ak.values_astype(jets[name], bool) for name in PARTICLE_BRANCHES if name.startswith("part_is")}
    labels = {name: ak.values_astype(jets[name], bool) for name in LABEL_BRANCHES.values()}
    fields = ak.zip({**{n: jets[n] for n in jets.fields}, **flags, **labels}, depth_limit=1)
    table = ak.to_arrow_table(fields, extensionarray=False)
    pq.write_table(table, tmp_path / "flags.parquet")
    assert len(open_jets(tmp_path / "flags.parquet")) == 8
    write_parquet(tmp_path / "px.parquet", ak.with_field(jets, ak.values_astype(jets.part_px, bool), "part_px"))
    with pytest.raises(DataError, match="'part_px'.*not booleans"):
        open_jets(tmp_path / "px.parquet")
    write_top_tagging(tmp_path / "ok.h5", jets)
    assert len(open_jets(tmp_path / "ok.h5")) == 8


def test_an_hdf5_group_is_refused_by_import_and_upload(workspace, tmp_path, capsys):
    from jetfm.agent.app_data import register_upload

    path = tmp_path / "grp.h5"
    _aspen(pf=lambda f: f.create_group("PFCands"))(path)
    assert main(["import", str(path), "--name", "grp"]) == 2
    err = capsys.readouterr().err
    assert "'PFCands' is a group, not a dataset" in err and "Traceback" not in err
    browser = tmp_path / "gradio-tmp" / "0123abcd"
    browser.mkdir(parents=True)
    shutil.copy(path, browser / "my jets.h5")
    status = register_upload(str(browser / "my jets.h5"), "grp")
    assert status.startswith("**Not registered**") and "'PFCands' is a group" in status
    assert "my jets.h5" in status and str(browser) not in status and str(workspace) not in status
    write_aspen(tmp_path / "good.h5", make_jets(10, seed=1))
    assert len(open_jets(tmp_path / "good.h5")) == 10


def test_an_upload_cut_short_is_reported_by_the_users_file_name(workspace, tmp_path):
    from jetfm.agent.app_data import register_upload

    browser = tmp_path / "gradio-tmp" / "4567ef"
    browser.mkdir(parents=True)
    cut_short(write_root(tmp_path / "full.root", make_jets(3000, seed=1)), browser / "run 2.root", 0.6)
    status = register_upload(str(browser / "run 2.root"), "run2")
    assert status.startswith("**Not registered**") and "run 2.root: truncated" in status
    assert str(browser) not in status and str(workspace) not in status
    assert not (workspace / "uploads" / "run2").exists() and Catalog(workspace).find("run2") is None


# --- 5. --shard is checked before any folder is made -----------------------------------------------


@pytest.mark.parametrize("spec", ["3/2", "2/2", "1/0", "-1/2", "0/-1", "a/b", "0/2/3", "", "1", "0.5/2"])
def test_a_bad_shard_is_refused_before_any_folder(workspace, capsys, spec):
    pytest.importorskip("pythia8mc")
    assert main(["generate", "--n-jets", "5", "--name", "sh", f"--shard={spec}"]) == 2
    assert "--shard" in capsys.readouterr().err
    assert not (workspace / "datasets" / "sh").exists() and Catalog(workspace).find("sh") is None


# --- 6. names are matched whole: no trailing newline ------------------------------------------------

BAD_NAMES = ["nl\n", "gnl\n", "x\r", "tab\t", "a\nb", "", " lead", "a/b", "..", ".hidden", "x" * 65]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_validate_name_matches_the_whole_name(name, tmp_path):
    with pytest.raises(CatalogError, match="invalid artifact name"):
        validate_name(name)
    with pytest.raises(CatalogError, match="invalid artifact name"):
        Catalog(tmp_path).register(name, "dataset", tmp_path)
    assert Catalog(tmp_path).list() == []


def test_every_name_argument_refuses_a_trailing_newline(workspace):
    Catalog(workspace).register("tq", "dataset", workspace)
    Catalog(workspace).register("m", "model", workspace)
    Catalog(workspace).register("idx", "index", workspace, parents=["tq"])
    calls = [
        ("generate_dataset", {"name": "gnl\n"}),
        ("import_dataset", {"path": "x.root", "name": "nl\n"}),
        ("describe_dataset", {"dataset": "tq\n"}),
        ("plot_observable", {"dataset": "tq\n"}),
        ("pretrain", {"dataset": "tq", "name": "m2\n"}),
        ("finetune", {"dataset": "tq", "name": "f\n"}),
        ("finetune", {"dataset": "tq", "name": "f", "model": "m\n"}),
        ("embed", {"dataset": "tq", "model": "m\n"}),
        ("build_index", {"dataset": "tq", "name": "i\n"}),
        ("search_similar", {"dataset": "tq", "index": "idx\n"}),
        ("job_status", {"job_id": "job-20250101-101010-abcdef\n"}),
        ("cancel_job", {"job_id": "job-20250101-101010-abcdef\n"}),
        ("embed", {"dataset": "tq", "device": "cpu\n"}),
    ]
    for tool, args in calls:
        with pytest.raises(ToolError):
            validate_args(tool, args)
    validate_args("job_status", {"job_id": "job-20250101-101010-abcdef"})  # the same without the newline


def test_the_cli_makes_no_folder_or_entry_for_a_name_with_a_newline(workspace, tmp_path, capsys):
    assert main(["generate", "--n-jets", "5", "--name", "gnl\n"]) == 2
    assert "invalid artifact name" in capsys.readouterr().err
    assert not (workspace / "datasets" / "gnl\n").exists()
    write_root(tmp_path / "j.root", make_jets(5))
    assert main(["import", str(tmp_path / "j.root"), "--name", "nl\n"]) == 2
    assert main(["job", "job-20250101-101010-abcdef\n"]) == 2
    assert Catalog(workspace).list() == []


# --- 7. plots of nothing say what is missing and write nothing --------------------------------------


def test_a_plot_of_no_usable_jets_says_so(workspace, tmp_path):
    from jetfm.tools.datasets import plot_observable

    jets = make_jets(10, seed=5)
    path = write_root(tmp_path / "nan.root", ak.with_field(jets, jets.part_px * np.nan, "part_px"))
    with pytest.raises(DataError, match="no usable jets.*10 with NaN/inf values.*no plot was written"):
        plot_observable(str(path))
    assert not list((workspace / "plots").glob("*.png"))


def test_a_plot_of_an_observable_the_files_lack_says_so(workspace, tmp_path, capsys):
    write_aspen(tmp_path / "asp.h5", make_jets(40, seed=6))  # Aspen files have no N-subjettiness
    assert main(["import", str(tmp_path / "asp.h5"), "--name", "asp"]) == 0
    capsys.readouterr()
    assert main(["plot", "asp", "--observable", "tau21"]) == 2
    err = capsys.readouterr().err
    assert "tau21 is undefined (NaN) for all 40 jets" in err and "jet_tau1, jet_tau2" in err
    assert not list((workspace / "plots").glob("*.png"))
    assert main(["plot", "asp", "--observable", "mass"]) == 0
    assert "nan" not in capsys.readouterr().out.lower()


# --- 8. finetune checks its classes before training -------------------------------------------------


def test_finetune_refuses_a_class_the_dataset_lacks_before_training(workspace, tmp_path):
    from jetfm.tools.models import finetune

    jets = make_jets(60, seed=7)
    top = np.arange(60) % 2 == 0
    for process, branch in LABEL_BRANCHES.items():
        value = top if process == "top" else (~top if process == "qcd" else np.zeros(60, bool))
        jets = ak.with_field(jets, value.astype(np.int32), branch)
    write_root(tmp_path / "tq.root", jets)
    assert main(["import", str(tmp_path / "tq.root"), "--name", "tq"]) == 0
    with pytest.raises(UsageError, match=r"no wqq jets \(it holds qcd: 30, top: 30\).*Nothing was trained"):
        finetune("tiny", "tq", mode="scratch", name="ft", steps=2, classes=["top", "wqq"], device="cpu")
    assert not (workspace / "runs" / "ft").exists() and Catalog(workspace).find("ft") is None


# --- 9. a folder swap killed between its two renames is finished on the next open --------------------

_KILLED_REBUILD = """
import os, sys
from pathlib import Path
import numpy as np
from jetfm.retrieval.index import JetIndex

real = Path.rename
def rename(self, target):
    result = real(self, target)
    os._exit(9)  # killed right after the first rename: the old folder is aside, the new one not yet in place
Path.rename = rename
JetIndex.build(np.random.default_rng(1).standard_normal((80, 8)).astype(np.float32)).save(sys.argv[1])
"""


def test_an_index_rebuild_killed_between_its_renames_is_recovered(workspace, capsys):
    from jetfm.retrieval.index import JetIndex
    from jetfm.tools.workspace import artifact_dir

    path = artifact_dir("index", "idx")
    JetIndex.build(np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)).save(path)
    Catalog(workspace).register("idx", "index", path)
    killed = subprocess.run([sys.executable, "-c", _KILLED_REBUILD, str(path)], capture_output=True)
    assert killed.returncode == 9, killed.stderr.decode()
    assert not path.exists() and list(path.parent.glob(".idx.old-*"))  # what the issue found
    assert main(["list"]) == 0  # listing the catalog finishes the swap
    assert "MISSING" not in capsys.readouterr().out
    assert len(JetIndex.load(path)) == 80  # the new copy was complete, so the swap is finished
    assert sorted(p.name for p in path.parent.iterdir()) == ["idx"]


def test_a_swap_without_journal_is_rolled_back_and_leftovers_are_removed(tmp_path):
    folder = tmp_path / "m"
    aside = tmp_path / ".m.old-0123abcd"  # as an older jetfm left it: no journal, no folder
    aside.mkdir()
    (aside / "config.json").write_text("{}")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for suffix in (f"{dead.pid}", f"{dead.pid}-x1y2", f"{os.getppid()}", "oldrandom", "newrandom"):
        (tmp_path / f".m.tmp-{suffix}").mkdir()
    an_hour_ago = time.time() - 2 * 3600
    os.utime(tmp_path / ".m.tmp-oldrandom", (an_hour_ago, an_hour_ago))
    recover_folder(folder)
    assert (folder / "config.json").exists()  # rolled back to the only copy there is
    # A live writer's staging folder and a fresh unnamed one stay; the dead ones and the old copy go.
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".m.tmp-{os.getppid()}", ".m.tmp-newrandom", "m"]


def test_replace_folder_journal_is_finished_by_the_next_open(workspace):
    from jetfm.tools.models import model_folder
    from jetfm.tools.workspace import artifact_dir

    folder = artifact_dir("model", "m")
    folder.mkdir(parents=True)
    (folder / "v").write_text("1")
    Catalog(workspace).register("m", "model", folder)
    staging = folder.with_name(".m.tmp-1-new")
    staging.mkdir()
    (staging / "v").write_text("2")
    # The state a kill between the two renames leaves: journal written, folder aside, staging ready.
    folder.rename(folder.with_name(".m.old-feedbeef"))
    journal = {"staging": str(staging), "old": ".m.old-feedbeef", "pid": 1 << 22, "thread": 0}
    folder.with_name(".m.swap").write_text(json.dumps(journal))
    assert (model_folder("m") / "v").read_text() == "2"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["m"]
    replace_folder(_filled(folder.with_name(".m.tmp-2-next"), "3"), folder)
    assert (folder / "v").read_text() == "3" and sorted(p.name for p in folder.parent.iterdir()) == ["m"]


def _filled(folder: Path, value: str) -> Path:
    folder.mkdir()
    (folder / "v").write_text(value)
    return folder


# --- 10. the agent imports a file of the workspace; jetfm remove says when it did not remove ----------


def test_the_router_may_not_refuse_a_jet_file_the_tools_may_read(workspace, tmp_path):
    from jetfm.agent.router import readable_data
    from jetfm.tools.safety import allow_path

    (workspace / "inj").mkdir(parents=True)
    write_aspen(workspace / "inj" / "notes.h5", make_jets(5))
    (workspace / "inj" / "notes.txt").write_text("not jets")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_root(elsewhere / "run.root", make_jets(5))
    inside = str(workspace / "inj" / "notes.h5")
    assert readable_data([inside, "inj/notes.h5", "inj"]) == [inside, "inj/notes.h5", "inj"]
    # a jet file that is not there yet gets its import call, whose error names the path it looked for
    assert readable_data(["inj/missing.h5"]) == ["inj/missing.h5"]
    refused = ["/etc/passwd", "../../../../etc/hosts", "inj/notes.txt", str(elsewhere / "run.root")]
    assert readable_data(refused) == []
    allow_path(elsewhere)  # a folder the user registered counts as readable too
    assert readable_data([str(elsewhere / "run.root")]) == [str(elsewhere / "run.root")]


def test_remove_with_a_mistyped_name_fails(workspace, monkeypatch, capsys):
    Catalog(workspace).register("tq", "dataset", workspace)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "tqq")
    assert main(["remove", "tq"]) == 2
    assert "not removed" in capsys.readouterr().err and Catalog(workspace).find("tq") is not None
    monkeypatch.setattr("builtins.input", lambda prompt: "tq")
    assert main(["remove", "tq"]) == 0 and Catalog(workspace).find("tq") is None
