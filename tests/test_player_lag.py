"""Issue 21: a live player loses frames only when it is really slow, not when a burst comes.

:mod:`rtmp.streams` judges a player's queue by how long its oldest item has waited
(``max_queue_delay``), not by its size: a publisher that sends faster than real time fills
every queue at once, and a player that reads at line rate must still get the whole stream.
The unit tests drive a :class:`rtmp.streams.LivePlayer` with a held sink; the last one runs
a server in-process with a bursting publisher, three players that read freely and one that
reads at half the stream's rate through a small receive buffer.  Nothing here asserts a
duration: sleeps only make a queue old enough for the rule to apply.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest

import rtmp
from rtmp import Client, ClientConfig, Server, ServerConfig, commands, user_control
from rtmp.chunk import ChunkDecoder, encode_type0
from rtmp.message import Message, MessageType
from rtmp.streams import FrameKind, LivePlayer, classify
from tests.hostile.harness import RawPeer
from tests.test_streams import AAC_HEADER, AVC_HEADER, Sink, audio, video, wait_for

logger = logging.getLogger(__name__)

_MEDIA = (MessageType.AUDIO, MessageType.VIDEO)


def _frame(kind: str, index: int, size: int) -> bytes:
    """FLV E.4.3.1 / E.4.2.1 payloads marked with their index (unique, so a player can
    tell exactly which it got)."""
    mark = struct.pack(">I", index)
    if kind == "key":
        head = bytes([0x17, 1, 0, 0, 0])
    elif kind == "inter":
        head = bytes([0x27, 1, 0, 0, 0])
    else:
        head = bytes([0xAF, 1])
    return head + mark + bytes(max(0, size - len(head) - len(mark)))


def _offer(player: LivePlayer, message: Message) -> bool:
    return player.offer(encode_type0(message, 4096), message, classify(message))


class TestSojournRule:
    """RTMP 7.2.2.1 delivery: the queue's age decides, the byte cap only bounds memory."""

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_a_burst_far_over_the_old_budget_is_kept_whole(self) -> None:
        """6 MB offered at once to a player whose writer is held: three times the former
        2 MiB budget, nothing dropped (the player has not been slow for long)."""
        sink = Sink()
        sink.gate.clear()
        player = LivePlayer(sink, 1, max_queue_delay=60.0)
        player.start()
        sent: List[Message] = []
        try:
            for i in range(300):
                kind = "key" if i % 30 == 0 else "inter"
                sent.append(video(_frame(kind, i, 20_000), i * 33))
                assert _offer(player, sent[-1])
            assert player.stats.dropped_messages == 0
            sink.gate.set()
            assert player.drain(10.0)
            assert [m.data for m in sink.messages()] == [m.data for m in sent]
        finally:
            sink.gate.set()
            player.close()

    @pytest.mark.spec("RTMP 7.2.2.1", "FLV E.4.3.1")
    def test_a_player_whose_queue_waited_too_long_drops_to_the_next_keyframe(self) -> None:
        sink = Sink()
        sink.gate.clear()  # the writer holds its first item: the rest waits in the queue
        player = LivePlayer(sink, 1, max_queue_delay=0.2)
        player.start()
        try:
            header = video(AVC_HEADER, 0)
            player.offer(encode_type0(header, 4096), header, FrameKind.CONFIG)
            assert wait_for(lambda: player.queued_bytes == 0)  # the writer holds it
            first = [video(_frame("key", 0, 500), 0)] + [
                video(_frame("inter", i, 200), 40 * i) for i in range(1, 5)]
            assert all(_offer(player, m) for m in first)
            time.sleep(0.4)  # the oldest item now waited longer than max_queue_delay
            late_inter = video(_frame("inter", 5, 200), 200)
            late_audio = audio(_frame("audio", 6, 50), 210)
            assert not _offer(player, late_inter)
            assert not _offer(player, late_audio)
            assert not _offer(player, video(_frame("inter", 7, 200), 240))
            config = audio(AAC_HEADER, 250)  # headers are never dropped, slow or not
            assert player.offer(encode_type0(config, 4096), config, FrameKind.CONFIG)
            key = video(_frame("key", 8, 500), 400)
            assert _offer(player, key)  # a keyframe: the stale GOP is flushed, lag restarts
            after = video(_frame("inter", 9, 200), 440)
            assert _offer(player, after)
            assert player.stats.dropped_messages >= 3
            sink.gate.set()
            assert player.drain(5.0)
            got = sink.messages()
            datas = [m.data for m in got]
            assert datas[-3:] == [AAC_HEADER, key.data, after.data]
            assert AVC_HEADER in datas
            assert late_inter.data not in datas and late_audio.data not in datas
        finally:
            sink.gate.set()
            player.close()

    def test_max_queue_delay_must_be_positive(self) -> None:
        with pytest.raises(ValueError):
            LivePlayer(Sink(), 1, max_queue_delay=0)
        with pytest.raises(ValueError):
            ServerConfig(max_queue_delay=-1.0)
        assert ServerConfig(max_queue_delay=0.5).max_queue_delay == 0.5


# -- a server, a bursting publisher, free players and a throttled one --------------------

#: 25 frames/s, a GOP of 10 frames (0.4 s), audio every 23 ms: about 2.5 MB/s.  That
#: much, because a socket's send buffer grows to megabytes on loopback (Linux tunes it up
#: to ``tcp_wmem``'s 4 MiB even for a peer with a small receive window): a throttled
#: player's backlog must outgrow what the kernel holds before the server's queue ages.
FPS = 25
GOP = 10
KEY_BYTES, INTER_BYTES, AUDIO_BYTES = 300_000, 80_000, 400
BURST_FRAMES = 2 * FPS  # the first 2 s of media go out at once
PACED_FRAMES = 4 * FPS  # then 4 s in real time
MAX_QUEUE_DELAY = 1.5


def _plan() -> List[Tuple[int, int, bytes]]:
    """(type, timestamp ms, payload) of every frame, in sending order."""
    out: List[Tuple[int, int, bytes]] = []
    audio_next = 0.0
    index = 0
    for n in range(BURST_FRAMES + PACED_FRAMES):
        ts = n * 1000 // FPS
        while audio_next <= ts:
            out.append((MessageType.AUDIO, int(audio_next), _frame("audio", index, AUDIO_BYTES)))
            index += 1
            audio_next += 1024 / 44.1
        key = n % GOP == 0
        out.append((MessageType.VIDEO, ts, _frame("key" if key else "inter", index,
                                                   KEY_BYTES if key else INTER_BYTES)))
        index += 1
    return out


def _stream_rate(plan: List[Tuple[int, int, bytes]]) -> float:
    """Payload bytes per second of media."""
    return sum(len(d) for _, _, d in plan) / ((plan[-1][1] - plan[0][1]) / 1000.0)


class _ThrottledPlayer:
    """A raw player (RTMP 7.2.2.1) with a small SO_RCVBUF that reads ``rate`` bytes a
    second until ``fast`` is set, then as fast as it can, until Stream EOF (RTMP 7.1.7)."""

    def __init__(self, address: Tuple[str, int], name: str, rate: float) -> None:
        self.peer = RawPeer(address, rcvbuf=8192)
        self.peer.connect()
        msid = self.peer.create_stream()
        self.peer.send_message(commands.play(name, message_stream_id=msid))
        self.peer.expect_command("onStatus")
        self.rate = rate
        self.fast = threading.Event()
        self.media: List[Tuple[int, bytes]] = [
            (m.type, m.data) for m in self.peer.received if m.type in _MEDIA]
        self.ended = False
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, name="test-throttled-player")

    def _run(self) -> None:
        try:
            self._read()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _read(self) -> None:
        sock = self.peer.sock
        decoder: ChunkDecoder = self.peer.decoder
        start = time.monotonic()
        deadline = start + 60.0
        consumed = 0
        while not self.ended and time.monotonic() < deadline:
            limit = 65536
            if not self.fast.is_set():
                limit = int(self.rate * (time.monotonic() - start)) - consumed
                if limit < 1024:
                    time.sleep(0.02)
                    continue
                limit = min(limit, 16384)
            sock.settimeout(1.0)
            try:
                data = sock.recv(limit)
            except socket.timeout:
                continue
            if not data:
                raise ConnectionError("the server closed the throttled player")
            consumed += len(data)
            decoder.receive_data(data)
            for message in decoder.messages():
                if message.type in _MEDIA:
                    self.media.append((message.type, message.data))
                elif message.type == MessageType.USER_CONTROL:
                    event = user_control.decode(message.data)
                    if event.event == user_control.UserControlEvent.STREAM_EOF:
                        self.ended = True


def _read_all(client: Client, out: List[Tuple[int, bytes]], errors: List[str]) -> None:
    """A free player: every audio and video payload until the stream ends."""
    deadline = time.monotonic() + 60.0
    try:
        while time.monotonic() < deadline:
            try:
                message = client.read_message(timeout=5.0)
            except rtmp.StreamEnded:
                return
            if message.type in _MEDIA:
                out.append((message.type, message.data))
        errors.append("no end of stream within 60 s")
    except rtmp.RTMPError as exc:
        errors.append(f"{type(exc).__name__}: {exc}")


@pytest.mark.timeout(120)
@pytest.mark.spec("RTMP 7.2.2.1", "RTMP 7.2.2.6", "FLV E.4.3.1")
def test_a_burst_reaches_free_players_whole_and_only_the_slow_one_drops() -> None:
    plan = _plan()
    headers = [(int(MessageType.VIDEO), AVC_HEADER), (int(MessageType.AUDIO), AAC_HEADER)]
    sent = headers + [(int(t), d) for t, _, d in plan]
    name = "burst"
    config = ServerConfig(addr="127.0.0.1:0", max_queue_delay=MAX_QUEUE_DELAY)
    with Server(config) as server:
        url = f"rtmp://{server.address[0]}:{server.address[1]}/live"
        free = [Client(ClientConfig(connect_timeout=5, read_timeout=5)) for _ in range(3)]
        got: List[List[Tuple[int, bytes]]] = [[] for _ in free]
        errors: List[str] = []
        readers = [threading.Thread(target=_read_all, args=(c, g, errors),
                                    name=f"test-free-player-{i}")
                   for i, (c, g) in enumerate(zip(free, got))]
        throttled: Optional[_ThrottledPlayer] = None
        publisher = Client(ClientConfig(connect_timeout=5, read_timeout=5))
        try:
            for client in free:
                client.connect(url)
                client.play(name)
            throttled = _ThrottledPlayer(server.address, name, _stream_rate(plan) / 2)
            for reader in readers:
                reader.start()
            throttled.thread.start()
            publisher.connect(url)
            publisher.publish(name)
            publisher.send_video(AVC_HEADER, 0)
            publisher.send_audio(AAC_HEADER, 0)
            burst_end = BURST_FRAMES * 1000 // FPS
            paced_from: Optional[float] = None
            for kind, ts, data in plan:
                if ts >= burst_end:  # after the burst: real time
                    if paced_from is None:
                        paced_from = time.monotonic()
                    delay = paced_from + (ts - burst_end) / 1000.0 - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if kind == MessageType.VIDEO:
                    publisher.send_video(data, ts)
                else:
                    publisher.send_audio(data, ts)
            publisher.close()  # FCUnpublish + deleteStream: the players get Stream EOF
            assert wait_for(lambda: not server.hub.is_live("live", name), 10.0)
            throttled.fast.set()  # every drop decision is made: read the rest at once
            for reader in readers:
                reader.join(60)
            throttled.thread.join(60)
            assert not errors, errors
            assert throttled.error is None, throttled.error
            assert throttled.ended, "the throttled player never got Stream EOF"
            # Every player that reads freely got every audio and video message, in order.
            for index, received in enumerate(got):
                assert len(received) == len(sent), (index, len(received), len(sent))
                assert received == sent, f"free player {index} got altered or reordered media"
            # The throttled one lost frames, and only whole GOPs of video.
            logger.info("throttled player: %d of %d media messages; server-side drops: %s",
                        len(throttled.media), len(sent),
                        [p.stats.dropped_messages for p in server.hub.get(
                            "live", name).snapshot_players()]
                        if server.hub.get("live", name) else "stream gone")
            _assert_whole_gops(sent, throttled.media)
        finally:
            publisher.close()
            for client in free:
                client.close()
            if throttled is not None:
                throttled.fast.set()
                throttled.ended = True
                throttled.peer.close()


def _assert_whole_gops(sent: List[Tuple[int, bytes]], received: List[Tuple[int, bytes]]) -> None:
    """``received`` is an in-order part of ``sent`` with something missing, and after a
    missing video frame the next video frame received is a keyframe."""
    position: Dict[bytes, int] = {data: i for i, (_, data) in enumerate(sent)}
    indices = [position[data] for _, data in received]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert len(received) < len(sent), "the throttled player dropped nothing"
    got = set(indices)
    broken = False
    seen_key_after_gap = 0
    for i, (kind, data) in enumerate(sent):
        if kind != MessageType.VIDEO:
            continue
        frame_kind = classify(Message(type=kind, data=data))
        if i not in got:
            broken = True
        elif frame_kind == FrameKind.KEYFRAME:
            seen_key_after_gap += broken
            broken = False
        elif frame_kind == FrameKind.INTERFRAME:
            assert not broken, f"inter-frame {i} delivered after a missing video frame"
    assert seen_key_after_gap > 0, "the throttled player never resumed at a keyframe"
