"""Config files through the real CLI: a config builds on another with ``base:``, and every problem with one stops
in one line naming the file (and line)."""

from pathlib import Path

import yaml

from classit.config_files import expand_config_args, nearest
from classit.train.fit import resolved_fit_config
from helpers import error_line

CONFIGS = Path(__file__).parent.parent / "configs"


def write(path: Path, config) -> str:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def test_a_config_builds_on_its_base_relative_to_the_file(tmp_path):
    child = write(tmp_path / "child.yaml", {"base": str(CONFIGS / "demo.yaml"), "model": {"n_layer": 2}})
    resolved = resolved_fit_config(["--config", child])
    assert resolved["model"]["n_layer"] == 2 and resolved["model"]["n_embd"] == 128
    assert expand_config_args(["fit", "--config", str(CONFIGS / "demo.yaml")]) == \
        ["fit", "--config", str(CONFIGS / "demo.yaml")]
    assert resolved_fit_config(["--config", str(CONFIGS / "seq_rev_100m.yaml")])["data"]["stages"][1]["name"] == \
        "simple_wiki"


def test_a_base_that_is_missing_or_circular_is_named(tmp_path):
    write(tmp_path / "a.yaml", {"base": "b.yaml"})
    write(tmp_path / "b.yaml", {"base": "a.yaml"})
    assert "builds on itself" in error_line(["fit", "--config", str(tmp_path / "a.yaml")])
    write(tmp_path / "c.yaml", {"base": "nowhere.yaml"})
    assert error_line(["fit", "--config", str(tmp_path / "c.yaml")]) == \
        f"{tmp_path / 'c.yaml'}:1: base: {tmp_path / 'nowhere.yaml'} not found"


def test_a_config_that_is_no_mapping_is_named(tmp_path):
    listed = write(tmp_path / "list.yaml", ["a", "b"])
    expected = f"{listed}: not a config: expected a mapping of keys (model:, data:, ...), got a list"
    for command in ("fit", "plan", "evaluate"):
        assert error_line([command, "--config", listed]) == expected


def test_an_unknown_key_is_named_with_its_file_line_and_nearest_key(tmp_path):
    config = yaml.safe_load((CONFIGS / "demo.yaml").read_text())
    config["model"]["n_layers"] = config["model"].pop("n_layer")
    typo = write(tmp_path / "typo.yaml", config)
    line = next(i for i, text in enumerate(Path(typo).read_text().splitlines(), 1) if "n_layers" in text)
    assert error_line(["fit", "--config", typo]) == f"{typo}:{line}: model.n_layers: unknown key; did you mean " \
                                                   "model.n_layer?"
    evaluate = write(tmp_path / "evaluate.yaml", {"tasks": "blimp", "batch_siz": 8})
    assert error_line(["evaluate", "--config", evaluate]) == f"{evaluate}:2: batch_siz: unknown key; did you mean " \
                                                             "batch_size?"


def test_a_wrong_type_is_named_in_the_file_or_on_the_command_line(tmp_path):
    typed = write(tmp_path / "child.yaml", {"base": str(CONFIGS / "demo.yaml"), "model": {"n_layer": "four"}})
    assert error_line(["fit", "--config", typed]) == \
        f"{typed}:3: model.n_layer: Expected a <class 'int'>. Got value: four"
    assert error_line(["plan", "--config", str(CONFIGS / "demo.yaml"), "--model.n_layer", "x"]) == \
        "--model.n_layer: Expected a <class 'int'>. Got value: x"


def test_nearest_names_only_a_near_key():
    assert nearest("n_layers", ["n_layer", "n_embd"]) == "; did you mean n_layer?"
    assert nearest("zzz", ["n_layer"]) == ""
