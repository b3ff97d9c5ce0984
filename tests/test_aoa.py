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
from classit import layout
from classit.export import load_pretrained
from classit.layout import COLLATOR_REVISIONS
from helpers import aoa_data, classit, error_line, sample_sentences


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
    """The real AoA files: a data folder that is set must hold them."""
    path = layout.cdi_words(layout.eval_dir(data_root))
    assert path.is_file(), f"{path}: missing from the data folder (BabyLM's evaluation_data/full_eval/aoa)"
    return path.parent


@pytest.fixture(scope="module")
def cdi() -> pd.DataFrame:
    """A CDI table of 60 words (w00 … w59) whose children learn them between 17 and 29 months, with noise."""
    rng = np.random.default_rng(0)
    centres = np.linspace(17, 29, 60) + rng.normal(0, 0.5, 60)
    rows = [[f"w{i:02d}", *(1 / (1 + np.exp(-(age - centres[i]) / 1.5)) + rng.normal(0, 0.02) for age in range(16, 31))]
            for i in range(60)]
    return pd.DataFrame(rows, columns=["word", *map(str, range(16, 31))])


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
@pytest.mark.full_data("BabyLM's CDI word file (babylm-eval/aoa/cdi_childes.json: 504 words, 8005 contexts)")
def test_batched_surprisals_equal_the_official_loop(tiny_model_dir, aoa_dir):
    model, tokenizer = load_pretrained(tiny_model_dir)
    model.eval()
    words = load_words(layout.cdi_words(aoa_dir.parent))
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
def small_data(data_root, tmp_path_factory):
    """12 words of the sample's sentences, with their contexts, and a CDI table for them, laid out like full_eval."""
    return aoa_data(tmp_path_factory.mktemp("aoa-data"), sample_sentences(data_root))


def make_run(path, model_dir, names):
    for name in names:
        shutil.copytree(model_dir, path / "milestones" / name)
    return path


@pytest.mark.slow
def test_score_run_writes_the_official_file_and_resumes(tiny_model_dir, small_data, tmp_path):
    run = make_run(tmp_path / "run", tiny_model_dir, ["chck_2M", "chck_1M", "chck_0.5M", "chck_4M"])
    out = tmp_path / "out"
    first = score_run(run, out, small_data, device="cpu")
    folder = out / "AoA_word"
    contexts = sum(len(c) for _, c in load_words(layout.cdi_words(small_data)))
    assert first["checkpoints"] == first["scored"] == ["chck_0.5M", "chck_1M", "chck_2M", "chck_4M"]
    assert first["words_seen"] == [500_000, 1_000_000, 2_000_000, 4_000_000]
    assert first["contexts_per_checkpoint"] == contexts
    written = json.loads((folder / "surprisal.json").read_text())
    assert written["metadata"]["use_bos_only"] is False and len(written["results"]) == 4 * contexts
    record = written["results"][0]
    assert list(record) == ["step", "word_count", "target_word", "context_id", "context", "surprisal"]
    assert (record["step"], record["word_count"], record["context_id"]) == ("chck_0.5M", 500_000, 0)
    assert isinstance(record["surprisal"], float) and record["context"] == json.loads(
        (layout.cdi_words(small_data)).read_text())[record["target_word"]][0]["context"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in (folder / "checkpoints").iterdir()}

    again = score_run(run, out, small_data, device="cpu")
    assert again["scored"] == [] and again["reused"] == first["checkpoints"]
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "checkpoints").iterdir()} == mtimes
    assert json.loads((folder / "surprisal.json").read_text()) == written
    assert again["curve_fitness"] == first["curve_fitness"]

    make_run(run, tiny_model_dir, ["chck_3M"])
    third = score_run(run, out, small_data, device="cpu")
    assert third["scored"] == ["chck_3M"] and len(third["reused"]) == 4
    assert third["official_collator"].startswith("not accepted")
    assert collator_check(COLLATOR_REVISIONS["strict"], 8005) == "accepted (strict track)"
    nospace = score_run(run, out, small_data, rule="nospace", device="cpu")  # a rule of its own, in its own folder
    assert len(nospace["scored"]) == 5 and nospace["folder"] == str(out / "AoA_word_nospace")


@pytest.mark.slow
def test_evaluate_run_command_line(tiny_model_dir, small_data, data_root, tmp_path, capsys):
    from classit.cli import main

    run, out = make_run(tmp_path / "run", tiny_model_dir, ["chck_1M", "chck_2M", "chck_3M", "chck_4M"]), tmp_path / "out"
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
    assert len(table) == sum(1 for _, c in load_words(layout.cdi_words(small_data)) if c)  # with contexts
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
    assert both["aoa"] == summary and both["blimp"]["items"] == len(lines)  # 20, or the sample's 5
    assert set(json.loads((out / "meta.json").read_text())) == {"run", "model", "data_dir"}

    for argv, expected in (
            (["--tasks", "aoa"], "--tasks aoa needs --run RUN_DIR"),
            (["--run", str(tmp_path)], f"{tmp_path / 'milestones'}: no chck_{{N}}M checkpoint folders")):
        with pytest.raises(SystemExit) as done:
            main(["evaluate", *argv, "--out", str(tmp_path / "o"), "--data_dir", str(small_data)])
        assert str(done.value.code).startswith(f"classit: error: {expected}"), done.value.code
    assert not (tmp_path / "o").exists()


def learning_run(path, model_dir, scales):
    """Milestones whose surprisals fall as a run's do: the tiny model with its output layer scaled by each of
    ``scales`` (large first: confidently wrong), at 1M, 2M, 4M... words."""
    model, tokenizer = load_pretrained(model_dir)
    weight = model.lm_head.weight.detach().clone()
    for k, scale in enumerate(scales):
        with torch.no_grad():
            model.lm_head.weight.copy_(weight * scale)
        model.save_pretrained(path / "milestones" / f"chck_{2 ** k}M")
        tokenizer.save_pretrained(path / "milestones" / f"chck_{2 ** k}M")
    return path


@pytest.mark.slow
def test_the_same_surprisals_give_the_same_score_bit_for_bit(tiny_model_dir, small_data, tmp_path):
    run = learning_run(tmp_path / "run", tiny_model_dir, [80, 76, 48, 4, 1.2, 1])  # ≈ 44 … 7.6 nats
    argv = ["evaluate", "--run", str(run), "--tasks", "aoa", "--out", str(tmp_path / "out"), "--data_dir",
            str(small_data), "--device", "cpu"]
    kept = []
    for _ in range(2):  # a new process each time, as a user runs it: scored, then read back from its checkpoint files
        output, code = classit(*argv, cwd=tmp_path)
        assert code == 0, output
        folder = tmp_path / "out" / "AoA_word"
        summary = json.loads((folder / "aoa_summary.json").read_text())
        kept.append(((folder / "surprisal.json").read_bytes(), (folder / "words.csv").read_bytes(),
                     {k: summary[k] for k in ("curve_fitness", "p_value", "n_words", "ci95", "corrected")},
                     re.findall(r"aoa: r = .*", output)))
    assert summary["reused"] == summary["checkpoints"] and summary["n_words"] >= 3  # fitted words: a real score
    assert kept[0] == kept[1]


@pytest.fixture
def four(tiny_model_dir, tmp_path):
    """A run folder with four milestones of the tiny model."""
    return make_run(tmp_path / "run", tiny_model_dir, ["chck_1M", "chck_2M", "chck_3M", "chck_4M"])


def test_fewer_milestones_than_the_curve_has_parameters_are_refused(tiny_model_dir, small_data, tmp_path):
    for names in (["chck_1M"], ["chck_1M", "chck_2M"], ["chck_1M", "chck_2M", "chck_3M"]):
        run = make_run(tmp_path / f"run{len(names)}", tiny_model_dir, names)
        message = error_line(["evaluate", "--run", str(run), "--tasks", "aoa", "--out", str(tmp_path / "out"),
                              "--data_dir", str(small_data), "--device", "cpu"])
        assert message == (f"{run / 'milestones'}: {len(names)} milestone checkpoint(s) ({', '.join(names)}); the AoA "
                           f"score fits a 4-parameter sigmoid per word over the milestones and needs at least 4")
    assert not (tmp_path / "out").exists()


def test_a_milestone_with_another_tokenizer_is_named(four, small_data, tmp_path):
    swapped = four / "milestones" / "chck_3M" / "tokenizer.json"
    tokenizer = json.loads(swapped.read_text())
    vocab = tokenizer["model"]["vocab"]
    first, second = list(vocab)[300:302]
    vocab[first], vocab[second] = vocab[second], vocab[first]  # the same size, other ids
    swapped.write_text(json.dumps(tokenizer))
    message = error_line(["evaluate", "--run", str(four), "--tasks", "aoa", "--out", str(tmp_path / "out"),
                          "--data_dir", str(small_data), "--device", "cpu"])
    assert message == (f"{swapped.parent}: its tokenizer differs from chck_1M's (tokenizer files by content); the "
                       f"milestones of one run share one tokenizer")
    assert not (tmp_path / "out").exists()


def test_a_config_that_is_not_json_is_named(four, small_data, data_root, tmp_path):
    broken = four / "milestones" / "chck_1M" / "config.json"
    broken.write_text('{"model_type": "llama",\n  "hidden_size": 64,,\n}')
    for argv in (["--run", str(four), "--tasks", "aoa", "--data_dir", str(small_data)],
                 ["--model", str(broken.parent), "--tasks", "blimp", "--data_dir", str(layout.eval_dir(data_root))]):
        message = error_line(["evaluate", *argv, "--out", str(tmp_path / "out"), "--device", "cpu"])
        assert message.startswith(f"{broken}:2: malformed JSON"), message


@pytest.mark.slow
def test_a_run_whose_tokenizer_adds_no_bos_gets_a_score(data_root, small_data, tmp_path):
    """Milestones of a GPT-2 whose tokenizer adds no BOS (milestone.json beside each, as fit writes it): scored by
    AoA's own rule, the word after its context (so the word is never the unscored first token), equal to the
    official code context by context, and a curve fitness, not an error."""
    from classit.cli import main
    from helpers import gpt2_without_bos

    model_dir = gpt2_without_bos(tmp_path / "gpt2", sample_sentences(data_root))
    run = learning_run(tmp_path / "run", model_dir, [80, 76, 48, 4, 1.2, 1])
    for k, folder in enumerate(sorted((run / "milestones").iterdir(), key=lambda p: float(p.name[5:-1]))):
        words = 2 ** k * 1_000_000
        (folder / layout.MILESTONE_FILE).write_text(json.dumps({"words": words, "words_seen": words, "step": k + 1,
                                                                "stage": 0}))
    main(["evaluate", "--run", str(run), "--tasks", "aoa", "--out", str(tmp_path / "out"), "--data_dir",
          str(small_data), "--device", "cpu"])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["aoa"]
    assert np.isfinite(summary["curve_fitness"]) and summary["n_words"] >= 3
    model, tokenizer = load_pretrained(run / "milestones" / "chck_1M")
    assert tokenizer("a dog")["input_ids"][0] != tokenizer.bos_token_id  # no BOS indeed
    records = [r for r in json.loads((tmp_path / "out" / "AoA_word" / "surprisal.json").read_text())["results"]
               if r["step"] == "chck_1M"]
    for r in records[:20]:
        assert r["surprisal"] == pytest.approx(official_surprisal(model.eval(), tokenizer, r["context"],
                                                                  r["target_word"]), abs=1e-4)


def test_a_batch_too_big_for_free_memory_is_refused_naming_the_users_batch_size(tokenizer, tmp_path):
    """2,000 contexts at once with a vocabulary of 2^21 (16 MiB of log-probabilities a token, hundreds of GiB in
    all): refused in one line naming the --batch_size given and a size that fits, before any checkpoint is scored."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from classit.train.memory import free_memory, scoring_memory

    config = LlamaConfig(vocab_size=2 ** 21, hidden_size=2, intermediate_size=2, num_hidden_layers=1,
                         num_attention_heads=1, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "wide")
    tokenizer.save_pretrained(tmp_path / "wide")
    for name in ("chck_1M", "chck_2M", "chck_3M", "chck_4M"):
        (tmp_path / "run" / "milestones").mkdir(parents=True, exist_ok=True)
        (tmp_path / "run" / "milestones" / name).symlink_to(tmp_path / "wide")
    words = {"dog": [{"context": f"the child saw a big {k} and a"} for k in range(2000)]}
    (tmp_path / "data" / "aoa").mkdir(parents=True)
    (tmp_path / "data" / "aoa" / "cdi_childes.json").write_text(json.dumps(words))
    (tmp_path / "data" / "aoa" / "cdi_human.csv").write_text(
        "word,category," + ",".join(map(str, range(16, 31))) + "\ndog,noun," + ",".join(["0.5"] * 15) + "\n")
    out = tmp_path / "out"
    line = error_line(["evaluate", "--run", str(tmp_path / "run"), "--tasks", "aoa", "--data_dir",
                       str(tmp_path / "data"), "--batch_size", "100000", "--out", str(out), "--device", "cpu"])
    found = re.fullmatch(r"--batch_size 100000: 2000 texts of up to (\d+) tokens need ≈([\d.]+) GiB to score at "
                         r"once, more than the ([\d.]+) GiB free on cpu; --batch_size (\d+) fits", line)
    assert found, line
    tokens, fits = int(found[1]), int(found[4])
    assert 1 <= fits < 2000 and scoring_memory(config, fits, tokens) <= free_memory(torch.device("cpu")) * 1.1
    assert not list((out / "AoA_word" / "checkpoints").glob("*.json"))  # no checkpoint scored
