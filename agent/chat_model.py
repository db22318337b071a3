"""The schema-constrained router as a LangChain chat model, so that the same ``create_agent`` graph
runs on the embedded model and on an OpenAI-compatible server.

Each call of the model looks at the conversation: the latest user request, the tool calls already
made for it and their results. It answers with the next tool call the router chooses; with one
short question when the request leaves a required argument open (the user's short reply then
completes that request); or, when the router says the request is served (or a tool failed), with
what was done in words (agent/answers.py). Earlier turns give context: what they made or used
comes first, and the previous turn's calls are what "it", "that job" and "do the same" mean.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from jetfm.agent.answers import answer
from jetfm.agent.callformat import PlanContext
from jetfm.agent.context import NeedsAnswer, after_turn
from jetfm.agent.guard import RequestRefused
from jetfm.backbone.data.classes import PROCESSES
from jetfm.tools.safety import DATA_CLOSE, DATA_OPEN

CAPABILITIES = (
    f"I drive jetfm's tools: simulate jets ({', '.join(PROCESSES)}) with Pythia 8, import ROOT/HDF5 files, "
    "describe and plot datasets, show a jet, pretrain and finetune the transformer backbone, evaluate "
    "classifiers, embed and index jets, search jets by text or by similarity, scan for anomalies, and "
    "classify zero-shot. I cannot run code or shell commands, read system files or delete anything."
)
QUESTION_KEY = "jetfm_question"  # on an AIMessage that asks back: the request it asks about
MAX_ANSWER_WORDS = 6
_WRAPPER = re.compile(re.escape(DATA_OPEN) + r"[^>]*>\n?|\n?" + re.escape(DATA_CLOSE))


def tool_text(message: ToolMessage) -> str:
    """A tool message's text without the data markers the LLM sees."""
    return _WRAPPER.sub("", str(message.content)).strip()


def _latest_turn(messages: Sequence[BaseMessage]) -> tuple[int, str]:
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return i, str(messages[i].content)
    return -1, ""


def _turns(messages: Sequence[BaseMessage]) -> list[tuple[list[dict[str, Any]], list[str]]]:
    """Per earlier turn: the calls it made and the ids of the jobs they started."""
    turns: list[tuple[list[dict[str, Any]], list[str]]] = []
    for msg in messages:
        if isinstance(msg, HumanMessage):
            turns.append(([], []))
        elif turns and isinstance(msg, AIMessage):
            turns[-1][0].extend({"tool": tc["name"], "args": dict(tc.get("args") or {})} for tc in msg.tool_calls)
        elif turns and isinstance(msg, ToolMessage):
            art = msg.artifact if isinstance(msg.artifact, dict) else {}
            job = getattr(art.get("result"), "data", {}).get("job_id") if art.get("result") is not None else None
            if isinstance(job, str):
                turns[-1][1].append(job)
    return turns


def conversation_context(messages: Sequence[BaseMessage], base: PlanContext) -> PlanContext:
    """``base`` with what earlier turns of the conversation made or used put first (most recent
    first), the jobs they started first among the jobs, and the previous turn's calls, so that "it",
    "that job" and "do the same for ..." resolve to what the user just worked on."""
    context = PlanContext(datasets=list(base.datasets), models=list(base.models), indexes=list(base.indexes),
                          jobs=list(base.jobs))
    for calls, jobs in _turns(messages):
        if calls:
            context = after_turn(context, calls, jobs)
    return context


def _pending_question(messages: Sequence[BaseMessage]) -> str | None:
    """The request the assistant asked back about, if its last message was that question."""
    for msg in reversed(messages):
        if isinstance(msg, AIMessage):
            return msg.additional_kwargs.get(QUESTION_KEY) if not msg.tool_calls else None
        if isinstance(msg, HumanMessage):
            continue
    return None


def _with_answer(question_for: str, reply: str) -> str:
    """A short reply to the assistant's question completes the request it asked about ("describe
    it" / "Which dataset...?" / "run2" -> "describe it run2"); anything longer is a new request."""
    return f"{question_for} {reply}" if len(reply.split()) <= MAX_ANSWER_WORDS else reply


def summarize(request: str, results: list[ToolMessage], calls: list[dict[str, Any]] | None = None) -> str:
    """The answer once the tools have run: what was done and the key figure of each result, in
    words (agent/answers.py); with what to do next when something failed."""
    if not results:
        return f"No jetfm tool fits that request, so I did nothing. {CAPABILITIES}"
    args_of = {c.get("id"): c.get("args", {}) for c in calls or []}
    outcomes = []
    for msg in results:
        art = msg.artifact if isinstance(msg.artifact, dict) else {}
        result = art.get("result")
        data = dict(getattr(result, "data", {}) or {})
        args = art.get("args") or args_of.get(msg.tool_call_id) or {}
        outcomes.append((msg.name or "tool", args, msg.status != "error", data, tool_text(msg)))
    return answer(outcomes)


class RouterChatModel(BaseChatModel):
    """LangChain face of agent.router.Router (embedded SmolLM2 or a local HF folder)."""

    model_path: str | None = None  # None: the embedded SmolLM2 with the shipped adapter
    adapter: str | None = "default"
    _router: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "jetfm-router"

    def router(self) -> Any:
        """The router, loaded on first use (once, however many chats ask at the same time)."""
        with self._lock:
            if self._router is None:
                from jetfm.agent.llm import load_router_lm
                from jetfm.agent.router import Router

                adapter = self.adapter if self.model_path is None else None
                self._router = Router(load_router_lm(self.model_path, adapter))
        return self._router

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> RouterChatModel:
        # The router knows the registry's tools from their schemas (and was trained on them); the
        # tools the agent binds are those same tools, so binding changes nothing.
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        from jetfm.agent.callformat import catalog_context

        start, request = _latest_turn(messages)
        asked = _pending_question(messages[:start])
        if asked and request.strip():
            request = _with_answer(asked, request.strip())
        turn = messages[start + 1 :]
        done = [
            {"tool": tc["name"], "args": tc["args"]} for m in turn if isinstance(m, AIMessage) for tc in m.tool_calls
        ]
        results = [m for m in turn if isinstance(m, ToolMessage)]
        failed = any(m.status == "error" for m in results)
        call = None
        if request.strip() and not failed:
            context = conversation_context(messages[:start], catalog_context())
            try:
                call = self.router().next_call(request, context, done)
            except NeedsAnswer as ask:
                message = AIMessage(content=str(ask), additional_kwargs={QUESTION_KEY: request})
                return ChatResult(generations=[ChatGeneration(message=message)])
            except RequestRefused as refused:
                message = AIMessage(content=f"I did not run any part of that request: {refused}.")
                return ChatResult(generations=[ChatGeneration(message=message)])
        if call is None:
            calls = [tc for m in turn if isinstance(m, AIMessage) for tc in m.tool_calls]
            message = AIMessage(content=summarize(request, results, calls))
        else:
            tc = {
                "name": call["tool"],
                "args": call["args"],
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "tool_call",
            }
            message = AIMessage(content="", tool_calls=[tc])
        return ChatResult(generations=[ChatGeneration(message=message)])
