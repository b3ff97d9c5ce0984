"""The registry of evaluation tasks (classit/eval/tasks.py): names, folders and sizes against the data and the
official pipeline; and the one summary.json reader (classit/eval/summary.py)."""

import json
from collections import Counter
from pathlib import Path

import pytest

from classit.eval.summary import Summary, read_summary, write_summary
from classit.eval.tasks import FAST, GLUE, RHO, TASKS, by_folder
from classit.eval.zero_shot import load_items

ALL = (*TASKS.values(), GLUE)
HIDDEN = {"wug_past_tense", "comps"}  # the pipeline's hidden sets: not in the shared data folder
OFFICIAL = ["blimp", "blimp_supplement", "ewok", "entity_tracking", "wug_adj", "wug_past", "comps", "reading", "aoa",
            "glue"]


def test_official_names_round_trip_in_the_collators_order():
    assert [task.official for task in ALL] == OFFICIAL
    assert all(by_folder(name) is task for task in TASKS.values() for name in task.folders)
    assert by_folder("vqa") is None
    assert len({task.name for task in ALL}) == len(ALL)


def test_the_derived_lists():
    assert RHO == ("wug", "wug_past")
    assert [name for name, task in TASKS.items() if task.kind not in ("choice", "rho")] == ["reading", "aoa"]
    assert {name for name, task in TASKS.items() if task.aggregate == "files"} == {"entity_tracking"}
    assert list(FAST) == ["blimp", "supplement", "ewok", "entity_tracking", "wug", "wug_past", "reading"]
    assert [task.results_folder(fast=True) for task in FAST.values()] == [
        "blimp/blimp_fast", "blimp/supplement_fast", "ewok/ewok_fast", "entity_tracking/entity_tracking_fast",
        "wug_adj/wug_adj_nominalization", "wug_past/wug_past_tense", "reading"]
    assert TASKS["comps"].results_folder(fast=False) == "comps/comps"


def test_find_prefers_the_full_set_and_names_what_it_looks_for(tmp_path):
    blimp, reading = TASKS["blimp"], TASKS["reading"]
    assert blimp.find(tmp_path) is None and blimp.wanted() == "blimp_filtered or blimp_fast"
    (tmp_path / "blimp_fast").mkdir()
    assert blimp.find(tmp_path) == tmp_path / "blimp_fast"
    (tmp_path / "blimp_filtered").mkdir()
    assert blimp.find(tmp_path) == tmp_path / "blimp_filtered"
    (tmp_path / "reading").mkdir()
    assert reading.find(tmp_path) is None and reading.wanted() == "reading/reading_data.csv"
    (tmp_path / "reading" / "reading_data.csv").write_text("")
    assert reading.find(tmp_path) == tmp_path / "reading" / "reading_data.csv"
    assert TASKS["wug"].folders == ("wug_adj_nominalization",)  # its fast set reads the full set


@pytest.mark.full_data("the BabyLM evaluation sets (babylm-eval, babylm-eval-fast)")
def test_every_folder_is_in_the_data_and_every_data_folder_is_a_task(data_root):
    full, fast = data_root / "babylm-eval", data_root / "babylm-eval-fast"
    for task in ALL:
        if task.full not in HIDDEN:
            assert (full / task.full).is_dir(), task.name
        if task.fast and task.fast not in HIDDEN:
            assert (fast / task.fast).is_dir() or (full / task.fast).is_dir(), task.name
    named = {name for task in ALL for name in task.folders}
    assert {p.name for p in (*full.iterdir(), *fast.iterdir())} <= named


def _sizes(task, folder: Path, official) -> dict[str, int] | set[int]:
    """Items per subset as the collator names them (an int-sized task: the set of its subsets' sizes)."""
    if task.data_file:
        return {len((folder / task.data_file).read_text().splitlines()) - 1}  # CSV rows under the header
    if task is GLUE:
        return {p.name.split(".")[0]: len(p.read_text().splitlines()) for p in folder.glob("*.valid.jsonl")}
    if task.aggregate == "files":  # subsets are (file, number of operations)
        return dict(Counter(item.uid for item in load_items(task.name, folder)))
    sizes = {p.stem.lower(): len(p.read_text().splitlines()) for p in folder.glob("*.jsonl")}
    return sizes if isinstance(official, dict) else set(sizes.values())


@pytest.mark.full_data("the BabyLM evaluation sets (babylm-eval, babylm-eval-fast)")
def test_sizes_are_the_official_sets(data_root):
    full, fast = data_root / "babylm-eval", data_root / "babylm-eval-fast"
    for task in ALL:
        if task.full in HIDDEN or task.kind == "aoa":  # AoA's size: the records of a checkpoint's surprisal.json
            continue
        expected = task.sizes if isinstance(task.sizes, dict) else {task.sizes}
        assert _sizes(task, full / task.full, task.sizes) == expected, task.name
        if task.fast and task.fast_sizes:
            folder = fast / task.fast if (fast / task.fast).is_dir() else full / task.fast
            expected = task.fast_sizes if isinstance(task.fast_sizes, dict) else {task.fast_sizes}
            assert _sizes(task, folder, task.fast_sizes) == expected, task.name


# --- summary.json ---

def test_a_summary_is_written_with_its_kind_and_read_back(tmp_path):
    path = tmp_path / "summary.json"
    write_summary(path, "finetune", {"rte": {"accuracy": {"per_seed": [50.0]}}, "glue_score": 50.0,
                                     "glue_tasks": ["rte"]})
    assert next(iter(json.loads(path.read_text()))) == "kind"
    assert read_summary(path) == Summary("finetune", {"rte": {"accuracy": {"per_seed": [50.0]}}},
                                         {"glue_score": 50.0, "glue_tasks": ["rte"]})


@pytest.mark.parametrize("contents, kind", [
    ({"blimp": {"macro": 60.0}, "wug": {"skipped": "no data"}}, "zero_shot"),
    ({"reading": {"eye_tracking": 1.0}, "aoa": {"curve_fitness": 0.1}}, "zero_shot"),
    ({"rte": {"accuracy": {"per_seed": [50.0]}}, "wsc": {"skipped": "no data"}, "glue_score": 50.0}, "finetune"),
])
def test_an_older_summary_without_a_kind_is_recognised(tmp_path, contents, kind):
    (tmp_path / "summary.json").write_text(json.dumps(contents))
    summary = read_summary(tmp_path / "summary.json")
    assert summary.kind == kind and set(summary.tasks) == {k for k, v in contents.items() if isinstance(v, dict)}


@pytest.mark.parametrize("contents, message", [
    ({"blimp": {"accuracy": 3}}, "unknown layout"),
    ({"kind": "glue", "rte": {}}, "unknown kind 'glue'; expected zero_shot or finetune"),
    ([1, 2], "expected a JSON object"),
])
def test_a_bad_summary_stops_naming_the_file(tmp_path, contents, message):
    (tmp_path / "summary.json").write_text(json.dumps(contents))
    with pytest.raises(ValueError, match=message) as error:
        read_summary(tmp_path / "summary.json")
    assert str(error.value).startswith(str(tmp_path / "summary.json"))
