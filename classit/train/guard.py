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
        self._hooks = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning runs forward, backward and on_before_optimizer_step inside optimizer.step(closure), so the
        # check wraps that closure: it runs after the loss is known and before the update
        self._hooks = [o.register_step_pre_hook(self._wrap_closure(trainer, pl_module)) for o in trainer.optimizers]

    def _wrap_closure(self, trainer: L.Trainer, pl_module: L.LightningModule):
        def pre_hook(optimizer: torch.optim.Optimizer, args, kwargs):
            closure = kwargs.get("closure")
            if closure is None:
                return None

            def checked_closure():
                result = closure()
                loss = getattr(pl_module, "step_loss", None)
                if loss is not None and not torch.isfinite(loss):
                    self._non_finite(trainer, optimizer, float(loss))
                return result

            return args, {**kwargs, "closure": checked_closure}

        return pre_hook

    def _non_finite(self, trainer: L.Trainer, optimizer: torch.optim.Optimizer, loss: float) -> None:
        step = trainer.global_step + 1
        if self.action == "stop":
            raise NonFiniteLossError(f"step {step}: the loss is {loss}; stopped before updating the weights "
                                     f"(the last checkpoint is from before this step; NonFiniteGuard(action=skip) "
                                     f"skips such steps)")
        rank_zero_warn(f"step {step}: the loss is {loss}; skipped this optimizer step")
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad = None  # the optimizer leaves parameters without gradients as they are

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._remove()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._remove()

    def _remove(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
