"""Runs `genlab` commands in one torchrun worker (or a plain process), for tests/test_distributed.py and
tests/test_torchrun_decisions.py.

    torchrun --nproc-per-node 2 tests/torchrun_driver.py DUMP_DIR [--kill-rank R --kill-at-epoch E]
        [--nan-rank R --nan-at-epoch E --nan-run NAME] [--crash-planning-rank R] [--judge-alone 1]
        -- train ae ... [-- train vae ...]

Each `--`-separated argument list is one `genlab` command, run by genlab.cli.main in this process. The
driver adds what a test needs to observe a worker from outside: the dataset `tiny-shapes` (a few hundred
shapes), every file this rank opens, renames or deletes under the run directories (DUMP_DIR/touched-rankR.json),
each trained model's weights as this rank holds them (DUMP_DIR/weights-RUN-rankR.pt), the weights this rank
judged the best (best-RUN-rankR.pt) and its early-stopping state (decisions-RUN-rankR.json; with --judge-alone,
also the validation losses this rank measures alone and when it would have stopped on them), a SIGKILL of one
rank at the start of an epoch, a NaN loss reported by one rank in one epoch of the run named NAME, an error that
is not genlab's raised by one rank while it plans `genlab train`, and when each rank ended (ended-rankR.txt).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import torch

from genlab.cli import main
from genlab.data.catalog import register_dataset
from genlab.data.shapes import make_shapes
from genlab.training import plan
from genlab.training.schedule import EarlyStopping
from genlab.training.trainer import Trainer, held_out_loss

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


def patch_trainer(dump: Path, kill_rank: int | None, kill_at_epoch: int | None, nan: dict[str, str],
                  shadow: bool = False) -> None:
    fit, run_epoch, save = Trainer.fit, Trainer.run_epoch, Trainer.save

    def fit_and_dump(self, *args, **kwargs):
        metrics = fit(self, *args, **kwargs)
        weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        torch.save(weights, dump / f"weights-{self.out.name}-rank{RANK}.pt")
        if getattr(self, "best_weights", None) is not None:  # what this rank judged the best epoch's weights
            torch.save(self.best_weights, dump / f"best-{self.out.name}-rank{RANK}.pt")
        decisions = {"epoch": self.epoch, "schedule": self.schedule.state_dict(), **getattr(self, "alone", {})}
        (dump / f"decisions-{self.out.name}-rank{RANK}.json").write_text(json.dumps(decisions))
        return metrics

    def save_keeping_best(self, record, best=False):
        if best:
            self.best_weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        return save(self, record, best)

    def run_epoch_or_die(self, bar):
        if RANK == kill_rank and self.epoch + 1 == kill_at_epoch:
            os.kill(os.getpid(), signal.SIGKILL)
        if nan and RANK == int(nan["--nan-rank"]) and self.out.name == nan["--nan-run"]:
            if self.epoch + 1 == int(nan["--nan-at-epoch"]):
                self.step_fn = poisoned(self.step_fn)
        record = run_epoch(self, bar)
        if shadow and self.val_x.shape[0]:
            judge_alone(self)
        return record

    def judge_alone(self):
        """What this rank would decide on a validation loss of its own (all the images, its own noise)."""
        if not hasattr(self, "alone"):
            self.alone, self.alone_stopping = {"alone_val": [], "alone_stopped_at": None}, EarlyStopping(
                self.config.early_stop)
        value = held_out_loss(self.model, self.val_x, self.val_y)["loss"]
        self.alone["alone_val"].append(value)
        self.alone_stopping.update(value, self.epoch, warming_up=self.epoch < self.config.kl_warmup)
        if self.alone_stopping.stopped and self.alone["alone_stopped_at"] is None:
            self.alone["alone_stopped_at"] = self.epoch

    Trainer.fit, Trainer.run_epoch, Trainer.save = fit_and_dump, run_epoch_or_die, save_keeping_best


def crash_planning() -> None:
    """Planning fails on this rank with an error that is not genlab's (as a broken plugin's would)."""
    def plan_run(*args, **kwargs):
        raise ValueError("an error that is not genlab's, raised while planning")
    plan.plan_run = plan_run


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
    patch_trainer(dump, int(kill) if kill else None, int(options.get("--kill-at-epoch", "0")), nan,
                  options.get("--judge-alone") == "1")
    if options.get("--crash-planning-rank") == str(RANK):
        crash_planning()
    status = 0
    try:
        for command in commands(argv):
            status = main(command)
            if status:
                break
    finally:
        (dump / f"touched-rank{RANK}.json").write_text(json.dumps(touched))
        (dump / f"ended-rank{RANK}.txt").write_text(repr(time.time()))
    return status


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
