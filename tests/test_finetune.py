"""`classit finetune`: task files in both formats, last-token pooling, a real short fine-tuning run through
the CLI, held-out selection, metrics, the summary, resuming a sweep, and bad input."""

import dataclasses
import json
import math
import random
import shutil
import statistics
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from classit.cli import main
from classit.eval.finetune import FinetuneSettings, SequenceClassifier, collate, encode, scores
from classit.eval.glue import SEPARATOR, TASKS, read_examples
from helpers import write_jsonl

WORDS = "the a cat dog bird sat ran saw on under big small old new house tree road car".split()


def last_word_records(n: int, rng: random.Random) -> list[dict]:
    """RTE-format pairs whose label is decided by the last word alone (`yes` 0, `no` 1)."""
    records = []
    for i in range(n):
        label = rng.randrange(2)
        first = " ".join(rng.choices(WORDS, k=rng.randint(3, 14)))
        second = " ".join(rng.choices(WORDS, k=rng.randint(1, 8)) + [("yes", "no")[label]])
        records.append({"sentence1": first.capitalize() + ".", "sentence2": second, "label": label, "idx": i})
    return records


@pytest.fixture(scope="module")
def last_word_task(tmp_path_factory) -> dict[str, Path]:
    """A data folder with the task, and one whose validation labels are flipped (same texts)."""
    rng = random.Random(0)
    train, valid = last_word_records(400, rng), last_word_records(100, rng)
    folders = {"task": tmp_path_factory.mktemp("last-word"), "flipped": tmp_path_factory.mktemp("flipped")}
    for name, folder in folders.items():
        write_jsonl(folder / "rte.train.jsonl", train)
        write_jsonl(folder / "rte.valid.jsonl", [{**r, "label": 1 - r["label"]} if name == "flipped" else r for r in valid])
    return folders


def finetune_args(model: Path, data_dir: Path, out: Path, seeds: str = "1", tasks: str = "rte") -> list[str]:
    return ["finetune", "--model", str(model), "--data_dir", str(data_dir), "--tasks", tasks, "--seeds", seeds,
            "--out", str(out), "--lr", "2e-3", "--max_epochs", "4", "--batch_size", "16"]


@pytest.fixture(scope="module")
def first_run(tiny_model_dir, last_word_task, tmp_path_factory) -> Path:
    """One seed of the last-word task (BoolQ asked for but without files: skipped)."""
    out = tmp_path_factory.mktemp("ft-out")
    main(finetune_args(tiny_model_dir, last_word_task["task"], out, tasks="rte,boolq"))
    return out


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- task files ---

@pytest.mark.full_data("BabyLM's (Super)GLUE files (babylm-eval/glue_filtered)")
def test_babylm_files_give_joined_texts_that_the_tokenizer_round_trips(data_root, tokenizer):
    folder = data_root / "babylm-eval" / "glue_filtered"
    for task in ("rte", "wsc", "mrpc", "qqp", "mnli", "boolq", "multirc"):
        split = "valid" if task in ("boolq", "multirc") else "train"
        examples = read_examples(folder / f"{task}.{split}.jsonl", task)
        first = json.loads((folder / f"{task}.{split}.jsonl").open().readline())
        assert examples[0]["text"] == SEPARATOR.join(first[f] for f in TASKS[task].fields)
        assert {e["label"] for e in examples} == set(range(TASKS[task].num_labels))
        for e in examples[:50]:
            ids = tokenizer(e["text"])["input_ids"]
            assert ids[0] == tokenizer.bos_token_id
            assert tokenizer.decode(ids[1:]) == e["text"]
    assert len(read_examples(folder / "rte.valid.jsonl", "rte")) == 139


@pytest.mark.full_data("SuperGLUE's MultiRC validation set and BabyLM's multirc.valid")
def test_superglue_multirc_is_flattened_to_one_example_per_answer(data_root):
    path = data_root / "superglue" / "MultiRC" / "val.jsonl"
    record = json.loads(path.open().readline())
    answers = [a for q in record["passage"]["questions"] for a in q["answers"]]
    flat = read_examples(path, "multirc")
    first = flat[:len(answers)]
    question, answer = record["passage"]["questions"][0], record["passage"]["questions"][0]["answers"][0]
    assert first[0] == {"text": SEPARATOR.join([record["passage"]["text"], question["question"], answer["text"]]),
                        "label": answer["label"], "idx": {"paragraph": record["idx"], "question": 0, "answer": 0}}
    assert [e["label"] for e in first] == [a["label"] for a in answers]
    # BabyLM's multirc.valid is a subset of these answers, flattened exactly the same way
    by_idx = {json.dumps(e["idx"], sort_keys=True): e for e in flat}
    babylm = read_examples(data_root / "babylm-eval" / "glue_filtered" / "multirc.valid.jsonl", "multirc")
    assert all(by_idx[json.dumps(e["idx"], sort_keys=True)] == e for e in babylm) and len(babylm) == 2424


@pytest.mark.full_data("SuperGLUE's BoolQ validation set and BabyLM's boolq.valid")
def test_superglue_boolq_true_false_labels_match_babylm(data_root):
    superglue = {e["idx"]: e for e in read_examples(data_root / "superglue" / "BoolQ" / "val.jsonl", "boolq")}
    babylm = read_examples(data_root / "babylm-eval" / "glue_filtered" / "boolq.valid.jsonl", "boolq")
    assert all(superglue[e["idx"]] == e for e in babylm)


# --- pooling ---

def test_last_token_pooling_ignores_padding_on_either_side(tiny_model_dir, tokenizer):
    decoder = AutoModelForCausalLM.from_pretrained(tiny_model_dir).base_model
    torch.manual_seed(0)
    model = SequenceClassifier(decoder, num_labels=3).eval()
    texts = ["A dog.", "The cat sat on the mat because it was warm.", "Birds fly\nhigh over the old house."]
    rows = encode(tokenizer, texts, 512)
    with torch.no_grad():
        alone = torch.cat([model(torch.tensor([r]), torch.ones(1, len(r), dtype=torch.long)) for r in rows])
        right = collate(rows, [0, 0, 0], tokenizer.pad_token_id, [0, 1, 2])
        torch.testing.assert_close(model(right["input_ids"], right["attention_mask"]), alone, atol=1e-5, rtol=1e-4)
        width = right["input_ids"].shape[1]
        left_ids = torch.full_like(right["input_ids"], tokenizer.pad_token_id)
        left_mask = torch.zeros_like(left_ids)
        for i, r in enumerate(rows):
            left_ids[i, width - len(r):], left_mask[i, width - len(r):] = torch.tensor(r), 1
        torch.testing.assert_close(model(left_ids, left_mask), alone, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(alone[0], alone[1], atol=1e-3)


def test_settings_name_what_differs_from_a_records_settings():
    settings = FinetuneSettings(model="m", train_file="t", test_file="v", lr=3e-5, batch_size=32, max_epochs=10,
                                max_length=512, head="mlp", selection="heldout", limit_train=None)
    kept = json.loads(json.dumps(dataclasses.asdict(settings)))  # as a run's record keeps them
    assert settings.differences(kept) == []
    assert settings.differences({**kept, "batch_size": 16}) == ["batch_size: 16 there, 32 now"]
    assert settings.differences({**kept, "old": 1}) == ["old: 1 there, None now"]


def test_long_texts_keep_bos_and_their_end(tokenizer):
    text = " ".join(["word"] * 100) + SEPARATOR + "the question?"
    full = tokenizer(text)["input_ids"]
    cut = encode(tokenizer, [text], 16)[0]
    assert len(cut) == 16 and cut[0] == tokenizer.bos_token_id and cut[1:] == full[-15:]


# --- a real run through the CLI ---

@pytest.mark.slow
def test_learns_a_task_that_only_the_last_token_decides(first_run):
    summary = json.loads((first_run / "summary.json").read_text())
    assert summary["rte"]["accuracy"]["per_seed"][0] >= 90.0, summary["rte"]


def test_summary_layout(first_run, last_word_task):
    summary = json.loads((first_run / "summary.json").read_text())
    rte = summary["rte"]
    for metric in ("accuracy", "f1", "mcc"):
        assert set(rte[metric]) == {"mean", "std", "per_seed"} and len(rte[metric]["per_seed"]) == 1
    assert rte["selection"] == "heldout" and rte["selected_on"] == "accuracy" and rte["seconds"] > 0
    assert summary["glue_tasks"] == ["rte"]
    assert summary["glue_score"] == summary["glue_accuracy"] == rte["accuracy"]["mean"]
    assert str(last_word_task["task"] / "boolq.train.jsonl") in summary["boolq"]["skipped"]
    record = json.loads((first_run / "runs" / "rte_seed1.json").read_text())
    assert record["examples"] == {"train": 360, "select": 40, "test": 100}
    assert len(record["selection_history"]) == 4 and 1 <= record["best_epoch"] <= 4


def test_glue_score_uses_f1_for_mrpc_and_qqp():
    from classit.eval.finetune import summarize

    def run(task, acc, f1):
        return {"task": task, "seed": 1, "accuracy": acc, "f1": f1, "mcc": 0.0, "best_epoch": 1, "seconds": 1.0}
    summary = summarize({"rte": [run("rte", 60, 50)], "mrpc": [run("mrpc", 70, 80)]}, {}, "heldout")
    assert summary["glue_score"] == 70 and summary["glue_accuracy"] == 65


def _binary_metrics(pred: list[int], gold: list[int]) -> tuple[float, float, float]:
    tp = sum(p == g == 1 for p, g in zip(pred, gold))
    tn = sum(p == g == 0 for p, g in zip(pred, gold))
    fp = sum(p == 1 and g == 0 for p, g in zip(pred, gold))
    fn = sum(p == 0 and g == 1 for p, g in zip(pred, gold))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 100 * (tp + tn) / len(gold), 100 * 2 * tp / (2 * tp + fp + fn), (tp * tn - fp * fn) / denominator if denominator else 0.0


def test_metrics_equal_a_direct_computation(first_run):
    record = json.loads((first_run / "runs" / "rte_seed1.json").read_text())
    predictions = read_lines(first_run / "predictions" / "rte_seed1.jsonl")
    assert [p["id"] for p in predictions] == [f"rte_{i}" for i in range(100)]
    direct = _binary_metrics([p["pred"] for p in predictions], [p["label"] for p in predictions])
    assert [record["accuracy"], record["f1"], record["mcc"]] == pytest.approx(direct, abs=1e-4)
    # imperfect predictions: binary, and three classes (F1 is the macro average)
    generator = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(200, 2, generator=generator), torch.randint(0, 2, (200,), generator=generator)
    got = scores(logits, labels, 2)
    assert [got["accuracy"], got["f1"], got["mcc"]] == pytest.approx(
        _binary_metrics(logits.argmax(-1).tolist(), labels.tolist()), abs=1e-4)
    logits, labels = torch.randn(300, 3, generator=generator), torch.randint(0, 3, (300,), generator=generator)
    pred = logits.argmax(-1)
    f1s = [2 * ((pred == c) & (labels == c)).sum().item() / ((pred == c).sum() + (labels == c).sum()).item() for c in range(3)]
    got = scores(logits, labels, 3)
    assert got["accuracy"] == pytest.approx(100 * (pred == labels).float().mean().item(), abs=1e-4)
    assert got["f1"] == pytest.approx(100 * statistics.fmean(f1s), abs=1e-4)


@pytest.mark.slow
def test_heldout_selection_never_looks_at_the_validation_file(first_run, tiny_model_dir, last_word_task, tmp_path):
    """The same run with every validation label flipped selects the same epoch and predicts the same."""
    main(finetune_args(tiny_model_dir, last_word_task["flipped"], tmp_path))
    runs = [json.loads((out / "runs" / "rte_seed1.json").read_text()) for out in (first_run, tmp_path)]
    assert runs[0]["selection_history"] == runs[1]["selection_history"]
    assert runs[0]["best_epoch"] == runs[1]["best_epoch"]
    preds = [read_lines(out / "predictions" / "rte_seed1.jsonl") for out in (first_run, tmp_path)]
    assert [p["probs"] for p in preds[0]] == [p["probs"] for p in preds[1]]
    assert runs[0]["accuracy"] + runs[1]["accuracy"] == pytest.approx(100)


@pytest.mark.slow
def test_a_repeated_sweep_runs_only_what_is_missing(first_run, tiny_model_dir, last_word_task, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(first_run, out)
    finished = out / "runs" / "rte_seed1.json"
    before = (finished.read_bytes(), finished.stat().st_mtime_ns)
    capsys.readouterr()
    main(finetune_args(tiny_model_dir, last_word_task["task"], out, seeds="1,2"))
    assert "rte seed 1: finished earlier" in capsys.readouterr().out
    assert (finished.read_bytes(), finished.stat().st_mtime_ns) == before
    assert (out / "predictions" / "rte_seed2.jsonl").is_file()
    accuracy = json.loads((out / "summary.json").read_text())["rte"]["accuracy"]
    assert len(accuracy["per_seed"]) == 2 and accuracy["std"] == pytest.approx(statistics.stdev(accuracy["per_seed"]))
    with pytest.raises(SystemExit) as stop:  # other settings must not mix with the finished runs
        main(finetune_args(tiny_model_dir, last_word_task["task"], out)[:-1] + ["32"])
    assert str(stop.value).startswith(f"classit: error: {finished}: made with other settings (batch_size: 16 there, 32 now)")


# --- bad input, as the user sees it ---

@pytest.mark.parametrize("case", ["unknown_task", "seeds", "label", "format", "empty"])
def test_bad_input_stops_with_the_file_and_line(case, tiny_model_dir, tmp_path):
    good = [{"sentence1": "A cat.", "sentence2": "It sat.", "label": 0, "idx": i} for i in range(3)]
    write_jsonl(tmp_path / "rte.train.jsonl", good)
    valid = write_jsonl(tmp_path / "rte.valid.jsonl", good)
    tasks, seeds, expected = "rte", "1", None
    if case == "seeds":
        seeds, expected = "42,4x", "--seeds: comma-separated integers (e.g. 42,43,44), not '42,4x'"
    elif case == "unknown_task":
        tasks, expected = "rte,cola", "unknown tasks ['cola']"
    elif case == "label":
        write_jsonl(valid, good[:2] + [{**good[2], "label": 2}])
        expected = f"{valid}:3: field 'label' is 2, outside rte's labels 0, 1"
    elif case == "format":
        write_jsonl(valid, [good[0], {"premise": "A cat.", "hypothesis": "It sat.", "label": 0}])
        expected = f"{valid}:2: not a rte record: expected the fields sentence1, sentence2, label"
    else:  # a later task's file: found before any training
        write_jsonl(tmp_path / "mrpc.train.jsonl", good)
        empty = tmp_path / "mrpc.valid.jsonl"
        empty.write_text("\n")
        tasks, expected = "rte,mrpc", f"{empty}: no examples (the file is empty)"
    with pytest.raises(SystemExit) as stop:
        main(finetune_args(tiny_model_dir, tmp_path, tmp_path / "out", seeds=seeds, tasks=tasks))
    assert str(stop.value).startswith(f"classit: error: {expected}")
    assert not list((tmp_path / "out").glob("runs/*"))


@pytest.mark.parametrize("flags, expected", [
    (["--tasks", "rte,wsc"], "nothing to fine-tune: no files in {data} for rte (no file: provide {data}/rte.train.jsonl"),
    (["--seeds", ""], "--seeds: no seed given; e.g. --seeds 42"),
    (["--batch_size", "0"], "--batch_size: at least 1, not 0"),
    (["--max_epochs", "-1"], "--max_epochs: at least 1, not -1"),
], ids=["no_files", "no_seeds", "batch_size", "max_epochs"])
def test_nothing_to_run_stops_before_the_model_is_loaded(tmp_path, flags, expected):
    """The model path does not exist: each of these stops first, and nothing is written."""
    data = tmp_path / "glue"
    data.mkdir()
    with pytest.raises(SystemExit) as done:
        main(["finetune", "--model", str(tmp_path / "no-model"), "--data_dir", str(data), "--out", str(tmp_path / "out"),
              *flags])
    message = str(done.value.code)
    assert message.startswith("classit: error: " + expected.format(data=data)) and "\n" not in message, message
    if "no files" in expected:
        assert f"wsc (no file: provide {data}/wsc.train.jsonl" in message
    assert not (tmp_path / "out").exists()
