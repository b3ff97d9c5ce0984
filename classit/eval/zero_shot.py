"""BLiMP, the BLiMP supplement, EWoK, entity tracking, WUG (adjective nominalization and past tense) and COMPS:
read the JSONL sets, score them with :mod:`classit.eval.scoring`, aggregate as the BabyLM 2025 pipeline does (ties
count as wrong)."""

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from scipy.stats import spearmanr

from classit.eval.scoring import Encoded, encode, score_items
from classit.files import iter_jsonl

# Task → folder names in a BabyLM evaluation_data folder (full set first, then the fast set).
FOLDERS = {
    "blimp": ("blimp_filtered", "blimp_fast"),
    "supplement": ("supplement_filtered", "supplement_fast"),
    "ewok": ("ewok_filtered", "ewok_fast"),
    "entity_tracking": ("entity_tracking", "entity_tracking_fast"),
    "wug": ("wug_adj_nominalization",),
    "wug_past": ("wug_past_tense",),
    "comps": ("comps",),
}
# Tasks scored as Spearman's rho (x100) of the model's probability of option 0 against the human ratio.
RHO = ("wug", "wug_past")
# A WUG item's subset: the pipeline's task name (its UID).
WUG_UID = {"wug": "wug_adj", "wug_past": "wug_past"}
# COMPS file → subset, as the pipeline's decode_comps names them (any other file: wugs_dist_in_between).
COMPS_SUBSETS = {"comps_base": "base", "comps_wugs": "wugs", "comps_wugs_dist-before": "wugs_dist_before"}
# Item-level groups reported besides the subset (UID) accuracies, as the pipeline names them.
GROUPS = {
    "blimp": ("field", "linguistics_term"),
    "ewok": ("context_type", "context_contrast", "target_contrast"),
}
# The breakdown shown in tables and logged during training next to the macro score.
BREAKDOWN = {"blimp": "by_field", "supplement": "by_uid", "ewok": "by_uid", "entity_tracking": "by_file", "comps": "by_uid"}


@dataclass
class Item:
    """One evaluation item: its options (option 0 is correct), their continuations and its subsets."""

    uid: str
    texts: list[str]
    continuations: list[str]
    source: str
    groups: dict[str, str] = field(default_factory=dict)
    ratio: float | None = None


def find_folder(data_dir: str | Path, task: str) -> Path | None:
    """The task's folder under ``data_dir`` (full or fast set), or None when absent."""
    for name in FOLDERS[task]:
        if (Path(data_dir) / name).is_dir():
            return Path(data_dir) / name
    return None


def _decode(task: str, path: Path, r: dict, source: str, full_sentence: bool) -> Item:
    if task in ("blimp", "supplement"):
        good, bad = r["sentence_good"], r["sentence_bad"]
        groups = {}
        if task == "blimp":
            groups = {"field": r["field"].replace("syntax_semantics", "syntax/semantics"),
                      "linguistics_term": r["linguistics_term"]}
        return Item(r["UID"] if task == "blimp" else path.stem, [good, bad], [good, bad], source, groups)
    if task == "ewok":
        texts = [f"{r['Context1']} {r['Target1']}", f"{r['Context1']} {r['Target2']}"]
        conts = texts if full_sentence else [" " + r["Target1"], " " + r["Target2"]]
        groups = {"context_type": r["ContextType"], "context_contrast": r["ContextDiff"],
                  "target_contrast": r["TargetDiff"]}
        return Item(r["Domain"], texts, conts, source, groups)
    if task == "entity_tracking":
        options = r["options"]
        return Item(f"{path.stem}_{r['numops']}_ops", [r["input_prefix"] + o for o in options], list(options), source)
    if task == "comps":  # the property phrase scored after the acceptable and the unacceptable concept
        phrase = r["property_phrase"]
        texts = [f"{r['prefix_acceptable']} {phrase}", f"{r['prefix_unacceptable']} {phrase}"]
        return Item(COMPS_SUBSETS.get(path.stem, "wugs_dist_in_between"), texts, [phrase, phrase], source)
    texts = r["sentences"].split("\t")  # the forms, the first the one whose share of human answers is the ratio
    if len(texts) < 2:
        raise ValueError(f"{source}: 'sentences' must hold two or more texts separated by a TAB")
    return Item(WUG_UID[task], texts, texts, source, ratio=float(r["ratio"]))


def load_items(task: str, folder: str | Path, full_sentence: bool = False) -> list[Item]:
    """All items of a task folder, files in name order; ``full_sentence`` scores EWoK's whole texts."""
    items = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        for source, record in iter_jsonl(path):
            try:
                items.append(_decode(task, path, record, source, full_sentence))
            except KeyError as e:
                raise ValueError(f"{source}: missing field {e.args[0]!r}") from None
            except (TypeError, AttributeError) as e:
                raise ValueError(f"{source}: bad field value ({e})") from None
    if not items:
        raise ValueError(f"{folder}: no JSONL items found")
    return items


def encode_items(tokenizer, items: list[Item]) -> list[list[Encoded]]:
    """Every option of every item tokenized once (one batched tokenizer call)."""
    flat = encode(tokenizer, [t for it in items for t in it.texts], [c for it in items for c in it.continuations])
    out, i = [], 0
    for it in items:
        out.append(flat[i:i + len(it.texts)])
        i += len(it.texts)
    return out


def outcome(scores: list[float]) -> tuple[bool, bool]:
    """(correct, tie): correct only when option 0 beats every other option strictly."""
    best = max(scores)
    return scores[0] == best and scores.count(best) == 1, scores.count(best) > 1


def _mean_by(items: list[Item], values: list[float], key) -> dict[str, float]:
    groups = defaultdict(list)
    for item, value in zip(items, values):
        groups[key(item)].append(value)
    return {k: 100.0 * sum(v) / len(v) for k, v in sorted(groups.items())}


def summarize(task: str, items: list[Item], scores: list[list[float]]) -> dict:
    """Macro accuracy over subsets, accuracy per subset and per group, tie count (WUG: Spearman rho × 100)."""
    if task in RHO:
        probs = [torch.tensor(s).softmax(0)[0].item() for s in scores]
        rho = 100.0 * spearmanr(probs, [it.ratio for it in items])[0]
        return {"macro": rho, "rho": rho, "by_uid": {items[0].uid: rho}, "items": len(items)}
    results = [outcome(s) for s in scores]
    correct = [float(c) for c, _ in results]
    summary = {"by_uid": _mean_by(items, correct, lambda it: it.uid)}
    for group in GROUPS.get(task, ()):
        summary[f"by_{group}"] = _mean_by(items, correct, lambda it: it.groups[group])
    if task == "entity_tracking":  # subsets ({file}_{numops}_ops) averaged within each file, then over files
        files = defaultdict(list)
        for uid, acc in summary["by_uid"].items():
            files[uid.rsplit("_", 2)[0]].append(acc)
        summary["by_file"] = {f: statistics.mean(v) for f, v in sorted(files.items())}
    summary["macro"] = statistics.mean((summary["by_file"] if task == "entity_tracking" else summary["by_uid"]).values())
    summary.update(ties=sum(t for _, t in results), items=len(items))
    return summary


def predictions(task: str, items: list[Item], scores: list[list[float]]) -> list[dict]:
    """One record per item: its subset, source line, option scores and outcome."""
    records = []
    for item, s in zip(items, scores):
        record = {"uid": item.uid, "source": item.source, "scores": s, "pred": s.index(max(s))}
        if task in RHO:
            record["prob"] = torch.tensor(s).softmax(0)[0].item()
        else:
            record["correct"], record["tie"] = outcome(s)
        records.append(record)
    return records


def evaluate_task(model, tokenizer, task: str, folder: str | Path, batch_size: int = 64, full_sentence: bool = False,
                  progress: bool = False) -> tuple[dict, list[dict]]:
    """Load, score and summarize one task folder: ``(summary, predictions)``."""
    items = load_items(task, folder, full_sentence)
    scores = score_items(model, encode_items(tokenizer, items), batch_size, progress)
    return summarize(task, items, scores), predictions(task, items, scores)
