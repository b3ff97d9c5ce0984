"""The BabyLM corpus source: reading files, tokenizing once (content-keyed cache), packing into blocks."""

import shutil

import numpy as np
import pytest

from classit.data import corpus
from classit.data.babylm import BabyLMCorpus, PackedBlocks
from classit.data.corpus import count_words, iter_segments, read_lines
from classit.data.curriculum import CurriculumDataModule
from classit.data.prepare import load_tokens, tokenize_corpus
from classit.train.fit import curriculum_tokenizer
from helpers import babylm_file, small_corpus


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


def documents(segments) -> list[str]:
    texts = []
    for s in segments:
        texts.append(s.text) if s.starts_document else texts.__setitem__(-1, texts[-1] + s.text)
    return texts


@pytest.mark.slow
@pytest.mark.parametrize("name", ["train_3M/simple_wiki.train", "train_3M/childes.train", "dev/switchboard.dev"])
def test_reading_in_small_pieces_gives_the_same_documents_and_tokens(data_root, tokenizer, monkeypatch, name):
    path = babylm_file(data_root, name)
    whole = documents(iter_segments(path))
    monkeypatch.setattr(corpus, "READ_BYTES", 3000)  # 1,000 times smaller: long lines come in pieces
    segments = list(iter_segments(path))
    if "switchboard" not in name:  # one long line / inline title markers: cut between words, never in a marker
        assert any(continued for _, continued in read_lines(path))
    assert documents(segments) == whole
    assert sum(count_words(s.text) for s in segments) == count_words(path.read_text())
    streamed = [i for s in segments for i in tokenizer(s.text, add_special_tokens=False)["input_ids"]]
    assert streamed == [i for d in whole for i in tokenizer(d, add_special_tokens=False)["input_ids"]]


def test_a_bad_byte_is_named_the_same_whatever_the_read_size(data_root, tmp_path, monkeypatch):
    text = (data_root / "babylm-corpus/dev/switchboard.dev").read_bytes()
    bad = tmp_path / "bad.train"
    bad.write_bytes(text + "caf\u00e9 ok\n".encode() + b"then \xe9 alone\n")
    with pytest.raises(ValueError) as whole:
        list(iter_segments(bad))
    monkeypatch.setattr(corpus, "READ_BYTES", len(text) + 4)  # the first read ends inside the "é"
    with pytest.raises(ValueError) as pieces:
        list(iter_segments(bad))
    line = text.count(b"\n") + 2
    assert str(whole.value) == str(pieces.value)
    assert f"bad.train:{line}: not UTF-8 text (byte 0xe9 at offset {len(text) + 14})" in str(whole.value)


def test_packing_keeps_every_token_with_eos_between_documents(tokenizer, data_root, tmp_path):
    files = [babylm_file(data_root, "dev/simple_wiki.dev"), babylm_file(data_root, "dev/childes.dev")]
    meta = tokenize_corpus(files, tokenizer, tmp_path / "tokens", num_proc=2)
    tokens = load_tokens(tmp_path / "tokens")
    assert meta["words"] == sum(count_words(f.read_text()) for f in files) and meta["tokens"] == len(tokens)

    blocks = PackedBlocks(tokens, 100, tokenizer.pad_token_id, meta["words"] / meta["tokens"])
    stream = np.concatenate([b["input_ids"][b["labels"] != -100].numpy() for b in blocks])
    assert stream.tolist() == tokens.tolist()
    assert all(len(b["input_ids"]) == 100 for b in blocks)
    assert sum(float(b["words"]) for b in blocks) == pytest.approx(meta["words"])  # an epoch counts the corpus's words


def corpus_curriculum(root, tokenizer, cache, **kwargs) -> CurriculumDataModule:
    dm = CurriculumDataModule({"pretrain": BabyLMCorpus(train_dir="train", val_dir=kwargs.pop("val_dir", "dev"))},
                              data_dir=str(root), cache_dir=str(cache), tokenizer=tokenizer.name_or_path,
                              block_size=64, batch_size=4, num_workers=0, **kwargs)
    dm.use_tokenizer(tokenizer)
    return dm


def test_corpus_is_prepared_once_and_found_again_at_another_path(tokenizer, data_root, tmp_path):
    dm = corpus_curriculum(small_corpus(data_root, tmp_path / "a"), tokenizer, tmp_path / "cache")
    dm.prepare_data()
    entries = sorted(e for e in (tmp_path / "cache" / "tokens").iterdir() if not e.name.startswith("."))
    assert len(entries) == 2  # train and dev, each built once
    mtimes = [e.stat().st_mtime_ns for e in entries]
    shutil.copytree(tmp_path / "a", tmp_path / "b", symlinks=False)  # the same text at another path
    copy = corpus_curriculum(tmp_path / "b", tokenizer, tmp_path / "cache")
    copy.prepare_data()
    assert sorted(e for e in (tmp_path / "cache" / "tokens").iterdir() if not e.name.startswith(".")) == entries
    assert [e.stat().st_mtime_ns for e in entries] == mtimes
    copy.setup("fit")
    batch = copy._loader(["pretrain"], [copy.train_sets["pretrain"]]).dataset[(0, [0, 1, 2, 3])]
    assert batch["input_ids"].shape == (4, 64) and batch["source"] == ["pretrain"] * 4


@pytest.mark.parametrize("content, message", [
    (b"", "empty corpus file"),
    (b"fine line\nsecond line\nbad \xff byte\n", ":3: not UTF-8"),
])
def test_bad_corpus_files_name_file_and_line(tmp_path, content, message, tokenizer):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "ok.train").write_text("a good file\n")
    (tmp_path / "train" / "bad.train").write_bytes(content)
    dm = corpus_curriculum(tmp_path, tokenizer, tmp_path / "cache", val_dir=None)
    with pytest.raises(ValueError, match=f"bad.train{message}" if message.startswith(":") else message) as error:
        dm.prepare_data()
    assert "bad.train" in str(error.value)


def test_missing_data_says_how_to_fetch_it(tmp_path, monkeypatch, tokenizer):
    monkeypatch.setenv("CLASSIT_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="classit data download"):
        CurriculumDataModule({"pretrain": BabyLMCorpus()})
    dm = CurriculumDataModule({"pretrain": BabyLMCorpus(train_dir="babylm-corpus/train_100M")}, data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="train_100M: corpus folder not found.*classit data download"):
        curriculum_tokenizer(dm)  # the tokenizer to train is the first to read the corpus
