"""The packages form layers, and every import points down.

``telephony`` (bottom) < ``board`` < ``firmware`` < ``web`` (top): a module
may import its own package and those below it, never one above. The one
exception is the firmware's composition root: the ``linekeeper`` command and
the configuration export start and fill the web UI (:data:`WIRING`). And no
import inside a function may dodge a cycle: if module B imports A (directly
or through other modules, at import time), A may not import B at all.
The imports are read from the source with :mod:`ast`, so nothing is run.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = ("telephony", "board", "firmware", "web")
#: Modules that wire the layers together and so may reach above their own.
WIRING = {"firmware.cli": {"web"}, "firmware.configio": {"web"}, "firmware.archive.cli": {"web"}}


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules():
    """``{module name: path}`` of every Python module of the four packages."""
    out = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            out[module_name(path)] = path
    return out


def _resolve(node, module, is_package, modules):
    """The project modules an ``import``/``from ... import`` statement loads."""
    targets = []
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = module.split(".")
            if not is_package:
                parts = parts[:-1]
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([base] if base else []))
        targets = [base]
        targets += [base + "." + alias.name for alias in node.names if base + "." + alias.name in modules]
    loaded = set()
    ancestors = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            # importing a.b.c runs a and a.b too, except those already running: the
            # packages the importing module is in
            implicit = i < len(parts)
            if name in modules and not (implicit and name in ancestors):
                loaded.add(name)
    return loaded


def _imports_of(tree, name, is_package, modules):
    """``[(imported module, line, at import time?)]`` of one parsed module."""
    found = []
    todo = [(tree, False)]
    while todo:
        node, in_function = todo.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _resolve(child, name, is_package, modules):
                    if target != name:
                        found.append((target, child.lineno, not in_function))
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            todo.append((child, nested))
    return found


def imports(modules):
    """``{module: [(imported module, line, at import time?)]}``."""
    return {
        name: _imports_of(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py", modules)
        for name, path in modules.items()
    }


@pytest.fixture(scope="module")
def graph():
    modules = project_modules()
    return modules, imports(modules)


def test_every_package_is_walked(graph):
    modules, _ = graph
    assert {m.split(".")[0] for m in modules} == set(LAYERS)
    assert "board.sim.scenario" in modules and "telephony.countries" in modules


def test_imports_point_down(graph):
    modules, edges = graph
    wrong = []
    for name, found in edges.items():
        layer = LAYERS.index(name.split(".")[0])
        for target, line, _ in found:
            top = target.split(".")[0]
            if LAYERS.index(top) > layer and top not in WIRING.get(name, ()):
                wrong.append("%s:%d: %s imports %s" % (modules[name].relative_to(ROOT), line, name, target))
    assert wrong == []


def test_no_import_in_a_function_dodges_a_cycle(graph):
    modules, edges = graph
    at_import = {name: {t for t, _, top in found if top} for name, found in edges.items()}

    def reaches(start, goal):
        seen, todo = set(), [start]
        while todo:
            current = todo.pop()
            if current == goal:
                return True
            if current not in seen:
                seen.add(current)
                todo.extend(at_import.get(current, ()))
        return False

    dodges = []
    for name, found in edges.items():
        for target, line, top in found:
            if not top and reaches(target, name):
                dodges.append(
                    "%s:%d: %s imports %s in a function; %s imports it back"
                    % (modules[name].relative_to(ROOT), line, name, target, target)
                )
    assert dodges == []


def test_the_walk_finds_what_it_looks_for(tmp_path):
    # The checks above must be able to fail: a synthetic lazy cycle and an upward import.
    source = {
        "firmware.a": "import firmware.b\n",
        "firmware.b": "def f():\n    from firmware import a\n",
        "board.c": "from firmware.errors import ConfigError\n",
    }
    modules = {name: tmp_path / (name.replace(".", "_") + ".py") for name in source}
    modules["firmware"] = tmp_path / "__init__.py"
    modules["firmware"].write_text("")
    for name, text in source.items():
        modules[name].write_text(text)
    edges = imports(modules)
    assert ("firmware.a", 2, False) in edges["firmware.b"]
    assert ("firmware.b", 1, True) in edges["firmware.a"]
    assert any(t == "firmware" for t, _, _ in edges["board.c"])
