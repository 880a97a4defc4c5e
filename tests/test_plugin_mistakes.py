"""A plugin package with every mistake a plugin author makes (tests/plugins/genlab-mistakes), pip-installed beside
genlab: each mistake is answered with one line that names the plugin and exit 2, and every other command, the
package's correct model and dataset included, still works."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import fails

from genlab import plugins
from genlab.cli import main
from genlab.data import catalog
from genlab.models import registry

PACKAGE = Path(__file__).resolve().parent / "plugins" / "genlab-mistakes"
TRAIN = ["--epochs", "1", "--max-steps", "2", "--batch-size", "32"]


def forget_plugins() -> None:
    """Drop what the entry points registered in this process, so that the next lookup reads them afresh."""
    for table in (registry.MODELS, catalog.REGISTERED):
        for name in [n for n, entry in table.items() if getattr(entry[0], "__module__", "") == "genlab_mistakes"]:
            del table[name]
    sys.modules.pop("genlab_mistakes", None)
    for cached in (plugins.has_entry_points, registry.load_entry_points, catalog.load_entry_points):
        cached.cache_clear()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package pip-installed into a folder of its own, on sys.path; a vae run trained beside it."""
    source, site = tmp_path_factory.mktemp("source") / "genlab-mistakes", tmp_path_factory.mktemp("site")
    shutil.copytree(PACKAGE, source)  # pip builds in the source tree: keep the repository's copy clean
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(source)], check=True, capture_output=True)
    assert list(site.glob("genlab_mistakes-*.dist-info/entry_points.txt"))
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        forget_plugins()
        for argv in (["train", "vae", "--data", "shapes", "--hidden", "8", "--out", str(runs / "vae"), *TRAIN],
                     ["train", "no-to-image", "--data", "dots", "--out", str(runs / "no-to-image"), *TRAIN],
                     ["train", "no-sample", "--data", "dots", "--out", str(runs / "no-sample"), *TRAIN]):
            assert main(argv) == 0, argv
        yield runs
    forget_plugins()


MISTAKES = {
    "field-without-default": (["train", "no-default", "--data", "dots"], ["no-default", "latent_dim", "no default"]),
    "rule-raises-ValueError": (["train", "value-rule", "--data", "dots", "--latent-dim", "5"],
                               ["genlab_mistakes.ValueRuleConfig", "latent_dim above 4 is not supported"]),
    "defaults-refused-by-a-rule": (["train", "bad-defaults", "--data", "dots"],
                                   ["bad-defaults", "latent_dim above 4 is not supported"]),
    "flag-of-a-training-option": (["train", "epochs-field", "--data", "dots"], ["epochs-field", "--epochs"]),
    "not-a-ModelSpec": (["train", "not-a-spec", "--data", "dots"], ["not-a-spec", "ModelSpec"]),
    "model-import-error": (["train", "import-error", "--data", "dots"], ["import-error", "NO_SUCH_NAME"]),
    "loader-raises-its-own-error": (["train", "tiny-ae", "--data", "missing-file"],
                                    ["missing-file", "FileNotFoundError"]),
    "dataset-name-not-allowed": (["train", "tiny-ae", "--data", "Bad_Name"], ["Bad_Name", "genlab.datasets"]),
    "loader-not-callable": (["train", "tiny-ae", "--data", "not-callable"], ["not-callable", "callable"]),
    "dataset-import-error": (["train", "tiny-ae", "--data", "import-broken"], ["import-broken", "NO_SUCH_LOADER"]),
}


@pytest.mark.parametrize("argv, needles", MISTAKES.values(), ids=MISTAKES)
def test_each_mistake_is_one_line_naming_the_plugin(installed, tmp_path, capsys, argv, needles) -> None:
    fails([*argv, "--out", str(tmp_path / "run"), *TRAIN], capsys, *needles)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [["reconstruct"], ["explore", "manifold"], ["explore", "scatter"]])
def test_a_model_without_to_image_is_told_so(installed, capsys, command) -> None:
    fails([*command, str(installed / "no-to-image")], capsys, "no-to-image", "to_image")


def test_evaluating_a_model_without_sample_says_what_was_skipped_and_why(installed, capsys) -> None:
    assert main(["evaluate", str(installed / "no-sample"), "-k", "2", "--skip-fid"]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "-ELBO" in out and "sample" in out, out


def test_every_other_command_still_works(installed, tmp_path, capsys) -> None:
    assert main(["models"]) == 0
    listed = capsys.readouterr()
    assert "tiny-ae" in listed.out and "vae " in listed.out and "no-default" not in listed.out
    for broken in ("no-default", "bad-defaults", "not-a-spec", "import-error"):
        line = next(line for line in listed.err.splitlines() if f"'{broken}'" in line)
        assert line.startswith("genlab: warning: the genlab.models entry point"), line
    assert main(["data", "list"]) == 0
    listed = capsys.readouterr().out
    assert "dots" in listed and all(name in listed for name in ("not-callable", "import-broken", "Bad_Name"))
    run = str(tmp_path / "tiny")
    for argv in (["train", "tiny-ae", "--data", "dots", "--out", run, *TRAIN], ["reconstruct", run, "-n", "4"],
                 ["sample", str(installed / "vae"), "-n", "4"], ["reconstruct", str(installed / "vae"), "-n", "4"],
                 ["evaluate", str(installed / "vae"), "-k", "2", "--skip-fid"], ["report", str(installed / "vae")],
                 ["train", "vae", "--data", "shapes", "--hidden", "8", "--out", str(tmp_path / "vae"), *TRAIN]):
        assert main(argv) == 0, (argv, capsys.readouterr().err)
        assert "Traceback" not in capsys.readouterr().err


def flags_in_help(argv: list[str], capsys) -> set[str]:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return {word.rstrip(",") for word in capsys.readouterr().out.split() if word.startswith("--")}


def test_train_model_help_lists_that_models_flags_only(installed, capsys) -> None:
    everything = flags_in_help(["train"], capsys)
    tiny, vae, dcgan = (flags_in_help(["train", name], capsys) for name in ("tiny-ae", "vae", "dcgan"))
    assert "--latent-dim" in tiny and "--hidden" not in tiny and "--beta" not in tiny
    assert {"--beta", "--hidden", "--latent-dim"} <= vae and "--dim" not in vae
    assert "--beta" not in dcgan and "--dim" in dcgan
    assert {"--epochs", "--lr", "--data", "--out"} <= tiny & vae & dcgan  # training and data flags stay
    assert (vae | dcgan | tiny) <= everything and "--beta" in everything


def test_train_model_help_loads_no_torch_without_plugins() -> None:
    script = ("import contextlib, io, sys\nfrom genlab.cli import main\nout = io.StringIO()\n"
              "with contextlib.redirect_stdout(out):\n    try:\n        main(['train', 'conv-vae', '--help'])\n"
              "    except SystemExit:\n        pass\nprint('torch' in sys.modules, '--conv-channels' in out.getvalue(), "
              "'(default conv)' in out.getvalue(), '--dim ' in out.getvalue())")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "True", "True", "False"], done.stderr
