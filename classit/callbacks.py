"""Training callbacks: token throughput (tokens/s, MFU) and the Hugging Face export at the end of fit."""

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ThroughputMonitor
from lightning.pytorch.utilities import rank_zero_info


def _rows(batch: dict) -> int:
    return batch["input_ids"].size(0)


def _tokens(batch: dict) -> int:
    return batch["input_ids"].numel()


class TokenThroughputMonitor(ThroughputMonitor):
    """Lightning's ThroughputMonitor counting tokens: logs ``train|items_per_sec`` (tokens/s) and,
    on devices whose peak FLOP/s Lightning knows, ``train|device/mfu``."""

    def __init__(self, window_size: int = 20):
        super().__init__(batch_size_fn=_rows, length_fn=_tokens, window_size=window_size)


class HFExport(L.Callback):
    """Writes ``<log_dir>/hf``: the model and tokenizer as a Hugging Face folder, when fit ends."""

    def __init__(self, folder: str = "hf"):
        self.folder = folder

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # ``trainer.log_dir`` broadcasts from rank 0, so every rank must ask for it
        out = Path(trainer.log_dir or trainer.default_root_dir) / self.folder
        if trainer.is_global_zero:
            pl_module.save_pretrained(out)
            rank_zero_info(f"Hugging Face export: {out}")
