"""The numbers a request states, however they are written: 5000, 5,000, 5k, 2.5M, 1e4, "five
thousand", 1.2 TeV (in GeV), and what each one counts, read from the words around it ("seed 42",
"for 2000 steps", "pT above 600 GeV", "jet 17"). The router may only fill a numeric argument with one
of these, so a number is never invented; a per-class count ("5k top and 5k QCD") adds its total."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

_TEENS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_UNITS = {
    **{w: i for i, w in enumerate(_TEENS)},
    **{w: 10 * i for i, w in enumerate(_TENS, start=2)},
    "a": 1,
}
_SCALES = {"dozen": 12, "hundred": 100, "thousand": 1000, "million": 1_000_000}
# Every word that spells a number ("seventeen", "thousand", "dozen")
NUMBER_WORDS: tuple[str, ...] = (*_TEENS, *_TENS, *_SCALES)
# A number word alone counts only where it is a common count ("ten jets", "show me five"), not "zero-shot".
_ALONE = {*_TEENS[1:], *_TENS}
# "the next one", "that one", "which one": a pronoun, no number
_PRONOUN_ONE = re.compile(r"\b(?:the|this|that|which|each|every|same|another|next|last|previous|following|other"
                          r"|any|no|first|second|third|new|old|big|small|other)\s+$", re.IGNORECASE)
_SUFFIX = {"k": 1000, "m": 1_000_000}
# A number not glued to a word before it (tau21, τ32, run2, wz-6k are names, not numbers); "600-700" is
# a range of two numbers.
_NUMBER = re.compile(
    r"(?<![\w.])(?<![A-Za-z_]-)(\d+(?:,\d{3})+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?:\s?([kKmM](?![a-zA-Z=])|TeV|tev|GeV|gev))?"
    r"(?:st|nd|rd|th)?(?![\dA-Za-z_]|-(?!jets?\b)[A-Za-z])"
)
_NOT_QUANTITIES = re.compile(r"job-\d{8}-\d{6}-[0-9a-f]{6}|\bcuda:\d+")
_WORD = r"(?:" + "|".join(sorted([*_UNITS, *_SCALES], key=len, reverse=True)) + r")"
# "two thousand five hundred", "twenty-five hundred", "one thousand and fifty"; "three-prong" is no number.
_AND = r"(?:(?<=hundred)|(?<=thousand)|(?<=million))\s+and\s+"  # "one thousand and fifty", not "ten and twenty"
# A number said in words, as a pattern others may embed ("two thousand five hundred").
NUMBER_PHRASE = rf"{_WORD}(?:(?:{_AND}|\s+|-){_WORD})*"
_WORDS = re.compile(rf"\b({NUMBER_PHRASE})\b(?!-(?!jets?\b))", re.IGNORECASE)


def word_value(words: list[str]) -> float | None:
    """The value of number words ("two thousand five hundred" -> 2500); None where they are not one."""
    total, current, seen = 0, 0, False
    for w in words:
        if w in _SCALES:
            if _SCALES[w] == 100:
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * _SCALES[w]
                current = 0
        else:
            current += _UNITS[w]
        seen = seen or w != "a"
    return float(total + current) if seen else None


@dataclass(frozen=True)
class Number:
    value: float
    start: int
    end: int
    role: str = ""  # what the words around it say it counts (jets, seed, steps, pt_min, index, ...), or ""


_HALF_OR_COUPLE = re.compile(r"\b(half an?|a half|(?:a\s+)?couple(?:\s+of)?)\s+(dozen|hundred|thousand|million)\b",
                             re.IGNORECASE)
# "10% of that sample's 20k jets": a share of a count that follows
_PERCENT_OF = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|percent\b|per\s?cent\b)\s*of\b", re.IGNORECASE)


def mentions(text: str) -> list[Number]:
    """Every number ``text`` states, in order, with where it stands (no role yet)."""
    # a job id's or a device's digits are not quantities
    text = _NOT_QUANTITIES.sub(lambda m: " " * len(m.group(0)), text)
    found: list[Number] = []
    previous: tuple[re.Match[str], str] | None = None
    for m in _NUMBER.finditer(text):
        value = float(m.group(1).replace(",", ""))
        unit = (m.group(2) or "").lower()
        if unit in _SUFFIX:
            value *= _SUFFIX[unit]
        elif unit == "tev":
            value *= 1000
            # "from 1.2 to 1.5 TeV", "between 1 and 2 TeV": the unit after a range is its first edge's too
            if previous is not None and not previous[1] and re.fullmatch(
                r"\s*(?:to|and|-|–)\s*", text[previous[0].end() : m.start()]
            ):
                found[-1] = Number(found[-1].value * 1000, found[-1].start, found[-1].end)
        found.append(Number(value, m.start(), m.end()))
        previous = (m, unit)
    # "2.5 thousand steps", "1.5 million jets": a figure with a scale word
    for m in re.finditer(r"(?<![\w.])(\d+(?:\.\d+)?)\s+(hundred|thousand|million)\b", text, re.I):
        found = [n for n in found if not m.start() <= n.start < m.end()]
        found.append(Number(float(m.group(1)) * _SCALES[m.group(2).lower()], m.start(), m.end()))
        text = text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]  # the scale word is no number
    # "half a thousand", "a couple of thousand": a fraction or a pair of a scale word
    for m in _HALF_OR_COUPLE.finditer(text):
        factor = 0.5 if m.group(1).lower().startswith(("half", "a half")) else 2
        found.append(Number(factor * _SCALES[m.group(2).lower()], m.start(), m.end()))
        text = text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]
    for m in _WORDS.finditer(text):
        words = [w for w in re.split(r"[\s-]+", m.group(1).lower()) if w != "and"]
        if len(words) == 1 and words[0] not in _ALONE:
            continue
        if words == ["one"] and _PRONOUN_ONE.search(text[: m.start()]):
            continue
        if words[0] == "a" and len(words) > 1 and words[1] not in _SCALES:
            words = words[1:]  # "a five" is not 6
        value = word_value(words)
        if value is not None and (len(words) > 1 or words[0] in _ALONE):
            found.append(Number(value, m.start(), m.end()))
    return sorted(found, key=lambda n: n.start)


def numbers_in(text: str) -> list[float]:
    """The numbers in ``text``, in order of appearance (duplicates kept once)."""
    out: list[float] = []
    for n in mentions(text):
        if n.value not in out:
            out.append(n.value)
    return out


# --- what a number counts ----------------------------------------------------------------------------

_BEFORE_ROLES = (
    ("seed", re.compile(r"\bseed\s*(?:of|=|:|is)?\s*$")),
    # "seeds 101, 102 and 103", "with seeds: 1/2/3": each a seed (one run per seed, agent/router.py)
    ("seed", re.compile(r"\bseeds\s*(?:of|=|:|are)?\s*(?:\d+\s*(?:,|and|&|/|or)?\s*){0,6}$")),
    ("lr", re.compile(r"\b(?:lr|learning[ -]rate)\s*(?:of|=|:|is)?\s*$")),
    ("device", re.compile(r"\b(?:gpu|cuda|card)\s*(?:#|no\.?|number)?\s*:?\s*$")),  # "on gpu 1": no count
    ("batch_size", re.compile(r"\b(?:batch(?:es)?(?:[ _-]size)?|bs)\s*(?:of|=|:|is)?\s*$")),
    ("k", re.compile(r"\b(?:k|top|best|first)\s*(?:=|:)?\s*$")),
    ("workers", re.compile(r"\bworkers?\s*(?:=|:)?\s*$")),
    ("steps", re.compile(r"\bsteps?\s*(?:=|:)\s*$")),
    ("n_labels", re.compile(r"\b(?:n_labels|labels?)\s*(?:=|:)\s*$")),
    ("index", re.compile(r"(?:\bjets?|\bentry|\bentries|\bnumber|\bno\.|#|\bindex|\bevent|\[)\s*"
                         r"(?:number|no\.|#)?\s*$")),
)
_AFTER_ROLES = (
    ("steps", re.compile(r"^\s*(?:optimi[sz]er\s+)?(?:steps?|iterations?|iters?|epochs?|updates?)\b")),
    ("workers", re.compile(r"^\s*(?:workers?|cores?|cpus?|processes|threads|parallel)\b")),
    ("k", re.compile(r"^\s*(?:\w+\s+){0,2}?(?:nearest\s+)?(?:neighbou?rs?|nn|most similar|closest|similar|matches|"
                     r"hits)\b")),
    # "show me the 25 best ones", "the 10 best candidates": a count of results
    ("k", re.compile(r"^\s*(?:best|strongest|most \w+)\s+(?:ones?|jets?|candidates|matches|examples)\b")),
    ("n_labels", re.compile(r"^\s*(?:labell?ed|labels?|training (?:jets|examples)|examples|labell?ed examples)\b")),
    # "two b-tagged subjets", "30 constituents": parts of a jet, no count of jets or results ("quark"
    # and "gluon" are not here: "500 light quark jets" counts jets)
    ("parts", re.compile(r"^\s*(?:[\w\-]+\s+){0,2}?(?:subjets?|prongs?|constituents?|particles?|leptons?"
                         r"|tracks?)\b")),
    ("batch_size", re.compile(r"^\s*(?:jets )?(?:per batch|batch size|a batch|in a batch|in each batch"
                              r"|per (?:forward )?pass|in each (?:forward )?pass|at a time|at once|in one go)\b")),
    ("jets", re.compile(r"^\s*-?(?:[\w\-]+\s+){0,2}?(?:jets?|events?|of them|in total|total)\b")),
    # "a dozen is enough", "50 will do": how many are wanted
    ("jets", re.compile(r"^\s*(?:is|are|will|would|should)\s+(?:be\s+)?(?:enough|plenty|fine|do)\b")),
    ("lr", re.compile(r"^\s*(?:lr|learning[ -]rate)\b")),
    # "three seeds: ...", "5 different seeds": how many runs, no setting of one
    ("n_seeds", re.compile(r"^\s*(?:different\s+|random\s+|independent\s+)?seeds\b")),
)
# "the third one", "the second jet", "the 5th event": one jet by its place, counted from one (an
# index counts from zero). "first 10" is a count of results (``k``), not a place.
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
_ORDINAL_WORD = re.compile(rf"\b({'|'.join(_ORDINALS)})\s+(?=(?:jet|one|entry|event)s?\b)", re.IGNORECASE)
# "show me 5", "give me ten of them": the count of results a search returns
_SHOW_BEFORE = re.compile(r"\b(?:show|give|return|list|display)(?:\s+(?:me|us))?\s+(?:the\s+)?(?:top\s+)?$")
_SHOW_AFTER = re.compile(r"^\s*(?:of them|results?|hits?|matches|candidates)?\s*(?:this time|instead|now)?\s*"
                         r"(?:[.?!,;]|please|$)")
_GEV_AFTER = re.compile(r"^\s*(?:gev|tev)\b", re.IGNORECASE)
_MIN_WORDS = re.compile(
    r"(?:above|over|>=?|at least|more than|greater than|from|heavier than|starting at|min(?:imum)?)\s*$"
)
_MAX_WORDS = re.compile(r"(?:below|under|<=?|at most|less than|up to|lighter than|max(?:imum)?|smaller than)\s*$")
_RANGE_JOIN = re.compile(r"^\s*(?:gev|tev)?\s*(?:-|\u2013|\u2014|to|and|\.\.)\s*$", re.IGNORECASE)
_MASS_AFTER = re.compile(r"\s*(?:gev|tev)?\s*(?:in|of)\s+(?:the\s+)?(?:jet\s+|soft[- ]?drop\s+|groomed\s+)?mass\b")
_MASS_WORDS = re.compile(r"\b(?:mass(?:es)?|msd|m_sd|m_j|heavier|lighter|soft[- ]?drop)\b")
_PT_WORDS = re.compile(r"\b(?:pt|p_t|momentum|p_\{t\})\b")


def _quantity(before: str) -> str:
    """pt or mass, whichever was named last before the number (pT when neither)."""
    mass = [m.end() for m in _MASS_WORDS.finditer(before)]
    pt = [m.end() for m in _PT_WORDS.finditer(before)]
    return "mass" if mass and (not pt or mass[-1] > pt[-1]) else "pt"


# A count of one side of a classification task: "6k signal and 6k background", "3000 bkg jets".
_SIGNAL_OR_BACKGROUND = re.compile(r"\s*(?:jets?\s+)?(?:of\s+)?(?:signal|background|sig|bkg)\b"
                                   r"(?!\s*(?:labels?|efficiency|eff)\b)")
# A count per class: "2500 of each", "1000 jets per class", "3k/class", "2k apiece", "1k jets of every
# one of the ten categories".
_EACH = re.compile(r"\s*(?:jets?\s+|events?\s+)?(?:of\s+each|each|apiece"
                   r"|(?:per[\s-]+|/\s*|a\s+)(?:class|process|category|type|sample)|for\s+each|in\s+each|from\s+each|of\s+every|for\s+every|of\s+all\s+(?:the\s+)?\w+\s+(?:class|categor))\b")


def typed_numbers(text: str, names_class: Callable[[str], bool] | None = None, n_classes: int = 0) -> list[Number]:
    """The numbers of ``text`` with their roles. ``names_class(words)`` tells whether the few words
    after a number name a jet class: such a number counts jets ("5k top"), and two or more such
    counts add their total ("5k top and 5k QCD": 10000). A count "of each" of the ``n_classes``
    classes the request names adds its total too ("2500 of each", "1000 jets per class")."""
    low = text.lower()
    found = mentions(text)
    out: list[Number] = []
    per_class: list[Number] = []
    in_gev = [any(u in low[n.start : n.end] for u in ("gev", "tev")) or bool(_GEV_AFTER.match(low[n.end :]))
              for n in found]
    for i, n in enumerate(found):
        before, after = low[max(0, n.start - 40) : n.start], low[n.end : n.end + 40]
        role = ""
        prev = found[i - 1] if i else None
        nxt = found[i + 1] if i + 1 < len(found) else None
        joined_prev = prev is not None and bool(_RANGE_JOIN.match(low[prev.end : n.start]))
        joined_next = nxt is not None and bool(_RANGE_JOIN.match(low[n.end : nxt.start]))
        gev = in_gev[i] or (joined_next and in_gev[i + 1]) or (joined_prev and in_gev[i - 1])
        if re.search(r"\d(?:st|nd|rd|th)$", low[n.start : n.end]):
            out.append(Number(n.value - 1, n.start, n.end, "index"))  # "the 3rd jet": index 2
            continue
        if _SHOW_BEFORE.search(before) and _SHOW_AFTER.match(after):
            role = "k"
        for name, pattern in () if role else _BEFORE_ROLES:
            if pattern.search(before):
                role = name
                break
        if not role:
            for name, pattern in _AFTER_ROLES:
                if pattern.match(after):
                    role = name
                    break
        start = prev.start if joined_prev and prev is not None else n.start
        named = low[max(0, start - 40) : start]
        physical = gev or _MASS_WORDS.search(named[-30:]) or _PT_WORDS.search(named[-30:])
        if role in ("", "index") and physical and (joined_next or joined_prev or gev or _MIN_WORDS.search(named)
                                                   or _MAX_WORDS.search(named)):
            q = _quantity(named)
            end = nxt.end if joined_next and nxt is not None else n.end
            if _MASS_AFTER.match(low[end : end + 30]):
                q = "mass"  # "between 110 and 140 GeV in mass"
            if joined_prev:
                role = f"{q}_max"
            elif joined_next or _MIN_WORDS.search(before):
                role = f"{q}_min"
            elif _MAX_WORDS.search(before):
                role = f"{q}_max"
            else:
                role = q
        # the words after it, names left out ("seed 9000), name it qcd-ref100k": no QCD count)
        plain_after = " ".join(w for w in after.split()[:5] if not _NAME_LIKE.search(w))
        if role in ("", "jets") and ((names_class is not None and names_class(plain_after))
                                     or _SIGNAL_OR_BACKGROUND.match(after)):
            role = "jets"
            per_class.append(n)
        out.append(Number(n.value, n.start, n.end, role))
        if role in ("", "jets") and n_classes >= 2 and _EACH.match(after):
            out[-1] = Number(n.value, n.start, n.end, "jets")
            out.append(Number(n.value * n_classes, n.end, n.end, "jets_total"))
        elif role == "n_labels" and n_classes >= 2 and _LABELS_EACH.match(after):
            out.append(Number(n.value * n_classes, n.end, n.end, "n_labels_total"))  # "250 labels per class"
    for m in _ORDINAL_WORD.finditer(text):
        out = [n for n in out if n.start != m.end()]  # the "one" of "the third one" is no number
        out.append(Number(float(_ORDINALS.index(m.group(1).lower())), m.start(), m.end(1), "index"))
    out = _shares(low, out)
    out.sort(key=lambda n: n.start)
    out = _corrected(low, out)
    # "a 3000-jet H->bb sample called hbb3k and a 3000-jet QCD one called qcd3k" is two samples, no total
    between = low[per_class[0].end : per_class[-1].start] if per_class else ""
    if len(per_class) >= 2 and not re.search(r"\b(?:called|named|name it|call it)\b", between):
        out.append(Number(sum(n.value for n in per_class), per_class[-1].end, per_class[-1].end, "jets_total"))
    # "jets 3 and 4", "entries 7, 8 or 9": numbers listed after one whose words place it share its role
    for i in range(1, len(out)):
        prev, n = out[i - 1], out[i]
        if not n.role and prev.role in _LISTED_ROLES and _LIST_JOIN.fullmatch(low[prev.end : n.start]):
            out[i] = replace(n, role=prev.role)
    return out


_LISTED_ROLES = ("index",)
_LIST_JOIN = re.compile(r"\s*(?:,|and|or|&|,\s*and|,\s*or)\s*")


# A name, not a decay: "qcd-ref100k", "top_qcd_600" (but "H->4q", "H->WW*->4q" are decays)
_NAME_LIKE = re.compile(r"^(?!.*>)(?:.*_|.*[a-z]-[a-z]*\d|.*\d[a-z]*-[a-z])", re.I)


def _shares(low: str, numbers: list[Number]) -> list[Number]:
    """"10% of that sample's 20k jets as labels": the share (2000) is the count, with the role the words
    after the whole give it; the percentage and the whole are no counts of their own."""
    for m in _PERCENT_OF.finditer(low):
        whole = next((n for n in sorted(numbers, key=lambda n: n.start)
                      if m.end() <= n.start <= m.end() + 40 and n.role in ("", "jets")), None)
        numbers = [Number(n.value, n.start, n.end, "percent") if n.start == m.start() else n for n in numbers]
        if whole is None:
            continue
        role = "n_labels" if _AS_LABELS.match(low[whole.end :]) else whole.role
        numbers = [Number(n.value, n.start, n.end, "whole") if n is whole else n for n in numbers]
        numbers.append(Number(float(round(float(m.group(1)) / 100 * whole.value)), whole.end, whole.end, role))
    return numbers


_AS_LABELS = re.compile(r"\s*(?:jets?\s+)?(?:as|for)\s+(?:(?:the|training|our)\s+)?labels?\b|\s*labell?ed\b")
# "250 labelled jets per class": labels of each class, said the way a count per class is (_EACH)
_LABELS_EACH = re.compile(r"\s*(?:labell?ed|labels?|examples)?" + _EACH.pattern)


# A value taken back and stated again: "seed 7 -- sorry, make that seed 8", "lr 1e-3, I mean 3e-4".
_CORRECTION = re.compile(r"\b(?:sorry|make (?:that|it)|i mean|i meant|correction|scratch that|or rather|wait"
                         r"|oops|typo)\b", re.I)


def _corrected(low: str, numbers: list[Number]) -> list[Number]:
    """``numbers`` without each one that a later number corrects: one of the same role, or one without
    a role, which then takes the role ("seed 7, sorry, 8"), with a correction word between them."""
    out = list(numbers)
    dropped: set[int] = set()
    for i, n in enumerate(out):
        if not n.role:
            continue
        for j in range(i + 1, len(out)):
            later = out[j]
            if later.role not in (n.role, ""):
                continue
            if _CORRECTION.search(low[n.end : later.start]):
                dropped.add(i)
                out[j] = Number(later.value, later.start, later.end, n.role)
            break
    return [n for i, n in enumerate(out) if i not in dropped]
