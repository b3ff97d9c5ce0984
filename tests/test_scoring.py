"""Batched continuation scoring: padding invariance, the continuation span, shared-prefix caching."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from classit.eval import scoring
from classit.eval.scoring import Encoded, encode, score_items, score_plain


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def _lines(path, n):
    with open(path) as f:
        return [json.loads(line) for line, _ in zip(f, range(n))]


@pytest.fixture(scope="module")
def real_items(data_root):
    """(text, continuation) options of a few real BLiMP, EWoK and entity-tracking items."""
    root = data_root / "babylm-eval"
    items = [[(r["sentence_good"],) * 2, (r["sentence_bad"],) * 2]
             for r in _lines(root / "blimp_filtered" / "adjunct_island.jsonl", 12)]
    items += [[(f"{r['Context1']} {t}", f" {t}") for t in (r["Target1"], r["Target2"])]
              for r in _lines(root / "ewok_filtered" / "physical-relations.jsonl", 12)]
    items += [[(r["input_prefix"] + o, o) for o in r["options"]]
              for r in _lines(root / "entity_tracking" / "move_contents.jsonl", 6)]
    # Edge cases: one option a token prefix of the other, identical options, a one-word text.
    items += [[("The cat", "The cat"), ("The cat sat on the mat.", "The cat sat on the mat.")],
              [("A dog barked.", " barked."), ("A dog barked.", " barked.")], [("Hi", "Hi"), ("Yo", "Yo")]]
    return items


def _encode(tokenizer, items):
    return [encode(tokenizer, [t for t, _ in it], [c for _, c in it]) for it in items]


def test_continuation_span_uses_offsets(tokenizer):
    text = "Ali is in the bakery. Ali believes it."
    [e] = encode(tokenizer, [text], [" Ali believes it."])
    offsets = tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    start = text.index(" Ali believes")
    assert e.ids[0] == tokenizer.bos_token_id
    assert e.first == min(i for i, (_, end) in enumerate(offsets) if i > 0 and end > start)
    [whole] = encode(tokenizer, [text], [text])
    assert whole.first == 1  # everything after BOS is scored
    with pytest.raises(ValueError, match="not a suffix"):
        encode(tokenizer, [text], ["Ali"])


def test_padding_does_not_change_scores(model, tokenizer):
    texts = ["Hi.", "The children who the teacher liked were playing outside in the garden all day long.",
             "Who should Derek hug after shocking Richard?", "A b c d e f g h i j k l m n o p."]
    batch = score_plain(model, tokenizer, texts, texts)
    alone = [score_plain(model, tokenizer, [t], [t])[0] for t in texts]
    assert batch == pytest.approx(alone, abs=1e-4)
    cached = score_items(model, [[e] for e in encode(tokenizer, texts, texts)], batch_size=64)
    assert [s for [s] in cached] == pytest.approx(alone, abs=1e-4)


def test_plain_scores_match_a_direct_computation(model, tokenizer):
    text, cont = "Box 0 contains the map.", " the map."
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        lp = model(ids[:, :-1]).logits.log_softmax(-1)[0].gather(-1, ids[0, 1:, None])[:, 0]
    [e] = encode(tokenizer, [text], [cont])
    expected = lp[e.first - 1:].sum().item()
    assert score_plain(model, tokenizer, [text], [cont])[0] == pytest.approx(expected, abs=1e-4)
    assert tokenizer.decode(ids[0, e.first:]).strip() == "the map."


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_shared_prefix_cache_equals_plain_scoring(model, tokenizer, real_items, batch_size):
    texts = [t for it in real_items for t, _ in it]
    conts = [c for it in real_items for _, c in it]
    plain = score_plain(model, tokenizer, texts, conts, batch_size=7)
    cached = score_items(model, _encode(tokenizer, real_items), batch_size=batch_size)
    assert [s for row in cached for s in row] == pytest.approx(plain, abs=1e-4)


@pytest.fixture(scope="module")
def one_story(data_root):
    """Seven entity-tracking items that share one story: the boxes and moves of the first item of
    ``move_contents``, asked of each of the seven boxes, with that item's five options."""
    [record] = _lines(data_root / "babylm-eval" / "entity_tracking" / "move_contents.jsonl", 1)
    story = record["input_prefix"].rsplit(" Box ", 1)[0]
    return [[(f"{story} Box {box} contains {o}", o) for o in record["options"]] for box in range(7)]


@pytest.mark.parametrize("batch_size,row_tokens,most", [(1, 512, 1.0), (5, 512, 0.5), (64, 512, 0.15), (64, 40, 1.0)])
def test_items_sharing_contexts_run_them_once_and_score_as_plain(model, tokenizer, one_story, batch_size,
                                                                    row_tokens, most, monkeypatch):
    """The texts of one story as rows of at most ``batch_size`` texts and ``row_tokens`` tokens: scores as one text
    at a time, and at most ``most`` of the tokens run (one text a row, or rows shorter than the story's context:
    each text alone)."""
    monkeypatch.setattr(scoring, "ROW_TOKENS", row_tokens)
    encoded = _encode(tokenizer, one_story)
    texts = [t for it in one_story for t, _ in it]
    plain = score_plain(model, tokenizer, texts, [c for it in one_story for _, c in it], batch_size=7)
    shared = score_items(model, encoded, batch_size=batch_size)
    assert [s for row in shared for s in row] == pytest.approx(plain, abs=1e-4)
    roots, _ = scoring._tree([o for options in encoded for o in options], [[] for _ in texts])
    run = sum(len(row.ids) for row in scoring._rows(roots, batch_size))
    alone = sum(len(o.ids) - 1 for options in encoded for o in options)
    assert run <= most * alone, (run, alone)


def test_items_of_token_ids(model, tokenizer):
    """Scoring pre-tokenized ids (as the reading task does) from a given first token."""
    ctx, word = tokenizer("The boy")["input_ids"], tokenizer("running", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + word])
    with torch.no_grad():
        lp = model(ids[:, :-1]).logits.log_softmax(-1)[0].gather(-1, ids[0, 1:, None])[:, 0]
    [[score]] = score_items(model, [[Encoded(ctx + word, len(ctx))]])
    assert score == pytest.approx(lp[len(ctx) - 1:].sum().item(), abs=1e-4)
