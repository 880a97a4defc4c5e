"""Data-parallel training on torchrun (gloo, 2 CPU processes x 1 thread) against one process.

The runs are launched once per module through tests/torchrun_driver.py, which runs ordinary `genlab`
commands in each worker and reports what a worker did from outside: its weights, and every path it
touched inside the run directories.
"""
from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import genlab
from genlab.cli import main
from genlab.data.catalog import register_dataset
from genlab.data.shapes import make_shapes
from genlab.errors import ConfigError
from genlab.runs.store import load_run, read_metrics
from genlab.world import World, shard, sharded

DRIVER = Path(__file__).with_name("torchrun_driver.py")
AE = ["train", "ae", "--data", "tiny-shapes", "--epochs", "2", "--batch-size", "64", "--seed", "3"]
VAE = ["train", "vae", "--data", "tiny-shapes", "--epochs", "3", "--batch-size", "64", "--latent-dim", "4"]
DCGAN = ["train", "dcgan", "--data", "tiny-shapes", "--epochs", "1", "--max-steps", "4", "--batch-size", "32",
         "--dim", "8"]
FACTOR = ["train", "factor-vae", "--data", "tiny-shapes", "--epochs", "1", "--max-steps", "4", "--batch-size", "32",
          "--discriminator-hidden", "32", "32"]  # a second optimizer, for the discriminator


def start(dump: Path, *commands: list[str], launcher: list[str] = ("--standalone", "--nproc-per-node", "2"),
          options: list[str] = ()) -> subprocess.Popen:
    """The driver under torchrun, each command after a `--`; stdout and stderr captured as text."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENLAB_CACHE": str(dump / "cache"),
           "PYTHONPATH": os.pathsep.join([str(Path(genlab.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, "-m", "torch.distributed.run", *launcher, str(DRIVER), str(dump), *options]
    for command in commands:
        args += ["--", *command]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 150) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def torchrun(dump: Path, *commands: list[str], options: list[str] = ()) -> subprocess.CompletedProcess:
    """One 2-process job on this machine."""
    return finish(start(dump, *commands, options=options))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def without_timing(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "epoch_seconds"} for m in metrics]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> Path:
    """ae, vae and dcgan trained by one 2-process torchrun job; then an ae whose rank 1 sees a NaN loss in
    epoch 2 (DUMP/output.txt holds what the job printed)."""
    dump = tmp_path_factory.mktemp("torchrun")
    runs = dump / "runs"
    done = torchrun(dump, [*AE, "--out", str(runs / "ae")], [*VAE, "--out", str(runs / "vae")],
                    [*DCGAN, "--out", str(runs / "dcgan")], [*FACTOR, "--out", str(runs / "factor")],
                    [*AE, "--epochs", "3", "--out", str(runs / "nan")],
                    options=["--nan-rank", "1", "--nan-at-epoch", "2", "--nan-run", "nan"])
    (dump / "output.txt").write_text(done.stdout + done.stderr)
    assert (runs / "dcgan" / "report.html").is_file(), done.stdout[-2000:] + done.stderr[-3000:]
    return dump


@pytest.fixture(scope="module")
def one_process_ae(tmp_path_factory) -> Path:
    register_dataset("tiny-shapes", lambda data_dir: make_shapes(n_train=512, n_test=128, seed=0), replace=True)
    out = tmp_path_factory.mktemp("one") / "ae"
    assert main([*AE, "--out", str(out)]) == 0
    return out


def test_every_parameter_is_bit_identical_across_ranks(two_processes) -> None:
    for name in ("ae", "vae", "dcgan", "factor"):
        rank0, rank1 = (torch.load(two_processes / f"weights-{name}-rank{r}.pt") for r in (0, 1))
        assert rank0.keys() == rank1.keys()
        different = [key for key in rank0 if not torch.equal(rank0[key], rank1[key])]
        assert not different, f"{name}: {different} differ between ranks"


def test_two_processes_match_one_process_with_the_same_global_batch(two_processes, one_process_ae) -> None:
    two, one = load_run(two_processes / "runs" / "ae"), load_run(one_process_ae)
    assert [m["step"] for m in two.metrics] == [m["step"] for m in one.metrics] == [8, 16]
    for split in ("train", "test"):
        assert two.metrics[-1][split]["loss"] == pytest.approx(one.metrics[-1][split]["loss"], rel=1e-5)
    for (key, a), b in zip(two.model.state_dict().items(), one.model.state_dict().values()):
        scale = b.abs().max().clamp_min(1e-12)
        assert (a - b).abs().max() / scale < 1e-5, key


def test_rank_one_touches_nothing_in_the_run_directory(two_processes) -> None:
    touched = {r: json.loads((two_processes / f"touched-rank{r}.json").read_text()) for r in (0, 1)}
    assert touched[1] == []
    written = " ".join(touched[0])
    for name in ("config.json", "state.pt", "model.safetensors", "metrics.jsonl", "report.html", "images"):
        assert name in written  # the watch sees rank 0's writes, so it would see rank 1's


def test_vae_and_dcgan_train_on_two_processes(two_processes) -> None:
    for name, steps in (("vae", [8, 16, 24]), ("dcgan", [4])):
        run = two_processes / "runs" / name
        metrics = read_metrics(run)
        assert [m["step"] for m in metrics] == steps
        assert all(math.isfinite(v) for m in metrics for part in ("train", "test") for v in m[part].values())
        assert (run / "report.html").is_file() and any((run / "images").iterdir())
    vae = read_metrics(two_processes / "runs" / "vae")
    assert vae[-1]["test"]["loss"] < vae[0]["test"]["loss"]


def test_factor_vae_trains_both_its_optimizers_on_two_processes(two_processes) -> None:
    run = two_processes / "runs" / "factor"
    assert [m["step"] for m in read_metrics(run)] == [4]
    optimizers = torch.load(run / "state.pt", weights_only=True)["optimizers"]
    assert set(optimizers) == {"model", "auxiliary"}
    assert all(s["step"].item() == 4 for o in optimizers.values() for s in o["state"].values())


def test_a_nan_on_one_rank_stops_every_rank_with_one_message(two_processes) -> None:
    printed = (two_processes / "output.txt").read_text().splitlines()
    ours = [line for line in printed if line.startswith("genlab:")]
    assert len(ours) == 1 and "diverged at epoch 2" in ours[0] and "epoch 1" in ours[0], ours
    assert [m["epoch"] for m in read_metrics(two_processes / "runs" / "nan")] == [1]  # the last good epoch
    assert not (two_processes / "weights-nan-rank0.pt").exists()  # no rank finished training


def test_a_sigkilled_rank_ends_the_job_and_resume_finishes_the_same_run(two_processes, tmp_path) -> None:
    out = tmp_path / "runs" / "vae"
    killed = torchrun(tmp_path, [*VAE, "--out", str(out)], options=["--kill-rank", "1", "--kill-at-epoch", "3"])
    assert killed.returncode != 0
    text = killed.stdout + killed.stderr
    ours = [line for line in text.splitlines() if line.startswith("genlab:")]
    assert len(ours) == 1 and "--resume" in ours[0], killed.stderr[-3000:]
    # torchrun's own traceback may follow; none from genlab's package (a checkout's path may hold "genlab" too)
    assert not [line for line in text.splitlines() if re.match(r'\s*File ".*[/\\]genlab[/\\][^"]*"', line)]
    # rank 1 cannot reach epoch 3 before rank 0 committed epoch 1; epoch 2 may or may not have landed
    kept = load_run(out).metrics
    assert [m["epoch"] for m in kept] in ([1], [1, 2])

    resumed = torchrun(tmp_path, [*VAE, "--out", str(out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    whole = read_metrics(two_processes / "runs" / "vae")
    assert without_timing(read_metrics(out)) == without_timing(whole)


def test_two_nodes_on_loopback_train_and_evaluate_as_one_process_does(tmp_path) -> None:
    """Two `torchrun --nnodes 2 --node-rank 0|1` launches meet at a loopback rendezvous; the sharded
    evaluation (IWAE NLL, classifier features) gives one process's figures."""
    out, port = tmp_path / "runs" / "vae", free_port()
    commands = ([*VAE, "--epochs", "1", "--out", str(out)],
                ["evaluate", str(out), "-k", "8", "--fid-samples", "200", "--nll-images", "96"])
    nodes = [start(tmp_path, *commands, launcher=[
        "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(rank), "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "genlab-test"]) for rank in (0, 1)]
    done = [finish(node) for node in nodes]
    assert [d.returncode for d in done] == [0, 0], "".join(d.stderr[-2000:] for d in done)
    assert [m["step"] for m in read_metrics(out)] == [8]
    two = json.loads((out / "evaluation.json").read_text())

    register_dataset("tiny-shapes", lambda data_dir: make_shapes(n_train=512, n_test=128, seed=0), replace=True)
    classifier = two["frechet"]["classifier"]
    assert main(["evaluate", str(out), "-k", "8", "--fid-samples", "200", "--nll-images", "96",
                 "--classifier", classifier]) == 0
    one = json.loads((out / "evaluation.json").read_text())
    assert two["neg_elbo"]["neg_elbo"] == pytest.approx(one["neg_elbo"]["neg_elbo"], rel=1e-6)
    for key in ("samples_vs_test", "train_vs_test"):  # the same samples and images, features sharded
        assert two["frechet"][key] == pytest.approx(one["frechet"][key], rel=1e-4)
    nll_two, nll_one = two["iwae_nll"], one["iwae_nll"]  # other importance samples on rank 1's share
    assert nll_two["images"] == nll_one["images"] == 96
    assert abs(nll_two["nats"] - nll_one["nats"]) < 3 * nll_one["standard_error"]
    assert nll_two["nats"] < two["neg_elbo"]["neg_elbo"]  # the IWAE bound is tighter than the ELBO


def test_rank_slices_partition_each_global_batch() -> None:
    perm = torch.randperm(70)
    one = list(World().batch_indices(perm, 16, drop_last=False))
    assert [len(b) for b in one] == [16, 16, 16, 16, 6]
    slices = [list(World(rank, 2).batch_indices(perm, 16, drop_last=False)) for rank in (0, 1)]
    for step, whole in enumerate(one):
        assert torch.equal(torch.cat([slices[0][step], slices[1][step]]), whole)  # 6 splits 3 + 3
    three = [list(World(rank, 3).batch_indices(perm, 15, drop_last=False)) for rank in range(3)]
    assert [len(b) for b in three[2]] == [5, 5, 5, 5, 3]  # the last 10 lose one image so each rank gets 3
    assert len(torch.cat([torch.cat(ranks) for ranks in three]).unique()) == 69


def test_the_last_batch_rule_is_the_one_process_rule_per_rank() -> None:
    for n in range(2, 80):  # one process: a last batch of a single image is skipped, as before
        assert World().drops_last_batch(n, 16) == (n % 16 == 1)
    assert World(0, 2).drops_last_batch(16 * 3 + 3, 16)  # 3 images over 2 ranks: 1 each, too few
    assert not World(0, 2).drops_last_batch(16 * 3 + 4, 16)


def test_the_global_batch_must_split_evenly() -> None:
    World(1, 4).check_batch_size(64)
    with pytest.raises(ConfigError, match="multiple of 3") as caught:
        World(0, 3).check_batch_size(64)
    assert caught.value.every_rank  # every rank raises it: rank 0 alone prints it


def test_one_process_world_changes_nothing() -> None:
    world = World()
    assert not world.active and world.writes and world.seed(7) == 7
    assert world.place(torch.device("cpu")) == torch.device("cpu")
    x = torch.arange(10.0)
    assert sharded(world, lambda part: part * 2, x).tolist() == (x * 2).tolist()
    assert [shard(World(r, 3), 10) for r in range(3)] == [slice(0, 3), slice(3, 6), slice(6, 10)]
