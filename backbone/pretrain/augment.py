"""Physics augmentations of jet batches for contrastive pretraining (after JetCLR, arXiv:2108.04253).

Every augmentation works on the four-vectors of a whole batch at once and returns jets that are
again pT-ordered and front-packed in the same number of slots (the softest particles are dropped
when a split overflows them). The model features are then recomputed from the new four-vectors by
:func:`features_from_vectors`, the one torch mirror of ``backbone.data.features``, so features and
vectors can never disagree. Charge and particle-ID columns travel with their particle (a split
particle's two pieces keep its flags).

- :func:`rotate`: rotation in the (eta, phi) plane about the jet axis (jets have no preferred
  orientation there);
- :func:`translate`: shift of the whole jet in (eta, phi);
- :func:`smear_pt`: pT resolution sigma/pT = a/sqrt(E) (+) b, so soft particles move most;
- :func:`soft_split` and :func:`collinear_split`: replace a particle by two exactly collinear
  pieces with momentum fractions z and 1 - z; the jet four-momentum is unchanged, and so is
  every IR- and collinear-safe observable. ``soft_split`` picks among the softer half of a jet,
  ``collinear_split`` among all particles.

Randomness comes from ``generator`` or, when it is None, torch's global RNG (which the Trainer
saves and restores, so resumed runs draw the same views).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from jetfm.backbone.data.features import KINEMATIC_FEATURES

# The same floor as backbone.data.features: log(0) would give -inf.
_LOG_FLOOR = 1e-8


class Particles(NamedTuple):
    """A batch of padded jets: four-vectors (B, P, 4), mask (B, P) and per-particle columns carried
    unchanged (charge and PID flags; (B, P, 0) when the model sees kinematics only)."""

    vectors: Tensor
    mask: Tensor
    extra: Tensor


def pt_eta_phi_mass(vectors: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Transverse momentum, pseudorapidity, azimuth and mass of (..., 4) four-vectors."""
    px, py, pz, energy = vectors.unbind(-1)
    pt = torch.hypot(px, py)
    eta = torch.asinh(pz / pt.clamp_min(_LOG_FLOOR))
    mass = (energy.square() - px.square() - py.square() - pz.square()).clamp_min(0).sqrt()
    return pt, eta, torch.atan2(py, px), mass


def from_pt_eta_phi_mass(pt: Tensor, eta: Tensor, phi: Tensor, mass: Tensor) -> Tensor:
    pz = pt * torch.sinh(eta)
    energy = (pt.square() + pz.square() + mass.square()).sqrt()
    return torch.stack([pt * torch.cos(phi), pt * torch.sin(phi), pz, energy], dim=-1)


def wrap_phi(phi: Tensor) -> Tensor:
    return torch.remainder(phi + math.pi, 2 * math.pi) - math.pi


def jet_axis(vectors: Tensor, mask: Tensor) -> Tensor:
    """(B, 4) four-momentum sum of the real particles (the E-scheme jet, as the generator stores)."""
    return (vectors * mask[..., None]).sum(1)


def features_from_vectors(vectors: Tensor, mask: Tensor, extra: Tensor | None = None) -> Tensor:
    """ParT's kinematic features (B, P, 7) from four-vectors, zero on padding, in the order of
    ``backbone.data.features.KINEMATIC_FEATURES``; ``extra`` (B, P, E) columns are appended.

    Jet pT, energy and axis are those of the particles present; ``make_tensors`` uses the stored
    jet, which is the same unless the jet had more than ``max_particles`` constituents.
    """
    vectors = vectors.float()
    pt, eta, phi, _ = pt_eta_phi_mass(vectors)
    energy = vectors[..., 3]
    jet = jet_axis(vectors, mask)
    jet_pt, jet_eta, jet_phi, _ = pt_eta_phi_mass(jet)
    jet_energy = jet[:, 3]
    log_pt = torch.log(pt.clamp_min(_LOG_FLOOR))
    log_energy = torch.log(energy.clamp_min(_LOG_FLOOR))
    deta = eta - jet_eta[:, None]
    dphi = wrap_phi(phi - jet_phi[:, None])
    columns = [
        log_pt,
        log_energy,
        log_pt - torch.log(jet_pt.clamp_min(_LOG_FLOOR))[:, None],
        log_energy - torch.log(jet_energy.clamp_min(_LOG_FLOOR))[:, None],
        torch.hypot(deta, dphi),
        deta,
        dphi,
    ]
    features = torch.stack(columns, dim=-1)
    if extra is not None:
        features = torch.cat([features, extra.to(features.dtype)], dim=-1)
    return features * mask[..., None]


def sort_by_pt(particles: Particles, slots: int) -> Particles:
    """pT-ordered, front-packed jets in ``slots`` slots: the softest particles beyond them are dropped."""
    pt = torch.hypot(particles.vectors[..., 0], particles.vectors[..., 1])
    order = torch.argsort(pt.masked_fill(~particles.mask, -1.0), dim=1, descending=True, stable=True)[:, :slots]
    mask = particles.mask.gather(1, order)

    def take(values: Tensor) -> Tensor:
        return values.gather(1, order[..., None].expand(-1, -1, values.size(-1))) * mask[..., None]

    return Particles(take(particles.vectors), mask, take(particles.extra))


def _uniform(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)


def _normal(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)


def _relative_coordinates(particles: Particles) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """pT, mass, (eta, phi) of the jet axis (B, 1) and (deta, dphi) of the particles from it."""
    pt, eta, phi, mass = pt_eta_phi_mass(particles.vectors)
    _, jet_eta, jet_phi, _ = pt_eta_phi_mass(jet_axis(particles.vectors, particles.mask))
    jet_eta, jet_phi = jet_eta[:, None], jet_phi[:, None]
    return pt, mass, jet_eta, jet_phi, eta - jet_eta, wrap_phi(phi - jet_phi)


def _rebuild(particles: Particles, pt: Tensor, eta: Tensor, phi: Tensor, mass: Tensor) -> Particles:
    vectors = from_pt_eta_phi_mass(pt, eta, phi, mass) * particles.mask[..., None]
    return sort_by_pt(Particles(vectors, particles.mask, particles.extra), particles.mask.size(1))


def rotate(particles: Particles, generator: torch.Generator | None = None) -> Particles:
    """Rotates each jet by a uniform random angle in the (eta, phi) plane about its axis."""
    pt, mass, jet_eta, jet_phi, deta, dphi = _relative_coordinates(particles)
    angle = 2 * math.pi * _uniform((pt.size(0), 1), pt, generator)
    cos, sin = torch.cos(angle), torch.sin(angle)
    eta = jet_eta + cos * deta - sin * dphi
    phi = wrap_phi(jet_phi + sin * deta + cos * dphi)
    return _rebuild(particles, pt, eta, phi, mass)


def translate(particles: Particles, std: float = 0.5, generator: torch.Generator | None = None) -> Particles:
    """Shifts each jet as a whole by Gaussian (delta eta, delta phi) of width ``std``."""
    pt, eta, phi, mass = pt_eta_phi_mass(particles.vectors)
    shift = std * _normal((pt.size(0), 2, 1), pt, generator)
    return _rebuild(particles, pt, eta + shift[:, 0], wrap_phi(phi + shift[:, 1]), mass)


def smear_pt(
    particles: Particles, stochastic: float = 0.2, constant: float = 0.01, generator: torch.Generator | None = None
) -> Particles:
    """Multiplies each pT by 1 + sigma * N(0, 1), sigma = stochastic/sqrt(E/GeV) (+) constant in
    quadrature (a calorimeter-like resolution: soft particles are smeared most)."""
    pt, eta, phi, mass = pt_eta_phi_mass(particles.vectors)
    energy = particles.vectors[..., 3].clamp_min(_LOG_FLOOR)
    sigma = torch.hypot(stochastic / energy.sqrt(), torch.full_like(energy, constant))
    scale = (1 + sigma * _normal(tuple(pt.shape), pt, generator)).clamp_min(0.01)  # pT stays positive
    return _rebuild(particles, pt * scale, eta, phi, mass)


def soft_split(particles: Particles, probability: float = 0.3, generator: torch.Generator | None = None) -> Particles:
    """Splits each particle of the softer half of its jet (pT at most the jet's median) with
    ``probability`` into two collinear pieces."""
    pt = torch.hypot(particles.vectors[..., 0], particles.vectors[..., 1])
    median = torch.nanquantile(pt.masked_fill(~particles.mask, float("nan")), 0.5, dim=1, keepdim=True)
    return _split(particles, particles.mask & (pt <= median), probability, generator)


def collinear_split(
    particles: Particles, probability: float = 0.1, generator: torch.Generator | None = None
) -> Particles:
    """Splits each particle with ``probability`` into two collinear pieces summing to it."""
    return _split(particles, particles.mask, probability, generator)


def _split(particles: Particles, eligible: Tensor, probability: float, generator: torch.Generator | None) -> Particles:
    """Particle i (if eligible and drawn) becomes z_i * p_i in its slot and (1 - z_i) * p_i in a
    new slot appended after the P slots; then sorted by pT back into P slots."""
    vectors, mask, extra = particles
    chosen = eligible & (_uniform(tuple(mask.shape), vectors, generator) < probability)
    z = torch.where(chosen, _uniform(tuple(mask.shape), vectors, generator), torch.ones_like(vectors[..., 0]))
    pieces = Particles(
        torch.cat([vectors * z[..., None], vectors * (1 - z[..., None])], dim=1),
        torch.cat([mask, chosen], dim=1),
        torch.cat([extra, extra], dim=1),
    )
    return sort_by_pt(pieces, mask.size(1))


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations make a view and how strong they are; 0 turns one off."""

    soft_split_probability: float = 0.3
    collinear_split_probability: float = 0.1
    smear_stochastic: float = 0.2  # sigma/pT = smear_stochastic / sqrt(E/GeV) (+) smear_constant
    smear_constant: float = 0.01
    rotate: bool = True
    translate_std: float = 0.5


def augment(
    batch: dict[str, Tensor], config: AugmentConfig | None = None, generator: torch.Generator | None = None
) -> dict[str, Tensor]:
    """A randomly augmented copy of a batch (same keys and shapes), features recomputed."""
    config = AugmentConfig() if config is None else config
    particles = Particles(batch["vectors"].float(), batch["mask"], batch["features"][..., len(KINEMATIC_FEATURES) :])
    if config.soft_split_probability > 0:
        particles = soft_split(particles, config.soft_split_probability, generator)
    if config.collinear_split_probability > 0:
        particles = collinear_split(particles, config.collinear_split_probability, generator)
    if config.smear_stochastic > 0 or config.smear_constant > 0:
        particles = smear_pt(particles, config.smear_stochastic, config.smear_constant, generator)
    if config.rotate:
        particles = rotate(particles, generator)
    if config.translate_std > 0:
        particles = translate(particles, config.translate_std, generator)
    features = features_from_vectors(particles.vectors, particles.mask, particles.extra)
    return {**batch, "features": features, "vectors": particles.vectors, "mask": particles.mask}
