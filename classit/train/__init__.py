"""Runs that lose nothing when a job dies: verified atomic checkpoints, a checkpoint on SIGINT/SIGTERM, and a
guard against non-finite losses."""

from classit.train.checkpoint_io import DamagedCheckpointError, DigestCheckpointIO, load_checkpoint
from classit.train.guard import NonFiniteGuard
from classit.train.signals import CheckpointOnSignal

__all__ = ["CheckpointOnSignal", "DamagedCheckpointError", "DigestCheckpointIO", "NonFiniteGuard", "load_checkpoint"]
