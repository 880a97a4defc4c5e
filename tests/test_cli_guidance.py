"""The command line points the way: --version, a bare `genlab` shows the help, and a mistyped command, model
or flag is answered with the closest real one."""
from __future__ import annotations

import subprocess
import sys

import pytest
from cli_helpers import fails

from genlab.cli import main
from genlab.version import __version__


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as stop:  # as --help does
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"genlab {__version__}"


def test_bare_genlab_prints_the_help_and_loads_no_torch():
    code = ("import sys; from genlab.cli import main; code = main([]); "
            "assert 'torch' not in sys.modules, 'torch loaded'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "commands:" in done.stdout and "train" in done.stdout and "evaluate" in done.stdout
    assert done.stderr == ""


def test_a_mistyped_command_is_answered_with_the_closest(capsys):
    fails(["trian"], capsys, "did you mean 'train'?")


def test_a_mistyped_model_is_answered_with_the_closest(capsys):
    fails(["train", "vea"], capsys, "did you mean 'vae'?")


def test_a_mistyped_flag_is_answered_with_the_closest(capsys):
    fails(["train", "vae", "--latent-dims", "2"], capsys, "did you mean --latent-dim?")


def test_a_mistyped_flag_of_a_nested_command(capsys):
    fails(["explore", "traverse", "RUN", "--dimz", "0"], capsys, "did you mean --dims?")


def test_nothing_close_gives_no_guess(capsys):
    err = fails(["train", "vae", "--qqqqqqqq", "2"], capsys, "--qqqqqqqq")
    assert "did you mean" not in err
