"""The learning-rate schedule in phases: each phase warms up to its own peak and decays to its own floor.

A curriculum's stages run in phases (:class:`Phase`, a stage's ``phase``): a stage may start a new
phase, and stages that do not continue the current one. So pre-training has its own schedule over
its own steps, and instruction tuning its own over all its stages, whatever follows pre-training.
The data hands the model its stages' steps and phases (:class:`StagePlan`); :meth:`Schedule.build`
turns them into the run's phases.
"""

import math
from dataclasses import dataclass
from typing import Literal


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


def warmup_decay(step: int, warmup_steps: int, decay_steps: int, min_ratio: float, decay: str = "cosine") -> float:
    """Share of the peak LR at ``step``: linear warm-up over ``warmup_steps``, then ``decay`` to ``min_ratio`` over
    ``decay_steps`` (held there after)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay == "constant":
        return 1.0
    progress = min((step - warmup_steps) / max(decay_steps, 1), 1.0)
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if decay == "cosine" else 1 - progress
    return min_ratio + (1 - min_ratio) * shape


def lr_factor(step: int, total: int, warmup: float, min_ratio: float, decay: str = "cosine") -> float:
    """The LR of step ``step`` (from 0) of a phase of ``total`` steps as a share of the phase's peak."""
    warmup_steps = round(warmup * total)
    return warmup_decay(step, warmup_steps, total - 1 - warmup_steps, min_ratio, decay)


@dataclass(frozen=True)
class StagePlan:
    """One curriculum stage as the optimizer sees it: its name, optimizer steps, and the phase it starts (if any)."""
    name: str
    steps: int
    phase: Phase | None = None


@dataclass(frozen=True)
class Schedule:
    """A run's LR phases as ``(first step, steps, phase)``."""
    phases: tuple[tuple[int, int, Phase], ...]

    @classmethod
    def build(cls, stages: list[StagePlan], first: Phase, max_steps: int = -1) -> "Schedule":
        """The phases of ``stages``: the first stage starts one (``first`` unless it names its own), a stage with a
        ``phase`` starts another; ``max_steps > 0`` cuts the run (its phases end there)."""
        phases, step = [], 0
        for i, stage in enumerate(stages):
            if i == 0 or stage.phase is not None:
                phases.append([step, 0, stage.phase if stage.phase is not None else first])
            phases[-1][1] += stage.steps
            step += stage.steps
        if max_steps > 0:
            phases = [[start, min(length, max_steps - start), p] for start, length, p in phases if start < max_steps]
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
