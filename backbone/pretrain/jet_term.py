"""The jet-level term of the particle-level objectives: two views of each jet, one embedding.

What embedding, similarity search, kNN anomaly scores, alignment and finetuning read is the jet
embedding, ``JetEncoder.forward`` (class attention over the particles). A loss on particle outputs
alone (masked particles, next tokens) never reaches the class token and the class-attention blocks,
which then stay at their initialisation: every jet gets nearly the same embedding. So MPM and NTP
add this term. Each jet is seen twice, each view augmented independently (JetCLR's rotations,
translations, pT smearing and soft/collinear splittings: ``backbone.pretrain.augment``) and with a
random part of its particles left out (MPM's two maskings; for NTP two random subsets). The two jet
embeddings go through a small projection, and NT-Xent (SimCLR's loss, as JetCLR uses) pulls the
views of a jet together and pushes them from the other jets of the batch. The embedding must then
hold what a jet's particles agree on (prongs, mass, how the energy is shared) and tell jets apart.
The augmentations matter: without them the views of a jet share its exact eta and pT (every
particle's log E - log pT gives the jet's eta away), and NT-Xent matches views by those alone.

Invariance to masking and soft splits also makes NT-Xent blind to how much a jet holds (its number
of particles, its mass), which is much of what tells jet classes apart. So the embedding of each
masked view also predicts the whole view's content (``jet_content``: log mass, log multiplicity,
pT-weighted width), a regression on quantities computed from the input, not labels.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jetfm.backbone.data.features import KINEMATIC_FEATURES
from jetfm.backbone.pretrain.augment import AugmentConfig, augment
from jetfm.errors import UsageError


def random_rank(mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """(B, P) int64: a uniformly random order 0..n-1 of each jet's real particles (padding ranks last)."""
    scores = torch.rand(mask.shape, generator=generator, device=mask.device).masked_fill(~mask, 2.0)
    return scores.argsort(1).argsort(1)


def sample_hidden(mask: Tensor, fraction: float, generator: torch.Generator | None = None) -> Tensor:
    """(B, P) bool: round(fraction * n) of the n real particles of each jet, at least one, chosen
    uniformly at random; never a padded slot."""
    count = (fraction * mask.sum(1, keepdim=True)).round().clamp_min(1)
    return mask & (random_rank(mask, generator) < count)


def nt_xent(embeddings: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """NT-Xent loss of (2B, d) L2-normalised embeddings where rows i and i + B are two views of one
    jet, and the positive-pair accuracy (is the other view the nearest of the 2B - 1 others)."""
    n = embeddings.size(0)
    similarity = (embeddings.float() @ embeddings.float().T) / temperature
    self_pairs = torch.eye(n, dtype=torch.bool, device=embeddings.device)
    similarity = similarity.masked_fill(self_pairs, float("-inf"))
    positives = torch.arange(n, device=embeddings.device).roll(n // 2)
    loss = F.cross_entropy(similarity, positives)
    accuracy = (similarity.argmax(-1) == positives).float().mean()
    return loss, accuracy


_DELTA_R = KINEMATIC_FEATURES.index("part_deltaR")
CONTENT = ("log_mass", "log_multiplicity", "width")


def jet_content(batch: dict[str, Tensor]) -> Tensor:
    """(B, 3) what each whole jet of ``batch`` holds: log of its mass, log of its number of
    particles, and its pT-weighted width sum_i pT_i dR_i / sum_i pT_i."""
    mask = batch["mask"]
    vectors = batch["vectors"].float() * mask[..., None]
    jet = vectors.sum(1)
    mass2 = jet[:, 3].square() - jet[:, :3].square().sum(-1)
    pt = torch.hypot(vectors[..., 0], vectors[..., 1])
    width = (pt * batch["features"][..., _DELTA_R].float()).sum(1) / pt.sum(1).clamp_min(1e-8)
    return torch.stack([0.5 * mass2.clamp_min(1e-4).log(), mask.sum(1).clamp_min(1).float().log(), width], dim=-1)


def content_loss(head: nn.Module, jets: Tensor, views: dict[str, Tensor]) -> Tensor:
    """MSE of ``head``'s prediction from the jet embeddings (N, D) of the ``jet_content`` of the N
    whole jets ``views``, each quantity standardised over the batch."""
    target = jet_content(views)
    target = (target - target.mean(0)) / target.std(0).clamp_min(1e-6)
    return F.mse_loss(head(jets).float(), target)


class JetViewTerm(nn.Module):
    """NT-Xent between projections of the jet embeddings (2B, D) of two views of B jets."""

    def __init__(self, dim: int, temperature: float = 0.1, augmentations: dict[str, Any] | None = None) -> None:
        super().__init__()
        if temperature <= 0:
            raise UsageError(f"the jet term's temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.augmentations = AugmentConfig(**(augmentations or {}))
        self.projection = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.content = nn.Linear(dim, len(CONTENT))

    def settings(self) -> dict[str, Any]:
        return {"jet_temperature": self.temperature, "jet_augmentations": asdict(self.augmentations)}

    def views(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Two independently augmented copies of the model inputs of ``batch`` (2B jets): rows i
        and i + B are views of one jet."""
        views = [augment(batch, self.augmentations) for _ in range(2)]
        return {name: torch.cat([view[name] for view in views]) for name in ("features", "vectors", "mask")}

    def forward(self, jets: Tensor, views: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Loss of the jet embeddings (2B, D) of (masked) ``views`` (2B whole jets, from ``views``)."""
        contrast, accuracy = nt_xent(F.normalize(self.projection(jets), dim=-1), self.temperature)
        content = content_loss(self.content, jets, views)
        metrics = {"jet_loss": float(contrast.detach()), "jet_view_accuracy": float(accuracy)}
        return contrast + content, {**metrics, "jet_content_loss": float(content.detach())}
