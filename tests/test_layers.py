"""The import graph of classit: no circle, and no module imports a higher layer."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "classit"
# lowest first: shared helpers, data, exports, the model, training, evaluation, studies, the command line
LAYERS = [("classit.files", "classit.config_files", "classit.optim", "classit.checkpoint_io", "classit.lightning_state",
           "classit.runtime", "classit.decoder", "classit.layout"),
          ("classit.data",), ("classit.export",), ("classit.model",), ("classit.train",), ("classit.eval",),
          ("classit.dynamics",), ("classit.study",), ("classit.cli",)]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every classit module and the classit modules it imports (at the top or inside functions)."""
    names = {module_name(p) for p in PACKAGE.rglob("*.py")}
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("classit"):
                found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in names else node.module
                          for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("classit")}
        graph[module_name(path)] = found - {"classit"}
    return graph


def layer(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def test_no_module_imports_a_higher_layer():
    upward = [f"{m} imports {i}" for m, found in imports().items() if m != "classit" for i in found
              if layer(i) > layer(m)]
    assert not upward


def test_the_import_graph_has_no_circle():
    graph, state, circles = imports(), {}, []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for other in sorted(graph.get(module, ())):
            if state.get(other) == "open":
                circles.append(" -> ".join(path[path.index(other):] + [other]))
            elif other not in state:
                visit(other, path + [other])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles


def test_the_checker_sees_an_upward_import():
    assert layer("classit.data.plan") < layer("classit.train.callbacks") < layer("classit.cli")
    assert "classit.data.plan" in imports()["classit.train.callbacks"]
