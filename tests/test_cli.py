"""End to end through the real `classit` CLI: the demo config, export, config errors."""

from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from classit.cli import main
from classit.model import BabyLM
from classit.train.fit import ClassitCLI
from helpers import error_line, scalars, small_corpus, small_eval_fast

DEMO = str(Path(__file__).parent.parent / "configs" / "demo.yaml")
SENTENCE = "The cat sat on the mat because it was warm."


@pytest.fixture(scope="module")
def demo_run(tokenizer, tmp_path_factory) -> Path:
    """The demo config for 40 steps (the session tokenizer, so nothing is trained twice)."""
    logs = tmp_path_factory.mktemp("logs")
    main(["fit", "--config", DEMO, "--trainer.max_steps", "40", "--data.val_every", "0.5", "--data.val_sequences", "64",
          "--trainer.log_every_n_steps", "5", "--trainer.logger.init_args.save_dir", str(logs),
          "--data.tokenizer", tokenizer.name_or_path, "--data.num_workers", "0"])
    return logs / "demo" / "version_0"


@pytest.mark.slow
def test_demo_trains_with_falling_loss_and_logs(demo_run):
    curves = scalars(demo_run)
    loss = [v for _, v in curves["train/loss"]]
    assert len(loss) == 8 and loss[-1] < loss[0] - 0.5, loss  # 40 steps: -1.0 on the 3M-word data, -0.6 on the sample
    for tag in ("val/loss", "val/ppl", "lr-AdamW/pg1", "train/device/items_per_sec", "train/words_seen"):
        assert curves[tag], tag
    # the demo's MinimalPairEvalCallback scored the fast BLiMP and EWoK sets when fit ended
    for tag in ("zero_shot/blimp", "zero_shot/ewok", "zero_shot/blimp/syntax", "zero_shot/ewok/social-relations"):
        assert [step for step, _ in curves[tag]] == [40], tag
        assert 30 < curves[tag][0][1] < 70, tag
    assert (demo_run / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_exports_reload_with_the_same_logits(demo_run, tmp_path):
    ckpt = demo_run / "checkpoints" / "last.ckpt"
    module = BabyLM.load_from_checkpoint(ckpt, map_location="cpu").eval()
    main(["export", "--ckpt", str(ckpt), "--out", str(tmp_path / "hf")])
    for folder in (tmp_path / "hf", demo_run / "hf"):  # `classit export` and the end-of-fit export
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        tok = AutoTokenizer.from_pretrained(folder)
        ids = tok(SENTENCE, return_tensors="pt")["input_ids"]
        assert ids[0, 0] == tok.bos_token_id
        chat = tok.apply_chat_template([{"role": "user", "content": "Hi!"}], tokenize=False, add_generation_prompt=True)
        assert chat == "<s><|user|>\nHi!<|end|>\n<|assistant|>\n"  # a pre-training-only run exports the template too
        with torch.no_grad():
            torch.testing.assert_close(model(ids).logits, module.model(ids).logits, rtol=1e-5, atol=1e-5)


class ValidationRows(L.Callback):
    """The rows of every validation batch."""

    def __init__(self):
        self.rows = []

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.rows.append(len(batch["input_ids"]))


def test_validate_takes_micro_batches(tokenizer, data_root, tmp_path):
    data = small_eval_fast(data_root, small_corpus(data_root, tmp_path / "data"))
    cli = ClassitCLI(args=["validate", "--config", DEMO, "--data.data_dir", str(data), "--data.tokenizer",
                           tokenizer.name_or_path, "--data.sources.pretrain.init_args.train_dir", "train",
                           "--data.sources.pretrain.init_args.val_dir", "dev", "--data.num_workers", "0",
                           "--data.batch_size", "8", "--data.micro_batch_size", "2", "--data.val_sequences", "12",
                           "--trainer.logger.init_args.save_dir", str(tmp_path),
                           "--trainer.callbacks+=test_cli.ValidationRows"])
    rows = next(c for c in cli.trainer.callbacks if isinstance(c, ValidationRows)).rows
    assert rows == [2] * 6  # the 12 validation sequences in micro-batches of 2


def test_print_config_shows_the_resolved_config(capsys):
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", DEMO, "--print_config"])
    assert done.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["n_layer"] == 4 and config["data"]["block_size"] == 128


def test_unknown_config_key_is_named_by_fit_and_plan(tmp_path):
    """The same line from ``fit`` and ``plan`` (whose parser has no subcommand: jsonargparse names the group)."""
    config = yaml.safe_load(Path(DEMO).read_text())
    config["model"]["n_layers"] = config["model"].pop("n_layer")
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump(config))
    line = next(i for i, text in enumerate(typo.read_text().splitlines(), 1) if text.strip().startswith("n_layers:"))
    expected = f"{typo}:{line}: model.n_layers: unknown key; did you mean model.n_layer?"
    assert error_line(["fit", "--config", str(typo)]) == expected
    assert error_line(["plan", "--config", str(typo)]) == expected


def test_model_of_another_vocabulary_stops_before_training(tiny_model_dir, tokenizer):
    line = error_line(["fit", "--config", DEMO, "--model.init_from", str(tiny_model_dir), "--model.n_embd", "64",
                       "--model.intermediate_size", "128", "--model.n_layer", "2", "--model.tie_embeddings", "false",
                       "--data.vocab_size", "1024"])
    shapes = "(2048, 64) there, (1024, 64) here"
    assert line == (f"{tiny_model_dir}: weights do not fit this model (is the tokenizer the same?): "
                    f"model.embed_tokens.weight: {shapes}; lm_head.weight: {shapes}")


def test_missing_data_stops_with_one_line_that_says_how_to_fetch_it(tmp_path):
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", DEMO, "--data.data_dir", str(tmp_path / "nowhere")])
    message = str(done.value.code)
    assert message.startswith("classit: error: ") and "\n" not in message
    assert str(tmp_path / "nowhere") in message and "classit data download" in message


@pytest.mark.slow
def test_init_from_a_lightning_checkpoint_copies_its_weights(demo_run):
    ckpt = demo_run / "checkpoints" / "last.ckpt"
    trained = BabyLM.load_from_checkpoint(ckpt, map_location="cpu")
    hparams = {k: v for k, v in trained.hparams.items() if k != "init_from"}
    started = BabyLM(**hparams, init_from=str(ckpt))
    for (name, a), b in zip(trained.model.state_dict().items(), started.model.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.slow
@pytest.mark.parametrize("override, expected", [
    ([], "data.sources.switchboard.init_args.swda: no SwDA files in {data}/swda/train; SwDA is not bundled"),
    (["--data.sources.simple_wiki.init_args.file", "simple_wiki.train"],
     "data.sources.simple_wiki.init_args.file: {data}/simple_wiki.train not found"),
])
def test_missing_instruction_data_stops_naming_its_key(data_root, tokenizer, tmp_path, override, expected):
    data = tmp_path / "data"  # the BabyLM corpus, without SwDA unless the test is about another file
    data.mkdir()
    (data / "babylm-corpus").symlink_to(data_root / "babylm-corpus")
    if override:
        (data / "swda").symlink_to(data_root / "swda")
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(Path(DEMO).with_name("demo_seq.yaml")), "--data.data_dir", str(data),
              "--data.tokenizer", tokenizer.name_or_path, *override])
    assert str(done.value.code).startswith("classit: error: " + expected.format(data=data)), done.value.code


@pytest.mark.parametrize("override, expected", [
    (["--data.block_size", "1000000"], "data.block_size: micro-batches of 16 sequences × 1000000 tokens need ≈"),
    (["--data.vocab_size", "10"], "data.vocab_size: 10 tokens is too few; the byte-level BPE needs at least 262"),
    (["--data.batch_size", "0"], "data.batch_size: a positive number of sequences, not 0"),
    (["--data.micro_batch_size", "-2"], "data.micro_batch_size: a positive number of sequences, not -2"),
], ids=["block_size", "vocab_size", "batch_size", "micro_batch_size"])
def test_sizes_stop_in_one_line_before_any_data_is_prepared(data_root, tmp_path, override, expected):
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", DEMO, "--data.cache_dir", str(tmp_path / "cache"),
              "--trainer.logger.init_args.save_dir", str(tmp_path / "logs"), *override])
    message = str(done.value.code)
    assert message.startswith("classit: error: " + expected) and "\n" not in message, message
    if "block_size" in expected:  # the estimate against the free memory, and what to lower
        assert "GiB free on cpu; lower data.micro_batch_size" in message and message.endswith("or data.block_size")
    assert not (tmp_path / "cache").exists()  # no tokenizer trained, nothing tokenized


def test_tokenizer_command_refuses_a_vocabulary_below_its_bytes(data_root, tmp_path):
    with pytest.raises(SystemExit) as done:
        main(["tokenizer", "--corpus", str(data_root / "babylm-corpus" / "train_3M"), "--out", str(tmp_path / "tok"),
              "--vocab_size", "100"])
    assert str(done.value.code).startswith("classit: error: --vocab_size: 100 tokens is too few; the byte-level BPE "
                                           "needs at least 262 (6 special tokens + 256 bytes)")
    assert not (tmp_path / "tok").exists()


COMMANDS = ["fit", "validate", "plan", "study", "tokenizer", "export", "evaluate", "compare", "finetune",
            "report", "submission", "data download", "data build-it"]


def test_help_lists_every_command_one_line_each(capsys):
    main(["--help"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("usage: classit COMMAND")
    for command in COMMANDS:
        assert sum(line.startswith(f"  {command}  ") for line in lines) == 1, command
    with pytest.raises(SystemExit) as done:
        main([])  # no command: the same list, and a failure
    assert done.value.code != 0 and all(f"  {command}  " in done.value.code for command in COMMANDS)
    with pytest.raises(SystemExit) as done:
        main(["test", "--config", DEMO])  # Lightning's test loop: BabyLM has none
    assert str(done.value.code).startswith("classit: error: classit test: BabyLM has no test step; `classit validate")


@pytest.mark.parametrize("command, description", [
    (["data"], "Data: download the official sets; build the instruction sets as JSONL."),
    (["finetune"], "Fine-tune a model on (Super)GLUE tasks, once per task and seed, and score it."),
    (["evaluate"], "Score a model on the BabyLM zero-shot tasks, as the BabyLM 2025 pipeline does."),
])
def test_subcommand_help_opens_with_a_whole_sentence(capsys, command, description):
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    paragraph = " ".join(text.split("\n\n")[1].split())  # the description, after the usage
    assert paragraph == description
