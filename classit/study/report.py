"""``classit report DIR... --out R``: collate ``classit evaluate`` and ``classit finetune`` outputs of several
conditions and seeds into ``results.csv`` (long format), ``report.md`` and a self-contained ``report.html``
(mean ± std per task, z-scores across conditions, differences from the baseline with paired intervals and
tests, figures, the models' replies)."""

import base64
import html
import os
import shutil
import statistics
from pathlib import Path

from classit.eval.summary import official_and_corrected
from classit.files import write_csv, write_text
from classit.study import plots
from classit.study.collect import (chance_levels, check_sets, corrected_scores, find_results, long_rows, run_curves,
                                   task_scores)
from classit.study.differences import differences
from classit.study.dynamics_report import dynamics_section
from classit.study.stats import zscores

COLUMNS = ("condition", "seed", "stage", "task", "subset", "metric", "value")


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _relative(path: str | Path, out_dir: Path) -> str:
    """``path`` (absolute, or relative to the working folder) as seen from the report's folder: a report carries no
    path of the machine that made it."""
    return os.path.relpath(Path(path).resolve(), out_dir.resolve())


def _mean_std(mean: float, std: float | None, n: int) -> str:
    return f"{mean:.2f} (1 seed)" if std is None else f"{mean:.2f} ± {std:.2f} ({n})"


class Document:
    """Blocks (headings, paragraphs, tables, images, quotes) written out as Markdown and as one HTML page."""

    def __init__(self, title: str):
        self.title, self.blocks = title, []

    def heading(self, text: str):
        self.blocks.append(("h2", text))

    def text(self, text: str):
        self.blocks.append(("p", text))

    def table(self, header: list[str], rows: list[list[str]]):
        self.blocks.append(("table", header, rows))

    def image(self, path: Path | None, alt: str):
        if path is not None:
            self.blocks.append(("img", path, alt))

    def markdown(self) -> str:
        out = [f"# {self.title}\n"]
        for kind, *args in self.blocks:
            if kind == "h2":
                out.append(f"## {args[0]}\n")
            elif kind == "p":
                out.append(args[0] + "\n")
            elif kind == "table":
                header, rows = args
                cells = [header, ["---"] * len(header), *rows]
                out.append("\n".join("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |"
                                     for row in cells) + "\n")
            else:
                out.append(f"![{args[1]}]({args[0].name})\n")
        return "\n".join(out)

    def html(self) -> str:
        out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
               "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse}img{max-width:100%;height:auto}"
               "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}</style></head><body>",
               f"<h1>{html.escape(self.title)}</h1>"]
        for kind, *args in self.blocks:
            if kind in ("h2", "p"):
                out.append(f"<{kind}>{html.escape(args[0])}</{kind}>")
            elif kind == "table":
                header, rows = args
                out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
                           + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                                     for row in rows) + "</table>")
            else:
                data = base64.b64encode(args[0].read_bytes()).decode()
                out.append(f"<p><img alt='{html.escape(args[1])}' src='data:image/png;base64,{data}'></p>")
        return "\n".join(out + ["</body></html>"])


def _aoa(results, doc: Document, out_dir: Path) -> None:
    """Each condition's AoA figures (``classit evaluate --tasks aoa``): model against child AoA, learning curves,
    copied beside the report (``aoa_CONDITION_seedK_FIGURE``) so that report.md's links stay within its folder."""
    scored = [(r, r.summary["aoa"]) for r in results if "curve_fitness" in r.summary.get("aoa", {})]
    if not scored:
        return
    doc.heading("Word age of acquisition")
    notes = {s["note"] for _, s in scored if s.get("note")}
    doc.text("Per condition and seed: the official curve fitness r over the words where both ages exist (95% "
             "bootstrap interval), the corrected r (chance level in nats), and the milestones scored. "
             + " ".join(sorted(notes)))
    doc.table(["condition", "seed", "r", "95% interval", "words", "corrected r", "milestones"],
              [[r.unit, str(r.seed), _fmt(s["curve_fitness"], 3),
                "–" if not s["ci95"] else f"[{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]", str(s["n_words"]),
                _fmt(s["corrected"]["curve_fitness"], 3), ", ".join(s["checkpoints"])] for r, s in scored])
    for r, s in scored:
        for figure, what in (("scatter.png", "model against child AoA"), ("curves.png", "learning curves")):
            path, copy = Path(s["folder"]) / figure, out_dir / f"aoa_{r.unit}_seed{r.seed}_{figure}"
            if path.is_file():
                shutil.copyfile(path, copy)
            doc.image(copy if path.is_file() else None, f"{r.unit} seed {r.seed}: {what}")


def _replies(results, doc: Document, out_dir: Path) -> None:
    from classit.study.replies import PROMPTS, replies

    models = {}
    for r in results:
        if r.meta.get("model") and r.unit not in models:
            models[r.unit] = r.meta["model"]
    if not models:
        return
    said = {}
    for unit, model in models.items():
        try:
            said[unit] = replies(model)
        except (OSError, ValueError) as e:
            said[unit] = [f"(no reply: {e})"] * len(PROMPTS)
    doc.heading("What each condition says")
    doc.text("Greedy replies (at most 40 new tokens) of each condition's model ("
             + ", ".join(f"{u}: {_relative(m, out_dir)}" for u, m in models.items()) + ").")
    doc.table(["kind", "prompt", *models], [[kind, prompt, *(said[u][i] for u in models)]
                                              for i, (kind, prompt) in enumerate(PROMPTS)])


def report(dirs: list[str], *, out: str, baseline: str | None = None, babylm: str | None = None,
           dynamics: str | None = None, resamples: int = 1000, seed: int = 0, replies: bool = True) -> dict:
    """Collate evaluation and fine-tuning outputs of several conditions and seeds into one report.

    Args:
        dirs: folders searched (recursively) for ``summary.json`` of ``classit evaluate`` or ``classit finetune``;
            each one's condition, seed and stage come from a ``meta.json`` beside it
            (``{"condition", "seed", "stage", "model", "log_dir"}``), else from the path
            ``.../<condition>/seed<k>/...``, else its folder's name (seed 0).
        out: folder to write ``results.csv``, ``report.md``, ``report.html`` and the figures to.
        baseline: the condition the others are compared with (default: ``baseline`` if present, else the first).
        babylm: also write the predictions in the BabyLM 2025 pipeline's results layout to this folder.
        dynamics: a ``classit dynamics`` output folder: its curves, acquisition points, stage effects,
            representation change and data seen as the report's Dynamics section.
        resamples: bootstrap replicates.
        seed: seed of the bootstrap and of random permutations.
        replies: generate each condition's replies when its meta.json names a model.

    Returns:
        ``{"scores": {(condition, task): [(seed, score)]}, "z": {condition: {task: z}}, "differences": [...]}``.
    """
    results = sorted(find_results(dirs), key=lambda r: (r.seed, r.stage))
    check_sets(results)
    units = list(dict.fromkeys(r.unit for r in results))
    base = baseline or ("baseline" if "baseline" in units else units[0])
    if base not in units:
        raise ValueError(f"--baseline {base!r} is none of the conditions found: {', '.join(units)}")
    units.remove(base)
    units.insert(0, base)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)

    write_csv([COLUMNS, *(row for r in results for row in long_rows(r))], out_dir / "results.csv")

    scores = {}
    for r in results:
        for task, value in task_scores(r).items():
            scores.setdefault((r.unit, task), []).append((r.seed, value))
    tasks = list(dict.fromkeys(t for _, t in scores))
    table = {t: {u: (statistics.fmean(v for _, v in scores[u, t]),
                     statistics.stdev(v for _, v in scores[u, t]) if len(scores[u, t]) > 1 else None)
                 for u in units if (u, t) in scores} for t in tasks}
    z = {u: {} for u in units}
    for t, cells in table.items():
        if len(cells) > 1:
            for u, value in zscores({u: m for u, (m, _) in cells.items()}).items():
                z[u][t] = value
    diffs = differences(results, scores, base, resamples, seed)

    doc = Document("CLASS-IT comparison")
    doc.heading("Inputs")
    doc.text("Folders relative to this report's folder.")
    doc.table(["condition", "seed", "stage", "kind", "folder"],
              [[r.unit, str(r.seed), r.stage, r.kind, _relative(r.folder, out_dir)] for r in results])
    doc.heading("Scores")
    doc.text("Mean ± sample std over seeds (n seeds; one seed: its score, no spread). Zero-shot: the official macro "
             "accuracy (%, a tie counts right, as the leaderboard counts it), WUG: Spearman's rho x100, reading: eye-tracking and self-paced reading scores, "
             "AoA: the official curve fitness (Pearson r of model and child age of acquisition) x100; fine-tuning: "
             "accuracy (F1 for MRPC and QQP, %), the mean over fine-tuning seeds.")
    doc.table(["task", *units], [[t, *(_mean_std(*table[t][u], len(scores[u, t])) if u in table[t] else "–"
                                       for u in units)] for t in tasks])
    corrected = [(r, task, pair) for r in results if r.kind == "zero_shot"
                 for task, pair in corrected_scores(r).items()]
    if corrected:
        doc.text("Tokenizers that add no BOS: the official score (the first token of each text unscored, as in the "
                 "official pipeline) and beside it the corrected score (each text after a prepended BOS, or EOS).")
        doc.table(["condition", "seed", "task", "official", "corrected (BOS prepended)"],
                  [[r.unit, str(r.seed), task, _fmt(official), _fmt(fixed)]
                   for r, task, (official, fixed) in corrected])
    ties = [(r.unit, r.seed, t, o["ties"], o["strict"]["macro"]) for r in results if r.kind == "zero_shot"
            for t, s in r.summary.items() if (o := official_and_corrected(s)[0]).get("ties")]
    if ties:
        doc.text("Ties (the best score shared; counted right above, as the official pipeline counts them), with the "
                 "strict score (ties wrong): "
                 + "; ".join(f"{u} seed {s} {t}: {n} ties, strict {strict:.2f}" for u, s, t, n, strict in ties) + ".")
    doc.heading("z-scores")
    doc.text("Per task, z of each condition's mean over the compared conditions (population std); then each "
             "condition's z-scores over tasks.")
    doc.table(["task", *units], [[t, *(_fmt(z[u].get(t)) for u in units)] for t in tasks if len(table[t]) > 1])
    doc.table(["condition", "tasks", "mean z", "median z", "min", "max"],
              [[u, str(len(z[u])), _fmt(statistics.fmean(z[u].values())), _fmt(statistics.median(z[u].values())),
                _fmt(min(z[u].values())), _fmt(max(z[u].values()))] for u in units if z[u]])
    doc.image(plots.zscore_plot(z, out_dir / "zscores.png"), "z-scores per condition")
    doc.image(plots.task_scores(table, units, chance_levels(results), out_dir / "tasks.png"), "scores per task")
    doc.heading(f"Differences from {base}")
    doc.text("Difference of the means over seeds, a 95% interval from a seeded paired bootstrap and a paired test; "
             "'real': the interval excludes 0 and p < 0.05.")
    doc.table(["condition", "task", base, "condition", "difference", "95% interval", "test", "p", "real"],
              [[d.unit, d.task, _fmt(d.baseline), _fmt(d.value), f"{d.diff:+.2f}",
                "–" if d.low is None else f"[{d.low:+.2f}, {d.high:+.2f}]", d.test or d.note,
                "< 0.001" if d.p is not None and d.p < 0.001 else _fmt(d.p, 4), "yes" if d.real else "no"] for d in diffs])
    runs = {}  # per condition, one result of each of its runs
    for r in results:
        if r.meta.get("log_dir"):
            runs.setdefault(r.unit, {}).setdefault(r.meta["log_dir"], r)
    if runs:
        curves = {unit: [run_curves(r) for r in runs[unit].values()] for unit in units if unit in runs}  # baseline first
        doc.heading("Training")
        doc.image(plots.training_curves(curves, out_dir / "training.png"), "training curves")
        doc.image(plots.zero_shot_curves(curves, out_dir / "zero_shot_training.png"),
                  "zero-shot scores during training")
    _aoa(results, doc, out_dir)
    if dynamics:
        dynamics_section(Path(dynamics), doc, out_dir)
    if replies:
        _replies(results, doc, out_dir)
    if babylm:
        from classit.study.official_layout import write_babylm

        written = write_babylm(results, babylm)
        doc.heading("BabyLM pipeline layout")
        doc.text("Predictions in the BabyLM 2025 pipeline's results layout (ties to the first option): "
                 + ", ".join(_relative(p, out_dir) for p in written))
    write_text(doc.markdown(), out_dir / "report.md")
    write_text(doc.html(), out_dir / "report.html")
    print(doc.markdown())
    print(f"report: {out_dir / 'report.md'}, {out_dir / 'report.html'}, {out_dir / 'results.csv'}")
    return {"scores": scores, "z": z, "differences": diffs}
