"""The chat tab's logic: which agent answers a session, and how an agent's events become Gradio
messages (a collapsible step per tool call, plots and tables inline, errors as plain messages).

One agent per backend setting serves every browser session (the embedded model loads once per
process); sessions stay apart by the thread id each one keeps in its own ``gr.State``."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jetfm.agent.backends import BackendConfig, BackendUnavailable, check_server
from jetfm.agent.events import Answer, Conversational, ToolFinished, ToolStarted
from jetfm.agent.llm import LLMUnavailable
from jetfm.tools.safety import clean_text
from jetfm.tools.search import label_name

log = logging.getLogger(__name__)

BACKEND_KINDS = ("embedded", "openai")  # hf (a local model folder) is chosen when starting the app
MAX_TABLE_ROWS = 20
# Columns a table in the chat leaves out: paths and timestamps say little at a glance.
_HIDDEN_COLUMNS = {"file", "path", "log", "created", "updated", "started", "finished", "pid", "args", "result"}

Message = dict[str, Any]


def default_agent_factory(backend: BackendConfig) -> Conversational:
    """The real agent, imported only when first needed (LangChain and the model are heavy)."""
    from jetfm.agent.graph import ChatAgent

    return ChatAgent(backend=backend)


class AgentPool:
    """One agent per backend setting, built on first use and shared by every session."""

    def __init__(self, factory: Callable[[BackendConfig], Conversational]) -> None:
        self._factory = factory
        self._agents: dict[BackendConfig, Conversational] = {}
        self._errors: dict[BackendConfig, str] = {}
        self._locks: dict[BackendConfig, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, backend: BackendConfig) -> Conversational:
        with self._guard:
            lock = self._locks.setdefault(backend, threading.Lock())
        with lock:  # a second session asking while the model loads waits for that one load
            if backend not in self._agents:
                try:
                    self._agents[backend] = self._factory(backend)
                except Exception as err:
                    self._errors[backend] = f"{type(err).__name__}: {err}"
                    raise
                self._errors.pop(backend, None)
            return self._agents[backend]

    def ready(self, backend: BackendConfig) -> bool:
        return backend in self._agents

    def warm(self, backend: BackendConfig) -> threading.Thread:
        """Build the agent in the background, so the app answers its first message sooner."""

        def load() -> None:
            try:
                self.get(backend)
            except Exception as err:  # the chat says so again on the first message
                log.warning("could not start the LLM (%s): %s", backend.describe(), err)

        thread = threading.Thread(target=load, name="jetfm-llm-warmup", daemon=True)
        thread.start()
        return thread

    def status(self, backend: BackendConfig) -> str:
        if backend in self._agents:
            return f"LLM: {backend.describe()}, ready."
        if backend in self._errors:
            return f"LLM: {backend.describe()} could not start ({self._errors[backend]})."
        if backend in self._locks:
            return f"LLM: loading {backend.describe()}..."
        return f"LLM: {backend.describe()}, loaded on the first message."


@dataclass
class ChatSession:
    """What one browser session keeps: its conversation's thread id and its LLM choice."""

    backend: BackendConfig = field(default_factory=BackendConfig)
    thread_id: str = field(default_factory=lambda: uuid.uuid4().hex)


# --- events -> messages ------------------------------------------------------------------------


def _text(content: str, title: str | None = None, **metadata: Any) -> Message:
    message: Message = {"role": "assistant", "content": content}
    if title is not None:
        message["metadata"] = {"title": title, **metadata}
    return message


def _fenced(text: str, lang: str = "") -> str:
    # Four backticks, so a tool text holding a three-backtick fence cannot close the block early.
    return f"````{lang}\n{text}\n````"


def _step_started(event: ToolStarted) -> Message:
    args = json.dumps(event.args, indent=2, default=str)
    return _text(_fenced(args, "json"), f"Tool: {event.tool}", id=event.call_id, status="pending")


def _finish_step(step: Message, event: ToolFinished) -> None:
    body = [step["content"], ("Result:" if event.ok else "**Failed:**"), _fenced(event.text)]
    job_id = event.data.get("job_id")
    if job_id:
        body.append(f"Background job `{job_id}`: its progress shows under *Background jobs* below.")
    step["content"] = "\n\n".join(body)
    step["metadata"].update(
        title=f"Tool: {event.tool}" if event.ok else f"Tool failed: {event.tool}",
        status="done",
        duration=round(event.duration_s, 2),
        log="ok" if event.ok else "failed",
    )


def _cell(key: str, value: Any) -> str:
    if key == "label" and isinstance(value, int):
        return label_name(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "/").replace("\n", " ")


def result_table(data: dict[str, Any]) -> str | None:
    """The first list of records in a tool's data (search hits, artifacts, jobs) as a Markdown table."""
    for value in data.values():
        if not (isinstance(value, list) and value and all(isinstance(r, dict) for r in value)):
            continue
        columns = [
            k
            for k, v in value[0].items()
            if k not in _HIDDEN_COLUMNS and isinstance(v, (int, float, str, bool)) and len(str(v)) <= 40
        ]
        if not columns:
            return None
        rows = [f"| {' | '.join(columns)} |", f"|{'---|' * len(columns)}"]
        rows += [f"| {' | '.join(_cell(c, r.get(c, '')) for c in columns)} |" for r in value[:MAX_TABLE_ROWS]]
        if len(value) > MAX_TABLE_ROWS:
            rows.append(f"\n({len(value) - MAX_TABLE_ROWS} more rows not shown)")
        return "\n".join(rows)
    return None


def _finished_outputs(event: ToolFinished) -> list[Message]:
    """Plots and a table of a tool's result, shown in the chat itself rather than inside the step."""
    out = [{"role": "assistant", "content": {"path": p, "alt_text": f"{event.tool} plot"}} for p in event.plots]
    table = result_table(event.data) if event.ok else None
    if table:
        out.append(_text(table))
    return out


def _is_unreachable(err: BaseException) -> bool:
    """A connection refused, a DNS failure or a timeout anywhere in the exception's chain (the
    openai and httpx clients wrap the socket error in their own types)."""
    seen: BaseException | None = err
    while seen is not None:
        name = type(seen).__name__
        if isinstance(seen, (ConnectionError, TimeoutError, urllib.error.URLError)) or any(
            word in name for word in ("Connect", "Timeout")
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def explain_failure(err: BaseException, backend: BackendConfig) -> str:
    """What the user reads when the agent (or its backend) raised: what happened and what to do."""
    if isinstance(err, (BackendUnavailable, LLMUnavailable)):  # their messages already say what to do
        return f"**The LLM could not start**: {clean_text(str(err), 600)}"
    detail = clean_text(f"{type(err).__name__}: {err}", 400)
    if backend.kind != "embedded" and _is_unreachable(err):
        return (
            f"**The LLM server at {backend.base_url} does not answer** ({detail}). Check that it is running "
            "and that the URL under *Data & settings* is right (OpenAI-compatible servers usually end in `/v1`), "
            "or switch back to the embedded model."
        )
    return (
        f"**Something went wrong while answering** ({detail}). The app is still running: try again, "
        "rephrase the request, or start a new conversation."
    )


def respond(
    pool: AgentPool, message: str, history: list[Message] | None, session: ChatSession
) -> Iterator[list[Message]]:
    """One turn: the user's message, then each event of the agent as it comes (streamed)."""
    history = list(history or [])
    if not (message or "").strip():
        history.append(_text("Type a request first, e.g. *plot the jet mass of demo-1000 by class*."))
        yield history
        return
    history.append({"role": "user", "content": message})
    yield history
    steps: dict[str, Message] = {}
    loading: Message | None = None
    try:
        if not pool.ready(session.backend):
            loading = _text("The first message loads the model once.", "Starting the LLM", status="pending")
            history.append(loading)
            yield history
            started = time.monotonic()
        agent = pool.get(session.backend)
        if loading is not None:
            loading["metadata"].update(status="done", duration=round(time.monotonic() - started, 1))
        for event in agent.stream(message, session.thread_id):
            if isinstance(event, ToolStarted):
                steps[event.call_id] = _step_started(event)
                history.append(steps[event.call_id])
            elif isinstance(event, ToolFinished):
                step = steps.pop(event.call_id, None)
                if step is None:  # a result without its start: show it all the same
                    step = _step_started(ToolStarted(event.call_id, event.tool, {}))
                    history.append(step)
                _finish_step(step, event)
                history += _finished_outputs(event)
            elif isinstance(event, Answer):
                history.append(_text(event.text.strip() or "(the model gave an empty answer)"))
            yield history
    except Exception as err:
        log.exception("the agent failed on a message")
        history.append(_text(explain_failure(err, session.backend)))
    for step in [*steps.values(), *([loading] if loading else [])]:
        if step["metadata"].get("status") == "pending":  # never leave a spinner running
            step["metadata"].update(status="done", log="interrupted")
    yield history


# --- one request from `jetfm ask` (agent/remote.py) ----------------------------------------------------


def plan_with(agent: Conversational, request: str) -> dict[str, Any]:
    """What ``jetfm ask --dry-run`` prints, planned by an agent's loaded router (nothing runs)."""
    from jetfm.agent.callformat import catalog_context
    from jetfm.agent.planner import screen

    router = getattr(getattr(agent, "chat_model", None), "router", None)
    if router is None:
        raise BackendUnavailable("this app's LLM is not the embedded router; plan with `jetfm ask --local`")
    plan = router().plan(request, catalog_context())
    return {"calls": screen(plan.calls), "question": plan.question, "refusal": plan.refusal,
            "decision_seconds": plan.decision_seconds}


def ask_with(agent: Conversational, request: str) -> dict[str, Any]:
    """One request answered by the app's agent, in a conversation of its own."""
    answer, calls, plots = "", [], []
    for event in agent.stream(request, uuid.uuid4().hex):
        if isinstance(event, ToolStarted):
            calls.append({"tool": event.tool, "args": event.args})
        elif isinstance(event, ToolFinished):
            plots += event.plots
        elif isinstance(event, Answer):
            answer = f"{answer}\n\n{event.text}".strip()
    return {"answer": answer, "calls": calls, "plots": plots}


# --- backend settings ----------------------------------------------------------------------------


def choose_backend(kind: str, base_url: str, model: str, api_key: str, session: ChatSession) -> tuple[str, ChatSession]:
    """Switch this session's LLM; returns a status line and the updated session. A server that does
    not answer is still chosen (it may be starting), with a warning."""
    if kind not in BACKEND_KINDS:
        return f"Unknown backend {kind!r}; choose one of {', '.join(BACKEND_KINDS)}.", session
    if kind == "embedded":
        session.backend = BackendConfig()
        return f"This session now talks to {session.backend.describe()}.", session
    base_url, model = (base_url or "").strip(), (model or "").strip()
    if not base_url.startswith(("http://", "https://")):
        return "Give the server's URL, starting with http:// or https:// (e.g. http://localhost:8000/v1).", session
    if not model:
        return "Give the model name the server serves (e.g. the name vLLM or Ollama lists).", session
    session.backend = BackendConfig(kind="openai", base_url=base_url, model=model, api_key=api_key.strip() or None)
    try:
        check_server(session.backend)
    except BackendUnavailable as err:
        return f"**Warning**: this session now uses {session.backend.describe()}, but {err}.", session
    return f"This session now talks to {session.backend.describe()}.", session
