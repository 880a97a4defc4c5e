"""Disentanglement metrics: how well each code dimension carries one ground-truth factor, and only one.

The definitions and default settings are disentanglement_lib's (Locatello et al. 2019): its
`evaluation/metrics/*.py` and `config/unsupervised_study_v1/metric_configs/*.gin`. The classifiers are
scikit-learn's. Arrays in, numbers out: codes are float (N, d) (encoder means), factors int (N, K) level
indices. Every score is unitless; mutual informations are in nats.

Code metrics (`mig`, `sap`, `dci`, `modularity`, `explicitness`) take arrays. Those that fit a classifier take a
training set and a test set like disentanglement_lib's; given one set only, they train on its first two thirds
and test on the last third (the library's 10000 : 5000). Sampling metrics (`beta_vae`, `factor_vae`) draw their
own batches from a `GroundTruthFactors` source (genlab.data.factors); `evaluate_disentanglement` runs all seven.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score, roc_auc_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from genlab.config import Config, option
from genlab.errors import ConfigError, DataError

if TYPE_CHECKING:  # the sampling metrics use a source's sizes, sample_factors and images_for, nothing of torch
    import torch

    from genlab.data.factors import GroundTruthFactors

HISTOGRAM_BINS = 20      # MIG, modularity: codes discretized into 20 equal-width bins per dimension
SAP_C = 0.01             # SAP: linear SVM regularization, class_weight="balanced"
DCI_TREES = 100          # DCI: sklearn GradientBoostingClassifier's default n_estimators, as in the library
PRUNE_THRESHOLD = 0.05   # FactorVAE metric: dimensions with a global standard deviation below this are collapsed
IMAGES_PER_CALL = 4096   # images rendered and encoded per `represent` call: bounds host memory (64x64: 16 MB)

Represent = Callable[["torch.Tensor"], np.ndarray]  # uint8 (n, C, H, W) -> float codes (n, d)
Progress = Callable[[int, int], Any]  # (done, total) images encoded; a tqdm-like object (update, total) works too


def logistic_regression() -> OneVsRestClassifier:
    """disentanglement_lib's LogisticRegression() as the scikit-learn of its results (0.20) defined it: liblinear,
    C = 1, one level against the rest."""
    return OneVsRestClassifier(LogisticRegression(solver="liblinear"))


class DCI(NamedTuple):
    """Eastwood & Williams 2018, each in [0, 1]; informativeness is the trees' mean test accuracy."""

    disentanglement: float
    completeness: float
    informativeness: float


# ---------------------------------------------------------------- inputs


def checked(codes: Any, factors: Any, name: str = "codes", dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(codes float64 (N, d >= dims), factors int64 (N, K)), or a DataError saying what was wrong."""
    codes, factors = np.asarray(codes), np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or codes.shape[0] != factors.shape[0] or codes.shape[0] < 2:
        raise DataError(f"{name} must be (N, d) and factors (N, K) with the same N >= 2; got {codes.shape} and "
                        f"{factors.shape}")
    if not np.issubdtype(factors.dtype, np.integer) or (factors < 0).any():
        raise DataError(f"factors must be non-negative integer level indices, got {factors.dtype}; discretize "
                        "continuous factors first")
    if codes.shape[1] < dims or not np.isfinite(codes).all():
        raise DataError(f"{name} must be finite with at least {dims} dimension(s) (a metric compares the best code "
                        f"with the next), got {codes.shape[1]}")
    return codes.astype(np.float64), factors.astype(np.int64)


def varying(factors: np.ndarray, metric: str) -> None:
    """A factor with one level in these points carries no information to find: say which and stop."""
    fixed = [k for k in range(factors.shape[1]) if np.unique(factors[:, k]).size < 2]
    if fixed:
        raise DataError(f"{metric}: factor(s) {fixed} take a single level in these {factors.shape[0]} points; "
                        "sample the factors over their levels (more points, or leave constant factors out)")


def train_test(codes: Any, factors: Any, codes_test: Any, factors_test: Any, metric: str) -> tuple[np.ndarray, ...]:
    """The training and test sets: both given, or the given set's first 2/3 and last 1/3 (points are i.i.d.)."""
    if (codes_test is None) != (factors_test is None):
        raise DataError(f"{metric}: give both codes_test and factors_test, or neither (then the last third of the "
                        "points is held out)")
    codes, factors = checked(codes, factors)
    if codes_test is None:
        cut = 2 * codes.shape[0] // 3
        if cut < 2 or codes.shape[0] - cut < 1:
            raise DataError(f"{metric}: {codes.shape[0]} points are too few to hold out a third; give at least 4")
        codes, codes_test, factors, factors_test = codes[:cut], codes[cut:], factors[:cut], factors[cut:]
    codes_test, factors_test = checked(codes_test, factors_test, "codes_test")
    if codes_test.shape[1] != codes.shape[1] or factors_test.shape[1] != factors.shape[1]:
        raise DataError(f"{metric}: the test set has {codes_test.shape[1]} code dims and {factors_test.shape[1]} "
                        f"factors, the training set {codes.shape[1]} and {factors.shape[1]}")
    varying(factors, metric)
    return codes, factors, codes_test, factors_test


# ---------------------------------------------------------------- mutual information


def discretize(codes: np.ndarray, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """Float (N, d) -> int (N, d) bin indices in 1..bins: `bins` equal-width bins spanning each dimension."""
    codes = np.asarray(codes, dtype=np.float64)
    return np.stack([np.digitize(column, np.histogram(column, bins)[1][:-1]) for column in codes.T], axis=1)


def mutual_information(codes: Any, factors: Any, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """(d, K) nats: I(z_i; v_k) between each discretized code dimension and each factor (plug-in estimate)."""
    codes, factors = checked(codes, factors, dims=1)
    binned = discretize(codes, bins)
    return np.array([[mutual_info_score(factor, code) for factor in factors.T] for code in binned.T])


def factor_entropy(factors: Any) -> np.ndarray:
    """(K,) nats: the plug-in entropy H(v_k) of each factor in these points."""
    factors = np.asarray(factors)
    return np.array([mutual_info_score(factor, factor) for factor in factors.T])


def normalized_mutual_information(codes: Any, factors: Any, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """(d, K) in [0, 1]: I(z_i; v_k) / H(v_k), the share of factor k's information that dimension i carries."""
    codes, factors = checked(codes, factors, dims=1)
    varying(factors, "normalized mutual information")
    return mutual_information(codes, factors, bins) / factor_entropy(factors)


COLLAPSED_KL = 0.01  # nats: a dimension whose mean KL to the prior is below this carries nothing (posterior = prior)


class CarriedFactor(NamedTuple):
    """What one code dimension carries: the factor it tells most about, that share of the factor's entropy, and
    whether it is collapsed (its posterior is the prior: KL below COLLAPSED_KL)."""

    dim: int
    factor: int
    nmi: float
    kl: float
    collapsed: bool


def carried_factors(codes: Any, factors: Any, kl: Any, bins: int = HISTOGRAM_BINS) -> list[CarriedFactor]:
    """Per code dimension of codes (N, d), factors (N, K) and the mean KL per dimension (d,) nats: its factor, in
    reading order: the most informative dimensions first, collapsed ones last."""
    nmi = normalized_mutual_information(codes, factors, bins)
    kl = np.asarray(kl, dtype=np.float64)
    rows = [CarriedFactor(i, int(nmi[i].argmax()), float(nmi[i].max()), float(kl[i]), bool(kl[i] < COLLAPSED_KL))
            for i in range(nmi.shape[0])]
    return sorted(rows, key=lambda row: (row.collapsed, -row.nmi, row.dim))


# ---------------------------------------------------------------- the code metrics


def mig(codes: Any, factors: Any, bins: int = HISTOGRAM_BINS) -> float:
    """Mutual information gap (Chen et al. 2018), in [0, 1]: per factor, the gap between the two codes that
    carry most of it, over its entropy; averaged over factors. Codes are binned as `discretize` does."""
    codes, factors = checked(codes, factors)
    top_two = -np.sort(-normalized_mutual_information(codes, factors, bins), axis=0)[:2]
    return float(np.mean(top_two[0] - top_two[1]))


def sap(codes: Any, factors: Any, codes_test: Any = None, factors_test: Any = None, c: float = SAP_C) -> float:
    """Separated attribute predictability (Kumar et al. 2018), in [0, 1]: per factor, the test accuracy of a linear
    SVM on the best single code dimension minus that on the second best; averaged over factors."""
    codes, factors, codes_test, factors_test = train_test(codes, factors, codes_test, factors_test, "SAP")
    accuracy = np.zeros((codes.shape[1], factors.shape[1]))
    for i, k in np.ndindex(accuracy.shape):
        svm = LinearSVC(C=c, class_weight="balanced").fit(codes[:, i:i + 1], factors[:, k])
        accuracy[i, k] = np.mean(svm.predict(codes_test[:, i:i + 1]) == factors_test[:, k])
    top_two = -np.sort(-accuracy, axis=0)[:2]
    return float(np.mean(top_two[0] - top_two[1]))


def dci(codes: Any, factors: Any, codes_test: Any = None, factors_test: Any = None,
        n_estimators: int = DCI_TREES, seed: int = 0) -> DCI:
    """Disentanglement, completeness, informativeness from one gradient-boosted tree classifier per factor.

    `n_estimators` below the definition's 100 trades faithfulness for time (many-level factors fit one tree per
    level per stage); say so beside any number it gives. `seed` fixes the trees' tie-breaking.
    """
    codes, factors, codes_test, factors_test = train_test(codes, factors, codes_test, factors_test, "DCI")
    if factors.shape[1] < 2:
        raise DataError("DCI disentanglement needs at least 2 factors to spread a code's importance over")
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    accuracy = []
    for k in range(factors.shape[1]):
        trees = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed).fit(codes, factors[:, k])
        importance[:, k] = np.abs(trees.feature_importances_)
        accuracy.append(np.mean(trees.predict(codes_test) == factors_test[:, k]))
    disentanglement, completeness = importance_scores(importance)
    return DCI(disentanglement, completeness, float(np.mean(accuracy)))


def importance_scores(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of a (d, K) importance matrix R: 1 - H_K(R_i. / sum R_i.) per code weighted
    by its share of R, and 1 - H_d(R_.k / sum R_.k) per factor weighted by its share."""
    importance = np.asarray(importance, dtype=np.float64)
    weights = importance if importance.sum() > 0 else np.ones_like(importance)  # nothing learned: weigh alike
    per_code = 1 - normalized_entropy(importance, axis=1)
    per_factor = 1 - normalized_entropy(importance, axis=0)
    return (float(np.sum(per_code * weights.sum(axis=1) / weights.sum())),
            float(np.sum(per_factor * weights.sum(axis=0) / weights.sum())))


def normalized_entropy(weights: np.ndarray, axis: int) -> np.ndarray:
    """Entropy of the distribution along `axis` in units of log(its length), so in [0, 1]; 1e-11 keeps log finite."""
    p = weights + 1e-11
    p = p / p.sum(axis=axis, keepdims=True)
    return -np.sum(p * np.log(p), axis=axis) / np.log(weights.shape[axis])


def modularity(codes: Any, factors: Any, bins: int = HISTOGRAM_BINS) -> float:
    """Modularity (Ridgeway & Mozer 2018), in [0, 1]: per code, 1 - (sum_k m_k^2 - max m^2) / (max m^2 (K - 1)) with
    m_k = I(z_i; v_k); a code that carries nothing scores 0; averaged over codes."""
    codes, factors = checked(codes, factors)
    if factors.shape[1] < 2:
        raise DataError("modularity needs at least 2 factors: it asks whether a code carries only one of them")
    squared = mutual_information(codes, factors, bins) ** 2
    largest = squared.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = (squared.sum(axis=1) - largest) / (largest * (factors.shape[1] - 1))
    return float(np.mean(np.where(largest > 0, 1 - deviation, 0.0)))


def explicitness(codes: Any, factors: Any, codes_test: Any = None, factors_test: Any = None) -> float:
    """Explicitness (Ridgeway & Mozer 2018), up to 1 (0.5 is chance): per factor, the test ROC-AUC of a logistic
    regression on all standardized codes, one level against the rest, averaged over levels; then over factors."""
    codes, factors, codes_test, factors_test = train_test(codes, factors, codes_test, factors_test, "explicitness")
    mean, std = codes.mean(axis=0), codes.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant code stays 0 instead of dividing by zero
    train, test = (codes - mean) / std, (codes_test - mean) / std
    return float(np.mean([level_auc(train, factors[:, k], test, factors_test[:, k]) for k in range(factors.shape[1])]))


def level_auc(train: np.ndarray, labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray) -> float:
    """Mean ROC-AUC over the levels seen in training whose one-vs-rest AUC the test set defines."""
    model = logistic_regression().fit(train, labels)
    truth = test_labels[:, None] == model.classes_[None, :]
    defined = truth.any(axis=0) & ~truth.all(axis=0)
    if not defined.any():
        raise DataError("explicitness: the test set holds a single level of a factor; give more test points")
    probability = model.predict_proba(test)
    return float(np.mean([roc_auc_score(truth[:, j], probability[:, j]) for j in np.flatnonzero(defined)]))


# ---------------------------------------------------------------- sampling from a factor source


class Meter:
    """Counts images encoded for a `Progress` callable(done, total) or a tqdm-like object; None reports nothing."""

    def __init__(self, progress: Progress | Meter | Any | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0
        if hasattr(progress, "update") and hasattr(progress, "total"):
            progress.total = total  # a tqdm bar made without a total learns it here

    def advance(self, images: int) -> None:
        self.done += images
        if hasattr(self.progress, "update"):
            self.progress.update(images)
        elif self.progress is not None:
            self.progress(self.done, self.total)


def meter(progress: Any, total: int) -> Meter:
    """The caller's meter as it is (a metric inside evaluate_disentanglement), or a new one over `total` images."""
    return progress if isinstance(progress, Meter) else Meter(progress, total)


def encode(represent: Represent, source: GroundTruthFactors, factors: np.ndarray, progress: Meter) -> np.ndarray:
    """Factors (n, K) -> codes float64 (n, d): rendered and encoded IMAGES_PER_CALL at a time."""
    parts = []
    for start in range(0, factors.shape[0], IMAGES_PER_CALL):
        chunk = factors[start:start + IMAGES_PER_CALL]
        codes = np.asarray(represent(source.images_for(chunk)), dtype=np.float64)
        if codes.ndim != 2 or codes.shape[0] != chunk.shape[0]:
            raise DataError(f"represent must map n images to codes (n, d); {chunk.shape[0]} images gave an array of "
                            f"shape {codes.shape}")
        parts.append(codes)
        progress.advance(chunk.shape[0])
    return np.concatenate(parts)


def factor_codes(represent: Represent, source: GroundTruthFactors, n: int, rng: np.random.Generator,
                 batch_size: int = IMAGES_PER_CALL, progress: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(codes float64 (n, d), factors int64 (n, K)) of n sampled factor combinations: disentanglement_lib's
    generate_batch_factor_code. `batch_size` factors are drawn, rendered and encoded at a time (memory only)."""
    progress = meter(progress, n)
    factors = np.concatenate([source.sample_factors(min(batch_size, n - start), rng)
                              for start in range(0, n, batch_size)]).astype(np.int64)
    return encode(represent, source, factors, progress), factors


def points_per_call(batch_size: int, images_per_point: int) -> int:
    """Metric points gathered per rendering pass, each costing images_per_point * batch_size images."""
    return max(1, IMAGES_PER_CALL // (images_per_point * batch_size))


def beta_vae(represent: Represent, source: GroundTruthFactors, rng: np.random.Generator, batch_size: int = 64,
             num_train: int = 10000, num_eval: int = 5000, progress: Any = None) -> float:
    """The beta-VAE metric (Higgins et al. 2017), up to 1 (1/K is chance): the held-out accuracy of a logistic
    regression that tells, from mean |z(x1) - z(x2)| over `batch_size` pairs sharing one factor's level, which
    factor it was."""
    progress = meter(progress, 2 * batch_size * (num_train + num_eval))
    train, train_labels = beta_vae_points(represent, source, rng, batch_size, num_train, progress)
    model = logistic_regression().fit(train, train_labels)
    test, test_labels = beta_vae_points(represent, source, rng, batch_size, num_eval, progress)
    return float(model.score(test, test_labels))


def beta_vae_points(represent: Represent, source: GroundTruthFactors, rng: np.random.Generator, batch_size: int,
                    n: int, progress: Meter) -> tuple[np.ndarray, np.ndarray]:
    """n (features (d,), held factor) points: two batches agree on one random factor, features = mean |z1 - z2|."""
    features, labels = [], []
    for start in range(0, n, points_per_call(batch_size, 2)):
        m = min(points_per_call(batch_size, 2), n - start)
        held = rng.integers(len(source.sizes), size=m)
        first = source.sample_factors(m * batch_size, rng).astype(np.int64)
        second = source.sample_factors(m * batch_size, rng).astype(np.int64)
        rows, columns = np.arange(m * batch_size), np.repeat(held, batch_size)
        second[rows, columns] = first[rows, columns]
        z = encode(represent, source, np.concatenate([first, second]), progress)
        features.append(np.abs(z[:m * batch_size] - z[m * batch_size:]).reshape(m, batch_size, -1).mean(axis=1))
        labels.append(held)
    return np.concatenate(features), np.concatenate(labels)


def factor_vae(represent: Represent, source: GroundTruthFactors, rng: np.random.Generator, batch_size: int = 64,
               num_train: int = 10000, num_eval: int = 5000, num_variance_estimate: int = 10000,
               prune_threshold: float = PRUNE_THRESHOLD, progress: Any = None) -> float:
    """The FactorVAE metric (Kim & Mnih 2018), up to 1 (1/K is chance): hold one factor fixed over a batch, find
    the active code dimension of least variance (over its global variance); the held-out accuracy of a majority
    vote from that dimension to the factor. Dimensions with a global standard deviation under prune_threshold are
    collapsed; with none active the score is 0."""
    progress = meter(progress, num_variance_estimate + batch_size * (num_train + num_eval))
    codes, _ = factor_codes(represent, source, num_variance_estimate, rng, progress=progress)
    scale = codes.var(axis=0, ddof=1)
    active = np.flatnonzero(np.sqrt(scale) >= prune_threshold)
    if active.size == 0:
        progress.advance(batch_size * (num_train + num_eval))  # nothing left to encode
        return 0.0
    train = factor_vae_votes(represent, source, rng, batch_size, num_train, scale, active, progress)
    factor_of = train.argmax(axis=0)  # (d,) the majority vote: each dimension's factor
    test = factor_vae_votes(represent, source, rng, batch_size, num_eval, scale, active, progress)
    return float(test[factor_of, np.arange(test.shape[1])].sum() / test.sum())


def factor_vae_votes(represent: Represent, source: GroundTruthFactors, rng: np.random.Generator, batch_size: int, n: int,
                     scale: np.ndarray, active: np.ndarray, progress: Meter) -> np.ndarray:
    """(K, d) counts: how often, over n batches with factor k held fixed, dimension j varied least."""
    votes = np.zeros((len(source.sizes), scale.shape[0]), dtype=np.int64)
    for start in range(0, n, points_per_call(batch_size, 1)):
        m = min(points_per_call(batch_size, 1), n - start)
        held = rng.integers(len(source.sizes), size=m)
        factors = source.sample_factors(m * batch_size, rng).astype(np.int64).reshape(m, batch_size, -1)
        factors[np.arange(m), :, held] = factors[np.arange(m), 0, held][:, None]  # each batch: its first level
        z = encode(represent, source, factors.reshape(m * batch_size, -1), progress).reshape(m, batch_size, -1)
        # the vote goes to the dimension itself: disentanglement_lib cast it at the position among the active ones
        least = active[np.argmin(z[:, :, active].var(axis=1, ddof=1) / scale[active], axis=1)]
        np.add.at(votes, (held, least), 1)
    return votes


# ---------------------------------------------------------------- all seven


@dataclasses.dataclass(frozen=True)
class MetricSizes(Config):
    """Points per metric; the defaults are disentanglement_lib's unsupervised_study_v1 metric configs."""

    beta_vae_batch: int = option(64, "beta-VAE metric: image pairs averaged into one point", low=1, high=10**6)
    beta_vae_train: int = option(10000, "beta-VAE metric: training points", low=2, high=10**8)
    beta_vae_eval: int = option(5000, "beta-VAE metric: evaluation points", low=1, high=10**8)
    factor_vae_batch: int = option(64, "FactorVAE metric: images per point (one factor held)", low=2, high=10**6)
    factor_vae_train: int = option(10000, "FactorVAE metric: training points (votes)", low=1, high=10**8)
    factor_vae_eval: int = option(5000, "FactorVAE metric: evaluation points", low=1, high=10**8)
    factor_vae_variance: int = option(10000, "FactorVAE metric: images for the global variances", low=2, high=10**8)
    mig_train: int = option(10000, "MIG: points", low=2, high=10**8)
    sap_train: int = option(10000, "SAP: training points", low=2, high=10**8)
    sap_test: int = option(5000, "SAP: test points", low=2, high=10**8)
    dci_train: int = option(10000, "DCI: training points", low=2, high=10**8)
    dci_test: int = option(5000, "DCI: test points", low=2, high=10**8)
    dci_trees: int = option(DCI_TREES, "DCI: boosting stages per factor (the definition: 100; fewer is faster and "
                                       "less faithful)", low=1, high=10**4)
    modularity_train: int = option(10000, "modularity points, also explicitness's training points", low=2,
                                   high=10**8)
    modularity_test: int = option(5000, "explicitness: test points", low=2, high=10**8)

    def scaled(self, fraction: float) -> MetricSizes:
        """Every point count times `fraction` (batches and trees kept): a time budget in one number."""
        if not 0 < fraction <= 1:
            raise ConfigError(f"the fraction of the default points must be in (0, 1], got {fraction}")
        keep = {"beta_vae_batch", "factor_vae_batch", "dci_trees"}
        return self.replace(**{f.name: max(4, round(getattr(self, f.name) * fraction))
                               for f in dataclasses.fields(self) if f.name not in keep})

    def images(self) -> int:
        """Images rendered and encoded by evaluate_disentanglement with these sizes (the progress total)."""
        return (2 * self.beta_vae_batch * (self.beta_vae_train + self.beta_vae_eval) + self.factor_vae_variance
                + self.factor_vae_batch * (self.factor_vae_train + self.factor_vae_eval)
                + max(self.mig_train, self.sap_train, self.dci_train, self.modularity_train)
                + max(self.sap_test, self.dci_test, self.modularity_test))


def evaluate_disentanglement(represent: Represent, source: GroundTruthFactors, seed: int, progress: Any = None,
                             sizes: MetricSizes = MetricSizes()) -> dict[str, Any]:
    """All seven metrics of `represent` on `source`, and the points each used ("points").

    The sampling metrics and the code metrics draw from three streams of `seed`. The code metrics share one
    training and one test set (each takes its first n points), as disentanglement_lib's metrics, each run from
    seed 0, drew the same points.
    """
    beta_rng, factor_rng, code_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    progress = Meter(progress, sizes.images())
    scores: dict[str, Any] = {
        "beta_vae": beta_vae(represent, source, beta_rng, sizes.beta_vae_batch, sizes.beta_vae_train,
                             sizes.beta_vae_eval, progress),
        "factor_vae": factor_vae(represent, source, factor_rng, sizes.factor_vae_batch, sizes.factor_vae_train,
                                 sizes.factor_vae_eval, sizes.factor_vae_variance, progress=progress)}
    codes, factors = factor_codes(represent, source, max(sizes.mig_train, sizes.sap_train, sizes.dci_train,
                                                         sizes.modularity_train), code_rng, progress=progress)
    test_codes, test_factors = factor_codes(represent, source, max(sizes.sap_test, sizes.dci_test,
                                                                   sizes.modularity_test), code_rng, progress=progress)
    train, test = (lambda n: (codes[:n], factors[:n])), (lambda n: (test_codes[:n], test_factors[:n]))
    scores["mig"] = mig(*train(sizes.mig_train))
    scores["dci"] = dci(*train(sizes.dci_train), *test(sizes.dci_test), n_estimators=sizes.dci_trees)._asdict()
    scores["sap"] = sap(*train(sizes.sap_train), *test(sizes.sap_test))
    scores["modularity"] = modularity(*train(sizes.modularity_train))
    scores["explicitness"] = explicitness(*train(sizes.modularity_train), *test(sizes.modularity_test))
    return scores | {"points": points_used(sizes)}


def points_used(sizes: MetricSizes) -> dict[str, dict[str, int]]:
    """Per metric, its point counts: train/eval (or test), and the batch, variance and tree counts that apply."""
    s = sizes
    return {"beta_vae": {"train": s.beta_vae_train, "eval": s.beta_vae_eval, "batch": s.beta_vae_batch},
            "factor_vae": {"train": s.factor_vae_train, "eval": s.factor_vae_eval, "batch": s.factor_vae_batch,
                           "variance": s.factor_vae_variance},
            "mig": {"train": s.mig_train},
            "dci": {"train": s.dci_train, "test": s.dci_test, "trees": s.dci_trees},
            "sap": {"train": s.sap_train, "test": s.sap_test},
            "modularity": {"train": s.modularity_train},
            "explicitness": {"train": s.modularity_train, "test": s.modularity_test}}


def points_line(points: dict[str, dict[str, int]]) -> str:
    """One line of the points each metric used: 'points: beta_vae 10000/5000 x64, ..., dci 10000/5000 (100 trees)'."""
    parts = []
    for name, p in points.items():
        text = f"{name} " + "/".join(str(p[key]) for key in ("train", "eval", "test") if key in p)
        text += f" x{p['batch']}" if "batch" in p else ""
        text += f" (variance {p['variance']})" if "variance" in p else ""
        parts.append(text + (f" ({p['trees']} trees)" if "trees" in p else ""))
    return "points: " + ", ".join(parts)
