"""A study's results in the BabyLM pipeline's layout (classit/study/official_layout.py): a folder per model and
revision, the reading and AoA files where the collation script looks for them."""

from pathlib import Path

from classit import layout
from classit.study.collect import FINAL, Result
from classit.study.official_layout import write_babylm
from helpers import write_jsonl

READING = [{"row": 0, "item": "The", "word": "cat", "surprisal": 7.25, "prev_surprisal": None}]


def result(tmp: Path, condition: str, seed: int, stage: str) -> Result:
    """An evaluated model with reading and AoA results, in its own folder."""
    folder = tmp / "evaluated" / f"{condition}-{seed}-{stage}"
    write_jsonl(layout.predictions_file(folder, "reading"), READING)
    aoa = layout.aoa_dir(folder)
    aoa.mkdir(parents=True)
    layout.surprisal_file(aoa).write_text(f'{{"results": [], "model": "{condition} {seed}"}}')
    summary = {"reading": {"eye_tracking": 1.0, "self_paced": 2.0},
               "aoa": {"folder": str(aoa), "curve_fitness": 0.5}, "wug_past": {"skipped": "no data"}}
    return Result(condition, seed, stage, "zero_shot", folder, summary, {})


def test_a_model_per_condition_and_seed_and_a_revision_per_stage(tmp_path):
    results = [result(tmp_path, "baseline", 42, "pretrain"), result(tmp_path, "merged", 1, FINAL),
               result(tmp_path, "merged", 2, FINAL)]
    out = tmp_path / "babylm"
    written = write_babylm(results, out)
    assert written == [out / "baseline" / "pretrain", out / "merged_seed1" / "main", out / "merged_seed2" / "main"]
    for root, r in zip(written, results):
        causal = layout.causal_dir(root)
        assert sorted(p.name for p in causal.iterdir()) == ["AoA_word", "reading"]  # the skipped task: nothing
        assert (causal / "reading" / "report.txt").read_text().startswith("EYE TRACKING SCORE: 1.00\n")
        copied = layout.surprisal_file(layout.aoa_dir(causal))
        assert copied.read_text() == layout.surprisal_file(layout.aoa_dir(r.folder)).read_text()
