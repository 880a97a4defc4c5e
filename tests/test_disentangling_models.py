"""The disentangling VAEs against independent computations of their objectives, the total-correlation estimators
on correlated Gaussians (TC known in closed form), and FactorVAE's two optimizers through a step and a resume."""
from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from genlab import losses
from genlab.cli import main
from genlab.errors import ConfigError
from genlab.models.contract import WithAuxiliary
from genlab.models.disentangling import permute_dims
from genlab.models.registry import create_model
from genlab.training.steps import make_optimizers, train_step
from genlab.training.trainer import train

SMALL = {"discriminator_hidden": (32, 32)}  # FactorVAE with a small discriminator, where its size does not matter


def binary_images(n: int, shape=(1, 28, 28)) -> torch.Tensor:
    return (torch.rand(n, *shape, generator=torch.Generator().manual_seed(5)) > 0.5).float()


def plain_terms(model, x: torch.Tensor, seed: int):
    """mu, log_var, z, -log p(x|z) and KL(q || N(0, I)) from torch.distributions, with the noise the model draws
    after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    mu, log_var = model.posterior(x)
    std = (0.5 * log_var).exp()
    z = mu + std * torch.randn_like(mu)
    rec = -Independent(Bernoulli(logits=model.decode(z)), 3).log_prob(x)
    kl = kl_divergence(Independent(Normal(mu, std), 1), Independent(Normal(torch.zeros_like(mu), 1.0), 1))
    return mu, log_var, z, rec, kl


def model_loss(model, x: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return model.loss(x)


def correlated_codes(n: int, rho: float, generator: torch.Generator) -> torch.Tensor:
    """n draws of a bivariate Gaussian with unit variances and correlation rho: (n, 2)."""
    chol = torch.linalg.cholesky(torch.tensor([[1.0, rho], [rho, 1.0]]))
    return torch.randn(n, 2, generator=generator) @ chol.T


def gaussian_tc(rho: float) -> float:
    """TC of a bivariate Gaussian with correlation rho: KL(q(z) || q(z_1) q(z_2)) = -1/2 log(1 - rho^2), nats."""
    return -0.5 * math.log(1 - rho**2)


# ---------------------------------------------------------------- the 64x64 conv net of the studies


def test_the_conv64_net_is_the_studies_architecture() -> None:
    model = create_model("beta-vae-conv64", image_shape=(3, 64, 64))
    convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 32, (4, 4), (2, 2)), (32, 32, (4, 4), (2, 2)), (32, 64, (4, 4), (2, 2)), (64, 64, (4, 4), (2, 2))]
    linears = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64 * 4 * 4, 256)]
    assert model.mu_head.in_features == 256 and model.latent_dim == 10
    decoder_linears = [(m.in_features, m.out_features) for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    assert decoder_linears == [(10, 256), (256, 64 * 4 * 4)]
    deconvs = [m for m in model.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(d.in_channels, d.out_channels, d.kernel_size) for d in deconvs] == [
        (64, 64, (4, 4)), (64, 32, (4, 4)), (32, 32, (4, 4)), (32, 3, (4, 4))]
    assert not any(isinstance(m, nn.LeakyReLU) for m in model.modules())
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 5 + 5  # after every hidden layer, no more
    sizes = []
    for conv in convs:
        conv.register_forward_hook(lambda module, inputs, output: sizes.append(tuple(output.shape[2:])))
    model.encode(torch.rand(2, 3, 64, 64))
    assert sizes == [(32, 32), (16, 16), (8, 8), (4, 4)]


@pytest.mark.parametrize("size", [(28, 28), (30, 37), (64, 64), (16, 16)])
def test_half_padding_rebuilds_every_size_the_convs_can_halve(size) -> None:
    model = create_model("beta-vae-conv64", image_shape=(1, *size))
    assert model.reconstruct(torch.rand(2, 1, *size)).shape == (2, 1, *size)


def test_half_padding_refuses_odd_kernels_and_images_it_would_halve_to_nothing() -> None:
    with pytest.raises(ConfigError, match="even with 'half'"):
        create_model("beta-vae-conv64", kernel_size=5)
    with pytest.raises(ConfigError, match="halving stride-2 convs"):
        create_model("beta-vae-conv64", image_shape=(1, 12, 12))


def test_the_conv64_models_take_the_studies_training_settings() -> None:
    from genlab.models.registry import MODELS
    for name in ("beta-vae-conv64", "annealed-vae", "beta-tcvae", "dip-vae-i", "dip-vae-ii", "factor-vae"):
        assert dict(MODELS[name].train_defaults) == {"lr": 1e-4, "batch_size": 64}, name
        assert create_model(name).latent_dim == 10


# ---------------------------------------------------------------- each objective, computed plainly


def test_beta_vae_conv64_loss_is_rec_plus_beta_kl() -> None:
    model = create_model("beta-vae-conv64").eval()
    x = binary_images(6)
    _, _, _, rec, kl = plain_terms(model, x, seed=3)
    parts = model_loss(model, x, seed=3)
    assert torch.allclose(parts["loss"], (rec + 4.0 * kl).mean(), rtol=1e-5)


def test_annealed_vae_loss_is_rec_plus_gamma_abs_kl_minus_capacity() -> None:
    model = create_model("annealed-vae", c_max=40.0, capacity_steps=8)
    x = binary_images(6)
    for _ in range(3):  # three training-mode losses: C moves to 3/8 of c_max
        model.loss(x)
    model.eval()
    _, _, _, rec, kl = plain_terms(model, x, seed=4)
    parts = model_loss(model, x, seed=4)
    capacity = 40.0 * 3 / 8
    assert parts["capacity"].item() == pytest.approx(capacity)
    assert torch.allclose(parts["loss"], rec.mean() + 1000.0 * (kl.mean() - capacity).abs(), rtol=1e-5)


def test_annealed_capacity_rises_linearly_per_training_step_and_stops_at_c_max() -> None:
    model = create_model("annealed-vae", c_max=10.0, capacity_steps=4, hidden=(8,))
    x = binary_images(2)
    seen = [model.loss(x)["capacity"].item() for _ in range(7)]  # C used by each step, then the step counts
    assert seen == pytest.approx([0.0, 2.5, 5.0, 7.5, 10.0, 10.0, 10.0])
    model.eval()
    assert [model.loss(x)["capacity"].item() for _ in range(3)] == pytest.approx([10.0] * 3)
    assert model.trained_steps.item() == 7, "held-out losses do not count as training steps"


def test_beta_tcvae_loss_is_rec_plus_kl_plus_beta_minus_one_tc() -> None:
    model = create_model("beta-tcvae").eval()
    x = binary_images(5)
    mu, log_var, z, rec, kl = plain_terms(model, x, seed=6)
    std = (0.5 * log_var).exp()
    tc = 0.0
    for i in range(5):  # log q(z_i) and log q(z_i,d) as the batch's mixtures, one sample at a time, in float64
        joint = torch.stack([Normal(mu[j].double(), std[j].double()).log_prob(z[i].double()) for j in range(5)])
        log_qz = torch.logsumexp(joint.sum(1), 0) - math.log(5)
        log_marginals = (torch.logsumexp(joint, 0) - math.log(5)).sum()
        tc += (log_qz - log_marginals).item() / 5
    parts = model_loss(model, x, seed=6)
    assert parts["tc"].item() == pytest.approx(tc, abs=1e-4)
    assert torch.allclose(parts["loss"].double(), (rec + kl).mean().double() + 5.0 * tc, rtol=1e-5)


@pytest.mark.parametrize("name, lambda_od, lambda_d", [("dip-vae-i", 10.0, 100.0), ("dip-vae-ii", 10.0, 10.0)])
def test_dip_vae_loss_penalises_the_covariance_of_the_codes(name: str, lambda_od: float, lambda_d: float) -> None:
    model = create_model(name, latent_dim=3, hidden=(16,)).eval()
    x = binary_images(7)
    mu, log_var, _, rec, kl = plain_terms(model, x, seed=8)
    mean = mu.mean(0)
    cov = sum(torch.outer(m - mean, m - mean) for m in mu) / 7  # Cov[mu], the population form
    if name == "dip-vae-ii":  # Cov[z] = Cov[mu] + E[diag sigma^2]
        cov = cov + torch.diag(log_var.exp().mean(0))
    penalty = sum(lambda_od * cov[i, j] ** 2 if i != j else lambda_d * (cov[i, i] - 1) ** 2
                  for i in range(3) for j in range(3))
    parts = model_loss(model, x, seed=8)
    assert parts["dip"].item() == pytest.approx(penalty.item(), rel=1e-5)
    assert torch.allclose(parts["loss"], (rec + kl).mean() + penalty, rtol=1e-5)


def test_factor_vae_loss_is_rec_plus_kl_plus_gamma_logit_difference() -> None:
    model = create_model("factor-vae", **SMALL).eval()
    x = binary_images(6)
    _, _, z, rec, kl = plain_terms(model, x, seed=9)
    order = torch.rand(z.shape).argsort(0)  # the shuffle the model draws next
    shuffled = torch.stack([z[order[:, d], d] for d in range(z.shape[1])], 1)
    real, fake = model.discriminator(z).log_softmax(1), model.discriminator(shuffled).log_softmax(1)
    tc = (real[:, 0] - real[:, 1]).mean()  # log D_0 / D_1 = logit_0 - logit_1
    discriminator_loss = -(0.5 * real[:, 0].mean() + 0.5 * fake[:, 1].mean())
    parts = model_loss(model, x, seed=9)
    assert parts["tc"].item() == pytest.approx(tc.item(), abs=1e-5)
    assert parts["aux_loss"].item() == pytest.approx(discriminator_loss.item(), rel=1e-5)
    # "loss" carries both players' objectives; each reaches only its own weights (the step's one backward)
    assert torch.allclose(parts["loss"], (rec + kl).mean() + 40.0 * tc + discriminator_loss, rtol=1e-5)


def test_permute_dims_shuffles_each_dimension_over_the_batch_on_its_own() -> None:
    z = torch.arange(2000.0).view(1000, 2) * torch.tensor([1.0, -1.0])
    shuffled = permute_dims(z)
    for d in range(2):
        assert torch.equal(shuffled[:, d].sort().values, z[:, d].sort().values)
    rows_kept = (shuffled[:, 0] == -shuffled[:, 1] - 1).float().mean()  # (2i, -(2i + 1)) stays a pair
    assert rows_kept < 0.01, "the two dimensions were shuffled with one permutation"


# ---------------------------------------------------------------- total correlation, known in closed form


def test_the_minibatch_tc_estimate_approaches_the_gaussian_tc() -> None:
    gen = torch.Generator().manual_seed(0)
    s = 0.5  # q(z|x_j) = N(mu_j, s^2 I), mu ~ N(0, [[1, r], [r, 1]]): q(z) = N(0, [[1 + s^2, r], [r, 1 + s^2]])
    for r in (0.0, 0.8):
        estimates = []
        for _ in range(4):
            mu = correlated_codes(2000, r, gen)
            z = mu + s * torch.randn(mu.shape, generator=gen)
            estimates.append(losses.total_correlation(z, mu, torch.full_like(mu, 2 * math.log(s))).item())
        # four batches of 2000: a standard error near 0.01 nats
        assert sum(estimates) / 4 == pytest.approx(gaussian_tc(r / (1 + s**2)), abs=0.03)


class OptimalRatio(nn.Module):
    """The Bayes-optimal discriminator between z ~ N(0, R) and z ~ N(0, I): logits (log q(z) - sum_d log q(z_d), 0)."""

    def __init__(self, rho: float) -> None:
        super().__init__()
        self.joint = torch.distributions.MultivariateNormal(torch.zeros(2), torch.tensor([[1.0, rho], [rho, 1.0]]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        ratio = self.joint.log_prob(z) - Normal(0.0, 1.0).log_prob(z).sum(1)
        return torch.stack([ratio, torch.zeros_like(ratio)], 1)


def test_the_density_ratio_tc_estimate_approaches_the_gaussian_tc() -> None:
    rho = 0.8
    model = create_model("factor-vae", latent_dim=2, hidden=(8,), discriminator_hidden=(64, 64))
    codes = correlated_codes(20000, rho, torch.Generator().manual_seed(1))
    trained = model.discriminator
    model.discriminator = OptimalRatio(rho)
    with torch.no_grad():
        assert model.total_correlation(codes).item() == pytest.approx(gaussian_tc(rho), abs=0.02)
    model.discriminator = trained  # the model's own discriminator, trained by its own loss on these codes
    optimizer = torch.optim.Adam(trained.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 800)
    gen = torch.Generator().manual_seed(2)
    for _ in range(800):
        optimizer.zero_grad()
        model.discriminator_loss(correlated_codes(512, rho, gen)).backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():  # within 12% of 0.511 nats: 800 steps leave the classifier a little short of optimal
        assert model.total_correlation(codes).item() == pytest.approx(gaussian_tc(rho), abs=0.06)


# ---------------------------------------------------------------- FactorVAE's second optimizer


def first_adam_update(gradient: torch.Tensor, lr: float) -> torch.Tensor:
    """Adam's first step: m_hat = g and v_hat = g^2, so the weight moves by -lr g / (|g| + eps)."""
    return -lr * gradient / (gradient.abs() + 1e-8)


def test_one_step_trains_the_vae_on_its_loss_and_the_discriminator_on_its_own() -> None:
    model = create_model("factor-vae", **SMALL)
    assert isinstance(model, WithAuxiliary)
    optimizers = make_optimizers(model, lr=1e-3)
    assert set(optimizers) == {"model", "auxiliary"}
    group = optimizers["auxiliary"].param_groups[0]
    assert group["lr"] == 1e-4 and group["betas"] == (0.5, 0.9)
    discriminator = list(model.discriminator.parameters())
    vae = [p for n, p in model.named_parameters() if not n.startswith("discriminator.")]
    x = binary_images(8)
    parts = model_loss(model, x, seed=12)  # the gradients each optimizer should see, from the same noise
    vae_objective = parts["loss"] - parts["aux_loss"]
    vae_grads = torch.autograd.grad(vae_objective, vae, retain_graph=True)
    d_grads = torch.autograd.grad(parts["aux_loss"], discriminator)
    torch.manual_seed(12)  # the TC term's pull on the discriminator, had its weights not been detached
    _, _, z, _, _ = model.terms(x)
    logits = model.discriminator(z)
    leak = torch.autograd.grad(40.0 * (logits[:, 0] - logits[:, 1]).mean(), discriminator)
    before = [p.detach().clone() for p in model.parameters()]
    torch.manual_seed(12)
    train_step(model, optimizers, x)
    moved = {id(p): p.detach() - b for p, b in zip(model.parameters(), before)}
    for weight, grad in zip(vae, vae_grads):
        assert torch.allclose(moved[id(weight)], first_adam_update(grad, 1e-3), atol=1e-7)
    # the moves are differences of float32 weights near 0.1: exact to ~1e-8
    for weight, grad in zip(discriminator, d_grads):
        assert torch.allclose(moved[id(weight)], first_adam_update(grad, 1e-4), atol=3e-8)
    # and the check can fail: had the TC term reached the discriminator, some of its weights would move the other way
    assert any((first_adam_update(grad, 1e-4) - first_adam_update(grad + pull, 1e-4)).abs().max() > 1e-4
               for grad, pull in zip(d_grads, leak))


def test_the_discriminators_optimizer_survives_a_resume_through_the_run_directory(tmp_path) -> None:
    out = tmp_path / "factor"
    common = ["train", "factor-vae", "--data", "shapes", "--batch-size", "64", "--discriminator-hidden", "32", "32",
              "--out", str(out)]
    assert main([*common, "--epochs", "1", "--max-steps", "3"]) == 0
    first = torch.load(out / "state.pt", weights_only=True)["optimizers"]
    assert set(first) == {"model", "auxiliary"}
    assert all(s["step"].item() == 3 for s in first["auxiliary"]["state"].values())
    assert main([*common, "--epochs", "2", "--max-steps", "5", "--lr", "3e-4", "--resume"]) == 0
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["step"] == 5
    # 5, not 2: the resumed run went on from the saved Adam moments instead of starting new ones
    assert all(s["step"].item() == 5 for s in state["optimizers"]["auxiliary"]["state"].values())
    assert state["optimizers"]["auxiliary"]["param_groups"][0]["lr"] == 1e-4, "--lr is the VAE's, not the critic's"
    assert state["optimizers"]["model"]["param_groups"][0]["lr"] == 3e-4
    assert state["optimizers"]["auxiliary"]["param_groups"][0]["betas"] == (0.5, 0.9)


def test_annealed_capacity_goes_on_after_a_resume(tmp_path, tiny_shapes, tiny_train_config) -> None:
    def run(epochs: int, resume: bool):
        model = create_model("annealed-vae", image_shape=tiny_shapes.image_shape, capacity_steps=32)
        train(model, tiny_shapes, tiny_train_config.replace(epochs=epochs), out=tmp_path / "annealed",
              resume=resume, log=lambda _: None)
        return model
    assert run(1, False).trained_steps.item() == 8  # 512 images, batches of 64
    assert load_file(tmp_path / "annealed" / "model.safetensors")["trained_steps"].item() == 8
    resumed = run(2, True)
    assert resumed.trained_steps.item() == 16 and resumed.capacity().item() == pytest.approx(25.0 * 16 / 32)


def test_the_disentangling_objectives_refuse_iwae_and_the_vampprior() -> None:
    with pytest.raises(ConfigError, match="k at 1"):
        create_model("beta-tcvae", k=5)
    with pytest.raises(ConfigError, match="N\\(0, I\\) prior"):
        create_model("factor-vae", prior="vamp")


def test_each_factor_vae_objective_reaches_only_its_own_weights() -> None:
    model = create_model("factor-vae", **SMALL)
    discriminator = list(model.discriminator.parameters())
    vae = [p for n, p in model.named_parameters() if not n.startswith("discriminator.")]
    parts = model_loss(model, binary_images(4), seed=0)
    to_vae = torch.autograd.grad(parts["aux_loss"], vae, retain_graph=True, allow_unused=True)
    to_discriminator = torch.autograd.grad(parts["loss"] - parts["aux_loss"], discriminator, retain_graph=True,
                                           allow_unused=True)
    assert all(g is None for g in to_vae) and all(g is None or not g.any() for g in to_discriminator)
    assert all(g.abs().sum() > 0 for g in torch.autograd.grad(parts["aux_loss"], discriminator, retain_graph=True))
    assert all(g is not None for g in torch.autograd.grad(parts["tc"], vae[:4], retain_graph=True))
