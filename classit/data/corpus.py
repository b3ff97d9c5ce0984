"""Read BabyLM corpus files as they ship: documents, segments and word counts.

A document starts at the top of a file, after a blank line, and at every
``= = = Title = = =`` marker (inline ones too: some files are one very long line).
Lines of a document keep their newlines. Long lines are cut at spaces into segments
of at most ``SEGMENT_CHARS`` characters so that tokenization stays batched. Files are
read ``READ_BYTES`` at a time, so memory does not grow with a file's size.
"""

import codecs
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SEGMENT_CHARS = 50_000
READ_BYTES = 1 << 22  # read at a time; a line longer than this is handed on in pieces
MARKER_REACH = 160  # a long line is cut no nearer than this to a "= = =" (a title marker is at most 134 characters)
TITLE = re.compile(r"= = = [^\n=]{1,120}? = = =")  # bounded: a broken marker must not pair with the next one


@dataclass
class Segment:
    text: str
    starts_document: bool
    ends_document: bool = False
    line: int = 0  # the file's line (from 1) the segment is cut from
    column: int = 0  # where in that line (characters, from 0) its text starts, a leading newline not counted


def _not_utf8(path: Path, data: bytes, position: int, offset: int, line: int) -> ValueError:
    return ValueError(f"{path}:{line}: not UTF-8 text (byte {data[position]:#04x} at offset {offset}); "
                      f"re-encode the file as UTF-8")


def _empty(path: Path) -> ValueError:
    return ValueError(f"{path}: empty corpus file; remove it or fill it")


def read_text(path: Path) -> str:
    """The file's text; a file that is empty or not UTF-8 stops with its name and line."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _not_utf8(path, data, error.start, error.start, data[: error.start].count(b"\n") + 1) from None
    if not text.strip():
        raise _empty(path)
    return text


def _cut(line: str) -> int:
    """A space in the second half of a long line, at least ``MARKER_REACH`` from its end and from any "= = ="
    (so no title marker is cut); 0 if there is none."""
    end = len(line) - MARKER_REACH
    while (cut := line.rfind(" ", len(line) // 2, end)) > 0:
        marker = line.rfind("= = =", 0, cut + MARKER_REACH)
        if marker < cut - MARKER_REACH:
            return cut
        end = marker - MARKER_REACH
    return 0


def read_lines(path: Path) -> Iterator[tuple[str, bool]]:
    """The file's lines without their newlines, as ``(text, continued)``, reading ``READ_BYTES`` at a time.

    A line longer than that comes in pieces cut at spaces (so no word or title marker is split), ``continued``
    on all but the first. A file that is empty or not UTF-8 stops with its name and line.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = newlines = 0
    has_text, carry, continued = False, "", False
    with open(path, "rb") as f:
        while True:
            data = f.read(READ_BYTES)
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as error:  # error.object: the bytes held back from the last read, then data
                start = offset - (len(error.object) - len(data))
                raise _not_utf8(path, error.object, error.start, start + error.start,
                                newlines + error.object[: error.start].count(b"\n") + 1) from None
            offset, newlines = offset + len(data), newlines + data.count(b"\n")
            has_text = has_text or (text != "" and not text.isspace())
            *lines, carry = (carry + text).split("\n")
            for line in lines:
                yield line, continued
                continued = False
            if len(carry) > READ_BYTES and (cut := _cut(carry)):
                yield carry[:cut], continued
                carry, continued = carry[cut:], True
            if not data:
                break
    if not has_text:
        raise _empty(path)
    yield carry, continued


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


def _pieces(prefix: str, text: str, column: int) -> Iterator[tuple[str, int]]:
    """The pieces of ``prefix + text`` (:func:`_split_long`), each with the column its text starts at."""
    at = 0
    for piece in _split_long(prefix + text):
        yield piece, column + max(0, at - len(prefix))
        at += len(piece)


def _raw_segments(lines: Iterator[tuple[str, bool]]) -> Iterator[tuple[str, bool, int, int]]:
    new_document, number, column, width = True, 0, 0, 0
    for line, continued in lines:
        number += not continued
        column, width = column + width if continued else 0, len(line)
        if not continued and not line.strip():
            new_document = True
            continue
        prefix = "" if new_document or continued else "\n"
        start = 0
        for marker in TITLE.finditer(line):
            if line[start:marker.start()].strip():
                for piece, at in _pieces(prefix, line[start:marker.start()].rstrip(" "), column + start):
                    yield piece, new_document, number, at
                    new_document = False
            start, prefix, new_document = marker.start(), "", True
        for piece, at in _pieces(prefix, line[start:], column + start):
            yield piece, new_document, number, at
            new_document = False


def iter_segments(path: Path) -> Iterator[Segment]:
    """The file's segments in order, each flagged where a document starts or ends, with its line and column."""
    previous = None
    for text, starts, number, column in _raw_segments(read_lines(path)):
        if previous is not None:
            previous.ends_document = starts
            yield previous
        previous = Segment(text, starts, line=number, column=column)
    previous.ends_document = True
    yield previous


def iter_text_chunks(path: Path) -> Iterator[str]:
    """Plain text pieces of a file, for tokenizer training."""
    return (segment.text for segment in iter_segments(path))


def count_words(text: str) -> int:
    """Whitespace-separated words, as BabyLM counts its budget."""
    return len(text.split())
