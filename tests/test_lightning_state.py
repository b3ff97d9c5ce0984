"""Each piece of Lightning's private state that classit uses (classit/lightning_state.py), on a real Trainer:
these fail when a Lightning release moves or renames one."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, ThroughputMonitor
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.demos.boring_classes import BoringModel

from classit import lightning_state as state


class Probe(L.Callback):
    """Reads the state at every batch end; rescales and restarts the counts once, then puts them back."""

    def __init__(self):
        self.logged, self.done = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.logged.append(state.should_log(trainer))
        self.done.append(state.epoch_batches_done(trainer))
        assert state.restarted_after_last_batch(trainer) is False
        if batch_idx == 3:
            progress = trainer.fit_loop.epoch_loop.batch_progress
            before = (progress.current.processed, progress.total.processed, progress.current.completed)
            state.rescale_batch_counts(trainer, 2, 4)
            assert (progress.current.processed, progress.total.processed) == (before[0] * 2, before[1] * 2)
            state.rescale_batch_counts(trainer, 4, 2)
            assert (progress.current.processed, progress.total.processed, progress.current.completed) == before


def test_private_state_classit_uses(tmp_path):
    torch.manual_seed(0)
    probe, meter = Probe(), ThroughputMonitor(batch_size_fn=len)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=3, save_last=True)
    trainer = L.Trainer(accelerator="cpu", max_steps=8, limit_val_batches=0, log_every_n_steps=2, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[probe, checkpoint, meter])
    trainer.fit(BoringModel())
    assert probe.logged == [step % 2 == 0 for step in range(1, 9)]  # Lightning logs every log_every_n_steps
    assert probe.done == list(range(1, 9))
    assert state.every_n_train_steps(checkpoint) == 3
    assert state.every_n_train_steps(ModelCheckpoint()) == 0

    (tmp_path / "last.ckpt").unlink()
    state.save_last_unless_saved(checkpoint, trainer)  # saved at step 6, not at 8
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["global_step"] == 8
    (tmp_path / "last.ckpt").unlink()
    state.save_last_unless_saved(checkpoint, trainer)  # saved at this step already
    assert not (tmp_path / "last.ckpt").exists()

    state.set_peak_flops(meter, 1e12)  # MFU's denominator in every throughput meter Lightning keeps
    assert meter.available_flops == 1e12
    assert meter._throughputs and all(t.available_flops == 1e12 for t in meter._throughputs.values())

    state.restart_epoch_count(trainer)
    assert trainer.fit_loop.epoch_loop.batch_progress.current.processed == 0



def test_the_subcommand_parsers_and_their_keys():
    class Parsed(Exception):
        pass

    class CLI(LightningCLI):
        def parse_arguments(self, parser, args):
            fit = state.subcommand_parser(self, "fit")
            assert fit in state.subcommand_parsers(self) and state.subcommand_parser(self, "nothing") is None
            assert {"trainer.max_steps", "ckpt_path"} <= set(state.parser_keys(fit))
            raise Parsed

    with pytest.raises(Parsed):
        CLI(BoringModel, args=["fit"])
    assert state.subcommand_parsers(CLI.__new__(CLI)) == []  # before the parsers are made
