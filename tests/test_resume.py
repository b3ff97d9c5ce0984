"""A run killed without warning resumes exactly; last.ckpt is the end of fit; resuming with another tokenizer stops."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from classit.cli import main
from classit.data.corpus import corpus_files
from classit.data.tokenizer import cached_tokenizer
from helpers import small_corpus

ROOT = Path(__file__).parent.parent


def fit_args(tmp: Path, name: str, data: Path, tokenizer: str) -> list[str]:
    """The demo config made tiny: 12 steps, a checkpoint every 4."""
    return ["fit", "--config", str(ROOT / "configs" / "demo.yaml"), "--trainer.max_steps", "12",
            "--trainer.logger.init_args.save_dir", str(tmp), "--trainer.logger.init_args.name", name,
            "--trainer.callbacks.init_args.every_n_train_steps", "4", "--data.data_dir", str(data),
            "--data.sources.pretrain.init_args.train_dir", "train", "--data.sources.pretrain.init_args.val_dir", "dev",
            "--data.tokenizer", tokenizer, "--data.batch_size", "4", "--data.block_size", "32", "--data.num_workers", "0",
            "--data.val_sequences", "8", "--model.n_layer", "1", "--model.n_embd", "32", "--model.n_head", "2",
            "--model.intermediate_size", "64"]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "classit.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def weights(ckpt: Path) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def killed_and_whole(tokenizer, data_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    data = small_corpus(data_root, tmp / "data")
    (data / "babylm-eval-fast").symlink_to(data_root / "babylm-eval-fast")  # the demo's end-of-fit BLiMP and EWoK
    whole = run(fit_args(tmp, "whole", data, tokenizer.name_or_path), tmp)
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = run(fit_args(tmp, "killed", data, tokenizer.name_or_path)
                 + ["--trainer.callbacks+=ddp_probe.KillAtStep", "--trainer.callbacks.step=10"], tmp)
    assert killed.returncode == -9, killed.stderr[-3000:]  # SIGKILL at step 10: the last checkpoint is step 8's
    return tmp, data


def test_sigkill_then_resume_gives_bit_equal_final_weights(killed_and_whole, tokenizer):
    tmp, data = killed_and_whole
    last = tmp / "killed" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 8
    resumed = run(fit_args(tmp, "killed", data, tokenizer.name_or_path) + ["--ckpt_path", str(last)], tmp)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = tmp / "killed" / "version_1" / "checkpoints" / "last.ckpt"
    whole = tmp / "whole" / "version_0" / "checkpoints" / "last.ckpt"
    for ckpt in (final, whole):  # last.ckpt is the state at the end of fit
        assert torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"] == 12
    resumed_weights, whole_weights = weights(final), weights(whole)
    for name, value in whole_weights.items():
        assert torch.equal(resumed_weights[name], value), name


def test_resume_with_another_tokenizer_stops_with_both_fingerprints(killed_and_whole, tokenizer, data_root, capsys):
    tmp, data = killed_and_whole
    other = cached_tokenizer(corpus_files(data_root / "babylm-corpus/dev", ".dev"), len(tokenizer), tmp / "cache")
    assert len(other) == len(tokenizer)  # same size, other merges: nothing but the fingerprint tells them apart
    last = tmp / "whole" / "version_0" / "checkpoints" / "last.ckpt"
    with pytest.raises(SystemExit) as stop:
        main(fit_args(tmp, "other", data, other.name_or_path) + ["--ckpt_path", str(last)])
    assert "the checkpoint to resume was trained with tokenizer" in str(stop.value.code)
    assert "data.tokenizer" in str(stop.value.code)


def phase_config(tmp: Path, name: str, data: Path, tokenizer: str, extra_callbacks: list) -> Path:
    """Pre-training, then an instruction stage that starts a phase of its own (fresh AdamW state): 6 + 2 × 6 steps."""
    import yaml

    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    config["trainer"].pop("max_steps")
    config["trainer"].update(limit_train_batches=6, log_every_n_steps=1)
    config["trainer"]["logger"]["init_args"].update(save_dir=str(tmp), name=name)
    callbacks = [c for c in config["trainer"]["callbacks"] if "MinimalPairEval" not in c["class_path"]]
    next(c for c in callbacks if c["class_path"].endswith("RunCheckpoint"))["init_args"]["every_n_train_steps"] = 4
    config["trainer"]["callbacks"] = callbacks + extra_callbacks
    config["model"].update(n_layer=1, n_embd=32, n_head=2, intermediate_size=64)
    config["data"].update(data_dir=str(data), tokenizer=tokenizer, batch_size=4, block_size=64, num_workers=0,
                          val_sequences=8)
    config["data"]["sources"] = {
        "pretrain": {"class_path": "classit.data.babylm.BabyLMCorpus", "init_args": {"train_dir": "train", "val_dir": "dev"}},
        "it": {"class_path": "classit.data.instructions.InstructionFile", "init_args": {"path": "it.jsonl", "pack": True}}}
    config["data"]["stages"] = [
        {"name": "pretrain", "sources": ["pretrain"], "epochs": 1},
        {"name": "it", "sources": ["it"], "epochs": 2,
         "phase": {"lr": 1.0e-3, "warmup": 0.25, "reset_optimizer": True}}]
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_sigkill_inside_the_instruction_phase_resumes_with_its_schedule(killed_and_whole, tokenizer, data_root):
    from test_words import write_examples

    tmp, data = killed_and_whole
    write_examples(data_root, data / "it.jsonl", n=120)
    whole = run(["fit", "--config", str(phase_config(tmp, "phase_whole", data, tokenizer.name_or_path, []))], tmp)
    assert whole.returncode == 0, whole.stderr[-3000:]
    kill = [{"class_path": "ddp_probe.KillAtStep", "init_args": {"step": 14}}]
    config = phase_config(tmp, "phase_killed", data, tokenizer.name_or_path, kill)
    assert run(["fit", "--config", str(config)], tmp).returncode == -9
    last = tmp / "phase_killed" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 12  # mid-phase
    config = phase_config(tmp, "phase_killed", data, tokenizer.name_or_path, [])
    resumed = run(["fit", "--config", str(config), "--ckpt_path", str(last)], tmp)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = weights(tmp / "phase_killed" / "version_1" / "checkpoints" / "last.ckpt")
    for name, value in weights(tmp / "phase_whole" / "version_0" / "checkpoints" / "last.ckpt").items():
        assert torch.equal(final[name], value), name


def test_a_word_budget_already_spent_at_resume_stops(killed_and_whole, tokenizer):
    tmp, data = killed_and_whole
    last = tmp / "whole" / "version_0" / "checkpoints" / "last.ckpt"
    resumed = run(fit_args(tmp, "budget", data, tokenizer.name_or_path)
                  + ["--trainer.callbacks+=classit.train.WordBudget", "--trainer.callbacks.words=100",
                     "--trainer.max_steps", "20", "--ckpt_path", str(last)], tmp)
    assert resumed.returncode == 1
    assert "classit: error: WordBudget.words: this run has already seen" in resumed.stderr
