"""The exception tree of ``rtmp``.

Everything the library raises because of the network or a peer derives from
:class:`RTMPError`.  Mistakes made locally (an illegal message to send, a bad
argument) raise :class:`ValueError` or :class:`TypeError` instead, as h11 keeps
local and remote errors apart.
"""

from __future__ import annotations

import builtins
from typing import Any, Optional

__all__ = [
    "RTMPError",
    "HandshakeError",
    "ProtocolError",
    "LimitExceededError",
    "CommandError",
    "TimeoutError",
    "ConnectionClosedError",
]


class RTMPError(Exception):
    """Base class of every error raised because of the peer or the network."""


class HandshakeError(RTMPError):
    """RTMP 5.2: the handshake failed (bad version, short read, bad echo, timeout)."""


class ProtocolError(RTMPError):
    """The peer broke a chunk or message rule; ``clause`` names the rule when known."""

    def __init__(self, message: str, clause: Optional[str] = None) -> None:
        if clause and clause not in message:
            message = f"{message} ({clause})"
        super().__init__(message)
        self.clause = clause


class LimitExceededError(ProtocolError):
    """A configured denial-of-service guard was exceeded; ``limit`` names it."""

    def __init__(self, limit: str, value: int, maximum: int, detail: str = "") -> None:
        text = f"{limit} exceeded: {value} > {maximum}"
        if detail:
            text = f"{detail}: {text}"
        super().__init__(text)
        self.limit = limit
        self.value = value
        self.maximum = maximum


class CommandError(RTMPError):
    """RTMP 7.2: the peer answered ``_error`` or an ``onStatus`` with level ``error``."""

    def __init__(
        self, code: str, description: str = "", info: Optional[Any] = None
    ) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.info = info


class TimeoutError(RTMPError, builtins.TimeoutError):  # noqa: A001 - refs/api.md name
    """An operation did not finish within its configured timeout."""


class ConnectionClosedError(RTMPError, ConnectionError):
    """The peer closed the connection (or it was closed locally) mid-operation."""
