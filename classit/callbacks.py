"""Training callbacks: token throughput (tokens/s, MFU), the Hugging Face export and the final checkpoint of a run."""

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, ThroughputMonitor
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


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint whose ``last.ckpt`` is always the state at the end of fit (Lightning writes it
    at the end only when no checkpoint was saved before), so a finished run resumes or exports from its end."""

    def __init__(self, save_last: bool = True, **kwargs):
        super().__init__(save_last=save_last, **kwargs)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
