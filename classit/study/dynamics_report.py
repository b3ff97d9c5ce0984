"""The report's *Dynamics* section: what ``classit dynamics`` found over each run's checkpoints — per-phenomenon
curves, acquisition points, what each instruction stage did, representation change and the data seen — with its
tables and figures copied beside the report under their own names, so that the report's folder holds everything it
names."""

import shutil
from pathlib import Path

from classit import layout
from classit.files import read_csv

SHOWN = 12  # acquisition points listed per run (the full table: acquisition.csv)
TABLES = (layout.CURVES, layout.ACQUISITION, layout.STAGE_EFFECTS, layout.REPRESENTATION, layout.SEEN_TABLE,
          layout.PROBE)  # copied beside the report


def _copied(path: Path, out_dir: Path) -> Path:
    """``path`` copied into the report's folder under its name (a figure or table of the dynamics folder)."""
    copy = out_dir / path.name
    shutil.copyfile(path, copy)
    return copy


def _rows(path: Path) -> list[dict]:
    return read_csv(path, dtype=str, keep_default_na=False).to_dict("records") if path.is_file() else []


def _words(value) -> str:
    return "–" if value in ("", None) else f"{float(value) / 1e6:.2f}M"


def _acquisition(rows: list[dict], doc) -> None:
    doc.text("Acquisition points: per subset, the words seen at which its fitted curve first reaches halfway between "
             "chance and its final level (95% bootstrap interval over items). A subset whose last checkpoint is not "
             "above chance (one-sided exact binomial test, p < 0.05) is not acquired and gets no number. The earliest "
             f"{SHOWN} of each run; every subset in {layout.ACQUISITION}.")
    for run in dict.fromkeys(r["run"] for r in rows):
        mine = [r for r in rows if r["run"] == run]
        dated = [r for r in mine if r["words"] != ""]
        acquired = sum(str(r["acquired"]) == "True" for r in mine)
        doc.text(f"{run}: {acquired} of {len(mine)} subsets above chance at the last checkpoint, {len(dated)} with a "
                 "point.")
        if dated:
            doc.table(["task", "subset", "words", "95% interval", "final", "chance"],
                      [[r["task"], r["subset"], _words(r["words"]), f"[{_words(r['low'])}, {_words(r['high'])}]",
                        f"{100 * float(r['final']):.1f}", f"{100 * float(r['chance']):.1f}"] for r in dated[:SHOWN]])


def _stages(rows: list[dict], doc) -> None:
    doc.text("What each instruction stage did: per subset, the change in accuracy (points) from the end of the stage "
             "before to the end of the stage, with a paired bootstrap interval over items; helped: the interval above "
             f"0, eroded (forgetting): below 0. Every subset in {layout.STAGE_EFFECTS}.")
    groups = dict.fromkeys((r["run"], r["stage_name"]) for r in rows)
    table = []
    for run, stage in groups:
        mine = [r for r in rows if (r["run"], r["stage_name"]) == (run, stage)]
        named = {verdict: ", ".join(f"{r['subset']} ({float(r['delta']):+.1f})" for r in
                                   sorted(mine, key=lambda r: -abs(float(r["delta"]))) if r["verdict"] == verdict)
                 for verdict in ("helped", "eroded")}
        table.append([run, stage, str(len(mine)), named["helped"] or "–", named["eroded"] or "–"])
    doc.table(["run", "stage", "subsets", "helped", "eroded"], table)


def dynamics_section(folder: Path, doc, out_dir: Path) -> None:
    """The Dynamics section from a ``classit dynamics`` output folder, its tables and figures copied beside the
    report (nothing there: no section)."""
    folder = Path(folder)
    if not (folder / layout.CURVES).is_file():
        return
    doc.heading("Dynamics")
    doc.text("The fast sets scored at every milestone, stage and final export of each run, against the words seen "
             "(log scale; curriculum stages shaded, chance dashed). Tables beside this report: "
             + ", ".join(name for name in TABLES if (folder / name).is_file()) + ".")
    for name in TABLES:
        if (folder / name).is_file():
            _copied(folder / name, out_dir)
    figures = layout.dynamics_figures(folder)
    for path in sorted(figures.glob("curves_*.png")):
        doc.image(_copied(path, out_dir), f"curves of {path.stem.removeprefix('curves_')}")
    if acquisition := _rows(folder / layout.ACQUISITION):
        _acquisition(acquisition, doc)
    for path in sorted(figures.glob("acquisition*.png")):
        doc.image(_copied(path, out_dir), "acquisition points")
    if stages := _rows(folder / layout.STAGE_EFFECTS):
        _stages(stages, doc)
    for path in sorted(figures.glob("stage_effects*.png")):
        doc.image(_copied(path, out_dir), "what each instruction stage did")
    if (folder / layout.REPRESENTATION).is_file():
        doc.text("Representation change on the probe sentences (probe.txt): per layer (0: the embeddings), "
                 "linear CKA of the hidden states with the previous checkpoint and with the last one, and their "
                 "effective rank.")
        for path in sorted(figures.glob("repr_*.png")):
            doc.image(_copied(path, out_dir), f"representation change, {path.stem.removeprefix('repr_')}")
    for path in sorted(figures.glob("seen_*.png")):
        doc.image(_copied(path, out_dir), f"words seen per source, {path.stem.removeprefix('seen_')}")
