"""Ties as the leaderboard counts them: the official pipeline takes the first of equal scores (``torch.max``), the
correct option, so a tie counts right in the official number; the strict score (ties wrong) and the number of ties
stand beside it. The model here has its LM head zeroed: every token gets log(1/V), so a sentence scores by its
number of tokens alone and the options of equal length tie."""

import contextlib
import csv
import io
import json
import statistics

import pytest
from transformers import AutoTokenizer

from classit.cli import main
from classit.eval.compare import compare
from classit.eval.tasks import TASKS
from helpers import blimp_subset, head_zeroed_model

FILES = ["adjunct_island", "anaphor_gender_agreement", "determiner_noun_agreement_1"]
N = 5  # items per BLiMP file (the bundled sample has 5 of each)


@pytest.fixture(scope="module")
def evaluated(tiny_model_dir, data_root, tmp_path_factory):
    """``classit evaluate`` of the head-zeroed model on three real BLiMP files: its output folder, data folder,
    printed text and the outcomes written out from token counts."""
    tmp = tmp_path_factory.mktemp("ties")
    model = head_zeroed_model(tiny_model_dir, tmp / "model")
    folder = blimp_subset(data_root, tmp / "data", FILES, N)
    expected = expected_blimp(AutoTokenizer.from_pretrained(model), folder)
    assert 0 < expected["ties"] < len(FILES) * N  # some ties, some not: the two rules differ here
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(["evaluate", "--model", str(model), "--data_dir", str(tmp / "data"), "--tasks", "blimp",
              "--out", str(tmp / "eval" / "tied"), "--device", "cpu"])
    return {"out": tmp / "eval" / "tied", "data": folder, "printed": printed.getvalue(), "expected": expected,
            "tmp": tmp}


def expected_blimp(tokenizer, folder) -> dict:
    """Written out from token counts alone: the fewer tokens win; equal counts tie, and the tie goes to the first
    option (official) or counts wrong (strict)."""
    official, strict, ties = {}, {}, 0
    for path in sorted(folder.glob("*.jsonl")):
        lengths = [[len(tokenizer(r[k]).input_ids) for k in ("sentence_good", "sentence_bad")]
                   for r in map(json.loads, path.read_text().splitlines())]
        official[path.stem] = 100.0 * statistics.mean(good <= bad for good, bad in lengths)
        strict[path.stem] = 100.0 * statistics.mean(good < bad for good, bad in lengths)
        ties += sum(good == bad for good, bad in lengths)
    return {"by_uid": official, "strict": strict, "ties": ties}


@pytest.mark.slow
def test_evaluate_counts_a_tie_right_and_the_strict_score_wrong(evaluated):
    expected = evaluated["expected"]
    blimp = json.loads((evaluated["out"] / "summary.json").read_text())["blimp"]
    assert blimp["by_uid"] == pytest.approx(expected["by_uid"])
    assert blimp["macro"] == pytest.approx(statistics.mean(expected["by_uid"].values()))
    assert blimp["strict"]["by_uid"] == pytest.approx(expected["strict"])
    assert blimp["strict"]["macro"] == pytest.approx(statistics.mean(expected["strict"].values()))
    assert blimp["ties"] == expected["ties"] and blimp["strict"]["macro"] < blimp["macro"]
    assert (f"blimp: macro {blimp['macro']:.2f}%  strict {blimp['strict']['macro']:.2f}%  ties {expected['ties']}"
            in evaluated["printed"])
    records = [json.loads(line) for line in (evaluated["out"] / "predictions" / "blimp.jsonl").read_text().splitlines()]
    assert all(r["correct"] == (r["pred"] == 0) for r in records) and sum(r["tie"] for r in records) == expected["ties"]


@pytest.mark.slow
def test_the_report_the_leaderboard_scorer_and_compare_give_the_official_number(evaluated, capsys):
    """``classit report --babylm`` writes the pipeline's predictions; the leaderboard's scorer of them (what
    ``classit submission`` prints) equals classit's official number, subset by subset; the report shows it with
    the strict score and the ties beside; ``classit compare`` finds the two sides equal and lists the ties."""
    tmp, expected = evaluated["tmp"], evaluated["expected"]
    main(["report", f"[{evaluated['out']}]", "--out", str(tmp / "report"), "--babylm", str(tmp / "babylm"),
          "--replies", "false"])
    blimp = tmp / "babylm" / "tied" / "main" / "zero_shot" / "causal" / "blimp" / "blimp_filtered"
    scores = TASKS["blimp"].scorer(json.loads((blimp / "predictions.json").read_text()), evaluated["data"])
    assert {uid: 100 * v for uid, v in scores.items()} == pytest.approx(expected["by_uid"])
    macro, strict = statistics.mean(expected["by_uid"].values()), statistics.mean(expected["strict"].values())
    report = (tmp / "report" / "report.md").read_text()
    assert f"| blimp | {macro:.2f} (1 seed) |" in report
    assert f"tied seed 0 blimp: {expected['ties']} ties, strict {strict:.2f}" in report
    written = csv.DictReader((tmp / "report" / "results.csv").read_text().splitlines())
    rows = {(r["subset"], r["metric"]): float(r["value"]) for r in written if r["task"] == "blimp"}
    assert rows["", "accuracy"] == pytest.approx(macro) and rows["strict", "accuracy"] == pytest.approx(strict)
    assert rows["", "ties"] == expected["ties"]
    capsys.readouterr()
    rows = compare(str(evaluated["out"]), str(tmp / "babylm"))
    printed = capsys.readouterr().out
    assert rows["blimp", "average"][2] == 0 and all(rows["blimp", f"uid/{uid}"][2] == 0 for uid in FILES)
    assert rows["blimp", "strict (ties wrong)"][0] == pytest.approx(strict)
    assert f"blimp: 0 of {len(FILES) * N} items choose a different option" in printed
    assert f"blimp: {expected['ties']} ties (the first option wins a tie" in printed
