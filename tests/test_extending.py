"""docs/extending.md runs as written: a user's model and dataset work in every command."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from genlab.cli import main
from genlab.data import catalog
from genlab.models.registry import MODELS
from genlab.serve.api import Explorer, handle
from genlab.train.run import load_run

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def registered(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    yield namespace
    MODELS.pop("dropout-vae", None)
    catalog.REGISTERED.pop("stripes", None)


def test_the_worked_example_runs_through_every_command(registered, capsys) -> None:
    definitions, usage = python_blocks()
    exec(definitions, registered)
    exec(usage, registered)
    assert "dropout-vae 0.3" in capsys.readouterr().out
    run_dir = Path("runs/dropout-stripes")
    assert (run_dir / "images" / "samples.png").is_file() and (run_dir / "evaluation.json").is_file()
    assert main(["reconstruct", str(run_dir), "-n", "4"]) == 0
    assert main(["report", str(run_dir)]) == 0 and "dropout-vae" in (run_dir / "report.html").read_text()
    assert main(["models"]) == 0 and "dropout-vae" in capsys.readouterr().out
    assert main(["data", "list"]) == 0 and "stripes" in capsys.readouterr().out
    explorer = Explorer(load_run(run_dir))
    answer = handle(explorer, "GET", "/api/info", "", b"")
    assert answer.status == 200 and b"dropout-vae" in answer.body
    assert main(["train", "--config", str(run_dir / "config.json"), "--out", "runs/again"]) == 0


def test_a_run_of_an_unregistered_model_says_it_is_not_installed(registered, capsys) -> None:
    definitions, _ = python_blocks()
    exec(definitions, registered)
    assert main(["train", "dropout-vae", "--data", "stripes", "--epochs", "1", "--max-steps", "2",
                 "--out", "runs/x"]) == 0
    MODELS.pop("dropout-vae")
    assert main(["sample", "runs/x"]) == 2
    assert "'dropout-vae', which is not installed here" in capsys.readouterr().err
