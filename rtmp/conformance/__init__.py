"""RTMP 1 (conformance): ``rtmp probe URL``, checking any server against the specification.

Each check (``rtmp probe --list``) is tied to one clause of the RTMP specification (cited as in
``refs/clauses.md``) and runs against a live server: the handshake (RTMP 5.2, HS-FP9),
the connect sequence (RTMP 7.2.1.1, 5.4.4, 5.4.5, 7.1.7), acknowledgements and pings (RTMP
5.4.3, 7.1.7), hand-built chunk streams (header types, 2- and 3-byte chunk stream ids, chunk
sizes, Abort, extended timestamps: RTMP 5.3, 5.4.1, 5.4.2), and publish/play with
byte-for-byte comparison of what a second connection receives (RTMP 7.1.2-7.1.5, 7.2),
and remote shared objects between two connections (RTMP 7.3.2; SKIP on a server without them).
Use from Python::

    from rtmp import conformance
    for outcome in conformance.run("rtmp://127.0.0.1:1935/live", only=["handshake"]):
        print(outcome.check.name, outcome.result.status, outcome.result.detail)

``rtmps://`` URLs are probed through TLS (``ssl_context=``, by default the system's trusted
certificates); the checks judge the decrypted chunk stream.
"""

from __future__ import annotations

import logging

from .context import Context, ProbeConnection
from .registry import CHECKS, Check, CheckFailed, Result, Status, base_clause, check, select
from .runner import Outcome, format_table, main_from_args, run, run_check, to_json

__all__ = [
    "CHECKS",
    "Check",
    "CheckFailed",
    "Context",
    "Outcome",
    "ProbeConnection",
    "Result",
    "Status",
    "base_clause",
    "check",
    "format_table",
    "main_from_args",
    "run",
    "run_check",
    "select",
    "to_json",
]

logger = logging.getLogger(__name__)
