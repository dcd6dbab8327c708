"""FLV E.2-E.5 against ffmpeg: read what ffmpeg muxes, write what ffprobe accepts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rtmp import flv
from tests.media import sample_flv
from tests.peers import ffprobe_json

pytestmark = pytest.mark.interop


def is_frame(tag: flv.Tag) -> bool:
    """Whether ffprobe reports the tag as a packet: media frames, not codec configuration
    or AVC end-of-sequence (FLV E.4.3.1 AVCPacketType 2)."""
    if tag.type == flv.TAG_SCRIPT or flv.is_sequence_header(tag):
        return False
    if tag.type == flv.TAG_VIDEO:
        return flv.VideoTagHeader.parse(tag.data).packet_type != flv.AVC_END_OF_SEQUENCE
    return True


def media_counts(tags: list[flv.Tag]) -> dict[str, int]:
    """Packets per codec type, as ffprobe_json's ``packet_counts``."""
    return dict(Counter("video" if t.type == flv.TAG_VIDEO else "audio" for t in tags if is_frame(t)))


@pytest.mark.spec("FLV E.2", "FLV E.3", "FLV E.4.1")
def test_reader_sees_every_packet_ffprobe_sees() -> None:
    path = sample_flv()
    with flv.Reader(path, strict=True) as reader:
        tags = list(reader)
        assert reader.has_audio and reader.has_video and not reader.truncated
    probe = ffprobe_json(path)
    assert media_counts(tags) == probe["packet_counts"]
    # FLV E.4.3.1 FrameType 1 is what ffprobe flags "K"; 4 s with a keyframe every second.
    keyframes = sum(1 for t in tags if is_frame(t) and flv.is_keyframe(t))
    video_index = next(s["index"] for s in probe["streams"] if s["codec_type"] == "video")
    probed = sum(1 for p in probe["packets"] if p["stream_index"] == video_index and "K" in p["flags"])
    assert keyframes == probed == 4
    assert [t.timestamp for t in tags if t.type == flv.TAG_VIDEO] == sorted(
        t.timestamp for t in tags if t.type == flv.TAG_VIDEO
    )


@pytest.mark.spec("FLV E.2", "FLV E.3", "FLV E.4.1")
def test_round_trip_is_byte_identical_and_probes_the_same(tmp_path: Path) -> None:
    source = sample_flv()
    copy = tmp_path / "copy.flv"
    with flv.Reader(source) as reader, flv.Writer(copy) as writer:
        for tag in reader:
            writer.write(tag)
    assert copy.read_bytes() == source.read_bytes()
    probe = ffprobe_json(copy)
    assert probe["packet_counts"] == ffprobe_json(source)["packet_counts"]
    assert {s["codec_name"] for s in probe["streams"]} == {"h264", "aac"}


@pytest.mark.spec("FLV E.4.1", "RTMP 7.2.2.6")
def test_messages_to_file_then_append(tmp_path: Path) -> None:
    """Record half as RTMP messages, APPEND the other half rebased to 0: ffprobe reads one
    continuous file with every packet and non-decreasing timestamps."""
    tags = flv.read_all(sample_flv())
    media = [t for t in tags if t.type != flv.TAG_SCRIPT]
    half = len(media) // 2
    first, second = media[:half], media[half:]
    out = tmp_path / "rec.flv"
    with flv.Writer(out) as writer:
        for tag in first:
            writer.write(tag.to_message(message_stream_id=1))
    base = second[0].timestamp
    configs = [t for t in media if flv.is_sequence_header(t)]
    with flv.Writer.open_append(out) as writer:
        for tag in configs + second:
            writer.write(flv.Tag(tag.type, max(tag.timestamp - base, 0), tag.data))
    probe = ffprobe_json(out)
    expected = media_counts(first + second)
    assert probe["packet_counts"] == expected
    video_dts = [int(p["dts"]) for p in probe["packets"] if p["stream_index"] == 0 and "dts" in p]
    assert video_dts == sorted(video_dts)


@pytest.mark.spec("FLV E.3", "FLV E.4.1")
def test_truncated_recording_is_salvaged(tmp_path: Path) -> None:
    data = sample_flv().read_bytes()
    cut = tmp_path / "cut.flv"
    cut.write_bytes(data[: len(data) * 2 // 3 + 5])
    with flv.Reader(cut) as reader:
        tags = list(reader)
        assert reader.truncated
    fixed = tmp_path / "fixed.flv"
    with flv.Writer(fixed) as writer:
        writer.write_all(tags)
    assert ffprobe_json(fixed)["packet_counts"] == media_counts(tags)


@pytest.mark.spec("FLV E.5")
def test_read_metadata_of_ffmpeg_file() -> None:
    path = sample_flv()
    meta = flv.read_metadata(path)
    assert meta is not None
    stream = next(s for s in ffprobe_json(path, packets=False)["streams"] if s["codec_type"] == "video")
    assert (meta["width"], meta["height"]) == (stream["width"], stream["height"]) == (320, 240)
    assert meta["framerate"] == 25
    assert meta["videocodecid"] == flv.CODEC_AVC and meta["audiocodecid"] == flv.SOUND_FORMAT_AAC
