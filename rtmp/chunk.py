"""RTMP 5.3: the chunk stream, as a sans-IO encoder and decoder.

Theory of operation
-------------------
RTMP 5.3 cuts every message into chunks of at most the sender's current chunk
size and interleaves chunks of different *chunk streams* on one TCP connection.
Each chunk starts with a basic header (RTMP 5.3.1.1: 2 bits of ``fmt`` and a
chunk stream id in 1, 2 or 3 bytes), then a message header whose size depends
on ``fmt`` (RTMP 5.3.1.2: type 0 = 11 bytes, type 1 = 7, type 2 = 3, type 3 =
0), an optional 4-byte extended timestamp (RTMP 5.3.1.3) and the chunk data.

Header compression works per chunk stream: a type 1, 2 or 3 header leaves out
the fields that equal those of the previous chunk on the *same* chunk stream.
Both ends therefore keep, for every chunk stream id, the last message stream
id, length, type id, timestamp and timestamp delta (``_ChunkStreamState``).

Decoding::

    decoder = ChunkDecoder(limits=Limits(max_message_size=..., max_chunk_streams=...))
    decoder.receive_data(data)            # b"" means EOF
    for message in decoder.messages():    # stops when more bytes are needed
        ...

A chunk is parsed only once all of its bytes have arrived, so the decoder never
holds a half-parsed header.  Set Chunk Size (RTMP 5.4.1) and Abort Message
(RTMP 5.4.2) act at the chunk layer: the decoder applies them itself, at the
exact byte where they take effect, and still yields them so the session above
can see them.

Encoding::

    encoder = ChunkEncoder(chunk_size=4096)
    wire = encoder.encode(message)       # picks the smallest correct header type

:func:`encode_type0` chunks a message with a full type 0 header and no state,
so a server relaying one message to many players produces its bytes once and
sends the same ``bytes`` object to each (:meth:`ChunkEncoder.note_sent` then
keeps each player's encoder state in step).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

from ._bytes import U24_MAX, U32, U32LE
from .errors import LimitExceededError, ProtocolError
from .message import Message, MessageType

__all__ = [
    "ChunkType",
    "ChunkInfo",
    "ChunkEncoder",
    "ChunkDecoder",
    "Limits",
    "DEFAULT_LIMITS",
    "encode_type0",
    "encode_basic_header",
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "RAW_BYTES",
]

logger = logging.getLogger(__name__)

#: RTMP 5.4.1: chunk size defaults to 128 bytes in each direction.
DEFAULT_CHUNK_SIZE = 128
#: RTMP 5.4.1: the largest chunk size (31 bits; bit 31 must be zero).
MAX_CHUNK_SIZE = 0x7FFFFFFF
#: Fan-out: the "chunk size" of an item's bytes that are sent as they are (not chunked,
#: nothing for the encoder to note; ``Transport.write_fanout``).
RAW_BYTES = -1
#: RTMP 5.3.1.1: chunk stream ids 2..65599 can be expressed.
MIN_CHUNK_STREAM_ID = 2
MAX_CHUNK_STREAM_ID = 65599
#: RTMP 5.3.1.2.1: the 3-byte timestamp field saturates at 0xFFFFFF.
EXTENDED_TIMESTAMP_MARK = U24_MAX

#: Defaults for the denial-of-service guards (hostile peers, issue 10).
DEFAULT_MAX_MESSAGE_SIZE = 0xFFFFFF  # RTMP 5.3.1.2.1: the 3-byte length field
DEFAULT_MAX_CHUNK_STREAMS = 256
DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What a peer may make one chunk decoder hold (RTMP 5.3, 5.4.1; hostile peers).

    One object travels config -> transport -> session -> :class:`ChunkDecoder`.
    ``max_message_size``: the largest message (bytes); ``max_chunk_streams``: chunk
    streams open at once (RTMP 5.3.1.1); ``max_pending_bytes``: what all partly received
    messages may announce together; ``max_chunk_size``: the largest Set Chunk Size a
    peer may announce (RTMP 5.4.1).  Exceeding one is a :class:`LimitExceededError`.
    """

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_chunk_streams: int = DEFAULT_MAX_CHUNK_STREAMS
    max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES
    max_chunk_size: int = MAX_CHUNK_SIZE

    @classmethod
    def of(
        cls,
        limits: Optional[Limits] = None,
        *,
        max_message_size: Optional[int] = None,
        max_chunk_streams: Optional[int] = None,
        max_pending_bytes: Optional[int] = None,
        max_chunk_size: Optional[int] = None,
    ) -> Limits:
        """``limits`` (default: the defaults) with the keywords that are not None put in.

        The constructors that took the four keywords one by one still take them this way.
        """
        base = limits if limits is not None else DEFAULT_LIMITS
        if (max_message_size is None and max_chunk_streams is None
                and max_pending_bytes is None and max_chunk_size is None):
            return base
        return cls(
            base.max_message_size if max_message_size is None else max_message_size,
            base.max_chunk_streams if max_chunk_streams is None else max_chunk_streams,
            base.max_pending_bytes if max_pending_bytes is None else max_pending_bytes,
            base.max_chunk_size if max_chunk_size is None else max_chunk_size,
        )  # fmt: skip


#: The chunk decoder's defaults.
DEFAULT_LIMITS = Limits()


class ChunkType:
    """RTMP 5.3.1.2: the four message header formats (``fmt``)."""

    TYPE_0 = 0  # RTMP 5.3.1.2.1: 11 bytes, absolute timestamp
    TYPE_1 = 1  # RTMP 5.3.1.2.2: 7 bytes, no message stream id
    TYPE_2 = 2  # RTMP 5.3.1.2.3: 3 bytes, timestamp delta only
    TYPE_3 = 3  # RTMP 5.3.1.2.4: no message header

    HEADER_SIZE = (11, 7, 3, 0)


def encode_basic_header(fmt: int, chunk_stream_id: int) -> bytes:
    """RTMP 5.3.1.1: the basic header in its smallest form (1, 2 or 3 bytes)."""
    if 2 <= chunk_stream_id <= 63:
        return bytes(((fmt << 6) | chunk_stream_id,))
    if 64 <= chunk_stream_id <= 319:
        return bytes((fmt << 6, chunk_stream_id - 64))
    if 320 <= chunk_stream_id <= MAX_CHUNK_STREAM_ID:
        value = chunk_stream_id - 64  # RTMP 5.3.1.1: 16-bit little-endian + 64
        return bytes(((fmt << 6) | 1, value & 0xFF, value >> 8))
    raise ValueError(f"chunk stream id {chunk_stream_id} outside 2..65599 (RTMP 5.3.1.1)")


def _chunk_payload(
    first_header: bytes, continuation: bytes, data: bytes, chunk_size: int
) -> bytes:
    """Join a first header, the data split at ``chunk_size`` and continuation headers."""
    size = len(data)
    if size <= chunk_size:
        return first_header + data
    view = memoryview(data)
    pieces: List[Union[bytes, memoryview]] = [
        view[i : i + chunk_size] for i in range(chunk_size, size, chunk_size)]
    # One copy of the payload: the first chunk goes with its header (not header + join).
    pieces.insert(0, first_header + view[:chunk_size])
    return continuation.join(pieces)


def encode_type0(message: Message, chunk_size: int) -> bytes:
    """RTMP 5.3.1.2.1: chunk ``message`` with a type 0 header and type 3 continuations.

    Stateless, so the result can be shared by every receiver of the same
    message (fan-out).  The receiver's :class:`ChunkEncoder` must be told with
    :meth:`ChunkEncoder.note_sent`.
    """
    csid = message.csid
    timestamp = message.timestamp
    data = message.data
    basics = _BASIC_HEADERS.get(csid) or _basic_headers(csid)
    if timestamp < EXTENDED_TIMESTAMP_MARK:
        # timestamp (3 bytes), message length (3), type id (1), big-endian in one go
        header = basics[0] + ((timestamp << 32) | (len(data) << 8) | message.type).to_bytes(
            7, "big") + U32LE.pack(message.message_stream_id)  # RTMP 5.3.1.2.1: little-endian
        if len(data) <= chunk_size:
            return header + data  # the usual audio message: one chunk
        return _chunk_payload(header, basics[1], data, chunk_size)
    # RTMP 5.3.1.3: the extended field, repeated on type 3 chunks
    ext = U32.pack(timestamp)
    header = basics[0] + ((EXTENDED_TIMESTAMP_MARK << 32) | (len(data) << 8)
                          | message.type).to_bytes(7, "big") \
        + U32LE.pack(message.message_stream_id) + ext
    return _chunk_payload(header, basics[1] + ext, data, chunk_size)


#: chunk stream id -> its type 0 and type 3 basic headers (RTMP 5.3.1.1), made once.
_BASIC_HEADERS: Dict[int, Tuple[bytes, bytes]] = {}


def _basic_headers(csid: int) -> Tuple[bytes, bytes]:
    headers = (encode_basic_header(ChunkType.TYPE_0, csid),
               encode_basic_header(ChunkType.TYPE_3, csid))
    _BASIC_HEADERS[csid] = headers
    return headers


@dataclass(frozen=True)
class ChunkInfo:
    """One parsed chunk, for the teaching trace (RTMP 5.3.1): its header after decoding."""

    fmt: int
    chunk_stream_id: int
    timestamp: int
    delta: int
    length: int
    type: int
    message_stream_id: int
    extended: bool
    continuation: bool
    size: int


class _ChunkStreamState:
    """What one end remembers about one chunk stream (RTMP 5.3.1.2.4)."""

    __slots__ = (
        "message_stream_id",
        "length",
        "type",
        "timestamp",
        "delta",
        "extended",
        "delta_valid",
        "parts",
        "received",
    )

    def __init__(self) -> None:
        self.message_stream_id = 0
        self.length = 0
        self.type = 0
        self.timestamp = 0
        self.delta = 0
        #: The last type 0/1/2 header carried an extended timestamp (RTMP 5.3.1.3).
        self.extended = False
        #: ``delta`` came from a type 1/2 header (not a type 0 absolute timestamp).
        self.delta_valid = False
        #: Chunks of a message still being received, and their byte count.
        self.parts: Optional[List[bytearray]] = None
        self.received = 0


class ChunkEncoder:
    """RTMP 5.3: turn messages into chunks, choosing the smallest correct header.

    The choice follows RTMP 5.3.1.2: type 0 for the first message of a chunk
    stream, a new message stream id or a timestamp that goes backwards; type 1
    when only the length or type changes; type 2 when only the delta changes;
    type 3 when everything including the delta repeats.
    """

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self._chunk_size = DEFAULT_CHUNK_SIZE
        self.set_chunk_size(chunk_size)
        self._streams: Dict[int, _ChunkStreamState] = {}

    @property
    def chunk_size(self) -> int:
        """The current outgoing maximum chunk size (RTMP 5.4.1)."""
        return self._chunk_size

    def set_chunk_size(self, size: int) -> None:
        """Use ``size`` for every following chunk (after sending Set Chunk Size)."""
        if not 1 <= size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size {size} outside 1..0x7FFFFFFF (RTMP 5.4.1)")
        self._chunk_size = size

    def reset(self, chunk_stream_id: Optional[int] = None) -> None:
        """Forget header state (all chunk streams, or one): the next header is type 0."""
        if chunk_stream_id is None:
            self._streams.clear()
        else:
            self._streams.pop(chunk_stream_id, None)

    def note_sent(self, message: Message) -> None:
        """Record that ``encode_type0(message, ...)`` bytes were written by someone else."""
        state = self._streams.get(message.csid)
        if state is None:
            state = self._streams[message.csid] = _ChunkStreamState()
        state.message_stream_id = message.message_stream_id
        state.length = len(message.data)
        state.type = message.type
        state.timestamp = message.timestamp
        state.delta = message.timestamp
        state.delta_valid = False
        state.extended = message.timestamp >= EXTENDED_TIMESTAMP_MARK

    def encode(self, message: Message) -> bytes:
        """Chunk one message; returns the bytes to write (RTMP 5.3.1)."""
        csid = message.csid
        state = self._streams.get(csid)
        timestamp = message.timestamp
        length = len(message.data)
        if (
            state is None
            or state.message_stream_id != message.message_stream_id
            or timestamp < state.timestamp  # RTMP 5.3.1.2.1: backwards (or wrapped)
        ):
            if state is None:
                state = self._streams[csid] = _ChunkStreamState()
            state.message_stream_id = message.message_stream_id
            state.length = length
            state.type = message.type
            state.timestamp = timestamp
            state.delta = timestamp
            state.delta_valid = False
            state.extended = timestamp >= EXTENDED_TIMESTAMP_MARK
            return encode_type0(message, self._chunk_size)

        delta = timestamp - state.timestamp
        if length != state.length or message.type != state.type:
            fmt = ChunkType.TYPE_1  # RTMP 5.3.1.2.2
        elif delta != state.delta or not state.delta_valid:
            fmt = ChunkType.TYPE_2  # RTMP 5.3.1.2.3
        else:
            fmt = ChunkType.TYPE_3  # RTMP 5.3.1.2.4: a new message, same everything
        extended = delta >= EXTENDED_TIMESTAMP_MARK
        field = EXTENDED_TIMESTAMP_MARK if extended else delta
        basic = encode_basic_header(fmt, csid)
        if fmt == ChunkType.TYPE_1:
            header = (
                basic
                + field.to_bytes(3, "big")
                + length.to_bytes(3, "big")
                + bytes((message.type,))
            )
        elif fmt == ChunkType.TYPE_2:
            header = basic + field.to_bytes(3, "big")
        else:
            header = basic
        continuation = encode_basic_header(ChunkType.TYPE_3, csid)
        if extended:  # RTMP 5.3.1.3 (also on type 3 chunks)
            ext = U32.pack(delta)
            header += ext
            continuation += ext
        state.length = length
        state.type = message.type
        state.timestamp = timestamp
        state.delta = delta
        state.delta_valid = True
        state.extended = extended
        return _chunk_payload(header, continuation, message.data, self._chunk_size)


class ChunkDecoder:
    """RTMP 5.3: reassemble messages from chunks, sans-IO.

    ``strict=False`` (the default) tolerates one widespread deviation: a peer
    that leaves out the repeated extended timestamp on type 3 continuation
    chunks (old librtmp; nginx-rtmp with ``publish_time_fix off``).  See
    :meth:`_type3_has_extended`.
    """

    def __init__(
        self,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        limits: Optional[Limits] = None,
        strict: bool = False,
        on_chunk: Optional[Callable[[ChunkInfo], None]] = None,
        **limit_overrides: int,
    ) -> None:
        self.chunk_size = chunk_size
        #: Called with every parsed chunk (the trace); disables the whole-message fast path.
        self.on_chunk = on_chunk
        # The four keywords of :class:`Limits` are still accepted one by one.
        self.limits = limits = Limits.of(limits, **limit_overrides)
        # Plain attributes for the hot path (and for readers of the old names).
        self.max_message_size = limits.max_message_size
        self.max_chunk_streams = limits.max_chunk_streams
        self.max_pending_bytes = limits.max_pending_bytes
        self.max_chunk_size = limits.max_chunk_size
        self.strict = strict
        self._buffer = bytearray()
        self._offset = 0
        self._streams: Dict[int, _ChunkStreamState] = {}
        self._pending_bytes = 0
        self._eof = False
        self._warned_type3 = False

    # -- input -------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the peer; ``b""`` signals end of stream."""
        if not data:
            self._eof = True
            return
        if self._offset and self._offset * 2 >= len(self._buffer):
            del self._buffer[: self._offset]  # compact once per batch
            self._offset = 0
        self._buffer += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet parsed into chunks."""
        return len(self._buffer) - self._offset

    @property
    def pending_bytes(self) -> int:
        """The announced sizes of all partially received messages (what they may grow to)."""
        return self._pending_bytes

    @property
    def chunk_stream_count(self) -> int:
        return len(self._streams)

    def messages(self) -> Iterator[Message]:
        """Yield every complete message the buffered bytes contain."""
        while True:
            message = self.next_message()
            if message is None:
                return
            yield message

    def next_message(self) -> Optional[Message]:
        """The next complete message, or None when more bytes are needed.

        Raises :class:`ProtocolError` at EOF inside a chunk or message.
        """
        while True:
            result = self._parse_chunk()
            if result is _NEED_DATA:
                if self._eof and (self.buffered or self._pending_bytes):
                    raise ProtocolError(
                        "connection closed in the middle of a chunk or message", "RTMP 5.3.1"
                    )
                return None
            if result is not None:
                assert isinstance(result, Message)
                if result.type in _CHUNK_CONTROL_TYPES:
                    self._apply_chunk_control(result)
                return result

    # -- chunk parsing ---------------------------------------------------------------

    def _parse_chunk(self) -> object:
        """Parse one whole chunk: a Message when it completes one, None, or _NEED_DATA."""
        buf = self._buffer
        pos = self._offset
        available = len(buf) - pos
        if available >= 12 and 1 < buf[pos] < 0x40:
            message = self._whole_type0(buf, pos)
            if message is not None:
                return message
        if available < 1:
            return _NEED_DATA
        first = buf[pos]
        fmt = first >> 6
        csid = first & 0x3F
        # RTMP 5.3.1.1: 0 and 1 select the 2- and 3-byte basic header forms.
        if csid == 0:
            if available < 2:
                return _NEED_DATA
            csid = buf[pos + 1] + 64
            pos += 2
        elif csid == 1:
            if available < 3:
                return _NEED_DATA
            csid = buf[pos + 1] + (buf[pos + 2] << 8) + 64
            pos += 3
        else:
            pos += 1
        header_size = ChunkType.HEADER_SIZE[fmt]
        end = len(buf)
        if end - pos < header_size:
            return _NEED_DATA

        state = self._streams.get(csid)
        if state is None:
            if fmt != ChunkType.TYPE_0:
                raise ProtocolError(
                    f"chunk stream {csid}: type {fmt} chunk before any type 0",
                    "RTMP 5.3.1.2.1",
                )
            if len(self._streams) >= self.max_chunk_streams:
                raise LimitExceededError(
                    "max_chunk_streams", len(self._streams) + 1, self.max_chunk_streams,
                    f"chunk stream {csid}",
                )

        starting = state is None or state.parts is None
        if fmt == ChunkType.TYPE_3:
            assert state is not None
            extended = state.extended and self._type3_has_extended(state, pos, starting)
            field = 0
        else:
            field = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
            extended = field == EXTENDED_TIMESTAMP_MARK
            if not starting:
                assert state is not None
                problem = (
                    f"chunk stream {csid}: type {fmt} header while a message of "
                    f"{state.length} bytes is incomplete ({state.received} received)"
                )
                if self.strict:
                    raise ProtocolError(problem, "RTMP 5.3.1.2.4")
                # Deviation (ffmpeg rtmppkt.c does the same): drop the partial message
                # and start the new one.
                logger.warning("%s: partial message dropped", problem)
                self._pending_bytes -= state.length
                state.parts = None
                state.received = 0
                starting = True
        ext_pos = pos + header_size
        data_pos = ext_pos + 4 if extended else ext_pos
        if data_pos > end:
            return _NEED_DATA

        # Decode the header into provisional values (committed once the chunk is whole).
        if fmt == ChunkType.TYPE_0:
            length = (buf[pos + 3] << 16) | (buf[pos + 4] << 8) | buf[pos + 5]
            mtype = buf[pos + 6]
            msid = U32LE.unpack_from(buf, pos + 7)[0]  # RTMP 5.3.1.2.1: little-endian
        elif fmt == ChunkType.TYPE_1:
            assert state is not None
            length = (buf[pos + 3] << 16) | (buf[pos + 4] << 8) | buf[pos + 5]
            mtype = buf[pos + 6]
            msid = state.message_stream_id
        else:
            assert state is not None
            length, mtype, msid = state.length, state.type, state.message_stream_id
        if starting and length > self.max_message_size:
            raise LimitExceededError(
                "max_message_size", length, self.max_message_size, f"chunk stream {csid}"
            )

        received = 0 if starting else state.received  # type: ignore[union-attr]
        size = min(self.chunk_size, length - received)
        if data_pos + size > end:
            return _NEED_DATA
        whole_end: Optional[int] = None
        if starting and length > size:
            if self._pending_bytes + length > self.max_pending_bytes:
                raise LimitExceededError(
                    "max_pending_bytes", self._pending_bytes + length, self.max_pending_bytes,
                    f"chunk stream {csid}",
                )
            if not extended and self.on_chunk is None:
                scan = self._scan_whole_message(csid, data_pos, length)
                if scan is _NEED_DATA:
                    return _NEED_DATA  # uninterrupted so far: wait for the rest
                whole_end = scan  # type: ignore[assignment]

        # The chunk is complete: commit the header to the chunk stream state.
        if state is None:
            state = self._streams[csid] = _ChunkStreamState()
        if starting:
            value = U32.unpack_from(buf, ext_pos)[0] if extended else field  # RTMP 5.3.1.3
            if fmt == ChunkType.TYPE_0:
                state.timestamp = value
                state.delta = value
                state.extended = extended
            elif fmt == ChunkType.TYPE_3:
                # RTMP 5.3.1.2.4: a new message reusing the stored delta.
                if extended:
                    state.delta = value
                state.timestamp = (state.timestamp + state.delta) & 0xFFFFFFFF
            else:
                state.delta = value
                state.extended = extended
                state.timestamp = (state.timestamp + value) & 0xFFFFFFFF
            state.length = length
            state.type = mtype
            state.message_stream_id = msid

        if self.on_chunk is not None:
            self.on_chunk(ChunkInfo(fmt, csid, state.timestamp, state.delta, state.length,
                                    state.type, state.message_stream_id, extended,
                                    not starting, size))
        if starting and size == length:  # the whole message in one chunk
            self._offset = data_pos + size
            with memoryview(buf) as view:
                return self._make_message(state, csid, bytes(view[data_pos : data_pos + size]))
        if whole_end is not None:
            return self._make_message(
                state, csid, self._take_whole(csid, data_pos, whole_end, length)
            )
        self._offset = data_pos + size
        if starting:
            state.parts = []
            state.received = 0
            self._pending_bytes += length  # reserved until the message completes
        assert state.parts is not None
        state.parts.append(buf[data_pos : data_pos + size])
        state.received += size
        if state.received < length:
            return None
        data = b"".join(state.parts)
        state.parts = None
        self._pending_bytes -= length
        state.received = 0
        return self._make_message(state, csid, data)

    def _whole_type0(self, buf: bytearray, pos: int) -> Optional[Message]:
        """Fast path: a type 0 chunk with a one-byte basic header (csid 2-63) and no
        extended timestamp that holds a whole message, all in the buffer (RTMP 5.3.1.2.1)
        -- the small commands of a session.  None sends it down the general path, which
        handles everything else (and raises the errors) the same way."""
        length = (buf[pos + 4] << 16) | (buf[pos + 5] << 8) | buf[pos + 6]
        data_pos = pos + 12
        end = data_pos + length
        if length > self.chunk_size or end > len(buf) or self.on_chunk is not None:
            return None
        timestamp = (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]
        if timestamp == EXTENDED_TIMESTAMP_MARK or length > self.max_message_size:
            return None
        csid = buf[pos]
        state = self._streams.get(csid)
        if state is None:
            if len(self._streams) >= self.max_chunk_streams:
                return None
            state = self._streams[csid] = _ChunkStreamState()
        elif state.parts is not None:
            return None  # a message of this chunk stream is incomplete
        state.timestamp = state.delta = timestamp
        state.extended = False
        state.length = length
        state.type = mtype = buf[pos + 7]
        state.message_stream_id = msid = U32LE.unpack_from(buf, pos + 8)[0]
        self._offset = end
        return Message.trusted(mtype, bytes(buf[data_pos:end]), timestamp, msid, csid)

    def _type3_has_extended(self, state: _ChunkStreamState, pos: int, starting: bool) -> bool:
        """RTMP 5.3.1.3: a type 3 chunk repeats the extended timestamp field.

        Deviation (old librtmp; nginx-rtmp with publish_time_fix off): some
        peers leave it out on continuation chunks.  Unless ``strict``, a
        continuation chunk whose next four bytes do not equal the expected
        value is taken to have no extended field (the check SRS also makes).
        """
        if self.strict or starting:
            return True
        buf = self._buffer
        if len(buf) - pos < 4:
            return True  # wait for the bytes; the check happens once they arrive
        # The repeated value is the first chunk's field: a delta or an absolute timestamp.
        present = U32.unpack_from(buf, pos)[0] in (state.delta, state.timestamp)
        if not present and not self._warned_type3:
            self._warned_type3 = True
            logger.warning(
                "peer omits the extended timestamp on type 3 continuation chunks "
                "(tolerated deviation from RTMP 5.3.1.3)"
            )
        return present

    def _scan_whole_message(self, csid: int, data_pos: int, length: int) -> object:
        """Fast path check: are a new message's chunks contiguous in the buffer?

        Looks at every continuation header that has arrived: each must be a
        type 3 chunk of the same chunk stream (RTMP 5.3.1.2.4).  Returns the end
        offset when the whole message is buffered, ``_NEED_DATA`` when it is
        uninterrupted so far but incomplete, and None when another chunk stream
        interleaves (the chunk-by-chunk path then handles it).
        """
        size = self.chunk_size
        continuation = encode_basic_header(ChunkType.TYPE_3, csid)
        step = len(continuation)
        count = (length - 1) // size  # continuation chunks after the first
        end = data_pos + length + count * step
        buf = self._buffer
        available = len(buf)
        stride = size + step
        first = data_pos + size  # where the first continuation header starts
        # Continuation headers wholly received so far (header j sits at first + j * stride).
        arrived = 0 if available < first + step else (available - first - step) // stride + 1
        arrived = min(arrived, count)
        # Whole-buffer check, one strided slice per header byte: a hostile chunk size of 1
        # makes every other byte a header, and a Python loop per header would cost seconds
        # per megabyte, again at every recv while the message is incomplete.
        stop = first + arrived * stride
        for k in range(step):
            if buf[first + k : stop : stride] != continuation[k : k + 1] * arrived:
                return None
        if arrived < count:
            return _NEED_DATA
        return end if end <= available else _NEED_DATA

    def _take_whole(self, csid: int, data_pos: int, end: int, length: int) -> bytes:
        """Copy a contiguous multi-chunk message out, skipping the headers.

        Large chunks: one join of one slice per chunk.  Small chunks (many of them): one
        strided copy per byte position within a chunk, so the work is C loops, not one
        Python step per chunk.
        """
        size = self.chunk_size
        stride = size + (1 if csid < 64 else 2 if csid < 320 else 3)
        count = (length - 1) // size
        if size < _STRIDED_COPY_BELOW:
            out = bytearray(length)
            buf = self._buffer
            for k in range(min(size, length)):
                out[k::size] = buf[data_pos + k : end : stride]
            self._offset = end
            return bytes(out)
        view = memoryview(self._buffer)
        pieces = [view[i : i + size] for i in range(data_pos, data_pos + count * stride, stride)]
        pieces.append(view[data_pos + count * stride : end])
        data = b"".join(pieces)
        del pieces, view  # (the last views of the buffer: it may be resized again)
        self._offset = end
        return data

    def _make_message(self, state: _ChunkStreamState, csid: int, data: bytes) -> Message:
        return Message.trusted(
            state.type, data, state.timestamp, state.message_stream_id, csid
        )

    # -- chunk-layer control (RTMP 5.4.1, 5.4.2) ------------------------------------

    def _apply_chunk_control(self, message: Message) -> None:
        # Deviation (ffmpeg listen mode): Set Chunk Size arrives on csid 3, not 2;
        # protocol control is accepted on any chunk stream unless ``strict``.
        if self.strict:
            check_control_stream(message)
        if message.type == MessageType.SET_CHUNK_SIZE:
            self.chunk_size = parse_set_chunk_size(message.data, self.max_chunk_size)
        elif message.type == MessageType.ABORT:
            if len(message.data) < 4:
                raise ProtocolError("Abort Message shorter than 4 bytes", "RTMP 5.4.2")
            target = U32.unpack_from(message.data)[0]
            state = self._streams.get(target)
            if state is not None and state.parts is not None:
                self._pending_bytes -= state.length
                state.parts = None  # RTMP 5.4.2: drop the partial message
                state.received = 0


def check_control_stream(message: Message) -> None:
    """RTMP 5.4: protocol control messages travel on msid 0 and csid 2 (strict check)."""
    if message.message_stream_id != 0 or message.csid != 2:
        raise ProtocolError(
            f"protocol control message type {int(message.type)} on msid "
            f"{message.message_stream_id}, csid {message.csid} (must be 0 and 2)",
            "RTMP 5.4",
        )


def parse_set_chunk_size(data: bytes, max_chunk_size: int = MAX_CHUNK_SIZE) -> int:
    """RTMP 5.4.1: the new chunk size from a Set Chunk Size payload, validated."""
    if len(data) < 4:
        raise ProtocolError("Set Chunk Size payload shorter than 4 bytes", "RTMP 5.4.1")
    value: int = U32.unpack_from(data)[0]
    if value & 0x80000000:
        raise ProtocolError(f"Set Chunk Size 0x{value:08X} has bit 31 set", "RTMP 5.4.1")
    if value == 0:
        raise ProtocolError("Set Chunk Size 0: the chunk size must be at least 1", "RTMP 5.4.1")
    if value > max_chunk_size:
        raise LimitExceededError("max_chunk_size", value, max_chunk_size, "Set Chunk Size")
    return value


_NEED_DATA = object()
#: Chunk sizes below this are copied out with strided slices (see ``_take_whole``).
_STRIDED_COPY_BELOW = 64
_CHUNK_CONTROL_TYPES = (MessageType.SET_CHUNK_SIZE, MessageType.ABORT)
