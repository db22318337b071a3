"""The CLI and the dataset tools end to end: generate -> catalog -> describe/plot/import, and errors."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pythia8mc")

from jetfm.tools.catalog import Catalog, CatalogError  # noqa: E402
from jetfm.tools.cli import main  # noqa: E402


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("JETFM_HOME", str(tmp_path / "ws"))
    return tmp_path / "ws"


@pytest.fixture()
def small_dataset(workspace, capsys):
    assert main(["generate", "--processes", "top,qcd", "--n-jets", "20", "--name", "tq", "--seed", "3", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_generate_registers_dataset(small_dataset, workspace):
    assert small_dataset["n_jets"] == 20 and small_dataset["jets_per_process"] == {"top": 10, "qcd": 10}
    art = Catalog(workspace).get("tq", kind="dataset")
    assert art.metrics["n_jets"] == 20 and art.meta["config"]["seed"] == 3


def test_describe_json_and_text(small_dataset, capsys):
    assert main(["describe", "tq", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == {"qcd": 10, "top": 10}
    assert summary["per_class"]["top"]["mass"]["mean"] > summary["per_class"]["qcd"]["mass"]["mean"]
    assert main(["describe", "tq"]) == 0
    assert "top: 10" in capsys.readouterr().out


def test_plot_writes_png(small_dataset, workspace, capsys):
    assert main(["plot", "tq", "--observable", "tau32"]) == 0
    png = workspace / "plots" / "tq-tau32-by-class.png"
    assert png.exists() and png.read_bytes()[:4] == b"\x89PNG"


def test_import_and_list(small_dataset, workspace, capsys):
    shard = sorted((workspace / "datasets" / "tq").glob("top-*.root"))[0]
    assert main(["import", str(shard), "--name", "just-top"]) == 0
    assert "10 jets" in capsys.readouterr().out
    assert main(["list", "--json"]) == 0
    names = [a["name"] for a in json.loads(capsys.readouterr().out)["artifacts"]]
    assert names == ["tq", "just-top"]


def test_unknown_dataset_lists_known_ones(small_dataset, capsys):
    assert main(["describe", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no dataset named 'nope'" in err and "tq" in err


def test_bad_generate_arguments(workspace, capsys):
    assert main(["generate", "--processes", "top,gluino", "--n-jets", "5", "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert "--processes: unknown value 'gluino'; choose from qcd, top," in err
    assert main(["generate", "--n-jets", "5", "--name", "bad name!"]) == 2
    assert "invalid artifact name" in capsys.readouterr().err
    # The CLI checks exactly what the tool schema checks, and names the option.
    assert main(["generate", "--n-jets", "0", "--name", "x"]) == 2
    assert "--n-jets: Input should be greater than or equal to 1" in capsys.readouterr().err
    assert main(["generate", "--workers", "1000", "--name", "x"]) == 2
    assert "--workers: Input should be less than or equal to 64" in capsys.readouterr().err
    assert main(["generate", "--seed", "-1", "--name", "x"]) == 2
    assert "--seed" in capsys.readouterr().err
    assert main(["generate", "--n-jets", "100000000000", "--name", "x"]) == 2
    assert "--n-jets" in capsys.readouterr().err
    assert not (workspace / "datasets" / "x").exists()  # a refused start leaves no folder behind


def test_import_bad_file(workspace, tmp_path, capsys):
    bogus = tmp_path / "notes.root"
    bogus.write_text("this is not ROOT")
    assert main(["import", str(bogus), "--name", "b"]) == 2
    assert "notes.root" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "missing.root"), "--name", "b"]) == 2
    assert "missing.root" in capsys.readouterr().err


def test_catalog_names_lineage_and_delete_confirmation(tmp_path):
    cat = Catalog(tmp_path)
    cat.register("d", "dataset", tmp_path / "d")
    cat.register("m", "model", tmp_path / "m", parents=["d"], metrics={"auc": 0.9})
    with pytest.raises(CatalogError, match="already used"):
        cat.register("d", "model", tmp_path / "x")
    with pytest.raises(CatalogError, match="no artifact named 'zz'"):
        cat.register("i", "index", tmp_path / "i", parents=["zz"])
    with pytest.raises(CatalogError, match="confirmation"):
        cat.remove("m")
    with pytest.raises(CatalogError, match="parent of m"):
        cat.remove("d", confirm=True)
    cat.remove("m", confirm=True)
    assert [a.name for a in cat.list()] == ["d"]
    assert cat.update_metrics("d", {"n": 1}).metrics == {"n": 1}


def test_main_job_demo(workspace, capsys):
    """The README's main command on embedded defaults (small sample): summary, plot, similar jets."""
    assert main(["demo", "--n-jets", "50", "--workers", "1", "--no-serve"]) == 0
    out = capsys.readouterr().out
    assert "qcd: 5, top: 5, wqq: 5, zqq: 5, hbb: 5, hcc: 5, hgg: 5, h4q: 5, hlvqq: 5, tbl: 5" in out
    assert "nearest jets are top jets" in out
    assert (workspace / "plots" / "demo-50-mass-by-class.png").exists()


def test_show_jet_image(small_dataset, workspace, capsys):
    assert main(["show-jet", "tq", "--entry", "3", "--json"]) == 0
    capsys.readouterr()
    pngs = list((workspace / "plots").glob("*.png"))
    assert pngs and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    assert main(["show-jet", "tq", "--entry", "999"]) == 2
    assert "999" in capsys.readouterr().err


def test_tools_and_jobs_from_the_cli(small_dataset, workspace, tmp_path, capsys):
    """The agent's tools by name (`jetfm tool`), a background job (`jetfm job`), the path allow-list."""
    import time

    assert main(["tool", "describe_dataset", "--args", '{"dataset": "tq"}', "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"qcd": 10, "top": 10}
    assert main(["tool", "describe_dataset", "--args", '{"dataset": "nope"}']) == 2
    assert "tq" in capsys.readouterr().err  # the error lists the datasets that exist
    assert main(["tool", "rm", "--args", "{}"]) == 2
    assert "unknown tool 'rm'" in capsys.readouterr().err
    args = '{"name": "bg", "processes": ["qcd"], "n_jets": 5}'
    assert main(["tool", "generate_dataset", "--args", args, "--json"]) == 0
    job_id = json.loads(capsys.readouterr().out)["job_id"]
    for _ in range(240):
        assert main(["job", job_id, "--json"]) == 0
        state = json.loads(capsys.readouterr().out)["state"]
        if state not in ("queued", "running"):
            break
        time.sleep(0.5)
    assert state == "done"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert main(["allow-path", str(outside), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["allowed"] == str(outside.resolve())
