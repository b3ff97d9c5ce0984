"""``classit submission``: the BabyLM 2025 submission file ``all_full_preds_and_fast_scores_causal.json``, built
from a results tree in the pipeline's layout as its ``evaluation_pipeline/collate_preds.py --fast`` builds it::

    RESULTS/<model>/main/zero_shot/causal/<task>/<dataset>/predictions.json   full sets (classit report --babylm)
    RESULTS/<model>/main/zero_shot/causal/AoA_word/surprisal.json             classit evaluate --run RUN --tasks aoa
    RESULTS/<model>/main/finetune/<task>/predictions.json                     classit finetune, report --babylm
    RESULTS/<model>/chck_{N}M/zero_shot/causal/...                            fast sets of each milestone (--run)

The file holds the full-set predictions as they are (``blimp``, ``blimp_supplement``, ``ewok``, ``entity_tracking``,
``wug_adj``, ``wug_past``, ``comps``, ``reading``, ``aoa``, ``glue`` with the seven fine-tuning tasks merged) and
``fast_eval_results``: per fast task, one score dict per milestone of the track, in the collator's order
(accuracy per subset as a fraction, Spearman's rho for WUG, ``spr``/``rt`` relative R² gains for reading).
Every file is checked against the collator's sizes; unlike it, a task split in subsets must have all of them.
"""

from collections import defaultdict
from pathlib import Path
from typing import Literal

from scipy.stats import spearmanr

from classit import layout
from classit.eval.aoa import (
    AOA_SIZE,
    RECONSTRUCTED_NOTE,
    curve_fitness,
    default_cdi,
    milestones,
)
from classit.eval.pipeline import write_minimal_pairs, write_reading
from classit.eval.reading import EYE_TRACKING, PREDICTORS, relative_gain
from classit.files import read_csv, read_json, read_jsonl, write_json

BLIMP = {
    "adjunct_island": 928, "anaphor_gender_agreement": 971, "anaphor_number_agreement": 931,
    "animate_subject_passive": 895, "animate_subject_trans": 923, "causative": 818, "complex_np_island": 846,
    "coordinate_structure_constraint_complex_left_branch": 906,
    "coordinate_structure_constraint_object_extraction": 949, "determiner_noun_agreement_1": 929,
    "determiner_noun_agreement_2": 931, "determiner_noun_agreement_irregular_1": 681,
    "determiner_noun_agreement_irregular_2": 820, "determiner_noun_agreement_with_adj_2": 941,
    "determiner_noun_agreement_with_adj_irregular_1": 718, "determiner_noun_agreement_with_adj_irregular_2": 840,
    "determiner_noun_agreement_with_adjective_1": 933, "distractor_agreement_relational_noun": 788,
    "distractor_agreement_relative_clause": 871, "drop_argument": 920, "ellipsis_n_bar_1": 802,
    "ellipsis_n_bar_2": 828, "existential_there_object_raising": 812, "existential_there_quantifiers_1": 930,
    "existential_there_quantifiers_2": 911, "existential_there_subject_raising": 924,
    "expletive_it_object_raising": 759, "inchoative": 855, "intransitive": 868,
    "irregular_past_participle_adjectives": 961, "irregular_past_participle_verbs": 942,
    "irregular_plural_subject_verb_agreement_1": 804, "irregular_plural_subject_verb_agreement_2": 892,
    "left_branch_island_echo_question": 947, "left_branch_island_simple_question": 951,
    "matrix_question_npi_licensor_present": 929, "npi_present_1": 909, "npi_present_2": 914,
    "only_npi_licensor_present": 882, "only_npi_scope": 837, "passive_1": 840, "passive_2": 903,
    "principle_a_c_command": 946, "principle_a_case_1": 912, "principle_a_case_2": 915, "principle_a_domain_1": 914,
    "principle_a_domain_2": 915, "principle_a_domain_3": 941, "principle_a_reconstruction": 967,
    "regular_plural_subject_verb_agreement_1": 890, "regular_plural_subject_verb_agreement_2": 945,
    "sentential_negation_npi_licensor_present": 919, "sentential_negation_npi_scope": 871,
    "sentential_subject_island": 961, "superlative_quantifiers_1": 979, "superlative_quantifiers_2": 986,
    "tough_vs_raising_1": 948, "tough_vs_raising_2": 920, "transitive": 868, "wh_island": 960,
    "wh_questions_object_gap": 859, "wh_questions_subject_gap": 898, "wh_questions_subject_gap_long_distance": 857,
    "wh_vs_that_no_gap": 861, "wh_vs_that_no_gap_long_distance": 875, "wh_vs_that_with_gap": 919,
    "wh_vs_that_with_gap_long_distance": 910,
}
SUPPLEMENT = {"hypernym": 842, "qa_congruence_easy": 64, "qa_congruence_tricky": 165, "subject_aux_inversion": 3867,
              "turn_taking": 280}
EWOK = {"agent-properties": 2210, "social-relations": 1548, "physical-relations": 818, "material-dynamics": 770,
        "physical-interactions": 556, "spatial-relations": 490, "social-properties": 328,
        "quantitative-properties": 314, "social-interactions": 294, "material-properties": 170,
        "physical-dynamics": 120}
ENTITY_TRACKING_FAST = {"regular_0_ops": 606, "regular_1_ops": 607, "regular_2_ops": 606, "regular_3_ops": 606,
                        "regular_4_ops": 568, "regular_5_ops": 159}
ENTITY_TRACKING = {**ENTITY_TRACKING_FAST, "ambiref_0_ops": 607, "ambiref_1_ops": 607, "ambiref_2_ops": 604,
                   "ambiref_3_ops": 604, "ambiref_4_ops": 615, "ambiref_5_ops": 187, "move_contents_0_ops": 605,
                   "move_contents_1_ops": 606, "move_contents_2_ops": 605, "move_contents_3_ops": 606,
                   "move_contents_4_ops": 529, "move_contents_5_ops": 156}
COMPS = {"base": 49340, "wugs_dist_before": 13896, "wugs_dist_in_between": 13896, "wugs": 13896}
GLUE = {"boolq": 1635, "mnli": 4908, "mrpc": 204, "multirc": 2424, "qqp": 20215, "rte": 139, "wsc": 52}
# key in the file: (classit task, full-set folder, items per subset, fast-set folder, items per subset); an int is
# the size of every subset. Folders are below <revision>/zero_shot/causal.
ZERO_SHOT = {
    "blimp": ("blimp", "blimp/blimp_filtered", BLIMP, "blimp/blimp_fast", 200),
    "blimp_supplement": ("supplement", "blimp/supplement_filtered", SUPPLEMENT, "blimp/supplement_fast", 50),
    "ewok": ("ewok", "ewok/ewok_filtered", EWOK, "ewok/ewok_fast", 100),
    "entity_tracking": ("entity_tracking", "entity_tracking/entity_tracking", ENTITY_TRACKING,
                        "entity_tracking/entity_tracking_fast", ENTITY_TRACKING_FAST),
    "wug_adj": ("wug", "wug_adj/wug_adj_nominalization", 200, "wug_adj/wug_adj_nominalization", 200),
    "wug_past": ("wug_past", "wug_past/wug_past_tense", 50, "wug_past/wug_past_tense", 50),
    "comps": ("comps", "comps/comps", COMPS, None, None),
    "reading": ("reading", "reading", 1726, "reading", 1726),
}
FAST = {key: spec for key, spec in ZERO_SHOT.items() if spec[3]}


def _amount(expected: dict | int) -> str:
    if isinstance(expected, dict):
        return f"{sum(expected.values())} items in {len(expected)} subsets"
    return f"{expected} items in each subset"


def load_checked(path: Path, name: str, expected: dict | int, hint: str) -> dict:
    """A ``predictions.json`` (``{subset: {"predictions": [...]}}``) checked as the collator's ``_check_size``
    (subset names lower-cased) and for missing subsets; any fault stops in one line."""
    if not path.is_file():
        raise FileNotFoundError(f"{name}: expected {_amount(expected)}, found none (no {path}); produce it with {hint}")
    results = read_json(path)
    found = {key.lower() for key in results}
    if isinstance(expected, dict) and found != set(expected):
        missing, unknown = sorted(set(expected) - found), sorted(found - set(expected))
        raise ValueError(f"{name}: expected {_amount(expected)}, found {len(found)} subsets in {path} (missing "
                         f"{', '.join(missing[:3]) or '-'}; unknown {', '.join(unknown[:3]) or '-'}); produce it with {hint}")
    if not results:
        raise ValueError(f"{name}: expected {_amount(expected)}, found no subsets in {path}; produce it with {hint}")
    for key, block in results.items():
        size = expected[key.lower()] if isinstance(expected, dict) else expected
        if len(block["predictions"]) != size:
            raise ValueError(f"{name}: expected {size} items in {key}, found {len(block['predictions'])} in {path}; "
                             f"produce it with {hint}")
    return results


def load_aoa(path: Path, revisions: list[str], hint: str) -> dict:
    """``surprisal.json`` checked as the collator's ``_check_size_aoa``: the track's checkpoints, AOA_SIZE each."""
    expected = f"{AOA_SIZE} records for each of the {len(revisions)} checkpoints {revisions[0]} … {revisions[-1]}"
    if not path.is_file():
        raise FileNotFoundError(f"aoa: expected {expected}, found none (no {path}); produce it with {hint}")
    aoa = read_json(path)
    counts = defaultdict(int)
    for record in aoa["results"]:
        counts[record["step"]] += 1
    if set(counts) != set(revisions) or any(counts[r] != AOA_SIZE for r in revisions):
        found = ", ".join(f"{n} for {r}" for r, n in list(counts.items())[:3]) + (", …" if len(counts) > 3 else "")
        raise ValueError(f"aoa: expected {expected}, found {len(counts)} checkpoints ({found or 'no records'}) in "
                         f"{path}; produce it with {hint}")
    return aoa


def _accuracy(predictions: list[dict], targets: list) -> float:
    """The share of predictions equal to their targets (strings compared stripped), over the pairs zipped."""
    same = [(p["pred"].strip() if isinstance(p["pred"], str) else p["pred"]) == (t.strip() if isinstance(t, str) else t)
            for p, t in zip(predictions, targets)]
    return sum(same) / len(same)


def _targets(field: str):
    def score(results: dict, folder: Path) -> dict:
        return {key: _accuracy(block["predictions"], [r[field] for r in read_jsonl(folder / f"{key}.jsonl")])
                for key, block in results.items()}
    return score


def _entity_tracking(results: dict, folder: Path) -> dict:
    targets = defaultdict(list)
    for path in sorted(folder.glob("*.jsonl")):
        for r in read_jsonl(path):
            targets[f"{path.stem}_{r['numops']}_ops"].append(r["options"][0])
    return {key: _accuracy(block["predictions"], targets[key]) for key, block in results.items()}


COMPS_FILES = {"base": "comps_base", "wugs_dist_before": "comps_wugs_dist-before",
               "wugs_dist_in_between": "comps_wugs_dist-in-between", "wugs": "comps_wugs"}


def _comps(results: dict, folder: Path) -> dict:
    return {key: _accuracy(block["predictions"], [f"{r['prefix_acceptable']} {r['property_phrase']}" for r in
                                                  read_jsonl(folder / f"{COMPS_FILES[key]}.jsonl")])
            for key, block in results.items()}


def _glue(results: dict, folder: Path) -> dict:
    return {task: _accuracy(block["predictions"], [r["label"] for r in read_jsonl(folder / f"{task}.valid.jsonl")])
            for task, block in results.items()}


def _wug(results: dict, folder: Path) -> dict:
    ratios = [r["ratio"] for r in read_jsonl(folder / f"{folder.name}.jsonl")]
    scores = {}
    for key, block in results.items():
        pairs = list(zip((p["prob"] for p in block["predictions"]), ratios))
        scores[key] = float(spearmanr([p for p, _ in pairs], [r for _, r in pairs])[0])
    return scores


def _reading(results: dict, folder: Path) -> dict:
    df = read_csv(folder / "reading_data.csv", dtype={"item": str})
    df["pred"] = [p["pred"] for p in results["reading"]["predictions"]]
    df["prev_pred"] = [p["prev_pred"] for p in results["reading"]["predictions"]]
    rt = sum(relative_gain(df, m, PREDICTORS, "pred") for m in EYE_TRACKING) / len(EYE_TRACKING)
    spr = relative_gain(df, "self_paced_reading_time", PREDICTORS + ["prev_length", "prev_pred"], "pred")
    return {"spr": spr, "rt": rt}  # fractions, averaged as fractions: the collator's bits


SCORERS = {"blimp": _targets("sentence_good"), "blimp_supplement": _targets("sentence_good"),
           "ewok": _targets("Target1"), "entity_tracking": _entity_tracking, "wug_adj": _wug, "wug_past": _wug,
           "reading": _reading}


LEADERBOARD = {  # key: (what calculate_results_from_pred.py prints, scorer, folder of the full sets)
    "blimp": ("BLIMP", _targets("sentence_good"), "blimp_filtered"),
    "blimp_supplement": ("SUPPLEMENT", _targets("sentence_good"), "supplement_filtered"),
    "ewok": ("EWOK", _targets("Target1"), "ewok_filtered"),
    "entity_tracking": ("ENTITY TRACKING", _entity_tracking, "entity_tracking"),
    "wug_adj": ("WUG ADJ", _wug, "wug_adj_nominalization"),
    "wug_past": ("WUG PAST", _wug, "wug_past_tense"),
    "comps": ("COMPS", _comps, "comps"),
    "reading": ("READING", _reading, "reading"),
    "glue": ("GLUE", _glue, "glue_filtered"),
}


def leaderboard(submission: dict, full: Path, cdi_human: Path | None = None) -> dict[str, float | str]:
    """The full-set scores the pipeline's ``calculate_results_from_pred.py`` computes from the submission file:
    the mean over subsets of accuracy (%), Spearman's rho x100 for WUG, the reading gains (%), GLUE's mean
    accuracy (%) and the AoA curve fitness r; a task whose data is absent gets the reason instead."""
    scores = {}
    for key, (label, scorer, folder) in LEADERBOARD.items():
        if not (full / folder).is_dir():
            scores[label] = f"no data in {full / folder}"
            continue
        values = scorer(submission[key], full / folder)
        if key == "reading":
            scores["READING (SPR)"], scores["READING (ET)"] = values["spr"] * 100, values["rt"] * 100
        else:
            scores[label] = sum(v * 100 for v in values.values()) / len(values)
    cdi_human = cdi_human or default_cdi(full)
    scores["AoA"] = (curve_fitness(submission["aoa"]["results"], read_csv(cdi_human))["curve_fitness"]
                     if cdi_human.is_file() else f"no CDI table {cdi_human}")
    return scores


def _data_roots(fast_data: str | None, data_dir: str | None) -> tuple[Path, Path]:
    from classit.data import store

    root = None if fast_data and data_dir else store.data_dir()
    return (Path(fast_data) if fast_data else layout.fast_eval_dir(root),
            Path(data_dir) if data_dir else layout.full_eval_dir(root))


def data_folder(name: str, fast: Path, full: Path) -> Path:
    """A fast set's data folder: in the fast sets, else (WUG, reading: the same data) in the full sets."""
    for root in (fast, full):
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f"{fast / name}: no such fast evaluation data (nor {full / name})")


def fast_scores(model_dir: Path, revisions: list[str], fast: Path, full: Path, hint: str) -> dict:
    """``fast_eval_results``: per fast task, the scores of each revision's fast predictions, in revision order."""
    scores = {key: [] for key in FAST}
    for revision in revisions:
        causal = layout.causal_dir(model_dir / revision)
        for key, (_, _, _, folder, sizes) in FAST.items():
            results = load_checked(causal / folder / "predictions.json", f"{key} (fast, {revision})", sizes, hint)
            scores[key].append(SCORERS[key](results, data_folder(Path(folder).name, fast, full)))
    return scores


def collate(results: str | Path, model: str, track: str = "strict", fast_data: str | None = None,
            data_dir: str | None = None) -> dict:
    """The submission's contents, in the collator's key order, every file checked first."""
    model_dir = Path(results) / model
    main, revisions = model_dir / layout.FINAL_REVISION, layout.COLLATOR_REVISIONS[track]
    causal = layout.causal_dir(main)
    report = f"`classit report EVAL/{model} --out REPORT --babylm {results}`"
    submission = {}
    for key, (task, folder, sizes, _, _) in ZERO_SHOT.items():
        hint = f"`classit evaluate --model MODEL --tasks {task} --out EVAL/{model}/zero_shot`, then {report}"
        submission[key] = load_checked(causal / folder / "predictions.json", key, sizes, hint)
    aoa = layout.surprisal_file(layout.aoa_dir(causal))
    submission["aoa"] = load_aoa(aoa, revisions, f"`classit evaluate --run RUN --tasks aoa --out {causal}` over a "
                                                 f"run with the {track} milestones")
    submission["glue"] = {}
    for task, size in GLUE.items():
        hint = f"`classit finetune --model MODEL --tasks {task} --out EVAL/{model}/finetune`, then {report}"
        submission["glue"] |= load_checked(layout.finetune_dir(main) / task / "predictions.json", task, size, hint)
    fast, full = _data_roots(fast_data, data_dir)
    hint = f"`classit submission --run RUN --results {results} --model {model}` (the fast sets of each milestone)"
    submission["fast_eval_results"] = fast_scores(model_dir, revisions, fast, full, hint)
    return submission


def score_milestones(run: str | Path, results: str | Path, model: str, fast_data: str | None = None,
                     data_dir: str | None = None, batch_size: int = 64, device: str = "auto") -> list[str]:
    """Score each ``RUN/milestones/chck_{N}M`` on the fast sets with ``classit evaluate`` (its outputs in
    ``RESULTS/<model>/<revision>/classit/``) and write them in the pipeline's layout below
    ``RESULTS/<model>/<revision>/zero_shot/causal``; a revision with all its fast predictions is kept as it is.
    Returns the revisions scored."""
    from classit.eval.evaluate import evaluate

    fast, full = _data_roots(fast_data, data_dir)
    roots = defaultdict(list)  # data root → the classit tasks read from it
    for task, _, _, folder, _ in FAST.values():
        roots[data_folder(Path(folder).name, fast, full).parent].append(task)
    scored = []
    for revision, _, path in milestones(Path(run)):
        causal = layout.causal_dir(Path(results) / model / revision)
        if all((causal / spec[3] / "predictions.json").is_file() for spec in FAST.values()):
            print(f"{revision}: fast predictions already in {causal}, kept")
            continue
        for root, tasks in roots.items():
            out = Path(results) / model / revision / "classit" / ("fast" if root == fast else "full")
            summary = evaluate(model=str(path), data_dir=str(root), tasks=",".join(tasks), out=str(out),
                               batch_size=batch_size, device=device)
            for task in tasks:
                if task == "reading":
                    write_reading(out, summary, causal)
                else:
                    write_minimal_pairs(out, summary, task, causal)
        scored.append(revision)
    return scored


def submission_command(*, results: str, model: str, out: str | None = None,
                       track: Literal["strict", "strict-small"] = "strict", run: str | None = None,
                       fast_data: str | None = None, data_dir: str | None = None, cdi_human: str | None = None,
                       batch_size: int = 64, device: str = "auto") -> str:
    """Write the BabyLM 2025 submission file from a results tree in the official pipeline's layout.

    The tree is what ``classit report --babylm`` writes; the file is built as the pipeline's ``collate_preds.py
    --fast`` does; a missing or wrongly sized task stops in one line.

    Args:
        results: the results tree (``RESULTS/<model>/<revision>/...``).
        model: the model's folder in it.
        out: the file to write; default ``RESULTS/<model>/all_full_preds_and_fast_scores_causal.json``.
        track: ``strict`` (milestones chck_1M … chck_1000M) or ``strict-small`` (… chck_100M).
        run: first score the fast sets on every milestone of this run folder (``milestones/chck_{N}M``).
        fast_data: the fast sets (``blimp_fast``, ...); default ``$CLASSIT_DATA_DIR/babylm-eval-fast``.
        data_dir: the full sets, read for WUG and reading when ``fast_data`` lacks them; default
            ``$CLASSIT_DATA_DIR/babylm-eval``.
        cdi_human: the children's CDI table for the AoA score; default ``DATA_DIR/aoa/cdi_human.csv``, else
            ``aoa/cdi_human_reconstructed.csv`` (not the official ages).
        batch_size: texts per forward pass (``--run``).
        device: ``auto``, ``cpu``, ``cuda``... (``--run``).
    """
    if run:
        score_milestones(run, results, model, fast_data, data_dir, batch_size, device)
    submission = collate(results, model, track, fast_data, data_dir)
    path = Path(out) if out else Path(results) / model / layout.SUBMISSION
    write_json(submission, path)
    print(f"submission: {path} ({track} track, {len(layout.COLLATOR_REVISIONS[track])} milestones)")
    print("the leaderboard's scores of it (calculate_results_from_pred.py's rules, full sets):")
    full = _data_roots(fast_data, data_dir)[1]
    cdi = Path(cdi_human) if cdi_human else default_cdi(full)
    for label, score in leaderboard(submission, full, cdi).items():
        print(f"  {label:<16} {score:.2f}" if isinstance(score, float) else f"  {label:<16} – ({score})")
    if "reconstructed" in cdi.name:
        print(f"  AoA: {RECONSTRUCTED_NOTE}")
    return str(path)
