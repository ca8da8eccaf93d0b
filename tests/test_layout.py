"""Dependencies flow one way: a walk over every import in the package (function-level
imports included) finds no cycle and no import against the layer order the README draws."""

import ast
from pathlib import Path

from conftest import REPO

# Lower layers never import higher ones; a layer's packages may import each other only
# without cycles (checked module by module below).
LAYERS = [
    ["salt", "salt.errors", "salt.files", "salt.geometry", "salt.rle", "salt.metric", "salt.settings", "salt.precision", "salt.masks", "salt.rundir"],
    ["salt.data", "salt.synthetic"],
    ["salt.submission"],
    ["salt.mosaic"],
    ["salt.folds"],
    ["salt.models", "salt.losses"],
    ["salt.training"],
    ["salt.prediction"],
    ["salt.prepare", "salt.score", "salt.sweep", "salt.demo", "salt.section"],
]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the salt modules it imports (a name imported from a package counts as the
    package's module when it is one)."""
    modules = {module_name(path): path for path in (REPO / "salt").rglob("*.py")}
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "salt" and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in modules]
                targets = targets or [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.split(".")[0] == "salt"]
            else:
                continue
            graph[name].update(target for target in targets if target in modules and target != name)
    return graph


def layer_of(module: str) -> int:
    """Index of the layer holding `module`'s package (its longest listed prefix)."""
    best = None
    for index, layer in enumerate(LAYERS):
        for package in layer:
            if module == package or module.startswith(package + "."):
                if best is None or len(package) > len(best[1]):
                    best = (index, package)
    assert best is not None, f"{module} is in no layer of tests/test_layout.py: place it"
    return best[0]


def test_no_import_goes_against_the_layer_order():
    against = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if layer_of(target) > layer_of(module) and target != "salt"
    ]
    assert not against, "\n".join(sorted(against))


def test_no_import_cycle():
    graph = import_graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_the_walk_sees_imports_inside_functions():
    # salt.folds.table imports the mosaic cache only inside the function that needs it: the walk
    # must see such imports, or a cycle could hide there.
    assert "salt.mosaic.dataset" in import_graph()["salt.folds.table"]


def test_hydra_entry_points_live_in_command_modules():
    # Library modules are imported by other code; a @hydra.main there would tie them to
    # one config file. Entry points are `__main__` modules or modules of the last layer.
    commands = set(LAYERS[-1])
    misplaced = [
        name
        for name, path in ((module_name(p), p) for p in (REPO / "salt").rglob("*.py"))
        if "@hydra.main" in path.read_text() and not (name.endswith(".__main__") or name in commands)
    ]
    assert not misplaced, f"@hydra.main in library modules: {misplaced}"
