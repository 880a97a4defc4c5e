"""Epoch time and final test loss: the plain tutorial VAE loop beside genlab's trainer, in one run.

    python benchmarks/train_speed.py [--epochs 3] [--batch-size 128] [--seed 1] [--device cpu] [--json]

Epochs of the two loops alternate, so that load on a shared machine hits both alike.
The reference is the standard tutorial loop: torchvision's FashionMNIST dataset with ToTensor, a
shuffling DataLoader, `.to(device)` per batch, `.item()` per step, sigmoid + binary_cross_entropy.
genlab trains the same architecture from the same seed on the same data with the same batch size.
"""
from __future__ import annotations

import argparse
import gzip
import json
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tqdm import tqdm

from genlab import TrainConfig, create_model, load_dataset
from genlab.data.catalog import fetch_dataset
from genlab.train.trainer import Trainer, resolve_device


class TutorialVAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def tutorial_loss(recon, x, mu, logvar):
    bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def torchvision_root(data_dir: str | None) -> Path:
    """torchvision wants FashionMNIST/raw/<uncompressed files>: unpack genlab's copy into a temp folder."""
    source = fetch_dataset("fashion-mnist", data_dir)
    root = Path(tempfile.mkdtemp(prefix="genlab-bench-"))
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        packed = source / f"{stem}.gz"
        with (gzip.open(packed) if packed.exists() else open(source / stem, "rb")) as f, open(raw / stem, "wb") as g:
            shutil.copyfileobj(f, g)
    return root


def tutorial_epochs(args, device: torch.device):
    """Yields (train seconds, test loss) per epoch of the tutorial loop."""
    from torchvision import datasets, transforms  # only the reference needs torchvision

    root = torchvision_root(args.data_dir)
    to_tensor = transforms.ToTensor()
    train_set = datasets.FashionMNIST(root, train=True, download=False, transform=to_tensor)
    test_set = datasets.FashionMNIST(root, train=False, download=False, transform=to_tensor)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=args.batch_size, shuffle=False)
    torch.manual_seed(args.seed)
    model = TutorialVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(args.epochs):
        model.train()
        start, train_loss = time.perf_counter(), 0.0
        for data, _ in train_loader:
            data = data.to(device)
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            loss = tutorial_loss(recon, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        seconds = time.perf_counter() - start
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for data, _ in test_loader:
                data = data.to(device)
                recon, mu, logvar = model(data)
                test_loss += tutorial_loss(recon, data, mu, logvar).item()
        yield seconds, test_loss / len(test_set)
    shutil.rmtree(root, ignore_errors=True)


def genlab_epochs(args, device: torch.device):
    """Yields (train seconds, test loss) per epoch of genlab's trainer on the same model and data."""
    data = load_dataset("fashion-mnist", data_dir=args.data_dir)
    torch.manual_seed(args.seed)
    model = create_model("vae")
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, device=device.type)
    torch.manual_seed(args.seed)  # as train() does for a fresh run
    trainer = Trainer(model, data, config, log=lambda line: None, progress=False)
    with tqdm(disable=True) as bar:
        for _ in range(args.epochs):
            record = trainer.run_epoch(bar)
            yield record["epoch_seconds"], record["test"]["loss"]


def run_interleaved(args, device: torch.device) -> dict:
    """Alternate one epoch of each, so that load on a shared machine hits both loops alike."""
    loops = {"tutorial": tutorial_epochs(args, device), "genlab": genlab_epochs(args, device)}
    results = {name: {"epoch_seconds": [], "test_loss": []} for name in loops}
    rng = {name: torch.manual_seed(args.seed).get_state() for name in loops}  # each loop its own noise
    for _ in range(args.epochs):
        for name, epochs in loops.items():
            torch.set_rng_state(rng[name])
            seconds, test_loss = next(epochs)
            rng[name] = torch.get_rng_state()
            results[name]["epoch_seconds"].append(seconds)
            results[name]["test_loss"].append(test_loss)
    for epochs in loops.values():
        epochs.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--data-dir")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    device = resolve_device(args.device)
    results = run_interleaved(args, device)
    mean = {name: statistics.mean(r["epoch_seconds"]) for name, r in results.items()}
    summary = {
        "model": "vae", "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "epochs": args.epochs,
        "batch_size": args.batch_size, "seed": args.seed, "results": results,
        "mean_epoch_seconds": mean, "speedup": mean["tutorial"] / mean["genlab"],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"vae on fashion-mnist, {args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, {device} "
          f"({torch.get_num_threads()} threads, torch {torch.__version__})")
    print(f"{'loop':<10} {'epoch s (mean)':>15} {'epoch s (each)':>24} {'final test loss':>16}")
    for name, r in results.items():
        each = " ".join(f"{s:.2f}" for s in r["epoch_seconds"])
        print(f"{name:<10} {mean[name]:>15.2f} {each:>24} {r['test_loss'][-1]:>16.2f}")
    print(f"speedup (tutorial / genlab epoch time): {summary['speedup']:.2f}x; "
          f"test loss difference: {results['genlab']['test_loss'][-1] - results['tutorial']['test_loss'][-1]:+.2f} nats")


if __name__ == "__main__":
    main()
