"""rtmp.streams and rtmp.server: fan-out, drop policy, late joiners, and the command set.

The stream hub is tested against an in-memory sink (it only needs ``write_prechunked``,
``write_message`` and ``out_chunk_size``).  The server is tested over real loopback
sockets with our own :class:`rtmp.transport.Transport` speaking the client side.
Interop with ffmpeg, rtmpdump and GStreamer lives in ``tests/interop/test_server_*.py``.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import List, Optional, Tuple

import pytest

from rtmp.chunk import ChunkDecoder, encode_type0
from rtmp.message import Message, MessageType
from rtmp.streams import (
    FrameKind,
    LivePlayer,
    StreamBusyError,
    StreamHub,
    classify,
)

# FLV E.4.3.1 / E.4.2.1 sample payloads: AVC keyframe/inter-frame/sequence header, AAC.
AVC_HEADER = bytes([0x17, 0x00, 0, 0, 0]) + b"\x01\x64\x00\x1f\xff"
AVC_KEY = bytes([0x17, 0x01, 0, 0, 0]) + b"K" * 200
AVC_INTER = bytes([0x27, 0x01, 0, 0, 0]) + b"P" * 100
AAC_HEADER = bytes([0xAF, 0x00, 0x12, 0x10])
AAC_FRAME = bytes([0xAF, 0x01]) + b"A" * 20
# ERTMP Enhanced Video: IsExHeader | frame type 1 | SequenceStart, FourCC hvc1.
HEVC_EX_HEADER = bytes([0x80 | 0x10 | 0x00]) + b"hvc1" + b"\x01\x02"
HEVC_EX_KEY = bytes([0x80 | 0x10 | 0x01]) + b"hvc1" + b"K" * 30
HEVC_EX_INTER = bytes([0x80 | 0x20 | 0x03]) + b"hvc1" + b"P" * 30


def video(data: bytes, ts: int, msid: int = 1) -> Message:
    return Message(type=MessageType.VIDEO, data=data, timestamp=ts, message_stream_id=msid)


def audio(data: bytes, ts: int, msid: int = 1) -> Message:
    return Message(type=MessageType.AUDIO, data=data, timestamp=ts, message_stream_id=msid)


class Sink:
    """An in-memory connection end: records what a player writes; can be stalled."""

    def __init__(self, chunk_size: int = 4096) -> None:
        self.out_chunk_size = chunk_size
        self.written: List[Tuple[Optional[bytes], Message]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()

    def write_prechunked(self, data: bytes, message: Message) -> None:
        self.gate.wait(10)
        with self.lock:
            self.written.append((data, message))

    def write_message(self, message: Message) -> None:
        self.gate.wait(10)
        with self.lock:
            self.written.append((None, message))

    def messages(self) -> List[Message]:
        with self.lock:
            return [m for _, m in self.written]


def wait_for(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class TestClassify:
    """FLV E.4.2 / E.4.3 and ERTMP: which messages are headers, keyframes, inter-frames."""

    @pytest.mark.spec("FLV E.4.3.1")
    def test_avc(self) -> None:
        assert classify(video(AVC_HEADER, 0)) == FrameKind.CONFIG
        assert classify(video(AVC_KEY, 0)) == FrameKind.KEYFRAME
        assert classify(video(AVC_INTER, 0)) == FrameKind.INTERFRAME
        # End of sequence carries no picture: it must not reset the GOP cache.
        assert classify(video(bytes([0x17, 0x02, 0, 0, 0]), 0)) == FrameKind.INTERFRAME

    @pytest.mark.spec("FLV E.4.2.1")
    def test_aac(self) -> None:
        assert classify(audio(AAC_HEADER, 0)) == FrameKind.CONFIG
        assert classify(audio(AAC_FRAME, 0)) == FrameKind.AUDIO
        assert classify(audio(bytes([0x2F, 0x00]), 0)) == FrameKind.AUDIO  # MP3: no header

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_enhanced_video(self) -> None:
        assert classify(video(HEVC_EX_HEADER, 0)) == FrameKind.CONFIG
        assert classify(video(HEVC_EX_KEY, 0)) == FrameKind.KEYFRAME
        assert classify(video(HEVC_EX_INTER, 0)) == FrameKind.INTERFRAME
        assert classify(video(bytes([0x80 | 0x10 | 0x02]) + b"hvc1", 0)) == FrameKind.INTERFRAME

    @pytest.mark.spec("ERTMP Enhanced Audio")
    def test_enhanced_audio(self) -> None:
        assert classify(audio(bytes([0x90]) + b"Opus", 0)) == FrameKind.CONFIG
        assert classify(audio(bytes([0x91]) + b"Opus", 0)) == FrameKind.AUDIO

    @pytest.mark.spec("RTMP 7.1.2")
    def test_data(self) -> None:
        assert classify(Message(type=MessageType.DATA_AMF0, data=b"\x02")) == FrameKind.DATA


class TestFanOut:
    """RTMP 7.2.2.1: one publisher, many players, the same chunked bytes for all."""

    @pytest.mark.spec("RTMP 5.3.1.2.1")
    def test_same_bytes_object_for_every_player(self) -> None:
        hub = StreamHub()
        stream = hub.publish("live", "s", owner="pub")
        sinks = [Sink() for _ in range(5)]
        players = [LivePlayer(s, 1, name=f"p{i}") for i, s in enumerate(sinks)]
        for player in players:
            player.start()
            hub.subscribe("live", "s", player)
        try:
            stream.publish_message(video(AVC_KEY, 40, msid=7))
            assert wait_for(lambda: all(len(s.written) == 1 for s in sinks))
            first = sinks[0].written[0][0]
            assert first is not None
            # One encoding shared by reference, and it is the player's msid's type 0 chunking.
            assert all(s.written[0][0] is first for s in sinks)
            expected = video(AVC_KEY, 40, msid=1)
            assert first == encode_type0(expected, 4096)
            assert sinks[0].written[0][1].message_stream_id == 1
        finally:
            for player in players:
                player.close()

    @pytest.mark.spec("RTMP 5.4.1")
    def test_one_encoding_per_chunk_size(self) -> None:
        hub = StreamHub()
        stream = hub.publish("live", "s", owner="pub")
        small, big = Sink(128), Sink(4096)
        players = [LivePlayer(small, 1), LivePlayer(big, 1)]
        for player in players:
            player.start()
            hub.subscribe("live", "s", player)
        try:
            msg = video(AVC_KEY, 0)
            stream.publish_message(msg)
            assert wait_for(lambda: small.written and big.written)
            decoder = ChunkDecoder(chunk_size=128)
            data = small.written[0][0]
            assert data is not None
            decoder.receive_data(data)
            got = decoder.next_message()
            assert got is not None and got.data == msg.data
            assert small.written[0][0] != big.written[0][0]
        finally:
            for player in players:
                player.close()

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_second_publisher_is_refused(self) -> None:
        hub = StreamHub()
        hub.publish("live", "s", owner="a")
        with pytest.raises(StreamBusyError):
            hub.publish("live", "s", owner="b")
        hub.publish("other", "s", owner="b")  # another app is another stream
        hub.publish("live", "t", owner="b")


class TestLateJoin:
    """RTMP 7.2.2.1: a late joiner gets metadata, sequence headers and the GOP first."""

    @pytest.mark.spec("RTMP 7.2.2.1", "FLV E.4.3.1")
    def test_late_joiner_gets_headers_and_gop(self) -> None:
        hub = StreamHub()
        stream = hub.publish("live", "s", owner="pub")
        meta = Message(type=MessageType.DATA_AMF0, data=b"\x02\x00\x0aonMetaData\x05",
                       message_stream_id=1)
        stream.set_metadata(meta)
        stream.publish_message(video(AVC_HEADER, 0))
        stream.publish_message(audio(AAC_HEADER, 0))
        stream.publish_message(video(AVC_KEY, 0))
        stream.publish_message(video(AVC_INTER, 40))
        stream.publish_message(video(AVC_KEY, 1000))  # a new GOP starts here
        stream.publish_message(audio(AAC_FRAME, 1010))
        stream.publish_message(video(AVC_INTER, 1040))
        sink = Sink()
        player = LivePlayer(sink, 3)
        player.start()
        hub.subscribe("live", "s", player)
        try:
            assert wait_for(lambda: len(sink.written) == 6)
            got = sink.messages()
            assert [m.data for m in got] == [
                meta.data, AVC_HEADER, AAC_HEADER, AVC_KEY, AAC_FRAME, AVC_INTER,
            ]
            # Metadata at 0, headers moved to the GOP's start time; the GOP keeps its timestamps.
            assert [m.timestamp for m in got] == [0, 1000, 1000, 1000, 1010, 1040]
            assert {m.message_stream_id for m in got} == {3}
            stream.publish_message(video(AVC_INTER, 1080))
            assert wait_for(lambda: len(sink.written) == 7)
        finally:
            player.close()

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_unpublish_forgets_the_cache(self) -> None:
        hub = StreamHub()
        stream = hub.publish("live", "s", owner="pub")
        stream.publish_message(video(AVC_HEADER, 0))
        stream.publish_message(video(AVC_KEY, 0))
        stopped: List[LivePlayer] = []
        waiting = LivePlayer(Sink(), 1)
        hub.subscribe("live", "s", waiting)
        hub.unpublish(stream, "pub", on_stop=stopped.append)
        assert stopped == [waiting]
        assert stream.video_config is None and stream.gop_length == 0
        started: List[LivePlayer] = []
        again = hub.publish("live", "s", owner="pub2", on_start=started.append)
        assert again is stream and started == [waiting]
        hub.unsubscribe(stream, waiting)
        hub.unpublish(stream, "pub2")
        assert hub.get("live", "s") is None  # idle streams are forgotten

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_gop_cache_is_bounded(self) -> None:
        hub = StreamHub(max_gop_bytes=1000)
        stream = hub.publish("live", "s", owner="pub")
        stream.publish_message(video(AVC_KEY, 0))
        for i in range(20):
            stream.publish_message(video(AVC_INTER, 40 * (i + 1)))
        assert stream.gop_length == 0  # over budget: not cached until the next keyframe
        stream.publish_message(video(AVC_KEY, 1000))
        assert stream.gop_length == 1


class TestDropPolicy:
    """A slow player loses whole frames, inter-frames first, and never blocks the publisher."""

    def _stalled(self, max_queue_bytes: int) -> Tuple[Sink, LivePlayer]:
        sink = Sink()
        sink.gate.clear()  # the writer blocks on its first message
        player = LivePlayer(sink, 1, max_queue_bytes=max_queue_bytes)
        player.start()
        return sink, player

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_inter_frames_dropped_until_next_keyframe(self) -> None:
        sink, player = self._stalled(max_queue_bytes=1500)
        try:
            frames = [video(AVC_KEY, 0)] + [video(AVC_INTER, 40 * i) for i in range(1, 30)]
            frames.append(video(AVC_KEY, 2000))
            frames += [video(AVC_INTER, 2000 + 40 * i) for i in range(1, 4)]
            start = time.monotonic()
            for msg in frames:
                player.offer(encode_type0(msg, 4096), msg, classify(msg))
            assert time.monotonic() - start < 1.0  # offer never waits for the stalled writer
            assert player.stats.dropped_messages > 0
            assert player.queued_bytes <= 1500 + len(AVC_KEY) + 50
            sink.gate.set()
            assert player.drain(5.0)
            got = sink.messages()
            # Whole frames only, in order, and after the first gap nothing until a keyframe.
            timestamps = [m.timestamp for m in got]
            assert timestamps == sorted(timestamps)
            kinds = [classify(m) for m in got]
            gap_at = next(i for i, m in enumerate(got) if m.timestamp != 40 * i)
            assert kinds[gap_at] == FrameKind.KEYFRAME
            assert got[gap_at].timestamp == 2000
            assert len(got) == player.stats.sent_messages
            assert len(got) + player.stats.dropped_messages == len(frames)
        finally:
            sink.gate.set()
            player.close()

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_keyframe_that_does_not_fit_flushes_backlog(self) -> None:
        sink, player = self._stalled(max_queue_bytes=600)
        try:
            config = video(AVC_HEADER, 0)
            player.offer(encode_type0(config, 4096), config, FrameKind.CONFIG)
            for i, msg in enumerate([video(AVC_KEY, 0), audio(AAC_FRAME, 10),
                                     video(AVC_INTER, 40), video(AVC_INTER, 80)]):
                player.offer(encode_type0(msg, 4096), msg, classify(msg))
            late_key = video(AVC_KEY, 1000)
            assert player.offer(encode_type0(late_key, 4096), late_key, FrameKind.KEYFRAME)
            sink.gate.set()
            assert player.drain(5.0)
            got = sink.messages()
            # The first item may already have been taken by the writer before the stall.
            assert got[-1].timestamp == 1000
            assert any(m.data == AVC_HEADER for m in got)  # headers survive the flush
        finally:
            sink.gate.set()
            player.close()

    @pytest.mark.spec("RTMP 7.2.2.4", "RTMP 7.2.2.5")
    def test_receive_audio_video_flags(self) -> None:
        sink = Sink()
        player = LivePlayer(sink, 1)
        player.receive_audio = False
        player.start()
        try:
            for msg in (audio(AAC_FRAME, 0), video(AVC_KEY, 0)):
                player.offer(encode_type0(msg, 4096), msg, classify(msg))
            assert player.drain(5.0)
            assert [m.type for m in sink.messages()] == [MessageType.VIDEO]
            assert player.stats.filtered_messages == 1
        finally:
            player.close()

    @pytest.mark.spec("RTMP 7.2.2.8")
    def test_live_pause_resumes_at_keyframe(self) -> None:
        sink = Sink()
        player = LivePlayer(sink, 1)
        player.start()
        try:
            player.pause(True)
            for msg in (video(AVC_KEY, 0), video(AVC_INTER, 40)):
                player.offer(encode_type0(msg, 4096), msg, classify(msg))
            player.pause(False)
            for msg in (video(AVC_INTER, 80), video(AVC_KEY, 120), video(AVC_INTER, 160)):
                player.offer(encode_type0(msg, 4096), msg, classify(msg))
            assert player.drain(5.0)
            assert [m.timestamp for m in sink.messages()] == [120, 160]
        finally:
            player.close()

    def test_writer_failure_stops_only_that_player(self) -> None:
        class Broken(Sink):
            def write_prechunked(self, data: bytes, message: Message) -> None:
                raise ConnectionResetError("gone")

        failures: List[BaseException] = []
        hub = StreamHub()
        stream = hub.publish("live", "s", owner="pub")
        good_sink = Sink()
        bad = LivePlayer(Broken(), 1, on_failure=failures.append)
        good = LivePlayer(good_sink, 1)
        for player in (bad, good):
            player.start()
            hub.subscribe("live", "s", player)
        try:
            for i in range(5):
                stream.publish_message(video(AVC_KEY, i * 40))
            assert wait_for(lambda: len(good_sink.written) == 5)
            assert wait_for(lambda: len(failures) == 1) and bad.closed
        finally:
            bad.close()
            good.close()


def test_hub_is_usable_without_server() -> None:
    """The hub has no socket code: it can be driven by anything with a sink."""
    import ast
    import pathlib

    import rtmp.streams

    tree = ast.parse(pathlib.Path(rtmp.streams.__file__).read_text())
    imported = {n.names[0].name for n in ast.walk(tree) if isinstance(n, ast.Import)}
    assert "socket" not in imported
    assert socket  # (the server tests below use real sockets)
