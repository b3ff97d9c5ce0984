"""wug_past and comps in the official formats: classit's scores against the official rule recomputed here one text
at a time, and the pipeline layout of ``classit report --babylm`` read back by ``classit compare``."""

import json
import random

import pytest
import torch
from scipy.stats import spearmanr
from transformers import AutoModelForCausalLM, AutoTokenizer

from classit.cli import main
from classit.eval.compare import compare
from classit.eval.zero_shot import load_items
from helpers import COMPS, comps_items, wug_past_items, write_jsonl



@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    rng = random.Random(7)
    root = tmp_path_factory.mktemp("eval-data")
    write_jsonl(root / "wug_past_tense" / "wug_past_tense.jsonl", wug_past_items(rng, 30))
    for stem in COMPS:
        write_jsonl(root / "comps" / f"{stem}.jsonl", comps_items(rng, stem, 8))
    return root


@pytest.fixture(scope="module")
def evaluated(tiny_model_dir, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "seq"
    main(["evaluate", "--model", str(tiny_model_dir), "--data_dir", str(data_dir), "--tasks", "wug_past,comps",
          "--out", str(out), "--device", "cpu", "--batch_size", "16"])
    return out


def official_score(model, tokenizer, sentence: str, completion: str) -> torch.Tensor:
    """The pipeline's causal backend on one text: the summed float32 log-probabilities of the tokens whose end
    offset is past the completion's first character (the first token never scored)."""
    encoded = tokenizer(sentence, return_offsets_mapping=True)
    ids, offsets = torch.tensor(encoded["input_ids"])[None], encoded["offset_mapping"]
    start = len(sentence) - len(completion) + offsets[0][0]
    mask = torch.tensor([end > start for _, end in offsets], dtype=torch.long)[None]
    with torch.no_grad():
        logits = model(input_ids=ids[:, :-1], attention_mask=torch.ones_like(ids[:, :-1])).logits
    logprobs = torch.gather(torch.log_softmax(logits, -1), -1, ids[:, 1:, None])[..., 0]
    return torch.sum(logprobs * mask[:, 1:], dim=1)[0]


@pytest.fixture(scope="module")
def official(tiny_model_dir, data_dir):
    """Option scores, chosen options and WUG probabilities as the pipeline computes them, per task, in file order."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    out = {"wug_past": [], "comps": []}
    for line in (data_dir / "wug_past_tense" / "wug_past_tense.jsonl").read_text().splitlines():
        r = json.loads(line)
        sentences = r["sentences"].split("\t")  # decode_wug: the sentences are the completions, no prefix
        stacked = torch.stack([official_score(model, tokenizer, s, s) for s in sentences])
        out["wug_past"].append({"uid": "wug_past", "scores": stacked, "chosen": torch.max(stacked, dim=0)[1].item(),
                                "prob": torch.softmax(stacked, dim=0)[0].item(), "ratio": float(r["ratio"])})
    for stem, uid in COMPS.items():
        for line in (data_dir / "comps" / f"{stem}.jsonl").read_text().splitlines():
            r = json.loads(line)  # decode_comps: "prefix property_phrase", the property phrase scored
            sentences = [" ".join([r["prefix_acceptable"], r["property_phrase"]]),
                         " ".join([r["prefix_unacceptable"], r["property_phrase"]])]
            stacked = torch.stack([official_score(model, tokenizer, s, r["property_phrase"]) for s in sentences])
            out["comps"].append({"uid": uid, "scores": stacked, "chosen": torch.max(stacked, dim=0)[1].item(),
                                 "sentences": sentences})
    return out


@pytest.mark.slow
def test_wug_past_is_the_official_rho(evaluated, official):
    summary = json.loads((evaluated / "summary.json").read_text())["wug_past"]
    records = [json.loads(x) for x in (evaluated / "predictions" / "wug_past.jsonl").read_text().splitlines()]
    ref = official["wug_past"]
    assert len(records) == summary["items"] == len(ref) == 30 and {r["uid"] for r in records} == {"wug_past"}
    for r, o in zip(records, ref):
        assert r["scores"] == pytest.approx(o["scores"].tolist(), abs=1e-4)
        assert r["prob"] == pytest.approx(o["prob"], abs=1e-5) and r["pred"] == o["chosen"]
    rho = spearmanr([o["prob"] for o in ref], [o["ratio"] for o in ref])[0]
    assert summary["rho"] / 100 == pytest.approx(rho, abs=1e-6)
    assert summary["macro"] == summary["rho"] and summary["by_uid"] == {"wug_past": summary["rho"]}


def test_comps_is_the_official_accuracy_per_subset(evaluated, official):
    summary = json.loads((evaluated / "summary.json").read_text())["comps"]
    records = [json.loads(x) for x in (evaluated / "predictions" / "comps.jsonl").read_text().splitlines()]
    ref = official["comps"]
    assert len(records) == summary["items"] == len(ref) == 32 and summary["ties"] == 0
    for r, o in zip(records, ref):
        assert r["uid"] == o["uid"] and r["scores"] == pytest.approx(o["scores"].tolist(), abs=1e-4)
    correct, total = {}, {}
    for o in ref:  # rank_and_evaluate: correct when the chosen option is the label 0
        correct[o["uid"]] = correct.get(o["uid"], 0) + (o["chosen"] == 0)
        total[o["uid"]] = total.get(o["uid"], 0) + 1
    by_uid = {uid: 100.0 * correct[uid] / total[uid] for uid in total}
    assert summary["by_uid"] == by_uid and set(by_uid) == set(COMPS.values())
    assert summary["macro"] == pytest.approx(sum(by_uid.values()) / len(by_uid), abs=1e-9)
    assert 0 < sum(correct.values()) < 32  # both outcomes occur


def test_comps_subsets_are_named_as_the_pipeline_names_them(tmp_path):
    item = comps_items(random.Random(0), "comps_base", 1)
    for stem in [*COMPS, "other"]:
        write_jsonl(tmp_path / stem / f"{stem}.jsonl", item)
        expected = COMPS.get(stem, "wugs_dist_in_between")  # decode_comps: any other file is the last subset
        assert [it.uid for it in load_items("comps", tmp_path / stem)] == [expected]
    write_jsonl(tmp_path / "w.jsonl", [{"sentences": "One form only.", "ratio": 0.5}])
    with pytest.raises(ValueError, match=r"w\.jsonl:1: 'sentences' must hold two or more texts"):
        load_items("wug_past", tmp_path)


def test_babylm_layout_is_the_official_one_and_compares_equal(evaluated, data_dir, official, tmp_path, capsys):
    tree = tmp_path / "babylm"
    main(["report", f"[{evaluated}]", "--out", str(tmp_path / "r"), "--babylm", str(tree), "--replies", "false"])
    summary = json.loads((evaluated / "summary.json").read_text())
    causal = tree / "seq" / "main" / "zero_shot" / "causal"

    # wug_past: predictions keyed by the task, the pipeline's prob; calculate_results_from_pred's rho x100
    wug = causal / "wug_past" / "wug_past_tense"
    preds = json.loads((wug / "predictions.json").read_text())
    assert list(preds) == ["wug_past"] and len(preds["wug_past"]["predictions"]) == 30
    rows = [json.loads(x) for x in (data_dir / "wug_past_tense" / "wug_past_tense.jsonl").read_text().splitlines()]
    for k, (p, r) in enumerate(zip(preds["wug_past"]["predictions"], rows)):
        assert p["id"] == f"wug_past_{k}" and p["pred"] == r["sentences"].split("\t")[official["wug_past"][k]["chosen"]]
    rho = spearmanr([p["prob"] for p in preds["wug_past"]["predictions"]], [r["ratio"] for r in rows])[0] * 100
    assert rho == pytest.approx(summary["wug_past"]["rho"], abs=1e-6)
    report = (wug / "best_temperature_report.txt").read_text()
    assert f"### UID SPEARMAN'S RHO\navg: {rho / 100:.2f}\n\n### AVERAGE SPEARMAN'S RHO\n{rho / 100:.2f}\n" in report

    # comps: predictions keyed by subset, the chosen whole sentence; _calculate_comps_results' mean over subsets
    comps = causal / "comps" / "comps"
    preds = json.loads((comps / "predictions.json").read_text())
    assert set(preds) == set(COMPS.values())
    scores = []
    for stem, uid in COMPS.items():
        rows = [json.loads(x) for x in (data_dir / "comps" / f"{stem}.jsonl").read_text().splitlines()]
        assert len(preds[uid]["predictions"]) == len(rows)  # collate_preds' size check, per subset
        right = [p["pred"].strip() == " ".join([r["prefix_acceptable"], r["property_phrase"]]).strip()
                 for p, r in zip(preds[uid]["predictions"], rows)]
        scores.append(100 * sum(right) / len(right))
    assert sum(scores) / len(scores) == pytest.approx(summary["comps"]["macro"], abs=1e-9)
    chosen = [o["sentences"][o["chosen"]] for o in official["comps"]]
    assert [p["pred"] for uid in COMPS.values() for p in preds[uid]["predictions"]] == chosen
    report = (comps / "best_temperature_report.txt").read_text()
    assert "### UID ACCURACY\n" in report and f"### AVERAGE ACCURACY\n{summary['comps']['macro']:.2f}\n" in report

    capsys.readouterr()
    rows = compare(str(evaluated), str(tree))
    printed = capsys.readouterr().out
    assert {label for task, label in rows if task == "comps"} == {"average", "strict (ties wrong)",
                                                                    *(f"uid/{u}" for u in COMPS.values())}
    assert ("wug_past", "average") in rows and all(diff in (0, None) for _, _, diff in rows.values())
    assert "comps: 0 of 32 items choose a different option" in printed
    assert "wug_past: 0 of 30 items differ in probability" in printed
