"""The LightningModule: preset sizes, token-normalised gradient accumulation, loading weights."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from torch.utils.data import DataLoader
from transformers.utils import is_flash_attn_2_available

from classit.cli import main
from classit.model import BabyLM
from classit.train.callbacks import TokenThroughputMonitor, dense_peak_flops
from helpers import scalars

CONFIGS = Path(__file__).parent.parent / "configs"


@pytest.mark.parametrize("overlays, target", [([], 100e6), (["140m.yaml"], 140e6)])
def test_preset_parameter_counts(overlays, target):
    model_args = yaml.safe_load((CONFIGS / "pretrain_100m.yaml").read_text())["model"]
    for overlay in overlays:  # as LightningCLI merges several --config
        model_args.update(yaml.safe_load((CONFIGS / overlay).read_text())["model"])
    with torch.device("meta"):
        module = BabyLM(vocab_size=16384, **model_args)
    assert abs(module.num_parameters() - target) <= 0.05 * target, module.num_parameters()
    assert module.hparams.block_size == 512


class GradientRecorder(BabyLM):
    """BabyLM that keeps the gradients it hands to the optimizer."""

    def on_before_optimizer_step(self, optimizer):
        super().on_before_optimizer_step(optimizer)
        self.recorded = {n: p.grad.clone() for n, p in self.named_parameters() if p.grad is not None}


def masked_batches(vocab: int) -> list[dict]:
    """Four sequences with very different numbers of target tokens, as instruction data has."""
    g = torch.Generator().manual_seed(0)
    items = []
    for targets in (2, 30, 5, 17):
        ids = torch.randint(3, vocab, (32,), generator=g)
        labels = torch.full((32,), -100)
        labels[-targets:] = ids[-targets:]
        items.append({"input_ids": ids, "labels": labels})
    return items


def test_accumulation_averages_over_target_tokens_not_micro_batches():
    sizes = dict(vocab_size=300, n_layer=1, n_embd=32, n_head=2, intermediate_size=64, block_size=32, warmup=0.0)
    items = masked_batches(300)

    torch.manual_seed(0)
    reference = BabyLM(**sizes)
    batch = torch.utils.data.default_collate(items)
    loss_sum, targets = reference(batch)
    (loss_sum / targets).backward()
    expected = {n: p.grad for n, p in reference.named_parameters()}

    for batch_size, accumulate in ((4, 1), (2, 2), (1, 4)):
        torch.manual_seed(0)
        module = GradientRecorder(**sizes)
        trainer = L.Trainer(max_steps=1, accumulate_grad_batches=accumulate, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
        trainer.fit(module, DataLoader(items, batch_size=batch_size))
        for name, grad in expected.items():
            torch.testing.assert_close(module.recorded[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_init_from_rejects_weights_of_another_vocabulary(tiny_model_dir):
    with pytest.raises(ValueError, match=f"{tiny_model_dir}: weights do not fit.*tokenizer"):
        BabyLM(vocab_size=4096, n_layer=2, n_embd=64, n_head=4, intermediate_size=128, init_from=str(tiny_model_dir))


def test_init_from_hf_folder_copies_weights(tiny_model_dir, tokenizer):
    sizes = dict(vocab_size=len(tokenizer), n_layer=2, n_embd=64, n_head=4, intermediate_size=128)
    with pytest.raises(ValueError, match="not tied"):
        BabyLM(**sizes, init_from=str(tiny_model_dir))
    module = BabyLM(**sizes, tie_embeddings=False, init_from=str(tiny_model_dir))
    from transformers import AutoModelForCausalLM
    source = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    for (name, p), q in zip(module.model.state_dict().items(), source.state_dict().values()):
        torch.testing.assert_close(p, q, msg=name)


@pytest.mark.skipif(is_flash_attn_2_available(), reason="flash attention is available here")
def test_unavailable_attention_stops_naming_the_key(tiny_model_dir):
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(CONFIGS / "demo.yaml"), "--model.attn_implementation", "flash_attention_2",
              "--data.tokenizer", str(tiny_model_dir)])
    message = str(done.value.code)
    assert message.startswith("classit: error: model.attn_implementation: flash_attention_2 needs") and "\n" not in message


def test_flex_attention_does_not_train_on_cpu():
    module = BabyLM(vocab_size=300, n_layer=1, n_embd=32, n_head=2, intermediate_size=64, block_size=32,
                    attn_implementation="flex_attention")
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    with pytest.raises(ValueError, match="model.attn_implementation: flex_attention cannot train on CPU"):
        trainer.fit(module, DataLoader(masked_batches(300), batch_size=2))


def test_mfu_is_logged_against_the_given_peak(tmp_path):
    module = BabyLM(vocab_size=300, n_layer=1, n_embd=32, n_head=2, intermediate_size=64, block_size=32)
    trainer = L.Trainer(max_steps=6, logger=L.pytorch.loggers.TensorBoardLogger(tmp_path, name="run"),
                        callbacks=[TokenThroughputMonitor(window_size=2, peak_flops=1e9)], log_every_n_steps=1,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu")
    trainer.fit(module, DataLoader(masked_batches(300) * 3, batch_size=2))
    logged = {tag: dict(values) for tag, values in scalars(trainer.log_dir).items()}
    tokens_per_s, mfu = logged["train/device/items_per_sec"], logged["train/device/mfu"]
    assert len(mfu) >= 3
    for step, value in mfu.items():
        assert value == pytest.approx(tokens_per_s[step] * module.flops_per_token / 1e9, rel=1e-4)


def test_dense_peaks_of_gpus_lightning_misses():
    assert dense_peak_flops("NVIDIA H200", torch.bfloat16) == 989.4e12  # the SXM part: an H100 SXM's compute
    assert dense_peak_flops("NVIDIA H200 NVL", torch.bfloat16) == 835.5e12
    assert dense_peak_flops("NVIDIA H200", "tfloat32") == 494.7e12
    assert dense_peak_flops("NVIDIA H100 80GB HBM3", torch.bfloat16) is None  # Lightning's table has it


@pytest.mark.parametrize("arch, tied", [("llama", True), ("llama", False), ("gpt2", True)])
def test_flops_per_token_count_the_models_matrix_products(arch, tied):
    """6 FLOPs per weight a token passes through (forward and backward) plus the attention scores and their mix over
    the block (12 · layers · width · block): counted here from the shapes. An embedding lookup, of tokens or of
    positions, is no product; the output layer is one, tied or not."""
    V, L_, d, m, T = 300, 2, 32, 64, 16
    module = BabyLM(arch=arch, vocab_size=V, n_layer=L_, n_embd=d, n_head=2, intermediate_size=m, block_size=T,
                    tie_embeddings=tied)
    if arch == "llama":  # q, k, v, o; gate, up, down; two RMSNorms a layer, one at the end
        weights = L_ * (4 * d * d + 3 * d * m + 2 * d) + d
    else:  # qkv and projection with biases; fc and projection with biases; two LayerNorms a layer, one at the end
        weights = L_ * ((3 * d * d + 3 * d) + (d * d + d) + (d * m + m) + (m * d + d) + 4 * d) + 2 * d
    assert module.flops_per_token == 6 * (weights + V * d) + 12 * L_ * d * T


MEASURE_PEAK = textwrap.dedent("""
    import threading, time
    import lightning as L
    import torch
    from torch.utils.data import DataLoader
    from classit.model import BabyLM

    def anonymous():  # resident memory not backed by a file: what tensors take (mapped libraries may be paged out)
        return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("RssAnon:"))

    def fit(vocab, block, sequences):
        rows = torch.randint(3, vocab, (2 * sequences, block), generator=torch.Generator().manual_seed(0))
        module = BabyLM(vocab_size=vocab, n_layer=2, n_embd=64, n_head=2, intermediate_size=128, block_size=block)
        L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, accelerator="cpu").fit(
            module, DataLoader([{"input_ids": r, "labels": r} for r in rows], batch_size=sequences))
        return module.training_memory(sequences)

    fit(300, 256, 8)  # a small run first: the code that training loads, loaded before the measure
    before, peak, done = anonymous(), [0], threading.Event()

    def watch():  # torch's kernels release the GIL: the high-water mark sampled every half millisecond
        while not done.is_set():
            peak[0] = max(peak[0], anonymous())
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    estimate = fit(32000, 256, 8)
    done.set()
    watcher.join()
    print(estimate, peak[0] - before)
""")



@pytest.mark.slow
def test_the_training_memory_estimate_is_within_3_percent_of_the_measured_peak_on_cpu():
    """A real Trainer's two steps (the second with AdamW's moments), logits the largest part as in small models; the
    peak measured as the process's anonymous resident memory (not the mapped libraries, which the kernel may page out
    and back in) at its highest above what it held before the model was built."""
    done = subprocess.run([sys.executable, "-c", MEASURE_PEAK], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    estimate, peak = map(int, done.stdout.split()[-2:])
    assert peak > 700 * 2 ** 20  # the measure saw the run
    assert estimate == pytest.approx(peak, rel=0.03)
