"""Under torchrun every decision that ends or branches the training loop is one decision for all processes.

Two gloo processes train VAEs whose validation loss is a one-sample ELBO: each process draws its own noise, so
a loss measured by each process alone differs between them, and with a patience of one epoch their early-stopping
decisions part within a few epochs. The jobs run through tests/torchrun_driver.py, which reports each rank's
decisions and the weights each rank judged the best.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

import genlab
from genlab.runs import layout
from genlab.runs.record import read_metrics

DRIVER = Path(__file__).with_name("torchrun_driver.py")
EPOCHS = 40
# lr 1e-5: the weights barely move, so whether an epoch is a new best is decided by the validation noise alone
NOISY_VAE = ["train", "vae", "--data", "tiny-shapes", "--batch-size", "64", "--latent-dim", "4", "--hidden", "16",
             "--val-images", "6", "--early-stop", "1", "--epochs", str(EPOCHS), "--lr", "1e-5"]
SEEDS = (1, 2, 3)


def torchrun(dump: Path, *commands: list[str], options: list[str] = (), timeout: float = 240
             ) -> subprocess.CompletedProcess:
    """One 2-process gloo job of the driver, each command after a `--`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENLAB_CACHE": str(dump / "cache"),
           "PYTHONPATH": os.pathsep.join([str(Path(genlab.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(DRIVER),
            str(dump), *options]
    for command in commands:
        args += ["--", *command]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # the workers too: a hung rank would hold the pipes open
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        stderr += f"\n[killed after {timeout} s]"
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def test_both_ranks_stop_early_at_the_same_epoch_with_the_same_best_weights(tmp_path) -> None:
    runs = tmp_path / "runs"
    done = torchrun(tmp_path, *([*NOISY_VAE, "--seed", str(seed), "--out", str(runs / f"seed-{seed}")]
                                for seed in SEEDS), options=["--judge-alone", "1"])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    alone = {seed: [json.loads((tmp_path / f"decisions-seed-{seed}-rank{r}.json").read_text()) for r in (0, 1)]
             for seed in SEEDS}
    # the test has teeth: measured by each rank alone, the losses differ and so would the decisions
    assert all(ranks[0]["alone_val"] != ranks[1]["alone_val"] for ranks in alone.values())
    assert any(ranks[0]["alone_stopped_at"] != ranks[1]["alone_stopped_at"] for ranks in alone.values()), alone
    for seed in SEEDS:
        name = f"seed-{seed}"
        decisions = [{k: v for k, v in ranks.items() if not k.startswith("alone")} for ranks in alone[seed]]
        assert decisions[0] == decisions[1], f"{name}: the ranks decided differently: {decisions}"
        epoch, stopping = decisions[0]["epoch"], decisions[0]["schedule"]
        assert stopping["stopped"] and epoch < EPOCHS, f"{name}: early stopping did not end the run"
        metrics = read_metrics(runs / name)
        assert [m["epoch"] for m in metrics] == list(range(1, epoch + 1))
        assert metrics[-1]["patience_left"] == 0 and metrics[-1]["best_epoch"] == stopping["best_epoch"]
        assert metrics[stopping["best_epoch"] - 1]["val"]["loss"] == stopping["best"]  # the shared number
        best = [torch.load(tmp_path / f"best-{name}-rank{r}.pt") for r in (0, 1)]
        kept = load_file(runs / name / layout.BEST_WEIGHTS)
        for key, value in best[0].items():
            assert torch.equal(value, best[1][key]) and torch.equal(value, kept[key]), f"{name}: {key} differs"


def test_a_foreign_error_on_rank_zero_while_planning_ends_the_other_rank_in_seconds(tmp_path) -> None:
    out = tmp_path / "runs" / "crash"
    started = time.time()
    done = torchrun(tmp_path, [*NOISY_VAE, "--epochs", "2", "--out", str(out)],
                    options=["--crash-planning-rank", "0"], timeout=120)
    assert done.returncode != 0 and not out.exists()
    ended = {r: float((tmp_path / f"ended-rank{r}.txt").read_text()) for r in (0, 1)}
    assert ended[1] - ended[0] < 5, f"rank 1 left {ended[1] - ended[0]:.1f} s after rank 0 failed"
    lines = (done.stdout + done.stderr).splitlines()
    ours = [line for line in lines if line.startswith("genlab:")]
    assert len(ours) == 1 and "rank 0" in ours[0] and "ValueError" in ours[0], ours or lines[-30:]
    assert time.time() - started < 110
