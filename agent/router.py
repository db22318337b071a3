"""Schema-constrained routing with a small causal LM: the model only ever chooses among what the tool
contract allows, so a 135M model cannot produce an unknown tool, an unknown argument or a value of
the wrong type.

Every decision scores a finite set of continuations by their log-likelihood under the model (the
prompt's key/value cache is shared, the candidates run as one batch): which tool (or ``end``), which
argument next (or the end of the call), and which value. The values offered are grounded in what
the request names, typed by agent/entities.py (``grounded_values``): the enum values its words say
(agent/lexicon.py), the numbers it writes whose surrounding words fit the argument ("seed 42" is no
batch size; a total is offered for "5k top and 5k QCD"), the artifacts it names by role (a model is
never offered as a dataset), what earlier calls of the plan made, and what the previous turn made or
used when the request points back ("it", "that job"). The model decides which of those to write,
and whether to write them at all. A required argument with nothing grounded to fill it is not
guessed: the plan stops with one short question (``Plan.question``). Free text (a search query,
zero-shot labels) is generated greedily with the tokens that would leave the quotes masked out.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from jetfm.agent.callformat import (
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
from jetfm.agent.clauses import THE_CLASSIFIER, Clause, tools_of
from jetfm.agent.context import NeedsAnswer
from jetfm.agent.entities import (
    Entities,
    asks_for_an_explanation,
    asks_for_what_no_tool_does,
    extract,
    off_topic,
    search_description,
)
from jetfm.agent.guard import RequestRefused, refusal_reason
from jetfm.agent.lexicon import find_terms, vocabulary_of
from jetfm.agent.llm import LoadedLM
from jetfm.agent.spelling import correct_spelling
from jetfm.agent.spoken import written_form
from jetfm.errors import UsageError
from jetfm.tools.registry import TOOLS

MAX_CALLS = 4
# Log-likelihood head start of the tools an action's words name. One action: enough to settle a near
# tie, not to overrule a clear preference. Several actions: the tuned model reads a request as a bag
# of actions and prefers the most salient one first (measured: "index X and find the neighbours of
# jet 0" puts search_similar ~8 nats above build_index for the first step), so the step's own words
# weigh more; the model still chooses among the action's tools and can overrule an unlikely one.
CLAUSE_PRIOR = 3.0
STEP_PRIOR = 10.0
MAX_TEXT_TOKENS = 48
# Which numbers a numeric argument may take, by what the words around them say they count
# (agent/numbers.py); a number whose words say nothing may go anywhere its schema allows.
NUMBER_ROLES: dict[str, tuple[str, ...]] = {
    "n_jets": ("jets", "jets_total"),
    "k": ("k", "jets"),
    "n_labels": ("n_labels", "jets"),
    "steps": ("steps",),
    "seed": ("seed",),
    "workers": ("workers",),
    "batch_size": ("batch_size",),
    "lr": ("lr",),
    "index": ("index",),
    "entry": ("index",),
    "pt_min": ("pt_min", "pt"),
    "pt_max": ("pt_max", "pt"),
    "mass_min": ("mass_min", "mass"),
    "mass_max": ("mass_max", "mass"),
}
_DATA_SUFFIXES = (".root", ".h5", ".hdf5", ".hdf", ".parquet", ".pq")
# Settings whose number the request names by the setting's own word (the number's role is exactly the
# field): once stated, a call of a tool with that field writes it (see stated_settings).
STATED_ROLES = ("steps", "seed", "workers", "batch_size", "lr", "k", "n_labels", "entry",
                "pt_min", "pt_max", "mass_min", "mass_max")
# Options named by their own words ("linear probe", "an HNSW graph", "contrastive", "a small
# backbone", "masked-particle likelihood", "the jet mass", "per class"): once stated, a call of a tool
# with that field writes it.
STATED_VOCABULARIES = ("mode", "objective", "size", "index_kind", "anomaly_method", "observable", "by_label",
                       "device")
_SIGNAL = re.compile(r"\bas (?:the )?signal\b|\bsignal(?: class)?\s*(?:=|:|is|being)", re.I)
# Tools that act on a running job
JOB_TOOLS = ("cancel_job", "job_status")
# Tools whose count of jets is what they return: "find 30 jets like entry 7" states k = 30.
JETS_ARE_K = ("search_similar", "search_text")


def next_target(ent: Entities, done: list[dict[str, Any]]) -> tuple[str, str, list[str]] | None:
    """A one-action request that names several datasets, models or jobs for a tool that takes one
    ("embed tq5k and run2", "evaluate both tagger_a and tagger_b on X", "cancel job-1 and job-2") has
    a call for each: after the calls so far (all of one tool), that tool, its field and the named
    targets no call has used yet; None otherwise."""
    if not done or len(ent.clauses) > 1 or any(call["tool"] != done[0]["tool"] for call in done):
        return None
    used = {v for call in done for v in call["args"].values() if isinstance(v, str)}
    fields = tool_fields(done[0]["tool"])
    for f in fields:
        # a tool with a second field of the kind (anomaly_scan's reference) may take both names in one call
        if f.required and f.kind in ("dataset", "model", "job") and sum(g.kind == f.kind for g in fields) == 1:
            named = {"dataset": ent.datasets, "model": ent.models, "job": ent.jobs}[f.kind]
            left = [n for n in named if n not in used]
            if len(named) >= 2 and left:
                return done[0]["tool"], f.name, left
        # "redo it with seeds 101, 102 and 103": one run per seed
        if f.name == "seed" and f.kind == "int":
            seeds = _unique([int(n.value) for n in ent.numbers if n.role == "seed"])
            left = [v for v in seeds if v not in {call["args"].get("seed") for call in done}]
            if len(seeds) >= 2 and left:
                return done[0]["tool"], f.name, left
        # "plot both tau21 and the jet mass": one plot per observable
        if f.kind == "enum" and vocabulary_of(done[0]["tool"], f.name) == "observable":
            named = [o for o in ent.terms.get("observable", []) if o in f.options]
            left = [o for o in named if o not in used]
            if len(named) >= 2 and left:
                return done[0]["tool"], f.name, left
    return None


# More jets than a search returns: a count of jets this large, of a named class, is a sample to make.
MIN_JETS_TO_MAKE = 100


def wants_new_jets(ent: Entities) -> bool:
    """Whether a request with no action word counts out jets of named classes ("we need 3000 H to bb
    jets", "get me 4k gluon jets") and names no sample, job or index to work on."""
    counted = any(n.role in ("jets", "jets_total") and n.value >= MIN_JETS_TO_MAKE for n in ent.numbers)
    return bool(counted and ent.classes and not (ent.datasets or ent.indexes or ent.jobs or ent.paths))


def current_clause(ent: Entities, done: list[dict[str, Any]]) -> Clause | None:
    """The action of a request of several actions (agent/clauses.py) that the next call serves; None
    for a one-action request, or once every action has had its call."""
    if len(ent.clauses) >= 2 and len(done) < len(ent.clauses):
        return ent.clauses[len(done)]
    return None


# Everything in the workspace, whatever kinds are named beside it.
_EVERYTHING = re.compile(r"\b(?:whatever (?:is|'s) there|whatever i have|everything|all of it|anything at all"
                         r"|all (?:my|the) (?:stuff|things|artifacts))\b", re.I)
# "then scan X for anomalies against it": what the plan made is the reference
_AGAINST_IT = re.compile(r"\b(?:against|versus|vs\.?|relative to|compared (?:to|with))\s+(?:it|them|that|this|those)\b",
                         re.I)
# Jets kept by their truth label: "the top-labelled jets", "jets labelled as W".
_LABELLED = re.compile(r"\b[\w>-]+-labell?ed\b|\blabell?ed\s+as\b|\b\w+s\s+only\b"
                       r"|\bonly\s+(?:the\s+)?[\w>\u2192*-]+\s+jets\b", re.I)


def stated_settings(tool: str, ent: Entities, done: list[dict[str, Any]]) -> set[str]:
    """The fields of ``tool`` whose value the request states with the field's own word and that no
    earlier call of this plan used ("seed 7" of a generate step is not the next step's seed)."""
    used = {float(v) for call in done for v in call["args"].values()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
    fields = tool_fields(tool)
    names = {f.name for f in fields}
    roles = {_stated_role(n.role, tool, names) for n in ent.numbers if n.value not in used}
    stated = {role for role in roles if role in STATED_ROLES and role in names}
    # A catalog model the action names is the one to use ("... with the masked-particle
    # reconstruction of fm_mpm"), unless an earlier call of the plan already used it.
    used_names = {v for call in done for v in call["args"].values() if isinstance(v, str)}
    if any(m not in used_names for m in ent.models):
        stated |= {f.name for f in fields if f.kind == "model"}
    if tool == "finetune" and ent.sizes and "scratch" in ent.terms.get("mode", []):
        stated.add("model")  # "a tiny tagger from scratch": the size is the model
    for f in fields:
        vocab = vocabulary_of(tool, f.name)
        if vocab in STATED_VOCABULARIES and any(v not in used_names for v in ent.terms.get(vocab, [])):
            stated.add(f.name)
    if any(n not in used_names for n in ent.new_names):  # "... and call it hbb_hnsw": the name is written
        stated |= {f.name for f in fields if f.kind == "new_name"}
    if ent.terms.get("device"):  # "on the GPU"
        stated |= {f.name for f in fields if f.kind == "device"}
    if any(i not in used_names for i in ent.indexes):  # "using idx-run2-jetfm-default"
        stated |= {f.name for f in fields if f.kind == "index"}
    # A dataset the action names is the one to use ("find 25 jets in boosted_tt ..."), even where the
    # field is optional (a search defaults to the latest dataset).
    if any(d not in used_names for d in ent.datasets):
        stated |= {f.name for f in fields if f.kind == "dataset" and f.name == "dataset"}
    if len([d for d in ent.datasets if d not in used_names]) >= 2 or ent.references \
            or (done and _AGAINST_IT.search(ent.action_text or ent.request)):  # "... against qcd_ref"
        stated |= {f.name for f in fields if f.name == "reference"}
    # Two classes or more named are the classes a classifier separates ("W, Z and light-quark/gluon")
    # or a search keeps ("restrict to H->bb and QCD"); one class alone is usually a tagger's signal.
    # Classes an earlier call of the plan used are that call's ("generate top and QCD jets ... then
    # fine-tune on them": the sample's classes, not a restriction of the classifier).
    used_lists = {v for call in done for value in call["args"].values() if isinstance(value, list) for v in value}
    if len([c for c in ent.classes if c not in used_lists]) >= 2:
        stated |= {f.name for f in fields if f.kind == "enum_list" and f.name in ("classes", "labels")}
    if ent.classes and _LABELLED.search(ent.action_text or ent.request):  # "only among the top-labelled jets"
        stated |= {f.name for f in fields if f.kind == "enum_list" and f.name == "labels"}
    if ent.classes and _SIGNAL.search(ent.action_text or ent.request):  # "with hbb as signal"
        stated |= {f.name for f in fields if f.name == "signal"}
    return stated


def _stated_role(role: str, tool: str, names: set[str]) -> str:
    if role == "jets" and tool in JETS_ARE_K:
        return "k"
    if role == "index" and "entry" in names:  # "similar to jet 4": the entry (the index field is FAISS's)
        return "entry"
    return role


class _Decoder:
    """The committed text's key/value cache plus the next-token log-probabilities.

    Committed tokens wait in ``_pending`` until something needs what follows them: with
    agent/llama.py they go through the model in the same pass as the candidates scored next."""

    def __init__(self, lm: LoadedLM, prompt: str):
        self.model, self.tok = lm.model, lm.tokenizer
        self.device = next(self.model.parameters()).device
        self.packed = hasattr(self.model, "continuation_logprobs")
        self.cache: Any = None
        self._logprobs: torch.Tensor | None = None
        self._pending: list[int] = []
        self.length = 0  # tokens in the cache
        self.commit(prompt)
        self._flush()  # the prompt's pass is not part of a decision

    def ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    @property
    def logprobs(self) -> torch.Tensor:
        self._flush()
        assert self._logprobs is not None
        return self._logprobs

    def commit_ids(self, ids: list[int]) -> None:
        self._pending.extend(ids)

    def commit(self, text: str) -> None:
        self.commit_ids(self.ids(text))

    @torch.no_grad()
    def _flush(self) -> None:
        if not self._pending:
            return
        x = torch.tensor([self._pending], device=self.device)
        out = self.model(input_ids=x, past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        self.cache = out.past_key_values
        self._logprobs = torch.log_softmax(out.logits[0, -1].float(), -1)
        self.length += len(self._pending)
        self._pending = []

    @torch.no_grad()
    def score(self, candidates: list[str], then: list[int] | None = None) -> list[float]:
        """Log-likelihood of each candidate continuation of the committed text. With ``then`` (the
        first tokens of whatever may follow), the candidate must also end there: without it "300"
        would always beat "3000", and "tq" would beat "tq5k", since a prefix is never less likely."""
        toks = [self.ids(c) for c in candidates]
        width = max(len(t) for t in toks)
        if width == 1 and then is None:
            return [float(self.logprobs[t[0]]) for t in toks]
        if self.packed:  # agent/llama.py: the pending text and the candidates in one pass
            out = self.model.continuation_logprobs(self.cache, toks, prefix=self._pending)
            if self._pending:
                self.cache, self._logprobs = out.cache, out.after_prefix
                self.length += len(self._pending)
                self._pending = []
            logp: Any = out.logprobs
        else:  # transformers: one batch row per candidate over copies of the cache
            logp = self._batched_logprobs(toks, width)
        first = [float(self.logprobs[t[0]]) for t in toks]
        scores = []
        for i, t in enumerate(toks):
            rows = logp[i]
            score = first[i] + sum(float(rows[j, t[j + 1]]) for j in range(len(t) - 1))
            if then is not None:
                score += float(torch.logsumexp(rows[len(t) - 1, then], 0))
            scores.append(score)
        return scores

    def _batched_logprobs(self, toks: list[list[int]], width: int) -> torch.Tensor:
        self._flush()
        n, pad = len(toks), toks[0][0]
        x = torch.tensor([t + [pad] * (width - len(t)) for t in toks], device=self.device)
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(n)
        mask = torch.ones((n, self.length + width), dtype=torch.long, device=self.device)
        logits = self.model(input_ids=x, past_key_values=cache, attention_mask=mask, use_cache=True).logits
        return torch.log_softmax(logits.float(), -1)

    def choose(self, candidates: list[str], then: list[int] | None = None, prior: list[float] | None = None) -> int:
        """The most likely candidate; ``prior`` (log-space, per candidate) is added to the model's scores."""
        scores = self.score(candidates, then)
        if prior is not None:
            scores = [s + p for s, p in zip(scores, prior)]
        return max(range(len(candidates)), key=scores.__getitem__)

    def fork(self) -> _Decoder:
        """A copy that can commit text without changing this one (to try a continuation)."""
        other = copy.copy(self)
        other.cache = copy.deepcopy(self.cache)
        other._pending = list(self._pending)
        return other

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
    question: str | None = None  # set when a required argument has nothing to fill it: ask, do not guess
    refusal: str | None = None  # set when the whole request is refused (agent/guard.py): why, in words


# How a question names what a tool would do with the dataset it lacks.
_DATASET_VERB = {
    "describe_dataset": "describe",
    "plot_observable": "plot",
    "show_jet": "show a jet of",
    "pretrain": "pretrain on",
    "finetune": "fine-tune on",
    "evaluate": "evaluate on",
    "embed": "embed",
    "build_index": "index",
    "search_similar": "search",
    "anomaly_scan": "scan",
    "zero_shot_classify": "classify",
}
MAX_NAMES_ASKED = 5


def _choices(names: list[str]) -> str:
    shown = names[:MAX_NAMES_ASKED]
    more = ", ..." if len(names) > MAX_NAMES_ASKED else ""
    return (", ".join(shown[:-1]) + " or " + shown[-1] if len(shown) > 1 else shown[0]) + more


def question_for(tool: str, f: FieldSpec, context: PlanContext, choices: list[str] | None = None) -> str:
    """One short question for the argument a request left open (among ``choices`` where the request
    narrowed it down: "my top sample" with two top samples)."""
    if f.kind == "dataset" and choices:
        return f"Which sample should I {_DATASET_VERB.get(tool, 'use')}: {_choices(choices)}?"
    if f.kind == "dataset":
        if not context.datasets:
            return ("Which dataset should I use? The workspace has none yet: generate one first, e.g. "
                    "'simulate 5k top and QCD jets'.")
        return f"Which dataset should I {_DATASET_VERB.get(tool, 'use')}: {_choices(context.datasets)}?"
    if f.kind == "model":
        models = [m for m in context.models if m != "jetfm-default"] or context.models
        return f"Which classifier should I evaluate: {_choices(models)}?" if models else "Which model should I use?"
    if f.kind == "job":
        if context.jobs:
            return f"Which job: {_choices(context.jobs)}?"
        return "Which job? No background job is running; give its id (job-...)."
    if f.name == "path":
        return "Which file should I import? Give its path, inside the workspace or a folder you registered."
    return f"What should {f.name} be for {tool}?"


def readable(request: str, context: PlanContext) -> str:
    """The request as the router reads it: dictated and shorthand forms written out (spoken.py),
    then typos corrected (spelling.py); the workspace's names stay as they are named."""
    names = [*context.datasets, *context.models, *context.indexes]
    return correct_spelling(written_form(request, names), names)


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
            raise UsageError("the router needs a tokenizer with a single token for '\"'")
        self._quote = quote[0]
        for special in (tok.eos_token_id, tok.bos_token_id, tok.pad_token_id):
            if special is not None:
                self._banned[special] = True
        self._banned[self._quote] = False  # the closing quote ends the text (see free_text)
        device = next(lm.model.parameters()).device
        self._banned, self._closes, self._spaced = (t.to(device) for t in (self._banned, self._closes, self._spaced))

    # --- planning ---------------------------------------------------------------------------

    def plan(self, request: str, context: PlanContext | None = None, max_calls: int = MAX_CALLS) -> Plan:
        reason = refusal_reason(request)
        if reason is not None:
            return Plan(refusal=reason)
        context = context or PlanContext()
        request = readable(request, context)
        ent = extract(request, context)
        dec = _Decoder(self.lm, prompt_text(request, context, ent))
        plan = Plan()
        made: dict[str, list[str]] = {"dataset": [], "model": [], "index": []}
        while len(plan.calls) < max_calls:
            t0 = time.perf_counter()
            try:
                call = self._next(dec, ent, context, made, plan.calls)
            except NeedsAnswer as ask:
                plan.decision_seconds.append(time.perf_counter() - t0)
                return Plan(calls=[], decision_seconds=plan.decision_seconds, question=str(ask))
            plan.decision_seconds.append(time.perf_counter() - t0)
            if call is None:
                break
            plan.calls.append(call)
        return plan

    def next_call(self, request: str, context: PlanContext | None, done: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The call after ``done`` (calls already made for this request), or None when finished.
        Raises NeedsAnswer (its text: the question) when a required argument is left open, and
        RequestRefused when the whole request is out of bounds (agent/guard.py)."""
        reason = refusal_reason(request)
        if reason is not None:
            raise RequestRefused(reason)
        context = context or PlanContext()
        request = readable(request, context)
        ent = extract(request, context)
        dec = _Decoder(self.lm, prompt_text(request, context, ent))
        made: dict[str, list[str]] = {"dataset": [], "model": [], "index": []}
        for call in done:
            for seg in call_segments(call["tool"], call["args"]):
                dec.commit(seg)
            _record(call, made)
        if len(done) >= MAX_CALLS:
            return None
        return self._next(dec, ent, context, made, done)

    def _next(
        self,
        dec: _Decoder,
        ent: Entities,
        context: PlanContext,
        made: dict[str, list[str]],
        done: list[dict[str, Any]],
    ) -> dict[str, Any] | None:
        names = [*router_tools(), END]
        if not done and readable_data(ent.paths):
            names.remove(END)  # see readable_data: a jet file the tools may read is never refused here
        clause = current_clause(ent, done)
        prior = None
        if not done and asks_for_an_explanation(ent):
            # "how does a linear probe differ from a finetune?": a question no tool answers, even where
            # it names an action; ending gets the step's head start
            prior = [STEP_PRIOR if n == END else 0.0 for n in names]
        elif clause is not None:
            # A request of several actions ("describe X and then plot Y") has a call for each: the plan
            # does not end before, and the next action's tools get a head start that the model's own
            # preference can still overrule. Its arguments are read in that action's words.
            if END in names:
                names.remove(END)
            prior = [STEP_PRIOR if n in clause.tools else 0.0 for n in names]
            ent = ent.within(clause)
        elif not done and off_topic(ent):  # "order pizza", "what do published taggers reach?": ending
            head = STEP_PRIOR if asks_for_what_no_tool_does(ent) else CLAUSE_PRIOR  # gets the head start
            prior = [head if n == END else 0.0 for n in names]
        elif not done and len(ent.clauses) == 1:  # one action: the same head start for its first call
            # (a job's verbs name their action outright: "abort that pretraining run" cancels a job)
            # and a goal that names its tool without the tool's word ("is my tagger any good on X?",
            # "some way to look up jets later") is a phrasing the model has not learnt: its words lead
            goal = ent.clauses[0].goal
            head = STEP_PRIOR if set(ent.clauses[0].tools) <= set(JOB_TOOLS) or goal else CLAUSE_PRIOR
            prior = [head if n in ent.clauses[0].tools else 0.0 for n in names]
        elif done and len(ent.clauses) <= 1 and (set(tools_of(ent.plain)) <= {c["tool"] for c in done} or (
                ent.clauses and ent.clauses[0].goal
                and set(ent.clauses[0].tools) & {c["tool"] for c in done})):
            # one action, and every tool its words name has had its call ("the per-class summary stats
            # for wz_boosted" asked for no histogram): ending gets the head start
            prior = [CLAUSE_PRIOR if n == END else 0.0 for n in names]
        elif not done and not ent.clauses and any(n.role in ("n_labels", "n_labels_total") for n in ent.numbers):
            # "could the default model separate those two if I give it only 500 labels?": labels to
            # train with, and no other action named, are a finetune
            prior = [CLAUSE_PRIOR if n == "finetune" else 0.0 for n in names]
        elif not done and not ent.clauses and wants_new_jets(ent):
            # "let's have a couple of thousand hadronic W jets": jets of a class counted out, with no
            # action word and no sample named, are jets to make
            prior = [CLAUSE_PRIOR if n == "generate_dataset" else 0.0 for n in names]
        elif not done and not ent.clauses and ent.repeat and context.previous:
            # "now do the same for Z bosons", "repeat that with 30 neighbours": the previous turn's action
            before = {c.get("tool") for c in context.previous}
            prior = [CLAUSE_PRIOR if n in before else 0.0 for n in names]
        refused = tools_of(ent.plain, negated=True)
        if refused and not done:
            # "the from-scratch baseline, no pretrained weights at all": a tool named only to say it is
            # not wanted loses the head start an action gets
            base = prior or [0.0] * len(names)
            prior = [p - (CLAUSE_PRIOR if n in refused else 0.0) for p, n in zip(base, names)]
        target = None if clause is not None else next_target(ent, done)
        if target is not None:
            # "embed tq5k and run2 with it", "cancel job-1 and job-2": one action on several named
            # targets of a tool that takes one; the plan goes on while a target is left
            if END in names:
                names.remove(END)
            prior = [STEP_PRIOR if n == target[0] else 0.0 for n in names]
        tool = names[dec.choose([" " + n for n in names], prior=prior)]
        dec.commit(" " + tool)
        if tool == END:
            if not done and ent.anaphora and len(ent.clauses) == 1 and len(ent.clauses[0].tools) == 1:
                _ask_for_a_missing_referent(ent.clauses[0].tools[0], ent, context, made)
            return None
        only = {target[1]: target[2]} if target is not None and tool == target[0] else {}
        args = self._arguments(dec, tool, ent, context, made, done, only)
        call = {"tool": tool, "args": args}
        if call in done:  # the same call twice is never what a request means; stop instead
            return None
        taken = {c["args"].get("name") for c in done} - {None}
        if args.get("name") in taken:  # "... with seeds 5 and 6": the second run must not overwrite the first
            base, n = args["name"], 2
            while f"{base}-{n}" in taken:
                n += 1
            args["name"] = f"{base}-{n}"
        _record(call, made)
        return call

    def _arguments(
        self,
        dec: _Decoder,
        tool: str,
        ent: Entities,
        context: PlanContext,
        made: dict[str, list[str]],
        done: list[dict[str, Any]] = (),
        only: dict[str, list[str]] | None = None,
    ) -> dict[str, Any]:
        """The arguments of one call; ``only`` narrows a field to the values left (see next_target)."""
        fields = tool_fields(tool)
        args: dict[str, Any] = {}
        stated = stated_settings(tool, ent, done)
        if ent.anaphora and not ent.repeat and not ent.models and (made["model"] or _previous(context, "model")
                                                                   or ent.earlier.get("models")):
            stated |= {f.name for f in fields if f.kind == "model"}  # "embed run2 with it": write it
        if made["index"]:
            stated |= {f.name for f in fields if f.kind == "index"}  # "index X, then find ...": search in it
        if ent.earlier.get("models") and _SAME_MODEL.search(ent.action_text):  # "with that same backbone"
            stated |= {f.name for f in fields if f.kind == "model"}
        if ent.earlier.get("datasets") and _SAME_DATA.search(ent.action_text):  # "search the same sample"
            stated |= {f.name for f in fields if f.name == "dataset"}
        if _SAME_INDEX.search(ent.action_text or ent.request) and _previous_indexes(context):  # "in that index"
            stated |= {f.name for f in fields if f.kind == "index"}
        if ent.anaphora and not ent.indexes and _built_before(context):  # "now use it to find ...": the index
            stated |= {f.name for f in fields if f.kind == "index"}
        yours = _yours(ent, context)  # "score it with the model you pretrained": that model, said
        stated |= {f.name for f in fields if f.kind in yours and f.name != "reference"}

        again = repeated_call(tool, ent, context) if not done else None
        fixed: dict[str, list[Any]] = {}
        if again is not None:  # the previous call once more: what this turn does not restate is kept
            stated |= {name for name in again if name not in restated(tool, ent, context)}

        def candidates(f: FieldSpec) -> list[Any]:  # given the arguments so far (a reference is not the dataset)
            values = grounded_values(f, tool, ent, context, made, args)
            if again is not None and f.name in again:
                before = again[f.name] if isinstance(again[f.name], list) else [again[f.name]]
                if f.name in restated(tool, ent, context):  # "for Z bosons" replaces the W of the last turn
                    own = grounded_values(f, tool, ent, replace(context, previous=[]), made, args)
                    swapped = _instead(ent.request)
                    if f.kind == "enum_list" and swapped is not None:  # "with Z instead of W": only W goes
                        vocab = vocabulary_of(tool, f.name) or ""
                        new, old = (set(find_terms(part).get(vocab, [])) for part in swapped)
                        values = _unique([*(v for v in own if v in new), *(v for v in before if v not in old)])
                        fixed[f.name] = values  # the last turn's list with one item swapped: as a whole
                    else:
                        values = [v for v in values if v not in before or v in own]
                else:
                    values = _unique([*before, *values])
            if only and f.name in only:
                values = [v for v in values if v in only[f.name]]
            seeds = _unique([int(n.value) for n in ent.numbers if n.role == "seed"])
            if f.name == "seed" and not done and len(seeds) >= 2 and seeds[0] in values:
                values = [seeds[0]]  # one run per seed (next_target), in the order given
            if f.name == "dataset" and f.required and len(values) >= 2 and set(values) <= set(ent.by_class):
                # "fine-tune X on my top sample" with two top samples: which one is not guessed
                raise NeedsAnswer(question_for(tool, f, context, values))
            if f.required and not values and (f.kind not in ("text", "text_list", "new_name") or f.name == "path"):
                raise NeedsAnswer(question_for(tool, f, context))
            if f.required and f.kind == "text_list" and not values and not _gives_labels(ent):
                raise NeedsAnswer(question_for(tool, f, context))  # "classify X zero-shot": into what?
            return values

        pos = 0
        pending_list: FieldSpec | None = None
        while True:
            options: list[tuple[str, Any]] = []
            if pending_list is not None:
                options += [
                    (LIST_SEP + o, ("item", o)) for o in candidates(pending_list) if o not in args[pending_list.name]
                ]
            required_left = False
            for f in fields[pos:]:
                if f.name in args:
                    continue
                # free text is generated; a required new name always has the automatic one (see _value)
                if candidates(f) or f.kind in ("text", "text_list") or (f.kind == "new_name" and f.required):
                    options.append((f" {f.name}=", ("key", f)))
                # A setting the request states with its own word ("batch size 512", "20k iterations")
                # is not left out: like a required field, the call can neither end nor skip past it.
                if f.required or (f.name in stated and candidates(f)):
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
            cands = candidates(f)
            if f.name in fixed:
                args[f.name] = fixed[f.name]
                for seg in value_segments(f, fixed[f.name]):
                    dec.commit(seg)
                continue
            args[f.name] = self._value(dec, f, cands, tool, args, ent)
            if f.kind == "enum_list":
                pending_list = f

    def _value(self, dec: _Decoder, f: FieldSpec, cands: list[Any], tool: str, args: dict[str, Any],
               ent: Entities | None = None) -> Any:
        if f.kind in ("text", "text_list"):
            dec.commit('"')
            if cands and f.kind == "text_list":  # labels the request quotes are copied as written
                text = TEXT_LIST_SEP.join(cands[0])
                dec.commit(text)
                dec.commit('"')
                return list(cands[0])
            if cands:  # a file path is copied from the request, never made up
                path = cands[dec.choose(cands, then=[self._quote])] if len(cands) > 1 else cands[0]
                dec.commit(path)
                dec.commit('"')
                return path
            # a file path has no spaces: the path ends where the model would start a new word
            banned = self._banned | self._spaced if f.name == "path" else self._banned
            described = search_description(ent) if ent and (tool, f.name) == ("search_text", "query") else ""
            if described:
                text = self._query(dec, banned, described)
            else:
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

    def _query(self, dec: _Decoder, banned: torch.Tensor, described: str) -> str:
        """A search query: the model's own text, or the request's description of what to find (see
        entities.search_description). The model chooses; a text whose conditions differ from those the
        request states ("between 110 and 140 GeV" -> "mass=110") is not offered, since the search
        applies exactly the conditions its query states."""
        from jetfm.retrieval.constraints import parse_query

        own = dec.fork().free_text(banned, self._quote, self._closes)
        options = _unique([own, described])
        if len(options) > 1:
            # the conditions each text states; the request's own words are what the user asked for
            # (a text that changes them would run another search than the one asked for: not offered)
            said = [_conditions(parse_query(o)) for o in options]
            if any(said[1]) and said[0] != said[1]:
                options = [described]
        text = options[dec.choose(options, then=[self._quote])] if len(options) > 1 else options[0]
        dec.commit(text)
        dec.commit_ids([self._quote])
        return text

    def _followers(self, dec: _Decoder, tool: str, f: FieldSpec) -> list[int]:
        """First tokens of every segment that may follow a value of ``f``: another argument, the
        next list item, or the end of the call."""
        segs = [f" {g.name}=" for g in tool_fields(tool)] + [CALL_PREFIX]
        if f.kind == "enum_list":
            segs += [LIST_SEP + o for o in f.options]
        return sorted({dec.ids(seg)[0] for seg in segs})


def grounded_values(
    f: FieldSpec,
    tool: str,
    ent: Entities,
    context: PlanContext,
    made: dict[str, list[str]],
    args: dict[str, Any],
) -> list[Any]:
    """What a field may take for this request: finite, and grounded in what the request, this plan
    (``made``, ``args`` of the call so far) or the conversation names, so the model only chooses and
    never invents. A required field with nothing here makes the router ask back."""
    if (tool, f.name) == ("list_artifacts", "kind") and _EVERYTHING.search(ent.action_text or ent.request):
        return []  # "samples, trained networks, whatever is there": everything, in one list
    if f.kind in ("enum", "enum_list", "bool"):
        options = f.options if f.kind != "bool" else (True, False)
        return _unique([*_said(f, tool, ent), *[v for v in _again(f, tool, context) if v in options]])
    if f.kind in ("int", "float"):
        used = [v for v in args.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        said = [n.value for n in ent.numbers]
        roles = NUMBER_ROLES.get(f.name, ("",))
        if f.name == "n_jets" and any(n.role == "jets_total" for n in ent.numbers):
            roles = ("jets_total",)  # "5k top and 5k QCD": n_jets is the total, the parts are no choice
        if f.name == "n_labels" and any(n.role == "n_labels_total" for n in ent.numbers):
            roles = ("n_labels_total",)  # "250 labelled jets per class" of two classes: 500 labels
        fits = [n.value for n in ent.numbers if n.role in roles or not n.role]
        if f.name in roles and any(n.role == f.name for n in ent.numbers):  # "those two Higgs decays ... only
            # 500 labels": the number its own word names wins
            fits = [n.value for n in ent.numbers if n.role == f.name]
        elif any(n.role in roles for n in ent.numbers if n.role):  # a number whose words fit wins over one
            fits = [n.value for n in ent.numbers if n.role in roles]  # that no words place
        pointer = (tool, f.name) in JET_POINTERS
        step = 1 if _NEXT.search(ent.request) else -1 if _BEFORE.search(ent.request) else 0
        # a value of its own ("30 neighbours", "the next one") replaces the last turn's
        if not any(n.role and n.role in roles for n in ent.numbers) and not (pointer and step):
            fits += [v for v in _again(f, tool, context) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if pointer and not any(n.role == "index" for n in ent.numbers):
            # "show me jet 5", then "jets similar to that one": jet 5 ("and the third one?": the third)
            fits += [j + step for j in _previous_jet(context) if j + step >= 0]
        values = [v for v in fits if f.accepts(v) and (v not in used or said.count(v) > 1)]
        if f.kind == "int":
            values = [int(v) for v in values if float(v).is_integer()]
        return _unique(values, key=format_number)
    if f.kind == "text" and f.name == "path":
        return list(ent.paths)
    if f.kind == "text_list":  # "into 'two-prong' and 'three-prong'": the quoted labels, as written
        quoted = [next(g for g in groups if g).strip() for groups in _QUOTED.findall(ent.action_text or ent.request)]
        if len(quoted) >= 2:
            return [quoted]
        listed = listed_labels(ent.action_text or ent.request)  # "as W boson / Z boson / QCD"
        return [listed] if listed else []
    if f.kind == "dataset":
        return _datasets(f, ent, context, made, args)
    if f.kind == "model":
        return _models(f, tool, ent, context, made, args)
    if f.kind == "index":
        found = _unique([*_yours(ent, context).get("index", []), *ent.indexes, *made["index"],
                         *_indexes_of_kind(ent, context)])
        if not found and _SAME_INDEX.search(ent.action_text or ent.request):  # "in that index"
            found = _previous_indexes(context)
        if not found and ent.anaphora:  # "build a flat index", then "use it to find ...": that index
            found = _built_before(context)
        return found
    if f.kind == "device":  # "cuda:1", "on gpu 1" (cuda:1), "on the GPU"
        cards = [f"cuda:{n}" for n in re.findall(r"\b(?:cuda:|gpu\s*#?\s*|card\s+#?)(\d+)\b", ent.request, re.I)]
        return _unique(cards) or _unique([str(v) for v in ent.terms.get("device", [])])
    if f.kind == "job":
        if ent.jobs:
            return list(ent.jobs)
        asked_about = _unique([str(c["args"]["job_id"]) for c in reversed(context.previous)
                               if (c.get("args") or {}).get("job_id")])
        if ent.anaphora and asked_about:  # "is job-... done yet?", then "cancel it"
            return asked_about[:1]
        started = any(TOOLS[c["tool"]].long_running for c in context.previous if c.get("tool") in TOOLS)
        if len(context.jobs) == 1 or (context.jobs and ent.anaphora and started):
            return context.jobs[:1]
        return []
    if f.kind == "new_name":
        taken = set(context.datasets) | set(context.models)
        named = [w for w in ent.new_names if w not in taken]
        return named if not f.required else _unique([*named, *[w for w in ent.words if w not in taken]])
    return []

def _datasets(
    f: FieldSpec, ent: Entities, context: PlanContext, made: dict[str, list[str]], args: dict[str, Any]
) -> list[str]:
    if f.name == "reference":  # the background a scan compares with: another dataset the request names
        if made["dataset"] and _AGAINST_IT.search(ent.action_text or ent.request):
            return made["dataset"][:1]  # "make 5000 QCD jets, then scan X against it"
        named_as = [d for d in ent.references if d != args.get("dataset")]  # "against qcd_ref"
        return named_as or [d for d in _unique([*ent.datasets, *made["dataset"]]) if d != args.get("dataset")]
    yours = _yours(ent, context).get("dataset", [])
    if yours:  # "the sample you generated"
        return yours
    # a dataset named as the reference ("using qcd_ref as the background") is not the one worked on
    datasets = [d for d in ent.datasets if d not in ent.references]
    # what the plan made is a candidate unless the action names its own dataset ("..., and evaluate on tq5k")
    own = datasets and not ent.anaphora
    # a sample named by what it holds ("my top sample") only where none is named by its name
    found = _unique([*datasets, *([] if own else made["dataset"]), *([] if datasets else ent.by_class)])
    if not datasets and ent.anaphora:  # "embed them": what this plan made, else named before
        found = list(made["dataset"]) or ent.earlier.get("datasets", []) or found
    if not found:  # "plot its mass": what the previous turn made or used
        found = _previous(context, "dataset", ent.repeat)
    if not found and len(context.datasets) == 1:
        found = list(context.datasets)
    if not found:
        found = [w for w in ent.words if w not in context.models and w not in context.indexes]
    return found

def _models(
    f: FieldSpec,
    tool: str,
    ent: Entities,
    context: PlanContext,
    made: dict[str, list[str]],
    args: dict[str, Any],
) -> list[str]:
    yours = _yours(ent, context).get("model", [])
    if yours:  # "the model you pretrained"
        return yours
    found = _unique([*ent.models, *made["model"]])
    if not ent.models and ent.anaphora:  # "fine-tune X, then evaluate it": what the plan made
        found = list(made["model"]) or ent.earlier.get("models", []) or found
    if tool == "finetune":  # from scratch, a size may stand for the model
        found = _unique([*found, *[s for s in ent.sizes if "scratch" in ent.terms.get("mode", [])]])
    if not found and (ent.anaphora or f.required):  # "evaluate it on run2"
        found = _previous(context, "model", ent.repeat)
    if not found and tool == "evaluate" and THE_CLASSIFIER.search(ent.action_text or ent.request):
        trained = [m for m in context.models if m != "jetfm-default"]
        found = trained if len(trained) == 1 else []  # "does the tagger still hold up on X?": the only one
    if f.required and not found:
        found = [w for w in ent.words if w not in context.datasets and w not in context.indexes]
    return found


def _said(f: FieldSpec, tool: str, ent: Entities) -> list[Any]:
    """The values of an enum (or a flag) the request names in words the lexicon knows; an optional
    one the request does not name keeps its default."""
    vocab = vocabulary_of(tool, f.name)
    said = ent.terms.get(vocab, []) if vocab else []
    if f.kind == "bool":
        return [v for v in said if isinstance(v, bool)]
    return [v for v in said if v in f.options]


def _again(f: FieldSpec, tool: str, context: PlanContext) -> list[Any]:
    """The values the previous turn gave this argument of the same tool: "do the same for run2"
    keeps them (the model decides whether it does)."""
    out: list[Any] = []
    for call in context.previous:
        value = (call.get("args") or {}).get(f.name) if call.get("tool") == tool else None
        out += value if isinstance(value, list) else [] if value is None else [value]
    return out


# The argument of each tool that points at one jet of a dataset.
JET_POINTERS = {("show_jet", "index"), ("search_similar", "entry")}
# "... then build an index with that same backbone": the model an earlier action named
_SAME_MODEL = re.compile(r"\b(?:that|this|the same|same|that same|its)\s+(?:backbone|model|encoder|network)\b", re.I)
# "search in that index": the index the conversation built or used last
_SAME_INDEX = re.compile(r"\b(?:that|this|the same|same|that same|its|the new)\s+(?:faiss\s+)?index\b", re.I)
# "the model you pretrained", "the index we just built", "the sample I generated": what a call of the
# conversation made, by the tool the verb names (two turns back, too), not merely the last name said
_YOURS = re.compile(
    r"\b(?:the|that|this)\s+(?:new\s+|last\s+|latest\s+)?(?P<noun>model|backbone|encoder|network|net|classifier"
    r"|tagger|index|sample|dataset|data ?set|jets|one)\s+(?:that\s+|which\s+)?(?:you|we|I)(?:'ve|'d| have| had)?"
    r"\s+(?:just\s+|already\s+|earlier\s+)?(?P<verb>pre-?trained|trained|fine-?tuned|tuned|built|made|created"
    r"|generated|simulated|produced|imported|registered|indexed)\b", re.I)
_NOUN_KIND = {"model": "model", "backbone": "model", "encoder": "model", "network": "model", "net": "model",
              "classifier": "model", "tagger": "model", "index": "index", "sample": "dataset", "dataset": "dataset",
              "data set": "dataset", "jets": "dataset"}
_VERB_TOOLS = {"pretrained": ("pretrain",), "trained": ("pretrain", "finetune"), "finetuned": ("finetune",),
               "tuned": ("finetune",), "generated": ("generate_dataset",), "simulated": ("generate_dataset",),
               "produced": ("generate_dataset",), "imported": ("import_dataset",), "registered": ("import_dataset",),
               "indexed": ("build_index",)}
_TOOL_KIND = {"generate_dataset": "dataset", "import_dataset": "dataset", "pretrain": "model", "finetune": "model",
              "build_index": "index"}
# "and the next one?", "the one before": the jet after (before) the one the previous turn pointed at
_SAME_DATA = re.compile(r"\b(?:that|this|these|those|the same|same|that same)\s+(?:sample|dataset|data|jets|set)\b",
                        re.I)
_NEXT = re.compile(r"\b(?:next|following)\s+(?:one|jet|entry|event)\b|\bone after\b"
                   r"|\b(?:right |just |directly )?after (?:that|this|it)\b", re.I)
_BEFORE = re.compile(r"\bprevious\s+(?:one|jet|entry|event)\b|\bthe one before\b", re.I)
# A quoted phrase: "...", '...' (an apostrophe inside a word is no quote), or typographic quotes.
_QUOTED = re.compile(r"\"([^\"]+)\"|(?<!\w)'([^']+)'(?!\w)|[“‘]([^”’]+)[”’]")
# A list of labels given in the request: quoted, or after "into", "as", "between", "labels".
_LABELS_GIVEN = re.compile(r"[\"'“‘]\w|\b(?:into|between|among|labels?|categories|as either)\s+\S"
                           r"|\b(?:vs\.?|versus|apart|or|from)\s", re.I)


# Where a list of labels starts when none is quoted ("classify it as W boson / Z boson / QCD").
_LIST_START = re.compile(r"\b(?:into|as|among|between|labels?|categories|classes|options)\b\s*:?\s*", re.I)
_LIST_SEP = re.compile(r"\s*[,;]\s*(?:(?:and|or)\s+)?|\s+(?:or|and|vs\.?|versus)\s+", re.I)
_LIST_END = re.compile(r"[.?!]|\b(?:please|pls|thanks?|thank you|using|with|then|and then|afterwards)\b", re.I)
MAX_LABEL_WORDS = 5


def listed_labels(text: str) -> list[str] | None:
    """The labels a request lists without quotes, as written: after "into", "as", "labels", ...,
    split at commas, "or", "and", "vs" (or, only where none of those splits it, at slashes: so
    "light-quark/gluon" stays one label beside others). None if no list of two or more short labels."""
    for start in reversed(list(_LIST_START.finditer(text))):  # the last: "label tq5k as A vs B"
        rest = text[start.end():]
        end = _LIST_END.search(rest)
        rest = rest[: end.start()] if end else rest
        items = [p for p in _LIST_SEP.split(rest) if p.strip()]
        if len(items) < 2:
            items = [p for p in re.split(r"\s*/\s*", rest) if p.strip()]
        items = [re.sub(r"^(?:a|an|the)\s+", "", p.strip(" :\"'"), flags=re.I) for p in items]
        if len(items) >= 2 and all(0 < len(p.split()) <= MAX_LABEL_WORDS for p in items):
            return items
    return None


def _indexes_of_kind(ent: Entities, context: PlanContext) -> list[str]:
    """The workspace's indexes whose name says the kind the request names ("the IVF index": ivf_qcd700)."""
    kinds = {str(k).casefold()[:3] for k in ent.terms.get("index_kind", [])}  # hnsw, ivf(flat/pq), flat
    return [i for i in context.indexes if any(k in i.casefold() for k in kinds)] if kinds else []


def _gives_labels(ent: Entities) -> bool:
    """Whether the request says what to label with: named classes, quoted text or a list after "into"."""
    return bool(ent.classes) or bool(_LABELS_GIVEN.search(ent.action_text or ent.request))


def _conditions(query: Any) -> tuple[Any, ...]:
    """What a parsed search query keeps: its cuts and its classes (retrieval/constraints.py)."""
    return tuple(sorted((c.observable, c.lo, c.hi) for c in query.cuts)), query.classes


_INSTEAD = re.compile(r"(.*)\binstead of\b([^,;.!?]*)(.*)", re.I | re.S)


def _instead(request: str) -> tuple[str, str] | None:
    """"... with Z instead of W": the words of what comes in and of what goes; None without one."""
    m = _INSTEAD.match(request)
    return (m.group(1) + " " + m.group(3), m.group(2)) if m else None


def repeated_call(tool: str, ent: Entities, context: PlanContext) -> dict[str, Any] | None:
    """The previous turn's call of ``tool`` when this request repeats it ("now do the same for Z
    bosons", "repeat that with 30 neighbours instead"): its arguments, less the name of what it made
    (a repeat makes something new) and its free text; None when the request repeats nothing."""
    if not ent.repeat:
        return None
    for call in reversed(context.previous):
        if call.get("tool") == tool:
            fields = {f.name: f for f in tool_fields(tool)}
            return {k: v for k, v in (call.get("args") or {}).items()
                    if k in fields and fields[k].kind not in ("new_name", "text", "text_list", "job")}
    return None


def restated(tool: str, ent: Entities, context: PlanContext) -> set[str]:
    """The fields of ``tool`` this request gives a value of its own (it replaces the repeated one)."""
    out: set[str] = set()
    names = {f.name for f in tool_fields(tool)}
    roles = {_stated_role(n.role, tool, names) for n in ent.numbers if n.role}
    for f in tool_fields(tool):
        if f.kind in ("enum", "enum_list", "bool"):
            hit = bool(_said(f, tool, ent))
        elif f.kind in ("int", "float"):
            hit = f.name in roles or bool(set(NUMBER_ROLES.get(f.name, ())) & roles)
        elif f.kind == "dataset":
            hit = bool(ent.datasets or ent.by_class) if f.name == "dataset" else len(ent.datasets) >= 2
        elif f.kind == "model":
            hit = bool(ent.models) or (tool == "finetune" and bool(ent.sizes))
        elif f.kind == "index":
            hit = bool(ent.indexes or _indexes_of_kind(ent, context))
        else:
            hit = False
        if hit:
            out.add(f.name)
    return out


def _previous_jet(context: PlanContext) -> list[int]:
    """The jets the previous turn pointed at (a displayed jet, a search's query jet), latest first."""
    out = []
    for call in reversed(context.previous):
        for tool, name in JET_POINTERS:
            value = (call.get("args") or {}).get(name) if call.get("tool") == tool else None
            if isinstance(value, int) and not isinstance(value, bool):
                out.append(value)
    return out


def _previous(context: PlanContext, kind: str, repeat: bool = False) -> list[str]:
    """The artifacts of a kind the conversation's previous turn made or, if it made none, used
    ("evaluate it" after a finetune: the tagger). A request to repeat that turn ("repeat that with
    5000 labels") means what it used, so then both are offered, what it used first."""
    made_by = {"dataset": ("generate_dataset", "import_dataset"), "model": ("pretrain", "finetune")}
    keys = {"dataset": ("dataset",), "model": ("model",)}
    made, used = [], []
    for call in reversed(context.previous):
        args = call.get("args") or {}
        if call.get("tool") in made_by[kind] and isinstance(args.get("name"), str):
            made.append(args["name"])
        for key in keys[kind]:
            value = args.get(key)
            if isinstance(value, str) and value not in ("tiny", "small", "base"):
                used.append(value)
    return _unique([*used, *made]) if repeat else _unique(made) or _unique(used)


def _yours(ent: Entities, context: PlanContext) -> dict[str, list[str]]:
    """Per kind (dataset, model, index), what the request points at as made earlier in the
    conversation ("use the model you pretrained": the last model a pretraining made); see _YOURS."""
    out: dict[str, list[str]] = {}
    for m in _YOURS.finditer(ent.action_text or ent.request):
        kind = _NOUN_KIND.get(m["noun"].lower())
        tools = _VERB_TOOLS.get(m["verb"].lower().replace("-", ""))  # "built", "made": any tool of the kind
        for tool, name in context.created:
            if (kind is None or _TOOL_KIND[tool] == kind) and (tools is None or tool in tools):
                out.setdefault(_TOOL_KIND[tool], []).append(name)
                break
    return out


def _built_before(context: PlanContext) -> list[str]:
    """The indexes the previous turn built ("build a flat index on tq5k", then "now use it to find ...")."""
    return [i for c in context.previous if c.get("tool") == "build_index"
            for i in _previous_indexes(replace(context, previous=[c]))]


def _previous_indexes(context: PlanContext) -> list[str]:
    """The indexes the previous turn built (by name, or the name the tool gives) or searched."""
    out = []
    for call in reversed(context.previous):
        args = call.get("args") or {}
        if call.get("tool") == "build_index":
            out.append(args.get("name") or f"idx-{args.get('dataset')}-{args.get('model', 'jetfm-default')}")
        elif isinstance(args.get("index"), str):
            out.append(args["index"])
    return [i for i in _unique(out) if i in context.indexes or not context.indexes]


def _ask_for_a_missing_referent(tool: str, ent: Entities, context: PlanContext, made: dict[str, list[str]]) -> None:
    """The model ended a request that names one action on "it" or "them" ("describe it"): when
    nothing in the request or the conversation says what that is, ask instead of answering nothing."""
    for f in tool_fields(tool):
        if f.required and f.kind in ("dataset", "model", "index", "job") and not grounded_values(
            f, tool, ent, context, made, {}
        ):
            raise NeedsAnswer(question_for(tool, f, context))


def readable_data(paths: list[str]) -> list[str]:
    """Those of ``paths`` (as a request wrote them) that name a jet file (by its suffix) or an existing
    folder that the tools may read: inside the workspace or a folder the user registered. A file that
    is not there yet still counts: the import tool then says which path it looked for, which helps
    more than a silent refusal.

    The router's adapter learnt from its refusal examples (``import /etc/passwd``, ``import
    /root/secrets.h5``) to refuse imports by how a path looks, and so refused files of the workspace
    too: ``import the file $JETFM_HOME/inj/notes.h5 as dataset notes`` got no tool. Which paths may
    be read is decided by tools/safety.py (and the planner's ``screen``), not guessed by the model, so
    a request that names such a file always gets a tool call."""
    from jetfm.tools.safety import PathNotAllowed, confine_path

    found = []
    for typed in paths:
        try:
            path = confine_path(typed)
        except PathNotAllowed:
            continue
        if path.is_dir() or path.suffix.lower() in _DATA_SUFFIXES:
            found.append(typed)
    return found


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


def _unique(items: list[Any], key: Any = None) -> list[Any]:
    seen, out = set(), []
    for item in items:
        k = key(item) if key else item
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out
