"""The names of a run folder, a results tree and the evaluation data (classit.layout), without a Trainer."""

from pathlib import Path

import pytest

from classit import layout
from classit.data.babylm import BabyLMCorpus
from classit.data.switchboard import Switchboard

# The official collator's lists (evaluation_pipeline/collate_preds.py), written out as it writes them.
STRICT_SMALL = [f"chck_{i}M" for i in range(1, 10)] + [f"chck_{i * 10}M" for i in range(1, 11)]
STRICT = ([f"chck_{i}M" for i in range(1, 10)] + [f"chck_{i * 10}M" for i in range(1, 10)]
          + [f"chck_{i * 100}M" for i in range(1, 11)])


@pytest.mark.parametrize("words, name", [(1_000_000, "chck_1M"), (50_000, "chck_0.05M"), (100_000_000, "chck_100M"),
                                         (1_000_000_000, "chck_1000M"), (2_500_000, "chck_2.5M")])
def test_a_milestone_name_and_its_words_round_trip(words, name):
    assert layout.milestone_name(words) == name
    assert layout.milestone_words(name) == words


@pytest.mark.parametrize("name", ["chck_M", "chck_1", "chck_1MB", "chck_-1M", "stage0_pretrain", "chck_1.M"])
def test_other_names_are_no_milestone(name):
    assert layout.milestone_words(name) is None


def test_the_schedule_of_each_track_is_the_official_collators():
    assert layout.COLLATOR_REVISIONS == {"strict-small": STRICT_SMALL, "strict": STRICT}
    assert [layout.milestone_name(w) for w in layout.babylm_milestones()] == STRICT
    assert layout.babylm_milestones("strict-small")[-1] == 100_000_000


def test_a_runs_milestones_are_found_in_words_order(tmp_path):
    for name in ["chck_10M", "chck_2M", "chck_0.5M", "chck_xM", "other"]:
        (layout.milestone_dir(tmp_path) / name).mkdir(parents=True)
    (layout.milestone_dir(tmp_path) / "chck_3M").write_text("a file, not an export")
    found = layout.milestones(tmp_path)
    assert [(m.name, m.words) for m in found] == [("chck_0.5M", 500_000), ("chck_2M", 2_000_000),
                                                  ("chck_10M", 10_000_000)]
    assert [m.folder for m in found] == [tmp_path / "milestones" / m.name for m in found]
    assert layout.milestones(tmp_path / "empty") == []


def test_the_run_folder_names():
    run = Path("runs/demo/version_0")
    assert layout.last_checkpoint(run) == run / "checkpoints" / "last.ckpt"
    assert layout.stage_checkpoint(layout.checkpoint_dir(run), 1, "chat") == run / "checkpoints" / "stage1_chat.ckpt"
    assert layout.stage_export(run / layout.HF, 0, "pretrain") == run / "hf" / "stage0_pretrain"
    assert layout.milestone_export(run, 50_000) == run / "milestones" / "chck_0.05M"
    assert layout.MILESTONE_FILE == "milestone.json"


def test_the_results_tree_and_evaluation_data_names():
    revision = Path("results/model") / layout.FINAL_REVISION
    causal = layout.causal_dir(revision)
    assert causal == Path("results/model/main/zero_shot/causal")
    assert layout.surprisal_file(layout.aoa_dir(causal)) == causal / "AoA_word" / "surprisal.json"
    assert layout.aoa_dir(causal, "nospace") == causal / "AoA_word_nospace"
    assert layout.finetune_dir(revision) == Path("results/model/main/finetune")
    assert layout.eval_dir(Path("data")) == Path("data/babylm-eval")
    assert layout.eval_dir(Path("data"), fast=True) == Path("data/babylm-eval-fast")
    full = layout.eval_dir(Path("data"))
    assert layout.cdi_words(full) == Path("data/babylm-eval/aoa/cdi_childes.json")
    assert layout.cdi_human(full) == Path("data/babylm-eval/aoa/cdi_human.csv")
    assert layout.cdi_human(full, reconstructed=True) == Path("data/babylm-eval/aoa/cdi_human_reconstructed.csv")
    out = Path("out")
    assert layout.summary_file(out) == Path("out/summary.json") and layout.meta_file(out) == Path("out/meta.json")
    assert layout.predictions_file(out, "rte_seed42") == Path("out/predictions/rte_seed42.jsonl")
    assert layout.official_predictions(causal / "blimp" / "blimp_fast") == causal / "blimp/blimp_fast/predictions.json"


def test_a_corpus_path_its_split_and_its_sample_counterpart():
    assert layout.corpus_split("babylm-corpus/train_100M") == "train_100M"
    assert layout.corpus_split("swda/train") is None and layout.corpus_split("babylm-corpus") is None
    assert layout.split_dir(Path("data"), layout.SAMPLE_SPLIT) == Path("data/babylm-corpus/train_3M")
    corpus = BabyLMCorpus(train_dir="babylm-corpus/train_100M")
    assert (corpus.corpus_split(), corpus.sample_path()) == ("train_100M", "babylm-corpus/train_3M")
    talk = Switchboard(babylm_file="babylm-corpus/train_10M/switchboard.train")
    assert talk.sample_path() == "babylm-corpus/train_3M/switchboard.train"
    talk.read_corpus(talk.sample_path())
    assert talk.corpus_path() == "babylm-corpus/train_3M/switchboard.train"
    assert Switchboard(swda="swda").corpus_split() is None
