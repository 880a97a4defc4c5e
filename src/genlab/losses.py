"""Log-likelihoods, KLs and bounds, in nats: per example, summed over data/latent dims; callers average the batch."""
from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)

# Every function below is CUDA-graph friendly: no .item(), no branching on tensor values,
# no host syncs; shape checks read only Python-side metadata, which costs nothing.


def _sum_per_example(values: Tensor) -> Tensor:
    """(N, ...) -> (N,): sum over every dim but the first, in float32 at least; (N,) passes through."""
    # bf16 holds a sum of ~550 nats only to the nearest 4, and CPU autocast does not widen sums as CUDA's
    # does: the explicit dtype keeps per-image sums in float32 (float64 stays float64)
    dtype = torch.promote_types(values.dtype, torch.float32)
    # flatten(1) rejects 1-D input, and sum(dim=()) would reduce everything, so 1-D is its own case
    return values.flatten(1).sum(1, dtype=dtype) if values.ndim > 1 else values.to(dtype)


def _sum_last(values: Tensor) -> Tensor:
    """(..., D) -> (...): sum over the latent dim, in float32 at least (as _sum_per_example)."""
    return values.sum(-1, dtype=torch.promote_types(values.dtype, torch.float32))


def _require_same_shape(prediction: Tensor, x: Tensor, name: str) -> None:
    # silent broadcasting of (N, 1) against (N,) would sum an N x N table: refuse it
    if prediction.shape != x.shape:
        raise ValueError(f"{name} has shape {tuple(prediction.shape)} but x has shape {tuple(x.shape)}; "
                         f"they must match exactly (reshape the decoder output to the data shape)")


class _BernoulliLogProb(torch.autograd.Function):
    """Elementwise x * l - softplus(l), with the gradient x - sigmoid(l) written out.

    Why not F.binary_cross_entropy_with_logits: it goes through log1p, which x86 CPU builds of torch
    do not vectorize (about 15x slower than log); this form costs 3.5x less per training step there.
    softplus(l) = max(l, 0) - log(sigmoid(|l|)) is finite for any logit; where sigmoid(|l|) rounds
    to 1 (|l| > 17) the log gives 0 instead of about -exp(-|l|): an error below 6e-8 nats per pixel.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(logits, x)
        # -softplus(l) = log(sigmoid(|l|)) - max(l, 0); sigmoid(|l|) lies in [0.5, 1], so the log is safe.
        # In-place on fresh temporaries: six passes over the pixels instead of nine.
        return torch.sigmoid(logits.abs()).log_().sub_(logits.clamp_min(0)).addcmul_(x, logits)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor | None]:  # type: ignore[override]
        logits, x = ctx.saved_tensors
        # x may be broadcast over leading sample dims of the logits: its gradient sums over them
        grad_x = (grad * logits).sum_to_size(x.shape) if ctx.needs_input_grad[1] else None
        return grad * (x - torch.sigmoid(logits)), grad_x


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x | logits) for x in [0, 1]: (N,) nats, summed over all non-batch dims."""
    _require_same_shape(logits, x, "logits")
    return _sum_per_example(_BernoulliLogProb.apply(logits, x))


def bernoulli_log_likelihood_samples(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x | logits) for k decodings of each image: logits (k, N, ...), x (N, ...) -> (k, N) nats.

    x is broadcast, never copied k times: at k = 5000 that copy costs as much as the log-likelihood itself.
    """
    if logits.shape[1:] != x.shape:
        raise ValueError(f"logits of shape {tuple(logits.shape)} must be (k, *x.shape) for x of shape "
                         f"{tuple(x.shape)}")
    values = _BernoulliLogProb.apply(logits, x)
    return values.flatten(2).sum(2, dtype=torch.promote_types(values.dtype, torch.float32))


def gaussian_log_likelihood(mean: Tensor, x: Tensor, log_var: Tensor | float = 0.0) -> Tensor:
    """log N(x; mean, exp(log_var)): (N,) nats summed over non-batch dims.

    log_var is fixed (float) or learned (tensor broadcastable to x: per-pixel or global).
    """
    _require_same_shape(mean, x, "mean")
    if isinstance(log_var, Tensor):
        if torch.broadcast_shapes(log_var.shape, x.shape) != x.shape:
            raise ValueError(f"log_var of shape {tuple(log_var.shape)} does not broadcast to x of shape "
                             f"{tuple(x.shape)}; pass one value per pixel, per example or a scalar")
        inv_var = torch.exp(-log_var)
    else:
        # a float stays a Python scalar: no host-to-device copy inside a captured graph
        inv_var = math.exp(-log_var)
    # log N(x; m, v) = -1/2 (log 2 pi + log v + (x - m)^2 / v)
    return _sum_per_example(-0.5 * (LOG_2PI + log_var + (x - mean).square() * inv_var))


def mse_sum(x_hat: Tensor, x: Tensor) -> Tensor:
    """Squared error summed over non-batch dims: (N,), in squared data units."""
    _require_same_shape(x_hat, x, "x_hat")
    return _sum_per_example((x_hat - x).square())


def log_normal_diag(z: Tensor, mu: Tensor, log_var: Tensor) -> Tensor:
    """log N(z; mu, diag exp(log_var)) summed over the last dim, nats.

    Inputs broadcast; the result has their broadcast shape without the last dim (z.shape[:-1] usually).
    """
    return _sum_last(-0.5 * (LOG_2PI + log_var + (z - mu).square() * torch.exp(-log_var)))


def log_std_normal(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed over the last dim: shape z.shape[:-1], nats."""
    return _sum_last(-0.5 * (LOG_2PI + z.square()))


def kl_std_normal(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) for (N, D) inputs: (N,) nats, summed over latent dims."""
    # KL = -1/2 sum(1 + log_var - mu^2 - exp(log_var))
    return -0.5 * _sum_last(1 + log_var - mu.square() - torch.exp(log_var))


def kl_diag_gaussians(mu_q: Tensor, log_var_q: Tensor, mu_p: Tensor, log_var_p: Tensor) -> Tensor:
    """KL(N(mu_q, diag exp(log_var_q)) || N(mu_p, diag exp(log_var_p))): summed over last dim, nats."""
    # KL = 1/2 sum(log_var_p - log_var_q + (var_q + (mu_q - mu_p)^2) / var_p - 1);
    # var_q / var_p as one exp of the difference cannot overflow where the ratio is moderate
    var_ratio = torch.exp(log_var_q - log_var_p)
    scaled_sq_dist = (mu_q - mu_p).square() * torch.exp(-log_var_p)
    return 0.5 * _sum_last(var_ratio - 1 - (log_var_q - log_var_p) + scaled_sq_dist)


def _check_mvn_shapes(mu_q: Tensor, cov_q: Tensor, mu_p: Tensor, cov_p: Tensor) -> None:
    """Raise ValueError unless mu are (..., D), cov are (..., D, D) and all batch dims broadcast."""
    if mu_q.ndim < 1 or mu_p.ndim < 1 or cov_q.ndim < 2 or cov_p.ndim < 2:
        raise ValueError("kl_mvn expects means of shape (..., D) and covariances of shape (..., D, D)")
    dims = {"mu_q": mu_q.shape[-1], "mu_p": mu_p.shape[-1], "cov_q rows": cov_q.shape[-2],
            "cov_q cols": cov_q.shape[-1], "cov_p rows": cov_p.shape[-2], "cov_p cols": cov_p.shape[-1]}
    if len(set(dims.values())) != 1:
        raise ValueError(f"kl_mvn needs one event size D everywhere, got {dims}; "
                         f"means must be (..., D) and covariances square (..., D, D)")
    try:
        torch.broadcast_shapes(mu_q.shape[:-1], cov_q.shape[:-2], mu_p.shape[:-1], cov_p.shape[:-2])
    except RuntimeError as error:
        raise ValueError(f"kl_mvn batch shapes do not broadcast: mu_q {tuple(mu_q.shape)}, cov_q "
                         f"{tuple(cov_q.shape)}, mu_p {tuple(mu_p.shape)}, cov_p {tuple(cov_p.shape)}") from error


def kl_mvn(mu_q: Tensor, cov_q: Tensor, mu_p: Tensor, cov_p: Tensor) -> Tensor:
    """KL(N(mu_q, cov_q) || N(mu_p, cov_p)) for mu (..., D) and SPD cov (..., D, D): (...) nats.

    Not-SPD input gives NaN rather than an error: checking Cholesky success would be a host sync.
    """
    _check_mvn_shapes(mu_q, cov_q, mu_p, cov_p)
    chol_q = torch.linalg.cholesky_ex(cov_q).L
    chol_p = torch.linalg.cholesky_ex(cov_p).L
    # KL = 1/2 (tr(S_p^-1 S_q) + |L_p^-1 (mu_p - mu_q)|^2 - D + log det S_p - log det S_q),
    # with tr(S_p^-1 S_q) = |L_p^-1 L_q|_F^2 and log det S = 2 sum log diag L: no inverse is formed
    whitened_chol_q = torch.linalg.solve_triangular(chol_p, chol_q, upper=False)
    whitened_diff = torch.linalg.solve_triangular(chol_p, (mu_p - mu_q).unsqueeze(-1), upper=False)
    trace_term = whitened_chol_q.square().sum((-2, -1))
    mahalanobis = whitened_diff.square().sum((-2, -1))
    half_log_det_p = chol_p.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    half_log_det_q = chol_q.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return 0.5 * (trace_term + mahalanobis - mu_q.shape[-1]) + half_log_det_p - half_log_det_q


def elbo(log_px_z: Tensor, kl: Tensor, beta: float = 1.0) -> Tensor:
    """Evidence lower bound per example: log p(x|z) - beta * KL, (N,) nats (beta=1 gives the true ELBO)."""
    return log_px_z - beta * kl


def iwae_bound(log_px_z: Tensor, log_pz: Tensor, log_qz: Tensor) -> Tensor:
    """log (1/k) sum_i p(x, z_i) / q(z_i|x) from (k, N) log terms: (N,) nats.

    A lower bound on log p(x) that is non-decreasing in k (Burda et al. 2016); k=1 is the ELBO.
    """
    log_weights = log_px_z + log_pz - log_qz
    # logsumexp shifts by the max, so weights near exp(-1e4) do not underflow to log 0
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


def total_correlation(z: Tensor, mu: Tensor, log_var: Tensor) -> Tensor:
    """Minibatch estimate of TC = E_q(z)[log q(z) - sum_d log q(z_d)] (Chen et al. 2018): () nats.

    z, mu, log_var (M, D): z_i drawn from q(z|x_i). The aggregate posterior is the batch's mixture,
    q(z) ~ (1/M) sum_j q(z|x_j), and each marginal q(z_d) the mixture of the d-th coordinates. Chen et al.'s
    minibatch-weighted sampling weighs the mixture 1/(N M) for N training images, and disentanglement_lib drops
    the weights: both differ from this by a constant, (D - 1) log N and -(D - 1) log M, so the gradients are the
    same, and this one converges to the TC as M grows.
    """
    m = z.shape[0]
    # log q(z_i,d | x_j) for every pair: (M, M, D), i over samples, j over the batch's posteriors
    log_q = -0.5 * (LOG_2PI + log_var.unsqueeze(0) + (z.unsqueeze(1) - mu.unsqueeze(0)).square()
                    * torch.exp(-log_var.unsqueeze(0)))
    log_qz = torch.logsumexp(log_q.sum(2), dim=1) - math.log(m)                  # (M,)
    log_marginals = (torch.logsumexp(log_q, dim=1) - math.log(m)).sum(1)          # (M,)
    return (log_qz - log_marginals).mean()


def covariance(values: Tensor) -> Tensor:
    """Covariance of the rows of values (N, D) about their mean, E[v v^T] - E[v] E[v]^T: (D, D)."""
    centred = values - values.mean(0)
    return centred.T @ centred / values.shape[0]


def dip_penalty(cov: Tensor, lambda_od: float, lambda_d: float) -> Tensor:
    """DIP-VAE's distance of a covariance (D, D) from I (Kumar et al. 2018):
    lambda_od sum_{i != j} cov_ij^2 + lambda_d sum_i (cov_ii - 1)^2, () in squared code units."""
    diagonal = torch.diagonal(cov)
    off_diagonal = cov - torch.diag(diagonal)
    return lambda_od * off_diagonal.square().sum() + lambda_d * (diagonal - 1).square().sum()
