"""Runs `genlab` commands in one torchrun worker (or a plain process), for tests/test_distributed.py.

    torchrun --nproc-per-node 2 tests/torchrun_driver.py DUMP_DIR [--kill-rank R --kill-at-epoch E]
        [--nan-rank R --nan-at-epoch E --nan-run NAME] -- train ae ... [-- train vae ...]

Each `--`-separated argument list is one `genlab` command, run by genlab.cli.main in this process. The
driver adds what a test needs to observe a worker from outside: the dataset `tiny-shapes` (a few hundred
shapes), every file this rank opens, renames or deletes under the run directories (DUMP_DIR/touched-rankR.json),
each trained model's weights as this rank holds them (DUMP_DIR/weights-RUN-rankR.pt), a SIGKILL of one
rank at the start of an epoch, and a NaN loss reported by one rank in one epoch of the run named NAME.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch

from genlab.cli import main
from genlab.data.catalog import register_dataset
from genlab.data.shapes import make_shapes
from genlab.training.trainer import Trainer

RANK = int(os.environ.get("RANK", "0"))
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def watch_runs(dump: Path, touched: list[str]) -> None:
    """Record every event that reads, writes or removes a path inside DUMP_DIR/runs."""
    runs = str(dump / "runs")

    def hook(event: str, args: tuple) -> None:
        if event in ("open", "os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree", "os.listdir",
                     "os.scandir", "os.chmod", "os.truncate"):
            paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
            for path in paths:
                text = os.fsdecode(path)
                if os.path.abspath(text).startswith(runs):
                    touched.append(f"{event} {text}")
    sys.addaudithook(hook)


def poisoned(step):
    """The step, reporting a NaN loss (the weights stay as they are)."""
    def step_with_nan(x, y):
        parts = step(x, y)
        return {**parts, "loss": parts["loss"] * float("nan")}
    return step_with_nan


def patch_trainer(dump: Path, kill_rank: int | None, kill_at_epoch: int | None, nan: dict[str, str]) -> None:
    fit, run_epoch = Trainer.fit, Trainer.run_epoch

    def fit_and_dump(self, *args, **kwargs):
        metrics = fit(self, *args, **kwargs)
        weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        torch.save(weights, dump / f"weights-{self.out.name}-rank{RANK}.pt")
        return metrics

    def run_epoch_or_die(self, bar):
        if RANK == kill_rank and self.epoch + 1 == kill_at_epoch:
            os.kill(os.getpid(), signal.SIGKILL)
        if nan and RANK == int(nan["--nan-rank"]) and self.out.name == nan["--nan-run"]:
            if self.epoch + 1 == int(nan["--nan-at-epoch"]):
                self.step_fn = poisoned(self.step_fn)
        return run_epoch(self, bar)

    Trainer.fit, Trainer.run_epoch = fit_and_dump, run_epoch_or_die


def commands(argv: list[str]) -> list[list[str]]:
    groups, current = [], None
    for arg in argv:
        if arg == "--":
            current = []
            groups.append(current)
        elif current is not None:
            current.append(arg)
    return groups


def run(argv: list[str]) -> int:
    dump = Path(argv[0]).resolve()
    options = dict(zip(argv[1:argv.index("--")][::2], argv[1:argv.index("--")][1::2]))
    register_dataset("tiny-shapes", lambda data_dir: make_shapes(n_train=512, n_test=128, seed=0))
    touched: list[str] = []
    watch_runs(dump, touched)
    kill = options.get("--kill-rank")
    nan = {k: v for k, v in options.items() if k.startswith("--nan-")}
    patch_trainer(dump, int(kill) if kill else None, int(options.get("--kill-at-epoch", "0")), nan)
    status = 0
    try:
        for command in commands(argv):
            status = main(command)
            if status:
                break
    finally:
        (dump / f"touched-rank{RANK}.json").write_text(json.dumps(touched))
    return status


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
