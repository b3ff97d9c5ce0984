"""The BabyLM 2025 pipeline's results layout: reading its reports and predictions (``classit compare``), and
writing classit's outputs in it (``classit report --babylm``), as its collation script reads them::

    <model>/<revision>/zero_shot/causal/{blimp/blimp_filtered, blimp/supplement_filtered, ewok/ewok_filtered,
        entity_tracking/entity_tracking, wug_adj/wug_adj_nominalization, wug_past/wug_past_tense,
        comps/comps}/{predictions.json, best_temperature_report.txt}
    <model>/<revision>/zero_shot/causal/reading/{predictions.json, prediction.jsonl, report.txt}
    <model>/main/zero_shot/causal/AoA_word/surprisal.json
    <model>/<revision>/finetune/<task>/{predictions.json, results.txt}

A prediction names the chosen completion (COMPS: the whole chosen text, as the pipeline writes it); a tie goes to the
first option, as in the pipeline (``torch.max``) and in classit's summary, so both count a tie as correct. Fine-tuning predictions are those of the first fine-tuning seed (the pipeline runs one). The pipeline's
reports print two decimals.
"""

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from classit import layout
from classit.eval.tasks import RHO, TASKS, by_folder
from classit.eval.zero_shot import load_items
from classit.files import read_json, read_jsonl, write_json, write_jsonl, write_text


@dataclass
class TaskResult:
    """One task of one folder: its numbers (subset label → value) and its items (key → outcome)."""

    numbers: dict[str, float]
    pipeline: bool = False  # read from the BabyLM pipeline's files (numbers with two decimals)
    items: dict = field(default_factory=dict)  # (uid, n) → chosen option (index or text), WUG prob, reading surprisals
    ties: set = field(default_factory=set)  # keys on which classit saw a tie
    where: dict = field(default_factory=dict)  # key → the data file and line (classit)
    data_folder: str | None = None  # classit: the task's data folder, to turn the pipeline's chosen texts into indices


def _number(path: Path, line: int, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    raise ValueError(f"{path}:{line}: expected a number, got {text!r}")


def _read_report(path: Path, task: str) -> dict[str, float]:
    """``### SECTION METRIC`` headers, ``name: value`` lines, the value under ``### AVERAGE ...``."""
    numbers, section = {}, None
    for line_number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("### "):
            section = line[4:].split(" ")[0].lower()
        elif section == "average" and line.strip():
            numbers["average"] = _number(path, line_number, line)
        elif section and ": " in line and task not in RHO:  # WUG: only its average
            name, value = line.rsplit(": ", 1)
            if TASKS[task].aggregate == "files" and not name.endswith("_ops"):  # the pipeline's per-file means
                name = f"file/{name}"
            else:
                name = f"{section}/{name}"
            numbers[name] = _number(path, line_number, value)
    if "average" not in numbers:
        raise ValueError(f"{path}: no '### AVERAGE' section")
    return numbers


def _read_reading_report(folder: Path) -> TaskResult:
    labels = {"EYE TRACKING SCORE": "eye_tracking", "SELF-PACED READING SCORE": "self_paced"}
    report = folder / "report.txt"
    numbers = {}
    for line_number, line in enumerate(report.read_text().splitlines(), 1):
        name, _, value = line.partition(": ")
        if name in labels:
            numbers[labels[name]] = _number(report, line_number, value)
    if set(numbers) != set(labels.values()):
        raise ValueError(f"{report}: expected the lines {' and '.join(labels)}")
    result = TaskResult(numbers, pipeline=True)
    if (folder / "prediction.jsonl").is_file():
        for r in read_jsonl(folder / "prediction.jsonl"):
            prev = r["Prev_Logprob"]
            result.items[("row", r["Index"])] = (r["Logprob"], None if prev is None or math.isnan(prev) else prev)
    return result


def read_pipeline(causal: Path) -> dict[str, TaskResult]:
    tasks = {}
    for report in sorted(causal.glob("*/*/best_temperature_report.txt")):
        spec = by_folder(report.parent.name)
        if spec is None or spec.decode is None:  # tasks classit does not run (vqa, ...); reading: report.txt below
            continue
        task = spec.name
        result = TaskResult(_read_report(report, task), pipeline=True)
        predictions = layout.official_predictions(report.parent)
        if predictions.is_file():
            for uid, block in read_json(predictions).items():
                for n, p in enumerate(block["predictions"]):
                    result.items[(uid, n)] = p["prob"] if task in RHO else p["pred"]
        tasks[task] = result
    if (causal / "reading" / "report.txt").is_file():
        tasks["reading"] = _read_reading_report(causal / "reading")
    aoa = layout.surprisal_file(layout.aoa_dir(causal))
    if aoa.is_file():
        tasks["aoa"] = TaskResult({}, pipeline=True, items=aoa_items(aoa))
    return tasks


def aoa_items(path: Path) -> dict[tuple[str, int], float]:
    """An AoA ``surprisal.json``'s surprisals keyed ("checkpoint word", context id)."""
    return {(f"{r['step']} {r['target_word']}", r["context_id"]): r["surprisal"] for r in read_json(path)["results"]}


def causal_folder(folder: Path) -> Path | None:
    """The ``zero_shot/causal`` folder of a pipeline results tree given at any level down to it."""
    if folder.parts[-2:] == layout.CAUSAL.parts:
        return folder
    found = [p for pattern in (f"{layout.CAUSAL}", f"*/{layout.CAUSAL}", f"*/*/{layout.CAUSAL}")
             for p in sorted(folder.glob(pattern)) if p.is_dir()]
    if len(found) > 1:
        raise ValueError(f"{folder}: several results trees ({', '.join(str(p) for p in found)}); name one of them")
    return found[0] if found else None


def _report(sections: dict[str, dict[str, float]], average: float, metric: str) -> str:
    """best_temperature_report.txt as the pipeline's create_evaluation_report writes it."""
    text = "TEMPERATURE: 1.00\n\n"
    for name, values in sections.items():
        text += f"### {name.upper()} {metric}\n" + "".join(f"{k}: {v:.2f}\n" for k, v in values.items()) + "\n"
    return text + f"### AVERAGE {metric}\n{average:.2f}\n\n"


def _accuracy_by(items, correct, key) -> dict[str, float]:
    groups = defaultdict(list)
    for item, c in zip(items, correct):
        groups[key(item)].append(c)
    return {k: 100.0 * sum(v) / len(v) for k, v in groups.items()}


def write_minimal_pairs(folder: Path, summary: dict, task: str, causal: Path) -> None:
    """One zero-shot task of a ``classit evaluate`` folder as the pipeline's predictions and report."""
    summary, spec = summary[task], TASKS[task]
    path = layout.predictions_file(folder, task)
    records = read_jsonl(path)
    items = load_items(task, summary["folder"])
    if [it.uid for it in items] != [r["uid"] for r in records]:
        raise ValueError(f"{path}: its items are not those of {summary['folder']}")
    predictions = defaultdict(list)
    for item, r in zip(items, records):
        chosen = (item.texts if spec.names_text else item.continuations)[r["pred"]]
        p = {"id": f"{item.uid}_{len(predictions[item.uid])}", "pred": chosen}
        if spec.kind == "rho":
            p["prob"] = r["prob"]
        predictions[item.uid].append(p)
    if spec.kind == "rho":
        rho = summary["rho"] / 100
        text = _report({"UID": {"avg": rho}}, rho, "SPEARMAN'S RHO")
    else:
        correct = [r["pred"] == 0 for r in records]  # the pipeline: the first of equal scores wins
        sections = {"UID": _accuracy_by(items, correct, lambda it: it.uid)}
        sections.update({g: _accuracy_by(items, correct, lambda it: it.groups[g]) for g in spec.groups})
        if spec.aggregate == "files":  # the pipeline adds each file's mean to the UID section and averages them
            files = defaultdict(list)
            for uid, acc in list(sections["UID"].items()):
                files[uid.rsplit("_", 2)[0]].append(acc)
            sections["UID"].update({f: statistics.mean(v) for f, v in files.items()})
            average = statistics.mean(statistics.mean(v) for v in files.values())
        else:
            average = statistics.mean(sections["UID"].values())
        text = _report(sections, average, "ACCURACY")
    out = causal / spec.results_folder(fast=Path(summary["folder"]).name == spec.fast)
    out.mkdir(parents=True, exist_ok=True)
    write_json({uid: {"predictions": p} for uid, p in predictions.items()}, layout.official_predictions(out))
    write_text(text, out / "best_temperature_report.txt")


def write_reading(folder: Path, summary: dict, causal: Path) -> None:
    """The reading task of a ``classit evaluate`` folder as the pipeline's predictions and report."""
    summary, out = summary["reading"], causal / "reading"
    records = read_jsonl(layout.predictions_file(folder, "reading"))
    out.mkdir(parents=True, exist_ok=True)
    nan = float("nan")
    write_json({"reading": {"predictions": [
        {"id": r["row"], "pred": r["surprisal"], "prev_pred": nan if r["prev_surprisal"] is None else r["prev_surprisal"]}
        for r in records]}}, layout.official_predictions(out))
    write_jsonl(({"Index": r["row"], "Sentence": r["item"], "Word": r["word"], "Logprob": r["surprisal"],
                  "Prev_Logprob": nan if r["prev_surprisal"] is None else r["prev_surprisal"]} for r in records),
                out / "prediction.jsonl", ensure_ascii=True)
    write_text(f"EYE TRACKING SCORE: {summary['eye_tracking']:.2f}\n"
               f"SELF-PACED READING SCORE: {summary['self_paced']:.2f}\n", out / "report.txt")


def write_finetune(folder: Path, summary: dict[str, dict], out: Path) -> None:
    """A ``classit finetune`` folder (its summary's tasks) as the pipeline's ``finetune/<task>`` results (the first
    seed's)."""
    for task, s in summary.items():
        if "accuracy" not in s:
            continue
        seed = s["seeds"][0]
        records = read_jsonl(layout.predictions_file(folder, f"{task}_seed{seed}"))
        task_out = out / task
        task_out.mkdir(parents=True, exist_ok=True)
        write_json({task: {"predictions": [{"id": r["id"], "pred": r["pred"]} for r in records]}},
                   layout.official_predictions(task_out))
        write_text("\n".join(f"{m}: {s[m]['per_seed'][0]}" for m in ("accuracy", "f1", "mcc")) + f"\nseed: {seed}\n",
                   task_out / "results.txt")
