"""What a command sets up for its process: quiet console output, the host allocator, the device it computes on.

Light to import (torch loads only when a device is resolved): the CLI installs the quiet filters before any
library loads.
"""

import ctypes
import logging
import os
import sys
import warnings

LIGHTNING_NOISE = ("💡 Tip:", "GPU available:", "TPU available:", "HPU available:")


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(LIGHTNING_NOISE)


QUIET = _Quiet()


def quiet_logs() -> None:
    """Keep out of the console (idempotent): Lightning's adverts and device lines, the deprecation warning Lightning
    raises in its own calls, its advice to sync the validation losses (BabyLM sums them over ranks itself), and the
    Hugging Face progress bar for writing one model file."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(QUIET)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\('val")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when huggingface_hub loads


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MALLOPT_LIMIT = 2**31 - 1  # the largest value mallopt takes


def keep_freed_memory() -> bool:
    """Tell glibc's allocator to keep freed host memory for reuse; False where it is not glibc or the user set it.

    glibc serves each allocation above a threshold (128 KiB, raised dynamically to at most 32 MiB) with its own
    ``mmap`` and unmaps it at free; a CPU training step allocates tensors far above that (16 × 128 × 8,192
    float32 logits are 64 MiB), so every step faults in its pages again: a third of the demo's time went to
    the kernel. Raising the threshold and the trim threshold keeps those pages for the next step. Peak memory
    is unchanged; memory stays with the process until it ends. Training and fine-tuning call it; ``MALLOC_*`` or
    ``GLIBC_TUNABLES`` in the environment (the user's own choice) leaves the allocator as it is.
    """
    if not sys.platform.startswith("linux") or "GLIBC_TUNABLES" in os.environ or any(
            name.startswith("MALLOC_") for name in os.environ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MALLOPT_LIMIT) and libc.mallopt(M_TRIM_THRESHOLD, MALLOPT_LIMIT))
    except (OSError, AttributeError):  # not glibc (musl has no libc.so.6 / no mallopt)
        return False


def resolve_device(name: str = "auto"):
    """The ``torch.device`` a command computes on: ``auto`` is CUDA where available, else the CPU; any other name
    is taken as torch names it."""
    import torch

    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)
