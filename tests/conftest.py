"""Shared fixtures: the data folder (the real one, or the bundled sample completed for the tests), a real tokenizer
trained on it, a tiny HF model folder and that model loaded, tiny fit configs, that model fine-tuned on RTE and WSC
(``finetuned``); the ``full_data`` marker for tests that need the real data folder (the ``slow`` marker, for what
the quick loop ``pytest -m "not slow"`` leaves out, is declared in pyproject.toml)."""

import os
import random
from pathlib import Path

import pytest
from helpers import TinyRuns, complete_sample, rte_items, small_corpus, write_jsonl, wsc_items

from classit.cli import main
from classit.data.corpus import corpus_files
from classit.data.store import DATA_ENV, unpack_sample
from classit.data.tokenizer import cached_tokenizer
from classit.eval.glue import TASKS as GLUE_TASKS
from classit.files import read_jsonl

SMALL_VOCAB = 2048
REAL_DATA = os.environ.get(DATA_ENV)  # read before data_root points the variable at the tests' own folder
FULL_DATA_HINT = f"set {DATA_ENV} (CI sets it to ../shared/data)"


def pytest_configure(config):
    config.addinivalue_line("markers", f"full_data(what): needs WHAT of the real data folder; skipped without "
                                       f"{DATA_ENV}, saying so")
    if REAL_DATA and not Path(REAL_DATA).is_dir():
        raise pytest.UsageError(f"{DATA_ENV}={REAL_DATA}: no such folder; point it at the data folder "
                                "(CI: ../shared/data), or unset it to test on the bundled sample")


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.full_data("what it needs")``: skipped, naming what, when the real data folder is absent."""
    for item in items:
        marker = item.get_closest_marker("full_data")
        if marker is not None and not REAL_DATA:
            item.add_marker(pytest.mark.skip(reason=f"needs {marker.args[0]}: {FULL_DATA_HINT}"))


@pytest.fixture(scope="session", autouse=True)
def data_root(tmp_path_factory):
    """``$CLASSIT_DATA_DIR`` (set by .ci/run to ../shared/data). Without it, the sample bundled with classit,
    unpacked into this session's temporary folder and completed with small sets in the official formats
    (``helpers.complete_sample``: SwDA, switchboard.dev, the full evaluation layout, the reading CSV, WSC);
    ``$CLASSIT_DATA_DIR`` then points at it for the session, as CI's points at the real folder, so that what reads
    the variable (the configs, the evaluation callback) sees the same data as the tests. Tests that need the real
    sets themselves are marked ``full_data`` and skipped, saying what they need."""
    if REAL_DATA:
        yield Path(REAL_DATA)
        return
    root = complete_sample(unpack_sample(tmp_path_factory.mktemp("sample-cache")))
    os.environ[DATA_ENV] = str(root)
    yield root
    os.environ.pop(DATA_ENV, None)


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory) -> Path:
    """One cache for the whole test session, so the tokenizer is trained once."""
    path = tmp_path_factory.mktemp("classit-cache")
    os.environ["CLASSIT_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def tokenizer(data_root, cache_root):
    """A real byte-level BPE tokenizer (vocabulary 2048) trained on the BabyLM training sample: the 3M-word one of
    the data folder, or the bundled sample's 300k words."""
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


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    """The tiny HF model (``tiny_model_dir``), loaded in float32 for evaluation."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


@pytest.fixture
def tiny_runs(tmp_path, data_root, tokenizer) -> TinyRuns:
    """Tiny fit configs in this test's folder, over a small corpus (``tmp_path/data``: two BabyLM dev files) and the
    session tokenizer: ``tiny_runs.config(name, **changes)``, their logs in ``tiny_runs.run_dir(name)``."""
    return TinyRuns(tmp_path, small_corpus(data_root, tmp_path / "data"), tokenizer.name_or_path)


@pytest.fixture(scope="session")
def finetuned(tiny_model_dir, data_root, tmp_path_factory) -> Path:
    """``classit finetune`` of the tiny model on RTE and WSC (16 training items, one epoch, one seed), scored on
    validation sets of the official sizes (as a submission needs them): the data folder's, else (the bundled
    sample) built here; the sets in ``glue/``."""
    tmp = tmp_path_factory.mktemp("route")
    glue, source = tmp / "glue", data_root / "babylm-eval" / "glue_filtered"
    for task, items in (("rte", rte_items), ("wsc", wsc_items)):
        valid = source / f"{task}.valid.jsonl"
        if valid.is_file() and len(read_jsonl(valid)) == GLUE_TASKS[task].size:
            write_jsonl(glue / f"{task}.train.jsonl", read_jsonl(source / f"{task}.train.jsonl")[:16])
            (glue / f"{task}.valid.jsonl").symlink_to(valid)
        else:
            rng = random.Random(0)
            write_jsonl(glue / f"{task}.train.jsonl", items(rng, 16))
            write_jsonl(glue / f"{task}.valid.jsonl", items(rng, GLUE_TASKS[task].size))
    out = tmp / "eval" / "tiny" / "finetune"
    main(["finetune", "--model", str(tiny_model_dir), "--tasks", "rte,wsc", "--seeds", "1", "--max_epochs", "1",
          "--data_dir", str(glue), "--out", str(out)])
    return tmp
