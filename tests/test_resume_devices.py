"""The case the curriculum plan exists for: a run stopped mid-stage on 2 processes (DDP, gloo, CPU) and resumed on 1,
and the other way, trains the global batches of the uninterrupted run and ends with its weights (float tolerance)."""

import json
from pathlib import Path

import pytest
import torch

from helpers import fit, rows_recorder

STEPS, STOP = 12, 4


def run(tiny_runs, name: str, devices: int, ckpt: Path | None = None) -> Path:
    """The tiny run on ``devices`` processes: global batch 8, at most 4 sequences a device (one process accumulates
    2), every checkpoint of each ``STOP`` steps kept, the rows each rank trained on recorded. Its run folder."""
    config = tiny_runs.config(name, devices=devices, strategy="ddp" if devices > 1 else "auto", max_steps=STEPS,
                              checkpoint_every=STOP, keep_checkpoints=True,
                              callbacks=[rows_recorder(tiny_runs.run_dir(name) / "rows")],
                              data_args={"batch_size": 8, "micro_batch_size": 4, "block_size": 64, "val_sequences": 8})
    out, code = fit(config, *(["--ckpt_path", str(ckpt)] if ckpt else []))
    assert code == 0, out[-3000:]
    return tiny_runs.run_dir(name)


def global_batches(run: Path, first_step: int) -> dict[int, list]:
    """The rows of each optimizer step (sorted: the ranks' and micro-batches' order within a step does not count)."""
    ranks = [json.loads(p.read_text()) for p in sorted((run / "rows").glob("rank*.json"))]
    per_rank = 8 // len(ranks)
    steps = len(ranks[0]["rows"]) // per_rank
    return {first_step + s: sorted(row for r in ranks for row in r["rows"][s * per_rank:(s + 1) * per_rank])
            for s in range(steps)}


def checkpoint_at(run: Path, step: int) -> Path:
    (path,) = (run / "checkpoints").glob(f"*step={step}.ckpt")
    return path


def final_weights(run: Path) -> dict:
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == STEPS
    return ckpt["state_dict"]


@pytest.mark.slow
def test_a_run_resumed_on_another_number_of_processes_trains_as_if_never_stopped(tiny_runs):
    runs = {devices: run(tiny_runs, f"whole{devices}", devices) for devices in (1, 2)}
    whole = global_batches(runs[1], 0)
    assert sorted(whole) == list(range(STEPS)) and global_batches(runs[2], 0) == whole
    for saved, resumed in ((2, 1), (1, 2)):
        ckpt = checkpoint_at(runs[saved], STOP)
        state = torch.load(ckpt, map_location="cpu", weights_only=False)["CurriculumDataModule"]
        assert (state["stage"], state["world_size"], state["accumulate"]) == (0, saved, 3 - saved)  # mid-stage
        assert state["epoch"] < 1 and state["batches"] > 0  # mid-epoch too
        resumed_run = run(tiny_runs, f"from{saved}on{resumed}", resumed, ckpt)
        assert global_batches(resumed_run, STOP) == {s: rows for s, rows in whole.items() if s >= STOP}
        ours, theirs = final_weights(resumed_run), final_weights(runs[1])
        for key, value in theirs.items():
            torch.testing.assert_close(ours[key], value, rtol=1e-4, atol=1e-5, msg=key)
