"""--val-images N holds out a seeded, stratified random sample of the training images, says so in the run's
record, and a run recorded before this keeps the split it had (its last N images)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from cli_helpers import fails

import genlab
from genlab.cli import main
from genlab.errors import ConfigError
from genlab.models.registry import create_model
from genlab.options import TrainConfig
from genlab.runs.layout import RunLayout
from genlab.runs.store import load_run
from genlab.training.schedule import Schedule

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run-0.1.0"


def sorted_by_class() -> tuple[torch.Tensor, torch.Tensor]:
    """100 images sorted by class, as a folder: dataset is (60 of class 0, 30 of class 1, 10 of class 2); each
    image's one pixel is its index, so a split can be traced back."""
    y = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    return torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1), y


def split(config: TrainConfig) -> tuple[torch.Tensor, ...]:
    model = create_model("ae", hidden=(4,), latent_dim=2, image_shape=(1, 1, 1))
    return Schedule(config, model, torch.device("cpu")).split(*sorted_by_class())


def test_the_validation_images_are_a_seeded_sample_of_every_class() -> None:
    train_x, train_y, val_x, val_y = split(TrainConfig(val_images=20, seed=4))
    assert torch.bincount(val_y, minlength=3).tolist() == [12, 6, 2]  # each class in its share of 20
    assert torch.equal(train_y, torch.tensor([0] * 60 + [1] * 30 + [2] * 10)[train_x.flatten().long()])
    assert sorted(train_x.flatten().tolist() + val_x.flatten().tolist()) == list(range(100))  # a partition
    assert val_x.flatten().tolist() != list(range(80, 100))  # not the last 20
    again, other = split(TrainConfig(val_images=20, seed=4))[2], split(TrainConfig(val_images=20, seed=5))[2]
    assert torch.equal(again, val_x) and not torch.equal(other, val_x)


def test_the_remainders_go_to_the_largest_fractions() -> None:
    val_y = split(TrainConfig(val_images=7, seed=0))[3]
    assert torch.bincount(val_y, minlength=3).tolist() == [4, 2, 1]  # 4.2, 2.1, 0.7: the 0.7 gets the spare one
    assert split(TrainConfig(val_images=0))[2].shape[0] == 0
    with pytest.raises(ConfigError, match="fewer than 2"):
        split(TrainConfig(val_images=99))


def test_a_run_records_its_split(tiny_shapes, tmp_path) -> None:
    out = tmp_path / "run"
    genlab.train(create_model("ae", hidden=(8,), latent_dim=2), tiny_shapes,
                 TrainConfig(epochs=1, max_steps=1, batch_size=64, val_images=32, device="cpu"), out,
                 log=lambda _: None, progress=False)
    assert json.loads(RunLayout(out).config.read_text())["train"]["val_split"] == "stratified"
    assert load_run(out).record.train.val_split == "stratified"


def test_an_old_run_keeps_its_last_images_as_validation(tmp_path, capsys) -> None:
    old = Path(shutil.copytree(FIXTURE, tmp_path / "old"))
    record = load_run(old).record
    assert record.train.val_split == "last"
    data = record.dataset()
    model = create_model("vae", hidden=(8,), latent_dim=2)
    _, _, val_x, _ = Schedule(record.train, model, torch.device("cpu")).split(data.train_x, data.train_y)
    assert torch.equal(val_x, data.train_x[-100:])
    assert main(["train", "--resume", "--out", str(old), "--epochs", "3"]) == 0
    assert json.loads(RunLayout(old).config.read_text())["train"]["val_split"] == "last"
    capsys.readouterr()
    fails(["train", "--resume", "--out", str(old), "--epochs", "4", "--val-split", "stratified"], capsys,
          "val_split last -> stratified")
