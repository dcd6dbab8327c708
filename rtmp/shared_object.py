"""RTMP 7.1.3 / 7.3.2: remote shared object messages (types 19 and 16), sans-IO codec.

RTMP 7.1.3 names the parts of a shared object message (the object's name, its
version, flags, then events) and the 11 event types, but gives no field widths.
The widths below are the layout the servers that implement shared objects agree
on (cited ``RTMP 7.1.3 [de-facto]``; our note is ``refs/shared-objects.md``)::

    [type 16 only: U8 0x00]     format byte, then the same layout
    name     U16 length + UTF-8 (no AMF marker)
    version  U32
    flags    U32 persistence (2 = persistent, 0 = transient), U32 reserved (0)
    events   until the end of the body, each: U8 type, U32 data length, data

Event data (RTMP 7.1.3 [de-facto]):

* Use (1), Release (2), Clear (8), Use Success (11): none.
* Request Change (3), Change (4): a key (U16 length + UTF-8), then one AMF value.
* Success (5), Remove (9), Request Remove (10): a key.
* SendMessage (6): the handler name as a full AMF0 string (with its 0x02 marker),
  then the arguments as AMF0 values.
* Status (7): two bare strings (U16 length + UTF-8), the code then the level.

AMF of the values: type 19 writes AMF0 (a value may switch to AMF3 with the AVM+
marker 0x11, AMF0 3.1, and such values are read too).  Type 16 writes each slot
value as bare AMF3; when reading it a value that starts with 0x11 and parses
exactly as AMF0 0x11 + one AMF3 value is taken that way (writers that keep an AMF0
stream and switch, as for command type 17), else it is read as AMF3 (where 0x11
is the dictionary marker).  SendMessage keeps its AMF0 handler name in both
types; in type 16 its arguments are written as for a type-17 command
(:func:`rtmp.amf.encode_payload` with ``object_encoding=3``: scalars AMF0, other
values 0x11 + AMF3).

Tolerated when decoding (quirks of real writers):

* an event type outside 1..11 is skipped by its length and kept as
  ``SOEvent(type=n, raw=data)`` (types 12-14 appear in captures);
* a Status whose first string is a level (``error``/``warning``/``status``) and
  whose second is not is read with the two swapped (one server writes them in
  the opposite order from the one it reads);
* a Request Change or Change with no value after its key reads as value None.

Malformed bodies and limit breaches (:class:`SOLimits`) raise
:class:`~rtmp.errors.ProtocolError` (or its :class:`~rtmp.errors.LimitExceededError`)
whose message names ``RTMP 7.1.3``.  Local mistakes when encoding (a key too long
for its U16, a key missing) raise ``ValueError``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from . import amf0, amf3
from ._bytes import U16
from .amf import encode_payload
from .amf_types import MAX_DEPTH_LIMIT, DecodeError, EncodeError
from .errors import LimitExceededError, ProtocolError
from .message import SHARED_OBJECT_TYPES, Message, MessageType

__all__ = [
    "CLAUSE",
    "FLOW_CLAUSE",
    "SOEventType",
    "SOEvent",
    "SharedObjectMessage",
    "SOLimits",
    "DEFAULT_LIMITS",
    "PERSISTENT_FLAG",
    "AMF3_FORMAT_BYTE",
    "decode",
    "encode",
    "from_message",
    "to_message",
    "describe",
    "summary",
    "event_name",
]

#: The clause every decoding error and trace line names.
CLAUSE = "RTMP 7.1.3 [de-facto]"
#: The clause of the exchange (Use -> Use Success + Clear + Change..., RTMP 7.3.2).
FLOW_CLAUSE = "RTMP 7.3.2 [de-facto]"

#: RTMP 7.1.3 [de-facto]: flags word 1 of a persistent object (0 = transient).
PERSISTENT_FLAG = 2
#: RTMP 7.1.3 [de-facto]: the format byte that starts a type 16 body.
AMF3_FORMAT_BYTE = 0x00

_HEADER = struct.Struct(">III")  # version, flags, reserved
_EVENT_HEADER = struct.Struct(">BI")  # event type, data length
_AVMPLUS = 0x11  # AMF0 3.1
_LEVELS = frozenset({"error", "warning", "status"})
_MAX_TEXT = 300


class SOEventType(enum.IntEnum):
    """RTMP 7.1.3: the 11 shared object event types."""

    USE = 1
    RELEASE = 2
    REQUEST_CHANGE = 3
    CHANGE = 4
    SUCCESS = 5
    SEND_MESSAGE = 6
    STATUS = 7
    CLEAR = 8
    REMOVE = 9
    REQUEST_REMOVE = 10
    USE_SUCCESS = 11


_NAMES = {
    SOEventType.USE: "Use",
    SOEventType.RELEASE: "Release",
    SOEventType.REQUEST_CHANGE: "Request Change",
    SOEventType.CHANGE: "Change",
    SOEventType.SUCCESS: "Success",
    SOEventType.SEND_MESSAGE: "SendMessage",
    SOEventType.STATUS: "Status",
    SOEventType.CLEAR: "Clear",
    SOEventType.REMOVE: "Remove",
    SOEventType.REQUEST_REMOVE: "Request Remove",
    SOEventType.USE_SUCCESS: "Use Success",
}
_NO_DATA = frozenset(
    {SOEventType.USE, SOEventType.RELEASE, SOEventType.CLEAR, SOEventType.USE_SUCCESS}
)
_KEY_ONLY = frozenset({SOEventType.SUCCESS, SOEventType.REMOVE, SOEventType.REQUEST_REMOVE})
_KEY_VALUE = frozenset({SOEventType.REQUEST_CHANGE, SOEventType.CHANGE})
_KNOWN = {int(t): t for t in SOEventType}


def event_name(event_type: int) -> str:
    """RTMP 7.1.3: the name of an event type as the specification writes it."""
    known = _KNOWN.get(event_type)
    return _NAMES[known] if known is not None else f"unknown event {event_type}"


@dataclass(frozen=True)
class SOEvent:
    """RTMP 7.1.3: one event of a shared object message; fields unused by a type stay default."""

    type: int
    key: Optional[str] = None
    value: Any = None
    handler: Optional[str] = None
    args: Tuple[Any, ...] = ()
    code: Optional[str] = None
    level: Optional[str] = None
    raw: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= int(self.type) <= 0xFF:
            raise ValueError(f"event type {self.type} does not fit its U8 ({CLAUSE})")
        object.__setattr__(self, "type", _KNOWN.get(int(self.type), int(self.type)))
        if not isinstance(self.args, tuple):
            object.__setattr__(self, "args", tuple(self.args))
        if not isinstance(self.raw, bytes):
            object.__setattr__(self, "raw", bytes(self.raw))

    @property
    def name(self) -> str:
        """The event's name (``"Request Change"``, ``"unknown event 12"``)."""
        return event_name(self.type)

    # -- constructors, one per event type (RTMP 7.1.3) ----------------------

    @classmethod
    def use(cls) -> "SOEvent":
        """Client: start using the object (the version in the message is the cached one)."""
        return cls(SOEventType.USE)

    @classmethod
    def release(cls) -> "SOEvent":
        """Client: stop using the object."""
        return cls(SOEventType.RELEASE)

    @classmethod
    def request_change(cls, key: str, value: Any) -> "SOEvent":
        """Client: ask to set slot ``key`` to ``value``."""
        return cls(SOEventType.REQUEST_CHANGE, key=key, value=value)

    @classmethod
    def change(cls, key: str, value: Any) -> "SOEvent":
        """Server: slot ``key`` now holds ``value``."""
        return cls(SOEventType.CHANGE, key=key, value=value)

    @classmethod
    def success(cls, key: str) -> "SOEvent":
        """Server: the requester's change of ``key`` was accepted."""
        return cls(SOEventType.SUCCESS, key=key)

    @classmethod
    def send_message(cls, handler: str, *args: Any) -> "SOEvent":
        """Either side: call ``handler(*args)`` on every user of the object."""
        return cls(SOEventType.SEND_MESSAGE, handler=handler, args=args)

    @classmethod
    def status(cls, code: str, level: str = "error") -> "SOEvent":
        """Server: a status for the object (``code``, ``level``)."""
        return cls(SOEventType.STATUS, code=code, level=level)

    @classmethod
    def clear(cls) -> "SOEvent":
        """Server: forget every slot (also part of the answer to Use)."""
        return cls(SOEventType.CLEAR)

    @classmethod
    def remove(cls, key: str) -> "SOEvent":
        """Server: slot ``key`` was deleted."""
        return cls(SOEventType.REMOVE, key=key)

    @classmethod
    def request_remove(cls, key: str) -> "SOEvent":
        """Client: ask to delete slot ``key``."""
        return cls(SOEventType.REQUEST_REMOVE, key=key)

    @classmethod
    def use_success(cls) -> "SOEvent":
        """Server: the Use was accepted."""
        return cls(SOEventType.USE_SUCCESS)


@dataclass(frozen=True)
class SharedObjectMessage:
    """RTMP 7.1.3: one shared object message: the object, its version and flags, events."""

    name: str
    version: int = 0
    persistent: bool = False
    events: Tuple[SOEvent, ...] = ()
    amf3: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.version <= 0xFFFFFFFF:
            raise ValueError(f"version {self.version} does not fit its U32 ({CLAUSE})")
        if not isinstance(self.events, tuple):
            object.__setattr__(self, "events", tuple(self.events))

    @property
    def message_type(self) -> int:
        """RTMP 7.1.3: 16 (AMF3) or 19 (AMF0)."""
        return MessageType.SHARED_OBJECT_AMF3 if self.amf3 else MessageType.SHARED_OBJECT_AMF0


@dataclass(frozen=True)
class SOLimits:
    """Denial-of-service guards of :func:`decode` (each breach names RTMP 7.1.3).

    ``max_name_length`` bounds the object name and every slot key (bytes of UTF-8);
    ``max_events`` the events of one message; ``max_value_depth`` the AMF nesting
    of one value; ``max_message_size`` the body.
    """

    max_name_length: int = 1024
    max_events: int = 10_000
    max_value_depth: int = 64
    max_message_size: int = 1 << 20

    def __post_init__(self) -> None:
        for name in ("max_name_length", "max_events", "max_message_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not 1 <= self.max_value_depth <= MAX_DEPTH_LIMIT:
            raise ValueError(f"max_value_depth must be in 1..{MAX_DEPTH_LIMIT}")


DEFAULT_LIMITS = SOLimits()


# ---------------------------------------------------------------------------
# Decoding


def _error(text: str) -> ProtocolError:
    return ProtocolError(f"shared object message: {text}", CLAUSE)


def _limit(limit: str, value: int, maximum: int, detail: str) -> LimitExceededError:
    exc = LimitExceededError(limit, value, maximum, f"shared object {detail} ({CLAUSE})")
    exc.clause = CLAUSE
    return exc


class _Reader:
    """A position in one message body (bytes) with the checks every field needs."""

    __slots__ = ("data", "offset", "limits")

    def __init__(self, data: bytes, offset: int, limits: SOLimits) -> None:
        self.data = data
        self.offset = offset
        self.limits = limits

    def need(self, count: int, what: str) -> None:
        if self.offset + count > len(self.data):
            raise _error(
                f"{what} needs {count} bytes at offset {self.offset},"
                f" {len(self.data) - self.offset} left"
            )

    def string(self, what: str, end: int) -> str:
        """A bare string: U16 byte length, then UTF-8 (no AMF marker), ending by ``end``."""
        if self.offset + 2 > end:
            raise _error(f"{what}: its U16 length does not fit at offset {self.offset}")
        (length,) = U16.unpack_from(self.data, self.offset)
        if length > self.limits.max_name_length:
            raise _limit("max_name_length", length, self.limits.max_name_length, what)
        start = self.offset + 2
        if start + length > end:
            raise _error(f"{what} of {length} bytes overruns its field at offset {start}")
        try:
            text = self.data[start : start + length].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _error(f"{what} is not UTF-8 at offset {start}: {exc.reason}") from None
        self.offset = start + length
        return text


def decode(body: bytes, amf3: bool = False, limits: SOLimits = DEFAULT_LIMITS) -> SharedObjectMessage:
    """RTMP 7.1.3 [de-facto]: the message in a type 19 body (``amf3=True``: type 16).

    Raises :class:`~rtmp.errors.ProtocolError` naming the clause for malformed
    bytes, :class:`~rtmp.errors.LimitExceededError` when a :class:`SOLimits` bound
    is passed.
    """
    data = bytes(body)
    if len(data) > limits.max_message_size:
        raise _limit("max_message_size", len(data), limits.max_message_size, "message body")
    reader = _Reader(data, 0, limits)
    if amf3:
        reader.need(1, "the type 16 format byte")
        if data[0] != AMF3_FORMAT_BYTE:
            raise _error(f"type 16 body starts with 0x{data[0]:02x}, not the format byte 0x00")
        reader.offset = 1
    name = reader.string("object name", len(data))
    reader.need(_HEADER.size, "version and flags")
    version, flags, _reserved = _HEADER.unpack_from(data, reader.offset)
    reader.offset += _HEADER.size
    events: List[SOEvent] = []
    while reader.offset < len(data):
        if len(events) >= limits.max_events:
            raise _limit("max_events", len(events) + 1, limits.max_events, f"{name!r} events")
        reader.need(_EVENT_HEADER.size, f"event {len(events) + 1} header")
        kind, length = _EVENT_HEADER.unpack_from(data, reader.offset)
        start = reader.offset + _EVENT_HEADER.size
        if length > len(data) - start:
            raise _error(
                f"event {len(events) + 1} ({event_name(kind)}) claims {length} data bytes,"
                f" {len(data) - start} left"
            )
        reader.offset = start
        events.append(_decode_event(reader, kind, start + length, amf3, len(events) + 1))
        reader.offset = start + length
    return SharedObjectMessage(
        name, version, flags == PERSISTENT_FLAG, tuple(events), amf3
    )


def _decode_event(reader: _Reader, kind: int, end: int, amf3: bool, index: int) -> SOEvent:
    known = _KNOWN.get(kind)
    what = f"event {index} ({event_name(kind)})"
    if known is None:  # RTMP 7.1.3 [de-facto]: skipped by its length, kept as-is
        return SOEvent(kind, raw=reader.data[reader.offset : end])
    if known in _NO_DATA:
        if end != reader.offset:
            raise _error(f"{what} carries {end - reader.offset} data bytes; it has none")
        return SOEvent(known)
    if known == SOEventType.STATUS:
        code = reader.string(f"{what} code", end)
        level = reader.string(f"{what} level", end)
        _expect_end(reader, end, what)
        if code in _LEVELS and level not in _LEVELS:  # writers that swap the two
            code, level = level, code
        return SOEvent(known, code=code, level=level)
    if known == SOEventType.SEND_MESSAGE:
        values = _values(reader, end, what)
        if not values or not isinstance(values[0], str):
            raise _error(f"{what} does not start with its handler name as an AMF0 string")
        return SOEvent(known, handler=values[0], args=tuple(values[1:]))
    key = reader.string(f"{what} key", end)
    if known in _KEY_ONLY:
        _expect_end(reader, end, what)
        return SOEvent(known, key=key)
    value = None if reader.offset == end else _value(reader, end, amf3, what)
    return SOEvent(known, key=key, value=value)


def _expect_end(reader: _Reader, end: int, what: str) -> None:
    if reader.offset != end:
        raise _error(f"{what} has {end - reader.offset} bytes after its fields")


def _value(reader: _Reader, end: int, amf3_values: bool, what: str) -> Any:
    """One slot value filling the event data to ``end`` (AMF0, or AMF3 in type 16)."""
    chunk = reader.data[reader.offset : end]
    depth = reader.limits.max_value_depth
    try:
        if amf3_values and chunk[0] == _AVMPLUS:
            switched = amf0.Decoder(chunk, max_depth=depth)
            try:  # AMF0 3.1: 0x11 + one AMF3 value, if it fills the event exactly
                value = switched.read_value()
                if switched.at_end():
                    return value
            except DecodeError:
                pass
        decoder: Any = amf3.Decoder(chunk, max_depth=depth) if amf3_values else amf0.Decoder(
            chunk, max_depth=depth
        )
        value = decoder.read_value()
    except DecodeError as exc:
        raise _error(f"{what} value: {exc}") from None
    if not decoder.at_end():
        raise _error(f"{what} has {decoder.remaining} bytes after its value")
    return value


def _values(reader: _Reader, end: int, what: str) -> List[Any]:
    """SendMessage: AMF0 values (with AVM+ switches) filling the event data."""
    decoder = amf0.Decoder(reader.data[reader.offset : end], max_depth=reader.limits.max_value_depth)
    try:
        return decoder.read_all()
    except DecodeError as exc:
        raise _error(f"{what}: {exc}") from None


# ---------------------------------------------------------------------------
# Encoding


def _bare(text: str, what: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError(f"{what} of {len(raw)} bytes does not fit its U16 length ({CLAUSE})")
    return U16.pack(len(raw)) + raw


def _encode_event_data(event: SOEvent, amf3_values: bool) -> bytes:
    kind = event.type
    if kind not in _KNOWN:
        return event.raw
    if kind in _NO_DATA:
        return b""
    what = f"{event.name} event"
    if kind == SOEventType.STATUS:
        if event.code is None or event.level is None:
            raise ValueError(f"a Status event needs a code and a level ({CLAUSE})")
        return _bare(event.code, f"{what} code") + _bare(event.level, f"{what} level")
    if kind == SOEventType.SEND_MESSAGE:
        if not isinstance(event.handler, str):
            raise ValueError(f"a SendMessage event needs a handler name ({CLAUSE})")
        values = (event.handler, *event.args)
        if amf3_values:  # as a type-17 payload, without its format selector
            return encode_payload(values, 3)[1:]
        return encode_payload(values, 0)
    if event.key is None:
        raise ValueError(f"a {what} needs a key ({CLAUSE})")
    key = _bare(event.key, f"{what} key")
    if kind in _KEY_ONLY:
        return key
    if amf3_values:
        return key + amf3.encode(event.value)
    return key + amf0.encode(event.value, use_references=False)


def encode(message: SharedObjectMessage) -> bytes:
    """RTMP 7.1.3 [de-facto]: the body of ``message`` (type 16 when ``message.amf3``).

    Raises ``ValueError`` for a message that cannot be written (a key over 65535
    bytes, a Change without a key, a value AMF cannot encode).
    """
    parts = [bytes((AMF3_FORMAT_BYTE,))] if message.amf3 else []
    parts.append(_bare(message.name, "object name"))
    flags = PERSISTENT_FLAG if message.persistent else 0
    parts.append(_HEADER.pack(message.version, flags, 0))
    for event in message.events:
        try:
            data = _encode_event_data(event, message.amf3)
        except EncodeError as exc:
            raise ValueError(f"{event.name} event: {exc}") from exc
        if len(data) > 0xFFFFFFFF:  # pragma: no cover - needs 4 GiB
            raise ValueError(f"event data of {len(data)} bytes does not fit its U32 ({CLAUSE})")
        parts.append(_EVENT_HEADER.pack(int(event.type), len(data)))
        parts.append(data)
    return b"".join(parts)


# ---------------------------------------------------------------------------
# Messages and text


def from_message(msg: Message, limits: SOLimits = DEFAULT_LIMITS) -> SharedObjectMessage:
    """RTMP 7.1.3: decode a type 19 or 16 :class:`~rtmp.message.Message`."""
    if msg.type not in SHARED_OBJECT_TYPES:
        raise ValueError(f"message type {msg.type} is not a shared object message ({CLAUSE})")
    return decode(msg.data, msg.type == MessageType.SHARED_OBJECT_AMF3, limits)


def to_message(so: SharedObjectMessage, stream_id: int = 0, timestamp: int = 0) -> Message:
    """RTMP 7.1.3: ``so`` as a message (type 16 or 19) on message stream ``stream_id``."""
    return Message(so.message_type, encode(so), timestamp, stream_id)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _describe_event(event: SOEvent) -> str:
    kind = event.type
    if kind not in _KNOWN:
        return f"{event.name}, {len(event.raw)} data bytes skipped"
    if kind == SOEventType.STATUS:
        return f"Status code={event.code!r} level={event.level!r}"
    if kind == SOEventType.SEND_MESSAGE:
        return f"SendMessage {event.handler}({', '.join(_short(a) for a in event.args)})"
    if kind in _KEY_VALUE:
        return f"{event.name} {event.key!r} = {_short(event.value)}"
    if kind in _KEY_ONLY:
        return f"{event.name} {event.key!r}"
    return event.name


def describe(so: SharedObjectMessage) -> List[str]:
    """One line per event (for ``--trace`` and ``rtmp proxy``), each ending with its clause."""
    return [f"{_describe_event(event)}  ({CLAUSE})" for event in so.events]


def summary(so: SharedObjectMessage) -> str:
    """One line about the message itself: object, version, persistence, format, event count."""
    kind = "persistent" if so.persistent else "transient"
    amf = "AMF3" if so.amf3 else "AMF0"
    return (
        f"shared object {so.name!r} version {so.version} {kind} {amf},"
        f" {len(so.events)} event{'s' if len(so.events) != 1 else ''}  ({CLAUSE})"
    )

