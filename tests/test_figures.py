"""Labelled figures: the caption travels inside the PNG and reads back; each figure says what it shows."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from genlab import figures
from genlab.errors import ConfigError, RunError
from genlab.figures import LabelledFigure, read_caption, save_figure
from genlab.images import MIN_FIGURE_WIDTH
from genlab.models.registry import create_model
from genlab.options import TrainConfig
from genlab.runs.record import DataRecord, RunRecord
from genlab.runs.store import Run


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def run_of(name: str, tmp_path, **overrides) -> Run:
    """A run held in memory: enough for figures that need no data set."""
    model = create_model(name, **overrides).eval()
    record = RunRecord(name, model.config, DataRecord(spec="shapes", name="shapes",
                                                      image_shape=model.config.image_shape), TrainConfig())
    return Run(tmp_path, record, model, [])


def pictures_size(figure: LabelledFigure) -> tuple[int, int]:
    """(height, width) of the grid of pictures, without the label margins."""
    return figure.box[2:]


def dark_pixels(region: torch.Tensor) -> int:
    """Pixels of a (3, H, W) uint8 region darker than mid-gray in every channel: drawn text on white."""
    return int((region.max(0).values < 128).sum())


def assert_labelled(figure: LabelledFigure, rows_labelled: bool = True, zoomed: bool = False) -> None:
    """Text drawn in the margin above the pictures (and left of them); at the default size (not `zoomed`), the
    pictures are at least MIN_FIGURE_WIDTH wide."""
    top, left, _, width = figure.box
    assert figure.image.dtype == torch.uint8 and (zoomed or width >= MIN_FIGURE_WIDTH), (width, figure.name)
    assert top > 0 and dark_pixels(figure.image[:, :top]) > 40, f"{figure.name}: no labels above the pictures"
    if rows_labelled:
        assert left > 0 and dark_pixels(figure.image[:, top:, :left]) > 40, f"{figure.name}: no row labels"
    else:
        assert left == 0


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
    figure = figures.manifold_figure(run_of("vae", tmp_path, latent_dim=3, hidden=(8,)), n=4, dims=(2, 0), zoom=1)
    assert figure.name == "manifold.png" and pictures_size(figure) == (4 * 30 + 2, 4 * 30 + 2)
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
    paths = figures.interpolation_figure(run, pairs=2, n=3, spherical=True, seed=4, zoom=1)
    assert paths.name == "interpolation-slerp.png" and pictures_size(paths) == (2 * 30 + 2, 3 * 30 + 2)
    assert paths.caption == "Interpolation, spherical (slerp), between 2 pairs of random codes (seed 4)"
    around = figures.neighbourhood_figure(run, n=3, dims=(5, 7), std=2, seed=1)
    assert "Neighbourhood of a random code (seed 1)" in around.caption and "+/- 2 prior standard" in around.caption
    again = figures.neighbourhood_figure(run, n=3, dims=(5, 7), std=2, seed=1)
    assert torch.equal(around.image, again.image), "the same seed gives the same picture"


def test_traversal_defaults_to_the_first_ten_dims(tmp_path) -> None:
    figure = figures.traversal_figure(run_of("dcgan", tmp_path, dim=8), n=2, zoom=1)
    assert pictures_size(figure)[0] == 10 * 30 + 2 and "(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)" in figure.caption


def test_slug_makes_file_name_parts() -> None:
    assert figures.slug("Ankle boot") == "ankle-boot" and figures.slug("T-shirt/top") == "t-shirt-top"


# ---------------------------------------------------------------- every figure kind: size and drawn labels


def test_manifold_and_neighbourhood_grids_carry_axis_values(tmp_path) -> None:
    vae = run_of("vae", tmp_path, latent_dim=3, hidden=(8,))
    manifold = figures.manifold_figure(vae, n=4, dims=(2, 0))
    assert_labelled(manifold)
    zoom = 600 // (4 * 28) + 1  # the smallest whole enlargement that makes four 28-pixel columns 600 pixels wide
    assert pictures_size(manifold) == (4 * (28 * zoom + 2) + 2,) * 2
    assert_labelled(figures.neighbourhood_figure(run_of("dcgan", tmp_path, dim=8), n=3, dims=(5, 7), std=2))
    assert_labelled(figures.neighbourhood_figure(vae, n=3, index=2))


def test_traversal_labels_each_row_with_its_dim_and_each_column_with_its_value(tmp_path) -> None:
    figure = figures.traversal_figure(run_of("vae", tmp_path, latent_dim=3, hidden=(8,)), dims=[2, 0], n=5)
    assert_labelled(figure)
    one_row = figures.traversal_figure(run_of("vae", tmp_path, latent_dim=3, hidden=(8,)), dims=[1], n=5)
    assert figure.box[0] == one_row.box[0] and pictures_size(figure)[0] > pictures_size(one_row)[0]


def test_interpolation_labels_t_and_the_pairs(tmp_path) -> None:
    assert_labelled(figures.interpolation_figure(run_of("dcgan", tmp_path, dim=8), pairs=2, n=4))
    between_images = figures.interpolation_figure(run_of("vae", tmp_path, latent_dim=3, hidden=(8,)),
                                                  indices=(0, 1, 2, 3), n=4, zoom=2)
    assert_labelled(between_images, zoomed=True)
    assert pictures_size(between_images) == (2 * 58 + 2, 6 * 58 + 2)  # originals at both ends of each row


def test_attribute_figure_shows_the_originals_and_labels_the_strengths(tmp_path) -> None:
    figure = figures.attribute_figure(run_of("vae", tmp_path, latent_dim=3, hidden=(8,)), "circle", "cross",
                                      steps=3, n=2)
    assert_labelled(figure)
    assert figure.name == "attribute-circle-to-cross.png" and "s = 0, 0.75, 1.5" in figure.caption


def test_scatter_is_a_plot_wide_enough_to_read(tmp_path) -> None:
    figure = figures.scatter_figure(run_of("vae", tmp_path, latent_dim=3, hidden=(8,)), n_images=200)
    assert figure.image.shape[2] >= MIN_FIGURE_WIDTH and dark_pixels(figure.image) > 500  # axes, ticks, legend


def test_samples_and_reconstructions_are_labelled_grids(tmp_path) -> None:
    vae = run_of("vae", tmp_path, latent_dim=3, hidden=(8,))
    samples = figures.samples_figure(vae, n=6, nrow=3, seed=1)
    assert_labelled(samples, rows_labelled=False)
    assert "noise seed 1" in samples.caption
    assert torch.equal(samples.image, figures.samples_figure(vae, n=6, nrow=3, seed=1).image)
    recon = figures.reconstruction_figure(vae, n=5, zoom=3)
    assert_labelled(recon, zoomed=True)
    assert pictures_size(recon) == (2 * 86 + 2, 5 * 86 + 2)
    with pytest.raises(RunError, match="cannot sample"):
        figures.samples_figure(run_of("ae", tmp_path))
    with pytest.raises(RunError, match="no encoder"):
        figures.reconstruction_figure(run_of("dcgan", tmp_path, dim=8))


def test_axis_values_read_as_numbers_a_person_writes() -> None:
    assert figures.values_text(torch.linspace(-3, 3, 11)) == ["-3", "-2.4", "-1.8", "-1.2", "-0.6", "0", "0.6", "1.2",
                                                            "1.8", "2.4", "3"]
    assert figures.values_text([0.000123, 0.5]) == ["0.000123", "0.5"]


def test_traversal_on_data_with_factors_names_the_factor_of_each_row_in_that_order(tmp_path, monkeypatch) -> None:
    run = run_of("vae", tmp_path, latent_dim=4, hidden=(8,))
    rows, names = figures.factors_carried(run, None)  # shapes has ground-truth factors
    assert sorted(r.dim for r in rows) == [0, 1, 2, 3] and set(names) >= {names[r.factor] for r in rows}
    assert [r.collapsed for r in rows] == sorted(r.collapsed for r in rows)
    ordered = [
        figures.CarriedFactor(dim=3, factor=1, nmi=0.8, kl=2.0, collapsed=False),
        figures.CarriedFactor(dim=0, factor=0, nmi=0.5, kl=1.0, collapsed=False),
        figures.CarriedFactor(dim=2, factor=0, nmi=0.1, kl=0.001, collapsed=True),
        figures.CarriedFactor(dim=1, factor=0, nmi=0.0, kl=0.0, collapsed=True)]
    monkeypatch.setattr(figures, "factors_carried", lambda run, data_dir: (ordered, ("shape", "size")))
    figure = figures.traversal_figure(run, n=3)
    assert "(3, 0, 2, 1)" in figure.caption and "normalised mutual information" in figure.caption
    assert_labelled(figure)
    assert figures.carried_label(ordered[0], ("shape", "size")) == "z3 size 0.80"
    assert figures.carried_label(ordered[2], ("shape", "size")) == "z2 collapsed"
    chosen = figures.traversal_figure(run, dims=[1, 3], n=3)
    assert "(1, 3)" in chosen.caption, "--dims keeps the order asked for"


def test_samples_over_epochs_are_the_saved_grids_rows_and_the_last_is_the_final_model(tmp_path, capsys) -> None:
    from genlab.cli import main
    from genlab.runs.store import load_run
    out = tmp_path / "vae"
    torch.set_num_threads(1)
    assert main(["train", "vae", "--data", "shapes", "--epochs", "3", "--batch-size", "1000", "--latent-dim", "2",
                 "--hidden", "8", "--out", str(out)]) == 0
    run = load_run(out)
    epochs, tiles = figures.epoch_samples(run, n=5)
    assert epochs == [1, 2, 3] and tiles.shape == (15, 1, 28, 28)
    with torch.no_grad():  # the trainer's noise: a generator seeded with the run's seed, the same every epoch
        final = run.model.sample(64, generator=torch.Generator().manual_seed(run.record.train.seed))[:5]
    assert (tiles[10:] - final).abs().max() <= 1 / 255 + 1e-6  # the PNG's rounding
    assert (tiles[:5] - tiles[10:]).abs().max() > 0.01  # training changed them
    assert "decoded after each epoch (epochs 1, 2, 3)" in figures.epoch_samples_figure(run, 5).caption
    assert main(["sample", str(out), "--over-epochs", "--nrow", "5"]) == 0
    from PIL import Image
    with Image.open(out / "images" / "samples-over-epochs.png") as image:
        five = image.size
    assert main(["sample", str(out), "--over-epochs"]) == 0
    with Image.open(out / "images" / "samples-over-epochs.png") as image:
        eight = image.size
    assert five != eight and min(five[0], eight[0]) >= 600  # labelled, at the figures' usual width


def test_samples_over_epochs_need_a_generative_run(tmp_path, capsys) -> None:
    from cli_helpers import fails

    from genlab.cli import main
    out = tmp_path / "ae"
    torch.set_num_threads(1)
    assert main(["train", "ae", "--data", "shapes", "--epochs", "1", "--max-steps", "2", "--out", str(out)]) == 0
    fails(["sample", str(out), "--over-epochs"], capsys, "no prior to draw from")
