"""Lightning's private state that classit reads or sets, each where no public API exists, named here once
(``tests/test_lightning_state.py`` fails when a Lightning release changes any of them)."""

from lightning.pytorch.callbacks import ModelCheckpoint, ThroughputMonitor

PROGRESS_FIELDS = ("ready", "started", "processed", "completed")


def should_log(trainer) -> bool:
    """Whether Lightning writes step metrics at this step (every ``log_every_n_steps``)."""
    return trainer._logger_connector.should_update_logs


def epoch_batches_done(trainer) -> int:
    """Micro-batches of the current epoch this rank has trained on."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.processed


def restarted_after_last_batch(trainer) -> bool:
    """Whether the run resumes from a checkpoint saved at a batch end (Lightning then counts on from that batch)."""
    return trainer.fit_loop.epoch_loop.restarted_on_train_batch_end


def restart_epoch_count(trainer) -> None:
    """Count the epoch's batches from zero (the checkpoint was saved after the last batch of the epoch before)."""
    loop = trainer.fit_loop.epoch_loop
    loop.batch_progress.reset_on_run()
    loop.reset_restart_stage()


def rescale_batch_counts(trainer, old: int, new: int) -> None:
    """Lightning's batch counts (this epoch, the run) in micro-batches of ``new`` per global batch instead of
    ``old``: a run resumed with another accumulation (another number of devices) validates and ends its epoch at
    the same global batches."""
    progress = trainer.fit_loop.epoch_loop.batch_progress
    for counts in (progress.current, progress.total):
        base = counts.processed
        for name in PROGRESS_FIELDS:
            setattr(counts, name, base // old * new + getattr(counts, name) - base)


def every_n_train_steps(callback: ModelCheckpoint) -> int:
    """A ModelCheckpoint's ``every_n_train_steps`` (0: none)."""
    return callback._every_n_train_steps or 0


def save_last_unless_saved(callback: ModelCheckpoint, trainer) -> None:
    """Write the ModelCheckpoint's ``last.ckpt`` unless it saved at this step already."""
    if callback._last_global_step_saved != trainer.global_step:
        callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))


def subcommand_parser(cli, subcommand: str | None):
    """The parser of a LightningCLI's ``subcommand`` (``fit``, ``validate``), None if it has no such one."""
    return getattr(cli, "_subcommand_parsers", {}).get(subcommand)


def subcommand_parsers(cli) -> list:
    """Every subcommand parser of a LightningCLI (none before it has made them)."""
    return list(getattr(cli, "_subcommand_parsers", {}).values())


def parser_keys(parser) -> list[str]:
    """The keys a (jsonargparse) parser takes: its actions' destinations."""
    return [action.dest for action in parser._actions]


def set_peak_flops(monitor: ThroughputMonitor, peak: float) -> None:
    """The peak FLOP/s a set-up ThroughputMonitor divides by (its MFU's denominator)."""
    monitor.available_flops = peak
    for throughput in monitor._throughputs.values():
        throughput.available_flops = peak

