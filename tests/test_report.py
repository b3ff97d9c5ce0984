"""``classit report``: collation, statistics and the BabyLM layout, from result files written here."""

import csv
import json
import shutil
import statistics

import numpy as np
import pytest
from scipy.stats import binomtest

from classit.cli import main
from classit.eval.compare import compare
from classit.study import stats
from classit.study.collect import find_results
from helpers import blimp_subset, error_line, write_jsonl

FILES = ("adjunct_island", "anaphor_gender_agreement")
N = 5  # items per BLiMP file (the bundled sample has 5 of each)
# item outcomes (1 right, 0 wrong) per condition and seed, file by file
OUTCOMES = {
    "baseline": {0: [1, 0, 1, 0, 1] + [1, 1, 0, 0, 0], 1: [1, 0, 0, 0, 1] + [1, 1, 0, 1, 1]},
    "merged": {0: [1, 1, 1, 0, 1] + [1, 1, 0, 0, 1], 1: [1, 1, 1, 0, 1] + [1, 1, 0, 1, 1]},
    "sequential": {0: [1, 1, 1, 1, 1] + [1, 1, 1, 1, 0], 1: [1, 1, 1, 1, 0] + [1, 1, 1, 1, 1]},
}
LABELS = [0, 1, 1, 0, 1, 0, 0, 1]
FT_PREDS = {"baseline": [[0, 1, 0, 0, 1, 1, 0, 0], [0, 0, 1, 0, 1, 1, 0, 1]],
            "merged": [[0, 1, 1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 1, 0, 0, 0]],
            "sequential": [[0, 1, 1, 0, 1, 0, 0, 1], [0, 1, 1, 0, 1, 0, 1, 1]]}


@pytest.fixture()
def blimp_dir(data_root, tmp_path):
    """The first N items of two real BLiMP files."""
    return blimp_subset(data_root, tmp_path / "data", FILES, N)


def write_evaluate(out, blimp_dir, outcomes, tie_at=None):
    """classit evaluate output for BLiMP with these item outcomes (a tie at item ``tie_at``)."""
    records = []
    for k, right in enumerate(outcomes):
        uid, line = FILES[k // N], k % N + 1
        s = [-11.0, -11.0] if k == tie_at else ([-10.0, -12.0] if right else [-12.0, -10.0])
        records.append({"uid": uid, "source": f"{blimp_dir / uid}.jsonl:{line}", "scores": s, "pred": s.index(max(s)),
                        "correct": s[0] > s[1], "tie": s[0] == s[1]})
    by_uid = {uid: 100.0 * statistics.mean(r["correct"] for r in records if r["uid"] == uid) for uid in FILES}
    items = [json.loads(x) for uid in FILES for x in (blimp_dir / f"{uid}.jsonl").read_text().splitlines()]
    fields = {}
    for item, r in zip(items, records):
        fields.setdefault(item["field"].replace("syntax_semantics", "syntax/semantics"), []).append(r["correct"])
    terms = {}
    for item, r in zip(items, records):
        terms.setdefault(item["linguistics_term"], []).append(r["correct"])
    summary = {"blimp": {"by_uid": by_uid, "by_field": {k: 100.0 * statistics.mean(v) for k, v in fields.items()},
                         "by_linguistics_term": {k: 100.0 * statistics.mean(v) for k, v in terms.items()},
                         "macro": statistics.mean(by_uid.values()), "ties": int(tie_at is not None),
                         "items": len(records), "folder": str(blimp_dir)}}
    write_jsonl(out / "predictions" / "blimp.jsonl", records)
    (out / "summary.json").write_text(json.dumps(summary))
    return summary


def write_finetune(out, preds):
    """classit finetune output for RTE with two fine-tuning seeds."""
    accs = [100.0 * np.mean(np.array(p) == np.array(LABELS)) for p in preds]
    seeds = [42, 43]
    for seed, p in zip(seeds, preds):
        write_jsonl(out / "predictions" / f"rte_seed{seed}.jsonl",
               [{"id": f"rte_{i}", "idx": i, "label": y, "pred": q, "probs": [0.5, 0.5]} for i, (y, q) in enumerate(zip(LABELS, p))])
    metric = lambda values: {"mean": statistics.fmean(values), "std": statistics.stdev(values), "per_seed": values}  # noqa: E731
    summary = {"rte": {"accuracy": metric(accs), "f1": metric([50.0, 60.0]), "mcc": metric([0.1, 0.2]), "seeds": seeds,
                       "best_epoch": [1, 1], "selection": "heldout", "selected_on": "accuracy", "seconds": 1.0},
               "glue_score": statistics.fmean(accs), "glue_accuracy": statistics.fmean(accs), "glue_tasks": ["rte"]}
    (out / "summary.json").write_text(json.dumps(summary))
    return summary


@pytest.fixture()
def study(tmp_path, blimp_dir):
    """study/<condition>/seed<k>/{eval,finetune}: 3 conditions x 2 seeds."""
    root = tmp_path / "study"
    summaries = {}
    for condition, per_seed in OUTCOMES.items():
        for seed, outcomes in per_seed.items():
            summaries[condition, seed, "eval"] = write_evaluate(root / condition / f"seed{seed}" / "eval", blimp_dir, outcomes)
            summaries[condition, seed, "ft"] = write_finetune(root / condition / f"seed{seed}" / "finetune",
                                                              FT_PREDS[condition][::1 if seed == 0 else -1])
    return root, summaries


def test_zscores_mcnemar_permutation():
    z = stats.zscores({"a": 1.0, "b": 2.0, "c": 4.0})
    values = np.array([1.0, 2.0, 4.0])
    assert z == pytest.approx(dict(zip("abc", (values - values.mean()) / values.std())))
    assert stats.mcnemar(3, 11) == pytest.approx(binomtest(3, 14, 0.5).pvalue)
    assert stats.mcnemar(0, 0) == 1.0
    assert stats.permutation_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == pytest.approx(2 / 20)  # exact: 20 splits


def test_bootstrap_covers_the_known_difference_and_is_seeded():
    rng = np.random.default_rng(1)
    a = {s: rng.random(3000) < 0.6 for s in ("x", "y")}
    b = {s: np.where(rng.random(3000) < 0.5, a[s], rng.random(3000) < 0.7) for s in ("x", "y")}  # paired, P(b) = 0.65
    diffs = {s: b[s].astype(float) - a[s] for s in a}
    estimate, low, high = stats.paired_bootstrap(diffs, {"x": 0.5, "y": 0.5}, 1000, seed=3)
    assert estimate == pytest.approx(np.mean([diffs[s].mean() for s in diffs]))
    assert low < 0.05 < high and low > 0
    assert stats.paired_bootstrap(diffs, {"x": 0.5, "y": 0.5}, 1000, seed=3) == (estimate, low, high)
    assert stats.paired_bootstrap(diffs, {"x": 0.5, "y": 0.5}, 1000, seed=4) != (estimate, low, high)


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_report_numbers_equal_the_summaries(study, tmp_path, capsys):
    root, summaries = study
    out = tmp_path / "report"
    main(["report", str(root), "--out", str(out), "--baseline", "baseline", "--replies", "false"])
    rows = _csv(out / "results.csv")
    for (condition, seed, kind), summary in summaries.items():
        mine = [r for r in rows if r["condition"] == condition and r["seed"] == str(seed)]
        if kind == "eval":
            macro = [r for r in mine if r["task"] == "blimp" and r["subset"] == "" and r["metric"] == "accuracy"]
            assert float(macro[0]["value"]) == summary["blimp"]["macro"]
            for uid, value in summary["blimp"]["by_uid"].items():
                assert float(next(r["value"] for r in mine if r["subset"] == uid)) == value
        else:
            for ft_seed, value in zip(summary["rte"]["seeds"], summary["rte"]["accuracy"]["per_seed"]):
                row = next(r for r in mine if r["task"] == "rte" and r["subset"] == f"finetune_seed{ft_seed}"
                           and r["metric"] == "accuracy")
                assert float(row["value"]) == value
    md = (out / "report.md").read_text()
    means = {}
    for condition in OUTCOMES:
        for task, key in (("blimp", lambda s: s["blimp"]["macro"]), ("rte", lambda s: s["rte"]["accuracy"]["mean"])):
            values = [key(summaries[condition, seed, "eval" if task == "blimp" else "ft"]) for seed in (0, 1)]
            means[condition, task] = statistics.fmean(values)
            assert f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f} (2)" in md
    for task in ("blimp", "rte"):
        m = np.array([means[c, task] for c in OUTCOMES])
        z = (m - m.mean()) / m.std()
        assert f"| {task} | " + " | ".join(f"{v:.2f}" for v in z) + " |" in md
    # sequential vs baseline on BLiMP: McNemar over items with seeds paired in order, counted here
    only_seq = sum(s and not b for seed in (0, 1) for b, s in zip(OUTCOMES["baseline"][seed], OUTCOMES["sequential"][seed]))
    only_base = sum(b and not s for seed in (0, 1) for b, s in zip(OUTCOMES["baseline"][seed], OUTCOMES["sequential"][seed]))
    p = binomtest(only_seq, only_seq + only_base, 0.5).pvalue
    line = next(x for x in md.splitlines() if x.startswith("| sequential | blimp |"))
    assert f"McNemar exact ({only_seq} vs {only_base} discordant)" in line and f"{p:.4f}" in line
    diff = means["sequential", "blimp"] - means["baseline", "blimp"]
    low, high = (float(x) for x in line.split("[")[1].split("]")[0].split(","))
    assert f"{diff:+.2f}" in line and low <= diff <= high
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and (out / "zscores.png").is_file() and (out / "tasks.png").is_file()
    # seeded: the same command gives the same report
    main(["report", f"[{root}]", "--out", str(tmp_path / "again"), "--replies", "false"])
    assert (tmp_path / "again" / "report.md").read_text() == md.replace(str(out), str(tmp_path / "again"))


def test_a_conditions_outputs_by_kind_are_one_condition(tmp_path, blimp_dir):
    for condition in ("baseline", "merged"):
        write_evaluate(tmp_path / condition / "zero_shot", blimp_dir, OUTCOMES[condition][0])
        write_finetune(tmp_path / condition / "finetune", FT_PREDS[condition])
    results = find_results([str(tmp_path / "baseline"), str(tmp_path / "merged")])
    assert sorted((r.condition, r.kind) for r in results) == [("baseline", "finetune"), ("baseline", "zero_shot"),
                                                             ("merged", "finetune"), ("merged", "zero_shot")]


def test_babylm_layout_reads_back_equal(tmp_path, blimp_dir, capsys):
    evaluated = tmp_path / "runs" / "seq"
    write_evaluate(evaluated, blimp_dir, OUTCOMES["merged"][0])
    tree = tmp_path / "babylm"
    main(["report", f"[{evaluated}]", "--out", str(tmp_path / "r"), "--babylm", str(tree), "--replies", "false"])
    causal = tree / "seq" / "main" / "zero_shot" / "causal"
    preds = json.loads((causal / "blimp" / "blimp_filtered" / "predictions.json").read_text())
    assert list(preds) == list(FILES) and preds[FILES[0]]["predictions"][0]["id"] == f"{FILES[0]}_0"
    capsys.readouterr()
    rows = compare(str(evaluated), str(tree))
    printed = capsys.readouterr().out
    assert rows and all(diff in (0, None) for _, _, diff in rows.values())
    assert f"blimp: 0 of {2 * N} items choose a different option" in printed


def test_babylm_tie_goes_to_the_first_option(tmp_path, blimp_dir):
    evaluated = tmp_path / "runs" / "seq"
    outcomes = [0] * (2 * N)
    write_evaluate(evaluated, blimp_dir, outcomes, tie_at=0)
    tree = tmp_path / "babylm"
    main(["report", f"[{evaluated}]", "--out", str(tmp_path / "r"), "--babylm", str(tree), "--replies", "false"])
    blimp = tree / "seq" / "main" / "zero_shot" / "causal" / "blimp" / "blimp_filtered"
    first = json.loads((blimp_dir / f"{FILES[0]}.jsonl").read_text().splitlines()[0])
    assert json.loads((blimp / "predictions.json").read_text())[FILES[0]]["predictions"][0]["pred"] == first["sentence_good"]
    assert f"{FILES[0]}: {100 / N:.2f}" in (blimp / "best_temperature_report.txt").read_text()  # the tie counts right there
    assert "ties count wrong" in (tmp_path / "r" / "report.md").read_text()


@pytest.mark.slow
def test_replies_and_training_curves(tmp_path, blimp_dir, tiny_model_dir):
    from lightning.pytorch.loggers import TensorBoardLogger
    from transformers import AutoTokenizer

    from classit.data.chat import install_chat_template

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    if not tokenizer.chat_template:
        install_chat_template(tokenizer).save_pretrained(model)
    logger = TensorBoardLogger(tmp_path / "logs", name="run")
    for step in range(3):
        logger.log_metrics({"train/loss": 5.0 - step, "val/loss/pretrain": 6.0 - step, "zero_shot/blimp": 50.0 + step},
                           step=step)
    logger.finalize("success")
    for condition in ("baseline", "sequential"):
        folder = tmp_path / "study" / condition
        write_evaluate(folder, blimp_dir, OUTCOMES[condition][0])
        (folder / "meta.json").write_text(json.dumps({"condition": condition, "seed": 0, "model": str(model),
                                                      "log_dir": logger.log_dir}))
    out = tmp_path / "report"
    main(["report", f"[{tmp_path / 'study'}]", "--out", str(out)])
    md = (out / "report.md").read_text()
    assert "## What each condition says" in md
    table = md.split("## What each condition says")[1]
    assert sum(line.startswith("| conversation |") for line in table.splitlines()) == 3
    assert sum(line.startswith("| lecture |") for line in table.splitlines()) == 3
    assert (out / "training.png").is_file() and (out / "zero_shot_training.png").is_file()


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "no summary.json below it"),
    (lambda d: (d / "summary.json").write_text(json.dumps({"blimp": {"accuracy": 3}})), "unknown layout"),
    (lambda d: (d / "summary.json").write_text("{"), "summary.json:1: malformed JSON"),
])
def test_bad_input_through_the_cli(tmp_path, setup, message):
    folder = tmp_path / "results"
    folder.mkdir()
    setup(folder)
    with pytest.raises(SystemExit) as e:
        main(["report", f"[{folder}]", "--out", str(tmp_path / "r")])
    assert str(e.value).startswith(f"classit: error: {folder}") and message in str(e.value)


def fast_subset(data_root, out):
    """``out/blimp_fast``: the same BLiMP files as ``blimp_dir`` with the next N items, a set of other sentences."""
    folder = out / "blimp_fast"
    folder.mkdir(parents=True)
    for name in FILES:
        lines = (data_root / "babylm-eval" / "blimp_filtered" / f"{name}.jsonl").read_text().splitlines()[N:2 * N]
        (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_seeds_scored_on_different_sets_are_refused_by_name(tmp_path, blimp_dir, data_root):
    fast = fast_subset(data_root, tmp_path / "data-fast")
    root = tmp_path / "study"
    for seed in (0, 1):
        write_evaluate(root / "baseline" / f"seed{seed}" / "eval", blimp_dir, OUTCOMES["baseline"][seed])
    write_evaluate(root / "merged" / "seed0" / "eval", blimp_dir, OUTCOMES["merged"][0])
    write_evaluate(root / "merged" / "seed1" / "eval", fast, OUTCOMES["merged"][1])
    line = error_line(["report", str(root), "--out", str(tmp_path / "r"), "--replies", "false"])
    assert line == (f"blimp of condition 'merged': seed 0 was scored on {blimp_dir} ({2 * N} items), seed 1 on {fast} "
                    f"({2 * N} items); score every seed on the same set, or give each set its own condition (meta.json)")
    assert not (tmp_path / "r").exists()


def test_conditions_scored_on_different_sets_are_not_paired(tmp_path, blimp_dir, data_root):
    fast = fast_subset(data_root, tmp_path / "data-fast")
    root = tmp_path / "study"
    for seed in (0, 1):
        write_evaluate(root / "baseline" / f"seed{seed}" / "eval", blimp_dir, OUTCOMES["baseline"][seed])
        write_evaluate(root / "sequential" / f"seed{seed}" / "eval", fast, OUTCOMES["sequential"][seed])
    main(["report", str(root), "--out", str(tmp_path / "r"), "--replies", "false"])
    row = next(x for x in (tmp_path / "r" / "report.md").read_text().splitlines() if x.startswith("| sequential | blimp |"))
    assert (f"no paired interval: baseline was scored on {blimp_dir} ({2 * N} items), sequential on {fast} "
            f"({2 * N} items)") in row
    assert "McNemar" not in row and row.endswith("| – | no |")


def test_items_are_paired_by_identity_not_position(tmp_path, blimp_dir):
    """The same outcomes written in another order pair the same items: the McNemar counts do not change."""
    root = tmp_path / "study"
    write_evaluate(root / "baseline" / "seed0" / "eval", blimp_dir, OUTCOMES["baseline"][0])
    folder = root / "sequential" / "seed0" / "eval"
    write_evaluate(folder, blimp_dir, OUTCOMES["sequential"][0])
    records = (folder / "predictions" / "blimp.jsonl").read_text().splitlines()
    (folder / "predictions" / "blimp.jsonl").write_text("\n".join(records[::-1]) + "\n")
    main(["report", str(root), "--out", str(tmp_path / "r"), "--replies", "false"])
    only_seq = sum(s and not b for b, s in zip(OUTCOMES["baseline"][0], OUTCOMES["sequential"][0]))
    only_base = sum(b and not s for b, s in zip(OUTCOMES["baseline"][0], OUTCOMES["sequential"][0]))
    row = next(x for x in (tmp_path / "r" / "report.md").read_text().splitlines() if x.startswith("| sequential | blimp |"))
    assert f"McNemar exact ({only_seq} vs {only_base} discordant)" in row


def test_one_seed_shows_its_score_without_a_spread(tmp_path, blimp_dir):
    root = tmp_path / "study"
    summary = write_evaluate(root / "baseline" / "seed0" / "eval", blimp_dir, OUTCOMES["baseline"][0])
    main(["report", str(root), "--out", str(tmp_path / "r"), "--replies", "false"])
    md = (tmp_path / "r" / "report.md").read_text()
    assert f"| blimp | {summary['blimp']['macro']:.2f} (1 seed) |" in md and "± 0.00" not in md
