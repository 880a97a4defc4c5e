"""Commands on models and runs: train, sample, reconstruct, report, models."""
from __future__ import annotations

import argparse
import dataclasses
import functools
import shlex
import sys
from typing import TYPE_CHECKING

from genlab.cli.commands import COMMANDS
from genlab.cli.common import (
    MAX_IMAGES,
    add_config_flags,
    add_data_flags,
    add_device_flag,
    add_field_flag,
    add_threads_flag,
    add_weights_flag,
    add_zoom_flag,
    check_zoom,
    flag_name,
    given,
    given_threads,
    in_range,
    open_trained_run,
    plain_type,
)
from genlab.config import field_types
from genlab.errors import ConfigError
from genlab.models.table import SET_FROM_DATA, TABLE
from genlab.options import MAX_TENSORBOARD_EVERY, TENSORBOARD_EVERY, TrainConfig
from genlab.plugins import MODELS_GROUP, has_entry_points, warn
from genlab.runs import layout
from genlab.runs.layout import in_run

if TYPE_CHECKING:
    from collections.abc import Mapping

    from genlab.models.registry import ModelSpec
    from genlab.models.table import Row

TUNED_TRAIN_FLAGS = ("lr", "beta1", "batch_size")  # defaults come from the model's registry entry


def known_models() -> Mapping[str, Row | ModelSpec]:
    """Every model by name, as the flags and `genlab models` need it: the built-in table (no torch), unless
    models were added, by installed packages' entry points or by register_model in this process (which imported
    the registry): then the full registry, theirs included."""
    if "genlab.models.registry" not in sys.modules and not has_entry_points(MODELS_GROUP):
        return TABLE
    from genlab.models.registry import MODELS, load_entry_points

    load_entry_points()
    return MODELS


def add_model_flags(parser: argparse.ArgumentParser, only: str | None = None) -> None:
    """One flag per config field of every registered model. With `only` (`genlab train MODEL`) the help shows that
    model's flags with its defaults and hides the others' (still parsed, so that a flag of another model is
    answered "MODEL has no option --x"); else it shows them all, naming the models that have each. A field whose
    flag genlab train already has is an error for its model when named, and left out of the flags."""
    group = parser.add_argument_group(f"{only} options" if only else
                                      "model options (defaults depend on the model: see `genlab models -v`)")
    owners: dict[str, list[str]] = {}
    fields: dict[str, tuple[dataclasses.Field, object]] = {}
    models = known_models()
    names = [only, *(name for name in models if name != only)] if only else list(models)
    for name in names:
        config_cls = models[name].config_cls
        for field in dataclasses.fields(config_cls):
            kind = field_types(config_cls)[field.name]
            if field.name in SET_FROM_DATA or field.name in fields:
                owners.get(field.name, []).append(name)
                continue
            clash = taken_flag(parser, field, kind)
            if clash and name == only:
                parser.error(f"model {name!r} ({config_cls.__module__}.{config_cls.__qualname__}) has a field "
                             f"{field.name} whose flag {clash} is already an option of genlab train; the model's "
                             f"package must rename the field")
            if not clash:
                fields[field.name] = (field, kind)
                owners[field.name] = [name]
    defaults = model_defaults(only) if only else {}
    for field_name, (field, kind) in fields.items():
        text = field.metadata.get("help", "")
        if only:
            text = f"{text} (default {defaults[field_name]})" if only in owners[field_name] else argparse.SUPPRESS
        elif len(owners[field_name]) < len(names):
            text += f" [{', '.join(owners[field_name])}]"
        add_field_flag(group, field, kind, f"model__{field_name}", text, show_default=False)


def model_defaults(name: str) -> dict[str, object]:
    """The model's config as `genlab train MODEL` starts from it: the class's defaults, then the row's."""
    entry = known_models()[name]
    return {**{f.name: f.default for f in dataclasses.fields(entry.config_cls)}, **entry.defaults}


def taken_flag(parser: argparse.ArgumentParser, field: dataclasses.Field, kind: object) -> str | None:
    """The flag of a model field that the parser has already (a training or data option), else None."""
    flags = [flag_name(field.name)] + ([flag_name(f"no_{field.name}")] if plain_type(kind) is bool else [])
    return next((flag for flag in flags if flag in parser._option_string_actions), None)


def named_model(parser: argparse.ArgumentParser, words: list[str]) -> str | None:
    """The registered MODEL that `genlab train` words name (the values of its options skipped), else None."""
    skip = False
    for word in words:
        if skip or word == "--":
            skip = False
            continue
        if word.startswith("-"):
            action = parser._option_string_actions.get(word)
            skip = action is not None and action.nargs is None and action.option_strings[0] != "--help"
            continue
        return word if word in known_models() else None
    return None


def parse_train(parser: argparse.ArgumentParser, parse, args=None, namespace=None):
    """The train parser's own parse: the model flags first, those of the MODEL that args name (every model's
    without one), so that `genlab train MODEL --help` lists that model's options and no other's."""
    del parser.parse_known_args  # once: the class's own parse from now on
    add_model_flags(parser, named_model(parser, list(args or [])))
    return parse(args, namespace)


def tuned_help(name: str, what: str) -> str:
    """'Adam learning rate (default 0.001; dcgan 0.0002)': TrainConfig's default, then the models that differ."""
    special = [f"{model} {spec.train_defaults[name]}" for model, spec in known_models().items()
               if name in spec.train_defaults]
    default = getattr(TrainConfig(), name)
    return f"{what} (default {default}" + (f"; {', '.join(special)})" if special else ")")


def cmd_train(args: argparse.Namespace) -> int:
    from genlab.workflow import train_command

    if args.tensorboard_every is not None:
        if not args.tensorboard:
            raise ConfigError("--tensorboard-every sets the interval of --tensorboard's step scalars: give "
                              "--tensorboard as well")
        in_range("--tensorboard-every", args.tensorboard_every, 1, MAX_TENSORBOARD_EVERY)
    data_flags = {"spec": args.data, "data_dir": args.data_dir, "image_size": args.image_size,
                  "channels": args.channels}
    report = train_command(args.model, given(args, "model"), data_flags, given(args, "train"), args.config,
                           args.out, args.resume, shlex.join(["genlab", *args.argv]), args.tensorboard,
                           threads=given_threads(args),
                           tensorboard_every=args.tensorboard_every or TENSORBOARD_EVERY)
    if report is not None:  # under torchrun, on the process that writes
        print(f"report: {report}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from genlab import figures, latent

    in_range("-n", args.n, 1, MAX_IMAGES)
    in_range("--nrow", args.nrow, 1, MAX_IMAGES)
    check_zoom(args)
    latent.check_temperature(args.temperature)
    run = open_trained_run(args)
    if args.over_epochs:
        figure = figures.epoch_samples_figure(run, min(args.n, args.nrow), args.zoom)
        print(figures.save_picture(figure, run.path, args.out))
        return 0
    figure = figures.samples_figure(run, args.n, args.nrow, args.seed, args.zoom, args.temperature)
    print(figures.save_picture(figure, run.path, args.out))
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from genlab import figures

    in_range("-n", args.n, 1, MAX_IMAGES)
    in_range("the number of --images files", len(args.images or [1]), 1, MAX_IMAGES)
    check_zoom(args)
    run = open_trained_run(args)
    figure = figures.reconstruction_figure(run, args.n, args.data_dir, args.zoom, args.images)
    if figure.note:
        print(figure.note)
    print(figures.save_picture(figure, run.path, args.out))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from genlab.report import write_report

    print(write_report(args.run))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    models = known_models()
    if has_entry_points(MODELS_GROUP):  # the installed packages' models that were refused, a line each
        from genlab.models.registry import load_entry_points

        warn(load_entry_points())
    width = max(map(len, models))
    for name, spec in models.items():
        print(f"{name:<{width}}  {spec.description}")
        if args.verbose:
            config = spec.config_cls.from_dict({**spec.config_cls().to_dict(), **spec.defaults})
            print(" " * (width + 2) + ", ".join(f"{k}={v}" for k, v in config.to_dict().items()))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("train", help=COMMANDS["train"].help,
                            description=f"Train MODEL on a dataset; writes {layout.CONFIG}, {layout.WEIGHTS}, "
                                        f"{layout.STATE}, {layout.METRICS}, {layout.IMAGES}/ and {layout.REPORT} "
                                        f"into --out. With --config, a run's {layout.CONFIG} (or a JSON/YAML file "
                                        "in its shape) gives every setting; flags given beside it override its "
                                        "values.")
    p.add_argument("model", metavar="MODEL", nargs="?", help=f"one of {', '.join(known_models())} "
                                                             f"(optional with --config)")
    p.add_argument("--config", metavar="FILE", help=f"repeat or vary a run: its {layout.CONFIG}, or a JSON/YAML "
                                                    "file with model, model_config, data and train entries")
    add_data_flags(p)
    training = p.add_argument_group("training options")
    add_config_flags(training, TrainConfig, "train", helps={
        name: tuned_help(name, TrainConfig.__dataclass_fields__[name].metadata["help"])
        for name in TUNED_TRAIN_FLAGS})
    add_threads_flag(training)
    p.add_argument("--out", help="run directory (default runs/MODEL-DATA)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last complete epoch; options not given are the "
                        "run's own, and options that would change what the run is are refused")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log loss parts, each epoch's images and the config as hyperparameters to "
                        f"OUT/{layout.TENSORBOARD}/ (needs the tensorboard package: pip install "
                        "'genlab[tensorboard]')")
    p.add_argument("--tensorboard-every", type=int, metavar="N", default=None,
                   help=f"with --tensorboard, log the mean loss parts every N optimizer steps (default "
                        f"{TENSORBOARD_EVERY})")
    p.parse_known_args = functools.partial(parse_train, p, p.parse_known_args)  # the model flags, per MODEL
    p.set_defaults(handler=cmd_train,
                   on_interrupt="; completed epochs are saved: continue with the same command and --resume")

    p = commands.add_parser("sample", help=COMMANDS["sample"].help,
                            description="Decode prior samples of a trained VAE or GAN run into an image grid.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--nrow", type=int, default=8, help="images per grid row (default 8)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--temperature", type=float, default=1.0, metavar="T",
                   help="draw z ~ N(0, T^2 I), the prior's spread scaled by T > 0 (default 1; below 1 trades "
                        "variety for typical images); a VampPrior model samples at 1 only")
    add_device_flag(p)
    add_threads_flag(p)
    add_zoom_flag(p)
    add_weights_flag(p)
    p.add_argument("--over-epochs", action="store_true",
                   help="instead: one row per epoch of the fixed-noise samples the run saved while training (the "
                        f"first --nrow of each; default --out {in_run(layout.IMAGES, 'samples-over-epochs.png')})")
    p.add_argument("--out", help=f"PNG path (default {in_run(layout.IMAGES, 'samples.png')})")
    p.set_defaults(handler=cmd_sample)

    p = commands.add_parser("reconstruct", help=COMMANDS["reconstruct"].help,
                            description="Encode and decode the first N test images; originals above, "
                                        "reconstructions below.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("-n", type=int, default=8, help="number of test images (default 8)")
    p.add_argument("--images", nargs="+", metavar="FILE",
                   help="reconstruct these PNG/JPEG files instead of test images, made the run's shape as folder: "
                        "data is (center-cropped to a square, resized, gray or RGB)")
    add_data_flags(p, with_name=False)
    add_device_flag(p)
    add_threads_flag(p)
    add_zoom_flag(p)
    add_weights_flag(p)
    p.add_argument("--out", help=f"PNG path (default {in_run(layout.IMAGES, 'reconstructions.png')})")
    p.set_defaults(handler=cmd_reconstruct)

    p = commands.add_parser("report", help=COMMANDS["report"].help,
                            description="Write the self-contained HTML report of a run and print its path.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.set_defaults(handler=cmd_report)

    p = commands.add_parser("models", help=COMMANDS["models"].help,
                            description="List every registered model with a one-line description.")
    p.add_argument("-v", "--verbose", action="store_true", help="also print each model's default config")
    p.set_defaults(handler=cmd_models)
