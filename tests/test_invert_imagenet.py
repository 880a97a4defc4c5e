"""Inversion on EfficientNet-Lite: the robust recipe's pieces, sample photos, class names, and the commands'
defaults and bad input (one line, exit 2) -- each run is a few steps on small images."""
from __future__ import annotations

import pytest
import torch
from cli_helpers import fails
from PIL import Image
from torch import nn

from genlab.cli import main
from genlab.errors import ConfigError
from genlab.invert import measured, robust
from genlab.invert.efficientnet import installed_weights
from genlab.invert.networks import Network, load_network


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lite0() -> Network:
    return load_network("efficientnet-lite0")


def test_a_fourier_image_starts_grey_and_its_spectrum_is_one_over_f() -> None:
    image = robust.FourierImage.noise(2, 24, 30, seed=1)
    x = image.images()
    assert x.shape == (2, 3, 24, 30) and 0 < x.min() and x.max() < 1 and (x - 0.5).abs().max() < 0.2
    scale = robust.frequency_scale(24, 30)
    assert scale.shape == (24, 16) and scale[0, 0] == scale.max() and scale[0, 1] == pytest.approx(scale[0, 2] * 2)
    x.sum().backward()
    assert image.spectrum.grad is not None and image.spectrum.grad.abs().sum() > 0


def test_random_views_without_moves_are_the_images() -> None:
    images = torch.rand(3, 3, 16, 16)
    still = robust.Transforms(shift=0.0, scale=(1.0, 1.0), degrees=0.0)
    torch.testing.assert_close(robust.random_views(images, still, torch.Generator()), images, atol=1e-5, rtol=0)
    moved = robust.random_views(images, robust.Transforms(), torch.Generator().manual_seed(0))
    assert moved.shape == images.shape and not torch.allclose(moved, images, atol=1e-2)


def test_the_robust_recipe_raises_each_target_logit() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 3)).eval().requires_grad_(False)
    start = robust.FourierImage.noise(3, 16, 16).images()
    x = robust.robust_class_visualization(net, [0, 1, 2], (16, 16), steps=20, lr=0.1)
    assert (net(x).diagonal() > net(start).diagonal()).all()
    with pytest.raises(ConfigError, match="steps"):
        robust.robust_class_visualization(net, [0], (16, 16), steps=0)


def test_classes_by_name_or_number_with_suggestions(lite0) -> None:
    assert lite0.class_index("tarantula") == lite0.class_index("76") == 76
    assert lite0.class_index("Garden_Spider") == 74
    with pytest.raises(ConfigError, match=r"closest: tarantula \(76\)"):
        lite0.class_index("tarantla")
    with pytest.raises(ConfigError, match="out of range"):
        lite0.class_index(1000)


def test_read_photo_converts_and_scales_down_with_notes(tmp_path) -> None:
    Image.new("RGBA", (300, 200), (255, 0, 0, 128)).save(tmp_path / "rgba.png")
    photo = measured.read_photo(tmp_path / "rgba.png", 3, longest=150)
    assert photo.image.shape == (1, 3, 100, 150)
    assert photo.notes == ("rgba.png: RGBA converted to RGB", "rgba.png: 300x200 scaled down to 150x100 "
                                                               "(longest side 150)")
    gray = measured.read_photo("brick", 3)
    assert gray.image.shape == (1, 3, 512, 512) and "L converted to RGB" in gray.notes[0]


def test_cli_class_by_name_writes_a_captioned_grid(tmp_path, capsys) -> None:
    out = tmp_path / "spider.png"
    assert main(["invert", "class", "--class", "tarantula", "967", "--steps", "2", "--size", "32",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert " 76 tarantula" in printed and " 967 espresso" in printed and " -> " in printed
    width, height = Image.open(out).size
    assert width > 2 * 32 and height > 32 + 14  # two pictures with a caption under each


def test_cli_dream_and_style_on_sample_photos(tmp_path, capsys) -> None:
    out = tmp_path / "dream.png"
    assert main(["invert", "dream", "--photo", "chelsea", "--size", "48", "--steps", "2", "--octaves", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "chelsea.png: 451x300 scaled down to 48x32" in printed and "blocks.10.project: activation norm" in printed
    assert Image.open(out).size == (2 * (48 * 7 + 2) + 2, 44 + 32 * 7 + 4)  # both pictures 7 times, labelled
    out = tmp_path / "style.png"
    assert main(["invert", "style", "--photo", "coffee", "--style-photo", "gravel", "--size", "40", "--steps", "2",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "gravel.png: L converted to RGB" in printed and "the style image itself" in printed
    assert Image.open(out).size == (3 * (40 * 5 + 2) + 2, 44 + 27 * 5 + 4)  # content, style, result: 40x27, 5 times


def test_style_transfer_paints_no_stripe_along_the_top(lite0) -> None:
    """A style image whose height is padded otherwise than the content's (TensorFlow's "same" padding puts a stride-2
    layer's odd row after) had the top rows of the result painted orange: the style's Grams asked for border
    features that the result's own padding cannot give. Taken at the content's size, the style asks for none."""
    content = measured.read_photo("chelsea", 3, 160).image  # 106 x 160
    style = measured.read_photo("hubble_deep_field", 3, 160).image  # 140 x 160
    result = measured.stylise(lite0, content, style, steps=40).result.image[0]
    top, inside = result[:, :3].mean((1, 2)), result[:, 6:-6, 6:-6].mean((1, 2))  # mean RGB of the top rows, inside
    assert (top - inside).abs().sum() < 0.12, (top, inside)  # chelsea's own top rows differ by 0.118


def test_cli_bad_imagenet_input_ends_in_one_line(tmp_path, capsys) -> None:
    fails(["invert", "class", "--class", "tarantla"], capsys, "closest: tarantula (76)")
    fails(["invert", "class"], capsys, "choose some by name or number")
    fails(["invert", "dream", "--photo", "chelsey"], capsys, "unknown photo 'chelsey'", "chelsea")
    fails(["invert", "dream", "x.png", "--photo", "chelsea"], capsys, "not both")
    fails(["invert", "style", "--photo", "chelsea"], capsys, "--style-photo NAME, not neither")
    fails(["invert", "dream", "--photo", "chelsea", "--size", "5000"], capsys, "over the limit of 1024")
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    fails(["invert", "dream", str(text)], capsys, "cannot read image")
    lite1 = str(installed_weights("efficientnet-lite1"))
    fails(["invert", "dream", "--photo", "chelsea", "--weights", lite1], capsys, "does not fit efficientnet-lite0",
          "unexpected 90: blocks.16")


def test_captioned_grid_writes_the_lines_under_each_picture() -> None:
    from genlab.images import captioned_grid
    grid = captioned_grid(torch.ones(3, 3, 20, 20), [["76 tarantula", "p 0.999"], ["1 goldfish"], ["x"]], nrow=2)
    assert grid.dtype == torch.uint8 and grid.shape[0] == 3
    assert grid.shape[1] > 2 * (20 + 2 * 14)  # two rows, each a picture and two caption lines
    below = grid[:, 6 + 20:6 + 20 + 2 * 17, :]
    assert (below < 128).any() and (grid[:, :6 + 20] > 128).all()  # dark text under the white pictures only
    with pytest.raises(ValueError, match="one caption list per image"):
        captioned_grid(torch.ones(2, 3, 8, 8), [["a"]])
