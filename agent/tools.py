"""The registry's typed tools as LangChain tools: the same schemas (sent to the LLM as JSON schema),
validation and execution by jetfm.tools.run.run_tool, the result's text wrapped as data for the LLM,
and the full ToolResult kept as the message's artifact for the faces (plots, tables)."""

from __future__ import annotations

import time
from typing import Any

from langchain_core.tools import StructuredTool, ToolException

from jetfm.tools.registry import ToolError, tool_schemas
from jetfm.tools.run import run_tool
from jetfm.tools.safety import as_llm_data


def _pending_note(args: dict[str, Any]) -> str:
    """If an argument names what a running job is still making, say so (the tool only knows the
    name does not exist yet)."""
    try:
        from jetfm.tools.jobs import JobStore

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
    """Run a tool for an LLM. A call the tool refuses raises ``ToolException`` with text that says
    what to change; LangChain turns it into a ``ToolMessage`` with ``status="error"``."""
    t0 = time.perf_counter()
    try:
        result = run_tool(name, args)
    except ToolError as err:
        raise ToolException(as_llm_data(name, f"{err}{_pending_note(args)}")) from None
    artifact = {"ok": True, "result": result, "duration_s": time.perf_counter() - t0, "args": args}
    return as_llm_data(name, result.text), artifact


def _make(name: str, description: str, parameters: dict[str, Any]) -> StructuredTool:
    def call(**kwargs: Any) -> tuple[str, dict[str, Any]]:
        return run_for_agent(name, kwargs)

    return StructuredTool.from_function(
        func=call,
        name=name,
        description=description,
        args_schema=parameters,
        response_format="content_and_artifact",
        handle_tool_error=True,  # a ToolException becomes the error ToolMessage the LLM reads
    )


def langchain_tools() -> list[StructuredTool]:
    return [
        _make(s["function"]["name"], s["function"]["description"], s["function"]["parameters"]) for s in tool_schemas()
    ]
