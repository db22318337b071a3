"""``jetfm ask`` through a running ``jetfm serve``: the app already holds the loaded model, so a
request sent to it is planned (or answered) in about a second instead of loading the model again.

``jetfm serve`` writes ``serve.json`` into the workspace (its URL and process id) while it listens
and removes it when it stops; ``jetfm ask`` reads it and calls the app's ``plan`` or ``ask``
endpoint over Gradio's HTTP API (standard library only: no client to import). A server that is
gone, protected by a password, or not answering is skipped, and the request is served here."""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SERVER_FILE = "serve.json"


def server_file() -> Path:
    from jetfm.tools.workspace import workspace_root

    return workspace_root() / SERVER_FILE


def announce(url: str, auth: bool) -> Path:
    """Say (in the workspace) that this process serves the app at ``url``."""
    path = server_file()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "auth": auth}) + "\n")
    tmp.replace(path)
    return path


def withdraw() -> None:
    """Remove the announcement if it is this process's."""
    path = server_file()
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def running_server() -> str | None:
    """The URL of a ``jetfm serve`` of this workspace that is alive and needs no password, or None."""
    try:
        info = json.loads(server_file().read_text())
        os.kill(int(info["pid"]), 0)  # raises if that process is gone
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if info.get("auth"):
        return None
    return str(info["url"]).rstrip("/") + "/"


def call(url: str, endpoint: str, *args: Any, timeout_s: float = 600.0) -> Any:
    """One call of a Gradio endpoint: POST the arguments, then read the result from the event
    stream. Raises OSError (or ValueError) when the server does not answer as expected."""
    body = json.dumps({"data": list(args)}).encode()
    request = urllib.request.Request(
        f"{url}gradio_api/call/{endpoint}", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        event = json.loads(reply.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{endpoint}/{event}", timeout=timeout_s) as stream:
        kind = None
        for raw in stream:
            line = raw.decode().strip()
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                data = json.loads(line.split(":", 1)[1].strip() or "null")
                if kind == "error":
                    raise ValueError(f"the app could not serve the request: {data}")
                return data[0] if isinstance(data, list) and data else data
    raise ValueError("the app closed the stream without a result")


def try_server(endpoint: str, *args: Any) -> Any | None:
    """The app's answer, or None when no app serves this workspace (or it fails to answer)."""
    url = running_server()
    if url is None:
        return None
    try:
        return call(url, endpoint, *args)
    except (OSError, ValueError, urllib.error.URLError) as err:
        log.warning("the running jetfm serve at %s did not answer (%s); answering here", url, err)
        return None
