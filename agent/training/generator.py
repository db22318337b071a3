"""One generic generator of request -> calls examples over the tables of tables.py: a template is
picked, each slot is filled with a value of the tool's schema and said in words, and the call holds
exactly what the words said (an argument the request does not state is never in the call).

Kinds of example: one call; several steps where a later step uses what an earlier one made; the
same tool twice; a follow-up turn that refers to the previous turn ("do it again for run2", "plot
its mass", "cancel that job"); requests no tool answers and requests that must not run.

Examples near-verbatim to a request of the evaluation suites (tests/data/agent_requests*.jsonl) are
dropped, so the benchmark measures how the router generalises, not what it memorised.
"""

from __future__ import annotations

import difflib
import json
import random
import re
from pathlib import Path
from typing import Any

from jetfm.agent.callformat import auto_name, human_count, tool_fields
from jetfm.agent.context import PlanContext, after_turn
from jetfm.agent.entities import extract
from jetfm.agent.lexicon import class_phrases
from jetfm.agent.training import tables as T
from jetfm.backbone.data.classes import PROCESSES
from jetfm.tools.registry import TOOLS

Example = dict[str, Any]  # {"request", "context": PlanContext, "calls": [{"tool", "args"}]}

SUITES = sorted((Path(__file__).resolve().parents[2] / "tests" / "data").glob("agent_requests*.jsonl"))
_SLOT = re.compile(r"\{(\w+)(?::(v|text))?(\?)?\}")
_ALTS = re.compile(r"\[([^\[\]]*)\]")
# Class words a person types: the classes table's synonyms and names (not the long labels).
CLASS_WORDS: dict[str, tuple[str, ...]] = {
    name: tuple(dict.fromkeys(w for w in phrases[1:] if len(w) < 30)) for name, phrases in class_phrases().items()
}
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 10: "ten", 20: "twenty", 50: "fifty",
                 100: "a hundred", 1000: "a thousand", 2000: "two thousand", 3000: "three thousand",
                 5000: "five thousand", 10000: "ten thousand", 20000: "twenty thousand"}


class Sampler:
    """Random pieces of requests: names, numbers, classes, each in a random spelling."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def pick(self, items: Any) -> Any:
        return self.rng.choice(list(items))

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def name(self) -> str:
        r, parts = self.rng, T.NAME_PARTS
        a = r.choice(parts)
        style = r.randrange(7)
        if style == 0:
            return f"{a}{r.randrange(1, 30)}"
        if style == 1:
            return f"{a}-{r.choice(parts)}"
        if style == 2:
            return f"{a}_{r.choice(['5k', '10k', '1k', '2018', 'v2', 'test', 'a', 'b', '100k', 'hi', 'lo', 'ref'])}"
        if style == 3:
            return f"{a}{r.choice(['-', '_', ''])}{r.choice(['2016', '2017', '2018', '22', '23', 'x', 'new'])}"
        if style == 4:
            return f"{r.choice(parts)}-{r.choice(parts)}-{r.randrange(1, 9)}"
        if style == 5:
            return f"{a}_{r.choice(parts)}"
        return a + r.choice(["", "s", "2", "-mc", "-data"])

    def names(self, n: int) -> list[str]:
        out: list[str] = []
        while len(out) < n:
            c = self.name()
            if c not in out:
                out.append(c)
        return out

    def spell(self, n: float, field: str = "") -> str:
        """A number as people write it: 5000, 5,000, 5k, 5e3, five thousand; 1.2 TeV; 1e-4."""
        r = self.rng
        if field == "lr":
            return r.choice([f"{n:g}", f"{n:.0e}".replace("e-0", "e-"), f"{n:f}".rstrip("0")])
        n = int(n)
        forms = [str(n)]
        if n >= 1000:
            forms.append(f"{n:,}")
        if n >= 1000 and n % 100 == 0:
            forms += [human_count(n), human_count(n).replace("k", "K")]
            if n % 1000 == 0:
                forms.append(f"{n // 1000}e3" if n < 10000 else f"{n / 10 ** (len(str(n)) - 1):g}e{len(str(n)) - 1}")
        if n in _NUMBER_WORDS and field not in ("index", "entry", "seed"):
            forms.append(_NUMBER_WORDS[n])
        return r.choice(forms)

    def gev(self, n: int) -> tuple[str, str]:
        """A pT or mass value and its unit, sometimes in TeV: ("1.2", " TeV") or ("1200", "")."""
        if n >= 1000 and n % 100 == 0 and self.chance(0.35):
            return f"{n / 1000:g}", " TeV"
        return str(n), ""

    def procs(self, k: int | None = None) -> list[str]:
        k = k or self.pick([1, 1, 2, 2, 2, 3, 4, 5])
        common = ["qcd", "top", "wqq", "zqq", "hbb"]
        pool = common if self.chance(0.6) else list(PROCESSES)
        return self.rng.sample(pool, min(k, len(pool)))

    def class_word(self, proc: str) -> str:
        word = self.pick(CLASS_WORDS[proc])
        last = word.split()[-1]
        if self.chance(0.15) and last.isalpha() and len(last) >= 3 and last[-1] not in "sq":
            word += "s"  # "tops", "W bosons"
        return word

    def class_list(self, procs: list[str], vs: bool = False) -> str:
        if len(procs) >= 5 and self.chance(0.4):
            return self.pick([f"all {len(procs)} classes", f"all {len(procs)} jet classes"]) if len(procs) < 10 else (
                self.pick(["all classes", "every jet class", "all ten classes"]))
        words = [self.class_word(p) for p in procs]
        if len(words) == 1:
            return words[0]
        if vs:
            return self.pick([" vs ", " vs. ", " versus ", "-vs-", " from "]).join(words)
        sep = self.pick([", ", " and ", " + ", "/", " & "])
        return sep.join(words[:-1]) + (self.pick([" and ", ", "]) if sep == ", " else sep) + words[-1]


# --- rendering one template ------------------------------------------------------------------------------


class _Refs:
    """What "it" may mean while rendering: the dataset, model or job the plan or the conversation
    just made or used (None: artifacts are named)."""

    def __init__(self, dataset: str | None = None, model: str | None = None, job: str | None = None):
        self.dataset, self.model, self.job = dataset, model, job


def _alternatives(template: str, s: Sampler) -> str:
    while True:
        m = _ALTS.search(template)
        if m is None:
            return template
        template = template[: m.start()] + s.pick(m.group(1).split("|")) + template[m.end() :]


def _field_kinds(tool: str) -> dict[str, str]:
    return {f.name: f.kind for f in tool_fields(tool)}


def render(tool: str, template: str, s: Sampler, ctx: PlanContext, refs: _Refs) -> tuple[str, dict[str, Any]]:
    """A request from ``template`` and the arguments it states."""
    text = _alternatives(template, s)
    args: dict[str, Any] = {}
    kinds = _field_kinds(tool)

    def fill(m: re.Match[str]) -> str:
        field, form, optional = m.group(1), m.group(2), bool(m.group(3))
        if optional and not s.chance(0.5):
            return ""
        return _slot(tool, field, form, s, ctx, refs, args, kinds)

    text = _SLOT.sub(fill, text)
    return " ".join(text.split()).replace(" ,", ",").replace(" ?", "?"), args


def _phrase(field: str, value_words: str, s: Sampler) -> str:
    return s.pick(T.PHRASES[field]).replace("{v}", value_words)


def _slot(
    tool: str,
    field: str,
    form: str | None,
    s: Sampler,
    ctx: PlanContext,
    refs: _Refs,
    args: dict[str, Any],
    kinds: dict[str, str],
) -> str:
    if field == "dataset":
        if refs.dataset and s.chance(0.85):
            args["dataset"] = refs.dataset
            return s.pick(T.BACK_REFERENCES) if s.chance(0.7) else refs.dataset
        args["dataset"] = s.pick(ctx.datasets)
        return args["dataset"]
    if field == "in_dataset":
        args["dataset"] = refs.dataset or s.pick(ctx.datasets)
        said = args["dataset"] if not refs.dataset or s.chance(0.4) else s.pick(T.BACK_REFERENCES)
        return s.pick([f" in {said}", f" from {said}", f" among {said}", f" within {said}"])
    if field == "reference":
        others = [d for d in ctx.datasets if d != args.get("dataset")]
        if not others:
            return ""
        args["reference"] = s.pick(others)
        return _phrase("reference", args["reference"], s)
    if field == "model":
        if tool == "evaluate" and refs.model and s.chance(0.8):
            args["model"] = refs.model
            return s.pick(T.MODEL_BACK_REFERENCES) if s.chance(0.7) else refs.model
        models = [m for m in ctx.models if m != "jetfm-default"]
        if s.chance(0.35) or not models:
            args["model"] = "jetfm-default"
            said = s.pick(T.DEFAULT_MODEL_WORDS)
        else:
            args["model"] = s.pick(models)
            said = args["model"]
        return said if form else _phrase("model", said, s)
    if field == "job_id":
        args["job_id"] = refs.job or (ctx.jobs[0] if ctx.jobs else "job-20261124-101500-a1b2c3")
        return args["job_id"]
    if field == "path":
        folder, file = s.pick(T.IMPORT_FOLDERS), s.pick(T.IMPORT_FILES)
        args["path"] = f"{folder}/{file}" if folder else file
        return args["path"]
    if field == "name":
        args["name"] = s.name()
        return _phrase("name", args["name"], s)
    if field == "query":
        args["query"] = s.pick(T.QUERIES)
        return args["query"]
    if field == "labels" and form == "text":
        labels = list(s.pick(T.ZS_LABELS))
        args["labels"] = labels
        joined = s.pick([", ", " / ", " or "]).join(labels[:-1]) + s.pick([" and ", " or ", ", "]) + labels[-1]
        quoted = s.chance(0.25)
        return joined if not quoted else " or ".join(f"'{x}'" for x in labels)
    if field in ("processes", "labels", "classes"):
        k = {"processes": None, "labels": s.pick([1, 2]), "classes": s.pick([2, 2, 3])}[field]
        procs = s.procs(k)
        if field == "processes" and s.chance(0.05):
            procs = list(PROCESSES[: s.pick([5, 10])])
        args[field] = procs
        words = s.class_list(procs, vs=field == "classes")
        return words if form or field == "processes" else _phrase(field, words, s)
    if field == "signal":
        args["signal"] = s.pick(T.SIGNALS)
        return _phrase("signal", s.class_word(args["signal"]), s)
    if field == "counts":
        procs = s.procs(s.pick([2, 2, 3]))
        each = [s.pick(T.COUNTS[:10]) for _ in procs] if s.chance(0.4) else [s.pick(T.COUNTS[:10])] * len(procs)
        args["processes"], args["n_jets"] = procs, sum(each)
        parts = [f"{s.spell(n)} {s.class_word(p)}" for n, p in zip(each, procs)]
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    if field in ("pt", "mass"):
        return _window(field, tool, s, args)
    if field == "by_label":
        value = s.chance(0.6)
        args["by_label"] = value
        return s.pick(T.BY_LABEL_PHRASES[value])
    if field == "kind" and tool == "list_artifacts":
        args["kind"] = s.pick(list(T.LIST_KIND_WORDS))
        return s.pick(T.LIST_KIND_WORDS[args["kind"]])
    if field == "device":
        value = s.pick(["cuda", "cpu", "cuda:0", "cuda:1"])
        args["device"] = value
        return " " + (s.pick(T.WORDS["device"][value]) if value in T.WORDS["device"] else f"on {value}")
    if field in T.WORDS:  # enums said in words
        if field == "size" and tool == "finetune":
            return ""
        value = s.pick(list(T.WORDS[field]))
        args[field] = value
        words = s.pick(T.WORDS[field][value])
        return words if form else _phrase(field, words, s)
    if kinds.get(field) in ("int", "float") or field in T.NUMBER_POOLS:
        pool = T.NUMBER_POOLS.get(field) or T.NUMBER_POOLS["index"]
        value = s.pick(pool)
        args[field] = value
        if field in ("index", "entry") and value == 0 and form and s.chance(0.3):
            return "0"
        words = s.spell(value, field)
        return words if form else _phrase(field, words, s)
    raise KeyError(f"no way to say {tool}.{field}")


def _window(quantity: str, tool: str, s: Sampler, args: dict[str, Any]) -> str:
    pool = T.NUMBER_POOLS[quantity]
    shapes = ["range", "range", "min"] if tool == "generate_dataset" else ["range", "range", "min", "max"]
    shape = s.pick(shapes)
    lo = s.pick(pool[:-3])
    hi = s.pick([v for v in pool if v > lo])
    a, unit_a = s.gev(lo)
    b, unit_b = s.gev(hi)
    phrase = s.pick(T.WINDOW_PHRASES[f"{quantity}_{shape}"])
    if unit_a or unit_b:  # written in TeV: the unit goes with the number
        phrase = phrase.replace(" GeV", "").replace("{a}", a + (unit_a or " GeV"))
        phrase = phrase.replace("{b}", b + (unit_b or " GeV"))
    phrase = phrase.replace("{a}", a).replace("{b}", b)
    if shape in ("range", "min"):
        args[f"{quantity}_min"] = lo
    if shape in ("range", "max"):
        args[f"{quantity}_max"] = hi
    return phrase


# --- examples ----------------------------------------------------------------------------------------------


def random_context(s: Sampler) -> PlanContext:
    datasets = s.names(s.rng.randrange(1, 6))
    models = ["jetfm-default", *s.names(s.rng.randrange(0, 3))]
    s.rng.shuffle(models)
    indexes = [f"idx-{d}-jetfm-default" for d in datasets[:2]]
    jobs = [_job_id(s) for _ in range(s.pick([0, 0, 1, 1, 2]))]
    return PlanContext(datasets=datasets, models=models, indexes=indexes, jobs=jobs)


def _job_id(s: Sampler) -> str:
    r = s.rng
    return (f"job-2026{r.randrange(1, 13):02d}{r.randrange(1, 29):02d}-{r.randrange(0, 24):02d}{r.randrange(60):02d}"
            f"{r.randrange(60):02d}-{r.randrange(16**6):06x}")


def _finish(tool: str, args: dict[str, Any], taken: set[str]) -> dict[str, Any]:
    """Fill a required new-artifact name the request did not give, the way the decoder does."""
    for spec in tool_fields(tool):
        if spec.kind == "new_name" and spec.required and "name" not in args:
            args["name"] = auto_name(tool, args, taken)
    return {"tool": tool, "args": args}


def _keep_said(text: str, args: dict[str, Any], ctx: PlanContext) -> None:
    """Drop a number the request does not state (a spelling the reader does not know): the router
    must never learn to fill in what was not asked."""
    said = {n.value for n in extract(text, ctx).numbers}
    for key, value in list(args.items()):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value) not in said:
            del args[key]


def _extras(tool: str, text: str, s: Sampler, ctx: PlanContext, refs: _Refs, args: dict[str, Any]) -> str:
    fields = [f for f in T.EXTRAS.get(tool, ()) if f not in args and s.chance(0.13)]
    for field in fields:
        if field == "model" and "model" in args:
            continue
        piece = _slot(tool, field, None, s, ctx, refs, args, _field_kinds(tool))
        text += piece if piece.startswith((",", " ")) else " " + piece
    return text


def _dress(text: str, s: Sampler) -> str:
    """Politeness, a typo in the first word, a capital letter: how requests really arrive."""
    if s.chance(0.25):
        text = s.pick(T.POLITE_BEFORE) + text + s.pick(T.POLITE_AFTER)
    words = text.split(" ")
    if s.chance(0.08) and words and words[0].isalpha() and len(words[0]) > 4:
        w = list(words[0])
        i = s.rng.randrange(1, len(w) - 1)
        if s.chance(0.5):
            del w[i]
        else:
            w[i], w[i + 1] = w[i + 1], w[i]
        words[0] = "".join(w)
    text = " ".join(words)
    if s.chance(0.3):
        text = text[:1].upper() + text[1:]
    return text


def one_call(s: Sampler, tool: str, ctx: PlanContext, refs: _Refs | None = None) -> tuple[str, dict[str, Any]]:
    refs = refs or _Refs()
    template = s.pick(T.TEMPLATES[tool])
    text, args = render(tool, template, s, ctx, refs)
    text = _extras(tool, text, s, ctx, refs, args)
    _keep_said(text, args, ctx)
    return text, args


def single_example(s: Sampler, tool: str) -> Example:
    ctx = random_context(s)
    if tool in ("job_status", "cancel_job") and not ctx.jobs:
        ctx.jobs = [_job_id(s)]
    text, args = one_call(s, tool, ctx)
    call = _finish(tool, args, set(ctx.datasets) | set(ctx.models))
    return {"request": _dress(text, s), "context": ctx, "calls": [call]}


def _made(call: dict[str, Any]) -> tuple[str | None, str | None]:
    """The dataset and the model a call makes or works on."""
    args = call["args"]
    if call["tool"] in ("generate_dataset", "import_dataset"):
        return args.get("name"), None
    if call["tool"] in ("pretrain", "finetune"):
        return args.get("dataset"), args.get("name")
    return args.get("dataset"), args.get("model")


THIRD_STEP_SHARE = 0.3  # of the multi-step examples whose second tool can be followed by a third


def multi_example(s: Sampler) -> Example:
    """Two or three steps; a later one works on what an earlier one made ("it", "them")."""
    ctx = random_context(s)
    taken = set(ctx.datasets) | set(ctx.models)
    first_tool, second_tool = s.pick(T.CHAINS)
    text1, args1 = one_call(s, first_tool, ctx)
    first = _finish(first_tool, args1, taken)
    dataset, model = _made(first)
    refs = _Refs(dataset=dataset, model=model if first_tool in ("pretrain", "finetune") else None)
    if second_tool == "finetune" and first_tool == "pretrain":
        text2, args2 = render("finetune", "[fine-tune|finetune] {model:v} on {dataset}{n_labels?}", s, ctx,
                              _Refs(dataset=s.pick(ctx.datasets)))
        args2["model"] = first["args"]["name"]
        text2 = re.sub(r"^(\S+ )\S+(?: \S+)*? on ", r"\1" + s.pick(["it", "that model", "the new backbone"]) + " on ",
                       text2, count=1)
    else:
        text2, args2 = one_call(s, second_tool, ctx, refs)
    _keep_said(text2, args2, ctx)
    second = _finish(second_tool, args2, taken | {first["args"].get("name", "")})
    calls = [first, second]
    text = text1 + s.pick(T.JOINS) + text2
    # A third step on what the second made or used ("generate ..., embed them, then build an index").
    thirds = [b for a, b in T.CHAINS if a == second_tool and b != second_tool and b not in (first_tool, "finetune")]
    if thirds and s.chance(THIRD_STEP_SHARE):
        third_tool = s.pick(thirds)
        dataset, model = _made(second)
        made_model = model if second_tool in ("pretrain", "finetune") else refs.model
        text3, args3 = one_call(s, third_tool, ctx, _Refs(dataset=dataset or refs.dataset, model=made_model))
        taken |= {c["args"].get("name", "") for c in calls}
        calls.append(_finish(third_tool, args3, taken))
        text = text1 + s.pick([", ", " and "]) + text2 + s.pick(T.JOINS) + text3
    for call in calls:  # what the whole request states (a total may not survive the join)
        _keep_said(text, call["args"], ctx)
    return {"request": _dress(text, s), "context": ctx, "calls": calls}


def same_tool_example(s: Sampler) -> Example:
    """The same tool twice in one request: two observables, two jets, two datasets, two jobs."""
    ctx = random_context(s)
    a, b = (s.rng.sample(ctx.datasets, 2) if len(ctx.datasets) > 1 else [ctx.datasets[0], ctx.datasets[0]])
    kind = s.pick(["plot", "show", "embed", "describe", "cancel"])
    if kind == "plot" or a == b:
        o1, o2 = s.rng.sample(list(T.WORDS["observable"]), 2)
        w1, w2 = s.pick(T.WORDS["observable"][o1]), s.pick(T.WORDS["observable"][o2])
        text = s.pick([f"plot the {w1} and {s.pick(['then ', 'the ', ''])}{w2} of {a}",
                       f"histogram {w1} and {w2} for {a}", f"{w1} and {w2} plots of {a}"])
        calls = [{"tool": "plot_observable", "args": {"dataset": a, "observable": o}} for o in (o1, o2)]
    elif kind == "show":
        i, j = sorted(s.rng.sample(range(0, 60), 2))
        text = s.pick([f"show jets {i} and {j} of {a}", f"draw jet {i} and jet {j} in {a}",
                       f"display jets #{i} and #{j} of {a}"])
        calls = [{"tool": "show_jet", "args": {"dataset": a, "index": k}} for k in (i, j)]
    elif kind == "embed":
        text = s.pick([f"embed {a} and {b}", f"compute embeddings for {a} and for {b}", f"embed both {a} and {b}"])
        calls = [{"tool": "embed", "args": {"dataset": d}} for d in (a, b)]
    elif kind == "describe":
        text = s.pick([f"describe {a} and {b}", f"summarize both {a} and {b}", f"stats for {a} and {b}"])
        calls = [{"tool": "describe_dataset", "args": {"dataset": d}} for d in (a, b)]
    else:
        jobs = [_job_id(s), _job_id(s)]
        ctx.jobs = jobs
        text = s.pick(["cancel {} and {}", "stop jobs {} and {}", "kill both {} and {}"]).format(*jobs)
        calls = [{"tool": "cancel_job", "args": {"job_id": j}} for j in jobs]
    return {"request": _dress(text, s), "context": ctx, "calls": calls}


def follow_up_example(s: Sampler) -> Example:
    """A turn that refers to the previous one: the previous turn's calls are in the context."""
    base = random_context(s)
    tool = s.pick([t for t in T.TEMPLATES if t not in ("list_artifacts", "job_status", "cancel_job")])
    prev = single_example(s, tool)
    prev_calls = prev["calls"]
    ctx = prev["context"]
    long = TOOLS[tool].long_running
    jobs = [_job_id(s)] if long and s.chance(0.6) else []
    ctx = after_turn(ctx, prev_calls, jobs=jobs)
    if long and not ctx.jobs:
        ctx.jobs = [_job_id(s)]
    if not ctx.datasets:
        ctx.datasets = base.datasets
    ctx.datasets = list(dict.fromkeys([*ctx.datasets, *base.datasets]))
    call = prev_calls[0]
    dataset, model = _made(call)
    r = s.rng.random()
    if long and r < 0.3:
        follow = s.pick(list(T.JOB_FOLLOW_UPS))
        text = s.pick(T.JOB_FOLLOW_UPS[follow]).replace("{job}", s.pick(T.JOB_BACK_REFERENCES))
        calls = [{"tool": follow, "args": {"job_id": ctx.jobs[0]}}]
        return {"request": _dress(text, s), "context": ctx, "calls": calls}
    if r < 0.65 and dataset:
        new_tool = s.pick(T.FOLLOW_UP_TOOLS)
        if new_tool == "evaluate" and not model:
            new_tool = "describe_dataset"
        refs = _Refs(dataset=dataset, model=model if call["tool"] in ("pretrain", "finetune") else None)
        text, args = one_call(s, new_tool, ctx, refs)
        text = s.pick(T.FOLLOW_UP_LEADS) + text
        taken = set(ctx.datasets) | set(ctx.models)
        return {"request": _dress(text, s), "context": ctx, "calls": [_finish(new_tool, args, taken)]}
    # the previous call again, with what the follow-up changes
    template, _ = s.pick(T.FOLLOW_UPS)
    fields = {f.name for f in tool_fields(call["tool"])}
    if not {m[0] for m in _SLOT.findall(template)} <= fields:
        template = "[now |]what about {dataset}?" if "dataset" in fields else "again"
    others = [d for d in ctx.datasets if d != call["args"].get("dataset")]
    if "{dataset}" in template and not others:
        template = "again"
    refs = _Refs()
    ctx_other = PlanContext(datasets=others or ctx.datasets, models=ctx.models, indexes=ctx.indexes, jobs=ctx.jobs)
    text, changed = render(call["tool"], template, s, ctx_other, refs)
    _keep_said(text, changed, ctx)
    if template == "again":
        return {"request": _dress(s.pick(["again please", "once more", "run that again"]), s), "context": ctx,
                "calls": [dict(call)]}
    args = {k: v for k, v in call["args"].items() if k != "name" or call["tool"] == "build_index"}
    args.update(changed)
    taken = set(ctx.datasets) | set(ctx.models)
    return {"request": _dress(text, s), "context": ctx, "calls": [_finish(call["tool"], args, taken)]}


def refusal_example(s: Sampler) -> Example:
    ctx = random_context(s)
    text = s.pick(T.NONE_REQUESTS + T.ADVERSARIAL)
    if s.chance(0.3):
        text = text.capitalize()
    if s.chance(0.15):
        text = s.pick(T.POLITE_BEFORE) + text
    return {"request": text, "context": ctx, "calls": []}


# --- keeping the evaluation suites out ----------------------------------------------------------------------

_SKELETON_PARTS = re.compile(r"job-\d{8}-\d{6}-[0-9a-f]{6}|[\w~.\-]*/[\w~./\-]*|\S*\d\S*")


def skeleton(text: str) -> str:
    """A request's words with its names, numbers and paths blanked: how near two phrasings are."""
    t = _SKELETON_PARTS.sub(" # ", text.lower())
    return " ".join(re.sub(r"[^a-z#]+", " ", t).split())


def near_verbatim(a: str, b: str, threshold: float = 0.9) -> bool:
    sa, sb = skeleton(a), skeleton(b)
    if sa == sb:
        return True
    if min(len(sa), len(sb)) < 12:
        return False
    return difflib.SequenceMatcher(None, sa, sb, autojunk=False).ratio() >= threshold


class SuiteFilter:
    """Says whether a request is near-verbatim to one of the evaluation suites' requests."""

    def __init__(self, paths: list[Path] = SUITES):
        requests = [json.loads(line)["request"] for p in paths for line in p.read_text().splitlines() if line.strip()]
        self.skeletons = {skeleton(r): r for r in requests}
        self.by_word: dict[str, list[str]] = {}
        for sk in self.skeletons:
            for w in set(sk.split()):
                self.by_word.setdefault(w, []).append(sk)

    def __call__(self, request: str) -> bool:
        sk = skeleton(request)
        if sk in self.skeletons:
            return True
        words = set(sk.split())
        shared: dict[str, int] = {}
        for w in words:
            for other in self.by_word.get(w, ()):
                shared[other] = shared.get(other, 0) + 1
        return any(
            n >= 0.6 * max(len(words), 1) and near_verbatim(request, self.skeletons[other])
            for other, n in shared.items()
        )


def build_examples(n: int = 3000, seed: int = 0, suites: list[Path] = SUITES) -> list[Example]:
    """``n`` examples: every tool evenly among the single calls, plus several steps, follow-ups and
    refusals; none near-verbatim to a request of the evaluation suites."""
    rng = random.Random(seed)
    s = Sampler(rng)
    held_out = SuiteFilter(suites)
    tools = list(T.TEMPLATES)
    out: list[Example] = []
    i = 0
    while len(out) < n:
        i += 1
        r = rng.random()
        if r < 0.55:
            ex = single_example(s, tools[i % len(tools)])
        elif r < 0.70:
            ex = multi_example(s)
        elif r < 0.74:
            ex = same_tool_example(s)
        elif r < 0.88:
            ex = follow_up_example(s)
        else:
            ex = refusal_example(s)
        if not held_out(ex["request"]):
            out.append(ex)
    return out
