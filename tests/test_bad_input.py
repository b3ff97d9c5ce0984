"""One line through the real `classit` CLI for each bad file a user names: it says which file (and line) or
config key, and what is wrong."""

import gzip
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from classit.cli import main
from helpers import DEMO, error_line, tiny_fit_config, write_jsonl

GOOD = {"prompt": "How are you today?", "reply": "I am fine, thank you.", "source": "switchboard"}


def fit_config(tmp_path: Path, tokenizer, sources: dict, stages: list[dict]) -> str:
    """The tiny run with ``sources`` and ``stages`` over the data folder ``tmp_path``."""
    data = {"batch_size": 2, "micro_batch_size": 2, "block_size": 64, "sources": sources, "stages": stages}
    return str(tiny_fit_config(tmp_path, "fit", tmp_path, tokenizer, max_steps=2, data_args=data))


def instruction_config(tmp_path: Path, tokenizer, file: str) -> str:
    source = {"class_path": "classit.data.instructions.InstructionFile", "init_args": {"path": file}}
    return fit_config(tmp_path, tokenizer, {"it": source}, [{"name": "it", "sources": ["it"]}])


@pytest.fixture
def read_only(tmp_path) -> Path:
    """A folder this user cannot write in (root ignores file modes: then one under the kernel's /sys)."""
    if os.geteuid() == 0:
        return Path("/sys/classit-read-only")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    return folder


@pytest.mark.parametrize("name, write, expected", [
    ("it.jsonl", lambda p: p.write_text(""), "{path}: no instruction examples (it is empty); give examples with "
                                               "prompt, reply and source (`classit data build-it` writes them)"),
    ("it.jsonl", lambda p: write_jsonl(p, [GOOD, {**GOOD, "prompt": 7}]),
     "{path}:2: field 'prompt' must be a string, got int"),
    ("it.parquet", lambda p: p.write_text("prompt,reply\nhi,there\n"),
     "{path}: not a Parquet file (Parquet magic bytes not found in footer); give a .parquet file, or the examples "
     "as .jsonl"),
])
def test_a_bad_instruction_file_stops_naming_it(tmp_path, tokenizer, name, write, expected):
    write(tmp_path / name)
    config = instruction_config(tmp_path, tokenizer.name_or_path, name)
    assert error_line(["fit", "--config", config]) == expected.format(path=tmp_path / name)


def test_a_corpus_source_in_no_stage_is_named_with_the_stages(tmp_path, data_root, tokenizer):
    (tmp_path / "babylm-corpus").symlink_to(data_root / "babylm-corpus")
    write_jsonl(tmp_path / "it.jsonl", [GOOD] * 4)
    sources = {"pretrain": {"class_path": "classit.data.babylm.BabyLMCorpus",
                            "init_args": {"train_dir": "babylm-corpus/train_3M"}},
               "it": {"class_path": "classit.data.instructions.InstructionFile", "init_args": {"path": "it.jsonl"}}}
    config = fit_config(tmp_path, None, sources, [{"name": "chat", "sources": ["it"]}])
    assert error_line(["fit", "--config", config]) == (
        "data.stages: the corpus source 'pretrain' is in no stage (chat: it), so no tokenizer can be trained; add "
        "'pretrain' to a stage's sources, or set data.tokenizer to a tokenizer folder")


def test_a_yaml_syntax_error_names_the_config_file_and_line(tmp_path):
    lines = DEMO.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if line.startswith("  n_layer:"))
    lines[number] = "  n_layer: [4"
    bad = tmp_path / "bad.yaml"
    bad.write_text("\n".join(lines) + "\n")
    expected = (f"{bad}:{number + 2}: not valid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence "
                f"from line {number + 1}); fix the file there")
    assert error_line(["fit", "--config", str(bad)]) == expected
    assert error_line(["study", "--config", str(bad)]) == expected
    assert error_line(["plan", "--config", str(bad)]) == expected
    options = tmp_path / "evaluate.yaml"
    options.write_text("tasks: blimp\nbatch_size: [8\nout: x\n")
    assert error_line(["evaluate", "--config", str(options)]).startswith(f"{options}:3: not valid YAML")


def test_a_file_that_is_no_checkpoint_stops_fit_before_it_is_unpickled(tmp_path):
    notes = tmp_path / "notes.ckpt"
    notes.write_text("hello, this is not a checkpoint\n")
    assert error_line(["fit", "--config", str(DEMO), "--ckpt_path", str(notes)]) == (
        f"{notes}: damaged checkpoint (not the zip archive torch.save writes: another kind of file, or cut short); "
        "use an earlier one")


@pytest.fixture
def broken_models(tiny_model_dir, tmp_path) -> dict[str, tuple[Path, str]]:
    """Model folders with weights cut short, and with none: ``{kind: (folder, expected message)}``."""
    cut, empty = tmp_path / "cut", tmp_path / "empty"
    shutil.copytree(tiny_model_dir, cut)
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    shutil.copytree(tiny_model_dir, empty, ignore=shutil.ignore_patterns("*.safetensors"))
    return {"cut": (cut, f"{weights}: damaged model weights (deserializing header: incomplete metadata, file not "
                         "fully covered); copy or export the model again"),
            "empty": (empty, f"{empty}: no model weights (model.safetensors or pytorch_model.bin) in this model "
                             "folder; export the model again (`classit export`) or copy its weights there")}


@pytest.mark.parametrize("kind", ["cut", "empty"])
def test_a_broken_model_folder_is_named_by_every_command_that_loads_it(broken_models, data_root, tmp_path, kind):
    folder, expected = broken_models[kind]
    evaluation = data_root / "babylm-eval"
    assert error_line(["evaluate", "--model", str(folder), "--tasks", "blimp", "--data_dir", str(evaluation),
                       "--out", str(tmp_path / "eval")]) == expected
    assert error_line(["finetune", "--model", str(folder), "--tasks", "wsc", "--data_dir",
                       str(evaluation / "glue_filtered"), "--out", str(tmp_path / "ft")]) == expected
    assert error_line(["fit", "--config", str(DEMO), "--model.init_from", str(folder),
                       "--trainer.logger.init_args.save_dir", str(tmp_path / "logs")]) == expected


def test_an_output_folder_that_cannot_be_written_is_named(read_only, tiny_model_dir, data_root, tmp_path):
    out = read_only / "out"
    why = "Operation not permitted" if os.geteuid() == 0 else "Permission denied"
    assert error_line(["evaluate", "--model", str(tiny_model_dir), "--tasks", "blimp", "--data_dir",
                       str(data_root / "babylm-eval"), "--out", str(out)]) == (
        f"{out} (--out): cannot make this folder ({why}); choose one you can write to")
    assert error_line(["export", "--ckpt", str(tmp_path / "any.ckpt"), "--out", str(out)]) == (
        f"{out} (--out): cannot make this folder ({why}); choose one you can write to")
    assert error_line(["fit", "--config", str(DEMO), "--trainer.logger.init_args.save_dir", str(out)]) == (
        f"{out} (trainer.logger's save_dir): cannot make this folder ({why}); choose one you can write to")
    (tmp_path / "file").touch()
    assert error_line(["export", "--ckpt", str(tmp_path / "any.ckpt"), "--out", str(tmp_path / "file" / "hf")]) == (
        f"{tmp_path / 'file' / 'hf'} (--out): a file is in the way, a folder was expected; choose another path")


def test_a_cache_dir_that_is_a_file_is_named(tmp_path, monkeypatch):
    (tmp_path / "cache").touch()
    monkeypatch.setenv("CLASSIT_CACHE_DIR", str(tmp_path / "cache"))
    logs = str(tmp_path / "logs")
    assert error_line(["fit", "--config", str(DEMO), "--trainer.logger.init_args.save_dir", logs]) == (
        f"CLASSIT_CACHE_DIR: {tmp_path / 'cache'} is a file, a folder was expected for the cache; set "
        "CLASSIT_CACHE_DIR to a folder (it is made if missing)")


def test_data_files_in_another_format_are_named(tiny_model_dir, data_root, tmp_path):
    evaluation = tmp_path / "eval"
    (evaluation / "reading").mkdir(parents=True)
    reading = evaluation / "reading" / "reading_data.csv"
    pq.write_table(pa.table({"item": ["1"], "word": ["cat"]}), reading)  # Parquet under a CSV name
    message = error_line(["evaluate", "--model", str(tiny_model_dir), "--tasks", "reading", "--data_dir",
                          str(evaluation), "--out", str(tmp_path / "out")])
    assert message.startswith(f"{reading}: not a CSV file (not UTF-8 text: byte ")
    glue = tmp_path / "glue"
    glue.mkdir()
    shutil.copy(data_root / "babylm-eval" / "glue_filtered" / "wsc.valid.jsonl", glue)
    train = (data_root / "babylm-eval" / "glue_filtered" / "wsc.train.jsonl").read_bytes()
    (glue / "wsc.train.jsonl").write_bytes(gzip.compress(train))  # compressed, under the plain name
    message = error_line(["finetune", "--model", str(tiny_model_dir), "--tasks", "wsc", "--data_dir", str(glue),
                          "--out", str(tmp_path / "ft")])
    assert message == f"{glue}/wsc.train.jsonl:1: not a JSON Lines file (not UTF-8 text)"


def test_non_utf8_corpus_file_is_named_with_its_line(tiny_runs):
    bad = tiny_runs.data / "train" / "broken.train"
    bad.write_bytes(b"a fine first line\nthen \xff\xfe a bad byte\n")
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(tiny_runs.config("utf8"))])
    assert str(done.value.code) == (f"classit: error: {bad}:2: not UTF-8 text (byte 0xff at offset 23); "
                                    "re-encode the file as UTF-8")


def test_malformed_evaluation_line_is_named_with_its_line(tmp_path, data_root, tiny_model_dir):
    folder = tmp_path / "eval" / "blimp_filtered"
    folder.mkdir(parents=True)
    lines = (data_root / "babylm-eval-fast" / "blimp_fast" / "adjunct_island.jsonl").read_text().splitlines()[:3]
    (folder / "adjunct_island.jsonl").write_text("\n".join([lines[0], lines[1][:-5], lines[2]]) + "\n")
    with pytest.raises(SystemExit) as done:
        main(["evaluate", "--model", str(tiny_model_dir), "--data_dir", str(tmp_path / "eval"), "--tasks", "blimp",
              "--out", str(tmp_path / "out")])
    message = str(done.value.code)
    assert message.startswith(f"classit: error: {folder / 'adjunct_island.jsonl'}:2: malformed JSON line (")
