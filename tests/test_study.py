"""`classit study`: shared pre-training equals a run that never branched; finished work is skipped; job scripts parse."""

import filecmp
import json
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from classit import layout
from classit.cli import main
from classit.files import read_csv
from classit.study.collect import find_results, run_curves
from classit.study.runner import load_study, plan_fits, without_aoa
from helpers import (CONFIGS, aoa_data, babylm_file, config_copy, demo_data, sample_sentences, scalars,
                     small_eval_fast, tiny_curriculum)


def small_milestones(config: Path, out: Path) -> str:
    """A copy of a demo config whose milestones (words) fall inside the tiny runs' ≈ 10k words, every 250 words, so
    that each step (≈ 800–1,000 words) exports one: the 4 steps of pre-training give the baseline the 4 milestones an
    AoA score needs; the config it builds on (``base:``) is copied beside it the same way."""
    resolved = yaml.safe_load(config.read_text())
    callbacks = resolved.get("trainer", {}).get("callbacks", [])
    for export in (c for c in callbacks if c["class_path"].endswith("MilestoneExport")):
        export["init_args"]["milestones"] = list(range(250, 12_001, 250))
    if "base" in resolved:
        small_milestones(config.parent / resolved["base"], out.parent / resolved["base"])
    out.write_text(yaml.safe_dump(resolved))
    return str(out)


@pytest.fixture(scope="module")
def study_dir(data_root, tokenizer, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    data = demo_data(data_root, tmp / "data")
    small_eval_fast(data_root, data)  # a few real items for the demos' epoch-end scoring
    zero_shot = aoa_data(tmp / "zero_shot_data", sample_sentences(data_root))  # AoA words in the official formats
    (zero_shot / "ewok_fast").symlink_to(data_root / "babylm-eval-fast" / "ewok_fast")
    overrides = tiny_curriculum(data, tokenizer.name_or_path)
    config = {"seeds": [42], "conditions": {
        "baseline": {"of": "sequential", "stage": "pretrain"},
        "sequential": {"config": small_milestones(CONFIGS / "demo_seq.yaml", tmp / "seq.yaml"), "overrides": overrides},
        "merged": {"config": small_milestones(CONFIGS / "demo_merged.yaml", tmp / "merged.yaml"),
                   "overrides": overrides}},
        "evaluate": {"zero_shot": {"tasks": ["ewok", "aoa"], "data_dir": str(zero_shot), "device": "cpu"},
                     "finetune": {"tasks": ["wsc"], "seeds": [1], "limit_train": 48, "max_epochs": 1,
                                  "data_dir": str(data_root / "babylm-eval/glue_filtered")},
                     "dynamics": {"data_dir": str(data), "device": "cpu", "resamples": 20}}}
    (tmp / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))  # fits run in this order
    main(["study", "--config", str(tmp / "study.yaml"), "--out", str(tmp / "out")])
    return tmp


@pytest.mark.slow
def test_shared_pretraining_is_the_same_model_as_a_run_that_never_branched(study_dir, tokenizer):
    runs = study_dir / "out" / "runs"
    merged = scalars(runs / "merged_seed42" / "version_0")
    assert min(step for step, _ in merged["train/loss"]) >= 4  # it started after the sequential run's pre-training
    main(["fit", "--config", str(CONFIGS / "demo_merged.yaml"),
          *tiny_curriculum(study_dir / "data", tokenizer.name_or_path),
          "--trainer.logger.init_args.save_dir", str(study_dir / "alone")])
    alone = torch.load(study_dir / "alone" / "demo_merged" / "version_0" / "checkpoints" / "last.ckpt",
                       weights_only=False)["state_dict"]
    branched = torch.load(runs / "merged_seed42" / "version_0" / "checkpoints" / "last.ckpt",
                          weights_only=False)["state_dict"]
    for name, value in alone.items():
        assert torch.equal(branched[name], value), name


@pytest.mark.slow
def test_every_model_is_evaluated_and_reported_and_a_rerun_skips_finished_work(study_dir, capsys):
    out = study_dir / "out"
    for condition in ("baseline", "sequential", "merged"):
        for kind in ("zero_shot", "finetune"):
            assert (out / "eval" / condition / "seed42" / kind / "summary.json").is_file(), (condition, kind)
    baseline = yaml.safe_load((out / "eval" / "baseline" / "seed42" / "zero_shot" / "meta.json").read_text())
    assert baseline["model"].endswith("sequential_seed42/version_0/hf/stage0_pretrain")
    assert (out / "report" / "report.md").is_file()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "report" not in p.parts}
    main(["study", "--config", str(study_dir / "study.yaml"), "--out", str(out)])
    assert "0 to run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in before} == before


@pytest.mark.slow
def test_the_dynamics_follow_each_condition_through_the_runs_that_trained_it(study_dir):
    out = study_dir / "out"
    curves = read_csv(out / "dynamics" / layout.CURVES)
    followed = {run: list(dict.fromkeys(rows.sort_values("words").checkpoint)) for run, rows in curves.groupby("run")}
    baseline, sequential, merged = (followed[f"{c}_seed42"] for c in ("baseline", "sequential", "merged"))
    assert baseline[-1] == "stage0_pretrain" and sequential[:len(baseline)] == baseline  # pre-training, in its run
    assert merged[:len(baseline)] == baseline and merged[-1] == sequential[-1] == "final"  # then the branch's own
    scores = out / "dynamics" / "scores"

    def model(run: str, checkpoint: str) -> str:
        return json.loads(layout.meta_file(scores / run / checkpoint).read_text())["model"]

    assert all("/sequential_seed42/" in model("merged_seed42", name) for name in baseline)
    assert all("/merged_seed42/" in model("merged_seed42", name) for name in merged[len(baseline):])
    for name in baseline:  # a checkpoint the conditions share is scored once: the same predictions under each
        for condition in ("sequential", "merged"):
            assert filecmp.cmp(scores / "baseline_seed42" / name / "predictions" / "ewok.jsonl",
                               scores / f"{condition}_seed42" / name / "predictions" / "ewok.jsonl", shallow=False)
    report = (out / "report" / "report.md").read_text()
    assert "## Dynamics" in report
    for image in ("curves_ewok.png", "stage_effects.png", "repr_merged_seed42.png", "seen_baseline_seed42.png"):
        assert f"]({image})" in report and (out / "report" / image).is_file(), image
    for table in (layout.CURVES, layout.ACQUISITION, layout.STAGE_EFFECTS, layout.REPRESENTATION):
        assert (out / "report" / table).read_bytes() == (out / "dynamics" / table).read_bytes(), table


@pytest.mark.slow
def test_a_stage_conditions_training_curves_end_with_its_stage(study_dir):
    out = study_dir / "out"
    results = {r.condition: r for r in find_results([str(out / "eval")]) if r.kind == "zero_shot"}
    stage_end = out / "runs" / "sequential_seed42" / "version_0" / "checkpoints" / "stage0_pretrain.ckpt"
    steps = torch.load(stage_end, weights_only=False)["global_step"]  # the pre-training stage's optimizer steps
    baseline, sequential = run_curves(results["baseline"]), run_curves(results["sequential"])
    assert [step for step, _ in baseline["train/loss"]] == list(range(steps))
    assert [step for step, _ in baseline["zero_shot/ewok"]] == [steps]  # the stage's last model, scored at its end
    assert max(step for step, _ in sequential["train/loss"]) > steps  # the same run's log, whole


@pytest.mark.slow
def test_emitted_slurm_scripts_parse_as_fit_commands(study_dir, capsys):
    main(["study", "--config", str(study_dir / "study.yaml"), "--out", str(study_dir / "jobs_out"), "--emit", "slurm"])
    jobs = study_dir / "jobs_out" / "jobs"
    scripts = sorted(jobs.glob("*.sbatch"))
    assert [s.name for s in scripts] == ["merged_seed42.sbatch", "sequential_seed42.sbatch"]
    assert "--dependency=afterok:${job_sequential_seed42}" in (jobs / "submit.sh").read_text()
    runs = study_dir / "jobs_out" / "runs"

    def command(script: Path) -> list[str]:  # what the script runs, its shell logic done by bash
        text = script.read_text().replace("srun ", "printf '%s\\n' ", 1)
        return subprocess.run(["bash", "-c", text], capture_output=True, text=True, check=True).stdout.splitlines()

    sequential, merged = command(jobs / "sequential_seed42.sbatch"), command(jobs / "merged_seed42.sbatch")
    assert sequential[-2:] == ["--ckpt_path", "last"]  # a requeued job resumes; a first one starts fresh
    own = runs / "merged_seed42" / "version_0" / "checkpoints" / "last.ckpt"
    assert merged[-2:] == ["--ckpt_path", str(runs / "sequential_seed42/version_0/checkpoints/stage0_pretrain.ckpt")]
    own.parent.mkdir(parents=True)
    own.touch()  # pre-empted after it had written its own checkpoint: the requeued job resumes that
    assert command(jobs / "merged_seed42.sbatch")[-2:] == ["--ckpt_path", str(own)]
    stopped = subprocess.run(["bash", "-c", 'srun() { return 143; }; scontrol() { echo "scontrol $*"; }; '
                              f'SLURM_JOB_ID=7; source {jobs / "sequential_seed42.sbatch"}'], capture_output=True, text=True)
    assert (stopped.returncode, stopped.stdout) == (143, "scontrol requeue 7\n")  # saved on SIGTERM: queued again
    for argv in (sequential, merged):
        assert argv[:2] == ["classit", "fit"]
        with pytest.raises(SystemExit) as done:
            main(argv[1:] + ["--print_config"])
        assert done.value.code in (0, None), argv


def test_a_stage_that_is_not_there_is_named(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"conditions": {"a": {"of": "b", "stage": "x"}}}))
    with pytest.raises(ValueError, match=r"conditions\.a: of must name another condition"):
        load_study(tmp_path / "s.yaml")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"conditions": {"a": {"config": "nowhere.yaml"}}}))
    with pytest.raises(FileNotFoundError, match=r"conditions\.a\.config: .*nowhere.yaml not found"):
        plan_fits(load_study(tmp_path / "s.yaml"))


def test_the_study_config_is_read_into_its_settings(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"conditions": {"a": {"config": str(CONFIGS / "demo.yaml")},
                                                                    "b": {"of": "a", "stage": "pretrain"}},
                                                     "evaluate": {"finetune": {"tasks": ["rte"]}}}))
    study = load_study(tmp_path / "s.yaml")
    assert (list(study.conditions), study.seeds, study.zero_shot, study.finetune) == (["a", "b"], [42], None,
                                                                                       {"tasks": ["rte"]})
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"conditions": {"a": {"config": str(CONFIGS / "demo.yaml")}},
                                                     "evaluate": {"zero_shots": {"tasks": ["ewok"]}}}))
    with pytest.raises(ValueError, match=r"s\.yaml:\d+: evaluate\.zero_shots: unknown key; did you mean zero_shot\?"):
        load_study(tmp_path / "s.yaml")


def test_a_conditions_bad_override_stops_naming_it(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"conditions": {"a": {
        "config": str(CONFIGS / "demo.yaml"), "overrides": ["--data.batch_sise", "3"]}}}))
    with pytest.raises(ValueError, match=r"demo\.yaml --data\.batch_sise 3 .*: not a valid fit config: "
                                         r"unrecognized arguments: --data\.batch_sise 3"):
        plan_fits(load_study(tmp_path / "s.yaml"))


def without(path: Path, callback: str, out: Path) -> Path:
    """The fit config at ``path`` without its ``callback``, written to ``out``."""
    config = config_copy(path)
    config["trainer"]["callbacks"] = [c for c in config["trainer"]["callbacks"]
                                      if not c["class_path"].endswith(callback)]
    out.write_text(yaml.safe_dump(config))
    return out


@pytest.mark.slow
def test_a_fit_without_hf_export_finishes_once_and_is_not_evaluated(tiny_runs, tmp_path, capsys):
    fit = tiny_runs.config("plain")
    study = {"conditions": {"plain": {"config": str(without(fit, "HFExport", fit))}},
             "evaluate": {"zero_shot": {"tasks": ["ewok"]}}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    args = ["study", "--config", str(tmp_path / "study.yaml"), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match=r"^classit: error: \S+study.yaml: conditions\.plain: evaluating it needs "
                                         r"the Hugging Face export of fit plain_seed42, and \S+ has no "
                                         r"classit\.train\.HFExport"):
        main(args)
    assert not (tmp_path / "out").exists()  # stopped before any fit ran
    del study["evaluate"]
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    main(args)
    assert "1 fits (1 to run)" in capsys.readouterr().out
    main(args)
    assert "1 fits (0 to run)" in capsys.readouterr().out  # finished, though it wrote no hf/: not resumed again


def test_a_fit_without_run_checkpoint_is_not_branched_from(tmp_path):
    study = {"conditions": {"sequential": {"config": str(without(CONFIGS / "demo_seq.yaml", "RunCheckpoint",
                                                                  tmp_path / "seq.yaml"))},
                            "merged": {"config": str(CONFIGS / "demo_merged.yaml")}}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))  # fits run in this order
    assert [f.branch for f in plan_fits(load_study(tmp_path / "study.yaml"))] == [None, None]  # no stage checkpoints


def test_a_subclass_of_run_checkpoint_is_branched_from(tmp_path):
    sequential = config_copy(CONFIGS / "demo_seq.yaml")
    for callback in sequential["trainer"]["callbacks"]:
        if callback["class_path"].endswith("RunCheckpoint"):
            callback["class_path"] = "probes.OwnRunCheckpoint"
    (tmp_path / "seq.yaml").write_text(yaml.safe_dump(sequential))
    study = {"conditions": {"sequential": {"config": str(tmp_path / "seq.yaml")},
                            "merged": {"config": str(CONFIGS / "demo_merged.yaml")}}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    sequential, merged = plan_fits(load_study(tmp_path / "study.yaml"))
    assert merged.branch == (sequential, 1)


@pytest.mark.slow
def test_each_condition_scores_the_milestones_of_its_own_training_and_the_report_shows_its_aoa(study_dir):
    out, runs = study_dir / "out", study_dir / "out" / "runs"

    def stages(run):
        return {p.name: json.loads((p / "milestone.json").read_text())["stage"]
                for p in (runs / run / "version_0" / "milestones").iterdir()}

    def linked(condition):
        folder = out / "eval" / condition / "seed42" / "milestones"
        return {p.name: p.resolve().parent.parent.parent.name for p in folder.iterdir()}

    sequential, merged = stages("sequential_seed42"), stages("merged_seed42")
    pretraining = {name for name, stage in sequential.items() if stage == 0}
    assert pretraining and set(sequential.values()) > {0} and merged and set(merged.values()) == {1}
    assert linked("sequential") == dict.fromkeys(sequential, "sequential_seed42")
    assert linked("baseline") == dict.fromkeys(pretraining, "sequential_seed42")  # its stage's only
    assert linked("merged") == {**dict.fromkeys(pretraining, "sequential_seed42"), **dict.fromkeys(merged, "merged_seed42")}
    for condition in ("baseline", "sequential", "merged"):
        summary = json.loads((out / "eval" / condition / "seed42" / "zero_shot" / "summary.json").read_text())["aoa"]
        assert sorted(summary["checkpoints"]) == sorted(linked(condition)), condition
    report = (out / "report" / "report.md").read_text()
    assert "## Word age of acquisition" in report and report.count("model against child AoA") == 3
    rows = (out / "report" / "results.csv").read_text().splitlines()
    assert sum(",aoa,,r," in row for row in rows) == 3


@pytest.mark.slow
def test_dry_run_without_swda_says_which_stages_are_unknown(data_root, cache_root, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"  # the BabyLM corpus only (two small files), no SwDA
    for split, suffix in (("train_3M", ".train"), ("dev", ".dev")):
        (data / "babylm-corpus" / split).mkdir(parents=True)
        for name in ("childes", "simple_wiki"):
            (data / "babylm-corpus" / split / f"{name}{suffix}").symlink_to(babylm_file(data_root, f"dev/{name}.dev"))
    (data / "babylm-eval-fast").symlink_to(data_root / "babylm-eval-fast")  # the study's evaluation sets are there
    monkeypatch.setenv("CLASSIT_DATA_DIR", str(data))
    main(["study", "--config", str(CONFIGS / "study_demo.yaml"), "--out", str(tmp_path / "study"), "--dry_run"])
    plans = [line for line in capsys.readouterr().out.splitlines() if "optimizer steps to train" in line]
    assert len(plans) == 2 and all(line.endswith("; unknown, their data absent: switchboard") for line in plans), plans
    assert all(" of ? optimizer steps" in line for line in plans)


def test_aoa_is_left_out_of_a_condition_whose_training_wrote_too_few_milestones(capsys):
    options = {"tasks": "ewok,aoa", "data_dir": "babylm-eval-fast"}
    assert without_aoa(options, 3) == {"tasks": ["ewok"], "data_dir": "babylm-eval-fast"}
    assert capsys.readouterr().out == "  aoa left out: 3 milestone(s) along its training; the AoA score needs at least 4\n"
    assert without_aoa(options, 4) is options
