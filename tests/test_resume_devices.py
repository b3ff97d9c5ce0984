"""The case the curriculum plan exists for: a run stopped mid-stage on 2 processes (DDP, gloo, CPU) and resumed on 1,
and the other way, trains the global batches of the uninterrupted run and ends with its weights (float tolerance)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from helpers import small_corpus

ROOT = Path(__file__).parent.parent
STEPS, STOP = 12, 4


def fit(tmp: Path, name: str, devices: int, data: Path, tokenizer: str, ckpt: Path | None = None) -> Path:
    """The demo's curriculum made tiny: global batch 8, at most 4 sequences a device (one process accumulates 2),
    a checkpoint kept every ``STOP`` steps, the rows each rank trained on recorded."""
    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    config["trainer"].update(devices=devices, max_steps=STEPS, log_every_n_steps=1, limit_val_batches=0,
                             strategy="ddp" if devices > 1 else "auto")
    config["trainer"]["logger"]["init_args"].update(save_dir=str(tmp), name=name)
    callbacks = [c for c in config["trainer"]["callbacks"] if "MinimalPairEval" not in c["class_path"]]
    checkpoint = next(c for c in callbacks if c["class_path"].endswith("RunCheckpoint"))
    checkpoint["init_args"].update(every_n_train_steps=STOP, save_top_k=-1)
    callbacks.append({"class_path": "probes.RowRecorder", "init_args": {"out_dir": str(tmp / name / "rows")}})
    config["trainer"]["callbacks"] = callbacks
    config["model"].update(n_layer=1, n_embd=32, n_head=2, intermediate_size=64)
    config["data"].update(data_dir=str(data), batch_size=8, micro_batch_size=4, block_size=64, num_workers=0,
                          tokenizer=tokenizer, val_sequences=8)
    config["data"]["sources"]["pretrain"]["init_args"].update(train_dir="train", val_dir="dev")
    (tmp / f"{name}.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    args = ["--ckpt_path", str(ckpt)] if ckpt else []
    done = subprocess.run([sys.executable, "-m", "classit.cli", "fit", "--config", str(tmp / f"{name}.yaml"), *args],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp / name


def global_batches(run: Path, first_step: int) -> dict[int, list]:
    """The rows of each optimizer step (sorted: the ranks' and micro-batches' order within a step does not count)."""
    ranks = [json.loads(p.read_text()) for p in sorted((run / "rows").glob("rank*.json"))]
    per_rank = 8 // len(ranks)
    steps = len(ranks[0]["rows"]) // per_rank
    return {first_step + s: sorted(row for r in ranks for row in r["rows"][s * per_rank:(s + 1) * per_rank])
            for s in range(steps)}


def checkpoint_at(run: Path, step: int) -> Path:
    (path,) = (run / "version_0" / "checkpoints").glob(f"*step={step}.ckpt")
    return path


def final_weights(run: Path) -> dict:
    ckpt = torch.load(run / "version_0" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == STEPS
    return ckpt["state_dict"]


@pytest.mark.slow
def test_a_run_resumed_on_another_number_of_processes_trains_as_if_never_stopped(tmp_path, data_root, tokenizer):
    data = small_corpus(data_root, tmp_path / "data")
    runs = {devices: fit(tmp_path, f"whole{devices}", devices, data, tokenizer.name_or_path) for devices in (1, 2)}
    whole = global_batches(runs[1], 0)
    assert sorted(whole) == list(range(STEPS)) and global_batches(runs[2], 0) == whole
    for saved, resumed in ((2, 1), (1, 2)):
        ckpt = checkpoint_at(runs[saved], STOP)
        state = torch.load(ckpt, map_location="cpu", weights_only=False)["CurriculumDataModule"]
        assert (state["stage"], state["world_size"], state["accumulate"]) == (0, saved, 3 - saved)  # mid-stage
        assert state["epoch"] < 1 and state["batches"] > 0  # mid-epoch too
        run = fit(tmp_path, f"from{saved}on{resumed}", resumed, data, tokenizer.name_or_path, ckpt)
        assert global_batches(run, STOP) == {s: rows for s, rows in whole.items() if s >= STOP}
        ours, theirs = final_weights(run), final_weights(runs[1])
        for key, value in theirs.items():
            torch.testing.assert_close(ours[key], value, rtol=1e-4, atol=1e-5, msg=key)
