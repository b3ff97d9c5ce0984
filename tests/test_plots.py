"""The report's figures (classit/study/plots.py): a PNG for what there is to draw, nothing for what there is not."""

import matplotlib.image

import numpy as np

from classit.study.plots import task_scores, training_curves, zero_shot_curves, zscore_plot


def run(shift: float) -> dict[str, list[tuple[int, float]]]:
    """One run's TensorBoard scalars (tag → [(step, value)])."""
    return {"train/loss": [(s, 5.0 - s + shift) for s in range(4)], "val/loss": [(3, 3.0 + shift)],
            "val/loss/pretrain": [(3, 3.2 + shift)], "lr-AdamW/pg1": [(s, 1e-3) for s in range(4)],
            "train/words_seen": [(s, 1000.0 * s) for s in range(4)],
            "zero_shot/blimp": [(2, 55.0 + shift), (4, 60.0 + shift)], "zero_shot/blimp/syntax": [(4, 58.0)]}


def size(png) -> tuple[int, int]:
    """A PNG's (width, height) in pixels, read back."""
    height, width = matplotlib.image.imread(png).shape[:2]
    return width, height


def test_each_figure_is_a_png_sized_by_what_it_shows(tmp_path):
    z = {"baseline": {"blimp": -1.0, "ewok": 0.5}, "merged": {"blimp": 1.0, "ewok": -0.5}}
    assert size(zscore_plot(z, tmp_path / "z.png")) == (520, 400)  # 1.6 in a condition + 2, 4 in high, 100 dpi
    table = {task: {"baseline": (50.0, 1.0), "merged": (52.0, 0.5)} for task in ("blimp", "ewok", "wug", "aoa", "rte")}
    assert size(task_scores(table, ["baseline", "merged"], {}, tmp_path / "bars.png")) == (1280, 560)  # 4 columns, 2 rows
    curves = {"baseline": [run(0.0)], "merged": [run(0.5), run(0.7)]}
    assert size(training_curves(curves, tmp_path / "training.png")) == (1440, 320)  # loss, val, lr, words: 4 panels
    assert size(zero_shot_curves(curves, tmp_path / "zero_shot.png")) == (360, 320)  # blimp only, not its groups


def test_nothing_to_draw_gives_no_figure(tmp_path):
    assert zscore_plot({"baseline": {"blimp": 0.0}, "merged": {}}, tmp_path / "z.png") is None  # one condition
    assert task_scores({}, ["baseline"], {}, tmp_path / "bars.png") is None
    no_zero_shot = {"baseline": [{"train/loss": [(0, 5.0)]}]}
    assert zero_shot_curves(no_zero_shot, tmp_path / "zero_shot.png") is None
    assert not list(tmp_path.iterdir())


def rows_of(png, colour: str) -> np.ndarray:
    """Row indices of the pixels of one matplotlib colour (``C0``, ``C1``...) in a PNG."""
    from matplotlib.colors import to_rgb

    image = matplotlib.image.imread(png)[..., :3]
    return np.nonzero(np.abs(image - to_rgb(colour)).max(-1) < 0.02)[0]


def test_close_scores_are_drawn_apart_above_the_chance_line(tmp_path):
    """51 and 53 on a 50% task: the axis is zoomed to the scores and chance, so the two dots stand far apart (on
    bars from 0 they were 7 pixels apart), and the chance line is drawn below them."""
    table = {"ewok": {"baseline": (51.0, None), "merged": (53.0, None)}}
    png = task_scores(table, ["baseline", "merged"], {"ewok": 50.0}, tmp_path / "tasks.png")
    baseline, merged = rows_of(png, "C0"), rows_of(png, "C1")
    height = size(png)[1]
    assert baseline.mean() - merged.mean() > height / 4  # merged higher up: a smaller row
    chance = np.bincount(rows_of(png, "grey")).argmax()  # the row most grey: the dashed line across the axes
    assert np.bincount(rows_of(png, "grey"))[chance] > 80 and chance > baseline.max()  # below both dots


def test_the_baseline_curve_is_drawn_on_top_of_the_others(tmp_path):
    """The baseline is the pre-training stage of the sequential run: its zero-shot curve, two points of the
    sequential one, is drawn over that line (before, the sequential line hid it), and a one-point curve shows a dot."""
    sequential = {"zero_shot/blimp": [(2, 55.0), (4, 60.0), (6, 58.0)]}
    curves = {"baseline": [{"zero_shot/blimp": [(2, 55.0), (4, 60.0)]}], "sequential": [sequential]}
    png = zero_shot_curves(curves, tmp_path / "two.png")
    assert rows_of(png, "C0").size > 2 * rows_of(png, "C1").size  # the shared segment shows the baseline's colour
    one = zero_shot_curves({"baseline": [{"zero_shot/blimp": [(2, 55.0)]}], "sequential": [sequential]},
                           tmp_path / "one.png")
    assert rows_of(one, "C0").size > 40  # its dot, besides the legend's
