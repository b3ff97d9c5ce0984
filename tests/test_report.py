"""``classit report``: collation, statistics and the BabyLM layout, from result files written here."""

import base64
import csv
import itertools
import json
import re
import shutil
import statistics

import numpy as np
import pytest
from scipy.stats import binomtest, spearmanr

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
    """classit evaluate output for BLiMP with these item outcomes (a tie at item ``tie_at``: right, as the official
    pipeline counts it, and wrong in the strict score)."""
    records = []
    for k, right in enumerate(outcomes):
        uid, line = FILES[k // N], k % N + 1
        s = [-11.0, -11.0] if k == tie_at else ([-10.0, -12.0] if right else [-12.0, -10.0])
        records.append({"uid": uid, "source": f"{blimp_dir / uid}.jsonl:{line}", "scores": s, "pred": s.index(max(s)),
                        "correct": s[0] >= s[1], "tie": s[0] == s[1]})
    by_uid = {uid: 100.0 * statistics.mean(r["correct"] for r in records if r["uid"] == uid) for uid in FILES}
    strict = {uid: 100.0 * statistics.mean(r["correct"] and not r["tie"] for r in records if r["uid"] == uid)
              for uid in FILES}
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
                         "strict": {"macro": statistics.mean(strict.values()), "by_uid": strict},
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
    # folders named from the report's folder: no path of the machine that made it
    assert "| baseline | 0 | final | zero_shot | ../study/baseline/seed0/eval |" in md
    assert not any(machine in text for text in (md, html) for machine in ("/tmp", "/work", str(tmp_path)))
    # seeded: the same command gives the same report
    main(["report", f"[{root}]", "--out", str(tmp_path / "again"), "--replies", "false"])
    assert (tmp_path / "again" / "report.md").read_text() == md


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
    report = (tmp_path / "r" / "report.md").read_text()  # the official score first, the strict one beside it
    assert "a tie counts right" in report and f"seq seed 0 blimp: 1 ties, strict {0.0:.2f}" in report
    assert f"| blimp | {100 / N / 2:.2f} (1 seed) |" in report


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
    assert "baseline: ../model, sequential: ../model" in md and str(tmp_path) not in md  # the model, from the report


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
    """``out/blimp_fast``: the same BLiMP files as ``blimp_dir`` with the next N items, a set of other sentences (on
    the bundled sample, which has N, the same N in reverse order: another set all the same)."""
    folder = out / "blimp_fast"
    folder.mkdir(parents=True)
    for name in FILES:
        every = (data_root / "babylm-eval" / "blimp_filtered" / f"{name}.jsonl").read_text().splitlines()
        lines = every[N:2 * N] if len(every) >= 2 * N else every[:N][::-1]  # the bundled sample has only N
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


# A results tree with known predictions for every kind of paired row: EWoK (subsets weighted equally), entity
# tracking (subsets averaged within files, then files), WUG (rho), fine-tuning (accuracy for RTE, F1 for MRPC)
EWOK = {"agent-properties": 6, "social-relations": 4, "spatial-relations": 5}
ENTITY = {"regular_0_ops": 4, "regular_1_ops": 4, "regular_2_ops": 4, "ambiref_0_ops": 4, "ambiref_1_ops": 4,
          "move_contents_2_ops": 6}
FT_LABELS = [0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1]
RESAMPLES, SEED = 100, 7


def choice_records(sizes, correct):
    """Prediction records of a choice task, subset by subset, from the outcome of each item (in order)."""
    records, k = [], 0
    for uid, n in sizes.items():
        for line in range(1, n + 1):
            records.append({"uid": uid, "source": f"/sets/{uid}.jsonl:{line}", "scores": [-1.0, -2.0] if correct[k]
                            else [-2.0, -1.0], "pred": 0 if correct[k] else 1, "correct": bool(correct[k]), "tie": False})
            k += 1
    return records


def subset_accuracy(records):
    by_uid = {}
    for r in records:
        by_uid.setdefault(r["uid"], []).append(100.0 * r["correct"])
    return {uid: statistics.fmean(v) for uid, v in by_uid.items()}


def confusion_scores(labels, preds):
    """Accuracy, F1 of label 1 (%) and Matthews' correlation, from the confusion counts."""
    tp = sum(y == 1 and p == 1 for y, p in zip(labels, preds))
    tn = sum(y == 0 and p == 0 for y, p in zip(labels, preds))
    fp = sum(y == 0 and p == 1 for y, p in zip(labels, preds))
    fn = sum(y == 1 and p == 0 for y, p in zip(labels, preds))
    denominator = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    return (100.0 * (tp + tn) / len(labels), 100.0 * 2 * tp / (2 * tp + fp + fn),
            (tp * tn - fp * fn) / denominator if denominator else 0.0)


def write_stats_tree(root, wug_folder, ratios):
    """baseline and merged, seeds 0 and 1: zero-shot EWoK, entity tracking, WUG; fine-tuning RTE and MRPC (seeds 42,
    43). Returns what was written: (condition, seed) → {"ewok", "entity", "wug", "ft"}."""
    rng = np.random.default_rng(11)
    written = {}
    for condition, p_right, wug_noise in (("baseline", 0.45, 1.0), ("merged", 0.7, 0.15)):
        for seed in (0, 1):
            ewok = choice_records(EWOK, rng.random(sum(EWOK.values())) < p_right)
            # entity tracking: the same outcomes for both conditions but in move_contents, all wrong for the baseline
            # and all right for merged (a difference of 100 in one file of three: 33.33 points, with no spread)
            base = np.random.default_rng(seed).random(sum(ENTITY.values())) < 0.5
            base[-ENTITY["move_contents_2_ops"]:] = condition == "merged"
            entity = choice_records(ENTITY, base)
            probs = np.clip(np.array(ratios) + wug_noise * rng.standard_normal(len(ratios)), 0, 1)
            wug = [{"uid": "wug_adj", "source": f"{wug_folder / 'wug.jsonl'}:{i + 1}", "scores": [0.0, 0.0],
                    "pred": 0, "prob": float(q)} for i, q in enumerate(probs)]
            out = root / condition / f"seed{seed}" / "eval"
            summary = {}
            for task, records, folder in (("ewok", ewok, "/sets/ewok"), ("entity_tracking", entity, "/sets/entity")):
                write_jsonl(out / "predictions" / f"{task}.jsonl", records)
                by_uid = subset_accuracy(records)
                files = {}
                for uid, acc in by_uid.items():
                    files.setdefault(uid.rsplit("_", 2)[0], []).append(acc)
                macro = (statistics.fmean(statistics.fmean(v) for v in files.values()) if task == "entity_tracking"
                         else statistics.fmean(by_uid.values()))
                summary[task] = {"by_uid": by_uid, "macro": macro, "strict": {"macro": macro, "by_uid": by_uid}, "ties": 0,
                                 "items": len(records), "folder": folder}
            rho = 100 * spearmanr(probs, ratios)[0]
            write_jsonl(out / "predictions" / "wug.jsonl", wug)
            summary["wug"] = {"macro": rho, "rho": rho, "by_uid": {"wug_adj": rho}, "items": len(wug),
                              "folder": str(wug_folder)}
            (out / "summary.json").write_text(json.dumps({"kind": "zero_shot", **summary}))
            ft, ft_summary = {}, {}
            for task in ("rte", "mrpc"):
                runs = [[y if rng.random() < p_right + 0.1 else 1 - y for y in FT_LABELS] for _ in (42, 43)]
                ft[task] = runs
                for ft_seed, preds in zip((42, 43), runs):
                    write_jsonl(root / condition / f"seed{seed}" / "finetune" / "predictions"
                                / f"{task}_seed{ft_seed}.jsonl",
                                [{"id": f"{task}_{i}", "idx": i, "label": y, "pred": q, "probs": [0.5, 0.5]}
                                 for i, (y, q) in enumerate(zip(FT_LABELS, preds))])
                numbers = [confusion_scores(FT_LABELS, preds) for preds in runs]
                ft_summary[task] = {m: {"mean": statistics.fmean(v), "std": statistics.stdev(v), "per_seed": list(v)}
                                    for m, v in zip(("accuracy", "f1", "mcc"), zip(*numbers))}
                ft_summary[task].update(seeds=[42, 43], best_epoch=[1, 1], selection="heldout", seconds=1.0)
            (root / condition / f"seed{seed}" / "finetune" / "summary.json").write_text(
                json.dumps({"kind": "finetune", **ft_summary}))
            written[condition, seed] = {"ewok": ewok, "entity": entity, "wug": probs, "ft": ft, "summary": summary,
                                        "ft_summary": ft_summary}
    return written


def diff_row(md, condition, task):
    """The differences row of ``task``: (difference, low, high, test, p, real)."""
    line = next(x for x in md.splitlines() if x.startswith(f"| {condition} | {task} |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    low, high = (float(x) for x in cells[5].strip("[]").split(","))
    return float(cells[4]), low, high, cells[6], cells[7], cells[8]


def percentile_interval(boot):
    return tuple(np.percentile(boot, [2.5, 97.5]))


def test_report_statistics_against_computations_written_here(tmp_path, data_root):
    import random

    from helpers import wug_items

    wug_folder = tmp_path / "data" / "wug_adj_nominalization"
    items = wug_items(random.Random(3), 14)
    write_jsonl(wug_folder / "wug.jsonl", items)
    ratios = [it["ratio"] for it in items]
    root, out = tmp_path / "study", tmp_path / "report"
    w = write_stats_tree(root, wug_folder, ratios)
    main(["report", str(root), "--out", str(out), "--replies", "false", "--resamples", str(RESAMPLES),
          "--seed", str(SEED)])
    md = (out / "report.md").read_text()
    seeds = (0, 1)

    # EWoK: seed-mean item outcomes, domains weighted equally, items redrawn within each domain (file order)
    rng = np.random.default_rng(SEED)
    estimate, boot, start = 0.0, np.zeros(RESAMPLES), 0
    for n in EWOK.values():
        d = np.array([100 * (np.mean([w["merged", s]["ewok"][k]["correct"] for s in seeds])
                             - np.mean([w["baseline", s]["ewok"][k]["correct"] for s in seeds]))
                      for k in range(start, start + n)])
        start += n
        estimate += d.mean() / len(EWOK)
        boot += d[rng.integers(0, n, (RESAMPLES, n))].mean(axis=1) / len(EWOK)
    diff, low, high, test, p, real = diff_row(md, "merged", "ewok")
    macro = {c: statistics.fmean(w[c, s]["summary"]["ewok"]["macro"] for s in seeds) for c in ("baseline", "merged")}
    assert diff == pytest.approx(macro["merged"] - macro["baseline"], abs=0.006) == pytest.approx(estimate, abs=0.006)
    assert (low, high) == pytest.approx(percentile_interval(boot), abs=0.006)
    only = [sum(w[c, s]["ewok"][k]["correct"] and not w[o, s]["ewok"][k]["correct"] for s in seeds
                for k in range(sum(EWOK.values()))) for c, o in (("merged", "baseline"), ("baseline", "merged"))]
    assert test == f"McNemar exact ({only[0]} vs {only[1]} discordant)"
    p_exact = binomtest(only[0], sum(only)).pvalue
    assert p == ("< 0.001" if p_exact < 0.001 else f"{p_exact:.4f}")

    # entity tracking: move_contents (one file of three) differs by 100 on every item: +33.33 with no spread
    diff, low, high, test, p, real = diff_row(md, "merged", "entity_tracking")
    assert diff == low == high == pytest.approx(100 / 3, abs=0.006)
    n = ENTITY["move_contents_2_ops"] * len(seeds)
    assert test == f"McNemar exact ({n} vs 0 discordant)" and p == "< 0.001" and real == "yes"

    # WUG: the same items redrawn for both conditions, Spearman's rho of each seed, the seed mean, B - A (x100)
    rng = np.random.default_rng(SEED)
    idx = rng.integers(0, len(ratios), (RESAMPLES, len(ratios)))
    target = np.array(ratios)
    rho = {c: np.mean([[spearmanr(w[c, s]["wug"][i], target[i])[0] for i in idx] for s in seeds], axis=0)
           for c in ("baseline", "merged")}
    boot = 100 * (rho["merged"] - rho["baseline"])
    diff, low, high, test, p, real = diff_row(md, "merged", "wug")
    observed = 100 * np.mean([spearmanr(w["merged", s]["wug"], target)[0]
                              - spearmanr(w["baseline", s]["wug"], target)[0] for s in seeds])
    assert diff == pytest.approx(observed, abs=0.006) and low <= diff <= high
    assert (low, high) == pytest.approx(percentile_interval(boot), abs=0.006)
    p_boot = min(1.0, 2 * min((boot <= 0).mean(), (boot >= 0).mean()))
    assert test == "paired bootstrap" and p == ("< 0.001" if p_boot < 0.001 else f"{p_boot:.4f}")

    # fine-tuning: accuracy (RTE) and F1 (MRPC) from the confusion counts; items redrawn for both, runs per side
    labels = np.array(FT_LABELS)
    for task, column in (("rte", 0), ("mrpc", 1)):
        runs = {c: [np.array(r) for s in seeds for r in w[c, s]["ft"][task]] for c in ("baseline", "merged")}
        rng = np.random.default_rng(SEED)
        idx = rng.integers(0, len(labels), (RESAMPLES, len(labels)))
        boot = {}
        for c in ("baseline", "merged"):
            scores = np.array([[confusion_scores(labels[i], r[i])[column] for i in idx] for r in runs[c]])
            pick = rng.integers(0, len(runs[c]), (RESAMPLES, len(runs[c])))
            boot[c] = np.array([scores[pick[j], j].mean() for j in range(RESAMPLES)])
        per_run = {c: [confusion_scores(labels, r)[column] for r in runs[c]] for c in runs}
        diff, low, high, test, p, real = diff_row(md, "merged", task)
        assert diff == pytest.approx(np.mean(per_run["merged"]) - np.mean(per_run["baseline"]), abs=0.006)
        assert (low, high) == pytest.approx(percentile_interval(boot["merged"] - boot["baseline"]), abs=0.006)
        pooled = per_run["baseline"] + per_run["merged"]
        observed = abs(np.mean(per_run["merged"]) - np.mean(per_run["baseline"]))
        splits = list(itertools.combinations(range(8), 4))
        hits = sum(abs(np.mean([pooled[i] for i in range(8) if i not in first]) - np.mean([pooled[i] for i in first]))
                   >= observed - 1e-9 for first in splits)
        assert test == "permutation over runs (4 vs 4)" and p == f"{hits / len(splits):.4f}"
    # the scores table: MRPC is scored by F1, not accuracy; results.csv has every fine-tuning seed's F1 and MCC
    mrpc = [statistics.fmean(confusion_scores(FT_LABELS, r)[1] for r in w["merged", s]["ft"]["mrpc"]) for s in seeds]
    assert f"{statistics.fmean(mrpc):.2f} ± {statistics.stdev(mrpc):.2f} (2)" in next(
        x for x in md.splitlines() if x.startswith("| mrpc |"))
    rows = _csv(out / "results.csv")
    for (c, s), numbers in w.items():
        for task, runs in numbers["ft"].items():
            for ft_seed, preds in zip((42, 43), runs):
                _, f1, mcc = confusion_scores(FT_LABELS, preds)
                mine = {r["metric"]: float(r["value"]) for r in rows
                        if (r["condition"], r["seed"], r["task"], r["subset"]) == (c, str(s), task, f"finetune_seed{ft_seed}")}
                assert mine["f1"] == pytest.approx(f1) and mine["mcc"] == pytest.approx(mcc)

    # the HTML page: every section, table and figure the report promises for this tree
    page = (out / "report.html").read_text()
    assert re.findall(r"<h2>(.*?)</h2>", page) == ["Inputs", "Scores", "z-scores", "Differences from baseline"]
    assert page.count("<table>") == 5
    figures = dict(re.findall(r"<img alt='(.*?)' src='data:image/png;base64,(.*?)'>", page))
    assert list(figures) == ["z-scores per condition", "scores per task"]
    for alt, name in (("z-scores per condition", "zscores.png"), ("scores per task", "tasks.png")):
        assert base64.b64decode(figures[alt]) == (out / name).read_bytes()
        assert f"![{alt}]({name})" in md


@pytest.mark.slow
def test_finetune_on_two_tasks_then_report(tmp_path, tiny_model_dir):
    """The documented route `classit finetune --tasks rte,wsc` → `classit report`: the report lists each task with
    the numbers of the fine-tuning summary."""
    import random

    from helpers import rte_items, wsc_items

    rng, data = random.Random(0), tmp_path / "glue"
    for task, make in (("rte", rte_items), ("wsc", wsc_items)):
        write_jsonl(data / f"{task}.train.jsonl", make(rng, 24))
        write_jsonl(data / f"{task}.valid.jsonl", make(rng, 8))
    finetuned = tmp_path / "results" / "tiny" / "finetune"
    main(["finetune", "--model", str(tiny_model_dir), "--data_dir", str(data), "--tasks", "rte,wsc", "--seeds", "1,2",
          "--out", str(finetuned), "--max_epochs", "1", "--batch_size", "8"])
    summary = json.loads((finetuned / "summary.json").read_text())
    out = tmp_path / "report"
    main(["report", str(tmp_path / "results"), "--out", str(out), "--replies", "false"])
    md = (out / "report.md").read_text()
    for task in ("rte", "wsc"):
        assert f"| {task} | {summary[task]['accuracy']['mean']:.2f} (1 seed) |" in md
    rows = _csv(out / "results.csv")
    for task in ("rte", "wsc"):
        for metric in ("accuracy", "f1", "mcc"):
            got = [float(r["value"]) for r in rows if (r["condition"], r["task"], r["metric"]) == ("tiny", task, metric)]
            assert got == pytest.approx(summary[task][metric]["per_seed"]) and len(got) == 2
    assert "| tiny | 0 | final | finetune |" in md


def test_corrected_scores_stand_beside_the_official_ones(tmp_path, blimp_dir):
    """A condition scored with a tokenizer without BOS: the official score is the one compared (whichever headline
    evaluate wrote), and the corrected one (BOS prepended) stands beside it, named, in report.md and results.csv."""
    from classit.eval.evaluate import with_headline

    root = tmp_path / "study"
    written = {}
    for condition, headline in (("baseline", "official"), ("merged", "corrected")):
        out = root / condition / "seed0" / "eval"
        summary = write_evaluate(out, blimp_dir, OUTCOMES[condition][0])
        blimp = dict(summary["blimp"])
        folder = blimp.pop("folder")
        blimp["corrected"] = {"macro": 90.0, "ties": 0, "strict": {"macro": 90.0, "by_uid": {}}, "by_uid": {}}
        (out / "summary.json").write_text(json.dumps({"blimp": {**with_headline(blimp, headline), "folder": folder}}))
        written[condition] = summary["blimp"]["macro"]
    main(["report", str(root), "--out", str(tmp_path / "r"), "--replies", "false"])
    md = (tmp_path / "r" / "report.md").read_text()
    assert f"| blimp | {written['baseline']:.2f} (1 seed) | {written['merged']:.2f} (1 seed) |" in md
    assert "| condition | seed | task | official | corrected (BOS prepended) |" in md
    for condition, official in written.items():
        assert f"| {condition} | 0 | blimp | {official:.2f} | 90.00 |" in md
    rows = _csv(tmp_path / "r" / "results.csv")
    for condition, official in written.items():
        mine = [r for r in rows if r["condition"] == condition and r["metric"] == "accuracy"]
        assert float(next(r for r in mine if r["subset"] == "")["value"]) == official
        assert float(next(r for r in mine if r["subset"] == "corrected (BOS prepended)")["value"]) == 90.0
