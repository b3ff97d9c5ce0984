"""The report's figures (classit/study/plots.py): a PNG for what there is to draw, nothing for what there is not."""

import matplotlib.image

from classit.study.plots import task_bars, training_curves, zero_shot_curves, zscore_plot


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
    assert size(task_bars(table, ["baseline", "merged"], tmp_path / "bars.png")) == (1280, 560)  # 4 columns, 2 rows
    curves = {"baseline": [run(0.0)], "merged": [run(0.5), run(0.7)]}
    assert size(training_curves(curves, tmp_path / "training.png")) == (1440, 320)  # loss, val, lr, words: 4 panels
    assert size(zero_shot_curves(curves, tmp_path / "zero_shot.png")) == (360, 320)  # blimp only, not its groups


def test_nothing_to_draw_gives_no_figure(tmp_path):
    assert zscore_plot({"baseline": {"blimp": 0.0}, "merged": {}}, tmp_path / "z.png") is None  # one condition
    assert task_bars({}, ["baseline"], tmp_path / "bars.png") is None
    no_zero_shot = {"baseline": [{"train/loss": [(0, 5.0)]}]}
    assert zero_shot_curves(no_zero_shot, tmp_path / "zero_shot.png") is None
    assert not list(tmp_path.iterdir())
