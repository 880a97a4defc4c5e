"""Training controls: validation split, KL warm-up, early stopping, best weights beside the last."""
from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import fails
from safetensors import safe_open

import genlab
from genlab.cli import main
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.models.registry import create_model
from genlab.options import TrainConfig
from genlab.runs import layout
from genlab.training.schedule import EarlyStopping, kl_weight, split_validation


def test_kl_weight_rises_linearly_to_one_at_the_last_warmup_epoch() -> None:
    assert [kl_weight(e, 4) for e in range(1, 7)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert kl_weight(1, 0) == 1.0


def test_early_stopping_keeps_the_best_and_ignores_flat_warmup_epochs() -> None:
    stopping = EarlyStopping(patience=2)
    assert stopping.update(10.0, 1, warming_up=True)
    assert not stopping.update(11.0, 2, warming_up=True) and stopping.bad_epochs == 0
    assert not stopping.update(float("nan"), 3, warming_up=False) and stopping.bad_epochs == 1
    assert not stopping.stopped
    assert not stopping.update(10.0, 4, warming_up=False)  # equal is not better
    assert stopping.stopped and (stopping.best, stopping.best_epoch) == (10.0, 1)
    copy = EarlyStopping(patience=2)
    copy.load_state_dict(stopping.state_dict())
    assert copy == stopping


def test_validation_split_is_the_last_training_images() -> None:
    x, y = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1), torch.arange(10)
    train_x, train_y, val_x, val_y = split_validation(x, y, 3)
    assert train_y.tolist() == list(range(7)) and val_y.tolist() == [7, 8, 9]
    assert torch.equal(val_x.flatten(), torch.tensor([7, 8, 9], dtype=torch.uint8))
    with pytest.raises(ConfigError, match="fewer than 2"):
        split_validation(x, y, 9)


def test_early_stopping_needs_a_validation_split(capsys) -> None:
    with pytest.raises(ConfigError, match="--val-images"):
        TrainConfig(early_stop=5)
    fails(["train", "vae", "--data", "shapes", "--early-stop", "3", "--epochs", "1"], capsys, "--val-images")


def test_warmup_scales_only_the_kl_and_reports_the_true_bound() -> None:
    model = create_model("vae", hidden=(8,), latent_dim=2)
    x = torch.rand(4, 1, 28, 28)
    torch.manual_seed(1)
    parts = model.loss(x, kl_weight=torch.tensor(0.25))
    torch.manual_seed(1)
    plain = model.loss(x)
    assert torch.allclose(parts["loss"], plain["rec"] + 0.25 * plain["kl"])
    assert torch.allclose(parts["bound"], plain["loss"])


def test_warmup_needs_a_model_with_a_kl_term(tiny_shapes) -> None:
    with pytest.raises(ConfigError, match="KL weight"):
        genlab.train(create_model("ae", hidden=(8,), latent_dim=2), tiny_shapes,
                     TrainConfig(epochs=1, kl_warmup=3, device="cpu"), log=lambda _: None, progress=False)


def test_a_controlled_run_records_validation_warmup_and_keeps_the_best_weights(tmp_path) -> None:
    out = tmp_path / "run"
    data = genlab.load_dataset("shapes")
    small = Dataset("shapes", data.train_x[:192], data.train_y[:192], data.test_x[:64], data.test_y[:64],
                    data.classes)
    config = TrainConfig(epochs=12, batch_size=64, lr=0.2, seed=5, device="cpu", val_images=64, val_split="last",
                         kl_warmup=3, early_stop=2)  # the loss of these 64 turns up before epoch 12
    torch.manual_seed(5)
    metrics = genlab.train(create_model("vae", hidden=(16,), latent_dim=2), small, config, out,
                           log=lambda _: None, progress=False)
    assert len(metrics) < 12, "the validation loss turns up at this learning rate: early stopping ends the run"
    assert metrics[0]["kl_weight"] == pytest.approx(1 / 3) and metrics[-1]["kl_weight"] == 1.0
    assert all({"val", "best_epoch", "patience_left"} <= set(m) and "bound" in m["train"] for m in metrics)
    best = min(range(len(metrics)), key=lambda i: metrics[i]["val"]["loss"]) + 1
    assert metrics[-1]["best_epoch"] == best < len(metrics)
    with safe_open(out / layout.BEST_WEIGHTS, "pt") as f:
        assert f.metadata()["epoch"] == str(best)
    assert genlab.load_run(out).weights == "best"
    best_w, last_w = genlab.load_run(out).model.state_dict(), genlab.load_run(out, weights="last").model.state_dict()
    assert not all(torch.equal(best_w[k], last_w[k]) for k in best_w)
    saved = [json.loads(line) for line in (out / layout.METRICS).read_text().splitlines()]
    assert saved[-1]["patience_left"] == 0
    report = (out / "report.html").read_text()
    assert "validation loss" in report and "stopped early" in report and f"at epoch {best}" in report


def test_commands_say_which_weights_they_use(tiny_shapes, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "vae", "--data", "shapes", "--hidden", "16", "--latent-dim", "2", "--epochs", "2",
                 "--max-steps", "4", "--batch-size", "64", "--val-images", "200", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["sample", str(out), "-n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert "using the best weights" in capsys.readouterr().err
    assert main(["sample", str(out), "-n", "4", "--weights", "last", "--out", str(tmp_path / "t.png")]) == 0
    assert "using the last epoch's weights" in capsys.readouterr().err
