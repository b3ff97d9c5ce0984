"""Will a training step fit (classit/train/memory.py): the model's estimate against the memory free, without a fit."""

import os

import lightning as L
import pytest
import torch

from classit.data.babylm import BabyLMCorpus
from classit.data.curriculum import CurriculumDataModule
from classit.model import BabyLM
from classit.train.memory import GIB, check_memory, free_memory

def data(batch: int, micro: int) -> CurriculumDataModule:
    """A data module of these batch sizes (nothing is read before its setup)."""
    return CurriculumDataModule({"pretrain": BabyLMCorpus()}, batch_size=batch, micro_batch_size=micro, block_size=64,
                                tokenizer="unused")


SIZES = {"vocab_size": 1000, "n_layer": 1, "n_embd": 32, "n_head": 2, "intermediate_size": 64, "block_size": 64}


def test_the_estimate_grows_by_each_sequences_activations_and_logits():
    model = BabyLM(**SIZES)
    per_token = 1 * (10 * 32 + 4 * 64) * 4 + 1000 * (4 + 8)  # activations (float32), logits with their log-probs
    assert model.training_memory(1) == 16 * model.num_parameters() + 64 * per_token  # weights, grads, AdamW moments
    assert model.training_memory(3) - model.training_memory(2) == 64 * per_token
    # 16-bit activations and logits (their log-probabilities stay float32)
    assert model.training_memory(1) - model.training_memory(1, half=True) == 64 * ((10 * 32 + 4 * 64) * 2 + 1000 * 2)


def test_the_hosts_free_memory_is_within_its_total_and_other_devices_are_unknown():
    free = free_memory(torch.device("cpu"))
    assert 0 < free <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert free_memory(torch.device("meta")) is None


def test_a_micro_batch_too_big_for_the_host_stops_naming_the_keys_to_lower():
    model, trainer = BabyLM(**SIZES), L.Trainer(accelerator="cpu", devices=1, logger=False)
    check_memory(model, data(8, 4), trainer)  # a few MiB
    huge = 2 ** 21  # sequences of 64 tokens: ≈ 2 TB
    need = model.training_memory(huge // 2)
    with pytest.raises(ValueError) as error:
        check_memory(model, data(huge, huge // 2), trainer)  # two micro-batches of half the global batch
    assert str(error.value).startswith(f"data.block_size: micro-batches of {huge // 2} sequences × 64 tokens need "
                                       f"≈{need / GIB:.1f} GiB to train (weights, optimizer state, activations, "
                                       "logits), more than the ")
    assert str(error.value).endswith("GiB free on cpu; lower data.micro_batch_size (gradient accumulation keeps the "
                                     "global batch) or data.block_size")
