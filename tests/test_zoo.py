"""The model zoo's variants do what their papers say: denoising, contractive, IWAE, learned variance, DCGAN, classifier."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlab import losses
from genlab.errors import ConfigError
from genlab.models.autoencoder import jacobian_frobenius_sq
from genlab.models.dcgan import upsampling_plan
from genlab.models.registry import create_model, data_fields
from genlab.training.steps import make_optimizers, train_step
from genlab.training.trainer import held_out_loss, train


def brute_force_jacobian_sq(encode, x: torch.Tensor) -> torch.Tensor:
    """||dh/dx||_F^2 per image, one input pixel (Jacobian column) at a time by central differences in float64."""
    flat = x.flatten(1).double()
    totals = []
    for image in flat:
        columns = []
        for i in range(image.numel()):
            step = torch.zeros_like(image)
            step[i] = 1e-5
            plus, minus = encode((image + step).view(1, *x.shape[1:])), encode((image - step).view(1, *x.shape[1:]))
            columns.append((plus - minus)[0] / 2e-5)
        totals.append(torch.stack(columns, 1).pow(2).sum())
    return torch.stack(totals)


@pytest.mark.parametrize("overrides", [
    {},                                                             # one sigmoid layer: the closed form
    {"hidden": (12,), "code_activation": "none"},                   # a deeper encoder: autograd, row by row
    {"arch": "conv", "conv_channels": (3,), "code_activation": "sigmoid"},
])
def test_contractive_penalty_equals_a_brute_force_jacobian(overrides) -> None:
    shape = (1, 6, 6)
    model = create_model("contractive-ae", image_shape=shape, latent_dim=5, **overrides).double()
    x = torch.rand(3, *shape, dtype=torch.float64)
    exact = model.contractive_penalty(x)
    assert torch.allclose(exact, brute_force_jacobian_sq(model.encode, x), rtol=1e-6)
    assert model.is_single_sigmoid_layer() == (overrides == {})


def test_contractive_loss_adds_lambda_times_the_penalty_and_trains_it() -> None:
    model = create_model("ae", image_shape=(1, 8, 8), contractive=0.5, hidden=(10,))
    x = torch.rand(4, 1, 8, 8)
    parts = model.loss(x)
    assert torch.allclose(parts["loss"], parts["rec"] + 0.5 * parts["contractive"])
    parts["loss"].backward()
    assert model.encoder[0][1][0].weight.grad.abs().sum() > 0
    with torch.no_grad():  # evaluation runs under no_grad: the penalty must still be computable there
        assert torch.isfinite(model.loss(x)["contractive"])


@pytest.mark.parametrize("hidden", [(), (10,)])  # the closed form and the autograd path
def test_contractive_loss_runs_the_encoder_once(hidden) -> None:
    model = create_model("ae", image_shape=(1, 8, 8), contractive=0.5, hidden=hidden, code_activation="sigmoid")
    calls = []
    model.encoder.register_forward_hook(lambda *args: calls.append(1))
    model.loss(torch.rand(4, 1, 8, 8))["loss"].backward()
    assert len(calls) == 1


def test_jacobian_helper_treats_examples_independently() -> None:
    weight = torch.randn(3, 4)
    x = torch.randn(5, 4)
    # h = tanh(W x): J = diag(1 - h^2) W, so ||J||^2 = sum_j (1 - h_j^2)^2 ||w_j||^2
    h = torch.tanh(x @ weight.T)
    expected = ((1 - h ** 2) ** 2 * weight.pow(2).sum(1)).sum(1)
    assert torch.allclose(jacobian_frobenius_sq(lambda v: torch.tanh(v @ weight.T), x), expected, atol=1e-5)


def test_denoising_corrupts_the_input_but_rebuilds_the_clean_image() -> None:
    model = create_model("denoising-ae", image_shape=(1, 8, 8), corruption="mask", corruption_level=0.5)
    x = torch.rand(64, 1, 8, 8) * 0.5 + 0.5  # no zeros, so masked pixels are exactly the zeros
    torch.manual_seed(1)
    corrupted = model.corrupt(x)
    assert 0.4 < (corrupted == 0).float().mean() < 0.6
    torch.manual_seed(1)
    parts = model.loss(x)
    expected = model.reconstruction_error(model.decode(model.encode(corrupted)), x).mean()
    assert torch.allclose(parts["rec"], expected)
    noisy = create_model("denoising-ae", corruption="gaussian", corruption_level=0.1)
    noise = noisy.corrupt(torch.full((20, 1, 28, 28), 0.5)) - 0.5  # 5 sigma from the clipping bounds
    assert abs(noise.std().item() - 0.1) < 0.005
    clipped = noisy.corrupt(torch.ones(4, 1, 28, 28))
    assert clipped.max() == 1 and clipped.min() < 1
    assert torch.equal(create_model("ae").corrupt(x), x)


@pytest.mark.parametrize("bad", [{"corruption": "salt"}, {"corruption": "mask", "corruption_level": 1.0},
                                 {"contractive": -1.0}, {"code_activation": "relu"}])
def test_bad_autoencoder_options_are_refused(bad) -> None:
    with pytest.raises(ConfigError):
        create_model("ae", **bad)


def test_iwae_with_one_sample_is_the_elbo_and_more_samples_tighten_it() -> None:
    x = (torch.rand(6, 1, 28, 28) > 0.5).float()
    model = create_model("iwae", k=1)
    torch.manual_seed(5)
    one = model.loss(x)
    vae = create_model("vae")
    vae.load_state_dict(model.state_dict())
    torch.manual_seed(5)
    assert torch.allclose(one["loss"], vae.loss(x)["loss"])
    five = create_model("iwae").loss(x)  # k = 5: log-mean-exp >= mean-log (Jensen), so the loss is below rec + kl
    assert create_model("iwae").config.k == 5
    assert five["loss"] <= five["rec"] + five["kl"] + 1e-4


def test_learned_decoder_variance_is_a_trained_parameter_with_a_floor() -> None:
    x = torch.rand(4, 1, 28, 28)
    for kind, shape in (("global", (1, 1, 1)), ("per-pixel", (1, 28, 28))):
        model = create_model("vae", likelihood="gaussian", decoder_variance=kind, gaussian_std=0.2)
        assert model.decoder_log_var.shape == shape
        assert torch.allclose(model.decoder_log_var, torch.tensor(2 * math.log(0.2)))
        model.loss(x)["loss"].backward()
        assert model.decoder_log_var.grad.abs().sum() > 0
        with torch.no_grad():
            model.decoder_log_var.fill_(-50.0)
        assert model.decoder_log_variance().min().item() == pytest.approx(2 * math.log(0.01))
    assert not hasattr(create_model("vae", likelihood="gaussian"), "decoder_log_var")
    with pytest.raises(ConfigError, match="needs --likelihood gaussian"):
        create_model("vae", decoder_variance="global")


def test_learned_variance_matches_the_gaussian_log_likelihood_formula() -> None:
    model = create_model("vae", likelihood="gaussian", decoder_variance="global", gaussian_std=0.3)
    mean, x = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)
    expected = (-0.5 * ((x - mean) ** 2 / 0.09 + math.log(2 * math.pi * 0.09))).flatten(1).sum(1)
    assert torch.allclose(model.log_px_z(mean, x), expected, rtol=1e-5)


def test_vae_bn_and_the_lecture_conv_vae_have_the_documented_layers() -> None:
    bn = create_model("vae-bn")
    assert bn.latent_dim == 2 and sum(isinstance(m, nn.BatchNorm1d) for m in bn.modules()) == 6
    assert [m.out_features for m in bn.encoder.modules() if isinstance(m, nn.Linear)] == [512, 512, 512]
    lecture = create_model("conv-vae-4x4")
    convs = [m for m in lecture.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (1, 32, (4, 4), (2, 2)), (32, 64, (4, 4), (2, 2))]
    assert lecture.mu_head.in_features == 1600 and lecture.latent_dim == 20
    deconvs = [m for m in lecture.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(d.in_channels, d.out_channels, d.kernel_size) for d in deconvs] == [(64, 32, (5, 5)), (32, 1, (4, 4))]
    assert create_model("beta-vae").config.beta == 4.0


def test_batch_norm_vae_evaluates_in_eval_mode() -> None:
    model = create_model("vae-bn").eval()
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(model.encode(x[:1]), model.encode(x)[:1], atol=1e-6), "eval mode: codes ignore the batch"


@pytest.mark.parametrize("size,plan", [(28, [4, 7, 14, 28]), (32, [4, 8, 16, 32]), (64, [4, 8, 16, 32, 64])])
def test_dcgan_layer_plan(size: int, plan: list[int]) -> None:
    assert upsampling_plan(size) == plan
    widths = create_model("dcgan", image_shape=(1, size, size)).config.widths()
    assert widths[-2] == 64 and widths[-1] == 1
    if size == 64:
        assert widths[0] == 8 * 64  # the classic 4x4x512 start


@pytest.mark.parametrize("size", [30, 48, 100])
def test_dcgan_refuses_sizes_it_cannot_build(size: int) -> None:
    with pytest.raises(ConfigError, match=r"4\*2\^n or 7\*2\^n"):
        create_model("dcgan", image_shape=(1, size, size))


def test_discriminator_loss_does_not_reach_the_generator() -> None:
    model = create_model("dcgan", dim=8)
    model.d_loss(torch.rand(4, 1, 28, 28))["loss"].backward()
    assert all(p.grad is None for p in model.generator.parameters())
    assert all(p.grad is not None for p in model.discriminator.parameters())


def test_gan_step_moves_both_players_with_radford_adam() -> None:
    model = create_model("dcgan", dim=8)
    optimizers = make_optimizers(model, lr=2e-4, beta1=0.5)
    assert set(optimizers) == {"discriminator", "generator"}
    assert optimizers["generator"].param_groups[0]["betas"] == (0.5, 0.999)
    g_before = [p.detach().clone() for p in model.generator.parameters()]
    d_before = [p.detach().clone() for p in model.discriminator.parameters()]
    parts = train_step(model, optimizers, torch.rand(8, 1, 28, 28), torch.zeros(8, dtype=torch.long))
    assert set(parts) == {"loss", "d_loss", "g_loss", "d_real", "d_fake"}
    assert torch.allclose(parts["loss"], parts["d_loss"] + parts["g_loss"])
    assert all(not torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters()))


def test_gan_losses_are_binary_cross_entropies() -> None:
    model = create_model("dcgan", dim=8).eval()
    x = torch.rand(5, 1, 28, 28)
    fake = model.generate(5)
    real_p, fake_p = torch.sigmoid(model.discriminator(x * 2 - 1)), torch.sigmoid(model.discriminator(fake))
    d = model.d_loss(x, fake)["loss"]
    g = model.g_loss(5, fake)["loss"]
    assert torch.allclose(d, -(real_p.log().mean() + (1 - fake_p).log().mean()), atol=1e-5)
    assert torch.allclose(g, -fake_p.log().mean(), atol=1e-5)


def test_classifier_learns_the_shapes(tiny_shapes, tiny_train_config) -> None:
    model = create_model("classifier", **data_fields("classifier", tiny_shapes.image_shape,
                                                     len(tiny_shapes.classes)))
    metrics = train(model, tiny_shapes, tiny_train_config.replace(epochs=8), log=lambda _: None)
    assert set(metrics[-1]["test"]) == {"loss", "accuracy"}
    chance = 1 / len(tiny_shapes.classes)  # 4 shapes; 64 steps on 512 images reach ~0.75 on the test set
    assert metrics[-1]["test"]["accuracy"] > max(0.6, 2 * chance)
    assert metrics[-1]["train"]["accuracy"] > metrics[0]["train"]["accuracy"]
    held_out = held_out_loss(model, tiny_shapes.test_x, tiny_shapes.test_y)
    assert held_out == pytest.approx(metrics[-1]["test"])


def test_the_classifier_reports_exact_accuracy() -> None:
    model = create_model("classifier", image_shape=(1, 8, 8), n_classes=3, conv_channels=(4,)).eval()
    x = torch.rand(10, 1, 8, 8)
    y = model.predict(x)
    y[:3] = (y[:3] + 1) % 3  # make exactly three labels wrong
    parts = model.loss(x, y)
    assert parts["accuracy"].item() == pytest.approx(0.7)
    assert torch.allclose(parts["loss"], nn.functional.cross_entropy(model.logits(x), y))


def test_gaussian_log_likelihood_is_what_the_vae_uses() -> None:
    model = create_model("vae", likelihood="gaussian", gaussian_std=0.5)
    mean, x = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)
    assert torch.allclose(model.log_px_z(mean, x), losses.gaussian_log_likelihood(mean, x, 2 * math.log(0.5)))
