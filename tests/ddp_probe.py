"""Callbacks that tests load into real `classit fit` processes: a record of the rows each rank read; a SIGKILL."""

import json
import os
import signal
from pathlib import Path

import lightning as L


class RowRecorder(L.Callback):
    def __init__(self, out_dir: str):
        self.out_dir = Path(out_dir)
        self.rows: list[list[int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rows += batch["input_ids"][:, :8].tolist()

    def on_train_end(self, trainer, pl_module):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"rank{trainer.global_rank}.json").write_text(
            json.dumps({"rows": self.rows, "global_step": trainer.global_step, "world_size": trainer.world_size}))


class KillAtStep(L.Callback):
    """SIGKILL this process once training reaches ``step`` optimizer steps: a job that dies without warning."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
