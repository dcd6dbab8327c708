"""The teaching trace: every handshake block, chunk and message explained, with its clause.

A :class:`ProtocolTracer` watches one direction of a connection passively: it is
fed the same bytes the socket sends or receives and decodes them with its own
handshake parser and chunk decoder, so tracing never changes what goes on the
wire.  Each line it emits names the clause that defines what it describes::

    C->S  C0  version 3  (RTMP 5.2.2)
    C->S  C1  time=0 zero=09 00 7c 02 (HS-FP9 version)  (RTMP 5.2.3, HS-FP9 C1)
    C->S  chunk fmt=0 csid=3 timestamp=0 length=148 type=20 msid=0  (RTMP 5.3.1.2.1)
    C->S  command connect txn=1 {'app': 'live', ...}  (RTMP 7.2.1.1)
    C->S  message shared object 'chat' version 0 transient AMF0, 1 event  (RTMP 7.1.3 [de-facto])
    C->S    event 1: Use  (RTMP 7.1.3 [de-facto])

:func:`enable` turns tracing on for every transport created afterwards, by
giving the ``rtmp.trace`` logger a handler at DEBUG level; transports check the
logger when they are created.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Callable, List, Optional, TextIO

from . import control, ertmp, shared_object, user_control
from ._bytes import U32
from .chunk import ChunkDecoder, ChunkInfo
from .errors import RTMPError
from .logs import trace_logger
from .message import DATA_TYPES, SHARED_OBJECT_TYPES, Message, MessageType

__all__ = ["ProtocolTracer", "describe_message", "explain_message", "enable", "tracing_enabled"]

_HEADER_CLAUSE = {0: "RTMP 5.3.1.2.1", 1: "RTMP 5.3.1.2.2", 2: "RTMP 5.3.1.2.3",
                  3: "RTMP 5.3.1.2.4"}
_TYPE_NAMES = {int(t): t.name for t in MessageType}
_MAX_VALUE_TEXT = 300


def tracing_enabled() -> bool:
    """True when the ``rtmp.trace`` logger would print DEBUG lines."""
    return trace_logger.isEnabledFor(logging.DEBUG) and any(
        not isinstance(h, logging.NullHandler) for h in trace_logger.handlers
    )


def enable(stream: Optional[TextIO] = None) -> logging.Handler:
    """Print the trace of every transport created from now on to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    trace_logger.addHandler(handler)
    trace_logger.setLevel(logging.DEBUG)
    return handler


def _short(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_VALUE_TEXT:
        text = text[: _MAX_VALUE_TEXT - 3] + "..."
    return text


def _codec_ids(values: List[Any]) -> str:
    """FLV E.5 / ERTMP Enhancing onMetaData: what an onMetaData's ``videocodecid`` and
    ``audiocodecid`` name (a CodecID, or a FOURCC as a number or a string), or ""."""
    from .flvmeta import metadata_codec

    props = next((v for v in values if isinstance(v, dict)), None)
    if props is None:
        return ""
    named = []
    for key, video in (("videocodecid", True), ("audiocodecid", False)):
        codec = metadata_codec(props.get(key), video=video)
        if codec is not None:
            what = f"FourCC {codec['fourcc']}" if "fourcc" in codec else f"CodecID {codec['codec_id']}"
            named.append(f"{key} = {what}: {codec['codec']}")
    if not named:
        return ""
    clause = "ERTMP Enhancing onMetaData" if any("FourCC" in n for n in named) else "FLV E.5"
    return f" [{'; '.join(named)} ({clause})]"


def describe_message(message: Message) -> str:
    """One line explaining a complete message, ending with its clause."""
    kind = message.type
    data = message.data
    try:
        if kind == MessageType.SET_CHUNK_SIZE:
            return f"Set Chunk Size {control.parse_set_chunk_size(data)}  (RTMP 5.4.1)"
        if kind == MessageType.ABORT:
            return f"Abort Message csid={control.parse_abort(data)}  (RTMP 5.4.2)"
        if kind == MessageType.ACKNOWLEDGEMENT:
            return (f"Acknowledgement sequence={control.parse_acknowledgement(data)}"
                    "  (RTMP 5.4.3)")
        if kind == MessageType.WINDOW_ACK_SIZE:
            return (f"Window Acknowledgement Size {control.parse_window_ack_size(data)}"
                    "  (RTMP 5.4.4)")
        if kind == MessageType.SET_PEER_BANDWIDTH:
            bw = control.parse_set_peer_bandwidth(data)
            limit = control.LimitType(bw.limit_type).name.lower()
            return f"Set Peer Bandwidth {bw.window_size} limit={limit}  (RTMP 5.4.5)"
        if kind == MessageType.USER_CONTROL:
            event = user_control.decode(data)
            detail = ""
            if event.stream_id is not None:
                detail = f" msid={event.stream_id}"
            if event.buffer_length is not None:
                detail += f" buffer={event.buffer_length}ms"
            if event.timestamp is not None:
                detail = f" timestamp={event.timestamp}"
            return f"User Control {event.name}{detail}  (RTMP 7.1.7)"
        if kind == MessageType.AUDIO:
            from .flv import describe_audio

            clause = "ERTMP Enhanced Audio" if ertmp.is_enhanced_audio(data) else "FLV E.4.2.1"
            return f"audio {len(data)} bytes: {describe_audio(data)}  (RTMP 7.1.4, {clause})"
        if kind == MessageType.VIDEO:
            from .flv import describe_video

            clause = "ERTMP Enhanced Video" if ertmp.is_enhanced_video(data) else "FLV E.4.3.1"
            return f"video {len(data)} bytes: {describe_video(data)}  (RTMP 7.1.5, {clause})"
        if kind in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
            from .commands import decode_command

            cmd = decode_command(message)
            args = "".join(f" {_short(a)}" for a in cmd.arguments)
            clause = _COMMAND_CLAUSES.get(cmd.name, "RTMP 7.2")
            return (f"command {cmd.name} txn={cmd.transaction_id:g} "
                    f"{_short(cmd.command_object)}{args}  ({clause})")
        if kind in DATA_TYPES:
            from .commands import decode_data

            values = decode_data(message)
            return f"data {' '.join(_short(v) for v in values)}{_codec_ids(values)}  (RTMP 7.1.2)"
        if kind == MessageType.AGGREGATE:
            from .message import split_aggregate

            subs = split_aggregate(message)
            return f"aggregate of {len(subs)} sub-messages  (RTMP 7.1.6)"
        if kind in SHARED_OBJECT_TYPES:
            return shared_object.summary(shared_object.from_message(message))
    except (RTMPError, ValueError, IndexError, KeyError) as exc:
        return f"{_TYPE_NAMES.get(kind, kind)} {len(data)} bytes, undecodable: {exc}"
    return f"message type {kind} {len(data)} bytes (not defined by RTMP 1.0)"


def explain_message(message: Message) -> List[str]:
    """Every line explaining a message: :func:`describe_message`, then for a shared object
    message (RTMP 7.1.3) one more line per event, and for an Enhanced RTMP audio or video
    message one more line per header field (ModEx, command, Multitrack, FourCC, each track,
    MultichannelConfig, Metadata), each with its clause."""
    if message.type == MessageType.VIDEO:
        return [describe_message(message)] + [f"  {line}" for line in ertmp.explain_video(message.data)]
    if message.type == MessageType.AUDIO:
        return [describe_message(message)] + [f"  {line}" for line in ertmp.explain_audio(message.data)]
    if message.type not in SHARED_OBJECT_TYPES:
        return [describe_message(message)]
    try:
        so = shared_object.from_message(message)
    except RTMPError:
        return [describe_message(message)]  # says "undecodable" and why
    events = shared_object.describe(so)
    return [shared_object.summary(so)] + [f"  event {i}: {line}" for i, line in enumerate(events, 1)]


_COMMAND_CLAUSES = {
    "connect": "RTMP 7.2.1.1",
    "call": "RTMP 7.2.1.2",
    "createStream": "RTMP 7.2.1.3",
    "onStatus": "RTMP 7.2.2",
    "play": "RTMP 7.2.2.1",
    "play2": "RTMP 7.2.2.2",
    "deleteStream": "RTMP 7.2.2.3",
    "receiveAudio": "RTMP 7.2.2.4",
    "receiveVideo": "RTMP 7.2.2.5",
    "publish": "RTMP 7.2.2.6",
    "seek": "RTMP 7.2.2.7",
    "pause": "RTMP 7.2.2.8",
    "_result": "RTMP 7.2",
    "_error": "RTMP 7.2",
}


class ProtocolTracer:
    """Explain one direction of a connection, byte by byte (handshake, chunks, messages).

    ``direction`` labels the lines (``"C->S"``); ``emit`` receives each line.
    ``handshake_first=False`` starts directly with the chunk stream.
    """

    def __init__(
        self,
        direction: str,
        emit: Callable[[str], None],
        *,
        client_side: bool = True,
        handshake_first: bool = True,
    ) -> None:
        self.direction = direction
        self.emit = emit
        self._names = ("C0", "C1", "C2") if client_side else ("S0", "S1", "S2")
        self._handshake_left: List[int] = [1, 1536, 1536] if handshake_first else []
        self._handshake_buffer = bytearray()
        self._decoder = ChunkDecoder(max_chunk_streams=65600, on_chunk=self._on_chunk)
        self._broken = False

    def feed(self, data: bytes) -> None:
        """Observe bytes going by in this direction."""
        if self._broken or not data:
            return
        view = memoryview(data)
        while self._handshake_left and len(view):
            need = self._handshake_left[0] - len(self._handshake_buffer)
            self._handshake_buffer += view[:need]
            view = view[need:]
            if len(self._handshake_buffer) == self._handshake_left[0]:
                self._explain_handshake(bytes(self._handshake_buffer))
                self._handshake_buffer.clear()
                self._handshake_left.pop(0)
        if not len(view):
            return
        try:
            self._decoder.receive_data(view)
            for message in self._decoder.messages():
                first, *more = explain_message(message)
                self._line(f"message {first}")
                for line in more:
                    self._line(line)
        except RTMPError as exc:
            self._broken = True
            self._line(f"cannot follow the chunk stream any more: {exc}")

    def _line(self, text: str) -> None:
        self.emit(f"{self.direction}  {text}")

    def _explain_handshake(self, block: bytes) -> None:
        index = 3 - len(self._handshake_left)
        name = self._names[index]
        if index == 0:
            self._line(f"{name}  version {block[0]}  (RTMP 5.2.2)")
            return
        time_field = U32.unpack_from(block)[0]
        second = block[4:8]
        if index == 1:
            if second == b"\x00\x00\x00\x00":
                self._line(f"{name}  time={time_field} zero=0, 1528 random bytes  (RTMP 5.2.3)")
            else:
                version = ".".join(str(b) for b in second)
                self._line(f"{name}  time={time_field} version {version}: digest handshake"
                           "  (RTMP 5.2.3, HS-FP9 C1)")
        else:
            self._line(f"{name}  time={time_field} time2={U32.unpack_from(second)[0]}, "
                       "echo or signed response  (RTMP 5.2.4, HS-FP9 S2/C2)")

    def _on_chunk(self, info: ChunkInfo) -> None:
        clause = _HEADER_CLAUSE[info.fmt]
        ext = " extended-timestamp" if info.extended else ""
        if info.fmt == 0:
            what = (f"timestamp={info.timestamp} length={info.length} type={info.type} "
                    f"msid={info.message_stream_id}")
        elif info.fmt == 1:
            what = f"delta={info.delta} length={info.length} type={info.type}"
        elif info.fmt == 2:
            what = f"delta={info.delta}"
        else:
            what = "continuation" if info.continuation else f"new message, delta={info.delta}"
        self._line(f"chunk fmt={info.fmt} csid={info.chunk_stream_id} {what}{ext} "
                   f"data={info.size}  ({clause}{', RTMP 5.3.1.3' if ext else ''})")
