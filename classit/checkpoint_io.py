"""Checkpoints written atomically with a digest of their contents, and checked when read."""

import hashlib
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from classit.files import atomic_path

DIGEST_KEY = "classit_digest"


class DamagedCheckpointError(ValueError):
    """A checkpoint file that cannot be read or whose contents do not match its digest."""

    def __init__(self, path: _PATH, reason: str):
        super().__init__(f"{path}: damaged checkpoint ({reason}); use an earlier one")


def content_digest(checkpoint: Any) -> str:
    """SHA-256 over every tensor (dtype, shape, bytes) and bytes value of a checkpoint, in order, with their keys."""
    digest = hashlib.sha256()

    def visit(key: str, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            data = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
            digest.update(f"{key}:{value.dtype}:{tuple(value.shape)};".encode())
            digest.update(data)
        elif isinstance(value, bytes):
            digest.update(f"{key}:bytes;".encode())
            digest.update(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                if k != DIGEST_KEY:
                    visit(f"{key}/{k}", v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                visit(f"{key}/{i}", v)

    visit("", checkpoint)
    return digest.hexdigest()


def atomic_save(checkpoint: dict, path: Path) -> None:
    """``torch.save`` to ``path`` atomically: a write that fails half-way (a full disk) leaves the previous file as
    it was."""
    with atomic_path(path) as temporary:
        torch.save(checkpoint, temporary)


def _reason(error: Exception) -> str:
    """The cause in a few words, without torch's advice to load untrusted data with ``weights_only=False``."""
    text = str(error)
    unpickler = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)  # the cause may follow on a later line
    first = unpickler.group(1) if unpickler else text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return first.split(". ")[0][:160]


class DigestCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` that writes local checkpoints atomically with a content digest inside
    (``classit_digest``) and refuses, in one line, a checkpoint that is truncated or whose tensors changed."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        checkpoint = {**checkpoint, DIGEST_KEY: content_digest(checkpoint)}
        if "://" in str(path):  # remote storage: Lightning's own transactional write
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        atomic_save(checkpoint, Path(path))

    def load_checkpoint(self, path: _PATH, map_location: Any = "cpu", weights_only: bool | None = None) -> dict:
        try:
            checkpoint = super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such checkpoint") from None
        except OSError:
            raise  # unreadable (permissions, I/O), not damaged
        except Exception as error:  # torch.load's errors on a damaged file are of many kinds
            raise DamagedCheckpointError(path, _reason(error)) from None
        expected = checkpoint.pop(DIGEST_KEY, None)
        if expected is not None and content_digest(checkpoint) != expected:
            raise DamagedCheckpointError(path, "its tensors do not match the digest written with them")
        return checkpoint


def check_checkpoint_file(path: _PATH) -> None:
    """Stop in one line, before anything unpickles it, when the local file ``path`` is not a whole checkpoint
    (``torch.save`` writes a zip archive holding ``data.pkl``): a text file, another format, a file cut short."""
    if not Path(path).is_file():
        return  # missing or remote: the reader says so
    try:
        with zipfile.ZipFile(path) as archive:
            whole = any(name.endswith("/data.pkl") for name in archive.namelist())
    except zipfile.BadZipFile:
        whole = False
    if not whole:
        raise DamagedCheckpointError(path, "not the zip archive torch.save writes: another kind of file, or cut short")


def load_checkpoint(path: _PATH, map_location: Any = "cpu") -> dict:
    """A checkpoint's dict, read and checked by :class:`DigestCheckpointIO` (older checkpoints have no digest)."""
    check_checkpoint_file(path)
    return DigestCheckpointIO().load_checkpoint(path, map_location=map_location)
