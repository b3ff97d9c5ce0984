"""The chat template, the reply-only loss mask, and batching (padded, or packed without cross-talk).

An example renders as::

    <|user|>
    {prompt}<|end|>
    <|assistant|>
    {reply}<|end|>

Turns are separated by a newline; the tokenizer puts BOS (``<s>``) first. The loss covers
``{reply}<|end|>`` only (prompt and padding get label -100) unless ``train_on_prompt``.
The same format is the tokenizer's ``chat_template``, so ``apply_chat_template`` works on an
exported model (``add_generation_prompt=True`` ends the text with ``<|assistant|>\\n``).
"""

from functools import partial

import torch

from classit.data.padding import pad_right, pad_with_mask

IGNORE_INDEX = -100
USER, ASSISTANT, END = "<|user|>", "<|assistant|>", "<|end|>"

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['user', 'assistant'] %}"
    "{{ raise_exception('classit chat roles are user and assistant, not ' + message['role']) }}"
    "{% endif %}"
    "{% if not loop.first %}{{ '\\n' }}{% endif %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '\\n<|assistant|>\\n' }}{% endif %}"
)


def render_prompt(prompt: str) -> str:
    """The user turn and the assistant header: what the model sees before it replies."""
    return f"{USER}\n{prompt}{END}\n{ASSISTANT}\n"


def render(prompt: str, reply: str) -> str:
    """The full example as text (without BOS, which the tokenizer adds): the data set's ``text`` field."""
    return render_prompt(prompt) + reply + END


def install_chat_template(tokenizer):
    """Set ``tokenizer.chat_template`` to :data:`CHAT_TEMPLATE` (saved with the tokenizer); returns it."""
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def encode_examples(tokenizer, prompts: list[str], replies: list[str], train_on_prompt: bool = False,
                    max_length: int = 512) -> list[dict]:
    """Token ids and labels of many examples; sequences longer than ``max_length`` are cut at the end."""
    if not prompts:  # a tokenizer given no texts fails with an IndexError
        return []
    heads = tokenizer([render_prompt(p) for p in prompts])["input_ids"]  # BOS first
    tails = tokenizer([r + END for r in replies], add_special_tokens=False)["input_ids"]
    encoded = []
    for head, tail in zip(heads, tails):
        ids = (head + tail)[:max_length]
        labels = ids if train_on_prompt else [IGNORE_INDEX] * len(head) + tail
        encoded.append({"input_ids": ids, "labels": list(labels[:max_length])})
    return encoded


def encode_example(tokenizer, prompt: str, reply: str, train_on_prompt: bool = False, max_length: int = 512) -> dict:
    """``{input_ids, labels}`` of one example; labels are -100 on the prompt unless ``train_on_prompt``."""
    return encode_examples(tokenizer, [prompt], [reply], train_on_prompt, max_length)[0]


def pad_collate(items: list[dict], pad_id: int) -> dict:
    """Right-pad a list of encoded examples: ``input_ids``, ``labels`` (-100 on padding), ``attention_mask``, ``source``."""
    ids, mask = pad_with_mask([x["input_ids"] for x in items], pad_id)
    return {"input_ids": ids, "labels": pad_right([x["labels"] for x in items], IGNORE_INDEX), "attention_mask": mask,
            "source": [x["source"] for x in items]}


def pack_examples(items: list[dict], block_size: int) -> list[dict]:
    """Greedily concatenate consecutive examples into rows of at most ``block_size`` tokens.

    Each row has ``position_ids`` restarting at 0 at every example; its ``source`` is its first example's;
    its ``words`` (when the items have them) the sum of its examples'.
    """
    rows, row = [], None
    for item in items:
        n = len(item["input_ids"])
        if row is None or len(row["input_ids"]) + n > block_size:
            row = {"input_ids": [], "labels": [], "position_ids": [], "source": item["source"], "words": 0}
            rows.append(row)
        row["input_ids"] += item["input_ids"]
        row["labels"] += item["labels"]
        row["position_ids"] += list(range(n))
        row["words"] += item.get("words", 0)
    return rows


def packed_collate(rows: list[dict], pad_id: int) -> dict:
    """Batch packed rows: ``input_ids``, ``labels`` and ``position_ids``, which restart at 0 at every example.

    No attention mask: from ``position_ids`` alone transformers keeps the examples of a row from attending
    to each other (called with ``use_cache=False`` and no ``attention_mask``, as ``BabyLM.forward`` does).
    Padding at the row end restarts at 0 too: a segment of its own, with labels -100, that no token sees.
    """
    width = max(len(row["input_ids"]) for row in rows)
    return {"input_ids": pad_right([row["input_ids"] for row in rows], pad_id),
            "labels": pad_right([row["labels"] for row in rows], IGNORE_INDEX),
            "position_ids": torch.tensor([row["position_ids"] + list(range(width - len(row["position_ids"])))
                                          for row in rows]),
            "source": [row["source"] for row in rows]}


def collate_fn(pad_id: int, packed: bool = False):
    """A picklable collate function for padded examples or packed rows."""
    return partial(packed_collate if packed else pad_collate, pad_id=pad_id)
