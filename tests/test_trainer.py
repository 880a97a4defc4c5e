"""The trainer: learning happens, runs are written atomically, resume reproduces, failures are clean."""
from __future__ import annotations

import dataclasses
import json
import math
import platform

import pytest
import torch
from tqdm import tqdm

import genlab.nn
from genlab.data.batches import binarize_fixed
from genlab.errors import ConfigError, RunError, TrainingError
from genlab.models.registry import create_model
from genlab.runs.store import load_run, load_state
from genlab.training import trainer as trainer_module
from genlab.training.steps import make_optimizers, make_step
from genlab.training.trainer import TrainConfig, Trainer, held_out_loss, train


def fresh(name: str = "vae", seed: int = 3):
    torch.manual_seed(seed)
    return create_model(name)


def without_timing(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "epoch_seconds"} for m in metrics]


def test_training_lowers_the_test_loss(tiny_shapes, tiny_train_config) -> None:
    metrics = train(fresh(), tiny_shapes, tiny_train_config.replace(epochs=3), log=lambda _: None)
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert metrics[-1]["test"]["loss"] < metrics[0]["test"]["loss"]
    assert set(metrics[0]["train"]) == {"loss", "rec", "kl"}
    assert metrics[-1]["step"] == 3 * 8  # 512 images / batch 64


def test_max_steps_stops_mid_epoch(tiny_shapes, tiny_train_config) -> None:
    metrics = train(fresh("ae"), tiny_shapes, tiny_train_config.replace(max_steps=5), log=lambda _: None)
    assert len(metrics) == 1 and metrics[0]["step"] == 5


def test_run_directory_contents(tiny_shapes, tiny_train_config, tmp_path) -> None:
    out = tmp_path / "run"
    train(fresh(), tiny_shapes, tiny_train_config, out, command="test", log=lambda _: None)
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "state.pt", "metrics.jsonl", "images"} <= names
    assert not [n for n in names if n.endswith(".tmp")], "no temporary files are left behind"
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "vae" and config["train"]["seed"] == 3 and config["command"] == "test"
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    images = sorted(p.name for p in (out / "images").iterdir())
    assert images == ["recon_epoch001.png", "recon_epoch002.png", "samples_epoch001.png", "samples_epoch002.png"]
    assert load_state(out)["epoch"] == 2
    assert load_run(out).model.config.image_shape == (1, 28, 28)


def test_resume_matches_an_uninterrupted_run(tiny_shapes, tiny_train_config, tmp_path) -> None:
    whole = train(fresh(), tiny_shapes, tiny_train_config.replace(epochs=3), tmp_path / "a", log=lambda _: None)
    train(fresh(), tiny_shapes, tiny_train_config.replace(epochs=1), tmp_path / "b", log=lambda _: None)
    resumed = train(fresh(seed=99), tiny_shapes, tiny_train_config.replace(epochs=3), tmp_path / "b",
                    resume=True, log=lambda _: None)
    assert without_timing(resumed) == without_timing(whole)
    a, b = load_run(tmp_path / "a").model, load_run(tmp_path / "b").model
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_fresh_run_never_overwrites_an_existing_one(tiny_shapes, tiny_train_config, tmp_path) -> None:
    out = tmp_path / "run"
    train(fresh(), tiny_shapes, tiny_train_config.replace(epochs=1), out, log=lambda _: None)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(RunError, match="--resume"):
        train(fresh(), tiny_shapes, tiny_train_config, out, log=lambda _: None)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_resuming_with_another_model_is_refused(tiny_shapes, tiny_train_config, tmp_path) -> None:
    out = tmp_path / "run"
    train(fresh(), tiny_shapes, tiny_train_config.replace(epochs=1), out, log=lambda _: None)
    with pytest.raises(RunError, match="holds a 'vae' run"):
        train(fresh("ae"), tiny_shapes, tiny_train_config, out, resume=True, log=lambda _: None)


def test_nan_loss_stops_cleanly_and_keeps_the_last_checkpoint(tiny_shapes, tiny_train_config, tmp_path) -> None:
    out = tmp_path / "run"
    train(fresh(), tiny_shapes, tiny_train_config.replace(epochs=1), out, log=lambda _: None)
    before = (out / "state.pt").read_bytes()
    with pytest.raises(TrainingError, match="NaN or infinite"):
        train(fresh(), tiny_shapes, tiny_train_config.replace(epochs=3, lr=1e30), out, resume=True,
              log=lambda _: None)
    assert (out / "state.pt").read_bytes() == before
    assert load_state(out)["epoch"] == 1


def test_binarize_fixed_is_one_seeded_draw_with_the_pixel_means() -> None:
    x = torch.randint(0, 256, (200, 1, 28, 28), dtype=torch.uint8)
    a, b = binarize_fixed(x), binarize_fixed(x)
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0, 255}
    assert abs(a.float().mean().item() - x.float().mean().item()) < 2.0  # E[255 * Bernoulli(x/255)] = x
    assert not torch.equal(binarize_fixed(x, seed=1), a)


def test_dynamic_binarization_trains_on_fresh_draws_and_tests_on_a_fixed_one(tiny_shapes, tiny_train_config,
                                                                            monkeypatch) -> None:
    seen = []
    original = trainer_module.binarize_dynamic
    monkeypatch.setattr(trainer_module, "binarize_dynamic", lambda x: seen.append(o := original(x)) or o)
    config = tiny_train_config.replace(epochs=1, binarize="dynamic", max_steps=3)
    model = fresh("ae")  # deterministic loss: the test figure can be recomputed exactly
    metrics = train(model, tiny_shapes, config, log=lambda _: None)
    assert len(seen) == 3 and all(set(b.unique().tolist()) <= {0.0, 1.0} for b in seen)
    binary_test = held_out_loss(model, binarize_fixed(tiny_shapes.test_x))
    assert metrics[0]["test"] == pytest.approx(binary_test)
    assert metrics[0]["test"] != pytest.approx(held_out_loss(model, tiny_shapes.test_x))


def test_bf16_autocast_trains_and_reports_float32_parts(tiny_shapes, tiny_train_config) -> None:
    config = tiny_train_config.replace(epochs=1, max_steps=4, precision="bf16")
    model = fresh("conv-vae")
    optimizers = make_optimizers(model, 1e-3)
    parts = make_step(model, optimizers, "bf16")(torch.rand(8, 1, 28, 28), None)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in parts.values())
    assert all(p.dtype == torch.float32 for p in model.parameters()), "weights stay float32 under autocast"
    metrics = train(fresh("conv-vae"), tiny_shapes, config, log=lambda _: None)
    assert math.isfinite(metrics[-1]["test"]["loss"])


def test_channels_last_gives_the_same_training_as_contiguous(tiny_shapes, tiny_train_config) -> None:
    config = tiny_train_config.replace(epochs=1, max_steps=3)
    plain = train(fresh("conv-ae"), tiny_shapes, config.replace(channels_last=False), log=lambda _: None)
    nhwc = train(fresh("conv-ae"), tiny_shapes, config.replace(channels_last=True), log=lambda _: None)
    assert nhwc[-1]["test"]["loss"] == pytest.approx(plain[-1]["test"]["loss"], rel=1e-4)


def is_nhwc(model: torch.nn.Module) -> bool:
    weights = [p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1]
    return bool(weights) and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                                 for p in weights)


def faces_conv_vae():
    torch.manual_seed(3)
    return create_model("conv-vae-64", image_shape=(3, 64, 64))


@pytest.mark.parametrize("setting, expected", [(None, True), (False, False), (True, True)])
def test_64_pixel_conv_models_run_channels_last_on_the_cpu_unless_told_not_to(setting, expected, tiny_faces,
                                                                                tiny_train_config) -> None:
    model = faces_conv_vae()
    config = tiny_train_config.replace(channels_last=setting, device="cpu")
    trainer = Trainer(model, tiny_faces, config, log=lambda _: None, progress=False)
    assert (trainer.memory_format == torch.channels_last) is expected
    assert is_nhwc(model) is expected


@pytest.mark.parametrize("name", ["vae", "conv-vae"])
def test_mlp_and_28_pixel_conv_models_keep_their_layout_on_a_cpu_with_avx512(name, tiny_shapes, tiny_train_config,
                                                                            monkeypatch) -> None:
    monkeypatch.setattr(genlab.nn, "nhwc_at_every_size", lambda: False)
    model = fresh(name)
    trainer = Trainer(model, tiny_shapes, tiny_train_config, log=lambda _: None, progress=False)
    assert trainer.memory_format == torch.contiguous_format and not is_nhwc(model)


@pytest.mark.parametrize("name, expected", [("vae", False), ("conv-vae", True), ("conv-vae-4x4", True)])
def test_every_conv_model_runs_channels_last_on_an_x86_cpu_without_avx512(name, expected, tiny_shapes,
                                                                          tiny_train_config, monkeypatch) -> None:
    monkeypatch.setattr(genlab.nn, "nhwc_at_every_size", lambda: True)
    model = fresh(name)
    trainer = Trainer(model, tiny_shapes, tiny_train_config.replace(device="cpu"), log=lambda _: None,
                      progress=False)
    assert (trainer.memory_format == torch.channels_last) is expected
    assert is_nhwc(model) is expected


@pytest.mark.parametrize("machine, capability, expected", [
    ("x86_64", "AVX2", True), ("x86_64", "DEFAULT", True), ("AMD64", "AVX2", True), ("x86_64", "AVX512", False),
    ("aarch64", "DEFAULT", False), ("arm64", "SVE256", False)])
def test_nhwc_at_every_size_means_an_x86_cpu_without_avx512(machine, capability, expected, monkeypatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert genlab.nn.nhwc_at_every_size() is expected


def test_a_conv_run_is_stored_nchw_and_loads_nhwc_on_the_cpu(tmp_path, tiny_faces, tiny_train_config) -> None:
    config = tiny_train_config.replace(epochs=1, max_steps=2)
    trained = faces_conv_vae()
    train(trained, tiny_faces, config, out=tmp_path / "run", log=lambda _: None)
    loaded = load_run(tmp_path / "run").model
    assert is_nhwc(loaded)
    x = tiny_faces.test_x[:8].float() / 255
    torch.testing.assert_close(loaded.reconstruct(x), trained.eval().reconstruct(x))


def test_compiled_loss_matches_eager(tiny_shapes, tiny_train_config) -> None:
    config = tiny_train_config.replace(epochs=1, max_steps=3)
    eager = train(fresh("ae"), tiny_shapes, config, log=lambda _: None)
    compiled = train(fresh("ae"), tiny_shapes, config.replace(compile=True), log=lambda _: None)
    assert compiled[-1]["test"]["loss"] == pytest.approx(eager[-1]["test"]["loss"], rel=1e-4)


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16"):
        TrainConfig(precision="fp16")


@pytest.mark.parametrize("n_train", [129, 130, 192])  # a lone last image is skipped; a pair is trained
def test_an_epoch_takes_the_steps_it_announces(tiny_shapes, n_train) -> None:
    data = dataclasses.replace(tiny_shapes, train_x=tiny_shapes.train_x[:n_train],
                               train_y=tiny_shapes.train_y[:n_train])
    model = create_model("vae-bn", image_shape=(1, 28, 28))  # batch norm: a batch of one would fail
    trainer = Trainer(model, data, TrainConfig(epochs=1, batch_size=64, device="cpu"), log=lambda line: None,
                      progress=False)
    with tqdm(disable=True) as bar:
        trainer.run_epoch(bar)
    assert trainer.step == trainer.steps_per_epoch() == {129: 2, 130: 3, 192: 3}[n_train]
