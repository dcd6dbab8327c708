"""RTMP 7.1.3 / 7.3.2 [de-facto]: hostile shared-object messages against a live server.

A 1 MiB message, 100,000 slots, a change flood next to a playing stream, event lengths
that lie, names that try to leave the persistence directory, unknown event types.  Each
gets a Status event (or the limit's error) and the offender's session goes on; another
user of the same object sees only what was accepted, and the healthy publisher/player
pair of the package streams through every case (``hostile.assert_healthy()``).
"""

from __future__ import annotations

import logging
import statistics
import struct
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

import rtmp
from rtmp import shared_object_store as store
from rtmp.message import Message, MessageType
from rtmp.shared_object import SOEvent, SOEventType
from tests.hostile.harness import HostileEnv, running_server
from tests.so_peers import RawPeer, event_types

logger = logging.getLogger(__name__)

pytestmark = pytest.mark.timeout(120)

T = SOEventType
APP = "live"  # the shared hostile server's application


def _bare(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def _header(name: str, version: int = 0, flags: int = 0) -> bytes:
    """RTMP 7.1.3 [de-facto]: name (UI16 + UTF-8), version UI32, flags UI32 + UI32."""
    return _bare(name) + struct.pack(">III", version, flags, 0)


def _event(kind: int, data: bytes, length: int = -1) -> bytes:
    """One event: UI8 type, UI32 data length (``length`` may lie), data."""
    return struct.pack(">BI", kind, len(data) if length < 0 else length) + data


def _number(value: float) -> bytes:
    return b"\x00" + struct.pack(">d", value)  # AMF0 2.2


def pair(hostile: HostileEnv, name: str) -> Tuple[RawPeer, RawPeer]:
    """An offender and a bystander, both using ``name``, each reading on a thread of its
    own (a user that does not read for ``idle_timeout`` is ended, RTMP 7.1.7: the
    bystander listens while the offender takes its time, and the other way round)."""
    offender = RawPeer(hostile.server, app=APP)
    bystander = RawPeer(hostile.server, app=APP)
    offender.use(name)
    bystander.use(name)
    return offender.listen(), bystander.listen()


def still_works(offender: RawPeer, bystander: RawPeer, name: str, key: str = "after") -> None:
    """The offender's session goes on, and the bystander sees exactly the accepted change."""
    offender.send(name, SOEvent.request_change(key, 1.0))
    mine = offender.recv()
    assert [(e.type, e.key) for e in mine.events] == [(T.SUCCESS, key)]
    theirs = bystander.recv()
    assert [(e.type, e.key, e.value) for e in theirs.events] == [(T.CHANGE, key, 1.0)]
    assert bystander.quiet()


class TestSize:
    @pytest.mark.spec("RTMP 7.1.3 [de-facto]")
    def test_one_mib_message(self, hostile: HostileEnv) -> None:
        offender, bystander = pair(hostile, "big")
        try:
            value = b"\x0c" + struct.pack(">I", 1 << 20) + b"x" * (1 << 20)  # AMF0 long string
            offender.send_raw(_header("big") + _event(3, _bare("blob") + value))
            status = offender.status()
            assert (status.code, status.level) == (store.BAD_MESSAGE, "error")
            # half of it is a legitimate value: accepted and delivered whole
            offender.send("big", SOEvent.request_change("half", "y" * (1 << 19)))
            assert [(e.type, e.key) for e in offender.recv().events] == [(T.SUCCESS, "half")]
            assert bystander.recv().events[0].value == "y" * (1 << 19)
            still_works(offender, bystander, "big")
        finally:
            offender.close()
            bystander.close()
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 7.1.3 [de-facto]", "RTMP 7.3.2 [de-facto]")
    def test_100000_slots(self, hostile: HostileEnv) -> None:
        offender, bystander = pair(hostile, "wide")
        try:
            started = time.monotonic()
            for batch in range(10):  # the decoder takes 10,000 events a message
                offender.send("wide", *(SOEvent.request_change(f"k{batch * 10_000 + n:06d}", float(n))
                                        for n in range(10_000)))
            successes = sum(len(offender.recv(30).events) for _ in range(10))
            changes = sum(len(bystander.recv(30).events) for _ in range(10))
            stored = time.monotonic() - started
            assert successes == changes == 100_000
            with RawPeer(hostile.server, app=APP) as late:
                started = time.monotonic()
                so = late.use("wide")
                joined = time.monotonic() - started
                assert event_types(so)[:2] == [T.USE_SUCCESS, T.CLEAR]
                assert len(so.events) == 100_002 and so.version == 100_000
            logger.warning("100,000 slots: stored and broadcast in %.2f s; a late Use answered "
                           "in %.2f s", stored, joined)
            # one more than the decoder takes in a message: refused as a whole
            offender.send("wide", *(SOEvent.request_change("x", 1.0) for _ in range(10_001)))
            assert offender.status().code == store.BAD_MESSAGE
            still_works(offender, bystander, "wide")
        finally:
            offender.close()
            bystander.close()
        hostile.assert_healthy()


class TestLies:
    @pytest.mark.spec("RTMP 7.1.3 [de-facto]")
    @pytest.mark.parametrize("body", [
        pytest.param(_header("lies") + _event(3, _bare("k") + _number(1.0), length=0xFFFFFFFF),
                     id="length-past-the-end"),
        pytest.param(_header("lies") + _event(3, _bare("k") + _number(1.0), length=4),
                     id="length-cuts-the-value"),
        pytest.param(_header("lies") + _event(3, _bare("k"), length=1), id="length-cuts-the-key"),
        pytest.param(_header("lies") + _event(3, struct.pack(">H", 500) + b"k" + _number(1.0)),
                     id="key-length-lies"),
        pytest.param(_header("lies") + _event(6, b"\x02\x00\x09say"), id="handler-cut"),
        pytest.param(_header("lies") + _event(7, _bare("code")), id="status-half"),
        pytest.param(_header("lies")[:-3], id="header-cut"),
        pytest.param(struct.pack(">H", 9) + b"lies", id="name-length-lies"),
        # 65,535 bytes that are not UTF-8: the Status cannot echo the name (3 bytes a byte
        # once replaced, past the U16 length), so it names none instead of crashing.
        pytest.param(struct.pack(">H", 0xFFFF) + b"\xff" * 0xFFFF, id="name-not-utf8"),
        pytest.param(_header("lies") + b"\x03\x00", id="event-header-cut"),
        pytest.param(_header("lies") + _event(3, _bare("k") + b"\x03" + b"\x00\x01a\x03" * 200),
                     id="deep-value"),
    ])
    def test_lying_lengths(self, hostile: HostileEnv, body: bytes) -> None:
        offender, bystander = pair(hostile, "lies")
        try:
            offender.send_raw(body)
            status = offender.status()
            assert (status.code, status.level) == (store.BAD_MESSAGE, "error")
            assert bystander.quiet()
            still_works(offender, bystander, "lies")
        finally:
            offender.close()
            bystander.close()
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 7.1.3 [de-facto]")
    def test_unknown_event_types(self, hostile: HostileEnv) -> None:
        offender, bystander = pair(hostile, "odd")
        try:
            body = (_header("odd") + _event(12, b"\x01\x02\x03") + _event(0, b"")
                    + _event(3, _bare("k") + _number(7.0)) + _event(255, b"x" * 100))
            offender.send_raw(body)
            replies = [offender.recv() for _ in range(4)]
            kinds = [[(e.type, e.code or e.key) for e in so.events] for so in replies]
            warning = [(T.STATUS, store.UNKNOWN_EVENT)]
            assert kinds == [warning, warning, [(T.SUCCESS, "k")], warning]
            assert all(so.events[0].level == "warning" for so in (replies[0], replies[1], replies[3]))
            theirs = bystander.recv()
            assert [(e.type, e.key, e.value) for e in theirs.events] == [(T.CHANGE, "k", 7.0)]
            assert bystander.quiet()
            still_works(offender, bystander, "odd")
        finally:
            offender.close()
            bystander.close()
        hostile.assert_healthy()


class TestNames:
    @pytest.mark.spec("RTMP 7.3.2 [de-facto]")
    def test_persistent_names_never_leave_the_directory(self, tmp_path: Path) -> None:
        root = tmp_path / "objects"
        names = ["..", "../x", "../../etc/passwd", "a/../../b", "x\x00y", "\\..\\x", "/abs",
                 ".", "C:win", "\x01ctl", "ok/", "a" * 256]
        with running_server(shared_objects_dir=root) as server, RawPeer(server) as peer, \
                RawPeer(server) as bystander:
            bystander.use("fine", persistent=True)
            for name in names:
                peer.send(name, SOEvent.use(), SOEvent.request_change("x", 1.0), persistent=True)
                first, second = peer.status(), peer.status()
                assert (first.code, second.code) == (store.BAD_NAME, store.NOT_IN_USE), name
            # names that look odd but are plain file names stay inside
            for name in ("%2e%2e", "..x", "x..", "é", "a b"):
                so = peer.use(name, persistent=True)
                assert event_types(so) == [T.USE_SUCCESS, T.CLEAR], name
                peer.send(name, SOEvent.request_change("x", 1.0), persistent=True)
                assert peer.recv().events[0].type == T.SUCCESS
            assert bystander.quiet()
        outside = [p for p in tmp_path.rglob("*") if root not in p.parents and p != root]
        assert outside == []
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.rso"))
        assert files == sorted(f"app/{n}.rso" for n in ("%2e%2e", "..x", "x..", "é", "a b"))
        assert server.stats.errors == 0


def _delays(received: List[Tuple[float, float]]) -> Tuple[float, float, float]:
    """p50, p99 and max of arrival - send, in milliseconds."""
    delays = sorted((got - sent) * 1000 for sent, got in received)
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    return statistics.median(delays), p99, delays[-1]


class TestFlood:
    @pytest.mark.spec("RTMP 7.3.2 [de-facto]", "RTMP 7.1.5")
    def test_change_flood_next_to_a_playing_stream(self, hostile: HostileEnv) -> None:
        """The media relay's latency with and without a change flood on the same server.

        The figures are logged (refs/hostile.md records them), not asserted: timing on a
        shared 2-core machine says nothing about correctness; losing media would.
        """
        url = hostile.url
        with rtmp.Client() as publisher, rtmp.Client() as player:
            publisher.connect(url)
            publisher.publish("so-flood")
            player.connect(url)
            player.play("so-flood")
            sent_at: Dict[int, float] = {}
            received: List[Tuple[float, float]] = []
            stop = threading.Event()

            def play() -> None:
                while not stop.is_set() or len(received) < len(sent_at):
                    try:
                        msg = player.read_message(timeout=2)
                    except (rtmp.TimeoutError, rtmp.StreamEnded):
                        if stop.is_set():
                            return
                        continue
                    if msg.type == MessageType.VIDEO and msg.timestamp in sent_at:
                        received.append((sent_at[msg.timestamp], time.monotonic()))

            def publish(start_ts: int, frames: int) -> int:
                ts = start_ts
                for n in range(frames):
                    ts += 40
                    sent_at[ts] = time.monotonic()
                    data = b"\x17\x01\x00\x00\x00" if n % 25 == 0 else b"\x27\x01\x00\x00\x00"
                    publisher.write_message(Message(MessageType.VIDEO, data + bytes(2000), ts,
                                                    publisher.stream_id or 1))
                    time.sleep(0.04)
                return ts

            reader = threading.Thread(target=play)
            reader.start()
            publisher.write_message(Message(MessageType.VIDEO, b"\x17\x00\x00\x00\x00\x01", 0,
                                            publisher.stream_id or 1))
            ts = publish(0, 50)  # 2 s without the flood
            quiet = list(received)
            flooders = [RawPeer(hostile.server, app=APP) for _ in range(3)]
            flood_stop = threading.Event()
            counts: List[int] = []

            def flood(peer: RawPeer, index: int) -> None:
                peer.use("flood")
                n = 0
                while not flood_stop.is_set():
                    peer.send("flood", *(SOEvent.request_change(f"k{index}-{i}", float(n))
                                         for i in range(20)))
                    while T.SUCCESS not in event_types(peer.recv(10)):
                        pass  # the others' changes, read as they come
                    n += 1
                counts.append(n * 20)

            threads = [threading.Thread(target=flood, args=(p, i)) for i, p in enumerate(flooders)]
            for thread in threads:
                thread.start()
            before = len(received)
            publish(ts, 50)  # 2 s with the flood
            flood_stop.set()
            for thread in threads:
                thread.join(30)
            stop.set()
            reader.join(30)
            flooded = received[before:]
            for peer in flooders:
                peer.close()
        assert len(received) == 100, "media was lost"
        q50, q99, qmax = _delays(quiet)
        f50, f99, fmax = _delays(flooded)
        logger.warning(
            "media delay without flood p50 %.1f ms p99 %.1f ms max %.1f ms; with %d changes "
            "from 3 flooders in 2 s: p50 %.1f ms p99 %.1f ms max %.1f ms",
            q50, q99, qmax, sum(counts), f50, f99, fmax)
        print(f"\nmedia delay quiet p50={q50:.1f} p99={q99:.1f} max={qmax:.1f} ms; "
              f"flood ({sum(counts)} changes) p50={f50:.1f} p99={f99:.1f} max={fmax:.1f} ms")
        hostile.assert_healthy()
