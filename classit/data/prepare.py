"""Corpus preparation done once and shared: content keys, locked atomic cache entries, streaming tokenization.

A prepared corpus is a folder holding ``tokens.bin`` (all token ids, ``<s> document </s>`` after
another, in the smallest unsigned integer type that holds the vocabulary) and ``meta.json``.
Entries are keyed by content (``fingerprint``), not by path, so a copied corpus hits the cache.
"""

import multiprocessing
import os
from collections import deque
from pathlib import Path
from typing import Iterator

import numpy as np

from classit.data.corpus import count_words, iter_segments
from classit.data.store import build_once, fingerprint
from classit.files import read_json, write_json

FORMAT_VERSION = 1
BATCH_CHARS = 1 << 20  # tokenization: characters of text per task sent to a worker


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds every id of a vocabulary."""
    return np.min_scalar_type(vocab_size - 1)


def _batches(files: list[Path], batch_chars: int) -> Iterator[list[tuple[str, bool, bool]]]:
    batch, chars = [], 0
    for path in files:
        for segment in iter_segments(path):  # reads each file once; empty / non-UTF-8 files stop here
            batch.append((segment.text, segment.starts_document, segment.ends_document))
            chars += len(segment.text)
            if chars >= batch_chars:
                yield batch
                batch, chars = [], 0
    if batch:
        yield batch


_worker = {}


def _start_worker(tokenizer_json: str, bos: int, eos: int, dtype: str) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per worker process
    from tokenizers import Tokenizer

    _worker.update(tokenizer=Tokenizer.from_str(tokenizer_json), bos=bos, eos=eos, dtype=dtype)


def _encode(batch: list[tuple[str, bool, bool]]) -> tuple[np.ndarray, int]:
    """A batch of segments → its token ids (BOS before a document's first segment, EOS after its last), words."""
    encodings = _worker["tokenizer"].encode_batch_fast([text for text, _, _ in batch], add_special_tokens=False)
    ids = []
    for (_, starts, ends), encoding in zip(batch, encodings):
        if starts:
            ids.append(_worker["bos"])
        ids += encoding.ids
        if ends:
            ids.append(_worker["eos"])
    return np.array(ids, dtype=_worker["dtype"]), sum(count_words(text) for text, _, _ in batch)


def _in_order(pool, batches: Iterator[list], window: int) -> Iterator[tuple[np.ndarray, int]]:
    """``_encode`` of each batch, in order, with at most ``window`` batches in flight."""
    pending = deque()
    for batch in batches:
        pending.append(pool.apply_async(_encode, (batch,)))
        if len(pending) > window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def tokenize_corpus(files: list[Path], tokenizer, out: Path, num_proc: int = os.cpu_count(),
                    batch_chars: int = BATCH_CHARS) -> dict:
    """Tokenize ``files`` into the folder ``out`` (``tokens.bin``, ``meta.json``) and return the metadata.

    The parent reads the files once and sends batches of ``batch_chars`` characters of segments to
    ``num_proc`` worker processes; their ids are appended to ``tokens.bin`` in order as they come back,
    with a few batches in flight, so memory does not grow with the corpus.
    """
    files, out = [Path(f) for f in files], Path(out)
    out.mkdir(parents=True)
    dtype, key = token_dtype(len(tokenizer)), fingerprint(files)
    tokens = words = 0
    start = (tokenizer.backend_tokenizer.to_str(), tokenizer.bos_token_id, tokenizer.eos_token_id, dtype.str)
    with (multiprocessing.get_context("fork").Pool(num_proc, _start_worker, start) as pool,
          open(out / "tokens.bin", "wb") as sink):
        for ids, batch_words in _in_order(pool, _batches(files, batch_chars), window=2 * num_proc):
            sink.write(ids.tobytes())
            tokens, words = tokens + len(ids), words + batch_words
    meta = {"format": FORMAT_VERSION, "tokens": tokens, "words": words, "dtype": dtype.name,
            "files": [f.name for f in files], "fingerprint": key}
    write_json(meta, out / "meta.json", indent=1, end="\n")
    return meta


def read_meta(path: Path) -> dict:
    """The metadata of a prepared corpus folder."""
    return read_json(Path(path) / "meta.json")


def load_tokens(path: Path) -> np.memmap:
    """The token ids of a prepared corpus folder, memory-mapped read-only."""
    return np.memmap(Path(path) / "tokens.bin", dtype=read_meta(path)["dtype"], mode="r")


def cached_tokens(files: list[Path], tokenizer, cache_dir: Path, num_proc: int = os.cpu_count()) -> Path:
    """The prepared corpus folder for these files' content and this tokenizer, built once under ``cache_dir/tokens``."""
    from classit.data.tokenizer import tokenizer_fingerprint

    key = f"{fingerprint(files)}-{tokenizer_fingerprint(tokenizer)}-v{FORMAT_VERSION}"
    return build_once(Path(cache_dir) / "tokens" / key, lambda tmp: tokenize_corpus(files, tokenizer, tmp, num_proc))
