"""The disentanglement metrics at their extremes, and in between at values computed here by other means: mutual
informations from contingency tables, modularity and DCI from their formulas, SAP and explicitness from the
accuracy of the best threshold rule a classifier can find."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from genlab import disentanglement as dis
from genlab.errors import ConfigError, DataError

SIZES = (4, 5, 6)
TREES = 20  # DCI's boosting stages in these tests: the codes are clean, 20 stages find what 100 find


def sample(n: int, sizes: tuple[int, ...] = SIZES, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def monotone_permuted(f: np.ndarray) -> np.ndarray:
    """Each factor through its own monotone map, the dimensions in another order."""
    return np.stack([np.exp(f[:, 2] / 2), -3.0 * f[:, 0] + 1, f[:, 1] ** 2.0], axis=1)


# ---------------------------------------------------------------- by hand


def plain_bins(x: np.ndarray, bins: int = 20) -> np.ndarray:
    """Equal-width bins over [min, max], the top edge in the last bin."""
    return np.minimum(((x - x.min()) / (x.max() - x.min()) * bins).astype(int), bins - 1)


def plain_mi(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in mutual information in nats from the contingency table of two label arrays."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1)
    joint /= joint.sum()
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    seen = joint > 0
    return float(np.sum(joint[seen] * np.log(joint[seen] / outer[seen])))


def plain_mi_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    return np.array([[plain_mi(plain_bins(c), f) for f in factors.T] for c in codes.T])


def mixed(f: np.ndarray) -> np.ndarray:
    """Dimension 0 carries factors 0 and 1 together (their sum); 1 and 2 carry factors 1 and 2."""
    return np.stack([f[:, 0] + f[:, 1], f[:, 1], f[:, 2]], axis=1).astype(float)


# ---------------------------------------------------------------- the code metrics


# explicitness reads the codes through a linear classifier: a curved map costs it a little (a middle level of
# exp(f) sits closer to its lower neighbour than to its upper one)
@pytest.mark.parametrize(("transform", "explicit"), [
    (lambda f: f.astype(float), 0.99), (lambda f: 2.5 - 0.5 * f[:, ::-1], 0.99), (monotone_permuted, 0.95)],
    ids=["equal", "affine-reversed", "monotone-permuted"])
def test_codes_that_are_the_factors_score_at_the_top(transform, explicit: float) -> None:
    factors = sample(1500)
    codes = transform(factors)
    assert dis.mig(codes, factors) > 0.98
    assert dis.modularity(codes, factors) > 0.99
    assert dis.explicitness(codes, factors) > explicit
    assert min(dis.dci(codes, factors, n_estimators=TREES)) > 0.99


def test_independent_codes_score_near_zero() -> None:
    factors = sample(1500)
    noise = np.random.default_rng(1).normal(size=(1500, 3))
    assert dis.mig(noise, factors) < 0.02
    assert dis.sap(noise, factors) < 0.05
    d, c, informativeness = dis.dci(noise, factors, n_estimators=TREES)
    assert d < 0.1 and c < 0.1
    assert informativeness < np.mean([1 / s for s in SIZES]) + 0.1  # chance accuracy
    assert abs(dis.explicitness(noise, factors) - 0.5) < 0.05  # ROC-AUC: 0.5 is chance
    # modularity normalises each code by its largest MI, and the plug-in MI of noise is small but positive for
    # every factor: noise lands in the middle of the scale, not at 0 (a property of the definition)
    assert dis.modularity(noise, factors) < 0.6


def test_mig_and_modularity_of_a_mixed_code_match_contingency_tables() -> None:
    factors = sample(3000)
    codes = mixed(factors)
    mi = plain_mi_matrix(codes, factors)
    entropy = np.array([plain_mi(f, f) for f in factors.T])
    ranked = -np.sort(-mi, axis=0)
    expected_mig = np.mean((ranked[0] - ranked[1]) / entropy)
    squared = mi**2
    expected_modularity = np.mean(1 - (squared.sum(1) - squared.max(1)) / (squared.max(1) * (len(SIZES) - 1)))
    assert dis.mutual_information(codes, factors) == pytest.approx(mi, abs=1e-12)
    assert dis.mig(codes, factors) == pytest.approx(expected_mig, abs=1e-12)
    assert dis.modularity(codes, factors) == pytest.approx(expected_modularity, abs=1e-12)
    assert 0.3 < expected_mig < 0.9 and 0.5 < expected_modularity < 0.99


def test_mig_reads_the_gap_not_the_information() -> None:
    """A factor carried twice has no gap: MIG counts it 0, whatever the codes carry."""
    factors = sample(2000, sizes=(5, 5))
    twice = np.stack([factors[:, 0], factors[:, 0], factors[:, 1]], axis=1).astype(float)
    assert dis.mig(twice, factors) == pytest.approx(0.5, abs=0.01)


def test_sap_on_binary_factors_matches_threshold_rules() -> None:
    """With two levels a 1-d linear SVM is a threshold: a code equal to its factor predicts it exactly, an
    independent code at chance (1/2), and f0 + f1 predicts either factor 3 times in 4 (the middle value is a
    coin flip)."""
    factors = sample(6000, sizes=(2, 2, 2))
    assert dis.sap(factors.astype(float), factors) == pytest.approx(1 - 0.5, abs=0.03)
    expected = np.mean([0.75 - 0.5, 1 - 0.75, 1 - 0.5])
    assert dis.sap(mixed(factors), factors) == pytest.approx(expected, abs=0.03)


def test_sap_weighs_the_levels_alike() -> None:
    """A level seen 1 time in 10: unweighted, an uninformative code would still score 0.9 by always predicting the
    common level; balanced class weights bring it to chance, 1/2, and the gap to the exact code back to 1/2."""
    rng = np.random.default_rng(5)
    factors = np.stack([(rng.random(3000) < 0.1).astype(int), rng.integers(0, 2, 3000)], axis=1)
    codes = np.stack([factors[:, 0], rng.normal(size=3000), factors[:, 1]], axis=1).astype(float)
    assert dis.sap(codes, factors) == pytest.approx(0.5, abs=0.05)


def test_sap_ranks_a_clean_code_above_a_noisy_one() -> None:
    factors = sample(3000)
    noise = np.random.default_rng(2).normal(size=factors.shape)
    clean, noisy = factors.astype(float), factors + 3 * noise
    assert dis.sap(clean, factors) > dis.sap(noisy, factors) + 0.1


def test_one_set_splits_two_thirds_for_training() -> None:
    factors = sample(900)
    codes = factors + np.random.default_rng(3).normal(size=factors.shape)
    assert dis.sap(codes, factors) == dis.sap(codes[:600], factors[:600], codes[600:], factors[600:])
    assert dis.explicitness(codes, factors) == dis.explicitness(codes[:600], factors[:600], codes[600:],
                                                                factors[600:])


def test_explicitness_of_a_missing_factor_is_chance() -> None:
    """Codes that carry factors 0 and 1 and nothing of 2: ROC-AUCs 1, 1 and 1/2."""
    factors = sample(3000)
    codes = np.concatenate([factors[:, :2], np.random.default_rng(4).normal(size=(3000, 1))], axis=1)
    assert dis.explicitness(codes, factors) == pytest.approx((1 + 1 + 0.5) / 3, abs=0.03)


def test_dci_scores_follow_the_entropy_formula() -> None:
    importance = np.array([[0.6, 0.2], [0.1, 0.1], [0.0, 0.0]])
    p_code = importance / importance.sum(1, keepdims=True).clip(1e-300)
    per_code = [1 + sum(p * math.log2(p) for p in row if p > 0) if row.sum() else 0 for row in p_code]
    code_weight = importance.sum(1) / importance.sum()
    p_factor = importance / importance.sum(0)
    per_factor = [1 + sum(p * math.log(p, 3) for p in col if p > 0) for col in p_factor.T]
    factor_weight = importance.sum(0) / importance.sum()
    d, c = dis.importance_scores(importance)
    assert d == pytest.approx(np.dot(per_code, code_weight), abs=1e-6)
    assert c == pytest.approx(np.dot(per_factor, factor_weight), abs=1e-6)
    assert dis.importance_scores(np.eye(3)) == pytest.approx((1, 1), abs=1e-6)
    assert dis.importance_scores(np.ones((3, 3))) == pytest.approx((0, 0), abs=1e-6)


def test_dci_of_a_mixed_code_is_in_between() -> None:
    factors = sample(1500)
    d, c, informativeness = dis.dci(mixed(factors), factors, n_estimators=TREES)
    assert 0.5 < d < 0.95 and 0.5 < c < 0.95
    assert informativeness > 0.95  # the codes still determine every factor


def test_bad_inputs_are_one_clear_error() -> None:
    factors = sample(100)
    with pytest.raises(DataError, match="integer level indices"):
        dis.mig(factors.astype(float), factors.astype(float))
    with pytest.raises(DataError, match="same N"):
        dis.mig(factors[:50].astype(float), factors)
    with pytest.raises(DataError, match="single level"):
        dis.mig(factors.astype(float), np.concatenate([factors[:, :2], np.zeros((100, 1), int)], axis=1))
    with pytest.raises(DataError, match="at least 2 dimension"):
        dis.mig(factors[:, :1].astype(float), factors)
    assert dis.normalized_mutual_information(factors[:, :1], factors)[0, 0] == pytest.approx(1)  # one code is fine
    with pytest.raises(DataError, match="both codes_test and factors_test"):
        dis.sap(factors.astype(float), factors, codes_test=factors.astype(float))


# ---------------------------------------------------------------- sampling from a factor source


class LevelsInPixels:
    """A ground-truth source whose image is its factor levels written into a 1 x K row of pixels."""

    names = ("a", "b", "c")
    sizes = SIZES

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, s, n) for s in self.sizes], axis=1).astype(np.int64)

    def images_for(self, factors: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(factors, dtype=np.uint8)).view(-1, 1, 1, len(self.sizes))


def read_pixels(images: torch.Tensor) -> np.ndarray:
    return images.reshape(images.shape[0], -1).float().numpy()


def read_pixels_transformed(images: torch.Tensor) -> np.ndarray:
    """Levels through monotone maps, permuted, beside a collapsed (constant) dimension."""
    levels = read_pixels(images)
    return np.concatenate([np.zeros((len(levels), 1)), monotone_permuted(levels)], axis=1)


def random_codes(seed: int):
    rng = np.random.default_rng(seed)
    return lambda images: rng.normal(size=(images.shape[0], 4))


SMALL = {"num_train": 300, "num_eval": 300}


@pytest.mark.parametrize("represent", [read_pixels, read_pixels_transformed], ids=["identity", "monotone"])
def test_sampling_metrics_of_the_factors_themselves_are_one(represent) -> None:
    source = LevelsInPixels()
    assert dis.beta_vae(represent, source, np.random.default_rng(0), **SMALL) > 0.97
    assert dis.factor_vae(represent, source, np.random.default_rng(0), num_variance_estimate=1000, **SMALL) > 0.97


def test_sampling_metrics_of_random_codes_are_chance() -> None:
    source, chance = LevelsInPixels(), 1 / len(SIZES)
    assert abs(dis.beta_vae(random_codes(1), source, np.random.default_rng(0), **SMALL) - chance) < 0.1
    score = dis.factor_vae(random_codes(2), source, np.random.default_rng(0), num_variance_estimate=1000, **SMALL)
    assert abs(score - chance) < 0.1


def test_factor_vae_with_every_dimension_collapsed_scores_zero() -> None:
    constant = lambda images: np.full((images.shape[0], 3), 0.5)
    assert dis.factor_vae(constant, LevelsInPixels(), np.random.default_rng(0), num_variance_estimate=100,
                          **SMALL) == 0.0


def test_factor_codes_pairs_each_code_with_its_factors() -> None:
    codes, factors = dis.factor_codes(read_pixels, LevelsInPixels(), 1000, np.random.default_rng(0), batch_size=300)
    assert codes.shape == (1000, 3) and factors.shape == (1000, 3) and factors.dtype == np.int64
    assert np.array_equal(codes, factors) and (factors.max(axis=0) == np.array(SIZES) - 1).all()
    with pytest.raises(DataError, match=r"codes \(n, d\)"):
        dis.factor_codes(lambda x: np.zeros(3), LevelsInPixels(), 10, np.random.default_rng(0))


TINY = dis.MetricSizes(beta_vae_batch=16, beta_vae_train=200, beta_vae_eval=100, factor_vae_batch=16,
                       factor_vae_train=200, factor_vae_eval=100, factor_vae_variance=500, mig_train=600,
                       sap_train=600, sap_test=300, dci_train=400, dci_test=300, dci_trees=10,
                       modularity_train=600, modularity_test=300)


def test_evaluate_disentanglement_reports_every_metric_and_its_points() -> None:
    seen = []
    result = dis.evaluate_disentanglement(read_pixels, LevelsInPixels(), seed=5, sizes=TINY,
                                          progress=lambda done, total: seen.append((done, total)))
    assert set(result) == {"beta_vae", "factor_vae", "mig", "dci", "sap", "modularity", "explicitness", "points"}
    assert set(result["dci"]) == {"disentanglement", "completeness", "informativeness"}
    assert min(result[k] for k in ("beta_vae", "factor_vae", "mig", "modularity", "explicitness")) > 0.95
    assert min(result["dci"].values()) > 0.95
    assert seen[-1] == (TINY.images(), TINY.images()) and all(a[0] < b[0] for a, b in itertools.pairwise(seen))
    assert result["points"]["dci"] == {"train": 400, "test": 300, "trees": 10}
    line = dis.points_line(result["points"])
    assert "beta_vae 200/100 x16" in line and "dci 400/300 (10 trees)" in line and "mig 600," in line


def test_evaluate_disentanglement_is_reproducible_from_its_seed() -> None:
    small = TINY.replace(dci_train=100, dci_test=50)
    run = lambda seed: dis.evaluate_disentanglement(random_codes(seed), LevelsInPixels(), seed, sizes=small)
    assert run(7) == run(7)
    assert run(7) != run(8)


def test_a_tqdm_like_progress_learns_the_total() -> None:
    class Bar:
        total, n = None, 0

        def update(self, k: int) -> None:
            self.n += k

    bar = Bar()
    dis.evaluate_disentanglement(read_pixels, LevelsInPixels(), 0, progress=bar, sizes=TINY)
    assert bar.total == bar.n == TINY.images()


def test_metric_sizes_default_to_the_library_and_scale_down() -> None:
    sizes = dis.MetricSizes()
    assert (sizes.mig_train, sizes.sap_test, sizes.factor_vae_variance, sizes.dci_trees) == (10000, 5000, 10000, 100)
    small = sizes.scaled(0.1)
    assert (small.mig_train, small.beta_vae_eval, small.beta_vae_batch, small.dci_trees) == (1000, 500, 64, 100)
    with pytest.raises(ConfigError, match="fraction"):
        sizes.scaled(1.5)


# ---------------------------------------------------------------- which factor each dimension carries


def test_carried_factors_name_each_dims_factor_most_informative_first_collapsed_last() -> None:
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 8, size=(4000, 2))
    codes = np.stack([factors[:, 1] + 0.5 * rng.normal(size=4000),   # dim 0: factor 1, blurred
                      rng.normal(size=4000),                        # dim 1: nothing, and collapsed
                      factors[:, 0] + 0.01 * rng.normal(size=4000)],  # dim 2: factor 0, sharp
                     axis=1)
    rows = dis.carried_factors(codes, factors, kl=[2.0, 0.001, 3.0])
    assert [(r.dim, r.factor, r.collapsed) for r in rows][:2] == [(2, 0, False), (0, 1, False)]
    assert rows[-1].dim == 1 and rows[-1].collapsed
    nmi = dis.normalized_mutual_information(codes, factors)
    assert rows[0].nmi == pytest.approx(nmi[2, 0]) and rows[0].nmi > 0.95 > rows[1].nmi > 0.3
