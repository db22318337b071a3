"""A k-means codebook of particles: turns each particle of a jet into one of ``num_codes`` tokens.

Shared by the masked-particle (MPM) and next-token (NTP) objectives, which predict token ids.

Only the features that describe a particle *within its jet* are clustered, by default
``log pT/pT_jet, log E/E_jet, deta, dphi`` (the absolute ``log pT``/``log E`` would spend codes on
the jet's own pT; ``dR`` is a function of deta and dphi). Columns are standardised with the mean
and standard deviation of the fitting sample first, so that no column dominates the distances.

Everything the codebook holds (centroids, mean, std) is a buffer, so it is saved and loaded with
the objective's heads. Fitting uses FAISS on the CPU; ``assign`` and ``decode`` are plain torch and
run on any device.

Usage::

    codebook = ParticleCodebook(num_codes=512)
    codebook.fit(sample_particles(cache, max_samples=200_000, seed=0), seed=0)
    ids = codebook.assign(batch["features"], batch["mask"])   # (B, P) int64, IGNORE_INDEX on padding
    centres = codebook.decode(ids)                             # (B, P, C) in the columns' own units
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from jetfm.backbone.data.features import CHARGE_PID_FEATURES, KINEMATIC_FEATURES
from jetfm.backbone.train import BatchSource
from jetfm.errors import UsageError

# Token id of padded slots: torch's cross_entropy(..., ignore_index=IGNORE_INDEX) skips them.
IGNORE_INDEX = -1
DEFAULT_COLUMNS = ("part_logptrel", "part_logerel", "part_deta", "part_dphi")
# Feature order of the batches (backbone.data.features): kinematics first, then charge and PID.
_ALL_FEATURES = KINEMATIC_FEATURES + CHARGE_PID_FEATURES
# k-means needs several points per centroid to place them sensibly.
_MIN_POINTS_PER_CODE = 4


def feature_indices(columns: Sequence[str]) -> list[int]:
    """Positions of feature names in a batch's ``features`` (B, P, F) channels."""
    unknown = [c for c in columns if c not in _ALL_FEATURES]
    if unknown:
        raise UsageError(f"unknown particle feature(s) {unknown}; choose from {list(_ALL_FEATURES)}")
    return [_ALL_FEATURES.index(c) for c in columns]


def sample_particles(data: BatchSource, max_samples: int = 200_000, seed: int = 0, chunk: int = 4096) -> np.ndarray:
    """Features (N, F) of at most ``max_samples`` real particles from random jets of ``data``.

    Whole jets are read in random chunks until enough particles are collected, so a large cache is
    never read in full; the result is then subsampled uniformly to ``max_samples``.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    parts: list[np.ndarray] = []
    collected = 0
    for start in range(0, len(order), chunk):
        batch = data.batch(np.sort(order[start : start + chunk]))
        real = batch["features"][batch["mask"]]
        parts.append(real.astype(np.float32, copy=False))
        collected += len(real)
        if collected >= max_samples:
            break
    if not collected:
        raise UsageError("the data holds no real particles: cannot fit a codebook")
    particles = np.concatenate(parts)
    if len(particles) > max_samples:
        particles = particles[np.sort(rng.choice(len(particles), max_samples, replace=False))]
    return particles


class ParticleCodebook(nn.Module):
    """``num_codes`` centroids of the standardised ``columns`` of per-particle features."""

    def __init__(self, num_codes: int = 512, columns: Sequence[str] = DEFAULT_COLUMNS) -> None:
        super().__init__()
        if num_codes < 2:
            raise UsageError(f"a codebook needs num_codes >= 2, got {num_codes}")
        self.num_codes = num_codes
        self.columns = tuple(columns)
        self.indices = feature_indices(self.columns)
        width = len(self.columns)
        self.register_buffer("centroids", torch.zeros(num_codes, width))  # standardised units
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.zeros(width))  # zero until fitted

    @property
    def fitted(self) -> bool:
        return bool((self.std > 0).all())

    def fit(self, particles: np.ndarray | Tensor, seed: int = 0, niter: int = 20) -> ParticleCodebook:
        """k-means (FAISS, seeded) on ``particles`` (N, F): features of real particles only."""
        import faiss

        points = self._select(torch.as_tensor(particles, dtype=torch.float32).cpu()).numpy()
        if len(points) < _MIN_POINTS_PER_CODE * self.num_codes:
            raise UsageError(
                f"{len(points)} particles are too few for {self.num_codes} codes; use more data or fewer codes "
                f"(at least {_MIN_POINTS_PER_CODE * self.num_codes})"
            )
        mean, std = points.mean(0), points.std(0)
        std = np.where(std > 1e-6, std, 1.0)  # a constant column (e.g. an unused PID flag) stays at 0
        points = np.ascontiguousarray((points - mean) / std, dtype=np.float32)
        kmeans = faiss.Kmeans(points.shape[1], self.num_codes, niter=niter, seed=seed, verbose=False)
        kmeans.train(points)
        for name, value in (("centroids", kmeans.centroids), ("mean", mean), ("std", std)):
            getattr(self, name).copy_(torch.as_tensor(np.asarray(value, dtype=np.float32)))
        return self

    def standardise(self, features: Tensor) -> Tensor:
        """(..., F) batch features -> (..., C) standardised codebook columns."""
        self._check_fitted()
        return (self._select(features.float()) - self.mean) / self.std

    @torch.no_grad()
    def assign(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        """Nearest-centroid ids (...,) int64 of (..., F) features; IGNORE_INDEX where ``mask`` is False."""
        points = self.standardise(features)
        flat = points.reshape(-1, points.size(-1))
        ids = torch.cdist(flat, self.centroids).argmin(-1).view(points.shape[:-1])
        return ids if mask is None else ids.masked_fill(~mask, IGNORE_INDEX)

    def decode(self, ids: Tensor) -> Tensor:
        """Centroids (..., C) in the columns' own units for token ids (...,); zeros on IGNORE_INDEX."""
        self._check_fitted()
        valid = ids != IGNORE_INDEX
        centres = self.centroids[ids.clamp_min(0)] * self.std + self.mean
        return centres * valid[..., None]

    def _select(self, features: Tensor) -> Tensor:
        if features.size(-1) <= max(self.indices):
            raise UsageError(
                f"codebook columns {self.columns} need {max(self.indices) + 1} feature channels, the data has "
                f"{features.size(-1)}; charge/PID columns need FeatureConfig(include_charge_pid=True)"
            )
        return features[..., self.indices]

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("the codebook is not fitted: call fit(...) (objectives: prepare(data)) first")

    def extra_repr(self) -> str:
        return f"num_codes={self.num_codes}, columns={self.columns}"
