"""--threads and $GENLAB_THREADS set torch's threads; train, evaluate and invert say the device and thread count
first; long loops report on stderr: a bar on a terminal, elsewhere a line every ~10 s with an ETA."""
from __future__ import annotations

import io
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import fails
from tqdm import tqdm

import genlab.progress
import genlab.threads
from genlab.cli import main
from genlab.progress import ProgressLines, duration, progress_bar, track
from genlab.threads import compute_line, emulates_bf16, requested_threads

QUICK = ["--data", "shapes", "--epochs", "1", "--max-steps", "12", "--batch-size", "64"]
FIRST_LINE = "genlab on cpu, {} thread{} (--threads or GENLAB_THREADS to change)"


class Clock:
    """A fake time.monotonic that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _threads_restored(monkeypatch, tmp_path):
    """Each test starts from torch on 2 threads without $GENLAB_THREADS, in its own folder, and leaves torch as
    it found it."""
    before = torch.get_num_threads()
    monkeypatch.delenv("GENLAB_THREADS", raising=False)
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def every_update(monkeypatch) -> None:
    """Progress lines at every update, so that a loop of a second writes them."""
    monkeypatch.setattr(genlab.progress, "EVERY_SECONDS", 0.0)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "vae"
    assert main(["train", "vae", *QUICK, "--out", str(out)]) == 0
    return out


# ---------------------------------------------------------------- progress lines


def test_a_line_every_ten_seconds_with_an_eta() -> None:
    stream, clock = io.StringIO(), Clock()
    bar = progress_bar(100, "epoch 1/2", "step", stream=stream, clock=clock)
    assert isinstance(bar, ProgressLines)
    for _ in range(25):
        clock.now += 1.0
        bar.update(1)
    assert stream.getvalue().splitlines() == [
        "epoch 1/2: 10/100 steps (10%), 10 s elapsed, ETA 1 min 30 s",
        "epoch 1/2: 20/100 steps (20%), 20 s elapsed, ETA 1 min 20 s"]


def test_the_eta_counts_only_the_steps_done_here_and_follows_the_description() -> None:
    stream, clock = io.StringIO(), Clock()
    bar = progress_bar(100, "epoch 6/10", stream=stream, clock=clock, initial=50)  # a resumed run
    clock.now += 12.0
    bar.set_description("epoch 7/10")
    bar.update(10)
    assert stream.getvalue() == "epoch 7/10: 60/100 steps (60%), 12 s elapsed, ETA 48 s\n"


def test_a_loop_without_a_total_says_how_far_it_got() -> None:
    stream, clock = io.StringIO(), Clock()
    bar = progress_bar(None, "features", "batch", stream=stream, clock=clock)
    clock.now += 10.0
    bar.update(3)
    assert stream.getvalue() == "features: 3 batches, 10 s elapsed, ETA unknown\n"


def test_a_terminal_gets_tqdm_and_a_disabled_bar_writes_nothing() -> None:
    terminal = Terminal()
    with progress_bar(10, "style transfer", stream=terminal) as bar:
        assert isinstance(bar, tqdm) and not bar.disable
        bar.update(5)
    assert "style transfer" in terminal.getvalue()
    stream, clock = io.StringIO(), Clock()
    with progress_bar(10, "quiet", stream=stream, clock=clock, enabled=False) as bar:
        clock.now += 60.0
        bar.update(5)
    assert stream.getvalue() == ""


def test_track_yields_every_item_and_counts_each_when_done() -> None:
    stream, clock = io.StringIO(), Clock()

    def slow(items):
        for item in items:
            clock.now += 6.0
            yield item
    assert list(track(slow(range(4)), 4, "IWAE k=5", stream=stream, clock=clock)) == [0, 1, 2, 3]
    assert stream.getvalue().splitlines() == ["IWAE k=5: 2/4 batches (50%), 12 s elapsed, ETA 12 s",
                                              "IWAE k=5: 4/4 batches (100%), 24 s elapsed, ETA 0 s"]


@pytest.mark.parametrize("seconds, text", [(0.4, "0 s"), (59, "59 s"), (185, "3 min 05 s"), (7620, "2 h 07 min")])
def test_durations_read_like_a_clock(seconds: float, text: str) -> None:
    assert duration(seconds) == text


# ---------------------------------------------------------------- threads


def test_the_environment_variable_is_read_and_checked(capsys) -> None:
    assert requested_threads(None, {"GENLAB_THREADS": " 3 "}) == 3
    assert requested_threads(2, {"GENLAB_THREADS": "3"}) == 2  # the flag wins
    assert requested_threads(None, {}) is None


def test_the_first_line_names_the_device_and_threads() -> None:
    assert compute_line(torch.device("cpu"), 1) == FIRST_LINE.format(1, "")
    assert compute_line(torch.device("cpu"), 4) == FIRST_LINE.format(4, "s")
    assert compute_line(torch.device("cpu"), 1, processes=2) == (
        "genlab on cpu, 2 processes x 1 thread each (--threads or GENLAB_THREADS to change)")


def test_train_sets_the_threads_says_so_first_and_reports_each_epoch(tmp_path, capsys, every_update) -> None:
    assert main(["train", "vae", *QUICK, "--threads", "1", "--out", str(tmp_path / "a")]) == 0
    assert torch.get_num_threads() == 1
    printed = capsys.readouterr()
    out, err = printed.out.splitlines(), printed.err.splitlines()
    assert out[0] == FIRST_LINE.format(1, "") and out[1].startswith("training vae on shapes")
    assert any(line.startswith("epoch 1/1: 12/12 steps (100%)") and "ETA 0 s" in line for line in err), err


def test_the_environment_variable_sets_the_threads_and_the_flag_beats_it(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("GENLAB_THREADS", "3")
    assert main(["train", "ae", *QUICK, "--max-steps", "1", "--out", str(tmp_path / "a")]) == 0
    assert torch.get_num_threads() == 3
    assert capsys.readouterr().out.splitlines()[0] == FIRST_LINE.format(3, "s")
    assert main(["train", "ae", *QUICK, "--max-steps", "1", "--threads", "1", "--out", str(tmp_path / "b")]) == 0
    assert torch.get_num_threads() == 1


def test_bad_thread_counts_fail_in_one_line(capsys, monkeypatch) -> None:
    fails(["train", "vae", *QUICK, "--threads", "0"], capsys, "threads must be >= 1")
    monkeypatch.setenv("GENLAB_THREADS", "many")
    fails(["train", "vae", *QUICK], capsys, "GENLAB_THREADS must be a whole number", "'many'")
    assert torch.get_num_threads() == 2


def test_evaluate_sets_the_threads_says_so_first_and_reports_the_likelihood(vae_run, capsys, every_update) -> None:
    assert main(["evaluate", str(vae_run), "-k", "5", "--test-images", "20", "--nll-images", "10", "--skip-fid",
                 "--max-decodes", "10", "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1
    printed = capsys.readouterr()
    out, err = printed.out.splitlines(), printed.err.splitlines()
    assert out[0] == FIRST_LINE.format(1, "")
    assert any(line.startswith("IWAE k=5: 5/5 batches (100%)") for line in err), err


BF16_WARNING = "genlab: warning: this CPU has no bfloat16 arithmetic (avx512_bf16 or AMX)"


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists() or platform.machine().lower() not in genlab.threads.X86,
                    reason="reads the x86 CPU flags Linux lists")
def test_bf16_counts_as_emulated_on_an_x86_cpu_without_avx512_bf16_or_amx() -> None:
    flags = set(Path("/proc/cpuinfo").read_text().split())
    assert emulates_bf16(torch.device("cpu")) == (not flags & {"avx512_bf16", "amx_tile"})
    assert not emulates_bf16(torch.device("cuda")) and not emulates_bf16(torch.device("meta"))


@pytest.mark.parametrize("emulated", [True, False])
def test_train_and_evaluate_warn_when_bf16_would_be_emulated(vae_run, tmp_path, capsys, monkeypatch,
                                                             emulated) -> None:
    monkeypatch.setattr(genlab.threads, "emulates_bf16", lambda device: emulated and device.type == "cpu")
    assert main(["train", "vae", *QUICK, "--max-steps", "1", "--precision", "bf16",
                 "--out", str(tmp_path / "a")]) == 0
    assert main(["evaluate", str(vae_run), "-k", "2", "--test-images", "10", "--nll-images", "2", "--skip-fid",
                 "--precision", "bf16"]) == 0
    printed = capsys.readouterr()
    warned = [line for line in printed.err.splitlines() if line.startswith(BF16_WARNING)]
    assert len(warned) == (2 if emulated else 0), printed.err
    assert BF16_WARNING not in printed.out
    assert main(["train", "vae", *QUICK, "--max-steps", "1", "--out", str(tmp_path / "b")]) == 0  # fp32: no warning
    assert BF16_WARNING not in capsys.readouterr().err


COMPILE_WARNING = "genlab: warning: on this CPU (x86 without AVX-512) torch.compile makes conv models train slower"


@pytest.mark.parametrize("machine, capability, device, compile, convolutional, expected", [
    ("x86_64", "AVX2", "cpu", True, True, True), ("x86_64", "DEFAULT", "cpu", True, True, True),
    ("x86_64", "AVX512", "cpu", True, True, False), ("aarch64", "DEFAULT", "cpu", True, True, False),
    ("x86_64", "AVX2", "cpu", False, True, False), ("x86_64", "AVX2", "cpu", True, False, False),
    ("x86_64", "AVX2", "cuda", True, True, False)])
def test_compile_of_a_conv_model_warns_on_an_x86_cpu_without_avx512(machine, capability, device, compile,
                                                                   convolutional, expected, monkeypatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    warning = genlab.threads.compile_warning(torch.device(device), compile, convolutional)
    assert (warning is not None) is expected
    assert warning is None or warning.startswith(COMPILE_WARNING)


@pytest.mark.parametrize("without_avx512", [True, False])
def test_train_warns_when_compile_would_slow_a_conv_model(tmp_path, capsys, monkeypatch, without_avx512) -> None:
    monkeypatch.setattr(genlab.threads, "without_avx512", lambda: without_avx512)
    monkeypatch.setattr(torch, "compile", lambda fn, *args, **kwargs: fn)  # the warning is the subject, not inductor
    for model in ("conv-vae", "vae"):
        assert main(["train", model, *QUICK, "--max-steps", "1", "--compile", "--out", str(tmp_path / model)]) == 0
    printed = capsys.readouterr()
    warned = [line for line in printed.err.splitlines() if line.startswith(COMPILE_WARNING)]
    assert len(warned) == (1 if without_avx512 else 0), printed.err  # the conv model's run only
    assert COMPILE_WARNING not in printed.out
    assert main(["train", "conv-vae", *QUICK, "--max-steps", "1", "--out", str(tmp_path / "eager")]) == 0
    assert COMPILE_WARNING not in capsys.readouterr().err


@pytest.mark.parametrize("command", [["sample"], ["reconstruct"], ["explore", "manifold"]])
def test_the_picture_commands_take_threads_too(vae_run, command, tmp_path) -> None:
    assert main([*command, str(vae_run), "--threads", "1", "--out", str(tmp_path / "x.png")]) == 0
    assert torch.get_num_threads() == 1


def test_invert_sets_the_threads_says_so_first_and_reports_its_steps(tmp_path, capsys, every_update) -> None:
    run = tmp_path / "classifier"
    assert main(["train", "classifier", *QUICK, "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["invert", "class", str(run), "--steps", "3", "--classes", "0", "--threads", "1",
                 "--out", str(tmp_path / "c.png")]) == 0
    assert torch.get_num_threads() == 1
    printed = capsys.readouterr()
    out, err = printed.out.splitlines(), printed.err.splitlines()
    assert out[0] == FIRST_LINE.format(1, "")
    assert any(line.startswith("class visualization: 3/3 steps (100%)") for line in err), err


@pytest.mark.parametrize("given, imports, expected", [
    ({}, "import genlab", "PASSIVE"),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, "import genlab", "ACTIVE"),        # the user's choice stays
    ({"GOMP_SPINCOUNT": "300000"}, "import genlab", None),             # so does a spin count
    ({}, "import torch; import genlab", None),                         # too late: the runtime has read it
    ({}, "from genlab.cli import main", "PASSIVE"),                    # the `genlab` command's first import
])
def test_genlab_asks_for_threads_that_sleep_when_they_wait(given, imports, expected) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    said = subprocess.run([sys.executable, "-c", f"{imports}; import os; print(os.environ.get('OMP_WAIT_POLICY'))"],
                          env={**env, **given}, capture_output=True, text=True, check=True).stdout.strip()
    assert said == str(expected)


def test_wait_quietly_leaves_a_chosen_policy_alone() -> None:
    from genlab.threads import wait_quietly
    chosen = {"OMP_WAIT_POLICY": "active"}
    assert not wait_quietly(chosen) and chosen == {"OMP_WAIT_POLICY": "active"}
    assert not wait_quietly({})  # torch is loaded in this process: setting it now would change nothing
