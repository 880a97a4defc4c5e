"""The HTML run report: self-contained, escaped, complete, and clear about broken runs."""

import base64
import io
import json
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genlab.errors import RunError
from genlab.plots import gan_warning, loss_curves_png
from genlab.report import write_report
from genlab.report.page import TEMPLATE, fill_page, page_template
from genlab.runs import layout
from genlab.runs.record import read_metrics

VAE_PARTS = ("loss", "rec", "kl")
AE_PARTS = ("loss", "rec")


def png_bytes(width: int, height: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def epoch_metrics(epochs: int, parts: tuple[str, ...]) -> list[dict]:
    def split(epoch: int, offset: float) -> dict:
        return {name: 100.0 / epoch + offset + index for index, name in enumerate(parts)}

    return [{"epoch": e, "step": 469 * e, "epoch_seconds": 3.0 + e / 10,
             "train": split(e, 1.0), "test": split(e, 0.5)} for e in range(1, epochs + 1)]


def make_run(root, model="vae", parts=VAE_PARTS, epochs=3, samples=True, **config_overrides):
    """A run directory as the trainer writes it, with tiny PNGs."""
    run = root / "run-001"
    (run / "images").mkdir(parents=True)
    model_config = {"latent_dim": 2, "hidden": [64, 32]} if model in ("vae", "ae") else {}
    config = {"model": model, "model_config": model_config,
              "data": {"name": "fashion-mnist", "spec": "fashion-mnist"},
              "train": {"epochs": max(epochs, 1), "batch_size": 128, "lr": 0.001, "seed": 1},
              "versions": {"genlab": "0.1.0", "torch": "2.5.0", "python": "3.11.2"},
              "command": f"genlab train {model} --data fashion-mnist --epochs {epochs}",
              "created": "2026-11-25T10:00:00", **config_overrides}
    (run / "config.json").write_text(json.dumps(config))
    lines = [json.dumps(row) for row in epoch_metrics(epochs, parts)]
    (run / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    for epoch in range(1, epochs + 1):
        (run / "images" / f"recon_epoch{epoch:03d}.png").write_bytes(png_bytes(242, 62, epoch))
        if samples:
            (run / "images" / f"samples_epoch{epoch:03d}.png").write_bytes(png_bytes(242, 242, 100 + epoch))
    return run


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def external_refs(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""", page, re.IGNORECASE)


def summary(page: str) -> str:
    return re.search(r'<p class="summary">(.*?)</p>', page).group(1)


def img_sources(page: str) -> list[str]:
    return re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', page)


def test_report_is_self_contained_and_every_image_is_a_valid_png(tmp_path):
    run = make_run(tmp_path)
    (run / "images" / "traversal.png").write_bytes(png_bytes(300, 30, 7))
    path = write_report(run)
    assert path == run / "report.html" and path.is_file()
    page = path.read_text(encoding="utf-8")
    assert external_refs(page) == []
    assert "url(" not in page and "@import" not in page
    sources = img_sources(page)
    assert len(sources) == 1 + 1 + 1 + 3 + 1  # curves, latest samples, samples over epochs, 3 recon grids, a figure
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1], validate=True))) as image:
            image.verify()
    assert "image-rendering: pixelated" in page
    # beside the page, only the writer lock it was written under (genlab.runs.guard), left empty
    assert sorted(p.name for p in run.iterdir()) == [".lock", "config.json", "images", "metrics.jsonl", "report.html"]
    assert (run / ".lock").read_bytes() == b""


def test_report_shows_curves_latest_samples_every_recon_epoch_and_figures(tmp_path):
    run = make_run(tmp_path)
    (run / "images" / "traversal.png").write_bytes(png_bytes(300, 30, 7))
    page = write_report(run).read_text(encoding="utf-8")
    assert 'alt="loss curves"' in page
    for epoch in (1, 2, 3):
        assert data_uri((run / "images" / f"recon_epoch{epoch:03d}.png").read_bytes()) in page
        assert f"epoch {epoch}</div>" in page
    assert data_uri((run / "images" / "samples_epoch003.png").read_bytes()) in page
    assert data_uri((run / "images" / "samples_epoch001.png").read_bytes()) not in page
    assert "<figcaption>traversal.png</figcaption>" in page
    assert "vae on fashion-mnist" in page and "run-001" in page


def test_summary_reproduce_and_config_table(tmp_path):
    page = write_report(make_run(tmp_path)).read_text(encoding="utf-8")
    line = summary(page)
    assert "Epoch 3 of 3 (step 1,407)" in line and "s per epoch on average" in line
    assert re.search(r"train loss [\d.]+ \(rec [\d.]+, kl [\d.]+\)", line)
    assert re.search(r"test loss [\d.]+ \(rec [\d.]+, kl [\d.]+\)", line)
    assert "genlab train vae --data fashion-mnist --epochs 3" in page
    assert "seed 1" in page
    for key, value in [("train.lr", "0.001"), ("model_config.hidden", "[64, 32]"),
                       ("data.name", "fashion-mnist"), ("versions.torch", "2.5.0")]:
        assert f"<td>{key}</td><td>{value}</td>" in page


def test_config_text_is_escaped(tmp_path):
    run = make_run(tmp_path, command="genlab train vae <script>alert(1)</script>",
                   data={"spec": "shapes", "name": '<img src="http://evil.example/x.png">'})
    page = write_report(run).read_text(encoding="utf-8")
    assert "<script>" not in page and external_refs(page) == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=&quot;http://evil.example/x.png&quot;&gt;" in page


def test_autoencoder_run_without_kl_or_samples(tmp_path):
    run = make_run(tmp_path, model="ae", parts=AE_PARTS, samples=False)
    page = write_report(run).read_text(encoding="utf-8")
    assert "train loss" in summary(page) and "kl" not in summary(page)
    assert "<h2>Samples</h2>" not in page
    assert len(img_sources(page)) == 1 + 3


def test_many_epochs_show_an_even_subset_with_first_and_last(tmp_path):
    run = make_run(tmp_path, epochs=20)
    page = write_report(run).read_text(encoding="utf-8")
    shown = [int(n) for n in re.findall(r'<div class="epoch">epoch (\d+)</div>', page)]
    assert len(shown) == 12 and shown[0] == 1 and shown[-1] == 20 and shown == sorted(set(shown))
    assert "Showing 12 of 20 epochs" in page


def test_run_with_no_epochs_yet_still_renders(tmp_path):
    run = make_run(tmp_path, epochs=0)
    page = write_report(run).read_text(encoding="utf-8")
    assert "no completed epochs yet" in page
    (run / "metrics.jsonl").unlink()
    assert "no completed epochs yet" in write_report(run).read_text(encoding="utf-8")


def test_missing_or_corrupt_config_raises_run_error(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        write_report(tmp_path / "nowhere")
    with pytest.raises(RunError, match="not a genlab run directory: config.json is missing"):
        write_report(tmp_path)
    (tmp_path / "config.json").write_text('{"model": "vae",')
    with pytest.raises(RunError, match="config.json"):
        write_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_read_metrics_tolerates_missing_file_and_names_a_corrupt_line(tmp_path):
    assert read_metrics(tmp_path) == []
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n\n{"epoch": 2, "train": \n')
    with pytest.raises(RunError, match=r"metrics\.jsonl line 3"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n\n[2]\n')
    with pytest.raises(RunError, match=r"line 3 is not a JSON object"):
        read_metrics(tmp_path)


def test_loss_curves_png_has_a_panel_per_part():
    vae_png, ae_png = (loss_curves_png(epoch_metrics(3, parts)) for parts in (VAE_PARTS, AE_PARTS))
    with Image.open(io.BytesIO(vae_png)) as vae, Image.open(io.BytesIO(ae_png)) as ae:
        assert vae.format == ae.format == "PNG" and vae.height == ae.height
        assert vae.width / ae.width == pytest.approx(3 / 2, rel=0.02)  # panels side by side
        ink = np.asarray(vae.convert("L")) < 200
    assert len(vae_png) > 10_000
    thirds = np.array_split(ink, 3, axis=1)
    assert all(third.mean() > 0.01 for third in thirds)  # every panel has something drawn
    with Image.open(io.BytesIO(loss_curves_png([]))) as empty:
        assert empty.format == "PNG"


@pytest.mark.parametrize("model, explorable", [("vae", True), ("ae", True), ("dcgan", True),
                                               ("classifier", False)])
def test_the_explorer_is_offered_for_models_with_a_latent_space(tmp_path, model, explorable):
    page = (write_report(make_run(tmp_path, model=model))).read_text()
    assert ("<h2>Explore</h2>" in page) == explorable


def test_a_run_of_a_model_not_installed_is_one_clear_error(tmp_path):
    with pytest.raises(RunError, match="'no-such-model', which is not installed here"):
        write_report(make_run(tmp_path, model="no-such-model"))


def image_with_alt(page: str, alt: str) -> Image.Image:
    source = re.search(rf'<img src="([^"]*)" alt="{re.escape(alt)}"', page).group(1)
    return Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))


def test_samples_over_epochs_show_the_first_sample_row_of_each_epoch_labelled(tmp_path):
    page = write_report(make_run(tmp_path, epochs=4)).read_text(encoding="utf-8")
    with image_with_alt(page, "samples over epochs") as strips:
        gray = np.asarray(strips.convert("L"))
    assert strips.width >= 600  # the 242-pixel rows enlarged to a readable width
    zoom = 600 // 240 + 1
    assert gray.shape[0] > 4 * (32 * zoom)  # four rows of 30-pixel samples (with padding), and a title
    label_margin = gray[:, :40]
    assert (label_margin < 128).sum() > 200  # "epoch 1" .. "epoch 4" drawn left of the rows
    many = write_report(make_run(tmp_path / "many", epochs=20)).read_text(encoding="utf-8")
    assert "(12 of 20 epochs, evenly spaced)" in many


def gan_run(root, d_real: float, d_fake: float):
    run = make_run(root, model="dcgan", parts=("loss", "d_loss", "g_loss", "d_real", "d_fake"))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        for split in ("train", "test"):
            row[split].update(d_real=d_real, d_fake=d_fake)
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run


def test_a_gan_report_plots_d_outputs_and_headlines_them_not_the_summed_loss(tmp_path):
    page = write_report(gan_run(tmp_path, 0.7, 0.3)).read_text(encoding="utf-8")
    line = summary(page)
    assert "train D(x) 0.7, D(G(z)) 0.3, D loss" in line and "G loss" in line and "train loss" not in line
    assert "<h2>Discriminator outputs</h2>" in page and 'class="warn"' not in page
    with image_with_alt(page, "discriminator outputs D(x) and D(G(z))") as curves:
        assert curves.width > 600
    with image_with_alt(page, "loss curves") as losses:  # two panels, d_loss and g_loss: no summed "loss"
        one_panel = Image.open(io.BytesIO(loss_curves_png(epoch_metrics(3, ("loss",)))))
        assert losses.width / one_panel.width == pytest.approx(2, rel=0.05)


def test_a_gan_report_explains_its_eval_mode_test_figures_where_it_shows_them(tmp_path):
    page = write_report(gan_run(tmp_path, 0.7, 0.3)).read_text(encoding="utf-8")
    line = summary(page)
    assert "test (D in evaluation mode, see Discriminator outputs) D(x) 0.7" in line, line
    gan_section = page[page.index("<h2>Discriminator outputs</h2>"):page.index("<h2>Samples</h2>")]
    assert "running statistics" in gan_section and "Dashed" in gan_section
    curves_section = page[page.index("<h2>Loss curves</h2>"):page.index("<h2>Discriminator outputs</h2>")]
    assert "running statistics" in curves_section
    vae = write_report(make_run(tmp_path / "vae")).read_text(encoding="utf-8")
    assert "running statistics" not in vae and "evaluation mode" not in summary(vae)


@pytest.mark.parametrize("d_real, d_fake, expected", [
    (0.99, 0.01, "discriminator wins outright"), (0.02, 0.01, "discriminator has collapsed"),
    (0.97, 0.96, "discriminator has collapsed"), (0.7, 0.3, None), (0.5, 0.49, None)])
def test_gan_warnings_name_a_collapsed_discriminator_or_generator(tmp_path, d_real, d_fake, expected):
    warning = gan_warning({"d_real": d_real, "d_fake": d_fake})
    assert (warning is None) if expected is None else (expected in warning)
    if expected:
        page = write_report(gan_run(tmp_path, d_real, d_fake)).read_text(encoding="utf-8")
        assert re.search(rf'<p class="warn">The {expected}', page)


def test_the_config_table_leaves_out_options_that_do_not_apply(tmp_path):
    page = write_report(make_run(tmp_path)).read_text(encoding="utf-8")  # an MLP vae
    assert "<td>model_config.hidden</td>" in page and "<td>model_config.conv_channels</td>" not in page
    assert "does not use are left out: conv_activation, conv_channels, conv_dense, conv_padding, decoder_variance, gaussian_std, kernel_size" in page
    conv = write_report(make_run(tmp_path / "conv", model_config={"arch": "conv"})).read_text(encoding="utf-8")
    assert "<td>model_config.conv_channels</td>" in conv and "<td>model_config.hidden</td>" not in conv


def test_the_page_template_is_found_and_filled():
    assert page_template().get_identifiers() == ["title", "body"]
    page = fill_page("vae · <shapes> · run-001", "<p>the body</p>")
    assert page.startswith("<!doctype html>") and "<title>vae · &lt;shapes&gt; · run-001</title>" in page
    assert "<main><p>the body</p></main>" in page and "<style>" in page and "$" not in page


def test_the_template_ships_with_the_package_and_names_no_run_file():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = pyproject["tool"]["setuptools"]["package-data"]["genlab"]
    assert any(fnmatch(f"report/{TEMPLATE}", pattern) for pattern in shipped), shipped
    names = (layout.CONFIG, layout.WEIGHTS, layout.BEST_WEIGHTS, layout.STATE, layout.METRICS, layout.EVALUATION,
             layout.REPORT, layout.TENSORBOARD)
    assert [name for name in names if name in page_template().template] == []
