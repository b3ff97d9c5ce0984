"""Representation metrics of one checkpoint (issue 28): classit's path (``representation_rows``: one batched forward
per probe batch gives every layer's hidden states, then per layer the Gram matrix, effective rank and CKA) on two
random-weight checkpoints of the 100M model (configs/pretrain_100m.yaml's sizes) and 512 probe sentences of the BabyLM
dev set, against the obvious alternatives in the same run: one forward per layer (each layer's output read by a
hook, as a per-layer probe does) and one sentence a forward (unbatched). The alternatives are timed on a subset of
the probe and their rate extrapolated; all three give the same states there. Prints one JSON line; peak memory is
the process's peak resident set after classit's path.

    CLASSIT_DATA_DIR=../shared/data python benchmarks/repr_speed.py            # the 100M model on the CPU
    python benchmarks/repr_speed.py --quick                                   # a tiny model, 32 sentences
"""

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch

from classit import layout
from classit.data.corpus import corpus_files
from classit.data.store import cache_dir, data_dir
from classit.data.tokenizer import cached_tokenizer
from classit.decoder import build_decoder
from classit.dynamics.probe import probe_sentences
from classit.dynamics.representation import hidden_states, representation_rows

SIZES = {"tiny": (2, 64, 4, 128), "100m": (12, 768, 12, 2048)}  # layers, hidden, heads, MLP (pretrain_100m.yaml)


@torch.no_grad()
def per_layer(model, tokenizer, sentences: list[str], batch_size: int) -> list[torch.Tensor]:
    """The alternative: per layer one forward per batch, that layer's output read by a forward hook (index 0: the
    embedding layer's output), the non-padding tokens kept."""
    from classit.data.padding import pad_with_mask

    base = model.base_model
    modules = [base.get_input_embeddings(), *base.layers[:-1], base.norm]  # what output_hidden_states returns
    found = []
    for module in modules:
        pieces = []
        for start in range(0, len(sentences), batch_size):
            rows = tokenizer(sentences[start:start + batch_size])["input_ids"]
            ids, mask = pad_with_mask(rows, tokenizer.pad_token_id)
            seen = []
            hook = module.register_forward_hook(lambda _m, _i, out: seen.append(out[0] if isinstance(out, tuple)
                                                                                  else out))
            base(input_ids=ids, attention_mask=mask)
            hook.remove()
            pieces.append(seen[0][mask.bool()])
        found.append(torch.cat(pieces))
    return found


def timed(work):
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tiny model and 32 sentences: a smoke run")
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--subset", type=int, default=32, help="sentences the alternatives are timed on")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--vocab", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    count, size, vocab = (32, "tiny", 2048) if args.quick else (args.sentences, "100m", args.vocab)
    data = data_dir()
    tokenizer = cached_tokenizer(corpus_files(layout.split_dir(data, layout.SAMPLE_SPLIT), ".train"), vocab,
                                 cache_dir())
    sentences = probe_sentences(layout.split_dir(data, "dev"), count)
    layers, hidden, heads, mlp = SIZES[size]
    special = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
               "eos_token_id": tokenizer.eos_token_id}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoints = []
        for seed in (0, 1):
            torch.manual_seed(seed)
            model = build_decoder("llama", len(tokenizer), layers, hidden, heads, mlp, 512, True, 0.0, special, "sdpa")
            model.save_pretrained(Path(tmp, f"seed{seed}"))
            tokenizer.save_pretrained(Path(tmp, f"seed{seed}"))
            checkpoints.append((f"seed{seed}", Path(tmp, f"seed{seed}")))
        rows, ours_s = timed(lambda: representation_rows(checkpoints, sentences, args.batch_size, "cpu"))
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model.eval()
    tokens = sum(len(ids) for ids in tokenizer(sentences)["input_ids"])
    states, forward_s = timed(lambda: hidden_states(model, tokenizer, sentences, args.batch_size, torch.device("cpu")))
    subset = sentences[:args.subset]
    sub_tokens = sum(len(ids) for ids in tokenizer(subset)["input_ids"])
    batched, batched_sub_s = timed(lambda: hidden_states(model, tokenizer, subset, args.batch_size,
                                                         torch.device("cpu")))
    layered, layered_s = timed(lambda: per_layer(model, tokenizer, subset, args.batch_size))
    single, single_s = timed(lambda: hidden_states(model, tokenizer, subset, 1, torch.device("cpu")))
    diff = max(float((a - other).abs().max()) for a, b, c in zip(batched, layered, single) for other in (b, c))
    print(json.dumps({
        "model": f"llama {layers}x{hidden}, vocab {len(tokenizer)}, random weights, float32",
        "threads": torch.get_num_threads(), "sentences": len(sentences), "tokens": tokens,
        "hidden_states": len(states), "batch_size": args.batch_size, "rows": len(rows),
        "two_checkpoints_seconds": round(ours_s, 2), "per_checkpoint_seconds": round(ours_s / 2, 2),
        "per_checkpoint_tokens_per_s": round(2 * tokens / ours_s, 1), "peak_rss_mib": round(peak_mib),
        "batched_forward_seconds": round(forward_s, 2), "batched_forward_tokens_per_s": round(tokens / forward_s, 1),
        "alternatives_timed_on": {"sentences": len(subset), "tokens": sub_tokens,
                                  "batched_seconds": round(batched_sub_s, 3)},
        "per_layer_seconds_extrapolated": round(layered_s * tokens / sub_tokens, 1),
        "per_layer_slower": round(layered_s / batched_sub_s, 1),
        "unbatched_seconds_extrapolated": round(single_s * tokens / sub_tokens, 1),
        "unbatched_slower": round(single_s / batched_sub_s, 1),
        "max_abs_diff": diff,
    }))


if __name__ == "__main__":
    main()
