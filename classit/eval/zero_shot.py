"""BLiMP, the BLiMP supplement, EWoK, entity tracking, WUG (adjective nominalization and past tense) and COMPS:
read the JSONL sets, score them with :mod:`classit.eval.scoring`, aggregate as the BabyLM 2025 pipeline does (a tie
goes to the first option, the correct one; the strict score, ties wrong, beside it); each task's decoding and
aggregation are its spec in :mod:`classit.eval.tasks`."""

import json
import statistics
from collections import defaultdict
from pathlib import Path

import torch
from scipy.stats import spearmanr

from classit.data.tokenizer import adds_bos, tokenizer_fingerprint
from classit.eval.scoring import Encoded, correction_token, encode, model_positions, overrun, score_items
from classit.eval.tasks import TASKS, Item
from classit.files import iter_jsonl


def load_items(task: str, folder: str | Path, full_sentence: bool = False) -> list[Item]:
    """All items of a task folder, files in name order; ``full_sentence`` scores EWoK's whole texts."""
    items, decode = [], TASKS[task].decode
    for path in sorted(Path(folder).glob("*.jsonl")):
        for source, record in iter_jsonl(path):
            try:
                items.append(decode(path, record, source, full_sentence))
            except KeyError as e:
                raise ValueError(f"{source}: missing field {e.args[0]!r}") from None
            except (TypeError, AttributeError) as e:
                raise ValueError(f"{source}: bad field value ({e})") from None
    if not items:
        raise ValueError(f"{folder}: no JSONL items found")
    return items


def encode_items(tokenizer, items: list[Item], prepend: int | None = None) -> list[list[Encoded]]:
    """Every option of every item tokenized once (one batched tokenizer call); ``prepend``: a token id put first."""
    flat = encode(tokenizer, [t for it in items for t in it.texts], [c for it in items for c in it.continuations],
                  prepend=prepend)
    out, i = [], 0
    for it in items:
        out.append(flat[i:i + len(it.texts)])
        i += len(it.texts)
    return out


KEPT_SETS = 16  # the task sets one process keeps tokenized
_encoded: dict[tuple, tuple[list[Item], list[list[Encoded]]]] = {}


def encoded_items(tokenizer, task: str, folder: str | Path, full_sentence: bool = False
                  ) -> tuple[list[Item], list[list[Encoded]]]:
    """A task folder's items and their encodings (:func:`load_items`, :func:`encode_items`), kept in the process
    while the tokenizer (its definition and settings, wherever it was loaded from) and the folder's files are the
    same: scoring several checkpoints of one run (``classit dynamics``) reads and tokenizes each set once."""
    if not hasattr(tokenizer, "backend_tokenizer"):  # no definition to compare
        items = load_items(task, folder, full_sentence)
        return items, encode_items(tokenizer, items)
    files = sorted(Path(folder).glob("*.jsonl"))
    settings = json.dumps({k: str(v) for k, v in tokenizer.init_kwargs.items() if k != "name_or_path"},
                          sort_keys=True)
    key = (type(tokenizer).__name__, tokenizer_fingerprint(tokenizer), settings, task, full_sentence,
           tuple((str(f), str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files))  # items name f
    if key not in _encoded:
        items = load_items(task, folder, full_sentence)
        if len(_encoded) >= KEPT_SETS:
            _encoded.pop(next(iter(_encoded)))
        _encoded[key] = items, encode_items(tokenizer, items)
    return _encoded[key]


def outcome(scores: list[float]) -> tuple[bool, bool]:
    """(correct, tie) as the official pipeline decides: the first of the best options is chosen (``torch.max``), so
    option 0 is correct when no option scores higher, a tie included; ``tie``: the best score is shared."""
    best = max(scores)
    return scores[0] == best, scores.count(best) > 1


def _mean_by(items: list[Item], values: list[float], key) -> dict[str, float]:
    groups = defaultdict(list)
    for item, value in zip(items, values):
        groups[key(item)].append(value)
    return {k: 100.0 * sum(v) / len(v) for k, v in sorted(groups.items())}


def _accuracies(task: str, items: list[Item], correct: list[float]) -> dict:
    """Accuracy per subset and per group, and the macro average over subsets (entity tracking: over files)."""
    spec = TASKS[task]
    summary = {"by_uid": _mean_by(items, correct, lambda it: it.uid)}
    for group in spec.groups:
        summary[f"by_{group}"] = _mean_by(items, correct, lambda it: it.groups[group])
    if spec.aggregate == "files":  # subsets ({file}_{numops}_ops) averaged within each file, then over files
        files = defaultdict(list)
        for uid, acc in summary["by_uid"].items():
            files[uid.rsplit("_", 2)[0]].append(acc)
        summary["by_file"] = {f: statistics.mean(v) for f, v in sorted(files.items())}
    summary["macro"] = statistics.mean((summary["by_file"] if spec.aggregate == "files" else summary["by_uid"]).values())
    return summary


def summarize(task: str, items: list[Item], scores: list[list[float]]) -> dict:
    """The official accuracies (a tie counts right, as the leaderboard counts it), ``strict`` (macro and per subset,
    a tie counts wrong) and the number of ``ties`` (WUG: Spearman rho × 100)."""
    if TASKS[task].kind == "rho":
        probs = [torch.tensor(s).softmax(0)[0].item() for s in scores]
        rho = 100.0 * spearmanr(probs, [it.ratio for it in items])[0]
        return {"macro": rho, "rho": rho, "by_uid": {items[0].uid: rho}, "items": len(items)}
    results = [outcome(s) for s in scores]
    summary = _accuracies(task, items, [float(c) for c, _ in results])
    strict = _accuracies(task, items, [float(c and not t) for c, t in results])
    summary.update(strict={"macro": strict["macro"], "by_uid": strict["by_uid"]}, ties=sum(t for _, t in results),
                   items=len(items))
    return summary


def predictions(task: str, items: list[Item], scores: list[list[float]]) -> list[dict]:
    """One record per item: its subset, source line, option scores and outcome."""
    records = []
    for item, s in zip(items, scores):
        record = {"uid": item.uid, "source": item.source, "scores": s, "pred": s.index(max(s))}
        if TASKS[task].kind == "rho":
            record["prob"] = torch.tensor(s).softmax(0)[0].item()
        else:
            record["correct"], record["tie"] = outcome(s)
        records.append(record)
    return records


def check_length(config, items: list[Item], encoded: list[list[Encoded]]) -> None:
    """Items whose model input (its tokens but the last) is longer than the model's positions (``n_positions`` or
    ``max_position_embeddings``): :func:`classit.eval.scoring.overrun` (no score with learned positions, a rotary
    model scored past them)."""
    if (positions := model_positions(config)) is None:
        return
    longer = [(item, n) for item, options in zip(items, encoded)
              if (n := max(len(o.ids) - 1 for o in options)) > positions[1]]
    if longer:
        item, longest = longer[0]
        overrun(config, f"{item.source}: {longest} tokens", len(longer), "every text", "this task", "such items")


def evaluate_task(model, tokenizer, task: str, folder: str | Path, batch_size: int = 64, full_sentence: bool = False,
                  progress: bool = False) -> tuple[dict, list[dict]]:
    """Load, score and summarize one task folder: ``(summary, predictions)``. A tokenizer that adds no BOS is scored
    as the official pipeline does (its first token unscored), and again with :func:`correction_token` prepended:
    that summary under ``corrected``, each item's scores under ``corrected_scores``."""
    items, encoded = encoded_items(tokenizer, task, folder, full_sentence)
    check_length(model.config, items, encoded)
    scores = score_items(model, encoded, batch_size, progress)
    summary, records = summarize(task, items, scores), predictions(task, items, scores)
    token = None if adds_bos(tokenizer) else correction_token(tokenizer)
    if token is not None:
        corrected = score_items(model, encode_items(tokenizer, items, prepend=token), batch_size, progress)
        summary["corrected"] = {"rule": f"each text after a prepended {tokenizer.convert_ids_to_tokens(token)}, so "
                                        "its first token is scored too", **summarize(task, items, corrected)}
        for record, s in zip(records, corrected):
            record["corrected_scores"] = s
    return summary, records
