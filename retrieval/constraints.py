"""What a text query states about the jets it wants, read by rules: cuts on observables and classes.

``parse_query("three-prong jets with a mass between 150 and 200 GeV")`` finds the explicit
conditions of a query and turns them into a :class:`~retrieval.index.JetFilter` that a search
applies exactly; the embedding only ranks the jets that pass. What is read:

- observables: jet mass, soft-drop mass, pT, eta and |eta|, tau21, tau32, tau43 and the
  constituent count, by their usual names and symbols (``"p_T"``, ``"m_SD"``, ``"tau_32"``,
  ``"tau3/tau2"``, ``"constituents"``, ...), and the ratios soft-drop mass / mass ("groomed mass
  fraction", ``"m_SD/m"``) and mass / pT ("mass-to-pT ratio"), read before their parts;
- comparisons: below/under/less than/lighter than/fewer than/at most, above/over/more than/heavier
  than/at least, ``<``, ``>=``, ..., between X and Y, from X to Y, X-Y, X to Y, X or less, X and
  above; near/around/close to/about X (a window of :data:`TOLERANCE` around X, said in the cut's
  note), within T of X, X +/- T; a number right after an observable ("mass of 91 GeV") means
  "about";
- values: numbers in digits or words ("thirty", "one hundred and fifty"), GeV/TeV/MeV, and the
  nominal masses of the classes table ("heavier than the W mass", "close to a Z boson"; with no
  observable named, a particle's mass bounds the jet mass);
- prong words ("three-prong", "2-pronged"): the N-subjettiness categories of
  :func:`retrieval.captions.prong_count`, so a query means what the captions mean;
- classes: the words of the classes table (synonyms, names, labels, process names); a word that
  starts the labels of several classes means all of them ("Higgs": every H class); "not", "non-",
  "except", "other than" exclude; decay arrows with or without spaces ("H -> c c-bar"); "light"
  after an intensifier ("very light jets") is a mass word, not light flavour.

An observable not named next to a comparison is taken from the comparison ("lighter" means mass,
"fewer" the constituent count), from the previous condition ("mass above 50 and below 90"), or,
for GeV, as pT; each such guess is said in the cut's note. Numbers that are no condition ("a
125 GeV scalar") are listed in :attr:`ParsedQuery.ignored`: they only steer the ranking.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache

from jetfm.backbone.data.classes import JET_CLASSES, PROCESSES
from jetfm.retrieval.captions import FOUR_PRONG_TAU43, THREE_PRONG_TAU32, TWO_PRONG_TAU21
from jetfm.retrieval.index import JetFilter
from jetfm.slips import slip_of, vocabulary_words

# How each observable is written in results, and its unit.
OBSERVABLES: dict[str, tuple[str, str]] = {
    "mass": ("mass", "GeV"),
    "sdmass": ("soft-drop mass", "GeV"),
    "pt": ("pT", "GeV"),
    "eta": ("eta", ""),
    "abs_eta": ("|eta|", ""),
    "tau21": ("tau21", ""),
    "tau32": ("tau32", ""),
    "tau43": ("tau43", ""),
    "nparticles": ("constituents", ""),
    "sd_over_mass": ("soft-drop mass / mass", ""),
    "mass_over_pt": ("mass / pT", ""),
}
# Half-width of the window "near/around/about X" opens, per observable.
TOLERANCE: dict[str, float] = {
    "mass": 10.0, "sdmass": 10.0, "pt": 20.0, "eta": 0.2, "abs_eta": 0.2,
    "tau21": 0.05, "tau32": 0.05, "tau43": 0.05, "nparticles": 5.0, "sd_over_mass": 0.05, "mass_over_pt": 0.02,
}
_GEV = frozenset({"mass", "sdmass", "pt"})
_INTEGER = frozenset({"nparticles"})

# ------------------------------------------------------------------------------------ the words

_CMP_WORDS: tuple[tuple[str, str, str | None], ...] = (
    # (pattern, operator, the observable the words imply)
    (r"less than or equal to|smaller than or equal to|<=|≤|=<", "le", None),
    (r"greater than or equal to|larger than or equal to|>=|≥|=>", "ge", None),
    (r"no more than|not more than|no greater than|not greater than|no higher than|no larger than|not above"
     r"|not exceeding|no bigger than|at most|up to", "le", None),
    (r"no heavier than|not heavier than", "le", "mass"),
    (r"no fewer than|not fewer than", "ge", "nparticles"),
    (r"no less than|not less than|no lower than|not below|no smaller than|at least|a minimum of", "ge", None),
    (r"no lighter than|not lighter than", "ge", "mass"),
    (r"lighter than|less massive than", "lt", "mass"),
    (r"heavier than|more massive than", "gt", "mass"),
    (r"fewer than", "lt", "nparticles"),
    (r"softer than", "lt", "pt"),
    (r"harder than", "gt", "pt"),
    (r"less than|lower than|smaller than|below|under|beneath|<", "lt", None),
    (r"more than|greater than|higher than|larger than|bigger than|in excess of|exceeding|exceeds|exceed|above|over"
     r"|beyond|>",
     "gt", None),
    (r"between", "between", None),
    (r"from", "from", None),
    (r"within", "within", None),
    (r"close to|near to|nearly|near|around|about|approximately|approx\.?|roughly|circa|of order|in the vicinity of"
     r"|consistent with|compatible with|centred on|centered on|centred around|centered around|~|≈|∼", "near", None),
    (r"equal to|exactly|=", "eq", None),
)
_TRAILING_LOWER = {"less", "lower", "below", "under", "fewer", "smaller", "lighter", "softer", "lesser"}
_TRAILING_UPPER = {"more", "higher", "above", "over", "greater", "heavier", "larger", "up", "beyond", "harder"}
_FLIPPED = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
_TRAILING_IMPLIES = {"lighter": "mass", "heavier": "mass", "fewer": "nparticles", "softer": "pt", "harder": "pt"}
_OBS_WORDS: tuple[tuple[str, str], ...] = (
    # Ratios first: "soft-drop mass" and "mass" inside them are not conditions of their own.
    (r"(?:soft[- ]?drop|groomed|sd)(?: jet)?(?:[ _]?mass)?[- ]?(?:to|/|over)[- ]?(?:the )?"
     r"(?:(?:jet|ungroomed|full|plain)[- ])?mass(?: ratio| fraction)?|m_?\{?sd\}?\s*/\s*m(?:_?\{?j\}?)?(?![\w])"
     r"|ratio of (?:the )?(?:soft[- ]?drop|groomed) (?:jet )?mass to (?:the )?(?:(?:jet|ungroomed|full|plain) )?mass"
     r"|(?:soft[- ]?drop|groomed) mass fraction|mass fraction (?:kept|retained|left) (?:by|after)"
     r" (?:soft[- ]?drop|grooming)", "sd_over_mass"),
    (r"(?:jet )?mass[- ]?(?:to|/|over)[- ]?(?:the )?(?:jet )?(?:p_?\{?t\}?|transverse momentum)(?: ratio)?"
     r"|m_?\{?j?\}?\s*/\s*p_?\{?t\}?|ratio of (?:the )?(?:jet )?mass to (?:its |the )?(?:jet )?(?:p_?\{?t\}?"
     r"|transverse momentum)", "mass_over_pt"),
    (r"\|\s*(?:eta|η)\s*\||abs\s*\(\s*(?:eta|η)\s*\)|absolute (?:pseudo-?)?rapidity|absolute eta", "abs_eta"),
    (r"soft[- ]?drop(?:ped)?(?: jet)? mass(?:es)?|soft[- ]?drop|groomed(?: jet)? mass(?:es)?|sd[- ]?mass(?:es)?"
     r"|m_?\{?sd\}?", "sdmass"),
    (r"(?:τ|tau)[ _]?\{?21\}?|τ₂₁|(?:τ|tau)_?2\s*/\s*(?:τ|tau)_?1", "tau21"),
    (r"(?:τ|tau)[ _]?\{?32\}?|τ₃₂|(?:τ|tau)_?3\s*/\s*(?:τ|tau)_?2", "tau32"),
    (r"(?:τ|tau)[ _]?\{?43\}?|τ₄₃|(?:τ|tau)_?4\s*/\s*(?:τ|tau)_?3", "tau43"),
    (r"transverse momenta|transverse momentum|p_?\{?t\}?|momentum", "pt"),
    (r"(?:pseudo-?)?rapidity|eta|η", "eta"),
    (r"number of (?:constituent )?(?:constituents|particles)|constituent (?:count|multiplicity|particles)"
     r"|particle (?:count|multiplicity)"
     r"|constituents|particles|multiplicity|n_?const(?:ituents)?|n_?particles", "nparticles"),
    (r"(?:jet |invariant )?mass(?:es)?|m_?\{?j\}?", "mass"),
)
_PRONG_COUNT = {"one": 1, "single": 1, "1": 1, "two": 2, "double": 2, "2": 2, "three": 3, "triple": 3, "3": 3,
                "four": 4, "quadruple": 4, "4": 4}
_NEGATIONS = r"not|non|no|except|excluding|other than|rather than|apart from|anything but|but not"
_DETERMINERS = {"a", "an", "the", "that", "of"}
_CONNECTIVES = {"and", "or", "but", "yet", "also", "while", ",", ";"}
_FILLERS_BEFORE_NUMBER = {"of", "is", "at", "=", ":", "equals", "value", "values", "being", "a"}
_PARTICLE_PLURALS = {"quarks", "partons", "leptons", "prongs", "gluons", "subjets", "particles", "constituents"}
# "very light jets" is about mass: a class word that is also an adjective of mass, after an intensifier.
_MASS_ADJECTIVES = {"light"}
_INTENSIFIERS = {"very", "extremely", "really", "quite", "rather", "fairly", "super", "ultra", "unusually", "so"}

_SMALL = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_BELOW_100 = rf"(?:(?:{'|'.join(_TENS)})(?:[- ](?:{'|'.join(_SMALL[1:10])}))?|{'|'.join(_SMALL)})"
_NUMBER_WORDS = rf"(?:(?:{_BELOW_100}|a) hundred(?:(?: and)? {_BELOW_100})?|(?:{_BELOW_100}|a) thousand|{_BELOW_100})"


def words_to_number(text: str) -> float:
    """``"one hundred and fifty"`` -> 150.0 (numbers below a million in words)."""
    total, current = 0, 0
    for word in re.split(r"[\s-]+", text.lower()):
        if word in ("and", ""):
            continue
        if word == "a":
            current = max(current, 1)
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total, current = (total + max(current, 1)) * 1000, 0
        elif word in _SMALL:
            current += _SMALL.index(word)
        else:
            current += 10 * (_TENS.index(word) + 2)
    return float(total + current)


def _class_vocabulary() -> list[tuple[str, frozenset[str]]]:
    """(phrase, the classes it names), longest phrase first: every word of the classes table."""
    phrases: dict[str, set[str]] = {}
    for c in JET_CLASSES:
        words = {c.name, c.label, *c.synonyms, *(re.sub(r" jet$", "", n) for n in c.names)}
        for phrase in words:
            phrases.setdefault(phrase.lower(), set()).add(c.name)
    for c in JET_CLASSES:  # a label's first word names every class whose label starts with it ("Higgs")
        first = c.label.split()[0].lower()
        if first in phrases:
            phrases[first] |= {d.name for d in JET_CLASSES if d.label.split()[0].lower() == first}
    return sorted(((p, frozenset(cs)) for p, cs in phrases.items()), key=lambda item: -len(item[0]))


CLASS_VOCABULARY = _class_vocabulary()


# A decay is written many ways: "H -> b b-bar", "Higgs to bb", "h->bbbar", "W -> q q'", "t->b l nu".
# Its canonical form names the parent by one letter and squeezes the products: "h->bb", "w->qq",
# "t->blv"; the pattern that reads it allows every spelling of the same canonical form.
_PARENTS = {"h": ("higgs boson", "higgs", "h"), "t": ("top quark", "top", "t"), "w": ("w boson", "w"),
            "z": ("z boson", "z")}
_ARROW = r"\s*(?:->|→|\bto\b)\s*"
_PARENT_NAMES = "|".join(a for names in _PARENTS.values() for a in names)
_DECAY = re.compile(rf"^(?P<parent>{_PARENT_NAMES}){_ARROW}(?P<products>.+)$")


def _canonical(phrase: str) -> str:
    """One spelling of a class phrase: decays as ``parent->products`` (see above), other words as typed."""
    lower = phrase.lower().strip()
    decay = _DECAY.match(lower)
    if decay is None:
        return lower
    parent = next(p for p, names in _PARENTS.items() if decay["parent"] in names)
    products = re.sub(_ARROW, "->", decay["products"])
    products = re.sub(r"\bnu\b|ν", "v", products)
    products = re.sub(r"[\s'-]+|bar", "", products)
    return f"{parent}->{products}"


def _decay_pattern(canonical: str) -> str | None:
    """A regex that reads every spelling of a canonical decay ("h->bb": "Higgs to b b-bar", "H->bbbar")."""
    if "->" not in canonical or canonical.split("->")[0] not in _PARENTS:
        return None
    parent, products = canonical.split("->", 1)
    gap = r"(?:[\s'-]*(?:bar)?)*"  # spaces, primes and anti-particle marks between product letters
    body = []
    for part in products.split("->"):
        letters = [r"(?:v|nu|ν)" if ch == "v" else re.escape(ch) for ch in part]
        body.append(gap.join(letters) + r"(?:[\s-]*bar)?'?")
    names = "|".join(re.escape(n) for n in _PARENTS[parent] if len(n) > 1)
    # One-letter parents ("W", "Z", "H", "t") are read in any case only before an arrow or "to".
    return rf"(?:{names}|{parent}){_ARROW}" + _ARROW.join(body)


_CLASS_BY_PHRASE: dict[str, frozenset[str]] = {}
for _phrase, _classes in CLASS_VOCABULARY:
    _CLASS_BY_PHRASE[_canonical(_phrase)] = _CLASS_BY_PHRASE.get(_canonical(_phrase), frozenset()) | _classes
NOMINAL_MASS = {c.name: c.nominal_mass for c in JET_CLASSES}
# GeV values with no observable named, within this fraction of the nominal mass of a class the
# query names, are that jet's mass ("W jets near 85 GeV"); others are a pT ("tops above 500 GeV").
CLASS_MASS_SPAN = 0.3


def _class_pattern() -> str:
    decays = sorted({d for d in (_decay_pattern(k) for k in _CLASS_BY_PHRASE) if d}, key=len, reverse=True)
    parts = [*decays]
    for phrase, _ in CLASS_VOCABULARY:
        if _decay_pattern(_canonical(phrase)):
            continue
        # One- and two-letter words ("W", "Z") only in capitals: "z" or "w" in lower case is rarely a boson.
        parts.append(f"(?-i:{re.escape(phrase.upper())})" if len(phrase) <= 2 else re.escape(phrase))
    return r"(?<![\w>])(?:" + "|".join(parts) + r")(?:s|es|'s)?(?![\w'])"


# ------------------------------------------------------------------------------------ the lexer


@dataclass
class _Token:
    kind: str  # cmp obs num unit pm prong class neg dash word punct
    text: str
    start: int
    end: int
    value: object = None
    implied: str | None = None  # cmp: the observable the comparison's words imply
    used: bool = False


_LEXICON: tuple[tuple[str, str], ...] = (
    ("prong", rf"(?P<count>{'|'.join(_PRONG_COUNT)})[- ]?(?:hard[- ])?prong(?:s|ed)?\b"),
    *((f"cmp:{op}:{implied or ''}", rf"(?:{pattern})(?![\w])" if pattern[0].isalpha() else f"(?:{pattern})")
      for pattern, op, implied in _CMP_WORDS),
    ("pm", r"±|\+/-|\+-"),
    ("unit", r"(?:gev|tev|mev)(?:/c\^?2|/c)?(?![\w])"),
    *((f"obs:{name}", rf"(?<![\w])(?:{pattern})(?![\w])") for pattern, name in _OBS_WORDS),
    ("num", r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d])|\d*\.\d+|\d+"),
    ("numword", rf"(?<![\w]){_NUMBER_WORDS}(?![\w])"),
    ("neg", rf"(?<![\w])(?:{_NEGATIONS})(?![\w])"),
    ("class", _class_pattern()),
    ("dash", r"[-–—]"),
    ("punct", r"[,;:!?()]"),
    ("word", r"[\w'./]+"),
)
_LEXER = [(kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in _LEXICON]


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        for kind, pattern in _LEXER:
            match = pattern.match(text, pos)
            if match and match.end() > pos:
                out.append(_token(kind, match))
                pos = match.end()
                break
        else:
            pos += 1  # a character no rule reads (a stray symbol): skip it
    return _signed_numbers(out)


def _token(kind: str, match: re.Match[str]) -> _Token:
    text = match.group(0)
    token = _Token(kind, text, match.start(), match.end())
    if kind.startswith("cmp:"):
        _, op, implied = kind.split(":")
        token.kind, token.value, token.implied = "cmp", op, implied or None
    elif kind.startswith("obs:"):
        token.kind, token.value = "obs", kind[4:]
    elif kind == "num":
        token.value = float(text.replace(",", ""))
    elif kind == "numword":
        token.kind, token.value = "num", words_to_number(text)
    elif kind == "prong":
        token.value = _PRONG_COUNT[match.group("count").lower()]
    elif kind == "unit":
        token.value = {"g": 1.0, "t": 1000.0, "m": 0.001}[text[0].lower()]
    elif kind == "class":  # the phrase itself, or without its plural ending ("tops", "Higgses", "W's")
        lower = text.lower()
        forms = (lower, lower.removesuffix("'s"), lower.removesuffix("es"), lower.removesuffix("s"))
        token.value = next(_CLASS_BY_PHRASE[_canonical(f)] for f in forms if _canonical(f) in _CLASS_BY_PHRASE)
    return token


def _signed_numbers(tokens: list[_Token]) -> list[_Token]:
    """A dash glued to a number after no other number is a minus sign: "eta above -1.5"."""
    out: list[_Token] = []
    for token in tokens:
        previous = out[-1] if out else None
        before = out[-2] if len(out) > 1 else None
        if (token.kind == "num" and previous is not None and previous.kind == "dash" and previous.end == token.start
                and (before is None or before.kind not in ("num", "unit"))):
            out[-1] = _Token("num", previous.text + token.text, previous.start, token.end, -float(token.value))
        else:
            out.append(token)
    return out


# ------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Cut:
    """One stated condition: ``observable`` in [lo, hi] (an open side where ``lo_open``/``hi_open``),
    read from ``phrase``; ``note`` says what was assumed (a tolerance, the observable guessed)."""

    observable: str
    lo: float = -math.inf
    hi: float = math.inf
    phrase: str = ""
    lo_open: bool = False
    hi_open: bool = False
    note: str = ""

    def window(self) -> tuple[float, float]:
        """The closed window a :class:`JetFilter` applies (an open bound moved to the next float inwards)."""
        lo = math.nextafter(self.lo, math.inf) if self.lo_open and math.isfinite(self.lo) else self.lo
        hi = math.nextafter(self.hi, -math.inf) if self.hi_open and math.isfinite(self.hi) else self.hi
        return lo, hi

    def describe(self) -> str:
        name, unit = OBSERVABLES[self.observable]
        unit = f" {unit}" if unit else ""
        if math.isfinite(self.lo) and math.isfinite(self.hi):
            if self.lo == self.hi:
                return f"{name} = {_fmt(self.lo)}{unit}"
            return f"{_fmt(self.lo)} {'<' if self.lo_open else '<='} {name} {'<' if self.hi_open else '<='} " \
                   f"{_fmt(self.hi)}{unit}"
        if math.isfinite(self.hi):
            return f"{name} {'<' if self.hi_open else '<='} {_fmt(self.hi)}{unit}"
        if math.isfinite(self.lo):
            return f"{name} {'>' if self.lo_open else '>='} {_fmt(self.lo)}{unit}"
        return f"any {name}"

    def allows(self, value: float) -> bool:
        lo, hi = self.window()
        return lo <= value <= hi

    def to_dict(self) -> dict[str, object]:
        return {"observable": self.observable, "lo": _json_bound(self.lo), "hi": _json_bound(self.hi),
                "lo_open": self.lo_open, "hi_open": self.hi_open, "phrase": self.phrase, "note": self.note,
                "text": self.describe()}


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def _json_bound(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class ClassMention:
    phrase: str
    classes: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class ParsedQuery:
    """The conditions a query states: :attr:`cuts` on observables and the allowed :attr:`classes`
    (None: any); :meth:`filter` is the :class:`JetFilter` that applies them."""

    text: str
    cuts: tuple[Cut, ...] = ()
    mentions: tuple[ClassMention, ...] = ()
    ignored: tuple[str, ...] = ()  # numbers in the query that state no condition
    notes: tuple[str, ...] = ()
    restrict: tuple[str, ...] | None = None  # classes allowed by an explicit argument, not by the words

    @property
    def classes(self) -> tuple[str, ...] | None:
        wanted = {c for m in self.mentions if not m.negated for c in m.classes}
        unwanted = {c for m in self.mentions if m.negated for c in m.classes}
        if not wanted and not unwanted and self.restrict is None:
            return None
        allowed = (wanted or set(PROCESSES)) - unwanted
        if self.restrict is not None:
            allowed &= set(self.restrict)
        return tuple(p for p in PROCESSES if p in allowed)

    @property
    def empty(self) -> bool:
        return not self.cuts and self.classes is None

    def windows(self) -> dict[str, tuple[float, float]]:
        """Each observable's window: the intersection of its cuts (lo > hi when they contradict)."""
        out: dict[str, tuple[float, float]] = {}
        for cut in self.cuts:
            lo, hi = cut.window()
            old_lo, old_hi = out.get(cut.observable, (-math.inf, math.inf))
            out[cut.observable] = (max(lo, old_lo), min(hi, old_hi))
        return out

    def contradictions(self) -> list[str]:
        """The observables whose cuts no value can meet, and a class list that excludes every class."""
        out = [f"{OBSERVABLES[o][0]}: {' and '.join(c.describe() for c in self.cuts if c.observable == o)}"
               for o, (lo, hi) in self.windows().items() if lo > hi]
        if self.classes == ():
            out.append("the classes named exclude every class")
        return out

    def filter(self, use_classes: bool = True) -> JetFilter | None:
        """The filter of these conditions (None when the query states none)."""
        classes = self.classes if use_classes else None
        if not self.cuts and classes is None:
            return None
        return JetFilter(**self.windows(), labels=None if classes is None else list(classes))

    def with_conditions(self, cuts: Iterable[Cut] = (), classes: Iterable[str] | None = None) -> ParsedQuery:
        """These conditions and more (e.g. a tool's explicit arguments), all of which must hold."""
        restrict = self.restrict
        if classes is not None:
            classes = set(classes)
            restrict = tuple(p for p in (restrict or PROCESSES) if p in classes)
        return replace(self, cuts=(*self.cuts, *cuts), restrict=restrict)

    def describe(self) -> list[str]:
        """One line per condition, as the user should read it: what was taken, from which words."""
        lines = []
        groups: list[list[Cut]] = []  # the cuts one phrase makes ("three-prong": two tau cuts) read as one line
        for cut in self.cuts:
            if groups and (groups[-1][0].phrase, groups[-1][0].note) == (cut.phrase, cut.note):
                groups[-1].append(cut)
            else:
                groups.append([cut])
        for group in groups:
            line = f"{' and '.join(c.describe() for c in group)} (from {group[0].phrase!r}"
            lines.append(line + (f"; {group[0].note})" if group[0].note else ")"))
        classes = self.classes
        if classes is not None:
            said = [("not " if m.negated else "") + repr(m.phrase) for m in self.mentions]
            if self.restrict is not None:
                said.append("the labels argument")
            lines.append(f"class in {{{', '.join(classes)}}} (from {', '.join(said)})")
        return lines

    def to_dict(self) -> dict[str, object]:
        classes = None if self.classes is None else list(self.classes)
        return {"cuts": [c.to_dict() for c in self.cuts], "classes": classes,
                "class_phrases": [{"phrase": m.phrase, "classes": list(m.classes), "negated": m.negated}
                                  for m in self.mentions],
                "ignored_numbers": list(self.ignored), "notes": list(self.notes), "read_as": self.describe()}


# ------------------------------------------------------------------------------------ the parser


def prong_cuts(prongs: int, phrase: str) -> list[Cut]:
    """The N-subjettiness category of :func:`retrieval.captions.prong_count` as cuts."""
    note = "the prong count the captions use (from N-subjettiness)"
    four = Cut("tau43", hi=FOUR_PRONG_TAU43, hi_open=True, phrase=phrase, note=note)
    not_four = Cut("tau43", lo=FOUR_PRONG_TAU43, phrase=phrase, note=note)
    three = Cut("tau32", hi=THREE_PRONG_TAU32, hi_open=True, phrase=phrase, note=note)
    not_three = Cut("tau32", lo=THREE_PRONG_TAU32, phrase=phrase, note=note)
    two = Cut("tau21", hi=TWO_PRONG_TAU21, hi_open=True, phrase=phrase, note=note)
    not_two = Cut("tau21", lo=TWO_PRONG_TAU21, phrase=phrase, note=note)
    return {4: [four], 3: [not_four, three], 2: [not_four, not_three, two], 1: [not_four, not_three, not_two]}[prongs]


@dataclass
class _Condition:
    op: str  # lt le gt ge range near eq
    values: tuple[float, ...]
    unit: float | None  # GeV per unit of the numbers; None when no unit was written
    start: int  # token span
    end: int
    observable: str | None = None
    implied: str | None = None
    tolerance: float | None = None
    notes: list[str] = field(default_factory=list)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.conditions: list[_Condition] = []
        self.mentions: list[ClassMention] = []
        self.cuts: list[Cut] = []
        self.notes: list[str] = []
        self.pending: list[int] = []  # tokens a quantity read (a class's mass), used once a condition takes it

    def at(self, i: int, kind: str, *texts: str) -> bool:
        if not 0 <= i < len(self.tokens):
            return False
        token = self.tokens[i]
        return token.kind == kind and (not texts or token.text.lower() in texts)

    def phrase(self, start: int, end: int) -> str:
        return self.text[self.tokens[start].start : self.tokens[end - 1].end]

    # -------------------------------------------------------------- quantities

    def quantity(self, i: int) -> tuple[float, float | None, int] | None:
        """(value, unit, next token) of a number [unit], or of a class's nominal mass ("the W mass")."""
        if self.at(i, "num"):
            value = float(self.tokens[i].value)
            if self.at(i + 1, "unit"):
                return value, float(self.tokens[i + 1].value), i + 2
            return value, None, i + 1
        j = i
        while self.at(j, "word", *_DETERMINERS):
            j += 1
        if self.at(j, "class"):
            masses = {NOMINAL_MASS[c] for c in self.tokens[j].value}
            if len(masses) == 1 and None not in masses:
                # Marked as used only when a condition takes the value (add): "jets from a top quark"
                # tries it as the start of "from X to Y" and must leave the class word a class.
                self.pending.append(j)
                end = j + 1
                while self.at(end, "word", "boson", "quark", "pole", "peak", "resonance") or self.at(end, "obs"):
                    if self.at(end, "obs") and self.tokens[end].value != "mass":
                        break
                    self.pending.append(end)  # "the top mass": the particle's mass, not the jet's
                    end += 1
                return float(masses.pop()), 1.0, end
        return None

    def number_pair(self, i: int, joiners: tuple[str, ...]) -> tuple[tuple[float, float], float | None, int] | None:
        first = self.quantity(i)
        if first is None:
            return None
        j = first[2]
        if not (self.at(j, "word", *joiners) or ("-" in joiners and self.at(j, "dash"))):
            return None
        second = self.quantity(j + 1)
        if second is None:
            return None
        unit = second[1] if second[1] is not None else first[1]
        low = first[0] * (first[1] or unit or 1.0) / (unit or 1.0)
        return (low, second[0]), unit, second[2]

    # -------------------------------------------------------------- conditions

    def run(self) -> ParsedQuery:
        i = 0
        while i < len(self.tokens):
            i = self.step(i)
        self.resolve_observables()
        for condition in self.conditions:
            self.cuts.extend(self.to_cuts(condition))
        self.read_classes()
        ignored = tuple(t.text for t in self.tokens if t.kind == "num" and not t.used)
        return ParsedQuery(self.text, tuple(self.cuts), tuple(self.mentions), ignored, tuple(self.notes))

    def add(self, op: str, values: tuple[float, ...], unit: float | None, start: int, end: int,
            implied: str | None = None, tolerance: float | None = None, observable: str | None = None) -> int:
        for token in self.tokens[start:end]:
            if token.kind in ("num", "unit"):
                token.used = True
        if self.pending and implied is None:
            implied = "mass"  # "near the Z mass": a particle's mass is compared with the jet's mass
        for j in self.pending:
            self.tokens[j].used = True
        self.pending.clear()
        condition = _Condition(op, values, unit, start, end, observable, implied=implied, tolerance=tolerance)
        end = self.trailing_tolerance(condition, end)
        self.conditions.append(condition)
        return end

    def trailing_tolerance(self, condition: _Condition, end: int) -> int:
        """``X +/- T`` after a value: the window around X."""
        if condition.op in ("near", "eq") and self.at(end, "pm"):
            tol = self.quantity(end + 1)
            if tol is not None:
                self.tokens[end + 1].used = True
                condition.tolerance = tol[0] * (tol[1] or condition.unit or 1.0) / (condition.unit or tol[1] or 1.0)
                condition.unit = condition.unit or tol[1]
                condition.end = tol[2]
                return tol[2]
        return end

    def step(self, i: int) -> int:
        self.pending.clear()
        token = self.tokens[i]
        if token.kind == "prong":
            self.cuts.extend(prong_cuts(int(token.value), token.text))
            return i + 1
        if token.kind == "cmp":
            return self.comparison(i)
        if token.kind == "num" and not token.used:
            return self.bare_number(i)
        return i + 1

    def comparison(self, i: int) -> int:
        token = self.tokens[i]
        op = str(token.value)
        if op in ("between", "from"):
            pair = self.number_pair(i + 1, ("and", "to", "-") if op == "between" else ("to", "-"))
            if pair is None:
                return i + 1
            (a, b), unit, end = pair
            return self.add("range", (min(a, b), max(a, b)), unit, i, end)
        if op == "within":
            tol = self.quantity(i + 1)
            if tol is not None and self.at(tol[2], "word", "of"):
                centre = self.quantity(tol[2] + 1)
                if centre is not None:
                    unit = centre[1] if centre[1] is not None else tol[1]
                    width = tol[0] * (tol[1] or unit or 1.0) / (unit or 1.0)
                    return self.add("near", (centre[0],), unit, i, centre[2], tolerance=width)
            return i + 1
        quantity = self.quantity(i + 1)
        if quantity is None:
            return i + 1
        value, unit, end = quantity
        if op == "near" and (self.at(end, "word", "to") or self.at(end, "dash")):  # "around 80 to 100 GeV"
            pair = self.number_pair(i + 1, ("to", "-"))
            if pair is not None:
                (a, b), unit, end = pair
                return self.add("range", (min(a, b), max(a, b)), unit, i, end)
        return self.add(op, (value,), unit, i, end, implied=token.implied)

    def bare_number(self, i: int) -> int:
        pair = self.number_pair(i, ("to", "-"))
        if pair is not None:  # "150-200 GeV", "150 to 200 GeV"
            (a, b), unit, end = pair
            return self.add("range", (min(a, b), max(a, b)), unit, i, end)
        value, unit, end = self.quantity(i)
        trailing = self.trailing_comparison(end)
        if trailing:
            op, after = trailing
            implied = _TRAILING_IMPLIES.get(self.tokens[after - 1].text.lower())
            return self.add(op, (value,), unit, i, after, implied=implied)
        if self.at(end, "pm"):
            return self.add("near", (value,), unit, i, end)
        if self.at(end, "cmp") and self.tokens[end].value in _FLIPPED and self.at(end + 1, "obs"):
            # "0.3 < tau21": the observable's bound, read from the right
            self.add(_FLIPPED[str(self.tokens[end].value)], (value,), unit, i, end + 2,
                     observable=str(self.tokens[end + 1].value))
            return end  # the comparison on the right ("< 0.4") is read next, with the same observable
        after = self.tokens[end] if self.at(end, "obs") else None
        if self.obs_before(i) or (after is not None and (unit is None or after.value in _GEV)):
            # "mass of 91 GeV", "91 GeV mass", "50 constituents" (not "a 173 GeV particle")
            return self.add("eq" if after is not None and after.value == "nparticles" else "near", (value,), unit, i,
                            end)
        return end

    def trailing_comparison(self, i: int) -> tuple[str, int] | None:
        """``X or less``, ``X and above``, ``X or so``, optionally after the observable ("30 constituents or fewer")."""
        j = i + 1 if self.at(i, "obs") else i
        if not self.at(j, "word", "or", "and"):
            return None
        nxt = self.tokens[j + 1] if j + 1 < len(self.tokens) else None
        if nxt is None:
            return None
        word = nxt.text.lower()
        if word == "so":
            return "near", j + 2
        if word in _TRAILING_LOWER or (nxt.kind == "cmp" and nxt.value in ("lt", "le") and " " not in word):
            return "le", j + 2
        if word in _TRAILING_UPPER or (nxt.kind == "cmp" and nxt.value in ("gt", "ge") and " " not in word):
            return "ge", j + 2
        return None

    def obs_before(self, i: int) -> bool:
        j = i - 1
        while j >= 0 and self.at(j, "word", *_FILLERS_BEFORE_NUMBER):
            j -= 1
        return self.at(j, "obs") or (j >= 0 and self.tokens[j].kind == "punct" and self.tokens[j].text == ":"
                                     and self.at(j - 1, "obs"))

    # -------------------------------------------------------------- which observable

    def resolve_observables(self) -> None:
        previous: _Condition | None = None
        boundary = 0
        for condition in self.conditions:
            if condition.observable is not None:  # named where it was read ("0.3 < tau21")
                boundary, previous = condition.end, condition
                continue
            gap = self.tokens[boundary : condition.start]
            inside = [t for t in self.tokens[condition.start : condition.end] if t.kind == "obs" and not t.used]
            before = [i for i in range(boundary, condition.start) if self.at(i, "obs") and not self.tokens[i].used]
            after = None if inside else self.obs_after(condition)
            if inside and self.compatible(str(inside[0].value), condition):  # "30 constituents or fewer"
                condition.observable = str(inside[0].value)
                inside[0].used = True
            elif before and self.compatible(str(self.tokens[before[-1]].value), condition):
                condition.observable = str(self.tokens[before[-1]].value)
                self.tokens[before[-1]].used = True
                condition.start = before[-1]  # the phrase shown starts at the observable's name
            elif after is not None:
                condition.observable = after
            elif condition.implied:
                condition.observable = condition.implied
            elif previous is not None and previous.observable and all(
                    t.text.lower() in _CONNECTIVES for t in gap) and self.compatible(previous.observable, condition):
                condition.observable = previous.observable
            elif condition.unit is not None and (near := self.class_mass_near(condition)) is not None:
                condition.observable = "mass"  # "hadronic tops around 175 GeV": the top's mass, not its pT
                condition.notes.append(f"no observable named next to it: GeV near the {near} mass taken as the "
                                       "jet mass")
            elif condition.unit is not None:
                condition.observable = "pt"
                condition.notes.append("no observable named next to it: GeV taken as pT")
            if condition.observable is None and condition is not self.conditions[-1]:
                self.share_with_next(condition)
            if condition.observable is None:
                self.notes.append(f"{self.phrase(condition.start, condition.end)!r}: no observable named next to it "
                                  "(mass, pT, eta, tau21, constituents, ...), so it is not applied")
            boundary = condition.end
            previous = condition

    def class_mass_near(self, condition: _Condition) -> str | None:
        """The class the query names whose nominal mass every value of ``condition`` lies near (within
        :data:`CLASS_MASS_SPAN` of it), or None: such GeV values are a mass, not a pT."""
        values = [v * (condition.unit or 1.0) for v in condition.values]
        for token in self.tokens:
            if token.kind != "class":
                continue
            for name in sorted(token.value, key=PROCESSES.index):
                nominal = NOMINAL_MASS.get(name)
                if nominal and values and all(abs(v - nominal) <= CLASS_MASS_SPAN * nominal for v in values):
                    return name
        return None

    def share_with_next(self, condition: _Condition) -> None:
        """"more than 50 but fewer than 80 constituents": the next condition names the observable."""
        nxt = self.conditions[self.conditions.index(condition) + 1]
        gap = self.tokens[condition.end : nxt.start]
        if not all(t.text.lower() in _CONNECTIVES for t in gap):
            return
        named = [t for t in self.tokens[nxt.start : nxt.end + 2] if t.kind == "obs"]
        observable = nxt.implied or (str(named[0].value) if named else None)
        if observable and self.compatible(observable, condition):
            condition.observable = observable

    def obs_after(self, condition: _Condition) -> str | None:
        j = condition.end
        if self.at(j, "word", "in", "of", "for"):
            j += 1
        if self.at(j, "obs") and not self.tokens[j].used and self.compatible(str(self.tokens[j].value), condition):
            self.tokens[j].used = True
            condition.end = max(condition.end, j + 1)
            trailing = self.trailing_comparison(j + 1)  # "30 constituents or fewer"
            if trailing and condition.op in ("near", "eq"):
                condition.op = trailing[0]
                condition.end = trailing[1]
            return str(self.tokens[j].value)
        return None

    @staticmethod
    def compatible(observable: str, condition: _Condition) -> bool:
        return condition.unit is None or observable in _GEV

    # -------------------------------------------------------------- cuts

    def to_cuts(self, c: _Condition) -> list[Cut]:
        if c.observable is None:
            return []
        obs = c.observable
        scale = c.unit if c.unit is not None else 1.0
        values = tuple(v * scale for v in c.values)
        notes = list(c.notes)
        if c.unit is not None and c.unit != 1.0:
            notes.append(f"{'TeV' if c.unit > 1 else 'MeV'} converted to GeV")
        if obs == "eta" and c.op in ("lt", "le") and values[0] > 0:
            obs = "abs_eta"
            notes.append("an upper bound on eta taken as one on |eta|")
        phrase = self.phrase(c.start, c.end)
        note = "; ".join(notes)
        if c.op == "range":
            return [Cut(obs, values[0], values[1], phrase, note=note)]
        value = values[0]
        if c.op == "lt":
            return [Cut(obs, hi=value, hi_open=True, phrase=phrase, note=note)]
        if c.op == "le":
            return [Cut(obs, hi=value, phrase=phrase, note=note)]
        if c.op == "gt":
            return [Cut(obs, lo=value, lo_open=True, phrase=phrase, note=note)]
        if c.op == "ge":
            return [Cut(obs, lo=value, phrase=phrase, note=note)]
        if c.op == "eq" and obs in _INTEGER and c.tolerance is None:
            return [Cut(obs, value, value, phrase, note=note)]
        if c.tolerance is not None:
            width = c.tolerance * (scale if c.unit is not None else 1.0)
            said = "the stated tolerance"
        else:
            width = TOLERANCE[obs]
            said = f"'near' taken as +/- {_fmt(width)}{' GeV' if obs in _GEV else ''}"
        return [Cut(obs, value - width, value + width, phrase, note="; ".join([*notes, said]))]

    # -------------------------------------------------------------- classes

    def read_classes(self) -> None:
        for i, token in enumerate(self.tokens):
            if token.kind != "class" or token.used:
                continue
            nxt = self.tokens[i + 1] if i + 1 < len(self.tokens) else None
            if nxt is not None and (nxt.kind == "num" or (nxt.text.lower() in _PARTICLE_PLURALS and " " not in
                                                          token.text and "-" not in token.text)):
                continue  # "top 10", "two light quarks": not a class of jet
            if token.text.lower() in _MASS_ADJECTIVES and i > 0 and self.tokens[i - 1].text.lower() in _INTENSIFIERS:
                continue  # "very light jets": light in mass
            j = i - 1
            while j >= 0 and (self.at(j, "word", *_DETERMINERS) or self.at(j, "dash")):
                j -= 1
            negated = self.at(j, "neg")
            start = self.tokens[j].start if negated else token.start
            self.mentions.append(ClassMention(self.text[start : token.end], tuple(sorted(token.value,
                                              key=PROCESSES.index)), negated))


# Typing slips in the parser's own words ("arund 175 GeV", "heavir than"): read as the word, and said
# in a note. Words of fewer letters stay as typed: a slip there mostly makes another word.
SLIP_MIN_LENGTH = 5
_WORD = re.compile(r"(?<![\w\-./])[A-Za-z]+(?![\w\-./])")


@lru_cache(maxsize=1)
def _own_words() -> frozenset[str]:
    patterns = [p for p, _, _ in _CMP_WORDS] + [p for p, _ in _OBS_WORDS] + [*_TRAILING_LOWER, *_TRAILING_UPPER]
    return vocabulary_words(patterns, SLIP_MIN_LENGTH)


def _without_slips(text: str) -> tuple[str, list[str]]:
    notes: list[str] = []

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        if len(word) < SLIP_MIN_LENGTH or word.lower() in _own_words():
            return word
        meant = slip_of(word, _own_words())
        if meant is None:
            return word
        notes.append(f"read {word!r} as {meant!r}")
        return meant

    return _WORD.sub(fix, text), notes


def parse_query(text: str) -> ParsedQuery:
    """The explicit conditions of a text query (see the module docstring)."""
    fixed, slips = _without_slips(text)
    parsed = _Parser(fixed).run()
    return replace(parsed, notes=(*slips, *parsed.notes)) if slips else parsed


def tool_cuts(mass_min: float | None = None, mass_max: float | None = None) -> list[Cut]:
    """Cuts for the explicit mass arguments of the search tool and CLI (``--mass-min``/``--mass-max``)."""
    if mass_min is None and mass_max is None:
        return []
    lo = -math.inf if mass_min is None else float(mass_min)
    hi = math.inf if mass_max is None else float(mass_max)
    return [Cut("mass", lo, hi, phrase="mass_min/mass_max arguments")]

