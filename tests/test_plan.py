"""`classit plan`: what every shipped config does, the same on 1, 8 and 64 devices; checked against a real run."""

import json
from pathlib import Path

import pytest
import yaml

from classit.cli import main
from classit.train.plan import PlanReport, load, make_plan
from helpers import babylm_file, scalars, small_corpus, small_eval_fast

CONFIG_DIR = Path(__file__).parent.parent / "configs"
# every run config (an overlay such as 140m.yaml has no data: it goes after a run config)
RUNS = [[p] for p in sorted(CONFIG_DIR.glob("*.yaml")) if "data" in yaml.safe_load(p.read_text())]
RUNS.append([CONFIG_DIR / "seq_100m.yaml", CONFIG_DIR / "140m.yaml"])


@pytest.mark.slow
@pytest.mark.parametrize("configs", RUNS, ids=lambda c: "+".join(p.stem for p in c))
def test_every_config_plans_the_same_run_on_1_8_and_64_devices(configs, data_root, cache_root):
    cli, estimates = load([arg for config in configs for arg in ("--config", str(config))])
    if cli.datamodule.batch_size % 64:  # the CPU demos' small global batch cannot be split over 64 devices: say so
        with pytest.raises(ValueError, match="do not split evenly over 64 devices"):
            make_plan(cli.datamodule, cli.model, cli.trainer, 64, 1, estimates)
        devices = (1, 8, 16)
    else:
        devices = (1, 8, 64)
    plans = [make_plan(cli.datamodule, cli.model, cli.trainer, n, 1, estimates) for n in devices]
    for plan in plans[1:]:
        for key in ("global_batch_tokens", "total_steps", "warmup_steps", "tokens", "words", "val_every_steps"):
            assert getattr(plan, key) == getattr(plans[0], key), (key, plan.devices)
        assert [s.steps for s in plan.stages] == [s.steps for s in plans[0].stages]
        assert [s.lr_start for s in plan.stages] == [s.lr_start for s in plans[0].stages]
    one, many = plans[0], plans[2]
    assert many.micro_batch_size * devices[2] * many.accumulate_grad_batches == one.global_batch_sequences
    for stage in one.stages:
        assert stage.steps > 0 and stage.tokens > stage.words > 0
    if "100M" in configs[0].read_text():  # the real-size corpus is not here: estimated from the sample, and said so
        assert "pretrain" in one.estimated and one.words > 700e6


@pytest.mark.slow
def test_plan_json_through_the_cli_and_a_clear_error_when_devices_do_not_divide(capsys, cache_root, data_root):
    seq = str(Path(__file__).parent.parent / "configs" / "seq_100m.yaml")
    main(["plan", "--config", seq, "--devices", "8", "--json"])
    plan = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert plan["devices"] == 8 and [s["name"] for s in plan["stages"]] == ["pretrain", "switchboard", "simple_wiki"]
    with pytest.raises(SystemExit, match=r"data\.batch_size: 128 sequences do not split evenly over 3 devices"):
        main(["plan", "--config", seq, "--devices", "3"])
    with pytest.raises(SystemExit):
        main(["plan", "--config", seq, "--devices", "0"])
    assert "classit plan: error: --devices and --num_nodes count from 1" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--devices", "8", "--num_nodes", "2"],
                                   ["--trainer.devices", "8", "--trainer.num_nodes", "2"]], ids=["plan", "fit"])
def test_plan_takes_the_devices_in_its_own_and_the_fits_spelling(flags, tokenizer, data_root, tmp_path, capsys):
    data = small_eval_fast(data_root, small_corpus(data_root, tmp_path / "data"))
    main(["plan", "--config", str(Path(__file__).parent.parent / "configs" / "demo.yaml"), *flags, "--json",
          "--data.data_dir", str(data), "--data.sources.pretrain.init_args.train_dir", "train",
          "--data.sources.pretrain.init_args.val_dir", "dev", "--data.tokenizer", tokenizer.name_or_path,
          "--data.batch_size", "64", "--data.micro_batch_size", "2"])
    plan = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (plan["devices"], plan["num_nodes"]) == (8, 2)
    assert (plan["micro_batch_size"], plan["accumulate_grad_batches"]) == (2, 2)  # 64 = 16 devices × 2 × 2


@pytest.mark.slow
def test_plan_matches_the_run(tokenizer, data_root, tmp_path, capsys):
    """The steps, LR and validation points that `plan` prints are those of the real run."""
    data = small_eval_fast(data_root, small_corpus(data_root, tmp_path / "data"))
    args = ["--config", str(Path(__file__).parent.parent / "configs" / "demo.yaml"), "--trainer.max_steps", "12",
            "--data.data_dir", str(data), "--data.sources.pretrain.init_args.train_dir", "train",
            "--data.sources.pretrain.init_args.val_dir", "dev",
            "--data.tokenizer", tokenizer.name_or_path, "--data.num_workers", "0", "--data.val_sequences", "16",
            "--data.batch_size", "4", "--data.val_every", "0.5", "--trainer.logger.init_args.save_dir", str(tmp_path),
            "--trainer.log_every_n_steps", "1", "--trainer.callbacks+=lightning.pytorch.callbacks.LearningRateMonitor"]
    main(["plan", *args, "--json"])
    plan = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    main(["fit", *args])
    curves = scalars(tmp_path / "demo" / "version_0")
    assert plan["total_steps"] == len(curves["train/loss"]) == 12
    lrs = dict(curves["lr-AdamW/pg1"])
    assert lrs[0] == pytest.approx(plan["stages"][0]["lr_start"]) and lrs[11] == pytest.approx(plan["stages"][0]["lr_end"])
    assert len(curves["val/loss"]) == plan["val_points"] == 2


def plan_of(name: str) -> PlanReport:
    cli, estimates = load(["--config", str(Path(__file__).parent.parent / "configs" / f"{name}.yaml")])
    return make_plan(cli.datamodule, cli.model, cli.trainer, 1, 1, estimates)


@pytest.mark.slow
def test_baseline_sequential_and_merged_pretrain_alike_and_tune_with_equal_exposure(data_root, cache_root):
    plans = {name: plan_of(name) for name in ("pretrain_100m", "seq_100m", "seq_rev_100m", "merged_100m")}
    pretraining = {name: {k: getattr(p.stages[0], k) for k in ("steps", "lr_start", "lr_end", "tokens")}
                   for name, p in plans.items()}
    assert len({json.dumps(v, sort_keys=True) for v in pretraining.values()}) == 1, pretraining  # the same baseline
    tuning = {name: p.stages[1:] for name, p in plans.items() if name != "pretrain_100m"}
    steps = {name: sum(s.steps for s in stages) for name, stages in tuning.items()}
    sequences = {name: sum(s.sequences for s in stages) for name, stages in tuning.items()}
    assert len(set(steps.values())) == 1 and len(set(sequences.values())) == 1, (steps, sequences)
    assert {s.epochs for stages in tuning.values() for s in stages} == {10}  # every example seen 10 times
    for name, stages in tuning.items():  # instruction tuning warms up from its own start, not pre-training's tail
        phase = plans[name].phases[1]
        assert phase.first_step == plans[name].stages[1].first_step and phase.reset_optimizer
        assert stages[0].lr_start == pytest.approx(phase.lr / phase.warmup_steps)


@pytest.mark.slow
def test_plan_without_swda_marks_its_stages_unknown_and_plans_the_rest(tokenizer, data_root, tmp_path, monkeypatch,
                                                                       capsys):
    """A data folder with the BabyLM corpus only: the Switchboard stage's length, the instruction phase's LR and the
    run's total are unknown, said with what to provide; pre-training and the lectures' steps are planned."""
    data = tmp_path / "data"
    for split, suffix in (("train_3M", ".train"), ("dev", ".dev")):
        (data / "babylm-corpus" / split).mkdir(parents=True)
        for name in ("childes", "simple_wiki"):
            (data / "babylm-corpus" / split / f"{name}{suffix}").symlink_to(babylm_file(data_root, f"dev/{name}.dev"))
    monkeypatch.setenv("CLASSIT_DATA_DIR", str(data))
    args = ["plan", "--config", str(CONFIG_DIR / "seq_100m.yaml"), "--devices", "8", "--data.tokenizer",
            tokenizer.name_or_path, "--data.batch_size", "16", "--data.block_size", "128"]
    main([*args, "--json"])
    plan = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    pretrain, switchboard, simple_wiki = plan["stages"]
    assert pretrain["steps"] > 0 and pretrain["lr_start"] is not None
    assert switchboard["steps"] is None and switchboard["lr_start"] is None
    assert switchboard["unknown"].startswith(f"data.sources.switchboard.init_args.swda: no SwDA files in {data}/swda")
    assert simple_wiki["steps"] > 0 and simple_wiki["lr_start"] is None  # its phase's length is unknown
    assert plan["total_steps"] is None and plan["phases"][0]["steps"] == pretrain["steps"]
    assert plan["phases"][1]["steps"] is None and set(plan["unknown"]) == {"switchboard"}
    main(args)
    lines = capsys.readouterr().out.splitlines()
    assert next(line for line in lines if line.startswith("switchboard ")).split()[2:] == ["10", "?", "?", "?", "?", "?"]
    assert lines[-1].startswith("unknown: switchboard: data.sources.switchboard.init_args.swda: no SwDA files")


def test_plan_refuses_a_batch_of_0_sequences(data_root):
    with pytest.raises(SystemExit) as done:
        main(["plan", "--config", str(CONFIG_DIR / "demo.yaml"), "--data.batch_size", "0"])
    assert done.value.code == "classit: error: data.batch_size: a positive number of sequences, not 0"
