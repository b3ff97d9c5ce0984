"""The BabyLM word budget: words counted from the data trained on; ready-made instruction files through a run."""

import json

import lightning as L
import pytest

from classit.data.chat import ASSISTANT, END, USER
from classit.data.curriculum import CurriculumDataModule
from classit.data.instructions import InstructionFile
from classit.model import BabyLM
from classit.train.callbacks import MilestoneExport
from classit.train.fit import CurriculumSetup
from helpers import instruction_records, write_jsonl
from probes import RowRecorder


@pytest.mark.slow
def test_words_seen_are_the_words_of_the_examples_trained_on(data_root, tokenizer, tmp_path):
    write_jsonl(tmp_path / "it.jsonl", instruction_records(data_root))
    source = InstructionFile(path="it.jsonl", sources=["switchboard"])
    dm = CurriculumDataModule({"it": source}, stages=[{"name": "it", "sources": ["it"], "epochs": 2}],
                              data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"), tokenizer=tokenizer.name_or_path,
                              batch_size=4, block_size=256, num_workers=0)
    dm.use_tokenizer(tokenizer)
    model = BabyLM(vocab_size=dm.vocab_size, n_layer=1, n_embd=32, n_head=2, intermediate_size=64, block_size=256,
                   special_ids=dm.special_ids)
    rows = RowRecorder()
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[CurriculumSetup(tokenizer), rows], limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    assert 25 <= dm.sizes["it"] <= 30  # the "switchboard" half (an example whose reply does not fit is left out)
    assert len(rows.rows) == 2 * (dm.sizes["it"] // 4 * 4)  # whole global batches, two epochs
    counted = 0
    for ids in rows.rows:  # counted again from the text of each row: the user's turn and the reply
        text = tokenizer.decode(ids, skip_special_tokens=False)
        prompt = text.split(USER + "\n", 1)[1].split(END, 1)[0]
        reply = text.split(ASSISTANT + "\n", 1)[1].split(END, 1)[0]
        counted += len(prompt.split()) + len(reply.split())
    assert float(model.words_seen) == counted


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
    dm.use_tokenizer(tokenizer)
    with pytest.raises(ValueError, match=message):
        dm.prepare_data()


def test_milestones_must_increase():
    with pytest.raises(ValueError, match=r"MilestoneExport.milestones: positive word counts in increasing order"):
        MilestoneExport(milestones=[1000, 500])
