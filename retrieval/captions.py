"""Text descriptions of jets: what a physicist sees in the measured observables, sometimes with the
truth class.

A caption is a subject and two or three clauses. The subject names the jet's class (one of the
classes table's words, with its decay or content) in ``CLASS_SHARE`` of the captions, states it
through its physics without the name (the table's ``facts``: "a jet from the neutral electroweak
gauge boson") in ``ORIGIN_SHARE``, and is a plain "jet" otherwise, so most captions teach the
alignment what the observables look like, and the class is learnt through more words than its name.
Levels in words have synonyms in the training vocabulary. The clauses each state one thing the observables show:

- prongs: the N-subjettiness category of :func:`prong_count` (four, three, two or one prong);
- mass and soft-drop mass, in numbers (rounded to 10 GeV) or in words (very low-mass ... very
  massive), and whether the soft-drop mass sits within ``NEAR_NOMINAL`` of a known particle's mass
  (the classes table's nominal masses: W, Z, Higgs, top);
- how collimated: the jet mass over pT (a two-body decay opens by ~2m/pT);
- the constituent count, in numbers (rounded to 10) or words (low/moderate/high multiplicity);
- what grooming does: soft-drop mass over mass near 1 means hard, balanced subjets; a small ratio
  means soft wide-angle radiation that soft drop removes;
- pT (rounded to 20 GeV).

The jet metadata holds no b-tagging information (no impact parameters, no secondary vertices), so
no caption claims b content from the data; only class phrases (the truth) mention b quarks.

Two vocabularies, ``"train"`` and ``"eval"``, word every clause, subject and joiner differently
(``VOCABULARY``), so an alignment can be scored on wordings it never saw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jetfm.backbone.data.classes import CLASSES, JET_CLASSES, PROCESSES, JetClass
from jetfm.errors import UsageError

SPLITS = ("train", "eval")
CLASS_SHARE = 0.4  # captions whose subject names the class
ORIGIN_SHARE = 0.2  # captions whose subject states the class through its physics, without its name

# Thresholds on the N-subjettiness ratios that separate four-, three-, two- and one-pronged jets in
# our generated samples (pT 550-650 GeV): median tau32 is 0.47 for tops and ~0.78 otherwise; median
# tau21 is ~0.33 for W/Z/H and 0.65 for QCD.
THREE_PRONG_TAU32 = 0.6
TWO_PRONG_TAU21 = 0.5
# tau43 < 0.65 for 28% of H -> WW* -> 4q jets, 11% of tops and <= 3% of two-prong classes and QCD.
FOUR_PRONG_TAU43 = 0.65
LOW_MULTIPLICITY = 40
HIGH_MULTIPLICITY = 70
MASS_BIN = 20  # GeV; width of the mass windows of the describe-jet descriptions
# Rounding of the numbers a caption states, as one would say them (and few distinct captions to encode).
MASS_STEP, PT_STEP, COUNT_STEP = 10, 20, 10
NEAR_NOMINAL = 10.0  # GeV; a soft-drop mass this close to a particle's mass is said to be near it
# Upper edges of the mass words (GeV), of the m/pT collimation words, of the sdmass/mass grooming words.
MASS_EDGES = (40.0, 70.0, 110.0, 150.0)
COLLIMATION_EDGES = (0.12, 0.22)
GROOMING_EDGES = (0.5, 0.85)

# The class physics and words (names, label, decay, flavour, prongs, nominal mass) come from the one
# table of jet classes.
CLASS_PHYSICS: dict[str, JetClass] = CLASSES
CLASS_LABELS: dict[str, str] = {p: CLASS_PHYSICS[p].label for p in PROCESSES}
PRONG_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}
PRONG_WORDS = {k: f"{word}-pronged" for k, word in PRONG_NUMBERS.items()}


def _particles() -> dict[str, float]:
    """The particles whose mass a jet can sit at, named as the labels of the classes table name them
    ("top quark", "W boson", "Higgs boson"), one per nominal mass."""
    out: dict[str, float] = {}
    for c in JET_CLASSES:
        if c.nominal_mass is not None and c.nominal_mass not in out.values():
            out[c.label.split(" to ")[0]] = c.nominal_mass
    return out


PARTICLE_MASSES = _particles()

# Every word a caption uses, by split. Levels follow the edges above (lowest first); a clause's
# phrasings are filled with the jet's values ({m} mass, {sd} soft-drop mass, {pt}, {n} constituents,
# {word} a level word, {k} the prong number in words, {particle}).
VOCABULARY: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "neutral": ("jet", "large-radius jet", "fat jet"),
        "origin": ("jet from {fact}", "jet produced by {fact}", "jet that comes from {fact}"),
        "prongs": ("{k}-pronged", "with {k} prongs", "{k} distinct subjets", "a {k}-body substructure"),
        "mass": ("mass {m} GeV", "a jet mass of {m} GeV"),
        "mass_word": ("{word}",),
        "mass_levels": (("very low-mass", "very low in mass"), ("low-mass", "low in mass"),
                        ("medium-mass", "intermediate-mass"), ("massive", "high-mass"),
                        ("very massive", "very high-mass", "extremely massive")),
        "sdmass": ("soft-drop mass {sd} GeV", "groomed mass {sd} GeV"),
        "near": ("soft-drop mass near the {particle} mass", "groomed mass consistent with a {particle}"),
        "collimation": ("{word}", "{word} radiation pattern"),
        "collimation_levels": (("very collimated", "tightly focused"), ("collimated", "compact"),
                               ("wide-angle", "wide", "spread out")),
        "constituents": ("{n} constituents", "{word} multiplicity", "{many} constituents"),
        "multiplicity_levels": ("low", "moderate", "high"),
        "multiplicity_counts": ("few", "a moderate number of", "very many"),
        "grooming": ("{word}",),
        "grooming_levels": (("grooming strips away most of its mass", "soft drop removes most of its mass",
                             "mostly soft wide-angle radiation"),
                            ("grooming removes some soft radiation", "soft drop trims it somewhat"),
                            ("grooming keeps almost all of its mass", "soft drop leaves it almost untouched",
                             "hard, balanced subjets")),
        "pt": ("pT {pt} GeV", "transverse momentum {pt} GeV"),
        "joiners": (": ", ", "),
    },
    "eval": {
        "neutral": ("hadronic object", "R = 0.8 jet"),
        "prongs": ("a {k}-subjet structure",),
        "mass": ("m_jet = {m}",),
        "mass_word": ("{word}",),
        "mass_levels": ("nearly weightless", "lightweight", "mid-weight", "weighty", "heavyweight"),
        "sdmass": ("m_SD = {sd}",),
        "near": ("m_SD matching a {particle}",),
        "collimation": ("{word}",),
        "collimation_levels": ("pencil-thin", "fairly narrow", "broad"),
        "constituents": ("built from {n} particles", "a {word} particle count"),
        "multiplicity_levels": ("sparse", "typical", "busy"),
        "grooming": ("{word}",),
        "grooming_levels": ("soft drop discards the bulk of it", "partly trimmed by soft drop",
                            "robust against soft drop"),
        "pt": ("p_T = {pt}",),
        "joiners": (" - ", "; "),
    },
}
CLAUSES = ("prongs", "mass", "mass_word", "sdmass", "near", "collimation", "constituents", "grooming", "pt")


def prong_count(tau21: float, tau32: float, tau43: float = math.nan) -> int:
    """Prongs as the N-subjettiness ratios measure them: 4 for a small tau4/tau3, else 3 for a small
    tau3/tau2, else 2 for a small tau2/tau1, else 1. NaN ratios count as not small."""
    if tau43 < FOUR_PRONG_TAU43:
        return 4
    if tau32 < THREE_PRONG_TAU32:
        return 3
    return 2 if tau21 < TWO_PRONG_TAU21 else 1


def level(value: float, edges: Sequence[float]) -> int:
    """Index of the interval of ``edges`` that ``value`` falls in (0 below the first edge)."""
    return int(np.searchsorted(np.asarray(edges), value, side="right"))


def multiplicity_level(n: float) -> int:
    return level(n, (LOW_MULTIPLICITY, HIGH_MULTIPLICITY - 0.5))


def nearest_particle(sdmass: float) -> str | None:
    """The particle whose mass the soft-drop mass sits at (within ``NEAR_NOMINAL``), if any."""
    name, mass = min(PARTICLE_MASSES.items(), key=lambda item: abs(item[1] - sdmass))
    return name if abs(mass - sdmass) <= NEAR_NOMINAL else None


def _rounded(value: float, step: int) -> str:
    return str(int(step * round(value / step)))


def mass_window(mass: float) -> str:
    lo = MASS_BIN * math.floor(mass / MASS_BIN)
    return f"between {lo} and {lo + MASS_BIN} GeV"


@dataclass(frozen=True)
class JetFacts:
    """What a caption may say about one jet: its class and observables (NaN where unknown)."""

    process: str
    mass: float
    sdmass: float
    pt: float
    tau21: float
    tau32: float
    nparticles: float
    tau43: float = math.nan

    def clauses(self, split: str) -> dict[str, list[str]]:
        """Each clause this jet's known observables can fill, in every phrasing of ``split``."""
        words = VOCABULARY[split]
        # Per clause, the alternative fillings of its fields (a level may have several words).
        values: dict[str, list[dict[str, str]]] = {}
        if math.isfinite(self.tau21) or math.isfinite(self.tau32) or math.isfinite(self.tau43):
            values["prongs"] = [{"k": PRONG_NUMBERS[prong_count(self.tau21, self.tau32, self.tau43)]}]
        if math.isfinite(self.mass):
            values["mass"] = [{"m": _rounded(self.mass, MASS_STEP)}]
            values["mass_word"] = _fillings("word", words["mass_levels"][level(self.mass, MASS_EDGES)])
            if math.isfinite(self.pt) and self.pt > 0:
                collimation = level(self.mass / self.pt, COLLIMATION_EDGES)
                values["collimation"] = _fillings("word", words["collimation_levels"][collimation])
        if math.isfinite(self.sdmass):
            sdmass = max(self.sdmass, 0.0)
            values["sdmass"] = [{"sd": _rounded(sdmass, MASS_STEP)}]
            particle = nearest_particle(sdmass)
            if particle:
                values["near"] = [{"particle": particle}]
            if math.isfinite(self.mass) and self.mass > 0:
                grooming = level(sdmass / self.mass, GROOMING_EDGES)
                values["grooming"] = _fillings("word", words["grooming_levels"][grooming])
        if math.isfinite(self.pt):
            values["pt"] = [{"pt": _rounded(self.pt, PT_STEP)}]
        if math.isfinite(self.nparticles):
            multiplicity = multiplicity_level(self.nparticles)
            counts = words.get("multiplicity_counts")
            values["constituents"] = [{"n": _rounded(self.nparticles, COUNT_STEP),
                                       "word": words["multiplicity_levels"][multiplicity],
                                       "many": counts[multiplicity] if counts else ""}]
        return {name: [p.format(**f) for p in words[name] for f in fills
                       if "{many}" not in p or f.get("many")]
                for name, fills in values.items()}


def _fillings(field: str, words: str | tuple[str, ...]) -> list[dict[str, str]]:
    """One filling of ``field`` per word of a level (a level is one word or a tuple of synonyms)."""
    return [{field: w} for w in ((words,) if isinstance(words, str) else words)]


def jet_facts(metadata: pd.DataFrame) -> list[JetFacts]:
    """One :class:`JetFacts` per row of an embedding set's metadata; every jet needs a known label."""
    labels = metadata["label"].to_numpy()
    unknown = np.flatnonzero((labels < 0) | (labels >= len(PROCESSES)))
    if unknown.size:
        raise UsageError(
            f"{unknown.size} jets have no known class (label -1, e.g. row {unknown[0]}); captions are written from "
            "the truth class, so align on labelled (generated) jets only"
        )
    names = ("mass", "sdmass", "pt", "tau21", "tau32", "nparticles", "tau43")
    columns = {c: metadata[c].to_numpy(np.float64) if c in metadata else np.full(len(metadata), np.nan)
               for c in names}
    return [JetFacts(PROCESSES[label], *(float(columns[c][i]) for c in names)) for i, label in enumerate(labels)]


def class_subjects(process: str, split: str) -> tuple[str, ...]:
    """Noun phrases naming a class in one split: the table's first three names (and the decay or the
    content) for training, the fourth name and the label for evaluation."""
    c = CLASS_PHYSICS[process]
    if split == "train":
        return (*c.names[:3], f"jet {c.decay}", f"{c.names[0]} {c.flavour}")
    return (c.names[3], f"jet of a {c.label}")


def origin_subjects(process: str, split: str) -> tuple[str, ...]:
    """Noun phrases that state a class through its physics ("jet from the neutral electroweak gauge
    boson"), from the classes table's facts; the evaluation vocabulary has none."""
    templates = VOCABULARY[split].get("origin", ())
    return tuple(t.format(fact=f) for t in templates for f in CLASS_PHYSICS[process].facts)


def _subject(process: str, split: str, words: dict[str, tuple], rng: np.random.Generator) -> str:
    """A caption's subject: the class's name (``CLASS_SHARE``), its physics (``ORIGIN_SHARE``, where the
    split has such words) or a plain jet."""
    draw = rng.random()
    subjects = words["neutral"]
    if draw < CLASS_SHARE:
        subjects = class_subjects(process, split)
    elif draw < CLASS_SHARE + ORIGIN_SHARE:
        subjects = origin_subjects(process, split) or subjects
    return subjects[rng.integers(len(subjects))]


def caption(subject: str, clauses: Sequence[str], joiner: str) -> str:
    """``"a fat jet: two-pronged, mass 85 GeV"`` (an article before the subject)."""
    article = "an" if subject[0].lower() in "aeiou" and not subject.startswith(("one", "u")) else "a"
    return f"{article} {subject}{joiner}{', '.join(clauses)}"


def captions_for(facts: Sequence[JetFacts], per_jet: int = 4, split: str = "train", seed: int = 0) -> list[list[str]]:
    """``per_jet`` captions for each jet in the vocabulary of ``split``: a subject (the class in
    ``CLASS_SHARE`` of them) and two or three clauses its known observables fill. Deterministic in ``seed``."""
    if split not in SPLITS:
        raise UsageError(f"unknown caption split {split!r}; choose from {', '.join(SPLITS)}")
    if per_jet < 1:
        raise UsageError(f"per_jet must be >= 1, got {per_jet}")
    words = VOCABULARY[split]
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    out = []
    for jet in facts:
        clauses = jet.clauses(split)
        if not clauses:
            raise UsageError(f"no caption can be written for a jet with no known observable ({jet})")
        names = list(clauses)
        captions = []
        for _ in range(per_jet):
            chosen = rng.choice(len(names), size=min(len(names), int(rng.integers(2, 4))), replace=False)
            phrases = [clauses[names[i]][rng.integers(len(clauses[names[i]]))] for i in sorted(chosen)]
            subject = _subject(jet.process, split, words, rng)
            captions.append(caption(subject, phrases, words["joiners"][rng.integers(len(words["joiners"]))]))
        out.append(captions)
    return out


def description_bank() -> list[str]:
    """Candidate descriptions for describing a jet, in the training vocabulary: every class with each
    prong count and soft-drop mass window."""
    bank = []
    for subject in (CLASS_PHYSICS[p].names[0] for p in PROCESSES):
        for prongs in PRONG_WORDS.values():
            for lo in range(0, 300, MASS_BIN):
                bank.append(caption(subject, [prongs, f"soft-drop mass {mass_window(lo)}"], ": "))
    return bank
