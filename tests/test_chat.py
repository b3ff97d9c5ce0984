"""The chat template round trip, the reply-only loss mask, padded and packed batches."""

import pytest
import torch
from transformers import AutoTokenizer

from classit.data.chat import (IGNORE_INDEX, encode_example, encode_examples, install_chat_template, pack_examples,
                               packed_collate, pad_collate, render, render_prompt)
from classit.model import BabyLM

PAIRS = [("What is a cat?", "A cat is a small animal that people keep as a pet."),
         ("Do you have a dog?", "Yes, I have a Springer Spaniel, and her name is Thumper."),
         ("Tell me about the history of Mombasa.", "Mombasa is an old port city.")]


@pytest.fixture(scope="module")
def chat_tokenizer(tokenizer):
    return install_chat_template(tokenizer)


def test_template_round_trip(chat_tokenizer, tmp_path):
    prompt, reply = PAIRS[0]
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]
    assert chat_tokenizer.apply_chat_template(messages, tokenize=False) == "<s>" + render(prompt, reply)
    assert chat_tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True) == \
        "<s>" + render_prompt(prompt)
    ids = encode_example(chat_tokenizer, prompt, reply)["input_ids"]
    assert chat_tokenizer.apply_chat_template(messages)["input_ids"] == ids
    assert chat_tokenizer.decode(ids) == "<s>" + render(prompt, reply)
    chat_tokenizer.save_pretrained(tmp_path)  # an exported model keeps its template
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.apply_chat_template(messages)["input_ids"] == ids
    with pytest.raises(Exception, match="roles"):
        reloaded.apply_chat_template([{"role": "system", "content": "x"}], tokenize=False)


def test_loss_covers_the_reply_only(chat_tokenizer):
    prompt, reply = PAIRS[1]
    example = encode_example(chat_tokenizer, prompt, reply)
    ids, labels = example["input_ids"], example["labels"]
    head = len(chat_tokenizer(render_prompt(prompt))["input_ids"])
    assert labels[:head] == [IGNORE_INDEX] * head and IGNORE_INDEX not in labels[head:]
    assert chat_tokenizer.decode(labels[head:]) == reply + "<|end|>"
    assert encode_example(chat_tokenizer, prompt, reply, train_on_prompt=True)["labels"] == ids
    cut = encode_example(chat_tokenizer, prompt, reply, max_length=head + 3)
    assert len(cut["input_ids"]) == len(cut["labels"]) == head + 3


def test_pad_collate(chat_tokenizer):
    items = [dict(e, source="x") for e in encode_examples(chat_tokenizer, *zip(*PAIRS))]
    batch = pad_collate(items, chat_tokenizer.pad_token_id)
    lengths = [len(x["input_ids"]) for x in items]
    assert batch["input_ids"].shape == (3, max(lengths))
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    assert batch["source"] == ["x"] * 3


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_packed_examples_do_not_see_each_other(chat_tokenizer, arch):
    torch.manual_seed(0)
    module = BabyLM(vocab_size=len(chat_tokenizer), arch=arch, n_layer=2, n_embd=64, n_head=4, intermediate_size=128,
                    block_size=128).eval()
    items = [dict(e, source="x") for e in encode_examples(chat_tokenizer, *zip(*PAIRS))]
    rows = pack_examples(items, block_size=128)
    assert len(rows) == 1 and rows[0]["position_ids"].count(0) == 3
    batch = packed_collate(rows + [dict(items[0], position_ids=list(range(len(items[0]["input_ids"]))))],
                           chat_tokenizer.pad_token_id)  # a second, shorter row gets padding
    assert "position_ids" in batch and batch["attention_mask"].shape[-2:] == batch["input_ids"].shape[-1:] * 2
    with torch.no_grad():
        logits = module.model(**{k: batch[k] for k in ("input_ids", "attention_mask", "position_ids")}).logits
        alone = [module(pad_collate([x], chat_tokenizer.pad_token_id))[0].item() for x in items]
        start = 0
        for item, loss_alone in zip(items, alone):
            n = len(item["input_ids"])
            loss_packed = torch.nn.functional.cross_entropy(logits[0, start:start + n - 1],
                                                            torch.tensor(item["labels"][1:]), reduction="sum")
            assert loss_packed.item() == pytest.approx(loss_alone, abs=1e-4)
            start += n
        packed_sum, targets = module(batch)  # the training loss path: summed over targets
    assert packed_sum.item() == pytest.approx(sum(alone) + alone[0], abs=1e-3)
    assert targets.item() == sum(sum(l != IGNORE_INDEX for l in x["labels"][1:]) for x in items + items[:1])
