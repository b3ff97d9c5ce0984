"""``classit compare``: result trees in classit's and the BabyLM pipeline's layouts, written here."""

import json
import math
import shutil

import pytest

from classit.cli import main
from classit.eval.compare import compare
from helpers import blimp_subset, write_jsonl

N = 4  # BLiMP items: 0 agree, 1 classit wrong and the pipeline right, 2 a tie (right on both sides), 3 both wrong


@pytest.fixture()
def data_dir(data_root, tmp_path):
    """The first N items of a real BLiMP file."""
    return blimp_subset(data_root, tmp_path / "data", ["adjunct_island"], N)


def write_classit(out, data_dir, tasks=("blimp", "wug", "reading")):
    """``classit evaluate`` output: summary.json and predictions/TASK.jsonl."""
    file = data_dir / "adjunct_island.jsonl"
    scores = [[-10.0, -12.0], [-12.0, -10.0], [-11.0, -11.0], [-13.0, -9.0]]
    blimp = [{"uid": "adjunct_island", "source": f"{file}:{k + 1}", "scores": s, "pred": s.index(max(s)),
              "correct": s[0] >= s[1], "tie": s[0] == s[1]} for k, s in enumerate(scores)]
    summary = {  # the tie counts right (the official rule), wrong in the strict score
        "blimp": {"by_uid": {"adjunct_island": 50.0}, "by_field": {"syntax": 50.0},
                  "by_linguistics_term": {"island_effects": 50.0}, "macro": 50.0,
                  "strict": {"macro": 25.0, "by_uid": {"adjunct_island": 25.0}}, "ties": 1, "items": N,
                  "folder": str(data_dir)},
        "wug": {"macro": 64.5332, "rho": 64.5332, "by_uid": {"wug_adj_nominalization": 64.5332}, "items": 2},
        "reading": {"rule": "official", "eye_tracking": 0.0939, "self_paced": 0.1852, "items": 3},
    }
    (out / "predictions").mkdir(parents=True)
    (out / "summary.json").write_text(json.dumps({t: summary[t] for t in tasks}))
    write_jsonl(out / "predictions" / "blimp.jsonl", blimp)
    write_jsonl(out / "predictions" / "wug.jsonl", [{"uid": "wug_adj_nominalization", "source": f"w:{k}", "scores": [-1, -2],
                                                      "pred": 0, "prob": p} for k, p in enumerate([0.7, 0.4])])
    write_jsonl(out / "predictions" / "reading.jsonl", [
        {"row": 0, "item": "Arthur placed", "word": "the", "surprisal": 5.0, "prev_surprisal": None},
        {"row": 1, "item": "Finally Maria sat down with a", "word": "cup", "surprisal": 9.0, "prev_surprisal": 3.0},
        {"row": 2, "item": "Finally Maria sat down with a cup", "word": "of", "surprisal": 2.0, "prev_surprisal": 9.0}])


def _report(sections, average, metric="ACCURACY"):
    """A report as the pipeline's create_evaluation_report prints it."""
    text = "TEMPERATURE: 1.00\n\n"
    for name, values in sections.items():
        text += f"### {name.upper()} {metric}\n" + "".join(f"{k}: {v:.2f}\n" for k, v in values.items()) + "\n"
    return text + f"### AVERAGE {metric}\n{average:.2f}\n\n"


def write_pipeline(root, data_dir, chosen=(0, 0, 0, 1)):
    """The pipeline's results tree for the same items: ``root/demo/main/zero_shot/causal/...``."""
    causal = root / "demo" / "main" / "zero_shot" / "causal"
    items = [json.loads(line) for line in (data_dir / "adjunct_island.jsonl").read_text().splitlines()]
    blimp = causal / "blimp" / "blimp_filtered"
    blimp.mkdir(parents=True)
    acc = 100.0 * chosen.count(0) / len(chosen)
    (blimp / "best_temperature_report.txt").write_text(_report(
        {"field": {"syntax": acc}, "UID": {"adjunct_island": acc}, "linguistics_term": {"island_effects": acc}}, acc))
    preds = [{"id": f"adjunct_island_{k}", "pred": [r["sentence_good"], r["sentence_bad"]][c]}
             for k, (r, c) in enumerate(zip(items, chosen))]
    (blimp / "predictions.json").write_text(json.dumps({"adjunct_island": {"predictions": preds}}))
    wug = causal / "wug_adj" / "wug_adj_nominalization"
    wug.mkdir(parents=True)
    (wug / "best_temperature_report.txt").write_text(_report({"UID": {"avg": 0.645332}}, 0.645332, "SPEARMAN'S RHO"))
    (wug / "predictions.json").write_text(json.dumps({"wug_adj_nominalization": {"predictions": [
        {"id": f"wug_adj_nominalization_{k}", "pred": "x", "prob": p} for k, p in enumerate([0.7, 0.41])]}}))
    reading = causal / "reading"
    reading.mkdir()
    (reading / "report.txt").write_text("EYE TRACKING SCORE: 0.09\nSELF-PACED READING SCORE: 0.26\n")
    rows = [(0, 5.0, math.nan), (1, 9.5, 3.0), (2, 2.0, 9.5)]
    write_jsonl(reading / "prediction.jsonl", [{"Index": i, "Sentence": "s", "Word": "w", "Logprob": s, "Prev_Logprob": p}
                                                for i, s, p in rows])
    return root


def test_classit_against_the_pipeline(data_dir, tmp_path, capsys):
    write_classit(tmp_path / "a", data_dir)
    write_pipeline(tmp_path / "results", data_dir)
    main(["compare", str(tmp_path / "a"), str(tmp_path / "results")])
    out = capsys.readouterr().out
    rows = compare(str(tmp_path / "a"), str(tmp_path / "results"))
    assert rows["blimp", "average"] == (50.0, 75.0, 25.0) and rows["blimp", "uid/adjunct_island"][2] == 25.0
    assert rows["blimp", "field/syntax"][2] == rows["blimp", "linguistics_term/island_effects"][2] == 25.0
    assert rows["blimp", "strict (ties wrong)"] == (25.0, None, None)  # classit's strict score, beside the official
    assert rows["wug", "average"][2] == 0.0  # 0.6453 equals the report's 0.65 at its two decimals
    assert rows["reading", "eye_tracking"][2] == 0.0
    assert rows["reading", "self_paced"][2] == 0.07
    assert "largest gap: blimp average: +25.0000 (A 50.0000, B 75.0000)" in out
    assert "blimp: 1 of 4 items choose a different option\n  adjunct_island #1  A 1  B 0" in out
    assert "blimp: 1 ties (the first option wins a tie" in out and "  adjunct_island #2  A 0  B 0" in out
    assert "wug: 1 of 2 items differ in probability" in out
    assert "reading: 2 of 3 rows differ" in out and "row #1  A 9.0000/3.0000  B 9.5000/3.0000" in out


def test_two_pipeline_trees_need_no_data(data_dir, tmp_path, capsys):
    second = json.loads((data_dir / "adjunct_island.jsonl").read_text().splitlines()[1])["sentence_good"]
    write_pipeline(tmp_path / "p1", data_dir)
    write_pipeline(tmp_path / "p2", data_dir, chosen=(0, 1, 0, 1))
    shutil.rmtree(data_dir)
    rows = compare(str(tmp_path / "p1"), str(tmp_path / "p2" / "demo" / "main"))
    assert rows["blimp", "average"] == (75.0, 50.0, -25.0)
    printed = capsys.readouterr().out
    assert f"blimp: 1 of 4 items choose a different option\n  adjunct_island #1  A {second!r}  B " in printed


def test_bad_folders_and_missing_tasks_through_the_cli(data_dir, tmp_path):
    write_classit(tmp_path / "a", data_dir, tasks=("blimp", "wug"))
    write_pipeline(tmp_path / "results", data_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match=r"^classit: error: .*empty: not a results folder: neither classit"):
        main(["compare", str(tmp_path / "empty"), str(tmp_path / "results")])
    with pytest.raises(SystemExit, match=rf"^classit: error: task 'reading' is in {tmp_path / 'results'} but not in "
                                         rf"{tmp_path / 'a'}$"):
        main(["compare", str(tmp_path / "a"), str(tmp_path / "results")])
    report = tmp_path / "results/demo/main/zero_shot/causal/blimp/blimp_filtered/best_temperature_report.txt"
    report.write_text(report.read_text().replace("75.00\n\n", "n/a\n\n", 1))
    with pytest.raises(SystemExit, match=r"^classit: error: .*best_temperature_report.txt:4: expected a number, got 'n/a'$"):
        main(["compare", str(tmp_path / "results"), str(tmp_path / "results")])
    (tmp_path / "a" / "predictions" / "wug.jsonl").write_text('{"uid": "w", "prob": 0.5}\n{"uid": \n')
    with pytest.raises(SystemExit, match=r"^classit: error: .*wug.jsonl:2: malformed JSON"):
        main(["compare", str(tmp_path / "a"), str(tmp_path / "a")])


@pytest.mark.parametrize("headline", ["official", "corrected"])
def test_corrected_numbers_of_a_tokenizer_without_bos_stand_beside_the_official(data_dir, tmp_path, capsys, headline):
    """A tokenizer without BOS: the official number is compared with the pipeline's, whichever headline evaluate
    wrote, and the corrected one (BOS prepended) is a row of its own beside it."""
    from classit.eval.evaluate import with_headline

    write_classit(tmp_path / "a", data_dir)
    path = tmp_path / "a" / "summary.json"
    summary = json.loads(path.read_text())
    summary["blimp"]["corrected"] = {"rule": "each text after a prepended <|endoftext|>", "macro": 100.0, "ties": 0,
                                     "by_uid": {"adjunct_island": 100.0}, "strict": {"macro": 100.0}, "items": N}
    summary["wug"]["corrected"] = {"macro": 70.0, "rho": 70.0, "by_uid": {"wug_adj_nominalization": 70.0}, "items": 2}
    folders = {task: {"folder": s.pop("folder")} for task, s in summary.items() if "folder" in s}  # as evaluate adds it
    path.write_text(json.dumps({task: {**with_headline(s, headline), **folders.get(task, {})}
                                for task, s in summary.items()}))
    write_pipeline(tmp_path / "results", data_dir)
    main(["compare", str(tmp_path / "a"), str(tmp_path / "results")])
    out = capsys.readouterr().out
    rows = compare(str(tmp_path / "a"), str(tmp_path / "results"))
    assert rows["blimp", "average"] == (50.0, 75.0, 25.0) and rows["blimp", "strict (ties wrong)"] == (25.0, None, None)
    assert rows["blimp", "uid/adjunct_island"] == (50.0, 75.0, 25.0)
    assert rows["blimp", "corrected (BOS prepended)"] == (100.0, None, None)
    assert rows["wug", "average"][0] == pytest.approx(0.645332) and rows["wug", "corrected (BOS prepended)"][0] == 0.7
    assert f"{'blimp':<16} {'corrected (BOS prepended)':<52}  100.0000" in out
