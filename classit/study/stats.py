"""The statistics of a report: z-scores across conditions, seeded paired bootstrap intervals, McNemar's exact
test and a permutation test over seeds."""

import itertools
import math

import numpy as np
from scipy.stats import binomtest, rankdata

PERMUTATIONS = 20_000  # random permutations when the exact test would enumerate more splits


def zscores(means: dict[str, float]) -> dict[str, float]:
    """z of each condition's mean over the conditions (population std); 0 for all when they are equal."""
    values = np.array(list(means.values()), dtype=float)
    std = values.std()
    return {k: 0.0 if std == 0 else float((v - values.mean()) / std) for k, v in means.items()}


def paired_bootstrap(diffs: dict[str, np.ndarray], weights: dict[str, float], resamples: int = 1000,
                     seed: int = 0) -> tuple[float, float, float]:
    """The weighted mean over subsets of the mean per-item difference, and its 95% percentile interval from
    ``resamples`` replicates that redraw the items of every subset with replacement (seeded)."""
    rng = np.random.default_rng(seed)
    estimate, boot = 0.0, np.zeros(resamples)
    for subset, d in diffs.items():
        d = np.asarray(d, dtype=float)
        estimate += weights[subset] * d.mean()
        boot += weights[subset] * d[rng.integers(0, len(d), (resamples, len(d)))].mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return float(estimate), float(low), float(high)


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair (average ranks for ties)."""
    rx, ry = rankdata(x, axis=1), rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    return (rx * ry).sum(axis=1) / np.sqrt((rx ** 2).sum(axis=1) * (ry ** 2).sum(axis=1))


def bootstrap_rho(probs_a: list[np.ndarray], probs_b: list[np.ndarray], target: np.ndarray, resamples: int = 1000,
                  seed: int = 0) -> tuple[float, float, float, float]:
    """Difference (B - A, x100) of the seed-mean Spearman rho with ``target``; the same items redrawn for both
    sides. Returns the estimate, the 95% interval and the two-sided bootstrap p-value."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(target), (resamples, len(target)))
    idx = np.vstack([np.arange(len(target)), idx])  # row 0: the observed items

    def mean_rho(probs):
        return np.mean([_spearman_rows(np.asarray(p)[idx], target[idx]) for p in probs], axis=0)

    diff = 100 * (mean_rho(probs_b) - mean_rho(probs_a))
    low, high = np.percentile(diff[1:], [2.5, 97.5])
    return float(diff[0]), float(low), float(high), bootstrap_p(diff[1:])


def bootstrap_p(boot: np.ndarray) -> float:
    """Two-sided p-value of a bootstrap distribution of a difference: twice its smaller tail beyond zero."""
    return float(min(1.0, 2 * min((boot <= 0).mean(), (boot >= 0).mean())))


def mcnemar(b: int, c: int) -> float:
    """McNemar's exact test: ``b`` items only B got right, ``c`` only A; two-sided p of b in Binomial(b + c, 1/2)."""
    return 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)


def metric(labels: np.ndarray, preds: np.ndarray, name: str) -> np.ndarray:
    """Accuracy or binary F1 (positive label 1), in percent, along the last axis."""
    if name == "accuracy":
        return 100 * (labels == preds).mean(axis=-1)
    tp = ((preds == 1) & (labels == 1)).sum(axis=-1)
    wrong = (preds != labels).sum(axis=-1)
    return np.where(2 * tp + wrong == 0, 0.0, 100 * 2 * tp / np.maximum(2 * tp + wrong, 1))


def bootstrap_runs(labels: np.ndarray, runs_a: list[np.ndarray], runs_b: list[np.ndarray], name: str,
                   resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Difference (B - A) of the mean metric over fine-tuning runs: each replicate redraws the items (the same
    for both sides) and each side's runs with replacement. Returns the estimate and the 95% interval."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(labels), (resamples, len(labels)))

    def side(runs):
        scores = np.stack([metric(labels[idx], np.asarray(r)[idx], name) for r in runs])  # runs x resamples
        pick = rng.integers(0, len(runs), (resamples, len(runs)))
        return scores[pick, np.arange(resamples)[:, None]].mean(axis=1), np.mean([metric(labels, r, name) for r in runs])

    boot_a, point_a = side(runs_a)
    boot_b, point_b = side(runs_b)
    low, high = np.percentile(boot_b - boot_a, [2.5, 97.5])
    return float(point_b - point_a), float(low), float(high)


def permutation_test(a: list[float], b: list[float], seed: int = 0) -> float:
    """Two-sided permutation test of the difference of means of two sets of runs: exact over all splits when
    there are at most PERMUTATIONS of them, else that many random ones (seeded)."""
    pooled, n = np.array(a + b, dtype=float), len(a)
    observed = abs(np.mean(b) - np.mean(a))
    if math.comb(len(pooled), n) <= PERMUTATIONS:
        splits = [list(c) for c in itertools.combinations(range(len(pooled)), n)]
    else:
        rng = np.random.default_rng(seed)
        splits = [rng.permutation(len(pooled))[:n] for _ in range(PERMUTATIONS)]
    hits = 0
    for first in splits:
        mask = np.zeros(len(pooled), bool)
        mask[first] = True
        hits += abs(pooled[~mask].mean() - pooled[mask].mean()) >= observed - 1e-12
    return hits / len(splits)
