"""The dSprites file reader (`dsprites:PATH`) on small files of the real file's layout made here: it reads the
grid and its factors, never unpickles, and turns every wrong file into one line."""
from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import fails
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genlab.cli import main
from genlab.data import load_dataset
from genlab.data.dsprites import load_dsprites
from genlab.data.factors import GroundTruthFactors, grid_levels
from genlab.data.packed import PackedImages
from genlab.data.sprites import held_out_count, split_order
from genlab.errors import DataError
from genlab.runs.store import load_run

SIZES = (1, 3, 2, 4, 4, 4)  # colour, shape, scale, orientation, x, y: 384 images


def exploded() -> None:
    raise AssertionError("the dSprites metadata was unpickled")


class Trap:
    """Unpickling this object fails the test: the reader must never unpickle `metadata`."""

    def __reduce__(self):
        return exploded, ()


def grid(sizes: tuple[int, ...] = SIZES) -> dict[str, np.ndarray]:
    """The real file's arrays for a small grid: classes in dSprites' order, values, 0/1 images, pickled metadata."""
    n = int(np.prod(sizes))
    classes = grid_levels(np.arange(n), sizes)
    scales = np.linspace(0.5, 1, sizes[2])
    values = np.stack([np.ones(n), classes[:, 1] + 1.0, scales[classes[:, 2]], classes[:, 3] * 0.5,
                       classes[:, 4] / 3, classes[:, 5] / 3], axis=1)
    imgs = (np.random.default_rng(0).random((n, 64, 64)) < 0.1).astype(np.uint8)
    return {"imgs": imgs, "latents_classes": classes, "latents_values": values,
            "metadata": np.array([Trap()], dtype=object)}


def write(path: Path, arrays: dict[str, np.ndarray], compressed: bool = True) -> Path:
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


@pytest.fixture
def small_file(tmp_path) -> Path:
    return write(tmp_path / "dsprites_small.npz", grid())


def test_the_reader_gives_the_grid_its_factors_and_the_sprites_split(small_file) -> None:
    arrays = grid()
    data = load_dsprites(str(small_file))
    factors = data.require_factors()
    assert isinstance(factors, GroundTruthFactors) and factors.names == ("shape", "scale", "orientation", "pos_x",
                                                                         "pos_y")
    assert factors.sizes == (3, 2, 4, 4, 4) and np.allclose(factors.values(0), [1, 2, 3])
    assert np.allclose(factors.values(1), [0.5, 1]) and np.allclose(factors.values(4), np.arange(4) / 3)
    order, n_test = split_order(384), held_out_count(384)
    assert (len(data.train_x), len(data.test_x)) == (384 - n_test, n_test) == (346, 38)
    assert isinstance(data.train_x, PackedImages) and data.classes == ("square", "ellipse", "heart")
    assert torch.equal(data.test_x[:, 0], torch.from_numpy(arrays["imgs"][order[:n_test]]) * 255)
    assert torch.equal(data.train_x.unpack()[:, 0], torch.from_numpy(arrays["imgs"][order[n_test:]]) * 255)
    assert torch.equal(data.train_y, torch.from_numpy(arrays["latents_classes"][order[n_test:], 1]))
    assert torch.allclose(data.test_factors.double(), torch.from_numpy(arrays["latents_values"][order[:n_test], 1:]))
    levels = factors.sample_factors(20, np.random.default_rng(0))
    index = levels @ np.array([128, 64, 16, 4, 1])  # the grid position (colour has one value)
    assert torch.equal(factors.images_for(levels)[:, 0], torch.from_numpy(arrays["imgs"][index]) * 255)
    assert load_dataset(f"dsprites:{small_file}").test_x.equal(data.test_x)


def test_genlab_trains_on_a_dsprites_file(small_file, tmp_path) -> None:
    out = tmp_path / "run"
    assert main(["train", "vae", "--data", f"dsprites:{small_file}", "--epochs", "1", "--max-steps", "2",
                 "--latent-dim", "3", "--out", str(out)]) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["data"]["spec"] == f"dsprites:{small_file.resolve()}" and record["data"]["train_images"] == 346
    reloaded = load_run(out).record.dataset()  # the run finds its file again from the record
    assert reloaded.name == "dsprites" and torch.equal(reloaded.test_x, load_dsprites(str(small_file)).test_x)


def bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Each wrong file beside a phrase of the one line it must give."""
    good = grid()
    files = {}
    files["pickle"] = (folder / "pickle.npz", "not a readable .npz")
    files["pickle"][0].write_bytes(pickle.dumps({"imgs": [1, 2, 3]}))
    whole = write(folder / "whole.npz", good).read_bytes()
    files["truncated"] = (folder / "truncated.npz", "not a readable .npz")
    files["truncated"][0].write_bytes(whole[:len(whole) // 2])
    files["missing"] = (write(folder / "missing.npz", {k: v for k, v in good.items() if k != "latents_values"}),
                        "has no 'latents_values' array")
    files["float"] = (write(folder / "float.npz", {**good, "imgs": good["imgs"].astype(np.float32)}),
                      "holds 'imgs' as float32")
    files["small"] = (write(folder / "small.npz", {**good, "imgs": good["imgs"][:, :32, :32]}),
                      "expected uint8 (384, 64, 64)")
    files["objects"] = (write(folder / "objects.npz", {**good, "imgs": np.array([Trap()] * 3, dtype=object)}),
                        "genlab never unpickles")
    files["columns"] = (write(folder / "columns.npz", {**good, "latents_classes": good["latents_classes"][:, :5]}),
                        "holds 'latents_classes' as int64 (384, 5)")
    files["order"] = (write(folder / "order.npz", {**good, "latents_classes": good["latents_classes"][::-1]}),
                      "is not a full factor grid in dSprites' order")
    files["values"] = (write(folder / "values.npz", {**good, "latents_values": good["latents_values"] + np.eye(384, 6)}),
                       "more than one value per class")
    files["pixels"] = (write(folder / "pixels.npz", {**good, "imgs": good["imgs"] * 255}), "pixel values up to 255")
    files["colours"] = (write(folder / "colours.npz", {**grid((2, 3, 2, 2, 2, 2))}), "has 2 colours")
    files["short"] = (short_imgs(folder / "short.npz", good), "ends inside 'imgs' after 100 of 384 images")
    return files


def short_imgs(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """A well-formed zip whose imgs.npy header declares 384 images but holds 100."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (384, 64, 64)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imgs.npy", header.getvalue() + arrays["imgs"][:100].tobytes())
        for name in ("latents_classes", "latents_values"):
            member = io.BytesIO()
            np.save(member, arrays[name])
            archive.writestr(f"{name}.npy", member.getvalue())
    return path


def test_every_wrong_file_is_one_line_naming_the_file(tmp_path, capsys) -> None:
    files = bad_files(tmp_path)
    for name, (path, phrase) in files.items():
        with pytest.raises(DataError) as caught:
            load_dsprites(str(path))
        assert phrase in str(caught.value) and str(path) in str(caught.value), (name, str(caught.value))
    for name in ("pickle", "truncated", "objects", "order"):
        path, phrase = files[name]
        fails(["train", "vae", "--data", f"dsprites:{path}", "--epochs", "1"], capsys, phrase,
              "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
    fails(["train", "vae", "--data", f"dsprites:{tmp_path / 'absent.npz'}"], capsys, "is not a file")
    fails(["train", "vae", "--data", "dsprites:"], capsys, "needs the path of the dSprites .npz file")
    fails(["train", "vae", "--data", f"dsprites:{tmp_path / 'absent.npz'}", "--channels", "3"], capsys,
          "binary 64x64")


def test_damaged_bytes_give_a_data_error_or_a_good_dataset(small_file, tmp_path) -> None:
    whole = write(tmp_path / "plain.npz", grid(), compressed=False).read_bytes()
    rng = np.random.default_rng(0)
    for trial in range(25):
        damaged = bytearray(whole)
        for at in rng.integers(0, len(whole), 3):
            damaged[at] ^= 0xFF
        path = tmp_path / f"damaged{trial}.npz"
        path.write_bytes(bytes(damaged))
        try:
            data = load_dsprites(str(path))
        except DataError as err:
            assert "\n" not in str(err) and str(path) in str(err)
        else:
            assert len(data.train_x) + len(data.test_x) == 384


headers = st.fixed_dictionaries({
    "descr": st.sampled_from(["|u1", "<i8", "<i4", "<f8", "<f4", "|b1", "|O", "<c8"]),
    "fortran_order": st.booleans(),
    "shape": st.lists(st.integers(0, 10**7) | st.sampled_from([6, 64, 384]), max_size=3).map(tuple)})


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=st.fixed_dictionaries({name: headers for name in ("imgs", "latents_classes", "latents_values")}),
       payload=st.integers(0, 5000))
def test_generated_array_headers_give_only_data_errors(members, payload, tmp_path) -> None:
    """Any dtype, order and claimed shape, with a few bytes behind each header: a DataError, nothing else."""
    path = tmp_path / "generated.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, header in members.items():
            member = io.BytesIO()
            np.lib.format.write_array_header_1_0(member, header)
            archive.writestr(f"{name}.npy", member.getvalue() + bytes(payload))
    with pytest.raises(DataError) as caught:
        load_dsprites(str(path))
    assert "\n" not in str(caught.value)


def test_big_endian_and_narrow_latents_read_alike(tmp_path) -> None:
    arrays = grid()
    other = {**arrays, "latents_classes": arrays["latents_classes"].astype(">i4"),
             "latents_values": arrays["latents_values"].astype(">f4")}
    data = load_dsprites(str(write(tmp_path / "other.npz", other)))
    reference = load_dsprites(str(write(tmp_path / "reference.npz", arrays)))
    assert torch.equal(data.train_y, reference.train_y) and torch.equal(data.test_x, reference.test_x)
    assert torch.allclose(data.train_factors, reference.train_factors)
