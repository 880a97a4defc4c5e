"""Commands on models and runs: train, sample, reconstruct, report, models."""
from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
from pathlib import Path
from typing import Any

import torch

from genlab.cli.common import add_data_flags, add_device_flag, at_least, run_test_images
from genlab.data.batches import to_unit_float
from genlab.data.catalog import load_dataset
from genlab.errors import ConfigError, RunError
from genlab.images import make_grid, save_image
from genlab.models.contract import AutoEncoder, Generative
from genlab.models.registry import MODELS, create_model, data_fields, model_spec
from genlab.nn import module_device
from genlab.report import write_report
from genlab.train.checkpoint import load_run
from genlab.train.steps import PRECISIONS
from genlab.train.trainer import TrainConfig, resolve_device, train

TUNED_TRAIN_FLAGS = ("lr", "beta1", "batch_size")  # defaults come from the model's registry entry
HIDDEN_MODEL_FIELDS = {"image_shape", "n_classes"}  # set from the data, not by hand


def model_fields() -> dict[str, tuple[dataclasses.Field, list[str]]]:
    """Every config field of every registered model, with the models that have it."""
    fields: dict[str, tuple[dataclasses.Field, list[str]]] = {}
    for name, spec in MODELS.items():
        for field in dataclasses.fields(spec.config_cls):
            if field.name not in HIDDEN_MODEL_FIELDS:
                fields.setdefault(field.name, (field, []))[1].append(name)
    return fields


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per model config field, derived from the dataclasses (only given flags are passed on)."""
    group = parser.add_argument_group("model options (defaults depend on the model: see `genlab models -v`)")
    for name, (field, owners) in model_fields().items():
        flag, default = "--" + name.replace("_", "-"), field.default
        used_by = "" if len(owners) == len(MODELS) else f" [{', '.join(owners)}]"
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "metavar": name.upper(),
                                  "help": field.metadata.get("help", "") + used_by}
        if field.metadata.get("choices"):
            kwargs["choices"] = field.metadata["choices"]
        if isinstance(default, bool):
            del kwargs["metavar"]
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, tuple):
            kwargs.update(nargs="+", type=int, metavar="N")
        else:
            kwargs["type"] = type(default)
        group.add_argument(flag, dest=f"model__{name}", **kwargs)


def model_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The model flags the user gave; a flag the chosen model lacks is an error, not ignored."""
    given = {k.removeprefix("model__"): v for k, v in vars(args).items() if k.startswith("model__")}
    valid = set(model_spec(args.model).config_cls.field_names())
    wrong = sorted(set(given) - valid)
    if wrong:
        flags = ", ".join("--" + w.replace("_", "-") for w in wrong)
        raise ConfigError(f"model {args.model!r} has no option {flags}; see `genlab train --help`")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}


def default_out(model: str, data: str) -> Path:
    return Path("runs") / re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{model}-{Path(data).name if ':' in data else data}")


def tuned_help(name: str, what: str) -> str:
    """'Adam learning rate (default 0.001; dcgan 0.0002)': TrainConfig's default, then the models that differ."""
    special = [f"{model} {spec.train_defaults[name]}" for model, spec in MODELS.items() if name in spec.train_defaults]
    default = getattr(TrainConfig(), name)
    return f"{what} (default {default}" + (f"; {', '.join(special)})" if special else ")")


def train_config(args: argparse.Namespace) -> TrainConfig:
    """Flags the user gave, else the model's preferred training settings, else TrainConfig's defaults."""
    given = {name: getattr(args, name) for name in TUNED_TRAIN_FLAGS if getattr(args, name) is not None}
    preferred = {**model_spec(args.model).train_defaults, **given}
    return TrainConfig(epochs=args.epochs, max_steps=args.max_steps, seed=args.seed, device=args.device,
                       binarize=args.binarize, precision=args.precision, compile=args.compile,
                       channels_last=args.channels_last, **preferred)


def cmd_train(args: argparse.Namespace) -> int:
    config = train_config(args)  # an unknown model name fails here, before any data is loaded
    overrides = model_overrides(args)
    data = load_dataset(args.data, data_dir=args.data_dir, image_size=args.image_size, channels=args.channels)
    torch.manual_seed(args.seed)  # model initialisation depends on the seed too
    model = create_model(args.model, **data_fields(args.model, data.image_shape, len(data.classes)), **overrides)
    out = Path(args.out) if args.out else default_out(args.model, args.data)
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else None
    extra = {"command": shlex.join(["genlab", *args.argv]),
             "data": {"spec": args.data, "data_dir": data_dir, "image_size": args.image_size,
                      "channels": args.channels}}
    print(f"training {args.model} on {data.name} {tuple(data.image_shape)}: "
          f"{data.train_x.shape[0]} train / {data.test_x.shape[0]} test images -> {out}", flush=True)
    train(model, data, config, out, resume=args.resume, extra=extra, on_epoch_end=lambda _: write_report(out))
    print(f"report: {write_report(out)}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    at_least("-n", args.n, 1)
    at_least("--nrow", args.nrow, 1)
    run = load_run(args.run, resolve_device(args.device))
    if not isinstance(run.model, Generative):
        raise RunError(f"{run.config['model']} cannot sample: it has no prior to draw from; "
                       f"train a VAE or a GAN (e.g. `genlab train vae`) to sample")
    with torch.no_grad():
        images = run.model.sample(args.n, generator=torch.Generator().manual_seed(args.seed))
    out = Path(args.out) if args.out else run.path / "images" / "samples.png"
    print(save_image(make_grid(images.cpu(), nrow=args.nrow), out))
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    at_least("-n", args.n, 1)
    run = load_run(args.run, resolve_device(args.device))
    if not isinstance(run.model, AutoEncoder):
        raise RunError(f"{run.config['model']} cannot reconstruct: it has no encoder; "
                       f"reconstruct with an autoencoder or VAE run")
    x = to_unit_float(run_test_images(run.config, args.n, args.data_dir)).to(module_device(run.model))
    with torch.no_grad():
        grid = make_grid(torch.cat([x, run.model.reconstruct(x)]).cpu(), nrow=args.n)
    out = Path(args.out) if args.out else run.path / "images" / "reconstructions.png"
    print(save_image(grid, out))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    print(write_report(args.run))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    width = max(map(len, MODELS))
    for name, spec in MODELS.items():
        print(f"{name:<{width}}  {spec.description}")
        if args.verbose:
            config = spec.config_cls.from_dict({**spec.config_cls().to_dict(), **spec.defaults})
            print(" " * (width + 2) + ", ".join(f"{k}={v}" for k, v in config.to_dict().items()))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("train", help="train a model and write a run directory",
                            description="Train MODEL on a dataset; writes config.json, model.safetensors, "
                                        "state.pt, metrics.jsonl, images/ and report.html into --out.")
    p.add_argument("model", metavar="MODEL", help=f"one of {', '.join(MODELS)}")
    add_data_flags(p)
    p.add_argument("--epochs", type=int, default=10, help="epochs to train (default 10)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps in total")
    p.add_argument("--batch-size", type=int, help=tuned_help("batch_size", "images per step"))
    p.add_argument("--lr", type=float, help=tuned_help("lr", "Adam learning rate"))
    p.add_argument("--beta1", type=float, help=tuned_help("beta1", "Adam's first-moment decay"))
    p.add_argument("--seed", type=int, default=0, help="seeds initialisation, shuffling and noise (default 0)")
    add_device_flag(p)
    p.add_argument("--out", help="run directory (default runs/MODEL-DATA)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="bf16: autocast the forward pass to bfloat16 (default fp32)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the loss (GANs: both networks); costs seconds to minutes up front")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format for conv models")
    p.add_argument("--binarize", choices=("none", "dynamic"), default="none",
                   help="dynamic: train on fresh Bernoulli samples of the pixels each batch and test on one "
                        "fixed-seed binarization, as in published binarized-data likelihoods (default none)")
    add_model_flags(p)
    p.set_defaults(handler=cmd_train,
                   on_interrupt="; completed epochs are saved: continue with the same command and --resume")

    p = commands.add_parser("sample", help="draw samples from a trained VAE or GAN",
                            description="Decode prior samples of a trained VAE or GAN run into an image grid.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--nrow", type=int, default=8, help="images per grid row (default 8)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    add_device_flag(p)
    p.add_argument("--out", help="PNG path (default RUN/images/samples.png)")
    p.set_defaults(handler=cmd_sample)

    p = commands.add_parser("reconstruct", help="reconstruct test images with a trained model",
                            description="Encode and decode the first N test images; originals above, "
                                        "reconstructions below.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("-n", type=int, default=8, help="number of test images (default 8)")
    add_data_flags(p, with_name=False)
    add_device_flag(p)
    p.add_argument("--out", help="PNG path (default RUN/images/reconstructions.png)")
    p.set_defaults(handler=cmd_reconstruct)

    p = commands.add_parser("report", help="(re)write RUN/report.html",
                            description="Write the self-contained HTML report of a run and print its path.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.set_defaults(handler=cmd_report)

    p = commands.add_parser("models", help="list the registered models",
                            description="List every registered model with a one-line description.")
    p.add_argument("-v", "--verbose", action="store_true", help="also print each model's default config")
    p.set_defaults(handler=cmd_models)
