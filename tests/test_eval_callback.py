"""MinimalPairEvalCallback on a tiny real Lightning run: logging, schedule, untouched training state."""

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader

from classit.eval.callbacks import MinimalPairEvalCallback
from classit.eval.scoring import score_items
from classit.eval.zero_shot import summarize
from classit.model import BabyLM
from classit.train.callbacks import MilestoneExport


def _module(tokenizer, dropout=0.1):
    torch.manual_seed(0)
    module = BabyLM(vocab_size=len(tokenizer), n_layer=2, n_embd=32, n_head=2, intermediate_size=64, block_size=32,
                    dropout=dropout, warmup=0.0,
                    special_ids={"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
                                 "eos_token_id": tokenizer.eos_token_id})
    module.tokenizer = tokenizer
    return module


def _fit(tokenizer, root, callbacks):
    L.seed_everything(0)
    module = _module(tokenizer)
    blocks = torch.randint(8, len(tokenizer), (12, 32), generator=torch.Generator().manual_seed(0))
    data = [{"input_ids": b, "labels": b, "words": torch.tensor(250_000)} for b in blocks]  # 1M words a step
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=TensorBoardLogger(root, name="tb"),
                        callbacks=callbacks, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, log_every_n_steps=1, default_root_dir=root)
    trainer.fit(module, DataLoader(data, batch_size=4, shuffle=True))  # shuffling draws from the global RNG
    return module, trainer


@pytest.mark.slow
def test_callback_on_a_tiny_training_run(tokenizer, tmp_path):
    callback = MinimalPairEvalCallback(every_n_steps=2, max_items=30)  # fast BLiMP and EWoK sets
    module, trainer = _fit(tokenizer, tmp_path / "with", [callback])
    reference, _ = _fit(tokenizer, tmp_path / "without", [])
    for (name, a), b in zip(module.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs: the callback changed training"

    events = EventAccumulator(trainer.logger.log_dir).Reload()
    tags = events.Tags()["scalars"]
    assert {"zero_shot/blimp", "zero_shot/ewok", "zero_shot/blimp/syntax"} <= set(tags)
    blimp = callback.results["blimp"]  # the official score logged, the strict one and the ties beside it
    logged = [events.Scalars(f"zero_shot/blimp{tag}")[-1].value for tag in ("", "/strict", "/ties")]
    assert logged == pytest.approx([blimp["macro"], blimp["strict"]["macro"], blimp["ties"]], abs=1e-4)
    # every 2 optimizer steps (2, 4, 6) and at epoch ends (3; 6 is not repeated)
    assert [e.step for e in events.Scalars("zero_shot/blimp")] == [2, 3, 4, 6]
    assert callback.results["blimp"]["items"] == 30 and callback.results["ewok"]["items"] == 30


def test_milestone_exports_evaluate_with_the_zero_shot_callback_only(tokenizer, tmp_path):
    """Two MilestoneExport(evaluate=True) and the zero-shot callback: every milestone is scored once."""
    exports = [MilestoneExport([1_000_000, 3_000_000], evaluate=True), MilestoneExport([2_000_000], evaluate=True)]
    _, trainer = _fit(tokenizer, tmp_path, [*exports, MinimalPairEvalCallback(tasks=["ewok"], max_items=10)])
    events = EventAccumulator(trainer.logger.log_dir).Reload()
    assert [e.step for e in events.Scalars("zero_shot/ewok")] == [1, 2, 3, 6]  # milestones 1M, 2M, 3M; epoch ends
    assert sorted(p.name for p in (tmp_path / "tb" / "version_0" / "milestones").iterdir()) == [
        "chck_1M", "chck_2M", "chck_3M"]


@pytest.mark.slow
def test_callback_leaves_training_state_untouched(tokenizer):
    module = _module(tokenizer)
    module.train()
    module.model.model.layers[0].eval()  # a mixed state must come back as it was
    modes = [m.training for m in module.modules()]
    params = {k: v.clone() for k, v in module.state_dict().items()}
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    callback = MinimalPairEvalCallback(tasks=["ewok", "entity_tracking"], max_items=12)
    callback.setup(trainer, module, "fit")
    rng = torch.get_rng_state()
    results = callback.evaluate(trainer, module)
    assert torch.equal(torch.get_rng_state(), rng)
    assert [m.training for m in module.modules()] == modes
    assert all(torch.equal(v, params[k]) for k, v in module.state_dict().items())
    # the same numbers as scoring the items directly
    module.eval()
    for task in ("ewok", "entity_tracking"):
        scores = score_items(module.model, callback.encoded[task])
        assert results[task] == summarize(task, callback.items[task], scores)

    module.model.to(torch.bfloat16)  # bf16 weights are scored through a float32 copy
    callback.evaluate(trainer, module)
    assert next(module.model.parameters()).dtype == torch.bfloat16
