"""Two CPU processes on gloo agree with one process at the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from classit.eval.evaluate import evaluate
from helpers import scalars, small_corpus

ROOT = Path(__file__).parent.parent


def run_demo(tmp: Path, name: str, devices: int, data_dir: Path, tokenizer_dir: str) -> Path:
    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    config["trainer"].update(devices=devices, max_steps=6, log_every_n_steps=1, strategy="ddp" if devices > 1 else "auto")
    config["trainer"]["logger"]["init_args"].update(save_dir=str(tmp), name=name)
    evaluation = next(c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("MinimalPairEvalCallback"))
    evaluation["init_args"]["max_items"] = None  # the whole fast sets, as `evaluate` scores them below
    config["trainer"]["callbacks"].append({"class_path": "ddp_probe.RowRecorder",
                                           "init_args": {"out_dir": str(tmp / name / "rows")}})
    config["data"].update(data_dir=str(data_dir), batch_size=8, micro_batch_size=4, block_size=64, num_workers=0,
                          tokenizer=tokenizer_dir, val_sequences=30, val_every=0.5)
    config["data"]["sources"]["pretrain"]["init_args"].update(train_dir="train", val_dir="dev")
    (tmp / f"{name}.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    done = subprocess.run([sys.executable, "-m", "classit.cli", "fit", "--config", str(tmp / f"{name}.yaml")],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp / name


def test_two_process_ddp_matches_single_process(tmp_path, data_root, tokenizer):
    data = small_corpus(data_root, tmp_path / "data")
    (data / "babylm-eval-fast").symlink_to(data_root / "babylm-eval-fast")  # the callback scores the run's data folder
    # the same config: global batch 8, at most 4 sequences a device at once (one process accumulates 2)
    single = run_demo(tmp_path, "single", devices=1, data_dir=data, tokenizer_dir=tokenizer.name_or_path)
    ddp = run_demo(tmp_path, "ddp", devices=2, data_dir=data, tokenizer_dir=tokenizer.name_or_path)

    one = json.loads((single / "rows" / "rank0.json").read_text())
    ranks = [json.loads((ddp / "rows" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert one["global_step"] == ranks[0]["global_step"] == ranks[1]["global_step"] == 6
    assert ranks[0]["world_size"] == 2
    # the same global batches: 6 steps × 8 rows, split over two ranks that read disjoint halves
    assert len(one["rows"]) == 48 and len(ranks[0]["rows"]) == len(ranks[1]["rows"]) == 24
    assert not {tuple(r) for r in ranks[0]["rows"]} & {tuple(r) for r in ranks[1]["rows"]}
    for step in range(6):
        both = ranks[0]["rows"][4 * step:4 * step + 4] + ranks[1]["rows"][4 * step:4 * step + 4]
        assert sorted(one["rows"][8 * step:8 * step + 8]) == sorted(both), step

    curves = {run: scalars(folder / "version_0") for run, folder in (("single", single), ("ddp", ddp))}
    for tag in ("train/loss", "lr-AdamW/pg1", "val/loss", "val/loss/pretrain"):
        a, b = dict(curves["single"][tag]), dict(curves["ddp"][tag])  # step → value (the LR is logged per batch)
        assert sorted(a) == sorted(b) and len(a) >= 2, tag
        assert a == pytest.approx(b, rel=1e-4), tag  # the same maths in another summing order
    assert curves["ddp"]["train/loss"][-1][1] < curves["ddp"]["train/loss"][0][1]

    # the demo's MinimalPairEvalCallback split the fast sets over the two ranks and gathered the scores:
    # the same numbers as one process scoring the final (exported) model alone
    logged = scalars(ddp / "version_0")
    alone = evaluate(model=str(ddp / "version_0" / "hf"), data_dir=str(data_root / "babylm-eval-fast"),
                     tasks="blimp,ewok", out=str(tmp_path / "eval"), device="cpu")
    for task in ("blimp", "ewok"):
        assert logged[f"zero_shot/{task}"][-1][0] == 6
        assert logged[f"zero_shot/{task}"][-1][1] == pytest.approx(alone[task]["macro"], abs=0.05), task
