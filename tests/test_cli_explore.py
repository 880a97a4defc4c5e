"""`genlab explore` and `genlab evaluate` end to end on tiny `shapes` runs, and every bad input in one line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_helpers import fails
from PIL import Image

from genlab.cli import main
from genlab.images import MIN_FIGURE_WIDTH

TINY = ["--data", "shapes", "--epochs", "1", "--max-steps", "3"]
ZOOMED_TILE = 2 * 28 + 2  # a 28-pixel image at --zoom 2 and the grid's 2-pixel padding


@pytest.fixture(autouse=True)
def _one_thread(tmp_path, monkeypatch) -> None:
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Tiny trained runs: a 3-d VAE, a plain AE, a DCGAN and a classifier (3 steps each)."""
    root = tmp_path_factory.mktemp("runs")
    extra = {"vae": ["--latent-dim", "3", "--hidden", "32"], "ae": ["--hidden", "32"], "dcgan": ["--dim", "8"],
             "classifier": ["--conv-channels", "8"]}
    for name, flags in extra.items():
        assert main(["train", name, *TINY, *flags, "--out", str(root / name)]) == 0
    return {name: root / name for name in extra}


def picture(path: Path) -> tuple[tuple[int, int], str]:
    """(width, height) and the caption a PNG carries."""
    with Image.open(path) as image:
        return image.size, image.text.get("Description", "")


def test_every_picture_of_a_vae(runs, capsys) -> None:
    vae, explore = runs["vae"], runs["vae"] / "images" / "explore"
    assert main(["explore", "manifold", str(vae), "-n", "5", "--dims", "0", "2", "--index", "1"]) == 0
    size, caption = picture(explore / "manifold.png")
    assert size[0] >= MIN_FIGURE_WIDTH and "dim 0 across and dim 2 down" in caption
    assert main(["explore", "neighbourhood", str(vae), "-n", "3", "--std", "2"]) == 0
    assert "+/- 2 posterior standard deviations" in picture(explore / "neighbourhood.png")[1]
    assert main(["explore", "traverse", str(vae), "-n", "4", "--zoom", "2"]) == 0
    assert main(["explore", "traverse", str(vae), "-n", "4", "--zoom", "2", "--dims", "1", "--out", "one.png"]) == 0
    (width, height), (one_width, one_height) = picture(explore / "traversal.png")[0], picture(Path("one.png"))[0]
    assert width == one_width and height - one_height == 2 * ZOOMED_TILE  # one row per latent dim
    for n in (3, 5):
        assert main(["explore", "interpolate", str(vae), "--indices", "0", "1", "2", "3", "-n", str(n), "--spherical",
                     "--zoom", "2", "--out", f"i{n}.png"]) == 0
    five, three = picture(Path("i5.png"))[0], picture(Path("i3.png"))[0]
    assert five[0] - three[0] == 2 * ZOOMED_TILE and five[1] == three[1]  # a column per step, ends added
    assert main(["explore", "interpolate", str(vae), "--indices", "0", "1", "2", "3", "-n", "5", "--spherical"]) == 0
    assert picture(explore / "interpolation-slerp.png")[0][0] >= MIN_FIGURE_WIDTH
    assert main(["explore", "attribute", str(vae), "--from-class", "Circle", "--to-class", "3", "-n", "2",
                 "--steps", "3"]) == 0
    size, caption = picture(explore / "attribute-circle-to-cross.png")
    assert size[0] >= MIN_FIGURE_WIDTH and "circle -> cross" in caption
    assert main(["explore", "scatter", str(vae), "--test-images", "300"]) == 0
    assert "300 test posterior means" in picture(explore / "scatter.png")[1]
    assert capsys.readouterr().out.count("explore/") == 6
    assert main(["report", str(vae)]) == 0
    assert "Attribute vector circle -&gt; cross" in (vae / "report.html").read_text()


def test_a_dcgan_explores_from_seeded_codes(runs, tmp_path) -> None:
    dcgan = str(runs["dcgan"])
    assert main(["explore", "interpolate", dcgan, "--pairs", "2", "-n", "4", "--out", "i.png"]) == 0
    assert picture(tmp_path / "i.png")[0][0] >= MIN_FIGURE_WIDTH
    assert main(["explore", "neighbourhood", dcgan, "-n", "3", "--dims", "5", "99", "--out", "n.png"]) == 0
    assert "random code (seed 0)" in picture(tmp_path / "n.png")[1]
    assert main(["explore", "manifold", dcgan, "-n", "3", "--out", "m.png"]) == 0
    for dims in (["0", "1"], ["0", "1", "2"]):
        assert main(["explore", "traverse", dcgan, "--dims", *dims, "-n", "3", "--zoom", "2",
                     "--out", f"t{len(dims)}.png"]) == 0
    assert picture(tmp_path / "t3.png")[0][1] - picture(tmp_path / "t2.png")[0][1] == ZOOMED_TILE


def test_evaluate_a_vae_writes_json_and_the_report_table(runs, capsys) -> None:
    vae = runs["vae"]
    assert main(["evaluate", str(vae), "-k", "20", "--test-images", "60", "--nll-images", "30",
                 "--probe-train", "300", "--fid-samples", "50", "--classifier", str(runs["classifier"])]) == 0
    out = capsys.readouterr().out
    assert "IWAE NLL, k=20" in out and "linear probe accuracy" in out and "evaluation.json" in out
    record = json.loads((vae / "evaluation.json").read_text())
    assert record["iwae_nll"]["images"] == 30 and record["test_images"] == 60 and not record["binarized_test"]
    assert record["iwae_nll"]["nats"] <= record["iwae_nll"]["neg_elbo_same_images"] + 5
    assert 0 <= record["probe"]["latent"] <= 1 and record["frechet"]["samples"] == 50
    assert "<h2>Evaluation</h2>" in (vae / "report.html").read_text()


def test_evaluate_a_binarized_dcgan_says_so(tmp_path, runs, capsys) -> None:
    out = tmp_path / "gan"
    assert main(["train", "dcgan", *TINY, "--dim", "8", "--binarize", "dynamic", "--out", str(out)]) == 0
    assert main(["evaluate", str(out), "--test-images", "40", "--fid-samples", "40",
                 "--classifier", str(runs["classifier"])]) == 0
    text = capsys.readouterr().out
    assert "binarize_fixed" in text and "Fréchet distance" in text and "IWAE" not in text
    assert "samples_vs_binarized_test" in json.loads((out / "evaluation.json").read_text())["frechet"]


def test_evaluate_without_fid_needs_no_classifier(runs) -> None:
    assert main(["evaluate", str(runs["ae"]), "--test-images", "30", "--probe-train", "100", "--skip-fid"]) == 0
    record = json.loads((runs["ae"] / "evaluation.json").read_text())
    assert "reconstruction_mse" in record and "neg_elbo" not in record and "frechet" not in record


@pytest.mark.parametrize("command", [["explore"], ["explore", "manifold"], ["explore", "neighbourhood"],
                                     ["explore", "traverse"], ["explore", "interpolate"], ["explore", "attribute"],
                                     ["explore", "scatter"], ["evaluate"]])
def test_help(command, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("usage: genlab")


# --- bad input: one line, exit 2, no traceback ---------------------------------------------------

def test_pictures_of_a_model_without_a_latent_space(runs, capsys) -> None:
    fails(["explore", "manifold", str(runs["classifier"])], capsys, "no latent space", "VAE")
    fails(["evaluate", str(runs["classifier"]), "--skip-fid"], capsys, "nothing to evaluate")


def test_pictures_that_need_an_encoder_or_a_posterior(runs, capsys) -> None:
    fails(["explore", "scatter", str(runs["dcgan"])], capsys, "no encoder")
    fails(["explore", "attribute", str(runs["dcgan"]), "--from-class", "0", "--to-class", "1"], capsys, "no encoder")
    fails(["explore", "manifold", str(runs["dcgan"]), "--index", "0"], capsys, "no encoder")
    fails(["explore", "neighbourhood", str(runs["ae"])], capsys, "plain autoencoder")
    fails(["explore", "manifold", str(runs["ae"])], capsys, "--range")


@pytest.mark.parametrize("argv, needles", [
    (["explore", "manifold", "VAE", "--dims", "0", "3"], ("latent dimension 3 is out of range", "0..2")),
    (["explore", "neighbourhood", "VAE", "--dims", "1", "1"], ("must differ",)),
    (["explore", "traverse", "VAE", "--dims", "7"], ("out of range",)),
    (["explore", "attribute", "VAE", "--from-class", "sneaker", "--to-class", "circle"], ("unknown class 'sneaker'",
                                                                                          "'triangle'")),
    (["explore", "attribute", "VAE", "--from-class", "0", "--to-class", "9"], ("unknown class '9'",)),
    (["explore", "attribute", "VAE"], ("needs --attribute NAME",)),
    (["explore", "attribute", "VAE", "--from-class", "0"], ("--from-class and --to-class together",)),
    (["explore", "attribute", "VAE", "--attribute", "Smiling", "--to-class", "1"], ("needs --attribute NAME",)),
    (["explore", "attribute", "VAE", "--attribute", "Smiling"], ("shapes has no attribute 'Smiling'",
                                                                 "faces, celeba:PATH")),
    (["explore", "interpolate", "VAE", "--indices", "0", "1", "2"], ("pairs",)),
    (["explore", "neighbourhood", "VAE", "--index", "99999"], ("test image index 99999 is out of range",)),
    (["explore", "manifold", "VAE", "-n", "1"], ("-n must be at least 2",)),
    (["evaluate", "VAE", "-k", "0"], ("k must be >= 1",)),
    (["evaluate", "VAE", "--fid-samples", "1"], ("--fid-samples must be >= 2",)),
    (["explore", "scatter", "no/such/run"], ("no/such/run",)),
])
def test_bad_input_is_one_line(argv, needles, runs, capsys) -> None:
    fails([str(runs["vae"]) if a == "VAE" else a for a in argv], capsys, *needles)


def test_a_classifier_run_of_another_kind_is_refused(runs, capsys) -> None:
    fails(["evaluate", str(runs["vae"]), "--test-images", "20", "--probe-train", "50", "--classifier",
           str(runs["ae"])], capsys, "not a classifier")


def test_an_attribute_vector_by_name_on_faces(tmp_path, capsys) -> None:
    run = tmp_path / "faces-vae"
    assert main(["train", "conv-vae", "--data", "faces:300", "--epochs", "1", "--max-steps", "3", "--out",
                 str(run)]) == 0
    assert main(["explore", "attribute", str(run), "--attribute", "Smiling", "-n", "3", "--steps", "4"]) == 0
    size, caption = picture(run / "images" / "explore" / "attribute-smiling.png")
    assert size[0] >= MIN_FIGURE_WIDTH
    assert "Attribute vector Smiling (the mean code of" in caption and "training images with Smiling" in caption
    assert "each row a test image without Smiling" in caption and "s = 0, 0.5, 1, 1.5" in caption
    assert main(["report", str(run)]) == 0
    assert "Attribute vector Smiling" in (run / "report.html").read_text()
    fails(["explore", "attribute", str(run), "--attribute", "smiling"], capsys, "no attribute 'smiling'",
          "Smiling, Eyeglasses")
