"""What a derived file of ``classit dynamics`` was made from: a digest of its input files (path, size, modification
time) and settings, kept in ``OUT/stamps/<name>.json`` beside the cached results, so that a second call with nothing
new recomputes nothing."""

import hashlib
import json
from pathlib import Path

from classit import layout
from classit.files import read_json, write_json


def files_stamp(paths: list[Path], **settings) -> str:
    """A digest of the files (each one's resolved path, size and modification time; a missing one as missing) and
    the settings."""
    entries = []
    for path in paths:
        path = Path(path).resolve()
        stat = path.stat() if path.is_file() else None
        entries.append([str(path), stat.st_size if stat else None, stat.st_mtime_ns if stat else None])
    text = json.dumps([entries, settings], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def export_files(folder: Path) -> list[Path]:
    """The files of a Hugging Face export that make its model (weights, config, tokenizer, ``milestone.json``): all
    but its ``seen.json``."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.name != layout.SEEN_FILE)


def kept(out: Path, name: str, stamp: str, outputs: list[Path]) -> dict | None:
    """The stamp file ``name`` when it holds ``stamp`` and every one of ``outputs`` is there (what it keeps beside
    the stamp: ``result``); else None (make them again)."""
    path = layout.dynamics_stamps(out) / f"{name}.json"
    if not path.is_file() or not all(Path(p).is_file() for p in outputs):
        return None
    found = read_json(path)
    return found if found.get("stamp") == stamp else None


def stamp(out: Path, name: str, value: str, result=None) -> None:
    """Record that the outputs of ``name`` were made from inputs whose stamp is ``value`` (and keep ``result``)."""
    write_json({"stamp": value, "result": result}, layout.dynamics_stamps(out) / f"{name}.json")
