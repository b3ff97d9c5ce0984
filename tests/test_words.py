"""The BabyLM word budget: words counted from the data trained on; ready-made instruction files through a run."""

import json
import logging
import re
import signal

import pytest

from classit import layout
from classit.checkpoint_io import load_checkpoint
from classit.cli import main
from classit.data.chat import ASSISTANT, END, USER
from classit.data.curriculum import CurriculumDataModule
from classit.data.instructions import InstructionFile
from classit.train.callbacks import MilestoneExport
from helpers import TinyRuns, fit, instruction_records, rows_recorder, scalars, small_corpus, write_jsonl


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
    dm.use_tokenizer(tokenizer)
    with pytest.raises(ValueError, match=message):
        dm.prepare_data()


def test_milestones_must_increase():
    with pytest.raises(ValueError, match=r"MilestoneExport.milestones: positive word counts in increasing order"):
        MilestoneExport(milestones=[1000, 500])


def words_after_steps(run) -> list[float]:
    """The words seen after 1, 2, … optimizer steps, as the run logged them."""
    return [words for _, words in scalars(run)["train/words_seen"]]


@pytest.fixture(scope="module")
def seen(data_root, tokenizer, tmp_path_factory) -> list[float]:
    """The words seen after each of the 6 steps of a whole tiny run (the tiny runs of a test see the same)."""
    tmp = tmp_path_factory.mktemp("whole")
    runs = TinyRuns(tmp, small_corpus(data_root, tmp / "data"), tokenizer.name_or_path)
    out, code = fit(runs.config("whole"))
    assert code == 0, out[-3000:]
    words = words_after_steps(runs.run_dir("whole"))
    assert len(words) == 6
    return words


@pytest.mark.slow
def test_the_word_budget_stops_or_warns_in_the_middle_of_a_run(tiny_runs, seen):
    budget = lambda action: [{"class_path": "classit.train.WordBudget",
                              "init_args": {"words": int(seen[2]) - 1, "action": action}}]  # reached by step 3

    out, code = fit(tiny_runs.config("stop", callbacks=budget("stop")))
    assert code == 0, out[-3000:]
    assert f"word budget reached at step 3: {seen[2]:,.0f} words seen, budget {int(seen[2]) - 1:,}; stopping" in out
    assert words_after_steps(tiny_runs.run_dir("stop")) == seen[:3]
    assert load_checkpoint(tiny_runs.run_dir("stop") / "checkpoints" / "last.ckpt")["global_step"] == 3

    out, code = fit(tiny_runs.config("warn", callbacks=budget("warn")))
    assert code == 0, out[-3000:]
    assert out.count("word budget reached") == 1 and "word budget reached at step 3" in out
    assert "stopping" not in out and words_after_steps(tiny_runs.run_dir("warn")) == seen


@pytest.mark.slow
def test_a_resumed_run_writes_the_next_milestone_and_not_the_passed_ones_again(tiny_runs, seen):
    milestones = [int(seen[1]), int(seen[4])]  # passed at steps 2 and 5
    config = lambda *probes: tiny_runs.config("run", callbacks=[
        {"class_path": "classit.train.MilestoneExport", "init_args": {"milestones": milestones}}, *probes])
    stop = {"class_path": "probes.SignalAt", "init_args": {"signal_name": "SIGTERM", "step": 2}}
    out, code = fit(config(stop), "--ckpt_path", "last")
    assert code == 128 + signal.SIGTERM, out[-3000:]
    run = tiny_runs.run_dir("run")
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 3
    first, second = (layout.milestone_export(run, m) for m in milestones)
    assert first.is_dir() and not second.exists()
    written = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in first.iterdir()}

    out, code = fit(config(), "--ckpt_path", "last")
    assert code == 0, out[-3000:]
    assert f"milestone {milestones[0]:,} words" not in out and f"milestone {milestones[1]:,} words" in out
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in first.iterdir()} == written
    assert json.loads((second / layout.MILESTONE_FILE).read_text())["step"] == 5
    assert sorted(p.name for p in layout.milestone_dir(run).iterdir()) == sorted([first.name, second.name])
