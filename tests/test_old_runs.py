"""A run directory written by an earlier release (tests/fixtures/run-0.1.0: genlab 0.1.0, a 2-epoch vae on shapes
with a validation split) still loads, resumes and evaluates."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from genlab.cli import main
from genlab.data.batches import to_unit_float
from genlab.runs.layout import RunLayout
from genlab.runs.record import read_metrics
from genlab.runs.store import load_run
from genlab.training.trainer import held_out_loss

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run-0.1.0"


@pytest.fixture()
def old_run(tmp_path) -> Path:
    """A copy of the fixture (training and evaluating write into the run)."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "run-0.1.0"))


def test_an_old_run_loads_with_its_best_weights_and_its_numbers(old_run) -> None:
    run = load_run(old_run)
    recorded = read_metrics(old_run)
    assert run.record.model == "vae" and run.record.versions["genlab"] == "0.1.0"
    assert run.weights == "best" and [m["epoch"] for m in recorded] == [1, 2] and recorded[-1]["best_epoch"] == 2
    test_x = run.test_images(run.dataset())
    # the one-sample test loss the old trainer recorded after epoch 2, measured again on the same 2000 images
    assert held_out_loss(run.model, test_x)["loss"] == pytest.approx(recorded[-1]["test"]["loss"], abs=1.0)
    x = to_unit_float(test_x[:4])
    assert run.model.reconstruct(x).shape == x.shape


def test_an_old_run_resumes_where_it_stopped(old_run, capsys) -> None:
    before = read_metrics(old_run)
    assert main(["train", "--resume", "--out", str(old_run), "--epochs", "3"]) == 0
    after = read_metrics(old_run)
    assert after[:2] == before and after[2]["epoch"] == 3
    assert "epoch 3/3" in capsys.readouterr().out
    assert json.loads(RunLayout(old_run).config.read_text())["train"]["epochs"] == 3


def test_an_old_run_evaluates(old_run, capsys) -> None:
    assert main(["evaluate", str(old_run), "-k", "5", "--skip-fid", "--test-images", "200"]) == 0
    result = json.loads(RunLayout(old_run).evaluation.read_text())
    assert result["model"] == "vae" and result["test_images"] == 200
    assert result["neg_elbo"]["neg_elbo"] == pytest.approx(read_metrics(old_run)[-1]["test"]["loss"], abs=8.0)
    assert result["iwae_nll"]["nats"] < result["neg_elbo"]["neg_elbo"]
    assert "-ELBO" in capsys.readouterr().out and RunLayout(old_run).report.is_file()
