"""refs/design.md stays true: its import table is what the modules import, and the sans-IO
core imports no socket, thread, selector or clock module.

Both are read from the source with ``ast`` (nothing is imported), so a new import that breaks
the layering, or a table row that was not updated, fails here with the difference.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, Set

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rtmp"
DESIGN = ROOT / "refs" / "design.md"

#: The modules refs/design.md and the README call sans-IO.
SANS_IO = ["handshake", "digest", "chunk", "control", "user_control", "session", "message",
           "amf0", "amf3", "amf", "commands", "flv", "auth", "trace", "url", "_bytes", "errors"]
IO_MODULES = {"socket", "ssl", "select", "selectors", "threading", "time", "asyncio"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return "rtmp" if parts == ("__init__",) else ".".join(p for p in parts if p != "__init__")


def actual_imports() -> Dict[str, Set[str]]:
    """Module -> the package modules it imports (relative imports, at any depth)."""
    graph: Dict[str, Set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        package = path.relative_to(PACKAGE).parent.parts
        deps: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = list(package[: len(package) - node.level + 1])
                if node.module:
                    deps.add(".".join(base + [node.module]))
                else:
                    deps.update(".".join(base + [alias.name]) for alias in node.names)
        graph[name] = {d for d in deps if d and d != name}
    return graph


def documented_imports() -> Dict[str, Set[str]]:
    """The ``| module | imports |`` table of refs/design.md, one entry per module named."""
    table: Dict[str, Set[str]] = {}
    for line in DESIGN.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| (`[^|]+`) \| (.+) \|$", line)
        if not match or match.group(1).startswith("`rtmp`"):
            continue
        modules = re.findall(r"`([\w.]+)`", match.group(1))
        deps = set(re.findall(r"`([\w.]+)`", match.group(2)))
        for module in modules:
            table[module] = deps
    return table


def test_import_table_matches_the_code() -> None:
    actual = actual_imports()
    documented = documented_imports()
    assert len(documented) > 20, "the import table of refs/design.md was not found"
    wrong = []
    for module, deps in sorted(actual.items()):
        if module in ("rtmp", "__main__", "conformance"):
            continue  # the package (lazy names), the entry point, the probe's re-exports
        want = deps - {"__version__"}
        said = documented.get(module, {"(missing)"}) - {"__version__"}
        if said != want:
            wrong.append(f"{module}: design.md says {sorted(said)}, the code imports {sorted(want)}")
    assert not wrong, "refs/design.md's import table is out of date:\n  " + "\n  ".join(wrong)


def test_sans_io_core_has_no_io_imports() -> None:
    offenders = {}
    for name in SANS_IO:
        tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
        used = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                used.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                used.add(node.module.split(".")[0])
        if used & IO_MODULES:
            offenders[name] = sorted(used & IO_MODULES)
    assert not offenders, f"sans-IO modules import I/O or clock modules: {offenders}"
