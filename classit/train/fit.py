"""``classit fit|validate``: LightningCLI over the model and the curriculum, ``--ckpt_path last``, verified
checkpoints; the resolved fit config (``plan`` and ``study`` read it)."""

import shlex
import sys
from pathlib import Path

import lightning as L
import yaml
from jsonargparse import ArgumentError
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_info

from classit import layout
from classit.checkpoint_io import DigestCheckpointIO, check_checkpoint_file
from classit.config_files import config_error, expand_config_args
from classit.data.curriculum import CurriculumDataModule
from classit.data.plan import CurriculumPlan
from classit.data.store import output_folder
from classit.data.tokenizer import run_tokenizer
from classit.lightning_state import parser_keys, subcommand_parser, subcommand_parsers
from classit.model import BabyLM
from classit.runtime import keep_freed_memory
from classit.train.callbacks import FollowsCurriculum, RunProgressBar
from classit.train.memory import check_memory


class ClassitCLI(LightningCLI):
    """Every run is a curriculum (``data:`` holds CurriculumDataModule's arguments); the model's context is the
    data's block size, and its vocabulary and special ids those of the run's tokenizer (``data.tokenizer`` or
    ``data.vocab_size``). The CLI makes the tokenizer before the data is prepared and hands it to the sources and,
    with the run's plan built once the data is set up, to the model (:class:`CurriculumSetup`)."""

    def __init__(self, args=None, run: bool = True, parse_only: bool = False, **kwargs):
        """``parse_only``: parse the config and overrides, build nothing (see :func:`resolved_fit_config`)."""
        self.parse_only = parse_only
        super().__init__(BabyLM, CurriculumDataModule, args=args, run=run, save_config_kwargs={"overwrite": True},
                         trainer_defaults={"max_epochs": -1}, **kwargs)  # the curriculum sets the epochs

    def parse_arguments(self, parser, args) -> None:
        """Parse the ``--config`` files (each after the configs it builds on) and overrides; a problem with one stops
        in one line naming the file, as does a ``ckpt_path`` that is not a checkpoint (before Lightning unpickles it
        to read its hyperparameters)."""
        args = sys.argv[1:] if args is None else args
        for one in (parser, *subcommand_parsers(self)):
            one.exit_on_error = False
        try:
            self.config = parser.parse_args(expand_config_args(args))
        except ArgumentError as error:
            keys = parser_keys(subcommand_parser(self, args[0] if args else None) or parser)
            raise config_error(str(error), args, keys) from None
        subcommand = self.config.get("subcommand")
        if subcommand and self.config[subcommand].get("ckpt_path"):
            check_checkpoint_file(self.config[subcommand].ckpt_path)

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.block_size", "model.block_size")
        parser.link_arguments("data.vocab_size", "model.vocab_size", apply_on="instantiate")
        parser.link_arguments("data.special_ids", "model.special_ids", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        if self.subcommand == "fit":
            resolve_last_checkpoint(self.config.fit)

    def instantiate_classes(self) -> None:
        """Build model, data and trainer; the host allocator keeps freed memory from here on
        (:func:`keep_freed_memory`)."""
        if self.parse_only:
            return
        keep_freed_memory()
        if self.subcommand:  # a run, not `classit plan`
            check_log_folder(self.config[self.subcommand])
        super().instantiate_classes()

    def before_fit(self) -> None:
        check_memory(self.model, self.datamodule, self.trainer)  # before the data is prepared
        self.hand_tokenizer()

    def before_validate(self) -> None:
        self.hand_tokenizer()

    def hand_tokenizer(self) -> None:
        """The run's tokenizer, made or loaded once, handed to the data's sources and to :class:`CurriculumSetup`
        (the first callback: the Trainer's settings before any callback's setup), which hands it to the model."""
        tokenizer = curriculum_tokenizer(self.datamodule)
        self.datamodule.use_tokenizer(tokenizer)
        self.trainer.callbacks.insert(0, CurriculumSetup(tokenizer))

    def instantiate_trainer(self, **kwargs):
        trainer = super().instantiate_trainer(**kwargs)
        install_checkpoint_io(trainer)
        self.training_started = TrainingStarted()
        trainer.callbacks.append(self.training_started)
        bars = [i for i, c in enumerate(trainer.callbacks) if type(c) is RichProgressBar]  # Lightning's default
        if bars:
            trainer.callbacks[bars[0]] = RunProgressBar()
        return trainer

    def after_fit(self) -> None:
        if self.config.fit.ckpt_path and not self.training_started.started:
            rank_zero_info(f"classit: {self.config.fit.ckpt_path} is the end of its run (step "
                           f"{self.trainer.global_step}): nothing left to train")


def curriculum_tokenizer(data: CurriculumDataModule):
    """The run's one tokenizer (:func:`run_tokenizer`) from the data's settings: ``data.tokenizer``'s folder, else
    one of ``data.vocab_size`` trained on the curriculum's corpus (once, cached)."""
    return run_tokenizer(data.tokenizer_path, data.requested_vocab_size, data.cache, data.sources, data.stages)


class CurriculumSetup(L.Callback):
    """Builds the run's :class:`CurriculumPlan` once the curriculum is set up (its sources measured, on every rank)
    and hands it to the Trainer's settings (fit), the data module's loaders, the model (with the run's
    ``tokenizer`` and the validation sources) and the callbacks that follow the curriculum. Lightning calls a
    callback's setup after the data module's and before the model's."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        datamodule = trainer.datamodule
        plan = datamodule.plan_for(trainer.world_size, trainer.limit_train_batches, trainer.max_steps)
        if stage == "fit":
            configure_trainer(trainer, plan, datamodule)
        datamodule.plan = plan
        pl_module.connect(plan, self.tokenizer, datamodule.val_sources)
        for callback in trainer.callbacks:
            if isinstance(callback, FollowsCurriculum):
                callback.plan = plan


def configure_trainer(trainer: L.Trainer, plan: CurriculumPlan, datamodule: CurriculumDataModule) -> None:
    """Set what follows from the plan on the trainer: accumulation, epochs, reloading, validation points."""
    trainer.accumulate_grad_batches = plan.accumulate
    trainer.fit_loop.max_epochs = plan.total_epochs
    trainer.reload_dataloaders_every_n_epochs = 1
    steps = plan.total_steps
    trainer.val_check_interval = max(1, round(steps * datamodule.val_every)) * plan.accumulate
    trainer.check_val_every_n_epoch = None
    rank_zero_info(f"curriculum: {steps:,} optimizer steps in {plan.total_epochs} epochs; global batch "
                   f"{plan.batch_size} × {datamodule.block_size} tokens = {plan.world_size} devices × "
                   f"{plan.micro} sequences × {plan.accumulate} accumulated")


class TrainingStarted(L.Callback):
    """Whether fit trained at all: a finished run that is resumed does not."""

    started = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = True


def resolve_last_checkpoint(config) -> None:
    """``--ckpt_path last``: the newest ``version_N`` of the logger's ``save_dir/name`` that has
    ``checkpoints/last.ckpt``; the run resumes from it and logs on in that same version folder. With no such
    run it says so and starts fresh, so a requeued job script can always pass ``--ckpt_path last``."""
    if config.ckpt_path != "last":
        return
    logger = config.trainer.logger
    logger = logger[0] if isinstance(logger, list) and logger else logger
    args = getattr(logger, "init_args", None)
    if getattr(args, "save_dir", None) is None:
        raise ValueError("--ckpt_path last looks for the run in trainer.logger's save_dir/name; configure a "
                         "logger with a save_dir, or give the checkpoint's path")
    root = Path(args.save_dir) / (getattr(args, "name", None) or "")
    if args.version is not None:
        folders = [root / (args.version if isinstance(args.version, str) else f"version_{args.version}")]
    else:
        numbers = [n for p in root.glob("version_*") if (n := p.name.removeprefix("version_")).isdigit()]
        folders = [root / f"version_{n}" for n in sorted(numbers, key=int, reverse=True)]
    found = next((f for f in folders if layout.last_checkpoint(f).is_file()), None)
    if found is None:
        rank_zero_info(f"classit: --ckpt_path last: no run in {root} has checkpoints/last.ckpt; starting fresh")
        config.ckpt_path = None
        return
    args.version = found.name if isinstance(args.version, str) else int(found.name.removeprefix("version_"))
    config.ckpt_path = str(layout.last_checkpoint(found))
    rank_zero_info(f"classit: --ckpt_path last: resuming {config.ckpt_path}")


def check_log_folder(config) -> None:
    """The logger's ``save_dir`` (where the run's logs and checkpoints go) made, or one line if it cannot be."""
    for logger in config.trainer.logger if isinstance(config.trainer.logger, list) else [config.trainer.logger]:
        save_dir = getattr(getattr(logger, "init_args", None), "save_dir", None)
        if save_dir is not None:
            output_folder(save_dir, "trainer.logger's save_dir")


def install_checkpoint_io(trainer) -> None:
    """Checkpoints written atomically with a content digest and checked on load (unless the config names its
    own CheckpointIO plugin)."""
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = DigestCheckpointIO()


def resolved_fit_config(args: list[str]) -> dict:
    """The fit config of ``classit fit ARGS`` (``--config`` and overrides) with every default filled in, as
    ``--print_config`` shows it; nothing is built. A usage error (an unknown key, a wrong type) is a ValueError
    naming the arguments."""
    try:
        cli = ClassitCLI(args=args, run=False, parse_only=True)
    except ValueError as error:  # parse_arguments' one line
        raise ValueError(f"{shlex.join(args)}: not a valid fit config: {error}") from None
    return yaml.safe_load(cli.parser.dump(cli.config, skip_none=False))
