"""The disentangling VAEs on `sprites` at one fixed step budget, with every disentanglement metric per model.

    python benchmarks/disentanglement.py [--steps 1000] [--lr 5e-4] [--points 0.05] [--out runs/disentanglement]

Each model trains from the same seed for --steps Adam steps of batch 64 (lr 5e-4, Burgess et al. 2018's; the
studies' 1e-4 learns too little in a budget this short; the discriminator of FactorVAE keeps its 1e-4) on the
procedural dSprites grid, the 64x64 conv net of the studies (4x4 stride-2 convs of 32, 32, 64, 64; 256 units; a
10-d latent; Bernoulli decoder); the papers train for 300,000 steps. The plain VAE (beta 1) is the reference
every row is read against. Then the seven metrics of genlab.disentanglement score each model's posterior means
on --points of disentanglement_lib's point counts, from the same evaluation seed. Nothing is tuned on these
metrics: every setting is the paper's default, except that AnnealedVAE's capacity reaches its 25 nats at the end
of the budget instead of after 100,000 steps (its schedule would otherwise barely start). Runs are kept under
--out (resumable: a finished model is not trained again), so `genlab explore traverse` can draw any of them.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from genlab.cli import main as genlab
from genlab.data.batches import to_unit_float
from genlab.data.catalog import load_dataset
from genlab.disentanglement import MetricSizes, evaluate_disentanglement
from genlab.latent import encode_means
from genlab.runs.store import load_run

# (row name, model, flags): the list, each at its paper's default
MODELS = (
    ("VAE", "beta-vae-conv64", ["--beta", "1"]),
    ("beta-VAE, beta 4", "beta-vae-conv64", ["--beta", "4"]),
    ("beta-VAE, beta 16", "beta-vae-conv64", ["--beta", "16"]),
    ("AnnealedVAE", "annealed-vae", []),
    ("FactorVAE", "factor-vae", []),
    ("beta-TCVAE, beta 6", "beta-tcvae", ["--beta", "6"]),
    ("DIP-VAE-I", "dip-vae-i", []),
)
COLUMNS = ("beta_vae", "factor_vae", "mig", "dci", "sap", "modularity", "explicitness")


def train(name: str, model: str, flags: list[str], out: Path, steps: int, lr: float, seed: int) -> float:
    """Train one model (resuming a finished or interrupted run); seconds spent."""
    start = time.perf_counter()
    extra = ["--capacity-steps", str(steps)] if model == "annealed-vae" else []
    extra += ["--lr", str(lr)]
    argv = ["train", model, "--data", "sprites", "--epochs", "1", "--max-steps", str(steps), "--val-images", "0",
            "--seed", str(seed), "--out", str(out), "--resume", *flags, *extra]
    if genlab(argv) != 0:
        raise SystemExit(f"training {name} failed: genlab {' '.join(argv)}")
    return time.perf_counter() - start


def score(out: Path, points: float, seed: int) -> dict:
    """The seven metrics of the run's posterior means, and their seconds."""
    run = load_run(out, "cpu")
    model = run.model.eval()
    source = load_dataset("sprites").factors
    start = time.perf_counter()
    scores = evaluate_disentanglement(lambda x: encode_means(model, to_unit_float(x)).double().numpy(), source,
                                      seed, sizes=MetricSizes().scaled(points))
    return scores | {"seconds": round(time.perf_counter() - start, 1)}


def row(name: str, s: dict, seconds: float) -> str:
    dci = s["dci"]
    return (f"| {name} | {s['beta_vae']:.3f} | {s['factor_vae']:.3f} | {s['mig']:.3f} | "
            f"{dci['disentanglement']:.3f} / {dci['completeness']:.3f} / {dci['informativeness']:.3f} | "
            f"{s['sap']:.3f} | {s['modularity']:.3f} | {s['explicitness']:.3f} | {seconds / 60:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="Adam steps of batch 64 per model (default 1000)")
    parser.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate (default 5e-4)")
    parser.add_argument("--points", type=float, default=0.05,
                        help="share of disentanglement_lib's point counts the metrics use (default 0.05)")
    parser.add_argument("--out", default="runs/disentanglement", help="folder of the runs (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="training and evaluation seed (default 0)")
    parser.add_argument("--only", nargs="*", help="row names to run (default all)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    results = {}
    print(f"sprites, {args.steps} steps of batch 64 at lr {args.lr:g} per model, metrics on {args.points:g} of the definitions' "
          f"points, seed {args.seed}; torch threads {torch.get_num_threads()}", flush=True)
    print("| model | beta-VAE | FactorVAE | MIG | DCI d / c / i | SAP | modularity | explicitness | "
          "train min |\n|---|---|---|---|---|---|---|---|---|", flush=True)
    for name, model, flags in MODELS:
        if args.only and name not in args.only:
            continue
        out = Path(args.out) / model.replace("-conv64", "") / "-".join([*flags] or ["default"]).lstrip("-")
        seconds = train(name, model, flags, out, args.steps, args.lr, args.seed)
        scores = score(out, args.points, args.seed)
        results[name] = scores | {"train_seconds": round(seconds, 1), "run": str(out)}
        print(row(name, scores, seconds), flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "table.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
