"""CNN inversion on tiny random CNNs: each objective rises, jitter is undone exactly, pixels stay clipped."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import fails
from PIL import Image
from torch import nn
from torchvision import (
    models,  # in the test extra: the VGG layout check must run, not skip
)

from genlab.cli import build_parser, main
from genlab.cli.common import given
from genlab.data.imagenet import CLASSES as IMAGENET_CLASSES
from genlab.errors import ConfigError, RunError
from genlab.invert import ascent
from genlab.invert.actions import chosen_classes, class_settings, default_jitter, run_inversion
from genlab.invert.networks import (
    Defaults,
    Network,
    find_layer,
    layer_table,
    load_network,
    random_vgg,
    run_classes,
)
from genlab.invert.style import covering, gram, style_targets, style_transfer, total_variation
from genlab.invert.vgg import VGG, VGG_LAYOUTS
from genlab.options import WEIGHT_FILES, ClassOptions, DreamOptions, StyleOptions

DEFAULTS = Defaults("2", ("2",), ("0", "2"))


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_classifier(channels: int = 1, n_classes: int = 3, circular: bool = False) -> nn.Sequential:
    """conv-relu-conv-relu, global average pool, linear: shift-invariant when the padding is circular."""
    torch.manual_seed(0)
    mode = "circular" if circular else "zeros"
    return nn.Sequential(nn.Conv2d(channels, 6, 3, padding=1, padding_mode=mode), nn.ReLU(),
                         nn.Conv2d(6, 8, 3, padding=1, padding_mode=mode), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, n_classes)).eval().requires_grad_(False)


def tiny_network(channels: int = 1, circular: bool = False) -> Network:
    net = tiny_classifier(channels, circular=circular)
    return Network("tiny", net, net, channels, None, DEFAULTS, ("a", "b", "c"), preview_size=16)


def test_roll_then_unroll_gives_back_the_same_tensor() -> None:
    x = torch.rand(2, 3, 9, 7)
    rolled = ascent.roll(x, (3, -2))
    assert not torch.equal(rolled, x)
    assert torch.equal(ascent.unroll(rolled, (3, -2)), x)
    assert torch.equal(rolled[..., 3, 0], x[..., 0, 2])


def test_jitter_leaves_the_image_where_it_was() -> None:
    """With a shift-invariant net, ascent with jitter equals ascent without: every roll was undone."""
    network = tiny_network(circular=True)
    start = ascent.noise_images(3, 1, (12, 12), seed=1, spread=0.2)
    common = dict(steps=15, lr=0.05, blur_every=0, seed=2)
    still = ascent.class_visualization(network.logits, [0, 1, 2], start, jitter=0, **common)
    jittered = ascent.class_visualization(network.logits, [0, 1, 2], start, jitter=4, **common)
    assert not torch.equal(still, start)
    torch.testing.assert_close(jittered, still, atol=1e-4, rtol=0)
    dream = network.activation("2")
    torch.testing.assert_close(ascent.deep_dream(dream, start, steps=5, octaves=1, jitter=3),
                               ascent.deep_dream(dream, start, steps=5, octaves=1, jitter=0), atol=1e-4, rtol=0)


def test_class_visualization_raises_each_target_score_and_clips() -> None:
    network = tiny_network()
    start = ascent.noise_images(3, 1, (16, 16), seed=0, mean=0.5, spread=0.1)
    x = ascent.class_visualization(network.logits, [0, 1, 2], start, steps=30, lr=0.1, l2=0.0)
    before, after = network.logits(start).diagonal(), network.logits(x).diagonal()
    assert (after > before).all(), (before, after)
    p0, p1 = (ascent.class_probabilities(network.logits, y, [0, 1, 2]) for y in (start, x))
    assert (p1 > p0).all()
    assert x.min() >= 0 and x.max() <= 1 and ((x == 0) | (x == 1)).any()  # clipping was needed, and held
    free = ascent.class_visualization(network.logits, [0, 1, 2], start, steps=30, lr=0.1, l2=0.0, clip=False)
    assert free.min() < 0 or free.max() > 1


def test_l2_pulls_towards_zero_and_blur_smooths() -> None:
    network = tiny_network()
    start = ascent.noise_images(1, 1, (16, 16), seed=0)
    weak = ascent.class_visualization(network.logits, [0], start, steps=20, l2=0.0, blur_every=0)
    strong = ascent.class_visualization(network.logits, [0], start, steps=20, l2=10.0, blur_every=0)
    assert strong.pow(2).sum() < weak.pow(2).sum()
    noise = torch.rand(1, 2, 20, 20)
    blurred = ascent.gaussian_blur(noise, 1.0)
    assert blurred.shape == noise.shape and blurred.std() < 0.5 * noise.std()
    torch.testing.assert_close(ascent.gaussian_blur(torch.full((1, 1, 6, 6), 0.3), 2.0), torch.full((1, 1, 6, 6), 0.3))


def test_the_step_falls_along_a_half_cosine_and_the_blur_stops_at_blur_until() -> None:
    assert [ascent.cosine_decay(1.0, 0.1, step, 5) for step in (0, 2, 4)] == pytest.approx([1.0, 0.55, 0.1])
    network = tiny_network()
    start = ascent.noise_images(1, 1, (16, 16), seed=0)
    frames = [start]
    ascent.class_visualization(network.logits, [0], start, steps=6, lr=0.05, final_lr_fraction=0.1, jitter=0,
                               blur_every=0, clip=False, on_step=lambda step, x: frames.append(x))
    moved = [(b - a).pow(2).mean().sqrt().item() for a, b in zip(frames, frames[1:])]  # RMS of each step
    assert moved == pytest.approx([ascent.cosine_decay(0.05, 0.005, step, 6) for step in range(6)], rel=1e-4)
    common = dict(steps=12, lr=0.05, jitter=0, blur_every=2)
    unblurred = ascent.class_visualization(network.logits, [0], start, **{**common, "blur_every": 0})
    torch.testing.assert_close(ascent.class_visualization(network.logits, [0], start, blur_until=0.0, **common),
                               unblurred)
    assert not torch.allclose(ascent.class_visualization(network.logits, [0], start, blur_until=0.5, **common),
                              unblurred)


def test_deep_dream_raises_the_layer_norm() -> None:
    network = tiny_network(channels=3)
    image = ascent.noise_images(1, 3, (24, 20), seed=3, spread=0.2)
    activation = network.activation("2")
    x = ascent.deep_dream(activation, image, steps=10, octaves=2, lr=0.05, jitter=1)
    assert x.shape == image.shape and x.min() >= 0 and x.max() <= 1
    assert ascent.activation_norm(activation, x) > 1.5 * ascent.activation_norm(activation, image)
    assert ascent.octave_sizes(28, 20, 3, 1.4) == [(14, 10), (20, 14), (28, 20)]


def test_gram_and_total_variation_by_hand() -> None:
    f = torch.arange(12.0).view(1, 2, 2, 3)
    flat = f.view(2, 6)
    torch.testing.assert_close(gram(f)[0], flat @ flat.T / 12)
    assert total_variation(torch.zeros(2, 1, 4, 4)).eq(0).all()
    stripes = torch.tensor([0.0, 1.0]).repeat(4).view(1, 1, 1, 8).expand(1, 1, 8, 8)
    torch.testing.assert_close(total_variation(stripes), torch.tensor([1.0]))


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_style_transfer_cuts_the_style_loss(optimizer: str) -> None:
    network = tiny_network(channels=3)
    content = ascent.noise_images(1, 3, (16, 16), seed=4, spread=0.2)
    style = (torch.arange(20.0).view(1, 1, 1, 20) % 4 < 2).float().expand(1, 3, 20, 20).clone()
    result = style_transfer(network.activations, content, style, content_layers=["2"],
                                   style_layers=["0", "2"], steps=25, optimizer=optimizer, style_weight=1e4,
                                   tv_weight=0.0)
    assert len(result.history) == 26 and result.history[0]["content"] == 0
    assert result.history[-1]["style"] < 0.5 * result.history[0]["style"], result.history[-1]
    assert result.image.min() >= 0 and result.image.max() <= 1


def test_the_style_grams_are_taken_at_the_contents_size() -> None:
    """covering keeps the style's aspect: scaled to cover the content's size, then centre-cropped to it."""
    style = torch.arange(40.0).view(1, 1, 8, 5).expand(1, 3, 8, 5)
    cropped = covering(style, (4, 5))
    assert cropped.shape == (1, 3, 4, 5) and torch.equal(cropped, style[..., 2:6, :])
    assert torch.equal(covering(style, (8, 5)), style)
    assert covering(style, (16, 20)).shape == (1, 3, 16, 20)  # scaled up by 4 to cover the width, rows cropped
    network = tiny_network(channels=3)
    seen = []

    def features(x, layers):
        seen.append(tuple(x.shape[-2:]))
        return network.activations(x, layers)
    style_targets(features, torch.rand(1, 3, 12, 10), torch.rand(1, 3, 15, 10), ["2"], ["0"])
    assert seen == [(12, 10), (12, 10)]  # content, then the style at the very same size


def test_bad_numbers_are_config_errors() -> None:
    network = tiny_network()
    start = torch.rand(1, 1, 8, 8)
    for kwargs, needle in (({"steps": 0}, "steps"), ({"lr": -1.0}, "learning rate"), ({"jitter": -1}, "jitter"),
                           ({"blur_sigma": 0.0}, "blur"), ({"final_lr_fraction": 0.0}, "final_lr_fraction"),
                           ({"blur_until": 1.5}, "blur_until")):
        with pytest.raises(ConfigError, match=needle):
            ascent.class_visualization(network.logits, [0], start, **kwargs)
    with pytest.raises(ConfigError, match="octaves"):
        ascent.deep_dream(network.activation("2"), start, octave_scale=1.0)
    with pytest.raises(ConfigError, match="optimizer"):
        style_transfer(network.activations, start, start, content_layers=["2"], style_layers=["0"],
                              optimizer="sgd")


def test_layers_by_name_and_the_forward_stops_early() -> None:
    network = tiny_network()
    calls = []
    network.net[4].register_forward_hook(lambda *args: calls.append(1))
    acts = network.activations(torch.rand(2, 1, 8, 8), ["0", "2"])
    assert acts["2"].shape == (2, 8, 8, 8) and not calls  # the pool after layer 2 never ran
    with pytest.raises(ConfigError, match="did you mean"):
        find_layer(network.net, "2.")
    table = layer_table(network)
    assert ("2", "Conv2d", "(1, 8, 16, 16)") in table


def test_random_vgg_is_seeded_and_named_like_torchvision() -> None:
    with torch.device("meta"):
        shape = VGG(VGG_LAYOUTS["vgg16"], n_classes=None)
    assert [n for n, _ in shape.named_modules()][:3] == ["", "features", "features.0"]
    names = dict(shape.named_modules())
    assert isinstance(names["features.28"], nn.Conv2d) and isinstance(names["features.30"], nn.MaxPool2d)
    small = random_vgg(0).net.features[0].weight
    assert torch.equal(small, random_vgg(0).net.features[0].weight)
    assert not torch.equal(small, random_vgg(1).net.features[0].weight)
    for name, build in (("vgg16", models.vgg16), ("vgg19", models.vgg19)):
        with torch.device("meta"):
            ours, theirs = VGG(VGG_LAYOUTS[name]), build()
        assert {k: v.shape for k, v in ours.state_dict().items()} == \
               {k: v.shape for k, v in theirs.state_dict().items()}
        assert [type(m).__name__ for m in ours.modules()] == [type(m).__name__ for m in theirs.modules()]


@pytest.mark.parametrize("name", sorted(WEIGHT_FILES))
def test_missing_weights_name_the_file_and_the_folder(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(RunError) as error:
        load_network(name)
    message = str(error.value)
    assert WEIGHT_FILES[name] in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "\n" not in message
    with pytest.raises(RunError, match="does not exist"):
        load_network(name, weights=tmp_path / "nothing.pth")


def test_googlenet_without_torchvision_says_how_to_get_it(tmp_path, monkeypatch) -> None:
    from genlab.invert import networks
    weights = tmp_path / WEIGHT_FILES["googlenet"]
    weights.write_bytes(b"")
    monkeypatch.setattr(networks, "torchvision_models", lambda: None)
    with pytest.raises(ConfigError, match="pip install torchvision"):
        load_network("googlenet", weights=weights)


def test_a_damaged_weights_file_is_a_run_error(tmp_path) -> None:
    weights = tmp_path / "vgg16.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, weights)
    with pytest.raises(RunError, match="not a usable vgg16 checkpoint"):
        load_network("vgg16", weights=weights)


# -- the command line ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "clf"
    assert main(["train", "classifier", "--data", "shapes", "--epochs", "1", "--max-steps", "3",
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pictures")
    generator = torch.Generator().manual_seed(0)
    rgb = (torch.rand(30, 40, 3, generator=generator) * 255).to(torch.uint8).numpy()
    Image.fromarray(rgb).save(folder / "noise.jpg")
    stripes = ((torch.arange(36) % 6 < 3).float() * 255).to(torch.uint8).repeat(36, 1).numpy()
    Image.fromarray(stripes).convert("RGB").save(folder / "stripes.png")
    return folder / "noise.jpg", folder / "stripes.png"


def test_cli_class_writes_a_grid_and_prints_probabilities(classifier_run, tmp_path, capsys) -> None:
    out = tmp_path / "classes.png"
    assert main(["invert", "class", str(classifier_run), "--steps", "4", "--zoom", "2", "--save-every", "2",
                 "--no-captions", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "square" in printed and "cross" in printed and " -> " in printed
    assert Image.open(out).size == (4 * 58 + 2, 60)  # four 56-pixel images (zoom 2) with 2-pixel borders
    assert (tmp_path / "classes-0002.png").is_file() and (tmp_path / "classes-0004.png").is_file()


def test_cli_class_names_each_picture_and_is_wide_enough_to_read(classifier_run, tmp_path, capsys) -> None:
    out = tmp_path / "named.png"
    assert main(["invert", "class", str(classifier_run), "--steps", "2", "--classes", "0", "1", "--out", str(out)]) == 0
    pixels = figure_pixels(out)
    zoom = 600 // (2 * 28) + 1  # the smallest whole enlargement that makes two 28-pixel pictures 600 pixels wide
    assert pixels.shape[1] >= 600 and pixels.shape[0] > 28 * zoom + 20  # a caption band under the pictures
    assert (pixels[28 * zoom + 30:] < 128).sum() > 100  # dark caption text: the class names and probabilities
    assert (pixels[:20] < 128).sum() > 50  # a title line


def test_class_labels_are_short_not_the_runs_path(classifier_run, tmp_path, monkeypatch) -> None:
    """Each picture is labelled with its class and p, and the figure titled with the run's folder name: a caption
    holding the run's absolute path made every cell (and the figure) hundreds of pixels wider than its picture."""
    from genlab.invert import actions
    drawn = []

    def grid(pictures, network, *args):
        drawn.append((pictures.captions(), pictures.title(network)))
        return real(pictures, network, *args)
    real = actions.class_pictures_grid
    monkeypatch.setattr(actions, "class_pictures_grid", grid)
    out = tmp_path / "short.png"
    run_inversion(ClassOptions(model=str(classifier_run), classes=("0", "1"), steps=2, out=str(out)))
    (captions, title), = drawn
    assert captions[0][0] == "0 square" and captions[0][1].startswith("p 0.") and len(captions[0]) == 2
    assert title.startswith("clf, seeds recipe, 2 steps: p = the class's probability on clf")
    assert str(classifier_run.parent) not in title
    zoom = 600 // (2 * 28) + 1
    assert Image.open(out).size[0] == 2 * (28 * zoom + 6) + 6 + 4  # cells as wide as the pictures, a 2-pixel frame
    assert load_network(str(classifier_run)).short_name == "clf"
    assert load_network(str(classifier_run) + "/").short_name == "clf"


def test_cifar10_runs_name_their_classes_like_the_other_datasets(tmp_path, monkeypatch) -> None:
    names = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    assert run_classes({"data": {"name": "cifar10", "source": str(folder)}}, 10) == names
    moved = {"name": "cifar10", "source": str(tmp_path / "gone"), "data_dir": str(tmp_path)}
    assert run_classes({"data": moved}, 10) == names  # found again where the data is searched for
    assert run_classes({"data": {"name": "cifar10", "source": str(tmp_path / "gone")}}, 10)[3] == "class 3"
    assert run_classes({"data": {"name": "fashion-mnist"}}, 10)[9] == "Ankle boot"
    assert run_classes({"data": {"name": "shapes"}}, 4) == ("square", "circle", "triangle", "cross")


def test_cli_list_layers(classifier_run, capsys) -> None:
    assert main(["invert", "class", str(classifier_run), "--list-layers"]) == 0
    assert "body.6" in capsys.readouterr().out
    assert main(["invert", "dream", "--model", "vgg-random", "--list-layers"]) == 0
    assert "features.30" in capsys.readouterr().out


def test_the_library_runs_a_command_from_its_options(classifier_run, tmp_path) -> None:
    listing = run_inversion(DreamOptions(model=str(classifier_run), list_layers=True))
    assert listing.path is None and listing.lines[0].startswith(f"layers of {classifier_run} ")
    assert any(line.split()[0] == "body.6" for line in listing.lines[1:])
    out = tmp_path / "one.png"
    done = run_inversion(ClassOptions(model=str(classifier_run), classes=("1",), steps=2, out=str(out)))
    assert done.path == out and out.is_file() and len(done.lines) == 1 and done.lines[0].startswith("   1 ")


def figure_pixels(path: Path) -> torch.Tensor:
    """A written figure as a grey (H, W) uint8 tensor."""
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("L")).copy())


def test_cli_dream_writes_the_input_and_the_dream_side_by_side_labelled(classifier_run, pictures, tmp_path,
                                                                        capsys) -> None:
    noise, _ = pictures
    out = tmp_path / "dream.png"
    assert main(["invert", "dream", str(noise), "--model", str(classifier_run), "--steps", "3",
                 "--out", str(out), "--save-every", "3"]) == 0
    assert "activation norm" in capsys.readouterr().out
    zoom = 600 // (2 * 28) + 1  # two 28-pixel pictures enlarged to a readable width
    assert Image.open(out).mode == "RGB"
    assert Image.open(out).size == (2 * (28 * zoom + 2) + 2, 44 + 28 * zoom + 4)  # a title and a label line above
    pixels = figure_pixels(out)
    assert (pixels[:40] < 128).sum() > 200  # the title and the two column labels above the pictures
    assert Image.open(tmp_path / "dream-0003.png").size == (28, 28)  # the frames stay the bare image
    assert main(["invert", "dream", str(noise), "--model", "vgg-random", "--size", "24", "--steps", "2",
                 "--octaves", "1", "--layer", "features.3", "--zoom", "30", "--out", str(out)]) == 0
    assert Image.open(out).size == (2 * (24 * 30 + 2) + 2, 44 + 18 * 30 + 4)  # --zoom enlarges beyond the default


def test_cli_style_writes_content_style_and_result_labelled(pictures, tmp_path, capsys) -> None:
    noise, stripes = pictures
    out = tmp_path / "style.jpg"
    assert main(["invert", "style", str(noise), str(stripes), "--size", "20", "--steps", "3",
                 "--optimizer", "lbfgs", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "content loss 0 ->" in printed and "style loss" in printed
    assert Image.open(out).format == "JPEG"
    assert Image.open(out).size == (3 * (20 * 10 + 2) + 2, 44 + 15 * 10 + 4)  # three 20x15 pictures, 10 times
    assert (figure_pixels(out)[:40] < 128).sum() > 200  # a title and three labels: content, style, result


def test_cli_bad_inputs_end_in_one_line(classifier_run, pictures, tmp_path, monkeypatch, capsys) -> None:
    noise, stripes = pictures
    run = str(classifier_run)
    fails(["invert", "dream", str(tmp_path / "missing.png"), "--model", run], capsys, "cannot read image")
    fails(["invert", "dream", str(noise), "--model", run, "--layer", "body.66"], capsys, "unknown layer", "body.6")
    fails(["invert", "dream", "--model", run], capsys, "needs an image file or --photo NAME, not neither")
    fails(["invert", "class", run, "--steps", "0"], capsys, "steps must be at least 1")
    fails(["invert", "class", run, "--blur-until", "2"], capsys, "blur_until is the fraction of the steps")
    fails(["invert", "class", run, "--final-lr-fraction", "0"], capsys, "final_lr_fraction is the last step's")
    fails(["invert", "class", run, "--classes", "7"], capsys, "out of range")
    fails(["invert", "class", run, "--zoom", "0"], capsys, "--zoom")
    fails(["invert", "class", run, "--nrow", "0"], capsys, "--nrow")
    fails(["invert", "dream", str(noise), "--model", "vgg-random", "--save-every", "-1"], capsys, "--save-every")
    fails(["invert", "class", run, "--out", "grid.gif"], capsys, "must end in .png")
    fails(["invert", "class", "vgg-random"], capsys, "no trained class scores")
    fails(["invert", "class", "vgg"], capsys, "unknown model 'vgg'")
    fails(["invert", "dream", str(noise), "--model", run, "--octave-scale", "0.5"], capsys, "octave_scale")
    fails(["invert", "style", str(noise), str(stripes), "--size", "4"], capsys, "--size")
    fails(["invert", "dream", str(noise), "--model", "vgg-random", "--size", "8", "--layer", "features.30"], capsys,
          "too small")
    fails(["invert", "style", str(noise), str(stripes), "--model", "vgg-random", "--weights", "x.pth"], capsys,
          "--weights is for")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    fails(["invert", "style", str(noise), str(stripes), "--model", "vgg19"], capsys, WEIGHT_FILES["vgg19"])
    ae = tmp_path / "ae"
    assert main(["train", "ae", "--data", "shapes", "--epochs", "1", "--max-steps", "1", "--out", str(ae)]) == 0
    capsys.readouterr()
    fails(["invert", "class", str(ae)], capsys, "inversion needs a classifier")


@pytest.mark.parametrize("command", [["invert"], ["invert", "class"], ["invert", "dream"], ["invert", "style"]])
def test_cli_help(command, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: genlab invert")
    if len(command) == 2:
        assert "--list-layers" in out and "--save-every" in out and "--weights" in out


@pytest.mark.parametrize("action, options", [("class", ClassOptions), ("dream", DreamOptions), ("style", StyleOptions)])
def test_every_inversion_option_is_a_flag_with_its_fields_help(action: str, options: type, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["invert", action, "--help"])
    out = capsys.readouterr().out
    text, letters = " ".join(out.split()), "".join(out.split())  # argparse may wrap a line inside a hyphenated word
    for field in dataclasses.fields(options):
        name = field.name.replace("_", "-")
        flag = f"--no-{name}" if field.default is True else f"--{name}"  # a switch turns its default around
        assert f"{flag} " in text or f"[{field.name.upper()}]" in text, field.name  # a flag, or a positional
        assert "".join(field.metadata["help"].split()) in letters, field.name


def test_the_flags_given_become_the_options() -> None:
    argv = ["invert", "class", "run", "--class", "tarantula", "7", "--no-clip", "--steps", "3", "--lr", "0.5",
            "--list-layers", "--save-every", "2"]
    options = ClassOptions.from_dict(given(build_parser(argv).parse_args(argv), "invert"))
    assert options == ClassOptions(model="run", classes=("tarantula", "7"), clip=False, steps=3, lr=0.5,
                                   list_layers=True, save_every=2)
    argv = ["invert", "style", "a.png", "--style-photo", "gravel", "--content-layers", "x", "y", "--out", "s.jpg"]
    options = StyleOptions.from_dict(given(build_parser(argv).parse_args(argv), "invert"))
    assert options == StyleOptions(content="a.png", style_photo="gravel", content_layers=("x", "y"), out="s.jpg")
    assert DreamOptions.from_dict(given(build_parser(["invert", "dream"]).parse_args(["invert", "dream"]),
                                        "invert")) == DreamOptions()


def test_class_settings_follow_the_network_and_the_recipe() -> None:
    """An ImageNet network gets the seeds' stronger, decaying step; a classifier run the gentler one; the robust
    recipe takes steps and lr alone; every option given wins over the recipe's default."""
    net = tiny_classifier(channels=3)
    imagenet = Network("lite", net, net, 3, None, DEFAULTS, IMAGENET_CLASSES)
    run = tiny_network()  # grayscale: the seeds' recipe by default
    moves = {"blur_every": 4, "blur_sigma": 0.5, "clip": True}
    assert class_settings(ClassOptions(), imagenet, 224) == {"steps": 128, "lr": 0.05}
    assert class_settings(ClassOptions(recipe="seeds"), imagenet, 224) == {
        "steps": 300, "lr": 0.03, "final_lr_fraction": 0.1, "l2": 1e-4, "blur_until": 0.7, "jitter": 8, **moves}
    assert class_settings(ClassOptions(), run, 28) == {"steps": 200, "lr": 0.02, "l2": 0.01, "jitter": 1, **moves}
    mine = ClassOptions(recipe="seeds", steps=5, lr=0.1, l2=0.0, jitter=0, blur_until=1.0, clip=False)
    assert class_settings(mine, imagenet, 224) == {"steps": 5, "lr": 0.1, "final_lr_fraction": 0.1, "l2": 0.0,
                                                   "blur_until": 1.0, "jitter": 0, **moves, "clip": False}
    assert [default_jitter(None, side) for side in (16, 28, 224)] == [1, 1, 8] and default_jitter(3, 224) == 3


def test_chosen_classes_by_default_and_by_name() -> None:
    assert chosen_classes(tiny_network(), None) == [0, 1, 2]
    assert chosen_classes(tiny_network(), ("c", "0")) == [2, 0]
    net = tiny_classifier(channels=3)
    with pytest.raises(ConfigError, match="choose some by name or number"):
        chosen_classes(Network("lite", net, net, 3, None, DEFAULTS, IMAGENET_CLASSES), None)


def test_class_takes_as_many_names_as_imagenet_has_classes() -> None:
    """More than the 64 entries other tuple options stop at: every ImageNet class may be named."""
    names = tuple(str(i) for i in range(1000))
    assert ClassOptions.from_dict({"classes": names}).classes == names
    with pytest.raises(ConfigError, match="at most 1000"):
        ClassOptions.from_dict({"classes": (*names, "0")})
