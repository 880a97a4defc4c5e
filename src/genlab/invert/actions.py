"""`genlab invert class`, `dream` and `style` as library calls: options in, the image written, the lines to print
out. Everything a command chooses lives here -- the recipe's settings, the default jitter, the classes, the zoom,
the frames written every N steps -- so the command line only parses and prints, and Python can do the same.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from genlab.data.photos import PHOTOS, photo_path
from genlab.errors import ConfigError
from genlab.images import make_grid, save_image
from genlab.invert.ascent import OnStep, resize
from genlab.invert.measured import (
    ClassPictures,
    class_pictures_grid,
    default_recipe,
    dream,
    dream_figure,
    judged_size,
    read_photo,
    recipe_defaults,
    style_figure,
    stylise,
    visualize_classes,
)
from genlab.invert.networks import Network, layer_table, load_network
from genlab.options import (
    MAX_DEFAULT_CLASSES,
    ClassOptions,
    DreamOptions,
    InversionOptions,
    StyleOptions,
)
from genlab.threads import compute_line, use_threads
from genlab.world import resolve_device


@dataclass(frozen=True)
class CommandOutput:
    """What a command has to say, line by line, and the image it wrote (None when it only listed layers)."""

    lines: tuple[str, ...]
    path: Path | None = None


def run_inversion(options: InversionOptions, progress: bool = False, threads: int | None = None,
                  log: Callable[[str], None] | None = None) -> CommandOutput:
    """Run the command the options are for with torch on `threads` CPU threads (genlab.threads.use_threads);
    progress: on stderr (genlab.progress); log, when given, is told the device and thread count first."""
    count = use_threads(threads)
    if log is not None:
        log(compute_line(resolve_device(options.device), count))
    commands: dict[type, Callable[[Any, bool], CommandOutput]] = {
        ClassOptions: visualize_classes_command, DreamOptions: dream_command, StyleOptions: style_command}
    return commands[type(options)](options, progress)


# -- what the commands share -----------------------------------------------------------------------------------

def open_network(options: InversionOptions, spec: str | None = None) -> Network:
    """The network `spec` (default: options.model) with the options' weights, seed and device."""
    return load_network(spec or options.model, options.weights, options.seed, options.device)


def layer_listing(network: Network) -> CommandOutput:
    """--list-layers: every named layer with its module type and output shape for one image."""
    height, width = judged_size(network)
    rows = layer_table(network)
    pad = max(len(name) for name, _, _ in rows)
    title = f"layers of {network.name} (output shapes for one {network.channels}x{height}x{width} image):"
    return CommandOutput((title, *(f"  {name:<{pad}}  {kind:<18} {shape}" for name, kind, shape in rows)))


def zoomed(images: Tensor, zoom: int) -> Tensor:
    """(N, C, H, W) enlarged `zoom` times by repeating pixels."""
    return images if zoom == 1 else F.interpolate(images, scale_factor=zoom, mode="nearest")


def step_saver(out: Path, every: int, to_image: Callable[[Tensor], Tensor]) -> OnStep | None:
    """on_step that writes OUT-0010.png, OUT-0020.png, ... (OUT's suffix) every `every` steps; None for 0."""
    if every == 0:
        return None

    def save(step: int, x: Tensor) -> None:
        if step % every == 0:
            save_image(to_image(x.detach().cpu()), out.with_name(f"{out.stem}-{step:04d}{out.suffix}"))
    return save


def default_jitter(jitter: int | None, side: int) -> int:
    """The jitter given, else about 1/28 of the image side: 1 pixel at 28, 8 at 224."""
    return max(1, side // 28) if jitter is None else jitter


def image_source(given: str | None, photo: str | None, what: str, flag: str) -> str:
    """The image file given, or the file of the sample photo named; both or neither is a ConfigError."""
    if (given is None) == (photo is None):
        raise ConfigError(f"{what} needs an image file or {flag} NAME, not {'both' if given else 'neither'} "
                          f"(sample photos: {', '.join(PHOTOS)})")
    return given or str(photo_path(photo))


def fitted(image: Tensor, network: Network) -> Tensor:
    """The image at the network's fixed input size, when it has one."""
    return image if network.size is None else resize(image, network.size)


# -- invert class ----------------------------------------------------------------------------------------------

def chosen_classes(network: Network, given: Sequence[str] | None) -> list[int]:
    """The classes named (by name or number), or all of a network with at most MAX_DEFAULT_CLASSES."""
    network.check_classes()
    n = len(network.classes)
    if given is None and n > MAX_DEFAULT_CLASSES:
        raise ConfigError(f"{network.name} has {n} classes; choose some by name or number, e.g. --class "
                          f"tarantula 76 espresso")
    return list(range(n)) if given is None else [network.class_index(c) for c in given]


def class_settings(options: ClassOptions, network: Network, side: int) -> dict[str, Any]:
    """The recipe's settings for `network` (measured.recipe_defaults), then the options given; the seeds' recipe
    also takes the jitter (default: side / 28), the L2 weight, the blur and the clipping."""
    recipe = options.recipe or default_recipe(network)
    given: dict[str, Any] = {"steps": options.steps, "lr": options.lr}
    if recipe == "seeds":
        given |= {"final_lr_fraction": options.final_lr_fraction, "l2": options.l2,
                  "jitter": default_jitter(options.jitter, side), "blur_every": options.blur_every,
                  "blur_sigma": options.blur_sigma, "blur_until": options.blur_until, "clip": options.clip}
    return recipe_defaults(network, recipe) | {name: value for name, value in given.items() if value is not None}


def probability_lines(pictures: ClassPictures) -> list[str]:
    """One line per picture: class number and name, its probability before -> after, and each judge's."""
    width = max(len(name) for name in pictures.names)
    lines = []
    for c, name, p0, p1 in zip(pictures.classes, pictures.names, pictures.start.tolist(),
                               pictures.probability.tolist()):
        first = pictures.classes.index(c)  # a class named twice shows its first picture's judges
        judged = "".join(f"  {judge} {float(q[first]):.4f}" for judge, q in pictures.judged.items())
        lines.append(f"{c:>4} {name:<{width}}  p {p0:.3f} -> {p1:.4f}{judged}")
    return lines


def visualize_classes_command(options: ClassOptions, progress: bool = False) -> CommandOutput:
    """`genlab invert class`: a titled grid of one picture per class, each captioned with its class and probability."""
    network = open_network(options)
    if options.list_layers:
        return layer_listing(network)
    classes = chosen_classes(network, options.classes)
    size = (options.size, options.size) if options.size else None
    judges = [open_network(options, name) for name in options.judge or ()]
    out = Path(options.out)
    frames = step_saver(out, options.save_every, lambda x: make_grid(zoomed(x, options.zoom or 1), nrow=options.nrow))
    pictures = visualize_classes(network, classes, recipe=options.recipe, size=size, judges=judges, seed=options.seed,
                                 start_mean=options.start_mean, progress=progress, on_step=frames,
                                 **class_settings(options, network, min(size or judged_size(network))))
    grid = class_pictures_grid(pictures, network.short_name, options.nrow, options.zoom, options.captions)
    return CommandOutput(tuple(probability_lines(pictures)), save_image(grid, out))


# -- invert dream and invert style -----------------------------------------------------------------------------

def dream_command(options: DreamOptions, progress: bool = False) -> CommandOutput:
    """`genlab invert dream`: the image beside itself with what one layer sees amplified, labelled, and that layer's
    norm before and after (the dreamed image alone: --save-every frames, or measured.dream from Python)."""
    network = open_network(options)
    if options.list_layers:
        return layer_listing(network)
    source = image_source(options.image, options.photo, "invert dream", "--photo")
    network.activation(options.layer or network.defaults.dream)  # an unknown layer fails before any reading
    photo = read_photo(source, network.channels, options.size)
    image, out = fitted(photo.image, network), Path(options.out)
    result = dream(network, image, options.layer, steps=options.steps, lr=options.lr, octaves=options.octaves,
                   octave_scale=options.octave_scale, jitter=default_jitter(options.jitter, min(image.shape[-2:])),
                   clip=options.clip, seed=options.seed, progress=progress,
                   on_step=step_saver(out, options.save_every, lambda x: zoomed(x, options.zoom)[0]))
    norms = (f"{result.layer}: activation norm {result.norm_before:.4g} -> {result.norm_after:.4g} "
             f"({result.gain:.2f}x)")
    how = f"{options.octaves} octave{'s' if options.octaves > 1 else ''} x {options.steps} steps"
    figure = dream_figure(image, result, network.short_name, Path(photo.source).name, how, options.zoom)
    return CommandOutput((*photo.notes, norms), save_image(figure, out))


def style_command(options: StyleOptions, progress: bool = False) -> CommandOutput:
    """`genlab invert style`: CONTENT drawn in STYLE's texture, beside both, labelled, with both losses before and
    after (the result alone: --save-every frames, or measured.stylise from Python)."""
    network = open_network(options)
    if options.list_layers:
        return layer_listing(network)
    content_source = image_source(options.content, options.photo, "the CONTENT of invert style", "--photo")
    style_source = image_source(options.style, options.style_photo, "the STYLE of invert style", "--style-photo")
    content, style = (read_photo(source, network.channels, options.size) for source in (content_source, style_source))
    out, start = Path(options.out), fitted(content.image, network)
    result = stylise(network, start, fitted(style.image, network), options.content_layers,
                     options.style_layers, steps=options.steps, optimizer=options.optimizer, lr=options.lr,
                     content_weight=options.content_weight, style_weight=options.style_weight,
                     tv_weight=options.tv_weight, init=options.init, seed=options.seed, progress=progress,
                     on_step=step_saver(out, options.save_every, lambda x: x[0]))
    first, last = result.result.history[0], result.result.history[-1]
    losses = (f"content loss {first['content']:.4g} -> {last['content']:.4g} (the style image itself: "
              f"{result.style_own_content:.4g})",
              f"style loss {first['style']:.4g} -> {last['style']:.4g} ({100 * result.style_cut:.1f}% lower)")
    names = (Path(content.source).name, Path(style.source).name)
    figure = style_figure(start, result, network.short_name, names, f"{options.steps} {options.optimizer} steps")
    return CommandOutput((*content.notes, *style.notes, *losses), save_image(figure, out))
