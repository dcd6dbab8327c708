"""The documentation in docs/ builds from the docstrings without a single warning.

The same build as ``tox -e docs`` (``sphinx-build -W --keep-going``), into a temporary
directory: a docstring whose reST is broken, a page that names a module that moved, or a
cross-reference that does not resolve fails the suite, not only the docs job.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("sphinx", reason="sphinx is not installed (pip install -e .[docs])")


@pytest.mark.slow
def test_sphinx_build_has_no_warnings(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout}\n{result.stderr}"
    assert "WARNING" not in result.stderr, result.stderr
    pages = {p.name for p in (tmp_path / "html" / "api").glob("*.html")}
    assert {"client-server.html", "wire.html", "amf-commands.html"} <= pages
    tour = (tmp_path / "html" / "tour.html").read_text(encoding="utf-8")
    assert "RTMP 5.2" in tour


def _defined_tests(path: Path) -> set:
    """``Class::test`` and ``test`` names defined in one test file (read, not imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(f"{node.name}::{item.name}" for item in node.body
                         if isinstance(item, ast.FunctionDef))
    return names


def test_every_test_the_docs_cite_exists() -> None:
    """The tour and refs/ name tests as ``tests/file.py::Class::test``; each must exist."""
    cited = set()
    for doc in [ROOT / "docs" / "tour.rst", ROOT / "README.md", *(ROOT / "refs").glob("*.md")]:
        if doc.name == "clause-tests.md":  # generated from the collected tests themselves
            continue
        cited.update(re.findall(r"(tests/[\w/]+\.py)::([\w:]+)", doc.read_text(encoding="utf-8")))
    assert cited, "no test citations found: the pattern or the docs moved"
    missing = [f"{file}::{name}" for file, name in sorted(cited)
               if not (ROOT / file).exists() or name not in _defined_tests(ROOT / file)]
    assert not missing, "docs cite tests that do not exist:\n  " + "\n  ".join(missing)
