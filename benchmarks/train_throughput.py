"""Training throughput of classit against plain PyTorch, in one run.

classit's side is its real training step: a Lightning Trainer fitting the BabyLM module on the curriculum data
module (its sampler, loader and collate; token-normalised
loss, AdamW with parameter groups, LR schedule, gradient clipping, TokenThroughputMonitor, TensorBoard and LR
logging). The baseline is a plain PyTorch loop over the same LlamaForCausalLM: same initial weights, same
batches, same precision, AdamW and clipping, Hugging Face's own mean loss. Two cases on real data through
classit's data path: pre-training blocks of the BabyLM corpus, and Simple Wikipedia lectures packed into rows.
Prints tokens/s of both, their ratio, MFU (of the device's dense peak FLOP/s, ``classit.train.callbacks.peak_flops``;
null where none is known, as on CPUs) and peak memory, then one JSON object as the last line. ``--compile``
compiles both sides' decoder, ``--attn`` picks the attention kernel (``model.attn_implementation``).

    python benchmarks/train_throughput.py --quick                               # about a minute on a CPU
    python benchmarks/train_throughput.py --sizes demo,20m
    python benchmarks/train_throughput.py --sizes 100m --precision bf16-mixed   # on a GPU
    python benchmarks/train_throughput.py --sizes 100m --precision bf16-mixed --compile --attn flex_attention
"""

import argparse
import copy
import json
import logging
import resource
import tempfile
import time
import warnings

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger

from classit.data.babylm import BabyLMCorpus
from classit.data.corpus import corpus_files
from classit.data.curriculum import CurriculumDataModule
from classit.data.lectures import SimpleWikiLectures
from classit.data.store import cache_dir, data_dir
from classit.data.tokenizer import cached_tokenizer
from classit.model import BabyLM
from classit.runtime import keep_freed_memory
from classit.train.callbacks import TokenThroughputMonitor, peak_flops
from classit.train.fit import CurriculumSetup, curriculum_tokenizer


SIZES = {  # n_layer, n_embd, n_head, intermediate_size, block_size, vocab_size, batch_size
    "demo": (4, 128, 4, 384, 128, 8192, 16),  # configs/demo.yaml, 1.9M parameters
    "20m": (8, 384, 6, 1024, 128, 16384, 16),  # 20.5M
    "100m": (12, 768, 12, 2048, 512, 16384, 32),  # configs/pretrain_100m.yaml (its micro-batch), 97.5M
}
CASES = ("pretrain", "packed")


def classit_data(case: str, block_size: int, vocab_size: int, batch_size: int) -> CurriculumDataModule:
    """classit's real data path on the data folder ($CLASSIT_DATA_DIR, else the bundled sample): the BabyLM corpus as
    blocks, or Simple Wikipedia lectures packed into rows (position_ids, no mask), with a tokenizer of the size's
    vocabulary (trained once, cached)."""
    corpus = corpus_files(data_dir() / "babylm-corpus" / "train_3M", ".train")
    tokenizer = cached_tokenizer(corpus, vocab_size, cache_dir()).name_or_path
    source = BabyLMCorpus() if case == "pretrain" else SimpleWikiLectures(pack=True)
    datamodule = CurriculumDataModule({case: source}, batch_size=batch_size, block_size=block_size,
                                      tokenizer=tokenizer, num_workers=0)
    datamodule.use_tokenizer(curriculum_tokenizer(datamodule))
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def first_batches(datamodule: CurriculumDataModule, n: int) -> list[dict]:
    """The first ``n`` global batches the curriculum trains on, collated as its loader collates them."""
    name = datamodule.used[0]
    source, data = datamodule.sources[name], datamodule.train_sets[name]
    return [source.collate([data[i] for i in items]) for _, items in datamodule.plan_for(1).batches(0, 0)[:n]]


class StepTimer(L.Callback):
    """Seconds from the end of step ``warmup`` to the end of the last step (every callback's work included)."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end = warmup, None, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        synchronize(pl_module.device)
        if batch_idx + 1 == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_gb(device: torch.device) -> float:
    """Peak memory allocated on the GPU since the last reset, or the process's peak RSS on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_classit(module: BabyLM, datamodule: CurriculumDataModule, steps: int, warmup: int, precision: str,
                device: torch.device) -> float:
    """Seconds of the timed steps of ``Trainer.fit`` on the curriculum (its sampler, loader and collate)."""
    timer = StepTimer(warmup)
    setup = CurriculumSetup(curriculum_tokenizer(datamodule))  # the tokenizer folder the data was prepared with
    with tempfile.TemporaryDirectory() as logs:
        trainer = L.Trainer(accelerator=device.type, devices=1, precision=precision, max_steps=steps,
                            gradient_clip_val=1.0, log_every_n_steps=10, logger=TensorBoardLogger(logs, name="bench"),
                            callbacks=[setup, TokenThroughputMonitor(), LearningRateMonitor("step"), timer],
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            limit_val_batches=0)
        trainer.fit(module, datamodule=datamodule)
    return timer.end - timer.start


def run_baseline(model: torch.nn.Module, batches: list[dict], warmup: int, precision: str, lr: float,
                 device: torch.device) -> float:
    """Seconds of the timed steps of a plain loop: forward with HF's loss, backward, clipping, AdamW."""
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1,
                                  fused=device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    start = None
    for i, batch in enumerate(batches):
        inputs = {k: v.to(device, non_blocking=True) for k, v in batch.items()
                  if k in ("input_ids", "labels", "attention_mask", "position_ids")}
        with autocast:
            loss = model(**inputs, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i + 1 == warmup:
            synchronize(device)
            start = time.perf_counter()
    synchronize(device)
    return time.perf_counter() - start


def compiled(module: torch.nn.Module, compile: bool) -> torch.nn.Module:
    if compile:
        module.compile()
    return module


def bench(size: str, case: str, steps: int, warmup: int, rounds: int, batch_size: int | None, precision: str,
          device: torch.device, compile: bool = False, attn: str = "auto") -> dict:
    n_layer, n_embd, n_head, inter, block, vocab_size, default_batch = SIZES[size]
    batch_size = batch_size or default_batch
    datamodule = classit_data(case, block, vocab_size, batch_size)
    batches = first_batches(datamodule, warmup + steps)
    tokens = sum(b["input_ids"].numel() for b in batches[warmup:])
    torch.manual_seed(0)
    initial = BabyLM(vocab_size=datamodule.vocab_size, n_layer=n_layer, n_embd=n_embd, n_head=n_head,
                     intermediate_size=inter, block_size=block, lr=1e-4, warmup=0.1, special_ids=datamodule.special_ids,
                     attn_implementation=attn)
    best = {"classit": 0.0, "baseline": 0.0}
    memory = {}
    for round_ in range(rounds):  # alternate the sides and their order; the best round of each counts
        for side in ("baseline", "classit")[::1 if round_ % 2 == 0 else -1]:
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            if side == "classit":
                module = copy.deepcopy(initial)
                compiled(module.model, compile)
                seconds = run_classit(module, datamodule, len(batches), warmup, precision, device)
            else:
                model = compiled(copy.deepcopy(initial.model), compile)
                seconds = run_baseline(model, batches, warmup, precision, 1e-4, device)
            best[side] = max(best[side], tokens / seconds)
            memory[side] = peak_memory_gb(device)
    peak = peak_flops(device, torch.bfloat16 if precision == "bf16-mixed" else torch.float32)
    mfu = initial.flops_per_token * best["classit"] / peak if peak else None
    return {"size": size, "params_m": round(initial.num_parameters() / 1e6, 2), "case": case,
            "batch": f"{batch_size}x{block}", "classit_tokens_per_s": round(best["classit"], 1),
            "baseline_tokens_per_s": round(best["baseline"], 1), "ratio": round(best["classit"] / best["baseline"], 3),
            "mfu": mfu and round(mfu, 4), "classit_peak_gb": round(memory["classit"], 3),
            "baseline_peak_gb": round(memory["baseline"], 3), "device": device_name(device), "precision": precision,
            "attention": initial.attention, "compile": compile}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def main() -> None:
    keep_freed_memory()  # as `classit` does, for both sides
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="demo,20m")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps per side and round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch_size", type=int, help="default: the size's own (see SIZES)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile both sides' decoder")
    parser.add_argument("--attn", default="auto", help="model.attn_implementation: auto, sdpa, flex_attention, ...")
    parser.add_argument("--quick", action="store_true", help="demo size, 15 steps, 2 rounds: about a minute on a CPU")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # no banners between the rows
    warnings.filterwarnings("ignore", module="lightning")  # e.g. "no val_dataloader"
    if args.quick:
        args.sizes, args.steps = "demo", 15
    device = torch.device(args.device)
    print(f"device {device_name(device)}, precision {args.precision}, attention {args.attn}, "
          f"compile {args.compile}, {args.steps} timed steps after {args.warmup}, "
          f"best of {args.rounds} rounds; peak memory: {'GPU allocated' if device.type == 'cuda' else 'process RSS'}")
    print(f"{'size':<6} {'params':>7} {'case':<9} {'batch':>7} {'classit tok/s':>14} {'baseline tok/s':>15} "
          f"{'ratio':>6} {'MFU':>6} {'peak GB':>13}")
    results = []
    for size in args.sizes.split(","):
        for case in args.cases.split(","):
            r = bench(size, case, args.steps, args.warmup, args.rounds, args.batch_size, args.precision, device,
                      args.compile, args.attn)
            results.append(r)
            mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "-"
            print(f"{size:<6} {r['params_m']:>6.1f}M {case:<9} {r['batch']:>7} {r['classit_tokens_per_s']:>14,.0f} "
                  f"{r['baseline_tokens_per_s']:>15,.0f} {r['ratio']:>6.3f} {mfu:>6} "
                  f"{r['classit_peak_gb']:>6.2f}/{r['baseline_peak_gb']:<6.2f}", flush=True)
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
