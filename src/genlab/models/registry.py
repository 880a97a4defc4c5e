"""Every model genlab knows, in one dict: the CLI, run loading and the contract tests enumerate it."""
from __future__ import annotations

from typing import Any, NamedTuple

from torch import nn

from genlab.errors import ConfigError
from genlab.models.autoencoder import AE, AEConfig
from genlab.models.config import Config
from genlab.models.vae import VAE, VAEConfig


class ModelSpec(NamedTuple):
    cls: type[nn.Module]
    config_cls: type[Config]
    defaults: dict[str, Any]    # config fields that differ from the config class's defaults
    description: str


MODELS: dict[str, ModelSpec] = {
    "vae": ModelSpec(VAE, VAEConfig, {}, "MLP VAE 784-400-20, Bernoulli decoder (the standard tutorial model)"),
    "conv-vae": ModelSpec(VAE, VAEConfig, {"arch": "conv"},
                          "conv VAE: two 5x5 stride-2 convs (16, 32), 20-d latent, transposed-conv decoder"),
    "ae": ModelSpec(AE, AEConfig, {}, "MLP autoencoder 784-128-64-12-3 with a mirrored decoder, MSE loss"),
    "conv-ae": ModelSpec(AE, AEConfig, {"arch": "conv", "latent_dim": 16},
                         "conv autoencoder: two 5x5 stride-2 convs (16, 32) to a 16-d code, MSE loss"),
}


def model_spec(name: str) -> ModelSpec:
    """The registry entry for `name`, or a ConfigError listing the valid names."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)} (see `genlab models`)")
    return MODELS[name]


def make_config(name: str, **overrides: Any) -> Config:
    """The model's config: class defaults, then the registry's, then `overrides`."""
    spec = model_spec(name)
    return spec.config_cls.from_dict({**spec.config_cls().to_dict(), **spec.defaults, **overrides})


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model, e.g. create_model("vae", latent_dim=2)."""
    return build_model(name, make_config(name, **overrides))


def build_model(name: str, config: Config) -> nn.Module:
    """Build a registered model from a full config; records its registry name on it."""
    model = model_spec(name).cls(config)
    model.model_name = name
    return model
