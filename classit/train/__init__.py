"""Training: the fit command's CLI, its plan, and the callbacks a run config names (``classit.train.NAME``)."""

from classit.train.callbacks import (
                                     CurriculumLogger,
                                     HFExport,
                                     MilestoneExport,
                                     RunCheckpoint,
                                     TokenThroughputMonitor,
                                     WordBudget,
)
from classit.train.guard import NonFiniteGuard
from classit.train.signals import CheckpointOnSignal

__all__ = ["CheckpointOnSignal", "CurriculumLogger", "HFExport", "MilestoneExport", "NonFiniteGuard", "RunCheckpoint",
           "TokenThroughputMonitor", "WordBudget"]
