"""Deterministic autoencoders: MLP or conv encoder to a small code, mirrored decoder; denoising and contractive."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genlab import losses
from genlab.config import Config, option, require
from genlab.nn import decoder, encoder_body
from genlab.sizes import check_image_shape


@dataclass(frozen=True)
class AEConfig(Config):
    arch: str = option("mlp", "encoder/decoder family", ("mlp", "conv"))
    image_shape: tuple[int, int, int] = option((1, 28, 28), "(channels, height, width), set from the data",
                                             low=1, high=2048)
    latent_dim: int = option(3, "size of the code", low=1, high=4096)
    hidden: tuple[int, ...] = option((128, 64, 12), "MLP hidden sizes, encoder order; the decoder mirrors them",
                                     low=1, high=16384, when={"arch": ("mlp",)})
    conv_channels: tuple[int, ...] = option((16, 32), "conv encoder channels; the decoder mirrors them",
                                            low=1, high=4096, when={"arch": ("conv",)})
    kernel_size: int = option(5, "conv kernel size (odd)", low=1, high=15, when={"arch": ("conv",)})
    reconstruction: str = option("mse", "squared error on sigmoid outputs, or Bernoulli cross-entropy on logits",
                                 ("mse", "bce"))
    code_activation: str = option("none", "squashing of the code: none (linear) or sigmoid", ("none", "sigmoid"))
    corruption: str = option("none", "denoising: corrupt the input the encoder sees, rebuild the clean image; "
                             "additive Gaussian noise or masking noise", ("none", "gaussian", "mask"))
    corruption_level: float = option(0.0, "std of the Gaussian noise, or the fraction of pixels masked to 0",
                                     low=0.0, high=100.0)
    contractive: float = option(0.0, "contractive AE: weight lambda of ||dh/dx||_F^2 (0 turns it off)",
                                 low=0.0, high=1e6)

    def __post_init__(self) -> None:
        require(self.kernel_size % 2 == 1, f"kernel_size must be odd, got {self.kernel_size}")
        require(self.corruption != "mask" or self.corruption_level < 1,
                f"masking noise hides a fraction of the pixels: corruption_level must be < 1, "
                f"got {self.corruption_level}")
        check_image_shape(self.arch, self.image_shape, len(self.conv_channels))


class AE(nn.Module):
    """x -> code h = f(x) -> logits g(h); the reconstruction is sigmoid(g(f(x)))."""

    def __init__(self, config: AEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        body, features = encoder_body(c.arch, c.image_shape, c.hidden, c.conv_channels, c.kernel_size)
        code = [nn.Linear(features, c.latent_dim)] + ([nn.Sigmoid()] if c.code_activation == "sigmoid" else [])
        self.encoder = nn.Sequential(body, *code)
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

    def to_image(self, decoded: Tensor) -> Tensor:
        """Decoder logits -> image in [0, 1]."""
        return torch.sigmoid(decoded)

    def reconstruct(self, x: Tensor) -> Tensor:
        """(N, C, H, W) in [0, 1] -> reconstruction in [0, 1]."""
        return self.to_image(self.decode(self.encode(x)))

    def reconstruction_error(self, logits: Tensor, x: Tensor) -> Tensor:
        """(N,) summed over pixels: squared error, or Bernoulli negative log-likelihood in nats."""
        if self.config.reconstruction == "mse":
            return losses.mse_sum(torch.sigmoid(logits), x)
        return -losses.bernoulli_log_likelihood(logits, x)

    def corrupt(self, x: Tensor) -> Tensor:
        """x~ ~ q(x~|x): additive Gaussian noise (clipped to [0, 1]) or masking noise; x itself when off."""
        c = self.config
        if c.corruption == "gaussian":
            return (x + c.corruption_level * torch.randn_like(x)).clamp(0, 1)
        if c.corruption == "mask":
            return x * (torch.rand_like(x) >= c.corruption_level)
        return x

    def is_single_sigmoid_layer(self) -> bool:
        """True when h = sigmoid(W x + b) directly: then the Jacobian has a closed form."""
        c = self.config
        return c.arch == "mlp" and not c.hidden and c.code_activation == "sigmoid"

    def contractive_penalty(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        """||dh/dx||_F^2 per image, (N,): exact, in closed form for one sigmoid layer, else by autograd.

        h = encode(x) may be passed in when the caller has it (then x must require grad for the autograd path).
        """
        if self.is_single_sigmoid_layer():
            h = self.encode(x) if h is None else h
            weight = self.encoder[1].weight  # (latent_dim, C*H*W)
            # h_j = sigmoid(w_j . x + b_j)  =>  ||J||_F^2 = sum_j (h_j (1 - h_j))^2 ||w_j||^2
            return ((h * (1 - h)) ** 2 * weight.pow(2).sum(1)).sum(1)
        return jacobian_frobenius_sq(self.encode, x) if h is None else code_jacobian_frobenius_sq(h, x)

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """Reconstruction error of the clean x from the (possibly corrupted) input, plus lambda ||J||^2."""
        x_in = self.corrupt(x)
        contractive = self.config.contractive > 0
        by_autograd = contractive and not self.is_single_sigmoid_layer()
        if by_autograd:
            x_in = x_in.detach().requires_grad_(True)  # autograd needs a leaf to differentiate h against
        with torch.enable_grad() if by_autograd else contextlib.nullcontext():  # evaluation runs under no_grad
            h = self.encode(x_in)  # one encoder pass serves the reconstruction and the penalty
        rec = self.reconstruction_error(self.decode(h), x).mean()
        if not contractive:
            return {"loss": rec, "rec": rec}
        penalty = self.contractive_penalty(x_in, h).mean()
        return {"loss": rec + self.config.contractive * penalty, "rec": rec, "contractive": penalty}


def jacobian_frobenius_sq(f, x: Tensor) -> Tensor:
    """||df/dx||_F^2 per example for f: (N, ...) -> (N, D) acting on each example alone: (N,)."""
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        return code_jacobian_frobenius_sq(f(x), x)


def code_jacobian_frobenius_sq(h: Tensor, x: Tensor) -> Tensor:
    """||dh/dx||_F^2 per example, (N,), for codes h (N, D) computed from x, each example on its own.

    One reverse pass per output dimension (D passes); differentiable (create_graph), so it can be trained.
    """
    with torch.enable_grad():
        total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for j in range(h.shape[1]):
            (row,) = torch.autograd.grad(h[:, j].sum(), x, create_graph=True)  # examples are independent
            total = total + row.pow(2).flatten(1).sum(1)
    return total
