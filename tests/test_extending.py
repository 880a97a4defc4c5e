"""docs/extending.md runs as written: the example package, pip-installed on its own with its entry points,
works in every `genlab` command, and registering in a script works through the Python API."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from genlab.data import catalog
from genlab.models.registry import MODELS
from genlab.runs import layout
from genlab.runs.record import read_metrics

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"
PACKAGE = ROOT / "examples" / "genlab-stripes"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def final_numbers(folder: Path) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "epoch_seconds"} for m in read_metrics(folder)]


def test_the_doc_shows_the_example_package_as_it_is() -> None:
    assert blocks("python")[0] == (PACKAGE / "genlab_stripes.py").read_text(encoding="utf-8")
    assert blocks("toml")[0] == (PACKAGE / "pyproject.toml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The example package installed by pip into a folder of its own, as a separate distribution."""
    source = tmp_path_factory.mktemp("source") / "genlab-stripes"
    shutil.copytree(PACKAGE, source)  # pip builds in the source tree: keep the repository's copy clean
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(source)], check=True, capture_output=True)
    assert (site / "genlab_stripes.py").is_file()
    assert list(site.glob("genlab_stripes-*.dist-info/entry_points.txt"))
    return site


def genlab(args: list[str], cwd: Path, site: Path | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-m", "genlab", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_installed_package_works_in_every_command(installed, tmp_path) -> None:
    commands = [line.split() for line in blocks("sh")[0].strip().splitlines()]
    assert commands[0] == ["pip", "install", "./examples/genlab-stripes"]  # done by the fixture, as pip would
    assert commands[-1][:2] == ["genlab", "serve"]
    outputs = {}
    for command in commands[1:-1]:
        assert command[0] == "genlab"
        done = genlab(command[1:], tmp_path, installed)
        assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
        outputs[command[1]] = outputs.get(command[1], "") + done.stdout
    assert re.search(r"^\s*dropout-vae\b", outputs["models"], flags=re.M)
    assert re.search(r"^\s*stripes\b.*Horizontal \(class 0\) and vertical \(class 1\) stripes", outputs["data"],
                     flags=re.M)
    run_dir = tmp_path / "runs" / "dropout-stripes"
    record = json.loads((run_dir / "config.json").read_text())
    assert record["model"] == "dropout-vae" and record["model_config"]["input_dropout"] == 0.3
    assert record["data"]["name"] == "stripes"
    for picture in ("samples.png", "reconstructions.png", "explore/manifold.png"):
        assert (run_dir / "images" / picture).is_file(), picture
    assert json.loads((run_dir / "evaluation.json").read_text())
    assert "dropout-vae" in (run_dir / "report.html").read_text(encoding="utf-8")
    assert final_numbers(tmp_path / "runs" / "dropout-again") == final_numbers(run_dir)

    # Ctrl-C as in a terminal: a suite started in the background (`make test &`) ignores SIGINT, and a child
    # would inherit that and never stop; the server starts with SIGINT's default disposition instead
    server = subprocess.Popen([sys.executable, "-m", "genlab", *commands[-1][1:], "--port", "0"], cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(installed)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        address = re.search(r"http://[\d.]+:\d+/", server.stdout.readline()).group(0)
        with urllib.request.urlopen(address + "api/info", timeout=60) as answer:
            info = json.loads(answer.read())
        assert "dropout-vae" in json.dumps(info)
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0


def test_without_the_package_its_runs_are_refused_in_one_line(installed, tmp_path) -> None:
    assert genlab(["train", "dropout-vae", "--data", "stripes", "--epochs", "1", "--max-steps", "2",
                   "--out", "runs/x"], tmp_path, installed).returncode == 0
    done = genlab(["sample", "runs/x"], tmp_path, None)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "'dropout-vae', which is not installed here" in done.stderr and "genlab.models" in done.stderr
    assert "dropout-vae" not in genlab(["models"], tmp_path, None).stdout


@pytest.fixture
def script_registered(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(PACKAGE))  # importable, not installed: no entry points
    yield {}
    MODELS.pop("dropout-vae", None)
    catalog.REGISTERED.pop("stripes", None)
    sys.modules.pop("genlab_stripes", None)


def test_registering_in_a_script_works_through_the_python_api(script_registered, capsys) -> None:
    exec(blocks("python")[1], script_registered)
    assert "dropout-vae 0.3" in capsys.readouterr().out
    assert (Path("runs/dropout-stripes") / "images" / "samples.png").is_file()


def test_a_built_in_family_is_its_module_and_one_table_row(tmp_path) -> None:
    """docs/extending.md's linear autoencoder, added to a copy of the package by writing its module and its row:
    no other file changes, and the commands know the model (its flags read without torch)."""
    module, row = (block for block in blocks("python") if "LinearAE" in block)
    original = ROOT / "src" / "genlab"
    copy = tmp_path / "src" / "genlab"
    shutil.copytree(original, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "models" / "linear_ae.py").write_text(module, encoding="utf-8")
    table = (copy / "models" / "table.py").read_text(encoding="utf-8")
    assert table.count("\n})\n") == 1  # the end of TABLE
    (copy / "models" / "table.py").write_text(table.replace("\n})\n", "\n" + row + "})\n"), encoding="utf-8")
    changed = sorted(str(path.relative_to(copy)) for path in copy.rglob("*.py")
                     if not (original / path.relative_to(copy)).is_file()
                     or (original / path.relative_to(copy)).read_bytes() != path.read_bytes())
    assert changed == ["models/linear_ae.py", "models/table.py"]

    source = tmp_path / "src"
    assert "linear-ae" in genlab(["models"], tmp_path, source).stdout
    help_check = subprocess.run(
        [sys.executable, "-c", "import sys, contextlib, io\nfrom genlab.cli import main\n"
         "out = io.StringIO()\nwith contextlib.redirect_stdout(out):\n    try:\n        main(['train', '--help'])\n"
         "    except SystemExit:\n        pass\nprint('torch' in sys.modules, 'linear-ae' in out.getvalue())"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(source)}, capture_output=True, text=True, timeout=120)
    assert help_check.stdout.split() == ["False", "True"], help_check.stderr
    for command in (["train", "linear-ae", "--data", "shapes", "--epochs", "1", "--max-steps", "20", "--out",
                     "runs/linear"], ["reconstruct", "runs/linear", "-n", "4"],
                    ["evaluate", "runs/linear", "--skip-fid", "--test-images", "50", "--probe-train", "200"]):
        done = genlab(command, tmp_path, source)
        assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
    record = json.loads((tmp_path / "runs" / "linear" / layout.CONFIG).read_text())
    assert record["model"] == "linear-ae" and record["model_config"]["latent_dim"] == 16
    assert "reconstruction MSE" in done.stdout
