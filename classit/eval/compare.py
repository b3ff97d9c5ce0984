"""``classit compare A B``: two result folders side by side, per task and subset, and the items on
which they disagree. A folder is either ``classit evaluate`` output (``summary.json`` and
``predictions/TASK.jsonl``) or the BabyLM 2025 pipeline's results tree
(``<model>/<revision>/zero_shot/causal/<task>/<dataset>/best_temperature_report.txt`` and
``predictions.json``; ``.../causal/reading/report.txt`` and ``prediction.jsonl``).

The pipeline's reports print two decimals, so a number from a report is compared with the other
side rounded to two decimals. WUG is Spearman's rho on the pipeline's scale (classit stores it x100). AoA compares
each checkpoint's surprisal of each word in each context (``AoA_word/surprisal.json``, 1e-4) and the curve fitness.
"""

from collections import defaultdict
from pathlib import Path

from classit import layout
from classit.eval.pipeline import TaskResult, aoa_items, causal_folder, read_pipeline
from classit.eval.summary import CORRECTED, official_and_corrected, read_summary
from classit.eval.tasks import TASKS
from classit.eval.zero_shot import load_items
from classit.files import read_jsonl

LISTED = 10  # disagreeing items printed per task
REPORT_DECIMALS = 2  # the pipeline's reports print two decimals


def _numbered(records, uid) -> dict:
    """Records keyed (uid, n): the n-th item of its subset, in file and line order (both tools keep it)."""
    seen, out = defaultdict(int), {}
    for r in records:
        key = (uid(r), seen[uid(r)])
        seen[key[0]] += 1
        out[key] = r
    return out


def _read_classit(folder: Path) -> dict[str, TaskResult]:
    summary = read_summary(layout.summary_file(folder))
    tasks = {}
    for task, s in summary.tasks.items():
        if "skipped" in s:
            continue
        path = layout.predictions_file(folder, task)
        records = read_jsonl(path) if path.is_file() else []
        result, kind = TaskResult({}, data_folder=s.get("folder")), TASKS[task].kind
        if kind == "aoa":
            result.numbers = {"average": s["curve_fitness"], "corrected": s["corrected"]["curve_fitness"]}
            result.items = aoa_items(layout.surprisal_file(s["folder"]))
        elif kind == "reading":
            result.numbers = {"eye_tracking": s["eye_tracking"], "self_paced": s["self_paced"]}
            result.items = {("row", r["row"]): (r["surprisal"], r["prev_surprisal"]) for r in records}
        elif kind == "rho":
            official, corrected = official_and_corrected(s)
            result.numbers = {"average": official["rho"] / 100,
                              **({CORRECTED: corrected["rho"] / 100} if corrected else {})}
            result.items = {k: r["prob"] for k, r in _numbered(records, lambda r: r["uid"]).items()}
        else:
            official, corrected = official_and_corrected(s)
            result.numbers = {"average": official["macro"], "strict (ties wrong)": official["strict"]["macro"],
                              **({CORRECTED: corrected["macro"]} if corrected else {})}
            for key, values in official.items():
                if key.startswith("by_"):
                    result.numbers.update({f"{key[3:]}/{name}": v for name, v in values.items()})
            numbered = _numbered(records, lambda r: r["uid"])
            result.items = {k: r["pred"] for k, r in numbered.items()}
            result.ties = {k for k, r in numbered.items() if r["tie"]}
            result.where = {k: r["source"] for k, r in numbered.items()}
        tasks[task] = result
    return tasks


def read_results(folder: str | Path) -> tuple[str, dict[str, TaskResult]]:
    """``(layout, tasks)`` of a classit evaluate folder or a BabyLM pipeline results tree."""
    folder = Path(folder)
    evaluate_output = layout.summary_file(folder).is_file()
    causal = None if evaluate_output or not folder.is_dir() else causal_folder(folder)
    if not evaluate_output and causal is None:
        raise ValueError(f"{folder}: not a results folder: neither classit evaluate output (summary.json) "
                         "nor a BabyLM pipeline tree (<model>/<revision>/zero_shot/causal/<task>/...)")
    try:
        return ("BabyLM pipeline", read_pipeline(causal)) if causal else ("classit", _read_classit(folder))
    except (KeyError, TypeError, AttributeError) as e:
        problem = f"{type(e).__name__}: {e}"
    raise ValueError(f"{folder}: a result file is not in the expected format ({problem})")


def _option_indices(task: str, chosen: dict, data_folder: str | None) -> dict:
    """The pipeline's chosen completions (texts) as option indices, found among the options of the data
    that the classit side read (the pipeline names the target, or the whole text for full-sentence EWoK)."""
    if not data_folder or not Path(data_folder).is_dir():
        raise ValueError(f"{task}: the data folder {data_folder} (of the classit side) is needed to match "
                         "the pipeline's chosen completions to options")
    options = _numbered(load_items(task, data_folder), lambda it: it.uid)

    def index(key, text):
        item = options.get(key)
        found = [i for i, pair in enumerate(zip(item.continuations, item.texts)) if text in pair] if item else []
        return found[0] if found else text

    return {key: index(key, text) for key, text in chosen.items()}


def _differ(kind: str, x, y) -> bool:
    if kind == "reading":
        return any((p is None) != (q is None) or (p is not None and abs(p - q) > 1e-4) for p, q in zip(x, y))
    if kind in ("rho", "aoa"):
        return abs(x - y) > 1e-4
    return x != y


def _show(value) -> str:
    """An item's outcome: option index, chosen text, probability, or (surprisal, previous surprisal)."""
    if isinstance(value, tuple):
        return "/".join(_show(v) for v in value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return repr(value) if isinstance(value, str) else str(value)


def _items_report(task: str, a: TaskResult, b: TaskResult) -> list[str]:
    lines = []
    if not a.items or not b.items:
        return [f"{task}: items not compared ({'A' if not a.items else 'B'} has no prediction file)"]
    items_a, items_b, kind = a.items, b.items, TASKS[task].kind
    if kind == "choice" and a.pipeline != b.pipeline:  # a text on one side, an index on the other
        if a.pipeline:
            items_a = _option_indices(task, a.items, b.data_folder)
        else:
            items_b = _option_indices(task, b.items, a.data_folder)
    common = [k for k in items_a if k in items_b]
    if len(common) != max(len(items_a), len(items_b)):
        lines.append(f"{task}: A has {len(items_a)} items, B {len(items_b)}; {len(common)} matched")
    differ = [k for k in common if _differ(kind, items_a[k], items_b[k])]
    what = {"reading": "rows differ in surprisal (word/previous word) by more than 1e-4",
            "rho": "items differ in probability by more than 1e-4",
            "aoa": "contexts differ in surprisal by more than 1e-4"}.get(kind, "items choose a different option")
    lines.append(f"{task}: {len(differ)} of {len(common)} {what}")
    for key in differ[:LISTED]:
        where = a.where.get(key) or b.where.get(key) or ""
        lines.append(f"  {key[0]} #{key[1]}  A {_show(items_a[key])}  B {_show(items_b[key])}  {where}".rstrip())
    ties = sorted((a.ties | b.ties) & set(common))
    if ties:
        lines.append(f"{task}: {len(ties)} ties (the first option wins a tie, in classit's score as in the official "
                     "pipeline's; classit's strict score counts them wrong)")
        lines += [f"  {key[0]} #{key[1]}  A {_show(items_a[key])}  B {_show(items_b[key])}  {a.where.get(key) or b.where.get(key)}".rstrip()
                  for key in ties[:LISTED]]
    return lines


def compare(a: str, b: str) -> dict:
    """Compare two result folders task by task and subset by subset.

    Prints both numbers and their difference (beside classit's official number: its strict score, ties wrong, and
    for a tokenizer without BOS its corrected score, each text after a prepended BOS), the largest gap, the items that disagree and the ties (the first option wins, as in the pipeline).

    Args:
        a: a ``classit evaluate`` output folder or a BabyLM pipeline results tree.
        b: the same, to compare with.

    Returns:
        ``{(task, subset): (A, B, B - A)}``.
    """
    (layout_a, tasks_a), (layout_b, tasks_b) = read_results(a), read_results(b)
    for task in sorted(set(tasks_a) ^ set(tasks_b)):
        has, lacks = (a, b) if task in tasks_a else (b, a)
        raise ValueError(f"task {task!r} is in {has} but not in {lacks}")
    print(f"A: {a} ({layout_a})\nB: {b} ({layout_b})\n")
    print(f"{'task':<16} {'subset':<52} {'A':>9} {'B':>9} {'B - A':>9}")
    rows = {}
    for task in sorted(tasks_a):
        ra, rb = tasks_a[task], tasks_b[task]
        decimals = REPORT_DECIMALS if ra.pipeline or rb.pipeline else None
        for label in sorted(set(ra.numbers) | set(rb.numbers), key=lambda s: (s != "average", s)):
            x, y = ra.numbers.get(label), rb.numbers.get(label)
            diff = None if x is None or y is None else (
                round(round(y, decimals) - round(x, decimals), decimals) if decimals else y - x)
            rows[task, label] = (x, y, diff)
            show = [f"{v:9.4f}" if v is not None else f"{'-':>9}" for v in (x, y, diff)]
            print(f"{task:<16} {label:<52} {' '.join(show)}")
    gaps = {k: v for k, v in rows.items() if v[2] is not None}
    if gaps:
        (task, label), (x, y, diff) = max(gaps.items(), key=lambda kv: abs(kv[1][2]))
        print(f"\nlargest gap: {task} {label}: {diff:+.4f} (A {x:.4f}, B {y:.4f})"
              + (" (a pipeline report's two decimals)" if tasks_a[task].pipeline or tasks_b[task].pipeline else ""))
    print()
    for task in sorted(tasks_a):
        print("\n".join(_items_report(task, tasks_a[task], tasks_b[task])))
    return rows
