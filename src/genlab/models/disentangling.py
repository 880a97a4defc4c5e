"""The disentangling VAEs: the VAE with the KL term replaced by a regularizer, in the forms of disentanglement_lib.

With rec = -log p(x|z) and KL = KL(q(z|x) || N(0, I)), batch means in nats per image:
  AnnealedVAE  (Burgess et al. 2018)  rec + gamma |KL - C|, C rising linearly from 0 to c_max
  beta-TCVAE   (Chen et al. 2018)     rec + KL + (beta - 1) TC, TC the minibatch estimate of KL(q(z) || prod_d q(z_d))
  DIP-VAE-I/II (Kumar et al. 2018)    rec + KL + lambda_od sum_{i != j} S_ij^2 + lambda_d sum_i (S_ii - 1)^2,
                                      S = Cov[mu] (I) or Cov[z] = Cov[mu] + E[diag sigma^2] (II)
  FactorVAE    (Kim & Mnih 2018)      rec + KL + gamma TC, TC = E[logit_0 - logit_1] of a discriminator that tells
                                      codes z ~ q(z) (class 0) from codes shuffled per dimension (class 1)
FactorVAE's discriminator learns with an Adam of its own (models.contract.WithAuxiliary), on the same batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab import losses
from genlab.config import option, require
from genlab.models.vae import VAE, VAEConfig
from genlab.nn import leaky_relu, mlp

OBJECTIVES = ("annealed", "beta-tc", "dip-i", "dip-ii")


def check_single_sample(config: VAEConfig) -> None:
    """The regularizers are defined on the one-sample ELBO with the factorized N(0, I) prior."""
    require(config.k == 1, f"the disentangling objectives replace the ELBO's KL term; they take no importance "
                           f"samples: leave k at 1 (got {config.k})")
    require(config.prior == "standard", "the disentangling objectives assume the factorized N(0, I) prior: "
                                        "leave --prior at standard")


class RegularizedVAE(VAE):
    """A VAE whose loss is rec + regularizer(mu, log_var, z, KL): each subclass writes its regularizer."""

    def regularizer(self, mu: Tensor, log_var: Tensor, z: Tensor, kl: Tensor) -> dict[str, Tensor]:
        """{"regularizer": the term, batch mean, nats per image; other entries: parts reported beside it}."""
        raise NotImplementedError

    def loss(self, x: Tensor, kl_weight: Tensor | float | None = None) -> dict[str, Tensor]:
        """rec + regularizer, batch mean: nats per image. kl_weight (KL warm-up) scales the whole regularizer; with
        it, "bound" is the negative ELBO."""
        mu, log_var, z, rec, kl = self.terms(x)
        parts = self.regularizer(mu, log_var, z, kl)
        regularizer = parts.pop("regularizer")
        weighted = regularizer if kl_weight is None else kl_weight * regularizer
        out = {"loss": rec.mean() + weighted, "rec": rec.mean(), "kl": kl.mean(), **parts}
        if kl_weight is not None:
            out["bound"] = (rec + kl).mean()
        return out


@dataclass(frozen=True)
class DisentanglingVAEConfig(VAEConfig):
    objective: str = option("beta-tc", "the regularizer beside the reconstruction error: 'annealed' gamma |KL - C| "
                            "(Burgess et al. 2018), 'beta-tc' KL + (beta - 1) TC (Chen et al. 2018), 'dip-i' or "
                            "'dip-ii' KL + a penalty on Cov[mu] or Cov[z] (Kumar et al. 2018)", OBJECTIVES)
    beta: float = option(1.0, "beta-tc: the weight of the KL's total-correlation part (KL + (beta - 1) TC); "
                              "dip: the weight of the KL", low=0.0, high=1e6,
                         when={"objective": ("beta-tc", "dip-i", "dip-ii")})
    gamma: float = option(1000.0, "annealed: the weight of |KL - C|", low=0.0, high=1e6,
                          when={"objective": ("annealed",)})
    c_max: float = option(25.0, "annealed: the capacity C reached, nats per image", low=0.0, high=1e5,
                          when={"objective": ("annealed",)})
    capacity_steps: int = option(100_000, "annealed: training steps over which C rises linearly from 0 to c_max",
                                 low=1, high=10**9, when={"objective": ("annealed",)})
    lambda_od: float = option(10.0, "dip: the weight of the squared off-diagonal covariance entries", low=0.0,
                              high=1e6, when={"objective": ("dip-i", "dip-ii")})
    lambda_d: float = option(100.0, "dip: the weight of the squared distances of the diagonal entries from 1",
                             low=0.0, high=1e6, when={"objective": ("dip-i", "dip-ii")})

    def __post_init__(self) -> None:
        VAEConfig.check_rules(self)
        check_single_sample(self)


class DisentanglingVAE(RegularizedVAE):
    """AnnealedVAE, beta-TCVAE or DIP-VAE-I/II, by config.objective (the equations in the module docstring)."""

    def __init__(self, config: DisentanglingVAEConfig) -> None:
        super().__init__(config)
        if config.objective == "annealed":
            # training steps taken, which C follows: a buffer, so it is saved with the weights and --resume goes on
            self.register_buffer("trained_steps", torch.zeros((), dtype=torch.int64))

    def capacity(self) -> Tensor:
        """The AnnealedVAE's C now: c_max min(1, steps / capacity_steps), () nats."""
        return self.config.c_max * (self.trained_steps / self.config.capacity_steps).clamp(max=1.0)

    def regularizer(self, mu: Tensor, log_var: Tensor, z: Tensor, kl: Tensor) -> dict[str, Tensor]:
        c = self.config
        if c.objective == "annealed":
            capacity = self.capacity()
            if self.training:  # a training step counts once; a held-out loss does not move C
                self.trained_steps.add_(1)
            # gamma |E[KL] - C|: the batch-mean KL is held at C, as in disentanglement_lib
            return {"regularizer": c.gamma * (kl.mean() - capacity).abs(), "capacity": capacity}
        if c.objective == "beta-tc":
            tc = losses.total_correlation(z, mu, log_var)
            return {"regularizer": kl.mean() + (c.beta - 1) * tc, "tc": tc}
        cov = losses.covariance(mu)  # DIP-I: Cov[mu]; DIP-II: Cov[z] = Cov[mu] + E[diag sigma^2]
        if c.objective == "dip-ii":
            cov = cov + torch.diag(log_var.exp().mean(0))
        dip = losses.dip_penalty(cov, c.lambda_od, c.lambda_d)
        return {"regularizer": c.beta * kl.mean() + dip, "dip": dip}


def permute_dims(z: Tensor) -> Tensor:
    """Each column of z (N, D) shuffled over the batch on its own: samples of prod_d q(z_d) (Kim & Mnih's Alg. 2)."""
    order = torch.rand(z.shape, device=z.device).argsort(dim=0)
    return z.gather(0, order)


@dataclass(frozen=True)
class FactorVAEConfig(VAEConfig):
    gamma: float = option(40.0, "the weight of the total correlation, as the discriminator estimates it", low=0.0,
                          high=1e6)
    discriminator_hidden: tuple[int, ...] = option((1000, 1000, 1000, 1000, 1000, 1000),
                                                   "the discriminator's hidden layers (leaky ReLU 0.2), then 2 "
                                                   "logits", low=1, high=16384)
    discriminator_lr: float = option(1e-4, "the discriminator's Adam learning rate (its own optimizer; --lr is "
                                           "the VAE's)", low=1e-8, high=1.0)
    discriminator_betas: tuple[float, float] = option((0.5, 0.9), "the discriminator's Adam (beta1, beta2)",
                                                      low=0.0, high=0.9999)

    def __post_init__(self) -> None:
        VAEConfig.check_rules(self)
        check_single_sample(self)


class FactorVAE(RegularizedVAE):
    """The VAE plus gamma TC, with TC estimated by a discriminator on codes that trains with its own optimizer.

    "loss" is the VAE's objective plus the discriminator's cross-entropy, "aux_loss". Each reaches only its own
    weights: the TC term sees the discriminator's weights detached, the cross-entropy sees detached codes. So one
    backward pass gives each optimizer the gradient of its own objective, as disentanglement_lib's two updates do.
    """

    def __init__(self, config: FactorVAEConfig) -> None:
        super().__init__(config)
        self.discriminator = mlp([config.latent_dim, *config.discriminator_hidden, 2], leaky_relu)

    def auxiliary(self) -> tuple[nn.Module, dict[str, Any]]:
        """The discriminator and its Adam settings: it trains on "aux_loss" alone (models.contract.WithAuxiliary)."""
        return self.discriminator, {"lr": self.config.discriminator_lr, "betas": self.config.discriminator_betas}

    def total_correlation(self, z: Tensor) -> Tensor:
        """The density-ratio estimate TC ~ E_q(z)[log D_0(z) / D_1(z)] = E[logit_0 - logit_1], () nats. The
        discriminator's weights enter detached: the estimate trains the encoder, never the discriminator."""
        frozen = {name: weight.detach() for name, weight in self.discriminator.named_parameters()}
        logits = torch.func.functional_call(self.discriminator, frozen, (z,))
        return (logits[:, 0] - logits[:, 1]).mean()

    def discriminator_loss(self, z: Tensor) -> Tensor:
        """Cross-entropy of telling codes z (N, D) ~ q(z), class 0, from their per-dimension shuffles, class 1:
        () nats. The codes are detached, so only the discriminator learns from it."""
        codes = z.detach()
        logits = self.discriminator(torch.cat([codes, permute_dims(codes)]))
        shuffled = (torch.arange(logits.shape[0], device=z.device) >= codes.shape[0]).long()
        return F.cross_entropy(logits, shuffled)

    def regularizer(self, mu: Tensor, log_var: Tensor, z: Tensor, kl: Tensor) -> dict[str, Tensor]:
        tc = self.total_correlation(z)
        return {"regularizer": self.config.beta * kl.mean() + self.config.gamma * tc, "tc": tc,
                "aux_loss": self.discriminator_loss(z)}

    def loss(self, x: Tensor, kl_weight: Tensor | float | None = None) -> dict[str, Tensor]:
        """The VAE's objective (rec + KL + gamma TC, nats per image) plus the discriminator's cross-entropy."""
        parts = super().loss(x, kl_weight)
        parts["loss"] = parts["loss"] + parts["aux_loss"]
        return parts
