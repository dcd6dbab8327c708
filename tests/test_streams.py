"""rtmp.streams: the live stream hub (fan-out, drop policy, late joiners, frame kinds).

The stream hub is tested against an in-memory sink (it only needs ``write_prechunked``,
``write_message`` and ``out_chunk_size``); nothing here opens a socket.  The server that
drives the hub is tested in tests/test_server.py.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable, List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtmp.chunk import RAW_BYTES, ChunkDecoder, encode_type0
from rtmp.message import Message, MessageType
from rtmp.streams import (
    FrameKind,
    LivePlayer,
    StreamBusyError,
    MAX_DEFERRED_PLAYERS,
    StreamHub,
    classify,
    defer_writes,
    end_deferred_writes,
    flush_deferred_writes,
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
        self.batches = 0
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()

    def write_fanout(self, items: Sequence[Tuple[Optional[bytes], Message, int]]) -> None:
        self.gate.wait(10)
        with self.lock:
            self.batches += 1
            for data, message, chunk_size in items:
                assert data is None or chunk_size == self.out_chunk_size
                self.written.append((data, message))

    def messages(self) -> List[Message]:
        with self.lock:
            return [m for _, m in self.written]


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


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

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_enhanced_video_mod_ex(self) -> None:
        """ERTMP ModEx blocks (packet type 7) come before the real VideoPacketType."""
        mod_ex = bytes([0x02]) + b"\x00\x00\x10"  # size 3, then 3 bytes of modifier
        start = bytes([0x80 | 0x10 | 0x07]) + mod_ex + bytes([0x00]) + b"hvc1\x01\x02"
        key = bytes([0x80 | 0x10 | 0x07]) + mod_ex + bytes([0x01]) + b"hvc1" + bytes(3) + b"K"
        end = bytes([0x80 | 0x10 | 0x07]) + mod_ex + bytes([0x02]) + b"hvc1"
        assert classify(video(start, 0)) == FrameKind.CONFIG
        assert classify(video(key, 0)) == FrameKind.KEYFRAME
        assert classify(video(end, 0)) == FrameKind.INTERFRAME  # no picture
        broken = bytes([0x80 | 0x10 | 0x07, 0x40])  # a ModEx block cut short
        assert classify(video(broken, 0)) == FrameKind.INTERFRAME  # never starts a GOP

    @pytest.mark.spec("FLV E.4.3.1", "ERTMP Enhanced Video")
    def test_command_frames_are_not_pictures(self) -> None:
        """FrameType 5: a video info/command frame; its second byte is no AVCPacketType."""
        assert classify(video(bytes([0x57, 0x00]), 0)) == FrameKind.DATA  # start of seek
        assert classify(video(bytes([0x57, 0x01]), 0)) == FrameKind.DATA
        assert classify(video(bytes([0x80 | 0x50 | 0x01, 0x00]), 0)) == FrameKind.DATA

    @pytest.mark.spec("ERTMP Enhanced Audio")
    def test_enhanced_audio_mod_ex(self) -> None:
        mod_ex = bytes([0x02, 0x00, 0x00, 0x05])  # size 3: TimestampOffsetNano (5 ns) needs 3
        assert classify(audio(bytes([0x97]) + mod_ex + bytes([0x00]) + b"Opus", 0)) \
            == FrameKind.CONFIG
        assert classify(audio(bytes([0x97]) + mod_ex + bytes([0x01]) + b"Opus", 0)) \
            == FrameKind.AUDIO
        assert classify(audio(bytes([0x97, 0x40]), 0)) == FrameKind.AUDIO  # cut short

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

    @pytest.mark.spec("RTMP 7.1.6")
    def test_only_media_and_data_are_published(self) -> None:
        hub = StreamHub()
        stream = hub.publish("live", "s", owner="pub")
        for kind in (MessageType.SET_CHUNK_SIZE, MessageType.USER_CONTROL,
                     MessageType.COMMAND_AMF0, MessageType.AGGREGATE):
            with pytest.raises(ValueError):
                stream.publish_message(Message(type=kind, data=b"\x00\x00\x00\x01"))
        assert stream.messages_in == 0

    @pytest.mark.spec("RTMP 5.3.1.2.1")
    def test_backlog_leaves_in_one_write(self) -> None:
        """The writer takes everything queued at once: one write per batch, not per message."""
        sink = Sink()
        sink.gate.clear()
        player = LivePlayer(sink, 1)
        player.start()
        try:
            frames = [video(AVC_KEY, 0)] + [video(AVC_INTER, 40 * i) for i in range(1, 40)]
            for msg in frames:
                player.offer(encode_type0(msg, 4096), msg, classify(msg), 4096)
            sink.gate.set()
            assert player.drain(5.0)
            assert [m.timestamp for m in sink.messages()] == [m.timestamp for m in frames]
            assert sink.batches <= 2  # the first frame may have left before the rest came
            assert player.stats.sent_batches == sink.batches
        finally:
            sink.gate.set()
            player.close()

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_deferred_writes_go_out_on_the_publishers_thread(self) -> None:
        """defer_writes(): a player whose writer is idle is not woken per message; the
        flush sends its queue from the publishing thread (one write per flush).  When the
        sink cannot try (its write lock busy) the batch goes back, first, to the writer;
        when part did not fit, the writer is woken to send the rest; order holds."""
        class NowaitSink(Sink):
            def __init__(self) -> None:
                super().__init__()
                self.answers: List[Optional[int]] = []
                self.nowait_threads: List[str] = []
                self.raw: List[Optional[bytes]] = []

            def write_fanout(self, items: Sequence[Tuple[Optional[bytes], Message, int]]) -> None:
                self.raw += [data for data, _, size in items if size == RAW_BYTES]
                super().write_fanout([item for item in items if item[2] != RAW_BYTES])

            def write_fanout_nowait(
                    self, items: Sequence[Tuple[Optional[bytes], Message, int]]) -> Optional[int]:
                answer = self.answers.pop(0) if self.answers else 0
                if answer is None:
                    return None  # did not try: nothing written
                self.nowait_threads.append(threading.current_thread().name)
                with self.lock:
                    self.batches += 1
                    self.written.extend((data, message) for data, message, _ in items)
                return answer

        sink = NowaitSink()
        player = LivePlayer(sink, 1, name="deferred")
        player.start()
        assert wait_for(lambda: player._writer_waiting)
        frames = [video(AVC_KEY, 0)] + [video(AVC_INTER, 40 * i) for i in range(1, 12)]
        sink.answers = [0, None, 5]
        defer_writes()
        try:
            for batch in (frames[:4], frames[4:8], frames[8:]):
                for msg in batch:
                    player.offer(encode_type0(msg, 4096), msg, classify(msg), 4096)
                assert len(sink.messages()) < len(frames)  # nothing woke the writer
                flush_deferred_writes()
                assert player.drain(5.0)
        finally:
            end_deferred_writes()
        try:
            written = [m.timestamp for m in sink.messages()]
            # The second batch went back to the writer; the third left 5 bytes to send:
            # the writer was woken with an empty item to send them.
            assert written == [m.timestamp for m in frames] and sink.raw == [b""]
            assert sink.nowait_threads == [threading.current_thread().name] * 2
            assert player.stats.sent_messages == len(frames)
        finally:
            player.close()

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_a_remainder_left_by_a_deferred_write_is_a_whole_queue_item(self) -> None:
        """The empty item that makes the writer send what a deferred write left over
        carries a queue time like every item: the lag rule reads the head's time when
        the next frame is offered (it raised IndexError when the item lacked one)."""
        class NowaitSink(Sink):
            def write_fanout_nowait(
                    self, items: Sequence[Tuple[Optional[bytes], Message, int]]) -> Optional[int]:
                with self.lock:
                    self.written.extend((data, message) for data, message, _ in items)
                return 5  # 5 bytes kept for the next write

            def write_fanout(self, items: Sequence[Tuple[Optional[bytes], Message, int]]) -> None:
                super().write_fanout([item for item in items if item[2] != RAW_BYTES])

        sink = NowaitSink()
        player = LivePlayer(sink, 1, name="remainder")
        player.start()
        assert wait_for(lambda: player._writer_waiting)
        frames = [video(AVC_KEY, 0), video(AVC_INTER, 40), video(AVC_INTER, 80)]
        notify = player._cond.notify
        player._cond.notify = lambda n=1: None  # type: ignore[method-assign] # writer asleep
        defer_writes()
        try:
            player.offer(encode_type0(frames[0], 4096), frames[0], classify(frames[0]), 4096)
            flush_deferred_writes()  # leaves the empty item queued: the writer sleeps on
            for msg in frames[1:]:
                assert player.offer(encode_type0(msg, 4096), msg, classify(msg), 4096)
        finally:
            end_deferred_writes()
            player._cond.notify = notify  # type: ignore[method-assign]
        try:
            with player._cond:
                player._cond.notify_all()
            assert player.drain(5.0)
            assert [m.timestamp for m in sink.messages()] == [0, 40, 80]
        finally:
            player.close()

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_deferred_writes_reach_one_player_the_others_writers_are_woken(self) -> None:
        """Under defer_writes() the publishing thread writes to MAX_DEFERRED_PLAYERS players
        itself; the other players' writers are woken at once, as without it."""
        class NowaitSink(Sink):
            def __init__(self) -> None:
                super().__init__()
                self.nowait_batches = 0

            def write_fanout_nowait(
                    self, items: Sequence[Tuple[Optional[bytes], Message, int]]) -> Optional[int]:
                self.nowait_batches += 1
                with self.lock:
                    self.written.extend((data, message) for data, message, _ in items)
                return 0

        hub = StreamHub()
        sinks = [NowaitSink() for _ in range(3)]
        players = [LivePlayer(sink, 1, name=f"p{i}") for i, sink in enumerate(sinks)]
        stream = hub.publish("live", "s", owner="pub")
        for player in players:
            hub.subscribe("live", "s", player)
            player.start()
        assert wait_for(lambda: all(p._writer_waiting for p in players))
        frames = [video(AVC_KEY, 0)] + [video(AVC_INTER, 40 * i) for i in range(1, 6)]
        defer_writes()
        try:
            for msg in frames:
                stream.publish_message(msg)
            # The woken writers send without the publishing thread's flush.
            assert wait_for(lambda: all(len(s.messages()) == len(frames) for s in sinks[1:]))
            assert sinks[0].messages() == []
            flush_deferred_writes()
        finally:
            end_deferred_writes()
        try:
            assert [m.timestamp for m in sinks[0].messages()] == [m.timestamp for m in frames]
            assert [s.nowait_batches for s in sinks] == [1, 0, 0] and MAX_DEFERRED_PLAYERS == 1
        finally:
            for player in players:
                player.close()

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_lazy_start_writes_on_the_caller_then_starts_the_writer(self) -> None:
        sink = Sink()
        player = LivePlayer(sink, 1, name="lazy")
        statuses = [Message(type=MessageType.COMMAND_AMF0, data=bytes([i]), message_stream_id=1)
                    for i in range(3)]
        for status in statuses:
            player.send(status)
        try:
            player.start(lazy=True)
            # Written by this thread, in one batch, and no writer thread yet.
            assert sink.messages() == statuses and sink.batches == 1
            assert player._thread is None
            frame = video(AVC_KEY, 40)
            assert player.offer(encode_type0(frame, 4096), frame, FrameKind.KEYFRAME, 4096)
            assert player._thread is not None and player._thread.name == "rtmp-play-lazy"
            assert wait_for(lambda: len(sink.written) == 4)
            assert sink.messages()[3].data == AVC_KEY
        finally:
            player.close()
        assert player._thread is not None and not player._thread.is_alive()

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

    @pytest.mark.spec("RTMP 7.2.2.1", "FLV E.4.3.1")
    @pytest.mark.parametrize("waiting", [False, True], ids=["late-joiner", "waiting-player"])
    def test_no_inter_frame_before_a_keyframe(self, waiting: bool) -> None:
        """With no GOP cached (too long for max_gop_bytes, or the publisher started
        mid-GOP) a player waits for the next keyframe (nginx-rtmp's wait_key)."""
        big_key = bytes([0x17, 0x01, 0, 0, 0]) + b"K" * 2048
        hub = StreamHub(max_gop_bytes=1000)
        sink = Sink()
        player = LivePlayer(sink, 1)
        player.start()
        try:
            if waiting:  # subscribed before the publisher, which starts mid-GOP
                hub.subscribe("live", "s", player)
                stream = hub.publish("live", "s", owner="pub")
                stream.publish_message(video(AVC_HEADER, 0))
            else:
                stream = hub.publish("live", "s", owner="pub")
                stream.publish_message(video(AVC_HEADER, 0))
                stream.publish_message(video(big_key, 0))  # over max_gop_bytes: not cached
                assert stream.gop_length == 0
                hub.subscribe("live", "s", player)
            for ts in (40, 80):
                stream.publish_message(video(AVC_INTER, ts))
            stream.publish_message(audio(AAC_FRAME, 90))  # audio needs no keyframe
            stream.publish_message(video(AVC_KEY, 1000))
            stream.publish_message(video(AVC_INTER, 1040))
            assert wait_for(lambda: len(sink.written) >= 4)
            videos = [m.data for m in sink.messages() if m.type == MessageType.VIDEO]
            assert videos == [AVC_HEADER, AVC_KEY, AVC_INTER]
            assert player.stats.dropped_messages == 2
        finally:
            player.close()

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
            for msg in (video(AVC_KEY, 0), audio(AAC_FRAME, 10),
                        video(AVC_INTER, 40), video(AVC_INTER, 80)):
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
            def write_fanout(self, items: Sequence[Tuple[Optional[bytes], Message, int]]) -> None:
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


_frame_kinds = st.sampled_from(["key", "inter", "inter", "inter", "audio", "config"])


class TestDropPolicyProperties:
    """Whatever the frame sequence and budget, a slow player gets a decodable stream."""

    @pytest.mark.spec("RTMP 7.2.2.1", "FLV E.4.3.1")
    @settings(max_examples=60, deadline=None)
    @given(
        plan=st.lists(st.tuples(_frame_kinds, st.integers(1, 3000)), min_size=1, max_size=80),
        budget=st.integers(500, 20_000),
    )
    def test_delivered_stream_is_decodable(self, plan: List[Tuple[str, int]], budget: int) -> None:
        sink = Sink()
        sink.gate.clear()  # stalled while everything is offered
        player = LivePlayer(sink, 1, max_queue_bytes=budget)
        player.start()
        offered: List[Message] = []
        try:
            for i, (plan_kind, size) in enumerate(plan):
                if plan_kind == "key":
                    msg = video(bytes([0x17, 1, 0, 0, 0]) + b"k" * size, i)
                elif plan_kind == "inter":
                    msg = video(bytes([0x27, 1, 0, 0, 0]) + b"p" * size, i)
                elif plan_kind == "audio":
                    msg = audio(bytes([0xAF, 1]) + b"a" * size, i)
                else:
                    msg = video(AVC_HEADER, i)
                offered.append(msg)
                player.offer(encode_type0(msg, 4096), msg, classify(msg))
            sink.gate.set()
            assert player.drain(10)
        finally:
            sink.gate.set()
            player.close()
        delivered = sink.messages()
        # In order, whole messages, a subsequence of what was offered.
        assert [m.timestamp for m in delivered] == sorted(m.timestamp for m in delivered)
        by_time = {m.timestamp: m for m in delivered}
        assert all(by_time[m.timestamp].data == m.data for m in offered if m.timestamp in by_time)
        # Sequence headers are dropped only for a player 4x over its budget (stalled).
        if player.stats.max_queued_bytes + 64 <= 4 * budget:
            assert all(m.timestamp in by_time for m in offered if classify(m) == FrameKind.CONFIG)
        # No inter-frame is delivered after a missing video frame until a keyframe came.
        broken = False
        for msg in offered:
            kind = classify(msg)
            if kind not in (FrameKind.KEYFRAME, FrameKind.INTERFRAME):
                continue
            if msg.timestamp not in by_time:
                broken = True
            elif kind == FrameKind.KEYFRAME:
                broken = False
            else:
                assert not broken, f"inter-frame {msg.timestamp} delivered after a gap"
        assert len(delivered) + player.stats.dropped_messages == len(offered)
