"""Recording to FLV and VOD playback (rtmp.vod): paths, Recorder, index, VodPlayer.

The player is driven through a tiny in-memory transport (a test double for the socket
layer that only collects messages) and an injected clock, so pacing, seek and pause are
checked deterministically; a few tests run the real playback thread on short files.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtmp import Client, Server, ServerConfig, StreamEnded, commands, flv, user_control
from rtmp.amf import decode_payload
from rtmp.message import Message, MessageType, build_aggregate
from rtmp.streams import config_keys
from rtmp.vod import (
    FlvIndex,
    Recorder,
    VodPlayer,
    find_recording,
    patch_metadata_duration,
    safe_record_path,
    script_payload,
)
from tests.test_server import next_media

MSID = 1

# FLV E.4.3.1 / E.4.3.2: AVC sequence header (keyframe | codec 7, packet type 0).
AVC_SEQUENCE_HEADER = b"\x17\x00\x00\x00\x00" + b"\x01\x64\x00\x1f\xff\xe1\x00\x04gd\x00\x1f"
# FLV E.4.2.1 / E.4.2.2: AAC sequence header (0xAF, packet type 0) with an AudioSpecificConfig.
AAC_SEQUENCE_HEADER = b"\xaf\x00\x12\x10"


def keyframe(n: int) -> bytes:
    """FLV E.4.3.1: AVC keyframe NALU packet (``17 01`` + composition time 0)."""
    return b"\x17\x01\x00\x00\x00" + n.to_bytes(4, "big") + b"K" * 20


def inter_frame(n: int) -> bytes:
    """FLV E.4.3.1: AVC inter frame (``27 01``)."""
    return b"\x27\x01\x00\x00\x00" + n.to_bytes(4, "big") + b"P" * 10


def aac_frame(n: int) -> bytes:
    """FLV E.4.2.2: raw AAC frame (``AF 01``)."""
    return b"\xaf\x01" + n.to_bytes(4, "big") + b"A" * 6


def media_messages(
    seconds: float = 3.0, fps: int = 25, gop_ms: int = 1000, base: int = 0, audio: bool = True,
    video: bool = True,
) -> List[Message]:
    """A publisher's message sequence: metadata, sequence headers, A/V interleaved by time."""
    out: List[Message] = [
        commands.metadata({"duration": 0.0, "width": 320.0, "height": 240.0}, MSID, timestamp=base)
    ]
    if video:
        out.append(Message(type=MessageType.VIDEO, data=AVC_SEQUENCE_HEADER, timestamp=base,
                           message_stream_id=MSID))
    if audio:
        out.append(Message(type=MessageType.AUDIO, data=AAC_SEQUENCE_HEADER, timestamp=base,
                           message_stream_id=MSID))
    events: List[Tuple[int, int, Message]] = []
    end = int(seconds * 1000)
    if video:
        step = 1000 // fps
        for i, t in enumerate(range(0, end, step)):
            data = keyframe(i) if t % gop_ms == 0 else inter_frame(i)
            events.append((t, 1, Message(type=MessageType.VIDEO, data=data, timestamp=base + t,
                                         message_stream_id=MSID)))
    if audio:
        for i, t in enumerate(range(0, end, 23)):
            events.append((t, 0, Message(type=MessageType.AUDIO, data=aac_frame(i),
                                         timestamp=base + t, message_stream_id=MSID)))
    events.sort(key=lambda e: (e[0], e[1]))
    out.extend(m for _, _, m in events)
    return out


def record(path: Path, messages: List[Message], append: bool = False) -> Path:
    with Recorder(path, append=append) as recorder:
        for msg in messages:
            recorder.write(msg)
    return path


def read_tags(path: Path) -> List["flv.Tag"]:
    with open(path, "rb") as f:
        return list(flv.Reader(f))


class CollectingTransport:
    """Test double for the socket layer: collects what the player writes."""

    def __init__(self) -> None:
        self.messages: List[Message] = []
        self.lock = threading.Lock()

    def write_message(self, msg: Message) -> None:
        with self.lock:
            self.messages.append(msg)

    def write_messages(self, msgs: Iterable[Message]) -> None:
        with self.lock:
            self.messages.extend(msgs)

    def media(self) -> List[Message]:
        with self.lock:
            return [m for m in self.messages if m.type in (MessageType.AUDIO, MessageType.VIDEO)]

    def take(self) -> List[Message]:
        with self.lock:
            out, self.messages = self.messages, []
            return out


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def vod_file(tmp_path: Path) -> Path:
    """3 s of 25 fps video (keyframe each second) with AAC audio every 23 ms."""
    return record(tmp_path / "vod.flv", media_messages(3.0))


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory: pytest.TempPathFactory) -> FlvIndex:
    """One indexed 4 s file for property tests (hypothesis reruns the test body)."""
    return FlvIndex(record(tmp_path_factory.mktemp("index") / "i.flv", media_messages(4.0)))


_PLAYERS: List[VodPlayer] = []


@pytest.fixture(autouse=True)
def _stop_players() -> Iterator[None]:
    yield
    while _PLAYERS:
        _PLAYERS.pop().stop()


def make_player(path: Path, **kwargs: object) -> Tuple[VodPlayer, CollectingTransport, FakeClock]:
    """A player on a collecting transport and a fake clock (stopped after the test)."""
    transport = CollectingTransport()
    clock = FakeClock()
    kwargs.setdefault("buffer_ms", 0)
    player = VodPlayer(transport, path, MSID, clock=clock, **kwargs)  # type: ignore[arg-type]
    _PLAYERS.append(player)
    return player, transport, clock


def pump(player: VodPlayer) -> Optional[float]:
    """Pump until the player waits (a pump sends at most MAX_BATCH messages)."""
    for _ in range(10_000):
        delay = player.pump()
        if delay != 0:
            return delay
    raise AssertionError("the player never waits")


def run_to_end(player: VodPlayer, clock: FakeClock, limit: int = 10_000) -> None:
    for _ in range(limit):
        delay = player.pump()
        if player.finished.is_set():
            return
        clock.advance(delay if delay else 0.0)
    raise AssertionError("playback did not finish")


# --------------------------------------------------------------------------------------


class TestSafeRecordPath:
    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_layout(self, tmp_path: Path) -> None:
        assert safe_record_path(tmp_path, "live", "cam1") == tmp_path / "live" / "cam1.flv"

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_query_string_is_dropped(self, tmp_path: Path) -> None:
        path = safe_record_path(tmp_path, "live", "cam1?token=s3cret&x=1")
        assert path == tmp_path / "live" / "cam1.flv"

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_flv_prefix_and_suffix(self, tmp_path: Path) -> None:
        assert safe_record_path(tmp_path, "vod", "flv:movie") == tmp_path / "vod" / "movie.flv"
        assert safe_record_path(tmp_path, "vod", "movie.flv") == tmp_path / "vod" / "movie.flv"

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_nested_names_stay_inside(self, tmp_path: Path) -> None:
        assert safe_record_path(tmp_path, "live/inst", "a/b") == tmp_path / "live" / "inst" / "a" / "b.flv"

    @pytest.mark.spec("RTMP 7.2.2.6")
    @pytest.mark.parametrize(
        "app,name",
        [
            ("live", ""),
            ("live", "?key=1"),
            ("live", ".."),
            ("live", "../escape"),
            ("live", "a/../../escape"),
            ("live", "/etc/passwd"),
            ("live", "a//b"),
            ("live", "./a"),
            ("live", "a\\..\\b"),
            ("live", "a\x00b"),
            ("live", "new\nline"),
            ("live", "C:evil"),
            ("live", "x" * 300),
            ("..", "name"),
            ("", "name"),
            ("/abs", "name"),
        ],
    )
    def test_escapes_are_refused(self, tmp_path: Path, app: str, name: str) -> None:
        with pytest.raises(ValueError):
            safe_record_path(tmp_path, app, name)

    @pytest.mark.spec("RTMP 7.2.2.6")
    @pytest.mark.parametrize("name", ["C:x", "c:", "Z:evil", "1:x", "ab:c", "\u00e9:x", ":x", "a:"])
    def test_drive_names_as_windows_reads_them(self, tmp_path: Path, name: str) -> None:
        """A component is refused exactly when Windows would read a drive in it."""
        import pathlib

        if pathlib.PureWindowsPath(name).drive:
            with pytest.raises(ValueError, match="drive"):
                safe_record_path(tmp_path, "live", name)
        else:
            assert safe_record_path(tmp_path, "live", name).name == name + ".flv"

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_symlink_out_of_record_dir_is_refused(self, tmp_path: Path) -> None:
        outside = tmp_path / "outside"
        outside.mkdir()
        root = tmp_path / "records"
        (root / "live").mkdir(parents=True)
        (root / "live" / "link").symlink_to(outside, target_is_directory=True)
        with pytest.raises(ValueError):
            safe_record_path(root, "live", "link/x")

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_find_recording(self, tmp_path: Path) -> None:
        """Playback's lookup: None without the file, the path with it, and a file reached
        through a link out of the directory is refused like a recording would be."""
        root = tmp_path / "records"
        assert find_recording(root, "live", "cam1") is None
        record(root / "live" / "cam1.flv", [])
        assert find_recording(root, "live", "cam1?k=1") == root / "live" / "cam1.flv"
        outside = tmp_path / "outside"
        record(outside / "x.flv", [])
        (root / "live" / "link").symlink_to(outside, target_is_directory=True)
        with pytest.raises(ValueError):
            find_recording(root, "live", "link/x")
        with pytest.raises(ValueError):
            find_recording(root, "live", "../x")

    @pytest.mark.spec("RTMP 7.2.2.6")
    @given(
        app=st.text(min_size=0, max_size=12),
        name=st.text(
            alphabet=st.sampled_from(list("ab./\\?\x00:C%~ -_")) | st.characters(), max_size=24
        ),
    )
    def test_any_name_is_refused_or_inside(
        self, tmp_path_factory: pytest.TempPathFactory, app: str, name: str
    ) -> None:
        tmp_path = tmp_path_factory.getbasetemp() / "records"
        try:
            path = safe_record_path(tmp_path, app, name)
        except ValueError:
            return
        root = tmp_path.resolve()
        resolved = path.resolve()
        assert root in resolved.parents
        assert resolved.name.endswith(".flv")
        assert "\x00" not in str(path) and "\\" not in str(path)


class TestScriptPayload:
    @pytest.mark.spec("FLV E.4.4.1")
    def test_set_data_frame_is_stripped(self) -> None:
        meta = commands.metadata({"width": 320.0}, MSID)
        stripped = commands.metadata({"width": 320.0}, MSID, set_data_frame=False)
        assert script_payload(meta) == stripped.data

    @pytest.mark.spec("FLV E.4.4.1")
    def test_clear_data_frame_is_not_recorded(self) -> None:
        msg = commands.encode_data("@clearDataFrame", "onMetaData", message_stream_id=MSID)
        assert script_payload(msg) is None

    @pytest.mark.spec("FLV E.4.4.1")
    def test_amf3_data_message_format_byte_is_dropped(self) -> None:
        msg = commands.encode_data("onTextData", {"text": "hi"}, message_stream_id=MSID,
                                   object_encoding=3)
        assert msg.type == MessageType.DATA_AMF3
        payload = script_payload(msg)
        assert payload is not None and payload[:1] == b"\x02"  # AMF0 string "onTextData"


class TestRecorder:
    @pytest.mark.spec("FLV E.2", "FLV E.3", "FLV E.4.1")
    def test_round_trip_starts_at_zero(self, tmp_path: Path) -> None:
        messages = media_messages(1.0, base=5000)
        path = record(tmp_path / "r.flv", messages)
        assert path.read_bytes()[:4] == b"FLV\x01"  # FLV E.2
        tags = read_tags(path)
        assert len(tags) == len(messages)
        assert tags[0].type == 18
        name, properties = decode_payload(tags[0].data, 18)  # @setDataFrame stripped
        assert name == "onMetaData" and properties["width"] == 320.0
        # FLV E.5: the live publisher's duration 0 is replaced by the recorded length.
        assert properties["duration"] == max(t.timestamp for t in tags) / 1000.0
        for tag, msg in zip(tags[1:], messages[1:]):
            assert (tag.type, tag.data) == (int(msg.type), msg.data)
            assert tag.timestamp == msg.timestamp - 5000  # FLV E.4.1: first tag at 0

    @pytest.mark.spec("FLV E.4.1", "FLV E.4.3.1")
    def test_time_zero_is_the_first_frame_not_a_sequence_header(self, tmp_path: Path) -> None:
        """ffmpeg with -output_ts_offset sends its sequence headers at 0 and its frames
        hours later: the file still starts at 0, without a gap of hours."""
        late = 0xFFFFFF - 500
        messages = media_messages(1.0, base=late)
        for i in (1, 2):  # the AVC and AAC sequence headers, at 0 as ffmpeg sends them
            messages[i] = messages[i].replace(timestamp=0)
        tags = read_tags(record(tmp_path / "r.flv", messages))
        assert [t.timestamp for t in tags[:3]] == [0, 0, 0]
        assert [t.timestamp for t in tags[3:]] == [m.timestamp - late for m in messages[3:]]

    @pytest.mark.spec("FLV E.4.1")
    def test_wrapping_publisher_clock(self, tmp_path: Path) -> None:
        base = 0xFFFFFFFF - 100
        messages = [
            Message(type=MessageType.VIDEO, data=keyframe(0), timestamp=base),
            Message(type=MessageType.VIDEO, data=inter_frame(1), timestamp=(base + 200) & 0xFFFFFFFF),
        ]
        tags = read_tags(record(tmp_path / "w.flv", messages))
        assert [t.timestamp for t in tags] == [0, 200]

    @pytest.mark.spec("RTMP 7.2.2.6", "FLV E.4.1")
    def test_append_continues_after_last_timestamp(self, tmp_path: Path) -> None:
        path = record(tmp_path / "a.flv", media_messages(1.0))
        before = read_tags(path)
        last = max(t.timestamp for t in before)
        record(path, media_messages(1.0, base=70_000), append=True)
        after = read_tags(path)
        # The old tags are kept (only the metadata's duration number is updated).
        assert [(t.type, t.timestamp, t.data) for t in after[1: len(before)]] == [
            (t.type, t.timestamp, t.data) for t in before[1:]
        ]
        appended = after[len(before):]
        assert appended and min(t.timestamp for t in appended) > last
        media = [t.timestamp for t in after if t.type in (8, 9)]
        assert media == sorted(media)  # monotonic across the splice

    @pytest.mark.spec("RTMP 7.2.2.6", "FLV E.5")
    def test_append_keeps_one_metadata_with_the_total_duration(self, tmp_path: Path) -> None:
        path = record(tmp_path / "m.flv", media_messages(1.0))
        record(path, media_messages(1.0, base=9000), append=True)
        tags = read_tags(path)
        scripts = [t for t in tags if t.type == 18]
        assert len(scripts) == 1
        assert decode_payload(scripts[0].data, 18)[1]["duration"] == max(
            t.timestamp for t in tags) / 1000.0

    @pytest.mark.spec("FLV E.5")
    def test_patch_duration_without_metadata(self, tmp_path: Path) -> None:
        path = record(tmp_path / "n.flv", media_messages(0.5)[1:])
        assert not patch_metadata_duration(path, 500)
        assert all(t.type != 18 for t in read_tags(path))

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_record_truncates(self, tmp_path: Path) -> None:
        path = record(tmp_path / "t.flv", media_messages(1.0))
        record(path, media_messages(0.2))
        assert max(t.timestamp for t in read_tags(path)) < 200

    @pytest.mark.spec("RTMP 7.1.6")
    def test_aggregate_is_split(self, tmp_path: Path) -> None:
        subs = [
            Message(type=MessageType.VIDEO, data=keyframe(0), timestamp=1000),
            Message(type=MessageType.AUDIO, data=aac_frame(0), timestamp=1010),
        ]
        tags = read_tags(record(tmp_path / "g.flv", [build_aggregate(subs, MSID)]))
        assert [(t.type, t.timestamp, t.data) for t in tags] == [
            (9, 0, keyframe(0)), (8, 10, aac_frame(0))
        ]

    @pytest.mark.spec("FLV E.3")
    def test_synced_at_keyframe_without_close(self, tmp_path: Path) -> None:
        recorder = Recorder(tmp_path / "k.flv")
        try:
            recorder.write(Message(type=MessageType.VIDEO, data=AVC_SEQUENCE_HEADER))
            recorder.write(Message(type=MessageType.VIDEO, data=keyframe(0), timestamp=0))
            # Another reader sees both tags although the recorder is still open.
            tags = read_tags(tmp_path / "k.flv")
            assert [t.data for t in tags] == [AVC_SEQUENCE_HEADER, keyframe(0)]
        finally:
            recorder.close()

    @pytest.mark.spec("FLV E.3")
    def test_slow_fsync_does_not_stall_the_publisher(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """fsync runs on the recorder's own thread: a slow disk delays durability, not
        the publisher (whose thread also feeds every player)."""
        import os

        real_fsync = os.fsync
        synced_on: List[str] = []

        def slow_fsync(fd: int) -> None:
            synced_on.append(threading.current_thread().name)
            time.sleep(0.3)
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", slow_fsync)
        recorder = Recorder(tmp_path / "slow.flv")
        began = time.monotonic()
        for i in range(10):  # ten keyframes: ten sync points
            recorder.write(Message(type=MessageType.VIDEO, data=keyframe(i), timestamp=40 * i))
        assert time.monotonic() - began < 0.25
        # Whole tags reached the OS at once (they survive the process being killed).
        assert [t.data for t in read_tags(tmp_path / "slow.flv")] == [keyframe(i) for i in range(10)]
        recorder.close()
        me = threading.current_thread().name
        assert synced_on and all(name.startswith("rtmp-rec-sync") for name in synced_on[:-1])
        assert synced_on[-1] == me  # close() syncs the last bytes itself
        assert not [t for t in threading.enumerate() if t.name.startswith("rtmp-rec-sync")]

    @pytest.mark.spec("FLV E.3")
    def test_synced_every_second_of_audio(self, tmp_path: Path) -> None:
        recorder = Recorder(tmp_path / "s.flv")
        try:
            for i, t in enumerate(range(0, 1100, 23)):
                recorder.write(Message(type=MessageType.AUDIO, data=aac_frame(i), timestamp=t))
            tags = read_tags(tmp_path / "s.flv")
            assert tags and max(t.timestamp for t in tags) >= 1000
        finally:
            recorder.close()

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_close_is_idempotent_and_drops_late_writes(self, tmp_path: Path) -> None:
        recorder = Recorder(tmp_path / "c.flv")
        assert recorder.write(Message(type=MessageType.VIDEO, data=keyframe(0)))
        recorder.close()
        recorder.close()
        assert recorder.closed
        assert not recorder.write(Message(type=MessageType.VIDEO, data=keyframe(1), timestamp=40))
        assert len(read_tags(tmp_path / "c.flv")) == 1

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_other_message_types_are_ignored(self, tmp_path: Path) -> None:
        recorder = Recorder(tmp_path / "o.flv")
        with recorder:
            assert not recorder.write(commands.on_status(commands.NETSTREAM_PLAY_START, "", MSID))
            assert not recorder.write(user_control.stream_begin(MSID))
        assert read_tags(tmp_path / "o.flv") == []

    @pytest.mark.spec("FLV E.3")
    def test_close_from_another_thread_while_writing(self, tmp_path: Path) -> None:
        recorder = Recorder(tmp_path / "x.flv")
        errors: List[BaseException] = []
        started = threading.Event()

        def publisher() -> None:
            try:
                for i in range(20_000):
                    recorder.write(Message(type=MessageType.AUDIO, data=aac_frame(i), timestamp=i))
                    started.set()
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=publisher)
        thread.start()
        assert started.wait(5)
        recorder.close()
        thread.join(10)
        assert not thread.is_alive() and not errors
        tags = read_tags(tmp_path / "x.flv")
        assert tags and [t.timestamp for t in tags] == list(range(len(tags)))


class TestRecorderProperties:
    @pytest.mark.spec("FLV E.4.1")
    @given(
        start=st.integers(0, 0xFFFFFFFF),
        steps=st.lists(st.tuples(st.sampled_from([8, 9]), st.integers(0, 5000),
                                 st.binary(min_size=1, max_size=40)), min_size=1, max_size=40),
    )
    @example(start=0, steps=[(9, 0, b"\xf4\x00\x00\x00\x00"), (9, 10, b"\x17\x01")])
    def test_round_trip_keeps_order_data_and_relative_time(
        self, tmp_path_factory: pytest.TempPathFactory, start: int,
        steps: List[Tuple[int, int, bytes]],
    ) -> None:
        path = tmp_path_factory.mktemp("prop") / "p.flv"
        messages = []
        now = start
        for kind, step, payload in steps:
            now = (now + step) & 0xFFFFFFFF  # a publisher clock that may wrap (RTMP 3)
            messages.append(Message(type=kind, data=payload, timestamp=now))
        tags = read_tags(record(path, messages))
        assert [(t.type, t.data) for t in tags] == [(int(m.type), m.data) for m in messages]
        # Time 0 is the first frame; configuration before it (sequence headers, and the
        # Enhanced RTMP video Metadata and MultichannelConfig packets) goes at 0 too.
        first = next((i for i, m in enumerate(messages)
                      if not (flv.is_sequence_header(m) or config_keys(m.type, m.data))),
                     len(messages))
        elapsed = 0
        expected = [0] * (first + 1)
        for _, step, _ in steps[first + 1:]:
            elapsed += step
            expected.append(elapsed)
        assert [t.timestamp for t in tags] == expected[:len(messages)]


class TestFlvIndex:
    @pytest.mark.spec("RTMP 7.2.2.7", "FLV E.4.3.1")
    def test_keyframes_are_the_seek_points(self, vod_file: Path) -> None:
        index = FlvIndex(vod_file)
        assert index.seek_times == [0, 1000, 2000]
        assert index.metadata is not None
        assert index.duration_ms == max(t.timestamp for t in read_tags(vod_file))
        assert index.seek_point(1500)[0] == 1000
        assert index.seek_point(999)[0] == 0
        assert index.seek_point(10_000)[0] == 2000
        with open(vod_file, "rb") as f:  # the offset points at the keyframe tag itself
            f.seek(index.seek_point(1000)[1])
            assert f.read(1) == b"\x09"

    @pytest.mark.spec("FLV E.3", "FLV E.4.1")
    def test_index_agrees_with_reader(self, vod_file: Path) -> None:
        index = FlvIndex(vod_file)
        tags = read_tags(vod_file)
        keyframes = [t for t in tags if t.type == 9 and t.data[:2] == b"\x17\x01"]
        assert index.seek_offsets == [t.offset for t in keyframes]
        assert [(o, t.data) for o, t in index.headers] == [
            (t.offset, t.data) for t in tags if t.data in (AVC_SEQUENCE_HEADER, AAC_SEQUENCE_HEADER)
        ]
        assert index.tag_count == len(tags) and not index.truncated
        assert index.end_offset == vod_file.stat().st_size

    @pytest.mark.spec("FLV E.3")
    def test_truncated_file_plays_to_last_complete_tag(self, vod_file: Path) -> None:
        data = vod_file.read_bytes()
        vod_file.write_bytes(data[:-20])  # cut inside the last tag, as a crash would
        index = FlvIndex(vod_file)
        complete = read_tags(vod_file)
        assert index.truncated and index.tag_count == len(complete)
        player, transport, clock = make_player(vod_file)
        run_to_end(player, clock)
        assert [m.data for m in transport.media()] == [t.data for t in complete if t.type in (8, 9)]

    @pytest.mark.spec("FLV E.2")
    def test_not_flv_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "x.flv"
        path.write_bytes(b"GIF89a" + bytes(64))
        with pytest.raises(flv.FLVError):
            FlvIndex(path)

    @pytest.mark.spec("RTMP 7.2.2.7", "FLV E.4.3.1")
    def test_end_of_sequence_is_not_a_seek_point(self, tmp_path: Path) -> None:
        messages = media_messages(1.0) + [
            Message(type=MessageType.VIDEO, data=b"\x17\x02\x00\x00\x00", timestamp=1500)
        ]
        index = FlvIndex(record(tmp_path / "e.flv", messages))
        assert index.seek_times == [0]
        assert index.duration_ms == 1500

    @pytest.mark.spec("RTMP 7.2.2.7")
    @given(ms=st.integers(-10, 5000))
    def test_seek_point_is_the_latest_keyframe_not_after(
        self, shared_index: FlvIndex, ms: int
    ) -> None:
        index = shared_index
        timestamp, offset = index.seek_point(ms)
        keys = [t for t in index.seek_times if t <= ms]
        if len(keys) <= 1:  # up to the first keyframe: from the start of the file
            assert (timestamp, offset) == (0, index.first_offset)
        else:
            assert timestamp == keys[-1]
            assert offset == index.seek_offsets[index.seek_times.index(keys[-1])]

    @pytest.mark.spec("RTMP 7.2.2.7", "FLV E.4.2.1")
    def test_audio_only_file_seeks_to_any_frame(self, tmp_path: Path) -> None:
        path = record(tmp_path / "a.flv", media_messages(1.0, video=False))
        index = FlvIndex(path)
        assert index.seek_point(500)[0] == max(t for t in range(0, 1000, 23) if t <= 500)


class TestPacing:
    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_preamble_then_paced_tags(self, vod_file: Path) -> None:
        player, transport, clock = make_player(vod_file)
        delay = pump(player)
        first = transport.take()
        # FLV E.5: metadata first, as onMetaData (no @setDataFrame); then sequence headers.
        assert first[0].type == MessageType.DATA_AMF0
        assert commands.decode_data(first[0])[0] == "onMetaData"
        assert [m.data for m in first[1:3]] == [AVC_SEQUENCE_HEADER, AAC_SEQUENCE_HEADER]
        assert all(m.timestamp == 0 for m in first[3:])
        assert delay is not None and 0 < delay <= 0.023
        clock.advance(0.5)
        pump(player)
        batch = transport.take()
        assert batch and all(0 < m.timestamp <= 500 for m in batch)
        assert max(m.timestamp for m in batch) > 460
        assert player.position_ms == max(m.timestamp for m in batch)

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_buffer_ahead(self, vod_file: Path) -> None:
        player, transport, _ = make_player(vod_file, buffer_ms=1000)
        pump(player)
        assert max(m.timestamp for m in transport.media()) == 1000
        assert pump(player) is not None
        assert max(m.timestamp for m in transport.media()) == 1000

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_messages_use_stream_and_conventional_chunk_streams(self, vod_file: Path) -> None:
        player, transport, clock = make_player(vod_file)
        run_to_end(player, clock)
        by_type = {m.type: m.csid for m in transport.messages if m.message_stream_id == MSID}
        assert by_type[MessageType.AUDIO] != by_type[MessageType.VIDEO]
        assert {m.message_stream_id for m in transport.media()} == {MSID}

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_all_tags_in_file_order(self, vod_file: Path) -> None:
        player, transport, clock = make_player(vod_file)
        run_to_end(player, clock)
        sent = [(int(m.type), m.timestamp, m.data) for m in transport.media()]
        in_file = [(t.type, t.timestamp, t.data) for t in read_tags(vod_file) if t.type in (8, 9)]
        assert sent == in_file

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_start_and_duration(self, vod_file: Path) -> None:
        player, transport, clock = make_player(vod_file, start_ms=1500, duration_ms=700)
        run_to_end(player, clock)
        media = transport.media()
        video = [m for m in media if m.type == MessageType.VIDEO]
        assert video[0].data == AVC_SEQUENCE_HEADER  # headers come before the keyframe
        assert video[1].timestamp == 1000 and video[1].data[:2] == b"\x17\x01"
        assert max(m.timestamp for m in media) <= 2200
        assert max(m.timestamp for m in media) > 2100


class TestReceive:
    @pytest.mark.spec("RTMP 7.2.2.4", "RTMP 7.2.2.5")
    def test_receive_audio_and_video_flags(self, vod_file: Path) -> None:
        player, transport, clock = make_player(vod_file)
        player.receive_audio = False
        pump(player)
        clock.advance(1.0)
        pump(player)
        media = transport.media()
        assert media and {m.type for m in media[2:]} == {MessageType.VIDEO}
        transport.take()
        player.receive_audio, player.receive_video = True, False
        clock.advance(1.0)
        pump(player)
        assert {m.type for m in transport.media()} == {MessageType.AUDIO}


class TestEnd:
    @pytest.mark.spec("RTMP 7.1.7", "RTMP 7.2.2.1")
    def test_eof_sequence(self, vod_file: Path) -> None:
        player, transport, clock = make_player(vod_file)
        run_to_end(player, clock)
        eof, play_status, stop = transport.messages[-3:]
        event = user_control.decode(eof.data)
        assert eof.type == MessageType.USER_CONTROL
        assert (event.event, event.stream_id) == (user_control.UserControlEvent.STREAM_EOF, MSID)
        assert play_status.type == MessageType.DATA_AMF0
        name, info = commands.decode_data(play_status)
        assert name == "onPlayStatus"
        assert info["code"] == commands.NETSTREAM_PLAY_COMPLETE and info["level"] == "status"
        cmd = commands.decode_command(stop)
        assert cmd.name == "onStatus" and cmd.arguments[0]["code"] == commands.NETSTREAM_PLAY_STOP
        assert stop.message_stream_id == MSID
        assert player.finished.is_set() and player.pump() is None


class TestSeek:
    @pytest.mark.spec("RTMP 7.2.2.7")
    def test_seek_to_keyframe_before(self, vod_file: Path) -> None:
        player, transport, _ = make_player(vod_file)
        pump(player)
        transport.take()
        assert player.seek(2300) == 2000
        assert player.position_ms == 2000
        pump(player)
        sent = transport.take()
        # Sequence headers again, then the keyframe, at the new position.
        assert [m.data for m in sent[:2]] == [AVC_SEQUENCE_HEADER, AAC_SEQUENCE_HEADER]
        first_video = next(m for m in sent[2:] if m.type == MessageType.VIDEO)
        assert first_video.timestamp == 2000 and first_video.data[:2] == b"\x17\x01"
        assert min(m.timestamp for m in sent[2:]) >= 2000

    @pytest.mark.spec("RTMP 7.2.2.7")
    def test_seek_notify_comes_before_media(self, vod_file: Path) -> None:
        player, transport, _ = make_player(vod_file)
        pump(player)
        transport.take()
        seen: List[int] = []

        def notify(position: int) -> List[Message]:
            seen.append(position)
            return [commands.on_status(commands.NETSTREAM_SEEK_NOTIFY, "seeking", MSID)]

        assert player.seek(1200, notify=notify) == 1000
        assert seen == [1000]
        pump(player)
        sent = transport.take()
        assert commands.decode_command(sent[0]).arguments[0]["code"] == commands.NETSTREAM_SEEK_NOTIFY
        assert sent[1].data == AVC_SEQUENCE_HEADER

    @pytest.mark.spec("RTMP 7.2.2.7")
    def test_seek_on_running_thread(self, tmp_path: Path) -> None:
        path = record(tmp_path / "t.flv", media_messages(6.0))
        transport = CollectingTransport()
        player = VodPlayer(transport, path, MSID, buffer_ms=200)
        _PLAYERS.append(player)
        player.start()
        time.sleep(0.1)
        notify = [commands.on_status(commands.NETSTREAM_SEEK_NOTIFY, "seeking", MSID)]
        assert player.seek(4100, notify=lambda position: notify) == 4000
        time.sleep(0.2)
        with transport.lock:
            messages = list(transport.messages)
        at = next(i for i, m in enumerate(messages) if m.type == MessageType.COMMAND_AMF0)
        after = [m for m in messages[at + 1:] if m.type in (MessageType.AUDIO, MessageType.VIDEO)]
        assert after and after[0].data == AVC_SEQUENCE_HEADER
        assert min(m.timestamp for m in after) >= 4000

    @pytest.mark.spec("RTMP 7.1.7", "FLV E.2")
    def test_file_without_tags_ends_at_once(self, tmp_path: Path) -> None:
        path = record(tmp_path / "empty.flv", [])
        player, transport, clock = make_player(path)
        run_to_end(player, clock)
        assert [m.type for m in transport.messages] == [
            MessageType.USER_CONTROL, MessageType.DATA_AMF0, MessageType.COMMAND_AMF0
        ]
        assert player.duration_ms == 0 and player.position_ms == 0

    @pytest.mark.spec("RTMP 7.2.2.7")
    def test_seek_after_end_plays_on(self, vod_file: Path) -> None:
        player, transport, clock = make_player(vod_file)
        run_to_end(player, clock)
        transport.take()
        assert player.seek(1000) == 1000
        assert not player.finished.is_set()
        run_to_end(player, clock)
        media = transport.media()
        assert min(m.timestamp for m in media) == 1000


class _SlowExitEvent(threading.Event):
    """An Event whose is_set() dawdles on the playback thread once playback finished:
    it holds the thread open between leaving its loop and ending."""

    def __init__(self, finished: threading.Event) -> None:
        super().__init__()
        self.finished = finished

    def is_set(self) -> bool:
        if self.finished.is_set() and threading.current_thread().name.startswith("rtmp-vod-"):
            time.sleep(0.3)
        return super().is_set()


class TestPause:
    @pytest.mark.spec("RTMP 7.2.2.8")
    def test_pause_stops_sending(self, vod_file: Path) -> None:
        player, transport, clock = make_player(vod_file)
        pump(player)
        player.pause(True, 0)
        transport.take()
        clock.advance(5)
        assert player.pump() is None
        assert transport.take() == []

    @pytest.mark.spec("RTMP 7.2.2.8")
    def test_resume_sends_only_later_messages(self, vod_file: Path) -> None:
        player, transport, clock = make_player(vod_file)
        pump(player)
        clock.advance(1.7)
        pump(player)
        player.pause(True, 1500)
        transport.take()
        clock.advance(30)  # paused time does not count
        player.pause(False, 1500)
        pump(player)
        sent = transport.media()
        assert sent and min(m.timestamp for m in sent) > 1500
        assert max(m.timestamp for m in sent) <= 1500 + 23 + 40  # clock restarted at resume
        clock.advance(0.3)
        pump(player)
        assert max(m.timestamp for m in transport.media()) > 1750

    @pytest.mark.spec("RTMP 7.2.2.8")
    def test_pause_notify_is_in_order(self, vod_file: Path) -> None:
        player, transport, clock = make_player(vod_file)
        pump(player)
        transport.take()

        def status(code: str) -> "Callable[[int], List[Message]]":
            return lambda position: [commands.on_status(code, str(position), MSID)]

        player.pause(True, 0, notify=status(commands.NETSTREAM_PAUSE_NOTIFY))
        clock.advance(1)
        pump(player)
        assert [commands.decode_command(m).arguments[0]["code"] for m in transport.take()] == [
            commands.NETSTREAM_PAUSE_NOTIFY
        ]
        player.pause(False, 0, notify=status(commands.NETSTREAM_UNPAUSE_NOTIFY))
        pump(player)
        sent = transport.take()
        assert commands.decode_command(sent[0]).arguments[0]["code"] == commands.NETSTREAM_UNPAUSE_NOTIFY
        assert len(sent) > 1 and all(m.timestamp > 0 for m in sent[1:])

    @pytest.mark.spec("RTMP 7.2.2.8")
    def test_resume_without_time_continues(self, vod_file: Path) -> None:
        player, transport, clock = make_player(vod_file)
        pump(player)
        clock.advance(0.5)
        pump(player)
        position = player.position_ms
        player.pause(True)
        transport.take()
        player.pause(False)
        clock.advance(0.2)
        pump(player)
        sent = transport.media()
        assert sent and min(m.timestamp for m in sent) >= position


class TestThread:
    """The playback thread: paced, prompt to stop, non-daemon and joined, restarted by a
    seek after the end."""

    @pytest.mark.spec("RTMP 7.2.2.7")
    def test_seek_while_the_finished_thread_is_ending(self, tmp_path: Path) -> None:
        path = record(tmp_path / "short.flv", media_messages(0.3))
        transport = CollectingTransport()
        player = VodPlayer(transport, path, MSID, buffer_ms=5000)
        _PLAYERS.append(player)
        player._stopping = _SlowExitEvent(player.finished)
        player.start()
        assert player._thread is not None and not player._thread.daemon
        assert player.finished.wait(5)
        transport.take()
        assert player.seek(0) == 0  # the old thread is still ending: a new one must run
        deadline = time.monotonic() + 5
        while not transport.media() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert transport.media(), "no media after a seek past the end"
        assert player.finished.wait(5)
        threads = [t for t in threading.enumerate() if t.name == f"rtmp-vod-{MSID}"]
        player.stop()
        assert not any(t.is_alive() for t in threads)

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_plays_in_real_time(self, tmp_path: Path) -> None:
        path = record(tmp_path / "short.flv", media_messages(0.4))
        transport = CollectingTransport()
        player = VodPlayer(transport, path, MSID, buffer_ms=0)
        _PLAYERS.append(player)
        began = time.monotonic()
        player.start()
        try:
            assert player.finished.wait(10)
        finally:
            player.stop()
        elapsed = time.monotonic() - began
        assert 0.3 <= elapsed < 5
        assert transport.messages[-1].type == MessageType.COMMAND_AMF0

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_stop_is_prompt(self, tmp_path: Path) -> None:
        path = record(tmp_path / "long.flv", media_messages(20.0, audio=False))
        transport = CollectingTransport()
        player = VodPlayer(transport, path, MSID, buffer_ms=0)
        _PLAYERS.append(player)
        player.start()
        time.sleep(0.1)
        began = time.monotonic()
        player.stop()
        assert time.monotonic() - began < 1.0
        assert player._thread is not None and not player._thread.is_alive()
        assert not player.finished.is_set()
        count = len(transport.messages)
        time.sleep(0.1)
        assert len(transport.messages) == count

    @pytest.mark.spec("RTMP 7.2.2.8")
    def test_pause_from_another_thread(self, tmp_path: Path) -> None:
        path = record(tmp_path / "p.flv", media_messages(20.0, audio=False))
        transport = CollectingTransport()
        player = VodPlayer(transport, path, MSID, buffer_ms=0)
        _PLAYERS.append(player)
        player.start()
        try:
            time.sleep(0.2)
            player.pause(True, player.position_ms)
            time.sleep(0.05)
            count = len(transport.messages)
            time.sleep(0.3)
            assert len(transport.messages) == count
        finally:
            player.stop()

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_write_error_ends_thread(self, vod_file: Path) -> None:
        class Broken:
            def write_messages(self, msgs: List[Message]) -> None:
                raise ConnectionResetError("player went away")

        player = VodPlayer(Broken(), vod_file, MSID)
        player.start()
        assert player._thread is not None
        player._thread.join(5)
        assert not player._thread.is_alive()
        assert isinstance(player.error, ConnectionResetError)
        assert not player.finished.is_set()
        player.stop()


# --------------------------------------------------------------------------------------
# VOD through rtmp.Server: the order of status messages and media, receiveAudio/Video.
# --------------------------------------------------------------------------------------


@pytest.fixture
def vod_server(tmp_path: Path) -> Iterator[Tuple[Server, Client]]:
    """A server with ``live/movie.flv`` (4 s) recorded, and a connected player client."""
    (tmp_path / "live").mkdir()
    record(tmp_path / "live" / "movie.flv", media_messages(4.0))
    with Server(ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path)) as server:
        host, port = server.address
        client = Client()
        try:
            client.connect(f"rtmp://{host}:{port}/live")
            yield server, client
        finally:
            client.close()


def status_code(msg: Message) -> Optional[str]:
    """The ``code`` of an onStatus command, else None."""
    if msg.type not in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
        return None
    cmd = commands.decode_command(msg)
    info = cmd.arguments[-1] if cmd.arguments else None
    return info.get("code") if cmd.name == "onStatus" and isinstance(info, dict) else None


def media_until(client: Client, code: str, timeout: float = 5.0) -> List[Message]:
    """Read until the onStatus ``code``; return the audio/video messages before it."""
    deadline = time.monotonic() + timeout
    media: List[Message] = []
    while True:
        try:
            msg = client.read_message(timeout=max(0.05, deadline - time.monotonic()))
        except StreamEnded:  # the recording's end (RTMP 7.1.7) before a seek past it
            continue
        if status_code(msg) == code:
            return media
        if msg.type in (MessageType.AUDIO, MessageType.VIDEO):
            media.append(msg)


def play_movie(client: Client) -> int:
    """Play ``movie`` from 0 s (the recording); the stream id."""
    client.play("movie", start=0)
    assert client.stream_id is not None
    return client.stream_id


def _delay_after(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make ``VodPlayer.<name>`` linger 0.3 s after it has repositioned playback.

    A server that sends its status messages after the call returns then lets the
    playback thread send media of the new position first, every time.
    """
    original = getattr(VodPlayer, name)

    def slow(self: VodPlayer, *args: object, **kwargs: object) -> object:
        result = original(self, *args, **kwargs)
        time.sleep(0.3)
        return result

    monkeypatch.setattr(VodPlayer, name, slow)


class TestThroughServer:
    """RTMP 7.2.2.7 / 7.2.2.8 / 7.2.2.4: the server's VOD commands, over loopback."""

    @pytest.mark.spec("RTMP 7.2.2.7")
    def test_seek_notify_before_media_of_the_new_position(
        self, vod_server: Tuple[Server, Client], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _delay_after(monkeypatch, "seek")
        _, client = vod_server
        stream_id = play_movie(client)
        client.write_message(commands.seek(3000, stream_id))
        before = media_until(client, commands.NETSTREAM_SEEK_NOTIFY)
        assert all(m.timestamp < 3000 for m in before), "new position's media before Seek.Notify"
        after = media_until(client, commands.NETSTREAM_PLAY_START)
        assert after == []  # RTMP 7.2.2.7: Seek.Notify, Play.Start, then the media
        first = next_media(client)
        assert (first.timestamp, first.data) == (3000, AVC_SEQUENCE_HEADER)

    @pytest.mark.spec("RTMP 7.2.2.8")
    def test_unpause_notify_before_resumed_media(
        self, vod_server: Tuple[Server, Client], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _delay_after(monkeypatch, "pause")
        _, client = vod_server
        stream_id = play_movie(client)
        client.write_message(commands.pause(True, 500, stream_id))
        media_until(client, commands.NETSTREAM_PAUSE_NOTIFY)
        client.write_message(commands.pause(False, 500, stream_id))
        during = media_until(client, commands.NETSTREAM_UNPAUSE_NOTIFY)
        assert during == [], "media between Pause.Notify and Unpause.Notify"
        assert next_media(client).timestamp > 500  # RTMP 7.2.2.8: only what follows 500 ms
    @pytest.mark.spec("RTMP 7.2.2.4", "RTMP 7.2.2.5")
    def test_receive_audio_and_video_reach_the_vod_player(
        self, vod_server: Tuple[Server, Client]
    ) -> None:
        server, client = vod_server
        stream_id = play_movie(client)
        client.receive_audio(False)
        client.receive_video(False)

        (conn,) = server.connections
        vod = conn._streams[stream_id].vod
        assert isinstance(vod, VodPlayer)

        def vod_flags() -> Tuple[bool, bool]:
            return vod.receive_audio, vod.receive_video

        deadline = time.monotonic() + 5
        while vod_flags() != (False, False) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert vod_flags() == (False, False)
        client.receive_video(True, wait=True)  # answered with Seek.Notify + Play.Start
        assert vod_flags() == (False, True)
        # Seek to the last second: nothing buffered is left to arrive, and only video follows.
        client.write_message(commands.seek(3000, stream_id))
        media_until(client, commands.NETSTREAM_SEEK_NOTIFY)
        after = media_until(client, commands.NETSTREAM_PLAY_STOP, timeout=10)
        assert any(m.data[:2] == b"\x27\x01" for m in after)  # inter-frames
        assert all(m.type == MessageType.VIDEO or m.data == AAC_SEQUENCE_HEADER for m in after)
