"""Acquisition points and stage effects on synthetic items whose true accuracy curve is known: a point recovered,
the not-acquired rule, the interval's coverage, helped / eroded / unchanged, the tables and the figures."""

import matplotlib.image
import numpy as np
import pytest

from classit.dynamics.acquisition import (
    ALPHA,
    Curve,
    acquisition,
    acquisition_rows,
    stage_effect,
    stage_rows,
)
from classit.dynamics.acquisition_plots import acquisition_dots, stage_effects
from classit.eval.curve_fit import crossing, sigmoid

# the BabyLM strict-small milestones: every 1M words to 10M, then every 10M to 100M
WORDS = np.array([*range(1, 10), *range(10, 101, 10)], dtype=float) * 1e6
X = np.log10(WORDS)
CHANCE = 0.5
TOLERANCE = 0.15  # log10 words: a recovered point within a factor 1.41 of the true one


def true_point(top: float, steepness: float, midpoint: float) -> float:
    """log10 words where the true curve from chance to ``top`` reaches halfway to its value at the last checkpoint."""
    params = (top - CHANCE, steepness, midpoint, CHANCE)
    return crossing(params, CHANCE + (sigmoid(X[-1], *params) - CHANCE) / 2)


def simulate(rng, items: int, top: float = 0.9, steepness: float = 4.0, midpoint: float = 7.0) -> np.ndarray:
    """Outcomes [checkpoints, items]: each item right at each checkpoint with the true curve's accuracy."""
    accuracy = sigmoid(X, top - CHANCE, steepness, midpoint, CHANCE)
    return (rng.random((len(X), items)) < accuracy[:, None]).astype(int)


@pytest.mark.parametrize("midpoint", [6.5, 7.0, 7.5])
def test_acquisition_point_recovered_from_a_known_sigmoid(midpoint):
    outcomes = simulate(np.random.default_rng(1), 400, midpoint=midpoint)
    found = acquisition(X, outcomes, CHANCE, resamples=20)
    truth = true_point(0.9, 4.0, midpoint)
    assert found.acquired and found.p_value < 1e-6 and found.note == "fitted"
    assert abs(np.log10(found.words) - truth) < TOLERANCE, (np.log10(found.words), truth)
    assert found.low <= found.words <= found.high
    assert found.final == outcomes[-1].mean()


def test_a_flat_curve_at_chance_is_not_acquired_and_gets_no_number():
    rng = np.random.default_rng(2)
    found = acquisition(X, simulate(rng, 300, top=CHANCE), CHANCE)
    assert not found.acquired and found.words is found.low is found.high is None
    assert found.p_value >= ALPHA and "not above chance 0.5" in found.note
    below = acquisition(X, simulate(rng, 300, top=0.3, midpoint=6.5), CHANCE)  # learned the wrong preference
    assert not below.acquired and below.words is None and below.p_value > 0.99
    # the test's level: flat curves at chance pass it about ALPHA of the time, no more
    passed = [acquisition(X, simulate(rng, 300, top=CHANCE), CHANCE, resamples=1).acquired for _ in range(200)]
    assert np.mean(passed) <= 0.08


def test_an_acquired_subset_with_too_few_checkpoints_or_learned_before_the_first_has_no_number():
    rng = np.random.default_rng(3)
    outcomes = simulate(rng, 300)
    few = acquisition(X[-3:], outcomes[-3:], CHANCE)
    assert few.acquired and few.words is None and "3 checkpoints" in few.note
    early = acquisition(X, simulate(rng, 300, midpoint=5.0), CHANCE, resamples=10)
    assert early.acquired and early.words is None and early.note == "halfway reached at or before the first checkpoint"


@pytest.mark.slow
def test_the_interval_covers_the_true_point_in_most_synthetic_data_sets():
    """100 data sets of 200 items from one true curve: the 95% interval should cover its point ~95% of the time."""
    rng, truth = np.random.default_rng(4), 10 ** true_point(0.85, 3.0, 7.0)
    covered = []
    for seed in range(100):
        found = acquisition(X, simulate(rng, 200, top=0.85, steepness=3.0), CHANCE, resamples=100, seed=seed)
        covered.append(found.low <= truth <= found.high)
    assert np.mean(covered) >= 0.85, np.mean(covered)


def shifted(rng, items: int, flips_up: int, flips_down: int) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes before (60% right) and after: ``flips_up`` wrong items turned right, ``flips_down`` right turned
    wrong, so the true change is (up - down) / items."""
    before = (rng.random(items) < 0.6).astype(int)
    after = before.copy()
    after[rng.choice(np.flatnonzero(before == 0), flips_up, replace=False)] = 1
    after[rng.choice(np.flatnonzero(before == 1), flips_down, replace=False)] = 0
    return before, after


@pytest.mark.parametrize("up, down, verdict", [(60, 10, "helped"), (5, 55, "eroded"), (20, 20, "unchanged")])
def test_stage_effect_names_a_known_shift(up, down, verdict):
    before, after = shifted(np.random.default_rng(5), 400, up, down)
    effect = stage_effect(before, after)
    assert effect.delta == pytest.approx(100 * (up - down) / 400)
    assert effect.low <= effect.delta <= effect.high and effect.verdict == verdict
    assert stage_effect(before, after) == effect  # seeded


def test_tables_sort_by_acquisition_point_and_compare_the_ends_of_stages(tmp_path):
    rng = np.random.default_rng(6)
    stages, names = [0] * 15 + [1] * 2 + [2] * 2, ["pretrain", "switchboard", "simple_wiki"]

    def curve(outcomes):
        return Curve(WORDS, stages, names, outcomes, CHANCE)

    late, early = simulate(rng, 300, midpoint=7.5), simulate(rng, 300, midpoint=6.5)
    flat = simulate(rng, 300, top=CHANCE)
    early[15:17] = early[14]  # switchboard changes nothing, then simple_wiki turns 90 right items wrong
    early[17:] = early[16]
    early[17:, np.flatnonzero(early[16])[:90]] = 0
    curves = {("seq", "blimp", "late"): curve(late), ("seq", "blimp", "flat"): curve(flat),
              ("seq", "blimp", "early"): curve(early)}
    rows = acquisition_rows(curves, resamples=10)
    assert [r["subset"] for r in rows] == ["early", "late", "flat"]
    assert rows[0]["words"] < rows[1]["words"] and rows[2]["words"] is None and not rows[2]["acquired"]
    effects = stage_rows(curves, resamples=200)
    assert [(r["stage"], r["subset"]) for r in effects] == [(s, n) for s in (1, 2) for n in ("early", "flat", "late")]
    first = effects[0]  # early across switchboard: from the last pre-training checkpoint to the stage's last one
    assert (first["stage_name"], first["words_before"], first["words_after"]) == ("switchboard", 60e6, 80e6)
    assert first["delta"] == 0 and first["verdict"] == "unchanged"
    wiki = effects[3]
    assert (wiki["subset"], wiki["words_before"], wiki["words_after"]) == ("early", 80e6, 100e6)
    assert wiki["delta"] == pytest.approx(-90 / 3) and wiki["verdict"] == "eroded"
    assert wiki["after"] == pytest.approx(wiki["before"] - 0.3)  # accuracies as fractions, changes in points
    dots, stages = acquisition_dots(rows, tmp_path / "a.png"), stage_effects(effects, tmp_path / "s.png")
    assert dots.is_file() and stages.is_file()  # the figures draw the tables as they are
    with pytest.raises(ValueError, match="seq blimp early: 19 checkpoints' words seen .* for 18 rows"):
        acquisition_rows({("seq", "blimp", "early"): curve(early[1:])})


def test_figures_draw_every_run_within_1600_pixels(tmp_path):
    rng = np.random.default_rng(7)
    rows, effects = [], []
    for run in ("sequential", "merged"):
        for i in range(70):  # as many subsets as BLiMP's paradigms and the supplement
            words = 10 ** rng.uniform(6.2, 7.8)
            rows.append({"run": run, "task": "blimp", "subset": f"paradigm_{i}", "words": words, "low": words / 2,
                         "high": words * 2} if i % 5 else
                        {"run": run, "task": "blimp", "subset": f"paradigm_{i}", "words": None, "low": None,
                         "high": None})
            for stage, name in ((1, "switchboard"), (2, "simple_wiki")):
                delta = rng.normal(0, 3)
                effects.append({"run": run, "task": "blimp", "subset": f"paradigm_{i}", "stage": stage,
                                "stage_name": name, "delta": delta, "low": delta - 2, "high": delta + 2,
                                "verdict": "helped" if delta > 2 else "eroded" if delta < -2 else "unchanged"})
    for path in (acquisition_dots(rows, tmp_path / "acquisition.png"), stage_effects(effects, tmp_path / "stages.png")):
        height, width, _ = matplotlib.image.imread(path).shape
        assert 600 <= width <= 1600 and height >= 56 * 0.17 * 100  # 56 subsets placed
    assert acquisition_dots([r | {"words": None} for r in rows], tmp_path / "none.png") is None
    assert stage_effects([], tmp_path / "none.png") is None
