"""`sprites`: the dSprites factor grid rendered procedurally, 737,280 binary 64x64 images addressable by factor.

The grid is dSprites' (Matthey et al. 2017): 3 shapes (square, ellipse, heart) x 6 scales linearly in [0.5, 1]
x 40 orientations 2 pi i / 40 over [0, 2 pi) x 32 x and 32 y positions linearly in [0, 1], white on black,
one image per combination, numbered in dSprites' order (mixed radix, pos_y fastest). dSprites' sixth factor,
colour, has one value and is left out. Where the real file differs: its 40 orientations are linspace(0, 2 pi),
so its first and last orientation draw the same image; here they are distinct.

Drawing: pixel centres are tested against each shape's exact outline (no anti-aliasing, binary). At scale s a
shape reaches s * RADIUS pixels from its centre (its circumradius); positions run from MARGIN to 64 - MARGIN,
x left to right and y top to bottom (array order), so every sprite stays inside the frame at any orientation;
orientation turns the sprite counter-clockwise as seen.

The test split is fixed for every run: the grid is shuffled once with SPLIT_SEED, the first held_out_count(n) of
the shuffle are the test images (10,000 of the full grid) and the next ones train. `sprites:N` takes the first
N of the same shuffle (a seeded uniform subset, N // 10 of them for test), for quick runs and tests.
The images are kept packed (data/packed.py: 377 MB for the full grid rather than 3 GB), the test images also as
uint8 (41 MB). `factors.images_for` gives any factor combination: the full grid's looks it up among the packed images,
a subset's (SpritesFactors) draws it, about 1 ms per 64 images on one thread.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from genlab.data.dataset import Dataset
from genlab.data.factors import (
    FactorGrid,
    PackedGridFactors,
    grid_levels,
    inverse_order,
    read_only,
)
from genlab.data.packed import PackedImages, pack_images
from genlab.errors import DataError

SHAPES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
LEVEL_VALUES = read_only(np.arange(3.0), np.linspace(0.5, 1.0, 6), 2 * math.pi * np.arange(40) / 40,
                         np.linspace(0.0, 1.0, 32), np.linspace(0.0, 1.0, 32))
SIZES = tuple(len(values) for values in LEVEL_VALUES)
GRID_SIZE = math.prod(SIZES)  # 737,280
IMAGE_SIZE = 64
RADIUS = 12.0                 # pixels from centre to the farthest point of a sprite at scale 1
MARGIN = RADIUS + 1.0         # centre of a sprite at position 0: one pixel clear of the edge at scale 1
TEST_IMAGES = 10_000          # held out of the full grid
SPLIT_SEED = 0
# pixels floor(centre) - HALF_WINDOW .. floor(centre) + HALF_WINDOW - 1 hold every pixel centre within RADIUS
HALF_WINDOW = math.ceil(RADIUS) + 1  # so only a 26x26 window of the 64x64 frame is tested
RENDER_CHUNK = 256            # images drawn at once: their float32 (B, 26, 26) windows stay in cache
PACK_CHUNK = 4096             # images drawn, then packed, at a time: 16 MB of bool pixels
HEART_SCALE, HEART_CENTROID = 1.2935, 0.2935  # the heart curve's circumradius and centroid height


def inside_square(u: Tensor, v: Tensor) -> Tensor:
    """Side sqrt(2): corners on the unit circle."""
    return torch.maximum(u.abs(), v.abs()) <= math.sqrt(0.5)


def inside_ellipse(u: Tensor, v: Tensor) -> Tensor:
    """Semi-axes 1 (along u, horizontal at orientation 0) and 0.55."""
    return u.square() + (v / 0.55).square() <= 1.0


def inside_heart(u: Tensor, v: Tensor) -> Tensor:
    """The heart curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, lobes up, scaled to circumradius 1 about its centroid."""
    x, y = u * HEART_SCALE, v * HEART_SCALE + HEART_CENTROID
    x2 = x.square()
    return (x2 + y.square() - 1).pow(3) <= x2 * y.pow(3)


INSIDE = (inside_square, inside_ellipse, inside_heart)  # in SHAPES order


def level_tables() -> dict[str, Tensor]:
    """Per-level constants, computed once in float64: a pixel's value never depends on the batch it is drawn in."""
    centres = MARGIN + LEVEL_VALUES[3] * (IMAGE_SIZE - 2 * MARGIN)
    return {"inverse_radius": torch.tensor(1 / (RADIUS * LEVEL_VALUES[1]), dtype=torch.float32),
            "cos": torch.tensor(np.cos(LEVEL_VALUES[2]), dtype=torch.float32),
            "sin": torch.tensor(np.sin(LEVEL_VALUES[2]), dtype=torch.float32),
            "centre": torch.tensor(centres, dtype=torch.float32),
            "first_pixel": torch.tensor(np.floor(centres), dtype=torch.int64)}


def sprite_frame(levels: Tensor, image: Tensor, tables: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """int64 levels (B, 5) of images number `image` (B,) -> (u, v, pixels) over the window around each sprite:
    u and v float32 (B, 2 HALF_WINDOW, 2 HALF_WINDOW), the pixel centres in the sprite's own frame (centred,
    unrotated, circumradius 1, v up), and pixels int64, their flat indices in the (N, 64, 64) images."""
    steps = torch.arange(-HALF_WINDOW, HALF_WINDOW)
    columns = tables["first_pixel"][levels[:, 3]].view(-1, 1) + steps  # (B, 2 HALF_WINDOW) pixel columns
    rows = tables["first_pixel"][levels[:, 4]].view(-1, 1) + steps     # (B, 2 HALF_WINDOW) pixel rows
    inverse_radius = tables["inverse_radius"][levels[:, 1]].view(-1, 1)
    dx = (columns.float() + 0.5 - tables["centre"][levels[:, 3]].view(-1, 1)) * inverse_radius
    dy = (tables["centre"][levels[:, 4]].view(-1, 1) - rows.float() - 0.5) * inverse_radius  # y up
    cos, sin = tables["cos"][levels[:, 2]].view(-1, 1, 1), tables["sin"][levels[:, 2]].view(-1, 1, 1)
    dx, dy = dx.unsqueeze(1), dy.unsqueeze(2)
    pixels = (image.view(-1, 1, 1) * IMAGE_SIZE + rows.unsqueeze(2)) * IMAGE_SIZE + columns.unsqueeze(1)
    return cos * dx + sin * dy, cos * dy - sin * dx, pixels  # the frame turned by the orientation


def render(levels: np.ndarray | Tensor, out: Tensor | None = None) -> Tensor:
    """int levels (B, 5) in FACTOR_NAMES order -> bool (B, 64, 64), True where the sprite is (drawn into `out`,
    when given, a bool buffer of that shape)."""
    levels = torch.as_tensor(np.asarray(levels), dtype=torch.int64)
    tables = level_tables()
    images = torch.zeros(levels.shape[0], IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool) if out is None else out.zero_()
    for k, inside_shape in enumerate(INSIDE):
        # each shape drawn apart: every pixel is tested against one outline, not all three
        rows = torch.nonzero(levels[:, 0] == k).squeeze(1)
        for chunk in rows.split(RENDER_CHUNK):
            u, v, pixels = sprite_frame(levels[chunk], chunk, tables)
            images.view(-1)[pixels.view(-1)] = inside_shape(u, v).view(-1)
    return images


def render_packed(levels: np.ndarray) -> PackedImages:
    """int levels (N, 5) -> their images packed (N, 1, 64, 64), drawn a chunk at a time (never all unpacked)."""
    bits = torch.empty(len(levels), IMAGE_SIZE * IMAGE_SIZE // 8, dtype=torch.uint8)
    buffer = torch.empty(PACK_CHUNK, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)  # one, reused: no fresh pages
    for start in range(0, len(levels), PACK_CHUNK):
        part = levels[start:start + PACK_CHUNK]
        bits[start:start + len(part)] = pack_images(render(part, out=buffer[:len(part)]).numpy())
    return PackedImages(bits, (1, IMAGE_SIZE, IMAGE_SIZE))


@dataclass(frozen=True, eq=False)
class SpritesFactors(FactorGrid):
    """The ground-truth factors of `sprites`; images_for draws any combination on demand."""

    names: tuple[str, ...] = FACTOR_NAMES
    level_values: tuple[np.ndarray, ...] = LEVEL_VALUES

    def images_for(self, factors: np.ndarray | Tensor) -> Tensor:
        """uint8 (n, 1, 64, 64) in {0, 255} for int (n, 5) levels."""
        return render(self.check_levels(factors)).unsqueeze(1).to(torch.uint8).mul_(255)


def held_out_count(n: int) -> int:
    """Test images of an n-image sprites set: a tenth, at most TEST_IMAGES."""
    return min(TEST_IMAGES, n // 10)


def split_order(n_grid: int, seed: int = SPLIT_SEED) -> np.ndarray:
    """int64 (n_grid,): the one shuffle of the grid that every split takes its test, then train, images from."""
    return np.random.default_rng(seed).permutation(n_grid).astype(np.int64)


def sprites_size(spec: str) -> int | None:
    """The N of 'sprites:N' (None for 'sprites', all of them)."""
    count = spec.removeprefix("sprites").removeprefix(":")
    if spec == "sprites":
        return None
    if not count.isdigit():
        raise DataError(f"{spec!r}: sprites:N takes a number of images, e.g. sprites:2000 (sprites alone: all "
                        f"{GRID_SIZE:,})")
    return int(count)


def check_sprite_options(spec: str, image_size: int | None, channels: int | None) -> None:
    """Sprite images are binary 64x64 grayscale and load as they are: other sizes or channels are a DataError."""
    if image_size not in (None, IMAGE_SIZE) or channels not in (None, 1):
        raise DataError(f"{spec.split(':')[0]} images are binary {IMAGE_SIZE}x{IMAGE_SIZE} grayscale and load as they "
                        f"are; leave out --image-size and --channels (or give 64 and 1)")


def make_sprites(n_images: int | None = None) -> Dataset:
    """The sprites Dataset: all 737,280 images, or the first n_images of the fixed shuffle; labels = shape.

    The images are drawn once, packed, in shuffle order (test images first); the full grid's factors look images
    up there, a subset's draw them.
    """
    n = GRID_SIZE if n_images is None else n_images
    if not 20 <= n <= GRID_SIZE:
        raise DataError(f"sprites:{n} asks for {n:,} images; sprites has 20..{GRID_SIZE:,} (sprites alone: all)")
    order, n_test = split_order(GRID_SIZE), held_out_count(n)
    levels = grid_levels(order[:n], SIZES)
    stored = render_packed(levels)
    factors = (PackedGridFactors(FACTOR_NAMES, LEVEL_VALUES, stored, inverse_order(order)) if n == GRID_SIZE
               else SpritesFactors())
    values = torch.tensor(np.stack([LEVEL_VALUES[k][levels[:, k]] for k in range(5)], 1), dtype=torch.float32)
    labels = torch.from_numpy(levels[:, 0])
    return Dataset(name="sprites" if n_images is None else f"sprites:{n}",
                   train_x=stored.narrow(0, n_test, n - n_test), train_y=labels[n_test:],
                   test_x=stored.narrow(0, 0, n_test).unpack(), test_y=labels[:n_test], classes=SHAPES,
                   factor_names=FACTOR_NAMES, train_factors=values[n_test:], test_factors=values[:n_test],
                   factors=factors,
                   source=f"procedural dSprites grid: {n:,} of {GRID_SIZE:,} images, split seed {SPLIT_SEED}")
