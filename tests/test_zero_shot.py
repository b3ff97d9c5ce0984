"""Zero-shot tasks: loaders, aggregation as the BabyLM pipeline does it (a tie goes to the first option), the
evaluate command."""

import json
from collections import defaultdict

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from classit.eval.evaluate import evaluate
from classit.eval.scoring import score_plain
from classit.eval.summary import read_summary
from classit.eval.tasks import TASKS, Item
from classit.eval.zero_shot import evaluate_task, load_items, outcome, summarize
from helpers import write_jsonl

N_LINES = 8  # lines kept from each real file in the small subsets


@pytest.fixture(scope="module")
def small_eval_dir(data_root, tmp_path_factory):
    """The first lines of some real files of every task, laid out like BabyLM's full_eval folder."""
    src, out = data_root / "babylm-eval", tmp_path_factory.mktemp("small-eval")
    files = {"blimp_filtered": ["adjunct_island", "anaphor_gender_agreement", "ellipsis_n_bar_1", "npi_present_1"],
             "supplement_filtered": ["hypernym", "turn_taking"],
             "ewok_filtered": ["agent-properties", "social-relations", "spatial-relations"],
             "entity_tracking": ["regular", "ambiref", "move_contents"],
             "wug_adj_nominalization": ["wug_adj_nominalization"]}
    for folder, stems in files.items():
        (out / folder).mkdir()
        for stem in stems:
            lines = (src / folder / f"{stem}.jsonl").read_text().splitlines()
            # entity tracking: a spread of lines so that several numops subsets appear
            keep = lines[:: max(len(lines) // N_LINES, 1)][:N_LINES] if folder == "entity_tracking" else lines[:N_LINES]
            (out / folder / f"{stem}.jsonl").write_text("\n".join(keep) + "\n")
    return out


def _reference_by_uid(model, tokenizer, task, folder):
    """A plain loop: every option of every item scored on its own text, the first of the best options chosen (the
    pipeline's ``torch.max``), accuracy per subset."""
    totals, correct = defaultdict(int), defaultdict(int)
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if task in ("blimp", "supplement"):
                texts = conts = [r["sentence_good"], r["sentence_bad"]]
                uid = r["UID"] if task == "blimp" else path.stem
            elif task == "ewok":
                texts = [r["Context1"] + " " + r["Target1"], r["Context1"] + " " + r["Target2"]]
                conts, uid = [" " + r["Target1"], " " + r["Target2"]], r["Domain"]
            else:
                texts, conts = [r["input_prefix"] + o for o in r["options"]], r["options"]
                uid = f"{path.stem}_{r['numops']}_ops"
            scores = [score_plain(model, tokenizer, [t], [c])[0] for t, c in zip(texts, conts)]
            totals[uid] += 1
            correct[uid] += int(torch.tensor(scores).argmax()) == 0
    return {uid: 100.0 * correct[uid] / totals[uid] for uid in totals}


@pytest.mark.slow
@pytest.mark.parametrize("task", ["blimp", "supplement", "ewok", "entity_tracking"])
def test_per_uid_accuracy_matches_a_plain_loop(model, tokenizer, small_eval_dir, task):
    folder = TASKS[task].find(small_eval_dir)
    summary, records = evaluate_task(model, tokenizer, task, folder, batch_size=16)
    assert summary["by_uid"] == pytest.approx(_reference_by_uid(model, tokenizer, task, folder))
    assert len(records) == summary["items"] and all(len(r["scores"]) >= 2 for r in records)


def test_a_tie_goes_to_the_first_option_and_the_strict_score_counts_it_wrong():
    """The official pipeline takes the first of equal scores (``torch.max``): option 0, the correct one, wins a tie
    with it (this test asserted the opposite rule, ties wrong, before the official rule became the headline)."""
    assert outcome([-3.0, -3.0]) == (True, True)
    assert outcome([-1.0, -3.0, -1.0]) == (True, True)
    assert outcome([-3.0, -1.0, -1.0]) == (False, True)  # a tie among wrong options stays wrong
    assert outcome([-1.0, -2.0]) == (True, False)
    items = [Item("a", ["x", "y"], ["x", "y"], "f:1"), Item("b", ["x", "y"], ["x", "y"], "f:2"),
             Item("b", ["x", "y"], ["x", "y"], "f:3")]
    summary = summarize("supplement", items, [[-5.0, -5.0], [-5.0, -5.0], [-1.0, -2.0]])  # two ties
    assert summary["macro"] == summary["by_uid"]["a"] == summary["by_uid"]["b"] == 100.0
    assert summary["strict"] == {"macro": 25.0, "by_uid": {"a": 0.0, "b": 50.0}} and summary["ties"] == 2


def test_entity_tracking_aggregation():
    """Accuracy per {file}_{numops}_ops, averaged within each file, then over the files."""
    spec = {"regular_0_ops": [1, 1, 1, 0], "regular_1_ops": [0, 0], "ambiref_0_ops": [1, 0], "move_contents_2_ops": [1]}
    items, scores = [], []
    for uid, outcomes in spec.items():
        for ok in outcomes:
            items.append(Item(uid, ["a"] * 5, ["a"] * 5, "f:1"))
            scores.append([0.0, -1, -2, -3, -4] if ok else [-1.0, 0, -2, -3, -4])
    summary = summarize("entity_tracking", items, scores)
    assert summary["by_uid"] == {"ambiref_0_ops": 50.0, "move_contents_2_ops": 100.0,
                                 "regular_0_ops": 75.0, "regular_1_ops": 0.0}
    assert summary["by_file"] == {"ambiref": 50.0, "move_contents": 100.0, "regular": 37.5}
    assert summary["macro"] == pytest.approx((50 + 100 + 37.5) / 3)


def test_blimp_groups_and_fast_folder_names(data_root, tmp_path):
    assert TASKS["blimp"].find(data_root / "babylm-eval-fast").name == "blimp_fast"
    assert TASKS["wug"].find(data_root / "babylm-eval-fast") is None
    write_jsonl(tmp_path / "x.jsonl", [{"sentence_good": "A b.", "sentence_bad": "B a.", "UID": "u",
                                         "field": "syntax_semantics", "linguistics_term": "t"}])
    items = load_items("blimp", tmp_path)
    summary = summarize("blimp", items, [[-1.0, -2.0]])
    assert summary["by_field"] == {"syntax/semantics": 100.0} and summary["by_linguistics_term"] == {"t": 100.0}


def test_bad_lines_name_file_and_line(tmp_path):
    good = json.dumps({"sentence_good": "A b.", "sentence_bad": "B a."})
    (tmp_path / "s.jsonl").write_text(good + "\n{not json\n")
    with pytest.raises(ValueError, match=r"s\.jsonl:2: malformed JSON"):
        load_items("supplement", tmp_path)
    (tmp_path / "s.jsonl").write_text(good + "\n\n" + json.dumps({"sentence_good": "A b."}) + "\n")
    with pytest.raises(ValueError, match=r"s\.jsonl:3: missing field 'sentence_bad'"):
        load_items("supplement", tmp_path)


@pytest.mark.slow
@pytest.mark.full_data("the real wug file (babylm-eval/wug_adj_nominalization, 200 items)")
def test_wug_rho_matches_scipy_on_the_real_file(model, tokenizer, data_root):
    folder = data_root / "babylm-eval" / "wug_adj_nominalization"
    summary, records = evaluate_task(model, tokenizer, "wug", folder)
    rows = [json.loads(line) for line in (folder / "wug_adj_nominalization.jsonl").read_text().splitlines()]
    texts = [t for r in rows for t in r["sentences"].split("\t")]
    scores = torch.tensor(score_plain(model, tokenizer, texts, texts)).view(-1, 2)
    probs = scores.softmax(1)[:, 0].tolist()  # float32, as the pipeline does
    ratios = [r["ratio"] for r in rows]
    assert [r["prob"] for r in records] == pytest.approx(probs, abs=1e-4)
    assert summary["rho"] == pytest.approx(100 * spearmanr([r["prob"] for r in records], ratios).statistic)
    # a random model saturates many probabilities near 1 in float32, so ranks may differ by a hair
    assert summary["rho"] == pytest.approx(100 * spearmanr(probs, ratios).statistic, abs=2.0)
    assert summary["items"] == 200


def test_wug_rule_against_a_direct_computation():
    """rho = Spearman(softmax of the two option sums, human ratio), kept unrounded (×100) to four decimals."""
    sums = [[-10.0 - 0.3 * k, -10.0 - 0.1 * ((7 * k) % 11)] for k in range(40)]
    ratios = [((5 * k) % 13) / 13 for k in range(40)]  # with ties, as the real ratios have
    items = [Item("wug_adj_nominalization", ["a", "b"], ["a", "b"], f"f:{k}", ratio=r) for k, r in enumerate(ratios)]
    summary = summarize("wug", items, sums)
    probs = np.array([1 / (1 + np.exp(b - a)) for a, b in sums])

    def ranks(x):  # average ranks for ties
        x = np.asarray(x)
        return np.array([(x < v).sum() + ((x == v).sum() + 1) / 2 for v in x])

    rho = np.corrcoef(ranks(probs), ranks(ratios))[0, 1]
    assert summary["rho"] / 100 == pytest.approx(rho, abs=1e-4) and summary["macro"] == summary["rho"]
    assert round(summary["rho"], 6) != round(summary["rho"], 2)  # not rounded like the official report


def test_evaluate_writes_summary_and_predictions(tiny_model_dir, small_eval_dir, tmp_path, capsys):
    out = tmp_path / "out"
    summary = evaluate(model=str(tiny_model_dir), data_dir=str(small_eval_dir), tasks="blimp,ewok,wug,reading", out=str(out),
                       batch_size=32, device="cpu")
    written = json.loads((out / "summary.json").read_text())
    assert written["blimp"]["macro"] == pytest.approx(summary["blimp"]["macro"])
    assert set(written["blimp"]["by_uid"]) == {"adjunct_island", "anaphor_gender_agreement", "ellipsis_n_bar_1",
                                               "npi_present_1"}
    assert "by_field" in written["blimp"] and "ties" in written["ewok"] and "rho" in written["wug"]
    assert "skipped" in written["reading"]
    lines = (out / "predictions" / "ewok.jsonl").read_text().splitlines()
    assert len(lines) == written["ewok"]["items"] and len(json.loads(lines[0])["scores"]) == 2
    assert "blimp" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown tasks"):
        evaluate(model=str(tiny_model_dir), data_dir=str(small_eval_dir), tasks="blimp,glue", out=str(out))


def test_evaluate_command_line(tiny_model_dir, small_eval_dir, tmp_path):
    from classit.cli import main

    out = tmp_path / "cli"
    main(["evaluate", "--model", str(tiny_model_dir), "--data_dir", str(small_eval_dir), "--tasks", "blimp,ewok",
          "--out", str(out), "--device", "cpu"])
    written = read_summary(out / "summary.json").tasks
    assert set(written) == {"blimp", "ewok"} and 0 <= written["blimp"]["macro"] <= 100


def test_evaluate_without_data_stops_naming_the_folder(tiny_model_dir, small_eval_dir, tmp_path):
    from classit.cli import main

    for data_dir, expected in ((tmp_path / "nowhere", f"{tmp_path / 'nowhere'}: no such data folder"),
                               (small_eval_dir, f"{small_eval_dir}: no data for any of the tasks reading "
                                                "(looked for reading/reading_data.csv)")):
        with pytest.raises(SystemExit) as done:
            main(["evaluate", "--model", str(tiny_model_dir), "--data_dir", str(data_dir), "--tasks", "reading",
                  "--out", str(tmp_path / "out")])
        assert str(done.value.code).startswith(f"classit: error: {expected}"), done.value.code
    assert not (tmp_path / "out").exists()  # it stopped before loading the model or writing anything


def test_evaluate_a_folder_that_is_no_model_stops_naming_it(small_eval_dir, tmp_path):
    from classit.cli import main

    with pytest.raises(SystemExit) as done:
        main(["evaluate", "--model", str(tmp_path), "--data_dir", str(small_eval_dir), "--out", str(tmp_path / "o")])
    assert str(done.value.code) == f"classit: error: {tmp_path}: not a Hugging Face model folder (no config.json)"


def test_evaluate_batch_size_below_1_stops_before_loading(tmp_path):
    from classit.cli import main

    with pytest.raises(SystemExit) as done:
        main(["evaluate", "--model", str(tmp_path / "no-model"), "--batch_size", "0"])
    assert done.value.code == "classit: error: --batch_size: texts per forward pass, at least 1, not 0"


@pytest.mark.slow
def test_evaluate_without_a_data_folder_scores_the_bundled_fast_sets(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """No --data_dir, no CLASSIT_DATA_DIR: the bundled sample's fast BLiMP and EWoK, found and named."""
    from classit.cli import main

    monkeypatch.delenv("CLASSIT_DATA_DIR", raising=False)
    monkeypatch.setenv("CLASSIT_CACHE_DIR", str(tmp_path / "cache"))
    main(["evaluate", "--model", str(tiny_model_dir), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    sample = next((tmp_path / "cache").glob("sample-*"))
    assert f"data: no babylm-eval in {sample}: scoring the fast sets of {sample / 'babylm-eval-fast'}" in out
    assert f"data: {sample / 'babylm-eval-fast'}: blimp (blimp_fast), ewok (ewok_fast)\n" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["blimp"]["items"] > 0 and summary["ewok"]["items"] > 0
    assert summary["blimp"]["folder"] == str(sample / "babylm-eval-fast" / "blimp_fast")
    assert "skipped" in summary["supplement"]
