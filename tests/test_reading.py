"""Reading times: word surprisal and the regressions against a direct statsmodels computation."""

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
import torch
from transformers import AutoModelForCausalLM

from classit.eval.reading import evaluate_reading, load_reading, reading_scores, surprisals

MEASURES = ["RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound", "self_paced_reading_time",
            "ELAN", "LAN", "N400", "P600", "EPNP", "PNP"]
BASE = "Subtlex_log10 + length + context_length + Subtlex_log10:length + Subtlex_log10:context_length + length:context_length"
SPILL = ("Subtlex_log10 + length + context_length + prev_length + prev_surprisal + Subtlex_log10:length"
         " + Subtlex_log10:context_length + Subtlex_log10:prev_length + Subtlex_log10:prev_surprisal"
         " + length:context_length + length:prev_length + length:prev_surprisal + context_length:prev_length"
         " + context_length:prev_surprisal + prev_length:prev_surprisal")


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def csv_path(data_root):
    return data_root / "babylm-eval" / "reading" / "reading_data.csv"


def _gain(df, measure, rhs):
    base = smf.ols(f"{measure} ~ {rhs}", data=df).fit().rsquared
    full = smf.ols(f"{measure} ~ {rhs} + surprisal", data=df).fit().rsquared
    return (full - base) / (1 - base) * 100


def test_scores_match_a_direct_statsmodels_computation(csv_path):
    """Regressions on the real file, with surprisals that are a known function of the words."""
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


def test_surprisal_of_a_several_token_word(model, tokenizer):
    context, word = "The children were", "xylophonists"
    ctx, ids = tokenizer(context)["input_ids"], tokenizer(word, add_special_tokens=False)["input_ids"]
    assert len(ids) > 1
    full = torch.tensor([ctx + ids])
    with torch.no_grad():
        logp = model(full).logits[0].log_softmax(-1)
    expected = -sum(logp[len(ctx) - 1 + k, t].item() for k, t in enumerate(ids))
    assert surprisals(model, tokenizer, [context, float("nan")], [word, "x"]) == pytest.approx([expected, math.nan],
                                                                                             abs=1e-4, nan_ok=True)


def test_evaluate_reading_on_the_real_file(model, tokenizer, csv_path):
    summary, records = evaluate_reading(model, tokenizer, csv_path)
    assert summary["items"] == len(records) == 1726
    assert set(summary["gains"]) == set(MEASURES) and math.isfinite(summary["eye_tracking"])
    assert sum(r["prev_surprisal"] is None for r in records) == 206 and all(r["surprisal"] > 0 for r in records)
    assert records[320]["item"] == "None"  # the pipeline reads the missing item as the word "None"


def test_missing_column_is_named(csv_path, tmp_path):
    df = pd.read_csv(csv_path).drop(columns=["RTgopast"])
    df.to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(ValueError, match="'RTgopast'"):
        load_reading(tmp_path / "r.csv")
