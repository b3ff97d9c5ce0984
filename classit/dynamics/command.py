"""``classit dynamics``: what runs learned, and when, over their checkpoints (milestones, stage ends, the final
export): the fast sets scored at each one, the per-phenomenon curves, acquisition points and stage effects, the
representation change on a probe set, and what each checkpoint had seen. Each file is made again only when what it
is made from changed.

The output folder (names in :mod:`classit.layout`)::

    OUT/scores/<run>/<checkpoint>/    classit evaluate's output for each checkpoint (summary.json, predictions/)
    OUT/fast_sets/                    links to the fast sets scored
    OUT/curves.csv                    one row per run, checkpoint, task and subset
    OUT/acquisition.csv               per run and choice-task subset: its acquisition point and interval
    OUT/stage_effects.csv             per run, instruction stage and subset: the change across the stage
    OUT/probe.txt                     the probe sentences of the representation metrics
    OUT/repr.csv                      per run, checkpoint and layer (CKA, effective rank) or weight (norm, change)
    OUT/seen.csv                      per run, checkpoint, stage and source: what the checkpoint had seen
    OUT/figures/                      curves_<task>.png, acquisition.png, stage_effects.png, repr_<run>.png,
                                      seen_<run>.png
    OUT/stamps/                       what each derived file was made from; each run's representation rows
"""

from pathlib import Path

from classit import layout
from classit.data import store
from classit.dynamics.checkpoints import FollowedRun, followed_runs
from classit.dynamics.curves import fast_sets, score_checkpoints
from classit.dynamics.outputs import write_acquisition, write_curves, write_representation, write_seen_table
from classit.dynamics.probe import probe_sentences, read_probe, write_probe
from classit.dynamics.representation import check_comparable
from classit.dynamics.seen import seen_command

RESAMPLES = 200  # bootstrap replicates over items of the acquisition intervals and stage effects
PROBE_SIZE, PROBE_SEED = 512, 0

REPEATED = ("--run", "--label")  # options given once per run


def as_lists(argv: list[str]) -> list[str]:
    """``--run A --run B`` (or ``--run=A``) as the one list jsonargparse takes: ``--run ["A", "B"]``."""
    import json

    found, rest, args = {name: [] for name in REPEATED}, [], iter(argv)
    for arg in args:
        name, equals, value = arg.partition("=")
        if name in found:
            found[name].append(value if equals else next(args, ""))
        else:
            rest.append(arg)
    return rest + [item for name, values in found.items() if values for item in (name, json.dumps(values))]


def dynamics(*, run: list[str], out: str | None = None, label: list[str] | None = None,
             data_dir: str | None = None, tasks: str | None = None, batch_size: int = 64, device: str = "auto",
             probe: str | None = None, resamples: int = RESAMPLES, seen: str | None = None) -> Path | None:
    """Learning dynamics of runs over their checkpoints: every milestone export, stage export and final export of
    each run, in words-seen order, scored on the fast sets (a checkpoint scored is not scored again; ctrl-C keeps
    what was scored); per-phenomenon curves, acquisition points, stage effects, representation change and what each
    checkpoint had seen, in ``OUT`` (see :func:`follow`).

    Args:
        run: a run folder (``lightning_logs/NAME/version_0``); ``--run`` again for each further run.
        out: the output folder; what is there already is kept and reused.
        label: each run's name in the results, in the order of ``--run``; default the run's folder name (a
            ``version_N`` folder: its parent's). ``{condition}_seed{S}`` names a study's condition and seed.
        data_dir: the data folder with ``babylm-eval-fast`` (and ``babylm-eval`` for WUG and reading); default
            ``$CLASSIT_DATA_DIR``.
        tasks: comma-separated fast-set tasks (blimp, supplement, ewok, entity_tracking, wug, wug_past, reading);
            default every one whose data is there.
        batch_size: texts per forward pass.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``...
        probe: a text file of probe sentences, one a line; default 512 sentences of the data folder's BabyLM dev
            set (or the bundled sample's) chosen with seed 0.
        resamples: bootstrap replicates over items of the acquisition intervals and stage effects.
        seen: a checkpoint of the one ``--run`` (``chck_1M``, ``stage0_pretrain``, ``final``): list the corpus files
            and line ranges it had trained on, and stop.
    """
    if seen:
        if len(run) != 1:
            raise ValueError(f"--seen {seen}: lists what one run's checkpoint had seen; give one --run, not {len(run)}")
        seen_command(Path(run[0]), seen)
        return None
    if not out:
        raise ValueError("--out: missing; give the output folder of the curves, tables and figures")
    return follow(followed_runs(run, label), Path(out), data_dir=data_dir, tasks=tasks, batch_size=batch_size,
                  device=device, probe=probe, resamples=resamples)


def follow(runs: list[FollowedRun], out: Path, *, data_dir: str | Path | None = None, tasks: str | None = None,
           batch_size: int = 64, device: str = "auto", probe: str | Path | None = None,
           resamples: int = RESAMPLES) -> Path:
    """Everything ``classit dynamics`` does, for runs already assembled (a run's checkpoints may lie in several run
    folders): the fast sets scored at each checkpoint, then ``curves.csv``, ``acquisition.csv``,
    ``stage_effects.csv``, ``probe.txt``, ``repr.csv``, ``seen.csv`` and their figures in ``out``, each made again
    only when what it is made from changed; returns ``out``. The probe file, the data and each run's checkpoints
    (one architecture and tokenizer) are checked before any work."""
    names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    data = Path(data_dir) if data_dir else store.data_dir()
    sets = fast_sets(data, names)
    sentences = read_probe(Path(probe)) if probe else probe_sentences(dev_folder(data), PROBE_SIZE, PROBE_SEED)
    for run in runs:
        check_comparable([(c.name, c.folder) for c in run.checkpoints])
    out = store.output_folder(out, "--out")
    score_checkpoints(out, runs, sets, batch_size, device)
    rows, wrote = write_curves(out, runs, list(sets))
    wrote += write_acquisition(out, runs, rows, resamples)
    if not (out / layout.PROBE).is_file() or read_probe(out / layout.PROBE) != sentences:
        write_probe(sentences, out / layout.PROBE)
        wrote.append(out / layout.PROBE)
    wrote += write_representation(out, runs, sentences, batch_size, device)
    wrote += write_seen_table(out, runs)
    if wrote:
        print(f"dynamics: wrote {', '.join(str(p.relative_to(out)) for p in wrote)} in {out}")
    else:
        print(f"dynamics: nothing new; every file in {out} kept")
    return out


def dev_folder(data: Path) -> Path:
    """The BabyLM dev set the default probe comes from: the data folder's ``babylm-corpus/dev``, else the bundled
    sample's."""
    dev = layout.split_dir(data, "dev")
    return dev if dev.is_dir() else layout.split_dir(store.bundled_sample(store.cache_dir()), "dev")
