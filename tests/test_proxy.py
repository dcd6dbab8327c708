"""rtmp.proxy.Proxy driven directly (not through the CLI): relaying and the trace.

A :class:`Proxy` stands between our client and our server (or a raw byte server);
every test checks both what arrives on the far side and what the proxy printed.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from typing import Callable, Iterator, List, Tuple

import pytest

from rtmp import Client, ClientConfig, Server, ServerConfig
from rtmp.message import Message, MessageType
from rtmp.proxy import Proxy

#: FLV E.4.3.1: an AVC NALU keyframe with a body of every byte value, several chunks long.
KEYFRAME = b"\x17\x01\x00\x00\x00" + bytes(range(256)) * 20


def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


@pytest.fixture
def server() -> Iterator[Server]:
    with Server(ServerConfig(addr="127.0.0.1:0")) as srv:
        yield srv


def start_proxy(upstream: Tuple[str, int], *, chunks: bool) -> Tuple[Proxy, io.StringIO]:
    out = io.StringIO()
    proxy = Proxy("127.0.0.1", 0, f"rtmp://{upstream[0]}:{upstream[1]}/live",
                  chunks=chunks, output=out)
    proxy.start()
    return proxy, out


@pytest.mark.spec("RTMP 5.2.2", "RTMP 7.2.1.1", "RTMP 7.2.2.6", "RTMP 7.2.2.1")
@pytest.mark.parametrize("chunks", [False, True])
def test_publish_and_play_through_the_proxy(server: Server, chunks: bool) -> None:
    proxy, out = start_proxy(server.address, chunks=chunks)
    try:
        host, port = proxy.address
        url = f"rtmp://{host}:{port}/live/s"
        with Client(ClientConfig(read_timeout=5)) as publisher, \
                Client(ClientConfig(read_timeout=5)) as player:
            publisher.connect(url)
            publisher.publish("s")
            player.connect(url)
            player.play("s")
            sent = Message(type=MessageType.VIDEO, data=KEYFRAME, timestamp=40,
                           message_stream_id=1)
            publisher.write_message(sent)
            received = None
            for _ in range(10):  # |RtmpSampleAccess and stream-begin data come first
                msg = player.read_message(timeout=5)
                if msg is not None and msg.type == MessageType.VIDEO:
                    received = msg
                    break
            assert received is not None, "the keyframe did not come through the proxy"
            assert received.data == KEYFRAME and received.timestamp == 40
        # Both sessions end: the proxy notices and says so.
        assert wait_until(lambda: out.getvalue().count("closed") >= 2)
    finally:
        proxy.stop()
    lines = out.getvalue().splitlines()
    up = server.address
    assert "[p1] 127.0.0.1:" in lines[0] and lines[0].endswith(f"<-> {up[0]}:{up[1]}")
    text = "\n".join(lines)
    for expected in (
        "[p1] C->S  C0  version 3",  # RTMP 5.2.2
        "[p1] S->C  S0  version 3",
        "[p1] C->S  message command connect txn=1",  # RTMP 7.2.1.1
        "[p1] S->C  message command _result txn=1",
        "[p1] C->S  message command publish",  # RTMP 7.2.2.6
        "NetStream.Publish.Start",
        "[p2] C->S  message command play",  # RTMP 7.2.2.1
        "NetStream.Play.Start",
        "[p1] closed",
        "[p2] closed",
    ):
        assert expected in text, f"{expected!r} missing from the trace:\n{text[:3000]}"
    chunk_lines = [line for line in lines if "  chunk fmt=" in line]
    assert bool(chunk_lines) == chunks


class ByteServer:
    """A plain TCP peer: records every byte it receives, answers with ``reply``, then EOF."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.received = bytearray()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-byte-server")
        self.thread.start()

    @property
    def address(self) -> Tuple[str, int]:
        host, port = self.listener.getsockname()[:2]
        return host, port

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            self.done.set()
            return
        with conn:
            conn.settimeout(10)
            conn.sendall(self.reply)
            conn.shutdown(socket.SHUT_WR)
            for _ in range(10_000):  # bounded: the test sends well under 10,000 reads
                try:
                    data = conn.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                self.received += data
        self.done.set()

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


def test_bytes_pass_unchanged_in_both_directions() -> None:
    """Whatever the peers send (here: not RTMP at all), the proxy relays it byte for byte
    and its tracer's complaints never disturb the relay."""
    upstream_reply = os.urandom(200_000)
    client_bytes = b"\x03" + os.urandom(300_000)  # C0 then noise where C1 should be
    peer = ByteServer(upstream_reply)
    proxy, out = start_proxy(peer.address, chunks=True)
    try:
        with socket.create_connection(proxy.address, timeout=10) as sock:
            sender = threading.Thread(target=sock.sendall, args=(client_bytes,))
            sender.start()
            got = bytearray()
            for _ in range(10_000):
                data = sock.recv(65536)
                if not data:
                    break
                got += data
            sender.join(10)
            sock.shutdown(socket.SHUT_WR)
            assert peer.done.wait(10)
        assert bytes(got) == upstream_reply
        assert bytes(peer.received) == client_bytes
        assert wait_until(lambda: "[p1] closed" in out.getvalue())
    finally:
        proxy.stop()
        peer.close()


def test_unreachable_upstream_is_reported_and_the_client_closed() -> None:
    spare = socket.create_server(("127.0.0.1", 0))
    dead = spare.getsockname()[:2]
    spare.close()  # nothing listens there now
    proxy, out = start_proxy(dead, chunks=False)
    try:
        with socket.create_connection(proxy.address, timeout=10) as sock:
            sock.settimeout(10)
            assert sock.recv(1) == b""  # the proxy hung up on us
        assert wait_until(lambda: "cannot reach" in out.getvalue())
    finally:
        proxy.stop()
    lines: List[str] = out.getvalue().splitlines()
    assert lines and lines[0].startswith("[p1] cannot reach 127.0.0.1:")


@pytest.mark.spec("RTMP 7.1.3", "RTMP 7.1.3 [de-facto]")
def test_shared_object_message_traced_event_by_event(server: Server) -> None:
    """The proxy explains a shared object message one event per line, with the clause."""
    import struct

    name = b"chat"
    key = struct.pack(">H", 5) + b"count"
    body = (struct.pack(">H", len(name)) + name + struct.pack(">III", 0, 0, 0)
            + struct.pack(">BI", 1, 0)  # Use
            + struct.pack(">BI", 3, len(key) + 9) + key + b"\x00" + struct.pack(">d", 7.0))
    proxy, out = start_proxy(server.address, chunks=False)
    try:
        host, port = proxy.address
        with Client(ClientConfig(read_timeout=5)) as client:
            client.connect(f"rtmp://{host}:{port}/live")
            client.write_message(Message(type=MessageType.SHARED_OBJECT_AMF0, data=body))
            assert wait_until(lambda: "event 2:" in out.getvalue())
    finally:
        proxy.stop()
    text = out.getvalue()
    for expected in (
        "[p1] C->S  message shared object 'chat' version 0 transient AMF0, 2 events"
        "  (RTMP 7.1.3 [de-facto])",
        "[p1] C->S    event 1: Use  (RTMP 7.1.3 [de-facto])",
        "[p1] C->S    event 2: Request Change 'count' = 7.0  (RTMP 7.1.3 [de-facto])",
    ):
        assert expected in text, f"{expected!r} missing from the trace:\n{text[:3000]}"


@pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio", "ERTMP Metadata Frame")
def test_proxy_explains_enhanced_rtmp_headers(server: Server) -> None:
    # Hand-built E-RTMP messages: HEVC SequenceStart with a TimestampOffsetNano ModEx,
    # a colorInfo Metadata packet (frame type 5, packet type 4), an Opus MultichannelConfig.
    video = b"\x97\x02" + (1234).to_bytes(3, "big") + b"\x00" + b"hvc1" + b"hvcC-record"
    metadata = b"\xd4hvc1" + b"\x02\x00\x09colorInfo\x06"
    audio = b"\x94Opus" + bytes([1, 2, 0, 0, 0, 3])
    proxy, out = start_proxy(server.address, chunks=False)
    try:
        host, port = proxy.address
        with Client(ClientConfig(read_timeout=5)) as publisher:
            publisher.connect(f"rtmp://{host}:{port}/live/e")
            publisher.publish("e")
            for kind, data in ((MessageType.VIDEO, video), (MessageType.VIDEO, metadata),
                               (MessageType.AUDIO, audio)):
                publisher.write_message(Message(type=kind, data=data, timestamp=0, message_stream_id=1))
            assert wait_until(lambda: "MultichannelConfig: audioChannelOrder 1" in out.getvalue())
    finally:
        proxy.stop()
    text = out.getvalue()
    for expected in (
        "[p1] C->S    ModEx 1: size UI8 2 -> 3 bytes, VideoPacketModExType 0 (TimestampOffsetNano)"
        " = 1234 ns; next VideoPacketType 0 (SequenceStart)  (ERTMP Enhanced Video)",
        "[p1] C->S    track 0: 11 bytes: HEVCDecoderConfigurationRecord  (ERTMP Enhanced Video)",
        "[p1] C->S    Metadata colorInfo = ",
        "(ERTMP Metadata Frame)",
        "[p1] C->S    MultichannelConfig: audioChannelOrder 1 (Native), channelCount 2, audioChannelFlags"
        " 0x000003 (FrontLeft FrontRight)  (ERTMP Enhanced Audio)",
    ):
        assert expected in text, f"{expected!r} missing from the trace:\n{text[-3000:]}"
    assert "seek" not in text
