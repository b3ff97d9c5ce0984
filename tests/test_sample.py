"""The bundled data sample: its layout and sizes, the fallback of data_dir() to it, the demo on it through the CLI."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from classit.cli import main
from classit.data import store
from classit.data.corpus import count_words, read_text

DEMO = str(Path(__file__).parent.parent / "configs" / "demo.yaml")
# Overrides that make the demo short; the one place to adapt when the data config's keys change.
SHORT_DEMO = ["--trainer.max_steps", "6", "--data.val_every", "0.5", "--data.val_sequences", "32",
              "--data.vocab_size", "1024", "--data.num_workers", "0", "--data.sources.pretrain.init_args.num_proc", "1"]
CORPUS = {"babylm-corpus/train_3M/gutenberg.train": 150_000, "babylm-corpus/train_3M/simple_wiki.train": 150_000,
          "babylm-corpus/dev/gutenberg.dev": 15_000, "babylm-corpus/dev/simple_wiki.dev": 15_000}
EVAL_ITEMS = {"babylm-eval-fast/blimp_fast": 5, "babylm-eval-fast/ewok_fast": 20}


def notices(text: str) -> int:
    return text.count("using the bundled sample of")


def test_sample_unpacks_to_the_data_layout_once(tmp_path):
    root = store.unpack_sample(tmp_path)
    assert root.parent == tmp_path and root.name.startswith("sample-")
    for path, budget in CORPUS.items():
        words = count_words(read_text(root / path))
        assert 0.99 * budget < words <= budget, (path, words)
    for folder, items in EVAL_ITEMS.items():  # a few lines of each UID / domain file
        files = sorted((root / folder).glob("*.jsonl"))
        assert {len(f.read_text().splitlines()) for f in files} == {items}
    assert len(list((root / "babylm-eval-fast/blimp_fast").glob("*.jsonl"))) == 67
    assert len(list((root / "babylm-eval-fast/ewok_fast").glob("*.jsonl"))) == 11
    readme = (root / "README.md").read_text()
    for words in ("public domain", "CC BY-SA 4.0", "CC BY 4.0", "subset", "classit data download"):
        assert words in readme, words

    (root / "kept.txt").write_text("a file added after unpacking")
    assert store.unpack_sample(tmp_path) == root
    assert (root / "kept.txt").is_file()  # the same folder, not unpacked again
    assert os.listdir(tmp_path) == [root.name]  # and no temporary folder left behind


@pytest.mark.full_data("the real fast BLiMP and EWoK sets (babylm-eval-fast), to compare the sample's files with")
def test_sample_has_every_file_of_the_real_fast_sets(tmp_path, data_root):
    root = store.unpack_sample(tmp_path)
    for folder in EVAL_ITEMS:  # every UID / domain file of the fast set
        assert sorted(f.name for f in (root / folder).glob("*.jsonl")) == sorted(
            f.name for f in (data_root / folder).glob("*.jsonl")), folder


def test_data_dir_without_a_folder_uses_the_sample_and_says_so_once(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(store.DATA_ENV, raising=False)
    monkeypatch.setenv(store.CACHE_ENV, str(tmp_path))
    with caplog.at_level(logging.WARNING, logger=store.__name__):
        first, second = store.data_dir(), store.data_dir()
    assert first == second == store.unpack_sample(tmp_path)
    assert notices(caplog.text) == 1
    words = sum(count_words(read_text(first / path)) for path in CORPUS if path.endswith(".train"))
    assert f"bundled sample of {words:,} training words in {first}" in caplog.text
    assert "`classit data download --out DIR`, then `export CLASSIT_DATA_DIR=DIR`" in caplog.text

    monkeypatch.setenv(store.DATA_ENV, str(tmp_path))
    assert store.data_dir() == tmp_path


def test_a_missing_data_folder_stays_an_error_naming_the_config_key_and_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(store.DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", DEMO])
    message = str(done.value.code)
    assert message.startswith(f"classit: error: {tmp_path / 'nowhere'}: data directory not found (from CLASSIT_DATA_DIR)")
    assert "data_dir or CLASSIT_DATA_DIR" in message and "--data_dir" not in message and "\n" not in message


@pytest.mark.slow
def test_demo_runs_on_the_bundled_sample_through_the_cli(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != store.DATA_ENV}
    env[store.CACHE_ENV] = str(tmp_path / "cache")
    planned = subprocess.run([sys.executable, "-m", "classit.cli", "plan", "--config", DEMO, "--json"],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert json.loads(planned.stdout.strip().splitlines()[-1])["total_steps"] == 300  # the sample is 218 steps an epoch
    done = subprocess.run([sys.executable, "-m", "classit.cli", "fit", "--config", DEMO, *SHORT_DEMO,
                           "--trainer.logger.init_args.save_dir", str(tmp_path / "logs")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "logs" / "demo" / "version_0"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "hf" / "config.json").is_file() and (run / "hf" / "tokenizer.json").is_file()
    assert notices(done.stdout + done.stderr) == 1
    assert str(tmp_path / "cache" / "sample-") in done.stderr
