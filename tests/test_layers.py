"""The package's layers: every import points down, and no import circle exists, lazy imports included.

Read from the source with `ast`, so an import inside a function counts as much as one at the top.
The layers are documented in docs/design/layout.md; a module added to the package must be placed
in `LAYERS` here.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "recipes"

# Each module or package of `recipes`, by layer, lowest first. A module imports from its own layer
# (without a circle: `test_no_import_circle`) and from the layers below, never from one above.
LAYERS = [
    # leaves: no recipe knowledge
    ["_atomic", "_checks", "_home", "_log", "_optional", "errors", "plots", "quality", "spec"],
    # the model families (register with `spec`), the data, the devices, the processes of a job
    ["models", "datasets", "_tf_devices", "_hardware_plan", "hardware", "job", "_inputs"],
    # name -> recipe (loads the families on first use)
    ["registry"],
    # settings; what raw inputs go through; fit()-time behaviour; starting a local job
    ["config", "preprocessing", "callbacks", "launch"],
    # a recipe matched to its data; the run directory
    ["recipe", "run_directory"],
    # the judge of generated samples, and its use in a run
    ["judge"],
    # one run; what a finished run is used for
    ["run", "trained"],
    # the command
    ["commands"],
    ["cli"],
]
# Names kept for one release that re-export the moved modules, and the package's lazy facade:
# nothing in the package may import them.
SHIMS = ["__init__", "training", "runs", "rundir", "run_judge", "distributed", "multiprocess", "predict", "export"]


def _modules():
    """`{dotted name: path}` of every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("recipes", *path.relative_to(PACKAGE).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name, path, modules):
    """The package's modules that `name` imports, each with whether the import is inside a function."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    lazy_nodes = {
        id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("recipes") and target != name:
                found.append((target, id(node) in lazy_nodes))
    return found


def _component(module):
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _layer(module):
    component = _component(module)
    for i, layer in enumerate(LAYERS):
        if component in layer:
            return i
    return None


MODULES = _modules()
GRAPH = {name: _imports(name, path, MODULES) for name, path in MODULES.items()}


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in MODULES if _layer(m) is None and _component(m) not in SHIMS)
    assert unplaced == [], f"place these modules in a layer of LAYERS: {unplaced}"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if _component(m) not in SHIMS))
def test_imports_point_down(name):
    upward = []
    for target, lazy in GRAPH[name]:
        if _component(target) in SHIMS:
            upward.append(f"{target} (a re-export kept for one release: import the module it names)")
        elif _layer(target) > _layer(name):
            upward.append(f"{target}{' (inside a function)' if lazy else ''}")
    assert upward == [], f"{name} imports from a layer above its own: {upward}"


def test_no_import_circle():
    """Tarjan's strongly connected components over every import, a package's `__init__` included."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _ in GRAPH.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert circles == []


def test_the_shims_still_give_the_old_names():
    from recipes import distributed, job, multiprocess, predict, run_directory, rundir, runs, training
    from recipes.run import data_parallel
    from recipes.trained import TrainedRun

    assert distributed is job and rundir is run_directory and multiprocess is data_parallel
    assert predict.Run is TrainedRun
    assert callable(training.train) and callable(training.prepare) and callable(runs.evaluate)
