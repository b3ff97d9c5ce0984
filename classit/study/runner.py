"""``classit study``: a study config's conditions × seeds → fits → zero-shot and fine-tuning → report.

A study config names conditions (each a fit config, or the stage export of another condition's run),
the fit seeds, and the evaluations. The runner does what is missing, in order, and a repeated command
skips finished work and resumes an interrupted fit. Fits that share their first stages share that
work: a fit whose leading stages equal an earlier fit's (same model, data, trainer and stages), and
whose next stage starts a new optimizer phase, starts from that fit's end-of-stage checkpoint instead
of pre-training again. With phases this is the same model as a run that never branched.

Layout of ``OUT``::

    runs/<condition>_seed<S>/version_0/   the fit's logs, checkpoints, hf/ exports, fit_done once it has finished
    eval/<condition>/seed<S>/zero_shot/   classit evaluate output (+ meta.json)
    eval/<condition>/seed<S>/milestones/  links to the milestone exports of the condition's training (the aoa task)
    eval/<condition>/seed<S>/finetune/    classit finetune output (+ meta.json)
    dynamics/                             classit dynamics over every condition's checkpoints (evaluate.dynamics)
    jobs/                                 --emit slurm|torchrun: one script per fit and submit.sh
    report/                               classit report of everything under eval/
"""

import inspect
import shlex
import subprocess
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import UnionType
from typing import Literal, Union, get_args, get_origin

from classit import layout
from classit.config_files import import_class, located, nearest
from classit.data.store import data_dir
from classit.dynamics.checkpoints import Checkpoint, FollowedRun, run_checkpoints
from classit.dynamics.command import follow
from classit.eval.aoa import MIN_MILESTONES
from classit.eval.evaluate import evaluate
from classit.eval.finetune import finetune
from classit.eval.glue import TASKS as GLUE_TASKS
from classit.eval.summary import read_summary
from classit.eval.tasks import FAST, TASKS as ZERO_SHOT_TASKS
from classit.files import read_json, read_yaml, write_json, write_text
from classit.study.report import report
from classit.train.callbacks import HFExport, RunCheckpoint
from classit.train.fit import resolved_fit_config
from classit.train.plan import load, make_plan

# Settings that do not change the weights a fit produces: two fits that differ only in these share work.
NOT_WEIGHTS = {"trainer": {"logger", "callbacks", "log_every_n_steps", "enable_progress_bar", "default_root_dir"},
               "data": {"stages", "sources", "val_every", "val_sequences", "num_workers", "cache_dir"}}


@dataclass
class Condition:
    """A compared model: a fit ``config`` (with ``overrides``), or ``stage`` ``of`` another condition's fit."""
    name: str
    config: str | None = None
    overrides: list[str] = field(default_factory=list)
    of: str | None = None
    stage: str | None = None


@dataclass(frozen=True)
class StudySettings:
    """A study config: its conditions by name, the fit seeds, and the options of the zero-shot and fine-tuning
    evaluations (None: not run)."""
    path: Path
    conditions: dict[str, Condition]
    seeds: list[int]
    zero_shot: dict | None = None
    finetune: dict | None = None
    dynamics: dict | None = None


@dataclass
class Fit:
    """One fit to run: a condition's config for one seed, maybe branching from another fit's stage checkpoint."""
    condition: Condition
    seed: int
    resolved: dict
    branch: tuple["Fit", int] | None = None  # (the fit shared with, number of shared stages)

    @property
    def name(self) -> str:
        return f"{self.condition.name}_seed{self.seed}"


STUDY_KEYS = ["conditions", "seeds", "evaluate"]
SET_BY_THE_STUDY = {"model", "out", "runs"}  # each evaluation's model (dynamics: runs) and folder
EVALUATIONS = {"zero_shot": evaluate, "finetune": finetune, "dynamics": follow}
EVALUATION_TASKS = {"evaluate": list(ZERO_SHOT_TASKS), "finetune": list(GLUE_TASKS),
                    "follow": list(FAST)}  # the names each one knows


def load_study(path: str | Path) -> StudySettings:
    """The study config, checked when read: ``conditions`` (each ``config`` or ``of`` + ``stage``), ``seeds``, and
    ``evaluate``'s zero-shot and fine-tuning settings (arguments of :func:`evaluate` and :func:`finetune`). Each
    problem stops in one line naming the file, the line, and the nearest valid key for an unknown one."""
    path = Path(path)
    study = read_yaml(path)
    if not isinstance(study, dict) or not isinstance(study.get("conditions"), dict) or not study["conditions"]:
        raise ValueError(f"{path}: conditions: name at least one condition (a fit config, or of + stage)")
    check_keys(path, "", study, STUDY_KEYS)
    conditions = {name: read_condition(path, name, spec, study["conditions"])
                  for name, spec in study["conditions"].items()}
    seeds = study.get("seeds") or [42]
    if not isinstance(seeds, list) or not all(type(seed) is int for seed in seeds):
        raise ValueError(f"{located(path, 'seeds')}: give a list of fit seeds (integers), got {seeds!r}")
    evaluations = mapping(path, "evaluate", study.get("evaluate"))
    check_keys(path, "evaluate", evaluations, list(EVALUATIONS))
    for kind, command in EVALUATIONS.items():
        options = mapping(path, f"evaluate.{kind}", evaluations.get(kind))
        check_keys(path, f"evaluate.{kind}", options,
                   [p for p in inspect.signature(command).parameters if p not in SET_BY_THE_STUDY])
        check_values(path, f"evaluate.{kind}", options, command)
    return StudySettings(path=path, conditions=conditions, seeds=seeds, zero_shot=evaluations.get("zero_shot"),
                         finetune=evaluations.get("finetune"), dynamics=evaluations.get("dynamics"))


def read_condition(path: Path, name: str, spec, conditions: dict) -> Condition:
    """``conditions.NAME`` of the study config at ``path``, checked (its config path made relative to the file)."""
    key = f"conditions.{name}"
    spec = mapping(path, key, spec)
    check_keys(path, key, spec, [f.name for f in fields(Condition) if f.name != "name"])
    for field_name, value in spec.items():
        if field_name == "overrides" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ValueError(f"{located(path, f'{key}.overrides')}: give a list of command-line arguments, "
                             f"got {value!r}")
        if field_name != "overrides" and not isinstance(value, str | None):
            raise ValueError(f"{located(path, f'{key}.{field_name}')}: give a string, got {value!r}")
    condition = Condition(name=name, **spec)
    if bool(condition.config) == bool(condition.of):
        raise ValueError(f"{path}: {key}: give either config (a fit config) or of + stage")
    if condition.config:
        config = Path(condition.config)
        condition.config = str(config if config.is_absolute() or config.exists() else path.parent / config)
        if not Path(condition.config).is_file():
            raise FileNotFoundError(f"{path}: {key}.config: {condition.config} not found")
    elif condition.of not in conditions or not condition.stage:
        raise ValueError(f"{path}: {key}: of must name another condition, and stage one of its stages")
    return condition


def mapping(path: Path, key: str, value) -> dict:
    """The settings under ``key``: a mapping (none: an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{located(path, key)}: give a mapping of settings, got {value!r}")
    return value


def check_values(path: Path, under: str, options: dict, command) -> None:
    """One line for the first option of ``command`` (found under ``under``) whose value it cannot take: a type
    other than its parameter's, a task it does not know, seeds that are not integers, a data_dir not there."""
    parameters = inspect.signature(command).parameters
    known_tasks = EVALUATION_TASKS[command.__name__]
    for key, value in options.items():
        where = located(path, f"{under}.{key}")
        if key == "tasks":
            if unknown := [t for t in task_names(options) if t not in known_tasks]:
                raise ValueError(f"{where}: unknown task {unknown[0]!r}{nearest(str(unknown[0]), known_tasks)} "
                                 f"(tasks: {', '.join(known_tasks)})")
        elif key == "seeds":
            if not (isinstance(value, list) and value and all(type(seed) is int for seed in value)):
                raise ValueError(f"{where}: give a list of seeds (integers), got {value!r}")
        elif not takes(parameters[key].annotation, value):
            raise ValueError(f"{where}: give {described(parameters[key].annotation)}, got {value!r}")
        elif key == "data_dir" and value is not None and not (folder := Path(value) if Path(value).is_absolute()
                                                               else data_dir() / value).is_dir():
            raise FileNotFoundError(f"{where}: {folder} not found (a relative folder is in the data folder)")


def takes(annotation, value) -> bool:
    """Whether a parameter annotated ``annotation`` (int, float, bool, str, Literal, their unions with None) takes
    ``value`` as YAML gives it."""
    if get_origin(annotation) in (Union, UnionType):
        return any(takes(one, value) for one in get_args(annotation))
    if get_origin(annotation) is Literal:
        return value in get_args(annotation)
    if annotation is float:
        return type(value) in (int, float)
    return type(value) is (type(None) if annotation is None else annotation)


def described(annotation) -> str:
    """``annotation`` in words: ``an int or null``, ``one of mlp, linear``."""
    if get_origin(annotation) in (Union, UnionType):
        return " or ".join(described(one) for one in get_args(annotation))
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(map(str, get_args(annotation)))
    name = "null" if annotation in (None, type(None)) else annotation.__name__
    return name if name == "null" else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def check_keys(path: Path, under: str, settings: dict, known: list[str]) -> None:
    """One line for the first key of ``settings`` (found under the dotted key ``under``) not in ``known``."""
    for key in settings:
        if key not in known:
            dotted = f"{under}.{key}" if under else str(key)
            raise ValueError(f"{located(path, dotted)}: unknown key{nearest(str(key), known)}")


def _weights_settings(config: dict, sources: set[str]) -> dict:
    kept = {k: v for k, v in config.items() if k not in ("trainer", "data", "ckpt_path")}
    for part, ignored in NOT_WEIGHTS.items():
        kept[part] = {k: v for k, v in config[part].items() if k not in ignored}
    kept["sources"] = {name: config["data"]["sources"][name] for name in sorted(sources)}
    return kept


def shared_stages(a: dict, b: dict) -> int:
    """How many leading stages fit ``b`` can take over from fit ``a``: equal stages, equal settings, and ``b``'s
    next stage starts a phase (else the shared stages' LR would depend on what follows)."""
    stages_a, stages_b = a["data"]["stages"], b["data"]["stages"]
    k = 0
    while k < min(len(stages_a), len(stages_b)) and stages_a[k] == stages_b[k]:
        k += 1
    while k > 0:
        next_a_ok = k == len(stages_a) or stages_a[k].get("phase")
        if k < len(stages_b) and stages_b[k].get("phase") and next_a_ok:
            sources = {s for stage in stages_b[:k] for s in stage["sources"]}
            if _weights_settings(a, sources) == _weights_settings(b, sources):
                return k
        k -= 1
    return 0


def plan_fits(study: StudySettings) -> list[Fit]:
    """Every fit of the study in order, each branching from the earlier fit it shares most stages with."""
    fits = []
    for seed in study.seeds:
        for condition in study.conditions.values():
            if not condition.config:
                continue
            overrides = [*condition.overrides, "--seed_everything", str(seed), "--data.seed", str(seed)]
            fit = Fit(condition, seed, resolved_fit_config(["--config", condition.config, *overrides]))
            # a fit branches from another's end-of-stage checkpoint, which RunCheckpoint writes
            sources = [f for f in fits if f.seed == seed and callback_args(f, RunCheckpoint) is not None]
            best = max(((other, shared_stages(other.resolved, fit.resolved)) for other in sources),
                       key=lambda x: x[1], default=(None, 0))
            fit.branch = best if best[1] else None
            fits.append(fit)
    return fits


def fit_arguments(fit: Fit, out: Path) -> list[str]:
    """The ``classit fit`` command line of a fit without its start point: its config, seed and log folder."""
    return ["classit", "fit", "--config", fit.condition.config, *fit.condition.overrides,
            "--seed_everything", str(fit.seed), "--data.seed", str(fit.seed),
            "--trainer.logger.init_args.save_dir", str(out / "runs"),
            "--trainer.logger.init_args.name", fit.name, "--trainer.logger.init_args.version", "0"]


def log_dir(fit: Fit, out: Path) -> Path:
    return out / "runs" / fit.name / "version_0"


def last_checkpoint(fit: Fit, out: Path) -> Path:
    return layout.last_checkpoint(log_dir(fit, out))


def branch_checkpoint(fit: Fit, out: Path) -> Path:
    """The end-of-stage checkpoint of the fit this one branches from."""
    source, k = fit.branch
    stage = source.resolved["data"]["stages"][k - 1]["name"]
    return layout.stage_checkpoint(layout.checkpoint_dir(log_dir(source, out)), k - 1, stage)


def fit_command(fit: Fit, out: Path) -> list[str]:
    """The ``classit fit`` command line of a fit now: an interrupted fit resumes, a new one branches or starts."""
    command = fit_arguments(fit, out)
    if last_checkpoint(fit, out).is_file():
        return command + ["--ckpt_path", "last"]  # interrupted: resume it
    if fit.branch:
        return command + ["--ckpt_path", str(branch_checkpoint(fit, out))]
    return command


def job_lines(fit: Fit, out: Path, launch: str) -> list[str]:
    """A job script's lines that run the fit with ``launch`` (``srun classit fit``, …), choosing where it starts
    when it runs: a requeued job resumes its own last checkpoint, a first one branches or starts fresh."""
    command = shlex.join(fit_arguments(fit, out)).replace("classit fit", launch, 1)
    if not fit.branch:
        return [f"{command} --ckpt_path last"]
    own, source = shlex.quote(str(last_checkpoint(fit, out))), shlex.quote(str(branch_checkpoint(fit, out)))
    return [f"ckpt={own}", f'[ -f "$ckpt" ] || ckpt={source}  # first run: branch from the source\'s stage',
            f'{command} --ckpt_path "$ckpt"']


def done_marker(fit: Fit, out: Path) -> Path:
    """Written when the fit's ``classit fit`` has exited successfully: the fit is finished."""
    return log_dir(fit, out) / "fit_done"


def finished(fit: Fit, out: Path) -> bool:
    return done_marker(fit, out).is_file()


def callback_args(fit: Fit, kind: type) -> dict | None:
    """The ``init_args`` of the fit's first callback of class ``kind`` or a subclass of it; None if it has none."""
    for callback in fit.resolved["trainer"].get("callbacks") or []:
        if issubclass(import_class(callback["class_path"]), kind):
            return callback.get("init_args") or {}
    return None


def model_folder(study: StudySettings, fits: list[Fit], condition: Condition, seed: int,
                 out: Path) -> tuple[Path, str, Path]:
    """``(Hugging Face folder, stage, log folder)`` of a condition's model for a seed: a fit's final export, or the
    stage export of the run that trained that stage (a fit that branched took its first stages from another run).
    A fit without :class:`HFExport` has no such folder: that stops here, naming it."""
    name = condition.name if condition.config else condition.of
    fit = next(f for f in fits if f.condition.name == name and f.seed == seed)
    stages = [s["name"] for s in fit.resolved["data"]["stages"]]
    if condition.config:
        index = len(stages) - 1
    elif condition.stage in stages:
        index = stages.index(condition.stage)
    else:
        raise ValueError(f"{study.path}: conditions.{condition.name}.stage: '{condition.stage}' is not a stage of "
                         f"{condition.of} ({', '.join(stages)})")
    while fit.branch and index < fit.branch[1]:
        fit = fit.branch[0]
    export = callback_args(fit, HFExport)
    if export is None:
        raise ValueError(f"{study.path}: conditions.{condition.name}: evaluating it needs the Hugging Face export "
                         f"of fit {fit.name}, and {fit.condition.config} has no classit.train.HFExport callback "
                         f"(add it to trainer.callbacks)")
    hf = log_dir(fit, out) / export.get("folder", layout.HF)
    last = len(fit.resolved["data"]["stages"]) - 1
    return ((hf if index == last else layout.stage_export(hf, index, stages[index])),
            stages[index] if condition.stage else "final", log_dir(fit, out))


def stages_trained(fits: list[Fit], condition: Condition, seed: int) -> list[tuple[Fit, int, int]]:
    """``(fit, first, last)``: the fits that trained a condition's model, up to its stage, and the stages each
    trained of it — its own fit's, then those of the fit it branched from (the stages the two share), and so on."""
    fit = next(f for f in fits if f.condition.name == (condition.name if condition.config else condition.of)
               and f.seed == seed)
    stages = [s["name"] for s in fit.resolved["data"]["stages"]]
    last, trained = len(stages) - 1 if condition.config else stages.index(condition.stage), []
    while True:
        trained.append((fit, fit.branch[1] if fit.branch else 0, last))
        if not fit.branch:
            return trained
        fit, last = fit.branch[0], fit.branch[1] - 1


def condition_milestones(fits: list[Fit], condition: Condition, seed: int, out: Path) -> list[Path]:
    """The milestone exports written along a condition's training, up to its stage: its run's, and those of the run
    it branched from, written in the stages the two share (each export's ``milestone.json`` names its stage)."""
    found = []
    for fit, first, last in stages_trained(fits, condition, seed):
        whole = first == 0 and last == len(fit.resolved["data"]["stages"]) - 1
        for _, _, path in layout.milestones(log_dir(fit, out)):
            if whole:
                found.append(path)
            elif not (path / layout.MILESTONE_FILE).is_file():
                raise ValueError(f"{path}: no {layout.MILESTONE_FILE}, so its curriculum stage is unknown (written "
                                 f"before classit recorded it); the AoA of conditions.{condition.name} needs it")
            elif first <= read_json(path / layout.MILESTONE_FILE)["stage"] <= last:
                found.append(path)
    return found


def condition_checkpoints(fits: list[Fit], condition: Condition, seed: int, out: Path) -> list[Checkpoint]:
    """Every export written along a condition's training, up to its stage, by words seen: milestones, stage ends
    and its final model, from its run and from the run it branched from (in the stages the two share)."""
    found = [c for fit, first, last in stages_trained(fits, condition, seed)
             for c in run_checkpoints(log_dir(fit, out)) if first <= c.stage <= last]
    return sorted(found, key=lambda c: c.words_seen)


def follow_conditions(spec: StudySettings, fits: list[Fit], out: Path) -> Path:
    """``classit dynamics`` over every condition and seed of the study (``OUT/dynamics``)."""
    runs = [FollowedRun(f"{c.name}_seed{s}", log_dir(next(f for f in fits if f.seed == s and f.condition.name ==
                                                            (c.name if c.config else c.of)), out),
                        c.name, s, tuple(condition_checkpoints(fits, c, s, out)))
            for s in spec.seeds for c in spec.conditions.values()]
    options = {k: _listed(v) for k, v in spec.dynamics.items()}
    if options.get("data_dir") and not Path(options["data_dir"]).is_absolute():
        options["data_dir"] = str(data_dir() / options["data_dir"])
    print(f"[dynamics] {', '.join(r.label for r in runs)}")
    return follow(runs, out / "dynamics", **options)


def link_milestones(paths: list[Path], folder: Path) -> Path:
    """``folder/milestones/<name>`` links to ``paths`` (only those): the run folder that ``evaluate --run`` reads."""
    links = layout.milestone_dir(folder)
    links.mkdir(parents=True, exist_ok=True)
    for old in links.iterdir():
        if old.name not in {p.name for p in paths}:
            old.unlink()
    for path in paths:
        if not (links / path.name).is_symlink():
            (links / path.name).symlink_to(path.resolve(), target_is_directory=True)
    return folder


REQUEUE_AFTER_SIGTERM = [  # the time limit's warning (--signal) ends a job for good unless it queues itself again
    "status=$?",
    "# SIGTERM (the time limit near, or pre-emption): the fit saved last.ckpt and exited 143; queue the job again",
    'if [ "$status" -eq 143 ]; then scontrol requeue "$SLURM_JOB_ID"; fi',
    'exit "$status"',
]


def emit(fits: list[Fit], out: Path, kind: str) -> list[Path]:
    """One job script per fit (SLURM or torchrun) and ``submit.sh``, which queues them with their dependencies."""
    jobs = out / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    scripts, submit = [], ["#!/usr/bin/env bash", "# queue every fit of the study; a branching fit waits for its source",
                           "set -euo pipefail", 'cd "$(dirname "$0")"']
    for fit in fits:
        if kind == "slurm":
            body = ["#!/usr/bin/env bash", f"#SBATCH --job-name={fit.name}", "#SBATCH --nodes=1",
                    "#SBATCH --gpus-per-node=8", "#SBATCH --ntasks-per-node=8", "#SBATCH --signal=SIGTERM@120",
                    "#SBATCH --requeue", "# Lightning reads SLURM's environment: one task per GPU, requeued jobs resume",
                    *job_lines(fit, out, "srun classit fit"), *REQUEUE_AFTER_SIGTERM]
            after = f"--dependency=afterok:${{job_{fit.branch[0].name}}} " if fit.branch else ""
            submit.append(f"job_{fit.name}=$(sbatch --parsable {after}{fit.name}.sbatch)")
            path = jobs / f"{fit.name}.sbatch"
        else:
            body = ["#!/usr/bin/env bash", "# one node: torchrun starts a process per GPU (Lightning reads its environment)",
                    *job_lines(fit, out, "torchrun --nproc_per_node=gpu -m classit.cli fit")]
            submit.append(f"bash {fit.name}.torchrun.sh")
            path = jobs / f"{fit.name}.torchrun.sh"
        write_text("\n".join(body) + "\n", path)
        scripts.append(path)
    write_text("\n".join(submit) + "\n", jobs / "submit.sh")
    return scripts + [jobs / "submit.sh"]


def _run(command: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "classit.cli", *command[1:]])
    if done.returncode:
        raise ValueError(f"`{shlex.join(command)}` failed (exit {done.returncode}); run the study again to resume")


def study_command(argv: list[str]) -> None:
    """``classit study --config S [--out DIR] [--dry_run] [--emit slurm|torchrun]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="classit study", description=study.__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the study config (conditions, seeds, evaluate)")
    parser.add_argument("--out", default="study", help="the study folder (default: study)")
    parser.add_argument("--dry_run", action="store_true", help="list the work with each fit's plan, run nothing")
    parser.add_argument("--emit", choices=["slurm", "torchrun"], help="write job scripts for the fits instead")
    options = parser.parse_args(argv)
    study(config=options.config, out=options.out, dry_run=options.dry_run, emit_jobs=options.emit)


def study(*, config: str, out: str = "study", dry_run: bool = False, emit_jobs: str | None = None) -> None:
    """Run a CLASS-IT study: every condition × seed fit (sharing common stages), then each model's zero-shot and
    fine-tuning evaluations, then the report. A repeated command skips what is done and resumes what was cut.

    Args:
        config: the study config (conditions, seeds, evaluate).
        out: the study folder.
        dry_run: list the work (with each fit's ``classit plan`` estimate) and stop.
        emit_jobs: ``slurm`` or ``torchrun``: write one job script per fit to OUT/jobs instead of running the fits.
    """
    spec, out_dir = load_study(config), Path(out)
    fits = plan_fits(spec)
    # every model to evaluate, found before any fit runs: a fit that cannot export one stops the study here
    models = [(c, s, *model_folder(spec, fits, c, s, out_dir)) for s in spec.seeds
              for c in spec.conditions.values()] if spec.zero_shot or spec.finetune else []
    if emit_jobs:
        for path in emit(fits, out_dir, emit_jobs):
            print(f"wrote {path}")
        return
    todo = [f for f in fits if not finished(f, out_dir)]
    print(f"study {spec.path}: {len(fits)} fits ({len(todo)} to run), {len(models)} models to evaluate")
    for i, fit in enumerate(fits, 1):
        stages = " → ".join(s["name"] for s in fit.resolved["data"]["stages"])
        shared = f", starting from {fit.branch[0].name} after {fit.branch[1]} shared stage(s)" if fit.branch else ""
        state = "done" if finished(fit, out_dir) else "to run"
        print(f"[fit {i}/{len(fits)}] {fit.name}: {stages}{shared} ({state})")
        if dry_run:
            cli, estimates = load(["--config", fit.condition.config, *fit.condition.overrides])
            plan = make_plan(cli.datamodule, cli.model, cli.trainer, 1, 1, estimates)
            left = plan.stages[fit.branch[1]:] if fit.branch else plan.stages  # the shared stages are done once
            tokens = sum(s.tokens or 0 for s in left)  # None: a stage whose data is absent (plan.unknown)
            total = "?" if plan.total_steps is None else f"{plan.total_steps:,}"
            unknown = f"; unknown, their data absent: {', '.join(plan.unknown)}" if plan.unknown else ""
            print(f"    {sum(s.steps or 0 for s in left):,} of {total} optimizer steps to train, "
                  f"{tokens / 1e6:.1f}M tokens, ≈{plan.flops * tokens / plan.tokens:.2e} FLOPs{unknown}")
        elif state == "to run":
            _run(fit_command(fit, out_dir))
            done_marker(fit, out_dir).touch()
    if dry_run or not (models or spec.dynamics is not None):
        return
    evaluate_models(spec, models, out_dir, fits)
    followed = follow_conditions(spec, fits, out_dir) if spec.dynamics is not None else None
    report(dirs=[str(out_dir / "eval")], out=str(out_dir / "report"), dynamics=followed and str(followed))


def evaluate_models(spec: StudySettings, models: list[tuple], out: Path, fits: list[Fit]) -> None:
    """Zero-shot and fine-tuning evaluations of every ``(condition, seed, model, stage, log folder)``; finished ones
    are skipped. The zero-shot task ``aoa`` scores the milestone exports along the condition's training."""
    for i, (condition, seed, model, stage, logs) in enumerate(models, 1):
        folder = out / "eval" / condition.name / f"seed{seed}"
        meta = {"condition": condition.name, "seed": seed, "stage": stage, "model": str(model), "log_dir": str(logs)}
        print(f"[evaluate {i}/{len(models)}] {condition.name} seed {seed} ({model})")
        zero_shot, milestones = spec.zero_shot, []
        if zero_shot and "aoa" in task_names(zero_shot):
            milestones = condition_milestones(fits, condition, seed, out)
            zero_shot = without_aoa(zero_shot, len(milestones))
        for kind, options, command in (("zero_shot", zero_shot, evaluate), ("finetune", spec.finetune, finetune)):
            target = folder / kind
            if not options or _evaluated(target, options):
                continue
            target.mkdir(parents=True, exist_ok=True)
            write_json(meta, layout.meta_file(target), indent=1)
            options = {k: _listed(v) for k, v in options.items()}
            if kind == "zero_shot" and "aoa" in options.get("tasks", "").split(","):
                options["run"] = str(link_milestones(milestones, folder))
            if options.get("data_dir") and not Path(options["data_dir"]).is_absolute():
                options["data_dir"] = str(data_dir() / options["data_dir"])  # relative to the data folder
            command(model=str(model), out=str(target), **options)


def without_aoa(options: dict, milestones: int) -> dict:
    """The zero-shot options of a condition, ``aoa`` left out (said in one line) where its training wrote fewer
    milestones than the AoA curve needs."""
    if milestones >= MIN_MILESTONES:
        return options
    print(f"  aoa left out: {milestones} milestone(s) along its training; the AoA score needs at least "
          f"{MIN_MILESTONES}")
    return {**options, "tasks": [t for t in task_names(options) if t != "aoa"]}


def task_names(options: dict) -> list[str]:
    """The tasks of an evaluation's options, a list or a comma-separated string in the study YAML."""
    value = options.get("tasks", [])
    return [str(t).strip() for t in (value if isinstance(value, list) else str(value).split(","))]


def _evaluated(target: Path, options: dict) -> bool:
    """Whether the summary there already has every task asked for (fine-tuning: every seed too)."""
    if not layout.summary_file(target).is_file():
        return False
    summary = read_summary(layout.summary_file(target)).tasks
    seeds = options.get("seeds")
    return all(task in summary and (not seeds or "skipped" in summary[task]
                                    or len(summary[task].get("accuracy", {}).get("per_seed", [])) == len(seeds))
               for task in task_names(options))


def _listed(value):
    """Lists in the study YAML become the comma-separated strings the evaluation commands take."""
    return ",".join(str(v) for v in value) if isinstance(value, list) else value
