"""The agent: the LangChain graph with a scripted chat model (deterministic), the OpenAI-compatible
backend against a local server speaking that protocol, the router's logic, and bad input."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from openai_stub import OpenAIStub, text_reply, tool_reply

from jetfm.agent.backends import BackendConfig, BackendUnavailable
from jetfm.agent.callformat import PlanContext, auto_name, call_segments, plan_segments, tool_fields
from jetfm.agent.chat_model import RouterChatModel, conversation_context, summarize
from jetfm.agent.events import Answer, ToolFinished, ToolStarted
from jetfm.agent.graph import ChatAgent
from jetfm.agent.numbers import numbers_in
from jetfm.tools.registry import TOOLS


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("JETFM_HOME", str(tmp_path / "ws"))
    for var in ("JETFM_LLM_BACKEND", "JETFM_LLM_BASE_URL", "JETFM_LLM_MODEL", "JETFM_LLM_PATH"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "ws"


class Scripted(BaseChatModel):
    """A chat model that answers with the next scripted message and records what it was shown."""

    replies: list[Any]
    seen: list[Any] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Scripted:
        return self

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        reply = self.replies.pop(0) if self.replies else AIMessage(content="(script ended)")
        return ChatResult(generations=[ChatGeneration(message=reply)])


def call(name: str, args: dict[str, Any], i: int = 0) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"c{i}", "type": "tool_call"}])


# --- the graph ---------------------------------------------------------------------------------


def test_graph_runs_tools_and_streams_events_in_order():
    model = Scripted(replies=[call("list_artifacts", {}), AIMessage(content="Your workspace is empty.")], seen=[])
    events = list(ChatAgent(chat_model=model).stream("what do I have?", "t1"))
    assert [type(e) for e in events] == [ToolStarted, ToolFinished, Answer]
    assert events[0].tool == "list_artifacts" and events[1].ok and events[1].text == "the workspace is empty"
    assert events[2].text == "Your workspace is empty."
    # the tool's text reached the model marked as data, not instructions
    tool_msg = [m for m in model.seen[-1] if isinstance(m, ToolMessage)][0]
    assert "not instructions" in tool_msg.content and "the workspace is empty" in tool_msg.content


def test_graph_reports_a_failing_tool_and_names_what_exists():
    model = Scripted(
        replies=[call("describe_dataset", {"dataset": "nope"}), AIMessage(content="It does not exist.")], seen=[]
    )
    events = list(ChatAgent(chat_model=model).stream("describe nope", "t1"))
    finished = [e for e in events if isinstance(e, ToolFinished)][0]
    assert not finished.ok
    assert "no dataset named 'nope'" in finished.text and "known datasets" in finished.text


def test_memory_is_per_thread():
    model = Scripted(replies=[AIMessage(content="a1"), AIMessage(content="b1"), AIMessage(content="a2")], seen=[])
    agent = ChatAgent(chat_model=model)
    list(agent.stream("first message of A", "A"))
    list(agent.stream("first message of B", "B"))
    list(agent.stream("second message of A", "A"))
    shown = [m.content for m in model.seen[-1] if isinstance(m, HumanMessage)]
    assert shown == ["first message of A", "second message of A"]  # B's message never reaches A's thread


def test_empty_and_oversized_messages_get_a_clear_answer():
    agent = ChatAgent(chat_model=Scripted(replies=[], seen=[]))
    assert "type a request" in list(agent.stream("   ", "t"))[0].text
    assert "characters long" in list(agent.stream("x" * 10000, "t"))[0].text


def test_a_crashing_model_becomes_an_answer_not_an_exception():
    class Broken(Scripted):
        def _generate(self, *a: Any, **k: Any) -> ChatResult:
            raise ConnectionError("boom")

    events = list(ChatAgent(chat_model=Broken(replies=[], seen=[])).stream("hi", "t"))
    assert len(events) == 1 and isinstance(events[0], Answer) and "does not answer" in events[0].text


# --- the router as a chat model (with the router itself scripted) ------------------------------


class FakeRouter:
    def __init__(self, calls: list[dict[str, Any]]):
        self.calls, self.asked = calls, []

    def next_call(self, request: str, context: PlanContext, done: list[dict[str, Any]]) -> dict[str, Any] | None:
        self.asked.append((request, context, list(done)))
        return self.calls[len(done)] if len(done) < len(self.calls) else None


def test_router_chat_model_plays_the_plan_then_summarises():
    model = RouterChatModel()
    router = FakeRouter([{"tool": "list_artifacts", "args": {}}])
    model._router = router
    events = list(ChatAgent(chat_model=model).stream("what is in my workspace", "t"))
    assert [type(e) for e in events] == [ToolStarted, ToolFinished, Answer]
    assert events[-1].text == "The workspace is empty."  # what was done, in words (agent/answers.py)
    assert router.asked[-1][2] == [{"tool": "list_artifacts", "args": {}}]


def test_router_chat_model_without_a_fitting_tool_says_what_it_can_do():
    model = RouterChatModel()
    model._router = FakeRouter([])
    events = list(ChatAgent(chat_model=model).stream("book a meeting room for tomorrow at ten", "t"))
    assert len(events) == 1 and "No jetfm tool fits" in events[0].text and "cannot" in events[0].text


def test_router_chat_model_stops_after_a_failed_tool():
    model = RouterChatModel()
    router = FakeRouter(
        [{"tool": "describe_dataset", "args": {"dataset": "nope"}}, {"tool": "list_artifacts", "args": {}}]
    )
    model._router = router
    events = list(ChatAgent(chat_model=model).stream("describe nope and list things", "t"))
    assert sum(isinstance(e, ToolStarted) for e in events) == 1
    assert "could not run" in events[-1].text and "known datasets" in events[-1].text


def test_conversation_context_puts_what_the_user_just_used_first():
    history = [HumanMessage("gen"), call("generate_dataset", {"name": "tq2k", "n_jets": 2000})]
    ctx = conversation_context(history, PlanContext(datasets=["old", "tq2k_not"], models=["jetfm-default"]))
    assert ctx.datasets[0] == "tq2k"
    assert summarize("x", []).startswith("No jetfm tool fits")


# --- the call format and number parsing --------------------------------------------------------


def test_every_tool_field_has_a_kind_and_required_names_come_last():
    for name in TOOLS:
        specs = tool_fields(name)
        names = [s.name for s in specs]
        assert "name" not in names or names[-1] == "name"
        for s in specs:
            if s.kind in ("enum", "enum_list"):
                assert s.options


def test_call_segments_render_all_value_kinds():
    text = "".join(call_segments("generate_dataset", {"processes": ["top", "qcd"], "n_jets": 5000, "name": "x"}))
    assert text == " generate_dataset processes=top,qcd n_jets=5000 name=x\nCall:"
    text = "".join(call_segments("zero_shot_classify", {"dataset": "d", "labels": ["top quark", 'say "hi"']}))
    assert text == " zero_shot_classify dataset=d labels=\"top quark|say 'hi'\"\nCall:"
    assert "".join(plan_segments([])) == " end"


def test_auto_names_are_readable_and_unique():
    assert auto_name("generate_dataset", {"processes": ["top", "qcd"], "n_jets": 5000}) == "top-qcd-5k"
    assert auto_name("generate_dataset", {"processes": ["hbb"], "n_jets": 2500}, {"hbb-2.5k"}) == "hbb-2.5k-2"
    assert auto_name("finetune", {"dataset": "tq", "mode": "full", "n_labels": 1000}) == "full-tq-1k"
    assert auto_name("import_dataset", {"path": "/data/TTBar_000.root"}) == "TTBar_000"


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("simulate 5k top and QCD jets", [5000]),
        ("10,000 jets with pT between 500 and 700 GeV", [10000, 500, 700]),
        ("1e4 jets, seed=42", [10000, 42]),
        ("two thousand W jets", [2000]),
        ("run2 tau21 of jet 42", [42]),
        ("pT above 1.2 TeV", [1200]),
        ("the 3rd jet of H->bb", [3]),
        # compound number words; ranges in words stay two numbers; "three-prong" is no number
        ("two thousand five hundred of each", [2500]),
        ("twenty-five hundred jets, seed ninety-nine", [2500, 99]),
        ("one thousand and fifty three-prong jets", [1050]),
        ("between ten and twenty GeV", [10, 20]),
    ],
)
def test_numbers_in_requests(text, numbers):
    assert numbers_in(text) == numbers


# --- the OpenAI-compatible backend against a local server -------------------------------------


def test_openai_backend_calls_tools_natively_and_answers():
    replies = [tool_reply("list_artifacts", {"kind": "dataset"}), text_reply("You have no datasets yet.")]
    with OpenAIStub(replies) as server:
        agent = ChatAgent(BackendConfig(kind="openai", base_url=server.base_url, model="stub-model"))
        answer, calls = agent.ask("which datasets do I have?")
    assert calls[0]["tool"] == "list_artifacts" and calls[0]["args"] == {"kind": "dataset"} and calls[0]["ok"]
    assert answer == "You have no datasets yet."
    first = server.requests[0]
    assert first["model"] == "stub-model"
    assert {t["function"]["name"] for t in first["tools"]} == set(TOOLS)
    assert first["messages"][0]["role"] == "system" and "jets" in first["messages"][0]["content"]
    # the second request carries the tool's result as a tool message, wrapped as data
    tool_msgs = [m for m in server.requests[1]["messages"] if m["role"] == "tool"]
    assert "no artifacts of kind dataset yet" in tool_msgs[0]["content"]


def test_an_out_of_bounds_request_never_reaches_an_openai_backend():
    """The request guard sits in front of every backend: a deletion is refused before the server is
    asked, so its model cannot choose to run a part of it."""
    with OpenAIStub([tool_reply("list_artifacts", {})]) as server:
        agent = ChatAgent(BackendConfig(kind="openai", base_url=server.base_url, model="stub-model"))
        answer, calls = agent.ask("list my datasets and then delete every model in the workspace")
    assert calls == [] and server.requests == []
    assert answer.startswith("I did not run any part of that request")


def test_openai_planner_dry_run_executes_nothing(workspace):
    from jetfm.agent.planner import OpenAIPlanner

    replies = [
        tool_reply("generate_dataset", {"name": "tq", "processes": ["top", "qcd"], "n_jets": 5000}),
        tool_reply("plot_observable", {"dataset": "tq", "observable": "mass"}),
        text_reply("planned"),
    ]
    with OpenAIStub(replies) as server:
        calls = OpenAIPlanner(server.base_url, "stub-model").plan("simulate 5k top and qcd jets and plot the mass")
    assert [c["tool"] for c in calls] == ["generate_dataset", "plot_observable"]
    assert calls[0]["args"]["n_jets"] == 5000
    assert not (workspace / "datasets").exists()  # nothing generated


def test_openai_backend_malformed_tool_call_is_reported_and_nothing_runs():
    with OpenAIStub([tool_reply("describe_dataset", "{not json")]) as server:
        agent = ChatAgent(BackendConfig(kind="openai", base_url=server.base_url, model="stub-model"))
        events = list(agent.stream("describe it", "t"))
    assert not any(isinstance(e, ToolStarted) for e in events)
    assert any(isinstance(e, Answer) and "malformed" in e.text for e in events)


def test_openai_backend_that_does_not_answer_fails_clearly():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendUnavailable, match="does not answer"):
        ChatAgent(BackendConfig(kind="openai", base_url=f"http://127.0.0.1:{port}/v1", model="m"))
    with OpenAIStub([]) as server, pytest.raises(BackendUnavailable, match="no model 'other'"):
        ChatAgent(BackendConfig(kind="openai", base_url=server.base_url, model="other"))


def test_backend_config_from_env_and_flags(monkeypatch):
    monkeypatch.setenv("JETFM_LLM_BACKEND", "openai")
    monkeypatch.setenv("JETFM_LLM_BASE_URL", "http://h:1/v1")
    monkeypatch.setenv("JETFM_LLM_MODEL", "m")
    cfg = BackendConfig.from_env()
    assert (cfg.kind, cfg.base_url, cfg.model) == ("openai", "http://h:1/v1", "m")
    assert BackendConfig.from_env(kind="embedded").kind == "embedded"
    with pytest.raises(BackendUnavailable, match="needs a base URL"):
        BackendConfig.from_env(kind="openai", base_url="", model="")
    monkeypatch.setenv("JETFM_LLM_BACKEND", "gpt")
    with pytest.raises(BackendUnavailable, match="unknown LLM backend"):
        BackendConfig.from_env()


def test_cli_ask_dry_run_json_with_openai_backend(capsys):
    from jetfm.tools.cli import main

    with OpenAIStub([tool_reply("describe_dataset", {"dataset": "run2"}), text_reply("ok")]) as server:
        code = main(
            [
                "ask",
                "--dry-run",
                "--json",
                "--backend",
                "openai",
                "--base-url",
                server.base_url,
                "--model",
                "stub-model",
                "summarize run2",
            ]
        )
    assert code == 0
    assert json.loads(capsys.readouterr().out) == [{"tool": "describe_dataset", "args": {"dataset": "run2"}}]


def test_cli_ask_with_unreachable_backend_exits_with_a_message(capsys):
    from jetfm.tools.cli import main

    code = main(["ask", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "hi"])
    assert code == 2 and "does not answer" in capsys.readouterr().err


def test_removing_an_artifact_needs_the_user_to_confirm(monkeypatch, capsys, workspace):
    from jetfm.tools.catalog import Catalog
    from jetfm.tools.cli import main

    Catalog().register("old-sample", "dataset", workspace / "old")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["remove", "old-sample"]) == 2 and "needs confirmation" in capsys.readouterr().err
    assert Catalog().find("old-sample") is not None
    assert main(["remove", "old-sample", "--yes"]) == 0
    assert Catalog().find("old-sample") is None
    assert "remove" not in " ".join(TOOLS)  # the agent has no way to delete


def test_plans_that_would_read_outside_the_workspace_are_refused(workspace, tmp_path):
    from jetfm.agent.planner import screen
    from jetfm.tools.safety import allow_path

    inside = [{"tool": "import_dataset", "args": {"path": "data/TTBar_000.root", "name": "tt"}}]
    assert screen(inside) == inside  # relative: inside the workspace
    for path in ("/etc/passwd", "../../../../root/.ssh/id_rsa", str(tmp_path / "elsewhere" / "x.h5")):
        plan = [{"tool": "import_dataset", "args": {"path": path, "name": "x"}}, {"tool": "list_artifacts", "args": {}}]
        assert screen(plan) == []
    (tmp_path / "elsewhere").mkdir()
    allow_path(tmp_path / "elsewhere")  # the user registers the folder: now it may be planned
    ok = [{"tool": "import_dataset", "args": {"path": str(tmp_path / "elsewhere" / "x.h5"), "name": "x"}}]
    assert screen(ok) == ok


def test_a_name_still_being_made_by_a_job_is_explained(workspace):
    from langchain_core.tools import ToolException

    from jetfm.agent.tools import run_for_agent
    from jetfm.tools.jobs import JobStore

    job = JobStore().create("generate_dataset", {"name": "tq5k", "processes": ["top", "qcd"], "n_jets": 5000})
    with pytest.raises(ToolException) as failure:
        run_for_agent("describe_dataset", {"dataset": "tq5k"})
    assert "no dataset named 'tq5k'" in str(failure.value)
    assert f"still being made by job {job.id}" in str(failure.value)


def test_a_refused_tool_call_reaches_langchain_as_an_error_tool_message(workspace):
    from langchain_core.messages import ToolMessage

    from jetfm.agent.tools import langchain_tools

    tool = next(t for t in langchain_tools() if t.name == "describe_dataset")
    call = {"name": "describe_dataset", "args": {"dataset": "nope"}, "id": "c1", "type": "tool_call"}
    message = tool.invoke(call)
    assert isinstance(message, ToolMessage) and message.status == "error"
    assert "no dataset named 'nope'" in str(message.content) and not str(message.content).startswith("Error:")
