"""The Hugging Face decoder a BabyLM trains: a LLaMA or GPT-2 causal LM built from a few sizes, and its attention."""

from typing import Literal

from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
from transformers.utils import is_flash_attn_2_available

Attention = Literal["auto", "sdpa", "flex_attention", "flash_attention_2", "eager"]
DEFAULT_SPECIAL_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}


def resolve_attention(choice: Attention) -> str:
    """The Hugging Face ``attn_implementation`` for ``model.attn_implementation``: ``auto`` is flash_attention_2
    where flash-attn is installed and CUDA is there, else sdpa; flash_attention_2 elsewhere stops naming the key."""
    flash = is_flash_attn_2_available()  # False without CUDA
    if choice == "auto":
        return "flash_attention_2" if flash else "sdpa"
    if choice == "flash_attention_2" and not flash:
        raise ValueError("model.attn_implementation: flash_attention_2 needs a CUDA GPU and the flash-attn package, "
                         "not found here; use auto, sdpa, flex_attention or eager")
    return choice


def build_decoder(arch: str, vocab_size: int, n_layer: int, n_embd: int, n_head: int, intermediate_size: int | None,
                  block_size: int, tie_embeddings: bool, dropout: float, special_ids: dict[str, int] | None,
                  attention: str):
    """A randomly initialised HF causal LM from a few sizes (no download); ``attention`` is a Hugging Face
    ``attn_implementation`` (:func:`resolve_attention`), not saved with the config."""
    special_ids = special_ids or DEFAULT_SPECIAL_IDS
    if arch == "llama":
        config = LlamaConfig(vocab_size=vocab_size, hidden_size=n_embd, num_hidden_layers=n_layer,
                             num_attention_heads=n_head, intermediate_size=intermediate_size or 4 * n_embd,
                             max_position_embeddings=block_size, tie_word_embeddings=tie_embeddings,
                             attention_dropout=dropout, **special_ids, attn_implementation=attention)
        return LlamaForCausalLM(config)
    config = GPT2Config(vocab_size=vocab_size, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                        n_inner=intermediate_size, n_positions=block_size, tie_word_embeddings=tie_embeddings,
                        resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout, **special_ids,
                        attn_implementation=attention)
    return GPT2LMHeadModel(config)
