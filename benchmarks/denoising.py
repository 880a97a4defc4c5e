"""Does denoising training pay? A denoising-ae and a plain ae of the same size, on the same noisy test images.

    python benchmarks/denoising.py RUN_DENOISING RUN_PLAIN [--noise 0.3] [--seed 0]

Both runs must be autoencoders trained on the same dataset with the same architecture. Each test image
gets additive Gaussian noise (std --noise, clipped to [0, 1], one seeded draw shared by both models);
the table shows the squared error of each model's reconstruction against the *clean* image, summed over
pixels and averaged over the test set, and the same on clean inputs for reference.
"""
from __future__ import annotations

import argparse

import torch

from genlab import losses
from genlab.data.batches import to_unit_float
from genlab.data.catalog import load_dataset
from genlab.runs.store import load_run


@torch.no_grad()
def squared_error(model, inputs: torch.Tensor, clean: torch.Tensor, batch_size: int = 1000) -> float:
    """Mean over images of sum over pixels of (reconstruct(inputs) - clean)^2."""
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, inputs.shape[0], batch_size):
        x_hat = model.reconstruct(inputs[start:start + batch_size])
        total += losses.mse_sum(x_hat, clean[start:start + batch_size]).sum()  # no read-back per batch
    return float(total) / inputs.shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("denoising", metavar="RUN_DENOISING")
    parser.add_argument("plain", metavar="RUN_PLAIN")
    parser.add_argument("--noise", type=float, default=0.3, help="std of the added Gaussian noise (default 0.3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    runs = {"denoising": load_run(args.denoising), "plain": load_run(args.plain)}
    shapes = {name: run.model.config.to_dict() | {"corruption": None, "corruption_level": None}
              for name, run in runs.items()}
    if shapes["denoising"] != shapes["plain"]:
        raise SystemExit(f"the two runs differ in more than the corruption: {shapes}")
    spec = runs["plain"].config["data"].get("spec", runs["plain"].config["data"]["name"])
    clean = to_unit_float(load_dataset(spec).test_x)
    # not AE.corrupt: one seeded draw, the same for both models
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(args.seed))
    noisy = (clean + args.noise * noise).clamp(0, 1)
    print(f"{clean.shape[0]} test images of {spec}; Gaussian noise std {args.noise}, clipped, seed {args.seed}")
    print(f"{'model':<28} {'error on noisy inputs':>22} {'error on clean inputs':>22}")
    for name, run in runs.items():
        label = f"{run.config['model']} ({name})"
        print(f"{label:<28} {squared_error(run.model, noisy, clean):>22.2f} "
              f"{squared_error(run.model, clean, clean):>22.2f}")
    print("errors: squared error against the clean image, summed over pixels, mean over images")


if __name__ == "__main__":
    main()
