"""``classit evaluate``: the BabyLM zero-shot suite on a Hugging Face folder or a Lightning checkpoint, and word
age of acquisition over a run's milestone checkpoints."""

import time
from pathlib import Path
from typing import Literal

import torch

from classit import layout
from classit.data import store
from classit.data.tokenizer import adds_bos
from classit.eval.aoa import aoa_milestones, load_words, score_run
from classit.eval.reading import evaluate_reading, load_reading
from classit.eval.scoring import correction_token
from classit.eval.summary import read_summary, write_summary
from classit.eval.tasks import TASKS
from classit.eval.zero_shot import evaluate_task
from classit.files import read_json, write_json, write_jsonl
from classit.runtime import resolve_device


def _detail(task: str, summary: dict) -> str:
    if "skipped" in summary:
        return summary["skipped"]
    kind = TASKS[task].kind
    if kind == "reading":
        return f"eye-tracking {summary['eye_tracking']:.4f}  self-paced {summary['self_paced']:.4f}  ({summary['rule']} rule)"
    if kind == "rho":
        return f"Spearman rho {summary['rho'] / 100:.4f}"
    if kind == "aoa":
        return (f"r {summary['curve_fitness']:.4f} over {summary['n_words']} words  "
                f"(corrected r {summary['corrected']['curve_fitness']:.4f})")
    beside = next((f"  ({name} macro {summary[name]['macro']:.2f}%)" for name in ("corrected", "official")
                   if name in summary), "")
    return (f"macro {summary['macro']:.2f}%  strict {summary['strict']['macro']:.2f}%  ties {summary['ties']}"
            f"{beside}")


def no_bos_note(tokenizer) -> str:
    """The line that says how a tokenizer without BOS is scored."""
    token = correction_token(tokenizer)
    corrected = (f"the corrected score, each text after a prepended {tokenizer.convert_ids_to_tokens(token)}, stands "
                 "beside it in summary.json as `corrected` (--headline corrected makes it the headline)"
                 if token is not None else "it has neither a BOS nor an EOS token to prepend: no corrected score")
    return (f"tokenizer adds no BOS: the first token of each text is not scored, as in the official pipeline; "
            f"{corrected}; reading scores each word after its context, as the official pipeline does")


def with_headline(summary: dict, headline: str) -> dict:
    """A task's summary with the ``corrected`` numbers as its headline, the official ones under ``official``."""
    if headline == "official" or "corrected" not in summary:
        return summary
    official = {k: v for k, v in summary.items() if k != "corrected"}
    return {**summary["corrected"], "headline": "corrected", "official": official}


def default_data_dir() -> Path:
    """The data folder's ``babylm-eval``, or its ``babylm-eval-fast`` where only the fast sets are there (the bundled
    sample), saying so."""
    root = store.data_dir()
    full, fast = layout.eval_dir(root), layout.eval_dir(root, fast=True)
    if full.is_dir() or not fast.is_dir():
        return full
    print(f"data: no {full.name} in {root}: scoring the fast sets of {fast}")
    return fast


def _earlier_results(out_dir: Path, scored: dict[str, str]) -> tuple[dict[str, dict], dict]:
    """``(tasks, meta)``: the tasks an earlier ``classit evaluate`` wrote into ``out_dir``, kept beside this call's,
    and its ``meta.json`` with what this call scores (``scored``: model, run, data_dir). Results of another model,
    run or data folder there, or of one not recorded, stop in one line naming the folder."""
    summary_path, meta_path = layout.summary_file(out_dir), layout.meta_file(out_dir)
    meta = read_json(meta_path) if meta_path.is_file() else {}
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}: expected a JSON object")
    recorded = {**meta, **{key: str(Path(value).resolve()) for key, value in scored.items()}}
    if not summary_path.is_file():
        return {}, recorded
    earlier = read_summary(summary_path)
    if earlier.kind != "zero_shot":
        raise ValueError(f"{out_dir} (--out): holds classit {earlier.kind} results; give evaluate another folder")
    if not meta.get("model") and not meta.get("run"):
        raise ValueError(f"{out_dir} (--out): holds results of a model no {meta_path.name} there names; "
                         "give another folder")
    differ = [key for key in scored if meta.get(key) and Path(meta[key]).resolve() != Path(recorded[key])]
    if differ:
        there = ", ".join(f"{key} {meta[key]}" for key in differ)
        raise ValueError(f"{out_dir} (--out): holds the results of {there} ({meta_path.name}), not of "
                         f"{', '.join(f'{key} {scored[key]}' for key in differ)}; give another folder")
    return earlier.tasks, recorded


def evaluate(*, model: str | None = None, run: str | None = None, data_dir: str | None = None, tasks: str | None = None,
             out: str = "eval_results", batch_size: int = 64, device: str = "auto", full_sentence_ewok: bool = False,
             reading_rule: Literal["official", "ids"] = "official", cdi_human: str | None = None,
             aoa_rule: Literal["official", "nospace"] = "official",
             headline: Literal["official", "corrected"] = "official", trust_remote_code: bool = False) -> dict:
    """Score a model on the BabyLM zero-shot tasks, as the BabyLM 2025 pipeline does.

    Scores as the pipeline's causal backend (a tie goes to the first option, the correct one, as the leaderboard
    counts it; ``strict`` counts it wrong); writes ``OUT/summary.json`` and
    ``OUT/predictions/TASK.jsonl``. The ``aoa`` task scores a run's milestone checkpoints instead (``OUT/AoA_word/``,
    see :func:`classit.eval.aoa.score_run`).

    Args:
        model: a Hugging Face folder or a classit Lightning checkpoint (``.ckpt``).
        run: a run folder with ``milestones/chck_{N}M`` checkpoints (``lightning_logs/NAME/version_0``): the aoa task.
        data_dir: a folder laid out like BabyLM's ``evaluation_data/full_eval`` (fast-set folder names
            work too); default ``$CLASSIT_DATA_DIR/babylm-eval``, or its ``babylm-eval-fast`` where only that is
            there (the bundled sample's fast BLiMP and EWoK without a data folder). Tasks without a folder are
            skipped (if none has one, it stops).
        tasks: comma-separated subset of blimp, supplement, ewok, entity_tracking, wug, wug_past, comps, reading,
            aoa; default all but aoa with ``--model``, and aoa with ``--run``.
        out: output folder; the results an earlier call wrote there are kept beside this call's when they are of
            the same model (or run) and data folder, which ``OUT/meta.json`` records; another's stop it.
        batch_size: texts per forward pass.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``...
        full_sentence_ewok: score EWoK's whole texts instead of the targets only.
        reading_rule: how a word of several tokens is scored. ``official``: as the BabyLM pipeline does,
            each further token after the context string extended by the decoded previous tokens and
            tokenized again; ``ids``: the conditional product over the concatenated token ids.
        cdi_human: the aoa task's CDI table of children; default ``DATA_DIR/aoa/cdi_human.csv``, else
            ``aoa/cdi_human_reconstructed.csv`` (noted in the summary: not the official ages).
        aoa_rule: ``official`` (the word after the context and a space, as the BabyLM pipeline) or ``nospace``.
        headline: ``official``; ``corrected``: for a tokenizer that adds no BOS, the scores with BOS (or EOS)
            prepended become each zero-shot task's headline, the official ones kept under ``official``.
        trust_remote_code: run the modelling code a model folder brings (``auto_map`` in its config.json), as the
            official pipeline always does.

    Returns:
        The summary: per task its macro score, per-subset and per-group accuracies, the strict macro and per-subset
        accuracies (ties wrong), tie count
        (WUG: Spearman rho x100; reading: eye-tracking and self-paced reading scores and the rule used).
    """
    from classit.export import load_pretrained

    if tasks:
        names = [t.strip() for t in tasks.split(",") if t.strip()]
    else:  # a model's tasks with --model, the run's (AoA) with --run
        names = [name for name, task in TASKS.items() if (run if task.kind == "aoa" else model)]
    unknown = sorted(set(names) - set(TASKS))
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from {', '.join(TASKS)}")
    run_tasks = list(dict.fromkeys(t for t in names if TASKS[t].kind == "aoa"))  # scored over a run's checkpoints
    if run_tasks and not run:
        raise ValueError("--tasks aoa needs --run RUN_DIR, a run folder with milestones/chck_{N}M checkpoints")
    if run and not run_tasks:
        raise ValueError("--run is read by the aoa task only; add aoa to --tasks")
    model_tasks = [t for t in names if t not in run_tasks]
    if not names:
        raise ValueError("nothing to evaluate: give --model (the zero-shot tasks) or --run (the aoa task)")
    if model_tasks and not model:
        raise ValueError(f"--tasks {','.join(model_tasks)} need --model (a Hugging Face folder or .ckpt)")
    if model and Path(model).is_file() and Path(model).suffix != ".ckpt":  # model.safetensors, config.json...
        raise ValueError(f"{model} (--model): a file, not a model; --model takes a Hugging Face folder (an export: "
                         "config.json, weights and tokenizer) or a Lightning checkpoint (.ckpt)")
    if batch_size < 1:
        raise ValueError(f"--batch_size: texts per forward pass, at least 1, not {batch_size}")
    root = Path(data_dir) if data_dir else default_data_dir()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such data folder")
    if run:  # no checkpoints or no word file: stop before scoring anything
        aoa_milestones(Path(run))
        load_words(layout.cdi_words(root))
    folders = {task: TASKS[task].find(root) for task in model_tasks}
    wanted = {task: TASKS[task].wanted() for task in model_tasks}
    if model_tasks and not any(folders.values()):
        raise FileNotFoundError(f"{root}: no data for any of the tasks {', '.join(model_tasks)} (looked for "
                                f"{'; '.join(wanted.values())})")
    if folders.get("reading"):  # its columns checked before any task is scored
        load_reading(folders["reading"])
    out_dir = store.output_folder(out, "--out")
    # what the tasks kept together share: the model and the sets of its tasks, the run of the aoa task (the aoa
    # task's data may lie elsewhere: it replaces only its own results)
    scored = {**({"model": model, "data_dir": root} if model_tasks else {}), **({"run": run} if run else {})}
    earlier, meta = _earlier_results(out_dir, scored)
    device = resolve_device(device)
    if model_tasks:
        print(f"data: {root}: " + ", ".join(f"{task} ({folder.name})" for task, folder in folders.items() if folder))
        hf_model, tokenizer = load_pretrained(model, trust_remote_code)
        if not adds_bos(tokenizer):
            print(no_bos_note(tokenizer))
        hf_model.to(device=device, dtype=torch.float32).eval()
        layout.predictions_dir(out_dir).mkdir(parents=True, exist_ok=True)

    summary = {task: result for task, result in earlier.items() if task not in names}
    if summary:
        print(f"{out_dir}: keeping its earlier results of {', '.join(summary)}")
    for task, folder in folders.items():
        if folder is None:
            summary[task] = {"skipped": f"no {wanted[task]} in {root}"}
            print(f"{task}: skipped ({summary[task]['skipped']})")
            continue
        start = time.perf_counter()
        if task == "reading":
            result, records = evaluate_reading(hf_model, tokenizer, folder, batch_size, reading_rule)
        else:
            result, records = evaluate_task(hf_model, tokenizer, task, folder, batch_size,
                                            full_sentence=full_sentence_ewok, progress=True)
        result = with_headline(result, headline)
        summary[task] = {**result, "folder": str(folder), "seconds": round(time.perf_counter() - start, 2)}
        write_jsonl(records, layout.predictions_file(out_dir, task))
        print(f"{task}: {_detail(task, summary[task])}  ({summary[task]['seconds']:.1f}s)")
    for task in run_tasks:
        summary[task] = score_run(run, out_dir, root, cdi_human, aoa_rule, batch_size, str(device))

    write_summary(layout.summary_file(out_dir), "zero_shot", summary)
    write_json(meta, layout.meta_file(out_dir), indent=1)
    print(f"\n{'task':<16} {'items':>6}  result")
    for task, s in summary.items():
        print(f"{task:<16} {s.get('items', '-'):>6}  {_detail(task, s)}")
        for key, value in s.get(TASKS[task].breakdown or "", {}).items():
            print(f"{'':<24}  {key:<28} {value:6.2f}")
    print(f"\nsummary: {layout.summary_file(out_dir)}")
    return summary
