"""The ``classit`` command: each subcommand handed to the module that does it; bad input stops in one line."""

import inspect
import itertools
import json
import os
import signal
import sys

from jsonargparse import CLI, ArgumentError

from classit.config_files import config_error, expand_config_args
from classit.runtime import quiet_logs

LIGHTNING_COMMANDS = {"fit", "validate"}
COMMANDS = {  # what `classit --help` lists, one line each
    "fit": "train a model on a config's curriculum: --config CONFIG [--KEY VALUE ...] (LightningCLI)",
    "validate": "the validation loss of a config's model and data (--ckpt_path CKPT for trained weights)",
    "plan": "what `classit fit` would do on N devices (steps, LR, tokens, FLOPs), without training",
    "study": "every fit of a study config, then its evaluations and the report",
    "tokenizer": "train the byte-level BPE tokenizer on a corpus folder",
    "export": "a Lightning checkpoint as a Hugging Face folder (model and tokenizer)",
    "evaluate": "the BabyLM zero-shot tasks (BLiMP, EWoK, ...) on a model; aoa over a run's milestones",
    "compare": "two results folders (classit or the BabyLM pipeline), task by task and item by item",
    "finetune": "fine-tune and score a model on (Super)GLUE tasks, over several seeds",
    "report": "one report (tables, intervals, plots) from the evaluations of several conditions and seeds",
    "submission": "the BabyLM 2025 submission file from a results tree",
    "dynamics": "what runs learned, and when: per-phenomenon curves over their milestone and stage checkpoints",
    "data download": "the official BabyLM corpus and evaluation data, verified, into a data folder",
    "data build-it": "the CLASS-IT instruction sets (Switchboard, Simple Wikipedia) as JSONL",
}
HELP = "\n".join([
    "usage: classit COMMAND [options]        classit COMMAND --help: the command's options",
    "",
    "Train, plan and study BabyLMs; evaluate, fine-tune and report them (README.md: the whole workflow).",
    "",
    "commands:",
    *(f"  {name:<15} {line}" for name, line in COMMANDS.items()),
])


def main(argv: list[str] | None = None) -> None:
    """Run a command; bad input (a file, a config value, a download) stops with its one-line message
    (``CLASSIT_TRACEBACK=1`` shows the traceback too); ctrl-C while loading or outside training stops in one line
    (a run's own stop saves its checkpoint and exits by itself)."""
    quiet_logs()
    try:
        _run_reporting_errors(sys.argv[1:] if argv is None else argv, from_command_line=argv is None)
    except KeyboardInterrupt:
        sys.stderr.write("classit: interrupted\n")
        sys.exit(128 + signal.SIGINT)


def _run_reporting_errors(argv: list[str], from_command_line: bool) -> None:
    from classit.data.download import DownloadError

    user_errors = (FileNotFoundError, ValueError, DownloadError)
    try:
        run(argv, from_command_line)
    except user_errors as error:
        if os.environ.get("CLASSIT_TRACEBACK"):
            raise
        # the original message, not jsonargparse's wrapping of it; `raise ... from None` ends the chain there
        while isinstance(inner := error.__cause__ if error.__suppress_context__ else error.__context__, user_errors):
            error = inner
        sys.exit(f"classit: error: {error}")


def run(argv: list[str], from_command_line: bool = False) -> None:
    if not argv:
        sys.exit(HELP)
    if argv[0] in ("-h", "--help"):
        print(HELP)
        return
    if argv[0] in ("test", "predict"):
        raise ValueError(f"classit {argv[0]}: BabyLM has no {argv[0]} step; `classit validate --config CONFIG "
                         "--ckpt_path CKPT` gives the validation loss, `classit evaluate --model MODEL` the zero-shot "
                         "scores")
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from classit.train.fit import ClassitCLI
        ClassitCLI(args=None if from_command_line else argv)
        return
    if argv and argv[0] == "plan":
        from classit.train.plan import plan_command
        plan_command(argv[1:])
        return
    if argv and argv[0] == "report":  # `classit report A B --out R`: the folders as the one list jsonargparse takes
        folders = [a for a in itertools.takewhile(lambda a: not a.startswith("-"), argv[1:])]
        if folders and not folders[0].startswith("["):
            argv = ["report", json.dumps(folders), *argv[1 + len(folders):]]
    if argv and argv[0] == "dynamics":  # `--run A --run B`: the runs as the one list jsonargparse takes
        from classit.dynamics.command import as_lists
        argv = ["dynamics", *as_lists(argv[1:])]
    if argv and argv[0] == "study":
        from classit.study.runner import study_command
        study_command(argv[1:])
        return
    from classit.data.build_it import build_it
    from classit.data.download import download_command
    from classit.data.tokenizer import tokenizer_command
    from classit.dynamics.command import dynamics
    from classit.eval.compare import compare
    from classit.eval.evaluate import evaluate
    from classit.eval.finetune import finetune
    from classit.eval.submission import submission_command
    from classit.export import export
    from classit.study.report import report

    commands = {"tokenizer": tokenizer_command, "export": export, "evaluate": evaluate, "compare": compare,
                "finetune": finetune, "report": report, "submission": submission_command,
                "dynamics": dynamics,
                "data": {"_help": "Data: download the official sets; build the instruction sets as JSONL.",
                         "download": download_command, "build-it": build_it}}
    try:
        CLI(commands, args=expand_config_args(argv), exit_on_error=False,
            description="classit: `classit --help` lists every command")
    except ArgumentError as error:
        command = commands.get(argv[0]) if argv else None
        command = command.get(argv[1]) if isinstance(command, dict) and len(argv) > 1 else command
        raise config_error(str(error), argv, list(inspect.signature(command).parameters) if callable(command) else []) from None


if __name__ == "__main__":
    main()
