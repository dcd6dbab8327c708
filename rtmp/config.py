"""Validation shared by :class:`rtmp.client.ClientConfig` and :class:`rtmp.server.ServerConfig`.

Both configs carry a chunk size (RTMP 5.4.1), a window acknowledgement size (RTMP
5.4.4), timeouts and byte limits; each ``__post_init__`` calls
:func:`check_connection_settings` so the same field is checked the same way on both
sides, and a local mistake is a ``ValueError`` before any socket is opened.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Optional

from .chunk import MAX_CHUNK_SIZE, Limits

__all__ = ["check_connection_settings", "check_limits", "check_record_settings", "parse_duration",
           "parse_size"]

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


#: Units of :func:`parse_duration` in seconds (``30s``, ``10m``, ``1h``, ``1h30m``).
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Units of :func:`parse_size` in bytes (binary, as nginx's ``record_max_size``: 1K = 1024).
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)([smhd])")
_SIZE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)([kmgt]?)(i?b)?")


def parse_duration(text: str) -> float:
    """``"30s"``, ``"10m"``, ``"1h"``, ``"1h30m"``, ``"1.5h"`` or plain seconds -> seconds.

    ValueError (naming the accepted forms) for anything else, and for zero or less.
    """
    value = text.strip().lower() if isinstance(text, str) else ""
    seconds: Optional[float] = None
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        seconds = float(value)
    elif value and re.fullmatch(r"(?:" + _DURATION_PART.pattern + r")+", value):
        seconds = sum(float(number) * _DURATION_UNITS[unit]
                      for number, unit in _DURATION_PART.findall(value))
    if seconds is None:
        raise ValueError(f"bad duration {text!r}: use a number with s, m, h or d "
                         "(30s, 10m, 1h, 1h30m) or plain seconds")
    if seconds <= 0:
        raise ValueError(f"bad duration {text!r}: must be more than zero")
    return seconds


def parse_size(text: str) -> int:
    """``"500M"``, ``"2G"``, ``"64k"``, ``"1.5GiB"`` or plain bytes -> bytes (1K = 1024).

    ValueError (naming the accepted forms) for anything else, and below one byte.
    """
    value = text.strip().lower() if isinstance(text, str) else ""
    match = _SIZE.fullmatch(value)
    if match is None:
        raise ValueError(f"bad size {text!r}: use a number with K, M, G or T "
                         "(500M, 2G; 1K = 1024 bytes) or plain bytes")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size < 1:
        raise ValueError(f"bad size {text!r}: must be at least one byte")
    return size


def check_record_settings(config: Any) -> None:
    """The recording fields of :class:`rtmp.server.ServerConfig`: ``record_all`` (a bool,
    an application name or a collection of names), the positive segment limits, and
    ``record_dir``, which both need; ValueError naming the field."""
    record_all = config.record_all
    if not isinstance(record_all, (bool, str)):
        try:
            names = list(record_all)
        except TypeError:
            raise ValueError("record_all must be a bool or application names") from None
        if not all(isinstance(name, str) for name in names):
            raise ValueError("record_all must be a bool or application names")
    for name in ("record_segment_seconds", "record_segment_bytes"):
        value = getattr(config, name)
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive")
    wanted = [name for name in ("record_all", "record_segment_seconds", "record_segment_bytes")
              if getattr(config, name)]
    if wanted and config.record_dir is None:
        raise ValueError(f"{wanted[0]} needs record_dir")
