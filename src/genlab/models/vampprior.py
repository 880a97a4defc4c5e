"""The VampPrior (Tomczak & Welling 2018): p(z) = 1/K sum_k q(z | u_k), a mixture of the encoder's posteriors
at K learned pseudo-inputs u_k."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from genlab.losses import LOG_2PI
from genlab.nn import same_content

Posterior = Callable[[Tensor], tuple[Tensor, Tensor]]  # images (K, C, H, W) -> mu, log_var, each (K, D)

PSEUDO_INPUT_MEAN, PSEUDO_INPUT_STD = 0.05, 0.01  # the paper's initialisation for binary images


class VampPrior(nn.Module):
    """K pseudo-inputs in [0, 1] (learned, clamped); the prior's components are the encoder's posteriors at them."""

    def __init__(self, n_pseudo_inputs: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.pseudo_raw = nn.Parameter(torch.randn(n_pseudo_inputs, *image_shape) * PSEUDO_INPUT_STD
                                       + PSEUDO_INPUT_MEAN)
        # components kept between no-grad calls, with a copy of the weights they were computed from
        self._frozen: tuple[list[Tensor], tuple[Tensor, Tensor]] | None = None

    def pseudo_inputs(self) -> Tensor:
        """u_k, (K, C, H, W) in [0, 1]: hardtanh(raw, 0, 1) as in the paper."""
        return self.pseudo_raw.clamp(0, 1)

    def components(self, posterior: Posterior) -> tuple[Tensor, Tensor]:
        """mu_k and log sigma_k^2, each (K, D): the posterior at the pseudo-inputs.

        Without gradients and in eval mode (evaluation: k = 5000 samples per image come in many passes) they are
        computed once and kept while the posterior's model holds the same weights. The key is the weights' content,
        compared with a copy: version counters miss fused optimizer steps and writes through `.data`. A posterior
        that is not a method of a module is evaluated every time, as is one in training mode (dropout, batch
        statistics).
        """
        owner = getattr(posterior, "__self__", None)
        if torch.is_grad_enabled() or not isinstance(owner, nn.Module) or owner.training:
            return posterior(self.pseudo_inputs())
        weights = [*owner.parameters(), *owner.buffers()]
        if self._frozen is None or not same_content(self._frozen[0], weights):
            self._frozen = ([w.detach().clone() for w in weights], posterior(self.pseudo_inputs()))
        return self._frozen[1]

    def log_prob(self, z: Tensor, posterior: Posterior) -> Tensor:
        """log p(z) = logsumexp_k log N(z; mu_k, sigma_k^2) - log K for z (..., D): shape z.shape[:-1], nats."""
        return mixture_log_prob(z, *self.components(posterior))

    def sample(self, n: int, posterior: Posterior, generator: torch.Generator | None = None) -> Tensor:
        """n codes (n, D): a uniformly chosen component, then its Gaussian (drawn on the CPU when seeded)."""
        mu, log_var = self.components(posterior)
        which = torch.randint(mu.shape[0], (n,), generator=generator).to(mu.device)
        eps = torch.randn(n, mu.shape[1], generator=generator).to(mu.device)
        return mu[which] + torch.exp(0.5 * log_var[which]) * eps


def mixture_log_prob(z: Tensor, mu: Tensor, log_var: Tensor) -> Tensor:
    """log of the equal-weight mixture of N(mu_k, diag exp(log_var_k)), mu and log_var (K, D), at z (..., D).

    Expanded into matmuls, (z - mu)^2 / var = z^2 . (1/var) - 2 z . (mu/var) + mu^2 . (1/var), so the
    (..., K, D) differences are never materialised: 32768 codes x 500 components stay a (32768, 500) table.
    """
    inv_var = torch.exp(-log_var)                                  # (K, D)
    flat = z.reshape(-1, z.shape[-1])
    quad = flat.square() @ inv_var.T - 2 * flat @ (mu * inv_var).T + (mu.square() * inv_var).sum(-1)
    log_norm = -0.5 * (z.shape[-1] * LOG_2PI + log_var.sum(-1))   # (K,)
    log_components = log_norm - 0.5 * quad                         # (M, K)
    mixture = torch.logsumexp(log_components, dim=-1) - math.log(mu.shape[0])
    return mixture.reshape(z.shape[:-1])
