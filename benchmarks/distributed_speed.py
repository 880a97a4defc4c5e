"""One process with T threads beside torchrun with P processes of T/P threads: the same run, the same cores.

    python benchmarks/distributed_speed.py [--model vae] [--epochs 2] [--batch-size 128] [--processes 2]
                                           [--threads 2] [--device cpu|cuda] [--json]

The reference is plain `genlab train` in one process; the other is `torchrun --nproc-per-node P -m genlab
train` with the same model, data, seed and global batch. Both train Fashion-MNIST; the figures are the
epoch seconds each run records in its metrics.jsonl (training only) and its final test loss. The two
jobs run one after the other, alternating for --repeats > 1, so load on a shared machine hits both alike.
On CUDA (--device cuda) each process takes one GPU and --threads only sets the CPU threads per process.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def train_command(args, out: Path, processes: int) -> list[str]:
    genlab = ["-m", "genlab", "train", args.model, "--data", "fashion-mnist", "--epochs", str(args.epochs),
              "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--device", args.device,
              "--out", str(out)]
    if processes == 1:
        return [sys.executable, *genlab]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
            *genlab]


def run_job(args, folder: Path, processes: int) -> dict:
    """Train once with `processes` processes; returns its epoch seconds and final test loss."""
    out = folder / f"p{processes}-{len(list(folder.iterdir()))}"
    threads = max(1, args.threads // processes)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if args.data_dir:
        env["GENLAB_DATA"] = args.data_dir
    done = subprocess.run(train_command(args, out, processes), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the {processes}-process run failed:\n{done.stderr[-2000:]}")
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"processes": processes, "threads": threads, "epoch_seconds": [m["epoch_seconds"] for m in metrics],
            "test_loss": metrics[-1]["test"]["loss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vae")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch, for both jobs")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="threads in all (each process gets threads/P)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--data-dir")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            rows += [run_job(args, Path(tmp), 1), run_job(args, Path(tmp), args.processes)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{args.model} on fashion-mnist, {args.epochs} epochs, global batch {args.batch_size}, seed {args.seed}, "
          f"{args.device}, {os.cpu_count()} cores, torch {torch.__version__}")
    print(f"{'job':<28}{'epoch s (mean)':>16}  {'epoch s (each)':<24}{'final test loss':>16}")
    for row in rows:
        name = f"{row['processes']} process(es) x {row['threads']} thread(s)"
        each = " ".join(f"{s:.2f}" for s in row["epoch_seconds"])
        print(f"{name:<28}{statistics.mean(row['epoch_seconds']):>16.2f}  {each:<24}{row['test_loss']:>16.2f}")
    one = statistics.mean(s for row in rows if row["processes"] == 1 for s in row["epoch_seconds"])
    many = statistics.mean(s for row in rows if row["processes"] != 1 for s in row["epoch_seconds"])
    print(f"speedup (1 process / {args.processes} processes, epoch time): {one / many:.2f}x")


if __name__ == "__main__":
    main()
