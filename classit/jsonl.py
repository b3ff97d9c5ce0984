"""JSON and JSON Lines files: every reader stops on a malformed line naming its file and line."""

import json
from pathlib import Path
from typing import Iterable, Iterator


def read_json(path: Path):
    """One JSON document; malformed, it stops naming the file and line."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None


def iter_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    """``(file:line, record)`` for each non-empty line; a malformed line or one that is no object stops naming both."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                where = f"{path}:{number}"
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
