"""Pythia 8 set-up per process and the pieces of an event the jet builder needs.

One generator per worker process; everything here runs inside that process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backbone.data.errors import DataError

# Hard processes, each forced into the hadronic decay the tagger is meant to see.
_HADRONIC_W = ["24:onMode = off", "24:onIfAny = 1 2 3 4 5"]
PROCESS_SETTINGS: dict[str, list[str]] = {
    "qcd": ["HardQCD:all = on"],
    "top": ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "6:onMode = off", "6:onIfAny = 5", *_HADRONIC_W],
    "wqq": ["WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on", *_HADRONIC_W],
    "zqq": [
        "WeakBosonAndParton:qqbar2gmZg = on",
        "WeakBosonAndParton:qg2gmZq = on",
        "WeakZ0:gmZmode = 2",
        "23:onMode = off",
        "23:onIfAny = 1 2 3 4 5",
    ],
    "hbb": [
        "HiggsSM:gg2Hg(l:t) = on",
        "HiggsSM:qg2Hq(l:t) = on",
        "HiggsSM:qqbar2Hg(l:t) = on",
        "25:onMode = off",
        "25:onIfMatch = 5 -5",
    ],
}
# PDG id of the resonance whose decay makes the signal jet (QCD has none).
RESONANCE = {"top": 6, "wqq": 24, "zqq": 23, "hbb": 25}

COMMON_SETTINGS = [
    "PartonLevel:MPI = on",
    "HadronLevel:all = on",
    # Particles with c*tau > 10 mm are stable, as in detector-level truth definitions.
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
    "Print:quiet = on",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
]

# The hard-process pT range that feeds a jet pT window: jets lose pT out of the cone, so the
# window reaches a little below the jet window and well above it.
PTHAT_LOW, PTHAT_HIGH = 0.9, 1.25
MAX_PYTHIA_SEED = 900_000_000


def pthat_range(pt_min: float, pt_max: float) -> tuple[float, float]:
    return PTHAT_LOW * pt_min, PTHAT_HIGH * pt_max


def pythia_settings(process: str, pt_min: float, pt_max: float, seed: int, ecm: float) -> list[str]:
    """The full list of Pythia settings strings for one process and jet pT window."""
    if process not in PROCESS_SETTINGS:
        raise DataError(f"unknown process {process!r}; choose from {', '.join(PROCESS_SETTINGS)}")
    lo, hi = pthat_range(pt_min, pt_max)
    return [
        f"Beams:eCM = {ecm:g}",
        *PROCESS_SETTINGS[process],
        f"PhaseSpace:pTHatMin = {lo:g}",
        f"PhaseSpace:pTHatMax = {hi:g}",
        *COMMON_SETTINGS,
        "Random:setSeed = on",
        f"Random:seed = {seed}",
    ]


def make_pythia(settings: list[str]):
    """An initialised Pythia instance; a bad setting is an error, not a warning in a log."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        if not pythia.readString(line):
            raise DataError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise DataError(f"Pythia failed to initialise with settings {settings}")
    return pythia


def visible_final_state(event) -> np.ndarray:
    """(n, 6) array of px, py, pz, E, pdg id, charge of the visible final-state particles."""
    rows = [
        (p.px(), p.py(), p.pz(), p.e(), p.id(), p.charge())
        for p in event.particles()
        if p.isFinal() and p.isVisible()
    ]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 6)


@dataclass(frozen=True)
class TruthObject:
    """A decaying resonance and the quarks it decays to, as (eta, phi) directions."""

    pdg: int
    eta: float
    phi: float
    quarks: tuple[tuple[float, float], ...]


def _quark_daughters(event, index: int) -> list[int]:
    """Indices of the decay products of the last copy of the particle at ``index``."""
    bottom = event[event[index].iBotCopyId()]
    return list(bottom.daughterList())


def truth_objects(event, n_hard: int, resonance: int) -> list[TruthObject]:
    """Resonances of type ``resonance`` from the hard process, with their final decay quarks.

    The resonance and its quarks are taken just after the decay (last copy before decay for
    the resonance, first copy after it for the quarks), as the top-tagging reference does.
    A top's quarks are its b and the two quarks of its W.
    """
    out: list[TruthObject] = []
    for i in range(min(n_hard, event.size())):
        if event[i].idAbs() != resonance:
            continue
        res = event[event[i].iBotCopyId()]
        quarks: list[int] = []
        for d in _quark_daughters(event, i):
            if event[d].idAbs() == 24:  # t -> bW: follow the W to its quarks
                quarks.extend(q for q in _quark_daughters(event, d) if event[q].isQuark())
            elif event[d].isQuark():
                quarks.append(d)
        out.append(
            TruthObject(
                pdg=resonance,
                eta=res.eta(),
                phi=res.phi(),
                quarks=tuple((event[q].eta(), event[q].phi()) for q in quarks),
            )
        )
    return out
