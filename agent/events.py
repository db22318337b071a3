"""What an agent turn produces, step by step, for any face (CLI, Gradio) to show as it happens:
a tool call starting, the tool's result, and the final answer in words."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class ToolStarted:
    call_id: str
    tool: str
    args: dict[str, Any]


@dataclass
class ToolFinished:
    call_id: str
    tool: str
    ok: bool  # false: the tool refused the call or failed; ``text`` says why
    text: str  # the tool's short text (what the LLM saw)
    duration_s: float
    plots: list[str] = field(default_factory=list)  # image paths in the workspace
    data: dict[str, Any] = field(default_factory=dict)  # structured result (tables, job ids, ...)


@dataclass
class Answer:
    text: str


AgentEvent = ToolStarted | ToolFinished | Answer


class Conversational(Protocol):
    """The agent as the faces see it; ``thread_id`` keeps one conversation's memory apart from
    every other's."""

    def stream(self, message: str, thread_id: str) -> Iterator[AgentEvent]: ...
