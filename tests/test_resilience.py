"""Nothing lost when a job dies: resume with --ckpt_path last, a checkpoint on SIGINT/SIGTERM that resumes
exactly, verified atomic checkpoints, the non-finite loss guard, file:line in errors, two nodes on 127.0.0.1."""

import json
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from safetensors.torch import load_file

from classit.checkpoint_io import DigestCheckpointIO, load_checkpoint
from classit.cli import main
from helpers import scalars, small_corpus

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "configs" / "demo.yaml"
TINY_MODEL = {"n_layer": 1, "n_embd": 32, "n_head": 2, "intermediate_size": 64, "warmup": 0.3}


class SignalAt(L.Callback):
    """Sends this process a real signal when the first micro-batch after ``step`` optimizer steps starts."""

    def __init__(self, signal_name: str, step: int, times: int = 1):
        self.signum, self.step, self.times = signal.Signals[signal_name], step, times

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step and self.times:
            for _ in range(self.times):
                self.times -= 1
                os.kill(os.getpid(), self.signum)


class PoisonLoss(L.Callback):
    """Makes the logits of the optimizer step after ``step`` NaN; saves the weights before and after that step."""

    def __init__(self, step: int, out: str):
        self.step, self.out, self.hook, self.before = step, out, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step and self.hook is None:
            self.before = {k: v.clone() for k, v in pl_module.model.state_dict().items()}
            self.hook = pl_module.model.lm_head.register_forward_hook(lambda m, i, out: out * float("nan"))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.hook is not None and trainer.global_step == self.step + 1:
            self.hook.remove()
            torch.save({"before": self.before, "after": pl_module.model.state_dict()}, self.out)


def fit_config(tmp: Path, name: str, data: Path, tokenizer, *, callbacks=(), checkpoint_every=100, guard="stop",
               **trainer) -> Path:
    """The demo config, tiny: the small corpus, the session tokenizer, no validation or zero-shot scoring."""
    config = yaml.safe_load(DEMO.read_text())
    entry = {c["class_path"].rsplit(".", 1)[-1]: c for c in config["trainer"]["callbacks"]}
    entry["RunCheckpoint"]["init_args"]["every_n_train_steps"] = checkpoint_every
    entry["NonFiniteGuard"]["init_args"] = {"action": guard}
    accumulate = trainer.pop("accumulate_grad_batches", 1)  # derived from the global batch: 4 = accumulate × micro
    config["trainer"].update({"max_steps": 6, "log_every_n_steps": 1, "limit_val_batches": 0, **trainer})
    config["trainer"]["logger"]["init_args"].update(save_dir=str(tmp / "logs"), name=name)
    kept = [c for c in config["trainer"]["callbacks"] if "MinimalPairEval" not in c["class_path"]]
    config["trainer"]["callbacks"] = kept + list(callbacks)
    config["model"].update(TINY_MODEL)
    config["data"].update(data_dir=str(data), tokenizer=tokenizer.name_or_path, block_size=32, batch_size=4,
                          micro_batch_size=4 // accumulate, num_workers=0)
    config["data"]["sources"]["pretrain"]["init_args"] = {"train_dir": "train", "val_dir": "dev", "num_proc": 1}
    path = tmp / f"{name}-{len(list(tmp.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli(config: Path, *args: str, env: dict | None = None, wait=True):
    """``python -m classit.cli fit --config CONFIG ARGS`` in a real subprocess."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    command = [sys.executable, "-m", "classit.cli", "fit", "--config", str(config), *args]
    process = subprocess.Popen(command, cwd=config.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    return process.communicate(timeout=600) + (process.returncode,) if wait else process


SIGNAL_PROBE = "test_resilience.SignalAt"


def test_sigint_and_sigterm_checkpoint_and_resume_to_the_same_weights(tmp_path, data_root, tokenizer):
    data = small_corpus(data_root, tmp_path / "data")
    straight = cli(fit_config(tmp_path, "straight", data, tokenizer, accumulate_grad_batches=2),
                   wait=False)
    probe = lambda name, step: [{"class_path": SIGNAL_PROBE, "init_args": {"signal_name": name, "step": step}}]
    chain = lambda **kw: fit_config(tmp_path, "chain", data, tokenizer, accumulate_grad_batches=2,
                                    **kw)
    run = tmp_path / "logs" / "chain" / "version_0"
    last = run / "checkpoints" / "last.ckpt"

    # no earlier run: one line, and a fresh start; ctrl-C arrives as step 3's first micro-batch starts
    out, _, code = cli(chain(callbacks=probe("SIGINT", 2)), "--ckpt_path", "last")
    assert code == 128 + signal.SIGINT, out[-3000:]
    assert "--ckpt_path last: no run in" in out and "starting fresh" in out
    assert load_checkpoint(last)["global_step"] == 3  # the step in progress finished; not mid-accumulation

    # the requeued job resumes in the same version folder; SLURM's SIGTERM stops it again
    out, _, code = cli(chain(callbacks=probe("SIGTERM", 4)), "--ckpt_path", "last")
    assert code == 128 + signal.SIGTERM, out[-3000:]
    assert f"resuming {last}" in out
    assert load_checkpoint(last)["global_step"] == 5
    out, _, code = cli(chain(), "--ckpt_path", "last")
    assert code == 0, out[-3000:]
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]

    out, _, code = straight.communicate(timeout=600) + (straight.returncode,)
    assert code == 0, out[-3000:]
    resumed = load_file(run / "hf" / "model.safetensors")
    uninterrupted = load_file(tmp_path / "logs" / "straight" / "version_0" / "hf" / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), name
    # one TensorBoard curve over the three processes
    assert [step for step, _ in scalars(run)["train/loss"]] == [0, 1, 2, 3, 4, 5]


def test_second_ctrl_c_exits_at_once_unsaved(tmp_path, data_root, tokenizer):
    data = small_corpus(data_root, tmp_path / "data")
    twice = [{"class_path": SIGNAL_PROBE, "init_args": {"signal_name": "SIGINT", "step": 2, "times": 2}}]
    out, _, code = cli(fit_config(tmp_path, "abort", data, tokenizer, callbacks=twice, accumulate_grad_batches=2))
    assert code == 130, out[-3000:]
    assert "classit: second SIGINT: exiting now without a new checkpoint; no checkpoint was saved" in out
    assert "Traceback" not in out and not list((tmp_path / "logs").rglob("*.ckpt"))


class TouchAt(L.Callback):
    """Creates ``path`` when ``step`` optimizer steps are done (the test outside then signals the job), then slows
    each batch down, so that the signal comes long before the run's end."""

    def __init__(self, step: int, path: str):
        self.step, self.path = step, path

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step >= self.step:
            Path(self.path).touch()
            time.sleep(0.5)


class HangAt(L.Callback):
    """A step that never ends: sleeps at the start of the first micro-batch after ``step`` optimizer steps."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            time.sleep(600)


def job(config: Path, *args: str) -> subprocess.Popen:
    """``classit fit`` as a job of its own: a new process group, as a terminal's foreground job or a batch job."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-m", "classit.cli", "fit", "--config", str(config), *args],
                            cwd=config.parent, env={**os.environ, "PYTHONPATH": path}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def signal_job_when(process: subprocess.Popen, ready: Path, signum: int) -> tuple[str, int]:
    """Send ``signum`` to the job's whole process group (its DataLoader workers too) once ``ready`` exists."""
    deadline = time.monotonic() + 300
    while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signum)
    out, _ = process.communicate(timeout=300)
    return out, process.returncode


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_to_the_whole_job_saves_and_the_resumed_run_stays_resumed(tmp_path, data_root, tokenizer, signame):
    """SLURM, docker stop and a terminal's ctrl-C signal every process of the job, DataLoader workers too."""
    data = small_corpus(data_root, tmp_path / "data")
    ready = tmp_path / "ready"
    touch = [{"class_path": "test_resilience.TouchAt", "init_args": {"step": 3, "path": str(ready)}}]
    config = lambda **kw: fit_config(tmp_path, "job", data, tokenizer, max_steps=12, **kw)
    checkpoints = tmp_path / "logs" / "job" / "version_0" / "checkpoints"
    process = job(config(callbacks=touch), "--ckpt_path", "last", "--data.num_workers", "2")
    out, code = signal_job_when(process, ready, signal.Signals[signame])
    assert code == 128 + signal.Signals[signame], out[-3000:]
    assert f"classit: {signame}: saved {checkpoints / 'last.ckpt'} at step" in out
    assert "Traceback" not in out and "DataLoader worker" not in out, out[-3000:]
    stopped = load_checkpoint(checkpoints / "last.ckpt")["global_step"]
    assert 3 <= stopped < 12
    if signame == "SIGINT":
        return

    out, _, code = cli(config(), "--ckpt_path", "last", "--data.num_workers", "2")  # resumed to the end
    assert code == 0, out[-3000:]
    assert "not resumable" not in out
    assert not [p.name for p in checkpoints.iterdir() if p.name.startswith("last-v")]
    assert load_checkpoint(checkpoints / "last.ckpt")["global_step"] == 12  # the newest state, not the stop's
    out, _, code = cli(config(), "--ckpt_path", "last")  # a requeued job of a finished run
    assert code == 0, out[-3000:]
    assert f"classit: {checkpoints / 'last.ckpt'} is the end of its run (step 12): nothing left to train" in out
    out, _, code = cli(fit_config(tmp_path, "straight", data, tokenizer, max_steps=12))
    assert code == 0, out[-3000:]
    resumed = load_file(checkpoints.parent / "hf" / "model.safetensors")
    for name, tensor in load_file(tmp_path / "logs" / "straight" / "version_0" / "hf" / "model.safetensors").items():
        assert torch.equal(resumed[name], tensor), name  # stopped by the job's signal, resumed: the same weights


def test_a_step_that_cannot_end_exits_after_the_grace_period(tmp_path, data_root, tokenizer):
    data = small_corpus(data_root, tmp_path / "data")
    ready = tmp_path / "ready"
    probes = [{"class_path": "test_resilience.TouchAt", "init_args": {"step": 2, "path": str(ready)}},
              {"class_path": "test_resilience.HangAt", "init_args": {"step": 2}}]
    config = fit_config(tmp_path, "hang", data, tokenizer, callbacks=probes, checkpoint_every=1)
    resolved = yaml.safe_load(config.read_text())
    entry = next(c for c in resolved["trainer"]["callbacks"] if c["class_path"].endswith("CheckpointOnSignal"))
    entry["init_args"] = {"grace": 2}
    config.write_text(yaml.safe_dump(resolved))
    started = time.monotonic()
    out, code = signal_job_when(job(config), ready, signal.SIGTERM)
    assert code == 143 and time.monotonic() - started < 120, out[-3000:]
    last = tmp_path / "logs" / "hang" / "version_0" / "checkpoints" / "last.ckpt"
    assert f"classit: no step boundary within 2s (CheckpointOnSignal.grace): exiting now without a new checkpoint; " \
           f"the last checkpoint is {last}" in out
    assert load_checkpoint(last)["global_step"] == 2  # the periodic save before the step that hung


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, data_root, tokenizer) -> Path:
    """The checkpoints folder of a 2-step run through the CLI (a checkpoint at every step)."""
    tmp = tmp_path_factory.mktemp("short")
    data = small_corpus(data_root, tmp / "data")
    main(["fit", "--config", str(fit_config(tmp, "short", data, tokenizer, max_steps=2, checkpoint_every=1))])
    return tmp / "logs" / "short" / "version_0" / "checkpoints"


def damaged_message(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main(argv)
    message = str(done.value.code)
    assert message.startswith("classit: error: ") and "\n" not in message, message
    assert "weights_only" not in message + capsys.readouterr().err
    return message


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


def test_flipped_tensor_bytes_are_caught_on_export_and_on_resume(short_run, tmp_path, data_root, tokenizer, capsys):
    damaged = tmp_path / "damaged.ckpt"
    shutil.copy(short_run / "last.ckpt", damaged)
    flip_tensor_bytes(damaged)
    torch.load(damaged, map_location="cpu")  # torch itself reads it without complaint
    expected = (f"classit: error: {damaged}: damaged checkpoint (its tensors do not match the digest written with "
                "them); use an earlier one")
    assert damaged_message(["export", "--ckpt", str(damaged), "--out", str(tmp_path / "hf")], capsys) == expected
    config = fit_config(tmp_path, "resume", small_corpus(data_root, tmp_path / "data"), tokenizer, max_steps=3)
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


def guarded_fit(tmp: Path, data_root: Path, tokenizer, action: str, **trainer) -> list[str]:
    poison = [{"class_path": "test_resilience.PoisonLoss", "init_args": {"step": 3, "out": str(tmp / "poison.pt")}}]
    config = fit_config(tmp, action, small_corpus(data_root, tmp / "data"), tokenizer, callbacks=poison,
                        checkpoint_every=2, guard=action, **trainer)
    return ["fit", "--config", str(config)]


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, data_root, tokenizer):
    with pytest.raises(SystemExit) as done:
        main(guarded_fit(tmp_path, data_root, tokenizer, "stop"))
    assert str(done.value.code).startswith("classit: error: step 4: the loss is nan; stopped before updating")
    last = load_checkpoint(tmp_path / "logs" / "stop" / "version_0" / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 2
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values() if t.is_floating_point())


def test_non_finite_loss_step_is_skipped(tmp_path, data_root, tokenizer):
    main(guarded_fit(tmp_path, data_root, tokenizer, "skip"))
    weights = torch.load(tmp_path / "poison.pt")
    for name, tensor in weights["before"].items():
        assert torch.equal(weights["after"][name], tensor), name  # the poisoned step changed nothing
    loss = dict(scalars(tmp_path / "logs" / "skip" / "version_0")["train/loss"])
    assert loss[3] != loss[3] and all(loss[s] == loss[s] for s in (0, 1, 2, 4, 5))  # NaN only at the 4th step
    final = load_file(tmp_path / "logs" / "skip" / "version_0" / "hf" / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in final.values())


# 16-mixed with Lightning's grad scaler on CPU (there the flag precision=16-mixed means bf16-mixed, without one)
FP16_SCALER = {"class_path": "lightning.pytorch.plugins.precision.MixedPrecision",
               "init_args": {"precision": "16-mixed", "device": "cpu"}}


@pytest.mark.parametrize("action", ["stop", "skip"])
def test_non_finite_loss_is_caught_when_the_grad_scaler_steps_the_optimizer(tmp_path, data_root, tokenizer, action):
    """16-mixed: Lightning runs the closure itself, then ``scaler.step(optimizer)`` without one."""
    fit = guarded_fit(tmp_path, data_root, tokenizer, action, precision=None, plugins=[FP16_SCALER])
    if action == "stop":
        with pytest.raises(SystemExit, match=r"^classit: error: step 4: the loss is nan; stopped before updating"):
            main(fit)
        last = load_checkpoint(tmp_path / "logs" / "stop" / "version_0" / "checkpoints" / "last.ckpt")
        assert last["global_step"] == 2
        return
    with pytest.warns(UserWarning, match=r"step 4: the loss is nan; skipped this optimizer step"):
        main(fit)
    weights = torch.load(tmp_path / "poison.pt")
    for name, tensor in weights["before"].items():
        assert torch.equal(weights["after"][name], tensor), name


def test_non_utf8_corpus_file_is_named_with_its_line(tmp_path, data_root, tokenizer):
    data = small_corpus(data_root, tmp_path / "data")
    bad = data / "train" / "broken.train"
    bad.write_bytes(b"a fine first line\nthen \xff\xfe a bad byte\n")
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(fit_config(tmp_path, "utf8", data, tokenizer))])
    assert str(done.value.code) == (f"classit: error: {bad}:2: not UTF-8 text (byte 0xff at offset 23); "
                                    "re-encode the file as UTF-8")


def test_malformed_evaluation_line_is_named_with_its_line(tmp_path, data_root, tiny_model_dir):
    folder = tmp_path / "eval" / "blimp_filtered"
    folder.mkdir(parents=True)
    lines = (data_root / "babylm-eval-fast" / "blimp_fast" / "adjunct_island.jsonl").read_text().splitlines()[:3]
    (folder / "adjunct_island.jsonl").write_text("\n".join([lines[0], lines[1][:-5], lines[2]]) + "\n")
    with pytest.raises(SystemExit) as done:
        main(["evaluate", "--model", str(tiny_model_dir), "--data_dir", str(tmp_path / "eval"), "--tasks", "blimp",
              "--out", str(tmp_path / "out")])
    message = str(done.value.code)
    assert message.startswith(f"classit: error: {folder / 'adjunct_island.jsonl'}:2: malformed JSON line (")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_on_localhost_finish_together_on_disjoint_rows(tmp_path, data_root, tokenizer):
    data = small_corpus(data_root, tmp_path / "data")
    rows = tmp_path / "rows"
    recorder = [{"class_path": "ddp_probe.RowRecorder", "init_args": {"out_dir": str(rows)}}]
    config = fit_config(tmp_path, "nodes", data, tokenizer, callbacks=recorder, max_steps=4)
    port = str(free_port())
    nodes = [cli(config, "--trainer.num_nodes", "2", "--trainer.devices", "1", "--trainer.strategy", "ddp", wait=False,
                 env={"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "NODE_RANK": str(rank), "WORLD_SIZE": "2",
                      "LOCAL_RANK": "0"})
             for rank in (0, 1)]
    for node in nodes:
        out, _ = node.communicate(timeout=600)
        assert node.returncode == 0, out[-3000:]
    ranks = [json.loads((rows / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 4
    assert len(ranks[0]["rows"]) == len(ranks[1]["rows"]) == 8  # each node half of 4 global batches of 4
    assert not {tuple(r) for r in ranks[0]["rows"]} & {tuple(r) for r in ranks[1]["rows"]}


def test_ctrl_c_while_classit_loads_stops_in_one_line(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "classit.cli", "fit", "--config", str(DEMO),
                                "--trainer.logger.init_args.save_dir", str(tmp_path)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    time.sleep(1.5)  # importing the libraries, long before training
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 130 and out.strip().splitlines()[-1] == "classit: interrupted", out[-2000:]
    assert "Traceback" not in out
