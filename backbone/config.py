"""Configuration of the jet encoder: one dataclass, saved as JSON beside the weights."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from jetfm.errors import UsageError

KINEMATIC_FEATURES = 7  # log pT, log E, log pT/pT_jet, log E/E_jet, dR, deta, dphi
KINEMATIC_CHARGE_PID_FEATURES = 13  # + charge + 5 particle-ID flags
PAIR_FEATURES = ("ln_delta_r", "ln_kt", "ln_z", "ln_m2")  # num_pair_features takes a prefix
# Fields added after the first model folders were saved, with the value that rebuilds those folders
# (a stored config without the field was written before it existed).
LEGACY_FIELDS: dict[str, Any] = {"pair_norm": False, "block_norms": False, "init": "normal"}
INITS = ("normal", "xavier")


@dataclass(frozen=True)
class EncoderConfig:
    """Sizes and options of a `JetEncoder`; every field is JSON-serialisable."""

    input_dim: int = KINEMATIC_FEATURES
    embed_dim: int = 128
    num_heads: int = 8
    num_layers: int = 8  # particle-attention blocks
    num_class_layers: int = 2  # class-attention blocks pooling the particles into one jet vector
    mlp_ratio: float = 4.0
    # Drop-path (stochastic depth) rate of each residual branch of the particle-attention blocks in
    # training, as ParT v3; nothing else is dropped (0 makes training deterministic).
    dropout: float = 0.1
    particle_mlp_dims: tuple[int, ...] = (128, 512)  # hidden widths of the per-particle embedding
    num_pair_features: int = len(PAIR_FEATURES)
    pair_mlp_dims: tuple[int, ...] = (64, 64, 64)  # hidden widths of the pair embedding (one bias per head)
    pair_norm: bool = True  # batch norm (real pairs only) after each pair layer, as ParT: a live bias at init
    # ParT's block (after NormFormer): LayerNorm after attention and after the MLP's activation, a
    # learned scale per head and per residual channel. With the Xavier init below it took the tiny
    # model from scratch on 800 top/QCD labels from validation AUC 0.957 (best of 725 steps) to 0.978
    # (at step 100), the level of weaver's ParT (BENCHMARKS.md, finetuning).
    block_norms: bool = True
    # Linear weights: "xavier" (uniform, as ParT's MoCo-v3 init) or "normal" (std 0.02, GPT-2; small
    # next to 1/sqrt(width) for narrow models); both shrink the projections into the residual stream
    # with depth
    init: str = "xavier"
    max_particles: int = 128
    pair_eps: float = 1e-8  # floor inside the logs of the pair features, so padding never gives NaN
    compile: bool = False  # torch.compile the blocks when built through create_model/from_pretrained

    def __post_init__(self) -> None:
        # JSON brings tuples back as lists; a frozen dataclass needs object.__setattr__ to normalise them
        for name in ("particle_mlp_dims", "pair_mlp_dims"):
            object.__setattr__(self, name, tuple(int(d) for d in getattr(self, name)))
        self._validate()

    def _validate(self) -> None:
        positive = ("input_dim", "embed_dim", "num_heads", "num_layers", "max_particles")
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"EncoderConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.embed_dim % self.num_heads:
            raise UsageError(
                f"EncoderConfig.embed_dim ({self.embed_dim}) must be a multiple of "
                f"num_heads ({self.num_heads})"
            )
        if self.num_class_layers < 1:
            raise UsageError("EncoderConfig.num_class_layers must be >= 1: they pool particles into the jet")
        if not 1 <= self.num_pair_features <= len(PAIR_FEATURES):
            raise UsageError(
                f"EncoderConfig.num_pair_features must be in 1..{len(PAIR_FEATURES)} "
                f"(a prefix of {PAIR_FEATURES}), got {self.num_pair_features}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"EncoderConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.init not in INITS:
            raise UsageError(f"EncoderConfig.init must be one of {INITS}, got {self.init!r}")
        if self.mlp_ratio <= 0:
            raise UsageError(f"EncoderConfig.mlp_ratio must be > 0, got {self.mlp_ratio}")

    @property
    def mlp_dim(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EncoderConfig:
        unknown = sorted(set(values) - cls.field_names())
        if unknown:
            raise UsageError(f"unknown EncoderConfig field(s) {unknown}; valid: {sorted(cls.field_names())}")
        return cls(**values)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    def replace(self, **overrides: Any) -> EncoderConfig:
        """A copy with some fields changed; unknown names raise a ValueError listing the valid ones."""
        return EncoderConfig.from_dict({**self.to_dict(), **overrides})


__all__ = ["LEGACY_FIELDS", "EncoderConfig", "KINEMATIC_CHARGE_PID_FEATURES", "KINEMATIC_FEATURES", "PAIR_FEATURES"]
