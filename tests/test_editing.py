"""Attribute edits judged: known answers on a pixel-space 'autoencoder', the ground truth of faces, two tiny runs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from genlab.data.faces import attributes_of
from genlab.editing import judge_edit, measure_attribute_vector, predict_attributes, rendered_with, same_norm_direction
from genlab.errors import ConfigError, RunError
from genlab.models.registry import create_model, data_fields
from genlab.runs.store import load_run
from genlab.training.trainer import train

ROOT = Path(__file__).resolve().parents[1]


class PixelCode(nn.Module):
    """An 'autoencoder' whose code is the image itself: decode(encode(x)) = x, and a code step is a pixel step."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape, self.latent_dim = shape, shape[0] * shape[1] * shape[2]
        self.anchor = nn.Parameter(torch.zeros(()))  # a parameter, for the device

    def encode(self, x):
        return x.flatten(1)

    def decode(self, z):
        return z.view(-1, *self.shape)

    def to_image(self, decoded):
        return decoded


def bright_and_corner(x: torch.Tensor) -> torch.Tensor:
    """A fake classifier: attribute 0 is 'bright' (mean > 1/2), attribute 1 'corner lit' (top-left pixel > 1/2)."""
    return torch.stack([x.mean((1, 2, 3)) > 0.5, x[:, 0, 0, 0] > 0.5], dim=1)


def test_a_known_edit_is_judged_exactly() -> None:
    shape = (1, 4, 4)
    x = torch.full((6, *shape), 0.25)
    x[:3, 0, 0, 0] = 0.75  # three of the six have the corner lit
    step = torch.full(shape, 0.5)
    step[0, 0, 0] = 0.0  # brightens everything but the corner
    truth = x + step
    scores = judge_edit(PixelCode(shape), bright_and_corner, x, step.flatten(), attribute=0, truth=truth,
                        batch_size=4)
    assert (scores.n, scores.called_original, scores.called_reconstruction, scores.called_edited) == (6, 0, 0, 1)
    assert scores.others_kept == 1 and scores.others_reconstructed == 1
    assert scores.distance_edited == pytest.approx(0) and scores.region_edited == pytest.approx(0)
    assert scores.distance_reconstruction == pytest.approx(0.5 * 15 / 16)
    assert scores.region_original == pytest.approx(0.5)  # over the 15 pixels the edit changes


def test_an_edit_that_flips_another_attribute_is_counted() -> None:
    shape = (1, 2, 2)
    x = torch.zeros(4, *shape)
    x[:, 0, 0, 0] = torch.tensor([0.0, 0.0, 0.4, 0.45])
    vector = torch.tensor([0.2, 0.0, 0.0, 0.0])  # lights the corner of the last two, none turns bright
    scores = judge_edit(PixelCode(shape), bright_and_corner, x, vector, attribute=0, strength=1.0)
    assert scores.called_edited == 0 and scores.others_kept == 0.5 and scores.distance_edited is None
    again = judge_edit(PixelCode(shape), bright_and_corner, x, vector, attribute=0, strength=0.0)
    assert again.others_kept == 1


def test_the_random_reference_has_the_vectors_norm() -> None:
    vector = torch.tensor([3.0, 4.0, 0.0])
    random = same_norm_direction(vector, seed=1)
    assert random.norm().item() == pytest.approx(5.0) and not torch.allclose(random, vector)
    assert torch.equal(random, same_norm_direction(vector, seed=1))


def test_faces_are_redrawn_with_only_the_attribute_switched_on(tiny_faces) -> None:
    factors = tiny_faces.test_factors[:32]
    smiling = rendered_with(factors, "Smiling")
    attributes, before = attributes_of(factors.numpy()), tiny_faces.test_attributes[:32]
    already = before[:, 0]
    assert torch.equal(smiling[already], tiny_faces.test_x[:32][already]), "smiling faces stay as they are"
    assert not torch.equal(smiling[~already], tiny_faces.test_x[:32][~already])
    assert torch.equal(attributes, before)
    glasses = rendered_with(factors, "Eyeglasses")
    assert glasses.shape == (32, 3, 64, 64) and not torch.equal(glasses, tiny_faces.test_x[:32])
    with pytest.raises(ConfigError, match="Smiling, Eyeglasses"):
        rendered_with(factors, "Pale_Skin")


@pytest.fixture(scope="module")
def tiny_runs(tiny_faces, tmp_path_factory) -> tuple[Path, Path]:
    """A conv VAE and an attribute classifier trained a few steps on 256 faces."""
    from genlab.options import TrainConfig
    folder = tmp_path_factory.mktemp("edit-runs")
    config = TrainConfig(epochs=1, batch_size=64, lr=1e-3, seed=0, device="cpu")
    torch.manual_seed(0)
    vae = create_model("conv-vae", image_shape=tiny_faces.image_shape, latent_dim=4)
    train(vae, tiny_faces, config, folder / "vae", log=lambda _: None, progress=False)
    fields = data_fields("attribute-classifier", tiny_faces.image_shape, 2, len(tiny_faces.attribute_names))
    classifier = create_model("attribute-classifier", **fields, conv_channels=(4, 8), feature_dim=16)
    train(classifier, tiny_faces, config, folder / "classifier", log=lambda _: None, progress=False)
    return folder / "vae", folder / "classifier"


def test_attributes_are_predicted_from_a_run(tiny_runs, tiny_faces) -> None:
    run = load_run(tiny_runs[1])
    x = tiny_faces.test_x[:10]
    found = predict_attributes(run, x, batch_size=4)
    assert found.dtype == torch.bool and found.shape == (10, len(tiny_faces.attribute_names))
    assert torch.equal(found, predict_attributes(run.model, x.float() / 255))
    with pytest.raises(RunError, match="does not predict attributes"):
        predict_attributes(load_run(tiny_runs[0]), x)


def test_the_measurement_on_two_tiny_runs(tiny_runs) -> None:
    measured = measure_attribute_vector(load_run(tiny_runs[0]), load_run(tiny_runs[1]), n=12)
    assert measured.attribute == "Smiling" and measured.vector.n == measured.random.n == 12
    assert measured.train_groups[0] + measured.train_groups[1] == 256 and measured.vector_norm > 0
    for scores in (measured.vector, measured.random):
        assert scores.called_original >= 0 and 0 <= scores.others_kept <= 1
        assert 0 < scores.distance_original < scores.region_original  # the mouth alone differs
    with pytest.raises(RunError, match="no encoder"):
        measure_attribute_vector(load_run(tiny_runs[1]), load_run(tiny_runs[1]), n=4)


def test_the_benchmark_prints_all_three(tiny_runs) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "smile_vector.py"), *map(str, tiny_runs),
                           "--n", "8", "--strength", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "(a) share called Smiling" in out and "(c) mean |difference|" in out and "strength s = 2" in out
    assert "Smiling vector" in out and "random, same norm" in out and "mouth curvature c -> |c|" in out
