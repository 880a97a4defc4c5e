"""The IDX reader checks what a file declares before it decompresses it: the image count against the dataset's
known size, the images against the labels; and it decompresses into one buffer, never a list of chunks joined."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from test_data import gzip_bomb, idx_folder, idx_payload, isolated, put  # noqa: F401 (isolated: a fixture)

from genlab.data import idx, load_dataset
from genlab.errors import DataError

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


def header(code: int, dims: list[int]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + np.array(dims, ">u4").tobytes()


@pytest.fixture
def payload_reads(monkeypatch) -> dict[str, int]:
    """Bytes read from each file's payload (decompressed), by file name."""
    counts: dict[str, int] = {}
    opened = idx.open_payload

    class Counted:
        def __init__(self, path: Path) -> None:
            self.stream, self.name = opened(path), path.name
            counts.setdefault(self.name, 0)

        def read(self, size: int = -1) -> bytes:
            data = self.stream.read(size)
            counts[self.name] += len(data)
            return data

        def readinto(self, buffer) -> int:
            n = self.stream.readinto(buffer)
            counts[self.name] += n
            return n

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.stream.close()

    monkeypatch.setattr(idx, "open_payload", Counted)
    return counts


@pytest.mark.parametrize("dims, needles", [
    ([1_369_000, 28, 28], ["1369000 images", "60000"]),   # within the 1 GiB limit of one array: 1.07 GB
    ([60_001, 28, 28], ["60001 images", "60000"]),
    ([6, 32, 32], ["32x32", "28x28"]),
    ([5, 28, 28], ["5 images", "6 labels"]),               # the labels file declares 6
], ids=["1.37M", "one-too-many", "32x32", "fewer-than-labels"])
def test_declared_counts_are_checked_before_anything_is_decompressed(isolated, payload_reads, dims,  # noqa: F811
                                                                      needles) -> None:
    folder = idx_folder(isolated / "d")
    gzip_bomb(folder / TRAIN_IMAGES, header(0x08, dims), 8 << 20)
    with pytest.raises(DataError) as error:
        load_dataset("fashion-mnist", data_dir=folder, download=False)
    message = str(error.value)
    assert "\n" not in message and TRAIN_IMAGES in message and all(n in message for n in needles), message
    assert payload_reads[TRAIN_IMAGES] <= len(header(0x08, dims)), payload_reads  # the header, nothing more


def test_labels_declaring_another_count_stop_before_the_images_are_decompressed(isolated,  # noqa: F811
                                                                                payload_reads) -> None:
    folder = idx_folder(isolated / "d", n_train=6)
    put(folder / "train-labels-idx1-ubyte.gz", idx_payload(np.zeros(7, np.uint8)))
    with pytest.raises(DataError, match="7 labels.*6 images|6 images.*7 labels"):
        load_dataset("mnist", data_dir=folder, download=False)
    assert payload_reads[TRAIN_IMAGES] <= len(header(0x08, [6, 28, 28]))


def test_a_subset_of_the_known_size_still_loads(isolated) -> None:  # noqa: F811
    data = load_dataset("fashion-mnist", data_dir=idx_folder(isolated / "d", n_train=6, n_test=4), download=False)
    assert data.train_x.shape == (6, 1, 28, 28) and data.test_x.shape == (4, 1, 28, 28)


@pytest.mark.parametrize("code, itemsize", [(0x08, 1), (0x0B, 2)], ids=["uint8", "int16-byteswapped"])
def test_a_payload_is_decompressed_into_one_buffer(tmp_path, code, itemsize) -> None:
    size = 24 << 20
    path = gzip_bomb(tmp_path / "big-idx1-ubyte.gz", header(code, [size // itemsize]), size)
    tracemalloc.start()
    try:
        array = idx.read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert array.numel() == size // itemsize and not bool(array.any())
    assert peak < 1.2 * size, f"a {size}-byte payload peaked at {peak} bytes"
