"""The model contract as Protocols, so tests and the CLI can check what a model offers."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class AutoEncoder(Protocol):
    """Images (N, C, H, W) in [0, 1] <-> codes (N, latent_dim)."""

    latent_dim: int

    def loss(self, x: Tensor) -> dict[str, Tensor]: ...
    def encode(self, x: Tensor) -> Tensor: ...
    def decode(self, z: Tensor) -> Tensor: ...
    def reconstruct(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class VAE(AutoEncoder, Protocol):
    """An autoencoder with a prior and a posterior: it samples and bounds log p(x)."""

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]: ...
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor: ...
    def elbo(self, x: Tensor) -> Tensor: ...
    def log_likelihood(self, x: Tensor, k: int = 100) -> Tensor: ...


@runtime_checkable
class Generative(Protocol):
    """Anything that draws images (n, C, H, W) in [0, 1]."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor: ...
