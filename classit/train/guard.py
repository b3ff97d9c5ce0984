"""Stop, or skip the optimizer step, when the loss of a step is NaN or infinite."""

from typing import Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn


class NonFiniteLossError(ValueError):
    """The loss of an optimizer step was NaN or infinite."""


class NonFiniteGuard(L.Callback):
    """Checks the loss of every optimizer step (``BabyLM.step_loss``: all micro-batches, all ranks) before the
    optimizer updates the weights.

    ``stop``: the run ends with an error naming the step, before the bad update and before any checkpoint of it,
    so the last checkpoint stays the last good one. ``skip``: the step leaves weights and optimizer state as
    they were (the LR schedule moves on) and training continues.
    """

    def __init__(self, action: Literal["stop", "skip"] = "stop"):
        self.action = action

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        # every precision path (AMP's grad scaler too) calls this after backward and before the update; it
        # runs before the module's hook, so the module finishes the step's bookkeeping (step_loss) here first
        pl_module.finish_step()
        loss = pl_module.step_loss
        if torch.isfinite(loss):
            return
        step = trainer.global_step + 1
        if self.action == "stop":
            raise NonFiniteLossError(f"step {step}: the loss is {float(loss)}; stopped before updating the weights "
                                     f"(the last checkpoint is from before this step; NonFiniteGuard(action=skip) "
                                     f"skips such steps)")
        rank_zero_warn(f"step {step}: the loss is {float(loss)}; skipped this optimizer step")
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad = None  # the optimizer leaves parameters without gradients as they are
