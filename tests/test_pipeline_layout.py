"""The BabyLM pipeline's results layout (classit/eval/pipeline.py): the tree found at any level, the reading task
written as the pipeline writes it and read back."""

import pytest

from classit import layout
from classit.eval.pipeline import causal_folder, read_pipeline, write_reading
from helpers import write_jsonl


def test_the_results_tree_is_found_from_any_level_down_to_it(tmp_path):
    causal = layout.causal_dir(tmp_path / "out" / "model" / layout.FINAL_REVISION)
    causal.mkdir(parents=True)
    for level in (tmp_path / "out", tmp_path / "out" / "model", causal.parent.parent, causal):
        assert causal_folder(level) == causal, level
    assert causal_folder(tmp_path / "elsewhere") is None
    layout.causal_dir(tmp_path / "out" / "other" / layout.FINAL_REVISION).mkdir(parents=True)
    with pytest.raises(ValueError, match=rf"^{tmp_path / 'out'}: several results trees \(.*model.*other.*\); name one"):
        causal_folder(tmp_path / "out")


def test_reading_is_written_in_the_pipelines_files_and_read_back(tmp_path):
    records = [{"row": 0, "item": "The", "word": "cat", "surprisal": 7.25, "prev_surprisal": None},
               {"row": 1, "item": "The cat", "word": "sat", "surprisal": 5.5, "prev_surprisal": 7.25}]
    write_jsonl(layout.predictions_file(tmp_path / "evaluated", "reading"), records)
    causal = layout.causal_dir(tmp_path / "results")
    write_reading(tmp_path / "evaluated", {"reading": {"eye_tracking": 1.2345, "self_paced": -0.5}}, causal)
    report = (causal / "reading" / "report.txt").read_text()
    assert report == "EYE TRACKING SCORE: 1.23\nSELF-PACED READING SCORE: -0.50\n"
    read = read_pipeline(causal)["reading"]
    assert read.pipeline and read.numbers == {"eye_tracking": 1.23, "self_paced": -0.5}
    assert read.items == {("row", 0): (7.25, None), ("row", 1): (5.5, 7.25)}  # no previous word: NaN, read as None
