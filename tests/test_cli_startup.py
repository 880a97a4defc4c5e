"""`genlab --help` answers without importing torch; the command's own module loads only when it is named."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_genlab_train_stays_the_function_after_the_subpackage_loads() -> None:
    out = in_fresh_python(
        "import genlab\n"
        "import genlab.train.run\n"
        "from genlab.train.config import TrainConfig\n"
        "from genlab.workflow import train\n"
        "print(genlab.train is train, genlab.TrainConfig is TrainConfig)\n")
    assert out.strip() == "True True"
