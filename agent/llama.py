"""A small Llama forward pass for routing with the cached SmolLM2, without importing transformers.

Why: on a 2-core machine, importing transformers and its Llama modelling code takes 4-5 s of a cold
``jetfm ask`` (the router itself decides in about a second). The router needs only next-token
log-probabilities with a key/value cache, so the cached model folder (``agent/llm.py`` writes it:
config.json, model.safetensors, tokenizer.json) is read here with safetensors and tokenizers and run
by this module. It supports what the embedded model uses: the Llama architecture with grouped-query
attention, default rotary embeddings, RMSNorm, a SiLU-gated MLP and tied or untied output weights;
:func:`supported` says whether a folder fits, and anything else loads through transformers.
A test checks its logits against transformers' on the embedded model.

The interface is the part of transformers' that ``agent/router.py`` calls: ``model(input_ids=...,
past_key_values=..., attention_mask=..., use_cache=True, logits_to_keep=...)`` returns ``.logits``
and ``.past_key_values``. Candidates are scored by :meth:`LlamaLM.continuation_logprobs`, packed in
one row (transformers models take the router's batched path instead). The tokenizer answers
``tok(text, add_special_tokens=False)["input_ids"]``, ``decode``, ``convert_ids_to_tokens``,
``convert_tokens_to_string``, ``len(tok)`` and the special-token ids.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def supported(folder: Path) -> bool:
    """Whether ``folder`` holds a model this module runs exactly (else use transformers)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    return (
        config.get("architectures") == ["LlamaForCausalLM"]
        and config.get("hidden_act") == "silu"
        and not config.get("attention_bias") and not config.get("mlp_bias")
        and rope.get("rope_type", "default") == "default"
        and (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    )


@dataclass
class Output:
    logits: Tensor
    past_key_values: KVCache


@dataclass
class Continuations:
    cache: KVCache  # with the prefix added
    after_prefix: Tensor | None  # next-token log-probabilities after the prefix (None without one)
    logprobs: list[Tensor]  # per sequence: (its length, vocabulary)


class KVCache:
    """Keys and values of the committed tokens, per layer: (batch, kv_heads, length, head_dim)."""

    def __init__(self, n_layers: int):
        self.keys: list[Tensor | None] = [None] * n_layers
        self.values: list[Tensor | None] = [None] * n_layers

    def length(self) -> int:
        return 0 if self.keys[0] is None else int(self.keys[0].shape[2])

    def update(self, layer: int, k: Tensor, v: Tensor, keep: int | None = None) -> tuple[Tensor, Tensor]:
        """The cached and the new keys and values; of the new positions, only the first ``keep``
        (all of them with None) stay in the cache."""
        past = 0 if self.keys[layer] is None else self.keys[layer].shape[2]
        if past:
            k = torch.cat([self.keys[layer], k], 2)
            v = torch.cat([self.values[layer], v], 2)
        if keep is None:
            self.keys[layer], self.values[layer] = k, v
        elif keep:
            self.keys[layer], self.values[layer] = k[:, :, : past + keep], v[:, :, : past + keep]
        return k, v


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float, device: str | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim, device=device))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        return self.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def _rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], -1)


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, kv_heads: int, head_dim: int, device: str | None = None):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.q_proj = nn.Linear(hidden, heads * head_dim, bias=False, device=device)
        self.k_proj = nn.Linear(hidden, kv_heads * head_dim, bias=False, device=device)
        self.v_proj = nn.Linear(hidden, kv_heads * head_dim, bias=False, device=device)
        self.o_proj = nn.Linear(heads * head_dim, hidden, bias=False, device=device)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, cache: KVCache, layer: int, mask: Tensor | None,
                keep: int | None = None) -> Tensor:
        b, n, _ = x.shape
        q = self.q_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        k, v = cache.update(layer, k, v, keep)
        # Grouped-query attention without copying keys and values per head (a tenth of a step on CPU).
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=self.heads != self.kv_heads)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, hidden: int, intermediate: int, device: str | None = None):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False, device=device)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False, device=device)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False, device=device)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, config: dict[str, Any], device: str | None = None):
        super().__init__()
        hidden, eps = config["hidden_size"], config["rms_norm_eps"]
        head_dim = config.get("head_dim") or hidden // config["num_attention_heads"]
        self.self_attn = Attention(hidden, config["num_attention_heads"], config["num_key_value_heads"], head_dim,
                                   device)
        self.mlp = MLP(hidden, config["intermediate_size"], device)
        self.input_layernorm = RMSNorm(hidden, eps, device)
        self.post_attention_layernorm = RMSNorm(hidden, eps, device)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, cache: KVCache, layer: int, mask: Tensor | None,
                keep: int | None = None) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, layer, mask, keep)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, config: dict[str, Any], device: str | None = None):
        super().__init__()
        # Given its (empty) weight: Embedding's own normal_ initialisation on the meta device imports dynamo.
        shape = (config["vocab_size"], config["hidden_size"])
        self.embed_tokens = nn.Embedding(*shape, _weight=torch.empty(shape, device=device))
        self.layers = nn.ModuleList(Layer(config, device) for _ in range(config["num_hidden_layers"]))
        self.norm = RMSNorm(config["hidden_size"], config["rms_norm_eps"], device)


def _inv_freq(config: dict[str, Any]) -> Tensor:
    """Rotary frequencies of the default RoPE: theta^(-2i/head_dim)."""
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    theta = float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))
    return 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)


class LlamaLM(nn.Module):
    """Inference only: next-token logits of every input position, with a key/value cache."""

    def __init__(self, config: dict[str, Any], device: str | None = None):
        super().__init__()
        self.config = config
        self.model = Body(config, device)
        self.lm_head = nn.Linear(config["hidden_size"], config["vocab_size"], bias=False, device=device)
        if config.get("tie_word_embeddings", True):
            self.lm_head.weight = self.model.embed_tokens.weight
        self.register_buffer("inv_freq", _inv_freq(config), persistent=False)

    @torch.no_grad()
    def forward(self, input_ids: Tensor, past_key_values: KVCache | None = None,
                attention_mask: Tensor | None = None, use_cache: bool = True, logits_to_keep: int = 0) -> Output:
        """As transformers' ``LlamaForCausalLM``: ``logits_to_keep`` > 0 computes the output layer
        (a fifth of the work per token) for the last positions only."""
        cache = past_key_values if past_key_values is not None else KVCache(len(self.model.layers))
        b, n = input_ids.shape
        past = cache.length()
        positions = torch.arange(past, past + n, device=input_ids.device)
        mask: Tensor | None = None
        if n > 1 or attention_mask is not None:
            # Causal over the cached and the new tokens; padding in attention_mask (0) is never attended.
            allowed = torch.ones(n, past + n, dtype=torch.bool, device=input_ids.device).tril(past)
            mask = allowed[None, None].expand(b, 1, n, past + n)
            if attention_mask is not None:
                mask = mask & attention_mask[:, None, None, :].bool()
        # One new token with no padding sees everything: no mask, so SDPA can take its fused path.
        hidden = self._layers(input_ids, positions, cache, mask)
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        return Output(self.lm_head(self.model.norm(hidden)), cache)

    @torch.no_grad()
    def continuation_logprobs(self, cache: KVCache | None, sequences: list[list[int]],
                              prefix: list[int] | None = None) -> Continuations:
        """Next-token log-probabilities at every position of each sequence, each one continuing the
        cached text (then ``prefix``) on its own. Only ``prefix`` is added to the cache.

        Everything goes into one row: the prefix attends causally to the cache and to itself; each
        sequence's token attends to the cache, the whole prefix and its own earlier tokens, at its
        own position. Scoring n candidates so costs one pass over the weights and their tokens only,
        where a batch would copy the cache n times and pad every candidate to the longest; and the
        text committed before them needs no pass of its own (on CPU a pass is bound by reading the
        weights, whatever the number of tokens).
        """
        cache = cache if cache is not None else KVCache(len(self.model.layers))
        device = self.lm_head.weight.device
        prefix = list(prefix or [])
        past, p = cache.length(), len(prefix)
        lengths = [len(s) for s in sequences]
        total = p + sum(lengths)
        ids = torch.tensor([prefix + [t for s in sequences for t in s]], device=device)
        offsets = torch.cat([torch.arange(p, device=device)] + [p + torch.arange(n, device=device) for n in lengths])
        # Who owns each new position: -1 the prefix, i the i-th sequence.
        owner = torch.tensor([-1] * p + [i for i, n in enumerate(lengths) for _ in range(n)], device=device)
        earlier = offsets[None, :] <= offsets[:, None]
        new = earlier & ((owner[:, None] == owner[None, :]) | (owner[None, :] == -1))
        mask = torch.cat([torch.ones(total, past, dtype=torch.bool, device=device), new], 1)[None, None]
        hidden = self._layers(ids, past + offsets, cache, mask, keep=p)[0]
        rows = [p - 1] if p else []
        logp = torch.log_softmax(self.lm_head(self.model.norm(hidden[rows + list(range(p, total))])).float(), -1)
        after = logp[0] if p else None
        return Continuations(cache, after, list(logp[len(rows):].split(lengths)))

    def _layers(self, input_ids: Tensor, positions: Tensor, cache: KVCache, mask: Tensor | None,
                keep: int | None = None) -> Tensor:
        freqs = torch.outer(positions.float(), self.inv_freq)
        angles = torch.cat([freqs, freqs], -1)
        cos, sin = angles.cos()[None, None], angles.sin()[None, None]
        x = self.model.embed_tokens(input_ids)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, cache, i, mask, keep)
        return x


def load_llama(folder: Path) -> LlamaLM:
    """The model of a cached folder (see :func:`supported`), in eval mode on the CPU."""
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text())
    # Parameters made on the meta device (no memory, no initialisation) and then given the file's
    # tensors. Passed as an argument: the torch.device context would route every call through a
    # function mode that imports torch's compiler stack (seconds).
    model = LlamaLM(config, device="meta")
    state = load_file(str(folder / "model.safetensors"))
    if "lm_head.weight" not in state:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state, assign=True, strict=True)
    if config.get("tie_word_embeddings", True):
        model.lm_head.weight = model.model.embed_tokens.weight
    model.inv_freq = _inv_freq(config)  # built on the meta device above, and not in the weights file
    return model.eval()


class Tokenizer:
    """The calls the router makes of a Hugging Face tokenizer, on the ``tokenizers`` library."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer as Backend

        self.backend = Backend.from_file(str(folder / "tokenizer.json"))
        settings: dict[str, Any] = {}
        for name in ("config.json", "tokenizer_config.json"):
            with contextlib.suppress(OSError, ValueError):
                settings |= json.loads((folder / name).read_text())
        self.bos_token_id = self._id(settings.get("bos_token"), settings.get("bos_token_id"))
        self.eos_token_id = self._id(settings.get("eos_token"), settings.get("eos_token_id"))
        self.pad_token_id = self._id(settings.get("pad_token"), settings.get("pad_token_id"))

    def _id(self, token: Any, default: Any) -> int | None:
        if isinstance(token, dict):
            token = token.get("content")
        found = self.backend.token_to_id(token) if isinstance(token, str) else None
        return found if found is not None else default

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": self.backend.encode(text, add_special_tokens=add_special_tokens).ids}

    def __len__(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def decode(self, ids: list[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=False)

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self.backend.id_to_token(i) for i in ids]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return self.backend.decoder.decode(tokens)
