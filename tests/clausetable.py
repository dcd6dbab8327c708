"""Pytest plugin: the clause-to-test table built from ``@pytest.mark.spec`` markers.

* Every clause named by a marker must be listed in ``refs/clauses.txt`` (a typo
  such as "RTMP 5.3.1.1.4" fails collection).
* ``--clause-table=write`` regenerates ``refs/clause-tests.md``;
  ``--clause-table=check`` (``tox -e trace``) fails when the committed table is stale.
* ``--clause "RTMP 7.2.2.8"`` (repeatable) runs exactly the tests whose spec markers
  cite that clause (an ``[impl: ...]`` suffix on a marker still matches); the others
  are deselected.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLAUSES_FILE = ROOT / "refs" / "clauses.txt"
TABLE_FILE = ROOT / "refs" / "clause-tests.md"
_IMPL_SUFFIX = re.compile(r"\s*\[impl[^\]]*\]\s*$")

#: Clauses whose text states a rule an implementation must follow (the table lists
#: the ones of these with no test).
NORMATIVE_PREFIXES = ("RTMP 5.", "RTMP 6.", "RTMP 7.", "AMF0 2.", "AMF0 3.", "AMF3 1.3", "AMF3 3.")


def known_clauses() -> List[str]:
    lines = CLAUSES_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def base_clause(clause: str) -> str:
    """``"RTMP 5.3.1.3 [impl: nginx-rtmp]"`` -> ``"RTMP 5.3.1.3"``."""
    return _IMPL_SUFFIX.sub("", clause)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clause-table",
        choices=("write", "check"),
        default=None,
        help="write or check refs/clause-tests.md from the spec markers",
    )
    parser.addoption(
        "--clause",
        action="append",
        default=[],
        metavar="CLAUSE",
        help='run only the tests citing this clause, e.g. --clause "RTMP 7.2.2.8" (repeatable)',
    )


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: List[pytest.Item]
) -> None:
    known = set(known_clauses())
    by_clause: Dict[str, Set[str]] = defaultdict(set)
    bad: List[str] = []
    for item in items:
        for marker in item.iter_markers("spec"):
            if not marker.args:
                bad.append(f"{item.nodeid}: spec marker without a clause")
            for clause in marker.args:
                if base_clause(clause) not in known:
                    bad.append(f"{item.nodeid}: unknown clause {clause!r}")
                by_clause[base_clause(clause)].add(item.nodeid.split("[")[0])
    if bad:
        raise pytest.UsageError(
            "spec markers name clauses missing from refs/clauses.txt:\n  " + "\n  ".join(bad)
        )
    mode = config.getoption("--clause-table")
    if mode:
        text = render_table(by_clause, known_clauses())
        if mode == "write":
            TABLE_FILE.write_text(text, encoding="utf-8")
        elif TABLE_FILE.read_text(encoding="utf-8") != text:
            raise pytest.UsageError(
                "refs/clause-tests.md is out of date: run "
                "`pytest --co -q --clause-table=write` and commit it"
            )
    wanted = config.getoption("--clause")
    if wanted:
        select_clauses(config, items, wanted, known)


def select_clauses(
    config: pytest.Config, items: List[pytest.Item], wanted: List[str], known: Set[str]
) -> None:
    """Keep only the items whose spec markers cite one of ``wanted``; deselect the rest."""
    unknown = [clause for clause in wanted if clause not in known]
    if unknown:
        raise pytest.UsageError(f"--clause names clauses missing from refs/clauses.txt: {unknown}")
    targets = set(wanted)
    selected: List[pytest.Item] = []
    deselected: List[pytest.Item] = []
    for item in items:
        cited = {base_clause(c) for marker in item.iter_markers("spec") for c in marker.args}
        (selected if cited & targets else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def render_table(by_clause: Dict[str, Set[str]], ordered: List[str]) -> str:
    lines = [
        "# Clause-to-test table",
        "",
        "Generated from the `@pytest.mark.spec` markers by `tests/clausetable.py`",
        "(`pytest --co -q --clause-table=write`); `tox -e trace` fails when it is stale.",
        "Clause ids follow `refs/clauses.md`.",
        "",
        "## Clause -> tests",
        "",
    ]
    for clause in ordered:
        tests = sorted(by_clause.get(clause, ()))
        if tests:
            lines.append(f"### {clause}")
            lines.extend(f"- `{t}`" for t in tests)
            lines.append("")
    lines += ["## Test -> clauses", ""]
    by_test: Dict[str, Set[str]] = defaultdict(set)
    for clause, tests in by_clause.items():
        for t in tests:
            by_test[t].add(clause)
    for t in sorted(by_test):
        lines.append(f"- `{t}`: {', '.join(sorted(by_test[t]))}")
    lines += ["", "## Normative clauses with no test", ""]
    missing = [
        c for c in ordered if c.startswith(NORMATIVE_PREFIXES) and c not in by_clause
    ]
    lines.extend(f"- {c}" for c in missing) if missing else lines.append("- (none)")
    lines.append("")
    return "\n".join(lines)
