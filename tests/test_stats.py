"""The report's statistics (classit/study/stats.py) on numbers worked out by hand or by scipy."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from classit.study import stats


def test_accuracy_and_f1_along_the_last_axis():
    labels = np.array([1, 1, 0, 0])
    preds = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    assert stats.metric(labels, preds, "accuracy").tolist() == [50.0, 100.0, 50.0]
    assert stats.metric(labels, preds, "f1").tolist() == [50.0, 100.0, 0.0]  # 2·1 / (2·1 + 2 wrong); no positive
    assert stats.metric(np.zeros(3), np.zeros(3), "f1") == 0.0  # no positive label nor prediction: 0, not NaN


def test_the_bootstrap_p_value_is_twice_the_smaller_tail():
    assert stats.bootstrap_p(np.array([-1.0, 1.0, 2.0, 3.0])) == 0.5  # 1 of 4 at or below zero
    assert stats.bootstrap_p(np.array([1.0, 2.0])) == 0.0
    assert stats.bootstrap_p(np.array([0.0, 0.0])) == 1.0  # capped at 1


def seed_mean_rho(probs: list[np.ndarray], target: np.ndarray) -> float:
    return float(np.mean([spearmanr(x, target).statistic for x in probs]))


def test_the_rho_difference_is_scipys_on_the_observed_items_and_seeded():
    rng = np.random.default_rng(0)
    target = rng.random(40)
    a = [target + rng.normal(0, 1.0, 40) for _ in range(2)]  # two seeds, weakly related to the target
    b = [target + rng.normal(0, 0.1, 40)]
    estimate, low, high, p = stats.bootstrap_rho(a, b, target, resamples=200, seed=1)
    assert estimate == pytest.approx(100 * (seed_mean_rho(b, target) - seed_mean_rho(a, target)))
    assert 0 < low < estimate < high and p < 0.05
    assert stats.bootstrap_rho(a, b, target, resamples=200, seed=1) == (estimate, low, high, p)
