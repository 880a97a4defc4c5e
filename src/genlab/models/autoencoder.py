"""Deterministic autoencoders: MLP or conv encoder to a small code, mirrored decoder."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genlab import losses
from genlab.models.config import Config, option, require
from genlab.nn import check_image_shape, decoder, encoder_body


@dataclass(frozen=True)
class AEConfig(Config):
    arch: str = option("mlp", "encoder/decoder family", ("mlp", "conv"))
    image_shape: tuple[int, int, int] = option((1, 28, 28), "(channels, height, width), set from the data")
    latent_dim: int = option(3, "size of the code")
    hidden: tuple[int, ...] = option((128, 64, 12), "MLP hidden sizes, encoder order; the decoder mirrors them")
    conv_channels: tuple[int, ...] = option((16, 32), "conv encoder channels; the decoder mirrors them")
    kernel_size: int = option(5, "conv kernel size (odd)")
    reconstruction: str = option("mse", "squared error on sigmoid outputs, or Bernoulli cross-entropy on logits",
                                 ("mse", "bce"))

    def __post_init__(self) -> None:
        require(self.arch in ("mlp", "conv"), f"arch must be 'mlp' or 'conv', not {self.arch!r}")
        require(self.reconstruction in ("mse", "bce"),
                f"reconstruction must be 'mse' or 'bce', not {self.reconstruction!r}")
        require(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        require(self.kernel_size % 2 == 1, f"kernel_size must be odd, got {self.kernel_size}")
        check_image_shape(self.arch, self.image_shape, len(self.conv_channels))


class AE(nn.Module):
    """x -> code h = f(x) -> logits g(h); the reconstruction is sigmoid(g(f(x)))."""

    def __init__(self, config: AEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        body, features = encoder_body(c.arch, c.image_shape, c.hidden, c.conv_channels, c.kernel_size)
        self.encoder = nn.Sequential(body, nn.Linear(features, c.latent_dim))
        self.decoder = decoder(c.arch, c.latent_dim, c.image_shape, c.hidden, c.conv_channels, c.kernel_size)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: Tensor) -> Tensor:
        """(N, C, H, W) in [0, 1] -> code (N, latent_dim)."""
        return self.encoder(x)

    def decode(self, h: Tensor) -> Tensor:
        """Code (N, latent_dim) -> logits (N, C, H, W)."""
        return self.decoder(h)

    def reconstruct(self, x: Tensor) -> Tensor:
        """(N, C, H, W) in [0, 1] -> reconstruction in [0, 1]."""
        return torch.sigmoid(self.decode(self.encode(x)))

    def reconstruction_error(self, logits: Tensor, x: Tensor) -> Tensor:
        """(N,) summed over pixels: squared error, or Bernoulli negative log-likelihood in nats."""
        if self.config.reconstruction == "mse":
            return losses.mse_sum(torch.sigmoid(logits), x)
        return -losses.bernoulli_log_likelihood(logits, x)

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """Reconstruction error per image, averaged over the batch."""
        rec = self.reconstruction_error(self.decode(self.encode(x)), x).mean()
        return {"loss": rec, "rec": rec}
