"""The agent: LangChain's ``create_agent`` over jetfm's tools, one memory per conversation
(``thread_id``), streamed as events (agent/events.py) for the CLI and the chat app.

    agent = ChatAgent()                                   # embedded backend, or BackendConfig(...)
    for event in agent.stream("simulate 5k top and QCD jets", thread_id="me"):
        print(event)
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, dynamic_prompt
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from jetfm.agent.backends import BackendConfig, BackendUnavailable, check_server, make_chat_model
from jetfm.agent.chat_model import tool_text
from jetfm.agent.events import AgentEvent, Answer, ToolFinished, ToolStarted
from jetfm.agent.guard import refusal_reason
from jetfm.agent.prompts import system_prompt
from jetfm.agent.tools import langchain_tools

log = logging.getLogger(__name__)

MAX_STEPS = 16  # graph steps per turn (model + tools); a model that loops is stopped with a message
MAX_MESSAGE_CHARS = 4000


@dynamic_prompt
def _workspace_prompt(request: ModelRequest) -> str:
    """The system prompt with the workspace as it is now (names the model may use)."""
    from jetfm.agent.callformat import catalog_context

    try:
        return system_prompt(catalog_context())
    except Exception:  # an unreadable catalog must not stop the conversation; the tools will say more
        log.exception("could not read the catalog for the system prompt")
        return system_prompt()


class ChatAgent:
    """One agent per backend; conversations are kept apart by ``thread_id``."""

    def __init__(self, backend: BackendConfig | None = None, chat_model: Any = None, check: bool = True):
        self.backend = backend or BackendConfig.from_env()
        if chat_model is None:
            if check and self.backend.kind == "openai":
                check_server(self.backend)
            chat_model = make_chat_model(self.backend)
            if hasattr(chat_model, "router"):
                chat_model.router()  # load the local model now, not in the middle of the first answer
        self.chat_model = chat_model
        self.graph = create_agent(
            chat_model, tools=langchain_tools(), middleware=[_workspace_prompt], checkpointer=InMemorySaver()
        )

    def stream(self, message: str, thread_id: str) -> Iterator[AgentEvent]:
        """The turn's events as they happen; every failure ends as an Answer that says what went
        wrong (a face never sees an exception from here)."""
        message = (message or "").strip()
        if not message:
            yield Answer("Please type a request, e.g. 'simulate 2k top and QCD jets and plot their mass'.")
            return
        if len(message) > MAX_MESSAGE_CHARS:
            yield Answer(
                f"That message is {len(message)} characters long; please keep requests under {MAX_MESSAGE_CHARS}."
            )
            return
        # Out-of-bounds requests (agent/guard.py) are refused here, before any backend sees them:
        # an OpenAI-compatible model must not be the one to decide whether to wipe the workspace.
        reason = refusal_reason(message)
        if reason is not None:
            yield Answer(f"I did not run any part of that request: {reason}.")
            return
        config = {"configurable": {"thread_id": thread_id}, "recursion_limit": MAX_STEPS}
        started: dict[str, float] = {}
        answered = False
        try:
            for update in self.graph.stream({"messages": [HumanMessage(message)]}, config, stream_mode="updates"):
                for node in update.values():
                    for msg in (node or {}).get("messages", []):
                        for event in self._events(msg, started):
                            answered |= isinstance(event, Answer)
                            yield event
        except Exception as err:  # the backend, not the user: say what to do and keep the app up
            log.exception("agent turn failed")
            yield Answer(_explain(err, self.backend))
            return
        if not answered:
            yield Answer("I stopped without an answer; please rephrase the request.")

    def _events(self, msg: Any, started: dict[str, float]) -> Iterator[AgentEvent]:
        if isinstance(msg, AIMessage):
            for bad in msg.invalid_tool_calls or []:
                yield Answer(
                    f"The language model produced a malformed tool call ({bad.get('name')!r}: "
                    f"{bad.get('error') or 'arguments are not valid JSON'}); nothing was run. Please rephrase."
                )
            for tc in msg.tool_calls:
                started[tc["id"]] = time.perf_counter()
                yield ToolStarted(call_id=tc["id"], tool=tc["name"], args=dict(tc["args"]))
            if not msg.tool_calls and not msg.invalid_tool_calls:
                yield Answer(str(msg.content).strip() or "(the model gave an empty answer)")
        elif isinstance(msg, ToolMessage):
            art = msg.artifact if isinstance(msg.artifact, dict) else {}
            result = art.get("result")
            duration = art.get("duration_s", time.perf_counter() - started.get(msg.tool_call_id, time.perf_counter()))
            yield ToolFinished(
                call_id=msg.tool_call_id,
                tool=msg.name or "",
                ok=bool(art.get("ok", msg.status != "error")),
                text=tool_text(msg),
                duration_s=float(duration),
                plots=list(getattr(result, "plots", []) or []),
                data=dict(getattr(result, "data", {}) or {}),
            )

    def ask(self, message: str, thread_id: str | None = None) -> tuple[str, list[dict[str, Any]]]:
        """One request: the answer and the tool calls made (with their outcome)."""
        thread_id = thread_id or uuid.uuid4().hex
        answer, calls = "", []
        for event in self.stream(message, thread_id):
            if isinstance(event, ToolStarted):
                calls.append({"tool": event.tool, "args": event.args})
            elif isinstance(event, ToolFinished):
                for c in calls:
                    if c["tool"] == event.tool and "ok" not in c:
                        c.update(ok=event.ok, text=event.text, plots=event.plots)
                        break
            else:
                answer = event.text if not answer else answer + "\n\n" + event.text
        return answer, calls


def _explain(err: Exception, backend: BackendConfig) -> str:
    name = type(err).__name__
    if isinstance(err, BackendUnavailable):
        return str(err)
    if "Connection" in name or "Timeout" in name:
        return (
            f"The LLM backend ({backend.describe()}) does not answer: {err}. Check that the server runs, or "
            "switch to the embedded backend."
        )
    if "Recursion" in name:
        return f"I stopped after {MAX_STEPS} steps without finishing; please split the request into smaller ones."
    return f"Something went wrong while answering ({name}: {err}). The details are in the log; nothing was lost."
