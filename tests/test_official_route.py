"""The documented route to a BabyLM submission, run end to end through the real CLI: ``classit finetune`` (two
tasks) → ``classit report --babylm`` → ``classit submission``, and the leaderboard scores it prints checked against
the predictions on disk."""

from pathlib import Path

import pytest

from classit import layout
from classit.cli import main
from classit.files import read_json, read_jsonl
from helpers import rte_items, sample_sentences, write_jsonl

TRAIN_ITEMS = 16


@pytest.fixture(scope="module")
def finetuned(tiny_model_dir, data_root, tmp_path_factory) -> Path:
    """``classit finetune`` of the tiny model on RTE and WSC (16 training items, one epoch, one seed), scored on
    the data folder's validation sets (RTE: built here where the bundled sample lacks it)."""
    tmp = tmp_path_factory.mktemp("route")
    glue, source = tmp / "glue", data_root / "babylm-eval" / "glue_filtered"
    for task in ("rte", "wsc"):
        if (source / f"{task}.valid.jsonl").is_file():
            write_jsonl(glue / f"{task}.train.jsonl", read_jsonl(source / f"{task}.train.jsonl")[:TRAIN_ITEMS])
            (glue / f"{task}.valid.jsonl").symlink_to(source / f"{task}.valid.jsonl")
        else:
            sentences = sample_sentences(data_root)
            write_jsonl(glue / "rte.train.jsonl", rte_items(sentences, TRAIN_ITEMS))
            write_jsonl(glue / "rte.valid.jsonl", rte_items(sentences[TRAIN_ITEMS:], 20))
    out = tmp / "eval" / "tiny" / "finetune"
    main(["finetune", "--model", str(tiny_model_dir), "--tasks", "rte,wsc", "--seeds", "1", "--max_epochs", "1",
          "--data_dir", str(glue), "--out", str(out)])
    return tmp


@pytest.mark.slow
def test_report_babylm_writes_every_finetuning_task_from_its_own_predictions(finetuned):
    bab = finetuned / "bab"
    main(["report", str(finetuned / "eval"), "--out", str(finetuned / "rep"), "--babylm", str(bab)])
    for task in ("rte", "wsc"):
        written = read_json(layout.official_predictions(bab / "tiny" / "main" / "finetune" / task))
        ours = read_jsonl(finetuned / "eval" / "tiny" / "finetune" / "predictions" / f"{task}_seed1.jsonl")
        assert written == {task: {"predictions": [{"id": r["id"], "pred": r["pred"]} for r in ours]}}
