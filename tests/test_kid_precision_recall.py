"""KID and improved precision/recall against plain loops written here, at their extremes, and in `evaluate`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genlab import metrics, tables
from genlab.cli import main
from genlab.errors import ConfigError

TINY = ["--data", "shapes", "--epochs", "1", "--max-steps", "3"]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def gaussian(n: int, dims: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, dims, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


# ---------------------------------------------------------------- independent computations, plainly


def loop_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, one pair at a time."""
    m, d = x.shape

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (sum(float(ai) * float(bi) for ai, bi in zip(a, b)) / d + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def loop_radii(points: np.ndarray, k: int) -> list[float]:
    """Squared distance from each point to its k-th nearest other point."""
    radii = []
    for i, p in enumerate(points):
        others = sorted(float(np.sum((p - q) ** 2)) for j, q in enumerate(points) if j != i)
        radii.append(others[k - 1])
    return radii


def loop_coverage(queries: np.ndarray, support: np.ndarray, k: int) -> float:
    """Share of queries within some support point's k-NN ball."""
    radii = loop_radii(support, k)
    inside = [any(float(np.sum((q - s) ** 2)) <= r for s, r in zip(support, radii)) for q in queries]
    return sum(inside) / len(queries)


# ---------------------------------------------------------------- KID


def test_kid_of_one_full_subset_equals_the_pairwise_loop() -> None:
    x, y = gaussian(10, 4, 0), gaussian(10, 4, 1, shift=0.5)
    kid = metrics.kernel_distance(x, y, subsets=3, subset_size=1000)  # capped at 10: every subset is the whole set
    assert kid["subset_size"] == 10 and kid["subsets"] == 3
    assert kid["mean"] == pytest.approx(loop_mmd(x.numpy(), y.numpy()), rel=1e-10)
    assert kid["std"] == pytest.approx(0.0, abs=1e-12)  # MMD^2 does not depend on the order of the points


def test_kid_averages_subsets_capped_by_the_smaller_set_and_is_seeded() -> None:
    x, y = gaussian(30, 3, 2), gaussian(12, 3, 3, shift=1.0)
    kid = metrics.kernel_distance(x, y, subsets=20, subset_size=1000, seed=5)
    assert kid["subset_size"] == 12 and kid["std"] > 0  # 12 of 30 differ from subset to subset
    assert kid == metrics.kernel_distance(x, y, subsets=20, subset_size=1000, seed=5)
    assert kid != metrics.kernel_distance(x, y, subsets=20, subset_size=1000, seed=6)
    single = metrics.kernel_distance(x[:12], y, subsets=1, subset_size=12)
    assert single["mean"] == pytest.approx(loop_mmd(x[:12].numpy(), y.numpy()), rel=1e-10)


def test_kid_is_near_zero_for_identical_sets_and_grows_with_the_gap() -> None:
    x = gaussian(400, 8, 4)
    same = metrics.kernel_distance(x, x.clone(), subsets=10, subset_size=200)
    values = [metrics.kernel_distance(x, gaussian(400, 8, 5, shift), subsets=10, subset_size=200)["mean"]
              for shift in (0.5, 1.0, 3.0, 100.0)]
    assert abs(same["mean"]) < 0.05 * values[0]  # unbiased: only sampling noise of order 1/subset_size
    assert values == sorted(values) and values[-1] > 1e6  # far apart: the cubic kernel's gap is huge


def test_kid_needs_two_vectors_in_each_set() -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        metrics.kernel_distance(gaussian(1, 3, 0), gaussian(5, 3, 1))


# ---------------------------------------------------------------- precision and recall


def test_knn_radii_equal_the_loop_in_any_chunking() -> None:
    points = gaussian(17, 3, 6)
    expected = loop_radii(points.numpy(), 3)
    for max_entries in (1, 7, 40, 1 << 23):  # one row a block, a few rows, all at once
        assert metrics.knn_radii(points, 3, max_entries).tolist() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("max_entries", [1, 13, 1 << 23])
def test_precision_and_recall_equal_the_loops(max_entries: int) -> None:
    real, generated = gaussian(25, 3, 7), gaussian(19, 3, 8, shift=0.8)
    precision, recall = metrics.precision_recall(real, generated, 3, max_entries)
    assert precision == loop_coverage(generated.numpy(), real.numpy(), 3)
    assert recall == loop_coverage(real.numpy(), generated.numpy(), 3)
    assert 0 < precision < 1 and 0 < recall < 1  # the case is not degenerate


def test_precision_and_recall_at_their_extremes() -> None:
    real = gaussian(60, 5, 9)
    assert metrics.precision_recall(real, real.clone()) == (1.0, 1.0)
    assert metrics.precision_recall(real, gaussian(50, 5, 10, shift=100.0)) == (0.0, 0.0)


def test_dropping_a_mode_costs_recall_not_precision() -> None:
    real = torch.cat([gaussian(40, 4, 11), gaussian(40, 4, 12, shift=50.0)])  # two far clusters
    assert metrics.precision_recall(real, real[:40].clone()) == (1.0, 0.5)  # only the first cluster generated


def test_precision_recall_needs_more_points_than_k() -> None:
    with pytest.raises(ConfigError, match="k=3"):
        metrics.precision_recall(gaussian(3, 2, 0), gaussian(10, 2, 1))


# ---------------------------------------------------------------- the table


def frechet_record(**extra) -> dict:
    return {"samples_vs_test": 3.0, "train_vs_test": 0.1, "samples": 50, "test_images": 100,
            "inception": {"fid": None, "note": "Inception FID skipped: no weights"}, **extra}


def test_the_table_states_the_floor_count_kid_and_precision_recall() -> None:
    kid = {"mean": 0.01234, "std": 0.002, "subsets": 100, "subset_size": 50}
    record = frechet_record(floor_train_images=50, kid={"samples_vs_test": kid, "train_vs_test": kid},
                            precision_recall={"samples_vs_test": {"precision": 0.75, "recall": 0.5},
                                              "train_vs_test": {"precision": 0.9, "recall": 0.875}, "k": 3})
    rows = dict(tables.frechet_rows(record))
    floor = rows["Fréchet distance, classifier features"]
    assert "50 train images" in floor and "not comparable" in floor and "biased upward at small N" in floor
    kid_row, pr_row = rows["KID, classifier features"], rows["precision / recall, k=3"]
    assert "0.01234 ± 0.002" in kid_row and "100 subsets of 50" in kid_row
    assert pr_row.startswith("0.750 / 0.500") and "0.900 / 0.875" in pr_row


def test_an_older_record_without_them_still_reads() -> None:
    rows = dict(tables.frechet_rows(frechet_record()))
    assert set(rows) == {"Fréchet distance, classifier features", "Inception FID"}


# ---------------------------------------------------------------- evaluate


def test_evaluate_measures_the_floor_at_the_samples_count(tmp_path, monkeypatch, capsys) -> None:
    for name, flags in {"dcgan": ["--dim", "8"], "classifier": ["--conv-channels", "8"]}.items():
        assert main(["train", name, *TINY, *flags, "--out", str(tmp_path / name)]) == 0
    sizes: list[tuple[int, int]] = []
    frechet = metrics.frechet_distance

    def recording(a: torch.Tensor, b: torch.Tensor) -> float:
        sizes.append((len(a), len(b)))
        return frechet(a, b)
    monkeypatch.setattr(metrics, "frechet_distance", recording)
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "dcgan"), "--test-images", "60", "--fid-samples", "40",
                 "--classifier", str(tmp_path / "classifier")]) == 0
    assert sizes[:2] == [(40, 60), (40, 60)]  # samples vs test, then train vs test at the samples' count
    record = json.loads((tmp_path / "dcgan" / "evaluation.json").read_text())["frechet"]
    assert record["floor_train_images"] == 40
    assert record["kid"]["samples_vs_test"]["subset_size"] == 40 and record["precision_recall"]["k"] == 3
    assert 0 <= record["precision_recall"]["train_vs_test"]["recall"] <= 1
    out = capsys.readouterr().out
    assert "KID, classifier features" in out and "precision / recall, k=3" in out and "not comparable" in out
