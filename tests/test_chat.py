"""The chat template round trip, the reply-only loss mask, padded and packed batches."""

import pytest
import torch
import torch.nn.functional as F
from jinja2.exceptions import TemplateError
from transformers import AutoTokenizer
from transformers.masking_utils import create_causal_mask

from classit.data.chat import (
    IGNORE_INDEX,
    encode_example,
    encode_examples,
    install_chat_template,
    pack_examples,
    packed_collate,
    pad_collate,
    render,
    render_prompt,
)
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
    with pytest.raises(TemplateError) as refused:  # what a user of the exported tokenizer sees
        reloaded.apply_chat_template([{"role": "system", "content": "x"}], tokenize=False)
    assert str(refused.value) == "classit chat roles are user and assistant, not system"


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


def block_causal_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """The explicit additive ``(batch, 1, T, T)`` mask packed rows used to carry: causal inside each example
    (position_ids restart at 0), -inf across examples."""
    segment = torch.cumsum(position_ids == 0, dim=-1)
    same = segment[:, :, None] == segment[:, None, :]
    causal = torch.ones(position_ids.shape[-1], position_ids.shape[-1], dtype=torch.bool).tril()
    return torch.zeros(same.shape).masked_fill(~(same & causal), torch.finfo(torch.float32).min)[:, None]


def packed_batch(tokenizer) -> tuple[list[dict], dict]:
    """The three examples, and a batch of two rows: all three packed, and the first alone with end padding."""
    items = [dict(e, source="x") for e in encode_examples(tokenizer, *zip(*PAIRS))]
    rows = pack_examples(items, block_size=128)
    assert len(rows) == 1 and rows[0]["position_ids"].count(0) == 3
    first = dict(items[0], position_ids=list(range(len(items[0]["input_ids"]))))
    return items, packed_collate(rows + [first], tokenizer.pad_token_id)


def tiny_module(tokenizer, arch: str, attention: str) -> BabyLM:
    torch.manual_seed(0)
    return BabyLM(vocab_size=len(tokenizer), arch=arch, n_layer=2, n_embd=64, n_head=4, intermediate_size=128,
                  block_size=128, attn_implementation=attention).eval()


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_position_ids_alone_give_the_block_diagonal_mask(chat_tokenizer, arch, attention):
    module = tiny_module(chat_tokenizer, arch, attention)
    items, batch = packed_batch(chat_tokenizer)
    assert set(batch) == {"input_ids", "labels", "position_ids", "source"}  # no T x T mask to collate and ship
    explicit = block_causal_mask(batch["position_ids"])
    with torch.no_grad():
        embeds = module.model.get_input_embeddings()(batch["input_ids"])
        built = create_causal_mask(config=module.model.config, inputs_embeds=embeds, attention_mask=None,
                                   past_key_values=None, position_ids=batch["position_ids"])
        assert torch.equal(built if attention == "eager" else torch.where(built, 0.0, explicit.min()), explicit)
        logits = module.model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        with_mask = module.model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                                 attention_mask=explicit, use_cache=False).logits
    labels = batch["labels"][:, 1:]
    per_token = [F.cross_entropy(x[:, :-1].transpose(1, 2), labels, reduction="none") for x in (logits, with_mask)]
    assert (labels != IGNORE_INDEX).sum() > 50
    torch.testing.assert_close(per_token[0], per_token[1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_packed_examples_do_not_see_each_other(chat_tokenizer, arch):
    module = tiny_module(chat_tokenizer, arch, "sdpa")
    items, batch = packed_batch(chat_tokenizer)
    assert (batch["labels"][1, len(items[0]["input_ids"]):] == IGNORE_INDEX).all()  # the padding has no loss
    with torch.no_grad():
        logits = module.model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        start, alone_sums = 0, []
        for item in items:
            n = len(item["input_ids"])
            alone = pad_collate([item], chat_tokenizer.pad_token_id)
            out = module.model(alone["input_ids"], labels=alone["labels"])  # with Hugging Face's own mean loss
            torch.testing.assert_close(logits[0, start:start + n], out.logits[0], rtol=0, atol=1e-5)
            alone_sums.append(out.loss.item() * (alone["labels"][:, 1:] != IGNORE_INDEX).sum().item())
            start += n
        torch.testing.assert_close(logits[1, :len(items[0]["input_ids"])], logits[0, :len(items[0]["input_ids"])],
                                   rtol=0, atol=1e-5)  # the padding after it changes nothing
        packed_sum, targets = module(batch)  # the training loss path: summed over targets
    assert packed_sum.item() == pytest.approx(sum(alone_sums) + alone_sums[0], abs=1e-3)
    assert targets.item() == sum(sum(l != IGNORE_INDEX for l in x["labels"][1:]) for x in items + items[:1])


@pytest.mark.slow
def test_compiled_decoder_gives_the_same_packed_loss_and_gradients(chat_tokenizer):
    """``model.compile: true``: the training loss path through torch.compile equals eager on packed rows."""
    _, batch = packed_batch(chat_tokenizer)
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        module = BabyLM(vocab_size=len(chat_tokenizer), n_layer=2, n_embd=64, n_head=4, intermediate_size=128,
                        block_size=128, compile=compiled)
        assert (module.model._compiled_call_impl is not None) == compiled
        loss_sum, targets = module(batch)
        (loss_sum / targets).backward()
        results.append((loss_sum.detach(), {n: p.grad for n, p in module.named_parameters()}))
    (eager_loss, eager_grads), (compiled_loss, compiled_grads) = results
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=1e-4)
    for name, grad in eager_grads.items():
        torch.testing.assert_close(compiled_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
