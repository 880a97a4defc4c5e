"""The `genlab` command: train, sample, reconstruct, report, models, data."""
from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from genlab import convarith, convarith_pictures
from genlab.data.batches import to_unit_float
from genlab.data.catalog import fetch_dataset, list_datasets, load_dataset
from genlab.errors import ConfigError, GenlabError, RunError
from genlab.images import load_image, make_grid, save_gif, save_png
from genlab.models.contract import AutoEncoder, Generative
from genlab.models.registry import MODELS, create_model, data_fields, model_spec
from genlab.report import write_report
from genlab.train.checkpoint import load_run
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


def add_data_flags(parser: argparse.ArgumentParser, with_name: bool = True) -> None:
    if with_name:
        parser.add_argument("--data", default="fashion-mnist",
                            help="fashion-mnist, mnist, shapes or folder:PATH (default fashion-mnist)")
    parser.add_argument("--data-dir", help="folder searched first for dataset files (then $GENLAB_DATA, "
                                           "~/.cache/genlab, /usr/share/datasets)")
    if with_name:
        parser.add_argument("--image-size", type=int, help="resize images to this square size")
        parser.add_argument("--channels", type=int, choices=(1, 3), help="1 (grayscale) or 3 (RGB)")


def default_out(model: str, data: str) -> Path:
    return Path("runs") / re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{model}-{Path(data).name if ':' in data else data}")


def train_config(args: argparse.Namespace) -> TrainConfig:
    """Flags the user gave, else the model's preferred training settings, else TrainConfig's defaults."""
    given = {name: getattr(args, name) for name in TUNED_TRAIN_FLAGS if getattr(args, name) is not None}
    preferred = {**model_spec(args.model).train_defaults, **given}
    return TrainConfig(epochs=args.epochs, max_steps=args.max_steps, seed=args.seed, device=args.device, **preferred)


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


def run_test_images(run_config: dict[str, Any], n: int, data_dir: str | None) -> torch.Tensor:
    """The first n test images of the dataset a run was trained on, uint8."""
    data = run_config.get("data", {})
    dataset = load_dataset(data.get("spec", data.get("name", "")), data_dir=data_dir or data.get("data_dir"),
                           image_size=data.get("image_size"), channels=data.get("channels"))
    return dataset.test_x[:n]


def cmd_sample(args: argparse.Namespace) -> int:
    run = load_run(args.run, resolve_device(args.device))
    if not isinstance(run.model, Generative):
        raise RunError(f"{run.config['model']} cannot sample: it has no prior to draw from; "
                       f"train a VAE or a GAN (e.g. `genlab train vae`) to sample")
    with torch.no_grad():
        images = run.model.sample(args.n, generator=torch.Generator().manual_seed(args.seed))
    out = Path(args.out) if args.out else run.path / "images" / "samples.png"
    print(save_png(make_grid(images.cpu(), nrow=args.nrow), out))
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    run = load_run(args.run, resolve_device(args.device))
    if not isinstance(run.model, AutoEncoder):
        raise RunError(f"{run.config['model']} cannot reconstruct: it has no encoder; "
                       f"reconstruct with an autoencoder or VAE run")
    x = to_unit_float(run_test_images(run.config, args.n, args.data_dir)).to(next(run.model.parameters()).device)
    with torch.no_grad():
        grid = make_grid(torch.cat([x, run.model.reconstruct(x)]).cpu(), nrow=args.n)
    out = Path(args.out) if args.out else run.path / "images" / "reconstructions.png"
    print(save_png(grid, out))
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


def cmd_data_list(args: argparse.Namespace) -> int:
    for status in list_datasets(args.data_dir):
        print(f"{status.name:<14} {'found  ' if status.available else 'missing'}  {status.detail}")
    print("folder:PATH    a folder of PNG/JPEG images (sub-folders become labels)")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    print(fetch_dataset(args.name, args.data_dir))
    return 0


def cmd_convarith_explain(args: argparse.Namespace) -> int:
    print(convarith.explain(args.i, args.k, args.s, args.p, args.output_padding, args.d))
    return 0


def cmd_convarith_demo(args: argparse.Namespace) -> int:
    if args.size < 8:
        raise ConfigError(f"--size must be at least 8 pixels, got {args.size}")
    image = load_image(args.image, size=args.size).float() / 255
    out = save_png(convarith_pictures.conv_demo(image, args.k, args.s, args.p), args.out)
    print(f"{out}: rows box blur, edge; columns original, after conv (true size), after transposed conv")
    return 0


def cmd_convarith_animate(args: argparse.Namespace) -> int:
    o = convarith.conv_output_size(args.i, args.k, args.s, args.p, args.d)  # checks the numbers first
    a = args.output_padding
    if a is None:
        a = convarith.matching_output_padding(args.i, args.k, args.s, args.p, args.d)
    name = f"i{args.i}-k{args.k}-s{args.s}-p{args.p}" + (f"-d{args.d}" if args.d > 1 else "")
    out = Path(args.out_dir)
    print(save_gif(convarith_pictures.conv_frames(args.i, args.k, args.s, args.p, args.d), out / f"conv-{name}.gif",
                   args.frame_ms))
    print(save_gif(convarith_pictures.transposed_frames(o, args.k, args.s, args.p, a, args.d),
                   out / f"transposed-{name}-a{a}.gif", args.frame_ms))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genlab", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    p = commands.add_parser("train", help="train a model and write a run directory",
                            description="Train MODEL on a dataset; writes config.json, model.safetensors, "
                                        "state.pt, metrics.jsonl, images/ and report.html into --out.")
    p.add_argument("model", metavar="MODEL", help=f"one of {', '.join(MODELS)}")
    add_data_flags(p)
    p.add_argument("--epochs", type=int, default=10, help="epochs to train (default 10)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps in total")
    p.add_argument("--batch-size", type=int, help="default 128 (64 for dcgan)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3; 2e-4 for dcgan)")
    p.add_argument("--beta1", type=float, help="Adam's first-moment decay (default 0.9; 0.5 for dcgan)")
    p.add_argument("--seed", type=int, default=0, help="seeds initialisation, shuffling and noise (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--out", help="run directory (default runs/MODEL-DATA)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_model_flags(p)
    p.set_defaults(handler=cmd_train)

    p = commands.add_parser("sample", help="draw samples from a trained VAE or GAN",
                            description="Decode prior samples of a trained VAE or GAN run into an image grid.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--nrow", type=int, default=8, help="images per grid row (default 8)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--out", help="PNG path (default RUN/images/samples.png)")
    p.set_defaults(handler=cmd_sample)

    p = commands.add_parser("reconstruct", help="reconstruct test images with a trained model",
                            description="Encode and decode the first N test images; originals above, "
                                        "reconstructions below.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("-n", type=int, default=8, help="number of test images (default 8)")
    add_data_flags(p, with_name=False)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
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

    p = commands.add_parser("data", help="list or fetch datasets", description="List or fetch datasets.")
    data_commands = p.add_subparsers(title="data commands", metavar="ACTION", required=True)
    q = data_commands.add_parser("list", help="each dataset: where it was found, or why not",
                                 description="Show each dataset and where it was found, or why not.")
    add_data_flags(q, with_name=False)
    q.set_defaults(handler=cmd_data_list)
    q = data_commands.add_parser("fetch", help="find or download a dataset, verifying checksums",
                                 description="Find a dataset or download it with checksum verification.")
    q.add_argument("name", metavar="NAME", help="fashion-mnist or mnist")
    add_data_flags(q, with_name=False)
    q.set_defaults(handler=cmd_data_fetch)

    p = commands.add_parser("convarith", help="convolution arithmetic: sizes, the matrix C, pictures",
                            description="A convolution as a sparse matrix C, its transposed convolution as C^T "
                                        "(Dumoulin & Visin, 'A guide to convolution arithmetic').")
    convarith_commands = p.add_subparsers(title="convarith commands", metavar="ACTION", required=True)
    explain_q = convarith_commands.add_parser(
        "explain", help="print the sizes, C as a table and the transpose as a direct convolution",
        description="Print the output sizes, the matrix C of the convolution as a table of kernel entries, "
                    "and the transposed convolution C^T as a stride-1 direct convolution.")
    demo_q = convarith_commands.add_parser(
        "demo", help="an image after a strided conv and after the matching transposed conv",
        description="Write a PNG: rows box blur and edge kernel; columns the original, after the strided "
                    "convolution (true size) and after the transposed convolution back to full size.")
    demo_q.add_argument("image", metavar="IMAGE", help="a PNG or JPEG file")
    demo_q.add_argument("--size", type=int, default=128, help="centre-crop and resize to this square (default 128)")
    demo_q.add_argument("--out", default="convarith-demo.png", help="PNG path (default convarith-demo.png)")
    animate_q = convarith_commands.add_parser(
        "animate", help="GIFs of the kernel sliding, for a conv and its transpose",
        description="Write conv-*.gif and transposed-*.gif: the kernel sliding over the (padded, and for the "
                    "transpose zero-stretched) input, one frame per output cell.")
    animate_q.add_argument("--out-dir", default=".", help="folder for the two GIFs (default .)")
    animate_q.add_argument("--frame-ms", type=int, default=500, help="milliseconds per frame (default 500)")
    for q, (i, k, s, pad) in ((explain_q, (4, 3, 1, 0)), (demo_q, (None, 3, 2, 1)), (animate_q, (5, 3, 2, 1))):
        if i is not None:
            q.add_argument("-i", type=int, default=i, help=f"input size (default {i})")
        q.add_argument("-k", type=int, default=k, help=f"kernel size (default {k})")
        q.add_argument("-s", type=int, default=s, help=f"stride (default {s})")
        q.add_argument("-p", type=int, default=pad, help=f"zero padding (default {pad})")
        if i is not None:
            q.add_argument("-d", type=int, default=1, help="dilation (default 1)")
            q.add_argument("--output-padding", type=int, help="of the transposed convolution (default: the one "
                                                              "that makes C^T return size i)")
    explain_q.set_defaults(handler=cmd_convarith_explain)
    demo_q.set_defaults(handler=cmd_convarith_demo)
    animate_q.set_defaults(handler=cmd_convarith_animate)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.handler(args)
    except GenlabError as e:
        print(f"genlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genlab: interrupted; completed epochs are saved: continue with the same command and --resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
