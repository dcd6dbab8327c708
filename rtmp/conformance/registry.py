"""RTMP 1 (conformance): the check registry, results and selection by name or clause.

A *check* is a function ``check(ctx) -> Result`` registered with :func:`check`, carrying the
clause it verifies, cited as in ``refs/clauses.md`` (``"RTMP 5.4.3"``, ``"HS-FP9"``, or a clause with an
``[impl: ...]`` note for behaviour the spec leaves to implementations, or ``[de-facto]``).
Inside a check, :func:`fail`, :func:`warn` and :func:`skip` end it early with a one-line
detail; anything it returns is a :class:`Result`.
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, NoReturn, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .context import Context

__all__ = [
    "Check",
    "CheckFailed",
    "CHECKS",
    "Result",
    "Status",
    "base_clause",
    "check",
    "fail",
    "select",
    "skip",
    "warn",
]

logger = logging.getLogger(__name__)

_NOTE_SUFFIX = re.compile(r"\s*\[(?:impl|de-facto)[^\]]*\]\s*$")


class Status(str, enum.Enum):
    """The verdict of one check; the exit code is 1 when any is FAIL."""

    PASS = "PASS"
    FAIL = "FAIL"  # the server broke the rule the clause states
    WARN = "WARN"  # a SHOULD not followed, or a tolerated deviation
    SKIP = "SKIP"  # not applicable to this server (or not selected)


@dataclass(frozen=True)
class Result:
    """A check's verdict and a one-line explanation."""

    status: Status
    detail: str = ""

    @classmethod
    def passed(cls, detail: str = "") -> Result:
        return cls(Status.PASS, detail)

    @classmethod
    def warning(cls, detail: str) -> Result:
        return cls(Status.WARN, detail)

    @classmethod
    def skipped(cls, detail: str) -> Result:
        return cls(Status.SKIP, detail)


class CheckFailed(Exception):
    """Raised inside a check to end it with ``result`` (see :func:`fail`, :func:`warn`)."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.detail)
        self.result = result


def fail(detail: str) -> NoReturn:
    """End the running check with FAIL."""
    raise CheckFailed(Result(Status.FAIL, detail))


def warn(detail: str) -> NoReturn:
    """End the running check with WARN."""
    raise CheckFailed(Result(Status.WARN, detail))


def skip(detail: str) -> NoReturn:
    """End the running check with SKIP (the server does not offer what it checks)."""
    raise CheckFailed(Result(Status.SKIP, detail))


CheckFunction = Callable[["Context"], Result]


@dataclass(frozen=True)
class Check:
    """One registered check: a unique dotted name, its clause and what it verifies."""

    name: str
    clause: str
    description: str
    function: CheckFunction

    @property
    def group(self) -> str:
        return self.name.split(".", 1)[0]


#: Every check, in registration (= run) order.
CHECKS: Dict[str, Check] = {}


def base_clause(clause: str) -> str:
    """``"RTMP 7.2.2.1 [impl: late joiner]"`` -> ``"RTMP 7.2.2.1"`` (also ``[de-facto]``)."""
    return _NOTE_SUFFIX.sub("", clause)


def check(name: str, clause: str, description: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register ``function`` as the check ``name`` verifying ``clause``."""

    def register(function: CheckFunction) -> CheckFunction:
        if name in CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        CHECKS[name] = Check(name, clause, description, function)
        return function

    return register


def _matches(chk: Check, selector: str) -> bool:
    """A selector names a check, a group of checks (``handshake``) or a clause (and its
    sub-clauses: ``RTMP 5.4`` selects ``RTMP 5.4.1`` ...)."""
    wanted = selector.strip().lower()
    name = chk.name.lower()
    clause = base_clause(chk.clause).lower()
    return (
        name == wanted
        or name.startswith(wanted + ".")
        or clause == wanted
        or clause.startswith(wanted + ".")
    )


def select(
    checks: Iterable[Check], only: Sequence[str] = (), skip: Sequence[str] = ()
) -> List[Check]:
    """The checks ``only`` selects (all when empty) minus those ``skip`` selects.

    Raises ValueError for a selector that matches no check (a typo must not silently run
    nothing).
    """
    pool = list(checks)
    for selector in [*only, *skip]:
        if not any(_matches(c, selector) for c in pool):
            raise ValueError(f"no check or clause matches {selector!r} (see --list)")
    chosen = [c for c in pool if not only or any(_matches(c, s) for s in only)]
    return [c for c in chosen if not any(_matches(c, s) for s in skip)]
