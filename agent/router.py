"""Schema-constrained routing with a small causal LM: the model only ever chooses among what the tool
contract allows, so a 135M model cannot produce an unknown tool, an unknown argument or a value of
the wrong type.

Every decision scores a finite set of continuations by their log-likelihood under the model (the
prompt's key/value cache is shared, the candidates run as one batch): which tool (or ``end``), which
argument next (or the end of the call), which enum value, which number (those written in the
request), which artifact name (known artifacts, names made by earlier calls, words of the request).
Free text (a search query, zero-shot labels, a file path) is generated greedily with the tokens that
would leave the quotes masked out.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from agent.callformat import (
    CALL_PREFIX,
    END,
    LIST_SEP,
    TEXT_LIST_SEP,
    FieldSpec,
    PlanContext,
    auto_name,
    call_segments,
    format_number,
    prompt_text,
    router_tools,
    tool_fields,
    value_segments,
)
from agent.llm import LoadedLM
from agent.numbers import numbers_in

MAX_CALLS = 4
MAX_TEXT_TOKENS = 48
_NAME_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*[A-Za-z0-9_]|[A-Za-z0-9]")
# A file or folder as people type it: with a slash, or a name with a jet-file extension.
_PATH = re.compile(r"[\w~.\-]*/[\w~./\-]*[\w/]|[\w.\-]+\.(?:root|h5|hdf5|parquet)\b")
_JOB = re.compile(r"job-\d{8}-\d{6}-[0-9a-f]{6}")
_STOPWORDS = {"a", "an", "the", "of", "in", "on", "to", "for", "and", "or", "with", "it", "is", "me", "my", "i"}


class _Decoder:
    """The committed text's key/value cache plus the next-token log-probabilities."""

    def __init__(self, lm: LoadedLM, prompt: str):
        self.model, self.tok = lm.model, lm.tokenizer
        self.device = next(self.model.parameters()).device
        self.cache: Any = None
        self.logprobs: torch.Tensor | None = None
        self.length = 0
        self.commit(prompt)

    def ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    @torch.no_grad()
    def commit_ids(self, ids: list[int]) -> None:
        if not ids:
            return
        x = torch.tensor([ids], device=self.device)
        out = self.model(input_ids=x, past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        self.logprobs = torch.log_softmax(out.logits[0, -1].float(), -1)
        self.length += len(ids)

    def commit(self, text: str) -> None:
        self.commit_ids(self.ids(text))

    @torch.no_grad()
    def score(self, candidates: list[str], then: list[int] | None = None) -> list[float]:
        """Log-likelihood of each candidate continuation of the committed text. With ``then`` (the
        first tokens of whatever may follow), the candidate must also end there: without it "300"
        would always beat "3000", and "tq" would beat "tq5k", since a prefix is never less likely."""
        toks = [self.ids(c) for c in candidates]
        first = [float(self.logprobs[t[0]]) for t in toks]
        width = max(len(t) for t in toks)
        if width == 1 and then is None:
            return first
        n = len(toks)
        pad = toks[0][0]
        x = torch.tensor([t + [pad] * (width - len(t)) for t in toks], device=self.device)
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(n)
        mask = torch.ones((n, self.length + width), dtype=torch.long, device=self.device)
        logits = self.model(input_ids=x, past_key_values=cache, attention_mask=mask, use_cache=True).logits
        logp = torch.log_softmax(logits.float(), -1)
        scores = []
        for i, t in enumerate(toks):
            score = first[i] + sum(float(logp[i, j, t[j + 1]]) for j in range(len(t) - 1))
            if then is not None:
                score += float(torch.logsumexp(logp[i, len(t) - 1, then], 0))
            scores.append(score)
        return scores

    def choose(self, candidates: list[str], then: list[int] | None = None) -> int:
        scores = self.score(candidates, then)
        return max(range(len(candidates)), key=scores.__getitem__)

    @torch.no_grad()
    def free_text(self, banned: torch.Tensor, stop_id: int, closes: torch.Tensor) -> str:
        """Greedy text up to the closing quote (committed), never crossing a line. The text also
        ends where the model's own first choice would close the quote with a merged token (``",``)."""
        out: list[int] = []
        for _ in range(MAX_TEXT_TOKENS):
            if out and bool(closes[int(torch.argmax(self.logprobs))]):
                break
            logp = self.logprobs.masked_fill(banned, float("-inf"))
            if not out:  # an empty string is never what a request means
                logp[stop_id] = float("-inf")
            nxt = int(torch.argmax(logp))
            if nxt == stop_id:
                break
            out.append(nxt)
            self.commit_ids([nxt])
        self.commit_ids([stop_id])
        return self.tok.decode(out).strip()


@dataclass
class Plan:
    calls: list[dict[str, Any]] = field(default_factory=list)
    decision_seconds: list[float] = field(default_factory=list)


class Router:
    """Plans tool calls for a request with a (LoRA-tuned) causal LM."""

    def __init__(self, lm: LoadedLM):
        self.lm = lm
        tok = lm.tokenizer
        vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
        texts = [tok.convert_tokens_to_string([t]) for t in vocab]
        self._banned = torch.tensor(['"' in s or "\n" in s or s == "" for s in texts])
        self._closes = torch.tensor(['"' in s for s in texts])
        self._spaced = torch.tensor([any(c.isspace() for c in s) for s in texts])
        quote = tok('"', add_special_tokens=False)["input_ids"]
        if len(quote) != 1:
            raise ValueError("the router needs a tokenizer with a single token for '\"'")
        self._quote = quote[0]
        for special in (tok.eos_token_id, tok.bos_token_id, tok.pad_token_id):
            if special is not None:
                self._banned[special] = True
        self._banned[self._quote] = False  # the closing quote ends the text (see free_text)
        device = next(lm.model.parameters()).device
        self._banned, self._closes, self._spaced = (t.to(device) for t in (self._banned, self._closes, self._spaced))

    # --- planning ---------------------------------------------------------------------------

    def plan(self, request: str, context: PlanContext | None = None, max_calls: int = MAX_CALLS) -> Plan:
        context = context or PlanContext()
        dec = _Decoder(self.lm, prompt_text(request, context))
        plan = Plan()
        made: dict[str, list[str]] = {"dataset": [], "model": [], "index": []}
        while len(plan.calls) < max_calls:
            t0 = time.perf_counter()
            call = self._next(dec, request, context, made, plan.calls)
            plan.decision_seconds.append(time.perf_counter() - t0)
            if call is None:
                break
            plan.calls.append(call)
        return plan

    def next_call(self, request: str, context: PlanContext | None, done: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The call after ``done`` (calls already made for this request), or None when finished."""
        context = context or PlanContext()
        dec = _Decoder(self.lm, prompt_text(request, context))
        made: dict[str, list[str]] = {"dataset": [], "model": [], "index": []}
        for call in done:
            for seg in call_segments(call["tool"], call["args"]):
                dec.commit(seg)
            _record(call, made)
        if len(done) >= MAX_CALLS:
            return None
        return self._next(dec, request, context, made, done)

    def _next(
        self,
        dec: _Decoder,
        request: str,
        context: PlanContext,
        made: dict[str, list[str]],
        done: list[dict[str, Any]],
    ) -> dict[str, Any] | None:
        names = [*router_tools(), END]
        tool = names[dec.choose([" " + n for n in names])]
        dec.commit(" " + tool)
        if tool == END:
            return None
        args = self._arguments(dec, tool, request, context, made)
        call = {"tool": tool, "args": args}
        if call in done:  # the same call twice is never what a request means; stop instead
            return None
        _record(call, made)
        return call

    def _arguments(
        self, dec: _Decoder, tool: str, request: str, context: PlanContext, made: dict[str, list[str]]
    ) -> dict[str, Any]:
        fields = tool_fields(tool)
        cands = {f.name: self._values(f, tool, request, context, made) for f in fields}
        args: dict[str, Any] = {}
        pos = 0
        pending_list: FieldSpec | None = None
        while True:
            options: list[tuple[str, Any]] = []
            if pending_list is not None:
                options += [
                    (LIST_SEP + o, ("item", o)) for o in pending_list.options if o not in args[pending_list.name]
                ]
            required_left = False
            for f in fields[pos:]:
                if f.name in args:
                    continue
                if cands[f.name] or f.kind in ("text", "text_list"):
                    options.append((f" {f.name}=", ("key", f)))
                if f.required:
                    required_left = True
                    break
            if not required_left:
                options.append((CALL_PREFIX, ("end", None)))
            if not options:  # a required field with nothing to fill it: the tool will say what is missing
                dec.commit(CALL_PREFIX)
                return args
            text, (what, value) = options[dec.choose([o[0] for o in options])]
            dec.commit(text)
            if what == "end":
                return args
            if what == "item":
                args[pending_list.name].append(value)
                continue
            f = value
            pending_list = None
            pos = fields.index(f) + 1
            args[f.name] = self._value(dec, f, cands[f.name], tool, args)
            if f.kind == "enum_list":
                pending_list = f

    def _value(self, dec: _Decoder, f: FieldSpec, cands: list[Any], tool: str, args: dict[str, Any]) -> Any:
        if f.kind in ("text", "text_list"):
            dec.commit('"')
            if cands:  # a file path is copied from the request, never made up
                path = cands[dec.choose(cands, then=[self._quote])] if len(cands) > 1 else cands[0]
                dec.commit(path)
                dec.commit('"')
                return path
            # a file path has no spaces: the path ends where the model would start a new word
            banned = self._banned | self._spaced if f.name == "path" else self._banned
            text = dec.free_text(banned, self._quote, self._closes)
            if f.kind == "text_list":
                return [p.strip() for p in text.split(TEXT_LIST_SEP) if p.strip()]
            return text
        if f.kind == "new_name" and f.required:
            cands = [auto_name(tool, args, set()), *cands]
        if len(cands) == 1:
            value = cands[0]
        else:
            texts = [c if f.kind == "enum_list" else value_segments(f, c)[0] for c in cands]
            value = cands[dec.choose(texts, then=self._followers(dec, tool, f))]
        segs = value_segments(f, [value] if f.kind == "enum_list" else value)
        for seg in segs:
            dec.commit(seg)
        return [value] if f.kind == "enum_list" else value

    def _followers(self, dec: _Decoder, tool: str, f: FieldSpec) -> list[int]:
        """First tokens of every segment that may follow a value of ``f``: another argument, the
        next list item, or the end of the call."""
        segs = [f" {g.name}=" for g in tool_fields(tool)] + [CALL_PREFIX]
        if f.kind == "enum_list":
            segs += [LIST_SEP + o for o in f.options]
        return sorted({dec.ids(seg)[0] for seg in segs})

    def _values(
        self, f: FieldSpec, tool: str, request: str, context: PlanContext, made: dict[str, list[str]]
    ) -> list[Any]:
        """What a field may take for this request: finite, so the model only chooses."""
        if f.kind in ("enum", "enum_list"):
            return list(f.options)
        if f.kind == "bool":
            return [True, False]
        if f.kind in ("int", "float"):
            values = numbers_in(request)
            if f.kind == "int":
                values = [int(v) for v in values if float(v).is_integer()]
            return _unique(values, key=format_number)
        if f.kind == "text" and f.name == "path":
            return _unique(_PATH.findall(request))
        words = _name_words(request)
        if f.kind == "dataset":
            return _unique([*made["dataset"], *context.datasets, *words])
        if f.kind == "model":
            return _unique([*made["model"], *context.models, "jetfm-default", *words])
        if f.kind == "index":
            return _unique([*made["index"], *context.indexes, *words])
        if f.kind == "device":
            return _unique([*re.findall(r"cuda:\d+", request), "cpu", "cuda", "auto", "mps"])
        if f.kind == "job":
            return _unique([*_JOB.findall(request), *context.jobs])
        if f.kind == "new_name":
            taken = set(context.datasets) | set(context.models)
            return [w for w in _unique(words) if w not in taken]
        return []


def _record(call: dict[str, Any], made: dict[str, list[str]]) -> None:
    """Remember what a call creates, so later calls can name it."""
    name = call["args"].get("name")
    kind = {"generate_dataset": "dataset", "import_dataset": "dataset", "pretrain": "model", "finetune": "model"}
    if name and call["tool"] in kind:
        made[kind[call["tool"]]].insert(0, name)
    if call["tool"] == "build_index":
        made["index"].insert(
            0, name or f"idx-{call['args'].get('dataset')}-{call['args'].get('model', 'jetfm-default')}"
        )


def _name_words(request: str) -> list[str]:
    words = []
    for w in _NAME_TOKEN.findall(request):
        w = w.removesuffix("'s")
        if w.lower() not in _STOPWORDS and not _JOB.fullmatch(w):
            words.append(w)
    return words


def _unique(items: list[Any], key: Any = None) -> list[Any]:
    seen, out = set(), []
    for item in items:
        k = key(item) if key else item
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out
