"""Callbacks that tests load by ``class_path`` into real `classit fit` processes: a record of the rows each rank
read, a SIGKILL, a real signal, a file that says a step was reached, a step that hangs, a poisoned loss; a subclass
of a classit callback."""

import json
import os
import signal
import time
from pathlib import Path

import lightning as L
import torch

from classit.train.callbacks import RunCheckpoint
from classit.train.signals import CheckpointOnSignal


class RowRecorder(L.Callback):
    """Every training batch as (epoch, its rows' sources or None, its rows' ids); with ``out_dir``, written when
    training ends to ``out_dir/rankN.json``: the first ``ids`` ids (None: all) of each row this rank read, its steps
    and world size."""

    def __init__(self, out_dir: str | None = None, ids: int | None = 8):
        self.out_dir, self.ids = Path(out_dir) if out_dir else None, ids
        self.batches: list[tuple[int, list[str] | None, list[list[int]]]] = []

    @property
    def rows(self) -> list[list[int]]:
        return [row for _, _, rows in self.batches for row in rows]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append((trainer.current_epoch, batch.get("source"), batch["input_ids"].tolist()))

    def on_train_end(self, trainer, pl_module):
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"rank{trainer.global_rank}.json").write_text(json.dumps(
            {"rows": [row[:self.ids] for row in self.rows], "global_step": trainer.global_step,
             "world_size": trainer.world_size}))


class KillAtStep(L.Callback):
    """SIGKILL this process once training reaches ``step`` optimizer steps: a job that dies without warning."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class SignalAt(L.Callback):
    """Sends this process a real signal when the first micro-batch after ``step`` optimizer steps starts (with
    ``rank``: only in that rank's process)."""

    def __init__(self, signal_name: str, step: int, times: int = 1, rank: int | None = None):
        self.signum, self.step, self.times, self.rank = signal.Signals[signal_name], step, times, rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.rank not in (None, trainer.global_rank):
            return
        if trainer.global_step == self.step and self.times:
            for _ in range(self.times):
                self.times -= 1
                os.kill(os.getpid(), self.signum)


class PidFiles(L.Callback):
    """Writes ``out_dir/rankN.pid`` when training starts: the process id of each rank."""

    def __init__(self, out_dir: str):
        self.out_dir = Path(out_dir)

    def on_train_start(self, trainer, pl_module):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"rank{trainer.global_rank}.pid").write_text(str(os.getpid()))


class TouchAt(L.Callback):
    """Creates ``path`` when ``step`` optimizer steps are done (the test outside then signals the job), then holds
    that batch until the run's ``CheckpointOnSignal`` has received the signal: it lands in that step, however slow
    the machine."""

    def __init__(self, step: int, path: str):
        self.step, self.path = step, path

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step >= self.step:
            Path(self.path).touch()
            stop = next(c for c in trainer.callbacks if isinstance(c, CheckpointOnSignal))
            while stop.received is None:
                time.sleep(0.01)


class HangAt(L.Callback):
    """A step that never ends: sleeps at the start of the first micro-batch after ``step`` optimizer steps."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            time.sleep(600)


class PoisonLoss(L.Callback):
    """Makes the logits of the optimizer step after ``step`` NaN; saves the weights before and after that step."""

    def __init__(self, step: int, out: str):
        self.step, self.out, self.hook, self.before = step, out, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step and self.hook is None:
            self.before = {k: v.clone() for k, v in pl_module.model.state_dict().items()}
            self.hook = pl_module.model.lm_head.register_forward_hook(lambda m, i, out: out * float("nan"))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.hook is not None and trainer.global_step == self.step + 1:
            self.hook.remove()
            torch.save({"before": self.before, "after": pl_module.model.state_dict()}, self.out)


class OwnRunCheckpoint(RunCheckpoint):
    """A project's own RunCheckpoint: a study still branches from the stage checkpoints it writes."""
