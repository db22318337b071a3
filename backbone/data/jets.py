"""From generated events to schema jets: FastJet clustering, truth matching, substructure.

Clustering and substructure run through FastJet's awkward interface on a batch of events at a
time, so the per-particle work stays in C++.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from jetfm.backbone.data.classes import jet_class
from jetfm.backbone.data.kinematics import pt_eta_phi_mass as _kinematics
from jetfm.backbone.data.pythia import TruthObject
from jetfm.backbone.data.schema import DEFAULT_PT_WINDOW, LABEL_BRANCHES, PARTICLE_BRANCHES, pid_flags

_FASTJET_BANNER_SHOWN = False




@dataclass(frozen=True)
class JetSelection:
    pt_min: float = DEFAULT_PT_WINDOW[0]
    pt_max: float = DEFAULT_PT_WINDOW[1]
    eta_max: float = 2.0
    radius: float = 0.8
    max_particles: int = 128


def _fastjet():
    """Import fastjet; the first clustering in a process prints FastJet's banner from C++ to
    stdout, which would break progress bars and --json output, so trigger it with fd 1 muted."""
    import os
    import sys

    import fastjet

    global _FASTJET_BANNER_SHOWN
    if not _FASTJET_BANNER_SHOWN:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 1)
                one = ak.Array([[{"px": 1.0, "py": 0.0, "pz": 0.0, "E": 1.0}]])
                fastjet.ClusterSequence(
                    one, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4)
                ).inclusive_jets()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _FASTJET_BANNER_SHOWN = True
    return fastjet


def delta_phi(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    return (np.asarray(a) - np.asarray(b) + np.pi) % (2 * np.pi) - np.pi


def delta_r(eta1, phi1, eta2, phi2) -> np.ndarray:
    return np.hypot(np.asarray(eta1) - np.asarray(eta2), delta_phi(phi1, phi2))


def is_contained(jet_eta: float, jet_phi: float, truth: TruthObject, radius: float, leptons: int = 0) -> bool:
    """The reference rule: the resonance and all its visible decay products (quarks, gluons,
    charged leptons) within ``radius`` of the jet, and the decay the one its class is named for
    (``leptons`` charged leptons: t -> b l nu is not t -> bqq')."""
    if truth.n_leptons != leptons or not truth.products:
        return False
    if delta_r(jet_eta, jet_phi, truth.eta, truth.phi) >= radius:
        return False
    return all(delta_r(jet_eta, jet_phi, eta, phi) < radius for eta, phi in truth.products)


def could_be_contained(truth: TruthObject, selection: JetSelection, leptons: int = 0) -> bool:
    """Whether any jet of the selection could contain ``truth`` under ``is_contained``: conditions that
    rule an event out before its particles are read. Each is implied by the rule (the jet axis lies
    within R of the resonance and of every product, so the products lie within 2R of the resonance,
    and the axis has |eta| < eta_max), so skipping the events that fail them changes no output."""
    if truth.n_leptons != leptons or not truth.products:
        return False
    if abs(truth.eta) >= selection.eta_max + selection.radius:
        return False
    return all(delta_r(truth.eta, truth.phi, eta, phi) < 2 * selection.radius for eta, phi in truth.products)


def build_jets(
    events: list[np.ndarray],
    truths: list[list[TruthObject]],
    process: str,
    selection: JetSelection,
) -> ak.Array:
    """Cluster a batch of events and return the selected, truth-matched jets (schema fields).

    ``events[i]`` is the (n, 6) visible final state of event i (px, py, pz, E, pdg, charge),
    ``truths[i]`` its resonances. QCD jets need no match; a signal jet must contain its
    resonance and all its visible decay products. Jets come out in event order, then pT order.
    """
    fastjet = _fastjet()
    counts = np.array([len(e) for e in events], dtype=np.int64)
    flat = np.concatenate(events) if events else np.zeros((0, 6))
    particles = ak.unflatten(
        ak.zip({"px": flat[:, 0], "py": flat[:, 1], "pz": flat[:, 2], "E": flat[:, 3]}), counts
    )
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, selection.radius)
    cs = fastjet.ClusterSequence(particles, jetdef)
    # Cluster with a floor below the window; the window cut is applied on the exact jet pT.
    floor = 0.5 * selection.pt_min
    jets = cs.inclusive_jets(min_pt=floor)
    index = cs.constituent_index(min_pt=floor)

    # Window and acceptance cuts on all jets of the batch at once (flat over events).
    n_per_event = ak.to_numpy(ak.num(jets, axis=1))
    event_of_jet = np.repeat(np.arange(len(events)), n_per_event)
    flat_jets = ak.flatten(jets, axis=1)
    pt, eta, phi, _ = _kinematics(*(ak.to_numpy(flat_jets[f]) for f in ("px", "py", "pz", "E")))
    in_window = (pt >= selection.pt_min) & (pt < selection.pt_max) & (np.abs(eta) < selection.eta_max)
    # Event order, then descending pT within each event.
    candidates = [j for j in np.lexsort((-pt, event_of_jet)) if in_window[j]]
    spec = jet_class(process)
    if spec.resonance is not None:
        candidates = [
            j
            for j in candidates
            if any(is_contained(eta[j], phi[j], t, selection.radius, spec.leptons) for t in truths[event_of_jet[j]])
        ]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    flat_index = ak.flatten(index, axis=1)
    chosen = [offsets[event_of_jet[j]] + ak.to_numpy(flat_index[j]) for j in candidates]
    return _jets_from_constituents(flat, chosen, process, selection)


def _jets_from_constituents(
    flat: np.ndarray, chosen: list[np.ndarray], process: str, selection: JetSelection
) -> ak.Array:
    n_jets = len(chosen)
    if n_jets == 0:
        return empty_jets()
    counts = np.array([len(c) for c in chosen], dtype=np.int64)
    parts = flat[np.concatenate(chosen)]
    px, py, pz, e = (parts[:, k] for k in range(4))
    # Jet four-momentum is the E-scheme sum of all constituents (as FastJet's anti-kT jet).
    seg = np.repeat(np.arange(n_jets), counts)
    jet_p4 = np.stack([np.bincount(seg, w, minlength=n_jets) for w in (px, py, pz, e)], axis=1)
    jet_pt, jet_eta, jet_phi, jet_mass = _kinematics(*jet_p4.T)

    ppt, peta, pphi, _ = _kinematics(px, py, pz, e)
    fields = {
        "part_px": px,
        "part_py": py,
        "part_pz": pz,
        "part_energy": e,
        "part_deta": peta - jet_eta[seg],
        "part_dphi": delta_phi(pphi, jet_phi[seg]),
        "part_charge": parts[:, 5],
        **pid_flags(np.abs(parts[:, 4]).astype(np.int64), parts[:, 5]),
    }
    # pT-order constituents within each jet, then keep the leading max_particles.
    order = np.lexsort((-ppt, seg))
    rank = np.arange(len(seg)) - np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    keep = order[rank < selection.max_particles]
    kept_counts = np.minimum(counts, selection.max_particles)
    record = {
        name: ak.unflatten(fields[name][keep].astype(np.float32), kept_counts) for name in PARTICLE_BRANCHES
    }

    sub = substructure(ak.unflatten(ak.zip({"px": px, "py": py, "pz": pz, "E": e}), counts), selection)
    record.update(
        jet_pt=jet_pt,
        jet_eta=jet_eta,
        jet_phi=jet_phi,
        jet_energy=jet_p4[:, 3],
        jet_mass=jet_mass,
        jet_nparticles=counts.astype(np.int32),
        **sub,
    )
    for proc, branch in LABEL_BRANCHES.items():
        record[branch] = np.full(n_jets, int(proc == process), dtype=np.int32)
    return ak.zip(record, depth_limit=1)


def substructure(constituents: ak.Array, selection: JetSelection) -> dict[str, np.ndarray]:
    """Soft-drop mass (beta = 0, z_cut = 0.1) and tau1..tau4 of each jet, from fjcontrib.

    Each jet's constituents are reclustered as one event with C/A (R large enough to keep
    them in one jet); N-subjettiness uses one-pass kT axes, normalised measure, beta = 1.
    """
    fastjet = _fastjet()
    cs = fastjet.ClusterSequence(constituents, fastjet.JetDefinition(fastjet.cambridge_algorithm, 10.0))
    sd = cs.exclusive_jets_softdrop_grooming(njets=1, beta=0.0, symmetry_cut=0.1, R0=selection.radius)
    taus = ak.to_numpy(cs.njettiness(njets=[1, 2, 3, 4], R0=selection.radius, beta=1.0))
    out = {"jet_sdmass": ak.to_numpy(sd.msoftdrop).astype(np.float64)}
    out.update({f"jet_tau{k + 1}": taus[:, k] for k in range(4)})
    return out


def empty_jets() -> ak.Array:
    """A zero-length jet array with every schema field, for empty shards."""
    from jetfm.backbone.data.schema import JET_BRANCHES

    record: dict[str, object] = {
        name: ak.unflatten(np.zeros(0, np.float32), np.zeros(0, np.int64)) for name in PARTICLE_BRANCHES
    }
    record.update({name: np.zeros(0, np.float32) for name in JET_BRANCHES})
    record.update({name: np.zeros(0, np.int32) for name in LABEL_BRANCHES.values()})
    return ak.zip(record, depth_limit=1)
