"""A curriculum source: a data set that builds its training and validation datasets, never loaders.

The curriculum binds every source to the run (data folder, the one tokenizer, block size, cache),
calls :meth:`Source.prepare` once per node on rank 0 (tokenize, pack and cache, content-keyed),
then :meth:`Source.train_set` / :meth:`Source.val_set` on every rank, which memory-map that cache.
Items are dicts with ``input_ids`` and ``labels`` (``-100``: no loss), optionally ``position_ids``
(packed rows), and ``words``: the whitespace words the item holds, for the BabyLM word budget.
"""

import hashlib
import json
from pathlib import Path

from torch.utils.data import Dataset

from classit import layout
from classit.data.store import fingerprint
from classit.data.tokenizer import tokenizer_fingerprint


class Source:
    """Base class of curriculum sources (see the module docstring)."""

    def bind(self, name: str, root: Path, tokenizer, block_size: int, cache: Path) -> None:
        """Attach the run's settings; called by the curriculum before anything else."""
        self.name, self.root, self.tokenizer, self.block_size, self.cache = name, root, tokenizer, block_size, cache

    def corpus_path(self) -> str | None:
        """The BabyLM corpus folder or file (in the data directory) this source trains on; None: none."""
        return None

    def read_corpus(self, path: str) -> None:
        """Train on the corpus folder or file ``path`` instead of :meth:`corpus_path`."""
        raise NotImplementedError(f"{type(self).__name__} trains on no BabyLM corpus file")

    def corpus_split(self) -> str | None:
        """The BabyLM corpus split this source trains on (``train_100M``), if any."""
        path = self.corpus_path()
        return layout.corpus_split(path) if path else None

    def sample_path(self) -> str:
        """The sample split's counterpart of :meth:`corpus_path` (``classit plan`` estimates an absent split from it)."""
        return layout.in_split(self.corpus_path(), layout.SAMPLE_SPLIT)

    def tokenizer_files(self) -> list[Path]:
        """Text files a tokenizer can be trained on (a corpus source's training files); none by default."""
        return []

    def cache_entry(self, kind: str, options: dict, files: list[Path]) -> Path:
        """A cache path keyed by content: the files' fingerprint, the tokenizer, the block size and ``options``."""
        key = json.dumps([kind, options, fingerprint(files), tokenizer_fingerprint(self.tokenizer), self.block_size],
                         sort_keys=True, default=str)
        return self.cache / kind / hashlib.sha256(key.encode()).hexdigest()[:16]

    def prepare(self) -> None:
        """Build this source's cached data (rank 0 of each node, once; later runs find it)."""

    def train_set(self) -> Dataset:
        raise NotImplementedError

    def val_set(self) -> Dataset | None:
        return None

    def collate(self, items: list[dict]) -> dict:
        raise NotImplementedError
