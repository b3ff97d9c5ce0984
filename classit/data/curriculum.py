"""Curricula: data modules composed into stages, trained one after another.

A stage names one or more sources (data modules) and a number of epochs. A stage of one
source trains on it alone; a stage of several mixes them into one shuffled stream (merged).
Stages follow each other at epoch boundaries (sequential), so the paper's runs are::

    sequential: [pretrain] 8 epochs → [switchboard] 5 → [simple_wiki] 5
    merged:     [pretrain] 8 epochs → [switchboard, simple_wiki] 10

Every batch comes from one source (its own batch size and collate) and carries ``source``.
The order of batches is a pure function of (seed, stage, epoch): each epoch, each source's
examples are permuted by ``numpy.random.default_rng([seed, stage, epoch])`` and cut into
batches, the batches of all the stage's sources are shuffled together, and under DDP rank
``r`` of ``w`` takes every ``w``-th batch from ``r``. The data module's ``state_dict`` (saved in
Lightning checkpoints) holds the epoch and the batches already trained on in it, so a run
resumed from a mid-epoch checkpoint skips exactly those and goes on with the same batches
as a run never stopped. The trainer must reload data every epoch
(``reload_dataloaders_every_n_epochs: 1``) and ``trainer.max_epochs`` must be the stages' sum.
"""

import math
from dataclasses import dataclass

import lightning as L
import numpy as np
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from classit.data.tokenizer import TokenizerLinks


@dataclass
class Stage:
    """One curriculum stage: ``sources`` (names of ``data.sources``) trained on together for ``epochs``.

    ``weights`` (one per source) mix the sources by share of batches instead of taking every
    example once: the epoch keeps its number of batches, a source with a larger share repeats
    examples and one with a smaller share leaves some out.
    """
    name: str
    sources: list[str]
    epochs: int = 1
    weights: list[float] | None = None


class StageData(Dataset):
    """The datasets of one stage's sources; an index is a whole batch: ``(source number, item indices)``."""

    def __init__(self, names: list[str], datasets: list, collates: list):
        self.names, self.datasets, self.collates = names, datasets, collates

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, batch: tuple[int, list[int]]) -> dict:
        k, indices = batch
        out = self.collates[k]([self.datasets[k][i] for i in indices])
        out.setdefault("source", [self.names[k]] * len(indices))
        return out


class BatchPlan(DistributedSampler):
    """This rank's share of a list of batches, less the first ``skip`` (already trained on).

    ``len()`` counts the skipped batches too, as Lightning expects of a resumed loader. A
    :class:`DistributedSampler`, so that Lightning does not put its own sampler in its place.
    """

    def __init__(self, batches: list, num_replicas: int = 1, rank: int = 0, skip: int = 0):
        super().__init__(batches, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=True)
        self.batches, self.skip = batches, skip

    def __iter__(self):
        mine = self.batches[:self.num_samples * self.num_replicas][self.rank::self.num_replicas]
        return iter(mine[self.skip:])


class CurriculumDataModule(TokenizerLinks, L.LightningDataModule):
    """Data modules (``sources``) trained on in ``stages``, switching at epoch boundaries (see the module doc)."""

    def __init__(self, sources: dict[str, L.LightningDataModule], stages: list[Stage], seed: int = 42,
                 num_workers: int = 0):
        """
        Args:
            sources: data modules by name, e.g. ``pretrain`` (BabyLMDataModule), ``switchboard``,
                ``simple_wiki``. All use the tokenizer of the first stage's first source.
            stages: in order; see :class:`Stage`.
            seed: with the stage and epoch, fixes the order of batches.
            num_workers: DataLoader worker processes.
        """
        super().__init__()
        stages = [Stage(**s) if isinstance(s, dict) else s for s in stages]
        check_stages(sources, stages)
        self.sources, self.stages, self.seed, self.num_workers = sources, stages, seed, num_workers
        self.tokenizer = sources[stages[0].sources[0]].tokenizer
        for source in sources.values():
            if hasattr(source, "set_tokenizer"):
                source.set_tokenizer(self.tokenizer)
        self.used = [name for name in sources if any(name in s.sources for s in stages)]
        self._resume: dict | None = None

    @property
    def words_per_token(self) -> float | None:
        """The first source's that knows it (the pre-training corpus)."""
        return next((w for s in self.sources.values() if (w := getattr(s, "words_per_token", None))), None)

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

    def prepare_data(self) -> None:
        for name in self.used:
            self.sources[name].prepare_data()

    def setup(self, stage: str) -> None:
        for name in self.used:
            self.sources[name].setup(stage)
        if stage == "fit" and self.trainer is not None:
            self._check_trainer(self.trainer)

    def _check_trainer(self, trainer: L.Trainer) -> None:
        if trainer.max_epochs != self.total_epochs:
            raise ValueError(f"trainer.max_epochs is {trainer.max_epochs} but data.stages add up to "
                             f"{self.total_epochs} epochs; set trainer.max_epochs: {self.total_epochs}")
        if trainer.reload_dataloaders_every_n_epochs != 1:
            raise ValueError("a curriculum changes data at epoch boundaries: set "
                             "trainer.reload_dataloaders_every_n_epochs: 1")
        rank_zero_info(f"curriculum: {self.total_steps(trainer):,} optimizer steps in {self.total_epochs} epochs")

    def _train_sets(self, stage: Stage) -> tuple[list, list[int]]:
        sets = [self.sources[n].train_set for n in stage.sources]
        return sets, [self.sources[n].batch_size for n in stage.sources]

    def _counts(self, stage: Stage) -> list[int]:
        """Batches per epoch of each of the stage's sources."""
        sets, sizes = self._train_sets(stage)
        natural = [math.ceil(len(d) / b) for d, b in zip(sets, sizes)]
        if not stage.weights:
            return natural
        return [round(sum(natural) * w / sum(stage.weights)) for w in stage.weights]

    def total_steps(self, trainer: L.Trainer) -> int:
        """Optimizer steps of the whole curriculum on this trainer (its devices, limits and accumulation): the
        LR schedule's length (``trainer.max_steps`` stays unset, as Lightning resumes epoch-end checkpoints of
        step-limited runs an epoch short)."""
        steps = 0
        for stage in self.stages:
            batches = sum(self._counts(stage)) // trainer.world_size
            limit = trainer.limit_train_batches
            batches = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
            steps += stage.epochs * math.ceil(batches / trainer.accumulate_grad_batches)
        return steps

    def batches(self, stage_index: int, epoch: int) -> list[tuple[int, list[int]]]:
        """All ranks' training batches of ``epoch`` as ``(source number, item indices)``, in order."""
        stage = self.stages[stage_index]
        rng = np.random.default_rng([self.seed, stage_index, epoch])
        sets, sizes = self._train_sets(stage)
        batches = []
        for k, (dataset, size, count) in enumerate(zip(sets, sizes, self._counts(stage))):
            mine = []
            while len(mine) < count:  # more than one pass only with weights
                order = rng.permutation(len(dataset))
                mine += [order[i:i + size].tolist() for i in range(0, len(order), size)]
            batches += [(k, b) for b in mine[:count]]
        return [batches[i] for i in rng.permutation(len(batches))]

    def _loader(self, stage: Stage, datasets: list, batches: list, skip: int = 0) -> DataLoader:
        sources = [self.sources[n] for n in stage.sources]
        data = StageData(stage.sources, datasets, [getattr(s, "collate", None) or default_collate for s in sources])
        trainer = self.trainer
        plan = BatchPlan(batches, trainer.world_size if trainer else 1, trainer.global_rank if trainer else 0, skip)
        return DataLoader(data, batch_size=None, sampler=plan, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        epoch = self.trainer.current_epoch
        index = self.stage_index(epoch)
        stage = self.stages[index]
        skip = self._resume["batches"] if self._resume and self._resume["epoch"] == epoch else 0
        loop = self.trainer.fit_loop.epoch_loop
        if self._resume and self._resume["epoch"] < epoch and loop.restarted_on_train_batch_end:
            # saved after the last batch of an epoch: Lightning would go on counting that epoch's batches in this
            # one (it compares them with this epoch's length, not that one's) and end it early; start it afresh
            loop.batch_progress.reset_on_run()
            loop.reset_restart_stage()
        rank_zero_info(f"curriculum: epoch {epoch}, stage {index} '{stage.name}' ({', '.join(stage.sources)})"
                       + (f", resuming after {skip} batches" if skip else ""))
        return self._loader(stage, self._train_sets(stage)[0], self.batches(index, epoch), skip)

    def val_dataloader(self) -> DataLoader | list:
        """The validation sets of the current stage's sources, their batches interleaved in a fixed order."""
        epoch = self.trainer.current_epoch if self.trainer else 0
        stage = self.stages[self.stage_index(min(epoch, self.total_epochs - 1))]
        datasets = [self.sources[n].val_set or [] for n in stage.sources]
        sizes = [self.sources[n].batch_size for n in stage.sources]
        batches = [((j + 0.5) / len(d), k, list(range(i, min(i + size, len(d)))))
                   for k, (d, size) in enumerate(zip(datasets, sizes)) for j, i in enumerate(range(0, len(d), size))]
        if not batches:
            return []
        return self._loader(stage, datasets, [(k, b) for _, k, b in sorted(batches, key=lambda x: x[:2])])

    def state_dict(self) -> dict:
        """Where the curriculum is: the epoch, its stage, and the batches of it trained on so far (on each rank)."""
        trainer = self.trainer
        if trainer is None:
            return {}
        epoch = trainer.current_epoch
        index = self.stage_index(min(epoch, self.total_epochs - 1))
        return {"epoch": epoch, "batches": trainer.fit_loop.epoch_loop.batch_progress.current.processed,
                "stage": index, "stage_name": self.stages[index].name, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        index = self.stage_index(min(state["epoch"], self.total_epochs - 1))
        if self.stages[index].name != state["stage_name"] or state["seed"] != self.seed:
            raise ValueError(f"the checkpoint was saved in stage '{state['stage_name']}' (seed {state['seed']}) at "
                             f"epoch {state['epoch']}, but data.stages and data.seed put that epoch in stage "
                             f"'{self.stages[index].name}' (seed {self.seed}): resume with the run's own config")
        self._resume = state

    def teardown(self, stage: str) -> None:
        self._resume = None


def check_stages(sources: dict, stages: list[Stage]) -> None:
    """Errors naming the config key: no sources or stages, an empty stage, an unknown source, bad epochs or weights."""
    if not sources:
        raise ValueError("data.sources: no sources; name at least one data module")
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


class CurriculumLogger(L.Callback):
    """Logs the curriculum stage at each epoch start: ``curriculum/stage`` (index) and, on TensorBoard, its name."""

    def __init__(self):
        self.logged_epoch = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.on_train_epoch_start(trainer, pl_module)  # a resumed epoch has no epoch start

    @rank_zero_only
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if not isinstance(datamodule, CurriculumDataModule) or self.logged_epoch == trainer.current_epoch:
            return
        self.logged_epoch = trainer.current_epoch
        index = datamodule.stage_index(trainer.current_epoch)
        stage = datamodule.stages[index]
        for logger in trainer.loggers:
            logger.log_metrics({"curriculum/stage": index, "curriculum/epoch": trainer.current_epoch},
                               step=trainer.global_step)
            if hasattr(logger.experiment, "add_text"):
                logger.experiment.add_text("curriculum/stage_name", f"{index}: {stage.name} ({', '.join(stage.sources)})",
                                           global_step=trainer.global_step)
