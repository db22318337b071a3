"""Model operations through the tools layer: pretrain -> model folder + card + catalog lineage."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pythia8mc")

from jetfm.backbone.pretrain.base import load_objective  # noqa: E402
from jetfm.retrieval.index import RetrievalError  # noqa: E402
from jetfm.tools.catalog import Catalog  # noqa: E402
from jetfm.tools.cli import main  # noqa: E402
from jetfm.tools.run import run_tool  # noqa: E402
from jetfm.tools.search import latest_index  # noqa: E402


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("ws")
    mp = pytest.MonkeyPatch()
    mp.setenv("JETFM_HOME", str(ws))
    assert main(["generate", "--processes", "qcd,top", "--n-jets", "60", "--name", "mini", "--json"]) == 0
    yield ws
    mp.undo()


@pytest.mark.parametrize("objective", ["mpm", "contrastive"])
def test_pretrain_writes_model_folder_and_lineage(workspace, objective, capsys):
    name = f"m-{objective}"
    args = ["pretrain", "--dataset", "mini", "--objective", objective, "--size", "tiny", "--steps", "6"]
    assert main([*args, "--batch-size", "16", "--name", name, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    folder = workspace / "models" / name
    for file in ("config.json", "model.safetensors", "pretraining.json", "README.md", "loss.csv", "train_state.pt"):
        assert (folder / file).exists(), file
    assert result["name"] == name and result["loss"] > 0
    art = Catalog(workspace).get(name, kind="model")
    assert art.parents == ["mini"] and art.meta["objective"] == objective
    assert load_objective(folder).name == objective
    card = (folder / "README.md").read_text()
    assert "mini" in card and "CPU" in card


def test_pretrain_errors(workspace, capsys):
    assert main(["pretrain", "--dataset", "nope", "--name", "x", "--steps", "2"]) == 2
    assert "no dataset named 'nope'" in capsys.readouterr().err
    assert main(["pretrain", "--dataset", "mini", "--name", "mini", "--steps", "2"]) == 2
    assert "already used" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["full", "linear_probe", "mlp_probe", "scratch"])
def test_finetune_evaluate_export(workspace, mode, capsys):
    base = "m-mpm"
    if Catalog(workspace).find(base) is None:
        assert main(["pretrain", "--dataset", "mini", "--size", "tiny", "--steps", "4", "--batch-size", "16",
                     "--name", base, "--json"]) == 0
        capsys.readouterr()  # the pretraining's own output; whichever test runs first on a worker pretrains
    name = f"clf-{mode}"
    args = ["finetune", "--model", base, "--dataset", "mini", "--mode", mode, "--n-labels", "30"]
    assert main([*args, "--steps", "5", "--batch-size", "16", "--name", name, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["auc"] <= 1.0
    validation = result["validation"]  # a fifth of the 30 labels validates and picks the best step
    assert 0.0 <= validation["val_auc"] <= 1.0 and validation["val_loss"] > 0
    if mode == "linear_probe":
        assert validation["best_step"] is None  # fitted by L-BFGS, not in steps
    else:
        assert 1 <= validation["best_step"] <= validation["steps_run"] <= 5
    art = Catalog(workspace).get(name)
    assert art.parents == [base, "mini"] and art.meta["n_labels"] == 30
    assert (art.meta["n_train"], art.meta["n_validation"]) == (24, 6)
    assert main(["evaluate", "--model", name, "--dataset", "mini", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scope"] == "held-out split" and report["num_jets"] == 12
    assert report["auc"] == pytest.approx(result["auc"])
    if mode == "full":
        pytest.importorskip("onnxruntime")
        assert main(["export", "--model", name, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["max_abs_diff"] < 1e-4


def test_finetune_errors(workspace, capsys):
    assert main(["finetune", "--model", "ghost", "--dataset", "mini", "--name", "f"]) == 2
    assert "no model named 'ghost'" in capsys.readouterr().err


def test_pretrain_under_torchrun_two_gloo_processes(physics_sample_dir, tmp_path):
    """`jetfm pretrain` as 2 CPU processes (DDP, gloo): one model folder, written by rank 0."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "JETFM_HOME": str(tmp_path / "ws"), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "jetfm.tools.cli", "pretrain", "--dataset", str(physics_sample_dir), "--objective", "mpm",
        "--size", "tiny", "--steps", "4", "--batch-size", "16", "--name", "ddp-model", "--json",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    folder = tmp_path / "ws" / "models" / "ddp-model"
    assert (folder / "model.safetensors").exists() and (folder / "heads.safetensors").exists()
    assert load_objective(folder).name == "mpm"
    assert [a.name for a in Catalog(tmp_path / "ws").list("model")] == ["ddp-model"]


def test_embed_index_similar_anomaly(workspace, capsys):
    """Issue 4 through the CLI: embeddings -> FAISS index -> similar jets and anomaly scores."""
    base = "m-mpm"
    if Catalog(workspace).find(base) is None:
        assert main(["pretrain", "--dataset", "mini", "--size", "tiny", "--steps", "4", "--batch-size", "16",
                     "--name", base, "--json"]) == 0
        capsys.readouterr()
    assert main(["embed", "--model", base, "--dataset", "mini", "--json"]) == 0
    emb = json.loads(capsys.readouterr().out)
    assert emb["n_jets"] == 60 and Catalog(workspace).get(emb["name"]).parents == [base, "mini"]
    assert main(["index", "--dataset", "mini", "--model", base, "--name", "idx", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "flat"
    assert main(["similar", "--dataset", "mini", "--index", "idx", "--entry", "3", "-k", "5", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["results"]
    assert len(found) == 5 and all(r["id"] != 3 for r in found)
    assert [r["similarity"] for r in found] == sorted((r["similarity"] for r in found), reverse=True)
    # no index named: the latest index built over the dataset
    latest = run_tool("search_similar", {"dataset": "mini", "entry": 3, "k": 5})
    assert [r["id"] for r in latest.data["results"]] == [r["id"] for r in found]
    with pytest.raises(RetrievalError, match="build one first"):
        latest_index("not-indexed")
    shard = sorted((workspace / "datasets" / "mini").glob("top-*.root"))[0]
    assert main(["similar", "--query-file", str(shard), "--entry", "2", "--index", "idx", "-k", "4", "--json"]) == 0
    by_file = json.loads(capsys.readouterr().out)["results"]
    assert len(by_file) == 4 and by_file[0]["similarity"] > 0.999  # the same jet is in the index
    assert main(["similar", "--dataset", "mini", "--index", "idx", "-k", "3", "--labels", "top", "--json"]) == 0
    assert all(r["label"] == 1 for r in json.loads(capsys.readouterr().out)["results"])
    for method in ("knn", "mpm"):
        assert main(["anomaly", "--dataset", "mini", "--model", base, "--method", method, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["n_jets"] == 60
    assert main(["similar", "--dataset", "mini", "--index", "idx", "-k", "500"]) == 2
    assert "holds only 59 other jets" in capsys.readouterr().err


def test_sample_from_ntp_model(workspace, capsys):
    """jetfm sample: jets from a next-token model, written as a dataset and compared with its data."""
    args = ["pretrain", "--dataset", "mini", "--objective", "ntp", "--size", "tiny", "--steps", "4"]
    assert main([*args, "--batch-size", "16", "--name", "m-ntp", "--json"]) == 0
    capsys.readouterr()
    assert main(["sample", "--model", "m-ntp", "--n-jets", "12", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_jets"] == 12 and set(result["comparison"]) >= {"mass", "tau32"}
    art = Catalog(workspace).get("m-ntp-samples", kind="dataset")
    assert art.parents == ["m-ntp"]
    assert main(["describe", "m-ntp-samples", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_jets"] == 12
    assert main(["sample", "--model", "jetfm-default", "--n-jets", "2"]) == 2
    assert "needs a next-token" in capsys.readouterr().err


def test_text_search_zero_shot_describe_with_shipped_alignment(workspace, capsys):
    """Issue 5 through the CLI, out of the box: the shipped alignment on a freshly generated sample."""
    pytest.importorskip("transformers")
    assert main(["search", "a three-pronged top quark jet with mass near 175 GeV", "--dataset", "mini",
                 "-k", "5", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert len(found["results"]) == min(5, found["n_passed"]) and not found["low_similarity"]
    assert all(r["label"] == 1 and 165 <= r["mass"] <= 185 for r in found["results"])  # the stated cuts hold
    assert found["results"] or found["misses"]
    assert main(["search", "jets from the decay of a heavy quark", "--dataset", "mini", "-k", "5", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["results"]) == 5
    assert main(["search", "the recipe for a chocolate cake", "--dataset", "mini", "-k", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["low_similarity"]
    assert main(["zero-shot", "--dataset", "mini", "--labels", "top quark,QCD gluon or light quark", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sum(result["predicted"].values()) == 60 and set(result["by_true_class"]) == {"qcd", "top"}
    assert main(["zero-shot", "--dataset", "mini", "--labels", "top quark"]) == 2
    err = capsys.readouterr().err
    assert "--labels" in err and "at least 2" in err  # names the option and what it needs
    assert main(["describe-jet", "--dataset", "mini", "--entry", "0", "-k", "3", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["descriptions"]) == 3
