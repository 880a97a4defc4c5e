"""Labelled figures: the caption travels inside the PNG and reads back; each figure says what it shows."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from genlab import figures
from genlab.errors import ConfigError, RunError
from genlab.figures import LabelledFigure, read_caption, save_figure
from genlab.models.registry import create_model
from genlab.train.config import TrainConfig
from genlab.train.run import DataRecord, Run, RunRecord


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def run_of(name: str, tmp_path, **overrides) -> Run:
    """A run held in memory: enough for figures that need no data set."""
    model = create_model(name, **overrides).eval()
    record = RunRecord(name, model.config, DataRecord(spec="shapes", name="shapes",
                                                      image_shape=model.config.image_shape), TrainConfig())
    return Run(tmp_path, record, model, [])


def test_saved_caption_reads_back_and_the_default_path_is_under_explore(tmp_path) -> None:
    figure = LabelledFigure(torch.rand(3, 10, 12), "Latent manifold: 3x3 -> a caption", "manifold.png")
    path = save_figure(figure, tmp_path)
    assert path == tmp_path / "images" / "explore" / "manifold.png"
    assert read_caption(path) == figure.caption
    with Image.open(path) as image:
        assert image.size == (12, 10)
    assert read_caption(save_figure(figure, tmp_path, tmp_path / "elsewhere.PNG")) == figure.caption


def test_out_must_be_a_png(tmp_path) -> None:
    with pytest.raises(ConfigError, match="must end in .png"):
        save_figure(LabelledFigure(torch.rand(1, 4, 4), "c", "x.png"), tmp_path, tmp_path / "x.jpg")


def test_read_caption_is_none_for_anything_but_a_captioned_png(tmp_path) -> None:
    Image.new("L", (4, 4)).save(tmp_path / "plain.png")
    Image.new("L", (4, 4)).save(tmp_path / "photo.jpg")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for name in ("plain.png", "photo.jpg", "broken.png", "missing.png"):
        assert read_caption(tmp_path / name) is None, name


def test_manifold_figure_is_a_grid_with_its_caption_and_name(tmp_path) -> None:
    figure = figures.manifold_figure(run_of("vae", tmp_path, latent_dim=3, hidden=(8,)), n=4, dims=(2, 0))
    assert figure.name == "manifold.png" and figure.image.shape == (1, 4 * 30 + 2, 4 * 30 + 2)
    assert figure.caption.startswith("Latent manifold: 4x4 decoded grid, dim 2 across and dim 0 down")
    assert figure.caption.endswith("at the prior's quantiles; the other dims at 0")


def test_figures_refuse_models_without_what_they_need(tmp_path) -> None:
    with pytest.raises(RunError, match="no latent space"):
        figures.manifold_figure(run_of("classifier", tmp_path))
    with pytest.raises(ConfigError, match="--range"):
        figures.manifold_figure(run_of("ae", tmp_path))
    with pytest.raises(RunError, match="no encoder"):
        figures.scatter_figure(run_of("dcgan", tmp_path, dim=8))


def test_a_gan_is_explored_from_seeded_prior_codes(tmp_path) -> None:
    run = run_of("dcgan", tmp_path, dim=8)
    paths = figures.interpolation_figure(run, pairs=2, n=3, spherical=True, seed=4)
    assert paths.name == "interpolation-slerp.png" and paths.image.shape[1:] == (2 * 30 + 2, 3 * 30 + 2)
    assert paths.caption == "Interpolation, spherical (slerp), between 2 pairs of random codes (seed 4)"
    around = figures.neighbourhood_figure(run, n=3, dims=(5, 7), std=2, seed=1)
    assert "Neighbourhood of a random code (seed 1)" in around.caption and "+/- 2 prior standard" in around.caption
    again = figures.neighbourhood_figure(run, n=3, dims=(5, 7), std=2, seed=1)
    assert torch.equal(around.image, again.image), "the same seed gives the same picture"


def test_traversal_defaults_to_the_first_ten_dims(tmp_path) -> None:
    figure = figures.traversal_figure(run_of("dcgan", tmp_path, dim=8), n=2)
    assert figure.image.shape[1] == 10 * 30 + 2 and "(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)" in figure.caption


def test_slug_makes_file_name_parts() -> None:
    assert figures.slug("Ankle boot") == "ankle-boot" and figures.slug("T-shirt/top") == "t-shirt-top"
