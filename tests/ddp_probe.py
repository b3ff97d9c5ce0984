"""A callback for the DDP test: each rank writes a fingerprint of every training row it read."""

import json
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
