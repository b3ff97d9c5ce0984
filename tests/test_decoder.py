"""The Hugging Face decoder a BabyLM trains (classit/decoder.py): built from a few sizes, its attention resolved."""

import pytest
import torch
from transformers.utils import is_flash_attn_2_available

from classit.decoder import DEFAULT_SPECIAL_IDS, build_decoder, resolve_attention

SIZES = {"vocab_size": 100, "n_layer": 2, "n_embd": 16, "n_head": 2, "block_size": 32, "dropout": 0.0}


@pytest.mark.parametrize("arch, tie", [("llama", True), ("gpt2", False)])
def test_the_decoder_has_the_sizes_asked_for(arch, tie):
    model = build_decoder(arch, intermediate_size=None, tie_embeddings=tie, special_ids=None, attention="eager",
                          **SIZES)
    config = model.config
    assert (config.vocab_size, config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == \
        (100, 2, 16, 2)
    assert config.max_position_embeddings == 32 and config._attn_implementation == "eager"
    assert {k: getattr(config, k) for k in DEFAULT_SPECIAL_IDS} == DEFAULT_SPECIAL_IDS
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert tied is tie
    mlp = model.model.layers[0].mlp.up_proj if arch == "llama" else model.transformer.h[0].mlp.c_fc
    assert 64 in tuple(mlp.weight.shape)  # no intermediate size: 4 × n_embd
    logits = model(torch.tensor([[1, 5, 7]])).logits
    assert logits.shape == (1, 3, 100)


def test_auto_attention_is_flash_attention_where_it_runs_else_sdpa():
    flash = is_flash_attn_2_available()
    assert resolve_attention("auto") == ("flash_attention_2" if flash else "sdpa")
    assert resolve_attention("eager") == "eager"
    if not flash:
        with pytest.raises(ValueError, match=r"^model\.attn_implementation: flash_attention_2 needs a CUDA GPU"):
            resolve_attention("flash_attention_2")
