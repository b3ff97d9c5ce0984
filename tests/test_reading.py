"""Reading times: word surprisal and the regressions against a direct statsmodels computation."""

import json
import math
import random
import shutil

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from classit.eval.reading import evaluate_reading, load_reading, reading_scores, surprisals, surprisals_ids
from helpers import error_line

MEASURES = ["RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound", "self_paced_reading_time",
            "ELAN", "LAN", "N400", "P600", "EPNP", "PNP"]
BASE = "Subtlex_log10 + length + context_length + Subtlex_log10:length + Subtlex_log10:context_length + length:context_length"
SPILL = ("Subtlex_log10 + length + context_length + prev_length + prev_surprisal + Subtlex_log10:length"
         " + Subtlex_log10:context_length + Subtlex_log10:prev_length + Subtlex_log10:prev_surprisal"
         " + length:context_length + length:prev_length + length:prev_surprisal + context_length:prev_length"
         " + context_length:prev_surprisal + prev_length:prev_surprisal")


@pytest.fixture(scope="module")
def one_layer_model(tokenizer):
    """A random one-layer LLaMA: the literal loop below runs ~3,000 forwards, each mostly Python overhead."""
    torch.manual_seed(1)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, bos_token_id=tokenizer.bos_token_id)
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def csv_path(data_root):
    return data_root / "babylm-eval" / "reading" / "reading_data.csv"


def _gain(df, measure, rhs):
    base = smf.ols(f"{measure} ~ {rhs}", data=df).fit().rsquared
    full = smf.ols(f"{measure} ~ {rhs} + surprisal", data=df).fit().rsquared
    return (full - base) / (1 - base) * 100


@pytest.mark.slow
def test_scores_match_a_direct_statsmodels_computation(csv_path):
    """Regressions on the reading CSV, with surprisals that are a known function of the words."""
    df = load_reading(csv_path)
    rng = np.random.default_rng(0)
    df["surprisal"] = df["word"].str.len() + rng.normal(0, 1, len(df))
    df["prev_surprisal"] = np.where(df["prev_item"].isna(), np.nan, rng.normal(5, 1, len(df)))
    scores = reading_scores(df)
    gains = {m: _gain(df[[m, "surprisal", "Subtlex_log10", "length", "context_length"]].dropna(), m, BASE)
             for m in MEASURES}
    spill = _gain(df[["self_paced_reading_time", "surprisal", "Subtlex_log10", "length", "context_length",
                      "prev_length", "prev_surprisal"]].dropna(), "self_paced_reading_time", SPILL)
    assert scores["gains"] == pytest.approx(gains)
    assert scores["eye_tracking"] == pytest.approx(np.mean([gains[m] for m in MEASURES[:4]]))
    assert scores["self_paced"] == pytest.approx(spill)
    corr = {m: np.corrcoef(*df[["surprisal", m]].dropna().to_numpy().T)[0, 1] for m in MEASURES}
    assert scores["correlations"] == pytest.approx(corr)


def _official_surprisal(model, tokenizer, context, word):
    """The BabyLM pipeline's rule, literally: one forward per token of the word, the context string
    extended by the decoded previous token and tokenized again, probabilities multiplied."""
    def p_next(text, token_text=None, token_id=None):
        with torch.no_grad():
            logits = model(**tokenizer(text, return_tensors="pt"), use_cache=False, logits_to_keep=1).logits[0, -1]
        if token_id is None:
            token_id = tokenizer(token_text, add_special_tokens=False)["input_ids"][0]
        return torch.softmax(logits, -1)[token_id].item()

    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    probs = [p_next(context, token_id=ids[0])]
    context += tokenizer.decode(ids[0])
    for token in ids[1:]:
        piece = tokenizer.decode(token)
        probs.append(p_next(context, token_text=piece))
        context += piece
    return -math.log(np.prod(probs))


@pytest.mark.slow
@pytest.mark.full_data("the real reading CSV (babylm-eval/reading, 1,726 words)")
def test_official_rule_equals_a_literal_loop_on_every_row(one_layer_model, tokenizer, csv_path):
    model = one_layer_model
    summary, records = evaluate_reading(model, tokenizer, csv_path)
    df = load_reading(csv_path)
    pairs = {*zip(df["item"], df["word"]), *((c, w) for c, w in zip(df["prev_item"], df["prev_word"]) if isinstance(c, str))}
    literal = {(c, w): _official_surprisal(model, tokenizer, c, str(w)) for c, w in pairs}  # each distinct pair once
    assert summary["rule"] == "official" and len(records) == 1726
    assert [r["surprisal"] for r in records] == pytest.approx([literal[c, w] for c, w in zip(df["item"], df["word"])],
                                                              abs=1e-4)
    expected_prev = [None if not isinstance(c, str) else literal[c, w] for c, w in zip(df["prev_item"], df["prev_word"])]
    assert [r["prev_surprisal"] for r in records] == pytest.approx(expected_prev, abs=1e-4)
    ids_rule = surprisals_ids(model, tokenizer, list(df["item"]), list(df["word"]))
    assert sum(abs(a - r["surprisal"]) > 1e-4 for a, r in zip(ids_rule, records)) > 50  # the rules differ


def test_a_merge_across_the_boundary_changes_the_context(model, tokenizer, csv_path):
    """The official rule re-tokenizes the context string; the ids rule keeps the concatenated ids."""
    df = load_reading(csv_path)

    def merges(context, word):  # the context + first piece of the word tokenizes differently
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        return len(ids) > 1 and tokenizer(context + tokenizer.decode(ids[0]))["input_ids"] != tokenizer(context)["input_ids"] + ids[:1]

    context, word = next((c, w) for c, w in zip(df["item"], df["word"]) if merges(c, w))
    ctx, ids = tokenizer(context)["input_ids"], tokenizer(word, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = model(torch.tensor([ctx + ids])).logits[0].log_softmax(-1)
    concatenated = -sum(logp[len(ctx) - 1 + k, t].item() for k, t in enumerate(ids))
    assert surprisals_ids(model, tokenizer, [context, float("nan")], [word, "x"]) == pytest.approx(
        [concatenated, math.nan], abs=1e-4, nan_ok=True)
    official = surprisals(model, tokenizer, [context, float("nan")], [word, "x"])
    assert official == pytest.approx([_official_surprisal(model, tokenizer, context, word), math.nan], abs=1e-4,
                                     nan_ok=True)
    assert abs(official[0] - concatenated) > 1e-3


@pytest.mark.slow
@pytest.mark.full_data("the real reading CSV (babylm-eval/reading, 1,726 words)")
def test_evaluate_command_with_the_ids_rule_on_the_real_file(model, tokenizer, tiny_model_dir, csv_path, tmp_path):
    from classit.cli import main

    (tmp_path / "data" / "reading").mkdir(parents=True)
    (tmp_path / "data" / "reading" / "reading_data.csv").symlink_to(csv_path)
    main(["evaluate", "--model", str(tiny_model_dir), "--data_dir", str(tmp_path / "data"), "--tasks", "reading",
          "--reading_rule", "ids", "--out", str(tmp_path / "out"), "--device", "cpu"])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["reading"]
    records = [json.loads(line) for line in (tmp_path / "out" / "predictions" / "reading.jsonl").read_text().splitlines()]
    assert summary["items"] == len(records) == 1726 and summary["rule"] == "ids"
    assert set(summary["gains"]) == set(MEASURES) and math.isfinite(summary["eye_tracking"])
    assert sum(r["prev_surprisal"] is None for r in records) == 206 and all(r["surprisal"] > 0 for r in records)
    assert records[320]["item"] == "None"  # the pipeline reads the missing item as the word "None"
    with pytest.raises(ValueError, match="unknown reading rule 'subwords'"):
        evaluate_reading(model, tokenizer, csv_path, rule="subwords")


def test_missing_column_is_named(csv_path, tmp_path):
    """``classit evaluate`` over a reading CSV without a column: one line naming the file, its header line and the
    column, before any task is scored (nothing written)."""
    bad = tmp_path / "data" / "reading" / "reading_data.csv"
    bad.parent.mkdir(parents=True)
    pd.read_csv(csv_path).drop(columns=["RTgopast"]).to_csv(bad, index=False)
    (tmp_path / "data" / "blimp_filtered").mkdir()
    shutil.copy(csv_path.parent.parent / "blimp_filtered" / "adjunct_island.jsonl", tmp_path / "data" / "blimp_filtered")
    assert error_line(["evaluate", "--model", str(tmp_path / "not-loaded"), "--data_dir", str(tmp_path / "data"),
                       "--tasks", "blimp,reading", "--out", str(tmp_path / "out")]) == (
        f"{bad}:1: reading CSV lacks the required column 'RTgopast' in its header")
    assert not (tmp_path / "out").exists()



def test_a_context_longer_than_the_model_stops_in_one_line(tokenizer, tmp_path):
    """A reading row whose context and word are longer than the model's positions: one line naming the file and
    the row's line, nothing written (an index error before)."""
    from helpers import model_folder, write_reading_csv

    sentences = ["the cat sat on the mat today", "a dog ran far away from the big red house near the old tree"]
    path = write_reading_csv(tmp_path / "data" / "reading" / "reading_data.csv", sentences, random.Random(0), rows=40)
    df = load_reading(path)
    lengths = [len(tokenizer(c)["input_ids"]) + len(tokenizer(w, add_special_tokens=False)["input_ids"]) - 1
               for c, w in zip(df["item"], df["word"])]
    first = next(i for i, n in enumerate(lengths) if n > 8)
    folder = model_folder("gpt2", tokenizer, tmp_path / "model", max_length=8)
    line = error_line(["evaluate", "--model", str(folder), "--data_dir", str(tmp_path / "data"), "--tasks", "reading",
                       "--out", str(tmp_path / "out")])
    assert line.startswith(f"{path}:{first + 2}: item and word are {lengths[first]} tokens of model input, more than "
                           "the model's n_positions 8; the official pipeline passes the context whole"), line
    assert not (tmp_path / "out" / "summary.json").exists()
