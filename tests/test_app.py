"""The Gradio app through its API (gradio_client), with a deterministic fake agent whose tool calls
are real tools on a small generated dataset: chat steps and plots, sessions kept apart (also under
8 concurrent sessions), text and similar-jet search, uploads, jobs, and every kind of bad input."""

from __future__ import annotations

import concurrent.futures
import shutil
import socket
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pythia8mc")

from gradio_client import Client, handle_file  # noqa: E402

from jetfm.agent.app import build_app, launch_app  # noqa: E402
from jetfm.agent.app_chat import AgentPool, ChatSession, explain_failure, respond, result_table  # noqa: E402
from jetfm.agent.app_data import jobs_table, register_upload  # noqa: E402
from jetfm.agent.backends import BackendConfig, check_server  # noqa: E402
from jetfm.agent.events import Answer, ToolFinished, ToolStarted  # noqa: E402
from jetfm.tools.catalog import Catalog  # noqa: E402
from jetfm.tools.registry import ToolError  # noqa: E402
from jetfm.tools.run import run_tool  # noqa: E402

UPLOAD_LIMIT = 1024**2  # small, so an oversized upload is cheap to make


class FakeAgent:
    """Stands in for agent.graph.ChatAgent: remembers each thread's messages and answers with them.
    "plot" runs the real plot_observable tool, "fail" a real tool call that fails, "crash" raises."""

    def __init__(self) -> None:
        self.memory: dict[str, list[str]] = defaultdict(list)

    def stream(self, message: str, thread_id: str) -> Iterator[ToolStarted | ToolFinished | Answer]:
        earlier = list(self.memory[thread_id])
        self.memory[thread_id].append(message)
        if "crash" in message:
            raise RuntimeError("the fake agent broke")
        call = None
        if "plot" in message:
            call = ("plot_observable", {"dataset": "tq", "observable": "mass"})
        elif "fail" in message:
            call = ("describe_dataset", {"dataset": "no-such-dataset"})
        if call is not None:
            tool, args = call
            yield ToolStarted("call-1", tool, args)
            start = time.monotonic()
            try:
                result = run_tool(tool, args)
                yield ToolFinished(
                    "call-1", tool, True, result.text, time.monotonic() - start, result.plots, result.data
                )
            except ToolError as err:
                yield ToolFinished("call-1", tool, False, str(err), time.monotonic() - start)
        yield Answer(f"echo {message}; earlier in this thread: {earlier}")


def fake_factory(backend: BackendConfig) -> FakeAgent:
    if backend.kind == "openai":
        check_server(backend)  # what ChatAgent does first: a server that does not answer fails here
    return FakeAgent()


def make_workspace(root: Path) -> Path:
    """A workspace holding ``tq``: 40 generated top and QCD jets."""
    from jetfm.tools.datasets import generate_dataset

    generate_dataset("tq", ["top", "qcd"], n_jets=40, seed=3, workers=1, show_progress=False)
    return root


def start_app(**kwargs: Any) -> tuple[Any, str]:
    app = build_app(fake_factory, max_upload_bytes=UPLOAD_LIMIT)
    return app, launch_app(app, port=None, max_upload_bytes=UPLOAD_LIMIT, block=False, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("app-ws")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JETFM_HOME", str(root))
        yield make_workspace(root)


@pytest.fixture(scope="module")
def url(workspace) -> Iterator[str]:
    app, url = start_app()
    yield url
    app.close()


def client(url: str) -> Client:
    return Client(url, verbose=False)


def texts(history: list[dict[str, Any]]) -> list[str]:
    return [c["text"] for m in history for c in m["content"] if c.get("type") == "text"]


def steps(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tool steps (the first message of an app also shows a step for loading the model)."""
    return [m for m in history if (m.get("metadata") or {}).get("title", "Starting the LLM") != "Starting the LLM"]


# --- chat ----------------------------------------------------------------------------------------


def test_chat_streams_a_tool_step_then_the_plot(url):
    job = client(url).submit("plot the jet mass of tq", [], api_name="/chat")
    history, _ = job.result(timeout=120)
    assert job.outputs()[0][1] == ""  # the input is cleared at once, ready for the next message
    assert history[0]["role"] == "user" and texts(history[:1]) == ["plot the jet mass of tq"]
    (step,) = steps(history)
    assert step["metadata"]["title"] == "Tool: plot_observable" and step["metadata"]["status"] == "done"
    assert step["metadata"]["duration"] >= 0 and step["metadata"]["log"] == "ok"
    assert '"observable": "mass"' in step["content"][0]["text"] and "Plotted mass" in step["content"][0]["text"]
    images = [c["file"] for m in history for c in m["content"] if c.get("type") == "file"]
    assert (
        len(images) == 1 and images[0].endswith(".png") and Path(images[0]).stat().st_size
    )  # downloaded by the client
    assert texts(history)[-1].startswith("echo plot the jet mass of tq")
    # Streamed: a partial update showed the step pending before the tool had finished.
    partial = [steps(out[0]) for out in job.outputs()[:-1]]
    assert any(s and s[0]["metadata"]["status"] == "pending" for s in partial)


def test_each_browser_session_has_its_own_conversation(url):
    alice, bob = client(url), client(url)
    history, _ = alice.predict("hello from alice", [], api_name="/chat")
    history, _ = alice.predict("second from alice", history, api_name="/chat")
    assert "earlier in this thread: ['hello from alice']" in texts(history)[-1]
    history, _ = bob.predict("hello from bob", [], api_name="/chat")
    assert texts(history)[-1] == "echo hello from bob; earlier in this thread: []"
    alice.predict(api_name="/new_conversation")  # a new thread: the agent forgets
    history, _ = alice.predict("again", [], api_name="/chat")
    assert texts(history)[-1] == "echo again; earlier in this thread: []"


def test_bad_chat_input_becomes_a_message_and_the_app_stays_up(url):
    c = client(url)
    history, _ = c.predict("   ", [], api_name="/chat")
    assert len(history) == 1 and "Type a request first" in texts(history)[0]
    history, _ = c.predict("fail please", [], api_name="/chat")
    (step,) = steps(history)
    assert step["metadata"]["title"] == "Tool failed: describe_dataset" and step["metadata"]["log"] == "failed"
    assert "no dataset named 'no-such-dataset'" in step["content"][0]["text"]
    history, _ = c.predict("crash now", [], api_name="/chat")
    assert "Something went wrong while answering** (RuntimeError: the fake agent broke)" in texts(history)[-1]
    history, _ = c.predict("still there?", [], api_name="/chat")
    assert texts(history)[-1].startswith("echo still there?")


def test_an_llm_server_that_does_not_answer(url):
    c = client(url)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    status = c.predict("openai", dead, "some-model", "", api_name="/backend")
    assert "does not answer" in status and dead in status
    history, _ = c.predict("hello", [], api_name="/chat")
    assert f"The LLM could not start**: the LLM server at {dead} does not answer" in texts(history)[-1]
    assert "starting with http" in c.predict("openai", "localhost:8000", "m", "", api_name="/backend")
    assert "embedded" in c.predict("embedded", "", "", "", api_name="/backend")
    history, _ = c.predict("back again", [], api_name="/chat")
    assert texts(history)[-1].startswith("echo back again")


def test_an_agent_that_cannot_start_is_reported_in_the_chat():
    def broken(backend: BackendConfig) -> FakeAgent:
        raise RuntimeError("no model files")

    pool = AgentPool(broken)
    *_, history = respond(pool, "hi", [], ChatSession())
    assert "RuntimeError: no model files" in history[-1]["content"]
    assert history[1]["metadata"]["title"] == "Starting the LLM" and history[1]["metadata"]["status"] == "done"
    assert "could not start" in pool.status(BackendConfig())


def test_a_server_lost_in_mid_conversation_is_named():
    backend = BackendConfig(kind="openai", base_url="http://127.0.0.1:9/v1", model="m")
    try:
        raise RuntimeError("Connection error.") from ConnectionRefusedError(111, "Connection refused")
    except RuntimeError as err:
        assert "The LLM server at http://127.0.0.1:9/v1 does not answer" in explain_failure(err, backend)
        assert "Something went wrong" in explain_failure(err, BackendConfig())


def test_eight_concurrent_sessions_each_get_their_own_answers(url):
    clients = [client(url) for _ in range(8)]

    def converse(i: int) -> list[str]:
        history, _ = clients[i].predict(f"first message of session {i}", [], api_name="/chat")
        history, _ = clients[i].predict(f"second message of session {i}", history, api_name="/chat")
        return texts(history)

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(converse, range(8)))
    assert time.monotonic() - start < 60
    for i, seen in enumerate(results):
        assert (
            seen[-1] == f"echo second message of session {i}; earlier in this thread: ['first message of session {i}']"
        )
        others = [t for t in seen if any(f"session {j}" in t for j in range(8) if j != i)]
        assert others == [], f"session {i} saw another session's messages: {others}"


def test_result_tables_show_records_without_paths():
    table = result_table({"results": [{"id": 3, "similarity": 0.91234, "file": "/x.root", "label": 1, "mass": 171.2}]})
    assert table.splitlines()[:3] == [
        "| id | similarity | label | mass |",
        "|---|---|---|---|",
        "| 3 | 0.9123 | top | 171.2 |",
    ]
    assert result_table({"text": "no records"}) is None


# --- search --------------------------------------------------------------------------------------


def test_text_search_gallery_then_similar_jets(url, workspace):
    c = client(url)
    gallery, status = c.predict("boosted jets from the decay of a heavy quark", 6, "tq", api_name="/search")
    assert len(gallery) == 6 and "6 jets of `tq`" in status
    assert all(Path(item["image"]).suffix == ".png" and " sim 0." in item["caption"] for item in gallery)
    first = int(gallery[0]["caption"].split()[0].lstrip("#"))
    assert Catalog().list("index") == []  # no index yet: the first similar-jet search builds one
    similar, status = c.predict(first, 4, "tq", "auto", api_name="/similar")
    assert len(similar) == 4 and f"most similar to jet #{first} of `tq`" in status and "Built index" in status
    assert [a.name for a in Catalog().list("index")] == ["idx-tq-jetfm-default"]
    assert not any(item["caption"].startswith(f"#{first} ") for item in similar)  # the query jet itself is left out
    again, status = c.predict(first, 4, "tq", "idx-tq-jetfm-default", api_name="/similar")
    assert [g["caption"] for g in again] == [g["caption"] for g in similar] and "Built" not in status
    # Jet images are drawn once per jet and reused.
    assert len(list((workspace / "plots").glob("tq-jet*.png"))) <= 10


def test_search_bad_input(url):
    c = client(url)
    assert c.predict("", 5, "tq", api_name="/search")[0] == []
    gallery, status = c.predict("top jets", 5, "nope", api_name="/search")
    assert gallery == [] and "no dataset named 'nope'" in status
    similar, status = c.predict(10_000, 3, "tq", "auto", api_name="/similar")
    assert similar == [] and "out of range" in status


# --- data: uploads, jobs -------------------------------------------------------------------------


def test_upload_registers_a_root_file(url, workspace, tmp_path):
    shard = sorted((workspace / "datasets" / "tq").glob("top-*.root"))[0]
    upload = tmp_path / "my top jets.root"
    shutil.copyfile(shard, upload)
    status, _ = client(url).predict(handle_file(str(upload)), "", "tq", api_name="/upload")
    assert status.startswith("**Registered**: Imported") and "'my-top-jets'" in status and "20 jets" in status
    art = Catalog().get("my-top-jets", kind="dataset")
    assert Path(art.path) == workspace / "uploads" / "my-top-jets" / "my top jets.root"
    status, _ = client(url).predict(handle_file(str(upload)), "my-top-jets", "tq", api_name="/upload")
    assert "already in the catalog" in status


def test_uploads_that_are_refused_leave_nothing_behind(url, workspace, tmp_path):
    text = tmp_path / "notes.root"
    text.write_text("not a jet file")
    status, _ = client(url).predict(handle_file(str(text)), "notes", "tq", api_name="/upload")
    assert "**Not registered**" in status and "not a ROOT, HDF5 or parquet file" in status
    fake = tmp_path / "fake.root"
    fake.write_bytes(b"root" + b"\0" * 200)  # ROOT's magic bytes, nothing readable behind them
    status, _ = client(url).predict(handle_file(str(fake)), "fake", "tq", api_name="/upload")
    assert "**Not registered**" in status
    status, _ = client(url).predict(handle_file(str(fake)), "bad name!", "tq", api_name="/upload")
    assert "invalid artifact name" in status
    assert not (workspace / "uploads" / "fake").exists() and not (workspace / "uploads" / "notes").exists()
    assert Catalog().find("fake") is None and Catalog().find("notes") is None
    # Over the limit: refused while uploading (the server never stores it), and the app stays up.
    big = tmp_path / "big.root"
    big.write_bytes(b"root" + b"\0" * (UPLOAD_LIMIT + 10))
    with pytest.raises(Exception, match="(?i)size"):
        client(url).predict(handle_file(str(big)), "big", "tq", api_name="/upload")
    assert "over the upload limit" in register_upload(str(big), "big", max_bytes=UPLOAD_LIMIT)
    assert "Choose a ROOT or HDF5 file" in register_upload(None, "x")
    assert client(url).predict("alive?", [], api_name="/chat")[0][-1]["content"][0]["text"].startswith("echo")


def test_jobs_panel(url, workspace):
    assert "No background jobs yet" in jobs_table()
    job_id = run_tool("generate_dataset", {"name": "bg", "processes": ["qcd"], "n_jets": 4}).data["job_id"]
    assert f"`{job_id}` | generate_dataset" in jobs_table()
    c = client(url)
    deadline = time.monotonic() + 90
    while "done" not in (text := c.predict(job_id, api_name="/job")[0]) and time.monotonic() < deadline:
        time.sleep(1)
    assert "done in" in text and "Dataset 'bg': 4 jets" in text
    assert "| generate_dataset | done |" in jobs_table()
    assert "had already ended" in c.predict(job_id, api_name="/cancel_job")[0]
    assert "no job 'job-20000101-000000-abcdef'" in c.predict("job-20000101-000000-abcdef", api_name="/job")[0]
    assert "bad arguments" in c.predict("not-a-job", api_name="/job")[0]


def test_password(workspace):
    app, url = start_app(auth=("phys", "s3cret"))
    try:
        with pytest.raises(Exception):  # noqa: B017 (gradio_client raises a bare ValueError here)
            Client(url, verbose=False)
        history, _ = Client(url, auth=("phys", "s3cret"), verbose=False).predict("hi", [], api_name="/chat")
        assert texts(history)[-1].startswith("echo hi")
    finally:
        app.close()


def test_cli_serve_options():
    from jetfm.tools.cli import build_parser

    args = build_parser().parse_args(["serve", "--auth", "u:p:w", "--port", "8000"])
    assert (args.host, args.port, args.auth, args.max_upload_mb) == ("127.0.0.1", 8000, ("u", "p:w"), 2048)
    assert build_parser().parse_args(["demo", "--no-serve"]).no_serve
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--auth", "nopassword"])


def test_jetfm_ask_goes_through_a_running_app(url, workspace, capsys):
    """`jetfm ask` finds the app of its workspace (serve.json) and lets its loaded agent answer;
    without a running app (or with a stale announcement) it answers in its own process."""
    from jetfm.agent import remote
    from jetfm.tools.cli import main

    assert remote.call(url, "ask", "plot the mass")["calls"] == [
        {"tool": "plot_observable", "args": {"dataset": "tq", "observable": "mass"}}
    ]
    with pytest.raises(ValueError):  # the fake agent has no router to plan with
        remote.call(url, "plan", "plot the mass")
    remote.announce(url, auth=False)
    try:
        assert remote.running_server() == url.rstrip("/") + "/"
        assert main(["ask", "--json", "say hello through the app"]) == 0
        assert "echo say hello through the app" in capsys.readouterr().out
    finally:
        remote.withdraw()
    assert remote.running_server() is None
    (workspace / remote.SERVER_FILE).write_text('{"url": "http://127.0.0.1:9/", "pid": 999999999, "auth": false}')
    assert remote.running_server() is None  # that process is gone
    (workspace / remote.SERVER_FILE).unlink()
