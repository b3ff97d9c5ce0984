"""Word age of acquisition: surprisals and curve fitness against re-implementations of the BabyLM 2025 pipeline's
own code (AoA_word/evaluation_functions.py, utils.py AoAEvaluator), resuming, and ``classit evaluate --run``."""

import contextlib
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import curve_fit
from scipy.stats import pearsonr

from classit.eval.aoa import (
    CORRECTED_CHANCE,
    OFFICIAL_CHANCE,
    collator_check,
    curve_fitness,
    encode_words,
    load_words,
    score_run,
    surprisals,
)
from classit.export import load_pretrained
from classit.layout import COLLATOR_REVISIONS

pytestmark = pytest.mark.full_data("BabyLM's AoA files (babylm-eval/aoa: cdi_childes.json and the CDI table)")
N_WORDS = 12  # words of the real file in the small data folder of the run tests


# --- the official code, one context per forward (evaluation_functions.py: compute_surprisal → _causal) ---

def official_surprisal(model, processor, context: str, target_word: str, separator: str = " ") -> float:
    context = context.strip() + separator  # compute_surprisal: context.strip() + " "
    target_word = target_word.strip()
    input_text = context + target_word  # process_causal_input, use_bos_only=False
    tokenizer_output = processor(text=input_text, return_offsets_mapping=True)
    start_char_idx = len(input_text) - len(target_word)
    phrase_mask = [0 for _ in range(len(tokenizer_output["input_ids"]))]
    for i, (start, end) in enumerate(tokenizer_output["offset_mapping"]):
        if end > start_char_idx:
            phrase_mask[i] = 1
    tokens = torch.LongTensor(tokenizer_output["input_ids"]).unsqueeze(0)
    input_tokens, target_tokens = tokens[:, :-1], tokens[:, 1:]
    attention_mask = torch.LongTensor(tokenizer_output["attention_mask"]).unsqueeze(0)[:, :-1]
    phrase_mask = torch.LongTensor(phrase_mask).unsqueeze(0)[:, 1:]
    with torch.no_grad():
        logits = model(input_ids=input_tokens, attention_mask=attention_mask)["logits"]
        log_probs = F.log_softmax(logits, dim=-1)
        target_log_probs = torch.gather(log_probs, -1, target_tokens.unsqueeze(-1)).squeeze(-1)
        return -torch.sum(target_log_probs * phrase_mask, dim=1)[0].item()


# --- the official score (utils.py AoAEvaluator), the chance level's log as a parameter ---

def sigmoid_function(x, a, b, c, d):
    return a / (1 + np.exp(-b * (x - c))) + d


def compute_child_aoa(ages, proportions, threshold=0.5):
    valid_mask = ~np.isnan(proportions)
    if not np.any(valid_mask):
        return None
    valid_ages, valid_proportions = ages[valid_mask], proportions[valid_mask]
    if len(valid_proportions) < 3:
        return None
    try:
        initial_guess = [1.0, 0.1, np.mean(valid_ages), 0.0]
        bounds = ([0, 0, valid_ages[0], -0.5], [2.0, 1.0, valid_ages[-1], 0.5])
        popt, _ = curve_fit(sigmoid_function, valid_ages, valid_proportions, p0=initial_guess, bounds=bounds,
                            maxfev=1000)
        a, b, c, d = popt
        if b <= 0 or a <= 0:
            return None
        if threshold <= d or threshold >= a + d:
            return None
        aoa = c - np.log((a / (threshold - d)) - 1) / b
        if aoa < valid_ages[0] or aoa > valid_ages[-1]:
            return None
        return aoa
    except Exception:
        return None


def compute_model_aoa(surprisal_data, training_steps, log, threshold_percentile=0.5, approximate_vocab=300_000):
    if len(surprisal_data) < 3:
        return None
    steps, surprisals_ = np.array(training_steps), np.array(surprisal_data)
    valid_mask = ~np.isnan(surprisals_)
    if not np.any(valid_mask):
        return None
    valid_steps, valid_surprisals = steps[valid_mask], surprisals_[valid_mask]
    random_chance_surprisal = log(approximate_vocab)
    min_surprisal = np.min(valid_surprisals)
    threshold_surprisal = random_chance_surprisal - threshold_percentile * (random_chance_surprisal - min_surprisal)
    try:
        neg_surprisals = -valid_surprisals
        log_steps = np.log10(valid_steps + 1)
        initial_guess = [np.max(neg_surprisals) - np.min(neg_surprisals), 1.0, np.mean(log_steps),
                         np.min(neg_surprisals)]
        popt, _ = curve_fit(sigmoid_function, log_steps, neg_surprisals, p0=initial_guess, maxfev=1000)
        a, b, c, d = popt
        neg_threshold = -threshold_surprisal
        if b <= 0 or a <= 0:
            return None
        if neg_threshold <= d or neg_threshold >= a + d:
            return None
        log_aoa_step = c - np.log((a / (neg_threshold - d)) - 1) / b
        aoa_step = 10 ** log_aoa_step - 1
        if aoa_step < valid_steps[0] or aoa_step > valid_steps[-1]:
            return None
        return log_aoa_step
    except Exception:
        return None


def extract_step_number(step_name):
    if isinstance(step_name, (int, float)):
        return float(step_name)
    match = re.search(r"(\d+(?:\.\d+)?)\s*([KMB]?)", str(step_name), re.IGNORECASE)
    if not match:
        return None
    unit = match.group(2).upper() if match.group(2) else ""
    return float(match.group(1)) * {"K": 1000, "M": 1000000, "B": 1000000000}.get(unit, 1)


def compute_curve_fitness(model_results, cdi_data, log=np.log2):
    ages_columns = [c for c in [str(a) for a in range(16, 31)] if c in cdi_data.columns]
    ages, age_data = np.array([int(c) for c in ages_columns]), cdi_data[ages_columns].values
    word_data = {}
    for result in model_results["results"]:
        word = result["target_word"]
        word_data.setdefault(word, {"steps": [], "surprisals": []})
        step_val = extract_step_number(result["step"])
        if step_val is not None:
            word_data[word]["steps"].append(step_val)
            word_data[word]["surprisals"].append(float(result["surprisal"]))
    model_aoas, child_aoas, valid_words = [], [], []
    for word in word_data:
        word_mask = cdi_data["word"] == word
        if not np.any(word_mask):
            continue
        child_aoa = compute_child_aoa(ages, age_data[np.where(word_mask)[0][0]])
        if child_aoa is None:
            continue
        model_aoa = compute_model_aoa(word_data[word]["surprisals"], word_data[word]["steps"], log)
        if model_aoa is None:
            continue
        model_aoas.append(model_aoa)
        child_aoas.append(child_aoa)
        valid_words.append(word)
    if len(model_aoas) < 3:
        return {"curve_fitness": 0.0, "n_words": len(model_aoas)}
    correlation, p_value = pearsonr(model_aoas, child_aoas)
    return {"curve_fitness": float(correlation), "p_value": float(p_value), "n_words": len(valid_words),
            "valid_words": valid_words, "model_aoas": model_aoas, "child_aoas": child_aoas}


@pytest.fixture(scope="module")
def aoa_dir(data_root):
    path = data_root / "babylm-eval" / "aoa"
    if not (path / "cdi_childes.json").is_file():
        pytest.skip(f"needs {path}/cdi_childes.json (BabyLM's evaluation_data/full_eval/aoa)")
    return path


@pytest.fixture(scope="module")
def cdi(aoa_dir) -> pd.DataFrame:
    return pd.read_csv(next(p for p in (aoa_dir / "cdi_human.csv", aoa_dir / "cdi_human_reconstructed.csv")
                            if p.is_file()))


@contextlib.contextmanager
def one_thread():
    """One forward of one short text gains nothing from more threads, and loses much on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_batched_surprisals_equal_the_official_loop(tiny_model_dir, aoa_dir):
    model, tokenizer = load_pretrained(tiny_model_dir)
    model.eval()
    words = load_words(aoa_dir / "cdi_childes.json")
    pairs = [(c, w) for w, contexts in words for c in contexts]
    assert len(words) == 504 and len(pairs) == 8005
    for rule, separator, step in (("official", " ", 25), ("nospace", "", 100)):  # contexts over the whole file
        with one_thread():
            batched = surprisals(model, tokenizer, pairs[::step], rule, batch_size=64)
            reference = [official_surprisal(model, tokenizer, c, w, separator) for c, w in pairs[::step]]
        assert np.allclose(batched, reference, atol=1e-4, rtol=0), np.abs(np.subtract(batched, reference)).max()
        assert min(batched) > 0
        first = encode_words(tokenizer, [("much cheaper to paint an", "airplane")], rule)[0]
        word = tokenizer.decode(first.ids[first.first:])
        assert word == " airplane" if rule == "official" else word.endswith("airplane") and not word.startswith(" ")


def synthetic_records(cdi: pd.DataFrame, seed: int = 0) -> list[dict]:
    """Surprisal curves falling from ~20 to a word's floor over the strict-small checkpoints, later for words
    children learn later, with noise, a few NaNs and a word missing from the CDI table."""
    rng = np.random.default_rng(seed)
    words = list(cdi["word"][:60]) + ["notacdiword"]
    names = COLLATOR_REVISIONS["strict-small"]
    floor, mid = rng.uniform(2, 8, len(words)), np.linspace(6.2, 7.6, len(words)) + rng.normal(0, 0.3, len(words))
    contexts = rng.integers(1, 5, len(words))
    records = []
    for name in names:
        x = np.log10(float(name[5:-1]) * 1e6)
        for k, word in enumerate(words):
            for i in range(contexts[k]):
                value = floor[k] + (20 - floor[k]) / (1 + np.exp(4 * (x - mid[k]))) + rng.normal(0, 0.5)
                records.append({"step": name, "word_count": int(float(name[5:-1]) * 1e6), "target_word": word,
                                "context_id": i, "context": "...", "surprisal": float("nan") if rng.random() < 0.03
                                else value})
    return records


@pytest.mark.slow
def test_curve_fitness_equals_the_official_computation(cdi):
    records = synthetic_records(cdi)
    for chance, log in ((OFFICIAL_CHANCE, np.log2), (CORRECTED_CHANCE, np.log)):
        ours, theirs = curve_fitness(records, cdi, chance), compute_curve_fitness({"results": records}, cdi, log)
        assert ours["n_words"] == theirs["n_words"] >= 20
        assert ours["curve_fitness"] == theirs["curve_fitness"] and ours["p_value"] == theirs["p_value"]
        fitted = [t for t in ours["table"] if t["fit"] == "fitted"]
        assert [t["word"] for t in fitted] == theirs["valid_words"]
        assert [t["model_aoa_log10"] for t in fitted] == theirs["model_aoas"]
        assert ours["ci95"][0] < ours["curve_fitness"] < ours["ci95"][1]
        assert curve_fitness(records, cdi, chance)["ci95"] == ours["ci95"]  # seeded
        assert {t["fit"] for t in ours["table"] if t["word"] == "notacdiword"} == {"no CDI row"}
    official, corrected = curve_fitness(records, cdi), curve_fitness(records, cdi, CORRECTED_CHANCE)
    assert official["curve_fitness"] != corrected["curve_fitness"]  # the bits/nats chance level matters
    few = [r for r in records if r["target_word"] in set(cdi["word"][:2])]
    assert curve_fitness(few, cdi)["curve_fitness"] == compute_curve_fitness({"results": few}, cdi)["curve_fitness"]
    assert curve_fitness(few, cdi)["curve_fitness"] == 0.0  # fewer than 3 words


@pytest.fixture(scope="module")
def small_data(aoa_dir, tmp_path_factory):
    """The first words of the real CDI file (all their contexts) and the CDI table, laid out like full_eval."""
    out = tmp_path_factory.mktemp("aoa-data")
    (out / "aoa").mkdir()
    data = json.loads((aoa_dir / "cdi_childes.json").read_text())
    (out / "aoa" / "cdi_childes.json").write_text(json.dumps(dict(list(data.items())[:N_WORDS])))
    for name in ("cdi_human.csv", "cdi_human_reconstructed.csv"):
        if (aoa_dir / name).is_file():
            shutil.copy(aoa_dir / name, out / "aoa" / name)
    return out


def make_run(path, model_dir, names):
    for name in names:
        shutil.copytree(model_dir, path / "milestones" / name)
    return path


@pytest.mark.slow
def test_score_run_writes_the_official_file_and_resumes(tiny_model_dir, small_data, tmp_path):
    run = make_run(tmp_path / "run", tiny_model_dir, ["chck_2M", "chck_1M", "chck_0.5M"])
    out = tmp_path / "out"
    first = score_run(run, out, small_data, device="cpu")
    folder = out / "AoA_word"
    contexts = sum(len(c) for _, c in load_words(small_data / "aoa" / "cdi_childes.json"))
    assert first["checkpoints"] == first["scored"] == ["chck_0.5M", "chck_1M", "chck_2M"]
    assert first["words_seen"] == [500_000, 1_000_000, 2_000_000] and first["contexts_per_checkpoint"] == contexts
    written = json.loads((folder / "surprisal.json").read_text())
    assert written["metadata"]["use_bos_only"] is False and len(written["results"]) == 3 * contexts
    record = written["results"][0]
    assert list(record) == ["step", "word_count", "target_word", "context_id", "context", "surprisal"]
    assert (record["step"], record["word_count"], record["context_id"]) == ("chck_0.5M", 500_000, 0)
    assert isinstance(record["surprisal"], float) and record["context"] == json.loads(
        (small_data / "aoa" / "cdi_childes.json").read_text())[record["target_word"]][0]["context"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in (folder / "checkpoints").iterdir()}

    again = score_run(run, out, small_data, device="cpu")
    assert again["scored"] == [] and again["reused"] == first["checkpoints"]
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "checkpoints").iterdir()} == mtimes
    assert json.loads((folder / "surprisal.json").read_text()) == written
    assert again["curve_fitness"] == first["curve_fitness"]

    make_run(run, tiny_model_dir, ["chck_3M"])
    third = score_run(run, out, small_data, device="cpu")
    assert third["scored"] == ["chck_3M"] and len(third["reused"]) == 3
    assert third["official_collator"].startswith("not accepted")
    assert collator_check(COLLATOR_REVISIONS["strict"], 8005) == "accepted (strict track)"
    one = make_run(tmp_path / "one", tiny_model_dir, ["chck_1M"])
    nospace = score_run(one, out, small_data, rule="nospace", device="cpu")  # a rule of its own, in its own folder
    assert nospace["scored"] == ["chck_1M"] and nospace["folder"] == str(out / "AoA_word_nospace")


@pytest.mark.slow
def test_evaluate_run_command_line(tiny_model_dir, small_data, data_root, tmp_path, capsys):
    from classit.cli import main

    run, out = make_run(tmp_path / "run", tiny_model_dir, ["chck_1M", "chck_2M", "chck_3M"]), tmp_path / "out"
    main(["evaluate", "--run", str(run), "--tasks", "aoa", "--out", str(out), "--data_dir", str(small_data),
          "--device", "cpu", "--batch_size", "32"])
    summary = json.loads((out / "summary.json").read_text())["aoa"]
    assert summary == json.loads((out / "AoA_word" / "aoa_summary.json").read_text())
    assert {"curve_fitness", "p_value", "n_words", "ci95", "corrected", "note", "official_collator"} <= set(summary)
    assert "nats" in summary["corrected"]["reason"]
    for name in ("surprisal.json", "words.csv", "curves.png", "scatter.png"):
        assert (out / "AoA_word" / name).stat().st_size > 0
    table = pd.read_csv(out / "AoA_word" / "words.csv")
    assert list(table.columns[:4]) == ["word", "model_aoa_words", "child_aoa_months", "fit"]
    assert len(table) == sum(1 for _, c in load_words(small_data / "aoa" / "cdi_childes.json") if c)  # with contexts
    printed = capsys.readouterr().out
    if "reconstructed" in summary["cdi_human"]:
        assert "1.2 months" in summary["note"] and "aoa note:" in printed

    # the results tree's route: the model's tasks into the same folder (their sets elsewhere), kept beside aoa's
    lines = (data_root / "babylm-eval" / "blimp_filtered" / "adjunct_island.jsonl").read_text().splitlines(True)[:20]
    (tmp_path / "sets" / "blimp_filtered").mkdir(parents=True)
    (tmp_path / "sets" / "blimp_filtered" / "adjunct_island.jsonl").write_text("".join(lines))
    main(["evaluate", "--model", str(tiny_model_dir), "--data_dir", str(tmp_path / "sets"), "--tasks", "blimp",
          "--out", str(out), "--device", "cpu"])
    both = json.loads((out / "summary.json").read_text())
    assert both["aoa"] == summary and both["blimp"]["items"] == 20
    assert set(json.loads((out / "meta.json").read_text())) == {"run", "model", "data_dir"}

    for argv, expected in (
            (["--tasks", "aoa"], "--tasks aoa needs --run RUN_DIR"),
            (["--run", str(tmp_path)], f"{tmp_path / 'milestones'}: no chck_{{N}}M checkpoint folders")):
        with pytest.raises(SystemExit) as done:
            main(["evaluate", *argv, "--out", str(tmp_path / "o"), "--data_dir", str(small_data)])
        assert str(done.value.code).startswith(f"classit: error: {expected}"), done.value.code
    assert not (tmp_path / "o").exists()
