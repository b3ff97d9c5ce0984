"""classit's predictions in the BabyLM 2025 pipeline's results layout, as its collation script
(``evaluation_pipeline/collate_preds.py``) reads them, so classit's results can be submitted without running
the pipeline::

    OUT/<model>/<revision>/zero_shot/causal/{blimp/blimp_filtered, blimp/supplement_filtered, ewok/ewok_filtered,
        entity_tracking/entity_tracking, wug_adj/wug_adj_nominalization}/{predictions.json, best_temperature_report.txt}
    OUT/<model>/<revision>/zero_shot/causal/reading/{predictions.json, prediction.jsonl, report.txt}
    OUT/<model>/<revision>/finetune/<task>/{predictions.json, results.txt}

``<model>`` is the condition (``<condition>_seed<k>`` when it has several seeds), ``<revision>`` the stage
(``main`` for the final model). A prediction names the chosen completion; a tie goes to the first option, as in
the pipeline (``torch.max``), so its reports count a tie as correct where classit's summary counts it wrong.
Fine-tuning predictions are those of the first fine-tuning seed (the pipeline runs one).
"""

import json
import statistics
from collections import defaultdict
from pathlib import Path

from classit.eval.zero_shot import GROUPS, load_items
from classit.study.collect import FINAL, Result, read_jsonl

TASK_FOLDER = {"blimp": "blimp", "supplement": "blimp", "ewok": "ewok", "entity_tracking": "entity_tracking",
               "wug": "wug_adj"}


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


def _minimal_pairs(result: Result, task: str, causal: Path) -> None:
    summary = result.summary[task]
    records = read_jsonl(result.folder / "predictions" / f"{task}.jsonl")
    items = load_items(task, summary["folder"])
    if [it.uid for it in items] != [r["uid"] for r in records]:
        raise ValueError(f"{result.folder / 'predictions' / f'{task}.jsonl'}: its items are not those of {summary['folder']}")
    predictions = defaultdict(list)
    for item, r in zip(items, records):
        p = {"id": f"{item.uid}_{len(predictions[item.uid])}", "pred": item.continuations[r["pred"]]}
        if task == "wug":
            p["prob"] = r["prob"]
        predictions[item.uid].append(p)
    if task == "wug":
        rho = summary["rho"] / 100
        text = _report({"UID": {"avg": rho}}, rho, "SPEARMAN'S RHO")
    else:
        correct = [r["pred"] == 0 for r in records]  # the pipeline: the first of equal scores wins
        sections = {"UID": _accuracy_by(items, correct, lambda it: it.uid)}
        sections.update({g: _accuracy_by(items, correct, lambda it: it.groups[g]) for g in GROUPS.get(task, ())})
        if task == "entity_tracking":  # the pipeline adds each file's mean to the UID section and averages them
            files = defaultdict(list)
            for uid, acc in list(sections["UID"].items()):
                files[uid.rsplit("_", 2)[0]].append(acc)
            sections["UID"].update({f: statistics.mean(v) for f, v in files.items()})
            average = statistics.mean(statistics.mean(v) for v in files.values())
        else:
            average = statistics.mean(sections["UID"].values())
        text = _report(sections, average, "ACCURACY")
    out = causal / TASK_FOLDER[task] / Path(summary["folder"]).name
    out.mkdir(parents=True, exist_ok=True)
    (out / "predictions.json").write_text(json.dumps({uid: {"predictions": p} for uid, p in predictions.items()}))
    (out / "best_temperature_report.txt").write_text(text)


def _reading(result: Result, causal: Path) -> None:
    summary, out = result.summary["reading"], causal / "reading"
    records = read_jsonl(result.folder / "predictions" / "reading.jsonl")
    out.mkdir(parents=True, exist_ok=True)
    nan = float("nan")
    (out / "predictions.json").write_text(json.dumps({"reading": {"predictions": [
        {"id": r["row"], "pred": r["surprisal"], "prev_pred": nan if r["prev_surprisal"] is None else r["prev_surprisal"]}
        for r in records]}}))
    (out / "prediction.jsonl").write_text("".join(json.dumps(
        {"Index": r["row"], "Sentence": r["item"], "Word": r["word"], "Logprob": r["surprisal"],
         "Prev_Logprob": nan if r["prev_surprisal"] is None else r["prev_surprisal"]}) + "\n" for r in records))
    (out / "report.txt").write_text(f"EYE TRACKING SCORE: {summary['eye_tracking']:.2f}\n"
                                    f"SELF-PACED READING SCORE: {summary['self_paced']:.2f}\n")


def _finetune(result: Result, out: Path) -> None:
    for task, s in result.summary.items():
        if not isinstance(s, dict) or "accuracy" not in s:
            continue
        seed = s["seeds"][0]
        records = read_jsonl(result.folder / "predictions" / f"{task}_seed{seed}.jsonl")
        folder = out / task
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "predictions.json").write_text(json.dumps(
            {task: {"predictions": [{"id": r["id"], "pred": r["pred"]} for r in records]}}))
        (folder / "results.txt").write_text("\n".join(f"{m}: {s[m]['per_seed'][0]}" for m in ("accuracy", "f1", "mcc"))
                                            + f"\nseed: {seed}\n")


def write_babylm(results: list[Result], out: str | Path) -> list[Path]:
    """Write every result below ``out`` in the pipeline's layout; returns the ``<model>/<revision>`` folders."""
    seeds = defaultdict(set)
    for r in results:
        seeds[r.condition].add(r.seed)
    written = []
    for r in results:
        model = r.condition if len(seeds[r.condition]) == 1 else f"{r.condition}_seed{r.seed}"
        root = Path(out) / model / ("main" if r.stage == FINAL else r.stage)
        if r.kind == "finetune":
            _finetune(r, root / "finetune")
        else:
            for task, s in r.summary.items():
                if "skipped" in s:
                    continue
                if task == "reading":
                    _reading(r, root / "zero_shot" / "causal")
                else:
                    _minimal_pairs(r, task, root / "zero_shot" / "causal")
        written.append(root)
    return sorted(set(written))
