"""The CLI commands of the layer above tools/: ``jetfm ask`` and ``jetfm chat`` (the agent in a
terminal), ``jetfm serve`` (the chat app) and ``jetfm demo`` (the main job, which ends in the app).
``jetfm ask`` goes through a running ``jetfm serve`` of the same workspace when there is one (its
model is loaded already: agent/remote.py), else loads the model here (from the workspace's cache of
its weights after the first use, agent/llm.py).
They join ``jetfm``'s parser through the ``jetfm.cli`` entry point (see pyproject.toml)."""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

from jetfm.agent import remote
from jetfm.agent.backends import BackendConfig, BackendUnavailable
from jetfm.agent.events import Answer, ToolFinished, ToolStarted
from jetfm.tools.cli import positive_int
from jetfm.tools.registry import ToolError
from jetfm.tools.result import ToolResult


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
    from jetfm.agent.graph import ChatAgent
    from jetfm.agent.llm import LLMUnavailable

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


def _through_server(args: argparse.Namespace) -> bool:
    """Whether this request may go to a running `jetfm serve` (the embedded model, already loaded)."""
    return not args.local and backend_from(args).kind == "embedded"


def cmd_ask(args: argparse.Namespace) -> ToolResult:
    if args.dry_run:
        return _dry_run(args)
    served = remote.try_server("ask", args.request) if _through_server(args) else None
    if isinstance(served, dict):
        if not args.json:
            for c in served.get("calls", []):
                _show(ToolStarted(call_id="", tool=c["tool"], args=c["args"]))
        return ToolResult(text=served.get("answer", ""), data=served, plots=list(served.get("plots", [])))
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
    from jetfm.agent.llm import LLMUnavailable
    from jetfm.agent.planner import make_planner

    config = backend_from(args)
    backend = {"embedded": "embedded", "hf": f"hf:{config.path}", "openai": "openai"}[config.kind]
    served = remote.try_server("plan", args.request) if _through_server(args) else None
    if isinstance(served, dict):
        calls, question, refusal = served.get("calls", []), served.get("question"), served.get("refusal")
    else:
        try:
            planner = make_planner(backend, base_url=config.base_url, model=config.model, api_key=config.api_key)
            calls = planner.plan(args.request)
            question = getattr(planner, "question", None)
            refusal = getattr(planner, "refusal", None)
        except (BackendUnavailable, LLMUnavailable) as err:
            raise ToolError(str(err)) from None
        except Exception as err:  # a server that does not answer, a malformed reply
            raise ToolError(
                f"the {config.kind} backend could not plan the request: {type(err).__name__}: {err}"
            ) from None
    lines = [f"{c['tool']}({', '.join(f'{k}={v!r}' for k, v in c['args'].items())})" for c in calls]
    if calls:
        text = "Planned tool calls (nothing was run):\n" + "\n".join(lines)
    else:
        text = question or (f"Refused, nothing planned: {refusal}." if refusal else "No tool fits that request.")
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


def cmd_demo(args: argparse.Namespace) -> ToolResult:
    from jetfm.tools.demo import run_demo

    result = run_demo(n_jets=args.n_jets, workers=args.workers)
    if args.no_serve:
        return result
    print(result.text)
    for plot in result.plots:
        print(f"plot: {plot}")
    print("\nStarting the chat app (Gradio) on the shipped backbone, alignment and embedded LLM...")
    from jetfm.agent.app import serve

    serve(host=args.host, port=args.port, auth=args.auth, max_upload_bytes=args.max_upload_mb * 1024**2)
    return ToolResult(text="The chat app has stopped.")


def cmd_serve(args: argparse.Namespace) -> ToolResult:
    from jetfm.agent.app import serve

    upload_bytes = args.max_upload_mb * 1024**2
    # backend: the LLM each new browser session starts with (each session may switch in the app)
    serve(host=args.host, port=args.port, auth=args.auth, max_upload_bytes=upload_bytes, backend=backend_from(args))
    return ToolResult(text="The chat app has stopped.")


def _user_password(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not (sep and user and password):
        raise argparse.ArgumentTypeError("expected USER:PASSWORD")
    return user, password


def _serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: reachable from other machines)")
    p.add_argument("--port", type=positive_int, default=7860)
    p.add_argument("--auth", type=_user_password, default=None, metavar="USER:PASSWORD", help="ask for a password")
    p.add_argument("--max-upload-mb", type=positive_int, default=2048, help="largest jet file one may upload")


def register(sub: Any, add: Any) -> None:
    p = add("demo", cmd_demo, "the main job: generate a small mixed sample, summarise it, search it, open the chat app")
    p.add_argument("--n-jets", type=positive_int, default=1000)
    p.add_argument("--workers", type=positive_int, default=2)
    p.add_argument("--no-serve", action="store_true", help="stop after the sample and searches (no chat app)")
    _serve_options(p)
    p = add("serve", cmd_serve, "the chat app (Gradio): chat with the agent, search jets, add datasets")
    _serve_options(p)
    backend_options(p)
    p = add("ask", cmd_ask, "ask the agent one request in words; prints the tool calls and the answer")
    p.add_argument("request", help='e.g. "simulate 5k top and QCD jets and plot their mass"')
    p.add_argument("--dry-run", action="store_true", help="only plan the tool calls (with --json: as a JSON list)")
    p.add_argument(
        "--local", action="store_true", help="load the model here even when a `jetfm serve` of this workspace runs"
    )
    backend_options(p)
    p = add("chat", cmd_chat, "a conversation with the agent in the terminal")
    backend_options(p)
