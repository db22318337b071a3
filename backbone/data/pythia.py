"""Pythia 8 set-up per process and the pieces of an event the jet builder needs.

One generator per worker process; everything here runs inside that process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jetfm.backbone.data.classes import jet_class
from jetfm.backbone.data.errors import DataError

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
    hard_process = jet_class(process).pythia
    lo, hi = pthat_range(pt_min, pt_max)
    return [
        f"Beams:eCM = {ecm:g}",
        *hard_process,
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


# Decay products the truth rule follows: W and Z decay on to their daughters; quarks, gluons and
# charged leptons (e, mu, tau) are kept; neutrinos are invisible and not required in the jet.
_INTERMEDIATE = (23, 24)
_LEPTONS = (11, 13, 15)


@dataclass(frozen=True)
class TruthObject:
    """A decaying resonance and its visible decay products (quarks, gluons, charged leptons), as
    (eta, phi) directions; ``n_leptons`` of the products are charged leptons."""

    pdg: int
    eta: float
    phi: float
    products: tuple[tuple[float, float], ...]
    n_leptons: int = 0


def _daughters(event, index: int) -> list[int]:
    """Indices of the decay products of the last copy of the particle at ``index``."""
    bottom = event[event[index].iBotCopyId()]
    return list(bottom.daughterList())


def _visible_products(event, index: int) -> list[int]:
    """The quarks, gluons and charged leptons a particle decays to, following W and Z on."""
    out: list[int] = []
    for d in _daughters(event, index):
        pid = event[d].idAbs()
        if pid in _INTERMEDIATE:
            out.extend(_visible_products(event, d))
        elif event[d].isQuark() or event[d].isGluon() or pid in _LEPTONS:
            out.append(d)
    return out


def truth_objects(event, n_hard: int, resonance: int) -> list[TruthObject]:
    """Resonances of type ``resonance`` from the hard process, with their final decay products.

    The resonance and its products are taken just after the decay (last copy before decay for
    the resonance, first copy after it for the products), as the top-tagging reference does.
    A top's products are its b and the two quarks (or lepton) of its W; H -> WW* gives the four
    decay products of its two W.
    """
    out: list[TruthObject] = []
    for i in range(min(n_hard, event.size())):
        if event[i].idAbs() != resonance:
            continue
        res = event[event[i].iBotCopyId()]
        products = _visible_products(event, i)
        out.append(
            TruthObject(
                pdg=resonance,
                eta=res.eta(),
                phi=res.phi(),
                products=tuple((event[q].eta(), event[q].phi()) for q in products),
                n_leptons=sum(event[q].idAbs() in _LEPTONS for q in products),
            )
        )
    return out
