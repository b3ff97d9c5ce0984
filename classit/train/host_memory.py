"""Keep freed host memory in the process instead of handing it back to the system at every free.

glibc serves each allocation above a threshold (128 KiB, raised dynamically to at most 32 MiB) with its own
``mmap`` and unmaps it at free; a CPU training step allocates tensors far above that (16 × 128 × 8,192
float32 logits are 64 MiB), so every step faults in its pages again: a third of the demo's time went to
the kernel. Raising the threshold and the trim threshold keeps those pages for the next step. Peak memory
is unchanged; memory stays with the process until it ends. ``MALLOC_*`` or ``GLIBC_TUNABLES`` in the
environment (the user's own choice) leaves the allocator as it is.
"""

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LIMIT = 2**31 - 1  # the largest value mallopt takes


def keep_freed_memory() -> bool:
    """Tell glibc's allocator to keep freed memory for reuse; False where it is not glibc or the user set it."""
    if not sys.platform.startswith("linux") or "GLIBC_TUNABLES" in os.environ or any(
            name.startswith("MALLOC_") for name in os.environ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, LIMIT) and libc.mallopt(M_TRIM_THRESHOLD, LIMIT))
    except (OSError, AttributeError):  # not glibc (musl has no libc.so.6 / no mallopt)
        return False
