"""``classit finetune``: (Super)GLUE fine-tuning over several seeds, the best epoch chosen without the test set.

A classification head reads the decoder's hidden state at the LAST non-padding token (the model is
causal: the first token, BOS, has seen nothing, so a first-token head sees one vector for every
input). Every run trains on the task's training file and picks its best epoch on a selection set: by
default a held-out tenth of the training file (shuffled with the run's seed), so the validation file,
reported as the test set, is never seen before the end; ``selection="valid"`` selects on the
validation file itself, as the official BabyLM pipeline does. Batches group texts of similar length
and are padded to their longest text only.
"""

import copy
import math
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from torch import nn
from torch.utils.data import DataLoader, Sampler
from torchmetrics import Accuracy, F1Score, MatthewsCorrCoef, MetricCollection

from classit import layout
from classit.data import store
from classit.data.padding import pad_with_mask
from classit.eval.glue import TASKS, candidates, find_file, read_examples
from classit.eval.scoring import learned_positions
from classit.eval.summary import write_summary
from classit.eval.tasks import GLUE
from classit.files import read_json, write_json, write_jsonl
from classit.optim import lr_factor, parameter_groups
from classit.runtime import keep_freed_memory, resolve_device

WINDOW = 50  # training batches whose examples are sorted by length together
HELDOUT_SHARE = 0.1
SCORE_METRIC = {"mrpc": "f1", "qqp": "f1"}  # BabyLM's GLUE score: F1 for these, accuracy for the rest


@dataclass(frozen=True)
class FinetuneSettings:
    """What a fine-tuning run's result depends on. A run's record keeps them, so a finished run is reused only
    under the same settings."""
    model: str
    train_file: str
    test_file: str
    lr: float
    batch_size: int
    max_epochs: int
    max_length: int
    head: Literal["mlp", "linear"]
    selection: Literal["heldout", "valid"]
    limit_train: int | None

    def differences(self, kept: dict) -> list[str]:
        """``key: value there, value now`` for each setting that differs from ``kept`` (a record's settings)."""
        now = asdict(self)
        return [f"{key}: {kept.get(key)!r} there, {now.get(key)!r} now" for key in {**now, **kept}
                if kept.get(key) != now.get(key)]


def encode(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids (BOS first); a longer text keeps BOS and its last ``max_length - 1`` tokens."""
    rows = tokenizer(texts)["input_ids"]
    keep_bos = tokenizer.bos_token_id is not None
    return [r if len(r) <= max_length else
            (r[:1] + r[len(r) - max_length + 1:] if keep_bos and r[0] == tokenizer.bos_token_id else r[-max_length:])
            for r in rows]


class LengthBucketBatches(Sampler[list[int]]):
    """Batches of examples of similar length, so padding stays small.

    Training (``shuffle``): each pass shuffles the examples (seeded by ``seed`` and the pass number),
    sorts them by length within windows of ``WINDOW`` batches, cuts batches and shuffles the batches.
    Otherwise the batches follow length order.
    """

    def __init__(self, lengths: list[int], batch_size: int, shuffle: bool = False, seed: int = 0):
        self.lengths, self.batch_size, self.shuffle, self.seed = lengths, batch_size, shuffle, seed
        self.passes = 0

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def _cut(self, order: list[int]) -> list[list[int]]:
        order = sorted(order, key=self.lengths.__getitem__)
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def __iter__(self):
        if not self.shuffle:
            yield from self._cut(list(range(len(self.lengths))))
            return
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.passes)
        self.passes += 1
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        window = self.batch_size * WINDOW
        batches = [b for start in range(0, len(order), window) for b in self._cut(order[start:start + window])]
        yield from (batches[i] for i in torch.randperm(len(batches), generator=generator).tolist())


def collate(rows: list[list[int]], labels: list[int], pad_id: int, indices: list[int]) -> dict:
    """Right-padded ids, attention mask, labels and the examples' indices."""
    ids, mask = pad_with_mask(rows, pad_id)
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor(labels), "index": torch.tensor(indices)}


def loader(ids: list[list[int]], labels: list[int], pad_id: int, batch_size: int, shuffle: bool = False,
           seed: int = 0) -> DataLoader:
    """Length-bucketed, dynamically padded batches of encoded examples."""
    data = list(range(len(ids)))
    return DataLoader(data, batch_sampler=LengthBucketBatches([len(r) for r in ids], batch_size, shuffle, seed),
                      collate_fn=lambda idx: collate([ids[i] for i in idx], [labels[i] for i in idx], pad_id, idx))


def last_token_states(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The hidden state of each row's last non-padding token (right or left padding)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    last = (attention_mask * positions).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def make_head(hidden_size: int, num_labels: int, kind: str) -> nn.Module:
    """``mlp``: the official pipeline's head; ``linear``: one linear layer."""
    if kind == "linear":
        return nn.Linear(hidden_size, num_labels)
    return nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, hidden_size), nn.GELU(),
                         nn.LayerNorm(hidden_size), nn.Dropout(0.1), nn.Linear(hidden_size, num_labels))


def make_metrics(num_labels: int) -> MetricCollection:
    """Accuracy, F1 (binary; macro over classes for 3 labels) and Matthews correlation."""
    task = "binary" if num_labels == 2 else "multiclass"
    extra = {} if num_labels == 2 else {"num_classes": num_labels}
    return MetricCollection({"accuracy": Accuracy(task=task, **extra),
                             "f1": F1Score(task=task, **extra, **({} if num_labels == 2 else {"average": "macro"})),
                             "mcc": MatthewsCorrCoef(task=task, **extra)})


class SequenceClassifier(L.LightningModule):
    """A pre-trained decoder (the base model of a causal LM) and a head on its last non-padding token.

    AdamW (weight decay on every matrix, embeddings too; none on biases and norms), ``warmup_ratio`` of the steps
    of linear warm-up,
    then cosine to ``lr × min_lr_ratio`` at the last step: pre-training's rules (:mod:`classit.optim`). Each
    validation pass scores the selection set; its accuracy, F1 and MCC are logged as ``select/*`` and kept in
    ``history``.
    """

    def __init__(self, decoder: nn.Module, num_labels: int, head: str = "mlp", lr: float = 3e-5,
                 weight_decay: float = 0.01, warmup_ratio: float = 0.06, min_lr_ratio: float = 0.1):
        super().__init__()
        self.save_hyperparameters(ignore=["decoder"])
        self.decoder = decoder
        self.head = make_head(decoder.config.hidden_size, num_labels, head)
        self.select_metrics = make_metrics(num_labels).clone(prefix="select/")
        self.history: list[dict] = []

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)  # the same with left padding
        hidden = self.decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                              use_cache=False).last_hidden_state
        return self.head(last_token_states(hidden, attention_mask))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = F.cross_entropy(logits.float(), batch["labels"])
        self.log("loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.select_metrics.update(self(batch["input_ids"], batch["attention_mask"]).argmax(-1), batch["labels"])

    def on_validation_epoch_end(self) -> None:
        values = {k: v.item() for k, v in self.select_metrics.compute().items()}
        self.select_metrics.reset()
        self.log_dict(values, prog_bar=True)
        self.history.append({"epoch": self.current_epoch, **{k.removeprefix("select/"): v for k, v in values.items()}})

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        return {"index": batch["index"], "logits": self(batch["input_ids"], batch["attention_mask"]).float()}

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(parameter_groups(self, hp.weight_decay, decay_embeddings=True), lr=hp.lr, betas=(0.9, 0.999), eps=1e-8)
        total = max(int(self.trainer.estimated_stepping_batches), 1)

        def factor(step: int) -> float:
            return lr_factor(step, total, hp.warmup_ratio, hp.min_lr_ratio)

        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "interval": "step"}}


class TaskProgressBar(TQDMProgressBar):
    """Lightning's progress bar, its description naming the task, seed and epoch."""

    def __init__(self, label: str):
        super().__init__()
        self.label = label

    def on_train_epoch_start(self, trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(f"{self.label} epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")


def split_heldout(n: int, seed: int) -> tuple[list[int], list[int]]:
    """Training and selection indices: a seeded random tenth (at least one example) is held out."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    held = max(1, round(n * HELDOUT_SHARE))
    return sorted(order[held:]), sorted(order[:held])


def scores(logits: torch.Tensor, labels: torch.Tensor, num_labels: int) -> dict[str, float]:
    """Accuracy and F1 in percent, MCC in [-1, 1]."""
    values = {k: v.item() for k, v in make_metrics(num_labels)(logits.argmax(-1), labels).items()}
    return {"accuracy": 100 * values["accuracy"], "f1": 100 * values["f1"], "mcc": values["mcc"]}


def run_one(decoder: nn.Module, tokenizer, task: str, seed: int, train: list[dict], test: list[dict],
            settings: FinetuneSettings, work_dir: Path) -> tuple[dict, list[dict]]:
    """Fine-tune a copy of ``decoder`` on one task with one seed; the record and the test predictions."""
    spec = TASKS[task]
    L.seed_everything(seed, verbose=False)
    if settings.limit_train:
        train = train[:settings.limit_train]
    if settings.selection == "heldout":
        train_idx, select_idx = split_heldout(len(train), seed)
        train, select = [train[i] for i in train_idx], [train[i] for i in select_idx]
    else:
        select = test
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = {name: encode(tokenizer, [e["text"] for e in rows], settings.max_length)
               for name, rows in (("train", train), ("select", select), ("test", test))}
    labels = {name: [e["label"] for e in rows] for name, rows in (("train", train), ("select", select), ("test", test))}
    batch_size = settings.batch_size
    module = SequenceClassifier(copy.deepcopy(decoder).train(), spec.num_labels, settings.head, settings.lr)
    gpu = resolve_device().type == "cuda"
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        best = ModelCheckpoint(dirpath=tmp, monitor=f"select/{spec.select_on}", mode="max", save_top_k=1,
                               save_weights_only=True, filename="best")
        trainer = L.Trainer(max_epochs=settings.max_epochs, accelerator="auto", devices=1,
                            precision="bf16-mixed" if gpu else "32-true", logger=False, num_sanity_val_steps=0,
                            callbacks=[best, TaskProgressBar(f"{task} seed {seed}")], enable_model_summary=False)
        trainer.fit(module, loader(encoded["train"], labels["train"], pad_id, batch_size, shuffle=True, seed=seed),
                    loader(encoded["select"], labels["select"], pad_id, batch_size))
        history = module.history
        outputs = trainer.predict(module, loader(encoded["test"], labels["test"], pad_id, batch_size),
                                  ckpt_path=best.best_model_path)
    index = torch.cat([o["index"] for o in outputs])
    logits = torch.empty(len(test), spec.num_labels)
    logits[index] = torch.cat([o["logits"] for o in outputs]).cpu()
    best_epoch = max(history, key=lambda h: h[spec.select_on])["epoch"]  # the first of equal values, as the checkpoint
    record = {"task": task, "seed": seed, **scores(logits, torch.tensor(labels["test"]), spec.num_labels),
              "best_epoch": best_epoch + 1, "selection_history": history,
              "examples": {"train": len(train), "select": len(select), "test": len(test)}, "settings": asdict(settings)}
    probs = logits.softmax(-1)
    predictions = [{"id": f"{task}_{i}", "idx": e["idx"], "label": e["label"], "pred": int(probs[i].argmax()),
                    "probs": [round(p, 6) for p in probs[i].tolist()]} for i, e in enumerate(test)]
    return record, predictions


def _mean_std(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "per_seed": values}


def summarize(records: dict[str, list[dict]], skipped: dict[str, str], selection: str) -> dict:
    """Mean, sample std and per-seed values of each metric per task; the two GLUE averages."""
    summary = {}
    for task, runs in records.items():
        summary[task] = {m: _mean_std([r[m] for r in runs]) for m in ("accuracy", "f1", "mcc")}
        summary[task].update(seeds=[r["seed"] for r in runs], best_epoch=[r["best_epoch"] for r in runs],
                             selection=selection, selected_on=TASKS[task].select_on,
                             seconds=round(sum(r["seconds"] for r in runs), 2))
    summary.update({task: {"skipped": why} for task, why in skipped.items()})
    if records:
        summary["glue_score"] = statistics.fmean(summary[t][SCORE_METRIC.get(t, "accuracy")]["mean"] for t in records)
        summary["glue_accuracy"] = statistics.fmean(summary[t]["accuracy"]["mean"] for t in records)
        summary["glue_tasks"] = list(records)
    return summary


def _table(summary: dict) -> str:
    lines = [f"{'task':<8} {'seeds':>5}  {'accuracy':>13}  {'f1':>13}  {'mcc':>13}  {'best epochs':<12} {'seconds':>8}"]
    for task, s in summary.items():
        if not isinstance(s, dict):
            continue
        if "skipped" in s:
            lines.append(f"{task:<8} skipped: {s['skipped']}")
            continue
        cells = [f"{s[m]['mean']:6.2f} ± {s[m]['std']:4.2f}" if m != "mcc" else f"{s[m]['mean']:6.3f} ± {s[m]['std']:.3f}"
                 for m in ("accuracy", "f1", "mcc")]
        epochs = ",".join(map(str, s["best_epoch"]))
        lines.append(f"{task:<8} {len(s['seeds']):>5}  {cells[0]:>13}  {cells[1]:>13}  {cells[2]:>13}  {epochs:<12} {s['seconds']:>8.1f}")
    if "glue_score" in summary:
        lines.append(f"glue_score {summary['glue_score']:.2f} (accuracy; F1 for MRPC and QQP)   "
                     f"glue_accuracy {summary['glue_accuracy']:.2f} (accuracy only)")
    return "\n".join(lines)


def _load_done(path: Path, settings: FinetuneSettings) -> dict | None:
    """A finished run's record, if it was made with these settings; another run's settings stop the sweep."""
    if not path.is_file():
        return None
    record = read_json(path)
    changed = settings.differences(record["settings"])
    if changed:
        raise ValueError(f"{path}: made with other settings ({'; '.join(changed)}); use another --out or delete it")
    return record


def finetune(*, model: str, tasks: str = ",".join(TASKS), seeds: str = "42", out: str = "finetune_results",
             data_dir: str | None = None, lr: float = 3e-5, batch_size: int | None = None,
             max_epochs: int | None = None, max_length: int = 512, head: Literal["mlp", "linear"] = "mlp",
             selection: Literal["heldout", "valid"] = "heldout", limit_train: int | None = None,
             trust_remote_code: bool = False) -> dict:
    """Fine-tune a model on (Super)GLUE tasks, once per task and seed, and score it.

    Writes ``OUT/summary.json``, ``OUT/runs/TASK_seedSEED.json`` and ``OUT/predictions/TASK_seedSEED.jsonl``. Each
    (task, seed) picks its best epoch on the selection set and is scored on the task's validation
    file. A (task, seed) already finished in ``out`` with the same settings is not run again.

    Args:
        model: a Hugging Face folder or a classit Lightning checkpoint (``.ckpt``).
        tasks: comma-separated subset of boolq, multirc, rte, wsc, mrpc, qqp, mnli.
        seeds: comma-separated seeds; each runs every task (mean and sample std over seeds).
        out: output folder.
        data_dir: a folder of BabyLM-format ``{task}.train.jsonl``/``{task}.valid.jsonl`` (or SuperGLUE's
            ``BoolQ/``, ``MultiRC/`` folders); default ``$CLASSIT_DATA_DIR/babylm-eval/glue_filtered``.
        lr: peak learning rate (AdamW, weight decay 0.01, 6% warm-up, cosine to 0.1×).
        batch_size: examples per batch; default 32, 16 for BoolQ and MultiRC.
        max_epochs: training epochs; default 10, 30 for WSC.
        max_length: tokens per text at most (a longer text keeps BOS and its end); at most the positions of a model
            whose positions are learned (GPT-2's ``n_positions``, OPT's), saying so.
        head: ``mlp`` (LayerNorm, Linear, GELU, LayerNorm, Dropout 0.1, Linear) or ``linear``.
        selection: ``heldout`` picks the best epoch on a seeded tenth of the training file;
            ``valid`` on the validation file (the official pipeline's choice, which also reports on it).
        limit_train: use only the first N training examples (quick checks).
        trust_remote_code: run the modelling code a model folder brings (``auto_map`` in its config.json), as the
            official pipeline always does.

    Returns:
        The summary: per task accuracy, F1 and MCC (mean, std, per seed), selection, seconds;
        ``glue_score`` (accuracy, F1 for MRPC and QQP) and ``glue_accuracy`` (accuracy only).
    """
    from classit.export import load_pretrained

    names = [t.strip() for t in tasks.split(",") if t.strip()]
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from {', '.join(TASKS)}")
    if not names:
        raise ValueError(f"--tasks: no task given; choose from {', '.join(TASKS)}")
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds: comma-separated integers (e.g. 42,43,44), not {seeds!r}") from None
    if not seed_list:
        raise ValueError("--seeds: no seed given; e.g. --seeds 42, or --seeds 42,43,44 for a mean over three runs")
    for option, value in (("--batch_size", batch_size), ("--max_epochs", max_epochs)):
        if value is not None and value < 1:
            raise ValueError(f"{option}: at least 1, not {value}")
    root = Path(data_dir) if data_dir else layout.eval_dir(store.data_dir()) / GLUE.full
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such data folder")

    data, skipped = {}, {}
    for task in names:  # every file is read and checked before any training
        train_file, test_file = find_file(root, task, "train"), find_file(root, task, "valid")
        if train_file is None or test_file is None:
            split = "train" if train_file is None else "valid"
            skipped[task] = "no file: provide " + " or ".join(map(str, candidates(root, task, split)))
            print(f"{task}: skipped ({skipped[task]})")
            continue
        data[task] = (train_file, read_examples(train_file, task), test_file, read_examples(test_file, task))
    if not data:
        raise FileNotFoundError(f"nothing to fine-tune: no files in {root} for "
                                + "; ".join(f"{task} ({why})" for task, why in skipped.items()))
    out_dir = store.output_folder(out, "--out")
    (out_dir / "runs").mkdir(exist_ok=True)
    layout.predictions_dir(out_dir).mkdir(exist_ok=True)
    keep_freed_memory()
    hf_model, tokenizer = load_pretrained(model, trust_remote_code)
    decoder = hf_model.base_model
    positions = learned_positions(hf_model.config)
    if positions and positions[1] < max_length:
        print(f"finetune: --max_length {max_length} is more than the model's {positions[0]} {positions[1]}: each text "
              f"is cut to {positions[1]} tokens (BOS and its end kept), as Hugging Face's run_glue caps max_length "
              "at the model's length")
        max_length = positions[1]

    records = {}
    for task, (train_file, train, test_file, test) in data.items():
        settings = FinetuneSettings(model=str(Path(model).resolve()), train_file=str(train_file),
                                    test_file=str(test_file), lr=lr, batch_size=batch_size or TASKS[task].batch_size,
                                    max_epochs=max_epochs or TASKS[task].epochs, max_length=max_length, head=head,
                                    selection=selection, limit_train=limit_train)
        records[task] = []
        for seed in seed_list:
            record_path = out_dir / "runs" / f"{task}_seed{seed}.json"
            record = _load_done(record_path, settings)
            if record is None:
                start = time.perf_counter()
                record, predictions = run_one(decoder, tokenizer, task, seed, train, test, settings, out_dir)
                record["seconds"] = round(time.perf_counter() - start, 2)
                write_jsonl(predictions, layout.predictions_file(out_dir, f"{task}_seed{seed}"))
                write_json(record, record_path, indent=2)  # written last: a run is finished once its record exists
            else:
                print(f"{task} seed {seed}: finished earlier ({record_path})")
            print(f"{task} seed {seed}: accuracy {record['accuracy']:.2f}  f1 {record['f1']:.2f}  "
                  f"mcc {record['mcc']:.3f}  (best epoch {record['best_epoch']}, {record['seconds']:.1f}s)")
            records[task].append(record)

    summary = summarize(records, skipped, selection)
    write_summary(layout.summary_file(out_dir), "finetune", summary)
    print(f"\nselection: {'held-out tenth of each training file' if selection == 'heldout' else 'validation file'}; "
          "test: validation file")
    print(_table(summary))
    print(f"\nsummary: {layout.summary_file(out_dir)}")
    return summary
