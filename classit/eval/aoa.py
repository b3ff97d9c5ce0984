"""Word age of acquisition (AoA) over a run's milestone checkpoints, as the BabyLM 2025 pipeline computes it.

Surprisal (``AoA_word/evaluation_functions.py``, causal backend, ``use_bos_only=False``): the text
``context.strip() + " " + word.strip()`` is tokenized once with the model's tokenizer (its special tokens, BOS
first); the surprisal is −log_softmax (nats, float32) summed over the tokens whose end offset is past the word's
first character. Score (``utils.py``, ``AoAEvaluator.compute_curve_fitness``): per word, a sigmoid fitted to every
(checkpoint, context) surprisal over log10(words seen + 1) gives the model's AoA where it crosses halfway between
a chance level and the word's lowest surprisal; a sigmoid over months 16–30 of the share of children producing
the word gives the child's AoA at 0.5; the score is Pearson's r between the two over the words where both exist.
The official chance level is log2(300,000), in bits, against surprisals in nats; the corrected score uses
ln(300,000).
"""

import functools
import hashlib
import re
import time
from collections import Counter
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from scipy.stats import pearsonr

from classit import layout
from classit.eval.curve_fit import crossing, fit_sigmoid
from classit.eval.scoring import Encoded, score_items
from classit.eval.tasks import AOA_SIZE
from classit.files import read_csv, read_json, write_csv, write_json
from classit.runtime import resolve_device
from classit.train.memory import check_scoring_memory

Rule = Literal["official", "nospace"]
SEPARATORS = {"official": " ", "nospace": ""}  # nospace: the word right after the context (not the official rule)
OFFICIAL_CHANCE = float(np.log2(300_000))  # bits, as the official code: the unit bug reproduced
CORRECTED_CHANCE = float(np.log(300_000))  # nats, the surprisals' unit
CORRECTION = ("chance level ln(300,000) nats instead of the official log2(300,000) bits: the surprisals are in nats "
              "(log_softmax), so the official threshold mixes units")
RECONSTRUCTED_NOTE = ("child AoA from cdi_human_reconstructed.csv, rebuilt from public Wordbank proportions, not the "
                      "official cdi_human.csv: its ages are about 1.2 months earlier, so correlations differ from the "
                      "leaderboard's")
AGES = [str(age) for age in range(16, 31)]
BOOTSTRAP, SEED = 1000, 0
MIN_MILESTONES = 4  # a 4-parameter sigmoid per word: fewer milestones leave it undetermined
TOKENIZER_FILES = ("tokenizer.json", "vocab", "merges")  # what maps text to ids (not settings such as is_local)
TOKENS_PER_TEXT = 32  # padded tokens a forward holds, per text of batch_size (CDI contexts: median 25 tokens)


def load_words(path: Path) -> list[tuple[str, list[str]]]:
    """The words of ``cdi_childes.json`` and their contexts, as the official ``load_eval`` with ``min_context=0``
    (words of one character left out)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such CDI word file (BabyLM's full_eval/aoa/cdi_childes.json)")
    data = read_json(path)
    return [(word, [c["context"] for c in entries]) for word, entries in data.items() if len(word) > 1]


def encode_words(tokenizer, pairs: list[tuple[str, str]], rule: Rule = "official", chunk: int = 2048) -> list[Encoded]:
    """Token ids of each (context, word) text, cut after the word's last token, and the word's first token."""
    texts = [context.strip() + SEPARATORS[rule] + word.strip() for context, word in pairs]
    encoded = []
    for start in range(0, len(texts), chunk):
        batch = tokenizer(texts[start:start + chunk], return_offsets_mapping=True)
        for text, (_, word), ids, offsets in zip(texts[start:start + chunk], pairs[start:start + chunk],
                                                 batch["input_ids"], batch["offset_mapping"]):
            begin = len(text) - len(word.strip())
            span = [i for i in range(1, len(ids)) if offsets[i][1] > begin]  # token 0 is never predicted
            if not span:
                encoded.append(Encoded(ids, len(ids)))  # nothing to score: surprisal 0, as the official sum
                continue
            if span != list(range(span[0], span[-1] + 1)):
                raise ValueError(f"the tokens of {word!r} in {text!r} are not contiguous")
            encoded.append(Encoded(ids[:span[-1] + 1], span[0]))  # later tokens (an EOS) cannot change the sum
    return encoded


def _batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices by length: at most ``batch_size`` texts and ``batch_size * TOKENS_PER_TEXT`` padded tokens a batch."""
    batches, current = [], []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if current and (len(current) == batch_size or (len(current) + 1) * lengths[i] > batch_size * TOKENS_PER_TEXT):
            batches.append(current)
            current = []
        current.append(i)
    return batches + [current] if current else batches


def surprisals(model, tokenizer, contexts: list[tuple[str, str]], rule: Rule = "official",
               batch_size: int = 256) -> list[float]:
    """Surprisal (nats) of each word after its context, for (context, word) pairs: texts sorted by length, one
    forward a batch (long texts in smaller batches), the LM head only where the word's tokens are predicted. The
    largest batch is checked against the device's free memory, naming ``batch_size``, before any is scored."""
    if rule not in SEPARATORS:
        raise ValueError(f"rule: {rule!r}; choose from {', '.join(SEPARATORS)}")
    return encoded_surprisals(model, encode_words(tokenizer, contexts, rule), batch_size)


def encoded_surprisals(model, encoded: list[Encoded], batch_size: int = 256) -> list[float]:
    """:func:`surprisals` of texts already encoded (:func:`encode_words`): the milestones of a run share one
    tokenizer, so its texts are encoded once, not once per checkpoint."""
    batches = _batches([len(e.ids) for e in encoded], batch_size)
    if batches:  # the batch of most padded tokens (the longest text is its last), checked before any is scored
        largest = max(batches, key=lambda b: len(b) * len(encoded[b[-1]].ids))
        check_scoring_memory(model.config, len(largest), len(encoded[largest[-1]].ids), batch_size,
                             next(model.parameters()).device)
    values = [0.0] * len(encoded)
    for batch in batches:
        for i, score in zip(batch, score_items(model, [[encoded[i]] for i in batch], batch_size)):
            values[i] = -score[0]
    return values


def milestones(run_dir: Path) -> list[layout.Milestone]:
    """The run's milestone exports by words seen (:func:`classit.layout.milestones`); none stops in one line."""
    found = layout.milestones(run_dir)
    if not found:
        raise FileNotFoundError(f"{layout.milestone_dir(run_dir)}: no chck_{{N}}M checkpoint folders "
                                f"(MilestoneExport writes them during fit); --run takes a run folder such as "
                                f"lightning_logs/NAME/version_0")
    return found


def aoa_milestones(run_dir: Path) -> list[layout.Milestone]:
    """The run's milestones (:func:`milestones`) if an AoA score can be fitted over them: at least
    ``MIN_MILESTONES``, sharing one tokenizer; else it stops in one line, before any is scored."""
    found = milestones(run_dir)
    if len(found) < MIN_MILESTONES:
        raise ValueError(f"{layout.milestone_dir(run_dir)}: {len(found)} milestone checkpoint(s) "
                         f"({', '.join(m.name for m in found)}); the AoA score fits a 4-parameter sigmoid per word over "
                         f"the milestones and needs at least {MIN_MILESTONES}")
    digests = [tokenizer_digest(m.folder) for m in found]
    shared = Counter(digests).most_common(1)[0][0]
    if odd := [m for m, d in zip(found, digests) if d != shared]:
        same = found[digests.index(shared)]
        raise ValueError(f"{odd[0].folder}: its tokenizer differs from {same.name}'s (tokenizer files by content); "
                         f"the milestones of one run share one tokenizer")
    return found


def tokenizer_digest(folder: Path) -> str:
    """SHA-256 over the names and contents of the files of a Hugging Face folder that map text to token ids."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.startswith(TOKENIZER_FILES):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def default_cdi(data: Path) -> Path:
    """The children's CDI table of a data folder: ``aoa/cdi_human.csv``, else ``aoa/cdi_human_reconstructed.csv``."""
    official, reconstructed = layout.cdi_human(data), layout.cdi_human(data, reconstructed=True)
    return reconstructed if not official.is_file() and reconstructed.is_file() else official


def _stamp(folder: Path, words_digest: str, rule: str) -> dict:
    """What a scored checkpoint depends on: its files (name, size, mtime), the word file's digest, the rule."""
    files = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(folder.iterdir()) if p.is_file()]
    return {"rule": rule, "words_sha256": words_digest, "files": files}


def score_checkpoint(model, name: str, words_seen: int, words: list[tuple[str, list[str]]],
                     encoded: list[Encoded], batch_size: int, device: torch.device) -> list[dict]:
    """The official ``surprisal.json`` records of one checkpoint's model, in the official order (word, then
    context); ``encoded``: the (context, word) texts of ``words`` in that order, encoded with its tokenizer."""
    model.to(device=device, dtype=torch.float32).eval()
    values = iter(encoded_surprisals(model, encoded, batch_size))
    return [{"step": name, "word_count": words_seen, "target_word": word, "context_id": i, "context": context,
             "surprisal": next(values)} for word, contexts in words for i, context in enumerate(contexts)]


def child_aoa(ages: np.ndarray, proportions: np.ndarray) -> float | None:
    """Months at which the sigmoid fitted to the share of children producing a word reaches 0.5 (official rule)."""
    keep = ~np.isnan(proportions)
    ages, proportions = ages[keep], proportions[keep]
    if len(proportions) < 3:
        return None
    params = fit_sigmoid(ages, proportions, p0=[1.0, 0.1, np.mean(ages), 0.0],
                         bounds=([0, 0, ages[0], -0.5], [2.0, 1.0, ages[-1], 0.5]))
    aoa = None if params is None else crossing(params, 0.5)
    return None if aoa is None or aoa < ages[0] or aoa > ages[-1] else aoa


def model_aoa(values: list[float], steps: list[float], chance: float) -> float | None:
    """log10(words seen + 1) at which the sigmoid fitted to −surprisal crosses halfway between ``chance`` and the
    lowest surprisal (official rule: every context is a point; out of the checkpoints' range is no AoA)."""
    if len(values) < 3:
        return None
    steps, values = np.array(steps), np.array(values)
    keep = ~np.isnan(values)
    if not keep.any():
        return None
    steps, values = steps[keep], values[keep]
    target = -(chance - 0.5 * (chance - values.min()))
    x, y = np.log10(steps + 1), -values
    params = fit_sigmoid(x, y, p0=[y.max() - y.min(), 1.0, x.mean(), y.min()])
    log_aoa = None if params is None else crossing(params, target)
    if log_aoa is None:
        return None
    words = 10 ** log_aoa - 1
    return None if words < steps[0] or words > steps[-1] else log_aoa


@functools.cache  # one call per record: a run's few checkpoint names, each parsed once
def step_words(step) -> float | None:
    """Words seen from a checkpoint name (``chck_10M`` → 1e7), as the official ``extract_step_number``."""
    if isinstance(step, (int, float)):
        return float(step)
    match = re.search(r"(\d+(?:\.\d+)?)\s*([KMB]?)", str(step), re.IGNORECASE)
    if not match:
        return None
    return float(match.group(1)) * {"K": 1e3, "M": 1e6, "B": 1e9}.get(match.group(2).upper(), 1)


def curve_fitness(records: list[dict], cdi: pd.DataFrame, chance: float = OFFICIAL_CHANCE) -> dict:
    """The official ``compute_curve_fitness`` score (Pearson r of model and child AoA) with a per-word table."""
    series: dict[str, tuple[list, list]] = {}
    for r in records:
        steps, values = series.setdefault(r["target_word"], ([], []))
        if (step := step_words(r["step"])) is not None:
            steps.append(step)
            values.append(float(r["surprisal"]))
    columns = [c for c in AGES if c in cdi.columns]
    if not columns:
        raise ValueError("CDI table: no age columns 16..30")
    ages, table = np.array([int(c) for c in columns]), []
    for word, (steps, values) in series.items():
        rows = np.flatnonzero(cdi["word"].values == word)
        child = child_aoa(ages, cdi[columns].values[rows[0]].astype(float)) if len(rows) else None
        model = model_aoa(values, steps, chance)
        status = ("no CDI row" if not len(rows) else "fitted" if child is not None and model is not None
                  else "no child AoA" if model is not None else "no model AoA" if child is not None
                  else "neither AoA")  # no AoA: the fit failed, or its crossing is not within the data's range
        table.append({"word": word, "model_aoa_log10": model, "child_aoa_months": child, "fit": status})
    fitted = [(t["model_aoa_log10"], t["child_aoa_months"]) for t in table if t["fit"] == "fitted"]
    result = {"curve_fitness": 0.0, "p_value": None, "n_words": len(fitted), "ci95": None, "table": table}
    if len(fitted) >= 3:
        x, y = np.array(fitted).T
        r, p = pearsonr(x, y)
        result.update(curve_fitness=float(r), p_value=float(p), ci95=bootstrap_ci(x, y))
    return result


def bootstrap_ci(x: np.ndarray, y: np.ndarray, resamples: int = BOOTSTRAP, seed: int = SEED) -> list[float]:
    """95% percentile interval of Pearson's r over words resampled with replacement (seeded)."""
    idx = np.random.default_rng(seed).integers(0, len(x), (resamples, len(x)))
    xs, ys = x[idx], y[idx]
    xs, ys = xs - xs.mean(1, keepdims=True), ys - ys.mean(1, keepdims=True)
    with np.errstate(all="ignore"):
        r = (xs * ys).sum(1) / np.sqrt((xs ** 2).sum(1) * (ys ** 2).sum(1))
    return [float(v) for v in np.nanpercentile(r, [2.5, 97.5])]


def collator_check(names: list[str], per_checkpoint: int) -> str:
    """Whether the official ``collate_preds.py`` would accept these checkpoints (its ``_check_size_aoa``)."""
    track = next((t for t, revs in layout.COLLATOR_REVISIONS.items() if set(revs) == set(names)), None)
    if track is None:
        small, strict = layout.COLLATOR_REVISIONS["strict-small"], layout.COLLATOR_REVISIONS["strict"]
        return (f"not accepted: collate_preds.py expects the checkpoints {small[0]} … {small[-1]} (strict-small, "
                f"{len(small)}) or … {strict[-1]} (strict, {len(strict)}); this run has {len(names)}")
    if per_checkpoint != AOA_SIZE:
        return f"not accepted: {per_checkpoint} records a checkpoint, collate_preds.py expects AOA_SIZE = {AOA_SIZE}"
    return f"accepted ({track} track)"


def _words_seen(log10_aoa: float | None) -> float | None:
    return None if log10_aoa is None else float(10 ** log10_aoa - 1)


def plot_curves(records: list[dict], table: list[dict], path: Path, count: int = 6) -> Path:
    """Mean surprisal over contexts against words seen (log x) for a few words spread over child AoA."""
    from matplotlib.figure import Figure

    ranked = sorted((t for t in table if t["child_aoa_months"] is not None), key=lambda t: t["child_aoa_months"])
    ranked = ranked or table
    spread = np.linspace(0, len(ranked) - 1, min(count, len(ranked))).astype(int)
    chosen = dict.fromkeys(ranked[i]["word"] for i in spread)
    means = pd.DataFrame(records).groupby(["target_word", "word_count"])["surprisal"].mean()
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for word in chosen:
        ax.plot(means[word].index, means[word].values, marker="o", label=word)
    ax.set_xscale("log")
    ax.set(xlabel="words seen", ylabel="surprisal (nats, mean over contexts)", title="learning curves")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_scatter(table: list[dict], path: Path, title: str) -> Path:
    """Model AoA (words seen, log) against child AoA (months) of the fitted words."""
    from matplotlib.figure import Figure

    fitted = [t for t in table if t["fit"] == "fitted"]
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    ax.scatter([t["child_aoa_months"] for t in fitted], [_words_seen(t["model_aoa_log10"]) for t in fitted], s=12)
    ax.set_yscale("log")
    ax.set(xlabel="child AoA (months)", ylabel="model AoA (words seen)", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def score_run(run_dir: str | Path, out: str | Path, data_dir: str | Path | None = None,
              cdi_human: str | Path | None = None, rule: Rule = "official", batch_size: int = 256,
              device: str = "auto") -> dict:
    """Score every milestone checkpoint of a run and its AoA curve fitness; write ``OUT/AoA_word/``
    (``AoA_word_nospace`` for that rule): ``surprisal.json`` (the official file, as the BabyLM collator reads it
    from ``<model>/main/zero_shot/causal/AoA_word/``), ``checkpoints/NAME.json`` (one per checkpoint, reused while
    the checkpoint's files, the word file and the rule are unchanged), ``aoa_summary.json`` (official and corrected
    scores, bootstrap CI, data note), ``words.csv`` (per word), ``curves.png`` and ``scatter.png``.

    Args:
        run_dir: a run folder holding ``milestones/chck_{N}M`` Hugging Face folders.
        out: output folder.
        data_dir: a folder laid out like BabyLM's ``evaluation_data/full_eval`` (``aoa/cdi_childes.json``); default
            ``$CLASSIT_DATA_DIR/babylm-eval``.
        cdi_human: the children's CDI table; default ``DATA_DIR/aoa/cdi_human.csv``, else
            ``aoa/cdi_human_reconstructed.csv`` (with a note: not the official ages).
        rule: ``official``, or ``nospace`` (the word right after the context, no space: not the official rule).
        batch_size: texts per forward pass.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``...
    """
    from classit.data import store
    from classit.export import load_pretrained

    start = time.perf_counter()
    run_dir = Path(run_dir)
    checkpoints = aoa_milestones(run_dir)
    data = Path(data_dir) if data_dir else layout.eval_dir(store.data_dir())
    words_file = layout.cdi_words(data)
    words = load_words(words_file)
    cdi_human = Path(cdi_human) if cdi_human else default_cdi(data)
    if not cdi_human.is_file():
        raise FileNotFoundError(f"{cdi_human}: no such CDI table (--cdi_human; BabyLM's aoa/cdi_human.csv)")
    cdi = read_csv(cdi_human)  # a file that is no CSV stops here, before any checkpoint is scored
    note = RECONSTRUCTED_NOTE if "reconstructed" in cdi_human.name else None
    folder = layout.aoa_dir(out, rule)
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    device = resolve_device(device)

    digest = hashlib.sha256(words_file.read_bytes()).hexdigest()
    records, scored, encoded = [], [], None
    for name, words_seen, path in checkpoints:
        cached, stamp = folder / "checkpoints" / f"{name}.json", _stamp(path, digest, rule)
        kept = read_json(cached) if cached.is_file() else None
        if kept is None or kept["stamp"] != stamp:
            began = time.perf_counter()
            model, tokenizer = load_pretrained(path)
            if encoded is None:  # one tokenizer for all milestones (aoa_milestones): the texts encoded once
                pairs = [(context, word) for word, contexts in words for context in contexts]
                encoded = encode_words(tokenizer, pairs, rule)
            results = score_checkpoint(model, name, words_seen, words, encoded, batch_size, device)
            kept = {"stamp": stamp, "results": results}
            write_json(kept, cached)
            scored.append(name)
            print(f"aoa {name}: {len(kept['results'])} contexts scored in {time.perf_counter() - began:.1f}s")
        records += kept["results"]
    names = [c[0] for c in checkpoints]
    metadata = {"model_name": str(run_dir), "use_bos_only": False, "total_steps": len(names),
                "completed_steps": len(names)}
    write_json({"metadata": metadata, "results": records}, layout.surprisal_file(folder), indent=2)

    official, corrected = curve_fitness(records, cdi, OFFICIAL_CHANCE), curve_fitness(records, cdi, CORRECTED_CHANCE)
    write_csv([["word", "model_aoa_words", "child_aoa_months", "fit", "model_aoa_words_corrected", "fit_corrected"],
               *([o["word"], _words_seen(o["model_aoa_log10"]), o["child_aoa_months"], o["fit"],
                  _words_seen(c["model_aoa_log10"]), c["fit"]] for o, c in zip(official["table"], corrected["table"]))],
              folder / "words.csv")
    title = f"r = {official['curve_fitness']:.3f} over {official['n_words']} words"
    title += " (reconstructed CDI)" if note else ""
    plot_curves(records, official["table"], folder / "curves.png")
    plot_scatter(official["table"], folder / "scatter.png", title)
    summary = {
        "curve_fitness": official["curve_fitness"], "p_value": official["p_value"], "n_words": official["n_words"],
        "ci95": official["ci95"],
        "corrected": {**{k: corrected[k] for k in ("curve_fitness", "p_value", "n_words", "ci95")},
                      "reason": CORRECTION},
        "bootstrap": {"resamples": BOOTSTRAP, "seed": SEED, "over": "words"},
        "rule": rule, "checkpoints": names, "words_seen": [c[1] for c in checkpoints],
        "contexts_per_checkpoint": len(records) // len(names), "words": len(words), "scored": scored,
        "reused": [n for n in names if n not in scored], "cdi_human": str(cdi_human), "note": note,
        "official_collator": collator_check(names, len(records) // len(names)), "folder": str(folder),
        "seconds": round(time.perf_counter() - start, 2),
    }
    write_json(summary, folder / "aoa_summary.json", indent=2)
    ci = official["ci95"]
    print(f"aoa: r = {official['curve_fitness']:.4f} over {official['n_words']} words"
          + (f" (95% CI {ci[0]:.3f}..{ci[1]:.3f})" if ci else "") + f"; corrected (nats) r = "
          f"{corrected['curve_fitness']:.4f} over {corrected['n_words']} words")
    if note:
        print(f"aoa note: {note}")
    return summary
