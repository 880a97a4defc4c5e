"""The training controls: learning-rate warm-up and schedules, gradient clipping, weight decay and the moving
average of the weights, each against a closed form or torch's own optimizer, and each carried across --resume."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from safetensors.torch import load_file

from genlab.data.dataset import Dataset
from genlab.errors import RunError
from genlab.models.registry import create_model
from genlab.options import TrainConfig
from genlab.runs import layout
from genlab.runs.store import load_run, load_state
from genlab.training.average import WeightAverage
from genlab.training.schedule import lr_factor
from genlab.training.steps import make_optimizers, train_step
from genlab.training.trainer import train


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def small(tiny_shapes) -> Dataset:
    """192 training images: three steps of 64 per epoch."""
    d = tiny_shapes
    return Dataset(d.name, d.train_x[:192], d.train_y[:192], d.test_x[:32], d.test_y[:32], d.classes)


def fresh(name: str = "vae", seed: int = 3, **config):
    torch.manual_seed(seed)
    return create_model(name, **({"hidden": (16,), "latent_dim": 2} if name == "vae" else {}), **config)


def batch(seed: int = 0, n: int = 16) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def quiet(*args, **kwargs):
    return train(*args, **kwargs, log=lambda _: None, progress=False)


def record_lrs(monkeypatch) -> list[float]:
    """The learning rate of each optimizer step the trainer takes (the first group of the first optimizer)."""
    seen: list[float] = []
    real = make_optimizers

    def recording(*args, **kwargs):
        optimizers = real(*args, **kwargs)
        first = next(iter(optimizers.values()))
        first.register_step_pre_hook(lambda opt, *_: seen.append(opt.param_groups[0]["lr"]))
        return optimizers
    monkeypatch.setattr("genlab.training.trainer.make_optimizers", recording)
    return seen


# ---------------------------------------------------------------- the learning rate


def test_cosine_with_warmup_is_its_closed_form() -> None:
    total, warmup = 100, 10
    assert lr_factor(0, total, "cosine", warmup) == pytest.approx(0.1)
    assert lr_factor(4, total, "cosine", warmup) == pytest.approx(0.5)
    assert lr_factor(9, total, "cosine", warmup) == pytest.approx(1.0)
    assert lr_factor(10, total, "cosine", warmup) == pytest.approx(1.0)  # t = 0: cos 0
    assert lr_factor(55, total, "cosine", warmup) == pytest.approx(0.5)  # t = 45 of 90: cos(pi/2) = 0
    assert lr_factor(99, total, "cosine", warmup) == pytest.approx(0.5 * (1 + math.cos(math.pi * 89 / 90)))
    assert lr_factor(100, total, "cosine", warmup) == pytest.approx(0.0, abs=1e-12)


def test_cosine_after_warmup_follows_torchs_cosine_annealing() -> None:
    total, warmup, lr = 40, 5, 0.3
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=lr)
    annealing = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup)
    for step in range(warmup, total):
        assert lr * lr_factor(step, total, "cosine", warmup) == pytest.approx(optimizer.param_groups[0]["lr"])
        optimizer.step()
        annealing.step()


def test_step_schedule_with_warmup_is_its_closed_form() -> None:
    factors = [lr_factor(s, 1000, "step", warmup=5, every=10, gamma=0.5) for s in range(60)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert factors[5:15] == pytest.approx([1.0] * 10)  # t = 0..9
    assert factors[15] == pytest.approx(0.5) and factors[34] == pytest.approx(0.25)
    assert factors[35] == pytest.approx(0.125) and factors[59] == pytest.approx(0.5 ** 5)
    assert lr_factor(7, 50) == 1.0  # constant, no warm-up


def test_the_trainer_sets_each_steps_rate(small, monkeypatch) -> None:
    seen = record_lrs(monkeypatch)
    config = TrainConfig(epochs=2, batch_size=64, lr=0.01, seed=3, device="cpu", lr_schedule="cosine", lr_warmup=2)
    metrics = quiet(fresh(), small, config)
    expected = [0.01 * lr_factor(s, 6, "cosine", 2) for s in range(6)]
    assert seen == pytest.approx(expected, rel=1e-12)
    assert [m["lr"] for m in metrics] == pytest.approx([expected[2], expected[5]])


def test_a_constant_rate_stays_what_it_was(small, monkeypatch) -> None:
    seen = record_lrs(monkeypatch)
    metrics = quiet(fresh(), small, TrainConfig(epochs=1, batch_size=64, lr=0.01, seed=3, device="cpu"))
    assert seen == [0.01] * 3 and "lr" not in metrics[0]


# ---------------------------------------------------------------- gradient clipping


def test_clipping_bounds_each_optimizers_gradient_norm() -> None:
    model = fresh("dcgan", dim=8)
    optimizers = make_optimizers(model, 1e-3, 0.5, clip_grad=0.05)
    norms: dict[str, list[float]] = {name: [] for name in optimizers}
    for name, optimizer in optimizers.items():
        weights = [p for g in optimizer.param_groups for p in g["params"]]
        optimizer.register_step_pre_hook(lambda opt, *_, name=name, weights=weights: norms[name].append(float(
            torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in weights if p.grad is not None])))))
    for seed in range(3):
        train_step(model, optimizers, batch(seed, 8))
    for name, values in norms.items():  # hooks registered later run later: after the clip
        assert len(values) == 3 and max(values) <= 0.05 * (1 + 1e-5), name
        assert max(values) > 0.04, f"{name}: the gradients of this model are far above 0.05, so clipped to it"


def test_a_clipped_step_equals_the_manual_reference() -> None:
    model = fresh()
    reference = copy.deepcopy(model)
    torch.manual_seed(1)  # the VAE's loss draws its reparameterization noise: the same for both
    train_step(model, make_optimizers(model, 0.01, clip_grad=1.0), batch())
    optimizer = torch.optim.Adam(reference.parameters(), lr=0.01, fused=True)
    torch.manual_seed(1)
    loss = reference.loss(batch())["loss"]
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(list(reference.parameters()), 1.0)
    assert norm > 10, "the reference gradient must be clipped for this test to mean anything"
    optimizer.step()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=1e-9)  # the step left the clipped gradient
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- weight decay


def test_weight_decay_is_torchs_adamw_on_one_step() -> None:
    model = fresh()
    with_adamw, with_adam = copy.deepcopy(model), copy.deepcopy(model)
    optimizers = make_optimizers(model, 0.01, weight_decay=0.5)
    assert isinstance(optimizers["model"], torch.optim.AdamW)
    torch.manual_seed(1)  # the VAE's loss draws its reparameterization noise: the same for all three
    train_step(model, optimizers, batch())
    for reference, kind in ((with_adamw, torch.optim.AdamW), (with_adam, torch.optim.Adam)):
        settings = {"weight_decay": 0.5} if kind is torch.optim.AdamW else {}
        optimizer = kind(reference.parameters(), lr=0.01, **settings)  # the plain loop, not the fused kernel
        torch.manual_seed(1)
        reference.loss(batch())["loss"].backward()
        optimizer.step()
    for p, q in zip(model.parameters(), with_adamw.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    moved = max(float((p - q).detach().abs().max()) for p, q in zip(model.parameters(), with_adam.parameters()))
    assert moved > 1e-5, "decoupled decay shrinks the weights beyond Adam's step"


def test_no_weight_decay_keeps_plain_adam() -> None:
    assert type(make_optimizers(fresh(), 0.01)["model"]) is torch.optim.Adam


# ---------------------------------------------------------------- the moving average


def test_the_average_after_n_steps_is_its_closed_form() -> None:
    model, decay = torch.nn.Linear(3, 2), 0.9
    history = [torch.cat([p.detach().flatten() for p in model.parameters()])]
    average = WeightAverage(model, decay)
    for k in range(1, 6):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn_like(p) * k)
        history.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        average.update()
    n = len(history) - 1
    # avg_n = d^n w_0 + sum_k (1 - d) d^(n - k) w_k
    expected = decay ** n * history[0] + sum((1 - decay) * decay ** (n - k) * history[k] for k in range(1, n + 1))
    torch.testing.assert_close(torch.cat([v.flatten() for v in average.state_dict().values()]), expected)


def test_a_gans_run_keeps_its_generators_average_and_readers_use_it(small, tmp_path, monkeypatch, capsys) -> None:
    trained: list[dict[str, torch.Tensor]] = []
    real = make_optimizers

    def recording(model, *args, **kwargs):
        optimizers = real(model, *args, **kwargs)
        optimizers["generator"].register_step_post_hook(lambda *_: trained.append(
            {k: v.detach().clone() for k, v in model.generator.state_dict().items()}))
        return optimizers
    monkeypatch.setattr("genlab.training.trainer.make_optimizers", recording)
    model = fresh("dcgan", dim=8)
    start = {k: v.detach().clone() for k, v in model.generator.named_parameters()}
    quiet(model, small, TrainConfig(epochs=1, batch_size=64, seed=3, device="cpu", beta1=0.5, ema=0.8), tmp_path)
    saved, last = load_file(tmp_path / layout.EMA_WEIGHTS), load_file(tmp_path / layout.WEIGHTS)
    for name, w0 in start.items():
        expected = 0.8 ** 3 * w0 + sum(0.2 * 0.8 ** (3 - k) * trained[k - 1][name] for k in (1, 2, 3))
        torch.testing.assert_close(saved[f"generator.{name}"], expected)
    assert all(torch.equal(saved[k], last[k]) for k in last if not k.startswith("generator.")), "D as trained"
    assert not all(torch.equal(saved[k], last[k]) for k in start_keys(start)), "G averaged, not as trained"
    run = load_run(tmp_path)
    assert run.weights == "ema" and "moving average" in run.weights_note()
    assert all(torch.equal(v, saved[k]) for k, v in run.model.state_dict().items())
    assert load_run(tmp_path, weights="last").weights == "last"


# ---------------------------------------------------------------- every control across --resume


def start_keys(start: dict[str, torch.Tensor]) -> list[str]:
    return [f"generator.{name}" for name in start]


class Interrupted(Exception):
    pass


def stop_after_first_epoch(record: dict) -> None:
    if record["epoch"] == 1:
        raise Interrupted


@pytest.mark.parametrize("controls", [
    {"lr_schedule": "cosine", "lr_warmup": 2, "clip_grad": 0.5, "weight_decay": 0.05, "ema": 0.7},
    {"lr_schedule": "step", "lr_step": 2, "lr_gamma": 0.5, "lr_warmup": 1},
])
def test_an_interrupted_run_resumes_to_the_same_numbers(small, tmp_path, controls) -> None:
    config = TrainConfig(epochs=3, batch_size=64, lr=0.01, seed=3, device="cpu", **controls)
    whole = quiet(fresh(), small, config, tmp_path / "whole")
    with pytest.raises(Interrupted):
        quiet(fresh(), small, config, tmp_path / "cut", on_epoch_end=stop_after_first_epoch)
    assert load_state(tmp_path / "cut")["epoch"] == 1
    resumed = quiet(fresh(seed=99), small, config, tmp_path / "cut", resume=True)
    timeless = [{k: v for k, v in m.items() if k != "epoch_seconds"} for m in resumed]
    assert timeless == [{k: v for k, v in m.items() if k != "epoch_seconds"} for m in whole]
    assert [m["lr"] for m in whole] != [whole[0]["lr"]] * 3, "the rate moves over the run"
    names = [layout.WEIGHTS] + ([layout.EMA_WEIGHTS] if "ema" in controls else [])
    for name in names:
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "cut" / name).read_bytes(), name
    assert (tmp_path / "whole" / layout.EMA_WEIGHTS).is_file() == ("ema" in controls)


@pytest.mark.parametrize("change,named", [({"ema": 0.9}, "ema 0.7 -> 0.9"),
                                          ({"weight_decay": 0.0}, "weight_decay 0.05 -> 0.0")])
def test_resume_refuses_another_average_or_decay(small, tmp_path, change, named) -> None:
    config = TrainConfig(epochs=2, batch_size=64, seed=3, device="cpu", ema=0.7, weight_decay=0.05)
    quiet(fresh(), small, config.replace(epochs=1), tmp_path)
    with pytest.raises(RunError, match=named):
        quiet(fresh(), small, config.replace(**change), tmp_path, resume=True)


def test_resume_may_change_the_schedule_and_clipping(small, tmp_path, monkeypatch) -> None:
    config = TrainConfig(epochs=1, batch_size=64, lr=0.01, seed=3, device="cpu")
    quiet(fresh(), small, config, tmp_path)
    seen = record_lrs(monkeypatch)
    quiet(fresh(), small, config.replace(epochs=2, lr_schedule="step", lr_step=1, lr_gamma=0.5, clip_grad=1.0),
          tmp_path, resume=True)
    assert seen == pytest.approx([0.01 * 0.5 ** s for s in (3, 4, 5)])


def test_a_checkpoint_without_its_average_is_refused(small, tmp_path) -> None:
    config = TrainConfig(epochs=2, batch_size=64, seed=3, device="cpu", ema=0.7)
    quiet(fresh(), small, config.replace(epochs=1), tmp_path)
    state = torch.load(tmp_path / layout.STATE, weights_only=True)
    del state["ema"]
    torch.save(state, tmp_path / layout.STATE)
    with pytest.raises(RunError, match="no moving average"):
        quiet(fresh(), small, config, tmp_path, resume=True)
