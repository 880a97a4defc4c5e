"""Epoch time and final loss: a plain tutorial-style loop beside genlab's trainer, in one run.

    python benchmarks/train_speed.py [--model vae|conv-vae|conv-vae-4x4|conv-vae-64|beta-vae-conv64|dcgan|dcgan-28]
                                     [--epochs 3]
                                     [--batch-size 128] [--device cpu|cuda] [--precision bf16] [--compile]
                                     [--no-channels-last] [--json]

Epochs of the two loops alternate, so that load on a shared machine hits both alike. The references
(benchmarks/reference_loops.py) are the standard tutorial loops: torchvision's FashionMNIST with
ToTensor, a shuffling DataLoader, `.to(device)` per batch, `.item()` per step; conv-vae-64 trains on genlab's
`faces` (64x64 RGB) from a TensorDataset of its uint8 images, converted per batch; beta-vae-conv64 (the
disentanglement studies' net, beta 4, Adam 1e-4, batch 64) likewise on genlab's `sprites` (64x64 binary, unpacked
for the plain loop; genlab trains on the same unpacked images). genlab trains the same
architecture from the same seed on the same data with the same batch size. The DCGAN runs at 64x64
(images resized), batch 64 by default; `dcgan-28` is the same loop and genlab's DCGAN on the 28x28 images (the
networks start 4 -> 7 with a 3x3 kernel, then double); `--train-images N` trains on the first N images only, for a
CPU, where a full 64x64 DCGAN epoch takes many minutes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))  # reference_loops sits beside this script

from reference_loops import dcgan_epochs, faces_vae_epochs, sprites_vae_epochs, vae_epochs

from genlab import TrainConfig, create_model, load_dataset
from genlab.models.registry import data_fields, model_spec
from genlab.training.trainer import Trainer
from genlab.world import resolve_device

REFERENCES = {"vae": vae_epochs, "conv-vae": vae_epochs, "conv-vae-4x4": vae_epochs, "conv-vae-64": faces_vae_epochs,
              "beta-vae-conv64": sprites_vae_epochs, "dcgan": dcgan_epochs, "dcgan-28": dcgan_epochs}
GANS = ("dcgan", "dcgan-28")
LOSS_NAMES = {name: "train D+G loss" if name in GANS else "test loss (nats)" for name in REFERENCES}
DATA = {"conv-vae-64": "faces", "beta-vae-conv64": "sprites"}  # the others train on Fashion-MNIST
GENLAB_MODEL = {"dcgan-28": "dcgan"}  # the benchmark's name -> the model genlab trains


def genlab_dataset(args):
    """Fashion-MNIST as genlab loads it: 64x64 for the DCGAN, optionally the first N training images."""
    data = load_dataset(DATA.get(args.model, "fashion-mnist"), data_dir=args.data_dir,
                        image_size=64 if args.model == "dcgan" else None)
    if args.train_images:
        extras = {name: getattr(data, name)[:args.train_images] for name in ("train_attributes", "train_factors")
                  if getattr(data, name, None) is not None}
        data = dataclasses.replace(data, train_x=data.train_x[:args.train_images],
                                   train_y=data.train_y[:args.train_images], **extras)
    if args.model in GANS:  # its epoch figure is the training loss: evaluate on a token test set
        data = dataclasses.replace(data, test_x=data.test_x[:args.batch_size], test_y=data.test_y[:args.batch_size])
    return data


def genlab_epochs(args, device: torch.device):
    """Yields (train seconds, loss) per epoch of genlab's trainer on the same model and data."""
    data = genlab_dataset(args)
    torch.manual_seed(args.seed)
    name = args.genlab_model
    model = create_model(name, **data_fields(name, data.image_shape, len(data.classes)))
    # the settings the model prefers in the registry, as `genlab train` applies them (the batch size is args')
    preferred = {k: v for k, v in model_spec(name).train_defaults.items() if k != "batch_size"}
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, device=device.type,
                         precision=args.precision, compile=args.compile, channels_last=args.channels_last,
                         **preferred)
    torch.manual_seed(args.seed)  # as train() does for a fresh run
    trainer = Trainer(model, data, config, log=lambda line: None, progress=False)
    with tqdm(disable=True) as bar:
        for _ in range(args.epochs):
            record = trainer.run_epoch(bar)
            split = "train" if args.model in GANS else "test"
            yield record["epoch_seconds"], record[split]["loss"]


def run_interleaved(args, device: torch.device) -> dict:
    """Alternate one epoch of each, so that load on a shared machine hits both loops alike."""
    loops = {"tutorial": REFERENCES[args.model](args, device), "genlab": genlab_epochs(args, device)}
    results = {name: {"epoch_seconds": [], "loss": []} for name in loops}
    rng = {name: torch.manual_seed(args.seed).get_state() for name in loops}  # each loop its own noise
    for _ in range(args.epochs):
        for name, epochs in loops.items():
            torch.set_rng_state(rng[name])
            seconds, loss = next(epochs)
            rng[name] = torch.get_rng_state()
            results[name]["epoch_seconds"].append(seconds)
            results[name]["loss"].append(loss)
    for epochs in loops.values():
        epochs.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vae", choices=sorted(REFERENCES))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, help="default 128 (64 for the DCGANs)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--train-images", type=int, help="train on the first N images only (both loops)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="genlab's precision")
    parser.add_argument("--compile", action="store_true", help="genlab with torch.compile")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="genlab's memory format: NHWC, or NCHW with --no-channels-last (default: genlab's "
                             "choice, NHWC for conv models on the CPU)")
    parser.add_argument("--data-dir")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    args.genlab_model = GENLAB_MODEL.get(args.model, args.model)
    args.batch_size = args.batch_size or model_spec(args.genlab_model).train_defaults.get("batch_size", 128)
    device = resolve_device(args.device)
    results = run_interleaved(args, device)
    mean = {name: statistics.mean(r["epoch_seconds"]) for name, r in results.items()}
    summary = {
        "model": args.model, "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "epochs": args.epochs,
        "batch_size": args.batch_size, "seed": args.seed, "train_images": args.train_images,
        "genlab_options": {"precision": args.precision, "compile": args.compile,
                           "channels_last": "auto" if args.channels_last is None else args.channels_last},
        "loss": LOSS_NAMES[args.model], "results": results,
        "mean_epoch_seconds": mean, "speedup": mean["tutorial"] / mean["genlab"],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print_table(args, device, results, mean, summary)


def print_table(args, device: torch.device, results: dict, mean: dict, summary: dict) -> None:
    options = ", ".join(f"{k} {v}" for k, v in summary["genlab_options"].items())
    subset = f", first {args.train_images} images" if args.train_images else ""
    print(f"{args.model} on {DATA.get(args.model, 'fashion-mnist')}{subset}, {args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, "
          f"{device} ({torch.get_num_threads()} threads, torch {torch.__version__}); genlab: {options}")
    loss_name = LOSS_NAMES[args.model]
    print(f"{'loop':<10} {'epoch s (mean)':>15} {'epoch s (each)':>24} {'final ' + loss_name:>26}")
    for name, r in results.items():
        each = " ".join(f"{s:.2f}" for s in r["epoch_seconds"])
        print(f"{name:<10} {mean[name]:>15.2f} {each:>24} {r['loss'][-1]:>26.2f}")
    difference = results["genlab"]["loss"][-1] - results["tutorial"]["loss"][-1]
    print(f"speedup (tutorial / genlab epoch time): {summary['speedup']:.2f}x; "
          f"final loss difference (genlab - tutorial): {difference:+.2f}")


if __name__ == "__main__":
    main()
