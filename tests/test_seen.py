"""What each checkpoint had seen (classit.dynamics.seen): counted from the plan's data order, checked against a real
tiny curriculum run that records the rows it loads, its milestone.json files, `classit plan` and the corpus files."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from classit import layout
from classit.cli import main
from classit.data.babylm import PackedBlocks
from classit.data.corpus import read_text
from classit.dynamics.seen import merged_ranges, open_run, print_seen, seen_blocks, times_trained, trained, write_seen
from classit.dynamics.seen_plot import plot_seen
from classit.files import read_json
from helpers import (CONFIGS, TinyRuns, babylm_file, config_copy, demo_data, fit, instruction_records, rows_recorder,
                     tiny_curriculum, write_jsonl)

MILESTONES = [1000, 2000, 3000]


def seen_data(data_root, root):
    """A small corpus of two files (150 lines of switchboard talk, and the start of one long Gutenberg line) and 60
    ready-made instruction examples."""
    (root / "train").mkdir(parents=True)
    talk = babylm_file(data_root, "dev/switchboard.dev").read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "train" / "a_talk.train").write_text("".join(talk[:150]), encoding="utf-8")
    book = babylm_file(data_root, "dev/childes.dev").read_text(encoding="utf-8")
    (root / "train" / "b_book.train").write_text(book[:book.index(" ", 3000)] + "\n", encoding="utf-8")
    write_jsonl(root / "it.jsonl", instruction_records(data_root))
    return root


def seen_config(runs: TinyRuns, name: str, extra=(), **changes):
    """The tiny two-stage run (the corpus, 1 epoch; the instruction file, 2 epochs; whole epochs, no limit), its
    milestones and its rows recorded (all ids) in ``rows/``; ``extra`` callbacks."""
    sources = {"pretrain": {"class_path": "classit.data.babylm.BabyLMCorpus",
                            "init_args": {"train_dir": "train", "val_dir": None, "num_proc": 1}},
               "it": {"class_path": "classit.data.instructions.InstructionFile", "init_args": {"path": "it.jsonl"}}}
    milestones = {"class_path": "classit.train.MilestoneExport", "init_args": {"milestones": MILESTONES}}
    return runs.config(name, callbacks=[rows_recorder(runs.tmp / "rows", ids=None), milestones, *extra],
                       data_args={"sources": sources, "block_size": 64,
                                  "stages": [{"name": "pretrain", "sources": ["pretrain"]},
                                             {"name": "it", "sources": ["it"], "epochs": 2}]}, **changes)


def recorded(runs: TinyRuns) -> list[list[int]]:
    return json.loads((runs.tmp / "rows" / "rank0.json").read_text())["rows"]


@pytest.fixture(scope="module")
def seen_run(data_root, tokenizer, tmp_path_factory):
    """The tiny two-stage run: its folder, config and the rows it loaded."""
    tmp = tmp_path_factory.mktemp("seen")
    runs = TinyRuns(tmp, seen_data(data_root, tmp / "data"), tokenizer.name_or_path)
    config = seen_config(runs, "seen", max_steps=-1)
    main(["fit", "--config", str(config)])
    return runs.run_dir("seen"), config, recorded(runs)

@pytest.mark.slow
def test_seen_equals_milestones_the_plan_and_the_rows_trained_on(seen_run, capsys):
    run, config, rows = seen_run
    data = open_run(run)
    plan = data.plan
    # every micro-batch the plan says was trained on is the one the run loaded, row for row
    sets = {name: source.train_set() for name, source in data.sources.items()}
    order = [(name, i) for _, _, _, name, items in trained(plan, plan.total_steps) for i in items]
    assert len(order) == len(rows)
    for (name, i), row in zip(order, rows):
        ids = sets[name][i]["input_ids"]
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        assert row[:len(ids)] == ids

    written = write_seen(run)
    names = [m.name for m in layout.milestones(run)]
    assert len(names) == len(MILESTONES)
    assert sorted(p.parent.name for p in written) == sorted(names + ["stage0_pretrain", "hf"])
    for m in layout.milestones(run):
        seen, meta = read_json(layout.seen_file(m.folder)), read_json(m.folder / layout.MILESTONE_FILE)
        assert seen["step"] == meta["step"]
        assert seen["words_seen"] == pytest.approx(meta["words_seen"], rel=1e-6)
        assert sum(s["words"] for s in seen["sources"].values()) == pytest.approx(meta["words_seen"], rel=1e-6)
    final = read_json(layout.seen_file(run / "hf"))
    state = torch.load(layout.last_checkpoint(run), weights_only=False)
    assert final["words_seen"] == pytest.approx(float(state["state_dict"]["words_seen"]), rel=1e-6)
    assert final["step"] == state["global_step"]

    # at the end of each stage, what `classit plan` says the stage sees
    main(["plan", "--config", str(config), "--json"])
    planned = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["stages"]
    for export, index in (("hf/stage0_pretrain", 0), ("hf", 1)):
        stage = read_json(layout.seen_file(run / export))["stages"][index]
        assert stage["epochs_done"] == stage["epochs"] == planned[index]["epochs"]
        assert stage["steps"] == planned[index]["steps"]
        assert sum(s["sequences"] for s in stage["sources"].values()) == planned[index]["sequences"]
        assert sum(s["tokens"] for s in stage["sources"].values()) == pytest.approx(planned[index]["tokens"], rel=0.05)
        assert sum(s["words"] for s in stage["sources"].values()) == pytest.approx(planned[index]["words"], rel=0.05)
    it = final["sources"]["it"]  # two epochs of whole global batches, each leaving out a different remainder
    assert sum(it["times_seen"]) == it["items"] and len(it["times_seen"]) == 3
    assert sum(times * n for times, n in enumerate(it["times_seen"])) == 2 * (it["items"] // 4 * 4)
    assert plot_seen([read_json(p) for p in written], run / "seen.png").stat().st_size > 0


@pytest.mark.slow
def test_listed_blocks_and_lines_hold_the_text_trained_on(seen_run, tokenizer, capsys):
    run, _, rows = seen_run
    data = open_run(run)
    first = layout.milestones(run)[0]
    step = read_json(first.folder / layout.MILESTONE_FILE)["step"]
    listed = seen_blocks(run, first.name, data=data)
    counts = times_trained(data, step)
    blocks = data.sources["pretrain"].train_set()
    assert isinstance(blocks, PackedBlocks)
    # the listed blocks are the rows the run loaded in its first `step` steps
    loaded = {tuple(r) for r in rows[:step * data.plan.batch_size]}
    assert {r.item for r in listed if r.source == "pretrain"} == set(np.flatnonzero(counts["pretrain"]).tolist())
    assert {tuple(blocks[r.item]["input_ids"].tolist()) for r in listed if r.source == "pretrain"} == loaded
    assert not any(r.source == "it" for r in listed)  # the milestone falls in pre-training
    # each block's text is the file's text from its first line and column to its last (whitespace aside: the
    # spaces before a title marker are not tokenized); a block over two files, each file's part
    for block in {r.item for r in listed if r.source == "pretrain"}:
        parts = [r for r in listed if r.source == "pretrain" and r.item == block]
        held = ""
        for r in parts:
            lines = read_text(r.file).split("\n")[r.first_line - 1:r.last_line]
            lines[-1] = lines[-1][:r.last_column]
            lines[0] = lines[0][r.first_column:]
            held += "\n".join(lines)
        text = tokenizer.decode(blocks[block]["input_ids"], skip_special_tokens=True)
        assert "".join(held.split()) == "".join(text.split()), (parts, text)
    assert any(r.file.endswith("a_talk.train") and r.last_line > r.first_line for r in listed)
    assert any(r.file.endswith("b_book.train") and r.first_column > 0 for r in listed)  # within one long line
    assert merged_ranges(listed) and all(a <= b for a, b in merged_ranges(listed))

    # the end of the run: the kept instruction examples trained on, at their file:line
    final = seen_blocks(run, "final", data=data)
    examples = [r for r in final if r.source == "it"]
    assert examples and all(r.times in (1, 2) and r.file.endswith("it.jsonl") for r in examples)
    records = (run.parents[2] / "data" / "it.jsonl").read_text().splitlines()
    source = data.sources["it"]
    kept = source.kept(source.build_examples("train"))[0]  # row i of the unpacked set: example kept[i]
    for r in examples:
        prompt = json.loads(records[r.first_line - 1])["prompt"]  # its start: the reply may be cut at block_size
        assert " ".join(prompt.split()[:6]) in tokenizer.decode(source.train_set()[kept.index(r.item)]["input_ids"])
    with pytest.raises(FileNotFoundError, match=rf"{run}: no checkpoint export 'chck_9M'; the run has: chck_0.001M, "):
        seen_blocks(run, "chck_9M", data=data)
    print_seen(final)
    out = capsys.readouterr().out
    assert "pretrain:" in out and "it.jsonl" in out and "lines" in out


@pytest.mark.slow
def test_a_resumed_run_sees_what_its_data_order_says(data_root, tokenizer, tmp_path):
    runs = TinyRuns(tmp_path, seen_data(data_root, tmp_path / "data"), tokenizer.name_or_path)
    kill = {"class_path": "probes.KillAtStep", "init_args": {"step": 15}}
    out, code = fit(seen_config(runs, "resumed", max_steps=-1, checkpoint_every=4, extra=[kill]))
    assert code == -9, out[-3000:]  # SIGKILL in the instruction stage: the last checkpoint is step 12's
    last = layout.last_checkpoint(runs.run_dir("resumed"))
    out, code = fit(seen_config(runs, "resumed", max_steps=-1, checkpoint_every=4), "--ckpt_path", str(last))
    assert code == 0, out[-3000:]
    run = runs.run_dir("resumed", 1)  # the resumed part: its milestones and rows, from step 12
    data = open_run(run)
    rows = recorded(runs)
    sets = {name: source.train_set() for name, source in data.sources.items()}
    order = [(name, i) for _, _, at, name, items in trained(data.plan, data.plan.total_steps) if at >= 12
             for i in items]
    assert len(order) == len(rows) > 0
    for (name, i), row in zip(order, rows):
        ids = sets[name][i]["input_ids"]
        assert row[:len(ids)] == (ids.tolist() if isinstance(ids, torch.Tensor) else ids)
    written = write_seen(run)
    milestones = layout.milestones(run)
    assert milestones and {m.name for m in milestones} < {p.parent.name for p in written}
    for m in milestones:
        meta = read_json(m.folder / layout.MILESTONE_FILE)
        assert meta["step"] > 12
        assert read_json(layout.seen_file(m.folder))["words_seen"] == pytest.approx(meta["words_seen"], rel=1e-6)
    examples = runs.data / "it.jsonl"  # the data changed since the run trained: named, nothing written
    examples.write_text("".join(examples.read_text().splitlines(keepends=True)[:-8]))
    before = {p: p.read_bytes() for p in written}
    with pytest.raises(ValueError, match=rf"{re.escape(str(layout.milestone_dir(run)))}/chck_[\d.]+M/milestone.json: "
                                         r"the run counted .* words by step \d+, its data order gives .*: the data or "
                                         r"config.yaml changed"):
        write_seen(run)
    assert all(p.read_bytes() == b for p, b in before.items())


def test_trained_follows_the_plan_cut_by_limit_and_max_steps():
    from classit.data.plan import CurriculumPlan, Stage

    stages = (Stage("a", ["a"], epochs=2), Stage("b", ["a", "b"]))
    plan = CurriculumPlan(stages, {"a": 40, "b": 24}, batch_size=8, micro_batch_size=2, world_size=2,
                          limit_train_batches=5, max_steps=7)  # 2 devices × 2 accumulated; 5 micro-batches an epoch
    assert plan.stage_steps() == [6, 1]
    steps = [at for _, _, at, _, _ in trained(plan, plan.total_steps)]
    assert steps == sorted(steps) and steps[-1] == 6
    # an epoch: 5 micro-batches on each device, the third step of only one micro-batch each (2 × 2 sequences)
    first = [(at, items) for _, epoch, at, _, items in trained(plan, 3) if epoch == 0]
    assert [at for at, _ in first] == [0] * 4 + [1] * 4 + [2] * 2
    batches = plan.batches(0, 0)
    assert sorted(i for at, items in first if at < 2 for i in items) == sorted(i for _, b in batches[:2] for i in b)
    assert {name for _, _, at, name, _ in trained(plan, 7) if at == 6} <= {"a", "b"}
    assert len(list(trained(plan, 100))) == len(list(trained(plan, 7)))  # nothing past the run's end


def test_merged_ranges_and_the_listing(capsys):
    from classit.dynamics.seen import SeenItem

    rows = [SeenItem("pretrain", 3, 1, "x.train", 10, 12, 0, 40), SeenItem("pretrain", 1, 2, "x.train", 1, 4, 0, 99),
            SeenItem("pretrain", 2, 1, "x.train", 5, 7, 0, 12), SeenItem("pretrain", 4, 1, "y.train", 1, 1, 0, 900),
            SeenItem("pretrain", 5, 1, "y.train", 1, 1, 900, 1800),
            SeenItem("pretrain", 6, 1, "y.train", 1, 1, 2000, 2500),
            SeenItem("it", 0, 1, "it.jsonl", 9, 9), SeenItem("it", 1, 1, "it.jsonl", 10, 10)]
    assert merged_ranges(rows[:3]) == [((1, 0), (7, 12)), ((10, 0), (12, 40))]
    print_seen(rows)
    assert capsys.readouterr().out.splitlines() == [
        "pretrain: 6 items seen, 7 times in all", "  x.train: 3 items, lines 1:0-7:12, 10:0-12:40",
        "  y.train: 3 items, lines 1:0-1800, 1:2000-2500",
        "it: 2 items seen, 2 times in all", "  it.jsonl: 2 items, lines 9-10"]


def test_every_segment_is_at_its_line_and_column(data_root, monkeypatch):
    from classit.data import corpus

    monkeypatch.setattr(corpus, "READ_BYTES", 3000)  # long lines come in pieces too
    for name in ("switchboard", "childes", "simple_wiki"):
        path = babylm_file(data_root, f"dev/{name}.dev")
        lines = read_text(path).split("\n")
        segments = list(corpus.iter_segments(path))
        assert len(segments) > 3
        for s in segments:
            text = s.text.removeprefix("\n")
            assert lines[s.line - 1][s.column:s.column + len(text)] == text, (path, s.line, s.column)


def test_a_folder_that_is_no_run_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path}: no config.yaml: not a run folder of `classit fit`"):
        open_run(tmp_path)


def test_plot_seen_draws_every_source(tmp_path):
    def seen(name, a, b, done):
        return {"checkpoint": name, "step": 0, "sources": {"pretrain": {"words": a}, "it": {"words": b}},
                "stages": [{"name": "pretrain", "epochs": 1, "epochs_done": 1.0 if done else 0.5},
                           {"name": "it", "epochs": 2, "epochs_done": 0.0}]}
    path = plot_seen([seen("chck_1M", 1e6, 0, False), seen("stage0_pretrain", 1.5e6, 0, True),
                      seen("hf", 1.5e6, 4e5, True)], tmp_path / "seen.png")
    assert path.stat().st_size > 1000
    assert plot_seen([], tmp_path / "none.png") is None


def test_switchboard_examples_are_placed_at_their_lines(data_root, tokenizer, tmp_path):
    from classit.data.switchboard import Switchboard, _clean

    (tmp_path / "swda" / "train").mkdir(parents=True)
    for f in sorted((data_root / "swda" / "train").glob("*.txt"))[:2]:
        (tmp_path / "swda" / "train" / f.name).symlink_to(f)
    source = Switchboard(swda="swda", context_turns=1)
    source.bind("switchboard", tmp_path, tokenizer, 64, tmp_path / "cache")
    placed = source.placed_examples("train")
    assert len(placed) > 10 and [x for _, x in placed] == source.build_examples("train")
    for where, x in placed:  # the prompt's first utterance opens the range, the reply's last closes it
        file, lines = where.rsplit(":", 1)
        first, last = map(int, lines.split("-"))
        said = [_clean(line.split("|")[1]) for line in read_text(Path(file)).splitlines()[first - 1:last]]
        assert x.prompt.startswith(said[0]) and x.reply.endswith(said[-1]), (where, x)


def test_the_world_size_a_saved_config_names():
    from classit.dynamics.seen import config_world_size

    assert config_world_size({"devices": 2, "num_nodes": 3}) == 6
    assert config_world_size({"devices": [0, 1]}) == 2
    assert config_world_size({"devices": "4"}) == 4
    assert config_world_size({"devices": "auto", "num_nodes": 1}) == 1


@pytest.mark.slow
def test_demo_seq_cut_epochs_seen_as_trained(data_root, tokenizer, tmp_path, capsys):
    """The sequential demo curriculum (corpus → Switchboard → Simple Wikipedia lectures), each epoch cut by
    limit_train_batches: the milestones' words, the rows loaded, and the listing of every source."""
    config = config_copy(CONFIGS / "demo_seq.yaml")
    config["trainer"]["callbacks"] = [c for c in config["trainer"]["callbacks"]
                                      if not c["class_path"].endswith("MinimalPairEvalCallback")]
    milestones = next(c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("MilestoneExport"))
    milestones["init_args"]["milestones"] = [3000, 6000, 9000]  # words: the 12 tiny steps see ≈ 10k
    config["trainer"]["callbacks"].append(rows_recorder(tmp_path / "rows", ids=None))
    config["trainer"]["logger"]["init_args"]["save_dir"] = str(tmp_path / "logs")
    path = tmp_path / "demo_seq.yaml"
    path.write_text(yaml.safe_dump(config))
    folder = demo_data(data_root, tmp_path / "data")
    main(["fit", "--config", str(path), *tiny_curriculum(folder, tokenizer.name_or_path), "--data.val_every=0.5"])
    run = tmp_path / "logs" / "demo_seq" / "version_0"
    written = write_seen(run)  # checks every milestone's words against its milestone.json
    assert len(layout.milestones(run)) == 3 and len(written) == 6
    data = open_run(run)
    assert data.plan.limit_train_batches == 4 and data.plan.total_steps == 12
    sets = {name: source.train_set() for name, source in data.sources.items()}
    rows = json.loads((tmp_path / "rows" / "rank0.json").read_text())["rows"]
    order = [(name, i) for _, _, _, name, items in trained(data.plan, 12) for i in items]
    assert len(order) == len(rows)
    for (name, i), row in zip(order, rows):
        ids = sets[name][i]["input_ids"]
        assert row[:len(ids)] == (ids.tolist() if isinstance(ids, torch.Tensor) else ids)
    final = read_json(layout.seen_file(run / "hf"))
    assert [s["epochs_done"] for s in final["stages"]] == [1.0, 1.0, 1.0]
    listed = seen_blocks(run, "final", data=data)
    assert {r.source for r in listed} == {"pretrain", "switchboard", "simple_wiki"}
    assert all(re.search(r"swda/train/\d+\.txt$", r.file) and r.first_line <= r.last_line
               for r in listed if r.source == "switchboard")
    print_seen(listed)
    assert "simple_wiki.train" in capsys.readouterr().out
