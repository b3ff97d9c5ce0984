"""A checkpoint before the job dies: ctrl-C (SIGINT) and SIGTERM (SLURM pre-emption, ``scancel``)."""

import os
import signal
import threading
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class CheckpointOnSignal(L.Callback):
    """The first SIGINT or SIGTERM sets a flag; at the end of the optimizer step in progress (never in the middle
    of gradient accumulation) every rank writes ``last.ckpt`` in the checkpoint folder and stops, and the process
    exits with 128 + the signal number (after the run's last step, fit ends as usual). ``--ckpt_path last``
    resumes from it exactly. A second signal aborts at once."""

    def __init__(self):
        self.received: int | None = None
        self._previous: dict[int, object] = {}
        self._step_at_batch_start = 0
        self._pid = os.getpid()
        self._saved = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after Lightning's own SIGTERM handler (installed when fit starts), which would stop without a checkpoint
        self.received, self._saved, self._pid = None, False, os.getpid()
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}

    def _handle(self, signum: int, frame) -> None:
        if os.getpid() != self._pid:
            return  # a DataLoader worker (forked with this handler): keep serving batches until the trainer stops
        if self.received is not None:
            raise KeyboardInterrupt  # the second signal: stop now
        self.received = signum
        os.write(2, f"classit: {signal.Signals(signum).name}: saving a checkpoint at the end of this optimizer step "
                    "(send it again to abort at once)\n".encode())  # print() may not be re-entered from a handler

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self._exit_if_saved()
        self._step_at_batch_start = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self._step_at_batch_start:
            return  # accumulating gradients: not a step boundary
        if not trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            return
        path = self.last_path(trainer)
        # saved where ModelCheckpoint saves step checkpoints, which resume exactly
        trainer.save_checkpoint(path, weights_only=False)
        name = signal.Signals(self.received).name if self.received else "a signal on another rank"
        rank_zero_info(f"classit: {name}: saved {path} at step {trainer.global_step}; "
                       f"resume with --ckpt_path last (or --ckpt_path {path})")
        self._saved = True  # exit at the next hook, once Lightning has logged this step's metrics

    def _exit_if_saved(self) -> None:
        if self._saved:
            raise SystemExit(128 + (self.received or signal.SIGTERM))

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._exit_if_saved()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._exit_if_saved()

    @staticmethod
    def last_path(trainer: L.Trainer) -> Path:
        """``last.ckpt`` in the run's ModelCheckpoint folder, else in ``<log_dir>/checkpoints``."""
        callback = trainer.checkpoint_callback
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            return Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
        return Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints" / "last.ckpt"

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()
