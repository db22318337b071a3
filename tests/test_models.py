"""Model operations through the tools layer: pretrain -> model folder + card + catalog lineage."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pythia8mc")

from backbone.pretrain.base import load_objective  # noqa: E402
from tools.catalog import Catalog  # noqa: E402
from tools.cli import main  # noqa: E402


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


@pytest.mark.parametrize("mode", ["full", "linear_probe", "scratch"])
def test_finetune_evaluate_export(workspace, mode, capsys):
    base = "m-mpm"
    if Catalog(workspace).find(base) is None:
        assert main(["pretrain", "--dataset", "mini", "--size", "tiny", "--steps", "4", "--batch-size", "16",
                     "--name", base, "--json"]) == 0
    name = f"clf-{mode}"
    args = ["finetune", "--model", base, "--dataset", "mini", "--mode", mode, "--n-labels", "30"]
    assert main([*args, "--steps", "5", "--batch-size", "16", "--name", name, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["auc"] <= 1.0
    art = Catalog(workspace).get(name)
    assert art.parents == [base, "mini"] and art.meta["n_labels"] == 30
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
