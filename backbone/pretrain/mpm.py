"""Masked particle modelling (MPM v2, after Leigh et al.'s jetssl, 2024): hide some particles of each
jet, predict each hidden particle's codebook token from the others.

A fraction of the real particles of every jet (at least one, never padding) is *hidden*. The
encoder sees only the visible particles: a hidden one is left out entirely (features, four-vector,
pair biases, batch-norm statistics), as if the jet had never had it. A small decoder then gets one
slot per real particle: the encoder's output for a visible particle, a learned mask token for a
hidden one, each plus an embedding of the particle's pT rank in its jet, and, as one more token,
the jet embedding of the visible particles. Its self-attention fills in the hidden slots; the head
predicts each hidden particle's k-means token (``backbone.pretrain.codebook``; cross-entropy), plus,
with a small weight, a regression of its standardised codebook columns.

The pT rank is what tells two hidden particles of a jet apart. Without it (MPM v1: the mask token
went through the encoder, no pair bias, no position) all hidden particles of a jet got the same
output, so the model could only predict one token distribution per jet. The rank says how hard a
particle is relative to the others (the visible particles' own pT brackets it), not where it is:
the (deta, dphi) half of the token has to come from the jet's structure. The visible particles'
features (log pT/pT_jet, ...) are relative to the whole jet, so they constrain the hidden particles
collectively (e.g. the pT they carry together): context about the jet, as a sentence's length is in
masked language modelling, not a leak of any one particle.

Every step also trains the jet embedding (``backbone.pretrain.jet_term``): each jet is augmented and
masked twice (both views train the particle loss), and NT-Xent pulls the jet embeddings of the two
visible sets together. ``particle_log_likelihood`` turns the head into a per-jet anomaly score, one
masked particle at a time.

``decoder_layers=0`` is MPM v1, kept only so that models pretrained with it still load and score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jetfm.backbone.encoder import Block, JetEncoder, class_attention_bias, packing_order
from jetfm.backbone.pretrain.base import Objective, register_objective
from jetfm.backbone.pretrain.codebook import DEFAULT_COLUMNS, ParticleCodebook, sample_particles
from jetfm.backbone.pretrain.jet_term import JetViewTerm, random_rank, sample_hidden
from jetfm.errors import UsageError

__all__ = ["MaskedParticleObjective", "encode_hidden", "pt_rank", "random_rank", "sample_hidden"]


def pt_rank(vectors: Tensor, mask: Tensor) -> Tensor:
    """(B, P) int64: each real particle's rank in its jet by decreasing pT (0 = hardest), read off
    the four-vectors, so it follows the particles whatever their slots; padding ranks last."""
    pt = torch.hypot(vectors[..., 0], vectors[..., 1]).float().masked_fill(~mask, -1.0)
    return torch.argsort(pt, dim=1, descending=True, stable=True).argsort(1)


def encode_hidden(
    encoder: JetEncoder, features: Tensor, vectors: Tensor, mask: Tensor, hidden: Tensor, mask_token: Tensor
) -> Tensor:
    """MPM v1: ``encoder.forward_particles`` with the ``hidden`` particles replaced by ``mask_token``
    (the particle and pair embeddings see only the visible particles; see the encoder's ``hidden``)."""
    return encoder.forward_particles(features, vectors, mask, hidden=hidden, mask_token=mask_token)


def _mlp(dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out_dim))


@register_objective
class MaskedParticleObjective(Objective):
    """MPM around ``encoder``; call ``prepare(data)`` once to fit the codebook before training."""

    name = "mpm"
    legacy_config: ClassVar[dict[str, Any]] = {"decoder_layers": 0, "jet_weight": 0.0}

    def __init__(
        self,
        encoder: JetEncoder,
        mask_fraction: float = 0.4,
        num_codes: int = 512,
        codebook_columns: Sequence[str] = DEFAULT_COLUMNS,
        regression_weight: float = 0.1,
        codebook_samples: int = 200_000,
        decoder_layers: int = 2,
        jet_weight: float = 1.0,
        jet_temperature: float = 0.1,
        jet_augmentations: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(encoder)
        if not 0.0 < mask_fraction < 1.0:
            raise UsageError(f"mask_fraction must be in (0, 1), got {mask_fraction}")
        if regression_weight < 0:
            raise UsageError(f"regression_weight must be >= 0 (0 turns the regression off), got {regression_weight}")
        if decoder_layers < 0:
            raise UsageError(f"decoder_layers must be >= 1 (0 is MPM v1, for old models), got {decoder_layers}")
        if jet_weight < 0:
            raise UsageError(f"jet_weight must be >= 0 (0 turns the jet-level term off), got {jet_weight}")
        self.mask_fraction = mask_fraction
        self.regression_weight = regression_weight
        self.codebook_samples = codebook_samples
        self.jet_weight = jet_weight
        self.codebook = ParticleCodebook(num_codes, codebook_columns)
        config = encoder.config
        dim = config.embed_dim
        self.mask_token = nn.Parameter(torch.zeros(dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.decoder: nn.ModuleList | None = None
        if decoder_layers:
            # N(0, 1) at init, as large as the encoder outputs: distinct ranks are told apart from step one
            self.rank_embedding = nn.Embedding(config.max_particles, dim)
            self.decoder = nn.ModuleList(Block(config, drop_path=0.0) for _ in range(decoder_layers))
            self.decoder_norm = nn.LayerNorm(dim)
        self.jet_term = JetViewTerm(dim, jet_temperature, jet_augmentations) if jet_weight > 0 else None
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
            "decoder_layers": len(self.decoder) if self.decoder is not None else 0,
            "jet_weight": self.jet_weight,
            **(self.jet_term.settings() if self.jet_term is not None else {}),
        }

    def hidden_states(self, batch: dict[str, Tensor], hidden: Tensor) -> tuple[Tensor, Tensor | None]:
        """(M, D) states of the M hidden particles, in ``hidden.nonzero()`` order, and the (B, D)
        jet embeddings of the visible particles (None for MPM v1, which has none)."""
        features, vectors, mask = batch["features"], batch["vectors"], batch["mask"]
        if self.decoder is None:
            return encode_hidden(self.encoder, features, vectors, mask, hidden, self.mask_token)[hidden], None
        particles, jets = self.encoder.encode(features, vectors, mask & ~hidden)
        return self.decode(particles, jets, pt_rank(vectors, mask), mask, hidden), jets

    def decode(self, particles: Tensor, jets: Tensor, rank: Tensor, mask: Tensor, hidden: Tensor) -> Tensor:
        """Decoder states (M, D) of the hidden particles from the encoder's outputs (B, P, D) for the
        visible ones, the jet embeddings (B, D) and every particle's pT rank (B, P)."""
        slots = torch.where(hidden[..., None], self.mask_token.to(particles.dtype), particles)
        slots = slots + self.rank_embedding(rank.clamp_max(self.rank_embedding.num_embeddings - 1))
        # Real slots to the front (in order, so hidden ones come out in hidden.nonzero() order).
        order = packing_order(mask)
        slots = slots.gather(1, order[..., None].expand(-1, -1, slots.size(-1)))
        real, hidden = mask.gather(1, order), hidden.gather(1, order)
        tokens = torch.cat([jets[:, None].to(slots.dtype), slots], dim=1)
        bias = class_attention_bias(real, tokens.dtype)  # every slot sees the jet token and the real slots
        for block in self.decoder:
            tokens = block(tokens, bias)
        return self.decoder_norm(tokens[:, 1:])[hidden]

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        if self.decoder is None and self.training:
            raise UsageError(
                "this MPM model is v1 (decoder_layers=0), kept only to load old models: its masked particles "
                "cannot be told apart; pretrain a new one with decoder_layers >= 1"
            )
        if self.jet_term is not None:
            batch = self.jet_term.views(batch)  # two augmented views of every jet, masked independently
        hidden = sample_hidden(batch["mask"], self.mask_fraction)
        states, jets = self.hidden_states(batch, hidden)
        loss, metrics = self.particle_loss(batch, hidden, states)
        if self.jet_term is not None:
            jet_loss, jet_metrics = self.jet_term(jets, batch)
            loss = loss + self.jet_weight * jet_loss
            metrics.update(jet_metrics)
        return loss, metrics

    def masked_loss(self, batch: dict[str, Tensor], hidden: Tensor) -> tuple[Tensor, dict[str, float]]:
        """The particle-level loss and metrics for a given (B, P) choice of ``hidden`` particles."""
        return self.particle_loss(batch, hidden, self.hidden_states(batch, hidden)[0])

    def particle_loss(
        self, batch: dict[str, Tensor], hidden: Tensor, states: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        targets = self.codebook.assign(batch["features"], batch["mask"])[hidden]
        logits = self.token_head(states).float()
        token_loss = F.cross_entropy(logits, targets)
        metrics = {
            "token_loss": float(token_loss.detach()),
            "masked_accuracy": float((logits.argmax(-1) == targets).float().mean()),
            "majority_accuracy": majority_accuracy(targets, hidden.nonzero()[:, 0], self.codebook.num_codes),
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
        """(B,) mean over each jet's particles of log p(its true token | it is hidden); higher = more typical.

        The particles of each jet are split at random into ``n_passes`` groups and each group is
        hidden in one pass, so every particle is scored exactly once, from its own prediction, with
        about 1/n_passes of its jet hidden (training hides ``mask_fraction``). Runs in eval mode;
        jets without particles score 0.
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
                log_probs = self.token_head(self.hidden_states(batch, hidden)[0]).float().log_softmax(-1)
                scores = log_probs.gather(1, tokens[hidden][:, None]).squeeze(1)
                total.index_add_(0, hidden.nonzero()[:, 0], scores)
        finally:
            self.train(was_training)
        return total / mask.sum(1).clamp_min(1)


def majority_accuracy(targets: Tensor, jet: Tensor, num_codes: int) -> float:
    """Masked accuracy of the best one-token-per-jet guess: each jet's most frequent hidden token.
    The ceiling of a model that cannot tell a jet's hidden particles apart (MPM v1), to read
    ``masked_accuracy`` against. ``targets`` (M,) tokens of hidden particles of jets ``jet`` (M,)."""
    if not len(targets):
        return 0.0
    counts = torch.zeros(int(jet.max()) + 1, num_codes, device=targets.device)
    counts.index_put_((jet, targets), torch.ones_like(targets, dtype=counts.dtype), accumulate=True)
    return float(counts.amax(1).sum() / len(targets))
