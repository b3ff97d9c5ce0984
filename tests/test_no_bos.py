"""A model classit did not train, whose tokenizer adds no BOS (as GPT-2's, Pythia's and most Hub tokenizers): scored
as the official pipeline scores it (the first token of each text unscored), the corrected score (BOS prepended)
beside it; both against the rule recomputed here one text at a time."""

import json
import random

import pytest
import torch
from scipy.stats import spearmanr
from transformers import AutoModelForCausalLM, AutoTokenizer, CTRLTokenizer

from classit.cli import main
from classit.eval.scoring import encode, score_items
from classit.eval.tasks import TASKS
from classit.eval.zero_shot import load_items
from helpers import (COMPS, classit, comps_items, entity_tracking_items, error_line, gpt2_without_bos, hypernym_items,
                     sample_sentences, wsc_items, wug_items, wug_past_items, write_jsonl, write_reading_csv)

ZERO_SHOT = ["blimp", "supplement", "ewok", "entity_tracking", "wug", "wug_past", "comps"]


@pytest.fixture(scope="module")
def gpt2_dir(data_root, tmp_path_factory):
    return gpt2_without_bos(tmp_path_factory.mktemp("gpt2"), sample_sentences(data_root)[:3000])


@pytest.fixture(scope="module")
def data_dir(data_root, tmp_path_factory):
    """A few items of every zero-shot task (BLiMP and EWoK: the sample's fast items) and a reading CSV."""
    root, rng = tmp_path_factory.mktemp("eval"), random.Random(0)
    for task, folder, files in (("blimp_fast", "blimp_filtered", 3), ("ewok_fast", "ewok_filtered", 1)):
        (root / folder).mkdir()
        for path in sorted((data_root / "babylm-eval-fast" / task).glob("*.jsonl"))[:files]:
            (root / folder / path.name).write_text("".join(path.read_text().splitlines(keepends=True)[:15]))
    write_jsonl(root / "supplement_filtered" / "hypernym.jsonl", hypernym_items())
    for name in ("regular", "ambiref"):
        write_jsonl(root / "entity_tracking" / f"{name}.jsonl", entity_tracking_items(rng, 6))
    write_jsonl(root / "wug_adj_nominalization" / "wug_adj_nominalization.jsonl", wug_items(rng, 20))
    write_jsonl(root / "wug_past_tense" / "wug_past_tense.jsonl", wug_past_items(rng, 20))
    for stem in COMPS:
        write_jsonl(root / "comps" / f"{stem}.jsonl", comps_items(rng, stem, 5))
    write_reading_csv(root / "reading" / "reading_data.csv", sample_sentences(data_root)[:200], rng, rows=40)
    return root


def official_rule(model, ids: list[int], ends: list[int], start: int) -> float:
    """The pipeline's causal backend on one text (``process_causal_sentences``, ``compute_results``): one forward
    over all tokens but the last, the float32 log-probabilities of the tokens whose end offset is past ``start`` (the
    continuation's first character) summed, the first token never scored."""
    mask = torch.tensor([end > start for end in ends])
    tokens = torch.tensor(ids)[None]
    with torch.no_grad():
        logprobs = model(input_ids=tokens[:, :-1]).logits.float().log_softmax(-1)
    return (logprobs.gather(-1, tokens[:, 1:, None])[0, :, 0] * mask[1:]).sum().item()


def both_rules(model, tokenizer, text: str, continuation: str) -> tuple[float, float]:
    """(official, corrected): the tokenizer's own output, then the same with its BOS (GPT-2: <|endoftext|>) first."""
    encoded = tokenizer(text, return_offsets_mapping=True)
    ids, ends = encoded["input_ids"], [end for _, end in encoded["offset_mapping"]]
    start = len(text) - len(continuation) + encoded["offset_mapping"][0][0]
    return (official_rule(model, ids, ends, start),
            official_rule(model, [tokenizer.bos_token_id, *ids], [0, *ends], start))  # the BOS overlaps nothing


def by_subset(task: str, items, scores: list[list[float]]) -> dict[str, float]:
    """Accuracy (×100) per subset, an item right when no option scores above its first (a tie goes to the first, as
    the leaderboard counts it); WUG: Spearman's rho
    (×100) of the softmaxed first option against the human ratios."""
    if TASKS[task].kind == "rho":
        probs = [torch.tensor(s).softmax(0)[0].item() for s in scores]
        return {items[0].uid: 100 * spearmanr(probs, [it.ratio for it in items])[0]}
    right = {}
    for item, s in zip(items, scores):
        right.setdefault(item.uid, []).append(s[0] >= max(s[1:]))
    return {uid: 100 * sum(v) / len(v) for uid, v in right.items()}


@pytest.fixture(scope="module")
def evaluated(gpt2_dir, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gpt2"
    output, code = classit("evaluate", "--model", str(gpt2_dir), "--data_dir", str(data_dir), "--out", str(out),
                           "--tasks", ",".join([*ZERO_SHOT, "reading"]), "--device", "cpu", "--batch_size", "8",
                           cwd=out.parent)
    assert code == 0, output
    return out, output


@pytest.mark.slow
def test_every_zero_shot_task_is_the_official_rule_with_the_corrected_score_beside(gpt2_dir, data_dir, evaluated):
    out, output = evaluated
    assert ("tokenizer adds no BOS: the first token of each text is not scored, as in the official pipeline; the "
            "corrected score, each text after a prepended <|endoftext|>, stands beside it in summary.json as "
            "`corrected`") in output
    summary = json.loads((out / "summary.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(gpt2_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(gpt2_dir)
    for task in ZERO_SHOT:
        items = load_items(task, TASKS[task].find(data_dir))
        pairs = [[both_rules(model, tokenizer, t, c) for t, c in zip(it.texts, it.continuations)] for it in items]
        official = [[o for o, _ in p] for p in pairs]
        corrected = [[c for _, c in p] for p in pairs]
        assert official != corrected, task
        records = [json.loads(x) for x in (out / "predictions" / f"{task}.jsonl").read_text().splitlines()]
        for record, o, c in zip(records, official, corrected, strict=True):
            assert record["scores"] == pytest.approx(o, abs=1e-4), (task, record["source"])
            assert record["corrected_scores"] == pytest.approx(c, abs=1e-4), (task, record["source"])
        assert summary[task]["by_uid"] == pytest.approx(by_subset(task, items, official), abs=1e-6), task
        assert summary[task]["corrected"]["by_uid"] == pytest.approx(by_subset(task, items, corrected), abs=1e-6), task
    assert "corrected" not in summary["reading"]  # each word is read after its context: nothing left unscored
    assert summary["reading"]["items"] == 40


@pytest.mark.slow
def test_headline_corrected_puts_the_corrected_numbers_first_and_keeps_the_official(gpt2_dir, data_dir, evaluated,
                                                                                   tmp_path):
    official = json.loads((evaluated[0] / "summary.json").read_text())["blimp"]
    main(["evaluate", "--model", str(gpt2_dir), "--data_dir", str(data_dir), "--out", str(tmp_path / "c"),
          "--tasks", "blimp", "--device", "cpu", "--headline", "corrected"])
    blimp = json.loads((tmp_path / "c" / "summary.json").read_text())["blimp"]
    assert blimp["headline"] == "corrected"
    assert blimp["macro"] == pytest.approx(official["corrected"]["macro"])
    assert blimp["by_uid"] == pytest.approx(official["corrected"]["by_uid"])
    assert blimp["official"]["macro"] == pytest.approx(official["macro"])


def test_options_sharing_no_first_token_are_scored_each_on_its_own(gpt2_dir):
    """A tokenizer without BOS: two options that differ in their first word (common token prefix 0), in one batch
    with options that share theirs; each score equals the one-text computation."""
    model = AutoModelForCausalLM.from_pretrained(gpt2_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(gpt2_dir)
    options = [["The cat sat down.", "A cat sat down."], ["The dog ran home.", "The dog ran away."]]
    encoded = [encode(tokenizer, texts, texts) for texts in options]
    assert encoded[0][0].ids[0] != encoded[0][1].ids[0]
    expected = [[both_rules(model, tokenizer, t, t)[0] for t in texts] for texts in options]
    scores = score_items(model, encoded, batch_size=4)
    assert [s for item in scores for s in item] == pytest.approx([s for item in expected for s in item], abs=1e-4)


def test_a_slow_tokenizer_stops_in_one_line_saying_scoring_needs_a_fast_one(gpt2_dir, data_dir, tmp_path):
    """A tokenizer without character offsets (a Python one, as CTRL's): one line naming the folder and the way out."""
    folder = tmp_path / "slow"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).symlink_to(gpt2_dir / name)
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, "b": 1, "ab": 2, "<unk>": 3}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    CTRLTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt")).save_pretrained(folder)
    message = error_line(["evaluate", "--model", str(folder), "--data_dir", str(data_dir), "--tasks", "blimp",
                          "--device", "cpu", "--out", str(tmp_path / "out")])
    assert message == (f"{folder}: CTRLTokenizer is a slow tokenizer, without the character offsets the scoring "
                       "needs; save a fast one in the folder (a tokenizer.json: transformers' convert_slow_tokenizer, "
                       "or the tokenizers library)")


@pytest.mark.slow
def test_finetune_takes_a_model_whose_tokenizer_adds_no_bos(gpt2_dir, tmp_path):
    """WSC fine-tuned on the GPT-2-style model (no BOS, no pad token: EOS pads), one epoch: every validation item
    predicted."""
    rng = random.Random(0)
    write_jsonl(tmp_path / "glue" / "wsc.train.jsonl", wsc_items(rng, 32))
    valid = wsc_items(rng, 8)
    write_jsonl(tmp_path / "glue" / "wsc.valid.jsonl", valid)
    main(["finetune", "--model", str(gpt2_dir), "--data_dir", str(tmp_path / "glue"), "--tasks", "wsc",
          "--seeds", "42", "--max_epochs", "1", "--out", str(tmp_path / "out")])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    predictions = (tmp_path / "out" / "predictions" / "wsc_seed42.jsonl").read_text().splitlines()
    assert len(predictions) == len(valid)
    assert 0 <= summary["wsc"]["accuracy"]["mean"] <= 100
