"""RTMP 5.4 and 6.2 on top of RTMP 5.3: one connection's message layer, sans-IO.

Theory of operation
-------------------
A :class:`Session` owns the chunk decoder and encoder of one connection (after
the handshake) and carries out the protocol control that neither the client nor
the server application should have to think about:

* Set Chunk Size and Abort Message (RTMP 5.4.1, 5.4.2) are applied by the chunk
  decoder at the byte where they take effect; sending Set Chunk Size switches
  the encoder right after the message is encoded.
* Acknowledgement (RTMP 5.4.3): every byte received is counted; each time the
  count crosses the window the peer asked for with Window Acknowledgement Size
  (RTMP 5.4.4), an Acknowledgement carrying the count (modulo 2**32) is queued.
* Set Peer Bandwidth (RTMP 5.4.5): hard, soft and dynamic limit rules; a
  Window Acknowledgement Size is queued when the resulting window differs from
  the last one we sent.
* Ping Request (RTMP 7.1.7, event 6) is answered with a Ping Response.

Everything else (commands, media, data, the other user control events) comes
out of :meth:`Session.next_message` for the application.

The read side (``receive_data``/``next_message``) never touches the encoder:
replies it wants to send are queued and turned into bytes by
:meth:`Session.pending_replies`, so a blocking transport can parse on one
thread and write on another with one lock around the encoder.
"""

from __future__ import annotations

import collections
import functools
import logging
from typing import Deque, Optional, Tuple, Union

from . import control, user_control
from .chunk import ChunkDecoder, ChunkEncoder, Limits, check_control_stream
from .control import LimitType
from .message import PROTOCOL_CONTROL_TYPES, Message, MessageType
from .user_control import UserControlEvent

__all__ = ["Session"]

logger = logging.getLogger(__name__)

_USER_CONTROL = MessageType.USER_CONTROL  # (a global: faster than the Enum's attribute)

_Logger = Union[logging.Logger, logging.LoggerAdapter]  # type: ignore[type-arg]


class Session:
    """The message layer of one RTMP connection (RTMP 5.3, 5.4, 6.2), without I/O.

    ``deliver_control=True`` also returns the protocol control messages and
    pings from :meth:`next_message` (after handling them), for tracing and the
    conformance probe.
    """

    def __init__(
        self,
        *,
        limits: Optional[Limits] = None,
        strict: bool = False,
        deliver_control: bool = False,
        log: Optional[_Logger] = None,
        **limit_overrides: int,
    ) -> None:
        # limit_overrides: the four keywords of Limits, still accepted one by one.
        self.decoder = ChunkDecoder(limits=Limits.of(limits, **limit_overrides), strict=strict)
        self.encoder = ChunkEncoder()
        self.deliver_control = deliver_control
        self.log: _Logger = log or logger
        #: Bytes received since the handshake (RTMP 5.4.3 sequence number, unwrapped).
        self.bytes_received = 0
        self._acknowledged = 0
        #: The window the peer told us to acknowledge at (RTMP 5.4.4); None until told.
        self.ack_window: Optional[int] = None
        #: The last sequence number the peer acknowledged (RTMP 5.4.3).
        self.peer_acknowledged = 0
        #: Our output limit from Set Peer Bandwidth (RTMP 5.4.5) and its limit type.
        self.peer_bandwidth: Optional[int] = None
        self.peer_limit_type: Optional[int] = None
        #: The last Window Acknowledgement Size we sent (RTMP 5.4.5 answer rule).
        self.window_ack_size_sent: Optional[int] = None
        #: Round trip of the last answered Ping Request we sent, in our time unit.
        self.last_ping_response: Optional[int] = None
        self._replies: Deque[Message] = collections.deque()

    # -- read side ----------------------------------------------------------------------

    @property
    def in_chunk_size(self) -> int:
        """The peer's current chunk size (RTMP 5.4.1)."""
        return self.decoder.chunk_size

    @property
    def out_chunk_size(self) -> int:
        """Our current chunk size (RTMP 5.4.1)."""
        return self.encoder.chunk_size

    def receive_data(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Feed bytes from the peer (``b""`` = EOF) and queue any Acknowledgement due."""
        self.decoder.receive_data(data)
        self.bytes_received += len(data)
        self._acknowledge_if_due()

    def _acknowledge_if_due(self) -> None:
        window = self.ack_window
        if window and self.bytes_received - self._acknowledged >= window:
            # RTMP 5.4.3: acknowledge once the window's worth of bytes has arrived.
            self._acknowledged = self.bytes_received
            self._replies.append(control.acknowledgement(self.bytes_received))

    def next_message(self) -> Optional[Message]:
        """The next application message, or None when more bytes are needed."""
        while True:
            message = self.decoder.next_message()
            if message is None:
                return None
            kind = message.type
            if kind in PROTOCOL_CONTROL_TYPES:
                self._handle_protocol_control(message)
                if self.deliver_control:
                    return message
                continue
            if kind == _USER_CONTROL:
                event = user_control.decode(message.data)
                if event.event == UserControlEvent.PING_REQUEST:
                    assert event.timestamp is not None
                    self._replies.append(user_control.ping_response(event.timestamp))
                    if not self.deliver_control:
                        continue
                elif event.event == UserControlEvent.PING_RESPONSE:
                    self.last_ping_response = event.timestamp
                    if not self.deliver_control:
                        continue
            return message

    def _handle_protocol_control(self, message: Message) -> None:
        if self.decoder.strict:
            check_control_stream(message)
        kind = message.type
        if kind == MessageType.SET_CHUNK_SIZE:
            self.log.debug("peer chunk size is now %d (RTMP 5.4.1)", self.decoder.chunk_size)
        elif kind == MessageType.ABORT:
            self.log.debug("peer aborted chunk stream %d (RTMP 5.4.2)",
                           control.parse_abort(message.data))
        elif kind == MessageType.ACKNOWLEDGEMENT:
            self.peer_acknowledged = control.parse_acknowledgement(message.data)
        elif kind == MessageType.WINDOW_ACK_SIZE:
            self.ack_window = control.parse_window_ack_size(message.data)
            self._acknowledge_if_due()  # bytes that arrived with it count too
            self.log.debug("acknowledging every %d bytes (RTMP 5.4.4)", self.ack_window)
        elif kind == MessageType.SET_PEER_BANDWIDTH:
            self._apply_peer_bandwidth(control.parse_set_peer_bandwidth(message.data))

    def _apply_peer_bandwidth(self, bandwidth: control.PeerBandwidth) -> None:
        """RTMP 5.4.5: the hard, soft and dynamic limit rules."""
        size, limit = bandwidth.window_size, bandwidth.limit_type
        previous_type = self.peer_limit_type
        if limit == LimitType.SOFT and self.peer_bandwidth is not None:
            size = min(size, self.peer_bandwidth)  # the smaller of new and current
        elif limit == LimitType.DYNAMIC:
            if previous_type != LimitType.HARD:
                return  # dynamic is ignored unless the previous limit was hard
            limit = LimitType.HARD
        self.peer_bandwidth = size
        self.peer_limit_type = limit
        if size != self.window_ack_size_sent:
            # RTMP 5.4.5: answer with a Window Acknowledgement Size if it changed.
            self._replies.append(control.window_ack_size(size))
            self.window_ack_size_sent = size

    # -- write side ---------------------------------------------------------------------

    def has_replies(self) -> bool:
        return bool(self._replies)

    def pending_replies(self) -> bytes:
        """Encode the control replies the read side queued (acks, pongs, windows)."""
        parts = []
        while self._replies:
            parts.append(self.send(self._replies.popleft()))
        return b"".join(parts)

    def send(self, message: Message) -> bytes:
        """Chunk one message for the wire, applying what it changes on our side."""
        data = self.encoder.encode(message)
        kind = message.type
        if kind == MessageType.SET_CHUNK_SIZE:
            # RTMP 5.4.1: the new size applies to the chunks after this message.
            self.encoder.set_chunk_size(control.parse_set_chunk_size(message.data))
        elif kind == MessageType.WINDOW_ACK_SIZE:
            self.window_ack_size_sent = control.parse_window_ack_size(message.data)
        return data

    def send_repeated(self, messages: Tuple[Message, ...]) -> bytes:
        """What :meth:`send` gives for each of ``messages``, joined, for a batch that many
        sessions send alike (connect's replies): chunked once per chunk size and reused.

        The bytes come from a fresh encoder, so the first message of each chunk stream
        has a type 0 header (RTMP 5.3.1.2.1), which makes them right whatever this
        encoder sent before; afterwards the encoder is told of the last message of each
        chunk stream (as for pre-chunked fan-out bytes), and a Set Chunk Size or Window
        Acknowledgement Size among them takes effect as in :meth:`send`."""
        data, last, chunk_size, window = _chunk_repeated(self.encoder.chunk_size, messages)
        for message in last:
            self.encoder.note_sent(message)
        if chunk_size != self.encoder.chunk_size:
            self.encoder.set_chunk_size(chunk_size)
        if window is not None:
            self.window_ack_size_sent = window
        return data

    def note_sent(self, message: Message) -> None:
        """Record a message written as pre-chunked type 0 bytes (fan-out)."""
        self.encoder.note_sent(message)


@functools.lru_cache(maxsize=32)
def _chunk_repeated(chunk_size: int, messages: Tuple[Message, ...]
                    ) -> Tuple[bytes, Tuple[Message, ...], int, Optional[int]]:
    """:meth:`Session.send_repeated`: the bytes of ``messages`` from a fresh encoder at
    ``chunk_size``, the last message of each chunk stream, the chunk size and the last
    Window Acknowledgement Size sent afterwards (messages are immutable)."""
    scratch = Session()
    scratch.encoder.set_chunk_size(chunk_size)
    data = b"".join([scratch.send(message) for message in messages])
    last = {message.csid: message for message in messages}
    return data, tuple(last.values()), scratch.encoder.chunk_size, scratch.window_ack_size_sent
