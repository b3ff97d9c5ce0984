"""BabyLM corpus → tokenized, packed blocks, cached on disk; the pre-training LightningDataModule."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import torch
from datasets import Dataset
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from classit.data.corpus import corpus_files, count_words, iter_segments, read_text
from classit.data import sources
from classit.data.tokenizer import TokenizerLinks, cached_tokenizer, load_tokenizer, tokenizer_fingerprint

FORMAT_VERSION = 1


def _segments(files: list[str]):
    for path in files:
        for segment in iter_segments(Path(path)):
            yield {"text": segment.text, "starts": segment.starts_document, "ends": segment.ends_document}


def tokenize_corpus(files: list[Path], tokenizer, num_proc: int, work_dir: Path) -> tuple[np.ndarray, int]:
    """One token stream for all files: ``<s> document </s>`` after another; and the word count."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id

    def encode(batch):
        ids = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        return {"ids": [[bos] * s + x + [eos] * e for x, s, e in zip(ids, batch["starts"], batch["ends"])],
                "words": [count_words(t) for t in batch["text"]]}

    for path in files:
        read_text(path)  # fail early, naming the file and line, on empty or non-UTF-8 files
    segments = Dataset.from_generator(_segments, gen_kwargs={"files": [str(f) for f in files]},
                                      cache_dir=str(work_dir), num_proc=min(num_proc, len(files)))
    encoded = segments.map(encode, batched=True, batch_size=64, num_proc=num_proc,
                           remove_columns=segments.column_names, desc="tokenizing")
    column = encoded.data.column("ids")
    dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max else np.uint32
    tokens = np.concatenate([chunk.flatten().to_numpy() for chunk in column.chunks]).astype(dtype)
    return tokens, int(np.sum(encoded.data.column("words").to_numpy()))


class PackedBlocks(torch.utils.data.Dataset):
    """Consecutive ``block_size`` slices of a token stream; the last one is padded (labels -100)."""

    def __init__(self, tokens: np.ndarray, block_size: int, pad_id: int):
        self.tokens, self.block_size, self.pad_id = tokens, block_size, pad_id

    def __len__(self) -> int:
        return -(-len(self.tokens) // self.block_size)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        block = torch.from_numpy(self.tokens[index * self.block_size:(index + 1) * self.block_size].astype(np.int64))
        labels = block.clone()
        if len(block) < self.block_size:
            pad = self.block_size - len(block)
            block = torch.cat([block, torch.full((pad,), self.pad_id)])
            labels = torch.cat([labels, torch.full((pad,), -100)])
        return {"input_ids": block, "labels": labels}


class BabyLMDataModule(TokenizerLinks, L.LightningDataModule):
    """The BabyLM corpus (``*.train`` / ``*.dev`` domain files) as packed blocks of tokens."""

    def __init__(
        self,
        data_dir: str | None = None,
        train_dir: str = "babylm-corpus/train_3M",
        val_dir: str | None = "babylm-corpus/dev",
        tokenizer: str | None = None,
        vocab_size: int = 16384,
        block_size: int = 512,
        batch_size: int = 16,
        num_workers: int = 2,
        num_proc: int = 2,
        cache_dir: str | None = None,
    ):
        """
        Args:
            data_dir: the data folder; default ``$CLASSIT_DATA_DIR``.
            train_dir / val_dir: corpus folders inside ``data_dir`` (``*.train`` / ``*.dev`` files).
            tokenizer: a tokenizer folder; if unset, one of ``vocab_size`` is trained on the training files (cached).
            block_size: tokens per training sequence.
            batch_size: sequences per micro-batch on each device.
            num_workers: DataLoader worker processes.
            num_proc: processes for tokenization.
            cache_dir: where tokenizers and token streams are cached; default ``$CLASSIT_CACHE_DIR`` or ~/.cache/classit.
        """
        super().__init__()
        root = sources.data_dir(data_dir)
        self.train_files = corpus_files(root / train_dir, ".train")
        self.val_files = corpus_files(root / val_dir, ".dev") if val_dir else []
        self.cache = sources.cache_dir(cache_dir)
        self.tokenizer = load_tokenizer(tokenizer) if tokenizer else cached_tokenizer(self.train_files, vocab_size, self.cache)
        self.block_size, self.batch_size = block_size, batch_size
        self.num_workers, self.num_proc = num_workers, num_proc
        self.words_per_token = None

    def _stream_path(self, files: list[Path]) -> Path:
        key = json.dumps([FORMAT_VERSION, tokenizer_fingerprint(self.tokenizer)] +
                         [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files])
        return self.cache / "tokens" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy"

    def _prepare(self, files: list[Path]) -> None:
        path = self._stream_path(files)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        work = path.with_suffix(f".work{os.getpid()}")
        tokens, words = tokenize_corpus(files, self.tokenizer, self.num_proc, work)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, tokens)
        path.with_suffix(".json").write_text(json.dumps({"tokens": len(tokens), "words": words,
                                                         "files": [str(f) for f in files]}))
        os.replace(tmp, path)
        shutil.rmtree(work, ignore_errors=True)

    def prepare_data(self) -> None:
        """Tokenize and pack the corpus once (rank 0); later runs read the cache."""
        for files in (self.train_files, self.val_files):
            if files:
                self._prepare(files)

    def _load(self, files: list[Path]) -> tuple[np.ndarray, dict]:
        path = self._stream_path(files)
        return np.load(path, mmap_mode="r"), json.loads(path.with_suffix(".json").read_text())

    def setup(self, stage: str) -> None:
        pad = self.tokenizer.pad_token_id
        tokens, stats = self._load(self.train_files)
        self.words_per_token = stats["words"] / stats["tokens"]
        self.train_set = PackedBlocks(tokens, self.block_size, pad)
        rank_zero_info(f"BabyLM train corpus: {stats['words']:,} words, {stats['tokens']:,} tokens, "
                       f"{len(self.train_set):,} blocks of {self.block_size}")
        self.val_set = PackedBlocks(self._load(self.val_files)[0], self.block_size, pad) if self.val_files else None

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, drop_last=True,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0) if self.val_set else []
