"""Validation shared by :class:`rtmp.client.ClientConfig` and :class:`rtmp.server.ServerConfig`.

Both configs carry a chunk size (RTMP 5.4.1), a window acknowledgement size (RTMP
5.4.4), timeouts and byte limits; each ``__post_init__`` calls
:func:`check_connection_settings` so the same field is checked the same way on both
sides, and a local mistake is a ``ValueError`` before any socket is opened.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from .chunk import MAX_CHUNK_SIZE, Limits

__all__ = ["check_connection_settings", "check_limits"]

#: RTMP 5.4.4: the window acknowledgement size is a 32-bit field.
MAX_WINDOW_ACK_SIZE = 0xFFFFFFFF


def _check_chunk_size(name: str, value: int) -> None:
    """RTMP 5.4.1: chunk sizes are 1..0x7FFFFFFF (31 bits)."""
    if not 1 <= value <= MAX_CHUNK_SIZE:
        raise ValueError(f"{name} {value} outside 1..0x7FFFFFFF (RTMP 5.4.1)")


def check_limits(limits: Limits) -> None:
    """A :class:`rtmp.chunk.Limits` a config may hold: positive sizes, a valid chunk size."""
    _check_chunk_size("max_chunk_size", limits.max_chunk_size)
    for name in ("max_message_size", "max_chunk_streams", "max_pending_bytes"):
        if getattr(limits, name) <= 0:
            raise ValueError(f"{name} must be positive")


def check_connection_settings(
    config: Any,
    *,
    timeouts: Iterable[str],
    positive: Iterable[str] = (),
    limits: Optional[Limits] = None,
) -> None:
    """Check the fields both configs share; ValueError naming the first bad one.

    ``config.chunk_size`` (RTMP 5.4.1) and ``config.window_ack_size`` (RTMP 5.4.4, 32
    bits); every field named in ``timeouts`` and ``positive`` must be above zero;
    ``limits``, when given, goes through :func:`check_limits`.
    """
    _check_chunk_size("chunk_size", config.chunk_size)
    if not 1 <= config.window_ack_size <= MAX_WINDOW_ACK_SIZE:
        raise ValueError(
            f"window_ack_size {config.window_ack_size} outside 1..0xFFFFFFFF (RTMP 5.4.4)"
        )
    for name in (*timeouts, *positive):
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be positive")
    if limits is not None:
        check_limits(limits)
