"""Per-phenomenon learning curves: the fast sets scored at each checkpoint of a run with ``classit evaluate``
(resumable: a checkpoint scored is not scored again), one row per checkpoint, task and subset, each item's outcome,
the chance levels and the figures."""

import math
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

from classit import layout
from classit.dynamics.checkpoints import FollowedRun
from classit.eval.submission import data_folder
from classit.eval.summary import official_and_corrected, read_summary
from classit.eval.tasks import FAST, TASKS
from classit.files import read_jsonl

COLUMNS = ("run", "condition", "seed", "checkpoint", "words", "step", "stage", "stage_name", "task", "subset",
           "score", "items", "ties", "chance")


def fast_sets(data_dir: Path, tasks: list[str] | None = None) -> dict[str, Path]:
    """Each task's fast data folder in a data folder (``babylm-eval-fast``, else ``babylm-eval`` for WUG and
    reading, as ``classit submission --run`` reads them): the ``tasks`` named (each must have data), else every
    fast task whose data is there."""
    fast, full = layout.eval_dir(data_dir, fast=True), layout.eval_dir(data_dir)
    unknown = sorted(set(tasks or ()) - set(FAST))
    if unknown:
        raise ValueError(f"--tasks: no fast set for {', '.join(unknown)}; choose from {', '.join(FAST)}")
    sets = {}
    for name in tasks or FAST:
        try:
            sets[name] = data_folder(FAST[name].fast, fast, full)
        except FileNotFoundError:
            if tasks:
                raise
    if not sets:
        raise FileNotFoundError(f"{data_dir} (--data_dir): no fast evaluation data in {fast.name} or {full.name}")
    return sets


def linked_sets(out: Path, sets: dict[str, Path]) -> Path:
    """``OUT/fast_sets``: a link to each task's data folder, so one ``classit evaluate`` call scores them all; a
    link there to other data (an earlier call's) stops in one line, its scores being of that data."""
    folder = layout.dynamics_sets(out)
    folder.mkdir(parents=True, exist_ok=True)
    for path in sets.values():
        link = folder / path.name
        if link.is_symlink() and link.resolve() != path.resolve():
            raise ValueError(f"{out} (--out): holds scores of {link.resolve()}, not of {path}; give another --out")
        if not link.is_symlink():
            link.symlink_to(path.resolve(), target_is_directory=True)
    return folder


def unscored(scores: Path, tasks: list[str]) -> list[str]:
    """The tasks a checkpoint's scores folder does not hold yet (a summary entry and its predictions)."""
    summary = layout.summary_file(scores)
    done = read_summary(summary).tasks if summary.is_file() else {}
    return [task for task in tasks if task not in done or "skipped" in done[task]
            or not layout.predictions_file(scores, task).is_file()]


def score_checkpoints(out: Path, runs: list[FollowedRun], sets: dict[str, Path], batch_size: int = 64,
                      device: str = "auto") -> list[str]:
    """Score every checkpoint of every run on the fast sets into ``OUT/scores/<run>/<checkpoint>`` with
    ``classit evaluate``, only the tasks not scored there yet (a checkpoint two runs share, scored once and copied);
    returns the ``run/checkpoint`` names scored. Ctrl-C
    keeps the checkpoints scored and says so: the next call goes on from there."""
    from classit.eval.evaluate import evaluate

    data, scored, first = linked_sets(out, sets), [], {}  # first: each checkpoint's scores under its first run
    for run in runs:
        for checkpoint in run.checkpoints:
            folder = layout.dynamics_scores(out, run.label, checkpoint.name)
            earlier = first.setdefault(checkpoint.folder.resolve(), folder)
            missing = unscored(folder, list(sets))
            if not missing:
                continue
            if earlier != folder and not unscored(earlier, list(sets)):  # a checkpoint runs share (a study's
                shutil.copytree(earlier, folder, dirs_exist_ok=True)  # pre-training): scored once
                continue
            print(f"[dynamics] {run.label} {checkpoint.name} ({checkpoint.words:,.0f} words): {', '.join(missing)}")
            try:
                evaluate(model=str(checkpoint.folder), data_dir=str(data), tasks=",".join(missing), out=str(folder),
                         batch_size=batch_size, device=device)
            except KeyboardInterrupt:
                print(f"[dynamics] interrupted while scoring {run.label} {checkpoint.name}: the checkpoints scored "
                      f"before it are kept in {out / 'scores'}; the next call goes on from {checkpoint.name}")
                raise
            scored.append(f"{run.label}/{checkpoint.name}")
    return scored


def item_outcomes(scores_dir: Path, task: str) -> dict[str, np.ndarray]:
    """Per subset, each item's outcome (1 right, 0 wrong; a tie counts right, as the leaderboard counts it) in the
    data's item order, the same at every checkpoint, from a checkpoint's ``predictions/TASK.jsonl``."""
    if TASKS[task].kind != "choice":
        raise ValueError(f"{task}: scored by a correlation over all items, not item by item")
    outcomes = defaultdict(list)
    for record in read_jsonl(layout.predictions_file(scores_dir, task)):
        outcomes[record["uid"]].append(int(record["correct"]))
    return {uid: np.array(values, dtype=np.int8) for uid, values in outcomes.items()}


def _subsets(scores_dir: Path, task: str, numbers: dict) -> list[tuple[str, float, int, int | None, float]]:
    """``(subset, score, items, ties, chance)`` of one task at one checkpoint."""
    kind = TASKS[task].kind
    if kind == "reading":
        return [(name, numbers[name], numbers["items"], None, 0.0) for name in ("eye_tracking", "self_paced")]
    if kind == "rho":
        return [(uid, rho, numbers["items"], None, 0.0) for uid, rho in numbers["by_uid"].items()]
    items, ties = defaultdict(int), defaultdict(int)
    for record in read_jsonl(layout.predictions_file(scores_dir, task)):
        items[record["uid"]] += 1
        ties[record["uid"]] += bool(record["tie"])
    return [(uid, score, items[uid], ties[uid], TASKS[task].chance)
            for uid, score in numbers["by_uid"].items()]


def curve_rows(out: Path, runs: list[FollowedRun], tasks: list[str]) -> list[dict]:
    """The rows of ``curves.csv`` (:data:`COLUMNS`): one per run, checkpoint, task and subset, from the scores in
    ``out``: the official accuracy per subset (%, a tie counts right), its items and tied items, its chance level;
    WUG's Spearman rho and reading's gains (×100) with no ties."""
    rows = []
    for run in runs:
        for checkpoint in run.checkpoints:
            scores = layout.dynamics_scores(out, run.label, checkpoint.name)
            summary = read_summary(layout.summary_file(scores)).tasks
            for task in tasks:
                numbers = official_and_corrected(summary[task])[0]
                for subset, score, items, ties, level in _subsets(scores, task, numbers):
                    rows.append({"run": run.label, "condition": run.condition, "seed": run.seed,
                                 "checkpoint": checkpoint.name, "words": checkpoint.words, "step": checkpoint.step,
                                 "stage": checkpoint.stage, "stage_name": checkpoint.stage_name, "task": task,
                                 "subset": subset, "score": score, "items": items, "ties": ties, "chance": level})
    return rows


def _stage_bands(rows: list[dict]) -> list[tuple[float, float, str]]:
    """``(from, to, name)`` in log10 words of each curriculum stage of the run with the most stages (the first of
    those): from the last checkpoint of the stage before to its own last checkpoint."""
    runs = list(dict.fromkeys(r["run"] for r in rows))
    longest = max(runs, key=lambda run: len({r["stage"] for r in rows if r["run"] == run}))
    mine = [r for r in rows if r["run"] == longest]
    ends = {}
    for row in mine:
        if row["stage"] is not None:
            key = (row["stage"], row["stage_name"] or f"stage {row['stage']}")
            ends[key] = max(ends.get(key, 0.0), math.log10(row["words"]))
    bands, start = [], min(math.log10(r["words"]) for r in mine)
    for (_, name), end in sorted(ends.items()):
        bands.append((start, end, name))
        start = end
    return bands


def plot_curves(rows: list[dict], out_dir: Path) -> list[Path]:
    """Per task, ``curves_<task>.png``: a grid of its subsets' curves against log10 words seen, each run in a colour
    of its own (the first on top, its markers largest), the chance level dashed, the curriculum stages of the run
    with the most stages shaded (named in the legend); at most 1600 px wide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    from matplotlib.patches import Patch

    runs = list(dict.fromkeys(r["run"] for r in rows))
    colours = {run: plt.get_cmap("tab10")(i % 10) for i, run in enumerate(runs)}
    shades = plt.get_cmap("Set2")  # the curriculum stages
    bands, paths = _stage_bands(rows), []
    for task in dict.fromkeys(r["task"] for r in rows):
        subsets = list(dict.fromkeys(r["subset"] for r in rows if r["task"] == task))
        cols = min(len(subsets), 10 if len(subsets) > 20 else 4)
        lines = math.ceil(len(subsets) / cols)
        height = 1.6 * lines + 1.2  # inches: the panels, and the title and legend above them
        fig, axes = plt.subplots(lines, cols, figsize=(min(16, max(7, 3.2 * cols + 0.5)), height), dpi=100,
                                 sharex=True, squeeze=False)
        small = len(subsets) > 20
        for ax, subset in zip(axes.flat, subsets):
            points = [r for r in rows if r["task"] == task and r["subset"] == subset]
            for k, (start, end, _) in enumerate(bands):
                ax.axvspan(start, end, color=shades(k), alpha=0.35, lw=0)
            ax.axhline(points[0]["chance"], color="0.4", ls="--", lw=0.8)
            for k, run in enumerate(runs):  # the first run (a study's baseline) on top: runs share checkpoints
                mine = sorted((r for r in points if r["run"] == run), key=lambda r: r["words"])
                ax.plot([math.log10(r["words"]) for r in mine], [r["score"] for r in mine], marker="o",
                        ms=(2 if small else 3) + len(runs) - 1 - k, lw=1, color=colours[run], zorder=3 + len(runs) - k)
            ax.set_title(subset if len(subset) <= 34 else subset[:32] + "…", fontsize=6 if small else 8, pad=3)
            ax.tick_params(labelsize=5 if small else 7)
        for ax in axes.flat[len(subsets):]:
            ax.set_axis_off()
        handles = [plt.Line2D([], [], color=colours[run], marker="o", label=run) for run in runs]
        handles.append(plt.Line2D([], [], color="0.4", ls="--", label="chance"))
        handles += [Patch(color=shades(k), alpha=0.35, label=f"stage {name}") for k, (_, _, name) in enumerate(bands)]
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, 1 - 0.3 / height),
                   ncol=min(len(handles), 8 if cols > 4 else 4), fontsize=8, frameon=False)
        unit = "Spearman rho ×100" if TASKS[task].kind == "rho" else (
            "relative R² gain (%)" if TASKS[task].kind == "reading" else "accuracy (%)")
        fig.suptitle(f"{task}: {unit} against log10 words seen", x=0.01, y=1 - 0.05 / height, ha="left",
                     va="top", fontsize=10)
        fig.supxlabel("log10 words seen", fontsize=8)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.85 / height))
        path = layout.curves_figure(out_dir, task)
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths
