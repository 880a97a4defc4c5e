"""Small network blocks shared by the models: MLPs and conv / transposed-conv stacks."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from genlab.sizes import conv_sizes


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's (first) parameters: where its inputs must go."""
    return next(module.parameters()).device


def standard_normal(n: int, dim: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ N(0, I), (n, dim), on `device`: drawn on the generator's device when one is given (a seeded CPU
    generator gives the same codes on any device), then moved."""
    z = torch.randn(n, dim, generator=generator, device=generator.device if generator else device)
    return z.to(device)


class GatedLinear(nn.Module):
    """A gated hidden layer (Dauphin et al. 2017): h = (W1 x + b1) * sigmoid(W2 x + b2), (N, n_in) -> (N, n_out)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, 2 * n_out)  # W1 and W2 stacked: one matmul computes both halves

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.linear(x).chunk(2, dim=-1)
        return value * torch.sigmoid(gate)


def mlp(sizes: Sequence[int], activation: Callable[[], nn.Module] = nn.ReLU,
        final_activation: bool = False, batch_norm: bool = False, gated: bool = False) -> nn.Sequential:
    """Linear layers sizes[0] -> ... -> sizes[-1] with `activation` (after batch norm, if asked) between them;
    gated: every hidden layer a GatedLinear instead (no batch norm, no separate activation)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        hidden = i < len(sizes) - 2 or final_activation
        if hidden and gated:
            layers.append(GatedLinear(n_in, n_out))
            continue
        # a bias before batch norm is cancelled by its mean subtraction: leave it out
        layers.append(nn.Linear(n_in, n_out, bias=not (hidden and batch_norm)))
        if hidden:
            layers += [nn.BatchNorm1d(n_out)] if batch_norm else []
            layers.append(activation())
    return nn.Sequential(*layers)


def pad_width(kernel_size: int, padding: str) -> int:
    """Zeros added on each side by a stride-2 conv: 'same' k // 2 (odd k: o = i / 2 for even i), 'half' k / 2 - 1
    (even k, as TensorFlow's SAME: o = floor(i / 2) for any i), 'valid' none."""
    return {"same": kernel_size // 2, "half": (kernel_size - 2) // 2}.get(padding, 0)


def conv_stack(channels: Sequence[int], kernel_size: int = 5, padding: str = "same",
               activation: Callable[[], nn.Module] | None = None) -> nn.Sequential:
    """Stride-2 convolutions channels[0] -> ... -> channels[-1], each followed by `activation` (leaky ReLU 0.2);
    'same' padding halves H and W exactly, 'half' halves them rounding down."""
    activation = activation or leaky_relu
    layers: list[nn.Module] = []
    for n_in, n_out in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(n_in, n_out, kernel_size, stride=2, padding=pad_width(kernel_size, padding)),
                   activation()]
    return nn.Sequential(*layers)


def deconv_stack(channels: Sequence[int], kernel_size: int, heights: Sequence[int], widths: Sequence[int],
                 padding: str = "same", activation: Callable[[], nn.Module] | None = None) -> nn.Sequential:
    """Stride-2 transposed convolutions walking `heights`/`widths` (small to large), `activation` (leaky ReLU 0.2)
    between them and none after the last.

    'same': o = 2(i - 1) - 2p + k + 1 = 2i with p = k // 2, k odd. 'half': o = 2(i - 1) - 2p + k + q = 2i + q with
    p = k / 2 - 1, k even, and the output padding q (0 or 1) gives back the row an odd size lost. 'valid': p = 0 and
    the kernel is chosen per layer so that o = 2(i - 1) + k' lands exactly on the encoder's size.
    """
    activation = activation or leaky_relu
    layers: list[nn.Module] = []
    pairs = list(zip(channels[:-1], channels[1:]))
    for i, (n_in, n_out) in enumerate(pairs):
        if padding == "same":
            layers.append(nn.ConvTranspose2d(n_in, n_out, kernel_size, stride=2, padding=kernel_size // 2,
                                             output_padding=1))
        elif padding == "half":
            odd_rows = (heights[i + 1] - 2 * heights[i], widths[i + 1] - 2 * widths[i])
            layers.append(nn.ConvTranspose2d(n_in, n_out, kernel_size, stride=2, padding=(kernel_size - 2) // 2,
                                             output_padding=odd_rows))
        else:
            kernel = (heights[i + 1] - 2 * (heights[i] - 1), widths[i + 1] - 2 * (widths[i] - 1))
            layers.append(nn.ConvTranspose2d(n_in, n_out, kernel, stride=2))
        if i < len(pairs) - 1:
            layers.append(activation())
    return nn.Sequential(*layers)


def leaky_relu() -> nn.Module:
    """The conv models' activation: leaky ReLU with slope 0.2."""
    return nn.LeakyReLU(0.2)


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"leaky_relu": leaky_relu, "relu": nn.ReLU}  # by config name


def encoder_body(arch: str, image_shape: Sequence[int], hidden: Sequence[int], conv_channels: Sequence[int],
                 kernel_size: int, batch_norm: bool = False, padding: str = "same",
                 gated: bool = False, dense: Sequence[int] = (),
                 activation: str = "leaky_relu") -> tuple[nn.Module, int]:
    """Image (N, C, H, W) -> features (N, F); returns the module and F (gated: MLP hidden layers gated). Conv:
    the conv stack, then the fully connected layers `dense`, all with `activation` (a name of ACTIVATIONS)."""
    channels, height, width = image_shape
    if arch == "mlp":
        sizes = [channels * height * width, *hidden]
        body = mlp(sizes, final_activation=True, batch_norm=batch_norm, gated=gated)
        return nn.Sequential(nn.Flatten(), body), sizes[-1]
    n = len(conv_channels)
    h, w = conv_sizes(height, n, kernel_size, padding)[-1], conv_sizes(width, n, kernel_size, padding)[-1]
    act = ACTIVATIONS[activation]
    sizes = [conv_channels[-1] * h * w, *dense]
    body = nn.Sequential(conv_stack([channels, *conv_channels], kernel_size, padding, act), nn.Flatten(),
                         *mlp(sizes, act, final_activation=True))
    return body, sizes[-1]


def decoder(arch: str, latent_dim: int, image_shape: Sequence[int], hidden: Sequence[int],
            conv_channels: Sequence[int], kernel_size: int, batch_norm: bool = False,
            padding: str = "same", gated: bool = False, dense: Sequence[int] = (),
            activation: str = "leaky_relu") -> nn.Module:
    """Code (N, latent_dim) -> unbounded outputs (N, C, H, W), mirroring `encoder_body`."""
    channels, height, width = image_shape
    if arch == "mlp":
        sizes = [latent_dim, *reversed(hidden), math.prod(image_shape)]
        return nn.Sequential(mlp(sizes, batch_norm=batch_norm, gated=gated), nn.Unflatten(1, tuple(image_shape)))
    n = len(conv_channels)
    heights = conv_sizes(height, n, kernel_size, padding)[::-1]
    widths = conv_sizes(width, n, kernel_size, padding)[::-1]
    start = (conv_channels[-1], heights[0], widths[0])
    act = ACTIVATIONS[activation]
    return nn.Sequential(  # flat, so that a model without `dense` keeps its checkpoints' parameter names
        *mlp([latent_dim, *reversed(dense), math.prod(start)], act, final_activation=True), nn.Unflatten(1, start),
        deconv_stack([*reversed(conv_channels), channels], kernel_size, heights, widths, padding, act),
    )
