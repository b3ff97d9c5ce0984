"""Corpus preparation: wall time and peak memory to tokenize and pack a corpus of N words, and a cached re-run.

The corpus is the BabyLM sample (``$CLASSIT_DATA_DIR/babylm-corpus/train_3M``) with each file repeated
to reach about N words, in a temporary folder. The tokenizer (``--tokenizer``, else one of 16384 tokens
trained once on the sample, cached) is ready before the clock starts. The preparation runs in a fresh
process; peak_rss_mb is that process's peak RSS plus the largest peak of its worker processes
(``ru_maxrss`` of RUSAGE_SELF + RUSAGE_CHILDREN; forked workers count the pages they share with it).
The last line printed is one JSON object.

    CLASSIT_DATA_DIR=../shared/data python benchmarks/data_pipeline.py --quick
    CLASSIT_DATA_DIR=../shared/data python benchmarks/data_pipeline.py --words 100000000
"""

import argparse
import json
import multiprocessing
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from classit.data.corpus import corpus_files, count_words
from classit.data.prepare import cached_tokens, read_meta
from classit.data.store import cache_dir, data_dir
from classit.data.tokenizer import cached_tokenizer, load_tokenizer


def repeated_corpus(sample: list[Path], words: int, out: Path) -> list[Path]:
    """The sample's files, each repeated to make about ``words`` words in all, written to ``out``."""
    repeats = max(1, round(words / sum(count_words(f.read_text()) for f in sample)))
    for f in sample:
        data = f.read_bytes()
        with open(out / f.name, "wb") as copy:
            for _ in range(repeats):
                copy.write(data)
    return [out / f.name for f in sample]


def measure(files: list[Path], tokenizer_dir: str, cache: Path, num_proc: int) -> dict:
    """Prepare ``files`` into an empty cache, then again from the cache; timings and peak memory."""
    tokenizer = load_tokenizer(tokenizer_dir)
    start = time.perf_counter()
    prepared = cached_tokens(files, tokenizer, cache, num_proc)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    assert cached_tokens(files, tokenizer, cache, num_proc) == prepared
    cached = time.perf_counter() - start
    peak_kb = sum(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    meta = read_meta(prepared)
    return {"words": meta["words"], "tokens": meta["tokens"], "seconds": round(seconds, 2),
            "peak_rss_mb": round(peak_kb / 1024), "cached_rerun_s": round(cached, 3),
            "tokens_per_s": round(meta["tokens"] / seconds), "num_proc": num_proc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=int, default=100_000_000, help="corpus size in words (about)")
    parser.add_argument("--num_proc", type=int, default=os.cpu_count(), help="tokenization processes")
    parser.add_argument("--tokenizer", help="a tokenizer folder; default: 16384 tokens trained on the sample (cached)")
    parser.add_argument("--quick", action="store_true", help="the sample once (about 3M words)")
    args = parser.parse_args()
    sample = corpus_files(data_dir() / "babylm-corpus" / "train_3M", ".train")
    tokenizer_dir = args.tokenizer or cached_tokenizer(sample, 16384, cache_dir()).name_or_path
    with tempfile.TemporaryDirectory(prefix="classit-bench-") as tmp:
        (Path(tmp) / "corpus").mkdir()
        files = repeated_corpus(sample, 3_000_000 if args.quick else args.words, Path(tmp) / "corpus")
        with ProcessPoolExecutor(1, multiprocessing.get_context("spawn")) as fresh:  # memory counted from a clean process
            result = fresh.submit(measure, files, tokenizer_dir, Path(tmp) / "cache", args.num_proc).result()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
