"""Every `genlab` command end to end on `shapes`, and every bad input ending in one clean line."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import fails
from PIL import Image

import genlab.cli.runs
import genlab.workflow
from genlab.cli import build_parser, main
from genlab.cli.common import given
from genlab.data.catalog import SYSTEM_DIRS
from genlab.models.contract import AutoEncoder, Generative
from genlab.models.registry import MODELS
from genlab.runs.layout import WEIGHTS
from genlab.runs.store import load_run
from genlab.training.plan import plan_run

QUICK = ["--data", "shapes", "--epochs", "1", "--max-steps", "12", "--batch-size", "64"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "vae"
    assert main(["train", "vae", *QUICK, "--out", str(out)]) == 0
    return out


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_train_writes_a_complete_run(vae_run) -> None:
    for name in ("config.json", "model.safetensors", "state.pt", "metrics.jsonl", "report.html"):
        assert (vae_run / name).is_file(), name
    config = json.loads((vae_run / "config.json").read_text())
    assert config["command"].startswith("genlab train vae --data shapes")
    assert config["data"]["name"] == "shapes"


def test_default_out_is_under_runs(capsys) -> None:
    assert main(["train", "ae", *QUICK]) == 0
    assert (Path("runs") / "ae-shapes" / "report.html").is_file()


def test_model_flags_are_derived_from_configs(tmp_path, capsys) -> None:
    out = tmp_path / "small"
    assert main(["train", "vae", *QUICK, "--latent-dim", "2", "--hidden", "64", "32", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())["model_config"]
    assert config["latent_dim"] == 2 and config["hidden"] == [64, 32]


def test_sample_reconstruct_report(vae_run, tmp_path, capsys) -> None:
    assert main(["sample", str(vae_run), "-n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size[0] > 28 * 4
    assert main(["reconstruct", str(vae_run), "-n", "6"]) == 0
    assert (vae_run / "images" / "reconstructions.png").is_file()
    assert main(["report", str(vae_run)]) == 0
    assert capsys.readouterr().out.strip().endswith("report.html")


def attributed_folder(root: Path, count: int = 16) -> Path:
    """folder: data with an attributes.csv, for the models that learn attributes (shapes have none)."""
    rows = ["file,Smiling,Eyeglasses"]
    for i in range(count):
        (root / f"{i:02d}.png").parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (28, 28), (i * 15, 255 - i * 15, 0)).save(root / f"{i:02d}.png")
        rows.append(f"{i:02d}.png,{int(i % 3 == 0)},{int(i % 2 == 0)}")
    (root / "attributes.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_trains_then_samples_or_reconstructs(name: str, tmp_path, capsys) -> None:
    out = tmp_path / name
    small = ["--dim", "8"] if name == "dcgan" else []
    data = ["shapes"]
    if getattr(MODELS[name].config_cls(**MODELS[name].defaults), "targets", "classes") == "attributes":
        data = [f"folder:{attributed_folder(tmp_path / 'faces')}", "--image-size", "28"]
    assert main(["train", name, "--data", *data, "--epochs", "1", "--max-steps", "3", *small,
                 "--out", str(out)]) == 0
    model = load_run(out).model
    if isinstance(model, Generative):
        assert main(["sample", str(out), "-n", "4", "--out", str(tmp_path / "s.png")]) == 0
        assert Image.open(tmp_path / "s.png").size[0] > 28 * 4
    if isinstance(model, AutoEncoder):
        assert main(["reconstruct", str(out), "-n", "3", "--out", str(tmp_path / "r.png")]) == 0
        assert Image.open(tmp_path / "r.png").size[1] > 28 * 2
    if not isinstance(model, (Generative, AutoEncoder)):
        capsys.readouterr()
        fails(["sample", str(out)], capsys, "cannot sample")
        fails(["reconstruct", str(out)], capsys, "cannot reconstruct")
    assert "test" in json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert "<img" in (out / "report.html").read_text()


def test_classifier_run_records_accuracy(tmp_path) -> None:
    out = tmp_path / "clf"
    assert main(["train", "classifier", *QUICK, "--out", str(out)]) == 0
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 <= record["test"]["accuracy"] <= 1
    assert json.loads((out / "config.json").read_text())["model_config"]["n_classes"] == 4  # shapes' classes


def test_dcgan_trains_with_radford_settings_unless_flags_say_otherwise(tmp_path) -> None:
    quick = ["--data", "shapes", "--epochs", "1", "--max-steps", "2", "--dim", "8"]
    assert main(["train", "dcgan", *quick, "--out", str(tmp_path / "a")]) == 0
    train_config = json.loads((tmp_path / "a" / "config.json").read_text())["train"]
    assert (train_config["lr"], train_config["beta1"], train_config["batch_size"]) == (2e-4, 0.5, 64)
    assert main(["train", "dcgan", *quick, "--lr", "1e-3", "--out", str(tmp_path / "b")]) == 0
    train_config = json.loads((tmp_path / "b" / "config.json").read_text())["train"]
    assert (train_config["lr"], train_config["beta1"]) == (1e-3, 0.5)
    images = sorted(p.name for p in (tmp_path / "a" / "images").iterdir())
    assert images == ["samples_epoch001.png"]


def test_a_gan_epoch_line_shows_the_game_not_a_summed_or_eval_mode_loss(tmp_path, capsys) -> None:
    quick = ["--data", "shapes", "--epochs", "1", "--max-steps", "4", "--dim", "8"]
    assert main(["train", "dcgan", *quick, "--out", str(tmp_path / "gan")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    last = json.loads((tmp_path / "gan" / "metrics.jsonl").read_text().splitlines()[-1])["train"]
    assert len(lines) == 1, lines
    assert f"D(x) {last['d_real']:.2f}, D(G(z)) {last['d_fake']:.2f}" in lines[-1], lines[-1]
    assert f"D loss {last['d_loss']:.2f}, G loss {last['g_loss']:.2f}" in lines[-1], lines[-1]
    assert "test" not in lines[-1] and "loss 2." not in lines[-1].replace("D loss", "").replace("G loss", "")


def test_models_lists_every_registered_model(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in MODELS:
        line = next(line for line in out.splitlines() if line.split() and line.split()[0] == name)
        assert len(line.split()) > 3, f"{name} needs a description"


def test_data_list_names_every_dataset(capsys) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("fashion-mnist", "mnist", "shapes", "folder:PATH"):
        assert name in out


def test_data_fetch_finds_installed_fashion_mnist(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # only the system folder can hold it
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    assert main(["data", "fetch", "fashion-mnist"]) == 0
    assert capsys.readouterr().out.strip() == SYSTEM_DIRS["fashion-mnist"]


@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["reconstruct"], ["report"], ["models"],
                                     ["data"], ["data", "list"], ["data", "fetch"], ["convarith"],
                                     ["convarith", "explain"], ["convarith", "demo"], ["convarith", "animate"],
                                     ["serve"]])
def test_help_is_complete(command, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: genlab")
    if command == ["train"]:
        for flag in ("--epochs", "--max-steps", "--batch-size", "--lr", "--seed", "--device", "--out",
                     "--resume", "--data", "--data-dir", "--image-size", "--beta", "--latent-dim"):
            assert flag in out


# --- bad input: one line, exit 2, no traceback, no damage ---------------------------------------

def test_unknown_model(capsys) -> None:
    fails(["train", "vea", "--data", "shapes"], capsys, "unknown model 'vea'", "conv-vae")


def test_unknown_dataset(capsys) -> None:
    fails(["train", "vae", "--data", "cifar-11"], capsys, "cifar-11")


def test_option_the_model_lacks(capsys) -> None:
    fails(["train", "ae", *QUICK, "--beta", "4"], capsys, "no option --beta")


def write_idx_images(path: Path, count: int, data_bytes: int) -> None:
    header = bytes([0, 0, 8, 3]) + np.array([count, 28, 28], dtype=">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(data_bytes))


def test_truncated_idx_file(tmp_path, capsys) -> None:
    folder = tmp_path / "fm" / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        shutil.copy(Path(SYSTEM_DIRS["fashion-mnist"]) / name, folder / name)
    write_idx_images(folder / "train-images-idx3-ubyte.gz", 60000, 1000)
    fails(["train", "vae", "--data", "fashion-mnist", "--data-dir", str(tmp_path / "fm")], capsys,
          "train-images-idx3-ubyte.gz")


def test_image_size_the_model_cannot_take(tmp_path, capsys) -> None:
    for i in range(6):
        Image.fromarray(np.full((40, 40), i * 40, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    fails(["train", "conv-vae", "--data", f"folder:{tmp_path}", "--image-size", "30"], capsys,
          "divisible by 4", "30x30")


def test_training_on_a_folder_says_what_was_done_to_it_in_one_line(tmp_path, capsys) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i in range(12):
        Image.fromarray(np.full((20, 30), i * 20, dtype=np.uint8)).save(pictures / f"{i}.png")
    (pictures / "README.txt").write_text("my pictures")
    assert main(["train", "vae", "--data", f"folder:{pictures}", "--image-size", "16", "--epochs", "1",
                 "--max-steps", "2", "--out", str(tmp_path / "run")]) == 0
    said = capsys.readouterr()
    lines = [line for line in said.out.splitlines() if line.startswith(f"folder:{pictures.resolve()}: ")]
    assert len(lines) == 1 and "skipped" not in said.err, said  # stderr stays for errors alone
    assert "12 images" in lines[0] and "1 other file skipped" in lines[0] and "README.txt" in lines[0]
    assert "12 center-cropped to squares" in lines[0] and "12 resized to 16x16" in lines[0]


def test_missing_run_directory(capsys) -> None:
    fails(["sample", "no/such/run"], capsys, "no/such/run")


def test_a_file_given_as_the_run_names_the_run_directory(vae_run, tmp_path, capsys) -> None:
    weights = vae_run / WEIGHTS
    err = fails(["sample", str(weights)], capsys, f"{weights} is a file", f"give the run directory {vae_run}")
    assert "genlab train" not in err and "does not exist" not in err
    stray = tmp_path / "notes.txt"
    stray.write_text("not a run")
    err = fails(["reconstruct", str(stray)], capsys, f"{stray} is a file", "run directory")
    assert "genlab train" not in err


def test_corrupt_config(vae_run, tmp_path, capsys) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(vae_run, broken)
    (broken / "config.json").write_text("{not json")
    fails(["sample", str(broken)], capsys, "config.json")
    fails(["report", str(broken)], capsys, "config.json")


def test_corrupt_weights(vae_run, tmp_path, capsys) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(vae_run, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 100)
    fails(["reconstruct", str(broken)], capsys, "model.safetensors")


def test_checkpoint_of_another_model(vae_run, tmp_path, capsys) -> None:
    other = tmp_path / "ae"
    assert main(["train", "ae", *QUICK, "--out", str(other)]) == 0
    mixed = tmp_path / "mixed"
    shutil.copytree(vae_run, mixed)
    shutil.copy(other / "model.safetensors", mixed / "model.safetensors")
    fails(["sample", str(mixed)], capsys, "another model")
    before = snapshot(vae_run)
    fails(["train", "ae", *QUICK, "--out", str(vae_run), "--resume"], capsys, "holds a 'vae' run")
    assert snapshot(vae_run) == before


def test_existing_run_is_not_overwritten(vae_run, capsys) -> None:
    before = snapshot(vae_run)
    fails(["train", "vae", *QUICK, "--out", str(vae_run)], capsys, "--resume")
    assert snapshot(vae_run) == before


def test_an_existing_out_is_refused_before_training_is_announced(vae_run, tmp_path, capsys) -> None:
    (tmp_path / "someone-elses.txt").write_text("kept")
    for out, needle in ((vae_run, "--resume"), (tmp_path, "holds no genlab run")):
        code = main(["train", "vae", *QUICK, "--out", str(out)])
        said = capsys.readouterr()
        assert code == 2 and needle in said.err and len(said.err.strip().splitlines()) == 1, said.err
        assert "training" not in said.out, said.out


def test_nan_loss_keeps_the_run_intact(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "vae", *QUICK, "--out", str(out)]) == 0
    before = snapshot(out)
    fails(["train", "vae", "--data", "shapes", "--epochs", "2", "--max-steps", "24", "--batch-size", "64",
           "--lr", "1e30", "--out", str(out), "--resume"], capsys, "NaN", "--lr")
    assert {p: b for p, b in snapshot(out).items() if p.name != "report.html"} == \
        {p: b for p, b in before.items() if p.name != "report.html"}


def test_a_real_process_prints_no_traceback(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "genlab", "sample", str(tmp_path / "nothing")],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("genlab: error:") and "Traceback" not in result.stderr


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path) -> None:
    command = [sys.executable, "-m", "genlab", "train", "vae", "--data", "shapes", "--epochs", "3",
               "--batch-size", "64", "--seed", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run([*command, "--out", str(tmp_path / "whole")], check=True, capture_output=True, env=env,
                   timeout=300)
    killed = tmp_path / "killed"
    victim = subprocess.Popen([*command, "--out", str(killed)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 240
    while not (killed / "metrics.jsonl").exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    first_epoch = json.loads((killed / "metrics.jsonl").read_text().splitlines()[0])
    time.sleep(first_epoch["epoch_seconds"] / 2)  # about half-way through the second epoch
    assert victim.poll() is None, "the run finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    subprocess.run([*command, "--out", str(killed), "--resume"], check=True, capture_output=True, env=env,
                   timeout=300)

    def metrics(run: Path) -> list[dict]:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "epoch_seconds"} for line in lines]

    assert len(metrics(killed)) == 3
    assert metrics(killed) == metrics(tmp_path / "whole")
    assert (killed / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()


def test_sampling_a_plain_autoencoder_is_refused_with_a_reason(tmp_path, capsys) -> None:
    out = tmp_path / "ae"
    assert main(["train", "ae", *QUICK, "--out", str(out)]) == 0
    fails(["sample", str(out)], capsys, "cannot sample", "VAE")


def test_bad_config_values_are_one_line(capsys) -> None:
    fails(["train", "vae", "--data", "shapes", "--epochs", "0"], capsys, "epochs must be >= 1")
    fails(["train", "vae", "--data", "shapes", "--latent-dim", "0"], capsys, "latent_dim must be >= 1")
    fails(["train", "vae", "--data", "shapes", "--batch-size", "0"], capsys, "batch_size must be >= 1")


@pytest.mark.parametrize("argv,expected", [
    (["train", "conv-vae-4x4"], {"batch_size": 64, "lr": 1e-3, "beta1": 0.9}),
    (["train", "conv-vae-4x4", "--batch-size", "32"], {"batch_size": 32, "lr": 1e-3, "beta1": 0.9}),
    (["train", "vae"], {"batch_size": 128, "lr": 1e-3, "beta1": 0.9}),
    (["train", "dcgan", "--beta1", "0.9"], {"batch_size": 64, "lr": 2e-4, "beta1": 0.9}),
])
def test_training_settings_come_from_flags_then_the_registry_then_defaults(argv, expected) -> None:
    args = build_parser().parse_args(argv)
    config = plan_run(args.model, given(args, "model"), {}, given(args, "train")).train
    assert {name: getattr(config, name) for name in expected} == expected


def test_counts_are_checked_before_any_work(vae_run, capsys) -> None:
    fails(["sample", str(vae_run), "-n", "0"], capsys, "-n must be at least 1")
    fails(["sample", str(vae_run), "--nrow", "0"], capsys, "--nrow must be at least 1")
    fails(["reconstruct", str(vae_run), "-n", "-3"], capsys, "-n must be at least 1")


def test_an_output_path_that_cannot_be_written_is_one_line(vae_run, tmp_path, capsys) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder")
    fails(["sample", str(vae_run), "--out", str(in_the_way / "samples.png")], capsys, "cannot write", "a-file")
    fails(["sample", str(vae_run), "--out", str(tmp_path / "samples.xyz")], capsys, "not an image format")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no temporary file left behind
    assert main(["sample", str(vae_run), "--out", str(tmp_path / "samples.jpg")]) == 0
    assert Image.open(tmp_path / "samples.jpg").format == "JPEG"  # the suffix picks the format
    fails(["explore", "traverse", str(vae_run), "--out", str(tmp_path / "t.jpg")], capsys, "must end in .png")


def test_ctrl_c_hints_at_resume_only_for_training(monkeypatch, tmp_path, capsys) -> None:
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(genlab.cli.runs, "cmd_report", interrupted)
    monkeypatch.setattr(genlab.workflow, "train_planned", lambda *a, **k: interrupted(None))  # imported when train runs
    assert main(["report", "somewhere"]) == 130
    assert capsys.readouterr().err.strip() == "genlab: interrupted"
    assert main(["train", "vae", "--data", "shapes", "--out", str(tmp_path / "run")]) == 130
    assert "--resume" in capsys.readouterr().err


def test_a_sigterm_a_library_turned_into_its_own_error_still_ends_in_one_line(monkeypatch, capsys) -> None:
    """torchrun stops the survivors of a job with SIGTERM, and the handler's PeerFailure is raised wherever the
    process happens to be. Inside matplotlib's Agg renderer it came out as "ValueError: Invalid bounding box"."""
    import genlab.errors
    import genlab.world

    def drawing(args):
        try:
            signal.raise_signal(signal.SIGTERM)  # the handler runs, and raises, before this returns
        except Exception:  # what a C extension's argument converter does with any error
            raise ValueError("Invalid bounding box") from None
        return 0

    def buggy(args):
        raise ValueError("a bug")

    monkeypatch.setattr(genlab.errors, "_stop", [], raising=False)  # a fresh process: no stop recorded yet
    previous = signal.signal(signal.SIGTERM, genlab.world.stop_on_sigterm)
    try:
        monkeypatch.setattr(genlab.cli.runs, "cmd_report", buggy)
        with pytest.raises(ValueError, match="a bug"):  # no signal: a bug keeps its traceback
            main(["report", "somewhere"])
        monkeypatch.setattr(genlab.cli.runs, "cmd_report", drawing)
        assert main(["report", "somewhere"]) == 2
        signal.raise_signal(signal.SIGTERM)  # a second one, while the first unwinds, lets the cleanup finish
    finally:
        signal.signal(signal.SIGTERM, previous)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genlab: error: this process was stopped (SIGTERM)"), lines
    assert "--resume" in lines[0]


def test_ctrl_c_a_library_turned_into_its_own_error_still_ends_as_an_interrupt(monkeypatch, capsys) -> None:
    """Ctrl-C's KeyboardInterrupt, raised inside a library that reports any error as its own (as matplotlib's Agg
    renderer does), still ends the command as an interrupt; the next command's bug keeps its traceback."""
    def drawing(args):
        try:
            signal.raise_signal(signal.SIGINT)
        except BaseException:
            raise ValueError("Invalid bounding box") from None
        return 0

    def buggy(args):
        raise ValueError("a bug")

    monkeypatch.setattr(genlab.workflow, "train_planned", lambda *a, **k: drawing(None))  # imported when train runs
    # Ctrl-C as in a terminal: a suite started in the background (`make test &`) ignores SIGINT
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert main(["train", "vae", "--data", "shapes", "--out", "run"]) == 130
        assert capsys.readouterr().err.strip().startswith("genlab: interrupted; completed epochs are saved")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # as it was before the command
        monkeypatch.setattr(genlab.cli.runs, "cmd_report", buggy)
        with pytest.raises(ValueError, match="a bug"):  # the interrupt was the last command's, not this one's
            main(["report", "somewhere"])
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a program that ignores Ctrl-C keeps ignoring it
        monkeypatch.setattr(genlab.cli.runs, "cmd_report", lambda args: signal.getsignal(signal.SIGINT))
        assert main(["report", "somewhere"]) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_closed_pipe_ends_quietly() -> None:
    """`genlab models | head -1`: the reader goes away first; no traceback, the shell's status for SIGPIPE."""
    process = subprocess.Popen([sys.executable, "-m", "genlab", "models"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # nobody reads: every write to stdout fails with EPIPE
    error = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and error == ""
