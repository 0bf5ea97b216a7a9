"""The shape of the code: practicum's import graph against the layers `practicum._layers` declares.

The graph is built with `ast` from every `practicum/**/*.py`, imports inside function bodies
included (hiding an import in a function does not make it go away); imports under
`if TYPE_CHECKING:` are left out (they never run).
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from practicum._layers import LAYERS, layer_of, layer_table

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "practicum"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import/ImportFrom node, skipping `if TYPE_CHECKING:` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _lazy_exports(package: str, path: Path) -> dict[str, str]:
    """name → submodule for a package whose `__init__` calls `lazy_exports(__name__, {...})`."""
    where: dict[str, str] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_exports"
                and len(node.args) == 2 and isinstance(node.args[1], ast.Dict)):
            for key, value in zip(node.args[1].keys, node.args[1].values):
                for name in getattr(value, "elts", []):
                    where[name.value] = f"{package}.{key.value}"
    return where


def import_graph() -> dict[str, set[str]]:
    """module → the practicum modules it imports (a `from pkg import name` of a submodule counts
    as importing the submodule; of a lazily exported name, as importing `pkg` and the submodule
    that defines it; of anything else, as importing `pkg`)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    lazy = {name: _lazy_exports(name, path) for name, path in modules.items() if path.name == "__init__.py"}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                candidates = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                              for alias in node.names]
                candidates += [lazy[source][alias.name] for alias in node.names
                               if alias.name in lazy.get(source, {})]
            for target in candidates:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name and target.startswith("practicum"):
                    targets.add(target)
        graph[name] = targets
    return graph


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "practicum"


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_every_module_belongs_to_a_declared_layer_and_every_declared_unit_exists():
    graph = import_graph()
    units = {unit_of(m) for m in graph}
    assert sorted(u for u in units if layer_of(u) is None) == []
    declared = {u for _, layer_units in LAYERS for u in layer_units}
    assert sorted(declared - units) == []
    assert len(declared) == sum(len(layer_units) for _, layer_units in LAYERS)  # each unit once


def test_no_upward_or_sideways_imports():
    wrong = []
    for module, targets in sorted(import_graph().items()):
        here = unit_of(module)
        for target in sorted(targets):
            there = unit_of(target)
            if there != here and layer_of(there) >= layer_of(here):
                wrong.append(f"{module} (layer {layer_of(here)}) imports {target} (layer {layer_of(there)})")
    assert wrong == []


def test_no_import_circles():
    assert _circles(import_graph()) == []


def test_the_checker_sees_circles_and_upward_imports():
    graph = {"practicum.a.x": {"practicum.a.y"}, "practicum.a.y": {"practicum.a.x"}, "practicum.b": set()}
    assert _circles(graph) == [["practicum.a.x", "practicum.a.y"]]
    assert layer_of("learn") < layer_of("diffusion") < layer_of("practice")


def test_docs_architecture_carries_the_declared_layers():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert layer_table() in text


# A function-body import must say why it is not at the top of its module: an optional extra
# (`# optional: practicum[ray]`), the CLI's start-up (only where commands are registered) or a
# heavy library's import cost (`# lazy: sklearn import costs ...`).
_OPTIONAL = re.compile(r"#.*\boptional: practicum\[([\w-]+)\]")
_CLI_START_UP = re.compile(r"#.*\blazy: CLI start-up")
_HEAVY = re.compile(r"#.*\blazy: [\w.]+ import costs \S+")
_CLI_MODULES = ("cli.py", "commands.py", "tracking.py")

def _extras() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"])


def _body_imports(text: str):
    """(line number, imported module, source line) for each import inside a function body."""
    lines = text.splitlines()
    for function in ast.walk(ast.parse(text)):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    yield node.lineno, node.names[0].name, lines[node.lineno - 1]
                elif isinstance(node, ast.ImportFrom):
                    yield node.lineno, node.module or "", lines[node.lineno - 1]


def unexplained_body_imports(relative: str, text: str, extras: set[str]) -> list[str]:
    """The body imports of module `relative` (e.g. practicum/files.py) that give no accepted reason."""
    wrong = []
    for lineno, _, line in _body_imports(text):
        optional = _OPTIONAL.search(line)
        if optional and optional.group(1) in extras:
            continue
        if _CLI_START_UP.search(line) and relative.endswith(_CLI_MODULES):
            continue
        if _HEAVY.search(line):
            continue
        wrong.append(f"{relative}:{lineno}: {line.strip()}")
    return wrong


def test_function_body_imports_say_why_they_are_not_at_the_top():
    extras = _extras()
    wrong = [entry for path in sorted(PACKAGE.rglob("*.py"))
             for entry in unexplained_body_imports(path.relative_to(ROOT).as_posix(),
                                                   path.read_text(encoding="utf-8"), extras)]
    assert wrong == []


def test_the_body_import_rule_catches_a_reasonless_import():
    cases = {
        "    import json\n": False,
        "    from practicum.log import echo  # lazy\n": False,
        "    from practicum.log import echo  # lazy: CLI start-up\n": False,  # not a CLI module
        "    import ray  # optional: practicum[nosuchextra]\n": False,
        "    import ray  # optional: practicum[ray]\n": True,
        "    from sklearn.cluster import KMeans  # lazy: sklearn import costs ~1.5x torch's\n": True,
    }
    for body, allowed in cases.items():
        found = unexplained_body_imports("practicum/engine/probe.py", f"def f():\n{body}", {"ray"})
        assert (found == []) == allowed, body
    assert unexplained_body_imports("practicum/x/commands.py", "def f():\n    import json  # lazy: CLI start-up\n",
                                     set()) == []
