"""`genlab train --tensorboard`: the event files read back with TensorBoard's own reader hold what the run did."""
from __future__ import annotations

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from genlab.cli import main
from genlab.errors import ConfigError
from genlab.runs.layout import RunLayout
from genlab.runs.store import read_metrics
from genlab.workflow import train

TINY = ["--data", "shapes", "--epochs", "2", "--batch-size", "500", "--latent-dim", "3",
        "--hidden", "16"]


def events(run_dir) -> EventAccumulator:
    reader = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    reader.Reload()
    return reader


def test_loss_parts_images_and_hyperparameters_read_back(tmp_path, capsys) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "vae"
    assert main(["train", "vae", *TINY, "--out", str(out), "--tensorboard"]) == 0
    metrics = read_metrics(out)
    reader = events(out)
    tags = reader.Tags()
    for part in ("loss", "rec", "kl"):
        for split in ("train", "test"):
            logged = [(event.step, event.value) for event in reader.Scalars(f"{part}/{split}")]
            expected = [(row["epoch"], row[split][part]) for row in metrics]
            assert [step for step, _ in logged] == [step for step, _ in expected] == [1, 2]
            assert [value for _, value in logged] == pytest.approx([value for _, value in expected], rel=1e-6)
    assert {"samples", "recon"} <= set(tags["images"])
    image = reader.Images("samples")[-1]
    assert image.step == 2 and image.width > 200 and image.encoded_image_string[:4] == b"\x89PNG"
    content = reader.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content)
    logged_config = {name: value.ListFields()[0][1] for name, value in hparams.session_start_info.hparams.items()}
    config = json.loads((out / "config.json").read_text())
    assert logged_config["model"] == "vae" and logged_config["train.lr"] == config["train"]["lr"]
    assert logged_config["model_config.hidden"] == "[16]"


def test_tensorboard_says_where_its_logs_go_and_how_to_open_them(tmp_path, capsys) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "vae"
    assert main(["train", "vae", *TINY, "--epochs", "1", "--max-steps", "2", "--out", str(out),
                 "--tensorboard"]) == 0
    said = capsys.readouterr()
    lines = [line for line in (said.out + said.err).splitlines() if "tensorboard --logdir" in line]
    assert len(lines) == 1 and f"tensorboard --logdir {RunLayout(out).tensorboard}" in lines[0], said


def test_a_resumed_run_keeps_logging_and_a_run_directory_is_required(tmp_path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "vae"
    assert main(["train", "vae", *TINY, "--epochs", "1", "--out", str(out), "--tensorboard"]) == 0
    assert main(["train", "vae", *TINY, "--out", str(out), "--resume", "--tensorboard"]) == 0
    steps = [event.step for event in events(out).Scalars("loss/test")]
    assert steps == [1, 2]
    with pytest.raises(ConfigError, match="give out="):
        train(torch.nn.Linear(1, 1), None, tensorboard=True)  # type: ignore[arg-type]
