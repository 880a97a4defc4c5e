"""Metrics against closed forms and oracles: a linear-Gaussian likelihood, Fréchet distances, linear probes."""
from __future__ import annotations

import gc
import json
import math
import os

import pytest
import torch
from torch import Tensor, nn

from genlab import evaluation, losses, metrics, tables
from genlab.errors import ConfigError
from genlab.files import WriteError
from genlab.models.contract import Classifier
from genlab.models.registry import make_config
from genlab.options import TrainConfig
from genlab.runs.record import DataRecord, RunRecord
from genlab.training import feature_classifier as cache


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


class LinearGaussian(nn.Module):
    """z ~ N(0, I), x | z ~ N(W z + b, sigma^2 I), so p(x) = N(b, W W^T + sigma^2 I) exactly.

    Its posterior is Gaussian too; q(z|x) here is deliberately not it (mean shrunk, variance too wide, no
    correlations), so the ELBO is strictly below log p(x) and importance weighting has a gap to close.
    """

    def __init__(self, x_dim: int = 6, z_dim: int = 2, sigma: float = 0.5) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(1)
        self.W = nn.Parameter(torch.randn(x_dim, z_dim, generator=generator, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(x_dim, generator=generator, dtype=torch.float64))
        self.sigma = sigma
        precision = torch.eye(z_dim, dtype=torch.float64) + self.W.T @ self.W / sigma ** 2
        self.register_buffer("posterior_cov", torch.linalg.inv(precision))

    def exact_log_likelihood(self, x: Tensor) -> Tensor:
        cov = self.W @ self.W.T + self.sigma ** 2 * torch.eye(len(self.b), dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        exact_mean = (x - self.b) @ (self.posterior_cov @ self.W.T / self.sigma ** 2).T
        log_var = torch.log(1.5 * self.posterior_cov.diagonal()).expand_as(exact_mean)
        return 0.8 * exact_mean, log_var

    def log_weight_terms(self, x: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
        mu, log_var = self.posterior(x)
        z = mu + torch.exp(0.5 * log_var) * torch.randn(k, *mu.shape, dtype=mu.dtype)
        means = (z @ self.W.T + self.b).flatten(0, 1)  # (k * N, x_dim)
        log_px_z = losses.gaussian_log_likelihood(means, x.repeat(k, 1), 2 * math.log(self.sigma)).view(k, -1)
        return log_px_z, losses.log_std_normal(z), losses.log_normal_diag(z, mu, log_var)

    def log_likelihood(self, x: Tensor, k: int = 100) -> Tensor:
        return losses.iwae_bound(*self.log_weight_terms(x, k))

    def elbo(self, x: Tensor) -> Tensor:
        return self.log_likelihood(x, 1)


@pytest.fixture(scope="module")
def linear_gaussian() -> tuple[LinearGaussian, Tensor, float]:
    torch.manual_seed(0)
    model = LinearGaussian().requires_grad_(False)
    with torch.no_grad():
        z = torch.randn(400, 2, dtype=torch.float64)
        x = z @ model.W.T + model.b + model.sigma * torch.randn(400, 6, dtype=torch.float64)
        exact_nll = float(-model.exact_log_likelihood(x).mean())
    return model, x, exact_nll


def test_iwae_nll_approaches_the_exact_likelihood_as_k_grows(linear_gaussian) -> None:
    model, x, exact = linear_gaussian
    torch.manual_seed(1)
    neg_elbo = metrics.elbo_parts(model, x)["neg_elbo"]
    gaps = [float(metrics.iwae_nll(model, x, k).mean()) - exact for k in (1, 10, 100, 1000)]
    assert neg_elbo - exact > 0.1          # the ELBO stays clearly below log p(x): q is not the posterior
    assert abs(gaps[0] - (neg_elbo - exact)) < 0.1  # k = 1 is the ELBO
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] > -0.01  # tightens with k, never below
    assert gaps[-1] < 0.02 < gaps[0] / 5


def test_iwae_nll_batches_samples_when_k_exceeds_the_decode_budget(linear_gaussian) -> None:
    model, x, _ = linear_gaussian
    nll = metrics.iwae_nll(model, x[:50], k=2000, max_decodes=300)  # 1 image x 300 samples per pass
    assert nll.shape == (50,)
    assert abs(float(nll.mean()) - float(-model.exact_log_likelihood(x[:50]).mean())) < 0.02


def test_iwae_nll_splits_k_into_equal_passes(linear_gaussian, monkeypatch) -> None:
    # passes of one size let the allocator reuse the same memory; a 4096 + 904 split does not
    model, x, _ = linear_gaussian
    sizes: list[tuple[int, int]] = []
    estimate = model.log_likelihood
    monkeypatch.setattr(model, "log_likelihood", lambda batch, k: sizes.append((len(batch), k)) or estimate(batch, k))
    metrics.iwae_nll(model, x[:2], k=5000, max_decodes=4096)
    assert sizes == [(1, 2500)] * 4
    sizes.clear()
    metrics.iwae_nll(model, x[:7], k=1000, max_decodes=4096)
    assert sizes == [(4, 1000), (3, 1000)]


def test_iwae_nll_keeps_no_tensor_per_pass(linear_gaussian, monkeypatch) -> None:
    # results kept as one small tensor per pass pinned the heap apart between the passes' large buffers:
    # resident memory grew 2.3 MB per image at k = 5000 and reached 22.6 GB on the 10,000 test images
    model, x, _ = linear_gaussian
    live: list[int] = []
    estimate = model.log_likelihood

    def counting(batch: Tensor, k: int) -> Tensor:
        live.append(sum(1 for o in gc.get_objects() if type(o) is Tensor))
        return estimate(batch, k)
    monkeypatch.setattr(model, "log_likelihood", counting)
    nll = metrics.iwae_nll(model, x[:40], k=500, max_decodes=500)  # 40 passes of one image
    assert len(live) == 40 and live[-1] == live[1], f"live tensors per pass: {live}"
    assert nll.shape == (40,)


def test_elbo_parts_add_up(linear_gaussian) -> None:
    model, x, _ = linear_gaussian
    parts = metrics.elbo_parts(model, x, batch_size=64)
    assert parts["neg_elbo"] == pytest.approx(parts["rec"] + parts["kl"])
    assert parts["kl"] > 0


def test_k_must_be_positive(linear_gaussian) -> None:
    with pytest.raises(ConfigError, match="k"):
        metrics.iwae_nll(linear_gaussian[0], linear_gaussian[1], k=0)
    with pytest.raises(ConfigError, match="k must be >= 1"):
        evaluation.EvaluationOptions(k=0)


def test_bits_per_dim() -> None:
    assert metrics.bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)


# ---------------------------------------------------------------- Fréchet distance


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_noise() -> None:
    feats = torch.randn(2000, 16) @ torch.randn(16, 16)
    assert abs(metrics.frechet_distance(feats, feats)) < 1e-6 * float(feats.var(0).sum())
    noise = torch.randn_like(feats)
    distances = [metrics.frechet_distance(feats, feats + level * noise) for level in (0.1, 0.3, 1.0, 3.0)]
    assert distances == sorted(distances) and distances[0] > 0


def test_frechet_distance_matches_the_closed_form_for_an_affine_copy() -> None:
    feats = torch.randn(500, 4, dtype=torch.float64) @ torch.randn(4, 4, dtype=torch.float64)
    # b = 2a + 3: |mu_a - mu_b|^2 = |mu_a + 3|^2, and tr(S + 4S - 2 (4 S^2)^(1/2)) = tr(S)
    expected = float((feats.mean(0) + 3).square().sum() + torch.cov(feats.T).trace())
    assert metrics.frechet_distance(feats, 2 * feats + 3) == pytest.approx(expected, rel=1e-9)
    assert metrics.frechet_distance(2 * feats + 3, feats) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_needs_two_vectors() -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        metrics.frechet_distance(torch.randn(1, 3), torch.randn(5, 3))


def test_inception_fid_names_what_is_missing() -> None:
    reason = metrics.inception_fid_unavailable()
    if reason is None:
        pytest.skip("pytorch-fid and its weights are installed here")
    assert reason.startswith("Inception FID skipped") and "\n" not in reason
    assert "pytorch-fid" in reason or metrics.FID_WEIGHTS in reason


# ---------------------------------------------------------------- linear probe


def test_probe_on_one_hot_labels_is_perfect() -> None:
    train_y, test_y = torch.randint(0, 5, (300,)), torch.randint(0, 5, (100,))
    one_hot = torch.nn.functional.one_hot
    assert metrics.linear_probe(one_hot(train_y, 5), train_y, one_hot(test_y, 5), test_y) == 1.0


def test_probe_on_noise_is_near_chance() -> None:
    train_y, test_y = torch.randint(0, 4, (400,)), torch.randint(0, 4, (400,))
    accuracy = metrics.linear_probe(torch.randn(400, 8), train_y, torch.randn(400, 8), test_y)
    assert 0.1 < accuracy < 0.4


def test_probe_ignores_constant_features() -> None:
    y = torch.arange(40) % 2
    feats = torch.stack([y.float(), torch.zeros(40)], dim=1)  # a constant column would divide by zero
    assert metrics.linear_probe(feats, y, feats, y) == 1.0


# ---------------------------------------------------------------- the evaluation record


def test_evaluation_json_is_written_atomically(tmp_path, monkeypatch) -> None:
    path = evaluation.write_evaluation(tmp_path, {"model": "vae", "value": 1.5})
    assert json.loads(path.read_text()) == {"model": "vae", "value": 1.5}

    def fail(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(WriteError, match="disk full"):  # genlab's one-line error for a failed write
        evaluation.write_evaluation(tmp_path, {"model": "vae", "value": 2.5})
    assert json.loads(path.read_text())["value"] == 1.5           # the old record is intact
    assert [p.name for p in tmp_path.iterdir()] == ["evaluation.json"]  # and no temporary file is left


def test_evaluation_rows_describe_every_part() -> None:
    record = {"test_images": 100, "test_set": "binarize_fixed(test_x)",
              "neg_elbo": {"neg_elbo": 250.0, "rec": 230.0, "kl": 20.0, "bits_per_dim": 0.46},
              "iwae_nll": {"nats": 245.0, "bits_per_dim": 0.45, "standard_error": 1.0, "k": 1000, "images": 100,
                           "neg_elbo_same_images": 250.0},
              "reconstruction_mse": 0.01,
              "frechet": {"samples_vs_test": 3.0, "train_vs_test": 0.1, "samples": 50, "test_images": 100,
                          "inception": {"fid": None, "note": "Inception FID skipped: no weights"}},
              "probe": {"latent": 0.8, "pixels": 0.84, "train_images": 10, "test_images": 100, "latent_dim": 2}}
    rows = dict(tables.evaluation_rows(record))
    assert "binarize_fixed" in rows["test set"] and "250.00 nats/image" in rows["-ELBO"]
    assert "245.00" in rows["IWAE NLL, k=1000"] and rows["Inception FID"].startswith("Inception FID skipped")
    assert "80.00%" in rows["linear probe accuracy"] and "84.00%" in rows["linear probe accuracy"]
    assert len(tables.format_table(list(rows.items())).splitlines()) == len(rows)


def test_the_classifier_is_trained_once_and_cached(tiny_shapes, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(cache, "CLASSIFIER_EPOCHS", 1)
    config = RunRecord("vae", make_config("vae"), DataRecord(spec="shapes", name="shapes"), TrainConfig())
    lines: list[str] = []
    folder = cache.cached_classifier(config, tiny_shapes, lines.append)
    model = evaluation.load_classifier(folder, tiny_shapes, torch.device("cpu"))
    assert isinstance(model, Classifier) and folder == tmp_path / "classifier-shapes"
    assert len(lines) == 2  # "training the feature classifier once ..." and one epoch line
    again = evaluation.load_classifier(cache.cached_classifier(config, tiny_shapes, lines.append), tiny_shapes,
                                       torch.device("cpu"))
    assert len(lines) == 2  # loaded from the cache, not trained again
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
