"""The learning-rate schedule: linear warm-up, then cosine decay to a floor, as a factor of the peak LR."""

import math


def lr_factor(step: int, total: int, warmup: float, min_ratio: float) -> float:
    """The LR of optimizer step ``step`` (from 0) of ``total`` as a share of the peak: ``warmup`` (a fraction of
    ``total``) rising linearly, then a cosine down to ``min_ratio`` at the last step."""
    warmup_steps = round(warmup * total)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min((step - warmup_steps) / max(total - 1 - warmup_steps, 1), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
