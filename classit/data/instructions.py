"""Instruction-tuning examples as a curriculum source: the CLASS-IT schema (prompt, reply, source, text), rendered
with the chat template and tokenized once; :class:`InstructionFile` reads ready-made sets.

Every :class:`Example` has the fields of the published CLASS-IT data set: prompt, reply,
source, text. The concrete sources build them: :mod:`classit.data.switchboard` (dialogues) and
:mod:`classit.data.lectures` (Simple Wikipedia); ``classit data build-it`` writes them as JSONL.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from datasets import Dataset, load_from_disk
from lightning.pytorch.utilities import rank_zero_info

from classit.data.chat import IGNORE_INDEX, collate_fn, encode_examples, pack_examples, render
from classit.data.corpus import count_words
from classit.data.source import Source
from classit.data.store import build_once
from classit.files import iter_jsonl, read_json, write_json


@dataclass
class Example:
    """One instruction example; ``text`` is the rendered chat (see :mod:`classit.data.chat`)."""
    prompt: str
    reply: str
    source: str
    text: str = ""

    def __post_init__(self):
        self.text = self.text or render(self.prompt, self.reply)

    @property
    def words(self) -> int:
        return count_words(self.prompt) + count_words(self.reply)


class InstructionSource(Source):
    """Prompt/reply examples of one kind, rendered with the chat template and tokenized once (rank 0) into a
    memory-mapped cache; padded examples, or rows of several examples packed without cross-talk."""

    def __init__(self, pack: bool = False, train_on_prompt: bool = False):
        self.pack, self.train_on_prompt = pack, train_on_prompt

    def input_files(self, split: str) -> list[Path]:
        """The files the split's examples are built from (their content keys the cache)."""
        raise NotImplementedError

    def build_examples(self, split: str) -> list[Example]:
        """The examples of ``train`` or ``val`` (may be empty)."""
        raise NotImplementedError

    def has_split(self, split: str) -> bool:
        return bool(self.input_files(split))

    def options(self) -> dict:
        """What else decides the examples (part of the cache key)."""
        return {}

    def _entry(self, split: str) -> Path:
        options = {"class": type(self).__name__, "split": split, "pack": self.pack,
                   "train_on_prompt": self.train_on_prompt, **self.options()}
        return self.cache_entry("instructions", options, self.input_files(split))

    def placed_examples(self, split: str) -> list[tuple[str, Example]]:
        """``(where, example)``: the examples of :meth:`build_examples` with where each comes from (``file:line``
        where the source knows it; by default its one input file, or its name)."""
        files = self.input_files(split)
        where = str(files[0]) if len(files) == 1 else self.name
        return [(where, x) for x in self.build_examples(split)]

    def kept(self, examples: list[Example]) -> tuple[list[int], list[dict]]:
        """The examples trained on (those with a reply token within ``block_size``): their indices and items
        (token ids, labels, source and words)."""
        encoded = encode_examples(self.tokenizer, [x.prompt for x in examples], [x.reply for x in examples],
                                  self.train_on_prompt, self.block_size)
        texts = self.tokenizer.batch_decode([e["input_ids"] for e in encoded], skip_special_tokens=True)
        indices = [k for k, e in enumerate(encoded) if any(label != IGNORE_INDEX for label in e["labels"][1:])]
        # words: those kept after truncation
        return indices, [dict(encoded[k], source=examples[k].source, words=count_words(texts[k])) for k in indices]

    def encode(self, examples: list[Example]) -> list[dict]:
        """Token ids, labels and words of the examples (packed into rows when ``pack``)."""
        items = self.kept(examples)[1]
        if len(items) < len(examples):
            rank_zero_info(f"{self.name}: {len(examples) - len(items)} examples left out: no reply token fits "
                           f"in block_size={self.block_size}")
        return pack_examples(items, self.block_size) if self.pack else items

    def prepare(self) -> None:
        for split in ("train", "val"):
            if not self.has_split(split):
                continue

            def build(tmp: Path, split=split):
                examples = self.build_examples(split)
                rows = self.encode(examples)
                columns = {key: [row[key] for row in rows] for key in (rows[0] if rows else ["input_ids"])}
                Dataset.from_dict(columns).save_to_disk(str(tmp))
                write_json({"examples": len(examples), "rows": len(rows), "words": sum(r["words"] for r in rows),
                            "tokens": sum(len(r["input_ids"]) for r in rows)}, tmp / "classit.json")
            build_once(self._entry(split), build)

    def stats(self, split: str = "train") -> dict:
        """``examples``, ``rows``, ``words`` and ``tokens`` of the prepared split."""
        return read_json(self._entry(split) / "classit.json")

    def _rows(self, split: str) -> Dataset | None:
        return load_from_disk(str(self._entry(split))) if self.has_split(split) else None

    def train_set(self) -> Dataset:
        return self._rows("train")

    def val_set(self) -> Dataset | None:
        return self._rows("val")

    def collate(self, items: list[dict]) -> dict:
        batch = collate_fn(self.tokenizer.pad_token_id, self.pack)(items)
        batch["words"] = torch.tensor([float(x["words"]) for x in items])
        return batch


class InstructionFile(InstructionSource):
    """Ready-made instruction examples in the CLASS-IT schema (``prompt``, ``reply``, ``source``, optional ``text``):
    the authors' published set, or what ``classit data build-it`` wrote. A JSONL or Parquet file or a ``datasets``
    folder in the data directory, or (with the Hub reachable) a dataset name for ``datasets.load_dataset``."""

    def __init__(self, path: str, val_path: str | None = None, sources: list[str] | None = None,
                 max_examples: int | None = None, max_words: int | None = None, pack: bool = False,
                 train_on_prompt: bool = False):
        """
        Args:
            path / val_path: training and validation examples: a ``.jsonl`` or ``.parquet`` file or a folder saved by
                ``datasets`` (relative to the data directory), else a Hugging Face Hub dataset name.
            sources: keep only examples whose ``source`` is one of these (e.g. ``[switchboard]``).
            max_examples / max_words: keep the first examples up to this many (training split).
            pack / train_on_prompt: as in :class:`Switchboard`.
        """
        super().__init__(pack, train_on_prompt)
        self.path, self.val_path, self.sources = path, val_path, sources
        self.max_examples, self.max_words = max_examples, max_words

    def corpus_path(self) -> str | None:
        return self.path

    def read_corpus(self, path: str) -> None:
        self.path = path

    def options(self) -> dict:
        return {"path": self.path, "val_path": self.val_path, "sources": self.sources,
                "max_examples": self.max_examples, "max_words": self.max_words}

    def _location(self, split: str) -> str | None:
        return self.path if split == "train" else self.val_path

    def input_files(self, split: str) -> list[Path]:
        name = self._location(split)
        if not name:
            return []
        local = self.root / name
        if local.is_dir():
            return sorted(p for p in local.rglob("*") if p.is_file())
        return [local] if local.exists() else []  # a Hub name: keyed by its name (in options)

    def has_split(self, split: str) -> bool:
        return bool(self._location(split))

    def _records(self, split: str) -> Iterator[tuple[str, dict]]:
        """``(where, record)``: ``file:line`` for JSONL, ``file row N`` otherwise."""
        from datasets import load_dataset

        name = self._location(split)
        local = self.root / name
        if local.suffix == ".jsonl" and local.is_file():
            yield from iter_jsonl(local)
            return
        if local.is_dir():
            data = load_from_disk(str(local))
        elif local.suffix == ".parquet" and local.is_file():
            check_parquet(local)
            data = load_dataset("parquet", data_files=str(local), split="train")
        elif local.exists():
            raise ValueError(f"{local}: instruction data must be .jsonl, .parquet or a datasets folder")
        else:
            data = load_dataset(name, split="train" if split == "train" else "validation")
        where = local if local.exists() else name
        for i, record in enumerate(data):
            yield f"{where} row {i}", record

    def build_examples(self, split: str) -> list[Example]:
        return [x for _, x in self.placed_examples(split)]

    def placed_examples(self, split: str) -> list[tuple[str, Example]]:
        examples, words, records = [], 0, 0
        for where, record in self._records(split):
            records += 1
            for key in ("prompt", "reply"):
                if record.get(key) is None:
                    raise ValueError(f"{where}: missing field {key!r} (the CLASS-IT schema: prompt, reply, source)")
                if not isinstance(record[key], str):
                    raise ValueError(f"{where}: field {key!r} must be a string, got {type(record[key]).__name__}")
            if self.sources and record.get("source") not in self.sources:
                continue
            example = Example(record["prompt"], record["reply"], record.get("source") or self.name, record.get("text") or "")
            if split == "train" and ((self.max_examples and len(examples) >= self.max_examples)
                                     or (self.max_words and words + example.words > self.max_words)):
                break
            examples.append((where, example))
            words += example.words
        if not examples:
            local = self.root / self._location(split)
            where = local if local.exists() else self._location(split)
            raise ValueError(f"{where}: no instruction examples" + (
                f" with a source in {self.sources} (data.sources.{self.name}.init_args.sources)" if records else
                " (it is empty); give examples with prompt, reply and source (`classit data build-it` writes them)"))
        return examples


def check_parquet(path: Path) -> None:
    """Stop in one line naming ``path`` when it is not a Parquet file (another format under the name, or cut short)."""
    import pyarrow
    import pyarrow.parquet

    try:
        pyarrow.parquet.read_schema(path)
    except pyarrow.ArrowException as error:
        raise ValueError(f"{path}: not a Parquet file ({str(error).split('. ')[0]}); give a .parquet file, "
                         "or the examples as .jsonl") from None
