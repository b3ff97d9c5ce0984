"""Training callbacks: token throughput (tokens/s, MFU), the curriculum stage in the logs, Hugging Face exports (end of
fit, stage ends, word milestones), the run's checkpoints (end of fit, stage ends) and the BabyLM word budget.
(Signals and the non-finite guard have modules of their own in this package.)"""

import warnings
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.fabric.utilities.throughput import get_available_flops
from lightning.pytorch.callbacks import (
    ModelCheckpoint,
    RichProgressBar,
    ThroughputMonitor,
)
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn

from classit import layout
from classit.data.plan import CurriculumPlan
from classit.files import write_json
from classit.lightning_state import save_last_unless_saved, set_peak_flops

# Dense peak FLOP/s from NVIDIA's datasheets, for GPUs that Lightning's table misses or gives at sparse rates: the H200
# SXM computes as an H100 SXM (and is named plainly 'NVIDIA H200', which that table does not find).
DENSE_FLOPS = {
    "h200 nvl": {torch.bfloat16: 835.5e12, torch.float16: 835.5e12, "tfloat32": 417.5e12, torch.float32: 60.0e12},
    "h200": {torch.bfloat16: 989.4e12, torch.float16: 989.4e12, "tfloat32": 494.7e12, torch.float32: 66.9e12},
}


def dense_peak_flops(device_name: str, dtype: torch.dtype | str) -> float | None:
    """Our dense peak FLOP/s for a GPU named ``device_name`` computing in ``dtype``, or None if we have none."""
    name = device_name.lower()
    chip = next((c for c in DENSE_FLOPS if all(word in name for word in c.split())), None)
    return DENSE_FLOPS[chip].get(dtype) if chip else None


def _own_peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """``DENSE_FLOPS``'s rate for a CUDA device (float32 matrix products at the tf32 rate when PyTorch allows it)."""
    if device.type != "cuda":
        return None
    tf32 = dtype == torch.float32 and torch.get_float32_matmul_precision() != "highest"
    return dense_peak_flops(torch.cuda.get_device_name(device), "tfloat32" if tf32 else dtype)


def peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """The device's dense peak FLOP/s for ``dtype`` (MFU's denominator): ``DENSE_FLOPS``, else Lightning's table."""
    return _own_peak_flops(device, dtype) or get_available_flops(device, dtype)


def _rows(batch: dict) -> int:
    return batch["input_ids"].size(0)


def _tokens(batch: dict) -> int:
    return batch["input_ids"].numel()


class TokenThroughputMonitor(ThroughputMonitor):
    """Lightning's ThroughputMonitor counting tokens: logs ``train|items_per_sec`` (tokens/s) and
    ``train|device/mfu`` of the device's dense peak FLOP/s (:func:`peak_flops`, or ``peak_flops`` given)."""

    def __init__(self, window_size: int = 20, peak_flops: float | None = None):
        """
        Args:
            window_size: batches that each tokens/s figure averages over.
            peak_flops: the device's peak FLOP/s at the run's precision, for a device classit does not know.
        """
        super().__init__(batch_size_fn=_rows, length_fn=_tokens, window_size=window_size)
        self.peak_flops = peak_flops

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Lightning's setup, with the peak of ``peak_flops`` or ``DENSE_FLOPS`` where either knows it."""
        dtype = torch.bfloat16 if trainer.precision.startswith("bf16") else (
            torch.float16 if trainer.precision.startswith("16") else torch.float32)
        peak = self.peak_flops or _own_peak_flops(trainer.strategy.root_device, dtype)
        with warnings.catch_warnings():
            if peak:  # Lightning's "FLOPs not found" does not apply
                warnings.filterwarnings("ignore", message="FLOPs not found")
            super().setup(trainer, pl_module, stage)
        if peak:
            set_peak_flops(self, peak)


class FollowsCurriculum:
    """A callback that follows the curriculum's stages: the CLI hands it the run's plan (``plan``) at setup; without
    one (a run that is no curriculum) it sees no stages."""

    plan: CurriculumPlan | None = None

    def stage_ended(self, epoch: int) -> tuple[int, str] | None:
        """``(index, name)`` of the curriculum stage whose last epoch is ``epoch``, else None."""
        if self.plan is None or not self.plan.ends_stage(epoch):
            return None
        index = self.plan.stage_index(epoch)
        return index, self.plan.stages[index].name

    def stage_at(self, epoch: int) -> tuple[int | None, str | None]:
        """``(index, name)`` of the curriculum stage of ``epoch`` (at the end of fit, one past the last epoch: the last
        stage); ``(None, None)`` without a plan."""
        if self.plan is None:
            return None, None
        index = self.plan.stage_index(min(epoch, self.plan.total_epochs - 1))
        return index, self.plan.stages[index].name


class HFExport(FollowsCurriculum, L.Callback):
    """Writes ``<log_dir>/hf``: the model and tokenizer as a Hugging Face folder, when fit ends; and
    ``<log_dir>/hf/stage{i}_{name}`` when each curriculum stage but the last ends (the last one is ``hf``), so one
    sequential run gives the pre-trained baseline, the model after each instruction stage, and the final model.
    Each export has its ``milestone.json`` as a milestone's (``words`` = the words seen), written last."""

    def __init__(self, folder: str = layout.HF):
        self.folder = folder

    def export(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: tuple[int, str] | None = None) -> None:
        """The export of the end of ``stage`` (index, name), or of the run's end."""
        # ``trainer.log_dir`` broadcasts from rank 0, so every rank must ask for it
        hf = Path(trainer.log_dir or trainer.default_root_dir) / self.folder
        out = layout.stage_export(hf, *stage) if stage else hf
        if trainer.is_global_zero:
            pl_module.save_pretrained(out)
            index, name = stage or self.stage_at(trainer.current_epoch)
            words = float(pl_module.words_seen)
            write_json({"words": words, "words_seen": words, "step": trainer.global_step, "stage": index,
                        "stage_name": name}, layout.export_info(out))
            rank_zero_info(f"Hugging Face export: {out}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ended = self.stage_ended(trainer.current_epoch)
        if ended and trainer.current_epoch + 1 < self.plan.total_epochs:
            self.export(trainer, pl_module, ended)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.export(trainer, pl_module)


class RunProgressBar(FollowsCurriculum, RichProgressBar):
    """Lightning's progress bar counting the run's optimizer steps (every epoch and stage), not the epoch's batches."""

    @property
    def total_train_batches(self) -> int | float:
        return self.plan.total_steps if self.plan is not None else super().total_train_batches

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, trainer.global_step - 1)  # shows global_step


class RunCheckpoint(FollowsCurriculum, ModelCheckpoint):
    """Lightning's ModelCheckpoint whose ``last.ckpt`` is always the newest state of the run, whoever wrote it (the
    periodic save, a signal's, the end of fit: Lightning writes it at the end only when no checkpoint was saved
    before, and a resumed run's would be ``last-v1.ckpt``), and which keeps ``stage{i}_{name}.ckpt`` at the end of
    every curriculum stage: a run resumes or exports from its end or from any stage's end."""

    def __init__(self, save_last: bool = True, enable_version_counter: bool = False, **kwargs):
        super().__init__(save_last=save_last, enable_version_counter=enable_version_counter, **kwargs)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        ended = self.stage_ended(trainer.current_epoch)
        if ended and self.dirpath:
            trainer.save_checkpoint(layout.stage_checkpoint(self.dirpath, *ended), weights_only=False)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.save_last:
            save_last_unless_saved(self, trainer)


class _WordsSeenCallback(L.Callback):
    """Reads the module's words seen once per optimizer step (it changes only there; reading it syncs a GPU)."""

    _step = -1

    def words_after_step(self, trainer: L.Trainer, pl_module: L.LightningModule) -> float | None:
        """The words seen, if an optimizer step ended since the last call; else None."""
        if trainer.global_step == self._step:
            return None
        self._step = trainer.global_step
        return float(pl_module.words_seen)


class MilestoneEvaluator(L.Callback):
    """A callback that evaluates the model on demand: ``MilestoneExport(evaluate=True)`` runs these at each milestone
    (e.g. ``classit.eval.callbacks.MinimalPairEvalCallback``)."""

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule):
        raise NotImplementedError


class MilestoneExport(FollowsCurriculum, _WordsSeenCallback):
    """Hugging Face exports ``<log_dir>/milestones/chck_{N}M`` when the words seen (``train/words_seen``) pass each
    milestone: the intermediate checkpoints the BabyLM challenge evaluates, each with ``milestone.json`` (words,
    words seen, step, curriculum stage index). ``evaluate`` also runs the run's :class:`MilestoneEvaluator`
    callbacks on each one."""

    def __init__(self, milestones: list[int] | None = None, evaluate: bool = False):
        """
        Args:
            milestones: words, increasing; default the BabyLM 2025 list (1M, 2M, … 10M, 20M, … 100M, 200M, … 1B).
            evaluate: run the run's MilestoneEvaluator callbacks (its zero-shot scoring) at each milestone too.
        """
        self.milestones = list(milestones) if milestones is not None else layout.babylm_milestones()
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])) or min(self.milestones, default=1) <= 0:
            raise ValueError(f"MilestoneExport.milestones: positive word counts in increasing order, not {self.milestones}")
        self.evaluate = evaluate

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        words = self.words_after_step(trainer, pl_module)
        if words is None:
            return
        passed = [m for m in self.milestones if m <= words]
        if not passed:
            return
        self.milestones = self.milestones[len(passed):]
        out = layout.milestone_export(Path(trainer.log_dir or trainer.default_root_dir), passed[-1])
        if trainer.is_global_zero:
            pl_module.save_pretrained(out)
            index, name = self.stage_at(trainer.current_epoch)
            write_json({"words": passed[-1], "words_seen": words, "step": trainer.global_step, "stage": index,
                        "stage_name": name}, layout.export_info(out))
            rank_zero_info(f"milestone {passed[-1]:,} words (seen {words:,.0f}): {out}")
        if self.evaluate:
            for callback in trainer.callbacks:
                if isinstance(callback, MilestoneEvaluator):
                    callback.evaluate(trainer, pl_module)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.milestones = [m for m in self.milestones if m > float(pl_module.words_seen)]  # resumed: passed already


class WordBudget(_WordsSeenCallback):
    """The BabyLM word budget (100M words for strict-small, 1B for strict and interaction): ``stop`` the run once
    the words seen (every block and example trained on, repeats counted again) reach ``words``, or ``warn`` once."""

    def __init__(self, words: int = 1_000_000_000, action: Literal["stop", "warn"] = "stop"):
        self.words, self.action, self.warned = words, action, False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seen = float(pl_module.words_seen)
        if self.action == "stop" and seen >= self.words:
            raise ValueError(f"WordBudget.words: this run has already seen {seen:,.0f} words, the budget is "
                             f"{self.words:,}: nothing is left to train (raise the budget or start from another checkpoint)")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        seen = self.words_after_step(trainer, pl_module)
        if seen is None or seen < self.words or self.warned:
            return
        self.warned = True
        message = f"word budget reached at step {trainer.global_step}: {seen:,.0f} words seen, budget {self.words:,}"
        if self.action == "stop":
            trainer.should_stop = True
            message += "; stopping"
        rank_zero_warn(message)


class CurriculumLogger(FollowsCurriculum, L.Callback):
    """Logs the curriculum stage at each epoch start: ``curriculum/stage`` (index) and, on TensorBoard, its name."""

    def __init__(self):
        self.logged_epoch = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.on_train_epoch_start(trainer, pl_module)  # a resumed epoch has no epoch start

    @rank_zero_only
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.plan is None or self.logged_epoch == trainer.current_epoch:
            return
        self.logged_epoch = trainer.current_epoch
        index = self.plan.stage_index(trainer.current_epoch)
        stage = self.plan.stages[index]
        for logger in trainer.loggers:
            logger.log_metrics({"curriculum/stage": index, "curriculum/epoch": trainer.current_epoch},
                               step=trainer.global_step)
            if hasattr(logger.experiment, "add_text"):
                logger.experiment.add_text("curriculum/stage_name", f"{index}: {stage.name} ({', '.join(stage.sources)})",
                                           global_step=trainer.global_step)
