"""The built-in models as data, without torch: name, class, config class, defaults, description and preferred
training settings. The command line builds its flags from this; models/registry.py adds the classes (and the
models of installed packages) to make MODELS."""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from genlab.models.config import Config
from genlab.models.configs import AEConfig, ClassifierConfig, DCGANConfig, HVAEConfig, VAEConfig


class Entry(NamedTuple):
    cls: str                    # the model class's name in its family module (see registry.CLASSES)
    config_cls: type[Config]
    defaults: dict[str, Any]    # config fields that differ from the config class's defaults
    description: str
    train_defaults: Mapping[str, Any] = MappingProxyType({})  # TrainConfig fields the model prefers (flags win)


SET_FROM_DATA = ("image_shape", "n_classes")  # model fields a dataset decides, never a file or a flag
DCGAN_TRAINING = {"lr": 2e-4, "beta1": 0.5, "batch_size": 64}  # Radford et al. 2016
PROTOCOL_MLP = {"gated": True, "hidden": (300, 300), "latent_dim": 40}  # the VampPrior paper's MLP VAEs

CATALOG: Mapping[str, Entry] = MappingProxyType({
    "vae": Entry("VAE", VAEConfig, {}, "MLP VAE 784-400-20, Bernoulli decoder (the standard tutorial model)"),
    "conv-vae": Entry("VAE", VAEConfig, {"arch": "conv"},
                      "conv VAE: two 5x5 stride-2 convs (16, 32), 20-d latent, transposed-conv decoder"),
    "vae-bn": Entry("VAE", VAEConfig, {"hidden": (512, 512, 512), "batch_norm": True, "latent_dim": 2},
                    "MLP VAE, three 512-unit layers with batch norm + ReLU, 2-d latent (for manifold plots)"),
    "conv-vae-4x4": Entry("VAE", VAEConfig, {"arch": "conv", "conv_channels": (32, 64), "kernel_size": 4,
                                           "conv_padding": "valid"},
                          "lecture conv VAE: 4x4 stride-2 convs (32, 64) to 64x5x5, 20-d latent, "
                          "transposed convs (5x5, 4x4) back; batch 64", {"batch_size": 64}),
    "beta-vae": Entry("VAE", VAEConfig, {"beta": 4.0},
                      "beta-VAE (Higgins et al. 2017): the MLP VAE with KL weight beta = 4"),
    "iwae": Entry("VAE", VAEConfig, {"k": 5},
                  "importance-weighted autoencoder (Burda et al. 2016): the MLP VAE trained on the k = 5 bound"),
    "vamp-vae": Entry("VAE", VAEConfig, {**PROTOCOL_MLP, "prior": "vamp"},
                      "VampPrior VAE (Tomczak & Welling 2018): gated MLP 784-300-300-40, p(z) a mixture of "
                      "the posteriors at 500 learned pseudo-inputs"),
    "hvae": Entry("HVAE", HVAEConfig, {},
                  "two-level hierarchical VAE (Tomczak & Welling 2018): gated 300-unit MLPs, z1 and z2 of 40 "
                  "dims; --prior vamp for a VampPrior on z2"),
    "ae": Entry("AE", AEConfig, {}, "MLP autoencoder 784-128-64-12-3 with a mirrored decoder, MSE loss"),
    "conv-ae": Entry("AE", AEConfig, {"arch": "conv", "latent_dim": 16},
                     "conv autoencoder: two 5x5 stride-2 convs (16, 32) to a 16-d code, MSE loss"),
    "deep-ae": Entry("AE", AEConfig, {"hidden": (512, 256, 128, 64), "latent_dim": 32},
                     "deep MLP autoencoder 784-512-256-128-64-32, five layers each side, MSE loss"),
    "denoising-ae": Entry("AE", AEConfig, {"hidden": (256, 128), "latent_dim": 32, "corruption": "gaussian",
                                         "corruption_level": 0.3},
                          "denoising autoencoder 784-256-128-32: rebuilds clean images from inputs with "
                          "Gaussian noise (std 0.3)"),
    "contractive-ae": Entry("AE", AEConfig, {"hidden": (), "latent_dim": 64, "code_activation": "sigmoid",
                                           "contractive": 0.1},
                            "contractive autoencoder (Rifai et al. 2011): one sigmoid layer of 64 units, "
                            "lambda ||dh/dx||^2 = 0.1"),
    "dcgan": Entry("DCGAN", DCGANConfig, {}, "DCGAN (Radford et al. 2016): z of 100 dims, transposed-conv "
                   "generator, conv discriminator; 28, 32 or 64 pixels", DCGAN_TRAINING),
    "classifier": Entry("Classifier", ClassifierConfig, {},
                        "small CNN classifier (two conv blocks, 128-d features): for metrics and inversion"),
})
