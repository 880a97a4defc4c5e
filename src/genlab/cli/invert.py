"""Commands that optimise pixels through a CNN: invert class, invert dream, invert style."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab import invert
from genlab.cli.common import add_device_flag, at_least
from genlab.errors import ConfigError
from genlab.images import load_image, make_grid, save_image
from genlab.invert_models import (
    NETWORK_HELP,
    WEIGHT_FILES,
    Network,
    layer_table,
    load_network,
)
from genlab.train.trainer import resolve_device

MAX_DEFAULT_CLASSES = 64  # above this (ImageNet's 1000) the classes must be chosen with --classes


def open_network(args: argparse.Namespace, spec: str) -> Network:
    return load_network(spec, args.weights, args.seed, resolve_device(args.device))


def print_layers(network: Network) -> int:
    size = network.size or (network.preview_size, network.preview_size)
    rows = layer_table(network)
    width = max(len(name) for name, _, _ in rows)
    print(f"layers of {network.name} (output shapes for one {network.channels}x{size[0]}x{size[1]} image):")
    for name, kind, shape in rows:
        print(f"  {name:<{width}}  {kind:<18} {shape}")
    return 0


def read_image(path: str, network: Network, size: int) -> Tensor:
    """(1, C, H, W) in [0, 1] as the network takes it: its fixed size, else the longest side resized to size."""
    if network.size is not None:  # a square size centre-crops first; any other is a plain resize
        fixed = network.size[0] if network.size[0] == network.size[1] else network.size
        return (load_image(path, network.channels, size=fixed).float() / 255)[None]
    image = (load_image(path, network.channels).float() / 255)[None]
    height, width = image.shape[-2:]
    scale = size / max(height, width)
    return invert.resize(image, (max(8, round(height * scale)), max(8, round(width * scale))))


def output_path(args: argparse.Namespace) -> Path:
    """--out, after checking it and the other output flags before any work is done."""
    path = Path(args.out)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ConfigError(f"--out {args.out} must end in .png, .jpg or .jpeg: the suffix picks the format")
    if args.save_every < 0:
        raise ConfigError(f"--save-every must be >= 0 (0: only the final image), got {args.save_every}")
    at_least("--size", args.size, 8)
    for flag in ("zoom", "nrow"):
        at_least(f"--{flag}", getattr(args, flag, 1), 1)
    return path


def zoomed(images: Tensor, zoom: int) -> Tensor:
    return images if zoom == 1 else F.interpolate(images, scale_factor=zoom, mode="nearest")


def step_saver(out: Path, every: int, to_png: Callable[[Tensor], Tensor]) -> invert.OnStep | None:
    """on_step that writes OUT-0010.png, OUT-0020.png, ... (OUT's suffix) every `every` steps; None for 0."""
    if every == 0:
        return None

    def save(step: int, x: Tensor) -> None:
        if step % every == 0:
            save_image(to_png(x.detach().cpu()), out.with_name(f"{out.stem}-{step:04d}{out.suffix}"))
    return save


def chosen_classes(network: Network, given: list[int] | None) -> list[int]:
    network.check_classes()
    n = len(network.classes)
    if given is None and n > MAX_DEFAULT_CLASSES:
        raise ConfigError(f"{network.name} has {n} classes; choose some with --classes, e.g. --classes 1 130 945")
    classes = list(range(n)) if given is None else given
    wrong = [c for c in classes if not 0 <= c < n]
    if wrong:
        raise ConfigError(f"--classes {wrong} out of range: {network.name} has classes 0 to {n - 1}")
    return classes


def default_jitter(jitter: int | None, side: int) -> int:
    return max(1, side // 28) if jitter is None else jitter  # about 1/28 of the image: 1 px at 28, 8 px at 224


def cmd_invert_class(args: argparse.Namespace) -> int:
    out = output_path(args)
    network = open_network(args, args.model)
    if args.list_layers:
        return print_layers(network)
    classes = chosen_classes(network, args.classes)
    size = network.size or (args.size, args.size)
    mean = network.blank if args.start_mean is None else args.start_mean
    start = invert.noise_images(len(classes), network.channels, size, args.seed, mean, 0.02).to(network.device)

    def grid(x: Tensor) -> Tensor:
        return make_grid(zoomed(x, args.zoom), nrow=args.nrow)

    x = invert.class_visualization(
        network.logits, classes, start, steps=args.steps, lr=args.lr, l2=args.l2,
        jitter=default_jitter(args.jitter, min(size)), blur_every=args.blur_every, blur_sigma=args.blur_sigma,
        clip=not args.no_clip, seed=args.seed, progress=sys.stderr.isatty(),
        on_step=step_saver(out, args.save_every, grid))
    before = invert.class_probabilities(network.logits, start, classes).tolist()
    after = invert.class_probabilities(network.logits, x, classes).tolist()
    width = max(len(network.classes[c]) for c in classes)
    for c, p0, p1 in zip(classes, before, after):
        print(f"{c:>4} {network.classes[c]:<{width}}  p {p0:.3f} -> {p1:.4f}")
    print(save_image(grid(x.cpu()), out))
    return 0


def cmd_invert_dream(args: argparse.Namespace) -> int:
    out = output_path(args)
    network = open_network(args, args.model)
    if args.list_layers:
        return print_layers(network)
    if args.image is None:
        raise ConfigError("invert dream needs an IMAGE (a PNG or JPEG file)")
    layer = args.layer or network.defaults.dream
    activation = network.activation(layer)
    image = read_image(args.image, network, args.size).to(network.device)
    x = invert.deep_dream(activation, image, steps=args.steps, lr=args.lr, octaves=args.octaves,
                          octave_scale=args.octave_scale, jitter=default_jitter(args.jitter, min(image.shape[-2:])),
                          clip=not args.no_clip, seed=args.seed, progress=sys.stderr.isatty(),
                          on_step=step_saver(out, args.save_every, lambda x: zoomed(x, args.zoom)[0]))
    before, after = invert.activation_norm(activation, image).item(), invert.activation_norm(activation, x).item()
    print(f"{layer}: activation norm {before:.4g} -> {after:.4g} ({after / max(before, 1e-12):.2f}x)")
    print(save_image(zoomed(x.cpu(), args.zoom)[0], out))
    return 0


def cmd_invert_style(args: argparse.Namespace) -> int:
    out = output_path(args)
    network = open_network(args, args.model)
    if args.list_layers:
        return print_layers(network)
    if args.content is None or args.style is None:
        raise ConfigError("invert style needs a CONTENT and a STYLE image (PNG or JPEG files)")
    content = read_image(args.content, network, args.size).to(network.device)
    style = read_image(args.style, network, args.size).to(network.device)
    content_layers = args.content_layers or list(network.defaults.content)
    style_layers = args.style_layers or list(network.defaults.style)
    result = invert.style_transfer(
        network.activations, content, style, content_layers=content_layers, style_layers=style_layers,
        steps=args.steps, optimizer=args.optimizer, lr=args.lr, content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight, init=args.init, seed=args.seed,
        progress=sys.stderr.isatty(), on_step=step_saver(out, args.save_every, lambda x: x[0]))
    targets = invert.style_targets(network.activations, content, style, content_layers, style_layers)
    with torch.no_grad():  # the yardstick: how far the style image itself is from the content
        own = invert.style_losses(network.activations, invert.resize(style, content.shape[-2:]), targets)
    first, last = result.history[0], result.history[-1]
    print(f"content loss {first['content']:.4g} -> {last['content']:.4g} "
          f"(the style image itself: {float(own['content']):.4g})")
    print(f"style loss {first['style']:.4g} -> {last['style']:.4g} "
          f"({100 * (1 - last['style'] / max(first['style'], 1e-30)):.1f}% lower)")
    print(save_image(result.image[0].cpu(), out))
    return 0


def add_network_flags(q: argparse.ArgumentParser, positional: bool = False) -> None:
    if not positional:
        q.add_argument("--model", default="vgg-random", help=f"{NETWORK_HELP} (default vgg-random)")
    q.add_argument("--weights", metavar="FILE", help=f"ImageNet weights for {', '.join(WEIGHT_FILES)} (default: "
                                                     f"torchvision's file, e.g. {WEIGHT_FILES['vgg16']}, in "
                                                     f"$TORCH_HOME/hub/checkpoints); nothing is downloaded")
    q.add_argument("--list-layers", action="store_true", help="print the layer names (for --layer and the "
                                                              "style flags) with output shapes, then exit")


def add_run_flags(q: argparse.ArgumentParser, steps: int, lr: float | None, out: str, lr_help: str) -> None:
    q.add_argument("--steps", type=int, default=steps, help=f"optimisation steps (default {steps})")
    q.add_argument("--lr", type=float, default=lr, help=lr_help)
    q.add_argument("--seed", type=int, default=0, help="seeds the start noise, the jitter and vgg-random's "
                                                       "weights (default 0)")
    add_device_flag(q)
    q.add_argument("--out", default=out, help=f"PNG or JPEG path (default {out})")
    q.add_argument("--save-every", type=int, default=0, metavar="N", help="also write the image every N steps "
                                                                        "as OUT-0010.png, ... (default 0: never)")


def add_ascent_flags(q: argparse.ArgumentParser) -> None:
    q.add_argument("--jitter", type=int, help="random roll of up to this many pixels before each step, undone "
                                              "after (default: the image side / 28, at least 1)")
    q.add_argument("--no-clip", action="store_true", help="let pixels leave [0, 1] during the ascent")
    q.add_argument("--zoom", type=int, default=1, help="enlarge the written PNG this many times (nearest)")


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("invert", help="optimise pixels through a CNN: class visualization, DeepDream, style",
                            description="The image is the parameter: gradient steps change the pixels, not the "
                                        "weights. See docs/inversion.md.")
    actions = p.add_subparsers(title="invert commands", metavar="ACTION", required=True)

    q = actions.add_parser("class", help="images that maximise each class score of a classifier",
                           description="Start from faint noise and ascend one class's score (the logit) minus "
                                       "an L2 penalty, with jitter, clipping and a blur every few steps; writes "
                                       "one image per class in a grid and prints each class's probability.")
    q.add_argument("model", metavar="MODEL", help="a classifier run directory, or vgg16, vgg19, googlenet")
    add_network_flags(q, positional=True)
    q.add_argument("--classes", type=int, nargs="+", metavar="I", help="class indices (default: all)")
    add_run_flags(q, 200, 0.02, "invert-class.png", "pixels moved per step, RMS (default 0.02)")
    add_ascent_flags(q)
    q.add_argument("--l2", type=float, default=0.01, help="weight of the ||x||^2 penalty (default 0.01)")
    q.add_argument("--blur-every", type=int, default=4, help="Gaussian blur every N steps, 0: never (default 4)")
    q.add_argument("--blur-sigma", type=float, default=0.5, help="blur std in pixels (default 0.5)")
    q.add_argument("--start-mean", type=float, help="grey level of the start noise (default: 0 for classifier "
                                                    "runs, 0.5 for ImageNet models)")
    q.add_argument("--size", type=int, default=224, help="image side for models without a fixed size (default 224)")
    q.add_argument("--nrow", type=int, default=10, help="images per grid row (default 10)")
    q.set_defaults(handler=cmd_invert_class)

    q = actions.add_parser("dream", help="DeepDream: amplify what a layer sees in an image",
                           description="Ascend 0.5 * ||a||^2 of one layer's activation a over a few octaves "
                                       "(scales), coarse to fine, with jitter; prints the norm before and after.")
    q.add_argument("image", metavar="IMAGE", nargs="?", help="a PNG or JPEG file")
    add_network_flags(q)
    q.add_argument("--layer", help="layer name from --list-layers (default: one per model)")
    add_run_flags(q, 100, 0.05, "dream.png", "pixels moved per step, RMS (default 0.05)")
    q.add_argument("--octaves", type=int, default=2, help="number of scales (default 2)")
    q.add_argument("--octave-scale", type=float, default=1.4, help="size ratio between octaves (default 1.4)")
    add_ascent_flags(q)
    q.add_argument("--size", type=int, default=256, help="longest side for models that take any size "
                                                         "(default 256); a classifier run uses its own")
    q.set_defaults(handler=cmd_invert_dream)

    q = actions.add_parser("style", help="style transfer: CONTENT's layout in STYLE's texture (Gatys et al.)",
                           description="Optimise an image whose features match CONTENT at the content layers and "
                                       "whose Gram matrices match STYLE at the style layers, plus a "
                                       "total-variation term; prints both losses before and after.")
    q.add_argument("content", metavar="CONTENT", nargs="?", help="a PNG or JPEG file: what to draw")
    q.add_argument("style", metavar="STYLE", nargs="?", help="a PNG or JPEG file: how to draw it")
    add_network_flags(q)
    q.add_argument("--content-layers", nargs="+", metavar="LAYER", help="default: one per model")
    q.add_argument("--style-layers", nargs="+", metavar="LAYER", help="default: one per model")
    add_run_flags(q, 200, None, "style.png", "default 0.02 for adam, 1 for lbfgs")
    q.add_argument("--optimizer", choices=("adam", "lbfgs"), default="adam", help="default adam")
    q.add_argument("--content-weight", type=float, default=1.0, help="default 1")
    q.add_argument("--style-weight", type=float, default=10.0, help="default 10")
    q.add_argument("--tv-weight", type=float, default=5.0, help="total-variation weight (default 5)")
    q.add_argument("--init", choices=("content", "noise"), default="content", help="start image (default content)")
    q.add_argument("--size", type=int, default=256, help="longest side for models that take any size "
                                                         "(default 256); a classifier run uses its own")
    q.set_defaults(handler=cmd_invert_style)
