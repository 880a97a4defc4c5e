"""Data, beyond test_datasets.py: every IDX type, each step of the search order, fetch and list,
download failures, label checks, resizing, shapes factors, folder edge cases, batch arguments."""
from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import catalog, fetch_dataset, list_datasets, load_dataset
from genlab.data.batches import epoch_permutation, iter_batches, iter_ordered, to_unit_float
from genlab.data.idx import download, payload_sha256, read_idx
from genlab.data.shapes import make_shapes
from genlab.errors import ConfigError, DataError

IDX_CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D, "float64": 0x0E}
STEMS = catalog.IDX_FILES
REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


def idx_payload(array: np.ndarray) -> bytes:
    """IDX bytes for array: magic, big-endian uint32 dims, big-endian values."""
    header = bytes([0, 0, IDX_CODES[array.dtype.name], array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def put(path: Path, payload: bytes) -> Path:
    """Write payload to path, gzipped when the name ends in .gz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def idx_folder(folder: Path, n_train: int = 6, n_test: int = 4, raw: tuple[str, ...] = (),
               labels: np.ndarray | None = None, side: int = 28) -> Path:
    """A tiny MNIST-style folder; stems in `raw` are written uncompressed, the rest gzipped."""
    rng = np.random.default_rng(n_train)
    arrays = {STEMS[0]: rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
              STEMS[1]: labels if labels is not None else np.arange(n_train, dtype=np.uint8) % 10,
              STEMS[2]: rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
              STEMS[3]: np.arange(n_test, dtype=np.uint8) % 10}
    for stem, array in arrays.items():
        put(folder / (stem if stem in raw else f"{stem}.gz"), idx_payload(array))
    return folder


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """HOME, GENLAB_DATA, the system folders and the mirrors all point into tmp_path (no network)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    monkeypatch.setattr(catalog, "SYSTEM_DIRS", {"fashion-mnist": str(tmp_path / "sys-fashion"),
                                                 "mnist": str(tmp_path / "sys-mnist")})
    monkeypatch.setattr(catalog, "MIRRORS", {"fashion-mnist": [(tmp_path / "no-mirror").as_uri() + "/"],
                                             "mnist": [(tmp_path / "no-mirror").as_uri() + "/"]})
    return tmp_path


def file_mirror(isolated: Path, monkeypatch, name: str = "mnist") -> Path:
    """A file:// mirror of a tiny dataset, with GZ_MD5 patched to its checksums."""
    served = idx_folder(isolated / "mirror", n_train=5)
    monkeypatch.setitem(catalog.MIRRORS, name, [served.as_uri() + "/"])
    md5s = {stem: hashlib.md5((served / f"{stem}.gz").read_bytes()).hexdigest() for stem in STEMS}
    monkeypatch.setitem(catalog.GZ_MD5, name, md5s)
    return served


# --- IDX ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", list(IDX_CODES))
def test_every_idx_type_round_trips(tmp_path, dtype) -> None:
    array = (np.arange(-6, 6) * 3).astype(dtype).reshape(2, 3, 2)
    for name in ("a.gz", "a"):
        tensor = read_idx(put(tmp_path / name, idx_payload(array)))
        assert tensor.dtype == getattr(torch, dtype) and tensor.numpy().tolist() == array.tolist()


@pytest.mark.parametrize("payload, needles", [
    (idx_payload(np.zeros((3, 4), np.int16))[:-1], ["truncated", "24 data bytes", "holds 23"]),
    (idx_payload(np.zeros((3, 4), np.int16)) + b"\0", ["trailing bytes", "24 data bytes", "holds 25"]),
    (b"\0\0\x07\x01" + bytes(8), ["magic"]),
    (b"", ["magic"]),
])
def test_raw_damage_names_the_file_the_counts_and_the_fetch_command(tmp_path, payload, needles) -> None:
    path = put(tmp_path / "t10k-labels-idx1-ubyte", payload)
    with pytest.raises(DataError) as error:
        read_idx(path, dataset="mnist")
    message = str(error.value)
    assert str(path) in message and "`genlab data fetch mnist`" in message and "\n" not in message
    assert all(needle in message for needle in needles)


def test_payload_checksum_ignores_compression(tmp_path) -> None:
    payload = idx_payload(np.arange(10, dtype=np.uint8))
    raw, packed = put(tmp_path / "x", payload), put(tmp_path / "x.gz", payload)
    assert payload_sha256(raw) == payload_sha256(packed) == hashlib.sha256(payload).hexdigest()


def test_download_from_a_file_url_and_its_failures(tmp_path) -> None:
    source = put(tmp_path / "src" / "f.bin", b"payload")
    good = hashlib.md5(source.read_bytes()).hexdigest()
    assert download(source.as_uri(), tmp_path / "out" / "f.gz", good.upper()).read_bytes() == b"payload"
    with pytest.raises(DataError, match="checksum mismatch"):
        download(source.as_uri(), tmp_path / "bad" / "f.gz", "0" * 32)
    with pytest.raises(DataError, match="could not download"):
        download((tmp_path / "missing.gz").as_uri(), tmp_path / "gone" / "f.gz", good)
    assert not list((tmp_path / "bad").iterdir()) and not list((tmp_path / "gone").iterdir())


# --- the search order, fetch, list ------------------------------------------------------------------

def test_each_place_in_the_order_is_searched(isolated, monkeypatch) -> None:
    places = [isolated / "sys-mnist", isolated / "home" / ".cache" / "genlab" / "mnist", isolated / "env",
              isolated / "env" / "mnist", isolated / "cli", isolated / "cli" / "mnist"]
    monkeypatch.setenv("GENLAB_DATA", str(isolated / "env"))
    (isolated / "cli").mkdir()  # --data-dir must exist: a missing one is an error, not a silent fallback
    for n, folder in enumerate(places, start=1):  # each new folder outranks all the earlier ones
        idx_folder(folder, n_train=n)
        data = load_dataset("mnist", data_dir=isolated / "cli", download=False)
        assert data.source == str(folder) and data.train_x.shape[0] == n


def test_files_may_mix_gz_and_raw(isolated) -> None:
    idx_folder(isolated / "d", raw=(STEMS[0], STEMS[3]))
    data = load_dataset("mnist", data_dir=isolated / "d", download=False)
    assert data.train_x.shape == (6, 1, 28, 28) and data.train_x.is_contiguous()
    assert data.test_y.dtype == torch.int64 and data.test_y.tolist() == [0, 1, 2, 3]


def test_three_of_four_files_is_not_a_dataset(isolated) -> None:
    (idx_folder(isolated / "d") / f"{STEMS[3]}.gz").unlink()
    with pytest.raises(DataError, match="downloads are disabled"):
        load_dataset("mnist", data_dir=isolated / "d", download=False)


@pytest.mark.parametrize("where", ["data_dir", "env", "home"])
def test_downloads_land_in_the_first_writable_choice(isolated, monkeypatch, where) -> None:
    file_mirror(isolated, monkeypatch)
    data_dir = isolated / "cli" if where == "data_dir" else None
    if where != "home":
        monkeypatch.setenv("GENLAB_DATA", str(isolated / "env"))
    expected = {"data_dir": isolated / "cli", "env": isolated / "env",
                "home": isolated / "home" / ".cache" / "genlab"}[where] / "mnist"
    assert fetch_dataset("mnist", data_dir) == expected
    assert load_dataset("mnist", data_dir=data_dir, download=False).source == str(expected)


def test_failed_download_reason_is_in_the_message(isolated) -> None:
    with pytest.raises(DataError) as error:
        load_dataset("mnist")
    message = str(error.value)
    assert "download failed" in message and "no-mirror" in message and "`genlab data fetch mnist`" in message
    assert str(isolated / "sys-mnist") in message and "\n" not in message


def test_fetch_checks_fashion_payloads(isolated) -> None:
    idx_folder(isolated / "sys-fashion")  # right format, wrong content
    with pytest.raises(DataError, match="sha256"):
        fetch_dataset("fashion-mnist")
    with pytest.raises(DataError, match="generated"):
        fetch_dataset("shapes")


def test_list_says_where_or_why_not(isolated) -> None:
    idx_folder(isolated / "sys-mnist")
    status = {s.name: s for s in list_datasets()}
    assert status["mnist"].available and status["mnist"].detail == str(isolated / "sys-mnist")
    assert not status["fashion-mnist"].available and str(isolated / "sys-fashion") in status["fashion-mnist"].detail
    assert status["shapes"].available


@pytest.mark.parametrize("labels, side, needle", [
    (np.array([0, 1, 2, 3, 4, 10], np.uint8), 28, "outside 0..9"),
    (np.array([0, 1, 2], np.uint8), 28, "one label per image"),
    (None, 27, "not 28x28"),
])
def test_inconsistent_files_are_refused(isolated, labels, side, needle) -> None:
    idx_folder(isolated / "d", labels=labels, side=side)
    with pytest.raises(DataError, match=needle):
        load_dataset("mnist", data_dir=isolated / "d", download=False)


def test_resize_and_channels(isolated) -> None:
    idx_folder(isolated / "d")
    data = load_dataset("mnist", data_dir=isolated / "d", image_size=32, channels=3, download=False)
    assert data.train_x.shape == (6, 3, 32, 32) and data.train_x.dtype == torch.uint8
    assert torch.equal(data.train_x[:, 0], data.train_x[:, 2])
    with pytest.raises((DataError, ConfigError), match="channels"):
        load_dataset("mnist", data_dir=isolated / "d", channels=2, download=False)


def test_real_fashion_mnist_fetches_and_verifies(isolated, monkeypatch) -> None:
    monkeypatch.setitem(catalog.SYSTEM_DIRS, "fashion-mnist", str(REAL_FASHION))
    assert fetch_dataset("fashion-mnist") == REAL_FASHION


# --- shapes, folders ---------------------------------------------------------------------------------

def test_shapes_factors_are_in_range_and_load_dataset_passes_options() -> None:
    data = make_shapes(400, 40, seed=3)
    factors = torch.cat([data.train_factors, data.test_factors])
    assert factors.dtype == torch.float32 and data.test_x.shape == (40, 1, 28, 28)
    assert factors[:, 1].min() >= 0.5 and factors[:, 1].max() <= 1 and factors[:, 3:].abs().max() <= 1
    colour = load_dataset("shapes", image_size=64, channels=3, seed=3)
    assert colour.image_shape == (3, 64, 64) and colour.train_x.shape[0] == 12000
    with pytest.raises(DataError, match="28 or 64"):
        load_dataset("shapes", image_size=32)


def picture(path: Path, mode: str = "L", size: tuple[int, int] = (12, 8), color=128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def test_folder_split_keeps_both_sides_and_colour_wins(tmp_path) -> None:
    picture(tmp_path / "a.png")
    picture(tmp_path / "b.png")
    picture(tmp_path / "c.jpg", "RGB", color=(200, 10, 10))
    data = load_dataset(f"folder:{tmp_path}", image_size=8)
    assert data.image_shape == (3, 8, 8) and len(data.train_x) == 2 and len(data.test_x) == 1
    assert data.name == f"folder:{tmp_path.resolve()}" and data.train_y.tolist() == [0, 0]


def test_folder_center_crops_before_resizing(tmp_path) -> None:
    image = Image.new("L", (30, 10), 0)
    image.paste(255, (10, 0, 20, 10))  # only the central square is white
    for name in ("wide.png", "wide2.png", "wide3.png"):
        image.save(tmp_path / name)
    data = load_dataset(f"folder:{tmp_path}", image_size=5)
    assert torch.cat([data.train_x, data.test_x]).min() >= 250


def test_folder_says_what_it_skipped_cropped_and_resized(tmp_path) -> None:
    for i in range(3):
        picture(tmp_path / f"wide{i}.png", size=(12, 8))
    picture(tmp_path / "square.png", size=(8, 8))
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "scan.tiff").write_bytes(b"II*\0")
    note = load_dataset(f"folder:{tmp_path}", image_size=4).note
    assert note.startswith(f"folder:{tmp_path.resolve()}: 4 images") and "\n" not in note, note
    assert "3 center-cropped to squares" in note and "4 resized to 4x4" in note, note
    assert "2 other files skipped" in note and "notes.txt" in note and "scan.tiff" in note, note
    same = load_dataset(f"folder:{tmp_path}", image_size=8).note
    assert "3 center-cropped to squares" in same and "resized" not in same, same
    for extra in ("notes.txt", "scan.tiff", "wide0.png", "wide1.png", "wide2.png"):
        (tmp_path / extra).unlink()
    for i in range(3):
        picture(tmp_path / f"more{i}.png", size=(8, 8))
    plain = load_dataset(f"folder:{tmp_path}", image_size=8).note
    assert "4 images" in plain and "skipped" not in plain and "cropped" not in plain and "resized" not in plain


def test_folder_refuses_loose_images_beside_classes(tmp_path) -> None:
    picture(tmp_path / "cats" / "1.png")
    picture(tmp_path / "stray.png")
    with pytest.raises(DataError, match="stray.png"):
        load_dataset(f"folder:{tmp_path}")


def test_folder_labels_follow_sorted_subfolders(tmp_path) -> None:
    for cls, value in (("b", 50), ("a", 200)):
        for i in range(6):
            picture(tmp_path / cls / "deep" / f"{i}.png", color=value)
    data = load_dataset(f"folder:{tmp_path}", image_size=4)
    x, y = torch.cat([data.train_x, data.test_x]), torch.cat([data.train_y, data.test_y])
    assert data.classes == ("a", "b") and torch.equal(x[:, 0, 0, 0] == 200, y == 0)


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height gray pixels but holds one byte of image data (opens, fails to decode)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"x") + chunk(b"IEND", b"")


def hostile_folder(root: Path, name: str, content: bytes) -> Path:
    """Three good images and one hostile file `name` holding `content`."""
    for i in range(3):
        picture(root / f"ok{i}.png")
    (root / name).write_bytes(content)
    return root


def truncated_png() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 40).save(buffer, format="PNG")
    return buffer.getvalue()[:-200]


def gif_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="GIF")
    return buffer.getvalue()


@pytest.mark.parametrize("name, content, needles", [
    ("bomb.png", png_header(20000, 20000), ["bomb.png", "over 67108864 pixels"]),  # beyond PIL's own limit
    ("big.png", png_header(9000, 9000), ["big.png", "9000x9000", "67108864-pixel limit"]),
    ("cut.png", truncated_png(), ["cut.png", "truncated"]),
    ("gif.png", gif_bytes(), ["gif.png", "PNG or JPEG"]),
], ids=["decompression-bomb", "over-the-pixel-cap", "truncated", "gif-named-png"])
def test_hostile_folder_images_are_one_line_data_errors(tmp_path, name, content, needles) -> None:
    with pytest.raises(DataError) as error:
        load_dataset(f"folder:{hostile_folder(tmp_path, name, content)}", image_size=8)
    message = str(error.value)
    assert "\n" not in message and all(needle in message for needle in needles), message


@pytest.mark.parametrize("count", [1, 2])
def test_a_folder_too_small_for_both_splits_says_how_many_are_needed(tmp_path, count) -> None:
    for i in range(count):
        picture(tmp_path / f"{i}.png")
    with pytest.raises(DataError, match=f"holds {count} image.*at least 3 \\(2 to train on, 1 to test\\)"):
        load_dataset(f"folder:{tmp_path}")


def test_an_empty_folder_path_is_refused_not_the_current_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for i in range(3):
        picture(tmp_path / f"{i}.png")  # the current folder would load: it must not be chosen silently
    for name in ("folder:", "folder:  "):
        with pytest.raises(DataError, match="folder: needs the path"):
            load_dataset(name)


# --- batches -----------------------------------------------------------------------------------------

def test_batch_arguments_are_checked() -> None:
    x = torch.zeros(5, 1, 2, 2, dtype=torch.uint8)
    with pytest.raises(ConfigError, match="batch size"):
        next(iter_batches(x, epoch_permutation(5, 0, 0, "cpu"), 0))
    with pytest.raises(ConfigError, match="batch size"):
        next(iter_ordered(x, 0))
    with pytest.raises(ValueError, match="meta"):
        next(iter_batches(x, torch.arange(5, device="meta"), 2))
    with pytest.raises(TypeError, match="uint8"):
        to_unit_float(x.float())


def test_every_epoch_is_a_full_permutation() -> None:
    x = torch.arange(7, dtype=torch.uint8).view(7, 1, 1, 1)
    for epoch in range(3):
        perm = epoch_permutation(7, 5, epoch, "cpu")
        seen = torch.cat(list(iter_batches(x, perm, 3))).flatten() * 255
        assert perm.dtype == torch.int64 and sorted(seen.round().long().tolist()) == list(range(7))
    assert not torch.equal(epoch_permutation(50, 5, 0, "cpu"), epoch_permutation(50, 6, 0, "cpu"))


# --- hostile IDX files: the reader's own one-line error, nothing allocated beyond the limits -------------

def gzip_bomb(path: Path, header: bytes, zeros: int) -> Path:
    """A .gz of header + `zeros` zero bytes, compressed as a stream (a few hundred kB per 100 MB)."""
    packer, chunk = zlib.compressobj(9, zlib.DEFLATED, 31), bytes(1 << 20)  # wbits 31: gzip framing
    with open(path, "wb") as f:
        f.write(packer.compress(header))
        for _ in range(zeros // len(chunk)):
            f.write(packer.compress(chunk))
        f.write(packer.flush())
    return path


@pytest.mark.parametrize("payload, needles", [
    (b"\0\0\x08\x46" + bytes(4 * 70), ["70 dimensions", "1 to 8"]),
    (b"\0\0\x08\x00", ["0 dimensions"]),
    (b"\0\0\x08\x03" + np.array([0, 2**32 - 1, 2**32 - 1], ">u4").tobytes(), ["over the", "byte limit"]),
    (b"\0\0\x0e\x02" + np.array([2**20, 2**20], ">u4").tobytes() + bytes(64), ["8-byte values", "byte limit"]),
], ids=["70-dims", "0-dims", "empty-but-huge-dims", "8-TiB-of-float64"])
def test_hostile_headers_are_refused_before_any_allocation(tmp_path, payload, needles) -> None:
    path = put(tmp_path / "bad-idx1-ubyte.gz", payload)
    with pytest.raises(DataError) as error:
        read_idx(path, dataset="mnist")
    message = str(error.value)
    assert str(path) in message and "\n" not in message and all(needle in message for needle in needles)


def test_a_gzip_bomb_is_decompressed_only_as_far_as_its_header_says(tmp_path) -> None:
    bomb = gzip_bomb(tmp_path / "bomb-idx1-ubyte.gz", b"\0\0\x08\x01" + np.array([10], ">u4").tobytes(), 64 << 20)
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="trailing bytes.*holds more than"):
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"reading a 64 MB bomb took {peak} bytes"


@pytest.mark.parametrize("labels, needle", [
    (np.array([0, 1, np.nan, 3, 4, 5], np.float32), "not whole numbers"),
    (np.array([0, 1, 2.5, 3, 4, 5], np.float64), "not whole numbers"),
    (np.array([0, 1, np.inf, 3, 4, 5], np.float32), "not whole numbers"),
    (np.array([0, 1, 2, 3, 4, -1], np.int16), "outside 0..9"),
    (np.array([0, 1, 2, 3, 4, 9.0], np.float32), None),  # whole numbers stored as floats are labels
])
def test_labels_must_be_whole_class_indices(isolated, labels, needle) -> None:
    idx_folder(isolated / "d", labels=labels)
    if needle is None:
        assert load_dataset("mnist", data_dir=isolated / "d", download=False).train_y.tolist() == [0, 1, 2, 3, 4, 9]
        return
    with pytest.raises(DataError, match=needle) as error:
        load_dataset("mnist", data_dir=isolated / "d", download=False)
    assert "train-labels" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("case", ["bomb", "one-image", "empty-path"])
def test_train_on_a_hostile_folder_exits_2_in_one_line_writing_nothing(tmp_path, capsys, case) -> None:
    from cli_helpers import fails

    pictures = tmp_path / "pictures"
    if case == "bomb":
        hostile_folder(pictures, "bomb.png", png_header(20000, 20000))
    else:
        picture(pictures / "only.png")
    data = "folder:" if case == "empty-path" else f"folder:{pictures}"
    out = tmp_path / "run"
    needle = {"bomb": "pixels", "one-image": "at least 3", "empty-path": "needs the path"}[case]
    batch = ["--batch-size", "1"] if case == "one-image" else []  # once an empty test split and a TypeError
    fails(["train", "vae", "--data", data, "--epochs", "1", *batch, "--out", str(out)], capsys, needle)
    assert not out.exists()
