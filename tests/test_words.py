"""The BabyLM word budget: words counted from the data trained on; ready-made instruction files through a run."""

import json
import logging
import re

import pytest

from classit.checkpoint_io import load_checkpoint
from classit.cli import main
from classit.data.chat import ASSISTANT, END, USER
from classit.data.curriculum import CurriculumDataModule
from classit.data.instructions import InstructionFile
from classit.train.callbacks import MilestoneExport
from helpers import instruction_records, rows_recorder, write_jsonl


@pytest.mark.slow
def test_words_seen_are_the_words_of_the_examples_trained_on(data_root, tiny_runs, tokenizer, caplog):
    write_jsonl(tiny_runs.data / "it.jsonl", instruction_records(data_root))
    source = {"class_path": "classit.data.instructions.InstructionFile",
              "init_args": {"path": "it.jsonl", "sources": ["switchboard"]}}
    config = tiny_runs.config("words", max_steps=-1, callbacks=[rows_recorder(tiny_runs.tmp / "rows", ids=None)],
                              data_args={"sources": {"it": source}, "block_size": 256,
                                         "stages": [{"name": "it", "sources": ["it"], "epochs": 2}]})
    with caplog.at_level(logging.INFO):
        main(["fit", "--config", str(config)])
    (size,) = (int(m) for m in re.findall(r"data: it: (\d+) training sequences", caplog.text))
    assert 25 <= size <= 30  # the "switchboard" half (an example whose reply does not fit is left out)
    rows = json.loads((tiny_runs.tmp / "rows" / "rank0.json").read_text())["rows"]
    assert len(rows) == 2 * (size // 4 * 4)  # whole global batches, two epochs
    counted = 0
    for ids in rows:  # counted again from the text of each row: the user's turn and the reply
        text = tokenizer.decode(ids, skip_special_tokens=False)
        prompt = text.split(USER + "\n", 1)[1].split(END, 1)[0]
        reply = text.split(ASSISTANT + "\n", 1)[1].split(END, 1)[0]
        counted += len(prompt.split()) + len(reply.split())
    words_seen = load_checkpoint(tiny_runs.run_dir("words") / "checkpoints" / "last.ckpt")["state_dict"]["words_seen"]
    assert float(words_seen) == counted


@pytest.mark.parametrize("line, message", [
    ('{"reply": "hi there you"}', r"it.jsonl:3: missing field 'prompt'"),
    ('{"prompt": "hello", "reply": 3}', r"it.jsonl:3: field 'reply' must be a string, got int"),
    ("{not json", r"it.jsonl:3: malformed JSON line"),
])
def test_a_bad_instruction_file_names_file_and_line(tmp_path, tokenizer, line, message):
    good = json.dumps({"prompt": "How are you today?", "reply": "I am fine, thank you.", "source": "switchboard"})
    (tmp_path / "it.jsonl").write_text(f"{good}\n{good}\n{line}\n")
    dm = CurriculumDataModule({"it": InstructionFile(path="it.jsonl")}, data_dir=str(tmp_path),
                              cache_dir=str(tmp_path / "cache"), tokenizer=tokenizer.name_or_path, batch_size=1)
    with pytest.raises(ValueError, match=message):
        dm.prepare_data()


def test_milestones_must_increase():
    with pytest.raises(ValueError, match=r"MilestoneExport.milestones: positive word counts in increasing order"):
        MilestoneExport(milestones=[1000, 500])
