"""Loading a trained model without the LightningModule: a classit checkpoint gives its decoder and tokenizer."""

import pytest
import torch

from classit.export import TOKENIZER_KEY, load_pretrained, tokenizer_to_bytes
from classit.model import BabyLM


def write_checkpoint(path, module, tokenizer=None) -> None:
    """What Lightning writes of a BabyLM, and its tokenizer archive."""
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    if tokenizer is not None:
        checkpoint[TOKENIZER_KEY] = tokenizer_to_bytes(tokenizer)
    torch.save(checkpoint, path)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_a_checkpoint_loads_as_its_decoder_with_its_tokenizer(arch, tokenizer, tmp_path):
    torch.manual_seed(0)
    module = BabyLM(vocab_size=len(tokenizer), arch=arch, n_layer=1, n_embd=32, n_head=2, intermediate_size=64,
                    block_size=16, special_ids={"pad_token_id": tokenizer.pad_token_id,
                                                "bos_token_id": tokenizer.bos_token_id,
                                                "eos_token_id": tokenizer.eos_token_id}).eval()
    write_checkpoint(tmp_path / "run.ckpt", module, tokenizer)
    model, loaded_tokenizer = load_pretrained(tmp_path / "run.ckpt")
    assert type(model) is type(module.model) and model.config.bos_token_id == tokenizer.bos_token_id
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    ids = torch.tensor([tokenizer("The cat sat.")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model.eval()(ids).logits, module.model(ids).logits)


def test_a_checkpoint_without_a_tokenizer_stops_in_one_line(tmp_path):
    write_checkpoint(tmp_path / "bare.ckpt", BabyLM(vocab_size=64, n_layer=1, n_embd=16, n_head=2, block_size=8))
    with pytest.raises(ValueError, match="holds no tokenizer; was it written by classit"):
        load_pretrained(tmp_path / "bare.ckpt")
