"""The words physicists type for the values the tools take: jet classes (from the classes table,
backbone/data/classes.py), observables, pretraining objectives, finetuning modes, backbone sizes,
index kinds, anomaly methods, artifact kinds, devices and per-class plotting.

``find_terms`` reads a request and returns, per vocabulary, the canonical values it mentions, in
order of appearance. The router shows them to the model as candidates and narrows an enum's choices
to them; the model still decides whether and where a value goes. Matching works on a normalised
text (case, plurals, hyphens, "->" / "to" / "decaying to", "b b-bar" -> "bb", tau_2/tau_1 ->
tau21), the same normalisation for the request and for every phrase below, so a phrase is written
once in its plainest form.
"""

from __future__ import annotations

import re
from functools import lru_cache

from jetfm.backbone.data.classes import JET_CLASSES, PROCESSES

# --- vocabularies: canonical value -> phrases ------------------------------------------------------

OBSERVABLE_WORDS: dict[str, tuple[str, ...]] = {
    "pt": ("pt", "p_t", "transverse momentum", "jet pt", "pt spectrum"),
    "eta": ("eta", "pseudorapidity", "rapidity"),
    "mass": ("mass", "jet mass", "invariant mass", "m_j", "mj", "m_jet"),
    "sdmass": (
        "soft drop mass", "softdrop mass", "sdmass", "sd mass", "msd", "m_sd", "groomed mass",
        "groomed jet mass", "soft drop", "softdrop", "mmdt mass",
    ),
    "n_constituents": (
        "number of constituents", "constituent multiplicity", "n_constituents", "multiplicity", "constituent count",
        "number of particles", "particle multiplicity", "particle count", "nconst", "n_const", "constituents",
        "particles per jet", "how many particles", "how many constituents",
    ),
    "tau21": ("tau21", "two subjettiness ratio"),
    "tau32": ("tau32", "three subjettiness ratio"),
}
# A ratio named without its indices may be either.
OBSERVABLE_AMBIGUOUS: dict[str, tuple[str, ...]] = {
    "n subjettiness": ("tau21", "tau32"),
    "nsubjettiness": ("tau21", "tau32"),
}
OBJECTIVE_WORDS: dict[str, tuple[str, ...]] = {
    "mpm": (
        "mpm", "masked particle", "masked particle modelling", "masked particle modeling", "masked particle likelihood",
        "masked modelling", "masked modeling", "bert style", "masking",
        # the task in words: "by hiding some particles and predicting them back"
        "hiding some particles", "hiding particles", "hide some particles", "hides some particles",
        "predicting them back", "predict them back", "fill in the hidden", "filling in hidden",
    ),
    "contrastive": ("contrastive", "simclr", "jetclr", "infonce"),
    "ntp": ("ntp", "next token", "autoregressive", "gpt style", "gpt like", "next particle", "generative",
            "next constituent", "sample new jets", "generate new jets from it", "sample brand new jets",
            "sample brand-new jets"),
}
MODE_WORDS: dict[str, tuple[str, ...]] = {
    "linear_probe": ("linear probe", "linear probing", "linear_probe", "linear head"),
    "mlp_probe": ("mlp probe", "mlp head", "mlp on top", "mlp on frozen", "non-linear probe", "nonlinear probe"),
    "full": ("full", "full finetune", "all layers", "end to end", "unfrozen", "whole network"),
    "scratch": (
        "scratch", "random init", "random initialisation", "random initialization", "randomly initialised",
        "randomly initialized", "no pretraining", "without pretraining", "untrained",
    ),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "tiny": ("tiny",),
    "small": ("small",),
    "base": ("base", "base size", "base sized"),
}
INDEX_KIND_WORDS: dict[str, tuple[str, ...]] = {
    # ("exact" alone is no kind: "do the exact same thing")
    "flat": ("flat", "exact search", "exact index", "exact nearest", "exact knn", "brute force", "bruteforce",
             "exhaustive", "flat index"),
    "hnsw": ("hnsw", "small world", "graph based", "hnsw graph"),
    # "ivf flat index" outranks "flat index" (longest phrase first)
    "ivfflat": ("ivfflat", "ivf flat", "ivf flat index", "ivfflat index", "inverted file flat"),
    "ivfpq": ("ivfpq", "ivf pq", "product quantised", "product quantized", "product quantisation",
              "product quantization", "pq"),
    "auto": ("auto", "automatic"),
}
INDEX_KIND_AMBIGUOUS: dict[str, tuple[str, ...]] = {"ivf": ("ivfflat", "ivfpq"), "inverted file": ("ivfflat", "ivfpq")}
ANOMALY_METHOD_WORDS: dict[str, tuple[str, ...]] = {
    "knn": ("knn", "k nn", "nearest neighbour", "nearest neighbor", "neighbours", "neighbors", "distance"),
    "mpm": ("mpm", "reconstruction", "masked particle", "reconstruction error", "likelihood"),
}
ARTIFACT_KIND_WORDS: dict[str, tuple[str, ...]] = {
    "dataset": ("datasets", "samples", "data sets"),
    "model": ("models", "backbones", "classifiers", "taggers", "checkpoints", "networks", "neural nets",
              "nets", "neural networks"),
    "embedding": ("embeddings", "vectors", "latent vectors"),
    "index": ("indexes", "indices", "faiss indexes", "search indexes"),
    "plot": ("plots", "figures", "histograms", "images", "pictures"),
    "job": ("jobs", "running", "in the background", "queue", "queued", "crunching"),
}
DEVICE_WORDS: dict[str, tuple[str, ...]] = {
    "cuda": ("gpu", "cuda", "graphics card"),
    "cpu": ("cpu", "processor", "cpu only"),
}
BY_LABEL_WORDS: dict[bool, tuple[str, ...]] = {
    True: (
        "by class", "per class", "by label", "per label", "split by", "each class", "by truth", "by truth label",
        "per process", "by process", "class by class", "separately", "for each class", "broken down by",
        "per jet class", "by jet class", "for each jet class", "each jet class", "per truth class",
        "one curve per", "one histogram per", "a curve per", "a histogram per",
    ),
    False: (
        "inclusive", "inclusively", "all jets together", "together", "not split", "without splitting", "no split",
        "in one histogram", "not per class", "lumped", "combined", "overall", "not split by", "not by class",
        "without splitting by", "not broken down", "single histogram", "in one curve", "single curve",
        "all jets in one", "one histogram for all", "one curve for all", "one histogram for everything",
        "one curve for everything", "everything in one", "all in one histogram", "all classes together",
    ),
}

# Words that name the default backbone.
DEFAULT_MODEL_WORDS = ("default backbone", "default model", "shipped backbone", "shipped model", "jetfm default",
                       "default foundation model", "stock backbone", "pretrained backbone")
DEFAULT_MODEL = "jetfm-default"

# "top" as in "on top of", "top 5", "the top match" is not the top quark.
_NOT_TOP = re.compile(r"(?:\bon\s+top\b|\btop\s*(?:\d|k\b|few|match|hit|result|one|ranked|of the list))")
_NOT_W = re.compile(r"\bw/(?:o\b|\s)")

# "all classes", "all five jet classes", "every process": the first N of the table, or all of it.
_NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_ALL_CLASSES = re.compile(
    r"\b(?:all|every|each(?=\s+of))(?:\s+one)?(?:\s+of)?(?:\s+the)?\s+(?:(\d+|two|three|four|five|six|seven|eight|nine|ten)\s+)?"
    r"(?:jetclass\s+)?(?:jet\s+)?(?:class|classe|process|processe|categorie|category|type)\b"
    r"(?!\s+(?:together|lumped|combined))"
)

# --- normalisation -----------------------------------------------------------------------------------

_KEEP_S = {"this", "its", "his", "has", "was", "plus", "previous", "us", "is", "as", "gas", "yes", "less", "bias",
           "axis", "thus", "various", "numerous", "always", "towards", "perhaps", "whereas", "news"}


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss") and word not in _KEEP_S:
        return word[:-1]
    return word


@lru_cache(maxsize=4096)
def normalize(text: str, singular: bool = True) -> str:
    """Lower case, one spelling per notation, singular nouns (unless ``singular`` is false), single spaces."""
    t = text.lower()
    t = t.replace("\u2192", "->").replace("\u03c4", "tau").replace("\u03b7", "eta").replace("\u2013", "-")
    t = t.replace("\u2014", " , ").replace("\u2019", "'").replace("\u0304", "")
    t = re.sub(r"[()]", " ", t)  # "groomed (soft-drop) mass": the words, not the brackets
    t = re.sub(r"'s\b", "", t)
    t = t.replace("'", "")
    t = re.sub(r"\btau[_{\s]*(\d)\}?\s*/\s*tau[_{\s]*(\d)\}?", r"tau\1\2", t)  # tau_2/tau_1 -> tau21
    t = re.sub(r"\btau[_{\s]*(\d\d)\}?", r"tau\1", t)  # tau_21, tau 21, tau_{21}
    for digits, spoken in (("21", "two[\\s-]*one"), ("32", "three[\\s-]*two"), ("43", "four[\\s-]*three")):
        t = re.sub(rf"\btau[\s-]*{spoken}\b", f"tau{digits}", t)  # "the 'tau two-one' thing"
    t = re.sub(r"\b([bcq])[\s-]*\1?[\s-]*bar\b", r"\1\1", t)  # b b-bar, bbbar, b-bbar -> bb
    t = re.sub(r"\b([bcq])\s+\1\b", r"\1\1", t)  # "b b" -> bb
    # "H to bb", "Higgs-to-cc", "Z decaying into qq"
    t = re.sub(r"\b(h|higgs|z|w|t|top|boson)[\s-]+(?:decaying[\s-]+|decays[\s-]+|going[\s-]+)?(?:to|into)[\s-]+"
               r"(?=[a-z0-9])", r"\1->", t)
    t = re.sub(r"\s*->\s*", "->", t)
    lepton = r"(?:\b(?:l|lepton)|\u2113)\s*"
    t = re.sub(rf"{lepton}(?:nu|v|\u03bd)\b\s*(?=q)|{lepton}(?:nu|\u03bd)\b", "lv", t)  # "l nu qq" -> lvqq
    t = re.sub(r"(?<=[a-z0-9])-(?=[a-z])|(?<=[a-z])-(?=[0-9])", " ", t)  # light-quark -> light quark
    t = re.sub(r"\bp_?\{?t\}?\b", "pt", t)
    if singular:
        t = re.sub(r"\b[a-z][a-z0-9]*s\b", lambda m: _singular(m.group(0)), t)
    return " ".join(t.split())


# --- matching ----------------------------------------------------------------------------------------


def class_phrases() -> dict[str, tuple[str, ...]]:
    """Every phrase the classes table gives for a class: its process name, synonyms, names, label."""
    return {c.name: (c.name, *c.synonyms, *c.names, c.label) for c in JET_CLASSES}


VOCABULARIES: dict[str, dict[object, tuple[str, ...]]] = {
    "class": class_phrases(),  # type: ignore[dict-item]
    "observable": {**OBSERVABLE_WORDS},  # type: ignore[dict-item]
    "objective": {**OBJECTIVE_WORDS},  # type: ignore[dict-item]
    "mode": {**MODE_WORDS},  # type: ignore[dict-item]
    "size": {**SIZE_WORDS},  # type: ignore[dict-item]
    "index_kind": {**INDEX_KIND_WORDS},  # type: ignore[dict-item]
    "anomaly_method": {**ANOMALY_METHOD_WORDS},  # type: ignore[dict-item]
    "artifact_kind": {**ARTIFACT_KIND_WORDS},  # type: ignore[dict-item]
    "device": {**DEVICE_WORDS},  # type: ignore[dict-item]
    "by_label": {**BY_LABEL_WORDS},  # type: ignore[dict-item]
}
# A frozen backbone with a head on top is a probe, linear unless an MLP head is named ("freeze X and
# train an MLP head on top": the MLP probe)
MODE_AMBIGUOUS: dict[str, tuple[str, ...]] = {
    w: ("linear_probe", "mlp_probe") for w in ("probe", "frozen", "freeze", "frozen backbone", "frozen features")
}
_AMBIGUOUS = {"observable": OBSERVABLE_AMBIGUOUS, "index_kind": INDEX_KIND_AMBIGUOUS, "mode": MODE_AMBIGUOUS}

# Which vocabulary fills which tool field ("*": any tool).
FIELD_VOCABULARY: dict[tuple[str, str], str] = {
    ("*", "processes"): "class",
    ("*", "classes"): "class",
    ("search_similar", "labels"): "class",
    ("*", "signal"): "class",
    ("*", "observable"): "observable",
    ("*", "objective"): "objective",
    ("*", "mode"): "mode",
    ("*", "size"): "size",
    ("build_index", "kind"): "index_kind",
    ("list_artifacts", "kind"): "artifact_kind",
    ("*", "method"): "anomaly_method",
    ("*", "by_label"): "by_label",
}


def vocabulary_of(tool: str, field: str) -> str | None:
    return FIELD_VOCABULARY.get((tool, field)) or FIELD_VOCABULARY.get(("*", field))


_PLURAL_VOCABULARIES = {"artifact_kind"}


@lru_cache(maxsize=2)
def _patterns(plural: bool = False) -> list[tuple[re.Pattern[str], str, tuple[object, ...]]]:
    """(pattern, vocabulary, values), longest phrase first, so that "soft drop mass" wins over "mass".
    ``plural``: the vocabularies whose plurals matter, matched on the text as written."""
    entries: list[tuple[str, str, tuple[object, ...]]] = []
    for vocab, table in VOCABULARIES.items():
        if (vocab in _PLURAL_VOCABULARIES) != plural:
            continue
        for value, phrases in table.items():
            entries += [(normalize(p, not plural), vocab, (value,)) for p in phrases]
        for phrase, values in _AMBIGUOUS.get(vocab, {}).items():
            entries.append((normalize(phrase, not plural), vocab, values))
    entries = [e for e in entries if e[0]]
    entries.sort(key=lambda e: -len(e[0]))
    return [(re.compile(r"(?<![\w>-])" + re.escape(p) + r"(?![\w-]|->)"), v, vals) for p, v, vals in entries]


# A word that says the next few words are not wanted: "only the models, not the datasets", "don't
# split it by class". It reaches to the end of its clause and at most three words.
_NEGATOR = re.compile(r"\b(?:not|dont|do not|doesnt|does not|never|without|rather than|instead of|other than"
                      r"|except|no need to|nor)\s+(?:[^\s,;.!?]+\s+){0,3}$")
# "leptonic + hadronic top", "hadronic and leptonic tops": two qualifiers that share one noun
_SHARED_NOUN = re.compile(r"\b([a-z]+)\s*(?:\+|&|/|and|or)\s*([a-z]+)\s+([a-z]+)\b")


def _negated(t: str, start: int) -> bool:
    return bool(_NEGATOR.search(t, max(0, start - 60), start)) and not re.search(r"\bnot only\s+$", t[:start])


@lru_cache(maxsize=1)
def _normalized_class_phrases() -> frozenset[str]:
    return frozenset(normalize(p) for ps in class_phrases().values() for p in ps)


def _share_nouns(t: str) -> str:
    """"leptonic + hadronic top" -> "leptonic top + hadronic top", where the first qualifier with the
    noun is a class phrase of its own (the rest of the matching sees both classes)."""
    phrases = _normalized_class_phrases()

    def spread(m: re.Match[str]) -> str:
        first, second, noun = m.groups()
        joined = m.group(0)[len(first) : m.start(3) - m.start(0)]
        return f"{first} {noun}{joined}{noun}" if f"{first} {noun}" in phrases else m.group(0)

    return _SHARED_NOUN.sub(spread, t)


def find_terms(text: str) -> dict[str, list[object]]:
    """Per vocabulary, the canonical values ``text`` mentions, in order of appearance (each once).
    A term that follows a negation ("not the datasets") is not mentioned; a negated flag ("don't
    split it by class") counts as its opposite."""
    found: list[tuple[int, str, object, bool]] = []
    for plural in (False, True):
        t = _share_nouns(normalize(text, singular=not plural))
        taken: dict[str, list[bool]] = {}  # per vocabulary: "masked particle" may be an objective and a method
        for pattern, vocab, values in _patterns(plural):
            for m in pattern.finditer(t):
                mask = taken.setdefault(vocab, [False] * len(t))
                if any(mask[m.start() : m.end()]):
                    continue
                if vocab == "class" and values == ("top",) and _NOT_TOP.search(t, max(0, m.start() - 3), m.end() + 12):
                    continue
                if vocab == "class" and values == ("wqq",) and _NOT_W.match(t, m.start()):
                    continue
                for i in range(m.start(), m.end()):
                    mask[i] = True
                if _negated(t, m.start()):
                    if not all(isinstance(v, bool) for v in values):
                        continue
                    values = tuple(not v for v in values)
                found += [(m.start(), vocab, v, len(values) > 1) for v in values]
    # "N-subjettiness ratio tau32": where a value is named, a phrase that may mean several does not add others
    named = {(f[1], f[2]) for f in found if not f[3]}
    named_vocabs = {v for v, _ in named}
    found = [f for f in found if not f[3] or f[1] not in named_vocabs or (f[1], f[2]) in named]
    t = normalize(text)
    # "the N-subjettiness ratio that tells you if a jet has two prongs": the prongs say which ratio
    prongs = {v for v, pattern in (("tau21", r"\b(?:two|2)[\s-]*prong"), ("tau32", r"\b(?:three|3)[\s-]*prong"))
              if re.search(pattern, t)}
    if len(prongs) == 1:
        found = [f for f in found if not (f[3] and f[1] == "observable") or f[2] in prongs]
    m = _ALL_CLASSES.search(t)
    if m:
        n = m.group(1)
        count = len(PROCESSES) if n is None else int(_NUMBER_WORDS.get(n, n))
        found += [(m.start(), "class", p, False) for p in PROCESSES[: max(2, min(count, len(PROCESSES)))]]
    out: dict[str, list[object]] = {}
    for _, vocab, value, _ in sorted(found, key=lambda f: f[0]):
        values = out.setdefault(vocab, [])
        if value not in values:
            values.append(value)
    return out


def mentions_default_model(text: str) -> bool:
    t = normalize(text)
    return any(re.search(r"\b" + re.escape(normalize(w)) + r"\b", t) for w in DEFAULT_MODEL_WORDS)


def name_classes(name: str) -> list[str]:
    """The classes a dataset's name suggests: ``wjets_2k`` -> wqq, ``ttbar_hi`` -> top, ``hbb-sig`` -> hbb."""
    short: dict[str, str] = {}
    for c in JET_CLASSES:
        for word in (c.name, *c.synonyms):
            w = re.sub(r"[^a-z0-9]", "", word.lower())
            if w and w not in short:
                short[w] = c.name
    out = []
    for part in re.split(r"[-_.\d\s]+", name.lower()):
        for stem in (part, part.removesuffix("jets"), part.removesuffix("jet"), part.removesuffix("s")):
            if stem in short and short[stem] not in out:
                out.append(short[stem])
                break
    return out
