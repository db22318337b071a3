"""The schema-constrained router as a LangChain chat model, so that the same ``create_agent`` graph
runs on the embedded model and on an OpenAI-compatible server.

Each call of the model looks at the conversation: the latest user request, the tool calls already
made for it and their results. It answers with the next tool call the router chooses or, when the
router says the request is served (or a tool failed), with a plain-language summary of what the
tools returned. Earlier turns give context: artifacts they made or used become the first candidates
when the user says "it" or "the dataset".
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

from agent.callformat import PlanContext
from tools.safety import DATA_CLOSE, DATA_OPEN

CAPABILITIES = (
    "I drive jetfm's tools: simulate jets (qcd, top, W, Z, H->bb) with Pythia 8, import ROOT/HDF5 files, "
    "describe and plot datasets, show a jet, pretrain and finetune the transformer backbone, evaluate "
    "classifiers, embed and index jets, search jets by text or by similarity, scan for anomalies, and "
    "classify zero-shot. I cannot run code or shell commands, read system files or delete anything."
)
_WRAPPER = re.compile(re.escape(DATA_OPEN) + r"[^>]*>\n?|\n?" + re.escape(DATA_CLOSE))


def tool_text(message: ToolMessage) -> str:
    """A tool message's text without the data markers the LLM sees."""
    return _WRAPPER.sub("", str(message.content)).strip()


def _latest_turn(messages: Sequence[BaseMessage]) -> tuple[int, str]:
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return i, str(messages[i].content)
    return -1, ""


def conversation_context(messages: Sequence[BaseMessage], base: PlanContext) -> PlanContext:
    """``base`` with the datasets and models earlier calls of the conversation named put first
    (most recent first), so "it" resolves to what the user just worked on."""
    datasets, models = list(base.datasets), list(base.models)
    for msg in messages:
        for tc in getattr(msg, "tool_calls", None) or []:
            args = tc.get("args", {})
            made = args.get("name") if tc["name"] in ("generate_dataset", "import_dataset") else None
            for name in filter(None, [args.get("dataset"), made]):
                if isinstance(name, str):
                    datasets = [name, *[d for d in datasets if d != name]]
            if tc["name"] in ("pretrain", "finetune") and isinstance(args.get("name"), str):
                models = [args["name"], *[m for m in models if m != args["name"]]]
    return PlanContext(datasets=datasets, models=models, indexes=base.indexes, jobs=base.jobs)


def summarize(request: str, results: list[ToolMessage]) -> str:
    """The answer once the tools have run: each tool's own words (they are written for people),
    with what to do next when something failed."""
    if not results:
        return f"No jetfm tool fits that request, so I did nothing. {CAPABILITIES}"
    parts = []
    for msg in results:
        text = tool_text(msg)
        if msg.status == "error" or text.startswith("Error:"):
            parts.append(f"**{msg.name}** could not run: {text.removeprefix('Error: ')}")
        else:
            parts.append(f"**{msg.name}**: {text}")
    return "\n\n".join(parts)


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
                from agent.llm import load_router_lm
                from agent.router import Router

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
        from agent.planner import catalog_context

        start, request = _latest_turn(messages)
        turn = messages[start + 1 :]
        done = [
            {"tool": tc["name"], "args": tc["args"]} for m in turn if isinstance(m, AIMessage) for tc in m.tool_calls
        ]
        results = [m for m in turn if isinstance(m, ToolMessage)]
        failed = any(m.status == "error" or tool_text(m).startswith("Error:") for m in results)
        call = None
        if request.strip() and not failed:
            context = conversation_context(messages[:start], catalog_context())
            call = self.router().next_call(request, context, done)
        if call is None:
            message = AIMessage(content=summarize(request, results))
        else:
            tc = {
                "name": call["tool"],
                "args": call["args"],
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "tool_call",
            }
            message = AIMessage(content="", tool_calls=[tc])
        return ChatResult(generations=[ChatGeneration(message=message)])
