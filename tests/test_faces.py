"""faces, the procedural cartoon faces: attributes that match the factors, a fixed seed, render() giving the dataset
images back from their factors, one factor changed at a time, the factors interface and the faces:N names."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.data import fetch_dataset, list_datasets, load_dataset
from genlab.data.faces import (
    ATTRIBUTE_NAMES,
    EYE_WINDOW,
    FACTOR_NAMES,
    HAIR_COLOURS,
    HEAD_WINDOW,
    MIN_CURVATURE,
    MOUTH_WINDOW,
    NEUTRAL,
    RANGES,
    TEST_SEED,
    TRAIN_SEED,
    FacesFactors,
    attributes_of,
    eye_layers,
    head_frame,
    head_layers,
    make_faces,
    mouth_layer,
    per_face,
    render,
    sample_values,
    write_example_figure,
)
from genlab.data.factors import CONTINUOUS_BINS, GroundTruthFactors
from genlab.errors import DataError

MOUTH = FACTOR_NAMES.index("mouth_curvature")


@pytest.fixture(scope="module")
def small():
    return make_faces(300, n_test=100)


def test_images_labels_attributes_and_factors_have_their_shapes(small) -> None:
    assert small.name == "faces:300" and small.classes == ("not smiling", "smiling")
    assert small.train_x.shape == (300, 3, 64, 64) and small.test_x.shape == (100, 3, 64, 64)
    assert small.train_x.dtype == torch.uint8 and small.train_factors.dtype == torch.float32
    assert small.factor_names == FACTOR_NAMES and small.train_factors.shape == (300, len(FACTOR_NAMES))
    assert small.attribute_names == ATTRIBUTE_NAMES and small.train_attributes.shape == (300, len(ATTRIBUTE_NAMES))
    assert small.train_attributes.dtype == torch.bool and "procedural" in small.source
    assert torch.equal(small.train_y, small.attribute("Smiling")[0].long())
    assert torch.equal(small.test_y, small.attribute("Smiling")[1].long())


def test_attributes_follow_the_factors(small) -> None:
    factors, attributes = small.train_factors, small.train_attributes
    column = dict(zip(FACTOR_NAMES, factors.T))
    have = dict(zip(ATTRIBUTE_NAMES, attributes.T))
    assert torch.equal(have["Smiling"], column["mouth_curvature"] > 0)
    assert (column["mouth_curvature"].abs() >= MIN_CURVATURE).all()  # every mouth visibly bent one way
    assert torch.equal(have["Eyeglasses"], column["eyeglasses"] == 1)
    for k, colour in enumerate(HAIR_COLOURS):
        assert torch.equal(have[f"{colour.capitalize()}_Hair"], column["hair_colour"] == k)
    assert (attributes[:, 2:6].sum(1) == 1).all()  # one hair colour each
    assert torch.equal(have["Narrow_Eyes"], column["eye_openness"] < 0.4)
    assert torch.equal(have["Pale_Skin"], column["skin_tone"] < 0.25)
    for name, (low, high) in RANGES.items():
        assert low <= column[name].min() and column[name].max() <= high


def test_a_seed_gives_the_same_faces_and_faces_n_is_a_prefix(small) -> None:
    fewer = make_faces(40, n_test=20)
    assert torch.equal(fewer.train_x, small.train_x[:40]) and torch.equal(fewer.test_x, small.test_x[:20])
    assert torch.equal(fewer.train_factors, small.train_factors[:40])
    assert not torch.equal(small.train_factors[:20], small.test_factors[:20])  # two streams


def test_render_gives_the_dataset_images_back_from_their_factors(small) -> None:
    assert torch.equal(render(small.train_factors), small.train_x)
    assert torch.equal(render(small.test_factors.numpy()), small.test_x)
    for i in (0, 7, 99):  # alone, a face is drawn as in a batch
        assert torch.equal(render(small.test_factors[i]), small.test_x[i:i + 1])


def test_changing_the_mouth_changes_only_the_mouth(small) -> None:
    factors = small.test_factors[:32].clone()
    factors[:, MOUTH] = -factors[:, MOUTH]  # every smile a frown and the other way round
    before, after = small.test_x[:32], render(factors)
    changed = (before != after).any(dim=1)  # (32, 64, 64)
    outside = changed.clone()
    outside[:, MOUTH_WINDOW[0], MOUTH_WINDOW[1]] = False
    assert not outside.any()
    assert (changed.flatten(1).sum(1) >= 20).all()  # and the mouth does change, visibly


def test_every_part_stays_inside_its_window() -> None:
    extremes = np.array(np.meshgrid(*[[low, high] for low, high in RANGES.values()])).reshape(len(RANGES), -1).T
    values = np.tile(np.array([NEUTRAL[name] for name in FACTOR_NAMES], dtype=np.float32), (len(extremes), 1))
    values[:, [FACTOR_NAMES.index(name) for name in RANGES]] = extremes
    values[:, FACTOR_NAMES.index("eyeglasses")] = 1
    c = per_face(values.astype(np.float32))
    whole = (slice(0, 64), slice(0, 64))
    for window, layers in ((HEAD_WINDOW, head_layers), (EYE_WINDOW, eye_layers), (MOUTH_WINDOW, mouth_layer)):
        layers = layers(*head_frame(c, *whole), c)
        for layer in layers if isinstance(layers, tuple) else (layers,):
            outside = layer.clone()
            outside[:, window[0], window[1]] = 0
            assert layer.max() == 1 and outside.max() == 0


def test_render_takes_named_factors_with_neutral_defaults() -> None:
    neutral = render({})
    assert neutral.shape == (1, 3, 64, 64)
    assert torch.equal(neutral, render(np.array([NEUTRAL[name] for name in FACTOR_NAMES])))
    sweep = render({"mouth_curvature": np.linspace(-1, 1, 5), "hair_colour": 1})
    assert sweep.shape == (5, 3, 64, 64) and torch.equal(sweep[2:3], render({"hair_colour": 1}))
    with pytest.raises(DataError, match="no factor 'smile'; its factors are mouth_curvature"):
        render({"smile": 1.0})
    with pytest.raises(DataError, match="'tilt' must be in \\[-12, 12\\]; got 30"):
        render({"tilt": 30.0})
    with pytest.raises(DataError, match="'hair_colour' must be one of 0..3; got 1.5"):
        render({"hair_colour": 1.5})
    with pytest.raises(DataError, match=r"array \(n, 10\)"):
        render(np.zeros((2, 3)))


def test_attributes_are_spread_over_the_training_set() -> None:
    values = sample_values(60_000, TRAIN_SEED)  # the full training set's factors, without drawing them
    share = attributes_of(values).float().mean(0)
    assert ((share > 0.15) & (share < 0.85)).all(), dict(zip(ATTRIBUTE_NAMES, share.tolist()))
    hair = values[:, FACTOR_NAMES.index("hair_colour")]
    assert set(np.unique(hair).tolist()) == {0.0, 1.0, 2.0, 3.0}
    assert np.array_equal(sample_values(500, TEST_SEED), sample_values(1000, TEST_SEED)[:500])


def test_faces_answer_the_ground_truth_factors_interface(small) -> None:
    factors = small.factors
    assert isinstance(factors, FacesFactors) and isinstance(factors, GroundTruthFactors)
    assert factors.names == FACTOR_NAMES
    assert factors.sizes == (CONTINUOUS_BINS, 2, 4, *[CONTINUOUS_BINS] * 7)
    assert np.allclose(factors.values(FACTOR_NAMES.index("tilt"))[[0, -1]], [-11.4, 11.4])
    levels = factors.sample_factors(6, np.random.default_rng(0))
    assert levels.shape == (6, len(FACTOR_NAMES)) and levels.dtype == np.int64
    images = factors.images_for(levels)
    assert images.shape == (6, 3, 64, 64) and images.dtype == torch.uint8
    values = np.stack([factors.values(k)[levels[:, k]] for k in range(len(FACTOR_NAMES))], axis=1)
    assert torch.equal(images, render(values))
    with pytest.raises(DataError, match="factor 'hair_colour' has levels 0..3"):
        factors.images_for(np.where(np.arange(10) == 2, 4, 0)[None])


def test_faces_n_loads_with_the_fixed_test_split() -> None:
    data = load_dataset("faces:200")
    assert data.name == "faces:200" and len(data.train_x) == 200 and len(data.test_x) == 10_000
    assert torch.equal(data.test_factors[:100], make_faces(1, n_test=100).test_factors)
    assert data.image_shape == (3, 64, 64) and data.factors is not None


@pytest.mark.parametrize("spec, needle", [
    ("faces:abc", "faces:N takes a number of training faces"),
    ("faces:0", "from 1 to 200,000"),
    ("faces:-5", "faces:N takes a number"),
])
def test_a_bad_faces_size_is_a_data_error(spec, needle) -> None:
    with pytest.raises(DataError, match=needle):
        load_dataset(spec)


@pytest.mark.parametrize("options", [{"image_size": 32}, {"channels": 1}])
def test_faces_load_at_their_own_size_and_colour(options) -> None:
    with pytest.raises(DataError, match="64x64 RGB and load as they are"):
        load_dataset("faces:10", **options)


@pytest.mark.slow
def test_the_full_set_is_60000_and_10000_faces() -> None:
    data = load_dataset("faces")  # ~6-9 s on one thread
    assert data.name == "faces" and (len(data.train_x), len(data.test_x)) == (60_000, 10_000)
    share = data.train_attributes.float().mean(0)
    assert ((share > 0.15) & (share < 0.85)).all()
    index = torch.tensor([0, 31_415, 59_999])
    assert torch.equal(render(data.train_factors[index]), data.train_x[index])
    assert torch.equal(data.test_x[:50], make_faces(1, n_test=50).test_x)


def test_faces_are_listed_generated_and_pictured(tmp_path) -> None:
    assert {status.name: status for status in list_datasets()}["faces"].available
    with pytest.raises(DataError, match="generated on the fly"):
        fetch_dataset("faces")
    path = write_example_figure(tmp_path / "faces.png")
    assert path.is_file() and path.stat().st_size > 10_000
