"""Reading times and ERPs: word surprisal from the model, then the BabyLM pipeline's OLS regressions."""

import math
from pathlib import Path

import pandas as pd
import statsmodels.formula.api as smf

from classit.eval.scoring import Encoded, model_positions, overrun, score_items
from classit.files import read_csv

EYE_TRACKING = ["RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound"]
MEASURES = EYE_TRACKING + ["self_paced_reading_time", "ELAN", "LAN", "N400", "P600", "EPNP", "PNP"]
PREDICTORS = ["Subtlex_log10", "length", "context_length"]
RULES = ("official", "ids")  # how a word of several tokens is scored (see surprisals, surprisals_ids)
REQUIRED = ["item", "word", "prev_item", "prev_word", "prev_length", *PREDICTORS, *MEASURES]


def load_reading(path: str | Path) -> pd.DataFrame:
    """The reading CSV, checked for every column the evaluation needs. As in the pipeline, an empty
    ``item`` is the word "None" (which pandas reads as missing)."""
    df = read_csv(path, dtype={"item": str})
    for column in REQUIRED:
        if column not in df.columns:
            raise ValueError(f"{path}:1: reading CSV lacks the required column {column!r} in its header")
    df["item"] = df["item"].fillna("None")
    return df


def check_length(config, tokenizer, path: str | Path, df: pd.DataFrame) -> None:
    """Rows whose model input (the context with BOS, then the word's tokens but the last) is longer than the model's
    positions: :func:`classit.eval.scoring.overrun` (no score with learned positions, a rotary model scored past
    them)."""
    if (positions := model_positions(config)) is None:
        return
    longer = []
    for context, word in (("item", "word"), ("prev_item", "prev_word")):
        rows = [i for i, c in enumerate(df[context]) if isinstance(c, str)]
        contexts = tokenizer([df[context].iloc[i] for i in rows])["input_ids"]
        words = tokenizer([str(df[word].iloc[i]) for i in rows], add_special_tokens=False)["input_ids"]
        longer += [(i, context, word, n) for i, c, w in zip(rows, contexts, words)
                   if (n := len(c) + len(w) - 1) > positions[1]]
    if longer:
        i, context, word, n = longer[0]
        overrun(config, f"{path}:{i + 2}: {context} and {word} are {n} tokens of model input", len(longer),
                "the context", "reading", "such")


def surprisals(model, tokenizer, contexts: list, words: list, batch_size: int = 64) -> list[float]:
    """−log p(word | context) in nats by the official pipeline's rule; NaN where the context is missing.

    The word is tokenized alone (no special tokens, no leading space). Its first token is read after
    the context (tokenized with BOS); for each further token the context STRING grows by the decoded
    previous token and is tokenized again from scratch, and the token is read as the first id of its
    own decoded text, re-tokenized. All (context, token) pairs of all rows are scored together, each
    distinct context once, batched by length.
    """
    rows = [i for i, c in enumerate(contexts) if isinstance(c, str)]
    word_ids = tokenizer([str(words[i]) for i in rows], add_special_tokens=False)["input_ids"]
    pieces = iter(tokenizer.batch_decode([[t] for ids in word_ids for t in ids]))
    pieces = [[next(pieces) for _ in ids] for ids in word_ids]  # each token decoded alone
    later = [p for row in pieces for p in row[1:]]
    later_ids = iter(tokenizer(later, add_special_tokens=False)["input_ids"] if later else [])
    steps = []  # (row, context string, target id)
    for i, ids, row in zip(rows, word_ids, pieces):
        context = contexts[i]
        for k, piece in enumerate(row):
            steps.append((i, context, ids[0] if k == 0 else next(later_ids)[0]))
            context += piece
    by_context = {}  # context string -> {target id: index of its option}
    for _, context, target in steps:
        by_context.setdefault(context, {}).setdefault(target, len(by_context[context]))
    context_ids = tokenizer(list(by_context))["input_ids"]
    items = [[Encoded(ids + [t], len(ids)) for t in targets] for ids, targets in zip(context_ids, by_context.values())]
    scores = dict(zip(by_context, score_items(model, items, batch_size)))
    out = [0.0 if isinstance(c, str) else math.nan for c in contexts]
    for i, context, target in steps:
        out[i] -= scores[context][by_context[context][target]]
    return out


def surprisals_ids(model, tokenizer, contexts: list, words: list, batch_size: int = 64) -> list[float]:
    """−log p(word | context) as the conditional product over the concatenated token ids (context with
    BOS, then the word's own tokens); NaN where the context is missing."""
    rows = [i for i, c in enumerate(contexts) if isinstance(c, str)]
    ctx = tokenizer([contexts[i] for i in rows])["input_ids"]
    word = tokenizer([str(words[i]) for i in rows], add_special_tokens=False)["input_ids"]
    items = [[Encoded(c + w, len(c))] for c, w in zip(ctx, word)]
    out = [math.nan] * len(contexts)
    for i, [score] in zip(rows, score_items(model, items, batch_size)):
        out[i] = -score
    return out


def relative_gain(df: pd.DataFrame, measure: str, predictors: list[str], surprisal: str) -> float:
    """Relative R² gain (a fraction) of adding ``surprisal`` to ``measure ~ predictors + their pairwise
    interactions``."""
    pairs = [f"{a}:{b}" for i, a in enumerate(predictors) for b in predictors[i + 1:]]
    formula = f"{measure} ~ " + " + ".join(predictors + pairs)
    base = smf.ols(formula, data=df[[measure, *predictors]].dropna()).fit().rsquared
    full = smf.ols(formula + f" + {surprisal}", data=df[[surprisal, measure, *predictors]].dropna()).fit().rsquared
    return (full - base) / (1 - base)


def reading_scores(df: pd.DataFrame) -> dict:
    """Eye-tracking and self-paced reading scores from a frame with ``surprisal`` and ``prev_surprisal``:
    the gain for every measure, the spillover gain (previous word too) and the correlations with surprisal."""
    gains = {m: relative_gain(df, m, PREDICTORS, "surprisal") * 100 for m in MEASURES}  # %
    spillover = {m: relative_gain(df, m, PREDICTORS + ["prev_length", "prev_surprisal"], "surprisal") * 100
                 for m in MEASURES}
    return {
        "eye_tracking": sum(gains[m] for m in EYE_TRACKING) / len(EYE_TRACKING),
        "self_paced": spillover["self_paced_reading_time"],
        "gains": gains,
        "spillover_gains": spillover,
        "correlations": df[["surprisal", *MEASURES]].corr()["surprisal"].drop("surprisal").to_dict(),
    }


def evaluate_reading(model, tokenizer, path: str | Path, batch_size: int = 64,
                     rule: str = "official") -> tuple[dict, list[dict]]:
    """Surprisals of every word and previous word, then :func:`reading_scores`: ``(summary, predictions)``.
    ``rule``: ``official`` (the BabyLM pipeline's re-tokenized contexts) or ``ids`` (concatenated ids)."""
    if rule not in RULES:
        raise ValueError(f"unknown reading rule {rule!r}; choose from {', '.join(RULES)}")
    score = surprisals if rule == "official" else surprisals_ids
    df = load_reading(path)
    check_length(model.config, tokenizer, path, df)
    # words and previous words in one call: most (context, word) pairs occur as both
    both = score(model, tokenizer, list(df["item"]) + list(df["prev_item"]), list(df["word"]) + list(df["prev_word"]),
                 batch_size)
    df["surprisal"], df["prev_surprisal"] = both[:len(df)], both[len(df):]
    summary = {"rule": rule, **reading_scores(df), "items": len(df)}
    records = [{"row": int(i), "item": item, "word": word, "surprisal": s, "prev_surprisal": None if math.isnan(p) else p}
               for i, item, word, s, p in zip(df.index, df["item"], df["word"], df["surprisal"], df["prev_surprisal"])]
    return summary, records
