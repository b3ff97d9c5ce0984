"""Curricula: the one data path of every run. Sources trained on in stages: their loaders and resume.

A stage names one or more sources and a number of epochs. A stage of one source trains on it
alone; a stage of several mixes them into one shuffled stream (merged); stages follow each other
at epoch boundaries (sequential). A pre-training run is a one-stage curriculum.

Which global batches each epoch trains on, in which order, and how they are cut over devices is
the run's :class:`~classit.data.plan.CurriculumPlan`, built by the CLI once the sources' sizes are
known (:meth:`CurriculumDataModule.plan_for`) and handed to this module's loaders (``plan``). The
module's ``state_dict`` (saved in Lightning checkpoints) holds the epoch and the global batches
already trained on, so a run resumed mid-epoch goes on with the batches of a run never stopped, on
any number of devices. Every source tokenizes with the run's one tokenizer
(:func:`~classit.data.tokenizer.run_tokenizer`), handed in by the CLI (:meth:`CurriculumDataModule.use_tokenizer`).

Validation scores a fixed, seeded subset of ``val_sequences`` items of every source that has a
validation set, the same items for the whole run and any number of devices (each rank takes
its share, nothing dropped), logged per source.
"""

import functools
import signal
import warnings
import zlib

import lightning as L
import numpy as np
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from classit.data import store
from classit.data.plan import CurriculumPlan, Stage, check_stages
from classit.data.source import Source
from classit.data.tokenizer import check_vocab_size, vocabulary
from classit.lightning_state import (
    epoch_batches_done,
    rescale_batch_counts,
    restart_epoch_count,
    restarted_after_last_batch,
)


class SourceData(Dataset):
    """The datasets of several sources; an index is a whole micro-batch: ``(source number, item indices)``."""

    def __init__(self, names: list[str], datasets: list, collates: list):
        self.names, self.datasets, self.collates = names, datasets, collates

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, batch: tuple[int, list[int]]) -> dict:
        k, indices = batch
        out = self.collates[k]([self.datasets[k][i] for i in indices])
        out["source"] = [self.names[k]] * len(indices)
        return out


class RankBatches(DistributedSampler):
    """This rank's micro-batches, less the first ``skip`` (already trained on); ``len()`` counts them all, as
    Lightning expects of a resumed loader. A DistributedSampler, so that Lightning does not put its own in its place.
    The list is replaced each epoch (``batches``), so one loader and its workers serve the whole run."""

    def __init__(self, batches: list | None = None, skip: int = 0):
        super().__init__([], num_replicas=1, rank=0, shuffle=False)
        self.batches, self.skip = batches or [], skip

    def __iter__(self):
        return iter(self.batches[self.skip:])

    def __len__(self) -> int:
        return len(self.batches)


class CurriculumDataModule(L.LightningDataModule):
    """Sources trained on in stages, with a global batch and a fixed validation subset (module doc)."""

    def __init__(self, sources: dict[str, Source], stages: list[Stage] | None = None, batch_size: int = 32,
                 micro_batch_size: int | None = None, block_size: int = 512, tokenizer: str | None = None,
                 vocab_size: int = 16384, data_dir: str | None = None, cache_dir: str | None = None, seed: int = 42,
                 num_workers: int = 2, val_sequences: int = 256, val_every: float = 0.1):
        """
        Args:
            sources: data sets by name, e.g. ``pretrain`` (:class:`classit.data.babylm.BabyLMCorpus`),
                ``switchboard`` (:class:`classit.data.switchboard.Switchboard`), ``simple_wiki``
                (:class:`classit.data.lectures.SimpleWikiLectures`).
            stages: in order; see :class:`Stage`. Default: one stage of every source, one epoch.
            batch_size: global batch in sequences, the same on any number of devices.
            micro_batch_size: most sequences a device holds at once (default: all of its share);
                gradient accumulation makes up the rest.
            block_size: tokens per sequence (also the model's context).
            tokenizer: a tokenizer folder; if unset, one of ``vocab_size`` is trained (once, cached) on the
                first source with training text (the BabyLM corpus). Every source uses this one tokenizer.
            vocab_size: size of the tokenizer to train.
            data_dir: the data folder; default ``$CLASSIT_DATA_DIR``.
            cache_dir: where prepared data is cached; default ``$CLASSIT_CACHE_DIR`` or ~/.cache/classit.
            seed: with the stage and epoch, fixes the order of batches; also picks the validation items.
            num_workers: DataLoader worker processes (kept for the whole run).
            val_sequences: validation items drawn from each source with a validation set.
            val_every: validate every this fraction of the run's optimizer steps.
        """
        super().__init__()
        self.stages = [Stage(**s) if isinstance(s, dict) else s for s in stages] if stages is not None else \
            [Stage(name="+".join(sources), sources=list(sources))]
        check_stages(sources, self.stages)
        if not 0 < val_every <= 1:
            raise ValueError(f"data.val_every: a fraction of the run in (0, 1], not {val_every}")
        check_sizes(batch_size, micro_batch_size, block_size, None if tokenizer else vocab_size)
        self.sources, self.batch_size, self.micro_batch_size = sources, batch_size, micro_batch_size
        self.block_size, self.tokenizer_path, self.requested_vocab_size = block_size, tokenizer, vocab_size
        self.data_dir, self.cache = store.data_dir(data_dir), store.cache_dir(cache_dir)
        self.seed, self.num_workers, self.val_sequences, self.val_every = seed, num_workers, val_sequences, val_every
        self.used = [name for name in sources if any(name in s.sources for s in self.stages)]
        for name, source in sources.items():
            source.bind(name, self.data_dir, None, block_size, self.cache)
        self.train_sets: dict[str, Dataset] = {}
        self.sizes: dict[str, int] = {}  # training sequences of each source
        self.val_sets: dict[str, Dataset] = {}
        self.plan: CurriculumPlan | None = None  # handed in by the CLI once the sizes are known (:meth:`plan_for`)
        self._resume: dict | None = None
        self._train_loader = self._val_loader = None

    # ------------------------------------------------------------ the tokenizer's settings, linked to the model

    @functools.cached_property
    def _vocabulary(self) -> tuple[int, dict[str, int]]:
        """The tokenizer's size and special ids, read once (a given tokenizer folder is loaded for them)."""
        return vocabulary(self.tokenizer_path, self.requested_vocab_size)

    @property
    def vocab_size(self) -> int:
        """Linked to the model: the given tokenizer's size, else the size of the one to train."""
        return self._vocabulary[0]

    @property
    def special_ids(self) -> dict[str, int]:
        """Linked to the model: pad/bos/eos ids (a trained tokenizer reserves them first, in this order)."""
        return self._vocabulary[1]

    # ------------------------------------------------------------ data

    def use_tokenizer(self, tokenizer) -> None:
        """Hand every source the run's tokenizer (:func:`~classit.data.tokenizer.run_tokenizer`), before the data is
        prepared."""
        for source in self.sources.values():
            source.tokenizer = tokenizer

    def prepare_data(self) -> None:
        """Tokenize every source, once (rank 0 of each node); later runs find the cache."""
        if any(self.sources[name].tokenizer is None for name in self.used):
            raise RuntimeError("the curriculum's sources have no tokenizer: hand them the run's (use_tokenizer)")
        for name in self.used:
            self.sources[name].prepare()

    def setup(self, stage: str) -> None:
        self.load_sources(self.used)

    def load_sources(self, names: list[str]) -> None:
        """Open the training and validation sets of the sources ``names`` (prepared already) and measure them; a
        stage of only these sources with a source smaller than one global batch stops naming it."""
        for name in names:
            source = self.sources[name]
            self.train_sets[name] = source.train_set()
            self.sizes[name] = len(self.train_sets[name])
            val = source.val_set()
            if val is not None and len(val):
                self.val_sets[name] = val
            rank_zero_info(f"data: {name}: {len(self.train_sets[name]):,} training sequences, "
                           f"{min(len(val or []), self.val_sequences):,} validation")
        for stage_ in self.stages:
            if not set(stage_.sources) <= set(names):
                continue
            for name in stage_.sources:
                if self.sizes[name] < self.batch_size:
                    raise ValueError(f"data.sources.{name}: {self.sizes[name]} training sequences, fewer "
                                     f"than one global batch (data.batch_size: {self.batch_size})")

    @property
    def val_sources(self) -> list[str]:
        """Names of the sources whose validation loss is measured (each logged as ``val/loss/NAME``)."""
        return list(self.val_sets)

    def plan_for(self, world_size: int, limit_train_batches: int | float = 1.0, max_steps: int = -1) -> CurriculumPlan:
        """The run's plan on ``world_size`` devices, from the stages, batch sizes, seed and the sources' sizes (known
        after ``setup``)."""
        return CurriculumPlan(tuple(self.stages), dict(self.sizes), self.batch_size, self.micro_batch_size,
                              world_size, self.seed, limit_train_batches, max_steps)

    def _loader(self, names: list[str], datasets: list) -> DataLoader:
        sources = [self.sources[n] for n in names]
        data = SourceData(names, datasets, [s.collate for s in sources])
        trainer = self.trainer
        return DataLoader(data, batch_size=None, sampler=RankBatches(), num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, worker_init_fn=ignore_stop_signals,
                          pin_memory=trainer is not None and trainer.strategy.root_device.type == "cuda")

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        epoch, plan = trainer.current_epoch, self.plan
        index = plan.stage_index(epoch)
        stage = plan.stages[index]
        skip, note = self._resume_point(epoch) if self._resume else (0, "")
        if self._resume and self._resume["epoch"] < epoch and restarted_after_last_batch(trainer):
            # saved after the last batch of an epoch: Lightning would go on counting that epoch's batches in this
            # one (it compares them with this epoch's length, not that one's) and end it early; start it afresh
            restart_epoch_count(trainer)
        rank_zero_info(f"curriculum: epoch {epoch}, stage {index} '{stage.name}' ({', '.join(stage.sources)})" + note)
        if self._train_loader is None:
            self._train_loader = self._loader(self.used, [self.train_sets[n] for n in self.used])
        numbers = [self.used.index(n) for n in stage.sources]
        sampler = self._train_loader.sampler
        sampler.batches = [(numbers[k], b) for k, b in plan.rank_batches(epoch, trainer.global_rank)]
        sampler.skip = skip
        return self._train_loader

    def val_batches(self, world: int, rank: int, micro: int) -> list[tuple[int, list[int]]]:
        """This rank's validation micro-batches of ``micro`` items: its share of each source's fixed, seeded subset."""
        batches = []
        for k, name in enumerate(self.val_sets):
            size = len(self.val_sets[name])
            rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
            chosen = np.sort(rng.choice(size, min(self.val_sequences, size), replace=False))[rank::world].tolist()
            batches += [(k, chosen[i:i + micro]) for i in range(0, len(chosen), micro)]
        return batches

    def val_dataloader(self) -> DataLoader | list:
        if not self.val_sets:
            return []
        if self._val_loader is None:
            self._val_loader = self._loader(list(self.val_sets), list(self.val_sets.values()))
        rank = self.trainer.global_rank if self.trainer else 0
        self._val_loader.sampler.batches = self.val_batches(self.plan.world_size, rank, self.plan.micro)
        return self._val_loader

    # ------------------------------------------------------------ resume

    def _resume_point(self, epoch: int) -> tuple[int, str]:
        """This rank's micro-batches of the resumed epoch already trained on, and what to say about it. They are
        counted in global batches, so a run resumed on another number of devices (another accumulation) goes on at
        the same global batch; Lightning's own batch counts are converted to match."""
        state, accumulate = self._resume, self.plan.accumulate
        if state["epoch"] != epoch:
            return 0, ""
        old = state.get("accumulate", accumulate)  # older checkpoints: saved on this hardware
        if old == accumulate:
            skip = state["batches"]
            return skip, f", resuming after {skip // old} global batches" if skip else ""
        if state["batches"] % old:
            raise ValueError(f"the checkpoint was saved inside a global batch ({state['batches']} micro-batches of "
                             f"{old} per global batch); resume it on {state['world_size']} device(s) with the same "
                             "data.micro_batch_size, or from a checkpoint saved at an optimizer step")
        done = state["batches"] // old
        rescale_batch_counts(self.trainer, old, accumulate)
        return done * accumulate, (
            f", resuming after {done} global batches (saved on {state['world_size']} device(s) × {old} "
            f"accumulated, now {self.plan.world_size} × {accumulate})")

    def state_dict(self) -> dict:
        """Where the curriculum is: the epoch, its stage, the micro-batches of it this rank trained on so far, and
        the devices and accumulation they were cut for."""
        trainer = self.trainer
        if trainer is None:
            return {}
        epoch, plan = trainer.current_epoch, self.plan
        index = plan.stage_index(min(epoch, plan.total_epochs - 1))
        return {"epoch": epoch, "batches": epoch_batches_done(trainer), "accumulate": plan.accumulate,
                "world_size": plan.world_size, "stage": index, "stage_name": plan.stages[index].name,
                "seed": self.seed, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        index = self.plan.stage_index(min(state["epoch"], self.plan.total_epochs - 1))
        if self.stages[index].name != state["stage_name"] or state["seed"] != self.seed:
            raise ValueError(f"the checkpoint was saved in stage '{state['stage_name']}' (seed {state['seed']}) at "
                             f"epoch {state['epoch']}, but data.stages and data.seed put that epoch in stage "
                             f"'{self.stages[index].name}' (seed {self.seed}): resume with the run's own config")
        if state.get("batch_size", self.batch_size) != self.batch_size:
            raise ValueError(f"the checkpoint was saved with data.batch_size {state['batch_size']}, this run has "
                             f"{self.batch_size}: resume with the run's own global batch")
        self._resume = state
        # Lightning warns that a DataLoader without state cannot resume inside an epoch: this state resumes it
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")

    def teardown(self, stage: str) -> None:
        self._resume = None


def ignore_stop_signals(worker_id: int) -> None:
    """A loader worker ignores ctrl-C and SIGTERM sent to the whole job (a terminal's process group, SLURM, docker
    stop): the main process decides, saves its checkpoint and then ends its workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def check_sizes(batch_size: int, micro_batch_size: int | None, block_size: int, vocab_size: int | None) -> None:
    """Errors naming the config key, before any data work: a batch or block size below 1, a vocabulary to train
    (``vocab_size``; None when a tokenizer folder is given) too small for the byte-level BPE."""
    for key, value in {"batch_size": batch_size, "micro_batch_size": micro_batch_size, "block_size": block_size}.items():
        if value is not None and value < 1:
            raise ValueError(f"data.{key}: a positive number of {'tokens' if key == 'block_size' else 'sequences'}, "
                             f"not {value}")
    if vocab_size is not None:
        check_vocab_size(vocab_size, "data.vocab_size")

