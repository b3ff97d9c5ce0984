"""``classit fit|validate|test``: LightningCLI over the model and the curriculum, ``--ckpt_path last``, verified
checkpoints; the resolved fit config (``plan`` and ``study`` read it) and ``classit export``."""

from pathlib import Path

import yaml
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_info

from classit.checkpoint_io import DigestCheckpointIO
from classit.data.curriculum import CurriculumDataModule
from classit.model import BabyLM, load_pretrained


class ClassitCLI(LightningCLI):
    """Every run is a curriculum (``data:`` holds CurriculumDataModule's arguments); the model's context is the
    data's block size, and its vocabulary and special ids come from the data's tokenizer."""

    def __init__(self, args=None, run: bool = True, parse_only: bool = False, **kwargs):
        """``parse_only``: parse the config and overrides, build nothing (see :func:`resolved_fit_config`)."""
        self.parse_only = parse_only
        super().__init__(BabyLM, CurriculumDataModule, args=args, run=run, save_config_kwargs={"overwrite": True},
                         trainer_defaults={"max_epochs": -1}, **kwargs)  # the curriculum sets the epochs

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.block_size", "model.block_size")
        parser.link_arguments("data.vocab_size", "model.vocab_size", apply_on="instantiate")
        parser.link_arguments("data.special_ids", "model.special_ids", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        if self.subcommand == "fit":
            resolve_last_checkpoint(self.config.fit)

    def instantiate_classes(self) -> None:
        """Build model, data and trainer, and connect the model to what the data hands it (:class:`RunData`)."""
        if self.parse_only:
            return
        super().instantiate_classes()
        self.model.connect(self.datamodule.run_data)

    def instantiate_trainer(self, **kwargs):
        trainer = super().instantiate_trainer(**kwargs)
        install_checkpoint_io(trainer)
        return trainer


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
    found = next((f for f in folders if (f / "checkpoints" / "last.ckpt").is_file()), None)
    if found is None:
        rank_zero_info(f"classit: --ckpt_path last: no run in {root} has checkpoints/last.ckpt; starting fresh")
        config.ckpt_path = None
        return
    args.version = found.name if isinstance(args.version, str) else int(found.name.removeprefix("version_"))
    config.ckpt_path = str(found / "checkpoints" / "last.ckpt")
    rank_zero_info(f"classit: --ckpt_path last: resuming {config.ckpt_path}")


def install_checkpoint_io(trainer) -> None:
    """Checkpoints written atomically with a content digest and checked on load (unless the config names its
    own CheckpointIO plugin)."""
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = DigestCheckpointIO()


def export(*, ckpt: str, out: str) -> None:
    """Turn a classit Lightning checkpoint into a Hugging Face folder (model and tokenizer).

    Args:
        ckpt: the ``.ckpt`` file.
        out: folder to write.
    """
    model, tok = load_pretrained(ckpt)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    print(f"exported {ckpt} to {out}")


def resolved_fit_config(args: list[str]) -> dict:
    """The fit config of ``classit fit ARGS`` (``--config`` and overrides) with every default filled in, as
    ``--print_config`` shows it; nothing is built."""
    cli = ClassitCLI(args=args, run=False, parse_only=True)
    return yaml.safe_load(cli.parser.dump(cli.config, skip_none=False))
