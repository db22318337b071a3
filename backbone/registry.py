"""Named encoder sizes, timm style: `create_model("small", dropout=0.0)`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jetfm.backbone.config import EncoderConfig
from jetfm.backbone.encoder import JetEncoder, maybe_compile
from jetfm.errors import UsageError

ConfigFactory = Callable[[], EncoderConfig]
_MODELS: dict[str, ConfigFactory] = {}


def register_model(name: str) -> Callable[[ConfigFactory], ConfigFactory]:
    """Decorator registering a function that returns the `EncoderConfig` of a named model."""

    def register(factory: ConfigFactory) -> ConfigFactory:
        if name in _MODELS:
            raise UsageError(f"model {name!r} is already registered")
        _MODELS[name] = factory
        return factory

    return register


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_config(name: str, **overrides: Any) -> EncoderConfig:
    """The config of a registered model with `overrides` applied (unknown names raise a ValueError)."""
    if name not in _MODELS:
        raise UsageError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    return _MODELS[name]().replace(**overrides)


def create_model(name: str, **overrides: Any) -> JetEncoder:
    """A freshly initialised encoder of a registered size, e.g. `create_model("tiny", input_dim=13)`."""
    return maybe_compile(JetEncoder(model_config(name, **overrides)))


@register_model("tiny")
def tiny() -> EncoderConfig:
    """~0.1M parameters: CPU tests and demos."""
    return EncoderConfig(
        embed_dim=48,
        num_heads=4,
        num_layers=3,
        num_class_layers=1,
        particle_mlp_dims=(48, 96),
        pair_mlp_dims=(16, 16),
    )


@register_model("small")
def small() -> EncoderConfig:
    """~2M parameters, the size of the published ParT (embed 128, 8 heads, 8 + 2 blocks)."""
    return EncoderConfig()


@register_model("base")
def base() -> EncoderConfig:
    """~26M parameters, for pretraining on a GPU."""
    return EncoderConfig(
        embed_dim=384,
        num_heads=12,
        num_layers=12,
        num_class_layers=2,
        particle_mlp_dims=(256, 1024),
        pair_mlp_dims=(64, 64, 64),
    )
