"""What each checkpoint of a run had seen, from the run's deterministic data order, not by replaying training.

The run's config (``config.yaml``) is loaded as ``classit plan`` loads a fit config (the data prepared in the cache,
nothing trained), and its :class:`~classit.data.plan.CurriculumPlan` gives the global batches of every epoch; the
first ``step`` optimizer steps of them (``limit_train_batches`` and ``max_steps`` counted) are what a checkpoint at
that step had trained on. Words are counted as the model counts ``words_seen`` (a packed block's share of its
corpus's words, an instruction row's words), so a checkpoint's words equal its ``milestone.json``'s.
"""

import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from classit import layout
from classit.data.babylm import BabyLMCorpus, PackedBlocks
from classit.data.corpus import iter_segments
from classit.data.plan import CurriculumPlan
from classit.dynamics.checkpoints import Checkpoint, run_checkpoints
from classit.files import read_yaml, write_json


@dataclass
class Items:
    """The training items of one source: words and tokens of each, and how many examples it holds (0: a block)."""
    words: np.ndarray
    tokens: np.ndarray
    examples: np.ndarray


def source_items(dataset) -> Items:
    """Each training item's words (as the model counts them), tokens and examples, from a source's training set."""
    if isinstance(dataset, PackedBlocks):
        starts = np.arange(len(dataset)) * dataset.block_size
        tokens = np.minimum(dataset.block_size, len(dataset.tokens) - starts)
        words = (tokens * dataset.words_per_token).astype(np.float32).astype(np.float64)  # a float32 tensor each
        return Items(words, tokens, np.zeros(len(tokens), dtype=np.int64))
    examples = ([row.count(0) for row in dataset["position_ids"]] if "position_ids" in dataset.column_names
                else [1] * len(dataset))
    return Items(np.array(dataset["words"], dtype=np.float64), np.array([len(r) for r in dataset["input_ids"]]),
                 np.array(examples, dtype=np.int64))


@dataclass
class RunData:
    """A run's plan and its sources (bound, prepared and set up), with their items."""
    plan: CurriculumPlan
    sources: dict
    items: dict[str, Items]


def config_world_size(trainer: dict) -> int:
    """The devices a saved config's ``trainer`` settings name (``devices`` × ``num_nodes``; ``auto``: 1)."""
    devices = trainer.get("devices", 1)
    count = len(devices) if isinstance(devices, list) else int(devices) if str(devices).isdigit() else 1
    return count * int(trainer.get("num_nodes") or 1)


def open_run(run: Path, world_size: int | None = None) -> RunData:
    """The run's plan on ``world_size`` devices (default: those its config names) and its sources, from its
    ``config.yaml`` (the data prepared as ``classit plan`` prepares it)."""
    config = layout.run_config(run)
    if not config.is_file():
        raise FileNotFoundError(f"{run}: no {config.name}: not a run folder of `classit fit`")
    from classit.train.plan import load  # the CLI's parser: imported only for a run folder
    settings = read_yaml(config)
    for key in ("ckpt_path", "weights_only"):  # Trainer.fit's own arguments, saved beside the config's
        settings.pop(key, None)
    with tempfile.TemporaryDirectory() as tmp:  # the config without them, parsed as `classit plan` parses one
        cleaned = Path(tmp) / config.name
        cleaned.write_text(yaml.safe_dump(settings), encoding="utf-8")
        cli, estimates = load(["--config", str(cleaned)])
    if estimates:
        raise FileNotFoundError(f"{config}: the data of source(s) {', '.join(estimates)} is absent from "
                                f"{cli.datamodule.data_dir}; point CLASSIT_DATA_DIR at the run's data folder")
    datamodule = cli.datamodule
    world_size = world_size or config_world_size(settings.get("trainer", {}))
    plan = datamodule.plan_for(world_size, cli.trainer.limit_train_batches, cli.trainer.max_steps)
    items = {name: source_items(datamodule.train_sets[name]) for name in datamodule.used}
    return RunData(plan, {name: datamodule.sources[name] for name in datamodule.used}, items)


def trained(plan: CurriculumPlan, step: int):
    """``(stage index, epoch, step, source name, item indices)`` of every micro-batch of every device in the first
    ``step`` optimizer steps of the run, in order."""
    done, stop = 0, min(step, plan.total_steps)
    for epoch in range(plan.total_epochs):
        if done >= stop:
            return
        index = plan.stage_index(epoch)
        stage = plan.stages[index]
        micro = plan.epoch_micro_batches(stage)
        ranks = [plan.rank_batches(epoch, rank)[:micro] for rank in range(plan.world_size)]
        for m in range(micro):
            at = done + m // plan.accumulate
            if at >= stop:
                break
            for batches in ranks:
                k, items = batches[m]
                yield index, epoch, at, stage.sources[k], items
        done += math.ceil(micro / plan.accumulate)


def times_trained(data: RunData, step: int) -> dict[str, np.ndarray]:
    """How many times each item of each source was trained on in the first ``step`` optimizer steps."""
    counts = {name: np.zeros(len(items.words), dtype=np.int64) for name, items in data.items.items()}
    for _, _, _, name, items in trained(data.plan, step):
        np.add.at(counts[name], items, 1)
    return counts


def seen_at(data: RunData, step: int) -> dict:
    """What a checkpoint after ``step`` optimizer steps had seen: words and tokens of each source and each stage, the
    epochs of each stage, and per source how many items (instruction sources: examples) were seen 0, 1, 2… times."""
    plan = data.plan
    stages = [{"index": i, "name": s.name, "epochs": s.epochs, "steps": 0, "epoch": 0, "epochs_done": 0.0,
               "sources": {n: {"words": 0.0, "tokens": 0, "sequences": 0} for n in s.sources}}
              for i, s in enumerate(plan.stages)]
    counts = {name: np.zeros(len(items.words), dtype=np.int64) for name, items in data.items.items()}
    last_step, first_epoch = -1, {}
    for index, epoch, at, name, items in trained(plan, step):
        np.add.at(counts[name], items, 1)
        entry = stages[index]
        entry["sources"][name]["words"] += float(data.items[name].words[items].sum())
        entry["sources"][name]["tokens"] += int(data.items[name].tokens[items].sum())
        entry["sources"][name]["sequences"] += len(items)
        first_epoch.setdefault(index, epoch)
        entry["epoch"] = epoch - first_epoch[index] + 1
        if at != last_step:
            entry["steps"] += 1
            last_step = at
    for entry, stage in zip(stages, plan.stages):
        full = plan.epoch_steps(stage)
        entry["epochs_done"] = entry["steps"] / full if full else 0.0
    sources = {}
    for name, items in data.items.items():
        instruction = bool(items.examples.any())
        weights = items.examples if instruction else None
        histogram = np.bincount(counts[name], weights=weights).astype(np.int64).tolist()
        sources[name] = {"words": float((items.words * counts[name]).sum()),
                         "tokens": int((items.tokens * counts[name]).sum()),
                         "unit": "example" if instruction else "block",
                         "items": int(items.examples.sum()) if instruction else len(items.words),
                         "times_seen": histogram}
    return {"step": min(step, plan.total_steps), "words_seen": sum(s["words"] for s in sources.values()),
            "tokens_seen": sum(s["tokens"] for s in sources.values()), "sources": sources, "stages": stages}


def exports(run: Path) -> list[Checkpoint]:
    """The run's exports (milestones, stage ends, the final one as ``final``) with the step each ``milestone.json``
    records, in order of steps."""
    return sorted(run_checkpoints(run), key=lambda c: c.step)


def write_seen(run: Path, world_size: int | None = None) -> list[Path]:
    """``seen.json`` beside each milestone and stage export of ``run`` (:func:`seen_at` of its step, with the
    export's name); the files written."""
    run = Path(run)
    data = open_run(run, world_size)
    found = [(export, seen_at(data, export.step)) for export in exports(run)]
    for export, seen in found:  # all checked before any is written
        check_words(export, seen["words_seen"])
    for export, seen in found:
        write_json({"checkpoint": export.name, **seen}, layout.seen_file(export.folder), indent=1, end="\n")
    return [layout.seen_file(export.folder) for export, _ in found]


def check_words(export: Checkpoint, words: float) -> None:
    """Stop naming the export's ``milestone.json`` when the words its run counted differ from ``words`` (the data
    order's): the data or the config changed since the run trained."""
    if not math.isclose(export.words_seen, words, rel_tol=1e-5):
        raise ValueError(f"{layout.export_info(export.folder)}: the run counted {export.words_seen:,.0f} words by step "
                         f"{export.step}, its data order gives {words:,.0f}: the data or config.yaml changed since it "
                         "trained")


# --- which blocks and lines a checkpoint had trained on ---

@dataclass(frozen=True)
class SeenItem:
    """An item a checkpoint had trained on (``times`` times): a packed block (``item``: its index) or an instruction
    example (its index among the source's examples), in ``file`` from line ``first_line`` to ``last_line`` (None: not
    known); for a block also the columns (characters from 0) where its text starts in the first line and ends
    (exclusive) in the last."""
    source: str
    item: int
    times: int
    file: str
    first_line: int | None
    last_line: int | None
    first_column: int | None = None
    last_column: int | None = None


@dataclass
class TokenPlaces:
    """Where each token of a prepared corpus comes from: its file (number into ``files``), line, and the columns
    its text starts and ends at (a document's BOS and EOS: where its segment starts and ends)."""
    files: list[str]
    file: np.ndarray
    line: np.ndarray
    start: np.ndarray
    end: np.ndarray


def token_places(source: BabyLMCorpus, tokens: np.ndarray, until: int | None = None, chunk: int = 4096
                 ) -> TokenPlaces:
    """The places of the corpus's tokens up to token ``until`` (default: all): its training files re-read and
    tokenized as its prepare did, ``chunk`` segments at a time, checked against its cached ``tokens``."""
    tokenizer, until = source.tokenizer, len(tokens) if until is None else until
    files, parts = [], []
    offset = 0

    def place(segments: list, f: int) -> int:
        at = offset
        encodings = tokenizer.backend_tokenizer.encode_batch([s.text for s in segments], add_special_tokens=False)
        for segment, encoding in zip(segments, encodings):
            shift = segment.column - segment.text.startswith("\n")  # a segment's leading newline ends the line before
            bos = [tokenizer.bos_token_id] * segment.starts_document
            eos = [tokenizer.eos_token_id] * segment.ends_document
            ids = bos + encoding.ids + eos
            if not np.array_equal(tokens[at:at + len(ids)], ids):
                raise ValueError(f"{files[f]}:{segment.line}: no longer gives the cached tokens of the run (the file "
                                 "changed since it trained, or another tokenizer)")
            spans = np.array([(0, 0)] * len(bos) + [list(o) for o in encoding.offsets]
                             + [(len(segment.text),) * 2] * len(eos), dtype=np.int64).reshape(-1, 2)
            spans = np.maximum(spans + shift, segment.column)
            parts.append((np.full(len(ids), f), np.full(len(ids), segment.line), spans[:, 0], spans[:, 1]))
            at += len(ids)
        return at

    for f, path in enumerate(source.tokenizer_files()):
        files.append(str(path))
        segments = []
        for segment in iter_segments(path):
            segments.append(segment)
            if len(segments) == chunk:
                offset, segments = place(segments, f), []
                if offset >= until:
                    break
        if segments:
            offset = place(segments, f)
        if offset >= until:
            break
    if until == len(tokens) and offset != len(tokens):
        raise ValueError(f"{source.root / source.train_dir}: gives {offset:,} tokens, the run's cache holds "
                         f"{len(tokens):,} (the files changed since it trained)")
    return TokenPlaces(files, *(np.concatenate(column) for column in zip(*parts)))


def _blocks_seen(name: str, source: BabyLMCorpus, dataset: PackedBlocks, counts: np.ndarray) -> list[SeenItem]:
    seen = np.flatnonzero(counts)
    places = token_places(source, dataset.tokens, min(len(dataset.tokens), (seen[-1] + 1) * dataset.block_size))
    rows = []
    for block in seen.tolist():
        first = block * dataset.block_size
        last = min(first + dataset.block_size, len(dataset.tokens))
        file = places.file[first:last]
        for f in dict.fromkeys(file.tolist()):
            mine = np.flatnonzero(file == f) + first
            a, b = mine[0], mine[-1]
            rows.append(SeenItem(name, block, int(counts[block]), places.files[f], int(places.line[a]),
                                 int(places.line[b]), int(places.start[a]), int(places.end[b])))
    return rows


_PLACE = re.compile(r"(.*):(\d+)(?:-(\d+))?")  # file:line or file:first-last


def _examples_seen(name: str, source, dataset, counts: np.ndarray) -> list[SeenItem]:
    placed = source.placed_examples("train")
    kept = source.kept([x for _, x in placed])[0]
    sizes = ([row.count(0) for row in dataset["position_ids"]] if "position_ids" in dataset.column_names
             else [1] * len(dataset))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    rows = []
    for row in np.flatnonzero(counts).tolist():
        for k in kept[bounds[row]:bounds[row + 1]]:
            where = placed[k][0]
            match = _PLACE.fullmatch(where)
            file, first, last = (match[1], int(match[2]), int(match[3] or match[2])) if match else (where, None, None)
            rows.append(SeenItem(name, k, int(counts[row]), file, first, last))
    return rows


def checkpoint_step(run: Path, checkpoint: str) -> int:
    """The optimizer step of a run's export named ``checkpoint`` (``chck_1M``, ``stage0_pretrain``, ``final``)."""
    found = {e.name: e for e in exports(run)}
    if checkpoint not in found:
        raise FileNotFoundError(f"{run}: no checkpoint export {checkpoint!r}; the run has: "
                                f"{', '.join(found) or 'none'}")
    return found[checkpoint].step


def seen_blocks(run: Path, checkpoint: str, world_size: int | None = None,
                data: RunData | None = None) -> list[SeenItem]:
    """Which corpus blocks and instruction examples the export ``checkpoint`` of ``run`` had trained on, and their
    files and lines (a packed block spanning files: one row per file)."""
    data = data or open_run(Path(run), world_size)
    counts = times_trained(data, checkpoint_step(Path(run), checkpoint))
    rows = []
    for name, source in data.sources.items():
        dataset = source.train_set()
        if not counts[name].any():
            continue
        if isinstance(dataset, PackedBlocks):
            rows += _blocks_seen(name, source, dataset, counts[name])
        else:
            rows += _examples_seen(name, source, dataset, counts[name])
    return rows


def merged_ranges(rows: list[SeenItem]) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The rows' ``((line, column), (line, column))`` ranges (column 0 where unknown) merged where they touch or
    overlap (the next line's start touches a line's end), in order."""
    spans = sorted(((r.first_line, r.first_column or 0), (r.last_line, r.last_column or 0)) for r in rows
                   if r.first_line is not None)
    merged = []
    for a, b in spans:
        if merged and (a <= merged[-1][1] or a[0] <= merged[-1][1][0] + 1 and a[1] == 0):
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [tuple(m) for m in merged]


def _range(a: tuple[int, int], b: tuple[int, int], columns: bool) -> str:
    if not columns:
        return f"{a[0]}" if a[0] == b[0] else f"{a[0]}-{b[0]}"
    return f"{a[0]}:{a[1]}-{b[1]}" if a[0] == b[0] else f"{a[0]}:{a[1]}-{b[0]}:{b[1]}"


def print_seen(rows: list[SeenItem]) -> None:
    """Per source and file: the items seen, how often, and the merged ranges (``line``, or ``line:column`` for
    blocks), compactly."""
    for name in dict.fromkeys(r.source for r in rows):
        mine = [r for r in rows if r.source == name]
        items = {r.item: r.times for r in mine}
        print(f"{name}: {len(items):,} items seen, {sum(items.values()):,} times in all")
        for file in dict.fromkeys(r.file for r in mine):
            in_file = [r for r in mine if r.file == file]
            columns = any(r.first_column is not None for r in in_file)
            ranges = merged_ranges(in_file)
            shown = ", ".join(_range(a, b, columns) for a, b in ranges[:20])
            more = f", … ({len(ranges) - 20} more ranges)" if len(ranges) > 20 else ""
            n = len({r.item for r in in_file})
            print(f"  {file}: {n:,} items" + (f", lines {shown}{more}" if ranges else ""))


def seen_command(run: Path, checkpoint_name: str) -> list[SeenItem]:
    """``--seen CHECKPOINT``: print what the export ``checkpoint_name`` of ``run`` had trained on; its rows."""
    rows = seen_blocks(Path(run), checkpoint_name)
    print_seen(rows)
    return rows
