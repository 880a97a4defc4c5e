"""Small network blocks shared by the models: MLPs and conv / transposed-conv stacks."""
from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from genlab.errors import ConfigError


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU,
        final_activation: bool = False) -> nn.Sequential:
    """Linear layers sizes[0] -> ... -> sizes[-1] with `activation` between them."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or final_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


def leaky_relu() -> nn.Module:
    return nn.LeakyReLU(0.2)


def conv_stack(channels: Sequence[int], kernel_size: int = 5) -> nn.Sequential:
    """Stride-2 'same' convolutions channels[0] -> ... -> channels[-1], each halving H and W."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(n_in, n_out, kernel_size, stride=2, padding=kernel_size // 2),
                   leaky_relu()]
    return nn.Sequential(*layers)


def deconv_stack(channels: Sequence[int], kernel_size: int = 5) -> nn.Sequential:
    """Stride-2 transposed convolutions, each doubling H and W; no activation after the last."""
    layers: list[nn.Module] = []
    pairs = list(zip(channels[:-1], channels[1:]))
    for i, (n_in, n_out) in enumerate(pairs):
        # o = 2(i - 1) - 2p + k + output_padding = 2i when p = k // 2 and k is odd
        layers.append(nn.ConvTranspose2d(n_in, n_out, kernel_size, stride=2,
                                         padding=kernel_size // 2, output_padding=1))
        if i < len(pairs) - 1:
            layers.append(leaky_relu())
    return nn.Sequential(*layers)


def check_image_shape(arch: str, image_shape: Sequence[int], n_conv_layers: int) -> None:
    """Conv models halve H and W once per layer and double them back: both must divide."""
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ConfigError(f"image_shape must be (channels, height, width); got {tuple(image_shape)}")
    factor = 2 ** n_conv_layers
    _, height, width = image_shape
    if arch == "conv" and (height % factor or width % factor):
        raise ConfigError(
            f"this conv model needs height and width divisible by {factor} "
            f"(it halves them {n_conv_layers} times) but the images are {height}x{width}; "
            f"use --image-size {factor * max(1, round(height / factor))} or an MLP model"
        )


def encoder_body(arch: str, image_shape: Sequence[int], hidden: Sequence[int],
                 conv_channels: Sequence[int], kernel_size: int) -> tuple[nn.Module, int]:
    """Image (N, C, H, W) -> features (N, F); returns the module and F."""
    channels, height, width = image_shape
    if arch == "mlp":
        sizes = [channels * height * width, *hidden]
        return nn.Sequential(nn.Flatten(), mlp(sizes, final_activation=True)), sizes[-1]
    body = nn.Sequential(conv_stack([channels, *conv_channels], kernel_size), nn.Flatten())
    shrink = 2 ** len(conv_channels)
    return body, conv_channels[-1] * (height // shrink) * (width // shrink)


def decoder(arch: str, latent_dim: int, image_shape: Sequence[int], hidden: Sequence[int],
            conv_channels: Sequence[int], kernel_size: int) -> nn.Module:
    """Code (N, latent_dim) -> unbounded outputs (N, C, H, W), mirroring `encoder_body`."""
    channels, height, width = image_shape
    if arch == "mlp":
        sizes = [latent_dim, *reversed(hidden), math.prod(image_shape)]
        return nn.Sequential(mlp(sizes), nn.Unflatten(1, tuple(image_shape)))
    shrink = 2 ** len(conv_channels)
    start = (conv_channels[-1], height // shrink, width // shrink)
    return nn.Sequential(
        nn.Linear(latent_dim, math.prod(start)), leaky_relu(), nn.Unflatten(1, start),
        deconv_stack([*reversed(conv_channels), channels], kernel_size),
    )
