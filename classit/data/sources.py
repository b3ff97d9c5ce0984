"""Where data lives: the data directory and the cache."""

import os
from pathlib import Path

DATA_ENV = "CLASSIT_DATA_DIR"
CACHE_ENV = "CLASSIT_CACHE_DIR"


def data_dir(configured: str | None = None) -> Path:
    """The data directory: the configured one, else ``$CLASSIT_DATA_DIR``; it must exist."""
    path = configured or os.environ.get(DATA_ENV)
    if not path:
        raise FileNotFoundError(f"no data directory: set {DATA_ENV}=DIR or data.data_dir in the config; "
                                "`classit data download --out DIR` fetches the BabyLM corpus and evaluation data")
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: data directory not found; "
                                f"`classit data download --out {path}` fetches the BabyLM data into it")
    return path


def cache_dir(configured: str | None = None) -> Path:
    """Where tokenizers and tokenized corpora are cached: configured, ``$CLASSIT_CACHE_DIR`` or ~/.cache/classit."""
    return Path(configured or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "classit").expanduser()
