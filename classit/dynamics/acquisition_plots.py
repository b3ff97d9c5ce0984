"""Figures of acquisition points and stage effects (matplotlib, Agg backend), from the rows of
:func:`classit.dynamics.acquisition.acquisition_rows` and :func:`~classit.dynamics.acquisition.stage_rows`. Each
function writes one PNG at most 1600 px wide and returns its path, or None when it has nothing to draw."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

WIDTH = 16.0  # inches at 100 dpi: the widest figure
ROW = 0.17  # inches a subset takes on the y axis
VERDICTS = {"helped": "tab:green", "eroded": "tab:red", "unchanged": "0.6"}


def _label(row: dict) -> str:
    return f"{row['task']}: {row['subset']}"


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def acquisition_dots(rows: list[dict], path: Path) -> Path | None:
    """Acquisition points with their 95% intervals: a subset a line (earliest median point over runs on top), words
    seen on a log axis, one colour per run; subsets with no point in any run are left out (counted in the title)."""
    placed = [r for r in rows if r["words"] is not None]
    if not placed:
        return None
    runs = list(dict.fromkeys(r["run"] for r in rows))
    points: dict[str, list[float]] = {}
    for r in placed:
        points.setdefault(_label(r), []).append(r["words"])
    subsets = sorted(points, key=lambda s: (np.median(points[s]), s))
    y = {s: len(subsets) - 1 - i for i, s in enumerate(subsets)}
    fig, ax = plt.subplots(figsize=(10, 1.2 + ROW * len(subsets)))
    for k, run in enumerate(runs):
        mine = [r for r in placed if r["run"] == run]
        shift = (k - (len(runs) - 1) / 2) * min(0.8 / len(runs), 0.25)
        words = np.array([r["words"] for r in mine])
        errors = np.abs(np.array([[r["low"], r["high"]] for r in mine]).T - words)
        ax.errorbar(words, [y[_label(r)] + shift for r in mine], xerr=errors, fmt="o", ms=3, lw=0.8, capsize=0,
                    color=f"C{k}", label=run)
    ax.set_xscale("log")
    ax.set_yticks(range(len(subsets)), subsets[::-1], fontsize=7)
    ax.set_ylim(-0.7, len(subsets) - 0.3)
    ax.grid(axis="x", lw=0.4, alpha=0.5)
    ax.set_xlabel("words seen (log scale)")
    left = len({_label(r) for r in rows}) - len(subsets)
    ax.set_title("acquisition points (halfway from chance to the final level; 95% bootstrap intervals over items)"
                 + (f"\n{left} subset(s) with no point in any run left out (not acquired, or see the table's note)"
                    if left else ""), fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    return _save(fig, path)


def stage_effects(rows: list[dict], path: Path) -> Path | None:
    """A panel per run and instruction stage, in one row: each subset's change in accuracy (points) with its 95%
    interval, helped green and eroded red (their counts in the panel's title), the subsets in one order in every
    panel (largest mean change on top)."""
    if not rows:
        return None
    panels = list(dict.fromkeys((r["run"], r["stage"], r["stage_name"]) for r in rows))
    deltas: dict[str, list[float]] = {}
    for r in rows:
        deltas.setdefault(_label(r), []).append(r["delta"])
    subsets = sorted(deltas, key=lambda s: (np.mean(deltas[s]), s))
    y = {s: i for i, s in enumerate(subsets)}
    fig, axes = plt.subplots(1, len(panels), figsize=(min(WIDTH, 3 + 2.6 * len(panels)), 1.4 + ROW * len(subsets)),
                             squeeze=False, sharey=True)
    for ax, (run, stage, name) in zip(axes.flat, panels):
        mine = [r for r in rows if (r["run"], r["stage"]) == (run, stage)]
        for verdict, colour in VERDICTS.items():
            chosen = [r for r in mine if r["verdict"] == verdict]
            if chosen:
                delta = np.array([r["delta"] for r in chosen])
                errors = np.abs(np.array([[r["low"], r["high"]] for r in chosen]).T - delta)
                ax.errorbar(delta, [y[_label(r)] for r in chosen], xerr=errors, fmt="o", ms=3, lw=0.8,
                            color=colour, label=verdict)
        ax.axvline(0, color="k", lw=0.6)
        counts = {v: sum(r["verdict"] == v for r in mine) for v in ("helped", "eroded")}
        ax.set_title(f"{run}: stage {stage} {name}\nhelped {counts['helped']}, eroded {counts['eroded']}", fontsize=9)
        ax.set_xlabel("change in accuracy (points)", fontsize=8)
        ax.grid(axis="x", lw=0.4, alpha=0.5)
    axes[0, 0].set_yticks(range(len(subsets)), subsets, fontsize=7)
    axes[0, 0].set_ylim(-0.7, len(subsets) - 0.3)
    handles = {label: h for ax in axes.flat for h, label in zip(*ax.get_legend_handles_labels())}
    axes[0, 0].legend(handles.values(), handles.keys(), fontsize=7, loc="lower right")
    return _save(fig, path)
