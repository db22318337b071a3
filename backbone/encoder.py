"""Particle-Transformer-style jet encoder (after Qu, Li, Qian, arXiv:2202.03772).

Read top to bottom: pair features from four-vectors -> a batch norm of real particles only ->
particle and pair embeddings -> one attention block type (particle attention with a pairwise bias,
or class attention of a learned token) -> `JetEncoder`.

Regularisation is drop-path (stochastic depth) on the residual branches, as in ParT v3; nothing is
dropped inside attention, so `scaled_dot_product_attention` runs its fused kernel.

Shapes: B jets, P particle slots, N slots kept after packing (N <= P), D embed dim, H heads.
Inputs are `features` (B, P, F), `vectors` (B, P, 4) as (px, py, pz, E), and `mask` (B, P),
True for a real particle. Padded slots are never read and are masked in attention, so outputs do
not depend on the order of the particles, on how many padded slots follow them, nor on their values.
"""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jetfm.backbone.config import KINEMATIC_CHARGE_PID_FEATURES, LEGACY_FIELDS, EncoderConfig
from jetfm.backbone.data.features import FeatureConfig
from jetfm.backbone.model_folder import PretrainedModel, read_json, write_json
from jetfm.errors import UsageError

MODEL_TYPE = "jet_encoder"
FEATURES_TYPE = "jet_features"
FEATURES_NAME = "features.json"


def pair_features(a: Tensor, b: Tensor, num_features: int, eps: float) -> Tensor:
    """ParT's features of particle pairs (a, b): ln dR, ln kT, ln z, ln m^2, the first `num_features`.

    (..., 4) four-vectors (px, py, pz, E) -> (..., num_features), in float32 whatever the autocast
    state: logs of small numbers lose too much in bf16. The floors `eps` keep a == b finite.
    """
    a, b = a.float(), b.float()
    pt_a, rapidity_a, phi_a = _pt_rapidity_phi(a, eps)
    pt_b, rapidity_b, phi_b = _pt_rapidity_phi(b, eps)
    delta_phi = torch.remainder(phi_a - phi_b + math.pi, 2 * math.pi) - math.pi
    delta_r = torch.sqrt((rapidity_a - rapidity_b).square() + delta_phi.square())
    pt_min = torch.minimum(pt_a, pt_b)
    pair = a + b
    mass2 = pair[..., 3].square() - pair[..., :3].square().sum(-1)
    features = [
        torch.log(delta_r.clamp_min(eps)),
        torch.log((pt_min * delta_r).clamp_min(eps)),
        torch.log((pt_min / (pt_a + pt_b).clamp_min(eps)).clamp_min(eps)),
        torch.log(mass2.clamp_min(eps)),
    ]
    return torch.stack(features[:num_features], dim=-1)


def _pt_rapidity_phi(vectors: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    px, py, pz, energy = vectors.unbind(-1)
    pt = torch.sqrt((px.square() + py.square()).clamp_min(eps**2))
    rapidity = 0.5 * (torch.log((energy + pz).clamp_min(eps)) - torch.log((energy - pz).clamp_min(eps)))
    return pt, rapidity, torch.atan2(py, px)


class InputBatchNorm(nn.Module):
    """BatchNorm of input rows (M, C), applied to the real particles (or pairs) of a batch only.

    Padding never enters the statistics, so adding padded slots cannot shift any output. Unlike
    nn.BatchNorm1d it accepts a single row (a one-particle jet in training), and it keeps its
    statistics in float32 so that bf16 autocast does not degrade them.
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: Tensor) -> Tensor:
        x = x.float()
        # an empty batch (e.g. pairs of one-particle jets only) has no statistics to learn from
        if self.training and x.size(0):
            mean, var = self._batch_statistics(x)
        else:
            mean, var = self.running_mean, self.running_var
        # one fused multiply-add over the (many) rows: the per-feature scale and shift are tiny
        scale = self.weight * torch.rsqrt(var + self.eps)
        return torch.addcmul(self.bias - mean * scale, x, scale)

    def _batch_statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        count = x.size(0)
        var, mean = torch.var_mean(x, dim=0, correction=0)
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * count / max(count - 1, 1), self.momentum)
        return mean, var


class ParticleEmbedding(nn.Module):
    """Per-particle MLP from input features to D; every layer is LayerNorm, Linear, GELU as in ParT."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.input_norm = InputBatchNorm(config.input_dim)
        dims = (config.input_dim, *config.particle_mlp_dims, config.embed_dim)
        layers: list[nn.Module] = []
        for d_in, d_out in pairwise(dims):
            layers += [nn.LayerNorm(d_in), nn.Linear(d_in, d_out), nn.GELU()]
        self.mlp = nn.Sequential(*layers)

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """(B, N, F), (B, N) -> (B, N, D), zero on padded slots (which are never embedded)."""
        embedded = self.mlp(self.input_norm(features[mask]))
        x = embedded.new_zeros(*mask.shape, embedded.size(-1))
        x[mask] = embedded
        return x


class PairEmbedding(nn.Module):
    """Pointwise MLP (ParT's 1x1 convolutions) from pair features to one attention bias per head.

    With `config.pair_norm` (ParT's PairEmbed) every layer is Linear -> batch norm -> GELU, and the
    last stops after its batch norm, so at initialisation the bias has unit scale and a live gradient
    (without the norms, a std 0.02 init gives a bias of ~1e-5 that attention cannot feel). The norms
    pool real pairs only, and a particle is not paired with itself: its pair features are the floors
    (ln dR = ln eps, ...), outliers that would dominate the statistics; its self-bias is 0. Without
    `pair_norm` (models saved before it existed) the layers are Linear -> GELU and self-pairs embedded.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.num_features = config.num_pair_features
        self.eps = config.pair_eps
        self.self_pairs = not config.pair_norm
        self.input_norm = InputBatchNorm(config.num_pair_features)
        dims = (config.num_pair_features, *config.pair_mlp_dims, config.num_heads)
        layers: list[nn.Module] = []
        for d_in, d_out in pairwise(dims):
            layers.append(nn.Linear(d_in, d_out))
            if config.pair_norm:
                layers.append(InputBatchNorm(d_out))
            layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers[:-1])  # the bias is the last layer's pre-activation

    def forward(self, vectors: Tensor, mask: Tensor) -> Tensor:
        """(B, N, 4), (B, N) -> (B, H, N, N) attention bias, zero wherever a padded slot is involved.

        The features are symmetric in (i, j), so each pair of real particles is embedded once: with
        ~50 real particles in ~100 kept slots that is ~8x less work than the full N x N grid.
        """
        n = mask.size(1)
        lower = torch.ones(n, n, dtype=torch.bool, device=mask.device).tril(0 if self.self_pairs else -1)
        jet, i, j = (mask[:, :, None] & mask[:, None, :] & lower).nonzero(as_tuple=True)
        # fixed functions of the inputs: no gradient to the four-vectors is needed
        with torch.no_grad(), torch.autocast(vectors.device.type, enabled=False):
            features = pair_features(vectors[jet, i], vectors[jet, j], self.num_features, self.eps)
        embedded = self.mlp(self.input_norm(features))
        bias = embedded.new_zeros(mask.size(0), self.num_heads, n, n)
        bias[jet, :, i, j] = embedded
        bias[jet, :, j, i] = embedded
        return bias


def particle_attention_bias(pair_bias: Tensor, mask: Tensor) -> Tensor:
    """Pair bias with -inf on padded keys. Each slot always sees itself, so no row is entirely -inf:
    padded queries (and jets with no particle at all) stay finite instead of NaN, and since no real
    query sees a padded key, what padded slots compute never reaches real ones."""
    n = mask.size(1)
    visible = mask[:, None, :] | torch.eye(n, dtype=torch.bool, device=mask.device)
    return pair_bias.masked_fill(~visible[:, None], float("-inf"))


def causal_attention_bias(bias: Tensor) -> Tensor:
    """`bias` (.., N, N) with -inf where a key comes after its query (j > i) in the packed order.

    Packing keeps the order of the real particles, so slot order is the input (pT) order; the
    diagonal stays visible, so no row becomes entirely -inf. In training mode the input batch norms
    still pool statistics over all particles of a batch: a negligible, non-positional leak.
    """
    n = bias.size(-1)
    future = torch.ones(n, n, dtype=torch.bool, device=bias.device).triu(1)
    return bias.masked_fill(future, float("-inf"))


def class_attention_bias(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """(B, 1, 1, 1 + N) bias for a class token attending to [itself, particles]: -inf on padding."""
    visible = torch.cat([mask.new_ones(mask.size(0), 1), mask], dim=1)
    bias = torch.zeros(visible.shape, dtype=dtype, device=mask.device)
    return bias.masked_fill(~visible, float("-inf"))[:, None, None, :]


class Attention(nn.Module):
    """Multi-head attention of `x` over `context` with an additive float bias (B or 1, H or 1, L, S).

    No dropout on the attention probabilities: it cost ~22% of a CPU training step and kept
    `scaled_dot_product_attention` off its fused kernels, which take a float bias but no dropout.
    (The fused CPU kernel also needs a bias without gradient: inference, and class attention in
    training; the learned pair bias of training falls back to the math kernel there.)
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor, bias: Tensor) -> Tensor:
        (b, length, dim), source_length = x.shape, context.size(1)
        head_dim = dim // self.num_heads
        q = self.query(x).view(b, length, self.num_heads, head_dim).transpose(1, 2)
        kv = self.key_value(context).view(b, source_length, 2, self.num_heads, head_dim)
        k, v = kv.permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(b, length, dim))


def drop_path(x: Tensor, rate: float, training: bool) -> Tensor:
    """Stochastic depth on a residual branch `x` (B, ...): in training, the branch of a random
    `rate` of the jets is dropped and the others are scaled by 1 / (1 - rate), keeping the mean."""
    if not training or rate == 0.0:
        return x
    keep = torch.empty(x.size(0), *[1] * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(1.0 - rate)
    return x * keep / (1.0 - rate)


class Block(nn.Module):
    """Pre-LN transformer block, with drop-path of rate `drop_path` on both residual branches; with
    `config.block_norms` it is ParT's block (extra norms and learned head and residual scales).

    Particle attention: `x` (B, N, D) attends to itself, biased by the pair embedding.
    Class attention (CaiT, as in ParT): the class token `x` (B, 1, D) attends to [itself, `context`].
    """

    def __init__(self, config: EncoderConfig, drop_path: float) -> None:
        super().__init__()
        self.drop_path = drop_path
        self.num_heads = config.num_heads
        self.attn_norm = nn.LayerNorm(config.embed_dim)
        self.attn = Attention(config.embed_dim, config.num_heads)
        self.mlp_norm = nn.LayerNorm(config.embed_dim)
        extra_norm = nn.LayerNorm if config.block_norms else lambda _: nn.Identity()
        self.mlp = nn.Sequential(
            nn.Linear(config.embed_dim, config.mlp_dim),
            nn.GELU(),
            nn.Linear(config.mlp_dim, config.embed_dim),
        )
        # With config.block_norms (ParT's block, after NormFormer): the attention output and the MLP's
        # hidden activation are normalised before they reach the residual stream or the second layer,
        # and learned scales weigh each head and each residual channel. Identity/None otherwise.
        self.post_attn_norm = extra_norm(config.embed_dim)
        self.post_act_norm = extra_norm(config.mlp_dim)
        self.head_scale = nn.Parameter(torch.ones(config.num_heads)) if config.block_norms else None
        self.residual_scale = nn.Parameter(torch.ones(config.embed_dim)) if config.block_norms else None
        self.register_load_state_dict_pre_hook(_renumber_mlp_of_dropout_blocks)

    def forward(self, x: Tensor, bias: Tensor, context: Tensor | None = None) -> Tensor:
        h = self.attn_norm(x if context is None else torch.cat([x, context], dim=1))
        attended = self.attn(h[:, : x.size(1)], h, bias)
        if self.head_scale is not None:
            attended = (attended.unflatten(-1, (self.num_heads, -1)) * self.head_scale[:, None]).flatten(-2)
        x = x + drop_path(self.post_attn_norm(attended), self.drop_path, self.training)
        hidden = self.post_act_norm(self.mlp[1](self.mlp[0](self.mlp_norm(x))))
        residual = x if self.residual_scale is None else x * self.residual_scale
        return residual + drop_path(self.mlp[2](hidden), self.drop_path, self.training)


def init_linear(linear: nn.Linear, scheme: str, stacked: int = 1) -> None:
    """`scheme` "normal": truncated normal of std 0.02 (GPT-2; small next to 1/sqrt(fan_in) for
    narrow layers); "xavier": uniform with variance 2 / (fan_in + fan_out), where a weight that
    stacks `stacked` projections (key and value) counts the fan-out of one, as ParT's MoCo-v3 init
    treats q, k and v separately. Biases start at zero."""
    if scheme == "normal":
        nn.init.trunc_normal_(linear.weight, std=0.02)
    else:
        fan_out, fan_in = linear.weight.size(0) // stacked, linear.weight.size(1)
        bound = math.sqrt(6.0 / (fan_out + fan_in))
        nn.init.uniform_(linear.weight, -bound, bound)
    nn.init.zeros_(linear.bias)


def _renumber_mlp_of_dropout_blocks(module: nn.Module, state: dict[str, Tensor], prefix: str, *_: object) -> None:
    """Weights saved while the MLP had a dropout layer (Linear, GELU, Dropout, Linear) call its
    second Linear `mlp.3`; it is `mlp.2` now."""
    for name in ("weight", "bias"):
        if f"{prefix}mlp.3.{name}" in state:
            state[f"{prefix}mlp.2.{name}"] = state.pop(f"{prefix}mlp.3.{name}")


def pack_particles(
    features: Tensor, vectors: Tensor, mask: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Moves real particles to the front (keeping their order) and drops slots that are padding in
    every jet. Returns features, vectors, mask and `order` (B, N): slot n of the packed tensors came
    from slot order[:, n] of the inputs.

    Attention costs grow as P^2 and typically ~50 of 128 slots are real, so this is the main saving;
    it changes no output because padding is masked everywhere (and its values are never read).
    """
    order = packing_order(mask)
    mask = mask.gather(1, order)

    def take(values: Tensor) -> Tensor:
        return values.gather(1, order[..., None].expand(-1, -1, values.size(-1)))

    return take(features), take(vectors), mask, order


def packing_order(mask: Tensor) -> Tensor:
    """(B, N) slots of the real particles of each jet first, in their order, then padding; N is the
    largest number of real particles (at least 1)."""
    order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)
    return order[:, : max(int(mask.sum(1).max()), 1)]


def keep_every_slot(features: Tensor, vectors: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """`pack_particles` without packing: same contract, no data-dependent shapes (for export)."""
    order = torch.arange(mask.size(1), device=mask.device).expand(mask.size(0), -1)
    return features, vectors, mask, order


class JetEncoder(PretrainedModel, nn.Module):
    """Particle Transformer without a classifier head: jets -> (B, D) embeddings or (B, P, D) particles.

    `features` is the data configuration the model reads (which particle features, how many slots);
    it is saved beside the network config in the model folder, as `features.json`.
    """

    model_type = MODEL_TYPE
    config_class = EncoderConfig
    written_by = "model folders are written by JetEncoder.save_pretrained"

    def __init__(self, config: EncoderConfig, features: FeatureConfig | None = None) -> None:
        super().__init__()
        self.config = config
        self.features = features or default_features(config)
        if self.features.num_features != config.input_dim or self.features.max_particles != config.max_particles:
            raise UsageError(
                f"feature config {self.features} gives {self.features.num_features} features x "
                f"{self.features.max_particles} slots, but the network takes {config.input_dim} x "
                f"{config.max_particles}"
            )
        self.particle_embed = ParticleEmbedding(config)
        self.pair_embed = PairEmbedding(config)
        self.blocks = nn.ModuleList(Block(config, config.dropout) for _ in range(config.num_layers))
        self.class_token = nn.Parameter(torch.zeros(1, 1, config.embed_dim))
        # No drop-path when pooling: dropping a class-attention branch of a jet would leave its
        # embedding without (part of) its particles.
        self.class_blocks = nn.ModuleList(Block(config, 0.0) for _ in range(config.num_class_layers))
        self.particle_norm = nn.LayerNorm(config.embed_dim)
        self.jet_norm = nn.LayerNorm(config.embed_dim)
        # Packing drops all-padding slots (the main CPU saving) but has a data-dependent shape that
        # graph exporters (ONNX) cannot express; export turns it off. Outputs are identical.
        self.pack_padding = True
        self._init_weights()

    def _init_weights(self) -> None:
        # The pair embedding keeps PyTorch's default init: with its batch norms the scale of its
        # weights does not change the bias, and a std 0.02 init would only blow up their gradients.
        skip = set(self.pair_embed.modules()) if self.config.pair_norm else set()
        for module in self.modules():
            if isinstance(module, nn.Linear) and module not in skip:
                init_linear(module, self.config.init)
            if isinstance(module, Attention):
                init_linear(module.key_value, self.config.init, stacked=2)
        # GPT-2: shrink the projections that write into the residual stream, so its variance stays
        # ~constant with depth
        depth = self.config.num_layers + self.config.num_class_layers
        for block in (*self.blocks, *self.class_blocks):
            for linear in (block.attn.proj, block.mlp[-1]):
                if self.config.init == "normal":
                    nn.init.trunc_normal_(linear.weight, std=0.02 / math.sqrt(2 * depth))
                else:
                    with torch.no_grad():
                        linear.weight.div_(math.sqrt(2 * depth))
        nn.init.trunc_normal_(self.class_token, std=0.02)

    def forward(self, features: Tensor, vectors: Tensor, mask: Tensor) -> Tensor:
        """Jet embeddings (B, D)."""
        x, packed_mask, _ = self._encode_particles(features, vectors, mask)
        return self._pool(x, packed_mask)

    def encode(self, features: Tensor, vectors: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """`forward_particles` (B, P, D) and `forward` (B, D) from one pass, for objectives that
        train the per-particle outputs and the jet embedding together."""
        x, packed_mask, order = self._encode_particles(features, vectors, mask)
        return self._unpack(x, packed_mask, order, mask), self._pool(x, packed_mask)

    def forward_particles(
        self,
        features: Tensor,
        vectors: Tensor,
        mask: Tensor,
        causal: bool = False,
        hidden: Tensor | None = None,
        mask_token: Tensor | None = None,
    ) -> Tensor:
        """Per-particle outputs (B, P, D) in the input order; padded slots are zero.

        With `causal`, real particle k attends only to real particles 0..k in input order (the pT
        order of the data contract), as a next-particle model needs; see `causal_attention_bias`.
        With `hidden` (B, P) bool, those particles keep their slot but enter as `mask_token` (D,):
        their features, four-vectors and pair biases are never read. This is how MPM v1 models
        (``MaskedParticleObjective(decoder_layers=0)``) encode; MPM v2 leaves hidden particles out.
        """
        x, packed_mask, order = self._encode_particles(features, vectors, mask, causal, hidden, mask_token)
        return self._unpack(x, packed_mask, order, mask)

    def _pool(self, x: Tensor, packed_mask: Tensor) -> Tensor:
        """Class attention of the class token over the packed particle states: (B, D) embeddings."""
        token = self.class_token.expand(x.size(0), -1, -1)
        bias = class_attention_bias(packed_mask, x.dtype)
        for block in self.class_blocks:
            token = block(token, bias, context=x)
        return self.jet_norm(token.squeeze(1))

    def _unpack(self, x: Tensor, packed_mask: Tensor, order: Tensor, mask: Tensor) -> Tensor:
        """Normalised packed states back in the input slots (B, P, D), zero on padding."""
        x = self.particle_norm(x).masked_fill(~packed_mask[..., None], 0.0)
        out = x.new_zeros(*mask.shape, x.size(-1))
        return out.scatter(1, order[..., None].expand_as(x), x)

    def _encode_particles(
        self,
        features: Tensor,
        vectors: Tensor,
        mask: Tensor,
        causal: bool = False,
        hidden: Tensor | None = None,
        mask_token: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Packed particle states (B, N, D) after the particle-attention blocks, their mask and order."""
        self._check_inputs(features, vectors, mask)
        pack = pack_particles if self.pack_padding else keep_every_slot
        features, vectors, mask, order = pack(features, vectors, mask)
        # Embeddings (and their batch statistics) see only visible particles; hidden ones get the token.
        visible = mask if hidden is None else mask & ~hidden.gather(1, order)
        x = self.particle_embed(features, visible)
        if hidden is not None:
            if mask_token is None:
                raise UsageError("hidden particles need a mask_token (D,) to stand in for them")
            x = torch.where((mask & ~visible)[..., None], mask_token.to(x.dtype), x)
        bias = particle_attention_bias(self.pair_embed(vectors, visible), mask)
        if causal:
            bias = causal_attention_bias(bias)
        for block in self.blocks:
            x = block(x, bias)
        return x, mask, order

    def _check_inputs(self, features: Tensor, vectors: Tensor, mask: Tensor) -> None:
        if mask.dim() != 2 or mask.dtype != torch.bool:
            raise UsageError(f"mask must be a (B, P) bool tensor, got {mask.dtype} {tuple(mask.shape)}")
        b, p = mask.shape
        expected = {"features": (features, (b, p, self.config.input_dim)), "vectors": (vectors, (b, p, 4))}
        for name, (tensor, shape) in expected.items():
            if tuple(tensor.shape) != shape:
                raise UsageError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}")
        if p > self.config.max_particles:
            raise UsageError(
                f"{p} particle slots exceed config.max_particles={self.config.max_particles}; "
                "truncate the pT-ordered constituents when padding"
            )

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @classmethod
    def config_from_stored(cls, values: dict[str, Any]) -> EncoderConfig:
        # A folder saved before a field existed was built the way that field's legacy value builds.
        return EncoderConfig.from_dict({**LEGACY_FIELDS, **values})

    def write_extra_files(self, staging: Path) -> None:
        write_json(staging / FEATURES_NAME, FEATURES_TYPE, features=self.features.to_dict())

    def read_extra_files(self, folder: Path) -> None:
        # Folders written before the data config was saved: it follows from the network's input.
        if (folder / FEATURES_NAME).is_file():
            stored = read_json(folder / FEATURES_NAME, FEATURES_TYPE, self.written_by)
            self.features = FeatureConfig.from_dict(stored["features"])

    def loaded(self, device: str | torch.device) -> JetEncoder:
        return maybe_compile(self.to(device).eval())


def default_features(config: EncoderConfig) -> FeatureConfig:
    """The feature set a network of this input width reads: kinematics, or kinematics + charge/PID."""
    return FeatureConfig(
        max_particles=config.max_particles, include_charge_pid=config.input_dim == KINEMATIC_CHARGE_PID_FEATURES
    )


def load_features(folder: str | Path) -> FeatureConfig:
    """The data configuration of a saved encoder, without reading its weights."""
    folder = Path(folder)
    if (folder / FEATURES_NAME).is_file():
        stored = read_json(folder / FEATURES_NAME, FEATURES_TYPE, JetEncoder.written_by)
        return FeatureConfig.from_dict(stored["features"])
    return default_features(JetEncoder.load_config(folder))


def maybe_compile(model: JetEncoder) -> JetEncoder:
    """Compiles the pair embedding and the blocks in place when `model.config.compile` is set.

    Packing stays eager (its length depends on the data) and the packed length varies per batch,
    hence dynamic shapes. `Module.compile` keeps parameter names, so checkpoints are unaffected.
    """
    if model.config.compile:
        for module in (model.pair_embed, *model.blocks, *model.class_blocks):
            module.compile(dynamic=True)
    return model
