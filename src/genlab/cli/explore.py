"""`genlab explore`: pictures of a run's latent space, saved in the run's explore folder for the report."""
from __future__ import annotations

import argparse

from genlab.cli.commands import COMMANDS
from genlab.cli.common import (
    add_data_flags,
    add_device_flag,
    add_threads_flag,
    add_weights_flag,
    add_zoom_flag,
    at_least,
    check_zoom,
    open_trained_run,
)
from genlab.errors import ConfigError
from genlab.options import MAX_DEFAULT_TRAVERSAL_ROWS
from genlab.runs.layout import EXPLORE, IMAGES, in_run


def write(args: argparse.Namespace, make: str, **options: object) -> int:
    """Load RUN, make the figure (the function of genlab.figures named `make`) from the options, save it (to --out
    or the run's explore folder), print its path."""
    from genlab import figures

    check_zoom(args)
    if getattr(args, "zoom", None) is not None:
        options["zoom"] = args.zoom
    run = open_trained_run(args)
    figure = getattr(figures, make)(run, **options, data_dir=args.data_dir)
    if figure.note:  # what was done to the user's image files
        print(figure.note)
    print(figures.save_figure(figure, run.path, args.out))
    return 0


def optional_range(values: list[float] | None) -> tuple[float, float] | None:
    return tuple(values) if values else None  # type: ignore[return-value]


def cmd_manifold(args: argparse.Namespace) -> int:
    at_least("-n", args.n, 2)
    return write(args, "manifold_figure", n=args.n, dims=tuple(args.dims),
                 value_range=optional_range(args.range), index=args.index)


def cmd_neighbourhood(args: argparse.Namespace) -> int:
    at_least("-n", args.n, 2)
    at_least("--std", args.std, 0)
    return write(args, "neighbourhood_figure", n=args.n, dims=tuple(args.dims), std=args.std,
                 index=args.index, seed=args.seed)


def cmd_traverse(args: argparse.Namespace) -> int:
    at_least("-n", args.n, 2)
    return write(args, "traversal_figure", dims=args.dims, n=args.n, value_range=tuple(args.range),
                 index=args.index)


def cmd_interpolate(args: argparse.Namespace) -> int:
    at_least("-n", args.n, 2)
    at_least("--pairs", args.pairs, 1)
    return write(args, "interpolation_figure", indices=args.indices or [0, 1], pairs=args.pairs, n=args.n,
                 spherical=args.spherical, seed=args.seed, images=args.images)


def cmd_attribute(args: argparse.Namespace) -> int:
    at_least("-n", args.n, 1)
    at_least("--steps", args.steps, 2)
    classes = args.from_class is not None or args.to_class is not None
    if (args.attribute is not None) == classes or (classes and None in (args.from_class, args.to_class)):
        raise ConfigError("explore attribute needs --attribute NAME (e.g. Smiling), or --from-class and --to-class "
                          "together")
    return write(args, "attribute_figure", from_class=args.from_class, to_class=args.to_class,
                 attribute=args.attribute, strength=args.strength, steps=args.steps, n=args.n)


def cmd_arithmetic(args: argparse.Namespace) -> int:
    from genlab import figures
    from genlab.runs.store import load_run
    from genlab.vector_arithmetic import arithmetic_figure

    at_least("--samples", args.samples, 3)
    at_least("-n", args.n, 1)
    at_least("--noise", args.noise, 0)
    check_zoom(args)
    run = open_trained_run(args)
    classifier = load_run(args.classifier, getattr(args, "device", "cpu"))
    figure = arithmetic_figure(run, classifier, args.groups, draws=args.samples, seed=args.seed, shown=args.n,
                               noise=args.noise, zoom=args.zoom)
    print(figure.note)
    print(figures.save_figure(figure, run.path, args.out))
    return 0


def cmd_scatter(args: argparse.Namespace) -> int:
    at_least("--test-images", args.test_images, 2)
    return write(args, "scatter_figure", n_images=args.test_images)


# ---------------------------------------------------------------- flags


def add_common(p: argparse.ArgumentParser, default_name: str) -> None:
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--out", help=f"PNG path (default {in_run(IMAGES, EXPLORE, default_name)})")
    add_data_flags(p, with_name=False)
    add_device_flag(p)
    add_threads_flag(p)
    add_weights_flag(p)


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
    "attribute": ("move images along an attribute's vector (with minus without) or two classes' mean codes",
                  cmd_attribute, "attribute-NAME.png or attribute-FROM-to-TO.png"),
    "arithmetic": ("decode A - B + C, the mean codes of three groups of samples an attribute classifier picks",
                   cmd_arithmetic, "arithmetic.png"),
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
        ends = p.add_mutually_exclusive_group()
        ends.add_argument("--indices", type=int, nargs="+", metavar="I",
                          help="pairs of test images A B [A B ...], one row each (default 0 1)")
        ends.add_argument("--images", nargs="+", metavar="FILE",
                          help="pairs of PNG/JPEG files A B [A B ...] instead, made the run's shape as folder: data "
                               "is (center-cropped to a square, resized, gray or RGB)")
        p.add_argument("--pairs", type=int, default=4, help="rows of random-code pairs for a GAN (default 4)")
        p.add_argument("-n", type=int, default=10, help="decoded steps per row, ends included (default 10)")
        p.add_argument("--spherical", action="store_true", help="slerp instead of a straight line")
    if name == "attribute":
        p.add_argument("--attribute", metavar="NAME", help="a named attribute of the data (faces, celeba:PATH, "
                                                            "folder: with attributes.csv), e.g. Smiling: the vector "
                                                            "from the images without it to those with it")
        p.add_argument("--from-class", help="or: the class the images start from, by name or number")
        p.add_argument("--to-class", help="and the class the vector points to, by name or number")
        p.add_argument("--strength", type=float, default=1.5, help="largest multiple of the vector added "
                                                                    "(default 1.5)")
        p.add_argument("--steps", type=int, default=6, help="strengths from 0 to --strength (default 6)")
        p.add_argument("-n", type=int, default=8, help="test images of --from-class, one row each (default 8)")
    if name == "arithmetic":
        p.add_argument("--classifier", required=True, metavar="RUN",
                       help="an attribute-classifier run on the same data (genlab train attribute-classifier)")
        p.add_argument("--groups", nargs=3, required=True, metavar=("A", "B", "C"),
                       help="three groups of attributes, comma-separated, no-NAME for absent: e.g. "
                            "Smiling,Eyeglasses no-Smiling,Eyeglasses no-Smiling,no-Eyeglasses")
        p.add_argument("--samples", type=int, default=2000, help="prior samples sorted into the groups "
                                                                 "(default 2000)")
        p.add_argument("-n", type=int, default=5, help="samples shown per group, and noisy variants of the "
                                                       "result (default 5)")
        p.add_argument("--noise", type=float, default=0.25, help="standard deviation of the noise added to the "
                                                                 "result's code for its variants (default 0.25)")
        p.add_argument("--seed", type=int, default=0, help="seed of the prior samples (default 0)")
    if name == "scatter":
        p.add_argument("--test-images", type=int, default=10000, help="how many test images (default 10000)")
    if name != "scatter":
        add_zoom_flag(p)
    if name in ("neighbourhood", "interpolate"):
        p.add_argument("--seed", type=int, default=0, help="seed of a GAN's random codes (default 0)")


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("explore", help=COMMANDS["explore"].help,
                            description="Pictures of a trained run's latent space, written under "
                                        f"{in_run(IMAGES, EXPLORE)}/ so that `genlab report` shows them.")
    pictures = p.add_subparsers(title="pictures", metavar="PICTURE", required=True)
    for name, (help_text, handler, default_name) in PICTURES.items():
        sub = pictures.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        add_common(sub, default_name)
        add_picture_flags(name, sub)
        sub.set_defaults(handler=handler)
