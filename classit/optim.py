"""The optimizer rules every training shares: AdamW's parameter groups and the learning-rate schedule.

Weight decay falls on matrices only (:func:`parameter_groups`). The LR runs in phases: each phase warms up
to its own peak and decays to its own floor at its last step (:func:`lr_factor`); pre-training, instruction
phases and fine-tuning share both rules. A curriculum's stages run in phases (:class:`Phase`, a stage's
``phase``): a stage may start a new phase, and stages that do not continue the current one. So pre-training has its own schedule over
its own steps, and instruction tuning its own over all its stages, whatever follows pre-training.
The data hands the model its stages' steps and phases (:class:`StagePlan`); :meth:`Schedule.build`
turns them into the run's phases.
"""

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Literal

from torch import nn


def parameter_groups(module: nn.Module, weight_decay: float, decay_embeddings: bool = False) -> list[dict]:
    """AdamW's two groups of ``module``'s parameters: ``weight_decay`` on matrices, none on norms and biases, nor on
    embeddings (names holding ``emb``, or GPT-2's ``wte``/``wpe``) unless ``decay_embeddings``: fine-tuning decays
    them, as the official pipeline's fine-tuning (Hugging Face's Trainer) does."""
    decay = [p for name, p in module.named_parameters() if p.dim() >= 2 and
             (decay_embeddings or not any(part in name for part in ("emb", "wte", "wpe")))]
    ids = {id(p) for p in decay}
    no_decay = [p for p in module.parameters() if id(p) not in ids]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@dataclass
class Phase:
    """An optimizer phase: peak ``lr`` (None: ``model.lr``), linear warm-up over the fraction ``warmup`` of the
    phase's steps, then ``decay`` (cosine or linear to ``lr × min_lr_ratio`` at its last step, or constant);
    ``reset_optimizer`` starts it with a fresh AdamW state."""
    lr: float | None = None
    warmup: float = 0.0
    min_lr_ratio: float = 0.1
    decay: Literal["cosine", "linear", "constant"] = "cosine"
    reset_optimizer: bool = False


def lr_factor(step: int, total: int, warmup: float, min_ratio: float, decay: str = "cosine") -> float:
    """The LR of step ``step`` (from 0) of a phase of ``total`` steps as a share of the phase's peak: linear warm-up
    over the fraction ``warmup`` of the steps, then ``decay`` to ``min_ratio``, reached at the last step."""
    warm = warmup_steps(warmup, total)
    if step < warm:
        return (step + 1) / warm
    if decay == "constant":
        return 1.0
    progress = min((step - warm) / max(total - 1 - warm, 1), 1.0)
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if decay == "cosine" else 1 - progress
    return min_ratio + (1 - min_ratio) * shape


def warmup_steps(warmup: float, total: int) -> int:
    """The warm-up steps of a phase of ``total`` steps that warms up over the fraction ``warmup`` of them."""
    return round(warmup * total)


@dataclass(frozen=True)
class StagePlan:
    """One curriculum stage as the optimizer sees it: its name, optimizer steps, and the phase it starts (if any)."""
    name: str
    steps: int
    phase: Phase | None = None


def cut_at(stages: list[StagePlan], max_steps: int) -> list[StagePlan]:
    """The stages of a run that ``max_steps > 0`` ends: each keeps its steps before that end (none past it)."""
    if max_steps <= 0:
        return list(stages)
    cut, step = [], 0
    for stage in stages:
        steps = max(min(stage.steps, max_steps - step), 0)
        cut.append(dataclasses.replace(stage, steps=steps))
        step += steps
    return cut


def phase_numbers(stages: list[StagePlan]) -> list[int]:
    """The phase (from 0) each stage trains in: the first stage starts one, and so does a stage with a ``phase``."""
    return list(itertools.accumulate(int(i > 0 and stage.phase is not None) for i, stage in enumerate(stages)))


@dataclass(frozen=True)
class Schedule:
    """A run's LR phases as ``(first step, steps, phase)``."""
    phases: tuple[tuple[int, int, Phase], ...]

    @classmethod
    def build(cls, stages: list[StagePlan], first: Phase, max_steps: int = -1) -> "Schedule":
        """The phases of ``stages``: the first stage starts one (``first`` unless it names its own), a stage with a
        ``phase`` starts another; ``max_steps > 0`` cuts the run (its phases end there)."""
        stages = cut_at(stages, max_steps)
        phases, step = [], 0
        for number, stage in zip(phase_numbers(stages), stages):
            if number == len(phases):
                phases.append([step, 0, stage.phase if stage.phase is not None else first])
            phases[-1][1] += stage.steps
            step += stage.steps
        if max_steps > 0:
            phases = [p for p in phases if p[0] < max_steps]
        return cls(tuple(tuple(p) for p in phases))

    @property
    def total_steps(self) -> int:
        return sum(length for _, length, _ in self.phases)

    def lr(self, step: int, base_lr: float) -> float:
        """The LR at optimizer step ``step``."""
        start, length, phase = next((p for p in reversed(self.phases) if p[0] <= step), self.phases[0])
        peak = phase.lr if phase.lr is not None else base_lr
        return peak * lr_factor(step - start, length, phase.warmup, phase.min_lr_ratio, phase.decay)

    def starts_fresh(self, step: int) -> bool:
        """Whether a phase with ``reset_optimizer`` starts at ``step`` (after the first)."""
        return step > 0 and any(phase.reset_optimizer and start == step for start, _, phase in self.phases)
