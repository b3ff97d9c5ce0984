"""Curricula: the order of sources in sequential and merged runs, exact mid-stage resume, bad stages, the demo CLI."""

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from transformers import AutoModelForCausalLM

from classit.cli import main
from classit.data.curriculum import CurriculumDataModule
from classit.data.plan import rank_share
from classit.data.source import Source
from classit.model import BabyLM
from classit.train.callbacks import CurriculumLogger
from classit.train.fit import CurriculumSetup, curriculum_tokenizer
from helpers import CONFIGS, config_copy, demo_data, scalars, tiny_curriculum
from probes import RowRecorder

DEMO_SEQ = CONFIGS / "demo_seq.yaml"


class Toy(Source):
    """``n`` sequences of 8 tokens; the second token tells them apart (``offset + i``)."""

    def __init__(self, n: int, offset: int):
        ids = [torch.tensor([1, offset + i] + [offset] * 6) for i in range(n)]
        self.items = [{"input_ids": x, "labels": x, "words": torch.tensor(3.0)} for x in ids]

    def train_set(self):
        return self.items

    def val_set(self):
        return self.items[:2]

    def collate(self, items):
        return torch.utils.data.default_collate(items)


def toy_curriculum(tokenizer, stages, **kwargs) -> CurriculumDataModule:
    sources = {"pretrain": Toy(6, 100), "switchboard": Toy(8, 200), "simple_wiki": Toy(10, 300)}
    kwargs = {"batch_size": 2, "block_size": 8, "tokenizer": tokenizer.name_or_path, "num_workers": 0, **kwargs}
    return CurriculumDataModule(sources, stages, **kwargs)


SEQUENTIAL = [{"name": "pretrain", "sources": ["pretrain"], "epochs": 2},
              {"name": "switchboard", "sources": ["switchboard"], "epochs": 1},
              {"name": "simple_wiki", "sources": ["simple_wiki"], "epochs": 1}]
MERGED = [{"name": "pretrain", "sources": ["pretrain"], "epochs": 2},
          {"name": "it", "sources": ["switchboard", "simple_wiki"], "epochs": 2}]


def fit(datamodule, tmp_path, ckpt_path=None, **trainer_args) -> list:
    """Train a tiny BabyLM through the curriculum; the recorded batches."""
    torch.manual_seed(0)
    model = BabyLM(vocab_size=datamodule.vocab_size, n_layer=1, n_embd=32, n_head=2, intermediate_size=64,
                   block_size=8, warmup=0.05, special_ids=datamodule.special_ids)
    tokenizer = curriculum_tokenizer(datamodule)  # as the CLI hands it over
    datamodule.use_tokenizer(tokenizer)
    recorder = RowRecorder()
    callbacks = [CurriculumSetup(tokenizer), recorder, CurriculumLogger(), *trainer_args.pop("callbacks", [])]
    trainer = L.Trainer(accelerator="cpu",
                        default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=callbacks,
                        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks), **trainer_args)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return [seen(datamodule.plan, *batch) for batch in recorder.batches]


def seen(plan, epoch: int, sources: list[str], rows: list[list[int]]) -> tuple:
    """A recorded batch as (epoch, stage name, source, ids of its examples)."""
    (source,) = set(sources)
    return epoch, plan.stages[plan.stage_index(epoch)].name, source, tuple(row[1] for row in rows)


def test_sequential_runs_stage_after_stage(tokenizer, tmp_path):
    seen = fit(toy_curriculum(tokenizer, SEQUENTIAL), tmp_path)
    assert [s for _, _, s, _ in seen] == ["pretrain"] * 6 + ["switchboard"] * 4 + ["simple_wiki"] * 5
    for epoch, first in ((0, 100), (1, 100), (2, 200), (3, 300)):  # every example once an epoch
        ids = sorted(i for e, _, _, batch in seen if e == epoch for i in batch)
        assert ids == list(range(first, first + len(ids))), epoch
    assert [b for e, *_, b in seen if e == 0] != [b for e, *_, b in seen if e == 1]  # reshuffled each epoch


@pytest.mark.slow
def test_merged_mixes_both_sets_in_one_shuffled_stream(tokenizer, tmp_path):
    seen = fit(toy_curriculum(tokenizer, MERGED), tmp_path)
    assert [s for e, _, s, _ in seen if e < 2] == ["pretrain"] * 6
    orders = [[s for e, _, s, _ in seen if e == epoch] for epoch in (2, 3)]
    assert orders[0] != orders[1] and any(o not in (sorted(o), sorted(o, reverse=True)) for o in orders)  # interleaved
    for epoch in (2, 3):
        assert sorted(s for e, _, s, _ in seen if e == epoch) == ["simple_wiki"] * 5 + ["switchboard"] * 4
        ids = sorted(i for e, _, _, batch in seen if e == epoch for i in batch)
        assert ids == list(range(200, 208)) + list(range(300, 310))
        assert {stage for e, stage, _, _ in seen if e == epoch} == {"it"}


def test_weights_set_the_share_of_batches(tokenizer):
    stages = [{"name": "it", "sources": ["switchboard", "simple_wiki"], "epochs": 1, "weights": [3, 1]}]
    dm = toy_curriculum(tokenizer, stages)
    dm.setup("fit")
    sources = [k for k, _ in dm.plan_for(1).batches(0, 0)]
    assert len(sources) == 9 and sources.count(0) == 7 and sources.count(1) == 2  # 9 batches as without weights


def test_order_is_a_function_of_seed_stage_and_epoch(tokenizer):
    one, two = toy_curriculum(tokenizer, MERGED), toy_curriculum(tokenizer, MERGED)
    for dm in (one, two):
        dm.setup("fit")
    one, two = one.plan_for(1), two.plan_for(1)
    two.batches(1, 3)  # history must not matter
    assert one.batches(1, 2) == two.batches(1, 2)
    assert one.batches(1, 2) != one.batches(1, 3)
    other = toy_curriculum(tokenizer, MERGED, seed=1)
    other.setup("fit")
    other = other.plan_for(1)
    assert other.batches(1, 2) != one.batches(1, 2)
    batches = one.batches(1, 2)  # DDP: ranks take disjoint shares of the same list, as many each
    ranks = [rank_share(batches, 2, r, 1) for r in (0, 1)]  # each global batch of 2 split over 2 ranks
    assert len(ranks[0]) == len(ranks[1]) == len(batches)
    assert [(k, a + b) for (k, a), (_, b) in zip(*ranks)] == batches
    accumulated = rank_share(batches, 1, 0, 2)  # one device, two micro-batches a step: the same global batches
    assert [(k, a + b) for (k, a), (_, b) in zip(accumulated[::2], accumulated[1::2])] == batches


@pytest.mark.slow
@pytest.mark.parametrize("stop, epoch, done", [(2, 0, 2), (6, 1, 3), (8, 2, 2), (18, 3, 3)],
                         ids=["mid-pretrain", "end-of-stage", "mid-merged", "mid-last-epoch"])
def test_resume_mid_stage_gives_the_batches_of_an_uninterrupted_run(tokenizer, tmp_path, stop, epoch, done):
    whole = fit(toy_curriculum(tokenizer, MERGED), tmp_path / "whole")  # epochs of 3, 3, 9, 9 batches
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=stop)
    first = fit(toy_curriculum(tokenizer, MERGED), tmp_path / "first", max_steps=stop, callbacks=[checkpoint])
    assert first == whole[:stop]
    (path,) = (tmp_path / "ckpt").glob("*.ckpt")
    state = torch.load(path, weights_only=False)["CurriculumDataModule"]
    assert (state["epoch"], state["batches"]) == (epoch, done)
    rest = fit(toy_curriculum(tokenizer, MERGED), tmp_path / "rest", ckpt_path=path)
    assert rest == whole[stop:]


@pytest.mark.slow
def test_resume_from_epoch_end_checkpoints_gives_the_rest_of_the_run(tokenizer, tmp_path):
    whole = fit(toy_curriculum(tokenizer, MERGED), tmp_path / "whole")
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_epochs=1, save_top_k=-1, save_on_train_epoch_end=True)
    fit(toy_curriculum(tokenizer, MERGED), tmp_path / "first", callbacks=[checkpoint])
    paths = sorted((tmp_path / "ckpt").glob("*.ckpt"))
    assert [p.name for p in paths] == ["epoch=0-step=3.ckpt", "epoch=1-step=6.ckpt", "epoch=2-step=15.ckpt",
                                       "epoch=3-step=24.ckpt"]
    for path, step in zip(paths[:3], (3, 6, 15)):
        assert fit(toy_curriculum(tokenizer, MERGED), tmp_path / path.stem, ckpt_path=path) == whole[step:], path.name


class GlobalBatches(L.Callback):
    """The examples of every optimizer step, whatever micro-batches they came in."""

    def __init__(self):
        self.steps = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        ids = self.steps.setdefault(trainer.global_step, [])
        ids += batch["input_ids"][:, 1].tolist()


def global_batches(tokenizer, path, micro, **trainer_args) -> dict:
    recorder = GlobalBatches()
    fit(toy_curriculum(tokenizer, MERGED, micro_batch_size=micro), path, callbacks=[recorder, *trainer_args.pop(
        "callbacks", [])], **trainer_args)
    return {step: sorted(ids) for step, ids in recorder.steps.items()}


@pytest.mark.slow
@pytest.mark.parametrize("micro_before, micro_after", [(1, 2), (2, 1)])
def test_resume_with_another_accumulation_goes_on_at_the_same_global_batch(tokenizer, tmp_path, micro_before,
                                                                          micro_after):
    """Another accumulation is what another number of devices gives each rank: the run goes on where it stopped."""
    whole = global_batches(tokenizer, tmp_path / "whole", micro_before)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=10)
    global_batches(tokenizer, tmp_path / "first", micro_before, max_steps=10, callbacks=[checkpoint])
    (path,) = (tmp_path / "ckpt").glob("*.ckpt")
    state = torch.load(path, weights_only=False)["CurriculumDataModule"]
    assert (state["epoch"], state["batches"], state["accumulate"]) == (2, 4 * (3 - micro_before), 3 - micro_before)
    rest = global_batches(tokenizer, tmp_path / "rest", micro_after, ckpt_path=path)
    assert rest == {step: ids for step, ids in whole.items() if step >= 10}
    assert sorted(rest) == list(range(10, 24))


class ScheduleProbe(L.Callback):
    def on_train_end(self, trainer, pl_module):
        self.total, self.last_lr = pl_module.schedule.total_steps, trainer.lr_scheduler_configs[0].scheduler.get_last_lr()[0]


def test_lr_schedule_spans_the_whole_curriculum(tokenizer, tmp_path):
    probe = ScheduleProbe()
    fit(toy_curriculum(tokenizer, MERGED), tmp_path, callbacks=[probe])
    assert probe.total == 3 + 3 + 9 + 9  # stage 0's epochs are shorter than stage 1's
    assert probe.last_lr == pytest.approx(6e-4 * 0.1)  # the cosine ends at lr × min_lr_ratio on the last step


def test_resume_with_other_stages_is_refused(tokenizer, tmp_path):
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=8)
    fit(toy_curriculum(tokenizer, MERGED), tmp_path / "first", max_steps=8, callbacks=[checkpoint])
    (path,) = (tmp_path / "ckpt").glob("*.ckpt")
    with pytest.raises(ValueError, match="saved in stage 'it'.*put that epoch in stage 'switchboard'"):
        fit(toy_curriculum(tokenizer, SEQUENTIAL), tmp_path / "rest", ckpt_path=path)


@pytest.mark.parametrize("stages, message", [
    ([], r"data\.stages: no stages"),
    ([{"name": "pretrain", "sources": ["pretrain"]}, {"name": "it", "sources": []}],
     r"data\.stages\[1\]\.sources: stage 'it' is empty; name one or more of: pretrain, switchboard, simple_wiki"),
    ([{"name": "pretrain", "sources": ["pretrain"]}, {"name": "it", "sources": ["swb"]}],
     r"data\.stages\[1\]\.sources: unknown source 'swb'; known: pretrain, switchboard, simple_wiki"),
    ([{"name": "pretrain", "sources": ["pretrain"], "epochs": 0}], r"data\.stages\[0\]\.epochs"),
    ([{"name": "it", "sources": ["switchboard", "simple_wiki"], "weights": [1]}], r"data\.stages\[0\]\.weights"),
])
def test_bad_stages_name_the_config_key(tokenizer, stages, message):
    with pytest.raises(ValueError, match=message):
        toy_curriculum(tokenizer, stages)


@pytest.mark.parametrize("key, value", [("batch_size", 0), ("micro_batch_size", 0), ("block_size", -1)])
def test_sizes_below_one_name_the_config_key(tokenizer, key, value):
    with pytest.raises(ValueError, match=rf"data\.{key}: a positive number of \w+, not {value}"):
        toy_curriculum(tokenizer, MERGED, **{key: value})


@pytest.mark.slow
def test_demo_seq_runs_the_curriculum_through_the_cli(data_root, tokenizer, tmp_path):
    config = config_copy(DEMO_SEQ)
    evaluation = next(c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("MinimalPairEvalCallback"))
    evaluation["init_args"].update(max_items=500, data_dir=str(data_root / "babylm-eval-fast"))  # a spread-out share
    config["trainer"]["logger"]["init_args"]["save_dir"] = str(tmp_path / "logs")
    milestones = next(c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("MilestoneExport"))
    milestones["init_args"]["milestones"] = [3000, 6000, 9000]  # words: the 12 tiny steps see ≈ 10k
    path = tmp_path / "demo_seq.yaml"
    path.write_text(yaml.safe_dump(config))
    main(["fit", "--config", str(path), *tiny_curriculum(demo_data(data_root, tmp_path / "data"), tokenizer.name_or_path),
          "--data.val_every=0.5"])

    run = tmp_path / "logs" / "demo_seq" / "version_0"
    curves = scalars(run)
    assert [v for _, v in curves["curriculum/stage"]] == [0, 1, 2]
    assert [s for s, _ in curves["curriculum/stage"]] == [0, 4, 8]
    assert len(curves["train/loss"]) == 12 and [s for s, _ in curves["val/loss"]] == [5, 11]  # Lightning logs val at the step before
    for source in ("pretrain", "switchboard", "simple_wiki"):  # every source, in every stage (forgetting)
        assert [s for s, _ in curves[f"val/loss/{source}"]] == [5, 11], source
    assert [s for s, _ in curves["zero_shot/blimp"]] == [s for s, _ in curves["zero_shot/ewok"]] == [4, 8, 12]
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["CurriculumDataModule"]
    assert state["stage_name"] == "simple_wiki"
    assert (run / "hf" / "chat_template.jinja").is_file()

    # instruction tuning is a phase of its own: its first step is its warm-up's start, not pre-training's tail
    lr = dict(curves["lr-AdamW/pg1"])
    assert lr[3] == pytest.approx(3e-3 * 0.1)  # pre-training's last step: its cosine's floor
    assert lr[4] == pytest.approx(1e-3 / 2) and lr[5] == pytest.approx(1e-3)  # 8 steps × warm-up 0.2 = 2 steps
    assert lr[11] == pytest.approx(1e-3 * 0.1)
    # every stage's end: a checkpoint and (but the last, which is hf/) a Hugging Face export
    assert sorted(p.name for p in (run / "checkpoints").glob("stage*.ckpt")) == [
        "stage0_pretrain.ckpt", "stage1_switchboard.ckpt", "stage2_simple_wiki.ckpt"]
    for stage in ("stage0_pretrain", "stage1_switchboard"):
        model = AutoModelForCausalLM.from_pretrained(run / "hf" / stage)
        assert model.config.vocab_size == len(tokenizer), stage
    words = curves["train/words_seen"][-1][1]
    assert 9000 < words < 30000
    assert sorted(p.name for p in (run / "milestones").iterdir()) == ["chck_0.003M", "chck_0.006M", "chck_0.009M"]


def test_bad_stage_through_the_cli_names_the_key(tokenizer, tmp_path):
    config = config_copy(DEMO_SEQ)
    config["data"]["sources"].pop("pretrain")
    config["data"]["tokenizer"] = tokenizer.name_or_path
    config["data"]["stages"] = [{"name": "it", "sources": ["swb", "simple_wiki"], "epochs": 1}]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit, match=r"data\.stages\[0\]\.sources: unknown source 'swb'; known: ") as error:
        main(["fit", "--config", str(path)])
    assert "simple_wiki" in str(error.value) and "switchboard" in str(error.value)
