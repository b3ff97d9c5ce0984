"""Minimal-pair evaluation during training: the fast BabyLM sets scored at epoch ends, logged to the loggers."""

import copy
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from classit import layout
from classit.data.curriculum import CurriculumDataModule
from classit.data.store import data_dir
from classit.eval.scoring import score_items
from classit.eval.tasks import TASKS
from classit.eval.zero_shot import encode_items, load_items, summarize
from classit.train.callbacks import MilestoneEvaluator


class MinimalPairEvalCallback(MilestoneEvaluator):
    """Scores ``pl_module.model`` with ``pl_module.tokenizer`` on zero-shot sets at the end of every
    training epoch (and every ``every_n_steps`` optimizer steps) and logs ``zero_shot/TASK`` (macro
    accuracy, a tie right as the leaderboard counts it), ``zero_shot/TASK/strict`` (ties wrong) and
    ``zero_shot/TASK/ties`` beside it, and ``zero_shot/TASK/GROUP`` (per field for BLiMP, per domain for EWoK...).

    Under DDP each rank scores every ``world_size``-th item and the scores are summed across ranks,
    so every rank ends with the same numbers. The model's train/eval modes and the RNG states are
    restored afterwards; a model held in another dtype is scored through a float32 copy.
    """

    def __init__(self, tasks: list[str] = ["blimp", "ewok"], data_dir: str | None = None,
                 every_n_steps: int | None = None, batch_size: int = 64, max_items: int | None = None):
        """
        Args:
            tasks: any of blimp, supplement, ewok, entity_tracking, wug, wug_past, comps.
            data_dir: folder of the sets (fast or full names); default ``babylm-eval-fast`` of the run's data folder.
            every_n_steps: also evaluate every N optimizer steps (None: at epoch ends only).
            batch_size: texts per forward pass.
            max_items: score at most this many items per task, evenly spaced over the set (None: all).
        """
        if batch_size < 1:
            raise ValueError(f"MinimalPairEvalCallback's batch_size: texts per forward pass, at least 1, "
                             f"not {batch_size}")
        self.tasks, self.every_n_steps, self.batch_size, self.max_items = list(tasks), every_n_steps, batch_size, max_items
        self.data_dir = data_dir
        self.items: dict[str, list] = {}
        self.encoded: dict[str, list] = {}
        self.results: dict[str, dict] = {}
        self._last_step = -1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.items:
            return
        curriculum = isinstance(trainer.datamodule, CurriculumDataModule)
        run_data = trainer.datamodule.data_dir if curriculum else None  # the run's data folder (data.data_dir)
        root = Path(self.data_dir) if self.data_dir else layout.eval_dir(run_data or data_dir(), fast=True)
        for task in self.tasks:
            folder = TASKS[task].find(root)
            if folder is None:
                raise FileNotFoundError(f"MinimalPairEvalCallback: no {task} folder in {Path(root).resolve()}")
            items = load_items(task, folder)
            if self.max_items and len(items) > self.max_items:
                items = [items[i * len(items) // self.max_items] for i in range(self.max_items)]
            self.items[task] = items

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if self.every_n_steps and step > 0 and step % self.every_n_steps == 0 and step != self._last_step:
            self.evaluate(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step != self._last_step:
            self.evaluate(trainer, pl_module)

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, dict]:
        """Score every task now, log the results and return them."""
        self._last_step = trainer.global_step
        model, tokenizer = pl_module.model, pl_module.tokenizer
        if tokenizer is None:
            raise ValueError("MinimalPairEvalCallback needs pl_module.tokenizer")
        modes = {m: m.training for m in model.modules()}
        device = next(model.parameters()).device
        scorer = model if next(model.parameters()).dtype == torch.float32 else copy.deepcopy(model).float()
        scorer.eval()
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                for task, items in self.items.items():
                    if task not in self.encoded:
                        self.encoded[task] = encode_items(tokenizer, items)
                    self.results[task] = summarize(task, items, self._scores(trainer, scorer, task, device))
        finally:
            for module, mode in modes.items():
                module.train(mode)
        metrics = {}
        for task, summary in self.results.items():
            metrics[f"zero_shot/{task}"] = summary["macro"]
            if "strict" in summary:  # not WUG's rho
                metrics[f"zero_shot/{task}/strict"] = summary["strict"]["macro"]
                metrics[f"zero_shot/{task}/ties"] = summary["ties"]
            for key, value in summary.get(TASKS[task].breakdown or "", {}).items():
                metrics[f"zero_shot/{task}/{key}"] = value
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
            rank_zero_info(f"zero-shot accuracy at step {trainer.global_step} (epoch {trainer.current_epoch}): "
                           + ", ".join(f"{t} {s['macro']:.2f}%" for t, s in self.results.items()))
        return self.results

    def _scores(self, trainer: L.Trainer, model, task: str, device: torch.device) -> list[list[float]]:
        """This rank's share of the items scored, then the scores of all items summed across ranks."""
        encoded = self.encoded[task]
        mine = list(range(trainer.global_rank, len(encoded), trainer.world_size))
        table = torch.zeros(len(encoded), max(len(e) for e in encoded), dtype=torch.float64, device=device)
        for i, s in zip(mine, score_items(model, [encoded[i] for i in mine], self.batch_size)):
            table[i, : len(s)] = torch.tensor(s, dtype=torch.float64)
        table = trainer.strategy.reduce(table, reduce_op="sum").cpu()
        return [table[i, : len(e)].tolist() for i, e in enumerate(encoded)]
