"""The Gradio chat app (``jetfm serve``): a chat with the agent, a jet search, and the workspace's
data and settings. Bound to 127.0.0.1 unless told otherwise; optional password.

The layout and wiring live here; the logic of each tab lives in agent/app_chat.py,
agent/app_search.py and agent/app_data.py, over the same tools the CLI uses."""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from jetfm.agent import remote
from jetfm.agent.app_chat import (
    BACKEND_KINDS,
    AgentPool,
    ChatSession,
    ask_with,
    choose_backend,
    default_agent_factory,
    plan_with,
)
from jetfm.agent.app_chat import respond as chat_turn
from jetfm.agent.app_data import DEFAULT_MAX_UPLOAD_BYTES, human_size, job_details, jobs_table, register_upload
from jetfm.agent.app_search import AUTO_INDEX, SearchTab, dataset_names, index_names
from jetfm.agent.backends import BackendConfig
from jetfm.agent.events import Conversational
from jetfm.errors import UsageError
from jetfm.tools.workspace import workspace_root

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
POLL_S = 2.0  # how often an open page refreshes the jobs table and the LLM status
CHAT_CONCURRENCY = 8  # chats answered at once; the agent shares one model between them
EXAMPLES = [
    "What is in the workspace?",
    "Plot the jet mass of the latest dataset by class",
    "Find three-pronged jets with mass near 175 GeV",
    "Fine-tune the default backbone on 500 labelled jets and show the ROC curve",
]


def _dataset_choices(keep: str | None = None) -> dict[str, Any]:
    names = dataset_names()
    return gr.update(choices=names, value=keep if keep in names else (names[0] if names else None))


def _index_choices(dataset: str | None) -> dict[str, Any]:
    return gr.update(choices=[("default (built if missing)", AUTO_INDEX), *index_names(dataset)], value=AUTO_INDEX)


def build_app(
    agent_factory: Callable[[BackendConfig], Conversational] | None = None,
    *,
    pool: AgentPool | None = None,
    default_backend: BackendConfig | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
) -> gr.Blocks:
    """The app. ``agent_factory`` builds the agent for a backend setting (default: agent.graph's
    ChatAgent); one agent per setting serves all sessions, through ``pool`` if given."""
    pool = pool or AgentPool(agent_factory or default_agent_factory)
    default_backend = default_backend or BackendConfig()
    search = SearchTab()

    def new_session() -> ChatSession:  # called once per browser session by gr.State
        return ChatSession(backend=default_backend)

    def chat(message: str, history: list[dict[str, Any]], session: ChatSession) -> Iterator[tuple[Any, Any]]:
        cleared = False
        for shown in chat_turn(pool, message, history, session):
            yield shown, (gr.skip() if cleared else "")
            cleared = True

    def new_conversation(session: ChatSession) -> tuple[list, ChatSession]:
        return [], ChatSession(backend=session.backend)

    def poll(session: ChatSession) -> tuple[str, str]:
        return pool.status(session.backend), jobs_table()

    def upload(file: str | None, name: str, dataset: str | None) -> tuple[str, dict[str, Any]]:
        return register_upload(file, name, max_upload_bytes), _dataset_choices(keep=dataset)

    with gr.Blocks(title="jetfm", analytics_enabled=False) as app:  # offline: no usage reports
        session = gr.State(new_session)
        gr.Markdown("## jetfm: a foundation model for jets, and an assistant that drives it")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                llm_status = gr.Markdown(pool.status(default_backend), elem_id="llm-status")
                chatbot = gr.Chatbot(height=560, label="jetfm assistant", elem_id="chatbot", buttons=["copy_all"])
                with gr.Row():
                    box = gr.Textbox(
                        placeholder="Ask for a dataset, a plot, a search, a training run...",
                        show_label=False,
                        scale=8,
                        elem_id="chat-input",
                        autofocus=True,
                    )
                    send = gr.Button("Send", variant="primary", scale=1)
                    reset = gr.Button("New conversation", scale=1)
                gr.Examples(EXAMPLES, inputs=box, label="Try")
                with gr.Accordion("Background jobs", open=True):
                    jobs = gr.Markdown(elem_id="jobs")
                    with gr.Row():
                        job_id = gr.Textbox(label="Job id", scale=4)
                        show_job = gr.Button("Show result", scale=1)
                        cancel_job = gr.Button("Cancel job", variant="stop", scale=1)
                    job_text = gr.Markdown()
                    job_plots = gr.Gallery(label="Job plots", columns=3, height=320, visible=False)
            with gr.Tab("Search", id="search"):
                with gr.Row():
                    # Custom values: a dataset registered after the page loaded is still searchable by name.
                    dataset = gr.Dropdown(label="Dataset", allow_custom_value=True, scale=2)
                    index = gr.Dropdown(label="Similarity index", allow_custom_value=True, scale=2)
                    k = gr.Slider(1, 48, value=12, step=1, label="Jets to show", scale=1)
                with gr.Row():
                    query = gr.Textbox(
                        placeholder="e.g. three-pronged boosted top jets", show_label=False, scale=8, elem_id="query"
                    )
                    find = gr.Button("Search", variant="primary", scale=1)
                search_status = gr.Markdown(elem_id="search-status")
                hits = gr.State({})
                found = gr.Gallery(
                    label="Best matches",
                    columns=4,
                    height=520,
                    elem_id="results",
                    allow_preview=False,
                    object_fit="contain",
                )
                with gr.Row():
                    entry = gr.Number(label="Jet #", precision=0, minimum=0, scale=1)
                    more = gr.Button("Find similar jets", scale=1)
                similar_status = gr.Markdown(elem_id="similar-status")
                similar = gr.Gallery(
                    label="Similar jets", columns=4, height=520, elem_id="similar", object_fit="contain"
                )
            with gr.Tab("Data & settings", id="data"):
                gr.Markdown(
                    "**Add a dataset**: a ROOT (JetClass-style TTree), HDF5 (top-tagging, Aspen) or parquet jet "
                    f"file, at most {human_size(max_upload_bytes)}. It is copied into the workspace "
                    f"({workspace_root()}) and checked before it is registered."
                )
                with gr.Row():
                    file = gr.File(label="Jet file", file_types=[".root", ".h5", ".hdf5", ".parquet"], scale=3)
                    with gr.Column(scale=2):
                        name = gr.Textbox(label="Dataset name (default: the file's name)")
                        register = gr.Button("Register dataset", variant="primary")
                upload_status = gr.Markdown(elem_id="upload-status")
                gr.Markdown("**LLM for this browser session**: the embedded model, or any OpenAI-compatible server.")
                with gr.Row():
                    shown = default_backend.kind if default_backend.kind in BACKEND_KINDS else None  # hf: at start
                    kind = gr.Radio(list(BACKEND_KINDS), value=shown, label="Backend")
                    url = gr.Textbox(label="Server URL", placeholder="http://localhost:8000/v1")
                    model = gr.Textbox(label="Model name")
                    key = gr.Textbox(label="API key (if the server needs one)", type="password")
                apply = gr.Button("Use this LLM")
                backend_status = gr.Markdown(elem_id="backend-status")

        # Chat: streamed; many sessions at once (each waits only for the shared model).
        chat_io = {"inputs": [box, chatbot, session], "outputs": [chatbot, box]}
        box.submit(chat, **chat_io, api_name="chat", concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
        send.click(chat, **chat_io, api_visibility="private", concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
        reset.click(new_conversation, [session], [chatbot, session], api_name="new_conversation")
        timer = gr.Timer(POLL_S)
        for trigger in (app.load, timer.tick):
            trigger(poll, [session], [llm_status, jobs], api_visibility="private", concurrency_limit=None)

        def job(job_id_: str, cancel: bool = False) -> tuple[str, dict[str, Any]]:
            text, plots = job_details(job_id_, cancel)
            return text, gr.update(value=plots, visible=bool(plots))

        show_job.click(job, [job_id], [job_text, job_plots], api_name="job")
        cancel_job.click(lambda j: job(j, cancel=True), [job_id], [job_text, job_plots], api_name="cancel_job")

        # Search: a text query, then a click on a hit (or a jet number) for its look-alikes.
        app.load(_dataset_choices, [dataset], [dataset], api_visibility="private")
        dataset.change(_index_choices, [dataset], [index], api_visibility="private")
        search_io = {"inputs": [query, k, dataset], "outputs": [found, hits, search_status]}
        query.submit(search.search_text, **search_io, api_visibility="private")
        find.click(search.search_text, **search_io, api_name="search")
        more.click(search.similar, [entry, k, dataset, index], [similar, similar_status], api_name="similar")

        def pick(hits_: dict[str, Any], k_: float, index_: str | None, evt: gr.SelectData) -> tuple:
            return search.similar_to_hit(hits_, evt.index, k_, index_)

        found.select(pick, [hits, k, index], [entry, similar, similar_status], api_visibility="private")

        # Data & settings.
        register.click(upload, [file, name, dataset], [upload_status, dataset], api_name="upload")
        apply.click(choose_backend, [kind, url, model, key, session], [backend_status, session], api_name="backend")

        # For `jetfm ask` (agent/remote.py): the model this app has loaded plans or answers a request.
        def plan_request(request: str) -> dict[str, Any]:
            return plan_with(pool.get(default_backend), request)

        def ask_request(request: str) -> dict[str, Any]:
            return ask_with(pool.get(default_backend), request)

        gr.api(plan_request, api_name="plan", concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
        gr.api(ask_request, api_name="ask", concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
    return app


def launch_app(
    app: gr.Blocks,
    host: str = DEFAULT_HOST,
    port: int | None = DEFAULT_PORT,
    auth: tuple[str, str] | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    block: bool = True,
) -> str:
    """Start serving ``app``; returns its URL (after Ctrl-C when ``block``)."""
    app.queue(default_concurrency_limit=2)
    try:
        _, url, _ = app.launch(
            server_name=host,
            server_port=port,
            auth=auth,
            max_file_size=max_upload_bytes,  # refused while uploading, before it fills the disk
            allowed_paths=[str(workspace_root())],  # plots and jet images live in the workspace
            prevent_thread_lock=True,
            show_error=True,
            quiet=True,
            footer_links=["api"],
            theme=gr.themes.Soft(),
        )
    except OSError as err:
        raise UsageError(f"cannot serve on {host}:{port} ({err}); choose another --port") from None
    if block:
        app.block_thread()
    return url


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    auth: tuple[str, str] | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    backend: BackendConfig | None = None,
    agent_factory: Callable[[BackendConfig], Conversational] | None = None,
) -> None:
    """``jetfm serve``: build the app, start loading the LLM, serve until Ctrl-C."""
    backend = backend or BackendConfig.from_env()  # JETFM_LLM_* as for `jetfm chat`, else embedded
    pool = AgentPool(agent_factory or default_agent_factory)
    app = build_app(pool=pool, default_backend=backend, max_upload_bytes=max_upload_bytes)
    pool.warm(backend)  # the page is usable while the model loads; the first message waits for it
    shown = "localhost" if host in ("127.0.0.1", "localhost") else host
    print(f"Loading the LLM ({backend.describe()}) in the background...")
    if host not in ("127.0.0.1", "localhost", "::1") and auth is None:
        print(f"Warning: serving on {host} without a password; anyone who can reach it can use it (see --auth).")
    url = launch_app(app, host, port, auth, max_upload_bytes, block=False)
    print(f"The jetfm chat app is ready at http://{shown}:{port}/ (workspace {workspace_root()}); Ctrl-C stops it.")
    log.debug("gradio reports %s", url)
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "localhost") else host
    remote.announce(f"http://{local}:{port}/", auth=auth is not None)  # `jetfm ask` finds the loaded model here
    atexit.register(remote.withdraw)
    try:
        app.block_thread()
    finally:
        remote.withdraw()
