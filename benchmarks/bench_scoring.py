"""Zero-shot scoring throughput: classit (a prefix tree of the texts, each row one forward with tree attention)
against the plain method of the official pipeline (one forward per full text, 64 items a batch, file order), same
model, same items, same run. The items are evenly spaced over each full set, so items that share a context (entity
tracking's) rarely meet here; `classit evaluate` on whole sets shares more. Prints pairs/s (items/s: an
entity-tracking item has five options) per task.

    CLASSIT_DATA_DIR=../shared/data python benchmarks/bench_scoring.py --sizes tiny,100m
"""

import argparse
import os
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from classit import layout
from classit.data.corpus import corpus_files
from classit.data.store import cache_dir
from classit.data.tokenizer import cached_tokenizer
from classit.eval.scoring import score_items, score_plain
from classit.eval import tasks
from classit.eval.zero_shot import encode_items, load_items

SIZES = {  # hidden, layers, heads, MLP width
    "tiny": (64, 2, 4, 128),
    "100m": (768, 12, 12, 2048),
}
TASKS = ("blimp", "supplement", "ewok", "entity_tracking", "wug", "wug_past", "comps")  # those the data has


def build_model(size: str, tokenizer) -> LlamaForCausalLM:
    hidden, layers, heads, mlp = SIZES[size]
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, intermediate_size=mlp, tie_word_embeddings=True,
                         max_position_embeddings=1024, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config).eval()


def run_plain(model, tokenizer, items, batch_size: int = 64) -> list[list[float]]:
    """As the pipeline: blocks of ``batch_size`` items; one padded forward per option position."""
    scores = []
    for start in range(0, len(items), batch_size):
        block = items[start:start + batch_size]
        columns = [score_plain(model, tokenizer, [it.texts[k] for it in block], [it.continuations[k] for it in block],
                               batch_size) for k in range(len(block[0].texts))]
        scores += [list(row) for row in zip(*columns)]
    return scores


def run_classit(model, tokenizer, items, batch_size: int = 64) -> list[list[float]]:
    return score_items(model, encode_items(tokenizer, items), batch_size)


def timed(fn, *args) -> tuple[float, list]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(layout.eval_dir(os.environ.get("CLASSIT_DATA_DIR", "."))))
    parser.add_argument("--corpus", default=os.path.join(os.environ.get("CLASSIT_DATA_DIR", "."), "babylm-corpus", "train_3M"),
                        help="corpus for the 16384-token BPE tokenizer (trained once, cached)")
    parser.add_argument("--sizes", default="tiny,100m")
    parser.add_argument("--items", default="tiny=blimp:2000,supplement:500,ewok:1000,entity_tracking:500,wug:200,"
                                           "wug_past:50,comps:1000;100m=blimp:192,supplement:48,ewok:96,"
                                           "entity_tracking:24,wug:48,wug_past:50,comps:96",
                        help="items timed per size and task, evenly spaced over the full set")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    counts = {size: dict(kv.split(":") for kv in spec.split(",")) for size, spec in
              (part.split("=") for part in args.items.split(";"))}
    tokenizer = cached_tokenizer(corpus_files(Path(args.corpus), ".train"), 16384, cache_dir())
    sets = {task: load_items(task, folder) for task in TASKS if (folder := tasks.TASKS[task].find(args.data_dir))}
    print(f"CPU threads: {torch.get_num_threads()}; float32; batch {args.batch_size}; random weights; "
          f"a subset of each full set (evenly spaced items)")
    print(f"{'model':<6} {'task':<16} {'items':>6} {'plain/s':>9} {'classit/s':>10} {'ratio':>6} {'max |diff|':>10}")
    for size in args.sizes.split(","):
        model = build_model(size, tokenizer)
        run_classit(model, tokenizer, sets["blimp"][:64], args.batch_size)  # warm-up
        full_time = [0.0, 0.0]  # the three full sets, each at its measured rate
        for task in sets:
            full, n = sets[task], int(counts[size][task])
            items = [full[i * len(full) // n] for i in range(min(n, len(full)))]
            t_plain, plain = timed(run_plain, model, tokenizer, items, args.batch_size)
            t_ours, ours = timed(run_classit, model, tokenizer, items, args.batch_size)
            diff = max(abs(a - b) for p, o in zip(plain, ours) for a, b in zip(p, o))
            full_time = [full_time[0] + len(full) * t_plain / len(items), full_time[1] + len(full) * t_ours / len(items)]
            print(f"{size:<6} {task:<16} {len(items):>6} {len(items) / t_plain:>9.1f} {len(items) / t_ours:>10.1f} "
                  f"{t_plain / t_ours:>5.2f}x {diff:>10.1e}", flush=True)
        n = sum(len(s) for s in sets.values())
        print(f"{size:<6} {'suite (full sets)':<16} {n:>6} {n / full_time[0]:>9.1f} {n / full_time[1]:>10.1f} "
              f"{full_time[0] / full_time[1]:>5.2f}x", flush=True)


if __name__ == "__main__":
    main()
