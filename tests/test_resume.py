"""A run killed without warning resumes exactly; last.ckpt is the end of fit; resuming with another tokenizer stops."""

import pytest
import torch

from classit.cli import main
from classit.data.corpus import corpus_files
from classit.data.tokenizer import cached_tokenizer
from helpers import TinyRuns, fit, instruction_records, small_corpus, write_jsonl

pytestmark = pytest.mark.slow


def config(runs: TinyRuns, name: str, **changes):
    """The tiny run, 12 steps, validated, a checkpoint every 4."""
    return runs.config(name, max_steps=12, checkpoint_every=4, limit_val_batches=1.0,
                       data_args={"val_sequences": 8}, **changes)


def kill_at(step: int) -> list[dict]:
    return [{"class_path": "probes.KillAtStep", "init_args": {"step": step}}]


def weights(ckpt) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def killed_and_whole(tokenizer, data_root, tmp_path_factory) -> TinyRuns:
    tmp = tmp_path_factory.mktemp("resume")
    runs = TinyRuns(tmp, small_corpus(data_root, tmp / "data"), tokenizer.name_or_path)
    whole = fit(config(runs, "whole"), wait=False)  # beside the killed run: two processes, two cores
    out, code = fit(config(runs, "killed", callbacks=kill_at(10)))
    assert code == -9, out[-3000:]  # SIGKILL at step 10: the last checkpoint is step 8's
    out, _ = whole.communicate(timeout=600)
    assert whole.returncode == 0, out[-3000:]
    return runs


def test_sigkill_then_resume_gives_bit_equal_final_weights(killed_and_whole):
    runs = killed_and_whole
    last = runs.run_dir("killed") / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 8
    out, code = fit(config(runs, "killed"), "--ckpt_path", str(last))
    assert code == 0, out[-3000:]
    final = runs.run_dir("killed", 1) / "checkpoints" / "last.ckpt"
    whole = runs.run_dir("whole") / "checkpoints" / "last.ckpt"
    for ckpt in (final, whole):  # last.ckpt is the state at the end of fit
        assert torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"] == 12
    resumed_weights, whole_weights = weights(final), weights(whole)
    for name, value in whole_weights.items():
        assert torch.equal(resumed_weights[name], value), name


def test_resume_with_another_tokenizer_stops_with_both_fingerprints(killed_and_whole, tokenizer, data_root):
    runs = killed_and_whole
    other = cached_tokenizer(corpus_files(data_root / "babylm-corpus/dev", ".dev"), len(tokenizer), runs.tmp / "cache")
    assert len(other) == len(tokenizer)  # same size, other merges: nothing but the fingerprint tells them apart
    last = runs.run_dir("whole") / "checkpoints" / "last.ckpt"
    with pytest.raises(SystemExit) as stop:
        main(["fit", "--config", str(config(TinyRuns(runs.tmp, runs.data, other.name_or_path), "other")),
              "--ckpt_path", str(last)])
    assert "the checkpoint to resume was trained with tokenizer" in str(stop.value.code)
    assert "data.tokenizer" in str(stop.value.code)


def phase_config(runs: TinyRuns, name: str, callbacks: list):
    """Pre-training, then an instruction stage that starts a phase of its own (fresh AdamW state): 6 + 2 × 6 steps."""
    sources = {
        "pretrain": {"class_path": "classit.data.babylm.BabyLMCorpus", "init_args": {"train_dir": "train", "val_dir": "dev"}},
        "it": {"class_path": "classit.data.instructions.InstructionFile", "init_args": {"path": "it.jsonl", "pack": True}}}
    stages = [{"name": "pretrain", "sources": ["pretrain"], "epochs": 1},
              {"name": "it", "sources": ["it"], "epochs": 2,
               "phase": {"lr": 1.0e-3, "warmup": 0.25, "reset_optimizer": True}}]
    return runs.config(name, max_steps=-1, limit_train_batches=6, limit_val_batches=1.0, checkpoint_every=4,
                       callbacks=callbacks, data_args={"block_size": 64, "val_sequences": 8, "sources": sources,
                                                       "stages": stages})


def test_sigkill_inside_the_instruction_phase_resumes_with_its_schedule(killed_and_whole, data_root):
    runs = killed_and_whole
    write_jsonl(runs.data / "it.jsonl", instruction_records(data_root, n=120))
    whole = fit(phase_config(runs, "phase_whole", []), wait=False)  # beside the killed and resumed runs
    assert fit(phase_config(runs, "phase_killed", kill_at(14)))[1] == -9
    last = runs.run_dir("phase_killed") / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 12  # mid-phase
    out, code = fit(phase_config(runs, "phase_killed", []), "--ckpt_path", str(last))
    assert code == 0, out[-3000:]
    out, _ = whole.communicate(timeout=600)
    assert whole.returncode == 0, out[-3000:]
    final = weights(runs.run_dir("phase_killed", 1) / "checkpoints" / "last.ckpt")
    for name, value in weights(runs.run_dir("phase_whole") / "checkpoints" / "last.ckpt").items():
        assert torch.equal(final[name], value), name


def test_a_word_budget_already_spent_at_resume_stops(killed_and_whole):
    runs = killed_and_whole
    last = runs.run_dir("whole") / "checkpoints" / "last.ckpt"
    budget = [{"class_path": "classit.train.WordBudget", "init_args": {"words": 100}}]
    out, code = fit(config(runs, "budget", callbacks=budget), "--trainer.max_steps", "20", "--ckpt_path", str(last))
    assert code == 1
    assert "classit: error: WordBudget.words: this run has already seen" in out
