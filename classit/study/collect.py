"""Find ``classit evaluate`` and ``classit finetune`` outputs below some folders and say which condition,
seed and stage each one belongs to (``meta.json`` next to ``summary.json``, else the path
``.../<condition>/seed<k>/...``, else the folder's name, or its parent's for a folder named ``zero_shot`` or
``finetune``, and seed 0); and read the training curves of a result's run."""

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from classit import layout
from classit.eval.finetune import SCORE_METRIC
from classit.eval.summary import CORRECTED, KINDS, Kind, official_and_corrected, read_summary
from classit.eval.tasks import TASKS
from classit.files import read_json, read_yaml

SEED_FOLDER = re.compile(r"seed(\d+)")
FINAL = "final"  # the stage of a result whose meta.json names none


@dataclass
class Result:
    """One summary.json: whose it is, what kind (``zero_shot`` or ``finetune``) and its tasks' numbers."""

    condition: str
    seed: int
    stage: str
    kind: Kind
    folder: Path
    summary: dict[str, dict]  # task → its numbers, or {"skipped": why}
    meta: dict
    unit: str = ""  # the compared column: the condition, or condition@stage when a condition has several stages


def _identity(folder: Path, meta: dict) -> tuple[str, int, str]:
    named = folder.resolve()
    condition, seed = (named.parent if named.name in KINDS else named).name, 0
    parts = folder.parts
    for i in range(len(parts) - 1, 0, -1):
        if (match := SEED_FOLDER.fullmatch(parts[i])) and parts[i - 1] not in ("", "/", ".", ".."):
            condition, seed = parts[i - 1], int(match.group(1))
            break
    return str(meta.get("condition", condition)), int(meta.get("seed", seed)), str(meta.get("stage") or FINAL)


def find_results(dirs: list[str]) -> list[Result]:
    """Every summary.json below ``dirs`` (recursively), identified; a folder without one, an unknown layout or
    two results for the same condition, seed, stage and kind stop with a one-line error."""
    results, seen = [], {}
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            raise ValueError(f"{root}: no such folder")
        paths = sorted(root.rglob(layout.SUMMARY_FILE))
        if not paths:
            raise ValueError(f"{root}: no summary.json below it (expected classit evaluate or classit finetune output)")
        for path in paths:
            summary = read_summary(path)
            kind = summary.kind
            meta_path = layout.meta_file(path.parent)
            meta = read_json(meta_path) if meta_path.is_file() else {}
            if not isinstance(meta, dict):
                raise ValueError(f"{meta_path}: expected a JSON object")
            condition, seed, stage = _identity(path.parent, meta)
            key = (condition, seed, stage, kind)
            if key in seen:
                raise ValueError(f"{path.parent} and {seen[key]} are both {kind} results of condition {condition!r}, "
                                 f"seed {seed}, stage {stage!r}; give each its own meta.json or <condition>/seed<k> folder")
            seen[key] = path.parent
            results.append(Result(condition, seed, stage, kind, path.parent, summary.tasks, meta))
    stages = {}
    for r in results:
        stages.setdefault(r.condition, set()).add(r.stage)
    for r in results:
        r.unit = r.condition if len(stages[r.condition]) == 1 else f"{r.condition}@{r.stage}"
    return results


def scored_tasks(result: Result) -> Iterator[tuple[str, str, dict]]:
    """``(task, kind, numbers)`` of each task the result scored: ``finetune``, or the task's kind in the registry."""
    for task, s in result.summary.items():
        if "skipped" not in s:
            yield task, "finetune" if result.kind == "finetune" else TASKS[task].kind, s


def task_scores(result: Result) -> dict[str, float]:
    """The one score per task that the comparison uses: zero-shot macro accuracy, WUG's rho (x100), the two
    reading scores, AoA's curve fitness r (x100); fine-tuning: the mean over fine-tuning seeds of accuracy (F1 for
    MRPC and QQP)."""
    scores = {}
    for task, kind, s in scored_tasks(result):
        if kind == "finetune":
            scores[task] = s[SCORE_METRIC.get(task, "accuracy")]["mean"]
        elif kind == "reading":
            scores[f"{task}/eye_tracking"], scores[f"{task}/self_paced"] = s["eye_tracking"], s["self_paced"]
        elif kind == "aoa":
            scores[task] = 100 * s["curve_fitness"]
        else:
            official = official_and_corrected(s)[0]
            scores[task] = official["rho"] if kind == "rho" else official["macro"]
    return scores


def chance_levels(results: list[Result]) -> dict[str, float]:
    """Per task of :func:`task_scores`, the score of a guess on its scale: 100 / options (choice tasks), 100 /
    labels (fine-tuning accuracy), 0 (correlations: WUG's rho, AoA's r; reading's gains). F1 (MRPC, QQP) has
    none: a guess's F1 depends on the labels' balance."""
    from classit.eval.glue import TASKS as GLUE

    levels = {}
    for result in results:
        for task, kind, _ in scored_tasks(result):
            if kind == "finetune" and task not in SCORE_METRIC:
                levels[task] = 100 / GLUE[task].num_labels
            elif kind == "choice":
                levels[task] = TASKS[task].chance
            elif kind == "reading":
                levels[f"{task}/eye_tracking"] = levels[f"{task}/self_paced"] = 0.0
            elif kind in ("rho", "aoa"):
                levels[task] = 0.0
    return levels


def corrected_scores(result: Result) -> dict[str, tuple[float, float]]:
    """``task → (official, corrected)`` of the zero-shot tasks scored with a tokenizer that adds no BOS: the official
    score and, beside it, the one with each text after a prepended BOS (macro accuracy, WUG: rho x100)."""
    pairs = {}
    for task, kind, s in scored_tasks(result):
        if kind in ("choice", "rho") and (both := official_and_corrected(s))[1]:
            metric = "rho" if kind == "rho" else "macro"
            pairs[task] = (both[0][metric], both[1][metric])
    return pairs


def long_rows(result: Result) -> list[tuple]:
    """results.csv rows (condition, seed, stage, task, subset, metric, value) of one result."""
    head = (result.condition, result.seed, result.stage)
    rows = []
    for task, kind, s in scored_tasks(result):
        if kind == "finetune":
            rows += [(*head, task, f"finetune_seed{seed}", m, v) for m in ("accuracy", "f1", "mcc")
                     for seed, v in zip(s["seeds"], s[m]["per_seed"])]
        elif kind == "reading":
            rows += [(*head, task, "", m, s[m]) for m in ("eye_tracking", "self_paced")]
        elif kind == "rho":
            official, corrected = official_and_corrected(s)
            rows.append((*head, task, "", "rho", official["rho"]))
            rows += [(*head, task, CORRECTED, "rho", corrected["rho"])] if corrected else []
        elif kind == "aoa":
            rows += [(*head, task, "", "r", s["curve_fitness"]), (*head, task, "", "words", s["n_words"]),
                     (*head, task, "corrected", "r", s["corrected"]["curve_fitness"])]
        else:
            official, corrected = official_and_corrected(s)
            rows += [(*head, task, "", "accuracy", official["macro"]), (*head, task, "", "ties", official["ties"]),
                     (*head, task, "strict", "accuracy", official["strict"]["macro"])]
            rows += [(*head, task, CORRECTED, "accuracy", corrected["macro"])] if corrected else []
            rows += [(*head, task, uid, "accuracy", v) for uid, v in official["by_uid"].items()]
    return rows


def item_set(result: Result, task: str) -> str | None:
    """The set a zero-shot task was scored on, as a report names it: its data folder and item count (None for AoA,
    scored on the run's own milestones)."""
    s = result.summary[task]
    if result.kind == "finetune" or TASKS[task].kind == "aoa":
        return None
    return f"{s.get('folder')} ({s.get('items')} items)"


def check_sets(results: list[Result]) -> None:
    """Stop with one line when the seeds of one condition scored a task on different sets (the full and the fast
    BLiMP, say): their mean would mix two sets."""
    first = {}
    for r in results:
        for task in r.summary:
            if "skipped" in r.summary[task] or (name := item_set(r, task)) is None:
                continue
            seed, seen = first.setdefault((r.unit, task), (r.seed, name))
            if seen != name:
                raise ValueError(f"{task} of condition {r.unit!r}: seed {seed} was scored on {seen}, seed {r.seed} on "
                                 f"{name}; score every seed on the same set, or give each set its own condition "
                                 f"(meta.json)")


def by_item(records: list[dict]) -> dict[tuple[str, str], dict]:
    """Zero-shot records keyed by their item: (subset, source file and line)."""
    return {(r["uid"], r["source"]): r for r in records}


def run_curves(result: Result) -> dict[str, list[tuple[int, float]]]:
    """The scalars the run in ``meta.json``'s ``log_dir`` logged to TensorBoard, tag → [(step, value)]. A result of
    one stage of a longer run (``stage``, a name in the run's ``config.yaml``) gets what was logged before the next
    stage began (``curriculum/stage``): the stage's steps and the evaluations of its last model."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = Path(result.meta["log_dir"])
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    found = {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}
    config = read_yaml(log_dir / "config.yaml") if (log_dir / "config.yaml").is_file() else {}
    stages = [s["name"] for s in config.get("data", {}).get("stages") or []]
    end = math.inf  # when the next stage began, by wall time: a step's metrics and the evaluation after it share a step
    if result.stage in stages:
        index = stages.index(result.stage)
        end = min((e.wall_time for e in found.get("curriculum/stage", []) if e.value > index), default=math.inf)
    return {tag: [(e.step, e.value) for e in scalars if e.wall_time < end] for tag, scalars in found.items()}
