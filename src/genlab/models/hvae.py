"""Two-level hierarchical VAE with gated MLPs, as in the VampPrior paper (Tomczak & Welling 2018, "HVAE"):

q(z2|x) q(z1|x, z2) infers, p(z2) p(z1|z2) p(x|z1, z2) generates; p(z2) is N(0, I) or a VampPrior.
z2 is the top latent: encode, decode and the latent tools work on it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab import losses
from genlab.config import Config, option
from genlab.models.vampprior import VampPrior
from genlab.nn import GatedLinear, standard_normal


def gated_stack(*sizes: int) -> nn.Sequential:
    """Gated layers sizes[0] -> ... -> sizes[-1]."""
    return nn.Sequential(*(GatedLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:])))


class GaussianHead(nn.Module):
    """Features -> (mu, log_var) of a diagonal Gaussian."""

    def __init__(self, features: int, dim: int) -> None:
        super().__init__()
        self.mu, self.log_var = nn.Linear(features, dim), nn.Linear(features, dim)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu(h), self.log_var(h)


@dataclass(frozen=True)
class HVAEConfig(Config):
    image_shape: tuple[int, int, int] = option((1, 28, 28), "(channels, height, width), set from the data",
                                             low=1, high=2048)
    latent_dim: int = option(40, "size of each of z1 and z2", low=1, high=4096)
    hidden: int = option(300, "gated units per hidden layer", low=1, high=16384)
    prior: str = option("standard", "p(z2): standard normal or the VampPrior", ("standard", "vamp"))
    pseudo_inputs: int = option(500, "VampPrior components K (learned pseudo-inputs)", low=1, high=100_000)
    beta: float = option(1.0, "KL weight: 1 is the true ELBO", low=0.0, high=1e6)


class HVAE(nn.Module):
    """Two stochastic layers of latent_dim each; Bernoulli p(x|z1, z2) on logits."""

    def __init__(self, config: HVAEConfig) -> None:
        super().__init__()
        self.config = config
        pixels, h, d = math.prod(config.image_shape), config.hidden, config.latent_dim
        self.q_z2 = nn.Sequential(nn.Flatten(), gated_stack(pixels, h, h), GaussianHead(h, d))
        self.q_z1_x, self.q_z1_z2 = nn.Sequential(nn.Flatten(), GatedLinear(pixels, h)), GatedLinear(d, h)
        self.q_z1 = nn.Sequential(GatedLinear(2 * h, h), GaussianHead(h, d))
        self.p_z1 = nn.Sequential(gated_stack(d, h, h), GaussianHead(h, d))
        self.p_x_z1, self.p_x_z2 = GatedLinear(d, h), GatedLinear(d, h)
        self.p_x = nn.Sequential(GatedLinear(2 * h, h), nn.Linear(h, pixels), nn.Unflatten(1, config.image_shape))
        if config.prior == "vamp":
            self.vamp = VampPrior(config.pseudo_inputs, tuple(config.image_shape))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    # ---------------------------------------------------------------- the distributions

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z2|x): mu and log sigma^2, each (N, latent_dim)."""
        return self.q_z2(x)

    def posterior_z1(self, x: Tensor, z2: Tensor) -> tuple[Tensor, Tensor]:
        """q(z1|x, z2) for z2 (..., N, D) (x broadcast over the leading sample dims).

        q_z1's first layer reads [h(x), h(z2)]; its product splits as W_x h(x) + W_z h(z2), and the x half is taken
        once per image rather than once per sample: at k = 5000 that is a seventh of the HVAE's arithmetic."""
        first, hidden = self.q_z1[0].linear, self.config.hidden
        from_x = F.linear(self.q_z1_x(x), first.weight[:, :hidden], first.bias)  # (N, 2 hidden)
        return self.q_z1[1](F.glu(F.linear(self.q_z1_z2(z2), first.weight[:, hidden:]).add_(from_x), dim=-1))

    def logits(self, z1: Tensor, z2: Tensor) -> Tensor:
        """p(x|z1, z2) logits, (M, C, H, W) for codes (M, D)."""
        return self.p_x(torch.cat([self.p_x_z1(z1), self.p_x_z2(z2)], dim=-1))

    def likelihood_networks(self) -> list[nn.Module]:
        """The networks of p(x|z1, z2)'s logits, which `genlab evaluate --precision bf16` runs in bfloat16
        (p(z1|z2) and both posteriors stay float32)."""
        return [self.p_x, self.p_x_z1, self.p_x_z2]

    def log_prior(self, z2: Tensor) -> Tensor:
        if self.config.prior == "vamp":
            return self.vamp.log_prob(z2, self.posterior)
        return losses.log_std_normal(z2)

    @staticmethod
    def draw(mu: Tensor, log_var: Tensor) -> Tensor:
        # z = mu + sigma * eps: reparameterized
        return mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)

    def log_weight_terms(self, x: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
        """log p(x|z1, z2), log p(z1, z2), log q(z1, z2|x) at k joint posterior samples per image: each (k, N)."""
        mu2, log_var2 = self.posterior(x)
        z2 = self.draw(mu2.expand(k, *mu2.shape), log_var2.expand(k, *log_var2.shape))
        mu1, log_var1 = self.posterior_z1(x, z2)
        z1 = self.draw(mu1, log_var1)
        p_mu1, p_log_var1 = self.p_z1(z2)
        logits = self.logits(z1.flatten(0, 1), z2.flatten(0, 1))
        log_px = losses.bernoulli_log_likelihood_samples(logits.view(k, *x.shape), x)
        log_p = losses.log_normal_diag(z1, p_mu1, p_log_var1) + self.log_prior(z2)
        log_q = losses.log_normal_diag(z1, mu1, log_var1) + losses.log_normal_diag(z2, mu2, log_var2)
        return log_px, log_p, log_q

    # ---------------------------------------------------------------- objective and estimates

    def elbo_terms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """-log p(x|z1, z2) and log q(z1, z2|x) - log p(z1, z2) at one joint sample: each (N,) nats."""
        log_px, log_p, log_q = self.log_weight_terms(x, 1)
        return -log_px[0], (log_q - log_p)[0]

    def loss(self, x: Tensor, kl_weight: Tensor | float | None = None) -> dict[str, Tensor]:
        """-ELBO with the KL weighted by beta (times kl_weight under warm-up), batch mean: nats per image."""
        rec, kl = self.elbo_terms(x)
        weight = self.config.beta if kl_weight is None else self.config.beta * kl_weight
        parts = {"loss": (rec + weight * kl).mean(), "rec": rec.mean(), "kl": kl.mean()}
        if kl_weight is not None:
            parts["bound"] = (rec + kl).mean()
        return parts

    def elbo(self, x: Tensor) -> Tensor:
        """One-sample ELBO (beta = 1), (N,) nats."""
        rec, kl = self.elbo_terms(x)
        return -(rec + kl)

    def log_likelihood(self, x: Tensor, k: int = 100) -> Tensor:
        """Importance-weighted estimate of log p(x) with k joint posterior samples, (N,) nats."""
        return losses.iwae_bound(*self.log_weight_terms(x, k))

    # ---------------------------------------------------------------- the top latent, for the tools

    def encode(self, x: Tensor) -> Tensor:
        """Mean of q(z2|x), (N, latent_dim): the top-level code."""
        return self.posterior(x)[0]

    def decode(self, z2: Tensor) -> Tensor:
        """Top code (N, latent_dim) -> logits (N, C, H, W), through the mean of p(z1|z2)."""
        return self.logits(self.p_z1(z2)[0], z2)

    def to_image(self, decoded: Tensor) -> Tensor:
        return torch.sigmoid(decoded)

    def reconstruct(self, x: Tensor) -> Tensor:
        """The top code's decoding, to_image(decode(encode(x))), as for every autoencoder: (N, C, H, W) in [0, 1]."""
        return self.to_image(self.decode(self.encode(x)))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n images (decoder means) from z2 ~ p(z2) and the mean of p(z1|z2), (n, C, H, W) in [0, 1]."""
        device = self.p_x[1].weight.device
        if self.config.prior == "vamp":
            z2 = self.vamp.sample(n, self.posterior, generator)
        else:
            z2 = standard_normal(n, self.latent_dim, device, generator)
        return self.to_image(self.decode(z2))
