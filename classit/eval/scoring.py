"""Batched continuation log-probabilities: the one scoring primitive of every zero-shot evaluation.

A text is scored as the BabyLM pipeline's causal backend does: tokenize it once with the model's
tokenizer (BOS first for classit's; the first token is never scored), read the log-probability of
every next token in float32 and sum those of the tokens that overlap the continuation (offset
mapping: a token counts when its end offset is past the continuation's start). The options of one item usually share their beginning, so
:func:`score_items` runs the longest common token prefix once, keeps its keys/values and scores
each option's remainder from that cache; :func:`score_plain` is the one-forward-per-text reference.
"""

import contextlib
import inspect
from dataclasses import dataclass

import torch
from tqdm import tqdm

from classit.data.padding import pad_with_mask
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


def _common_prefix(options: list[Encoded]) -> int:
    """Length of the longest common token prefix of the options."""
    if len(options) == 1:  # one text (AoA's, reading's): all of it
        return len(options[0].ids)
    n = min(len(o.ids) for o in options)
    first = options[0].ids
    for i in range(n):
        if any(o.ids[i] != first[i] for o in options[1:]):
            return i
    return n


def _token_logprobs(model, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) from final hidden states, computing the LM head only on these positions."""
    logits = model.get_output_embeddings()(hidden).float()
    return logits.gather(-1, targets[:, None])[:, 0] - logits.logsumexp(-1)


def _cache_name(model) -> str:
    """transformers' name of the key/value cache, argument and output: ``cache`` (5.x), else ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _fp32(device: torch.device):
    """No ambient autocast: scores are computed in float32."""
    return torch.autocast(device.type, enabled=False) if device.type in ("cuda", "cpu") else contextlib.nullcontext()


@torch.no_grad()
def _score_batch(model, items: list[list[Encoded]], prefix_len: list[int], device: torch.device) -> list[list[float]]:
    """Scores of a batch of items: one forward over the common prefixes, one over all remainders."""
    base = model.base_model
    ids, mask = pad_with_mask([options[0].ids[:n] for options, n in zip(items, prefix_len)], 0)
    ids, mask = ids.to(device), mask.to(device)
    # Options with tokens past position n: their remainders ids[n:-1] run on the prefix cache.
    rem = [(b, k) for b, (options, n) in enumerate(zip(items, prefix_len)) for k, o in enumerate(options)
           if len(o.ids) > n + 1]
    out = base(input_ids=ids, attention_mask=mask, position_ids=torch.arange(ids.size(1), device=device)[None].expand_as(ids),
               use_cache=bool(rem))
    cache_name = _cache_name(base)
    hidden, cache = out.last_hidden_state, out.get(cache_name)

    # Prefix tokens 1..n-1 inside some option's span, scored once per item; position n-1 predicts each option's token n.
    rows, positions, targets, tails = [], [], [], []
    for b, (options, n) in enumerate(zip(items, prefix_len)):
        lo = max(min(o.first for o in options), 1)
        rows += [b] * max(n - lo, 0)
        positions += list(range(lo - 1, n - 1))
        targets += options[0].ids[lo:n]
        for k, o in enumerate(options):
            if len(o.ids) > n and o.first <= n:
                tails.append((b, k, o.ids[n]))
    shared = torch.zeros(len(items), ids.size(1), dtype=torch.float64, device=device)
    if rows:
        lp = _token_logprobs(model, hidden[rows, positions], torch.tensor(targets, device=device))
        shared[rows, [p + 1 for p in positions]] = lp.double()
    shared = shared.cumsum(1).tolist()
    scores = [[shared[b][n - 1] - shared[b][max(o.first, 1) - 1] if o.first < n else 0.0 for o in options]
              for b, (options, n) in enumerate(zip(items, prefix_len))]
    if tails:
        b_idx = [b for b, _, _ in tails]
        lp = _token_logprobs(model, hidden[b_idx, [prefix_len[b] - 1 for b in b_idx]],
                             torch.tensor([t for _, _, t in tails], device=device)).tolist()
        for (b, k, _), value in zip(tails, lp):
            scores[b][k] += value

    if rem:  # the prefix cache expanded to one row per option
        r_ids, r_mask = pad_with_mask([items[b][k].ids[prefix_len[b]:-1] for b, k in rem], 0)
        r_ids, r_mask = r_ids.to(device), r_mask.to(device)
        source = torch.tensor([b for b, _ in rem], device=device)
        cache.reorder_cache(source)
        starts = torch.tensor([prefix_len[b] for b, _ in rem], device=device)
        out = base(input_ids=r_ids, attention_mask=torch.cat([mask[source], r_mask], 1), **{cache_name: cache},
                   position_ids=starts[:, None] + torch.arange(r_ids.size(1), device=device)[None], use_cache=True)
        rows, positions, targets = [], [], []
        for r, (b, k) in enumerate(rem):
            o, n = items[b][k], prefix_len[b]
            for t in range(max(n + 1, o.first), len(o.ids)):  # token t is predicted at remainder position t - n - 1
                rows.append(r)
                positions.append(t - n - 1)
                targets.append(o.ids[t])
        if rows:
            lp = _token_logprobs(model, out.last_hidden_state[rows, positions], torch.tensor(targets, device=device))
            sums = torch.zeros(len(rem), device=device).index_add_(0, torch.tensor(rows, device=device), lp).tolist()
            for (b, k), value in zip(rem, sums):
                scores[b][k] += value
    return scores


def _batches(items: list[list[Encoded]], prefix_len: list[int], batch_size: int) -> list[list[int]]:
    """Item indices grouped by length (prefix, then longest option) with at most ``batch_size`` options a batch."""
    order = sorted(range(len(items)), key=lambda i: (prefix_len[i], max(len(o.ids) for o in items[i])))
    batches, current, rows = [], [], 0
    for i in order:
        if current and rows + len(items[i]) > batch_size:
            batches.append(current)
            current, rows = [], 0
        current.append(i)
        rows += len(items[i])
    return batches + [current] if current else batches


def score_items(model, items: list[list[Encoded]], batch_size: int = 64, progress: bool = False) -> list[list[float]]:
    """Summed continuation log-probability of every option of every item (float32, right padding).

    The longest common token prefix of an item's options is run once; each option's remainder is
    scored from its cached keys/values. Options that share no first token (a tokenizer without BOS)
    are scored each on its own. ``batch_size`` counts options (texts) per forward; a batch that would not
    fit in the device's free memory stops before any is scored.
    """
    device = next(model.parameters()).device
    runs, prefix_len, where = [], [], []  # options scored together, their common prefix; per item, (run, option)
    for options in items:
        if n := _common_prefix(options):
            where.append([(len(runs), k) for k in range(len(options))])
            runs.append(options)
            prefix_len.append(n)
        else:
            where.append([(len(runs) + k, 0) for k in range(len(options))])
            runs += [[o] for o in options]
            prefix_len += [len(o.ids) for o in options]
    scores: list[list[float]] = [[] for _ in runs]
    batches = _batches(runs, prefix_len, batch_size)
    if batches:  # the batch of most texts × tokens, checked against free memory before any is scored
        texts, tokens = max(((sum(len(runs[i]) for i in b), max(len(o.ids) for i in b for o in runs[i]))
                             for b in batches), key=lambda size: size[0] * size[1])
        check_scoring_memory(model.config, texts, tokens, batch_size, device)
    with _fp32(device):
        for batch in tqdm(batches, disable=not progress, desc="scoring", leave=False):
            for i, s in zip(batch, _score_batch(model, [runs[i] for i in batch], [prefix_len[i] for i in batch], device)):
                scores[i] = s
    return [[scores[r][k] for r, k in places] for places in where]


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
