"""Contrastive pretraining, JetCLR style (Dillon et al., arXiv:2108.04253; SimCLR's NT-Xent loss).

Two randomly augmented views of every jet (``backbone.pretrain.augment``: rotations, translations,
pT smearing, soft and collinear splittings) go through the encoder and an MLP projection head; the
loss pulls the two views of a jet together and pushes them from the other 2B - 2 views in the
batch. As in SimCLR, the projection is used only for the loss: downstream tasks use the encoder's
jet embedding, which keeps more of what the augmentations change. Soft splits make NT-Xent blind to
a jet's multiplicity, so a linear head on the embedding also regresses each view's mass,
multiplicity and width (``backbone.pretrain.jet_term.jet_content``; weight ``content_weight``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jetfm.backbone.encoder import JetEncoder
from jetfm.backbone.pretrain.augment import AugmentConfig, augment
from jetfm.backbone.pretrain.base import Objective, register_objective
from jetfm.backbone.pretrain.jet_term import CONTENT, content_loss, nt_xent
from jetfm.errors import UsageError


@register_objective
class ContrastiveObjective(Objective):
    """JetCLR around ``encoder``: NT-Xent between two augmented views of each jet."""

    name = "contrastive"
    legacy_config: ClassVar[dict[str, Any]] = {"content_weight": 0.0}

    def __init__(
        self,
        encoder: JetEncoder,
        temperature: float = 0.1,
        projection_dim: int = 128,
        augmentations: dict[str, Any] | None = None,
        content_weight: float = 1.0,
    ) -> None:
        super().__init__(encoder)
        if temperature <= 0:
            raise UsageError(f"temperature must be > 0, got {temperature}")
        if content_weight < 0:
            raise UsageError(f"content_weight must be >= 0 (0 turns the regression off), got {content_weight}")
        self.content_weight = content_weight
        self.temperature = temperature
        self.augmentations = AugmentConfig(**(augmentations or {}))
        dim = encoder.config.embed_dim
        self.projection = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, projection_dim))
        self.content = nn.Linear(dim, len(CONTENT)) if content_weight > 0 else None

    def objective_config(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "projection_dim": self.projection[-1].out_features,
            "augmentations": asdict(self.augmentations),
            "content_weight": self.content_weight,
        }

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        if batch["mask"].size(0) < 2:
            raise UsageError("contrastive pretraining needs at least 2 jets per batch (the others are negatives)")
        views = [augment(batch, self.augmentations) for _ in range(2)]
        features, vectors, mask = (torch.cat([view[key] for view in views]) for key in ("features", "vectors", "mask"))
        # both views in one call: one batch-norm statistic over both, one pass over the encoder
        jets = self.encoder(features, vectors, mask)
        loss, accuracy = nt_xent(F.normalize(self.projection(jets), dim=-1), self.temperature)
        metrics = {"contrastive_loss": float(loss.detach()), "positive_accuracy": float(accuracy)}
        if self.content is not None:
            content = content_loss(self.content, jets, {"features": features, "vectors": vectors, "mask": mask})
            loss = loss + self.content_weight * content
            metrics["content_loss"] = float(content.detach())
        return loss, metrics
