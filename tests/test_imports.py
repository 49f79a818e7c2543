"""The package's layers: no module imports a module of a layer above it.

Imports are read from the source (module level and inside functions, but not under ``if TYPE_CHECKING``),
so a function-local import that hides a cycle counts as much as one at the top.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "genomatt"

# Lowest first. A module may import modules of its own layer and of lower layers, never of a higher one;
# a package (genomatt.motifs) counts as one unit with all its modules.
LAYERS = [
    ["genomatt", "genomatt.errors"],
    ["genomatt.atomic", "genomatt.progress", "genomatt.device", "genomatt.threads", "genomatt.shuffle",
     "genomatt.intervals", "genomatt.inputs", "genomatt.fasta", "genomatt.genome", "genomatt.store"],
    ["genomatt.contributions", "genomatt.task_regions", "genomatt.tracks"],
    ["genomatt.models", "genomatt.motifs", "genomatt.simulation_settings"],
    ["genomatt.attribution", "genomatt.simulate"],
    ["genomatt.report", "genomatt.preflight"],
    ["genomatt.cli"],
]


def module_names() -> dict[str, Path]:
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def unit_of(module: str) -> str:
    """The entry of ``LAYERS`` that ``module`` belongs to: itself, or the package that holds it."""
    listed = {name for layer in LAYERS for name in layer}
    candidates = [name for name in listed if module == name or (name != "genomatt" and module.startswith(name + "."))]
    if not candidates:
        raise AssertionError(f"module {module} has no layer: add it (or its package) to LAYERS in {__file__}")
    return max(candidates, key=len)


def layer_of(module: str) -> int:
    unit = unit_of(module)
    return next(index for index, layer in enumerate(LAYERS) if unit in layer)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(path: Path, module: str, known: set[str]) -> set[str]:
    """genomatt modules that ``module`` (source ``path``) imports when it runs."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return {name for name in found if name in known and name != module}


MODULES = module_names()


def unit_graph() -> dict[str, set[str]]:
    """Unit of ``LAYERS`` → the other units its modules import."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        imported = {unit_of(name) for name in imported_modules(path, module, set(MODULES))}
        graph.setdefault(unit_of(module), set()).update(imported - {unit_of(module)})
    return graph


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module):
    layer = layer_of(module)
    above = sorted(name for name in imported_modules(MODULES[module], module, set(MODULES)) if layer_of(name) > layer)
    assert not above, f"{module} (layer {LAYERS[layer]}) imports {above}, of a higher layer"


def test_no_import_cycle_between_modules_and_packages():
    graph = unit_graph()
    done: set[str] = set()

    def visit(unit: str, path: list[str]) -> None:
        if unit in path:
            cycle = path[path.index(unit):] + [unit]
            raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
        if unit in done:
            return
        for other in sorted(graph.get(unit, ())):
            visit(other, path + [unit])
        done.add(unit)

    for unit in sorted(graph):
        visit(unit, [])


def test_the_check_sees_function_local_imports(tmp_path):
    source = tmp_path / "tracks.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import genomatt.cli.main\n"
                      "def f():\n    from genomatt.motifs.hits import call_hits\n")
    assert imported_modules(source, "genomatt.tracks", set(MODULES)) == {"genomatt.motifs.hits"}


@pytest.mark.parametrize("package", ["genomatt.attribution", "genomatt.models", "genomatt.motifs"])
def test_a_packages_names_load_their_modules_on_first_use(package):
    code = (f"import sys, {package} as package\n"
            "assert 'torch' not in sys.modules, 'importing the package loaded torch'\n"
            "missing = [name for name in package.__all__ if getattr(package, name) is None]\n"
            "assert not missing, missing\n")
    subprocess.run([sys.executable, "-c", code], check=True)
