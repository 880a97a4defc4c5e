"""Each inversion method run on a loaded Network, with the figures that judge it: what the CLI, docs and
benchmarks call. Class pictures come with their probabilities (on the source network and on judges),
a dream with its layer's activation norm before and after, a stylised image with its losses.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from genlab.data.imagenet import CLASSES as IMAGENET_CLASSES
from genlab.data.photos import PHOTOS, photo_path
from genlab.errors import ConfigError
from genlab.images import GridLabels, captioned_grid, fit_zoom, labelled_grid, load_image, make_grid, open_image
from genlab.invert.ascent import (
    OnStep,
    activation_norm,
    class_probabilities,
    class_visualization,
    deep_dream,
    noise_images,
    resize,
)
from genlab.invert.networks import Network
from genlab.invert.robust import FourierImage, robust_class_visualization
from genlab.invert.style import StyleResult, covering, style_losses, style_targets, style_transfer
from genlab.options import RECIPES

# -- photographs ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Photo:
    """An RGB or grayscale image (1, C, H, W) in [0, 1], where it came from, and what was done to it on reading."""

    image: Tensor
    source: str
    notes: tuple[str, ...] = ()


def read_photo(source: str | os.PathLike, channels: int, longest: int | None = None) -> Photo:
    """A file, or a sample photo's name (see genlab.data.photos), as (1, C, H, W) in [0, 1].

    Colour modes are converted to `channels` (grayscale, RGBA, palette); a longest side over `longest` pixels
    is scaled down to it. Both are noted, so the caller can say what happened.
    """
    path = photo_path(str(source)) if str(source) in PHOTOS and not Path(source).exists() else Path(source)
    mode = open_image(path).mode
    image = (load_image(path, channels).float() / 255)[None]
    notes = [f"{path.name}: {mode} converted to {'grayscale' if channels == 1 else 'RGB'}"] \
        if mode not in (("L",) if channels == 1 else ("RGB",)) else []
    height, width = image.shape[-2:]
    if longest is not None and max(height, width) > longest:
        scale = longest / max(height, width)
        size = (max(8, round(height * scale)), max(8, round(width * scale)))
        image = resize(image, size)
        notes.append(f"{path.name}: {width}x{height} scaled down to {size[1]}x{size[0]} (longest side {longest})")
    return Photo(image, str(path), tuple(notes))


# -- class visualization --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassPictures:
    """One picture per class (N, C, H, W) in [0, 1], and the class probabilities at the start and at the end."""

    images: Tensor
    classes: tuple[int, ...]
    names: tuple[str, ...]
    start: Tensor  # (N,) probability of each class on the source network, before the ascent
    probability: Tensor  # (N,) after, on the source network
    judged: dict[str, Tensor]  # other network's name -> (N,) probability it gives each picture's class
    recipe: str = ""
    steps: int = 0

    def captions(self, source: str = "p") -> list[list[str]]:
        """Per picture: 'number name', then 'p 0.998' (or `source` in place of p) and each judge's probability."""
        return [[f"{c} {name}", f"{source} {p:.3f}",
                 *(f"{judge} {float(q[i]):.3f}" for judge, q in self.judged.items())]
                for i, (c, name, p) in enumerate(zip(self.classes, self.names, self.probability.tolist()))]

    def title(self, network: str) -> str:
        """One line naming the network, the recipe and its steps, and what p (and each judge's line) is."""
        judges = f", then on {', '.join(self.judged)}" if self.judged else ""
        return f"{network}, {self.recipe} recipe, {self.steps} steps: p = the class's probability on {network}{judges}"


def class_pictures_grid(pictures: ClassPictures, network: str, nrow: int = 5, zoom: int | None = None,
                        captions: bool = True) -> Tensor:
    """Class visualizations as one grid under a title (titled), each picture over its class and p, the probability
    `network` (a short name) gives it, then each judge's; zoom repeats pixels (default: what brings the grid to a
    readable width). captions=False: the pictures alone, as a bare grid."""
    images = pictures.images
    zoom = zoom or fit_zoom(images.shape[-1], min(nrow, len(pictures.classes)))
    if zoom != 1:
        images = torch.nn.functional.interpolate(images, scale_factor=zoom, mode="nearest")
    if not captions:
        return make_grid(images, nrow=nrow)
    return titled(captioned_grid(images, pictures.captions(), nrow=nrow), pictures.title(network))


def titled(figure: Tensor, title: str) -> Tensor:
    """A uint8 figure (3, H, W) with one title line drawn above it, as labelled grids have theirs."""
    return labelled_grid(figure[None].float() / 255, 1, GridLabels(title=title), zoom=1).image


def judged_size(network: Network) -> tuple[int, int]:
    """The size a network scores pictures at: its fixed input size, else the resolution it was trained at."""
    return network.size or (network.preview_size, network.preview_size)


def judge(network: Network, images: Tensor, classes: Sequence[int]) -> Tensor:
    """(N,) probability `network` gives each image's class, the images resized to its judged size."""
    images = resize(images.to(network.device), judged_size(network))
    return class_probabilities(network.logits, images, classes).cpu()


def start_images(network: Network, n: int, recipe: str, size: tuple[int, int], seed: int,
                 start_mean: float | None) -> Tensor:
    """The images each recipe starts from: faint noise around a grey (seeds), a near-flat spectrum (robust)."""
    if recipe == "robust":
        return FourierImage.noise(n, *size, seed=seed).images().detach().to(network.device)
    mean = network.blank if start_mean is None else start_mean
    return noise_images(n, network.channels, size, seed, mean, 0.02).to(network.device)


def default_recipe(network: Network) -> str:
    """robust for RGB networks; seeds for grayscale ones (the robust recipe's colour basis is RGB)."""
    return "robust" if network.channels == 3 else "seeds"


def recipe_defaults(network: Network, recipe: str) -> dict:
    """Settings that give a recognisable picture in a minute or two on 2 CPU cores: steps, lr (and seeds' others)."""
    if recipe == "robust":
        return {"steps": 128, "lr": 0.05}
    if network.classes == IMAGENET_CLASSES:  # a 224-pixel RGB image: a stronger step, L2 only a tie-breaker;
        # the step falls to a tenth and the last 30% of the steps are not blurred, so every class settles >= 0.99
        return {"steps": 300, "lr": 0.03, "final_lr_fraction": 0.1, "l2": 1e-4, "blur_until": 0.7}
    return {"steps": 200, "lr": 0.02, "l2": 0.01}


def visualize_classes(network: Network, classes: Sequence[int], *, recipe: str | None = None,
                      size: tuple[int, int] | None = None, judges: Sequence[Network] = (), seed: int = 0,
                      start_mean: float | None = None, progress: bool = False, on_step: OnStep | None = None,
                      **options) -> ClassPictures:
    """Pictures of `classes` on `network` by one recipe ("robust", "seeds"; default_recipe), scored on it and judges.

    options go to robust_class_visualization (steps, lr, transforms) or class_visualization (steps, lr, l2, ...),
    over recipe_defaults(network, recipe).
    """
    network.check_classes()
    recipe = recipe or default_recipe(network)
    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}: expected {' or '.join(RECIPES)}")
    if recipe == "robust" and network.channels != 3:
        raise ConfigError(f"the robust recipe draws RGB pictures; {network.name} takes {network.channels} channel(s): "
                          f"use --recipe seeds")
    options = {**recipe_defaults(network, recipe), **options}
    size = network.size or size or judged_size(network)
    start = start_images(network, len(classes), recipe, size, seed, start_mean)
    if recipe == "robust":
        images = robust_class_visualization(network.logits, classes, size, seed=seed, progress=progress,
                                            on_step=on_step, device=network.device, **options)
    else:
        images = class_visualization(network.logits, classes, start, seed=seed, progress=progress,
                                     on_step=on_step, **options)
    return ClassPictures(images.cpu(), tuple(classes), tuple(network.classes[c] for c in classes),
                         judge(network, start, classes), judge(network, images, classes),
                         {other.short_name: judge(other, images, classes) for other in judges}, recipe,
                         options["steps"])


# -- DeepDream ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dream:
    """The dreamed image (1, C, H, W) in [0, 1], its layer, and that layer's activation norm before and after."""

    image: Tensor
    layer: str
    norm_before: float
    norm_after: float

    @property
    def gain(self) -> float:
        return self.norm_after / max(self.norm_before, 1e-12)


def dream(network: Network, image: Tensor, layer: str | None = None, **options) -> Dream:
    """DeepDream at `layer` (default: the network's dream layer); options go to invert.deep_dream."""
    layer = layer or network.defaults.dream
    activation = network.activation(layer)
    image = image.to(network.device)
    x = deep_dream(activation, image, **options)
    return Dream(x.cpu(), layer, activation_norm(activation, image).item(), activation_norm(activation, x).item())


def dream_figure(image: Tensor, dreamed: Dream, network: str, source: str, how: str, zoom: int = 1) -> Tensor:
    """The image (1, C, H, W) and its dream side by side as one RGB uint8 figure, labelled (`source`, the layer and
    `how`, e.g. '3 octaves x 150 steps'), under a title with the layer's norm before and after; enlarged `zoom`
    times, and at least to a readable width (~600 px)."""
    pair = torch.cat([image.cpu(), dreamed.image])
    labels = GridLabels(columns=[f"input: {source}", f"dreamed: {dreamed.layer}, {how}"],
                        title=f"DeepDream on {network}: activation norm of {dreamed.layer} {dreamed.norm_before:.4g} "
                              f"-> {dreamed.norm_after:.4g} ({dreamed.gain:.2f}x)")
    return labelled_grid(pair, 2, labels, max(zoom, fit_zoom(pair.shape[-1], 2))).image


# -- style transfer -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stylised:
    """A style-transfer result, and the content loss the style image itself has: the yardstick for 'still content'."""

    result: StyleResult
    style_own_content: float
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    style: Tensor  # (1, C, H, W): the style image as its Grams were taken, at the content's size (style.covering)

    @property
    def style_cut(self) -> float:
        """Fraction of the Gram (style) loss removed, 0 to 1."""
        first, last = self.result.history[0]["style"], self.result.history[-1]["style"]
        return 1 - last / max(first, 1e-30)


def stylise(network: Network, content: Tensor, style: Tensor, content_layers: Sequence[str] | None = None,
            style_layers: Sequence[str] | None = None, **options) -> Stylised:
    """Style transfer on `network` (default layers: its own); options go to invert.style_transfer."""
    content_layers = tuple(content_layers or network.defaults.content)
    style_layers = tuple(style_layers or network.defaults.style)
    content, style = content.to(network.device), style.to(network.device)
    result = style_transfer(network.activations, content, style, content_layers=content_layers,
                            style_layers=style_layers, **options)
    targets = style_targets(network.activations, content, style, content_layers, style_layers)
    style = covering(style, content.shape[-2:])  # as its Grams were taken
    with torch.no_grad():
        own = style_losses(network.activations, style, targets)
    return Stylised(StyleResult(result.image.cpu(), result.history), float(own["content"]), content_layers,
                    style_layers, style.cpu())


def style_figure(content: Tensor, stylised: Stylised, network: str, names: tuple[str, str], how: str) -> Tensor:
    """Content, style (as its Grams were taken) and result side by side as one RGB uint8 figure at a readable width
    (~600 px), labelled with the photos' `names` and the Gram loss cut, under a title with `how` (e.g. '200 adam
    steps') and the content loss beside the style image's own."""
    pictures = torch.cat([content.cpu(), stylised.style, stylised.result.image])
    last = stylised.result.history[-1]
    labels = GridLabels(columns=[f"content: {names[0]}", f"style: {names[1]}",
                                 f"result: Gram loss -{100 * stylised.style_cut:.0f}%"],
                        title=f"Style transfer on {network}, {how}: content loss {last['content']:.3g} (the style "
                              f"image's own {stylised.style_own_content:.3g})")
    return labelled_grid(pictures, 3, labels).image
