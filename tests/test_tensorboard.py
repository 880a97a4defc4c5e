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


def tiny_vae_run(out, every: int, **options):
    from genlab import create_model, load_dataset
    from genlab.options import TrainConfig
    torch.set_num_threads(1)
    data = load_dataset("shapes")
    torch.manual_seed(0)
    model = create_model("vae", image_shape=data.image_shape, latent_dim=3, hidden=(16,))
    config = TrainConfig(batch_size=500, **options)
    return model, data, train(model, data, config, out, tensorboard=True, tensorboard_every=every,
                              progress=False, log=lambda line: None)


def test_per_step_parts_average_to_the_epoch_means_in_metrics_jsonl(tmp_path) -> None:
    out = tmp_path / "vae"
    tiny_vae_run(out, 4, epochs=2)  # 12000 images / 500 = 24 steps per epoch: six points each
    metrics, reader = read_metrics(out), events(out)
    assert "train_step/lr" not in reader.Tags()["scalars"]  # no schedule, no rate logged
    for part in ("loss", "rec", "kl"):
        logged = [(event.step, event.value) for event in reader.Scalars(f"train_step/{part}")]
        assert [step for step, _ in logged] == list(range(4, 49, 4))
        for row, first in zip(metrics, (0, 6)):  # equal batches: the epoch's mean is the mean of its six points
            epoch_mean = sum(value for _, value in logged[first:first + 6]) / 6
            assert epoch_mean == pytest.approx(row["train"][part], rel=1e-5, abs=1e-4)
    first_loss = reader.Scalars("train_step/loss")[0].value
    assert first_loss > metrics[0]["train"]["loss"]  # the loss falls within the epoch: the points are not flat


def test_a_cut_short_interval_and_the_scheduled_rate_are_logged_at_their_steps(tmp_path) -> None:
    from genlab.training.schedule import lr_factor
    out = tmp_path / "vae"
    tiny_vae_run(out, 5, epochs=1, max_steps=12, lr_schedule="cosine", lr_warmup=2)
    metrics, reader = read_metrics(out), events(out)
    loss = [(event.step, event.value) for event in reader.Scalars("train_step/loss")]
    assert [step for step, _ in loss] == [5, 10, 12]
    weighted = (loss[0][1] * 5 + loss[1][1] * 5 + loss[2][1] * 2) / 12  # equal batches, 5 + 5 + 2 steps
    assert weighted == pytest.approx(metrics[0]["train"]["loss"], rel=1e-5)
    rates = [(event.step, event.value) for event in reader.Scalars("train_step/lr")]
    lr = metrics[0]["lr"] / lr_factor(11, 12, "cosine", 2)
    assert [step for step, _ in rates] == [5, 10, 12]
    assert [value for _, value in rates] == pytest.approx([lr * lr_factor(s - 1, 12, "cosine", 2) for s in (5, 10, 12)],
                                                          rel=1e-5)
    assert rates[-1][1] == pytest.approx(metrics[0]["lr"], rel=1e-5)
    assert rates[0][1] > rates[1][1] > rates[2][1]


def test_the_projector_holds_test_codes_with_class_names_and_sprites(tmp_path) -> None:
    from PIL import Image

    from genlab.data.batches import to_unit_float
    from genlab.training.tensorboard import N_PROJECTED, PROJECTOR_TAG
    out = tmp_path / "vae"
    model, data, _ = tiny_vae_run(out, 10, epochs=1, max_steps=6)
    logs = RunLayout(out).tensorboard
    config = (logs / "projector_config.pbtxt").read_text()
    folder = logs / f"{6:05d}" / PROJECTOR_TAG
    assert f"{6:05d}/{PROJECTOR_TAG}/metadata.tsv" in config and "sprite.png" in config
    assert data.test_x.shape[0] > N_PROJECTED == 1000
    rows = [[float(v) for v in line.split("\t")] for line in (folder / "tensors.tsv").read_text().splitlines()]
    labels = (folder / "metadata.tsv").read_text().splitlines()
    assert len(rows) == len(labels) == N_PROJECTED and all(len(row) == 3 for row in rows)
    assert labels == [data.classes[i] for i in data.test_y[:N_PROJECTED].tolist()]
    assert len(set(labels)) > 1
    model.eval()
    with torch.no_grad():
        means = model.posterior(to_unit_float(data.test_x[:N_PROJECTED]))[0]
    assert torch.tensor(rows) == pytest.approx(means, abs=1e-4)  # the posterior means, in test-set order
    sprite = Image.open(folder / "sprite.png")
    side = 32 * data.image_shape[1]  # ceil(sqrt(1000)) = 32 images a row
    assert sprite.size == (side, side)


def test_a_model_without_an_encoder_gets_a_note_and_no_projector(tmp_path, capsys) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "gan"
    assert main(["train", "dcgan", "--data", "shapes", "--epochs", "1", "--max-steps", "2", "--batch-size", "100",
                 "--out", str(out), "--tensorboard"]) == 0
    said = capsys.readouterr().out
    assert "DCGAN has no encoder, so no latent codes go to the embedding projector" in said
    assert not (RunLayout(out).tensorboard / "projector_config.pbtxt").exists()
    assert [event.step for event in events(out).Scalars("train_step/d_loss")] == [2]


def test_no_tensorboard_writer_and_no_step_hook_without_the_flag(tmp_path, monkeypatch) -> None:
    import genlab.training.trainer as trainer_module
    import genlab.workflow as workflow_module
    torch.set_num_threads(1)
    hooks = []
    original = trainer_module.Trainer.fit

    def fit(self, *args, **kwargs):
        hooks.append(self.on_step)
        return original(self, *args, **kwargs)

    def refuse(*args, **kwargs):
        raise AssertionError("a TensorBoard log was opened without --tensorboard")

    monkeypatch.setattr(trainer_module.Trainer, "fit", fit)
    monkeypatch.setattr(workflow_module, "TensorBoardLog", refuse)
    out = tmp_path / "vae"
    assert main(["train", "vae", *TINY, "--epochs", "1", "--max-steps", "3", "--out", str(out)]) == 0
    assert hooks == [None]
    assert not RunLayout(out).tensorboard.exists() and read_metrics(out)[-1]["step"] == 3


def test_tensorboard_every_sets_the_step_interval_from_the_command_line(tmp_path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "vae"
    assert main(["train", "vae", *TINY, "--epochs", "1", "--max-steps", "7", "--out", str(out), "--tensorboard",
                 "--tensorboard-every", "3"]) == 0
    assert [event.step for event in events(out).Scalars("train_step/loss")] == [3, 6, 7]


@pytest.mark.parametrize("flags, needle", [
    (["--tensorboard-every", "3"], "--tensorboard-every sets the interval of --tensorboard's step scalars"),
    (["--tensorboard", "--tensorboard-every", "0"], "--tensorboard-every must be at least 1"),
])
def test_a_bad_tensorboard_interval_is_one_line_before_any_training(tmp_path, capsys, flags, needle) -> None:
    out = tmp_path / "vae"
    assert main(["train", "vae", *TINY, "--out", str(out), *flags]) == 2
    said = capsys.readouterr()
    assert needle in said.err and len(said.err.strip().splitlines()) == 1 and not out.exists()


def test_the_projector_shows_the_codes_of_the_weights_evaluate_uses_the_moving_average(tmp_path) -> None:
    from genlab.data.batches import to_unit_float
    from genlab.runs.store import load_run
    from genlab.training.tensorboard import N_PROJECTED, PROJECTOR_TAG
    out = tmp_path / "vae"
    model, data, _ = tiny_vae_run(out, 10, epochs=1, max_steps=6, ema=0.9)
    rows = [[float(v) for v in line.split("\t")]
            for line in (RunLayout(out).tensorboard / f"{6:05d}" / PROJECTOR_TAG / "tensors.tsv").read_text()
            .splitlines()]
    x = to_unit_float(data.test_x[:N_PROJECTED])
    run = load_run(out)
    assert run.weights == "ema"
    model.eval()
    with torch.no_grad():
        averaged, trained = run.model.posterior(x)[0], model.posterior(x)[0]
    assert (averaged - trained).abs().max() > 1e-2  # six steps of decay 0.9: the average is not the trained weights
    assert torch.tensor(rows) == pytest.approx(averaged, abs=1e-4)
