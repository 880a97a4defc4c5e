"""How should `sprites` feed training: packed images unpacked per batch, or each batch drawn from its factors?

    OMP_NUM_THREADS=1 python benchmarks/sprites_batches.py [--batches 300]

Draws the full grid once (timed: the cost of `load_dataset("sprites")`), then times one training batch, uint8
gathered and made float in [0, 1] as the trainer does, three ways: the reference, a gather from plain uint8
images (every other dataset's path: 3 GB for this grid, so here over its first 32,768 images); the packed
images' gather (`PackedImages.index_select`, over all 727,280 training images); and drawing the batch from its
factor levels (`SpritesFactors.images_for`). Median microseconds per batch of 64 and of 256, random indices.
A last row times what the metrics call, the full grid's `images_for` (a lookup among the packed images).
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from genlab.data.batches import to_unit_float
from genlab.data.catalog import load_dataset
from genlab.data.sprites import GRID_SIZE, SpritesFactors

REFERENCE_IMAGES = 32_768  # unpacked for the reference gather: 134 MB


def median_us(batch: Callable[[torch.Tensor], torch.Tensor], n: int, size: int, batches: int) -> float:
    """Median microseconds of batch(indices) over `batches` random index sets of `size` in 0..n-1."""
    generator, times = torch.Generator().manual_seed(0), []
    for _ in range(batches):
        indices = torch.randint(0, n, (size,), generator=generator)
        start = time.perf_counter()
        batch(indices)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300)
    args = parser.parse_args()
    start = time.perf_counter()
    data = load_dataset("sprites")
    print(f"load_dataset('sprites'): {time.perf_counter() - start:.1f} s to draw and pack {GRID_SIZE:,} images on "
          f"{torch.get_num_threads()} thread(s); train images {data.train_x.nbytes / 2**20:.0f} MiB packed "
          f"({len(data.train_x) * 4096 / 2**20:.0f} MiB as uint8)")
    plain = data.train_x[:REFERENCE_IMAGES]
    levels = data.factors.level_of(data.train_factors.double().numpy())
    ways = {"uint8 gather (reference)": (REFERENCE_IMAGES, lambda i: to_unit_float(plain.index_select(0, i))),
            "packed gather + unpack": (len(data.train_x), lambda i: to_unit_float(data.train_x.index_select(0, i))),
            "drawn from factors": (len(data.train_x),
                                   lambda i: to_unit_float(SpritesFactors().images_for(levels[i.numpy()]))),
            "images_for, full grid": (len(data.train_x),
                                      lambda i: to_unit_float(data.factors.images_for(levels[i.numpy()])))}
    print(f"{'batch':<28} {'64: us':>9} {'vs ref':>7} {'256: us':>9} {'vs ref':>7}")
    reference = {}
    for name, (n, batch) in ways.items():
        cells = []
        for size in (64, 256):
            us = median_us(batch, n, size, args.batches)
            reference.setdefault(size, us)
            cells.append(f"{us:9.0f} {us / reference[size]:6.2f}x")
        print(f"{name:<28} {' '.join(cells)}")
    assert np.array_equal(data.train_x[:8].numpy(), SpritesFactors().images_for(levels[:8]).numpy())


if __name__ == "__main__":
    main()
