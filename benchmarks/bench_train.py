"""Training throughput of classit's BabyLM: tokens/s, MFU (on GPUs of known peak) and peak memory for
one optimizer step (forward, summed-token loss, backward, clipping, AdamW) at the sizes of the configs,
with PyTorch's SDPA attention (classit's default) against Hugging Face's eager attention, same model,
same batches, same run.

    python benchmarks/bench_train.py --sizes demo,100m --batch_size 8 --steps 5
    python benchmarks/bench_train.py --sizes 100m,140m --batch_size 32 --precision bf16-mixed   # on a GPU
"""

import argparse
import resource
import time

import torch
from lightning.fabric.utilities.throughput import get_available_flops

from classit.model import BabyLM

SIZES = {  # n_layer, n_embd, n_head, intermediate_size, block_size, vocab (configs/demo.yaml, pretrain_100m, pretrain_140m)
    "demo": (4, 128, 4, 384, 128, 8192),
    "100m": (12, 768, 12, 2048, 512, 16384),
    "140m": (16, 768, 12, 2432, 512, 16384),
}


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # process peak RSS (KiB on Linux)


def bench(size: str, attention: str, batch_size: int, steps: int, warmup: int, precision: str,
          device: torch.device) -> dict:
    n_layer, n_embd, n_head, inter, block, vocab_size = SIZES[size]
    module = BabyLM(vocab_size=vocab_size, n_layer=n_layer, n_embd=n_embd, n_head=n_head, intermediate_size=inter,
                    block_size=block).to(device)
    module.model.set_attn_implementation(attention)
    module.train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4, fused=device.type == "cuda")
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(3, vocab_size, (warmup + steps, batch_size, block), generator=generator)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")

    def step(ids: torch.Tensor) -> None:
        batch = {"input_ids": ids.to(device), "labels": ids.to(device)}
        with autocast:
            loss_sum, targets = module(batch)
        (loss_sum / targets).backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for ids in tokens[:warmup]:
        step(ids)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for ids in tokens[warmup:]:
        step(ids)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens_per_s = steps * batch_size * block / seconds
    peak_flops = get_available_flops(device, torch.bfloat16 if precision == "bf16-mixed" else torch.float32)
    mfu = module.flops_per_token * tokens_per_s / peak_flops if peak_flops else None
    return {"size": size, "params_m": module.num_parameters() / 1e6, "attention": attention,
            "tokens_per_s": tokens_per_s, "mfu": mfu, "peak_gb": peak_memory_gb(device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="demo,100m")
    parser.add_argument("--attention", default="sdpa,eager", help="attention implementations to compare")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"precision {args.precision}, batch {args.batch_size}, {args.steps} timed steps")
    print(f"{'size':<6} {'params':>8} {'attention':<10} {'tokens/s':>10} {'MFU':>6} {'peak GB':>8}")
    for size in args.sizes.split(","):
        for attention in args.attention.split(","):
            r = bench(size, attention, args.batch_size, args.steps, args.warmup, args.precision, device)
            mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] else "-"
            print(f"{r['size']:<6} {r['params_m']:>7.1f}M {r['attention']:<10} {r['tokens_per_s']:>10,.0f} {mfu:>6} "
                  f"{r['peak_gb']:>8.2f}")


if __name__ == "__main__":
    main()
