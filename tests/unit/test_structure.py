"""The library's shape: its layers and who may import whom, what each may import at top level, no import circles
among imagepipe's modules (imports inside functions count: they run too, only later), and no module too long to read
as one concern.

    core      imagepipe.* (all but the two below): may import the core only; at top level the standard library and
              the core only (torch, pyspark, boto3, pandas inside functions), so a DAG file may import any of it
    airflow   imagepipe.airflow.*: may import the core and the Airflow layer; at top level Airflow and its web stack,
              never the heavy libraries
    dev       imagepipe.dev.*: may import the core and the dev layer; at top level the standard library and the core
    DAG files dags/*.py: may import the core and the Airflow layer, nothing heavy at top level
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import imagepipe

PACKAGE = Path(imagepipe.__file__).parent
MAX_LINES = 350


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, tree: ast.AST) -> set[str]:
    """The imagepipe modules a module imports, at its top or anywhere below (a name imported from a package is the
    package's submodule when there is one, else the package itself)."""
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names)
    return {module for module in found if module in MODULES and module != name}


def import_graph() -> dict[str, set[str]]:
    return {name: imported(name, ast.parse(path.read_text(), str(path))) for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as the modules along it (the first repeated at the end), or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once every path from it is explored

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [module])):
            return cycle
    return None


def test_no_import_circle_among_the_librarys_modules():
    cycle = find_cycle(import_graph())

    assert cycle is None, f"import circle: {' -> '.join(cycle)}"


def test_the_circle_finder_names_a_circle_it_is_shown():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}

    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_inside_functions_and_from_packages_are_edges():
    graph = import_graph()

    assert "imagepipe.registry" in graph["imagepipe.airflow.run_steps"]  # imported inside a function
    assert "imagepipe.registry.champion" in graph["imagepipe.registry"]  # a package's own submodule


LAYERS = {"core": {"core"}, "airflow": {"core", "airflow"}, "dev": {"core", "dev"}, "dags": {"core", "airflow"}}
HEAVY = {"torch", "torchvision", "timm", "pyspark", "boto3", "botocore", "pandas", "numpy", "pyarrow", "pyiceberg",
         "matplotlib", "PIL", "sklearn"}
# Third-party packages a layer may import at top level (the standard library and imagepipe always).
TOP_LEVEL = {"core": set(), "dev": set(), "airflow": {"airflow", "fastapi", "starlette", "jinja2", "psutil"},
             "dags": {"airflow"}}
# Modules that only run in the processes TorchDistributor starts (imported inside its training function): torch at
# their top is what they are for.
TORCH_PROCESS_ONLY = {"imagepipe.finetune.data", "imagepipe.finetune.model", "imagepipe.finetune.train"}
DAG_FILES = sorted((PACKAGE.parents[1] / "dags").glob("*.py"))


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("airflow", "dev") else "core"


def layer_violations(graph: dict[str, set[str]], layer=layer_of) -> list[str]:
    """Each import of a module from a layer its importer may not import, as 'importer (layer) -> imported (layer)'."""
    return sorted(f"{module} ({layer(module)}) -> {target} ({layer(target)})"
                  for module, targets in graph.items() for target in targets
                  if layer(target) not in LAYERS[layer(module)])


def top_level_imports(tree: ast.Module) -> set[str]:
    """The top-level packages a module imports at its top (not inside functions, nor under TYPE_CHECKING)."""
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module.split(".")[0])
    return found - {"__future__"}


def top_level_violations(name: str, layer: str, tree: ast.Module) -> list[str]:
    """The top-level imports the layer does not allow: a heavy library anywhere, or a package not on its list."""
    allowed = set(sys.stdlib_module_names) | {"imagepipe"} | TOP_LEVEL[layer]
    if name in TORCH_PROCESS_ONLY:
        allowed |= {"torch"}
    return sorted(f"{name}: {package}" for package in top_level_imports(tree)
                  if package not in allowed or (package in HEAVY and name not in TORCH_PROCESS_ONLY))


def dag_file_graph() -> dict[str, set[str]]:
    graph = {}
    for path in DAG_FILES:
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("imagepipe"):
                found.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                             for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name.startswith("imagepipe"))
        graph[f"dags.{path.stem}"] = found
    return graph


def test_each_layer_imports_only_the_layers_below_it():
    graph = import_graph()

    assert layer_violations(graph) == []
    assert layer_violations(dag_file_graph(), lambda name: "dags" if name.startswith("dags.") else layer_of(name)) == []
    # Every layer is there and used: a check over an empty layer would pass for nothing.
    assert {layer_of(name) for name in graph} == {"core", "airflow", "dev"}


def test_the_core_never_imports_airflow_even_inside_a_function():
    found = sorted(name for name, path in MODULES.items() if layer_of(name) == "core" and any(
        isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (getattr(node, "module", None) or alias.name).split(".")[0] == "airflow" for alias in node.names)
        for node in ast.walk(ast.parse(path.read_text()))))

    assert found == []  # the trigger forms' Params, the operators, the task callables: imagepipe.airflow


def test_a_layer_violation_is_named_importer_and_imported():
    graph = {"imagepipe.lake": {"imagepipe.airflow.assets"}, "imagepipe.dev.sample_data": {"imagepipe.images"},
             "imagepipe.airflow.assets": {"imagepipe.lake"}, "imagepipe.dev.embedded_s3": {"imagepipe.airflow.ui"}}

    assert layer_violations(graph) == ["imagepipe.dev.embedded_s3 (dev) -> imagepipe.airflow.ui (airflow)",
                                       "imagepipe.lake (core) -> imagepipe.airflow.assets (airflow)"]


def test_no_module_imports_at_top_level_what_its_layer_may_not():
    found = [violation for name, path in MODULES.items()
             for violation in top_level_violations(name, layer_of(name), ast.parse(path.read_text()))]
    found += [violation for path in DAG_FILES
              for violation in top_level_violations(f"dags.{path.stem}", "dags", ast.parse(path.read_text()))]

    assert found == []


def test_a_heavy_top_level_import_in_the_core_or_a_dag_file_is_named():
    source = ast.parse("from __future__ import annotations\nimport json\nimport torch\nfrom pyspark.sql import F\n"
                       "from airflow.sdk import DAG\nfrom imagepipe import lake\n\ndef f():\n    import pandas\n")

    assert top_level_violations("imagepipe.lake", "core", source) == [
        "imagepipe.lake: airflow", "imagepipe.lake: pyspark", "imagepipe.lake: torch"]
    assert top_level_violations("dags.pipeline", "dags", source) == ["dags.pipeline: pyspark", "dags.pipeline: torch"]
    assert top_level_violations("imagepipe.finetune.train", "core", source) == [
        "imagepipe.finetune.train: airflow", "imagepipe.finetune.train: pyspark"]


def test_no_library_module_is_longer_than_the_limit():
    long = {name: lines for name, path in MODULES.items() if (lines := len(path.read_text().splitlines())) > MAX_LINES}

    assert long == {}, f"modules over {MAX_LINES} lines, to split by concern: {long}"
