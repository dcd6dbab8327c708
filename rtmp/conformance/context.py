"""RTMP 5 / 7 (conformance): what checks use to talk to the server under test.

:class:`Context` holds the URL, the timeout and a unique run id (stream names are
``probe-<run id>-<label>``, so checks never collide with real streams or each other), and
tracks every socket a check opens so the runner can close them all, even after a check
timed out.  :class:`ProbeConnection` is a client connection that hides nothing: protocol
control and user control messages are returned (``deliver_control``), every message read
is kept in :attr:`ProbeConnection.received` with its arrival time, and raw chunk bytes
built by :func:`raw_message` can be written next to the encoder's own chunks (on chunk
streams the encoder does not use).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from .. import commands, user_control
from .._bytes import U32, U32LE
from ..calls import Calls, Event, StatusFailed, StatusReached
from ..chunk import EXTENDED_TIMESTAMP_MARK, ChunkInfo, encode_basic_header
from ..commands import Command
from ..errors import ConnectionClosedError
from ..errors import TimeoutError as RTMPTimeoutError
from ..message import COMMAND_TYPES, RELAYED_TYPES, Message, MessageType
from ..requests import Connect, CreateStream, Play, Publish
from ..transport import Transport, client_ssl_context, open_connection
from ..url import RTMPURL, parse_url
from ..user_control import UserControl
from .registry import fail

__all__ = [
    "Context",
    "MediaSample",
    "ProbeConnection",
    "Received",
    "media_script",
    "raw_message",
]

logger = logging.getLogger(__name__)

#: RTMP 7.1: the message types a player receives as the stream's content (what a
#: publisher's messages are relayed as, RTMP 7.1.2-7.1.5, and aggregates, RTMP 7.1.6).
MEDIA_TYPES = RELAYED_TYPES | {MessageType.AGGREGATE}
#: RTMP 5.2.3 / 5.2.4: handshake block size.
HANDSHAKE_SIZE = 1536


# -- hand-built chunks (RTMP 5.3.1) -----------------------------------------------------------


def _basic_header_csid(chunk: bytes) -> int:
    """RTMP 5.3.1.1: the chunk stream id of a chunk's basic header (1, 2 or 3 bytes)."""
    low = chunk[0] & 0x3F
    if low == 0 and len(chunk) > 1:
        return 64 + chunk[1]
    if low == 1 and len(chunk) > 2:
        return 64 + chunk[1] + (chunk[2] << 8)
    return low



def chunk_header(
    fmt: int,
    csid: int,
    *,
    timestamp: int = 0,
    length: int = 0,
    type_id: int = 0,
    msid: int = 0,
    basic: Optional[bytes] = None,
) -> bytes:
    """RTMP 5.3.1: one chunk header of type ``fmt``; ``timestamp`` is the absolute
    timestamp (type 0) or the delta (types 1, 2), extended when >= 0xFFFFFF (RTMP 5.3.1.3).
    ``basic`` overrides the basic header (e.g. a 3-byte form of a small csid); its ``fmt``
    bits must match ``fmt``."""
    head = basic if basic is not None else encode_basic_header(fmt, csid)
    extended = timestamp >= EXTENDED_TIMESTAMP_MARK
    field = EXTENDED_TIMESTAMP_MARK if extended else timestamp
    if fmt == 0:  # RTMP 5.3.1.2.1
        head += field.to_bytes(3, "big") + length.to_bytes(3, "big") + bytes((type_id,))
        head += U32LE.pack(msid)  # RTMP 5.3.1.2.1: msid little-endian
    elif fmt == 1:  # RTMP 5.3.1.2.2
        head += field.to_bytes(3, "big") + length.to_bytes(3, "big") + bytes((type_id,))
    elif fmt == 2:  # RTMP 5.3.1.2.3
        head += field.to_bytes(3, "big")
    if extended and fmt != 3:
        head += U32.pack(timestamp)  # RTMP 5.3.1.3
    return head


def raw_message(
    fmt: int,
    csid: int,
    data: bytes,
    chunk_size: int,
    *,
    timestamp: int = 0,
    type_id: int = MessageType.AUDIO,
    msid: int = 0,
    extended: Optional[int] = None,
    repeat_extended: bool = True,
    basic: Optional[bytes] = None,
) -> List[bytes]:
    """RTMP 5.3.1: the chunks of one message, first header of type ``fmt``, then type 3.

    For ``fmt`` 3 (a message that reuses the whole stored header, RTMP 5.3.1.2.4) pass
    ``extended`` when the stored header was extended: the field is then written on every
    chunk.  ``repeat_extended=False`` leaves the field out of continuation chunks (the
    deviation RTMP 5.3.1.3 forbids).  Returns the chunks separately so a caller can
    interleave other bytes (a Set Chunk Size mid-message, an Abort).
    """
    first = chunk_header(fmt, csid, timestamp=timestamp, length=len(data), type_id=type_id,
                         msid=msid, basic=basic)
    if fmt != 3 and timestamp >= EXTENDED_TIMESTAMP_MARK:
        extended = timestamp
    ext = U32.pack(extended) if extended is not None else b""
    if fmt == 3:
        first += ext
    if basic is not None:  # continuation chunks in the same (maybe non-minimal) form
        cont_basic = bytes((0xC0 | basic[0] & 0x3F,)) + basic[1:]
    else:
        cont_basic = encode_basic_header(3, csid)
    continuation = cont_basic + (ext if repeat_extended else b"")
    pieces = [data[i:i + chunk_size] for i in range(0, max(len(data), 1), chunk_size)]
    return [first + pieces[0]] + [continuation + piece for piece in pieces[1:]]


# -- media samples ------------------------------------------------------------------------------

#: FLV E.4.2.2: AAC-LC 44.1 kHz stereo AudioSpecificConfig behind an AAC sequence header.
AAC_SEQUENCE_HEADER = b"\xaf\x00\x12\x10"
_SPS = bytes.fromhex("6764001facd9405005bb011000000300100000030320f1831960")
_PPS = bytes.fromhex("68ebe3cb22c0")
#: FLV E.4.3.1: an AVC sequence header (AVCDecoderConfigurationRecord, 640x360 High@3.1).
AVC_SEQUENCE_HEADER = (
    b"\x17\x00\x00\x00\x00"
    + b"\x01\x64\x00\x1f\xff\xe1" + len(_SPS).to_bytes(2, "big") + _SPS
    + b"\x01" + len(_PPS).to_bytes(2, "big") + _PPS
)


@dataclass(frozen=True)
class MediaSample:
    """One message a publisher sends, as the player should see it again."""

    type: int
    timestamp: int
    data: bytes

    @property
    def is_sequence_header(self) -> bool:
        """FLV E.4.2.2 / E.4.3.1: AAC or AVC sequence header."""
        if self.type == MessageType.AUDIO:
            return self.data[:2] == b"\xaf\x00"
        if self.type == MessageType.VIDEO:
            return len(self.data) > 1 and self.data[0] & 0x0F == 7 and self.data[1] == 0
        return False


def media_script(seed: int, frames: int = 6, start: int = 0, big: int = 9000) -> List[MediaSample]:
    """A small A/V stream: AAC and AVC sequence headers, a keyframe, then alternating
    audio frames and inter frames (every third video frame ``big`` bytes, spanning chunks).
    Payload bytes come from ``seed``, so a player can compare them byte for byte."""
    rng = random.Random(seed)
    samples = [
        MediaSample(MessageType.AUDIO, start, AAC_SEQUENCE_HEADER),
        MediaSample(MessageType.VIDEO, start, AVC_SEQUENCE_HEADER),
    ]

    def nalu(kind: int, size: int) -> bytes:
        body = bytes((kind,)) + rng.randbytes(size - 1)
        return len(body).to_bytes(4, "big") + body

    samples.append(MediaSample(MessageType.VIDEO, start, b"\x17\x01\x00\x00\x00" + nalu(0x65, 1500)))
    for i in range(frames):
        ts = start + 23 * (i + 1)
        samples.append(MediaSample(MessageType.AUDIO, ts, b"\xaf\x01" + rng.randbytes(180 + i)))
        size = big if i % 3 == 2 else 400 + 17 * i
        samples.append(MediaSample(MessageType.VIDEO, ts + 3,
                                   b"\x27\x01\x00\x00\x00" + nalu(0x41, size)))
    return samples


# -- connections ----------------------------------------------------------------------------------


@dataclass
class Received:
    """A message read from the server, when (monotonic seconds) and, for commands and
    user control events, decoded; for commands also what ``rtmp.calls.Calls`` made
    of them (``events``: the reply to a call, a status wait's outcome, ...)."""

    message: Message
    at: float
    command: Optional[Command] = None
    event: Optional[UserControl] = None
    events: List[Event] = field(default_factory=list)


class ProbeConnection:
    """One connection to the server under test (client role), observing everything."""

    def __init__(self, ctx: Context, sock: socket.socket, *, digest: bool, label: str) -> None:
        self.ctx = ctx
        self.label = label
        self.transport = Transport(sock, role="client", conn_id=f"probe-{label}",
                                   read_timeout=ctx.timeout, write_timeout=ctx.timeout,
                                   digest=digest)
        self.transport.session.deliver_control = True
        #: Every message and user control event read, in order, with its arrival time.
        self.received: List[Received] = []
        #: The chunk headers the server sent, once :meth:`observe_chunks` was called.
        self.chunks: List[ChunkInfo] = []
        self.raw_sent = 0
        self.connect_reply: Optional[Command] = None
        #: RTMP 7.2: transactions (ours count from 11) and status waits, matched exactly;
        #: the server's own calls are seen, never answered (no Outgoing is sent).
        self.calls = Calls(first_transaction_id=11, answer_bandwidth_check=False, exact_ids=True)

    # -- setup ---------------------------------------------------------------------------------

    def observe_chunks(self) -> None:
        """Record every chunk header the server sends (RTMP 5.3.1) in :attr:`chunks`."""
        self.transport.session.decoder.on_chunk = self.chunks.append

    def connect(self, *, object_encoding: int = 0, transaction_id: int = 1,
                app: Optional[str] = None) -> Command:
        """RTMP 7.2.1.1: send connect; return the ``_result`` (FAIL on ``_error``/timeout)."""
        url = self.ctx.url
        request = Connect.create(app if app is not None else url.app, url.tc_url,
                                 object_encoding=object_encoding)
        self.send(self.calls.request(request, transaction_id=transaction_id)[0])
        reply = self.wait_reply(transaction_id, "connect _result")
        if reply.name != commands.RESULT:
            fail(f"connect answered with {reply.name} {reply.code or ''}".strip())
        self.connect_reply = reply
        return reply

    def next_transaction(self) -> int:
        """A fresh transaction id (RTMP 7.2.1.2), from 11 up."""
        return self.calls.next_transaction()

    def create_stream(self, transaction_id: Optional[int] = None, object_encoding: int = 0) -> int:
        """RTMP 7.2.1.3: createStream; the stream id of the ``_result``."""
        message, txn = self.calls.request(CreateStream(), transaction_id=transaction_id,
                                          object_encoding=object_encoding)
        self.send(message)
        reply = self.wait_reply(txn, "createStream _result")
        if reply.name != commands.RESULT:
            fail(f"createStream answered with {reply.name} {reply.code or ''}".strip())
        stream_id = reply.arguments[0] if reply.arguments else None
        if isinstance(stream_id, bool) or not isinstance(stream_id, (int, float)):
            fail(f"createStream _result carries {stream_id!r}, not a stream id (RTMP 7.2.1.3)")
        return int(stream_id)

    def publish(self, name: str) -> Tuple[int, Command]:
        """RTMP 7.2.2.6: createStream + publish; (stream id, the first onStatus)."""
        stream_id = self.create_stream()
        self.send(self.calls.request(Publish(name), stream_id=stream_id)[0])
        status = self.wait_status(stream_id, "publish onStatus")
        return stream_id, status

    def publish_started(self, name: str) -> int:
        stream_id, status = self.publish(name)
        if status.code != commands.NETSTREAM_PUBLISH_START:
            fail(f"publish {name!r} answered {status.code} ({status.info})")
        return stream_id

    def play(self, name: str) -> Tuple[int, Command]:
        """RTMP 7.2.2.1: createStream + play (live, start -1 would refuse a missing stream;
        -2 waits for it); returns (stream id, NetStream.Play.Start onStatus)."""
        stream_id = self.create_stream()
        self.send(self.calls.request(Play(name, start=-2), stream_id=stream_id)[0])
        self.send(user_control.set_buffer_length(stream_id, 100))
        deadline = time.monotonic() + self.ctx.timeout
        while True:
            status = self.wait_status(stream_id, "play onStatus",
                                      timeout=max(0.0, deadline - time.monotonic()))
            if status.code == commands.NETSTREAM_PLAY_START:
                return stream_id, status
            if status.is_error:
                fail(f"play {name!r} answered {status.code}: {status.info}")

    # -- sending -------------------------------------------------------------------------------

    def send(self, *messages: Message) -> None:
        self.transport.write_messages(messages)

    def send_raw(self, *chunks: bytes) -> None:
        """Write hand-built chunks (one chunk per argument) as they are (RTMP 5.3.1).

        They may use the conventional chunk streams the encoder uses too (audio 4, video 6):
        the encoder forgets its header state for each chunk stream written here, so its next
        message there starts with a type 0 header."""
        for chunk in chunks:
            if chunk:
                self.transport.session.encoder.reset(_basic_header_csid(chunk))
        data = b"".join(chunks)
        try:
            self.transport.sock.sendall(data)
        except OSError as exc:
            raise ConnectionClosedError(f"connection lost while sending: {exc}") from exc
        self.raw_sent += len(data)

    @property
    def bytes_sent(self) -> int:
        """Every byte written on the connection, handshake included."""
        return self.transport.bytes_sent + self.raw_sent

    # -- receiving -----------------------------------------------------------------------------

    def read(self, timeout: float) -> Received:
        msg = self.transport.read_message(timeout=max(0.001, timeout))
        item = Received(msg, time.monotonic())
        if msg.type in COMMAND_TYPES:
            item.command = commands.decode_command(msg)
            item.events = self.calls.receive(item.command)
        elif msg.type == MessageType.USER_CONTROL:
            item.event = user_control.decode(msg.data)
        self.received.append(item)
        return item

    def wait(self, predicate: Callable[[Received], bool], what: str,
             timeout: Optional[float] = None) -> Received:
        """Read until ``predicate`` holds; FAIL ("no <what> within T s") at the deadline or
        if the server closes the connection first."""
        limit = self.ctx.timeout if timeout is None else timeout
        try:
            item = self.poll(predicate, limit)
        except ConnectionClosedError:
            fail(f"server closed the connection while waiting for {what}")
        if item is None:
            fail(f"timeout: no {what} within {limit:g} s")
        return item

    def poll(self, predicate: Callable[[Received], bool], timeout: float) -> Optional[Received]:
        """Like :meth:`wait` but returns None at the deadline (for SHOULDs and negatives)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                item = self.read(remaining)
            except RTMPTimeoutError:
                return None
            if predicate(item):
                return item

    def closed_by_server(self) -> bool:
        """A round trip (createStream, RTMP 7.2.1.3): True when the server has closed the
        connection instead of answering, so everything written before was read or refused.
        An open connection that does not answer within the timeout counts as open."""
        txn = self.next_transaction()
        deadline = time.monotonic() + self.ctx.timeout
        try:
            self.send(commands.create_stream(txn))
            while True:
                cmd = self.read(deadline - time.monotonic()).command
                if cmd is not None and cmd.transaction_id == txn and cmd.name in (
                        commands.RESULT, commands.ERROR):
                    return False
        except (ConnectionClosedError, OSError):
            return True
        except RTMPTimeoutError:
            return False

    def wait_reply(self, transaction_id: int, what: str,
                   timeout: Optional[float] = None) -> Command:
        """RTMP 7.2: the ``_result``/``_error`` carrying exactly ``transaction_id``."""
        self.calls.track(transaction_id)
        try:
            found = self.wait(lambda item: self.calls.take(transaction_id) is not None, what,
                              timeout)
        finally:
            self.calls.cancel(transaction_id)
        assert found.command is not None
        return found.command

    def wait_status(self, stream_id: int, what: str, timeout: Optional[float] = None) -> Command:
        """RTMP 7.2.2: the next ``onStatus`` on message stream ``stream_id`` (or an
        ``_error`` for a stream command, RTMP 7.2.2.7)."""
        wait = self.calls.expect_status(stream_id, stream_zero=False, error_replies=True,
                                        what=what)
        try:
            found = self.wait(lambda item: wait.done, what, timeout)
        finally:
            self.calls.cancel_status(wait)
        outcome = wait.outcome
        assert isinstance(outcome, (StatusReached, StatusFailed)) and found.command is not None
        return outcome.command

    def media(self, *stream_ids: int) -> List[Message]:
        """Audio, video, aggregate and data messages received so far on any of
        ``stream_ids``."""
        return [r.message for r in self.received
                if r.message.type in MEDIA_TYPES and r.message.message_stream_id in stream_ids]

    def events(self, event: int) -> List[UserControl]:
        return [r.event for r in self.received if r.event is not None and r.event.event == event]

    def close(self) -> None:
        self.transport.close()


class Context:
    """What one check gets: the target, the limits, and connections it must not leak."""

    def __init__(self, url: str, timeout: float = 10.0, run_id: Optional[str] = None,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        parsed = parse_url(url)
        self.url: RTMPURL = parsed
        #: For ``rtmps://``: the TLS settings (the system's trusted certificates unless
        #: given); the checks then work on the decrypted chunk stream.
        self.ssl_context: Optional[ssl.SSLContext] = None
        if parsed.tls:
            self.ssl_context = ssl_context if ssl_context is not None else client_ssl_context()
        self.timeout = timeout
        self.run_id = run_id or os.urandom(4).hex()
        #: Measurements a check reports besides its verdict (milliseconds, counts).
        self.metrics: Dict[str, float] = {}
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()
        self._names = 0
        self.closed = False

    def stream_name(self, label: str) -> str:
        """A name no other run or check uses (``probe-<run>-<label>-<n>``)."""
        with self._lock:
            self._names += 1
            return f"probe-{self.run_id}-{label}-{self._names}"

    def socket(self) -> socket.socket:
        """A TCP (TLS for ``rtmps://``) connection to the server, closed by
        :meth:`close_all`."""
        sock = open_connection(self.url.host, self.url.port, timeout=self.timeout,
                               ssl_context=self.ssl_context)
        with self._lock:
            if self.closed:
                sock.close()
                raise ConnectionClosedError("the check was stopped")
            self._sockets.append(sock)
        return sock

    def connection(self, label: str, *, digest: bool = True, handshake: bool = True,
                   connect: bool = True, object_encoding: int = 0) -> ProbeConnection:
        """A :class:`ProbeConnection`, by default handshaken (RTMP 5.2) and connected."""
        conn = ProbeConnection(self, self.socket(), digest=digest, label=label)
        if handshake:
            conn.transport.handshake(self.timeout)
            if connect:
                conn.connect(object_encoding=object_encoding)
        return conn

    def close_all(self) -> None:
        """Close every socket the check opened (the server then ends its sessions)."""
        with self._lock:
            self.closed = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass


def read_exactly(sock: socket.socket, count: int, timeout: float) -> bytes:
    """Read ``count`` bytes or fewer if the peer closes or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while len(data) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            piece = sock.recv(count - len(data))
        except socket.timeout:
            break
        except OSError:
            break
        if not piece:
            break
        data += piece
    return bytes(data)


def quiet_bytes(sock: socket.socket, wait: float) -> bytes:
    """Whatever the server sends within ``wait`` seconds (for "must not send yet" rules)."""
    return read_exactly(sock, 1 << 16, wait)

