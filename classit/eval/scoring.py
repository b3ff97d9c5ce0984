"""Batched continuation log-probabilities: the one scoring primitive of every zero-shot evaluation.

A text is scored as the BabyLM pipeline's causal backend does: tokenize it once with the model's
tokenizer (BOS first for classit's; the first token is never scored), read the log-probability of
every next token in float32 and sum those of the tokens that overlap the continuation (offset
mapping: a token counts when its end offset is past the continuation's start). Texts that begin alike share
their tokens: :func:`score_items` puts all texts into one prefix tree and runs each row of it (a subtree) in one
forward whose attention mask lets each token see only the tokens before it in its own text, so a shared token is
run once; :func:`score_plain` is the one-forward-per-text reference.
"""

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from classit.data.padding import pad_right, pad_with_mask
from classit.train.memory import check_scoring_memory


@dataclass(slots=True)
class Encoded:
    """Token ids of a text and the index of its first scored token (>= 1: the first token is never scored)."""

    ids: list[int]
    first: int


def encode(tokenizer, texts: list[str], continuations: list[str], chunk: int = 2048,
           prepend: int | None = None) -> list[Encoded]:
    """Tokenize each text once and locate its continuation (a character suffix of the text). ``prepend``: a token id
    put before the tokenizer's output (the corrected score of a tokenizer without BOS), so its first token is scored
    too."""
    encoded = []
    for start in range(0, len(texts), chunk):
        batch = tokenizer(texts[start:start + chunk], return_offsets_mapping=True)
        for text, cont, ids, offsets in zip(texts[start:start + chunk], continuations[start:start + chunk],
                                            batch["input_ids"], batch["offset_mapping"]):
            if not text.endswith(cont):
                raise ValueError(f"continuation {cont!r} is not a suffix of {text!r}")
            begin = len(text) - len(cont) + offsets[0][0]
            if prepend is not None:
                ids, offsets = [prepend, *ids], [(0, 0), *offsets]
            first = next((i for i in range(1, len(ids)) if offsets[i][1] > begin), len(ids))
            encoded.append(Encoded(ids, first))
    return encoded


def correction_token(tokenizer) -> int | None:
    """The token put before each text for the corrected score of a tokenizer that adds no BOS: its BOS token, else
    its EOS token as GPT-2 uses it (as lm-evaluation-harness does for whole-text log-likelihoods); None without
    either."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def model_positions(config) -> tuple[str, int] | None:
    """``(key, count)``: the positions a model's config states (``n_positions`` or ``max_position_embeddings``), the
    longest input it was built for; None where it states none."""
    key = next((k for k in ("n_positions", "max_position_embeddings") if getattr(config, k, None)), None)
    return (key, getattr(config, key)) if key else None


def learned_positions(config) -> tuple[str, int] | None:
    """``(key, count)`` of a model whose positions are a learned table (GPT-2's ``n_positions``, OPT's
    ``max_position_embeddings``), which a longer input overruns; None for rotary positions (LLaMA, GPT-NeoX),
    computed for any length."""
    rotary = getattr(config, "rope_parameters", None) or getattr(config, "rope_theta", None)
    return None if rotary else model_positions(config)


def overrun(config, first: str, count: int, passes: str, leave: str, such: str) -> None:
    """What the official pipeline, which passes ``passes`` whole, gives ``count`` inputs longer than the model's
    positions, the first described by ``first``: with learned positions no score (an index error there), so stop in
    one line; a rotary model is scored past the positions it was trained on, said in one line."""
    key, limit = model_positions(config)
    longer = f"{first}, more than the model's {key} {limit}"
    if learned_positions(config):
        raise ValueError(f"{longer}; the official pipeline passes {passes} whole, untruncated, past the model's "
                         f"learned positions (an index error), so there is no official score: leave {leave} out "
                         "(--tasks) or score a model with more positions")
    print(f"{longer} ({count} {such}): scored whole, past the positions the model was trained on, as the official "
          "pipeline does")


def _token_logprobs(model, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) from final hidden states, computing the LM head only on these positions."""
    logits = model.get_output_embeddings()(hidden).float()
    return logits.gather(-1, targets[:, None])[:, 0] - logits.logsumexp(-1)


def _fp32(device: torch.device):
    """No ambient autocast: scores are computed in float32."""
    return torch.autocast(device.type, enabled=False) if device.type in ("cuda", "cpu") else contextlib.nullcontext()


ROW_TOKENS = 512  # the longest row of the prefix tree run in one forward, unless one text is longer


@dataclass(eq=False)
class _Node:
    """Tokens that a group of texts share after the tokens of the nodes above it, at positions ``start`` onward."""

    start: int
    ids: list[int]
    texts: int  # texts through it
    children: list["_Node"]
    targets: dict[tuple[int, int], int]  # (offset in ids, next token) → its index among the log-probabilities
    size: int = 0  # tokens in its subtree, its own included


def _tree(texts: list[Encoded], refs: list[list[int]]) -> tuple[list[_Node], int]:
    """The prefix tree of the texts' inputs (their tokens but the last) and the number of (position, next token)
    pairs scored: a node ends where its texts branch or one of them ends. Each pair that a text's score sums gets
    one index, listed in ``refs`` for every text that sums it."""
    roots: list[_Node] = []
    made: list[_Node] = []  # every node, each after its parent
    pending, count = [(roots, list(range(len(texts))), 0)], 0  # (where the nodes go, their texts, their start)
    while pending:
        siblings, members, start = pending.pop()
        groups: dict[int, list[int]] = {}
        for m in members:
            if len(texts[m].ids) - 1 > start:
                groups.setdefault(texts[m].ids[start], []).append(m)
        for group in groups.values():
            end, first = start + 1, texts[group[0]].ids
            while all(len(texts[m].ids) - 1 > end and texts[m].ids[end] == first[end] for m in group):
                end += 1
            node = _Node(start, first[start:end], len(group), [], {})
            for m in group:
                ids = texts[m].ids
                for p in range(max(texts[m].first - 1, start, 0), min(len(ids) - 1, end)):
                    key = (p - start, ids[p + 1])
                    if key not in node.targets:
                        node.targets[key], count = count, count + 1
                    refs[m].append(node.targets[key])
            siblings.append(node)
            made.append(node)
            pending.append((node.children, [m for m in group if len(texts[m].ids) - 1 > end], end))
    for node in reversed(made):
        node.size = len(node.ids) + sum(child.size for child in node.children)
    return roots, count


@dataclass(eq=False)
class _Row:
    """One row of a forward: the tokens of a node's ancestors, then of its subtree in depth-first order, each token
    attending to the tokens of its own text before it (its ancestors in the tree)."""

    ids: list[int]
    positions: list[int]
    parents: list[int]  # the row index of the token before each token in its text (-1: none)
    targets: list[tuple[int, int, int]]  # (row index, next token, index among the log-probabilities)
    texts: int


def _row(context: list[int], scored: list[tuple[int, int, int]], node: _Node) -> _Row:
    """The row of ``node``'s subtree after ``context``, its ancestors' tokens, of which the ``scored`` targets (row
    index, next token, index) are read here too."""
    row = _Row(list(context), list(range(len(context))), list(range(-1, len(context) - 1)), list(scored), node.texts)
    stack = [(node, len(context) - 1)]
    while stack:
        current, parent = stack.pop()
        first = len(row.ids)
        row.ids += current.ids
        row.positions += range(current.start, current.start + len(current.ids))
        row.parents += [parent, *range(first, first + len(current.ids) - 1)]
        row.targets += [(first + k, token, index) for (k, token), index in current.targets.items()]
        stack += [(child, len(row.ids) - 1) for child in reversed(current.children)]
    return row


def _rows(roots: list[_Node], batch_size: int) -> list[_Row]:
    """The tree cut into rows of at most ``batch_size`` texts and :data:`ROW_TOKENS` tokens each (attention grows
    with the square of a row's length): the subtree of a node that holds more is cut into its children's subtrees,
    each after the node's and its ancestors' tokens again; the first of them reads the node's targets."""
    rows, stack = [], [([], [], node) for node in reversed(roots)]
    while stack:
        context, scored, node = stack.pop()
        if not node.children or (node.texts <= batch_size and len(context) + node.size <= ROW_TOKENS):
            rows.append(_row(context, scored, node))
            continue
        inherited = scored + [(node.start + k, token, index) for (k, token), index in node.targets.items()]
        stack += [(context + node.ids, inherited if c == 0 else [], child)
                  for c, child in reversed(list(enumerate(node.children)))]
    return rows


def _batches(rows: list[_Row], batch_size: int) -> list[list[int]]:
    """Row indices grouped by length with at most ``batch_size`` texts a batch."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].ids))
    batches, current, texts = [], [], 0
    for i in order:
        if current and texts + rows[i].texts > batch_size:
            batches.append(current)
            current, texts = [], 0
        current.append(i)
        texts += rows[i].texts
    return batches + [current] if current else batches


def _tree_mask(rows: list[_Row], width: int, dtype: torch.dtype) -> torch.Tensor:
    """The additive attention mask ``[rows, 1, width, width]``: 0 where a token may attend (itself and the tokens
    before it in its text), the dtype's minimum elsewhere; a padding token attends to itself."""
    allowed = np.zeros((len(rows), width, width), dtype=bool)
    allowed[:, range(width), range(width)] = True
    for r, row in enumerate(rows):
        for i, parent in enumerate(row.parents):
            if parent >= 0:
                allowed[r, i, :parent + 1] |= allowed[r, parent, :parent + 1]
    mask = torch.full(allowed.shape, torch.finfo(dtype).min, dtype=dtype)
    return mask.masked_fill_(torch.from_numpy(allowed), 0.0)[:, None]


@torch.no_grad()
def _score_batch(model, rows: list[_Row], logprobs: list[float], device: torch.device) -> None:
    """One forward over a batch of rows (each a piece of the prefix tree, with its tree attention mask); the
    log-probabilities of their targets into ``logprobs``."""
    ids = pad_right([row.ids for row in rows], 0).to(device)
    positions = pad_right([row.positions for row in rows], 0).to(device)
    mask = _tree_mask(rows, ids.size(1), next(model.parameters()).dtype).to(device)
    hidden = model.base_model(input_ids=ids, attention_mask=mask, position_ids=positions,
                              use_cache=False).last_hidden_state
    at = [(r, i, token, index) for r, row in enumerate(rows) for i, token, index in row.targets]
    if at:
        r, i, tokens, indices = zip(*at)
        values = _token_logprobs(model, hidden[list(r), list(i)], torch.tensor(tokens, device=device)).tolist()
        for index, value in zip(indices, values):
            logprobs[index] = value


def score_items(model, items: list[list[Encoded]], batch_size: int = 64, progress: bool = False) -> list[list[float]]:
    """Summed continuation log-probability of every option of every item (float32).

    Texts that begin alike, within an item or across items (entity tracking's boxes and moves, a reading sentence's
    successive words), run their shared tokens once: the texts form a prefix tree, cut into rows of at most
    ``batch_size`` texts, each row one forward with an attention mask that lets a token see only the tokens before
    it in its own text; each (position, next token) is scored once. ``batch_size`` counts texts per forward; a batch
    that would not fit in the device's free memory stops before any is scored.
    """
    device = next(model.parameters()).device
    texts = [o for options in items for o in options]
    refs: list[list[int]] = [[] for _ in texts]
    roots, count = _tree(texts, refs)
    rows = _rows(roots, batch_size)
    batches = _batches(rows, batch_size)
    if batches:  # the batch of most texts × tokens, checked against free memory before any is scored
        sizes = [(sum(rows[i].texts for i in b), max(len(rows[i].ids) for i in b)) for b in batches]
        check_scoring_memory(model.config, *max(sizes, key=lambda size: size[0] * size[1]), batch_size, device)
    logprobs = [0.0] * count
    with _fp32(device):
        for batch in tqdm(batches, disable=not progress, desc="scoring", leave=False):
            _score_batch(model, [rows[i] for i in batch], logprobs, device)
    sums = iter([math.fsum(logprobs[i] for i in r) for r in refs])
    return [[next(sums) for _ in options] for options in items]


def score_plain(model, tokenizer, texts: list[str], continuations: list[str], batch_size: int = 64) -> list[float]:
    """The reference method of the official pipeline: one forward per full text, ``batch_size`` texts in
    the given order, logits at every position. Used by the tests and the benchmark."""
    device = next(model.parameters()).device
    scores = []
    with _fp32(device):
        for start in range(0, len(texts), batch_size):
            encoded = encode(tokenizer, texts[start:start + batch_size], continuations[start:start + batch_size])
            ids, mask = pad_with_mask([e.ids for e in encoded], tokenizer.pad_token_id or 0)
            ids, mask = ids.to(device), mask.to(device)
            logprobs = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1]).logits.float().log_softmax(-1)
            lp = logprobs.gather(-1, ids[:, 1:, None])[..., 0]
            span = torch.zeros_like(mask)
            for i, e in enumerate(encoded):
                span[i, e.first:len(e.ids)] = 1
            scores += (lp * span[:, 1:]).sum(1).tolist()
    return scores
