"""The exception tree of ``rtmp``.

Everything the library raises because of the network or a peer derives from
:class:`RTMPError`.  Mistakes made locally (an illegal message to send, a bad
argument) raise :class:`ValueError` or :class:`TypeError` instead, as h11 keeps
local and remote errors apart.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .commands import StatusEvent

__all__ = [
    "RTMPError",
    "HandshakeError",
    "ProtocolError",
    "LimitExceededError",
    "CommandError",
    "TimeoutError",
    "ConnectionClosedError",
    "StreamEnded",
    "FLVError",
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


class StreamEnded(RTMPError):
    """A played stream ended: the server sent User Control Stream EOF (RTMP 7.1.7,
    RTMP 6.2 event 1) or an ``onStatus`` that ends a play (RTMP 7.2.2.1:
    ``NetStream.Play.Stop``, ``NetStream.Play.Complete``, ``NetStream.Play.UnpublishNotify``).

    ``reason`` says which, in words; ``status`` is the ending ``onStatus`` event (None
    for a bare Stream EOF).  The connection stays usable: a live stream may be
    published again, and the next read waits for it.
    """

    def __init__(self, reason: str, status: Optional[StatusEvent] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class FLVError(RTMPError):
    """A malformed FLV file or payload (FLV Annex E, ERTMP); the message names the clause.

    ``rtmp.flv.FLVError`` is this class; ``rtmp.ertmp.DecodeError`` (a bad Enhanced RTMP
    header) is a subclass."""


def seconds_text(value: Optional[float]) -> str:
    """A duration for a message, rounded: ``1.9987626`` -> ``"2.0"``, ``0.005`` -> ``"0.005"``."""
    if value is None:
        return "unlimited"
    return f"{value:.1f}" if value >= 0.1 or value <= 0 else f"{value:.2g}"
