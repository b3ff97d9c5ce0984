"""``summary.json``, what ``classit evaluate`` (kind ``zero_shot``) and ``classit finetune`` (kind ``finetune``) write:
written with its kind, read by one reader. A summary written before the kind was recorded is recognised here, once,
by its contents."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from classit.files import read_json, write_json

Kind = Literal["zero_shot", "finetune"]
KINDS = ("zero_shot", "finetune")


@dataclass(frozen=True)
class Summary:
    """One summary.json: its kind, each task's numbers (or ``{"skipped": why}``) and the rest (fine-tuning: the
    GLUE averages ``glue_score``, ``glue_accuracy``, ``glue_tasks``)."""

    kind: Kind
    tasks: dict[str, dict]
    totals: dict = field(default_factory=dict)


def write_summary(path: Path, kind: Kind, summary: dict) -> None:
    """``summary`` (task → numbers, and any totals) written to ``path`` with its kind first."""
    write_json({"kind": kind, **summary}, path, indent=2)


def _inferred_kind(path: Path, tasks: dict[str, dict]) -> Kind:
    """The kind of a summary written without one, from its tasks' numbers."""
    scored = [s for s in tasks.values() if "skipped" not in s]
    if scored and all(isinstance(s.get("accuracy"), dict) and "per_seed" in s["accuracy"] for s in scored):
        return "finetune"
    if scored and all("macro" in s or "eye_tracking" in s or "curve_fitness" in s for s in scored):
        return "zero_shot"
    raise ValueError(f"{path}: unknown layout: neither classit evaluate output (tasks with 'macro', 'eye_tracking' "
                     "or 'curve_fitness') nor classit finetune output (tasks with 'accuracy': {'per_seed': ...})")


def read_summary(path: Path) -> Summary:
    """The summary at ``path``; a fault in it stops in one line naming the file."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object (task → numbers)")
    data = dict(data)
    kind = data.pop("kind", None)
    tasks = {name: s for name, s in data.items() if isinstance(s, dict)}
    totals = {name: v for name, v in data.items() if not isinstance(v, dict)}
    if kind is None:
        kind = _inferred_kind(path, tasks)
    elif kind not in KINDS:
        raise ValueError(f"{path}: unknown kind {kind!r}; expected {' or '.join(KINDS)}")
    return Summary(kind, tasks, totals)


CORRECTED = "corrected (BOS prepended)"  # the name of a tokenizer without BOS's corrected numbers, beside the official


def official_and_corrected(numbers: dict) -> tuple[dict, dict | None]:
    """A zero-shot task's official numbers and, for a tokenizer that adds no BOS, the corrected ones (each text after
    a prepended BOS), whichever ``classit evaluate --headline`` put first; None where there are none. Not for AoA,
    whose ``corrected`` is its chance level in nats."""
    if numbers.get("headline") == "corrected":
        return numbers["official"], {k: v for k, v in numbers.items() if k not in ("official", "headline")}
    return numbers, numbers.get("corrected")
