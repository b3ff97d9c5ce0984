"""A checkpoint before the job dies: ctrl-C (SIGINT) and SIGTERM (SLURM pre-emption, ``scancel``, ``docker stop``),
sent to this process or to the whole job."""

import os
import select
import signal
import threading
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from classit import layout

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _say(text: str) -> None:
    os.write(2, f"classit: {text}\n".encode())  # print() may not be re-entered from a handler or a second thread


class CheckpointOnSignal(L.Callback):
    """The first SIGINT or SIGTERM asks for a stop: at the end of the optimizer step in progress (never in the middle
    of gradient accumulation) every rank writes ``last.ckpt`` in the checkpoint folder and the process exits with
    128 + the signal number (after the run's last step, fit ends as usual). ``--ckpt_path last`` resumes from it
    exactly. A second signal, or no step boundary within ``grace`` seconds (a step that cannot end), exits at once
    without a new checkpoint, saying which one is the last. A watcher thread reads the signals as they arrive
    (Python's wakeup fd), so it acts even while the main thread is stuck inside one long operation."""

    def __init__(self, grace: float = 60.0):
        """
        Args:
            grace: seconds the step in progress has to end once a signal came; then the process exits unsaved.
        """
        if grace <= 0:
            raise ValueError(f"CheckpointOnSignal.grace: seconds, more than 0, not {grace}")
        self.grace = grace
        self.received: int | None = None
        self.last: Path | None = None
        self._previous: dict[int, object] = {}
        self._pipe: tuple[int, int] | None = None
        self._old_wakeup_fd = -1
        self._step_at_batch_start = 0
        self._saving = self._saved = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after Lightning's own SIGTERM handler (installed when fit starts), which would stop without a checkpoint
        self.received, self._saving, self._saved, self.last = None, False, False, self.last_path(trainer)
        if threading.current_thread() is not threading.main_thread():
            return
        self._previous = {s: signal.signal(s, lambda signum, frame: None) for s in SIGNALS}  # the watcher acts
        self._pipe = os.pipe()
        os.set_blocking(self._pipe[1], False)
        self._old_wakeup_fd = signal.set_wakeup_fd(self._pipe[1], warn_on_full_buffer=False)
        threading.Thread(target=self._watch, args=(self._pipe[0],), daemon=True, name="classit-signals").start()

    def _watch(self, fd: int) -> None:
        """Wait for signals: the first asks for a stop; the second, or the grace period's end, exits at once."""
        deadline = None
        while True:
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0)
            if not select.select([fd], [], [], timeout)[0]:
                if not self._saving:
                    self._exit_now(f"no step boundary within {self.grace:g}s (CheckpointOnSignal.grace)")
                deadline = None
                continue
            data = os.read(fd, 64)
            if not data:  # every write end closed: training ended
                os.close(fd)
                return
            for signum in (s for s in data if s in SIGNALS):
                name = signal.Signals(signum).name
                if self.received is None:
                    self.received, deadline = signum, time.monotonic() + self.grace
                    _say(f"{name}: saving a checkpoint at the end of this optimizer step (send it again to exit "
                         "at once, unsaved)")
                elif not self._saving:
                    self._exit_now(f"second {name}")

    def _exit_now(self, why: str) -> None:
        state = f"the last checkpoint is {self.last}" if self.last and self.last.is_file() else "no checkpoint was saved"
        _say(f"{why}: exiting now without a new checkpoint; {state}")
        os._exit(128 + (self.received or signal.SIGTERM))

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self._exit_if_saved()
        self._step_at_batch_start = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self._step_at_batch_start:
            return  # accumulating gradients: not a step boundary
        if not trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            return
        self._saving = True  # from here on, neither the grace period nor a second signal cuts the save short
        # saved where ModelCheckpoint saves step checkpoints, which resume exactly
        trainer.save_checkpoint(self.last, weights_only=False)
        name = signal.Signals(self.received).name if self.received else "a signal on another rank"
        rank_zero_info(f"classit: {name}: saved {self.last} at step {trainer.global_step}; "
                       f"resume with --ckpt_path last (or --ckpt_path {self.last})")
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
        return layout.last_checkpoint(Path(trainer.log_dir or trainer.default_root_dir))

    def _restore(self) -> None:
        if self._pipe is not None:
            signal.set_wakeup_fd(self._old_wakeup_fd)
            os.close(self._pipe[1])  # the watcher reads the end of the stream and closes its side
            self._pipe = None
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()
