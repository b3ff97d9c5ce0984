"""classit's predictions in the BabyLM 2025 pipeline's results layout, as its collation script
(``evaluation_pipeline/collate_preds.py``) reads them, so classit's results can be submitted without running
the pipeline::

    OUT/<model>/<revision>/zero_shot/causal/{blimp/blimp_filtered, blimp/supplement_filtered, ewok/ewok_filtered,
        entity_tracking/entity_tracking, wug_adj/wug_adj_nominalization}/{predictions.json, best_temperature_report.txt}
    OUT/<model>/<revision>/zero_shot/causal/reading/{predictions.json, prediction.jsonl, report.txt}
    OUT/<model>/<revision>/zero_shot/causal/AoA_word/surprisal.json
    OUT/<model>/<revision>/finetune/<task>/{predictions.json, results.txt}

``<model>`` is the condition (``<condition>_seed<k>`` when it has several seeds), ``<revision>`` the stage
(``main`` for the final model). A prediction names the chosen completion; a tie goes to the first option, as in
the pipeline (``torch.max``) and in classit's summary, so both count a tie as correct.
Fine-tuning predictions are those of the first fine-tuning seed (the pipeline runs one).
"""

import shutil
from collections import defaultdict
from pathlib import Path

from classit import layout
from classit.eval.pipeline import write_finetune, write_minimal_pairs, write_reading
from classit.study.collect import FINAL, Result, scored_tasks


def write_babylm(results: list[Result], out: str | Path) -> list[Path]:
    """Write every result below ``out`` in the pipeline's layout; returns the ``<model>/<revision>`` folders."""
    seeds = defaultdict(set)
    for r in results:
        seeds[r.condition].add(r.seed)
    written = []
    for r in results:
        model = r.condition if len(seeds[r.condition]) == 1 else f"{r.condition}_seed{r.seed}"
        root = Path(out) / model / (layout.FINAL_REVISION if r.stage == FINAL else r.stage)
        if r.kind == "finetune":
            write_finetune(r.folder, r.summary, layout.finetune_dir(root))
        else:
            for task, kind, s in scored_tasks(r):
                if kind == "reading":
                    write_reading(r.folder, r.summary, layout.causal_dir(root))
                elif kind == "aoa":
                    aoa = layout.aoa_dir(layout.causal_dir(root))
                    aoa.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(layout.surprisal_file(s["folder"]), layout.surprisal_file(aoa))
                else:
                    write_minimal_pairs(r.folder, r.summary, task, layout.causal_dir(root))
        written.append(root)
    return sorted(set(written))
