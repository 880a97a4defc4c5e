"""`genlab evaluate --disentanglement`: the seven metrics of a run on data with ground-truth factors, kept in the
run's evaluation and printed with the points each used; data or models without what they need get one line."""
from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import fails
from PIL import Image

from genlab.cli import main

KEYS = ("beta_vae", "factor_vae", "mig", "dci", "sap", "modularity", "explicitness")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def train(tmp_path, model: str, data: str, *flags: str) -> str:
    out = str(tmp_path / model)
    assert main(["train", model, "--data", data, "--epochs", "1", "--out", out, *flags]) == 0
    return out


def test_evaluate_disentanglement_on_sprites_writes_every_metric_and_the_points(tmp_path, capsys) -> None:
    run = train(tmp_path, "vae", "sprites:300", "--batch-size", "64", "--latent-dim", "4")
    capsys.readouterr()
    assert main(["evaluate", run, "--disentanglement", "--disentanglement-points", "0.003", "--skip-fid",
                 "-k", "2"]) == 0
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "vae" / "evaluation.json").read_text())["disentanglement"]
    assert set(record) == {*KEYS, "points"}
    assert set(record["dci"]) == {"disentanglement", "completeness", "informativeness"}
    for key in ("beta_vae", "factor_vae", "mig", "sap", "modularity", "explicitness"):
        assert 0.0 <= record[key] <= 1.0, (key, record[key])
    assert record["points"]["mig"]["train"] == 30 and record["points"]["dci"]["test"] == 15
    assert "disentanglement points" in out and "mig 30" in out and "MIG" in out
    assert (tmp_path / "vae" / "report.html").read_text().count("disentanglement points") == 1


def test_without_the_flag_there_are_no_disentanglement_metrics(tmp_path, capsys) -> None:
    run = train(tmp_path, "vae", "shapes", "--latent-dim", "2", "--max-steps", "3")
    assert main(["evaluate", run, "--skip-fid", "-k", "2"]) == 0
    assert "disentanglement" not in json.loads((tmp_path / "vae" / "evaluation.json").read_text())


def test_data_without_factors_and_models_without_an_encoder_get_one_line(tmp_path, capsys) -> None:
    folder = tmp_path / "pictures"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (8, 8), 40 * i).save(folder / label / f"{i}.png")
    run = train(tmp_path, "vae", f"folder:{folder}", "--latent-dim", "2", "--val-images", "0")
    fails(["evaluate", run, "--disentanglement", "--skip-fid", "-k", "2"], capsys, "has no ground-truth factors")
    gan = train(tmp_path, "dcgan", "shapes", "--max-steps", "2", "--dim", "8")
    fails(["evaluate", gan, "--disentanglement", "--skip-fid"], capsys, "has no encoder")
    fails(["evaluate", gan, "--disentanglement-points", "0"], capsys, "disentanglement_points must be >= 0.001")
