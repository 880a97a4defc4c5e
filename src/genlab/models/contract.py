"""The model contract as Protocols (Decoder, AutoEncoder, VAE, Generative, GAN, WithAuxiliary, Classifier): what a
model offers."""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

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
class WithAuxiliary(Protocol):
    """A model with a second network trained on a loss of its own by an optimizer of its own (FactorVAE's
    discriminator). loss(x)["loss"] is the model's objective plus the network's, "aux_loss", built so that each
    reaches only its own weights (stopped gradients): one backward pass, then each optimizer steps."""

    def auxiliary(self) -> tuple[torch.nn.Module, dict[str, Any]]: ...  # the network, its Adam keyword arguments


@runtime_checkable
class WithLikelihoodNetworks(Protocol):
    """A VAE whose likelihood estimate may run in bfloat16 (`genlab evaluate --precision bf16`): the networks that
    map codes to the parameters of p(x|z) and do nothing else. The estimate runs them under autocast and takes their
    outputs back in float32; the posterior, the prior and every density stay float32, so that the draws and the
    importance weights keep their precision."""

    def likelihood_networks(self) -> list[torch.nn.Module]: ...


@runtime_checkable
class Classifier(Protocol):
    """Images (N, C, H, W) in [0, 1] -> features and class logits; its loss needs the labels. A classifier whose
    `targets` attribute is "attributes" is fed the data's attribute rows, float (N, A) 0/1, instead of classes."""

    def loss(self, x: Tensor, y: Tensor) -> dict[str, Tensor]: ...
    def features(self, x: Tensor) -> Tensor: ...
    def logits(self, x: Tensor) -> Tensor: ...


def members(protocol: type) -> list[str]:
    """The methods and attributes a Protocol of this module asks for, its bases' first, in the order declared."""
    found: list[str] = []
    for base in reversed(protocol.__mro__):
        if getattr(base, "_is_protocol", False) and base.__module__ == __name__:
            own = [*base.__dict__.get("__annotations__", {}),
                   *(key for key, value in base.__dict__.items() if callable(value) and not key.startswith("_"))]
            found += [m for m in own if m not in found]
    return found


def missing_members(model: object, protocol: type) -> list[str]:
    """The members of `protocol` that `model` lacks (or holds as None), in the order declared."""
    return [m for m in members(protocol) if getattr(model, m, None) is None]


def contract_gap(model: object, *protocols: type) -> str:
    """'it lacks to_image of the AutoEncoder contract (genlab.models.contract)' for a model written to the nearest
    of `protocols` with a part left out: it keeps more of that protocol's own members (those its bases do not
    ask for) than it lacks in all; '' for any other model (a plain autoencoder is no partial VAE)."""
    for protocol in sorted(protocols, key=lambda p: len(missing_members(model, p))):
        missing = missing_members(model, protocol)
        inherited = {m for base in protocol.__mro__[1:] if base.__module__ == __name__ for m in members(base)}
        kept = [m for m in members(protocol) if m not in inherited and m not in missing]
        if missing and len(kept) > len(missing):
            return f"it lacks {', '.join(missing)} of the {protocol.__name__} contract (genlab.models.contract)"
    return ""
