"""The files a user hands classit (JSON, JSON Lines, CSV): every reader stops on a malformed file in one line
naming the file (and line, where there is one)."""

import json
import re
from pathlib import Path
from typing import Iterable, Iterator


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


def write_jsonl(records: Iterable[dict], path: Path) -> None:
    """One JSON object a line (UTF-8 kept as is), the folder made if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


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
