"""The checkpoints of a run folder that learning dynamics follow: every milestone export, every stage's export and
the final export, in words-seen order, each as its ``milestone.json`` says it was written."""

import re
from dataclasses import dataclass
from pathlib import Path

from classit import layout
from classit.export import check_weights
from classit.files import read_json


@dataclass(frozen=True)
class Checkpoint:
    """One Hugging Face export of a run: its name (``chck_1M``, ``stage0_pretrain``, ``final``), folder, the words
    of its ``milestone.json`` (a milestone's nominal count; an export's words seen), step and curriculum stage
    (None: a run without a curriculum)."""

    name: str
    folder: Path
    words: float
    step: int
    stage: int | None
    stage_name: str | None
    words_seen: float


def read_checkpoint(name: str, folder: Path) -> Checkpoint:
    """The checkpoint of an export folder (in any run folder): its weights checked whole, its ``milestone.json``
    read; a stage an older ``milestone.json`` does not name is named from its run's ``hf/stage{i}_{name}`` exports."""
    folder = Path(folder)
    info = layout.export_info(folder)
    if not info.is_file():
        raise FileNotFoundError(f"{folder}: no {info.name}, so when it was written is unknown; the export was "
                                "probably written before classit wrote one, or cut short (export it again or "
                                "move it out of the run folder)")
    check_weights(folder)  # a crash during export: no weights, or weights cut short
    data = read_json(info)
    try:
        stage = data["stage"]
        stage_name = data.get("stage_name") or {index: name for index, name, _ in
                                                layout.stage_exports(layout.export_run(folder))}.get(stage)
        return Checkpoint(name, folder, float(data["words"]), int(data["step"]), stage, stage_name,
                          float(data["words_seen"]))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{info}: expected words, words_seen, step and stage, found {str(data)[:80]} "
                         f"({type(error).__name__}: {error})") from None


def run_checkpoints(run: Path) -> list[Checkpoint]:
    """Every milestone export (``milestones/chck_{N}M``), stage export (``hf/stage{i}_{name}``) and the final export
    (``hf/``, named ``final``) of a run folder, by words seen; a missing run, a run without exports, an export
    without ``milestone.json`` or with weights cut short stops in one line naming it."""
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"{run} (--run): " + ("a file, not a run folder" if run.exists() else
                                                      "no such run folder"))
    stages = layout.stage_exports(run)
    exports = [(m.name, m.folder) for m in layout.milestones(run)]
    exports += [(folder.name, folder) for _, _, folder in stages]
    final = layout.final_export(run)
    if (final / "config.json").is_file() or layout.export_info(final).is_file():
        exports.append((layout.FINAL, final))
    if not exports:
        raise FileNotFoundError(f"{run} (--run): no exports to follow (no {layout.milestone_dir(run).name}/chck_NM, "
                                f"{layout.HF}/stage{{i}}_{{name}} or {layout.HF}/ model); a run writes them with "
                                "MilestoneExport and HFExport")
    checkpoints = [read_checkpoint(name, folder) for name, folder in exports]
    return sorted(checkpoints, key=lambda c: c.words_seen)  # stable: a milestone before an export at the same count


@dataclass(frozen=True)
class FollowedRun:
    """A run folder whose checkpoints are followed: its label (the scores' folder name), the study condition and
    seed its label names (``{condition}_seed{S}``; else the label and None) and its checkpoints."""

    label: str
    folder: Path
    condition: str
    seed: int | None
    checkpoints: tuple[Checkpoint, ...]


_SEEDED = re.compile(r"(.+)_seed(\d+)")


def default_label(run: Path) -> str:
    """A run folder's name, or its parent's for a Lightning ``version_N`` folder (``demo_seq/version_0`` →
    ``demo_seq``; a study's ``runs/merged_seed42/version_0`` → ``merged_seed42``)."""
    run = Path(run).resolve()
    return run.parent.name if re.fullmatch(r"version_\d+", run.name) else run.name


def followed_runs(runs: list[str | Path], labels: list[str] | None = None) -> list[FollowedRun]:
    """Each run folder with its label (``labels``, else :func:`default_label`) and checkpoints; labels must be
    as many as the runs and differ."""
    if labels and len(labels) != len(runs):
        raise ValueError(f"--label: {len(labels)} labels for {len(runs)} runs; give one per --run, in order")
    labels = list(labels) if labels else [default_label(run) for run in runs]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ValueError(f"--label: two runs are labelled {twice[0]}; give each --run its own --label")
    followed = []
    for run, label in zip(runs, labels):
        if not label or "/" in label or label.startswith("."):
            raise ValueError(f"--label {label!r}: a folder name for the run's scores (no '/', not starting with '.')")
        match = _SEEDED.fullmatch(label)
        followed.append(FollowedRun(label, Path(run), match[1] if match else label, int(match[2]) if match else None,
                                    tuple(run_checkpoints(Path(run)))))
    return followed
