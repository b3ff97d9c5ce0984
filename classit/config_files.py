"""The config files a command takes with ``--config``: each a YAML mapping that may build on another (its ``base:``
key, a path relative to the file), expanded before jsonargparse parses; every problem with one stops in one line
naming the file, and the line where there is one."""

import difflib
import importlib
import inspect
import json
import re
from pathlib import Path

import yaml

from classit.files import read_yaml

BASE_KEY = "base"


def config_paths(args: list[str]) -> list[str]:
    """The ``--config`` values of command-line ``args``, in order."""
    paths = [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
    return paths + [value for flag, value in zip(args, args[1:]) if flag in ("--config", "-c")]


def read_config(path: str | Path) -> dict:
    """One config file: a YAML mapping (an empty file is an empty one)."""
    config = read_yaml(path)
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a config: expected a mapping of keys (model:, data:, ...), got a "
                         f"{type(config).__name__}")
    return config


def config_layers(path: str | Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, dict]]:
    """``(file, settings)`` of a config and the configs it builds on, the first base first; each file's
    ``base:`` removed from its settings."""
    path = Path(path)
    if path.resolve() in seen:
        raise ValueError(f"{path}: {BASE_KEY}: the config builds on itself ({' -> '.join(map(str, seen))})")
    config = read_config(path)
    if BASE_KEY not in config:
        return [(path, config)]
    base = config.pop(BASE_KEY)
    if not isinstance(base, str):
        raise ValueError(f"{path}:{key_line(path, BASE_KEY)}: {BASE_KEY}: give the path of the config this one "
                         f"builds on, got {base!r}")
    base_path = path.parent / base
    if not base_path.is_file():
        raise FileNotFoundError(f"{path}:{key_line(path, BASE_KEY)}: {BASE_KEY}: {base_path} not found")
    return config_layers(base_path, (*seen, path.resolve())) + [(path, config)]


def expand_config_args(args: list[str]) -> list[str]:
    """``args`` with each ``--config`` file checked and preceded by the configs it builds on (jsonargparse merges
    them in order, as several ``--config``); a file without ``base:`` is passed on as it is."""
    expanded, args = [], list(args)
    while args:
        arg = args.pop(0)
        flag, value = (arg.split("=", 1) if arg.startswith("--config=") else
                       (arg, args.pop(0)) if arg in ("--config", "-c") and args else (arg, None))
        if value is None or not Path(value).is_file():
            expanded += [arg] if value is None else [flag, value]
            continue
        first, *builds_on_it = config_layers(value)
        expanded += [flag, str(first[0])] + [arg for _, config in builds_on_it for arg in (flag, json.dumps(config))]
    return expanded


def config_error(message: str, args: list[str], keys: list[str]) -> ValueError:
    """jsonargparse's error ``message`` on ``args`` in one line naming the config file and line that set the key
    at fault (or the command-line option), with the nearest of the valid ``keys`` for an unknown one."""
    layers = [layer for path in config_paths(args) if Path(path).is_file() for layer in config_layers(path)]
    if unknown := re.search(r"(?:Group '([^']+)' )?does not accept option '([^']+)'", message):
        key = f"{unknown[1]}.{unknown[2]}" if unknown[1] else unknown[2]  # a group names the key inside it
        return ValueError(f"{where(key, layers, args)}: unknown key{nearest(key, keys)}")
    if given := re.match(r'Parser key "([^"]+)":\s*(.*)', message, re.S):
        key, problem = given[1], given[2]
        if option := re.search(r"given class_path '([^']+)':\s*Option '([^']+)' is not accepted", problem):
            name = option[2]
            return ValueError(f"{where(key, layers, args, name)}: {name}: unknown key"
                              f"{nearest(name, init_parameters(option[1]))} (an argument of {option[1]})")
        if choice := re.search(r"Expected a typing\.Literal\[(.*?)\]\. Got value: (.*)", problem, re.S):
            names = choice[1].replace("'", "")
            problem = f"{choice[2].strip()!r} is not one of {names}"
        return ValueError(f"{where(key, layers, args)}: {one_line(problem)}")
    if unrecognized := re.match(r"unrecognized arguments: --([^\s=]+)", message):
        return ValueError(f"{one_line(message)}{nearest(unrecognized[1], keys)}")
    files = ", ".join(dict.fromkeys(str(path) for path, _ in layers))
    return ValueError(f"{files}: {one_line(message)}" if files else one_line(message))


def where(key: str, layers: list[tuple[Path, dict]], args: list[str], inner: str | None = None) -> str:
    """``--key`` when the command line sets ``key``, else ``file:line: key`` of the last config file that sets it
    (the line of ``inner``, a key at any depth under it, when given)."""
    if any(a == f"--{key}" or a.startswith(f"--{key}=") or a.startswith(f"--{key}.") for a in args):
        return f"--{key}"
    for path, config in reversed(layers):
        if has_key(config, key.split(".")):
            return located(path, key, inner)
    return f"--{key}"


def located(path: str | Path, key: str, inner: str | None = None) -> str:
    """``file:line: key`` of a dotted key of a config file (``file: key`` where the line is not found)."""
    line = key_line(path, key, inner)
    return f"{path}:{line}: {key}" if line else f"{path}: {key}"


def has_key(config, parts: list[str]) -> bool:
    for part in parts:
        if not isinstance(config, dict) or part not in config:
            return False
        config = config[part]
    return True


def key_line(path: str | Path, key: str, inner: str | None = None) -> int | None:
    """The line of the dotted ``key`` in a config file (of ``inner`` under it, when given), ``None`` if not there."""
    node = yaml.compose(Path(path).read_text(encoding="utf-8"))
    mark = None
    for part in key.split("."):
        found = next(((k, v) for k, v in getattr(node, "value", []) if isinstance(node, yaml.MappingNode)
                      and k.value == part), None)
        if found is None:
            return None
        mark, node = found[0].start_mark, found[1]
    if inner:
        mark = next((k.start_mark for k in nested_keys(node) if k.value == inner), mark)
    return mark.line + 1 if mark else None


def nested_keys(node):
    """Every key node under a YAML node, depth first."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield from nested_keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from nested_keys(item)


def import_class(class_path: str) -> type:
    """The class a config's ``class_path`` names (``module.Name``), imported as LightningCLI does."""
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def init_parameters(class_path: str) -> list[str]:
    """The argument names of a class's ``__init__``."""
    try:
        return list(inspect.signature(import_class(class_path)).parameters)
    except (ImportError, AttributeError, ValueError, TypeError):
        return []


def nearest(key: str, keys: list[str]) -> str:
    """``; did you mean K?`` with the valid key nearest to ``key``, if one is near."""
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def one_line(text: str) -> str:
    return " ".join(text.split())
