"""VampPrior and the two-level HVAE against independent computations (torch.distributions, brute force)."""
from __future__ import annotations

import math

import torch
from torch.distributions import Bernoulli, Independent, Normal

from genlab.models.registry import create_model
from genlab.models.vampprior import mixture_log_prob


def test_mixture_log_prob_matches_a_brute_force_mixture_density() -> None:
    gen = torch.Generator().manual_seed(0)
    mu, log_var = torch.randn(7, 3, generator=gen), torch.randn(7, 3, generator=gen)
    z = torch.randn(2, 5, 3, generator=gen) * 2
    densities = torch.zeros(2, 5, dtype=torch.float64)
    for k in range(7):  # one component at a time, in float64, straight from the density's definition
        var = log_var[k].double().exp()
        diff = z.double() - mu[k].double()
        densities += torch.exp(-0.5 * (diff.square() / var + var.log() + math.log(2 * math.pi)).sum(-1)) / 7
    assert torch.allclose(mixture_log_prob(z, mu, log_var).double(), densities.log(), atol=1e-4)


def test_the_vamp_vae_prior_is_the_mixture_of_its_posteriors_at_the_pseudo_inputs() -> None:
    model = create_model("vamp-vae", pseudo_inputs=4, hidden=(16,), latent_dim=3).eval()
    z = torch.randn(6, 3)
    with torch.no_grad():
        mu, log_var = model.posterior(model.vamp.pseudo_inputs())
        components = Normal(mu, (0.5 * log_var).exp())  # batch (4, 3)
        brute = torch.logsumexp(components.log_prob(z[:, None, :]).sum(-1), dim=1) - math.log(4)
        assert torch.allclose(model.log_prior(z), brute, atol=1e-4)
        assert model.vamp.pseudo_inputs().min() >= 0 and model.vamp.pseudo_inputs().max() <= 1


def test_hvae_elbo_matches_an_independent_monte_carlo_computation() -> None:
    model = create_model("hvae", hidden=24, latent_dim=3).eval()
    x = (torch.rand(5, 1, 28, 28) > 0.5).float()
    torch.manual_seed(11)
    with torch.no_grad():
        elbo = model.elbo(x)
    torch.manual_seed(11)  # the same noise, drawn in the same order: z2 first, then z1
    with torch.no_grad():
        mu2, log_var2 = model.q_z2(x)
        q2 = Independent(Normal(mu2, (0.5 * log_var2).exp()), 1)
        z2 = mu2 + (0.5 * log_var2).exp() * torch.randn_like(mu2)
        hidden = torch.cat([model.q_z1_x(x), model.q_z1_z2(z2)], dim=-1)
        mu1, log_var1 = model.q_z1(hidden)
        q1 = Independent(Normal(mu1, (0.5 * log_var1).exp()), 1)
        z1 = mu1 + (0.5 * log_var1).exp() * torch.randn_like(mu1)
        p_mu1, p_log_var1 = model.p_z1(z2)
        p1 = Independent(Normal(p_mu1, (0.5 * p_log_var1).exp()), 1)
        p2 = Independent(Normal(torch.zeros_like(z2), torch.ones_like(z2)), 1)
        logits = model.p_x(torch.cat([model.p_x_z1(z1), model.p_x_z2(z2)], dim=-1))
        px = Independent(Bernoulli(logits=logits), 3)
        independent = px.log_prob(x) + p1.log_prob(z1) + p2.log_prob(z2) - q1.log_prob(z1) - q2.log_prob(z2)
    assert torch.allclose(elbo, independent, atol=1e-3)
    # and averaged over many draws, the IWAE estimate lies above the ELBO
    with torch.no_grad():
        mean_elbo = torch.stack([model.elbo(x) for _ in range(100)]).mean(0)
        assert (model.log_likelihood(x, k=500) > mean_elbo).all()


def test_hvae_with_a_vampprior_trains_and_samples() -> None:
    model = create_model("hvae", hidden=16, latent_dim=2, prior="vamp", pseudo_inputs=5)
    parts = model.loss(torch.rand(4, 1, 28, 28), kl_weight=0.5)
    parts["loss"].backward()
    assert model.vamp.pseudo_raw.grad is not None and torch.isfinite(parts["bound"])
    assert model.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 28, 28)


def test_the_no_grad_prior_encodes_the_pseudo_inputs_once_and_follows_every_change_of_the_weights() -> None:
    model = create_model("vamp-vae", pseudo_inputs=4, hidden=(16,), latent_dim=3).eval()
    other = create_model("vamp-vae", pseudo_inputs=4, hidden=(16,), latent_dim=3).eval()
    z = torch.randn(6, 3)
    encodes = []
    model.encoder.register_forward_hook(lambda module, inputs, output: encodes.append(inputs[0].shape[0]))

    def fresh() -> torch.Tensor:  # the mixture from the posterior evaluated now, no cache involved
        with torch.no_grad():
            return mixture_log_prob(z, *model.posterior(model.vamp.pseudo_inputs()))

    with torch.no_grad():
        first = model.log_prior(z)
        assert torch.equal(model.log_prior(z), first) and torch.equal(model.log_prior(z), first)
    assert encodes == [4]  # three priors, one encoding of the 4 pseudo-inputs
    model.loss(torch.rand(2, 1, 28, 28))["loss"].backward()
    torch.optim.SGD(model.parameters(), lr=0.5).step()
    with torch.no_grad():
        stepped = model.log_prior(z)
    assert not torch.allclose(stepped, first) and torch.allclose(stepped, fresh())
    model.load_state_dict(other.state_dict())
    with torch.no_grad():
        loaded = model.log_prior(z)
        assert torch.allclose(loaded, fresh()) and torch.allclose(loaded, other.log_prior(z))
    assert model.log_prior(z).requires_grad  # with gradients: computed afresh, differentiable


def test_hvae_q_z1_takes_its_image_half_once_and_is_the_layer_of_the_concatenation() -> None:
    model = create_model("hvae", hidden=24, latent_dim=3)
    x, z2 = torch.rand(4, 1, 28, 28), torch.randn(6, 4, 3)  # six samples of z2 for each of four images
    split = model.posterior_z1(x, z2)
    grads = torch.autograd.grad(sum(t.square().sum() for t in split), list(model.parameters()), allow_unused=True)
    joined = model.q_z1(torch.cat([model.q_z1_x(x).expand(6, -1, -1), model.q_z1_z2(z2)], dim=-1))
    expected = torch.autograd.grad(sum(t.square().sum() for t in joined), list(model.parameters()), allow_unused=True)
    for mine, theirs in zip(split, joined):
        assert torch.allclose(mine, theirs, atol=1e-5)
    for mine, theirs in zip(grads, expected):
        assert (mine is None) == (theirs is None)
        assert mine is None or torch.allclose(mine, theirs, atol=1e-5)


def test_a_gated_layer_is_its_value_half_times_the_sigmoid_of_its_gate_half() -> None:
    """GatedLinear runs as one fused GLU: the same numbers and gradients as the two halves multiplied out."""
    from genlab.nn import GatedLinear
    torch.manual_seed(5)
    layer, x = GatedLinear(7, 4), torch.randn(3, 2, 7, requires_grad=True)
    out = layer(x)
    value, gate = layer.linear(x).chunk(2, dim=-1)
    expected = value * torch.sigmoid(gate)
    assert out.shape == (3, 2, 4) and torch.equal(out, expected)
    grads = torch.autograd.grad(out.square().sum(), [x, layer.linear.weight])
    expected_grads = torch.autograd.grad(expected.square().sum(), [x, layer.linear.weight])
    assert all(torch.allclose(a, b, rtol=1e-6, atol=1e-7) for a, b in zip(grads, expected_grads))
