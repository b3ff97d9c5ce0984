"""``classit plan``: what a fit config will do on given devices, without training.

The config is parsed exactly as ``classit fit`` parses it (same overrides), the model is built on the
meta device, and the data is prepared as a fit would (tokenizer and token caches are reused by the
fit). Where an official split is absent (``train_100M``, ``train_10M``), its sources are measured on
the 3M-word sample of the data folder and scaled to the split's nominal size: those numbers are
estimates, and the plan says so. A source whose files are absent altogether (SwDA not copied yet) leaves
its stages' length unknown, and with it the LR of their phase and what follows: the plan says which and why.
"""

import argparse
import dataclasses
import json
import warnings
from dataclasses import dataclass

import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from classit import layout
from classit.data.corpus import corpus_files, count_words
from classit.data.plan import CurriculumPlan
from classit.lightning_state import every_n_train_steps
from classit.optim import Phase, warmup_steps
from classit.train.fit import ClassitCLI, curriculum_tokenizer

NOMINAL_WORDS = {"train_100M": 100_000_000, "train_10M": 10_000_000}  # the official splits' sizes


def use_sample_where_absent(datamodule) -> dict[str, dict]:
    """Point sources whose official corpus split (``Source.corpus_split``) is absent at the sample split;
    ``{source: {"scale", "note"}}``."""
    estimates, root = {}, datamodule.data_dir
    for name in datamodule.used:
        source = datamodule.sources[name]
        split, path = source.corpus_split(), source.corpus_path()
        if split not in NOMINAL_WORDS or (root / path).exists():
            continue
        sample = source.sample_path()
        if not (root / sample).exists():
            raise FileNotFoundError(f"{root / path} is absent, and so is {root / sample} to estimate it from: "
                                    "`classit data download --sets corpus` fetches the corpus")
        words = sum(count_words(f.read_text(encoding="utf-8"))
                    for f in corpus_files(layout.split_dir(root, layout.SAMPLE_SPLIT), ".train"))
        source.read_corpus(sample)
        scale = NOMINAL_WORDS[split] / words
        estimates[name] = {"scale": scale, "note": f"{path} absent: measured on {sample}, scaled ×{scale:.2f} "
                                                   f"to {NOMINAL_WORDS[split] / 1e6:.0f}M words"}
    return estimates


def curriculum_plan(datamodule, trainer, world: int, estimates: dict) -> CurriculumPlan:
    """The run's plan on ``world`` devices, an estimated source at its nominal size and an absent one empty."""
    sizes = {name: round(datamodule.sizes.get(name, 0) * estimates.get(name, {}).get("scale", 1.0))
             for name in datamodule.used}
    plan = datamodule.plan_for(world, trainer.limit_train_batches, trainer.max_steps)
    return dataclasses.replace(plan, sizes=sizes)


def _epoch_totals(plan: CurriculumPlan, sources: dict, stage, steps: int, full_steps: int,
                  estimates: dict) -> tuple[float, float, int]:
    """Tokens, words and sequences of one (possibly cut) epoch of ``stage``."""
    tokens = words = sequences = 0.0
    for name, count in zip(stage.sources, plan.counts(stage)):
        stats = sources[name].stats("train")
        scale = estimates.get(name, {}).get("scale", 1.0)
        trained = count * plan.batch_size * steps / max(full_steps, 1)
        share = trained / plan.sizes[name]
        tokens += share * stats["tokens"] * scale
        words += share * stats["words"] * scale
        sequences += trained
    return tokens, words, round(sequences)


@dataclass(frozen=True)
class StageSize:
    """What a stage of the plan trains: its steps from ``first_step`` and their sequences, tokens and words (None:
    unknown)."""
    name: str
    sources: list[str]
    epochs: int
    first_step: int | None
    steps: int | None
    sequences: int | None
    tokens: int | None
    words: int | None


@dataclass(frozen=True)
class StageReport(StageSize):
    """A stage of known length, with the LR at its first and last step (None: its phase's length is unknown)."""
    lr_start: float | None
    lr_end: float | None


@dataclass(frozen=True)
class UnknownStage(StageSize):
    """A stage of unknown length, and why (a source's data absent, or ``max_steps`` at an unknown step)."""
    unknown: str
    lr_start: None = None
    lr_end: None = None


@dataclass(frozen=True)
class PhaseReport:
    """An LR phase of the plan (``first_step``, ``steps`` and ``warmup_steps`` None: unknown)."""
    first_step: int | None
    steps: int | None
    lr: float
    warmup_steps: int | None
    decay: str
    min_lr_ratio: float
    reset_optimizer: bool


@dataclass(frozen=True)
class PlanReport:
    """What ``classit plan`` says of a run (the module docstring); ``dataclasses.asdict`` is its ``--json``."""
    devices: int
    num_nodes: int
    parameters: int
    block_size: int
    global_batch_sequences: int
    global_batch_tokens: int
    micro_batch_size: int
    accumulate_grad_batches: int
    stages: tuple[StageReport | UnknownStage, ...]
    total_steps: int | None
    warmup_steps: int | None
    phases: tuple[PhaseReport, ...]
    tokens: int
    words: int
    val_every_steps: int | None
    val_points: int | None
    val_sequences_per_source: int
    val_sources: list[str]
    checkpoint_every_steps: int | None
    flops: float
    estimated: dict[str, str]
    unknown: dict[str, str]


def unknown_stages(plan: CurriculumPlan, absent: dict[str, str]) -> list[str | None]:
    """Why each stage's length is unknown (None: known): a source of it absent, or ``max_steps`` cutting the run
    after a stage of unknown length."""
    whys, known = [], True
    for stage in plan.stages:
        why = next((absent[n] for n in stage.sources if n in absent), None)
        if why is None and not known and plan.max_steps > 0:
            why = "max_steps may end the run before it"
        known = known and why is None
        whys.append(why)
    return whys


def make_plan(datamodule, model, trainer, devices: int, num_nodes: int, estimates: dict) -> PlanReport:
    """The plan (see the module docstring); ``datamodule`` is set up, ``trainer`` gives the limits."""
    plan = curriculum_plan(datamodule, trainer, devices * num_nodes, estimates)
    hp = model.hparams
    absent = {name: e["unknown"] for name, e in estimates.items() if "unknown" in e}
    schedule = plan.schedule(Phase(hp.lr, hp.warmup, hp.min_lr_ratio))
    whys = unknown_stages(plan, absent)
    # a phase's LR is known when its length is: none of its stages, nor any before it, is of unknown length
    first_unknown = next((i for i, why in enumerate(whys) if why is not None), None)
    known_phases = len(schedule.phases) if first_unknown is None else plan.phase_of(first_unknown)
    stages, step = [], 0
    for i, (stage, steps, why) in enumerate(zip(plan.stages, plan.stage_steps(), whys)):
        if why is not None:
            stages.append(UnknownStage(stage.name, stage.sources, stage.epochs, step, None, None, None, None, why))
            step = None
            continue
        per_epoch = plan.epoch_steps(stage)
        tokens, words, sequences = _epoch_totals(plan, datamodule.sources, stage, per_epoch,
                                                 plan.epoch_steps(stage, limit=1.0), estimates)
        epochs_done = steps / max(per_epoch, 1)
        lrs = ((schedule.lr(step, hp.lr), schedule.lr(step + steps - 1, hp.lr))
               if steps and plan.phase_of(i) < known_phases else (None, None))
        stages.append(StageReport(stage.name, stage.sources, stage.epochs, step, steps, round(sequences * epochs_done),
                                  round(tokens * epochs_done), round(words * epochs_done), *lrs))
        step = step + steps if step is not None else None
    total = step
    phases = []
    for k, (start, length, p) in enumerate(schedule.phases):
        if k >= known_phases:
            start = length = None
        phases.append(PhaseReport(start, length, p.lr if p.lr is not None else hp.lr,
                                  warmup_steps(p.warmup, length) if length is not None else None,
                                  p.decay, p.min_lr_ratio, p.reset_optimizer))
    val_every = max(1, round(total * datamodule.val_every)) if total is not None else None
    every = sorted({n for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and (n := every_n_train_steps(c))})
    tokens = sum(s.tokens or 0 for s in stages)  # of the stages of known length
    return PlanReport(
        devices=devices, num_nodes=num_nodes, parameters=model.num_parameters(), block_size=datamodule.block_size,
        global_batch_sequences=plan.batch_size, global_batch_tokens=plan.batch_size * datamodule.block_size,
        micro_batch_size=plan.micro, accumulate_grad_batches=plan.accumulate,
        stages=tuple(stages), total_steps=total, warmup_steps=phases[0].warmup_steps, phases=tuple(phases),
        tokens=tokens, words=sum(s.words or 0 for s in stages),
        val_every_steps=val_every, val_points=total // val_every if total is not None else None,
        val_sequences_per_source=datamodule.val_sequences, val_sources=datamodule.val_sources,
        checkpoint_every_steps=every[0] if every else None, flops=float(model.flops_per_token) * tokens,
        estimated={name: e["note"] for name, e in estimates.items() if "unknown" not in e},
        unknown=absent,
    )


def _n(x: float | None) -> str:
    if x is None:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.2f}{unit}"
    return f"{x:.0f}"


def _c(x: int | None) -> str:
    return "?" if x is None else f"{x:,}"


def print_plan(plan: PlanReport, config: str) -> None:
    """The plan as text; ``?`` where a stage's data is absent (each such source said at the end, with why)."""
    print(f"plan: {config} on {plan.devices} device(s) × {plan.num_nodes} node(s)")
    print(f"model: {plan.parameters / 1e6:.1f}M parameters, context {plan.block_size}")
    print(f"global batch: {plan.global_batch_sequences} sequences × {plan.block_size} tokens = "
          f"{plan.global_batch_tokens:,} tokens = {plan.devices * plan.num_nodes} devices × "
          f"{plan.micro_batch_size} sequences × {plan.accumulate_grad_batches} accumulated")
    print(f"\n{'stage':<16}{'sources':<26}{'epochs':>6}{'steps':>9}{'sequences':>11}{'tokens':>9}{'words':>9}"
          f"   lr start → end")
    for s in plan.stages:
        lrs = "-" if s.steps == 0 else "?" if s.lr_start is None else f"{s.lr_start:.2e} → {s.lr_end:.2e}"
        print(f"{s.name:<16}{', '.join(s.sources):<26}{s.epochs:>6}{_c(s.steps):>9}{_c(s.sequences):>11}"
              f"{_n(s.tokens):>9}{_n(s.words):>9}   {lrs}")
    known = "" if plan.total_steps is not None else " (the stages of known length; the run's length is unknown)"
    print(f"\ntotal: {_c(plan.total_steps)} optimizer steps, {_n(plan.tokens)} tokens, {_n(plan.words)} "
          f"words, ≈{plan.flops:.2e} FLOPs{known}")
    for i, p in enumerate(plan.phases):
        steps = (f"steps {p.first_step:,}–{p.first_step + p.steps - 1:,}" if p.steps is not None
                 else "steps unknown")
        print(f"phase {i}: {steps}, peak LR {p.lr:.2e}, warm-up {_c(p.warmup_steps)} steps, {p.decay} to "
              f"×{p.min_lr_ratio}" + (", fresh optimizer state" if p.reset_optimizer else ""))
    print(f"validation: every {_c(plan.val_every_steps)} steps ({_c(plan.val_points)} times), "
          f"{plan.val_sequences_per_source} sequences of each of: {', '.join(plan.val_sources) or 'none'}")
    if plan.checkpoint_every_steps:
        print(f"checkpoints: every {plan.checkpoint_every_steps:,} steps, and last.ckpt at the end")
    for name, note in plan.estimated.items():
        print(f"estimated: {name}: {note}")
    for name, why in plan.unknown.items():
        print(f"unknown: {name}: {why}")


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
    for name, why in prepare_present(datamodule).items():
        estimates[name] = {"scale": 1.0, "unknown": why}
    return cli, estimates


def prepare_present(datamodule) -> dict[str, str]:
    """Prepare and set up the data as a fit does, leaving out the sources whose files are absent (unmeasured):
    ``{source: why}``."""
    datamodule.use_tokenizer(curriculum_tokenizer(datamodule))  # the corpus is needed: its absence stops the plan
    absent = {}
    for name in datamodule.used:
        try:
            datamodule.sources[name].prepare()
        except FileNotFoundError as error:
            absent[name] = str(error)
    datamodule.load_sources([name for name in datamodule.used if name not in absent])
    return absent


def plan_command(argv: list[str]) -> PlanReport:
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
        print(json.dumps(dataclasses.asdict(plan)))
    else:
        print_plan(plan, config)
    return plan
