"""The ``classit`` command: LightningCLI for fit/validate/test, jsonargparse for the other subcommands."""

import itertools
import json
import os
import sys
from pathlib import Path

from jsonargparse import CLI
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_info

from classit.data.curriculum import CurriculumDataModule
from classit.model import BabyLM, load_pretrained
from classit.train.checkpoint_io import DigestCheckpointIO
from classit.train.host_memory import keep_freed_memory

LIGHTNING_COMMANDS = {"fit", "validate", "test", "predict"}


class ClassitCLI(LightningCLI):
    """Every run is a curriculum (``data:`` holds CurriculumDataModule's arguments); the model's context is the
    data's block size, and its vocabulary and special ids come from the data's tokenizer."""

    def __init__(self, args=None, run: bool = True, **kwargs):
        super().__init__(BabyLM, CurriculumDataModule, args=args, run=run, save_config_kwargs={"overwrite": True},
                         trainer_defaults={"max_epochs": -1}, **kwargs)  # the curriculum sets the epochs

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.block_size", "model.block_size")
        parser.link_arguments("data.vocab_size", "model.vocab_size", apply_on="instantiate")
        parser.link_arguments("data.special_ids", "model.special_ids", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        if self.subcommand == "fit":
            resolve_last_checkpoint(self.config.fit)

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


def tokenizer(*, corpus: str, out: str, vocab_size: int = 16384, suffix: str = ".train") -> None:
    """Train a byte-level BPE tokenizer (BOS first; EOS, PAD and chat tokens reserved) on a corpus folder.

    Args:
        corpus: folder of corpus files.
        out: folder to write; ``AutoTokenizer.from_pretrained(out)`` loads it.
        vocab_size: vocabulary size, special tokens included.
        suffix: which files of the folder to read.
    """
    from classit.data.corpus import corpus_files
    from classit.data.tokenizer import train_tokenizer

    tok = train_tokenizer(corpus_files(Path(corpus), suffix), vocab_size, Path(out))
    print(f"tokenizer with {len(tok)} tokens written to {out}")


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


def main(argv: list[str] | None = None) -> None:
    """Run a command; bad input (a file, a config value, a download) stops with its one-line message
    (``CLASSIT_TRACEBACK=1`` shows the traceback too)."""
    from classit.data.sources import DownloadError

    user_errors = (FileNotFoundError, ValueError, DownloadError)
    keep_freed_memory()
    try:
        run(sys.argv[1:] if argv is None else argv, from_command_line=argv is None)
    except user_errors as error:
        if os.environ.get("CLASSIT_TRACEBACK"):
            raise
        # the original message, not jsonargparse's wrapping of it; `raise ... from None` ends the chain there
        while isinstance(inner := error.__cause__ if error.__suppress_context__ else error.__context__, user_errors):
            error = inner
        sys.exit(f"classit: error: {error}")


def run(argv: list[str], from_command_line: bool = False) -> None:
    if argv and argv[0] in LIGHTNING_COMMANDS:
        ClassitCLI(args=None if from_command_line else argv)
        return
    if argv and argv[0] == "plan":
        from classit.plan import plan_command
        plan_command(argv[1:])
        return
    if argv and argv[0] == "report":  # `classit report A B --out R`: the folders as the one list jsonargparse takes
        folders = [a for a in itertools.takewhile(lambda a: not a.startswith("-"), argv[1:])]
        if folders and not folders[0].startswith("["):
            argv = ["report", json.dumps(folders), *argv[1 + len(folders):]]
    if argv and argv[0] == "study":
        from classit.study.runner import study_command
        study_command(argv[1:])
        return
    from classit.data.instruct import build_it
    from classit.data.sources import download_command
    from classit.eval.compare import compare
    from classit.eval.evaluate import evaluate
    from classit.eval.finetune import finetune
    from classit.study.report import report

    CLI({"tokenizer": tokenizer, "export": export, "evaluate": evaluate, "compare": compare, "finetune": finetune,
         "report": report,
         "data": {"download": download_command, "build-it": build_it}},
        args=argv,
        description="classit: fit|validate|test --config CONFIG (LightningCLI), plan --config CONFIG, "
                    "study --config STUDY, or one of the commands below")


if __name__ == "__main__":
    main()
