"""``classit submission``: the BabyLM 2025 submission file ``all_full_preds_and_fast_scores_causal.json``, built
from a results tree in the pipeline's layout as its ``evaluation_pipeline/collate_preds.py --fast`` builds it::

    RESULTS/<model>/main/zero_shot/causal/<task>/<dataset>/predictions.json   full sets (classit report --babylm)
    RESULTS/<model>/main/zero_shot/causal/AoA_word/surprisal.json             classit evaluate --run RUN --tasks aoa
    RESULTS/<model>/main/finetune/<task>/predictions.json                     classit finetune, report --babylm
    RESULTS/<model>/chck_{N}M/zero_shot/causal/...                            fast sets of each milestone (--run)

The file holds the full-set predictions as they are (``blimp``, ``blimp_supplement``, ``ewok``, ``entity_tracking``,
``wug_adj``, ``wug_past``, ``comps``, ``reading``, ``aoa``, ``glue`` with the seven fine-tuning tasks merged) and
``fast_eval_results``: per fast task, one score dict per milestone of the track, in the collator's order
(accuracy per subset as a fraction, Spearman's rho for WUG, ``spr``/``rt`` relative R² gains for reading).
Every file is checked against the collator's sizes; unlike it, a task split in subsets must have all of them.
"""

import json
from collections import defaultdict
from pathlib import Path
from typing import Literal

from classit import layout
from classit.eval.aoa import (
    RECONSTRUCTED_NOTE,
    curve_fitness,
    default_cdi,
    milestones,
)
from classit.eval.pipeline import write_minimal_pairs, write_reading
from classit.eval.tasks import AOA_SIZE, FAST, GLUE, TASKS, Sizes
from classit.files import read_csv, read_json, write_json


def _amount(expected: Sizes) -> str:
    if isinstance(expected, dict):
        return f"{sum(expected.values())} items in {len(expected)} subsets"
    return f"{expected} items in each subset"


PREDICTIONS_SHAPE = '{"SUBSET": {"predictions": [{"pred": ...}, ...]}, ...}'


def _check_shape(path: Path, results) -> None:
    """A ``predictions.json`` of the collator's shape (:data:`PREDICTIONS_SHAPE`), else one line naming the part
    that is not."""
    if not isinstance(results, dict):
        raise ValueError(f"{path}: expected {PREDICTIONS_SHAPE}, found a JSON {type(results).__name__}")
    for key, block in results.items():
        predictions = block.get("predictions") if isinstance(block, dict) else None
        if not isinstance(predictions, list) or not all(isinstance(p, dict) and "pred" in p for p in predictions):
            raise ValueError(f"{path}: expected {PREDICTIONS_SHAPE}, found {key!r}: {json.dumps(block)[:60]}")


def load_checked(path: Path, name: str, expected: Sizes, hint: str) -> dict:
    """A ``predictions.json`` (``{subset: {"predictions": [...]}}``) checked for its shape, as the collator's
    ``_check_size`` (subset names lower-cased) and for missing subsets; any fault stops in one line."""
    if not path.is_file():
        raise FileNotFoundError(f"{name}: expected {_amount(expected)}, found none (no {path}); produce it with {hint}")
    results = read_json(path)
    _check_shape(path, results)
    found = {key.lower() for key in results}
    if isinstance(expected, dict) and found != set(expected):
        missing, unknown = sorted(set(expected) - found), sorted(found - set(expected))
        raise ValueError(f"{name}: expected {_amount(expected)}, found {len(found)} subsets in {path} (missing "
                         f"{', '.join(missing[:3]) or '-'}; unknown {', '.join(unknown[:3]) or '-'}); produce it with {hint}")
    if not results:
        raise ValueError(f"{name}: expected {_amount(expected)}, found no subsets in {path}; produce it with {hint}")
    for key, block in results.items():
        size = expected[key.lower()] if isinstance(expected, dict) else expected
        if len(block["predictions"]) != size:
            raise ValueError(f"{name}: expected {size} items in {key}, found {len(block['predictions'])} in {path}; "
                             f"produce it with {hint}")
    return results


def load_aoa(path: Path, revisions: list[str], hint: str) -> dict:
    """``surprisal.json`` checked as the collator's ``_check_size_aoa``: the track's checkpoints, AOA_SIZE each."""
    expected = f"{AOA_SIZE} records for each of the {len(revisions)} checkpoints {revisions[0]} … {revisions[-1]}"
    if not path.is_file():
        raise FileNotFoundError(f"aoa: expected {expected}, found none (no {path}); produce it with {hint}")
    aoa = read_json(path)
    records = aoa.get("results") if isinstance(aoa, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) and "step" in r for r in records):
        raise ValueError(f'{path}: expected {{"results": [{{"step": ..., "target_word": ..., "surprisal": ...}}, '
                         f'...]}}, found {json.dumps(aoa)[:60]}')
    counts = defaultdict(int)
    for record in records:
        counts[record["step"]] += 1
    if set(counts) != set(revisions) or any(counts[r] != AOA_SIZE for r in revisions):
        found = ", ".join(f"{n} for {r}" for r, n in list(counts.items())[:3]) + (", …" if len(counts) > 3 else "")
        raise ValueError(f"aoa: expected {expected}, found {len(counts)} checkpoints ({found or 'no records'}) in "
                         f"{path}; produce it with {hint}")
    return aoa


def leaderboard(submission: dict, full: Path, cdi_human: Path | None = None) -> dict[str, float | str]:
    """The full-set scores the pipeline's ``calculate_results_from_pred.py`` computes from the submission file:
    the mean over subsets of accuracy (%), Spearman's rho x100 for WUG, the reading gains (%), GLUE's mean
    accuracy (%) and the AoA curve fitness r; a task whose data is absent gets the reason instead."""
    scores = {}
    for task in (*TASKS.values(), GLUE):
        if task.kind == "aoa":
            continue  # scored from the children's CDI table, last (as the leaderboard prints it)
        if not (full / task.full).is_dir():
            scores[task.label] = f"no data in {full / task.full}"
            continue
        values = task.scorer(submission[task.official], full / task.full)
        if task.kind == "reading":
            scores[f"{task.label} (SPR)"], scores[f"{task.label} (ET)"] = values["spr"] * 100, values["rt"] * 100
        else:
            scores[task.label] = sum(v * 100 for v in values.values()) / len(values)
    cdi_human, aoa = cdi_human or default_cdi(full), TASKS["aoa"]
    scores[aoa.label] = (curve_fitness(submission[aoa.official]["results"], read_csv(cdi_human))["curve_fitness"]
                         if cdi_human.is_file() else f"no CDI table {cdi_human}")
    return scores


def _data_roots(fast_data: str | None, data_dir: str | None) -> tuple[Path, Path]:
    from classit.data import store

    root = None if fast_data and data_dir else store.data_dir()
    return (Path(fast_data) if fast_data else layout.eval_dir(root, fast=True),
            Path(data_dir) if data_dir else layout.eval_dir(root))


def data_folder(name: str, fast: Path, full: Path) -> Path:
    """A fast set's data folder: in the fast sets, else (WUG, reading: the same data) in the full sets."""
    for root in (fast, full):
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f"{fast / name}: no such fast evaluation data (nor {full / name})")


def fast_scores(model_dir: Path, revisions: list[str], fast: Path, full: Path, hint: str) -> dict:
    """``fast_eval_results``: per fast task, the scores of each revision's fast predictions, in revision order."""
    scores = {task.official: [] for task in FAST.values()}
    for revision in revisions:
        causal = layout.causal_dir(model_dir / revision)
        for task in FAST.values():
            results = load_checked(layout.official_predictions(causal / task.results_folder(fast=True)),
                                   f"{task.official} (fast, {revision})", task.fast_sizes, hint)
            scores[task.official].append(task.scorer(results, data_folder(task.fast, fast, full)))
    return scores


def collate(results: str | Path, model: str, track: str = "strict", fast_data: str | None = None,
            data_dir: str | None = None) -> dict:
    """The submission's contents, in the collator's key order, every file checked first."""
    model_dir = Path(results) / model
    main, revisions = model_dir / layout.FINAL_REVISION, layout.COLLATOR_REVISIONS[track]
    causal = layout.causal_dir(main)
    report = f"`classit report EVAL/{model} --out REPORT --babylm {results}`"
    submission = {}
    for task in TASKS.values():
        if task.kind == "aoa":
            submission[task.official] = load_aoa(layout.surprisal_file(layout.aoa_dir(causal)), revisions,
                                                 f"`classit evaluate --run RUN --tasks {task.name} --out {causal}` "
                                                 f"over a run with the {track} milestones")
            continue
        hint = f"`classit evaluate --model MODEL --tasks {task.name} --out EVAL/{model}/zero_shot`, then {report}"
        submission[task.official] = load_checked(layout.official_predictions(causal / task.results_folder(fast=False)),
                                                 task.official, task.sizes, hint)
    submission[GLUE.official] = {}
    for task, size in GLUE.sizes.items():
        hint = f"`classit finetune --model MODEL --tasks {task} --out EVAL/{model}/finetune`, then {report}"
        submission[GLUE.official] |= load_checked(layout.official_predictions(layout.finetune_dir(main) / task), task,
                                                  size, hint)
    fast, full = _data_roots(fast_data, data_dir)
    hint = f"`classit submission --run RUN --results {results} --model {model}` (the fast sets of each milestone)"
    submission["fast_eval_results"] = fast_scores(model_dir, revisions, fast, full, hint)
    return submission


def on_track(run: Path, track: str) -> list[layout.Milestone]:
    """The run's milestones that the track's submission uses; those it will not use are named first, and a run
    with none of the track's stops in one line."""
    found, wanted = milestones(run), layout.COLLATOR_REVISIONS[track]
    used = [m for m in found if m.name in wanted]
    unused = [m.name for m in found if m.name not in wanted]
    if not used:
        raise ValueError(f"--run {run}: none of its milestones ({', '.join(unused)}) is one of the {track} track's "
                         f"milestones ({', '.join(wanted)})")
    print(f"--run {run}: scoring {', '.join(m.name for m in used)}" +
          (f"; not on the {track} track, left out: {', '.join(unused)}" if unused else ""))
    return used


def score_milestones(run: str | Path, results: str | Path, model: str, fast_data: str | None = None,
                     data_dir: str | None = None, batch_size: int = 64, device: str = "auto",
                     track: str = "strict") -> list[str]:
    """Score each ``RUN/milestones/chck_{N}M`` of the track on the fast sets with ``classit evaluate`` (its
    outputs in ``RESULTS/<model>/<revision>/classit/``) and write them in the pipeline's layout below
    ``RESULTS/<model>/<revision>/zero_shot/causal``; a revision with all its fast predictions is kept as it is.
    Returns the revisions scored."""
    from classit.eval.evaluate import evaluate

    used = on_track(Path(run), track)
    fast, full = _data_roots(fast_data, data_dir)
    roots = defaultdict(list)  # data root → the classit tasks read from it
    for task in FAST.values():
        roots[data_folder(task.fast, fast, full).parent].append(task.name)
    scored = []
    for revision, _, path in used:
        causal = layout.causal_dir(Path(results) / model / revision)
        if all(layout.official_predictions(causal / task.results_folder(fast=True)).is_file() for task in FAST.values()):
            print(f"{revision}: fast predictions already in {causal}, kept")
            continue
        for root, tasks in roots.items():
            out = Path(results) / model / revision / "classit" / ("fast" if root == fast else "full")
            summary = evaluate(model=str(path), data_dir=str(root), tasks=",".join(tasks), out=str(out),
                               batch_size=batch_size, device=device)
            for task in tasks:
                if TASKS[task].kind == "reading":
                    write_reading(out, summary, causal)
                else:
                    write_minimal_pairs(out, summary, task, causal)
        scored.append(revision)
    return scored


def _check_out(path: Path) -> None:
    """The submission file can be written at ``path``: not a folder, not below a file (checked before any work)."""
    if path.is_dir():
        raise ValueError(f"--out {path}: is a folder; name the file to write (e.g. {path / layout.SUBMISSION})")
    parent = next(p for p in path.parents if p.exists())
    if not parent.is_dir():
        raise ValueError(f"--out {path}: {parent} is a file, not a folder")


def submission_command(*, results: str, model: str, out: str | None = None,
                       track: Literal["strict", "strict-small"] = "strict", run: str | None = None,
                       fast_data: str | None = None, data_dir: str | None = None, cdi_human: str | None = None,
                       batch_size: int = 64, device: str = "auto") -> str:
    """Write the BabyLM 2025 submission file from a results tree in the official pipeline's layout.

    The tree is what ``classit report --babylm`` writes; the file is built as the pipeline's ``collate_preds.py
    --fast`` does; a missing or wrongly sized task stops in one line.

    Args:
        results: the results tree (``RESULTS/<model>/<revision>/...``).
        model: the model's folder in it.
        out: the file to write; default ``RESULTS/<model>/all_full_preds_and_fast_scores_causal.json``.
        track: ``strict`` (milestones chck_1M … chck_1000M) or ``strict-small`` (… chck_100M).
        run: first score the fast sets on every milestone of this run folder (``milestones/chck_{N}M``).
        fast_data: the fast sets (``blimp_fast``, ...); default ``$CLASSIT_DATA_DIR/babylm-eval-fast``.
        data_dir: the full sets, read for WUG and reading when ``fast_data`` lacks them; default
            ``$CLASSIT_DATA_DIR/babylm-eval``.
        cdi_human: the children's CDI table for the AoA score; default ``DATA_DIR/aoa/cdi_human.csv``, else
            ``aoa/cdi_human_reconstructed.csv`` (not the official ages).
        batch_size: texts per forward pass (``--run``).
        device: ``auto``, ``cpu``, ``cuda``... (``--run``).
    """
    path = Path(out) if out else Path(results) / model / layout.SUBMISSION
    _check_out(path)
    if run:
        score_milestones(run, results, model, fast_data, data_dir, batch_size, device, track)
    submission = collate(results, model, track, fast_data, data_dir)
    write_json(submission, path)
    print(f"submission: {path} ({track} track, {len(layout.COLLATOR_REVISIONS[track])} milestones)")
    print("the leaderboard's scores of it (calculate_results_from_pred.py's rules, full sets):")
    full = _data_roots(fast_data, data_dir)[1]
    cdi = Path(cdi_human) if cdi_human else default_cdi(full)
    for label, score in leaderboard(submission, full, cdi).items():
        print(f"  {label:<16} {score:.2f}" if isinstance(score, float) else f"  {label:<16} – ({score})")
    if "reconstructed" in cdi.name:
        print(f"  AoA: {RECONSTRUCTED_NOTE}")
    return str(path)
