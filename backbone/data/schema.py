"""The jet data schema: JetClass branch names, shared by every reader and writer.

Files we write are ROOT TTrees named ``tree`` with these branches, so JetClass readers read ours
and ours read JetClass. In memory a set of jets is an awkward Array of records with the same
field names (particle fields jagged, jet fields flat).
"""

from __future__ import annotations

import numpy as np

from jetfm.backbone.data.classes import JET_CLASSES, PROCESSES

# The jet pT window [GeV] of generation when none is given (the top-tagging reference's).
DEFAULT_PT_WINDOW = (550.0, 650.0)

TREE_NAME = "tree"

PARTICLE_KINEMATICS = ("part_px", "part_py", "part_pz", "part_energy")
PARTICLE_BRANCHES = (
    *PARTICLE_KINEMATICS,
    "part_deta",
    "part_dphi",
    "part_charge",
    "part_isChargedHadron",
    "part_isNeutralHadron",
    "part_isPhoton",
    "part_isElectron",
    "part_isMuon",
)
PID_FLAGS = (
    "part_isChargedHadron",
    "part_isNeutralHadron",
    "part_isPhoton",
    "part_isElectron",
    "part_isMuon",
)
JET_BRANCHES = (
    "jet_pt",
    "jet_eta",
    "jet_phi",
    "jet_energy",
    "jet_mass",
    "jet_sdmass",
    "jet_nparticles",
    "jet_tau1",
    "jet_tau2",
    "jet_tau3",
    "jet_tau4",
)

# Process names in label order, their one-hot branches and plot titles: from the table of classes.
LABEL_BRANCHES = {c.name: c.label_branch for c in JET_CLASSES}
PROCESS_TITLES = {c.name: c.title for c in JET_CLASSES}
ALL_BRANCHES = (*PARTICLE_BRANCHES, *JET_BRANCHES, *LABEL_BRANCHES.values())

# Generator provenance is stored as a JSON string in this key of the file (an uproot TObjString).
PROVENANCE_KEY = "jetfm_provenance"


def parse_processes(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"top,qcd"`` or ``["top", "qcd"]`` -> validated, de-duplicated process names."""
    from jetfm.backbone.data.errors import DataError

    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip().lower() for n in names if n.strip()]
    if not names:
        raise DataError(f"no process given; choose from {', '.join(PROCESSES)}")
    unknown = [n for n in names if n not in PROCESSES]
    if unknown:
        raise DataError(
            f"unknown process {', '.join(map(repr, unknown))}; choose from {', '.join(PROCESSES)}"
        )
    return list(dict.fromkeys(names))


def pid_flags(abs_pdgid: np.ndarray, charge: np.ndarray) -> dict[str, np.ndarray]:
    """JetClass particle-ID flags from |pdg id| and charge: leptons and photons by id, hadrons by charge."""
    electron, muon, photon = abs_pdgid == 11, abs_pdgid == 13, abs_pdgid == 22
    lepton_or_photon = electron | muon | photon
    return {
        "part_isChargedHadron": ((charge != 0) & ~lepton_or_photon).astype(np.float32),
        "part_isNeutralHadron": ((charge == 0) & ~lepton_or_photon).astype(np.float32),
        "part_isPhoton": photon.astype(np.float32),
        "part_isElectron": electron.astype(np.float32),
        "part_isMuon": muon.astype(np.float32),
    }


def label_indices(jets) -> np.ndarray:
    """Index into PROCESSES of each jet's one-hot label; -1 where none (or more than one) is set.
    A label branch the array lacks counts as 0: files written before a class existed still read."""
    fields, absent = set(jets.fields), np.zeros(len(jets), np.int64)
    columns = [np.asarray(jets[b], dtype=np.int64) if b in fields else absent for b in LABEL_BRANCHES.values()]
    onehot = np.stack(columns, axis=1)
    labels = np.argmax(onehot, axis=1)
    labels[onehot.sum(axis=1) != 1] = -1
    return labels
