"""(Super)GLUE fine-tuning tasks: what each one reads, and its files in BabyLM or original SuperGLUE format.

A task's split is found in the data folder as BabyLM's ``{task}.{split}.jsonl`` (``train``/``valid``)
or, for BoolQ and MultiRC, as the original SuperGLUE release's ``{BoolQ,MultiRC}/{train,val}.jsonl``.
Each record's format is recognised by its fields: SuperGLUE BoolQ has BabyLM's fields with true/false
labels; a SuperGLUE MultiRC record (passage -> questions -> answers) becomes one example per answer,
with BabyLM's fields ``paragraph``, ``question``, ``answer`` and ``idx``.

An example's text is its input fields joined by :data:`SEPARATOR`, the short or deciding field last
(the classifier reads the last token; a text longer than the length limit loses its beginning).
"""

from dataclasses import dataclass
from pathlib import Path

from classit.files import iter_jsonl

SEPARATOR = "\n"


@dataclass(frozen=True)
class Task:
    """One fine-tuning task and the official pipeline's defaults for it."""

    fields: tuple[str, ...]  # BabyLM-format input fields, in the order they are joined
    size: int  # examples in BabyLM's validation set (the collator's _check_size)
    num_labels: int = 2
    superglue: str | None = None  # folder of the original SuperGLUE release
    batch_size: int = 32
    epochs: int = 10
    select_on: str = "accuracy"  # the metric that picks the best epoch


TASKS = {
    "boolq": Task(("passage", "question"), 1635, superglue="BoolQ", batch_size=16),
    "multirc": Task(("paragraph", "question", "answer"), 2424, superglue="MultiRC", batch_size=16),
    "rte": Task(("sentence1", "sentence2"), 139),
    "wsc": Task(("text", "span1_text", "span2_text"), 52, epochs=30),
    "mrpc": Task(("sentence1", "sentence2"), 204, select_on="f1"),
    "qqp": Task(("question1", "question2"), 20215, select_on="f1"),
    "mnli": Task(("premise", "hypothesis"), 4908, num_labels=3),
}


def candidates(data_dir: Path, task: str, split: str) -> list[Path]:
    """Where a task's ``train`` or ``valid`` file may be, in the order they are tried."""
    paths = [data_dir / f"{task}.{split}.jsonl"]
    if TASKS[task].superglue:
        paths.append(data_dir / TASKS[task].superglue / ("train.jsonl" if split == "train" else "val.jsonl"))
    return paths


def find_file(data_dir: Path, task: str, split: str) -> Path | None:
    """The first existing candidate file, or None."""
    return next((p for p in candidates(data_dir, task, split) if p.is_file()), None)


def _multirc_answers(record: dict) -> list[dict]:
    """A SuperGLUE MultiRC record flattened to BabyLM's one-line-per-answer records."""
    passage = record["passage"]
    return [{"paragraph": passage["text"], "question": q["question"], "answer": a["text"],
             "idx": {"paragraph": record["idx"], "question": q["idx"], "answer": a["idx"]}, "label": a["label"]}
            for q in passage["questions"] for a in q["answers"]]


def _records(task: str, record, where: str) -> list[dict]:
    """The BabyLM-format records one JSON line holds."""
    spec = TASKS[task]
    if isinstance(record, dict) and all(f in record for f in (*spec.fields, "label")):
        return [record]
    if task == "multirc" and isinstance(record, dict) and isinstance(record.get("passage"), dict):
        try:
            return _multirc_answers(record)
        except (KeyError, TypeError) as error:
            raise ValueError(f"{where}: SuperGLUE MultiRC record without {error}") from None
    superglue = " or SuperGLUE's passage.text, passage.questions[].answers[]" if task == "multirc" else ""
    raise ValueError(f"{where}: not a {task} record: expected the fields {', '.join(spec.fields)}, label{superglue}")


def _label(task: str, value, where: str) -> int:
    if isinstance(value, bool):  # SuperGLUE BoolQ: true/false
        value = int(value)
    if not isinstance(value, int) or not 0 <= value < TASKS[task].num_labels:
        raise ValueError(f"{where}: field 'label' is {value!r}, outside {task}'s labels "
                         f"{', '.join(map(str, range(TASKS[task].num_labels)))}")
    return value


def read_examples(path: Path, task: str) -> list[dict]:
    """The examples of a task file: ``{"text", "label", "idx"}`` in file order (MultiRC: one per answer)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    examples = []
    for where, record in iter_jsonl(path):
        for r in _records(task, record, where):
            bad = [f for f in TASKS[task].fields if not isinstance(r[f], str)]
            if bad:
                raise ValueError(f"{where}: field {bad[0]!r} is not a string")
            examples.append({"text": SEPARATOR.join(r[f] for f in TASKS[task].fields),
                             "label": _label(task, r["label"], where), "idx": r.get("idx", len(examples))})
    if not examples:
        raise ValueError(f"{path}: no examples (the file is empty)")
    return examples
