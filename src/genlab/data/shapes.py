"""A procedural dataset: white shapes on black, varying in scale, rotation and position, from a seed.

Each image keeps its ground-truth factor values, so disentanglement can be measured against them. For the
metrics the continuous factors are discretized (data/factors.py): scale, rotation, pos_x and pos_y each into 20
equal-width bins over their sampling range, a level drawn at its bin's centre; shape keeps its 4 classes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.data.dataset import Dataset
from genlab.data.factors import FactorGrid, bin_centres, read_only
from genlab.errors import DataError

CLASSES = ("square", "circle", "triangle", "cross")
FACTOR_NAMES = ("shape", "scale", "rotation", "pos_x", "pos_y")
SIZES = (28, 64)
SUPERSAMPLE = 2  # render at 2x and average: anti-aliased edges
RENDER_CHUNK = 2000  # images drawn at once: at 64 pixels, 2000 supersampled frames are 130 MB of float32


def sample_factors(n: int, generator: torch.Generator) -> Tensor:
    """(n, 5) float32: shape index, scale in [0.5, 1], rotation in [0, 2 pi), x and y in [-1, 1]."""
    u = torch.rand(n, 4, generator=generator)
    shape = torch.randint(len(CLASSES), (n, 1), generator=generator).float()
    return torch.cat([shape, 0.5 + 0.5 * u[:, :1], 2 * math.pi * u[:, 1:2], 2 * u[:, 2:] - 1], dim=1)


def inside_square(u: Tensor, v: Tensor) -> Tensor:
    """Axis-aligned in its frame, half-side 0.8 (corners at radius 1.13, hence the 1.15 margin)."""
    return torch.maximum(u.abs(), v.abs()) <= 0.8


def inside_circle(u: Tensor, v: Tensor) -> Tensor:
    """Radius 1 (rotation is still sampled and recorded, though it cannot show)."""
    return u * u + v * v <= 1.0


def inside_triangle(u: Tensor, v: Tensor) -> Tensor:
    """Equilateral, apex up, circumradius 1."""
    return (v >= -0.5) & (v <= 1.0 - math.sqrt(3) * u.abs())


def inside_cross(u: Tensor, v: Tensor) -> Tensor:
    """A plus sign: two bars of half-width 0.3 and half-length 1."""
    au, av = u.abs(), v.abs()
    return ((au <= 0.3) & (av <= 1.0)) | ((av <= 0.3) & (au <= 1.0))


# Membership tests in the shape's own frame (radius ~1), in CLASSES order
INSIDE = (inside_square, inside_circle, inside_triangle, inside_cross)


def shape_frame(factors: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """(B, 5) factors -> (u, v), each (B, S, S) at S = size * SUPERSAMPLE: pixel centres in each
    shape's own frame (centred, unrotated, radius 1)."""
    fine = size * SUPERSAMPLE
    grid = (torch.arange(fine, dtype=torch.float32) + 0.5) / SUPERSAMPLE  # pixel-centre coordinates
    radius = factors[:, 1] * size * 0.3
    margin = size / 2 - 1.15 * radius - 1  # keep the whole shape inside the frame
    cx, cy = size / 2 + factors[:, 3] * margin, size / 2 + factors[:, 4] * margin
    dx = (grid.view(1, 1, -1) - cx.view(-1, 1, 1)) / radius.view(-1, 1, 1)
    dy = (cy.view(-1, 1, 1) - grid.view(1, -1, 1)) / radius.view(-1, 1, 1)  # y points up
    cos, sin = torch.cos(factors[:, 2]).view(-1, 1, 1), torch.sin(factors[:, 2]).view(-1, 1, 1)
    return cos * dx + sin * dy, -sin * dx + cos * dy  # rotate the frame by -rotation


def render(factors: Tensor, size: int) -> Tensor:
    """(B, 5) factors -> uint8 (B, 1, size, size) images."""
    images = torch.empty(factors.shape[0], 1, size, size, dtype=torch.uint8)
    for k, inside_shape in enumerate(INSIDE):
        # draw each class separately: every pixel is tested against one shape, not all four
        rows = torch.nonzero(factors[:, 0] == k).squeeze(1)
        coverage = F.avg_pool2d(inside_shape(*shape_frame(factors[rows], size)).float().unsqueeze(1),
                                SUPERSAMPLE)
        images[rows] = (coverage * 255).round().to(torch.uint8)
    return images


# the metrics' levels: the 4 classes, then 20 bins over each continuous factor's range (sample_factors below)
LEVEL_VALUES = read_only(np.arange(4.0), bin_centres(0.5, 1.0), bin_centres(0.0, 2 * math.pi), bin_centres(-1.0, 1.0),
                         bin_centres(-1.0, 1.0))


@dataclass(frozen=True, eq=False)
class ShapesFactors(FactorGrid):
    """The discretized factors of `shapes` at one image size; images_for draws each level at its bin's centre."""

    names: tuple[str, ...] = FACTOR_NAMES
    level_values: tuple[np.ndarray, ...] = LEVEL_VALUES
    image_size: int = 28

    def images_for(self, factors: np.ndarray | Tensor) -> Tensor:
        """uint8 (n, 1, S, S) for int (n, 5) levels, anti-aliased as the dataset's images are."""
        levels = self.check_levels(factors)
        values = np.stack([self.level_values[k][levels[:, k]] for k in range(len(self.names))], axis=1)
        chunks = torch.tensor(values, dtype=torch.float32).split(RENDER_CHUNK)
        return torch.cat([render(chunk, self.image_size) for chunk in chunks])


def make_shapes(n_train: int = 12000, n_test: int = 2000, image_size: int = 28, seed: int = 0) -> Dataset:
    """The shapes Dataset: uint8 (N, 1, S, S) images, labels = shape class, factors kept."""
    if image_size not in SIZES:
        raise DataError(f"shapes is drawn at {' or '.join(map(str, SIZES))} pixels, not {image_size}; "
                        f"use --image-size {SIZES[0]} or {SIZES[1]}")
    generator = torch.Generator().manual_seed(seed)
    factors = sample_factors(n_train + n_test, generator)
    images = torch.cat([render(chunk, image_size) for chunk in factors.split(RENDER_CHUNK)])
    labels = factors[:, 0].long()
    return Dataset(name="shapes", train_x=images[:n_train], train_y=labels[:n_train], test_x=images[n_train:],
                   test_y=labels[n_train:], classes=CLASSES, factor_names=FACTOR_NAMES,
                   train_factors=factors[:n_train], test_factors=factors[n_train:],
                   source=f"procedural, seed {seed}", factors=ShapesFactors(image_size=image_size))
