"""metrics.iwae_nll keeps the model's dtype: a float64 model whose proposal is its exact posterior gets its exact
-log p(x) back to float64 precision, not rounded to float32."""
from __future__ import annotations

import torch
from test_metrics import LinearGaussian
from torch import Tensor

from genlab import metrics


class ExactPosterior(LinearGaussian):
    """The linear-Gaussian model with q(z|x) its true posterior: every importance weight is p(x) itself."""

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean = (x - self.b) @ (self.posterior_cov @ self.W.T / self.sigma ** 2).T
        return mean, torch.log(self.posterior_cov.diagonal()).expand_as(mean)


def test_a_float64_model_gets_its_exact_likelihood_in_float64() -> None:
    torch.manual_seed(0)
    model = ExactPosterior(z_dim=1).requires_grad_(False)  # one latent dim: the diagonal posterior is exact
    x = model.b + torch.randn(40, 6, dtype=torch.float64)
    exact = -model.exact_log_likelihood(x)
    nll = metrics.iwae_nll(model, x, k=7, max_decodes=20)  # several passes over images and samples
    assert nll.dtype == torch.float64
    assert float((nll - exact).abs().max()) < 1e-9
