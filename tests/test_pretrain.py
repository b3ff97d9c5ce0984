"""Reading BabyLM files and packing them into blocks."""

import numpy as np
import pytest

from classit.data.corpus import count_words, iter_segments
from classit.data.pretrain import BabyLMDataModule, PackedBlocks, tokenize_corpus
from helpers import small_corpus


def test_segments_split_documents_at_title_markers(data_root):
    segments = list(iter_segments(data_root / "babylm-corpus/train_3M/simple_wiki.train"))
    titled = [s for s in segments if s.text.startswith("= = = ")]
    assert len(titled) > 1000
    assert all(s.starts_document for s in titled)
    assert all(len(s.text) <= 50_000 for s in segments)
    text = (data_root / "babylm-corpus/train_3M/simple_wiki.train").read_text()
    assert sum(count_words(s.text) for s in segments) == count_words(text)


def test_speaker_lines_stay_one_document(data_root):
    segments = list(iter_segments(data_root / "babylm-corpus/dev/switchboard.dev"))
    assert segments[0].starts_document and segments[-1].ends_document
    assert all(s.text.startswith("\n") and s.text[1:3] in ("A:", "B:") for s in segments[1:])
    assert sum(s.starts_document for s in segments) == 1


def test_packing_keeps_every_token_with_eos_between_documents(tokenizer, data_root, tmp_path):
    files = [data_root / "babylm-corpus/dev/simple_wiki.dev", data_root / "babylm-corpus/dev/childes.dev"]
    tokens, words = tokenize_corpus(files, tokenizer, num_proc=2, work_dir=tmp_path)
    documents = []
    for f in files:
        for s in iter_segments(f):
            documents.append(s.text) if s.starts_document else documents.__setitem__(-1, documents[-1] + s.text)
    expected = []
    for doc in documents:
        expected += [tokenizer.bos_token_id] + tokenizer(doc, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert tokens.tolist() == expected
    assert words == sum(count_words(f.read_text()) for f in files)

    blocks = PackedBlocks(tokens, 100, tokenizer.pad_token_id)
    stream = np.concatenate([b["input_ids"][b["labels"] != -100].numpy() for b in blocks])
    assert stream.tolist() == tokens.tolist()
    assert all(len(b["input_ids"]) == 100 for b in blocks)


def test_data_module_caches_streams(tokenizer, data_root, cache_root, tmp_path):
    dm = BabyLMDataModule(data_dir=str(small_corpus(data_root, tmp_path)), train_dir="train", val_dir="dev",
                          tokenizer=tokenizer.name_or_path, block_size=64, batch_size=4, num_workers=0)
    dm.prepare_data()
    stream = dm._stream_path(dm.train_files)
    assert stream.exists() and stream.with_suffix(".json").exists()
    mtime = stream.stat().st_mtime_ns
    dm.prepare_data()
    assert stream.stat().st_mtime_ns == mtime
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (4, 64)
    assert 0.3 < dm.words_per_token < 1.0


@pytest.mark.parametrize("content, message", [
    (b"", "empty corpus file"),
    (b"fine line\nsecond line\nbad \xff byte\n", ":3: not UTF-8"),
])
def test_bad_corpus_files_name_file_and_line(tmp_path, content, message, tokenizer):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "ok.train").write_text("a good file\n")
    (tmp_path / "train" / "bad.train").write_bytes(content)
    dm = BabyLMDataModule(data_dir=str(tmp_path), train_dir="train", val_dir=None,
                          tokenizer=tokenizer.name_or_path, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=f"bad.train{message}" if message.startswith(":") else message) as error:
        dm.prepare_data()
    assert "bad.train" in str(error.value)


def test_missing_data_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSIT_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="classit data download"):
        BabyLMDataModule()
    with pytest.raises(FileNotFoundError, match="train_100M: corpus folder not found.*classit data download"):
        BabyLMDataModule(data_dir=str(tmp_path), train_dir="babylm-corpus/train_100M")
