"""The ``classit`` command: LightningCLI for fit/validate/test, jsonargparse for the other subcommands."""

import os
import sys
from pathlib import Path

from jsonargparse import CLI
from lightning.pytorch.cli import LightningCLI

from classit.model import BabyLM, load_pretrained

LIGHTNING_COMMANDS = {"fit", "validate", "test", "predict"}


class ClassitCLI(LightningCLI):
    """Links the model's vocabulary and special token ids to the data module's tokenizer."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.vocab_size", "model.vocab_size", apply_on="instantiate")
        parser.link_arguments("data.special_ids", "model.special_ids", apply_on="instantiate")


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
    try:
        run(sys.argv[1:] if argv is None else argv)
    except user_errors as error:
        if os.environ.get("CLASSIT_TRACEBACK"):
            raise
        while isinstance(inner := error.__cause__ or error.__context__, user_errors):
            error = inner  # the original message, not jsonargparse's wrapping of it
        sys.exit(f"classit: error: {error}")


def run(argv: list[str]) -> None:
    if argv and argv[0] in LIGHTNING_COMMANDS:
        ClassitCLI(BabyLM, subclass_mode_data=True, args=argv, save_config_kwargs={"overwrite": True})
        return
    from classit.data.instruct import build_it
    from classit.data.sources import download_command
    from classit.eval.evaluate import evaluate
    from classit.eval.finetune import finetune

    CLI({"tokenizer": tokenizer, "export": export, "evaluate": evaluate, "finetune": finetune, "data": {"download": download_command, "build-it": build_it}},
        args=argv,
        description="classit: fit|validate|test --config CONFIG (LightningCLI), or one of the commands below")


if __name__ == "__main__":
    main()
