"""The model contract as Protocols (Decoder, AutoEncoder, VAE, Generative, GAN, Classifier): what a model offers."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Decoder(Protocol):
    """Every model with a latent space: codes (N, latent_dim) -> `decode` -> `to_image` -> images in [0, 1].

    decode returns the model's own output (logits, means, a generator's tanh output), to_image the pixels.
    Methods only, so `issubclass(model_class, Decoder)` works before a model is built.
    """

    def decode(self, z: Tensor) -> Tensor: ...
    def to_image(self, decoded: Tensor) -> Tensor: ...  # decode's output -> image (N, C, H, W) in [0, 1]


@runtime_checkable
class AutoEncoder(Decoder, Protocol):
    """Images (N, C, H, W) in [0, 1] <-> codes (N, latent_dim)."""

    latent_dim: int

    def loss(self, x: Tensor) -> dict[str, Tensor]: ...
    def encode(self, x: Tensor) -> Tensor: ...
    def reconstruct(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class VAE(AutoEncoder, Protocol):
    """An autoencoder with a prior and a posterior: it samples and bounds log p(x)."""

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]: ...
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor: ...
    def elbo(self, x: Tensor) -> Tensor: ...
    def log_likelihood(self, x: Tensor, k: int = 100) -> Tensor: ...


@runtime_checkable
class Generative(Decoder, Protocol):
    """Anything that draws images (n, C, H, W) in [0, 1]: to_image(decode(z)) for z from its prior."""

    latent_dim: int

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor: ...


@runtime_checkable
class GAN(Generative, Protocol):
    """A generator and a discriminator trained by the two-optimizer step."""

    generator: torch.nn.Module
    discriminator: torch.nn.Module

    def d_loss(self, x: Tensor, fake: Tensor | None = None) -> dict[str, Tensor]: ...
    def g_loss(self, n: int, fake: Tensor | None = None) -> dict[str, Tensor]: ...
    def generate(self, n: int) -> Tensor: ...
    def loss_record(self, d: dict[str, Tensor], g: dict[str, Tensor]) -> dict[str, Tensor]: ...  # both players


@runtime_checkable
class Classifier(Protocol):
    """Images (N, C, H, W) in [0, 1] -> features and class logits; its loss needs the labels."""

    def loss(self, x: Tensor, y: Tensor) -> dict[str, Tensor]: ...
    def features(self, x: Tensor) -> Tensor: ...
    def logits(self, x: Tensor) -> Tensor: ...
