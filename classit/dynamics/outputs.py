"""The files ``classit dynamics`` derives from the checkpoints' scores and exports, each made again only when what it
is made from changed (a CSV holding the same table already, or :mod:`classit.dynamics.stamps`): the curves, the
acquisition points and stage effects, the representation change and what each checkpoint had seen. Each function
returns the files it wrote (none: all kept)."""

import csv
from pathlib import Path

import numpy as np

from classit import layout
from classit.dynamics.acquisition import Curve, acquisition_rows, stage_rows
from classit.dynamics.acquisition_plots import acquisition_dots, stage_effects
from classit.dynamics.checkpoints import FollowedRun
from classit.dynamics.curves import COLUMNS, curve_rows, item_outcomes, plot_curves
from classit.dynamics.representation import plot_representation, representation_rows
from classit.dynamics.seen import write_seen
from classit.dynamics.seen_plot import plot_seen
from classit.dynamics.stamps import export_files, files_stamp, kept, stamp
from classit.eval.tasks import TASKS
from classit.files import read_json, write_csv

ACQUISITION_COLUMNS = ("run", "task", "subset", "acquired", "words", "low", "high", "final", "chance", "p_value",
                       "checkpoints", "items", "note", "resamples")
STAGE_COLUMNS = ("run", "task", "subset", "stage", "stage_name", "words_before", "words_after", "before", "after",
                 "delta", "low", "high", "verdict", "resamples")
REPRESENTATION_COLUMNS = ("run", "checkpoint", "words", "step", "stage", "layer", "weight", "metric", "value")
SEEN_COLUMNS = ("run", "checkpoint", "step", "words", "tokens", "stage", "stage_name", "source", "source_words",
                "source_tokens", "sequences", "epoch", "epochs", "epochs_done", "unit", "items", "times_seen")


def written(path: Path, table: list[list]) -> bool:
    """Whether the CSV file at ``path`` holds ``table`` already (as ``csv.writer`` writes it)."""
    if not path.is_file():
        return False
    with open(path, newline="") as f:
        return list(csv.reader(f)) == [["" if v is None else str(v) for v in row] for row in table]


def _table(columns: tuple[str, ...], rows: list[dict], **more) -> list[list]:
    return [list(columns), *([{**row, **more}[c] for c in columns] for row in rows)]


def write_curves(out: Path, runs: list[FollowedRun], tasks: list[str]) -> tuple[list[dict], list[Path]]:
    """``curves.csv`` and ``figures/curves_<task>.png`` from the scores in ``out``: the rows, and the files written."""
    rows = curve_rows(out, runs, tasks)
    figures = layout.dynamics_figures(out)
    if written(out / layout.CURVES, _table(COLUMNS, rows)) and all(
            layout.curves_figure(figures, t).is_file() for t in tasks):
        return rows, []
    write_csv(_table(COLUMNS, rows), out / layout.CURVES)
    return rows, [out / layout.CURVES, *plot_curves(rows, figures)]


def choice_curves(out: Path, runs: list[FollowedRun], rows: list[dict]) -> dict[tuple[str, str, str], Curve]:
    """Each run's choice-task subsets (not WUG or reading: no items) as :class:`Curve` over its checkpoints, from
    each checkpoint's per-item outcomes, its words seen and stage, and the chance level of ``rows`` (curves.csv's)."""
    chances = {(r["run"], r["task"], r["subset"]): r["chance"] / 100 for r in rows}
    tasks = [t for t in dict.fromkeys(r["task"] for r in rows) if TASKS[t].kind == "choice"]
    curves = {}
    for run in runs:
        stages = [c.stage or 0 for c in run.checkpoints]
        names = {c.stage or 0: c.stage_name or f"stage {c.stage or 0}" for c in run.checkpoints}
        stage_names = [names.get(i, f"stage {i}") for i in range(max(stages) + 1)]
        words = np.array([c.words for c in run.checkpoints])
        for task in tasks:
            outcomes = [item_outcomes(layout.dynamics_scores(out, run.label, c.name), task) for c in run.checkpoints]
            for subset in outcomes[0]:
                curves[(run.label, task, subset)] = Curve(words, stages, stage_names,
                                                          np.stack([o[subset] for o in outcomes]),
                                                          chances[(run.label, task, subset)])
    return curves


def write_acquisition(out: Path, runs: list[FollowedRun], rows: list[dict], resamples: int) -> list[Path]:
    """``acquisition.csv`` and ``stage_effects.csv`` (with ``resamples`` bootstrap replicates over items) and their
    figures, unless curves.csv, the predictions and ``resamples`` are those they were made from."""
    figures = layout.dynamics_figures(out)
    tables = [out / layout.ACQUISITION, out / layout.STAGE_EFFECTS]
    inputs = [out / layout.CURVES] + [layout.predictions_file(layout.dynamics_scores(out, run.label, c.name), task)
                                      for run in runs for c in run.checkpoints
                                      for task in dict.fromkeys(r["task"] for r in rows)
                                      if TASKS[task].kind == "choice"]
    value = files_stamp(inputs, resamples=resamples)
    found = kept(out, "acquisition", value, tables)
    if found and all(Path(p).is_file() for p in found["result"]):
        return []
    curves = choice_curves(out, runs, rows)
    acquired, effects = acquisition_rows(curves, resamples), stage_rows(curves, resamples)
    write_csv(_table(ACQUISITION_COLUMNS, acquired, resamples=resamples), tables[0])
    write_csv(_table(STAGE_COLUMNS, effects, resamples=resamples), tables[1])
    figures.mkdir(parents=True, exist_ok=True)
    drawn = [p for p in (acquisition_dots(acquired, figures / layout.ACQUISITION_FIGURE),
                         stage_effects(effects, figures / layout.STAGE_EFFECTS_FIGURE)) if p is not None]
    stamp(out, "acquisition", value, [str(p) for p in drawn])
    return tables + drawn


def write_representation(out: Path, runs: list[FollowedRun], sentences: list[str], batch_size: int,
                         device: str) -> list[Path]:
    """``repr.csv`` and ``figures/repr_<run>.png``: each run's representation rows computed again only when its
    checkpoints' files or the probe sentences changed (kept in ``OUT/stamps/repr_<run>.json``)."""
    figures, table, wrote = layout.dynamics_figures(out), [list(REPRESENTATION_COLUMNS)], []
    for run in runs:
        value = files_stamp([f for c in run.checkpoints for f in export_files(c.folder)], probe=sentences,
                            checkpoints=[c.name for c in run.checkpoints])
        figure = layout.representation_figure(figures, run.label)
        found = kept(out, f"repr_{run.label}", value, [figure])
        if found:
            rows = found["result"]
        else:
            print(f"[dynamics] {run.label}: representation change over {len(run.checkpoints)} checkpoints on "
                  f"{len(sentences)} probe sentences")
            rows = representation_rows([(c.name, c.folder) for c in run.checkpoints], sentences, batch_size, device)
            figures.mkdir(parents=True, exist_ok=True)
            plot_representation(rows, figure, {c.name: c.stage_name or str(c.stage) for c in run.checkpoints})
            stamp(out, f"repr_{run.label}", value, rows)
            wrote.append(figure)
        at = {c.name: c for c in run.checkpoints}
        table += [[run.label, r["checkpoint"], at[r["checkpoint"]].words, at[r["checkpoint"]].step,
                   at[r["checkpoint"]].stage, r["layer"], r["weight"], r["metric"], r["value"]] for r in rows]
    if not written(out / layout.REPRESENTATION, table):
        write_csv(table, out / layout.REPRESENTATION)
        wrote.insert(0, out / layout.REPRESENTATION)
    return wrote


def count_seen(runs: list[FollowedRun]) -> None:
    """``seen.json`` beside every export of each run folder that owns a followed checkpoint without one
    (:func:`~classit.dynamics.seen.write_seen`); a run folder that cannot be opened for it (its data absent, say)
    is named in one printed line, and the other steps go on."""
    checkpoints = [c for run in runs for c in run.checkpoints]
    for folder in dict.fromkeys(layout.export_run(c.folder) for c in checkpoints):
        if all(layout.seen_file(c.folder).is_file() for c in checkpoints if layout.export_run(c.folder) == folder):
            continue
        try:
            write_seen(folder)
        except (OSError, ValueError, KeyError) as error:
            print(f"[dynamics] no seen counts for {folder}: {str(error).splitlines()[0]}")


def _seen_rows(run: FollowedRun, seen: dict) -> list[dict]:
    """One row per stage and source of a checkpoint's ``seen.json`` (the stage's words, tokens, sequences, epochs),
    then one per source over all stages (``stage_name`` all: its words, tokens, items and how many were seen 0, 1,
    2… times)."""
    common = {"run": run.label, "checkpoint": seen["checkpoint"], "step": seen["step"], "words": seen["words_seen"],
              "tokens": seen["tokens_seen"]}
    rows = [{**common, "stage": stage["index"], "stage_name": stage["name"], "source": source,
             "source_words": counts["words"], "source_tokens": counts["tokens"], "sequences": counts["sequences"],
             "epoch": stage["epoch"], "epochs": stage["epochs"], "epochs_done": stage["epochs_done"]}
            for stage in seen["stages"] for source, counts in stage["sources"].items()]
    rows += [{**common, "stage_name": "all", "source": source, "source_words": counts["words"],
              "source_tokens": counts["tokens"], "unit": counts["unit"], "items": counts["items"],
              "times_seen": " ".join(map(str, counts["times_seen"]))} for source, counts in seen["sources"].items()]
    return rows


def write_seen_table(out: Path, runs: list[FollowedRun]) -> list[Path]:
    """``seen.csv`` and ``figures/seen_<run>.png`` from the followed checkpoints' ``seen.json`` (those there),
    unless those files are the ones they were made from."""
    count_seen(runs)
    files = {run.label: {c.name: layout.seen_file(c.folder) for c in run.checkpoints
                         if layout.seen_file(c.folder).is_file()} for run in runs}
    figures = layout.dynamics_figures(out)
    drawn = [layout.seen_figure(figures, label) for label, found in files.items() if found]
    value = files_stamp([f for found in files.values() for f in found.values()])
    if kept(out, "seen", value, [out / layout.SEEN_TABLE, *drawn]):
        return []
    rows, figures_written = [], []
    for run in runs:
        seen = [{**read_json(f), "checkpoint": name} for name, f in files[run.label].items()]
        rows += [row for s in seen for row in _seen_rows(run, s)]
        if seen:
            figures.mkdir(parents=True, exist_ok=True)
            figures_written.append(plot_seen(sorted(seen, key=lambda s: s["step"]),
                                             layout.seen_figure(figures, run.label)))
    write_csv([list(SEEN_COLUMNS), *([row.get(c) for c in SEEN_COLUMNS] for row in rows)], out / layout.SEEN_TABLE)
    stamp(out, "seen", value)
    return [out / layout.SEEN_TABLE, *figures_written]
