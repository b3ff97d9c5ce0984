"""Corpus preparation: streaming tokenization in worker processes, content keys, one build across processes."""

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import SMALL_VOCAB
from helpers import babylm_file

from classit.data.corpus import corpus_files, count_words, iter_segments
from classit.data.prepare import build_once, cached_tokens, fingerprint, load_tokens, read_meta, tokenize_corpus
from classit.data.tokenizer import cached_tokenizer

DEV_FILES = ("simple_wiki.dev", "childes.dev", "switchboard.dev")  # title markers, one long line, many lines


def reference_tokens(files, tokenizer) -> list[int]:
    """Each document tokenized whole, between BOS and EOS, documents in file order."""
    documents = []
    for f in files:
        for s in iter_segments(f):
            documents.append(s.text) if s.starts_document else documents.__setitem__(-1, documents[-1] + s.text)
    ids = []
    for doc in documents:
        ids += [tokenizer.bos_token_id] + tokenizer(doc, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return ids


def copy_files(data_root, names, folder):
    folder.mkdir()
    sources = [babylm_file(data_root, f"dev/{name}") for name in names]
    return [shutil.copy(source, folder / source.name) for source in sources]


@pytest.mark.slow
def test_streaming_tokens_equal_whole_document_reference(tokenizer, data_root, tmp_path):
    files = [babylm_file(data_root, f"dev/{name}") for name in DEV_FILES]
    meta = tokenize_corpus(files, tokenizer, tmp_path / "out", num_proc=2, batch_chars=20_000)  # ~40 batches
    tokens = load_tokens(tmp_path / "out")
    assert tokens.dtype == np.uint16
    assert tokens.tolist() == reference_tokens(files, tokenizer)
    assert meta == read_meta(tmp_path / "out")
    assert meta["tokens"] == len(tokens)
    assert meta["words"] == sum(count_words(f.read_text()) for f in files)
    assert meta["files"] == [f.name for f in files] and meta["fingerprint"] == fingerprint(files)


def test_copied_corpus_hits_the_caches_and_an_edit_misses(tokenizer, data_root, cache_root, tmp_path):
    first = copy_files(data_root, ["childes.dev", "switchboard.dev"], tmp_path / "a")
    second = copy_files(data_root, ["childes.dev", "switchboard.dev"], tmp_path / "b")
    built = cached_tokens(first, tokenizer, cache_root, num_proc=2)
    inode = (built / "tokens.bin").stat().st_ino
    assert cached_tokens(second, tokenizer, cache_root) == built
    assert (built / "tokens.bin").stat().st_ino == inode

    with open(second[1], "a") as f:
        f.write("A: one more line.\n")
    assert fingerprint(second) != fingerprint(first)
    rebuilt = cached_tokens(second, tokenizer, cache_root, num_proc=2)
    added = len(tokenizer("\nA: one more line.", add_special_tokens=False)["input_ids"])  # one more segment
    assert rebuilt != built and read_meta(rebuilt)["tokens"] == read_meta(built)["tokens"] + added

    # the session tokenizer was trained on train_3M; a copy of it elsewhere loads that tokenizer, no training
    copies = tmp_path / "train_copy"
    shutil.copytree(data_root / "babylm-corpus/train_3M", copies)
    again = cached_tokenizer(corpus_files(copies, ".train"), SMALL_VOCAB, cache_root)
    assert again.name_or_path == tokenizer.name_or_path


def test_fingerprint_sees_content_names_and_order(data_root, tmp_path):
    files = copy_files(data_root, ["simple_wiki.dev", "childes.dev"], tmp_path / "a")
    key = fingerprint(files)
    assert fingerprint(files[::-1]) != key
    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 1  # same size, one byte in the middle
    files[0].write_bytes(bytes(data))
    edited = fingerprint(files)
    assert edited != key
    assert fingerprint([files[0], files[1].rename(files[1].with_name("other.dev"))]) != edited


def test_two_processes_build_an_entry_once(tmp_path):
    """The builder holds the lock until the kernel lists the other process waiting on it (``/proc/locks``): the two
    calls overlap, whatever the order and speed the processes start in, and only one builds."""
    script = textwrap.dedent(f"""
        import os, re, sys, time
        from pathlib import Path
        from classit.data.prepare import build_once

        def build(tmp):
            inode = os.stat({str(tmp_path / ".entry.lock")!r}).st_ino
            waiting = re.compile(rf"-> FLOCK .*:{{inode}} ")
            while not any(waiting.search(line) for line in open("/proc/locks")):  # the other caller is blocked
                time.sleep(0.01)
            with open({str(tmp_path / "builds.log")!r}, "a") as log:
                log.write(sys.argv[1] + "\\n")
            tmp.write_text("built by " + sys.argv[1])

        print(build_once(Path({str(tmp_path / "entry")!r}), build).read_text())
    """)
    runs = [subprocess.Popen([sys.executable, "-c", script, name], stdout=subprocess.PIPE, text=True)
            for name in ("first", "second")]
    outputs = [run.communicate(timeout=120)[0].strip() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    builders = (tmp_path / "builds.log").read_text().split()
    assert len(builders) == 1
    assert outputs == [f"built by {builders[0]}"] * 2


def test_a_failed_build_leaves_no_entry(tmp_path):
    def build(tmp):
        tmp.mkdir()
        (tmp / "half").write_text("written")
        raise RuntimeError("crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        build_once(tmp_path / "entry", build)
    assert [p.name for p in tmp_path.iterdir()] == [".entry.lock"]
    assert build_once(tmp_path / "entry", lambda tmp: tmp.write_text("ok")).read_text() == "ok"


@pytest.mark.parametrize("content, message", [
    (b"", "bad.dev: empty corpus file"),
    (b"fine line\nsecond line\nbad \xff byte\n", "bad.dev:3: not UTF-8"),
])
def test_bad_file_stops_naming_file_and_line(tokenizer, data_root, cache_root, tmp_path, content, message):
    files = copy_files(data_root, ["switchboard.dev"], tmp_path / "corpus")
    (tmp_path / "corpus" / "bad.dev").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        cached_tokens(files + [tmp_path / "corpus" / "bad.dev"], tokenizer, tmp_path / "cache", num_proc=2)
    left = [p.name for p in (tmp_path / "cache" / "tokens").iterdir()]
    assert len(left) == 1 and left[0].endswith(".lock")  # no entry, no temporary folder
