"""``run_tool``: how every face (Python, the agent, the app, ``jetfm tool``) runs a typed tool by name.

Short tools run here; long ones start as background jobs (tools/jobs.py), whose workers run them
with ``registry.call_tool``.
"""

from __future__ import annotations

from typing import Any

from jetfm.tools.jobs import submit
from jetfm.tools.registry import call_tool, get_tool
from jetfm.tools.result import ToolResult


def run_tool(name: str, args: dict[str, Any] | None = None, wait: bool = False) -> ToolResult:
    """Run a tool by name with JSON-like arguments: what the agent and any other face call. A long
    tool is started as a background job (its id in the result) unless ``wait`` is true."""
    tool = get_tool(name)
    if tool.long_running and not wait:
        job_id = submit(name, args)
        text = f"Started {name} as background job {job_id}; check it with job_status (job_id={job_id!r})."
        return ToolResult(text=text, data={"job_id": job_id, "state": "queued"})
    return call_tool(name, args)
