"""Dictated and hurried requests, in the written form the router reads.

Speech-to-text writes "um generate like four thousand no wait six thousand jets half top half q c d
with jet p t up to nine fifty gev"; a power user types "gen tbl n=5k seed=12 -> describe". Both say
what a written request says. ``written_form`` rewrites them before anything else reads the request:

- fillers go ("um", "uh", "okay so", "like" before a count);
- letters spelled one by one are joined ("q c d" -> qcd, "t t bar" -> ttbar, "p t" -> pt);
- spoken numbers are written: "nine fifty gev" -> 950 gev, "two point five" -> 2.5, "ten k" -> 10k;
- a workspace name said aloud is written as it is named ("the w prime three tev sample" ->
  wprime-3tev, "tagger t q l p" -> tagger-tq-lp);
- a self-correction keeps only its correction ("five hundred steps no sorry a thousand steps",
  "plot its mass actually no the number of constituents");
- ``key=value`` settings and the field's shorthand are spelled out (n=5k, sig=hbb, ft, lp, eval,
  idx, hist, AD, bkg, w/, "->" between steps; a spaced "+" is read as "and" where it starts an
  action, in clauses.py).

Each rule needs a form that written requests do not use, so a written request passes unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from jetfm.agent.clauses import ACTION_WORDS
from jetfm.agent.lexicon import find_terms
from jetfm.agent.numbers import NUMBER_PHRASE, mentions, word_value

# --- fillers ------------------------------------------------------------------------------------

_HESITATION = re.compile(r"(?<![\w-])(?:u+m+|u+h+m*|e+r+m+|e+r+|h+m+)(?![\w-])[,.]*\s*", re.I)
_OPENER = re.compile(r"^\W*(?:(?:okay|ok|alright|right|so|well)[,.]?\s+)+(?:so\s+)?(?=\w)", re.I)
# "like" as a filler before a count ("for like twenty thousand steps"); not "jets like these", "look
# like two-prong W jets", "something like 5"
_LIKE = re.compile(r"(?<!'d)(?<!\bwould)(?<!\bI)(?<!\bwe)(?<!\byou)(?<!\bthey)(?<!\blook)(?<!\blooks)(?<!\blooking)"
                   r"(?<!\bthing)(?<!\bsomething)(?<!\bjets)(?<!\bjet)"
                   rf"(?<!\bones)(?<!\bone)\s+like,?\s+(?=(?:\d|(?:{NUMBER_PHRASE})\b))", re.I)
_YOU_KNOW = re.compile(r",?\s*\byou know\b,?", re.I)


def drop_fillers(text: str) -> str:
    text = _HESITATION.sub("", text)
    text = _YOU_KNOW.sub("", text)
    text = _LIKE.sub(" ", text)
    return _OPENER.sub("", text).strip()


# --- shorthand -------------------------------------------------------------------------------------

# key=value settings, as a written request says them ("n=5k" -> "5k jets"); keys the numbers module
# reads itself (seed=, lr=, k=, bs=, workers=, steps=, n_labels=, name=) stay as they are
_KEY_VALUE = re.compile(r"(?<![\w-])(?P<key>[A-Za-z_]+)\s*=\s*(?P<value>[^\s,;()]+)")
_SETTINGS = {
    "n": "{} jets", "njets": "{} jets", "n_jets": "{} jets", "nj": "{} jets", "events": "{} jets",
    "sig": "{} as the signal", "signal": "{} as the signal",
    "bkg": "{} as the background", "background": "{} as the background",
    "ref": "{} as the reference", "reference": "{} as the reference",
    "entry": "entry {}", "jet": "jet {}", "evt": "entry {}", "event": "entry {}",
    "idx": "index {}", "index": "index {}", "ds": "dataset {}", "data": "dataset {}", "dataset": "dataset {}",
    "model": "model {}", "backbone": "model {}",
    "obj": "the {} objective", "objective": "the {} objective", "mode": "{} mode", "method": "the {} method",
    "size": "size {}", "kind": "a {} index", "dev": "on {}", "device": "on {}",
    "labels": "{} labels", "nlabels": "{} labels", "n_lab": "{} labels",
    "pt": "pt {}", "mass": "mass {}", "m": "mass {}", "msd": "soft-drop mass {}",
}
# the field's shorthand, written out; case-sensitive where the lowercase is a word ("AD", "NN")
_WORDS_OUT: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, f), w) for p, w, f in (
    (r"(?<![\w/])w/o(?![\w/])", "without", re.I),
    (r"(?<![\w/])w/(?=\s|\w)\s*", "with ", re.I),
    (r"(?<![\w-])gen(?=\s+jobs?\b)", "generation", re.I),
    (r"(?<![\w-])gen(?:'d|ed)?(?![\w-])", "generate", re.I),
    (r"(?<![\w-])ft(?![\w-])", "fine-tune", re.I),
    (r"(?<![\w-])ft'?d(?![\w-])", "fine-tuned", re.I),
    (r"(?<![\w-])lp(?![\w-])", "linear probe", re.I),
    (r"(?<![\w-])eval(?![\w-])", "evaluate", re.I),
    (r"(?<![\w-])evt(?![\w-])", "event", re.I),
    (r"(?<![\w-])idx(?![\w-])", "index", re.I),
    (r"(?<![\w-])hists?(?![\w-])", "histogram", re.I),
    (r"(?<![\w-])bkg(?![\w-])", "background", re.I),
    (r"(?<![\w-])sig(?![\w-])", "signal", re.I),
    (r"(?<![\w-])(?:pls|plz)(?![\w-])", "please", re.I),
    (r"(?<![\w-])AD(?![\w-])", "anomaly detection", 0),
    (r"(?<=\d)\s*NN\b", " nearest neighbours", 0),
    (r"(?<![\w-])ETA(?![\w-])", "progress", 0),
    (r"\s*≠\s*", " is not ", 0),
    (r"\s*≥\s*", " at least ", 0),
    (r"\s*≤\s*", " at most ", 0),
    (r"(?<![\w~])~\s*(?=\d)", "around ", 0),
))
_VERBS = sorted({w.strip() for words in ACTION_WORDS.values() for w in words}, key=len, reverse=True)
# "a -> b" between steps (spaced, before an action word) is "then"; "t->bqq'" and "H -> bb" are decays
_STEP_ARROW = re.compile(r"\s+(?:->|→|=>)\s+(?=(?:then\s+)?(?:" + "|".join(map(re.escape, _VERBS)) + r"))", re.I)


def spell_out(text: str) -> str:
    def setting(m: re.Match[str]) -> str:
        form = _SETTINGS.get(m.group("key").lower())
        return form.format(m.group("value")) if form else m.group(0)

    text = _KEY_VALUE.sub(setting, text)
    for pattern, words in _WORDS_OUT:
        text = pattern.sub(words, text)
    return _STEP_ARROW.sub(", then ", text)


# --- letters and numbers said one by one --------------------------------------------------------------

# two or more single letters (not the words "a" and "I"), or a letter, a digit word or digit, a
# letter ("h four q"); "bar" after them belongs to them ("b b bar")
_LETTER = r"(?:[b-hj-zB-HJ-Z])"
_SPELLED = re.compile(rf"(?<![\w'-]){_LETTER}(?:\s+{_LETTER})+(?:\s+bar)?(?![\w'-])")
_LETTER_DIGIT_LETTER = re.compile(
    rf"(?<![\w'-])({_LETTER})\s+(one|two|three|four|five|six|seven|eight|nine|\d)\s+({_LETTER})(?![\w'-])", re.I)
_DIGITS = {w: str(i) for i, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven",
                                              "eight", "nine"), start=0)}


def join_letters(text: str) -> str:
    text = _LETTER_DIGIT_LETTER.sub(lambda m: m.group(1) + _DIGITS.get(m.group(2).lower(), m.group(2)) + m.group(3),
                                    text)
    return _SPELLED.sub(lambda m: re.sub(r"\s+", "", m.group(0)), text)


_ONES = r"(?:one|two|three|four|five|six|seven|eight|nine)"
_TENS_OR_TEENS = (r"(?:ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty"
                  r"|forty|fifty|sixty|seventy|eighty|ninety)")
# "nine fifty gev", "one seventy five GeV": hundreds said as two numbers, before a unit
_HUNDREDS = re.compile(rf"\b({_ONES})\s+({_TENS_OR_TEENS}(?:[\s-]+{_ONES})?)(?=\s*(?:gev|tev)\b)", re.I)
_POINT = re.compile(rf"\b({NUMBER_PHRASE}|\d+)\s+point\s+((?:(?:{_ONES}|zero|oh)\s*)+)\b", re.I)
_SPOKEN_K = re.compile(rf"\b({NUMBER_PHRASE})\s+k\b(?!\s*=)", re.I)


def _words_value(words: str) -> float | None:
    return word_value([w for w in re.split(r"[\s-]+", words.lower()) if w and w != "and"])


def _digits(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


# "tau thirty two", "tau three two", "tau twenty-one": the N-subjettiness ratio tau32, tau21
_TAU = re.compile(rf"\btau\s+({NUMBER_PHRASE})\b", re.I)
_RATIOS = ("21", "32", "43")


def _tau(m: re.Match[str]) -> str:
    words = [w for w in re.split(r"[\s-]+", m.group(1).lower()) if w]
    digits = "".join(_DIGITS.get(w, "?") for w in words)
    value = _words_value(m.group(1))
    for said in (digits, _digits(value) if value is not None else ""):
        if said in _RATIOS:
            return f"tau{said}"
    return m.group(0)


def write_numbers(text: str) -> str:
    def hundreds(m: re.Match[str]) -> str:
        high, low = _words_value(m.group(1)), _words_value(m.group(2))
        return m.group(0) if high is None or low is None else _digits(100 * high + low)

    def point(m: re.Match[str]) -> str:
        whole = m.group(1) if m.group(1).isdigit() else _words_value(m.group(1))
        decimals = "".join("0" if w in ("zero", "oh") else _DIGITS[w] for w in m.group(2).lower().split())
        return m.group(0) if whole is None else f"{_digits(float(whole))}.{decimals} "

    def thousands(m: re.Match[str]) -> str:
        value = _words_value(m.group(1))
        return m.group(0) if value is None else f"{_digits(value)}k"

    text = _TAU.sub(_tau, text)
    text = _HUNDREDS.sub(hundreds, text)
    text = _POINT.sub(point, text)
    return _SPOKEN_K.sub(thousands, text)


# --- workspace names said aloud ------------------------------------------------------------------------

_TOKEN = re.compile(r"[A-Za-z0-9]+")
# a name said aloud is never followed by what a count counts ("run two jobs" is no run2)
_COUNTED = re.compile(r"^\s*(?:jobs?|seeds?|times|steps|jets|labels|workers|runs|models|samples)\b", re.I)
MAX_NAME_WORDS = 8


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    forms: tuple[str, ...]  # how the unit may be written inside a name: as said, and as digits


def _units(text: str) -> list[_Unit]:
    numbers = [(m.start(1), m.end(1), _words_value(m.group(1))) for m in re.finditer(rf"\b({NUMBER_PHRASE})\b",
                                                                                          text, re.I)]
    out: list[_Unit] = []
    for m in _TOKEN.finditer(text):
        run = next(((s, e, v) for s, e, v in numbers if s <= m.start() < e), None)
        if run is not None and out and out[-1].start == run[0]:
            continue  # a later word of a number said in words: the number is one unit
        if run is not None and run[2] is not None:
            said = re.sub(r"[\s-]+", "", text[run[0]:run[1]].lower())
            out.append(_Unit(run[0], run[1], (said, _digits(run[2]))))
        else:
            out.append(_Unit(m.start(), m.end(), (m.group(0).lower(),)))
    return out


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def write_names(text: str, names: Iterable[str]) -> str:
    """Each workspace name said in several words ("w prime three tev") written as it is named."""
    keys = {_key(n): n for n in names if len(_key(n)) >= 4}
    if not keys:
        return text
    prefixes = {k[:i] for k in keys for i in range(1, len(k) + 1)}
    units = _units(text)
    found: list[tuple[int, int, str]] = []
    i = 0
    while i < len(units):
        best: tuple[int, str] | None = None
        said = {""}
        for j in range(i, min(i + MAX_NAME_WORDS, len(units))):
            said = {s + f for s in said for f in units[j].forms if s + f in prefixes}
            if not said:
                break
            hit = next((keys[s] for s in said if s in keys), None)
            # (two words before a counted noun may be a count: "run two jobs"; three or more are a name)
            if hit is not None and j > i and (j > i + 1 or not _COUNTED.match(text[units[j].end:])):
                best = (j, hit)
        if best is None:
            i += 1
            continue
        found.append((units[i].start, units[best[0]].end, best[1]))
        i = best[0] + 1
    for start, end, name in reversed(found):
        text = text[:start] + name + text[end:]
    return text


# --- self-corrections -------------------------------------------------------------------------------

_CORRECTION = re.compile(
    r"[,;.]?\s*(?:-+\s*)?\b(?:no,?\s+wait|wait,?\s+no|no,?\s+sorry|sorry,?\s+no|actually,?\s+no|no,?\s+actually"
    r"|i mean|or rather|no,?\s+make (?:it|that)|make that|scratch that|correction:?)\b[,:]?\s*",
    re.I)
_DETERMINER = re.compile(r"^(?:the|a|an|its|their|that|this)\s+", re.I)
MAX_ITEM_WORDS = 5


def _kinds(phrase: str, names: set[str]) -> set[str]:
    """What an item of a request is: a number, a catalog name, or a word of one of the lexicon's tables."""
    if phrase.strip().lower() in names:
        return {"name"}
    return set(find_terms(phrase))


def _head(after: str, names: set[str]) -> tuple[int, set[str]] | None:
    """Where the correction's own item ends in ``after``, and what kind it is; None if it names none."""
    number = next(iter(mentions(after)), None)
    if number is not None and not after[: number.start].strip(" ,"):
        return number.end, {"number"}
    words = list(re.finditer(r"\S+", after))
    for n in range(1, min(MAX_ITEM_WORDS, len(words)) + 1):
        kinds = _kinds(after[: words[n - 1].end()], names)
        if kinds:
            return words[n - 1].end(), kinds
    return None


def _last_item(before: str, kinds: set[str], names: set[str]) -> tuple[int, int] | None:
    """The span of the last item of ``before`` of one of ``kinds``."""
    if kinds == {"number"}:
        found = mentions(before)
        return (found[-1].start, found[-1].end) if found else None
    words = list(re.finditer(r"\S+", before))
    for a in range(len(words) - 1, -1, -1):
        for b in range(a, min(a + MAX_ITEM_WORDS, len(words))):
            span = (words[a].start(), words[b].end())
            if kinds & _kinds(before[span[0]:span[1]], names):
                return span
    return None


def apply_corrections(text: str, names: Iterable[str] = ()) -> str:
    """Each "X, no wait, Y" as "Y" in the place of X, where Y is an item of the kind X is."""
    known = {n.lower() for n in names}
    while (m := _CORRECTION.search(text)) is not None:
        before, after = text[: m.start()], text[m.end():]
        after_head = _DETERMINER.sub("", after)
        head = _head(after_head, known)
        item = _last_item(before, head[1], known) if head else None
        if head is None or item is None:
            return text  # "I mean" that corrects nothing: the words stay
        new, rest = after_head[: head[0]], after_head[head[0]:]
        tail = before[item[1]:]
        first = re.match(r"\s*(\w+)", tail)
        if first and re.match(rf"\s*{re.escape(first.group(1))}\b", rest, re.I):
            rest = rest[re.match(rf"\s*{re.escape(first.group(1))}\b", rest, re.I).end():]  # "steps ... steps"
        text = before[: item[0]] + new + tail + rest
    return text


# --- all of it ---------------------------------------------------------------------------------------


def written_form(request: str, names: Iterable[str] = ()) -> str:
    """``request`` as a written request says it (the module docstring); the workspace's ``names``
    are found where they are said aloud."""
    names = list(names)
    text = drop_fillers(request)
    text = spell_out(text)
    text = write_numbers(text)  # before the letters: "ten k h to b b" is 10k, then h to bb
    text = join_letters(text)
    text = write_names(text, names)
    return apply_corrections(text, names)
