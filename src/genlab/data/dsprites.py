"""`dsprites:PATH`: the real dSprites file (dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz), read without
unpickling anything.

The .npz is a zip of .npy arrays. Only three are read, each member's header parsed with numpy's format reader and
checked (dtype, shape, size) before any data: `imgs` uint8 (N, 64, 64) in {0, 1}, `latents_classes` int
(N, 6) and `latents_values` float (N, 6). The pickled `metadata` member is never opened, and an array of Python
objects is refused. `imgs` streams through in chunks and is packed eight pixels to a byte (data/packed.py), so
the 3 GB of pixels are never held at once.

The file must be a full factor grid in dSprites' order, of any size up to dSprites' own: the factor sizes are
latents_classes' column maxima + 1, and row i must hold grid position i (mixed radix, last factor fastest).
The first factor, colour, must have one value and is left out; the others are shape, scale, orientation,
pos_x and pos_y, valued as latents_values says. The test split is sprites': the grid shuffled once with
SPLIT_SEED, its first tenth (at most 10,000) the test images, so the full file holds out the same images.
"""
from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np
import torch

from genlab.data.dataset import Dataset
from genlab.data.factors import (
    PackedGridFactors,
    grid_levels,
    grid_strides,
    inverse_order,
)
from genlab.data.idx import one_line
from genlab.data.packed import PackedImages, pack_images
from genlab.data.sprites import FACTOR_NAMES, SHAPES, held_out_count, split_order
from genlab.errors import DataError

FILE_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
WHERE = "https://github.com/deepmind/dsprites-dataset"
MAX_IMAGES = 737_280   # dSprites' full grid; a file claiming more is not dSprites
IMAGE_SIZE = 64
READ_CHUNK = 16_384    # images read, checked and packed at a time: 64 MB of pixels
READ_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile, ValueError, NotImplementedError, RuntimeError)


def bad_file(path: Path, what: str) -> DataError:
    return DataError(f"dsprites:{path} {what}; expected dSprites' {FILE_NAME} (from {WHERE})")


def open_member(archive: zipfile.ZipFile, name: str, path: Path) -> tuple[IO[bytes], tuple[int, ...], np.dtype]:
    """The member `name`.npy, opened after its header: (stream at the data, shape, dtype); C order only."""
    if f"{name}.npy" not in archive.namelist():
        raise bad_file(path, f"has no '{name}' array (it holds {', '.join(sorted(archive.namelist()))[:200]})")
    stream = archive.open(f"{name}.npy")
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0)):
        raise bad_file(path, f"stores '{name}' in .npy format version {version}, which genlab does not read")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(stream)
    if dtype.hasobject:
        raise bad_file(path, f"holds '{name}' as Python objects, which only unpickling could read; genlab never "
                             f"unpickles")
    if fortran_order:
        raise bad_file(path, f"stores '{name}' in Fortran order; save it again with np.savez (C order)")
    return stream, shape, dtype


def read_exactly(stream: IO[bytes], size: int) -> bytes:
    """size bytes, or fewer only where the stream ends."""
    parts, left = [], size
    while left > 0:
        part = stream.read(min(left, 1 << 24))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_latents(archive: zipfile.ZipFile, name: str, kinds: str, path: Path) -> np.ndarray:
    """A (N, 6) latents array of a dtype kind in `kinds` ("iu": integers, "f": floats), N in 1..MAX_IMAGES."""
    stream, shape, dtype = open_member(archive, name, path)
    if len(shape) != 2 or shape[1] != 6 or not 1 <= shape[0] <= MAX_IMAGES or dtype.kind not in kinds:
        raise bad_file(path, f"holds '{name}' as {dtype} {shape}; dSprites' is {'int64' if 'i' in kinds else 'float64'}"
                             f" (N, 6) with N up to {MAX_IMAGES:,}")
    data = read_exactly(stream, math.prod(shape) * dtype.itemsize)
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise bad_file(path, f"ends inside '{name}' (truncated)")
    native = np.int64 if "i" in kinds else np.float64  # any byte order or width in, native int64 / float64 out
    return np.frombuffer(data, dtype).reshape(shape).astype(native)


def factor_values(classes: np.ndarray, values: np.ndarray, path: Path) -> tuple[np.ndarray, ...]:
    """Each level's value of the five factors after colour, the file checked to be a full grid in dSprites' order."""
    if classes.min() < 0:
        raise bad_file(path, "has negative latents_classes")
    sizes = tuple(int(size) for size in classes.max(axis=0) + 1)
    if sizes[0] != 1:
        raise bad_file(path, f"has {sizes[0]} colours; dSprites has one (white)")
    if math.prod(sizes) != len(classes) or not np.array_equal(classes, grid_levels(np.arange(len(classes)), sizes)):
        raise bad_file(path, f"is not a full factor grid in dSprites' order ({len(classes):,} rows for factor sizes "
                             f"{'x'.join(map(str, sizes))}; row i must hold grid position i)")
    level_values = []
    for k in range(1, 6):
        per_level = values[np.arange(sizes[k]) * grid_strides(sizes)[k], k]  # the first row of each level
        if not np.isfinite(per_level).all() or not np.allclose(per_level[classes[:, k]], values[:, k]):
            raise bad_file(path, f"gives factor {FACTOR_NAMES[k - 1]!r} more than one value per class in "
                                 f"latents_values (or a non-finite one)")
        level_values.append(per_level.astype(np.float64))
    return tuple(level_values)


def read_images(archive: zipfile.ZipFile, n: int, position: np.ndarray, path: Path) -> PackedImages:
    """`imgs` (n, 64, 64) in {0, 1}, packed, image g stored at position[g]; streamed a chunk at a time."""
    stream, shape, dtype = open_member(archive, "imgs", path)
    if shape != (n, IMAGE_SIZE, IMAGE_SIZE) or dtype != np.uint8:
        raise bad_file(path, f"holds 'imgs' as {dtype} {shape}; expected uint8 ({n:,}, 64, 64), one image per "
                             f"row of latents_classes")
    bits = torch.empty(n, IMAGE_SIZE * IMAGE_SIZE // 8, dtype=torch.uint8)
    for start in range(0, n, READ_CHUNK):
        count = min(READ_CHUNK, n - start)
        data = read_exactly(stream, count * IMAGE_SIZE * IMAGE_SIZE)
        if len(data) != count * IMAGE_SIZE * IMAGE_SIZE:
            raise bad_file(path, f"ends inside 'imgs' after {start + len(data) // IMAGE_SIZE ** 2:,} of {n:,} "
                                 f"images (truncated)")
        chunk = np.frombuffer(data, np.uint8).reshape(count, 1, IMAGE_SIZE, IMAGE_SIZE)
        if chunk.max() > 1:
            raise bad_file(path, f"has pixel values up to {chunk.max()} in 'imgs'; dSprites' pixels are 0 or 1")
        bits[torch.from_numpy(position[start:start + count])] = pack_images(chunk)
    return PackedImages(bits, (1, IMAGE_SIZE, IMAGE_SIZE))


def load_dsprites(path: str) -> Dataset:
    """The dSprites file at `path` as a Dataset: train images packed, test uint8, labels = shape, factors."""
    if not path.strip():
        raise DataError(f"dsprites: needs the path of {FILE_NAME}, e.g. dsprites:~/data/{FILE_NAME} (from {WHERE})")
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise DataError(f"dsprites:{path}: {file} is not a file; download {FILE_NAME} from {WHERE} and give "
                        f"dsprites:PATH")
    try:
        with zipfile.ZipFile(file) as archive:
            classes = read_latents(archive, "latents_classes", "iu", file)
            values = read_latents(archive, "latents_values", "f", file)
            if len(values) != len(classes):
                raise bad_file(file, f"has {len(classes):,} latents_classes rows but {len(values):,} latents_values")
            level_values = factor_values(classes, values, file)
            order = split_order(len(classes))
            position = inverse_order(order)  # the grid is stored in split order: test images, then train
            images = read_images(archive, len(classes), position, file)
    except READ_ERRORS as err:
        raise bad_file(file, f"is not a readable .npz ({one_line(err)[:200]})") from None
    return dsprites_dataset(file, classes, values, PackedGridFactors(FACTOR_NAMES, level_values, images, position),
                            order)


def dsprites_dataset(file: Path, classes: np.ndarray, values: np.ndarray, factors: PackedGridFactors,
                     order: np.ndarray) -> Dataset:
    """Split the grid as sprites does: the first held_out_count(N) of the shuffle test, the rest train."""
    n_test, n_shapes = held_out_count(len(order)), factors.sizes[0]
    if n_test < 1:
        raise bad_file(file, f"holds {len(order)} images; a train and a test split need at least 10")
    test, train = order[:n_test], order[n_test:]
    classes_names = SHAPES if n_shapes == len(SHAPES) else tuple(f"shape {i}" for i in range(n_shapes))
    return Dataset(name="dsprites", train_x=factors.images.narrow(0, n_test, len(train)),
                   train_y=torch.from_numpy(classes[train, 1].astype(np.int64)),
                   test_x=factors.images.narrow(0, 0, n_test).unpack(),
                   test_y=torch.from_numpy(classes[test, 1].astype(np.int64)), classes=classes_names,
                   factor_names=FACTOR_NAMES, train_factors=torch.tensor(values[train, 1:], dtype=torch.float32),
                   test_factors=torch.tensor(values[test, 1:], dtype=torch.float32), factors=factors,
                   source=str(file))
