"""The names of a run folder, of a results tree and of the evaluation data, written once: every other module asks here.

A run folder (``lightning_logs/NAME/version_N``)::

    checkpoints/last.ckpt                  the newest state of the run (``--ckpt_path last`` resumes it)
    checkpoints/stage{i}_{name}.ckpt       the end of each curriculum stage
    hf/                                    the final model, a Hugging Face folder
    hf/stage{i}_{name}/                    the model at the end of each curriculum stage but the last
    milestones/chck_{N}M/                  the model after N million words: BabyLM's intermediate checkpoints
    milestones/chck_{N}M/milestone.json    when it was written (words, words seen, step, curriculum stage)
    hf/milestone.json, hf/stage{i}_{name}/milestone.json    the same for the final and each stage's export
    .../seen.json                          beside each milestone, stage and final export: what it had trained on
    config.yaml                            the config the run was started with (LightningCLI's copy)

A results tree in the BabyLM 2025 pipeline's layout, as its ``collate_preds.py`` reads it::

    <model>/<revision>/zero_shot/causal/<task>/<dataset>/predictions.json
    <model>/main/zero_shot/causal/AoA_word/surprisal.json
    <model>/<revision>/finetune/<task>/predictions.json
    <model>/all_full_preds_and_fast_scores_causal.json      the submission file

The output folder of ``classit evaluate`` or ``classit finetune``::

    summary.json                           what it scored (classit.eval.summary)
    predictions/<task>.jsonl               each item's prediction (fine-tuning: predictions/<task>_seed<S>.jsonl)
    meta.json                              whose results: the model (or run) and data folder evaluate scored;
                                           a study's condition, seed, stage, model and log folder

The output folder of ``classit dynamics``::

    scores/<run>/<checkpoint>/             classit evaluate's output for each checkpoint; fast_sets/ links to the data
    curves.csv  acquisition.csv  stage_effects.csv  probe.txt  repr.csv  seen.csv
    figures/                               curves_<task>.png, acquisition.png, stage_effects.png, repr_<run>.png,
                                           seen_<run>.png
    stamps/<name>.json                     what each derived file was made from (and each run's representation rows)

The evaluation data of a data folder: ``babylm-eval`` (the full sets) and ``babylm-eval-fast`` (the fast sets); the
AoA files of the full sets: ``aoa/cdi_childes.json`` (the CDI words in context) and ``aoa/cdi_human.csv`` (the
children's CDI table; ``aoa/cdi_human_reconstructed.csv`` where only the rebuilt one is at hand).
"""

import re
from pathlib import Path
from typing import Literal, NamedTuple, get_args

Track = Literal["strict-small", "strict"]

# --- a run folder ---

HF = "hf"  # the Hugging Face export folder of a run
MILESTONE_FILE = "milestone.json"  # beside each milestone export: when it was written
_MILESTONE = re.compile(r"chck_(\d+(?:\.\d+)?)M")
_STAGE = re.compile(r"stage(\d+)_(.+)")
FINAL = "final"  # the name of a run's final export (hf/) among its checkpoints


def checkpoint_dir(run: Path) -> Path:
    """The run's Lightning checkpoints (ModelCheckpoint's default folder)."""
    return Path(run) / "checkpoints"


def last_checkpoint(run: Path) -> Path:
    """The run's newest state: ``checkpoints/last.ckpt``."""
    return checkpoint_dir(run) / "last.ckpt"


def stage_name(index: int, name: str) -> str:
    """The file name (without suffix) of a stage's export and checkpoint: ``stage{index}_{name}``."""
    return f"stage{index}_{name}"


def stage_checkpoint(checkpoints: Path, index: int, name: str) -> Path:
    """The checkpoint at the end of stage ``index`` in a checkpoint folder: ``stage{index}_{name}.ckpt``."""
    return Path(checkpoints) / f"{stage_name(index, name)}.ckpt"


def stage_export(hf: Path, index: int, name: str) -> Path:
    """The Hugging Face export at the end of stage ``index`` inside the run's export folder ``hf``."""
    return Path(hf) / stage_name(index, name)


SEEN_FILE = "seen.json"  # beside each milestone and stage export: what the checkpoint had trained on


def seen_file(export: Path) -> Path:
    """What the checkpoint of an export folder (a milestone or a stage's) had seen: ``seen.json`` inside it."""
    return Path(export) / SEEN_FILE


def run_config(run: Path) -> Path:
    """The config a run was started with, as LightningCLI saved it: ``config.yaml``."""
    return Path(run) / "config.yaml"


def final_export(run: Path) -> Path:
    """The run's final Hugging Face export: ``hf``."""
    return Path(run) / HF


def export_info(export: Path) -> Path:
    """When an export (a milestone, a stage's end, the final one) was written: its ``milestone.json``."""
    return Path(export) / MILESTONE_FILE


def stage_exports(run: Path) -> list[tuple[int, str, Path]]:
    """Every ``hf/stage{i}_{name}`` folder of a run as ``(index, name, folder)``, by stage (none: an empty list)."""
    found = [(int(match[1]), match[2], p) for p in final_export(run).glob("stage*_*")
             if p.is_dir() and (match := _STAGE.fullmatch(p.name))]
    return sorted(found)


def milestone_dir(run: Path) -> Path:
    """The run's milestone exports: ``milestones``."""
    return Path(run) / "milestones"


def milestone_name(words: int) -> str:
    """A milestone's folder name: ``chck_{N}M`` with N the words in millions (``chck_1M``, ``chck_0.05M``)."""
    return f"chck_{words / 1e6:g}M"


def milestone_export(run: Path, words: int) -> Path:
    """The run's export at ``words`` words: ``milestones/chck_{N}M``."""
    return milestone_dir(run) / milestone_name(words)


def milestone_words(name: str) -> int | None:
    """The words of a ``chck_{N}M`` name (``chck_10M`` → 10_000_000); None for any other name."""
    match = _MILESTONE.fullmatch(name)
    return round(float(match.group(1)) * 1e6) if match else None


class Milestone(NamedTuple):
    """A milestone export of a run: its name, words and folder."""
    name: str
    words: int
    folder: Path


def milestones(run: Path) -> list[Milestone]:
    """Every ``milestones/chck_{N}M`` folder of a run, by words seen (none: an empty list)."""
    found = [Milestone(p.name, words, p) for p in sorted(milestone_dir(run).glob("chck_*M"))
             if p.is_dir() and (words := milestone_words(p.name)) is not None]
    return sorted(found, key=lambda m: m.words)


def babylm_milestones(track: Track = "strict") -> list[int]:
    """The BabyLM 2025 checkpoints in words: every 1M to 10M, every 10M to 100M, and (strict) every 100M to 1B."""
    words = ([n * 10 ** 6 for n in range(1, 10)] + [n * 10 ** 7 for n in range(1, 10)]
             + [n * 10 ** 8 for n in range(1, 11)])
    return words if track == "strict" else [w for w in words if w <= 10 ** 8]


# The revisions the official collator (collate_preds.py) expects of each track: the milestones' names.
COLLATOR_REVISIONS = {track: [milestone_name(w) for w in babylm_milestones(track)]
                      for track in get_args(Track)}

# --- a results tree in the BabyLM pipeline's layout ---

FINAL_REVISION = "main"  # the revision of the final model
CAUSAL = Path("zero_shot", "causal")  # the zero-shot results of a revision
SUBMISSION = "all_full_preds_and_fast_scores_causal.json"  # the submission file of a model
OFFICIAL_PREDICTIONS = "predictions.json"  # a task's predictions in the pipeline's results


def official_predictions(task: Path) -> Path:
    """The predictions of a task's results folder in the pipeline's layout: ``predictions.json``."""
    return Path(task) / OFFICIAL_PREDICTIONS


def causal_dir(revision: Path) -> Path:
    """The zero-shot results of a ``<model>/<revision>`` folder: ``zero_shot/causal``."""
    return Path(revision) / CAUSAL


def finetune_dir(revision: Path) -> Path:
    """The fine-tuning results of a ``<model>/<revision>`` folder: ``finetune``."""
    return Path(revision) / "finetune"


def aoa_dir(parent: Path, rule: str = "official") -> Path:
    """The AoA results below ``parent``: ``AoA_word``, or ``AoA_word_{rule}`` for a rule other than the official."""
    return Path(parent) / ("AoA_word" if rule == "official" else f"AoA_word_{rule}")


def surprisal_file(aoa: Path) -> Path:
    """The official AoA file of an AoA folder: ``surprisal.json``."""
    return Path(aoa) / "surprisal.json"


# --- the output folder of classit evaluate or classit finetune ---

SUMMARY_FILE = "summary.json"
META_FILE = "meta.json"


def summary_file(out: Path) -> Path:
    """The summary of an evaluation output folder: ``summary.json``."""
    return Path(out) / SUMMARY_FILE


def predictions_dir(out: Path) -> Path:
    """The predictions of an evaluation output folder: ``predictions``."""
    return Path(out) / "predictions"


def predictions_file(out: Path, name: str) -> Path:
    """The predictions of one task (fine-tuning: one task and seed, ``TASK_seedS``): ``predictions/{name}.jsonl``."""
    return predictions_dir(out) / f"{name}.jsonl"


def meta_file(out: Path) -> Path:
    """Whose result an evaluation output folder holds (the model or run and data folder ``classit evaluate`` scored;
    a study's condition, seed and stage): ``meta.json``."""
    return Path(out) / META_FILE


# --- the output folder of classit dynamics ---

CURVES = "curves.csv"  # the per-phenomenon curves: one row per run, checkpoint, task and subset


def dynamics_scores(out: Path, run: str, checkpoint: str) -> Path:
    """A checkpoint's fast-set scores in a ``classit dynamics`` output folder (``classit evaluate``'s output there):
    ``scores/<run label>/<checkpoint name>``."""
    return Path(out) / "scores" / run / checkpoint


def dynamics_sets(out: Path) -> Path:
    """The fast sets ``classit dynamics`` scored, as links to each task's data folder: ``fast_sets``."""
    return Path(out) / "fast_sets"


def dynamics_figures(out: Path) -> Path:
    """The figures of a ``classit dynamics`` output folder: ``figures`` (``curves_<task>.png``...)."""
    return Path(out) / "figures"


def curves_figure(figures: Path, task: str) -> Path:
    """A task's curves in a figures folder: ``curves_<task>.png``."""
    return Path(figures) / f"curves_{task}.png"


ACQUISITION = "acquisition.csv"  # per run and subset: the acquisition point and its bootstrap interval
STAGE_EFFECTS = "stage_effects.csv"  # per run, instruction stage and subset: the change across the stage
PROBE = "probe.txt"  # the representation metrics' probe sentences, one a line
REPRESENTATION = "repr.csv"  # per run, checkpoint and layer or weight matrix: CKA, effective rank, norms
SEEN_TABLE = "seen.csv"  # per run, checkpoint, stage and source: what each checkpoint had seen
ACQUISITION_FIGURE = "acquisition.png"
STAGE_EFFECTS_FIGURE = "stage_effects.png"


def dynamics_stamps(out: Path) -> Path:
    """What each derived file of a ``classit dynamics`` output folder was made from (so an unchanged one is kept),
    and each run's representation rows: ``stamps``."""
    return Path(out) / "stamps"


def representation_figure(figures: Path, run: str) -> Path:
    """A run's representation heatmaps in a figures folder: ``repr_<run>.png``."""
    return Path(figures) / f"repr_{run}.png"


def seen_figure(figures: Path, run: str) -> Path:
    """What a run's checkpoints had seen, in a figures folder: ``seen_<run>.png``."""
    return Path(figures) / f"seen_{run}.png"


def export_run(export: Path) -> Path:
    """The run folder an export lies in: ``RUN`` of ``RUN/milestones/chck_NM``, ``RUN/hf/stage{i}_{name}`` or
    ``RUN/hf``."""
    export = Path(export)
    return export.parent if export.name == HF else export.parent.parent


# --- the evaluation data of a data folder ---

FULL_EVAL = "babylm-eval"
FAST_EVAL = "babylm-eval-fast"


def eval_dir(data: Path, fast: bool = False) -> Path:
    """The evaluation sets of a data folder: the full ones (``babylm-eval``), or with ``fast`` the fast ones
    (``babylm-eval-fast``)."""
    return Path(data) / (FAST_EVAL if fast else FULL_EVAL)


def cdi_words(eval_data: Path) -> Path:
    """The CDI words and their contexts of an evaluation folder: ``aoa/cdi_childes.json``."""
    return Path(eval_data) / "aoa" / "cdi_childes.json"


def cdi_human(eval_data: Path, reconstructed: bool = False) -> Path:
    """The children's CDI table of an evaluation folder: ``aoa/cdi_human.csv``, or with ``reconstructed`` the one
    rebuilt from public Wordbank proportions, ``aoa/cdi_human_reconstructed.csv``."""
    return Path(eval_data) / "aoa" / ("cdi_human_reconstructed.csv" if reconstructed else "cdi_human.csv")


# --- the BabyLM corpus of a data folder ---

CORPUS = "babylm-corpus"  # one folder per split: train_100M, train_10M, train_3M, dev
SAMPLE_SPLIT = "train_3M"  # the 3M-word sample of the training splits


def corpus_split(path: str) -> str | None:
    """The corpus split a path of the data folder lies in (``babylm-corpus/train_100M/x.train`` → ``train_100M``);
    None for a path outside the corpus."""
    parts = Path(path).parts
    return parts[1] if len(parts) > 1 and parts[0] == CORPUS else None


def in_split(path: str, split: str) -> str:
    """The same corpus path in another split (``babylm-corpus/train_100M/x.train`` → ``babylm-corpus/train_3M/x.train``)."""
    corpus, _, *rest = Path(path).parts
    return str(Path(corpus, split, *rest))


def split_dir(data: Path, split: str) -> Path:
    """A split's folder in a data folder: ``babylm-corpus/{split}``."""
    return Path(data) / CORPUS / split
