"""RTMP 7.2.2.1 / 7.2.2.6 load generator: a cheap publisher and cheap players on raw sockets.

The benchmarks drive every server (ours, nginx-rtmp, rtmplite3) with this same load
generator, so its own cost must stay small next to the server's:

* **Players** speak just enough RTMP to get media: the RTMP 5.2 simple handshake, then
  ``connect``, ``createStream`` and ``play`` (RTMP 7.2.1.1, 7.2.1.3, 7.2.2.1), all built
  with our sans-IO core (:mod:`rtmp.handshake`, :mod:`rtmp.chunk`, :mod:`rtmp.commands`).
  After that a player only reassembles chunks (:class:`rtmp.chunk.ChunkDecoder`), counts
  and hashes the audio and video payloads, and acknowledges (RTMP 5.4.3).  Each player is
  a separate process, so ten of them are not serialised by one GIL.
* **The publisher** chunks each message once with :class:`rtmp.chunk.ChunkEncoder` and
  writes batches of about 256 KB with one ``sendall`` each.
* **Connection-rate sessions** (:func:`light_session`) replay requests pre-encoded once
  per endpoint (:class:`SessionScript`) and check the replies on their AMF0 bytes, so a
  whole session costs the generator ~0.4 ms of CPU; :func:`run_connection_pool` runs them
  from several processes of a few threads each.

Flow control.  A live server does not slow a publisher down for a lagging player: nginx-rtmp
drops messages when a player's out-queue fills (``ngx_rtmp_send_message``), and our server
drops whole frames past its per-player byte budget (:mod:`rtmp.streams`).  "Every byte
intact" therefore needs the publisher to stay at most ``window`` payload bytes ahead of the
slowest player; the players publish their progress in shared memory.  The window (1 MiB by
default) is below every server's per-player queue, so no server ever has a reason to drop,
and the figure measured is the highest *lossless* relay rate.

Integrity.  The expected payload sequence of each message type is known from the FLV, so
every player's message count and SHA-256 over its payloads are compared with it: a single
lost, duplicated, reordered or altered byte fails the run.

Time is ``time.monotonic()``, which on Linux is one clock for all processes, so the
latency benchmark subtracts a publisher's send time from a player's receive time directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import queue
import resource
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from rtmp import commands, control, user_control
from rtmp.chunk import ChunkDecoder, ChunkEncoder
from rtmp.commands import Command, decode_command
from rtmp.flv import Reader
from rtmp.handshake import ClientHandshake
from rtmp.message import SET_DATA_FRAME_AMF0, Message, MessageType

logger = logging.getLogger(__name__)

__all__ = [
    "Endpoint",
    "MediaPlan",
    "PlayerResult",
    "PublishResult",
    "PoolResult",
    "RawConnection",
    "RelayOutcome",
    "SessionScript",
    "light_session",
    "run_connection_pool",
    "run_relay",
    "session_once",
]

#: Chunk size our publisher and players announce (RTMP 5.4.1), as ffmpeg and nginx use.
CHUNK_SIZE = 4096
#: Bytes a player reads per ``recv_into``.
READ_SIZE = 1 << 20
#: Bytes the publisher writes per ``sendall`` when not pacing.
BATCH_SIZE = 256 * 1024
#: Default flow-control window: payload bytes the publisher may be ahead of the slowest player.
DEFAULT_WINDOW = 1 << 20
#: Window acknowledgement size our players announce (RTMP 5.4.4), as ffmpeg does.
WINDOW_ACK_SIZE = 2_500_000
#: How often a waiting player looks whether the run was aborted (socket timeout, seconds).
_POLL_SECONDS = 1.0
#: The gap put between the last message of one pass and the first of the next.
PASS_GAP_MS = 40


_MEDIA = (MessageType.AUDIO, MessageType.VIDEO)
_COMMANDS = (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3)


@dataclass(frozen=True)
class Endpoint:
    """Where a server listens and which app / stream name the benchmark uses."""

    host: str
    port: int
    app: str = "live"
    stream: str = "bench"

    @property
    def tc_url(self) -> str:
        return f"rtmp://{self.host}:{self.port}/{self.app}"

    @property
    def url(self) -> str:
        return f"{self.tc_url}/{self.stream}"


# -- what is sent and what must arrive ----------------------------------------------------


def _is_sequence_header(kind: int, data: bytes) -> bool:
    """FLV E.4.2.2 / E.4.3.2: an AAC or AVC sequence header (sent once per stream)."""
    if len(data) < 2:
        return False
    if kind == MessageType.AUDIO:
        return data[0] >> 4 == 10 and data[1] == 0  # SoundFormat 10 (AAC), AACPacketType 0
    return data[0] & 0x0F == 7 and data[1] == 0  # CodecID 7 (AVC), AVCPacketType 0


@dataclass
class MediaPlan:
    """The messages of one FLV, repeated ``passes`` times on one continuous timeline.

    The first pass sends metadata and the sequence headers; the following passes send only
    the frames, with timestamps moved past the end of the previous pass.
    """

    metadata: Optional[bytes]
    headers: List[Tuple[int, int, bytes]]
    frames: List[Tuple[int, int, bytes]]
    passes: int = 1
    _expected: Optional[Tuple[Tuple[int, int, int], Dict[int, Tuple[int, str]]]] = field(
        default=None, repr=False, compare=False)

    @classmethod
    def from_flv(cls, path: "os.PathLike[str] | str", passes: int = 1) -> "MediaPlan":
        metadata: Optional[bytes] = None
        headers: List[Tuple[int, int, bytes]] = []
        frames: List[Tuple[int, int, bytes]] = []
        with Reader(path) as reader:
            for tag in reader:
                if tag.type == MessageType.DATA_AMF0:
                    if metadata is None:
                        metadata = bytes(tag.data)
                elif tag.type in _MEDIA:
                    item = (int(tag.type), int(tag.timestamp), bytes(tag.data))
                    if not frames and _is_sequence_header(tag.type, tag.data):
                        headers.append(item)
                    else:
                        frames.append(item)
        if not frames:
            raise ValueError(f"{path}: no audio or video frames")
        return cls(metadata, headers, frames, passes)

    def truncated(self, seconds: float) -> "MediaPlan":
        """The same plan with only the frames of the first ``seconds`` of media."""
        end = self.frames[0][1] + int(seconds * 1000)
        frames = [f for f in self.frames if f[1] < end]
        return MediaPlan(self.metadata, self.headers, frames, self.passes)

    @property
    def pass_duration_ms(self) -> int:
        return self.frames[-1][1] - self.frames[0][1] + PASS_GAP_MS

    def messages(self, stream_id: int) -> Iterator[Message]:
        """Every message the publisher sends, in order (metadata first)."""
        if self.metadata is not None:
            # RTMP 7.1.2 [impl]: "@setDataFrame" before onMetaData, as ffmpeg and OBS send it.
            yield Message(type=MessageType.DATA_AMF0, data=SET_DATA_FRAME_AMF0 + self.metadata,
                          timestamp=0, message_stream_id=stream_id)
        for kind, timestamp, data in self.headers:
            yield Message(type=kind, data=data, timestamp=timestamp, message_stream_id=stream_id)
        for index in range(self.passes):
            offset = index * self.pass_duration_ms
            for kind, timestamp, data in self.frames:
                yield Message(type=kind, data=data, timestamp=timestamp + offset,
                              message_stream_id=stream_id)

    def media(self) -> Iterator[Tuple[int, bytes]]:
        """(type, payload) of every audio and video message, in sending order."""
        for kind, _, data in self.headers:
            yield kind, data
        for _ in range(self.passes):
            for kind, _, data in self.frames:
                yield kind, data

    def expected(self) -> Dict[int, Tuple[int, str]]:
        """For audio (8) and video (9): the message count and SHA-256 of the payloads."""
        key = (len(self.headers), len(self.frames), self.passes)
        if self._expected is None or self._expected[0] != key:
            self._expected = (key, self._compute_expected())
        return dict(self._expected[1])

    def _compute_expected(self) -> Dict[int, Tuple[int, str]]:
        kinds = (int(MessageType.AUDIO), int(MessageType.VIDEO))
        hashes = {k: hashlib.sha256() for k in kinds}
        counts = {k: 0 for k in kinds}
        for kind, data in self.media():
            hashes[kind].update(data)
            counts[kind] += 1
        return {k: (counts[k], hashes[k].hexdigest()) for k in hashes}

    @property
    def media_bytes(self) -> int:
        """Audio and video payload bytes one player must receive."""
        once = sum(len(d) for _, _, d in self.frames)
        return sum(len(d) for _, _, d in self.headers) + once * self.passes


# -- one raw RTMP connection ---------------------------------------------------------------


class RawConnection:
    """The least RTMP a benchmark client needs, on a blocking socket.

    RTMP 5.2 handshake (simple, as rtmpdump without digest), then commands encoded with
    :mod:`rtmp.commands` and chunked with :class:`ChunkEncoder`.  Incoming protocol control
    is handled here: Set Chunk Size is applied by the decoder itself, Window Acknowledgement
    Size is remembered and answered with Acknowledgements (RTMP 5.4.3, 5.4.4), and a Ping
    Request gets its Ping Response (RTMP 7.1.7 event 6/7).
    """

    def __init__(self, endpoint: Endpoint, timeout: float = 30.0, rcvbuf: int = 0) -> None:
        self.endpoint = endpoint
        if rcvbuf:  # before connecting: the window scale is agreed in the handshake
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect((endpoint.host, endpoint.port))
        else:
            self.sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder = ChunkEncoder()
        self.decoder = ChunkDecoder()
        self.bytes_received = 0
        self._acked = 0
        self._window = 0
        self._buffer = bytearray(READ_SIZE)
        self._view = memoryview(self._buffer)
        self._txn = 1
        self.send_lock = threading.Lock()
        #: Ask for immediate ACKs while setting the session up.  nginx-rtmp writes its
        #: small replies without TCP_NODELAY, so Nagle waits for our ACK, which Linux
        #: delays by up to 40 ms: without this, a session against nginx-rtmp costs
        #: ~50 ms of timers (21 instead of 142 sessions/s measured on one thread).
        self.quickack = hasattr(socket, "TCP_QUICKACK")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # -- bytes ---------------------------------------------------------------------------

    def recv(self, limit: int = 0) -> int:
        """Read once (at most ``limit`` bytes, if given) into the decoder; returns the byte
        count (0 = the server closed)."""
        if self.quickack:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        n = self.sock.recv_into(self._buffer, limit)
        if n:
            self.decoder.receive_data(self._view[:n])
            self.bytes_received += n
            if self._window and self.bytes_received - self._acked >= self._window:
                # RTMP 5.4.3: acknowledge once a window's worth of bytes has arrived.
                self._acked = self.bytes_received
                self.send(control.acknowledgement(self.bytes_received & 0xFFFFFFFF))
        else:
            self.decoder.receive_data(b"")
        return n

    def send(self, message: Message) -> None:
        with self.send_lock:
            self.sock.sendall(self.encoder.encode(message))

    def handle_control(self, message: Message) -> bool:
        """Protocol control and user control (RTMP 5.4, 7.1.7); True if consumed."""
        kind = message.type
        if kind == MessageType.WINDOW_ACK_SIZE:
            self._window = control.parse_window_ack_size(message.data)  # RTMP 5.4.4
            return True
        if kind == MessageType.USER_CONTROL:
            event = user_control.decode(message.data)
            if event.event == user_control.UserControlEvent.PING_REQUEST:
                assert event.timestamp is not None
                self.send(user_control.ping_response(event.timestamp))  # RTMP 7.1.7 event 7
            return True
        return kind in (MessageType.SET_CHUNK_SIZE, MessageType.ABORT,
                        MessageType.ACKNOWLEDGEMENT, MessageType.SET_PEER_BANDWIDTH)

    def messages(self) -> Iterator[Message]:
        """Messages for the caller, reading as needed; protocol control is consumed here."""
        while True:
            for message in self.decoder.messages():
                if not self.handle_control(message):
                    yield message
            if not self.recv():
                for message in self.decoder.messages():
                    if not self.handle_control(message):
                        yield message
                return

    # -- session setup -------------------------------------------------------------------

    def handshake(self) -> None:
        """RTMP 5.2: C0+C1, S0+S1+S2, C2 (simple handshake)."""
        hs = ClientHandshake(digest=False)
        self.sock.sendall(hs.data_to_send())
        while not hs.complete:
            if self.quickack:
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            data = self.sock.recv(8192)
            if not data:
                raise ConnectionError("server closed the connection during the handshake")
            hs.receive_data(data)
            out = hs.data_to_send()
            if out:
                self.sock.sendall(out)
        if hs.trailing_data:
            self.decoder.receive_data(hs.trailing_data)

    def _wait(self, accept: Callable[[Command], bool], what: str) -> Command:
        for message in self.messages():
            if message.type in _COMMANDS:
                command = decode_command(message)
                if command.is_error:
                    raise ConnectionError(f"{what}: server answered {command.name} {command.code}")
                if accept(command):
                    return command
        raise ConnectionError(f"{what}: server closed the connection")

    def _call(self, message_for: Callable[[int], Message], what: str) -> Command:
        self._txn += 1
        txn = self._txn
        self.send(message_for(txn))
        return self._wait(lambda c: c.name == commands.RESULT and c.transaction_id == txn, what)

    def connect(self) -> None:
        """Handshake, chunk size 4096 (RTMP 5.4.1), window size, ``connect`` (RTMP 7.2.1.1)."""
        self.handshake()
        self.send(control.set_chunk_size(CHUNK_SIZE))
        self.encoder.set_chunk_size(CHUNK_SIZE)
        self.send(control.window_ack_size(WINDOW_ACK_SIZE))
        obj = commands.connect_command_object(self.endpoint.app, self.endpoint.tc_url)
        self.send(commands.connect(obj, transaction_id=1))
        self._wait(lambda c: c.name == commands.RESULT and c.transaction_id == 1, "connect")

    def create_stream(self) -> int:
        """RTMP 7.2.1.3: the message stream id from ``createStream``'s ``_result``."""
        command = self._call(commands.create_stream, "createStream")
        stream_id = next((a for a in command.arguments if isinstance(a, (int, float))), 1)
        return int(stream_id)

    def play(self, stream_id: int, buffer_ms: int = 3000) -> None:
        """RTMP 7.2.2.1: ``play`` live, then Set Buffer Length; returns at Play.Start.

        Start and duration travel in milliseconds, as ffmpeg sends them ([impl]).
        """
        self.send(commands.play(self.endpoint.stream, stream_id, start=-2000, duration=-1000))
        self.send(user_control.set_buffer_length(stream_id, buffer_ms))  # RTMP 7.1.7 event 3
        self._wait(lambda c: c.name == commands.ON_STATUS
                   and c.code == commands.NETSTREAM_PLAY_START, "play")

    def publish(self, stream_id: int) -> None:
        """RTMP 7.2.2.6: ``publish name live``; returns at NetStream.Publish.Start."""
        self.send(commands.publish(self.endpoint.stream, "live", stream_id))
        self._wait(lambda c: c.name == commands.ON_STATUS
                   and c.code == commands.NETSTREAM_PUBLISH_START, "publish")


@contextlib.contextmanager
def quiet_handshake_warnings() -> Iterator[None]:
    """Silence the per-connection warning about rtmplite3's S2 (it does not echo C1,
    RTMP 5.2.4), which would otherwise be logged once per session."""
    handshake_logger = logging.getLogger("rtmp.handshake")
    level = handshake_logger.level
    handshake_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        handshake_logger.setLevel(level)


def session_once(endpoint: Endpoint, timeout: float = 10.0) -> None:
    """One full player session: handshake, connect, createStream, play, then a polite
    close as ffmpeg does it: ``deleteStream`` (RTMP 7.2.2.3) and a TCP shutdown."""
    conn = RawConnection(endpoint, timeout)
    try:
        conn.connect()
        stream_id = conn.create_stream()
        conn.play(stream_id)
        conn.send(commands.delete_stream(stream_id))
        conn.sock.shutdown(socket.SHUT_WR)
    finally:
        conn.close()


# -- light sessions for the connection rate ---------------------------------------------

#: RTMP 5.2.2-5.2.4: S0 (1 byte), S1 and S2 (1536 bytes each).
HANDSHAKE_BYTES = 1 + 1536 + 1536
#: Bytes a light session reads per ``recv``.
_LIGHT_READ = 16384
#: AMF0 2.4 string "_result" followed by the number marker (2.2) of the transaction id.
_AMF0_RESULT = b"\x02\x00\x07_result\x00"
#: Offset of the transaction id's 8-byte double in a ``_result`` (after the prefix above).
_TXN_OFFSET = len(_AMF0_RESULT)
#: AMF0 strings "_error" and "onStatus" (RTMP 7.2).
_AMF0_ERROR = b"\x02\x00\x06_error"
_AMF0_ON_STATUS = b"\x02\x00\x08onStatus"
#: The AMF0 object property ``code: "NetStream.Play.Start"`` (RTMP 7.2.2.1).
_PLAY_START = b"\x00\x04code\x02\x00\x14" + commands.NETSTREAM_PLAY_START.encode()
#: The AMF0 object property ``level: "error"`` of a failing onStatus (RTMP 7.2.2).
_LEVEL_ERROR = b"\x00\x05level\x02\x00\x05error"
_PLAY_FAILURES = (commands.NETSTREAM_PLAY_FAILED.encode(),
                  commands.NETSTREAM_PLAY_STREAM_NOT_FOUND.encode())
_STAGES = ("connect _result (txn 1)", "createStream _result (txn 2)", "NetStream.Play.Start")


def _chunked(*messages: Message) -> bytes:
    """The chunks of ``messages``, each from a fresh encoder: every first chunk is type 0
    (RTMP 5.3.1.2.1), so the bytes are right whatever was sent before them."""
    return b"".join(ChunkEncoder().encode(message) for message in messages)


class SessionScript:
    """The bytes of a light player session (see :func:`light_session`), built once per
    :class:`Endpoint` with :mod:`rtmp.commands` and :class:`ChunkEncoder`.

    C0+C1 is RTMP 5.2.2/5.2.3 with time and zero fields 0 and random bytes from
    :func:`os.urandom` (simple handshake, no digest); ``connect`` is transaction 1
    (RTMP 7.2.1.1), ``createStream`` transaction 2 (RTMP 7.2.1.3).  ``play`` + Set Buffer
    Length and ``deleteStream`` depend on the stream id the server returns and are built
    the first time each id is seen.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.address = (endpoint.host, endpoint.port)
        self.c0c1 = b"\x03" + bytes(8) + os.urandom(1528)
        command_object = commands.connect_command_object(endpoint.app, endpoint.tc_url)
        self.connect = _chunked(commands.connect(command_object, transaction_id=1))
        self.create_stream = _chunked(commands.create_stream(2))
        self._per_stream: Dict[int, Tuple[bytes, bytes]] = {}

    def play_and_delete(self, stream_id: int) -> Tuple[bytes, bytes]:
        """``play`` live as ffmpeg sends it, then Set Buffer Length (RTMP 7.2.2.1, 7.1.7
        event 3); and ``deleteStream`` (RTMP 7.2.2.3)."""
        chunks = self._per_stream.get(stream_id)
        if chunks is None:
            play = _chunked(
                commands.play(self.endpoint.stream, stream_id, start=-2000, duration=-1000),
                user_control.set_buffer_length(stream_id, 3000))
            chunks = (play, _chunked(commands.delete_stream(stream_id)))
            self._per_stream[stream_id] = chunks
        return chunks


def _created_stream_id(message: Message, payload: bytes) -> int:
    """RTMP 7.2.1.3: the stream id of a createStream ``_result``.  Fast path for the usual
    ``null, number`` after the transaction id; anything else is decoded in full."""
    pos = _TXN_OFFSET + 8
    if payload[pos:pos + 2] == b"\x05\x00" and len(payload) == pos + 10:
        return int(struct.unpack_from(">d", payload, pos + 2)[0])
    command = decode_command(message)
    for value in command.arguments:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    raise ConnectionError(f"createStream _result without a stream id: {command.arguments!r}")


def _failure(message: Message, what: str) -> ConnectionError:
    """The error for an ``_error`` or failing onStatus, with its code when it decodes."""
    try:
        command = decode_command(message)
        info = command.info or {}
        detail = f"{command.name} {command.code or ''} {info.get('description') or ''}".strip()
    except Exception:  # the reply is reported, not judged
        detail = bytes(message.data[:80]).decode("latin-1")
    return ConnectionError(f"{detail} while waiting for {what}")


def light_session(script: SessionScript, timeout: float = 10.0) -> int:
    """One full player session on a raw socket, as cheap for the client as it can honestly
    be; returns the stream id the server gave.  Used by the connection-rate benchmark,
    where the generator's own CPU would otherwise cap every server (one GIL).

    On the wire it is :func:`session_once`: RTMP 5.2 handshake, ``connect`` (7.2.1.1),
    ``createStream`` (7.2.1.3), ``play`` (7.2.2.1) until ``NetStream.Play.Start``, then
    ``deleteStream`` (7.2.2.3) and a TCP shutdown.  What makes it light:

    * every client message is pre-encoded in ``script`` (nothing is AMF-encoded or chunked
      per session); C2 is the echo of S1 (RTMP 5.2.4) and goes out with ``connect`` in one
      write when S0+S1+S2 came together;
    * replies are reassembled by :class:`ChunkDecoder` (which applies Set Chunk Size,
      RTMP 5.4.1) but not AMF-decoded: their AMF0 bytes are checked in place.

    What it checks (a session counts only if every reply was seen): S0 is version 3
    (RTMP 5.2.2); a ``_result`` with transaction id 1 (read at its fixed offset) for
    ``connect``; a ``_result`` with transaction id 2 for ``createStream``, whose stream id
    is the one ``play`` and ``deleteStream`` use; an onStatus on that stream with ``code``
    ``NetStream.Play.Start``.  An ``_error``, an onStatus of level ``error`` (or
    Play.Failed / Play.StreamNotFound), the server closing early, or ``timeout`` raise.
    S2 is not compared with C1 (rtmplite3 does not echo it; RawConnection only warns).
    Bytes arriving after the 3073 handshake bytes go to the chunk decoder.
    """
    sock = socket.create_connection(script.address, timeout=timeout)
    try:
        setopt = sock.setsockopt
        setopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # nginx-rtmp writes its small replies with Nagle on: ask for immediate ACKs (see
        # RawConnection.quickack), or each reply waits for a delayed ACK (up to 40 ms).
        quickack = getattr(socket, "TCP_QUICKACK", 0)
        sock.sendall(script.c0c1)
        buffer = bytearray(_LIGHT_READ)
        view = memoryview(buffer)
        got = 0
        c2_sent = False
        while got < HANDSHAKE_BYTES:
            if quickack:
                setopt(socket.IPPROTO_TCP, quickack, 1)
            n = sock.recv_into(view[got:])
            if not n:
                raise ConnectionError("server closed the connection during the handshake")
            got += n
            if not c2_sent and got >= 1537 and got < HANDSHAKE_BYTES:
                sock.sendall(view[1:1537])  # RTMP 5.2.4: C2 once S1 is in, S2 still due
                c2_sent = True
        if buffer[0] != 3:
            raise ConnectionError(f"S0 asks for RTMP version {buffer[0]} (RTMP 5.2.2: 3)")
        decoder = ChunkDecoder()
        if got > HANDSHAKE_BYTES:
            decoder.receive_data(bytes(view[HANDSHAKE_BYTES:got]))
        sock.sendall(script.connect if c2_sent else bytes(view[1:1537]) + script.connect)
        stage = 0  # waiting for: 0 connect _result, 1 createStream _result, 2 Play.Start
        stream_id = -1
        delete = b""
        data = b""
        while True:
            for message in decoder.messages():
                kind = message.type
                if kind == 20:  # RTMP 7.1.1 AMF0 command
                    payload = message.data
                elif kind == 17:  # AMF3 command: one format byte, then AMF0 (RTMP 7.1.1)
                    payload = message.data[1:]
                else:
                    continue  # protocol and user control, onBWDone's data, media
                if payload.startswith(_AMF0_RESULT):
                    txn = struct.unpack_from(">d", payload, _TXN_OFFSET)[0]
                    if stage == 0 and txn == 1.0:
                        stage = 1
                        sock.sendall(script.create_stream)
                    elif stage == 1 and txn == 2.0:
                        stream_id = _created_stream_id(message, payload)
                        play, delete = script.play_and_delete(stream_id)
                        stage = 2
                        sock.sendall(play)
                elif payload.startswith(_AMF0_ERROR):
                    raise _failure(message, _STAGES[stage])
                elif payload.startswith(_AMF0_ON_STATUS):
                    if _LEVEL_ERROR in payload or any(f in payload for f in _PLAY_FAILURES):
                        raise _failure(message, _STAGES[stage])
                    if stage == 2 and message.message_stream_id == stream_id \
                            and _PLAY_START in payload:
                        sock.sendall(delete)
                        sock.shutdown(socket.SHUT_WR)
                        return stream_id
            if quickack:
                setopt(socket.IPPROTO_TCP, quickack, 1)
            data = sock.recv(_LIGHT_READ)
            if not data:
                raise ConnectionError(f"server closed the connection while waiting for "
                                      f"{_STAGES[stage]}")
            decoder.receive_data(data)
    finally:
        sock.close()


@dataclass
class PoolResult:
    """One connection-pool process: sessions completed, monotonic times (start of the
    measurement, end, last completed session), CPU seconds while measuring, errors."""

    sessions: int = 0
    start: float = 0.0
    end: float = 0.0
    last_success: float = 0.0
    cpu_seconds: float = 0.0
    errors: List[str] = field(default_factory=list)


def connection_pool_process(endpoint: Endpoint, threads: int, seconds: float, ready: Any,
                            go: Any, stop: Any, results: Any) -> None:
    """``threads`` threads running :func:`light_session` back to back for ``seconds``
    after ``go`` is set; puts a :class:`PoolResult` on ``results``.

    ``stop`` is a shared flag (a one-element RawArray): set on the first failure in any
    process, it stops every thread of every process.
    """
    result = PoolResult()
    try:
        script = SessionScript(endpoint)
        light_session(script)  # warm-up: imports, first stream id, caches
    except Exception as exc:
        result.errors.append(f"{type(exc).__name__}: {exc}")
        stop[0] = 1
    ready.release()
    if result.errors or not go.wait(60) or stop[0]:
        results.put(result)
        return
    counts = [0] * threads
    last = [0.0] * threads
    errors = result.errors
    cpu_start = _cpu_seconds()
    start = time.monotonic()
    deadline = start + seconds

    def worker(slot: int) -> None:
        now = time.monotonic
        while not stop[0] and now() < deadline:
            try:
                light_session(script)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                stop[0] = 1
                return
            counts[slot] += 1
            last[slot] = now()

    pool = [threading.Thread(target=worker, args=(i,), name=f"bench-conn-{i}")
            for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    result.end = time.monotonic()
    result.cpu_seconds = _cpu_seconds() - cpu_start
    result.start = start
    result.sessions = sum(counts)
    result.last_success = max(last) if any(last) else start
    results.put(result)


def run_connection_pool(endpoint: Endpoint, processes: int, threads: int,
                        seconds: float) -> List[PoolResult]:
    """Light sessions from ``processes`` processes of ``threads`` threads each, started
    together once every process has done a warm-up session; one result per process.

    As with :func:`run_relay`, a script calling this must do so under
    ``if __name__ == "__main__":`` (the fork server imports the main module again).
    """
    ctx = _context()
    ready = ctx.Semaphore(0)
    go = ctx.Event()
    stop = ctx.RawArray("b", 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=connection_pool_process, name=f"bench-conn-pool-{i}",
                         args=(endpoint, threads, seconds, ready, go, stop, results))
             for i in range(processes)]
    out: List[PoolResult] = []

    def wait(step: Callable[[], bool], what: str, limit: float) -> None:
        """Poll ``step`` until it is done; a pool process that died fails fast."""
        end = time.monotonic() + limit
        while not step():
            dead = [p.name for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} died {what}")
            if time.monotonic() > end:
                raise TimeoutError(f"connection pool: nothing after {limit:.0f} s {what}")

    def one_result() -> bool:
        with contextlib.suppress(queue.Empty):
            out.append(results.get(timeout=0.2))
            return True
        return False

    try:
        for proc in procs:
            proc.start()
        for _ in procs:
            wait(lambda: bool(ready.acquire(timeout=0.2)), "while starting", 60)
        go.set()
        for _ in procs:
            wait(one_result, "while measuring", seconds + 60)
    finally:
        stop[0] = 1
        go.set()
        for proc in procs:
            if proc.pid is not None:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=5)
    return out


# -- processes -----------------------------------------------------------------------------


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class PlayerResult:
    """What one player received: per-type counts and hashes, bytes, times, and its own CPU
    seconds while streaming (start-up excluded)."""

    index: int
    counts: Dict[int, int] = field(default_factory=dict)
    hashes: Dict[int, str] = field(default_factory=dict)
    media_bytes: int = 0
    wire_bytes: int = 0
    first_time: float = 0.0
    last_time: float = 0.0
    cpu_seconds: float = 0.0
    receive_times: Dict[int, List[float]] = field(default_factory=dict)
    error: str = ""


def _ends_play(message: Message) -> bool:
    """User Control Stream EOF (RTMP 7.1.7, event 1) or ``onStatus``
    ``NetStream.Play.UnpublishNotify`` (RTMP 7.2.2.1): the publisher has gone."""
    if message.type == MessageType.USER_CONTROL:
        return message.data[:2] == b"\x00\x01"
    return message.type in _COMMANDS and _UNPUBLISH_NOTIFY in message.data


_UNPUBLISH_NOTIFY = commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY.encode()
#: A player that reads until the end stops after this long without a byte once the
#: publisher has sent everything (the end, for a server that says nothing when it unpublishes).
QUIET_END_SECONDS = 3.0
#: A throttled player reads as fast as it can this long after the publisher sent its last
#: byte: every drop decision is made by then (a server decides when the message arrives).
THROTTLE_GRACE_SECONDS = 1.0


def player_process(index: int, endpoint: Endpoint, expected_counts: Dict[int, int],
                   progress: Any, ready: Any, abort: Any, results: Any, timeout: float,
                   record_times: bool, sent: Any = None, throttle: float = 0.0,
                   rcvbuf: int = 0) -> None:
    """One player, run in its own process; puts a :class:`PlayerResult` on ``results``.

    Sets ``abort`` if it fails, and gives up when another process set it.

    ``sent`` (a shared one-element array of doubles, where the publisher puts the
    ``time.monotonic()`` at which it sent everything, 0 before): the player may miss
    messages (a burst the server drops); it reads until the stream ends -- Stream EOF or
    UnpublishNotify, or :data:`QUIET_END_SECONDS` of silence after ``sent`` -- instead of
    until it has every message.  ``throttle``: read at most that many bytes a second
    (until :data:`THROTTLE_GRACE_SECONDS` after ``sent``), with ``rcvbuf`` as SO_RCVBUF.
    """
    result = PlayerResult(index)
    audio_hash, video_hash = hashlib.sha256(), hashlib.sha256()
    counts = {int(MessageType.AUDIO): 0, int(MessageType.VIDEO): 0}
    times: Dict[int, List[float]] = {int(MessageType.AUDIO): [], int(MessageType.VIDEO): []}
    conn: Optional[RawConnection] = None
    released = False
    try:
        conn = RawConnection(endpoint, timeout, rcvbuf=rcvbuf)
        conn.connect()
        stream_id = conn.create_stream()
        conn.play(stream_id)
        conn.quickack = False  # bulk data from here on: normal delayed ACKs
        conn.sock.settimeout(_POLL_SECONDS)
        cpu_start = _cpu_seconds()
        ready.release()
        released = True
        deadline = time.monotonic() + timeout
        want_audio = expected_counts[MessageType.AUDIO]
        want_video = expected_counts[MessageType.VIDEO]
        media_bytes = 0
        now = time.monotonic
        decoder = conn.decoder
        handle_control = conn.handle_control
        ended = False
        last_byte = now()
        throttle_from = 0.0  # when the first byte came: the throttle's clock
        consumed = 0
        while (counts[8] < want_audio or counts[9] < want_video) and not ended:
            limit = 0
            if throttle and throttle_from and not (
                    sent is not None and sent[0] and now() - sent[0] > THROTTLE_GRACE_SECONDS):
                allowed = int(throttle * (now() - throttle_from)) + 16384 - consumed
                if allowed < 4096:
                    time.sleep(min(0.02, (4096 - allowed) / throttle))
                    continue
                limit = min(allowed, READ_SIZE)
            try:
                n = conn.recv(limit)
                if not n:
                    if sent is not None and sent[0]:
                        break  # the server closed after the end: what came is the result
                    raise ConnectionError("server closed the connection before the end "
                                          "of the stream")
            except socket.timeout:
                if abort.is_set():
                    raise RuntimeError("stopped: another process of the run failed") from None
                if now() > deadline:
                    raise TimeoutError(f"stream not complete after {timeout:.0f}s") from None
                if sent is not None and sent[0] and now() - last_byte > QUIET_END_SECONDS:
                    break
                continue
            arrived = last_byte = now()
            consumed += n
            if not throttle_from:
                throttle_from = arrived
            for message in decoder.messages():
                kind = message.type
                if kind == 9:  # RTMP 7.1.5 video
                    video_hash.update(message.data)
                elif kind == 8:  # RTMP 7.1.4 audio
                    audio_hash.update(message.data)
                else:
                    if sent is not None and _ends_play(message):
                        ended = True
                    handle_control(message)
                    continue
                counts[kind] += 1
                media_bytes += len(message.data)
                if record_times:
                    times[kind].append(arrived)
            if media_bytes and not result.first_time:
                result.first_time = arrived
            progress[index] = media_bytes
            if arrived > deadline:
                raise TimeoutError(f"stream not complete after {timeout:.0f}s")
        result.last_time = now()
        result.media_bytes = media_bytes
        result.wire_bytes = conn.bytes_received
        result.cpu_seconds = _cpu_seconds() - cpu_start
    except Exception as exc:  # reported to the parent, which fails the run
        result.error = f"{type(exc).__name__}: {exc}"
        abort.set()
        if not released:
            ready.release()
    finally:
        if conn is not None:
            conn.close()
        result.counts = counts
        result.hashes = {8: audio_hash.hexdigest(), 9: video_hash.hexdigest()}
        result.receive_times = times
        results.put(result)


@dataclass
class PublishResult:
    """When the publisher started and finished, what it sent, its own CPU."""

    start_time: float = 0.0
    end_time: float = 0.0
    media_bytes: int = 0
    wire_bytes: int = 0
    cpu_seconds: float = 0.0
    send_times: Dict[int, List[float]] = field(default_factory=dict)
    error: str = ""


def _drain(conn: RawConnection, stop: threading.Event) -> None:
    """Read what the server sends a publisher (acks, pings, status) so it never blocks."""
    try:
        for _ in conn.messages():
            if stop.is_set():
                return
    except OSError:
        pass


def publisher_process(endpoint: Endpoint, plan: MediaPlan, progress: Any, window: int,
                      realtime: bool, go: Any, done: Any, abort: Any, results: Any,
                      timeout: float, sent: Any = None,
                      pace_after_ms: Optional[int] = None) -> None:
    """Publish ``plan``: as fast as the slowest player allows, or paced by timestamps.

    ``pace_after_ms``: the first that many milliseconds of media go out unpaced (a burst),
    the rest in real time from there.  ``sent`` (see :func:`player_process`): once all is
    sent, the publisher shuts its side down (the server unpublishes at the end of what it
    read, RTMP 7.2.2.6) and records the time there.
    """
    result = PublishResult()
    times: Dict[int, List[float]] = {int(MessageType.AUDIO): [], int(MessageType.VIDEO): []}
    conn: Optional[RawConnection] = None
    stop = threading.Event()
    try:
        conn = RawConnection(endpoint, timeout)
        conn.connect()
        stream_id = conn.create_stream()
        conn.publish(stream_id)
        conn.quickack = False
        conn.sock.settimeout(None)
        reader = threading.Thread(target=_drain, args=(conn, stop), daemon=True)
        reader.start()
        go.wait(timeout)
        cpu_start = _cpu_seconds()
        result.start_time = start = time.monotonic()
        deadline = start + timeout
        sent_media = 0
        wire = 0
        batch: List[bytes] = []
        batch_size = 0
        first_ts: Optional[int] = None
        paced_from = 0.0
        encode = conn.encoder.encode
        for message in plan.messages(stream_id):
            kind = message.type
            if pace_after_ms is not None and kind in _MEDIA:
                if first_ts is None:
                    first_ts = message.timestamp
                late = message.timestamp - first_ts - pace_after_ms
                if late >= 0:
                    if not paced_from:  # the burst ends here: send it, start the clock
                        if batch:
                            with conn.send_lock:
                                conn.sock.sendall(b"".join(batch))
                            wire += batch_size
                            batch, batch_size = [], 0
                        paced_from = time.monotonic()
                    delay = paced_from + late / 1000.0 - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    data = encode(message)
                    with conn.send_lock:
                        conn.sock.sendall(data)
                    wire += len(data)
                    continue
            if realtime:
                if first_ts is None:
                    first_ts = message.timestamp
                delay = start + (message.timestamp - first_ts) / 1000.0 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                with conn.send_lock:
                    conn.sock.sendall(encode(message))
                if kind in _MEDIA:
                    times[kind].append(time.monotonic())
                continue
            data = encode(message)
            batch.append(data)
            batch_size += len(data)
            if kind in _MEDIA:
                sent_media += len(message.data)
            if batch_size >= BATCH_SIZE:
                _wait_for_players(progress, sent_media - window, deadline, abort)
                with conn.send_lock:
                    conn.sock.sendall(b"".join(batch))
                wire += batch_size
                batch, batch_size = [], 0
        if batch:
            with conn.send_lock:
                conn.sock.sendall(b"".join(batch))
            wire += batch_size
        result.end_time = time.monotonic()
        result.cpu_seconds = _cpu_seconds() - cpu_start
        result.media_bytes = plan.media_bytes
        result.wire_bytes = wire
        if sent is not None:
            conn.sock.shutdown(socket.SHUT_WR)  # the server sees the end after the last byte
            sent[0] = time.monotonic()
        # Closing now could reset the connection with the server's last reads pending;
        # wait until the players have everything (or gave up).
        done.wait(timeout)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        abort.set()
    finally:
        stop.set()
        if conn is not None:
            conn.close()
        result.send_times = times
        results.put(result)


def _wait_for_players(progress: Any, needed: int, deadline: float, abort: Any) -> None:
    """Block until every player has received at least ``needed`` media bytes."""
    if needed <= 0 or min(progress) >= needed:
        return
    pause = 0.0002
    while min(progress) < needed:
        if abort.is_set():
            raise RuntimeError("stopped: a player failed")
        if time.monotonic() > deadline:
            raise TimeoutError("players stopped making progress")
        time.sleep(pause)
        pause = min(pause * 2, 0.002)


# -- one relay run -----------------------------------------------------------------------


@dataclass
class RelayOutcome:
    """One run: publisher, players, and whether every player got every byte."""

    players: List[PlayerResult]
    publisher: PublishResult
    expected: Dict[int, Tuple[int, str]]
    media_bytes: int = 0
    """Audio and video payload bytes each player should get (:attr:`MediaPlan.media_bytes`)."""

    @property
    def failures(self) -> List[str]:
        problems = []
        if self.publisher.error:
            problems.append(f"publisher: {self.publisher.error}")
        for player in self.players:
            if player.error:
                problems.append(f"player {player.index}: {player.error}")
            for kind, (count, digest) in self.expected.items():
                name = "audio" if kind == 8 else "video"
                got = player.counts.get(kind, 0)
                if got != count:
                    problems.append(
                        f"player {player.index}: {got} {name} messages, expected {count}")
                elif player.hashes.get(kind) != digest:
                    problems.append(f"player {player.index}: {name} payloads differ (SHA-256)")
        return problems

    @property
    def delivered_bytes(self) -> int:
        return sum(p.media_bytes for p in self.players)

    def fractions(self) -> List[float]:
        """Per player: audio and video payload bytes received / sent (``until_end`` runs)."""
        return [p.media_bytes / self.media_bytes if self.media_bytes else 0.0
                for p in self.players]

    @property
    def elapsed(self) -> float:
        """From the publisher's first byte to the last player's last message."""
        end = max((p.last_time for p in self.players), default=0.0)
        return max(end - self.publisher.start_time, 1e-9)

    @property
    def loadgen_cpu_seconds(self) -> float:
        return self.publisher.cpu_seconds + sum(p.cpu_seconds for p in self.players)

    def latencies_ms(self) -> List[float]:
        """Publish-to-play delay of every media message at every player, in ms."""
        out: List[float] = []
        for player in self.players:
            for kind, sent in self.publisher.send_times.items():
                received = player.receive_times.get(kind, [])
                out.extend((r - s) * 1000.0 for s, r in zip(sent, received))
        return out


def _context() -> Any:
    """Processes come from a fork server: forking the caller itself is unsafe when it runs
    threads (Python 3.12 warns), and spawning a fresh interpreter per player is slow."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")


def run_relay(endpoint: Endpoint, plan: MediaPlan, players: int, *, realtime: bool = False,
              window: int = DEFAULT_WINDOW, timeout: float = 300.0,
              player_endpoints: Sequence[Endpoint] = (),
              before_publish: Optional[Callable[[], None]] = None,
              until_end: bool = False, pace_after_ms: Optional[int] = None,
              throttle: Optional[Dict[int, float]] = None,
              throttle_rcvbuf: int = 8192) -> RelayOutcome:
    """Start ``players`` player processes, wait until all play, then publish ``plan``.

    ``until_end``: the players need not get everything (a server may drop): each reads
    until the stream ends (see :func:`player_process`), and the outcome's
    :meth:`RelayOutcome.fractions` say how much each got.  ``pace_after_ms``: see
    :func:`publisher_process`.  ``throttle``: player index -> bytes a second it reads
    (with SO_RCVBUF ``throttle_rcvbuf``); needs ``until_end``.

    ``player_endpoints``: where the players play (player ``i`` on entry ``i`` modulo their
    number; default ``endpoint``), e.g. edges that pull from ``endpoint``.
    ``before_publish()`` runs once every player plays (e.g. wait for the edges' pulls).

    The processes come from a fork server, which imports the caller's main module again:
    a script calling this must do so under ``if __name__ == "__main__":``.
    """
    ctx = _context()
    progress = ctx.RawArray("q", players)
    ready = ctx.Semaphore(0)
    abort = ctx.Event()
    go = ctx.Event()
    done = ctx.Event()
    results = ctx.Queue()
    publisher_results = ctx.Queue()
    expected = plan.expected()
    counts = {k: v[0] for k, v in expected.items()}
    if throttle and not until_end:
        raise ValueError("a throttled player needs until_end (it will not get everything)")
    sent = ctx.RawArray("d", 1) if until_end else None
    throttle = throttle or {}
    procs = [ctx.Process(target=player_process, name=f"bench-player-{i}",
                         args=(i, player_endpoints[i % len(player_endpoints)] if player_endpoints
                                   else endpoint, counts, progress, ready, abort, results,
                                   timeout, realtime, sent, throttle.get(i, 0.0),
                                   throttle_rcvbuf if i in throttle else 0))
             for i in range(players)]
    publisher = ctx.Process(target=publisher_process, name="bench-publisher",
                            args=(endpoint, plan, progress, window, realtime, go, done, abort,
                                  publisher_results, timeout, sent, pace_after_ms))
    player_results: List[PlayerResult] = []
    publish_result = PublishResult(error="publisher did not report")
    try:
        for proc in procs:
            proc.start()
        for _ in procs:
            if not ready.acquire(timeout=30):
                raise TimeoutError("players did not start playing within 30 s")
        if before_publish is not None:
            before_publish()
        publisher.start()
        go.set()
        end = time.monotonic() + timeout + 30
        for _ in procs:
            player_results.append(results.get(timeout=max(1.0, end - time.monotonic())))
        done.set()
        publish_result = publisher_results.get(timeout=max(1.0, end - time.monotonic()))
    finally:
        done.set()
        go.set()
        for proc in [*procs, publisher]:
            if proc.pid is not None:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=5)
    player_results.sort(key=lambda p: p.index)
    return RelayOutcome(player_results, publish_result, expected, plan.media_bytes)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile by the nearest-rank method (no interpolation)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[rank]
