"""What a request names, typed: the workspace's artifacts by role (dataset, model, index, job),
names for new artifacts, file paths, numbers with what they count, and the lexicon's physics words
(agent/lexicon.py). The router shows them to the model on a ``Found:`` line and offers them as the
candidates of the matching arguments; the model binds them to slots (or leaves them out).

    extract("Fine-tune fm_mpm on ttbar_hi", PlanContext(datasets=["ttbar_hi"], models=["fm_mpm"]))
    -> datasets ["ttbar_hi"], models ["fm_mpm"]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from jetfm.agent.clauses import ACTION_WORDS, Clause, action_clauses, tools_of, without_names
from jetfm.agent.context import PlanContext
from jetfm.agent.lexicon import DEFAULT_MODEL, find_terms, mentions_default_model, name_classes
from jetfm.agent.numbers import Number, typed_numbers

# A name as people type it: letters, digits and _ . - inside.
NAME_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*[A-Za-z0-9_]|[A-Za-z0-9]")
# A file or folder as people type it: with a slash, or a name with a jet-file extension.
PATH = re.compile(r"[\w~.\-]*/[\w~./\-]*[\w/]|[\w.\-]+\.(?:root|h5|hdf5|parquet)\b")
JOB = re.compile(r"job-\d{8}-\d{6}-[0-9a-f]{6}")
STOPWORDS = {"a", "an", "the", "of", "in", "on", "to", "for", "and", "or", "with", "it", "is", "me", "my", "i"}
_NAMING = re.compile(
    r"\b(?:called|named|name it|call it|name:|(?<=[,;]\s)name|with the name|names? (?:it|them)|"
    # "call the classifier hbb_lp", "name the new tagger wz2"
    r"(?:call|name) (?:the |this |that |my )?(?:new |resulting |trained )?(?:classifier|model|tagger|dataset|sample"
    r"|index|probe|backbone|result|run|output|file)|"
    r"save (?:it |them )?(?:as|to)|under the name|store (?:it )?as|label it|as)\s+"
    # "as dataset notes", "as a new model tagger": the kind of artifact may come between.
    r"(?:(?:a |an |the |new )*(?:dataset|model|sample|index)\s+(?:called\s+|named\s+)?(?=[\"'`]?[A-Za-z0-9_]))?"
    r"[\"'`]?([A-Za-z0-9_][\w.\-]*[A-Za-z0-9_]|[A-Za-z0-9])",
    re.IGNORECASE,
)
# A name given as a keyword or an option, as pasted from a script: "name='clr-s7'", "--name wz2".
_ASSIGNED_NAME = re.compile(r"(?:--name[\s=]\s*|\bname\s*=\s*)[\"'`]?"
                            r"([A-Za-z0-9_][\w.\-]*[A-Za-z0-9_]|[A-Za-z0-9])(?=[\"'`]|\s|,|\)|$)", re.IGNORECASE)
# Words after "as" that are no name ("as signal", "as a dataset", "as the reference").
_NOT_NAMES = {
    "a", "an", "the", "signal", "background", "reference", "well", "it", "them", "one", "before", "input", "inputs",
    "usual", "default", "is", "dataset", "sample", "data", "model", "plot", "histogram", "soon", "much",
    "many", "if", "we", "you", "i", "possible", "needed", "follows", "such", "baseline", "bkg", "sig", "training",
}
# Words that point back at something the conversation or this request already named.
_THINGS = r"(?:dataset|sample|data|jets|model|classifier|tagger|backbone|job|index|result|one|plot|search|run|scan)"
# "the resulting classifier", "the freshly trained tagger": what an earlier step made
_MADE = r"(?:resulting|new|newly \w+|freshly \w+|trained|fine-?tuned|finetuned|generated|produced|built)"
ANAPHORA = re.compile(
    r"\b(?:it|its|itself|(?<!of )them|their|they|same|again|(?:do|repeat|like|redo|undo) that|that$|"
    r"(?:on|of|for|with|to|from|in|into|over) (?:that|this|these|those)(?! (?:is|are|was|were|which)\b)|"
    rf"(?:that|this|these|those|the new|the same|the)(?: {_MADE})? {_THINGS}s?)\b",
    re.IGNORECASE,
)
# "the W sample", "that Higgs dataset": a dataset named by what it holds.
_BY_CLASS = re.compile(
    r"\b(?:the|that|this|my|those|these)\s+(?:\S+\s+){1,3}?(?:sample|dataset|data ?set|jets|one)s?\b", re.IGNORECASE
)
SIZES = ("tiny", "small", "base")
# "repeat that", "do the same for run2", "again": the previous action once more, not its output
REPEAT = re.compile(r"\b(?:repeat|redo|re-?run|again|(?:do|same) (?:that|this|it)|the (?:exact |very )?same"
                    r"|^\W*same (?:for|with|on)"
                    r"|likewise)\b", re.IGNORECASE)


@dataclass
class Entities:
    request: str = ""
    action_text: str = ""  # the words of the action being planned (`within`); "" for the whole request
    plain: str = ""  # the request with workspace names that hold an action word masked ("zh-bb-scan")
    terms: dict[str, list[object]] = field(default_factory=dict)  # vocabulary -> canonical values (lexicon)
    numbers: list[Number] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)  # known names the request says, by role
    models: list[str] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    new_names: list[str] = field(default_factory=list)  # after "called", "named", "as", ...
    paths: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # other name-like words (may name what is not known)
    by_class: list[str] = field(default_factory=list)  # datasets "the W sample" may mean
    references: list[str] = field(default_factory=list)  # datasets named as a reference ("against X")
    anaphora: bool = False
    repeat: bool = False  # the request repeats the previous action (REPEAT)
    sizes: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # the jet classes the words name (of one action in `within`)
    clauses: list[Clause] = field(default_factory=list)  # its actions in order (agent/clauses.py)
    # of one action (`within`) that points back without naming: per kind, what earlier actions named
    earlier: dict[str, list[str]] = field(default_factory=dict)

    def within(self, clause: Clause) -> Entities:
        """What one action of the request names: its numbers, the artifacts its words name, and
        whether it points back ("evaluate it on qcd_ref" of "fine-tune fm_mpm ..., then evaluate
        it on qcd_ref": qcd_ref, and "it" is what the plan made)."""
        def names_in(text: str) -> set[str]:
            return {_fold(t.removesuffix("'s")) for t in NAME_TOKEN.findall(text)}

        words, before = names_in(clause.text), names_in(self.request[: clause.start])
        anaphora = bool(ANAPHORA.search(clause.text))
        named: dict[str, list[str]] = {}
        earlier: dict[str, list[str]] = {}
        # "embed qcd_mc first, then scan run2 against qcd_mc": qcd_mc is the reference of the scan only
        references = [n for n in self.references if _fold(n) not in words or _as_reference(n, clause.text)]
        for kind in ("datasets", "models", "indexes", "jobs", "new_names", "words", "by_class", "references"):
            every = references if kind == "references" else getattr(self, kind)
            here = [n for n in every if _fold(n) in words]
            # An action that names none and points back ("plot its mass", "embed them") means what the
            # plan made or else what an earlier action named (`earlier`); without a back-reference it
            # may use whatever the request names. A new name belongs to the action that gives it.
            named[kind] = here if here or anaphora or kind == "new_names" else every
            # ("scan it against qcd_ref": the reference is named here, what "it" is was named before)
            own = [n for n in here if kind != "datasets" or n not in references]
            earlier[kind] = [n for n in every if _fold(n) in before] if anaphora and not own else []
        numbers = [n for n in self.numbers if clause.start <= n.start < clause.end]
        text = clause.text
        for name in (*self.datasets, *self.models, *self.indexes, *self.new_names, *self.words, *self.paths):
            text = _without(name, text)
        # The classes, observables and splits this action names fill its fields ("..., then plot the jet
        # mass per class": the plot's, not the generation's pT window)
        own = find_terms(text)
        classes = _unique(c for c in own.get("class", []) if isinstance(c, str))
        terms = {**self.terms, "class": classes, "observable": own.get("observable", []),
                 "by_label": own.get("by_label", [])}
        terms = _this_time(text, terms)
        return replace(self, numbers=numbers, anaphora=anaphora, earlier=earlier, classes=classes, terms=terms,
                       action_text=clause.text, **named)


# "this time": a setting named after it replaces one named before it in the same action
_THIS_TIME = re.compile(r"\bthis time\b", re.I)
_SETTING_VOCABULARIES = ("anomaly_method", "index_kind", "objective", "mode", "size", "device")


def _this_time(text: str, terms: dict[str, list[object]]) -> dict[str, list[object]]:
    """"The kNN scan was inconclusive, so this time rank it by MPM": a setting named after "this time"
    replaces the one named before it."""
    turn = _THIS_TIME.search(text)
    if turn is None:
        return terms
    later = find_terms(text[turn.end() :])
    return terms | {vocab: values for vocab, values in later.items() if vocab in _SETTING_VOCABULARIES and values}


# A folder said apart from the file: "copied it into the workspace under incoming/", "put it in data/raw/".
_FOLDER = re.compile(r"\b(?:under|in|into|to)\s+(?:the\s+)?(?:workspace\s+)?(?:(?:under|in)\s+)?"
                     r"((?:[\w.\-]+/)+)(?![\w\-])", re.I)


def _looks_like_path(text: str) -> bool:
    """"data/run2.root", "/eos/x", "imports/cms_opendata" are paths; "W/Z", "tau3/tau2", "light-quark/gluon" are not."""
    if re.fullmatch(r"(?:tau|\u03c4|t)_?\{?\d\}?/(?:tau|\u03c4|t)_?\{?\d\}?", text, re.IGNORECASE):  # also τ3/τ2, t3/t2
        return False
    return text.startswith(("/", "~", ".")) or bool(re.search(r"\.\w+$|[\d_]", text)) or text.count("/") >= 2


_REFERENCE_BEFORE = (r"(?:against|versus|vs\.?|relative to|compared (?:to|with)|reference(?: sample| dataset| set)?"
                     r"|background(?: sample| dataset| set)?|sideband)\s+(?:the\s+|my\s+|our\s+)?"
                     # "top vs QCD with tq5k": a preposition ends the reference ("vs the QCD sample qcd_ref")
                     r"(?:(?!(?:with|on|in|using|for|from|and|of|to)\b)[\w-]+\s+){0,2}")
_REFERENCE_AFTER = (r"\s+as\s+(?:the\s+|a\s+|my\s+|our\s+)?(?:[\w-]+\s+){0,2}"
                    r"(?:reference|background|baseline|sideband|control)\b")


def _as_reference(name: str, text: str) -> bool:
    """Whether ``text`` names the dataset as the reference a scan compares with: "against qcd_ref",
    "using qcd_mc_ref as the background reference", "the QCD reference qcd_ref"."""
    token = r"(?<![\w.\-])" + re.escape(name) + r"(?![\w\-])"
    return bool(re.search(_REFERENCE_BEFORE + token, text, re.I) or re.search(token + _REFERENCE_AFTER, text, re.I))


def _without(name: str, text: str) -> str:
    """``text`` with the name blanked out wherever it stands as a whole token, so that the words
    inside a name ("hbb_test", "top-qcd-10k") are not read as classes or other terms."""
    return re.sub(r"(?<![\w.\-])" + re.escape(name) + r"(?![\w\-])", " ", text)


def _unique(items) -> list[str]:  # noqa: ANN001
    return list(dict.fromkeys(items))


def _fold(name: str) -> str:
    return name.casefold()


def extract(request: str, context: PlanContext | None = None) -> Entities:
    context = context or PlanContext()
    ent = Entities(request=request)
    ent.jobs = _unique(JOB.findall(request))
    text = JOB.sub(" ", request)
    ent.paths = _unique(p for p in PATH.findall(text) if _looks_like_path(p))
    for p in ent.paths:
        text = text.replace(p, " ")
    files = [p for p in ent.paths if "/" not in p]
    folder = _FOLDER.search(request)
    if folder and len(files) == 1:
        # "I copied delphes_tt.h5 into the workspace under incoming/": the file in that folder
        ent.paths = [folder.group(1) + files[0], *(p for p in ent.paths if p not in (files[0], folder.group(1)))]
        text = text.replace(folder.group(1), " ")
    known_names = [*context.indexes, *context.models, *context.datasets]
    known = {
        **{_fold(n): ("indexes", n) for n in context.indexes},
        **{_fold(n): ("models", n) for n in context.models},
        **{_fold(n): ("datasets", n) for n in context.datasets},
    }
    named_new = {m.group(1) for pattern in (_NAMING, _ASSIGNED_NAME) for m in pattern.finditer(text)
                 if m.group(1).lower() not in _NOT_NAMES}
    masked = text
    for token in NAME_TOKEN.findall(text):
        word = token.removesuffix("'s")
        hit = known.get(_fold(word))
        if hit is not None:
            getattr(ent, hit[0]).append(hit[1])
        elif word in named_new:
            ent.new_names.append(word)
        else:
            setting = re.match(r"\s*=", text[text.find(token) + len(token):])  # "n_labels=500": a key
            if (re.search(r"[\d_]", word) and not re.fullmatch(r"[\d.,eE+\-]+[kKmM]?|tau_?\d+|\d+q", word)
                    and not setting
                    and not find_terms(word) and word.lower() not in ACTION_WORDS):  # "no plot_observable": a tool
                ent.words.append(word)  # looks like a name (digits or _ inside): maybe one nobody registered
            continue
        masked = _without(token, masked)
    for kind in ("datasets", "models", "indexes", "new_names", "words"):
        setattr(ent, kind, _unique(getattr(ent, kind)))
    ent.references = [d for d in ent.datasets if _as_reference(d, text)]
    ent.clauses = action_clauses(request, known_names)
    ent.plain = without_names(request, known_names)
    lead = request[: ent.clauses[0].start] if ent.clauses else ""
    if context.previous and REPEAT.search(lead) and not tools_of(lead):
        # "same for hcc-tight, plus a tau21 histogram": the previous turn's action again, then the new one
        again = tuple(dict.fromkeys(c["tool"] for c in context.previous if c.get("tool")))
        ent.clauses = [Clause(0, len(lead), lead.strip(" ,;"), again), *ent.clauses]
    ent.terms = find_terms(masked)
    if len(ent.clauses) <= 1:  # a request of several actions reads "this time" in each one (within)
        ent.terms = _this_time(masked, ent.terms)
    if mentions_default_model(masked) and DEFAULT_MODEL not in ent.models:
        ent.models.append(DEFAULT_MODEL)
    by_name = _BY_MODEL_WORD.search(masked)
    if not ent.models and by_name:
        # "out of the contrastive model", "the mpm backbone": the one model with that word in its name
        words = {by_name.group(1).casefold()} - _NOT_NAME_WORDS
        named = [m for m in context.models if words & {t.casefold() for t in re.findall(r"[A-Za-z]+", m)}]
        ent.models = named if len(named) == 1 else []
    ent.sizes = [s for s in ent.terms.get("size", []) if isinstance(s, str)]
    ent.classes = _unique(c for c in ent.terms.get("class", []) if isinstance(c, str))
    ent.numbers = typed_numbers(request, lambda words: "class" in find_terms(words), len(ent.classes))
    ent.anaphora = bool(ANAPHORA.search(masked))
    ent.repeat = bool(REPEAT.search(masked))
    classes = [c for c in ent.terms.get("class", []) if isinstance(c, str)]
    by_class = _BY_CLASS.search(masked)
    if classes and not ent.datasets and by_class and "class" in find_terms(by_class.group(0)):
        made = {}
        for call in context.previous:
            if call.get("tool") == "generate_dataset" and call["args"].get("name"):
                made[call["args"]["name"]] = list(call["args"].get("processes") or [])
        ent.by_class = [
            d for d in context.datasets if set(made.get(d) or name_classes(d)) & set(classes)
        ]
    if not ent.datasets and not ent.by_class and by_class:
        # "the Herwig sample", "the herwig one": a sample named by a word of its name
        words = {w.casefold() for w in re.findall(r"[A-Za-z]\w{2,}", by_class.group(0))} - _NOT_NAME_WORDS
        ent.by_class = [d for d in context.datasets if words & {t.casefold() for t in re.findall(r"[A-Za-z]+", d)}]
    return ent


_BY_MODEL_WORD = re.compile(r"\b(?:the|my|our|that|this)\s+([A-Za-z]\w{2,})\s+(?:model|backbone|encoder|network|net"
                            r"|tagger|classifier)\b", re.I)
_NOT_NAME_WORDS = {"the", "that", "this", "my", "those", "these", "sample", "samples", "dataset", "datasets", "data",
                   "set", "jets", "jet", "one", "ones", "new", "other", "old", "pretrained", "trained", "same",
                   "default", "fine", "tuned", "finetuned", "whole", "first", "last", "latest", "best", "tiny",
                   "small", "base"}


# Words of jetfm's world: a request with none of them, no action word and nothing named ("book a
# meeting room", "order pizza") is one no tool answers.
_DOMAIN = re.compile(r"\b(?:jets?|particles?|constituents?|datasets?|samples?|models?|backbones?|taggers?"
                     r"|index(?:es)?|embeddings?|workspace|artifacts?|jobs?|files?|plots?|histograms?|auc|roc"
                     r"|events?|physics|collider|detector)\b", re.I)


# A question about the field's knowledge, not the workspace: "what AUC do published top taggers reach?"
# What the field knows, whatever the request names: "what AUC do published top taggers reach?"
_FIELD_WORDS = r"published|literature|arxiv|state[- ]of[- ]the[- ]art|in the field"
_FIELD_KNOWS = re.compile(rf"\b(?:{_FIELD_WORDS})\b", re.I)
# ... and words that may also only say why an action is wanted ("for the paper, make 5k top jets")
_LITERATURE = re.compile(rf"\b(?:{_FIELD_WORDS}|papers?|textbooks?|the experiments? (?:use|report))\b", re.I)


# A question that asks for an explanation ("why does the top mass peak at 173 GeV?") or a verb no tool
# has ("book a meeting", "email my supervisor"): answered by a person or a textbook, not by a tool.
_EXPLAIN = re.compile(r"^\W*(?:(?:in (?:a|one) (?:sentence|line|word|nutshell)(?: or two)?|briefly|in short|roughly"
                      r"|in simple terms|in simple words|in plain words|in plain english|remind me|quick question"
                      r"|conceptually|in principle|physics-wise)\W+)?"
                      r"(?:why|how come|what is the reason|what's the reason|explain(?: to me)? why|"
                      r"can you explain|could you explain|what causes"
                      # ("whats actually the physical difference between ...": dictated, an adverb, an adjective)
                      r"|what(?:'s|s| is| are)(?: actually| really| exactly)? the (?:\w+ )?(?:difference|differences"
                      r"|point|idea|intuition)"
                      r"|how (?:does|do|is|are|would|should|can) [^.?!]{0,80}?\b(?:differ|work|compare|relate|help)"
                      r"|in what way|what (?:does|do) [^.?!]{0,60}?\b(?:actually |really )?(?:measure|mean|capture"
                      r"|quantify|tell (?:us|me)))\b"
                      # "... I don't need you to run anything": a question, said so
                      r"|\b(?:(?:don't|do not|no need to)\s+(?:need\s+(?:you\s+)?to\s+)?run\s+anything"
                      r"|without running anything|not after a plot|just the idea|no need for a plot)\b", re.I)
# Where a paper goes ("would you send it to SciPost or JINST?"): publishing advice, which no tool gives.
_VENUE = re.compile(r"\b(?:scipost|jinst|jhep|epjc|epj ?c|phys\.? ?rev\.?(?: ?[a-e]| letters)?|prl|prd"
                    r"|comput\.? ?phys\.? ?commun\.?|which (?:journal|venue|conference)"
                    r"|(?:send|submit|publish)\w*\s+(?:it|this|the (?:paper|note|draft|article))\s+(?:to|in))\b", re.I)
_FOREIGN = re.compile(r"^\W*(?:(?:please|can you|could you|would you)\s+)*(?:book|schedule|order|buy|e-?mail|send"
                      r"|remind|phone|call my|text my|translate|write (?:an? )?(?:email|letter|poem|song))\b", re.I)


def _names_the_workspace(ent: Entities) -> bool:
    return bool(ent.datasets or ent.models or ent.indexes or ent.jobs or ent.paths or ent.new_names or ent.anaphora)


def asks_for_an_explanation(ent: Entities) -> bool:
    """A conceptual question ("why ...?", "how does a linear probe differ from fine-tuning?") that names
    nothing of the workspace: no tool answers it, even where it names an action."""
    return bool(_EXPLAIN.search(ent.request)) and not _names_the_workspace(ent)


def asks_for_what_no_tool_does(ent: Entities) -> bool:
    """A verb no tool has ("book a room", "e-mail my supervisor") or publishing advice, naming nothing
    of the workspace: the plan ends, with the head start of a step (see router.py)."""
    artifacts = ent.datasets or ent.models or ent.indexes or ent.jobs or ent.paths
    return bool(_FOREIGN.search(ent.request) and not artifacts) or bool(
        _VENUE.search(ent.request) and not (artifacts or ent.classes or ent.by_class or ent.new_names))


def off_topic(ent: Entities) -> bool:
    """Whether the request names nothing a tool works on: no action, artifact, class, term, path or
    back-reference, and no word of jetfm's world; or asks what the field knows ("published",
    "state of the art", "why does ...?") or for something no tool does ("book a meeting") without
    naming anything of the workspace."""
    # ("for the paper, make 5k top jets" names an action on jets: the paper is only why)
    acts_on_jets = bool(ent.clauses and (ent.classes or ent.by_class)) and not _FIELD_KNOWS.search(ent.request)
    if asks_for_an_explanation(ent) or (_LITERATURE.search(ent.request) and not _names_the_workspace(ent)
                                        and not acts_on_jets):
        return True
    artifacts = ent.datasets or ent.models or ent.indexes or ent.jobs or ent.paths
    if _FOREIGN.search(ent.request) and not artifacts:
        return True
    if _VENUE.search(ent.request) and not (artifacts or ent.classes or ent.by_class or ent.new_names):
        return True
    named = (ent.clauses or ent.datasets or ent.models or ent.indexes or ent.jobs or ent.paths or ent.classes
             or ent.terms or ent.new_names or ent.words or ent.by_class or ent.anaphora or ent.repeat)
    return not named and not _DOMAIN.search(ent.request)


_SEARCH_VERB = re.compile(
    r"^\s*(?:(?:please|now|then|also|and|can you|could you|i want to|i'd like to|i would like to)\s+)*"
    r"(?:find|search(?:\s+for)?|look\s+for|show(?:\s+me)?|retrieve|get(?:\s+me)?|give\s+me|fetch|pull\s+(?:up|out))"
    r"\s+(?:me\s+)?(?:(?:the\s+)?(?:top|best|first)\s+)?", re.I)
# A phrase in quotes: what to search for, as written ("'" inside a word, "jet's", is no quote).
_QUOTED = re.compile(r"(?<!\w)[\"'“‘]([^\"'“”‘’]+)[\"'”’](?!\w)")
# The count of results right after the verb ("find 25 ...", "show me ten ..."); "three-prong" stays.
_COUNT = re.compile(r"^(?:\d[\d,]*k?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen"
                    r"|twenty|thirty|forty|fifty|a hundred|hundred)\s+(?=\S)", re.I)


def search_description(ent: Entities) -> str:
    """What a text search is asked to find, in the request's own words: the action's text without its
    verb, its count of results and the datasets it names ("find 25 three-prong jets in boosted_tt with
    soft-drop mass between 150 and 200 GeV" -> "three-prong jets with soft-drop mass between 150 and
    200 GeV"). A candidate for the query beside the model's own (agent/router.py); "" if nothing is left."""
    text = ent.action_text or ent.request
    quoted = _QUOTED.findall(text)
    if len(quoted) == 1 and len(quoted[0].split()) >= 2:  # "the 10 jets that best match 'two-prong H->cc'"
        return quoted[0].strip()
    for name in (*ent.datasets, *ent.models, *ent.indexes, *ent.paths):
        pattern = rf"(?:\b(?:in|from|of|within|among|inside|over|on|using|with)\s+(?:the\s+)?" \
                  rf"(?:(?:dataset|sample|model|index)\s+)?)?{re.escape(name)}(?![\w-]|\.\w)"
        text = re.sub(pattern, " ", text, flags=re.I)
    text = re.sub(r"\b(?:in|from|of|among|within)\s+(?:it|them|that|this|those)\b", " ", text, flags=re.I)
    text = re.sub(r"\s+", " ", text).lstrip(" ,;:")  # "In run3_mix, find ...": the place is gone
    text = _SEARCH_VERB.sub("", text, count=1)
    text = _COUNT.sub("", text, count=1)
    text = re.sub(r"\s+", " ", text).strip(" ,.;:!?")
    text = re.sub(r"\s*,?\s*(?:please|pls|thanks)$", "", text, flags=re.I)
    if ent.action_text and ent.action_text != ent.request and _NOTHING_DESCRIBED.fullmatch(text):
        # "... three prongs, mass between 160 and 190 GeV. Show me the 25 best ones in X": what to find
        # was said before the action's own words
        return search_description(replace(ent, action_text=""))
    return text if len(text.split()) >= 2 else ""


# An action that describes nothing of its own: "the 25 best ones", "the top ten", "them".
_NOTHING_DESCRIBED = re.compile(r"(?:the\s+)?(?:\d+\s+|\w+\s+)?(?:best|top|closest|most likely|strongest)?\s*"
                                r"(?:ones?|jets?|matches|candidates|hits|them)?", re.I)


def _format(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def hint_line(ent: Entities) -> str:
    """The ``Found:`` line of the router's prompt: what the request names, typed ('' if nothing)."""
    parts: list[str] = []
    for vocab, values in ent.terms.items():
        if vocab == "size":
            continue
        shown = ",".join(str(v).lower() if isinstance(v, bool) else str(v) for v in values)
        parts.append(f"{vocab}={shown}")
    if ent.sizes:
        parts.append("size=" + ",".join(ent.sizes))
    for n in ent.numbers:
        parts.append(f"number={_format(n.value)}" + (f" {n.role}" if n.role else ""))
    for label, names in (
        ("dataset", ent.datasets),
        ("model", ent.models),
        ("index", ent.indexes),
        ("job", ent.jobs),
        ("name", ent.new_names),
        ("path", ent.paths),
        ("word", ent.words),
        ("sample", ent.by_class),
    ):
        parts += [f"{label}={n}" for n in names]
    if ent.anaphora:
        parts.append("refers=back")
    return "; ".join(parts)
