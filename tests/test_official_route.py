"""The documented route to a BabyLM submission through the real CLI, its first part: ``classit finetune`` (two
tasks, the ``finetuned`` fixture) → ``classit report --babylm``; the whole route to ``classit submission`` needs
the official sizes of every set (``test_submission``)."""

import pytest

from classit import layout
from classit.cli import main
from classit.files import read_json, read_jsonl


@pytest.mark.slow
def test_report_babylm_writes_every_finetuning_task_from_its_own_predictions(finetuned):
    bab = finetuned / "bab"
    main(["report", str(finetuned / "eval"), "--out", str(finetuned / "rep"), "--babylm", str(bab)])
    for task in ("rte", "wsc"):
        written = read_json(layout.official_predictions(bab / "tiny" / "main" / "finetune" / task))
        ours = read_jsonl(finetuned / "eval" / "tiny" / "finetune" / "predictions" / f"{task}_seed1.jsonl")
        assert written == {task: {"predictions": [{"id": r["id"], "pred": r["pred"]} for r in ours]}}
