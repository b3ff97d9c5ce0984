"""Acquisition points and what each instruction stage did, from per-item outcomes at a run's checkpoints.

Input: ``curves: dict[(run, task, subset), Curve]``, a :class:`Curve` holding the checkpoints in words-seen order,
each one's words seen (> 0) and curriculum stage (0 = pre-training, then the instruction stages), and each item's
outcome (1 right, 0 wrong or tied) in the same item order at every checkpoint. Accuracies are fractions of items
(chance too, e.g. 0.5 for a minimal pair); stage effects are in percentage points. The tables are rows of dicts for
the caller to write as CSV.

Acquisition point (the AoA idea, :mod:`classit.eval.curve_fit`'s sigmoid): the words seen at which the sigmoid fitted
to accuracy over log10 words first reaches halfway between chance and its final level (the fitted curve at the last
checkpoint). Least squares over every item at every checkpoint equals least squares over the checkpoints' accuracies
(the same items at each), so the fit runs over the accuracies. Cost: only acquired subsets are fitted; with 1000
resamples on 19 checkpoints ~0.5 s a subset with a clear rise, ~3 s a shallow one, ~7 s one barely above chance.
"""

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from classit.eval.curve_fit import crossing, fit_sigmoid, sigmoid, sigmoid_jacobian
from classit.study.stats import paired_bootstrap

ALPHA = 0.05  # the not-acquired test's level
MIN_CHECKPOINTS = 4  # a 4-parameter sigmoid: fewer checkpoints leave it undetermined (as AoA)
STEEPEST = 50.0  # bound on the steepness b (per log10 word) of the bounded refit: a rise within a few percent


@dataclass(frozen=True)
class Curve:
    """One subset over one run's checkpoints (words-seen order): ``words`` seen at each, its curriculum ``stages``
    (indices into ``stage_names``), ``outcomes`` [checkpoints, items] 1/0, and the ``chance`` accuracy."""
    words: np.ndarray
    stages: list[int]
    stage_names: list[str]
    outcomes: np.ndarray
    chance: float


@dataclass(frozen=True)
class Acquisition:
    """``words`` seen at the acquisition point (None: not acquired, or no point: see ``note``); ``low``/``high`` its
    95% bootstrap interval over items; ``final`` the last checkpoint's accuracy; ``acquired`` whether it is above
    chance by the one-sided exact binomial test (``p_value``)."""
    words: float | None
    low: float | None
    high: float | None
    final: float
    acquired: bool
    p_value: float
    note: str


@dataclass(frozen=True)
class Effect:
    """A stage's change in accuracy (percentage points, after - before) with its 95% paired bootstrap interval over
    items; ``verdict``: helped (interval above 0), eroded (below 0: forgetting) or unchanged."""
    delta: float
    low: float
    high: float
    verdict: str


def _fit(x: np.ndarray, accuracy: np.ndarray, p0) -> np.ndarray | None:
    """Sigmoid parameters of an accuracy curve, a > 0: Levenberg-Marquardt (curve_fit's default with the analytic
    Jacobian, ~2 ms a fit on 19 checkpoints); where it fails or leaves the bounds of an accuracy curve (a and d in
    [0, 1], b in [0, STEEPEST], c within a decade of the checkpoints: an unbounded fit may bend a straight stretch
    into a far tail), the bounded ``trf`` solver to a relative tolerance of 1e-6 (~5-15 ms; it failed least on
    shallow resampled curves, ``dogbox`` and the 1e-8 default up to 4 times slower; it converges in ~25 evaluations,
    a fit still going at 100 is given up: a nearly flat curve)."""
    lower, upper = np.array([0, 0, x[0] - 1, 0]), np.array([1, STEEPEST, x[-1] + 1, 1])
    params = fit_sigmoid(x, accuracy, p0=p0, jac=sigmoid_jacobian, maxfev=200)  # it converges in ~20 or never
    if params is not None and params[0] < 0:
        params = np.array([-params[0], -params[1], params[2], params[0] + params[3]])  # the same curve, a > 0
    if params is not None and np.all((lower <= params) & (params <= upper)):
        return params
    return fit_sigmoid(x, accuracy, p0=np.clip(p0, lower, upper), jac=sigmoid_jacobian, bounds=(lower, upper),
                       method="trf", ftol=1e-6, xtol=1e-6, gtol=1e-6, maxfev=100)


def _halfway(x: np.ndarray, accuracy: np.ndarray, chance: float, p0) -> tuple[float, str, np.ndarray | None]:
    """log10 words where the fitted sigmoid first reaches halfway between chance and its value at the last
    checkpoint, how it was placed, and the parameters. Placed before the first checkpoint: x[0]; curve not above
    chance at the end: x[-1] (not yet acquired); a failed fit: NaN."""
    params = _fit(x, accuracy, p0)
    if params is None:
        return np.nan, "sigmoid fit failed", None
    with np.errstate(over="ignore"):  # a step (huge b): exp overflows to inf, the sigmoid to its ends, as it should
        final, first = sigmoid(x[-1], *params), sigmoid(x[0], *params)
    if final <= chance:
        return x[-1], "fitted curve not above chance at the last checkpoint", params
    level = chance + (final - chance) / 2
    if first >= level:
        return x[0], "halfway reached at or before the first checkpoint", params
    return crossing(params, level), "fitted", params  # rising: below the level at x[0], above it at x[-1]


def acquisition(log10_words: np.ndarray, outcomes: np.ndarray, chance: float, resamples: int = 1000,
                seed: int = 0) -> Acquisition:
    """The acquisition point of one subset (see the module's docstring) from ``outcomes`` [checkpoints, items] 1/0.

    Not acquired (no number) unless the last checkpoint's correct items beat ``chance`` by a one-sided exact binomial
    test at ``ALPHA``: the last checkpoint is the final level the point is defined from, and testing the best one
    instead would pick the maximum of many noisy accuracies and need a correction for that choice. An acquired
    subset still gets no number when the sigmoid fit fails, when it has fewer than ``MIN_CHECKPOINTS`` checkpoints,
    when the fitted curve does not end above chance, or when the fitted curve is already halfway at the first
    checkpoint (``note`` says which). The interval: ``resamples`` replicates redraw the items with replacement
    (seeded) and refit; a replicate placed outside the checkpoints counts at the first or last one (an interval
    reaching them means "at or beyond"); failed refits are left out; percentiles 2.5 and 97.5.
    """
    x, outcomes = np.asarray(log10_words, dtype=float), np.asarray(outcomes, dtype=float)
    correct, items = int(outcomes[-1].sum()), outcomes.shape[1]
    p_value = float(binomtest(correct, items, chance, alternative="greater").pvalue)
    final, acquired = correct / items, p_value < ALPHA

    def result(words=None, low=None, high=None, note=""):
        return Acquisition(words, low, high, final, acquired, p_value, note)

    if not acquired:
        return result(note=f"not above chance {chance:g} at the last checkpoint (one-sided binomial p = "
                           f"{p_value:.3g} >= {ALPHA})")
    if len(x) < MIN_CHECKPOINTS:
        return result(note=f"{len(x)} checkpoints; a 4-parameter sigmoid needs at least {MIN_CHECKPOINTS}")
    accuracy = outcomes.mean(axis=1)
    point, note, params = _halfway(x, accuracy, chance,
                                   [max(accuracy.max() - accuracy.min(), 0.01), 1.0, x.mean(), accuracy.min()])
    if note != "fitted":
        return result(note=note)
    rng = np.random.default_rng(seed)
    boot = [_halfway(x, outcomes[:, rng.integers(0, items, items)].mean(axis=1), chance, params)[0]
            for _ in range(resamples)]
    low, high = np.nanpercentile(boot, [2.5, 97.5])
    return result(float(10 ** point), float(10 ** low), float(10 ** high), note)


def stage_effect(before: np.ndarray, after: np.ndarray, resamples: int = 1000, seed: int = 0) -> Effect:
    """The change from ``before`` to ``after`` (the same items' 1/0 outcomes at two checkpoints), in percentage
    points, with a paired bootstrap interval over items (:func:`classit.study.stats.paired_bootstrap`)."""
    diffs = 100 * (np.asarray(after, dtype=float) - np.asarray(before, dtype=float))
    delta, low, high = paired_bootstrap({"items": diffs}, {"items": 1.0}, resamples, seed)
    return Effect(delta, low, high, "helped" if low > 0 else "eroded" if high < 0 else "unchanged")


def acquisition_rows(curves: dict[tuple[str, str, str], Curve], resamples: int = 1000, seed: int = 0) -> list[dict]:
    """One row per (run, task, subset): its acquisition point over all the curve's checkpoints, sorted by the point
    (acquired without a number next, then not acquired; ties by run, task, subset)."""
    rows = []
    for (run, task, subset), curve in curves.items():
        if len(curve.words) != len(curve.outcomes) or np.any(np.asarray(curve.words) <= 0):
            raise ValueError(f"{run} {task} {subset}: {len(curve.words)} checkpoints' words seen (all > 0 needed) "
                             f"for {len(curve.outcomes)} rows of outcomes")
        found = acquisition(np.log10(curve.words), curve.outcomes, curve.chance, resamples, seed)
        rows.append({"run": run, "task": task, "subset": subset, "acquired": found.acquired, "words": found.words,
                     "low": found.low, "high": found.high, "final": found.final, "chance": curve.chance,
                     "p_value": found.p_value, "checkpoints": len(curve.words), "items": curve.outcomes.shape[1],
                     "note": found.note})
    return sorted(rows, key=lambda r: (not r["acquired"], r["words"] is None, r["words"] or 0,
                                       r["run"], r["task"], r["subset"]))


def stage_rows(curves: dict[tuple[str, str, str], Curve], resamples: int = 1000, seed: int = 0) -> list[dict]:
    """One row per run, instruction stage and subset (by run, stage, task, subset): the change from the last
    checkpoint before the stage (the end of the previous one) to the stage's last checkpoint."""
    rows = []
    for (run, task, subset), curve in curves.items():
        stages = np.asarray(curve.stages)
        for stage in sorted(set(curve.stages) - {0}):
            earlier = np.flatnonzero(stages < stage)
            if not len(earlier):
                continue
            before, after = earlier[-1], np.flatnonzero(stages == stage)[-1]
            effect = stage_effect(curve.outcomes[before], curve.outcomes[after], resamples, seed)
            rows.append({"run": run, "task": task, "subset": subset, "stage": stage,
                         "stage_name": curve.stage_names[stage], "words_before": int(curve.words[before]),
                         "words_after": int(curve.words[after]), "before": float(curve.outcomes[before].mean()),
                         "after": float(curve.outcomes[after].mean()), "delta": effect.delta, "low": effect.low,
                         "high": effect.high, "verdict": effect.verdict})
    return sorted(rows, key=lambda r: (r["run"], r["stage"], r["task"], r["subset"]))
