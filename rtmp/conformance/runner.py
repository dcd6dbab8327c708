"""RTMP 1 (conformance): running checks with a time limit, and reporting them.

Each check runs on its own thread with its own :class:`~.context.Context`.  The runner
waits for it at most ``budget`` seconds; a check still running then is reported FAIL
("timeout") and its sockets are closed, which ends whatever it was blocked on.  The
sockets of every check are closed when it ends, so the server under test is left with
no connection and no published stream.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, TextIO

from ..errors import HandshakeError, ProtocolError, RTMPError
from ..errors import TimeoutError as RTMPTimeoutError
from ..transport import client_ssl_context
from . import checks as _checks  # noqa: F401 - registers the checks
from . import enhanced as _enhanced  # noqa: F401 - registers the Enhanced RTMP checks
from . import shared_objects as _shared_objects  # noqa: F401 - registers RTMP 7.3.2's checks
from .context import Context
from .registry import CHECKS, Check, CheckFailed, Result, Status, select

__all__ = ["Outcome", "format_table", "main_from_args", "run", "run_check", "to_json"]

logger = logging.getLogger(__name__)

#: Extra seconds a check may take beyond its waits (connection setup, several waits).
BUDGET_FACTOR = 3.0


@dataclass(frozen=True)
class Outcome:
    """A check and what it found, with its duration."""

    check: Check
    result: Result
    elapsed: float
    #: Measurements the check made (e.g. ``connect_ms``, ``latency_ms``).
    metrics: Dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "name": self.check.name,
            "clause": self.check.clause,
            "description": self.check.description,
            "status": self.result.status.value,
            "detail": self.result.detail,
            "elapsed_ms": round(self.elapsed * 1000, 1),
        }
        if self.metrics:
            out["metrics"] = {k: round(v, 3) for k, v in self.metrics.items()}
        return out


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, RTMPTimeoutError):
        return f"timeout: {text}"
    if isinstance(exc, ProtocolError):
        return f"protocol error: {text}"
    if isinstance(exc, HandshakeError):
        return f"handshake failed: {text}"
    if isinstance(exc, (RTMPError, OSError)):
        return text
    return f"probe error ({type(exc).__name__}): {text}"


def run_check(chk: Check, url: str, timeout: float = 10.0, run_id: Optional[str] = None,
              ssl_context: Optional[ssl.SSLContext] = None) -> Outcome:
    """Run one check against ``url`` within ``timeout * BUDGET_FACTOR`` seconds
    (``ssl_context``: the TLS settings for an ``rtmps://`` URL)."""
    ctx = Context(url, timeout=timeout, run_id=run_id, ssl_context=ssl_context)
    box: List[Result] = []

    def body() -> None:
        try:
            box.append(chk.function(ctx))
        except CheckFailed as stop:
            box.append(stop.result)
        except Exception as exc:  # noqa: BLE001 - any error is this check's FAIL
            if not ctx.closed:
                logger.debug("check %s raised", chk.name, exc_info=True)
            box.append(Result(Status.FAIL, _describe(exc)))

    start = time.monotonic()
    worker = threading.Thread(target=body, name=f"probe-{chk.name}", daemon=True)
    worker.start()
    worker.join(timeout * BUDGET_FACTOR + 2.0)
    ctx.close_all()
    if worker.is_alive() or not box:
        worker.join(1.0)
        result = Result(Status.FAIL, f"timeout: check still running after "
                                     f"{timeout * BUDGET_FACTOR + 2.0:g} s")
    else:
        result = box[0]
    return Outcome(chk, result, time.monotonic() - start, dict(ctx.metrics))


def run(url: str, only: Sequence[str] = (), skip: Sequence[str] = (), timeout: float = 10.0,
        progress: Optional[TextIO] = None, ssl_context: Optional[ssl.SSLContext] = None
        ) -> List[Outcome]:
    """Run the selected checks against ``url``, one after the other.

    For ``rtmps://`` the checks speak through TLS (``ssl_context``, by default the
    system's trusted certificates: see :func:`rtmp.transport.client_ssl_context`)."""
    chosen = select(CHECKS.values(), only, skip)
    run_id = os.urandom(3).hex()
    outcomes = []
    for chk in chosen:
        outcome = run_check(chk, url, timeout, run_id, ssl_context)
        if progress is not None:
            print(f"{outcome.result.status.value:4} {chk.name}", file=progress, flush=True)
        outcomes.append(outcome)
    return outcomes


def summary(outcomes: Sequence[Outcome]) -> Dict[str, int]:
    counts = {status.value: 0 for status in Status}
    for outcome in outcomes:
        counts[outcome.result.status.value] += 1
    return counts


def format_table(outcomes: Sequence[Outcome], url: str = "", width: Optional[int] = 120) -> str:
    """A plain-text table: clause, check, status, detail (cut to ``width``; ``None``
    truncates nothing)."""
    clause_w = max([len("CLAUSE")] + [len(o.check.clause) for o in outcomes])
    name_w = max([len("CHECK")] + [len(o.check.name) for o in outcomes])
    head = f"{'CLAUSE':<{clause_w}}  {'CHECK':<{name_w}}  STATUS  DETAIL"
    rule = len(head) + 40 if width is None else min(width, len(head) + 40)
    lines = [f"rtmp probe {url}".rstrip(), head, "-" * rule]
    room = None if width is None else max(20, width - clause_w - name_w - 12)
    for o in outcomes:
        detail = o.result.detail.replace("\n", " ")
        if room is not None and len(detail) > room:
            detail = detail[: room - 3] + "..."
        lines.append(f"{o.check.clause:<{clause_w}}  {o.check.name:<{name_w}}  "
                     f"{o.result.status.value:<6}  {detail}")
    counts = summary(outcomes)
    total = sum(o.elapsed for o in outcomes)
    lines.append("")
    lines.append(f"{len(outcomes)} checks: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                 + f" in {total:.1f} s")
    return "\n".join(lines)


def to_json(outcomes: Sequence[Outcome], url: str = "") -> str:
    return json.dumps({
        "url": url,
        "summary": summary(outcomes),
        "results": [o.as_dict() for o in outcomes],
    }, indent=2)


def format_list() -> str:
    width = max(len(c.name) for c in CHECKS.values())
    clause_w = max(len(c.clause) for c in CHECKS.values())
    return "\n".join(f"{c.name:<{width}}  {c.clause:<{clause_w}}  {c.description}"
                     for c in CHECKS.values())


def main_from_args(args: argparse.Namespace) -> int:
    """``rtmp probe``: print the table (or JSON); 0 unless a check FAILs (2: usage)."""
    out = sys.stdout
    if getattr(args, "list", False):
        print(format_list(), file=out)
        return 0
    url = getattr(args, "url", None)
    if not url:
        print("rtmp probe: a URL is needed (rtmp://host[:port]/app or rtmps://...), "
              "unless --list", file=sys.stderr)
        return 2
    try:
        context = None
        if url.lower().startswith("rtmps://"):
            context = client_ssl_context(getattr(args, "ca_file", None),
                                         bool(getattr(args, "insecure", False)))
        outcomes = run(url, only=args.only or (), skip=args.skip or (),
                       timeout=float(args.timeout), ssl_context=context)
    except ValueError as exc:
        print(f"rtmp probe: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "json", False):
        print(to_json(outcomes, url), file=out)
    else:
        width = None if getattr(args, "wide", False) else 120
        print(format_table(outcomes, url, width=width), file=out)
    return 1 if any(o.result.status is Status.FAIL for o in outcomes) else 0
