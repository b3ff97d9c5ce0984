"""The BabyLM evaluation tasks, one typed spec each: what kind of score it is, where its data is (full and fast sets),
how its items are decoded and aggregated, what the BabyLM 2025 pipeline calls it, how many items its official sets
hold and how the leaderboard scores its predictions. Adding a task is one entry in :data:`TASKS`; the (Super)GLUE fine-tuning tasks
are entries of :data:`classit.eval.glue.TASKS`, scored here together as :data:`GLUE`."""

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Literal

from scipy.stats import spearmanr

from classit.eval import glue
from classit.files import read_csv, read_jsonl


@dataclass
class Item:
    """One evaluation item: its options (option 0 is correct), their continuations and its subsets."""

    uid: str
    texts: list[str]
    continuations: list[str]
    source: str
    groups: dict[str, str] = field(default_factory=dict)
    ratio: float | None = None


Sizes = dict[str, int] | int  # items per subset (lower-cased subset names), or the size of every subset
Decoder = Callable[[Path, dict, str, bool], Item]  # (file, record, "file:line", full_sentence) → item
Scorer = Callable[[dict, Path], dict]  # (predictions.json's subsets, the data folder) → score per subset
Kind = Literal["choice", "rho", "reading", "aoa"]  # what a task's summary holds: accuracy of the chosen options
# (macro, ties, by_*), Spearman's rho of option 0's probability (x100), the reading gains, AoA's curve fitness


@dataclass(frozen=True)
class Task:
    """One evaluation task."""

    name: str  # classit's name: --tasks, summary.json, predictions/NAME.jsonl
    kind: Kind  # what its summary holds, and so how it is shown, compared, collected and written out
    official: str  # its key in the submission file (also WUG's subset name)
    label: str  # what the leaderboard's calculate_results_from_pred.py prints
    group: str  # its folder below <revision>/zero_shot/causal in the pipeline's results ("" for reading, AoA)
    full: str  # its data folder in the full sets
    fast: str | None  # its data folder in the fast sets (WUG, reading: the full set's), None: no fast set
    sizes: Sizes  # the official full set's items (AoA: records per checkpoint)
    fast_sizes: Sizes | None  # the official fast set's items
    scorer: Scorer | None  # the leaderboard's score of its predictions (None: AoA, scored from the CDI table)
    decode: Decoder | None = None  # a JSONL record as an item (None: read by its own module)
    aggregate: Literal["subsets", "files"] = "subsets"  # a choice task's macro accuracy: over subsets, or over
    # files of subsets
    groups: tuple[str, ...] = ()  # item-level groups reported besides the subsets
    breakdown: str | None = None  # the summary's breakdown shown in tables and logged next to the macro score
    names_text: bool = False  # the pipeline's prediction names the whole chosen text, not its continuation
    data_file: str | None = None  # the one file read in the data folder (reading, AoA)
    options: int = 2  # options per item of a choice task (minimal pairs: two)

    @property
    def chance(self) -> float:
        """A guess's score on its scale: 100 / options (choice tasks), 0 for correlations (WUG's rho, reading's
        gains, AoA's fit)."""
        return 100 / self.options if self.kind == "choice" else 0.0

    @property
    def folders(self) -> tuple[str, ...]:
        """Its data folder names, the full set's first."""
        return tuple(dict.fromkeys(f for f in (self.full, self.fast) if f))

    def find(self, data_dir: str | Path) -> Path | None:
        """Its folder (or data file) under ``data_dir`` (full or fast set), or None when absent."""
        for name in self.folders:
            path = Path(data_dir) / name
            if self.data_file and (path / self.data_file).is_file():
                return path / self.data_file
            if not self.data_file and path.is_dir():
                return path
        return None

    def wanted(self) -> str:
        """What :meth:`find` looks for, for messages."""
        return " or ".join(f"{name}/{self.data_file}" if self.data_file else name for name in self.folders)

    def results_folder(self, fast: bool) -> str:
        """Its predictions' folder below ``zero_shot/causal`` in the pipeline's results."""
        return str(PurePosixPath(self.group, self.fast if fast else self.full))


# --- decoding: a JSONL record as an item ---

def _minimal_pair(path: Path, r: dict, source: str, full_sentence: bool) -> Item:
    good, bad = r["sentence_good"], r["sentence_bad"]
    return Item(path.stem, [good, bad], [good, bad], source)


def _blimp(path: Path, r: dict, source: str, full_sentence: bool) -> Item:
    good, bad = r["sentence_good"], r["sentence_bad"]
    groups = {"field": r["field"].replace("syntax_semantics", "syntax/semantics"),
              "linguistics_term": r["linguistics_term"]}
    return Item(r["UID"], [good, bad], [good, bad], source, groups)


def _ewok(path: Path, r: dict, source: str, full_sentence: bool) -> Item:
    texts = [f"{r['Context1']} {r['Target1']}", f"{r['Context1']} {r['Target2']}"]
    conts = texts if full_sentence else [" " + r["Target1"], " " + r["Target2"]]
    groups = {"context_type": r["ContextType"], "context_contrast": r["ContextDiff"], "target_contrast": r["TargetDiff"]}
    return Item(r["Domain"], texts, conts, source, groups)


def _entity_tracking(path: Path, r: dict, source: str, full_sentence: bool) -> Item:
    options = r["options"]
    return Item(f"{path.stem}_{r['numops']}_ops", [r["input_prefix"] + o for o in options], list(options), source)


# COMPS subset → its file, as the pipeline's decode_comps names them (any other file: wugs_dist_in_between).
COMPS_FILES = {"base": "comps_base", "wugs_dist_before": "comps_wugs_dist-before",
               "wugs_dist_in_between": "comps_wugs_dist-in-between", "wugs": "comps_wugs"}
COMPS_SUBSETS = {stem: subset for subset, stem in COMPS_FILES.items()}


def _comps(path: Path, r: dict, source: str, full_sentence: bool) -> Item:
    """The property phrase scored after the acceptable and the unacceptable concept."""
    phrase = r["property_phrase"]
    texts = [f"{r['prefix_acceptable']} {phrase}", f"{r['prefix_unacceptable']} {phrase}"]
    return Item(COMPS_SUBSETS.get(path.stem, "wugs_dist_in_between"), texts, [phrase, phrase], source)


def _wug(uid: str) -> Decoder:
    def decode(path: Path, r: dict, source: str, full_sentence: bool) -> Item:
        texts = r["sentences"].split("\t")  # the forms, the first the one whose share of human answers is the ratio
        if len(texts) < 2:
            raise ValueError(f"{source}: 'sentences' must hold two or more texts separated by a TAB")
        return Item(uid, texts, texts, source, ratio=float(r["ratio"]))
    return decode


# --- the leaderboard's scorers (calculate_results_from_pred.py and the collator's fast scores) ---

def _accuracy(predictions: list[dict], targets: list) -> float:
    """The share of predictions equal to their targets (strings compared stripped), over the pairs zipped."""
    same = [(p["pred"].strip() if isinstance(p["pred"], str) else p["pred"]) == (t.strip() if isinstance(t, str) else t)
            for p, t in zip(predictions, targets)]
    return sum(same) / len(same)


def _targets(field_name: str) -> Scorer:
    def score(results: dict, folder: Path) -> dict:
        return {key: _accuracy(block["predictions"], [r[field_name] for r in read_jsonl(folder / f"{key}.jsonl")])
                for key, block in results.items()}
    return score


def _score_entity_tracking(results: dict, folder: Path) -> dict:
    targets = defaultdict(list)
    for path in sorted(folder.glob("*.jsonl")):
        for r in read_jsonl(path):
            targets[f"{path.stem}_{r['numops']}_ops"].append(r["options"][0])
    return {key: _accuracy(block["predictions"], targets[key]) for key, block in results.items()}


def _score_comps(results: dict, folder: Path) -> dict:
    return {key: _accuracy(block["predictions"], [f"{r['prefix_acceptable']} {r['property_phrase']}" for r in
                                                  read_jsonl(folder / f"{COMPS_FILES[key]}.jsonl")])
            for key, block in results.items()}


def _score_glue(results: dict, folder: Path) -> dict:
    return {task: _accuracy(block["predictions"], [r["label"] for r in read_jsonl(folder / f"{task}.valid.jsonl")])
            for task, block in results.items()}


def _score_wug(results: dict, folder: Path) -> dict:
    ratios = [r["ratio"] for r in read_jsonl(folder / f"{folder.name}.jsonl")]
    scores = {}
    for key, block in results.items():
        pairs = list(zip((p["prob"] for p in block["predictions"]), ratios))
        scores[key] = float(spearmanr([p for p, _ in pairs], [r for _, r in pairs])[0])
    return scores


def _score_reading(results: dict, folder: Path) -> dict:
    from classit.eval.reading import EYE_TRACKING, PREDICTORS, relative_gain  # pandas and statsmodels: load late

    df = read_csv(folder / "reading_data.csv", dtype={"item": str})
    df["pred"] = [p["pred"] for p in results["reading"]["predictions"]]
    df["prev_pred"] = [p["prev_pred"] for p in results["reading"]["predictions"]]
    rt = sum(relative_gain(df, m, PREDICTORS, "pred") for m in EYE_TRACKING) / len(EYE_TRACKING)
    spr = relative_gain(df, "self_paced_reading_time", PREDICTORS + ["prev_length", "prev_pred"], "pred")
    return {"spr": spr, "rt": rt}  # fractions, averaged as fractions: the collator's bits


# --- the official sets' sizes (the collator's _check_size) ---

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
AOA_SIZE = 8005  # records of each checkpoint the official collator (collate_preds.py) expects
COMPS = {"base": 49340, "wugs_dist_before": 13896, "wugs_dist_in_between": 13896, "wugs": 13896}


# --- the registry: classit evaluate's tasks, in the submission file's order (AoA scores a run, not a model) ---

TASKS = {task.name: task for task in (
    Task("blimp", "choice", "blimp", "BLIMP", "blimp", "blimp_filtered", "blimp_fast", BLIMP, 200,
         _targets("sentence_good"), _blimp, groups=("field", "linguistics_term"), breakdown="by_field"),
    Task("supplement", "choice", "blimp_supplement", "SUPPLEMENT", "blimp", "supplement_filtered", "supplement_fast",
         SUPPLEMENT, 50, _targets("sentence_good"), _minimal_pair, breakdown="by_uid"),
    Task("ewok", "choice", "ewok", "EWOK", "ewok", "ewok_filtered", "ewok_fast", EWOK, 100, _targets("Target1"),
         _ewok, groups=("context_type", "context_contrast", "target_contrast"), breakdown="by_uid"),
    Task("entity_tracking", "choice", "entity_tracking", "ENTITY TRACKING", "entity_tracking", "entity_tracking",
         "entity_tracking_fast", ENTITY_TRACKING, ENTITY_TRACKING_FAST, _score_entity_tracking, _entity_tracking,
         aggregate="files", breakdown="by_file", options=5),
    Task("wug", "rho", "wug_adj", "WUG ADJ", "wug_adj", "wug_adj_nominalization", "wug_adj_nominalization", 200, 200,
         _score_wug, _wug("wug_adj")),
    Task("wug_past", "rho", "wug_past", "WUG PAST", "wug_past", "wug_past_tense", "wug_past_tense", 50, 50,
         _score_wug, _wug("wug_past")),
    Task("comps", "choice", "comps", "COMPS", "comps", "comps", None, COMPS, None, _score_comps, _comps,
         breakdown="by_uid", names_text=True),
    Task("reading", "reading", "reading", "READING", "", "reading", "reading", 1726, 1726, _score_reading,
         data_file="reading_data.csv"),
    Task("aoa", "aoa", "aoa", "AoA", "", "aoa", None, AOA_SIZE, None, None, data_file="cdi_childes.json"),
)}
RHO = tuple(name for name, task in TASKS.items() if task.kind == "rho")  # the tasks scored as Spearman's rho
FAST = {name: task for name, task in TASKS.items() if task.fast}  # the tasks of the fast sets

# The (Super)GLUE fine-tuning tasks as the leaderboard scores them: their validation sets' predictions, merged.
GLUE = Task("glue", "choice", "glue", "GLUE", "", "glue_filtered", None,
            {name: spec.size for name, spec in sorted(glue.TASKS.items())}, None, _score_glue)


def by_folder(name: str) -> Task | None:
    """The task whose data folder (full or fast set) is called ``name``, or None."""
    return next((task for task in TASKS.values() if name in task.folders), None)
