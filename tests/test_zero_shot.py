"""Zero-shot tasks: loaders, aggregation as the BabyLM pipeline does it (a tie goes to the first option), the
evaluate command."""

import json
import re
import shutil
from collections import defaultdict

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from classit.eval.evaluate import evaluate
from classit.eval.scoring import score_plain
from classit.eval.summary import read_summary
from classit.eval.tasks import TASKS, Item
from classit.eval.zero_shot import encoded_items, evaluate_task, load_items, outcome, summarize
from helpers import error_line, fit, write_jsonl

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
    assert error_line(["evaluate", "--model", str(tiny_model_dir), "--data_dir", str(small_eval_dir), "--tasks",
                       "blimp,glue", "--out", str(out)]) == f"unknown tasks ['glue']; choose from {', '.join(TASKS)}"


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


def test_evaluate_calls_into_one_folder_keep_each_others_results(tiny_model_dir, small_eval_dir, tmp_path):
    """A second call with another task into the same --out adds its task to summary.json beside the first's (its
    predictions still listed); another model or data folder there stops, naming the folder and what it holds."""
    from classit.cli import main

    out, model = tmp_path / "out", tiny_model_dir.resolve()
    args = ["evaluate", "--data_dir", str(small_eval_dir), "--out", str(out), "--device", "cpu"]
    main([*args, "--model", str(model), "--tasks", "blimp"])
    blimp = read_summary(out / "summary.json").tasks["blimp"]
    main([*args, "--model", str(model), "--tasks", "ewok"])
    tasks = read_summary(out / "summary.json").tasks
    assert list(tasks) == ["blimp", "ewok"] and tasks["blimp"] == blimp and tasks["ewok"]["items"] == 24
    assert sorted(p.name for p in (out / "predictions").iterdir()) == ["blimp.jsonl", "ewok.jsonl"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta == {"model": str(model), "data_dir": str(small_eval_dir.resolve())}

    other_model, other_data = tmp_path / "other-model", tmp_path / "other-data"
    shutil.copytree(model, other_model)
    shutil.copytree(small_eval_dir, other_data)
    written = (out / "summary.json").read_text()
    assert error_line([*args, "--model", str(other_model), "--tasks", "ewok"]) == (
        f"{out} (--out): holds the results of model {model} (meta.json), not of model {other_model}; "
        "give another folder")
    assert error_line(["evaluate", "--model", str(model), "--data_dir", str(other_data), "--out", str(out),
                       "--tasks", "ewok"]) == (
        f"{out} (--out): holds the results of data_dir {small_eval_dir.resolve()} (meta.json), not of data_dir "
        f"{other_data}; give another folder")
    (out / "meta.json").unlink()  # written before meta.json was: whose results they are is unknown
    assert error_line([*args, "--model", str(model), "--tasks", "ewok"]) == (
        f"{out} (--out): holds results of a model no meta.json there names; give another folder")
    assert (out / "summary.json").read_text() == written


def test_evaluate_batch_too_big_for_free_memory_stops_naming_a_size_that_fits(tokenizer, small_eval_dir, tmp_path):
    """2,000 texts at once with a vocabulary of 2^21 (16 MiB of log-probabilities a token, hundreds of GiB in all):
    refused before any scoring, in one line naming --batch_size and a size whose estimate fits in the memory free."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from classit.train.memory import GIB, free_memory, scoring_memory

    config = LlamaConfig(vocab_size=2 ** 21, hidden_size=2, intermediate_size=2, num_hidden_layers=1,
                         num_attention_heads=1, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "wide")
    tokenizer.save_pretrained(tmp_path / "wide")
    lines = (small_eval_dir / "blimp_filtered" / "adjunct_island.jsonl").read_text().splitlines(True)
    (tmp_path / "data" / "blimp_filtered").mkdir(parents=True)
    (tmp_path / "data" / "blimp_filtered" / "adjunct_island.jsonl").write_text(
        "".join((lines * (1000 // len(lines) + 1))[:1000]))  # 1,000 pairs
    line = error_line(["evaluate", "--model", str(tmp_path / "wide"), "--data_dir", str(tmp_path / "data"),
                       "--tasks", "blimp", "--batch_size", "100000", "--out", str(tmp_path / "out"), "--device", "cpu"])
    found = re.fullmatch(r"--batch_size 100000: 2000 texts of up to (\d+) tokens need ≈([\d.]+) GiB to score at "
                         r"once, more than the ([\d.]+) GiB free on cpu; --batch_size (\d+) fits", line)
    assert found, line
    tokens, fits = int(found[1]), int(found[4])
    assert float(found[2]) == pytest.approx(scoring_memory(config, 2000, tokens) / GIB, abs=0.06)
    assert 1 <= fits < 2000 and scoring_memory(config, fits, tokens) <= free_memory(torch.device("cpu")) * 1.1
    assert not (tmp_path / "out" / "summary.json").exists()


@pytest.mark.slow
def test_evaluate_a_lightning_checkpoint_scores_as_its_export(tiny_runs, small_eval_dir, tmp_path):
    """``evaluate --model RUN/checkpoints/last.ckpt`` of a real tiny run: the same scores, item by item, as the
    evaluation of ``classit export`` of that checkpoint."""
    from classit.cli import main

    out, rc = fit(tiny_runs.config("ckpt"))
    assert rc == 0, out
    ckpt = tiny_runs.run_dir("ckpt") / "checkpoints" / "last.ckpt"
    main(["export", "--ckpt", str(ckpt), "--out", str(tmp_path / "hf")])
    for model, folder in ((ckpt, "from-ckpt"), (tmp_path / "hf", "from-export")):
        main(["evaluate", "--model", str(model), "--data_dir", str(small_eval_dir), "--tasks", "blimp,ewok",
              "--out", str(tmp_path / folder), "--device", "cpu"])
    from_ckpt, from_export = (read_summary(tmp_path / f / "summary.json").tasks for f in ("from-ckpt", "from-export"))
    assert {t: from_ckpt[t]["by_uid"] for t in from_ckpt} == {t: from_export[t]["by_uid"] for t in from_export}
    for task in ("blimp", "ewok"):
        rows = [[json.loads(line)["scores"] for line in (tmp_path / f / "predictions" / f"{task}.jsonl").open()]
                for f in ("from-ckpt", "from-export")]
        assert len(rows[0]) == from_ckpt[task]["items"] > 0
        np.testing.assert_allclose(rows[0], rows[1], rtol=0, atol=1e-5)
    assert len({round(s, 3) for row in rows[0] for s in row}) > 10  # trained scores that differ from item to item


def test_evaluate_a_file_of_a_model_folder_says_what_model_takes(tiny_model_dir, small_eval_dir, tmp_path):
    """``--model FOLDER/model.safetensors``: not called a damaged checkpoint, but told what --model takes."""
    weights = tiny_model_dir / "model.safetensors"
    assert error_line(["evaluate", "--model", str(weights), "--data_dir", str(small_eval_dir), "--tasks", "blimp",
                       "--out", str(tmp_path / "out")]) == (
        f"{weights} (--model): a file, not a model; --model takes a Hugging Face folder (an export: config.json, "
        "weights and tokenizer) or a Lightning checkpoint (.ckpt)")
    assert not (tmp_path / "out").exists()


def test_a_set_is_tokenized_once_per_tokenizer_and_files(tokenizer, tmp_path):
    """Checkpoints of one run (one tokenizer, each loaded from its own folder) share a set's encodings; another
    tokenizer, or a changed file, encodes it again, and each gives what encoding it afresh gives."""
    from classit.data.tokenizer import load_tokenizer

    folder = tmp_path / "blimp"
    write_jsonl(folder / "a.jsonl", [{"sentence_good": "The cat sleeps.", "sentence_bad": "The cat sleep.",
                                      "field": "f", "linguistics_term": "t", "UID": "a"}])
    first, second = tmp_path / "one", tmp_path / "two"
    tokenizer.save_pretrained(first)
    tokenizer.save_pretrained(second)
    one = encoded_items(load_tokenizer(first), "blimp", folder)
    assert encoded_items(load_tokenizer(second), "blimp", folder) is one
    other = load_tokenizer(second)
    other.add_tokens(["cat sleeps"])
    assert encoded_items(other, "blimp", folder)[1][0][0].ids != one[1][0][0].ids
    write_jsonl(folder / "a.jsonl", [{"sentence_good": "A dog runs.", "sentence_bad": "A dog run.", "field": "f",
                                      "linguistics_term": "t", "UID": "a"}])
    again = encoded_items(load_tokenizer(first), "blimp", folder)
    fresh = tokenizer(["A dog runs.", "A dog run."])["input_ids"]
    assert again is not one and [o.ids for o in again[1][0]] == fresh
