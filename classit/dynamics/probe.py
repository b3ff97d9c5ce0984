"""The probe set of the representation metrics: sentences of the BabyLM dev set chosen with a seed, the same for
every run so that runs compare; written one a line (``OUT/probe.txt``) and read back.

A sentence is a piece of a dev file's line cut after ``.``, ``?`` or ``!`` and white space, with the corpus's title
markers (``= = = … = = =``) and a leading speaker tag (CHILDES ``*CHI:``, Switchboard ``A:``, a subtitle's dash)
removed and white space collapsed; it is kept when it has 5 to 40 words (so at most a few hundred characters). The
distinct sentences of all ``*.dev`` files, sorted, are sampled with ``random.Random(seed)``.
"""

import random
import re
from pathlib import Path

from classit.data.corpus import corpus_files, read_text
from classit.files import write_text

TITLE = re.compile(r"= = = .*?= = =")
SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
SPEAKER = re.compile(r"^(\*[A-Z]{2,4}:|[A-Z]:|-)\s*")
MIN_WORDS, MAX_WORDS = 5, 40


def dev_sentences(dev_dir: Path) -> list[str]:
    """The distinct sentences of 5 to 40 words of the ``*.dev`` files of ``dev_dir``, sorted."""
    found = set()
    for file in corpus_files(Path(dev_dir), ".dev"):
        for line in read_text(file).splitlines():
            for sentence in SENTENCE_END.split(TITLE.sub(" ", line)):
                words = SPEAKER.sub("", sentence.strip()).split()
                if MIN_WORDS <= len(words) <= MAX_WORDS:
                    found.add(" ".join(words))
    return sorted(found)


def probe_sentences(dev_dir: Path, count: int = 512, seed: int = 0) -> list[str]:
    """``count`` sentences of the dev set (all of them where it has fewer), chosen with ``seed``: the same for every
    run on the same dev set."""
    sentences = dev_sentences(dev_dir)
    return random.Random(seed).sample(sentences, min(count, len(sentences)))


def write_probe(sentences: list[str], path: Path) -> None:
    """The sentences one a line (UTF-8)."""
    write_text("".join(f"{s}\n" for s in sentences), Path(path))


def read_probe(path: Path) -> list[str]:
    """The non-empty lines of a probe file, stripped; a missing file, one that is not UTF-8 text (or holds NUL
    bytes) or one without a sentence stops in one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such probe file; give a text file of one sentence a line")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a text file (not UTF-8 at byte {error.start}); a probe file holds one "
                         "sentence a line") from None
    if "\0" in text:
        raise ValueError(f"{path}: not a text file (a NUL byte at byte {data.index(0)}); a probe file holds one "
                         "sentence a line")
    sentences = [line.strip() for line in text.splitlines() if line.strip()]
    if not sentences:
        raise ValueError(f"{path}: empty probe file (no sentence); a probe file holds one sentence a line")
    return sentences
