"""Threads on a shared machine: the walkthrough's ten commands, each timed three ways on the same machine, beside
one another: torch's own threading (a thread per core that spins while it waits: libgomp's default,
GOMP_SPINCOUNT=300000), genlab's default (the same threads, sleeping when they wait: OMP_WAIT_POLICY=PASSIVE, which
`import genlab` sets) and `--threads 1`.

    python benchmarks/threads.py                 # as the machine is
    python benchmarks/threads.py --busy 1        # beside 1 other CPU-bound process (a shared 2-core machine)
    python benchmarks/threads.py --only train-vae invert-class

Each command runs as a fresh `python -m genlab ...` process (GENLAB_THREADS, OMP_NUM_THREADS and the wait settings
removed from its environment), the three settings back to back, their order rotating from one command to the
next so that a drift in the machine's load falls on all three. `--busy N` starts N processes that spin on the CPU
for the whole measurement: a stand-in for the other jobs of a shared machine that keeps the load the same from row
to row. The commands that read a run use the run the same setting trained. Wall seconds, start-up included; the
ratios are torch's own / genlab's default and torch's own / --threads 1 (above 1: faster than torch's own).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPIN = "while True:\n    pass\n"


def walkthrough(folder: Path, tag: str) -> list[tuple[str, list[str]]]:
    """The ten commands for one thread setting, writing under folder with `tag` in every run's name."""
    vae, conv, gan = folder / f"vae-{tag}", folder / f"conv-vae-{tag}", folder / f"dcgan-{tag}"
    return [
        ("train-vae", ["train", "vae", "--epochs", "1", "--out", str(vae)]),
        ("train-conv-vae", ["train", "conv-vae", "--epochs", "1", "--out", str(conv)]),
        ("train-dcgan", ["train", "dcgan", "--epochs", "1", "--max-steps", "300", "--out", str(gan)]),
        ("sample", ["sample", str(vae), "-n", "64", "--out", str(folder / f"samples-{tag}.png")]),
        ("reconstruct", ["reconstruct", str(conv), "--out", str(folder / f"recon-{tag}.png")]),
        ("explore-interpolate", ["explore", "interpolate", str(vae), "--out", str(folder / f"interp-{tag}.png")]),
        ("evaluate", ["evaluate", str(vae), "-k", "100", "--skip-fid"]),
        ("invert-class", ["invert", "class", "--class", "tarantula", "--out", str(folder / f"class-{tag}.png")]),
        ("invert-dream", ["invert", "dream", "--photo", "chelsea", "--out", str(folder / f"dream-{tag}.png")]),
        ("invert-style", ["invert", "style", "--photo", "chelsea", "--style-photo", "hubble_deep_field",
                          "--out", str(folder / f"style-{tag}.png")]),
    ]


SETTINGS = {  # name -> (extra environment, extra flags)
    "spin": ({"GOMP_SPINCOUNT": "300000"}, []),   # torch's own: libgomp's default spin, which genlab leaves alone
    "genlab": ({}, []),                           # import genlab sets OMP_WAIT_POLICY=PASSIVE
    "one": ({}, ["--threads", "1"]),
}
CLEARED = ("GENLAB_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def timed(argv: list[str], setting: str) -> float:
    """Wall seconds of `python -m genlab argv` under one of SETTINGS."""
    extra_env, flags = SETTINGS[setting]
    env = {**{k: v for k, v in os.environ.items() if k not in CLEARED}, **extra_env}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "genlab", *argv, *flags], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"genlab {' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes running beside (default 0)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="time only these rows (the commands a row reads "
                                                                  "must still find their runs)")
    args = parser.parse_args()
    import torch

    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)]
    try:
        time.sleep(2 if spinners else 0)
        print(f"{os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads by default), "
              f"{args.busy} spinning processes beside, load average {os.getloadavg()[0]:.2f} at the start")
        print(f"{'command':<21} {'torch own s':>11} {'genlab s':>9} {'1 thread s':>10} {'own/genlab':>11} "
              f"{'own/1':>6}")
        totals = dict.fromkeys(SETTINGS, 0.0)
        with tempfile.TemporaryDirectory() as tmp:
            plans = {setting: walkthrough(Path(tmp), setting) for setting in SETTINGS}
            for i, name in enumerate(name for name, _ in plans["spin"]):
                if args.only and name not in args.only:
                    continue
                order = list(SETTINGS)
                order = order[i % 3:] + order[:i % 3]
                measured = {setting: timed(dict(plans[setting])[name], setting) for setting in order}
                for setting, seconds in measured.items():
                    totals[setting] += seconds
                print(row(name, measured), flush=True)
            print(row("all", totals))
            for name in ("vae", "conv-vae", "dcgan"):  # the same losses however the threads ran?
                losses = {setting: last_loss(Path(tmp) / f"{name}-{setting}") for setting in SETTINGS}
                if all(loss is not None for loss in losses.values()):
                    print(f"train-{name} last loss: " + ", ".join(f"{setting} {loss:.4f}"
                                                                  for setting, loss in losses.items()))
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
    finally:
        for spinner in spinners:
            spinner.kill()


def last_loss(run: Path) -> float | None:
    """The last epoch's test loss (a GAN's training D+G loss) of a run the walkthrough trained, if it did."""
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        return None
    last = json.loads(metrics.read_text().splitlines()[-1])
    return last.get("test", last["train"])["loss"]


def row(name: str, seconds: dict[str, float]) -> str:
    own, ours, one = seconds["spin"], seconds["genlab"], seconds["one"]
    return f"{name:<21} {own:11.1f} {ours:9.1f} {one:10.1f} {own / ours:10.2f}x {own / one:5.2f}x"


if __name__ == "__main__":
    main()
