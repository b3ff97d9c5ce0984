"""The non-finite loss guard: a NaN loss stops naming the step and keeps the last good checkpoint, or its optimizer
step is skipped; also when Lightning's grad scaler steps the optimizer."""

import pytest
import torch
from safetensors.torch import load_file

from classit.checkpoint_io import load_checkpoint
from classit.cli import main
from helpers import scalars

# 16-mixed with Lightning's grad scaler on CPU (there the flag precision=16-mixed means bf16-mixed, without one)
FP16_SCALER = {"class_path": "lightning.pytorch.plugins.precision.MixedPrecision",
               "init_args": {"precision": "16-mixed", "device": "cpu"}}


def guarded_fit(tiny_runs, action: str, **trainer) -> list[str]:
    """``fit`` of a tiny run whose 4th optimizer step has a NaN loss, the guard set to ``action``."""
    poison = [{"class_path": "probes.PoisonLoss", "init_args": {"step": 3, "out": str(tiny_runs.tmp / "poison.pt")}}]
    config = tiny_runs.config(action, callbacks=poison, checkpoint_every=2, guard=action, **trainer)
    return ["fit", "--config", str(config)]


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tiny_runs):
    with pytest.raises(SystemExit) as done:
        main(guarded_fit(tiny_runs, "stop"))
    assert str(done.value.code).startswith("classit: error: step 4: the loss is nan; stopped before updating")
    last = load_checkpoint(tiny_runs.run_dir("stop") / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 2
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values() if t.is_floating_point())


def test_non_finite_loss_step_is_skipped(tiny_runs):
    main(guarded_fit(tiny_runs, "skip"))
    weights = torch.load(tiny_runs.tmp / "poison.pt")
    for name, tensor in weights["before"].items():
        assert torch.equal(weights["after"][name], tensor), name  # the poisoned step changed nothing
    loss = dict(scalars(tiny_runs.run_dir("skip"))["train/loss"])
    assert loss[3] != loss[3] and all(loss[s] == loss[s] for s in (0, 1, 2, 4, 5))  # NaN only at the 4th step
    final = load_file(tiny_runs.run_dir("skip") / "hf" / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in final.values())


@pytest.mark.slow
@pytest.mark.parametrize("action", ["stop", "skip"])
def test_non_finite_loss_is_caught_when_the_grad_scaler_steps_the_optimizer(tiny_runs, action):
    """16-mixed: Lightning runs the closure itself, then ``scaler.step(optimizer)`` without one."""
    fit = guarded_fit(tiny_runs, action, precision=None, plugins=[FP16_SCALER])
    if action == "stop":
        with pytest.raises(SystemExit, match=r"^classit: error: step 4: the loss is nan; stopped before updating"):
            main(fit)
        last = load_checkpoint(tiny_runs.run_dir("stop") / "checkpoints" / "last.ckpt")
        assert last["global_step"] == 2
        return
    with pytest.warns(UserWarning, match=r"step 4: the loss is nan; skipped this optimizer step"):
        main(fit)
    weights = torch.load(tiny_runs.tmp / "poison.pt")
    for name, tensor in weights["before"].items():
        assert torch.equal(weights["after"][name], tensor), name
