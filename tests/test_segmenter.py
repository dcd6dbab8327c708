"""Recordings in parts (rtmp.segmenter, issue 20): cuts at keyframes, each part a whole
FLV, nothing lost at a cut, part names and lookup (rtmp.record_path), on_record_done,
and the duration/size parsers of ``rtmp serve --record-segment/--record-max-size``."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtmp import Client, ClientConfig, Server, ServerConfig, cli, commands, flv
from rtmp.config import parse_duration, parse_size
from rtmp.message import Message, MessageType, StreamType, build_aggregate
from rtmp.record_path import find_recording, list_parts, part_path
from rtmp.recorder import Recorder
from rtmp.segmenter import SegmentedRecorder, records_app
from tests.test_vod import (
    AAC_SEQUENCE_HEADER,
    AVC_SEQUENCE_HEADER,
    MSID,
    media_messages,
    read_tags,
)

STAMP = "20261204T142900Z"

# ERTMP Enhanced Video: IsExVideoHeader | FrameType 1 | PacketType (0 SequenceStart,
# 1 CodedFrames), FourCC "hvc1"; CodedFrames of hvc1 carry an SI24 composition time.
HEVC_START = b"\x90hvc1" + b"\x01\x02\x03HEVC-CONFIG"
HEVC_METADATA = b"\x94hvc1" + b"\x02\x00\x09colorInfo\x03\x00\x00\x09"  # PacketType 4
# ERTMP Enhanced Audio: SoundFormat 9 | PacketType (0 SequenceStart, 1 CodedFrames), "Opus".
OPUS_START = b"\x90Opus" + b"OpusHead-config"


def hevc_frame(n: int, key: bool) -> bytes:
    return (b"\x91" if key else b"\xa1") + b"hvc1" + b"\x00\x00\x00" + n.to_bytes(4, "big")


def opus_frame(n: int) -> bytes:
    return b"\x91Opus" + n.to_bytes(4, "big") + b"O" * 8


def is_frame(tag: flv.Tag) -> bool:
    """A tag a decoder gets as a packet: audio or video that is not configuration."""
    return tag.type in (flv.TAG_AUDIO, flv.TAG_VIDEO) and not flv.is_sequence_header(tag)


def frames(messages: List[Message]) -> List[Tuple[int, bytes]]:
    return [(int(m.type), bytes(m.data)) for m in messages
            if m.type in (MessageType.AUDIO, MessageType.VIDEO) and not flv.is_sequence_header(m)]


class Parts:
    """A SegmentedRecorder over numbered files in ``folder``, as record_all names them."""

    def __init__(self, folder: Path, **kwargs: object) -> None:
        self.folder = folder
        self.index = 0
        self.done: List[Tuple[Path, str]] = []

        def open_part() -> Recorder:
            self.index += 1
            return Recorder(part_path(folder, "live", "cam", STAMP, self.index))

        def on_done(path: Path) -> None:
            self.done.append((path, threading.current_thread().name))

        self.recorder = SegmentedRecorder(open_part, on_done=on_done, **kwargs)  # type: ignore[arg-type]

    def record(self, messages: List[Message]) -> List[Path]:
        with self.recorder as recorder:
            for msg in messages:
                recorder.write(msg)
        return [p for _, p in list_parts(self.folder, "live", "cam")]


def assert_whole_part(path: Path, video: bool = True, audio: bool = True) -> List[flv.Tag]:
    """FLV E.2-E.5: header, onMetaData first, the sequence headers, then media from 0."""
    tags = read_tags(path)
    assert tags[0].type == flv.TAG_SCRIPT and tags[0].data.startswith(b"\x02\x00\x0aonMetaData")
    headers = [t for t in tags[1:] if flv.is_sequence_header(t)]
    first_frame = next(i for i, t in enumerate(tags) if is_frame(t))
    assert all(flv.is_sequence_header(t) for t in tags[1:first_frame])
    assert len(headers) >= int(video) + int(audio)
    assert [t.type for t in tags[1:first_frame]] == sorted(
        (t.type for t in tags[1:first_frame]), reverse=True)  # video configuration first
    media = [t for t in tags if is_frame(t)]
    if video:
        first_video = next(t for t in media if t.type == flv.TAG_VIDEO)
        assert flv.is_keyframe(first_video) and first_video.timestamp == 0
    assert min(t.timestamp for t in media) == 0
    return tags


class TestCuts:
    @pytest.mark.spec("FLV E.4.3.1", "FLV E.3")
    def test_parts_cut_at_keyframes_and_add_up(self, tmp_path: Path) -> None:
        """Every 2 s of media, at the next keyframe: 5 s give 3 parts whose frames, in
        order, are exactly the frames published."""
        source = media_messages(seconds=5.0, gop_ms=1000)
        paths = Parts(tmp_path, max_ms=2000).record(source)
        assert [p.name for p in paths] == [f"cam-{STAMP}-{i:04d}.flv" for i in (1, 2, 3)]
        recorded: List[Tuple[int, bytes]] = []
        for path in paths:
            tags = assert_whole_part(path)
            recorded += [(t.type, t.data) for t in tags if is_frame(t)]
        assert recorded == frames(source)
        durations = [max(t.timestamp for t in read_tags(p)) for p in paths]
        assert durations[0] in range(1960, 2000) and durations[1] in range(1960, 2000)

    @pytest.mark.spec("FLV E.4.3.1", "FLV E.4.1")
    def test_sequence_headers_at_zero_do_not_start_the_clock(self, tmp_path: Path) -> None:
        """ffmpeg sends its sequence headers at 0 even when its frames start hours later
        (-output_ts_offset): a part's length counts from its first frame, so the first
        part is not cut at once and holds no empty stretch."""
        late = 0xFFFFFF - 500
        source = media_messages(seconds=4.0, gop_ms=1000, base=late)
        source[1:3] = [m.replace(timestamp=0) for m in source[1:3]]
        paths = Parts(tmp_path, max_ms=2000).record(source)
        assert len(paths) == 2
        for path in paths:
            assert_whole_part(path)
            assert max(t.timestamp for t in read_tags(path)) < 2000

    @pytest.mark.spec("FLV E.4.3.1")
    def test_cut_waits_for_the_keyframe(self, tmp_path: Path) -> None:
        """A limit of 0.5 s with a keyframe every 1.2 s: parts are 1.2 s long."""
        source = media_messages(seconds=4.8, gop_ms=1200, audio=False)
        paths = Parts(tmp_path, max_ms=500).record(source)
        assert len(paths) == 4
        for path in paths:
            video = [t for t in read_tags(path) if is_frame(t)]
            assert flv.is_keyframe(video[0])
            assert sum(flv.is_keyframe(t) for t in video) == 1
            assert max(t.timestamp for t in video) == 1160

    @pytest.mark.spec("FLV E.4.2", "FLV E.4.2.2")
    def test_audio_only_cuts_at_any_audio_frame(self, tmp_path: Path) -> None:
        source = media_messages(seconds=3.0, video=False)
        paths = Parts(tmp_path, max_ms=1000).record(source)
        assert len(paths) == 3
        recorded = []
        for path in paths:
            tags = assert_whole_part(path, video=False)
            assert [t.data for t in tags if flv.is_sequence_header(t)] == [AAC_SEQUENCE_HEADER]
            recorded += [(t.type, t.data) for t in tags if is_frame(t)]
        assert recorded == frames(source)

    @pytest.mark.spec("FLV E.3", "FLV E.4.3.1")
    def test_size_limit(self, tmp_path: Path) -> None:
        """A part is cut at the first keyframe once it holds max_bytes; never mid-GOP."""
        source = media_messages(seconds=6.0, gop_ms=1000)
        paths = Parts(tmp_path, max_bytes=3000).record(source)
        assert len(paths) == 3  # a second of this media is about 2 KB: two GOPs a part
        for path in paths:
            tags = assert_whole_part(path)
            keyframes = [t for t in tags if is_frame(t) and flv.is_keyframe(t)]
            assert keyframes[-1].offset < 3000  # no keyframe inside came after the limit
            if path != paths[-1]:
                assert path.stat().st_size >= 3000
        recorded = [(t.type, t.data) for p in paths for t in read_tags(p) if is_frame(t)]
        assert recorded == frames(source)

    @pytest.mark.spec("FLV E.3")
    def test_no_limit_is_one_part(self, tmp_path: Path) -> None:
        paths = Parts(tmp_path).record(media_messages(seconds=4.0))
        assert len(paths) == 1

    @pytest.mark.spec("FLV E.5")
    def test_latest_metadata_starts_each_part(self, tmp_path: Path) -> None:
        """An updated onMetaData goes into the next part (the running part keeps one)."""
        source = media_messages(seconds=4.0, gop_ms=1000)
        later = commands.metadata({"width": 640.0, "height": 480.0}, MSID, timestamp=1500)
        source.insert(next(i for i, m in enumerate(source) if m.timestamp >= 1500), later)
        paths = Parts(tmp_path, max_ms=2000).record(source)
        first_meta = [flv.read_metadata(p) for p in paths]
        assert first_meta[0] is not None and first_meta[0]["width"] == 320.0
        assert first_meta[1] is not None and first_meta[1]["width"] == 640.0

    @pytest.mark.spec("FLV E.5")
    def test_clear_data_frame_forgets_the_metadata(self, tmp_path: Path) -> None:
        source = media_messages(seconds=4.0, gop_ms=1000)
        clear = commands.encode_data("@clearDataFrame", message_stream_id=MSID, timestamp=1500)
        source.insert(next(i for i, m in enumerate(source) if m.timestamp >= 1500), clear)
        paths = Parts(tmp_path, max_ms=2000).record(source)
        assert flv.read_metadata(paths[1]) is None
        assert flv.is_sequence_header(read_tags(paths[1])[0])

    @pytest.mark.spec("FLV E.4.3.1", "FLV E.4.2.2")
    def test_new_sequence_header_replaces_the_old(self, tmp_path: Path) -> None:
        """A publisher that changes resolution sends a new configuration: the next part
        carries only the new one."""
        new_config = AVC_SEQUENCE_HEADER[:-2] + b"\x00\x28"
        source = media_messages(seconds=4.0, gop_ms=1000)
        at = next(i for i, m in enumerate(source) if m.timestamp >= 1000)
        source.insert(at, Message(type=MessageType.VIDEO, data=new_config, timestamp=1000,
                                  message_stream_id=MSID))
        paths = Parts(tmp_path, max_ms=2000).record(source)
        headers = [t.data for t in read_tags(paths[1]) if flv.is_sequence_header(t)]
        assert headers == [new_config, AAC_SEQUENCE_HEADER]

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio")
    def test_enhanced_sequence_starts_and_metadata_are_repeated(self, tmp_path: Path) -> None:
        """ERTMP SequenceStart (hvc1, Opus) and the video Metadata packet start every part."""
        source: List[Message] = [
            commands.metadata({"videocodecid": "hvc1"}, MSID),
            Message(type=MessageType.VIDEO, data=HEVC_START, message_stream_id=MSID),
            Message(type=MessageType.VIDEO, data=HEVC_METADATA, message_stream_id=MSID),
            Message(type=MessageType.AUDIO, data=OPUS_START, message_stream_id=MSID),
        ]
        for i in range(90):
            t = i * 40
            source.append(Message(type=MessageType.VIDEO, data=hevc_frame(i, i % 25 == 0),
                                  timestamp=t, message_stream_id=MSID))
            source.append(Message(type=MessageType.AUDIO, data=opus_frame(i), timestamp=t + 1,
                                  message_stream_id=MSID))
        paths = Parts(tmp_path, max_ms=1000).record(source)
        assert len(paths) == 4
        for path in paths:
            tags = read_tags(path)
            assert [t.data for t in tags[1:4]] == [HEVC_START, HEVC_METADATA, OPUS_START]
            assert tags[4].type == flv.TAG_VIDEO and flv.is_keyframe(tags[4])
            assert tags[4].timestamp == 0
        recorded = [(t.type, t.data) for p in paths for t in read_tags(p)
                    if t.data not in (HEVC_START, HEVC_METADATA, OPUS_START)
                    and t.type != flv.TAG_SCRIPT]
        assert recorded == [(int(m.type), m.data) for m in source[4:]]

    @pytest.mark.spec("ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_multitrack_parts_begin_at_keyframes_of_the_lowest_track(self, tmp_path: Path) -> None:
        """A part begins where the live GOP cache does: at a keyframe of the default track,
        never at another track's keyframe (track 1 keys every 10 frames, track 0 every 25)."""
        from rtmp.ertmp import AvMultitrackType, TrackData, VideoPacketType, build_video

        def track_frame(track: int, key: bool, n: int) -> bytes:
            return build_video(1 if key else 2, VideoPacketType.CODED_FRAMES,
                               [TrackData("av01", bytes([n % 256]) * 20, track_id=track)],
                               multitrack_type=AvMultitrackType.ONE_TRACK)

        source: List[Message] = [Message(type=MessageType.VIDEO, data=build_video(
            1, VideoPacketType.SEQUENCE_START, [TrackData("av01", b"\x81", track_id=t)
                                                for t in (0, 1)],
            multitrack_type=AvMultitrackType.MANY_TRACKS), message_stream_id=MSID)]
        for i in range(90):
            for track, every in ((0, 25), (1, 10)):
                source.append(Message(type=MessageType.VIDEO, timestamp=i * 40,
                                      data=track_frame(track, i % every == 0, i),
                                      message_stream_id=MSID))
        paths = Parts(tmp_path, max_ms=500).record(source)
        assert len(paths) == 4  # cuts at frames 25, 50, 75 only
        for path in paths:
            first = next(t for t in read_tags(path) if t.type == flv.TAG_VIDEO
                         and not flv.is_sequence_header(t))
            assert first.data[:1] == b"\x96" and first.data[6] == 0  # track 0, keyframe

    @pytest.mark.spec("RTMP 7.1.6")
    def test_aggregates_are_cut_inside(self, tmp_path: Path) -> None:
        """An aggregate spanning a cut point is split: the cut falls at its keyframe."""
        source = media_messages(seconds=3.0, gop_ms=1000, audio=False)
        head, body = source[:2], source[2:]
        grouped = [build_aggregate(body[i:i + 10]) for i in range(0, len(body), 10)]
        paths = Parts(tmp_path, max_ms=1000).record(head + grouped)
        assert len(paths) == 3
        recorded = [(t.type, t.data) for p in paths for t in read_tags(p) if is_frame(t)]
        assert recorded == frames(source)

    @pytest.mark.spec("RTMP 5.3.1", "RTMP 3")
    def test_cut_across_the_32_bit_wrap(self, tmp_path: Path) -> None:
        """A publisher clock that wraps past 0xFFFFFFFF mid-part (about 49.7 days in):
        durations use serial arithmetic, and each part still starts at 0."""
        base = 0xFFFFFFFF - 1500
        source = [m.replace(timestamp=(m.timestamp + base) & 0xFFFFFFFF)
                  for m in media_messages(seconds=5.0, gop_ms=1000, base=0)]
        paths = Parts(tmp_path, max_ms=2000).record(source)
        assert len(paths) == 3
        recorded = []
        for path in paths:
            tags = assert_whole_part(path)
            assert max(t.timestamp for t in tags) < 2100
            recorded += [(t.type, t.data) for t in tags if is_frame(t)]
        assert recorded == frames(source)

    @pytest.mark.spec("FLV E.4.1", "RTMP 5.3.1.3")
    def test_cut_past_the_extended_timestamp_boundary(self, tmp_path: Path) -> None:
        """A stream that runs past 0xFFFFFF ms (4.66 hours; RTMP 5.3.1.3 extended
        timestamps on the wire, FLV TimestampExtended in a file) cuts by elapsed time."""
        base = 0xFFFFFF - 1500
        source = [m.replace(timestamp=m.timestamp + base)
                  for m in media_messages(seconds=5.0, gop_ms=1000)]
        paths = Parts(tmp_path, max_ms=2000).record(source)
        assert len(paths) == 3
        assert sum(1 for p in paths for t in read_tags(p) if is_frame(t)) == len(frames(source))


class TestFinishing:
    @pytest.mark.spec("FLV E.3")
    def test_on_done_for_every_part_in_order_off_the_publisher_thread(
        self, tmp_path: Path
    ) -> None:
        parts = Parts(tmp_path, max_ms=1000)
        paths = parts.record(media_messages(seconds=3.0))
        assert [p for p, _ in parts.done] == paths
        assert {name for _, name in parts.done} == {f"rtmp-rec-done-cam-{STAMP}-0001"}
        assert parts.recorder.parts == paths

    @pytest.mark.spec("FLV E.3", "FLV E.5")
    def test_finished_parts_are_closed_with_their_duration(self, tmp_path: Path) -> None:
        paths = Parts(tmp_path, max_ms=1000).record(media_messages(seconds=3.0))
        for path in paths:
            meta = flv.read_metadata(path)
            assert meta is not None
            last = max(t.timestamp for t in read_tags(path))
            assert meta["duration"] == pytest.approx(last / 1000.0)

    @pytest.mark.spec("FLV E.3")
    def test_slow_callback_never_stalls_the_publisher(self, tmp_path: Path) -> None:
        """on_record_done blocked until released: writes go on at full speed meanwhile;
        close waits for the callbacks (bounded), which then all ran, in order."""
        release = threading.Event()
        seen: List[Path] = []

        def on_done(path: Path) -> None:
            release.wait(5.0)
            seen.append(path)

        index = iter(range(1, 100))
        recorder = SegmentedRecorder(
            lambda: Recorder(part_path(tmp_path, "live", "cam", STAMP, next(index))),
            max_ms=400, on_done=on_done)
        started = time.monotonic()
        for msg in media_messages(seconds=4.0, gop_ms=400):
            recorder.write(msg)
        assert time.monotonic() - started < 2.0
        assert recorder.cuts == 9 and seen == []
        release.set()
        recorder.close()
        assert seen == recorder.parts and len(seen) == 10

    @pytest.mark.spec("FLV E.3")
    def test_callback_errors_are_logged_not_raised(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        def on_done(path: Path) -> None:
            raise RuntimeError("upload failed")

        recorder = SegmentedRecorder(
            lambda: Recorder(part_path(tmp_path, "live", "cam", STAMP, 1)), on_done=on_done)
        recorder.write(media_messages(seconds=0.1)[3])
        recorder.close()
        assert "upload failed" in caplog.text

    @pytest.mark.spec("FLV E.3")
    def test_nothing_published_no_file(self, tmp_path: Path) -> None:
        opened: List[int] = []

        def open_part() -> Recorder:
            opened.append(1)
            return Recorder(tmp_path / "x.flv")

        recorder = SegmentedRecorder(open_part, on_done=lambda p: opened.append(2))
        recorder.close()
        assert opened == [] and not (tmp_path / "x.flv").exists()
        assert recorder.write(media_messages(seconds=0.1)[3]) is False

    @pytest.mark.spec("FLV E.3")
    def test_finished_part_reaches_the_os_at_the_cut(self, tmp_path: Path) -> None:
        """Crash safety of the finished part: its every tag is readable from another
        descriptor right after the cut, before its background close."""
        gate = threading.Event()
        index = iter(range(1, 9))
        recorder = SegmentedRecorder(
            lambda: Recorder(part_path(tmp_path, "live", "cam", STAMP, next(index))),
            max_ms=1000, on_done=lambda p: gate.wait(5.0))
        source = media_messages(seconds=1.5, gop_ms=1000)
        cut = next(i for i, m in enumerate(source) if m.timestamp >= 1000
                   and flv.is_keyframe(m))
        for msg in source[:cut + 1]:
            recorder.write(msg)
        first = part_path(tmp_path, "live", "cam", STAMP, 1)
        assert len(read_tags(first)) == cut  # metadata + headers + every frame before the cut
        gate.set()
        recorder.close()


class TestNamesAndLookup:
    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_part_names_sort_and_are_checked(self, tmp_path: Path) -> None:
        assert part_path(tmp_path, "live", "cam?key=1", STAMP, 7) == (
            tmp_path / "live" / f"cam-{STAMP}-0007.flv")
        assert part_path(tmp_path, "live", "a/b.flv", STAMP, 12345).name == (
            f"b-{STAMP}-12345.flv")
        for bad in (("../x", STAMP, 1), ("cam", "2026", 1), ("cam", STAMP, -1)):
            with pytest.raises(ValueError):
                part_path(tmp_path, "live", *bad)

    @pytest.mark.spec("RTMP 7.2.2.6")
    @given(name=st.text(alphabet=st.sampled_from(list("ab./\\?\x00:C%~ -_")) | st.characters(),
                        max_size=24),
           index=st.integers(0, 10**6))
    def test_any_name_is_refused_or_a_part_inside(
        self, tmp_path_factory: pytest.TempPathFactory, name: str, index: int
    ) -> None:
        root = tmp_path_factory.getbasetemp() / "parts"
        try:
            path = part_path(root, "live", name, STAMP, index)
        except ValueError:
            return
        assert root.resolve() in path.resolve().parents
        assert path.name.endswith(f"-{STAMP}-{index:04d}.flv")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"FLV")
        try:
            assert (index, path) in list_parts(root, "live", name)
        finally:
            path.unlink()

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_play_finds_the_newest_part_or_the_named_one(self, tmp_path: Path) -> None:
        folder = tmp_path / "live"
        folder.mkdir()
        names = [f"cam-20261204T1{i}0000Z-{i:04d}.flv" for i in (1, 2, 3)]
        names.append("cam-20261204T090000Z-10000.flv")  # the clock stepped back; index wins
        for name in names + ["cam2-20261204T230000Z-0099.flv", "cam-notapart.flv"]:
            (folder / name).write_bytes(b"FLV")
        assert [i for i, _ in list_parts(tmp_path, "live", "cam")] == [1, 2, 3, 10000]
        assert find_recording(tmp_path, "live", "cam") == folder / names[3]
        assert find_recording(tmp_path, "live", names[1][:-4]) == folder / names[1]
        (folder / "cam.flv").write_bytes(b"FLV")  # a record-type recording: its own name
        assert find_recording(tmp_path, "live", "cam") == folder / "cam.flv"
        assert find_recording(tmp_path, "live", "none") is None
        assert find_recording(tmp_path, "other", "cam") is None

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_a_miss_is_not_remembered(self, tmp_path: Path) -> None:
        # A play of an application with no folder yet costs one failing system call; a
        # file recorded after that miss (the folder made meanwhile) is found the next time.
        assert find_recording(tmp_path, "live", "cam") is None
        folder = tmp_path / "live"
        folder.mkdir()
        assert find_recording(tmp_path, "live", "cam") is None
        part = folder / f"cam-{STAMP}-0001.flv"
        part.write_bytes(b"FLV")
        assert find_recording(tmp_path, "live", "cam") == part
        (folder / "cam.flv").write_bytes(b"FLV")
        assert find_recording(tmp_path, "live", "cam") == folder / "cam.flv"
        (folder / "sub").mkdir()  # a nested name's folder is the one listed
        (folder / "sub" / "cam.flv").write_bytes(b"FLV")
        assert find_recording(tmp_path, "live", "sub/cam") == folder / "sub" / "cam.flv"

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_linked_parts_are_ignored(self, tmp_path: Path) -> None:
        outside = tmp_path / "outside.flv"
        outside.write_bytes(b"FLV")
        folder = tmp_path / "rec" / "live"
        folder.mkdir(parents=True)
        (folder / f"cam-{STAMP}-0001.flv").symlink_to(outside)
        assert list_parts(tmp_path / "rec", "live", "cam") == []
        assert find_recording(tmp_path / "rec", "live", "cam") is None

    def test_records_app(self) -> None:
        assert records_app(True, "live") and not records_app(False, "live")
        assert records_app({"live", "tv"}, "tv") and not records_app(["live"], "tv")
        assert records_app("live", "live") and not records_app("live", "liv")


class TestParsers:
    @pytest.mark.parametrize("text,seconds", [
        ("30s", 30), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("1.5h", 5400),
        ("90", 90), (" 2M ", 120), ("1d", 86400), ("0.5s", 0.5),
    ])
    def test_durations(self, text: str, seconds: float) -> None:
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "s", "10x", "-1m", "0s", "1h 30m", "ten", "1e3"])
    def test_bad_durations(self, text: str) -> None:
        with pytest.raises(ValueError, match="duration"):
            parse_duration(text)

    @pytest.mark.parametrize("text,size", [
        ("500M", 500 << 20), ("2G", 2 << 30), ("64k", 64 << 10), ("1.5GiB", 3 << 29),
        ("4096", 4096), ("2gb", 2 << 30), ("1T", 1 << 40),
    ])
    def test_sizes(self, text: str, size: int) -> None:
        assert parse_size(text) == size

    @pytest.mark.parametrize("text", ["", "M", "5Q", "0", "-1M", "1.5.5G", "0.1"])
    def test_bad_sizes(self, text: str) -> None:
        with pytest.raises(ValueError, match="size"):
            parse_size(text)


def publish_through(server: Server, name: str, messages: List[Message], app: str = "live",
                    stream_type: StreamType = StreamType.LIVE) -> List[str]:
    """Publish ``messages`` to ``server`` with rtmp.Client; the onStatus codes it saw."""
    codes: List[str] = []
    host, port = server.address
    config = ClientConfig(on_status=lambda event: codes.append(event.code))
    with Client(config) as client:
        client.connect(f"rtmp://{host}:{port}/{app}")
        client.publish(name, stream_type)
        for msg in messages:
            client.write_message(msg.replace(message_stream_id=client.stream_id))
    return codes


class TestServer:
    """ServerConfig(record_all=..., on_record=..., record_segment_*=..., on_record_done=...)."""

    @pytest.mark.spec("RTMP 7.2.2.6", "FLV E.4.3.1")
    def test_live_publish_recorded_in_parts(self, tmp_path: Path) -> None:
        done: List[Path] = []
        config = ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path, record_all=True,
                              record_segment_seconds=2, on_record_done=done.append)
        source = media_messages(seconds=5.0, gop_ms=1000)
        with Server(config) as server:
            codes = publish_through(server, "cam?key=s3cret", source)
            assert commands.NETSTREAM_PUBLISH_START in codes
            # record_all is not announced (nginx-rtmp: record_notify off): an encoder
            # gives up on any error status, and needs none of them.
            assert not [c for c in codes if c.startswith("NetStream.Record.")]
            paths = [p for _, p in list_parts(tmp_path, "live", "cam")]
            assert done == paths and len(paths) == 3
            recorded = [(t.type, t.data) for p in paths for t in read_tags(p) if is_frame(t)]
            assert recorded == frames(source)
            # A second publish goes on numbering after the first one's parts.
            publish_through(server, "cam", media_messages(seconds=1.0))
            assert [i for i, _ in list_parts(tmp_path, "live", "cam")] == [1, 2, 3, 4]
            assert server.recording("live", "cam") == done[-1]

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_per_application_and_per_stream(self, tmp_path: Path) -> None:
        asked: List[Tuple[str, str]] = []

        def on_record(conn: object, app: str, name: str) -> bool:
            asked.append((app, name))
            if name == "boom":
                raise RuntimeError("policy service down")
            return name.startswith("rec")

        config = ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path, record_all={"live"},
                              on_record=on_record)
        with Server(config) as server:
            for app, name in [("live", "rec1"), ("live", "skip"), ("live", "boom"),
                              ("other", "rec2")]:
                codes = publish_through(server, name, media_messages(seconds=0.5), app=app)
                assert commands.NETSTREAM_PUBLISH_START in codes
        assert asked == [("live", "rec1"), ("live", "skip"), ("live", "boom")]
        recorded = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.flv"))
        assert len(recorded) == 1 and recorded[0].startswith("live/rec1-")

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_record_type_unchanged_and_reported_done(self, tmp_path: Path) -> None:
        """Publishing type record still writes <name>.flv (announced, never split, even
        with record_all and a segment length); on_record_done hears of it."""
        done: List[Path] = []
        config = ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path, record_all=True,
                              record_segment_seconds=1, on_record_done=done.append)
        with Server(config) as server:
            codes = publish_through(server, "movie", media_messages(seconds=3.0),
                                    stream_type=StreamType.RECORD)
        assert commands.NETSTREAM_RECORD_START in codes
        assert done == [tmp_path / "live" / "movie.flv"]
        assert list(tmp_path.rglob("*.flv")) == done

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_play_the_newest_part_or_a_named_one(self, tmp_path: Path) -> None:
        config = ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path, record_all=True,
                              record_segment_seconds=1)
        with Server(config) as server:
            publish_through(server, "cam", media_messages(seconds=3.0, gop_ms=1000))
            parts = list_parts(tmp_path, "live", "cam")
            assert len(parts) == 3
            host, port = server.address
            for name, part in [("cam", parts[-1][1]), (parts[0][1].stem, parts[0][1])]:
                wanted = [(t.type, t.data) for t in read_tags(part) if is_frame(t)]
                with Client() as player:
                    player.connect(f"rtmp://{host}:{port}/live")
                    player.play(name, start=0)
                    got = [(int(m.type), bytes(m.data)) for m in player.messages(timeout=10)
                           if m.type in (MessageType.AUDIO, MessageType.VIDEO)
                           and not flv.is_sequence_header(m)]
                assert got == wanted

    @pytest.mark.spec("RTMP 7.2.2.6")
    @pytest.mark.parametrize("name", ["a/../../escape", "x" * 250, "bad\\name"])
    def test_a_name_that_cannot_be_recorded_still_publishes(
        self, tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A peer's stream name that would leave record_dir, or is too long once the
        part suffix is added: the live publish goes on, unrecorded, with a warning."""
        config = ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path / "rec", record_all=True)
        with Server(config) as server:
            codes = publish_through(server, name, media_messages(seconds=0.3))
        assert commands.NETSTREAM_PUBLISH_START in codes
        assert not [c for c in codes if c.startswith("NetStream.Record.")]
        assert not list(tmp_path.rglob("*.flv"))
        assert "cannot record" in caplog.text

    def test_reported_by_the_http_api_without_callbacks(self, tmp_path: Path) -> None:
        """GET /api/server's configuration: the recording options as JSON values."""
        from rtmp.stats import public_config

        shown = public_config(ServerConfig(record_dir=tmp_path, record_all={"tv", "live"},
                                           record_segment_seconds=600, on_record=print,
                                           record_segment_bytes=1 << 20,
                                           on_record_done=print))
        assert shown["record_all"] == ["live", "tv"]
        assert (shown["record_segment_seconds"], shown["record_segment_bytes"]) == (600, 1 << 20)
        assert "on_record" not in shown and "on_record_done" not in shown

    @pytest.mark.parametrize("kwargs,message", [
        ({"record_all": True}, "record_all needs record_dir"),
        ({"record_segment_seconds": 10}, "record_segment_seconds needs record_dir"),
        ({"record_dir": ".", "record_segment_bytes": 0}, "must be positive"),
        ({"record_dir": ".", "record_all": 5}, "bool or application names"),
        ({"record_dir": ".", "record_all": ["live", 1]}, "bool or application names"),
    ])
    def test_config_is_checked(self, kwargs: Dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            ServerConfig(**kwargs)


class TestCommandLine:
    """``rtmp serve --record-all [APPS] --record-segment D --record-max-size S``."""

    def test_flags_reach_the_config(self, tmp_path: Path) -> None:
        args = cli.build_parser().parse_args([
            "serve", "--record-dir", str(tmp_path), "--record-all", "live, tv",
            "--record-segment", "10m", "--record-max-size", "500M"])
        assert args.record_all == frozenset({"live", "tv"})
        assert (args.record_segment, args.record_max_size) == (600.0, 500 << 20)
        everything = cli.build_parser().parse_args(["serve", "--record-dir", ".", "--record-all"])
        assert everything.record_all is True
        assert cli.build_parser().parse_args(["serve"]).record_all is False

    @pytest.mark.parametrize("argv,message", [
        (["--record-dir", ".", "--record-segment", "10x"], "bad duration '10x'"),
        (["--record-dir", ".", "--record-max-size", "big"], "bad size 'big'"),
        (["--record-dir", ".", "--record-all", ","], "application names"),
        (["--record-all"], "--record-all needs --record-dir"),
        (["--record-segment", "1h"], "--record-segment needs --record-dir"),
    ])
    def test_bad_input_is_a_usage_error(self, argv: List[str], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
        try:
            code = cli.main(["serve", "--addr", "127.0.0.1:0", *argv])
        except SystemExit as exc:  # argparse's own usage errors
            code = int(exc.code or 0)
        assert code == 2
        assert message in capsys.readouterr().err
