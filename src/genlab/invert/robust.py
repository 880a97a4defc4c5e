"""Class visualization that transfers: an image parameterised in a decorrelated colour and Fourier basis,
seen through a random jitter, scale and rotation at every step (Olah, Mordvintsev & Schubert 2017).

Pixel-space ascent finds high-frequency patterns that fool one network; here every frequency starts equally
loud after a 1/f scaling, colours move along ImageNet's principal colour axes, and a pattern must survive
random small moves and zooms to raise the score, so what grows is large and shaped like the class.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.config import require
from genlab.invert.ascent import OnStep
from genlab.progress import progress_bar

# the square root of ImageNet's RGB covariance (rows: R, G, B; columns: principal colour axes), as published
COLOUR_SQRT = ((0.26, 0.09, 0.02), (0.27, 0.00, -0.05), (0.27, -0.09, 0.03))


@dataclass(frozen=True)
class Transforms:
    """The random view each step optimises through: shift (fraction of the side), scale range, rotation (degrees)."""

    shift: float = 0.06
    scale: tuple[float, float] = (0.9, 1.1)
    degrees: float = 10.0


def frequency_scale(height: int, width: int, decay: float = 1.0) -> Tensor:
    """(H, W // 2 + 1) weights (side / 4) / f^decay, f in cycles per image (at least 1): white becomes 1/f.

    side / 4 sets the loudness: with the orthonormal inverse FFT, unit coefficients give pixel swings of order 1.
    """
    fy = torch.fft.fftfreq(height).view(-1, 1) * height
    fx = torch.fft.rfftfreq(width).view(1, -1) * width
    return max(height, width) / 4 / (fy.pow(2) + fx.pow(2)).sqrt().clamp_min(1.0).pow(decay)


def colour_mix() -> Tensor:
    """(3, 3) decorrelated colour -> RGB, its longest column scaled to length 1."""
    mix = torch.tensor(COLOUR_SQRT)
    return mix / mix.norm(dim=0).max()


@dataclass
class FourierImage:
    """Images (N, 3, H, W) in (0, 1) from a learnable spectrum: sigmoid(colour_mix @ irfft2(1/f * spectrum))."""

    spectrum: Tensor  # (N, 3, H, W // 2 + 1, 2) real and imaginary parts: the parameters
    height: int
    width: int

    @classmethod
    def noise(cls, n: int, height: int, width: int, seed: int = 0, spread: float = 0.01,
              device: str | torch.device = "cpu") -> FourierImage:
        generator = torch.Generator().manual_seed(seed)
        spectrum = spread * torch.randn(n, 3, height, width // 2 + 1, 2, generator=generator)
        return cls(spectrum.to(device).requires_grad_(True), height, width)

    def images(self) -> Tensor:
        """(N, 3, H, W) in (0, 1): differentiable in the spectrum."""
        scale = frequency_scale(self.height, self.width).to(self.spectrum.device)
        spectrum = torch.view_as_complex(self.spectrum) * scale
        decorrelated = torch.fft.irfft2(spectrum, s=(self.height, self.width), norm="ortho")
        rgb = torch.einsum("ij,njhw->nihw", colour_mix().to(decorrelated.device), decorrelated)
        return torch.sigmoid(rgb)


def random_views(images: Tensor, transforms: Transforms, generator: torch.Generator) -> Tensor:
    """Each image moved, zoomed and rotated at random, one bilinear resampling; grey fills what comes in."""
    n = images.shape[0]
    uniform = torch.rand(n, 4, generator=generator).to(images.device)
    angle = math.radians(transforms.degrees) * (2 * uniform[:, 0] - 1)
    low, high = transforms.scale
    zoom = low + (high - low) * uniform[:, 1]
    shift = 2 * transforms.shift * (2 * uniform[:, 2:] - 1)  # affine_grid spans [-1, 1]: a side is 2 units
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5


def robust_class_visualization(logits: Callable[[Tensor], Tensor], targets: Sequence[int] | Tensor,
                               size: Sequence[int], *, steps: int = 128, lr: float = 0.05,
                               transforms: Transforms = Transforms(), seed: int = 0, progress: bool = False,
                               on_step: OnStep | None = None, device: str | torch.device = "cpu") -> Tensor:
    """Images (N, 3, *size) in (0, 1), one per target, that ascend the target logit through random views.

    Adam on the spectrum of a FourierImage; each step scores a fresh random view (see random_views).
    """
    require(steps >= 1, f"steps must be at least 1, got {steps}")
    require(lr > 0 and math.isfinite(lr), f"the learning rate must be a positive number, got {lr}")
    targets = torch.as_tensor(targets, dtype=torch.long, device=device).view(-1, 1)
    image = FourierImage.noise(targets.shape[0], *size, seed=seed, device=device)
    optimizer, generator = torch.optim.Adam([image.spectrum], lr=lr), torch.Generator().manual_seed(seed)
    with progress_bar(steps, "class visualization (robust)", enabled=progress) as bar:
        for step in range(steps):
            optimizer.zero_grad()
            score = logits(random_views(image.images(), transforms, generator)).gather(1, targets)
            (-score.sum()).backward()
            optimizer.step()
            bar.update()
            if on_step is not None:
                on_step(step + 1, image.images().detach())
    return image.images().detach()
