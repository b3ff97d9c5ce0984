"""What classit keeps out of the console: Lightning's adverts and device lines, the deprecation warning Lightning
raises in its own calls, the Hugging Face progress bar for writing one model file. Light to import: the CLI
installs it before any library loads."""

import logging
import os
import warnings

LIGHTNING_NOISE = ("💡 Tip:", "GPU available:", "TPU available:", "HPU available:")


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(LIGHTNING_NOISE)


QUIET = _Quiet()


def quiet_logs() -> None:
    """Install the filters (idempotent)."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(QUIET)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when huggingface_hub loads
