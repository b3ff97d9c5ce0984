"""Two CPU processes on gloo agree with one process at the same global batch; two nodes on 127.0.0.1."""

import json
import socket
from pathlib import Path

import pytest

from classit.eval.evaluate import evaluate
from helpers import fit, rows_recorder, scalars

pytestmark = pytest.mark.slow


def run_demo(tiny_runs, name: str, devices: int) -> Path:
    """The tiny run on ``devices`` processes, validated twice, with the demo's zero-shot scoring of the whole fast
    sets (as `evaluate` scores them); its rows recorded. Its run folder."""
    evaluation = {"class_path": "classit.eval.callbacks.MinimalPairEvalCallback",
                  "init_args": {"tasks": ["blimp", "ewok"], "every_n_steps": 150, "max_items": None}}
    config = tiny_runs.config(name, devices=devices, strategy="ddp" if devices > 1 else "auto", limit_val_batches=1.0,
                              callbacks=[evaluation, rows_recorder(tiny_runs.tmp / name / "rows")],
                              data_args={"batch_size": 8, "micro_batch_size": 4, "block_size": 64,
                                         "val_sequences": 30, "val_every": 0.5})
    out, code = fit(config)
    assert code == 0, out[-3000:]
    return tiny_runs.run_dir(name)


def test_two_process_ddp_matches_single_process(tiny_runs, data_root, tmp_path):
    (tiny_runs.data / "babylm-eval-fast").symlink_to(data_root / "babylm-eval-fast")  # scored: the run's data folder
    # the same config: global batch 8, at most 4 sequences a device at once (one process accumulates 2)
    single = run_demo(tiny_runs, "single", devices=1)
    ddp = run_demo(tiny_runs, "ddp", devices=2)

    one = json.loads((tmp_path / "single" / "rows" / "rank0.json").read_text())
    ranks = [json.loads((tmp_path / "ddp" / "rows" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert one["global_step"] == ranks[0]["global_step"] == ranks[1]["global_step"] == 6
    assert ranks[0]["world_size"] == 2
    # the same global batches: 6 steps × 8 rows, split over two ranks that read disjoint halves
    assert len(one["rows"]) == 48 and len(ranks[0]["rows"]) == len(ranks[1]["rows"]) == 24
    assert not {tuple(r) for r in ranks[0]["rows"]} & {tuple(r) for r in ranks[1]["rows"]}
    for step in range(6):
        both = ranks[0]["rows"][4 * step:4 * step + 4] + ranks[1]["rows"][4 * step:4 * step + 4]
        assert sorted(one["rows"][8 * step:8 * step + 8]) == sorted(both), step

    curves = {"single": scalars(single), "ddp": scalars(ddp)}
    for tag in ("train/loss", "lr-AdamW/pg1", "val/loss", "val/loss/pretrain"):
        a, b = dict(curves["single"][tag]), dict(curves["ddp"][tag])  # step → value (the LR is logged per batch)
        assert sorted(a) == sorted(b) and len(a) >= 2, tag
        assert a == pytest.approx(b, rel=1e-4), tag  # the same maths in another summing order
    assert curves["ddp"]["train/loss"][-1][1] < curves["ddp"]["train/loss"][0][1]

    # the demo's MinimalPairEvalCallback split the fast sets over the two ranks and gathered the scores:
    # the same numbers as one process scoring the final (exported) model alone
    logged = curves["ddp"]
    alone = evaluate(model=str(ddp / "hf"), data_dir=str(data_root / "babylm-eval-fast"),
                     tasks="blimp,ewok", out=str(tmp_path / "eval"), device="cpu")
    for task in ("blimp", "ewok"):
        assert logged[f"zero_shot/{task}"][-1][0] == 6
        assert logged[f"zero_shot/{task}"][-1][1] == pytest.approx(alone[task]["macro"], abs=0.05), task


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_on_localhost_finish_together_on_disjoint_rows(tiny_runs):
    rows = tiny_runs.tmp / "rows"
    config = tiny_runs.config("nodes", callbacks=[rows_recorder(rows)], max_steps=4)
    port = str(free_port())
    nodes = [fit(config, "--trainer.num_nodes", "2", "--trainer.devices", "1", "--trainer.strategy", "ddp", wait=False,
                 env={"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "NODE_RANK": str(rank), "WORLD_SIZE": "2",
                      "LOCAL_RANK": "0"})
             for rank in (0, 1)]
    for node in nodes:
        out, _ = node.communicate(timeout=600)
        assert node.returncode == 0, out[-3000:]
    ranks = [json.loads((rows / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 4
    assert len(ranks[0]["rows"]) == len(ranks[1]["rows"]) == 8  # each node half of 4 global batches of 4
    assert not {tuple(r) for r in ranks[0]["rows"]} & {tuple(r) for r in ranks[1]["rows"]}
