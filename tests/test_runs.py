"""The run directory: one record, transactional epochs, kills at every write, hostile files, newcomer traps."""
from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest
import torch
from cli_helpers import fails

import genlab
from genlab.cli import main
from genlab.data.dataset import Dataset
from genlab.errors import DataError, RunError
from genlab.models.registry import create_model
from genlab.options import TrainConfig
from genlab.runs import layout
from genlab.runs import record as records
from genlab.runs import store as runs

QUICK = ["--data", "shapes", "--epochs", "1", "--max-steps", "6", "--batch-size", "64"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "vae"
    assert main(["train", "vae", *QUICK, "--hidden", "32", "--latent-dim", "4", "--out", str(out)]) == 0
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def final_numbers(folder: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock seconds."""
    return [{k: v for k, v in m.items() if k != "epoch_seconds"} for m in records.read_metrics(folder)]


# ---------------------------------------------------------------- kills at every write


class KillPoints:
    """Counts the run's write operations; SIGKILLs this process at operation number `kill_at` (if given).
    Operations: each fsync (inside every atomic write, after the data and before the rename), each rename,
    and the middle of each staged checkpoint file (half its bytes written)."""

    def __init__(self, monkeypatch, kill_at: int | None) -> None:
        self.count, self.kill_at = 0, kill_at
        real_replace, real_fsync, real_write = os.replace, os.fsync, runs.write_synced

        def point() -> None:
            self.count += 1
            if self.count == self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        def replace(src, dst) -> None:
            point()
            real_replace(src, dst)
            point()

        def fsync(fd) -> None:
            point()
            real_fsync(fd)

        def write_synced(path: Path, data: bytes) -> None:
            with open(path, "wb") as f:
                f.write(data[:len(data) // 2])
                f.flush()
                point()
            real_write(path, data)

        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(runs, "write_synced", write_synced)


def tiny_training(out: Path, resume: bool, config: TrainConfig | None = None) -> None:
    data = genlab.load_dataset("shapes")
    small = Dataset("shapes", data.train_x[:192], data.train_y[:192], data.test_x[:64], data.test_y[:64],
                    data.classes)
    torch.manual_seed(5)
    model = create_model("vae", hidden=(16,), latent_dim=2)
    config = config or TrainConfig(epochs=2, batch_size=64, seed=5, device="cpu")
    genlab.train(model, small, config, out, resume=resume, log=lambda _: None, progress=False)


def in_child(work) -> int:
    """Run work() in a forked child (cheap: no interpreter start); returns its wait status."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    return os.waitpid(pid, 0)[1]


def test_a_kill_at_every_write_resumes_to_the_uninterrupted_run(tmp_path, monkeypatch) -> None:
    torch.set_num_threads(1)
    whole = tmp_path / "whole"

    def counted() -> None:
        points = KillPoints(monkeypatch, None)
        tiny_training(whole, resume=False)
        (tmp_path / "count").write_text(str(points.count))
    assert in_child(counted) == 0
    total = int((tmp_path / "count").read_text())
    assert total > 20, "every epoch passes through several write operations"
    expected, weights = final_numbers(whole), (whole / layout.WEIGHTS).read_bytes()
    # every write kind recurs each epoch; a spread of ~16 instants across the run covers each kind, in and
    # between the writes, within seconds (each instant costs two forked trainings)
    for kill_at in sorted(set(range(1, total + 1, max(1, total // 16))) | {total}):
        out = tmp_path / f"killed-{kill_at}"

        def killed() -> None:
            KillPoints(monkeypatch, kill_at)
            tiny_training(out, resume=False)
        status = in_child(killed)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"not killed at {kill_at}"
        assert in_child(lambda: tiny_training(out, resume=True)) == 0, f"resume failed after a kill at {kill_at}"
        assert final_numbers(out) == expected, f"kill at {kill_at}"
        assert (out / layout.WEIGHTS).read_bytes() == weights, f"kill at {kill_at}"
        left = [p.name for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith((".staging", ".commit"))]
        assert not left, f"kill at {kill_at} left {left}"
        assert (out / "report.html").is_file()


# a high learning rate makes the validation loss (of the last 64 images) turn back up early: this run warms up for 3
# epochs, has its best at epoch 4, loses patience once at epoch 5 and stops at epoch 6, well before its 10
CONTROLLED = TrainConfig(epochs=10, batch_size=64, lr=0.2, seed=5, device="cpu", val_images=64, val_split="last",
                         kl_warmup=3, early_stop=2)


def test_a_kill_mid_run_with_warmup_and_early_stopping_resumes_to_the_same_numbers(tmp_path, monkeypatch) -> None:
    torch.set_num_threads(1)
    whole = tmp_path / "whole"

    def counted() -> None:
        points = KillPoints(monkeypatch, None)
        tiny_training(whole, resume=False, config=CONTROLLED)
        (tmp_path / "count").write_text(str(points.count))
    assert in_child(counted) == 0
    expected = final_numbers(whole)
    assert [m["kl_weight"] for m in expected[:4]] == pytest.approx([1 / 3, 2 / 3, 1, 1])
    assert [m["patience_left"] for m in expected] == [2, 2, 2, 2, 1, 0], "the run is meant to stop at epoch 6"
    files = {name: (whole / name).read_bytes() for name in (layout.WEIGHTS, layout.BEST_WEIGHTS)}
    total = int((tmp_path / "count").read_text())
    for kill_at in sorted({total // 4, total // 2 + 1, 3 * total // 4 + 2, total - 3}):  # across the epochs
        out = tmp_path / f"killed-{kill_at}"

        def killed() -> None:
            KillPoints(monkeypatch, kill_at)
            tiny_training(out, resume=False, config=CONTROLLED)
        status = in_child(killed)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"not killed at {kill_at}"
        assert in_child(lambda: tiny_training(out, resume=True, config=CONTROLLED)) == 0, f"resume at {kill_at}"
        assert final_numbers(out) == expected, f"kill at {kill_at}"
        for name, content in files.items():
            assert (out / name).read_bytes() == content, f"{name} after a kill at {kill_at}"


def test_a_killed_first_config_write_leaves_a_folder_a_fresh_start_accepts(tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / ".config.json.abc123.tmp").write_text('{"mod')  # what a kill inside the first write leaves
    assert main(["train", "vae", *QUICK, "--out", str(out)]) == 0
    assert not list(out.glob(".*.tmp"))


def test_an_interrupted_commit_is_finished_by_the_next_reader(small_run, tmp_path) -> None:
    run = tmp_path / "copy"
    run.mkdir()
    for name, data in snapshot(small_run).items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(data)
    commit = run / layout.COMMIT
    commit.mkdir()
    os.replace(run / layout.METRICS, commit / layout.METRICS)  # killed after publishing, before the move
    assert len(genlab.load_run(run).metrics) == 1
    assert (run / layout.METRICS).is_file() and not commit.exists()


def test_a_full_disk_is_one_line_and_keeps_the_last_epoch(tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "vae", *QUICK, "--out", str(out)]) == 0
    before = {k: v for k, v in snapshot(out).items() if k != "report.html"}

    def full(path, data) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(runs, "write_synced", full)
    fails(["train", "vae", *QUICK[:2], "--epochs", "2", "--max-steps", "12", "--batch-size", "64", "--out",
           str(out), "--resume"], capsys, "disk is full", "epoch 1", "untouched")
    after = {k: v for k, v in snapshot(out).items() if k != "report.html" and not k.startswith("images/")}
    assert after == {k: v for k, v in before.items() if not k.startswith("images/")}
    assert not list(out.glob(".staging*"))


# ---------------------------------------------------------------- resume refuses another run


@pytest.mark.parametrize("flags,named", [
    (["--seed", "7"], "seed 0 -> 7"),
    (["--batch-size", "32"], "batch_size 64 -> 32"),
    (["--binarize", "dynamic"], "binarize none -> dynamic"),
    (["--data", "shapes", "--image-size", "64"], "image_size"),
    (["--latent-dim", "3"], "latent_dim 4 -> 3"),
])
def test_resume_refuses_options_that_change_the_run(small_run, capsys, flags, named) -> None:
    before = snapshot(small_run)
    fails(["train", "vae", "--out", str(small_run), "--resume", "--epochs", "2", *flags], capsys, named)
    assert snapshot(small_run) == before


def test_resume_takes_the_runs_own_options_and_records_new_epochs(small_run, tmp_path) -> None:
    run = tmp_path / "grown"
    assert main(["train", "vae", *QUICK, "--hidden", "32", "--latent-dim", "4", "--out", str(run)]) == 0
    assert main(["train", "vae", "--out", str(run), "--resume", "--epochs", "2", "--max-steps", "12"]) == 0
    record = records.read_record(run)
    assert record.train.epochs == 2 and record.model_config.latent_dim == 4 and len(records.read_metrics(run)) == 2


# ---------------------------------------------------------------- hostile config.json and state.pt


def damaged_copy(small_run: Path, tmp_path: Path, change) -> Path:
    run = tmp_path / "damaged"
    run.mkdir()
    for name, data in snapshot(small_run).items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(data)
    config = json.loads((run / "config.json").read_text())
    change(config)
    (run / "config.json").write_text(json.dumps(config) if isinstance(config, dict) else config)
    return run


def set_model_option(key, value):
    return lambda c: c["model_config"].__setitem__(key, value)


@pytest.mark.parametrize("change,needle", [
    (set_model_option("latent_dim", "4"), "latent_dim must be a whole number"),
    (set_model_option("latent_dim", 4.5), "latent_dim must be a whole number"),
    (set_model_option("latent_dim", 10**9), "latent_dim must be <= 4096"),
    (set_model_option("hidden", [-5]), "hidden must be >= 1"),
    (set_model_option("image_shape", [1, 100000, 100000]), "image_shape must be <= 2048"),
    (lambda c: c.__setitem__("model_config", None), "'model' and 'model_config'"),
    (lambda c: c.__setitem__("model", "my-vae"), "not installed"),
    (lambda c: c["data"].__setitem__("spec", "folder:../../.."), "absolute folder"),
    (lambda c: c["train"].__setitem__("batch_size", "big"), "batch_size must be a whole number"),
])
def test_hostile_config_values_are_one_line_before_anything_is_built(small_run, tmp_path, capsys,
                                                                    change, needle) -> None:
    run = damaged_copy(small_run, tmp_path, change)
    fails(["sample", str(run)], capsys, needle)


def test_absurdly_nested_config_is_one_line(small_run, tmp_path, capsys) -> None:
    run = tmp_path / "nested"
    run.mkdir()
    (run / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    fails(["sample", str(run)], capsys, "nested too deeply")


@pytest.mark.parametrize("state", [
    {"epoch": "one"},
    {"epoch": 1, "step": 6, "rng_cpu": torch.zeros(3), "optimizers": {}, "model": {}, "metrics": [{}]},
    {"epoch": 1, "step": 6, "rng_cpu": torch.zeros(3, dtype=torch.uint8), "rng_cpu_ranks": [torch.zeros(2, 2)],
     "optimizers": {}, "model": {}, "metrics": [{}]},
    [1, 2, 3],
])
def test_a_state_of_the_wrong_structure_is_one_line(small_run, tmp_path, capsys, state) -> None:
    run = damaged_copy(small_run, tmp_path, lambda c: None)
    torch.save(state, run / "state.pt")
    fails(["train", "vae", "--out", str(run), "--resume", "--epochs", "2"], capsys, "not a genlab checkpoint")


# ---------------------------------------------------------------- --config repeats a run


def test_config_repeats_a_run_exactly(small_run, tmp_path) -> None:
    again = tmp_path / "again"
    assert main(["train", "--config", str(small_run / "config.json"), "--out", str(again)]) == 0
    assert final_numbers(again)[-1]["test"] == final_numbers(small_run)[-1]["test"]


def test_flags_beside_config_override_it(small_run, tmp_path) -> None:
    varied = tmp_path / "varied"
    assert main(["train", "--config", str(small_run / "config.json"), "--latent-dim", "3", "--out", str(varied)]) == 0
    record = records.read_record(varied)
    assert record.model_config.latent_dim == 3 and record.model_config.hidden == (32,)


def test_a_hand_written_yaml_config(tmp_path) -> None:
    (tmp_path / "mine.yaml").write_text("model: ae\nmodel_config: {latent_dim: 5}\ndata: {spec: shapes}\n"
                                        "train: {epochs: 1, max_steps: 4, batch_size: 64}\n")
    assert main(["train", "--config", str(tmp_path / "mine.yaml"), "--out", str(tmp_path / "y")]) == 0
    assert records.read_record(tmp_path / "y").model_config.latent_dim == 5


# ---------------------------------------------------------------- newcomer traps


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_failed_device_leaves_nothing_and_the_retry_needs_no_resume(tmp_path, capsys) -> None:
    out = tmp_path / "x"
    fails(["train", "vae", *QUICK, "--device", "cuda", "--out", str(out)], capsys, "CUDA")
    assert not out.exists()
    assert main(["train", "vae", *QUICK, "--device", "cpu", "--out", str(out)]) == 0
    assert records.read_record(out).train.device == "cpu"


def test_a_missing_data_dir_is_an_error_not_a_silent_fallback(capsys, tmp_path) -> None:
    fails(["train", "vae", *QUICK, "--data-dir", str(tmp_path / "nonexistent")], capsys, "--data-dir", "not a folder")
    if genlab.data.catalog.find("fashion-mnist") is not None:  # the installed copy must not be used instead
        fails(["train", "vae", "--epochs", "1", "--data-dir", str(tmp_path / "nonexistent")], capsys,
              "not a folder", "found elsewhere")


def test_samples_need_no_grad(small_run) -> None:
    assert genlab.load_run(small_run).model.sample(4).numpy().shape == (4, 1, 28, 28)


@pytest.mark.parametrize("name", ["vae", "dcgan"])
def test_every_sampler_needs_no_grad(name) -> None:
    assert genlab.create_model(name).sample(2).numpy().shape[0] == 2


def test_a_dataset_prints_as_a_summary() -> None:
    data = genlab.load_dataset("shapes")
    assert repr(data) == "Dataset('shapes': 12000 train / 2000 test images, 1x28x28 uint8, 4 classes)"


def test_a_float_dataset_fails_at_construction_saying_how_to_convert() -> None:
    x, y = torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)
    with pytest.raises(DataError, match=r"\(x \* 255\).round\(\).to\(torch.uint8\)"):
        Dataset("mine", x, y, x, y, ("a",))


def test_python_train_writes_the_report_and_records_the_size(tmp_path) -> None:
    data = genlab.load_dataset("shapes", image_size=64)
    small = Dataset("shapes", data.train_x[:128], data.train_y[:128], data.test_x[:32], data.test_y[:32],
                    data.classes)
    model = create_model("conv-ae", image_shape=(1, 64, 64))
    genlab.train(model, small, TrainConfig(epochs=1, batch_size=64, device="cpu"), tmp_path / "py")
    assert (tmp_path / "py" / "report.html").is_file()
    run = genlab.load_run(tmp_path / "py")
    assert run.dataset().image_shape == (1, 64, 64)


def test_an_unregistered_model_cannot_make_a_run_directory(tmp_path) -> None:
    class MyVAE(torch.nn.Module):
        def loss(self, x):
            return {"loss": x.mean()}
    with pytest.raises(genlab.GenlabError, match="register_model"):
        genlab.train(MyVAE(), genlab.load_dataset("shapes"), TrainConfig(epochs=1), tmp_path / "mine")
    assert not (tmp_path / "mine").exists()


@pytest.mark.parametrize("argv,needle", [
    (["--out", "FILE"], "is a file"),
    (["--out", "FILE/run"], "cannot"),
    (["--out", ""], "--out is empty"),
    (["--seed", "1e23"], "--seed"),
    (["--seed", str(10**30)], "seed must be <="),
    (["--hidden", "-5"], "hidden must be >= 1"),
    (["--kernel-size", "-3"], "kernel_size must be >= 1"),
    (["--conv-channels", "0"], "conv_channels must be >= 1"),
    (["--latent-dim", str(10**7)], "latent_dim must be <= 4096"),
    (["--k", str(10**7)], "k must be <= 10000"),
    (["--image-size", str(10**6)], "--image-size"),
    (["--image-size", "0"], "--image-size"),
])
def test_bad_command_line_values_are_one_line(tmp_path, capsys, argv, needle) -> None:
    (tmp_path / "FILE").write_text("not a folder")
    argv = [a.replace("FILE", str(tmp_path / "FILE")) for a in argv]
    fails(["train", "vae", *QUICK, *argv], capsys, needle)


def test_huge_sample_counts_are_one_line(small_run, capsys) -> None:
    fails(["sample", str(small_run), "-n", str(10**9)], capsys, "-n must be at most")


def test_run_errors_are_genlab_errors(tmp_path) -> None:
    with pytest.raises(RunError, match="does not exist"):
        genlab.load_run(tmp_path / "nothing")


def test_an_exploding_gan_stops_saying_nothing_was_kept(tmp_path, capsys) -> None:
    out = tmp_path / "gan"
    fails(["train", "dcgan", "--data", "shapes", "--epochs", "1", "--max-steps", "10", "--batch-size", "32",
           "--lr", "1e6", "--out", str(out)], capsys, "diverged", "no epoch completed", "--lr")
    assert not (out / "state.pt").exists()


def test_a_decompression_bomb_among_a_runs_images_does_not_stop_the_report(small_run, tmp_path) -> None:
    from PIL import Image
    run = damaged_copy(small_run, tmp_path, lambda c: None)
    (run / "images" / "explore").mkdir(parents=True, exist_ok=True)
    Image.new("1", (20000, 20000)).save(run / "images" / "explore" / "bomb.png")
    assert main(["report", str(run)]) == 0
