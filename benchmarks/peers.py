"""The peer models the benchmarks compare against, built to match a jetfm EncoderConfig."""

from __future__ import annotations

from typing import Any

import torch

from jetfm.backbone.config import EncoderConfig


def weaver_part(
    config: EncoderConfig, num_classes: int | None = None, fc_params: list[tuple[Any, ...]] | None = None
) -> torch.nn.Module:
    """weaver-core's ParticleTransformer (PyPI ``weaver-core``) at the same sizes as ``config``."""
    from weaver.nn.model.ParticleTransformer import ParticleTransformer

    return ParticleTransformer(
        input_dim=config.input_dim,
        num_classes=num_classes,
        embed_dims=(*config.particle_mlp_dims, config.embed_dim),
        pair_embed_dims=config.pair_mlp_dims,
        num_heads=config.num_heads,
        num_layers=config.num_layers,
        num_cls_layers=config.num_class_layers,
        fc_params=fc_params,
    )
