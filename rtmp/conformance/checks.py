"""RTMP 5 / 7 (conformance): the checks, each verifying one clause against a live server.

Every check opens its own connections through the :class:`~.context.Context` (closed by
the runner whatever happens), publishes only under unique names, and ends with a
:class:`~.registry.Result` or :func:`~.registry.fail` / :func:`~.registry.warn`.  FAIL
means the server broke what the clause requires (MUST); WARN that it did not do what the
clause recommends (SHOULD) or what real peers rely on.  Media comparisons are byte for
byte, and timestamps are compared relative to the first message of each kind (a server
may rebase a player's timeline).
"""

from __future__ import annotations

import logging
import random
import statistics
import time
import zlib
from typing import Any, Callable, Collection, Dict, List, Optional, Sequence, Tuple, Union

from .. import commands, control, user_control
from ..chunk import ChunkInfo
from ..commands import Command
from ..errors import ConnectionClosedError, HandshakeError
from ..handshake import ClientHandshake
from ..message import (
    DATA_TYPES,
    MEDIA_TYPES as AV_TYPES,
    AUDIO_CHUNK_STREAM_ID,
    PROTOCOL_CONTROL_TYPES,
    VIDEO_CHUNK_STREAM_ID,
    Message,
    MessageType,
    build_aggregate,
    split_aggregate,
)
from ..requests import DeleteStream, FCUnpublish, ReceiveAudio
from ..user_control import UserControlEvent
from .context import (
    HANDSHAKE_SIZE,
    MEDIA_TYPES,
    Context,
    MediaSample,
    ProbeConnection,
    Received,
    media_script,
    quiet_bytes,
    raw_message,
    read_exactly,
)
from .registry import Result, check, fail, warn

__all__: List[str] = []  # the checks register themselves in registry.CHECKS

logger = logging.getLogger(__name__)

#: How long "the server must not send anything now" is watched (seconds).
QUIET = 0.4
#: How long a SHOULD-level answer is waited for (seconds, capped by the probe timeout).
SHOULD_WAIT = 2.0


# == RTMP 5.2: handshake ==========================================================================


def _simple_handshake(ctx: Context, c0: int = 3) -> Tuple[bytes, bytes, bytes, bytes]:
    """Send C0+C1 (RTMP 5.2.3 simple: zero field); return (C1, S0, S1, S2) as received."""
    shaker = ClientHandshake(digest=False, version=c0, now_ms=0x01020304)
    c0c1 = shaker.data_to_send()
    sock = ctx.socket()
    sock.sendall(c0c1)
    reply = read_exactly(sock, 1 + 2 * HANDSHAKE_SIZE, ctx.timeout)
    s0, s1, s2 = reply[:1], reply[1:1 + HANDSHAKE_SIZE], reply[1 + HANDSHAKE_SIZE:]
    return c0c1[1:], s0, s1, s2


def _need_full(s0: bytes, s1: bytes, s2: bytes) -> None:
    got = len(s0) + len(s1) + len(s2)
    if got < 1 + 2 * HANDSHAKE_SIZE:
        fail(f"handshake: got {got} of {1 + 2 * HANDSHAKE_SIZE} bytes of S0+S1+S2")


@check("handshake.s0-version", "RTMP 5.2.2", "S0 selects version 3 for a version 3 C0")
def s0_version(ctx: Context) -> Result:
    _, s0, s1, s2 = _simple_handshake(ctx)
    if not s0:
        fail("no S0: the server closed or stayed silent after C0+C1")
    if s0[0] != 3:
        fail(f"S0 version is {s0[0]}, not 3")
    _need_full(s0, s1, s2)
    return Result.passed("S0 = 3")


@check("handshake.version-fallback", "RTMP 5.2.2",
       "a reserved C0 version (4) is answered with S0 = 3 (SHOULD) or the connection closed")
def version_fallback(ctx: Context) -> Result:
    _, s0, _, _ = _simple_handshake(ctx, c0=4)
    if not s0:
        return Result.warning("closed the connection on C0 = 4 (RTMP 5.2.5 allows it; "
                              "RTMP 5.2.2 says SHOULD answer 3)")
    if s0[0] != 3:
        fail(f"answered C0 = 4 with S0 = {s0[0]}; the only defined version is 3")
    return Result.passed("C0 = 4 answered with S0 = 3")


@check("handshake.s1-zero", "RTMP 5.2.3", "S1 bytes 4-7 are zero in the simple handshake")
def s1_zero(ctx: Context) -> Result:
    _, s0, s1, s2 = _simple_handshake(ctx)
    _need_full(s0, s1, s2)
    if s1[4:8] != bytes(4):
        fail(f"S1 zero field is {s1[4:8].hex()} for a C1 with a zero field (MUST be zero)")
    return Result.passed(f"S1 time {int.from_bytes(s1[:4], 'big')}, zero field 00000000")


@check("handshake.s2-echo", "RTMP 5.2.4", "S2 echoes C1's time and random bytes")
def s2_echo(ctx: Context) -> Result:
    c1, s0, s1, s2 = _simple_handshake(ctx)
    _need_full(s0, s1, s2)
    if s2[:4] != c1[:4]:
        fail(f"S2 time {s2[:4].hex()} does not echo C1 time {c1[:4].hex()}")
    if s2[8:] != c1[8:]:
        differ = sum(1 for a, b in zip(s2[8:], c1[8:]) if a != b)
        fail(f"S2 random echo differs from C1 in {differ} of 1528 bytes")
    return Result.passed(f"S2 echoes C1 (time2 {int.from_bytes(s2[4:8], 'big')})")


@check("handshake.sequence", "RTMP 5.2.1",
       "no S2 before C1, nothing after S2 before C2, then the session works")
def handshake_sequence(ctx: Context) -> Result:
    shaker = ClientHandshake(digest=False, now_ms=7)
    c0c1 = shaker.data_to_send()
    sock = ctx.socket()
    sock.sendall(c0c1[:1])  # C0 alone
    early = quiet_bytes(sock, QUIET)
    if len(early) > 1 + HANDSHAKE_SIZE:
        fail(f"server sent {len(early)} bytes after C0 alone: S2 before C1")
    sock.sendall(c0c1[1:])
    rest = read_exactly(sock, 1 + 2 * HANDSHAKE_SIZE - len(early), ctx.timeout)
    reply = early + rest
    if len(reply) < 1 + 2 * HANDSHAKE_SIZE:
        fail(f"got {len(reply)} of {1 + 2 * HANDSHAKE_SIZE} bytes of S0+S1+S2 after C1")
    extra = quiet_bytes(sock, QUIET)
    if extra:
        fail(f"server sent {len(extra)} bytes after S2 before receiving C2")
    shaker.receive_data(reply)
    sock.sendall(shaker.data_to_send())  # C2
    # The session must now work: a connect answered (RTMP 7.2.1.1).
    conn = ProbeConnection(ctx, sock, digest=False, label="sequence")
    conn.connect()
    before_c1 = "S0" if early else "nothing"
    return Result.passed(f"{before_c1} before C1, S1+S2 after it, nothing more before C2; "
                         f"connect answered")


@check("handshake.digest", "HS-FP9",
       "a Flash Player 9 digest C1 gets a digest S1 and a valid S2 (or the simple handshake)")
def handshake_digest(ctx: Context) -> Result:
    shaker = ClientHandshake(digest=True, strict=True, now_ms=0x0A0B0C0D)
    sock = ctx.socket()
    sock.sendall(shaker.data_to_send())
    reply = read_exactly(sock, 1 + 2 * HANDSHAKE_SIZE, ctx.timeout)
    if len(reply) < 1 + 2 * HANDSHAKE_SIZE:
        fail(f"got {len(reply)} of {1 + 2 * HANDSHAKE_SIZE} bytes of S0+S1+S2")
    try:
        shaker.receive_data(reply)
    except HandshakeError as exc:
        fail(str(exc))
    if not shaker.digest_used:
        return Result.warning("answered a digest C1 with the simple handshake "
                              "(Flash Player clients need HS-FP9 for H.264/AAC)")
    version = ".".join(map(str, shaker.peer_flash_version or ()))
    how = "signed S2" if shaker.peer_time2 is None else "S2 echoes C1"
    assert shaker.peer_digest_scheme is not None
    return Result.passed(f"S1 version {version}, digest scheme "
                         f"{int(shaker.peer_digest_scheme)}, {how}")


# == RTMP 7.2.1.1: connect ========================================================================


def _connect_observed(ctx: Context, label: str, object_encoding: int = 0
                      ) -> Tuple[ProbeConnection, List[Received], Command]:
    """Connect; return the connection, what arrived before the ``_result``, and the reply."""
    conn = ctx.connection(label, connect=False)
    reply = conn.connect(object_encoding=object_encoding)
    return conn, conn.received[:-1], reply  # the reply is the last message read


@check("connect.result", "RTMP 7.2.1.1",
       "connect gets _result, transaction 1, properties and NetConnection.Connect.Success")
def connect_result(ctx: Context) -> Result:
    conn = ctx.connection("connect", connect=False)
    obj = commands.connect_command_object(ctx.url.app, ctx.url.tc_url)
    conn.send(commands.connect(obj))

    def reply(item: Received) -> bool:
        cmd = item.command
        return cmd is not None and cmd.name in (commands.RESULT, commands.ERROR)

    found = conn.wait(reply, "_result/_error for connect").command
    assert found is not None
    if found.name != commands.RESULT:
        fail(f"connect refused: {found.name} {found.info}")
    if found.transaction_id != 1:
        fail(f"_result carries transaction id {found.transaction_id:g}, not 1")
    if not isinstance(found.command_object, dict):
        fail(f"_result properties are {found.command_object!r}, not an object")
    info = found.info
    if not info:
        fail("_result has no information object")
    if info.get("code") != commands.NETCONNECTION_CONNECT_SUCCESS:
        fail(f"info code is {info.get('code')!r}, not NetConnection.Connect.Success")
    if info.get("level") != commands.LEVEL_STATUS:
        fail(f"info level is {info.get('level')!r}, not 'status'")
    return Result.passed(f"fmsVer {found.command_object.get('fmsVer')!r}, "
                         f"capabilities {found.command_object.get('capabilities')!r}")


def _control_before_result(ctx: Context, label: str, kind: int, what: str, step: int) -> bytes:
    """Connect; the payload of the first ``kind`` message before the ``_result`` (FAIL when
    none came: RTMP 7.2.1.1 sends ``what`` at ``step``)."""
    _, before, _ = _connect_observed(ctx, label)
    msg = next((r.message for r in before if r.message.type == kind), None)
    if msg is None:
        fail(f"no {what} before the connect _result (RTMP 7.2.1.1 step {step})")
    return msg.data


@check("connect.window-ack-size", "RTMP 5.4.4",
       "the server sends Window Acknowledgement Size after connect, before _result")
def connect_window_ack_size(ctx: Context) -> Result:
    data = _control_before_result(ctx, "was", MessageType.WINDOW_ACK_SIZE,
                                  "Window Acknowledgement Size", 2)
    size = control.parse_window_ack_size(data)
    if size == 0:
        fail("Window Acknowledgement Size 0")
    return Result.passed(f"window {size}")


@check("connect.peer-bandwidth", "RTMP 5.4.5",
       "the server sends Set Peer Bandwidth (limit type 0-2) after connect, before _result")
def connect_peer_bandwidth(ctx: Context) -> Result:
    data = _control_before_result(ctx, "spb", MessageType.SET_PEER_BANDWIDTH, "Set Peer Bandwidth", 3)
    bandwidth = control.parse_set_peer_bandwidth(data)
    if bandwidth.limit_type not in (0, 1, 2):
        fail(f"limit type {bandwidth.limit_type} is not 0, 1 or 2")
    return Result.passed(f"window {bandwidth.window_size}, limit type {bandwidth.limit_type}")


@check("connect.stream-begin", "RTMP 7.1.7",
       "Stream Begin for stream 0 is sent after a successful connect")
def connect_stream_begin(ctx: Context) -> Result:
    conn, before, _ = _connect_observed(ctx, "begin")

    def begin0(item: Received) -> bool:
        return (item.event is not None and item.event.event == UserControlEvent.STREAM_BEGIN
                and item.event.stream_id == 0)

    if any(begin0(r) for r in before):
        return Result.passed("Stream Begin 0 before _result")
    if conn.poll(begin0, min(QUIET * 2, ctx.timeout)) is not None:
        return Result.warning("Stream Begin 0 arrived after _result (RTMP 7.2.1.1 puts it "
                              "before)")
    fail("no Stream Begin (event 0) for stream 0 after connect")


@check("connect.control-stream", "RTMP 5.4",
       "protocol control messages travel on message stream 0, chunk stream 2")
def control_stream(ctx: Context) -> Result:
    conn, _, _ = _connect_observed(ctx, "ctl")
    conn.send(control.set_peer_bandwidth(1_000_000, 0))
    conn.send(user_control.ping_request(1))
    conn.poll(lambda r: False, QUIET)
    seen = [r.message for r in conn.received if r.message.type in PROTOCOL_CONTROL_TYPES]
    if not seen:
        fail("no protocol control message at all after connect")
    for msg in seen:
        if msg.message_stream_id != 0 or msg.csid != 2:
            fail(f"{MessageType(msg.type).name} on msid {msg.message_stream_id}, "
                 f"csid {msg.csid} (MUST be msid 0, csid 2)")
    names = sorted({MessageType(m.type).name for m in seen})
    return Result.passed(f"{len(seen)} messages ({', '.join(names)}) on msid 0 / csid 2")


@check("connect.amf3", "RTMP 7.2.1.1",
       "connect with objectEncoding 3 is answered with objectEncoding 3")
def connect_amf3(ctx: Context) -> Result:
    _, _, reply = _connect_observed(ctx, "amf3", object_encoding=3)
    info = reply.info or {}
    encoding = info.get("objectEncoding")
    if encoding != 3:
        fail(f"_result info objectEncoding is {encoding!r}, not 3")
    return Result.passed("objectEncoding 3 agreed")


@check("connect.amf3-commands", "RTMP 7.1.1",
       "after an AMF3 connect, AMF3 command messages (type 17) are answered")
def amf3_commands(ctx: Context) -> Result:
    conn = ctx.connection("amf3cmd", object_encoding=3)
    txn = conn.next_transaction()
    conn.send(commands.create_stream(txn, object_encoding=3))
    reply = conn.wait_reply(txn, "createStream _result for a type 17 command")
    if reply.name != commands.RESULT or not reply.arguments:
        fail(f"type 17 createStream answered {reply.name} {reply.arguments!r}")
    return Result.passed(f"type 17 createStream -> stream {reply.arguments[0]!r} "
                         f"(reply type {reply.message_type})")


@check("connect.timing", "RTMP 7.2.1.1",
       "TCP connect, handshake and connect complete (time measured)")
def connect_timing(ctx: Context) -> Result:
    start = time.monotonic()
    sock = ctx.socket()
    tcp = time.monotonic()
    conn = ProbeConnection(ctx, sock, digest=True, label="timing")
    conn.transport.handshake(ctx.timeout)
    shaken = time.monotonic()
    conn.connect()
    done = time.monotonic()
    total = (done - start) * 1000
    detail = (f"{total:.1f} ms (TCP {(tcp - start) * 1000:.1f}, handshake "
              f"{(shaken - tcp) * 1000:.1f}, connect {(done - shaken) * 1000:.1f})")
    ctx.metrics.update(connect_ms=total, tcp_ms=(tcp - start) * 1000,
                       handshake_ms=(shaken - tcp) * 1000, connect_command_ms=(done - shaken) * 1000)
    if total > 1000:
        return Result.warning("slow: " + detail)
    return Result.passed(detail)


# == RTMP 5.4: protocol control ===================================================================


@check("ack.acknowledgement", "RTMP 5.4.3",
       "after our Window Acknowledgement Size, the server acknowledges the bytes it received")
def acknowledgement(ctx: Context) -> Result:
    _, conn, stream_id = _publishing(ctx, "ack", "ack")
    window = 8192
    conn.send(control.window_ack_size(window))
    rng = random.Random(5)
    for i in range(40):  # ~5 windows of audio
        conn.send(_audio(b"\x2f" + rng.randbytes(1000), 20 * i, stream_id))
    sent = conn.bytes_sent
    found = conn.wait(lambda r: r.message.type == MessageType.ACKNOWLEDGEMENT,
                      f"Acknowledgement after {sent} bytes with a {window}-byte window")
    sequence = control.parse_acknowledgement(found.message.data)
    if not window <= sequence <= conn.bytes_sent:
        fail(f"Acknowledgement sequence number {sequence} outside {window}..{conn.bytes_sent} "
             f"(bytes sent, handshake included)")
    return Result.passed(f"sequence number {sequence} after {conn.bytes_sent} bytes sent")


@check("ack.peer-bandwidth-answer", "RTMP 5.4.5",
       "a Set Peer Bandwidth with a new window is answered with Window Acknowledgement Size")
def peer_bandwidth_answer(ctx: Context) -> Result:
    conn = ctx.connection("spbans")
    window = 1_234_567
    conn.send(control.set_peer_bandwidth(window, control.LimitType.HARD))
    found = conn.poll(lambda r: r.message.type == MessageType.WINDOW_ACK_SIZE,
                      min(SHOULD_WAIT, ctx.timeout))
    if found is None:
        return Result.warning(f"no Window Acknowledgement Size answered Set Peer Bandwidth "
                              f"{window} (SHOULD)")
    value = control.parse_window_ack_size(found.message.data)
    if value != window:
        fail(f"answered Set Peer Bandwidth {window} (hard) with a window of {value}")
    return Result.passed(f"answered with window {value}")


@check("ping.response", "RTMP 7.1.7", "a Ping Request is answered with its timestamp")
def ping_response(ctx: Context) -> Result:
    conn = ctx.connection("ping")
    stamp = 0x5EED1234
    sent = time.monotonic()
    conn.send(user_control.ping_request(stamp))
    found = conn.wait(lambda r: r.event is not None
                      and r.event.event == UserControlEvent.PING_RESPONSE,
                      "Ping Response (event 7)")
    assert found.event is not None
    if found.event.timestamp != stamp:
        fail(f"Ping Response carries {found.event.timestamp}, not the request's {stamp}")
    ctx.metrics["ping_rtt_ms"] = (found.at - sent) * 1000
    return Result.passed(f"round trip {ctx.metrics['ping_rtt_ms']:.1f} ms")


# == relay scenarios: a publisher and a player on two connections ================================


#: Payload prefix of the audio frames that synchronise a new player (see :class:`Pair`).
SYNC_MARK = b"\x2fPROBE-SYNC"


def _audio(data: bytes, timestamp: int, stream_id: int) -> Message:
    """An audio message (RTMP 7.1.4) of the stream ``stream_id``."""
    return Message(type=MessageType.AUDIO, data=data, timestamp=timestamp, message_stream_id=stream_id)


def _publishing(ctx: Context, label: str, connection_label: str) -> Tuple[str, ProbeConnection, int]:
    """A connection publishing a new stream: the stream's name, the connection, its stream id."""
    name = ctx.stream_name(label)
    conn = ctx.connection(connection_label)
    return name, conn, conn.publish_started(name)


def carries(data: bytes) -> Callable[[Received], bool]:
    """A predicate: an audio message with exactly this payload."""
    return lambda item: item.message.type == MessageType.AUDIO and item.message.data == data


def is_sync(msg: Message) -> bool:
    return msg.type == MessageType.AUDIO and msg.data.startswith(SYNC_MARK)


class Pair:
    """A publisher (publishing) and a player (playing) of one unique stream.

    Before a check sends what it compares, the publisher sends marked audio frames until
    one reaches the player, so a check does not depend on how soon after Play.Start a
    server delivers media (``play.immediate`` checks that separately); marked frames are
    left out of every comparison.
    """

    def __init__(self, ctx: Context, label: str, observe_chunks: bool = False,
                 before_play: Optional[Callable[[Pair], None]] = None,
                 seed: Union[int, str, None] = None) -> None:
        self.ctx = ctx
        #: The random source of the check's payloads (seeded: a run sends the same bytes).
        self.rng = random.Random(label if seed is None else seed)
        self.name, self.publisher, self.pub_id = _publishing(ctx, label, label + "-pub")
        if before_play is not None:
            before_play(self)  # e.g. start the stream before a late joiner plays
        self.player = ctx.connection(label + "-play")
        if observe_chunks:
            self.player.observe_chunks()
        self.play_id, self.play_start = self.player.play(self.name)
        self.synchronise()

    def synchronise(self, attempts: int = 40) -> None:
        """Send marked audio frames until the player has one (FAIL after ``attempts``)."""
        wait = min(0.25, self.ctx.timeout / attempts)
        for n in range(attempts):
            self.publisher.send(_audio(SYNC_MARK + bytes((n,)), 0, self.pub_id))
            if self.player.poll(lambda r: is_sync(r.message), wait) is not None:
                return
        fail(f"none of {attempts} audio frames published after Play.Start reached the player")

    def message(self, sample: MediaSample) -> Message:
        """``sample`` as a message of the publisher's stream."""
        return Message(type=sample.type, data=sample.data, timestamp=sample.timestamp,
                       message_stream_id=self.pub_id)

    def sample(self, timestamp: int, size: int, kind: int = MessageType.AUDIO) -> MediaSample:
        """A frame of ``size`` random bytes (see :func:`_payload`)."""
        return MediaSample(kind, timestamp, _payload(self.rng, size, kind))

    def chunked(self, sample: MediaSample, csid: Optional[int] = None) -> Tuple[List[bytes], MediaSample]:
        """``sample`` written by hand: one type 0 message (RTMP 5.3.1.2.1) of 128-byte chunks
        on ``csid`` (by default the conventional one of its kind), and the sample itself."""
        if csid is None:
            csid = VIDEO_CHUNK_STREAM_ID if sample.type == MessageType.VIDEO else AUDIO_CHUNK_STREAM_ID
        return raw_message(0, csid, sample.data, 128, timestamp=sample.timestamp, type_id=sample.type,
                           msid=self.pub_id), sample

    def send(self, samples: Sequence[MediaSample]) -> None:
        for sample in samples:
            self.publisher.send(self.message(sample))

    def media(self) -> List[Message]:
        """Media received on the play stream, and on message stream 0 when the server
        sends them there: ``play.media-stream`` reports that deviation once, the other
        checks judge what arrives."""
        return self.player.media(self.play_id, 0)

    def publisher_closed(self) -> bool:
        """A round trip on the publisher: True when the server has closed it."""
        return self.publisher.closed_by_server()

    def collect(self, count: int, kinds: Collection[int], what: str) -> List[Message]:
        """Wait until ``count`` messages of ``kinds`` arrived on the play stream."""
        def enough(_: Received) -> bool:
            return len(self.received(kinds)) >= count

        if len(self.received(kinds)) < count:
            self.player.wait(enough, f"{what} ({count} messages; got "
                                     f"{len(self.received(kinds))} so far)")
        return self.received(kinds)

    def received(self, kinds: Collection[int]) -> List[Message]:
        """Messages of ``kinds`` on the play stream, without sync frames, repeated codec
        headers and data messages other than onMetaData."""
        chosen = [m for m in self.media()
                  if m.type in kinds and not is_sync(m) and not other_data(m)]
        return _dedupe_headers(chosen)


def other_data(msg: Message) -> bool:
    """A data message that is not onMetaData (e.g. ``|RtmpSampleAccess``)."""
    if msg.type not in DATA_TYPES:
        return False
    try:
        return _metadata_of(msg) is None
    except Exception:  # noqa: BLE001 - undecodable: not ours to judge here
        return False


def _dedupe_headers(messages: List[Message]) -> List[Message]:
    """Drop a sequence header identical to the last one of its kind: servers legitimately
    resend codec headers to players (late-join logic), which is not a relay error."""
    last: Dict[int, bytes] = {}
    out = []
    for msg in messages:
        sample = MediaSample(msg.type, msg.timestamp, msg.data)
        if sample.is_sequence_header:
            if last.get(msg.type) == msg.data:
                continue
            last[msg.type] = msg.data
        out.append(msg)
    return out


def _compare(sent: Sequence[MediaSample], got: Sequence[Message], what: str) -> str:
    """FAIL on the first payload or relative-timestamp difference; a summary otherwise."""
    if len(got) < len(sent):
        fail(f"{what}: {len(got)} of {len(sent)} messages arrived")
    base_sent = sent[0].timestamp if sent else 0
    base_got = got[0].timestamp if got else 0
    for index, (want, have) in enumerate(zip(sent, got)):
        if have.type != want.type:
            fail(f"{what} #{index}: type {have.type}, sent {want.type}")
        if have.data != want.data:
            where = next((i for i, (a, b) in enumerate(zip(have.data, want.data)) if a != b),
                         min(len(have.data), len(want.data)))
            fail(f"{what} #{index}: payload differs at byte {where} "
                 f"({len(have.data)} bytes received, {len(want.data)} sent)")
        relative_sent = (want.timestamp - base_sent) & 0xFFFFFFFF
        relative_got = (have.timestamp - base_got) & 0xFFFFFFFF
        if relative_sent != relative_got:
            fail(f"{what} #{index}: timestamp +{relative_got} ms, sent +{relative_sent} ms "
                 f"(absolute {have.timestamp} vs {want.timestamp})")
    total = sum(len(s.data) for s in sent)
    return f"{len(sent)} messages, {total} bytes identical, timestamps consistent"


#: What a relay check writes on the publisher: a message through the encoder or hand-built
#: chunks, and the sample the player must get for it (None: nothing is compared).
Write = Tuple[Union[Message, Sequence[bytes]], Optional[MediaSample]]


def _write(pair: Pair, writes: Sequence[Write]) -> List[MediaSample]:
    """Write each item on the publisher; the samples the player must get, in order."""
    expected = []
    for item, sample in writes:
        if isinstance(item, Message):
            pair.publisher.send(item)
        else:
            pair.publisher.send_raw(*item)
        if sample is not None:
            expected.append(sample)
    return expected


def _collect_compare(pair: Pair, expected: Sequence[MediaSample], what: str) -> str:
    """Wait for as many messages of each kind as ``expected`` holds and compare them
    (payloads byte for byte, timestamps relative to the first of each kind)."""
    details = []
    for kind in sorted({s.type for s in expected}):
        name = MessageType(kind).name.lower()
        sent = [s for s in expected if s.type == kind]
        got = pair.collect(len(sent), (kind,), f"relayed {name} ({what})")
        details.append(_compare(sent, got, name))
    return "; ".join(details)


def relay_compare(pair: Pair, writes: Sequence[Write], what: str) -> str:
    """The relay checks' common part: write, collect what the player gets, compare."""
    return _collect_compare(pair, _write(pair, writes), what)


def _relay(ctx: Context, label: str, kind: int) -> Result:
    pair = Pair(ctx, label)
    script = media_script(seed=zlib.crc32(label.encode()))
    writes = [(pair.message(s), s if s.type == kind else None) for s in script]
    return Result.passed(relay_compare(pair, writes, MessageType(kind).name.lower()))


@check("publish.start", "RTMP 7.2.2.6",
       "publish is answered with onStatus NetStream.Publish.Start (level status) on the stream")
def publish_start(ctx: Context) -> Result:
    conn = ctx.connection("pub")
    stream_id, status = conn.publish(ctx.stream_name("pub"))
    if status.name == commands.ERROR:
        fail(f"publish answered _error {status.info}")
    if status.code != commands.NETSTREAM_PUBLISH_START:
        fail(f"publish answered {status.code!r}, not NetStream.Publish.Start")
    info = status.info or {}
    if info.get("level") != commands.LEVEL_STATUS:
        fail(f"Publish.Start level {info.get('level')!r}, not 'status'")
    if status.transaction_id != 0:
        fail(f"onStatus transaction id {status.transaction_id:g}, not 0 (RTMP 7.2.2)")
    if "description" not in info:
        fail("onStatus info object has no description (RTMP 7.2.2)")
    return Result.passed(f"on message stream {stream_id}")


@check("play.start", "RTMP 7.2.2.1",
       "play gets Stream Begin for the stream and onStatus NetStream.Play.Start on it")
def play_start(ctx: Context) -> Result:
    pair = Pair(ctx, "play")
    player, stream_id = pair.player, pair.play_id
    begins = [e for e in player.events(UserControlEvent.STREAM_BEGIN)
              if e.stream_id == stream_id]
    if not begins:
        fail(f"no Stream Begin for message stream {stream_id} before Play.Start")
    info = pair.play_start.info or {}
    if info.get("level") != commands.LEVEL_STATUS:
        fail(f"Play.Start level {info.get('level')!r}, not 'status'")
    codes = [r.command.code for r in player.received
             if r.command is not None and r.command.name == commands.ON_STATUS]
    return Result.passed(" -> ".join(["StreamBegin"] + [c or "?" for c in codes]))


@check("play.media-stream", "RTMP 7.2.1.3",
       "media reach the player on the message stream its createStream returned, not stream 0")
def play_media_stream(ctx: Context) -> Result:
    pair = Pair(ctx, "msid", seed=141)
    samples = [pair.sample(20, 100), pair.sample(40, 300, MessageType.VIDEO)]
    relay_compare(pair, [(pair.message(s), s) for s in samples], "audio and video")
    streams = sorted({r.message.message_stream_id for r in pair.player.received
                      if r.message.type in MEDIA_TYPES})
    if streams != [pair.play_id]:
        wrong = ", ".join(str(i) for i in streams if i != pair.play_id)
        fail(f"media arrive on message stream {wrong}, not on stream {pair.play_id} that "
             f"createStream returned (audio, video and data travel on the stream "
             f"createStream creates); the other checks take them from stream {wrong}")
    return Result.passed(f"audio and video on message stream {pair.play_id}")


@check("play.immediate", "RTMP 7.2.2.1",
       "media published right after a player got Play.Start reaches that player")
def play_immediate(ctx: Context) -> Result:
    name, publisher, pub_id = _publishing(ctx, "immediate", "immediate-pub")
    trials, lost = 5, []
    for n in range(trials):
        player = ctx.connection(f"immediate-{n}")
        player.play(name)
        data = b"\x2fPROBE-IMMEDIATE" + bytes((n,)) + random.Random(n).randbytes(64)
        publisher.send(_audio(data, 100 + n, pub_id))
        found = player.poll(carries(data), min(SHOULD_WAIT, ctx.timeout / trials))
        if found is None:
            lost.append(n)
        player.close()
    if lost:
        fail(f"the first frame published after Play.Start never reached the player in "
             f"{len(lost)} of {trials} tries (is the player subscribed only after Play.Start?)")
    return Result.passed(f"{trials} of {trials} players got the first frame after Play.Start")


@check("relay.audio", "RTMP 7.1.4",
       "audio published on one connection is played on another byte for byte")
def relay_audio(ctx: Context) -> Result:
    return _relay(ctx, "audio", MessageType.AUDIO)


@check("relay.video", "RTMP 7.1.5",
       "video (sequence header, keyframe, multi-chunk frames) relayed byte for byte")
def relay_video(ctx: Context) -> Result:
    return _relay(ctx, "video", MessageType.VIDEO)


METADATA = {"width": 640.0, "height": 360.0, "framerate": 25.0, "videocodecid": 7.0,
            "audiocodecid": 10.0, "audiosamplerate": 44100.0}


def _metadata_of(msg: Message) -> Optional[Dict[str, Any]]:
    values = commands.strip_set_data_frame(commands.decode_data(msg))
    if len(values) >= 2 and values[0] == commands.ON_METADATA and isinstance(values[1], dict):
        return dict(values[1])
    return None


def _check_metadata(sent: Dict[str, Any], got: Optional[Dict[str, Any]], raw: bytes,
                    expected_raw: bytes) -> Result:
    if got is None:
        fail("no onMetaData reached the player")
    for key, value in sent.items():
        if key in got and got[key] != value:
            fail(f"onMetaData {key} = {got[key]!r}, published {value!r}")
    missing = [k for k in sent if k not in got]
    if len(missing) == len(sent):
        fail(f"onMetaData reached the player without any of the {len(sent)} published fields")
    if missing:
        return Result.warning(f"{len(sent) - len(missing)} of {len(sent)} fields relayed with "
                              f"their values; {', '.join(missing)} dropped (onMetaData rebuilt)")
    if raw == expected_raw:
        return Result.passed("onMetaData byte-identical (without @setDataFrame)")
    return Result.passed("onMetaData values identical (re-encoded)")


@check("relay.metadata", "RTMP 7.1.2",
       "@setDataFrame onMetaData reaches the player as onMetaData with the same values")
def relay_metadata(ctx: Context) -> Result:
    pair = Pair(ctx, "meta")
    props = dict(METADATA, probeRun=ctx.run_id)
    pair.publisher.send(commands.metadata(props, pair.pub_id))
    pair.send(media_script(seed=11, frames=2))
    found = pair.collect(1, DATA_TYPES, "onMetaData")
    expected = commands.metadata(props, pair.play_id, set_data_frame=False).data
    return _check_metadata(props, _metadata_of(found[0]), found[0].data, expected)


@check("relay.late-joiner", "RTMP 7.2.2.1 [impl: late joiner headers]",
       "a player joining a running stream gets metadata and both sequence headers first")
def late_joiner(ctx: Context) -> Result:
    props = dict(METADATA, probeRun=ctx.run_id)
    script = media_script(seed=21, frames=9)
    # The player joins after three frames; the stream goes on with a new keyframe (servers
    # without a GOP cache, like nginx-rtmp, start a late joiner's video there).
    head = script[:9]
    tail = [MediaSample(MessageType.VIDEO, script[9].timestamp - 2, script[2].data)] + script[9:]

    def start_stream(pair: Pair) -> None:
        pair.publisher.send(commands.metadata(props, pair.pub_id))
        pair.send(head)
        pair.publisher.create_stream()  # a round trip: the server has read all of it

    pair = Pair(ctx, "late", before_play=start_stream)
    pair.send(tail)
    player, play_id = pair.player, pair.play_id

    def coded_frames(kind: int) -> List[Message]:
        return [m for m in pair.media() if m.type == kind and not is_sync(m)
                and not MediaSample(m.type, 0, m.data).is_sequence_header]

    player.wait(lambda _: bool(coded_frames(MessageType.AUDIO))
                and bool(coded_frames(MessageType.VIDEO)),
                "audio and video frames for the late joiner")
    received = [m for m in pair.media() if not is_sync(m) and not other_data(m)]
    problems = []
    for kind, header in ((MessageType.AUDIO, script[0].data), (MessageType.VIDEO, script[1].data)):
        name_ = MessageType(kind).name.lower()
        first_frame = next(i for i, m in enumerate(received) if m.type == kind
                           and not MediaSample(kind, 0, m.data).is_sequence_header)
        headers = [m for m in received[:first_frame] if m.type == kind]
        if not headers:
            problems.append(f"no {name_} sequence header before the first {name_} frame")
        elif headers[-1].data != header:
            problems.append(f"{name_} sequence header differs from the published one")
    first_coded = min(i for i, m in enumerate(received) if m.type in AV_TYPES
                      and not MediaSample(m.type, 0, m.data).is_sequence_header)
    meta = [m for m in received[:first_coded]
            if m.type in DATA_TYPES]
    if not meta:
        problems.append("no onMetaData before the first frame")
    if problems:
        fail("; ".join(problems))
    expected = commands.metadata(props, play_id, set_data_frame=False).data
    verdict = _check_metadata(props, _metadata_of(meta[-1]), meta[-1].data, expected)
    detail = "metadata, AAC and AVC sequence headers byte-identical before the first frames"
    if verdict.status.value == "WARN":
        return Result.warning(detail + "; " + verdict.detail)
    return Result.passed(detail)


@check("relay.aggregate", "RTMP 7.1.6",
       "an Aggregate message is relayed (whole or split) with its offset applied")
def relay_aggregate(ctx: Context) -> Result:
    pair = Pair(ctx, "aggregate", seed=101)
    before = pair.sample(4980, 120)
    subs = [pair.sample(1000, 130),
            pair.sample(1020, 900, MessageType.VIDEO),
            pair.sample(1040, 140)]
    pair.send([before])
    # RTMP 7.1.6: the aggregate's timestamp (5000) minus the first sub-message's (1000)
    # is added to every sub-message: they play at 5000, 5020, 5040.
    aggregate = build_aggregate([Message(type=s.type, data=s.data, timestamp=s.timestamp)
                                 for s in subs], message_stream_id=pair.pub_id)
    pair.publisher.send(aggregate.replace(timestamp=5000))
    expected = [before] + [MediaSample(s.type, s.timestamp + 4000, s.data) for s in subs]

    def split() -> List[Message]:
        out: List[Message] = []
        for msg in pair.received(AV_TYPES | {MessageType.AGGREGATE}):
            out.extend(split_aggregate(msg) if msg.type == MessageType.AGGREGATE else [msg])
        return out

    pair.player.wait(lambda _: len(split()) >= len(expected), "the aggregate's messages")
    got = split()
    kept = any(m.type == MessageType.AGGREGATE for m in pair.media())
    how = "relayed as an aggregate" if kept else "split"
    return Result.passed(f"{how}: " + _compare(expected, got, "message"))


@check("play.receive-audio", "RTMP 7.2.2.4",
       "receiveAudio false stops audio to the player (video goes on); true resumes it")
def receive_audio(ctx: Context) -> Result:
    pair = Pair(ctx, "recvaudio", seed=111)
    player = pair.player
    player.send(ReceiveAudio(False).to_message(message_stream_id=pair.play_id))
    player.create_stream()  # a round trip: the server has read receiveAudio
    mark = len(player.received)
    frames = [pair.sample(100 + 20 * i, 100) for i in range(3)]
    video = pair.sample(170, 300, MessageType.VIDEO)
    pair.send(frames + [video])
    player.wait(lambda r: r.message.type == MessageType.VIDEO and r.message.data == video.data,
                "video while audio is off")
    audio = [r for r in player.received[mark:] if r.message.type == MessageType.AUDIO]
    if audio:
        fail(f"{len(audio)} audio messages arrived after receiveAudio false")
    player.send(ReceiveAudio(True).to_message(message_stream_id=pair.play_id))
    player.create_stream()
    again = pair.sample(200, 100)
    pair.send([again])
    player.wait(carries(again.data), "audio after receiveAudio true")
    return Result.passed("no audio while off, video kept flowing, audio back after true")


@check("publish.duplicate", "RTMP 7.2.2.6",
       "a second publisher of a name being published is refused")
def publish_duplicate(ctx: Context) -> Result:
    name, _, _ = _publishing(ctx, "dup", "dup-1")
    second = ctx.connection("dup-2")
    stream_id = second.create_stream()
    second.send(commands.publish(name, "live", stream_id))
    try:
        status = second.wait_status(stream_id, "answer to the duplicate publish")
    except Exception as exc:  # noqa: BLE001 - closing the connection is also a refusal
        if "closed" in str(exc):
            return Result.warning("refused by closing the connection, without an onStatus")
        raise
    if status.code == commands.NETSTREAM_PUBLISH_START:
        fail("a second publisher of the same name got NetStream.Publish.Start")
    if not status.is_error:
        fail(f"duplicate publish answered {status.code!r} without level error")
    return Result.passed(f"refused with {status.name} {status.code}")


@check("unpublish.notify", "RTMP 7.1.7",
       "when the publisher deletes its stream, the player is told (UnpublishNotify / Stream EOF)")
def unpublish_notify(ctx: Context) -> Result:
    pair = Pair(ctx, "unpub")
    pair.send(media_script(seed=31, frames=1))
    pair.collect(2, (MessageType.AUDIO,), "audio before unpublishing")
    pair.publisher.send(FCUnpublish(pair.name).to_message())
    pair.publisher.send(DeleteStream(pair.pub_id).to_message())
    notices = {commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY, commands.NETSTREAM_PLAY_STOP}

    def told(item: Received) -> bool:
        if item.command is not None and item.command.name == commands.ON_STATUS:
            return item.command.code in notices
        return (item.event is not None and item.event.event == UserControlEvent.STREAM_EOF
                and item.event.stream_id == pair.play_id)

    found = pair.player.wait(told, "UnpublishNotify, Play.Stop or Stream EOF for the player")
    what = found.command.code if found.command is not None else "Stream EOF"
    return Result.passed(f"player told: {what}")


@check("command.unknown", "RTMP 7.2.1.2",
       "a call of an unknown method with a transaction id is answered with _error")
def unknown_command(ctx: Context) -> Result:
    conn = ctx.connection("unknown")
    txn = 9
    conn.send(commands.encode_command("probeNoSuchMethod", txn, None, "x"))
    reply = conn.wait_reply(txn, "_error for an unknown method",
                            timeout=min(SHOULD_WAIT * 1.5, ctx.timeout))
    if reply.name != commands.ERROR:
        fail(f"unknown method answered {reply.name}")
    return Result.passed(f"_error {reply.code or ''}".strip())


@check("stream.create", "RTMP 7.2.1.3",
       "createStream is answered with _result, its transaction id and a stream id")
def create_stream(ctx: Context) -> Result:
    conn = ctx.connection("create")
    first = conn.create_stream(transaction_id=5)
    second = conn.create_stream(transaction_id=6)
    if first <= 0 or second <= 0:
        fail(f"stream ids {first}, {second}: 0 is the NetConnection's own stream")
    if first == second:
        return Result.warning(f"two createStream calls both got stream id {first}")
    return Result.passed(f"stream ids {first}, {second}")


@check("stream.delete", "RTMP 7.2.2.3",
       "deleteStream ends the publication (the name is free again) and the connection lives on")
def delete_stream(ctx: Context) -> Result:
    name, first, stream_id = _publishing(ctx, "delete", "delete-1")
    first.send(DeleteStream(stream_id).to_message())
    reply = first.poll(lambda r: r.command is not None
                       and r.command.name in (commands.RESULT, commands.ERROR)
                       and r.command.transaction_id == 0, QUIET)
    first.create_stream()  # the connection still works (and deleteStream was processed)
    second = ctx.connection("delete-2")
    _, status = second.publish(name)
    if status.code != commands.NETSTREAM_PUBLISH_START:
        fail(f"after deleteStream the name is still taken: {status.code}")
    if second.closed_by_server():
        fail("after deleteStream the name is still taken: a second publisher got "
             "NetStream.Publish.Start, then the server closed its connection")
    if reply is not None:
        return Result.warning(f"deleteStream got a {reply.command.name if reply.command else '?'}"
                              " (the server sends no response)")
    return Result.passed("name free again, connection usable")


@check("timing.latency", "RTMP 7.3.1",
       "publish-to-play latency of audio frames (measured)")
def latency(ctx: Context) -> Result:
    pair = Pair(ctx, "latency", seed=41)
    delays = []
    for i in range(10):
        data = b"\x2f" + pair.rng.randbytes(200)
        start = time.monotonic()
        pair.publisher.send(_audio(data, 20 * i, pair.pub_id))
        found = pair.player.wait(carries(data), f"audio frame {i} at the player")
        delays.append((found.at - start) * 1000)
    median = statistics.median(delays)
    ctx.metrics.update(latency_median_ms=median, latency_max_ms=max(delays))
    detail = f"median {median:.1f} ms, max {max(delays):.1f} ms over {len(delays)} frames"
    if median > 500:
        return Result.warning("slow: " + detail)
    return Result.passed(detail)


# == RTMP 5.3 / 5.4.1 / 5.4.2: hand-built chunk streams ===========================================


# Every check tests one clause and keeps everything else ordinary: hand-built chunks use the
# conventional chunk streams (audio 4, video 6, as ffmpeg and librtmp do) unless the chunk
# stream id itself is under test; servers limit ids (nginx-rtmp closes a session on any
# id >= its max_streams, 32 by default).  The encoder forgets its state for a chunk stream
# written by hand (ProbeConnection.send_raw).


def _payload(rng: random.Random, size: int, kind: int = MessageType.AUDIO) -> bytes:
    # FLV E.4.2.1 / E.4.3.1: MP3 audio; Sorenson H.263 *keyframes*, since servers (nginx-rtmp)
    # hold back inter frames from a player until it has had a keyframe.
    lead = b"\x2f" if kind == MessageType.AUDIO else b"\x12"
    return lead + rng.randbytes(size - 1)


def _type_plan(rng: random.Random, pub_id: int, steps: Sequence[Tuple[int, int, int]],
               csid: int = AUDIO_CHUNK_STREAM_ID, chunk_size: int = 128) -> List[Write]:
    """Messages on one chunk stream: (fmt, timestamp field, length) each; expected absolute
    timestamps follow RTMP 5.3.1.2 (type 0 absolute, 1/2 delta, 3 the stored delta)."""
    plan: List[Write] = []
    ts = delta = 0
    length = 0
    for fmt, value, size in steps:
        if fmt == 0:
            ts, delta = value, value
        elif fmt in (1, 2):
            delta = value
            ts += delta
        else:
            ts += delta
        if fmt in (0, 1):
            length = size
        data = _payload(rng, length)
        chunks = raw_message(fmt, csid, data, chunk_size, timestamp=value if fmt != 3 else 0,
                             type_id=MessageType.AUDIO, msid=pub_id)
        plan.append((chunks, MediaSample(MessageType.AUDIO, ts, data)))
    return plan


def _header_check(ctx: Context, label: str, steps: Sequence[Tuple[int, int, int]]) -> Result:
    pair = Pair(ctx, label)
    return Result.passed(relay_compare(pair, _type_plan(pair.rng, pair.pub_id, steps), label))


@check("chunk.type1", "RTMP 5.3.1.2.2",
       "type 1 headers (new length and delta, no stream id) are decoded")
def chunk_type1(ctx: Context) -> Result:
    return _header_check(ctx, "type1", [(0, 1000, 100), (1, 33, 250), (1, 40, 60), (1, 7, 300)])


@check("chunk.type2", "RTMP 5.3.1.2.3", "type 2 headers (delta only) are decoded")
def chunk_type2(ctx: Context) -> Result:
    return _header_check(ctx, "type2", [(0, 1000, 200), (2, 21, 0), (2, 22, 0), (2, 5, 0)])


@check("chunk.type3", "RTMP 5.3.1.2.4",
       "type 3 headers start new messages with the stored delta (also right after type 0)")
def chunk_type3(ctx: Context) -> Result:
    return _header_check(ctx, "type3", [(0, 500, 150), (3, 0, 0), (2, 20, 0), (3, 0, 0),
                                        (3, 0, 0)])


@check("chunk.interleaved", "RTMP 5.3",
       "chunks of messages on different chunk streams, interleaved, are reassembled per stream")
def chunk_interleaved(ctx: Context) -> Result:
    pair = Pair(ctx, "interleave", seed=121)
    (a, audio), (v, video) = (pair.chunked(pair.sample(300, 500)),
                              pair.chunked(pair.sample(310, 600, MessageType.VIDEO)))
    order = [chunk for pair_ in zip(a, v) for chunk in pair_] + v[len(a):] + a[len(v):]
    pair.publisher.send_raw(*order)
    _collect_compare(pair, [audio, video], "interleaved")
    return Result.passed(f"{len(a)} audio and {len(v)} video chunks alternating: both intact")


def _csid_check(ctx: Context, label: str, streams: Sequence[Tuple[int, Optional[bytes]]]
                ) -> Result:
    """One message on each chunk stream (type 0; a chunk stream named a second time gets a
    type 2 message with delta 20, which needs the state of the first), each followed by a
    round trip: a server that closes the connection at an id it does not take is refusing
    that id (a limit, WARN); an id that is taken and loses or garbles the message is a
    FAIL."""
    pair = Pair(ctx, label)
    expected = []
    last: Dict[int, int] = {}
    for n, (csid, basic) in enumerate(streams):
        data = _payload(pair.rng, 300)
        again = csid in last
        if again:
            ts = last[csid] + 20
            chunks = raw_message(2, csid, data, 128, timestamp=20, basic=basic)
        else:
            ts = 100 * (n + 1)
            chunks = raw_message(0, csid, data, 128, timestamp=ts, msid=pair.pub_id,
                                 basic=basic)
        last[csid] = ts
        sample = MediaSample(MessageType.AUDIO, ts, data)
        try:
            expected += _write(pair, [(chunks, sample)])
        except ConnectionClosedError:
            pass  # the round trip below tells
        if pair.publisher_closed():
            form = f"{len(basic)}-byte form of " if basic is not None else ""
            if again:
                fail(f"the server closed the connection at a type 2 chunk on chunk stream "
                     f"{csid} ({form or 'smallest form of '}the id): it did not take it for "
                     f"the chunk stream its earlier type 0 chunk opened")
            warn(f"refused chunk stream id {form}{csid} (a limit): the server closed the "
                 f"connection at its first chunk" + (f", after taking {n} ids" if n else ""))
    ids = ", ".join(str(c) if b is None else f"{c} ({len(b)}-byte form)" for c, b in streams)
    return Result.passed(f"chunk streams {ids}: " + _collect_compare(pair, expected, label))


@check("chunk.csid-2byte", "RTMP 5.3.1.1",
       "chunk stream ids 64-319 in the 2-byte basic header form")
def csid_two_byte(ctx: Context) -> Result:
    return _csid_check(ctx, "csid2", [(64, None), (319, None), (200, None)])


def _three_byte(csid: int) -> bytes:
    value = csid - 64  # RTMP 5.3.1.1: 16-bit little-endian + 64
    return bytes((0x01, value & 0xFF, value >> 8))


@check("chunk.csid-3byte", "RTMP 5.3.1.1",
       "chunk stream ids 320-65599 in the 3-byte form; 100 in the 3-byte form, then in the "
       "2-byte form, is one chunk stream")
def csid_three_byte(ctx: Context) -> Result:
    return _csid_check(ctx, "csid3", [(320, None), (1000, None), (65599, None),
                                      (100, _three_byte(100)), (100, None)])


def _chunk_size_relay(ctx: Context, label: str, sizes: Sequence[int], frame: int) -> Result:
    """Each Set Chunk Size written together with two video messages, then a round trip
    (a server that closes the connection is named with the size that made it)."""
    pair = Pair(ctx, label)
    expected = []
    previous = 128
    for n, size in enumerate(sizes):
        batch: List[Message] = [control.set_chunk_size(size)]
        for k in range(2):
            sample = pair.sample(40 * (2 * n + k), frame + 101 * k, MessageType.VIDEO)
            batch.append(pair.message(sample))
            expected.append(sample)
        # One write: the new size applies from the byte after Set Chunk Size, even when
        # the receiver reads both in one go (RTMP 5.4.1).
        try:
            pair.publisher.send(*batch)
            closed = pair.publisher_closed()
        except ConnectionClosedError:
            closed = True
        if closed:
            fail(f"the server closed the connection after Set Chunk Size {size} (from "
                 f"{previous}) written together with the next {len(batch) - 1} messages")
        previous = size
    return Result.passed(f"sizes {', '.join(map(str, sizes))}: " +
                         _collect_compare(pair, expected, label))


@check("chunk-size.inbound", "RTMP 5.4.1",
       "after our Set Chunk Size 4096, multi-chunk messages are reassembled")
def chunk_size_inbound(ctx: Context) -> Result:
    return _chunk_size_relay(ctx, "cs4096", [4096], 10000)


@check("chunk-size.large", "RTMP 5.4.1",
       "a Set Chunk Size of 0xFFFFFF (whole messages in one chunk) is honoured")
def chunk_size_large(ctx: Context) -> Result:
    return _chunk_size_relay(ctx, "cslarge", [0xFFFFFF], 200_000)


@check("chunk-size.change", "RTMP 5.4.1",
       "the chunk size goes up twice between messages, each Set Chunk Size written "
       "together with the messages after it")
def chunk_size_change(ctx: Context) -> Result:
    return _chunk_size_relay(ctx, "cschange", [1024, 4096], 1500)


@check("chunk-size.lower", "RTMP 5.4.1",
       "the chunk size goes down (4096 to 128) between messages, the Set Chunk Size written "
       "together with the messages after it")
def chunk_size_lower(ctx: Context) -> Result:
    return _chunk_size_relay(ctx, "cslower", [4096, 128], 1500)


@check("chunk-size.mid-message", "RTMP 5.4.1",
       "a Set Chunk Size between two chunks of one message applies to the rest of it")
def chunk_size_mid_message(ctx: Context) -> Result:
    pair = Pair(ctx, "csmid", seed=51)
    chunks, sample = pair.chunked(pair.sample(40, 5000, MessageType.VIDEO))
    head, rest, csid = chunks[0], sample.data[128:], VIDEO_CHUNK_STREAM_ID
    cont = [bytes((0xC0 | csid,)) + rest[i:i + 1024]  # type 3 (RTMP 5.3.1.2.4)
            for i in range(0, len(rest), 1024)]
    summary = relay_compare(pair, [
        ([head], None),
        (control.set_chunk_size(1024), None),  # RTMP 5.4.1: applies from here
        (cont, sample),
    ], "a chunk size change inside a message")
    return Result.passed("128-byte first chunk, then 1024: " + summary)


@check("abort.partial", "RTMP 5.4.2",
       "Abort Message discards the partial message of its chunk stream")
def abort_partial(ctx: Context) -> Result:
    pair = Pair(ctx, "abort", seed=61)
    csid = AUDIO_CHUNK_STREAM_ID
    m0, m1 = _payload(pair.rng, 300), _payload(pair.rng, 300)
    partial, fresh = b"\x2f" + b"A" * 299, b"\x2f" + b"B" * 299
    expected = _write(pair, [
        pair.chunked(MediaSample(MessageType.AUDIO, 1000, m0)),
        (raw_message(2, csid, m1, 128, timestamp=20), MediaSample(MessageType.AUDIO, 1020, m1)),
        (raw_message(2, csid, partial, 128, timestamp=20)[:1], None),  # 1 of 3 chunks
        (control.abort(csid), None),
        # A type 3 chunk now starts a new message (stored length and delta), RTMP 5.3.1.2.4.
        (raw_message(3, csid, fresh, 128), MediaSample(MessageType.AUDIO, 1060, fresh)),
    ])
    for msg in pair.collect(len(expected), (MessageType.AUDIO,), "messages around the Abort"):
        if b"AAAA" in msg.data:
            fail("bytes of the aborted message reached the player")
    return Result.passed(_collect_compare(pair, expected, "around the Abort"))


# == RTMP 5.3.1.3: extended timestamps ============================================================


@check("ext-ts.cross", "RTMP 5.3.1.3",
       "timestamps crossing 0xFFFFFF (extended field) keep their spacing")
def ext_ts_cross(ctx: Context) -> Result:
    pair = Pair(ctx, "extcross", seed=71)
    stamps = (0xFFFFF0 - 40, 0xFFFFF0, 0xFFFFFE, 0xFFFFFF, 0x1000000, 0x1000014, 0x1000028)
    writes = [pair.chunked(pair.sample(ts, 100)) for ts in stamps]
    return Result.passed(relay_compare(pair, writes, "around 0xFFFFFF"))


@check("ext-ts.delta", "RTMP 5.3.1.2.5",
       "a type 2 delta >= 0xFFFFFF (extended field, repeated on the next type 3) is applied")
def ext_ts_delta(ctx: Context) -> Result:
    pair = Pair(ctx, "extdelta", seed=131)
    delta = 0x1000000
    steps = [(0, 1000), (2, delta), (3, delta)]
    csid = AUDIO_CHUNK_STREAM_ID
    writes: List[Write] = []
    ts = 0
    for fmt, value in steps:
        data = _payload(pair.rng, 200)
        ts = value if fmt == 0 else ts + delta
        if fmt == 3:  # RTMP 5.3.1.3: the stored extended delta is repeated on type 3
            chunks = raw_message(3, csid, data, 128, extended=delta)
        else:
            chunks = raw_message(fmt, csid, data, 128, timestamp=value, msid=pair.pub_id)
        writes.append((chunks, MediaSample(MessageType.AUDIO, ts, data)))
    return Result.passed(relay_compare(pair, writes, "an extended delta"))


@check("ext-ts.type3-inbound", "RTMP 5.3.1.3",
       "type 3 continuation chunks repeating the extended timestamp are reassembled")
def ext_ts_type3_inbound(ctx: Context) -> Result:
    pair = Pair(ctx, "ext3in", seed=81)
    writes = [pair.chunked(pair.sample(0x1234567 + 40 * n, 700, MessageType.VIDEO)) for n in range(3)]
    return Result.passed("6 continuation chunks each: "
                         + relay_compare(pair, writes, "extended timestamps"))


@check("ext-ts.type3-outbound", "RTMP 5.3.1.3",
       "the server repeats the extended timestamp on its own type 3 continuation chunks")
def ext_ts_type3_outbound(ctx: Context) -> Result:
    pair = Pair(ctx, "ext3out", observe_chunks=True, seed=91)
    ts = 0x2000000
    # Larger than the server's own chunk size (its Set Chunk Size), so that it has to send
    # continuation chunks: nginx-rtmp sends 4096, node-media-server 65535.
    server_chunk = pair.player.transport.session.decoder.chunk_size
    size = max(12000, 2 * server_chunk + 1000)
    samples = [pair.sample(ts + 40 * n, size, MessageType.VIDEO)
               for n in range(4)]
    relay_compare(pair, [(pair.message(s), s) for s in samples], "extended timestamps")
    got = pair.received((MessageType.VIDEO,))
    chunks: List[ChunkInfo] = pair.player.chunks
    extended_first: Dict[int, bool] = {}
    continuations = 0
    for info in chunks:
        if not info.continuation:
            extended_first[info.chunk_stream_id] = info.extended
        elif extended_first.get(info.chunk_stream_id):
            continuations += 1
            if not info.extended:
                fail(f"chunk stream {info.chunk_stream_id}: a type 3 continuation of a message "
                     f"with an extended timestamp ({info.timestamp:#x}) omits the field")
    if not continuations:
        big = [i for i in chunks if i.continuation]
        return Result.skipped(f"the server sent no multi-chunk message with an extended "
                              f"timestamp ({len(big)} continuation chunks of {size}-byte "
                              f"messages with chunk size {server_chunk}; timestamps "
                              f"{got[0].timestamp:#x}..)")
    return Result.passed(f"{continuations} continuation chunks repeat the extended timestamp")

