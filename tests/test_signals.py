"""A checkpoint on SIGINT/SIGTERM that resumes exactly: signals from inside the run, to the whole job, a second
ctrl-C, a step that cannot end, ctrl-C while classit still loads."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.demos.boring_classes import BoringModel
from safetensors.torch import load_file

from classit.checkpoint_io import load_checkpoint
from classit.train.signals import CheckpointOnSignal
from helpers import DEMO, classit, fit, scalars


def signal_at(name: str, step: int, times: int = 1, rank: int | None = None) -> list[dict]:
    return [{"class_path": "probes.SignalAt", "init_args": {"signal_name": name, "step": step, "times": times,
                                                           "rank": rank}}]


@pytest.mark.slow
def test_sigint_and_sigterm_checkpoint_and_resume_to_the_same_weights(tiny_runs):
    straight = fit(tiny_runs.config("straight", accumulate_grad_batches=2), wait=False)
    chain = lambda **kw: tiny_runs.config("chain", accumulate_grad_batches=2, **kw)
    run = tiny_runs.run_dir("chain")
    last = run / "checkpoints" / "last.ckpt"

    # no earlier run: one line, and a fresh start; ctrl-C arrives as step 3's first micro-batch starts
    out, code = fit(chain(callbacks=signal_at("SIGINT", 2)), "--ckpt_path", "last")
    assert code == 128 + signal.SIGINT, out[-3000:]
    assert "--ckpt_path last: no run in" in out and "starting fresh" in out
    assert load_checkpoint(last)["global_step"] == 3  # the step in progress finished; not mid-accumulation

    # the requeued job resumes in the same version folder; SLURM's SIGTERM stops it again
    out, code = fit(chain(callbacks=signal_at("SIGTERM", 4)), "--ckpt_path", "last")
    assert code == 128 + signal.SIGTERM, out[-3000:]
    assert f"resuming {last}" in out
    assert load_checkpoint(last)["global_step"] == 5
    out, code = fit(chain(), "--ckpt_path", "last")
    assert code == 0, out[-3000:]
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]

    out, _ = straight.communicate(timeout=600)
    assert straight.returncode == 0, out[-3000:]
    resumed = load_file(run / "hf" / "model.safetensors")
    uninterrupted = load_file(tiny_runs.run_dir("straight") / "hf" / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), name
    # one TensorBoard curve over the three processes
    assert [step for step, _ in scalars(run)["train/loss"]] == [0, 1, 2, 3, 4, 5]


@pytest.mark.slow
def test_second_ctrl_c_exits_at_once_unsaved(tiny_runs):
    out, code = fit(tiny_runs.config("abort", callbacks=signal_at("SIGINT", 2, times=2), accumulate_grad_batches=2))
    assert code == 130, out[-3000:]
    assert "classit: second SIGINT: exiting now without a new checkpoint; no checkpoint was saved" in out
    assert "Traceback" not in out and not list((tiny_runs.tmp / "logs").rglob("*.ckpt"))


@pytest.mark.slow
def test_a_signal_to_one_ddp_rank_saves_once_and_both_ranks_exit(tiny_runs):
    """SLURM may signal one task of a job: the ranks agree on the stop at the step's end, save once, and exit."""
    pids = tiny_runs.tmp / "pids"
    probes = signal_at("SIGTERM", 2, rank=1) + [{"class_path": "probes.PidFiles", "init_args": {"out_dir": str(pids)}}]
    config = tiny_runs.config("ddp", devices=2, strategy="ddp", max_steps=12, callbacks=probes,
                              data_args={"batch_size": 8, "micro_batch_size": 4})
    out, code = fit(config)
    assert code == 128 + signal.SIGTERM, out[-3000:]
    last = tiny_runs.run_dir("ddp") / "checkpoints" / "last.ckpt"
    assert out.count("classit: SIGTERM: saving a checkpoint at the end of this optimizer step") == 1, out[-3000:]
    assert out.count(" saved ") == 1 and f"classit: a signal on another rank: saved {last} at step 3" in out
    assert "Traceback" not in out, out[-3000:]
    checkpoint = load_checkpoint(last)
    assert checkpoint["global_step"] == 3  # the step the signal landed in, on both ranks
    assert [p.name for p in last.parent.iterdir()] == ["last.ckpt"]
    for rank in (0, 1):  # no rank left behind, waiting in a collective for the other
        pid = int((pids / f"rank{rank}.pid").read_text())
        deadline = time.monotonic() + 60
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists(), f"rank {rank} still runs"


def signal_job_when(process, ready: Path, signum: int) -> tuple[str, int]:
    """Send ``signum`` to the job's whole process group (its DataLoader workers too) once ``ready`` exists."""
    deadline = time.monotonic() + 300
    while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signum)
    out, _ = process.communicate(timeout=300)
    return out, process.returncode


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_to_the_whole_job_saves_and_the_resumed_run_stays_resumed(tiny_runs, signame):
    """SLURM, docker stop and a terminal's ctrl-C signal every process of the job, DataLoader workers too."""
    # the uninterrupted run to compare with, beside the job (outside its process group: not signalled)
    straight = fit(tiny_runs.config("straight", max_steps=12), wait=False) if signame == "SIGTERM" else None
    ready = tiny_runs.tmp / "ready"
    touch = [{"class_path": "probes.TouchAt", "init_args": {"step": 3, "path": str(ready)}}]
    config = lambda **kw: tiny_runs.config("job", max_steps=12, **kw)
    checkpoints = tiny_runs.run_dir("job") / "checkpoints"
    process = fit(config(callbacks=touch), "--ckpt_path", "last", "--data.num_workers", "2", wait=False, job=True)
    out, code = signal_job_when(process, ready, signal.Signals[signame])
    assert code == 128 + signal.Signals[signame], out[-3000:]
    assert f"classit: {signame}: saved {checkpoints / 'last.ckpt'} at step" in out
    assert "Traceback" not in out and "DataLoader worker" not in out, out[-3000:]
    assert load_checkpoint(checkpoints / "last.ckpt")["global_step"] == 4  # the step the signal landed in
    if signame == "SIGINT":
        return

    out, code = fit(config(), "--ckpt_path", "last", "--data.num_workers", "2")  # resumed to the end
    assert code == 0, out[-3000:]
    assert "not resumable" not in out
    assert not [p.name for p in checkpoints.iterdir() if p.name.startswith("last-v")]
    assert load_checkpoint(checkpoints / "last.ckpt")["global_step"] == 12  # the newest state, not the stop's
    out, code = fit(config(), "--ckpt_path", "last")  # a requeued job of a finished run
    assert code == 0, out[-3000:]
    assert f"classit: {checkpoints / 'last.ckpt'} is the end of its run (step 12): nothing left to train" in out
    out, _ = straight.communicate(timeout=600)
    assert straight.returncode == 0, out[-3000:]
    resumed = load_file(checkpoints.parent / "hf" / "model.safetensors")
    for name, tensor in load_file(tiny_runs.run_dir("straight") / "hf" / "model.safetensors").items():
        assert torch.equal(resumed[name], tensor), name  # stopped by the job's signal, resumed: the same weights


@pytest.mark.slow
def test_a_step_that_cannot_end_exits_after_the_grace_period(tiny_runs):
    ready = tiny_runs.tmp / "ready"
    probes = [{"class_path": "probes.TouchAt", "init_args": {"step": 2, "path": str(ready)}},
              {"class_path": "probes.HangAt", "init_args": {"step": 2}}]
    config = tiny_runs.config("hang", callbacks=probes, checkpoint_every=1)
    resolved = yaml.safe_load(config.read_text())
    entry = next(c for c in resolved["trainer"]["callbacks"] if c["class_path"].endswith("CheckpointOnSignal"))
    entry["init_args"] = {"grace": 2}
    config.write_text(yaml.safe_dump(resolved))
    out, code = signal_job_when(fit(config, wait=False, job=True), ready, signal.SIGTERM)  # the hang is 600 s
    assert code == 143, out[-3000:]
    last = tiny_runs.run_dir("hang") / "checkpoints" / "last.ckpt"
    assert f"classit: no step boundary within 2s (CheckpointOnSignal.grace): exiting now without a new checkpoint; " \
           f"the last checkpoint is {last}" in out
    assert load_checkpoint(last)["global_step"] == 2  # the periodic save before the step that hung


def test_ctrl_c_while_classit_loads_stops_in_one_line(tmp_path):
    """Python reports each module once imported, in one line from C (``PYTHONPROFILEIMPORTTIME``): once one of
    torch's is, torch is loading. (``PYTHONVERBOSE`` wrote its lines in two parts from Python, so ctrl-C could land
    between them and glue classit's line onto an import line.)"""
    process = classit("fit", "--config", str(DEMO), "--trainer.logger.init_args.save_dir", str(tmp_path),
                      cwd=tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"}, wait=False, job=True)
    for line in process.stdout:
        if re.search(r"\|\s+torch\b", line):
            break
    for _ in range(60):  # importing the libraries, long before training; again while one is swallowed (a
        os.killpg(process.pid, signal.SIGINT)  # library's bare ``except:`` around an optional import eats it)
        try:
            out, _ = process.communicate(timeout=5)
            break
        except subprocess.TimeoutExpired:
            continue
    out = "".join(line + "\n" for line in out.splitlines() if not line.startswith("import time:"))
    assert process.returncode == 130 and out.strip().splitlines()[-1] == "classit: interrupted", out[-2000:]
    assert "Traceback" not in out


class SignalSelf(L.Callback):
    """SIGTERM to this process as the first micro-batch after ``step`` optimizer steps starts; waits until
    ``receiver``'s watcher thread has read it."""

    def __init__(self, step: int, receiver: CheckpointOnSignal):
        self.step, self.receiver = step, receiver

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step and self.receiver.received is None:
            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.monotonic() + 30
            while self.receiver.received is None and time.monotonic() < deadline:
                time.sleep(0.001)


def test_a_signal_saves_at_the_next_step_boundary_and_exits_with_128_plus_its_number(tmp_path, capfd):
    """In this process, on a real Trainer without a ModelCheckpoint: the save goes to ``checkpoints/last.ckpt`` of the
    run folder, after the whole accumulation in progress, and the handlers in place before the fit are back."""
    before, receiver = signal.getsignal(signal.SIGTERM), CheckpointOnSignal()
    trainer = L.Trainer(accelerator="cpu", max_steps=6, accumulate_grad_batches=2, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, callbacks=[receiver, SignalSelf(2, receiver)])
    with pytest.raises(SystemExit) as done:
        trainer.fit(BoringModel())
    assert done.value.code == 128 + signal.SIGTERM
    saved = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert saved["global_step"] == 3  # the step whose first micro-batch had started
    assert saved["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["processed"] == 6  # both micro-batches
    assert "classit: SIGTERM: saving a checkpoint at the end of this optimizer step" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_grace_period_is_positive():
    with pytest.raises(ValueError, match=r"^CheckpointOnSignal\.grace: seconds, more than 0, not 0$"):
        CheckpointOnSignal(grace=0)
