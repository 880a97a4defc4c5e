"""Data: the strict IDX reader, the search order and verified downloads, shapes, folders, batching, images."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import catalog
from genlab.data.batches import epoch_permutation, iter_batches, iter_ordered, to_unit_float
from genlab.data.catalog import IDX_FILES, load_dataset, search_dirs
from genlab.data.idx import read_idx
from genlab.data.shapes import make_shapes
from genlab.errors import DataError
from genlab.images import load_image, make_grid, save_gif, save_png


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype("uint8"): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.tobytes()


def write(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def fake_mnist(folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = True) -> Path:
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write(folder / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(rng.integers(0, 256, (n, 28, 28), np.uint8)))
        write(folder / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(rng.integers(0, 10, n).astype(np.uint8)))
    return folder


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """No real data anywhere: HOME, GENLAB_DATA, the system folders and the mirrors all point into tmp."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    monkeypatch.setattr(catalog, "SYSTEM_DIRS", {"fashion-mnist": str(tmp_path / "system"),
                                                 "mnist": str(tmp_path / "system-mnist")})
    monkeypatch.setattr(catalog, "MIRRORS", {"fashion-mnist": ["http://127.0.0.1:9/"], "mnist": ["http://127.0.0.1:9/"]})
    return tmp_path


# --- IDX ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("array", [np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
                                   np.arange(-3, 3, dtype=">i4"), np.linspace(0, 1, 6, dtype=">f4").reshape(3, 2)])
def test_idx_round_trip(tmp_path, suffix, array) -> None:
    tensor = read_idx(write(tmp_path / f"a{suffix}", idx_bytes(array)))
    assert tuple(tensor.shape) == array.shape
    np.testing.assert_array_equal(tensor.numpy(), array.astype(array.dtype.newbyteorder("=")))


@pytest.mark.parametrize("payload, needle", [
    (idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-10], "truncated"),
    (idx_bytes(np.zeros((4, 28, 28), np.uint8)) + b"extra", "trailing bytes"),
    (b"\x01\x02\x08\x03" + bytes(100), "magic"),
    (b"\x00\x00\x08\x03\x00\x00", "header"),
])
def test_damaged_idx_files_are_named_and_explained(tmp_path, payload, needle) -> None:
    path = write(tmp_path / "bad-idx.gz", payload)
    with pytest.raises(DataError, match=needle) as error:
        read_idx(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_corrupt_gzip_stream(tmp_path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 2), np.uint8)))[:-8] + b"garbage!")
    with pytest.raises(DataError, match="x.gz"):
        read_idx(path)


# --- finding, downloading -------------------------------------------------------------------------

def test_search_order(isolated, monkeypatch) -> None:
    monkeypatch.setenv("GENLAB_DATA", str(isolated / "env"))
    dirs = search_dirs("mnist", isolated / "cli")
    assert dirs == [isolated / "cli" / "mnist", isolated / "cli", isolated / "env" / "mnist", isolated / "env",
                    isolated / "home" / ".cache" / "genlab" / "mnist", isolated / "system-mnist"]


def test_the_first_folder_in_the_order_wins(isolated, monkeypatch) -> None:
    fake_mnist(isolated / "system-mnist", n_train=30)
    fake_mnist(isolated / "home" / ".cache" / "genlab" / "mnist", n_train=20, gz=False)
    data = load_dataset("mnist")
    assert data.train_x.shape == (20, 1, 28, 28) and data.source.endswith("genlab/mnist")
    assert data.classes == tuple("0123456789") and data.train_y.dtype == torch.int64


def test_not_found_names_every_folder_and_the_fix(isolated) -> None:
    with pytest.raises(DataError) as error:
        load_dataset("fashion-mnist", data_dir=isolated / "mine")
    message = str(error.value)
    for folder in search_dirs("fashion-mnist", isolated / "mine"):
        assert str(folder) in message
    assert "apt-get install dataset-fashion-mnist" in message and "\n" not in message


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP server over a folder holding gzip'd fake MNIST files."""
    served = fake_mnist(tmp_path / "served")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_download_verifies_checksums(isolated, mirror, monkeypatch) -> None:
    served, url = mirror
    monkeypatch.setitem(catalog.MIRRORS, "mnist", [url])
    md5s = {stem: hashlib.md5((served / f"{stem}.gz").read_bytes()).hexdigest() for stem in IDX_FILES}
    monkeypatch.setitem(catalog.GZ_MD5, "mnist", md5s)
    data = load_dataset("mnist", data_dir=isolated / "dl")
    assert data.train_x.shape == (20, 1, 28, 28)
    assert sorted(p.name for p in (isolated / "dl" / "mnist").iterdir()) == sorted(f"{s}.gz" for s in IDX_FILES)


def test_a_checksum_mismatch_keeps_nothing(isolated, mirror, monkeypatch) -> None:
    monkeypatch.setitem(catalog.MIRRORS, "mnist", [mirror[1]])
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("mnist", data_dir=isolated / "dl")
    assert not list((isolated / "dl").rglob("*.gz")) and not list((isolated / "dl").rglob("*.part"))


def test_unknown_dataset_lists_the_valid_names() -> None:
    with pytest.raises(DataError, match="did you mean 'cifar10'.*fashion-mnist, mnist, cifar10, shapes, sprites, "
                                        "faces, folder:PATH, dsprites:PATH or celeba:PATH"):
        load_dataset("cifar-11")


def test_installed_fashion_mnist_is_the_real_thing() -> None:
    data = load_dataset("fashion-mnist")
    assert data.train_x.shape == (60000, 1, 28, 28) and data.test_x.shape == (10000, 1, 28, 28)
    assert data.classes[9] == "Ankle boot" and torch.bincount(data.test_y).tolist() == [1000] * 10
    catalog.verify("fashion-mnist", Path(data.source))
    resized = catalog.adapt(data, 32, 3)
    assert resized.image_shape == (3, 32, 32) and resized.train_x.dtype == torch.uint8


# --- shapes, folders --------------------------------------------------------------------------------

def test_shapes_are_deterministic_and_carry_their_factors() -> None:
    a, b, c = make_shapes(300, 50, seed=1), make_shapes(300, 50, seed=1), make_shapes(300, 50, seed=2)
    assert torch.equal(a.train_x, b.train_x) and not torch.equal(a.train_x, c.train_x)
    assert a.train_x.shape == (300, 1, 28, 28) and a.train_x.dtype == torch.uint8
    assert a.factor_names == ("shape", "scale", "rotation", "pos_x", "pos_y")
    assert a.train_factors.shape == (300, 5) and torch.equal(a.train_factors[:, 0].long(), a.train_y)
    assert set(a.train_y.tolist()) == {0, 1, 2, 3} and a.classes == ("square", "circle", "triangle", "cross")
    assert (a.train_x.flatten(1).amax(1) == 255).all(), "every image shows a shape"
    assert (a.train_x[:, :, 0, :] == 0).all() and (a.train_x[:, :, -1, :] == 0).all(), "shapes stay inside"


def test_bigger_shapes_draw_more_pixels() -> None:
    data = make_shapes(2000, 10, seed=0)
    area = data.train_x.float().flatten(1).sum(1)
    scale = data.train_factors[:, 1]
    circles = data.train_y == 1
    assert torch.corrcoef(torch.stack([area[circles], scale[circles] ** 2]))[0, 1] > 0.95


def test_shapes_sizes() -> None:
    assert make_shapes(10, 10, image_size=64).image_shape == (1, 64, 64)
    with pytest.raises(DataError, match="28 or 64"):
        make_shapes(10, 10, image_size=30)


def make_pictures(root: Path, layout: dict[str, int], mode: str = "L") -> None:
    for folder, count in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.new(mode, (40, 30), color=i * 20 if mode == "L" else (i * 20, 0, 100)).save(root / folder / f"{i}.png")


def test_folder_dataset_with_labels(tmp_path) -> None:
    make_pictures(tmp_path, {"cats": 12, "dogs": 9})
    data = load_dataset(f"folder:{tmp_path}", image_size=16)
    assert data.classes == ("cats", "dogs") and data.image_shape == (1, 16, 16)
    assert data.train_x.shape[0] + data.test_x.shape[0] == 21 and data.test_x.shape[0] >= 1
    again = load_dataset(f"folder:{tmp_path}", image_size=16)
    assert torch.equal(data.test_x, again.test_x), "the split is deterministic"


def test_folder_dataset_flat_rgb(tmp_path) -> None:
    make_pictures(tmp_path, {"": 5}, mode="RGB")
    data = load_dataset(f"folder:{tmp_path}")
    assert data.image_shape == (3, 64, 64) and data.classes == (tmp_path.name,)
    assert load_dataset(f"folder:{tmp_path}", channels=1, image_size=8).image_shape == (1, 8, 8)


def test_folder_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="not a folder"):
        load_dataset(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="no .png"):
        load_dataset(f"folder:{tmp_path}")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        load_dataset(f"folder:{tmp_path}")


# --- batches, images ---------------------------------------------------------------------------------

def test_permutations_are_reproducible_and_complete() -> None:
    a, b, c = epoch_permutation(100, 1, 0, "cpu"), epoch_permutation(100, 1, 0, "cpu"), epoch_permutation(100, 1, 1, "cpu")
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert sorted(a.tolist()) == list(range(100))


def test_batches_cover_every_image_once() -> None:
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    perm = epoch_permutation(10, 0, 0, "cpu")
    batches = list(iter_batches(x, perm, 4))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted((torch.cat(batches) * 255).round().flatten().tolist()) == list(range(10))
    assert [len(b) for b in iter_batches(x, perm, 4, drop_last=True)] == [4, 4]
    assert torch.equal(torch.cat(list(iter_ordered(x, 3))), to_unit_float(x))
    unit = torch.rand(5, 1, 2, 2)  # float images are already in [0, 1]: they pass through, not divided again
    assert torch.equal(torch.cat(list(iter_ordered(unit, 2, device="cpu"))), unit)
    assert to_unit_float(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [0.0, 1.0]


def test_grid_png_gif_and_load(tmp_path) -> None:
    images = torch.rand(10, 3, 8, 8)
    grid = make_grid(images, nrow=4, padding=2)
    assert grid.shape == (3, 3 * 10 + 2, 4 * 10 + 2)
    path = save_png(images, tmp_path / "sub" / "grid.png")
    assert Image.open(path).size == (8 * 10 + 2, 2 * 10 + 2)
    loaded = load_image(path, channels=1, size=16)
    assert loaded.shape == (1, 16, 16) and loaded.dtype == torch.uint8
    gif = save_gif([images[0], images[1]], tmp_path / "a.gif")
    assert Image.open(gif).n_frames == 2
    assert not list(tmp_path.rglob("*.tmp"))
