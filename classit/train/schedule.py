"""The learning-rate schedule in phases: each phase warms up to its own peak and decays to its own floor.

A curriculum's stages run in phases (``classit.data.curriculum.Phase``): a stage may start a new
phase, and stages that do not continue the current one. So pre-training has its own schedule over
its own steps, and instruction tuning its own over all its stages, whatever follows pre-training.
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


def lr_factor(step: int, total: int, warmup: float, min_ratio: float, decay: str = "cosine") -> float:
    """The LR of step ``step`` (from 0) of a phase of ``total`` steps as a share of the phase's peak."""
    warmup_steps = round(warmup * total)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay == "constant":
        return 1.0
    progress = min((step - warmup_steps) / max(total - 1 - warmup_steps, 1), 1.0)
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if decay == "cosine" else 1 - progress
    return min_ratio + (1 - min_ratio) * shape


def phase_lr(step: int, phases: list[tuple[int, int, Phase]], base_lr: float) -> float:
    """The LR at optimizer step ``step`` of a run of ``(first step, steps, phase)`` phases."""
    start, length, phase = next((p for p in reversed(phases) if p[0] <= step), phases[0])
    peak = phase.lr if phase.lr is not None else base_lr
    return peak * lr_factor(step - start, length, phase.warmup, phase.min_lr_ratio, phase.decay)
