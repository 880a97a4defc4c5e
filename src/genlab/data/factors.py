"""Ground-truth factors: what a dataset with known generative factors answers, so the metrics can ask for
"a batch with factor k held at level v".

Every factor is discrete: factor k has `sizes[k]` levels 0..sizes[k]-1, and `values(k)` gives each level's
value (a scale, an angle in radians, a position). A continuous factor is discretized as disentanglement_lib
discretizes what its metrics histogram: into CONTINUOUS_BINS = 20 equal-width bins, here over the factor's
known range rather than over a sample's, each level standing for its bin and valued at the bin's centre.

Level arrays are int64 numpy (n, K); images come back as uint8 torch (n, C, H, W) on the CPU.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from genlab.data.packed import PackedImages
from genlab.errors import DataError

CONTINUOUS_BINS = 20  # disentanglement_lib's `discretizer.num_bins` in the MIG, SAP and DCI configs


@runtime_checkable
class GroundTruthFactors(Protocol):
    """The factors of a procedural or fully factorized dataset: names, levels, sampling, rendering."""

    names: tuple[str, ...]   # one per factor, e.g. ("shape", "scale", "orientation", "pos_x", "pos_y")
    sizes: tuple[int, ...]   # discrete levels of each factor

    def values(self, k: int) -> np.ndarray:
        """float64 (sizes[k],): the value of each level of factor k."""
        ...

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """int64 (n, K) level indices, each factor drawn independently and uniformly."""
        ...

    def images_for(self, factors: np.ndarray) -> torch.Tensor:
        """uint8 (n, C, H, W) images, one per row of int (n, K) level indices."""
        ...


@dataclass(frozen=True, eq=False)
class FactorGrid:
    """Named discrete factors with a value per level: uniform sampling and level checks.

    A dataset's factors subclass it (a frozen dataclass giving its names and values as defaults) and add images_for.
    """

    names: tuple[str, ...]
    level_values: tuple[np.ndarray, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(values) for values in self.level_values)

    def values(self, k: int) -> np.ndarray:
        return np.array(self.level_values[k], dtype=np.float64)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, size, n) for size in self.sizes], axis=1).astype(np.int64)

    def check_levels(self, factors: np.ndarray | torch.Tensor) -> np.ndarray:
        """int64 (n, K) levels, or a DataError saying which factor is out of range."""
        levels = np.asarray(factors)
        if levels.ndim != 2 or levels.shape[1] != len(self.names) or levels.dtype.kind not in "iu":
            raise DataError(f"factor levels must be an integer array (n, {len(self.names)}) with columns "
                            f"{', '.join(self.names)}; got {levels.dtype} {levels.shape}")
        for k, (name, size) in enumerate(zip(self.names, self.sizes)):
            if len(levels) and (levels[:, k].min() < 0 or levels[:, k].max() >= size):
                raise DataError(f"factor {name!r} has levels 0..{size - 1}, got {levels[:, k].min()}.."
                                f"{levels[:, k].max()}")
        return levels.astype(np.int64)

    def level_of(self, values: np.ndarray) -> np.ndarray:
        """int64 (n, K): the level nearest each value of float (n, K) factor values (a bin, if binned)."""
        return np.stack([np.abs(values[:, k, None] - self.level_values[k][None]).argmin(axis=1)
                         for k in range(len(self.names))], axis=1).astype(np.int64)


@dataclass(frozen=True, eq=False)
class PackedGridFactors(FactorGrid):
    """A full factor grid whose every image is held packed: images_for is a lookup (~15x faster than drawing)."""

    images: PackedImages | None = None  # every image of the grid, in any order
    position: np.ndarray | None = None  # int64 (N,): where grid image g (grid_index order) sits in `images`

    def images_for(self, factors: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (n, C, H, W) for int (n, K) levels."""
        index = grid_index(self.check_levels(factors), self.sizes)
        return self.images[torch.from_numpy(self.position[index])]


def inverse_order(order: np.ndarray) -> np.ndarray:
    """int64 (N,): where each of 0..N-1 sits in the permutation `order`."""
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    return position


def read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays, made read-only: level values are shared module constants."""
    for array in arrays:
        array.setflags(write=False)
    return arrays


def bin_centres(low: float, high: float, bins: int = CONTINUOUS_BINS) -> np.ndarray:
    """float64 (bins,): the centres of `bins` equal-width bins over [low, high]."""
    width = (high - low) / bins
    return low + width * (np.arange(bins) + 0.5)


def grid_strides(sizes: tuple[int, ...]) -> np.ndarray:
    """int64 (K,): the mixed-radix place values of a full factor grid, the last factor fastest (dSprites' order)."""
    return np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)


def grid_index(levels: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """int64 (n,): the position in the full grid of each row of levels (n, K)."""
    return levels.astype(np.int64) @ grid_strides(sizes)


def grid_levels(index: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """int64 (n, K): the levels of each grid position, grid_index's inverse."""
    index = np.asarray(index, dtype=np.int64)
    return (index[:, None] // grid_strides(sizes)[None]) % np.array(sizes, dtype=np.int64)[None]
