"""Text descriptions of jets, written from the truth class and the measured observables.

A caption joins a phrase for the jet's class (with the physics of its decay: prong structure,
nominal mass, b content) to its measured observables, rounded the way a physicist would say them:
jet mass and soft-drop mass to 5 GeV, pT to 10 GeV, the constituent multiplicity to 5, and a prong
count read off the N-subjettiness ratios (:func:`prong_count`).

Templates are split once and for all into training and evaluation phrasings (every
``EVAL_EVERY``-th template, in the fixed order of ``TEMPLATES``, is evaluation-only), so an
alignment can be scored on wordings it never saw. Class phrases are shared by both splits: the
held-out part is the sentence, not the vocabulary of particle names.

The class physics used here (nominal masses from the PDG; the soft-drop mass is the one that peaks
there): QCD jets come from a light quark or gluon and are one-pronged with a falling mass spectrum;
t -> bW -> bqq' gives three prongs, one of them a b quark, at ~173 GeV; W -> qq' and Z -> qq give
two prongs at 80 and 91 GeV; H -> bb gives two b-quark prongs at 125 GeV.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from backbone.data.schema import PROCESSES

EVAL_EVERY = 4
SPLITS = ("train", "eval")

# Thresholds on tau32 and tau21 that separate three-, two- and one-pronged jets in our generated
# samples (pT 550-650 GeV): median tau32 is 0.47 for tops and ~0.78 otherwise; median tau21 is
# ~0.33 for W/Z/H and 0.65 for QCD.
THREE_PRONG_TAU32 = 0.6
TWO_PRONG_TAU21 = 0.5
LOW_MULTIPLICITY = 40
HIGH_MULTIPLICITY = 70
MASS_BIN = 20  # GeV; width of the mass windows some captions state


@dataclass(frozen=True)
class ClassPhysics:
    names: tuple[str, ...]  # noun phrases naming the jet, usable after "a"/"an" ... ("a top quark jet")
    label: str  # the short label used for zero-shot prompts and class queries
    decay: str
    prongs: int
    nominal_mass: float | None
    flavour: str  # b content, or what the jet is made of


CLASS_PHYSICS: dict[str, ClassPhysics] = {
    "qcd": ClassPhysics(
        names=("QCD jet", "light-quark or gluon jet", "QCD multijet background jet", "quark or gluon initiated jet"),
        label="QCD light-quark or gluon",
        decay="initiated by a light quark or a gluon",
        prongs=1,
        nominal_mass=None,
        flavour="with no heavy resonance inside",
    ),
    "top": ClassPhysics(
        names=("top quark jet", "hadronic top jet", "t to bqq' jet", "boosted top quark jet"),
        label="top quark",
        decay="from a hadronic top quark decay t -> bW -> bqq'",
        prongs=3,
        nominal_mass=173.0,
        flavour="with one b-quark prong and a W boson",
    ),
    "wqq": ClassPhysics(
        names=("W boson jet", "hadronic W jet", "W to qq' jet", "boosted W boson jet"),
        label="W boson",
        decay="from a hadronic W boson decay W -> qq'",
        prongs=2,
        nominal_mass=80.4,
        flavour="with two light-quark prongs",
    ),
    "zqq": ClassPhysics(
        names=("Z boson jet", "hadronic Z jet", "Z to qq jet", "boosted Z boson jet"),
        label="Z boson",
        decay="from a hadronic Z boson decay Z -> qq",
        prongs=2,
        nominal_mass=91.2,
        flavour="with a quark-antiquark pair",
    ),
    "hbb": ClassPhysics(
        names=("Higgs boson jet", "Higgs to bb jet", "Higgs to b-quark jet", "boosted Higgs boson jet"),
        label="Higgs boson to b quarks",
        decay="from a Higgs boson decay H -> bb",
        prongs=2,
        nominal_mass=125.0,
        flavour="with two b-quark prongs",
    ),
}

PRONG_WORDS = {1: "one-pronged", 2: "two-pronged", 3: "three-pronged"}
CLASS_LABELS: dict[str, str] = {p: CLASS_PHYSICS[p].label for p in PROCESSES}

# Fields: name (a class noun phrase), decay, flavour, nominal (the class's nominal mass), mass,
# sdmass, window (a MASS_BIN-wide window around the soft-drop mass), pt, n (constituents),
# multiplicity (low/moderate/high), prongs (measured, e.g. "two-pronged").
TEMPLATES: tuple[str, ...] = (
    "a {name} with mass {mass} GeV",
    "a {prongs} {name}, soft-drop mass {sdmass} GeV",
    "{name} {decay}, pT {pt} GeV",
    "a {name} {flavour}",  # eval
    "a {name} with soft-drop mass {window}",
    "{prongs} jet {decay}, mass {mass} GeV and {n} constituents",
    "a {name} of mass {mass} GeV, soft-drop mass {sdmass} GeV, pT {pt} GeV",
    "jet {decay} with soft-drop mass {window} and {multiplicity} multiplicity",  # eval
    "a {name} {flavour}, {prongs}, mass {mass} GeV",
    "{name} with {n} particles and a jet mass of {mass} GeV",
    "a {multiplicity}-multiplicity {name} at pT {pt} GeV",
    "this is a {name}; its groomed mass is {sdmass} GeV",  # eval
    "{prongs} substructure in a {name}, whose nominal mass is {nominal}",
    "a {name} {decay}",
    "a {name} whose soft-drop mass is {window}, {prongs}",
    "boosted jet {decay}, transverse momentum {pt} GeV, mass {mass} GeV",  # eval
    "a {name}: mass {mass} GeV, {n} constituents, {prongs}",
    "{name}, {multiplicity} multiplicity, {flavour}",
    "a {name} with mass {window}",
    "an example of a {name} carrying {pt} GeV of transverse momentum",  # eval
)


def template_split(index: int) -> str:
    """Which split template number ``index`` of ``TEMPLATES`` belongs to."""
    return "eval" if index % EVAL_EVERY == EVAL_EVERY - 1 else "train"


def templates(split: str) -> tuple[str, ...]:
    """The templates of one split (``"train"`` or ``"eval"``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown caption split {split!r}; choose from {', '.join(SPLITS)}")
    return tuple(t for i, t in enumerate(TEMPLATES) if template_split(i) == split)


def template_fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def prong_count(tau21: float, tau32: float) -> int:
    """Prongs as the N-subjettiness ratios measure them: 3 for a small tau3/tau2, else 2 for a small
    tau2/tau1, else 1. NaN ratios count as not small."""
    if tau32 < THREE_PRONG_TAU32:
        return 3
    return 2 if tau21 < TWO_PRONG_TAU21 else 1


def multiplicity_word(n: float) -> str:
    if n < LOW_MULTIPLICITY:
        return "low"
    return "high" if n >= HIGH_MULTIPLICITY else "moderate"


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

    def fields(self) -> dict[str, str]:
        """Template fields that can be filled for this jet; a NaN observable leaves its fields out."""
        physics = CLASS_PHYSICS[self.process]
        out = {"decay": physics.decay, "flavour": physics.flavour}
        if physics.nominal_mass is not None:
            out["nominal"] = f"{physics.nominal_mass:.0f} GeV"
        if math.isfinite(self.mass):
            out["mass"] = _rounded(self.mass, 5)
        if math.isfinite(self.sdmass):
            out["sdmass"] = _rounded(max(self.sdmass, 0.0), 5)
            out["window"] = mass_window(max(self.sdmass, 0.0))
        if math.isfinite(self.pt):
            out["pt"] = _rounded(self.pt, 10)
        if math.isfinite(self.nparticles):
            out["n"] = _rounded(self.nparticles, 5)
            out["multiplicity"] = multiplicity_word(self.nparticles)
        if math.isfinite(self.tau21) or math.isfinite(self.tau32):
            out["prongs"] = PRONG_WORDS[prong_count(self.tau21, self.tau32)]
        return out


def jet_facts(metadata: pd.DataFrame) -> list[JetFacts]:
    """One :class:`JetFacts` per row of an embedding set's metadata; every jet needs a known label."""
    labels = metadata["label"].to_numpy()
    unknown = np.flatnonzero((labels < 0) | (labels >= len(PROCESSES)))
    if unknown.size:
        raise ValueError(
            f"{unknown.size} jets have no known class (label -1, e.g. row {unknown[0]}); captions are written from "
            "the truth class, so align on labelled (generated) jets only"
        )
    columns = {c: metadata[c].to_numpy(np.float64) for c in ("mass", "sdmass", "pt", "tau21", "tau32", "nparticles")}
    return [
        JetFacts(PROCESSES[label], *(float(columns[c][i]) for c in columns)) for i, label in enumerate(labels)
    ]


def caption(facts: JetFacts, template: str, name: str) -> str:
    """``template`` filled for one jet, naming its class ``name``."""
    return template.format(name=name, **facts.fields())


def captions_for(facts: Sequence[JetFacts], per_jet: int = 4, split: str = "train", seed: int = 0) -> list[list[str]]:
    """``per_jet`` captions for each jet, from distinct templates of ``split`` (as many as fit its
    known observables), each with a randomly drawn class phrase. Deterministic in ``seed``."""
    if per_jet < 1:
        raise ValueError(f"per_jet must be >= 1, got {per_jet}")
    pool = templates(split)
    needs = [template_fields(t) - {"name"} for t in pool]
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    out = []
    for jet in facts:
        available = jet.fields().keys()
        usable = [t for t, need in zip(pool, needs) if need <= available]
        if not usable:
            raise ValueError(f"no {split} template fits a jet with only {sorted(available)} known")
        chosen = rng.choice(len(usable), size=per_jet, replace=per_jet > len(usable))
        names = CLASS_PHYSICS[jet.process].names
        out.append([caption(jet, usable[c], names[rng.integers(len(names))]) for c in chosen])
    return out


# --------------------------------------------------------------------------- benchmark queries

CLASS_QUERY_TEMPLATES = ("{label} jets", "show me {label} jets", "jets from a {label}", "find {label} candidates")
MASS_QUERY_TEMPLATES = ("jets with mass between {lo} and {hi} GeV", "jets of soft-drop mass {lo} to {hi} GeV")
MASS_QUERY_WINDOWS = ((20, 60), (70, 100), (110, 140), (160, 200))


def class_queries() -> dict[str, list[str]]:
    """Text queries that name one class each, worded unlike any caption template."""
    return {p: [t.format(label=CLASS_LABELS[p]) for t in CLASS_QUERY_TEMPLATES] for p in PROCESSES}


def mass_window_queries() -> list[tuple[str, tuple[float, float]]]:
    """(query, (lo, hi)) pairs naming a soft-drop mass window in GeV."""
    return [(t.format(lo=lo, hi=hi), (lo, hi)) for lo, hi in MASS_QUERY_WINDOWS for t in MASS_QUERY_TEMPLATES]


def description_bank() -> list[str]:
    """Candidate descriptions for describing a jet: every class with each prong count and mass window."""
    bank = []
    for process in PROCESSES:
        physics = CLASS_PHYSICS[process]
        for prongs in PRONG_WORDS.values():
            for lo in range(0, 300, MASS_BIN):
                bank.append(f"a {prongs} {physics.names[0]} {physics.flavour}, soft-drop mass {mass_window(lo)}")
    return bank
