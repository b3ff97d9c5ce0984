"""Reading times and ERPs: word surprisal from the model, then the BabyLM pipeline's OLS regressions."""

import math
from pathlib import Path

import pandas as pd
import statsmodels.formula.api as smf

from classit.eval.scoring import Encoded, score_items

EYE_TRACKING = ["RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound"]
MEASURES = EYE_TRACKING + ["self_paced_reading_time", "ELAN", "LAN", "N400", "P600", "EPNP", "PNP"]
PREDICTORS = ["Subtlex_log10", "length", "context_length"]
REQUIRED = ["item", "word", "prev_item", "prev_word", "prev_length", *PREDICTORS, *MEASURES]


def load_reading(path: str | Path) -> pd.DataFrame:
    """The reading CSV, checked for every column the evaluation needs. As in the pipeline, an empty
    ``item`` is the word "None" (which pandas reads as missing)."""
    df = pd.read_csv(path, dtype={"item": str})
    for column in REQUIRED:
        if column not in df.columns:
            raise ValueError(f"{path}: reading CSV lacks the required column {column!r}")
    df["item"] = df["item"].fillna("None")
    return df


def surprisals(model, tokenizer, contexts: list, words: list, batch_size: int = 64) -> list[float]:
    """−log p(word | context) in nats; NaN where the context is missing.

    As the pipeline's causal backend does: the context is tokenized with BOS, the word on its own
    (no special tokens, no leading space), and the word's tokens are scored one after another.
    """
    rows = [i for i, c in enumerate(contexts) if isinstance(c, str)]
    ctx = tokenizer([contexts[i] for i in rows])["input_ids"]
    word = tokenizer([str(words[i]) for i in rows], add_special_tokens=False)["input_ids"]
    items = [[Encoded(c + w, len(c))] for c, w in zip(ctx, word)]
    out = [math.nan] * len(contexts)
    for i, [score] in zip(rows, score_items(model, items, batch_size)):
        out[i] = -score
    return out


def _gain(df: pd.DataFrame, measure: str, predictors: list[str], surprisal: str) -> float:
    """Relative R² gain (%) of adding ``surprisal`` to ``measure ~ predictors + their pairwise interactions``."""
    pairs = [f"{a}:{b}" for i, a in enumerate(predictors) for b in predictors[i + 1:]]
    formula = f"{measure} ~ " + " + ".join(predictors + pairs)
    base = smf.ols(formula, data=df[[measure, *predictors]].dropna()).fit().rsquared
    full = smf.ols(formula + f" + {surprisal}", data=df[[surprisal, measure, *predictors]].dropna()).fit().rsquared
    return (full - base) / (1 - base) * 100


def reading_scores(df: pd.DataFrame) -> dict:
    """Eye-tracking and self-paced reading scores from a frame with ``surprisal`` and ``prev_surprisal``:
    the gain for every measure, the spillover gain (previous word too) and the correlations with surprisal."""
    gains = {m: _gain(df, m, PREDICTORS, "surprisal") for m in MEASURES}
    spillover = {m: _gain(df, m, PREDICTORS + ["prev_length", "prev_surprisal"], "surprisal") for m in MEASURES}
    return {
        "eye_tracking": sum(gains[m] for m in EYE_TRACKING) / len(EYE_TRACKING),
        "self_paced": spillover["self_paced_reading_time"],
        "gains": gains,
        "spillover_gains": spillover,
        "correlations": df[["surprisal", *MEASURES]].corr()["surprisal"].drop("surprisal").to_dict(),
    }


def evaluate_reading(model, tokenizer, path: str | Path, batch_size: int = 64) -> tuple[dict, list[dict]]:
    """Surprisals of every word and previous word, then :func:`reading_scores`: ``(summary, predictions)``."""
    df = load_reading(path)
    df["surprisal"] = surprisals(model, tokenizer, list(df["item"]), list(df["word"]), batch_size)
    df["prev_surprisal"] = surprisals(model, tokenizer, list(df["prev_item"]), list(df["prev_word"]), batch_size)
    summary = reading_scores(df)
    summary["items"] = len(df)
    records = [{"row": int(i), "item": item, "word": word, "surprisal": s, "prev_surprisal": None if math.isnan(p) else p}
               for i, item, word, s, p in zip(df.index, df["item"], df["word"], df["surprisal"], df["prev_surprisal"])]
    return summary, records
