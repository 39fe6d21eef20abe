"""The house rules of the package, read from its source with `ast` (docs/README.md, "Layers").

Imports inside functions count, relative imports are resolved, and a name imported from a
package resolves to the submodule of that name when there is one. Fails on a file-level import
cycle, an import against the layers, a file over 800 lines, a function over 150 lines, a private
name imported across packages, and a lazily exported name that type checkers cannot see.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import vermilion

ROOT = Path(vermilion.__file__).parent
PACKAGE = "vermilion"

#: Which of our packages each may import (besides itself and the `_lazy` helper).
ALLOWED = {
    "core": set(),
    "io": {"core"},
    "sim": {"core"},
    "detect": {"core", "io"},
    "repo": {"core", "io", "detect"},
    "pipeline": {"core", "io", "detect", "repo", "sim"},
    "display": {"core"},
    "data": set(),
}
#: Importable by every module.
SHARED = {"_lazy"}
MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 150


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``)."""
    mods = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        mods[".".join(parts)] = (path, is_pkg)
    return mods


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, (path, _) in MODULES.items()}


def _targets(module: str, is_pkg: bool, node: ast.Import | ast.ImportFrom) -> list[tuple[str, str]]:
    """``(imported module, imported name or "")`` of one import statement, ours only.

    A name that is a submodule (``from . import plot``) is the submodule; a module that is
    not a ``.py`` file (the compiled ``vermilion.core._operators``) is skipped.
    """
    if isinstance(node, ast.Import):
        return [(a.name, "") for a in node.names if a.name.split(".")[0] == PACKAGE]
    if node.level:
        base = module.split(".") if is_pkg else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    if prefix.split(".")[0] != PACKAGE:
        return []
    out = []
    for alias in node.names:
        sub = f"{prefix}.{alias.name}"
        if sub in MODULES:
            out.append((sub, ""))
        elif not _compiled(sub):
            out.append((prefix, alias.name))
    return out


def _compiled(module: str) -> bool:
    """Whether ``module`` is a compiled extension of ours (``vermilion.core._operators``)."""
    *parents, name = module.split(".")
    folder = ROOT.parent.joinpath(*parents)
    return any(folder.glob(f"{name}.*.so")) or any(folder.glob(f"{name}.*.pyd"))


def _resolve(target: str) -> str | None:
    """The module of ours that ``target`` names (its nearest existing parent)."""
    while target not in MODULES and "." in target:
        target = target.rsplit(".", 1)[0]
    return target if target in MODULES else None


def _imports() -> dict[str, set[tuple[str, str, int]]]:
    """Module -> ``{(imported module, imported name, line)}``, every import statement."""
    graph = {}
    for module, (_, is_pkg) in MODULES.items():
        edges = set()
        for node in ast.walk(TREES[module]):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target, name in _targets(module, is_pkg, node):
                    resolved = _resolve(target)
                    if resolved is not None and resolved != module:
                        edges.add((resolved, name, node.lineno))
        graph[module] = edges
    return graph


IMPORTS = _imports()


def _package(module: str) -> str:
    """``core``, ``io``, ...; ``(top)`` for ``vermilion``, ``demo``, ``cli`` and the like."""
    parts = module.split(".")
    if len(parts) > 1 and (ROOT / parts[1]).is_dir():
        return parts[1]
    if len(parts) > 1 and parts[1] in SHARED:
        return parts[1]
    return "(top)"


def _cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph = {m: {t for t, _, _ in edges} for m, edges in IMPORTS.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# ---- the graph builder itself ----------------------------------------------------------------


def test_the_graph_sees_imports_inside_functions_and_relative_imports():
    edges = {t for t, _, _ in IMPORTS["vermilion.cli"]}
    # cli imports the demo only inside a function, relatively (from .demo import run_demo)
    assert "vermilion.demo" in edges
    assert "vermilion.core.blend" in {t for t, _, _ in IMPORTS["vermilion.core"]}
    # a name imported from a package that is a submodule resolves to it
    assert "vermilion.display.views" in {t for t, _, _ in IMPORTS["vermilion.display.plot"]}
    # the compiled extension is not a module of the graph
    assert not any("_operators" in m for m in MODULES)


# ---- cycles ---------------------------------------------------------------------------------


def test_no_import_cycle():
    assert _cycles() == []


# ---- layers ---------------------------------------------------------------------------------


def _layer_breaks() -> list[str]:
    out = []
    for module, edges in IMPORTS.items():
        src = _package(module)
        if src not in ALLOWED:
            continue
        for target, _, line in sorted(edges):
            dst = _package(target)
            if dst != src and dst not in SHARED and dst not in ALLOWED[src]:
                out.append(f"{module}:{line} ({src}) imports {target} ({dst})")
    return out


def test_layers():
    assert _layer_breaks() == []


def test_layer_check_catches_a_break():
    # the check is live: the top level imports every package, and display may not
    assert _package("vermilion.display.plot") == "display"
    assert "pipeline" not in ALLOWED["display"] and "core" in ALLOWED["pipeline"]
    assert _package("vermilion.demo") == "(top)" and _package("vermilion._lazy") == "_lazy"


# ---- sizes ----------------------------------------------------------------------------------


def _big_files() -> list[str]:
    return [
        f"{m}: {n} lines"
        for m, (path, _) in MODULES.items()
        if (n := len(path.read_text().splitlines())) > MAX_FILE_LINES
    ]


def _big_functions() -> list[str]:
    out = []
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.append(f"{module}.{node.name}: {n} lines")
    return out


def test_file_sizes():
    assert _big_files() == []


def test_function_sizes():
    assert _big_functions() == []


# ---- private names --------------------------------------------------------------------------


def _private_imports(keep, across: str) -> list[str]:
    """Private names imported from another package (``across="package"``) or file.

    ``keep(module, target)`` selects the imports looked at.
    """
    out = []
    for module, edges in IMPORTS.items():
        for target, name, line in sorted(edges):
            if not keep(module, target):
                continue
            other = _package(target) != _package(module)
            if across == "file":
                other = target != module
            if name.startswith("_") and not name.startswith("__") and other:
                out.append(f"{module}:{line} imports {target}.{name}")
            tail = target.rsplit(".", 1)[-1]
            if across == "package" and other and tail.startswith("_") and tail != "_lazy":
                if not tail.startswith("__"):
                    out.append(f"{module}:{line} imports the private module {target}")
    return out


def test_no_private_name_imported_across_packages():
    assert _private_imports(lambda module, target: True, "package") == []


def test_no_private_name_imported_across_files_of_display():
    in_display = lambda module, target: _package(module) == "display"  # noqa: E731
    assert _private_imports(in_display, "file") == []


# ---- lazy exports ---------------------------------------------------------------------------


def _lazy_packages() -> list[str]:
    """Packages whose ``__init__`` exports names with `vermilion._lazy.lazy_exports`."""
    out = []
    for module, (_, is_pkg) in MODULES.items():
        calls = [
            n
            for n in ast.walk(TREES[module])
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "lazy_exports"
        ]
        if calls:
            assert is_pkg, f"{module} uses lazy_exports but is not a package"
            out.append(module)
    return out


LAZY_PACKAGES = _lazy_packages()


def _type_checking_imports(module: str) -> dict[str, set[str]]:
    """Submodule (relative, dotted) -> names imported under ``if TYPE_CHECKING:``."""
    out: dict[str, set[str]] = {}
    for node in TREES[module].body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.level == 1, ast.dump(stmt)
                out.setdefault(stmt.module, set()).update(a.name for a in stmt.names)
    return out


def test_every_lazy_package_is_found():
    assert set(LAZY_PACKAGES) >= {
        "vermilion",
        "vermilion.detect",
        "vermilion.pipeline",
        "vermilion.repo",
    }


def test_one_lazy_export_mechanism():
    # no module but vermilion._lazy writes a module-level __getattr__ of its own
    own = [
        m
        for m, tree in TREES.items()
        if m != "vermilion._lazy"
        and any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)
    ]
    assert own == []


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_lazy_names_are_visible_to_type_checkers(name):
    package = importlib.import_module(name)
    exports = {module: set(names) for module, names in package._EXPORTS.items()}
    assert _type_checking_imports(name) == exports
    lazy = set().union(*exports.values())
    assert lazy <= set(package.__all__)
    assert lazy <= set(dir(package))
    for module, names in exports.items():
        source = importlib.import_module(f"{name}.{module}")
        for attr in names:
            assert getattr(package, attr) is getattr(source, attr), f"{name}.{attr}"
    for attr in package.__all__:
        getattr(package, attr)


# ---- core's documentation -------------------------------------------------------------------


def _own_nodes(function: ast.FunctionDef):
    """The nodes of a function's body, not those of functions or classes defined in it."""
    stack = list(function.body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))


def _undocumented(tree: ast.Module, module: str) -> list[str]:
    out = []

    def visit(body, owner: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                visit(node.body, f"{owner}.{node.name}")
            elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                decorators = {getattr(d, "id", getattr(d, "attr", "")) for d in node.decorator_list}
                if "setter" in decorators:
                    continue
                where = f"{owner}.{node.name}"
                doc = ast.get_docstring(node) or ""
                if not doc:
                    out.append(f"{where}: no docstring")
                    continue
                if decorators & {"property", "cached_property"}:
                    continue
                args = node.args
                takes = [a.arg for a in args.args + args.kwonlyargs if a.arg not in ("self", "cls")]
                if (takes or args.vararg or args.kwarg) and "Parameters\n----------" not in doc:
                    out.append(f"{where}: no Parameters section")
                gives = any(
                    isinstance(n, ast.Return)
                    and n.value is not None
                    and not (isinstance(n.value, ast.Constant) and n.value.value is None)
                    for n in _own_nodes(node)
                )
                if gives and "Returns\n-------" not in doc and "Yields\n------" not in doc:
                    out.append(f"{where}: no Returns section")

    visit(tree.body, module)
    return out


def test_core_public_functions_and_properties_are_documented():
    missing = []
    for module, tree in TREES.items():
        if _package(module) == "core":
            missing += _undocumented(tree, module)
    assert missing == []
