"""`genlab --help` and every command's --help answer without importing torch; the command's own module loads only
when it is named."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def in_fresh_python(code: str) -> str:
    """Run code in a new interpreter with this checkout's sources first; returns its stdout."""
    done = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {SRC!r})\n{code}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_top_level_help_imports_no_torch_and_lists_every_command() -> None:
    out = in_fresh_python(
        "import contextlib, io\n"
        "from genlab.cli import main\n"
        "from genlab.cli.commands import COMMANDS\n"
        "buffer = io.StringIO()\n"
        "with contextlib.redirect_stdout(buffer):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code == 0\n"
        "text = buffer.getvalue()\n"
        "assert all(name in text and entry.help in ' '.join(text.split()) for name, entry in COMMANDS.items()), text\n"
        "print('torch' in sys.modules, sorted(m for m in sys.modules if m.startswith('genlab.cli.')))\n")
    assert out.strip() == "False ['genlab.cli.commands']"


def test_naming_a_command_loads_only_its_module() -> None:
    out = in_fresh_python(
        "from genlab.cli import build_parser\n"
        "build_parser(['convarith', 'explain', '--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('genlab.cli.')))\n")
    assert out.strip() == "['genlab.cli.commands', 'genlab.cli.common', 'genlab.cli.convarith']"


def test_genlab_train_is_simply_the_function() -> None:
    """No subpackage shares the name, so no module-class swap is needed to keep genlab.train the function."""
    out = in_fresh_python(
        "import types\n"
        "import genlab\n"
        "import genlab.runs.store, genlab.training.trainer\n"
        "from genlab.options import TrainConfig\n"
        "from genlab.workflow import train\n"
        "print(genlab.train is train, genlab.TrainConfig is TrainConfig, type(genlab) is types.ModuleType)\n")
    assert out.strip() == "True True True"


HELP_ARGV = [["train"], ["sample"], ["reconstruct"], ["report"], ["models"], ["data", "list"], ["data", "fetch"],
             ["convarith", "explain"], ["convarith", "demo"], ["convarith", "animate"], ["invert", "class"],
             ["invert", "dream"], ["invert", "style"], ["explore", "manifold"], ["explore", "traverse"],
             ["explore", "attribute"], ["evaluate"], ["serve"]]


@pytest.mark.parametrize("argv", HELP_ARGV, ids=" ".join)
def test_every_command_help_imports_no_torch(argv: list[str]) -> None:
    """The flags are built from torch-free declarations (model configs, the catalog, option sets), so that each
    --help answers in a fraction of a second; the help names the command's own flags."""
    out = in_fresh_python(
        "import contextlib, io\n"
        "from genlab.cli import main\n"
        "buffer = io.StringIO()\n"
        "with contextlib.redirect_stdout(buffer):\n"
        "    try:\n"
        f"        main({[*argv, '--help']!r})\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code == 0\n"
        "print('torch' in sys.modules, '--help' in buffer.getvalue(), len(buffer.getvalue().splitlines()))\n")
    imported, has_help, lines = out.split()
    assert (imported, has_help) == ("False", "True") and int(lines) > 3, out


def test_train_help_lists_every_model_and_its_flags() -> None:
    """The torch-free catalog gives train --help what the registry gives a training: every model, every flag."""
    out = in_fresh_python(
        "import contextlib, io\n"
        "from genlab.cli import main\n"
        "buffer = io.StringIO()\n"
        "with contextlib.redirect_stdout(buffer):\n"
        "    try:\n"
        "        main(['train', '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "text = ' '.join(buffer.getvalue().split())\n"
        "from genlab.models.registry import MODELS\n"
        "import dataclasses\n"
        "flags = {'--' + f.name.replace('_', '-') for s in MODELS.values() for f in dataclasses.fields(s.config_cls)}\n"
        "from genlab.models.table import SET_FROM_DATA\n"
        "flags -= {'--' + name.replace('_', '-') for name in SET_FROM_DATA}  # the data sets these, never a flag\n"
        "print(sorted(m for m in MODELS if m not in text), sorted(f for f in flags if f not in text))\n")
    assert out.strip() == "[] []"
