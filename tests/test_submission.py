"""``classit submission``: the BabyLM 2025 submission file from a results tree in the pipeline's layout, checked
against this test's own reading of the official collator (``evaluation_pipeline/collate_preds.py``): its keys and
their order, the sizes it asserts, the fast scores per milestone. The evaluation sets are synthetic, built here in
the official sizes, so it runs on a clone; with the real data folder, one test checks the sizes and fields against
the real sets."""

import functools
import json
import math
import os
import random
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy.stats import spearmanr

from classit import layout
from classit.cli import main
from classit.eval import submission, tasks
from classit.files import read_json
from classit.eval import glue as glue_tasks
from classit.eval.aoa import curve_fitness
from helpers import (THINGS, aoa_data_of_size, milestone_run, sample_sentences, write_jsonl,
                     write_reading_csv)

KEYS = ["blimp", "blimp_supplement", "ewok", "entity_tracking", "wug_adj", "wug_past", "comps", "reading", "aoa",
        "glue", "fast_eval_results"]
FAST_KEYS = ["blimp", "blimp_supplement", "ewok", "entity_tracking", "wug_adj", "wug_past", "reading"]
GLUE = ["boolq", "mnli", "mrpc", "multirc", "qqp", "rte", "wsc"]
STRICT_SMALL = [f"chck_{i}M" for i in range(1, 10)] + [f"chck_{i}M" for i in range(10, 101, 10)]
STRICT = [f"chck_{i}M" for i in range(1, 10)] + [f"chck_{i}M" for i in range(10, 91, 10)] + \
         [f"chck_{i}M" for i in range(100, 1001, 100)]
COMPS = {"base": 49340, "wugs_dist_before": 13896, "wugs_dist_in_between": 13896, "wugs": 13896}
AOA_PER_CHECKPOINT = 8005
FAST_BLIMP = ["adjunct_island", "causative"]  # the collator checks the size of the subsets given, any of them


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _dump(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _preds(n: int, **fields) -> dict:
    return {"predictions": [{"id": i, "pred": "x", **fields} for i in range(n)]}


def _entity_tracking_sizes(folder: Path) -> Counter:
    return Counter(f"{p.stem}_{r['numops']}_ops" for p in sorted(folder.glob("*.jsonl")) for r in _lines(p))


@pytest.fixture(scope="module")
def real() -> Path:
    return Path(os.environ["CLASSIT_DATA_DIR"])


@functools.cache
def _draws(subset: str) -> np.ndarray:
    """A subset's uniform draws, one per item (COMPS' 49,340 the most), seeded by its name."""
    return np.random.default_rng(list(subset.encode())).random(50_000)


def _right(subset: str, i: int) -> bool:
    """Whether item ``i`` of a subset is predicted right: a share from about 30% to 90% that differs by subset."""
    share = 0.3 + 0.6 * (sum(map(ord, subset)) % 7) / 6
    return bool(_draws(subset)[i] < share)


def _write_known_predictions(causal: Path, data: Path, surprisal: list[float], previous: list[float]) -> None:
    """Full-set predictions in the official sizes, right or wrong item by item as :func:`_right` says; WUG
    probabilities that follow the human ratios with noise; the reading surprisals given."""
    def choices(folder: str, right: str, wrong) -> dict:
        return {p.stem: {"predictions": [{"id": i, "pred": r[right] if _right(p.stem, i) else wrong(r)}
                                         for i, r in enumerate(_lines(p))]} for p in sorted((data / folder).glob("*.jsonl"))}

    _dump(causal / "blimp/blimp_filtered/predictions.json",
          choices("blimp_filtered", "sentence_good", lambda r: r["sentence_bad"]))
    _dump(causal / "blimp/supplement_filtered/predictions.json",
          choices("supplement_filtered", "sentence_good", lambda r: r["sentence_bad"]))
    _dump(causal / "ewok/ewok_filtered/predictions.json", choices("ewok_filtered", "Target1", lambda r: r["Target2"]))
    et = {}
    for p in sorted((data / "entity_tracking").glob("*.jsonl")):
        for r in _lines(p):
            block = et.setdefault(f"{p.stem}_{r['numops']}_ops", {"predictions": []})["predictions"]
            block.append({"pred": r["options"][0 if _right(p.stem, len(block) + 1000 * r["numops"]) else 1]})
    _dump(causal / "entity_tracking/entity_tracking/predictions.json", et)
    comps = {}
    for subset, stem in tasks.COMPS_FILES.items():
        comps[subset] = {"predictions": [
            {"pred": f"{r['prefix_acceptable' if _right(stem, i) else 'prefix_unacceptable']} {r['property_phrase']}"}
            for i, r in enumerate(_lines(data / "comps" / f"{stem}.jsonl"))]}
    _dump(causal / "comps/comps/predictions.json", comps)
    for key, folder in (("wug_adj", "wug_adj_nominalization"), ("wug_past", "wug_past_tense")):
        noise = random.Random(key)
        _dump(causal / f"wug_{key[4:]}/{folder}/predictions.json", {key: {"predictions": [
            {"pred": "x", "prob": r["ratio"] + noise.gauss(0, 0.3)} for r in _lines(data / folder / f"{folder}.jsonl")]}})
    _dump(causal / "reading/predictions.json", {"reading": {"predictions": [
        {"id": i, "pred": s, "prev_pred": p} for i, (s, p) in enumerate(zip(surprisal, previous))]}})


def _write_subsets(folder: Path, sizes: dict[str, int], record) -> None:
    """One JSONL file per subset of ``sizes``, its items ``record(subset, i)``."""
    for subset, n in sizes.items():
        write_jsonl(folder / f"{subset}.jsonl", [record(subset, i) for i in range(n)])


def _pair(subset: str, i: int) -> dict:
    return {"sentence_good": f"The {subset} is good {i}.", "sentence_bad": f"The {subset} good is {i}."}


def _blimp(subset: str, i: int) -> dict:
    return {**_pair(subset, i), "field": "syntax", "linguistics_term": "island", "UID": subset}


def _targets(subset: str, i: int) -> dict:
    return {"Domain": subset, "Context1": f"The {subset} {i}.", "Target1": f"It is right {i}.",
            "Target2": f"It is wrong {i}.", "ContextType": "x", "ContextDiff": "x", "TargetDiff": "x"}


def _entity_tracking(folder: Path, sizes: dict[str, int]) -> None:
    """Entity-tracking files (``regular``, ...) holding ``sizes[f"{file}_{numops}_ops"]`` items of each numops."""
    files = {}
    for key, n in sizes.items():
        stem, numops = key.removesuffix("_ops").rsplit("_", 1)
        files.setdefault(stem, []).extend({"numops": int(numops), "input_prefix": f"Box {i} contains ",
                                           "options": [f"the {key} {i}.", f"nothing {i}."]} for i in range(n))
    for stem, records in files.items():
        write_jsonl(folder / f"{stem}.jsonl", records)


def _write_official_sets(full: Path, fast: Path) -> None:
    """Synthetic evaluation sets with the official subset names and sizes (``tasks``' registry), holding what
    ``classit submission`` reads from them: the targets its scorers compare (BLiMP and supplement
    ``sentence_good``, EWoK ``Target1``, entity tracking ``numops`` and ``options``, COMPS' prefix and phrase, GLUE
    ``label``), the WUG ratios, the reading CSV and a CDI table; the minimal pairs, EWoK and entity tracking also
    with the fields ``classit evaluate`` decodes (``--run`` scores the fast sets). Fast sets: two BLiMP subsets, one of
    the supplement, EWoK and entity tracking (the collator checks the size of the subsets given), WUG past tense."""
    rng = random.Random(0)
    _write_subsets(full / "blimp_filtered", tasks.BLIMP, _blimp)
    _write_subsets(full / "supplement_filtered", tasks.SUPPLEMENT, _pair)
    _write_subsets(full / "ewok_filtered", tasks.EWOK, _targets)
    _entity_tracking(full / "entity_tracking", tasks.ENTITY_TRACKING)
    _write_subsets(full / "comps", {tasks.COMPS_FILES[k]: n for k, n in COMPS.items()}, lambda stem, i: {
        "prefix_acceptable": f"a {stem} {i}", "prefix_unacceptable": f"b {stem} {i}", "property_phrase": "can fly"})
    for name, n in (("wug_adj_nominalization", 200), ("wug_past_tense", 50)):
        write_jsonl(full / name / f"{name}.jsonl", [{"sentences": f"a{i}\tb{i}", "ratio": rng.random()} for i in range(n)])
    sentences = [" ".join(rng.choice(THINGS) for _ in range(rng.randint(4, 12))) + "." for _ in range(300)]
    write_reading_csv(full / "reading" / "reading_data.csv", sentences, rng, rows=1726)
    for task, spec in glue_tasks.TASKS.items():
        write_jsonl(full / "glue_filtered" / f"{task}.valid.jsonl",
                    [{"label": rng.randrange(spec.num_labels)} for _ in range(spec.size)])
    (full / "aoa").mkdir()  # no row for the tree's one word: an AoA score of 0
    (full / "aoa" / "cdi_human.csv").write_text("word,category," + ",".join(map(str, range(16, 31))) + "\n"
                                                "dog,noun," + ",".join(["0.5"] * 15) + "\n")
    _write_subsets(fast / "blimp_fast", dict.fromkeys(FAST_BLIMP, 200), _blimp)
    _write_subsets(fast / "supplement_fast", {"hypernym": 50}, _pair)
    _write_subsets(fast / "ewok_fast", {"agent-properties": 100}, _targets)
    _entity_tracking(fast / "entity_tracking_fast", tasks.ENTITY_TRACKING_FAST)
    (fast / "wug_past_tense").symlink_to(full / "wug_past_tense")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict:
    """A strict-small results tree of synthetic predictions in the official sizes, scored against synthetic sets
    of the official sizes (:func:`_write_official_sets`, built here: no data folder needed); fast predictions with
    known scores (WUG adjectives and reading: the full sets', as the collator reads them)."""
    root = tmp_path_factory.mktemp("submission")
    data, fast = root / "data", root / "fast_data"
    _write_official_sets(data, fast)
    main_dir = root / "results" / "m" / "main"
    causal = main_dir / "zero_shot" / "causal"
    rows = len(pd.read_csv(data / "reading" / "reading_data.csv"))
    surprisal = [1.0 + 0.1 * (i % 7) for i in range(rows)]
    previous = [math.nan if i % 10 == 0 else 2.0 + 0.3 * (i % 5) for i in range(rows)]
    _write_known_predictions(causal, data, surprisal, previous)
    for task in GLUE:  # right with a share that differs by task
        labels = [r["label"] for r in _lines(data / "glue_filtered" / f"{task}.valid.jsonl")]
        _dump(main_dir / "finetune" / task / "predictions.json", {task: {"predictions": [
            {"id": f"{task}_{i}", "pred": label if _right(task, i) else (label + 1) % 2}
            for i, label in enumerate(labels)]}})
    _dump(causal / "AoA_word/surprisal.json", {"metadata": {}, "results": [
        {"step": s, "target_word": "w", "context_id": i, "surprisal": 1.0}
        for s in STRICT_SMALL for i in range(AOA_PER_CHECKPOINT)]})

    wug_adj = [r["ratio"] for r in _lines(data / "wug_adj_nominalization" / "wug_adj_nominalization.jsonl")]
    wug_past = _lines(fast / "wug_past_tense" / "wug_past_tense.jsonl")
    for k, revision in enumerate(STRICT_SMALL):  # revision k: the first k + 1 BLiMP items right, the rest wrong
        causal = root / "results" / "m" / revision / "zero_shot" / "causal"
        _dump(causal / "blimp/blimp_fast/predictions.json", {uid: {"predictions": [
            {"id": i, "pred": r["sentence_good"] if i <= k else r["sentence_bad"]}
            for i, r in enumerate(_lines(fast / "blimp_fast" / f"{uid}.jsonl"))]} for uid in FAST_BLIMP})
        _dump(causal / "blimp/supplement_fast/predictions.json", {"hypernym": {"predictions": [
            {"pred": r["sentence_good"] + " "} for r in _lines(fast / "supplement_fast" / "hypernym.jsonl")]}})
        _dump(causal / "ewok/ewok_fast/predictions.json", {"agent-properties": {"predictions": [
            {"pred": r["Target2"]} for r in _lines(fast / "ewok_fast" / "agent-properties.jsonl")]}})
        et = {}
        for r in _lines(fast / "entity_tracking_fast" / "regular.jsonl"):
            et.setdefault(f"regular_{r['numops']}_ops", {"predictions": []})["predictions"].append({"pred": r["options"][0]})
        _dump(causal / "entity_tracking/entity_tracking_fast/predictions.json", et)
        _dump(causal / "wug_adj/wug_adj_nominalization/predictions.json",
              {"wug_adj": {"predictions": [{"pred": "x", "prob": r} for r in wug_adj]}})
        _dump(causal / "wug_past/wug_past_tense/predictions.json",
              {"wug_past": {"predictions": [{"pred": "x", "prob": -r["ratio"]} for r in wug_past]}})
        _dump(causal / "reading/predictions.json", {"reading": {"predictions": [
            {"id": i, "pred": s, "prev_pred": p} for i, (s, p) in enumerate(zip(surprisal, previous))]}})
    args = ["submission", "--results", str(root / "results"), "--model", "m", "--track", "strict-small",
            "--fast_data", str(fast), "--data_dir", str(data)]
    return {"results": root / "results", "args": args, "surprisal": surprisal, "previous": previous, "data": data,
            "fast": fast}


def _reading_gains(csv: Path, surprisal: list[float], previous: list[float]) -> dict:
    """The collator's reading scores, written out: relative R² gains of the surprisal (fractions)."""
    data = pd.read_csv(csv, dtype={"item": str})
    data["pred"] = surprisal
    data["prev_pred"] = previous

    def gain(dv, base):
        r2 = [smf.ols(f"{dv} ~ {formula}", data=data[[dv, *cols]].dropna()).fit().rsquared
              for formula, cols in ((base, base_cols), (base + " + pred", base_cols + ["pred"]))]
        return (r2[1] - r2[0]) / (1 - r2[0])

    base_cols = ["Subtlex_log10", "length", "context_length"]
    base = "Subtlex_log10 + length + context_length + Subtlex_log10:length + Subtlex_log10:context_length + " \
           "length:context_length"
    rt = sum(gain(dv, base) for dv in ["RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound"]) / 4
    base_cols = base_cols + ["prev_length", "prev_pred"]
    base = " + ".join(base_cols + [f"{a}:{b}" for i, a in enumerate(base_cols) for b in base_cols[i + 1:]])
    return {"spr": gain("self_paced_reading_time", base), "rt": rt}


def _leaderboard(submission: dict, data: Path) -> dict[str, float]:
    """The leaderboard's full-set scores of a submission, as ``calculate_results_from_pred.py`` computes them,
    written out here: per subset the share of predictions equal to the target (stripped), averaged over subsets
    (entity tracking: its files' subsets by number of operations); Spearman's rho x100 for WUG; the reading gains."""
    def mean(values):
        return sum(values) / len(values)

    def accuracy(predictions, targets):
        right = [p["pred"].strip() == t.strip() for p, t in zip(predictions, targets)]
        return 100 * sum(right) / len(right)

    def by_file(results, folder, target, files=None):
        return mean([accuracy(block["predictions"], [target(r) for r in _lines(data / folder / f"{(files or {}).get(k, k)}.jsonl")])
                     for k, block in results.items()])

    entity = []
    for path in (data / "entity_tracking").glob("*.jsonl"):
        targets = {}
        for r in _lines(path):
            targets.setdefault(r["numops"], []).append(r["options"][0])
        entity += [accuracy(submission["entity_tracking"][f"{path.stem}_{n}_ops"]["predictions"], t)
                   for n, t in targets.items()]
    wug = {key: 100 * spearmanr([p["prob"] for p in submission[key][key]["predictions"]],
                                [r["ratio"] for r in _lines(data / folder / f"{folder}.jsonl")])[0]
           for key, folder in (("wug_adj", "wug_adj_nominalization"), ("wug_past", "wug_past_tense"))}
    reading = submission["reading"]["reading"]["predictions"]
    gains = _reading_gains(data / "reading" / "reading_data.csv", [p["pred"] for p in reading],
                           [p["prev_pred"] for p in reading])
    glue = [100 * mean([p["pred"] == r["label"] for p, r in zip(block["predictions"],
                                                                _lines(data / "glue_filtered" / f"{task}.valid.jsonl"))])
            for task, block in submission["glue"].items()]
    comps_files = {"base": "comps_base", "wugs": "comps_wugs", "wugs_dist_before": "comps_wugs_dist-before",
                   "wugs_dist_in_between": "comps_wugs_dist-in-between"}
    return {"BLIMP": by_file(submission["blimp"], "blimp_filtered", lambda r: r["sentence_good"]),
            "SUPPLEMENT": by_file(submission["blimp_supplement"], "supplement_filtered", lambda r: r["sentence_good"]),
            "EWOK": by_file(submission["ewok"], "ewok_filtered", lambda r: r["Target1"]),
            "ENTITY TRACKING": mean(entity), "WUG ADJ": wug["wug_adj"], "WUG PAST": wug["wug_past"],
            "COMPS": by_file(submission["comps"], "comps", lambda r: f"{r['prefix_acceptable']} {r['property_phrase']}",
                             comps_files),
            "READING (SPR)": 100 * gains["spr"], "READING (ET)": 100 * gains["rt"], "GLUE": mean(glue)}


@pytest.mark.slow
def test_the_file_is_built_as_the_collator_builds_it(tree, tmp_path, capsys):
    out = tmp_path / "all_full_preds_and_fast_scores_causal.json"
    main([*tree["args"], "--out", str(out)])
    printed = capsys.readouterr().out.splitlines()
    got = json.loads(out.read_text())
    scores = _leaderboard(got, tree["data"])
    scores["AoA"] = 0.0  # one surprisal for every word and checkpoint: no curve to fit
    header = printed.index("the leaderboard's scores of it (calculate_results_from_pred.py's rules, full sets):")
    assert printed[header + 1:header + 1 + len(scores)] == [f"  {label:<16} {v:.2f}" for label, v in scores.items()]
    assert len({f"{v:.2f}" for v in scores.values()}) > 8  # scores that tell one task's rule from another's
    assert list(got) == KEYS
    causal = tree["results"] / "m" / "main" / "zero_shot" / "causal"
    sources = {"blimp": "blimp/blimp_filtered", "blimp_supplement": "blimp/supplement_filtered",
               "ewok": "ewok/ewok_filtered", "entity_tracking": "entity_tracking/entity_tracking",
               "wug_adj": "wug_adj/wug_adj_nominalization", "wug_past": "wug_past/wug_past_tense",
               "comps": "comps/comps", "reading": "reading"}
    for key, folder in sources.items():  # the predictions as they are, subsets in the file's order
        source = json.loads((causal / folder / "predictions.json").read_text())
        assert list(got[key]) == list(source)
        assert got[key] == source or key == "reading"  # NaN != NaN
    assert len(got["blimp"]) == 67 and sum(len(v["predictions"]) for v in got["blimp"].values()) == 59875
    assert {k: len(v["predictions"]) for k, v in got["comps"].items()} == COMPS
    assert Counter(r["step"] for r in got["aoa"]["results"]) == {s: AOA_PER_CHECKPOINT for s in STRICT_SMALL}
    assert list(got["glue"]) == GLUE
    assert {k: len(v["predictions"]) for k, v in got["glue"].items()} == {
        t: len(_lines(tree["data"] / "glue_filtered" / f"{t}.valid.jsonl")) for t in GLUE}

    fast = got["fast_eval_results"]
    assert list(fast) == FAST_KEYS and all(len(v) == len(STRICT_SMALL) for v in fast.values())
    assert fast["blimp"] == [{uid: (k + 1) / 200 for uid in FAST_BLIMP} for k in range(len(STRICT_SMALL))]
    assert fast["blimp_supplement"][0] == {"hypernym": 1.0}  # compared stripped
    assert fast["ewok"][0] == {"agent-properties": 0.0}
    assert fast["entity_tracking"][0] == {f"regular_{n}_ops": 1.0 for n in range(6)}
    assert fast["wug_adj"][3] == {"wug_adj": pytest.approx(1.0)}
    assert fast["wug_past"][3] == {"wug_past": pytest.approx(-1.0)}
    expected = _reading_gains(tree["data"] / "reading" / "reading_data.csv", tree["surprisal"], tree["previous"])
    assert fast["reading"][-1] == expected  # bit-equal: the collator's fractions, averaged as it does


@pytest.mark.slow
def test_the_documented_route_finetune_report_babylm_submission(tree, finetuned, tmp_path, capsys):
    """End to end through the CLI: ``classit finetune`` (RTE and WSC on validation sets of the official sizes, the
    ``finetuned`` fixture) → ``classit report --babylm`` into a copy of the tree without those two tasks →
    ``classit submission``, its data the tree's but those two validation sets: the file holds the fine-tuned
    predictions, and every printed score is the official rule's on the file written."""
    data = tmp_path / "data"
    for path in tree["data"].iterdir():
        if path.name != "glue_filtered":
            (data / path.name).parent.mkdir(exist_ok=True)
            (data / path.name).symlink_to(path)
    for path in (tree["data"] / "glue_filtered").iterdir():
        task = path.name.split(".")[0]
        (data / "glue_filtered").mkdir(exist_ok=True)
        (data / "glue_filtered" / path.name).symlink_to(finetuned / "glue" / path.name if task in ("rte", "wsc") else path)
    results = tmp_path / "results"
    shutil.copytree(tree["results"] / "m", results / "tiny", symlinks=True)
    for task in ("rte", "wsc"):
        shutil.rmtree(results / "tiny" / "main" / "finetune" / task)
    main(["report", str(finetuned / "eval"), "--out", str(tmp_path / "report"), "--babylm", str(results)])
    capsys.readouterr()
    main(["submission", "--results", str(results), "--model", "tiny", *tree["args"][5:-1], str(data)])
    printed = capsys.readouterr().out.splitlines()
    got = read_json(results / "tiny" / "all_full_preds_and_fast_scores_causal.json")
    for task in ("rte", "wsc"):
        ours = _lines(finetuned / "eval" / "tiny" / "finetune" / "predictions" / f"{task}_seed1.jsonl")
        assert got["glue"][task]["predictions"] == [{"id": r["id"], "pred": r["pred"]} for r in ours]
    scores = {**_leaderboard(got, data), "AoA": 0.0}
    header = printed.index("the leaderboard's scores of it (calculate_results_from_pred.py's rules, full sets):")
    assert printed[header + 1:header + 1 + len(scores)] == [f"  {label:<16} {v:.2f}" for label, v in scores.items()]


@pytest.mark.slow
def test_default_out_is_the_collators_path(tree):
    main(tree["args"])
    assert (tree["results"] / "m" / "all_full_preds_and_fast_scores_causal.json").is_file()


def _error(args) -> str:
    with pytest.raises(SystemExit) as stop:
        main(args)
    message = str(stop.value.code)
    assert message.startswith("classit: error: ") and "\n" not in message
    return message


def _error_without(path, args, tmp_path) -> str:
    """The one-line error with ``path`` moved away (put back afterwards)."""
    kept = tmp_path / "kept.json"
    shutil.move(path, kept)
    try:
        return _error(args)
    finally:
        shutil.move(kept, path)


def test_a_missing_task_stops_in_one_line_naming_it_and_its_command(tree, tmp_path):
    comps = tree["results"] / "m" / "main" / "zero_shot" / "causal" / "comps" / "comps" / "predictions.json"
    message = _error_without(comps, tree["args"], tmp_path)
    assert message.startswith("classit: error: comps: expected 91028 items in 4 subsets, found none")
    assert "`classit evaluate --model MODEL --tasks comps --out EVAL/m/zero_shot`" in message
    assert "--babylm" in message


def test_a_wrong_size_stops_naming_the_task_expected_and_found(tree, tmp_path):
    path = tree["results"] / "m" / "main" / "zero_shot" / "causal" / "blimp" / "blimp_filtered" / "predictions.json"
    original = path.read_text()
    data = json.loads(original)
    data["adjunct_island"]["predictions"].pop()
    path.write_text(json.dumps(data))
    try:
        message = _error(tree["args"])
    finally:
        path.write_text(original)
    assert "blimp: expected 928 items in adjunct_island, found 927" in message
    assert "--tasks blimp" in message


def test_the_track_decides_the_aoa_checkpoints_and_the_fast_revisions(tree):
    args = [a if a != "strict-small" else "strict" for a in tree["args"]]
    message = _error(args)
    assert "aoa: expected 8005 records for each of the 28 checkpoints chck_1M … chck_1000M, found 19" in message
    assert "classit evaluate --run RUN --tasks aoa" in message


@pytest.mark.slow
def test_a_missing_milestone_names_it_and_the_command(tree, tmp_path):
    path = tree["results"] / "m" / "chck_5M" / "zero_shot" / "causal" / "blimp" / "blimp_fast" / "predictions.json"
    message = _error_without(path, tree["args"], tmp_path)
    assert "blimp (fast, chck_5M): expected 200 items in each subset, found none" in message
    assert "classit submission --run RUN" in message


@pytest.mark.slow
@pytest.mark.full_data("the BabyLM evaluation sets (babylm-eval, babylm-eval-fast)")
def test_size_tables_are_the_real_sets_and_the_collators(real, tree):
    """What the synthetic tree cannot check: the registry's sizes are the real sets', and the real files hold every
    field the tree's synthetic sets stand in for (so the scorers run on them as on the tree)."""
    full, fast = real / "babylm-eval", real / "babylm-eval-fast"
    for root, ours in ((full, tree["data"]), (fast, tree["fast"])):
        for folder in ours.iterdir():
            for path in [p for p in folder.glob("*.jsonl") if (root / folder.name).is_dir()][:1]:
                fields = set(_lines(path)[0])
                assert all(fields <= set(r) for p in (root / folder.name).glob("*.jsonl") for r in _lines(p)), path
    assert set(pd.read_csv(tree["data"] / "reading" / "reading_data.csv", nrows=0).columns) <= \
        set(pd.read_csv(full / "reading" / "reading_data.csv", nrows=0).columns)
    for name, data in (("blimp", "blimp_filtered"), ("supplement", "supplement_filtered"), ("ewok", "ewok_filtered")):
        assert tasks.TASKS[name].sizes == {p.stem.lower(): len(_lines(p)) for p in (full / data).glob("*.jsonl")}
    assert tasks.ENTITY_TRACKING == _entity_tracking_sizes(full / "entity_tracking")
    assert tasks.ENTITY_TRACKING_FAST == _entity_tracking_sizes(fast / "entity_tracking_fast")
    assert tasks.COMPS == COMPS
    assert tasks.GLUE.sizes == {t: len(_lines(full / "glue_filtered" / f"{t}.valid.jsonl")) for t in GLUE}
    for name, data in (("blimp", "blimp_fast"), ("supplement", "supplement_fast"), ("ewok", "ewok_fast")):
        assert {len(_lines(p)) for p in (fast / data).glob("*.jsonl")} == {tasks.TASKS[name].fast_sizes}
    assert layout.COLLATOR_REVISIONS == {"strict-small": STRICT_SMALL, "strict": STRICT}


@pytest.mark.slow
def test_milestones_are_scored_on_the_fast_sets_in_the_pipeline_layout(tiny_model_dir, tree, data_root, tmp_path):
    """End to end: a run's milestones (the tiny model) scored on small fast sets (the tree's first items); the
    collator's fast scores of what is written agree with classit's own summary (WUG rho, reading gains: the data
    folder's sets)."""
    full = data_root / "babylm-eval"
    fast = tmp_path / "fast"
    for name, files, lines in (("blimp_fast", FAST_BLIMP, 20), ("supplement_fast", ["hypernym"], 10),
                               ("ewok_fast", ["agent-properties"], 10), ("entity_tracking_fast", ["regular"], 12)):
        for stem in files:
            (fast / name).mkdir(parents=True, exist_ok=True)
            text = (tree["fast"] / name / f"{stem}.jsonl").read_text().splitlines()[:lines]
            (fast / name / f"{stem}.jsonl").write_text("\n".join(text) + "\n")
    rng = random.Random(1)
    write_jsonl(fast / "wug_past_tense" / "wug_past_tense.jsonl", [
        {"sentences": f"They blick every day. Yesterday they {w}.\tThey blick every day. Yesterday they {w[:-2]}.",
         "ratio": rng.random()} for w in ["blicked", "glorped", "sporked", "tweeded", "flanked", "drimmed"]])
    run = tmp_path / "run"
    for name in ("chck_1M", "chck_2M"):
        (run / "milestones").mkdir(parents=True, exist_ok=True)
        (run / "milestones" / name).symlink_to(tiny_model_dir)
    results = tmp_path / "results"
    scored = submission.score_milestones(run, results, "m", str(fast), str(full), batch_size=32, device="cpu")
    assert scored == ["chck_1M", "chck_2M"]
    causal = results / "m" / "chck_2M" / "zero_shot" / "causal"
    for task in tasks.FAST.values():
        assert (causal / task.results_folder(fast=True) / "predictions.json").is_file()
    blimp = read_json(causal / "blimp" / "blimp_fast" / "predictions.json")
    assert list(blimp) == FAST_BLIMP and all(len(v["predictions"]) == 20 for v in blimp.values())
    summary = read_json(results / "m" / "chck_2M" / "classit" / "full" / "summary.json")
    wug = tasks.TASKS["wug"].scorer(read_json(causal / "wug_adj" / "wug_adj_nominalization" / "predictions.json"),
                                    full / "wug_adj_nominalization")
    assert wug["wug_adj"] == pytest.approx(summary["wug"]["rho"] / 100)
    reading = tasks.TASKS["reading"].scorer(read_json(causal / "reading" / "predictions.json"), full / "reading")
    assert reading == {"spr": pytest.approx(summary["reading"]["self_paced"] / 100),
                       "rt": pytest.approx(summary["reading"]["eye_tracking"] / 100)}
    assert submission.score_milestones(run, results, "m", str(fast), str(full), device="cpu") == []  # kept


@pytest.mark.slow
def test_the_documented_route_evaluate_aoa_then_submission(tree, tiny_model_dir, data_root, tmp_path, capsys):
    """End to end through the CLI: ``classit evaluate --run RUN --tasks aoa --out
    RESULTS/tiny/main/zero_shot/causal`` over a run with the 19 strict-small milestones (the tiny model, its output
    layer scaled down with words seen) and a CDI word file of the official 8,005 contexts → the official
    ``AoA_word/surprisal.json`` → ``classit submission``: the file holds what evaluate wrote and the AoA line it
    prints is the score evaluate computed."""
    words = layout.babylm_milestones("strict-small")
    run = milestone_run(tmp_path / "run", tiny_model_dir,
                        {w: 1 + 79 / (1 + math.exp(4 * (math.log10(w) - 7))) for w in words})  # ≈ 79 … 2.4
    data = tmp_path / "data"
    data.mkdir()
    for path in tree["data"].iterdir():
        if path.name != "aoa":
            (data / path.name).symlink_to(path)
    aoa_data_of_size(data, sample_sentences(data_root), tasks.AOA_SIZE)
    results = tmp_path / "results"
    shutil.copytree(tree["results"] / "m", results / "tiny", symlinks=True, ignore=shutil.ignore_patterns("AoA_word"))
    causal = layout.causal_dir(results / "tiny" / layout.FINAL_REVISION)

    main(["evaluate", "--run", str(run), "--tasks", "aoa", "--out", str(causal), "--data_dir", str(data),
          "--batch_size", "512", "--device", "cpu"])
    summary = read_json(layout.aoa_dir(causal) / "aoa_summary.json")
    assert summary["official_collator"] == "accepted (strict-small track)"
    assert summary["n_words"] >= 3 and summary["curve_fitness"] != 0  # fitted words: a real score
    written = read_json(layout.surprisal_file(layout.aoa_dir(causal)))

    capsys.readouterr()
    main([*tree["args"][:2], str(results), "--model", "tiny", *tree["args"][5:-1], str(data)])
    output = capsys.readouterr().out
    got = read_json(results / "tiny" / layout.SUBMISSION)
    assert got["aoa"] == written
    assert f"  {'AoA':<16} {summary['curve_fitness']:.2f}" in output.splitlines()
    cdi = pd.read_csv(data / "aoa" / "cdi_human.csv")
    assert curve_fitness(got["aoa"]["results"], cdi)["curve_fitness"] == summary["curve_fitness"]
