"""``classit plan``: what a fit config will do on given devices, without training.

The config is parsed exactly as ``classit fit`` parses it (same overrides), the model is built on the
meta device, and the data is prepared as a fit would (tokenizer and token caches are reused by the
fit). Where an official split is absent (``train_100M``, ``train_10M``), its sources are measured on
the 3M-word sample of the data folder and scaled to the split's nominal size: those numbers are
estimates, and the plan says so.
"""

import argparse
import json
import re
import warnings

import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from classit.data.corpus import corpus_files, count_words
from classit.lightning_state import every_n_train_steps
from classit.schedule import Phase, Schedule
from classit.train.fit import ClassitCLI

NOMINAL_WORDS = {"train_100M": 100_000_000, "train_10M": 10_000_000}
SAMPLE_SPLIT = "train_3M"


def use_sample_where_absent(datamodule) -> dict[str, dict]:
    """Point sources whose official split is absent at the sample split; ``{source: {"scale", "note"}}``."""
    estimates, root = {}, datamodule.data_dir
    for name in datamodule.used:
        source = datamodule.sources[name]
        for attr, value in list(vars(source).items()):
            match = isinstance(value, str) and re.search("|".join(NOMINAL_WORDS), value)
            if not match or (root / value).exists():
                continue
            sample = value.replace(match[0], SAMPLE_SPLIT)
            if not (root / sample).exists():
                raise FileNotFoundError(f"{root / value} is absent, and so is {root / sample} to estimate it from: "
                                        "`classit data download --sets corpus` fetches the corpus")
            words = sum(count_words(f.read_text(encoding="utf-8"))
                        for f in corpus_files(root / "babylm-corpus" / SAMPLE_SPLIT, ".train"))
            setattr(source, attr, sample)
            scale = NOMINAL_WORDS[match[0]] / words
            estimates[name] = {"scale": scale, "note": f"{value} absent: measured on {sample}, scaled ×{scale:.2f} "
                                                       f"to {NOMINAL_WORDS[match[0]] / 1e6:.0f}M words"}
    return estimates


def _epoch_totals(datamodule, stage, steps: int, full_steps: int, estimates: dict) -> tuple[float, float, int]:
    """Tokens, words and sequences of one (possibly cut) epoch of ``stage``."""
    tokens = words = sequences = 0.0
    for name, count in zip(stage.sources, datamodule.counts(stage)):
        stats = datamodule.sources[name].stats("train")
        scale = estimates.get(name, {}).get("scale", 1.0)
        trained = count * datamodule.batch_size * steps / max(full_steps, 1)
        share = trained / datamodule.sizes[name]
        tokens += share * stats["tokens"] * scale
        words += share * stats["words"] * scale
        sequences += trained
    return tokens, words, round(sequences)


def make_plan(datamodule, model, trainer, devices: int, num_nodes: int, estimates: dict) -> dict:
    """The plan as a dict (see the module docstring); ``datamodule`` is set up, ``trainer`` gives the limits."""
    world = devices * num_nodes
    micro, accumulate = datamodule.micro_batches(world)
    limit, max_steps = trainer.limit_train_batches, trainer.max_steps
    hp = model.hparams
    stages, step = [], 0
    for stage in datamodule.stages:
        per_epoch = datamodule.stage_steps(stage, accumulate, limit)
        full = datamodule.stage_steps(stage, accumulate)
        steps = stage.epochs * per_epoch
        if max_steps > 0:
            steps = max(min(steps, max_steps - step), 0)
        tokens, words, sequences = _epoch_totals(datamodule, stage, per_epoch, full, estimates)
        epochs_done = steps / max(per_epoch, 1)
        stages.append({"name": stage.name, "sources": stage.sources, "epochs": stage.epochs, "first_step": step,
                       "steps": steps, "sequences": round(sequences * epochs_done), "tokens": round(tokens * epochs_done),
                       "words": round(words * epochs_done)})
        step += steps
    total = step
    schedule = Schedule.build(datamodule.stage_plans(world, limit), Phase(hp.lr, hp.warmup, hp.min_lr_ratio), max_steps)
    phases = schedule.phases
    for s in stages:
        s["lr_start"], s["lr_end"] = ((schedule.lr(s["first_step"], hp.lr), schedule.lr(s["first_step"] + s["steps"] - 1, hp.lr))
                                      if s["steps"] else (None, None))
    val_every = max(1, round(total * datamodule.val_every))
    every = sorted({n for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and (n := every_n_train_steps(c))})
    tokens = sum(s["tokens"] for s in stages)
    return {
        "devices": devices, "num_nodes": num_nodes, "parameters": model.num_parameters(), "block_size": datamodule.block_size,
        "global_batch_sequences": datamodule.batch_size, "global_batch_tokens": datamodule.batch_size * datamodule.block_size,
        "micro_batch_size": micro, "accumulate_grad_batches": accumulate,
        "stages": stages, "total_steps": total, "warmup_steps": round(phases[0][2].warmup * phases[0][1]),
        "phases": [{"first_step": start, "steps": length, "lr": p.lr if p.lr is not None else hp.lr,
                    "warmup_steps": round(p.warmup * length), "decay": p.decay, "min_lr_ratio": p.min_lr_ratio,
                    "reset_optimizer": p.reset_optimizer} for start, length, p in phases],
        "tokens": tokens, "words": sum(s["words"] for s in stages),
        "val_every_steps": val_every, "val_points": total // val_every,
        "val_sequences_per_source": datamodule.val_sequences, "val_sources": datamodule.val_sources,
        "checkpoint_every_steps": every[0] if every else None, "flops": float(model.flops_per_token) * tokens,
        "estimated": {name: e["note"] for name, e in estimates.items()},
    }


def _n(x: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.2f}{unit}"
    return f"{x:.0f}"


def print_plan(plan: dict, config: str) -> None:
    print(f"plan: {config} on {plan['devices']} device(s) × {plan['num_nodes']} node(s)")
    print(f"model: {plan['parameters'] / 1e6:.1f}M parameters, context {plan['block_size']}")
    print(f"global batch: {plan['global_batch_sequences']} sequences × {plan['block_size']} tokens = "
          f"{plan['global_batch_tokens']:,} tokens = {plan['devices'] * plan['num_nodes']} devices × "
          f"{plan['micro_batch_size']} sequences × {plan['accumulate_grad_batches']} accumulated")
    print(f"\n{'stage':<16}{'sources':<26}{'epochs':>6}{'steps':>9}{'sequences':>11}{'tokens':>9}{'words':>9}"
          f"   lr start → end")
    for s in plan["stages"]:
        lrs = f"{s['lr_start']:.2e} → {s['lr_end']:.2e}" if s["steps"] else "-"
        print(f"{s['name']:<16}{', '.join(s['sources']):<26}{s['epochs']:>6}{s['steps']:>9,}{s['sequences']:>11,}"
              f"{_n(s['tokens']):>9}{_n(s['words']):>9}   {lrs}")
    print(f"\ntotal: {plan['total_steps']:,} optimizer steps, {_n(plan['tokens'])} tokens, {_n(plan['words'])} words, "
          f"≈{plan['flops']:.2e} FLOPs")
    for i, p in enumerate(plan["phases"]):
        print(f"phase {i}: steps {p['first_step']:,}–{p['first_step'] + p['steps'] - 1:,}, peak LR {p['lr']:.2e}, "
              f"warm-up {p['warmup_steps']:,} steps, {p['decay']} to ×{p['min_lr_ratio']}"
              + (", fresh optimizer state" if p["reset_optimizer"] else ""))
    print(f"validation: every {plan['val_every_steps']:,} steps ({plan['val_points']} times), "
          f"{plan['val_sequences_per_source']} sequences of each of: {', '.join(plan['val_sources']) or 'none'}")
    if plan["checkpoint_every_steps"]:
        print(f"checkpoints: every {plan['checkpoint_every_steps']:,} steps, and last.ckpt at the end")
    for name, note in plan["estimated"].items():
        print(f"estimated: {name}: {note}")


def load(args: list[str]):
    """``(cli, estimates)``: the fit config and overrides ``args`` parsed as ``classit fit`` does, the model on the
    meta device, the data prepared and set up (absent official splits estimated from the sample)."""
    overrides = ["--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto", "--trainer.logger=false",
                 "--model.init_from=null"]
    with torch.device("meta"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "LightningCLI's args parameter")
        cli = ClassitCLI(args=args + overrides, run=False)
    datamodule = cli.datamodule
    estimates = use_sample_where_absent(datamodule)
    datamodule.prepare_data()
    datamodule.setup("plan")
    for name, e in estimates.items():
        datamodule.sizes[name] = round(datamodule.sizes[name] * e["scale"])
    return cli, estimates


def plan_command(argv: list[str]) -> dict:
    """``classit plan --config C [--devices N] [--num_nodes N] [--json] [fit overrides…]``."""
    parser = argparse.ArgumentParser(prog="classit plan", description="What `classit fit` would do, without training. "
                                     "Other arguments are those of `classit fit` (--config, overrides).")
    parser.add_argument("--devices", "--trainer.devices", type=int, default=1, help="devices per node (default 1)")
    parser.add_argument("--num_nodes", "--trainer.num_nodes", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    options, rest = parser.parse_known_args(argv)
    if options.devices < 1 or options.num_nodes < 1:
        parser.error("--devices and --num_nodes count from 1")
    cli, estimates = load(rest)
    plan = make_plan(cli.datamodule, cli.model, cli.trainer, options.devices, options.num_nodes, estimates)
    config = next((rest[i + 1] for i, a in enumerate(rest[:-1]) if a == "--config"), "config")
    if options.json:
        print(json.dumps(plan))
    else:
        print_plan(plan, config)
    return plan
