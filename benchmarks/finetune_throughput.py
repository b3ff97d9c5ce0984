"""Fine-tuning throughput (training examples/s) of classit's path against a plain PyTorch loop, in one run.

classit: ``SequenceClassifier`` (decoder + MLP head on the last non-padding token) under the Lightning
Trainer, length-bucketed batches padded to their longest text. Baseline: transformers'
``AutoModelForSequenceClassification`` from the same weights, shuffled batches padded by
``DataCollatorWithPadding`` (to the longest text of the batch), AdamW, a plain loop. Same task, examples,
batch size, maximum length, precision (bf16 autocast on a GPU, float32 on CPU), one epoch each.

    python benchmarks/finetune_throughput.py --model lightning_logs/demo/version_0/hf --quick
    python benchmarks/finetune_throughput.py --model MODEL --task mnli --examples 4096

The last line printed is one JSON object.
"""

import argparse
import copy
import json
import tempfile
import time

import lightning as L
import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from classit import layout
from classit.data import store
from classit.eval.finetune import SequenceClassifier, encode, loader
from classit.eval.glue import TASKS, find_file, read_examples
from classit.eval.tasks import GLUE
from classit.export import load_pretrained
from classit.runtime import keep_freed_memory


class EpochTimer(L.Callback):
    """Wall time of the training epoch and the real/padded token counts of its batches."""

    def __init__(self):
        self.tokens = self.padded = 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.tokens += int(batch["attention_mask"].sum())
        self.padded += batch["attention_mask"].numel()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.start


def classit_path(decoder, tokenizer, examples: list[dict], num_labels: int, args) -> dict:
    ids = encode(tokenizer, [e["text"] for e in examples], args.max_length)
    module = SequenceClassifier(copy.deepcopy(decoder).train(), num_labels, lr=args.lr)
    timer = EpochTimer()
    trainer = L.Trainer(max_epochs=1, accelerator="auto", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        precision="bf16-mixed" if torch.cuda.is_available() else "32-true", callbacks=[timer])
    trainer.fit(module, loader(ids, [e["label"] for e in examples], tokenizer.pad_token_id, args.batch_size,
                               shuffle=True, seed=0))
    return {"examples_per_s": len(examples) / timer.seconds, "padding_share": 1 - timer.tokens / timer.padded}


def baseline_path(model_dir: str, tokenizer, examples: list[dict], num_labels: int, args, device) -> dict:
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=num_labels).to(device).train()
    features = [{**tokenizer(e["text"], truncation=True, max_length=args.max_length), "labels": e["label"]}
                for e in examples]
    batches = DataLoader(features, batch_size=args.batch_size, shuffle=True, collate_fn=DataCollatorWithPadding(tokenizer),
                         generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    tokens = padded = 0
    start = time.perf_counter()
    for batch in batches:
        tokens, padded = tokens + int(batch["attention_mask"].sum()), padded + batch["attention_mask"].numel()
        with autocast:
            loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {"examples_per_s": len(examples) / (time.perf_counter() - start), "padding_share": 1 - tokens / padded}


def main() -> None:
    keep_freed_memory()  # as `classit` does, for both sides
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a Hugging Face folder or a classit Lightning checkpoint")
    parser.add_argument("--task", default="rte", choices=list(TASKS))
    parser.add_argument("--data_dir", default=None, help="default $CLASSIT_DATA_DIR/babylm-eval/glue_filtered")
    parser.add_argument("--examples", type=int, default=None, help="training examples (default: the whole file)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--quick", action="store_true", help="512 examples: about a minute on a CPU")
    args = parser.parse_args()
    root = store.data_dir(args.data_dir) if args.data_dir else layout.eval_dir(store.data_dir()) / GLUE.full
    path = find_file(root, args.task, "train")
    if path is None:
        raise SystemExit(f"no {args.task} training file in {root}")
    examples = read_examples(path, args.task)[:512 if args.quick else args.examples]
    num_labels = TASKS[args.task].num_labels
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    hf_model, tokenizer = load_pretrained(args.model)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as model_dir:  # the same weights for AutoModelForSequenceClassification
        hf_model.save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
        baseline = baseline_path(model_dir, tokenizer, examples, num_labels, args, device)
    ours = classit_path(hf_model.base_model, tokenizer, examples, num_labels, args)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"{args.task}: {len(examples)} examples, batch {args.batch_size}, max length {args.max_length}, {name}")
    for label, r in (("classit", ours), ("baseline", baseline)):
        print(f"{label:<9} {r['examples_per_s']:8.1f} examples/s   padding {100 * r['padding_share']:5.1f}% of tokens")
    print(json.dumps({"classit_examples_per_s": round(ours["examples_per_s"], 2),
                      "baseline_examples_per_s": round(baseline["examples_per_s"], 2),
                      "ratio": round(ours["examples_per_s"] / baseline["examples_per_s"], 3), "device": name,
                      "task": args.task, "examples": len(examples), "batch_size": args.batch_size,
                      "max_length": args.max_length, "classit_padding_share": round(ours["padding_share"], 4),
                      "baseline_padding_share": round(baseline["padding_share"], 4)}))


if __name__ == "__main__":
    main()
