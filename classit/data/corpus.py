"""Read BabyLM corpus files as they ship: documents, segments and word counts.

A document starts at the top of a file, after a blank line, and at every
``= = = Title = = =`` marker (inline ones too: some files are one very long line).
Lines of a document keep their newlines. Long lines are cut at spaces into segments
of at most ``SEGMENT_CHARS`` characters so that tokenization stays batched.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SEGMENT_CHARS = 50_000
TITLE = re.compile(r"= = = [^\n=]{1,120}? = = =")  # bounded: a broken marker must not pair with the next one


@dataclass
class Segment:
    text: str
    starts_document: bool
    ends_document: bool = False


def read_text(path: Path) -> str:
    """The file's text; a file that is empty or not UTF-8 stops with its name and line."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte {data[error.start]:#04x} at offset "
                         f"{error.start}); re-encode the file as UTF-8") from None
    if not text.strip():
        raise ValueError(f"{path}: empty corpus file; remove it or fill it")
    return text


def corpus_files(folder: Path, suffix: str) -> list[Path]:
    """The ``*{suffix}`` files of a corpus folder, sorted; a clear error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: corpus folder not found; fetch the BabyLM corpus with "
                                f"`classit data download --out DIR` and set CLASSIT_DATA_DIR=DIR")
    files = sorted(folder.glob(f"*{suffix}"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *{suffix} files in this corpus folder")
    return files


def _split_long(line: str) -> Iterator[str]:
    while len(line) > SEGMENT_CHARS:
        cut = line.rfind(" ", 0, SEGMENT_CHARS)
        cut = cut if cut > 0 else SEGMENT_CHARS
        yield line[:cut]
        line = line[cut:]
    yield line


def _raw_segments(text: str) -> Iterator[tuple[str, bool]]:
    new_document = True
    for line in text.split("\n"):
        if not line.strip():
            new_document = True
            continue
        prefix = "" if new_document else "\n"
        start = 0
        for marker in TITLE.finditer(line):
            if line[start:marker.start()].strip():
                for piece in _split_long(prefix + line[start:marker.start()].rstrip(" ")):
                    yield piece, new_document
                    new_document = False
            start, prefix, new_document = marker.start(), "", True
        for piece in _split_long(prefix + line[start:]):
            yield piece, new_document
            new_document = False


def iter_segments(path: Path) -> Iterator[Segment]:
    """The file's segments in order, each flagged where a document starts or ends."""
    previous = None
    for text, starts in _raw_segments(read_text(path)):
        if previous is not None:
            previous.ends_document = starts
            yield previous
        previous = Segment(text, starts)
    previous.ends_document = True
    yield previous


def iter_text_chunks(path: Path) -> Iterator[str]:
    """Plain text pieces of a file, for tokenizer training."""
    return (segment.text for segment in iter_segments(path))


def count_words(text: str) -> int:
    """Whitespace-separated words, as BabyLM counts its budget."""
    return len(text.split())
