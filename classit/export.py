"""A trained model outside training: Hugging Face folders written and read, the tokenizer kept inside checkpoints,
and ``classit export``. Evaluators load models here, without the LightningModule."""

import io
import tarfile
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from classit.checkpoint_io import load_checkpoint
from classit.data.store import output_folder
from classit.data.tokenizer import load_tokenizer, tokenizer_fingerprint
from classit.decoder import build_decoder
from classit.files import read_json

TOKENIZER_KEY = "classit_tokenizer"  # a checkpoint's tokenizer, as the tar archive of its saved folder
DECODER_SIZES = ("arch", "vocab_size", "n_layer", "n_embd", "n_head", "intermediate_size", "block_size",
                 "tie_embeddings", "dropout", "special_ids")  # the BabyLM hyperparameters that build its decoder


def tokenizer_to_bytes(tokenizer) -> bytes:
    """The tokenizer's saved folder as a tar archive."""
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(tmp, arcname=".")
        return buffer.getvalue()


def tokenizer_from_bytes(data: bytes):
    """Load a tokenizer stored by :func:`tokenizer_to_bytes`."""
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp, filter="data")
        return load_tokenizer(tmp)


def check_same_tokenizer(theirs, ours, what: str) -> None:
    """Stop with a clear message when weights come with another tokenizer than the run's (fingerprints differ)."""
    if tokenizer_fingerprint(theirs) != tokenizer_fingerprint(ours):
        raise ValueError(f"{what} was trained with tokenizer {tokenizer_fingerprint(theirs)} but this run's is "
                         f"{tokenizer_fingerprint(ours)} ({len(ours)} tokens): the same token ids would mean other "
                         "text; set data.tokenizer to the tokenizer folder of those weights (an export's hf/ folder)")


def save_pretrained(model, tokenizer, out: str | Path) -> None:
    """Write a Hugging Face folder (model, and tokenizer where there is one) that ``from_pretrained`` loads."""
    model.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)


def check_weights(folder: Path) -> None:
    """Stop in one line naming the file when a Hugging Face folder holds no weights, or safetensors cut short."""
    from safetensors import SafetensorError, safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files and not list(folder.glob("pytorch_model*.bin")):
        raise FileNotFoundError(f"{folder}: no model weights (model.safetensors or pytorch_model.bin) in this model "
                                "folder; export the model again (`classit export`) or copy its weights there")
    for file in files:
        try:
            with safe_open(file, "pt"):
                pass
        except SafetensorError as error:
            raise ValueError(f"{file}: damaged model weights ({str(error).removeprefix('Error while ')}); "
                             "copy or export the model again") from None


TRUST_OWN_CODE = ("which runs only if you trust it: add --trust_remote_code true (the official pipeline always "
                  "does)")


def check_own_code(folder: Path, trust_remote_code: bool, advice: str = TRUST_OWN_CODE) -> None:
    """Stop in one line when a folder's config.json maps the model to its own modelling code (``auto_map``) and the
    user has not said to run it; ``advice`` says what the command accepts instead."""
    auto_map = read_json(folder / "config.json").get("auto_map") or {}
    if auto_map and not trust_remote_code:
        refs = [ref for value in auto_map.values() for ref in ([value] if isinstance(value, str) else value) if ref]
        files = sorted({ref.split("--")[-1].rsplit(".", 1)[0] + ".py" for ref in refs})
        raise ValueError(f"{folder}: the model comes with its own modelling code ({', '.join(files)}, named by "
                         f"config.json auto_map), {advice}")


def load_pretrained(path: str | Path, trust_remote_code: bool = False, own_code_advice: str = TRUST_OWN_CODE):
    """``(hf_model, tokenizer)`` from a Hugging Face folder (its own modelling code only with ``trust_remote_code``;
    else ``own_code_advice`` ends the line that stops) or a classit Lightning checkpoint (its decoder with sdpa
    attention, as ``from_pretrained`` loads a Hugging Face folder). Weights saved in another dtype are loaded in
    float32."""
    path = Path(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: not a Hugging Face model folder (no config.json)")
        check_own_code(path, trust_remote_code, own_code_advice)  # reads config.json: a malformed one stops there
        check_weights(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, trust_remote_code=trust_remote_code)
        return model, load_tokenizer(path, need_bos=False)  # a model classit did not train: scored as the pipeline does
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint or Hugging Face folder")
    checkpoint = load_checkpoint(path)  # a damaged checkpoint stops here with one line
    if TOKENIZER_KEY not in checkpoint or "hyper_parameters" not in checkpoint:
        raise ValueError(f"{path}: checkpoint holds no tokenizer; was it written by classit?")
    sizes = {name: checkpoint["hyper_parameters"][name] for name in DECODER_SIZES}
    model = build_decoder(**sizes, attention="sdpa")
    model.load_state_dict({k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()
                           if k.startswith("model.")})
    return model, tokenizer_from_bytes(checkpoint[TOKENIZER_KEY])


def export(*, ckpt: str, out: str) -> None:
    """Turn a classit Lightning checkpoint into a Hugging Face folder (model and tokenizer).

    Args:
        ckpt: the ``.ckpt`` file.
        out: folder to write.
    """
    output_folder(out, "--out")
    save_pretrained(*load_pretrained(ckpt), out)
    print(f"exported {ckpt} to {out}")
