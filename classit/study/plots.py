"""The report's figures (matplotlib, Agg backend). Each function writes one PNG and returns its path, or None
when it has no data to draw."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

CURVES = {"train/loss": "training loss", "val/loss": "validation loss", "lr-AdamW/pg1": "learning rate",
          "train/words_seen": "words seen"}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def zscore_plot(z: dict[str, dict[str, float]], path: Path) -> Path | None:
    """Each condition's z-scores over tasks: a box and the tasks as points."""
    units = [u for u, tasks in z.items() if tasks]
    if len(units) < 2:
        return None
    fig, ax = plt.subplots(figsize=(1.6 * len(units) + 2, 4))
    ax.boxplot([list(z[u].values()) for u in units], showfliers=False)
    ax.set_xticks(range(1, len(units) + 1), units)
    rng = np.random.default_rng(0)
    for i, u in enumerate(units, 1):
        values = list(z[u].values())
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=14, alpha=0.7, zorder=3)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("z-score over conditions")
    ax.set_title("z-scores per task")
    return _save(fig, path)


def task_scores(table: dict[str, dict[str, tuple[float, float | None]]], units: list[str], chance: dict[str, float],
                path: Path) -> Path | None:
    """Per task, each condition's mean (a dot) with its std over seeds as an error bar (none for one seed: std
    None), on an axis zoomed to the scores and the task's chance level (``chance``: dashed, where known), so that
    51 and 53 look different."""
    if not table:
        return None
    cols = min(4, len(table))
    rows = math.ceil(len(table) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for ax, (task, cells) in zip(axes.flat, table.items()):
        present = [u for u in units if u in cells]
        for x, u in enumerate(present):
            mean, std = cells[u]
            ax.errorbar(x, mean, yerr=std, fmt="o", color=f"C{units.index(u)}", capsize=3)
        if task in chance:
            ax.axhline(chance[task], color="grey", ls="--", lw=0.8, label="chance")
            ax.legend(fontsize=7, loc="best")
        ax.margins(x=0.3, y=0.15)
        ax.set_xticks(range(len(present)), present, rotation=30, ha="right", fontsize=8)
        ax.set_title(task, fontsize=9)
    for ax in list(axes.flat)[len(table):]:
        ax.axis("off")
    return _save(fig, path)


def _curve_plot(curves: dict[str, list[dict]], panels, path: Path, title: str) -> Path | None:
    """``curves``: per condition, each run's scalars (tag → [(step, value)]); ``panels(tags)``: [(panel title,
    [tags])] of one run; one line per run and tag, a colour per condition. The first condition (the baseline)
    is drawn on top with dots: its curve is often a part of another's (the pre-training stage of a sequential
    run), or one point."""
    runs = [(unit, scalars) for unit, per_run in curves.items() for scalars in per_run]
    titles = list(dict.fromkeys(t for _, scalars in runs for t, tags in panels(scalars) if tags))
    if not titles:
        return None
    units = list(curves)
    fig, axes = plt.subplots(1, len(titles), figsize=(3.6 * len(titles), 3.2), squeeze=False)
    labelled = set()
    for unit, scalars in runs:
        for panel, tags in panels(scalars):
            if not tags:
                continue
            ax = axes[0, titles.index(panel)]
            for tag in tags:
                steps, values = zip(*scalars[tag])
                label = unit if (unit, panel) not in labelled else None
                labelled.add((unit, panel))
                first = unit == units[0]
                ax.plot(steps, values, color=f"C{units.index(unit)}", lw=1, label=label,
                        ls="-" if tag in ("val/loss", "train/loss") or len(tags) == 1 else ":",
                        marker="o" if first else None, markersize=4, zorder=3 if first else 2)
            ax.set_title(panel, fontsize=9)
            ax.set_xlabel("step")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def training_curves(curves: dict[str, list[dict]], path: Path) -> Path | None:
    """Training and validation loss (every ``val/loss/SOURCE`` dotted), learning rate, words seen."""
    def panels(scalars):
        return [(name, [t for t in scalars if t == tag or (tag == "val/loss" and t.startswith("val/loss/"))])
                for tag, name in CURVES.items()]
    return _curve_plot(curves, panels, path, "training curves")


def zero_shot_curves(curves: dict[str, list[dict]], path: Path) -> Path | None:
    """``zero_shot/TASK`` (macro scores logged during training) over steps, a panel per task."""
    def panels(scalars):
        return [(t.split("/")[1], [t]) for t in sorted(scalars) if t.startswith("zero_shot/") and t.count("/") == 1]
    return _curve_plot(curves, panels, path, "zero-shot scores during training")
