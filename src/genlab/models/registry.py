"""Every model genlab knows, in one dict: the CLI, run loading and the contract tests enumerate it."""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from torch import nn

from genlab.errors import ConfigError
from genlab.models.autoencoder import AE, AEConfig
from genlab.models.classifier import Classifier, ClassifierConfig
from genlab.models.config import Config
from genlab.models.dcgan import DCGAN, DCGANConfig
from genlab.models.vae import VAE, VAEConfig


class ModelSpec(NamedTuple):
    cls: type[nn.Module]
    config_cls: type[Config]
    defaults: dict[str, Any]    # config fields that differ from the config class's defaults
    description: str
    train_defaults: Mapping[str, Any] = MappingProxyType({})  # TrainConfig fields the model prefers (flags win)


DCGAN_TRAINING = {"lr": 2e-4, "beta1": 0.5, "batch_size": 64}  # Radford et al. 2016

MODELS: dict[str, ModelSpec] = {
    "vae": ModelSpec(VAE, VAEConfig, {}, "MLP VAE 784-400-20, Bernoulli decoder (the standard tutorial model)"),
    "conv-vae": ModelSpec(VAE, VAEConfig, {"arch": "conv"},
                          "conv VAE: two 5x5 stride-2 convs (16, 32), 20-d latent, transposed-conv decoder"),
    "vae-bn": ModelSpec(VAE, VAEConfig, {"hidden": (512, 512, 512), "batch_norm": True, "latent_dim": 2},
                        "MLP VAE, three 512-unit layers with batch norm + ReLU, 2-d latent (for manifold plots)"),
    "conv-vae-4x4": ModelSpec(VAE, VAEConfig, {"arch": "conv", "conv_channels": (32, 64), "kernel_size": 4,
                                               "conv_padding": "valid"},
                              "lecture conv VAE: 4x4 stride-2 convs (32, 64) to 64x5x5, 20-d latent, "
                              "transposed convs (5x5, 4x4) back; batch 64", {"batch_size": 64}),
    "beta-vae": ModelSpec(VAE, VAEConfig, {"beta": 4.0},
                          "beta-VAE (Higgins et al. 2017): the MLP VAE with KL weight beta = 4"),
    "iwae": ModelSpec(VAE, VAEConfig, {"k": 5},
                      "importance-weighted autoencoder (Burda et al. 2016): the MLP VAE trained on the k = 5 bound"),
    "ae": ModelSpec(AE, AEConfig, {}, "MLP autoencoder 784-128-64-12-3 with a mirrored decoder, MSE loss"),
    "conv-ae": ModelSpec(AE, AEConfig, {"arch": "conv", "latent_dim": 16},
                         "conv autoencoder: two 5x5 stride-2 convs (16, 32) to a 16-d code, MSE loss"),
    "deep-ae": ModelSpec(AE, AEConfig, {"hidden": (512, 256, 128, 64), "latent_dim": 32},
                         "deep MLP autoencoder 784-512-256-128-64-32, five layers each side, MSE loss"),
    "denoising-ae": ModelSpec(AE, AEConfig, {"hidden": (256, 128), "latent_dim": 32, "corruption": "gaussian",
                                             "corruption_level": 0.3},
                              "denoising autoencoder 784-256-128-32: rebuilds clean images from inputs with "
                              "Gaussian noise (std 0.3)"),
    "contractive-ae": ModelSpec(AE, AEConfig, {"hidden": (), "latent_dim": 64, "code_activation": "sigmoid",
                                               "contractive": 0.1},
                                "contractive autoencoder (Rifai et al. 2011): one sigmoid layer of 64 units, "
                                "lambda ||dh/dx||^2 = 0.1"),
    "dcgan": ModelSpec(DCGAN, DCGANConfig, {}, "DCGAN (Radford et al. 2016): z of 100 dims, transposed-conv "
                       "generator, conv discriminator; 28, 32 or 64 pixels", DCGAN_TRAINING),
    "classifier": ModelSpec(Classifier, ClassifierConfig, {},
                            "small CNN classifier (two conv blocks, 128-d features): for metrics and inversion"),
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


def data_fields(name: str, image_shape: tuple[int, ...], n_classes: int) -> dict[str, Any]:
    """The config fields a dataset decides (image shape; class count for classifiers) that `name` has."""
    fields = model_spec(name).config_cls.field_names()
    given = {"image_shape": tuple(image_shape), "n_classes": n_classes}
    return {k: v for k, v in given.items() if k in fields}


def build_model(name: str, config: Config) -> nn.Module:
    """Build a registered model from a full config; records its registry name on it."""
    model = model_spec(name).cls(config)
    model.model_name = name
    return model
