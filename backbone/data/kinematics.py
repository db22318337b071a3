"""Four-momentum kinematics of numpy arrays, through scikit-hep ``vector``: the one place jetfm turns
(px, py, pz, E) into pT, eta, phi and mass."""

from __future__ import annotations

import numpy as np
import vector


def momenta(px: np.ndarray, py: np.ndarray, pz: np.ndarray, e: np.ndarray) -> vector.MomentumNumpy4D:
    return vector.array({"px": px, "py": py, "pz": pz, "E": e})


def pt_eta_phi_mass(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray, e: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """pT, pseudorapidity, azimuth and mass. A particle with no transverse momentum gets eta 0 (not
    +-inf), and rounding that makes m^2 slightly negative for a massless particle gives mass 0."""
    p4 = momenta(*(np.asarray(x, np.float64) for x in (px, py, pz, e)))
    pt = p4.pt
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, p4.eta, 0.0)
    mass = np.sqrt(np.maximum(p4.tau2, 0.0))
    return pt, eta, p4.phi, mass


def transverse_momentum(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    return vector.array({"px": px, "py": py}).rho


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """An azimuthal difference folded into [-pi, pi)."""
    return (np.asarray(dphi) + np.pi) % (2 * np.pi) - np.pi
