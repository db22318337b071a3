"""A local HTTP server that speaks the OpenAI chat-completions protocol (``GET /v1/models``,
``POST /v1/chat/completions``) with scripted replies, for testing the OpenAI-compatible backend
without a network. Each request is recorded so tests can check what the client sent."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def tool_reply(name: str, arguments: str | dict[str, Any]) -> dict[str, Any]:
    """An assistant message asking for one tool call (``arguments`` a dict, or raw text to send a
    malformed call)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    call = {
        "id": f"call_{name}_{time.monotonic_ns()}",
        "type": "function",
        "function": {"name": name, "arguments": args},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def text_reply(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


class OpenAIStub:
    def __init__(self, replies: list[dict[str, Any]], model: str = "stub-model"):
        self.replies = list(replies)
        self.model = model
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, body: dict[str, Any], code: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send({"object": "list", "data": [{"id": stub.model, "object": "model"}]})
                else:
                    self._send({"error": {"message": "not found"}}, 404)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                stub.requests.append(body)
                if not self.path.endswith("/chat/completions"):
                    self._send({"error": {"message": "not found"}}, 404)
                    return
                message = stub.replies.pop(0) if stub.replies else text_reply("(no more scripted replies)")
                finish = "tool_calls" if message.get("tool_calls") else "stop"
                self._send(
                    {
                        "id": "chatcmpl-stub",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": stub.model,
                        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> OpenAIStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
