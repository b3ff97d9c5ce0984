"""Where data lives: the data folder (or the sample bundled with classit, unpacked into the cache), the cache, and
cache entries built once, keyed by content, under a lock."""

import fcntl
import functools
import hashlib
import logging
import os
import tarfile
from importlib import resources
from pathlib import Path
from typing import Callable

from classit.files import atomic_path, remove

DATA_ENV = "CLASSIT_DATA_DIR"
CACHE_ENV = "CLASSIT_CACHE_DIR"
CHUNK = 1 << 20
SAMPLE_ARCHIVE = "sample/sample.tar.xz"  # inside the classit package; made by scripts/make_sample.py
SAMPLE_BYTES = 1 << 20  # fingerprint: bytes hashed at the start, middle and end of each file

log = logging.getLogger(__name__)


def data_dir(configured: str | None = None) -> Path:
    """The data directory: the configured one, else ``$CLASSIT_DATA_DIR``, which must exist; with
    neither, the bundled sample (unpacked once into the cache)."""
    path = configured or os.environ.get(DATA_ENV)
    if not path:
        return bundled_sample(cache_dir())
    path = Path(path).expanduser()
    if not path.is_dir():
        origin = "the config key data_dir" if configured else DATA_ENV
        raise FileNotFoundError(f"{path}: data directory not found (from {origin}); point data_dir or {DATA_ENV} "
                                f"at an existing folder, or set neither to use the bundled sample; "
                                f"`classit data download --out {path}` fetches the BabyLM data into it")
    return path


def unpack_sample(cache: Path) -> Path:
    """The bundled sample unpacked into ``cache/sample-<digest>``; unpacked (atomically) only when absent."""
    with resources.as_file(resources.files("classit") / SAMPLE_ARCHIVE) as archive:
        dest = cache / f"sample-{sha256sum(archive)[:12]}"
        if dest.is_dir():
            return dest
        try:
            with atomic_path(dest) as temporary, tarfile.open(archive) as tar:
                tar.extractall(temporary, filter="data")
        except OSError:
            if not dest.is_dir():  # else another process (a DDP rank) renamed its copy first
                raise
    return dest


@functools.cache
def bundled_sample(cache: Path) -> Path:
    """``unpack_sample(cache)``, saying once (on rank zero) that the demo-size sample is in use."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from classit.data.corpus import count_words, read_text

    path = unpack_sample(cache)
    words = sum(count_words(read_text(file)) for file in path.rglob("*.train"))
    rank_zero_only(log.warning)(
        f"classit: no data folder set (the config key data_dir or {DATA_ENV}): using the bundled sample of "
        f"{words:,} training words in {path}, enough for the demo only. For the BabyLM corpus: "
        f"`classit data download --out DIR`, then `export {DATA_ENV}=DIR`.")
    return path


def cache_dir(configured: str | None = None) -> Path:
    """Where tokenizers and tokenized corpora are cached: configured, ``$CLASSIT_CACHE_DIR`` or ~/.cache/classit."""
    path = Path(configured or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "classit").expanduser()
    if path.exists() and not path.is_dir():
        key = "data.cache_dir" if configured else CACHE_ENV
        raise ValueError(f"{key}: {path} is a file, a folder was expected for the cache; set {key} to a folder "
                         "(it is made if missing)")
    return path


def output_folder(path: str | Path, what: str) -> Path:
    """``path``, made (with its parents) if missing; a file in the way, or a folder this user cannot write in, stops
    in one line naming it and ``what`` gave it (an option, a config key)."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"{path} ({what}): a file is in the way, a folder was expected; choose another path") from None
    except OSError as error:
        raise ValueError(f"{path} ({what}): cannot make this folder ({error.strerror}); choose one you can "
                         "write to") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{path} ({what}): this folder is read-only for you; choose one you can write to")
    return path


def sha256sum(path: Path) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(files: list[Path]) -> str:
    """A content key for ``files`` (in order): base names, sizes and hashes of their first, middle and last MiB."""
    digest = hashlib.sha256()
    for path in map(Path, files):
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        with open(path, "rb") as f:
            for offset in sorted({0, max(0, size // 2 - SAMPLE_BYTES // 2), max(0, size - SAMPLE_BYTES)}):
                f.seek(offset)
                digest.update(f.read(SAMPLE_BYTES))
    return digest.hexdigest()[:20]


def build_once(path: Path, build: Callable[[Path], object]) -> Path:
    """Return ``path``, first building it with ``build(tmp)`` and renaming ``tmp`` into place if it is missing.

    An exclusive lock next to ``path`` makes concurrent callers (ranks, runs) wait for the one that builds;
    a crash leaves only a temporary entry, removed by the next builder.
    """
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path
        for stale in path.parent.glob(f".{path.name}.tmp*"):  # left by a builder that crashed
            remove(stale)
        with atomic_path(path) as temporary:
            build(temporary)
    return path
