"""The BabyLM corpus as a curriculum source: ``*.train`` / ``*.dev`` domain files → packed token blocks."""

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from classit.data.chat import IGNORE_INDEX
from classit.data.corpus import corpus_files
from classit.data.prepare import cached_tokens, load_tokens, read_meta
from classit.data.source import Source


class PackedBlocks(Dataset):
    """Consecutive ``block_size`` slices of a token stream; the last one is padded (labels -100).

    ``words`` of a block is its share of the corpus's words (tokens × words per token), so the
    blocks of an epoch add up to the corpus's word count, as BabyLM counts its budget.
    """

    def __init__(self, tokens: np.ndarray, block_size: int, pad_id: int, words_per_token: float):
        self.tokens, self.block_size, self.pad_id, self.words_per_token = tokens, block_size, pad_id, words_per_token

    def __len__(self) -> int:
        return -(-len(self.tokens) // self.block_size)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        block = torch.from_numpy(self.tokens[index * self.block_size:(index + 1) * self.block_size].astype(np.int64))
        labels, real = block.clone(), len(block)
        if real < self.block_size:
            pad = self.block_size - real
            block = torch.cat([block, torch.full((pad,), self.pad_id)])
            labels = torch.cat([labels, torch.full((pad,), IGNORE_INDEX)])
        return {"input_ids": block, "labels": labels, "words": torch.tensor(real * self.words_per_token)}


class BabyLMCorpus(Source):
    """Pre-training text: the BabyLM corpus folders of the data directory, tokenized once and packed into blocks
    with ``<s> document </s>`` one after another."""

    def __init__(self, train_dir: str = "babylm-corpus/train_3M", val_dir: str | None = "babylm-corpus/dev",
                 num_proc: int = 2):
        """
        Args:
            train_dir / val_dir: corpus folders inside the data directory (``*.train`` / ``*.dev`` files).
            num_proc: processes that tokenize.
        """
        self.train_dir, self.val_dir, self.num_proc = train_dir, val_dir, num_proc

    def corpus_path(self) -> str | None:
        return self.train_dir

    def read_corpus(self, path: str) -> None:
        self.train_dir = path

    def _files(self, split: str) -> list[Path]:
        folder = self.train_dir if split == "train" else self.val_dir
        return corpus_files(self.root / folder, f".{'train' if split == 'train' else 'dev'}") if folder else []

    def tokenizer_files(self) -> list[Path]:
        return self._files("train")

    def _entry(self, split: str) -> Path:
        """The split's token stream in the cache (tokenized on the first call: rank 0, in ``prepare``)."""
        return cached_tokens(self._files(split), self.tokenizer, self.cache, self.num_proc)

    def prepare(self) -> None:
        for split in ("train", "val"):
            if self._files(split):
                self._entry(split)

    def stats(self, split: str = "train") -> dict:
        """``tokens``, ``words`` and ``files`` of the prepared split."""
        return read_meta(self._entry(split))

    def _blocks(self, split: str) -> PackedBlocks | None:
        if not self._files(split):
            return None
        stats = self.stats(split)
        return PackedBlocks(load_tokens(self._entry(split)), self.block_size, self.tokenizer.pad_token_id,
                            stats["words"] / stats["tokens"])

    def train_set(self) -> PackedBlocks:
        return self._blocks("train")

    def val_set(self) -> PackedBlocks | None:
        return self._blocks("val")

    def collate(self, items: list[dict]) -> dict:
        return default_collate(items)
