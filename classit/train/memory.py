"""Will a training step fit, or a batch of scored texts? An estimate of the peak against the memory the device has
free, checked before a fit prepares any data and before an evaluation scores anything."""

import os
from pathlib import Path

import torch

from classit.data.plan import micro_batches

GIB = 2 ** 30


def free_memory(device: torch.device) -> int | None:
    """Bytes free on ``device``: CUDA's free memory and what PyTorch's allocator holds unused (reused before it asks
    for more), or the host's available memory within this process's cgroup limit; None where unknown."""
    if device.type == "cuda":
        unused = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return torch.cuda.mem_get_info(device)[0] + unused
    if device.type != "cpu":
        return None
    meminfo = Path("/proc/meminfo")
    lines = meminfo.read_text().splitlines() if meminfo.is_file() else []
    kib = next((int(line.split()[1]) for line in lines if line.startswith("MemAvailable:")), None)
    free = kib * 1024 if kib is not None else os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limit, used = Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")
    if limit.is_file() and used.is_file() and limit.read_text().strip().isdigit():
        free = min(free, int(limit.read_text()) - int(used.read_text()))
    return free


def check_memory(model, data, trainer) -> None:
    """Stop in one line, naming the keys to lower, when the model's estimate for one micro-batch exceeds the memory
    free on the device (on CPU the node's processes share the host's). Not on CUDA under a forking strategy, which
    needs CUDA untouched before it forks."""
    device, launcher = trainer.strategy.root_device, trainer.strategy.launcher
    if device.type == "cuda" and launcher is not None and launcher.is_interactive_compatible:
        return
    micro, _ = micro_batches(data.batch_size, data.micro_batch_size, trainer.world_size)
    need = model.training_memory(micro, half=str(trainer.precision).startswith(("16", "bf16")))
    processes = trainer.num_devices if device.type == "cpu" else 1
    free = free_memory(device)
    if free is not None and need * processes > free:
        each = f" each, for {processes} processes" if processes > 1 else ""
        raise ValueError(f"data.block_size: micro-batches of {micro} sequences × {data.block_size} tokens need "
                         f"≈{need / GIB:.1f} GiB to train{each} (weights, optimizer state, activations, logits), "
                         f"more than the {free / GIB:.1f} GiB free on {device}; lower data.micro_batch_size "
                         "(gradient accumulation keeps the global batch) or data.block_size")


def scoring_memory(config, texts: int, tokens: int) -> int:
    """Bytes that scoring ``texts`` texts of ``tokens`` tokens in one float32 forward of a Hugging Face causal LM
    (``config``) holds beyond its weights: the keys and values of every layer (twice), one layer's activations and
    attention probabilities, and the log-probabilities over the vocabulary at every position: an upper bound, well
    above the peak where texts share tokens, which are run once."""
    width, layers = config.hidden_size, config.num_hidden_layers
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None) or 1
    mlp = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * width
    per_token = 16 * layers * width + (10 * width + 4 * mlp) * 4 + 8 * config.vocab_size + 4 * heads * tokens
    return texts * tokens * per_token


def check_scoring_memory(config, texts: int, tokens: int, batch_size: int, device: torch.device) -> None:
    """Stop in one line naming --batch_size and a size that fits, when the largest batch (``texts`` texts of up to
    ``tokens`` tokens) would need more memory than ``device`` has free."""
    need, free = scoring_memory(config, texts, tokens), free_memory(device)
    if free is not None and need > free:
        fits = max(free // scoring_memory(config, 1, tokens), 1)
        raise ValueError(f"--batch_size {batch_size}: {texts} texts of up to {tokens} tokens need ≈{need / GIB:.1f} "
                         f"GiB to score at once, more than the {free / GIB:.1f} GiB free on {device}; "
                         f"--batch_size {fits} fits")
