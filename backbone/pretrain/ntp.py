"""Next-token prediction over particle tokens, as OmniJet-alpha (Birk, Hallin, Kasieczka, arXiv:2403.05618).

A jet is read as a sentence: its particles, in pT order, each replaced by a token of the shared
k-means codebook (`ParticleCodebook`) of the features that place a particle within its jet,
(log pT/pT_jet, deta, dphi). The causal encoder reads [start, token_1, ..., token_n] and predicts
[token_1, ..., token_n, stop] (cross-entropy); the stop token tells generation where a jet ends.

What the model reads at position i is not the particle's measured features but the *decoded*
tokens before it: each token's centroid, turned into a massless particle of pT = pT_jet *
exp(log pT/pT_jet) at (deta, dphi) around a jet axis at eta = phi = 0, from which the encoder's
seven kinematic features and the four-vector (for the pair bias) are rebuilt. Training and
sampling thereby see exactly the same kind of input (sampling only has tokens), and the unchanged
pair-bias encoder serves both. The start token is the jet axis itself, a pseudo-particle carrying
the whole jet pT, which is how the model learns (and sampling sets) the jet pT. The price: log E
and log E/E_jet are those of a jet at eta = 0, not of the jet as measured.

The causal pass never runs the class-attention pooling, so every step also trains the jet embedding
on the measured jets (``backbone.pretrain.jet_term``: two augmented views of each jet with a random
part of the particles left out, NT-Xent between their embeddings).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jetfm.backbone.config import KINEMATIC_FEATURES
from jetfm.backbone.data.features import KINEMATIC_FEATURES as FEATURE_NAMES
from jetfm.backbone.encoder import JetEncoder, pack_particles
from jetfm.backbone.pretrain.base import Objective, register_objective
from jetfm.backbone.pretrain.codebook import ParticleCodebook, sample_particles
from jetfm.backbone.pretrain.jet_term import JetViewTerm, sample_hidden
from jetfm.backbone.train import BatchSource
from jetfm.errors import UsageError

# What a token stands for; with a jet pT this fixes a massless particle completely.
TOKEN_COLUMNS = ("part_logptrel", "part_deta", "part_dphi")
_LOG_PT, _LOG_PTREL = FEATURE_NAMES.index("part_pt_log"), FEATURE_NAMES.index("part_logptrel")
# Share of each jet's particles a view for the jet-level term leaves out (MPM's default masking).
VIEW_HIDDEN_FRACTION = 0.4


def particle_inputs(centroids: Tensor, jet_pt: Tensor) -> tuple[Tensor, Tensor]:
    """Encoder inputs of decoded tokens: (B, T, 3) (log pT/pT_jet, deta, dphi) and (B,) jet pT ->
    features (B, T, 7) in the order of `backbone.data.features` and four-vectors (B, T, 4) of
    massless particles around a jet axis at eta = phi = 0 whose energy is its pT."""
    log_ptrel, deta, dphi = centroids.float().unbind(-1)
    log_jet_pt = jet_pt.float().log()[:, None]
    log_pt = log_jet_pt + log_ptrel
    log_e = log_pt + torch.cosh(deta).log()
    features = torch.stack([log_pt, log_e, log_ptrel, log_e - log_jet_pt, torch.hypot(deta, dphi), deta, dphi], dim=-1)
    pt = log_pt.exp()
    vectors = torch.stack([pt * dphi.cos(), pt * dphi.sin(), pt * deta.sinh(), pt * deta.cosh()], dim=-1)
    return features, vectors


@register_objective
class NextTokenObjective(Objective):
    """Causal next-particle-token prediction with a stop token; see the module docstring."""

    name = "ntp"
    legacy_config: ClassVar[dict[str, Any]] = {"jet_weight": 0.0}

    def __init__(
        self,
        encoder: JetEncoder,
        num_codes: int = 512,
        max_fit_particles: int = 200_000,
        jet_weight: float = 1.0,
        jet_temperature: float = 0.1,
        jet_augmentations: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(encoder)
        if jet_weight < 0:
            raise UsageError(f"jet_weight must be >= 0 (0 turns the jet-level term off), got {jet_weight}")
        if encoder.config.input_dim != KINEMATIC_FEATURES:
            raise UsageError(
                f"NTP rebuilds the {KINEMATIC_FEATURES} kinematic features from tokens; the encoder takes "
                f"input_dim={encoder.config.input_dim}: create it with input_dim={KINEMATIC_FEATURES}"
            )
        self.max_fit_particles = max_fit_particles
        self.codebook = ParticleCodebook(num_codes, TOKEN_COLUMNS)
        self.head = nn.Linear(encoder.config.embed_dim, num_codes + 1)  # the codes, then stop
        self.jet_weight = jet_weight
        self.jet_term = (
            JetViewTerm(encoder.config.embed_dim, jet_temperature, jet_augmentations) if jet_weight > 0 else None
        )

    @property
    def stop_token(self) -> int:
        return self.codebook.num_codes

    def objective_config(self) -> dict[str, Any]:
        return {
            "num_codes": self.codebook.num_codes,
            "max_fit_particles": self.max_fit_particles,
            "jet_weight": self.jet_weight,
            **(self.jet_term.settings() if self.jet_term is not None else {}),
        }

    def prepare(self, data: BatchSource, seed: int = 0) -> None:
        """Fits the codebook on up to `max_fit_particles` particles of random jets of `data`."""
        self.codebook.fit(sample_particles(data, self.max_fit_particles, seed), seed=seed)

    def tokenize(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Token ids (B, N) of the real particles moved to the front (IGNORE_INDEX after them),
        the number of particles (B,) and the jet pT (B,), read off the leading particle's features."""
        features, _, mask, _ = pack_particles(batch["features"], batch["vectors"], batch["mask"])
        jet_pt = (features[:, 0, _LOG_PT] - features[:, 0, _LOG_PTREL]).exp()
        return self.codebook.assign(features, mask), mask.sum(1), jet_pt

    def decode_tokens(self, ids: Tensor) -> Tensor:
        """Centroids (..., 3) (log pT/pT_jet, deta, dphi) of token ids (...,)."""
        return self.codebook.decode(ids)

    def sequence_inputs(self, prefix: Tensor, jet_pt: Tensor) -> tuple[Tensor, Tensor]:
        """Features (B, T + 1, 7) and four-vectors of [start, decoded prefix tokens (B, T)]."""
        start = prefix.new_zeros(prefix.size(0), 1, len(TOKEN_COLUMNS), dtype=torch.float32)
        return particle_inputs(torch.cat([start, self.decode_tokens(prefix)], dim=1), jet_pt)

    def next_token_logits(self, prefix: Tensor, jet_pt: Tensor) -> Tensor:
        """Logits (B, num_codes + 1) of the token after `prefix` (B, T), every slot a real token."""
        features, vectors = self.sequence_inputs(prefix, jet_pt)
        mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        return self.head(self.encoder.forward_particles(features, vectors, mask, causal=True)[:, -1])

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        ids, counts, jet_pt = self.tokenize(batch)
        # start + one slot per particle; a jet too long for the encoder loses its tail and its stop
        length = min(ids.size(1) + 1, self.encoder.config.max_particles)
        slots = torch.arange(length, device=ids.device)
        mask = slots <= counts[:, None]
        # slot s predicts particle s, and the slot after the last particle predicts stop
        targets = F.pad(ids, (0, 1))[:, :length].masked_fill(slots == counts[:, None], self.stop_token)
        features, vectors = self.sequence_inputs(ids[:, : length - 1], jet_pt)
        real = mask[..., None]
        hidden = self.encoder.forward_particles(features * real, vectors * real, mask, causal=True)
        logits = self.head(hidden[mask])
        loss = F.cross_entropy(logits.float(), targets[mask])
        with torch.no_grad():
            accuracy = (logits.argmax(-1) == targets[mask]).float().mean()
        # capped so that a diverging run logs a huge perplexity instead of raising OverflowError
        perplexity = math.exp(min(float(loss.detach()), 50.0))
        metrics = {"token_loss": float(loss.detach()), "accuracy": float(accuracy), "perplexity": perplexity}
        if self.jet_term is not None:
            jet_loss, jet_metrics = self.jet_loss(batch)
            loss = loss + self.jet_weight * jet_loss
            metrics.update(jet_metrics)
        return loss, metrics

    def jet_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """The jet-level term on the measured jets, cut (as the token sequence is) to the particles
        the encoder takes: two augmented views, each with a random part of its particles left out."""
        limit = self.encoder.config.max_particles
        packed = pack_particles(batch["features"], batch["vectors"], batch["mask"])[:3]
        views = self.jet_term.views({name: t[:, :limit] for name, t in zip(("features", "vectors", "mask"), packed)})
        kept = views["mask"] & ~sample_hidden(views["mask"], VIEW_HIDDEN_FRACTION)
        return self.jet_term(self.encoder(views["features"], views["vectors"], kept), views)
