"""``classit dynamics``: what runs learned, and when, over their checkpoints (milestones, stage ends, the final
export): the fast sets scored at each one, ``curves.csv`` and the per-task curve figures.

The output folder::

    OUT/scores/<run>/<checkpoint>/    classit evaluate's output for each checkpoint (summary.json, predictions/)
    OUT/fast_sets/                    links to the fast sets scored
    OUT/curves.csv                    one row per run, checkpoint, task and subset
    OUT/figures/curves_<task>.png     per task, a grid of its subsets' curves
"""

import csv
from pathlib import Path

from classit import layout
from classit.data import store
from classit.dynamics.checkpoints import followed_runs
from classit.dynamics.curves import COLUMNS, curve_rows, fast_sets, plot_curves, score_checkpoints
from classit.files import write_csv

REPEATED = ("--run", "--label")  # options given once per run


def as_lists(argv: list[str]) -> list[str]:
    """``--run A --run B`` (or ``--run=A``) as the one list jsonargparse takes: ``--run ["A", "B"]``."""
    import json

    found, rest, args = {name: [] for name in REPEATED}, [], iter(argv)
    for arg in args:
        name, equals, value = arg.partition("=")
        if name in found:
            found[name].append(value if equals else next(args, ""))
        else:
            rest.append(arg)
    return rest + [item for name, values in found.items() if values for item in (name, json.dumps(values))]


def dynamics(*, run: list[str], out: str, label: list[str] | None = None, data_dir: str | None = None,
             tasks: str | None = None, batch_size: int = 64, device: str = "auto") -> Path:
    """Learning dynamics of runs over their checkpoints: every milestone export, stage export and final export of
    each run, in words-seen order, scored on the fast sets (a checkpoint scored is not scored again; ctrl-C keeps
    what was scored), per-phenomenon curves in ``OUT/curves.csv`` and ``OUT/figures/curves_<task>.png``.

    Args:
        run: a run folder (``lightning_logs/NAME/version_0``); ``--run`` again for each further run.
        out: the output folder; scores already there are kept and reused.
        label: each run's name in the results, in the order of ``--run``; default the run's folder name (a
            ``version_N`` folder: its parent's). ``{condition}_seed{S}`` names a study's condition and seed.
        data_dir: the data folder with ``babylm-eval-fast`` (and ``babylm-eval`` for WUG and reading); default
            ``$CLASSIT_DATA_DIR``.
        tasks: comma-separated fast-set tasks (blimp, supplement, ewok, entity_tracking, wug, wug_past, reading);
            default every one whose data is there.
        batch_size: texts per forward pass.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``...
    """
    runs = followed_runs(run, label)
    names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    sets = fast_sets(Path(data_dir) if data_dir else store.data_dir(), names)
    out_dir = store.output_folder(out, "--out")
    # behaviour: the fast sets at each checkpoint, and their curves
    score_checkpoints(out_dir, runs, sets, batch_size, device)
    rows = curve_rows(out_dir, runs, list(sets))
    table, figures = [list(COLUMNS), *([row[c] for c in COLUMNS] for row in rows)], layout.dynamics_figures(out_dir)
    if written(out_dir / layout.CURVES, table) and all(layout.curves_figure(figures, t).is_file() for t in sets):
        print(f"dynamics: nothing new; {out_dir / layout.CURVES} and the figures in {figures} kept")
    else:
        write_csv(table, out_dir / layout.CURVES)
        drawn = plot_curves(rows, figures)
        print(f"dynamics: {len(rows)} rows in {out_dir / layout.CURVES}; figures: "
              f"{', '.join(p.name for p in drawn)} in {figures}")
    return out_dir


def written(path: Path, table: list[list]) -> bool:
    """Whether the CSV file at ``path`` holds ``table`` already (as ``csv.writer`` writes it)."""
    if not path.is_file():
        return False
    with open(path, newline="") as f:
        return list(csv.reader(f)) == [["" if v is None else str(v) for v in row] for row in table]
