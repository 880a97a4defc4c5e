"""Device-resident batching: a permutation per epoch and index gathers, no per-sample DataLoader."""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from genlab.data.packed import PackedImages
from genlab.errors import ConfigError


def to_unit_float(x: Tensor) -> Tensor:
    """uint8 images (N, C, H, W) -> float32 in [0, 1]."""
    if x.dtype != torch.uint8:  # dividing float images by 255 again would silently darken them
        raise TypeError(f"to_unit_float expects uint8 images (0..255), got {x.dtype}; "
                        f"images that are already float need no conversion")
    return x.to(torch.float32).mul_(1 / 255)


def epoch_permutation(n: int, seed: int, epoch: int, device: torch.device | str) -> Tensor:
    """A shuffle of range(n) that depends only on (seed, epoch): resumed runs see the same order."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


def iter_batches(x: Tensor, perm: Tensor, batch_size: int, drop_last: bool = False) -> Iterator[Tensor]:
    """Float [0, 1] batches x[perm[i:i+B]], gathered on x's device (no host sync)."""
    check_batch_size(batch_size)
    if perm.device != x.device:
        raise ValueError(f"perm is on {perm.device} but the images are on {x.device}; "
                         f"build it with epoch_permutation(..., device=x.device)")
    stop = len(perm) - len(perm) % batch_size if drop_last else len(perm)
    for start in range(0, stop, batch_size):
        # index_select, not x[idx]: advanced indexing is ~10x slower for this gather on CPU; the method, so
        # that packed images (data/packed.py) unpack just the batch
        yield to_unit_float(x.index_select(0, perm[start:start + batch_size]))


def iter_ordered(x: Tensor, batch_size: int, device: torch.device | str | None = None) -> Iterator[Tensor]:
    """Float [0, 1] batches of x in order (evaluation), moved to `device` when given: uint8 images are
    converted after the move (a quarter of the bytes to copy), float images pass through as they are."""
    check_batch_size(batch_size)
    for start in range(0, x.shape[0], batch_size):
        batch = x[start:start + batch_size]
        batch = batch if device is None else batch.to(device)
        yield to_unit_float(batch) if batch.dtype == torch.uint8 else batch


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ConfigError(f"batch size must be a positive number of images, got {batch_size}")


BINARIZE_TEST_SEED = 0  # one binarization of the test set for every run, so likelihoods compare


def binarize_fixed(x: Tensor, seed: int = BINARIZE_TEST_SEED) -> Tensor:
    """uint8 images -> uint8 in {0, 255}: each pixel on with probability x / 255, one seeded draw (CPU)."""
    if isinstance(x, PackedImages):  # binary already: every pixel is 0 or 255, so its binarization is itself
        return x
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(x.shape, generator=generator)
    return (noise < x.cpu().to(torch.float32) / 255).to(torch.uint8).mul_(255).to(x.device)


def binarize_dynamic(x: Tensor) -> Tensor:
    """Float [0, 1] batch -> a fresh Bernoulli draw in {0, 1} (dynamic binarization: new each time it is seen)."""
    return torch.bernoulli(x)
