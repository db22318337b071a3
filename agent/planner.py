"""Planning without executing: a request -> the tool calls a backend would make, as
``[{"tool": ..., "args": {...}}]`` (``[]`` when no tool fits). This is what ``jetfm ask --dry-run``
prints and what benchmarks/agent_eval.py scores, for every backend the same way.

    planner = make_planner("embedded")      # or "embedded-untuned", "hf:/path/to/folder", "openai"
    planner.plan("simulate 5k top and QCD jets", context=PlanContext(datasets=["run2"]))
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from jetfm.agent.callformat import PlanContext, catalog_context
from jetfm.agent.guard import refusal_reason
from jetfm.errors import UsageError

__all__ = ["PlanContext", "Planner", "RouterPlanner", "OpenAIPlanner", "make_planner", "catalog_context"]


class Planner(Protocol):
    decision_seconds: list[float]
    question: str | None  # after plan(): the question asked back instead of calls (None: calls, or no tool fits)
    refusal: str | None  # after plan(): why the whole request was refused (agent/guard.py), else None

    def plan(self, request: str, context: PlanContext | None = None) -> list[dict[str, Any]]: ...


def screen(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A plan as it may run: a call that would read outside the workspace and the folders the user
    registered makes the whole request unsafe, so nothing of it is planned (the tool would refuse
    that call anyway; refusing the plan keeps its other steps from running half a request)."""
    from jetfm.tools.safety import PathNotAllowed, confine_path

    for call in calls:
        path = call["args"].get("path")
        if call["tool"] == "import_dataset" and isinstance(path, str):
            try:
                confine_path(path)
            except PathNotAllowed:
                return []
    return calls


class RouterPlanner:
    """The schema-constrained router on a local causal LM (embedded SmolLM2 or a HF folder)."""

    def __init__(self, path: str | None = None, adapter: str | None = "default"):
        from jetfm.agent.llm import load_router_lm
        from jetfm.agent.router import Router

        self.router = Router(load_router_lm(path, adapter))
        self.decision_seconds: list[float] = []
        self.question: str | None = None
        self.refusal: str | None = None

    def plan(self, request: str, context: PlanContext | None = None) -> list[dict[str, Any]]:
        result = self.router.plan(request, context if context is not None else catalog_context())
        self.decision_seconds = result.decision_seconds
        self.question = result.question
        self.refusal = result.refusal
        return screen(result.calls)


DRY_RUN_NOTE = "dry run: the tool was not executed; assume it succeeded and go on with the next step, if any"


class OpenAIPlanner:
    """An OpenAI-compatible server with native tool calling; each tool call is answered with a
    dry-run note so that a multi-step plan unfolds without executing anything."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, max_calls: int = 4):
        from jetfm.agent.backends import BackendConfig, make_chat_model

        self.chat = make_chat_model(BackendConfig(kind="openai", base_url=base_url, model=model, api_key=api_key))
        self.max_calls = max_calls
        self.decision_seconds = []
        self.question = None
        self.refusal = None

    def plan(self, request: str, context: PlanContext | None = None) -> list[dict[str, Any]]:
        from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage

        from jetfm.agent.prompts import system_prompt
        from jetfm.agent.tools import langchain_tools

        self.refusal = refusal_reason(request)
        if self.refusal is not None:  # the same whole-request refusal as the embedded router
            self.decision_seconds, self.question = [], None
            return []
        context = context if context is not None else catalog_context()
        model = self.chat.bind_tools(langchain_tools())
        messages: list[Any] = [SystemMessage(system_prompt(context)), HumanMessage(request)]
        calls: list[dict[str, Any]] = []
        self.decision_seconds = []
        self.question = None
        while len(calls) < self.max_calls:
            t0 = time.perf_counter()
            reply = model.invoke(messages)
            self.decision_seconds.append(time.perf_counter() - t0)
            if not reply.tool_calls:
                if not calls and str(reply.content).strip().endswith("?"):
                    self.question = str(reply.content).strip()  # the model asked back
                break
            messages.append(reply)
            for tc in reply.tool_calls:
                calls.append({"tool": tc["name"], "args": dict(tc["args"])})
                messages.append(ToolMessage(DRY_RUN_NOTE, tool_call_id=tc["id"]))
        return screen(calls[: self.max_calls])


def make_planner(backend: str = "embedded", **kwargs: Any) -> Planner:
    """``embedded`` (SmolLM2 + the shipped router adapter), ``embedded-untuned`` (no adapter),
    ``hf:/folder`` (a local Hugging Face model), or ``openai`` (``base_url=``, ``model=``, ``api_key=``)."""
    if backend == "embedded":
        return RouterPlanner()
    if backend == "embedded-untuned":
        return RouterPlanner(adapter=None)
    if backend.startswith("hf:"):
        return RouterPlanner(path=backend[3:], adapter=None)
    if backend == "openai":
        return OpenAIPlanner(kwargs["base_url"], kwargs["model"], kwargs.get("api_key"))
    raise UsageError(f"unknown backend {backend!r}; use embedded, embedded-untuned, hf:/path/to/folder or openai")


def plan_json(calls: list[dict[str, Any]]) -> str:
    return json.dumps(calls, indent=2)
