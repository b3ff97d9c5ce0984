"""Shared fixtures: the real shared data, a real tokenizer trained on it, a tiny HF model folder."""

import os
from pathlib import Path

import pytest

from classit.data.corpus import corpus_files
from classit.data.tokenizer import cached_tokenizer

SMALL_VOCAB = 2048


@pytest.fixture(scope="session")
def data_root() -> Path:
    """``$CLASSIT_DATA_DIR`` (set by .ci/run to ../shared/data); without it the tests that need the BabyLM data
    are skipped, saying so, and the rest run (the demo on the bundled sample among them)."""
    path = os.environ.get("CLASSIT_DATA_DIR")
    if not path or not Path(path).is_dir():
        pytest.skip("needs the BabyLM data folder (corpus sample, SwDA, evaluation sets): set CLASSIT_DATA_DIR "
                    "(CI sets it to ../shared/data)")
    return Path(path)


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory) -> Path:
    """One cache for the whole test session, so the tokenizer is trained once."""
    path = tmp_path_factory.mktemp("classit-cache")
    os.environ["CLASSIT_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def tokenizer(data_root, cache_root):
    """A real byte-level BPE tokenizer (vocabulary 2048) trained on the 3M-word BabyLM sample."""
    return cached_tokenizer(corpus_files(data_root / "babylm-corpus" / "train_3M", ".train"), SMALL_VOCAB, cache_root)


@pytest.fixture(scope="session")
def tiny_model_dir(tokenizer, tmp_path_factory) -> Path:
    """A Hugging Face folder with a tiny randomly initialised LLaMA and the real tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    out = tmp_path_factory.mktemp("tiny-model")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
