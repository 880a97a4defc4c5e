"""sprites, the procedural dSprites grid: its order, its drawing, the packed storage, the factors interface, and
training on a small variant from the command line; shapes answering the same interface."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from cli_helpers import fails

from genlab.cli import main
from genlab.data import load_dataset
from genlab.data.factors import (
    GroundTruthFactors,
    PackedGridFactors,
    grid_index,
    grid_levels,
)
from genlab.data.packed import PackedImages, unpack_bits
from genlab.data.shapes import ShapesFactors, make_shapes
from genlab.data.sprites import (
    GRID_SIZE,
    SIZES,
    SpritesFactors,
    held_out_count,
    make_sprites,
    split_order,
)
from genlab.errors import DataError
from genlab.options import TrainConfig
from genlab.training.trainer import train

SHAPE, SCALE, ORIENTATION, X, Y = range(5)


@pytest.fixture(scope="module")
def small() -> object:
    return make_sprites(300)


def levels(n: int = 1, **fixed: int) -> np.ndarray:
    """n rows of levels at the grid's middle (scale 1), with the named factors set."""
    row = {"shape": 0, "scale": 5, "orientation": 0, "pos_x": 16, "pos_y": 16, **fixed}
    return np.tile(np.array([row[name] for name in SpritesFactors().names]), (n, 1))


def area_and_centroid(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels on, mean row and mean column of each uint8 (n, 1, 64, 64) image."""
    on = (images[:, 0] > 0).double()
    area = on.sum((1, 2))
    rows = (on * torch.arange(64.0).view(1, -1, 1)).sum((1, 2)) / area
    columns = (on * torch.arange(64.0).view(1, 1, -1)).sum((1, 2)) / area
    return area.numpy(), rows.numpy(), columns.numpy()


def test_the_grid_is_dsprites_in_dsprites_order() -> None:
    factors = SpritesFactors()
    assert isinstance(factors, GroundTruthFactors)
    assert factors.names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert factors.sizes == SIZES == (3, 6, 40, 32, 32) and GRID_SIZE == 737_280
    assert np.allclose(factors.values(SCALE), np.linspace(0.5, 1, 6))
    angles = factors.values(ORIENTATION)
    assert angles[0] == 0 and angles.max() < 2 * math.pi and np.allclose(np.diff(angles), 2 * math.pi / 40)
    assert np.allclose(factors.values(X), np.linspace(0, 1, 32)) and np.allclose(factors.values(Y), factors.values(X))
    # mixed radix, pos_y fastest: index = (((shape * 6 + scale) * 40 + orientation) * 32 + x) * 32 + y
    assert grid_levels(np.array([1, 32, 1024, 40960, 245760, GRID_SIZE - 1]), SIZES).tolist() == [
        [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0], [0, 1, 0, 0, 0], [1, 0, 0, 0, 0], [2, 5, 39, 31, 31]]
    index = np.random.default_rng(0).integers(0, GRID_SIZE, 1000)
    assert np.array_equal(grid_index(grid_levels(index, SIZES), SIZES), index)


def test_sample_factors_are_uniform_levels_and_bad_levels_are_refused() -> None:
    factors = SpritesFactors()
    drawn = factors.sample_factors(5000, np.random.default_rng(1))
    assert drawn.dtype == np.int64 and drawn.shape == (5000, 5)
    assert (drawn.min(0) == 0).all() and (drawn.max(0) == np.array(SIZES) - 1).all()
    assert np.array_equal(drawn, factors.sample_factors(5000, np.random.default_rng(1)))
    with pytest.raises(DataError, match="'orientation' has levels 0..39"):
        factors.images_for(levels(orientation=40))
    with pytest.raises(DataError, match=r"integer array \(n, 5\)"):
        factors.images_for(np.zeros((2, 4), dtype=np.int64))


def test_images_are_binary_and_every_sprite_stays_inside_the_frame() -> None:
    rows = np.array([[shape, 5, o, x, y] for shape in range(3) for o in range(40) for x in (0, 31) for y in (0, 31)])
    images = SpritesFactors().images_for(rows)
    assert images.dtype == torch.uint8 and images.shape == (len(rows), 1, 64, 64)
    assert set(images.unique().tolist()) == {0, 255}
    area, _, _ = area_and_centroid(images)
    assert area.min() > 100  # scale 1: every sprite is there
    frame = torch.cat([images[:, 0, 0], images[:, 0, -1], images[:, 0, :, 0], images[:, 0, :, -1]], dim=1)
    assert frame.max() == 0  # at the extreme positions, at every orientation, a pixel clear of the edge


def test_areas_match_the_outlines_and_grow_with_scale() -> None:
    factors = SpritesFactors()
    exact = {0: 2.0, 1: math.pi * 0.55, 2: 3.6620 / 1.2935 ** 2}  # area / radius^2 of square, ellipse, heart
    for shape, ratio in exact.items():
        rows = np.array([[shape, s, o, 16, 16] for s in range(6) for o in range(0, 40, 4)])
        area = area_and_centroid(factors.images_for(rows))[0].reshape(6, 10).mean(1)
        assert (np.diff(area) > 0).all(), (shape, area)
        expected = ratio * (12 * factors.values(SCALE)) ** 2
        assert np.allclose(area, expected, rtol=0.04), (shape, area, expected)
    # the three outlines differ at one scale, orientation and position
    three = factors.images_for(np.array([[shape, 5, 3, 16, 16] for shape in range(3)]))
    assert not torch.equal(three[0], three[1]) and not torch.equal(three[1], three[2])


def test_positions_move_the_centroid_and_orientation_turns_the_sprite() -> None:
    factors = SpritesFactors()
    for shape in range(3):
        along_x = levels(32, shape=shape, scale=2)
        along_x[:, X] = np.arange(32)
        _, rows, columns = area_and_centroid(factors.images_for(along_x))
        assert (np.diff(columns) > 0).all() and np.ptp(rows) < 0.5
        assert 12 < columns[0] < 15 and 49 < columns[-1] < 52  # x runs left to right from 13 to 51
        along_y = levels(32, shape=shape, scale=2)
        along_y[:, Y] = np.arange(32)
        _, rows, columns = area_and_centroid(factors.images_for(along_y))
        assert (np.diff(rows) > 0).all() and np.ptp(columns) < 0.5  # y runs top to bottom
    ellipse = factors.images_for(np.array([[1, 5, 0, 16, 16], [1, 5, 10, 16, 16]]))[:, 0] > 0
    width, height = ellipse.any(1).sum(1), ellipse.any(2).sum(1)  # columns and rows with a pixel on
    assert width[0] > 1.5 * height[0] and height[1] > 1.5 * width[1]  # a quarter turn stands it up


def test_packed_images_read_back_as_the_uint8_images() -> None:
    images = (torch.rand(50, 1, 64, 64, generator=torch.Generator().manual_seed(0)) < 0.3).to(torch.uint8) * 255
    packed = PackedImages.from_images(images)
    assert packed.shape == images.shape and len(packed) == 50 and packed.nbytes * 8 == images.numel()
    index = torch.tensor([3, 0, 49, 3])
    assert torch.equal(packed.index_select(0, index), images.index_select(0, index))
    assert torch.equal(packed[7], images[7]) and torch.equal(packed[10:20], images[10:20])
    assert torch.equal(packed[index], images[index]) and torch.equal(packed.unpack(), images)
    assert torch.equal(packed.narrow(0, 5, 10).unpack(), images.narrow(0, 5, 10))
    assert torch.equal(packed.to("cpu").contiguous()[:], images)
    with pytest.raises(TypeError, match="image axis only"):
        packed[0, 0]
    # the torch unpacking a GPU uses gives the same pixels as np.unpackbits
    assert torch.equal(unpack_bits(packed.bits).view(50, 1, 64, 64), images)


def test_a_small_sprites_set_is_a_fixed_split_whose_images_are_its_factors(small) -> None:
    assert small.name == "sprites:300" and isinstance(small.train_x, PackedImages)
    assert (len(small.train_x), len(small.test_x)) == (270, 30) == (300 - held_out_count(300), held_out_count(300))
    assert held_out_count(GRID_SIZE) == 10_000 and small.classes == ("square", "ellipse", "heart")
    order = split_order(GRID_SIZE)
    test_levels, train_levels = grid_levels(order[:30], SIZES), grid_levels(order[30:300], SIZES)
    assert np.array_equal(small.factors.level_of(small.train_factors.double().numpy()), train_levels)
    assert torch.equal(small.train_y, torch.from_numpy(train_levels[:, 0]))
    assert torch.equal(small.factors.images_for(train_levels), small.train_x.unpack())
    assert torch.equal(small.factors.images_for(test_levels), small.test_x)
    assert small.require_factors() is small.factors
    assert load_dataset("sprites:300").test_x.equal(small.test_x)  # the same split on every load


def test_training_on_packed_images_matches_training_on_the_unpacked_ones(small) -> None:
    from genlab.models.registry import create_model

    unpacked = dataclasses.replace(small, train_x=small.train_x.unpack())
    config = TrainConfig(epochs=1, batch_size=64, max_steps=3, val_images=30, seed=5, device="cpu")
    losses = []
    for data in (small, unpacked):
        torch.manual_seed(0)
        model = create_model("vae", image_shape=data.image_shape, latent_dim=4)
        losses.append(train(model, data, config, progress=False, log=lambda line: None)[-1])
    assert losses[0]["train"] == losses[1]["train"] and losses[0]["val"] == losses[1]["val"]


def test_shapes_answer_the_factors_interface_with_binned_continuous_factors() -> None:
    data = make_shapes(n_train=64, n_test=16, image_size=28, seed=0)
    factors = data.require_factors()
    assert isinstance(factors, ShapesFactors) and isinstance(factors, GroundTruthFactors)
    assert factors.names == data.factor_names and factors.sizes == (4, 20, 20, 20, 20)
    assert np.allclose(factors.values(1), 0.5 + 0.025 * (np.arange(20) + 0.5))  # scale: 20 bins over [0.5, 1]
    assert np.allclose(factors.values(3)[[0, -1]], [-0.95, 0.95])                # positions: 20 bins over [-1, 1]
    binned = factors.level_of(data.train_factors.double().numpy())
    assert np.array_equal(binned[:, 0], data.train_y.numpy())
    assert np.array_equal(binned[:, 1], np.minimum((data.train_factors[:, 1].numpy() - 0.5) // 0.025, 19))
    images = factors.images_for(factors.sample_factors(10, np.random.default_rng(0)))
    assert images.shape == (10, 1, 28, 28) and images.dtype == torch.uint8
    centred = factors.images_for(np.array([[0, 19, 0, 10, 10]]))  # the biggest square in the middle
    assert images.float().mean() > 0 and centred[0, 0, 14, 14] == 255


def test_datasets_without_factors_say_so(tiny_shapes) -> None:
    plain = dataclasses.replace(tiny_shapes, factors=None, name="plain")
    with pytest.raises(DataError, match="plain has no ground-truth factors; .* sprites"):
        plain.require_factors()
    with pytest.raises(DataError, match="must answer genlab.data.factors.GroundTruthFactors"):
        dataclasses.replace(tiny_shapes, factors=object())


def test_genlab_trains_a_vae_on_a_small_sprites_set(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "vae", "--data", "sprites:300", "--epochs", "1", "--batch-size", "64", "--latent-dim",
                 "4", "--out", str(out)]) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["data"]["spec"] == "sprites:300" and record["data"]["image_shape"] == [1, 64, 64]
    assert main(["data", "list"]) == 0
    listed = capsys.readouterr().out
    assert "sprites " in listed and "sprites:N" in listed and "dsprites:PATH" in listed


def test_bad_sprites_options_end_in_one_line(capsys) -> None:
    fails(["train", "vae", "--data", "sprites:many"], capsys, "sprites:N takes a number of images")
    fails(["train", "vae", "--data", "sprites:5"], capsys, "sprites has 20..737,280")
    fails(["train", "vae", "--data", "sprites:300", "--image-size", "28"], capsys, "binary 64x64")


@pytest.mark.slow
def test_the_full_grid_is_packed_in_a_tenth_of_its_bytes() -> None:
    data = load_dataset("sprites")
    assert (len(data.train_x), len(data.test_x)) == (GRID_SIZE - 10_000, 10_000)
    assert data.train_x.nbytes == (GRID_SIZE - 10_000) * 512  # 372 MB, not 2.98 GB
    index = np.array([0, 123_456, GRID_SIZE - 11_000])
    assert torch.equal(data.train_x[torch.from_numpy(index)],
                       data.factors.images_for(data.factors.level_of(data.train_factors[index].double().numpy())))
    # the full grid's factors look images up; drawing them gives the same pixels
    assert isinstance(data.factors, PackedGridFactors)
    levels = data.factors.sample_factors(512, np.random.default_rng(2))
    assert torch.equal(data.factors.images_for(levels), SpritesFactors().images_for(levels))
