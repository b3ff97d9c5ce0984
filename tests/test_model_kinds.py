"""Models and tokenizers classit did not train, built here from `transformers` classes (tiny, no download): GPT-2,
GPT-NeoX (Pythia), OPT and LLaMA; no pad token; left padding; bf16 and fp16 weights; ``pytorch_model.bin``; a folder
with its own modelling code (``auto_map``). Each scored by ``classit evaluate`` equal to one forward per text, and
fine-tuned by ``classit finetune``; bad input stops in one line."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from classit.cli import main
from classit.eval.scoring import score_plain
from classit.eval.zero_shot import load_items
from classit.files import read_jsonl
from helpers import DEMO, error_line, model_folder, small_eval_fast, write_jsonl

KINDS = ["gpt2", "gpt_neox", "opt", "llama", "no_pad", "left_padding", "bf16", "fp16", "pytorch_bin", "remote_code"]


@pytest.fixture(scope="module")
def few_items(data_root, tmp_path_factory) -> Path:
    """A few BLiMP and EWoK items of the fast sets (the bundled sample has them)."""
    return small_eval_fast(data_root, tmp_path_factory.mktemp("few")) / "babylm-eval-fast"


@pytest.fixture(scope="module")
def few_wsc(data_root, tmp_path_factory) -> Path:
    """WSC (in the bundled sample as completed for the tests, and in the real data): 16 training items, 8 to test."""
    source, out = data_root / "babylm-eval" / "glue_filtered", tmp_path_factory.mktemp("wsc")
    write_jsonl(out / "wsc.train.jsonl", read_jsonl(source / "wsc.train.jsonl")[:16])
    write_jsonl(out / "wsc.valid.jsonl", read_jsonl(source / "wsc.valid.jsonl")[:8])
    return out


def one_text_at_a_time(folder: Path, task: str, task_dir: Path) -> list[list[float]]:
    """Each option of each item scored alone: one full forward per text, the model as transformers loads it."""
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return [[score_plain(model, tokenizer, [text], [cont], batch_size=1)[0]
             for text, cont in zip(item.texts, item.continuations)] for item in load_items(task, task_dir)]


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_evaluate_scores_each_kind_as_one_forward_per_text(kind, tokenizer, few_items, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    folder = model_folder(kind, tokenizer, tmp_path / "model")
    main(["evaluate", "--model", str(folder), "--data_dir", str(few_items), "--tasks", "blimp,ewok",
          "--out", str(tmp_path / "out"), "--batch_size", "7", "--trust_remote_code", "true"])
    for task, sub in (("blimp", "blimp_fast"), ("ewok", "ewok_fast")):
        got = [r["scores"] for r in read_jsonl(tmp_path / "out" / "predictions" / f"{task}.jsonl")]
        expected = one_text_at_a_time(folder, task, few_items / sub)
        assert len(got) == len(expected) > 10
        assert torch.allclose(torch.tensor(got), torch.tensor(expected), atol=1e-4), kind
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert 0 <= summary["blimp"]["macro"] <= 100


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_finetune_runs_on_each_kind(kind, tokenizer, few_wsc, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    folder = model_folder(kind, tokenizer, tmp_path / "model")
    main(["finetune", "--model", str(folder), "--data_dir", str(few_wsc), "--tasks", "wsc", "--seeds", "1",
          "--max_epochs", "1", "--batch_size", "8", "--out", str(tmp_path / "out"), "--trust_remote_code", "true"])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["wsc"]["seeds"] == [1] and 0 <= summary["wsc"]["accuracy"]["mean"] <= 100


def test_own_modelling_code_loads_only_when_trusted(tokenizer, few_items, tmp_path):
    folder = model_folder("remote_code", tokenizer, tmp_path / "model")
    for command in (["evaluate", "--data_dir", str(few_items), "--tasks", "blimp"], ["finetune", "--tasks", "wsc"]):
        line = error_line([*command, "--model", str(folder), "--out", str(tmp_path / command[0])])
        assert line.startswith(f"{folder}: ") and "modeling_tiny.py" in line and "--trust_remote_code true" in line


def test_fit_from_a_folder_with_its_own_modelling_code_says_what_it_takes(tokenizer, tmp_path):
    """fit copies weights into its own decoder and has no --trust_remote_code: its line says what init_from takes."""
    folder = model_folder("remote_code", tokenizer, tmp_path / "model")
    line = error_line(["fit", "--config", str(DEMO), "--model.init_from", str(folder),
                       "--trainer.logger.init_args.save_dir", str(tmp_path / "logs")])
    assert line == (f"{folder}: the model comes with its own modelling code (modeling_tiny.py, named by config.json "
                    "auto_map), which fit does not run: it copies weights into its own decoder (model.arch llama or "
                    "gpt2), so model.init_from takes a classit checkpoint or a Hugging Face folder of those "
                    "architectures")


@pytest.mark.parametrize("kind", ["gpt2", "opt"])
def test_an_item_longer_than_learned_positions_stops_in_one_line(kind, tokenizer, few_items, tmp_path):
    """The official pipeline indexes past the position table (an index error): no official score."""
    folder = model_folder(kind, tokenizer, tmp_path / "model", max_length=8)
    line = error_line(["evaluate", "--model", str(folder), "--data_dir", str(few_items), "--tasks", "blimp",
                       "--out", str(tmp_path / "out")])
    key = "n_positions" if kind == "gpt2" else "max_position_embeddings"
    assert line.startswith(str(few_items / "blimp_fast")) and f"{key} 8" in line and "official" in line, line
    assert not (tmp_path / "out" / "summary.json").exists()


@pytest.mark.parametrize("kind", ["llama", "gpt_neox"])
def test_an_item_longer_than_rotary_positions_is_scored_as_the_official_pipeline_does(kind, tokenizer, few_items,
                                                                                        tmp_path, capsys):
    """A rotary model runs past its configured length, so the official pipeline scores such an item (a classit demo
    model, 128 positions, on entity tracking's longest items): the same scores, and one line saying so."""
    folder = model_folder(kind, tokenizer, tmp_path / "model", max_length=8)
    main(["evaluate", "--model", str(folder), "--data_dir", str(few_items), "--tasks", "blimp",
          "--out", str(tmp_path / "out"), "--batch_size", "7"])
    line = next(x for x in capsys.readouterr().out.splitlines() if "max_position_embeddings 8" in x)
    assert line.startswith(str(few_items / "blimp_fast")) and "as the official pipeline does" in line, line
    got = [r["scores"] for r in read_jsonl(tmp_path / "out" / "predictions" / "blimp.jsonl")]
    expected = one_text_at_a_time(folder, "blimp", few_items / "blimp_fast")
    assert len(got) == len(expected) > 10
    assert torch.allclose(torch.tensor(got), torch.tensor(expected), atol=1e-4)


def test_model_folder_kinds_differ_as_named(tokenizer, tmp_path):
    """The builder makes what each kind says: the weights' dtype and format, the tokenizer's pad and side."""
    made = {kind: model_folder(kind, tokenizer, tmp_path / kind) for kind in ("no_pad", "left_padding", "pytorch_bin")}
    assert AutoTokenizer.from_pretrained(made["no_pad"]).pad_token_id is None
    assert AutoTokenizer.from_pretrained(made["left_padding"]).padding_side == "left"
    assert (made["pytorch_bin"] / "pytorch_model.bin").is_file()
    assert not list(made["pytorch_bin"].glob("*.safetensors"))
    bf16 = model_folder("bf16", tokenizer, tmp_path / "bf16")
    assert json.loads((bf16 / "config.json").read_text())["dtype"] == "bfloat16"


@pytest.mark.slow
def test_finetune_cuts_texts_to_a_models_learned_positions(tokenizer, few_wsc, tmp_path, capsys):
    """A GPT-2 of 16 positions under the default --max_length 512: texts are cut to 16 tokens, said in one line
    (an IndexError before); a LLaMA of 16 positions (rotary, any length) keeps --max_length 512."""
    texts = [r["text"] for r in read_jsonl(few_wsc / "wsc.train.jsonl")]
    assert max(len(ids) for ids in tokenizer(texts)["input_ids"]) > 16  # a text the GPT-2 has no positions for
    for kind, kept in (("gpt2", 16), ("llama", 512)):
        folder = model_folder(kind, tokenizer, tmp_path / kind, max_length=16)
        out = tmp_path / f"out_{kind}"
        main(["finetune", "--model", str(folder), "--data_dir", str(few_wsc), "--tasks", "wsc", "--seeds", "1",
              "--max_epochs", "1", "--batch_size", "8", "--out", str(out)])
        line = "finetune: --max_length 512 is more than the model's n_positions 16: each text is cut to 16 tokens"
        assert (line in capsys.readouterr().out) == (kind == "gpt2")
        assert json.loads((out / "runs" / "wsc_seed1.json").read_text())["settings"]["max_length"] == kept
        assert json.loads((out / "summary.json").read_text())["wsc"]["seeds"] == [1]
