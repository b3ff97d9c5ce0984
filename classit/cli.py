"""The ``classit`` command: each subcommand handed to the module that does it; bad input stops in one line."""

import itertools
import json
import os
import sys

from jsonargparse import CLI

from classit.train.host_memory import keep_freed_memory

LIGHTNING_COMMANDS = {"fit", "validate", "test", "predict"}


def main(argv: list[str] | None = None) -> None:
    """Run a command; bad input (a file, a config value, a download) stops with its one-line message
    (``CLASSIT_TRACEBACK=1`` shows the traceback too)."""
    from classit.data.download import DownloadError

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
    if argv and argv[0] == "study":
        from classit.study.runner import study_command
        study_command(argv[1:])
        return
    from classit.data.build_it import build_it
    from classit.data.download import download_command
    from classit.data.tokenizer import tokenizer_command
    from classit.eval.compare import compare
    from classit.eval.evaluate import evaluate
    from classit.eval.finetune import finetune
    from classit.eval.submission import submission_command
    from classit.study.report import report
    from classit.train.fit import export

    CLI({"tokenizer": tokenizer_command, "export": export, "evaluate": evaluate, "compare": compare,
         "finetune": finetune, "report": report, "submission": submission_command,
         "data": {"download": download_command, "build-it": build_it}},
        args=argv,
        description="classit: fit|validate|test --config CONFIG (LightningCLI), plan --config CONFIG, "
                    "study --config STUDY, or one of the commands below")


if __name__ == "__main__":
    main()
