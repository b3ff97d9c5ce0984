"""Verified atomic checkpoints: a truncated, a non-checkpoint and a bit-flipped file each stop in one line; a write
that fails half-way keeps the previous checkpoint."""

import re
import resource
import shutil
import signal
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from classit.checkpoint_io import DigestCheckpointIO
from classit.cli import main
from helpers import error_line, small_corpus, tiny_fit_config


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, data_root, tokenizer) -> Path:
    """The checkpoints folder of a 2-step run through the CLI (a checkpoint at every step)."""
    tmp = tmp_path_factory.mktemp("short")
    data = small_corpus(data_root, tmp / "data")
    config = tiny_fit_config(tmp, "short", data, tokenizer.name_or_path, max_steps=2, checkpoint_every=1)
    main(["fit", "--config", str(config)])
    return tmp / "logs" / "short" / "version_0" / "checkpoints"


def damaged_message(argv: list[str], capsys) -> str:
    """The one line `classit ARGV` stops with, which never speaks of torch's ``weights_only``."""
    message = f"classit: error: {error_line(argv)}"
    assert "weights_only" not in message + capsys.readouterr().err
    return message


@pytest.mark.slow
def test_truncated_checkpoint_stops_with_one_line(short_run, tmp_path, capsys):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes((short_run / "last.ckpt").read_bytes()[:100_000])
    message = damaged_message(["export", "--ckpt", str(truncated), "--out", str(tmp_path / "hf")], capsys)
    assert message.startswith(f"classit: error: {truncated}: damaged checkpoint (")
    assert message.endswith("; use an earlier one")
    text = tmp_path / "notes.ckpt"
    text.write_text("# not a checkpoint\n")
    message = damaged_message(["export", "--ckpt", str(text), "--out", str(tmp_path / "hf")], capsys)
    assert re.fullmatch(rf"classit: error: {re.escape(str(text))}: damaged checkpoint \(\w.+\); use an earlier one",
                        message), message  # the cause is said, not "()"


def flip_tensor_bytes(path: Path) -> None:
    """Flip bytes in the middle of the checkpoint's largest tensor (the zip stores tensors uncompressed)."""
    with zipfile.ZipFile(path) as archive:
        member = max((m for m in archive.infolist() if "/data/" in m.filename), key=lambda m: m.file_size)
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[member.header_offset + 26: member.header_offset + 30])
    middle = member.header_offset + 30 + name_length + extra_length + member.file_size // 2
    data[middle: middle + 4] = bytes(b ^ 0xFF for b in data[middle: middle + 4])
    path.write_bytes(bytes(data))


def test_flipped_tensor_bytes_are_caught_on_export_and_on_resume(short_run, tmp_path, tiny_runs, capsys):
    damaged = tmp_path / "damaged.ckpt"
    shutil.copy(short_run / "last.ckpt", damaged)
    flip_tensor_bytes(damaged)
    torch.load(damaged, map_location="cpu")  # torch itself reads it without complaint
    expected = (f"classit: error: {damaged}: damaged checkpoint (its tensors do not match the digest written with "
                "them); use an earlier one")
    assert damaged_message(["export", "--ckpt", str(damaged), "--out", str(tmp_path / "hf")], capsys) == expected
    config = tiny_runs.config("resume", max_steps=3)
    assert damaged_message(["fit", "--config", str(config), "--ckpt_path", str(damaged)], capsys) == expected


def test_a_write_that_fails_half_way_keeps_the_previous_checkpoint(short_run, tmp_path):
    io = DigestCheckpointIO()
    path = tmp_path / "last.ckpt"
    first = io.load_checkpoint(short_run / "last.ckpt")
    io.save_checkpoint(first, path)
    second = {**first, "global_step": 3, "state_dict": {k: v + 1 for k, v in first["state_dict"].items()}}
    size = path.stat().st_size
    limits, handler = resource.getrlimit(resource.RLIMIT_FSIZE), signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, limits[1]))  # the disk fills up half-way
    try:
        with pytest.raises((OSError, RuntimeError)):
            io.save_checkpoint(second, path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left behind
    kept = io.load_checkpoint(path)
    assert kept["global_step"] == 2
    for name, tensor in first["state_dict"].items():
        assert torch.equal(kept["state_dict"][name], tensor), name
