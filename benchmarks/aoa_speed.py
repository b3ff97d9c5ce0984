"""AoA surprisal throughput on one checkpoint: classit's batched path (length-sorted batches, LM head only at the
word's tokens) against the official loop (AoA_word/evaluation_functions.py: one forward per context, log_softmax
over every position), same random-weight model, same run. The official loop is timed on an evenly spaced subset
of the 8,005 contexts and its rate extrapolated; both are checked to agree there. Prints one JSON line.

    CLASSIT_DATA_DIR=../shared/data python benchmarks/aoa_speed.py --size demo
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from classit import layout
from classit.data.corpus import corpus_files
from classit.data.store import cache_dir
from classit.data.tokenizer import cached_tokenizer
from classit.eval.aoa import load_words, surprisals

SIZES = {"tiny": (64, 2, 4, 128), "demo": (128, 4, 4, 512), "100m": (768, 12, 12, 2048)}  # hidden, layers, heads, MLP


@torch.no_grad()
def official_loop(model, tokenizer, pairs: list[tuple[str, str]], device) -> list[float]:
    """compute_surprisal → compute_surprisal_causal of the official pipeline, one context a forward."""
    values = []
    for context, word in pairs:
        text = context.strip() + " " + word.strip()
        out = tokenizer(text=text, return_offsets_mapping=True)
        start = len(text) - len(word.strip())
        mask = torch.tensor([int(end > start) for _, end in out["offset_mapping"]], device=device)[None, 1:]
        tokens = torch.tensor(out["input_ids"], device=device)[None]
        attention = torch.tensor(out["attention_mask"], device=device)[None, :-1]
        log_probs = F.log_softmax(model(input_ids=tokens[:, :-1], attention_mask=attention)["logits"], dim=-1)
        values.append(-(log_probs.gather(-1, tokens[:, 1:, None])[..., 0] * mask).sum(1)[0].item())
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = os.environ.get("CLASSIT_DATA_DIR", ".")
    parser.add_argument("--words", default=os.path.join(layout.eval_dir(data), "aoa", "cdi_childes.json"))
    parser.add_argument("--corpus", default=os.path.join(data, "babylm-corpus", "train_3M"),
                        help="corpus for the BPE tokenizer (trained once, cached)")
    parser.add_argument("--size", choices=SIZES, default="demo")
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--official_contexts", type=int, default=800, help="contexts timed with the official loop")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    tokenizer = cached_tokenizer(corpus_files(Path(args.corpus), ".train"), args.vocab, cache_dir())
    hidden, layers, heads, mlp = SIZES[args.size]
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, intermediate_size=mlp, tie_word_embeddings=True,
                         max_position_embeddings=1024, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config).to(device).eval()
    pairs = [(c, w) for w, contexts in load_words(Path(args.words)) for c in contexts]
    step = max(len(pairs) // args.official_contexts, 1)
    subset = list(range(0, len(pairs), step))[:args.official_contexts]

    surprisals(model, tokenizer, pairs[:64], batch_size=args.batch_size)  # warm-up
    start = time.perf_counter()
    batched = surprisals(model, tokenizer, pairs, batch_size=args.batch_size)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    official = official_loop(model, tokenizer, [pairs[i] for i in subset], device)
    official_s = time.perf_counter() - start
    rate, official_rate = len(pairs) / batched_s, len(subset) / official_s
    print(json.dumps({
        "model": f"llama {layers}x{hidden}, vocab {len(tokenizer)}, random weights, float32",
        "device": str(device), "threads": torch.get_num_threads(), "contexts": len(pairs),
        "batch_size": args.batch_size, "batched_seconds": round(batched_s, 2), "batched_contexts_per_s": round(rate, 1),
        "official_timed_on": len(subset), "official_contexts_per_s": round(official_rate, 1),
        "official_seconds_extrapolated": round(len(pairs) / official_rate, 1), "ratio": round(rate / official_rate, 2),
        "max_abs_diff": max(abs(batched[i] - o) for i, o in zip(subset, official)),
    }))


if __name__ == "__main__":
    main()
