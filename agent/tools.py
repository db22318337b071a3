"""The registry's typed tools as LangChain tools: the same schemas (sent to the LLM as JSON schema),
validation and execution by tools.registry.run_tool, the result's text wrapped as data for the LLM,
and the full ToolResult kept as the message's artifact for the faces (plots, tables)."""

from __future__ import annotations

import time
from typing import Any

from langchain_core.tools import StructuredTool

from tools.registry import ToolError, run_tool, tool_schemas
from tools.result import ToolResult
from tools.safety import as_llm_data


def _pending_note(args: dict[str, Any]) -> str:
    """If an argument names what a running job is still making, say so (the tool only knows the
    name does not exist yet)."""
    try:
        from tools.jobs import JobStore

        jobs = [j for j in JobStore().list_jobs() if j.state in ("queued", "running")]
    except Exception:  # the note is a courtesy; never let it hide the tool's own error
        return ""
    values = {str(v) for v in args.values() if isinstance(v, str)}
    for job in jobs:
        if job.args.get("name") in values:
            return (
                f" Note: {job.args['name']!r} is still being made by job {job.id} ({job.summary()}); "
                "ask again when it is done (job_status shows progress)."
            )
    return ""


def run_for_agent(name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Run a tool for an LLM: never raises for a bad call; the error text says what to change."""
    t0 = time.perf_counter()
    try:
        result, ok = run_tool(name, args), True
    except ToolError as err:
        result, ok = ToolResult(text=f"Error: {err}{_pending_note(args)}"), False
    artifact = {"ok": ok, "result": result, "duration_s": time.perf_counter() - t0, "args": args}
    return as_llm_data(name, result.text), artifact


def _make(name: str, description: str, parameters: dict[str, Any]) -> StructuredTool:
    def call(**kwargs: Any) -> tuple[str, dict[str, Any]]:
        return run_for_agent(name, kwargs)

    return StructuredTool.from_function(
        func=call, name=name, description=description, args_schema=parameters, response_format="content_and_artifact"
    )


def langchain_tools() -> list[StructuredTool]:
    return [
        _make(s["function"]["name"], s["function"]["description"], s["function"]["parameters"]) for s in tool_schemas()
    ]
