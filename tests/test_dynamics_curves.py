"""``classit dynamics``: a run's checkpoints in words-seen order, the fast sets scored at each (resumable, ctrl-C
safe), curves.csv equal to each checkpoint's summary, the figures, acquisition points, stage effects, representation
change and seen counts (a second call rewrites nothing), ``--seen``, and each fault's one line."""

import csv
import json
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import classit, curriculum_run, error_line, fast_eval_data, model_folder
from PIL import Image

from classit import layout
from classit.cli import main
from classit.dynamics.checkpoints import FollowedRun, read_checkpoint, run_checkpoints
from classit.dynamics.command import as_lists, dev_folder, follow
from classit.dynamics.outputs import ACQUISITION_COLUMNS, REPRESENTATION_COLUMNS, SEEN_COLUMNS, STAGE_COLUMNS
from classit.dynamics.probe import probe_sentences
from classit.dynamics.curves import item_outcomes
from classit.eval import tasks
from classit.files import read_json, read_jsonl

TASKS = ["blimp", "ewok", "entity_tracking", "wug", "reading"]


@pytest.fixture(scope="module")
def tiny_run(data_root, tokenizer, tmp_path_factory) -> Path:
    """The tiny sequential curriculum with milestones at 3k, 6k and 9k words (≈10k seen), trained once."""
    return curriculum_run(data_root, tokenizer.name_or_path, tmp_path_factory.mktemp("dynamics"))


@pytest.fixture(scope="module")
def eval_data(data_root, tmp_path_factory) -> Path:
    return fast_eval_data(data_root, tmp_path_factory.mktemp("dynamics-data"))


def _dynamics(run: Path, out: Path, data: Path, *more: str) -> None:
    main(["dynamics", "--run", str(run), "--out", str(out), "--data_dir", str(data), "--device", "cpu", *more])


def _mtimes(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_checkpoints_are_every_export_in_words_seen_order(tiny_run):
    checkpoints = run_checkpoints(tiny_run)
    assert [c.name for c in checkpoints] == ["chck_0.003M", "stage0_pretrain", "chck_0.006M", "stage1_switchboard",
                                             "chck_0.009M", "final"]
    seen = [c.words_seen for c in checkpoints]
    assert seen == sorted(seen) and seen[-1] > 9000
    assert [c.words for c in checkpoints if c.name.startswith("chck")] == [3000, 6000, 9000]
    for c in checkpoints:  # an export's words are its words seen, and it names the stage it ended
        info = read_json(layout.export_info(c.folder))
        assert c.words_seen == info["words_seen"] and c.step == info["step"]
        if not c.name.startswith("chck"):
            assert c.words == c.words_seen
    assert [(c.stage, c.stage_name) for c in checkpoints if not c.name.startswith("chck")] == [
        (0, "pretrain"), (1, "switchboard"), (2, "simple_wiki")]
    steps = [c.step for c in checkpoints]
    assert steps == sorted(steps) and checkpoints[-1].step == 12


@pytest.mark.slow
def test_curves_equal_the_summaries_and_a_second_call_scores_nothing(tiny_run, eval_data, tmp_path):
    out = tmp_path / "out"
    start = time.perf_counter()
    _dynamics(tiny_run, out, eval_data)
    first = time.perf_counter() - start
    with open(out / layout.CURVES, newline="") as f:
        rows = list(csv.DictReader(f))
    checkpoints = run_checkpoints(tiny_run)
    assert len({r["checkpoint"] for r in rows}) == len(checkpoints) == 6
    assert {r["task"] for r in rows} == set(TASKS)
    for c in checkpoints:
        scores = layout.dynamics_scores(out, "demo_seq", c.name)
        summary = read_json(layout.summary_file(scores))
        mine = [r for r in rows if r["checkpoint"] == c.name]
        assert {float(r["words"]) for r in mine} == {c.words} and {int(r["step"]) for r in mine} == {c.step}
        for task in ("blimp", "ewok", "entity_tracking", "wug"):
            subsets = {r["subset"]: r for r in mine if r["task"] == task}
            assert {s: float(r["score"]) for s, r in subsets.items()} == pytest.approx(summary[task]["by_uid"], nan_ok=True)
            assert sum(int(r["items"]) for r in subsets.values()) == summary[task]["items"]
        for task in ("blimp", "ewok", "entity_tracking"):
            records = read_jsonl(layout.predictions_file(scores, task))
            for subset, r in ((r["subset"], r) for r in mine if r["task"] == task):
                assert int(r["ties"]) == sum(p["tie"] for p in records if p["uid"] == subset)
            assert sum(int(r["ties"]) for r in mine if r["task"] == task) == summary[task]["ties"]
            outcomes = item_outcomes(scores, task)  # the official rule: the share right is the score
            for subset, r in ((r["subset"], r) for r in mine if r["task"] == task):
                assert 100 * outcomes[subset].mean() == pytest.approx(float(r["score"]))
        reading = {r["subset"]: float(r["score"]) for r in mine if r["task"] == "reading"}
        assert reading == pytest.approx({k: summary["reading"][k] for k in ("eye_tracking", "self_paced")})
    assert {float(r["chance"]) for r in rows if r["task"] == "entity_tracking"} == {20.0}  # five options
    assert {float(r["chance"]) for r in rows if r["task"] in ("blimp", "ewok")} == {50.0}
    for task in TASKS:
        width, _ = Image.open(layout.dynamics_figures(out) / f"curves_{task}.png").size
        assert width <= 1600

    scored = _mtimes(out / "scores")
    start = time.perf_counter()
    _dynamics(tiny_run, out, eval_data)
    second = time.perf_counter() - start
    assert _mtimes(out / "scores") == scored  # no checkpoint scored again
    assert second < min(10, first)
    with open(out / layout.CURVES, newline="") as f:
        assert list(csv.DictReader(f)) == rows


@pytest.mark.slow
def test_ctrl_c_during_scoring_keeps_what_was_scored_and_the_next_call_goes_on(tiny_run, data_root, tmp_path):
    out, data = tmp_path / "out", tmp_path / "data" / "babylm-eval-fast" / "blimp_fast"
    data.mkdir(parents=True)  # 1,200 real items, a few seconds a checkpoint: the signal lands inside one
    for path in sorted((data_root / "babylm-eval-fast" / "blimp_fast").glob("*.jsonl"))[:6]:
        (data / path.name).symlink_to(path)
    args = ["dynamics", "--run", str(tiny_run), "--out", str(out), "--data_dir", str(tmp_path / "data"), "--device",
            "cpu", "--batch_size", "1", "--tasks", "blimp"]
    process = classit(*args, cwd=tmp_path, wait=False)
    first = layout.summary_file(layout.dynamics_scores(out, "demo_seq", "chck_0.003M"))
    second = layout.predictions_dir(layout.dynamics_scores(out, "demo_seq", "stage0_pretrain"))  # made to score it
    deadline = time.monotonic() + 300
    while not second.is_dir() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)  # while the second checkpoint is scored
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, output[-2000:]
    assert "interrupted while scoring demo_seq stage0_pretrain" in output, output[-2000:]
    assert "the next call goes on from stage0_pretrain" in output and first.is_file()
    kept = first.stat().st_mtime_ns
    assert not layout.summary_file(layout.dynamics_scores(out, "demo_seq", "final")).is_file()

    output, code = classit(*args, cwd=tmp_path)
    assert code == 0, output[-2000:]
    assert first.stat().st_mtime_ns == kept
    assert "chck_0.003M (3,000 words)" not in output  # not scored again
    assert all(layout.summary_file(layout.dynamics_scores(out, "demo_seq", c.name)).is_file()
               for c in run_checkpoints(tiny_run))


def _export(tiny_model_dir: Path, folder: Path, info: bool = True) -> Path:
    shutil.copytree(tiny_model_dir, folder)
    if info:
        (folder / layout.MILESTONE_FILE).write_text('{"words": 1000000, "words_seen": 1000064, "step": 3, "stage": 0}')
    return folder


def test_a_run_folder_that_does_not_exist_or_holds_no_exports_stops_in_one_line(tmp_path):
    missing = tmp_path / "nowhere"
    assert error_line(["dynamics", "--run", str(missing), "--out", str(tmp_path / "out")]) == (
        f"{missing} (--run): no such run folder")
    (tmp_path / "file").write_text("not a run")
    assert error_line(["dynamics", "--run", str(tmp_path / "file"), "--out", str(tmp_path / "out")]) == (
        f"{tmp_path / 'file'} (--run): a file, not a run folder")
    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
    line = error_line(["dynamics", "--run", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    assert line.startswith(f"{tmp_path / 'empty'} (--run): no exports to follow (no milestones/chck_NM")
    assert not (tmp_path / "out").exists()


def test_an_export_without_milestone_json_stops_naming_it(tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    _export(tiny_model_dir, layout.milestone_export(run, 1_000_000))
    old = _export(tiny_model_dir, layout.milestone_export(run, 2_000_000), info=False)
    line = error_line(["dynamics", "--run", str(run), "--out", str(tmp_path / "out")])
    assert line.startswith(f"{old}: no milestone.json, so when it was written is unknown; the export was probably "
                           "written before classit wrote one, or cut short")


def test_an_export_cut_short_stops_naming_its_weights(tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    weights = _export(tiny_model_dir, layout.final_export(run)) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    line = error_line(["dynamics", "--run", str(run), "--out", str(tmp_path / "out")])
    assert line.startswith(f"{weights}: damaged model weights")


def test_an_out_that_cannot_be_written_stops_in_one_line(tiny_model_dir, tmp_path, data_root):
    run = tmp_path / "run"
    _export(tiny_model_dir, layout.milestone_export(run, 1_000_000))
    (tmp_path / "taken").write_text("a file")
    line = error_line(["dynamics", "--run", str(run), "--out", str(tmp_path / "taken")])
    assert line == f"{tmp_path / 'taken'} (--out): a file is in the way, a folder was expected; choose another path"


def test_labels_must_be_one_per_run_and_differ(tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    _export(tiny_model_dir, layout.milestone_export(run, 1_000_000))
    args = ["dynamics", "--run", str(run), "--run", str(run), "--out", str(tmp_path / "out")]
    assert error_line(args) == "--label: two runs are labelled run; give each --run its own --label"
    assert error_line([*args, "--label", "a"]) == "--label: 1 labels for 2 runs; give one per --run, in order"


def test_repeated_runs_and_labels_become_lists():
    assert as_lists(["--run", "a", "--out", "o", "--run=b", "--label", "x", "--label", "y"]) == [
        "--out", "o", "--run", '["a", "b"]', "--label", '["x", "y"]']


def test_chance_levels_come_from_the_task_registry():
    """One rule, used by the curves and by a study's tables: 100 / options of a choice task, 0 for a correlation."""
    assert tasks.TASKS["blimp"].chance == tasks.TASKS["ewok"].chance == 50.0
    assert tasks.TASKS["entity_tracking"].chance == 20.0
    assert tasks.TASKS["wug"].chance == tasks.TASKS["reading"].chance == 0.0


def test_item_outcomes_follow_the_official_rule_in_item_order(tmp_path):
    records = [{"uid": "a", "scores": [-1.0, -2.0], "correct": True, "tie": False},
               {"uid": "b", "scores": [-2.0, -2.0], "correct": True, "tie": True},  # a tie counts right
               {"uid": "a", "scores": [-3.0, -2.0], "correct": False, "tie": False}]
    path = layout.predictions_file(tmp_path, "blimp")
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    outcomes = item_outcomes(tmp_path, "blimp")
    assert {k: v.tolist() for k, v in outcomes.items()} == {"a": [1, 0], "b": [1]}
    assert outcomes["a"].dtype == np.int8
    with pytest.raises(ValueError, match="correlation"):
        item_outcomes(tmp_path, "wug")


def test_tasks_without_a_fast_set_or_without_data_stop_in_one_line(tiny_model_dir, tmp_path):
    run, data = tmp_path / "run", tmp_path / "data"
    _export(tiny_model_dir, layout.milestone_export(run, 1_000_000))
    (data / "babylm-eval-fast" / "blimp_fast").mkdir(parents=True)
    args = ["dynamics", "--run", str(run), "--out", str(tmp_path / "out"), "--data_dir", str(data)]
    assert error_line([*args, "--tasks", "blimp,aoa"]).startswith("--tasks: no fast set for aoa; choose from blimp, ")
    assert error_line([*args, "--tasks", "blimp,ewok"]) == (
        f"{data / 'babylm-eval-fast' / 'ewok_fast'}: no such fast evaluation data (nor "
        f"{data / 'babylm-eval' / 'ewok_fast'})")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_several_runs_are_labelled_with_their_condition_and_seed(tiny_run, eval_data, tmp_path):
    out = tmp_path / "out"
    _dynamics(tiny_run, out, eval_data, "--run", str(tiny_run), "--label", "sequential_seed1", "--label", "merged_seed2",
              "--tasks", "blimp")
    with open(out / layout.CURVES, newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["run"], r["condition"], r["seed"]) for r in rows} == {("sequential_seed1", "sequential", "1"),
                                                                     ("merged_seed2", "merged", "2")}
    scores = {run: [(r["checkpoint"], r["subset"], r["score"]) for r in rows if r["run"] == run]
              for run in ("sequential_seed1", "merged_seed2")}
    assert scores["sequential_seed1"] == scores["merged_seed2"] and len(scores["merged_seed2"]) == 6 * 3


def _csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


@pytest.mark.slow
def test_every_step_writes_its_files_and_a_second_call_rewrites_nothing(tiny_run, eval_data, tmp_path, capsys):
    out, figures = tmp_path / "out", layout.dynamics_figures(tmp_path / "out")
    _dynamics(tiny_run, out, eval_data, "--tasks", "blimp,entity_tracking,wug")
    checkpoints = run_checkpoints(tiny_run)
    # acquisition points of the choice tasks' subsets (WUG has no items), and what each instruction stage did
    columns, acquired = _csv(out / layout.ACQUISITION)
    assert columns == list(ACQUISITION_COLUMNS) and {r["resamples"] for r in acquired} == {"200"}
    _, curves = _csv(out / layout.CURVES)
    choice = {(r["task"], r["subset"]) for r in curves if r["task"] != "wug"}
    assert sorted((r["task"], r["subset"]) for r in acquired) == sorted(choice)
    columns, effects = _csv(out / layout.STAGE_EFFECTS)
    assert columns == list(STAGE_COLUMNS)
    assert {(r["stage"], r["stage_name"]) for r in effects} == {("1", "switchboard"), ("2", "simple_wiki")}
    assert len(effects) == 2 * len(choice)
    # the representation on the default probe: the bundled sample's dev set, the data folder having none
    assert (out / layout.PROBE).read_text().splitlines() == probe_sentences(dev_folder(eval_data))
    columns, representation = _csv(out / layout.REPRESENTATION)
    assert columns == list(REPRESENTATION_COLUMNS)
    assert [r["checkpoint"] for r in representation if r["metric"] == "cka_last" and r["layer"] == "0"] == [
        c.name for c in checkpoints]
    last = [float(r["value"]) for r in representation if r["checkpoint"] == "final" and r["metric"] == "cka_last"]
    layers = read_json(checkpoints[-1].folder / "config.json")["num_hidden_layers"]
    assert len(last) == layers + 1 and last == pytest.approx([1.0] * (layers + 1))  # the embeddings, then each layer
    final = next(r for r in representation if r["checkpoint"] == "final")
    assert (float(final["words"]), int(final["step"]), final["stage"]) == (checkpoints[-1].words, 12, "2")
    # what each checkpoint had seen: a milestone's words are those its milestone.json counted
    columns, seen = _csv(out / layout.SEEN_TABLE)
    assert columns == list(SEEN_COLUMNS)
    for c in checkpoints:
        mine = [r for r in seen if r["checkpoint"] == c.name]
        assert mine and [float(r["words"]) for r in mine] == pytest.approx([c.words_seen] * len(mine), rel=1e-6)
        totals = [r for r in mine if r["stage_name"] == "all"]
        assert sum(float(r["source_words"]) for r in totals) == pytest.approx(c.words_seen, rel=1e-6)
    placed = [r for r in acquired if r["words"]]  # the tiny run may have acquired nothing: then no dots to draw
    assert (figures / layout.ACQUISITION_FIGURE).is_file() == bool(placed)
    for name in ("stage_effects", "repr_demo_seq", "seen_demo_seq", "curves_blimp"):
        assert Image.open(figures / f"{name}.png").size[0] <= 1600, name
    capsys.readouterr()

    before = _mtimes(out)
    start = time.perf_counter()
    _dynamics(tiny_run, out, eval_data, "--tasks", "blimp,entity_tracking,wug")
    assert time.perf_counter() - start < 10
    assert _mtimes(out) == before  # nothing rewritten
    assert capsys.readouterr().out.splitlines()[-1] == f"dynamics: nothing new; every file in {out} kept"

    main(["dynamics", "--run", str(tiny_run), "--seen", "chck_0.003M"])
    listing = capsys.readouterr().out
    assert "pretrain: " in listing and ", lines 1:" in listing, listing


def test_an_empty_probe_file_stops_naming_it_before_any_work(tiny_model_dir, tmp_path):
    run, probe = tmp_path / "run", tmp_path / "probe.txt"
    _export(tiny_model_dir, layout.final_export(run))
    probe.write_text("\n  \n")
    line = error_line(["dynamics", "--run", str(run), "--out", str(tmp_path / "out"), "--probe", str(probe)])
    assert line == f"{probe}: empty probe file (no sentence); a probe file holds one sentence a line"
    assert not (tmp_path / "out").exists()


def test_a_run_mixing_architectures_stops_naming_the_checkpoint_before_any_work(tiny_model_dir, tokenizer, tmp_path):
    run = tmp_path / "run"
    _export(tiny_model_dir, layout.milestone_export(run, 1_000_000))
    smaller = model_folder("llama", tokenizer, tmp_path / "smaller")  # 1 layer × 32, the tiny model's 2 × 64
    shutil.copytree(smaller, layout.final_export(run))
    (layout.final_export(run) / layout.MILESTONE_FILE).write_text(
        '{"words": 2000000, "words_seen": 2000064, "step": 6, "stage": 0}')
    line = error_line(["dynamics", "--run", str(run), "--out", str(tmp_path / "out")])
    assert line.startswith("the representation metrics compare one architecture and one tokenizer, but these "
                           "checkpoints differ from the first, chck_1M")
    assert f"final ({layout.final_export(run)}): hidden_size 32 (not 64), num_hidden_layers 1 (not 2)" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_follow_takes_a_run_whose_checkpoints_lie_in_two_run_folders(tiny_run, eval_data, tmp_path, capsys):
    """A fit branched from another's end of pre-training: the instruction stages' exports in a folder of its own
    (no config.yaml, so no seen counts there: said in one line), the pre-training ones in the other run folder."""
    branch = tmp_path / "branch"
    shutil.copytree(layout.final_export(tiny_run), layout.final_export(branch),
                    ignore=shutil.ignore_patterns("stage0_*", layout.SEEN_FILE))
    mine = [c for c in run_checkpoints(tiny_run) if c.stage == 0]
    mine += [read_checkpoint("stage1_switchboard", layout.stage_export(layout.final_export(branch), 1, "switchboard")),
             read_checkpoint(layout.FINAL, layout.final_export(branch))]
    assert [c.stage_name for c in mine[-2:]] == ["switchboard", "simple_wiki"]
    out = follow([FollowedRun("sequential_seed1", branch, "sequential", 1, tuple(mine))], tmp_path / "out",
                 data_dir=eval_data, tasks="blimp", device="cpu")
    printed = capsys.readouterr().out
    assert f"[dynamics] no seen counts for {branch}: " in printed
    _, seen = _csv(out / layout.SEEN_TABLE)
    assert {r["checkpoint"] for r in seen} == {c.name for c in mine if c.stage == 0}  # those of the first folder
    _, representation = _csv(out / layout.REPRESENTATION)
    assert [r["checkpoint"] for r in representation if r["metric"] == "cka_last" and r["layer"] == "0"] == [
        c.name for c in mine]
    _, effects = _csv(out / layout.STAGE_EFFECTS)
    assert {r["stage_name"] for r in effects} == {"switchboard", "simple_wiki"}
