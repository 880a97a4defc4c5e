"""The published Fashion-MNIST likelihood table, reproduced: train each row with the published protocol,
estimate its test NLL with k importance samples, print it beside the published figure.

    python benchmarks/likelihood_table.py [--rows vae vamp-vae hvae] [--out runs/likelihood] [--epochs 2000]
                                          [--k 5000] [--nll-images N]

Protocol (Tomczak & Welling 2018; the figures as tabulated by Norouzi et al. 2020): dynamically binarized
pixels; the last 10,000 training images held out for validation; z of 40 dims; gated MLPs of two 300-unit
layers; Adam, lr 5e-4, batch 100; KL warm-up over 100 epochs; early stopping after 50 epochs without a better
validation loss, keeping the best weights; test NLL with k = 5000 on the fixed binarization of all 10,000 test
images. Each row trains into OUT/ROW and resumes there when run again, so an interrupted table continues;
its learning curves (train, validation and test loss per epoch) go to OUT/ROW-curves.png.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import genlab
from genlab import metrics
from genlab.data.batches import binarize_fixed
from genlab.files import atomic_write_bytes
from genlab.options import TrainConfig
from genlab.plots import loss_curves_png

PUBLISHED = {  # test NLL in nats, mean +- std over runs
    "vae": ("VAE, Gaussian prior", 228.70, 0.15),
    "vamp-vae": ("VAE, VampPrior", 227.35, 0.05),
    "hvae": ("HVAE, Gaussian prior", 227.37, 0.10),
    "hvae-vamp": ("HVAE, VampPrior", 226.72, 0.08),
}
MODEL_OPTIONS = {  # the genlab model and options of each row
    "vae": ("vae", {"gated": True, "hidden": (300, 300), "latent_dim": 40}),
    "vamp-vae": ("vamp-vae", {}),
    "hvae": ("hvae", {}),
    "hvae-vamp": ("hvae", {"prior": "vamp"}),
}


def protocol(epochs: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=100, lr=5e-4, binarize="dynamic", val_images=10_000,
                       kl_warmup=100, early_stop=50, device="cpu", seed=0)


def train_row(row: str, out: Path, epochs: int) -> list[dict]:
    """Train (or resume) one row into out/row; its metrics, one record per epoch."""
    name, options = MODEL_OPTIONS[row]
    data = genlab.load_dataset("fashion-mnist")
    model = genlab.create_model(name, **options)
    folder = out / row
    return genlab.train(model, data, protocol(epochs), folder, resume=folder.exists(),
                        command=f"python benchmarks/likelihood_table.py --rows {row}",
                        log=lambda line: print(f"[{row}] {line}", file=sys.stderr, flush=True))


def test_nll(folder: Path, k: int, n_images: int | None) -> tuple[float, float, int, float]:
    """Mean IWAE NLL of the best weights on the binarized test images: (nats, standard error, images, seconds)."""
    run = genlab.load_run(folder)
    test_x = binarize_fixed(run.dataset().test_x)[:n_images]
    start = time.perf_counter()
    nll = metrics.iwae_nll(run.model, test_x, k, progress=sys.stderr.isatty()).double()
    return float(nll.mean()), float(nll.std() / math.sqrt(len(nll))), len(nll), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=list(PUBLISHED), default=["vae", "vamp-vae", "hvae"])
    parser.add_argument("--out", type=Path, default=Path("runs/likelihood"))
    parser.add_argument("--epochs", type=int, default=2000, help="most epochs per row (early stopping ends sooner)")
    parser.add_argument("--k", type=int, default=5000, help="importance samples per test image")
    parser.add_argument("--nll-images", type=int, default=None, help="first N test images only (default all)")
    args = parser.parse_args()
    rows = []
    for row in args.rows:
        metrics_log = train_row(row, args.out, args.epochs)
        curves = atomic_write_bytes(args.out / f"{row}-curves.png", loss_curves_png(metrics_log))
        print(f"[{row}] learning curves: {curves}", file=sys.stderr)
        nll, error, images, seconds = test_nll(args.out / row, args.k, args.nll_images)
        train_seconds = sum(m["epoch_seconds"] for m in metrics_log)
        stopped = metrics_log[-1].get("patience_left") == 0
        rows.append((row, nll, error, images, seconds, train_seconds, len(metrics_log),
                     metrics_log[-1]["best_epoch"], stopped))
    print(f"{'row':<22} {'genlab NLL':>14} {'published':>15} {'diff':>6} {'train':>8} {'epochs':>7} "
          f"{'best':>5} {'stopped':>8} {'NLL eval':>9}")
    for row, nll, error, images, seconds, train_seconds, epochs, best, stopped in rows:
        label, published, spread = PUBLISHED[row]
        print(f"{label:<22} {nll:>8.2f} ±{error:4.2f} {published:>8.2f} ±{spread:4.2f} {nll - published:>+6.2f} "
              f"{train_seconds / 60:>6.1f} m {epochs:>7} {best:>5} {'yes' if stopped else 'no':>8} "
              f"{seconds / 60:>7.1f} m  (k = {args.k}, {images} images)")


if __name__ == "__main__":
    main()
