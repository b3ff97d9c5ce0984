"""``classit submission`` on bad input, through the real CLI: one line naming the file or option at fault, said
before any work (no scoring, no collating). Needs no data: each tree is written here."""

import json
from pathlib import Path

import pytest

from classit import layout
from helpers import error_line

BLIMP = Path("m/main/zero_shot/causal/blimp/blimp_filtered/predictions.json")


@pytest.mark.parametrize("content, found", [([1, 2, 3], "found a JSON list"),
                                            ({"predictions": 5}, "found 'predictions': 5"),
                                            ({"adjunct_island": {"predictions": [1, 2]}},
                                             "found 'adjunct_island': {\"predictions\": [1, 2]}")])
def test_predictions_of_the_wrong_shape_stop_naming_the_file_and_the_shape(tmp_path, content, found):
    path = tmp_path / BLIMP
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(content))
    message = error_line(["submission", "--results", str(tmp_path), "--model", "m"])
    assert message == f'{path}: expected {{"SUBSET": {{"predictions": [{{"pred": ...}}, ...]}}, ...}}, {found}'


def test_an_aoa_file_of_the_wrong_shape_stops_naming_it(tmp_path):
    path = tmp_path / "m/main/zero_shot/causal/AoA_word/surprisal.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"results": 5}))
    from classit.eval.submission import load_aoa
    with pytest.raises(ValueError, match=r"surprisal.json: expected \{\"results\": \[\{\"step\""):
        load_aoa(path, ["chck_1M"], "hint")


def test_out_a_folder_or_below_a_file_stops_before_any_work(tmp_path, capsys):
    (tmp_path / "m").mkdir()  # an empty tree: collating would stop on its first missing file
    args = ["submission", "--results", str(tmp_path), "--model", "m", "--run", str(tmp_path / "no-run")]
    assert error_line([*args, "--out", str(tmp_path)]) == \
        f"--out {tmp_path}: is a folder; name the file to write (e.g. {tmp_path / layout.SUBMISSION})"
    (tmp_path / "file").write_text("")
    assert error_line([*args, "--out", str(tmp_path / "file" / "sub.json")]) == \
        f"--out {tmp_path / 'file' / 'sub.json'}: {tmp_path / 'file'} is a file, not a folder"
    assert capsys.readouterr().out == ""


def _run(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / "run" / "milestones" / name).mkdir(parents=True)
    return root / "run"


def test_a_run_without_the_tracks_milestones_is_refused_before_any_work(tmp_path):
    run = _run(tmp_path, ["chck_0.05M", "chck_0.1M", "chck_0.2M"])
    message = error_line(["submission", "--results", str(tmp_path), "--model", "m", "--run", str(run),
                          "--track", "strict-small"])
    assert message.startswith(f"--run {run}: none of its milestones (chck_0.05M, chck_0.1M, chck_0.2M) is one of "
                              "the strict-small track's milestones (chck_1M, chck_2M,")
    assert message.endswith("chck_90M, chck_100M)")


def test_the_milestones_used_and_those_left_out_are_said_before_any_work(tmp_path, capsys):
    run = _run(tmp_path, ["chck_0.05M", "chck_1M", "chck_2M", "chck_200M"])
    missing = tmp_path / "no-data"  # the first work, finding the fast sets, stops at once
    message = error_line(["submission", "--results", str(tmp_path), "--model", "m", "--run", str(run),
                          "--track", "strict-small", "--fast_data", str(missing), "--data_dir", str(missing)])
    assert "no such fast evaluation data" in message
    assert capsys.readouterr().out == (f"--run {run}: scoring chck_1M, chck_2M; not on the strict-small track, "
                                       "left out: chck_0.05M, chck_200M\n")


@pytest.mark.parametrize("command, option, value, choices", [
    ("submission", "--track", "strict_small", "strict, strict-small"),
    ("finetune", "--head", "lin", "mlp, linear")])
def test_a_wrong_choice_names_the_valid_ones_in_one_line(tmp_path, command, option, value, choices):
    message = error_line([command, "--results" if command == "submission" else "--model", str(tmp_path),
                          *(["--model", "m"] if command == "submission" else []), option, value])
    assert message == f"{option}: {value!r} is not one of {choices}"
