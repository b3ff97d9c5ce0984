"""The curriculum's plan: one frozen value, built once a run knows its sources' sizes and its devices.

A :class:`CurriculumPlan` holds the stages, the training sequences of each source, the global and
micro batch sizes, the world size and the seed (and Lightning's ``limit_train_batches`` and
``max_steps`` where they cut the run). Everything a run derives from them is a pure function of it:
micro-batches and accumulation, the optimizer steps of each stage, the stage of an epoch, the global
batches of a stage and epoch and each rank's share of them, the LR phases. The CLI hands the one plan
to the Trainer's settings, the model, the curriculum's loaders, the callbacks and ``classit plan``.

The global batch (``batch_size`` sequences) is fixed by the config, not by the hardware: on
``w`` devices each global batch is cut into ``w × a`` micro-batches of at most
``micro_batch_size`` sequences (``a``: gradient accumulation, derived), rank ``r`` taking
micro-batches ``r, r + w, …``. So 1, 8 or 64 GPUs train on the same global batches in the same
order and take the same optimizer steps. The order is a pure function of (seed, stage, epoch):
each epoch, each source's items are permuted by ``numpy.random.default_rng([seed, stage, epoch])``
and cut into whole global batches, and the batches of the stage's sources are shuffled together.
"""

import math
from dataclasses import dataclass

import numpy as np

from classit.optim import Phase, Schedule, StagePlan, cut_at, phase_numbers


@dataclass
class Stage:
    """One curriculum stage: ``sources`` (names of ``data.sources``) trained on together for ``epochs``.

    ``weights`` (one per source) mix the sources by share of batches instead of taking every
    example once: the epoch keeps its number of batches, a source with a larger share repeats
    examples and one with a smaller share leaves some out. ``phase`` starts a new optimizer phase
    (its own LR schedule over this stage and the following ones up to the next phase); the first
    stage always starts one, from the model's ``lr``, ``warmup`` and ``min_lr_ratio`` unless given.
    """
    name: str
    sources: list[str]
    epochs: int = 1
    weights: list[float] | None = None
    phase: Phase | None = None

    def __post_init__(self):
        if isinstance(self.phase, dict):
            self.phase = Phase(**self.phase)


def micro_batches(batch_size: int, micro_batch_size: int | None, world: int) -> tuple[int, int]:
    """``(micro-batch, accumulation)`` that make up a global batch of ``batch_size`` on ``world`` devices, each
    micro-batch at most ``micro_batch_size`` sequences (None: a device's whole share)."""
    if batch_size % world:
        raise ValueError(f"data.batch_size: {batch_size} sequences do not split evenly over {world} devices; "
                         f"use a multiple of {world}")
    per_device = batch_size // world
    cap = micro_batch_size or per_device
    accumulate = next(a for a in range(-(-per_device // cap), per_device + 1) if per_device % a == 0)
    return per_device // accumulate, accumulate


def rank_share(batches: list[tuple[int, list[int]]], world: int, rank: int, accumulate: int) -> list:
    """Rank ``rank``'s micro-batches of these global batches: each cut into ``world × accumulate`` equal parts."""
    mine = []
    for k, items in batches:
        size = len(items) // (world * accumulate)
        mine += [(k, items[(j * world + rank) * size:(j * world + rank + 1) * size]) for j in range(accumulate)]
    return mine


@dataclass(frozen=True)
class CurriculumPlan:
    """What a curriculum run will do on ``world_size`` devices (module doc). ``sizes``: training sequences of each
    source the stages name; ``limit_train_batches`` and ``max_steps`` are Lightning's (per device; -1: no cut)."""
    stages: tuple[Stage, ...]
    sizes: dict[str, int]
    batch_size: int
    micro_batch_size: int | None = None
    world_size: int = 1
    seed: int = 42
    limit_train_batches: int | float = 1.0
    max_steps: int = -1

    @property
    def micro(self) -> int:
        """Sequences in one micro-batch on one device."""
        return micro_batches(self.batch_size, self.micro_batch_size, self.world_size)[0]

    @property
    def accumulate(self) -> int:
        """Micro-batches a device accumulates per optimizer step."""
        return micro_batches(self.batch_size, self.micro_batch_size, self.world_size)[1]

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.stages)

    def stage_index(self, epoch: int) -> int:
        """The stage that trains epoch ``epoch`` (counted from 0 over the whole curriculum)."""
        end = 0
        for i, stage in enumerate(self.stages):
            end += stage.epochs
            if epoch < end:
                return i
        raise ValueError(f"epoch {epoch} is past the curriculum's {self.total_epochs} epochs (data.stages)")

    def ends_stage(self, epoch: int) -> bool:
        """Whether ``epoch`` is the last epoch of its stage."""
        return epoch + 1 >= self.total_epochs or self.stage_index(epoch + 1) != self.stage_index(epoch)

    def counts(self, stage: Stage) -> list[int]:
        """Global batches per epoch of each of the stage's sources."""
        natural = [self.sizes[n] // self.batch_size for n in stage.sources]
        if not stage.weights:
            return natural
        return [round(sum(natural) * w / sum(stage.weights)) for w in stage.weights]

    def epoch_micro_batches(self, stage: Stage, limit: int | float | None = None) -> int:
        """Micro-batches one device trains in an epoch of ``stage``, cut at ``limit`` (Lightning's
        ``limit_train_batches``, per device; default the plan's)."""
        limit = self.limit_train_batches if limit is None else limit
        batches = sum(self.counts(stage)) * self.accumulate
        return min(batches, limit) if isinstance(limit, int) else int(batches * limit)

    def epoch_steps(self, stage: Stage, limit: int | float | None = None) -> int:
        """Optimizer steps of one epoch of ``stage``, its micro-batches cut at ``limit`` (as
        :meth:`epoch_micro_batches`)."""
        return math.ceil(self.epoch_micro_batches(stage, limit) / self.accumulate)

    def stage_plans(self) -> list[StagePlan]:
        """Every stage's optimizer steps (``limit_train_batches`` counts, ``max_steps`` not) and the phase it starts."""
        return [StagePlan(s.name, s.epochs * self.epoch_steps(s), s.phase) for s in self.stages]

    def stage_steps(self) -> list[int]:
        """Every stage's optimizer steps in the run, ``max_steps`` counted (a stage past it has none)."""
        return [s.steps for s in cut_at(self.stage_plans(), self.max_steps)]

    def phase_of(self, index: int) -> int:
        """The LR phase (from 0) that stage ``index`` trains in."""
        return phase_numbers(self.stage_plans())[index]

    def schedule(self, first: Phase) -> Schedule:
        """The run's LR phases, the first from ``first`` unless the first stage names its own; cut at ``max_steps``."""
        return Schedule.build(self.stage_plans(), first, self.max_steps)

    @property
    def total_steps(self) -> int:
        """The run's optimizer steps."""
        return self.schedule(Phase()).total_steps

    def batches(self, stage_index: int, epoch: int) -> list[tuple[int, list[int]]]:
        """The epoch's global batches as ``(source number in the stage, item indices)``, in order."""
        stage = self.stages[stage_index]
        rng = np.random.default_rng([self.seed, stage_index, epoch])
        batches = []
        for k, (name, count) in enumerate(zip(stage.sources, self.counts(stage))):
            size, whole = self.sizes[name], []
            while len(whole) < count:  # more than one pass only with weights
                order = rng.permutation(size)
                whole += [order[i:i + self.batch_size].tolist() for i in range(0, size - self.batch_size + 1,
                                                                                   self.batch_size)]
            batches += [(k, b) for b in whole[:count]]
        return [batches[i] for i in rng.permutation(len(batches))]

    def rank_batches(self, epoch: int, rank: int) -> list[tuple[int, list[int]]]:
        """Rank ``rank``'s micro-batches of epoch ``epoch``, as ``(source number in the stage, item indices)``."""
        return rank_share(self.batches(self.stage_index(epoch), epoch), self.world_size, rank, self.accumulate)


def check_stages(sources: dict, stages: list[Stage]) -> None:
    """Errors naming the config key: no sources or stages, an empty stage, an unknown source, bad epochs or weights."""
    if not sources:
        raise ValueError("data.sources: no sources; name at least one (e.g. pretrain: classit.data.babylm.BabyLMCorpus)")
    if not stages:
        raise ValueError("data.stages: no stages; list at least one")
    known = ", ".join(sources)
    for i, stage in enumerate(stages):
        key = f"data.stages[{i}]"
        if not stage.sources:
            raise ValueError(f"{key}.sources: stage '{stage.name}' is empty; name one or more of: {known}")
        for name in stage.sources:
            if name not in sources:
                raise ValueError(f"{key}.sources: unknown source '{name}'; known: {known}")
        if stage.epochs < 1:
            raise ValueError(f"{key}.epochs: stage '{stage.name}' needs at least 1 epoch, not {stage.epochs}")
        if stage.weights is not None and (len(stage.weights) != len(stage.sources) or min(stage.weights) <= 0):
            raise ValueError(f"{key}.weights: one positive weight per source ({len(stage.sources)}), "
                             f"not {stage.weights}")
