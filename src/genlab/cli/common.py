"""Flags and helpers shared by the command modules; every config-backed flag is derived here, once."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from genlab.config import field_types
from genlab.errors import ConfigError
from genlab.options import WEIGHT_CHOICES, ThreadOptions

if TYPE_CHECKING:
    from genlab.runs.store import Run

MAX_IMAGES = 10_000  # images one picture command draws: a grid past this is a typo, not a figure


def at_least(flag: str, value: float, least: float) -> None:
    """A one-line ConfigError unless value >= least: call before any loading, so bad flags fail at once."""
    if value < least:
        raise ConfigError(f"{flag} must be at least {least}, got {value}")


def in_range(flag: str, value: float, least: float, most: float) -> None:
    """A one-line ConfigError unless least <= value <= most."""
    at_least(flag, value, least)
    if value > most:
        raise ConfigError(f"{flag} must be at most {most}, got {value}")


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def plain_type(kind: Any) -> Any:
    """int for `int | None`, the annotation itself otherwise."""
    if typing.get_origin(kind) in (types.UnionType, typing.Union):
        return next(a for a in typing.get_args(kind) if a is not type(None))
    return kind


def field_parsing(field: dataclasses.Field, kind: Any, metavar: str | None = None, switch: bool = False) -> dict:
    """argparse's action or type, nargs, choices and metavar for one config field of annotation `kind`."""
    if kind is bool:  # a switch is the one flag that changes the default: --NAME, or --no-NAME when it is on
        return {"action": ("store_false" if field.default else "store_true") if switch
                else argparse.BooleanOptionalAction}
    if typing.get_origin(kind) is tuple:
        element = typing.get_args(kind)[0]
        return {"nargs": "+", "type": element, "metavar": metavar or ("N" if element is int else field.name.upper())}
    if field.metadata.get("choices"):
        return {"type": kind, "choices": field.metadata["choices"], "metavar": metavar}
    return {"type": kind, "metavar": metavar or field.name.upper()}


def add_field_flag(group: Any, field: dataclasses.Field, kind: Any, dest: str, help_text: str,
                   show_default: bool = True, aliases: tuple[str, ...] = (), metavar: str | None = None,
                   positional: bool = False, switch: bool = False) -> None:
    """One flag for one config field: its type, choices and help come from the field; the default is
    left out of the namespace (argparse.SUPPRESS) so that only flags the user gave are passed on.
    positional: an optional positional argument instead; switch: see field_parsing."""
    kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": help_text,
                              **field_parsing(field, plain_type(kind), metavar, switch)}
    if show_default and field.default is not None and not isinstance(field.default, bool):
        kwargs["help"] += f" (default {field.default})"
    if positional:
        group.add_argument(dest, nargs="?", **{**kwargs, "metavar": field.name.upper()})
        return
    name = f"no_{field.name}" if switch and field.default is True else field.name
    group.add_argument(*aliases, flag_name(name), dest=dest, **kwargs)


def add_config_flags(group: Any, config_cls: type, prefix: str, only: Iterable[str] | None = None,
                     helps: dict[str, str] | None = None, aliases: dict[str, tuple[str, ...]] | None = None,
                     metavars: dict[str, str] | None = None, positionals: Iterable[str] = (),
                     switches: bool = False) -> None:
    """Flags for the fields of a config class (all, or `only`), stored as PREFIX__FIELD when given; the fields
    named in `positionals` are optional positional arguments, and with `switches` a bool field is one flag."""
    kinds, helps, aliases, metavars = field_types(config_cls), helps or {}, aliases or {}, metavars or {}
    wanted = None if only is None else set(only)
    for field in dataclasses.fields(config_cls):
        if wanted is None or field.name in wanted:
            text = helps.get(field.name, field.metadata.get("help", ""))
            add_field_flag(group, field, kinds[field.name], f"{prefix}__{field.name}", text,
                           show_default=field.name not in helps, aliases=aliases.get(field.name, ()),
                           metavar=metavars.get(field.name), positional=field.name in positionals, switch=switches)


def given(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """The PREFIX__FIELD values the user gave on the command line, by field name; lists become tuples."""
    found = {k.removeprefix(prefix + "__"): v for k, v in vars(args).items() if k.startswith(prefix + "__")}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in found.items()}


def add_weights_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", choices=WEIGHT_CHOICES, default="best",
                        help="best: the moving average of the weights, where the run kept one (runs trained "
                             "with --ema), else the epoch of the best validation loss, where the run kept one (runs "
                             "trained with --val-images); last: the last epoch's trained weights (default best)")


def open_trained_run(args: argparse.Namespace) -> Run:
    """load_run with --device and --weights, saying on stderr which weights a run with a validation split uses."""
    from genlab.runs.store import load_run
    from genlab.threads import use_threads

    use_threads(given_threads(args))  # before the weights load; serve has no --threads: $GENLAB_THREADS alone
    run = load_run(args.run, getattr(args, "device", "cpu"), args.weights)  # serve has no --device: the CPU
    note = run.weights_note()
    if note:
        print(f"genlab: {note}", file=sys.stderr, flush=True)
    return run


def add_device_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto picks CUDA when present (default auto)")


def add_threads_flag(parser: Any) -> None:
    """--threads, from ThreadOptions: every heavy command's."""
    add_config_flags(parser, ThreadOptions, "threads", metavars={"threads": "N"})


def given_threads(args: argparse.Namespace) -> int | None:
    """--threads N as given, else None (then $GENLAB_THREADS, else torch's choice: genlab.threads)."""
    return ThreadOptions.from_dict(given(args, "threads")).threads


def add_data_flags(parser: argparse.ArgumentParser, with_name: bool = True) -> None:
    if with_name:
        parser.add_argument("--data", help="fashion-mnist, mnist, cifar10, shapes, sprites (sprites:N for N of its "
                                           "images), faces (faces:N), a registered dataset, folder:PATH, "
                                           "dsprites:PATH or celeba:PATH (default fashion-mnist)")
    parser.add_argument("--data-dir", help="folder searched first for dataset files (then $GENLAB_DATA, "
                                           "~/.cache/genlab, /usr/share/datasets)")
    if with_name:
        parser.add_argument("--image-size", type=int, help="resize images to this square size (4..2048)")
        parser.add_argument("--channels", type=int, choices=(1, 3), help="1 (grayscale) or 3 (RGB)")


def add_zoom_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zoom", type=int, help="enlarge each picture this many times (default: the grid is about "
                                                 "600 pixels wide)")


def check_zoom(args: argparse.Namespace) -> None:
    """--zoom, when given, is a whole enlargement from 1 to 64."""
    if getattr(args, "zoom", None) is not None:
        in_range("--zoom", args.zoom, 1, 64)
