"""Each condition against the baseline, task by task: the difference of the means over seeds, a 95% interval
from a seeded paired bootstrap and a paired test.

- Zero-shot minimal pairs: items paired by identity (subset, source file and line), the bootstrap redraws items
  within subsets and recomputes the macro score; McNemar's exact test on the item outcomes (seeds paired in order).
  Conditions scored on different sets (the full and the fast BLiMP) get no paired interval.
- WUG: the same items redrawn for both models, Spearman's rho recomputed; the bootstrap's p-value.
- Fine-tuning: the bootstrap redraws the validation items (the same for both) and each side's runs; a
  permutation test over the runs' scores (training seed x fine-tuning seed).
- Reading: no item-level interval (its scores are regressions over all rows).
"""

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classit import layout
from classit.eval.finetune import SCORE_METRIC
from classit.eval.tasks import TASKS
from classit.eval.zero_shot import load_items
from classit.files import read_jsonl
from classit.study import stats
from classit.study.collect import Result, by_item, item_set, task_scores


@dataclass
class Difference:
    """One condition against the baseline on one task."""

    unit: str
    task: str
    baseline: float
    value: float
    low: float | None = None
    high: float | None = None
    test: str = ""
    p: float | None = None
    note: str = ""

    @property
    def diff(self) -> float:
        return self.value - self.baseline

    @property
    def real(self) -> bool:
        """The interval excludes 0 and the test's p < 0.05."""
        return self.low is not None and self.p is not None and (self.low > 0 or self.high < 0) and self.p < 0.05


def _predictions(result: Result, task: str) -> dict | None:
    path = layout.predictions_file(result.folder, task)
    return by_item(read_jsonl(path)) if path.is_file() else None


def _weights(keys) -> dict[str, float]:
    """Each subset's weight in the macro score (entity tracking: subsets averaged within a file, then files)."""
    uids = sorted({uid for uid, _ in keys})
    files = defaultdict(list)
    for uid in uids:
        files[uid.rsplit("_", 2)[0]].append(uid)
    if all(uid.endswith("_ops") for uid in uids):
        return {uid: 1 / (len(files) * len(members)) for members in files.values() for uid in members}
    return {uid: 1 / len(uids) for uid in uids}


def _binary(task, a: list[dict], b: list[dict], d: Difference, resamples, seed) -> None:
    """Seed-mean item outcomes bootstrapped within subsets; McNemar over items and seeds paired in order."""
    keys = [k for k in a[0] if all(k in p for p in a + b)]  # the items all scored, in the baseline's file order
    mean_a = {k: 100 * np.mean([p[k]["correct"] for p in a]) for k in keys}  # percent, as the macro score
    mean_b = {k: 100 * np.mean([p[k]["correct"] for p in b]) for k in keys}
    diffs = defaultdict(list)
    for k in keys:
        diffs[k[0]].append(mean_b[k] - mean_a[k])
    weights = _weights(keys) if TASKS[task].aggregate == "files" else {uid: 1 / len(diffs) for uid in diffs}
    _, d.low, d.high = stats.paired_bootstrap({u: np.array(v) for u, v in diffs.items()}, weights, resamples, seed)
    only_b = sum(pb[k]["correct"] and not pa[k]["correct"] for pa, pb in zip(a, b) for k in keys)
    only_a = sum(pa[k]["correct"] and not pb[k]["correct"] for pa, pb in zip(a, b) for k in keys)
    d.test, d.p = f"McNemar exact ({only_b} vs {only_a} discordant)", stats.mcnemar(only_b, only_a)


def _wug(task, results_a: list[Result], a: list[dict], b: list[dict], d: Difference, resamples, seed) -> None:
    folder = results_a[0].summary[task].get("folder")
    if not folder or not Path(folder).is_dir():
        d.note = f"no interval: the WUG data folder {folder} is needed for the human ratios"
        return
    ratios = {(it.uid, it.source): it.ratio for it in load_items(task, folder)}
    keys = [k for k in ratios if all(k in p for p in a + b)]  # in file order
    probs = [[np.array([p[k]["prob"] for k in keys]) for p in side] for side in (a, b)]
    _, d.low, d.high, d.p = stats.bootstrap_rho(*probs, np.array([ratios[k] for k in keys]), resamples, seed)
    d.test = "paired bootstrap"


def _finetune(task, results_a, results_b, d: Difference, resamples, seed) -> None:
    name = SCORE_METRIC.get(task, "accuracy")
    per_run = [[v for r in side for v in r.summary[task][name]["per_seed"]] for side in (results_a, results_b)]
    d.test, d.p = f"permutation over runs ({len(per_run[0])} vs {len(per_run[1])})", stats.permutation_test(*per_run, seed)
    runs, labels = ([], []), None
    for side, results in zip(runs, (results_a, results_b)):
        for r in results:
            for s in r.summary[task]["seeds"]:
                path = layout.predictions_file(r.folder, f"{task}_seed{s}")
                if not path.is_file():
                    d.note = f"no interval: {path} is missing"
                    return
                records = read_jsonl(path)
                if labels is None:
                    labels = np.array([x["label"] for x in records])
                if len(records) != len(labels) or any(x["label"] != y for x, y in zip(records, labels)):
                    d.note = f"no interval: {path} holds other items than the baseline's"
                    return
                side.append(np.array([x["pred"] for x in records]))
    _, d.low, d.high = stats.bootstrap_runs(labels, *runs, name, resamples, seed)


def differences(results: list[Result], scores: dict, baseline: str, resamples: int = 1000,
                seed: int = 0) -> list[Difference]:
    """Every other condition against ``baseline`` on every task both have. ``results`` sorted by seed;
    ``scores[(unit, task)]``: [(seed, score)] of its results."""
    units = list(dict.fromkeys(r.unit for r in results))
    out = []
    for unit in units:
        if unit == baseline:
            continue
        for (u, task), values in scores.items():
            if u != unit or (baseline, task) not in scores:
                continue
            base = scores[baseline, task]
            d = Difference(unit, task, float(np.mean([v for _, v in base])), float(np.mean([v for _, v in values])))
            out.append(d)
            side_a, side_b = ([r for r in results if r.unit == name and task in task_scores(r)] for name in (baseline, unit))
            # the score's task in the registry (reading's scores are reading/eye_tracking, reading/self_paced)
            kind = "finetune" if side_a[0].kind == "finetune" else TASKS[task.split("/")[0]].kind
            if kind == "finetune":
                _finetune(task, side_a, side_b, d, resamples, seed)
            elif kind == "reading":
                d.note = "no item-level interval (a regression over all rows)"
            elif kind == "aoa":
                d.note = "no paired interval (a correlation over words; each condition's own is in the AoA table)"
            elif (set_a := item_set(side_a[0], task)) != (set_b := item_set(side_b[0], task)):
                d.note = f"no paired interval: {baseline} was scored on {set_a}, {unit} on {set_b}"
            else:
                preds = [[_predictions(r, task) for r in s] for s in (side_a, side_b)]
                if any(p is None for side in preds for p in side):
                    d.note = f"no interval: predictions/{task}.jsonl missing"
                elif kind == "rho":
                    _wug(task, side_a, *preds, d, resamples, seed)
                else:
                    _binary(task, *preds, d, resamples, seed)
    return out
