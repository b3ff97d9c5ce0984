"""A study config through the real CLI: every problem with it stops in one line naming the file, the line and the
nearest valid key, before any fit runs."""

from pathlib import Path

import pytest
import yaml

from classit.cli import main
from classit.study.runner import load_study
from helpers import CONFIGS

GOOD = {"seeds": [42],
        "conditions": {"sequential": {"config": str(CONFIGS / "demo_seq.yaml")},
                       "baseline": {"of": "sequential", "stage": "pretrain"}},
        "evaluate": {"zero_shot": {"tasks": ["ewok"]}, "finetune": {"tasks": ["rte"], "seeds": [1]}}}


def study_error(tmp_path: Path, study: dict) -> str:
    """The one line ``classit study --config S --dry_run`` stops with."""
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    with pytest.raises(SystemExit) as done:
        main(["study", "--config", str(path), "--dry_run"])
    message = str(done.value.code)
    assert message.startswith("classit: error: ") and "\n" not in message, message
    return message.removeprefix("classit: error: ").replace(str(path), "S")


def changed(path: list[str], value) -> dict:
    study = yaml.safe_load(yaml.safe_dump(GOOD, sort_keys=False))
    *above, last = path
    node = study
    for key in above:
        node = node[key]
    node[last] = value
    return study


def test_an_unknown_key_names_its_line_and_the_nearest_key(tmp_path):
    assert study_error(tmp_path, {**GOOD, "seed": 1}) == "S:18: seed: unknown key; did you mean seeds?"
    study = changed(["conditions", "baseline", "overides"], ["--seed_everything", "1"])
    assert study_error(tmp_path, study) == "S:9: conditions.baseline.overides: unknown key; did you mean overrides?"
    study = changed(["evaluate", "zero_shot", "batch_sise"], 8)
    assert study_error(tmp_path, study) == ("S:13: evaluate.zero_shot.batch_sise: unknown key; did you mean "
                                            "batch_size?")
    study = changed(["evaluate", "finetune", "max_epoch"], 1)
    assert study_error(tmp_path, study) == ("S:18: evaluate.finetune.max_epoch: unknown key; did you mean "
                                            "max_epochs?")
    study = changed(["evaluate", "zero_shot", "out"], "x")  # the study sets each evaluation's folder
    assert study_error(tmp_path, study).startswith("S:13: evaluate.zero_shot.out: unknown key")


def test_a_value_of_the_wrong_kind_names_its_line(tmp_path):
    assert study_error(tmp_path, changed(["seeds"], 42)) == "S:1: seeds: give a list of fit seeds (integers), got 42"
    study = changed(["conditions", "sequential", "overrides"], "--data.seed 3")
    assert study_error(tmp_path, study) == ("S:6: conditions.sequential.overrides: give a list of command-line "
                                            "arguments, got '--data.seed 3'")
    assert study_error(tmp_path, changed(["conditions", "baseline"], "pretrain")) == (
        "S:6: conditions.baseline: give a mapping of settings, got 'pretrain'")
    assert study_error(tmp_path, changed(["evaluate", "finetune"], ["rte"])) == (
        "S:13: evaluate.finetune: give a mapping of settings, got ['rte']")


def test_an_evaluation_option_it_cannot_take_names_its_line(tmp_path):
    tasks = study_error(tmp_path, changed(["evaluate", "zero_shot", "tasks"], ["ewok", "blimpp"]))
    assert tasks.startswith("S:11: evaluate.zero_shot.tasks: unknown task 'blimpp'; did you mean blimp? (tasks: ")
    tasks = study_error(tmp_path, changed(["evaluate", "finetune", "tasks"], "rte,wscc"))  # the CLI's comma form
    assert tasks.startswith("S:14: evaluate.finetune.tasks: unknown task 'wscc'; did you mean wsc? (tasks: ")
    assert study_error(tmp_path, changed(["evaluate", "finetune", "seeds"], "1,2")) == (
        "S:16: evaluate.finetune.seeds: give a list of seeds (integers), got '1,2'")
    assert study_error(tmp_path, changed(["evaluate", "finetune", "limit_train"], "400")) == (
        "S:18: evaluate.finetune.limit_train: give an int or null, got '400'")
    assert study_error(tmp_path, changed(["evaluate", "finetune", "max_epochs"], 2.5)) == (
        "S:18: evaluate.finetune.max_epochs: give an int or null, got 2.5")
    assert study_error(tmp_path, changed(["evaluate", "finetune", "head"], "mlpp")) == (
        "S:18: evaluate.finetune.head: give one of mlp, linear, got 'mlpp'")
    assert study_error(tmp_path, changed(["evaluate", "zero_shot", "data_dir"], str(tmp_path / "nowhere"))) == (
        f"S:13: evaluate.zero_shot.data_dir: {tmp_path / 'nowhere'} not found (a relative folder is in the data "
        "folder)")


def test_evaluation_options_it_can_take_are_read(tmp_path, data_root):
    study = changed(["evaluate", "finetune"], {"tasks": "rte,wsc", "seeds": [1, 2], "limit_train": 400,
                                              "max_epochs": 3, "lr": 1, "data_dir": "babylm-eval/glue_filtered"})
    study["evaluate"]["zero_shot"] = {"tasks": ["blimp", "ewok"], "data_dir": str(data_root / "babylm-eval-fast"),
                                      "batch_size": 8, "full_sentence_ewok": True}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(study))
    settings = load_study(tmp_path / "s.yaml")
    assert (settings.finetune["limit_train"], settings.zero_shot["batch_size"]) == (400, 8)
