"""`genlab sample --temperature` and the user's own image files in `reconstruct` and `explore interpolate`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import fails
from PIL import Image

from genlab import figures, latent
from genlab.cli import main
from genlab.errors import ConfigError
from genlab.images import load_images_as
from genlab.models.registry import create_model
from genlab.runs.store import load_run

TINY = ["--data", "shapes", "--epochs", "1", "--max-steps", "2", "--batch-size", "16"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "vae"
    assert main(["train", "vae", *TINY, "--out", str(out)]) == 0
    return out


def write_image(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def stripes(path: Path, width: int = 60, height: int = 40, border: int = 10) -> Path:
    """A white RGB picture with black bands `border` wide at its left and right: a center crop removes them."""
    array = np.full((height, width, 3), 255)
    array[:, :border] = array[:, width - border:] = 0
    return write_image(path, array)


# ---------------------------------------------------------------- temperature


def test_temperature_scales_the_codes_and_only_their_spread() -> None:
    model = create_model("vae", latent_dim=5)
    unit = latent.tempered_codes(model, 4000, 1.0, torch.Generator().manual_seed(3))
    hot = latent.tempered_codes(model, 4000, 2.5, torch.Generator().manual_seed(3))
    torch.testing.assert_close(hot, 2.5 * unit)
    assert abs(hot.std().item() - 2.5) < 0.1 and abs(hot.mean().item()) < 0.1


@pytest.mark.parametrize("name, config", [("vae", {"latent_dim": 4}), ("dcgan", {"dim": 8, "latent_dim": 6})])
def test_tempered_samples_decode_the_scaled_codes(name: str, config: dict) -> None:
    model = create_model(name, **config).eval()
    z = torch.randn(3, model.latent_dim, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(latent.tempered_samples(model, 3, 0.3, seed=7), latent.decode_images(model, 0.3 * z))
    with torch.no_grad():  # temperature 1 is the model's own sample(n), unchanged
        own = model.sample(3, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(latent.tempered_samples(model, 3, 1.0, seed=7), own)
    assert not torch.allclose(latent.tempered_samples(model, 3, 0.3, seed=7), own)


def test_a_vampprior_samples_at_temperature_one_only() -> None:
    model = create_model("vae", latent_dim=2, prior="vamp", pseudo_inputs=3).eval()
    assert latent.tempered_samples(model, 2, 1.0).shape[0] == 2
    with pytest.raises(ConfigError, match="vamp prior"):
        latent.tempered_samples(model, 2, 0.5)


def test_sample_at_a_temperature_says_so(vae_run, tmp_path, capsys) -> None:
    out = tmp_path / "cold.png"
    assert main(["sample", str(vae_run), "-n", "4", "--temperature", "0.5", "--out", str(out)]) == 0
    assert out.is_file()
    caption = figures.samples_figure(load_run(vae_run), 4, temperature=0.5).caption
    assert "temperature 0.5" in caption and "N(0, 0.5^2 I)" in caption
    assert "temperature" not in figures.samples_figure(load_run(vae_run), 4).caption


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_a_temperature_not_above_zero_is_one_line(value: str, vae_run, capsys) -> None:
    fails(["sample", str(vae_run), "--temperature", value], capsys, "--temperature must be a number above 0")


# ---------------------------------------------------------------- the user's image files


def test_files_become_the_runs_shape_cropped_like_folder_data(tmp_path) -> None:
    wide = stripes(tmp_path / "wide.png")
    red = write_image(tmp_path / "red.jpg", np.tile(np.array([255, 0, 0]), (20, 20, 1)))
    x, note = load_images_as([wide, red], (1, 16, 16))
    assert x.shape == (2, 1, 16, 16) and x.dtype == torch.uint8
    assert (x[0] == 255).all()  # the black bands were cropped away, not squeezed in
    assert abs(int(x[1].float().mean()) - 76) <= 3  # red's luma, 0.299 * 255
    assert "1 center-cropped to squares" in note and "2 resized to 16x16" in note and "grayscale" in note
    rgb, _ = load_images_as([red], (3, 20, 20))
    assert rgb.shape == (1, 3, 20, 20) and rgb[0, 0].min() > 240 and rgb[0, 1].max() < 15


def test_reconstruct_given_files(vae_run, tmp_path, capsys) -> None:
    a = stripes(tmp_path / "a.png")
    b = write_image(tmp_path / "b.jpg", np.random.default_rng(0).integers(0, 256, (50, 50, 3)))
    out = tmp_path / "rec.png"
    assert main(["reconstruct", str(vae_run), "--images", str(a), str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 image file(s)" in printed and "center-cropped" in printed and str(out) in printed
    figure = figures.reconstruction_figure(load_run(vae_run), images=[str(a), str(b)])
    assert "a.png, b.jpg" in figure.caption
    assert Image.open(out).size == figure.image.shape[:0:-1]


def test_interpolate_between_given_files(vae_run, tmp_path, capsys) -> None:
    a, b = stripes(tmp_path / "a.png"), stripes(tmp_path / "b.png", border=25)
    out = tmp_path / "path.png"
    assert main(["explore", "interpolate", str(vae_run), "--images", str(a), str(b), "-n", "4",
                 "--out", str(out)]) == 0
    assert "2 image file(s)" in capsys.readouterr().out and out.is_file()
    figure = figures.interpolation_figure(load_run(vae_run), n=4, images=[str(a), str(b)])
    assert "image files a.png -> b.png" in figure.caption
    fails(["explore", "interpolate", str(vae_run), "--images", str(a)], capsys, "pairs of image files")


@pytest.mark.parametrize("command", [["reconstruct"], ["explore", "interpolate"]])
def test_a_file_that_is_not_an_image_is_one_line(command: list[str], vae_run, tmp_path, capsys) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture\n")
    good = stripes(tmp_path / "good.png")
    fails([*command, str(vae_run), "--images", str(good), str(text)], capsys, "notes.png", "PNG or JPEG")
    fails([*command, str(vae_run), "--images", str(good), str(tmp_path / "missing.jpg")], capsys, "missing.jpg")
