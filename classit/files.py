"""The files classit reads and writes (JSON, JSON Lines, YAML, CSV): every reader stops on a malformed file in one line
naming the file (and line, where there is one); every writer writes atomically, through :func:`atomic_path`."""

import contextlib
import csv
import json
import os
import re
import shutil
from pathlib import Path
from typing import Iterable, Iterator


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (``.NAME.tmpPID``) for the block to write a file or a folder into. When the
    block ends without error it is synced to disk and renamed over ``path`` in one step, so a reader sees the old
    file or the new one, never half of one; otherwise it is removed and ``path`` stays as it was. A folder cannot
    replace a folder that is already there: that rename raises ``OSError``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield temporary
        _sync(temporary)
        os.replace(temporary, path)
        _sync(path.parent)  # the rename itself survives a crash
    finally:
        remove(temporary)


def _sync(path: Path) -> None:
    """``fsync`` a file, or a folder and everything in it."""
    for entry in [*path.rglob("*"), path] if path.is_dir() else [path]:
        descriptor = os.open(entry, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def remove(path: Path) -> None:
    """Remove a file or a folder, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def write_json(value, path: Path, *, indent: int | None = None, sort_keys: bool = False, end: str = "") -> None:
    """``value`` as one JSON document (``json.dumps`` with ``indent`` and ``sort_keys``, then ``end``)."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(value, indent=indent, sort_keys=sort_keys) + end, encoding="utf-8")


def write_text(text: str, path: Path) -> None:
    """``text`` as a UTF-8 file."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def read_json(path: Path):
    """One JSON document; malformed, it stops naming the file and line."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a JSON file (not UTF-8 text: byte {e.start})") from None


def iter_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    """``(file:line, record)`` for each non-empty line; a malformed line or one that is no object stops naming both."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{where}: not a JSON Lines file (not UTF-8 text)") from None
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{where}: malformed JSON line ({e.msg})") from None
                if not isinstance(record, dict):
                    raise ValueError(f"{where}: expected a JSON object")
                yield where, record


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON Lines file, in order."""
    return [record for _, record in iter_jsonl(path)]


def write_jsonl(records: Iterable[dict], path: Path, *, ensure_ascii: bool = False) -> None:
    """One JSON object a line (UTF-8 kept as is, unless ``ensure_ascii``), the folder made if needed."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record, ensure_ascii=ensure_ascii) + "\n" for record in records)


def read_yaml(path: Path):
    """One YAML document; a syntax error stops naming the file and the line (jsonargparse names neither)."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None) or str(e).splitlines()[0]
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        context = ""
        if getattr(e, "context", None) and getattr(e, "context_mark", None):
            context = f" ({e.context} from line {e.context_mark.line + 1})"
        raise ValueError(f"{where}: not valid YAML: {problem}{context}; fix the file there") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a YAML file (not UTF-8 text: byte {e.start})") from None


def read_csv(path: Path, **options):
    """A CSV file as a pandas DataFrame (``options`` go to ``pandas.read_csv``); a file that is not CSV text (another
    format under the name, a broken row) stops naming the file."""
    import pandas as pd

    try:
        return pd.read_csv(path, **options)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a CSV file (not UTF-8 text: byte {e.start})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        reason = str(e).strip().removeprefix("Error tokenizing data. C error: ")
        line = re.search(r"in line (\d+)", reason)
        raise ValueError(f"{path}{':' + line[1] if line else ''}: not a readable CSV file ({reason})") from None


def write_csv(rows: Iterable[list], path: Path) -> None:
    """Rows (the header first) as a CSV file, as ``csv.writer`` writes them."""
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as f:
        csv.writer(f).writerows(rows)
