"""`genlab explore`: pictures of a run's latent space, saved under RUN/images/explore/ for the report."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch
from PIL import PngImagePlugin
from torch import Tensor, nn

from genlab import latent
from genlab.cli.common import add_data_flags, add_device_flag, at_least
from genlab.data.batches import to_unit_float
from genlab.data.catalog import Dataset
from genlab.errors import ConfigError, RunError
from genlab.images import atomic_save, make_grid, to_pil
from genlab.models.contract import GAN, VAE, AutoEncoder
from genlab.train.run import Run, load_run
from genlab.train.trainer import resolve_device

MAX_DEFAULT_TRAVERSAL_ROWS = 10  # a 100-d DCGAN would otherwise make a 100-row picture
ATTRIBUTE_GROUP = 2000           # training images per class averaged into an attribute vector


# ---------------------------------------------------------------- loading and checking


def load(args: argparse.Namespace, needs: str) -> Run:
    """The run, checked to have what the picture needs: 'decoder', 'encoder' or 'spread'."""
    run = load_run(args.run, resolve_device(args.device))
    check_kind(run, needs)
    return run


def check_kind(run: Run, needs: str) -> None:
    """A RunError unless the run's model has a decoder (and an encoder, or a posterior spread, if needed)."""
    model, name = run.model, run.config["model"]
    if not isinstance(model, (AutoEncoder, GAN)):
        raise RunError(f"{name} has no latent space to explore; explore works on autoencoder, VAE and DCGAN runs "
                       f"(e.g. `genlab train vae-bn`)")
    if needs == "encoder" and not isinstance(model, AutoEncoder):
        raise RunError(f"{name} has no encoder, so it cannot place images in its latent space; for a GAN use "
                       f"`genlab explore interpolate` or `neighbourhood`, which start from seeded random codes")
    if needs == "spread" and not isinstance(model, (VAE, GAN)):
        raise RunError(f"{name} is a plain autoencoder: its codes have no posterior spread to scale a "
                       f"neighbourhood by; use a VAE run, or `genlab explore manifold --range` around its codes")


def test_images(run: Run, data: Dataset, indices: list[int]) -> Tensor:
    """Test images (len(indices), C, H, W) in [0, 1] as the model is tested on them (binarized if so trained)."""
    images = run.test_images(data)
    for i in indices:
        if not 0 <= i < len(images):
            raise ConfigError(f"test image index {i} is out of range: {data.name} has {len(images)} test images, "
                              f"numbered 0..{len(images) - 1}")
    return to_unit_float(images[indices])


def parse_class(value: str, classes: tuple[str, ...]) -> int:
    """A class given by name (any case) or by number -> its number; a ConfigError that lists them otherwise."""
    by_name = {name.lower(): i for i, name in enumerate(classes)}
    if value.lower() in by_name:
        return by_name[value.lower()]
    if value.isdigit() and int(value) < len(classes):
        return int(value)
    listed = ", ".join(f"{i} {name!r}" for i, name in enumerate(classes))
    raise ConfigError(f"unknown class {value!r}; this dataset's classes are {listed}")


def dims_arg(args: argparse.Namespace, model: nn.Module) -> tuple[int, int]:
    dims = tuple(args.dims)
    latent.check_dims(dims, model.latent_dim)
    return dims  # type: ignore[return-value]


# ---------------------------------------------------------------- saving


def save_figure(image: Tensor, args: argparse.Namespace, run: Run, default_name: str, caption: str) -> Path:
    """Write a (C, H, W) picture with its caption in the PNG's Description field (the report shows it)."""
    path = Path(args.out) if args.out else run.path / "images" / "explore" / default_name
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--out {path} must end in .png: explore writes PNG, with the caption inside it")
    info = PngImagePlugin.PngInfo()
    info.add_text("Description", caption)
    atomic_save(to_pil(image.cpu()), path, "PNG", pnginfo=info)
    print(path)
    return path


def index_code(run: Run, args: argparse.Namespace) -> Tensor | None:
    """The code of test image --index (None when not given): where a manifold or traversal holds the other dims."""
    if args.index is None:
        return None
    check_kind(run, "encoder")
    x = test_images(run, run.dataset(args.data_dir), [args.index])
    return latent.encode_means(run.model, x)[0]


def grid(images: Tensor, nrow: int) -> Tensor:
    return make_grid(images.cpu(), nrow=nrow)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ---------------------------------------------------------------- the pictures


def cmd_manifold(args: argparse.Namespace) -> int:
    run = load(args, "decoder")
    model, dims = run.model, dims_arg(args, run.model)
    at_least("-n", args.n, 2)
    if args.range is None and not isinstance(model, (VAE, GAN)):
        raise ConfigError(f"{run.config['model']} has no prior whose quantiles the grid could span; give the "
                          f"span with --range LO HI (look at `genlab explore scatter` for where its codes lie)")
    base = index_code(run, args)
    images = latent.manifold(model, args.n, dims, tuple(args.range) if args.range else None, base)
    span = f"from {args.range[0]:g} to {args.range[1]:g}" if args.range else "at the prior's quantiles"
    held = f"the other dims at test image {args.index}'s code" if base is not None else "the other dims at 0"
    caption = (f"Latent manifold: {args.n}x{args.n} decoded grid, dim {dims[0]} across and dim {dims[1]} down "
               f"(largest at the top), {span}" + (f"; {held}" if model.latent_dim > 2 else ""))
    save_figure(grid(images, args.n), args, run, "manifold.png", caption)
    return 0


def cmd_neighbourhood(args: argparse.Namespace) -> int:
    run = load(args, "spread")
    model, dims = run.model, dims_arg(args, run.model)
    at_least("-n", args.n, 2)
    at_least("--std", args.std, 0)
    if isinstance(model, GAN):
        center, scale = latent.seeded_codes(model, 1, args.seed)[0], torch.ones(model.latent_dim)
        where, unit = f"a random code (seed {args.seed})", "prior standard deviations"
    else:
        center, scale = latent.posterior_center(model, test_images(run, run.dataset(args.data_dir),
                                                                   [args.index]))
        where, unit = f"test image {args.index}", "posterior standard deviations"
    images = latent.neighbourhood(model, center, scale, args.n, dims, args.std)
    caption = (f"Neighbourhood of {where}: {args.n}x{args.n} decoded grid over its code +/- {args.std:g} {unit} "
               f"in dims {dims[0]} (across) and {dims[1]} (down)")
    save_figure(grid(images, args.n), args, run, "neighbourhood.png", caption)
    return 0


def cmd_traverse(args: argparse.Namespace) -> int:
    run = load(args, "decoder")
    model = run.model
    at_least("-n", args.n, 2)
    dims = args.dims if args.dims else list(range(min(model.latent_dim, MAX_DEFAULT_TRAVERSAL_ROWS)))
    latent.check_dims(dims, model.latent_dim)
    base = index_code(run, args)
    images = latent.traversal(model, base, dims, args.n, tuple(args.range))
    start = f"test image {args.index}'s code" if base is not None else "the zero code"
    caption = (f"Traversal: one row per latent dim ({', '.join(map(str, dims))}), each varying that dim alone "
               f"from {args.range[0]:g} to {args.range[1]:g}, starting from {start}")
    save_figure(grid(images, args.n), args, run, "traversal.png", caption)
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    run = load(args, "decoder")
    model = run.model
    at_least("-n", args.n, 2)
    at_least("--pairs", args.pairs, 1)
    how = "spherical (slerp)" if args.spherical else "linear"
    if isinstance(model, GAN):
        codes = latent.seeded_codes(model, 2 * args.pairs, args.seed)
        rows = [latent.interpolation(model, codes[2 * i], codes[2 * i + 1], args.n, args.spherical).cpu()
                for i in range(args.pairs)]
        what, ncol = f"{args.pairs} pairs of random codes (seed {args.seed})", args.n
    else:
        rows, what = encoded_paths(run, args), f"test images {pairs_text(args.indices)}"
        ncol = args.n + 2
    caption = f"Interpolation, {how}, between {what}" + ("; originals at the ends" if ncol > args.n else "")
    name = "interpolation-slerp.png" if args.spherical else "interpolation.png"
    save_figure(grid(torch.cat(rows), ncol), args, run, name, caption)
    return 0


def encoded_paths(run: Run, args: argparse.Namespace) -> list[Tensor]:
    """Rows of [image a, decoded path a -> b, image b] for each pair of --indices."""
    if len(args.indices) % 2:
        raise ConfigError(f"--indices takes pairs of test images (A B [A B ...]), got {len(args.indices)} numbers")
    x = test_images(run, run.dataset(args.data_dir), args.indices)
    codes = latent.encode_means(run.model, x).cpu()
    rows = []
    for i in range(0, len(x), 2):
        path = latent.interpolation(run.model, codes[i], codes[i + 1], args.n, args.spherical).cpu()
        rows.append(torch.cat([x[i:i + 1].cpu(), path, x[i + 1:i + 2].cpu()]))
    return rows


def pairs_text(indices: list[int]) -> str:
    return ", ".join(f"{a} -> {b}" for a, b in zip(indices[::2], indices[1::2]))


def cmd_attribute(args: argparse.Namespace) -> int:
    run = load(args, "encoder")
    at_least("-n", args.n, 1)
    at_least("--steps", args.steps, 2)
    data = run.dataset(args.data_dir)
    source, target = parse_class(args.from_class, data.classes), parse_class(args.to_class, data.classes)
    train_x = run.record.model_images(data.train_x)
    groups = [to_unit_float(train_x[data.train_y == c][:ATTRIBUTE_GROUP]) for c in (source, target)]
    chosen = torch.nonzero(data.test_y == source).flatten()[:args.n].tolist()
    if not (len(groups[0]) and len(groups[1]) and chosen):
        raise ConfigError(f"{data.name} needs training images of both classes and test images of --from-class "
                          f"for an attribute vector; pick classes that occur in both splits")
    vector = latent.attribute_vector(run.model, *groups)
    strengths = torch.linspace(0, args.strength, args.steps)
    images = latent.apply_attribute(run.model, test_images(run, data, chosen), vector, strengths)
    names = data.classes[source], data.classes[target]
    caption = (f"Attribute vector {names[0]} -> {names[1]} (the mean code of {len(groups[1])} training images of "
               f"{names[1]} minus that of {len(groups[0])} of {names[0]}): each row a test {names[0]}, then its "
               f"code + s * vector for s = {', '.join(f'{s:g}' for s in strengths.tolist())}")
    save_figure(grid(images, args.steps + 1), args, run, f"attribute-{slug(names[0])}-to-{slug(names[1])}.png",
                caption)
    return 0


def cmd_scatter(args: argparse.Namespace) -> int:
    run = load(args, "encoder")
    data = run.dataset(args.data_dir)
    at_least("--test-images", args.test_images, 2)
    x = run.test_images(data)[:args.test_images]
    codes = latent.encode_means(run.model, to_unit_float(x))
    kind = "posterior means" if isinstance(run.model, VAE) else "codes"
    projected = "" if codes.shape[1] == 2 else f", projected from {codes.shape[1]}-d by PCA"
    title = f"{run.config['model']} on {data.name}: {len(x)} test {kind}{projected}"
    image = latent.latent_scatter(codes, data.test_y[:len(x)], data.classes, title)
    save_figure(image, args, run, "scatter.png", f"Latent scatter: {len(x)} test {kind} coloured by class"
                + projected)
    return 0


# ---------------------------------------------------------------- flags


def add_common(p: argparse.ArgumentParser, default_name: str) -> None:
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--out", help=f"PNG path (default RUN/images/explore/{default_name})")
    add_data_flags(p, with_name=False)
    add_device_flag(p)


def add_dims(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dims", type=int, nargs=2, default=[0, 1], metavar=("ACROSS", "DOWN"),
                   help="the two latent dimensions the grid varies (default 0 1)")


PICTURES = {
    "manifold": ("decode a grid over two latent dims at the prior's quantiles", cmd_manifold, "manifold.png"),
    "neighbourhood": ("decode a grid around one image's code, +/- M posterior standard deviations",
                      cmd_neighbourhood, "neighbourhood.png"),
    "traverse": ("one row per latent dim, each varying that dim alone", cmd_traverse, "traversal.png"),
    "interpolate": ("decode a path between the codes of two test images (or two random codes of a GAN)",
                    cmd_interpolate, "interpolation.png"),
    "attribute": ("move images along the difference of two classes' mean codes", cmd_attribute,
                  "attribute-FROM-to-TO.png"),
    "scatter": ("plot test-set codes coloured by class (PCA to 2-D when needed)", cmd_scatter, "scatter.png"),
}


def add_picture_flags(name: str, p: argparse.ArgumentParser) -> None:
    if name in ("manifold", "neighbourhood"):
        add_dims(p)
        p.add_argument("-n", type=int, default=15, help="grid side: n x n images (default 15)")
    if name == "manifold":
        p.add_argument("--range", type=float, nargs=2, metavar=("LO", "HI"),
                       help="span of both dims (default: the prior's quantiles at n equal-probability steps)")
        p.add_argument("--index", type=int, help="hold the other dims at this test image's code (default: at 0)")
    if name == "neighbourhood":
        p.add_argument("--index", type=int, default=0, help="the test image at the centre (default 0)")
        p.add_argument("--std", type=float, default=4.0,
                       help="half-width M in standard deviations: posterior ones, or the prior's for a GAN "
                            "(default 4)")
    if name == "traverse":
        p.add_argument("--dims", type=int, nargs="+", help="dims to traverse, one row each "
                       f"(default all, at most the first {MAX_DEFAULT_TRAVERSAL_ROWS})")
        p.add_argument("-n", type=int, default=11, help="images per row (default 11)")
        p.add_argument("--range", type=float, nargs=2, default=[-3.0, 3.0], metavar=("LO", "HI"),
                       help="values each dim takes (default -3 3)")
        p.add_argument("--index", type=int, help="start from this test image's code (default the zero code)")
    if name == "interpolate":
        p.add_argument("--indices", type=int, nargs="+", default=[0, 1], metavar="I",
                       help="pairs of test images A B [A B ...], one row each (default 0 1)")
        p.add_argument("--pairs", type=int, default=4, help="rows of random-code pairs for a GAN (default 4)")
        p.add_argument("-n", type=int, default=10, help="decoded steps per row, ends included (default 10)")
        p.add_argument("--spherical", action="store_true", help="slerp instead of a straight line")
    if name == "attribute":
        p.add_argument("--from-class", required=True, help="class the images start from, by name or number")
        p.add_argument("--to-class", required=True, help="class the vector points to, by name or number")
        p.add_argument("--strength", type=float, default=1.5, help="largest multiple of the vector added "
                                                                    "(default 1.5)")
        p.add_argument("--steps", type=int, default=6, help="strengths from 0 to --strength (default 6)")
        p.add_argument("-n", type=int, default=8, help="test images of --from-class, one row each (default 8)")
    if name == "scatter":
        p.add_argument("--test-images", type=int, default=10000, help="how many test images (default 10000)")
    if name in ("neighbourhood", "interpolate"):
        p.add_argument("--seed", type=int, default=0, help="seed of a GAN's random codes (default 0)")


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("explore", help="pictures of a run's latent space (manifold, traverse, ...)",
                            description="Pictures of a trained run's latent space, written under "
                                        "RUN/images/explore/ so that `genlab report` shows them.")
    pictures = p.add_subparsers(title="pictures", metavar="PICTURE", required=True)
    for name, (help_text, handler, default_name) in PICTURES.items():
        sub = pictures.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        add_common(sub, default_name)
        add_picture_flags(name, sub)
        sub.set_defaults(handler=handler)
