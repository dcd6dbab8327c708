"""The package's layering (refs/design.md, "Layers and who may import whom").

* The sans-IO core (everything below the transport) imports no socket, thread,
  select or clock module: bytes in, bytes and events out.
* No import cycle among rtmp's modules at module level (imports inside functions
  and under ``if TYPE_CHECKING:`` are not module-level and are ignored).
* ``--clause`` (tests/clausetable.py) selects exactly the tests citing a clause.

The imports are read with :mod:`ast`, not by running the modules.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rtmp"

#: The modules below the transport: no sockets, threads, select or clocks.
SANS_IO = (
    "handshake",
    "digest",
    "chunk",
    "control",
    "user_control",
    "message",
    "session",
    "amf0",
    "amf3",
    "amf_types",
    "amf",
    "requests",
    "calls",
    "playback",
    "client_inbox",
    "commands",
    "shared_object",
    "flv",
    "ertmp",
    "flvmeta",
    "record_path",
    "auth",
    "config",
    "_bytes",
    "errors",
    "logs",
    "statuspage",
)

#: Standard modules that do I/O or read a clock.
FORBIDDEN = {"socket", "threading", "select", "selectors", "time", "_thread", "ssl", "asyncio"}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(path: Path) -> List[ast.stmt]:
    """The import statements run when the module is imported (not in functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: List[ast.stmt] = []

    def visit(body: List[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, (ast.With, ast.ClassDef)):
                visit(node.body)

    visit(tree.body)
    return found


def resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    """The absolute module an ``from ... import`` names."""
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(path: Path, known: Set[str]) -> Set[str]:
    """Every module (stdlib or rtmp) the file imports at module level."""
    current = module_name(path)
    is_package = path.name == "__init__.py"
    out: Set[str] = set()
    for node in module_level_imports(path):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
            continue
        assert isinstance(node, ast.ImportFrom)
        target = resolve(node, current, is_package)
        out.add(target)
        for alias in node.names:  # "from . import amf3" imports the module rtmp.amf3
            sub = f"{target}.{alias.name}"
            if sub in known:
                out.add(sub)
    return out


def package_graph() -> Dict[str, Set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    graph: Dict[str, Set[str]] = {}
    for name, path in files.items():
        deps = set()
        for target in imported_modules(path, known):
            # importing rtmp.a.b runs rtmp.a first: the edge goes to each package too,
            # except to this module's own packages (they are always initialised first)
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in known and prefix != name and not name.startswith(prefix + "."):
                    deps.add(prefix)
        graph[name] = deps
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One cycle of the graph as a list of names (first repeated at the end), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {node: WHITE for node in graph}
    stack: List[str] = []

    def dfs(node: str) -> Optional[List[str]]:
        colour[node] = GREY
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if colour.get(dep, BLACK) == GREY:
                return stack[stack.index(dep) :] + [dep]
            if colour.get(dep) == WHITE:
                cycle = dfs(dep)
                if cycle:
                    return cycle
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            cycle = dfs(node)
            if cycle:
                return cycle
    return None


@pytest.mark.parametrize("name", SANS_IO)
def test_sans_io_core_does_no_io(name: str) -> None:
    path = PACKAGE / f"{name}.py"
    assert path.exists(), f"rtmp/{name}.py listed as sans-IO but missing"
    known = {module_name(p) for p in PACKAGE.rglob("*.py")}
    mods = imported_modules(path, known)
    bad = sorted(m for m in mods if m.split(".")[0] in FORBIDDEN)
    assert not bad, f"rtmp/{name}.py is below the transport but imports {bad}"
    # Nor may it import a module that does I/O from inside the package.
    above = sorted(m for m in mods if m.startswith("rtmp.") and m.split(".")[1] not in SANS_IO)
    assert not above, f"rtmp/{name}.py (sans-IO) imports modules above it: {above}"


def test_no_import_cycle_in_rtmp() -> None:
    cycle = find_cycle(package_graph())
    assert cycle is None, "import cycle in rtmp/: " + " -> ".join(cycle or [])


def test_cycle_finder_reports_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert set(cycle) == {"a", "b", "c"}
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_reader_skips_functions_and_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "rtmp"
    pkg.mkdir()
    source = (
        "from typing import TYPE_CHECKING\n"
        "import struct\n"
        "if TYPE_CHECKING:\n    import socket\n"
        "def f():\n    import threading\n"
        "try:\n    import select\nexcept ImportError:\n    pass\n"
    )
    path = pkg / "m.py"
    path.write_text(source)
    names = {getattr(n, "module", None) or n.names[0].name for n in module_level_imports(path)}
    assert names == {"typing", "struct", "select"}


@pytest.mark.parametrize("old, new", [("rtmp.amf0", "rtmp.amf3"), ("rtmp.amf3", "rtmp.amf0")])
def test_amf_modules_import_in_either_order(old: str, new: str) -> None:
    code = f"import {old}, {new}; assert {old}.UNDEFINED is {new}.UNDEFINED"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_shared_amf_names_are_one_object() -> None:
    amf0 = importlib.import_module("rtmp.amf0")
    amf3 = importlib.import_module("rtmp.amf3")
    assert issubclass(amf3.DecodeError, amf0.DecodeError)
    assert amf0.ECMAArray is amf3.ECMAArray and amf0.register_class is amf3.register_class


def _collected(*args: str) -> List[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr
    return [line for line in proc.stdout.splitlines() if "::" in line]


def _cited(nodeid: str) -> Set[str]:
    """The clauses a test in tests/test_amf0.py cites, read from its marks (the oracle)."""
    module = importlib.import_module("tests.test_amf0")
    obj: object = module
    marks = list(getattr(module, "pytestmark", []))
    for part in nodeid.split("[")[0].split("::")[1:]:
        obj = getattr(obj, part)
        marks += list(getattr(obj, "pytestmark", []))
    return {str(arg) for mark in marks if mark.name == "spec" for arg in mark.args}


def test_clause_option_selects_exactly_the_citing_tests() -> None:
    everything = _collected("tests/test_amf0.py")
    chosen = _collected("tests/test_amf0.py", "--clause", "AMF0 2.9")
    expected = [nodeid for nodeid in everything if "AMF0 2.9" in _cited(nodeid)]
    assert expected, "tests/test_amf0.py should cite AMF0 2.9"
    assert len(expected) < len(everything)
    assert chosen == expected


def test_clause_option_rejects_an_unknown_clause() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider",
         "tests/test_amf0.py", "--clause", "RTMP 99.9"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "RTMP 99.9" in proc.stdout + proc.stderr


DESIGN = ROOT / "refs" / "design.md"
_TOKEN = re.compile(r"->|[A-Za-z_][\w.]*")


def layer_table() -> Tuple[Dict[str, int], Set[Tuple[str, str]]]:
    """The picture in refs/design.md ("Layers and who may import whom"): each module's
    layer number, and the arrows (allowed imports inside one layer)."""
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("## Layers and who may import whom", 1)[1]
    block = section.split("```", 2)[1]
    layers: Dict[str, int] = {}
    arrows: Set[Tuple[str, str]] = set()
    current: Optional[int] = None
    last: Optional[str] = None
    for raw in block.splitlines():
        line = re.sub(r"\([^)]*\)", " ", raw)  # "(Limits)", "(-> : imports ...)" are notes
        head = re.match(r"\s*(\d+)\s+\S+\s+(.*)$", line)
        if head:
            current, line = int(head.group(1)), head.group(2)
        elif current is None or not line.startswith("    "):
            continue  # the header line and the sans-IO rule
        # a line that starts with an arrow goes on from the previous line's last module
        previous = last if line.lstrip().startswith("->") else None
        pending_arrow = False
        for token in _TOKEN.findall(line):
            if token == "->":
                pending_arrow = True
                continue
            name = "rtmp" if token == "rtmp" else f"rtmp.{token}"
            layers.setdefault(name, current)
            if pending_arrow and previous is not None:
                arrows.add((previous, name))
            previous, pending_arrow = name, False
        last = previous
    return layers, arrows


def _reachable(start: str, arrows: Set[Tuple[str, str]]) -> Set[str]:
    seen: Set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        for src, dst in arrows:
            if src == node and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    return seen


def test_design_picture_matches_the_imports() -> None:
    layers, arrows = layer_table()
    graph = package_graph()
    missing = sorted(set(graph) - set(layers))
    assert not missing, f"modules missing from refs/design.md's layer picture: {missing}"
    unknown = sorted(set(layers) - set(graph))
    assert not unknown, f"refs/design.md's layer picture names no such modules: {unknown}"
    wrong = []
    for module, deps in graph.items():
        for dep in deps:
            if layers[dep] < layers[module]:
                continue
            if layers[dep] == layers[module] and dep in _reachable(module, arrows):
                continue
            wrong.append(f"{module} (layer {layers[module]}) imports {dep} (layer {layers[dep]})")
    assert not wrong, "imports the layer picture does not allow:\n  " + "\n  ".join(sorted(wrong))


def test_layer_table_reader() -> None:
    layers, arrows = layer_table()
    assert layers["rtmp.errors"] == 0 and layers["rtmp.cli"] == 6
    assert ("rtmp.amf0", "rtmp.amf3") in arrows and ("rtmp.amf3", "rtmp.amf0") not in arrows
    assert "rtmp.message" in _reachable("rtmp.session", arrows)


def foreign_private_attributes(source: str) -> List[Tuple[int, str]]:
    """``other._name`` where ``_name`` is nobody's in this module (no assignment
    ``x._name = ...`` and no ``def``/``class _name`` here), and ``from .other import _name``:
    another module's private names (issue 16: modules use each other's public API)."""
    tree = ast.parse(source)
    own: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            own.add(node.target.id)  # dataclass fields
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)
                and node.attr.startswith("_") and not node.attr.startswith("__")
                and node.attr not in own
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom) and node.level > 0:  # from .other import _x
            found += [(node.lineno, f"from {'.' * node.level}{node.module or ''} import "
                                    f"{alias.name}") for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


#: Private names of other libraries that a module may use (the standard library's own API).
PRIVATE_ALLOWED = {"_value2member_map_"}  # enum.Enum's value index (message.py)


def test_no_module_reaches_into_another_modules_private_attributes() -> None:
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, text in foreign_private_attributes(path.read_text(encoding="utf-8")):
            if text.rpartition(".")[2] not in PRIVATE_ALLOWED:
                offences.append(f"{path.relative_to(ROOT)}:{line}: {text}")
    assert not offences, "\n".join(offences)


def test_private_attribute_reader() -> None:
    source = ("class A:\n    def __init__(self):\n        self._mine = 1\n"
              "def f(a, b):\n    return a._mine, b._theirs, a.public\n"
              "from .other import _hidden, shown\n")
    assert sorted(foreign_private_attributes(source)) == [(5, "b._theirs"),
                                                  (6, "from .other import _hidden")]
