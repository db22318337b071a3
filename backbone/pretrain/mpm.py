"""Masked particle modelling: hide some particles of each jet, predict their codebook tokens.

A fraction of the real particles of every jet (at least one, never padding) is *hidden*. A hidden
particle keeps its slot in attention, but nothing of what it is reaches the encoder:

- its embedding is replaced by a learned mask token after the particle embedding, and it is left
  out of that embedding's batch norm (so the norm's running statistics stay those of real
  particles, which the pretrained encoder later uses on unmasked jets);
- every pair bias involving it is zero, i.e. its four-vector is never read (pair features such
  as ln dR or ln m^2 would otherwise give its position and momentum away).

The visible particles' own features (log pT/pT_jet, deta, ...) are relative to the whole jet, so
they constrain the hidden particles *collectively* (e.g. the pT they carry together): that is
context about the jet, as a sentence's length is in masked language modelling, not a leak of any
one particle. The encoder has no positional information, so nothing depends on particle order.

The head predicts the k-means token (``backbone.pretrain.codebook``) of each hidden particle with
a cross-entropy loss, plus, with a small weight, a regression of its standardised codebook
columns. ``particle_log_likelihood`` turns the same head into a per-jet anomaly score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backbone.encoder import JetEncoder
from backbone.pretrain.base import Objective, register_objective
from backbone.pretrain.codebook import DEFAULT_COLUMNS, ParticleCodebook, sample_particles


def sample_hidden(mask: Tensor, fraction: float, generator: torch.Generator | None = None) -> Tensor:
    """(B, P) bool: round(fraction * n) of the n real particles of each jet, at least one, chosen
    uniformly at random; never a padded slot."""
    count = (fraction * mask.sum(1, keepdim=True)).round().clamp_min(1)
    return mask & (random_rank(mask, generator) < count)


def random_rank(mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """(B, P) int64: a uniformly random order 0..n-1 of each jet's real particles (padding ranks last)."""
    scores = torch.rand(mask.shape, generator=generator, device=mask.device).masked_fill(~mask, 2.0)
    return scores.argsort(1).argsort(1)


def encode_hidden(
    encoder: JetEncoder, features: Tensor, vectors: Tensor, mask: Tensor, hidden: Tensor, mask_token: Tensor
) -> Tensor:
    """``encoder.forward_particles`` with the ``hidden`` particles replaced by ``mask_token``: the
    particle and pair embeddings see only the visible particles (see the encoder's ``hidden``)."""
    return encoder.forward_particles(features, vectors, mask, hidden=hidden, mask_token=mask_token)


def _mlp(dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out_dim))


@register_objective
class MaskedParticleObjective(Objective):
    """MPM around ``encoder``; call ``prepare(data)`` once to fit the codebook before training."""

    name = "mpm"

    def __init__(
        self,
        encoder: JetEncoder,
        mask_fraction: float = 0.4,
        num_codes: int = 512,
        codebook_columns: Sequence[str] = DEFAULT_COLUMNS,
        regression_weight: float = 0.1,
        codebook_samples: int = 200_000,
    ) -> None:
        super().__init__(encoder)
        if not 0.0 < mask_fraction < 1.0:
            raise ValueError(f"mask_fraction must be in (0, 1), got {mask_fraction}")
        if regression_weight < 0:
            raise ValueError(f"regression_weight must be >= 0 (0 turns the regression off), got {regression_weight}")
        self.mask_fraction = mask_fraction
        self.regression_weight = regression_weight
        self.codebook_samples = codebook_samples
        self.codebook = ParticleCodebook(num_codes, codebook_columns)
        dim = encoder.config.embed_dim
        self.mask_token = nn.Parameter(torch.zeros(dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.token_head = _mlp(dim, num_codes)
        self.regression_head = _mlp(dim, len(self.codebook.columns)) if regression_weight > 0 else None

    def prepare(self, data: Any, seed: int = 0) -> None:
        """Fits the codebook on a random sample of at most ``codebook_samples`` particles of ``data``."""
        self.codebook.fit(sample_particles(data, self.codebook_samples, seed), seed=seed)

    def objective_config(self) -> dict[str, Any]:
        return {
            "mask_fraction": self.mask_fraction,
            "num_codes": self.codebook.num_codes,
            "codebook_columns": list(self.codebook.columns),
            "regression_weight": self.regression_weight,
            "codebook_samples": self.codebook_samples,
        }

    def hidden_states(self, batch: dict[str, Tensor], hidden: Tensor) -> Tensor:
        """(M, D) encoder outputs of the M hidden particles, in ``hidden.nonzero()`` order."""
        outputs = encode_hidden(
            self.encoder, batch["features"], batch["vectors"], batch["mask"], hidden, self.mask_token
        )
        return outputs[hidden]

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        return self.masked_loss(batch, sample_hidden(batch["mask"], self.mask_fraction))

    def masked_loss(self, batch: dict[str, Tensor], hidden: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Loss and metrics for a given (B, P) choice of ``hidden`` particles."""
        states = self.hidden_states(batch, hidden)
        targets = self.codebook.assign(batch["features"], batch["mask"])[hidden]
        logits = self.token_head(states).float()
        token_loss = F.cross_entropy(logits, targets)
        metrics = {
            "token_loss": float(token_loss.detach()),
            "masked_accuracy": float((logits.argmax(-1) == targets).float().mean()),
        }
        loss = token_loss
        if self.regression_head is not None:
            truth = self.codebook.standardise(batch["features"])[hidden]
            regression_loss = F.mse_loss(self.regression_head(states).float(), truth)
            metrics["regression_loss"] = float(regression_loss.detach())
            loss = loss + self.regression_weight * regression_loss
        return loss, metrics

    @torch.no_grad()
    def particle_log_likelihood(self, batch: dict[str, Tensor], n_passes: int = 3, seed: int = 0) -> Tensor:
        """(B,) mean over each jet's particles of log p(true token | particle hidden); higher = more typical.

        The particles of each jet are split at random into ``n_passes`` groups and each group is
        hidden in one pass, so every particle is scored exactly once, with about 1/n_passes of its
        jet hidden (training hides ``mask_fraction``). Runs in eval mode; jets without particles score 0.
        """
        was_training = self.training
        self.eval()
        try:
            mask = batch["mask"]
            tokens = self.codebook.assign(batch["features"], mask)
            rank = random_rank(mask, torch.Generator(device=mask.device).manual_seed(seed))
            total = torch.zeros(mask.size(0), device=mask.device)
            for group in range(n_passes):
                hidden = mask & (rank % n_passes == group)
                log_probs = self.token_head(self.hidden_states(batch, hidden)).float().log_softmax(-1)
                scores = log_probs.gather(1, tokens[hidden][:, None]).squeeze(1)
                total.index_add_(0, hidden.nonzero()[:, 0], scores)
        finally:
            self.train(was_training)
        return total / mask.sum(1).clamp_min(1)
