"""The run directory against a second writer, planted links, a non-finite optimizer state, killed writes of
evaluate and report, a changed image folder and impossible --out paths: each refused in one line (or cleaned up),
and nothing of the run, nor anything outside it, changed."""
from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from cli_helpers import fails
from PIL import Image

import genlab
from genlab.cli import main
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, TrainingError
from genlab.models.registry import create_model
from genlab.options import TrainConfig
from genlab.runs import layout
from genlab.runs import store as runs
from genlab.runs.record import new_record, read_metrics
from genlab.training.trainer import Trainer

QUICK = ["--data", "shapes", "--epochs", "1", "--max-steps", "4", "--batch-size", "64"]
SMALL = ["--hidden", "16", "--latent-dim", "2"]
RESUME = ["train", "vae", *QUICK, "--epochs", "2", "--max-steps", "8", "--resume", "--out"]  # one epoch more


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "vae"
    assert main(["train", "vae", *QUICK, *SMALL, "--out", str(out)]) == 0
    return out


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of the trained run of this module, for a test to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run", symlinks=True))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder (not following links) by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def small_shapes() -> Dataset:
    data = genlab.load_dataset("shapes")
    return Dataset("shapes", data.train_x[:192], data.train_y[:192], data.test_x[:64], data.test_y[:64], data.classes)


# ---------------------------------------------------------------- one writer at a time


@contextlib.contextmanager
def held_elsewhere(run_dir: Path) -> Iterator[int]:
    """The run's writer lock, taken with genlab's own call by a forked child and held until the block ends;
    yields the child's pid."""
    from genlab.runs.guard import one_writer

    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            with one_writer(run_dir):
                os.write(ready_w, b"1")
                os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    try:
        assert os.read(ready_r, 1) == b"1", "the child could not take the lock"
        yield pid
    finally:
        os.write(done_w, b"1")
        os.waitpid(pid, 0)
        for fd in (ready_r, done_r, done_w):
            os.close(fd)


def test_a_second_writer_is_refused_naming_the_first_and_readers_go_on(run, capsys) -> None:
    before = snapshot(run)
    with held_elsewhere(run) as pid:
        holder = f"pid {pid}"
        fails([*RESUME, str(run)], capsys, holder,
              Path(sys.argv[0]).name, "one process writes a run at a time")
        fails(["evaluate", str(run), "--skip-fid", "-k", "2", "--test-images", "16"], capsys, holder)
        fails(["report", str(run)], capsys, holder)
        lock = (run / layout.LOCK).read_text()
        assert lock.startswith(f"pid {pid}: "), "the holder names itself"
        assert {**snapshot(run), layout.LOCK: b""} == before, "a refused writer changed the run"
        picture = run.parent / "while-held.png"
        assert main(["sample", str(run), "-n", "4", "--out", str(picture)]) == 0  # readers are not writers
        capsys.readouterr()
    assert main([*RESUME, str(run)]) == 0
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2]
    assert (run / layout.LOCK).read_bytes() == b"", "a finished writer leaves its lock file empty"


def test_a_fresh_start_that_fails_under_the_lock_leaves_no_folder_behind(tmp_path) -> None:
    out = tmp_path / "new" / "run"
    too_many = TrainConfig(epochs=1, batch_size=64, device="cpu", val_images=191)  # found once the lock is held
    with pytest.raises(ConfigError, match="--val-images"):
        genlab.train(create_model("vae", hidden=(16,), latent_dim=2), small_shapes(), too_many, out)
    assert not (tmp_path / "new").exists(), "the folders the lock needed are removed again"


def test_under_torchrun_rank_zero_alone_takes_the_lock_and_every_rank_stops_in_one_line(run, tmp_path) -> None:
    from test_distributed import torchrun

    with held_elsewhere(run) as pid:
        started = time.monotonic()
        done = torchrun(tmp_path, [*RESUME, str(run)])
        took = time.monotonic() - started
    text = done.stdout + done.stderr
    ours = [line for line in text.splitlines() if line.startswith("genlab:")]
    assert done.returncode != 0 and len(ours) == 1 and f"pid {pid}" in ours[0], text[-3000:]
    # torchrun's own traceback follows a failed worker; none comes from genlab's package
    assert not [line for line in text.splitlines() if re.match(r'\s*File ".*[/\\]genlab[/\\][^"]*"', line)], text
    assert all((tmp_path / f"ended-rank{rank}.txt").is_file() for rank in (0, 1)), "a rank did not leave"
    assert took < 120, f"the ranks waited {took:.0f} s"
    assert [m["epoch"] for m in read_metrics(run)] == [1]


# ---------------------------------------------------------------- links where genlab keeps its files


def test_a_linked_commit_folder_is_refused_and_its_target_keeps_its_files(run, tmp_path, capsys) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    for name in (layout.CONFIG, layout.METRICS):
        shutil.copy(run / name, target / name)
    kept = snapshot(target)
    (run / layout.COMMIT).symlink_to(target, target_is_directory=True)
    fails(["sample", str(run), "-n", "4"], capsys, layout.COMMIT, "symbolic link")
    fails([*RESUME, str(run)], capsys, layout.COMMIT)
    assert snapshot(target) == kept


@pytest.mark.parametrize("command", [
    ["sample", "RUN", "-n", "4"],
    ["reconstruct", "RUN", "-n", "4"],
    ["explore", "neighbourhood", "RUN", "-n", "3"],
    [*RESUME, "RUN"],
    ["report", "RUN"],
])
def test_a_linked_images_folder_is_refused_and_nothing_is_written_through_it(run, tmp_path, capsys,
                                                                             command) -> None:
    outside = tmp_path / "outside"
    shutil.move(run / layout.IMAGES, outside)
    (run / layout.IMAGES).symlink_to(outside, target_is_directory=True)
    before, kept = snapshot(run), snapshot(outside)
    fails([str(run) if arg == "RUN" else arg for arg in command], capsys, layout.IMAGES, "symbolic link")
    assert snapshot(outside) == kept and snapshot(run) == before


def test_the_report_embeds_no_epoch_image_linked_from_elsewhere(run, tmp_path, capsys) -> None:
    secret = tmp_path / "secret.png"
    Image.new("L", (28, 28), 200).save(secret)
    image = run / layout.IMAGES / layout.epoch_image_name("samples", 1)
    image.unlink()
    image.symlink_to(secret)
    report = (run / layout.REPORT).read_bytes()
    fails(["report", str(run)], capsys, layout.epoch_image_name("samples", 1), "symbolic link")
    assert (run / layout.REPORT).read_bytes() == report


@pytest.mark.parametrize("name", [layout.CONFIG, layout.WEIGHTS, layout.STATE, layout.METRICS])
def test_a_linked_run_file_is_never_read_through(run, tmp_path, capsys, name) -> None:
    elsewhere = tmp_path / name
    shutil.move(run / name, elsewhere)
    (run / name).symlink_to(elsewhere)
    fails([*RESUME, str(run)], capsys, name, "symbolic link")
    fails(["reconstruct", str(run), "-n", "2"], capsys, name, "symbolic link")


# ---------------------------------------------------------------- what an epoch commits


def test_a_non_finite_optimizer_state_is_never_committed(tmp_path) -> None:
    out, data = tmp_path / "run", small_shapes()
    torch.manual_seed(5)
    model = create_model("vae", hidden=(16,), latent_dim=2)
    config = TrainConfig(epochs=3, batch_size=64, seed=5, device="cpu")
    trainer = Trainer(model, data, config, out, log=lambda _: None, progress=False)
    runs.open_run(out, False, new_record("vae", model.config, data, config, None, "test"))

    def poison(record: dict) -> None:  # Adam's second moment overflows: its steps become 0, the loss stays finite
        if record["epoch"] == 1:
            for slots in trainer.optimizers["model"].state.values():
                slots["exp_avg_sq"].fill_(math.inf)
    with pytest.raises(TrainingError, match=r"epoch 2: .*exp_avg_sq.* NaN or infinite.*epoch 1.* is kept.*--lr"):
        trainer.fit(poison)
    assert math.isfinite(trainer.metrics[-1]["train"]["loss"]), "the losses alone would not have caught it"
    state = runs.load_state(out)
    assert state["epoch"] == 1 and [m["epoch"] for m in read_metrics(out)] == [1]
    tensors = [*state["model"].values(), *(v for slots in state["optimizers"]["model"]["state"].values()
                                           for v in slots.values())]
    assert all(torch.isfinite(t).all() for t in tensors if t.is_floating_point())


# ---------------------------------------------------------------- leftovers of killed writes


def test_evaluate_and_report_remove_what_their_killed_writes_left(run) -> None:
    report_left = run / f".{layout.REPORT}.k1ll3d.tmp"
    evaluation_left = run / f".{layout.EVALUATION}.k1ll3d.tmp"
    for path in (report_left, evaluation_left):
        path.write_text("half a page")
    assert main(["report", str(run)]) == 0
    assert not report_left.exists()
    assert main(["evaluate", str(run), "--skip-fid", "-k", "2", "--test-images", "16", "--probe-train", "64"]) == 0
    assert not evaluation_left.exists()
    assert not list(run.glob(".*.tmp"))


# ---------------------------------------------------------------- a folder dataset that changed


def image_folder(root: Path, per_class: int, shade: int = 0) -> Path:
    for label, name in enumerate(("dark", "light")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("L", (8, 8), (40 + 150 * label + i + shade) % 256).save(root / name / f"{i:03d}.png")
    return root


def test_resume_refuses_a_folder_whose_images_changed(tmp_path, capsys) -> None:
    folder = image_folder(tmp_path / "pictures", per_class=6)
    out = tmp_path / "run"
    train = ["train", "vae", "--data", f"folder:{folder}", "--image-size", "8", "--batch-size", "4", *SMALL,
             "--out", str(out)]
    assert main([*train, "--epochs", "1"]) == 0
    assert main([*train, "--epochs", "2", "--resume"]) == 0, "the same files resume"
    record = (out / layout.CONFIG).read_bytes()
    image_folder(folder, per_class=6, shade=3)  # the same names, other pixels
    fails([*train, "--epochs", "3", "--resume"], capsys, "images", "changed", f"folder:{folder}")
    image_folder(folder, per_class=26)  # the old pixels back, and 40 images more
    fails([*train, "--epochs", "3", "--resume"], capsys, "changed")
    assert (out / layout.CONFIG).read_bytes() == record
    assert [m["epoch"] for m in read_metrics(out)] == [1, 2]


# ---------------------------------------------------------------- an --out no file system can hold


@pytest.mark.parametrize("out,needle", [
    ("r" * 256, "255"),
    (os.path.join("x" * 256, "run"), "255"),
    (os.fsdecode(b"run-\xff"), "UTF-8"),
])
def test_an_impossible_out_is_one_line_before_anything_is_written(tmp_path, capsys, out, needle) -> None:
    fails(["train", "vae", *QUICK, "--out", str(tmp_path / out)], capsys, "--out", needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_default_out_too_long_for_the_file_system_is_one_line(tmp_path, capsys) -> None:
    folder = tmp_path / ("p" * 255)
    folder.mkdir()
    fails(["train", "vae", *QUICK, "--data", f"folder:{folder}"], capsys, "255", "--out")
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]


def test_python_train_refuses_an_impossible_out_before_writing(tmp_path) -> None:
    with pytest.raises(ConfigError, match="255"):
        genlab.train(create_model("vae", hidden=(16,), latent_dim=2), small_shapes(),
                     TrainConfig(epochs=1, batch_size=64, device="cpu"), tmp_path / ("r" * 300))
    assert list(tmp_path.iterdir()) == []
