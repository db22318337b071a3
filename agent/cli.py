"""``jetfm ask`` and ``jetfm chat``: the agent in a terminal (registered in tools/cli.py)."""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

from agent.backends import BackendConfig, BackendUnavailable
from agent.events import Answer, ToolFinished, ToolStarted
from tools.registry import ToolError
from tools.result import ToolResult


def backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        choices=["embedded", "openai", "hf"],
        default=None,
        help="LLM backend (default: $JETFM_LLM_BACKEND, else embedded SmolLM2-135M)",
    )
    p.add_argument("--base-url", default=None, help="OpenAI-compatible server, e.g. http://localhost:8000/v1")
    p.add_argument("--model", default=None, help="model name on that server")
    p.add_argument("--api-key", default=None, help="API key for the server (default: $JETFM_LLM_API_KEY)")
    p.add_argument("--model-path", default=None, help="local Hugging Face model folder (backend hf)")


def backend_from(args: argparse.Namespace) -> BackendConfig:
    try:
        return BackendConfig.from_env(
            kind=args.backend, base_url=args.base_url, model=args.model, api_key=args.api_key, path=args.model_path
        )
    except BackendUnavailable as err:
        raise ToolError(str(err)) from None


def _agent(args: argparse.Namespace) -> Any:
    from agent.graph import ChatAgent
    from agent.llm import LLMUnavailable

    try:
        return ChatAgent(backend_from(args))
    except (BackendUnavailable, LLMUnavailable) as err:
        raise ToolError(str(err)) from None


def _show(event: Any, out: Any = sys.stderr) -> None:
    if isinstance(event, ToolStarted):
        args = ", ".join(f"{k}={v!r}" for k, v in event.args.items())
        print(f"-> {event.tool}({args})", file=out, flush=True)
    elif isinstance(event, ToolFinished):
        state = "done" if event.ok else "failed"
        print(f"<- {event.tool} {state} in {event.duration_s:.1f} s", file=out, flush=True)
        for plot in event.plots:
            print(f"   plot: {plot}", file=out, flush=True)


def cmd_ask(args: argparse.Namespace) -> ToolResult:
    if args.dry_run:
        return _dry_run(args)
    agent = _agent(args)
    answer, calls, plots = "", [], []
    for event in agent.stream(args.request, uuid.uuid4().hex):
        if not args.json:
            _show(event)
        if isinstance(event, ToolStarted):
            calls.append({"tool": event.tool, "args": event.args})
        elif isinstance(event, ToolFinished):
            plots += event.plots
        elif isinstance(event, Answer):
            answer = f"{answer}\n\n{event.text}".strip()
    return ToolResult(text=answer, data={"answer": answer, "calls": calls}, plots=plots)


def _dry_run(args: argparse.Namespace) -> ToolResult:
    from agent.llm import LLMUnavailable
    from agent.planner import make_planner

    config = backend_from(args)
    backend = {"embedded": "embedded", "hf": f"hf:{config.path}", "openai": "openai"}[config.kind]
    try:
        planner = make_planner(backend, base_url=config.base_url, model=config.model, api_key=config.api_key)
        calls = planner.plan(args.request)
    except (BackendUnavailable, LLMUnavailable) as err:
        raise ToolError(str(err)) from None
    except Exception as err:  # a server that does not answer, a malformed reply
        raise ToolError(f"the {config.kind} backend could not plan the request: {type(err).__name__}: {err}") from None
    lines = [f"{c['tool']}({', '.join(f'{k}={v!r}' for k, v in c['args'].items())})" for c in calls]
    text = "Planned tool calls (nothing was run):\n" + "\n".join(lines) if calls else "No tool fits that request."
    return ToolResult(text=text, data=calls)  # type: ignore[arg-type]  # --json prints the list itself


def cmd_chat(args: argparse.Namespace) -> ToolResult:
    agent = _agent(args)
    thread = uuid.uuid4().hex
    print(f"jetfm chat ({agent.backend.describe()}). Type a request; 'exit' or Ctrl-D ends.", flush=True)
    while True:
        try:
            line = input("you> ")
        except EOFError:
            print()
            break
        if line.strip().lower() in ("exit", "quit", ":q"):
            break
        if not line.strip():
            continue
        for event in agent.stream(line, thread):
            _show(event, sys.stdout)
            if isinstance(event, Answer):
                print(f"jetfm> {event.text}", flush=True)
    return ToolResult(text="bye")


def register(sub: Any, add: Any) -> None:
    p = add("ask", cmd_ask, "ask the agent one request in words; prints the tool calls and the answer")
    p.add_argument("request", help='e.g. "simulate 5k top and QCD jets and plot their mass"')
    p.add_argument("--dry-run", action="store_true", help="only plan the tool calls (with --json: as a JSON list)")
    backend_options(p)
    p = add("chat", cmd_chat, "a conversation with the agent in the terminal")
    backend_options(p)
