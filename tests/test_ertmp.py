"""ERTMP Enhanced Video / Enhanced Audio: rtmp.ertmp parses and builds the v2 headers.

The byte vectors are built by hand with ``struct`` from the layout of the v2 document (the
ExVideoTagHeader / ExAudioTagHeader pseudo-code), never with :mod:`rtmp.ertmp`'s builders,
so a mistake shared by the parser and the builder cannot hide.
"""

from __future__ import annotations

import struct
from typing import List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtmp import flv
from rtmp.errors import FLVError, RTMPError
from rtmp.ertmp import (
    AUDIO_FOURCCS,
    MAX_MOD_EX_BLOCKS,
    VIDEO_FOURCCS,
    AudioChannelOrder,
    AudioPacketType,
    AvMultitrackType,
    DecodeError,
    ModEx,
    MultichannelConfig,
    TrackData,
    VideoFrameType,
    VideoPacketType,
    audio_tracks,
    build_audio,
    build_video,
    decode_metadata,
    encode_metadata,
    make_fourcc,
    parse_audio,
    parse_video,
    split_audio,
    split_video,
    video_tracks,
)

VIDEO = "ERTMP Enhanced Video"
AUDIO = "ERTMP Enhanced Audio"
MULTITRACK = "ERTMP Multitrack Streaming via Enhanced RTMP"


# -- the v2 layout, by hand ---------------------------------------------------------------
def video_first(frame_type: int, packet_type: int) -> bytes:
    """IsExVideoHeader UB[1] = 1 | VideoFrameType UB[3] | VideoPacketType UB[4]."""
    return struct.pack(">B", 0x80 | (frame_type << 4) | packet_type)


def audio_first(packet_type: int) -> bytes:
    """SoundFormat UB[4] = 9 (ExHeader) | AudioPacketType UB[4]."""
    return struct.pack(">B", (9 << 4) | packet_type)


def si24(value: int) -> bytes:
    return struct.pack(">i", value)[1:]


def ui24(value: int) -> bytes:
    return struct.pack(">I", value)[1:]


def mod_ex(data: bytes, next_packet_type: int, mod_ex_type: int = 0) -> bytes:
    """modExDataSize = UI8 + 1 (UI16 + 1 after the escape 255), data, ModExType | PacketType."""
    size = len(data)
    head = struct.pack(">B", size - 1) if size < 256 else struct.pack(">BH", 255, size - 1)
    return head + data + struct.pack(">B", (mod_ex_type << 4) | next_packet_type)


def multitrack(multitrack_type: int, packet_type: int) -> bytes:
    """AvMultitrackType UB[4] | PacketType UB[4]."""
    return struct.pack(">B", (multitrack_type << 4) | packet_type)


def fourcc(text: str) -> bytes:
    return struct.pack(">I", make_fourcc(text))


def rebuild_video(data: bytes) -> bytes:
    """Parse, then build from what was parsed (for the round trips)."""
    header = parse_video(data)
    if header.command is not None:
        return build_video(header.frame_type, header.packet_type, mod_ex=header.mod_ex,
                           command=header.command)
    tracks = [TrackData(t.fourcc, t.payload(data), t.track_id, t.composition_time) for t in header.tracks]
    return build_video(header.frame_type, header.packet_type, tracks,
                       multitrack_type=header.multitrack_type, mod_ex=header.mod_ex)


def rebuild_audio(data: bytes) -> bytes:
    header = parse_audio(data)
    tracks = [TrackData(t.fourcc, t.payload(data), t.track_id) for t in header.tracks]
    return build_audio(header.packet_type, tracks, multitrack_type=header.multitrack_type,
                       mod_ex=header.mod_ex)


# -- FourCCs and packet types ------------------------------------------------------------------
class TestVideoFourCcs:
    """Every VideoFourCc with every plain VideoPacketType."""

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Simple Data Types")
    @pytest.mark.parametrize("code", ["avc1", "hvc1", "av01", "vp09", "vp08", "vvc1"])
    @pytest.mark.parametrize("packet_type", [0, 1, 2, 3, 4, 5])
    def test_every_fourcc_and_packet_type(self, code: str, packet_type: int) -> None:
        body = b"codec-data"
        cts = packet_type == 1 and code in ("avc1", "hvc1", "vvc1")
        data = video_first(1, packet_type) + fourcc(code) + (si24(-40) if cts else b"") + body
        header = parse_video(data)
        (track,) = header.tracks
        assert (header.frame_type, header.packet_type, header.fourcc) == (1, packet_type, code)
        assert (track.fourcc, track.track_id, track.packet_type, track.known) == (code, 0, packet_type, True)
        assert track.composition_time == (-40 if cts else 0)
        assert track.start == 5 and track.offset == (8 if cts else 5) and track.end == len(data)
        assert track.payload(data) == body and track.codec_name == VIDEO_FOURCCS[code]
        assert track.is_sequence_start == (packet_type in (0, 5))
        assert track.is_keyframe == (packet_type in (1, 3))
        assert track.is_config == (packet_type in (0, 4, 5))
        assert header.is_keyframe == track.is_keyframe and not header.is_multitrack
        built = build_video(1, packet_type, [TrackData(code, body, composition_time=-40 if cts else 0)])
        assert built == data

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Simple Data Types")
    def test_fourcc_is_a_big_endian_ui32(self) -> None:
        assert make_fourcc("hvc1") == 0x68766331
        assert make_fourcc("Opus") == 1332770163  # the document's own example
        assert fourcc("av01") == b"av01"
        with pytest.raises(ValueError):
            make_fourcc("avc")

    @pytest.mark.spec("ERTMP Enhanced Video")
    @pytest.mark.parametrize("value", [0, 1, -1, 0x7FFFFF, -0x800000, 33])
    def test_composition_time_is_si24(self, value: int) -> None:
        data = video_first(2, 1) + fourcc("avc1") + si24(value) + b"NAL"
        assert parse_video(data).tracks[0].composition_time == value
        assert build_video(2, 1, [TrackData("avc1", b"NAL", composition_time=value)]) == data

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_coded_frames_x_has_no_composition_time(self) -> None:
        data = video_first(1, 3) + fourcc("hvc1") + b"\x00\x00\x00\x01NAL"
        track = parse_video(data).tracks[0]
        assert track.composition_time == 0 and track.offset == 5 and track.is_keyframe

    @pytest.mark.spec("ERTMP Enhanced Video")
    @pytest.mark.parametrize("frame_type", [1, 2, 3, 4])
    def test_only_frame_type_1_coded_frames_are_keyframes(self, frame_type: int) -> None:
        data = video_first(frame_type, 3) + fourcc("av01") + b"obu"
        assert parse_video(data).is_keyframe == (frame_type == 1)
        assert flv.is_keyframe(flv.Tag(9, 0, data)) == (frame_type == 1)


class TestAudioFourCcs:
    """Every AudioFourCc with AudioPacketType 0, 1, 2 and 4."""

    @pytest.mark.spec("ERTMP Enhanced Audio", "ERTMP Simple Data Types")
    @pytest.mark.parametrize("code", ["mp4a", "Opus", "fLaC", ".mp3", "ac-3", "ec-3"])
    @pytest.mark.parametrize("packet_type", [0, 1, 2])
    def test_every_fourcc_and_packet_type(self, code: str, packet_type: int) -> None:
        data = audio_first(packet_type) + fourcc(code) + b"frame"
        header = parse_audio(data)
        (track,) = header.tracks
        assert (header.packet_type, header.fourcc, track.track_id) == (packet_type, code, 0)
        assert track.offset == 5 and track.payload(data) == b"frame" and track.frame_type is None
        assert track.is_sequence_start == (packet_type == 0) and not track.is_keyframe
        assert track.codec_name == AUDIO_FOURCCS[code]
        assert build_audio(packet_type, [TrackData(code, b"frame")]) == data

    @pytest.mark.spec("ERTMP Enhanced Audio")
    def test_opus_sequence_start_may_be_empty(self) -> None:
        data = audio_first(0) + fourcc("Opus")
        (track,) = parse_audio(data).tracks
        assert track.is_sequence_start and track.size == 0
        assert flv.is_sequence_header(flv.Tag(8, 0, data))

    @pytest.mark.spec("ERTMP Enhanced Audio")
    def test_multichannel_config_native(self) -> None:
        # AudioChannelOrder Native (1), channelCount 6, audioChannelFlags UI32 (5.1: FL FR FC LFE1 BL BR).
        body = struct.pack(">BBI", 1, 6, 0x3F)
        data = audio_first(4) + fourcc("Opus") + body
        (track,) = parse_audio(data).tracks
        assert track.multichannel == MultichannelConfig(AudioChannelOrder.NATIVE, 6, flags=0x3F)
        assert track.is_config and not track.is_sequence_start
        assert MultichannelConfig(1, 6, flags=0x3F).encode() == body
        assert build_audio(4, [TrackData("Opus", body)]) == data

    @pytest.mark.spec("ERTMP Enhanced Audio")
    def test_multichannel_config_custom_and_unspecified(self) -> None:
        body = struct.pack(">BB3B", 2, 3, 0, 1, 0xFF)  # Custom: FrontLeft, FrontRight, Unknown
        (track,) = parse_audio(audio_first(4) + fourcc("ac-3") + body).tracks
        assert track.multichannel == MultichannelConfig(2, 3, mapping=(0, 1, 0xFF))
        assert MultichannelConfig(2, 3, mapping=(0, 1, 0xFF)).encode() == body
        (plain,) = parse_audio(audio_first(4) + fourcc("Opus") + struct.pack(">BB", 0, 2)).tracks
        assert plain.multichannel == MultichannelConfig(0, 2)

    @pytest.mark.spec("ERTMP Enhanced Audio")
    @pytest.mark.parametrize("body, what", [
        (b"\x01", "need 2"),
        (struct.pack(">BB", 1, 6) + b"\x00\x00", "UI32 flags"),
        (struct.pack(">BB", 2, 4) + b"\x00\x01", "maps 4 channels"),
    ])  # fmt: skip
    def test_short_multichannel_config(self, body: bytes, what: str) -> None:
        with pytest.raises(DecodeError, match=what) as info:
            parse_audio(audio_first(4) + fourcc("Opus") + body)
        assert info.value.clause == AUDIO


# -- ModEx ---------------------------------------------------------------------------------------
class TestModEx:
    """ModEx blocks come first; TimestampOffsetNano is a UI24 of at most 999,999 ns."""

    @pytest.mark.spec("ERTMP Enhanced Video")
    @pytest.mark.parametrize("nanos", [0, 1, 500_000, 999_999])
    def test_timestamp_offset_nano(self, nanos: int) -> None:
        data = video_first(1, 7) + mod_ex(ui24(nanos), 1) + fourcc("avc1") + si24(0) + b"NAL"
        header = parse_video(data)
        assert header.nano_offset == nanos and header.packet_type == 1
        assert header.tracks[0].payload(data) == b"NAL"
        built = build_video(1, 1, [TrackData("avc1", b"NAL")], mod_ex=[ModEx.timestamp_offset_nano(nanos)])
        assert built == data

    @pytest.mark.spec("ERTMP Enhanced Audio")
    def test_audio_timestamp_offset_nano(self) -> None:
        data = audio_first(7) + mod_ex(ui24(250_000), 1) + fourcc("Opus") + b"pkt"
        header = parse_audio(data)
        assert header.nano_offset == 250_000 and header.fourcc == "Opus" and header.packet_type == 1

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_longer_data_uses_its_first_three_bytes(self) -> None:
        data = video_first(1, 7) + mod_ex(ui24(7) + b"\xff\xff", 0) + fourcc("vp09") + b"cfg"
        assert parse_video(data).nano_offset == 7

    @pytest.mark.spec("ERTMP Enhanced Video")
    @pytest.mark.parametrize("size", [256, 300, 65536])
    def test_size_escape_256_reads_a_ui16(self, size: int) -> None:
        block = bytes(size)  # unknown ModEx type 1: passed over, kept as read
        data = video_first(2, 7) + mod_ex(block, 3, mod_ex_type=1) + fourcc("hvc1") + b"NAL"
        assert data[1] == 255 and struct.unpack(">H", data[2:4])[0] == size - 1
        header = parse_video(data)
        assert header.mod_ex == (ModEx(1, block),) and header.nano_offset == 0
        assert header.tracks[0].payload(data) == b"NAL"
        assert rebuild_video(data) == data

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_escape_with_a_small_ui16_is_read(self) -> None:
        # Non-canonical but legal: UI8 255 (size 256) then UI16 2 (size 3).
        data = video_first(1, 7) + b"\xff\x00\x02" + ui24(9) + b"\x00" + fourcc("av01") + b"c"
        assert parse_video(data).nano_offset == 9

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_chained_blocks_and_the_last_nano_offset_wins(self) -> None:
        data = (video_first(1, 7) + mod_ex(ui24(5), 7) + mod_ex(b"x", 7, mod_ex_type=3)
                + mod_ex(ui24(6), 0) + fourcc("hvc1") + b"cfg")
        header = parse_video(data)
        assert [m.type for m in header.mod_ex] == [0, 3, 0] and header.nano_offset == 6
        assert header.tracks[0].is_sequence_start and rebuild_video(data) == data

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_mod_ex_then_command_frame(self) -> None:
        data = video_first(5, 7) + mod_ex(ui24(1), 1) + b"\x01"
        header = parse_video(data)
        assert header.command == 1 and header.tracks == () and header.nano_offset == 1
        assert rebuild_video(data) == data


class TestModExHostile:
    """ERTMP Enhanced Video/Audio: bad ModEx blocks fail clearly, and in bounded time."""

    @pytest.mark.spec("ERTMP Enhanced Video")
    @pytest.mark.parametrize("nanos", [1_000_000, 0xFFFFFF])
    def test_nano_offset_over_999999(self, nanos: int) -> None:
        data = video_first(1, 7) + mod_ex(ui24(nanos), 1) + fourcc("avc1") + si24(0)
        with pytest.raises(DecodeError, match="999999") as info:
            parse_video(data)
        assert info.value.clause == VIDEO and "ERTMP Enhanced Video" in str(info.value)
        with pytest.raises(ValueError):
            ModEx.timestamp_offset_nano(nanos)

    @pytest.mark.spec("ERTMP Enhanced Audio")
    def test_audio_nano_offset_over_999999(self) -> None:
        with pytest.raises(DecodeError, match="ERTMP Enhanced Audio"):
            parse_audio(audio_first(7) + mod_ex(ui24(1_000_000), 1) + fourcc("Opus"))

    @pytest.mark.spec("ERTMP Enhanced Video")
    @pytest.mark.parametrize("size", [1, 2])
    def test_nano_offset_needs_three_bytes(self, size: int) -> None:
        with pytest.raises(DecodeError, match="at least 3"):
            parse_video(video_first(1, 7) + mod_ex(bytes(size), 0) + fourcc("avc1"))

    @pytest.mark.spec("ERTMP Enhanced Video")
    @pytest.mark.parametrize("raw, what", [
        (b"", "size byte"),
        (b"\xff", "UI16"),
        (b"\xff\x00", "UI16"),
        (b"\x02\x00\x00\x01", "overruns"),
        (b"\xff\x01\x00" + bytes(200), "overruns"),
    ])  # fmt: skip
    def test_truncated_blocks(self, raw: bytes, what: str) -> None:
        with pytest.raises(DecodeError, match=what):
            parse_video(video_first(1, 7) + raw)

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_endless_mod_ex_chain_is_cut_at_the_cap(self) -> None:
        # 20,000 blocks that each announce another ModEx: refused after MAX_MOD_EX_BLOCKS.
        data = video_first(1, 7) + mod_ex(ui24(1), 7) * 20_000
        with pytest.raises(DecodeError, match=f"more than {MAX_MOD_EX_BLOCKS} ModEx"):
            parse_video(data)
        assert MAX_MOD_EX_BLOCKS == 64
        assert not flv.is_keyframe(flv.Tag(9, 0, data)) and video_tracks(data) == ()


# -- command frames and Metadata ---------------------------------------------------------------------
class TestCommandAndMetadata:
    """A command frame has one UI8 and no FourCC, unless the packet type is Metadata."""

    @pytest.mark.spec("ERTMP Enhanced Video")
    @pytest.mark.parametrize("command", [0, 1])
    def test_command_frame(self, command: int) -> None:
        data = video_first(5, 1) + struct.pack(">B", command)
        header = parse_video(data)
        assert header.command == command and header.tracks == () and header.fourcc is None
        assert header.header_size == 2 and not header.is_keyframe
        assert build_video(VideoFrameType.COMMAND, VideoPacketType.CODED_FRAMES, command=command) == data
        assert not flv.is_keyframe(flv.Tag(9, 0, data)) and not flv.is_sequence_header(flv.Tag(9, 0, data))

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Metadata Frame")
    def test_metadata_with_frame_type_5_is_not_a_command(self) -> None:
        color = {"colorConfig": {"bitDepth": 10.0, "colorPrimaries": 9.0,
                                 "transferCharacteristics": 16.0, "matrixCoefficients": 9.0}}
        # AMF0: string "colorInfo", then an anonymous object (markers 0x02, 0x03).
        body = b"\x02\x00\x09colorInfo" + b"\x03" + b"\x00\x0bcolorConfig" + b"\x03"
        for key in ("bitDepth", "colorPrimaries", "transferCharacteristics", "matrixCoefficients"):
            body += struct.pack(">H", len(key)) + key.encode() + b"\x00" + struct.pack(">d", color["colorConfig"][key])
        body += b"\x00\x00\x09" + b"\x00\x00\x09"
        data = video_first(5, 4) + fourcc("hvc1") + body
        header = parse_video(data)
        assert header.command is None and header.is_metadata and header.fourcc == "hvc1"
        (track,) = header.tracks
        assert track.is_config and not track.is_keyframe and not track.is_sequence_start
        assert decode_metadata(track.payload(data)) == [("colorInfo", color)]
        assert encode_metadata([("colorInfo", color)]) == body
        legacy = flv.VideoTagHeader.parse(data)
        assert legacy.command is None and not legacy.is_keyframe and not legacy.is_sequence_header
        assert "command" not in flv.describe_video(data) and "seek" not in flv.describe_video(data)
        assert "Metadata" in flv.describe_video(data)

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Metadata Frame")
    def test_metadata_with_frame_type_1_is_not_a_keyframe(self) -> None:
        data = video_first(1, 4) + fourcc("av01") + b"\x02\x00\x09colorInfo\x06"  # colorInfo = undefined
        assert not flv.is_keyframe(flv.Tag(9, 0, data))
        assert not parse_video(data).is_keyframe
        assert decode_metadata(parse_video(data).tracks[0].payload(data))[0][0] == "colorInfo"
        multi = video_first(1, 6) + multitrack(0, 4) + fourcc("av01") + b"\x00" + b"\x02\x00\x01x\x05"
        assert not flv.is_keyframe(flv.Tag(9, 0, multi))
        with_mod_ex = video_first(1, 7) + mod_ex(ui24(3), 4) + fourcc("av01") + b"\x02\x00\x01x\x05"
        assert not flv.is_keyframe(flv.Tag(9, 0, with_mod_ex))

    @pytest.mark.spec("ERTMP Metadata Frame")
    @pytest.mark.parametrize("body", [b"\x02\x00\x09colorInfo", b"\x00" + struct.pack(">d", 1.0), b"\x99"])
    def test_bad_metadata_body(self, body: bytes) -> None:
        with pytest.raises(DecodeError, match="ERTMP Metadata Frame"):
            decode_metadata(body)

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_command_without_its_byte(self) -> None:
        with pytest.raises(DecodeError, match="VideoCommand"):
            parse_video(video_first(5, 1))


# -- Multitrack ------------------------------------------------------------------------------------
class TestMultitrack:
    """Video Multitrack is packet type 6, audio 5; per-track trackId and UI24 size."""

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_video_one_track(self) -> None:
        data = video_first(1, 6) + multitrack(0, 1) + fourcc("hvc1") + b"\x02" + si24(80) + b"NAL"
        header = parse_video(data)
        assert header.multitrack_type == AvMultitrackType.ONE_TRACK and header.packet_type == 1
        (track,) = header.tracks
        assert (track.fourcc, track.track_id, track.composition_time) == ("hvc1", 2, 80)
        assert track.payload(data) == b"NAL" and track.is_keyframe
        assert build_video(1, 1, [TrackData("hvc1", b"NAL", 2, 80)], multitrack_type=0) == data

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_video_many_tracks(self) -> None:
        track0 = si24(0) + b"AAAA"
        track1 = si24(-33) + b"BB"
        data = (video_first(1, 6) + multitrack(1, 1) + fourcc("avc1")
                + b"\x00" + ui24(len(track0)) + track0 + b"\x01" + ui24(len(track1)) + track1)
        header = parse_video(data)
        assert [(t.fourcc, t.track_id, t.composition_time) for t in header.tracks] == [
            ("avc1", 0, 0), ("avc1", 1, -33)]
        assert [t.payload(data) for t in header.tracks] == [b"AAAA", b"BB"]
        assert header.header_size == 6  # the first trackId follows the shared FourCC
        built = build_video(1, 1, [TrackData("avc1", b"AAAA", 0, 0), TrackData("avc1", b"BB", 1, -33)],
                            multitrack_type=1)
        assert built == data

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_video_many_tracks_many_codecs(self) -> None:
        hvcc, av1c, vpcc = b"hvcC-record", b"av1C", b"vpcC!"
        data = (video_first(1, 6) + multitrack(2, 0)
                + fourcc("hvc1") + b"\x00" + ui24(len(hvcc)) + hvcc
                + fourcc("av01") + b"\x01" + ui24(len(av1c)) + av1c
                + fourcc("vp09") + b"\x02" + ui24(len(vpcc)) + vpcc)
        header = parse_video(data)
        keys = [(t.fourcc, t.track_id) for t in header.tracks]
        assert keys == [("hvc1", 0), ("av01", 1), ("vp09", 2)]
        assert all(t.is_sequence_start and t.is_config for t in header.tracks)
        assert [t.payload(data) for t in header.tracks] == [hvcc, av1c, vpcc]
        assert flv.is_sequence_header(flv.Tag(9, 0, data)) and flv.is_keyframe(flv.Tag(9, 0, data))
        assert [t.fourcc for t in flv.VideoTagHeader.parse(data).tracks] == ["hvc1", "av01", "vp09"]
        assert rebuild_video(data) == data

    @pytest.mark.spec("ERTMP Enhanced Audio", "ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_audio_multitrack_is_5(self) -> None:
        data = (audio_first(5) + multitrack(2, 0)
                + fourcc("Opus") + b"\x00" + ui24(2) + b"OH"
                + fourcc("mp4a") + b"\x01" + ui24(2) + b"\x12\x10")
        header = parse_audio(data)
        assert header.multitrack_type == 2 and header.packet_type == AudioPacketType.SEQUENCE_START
        assert [(t.fourcc, t.track_id, t.is_sequence_start) for t in header.tracks] == [
            ("Opus", 0, True), ("mp4a", 1, True)]
        assert audio_tracks(data) == header.tracks and flv.is_sequence_header(flv.Tag(8, 0, data))
        assert rebuild_audio(data) == data
        one = audio_first(5) + multitrack(0, 1) + fourcc("mp4a") + b"\x03" + b"raw"
        assert [(t.track_id, t.payload(one)) for t in parse_audio(one).tracks] == [(3, b"raw")]
        many = audio_first(5) + multitrack(1, 1) + fourcc("Opus") + b"\x00" + ui24(1) + b"a" + b"\x01" + ui24(0)
        assert [(t.track_id, t.size) for t in parse_audio(many).tracks] == [(0, 1), (1, 0)]

    @pytest.mark.spec("ERTMP Enhanced Audio")
    def test_audio_packet_type_6_is_reserved(self) -> None:
        # 6 is Multitrack for video only; for audio it is reserved (and 3 too).
        for reserved in (3, 6, 8, 15):
            with pytest.raises(DecodeError, match=f"reserved AudioPacketType {reserved}"):
                parse_audio(audio_first(reserved) + fourcc("Opus") + b"\x00")

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_video_packet_type_5_is_mpeg2ts_sequence_start(self) -> None:
        data = video_first(1, 5) + fourcc("av01") + b"descriptor"
        header = parse_video(data)
        assert not header.is_multitrack and header.tracks[0].is_sequence_start

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_mod_ex_before_multitrack(self) -> None:
        data = (video_first(1, 7) + mod_ex(ui24(123), 6) + multitrack(1, 3) + fourcc("hvc1")
                + b"\x00" + ui24(1) + b"a" + b"\x01" + ui24(1) + b"b")
        header = parse_video(data)
        assert header.nano_offset == 123 and header.packet_type == 3
        assert [t.payload(data) for t in header.tracks] == [b"a", b"b"] and rebuild_video(data) == data


class TestMultitrackHostile:
    """Track sizes and counts that lie, reserved values: DecodeError naming the section."""

    @pytest.mark.spec("ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_track_size_larger_than_the_message(self) -> None:
        data = video_first(1, 6) + multitrack(1, 3) + fourcc("hvc1") + b"\x00" + ui24(5000) + b"short"
        with pytest.raises(DecodeError, match="says 5000 bytes but 5 remain") as info:
            parse_video(data)
        assert info.value.clause == MULTITRACK
        assert video_tracks(data) == () and not flv.is_sequence_header(flv.Tag(9, 0, data))

    @pytest.mark.spec("ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_second_track_lies(self) -> None:
        data = (audio_first(5) + multitrack(1, 1) + fourcc("Opus")
                + b"\x00" + ui24(1) + b"a" + b"\x01" + ui24(0xFFFFFF))
        with pytest.raises(DecodeError, match="track 1 .trackId 1. says 16777215"):
            parse_audio(data)

    @pytest.mark.spec("ERTMP Multitrack Streaming via Enhanced RTMP")
    @pytest.mark.parametrize("tail, what", [
        (b"", "no track"),
        (b"\x00\x00", "UI24 size"),
    ])  # fmt: skip
    def test_missing_track_fields(self, tail: bytes, what: str) -> None:
        with pytest.raises(DecodeError, match=what):
            parse_video(video_first(1, 6) + multitrack(1, 1) + fourcc("vp09") + tail)

    @pytest.mark.spec("ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_one_track_without_its_track_id(self) -> None:
        with pytest.raises(DecodeError, match="trackId"):
            parse_video(video_first(1, 6) + multitrack(0, 0) + fourcc("vp09"))

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_many_codecs_track_without_a_fourcc(self) -> None:
        data = video_first(1, 6) + multitrack(2, 0) + fourcc("hvc1") + b"\x00" + ui24(1) + b"x" + b"av"
        with pytest.raises(DecodeError, match="FourCC"):
            parse_video(data)

    @pytest.mark.spec("ERTMP Enhanced Video")
    @pytest.mark.parametrize("byte, what", [
        (multitrack(3, 1), "reserved AvMultitrackType 3"),
        (multitrack(15, 1), "reserved AvMultitrackType 15"),
        (multitrack(1, 6), "inside Multitrack"),
        (multitrack(1, 7), "inside Multitrack"),
        (multitrack(1, 9), "inside Multitrack"),
    ])  # fmt: skip
    def test_reserved_multitrack_bytes(self, byte: bytes, what: str) -> None:
        with pytest.raises(DecodeError, match=what):
            parse_video(video_first(1, 6) + byte + fourcc("avc1") + b"\x00" + ui24(0))

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_composition_time_cut_by_the_track_size(self) -> None:
        data = video_first(1, 6) + multitrack(1, 1) + fourcc("avc1") + b"\x00" + ui24(2) + b"\x00\x00"
        with pytest.raises(DecodeError, match="SI24"):
            parse_video(data)

    @pytest.mark.spec("ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_many_empty_tracks_parse_in_one_pass(self) -> None:
        # 16,384 tracks of 0 bytes in a 64 KiB message: one pass, offsets only.
        count = 16_384
        data = video_first(2, 6) + multitrack(1, 3) + fourcc("vp09") + (b"\x07" + ui24(0)) * count
        tracks = parse_video(data).tracks
        assert len(tracks) == count and tracks[-1].end == len(data)


class TestReservedAndUnknown:
    """Unrecognised critical values fail in a controlled way; unknown FourCCs pass only on request."""

    @pytest.mark.spec("ERTMP Enhanced Video")
    @pytest.mark.parametrize("frame_type", [0, 6, 7])
    def test_reserved_frame_types(self, frame_type: int) -> None:
        with pytest.raises(DecodeError, match=f"reserved VideoFrameType {frame_type}"):
            parse_video(video_first(frame_type, 1) + fourcc("av01") + b"obu")
        # Metadata ignores the frame type, in a multitrack message too.
        assert parse_video(video_first(frame_type, 4) + fourcc("av01") + b"\x05").is_metadata
        multi = video_first(frame_type, 6) + multitrack(0, 4) + fourcc("av01") + b"\x01\x05"
        assert parse_video(multi).tracks[0].is_config
        with pytest.raises(DecodeError, match=f"reserved VideoFrameType {frame_type}"):
            parse_video(video_first(frame_type, 6) + multitrack(0, 1) + fourcc("av01") + b"\x01")

    @pytest.mark.spec("ERTMP Enhanced Video")
    @pytest.mark.parametrize("packet_type", range(8, 16))
    def test_reserved_video_packet_types(self, packet_type: int) -> None:
        with pytest.raises(DecodeError, match=f"reserved VideoPacketType {packet_type}"):
            parse_video(video_first(1, packet_type) + fourcc("av01"))

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_unknown_video_fourcc(self) -> None:
        data = video_first(1, 1) + b"xyz1" + b"payload"
        with pytest.raises(DecodeError, match="unknown video FourCC 'xyz1'") as info:
            parse_video(data)
        assert isinstance(info.value, FLVError) and isinstance(info.value, RTMPError)
        # A relay forwards codecs it does not know (fourCcList "*"): pass-through on request.
        (track,) = parse_video(data, allow_unknown=True).tracks
        assert not track.known and track.fourcc == "xyz1" and track.offset == 5
        assert track.composition_time == 0 and track.is_keyframe
        assert video_tracks(data) == (track,) and flv.is_keyframe(flv.Tag(9, 0, data))
        assert video_tracks(data, allow_unknown=False) == ()

    @pytest.mark.spec("ERTMP Enhanced Audio")
    def test_unknown_audio_fourcc(self) -> None:
        data = audio_first(0) + b"abcd" + b"cfg"
        with pytest.raises(DecodeError, match="unknown audio FourCC 'abcd'"):
            parse_audio(data)
        assert parse_audio(data, allow_unknown=True).tracks[0].is_sequence_start
        assert flv.is_sequence_header(flv.Tag(8, 0, data))

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio")
    def test_legacy_and_empty_payloads(self) -> None:
        for data in (b"", b"\x17\x00\x00\x00\x00", b"\xaf\x00"):
            assert video_tracks(data) == () and audio_tracks(data) == ()
        with pytest.raises(DecodeError, match="IsExVideoHeader is 0"):
            parse_video(b"\x17\x00")
        with pytest.raises(DecodeError, match="not 9"):
            parse_audio(b"\xaf\x00")
        with pytest.raises(DecodeError, match="empty"):
            parse_audio(b"")
        with pytest.raises(DecodeError, match="before its FourCC"):
            parse_video(video_first(1, 0) + b"hv")


# -- the builders refuse what cannot be written ------------------------------------------------------
class TestBuildArguments:
    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_bad_arguments(self) -> None:
        with pytest.raises(ValueError, match="several tracks"):
            build_video(1, 1, [TrackData("avc1"), TrackData("avc1", track_id=1)])
        with pytest.raises(ValueError, match="ManyTracksManyCodecs"):
            build_video(1, 1, [TrackData("avc1"), TrackData("hvc1")], multitrack_type=1)
        with pytest.raises(ValueError, match="at least one track"):
            build_audio(1, [])
        with pytest.raises(ValueError, match="real packet type"):
            build_video(1, VideoPacketType.MULTITRACK, [TrackData("avc1")])
        with pytest.raises(ValueError, match="SI24"):
            build_video(1, 1, [TrackData("avc1", composition_time=1 << 23)])
        with pytest.raises(ValueError, match="VideoCommand"):
            build_video(1, 1, command=0)
        with pytest.raises(ValueError, match="four characters"):
            build_audio(1, [TrackData("mp3")])
        with pytest.raises(ValueError, match="1..65536"):
            build_video(1, 1, [TrackData("av01")], mod_ex=[ModEx(1, b"")])


# -- round trips -----------------------------------------------------------------------------------
_bodies = st.binary(max_size=40)
_nanos = st.integers(0, 999_999).map(ModEx.timestamp_offset_nano)
_other_mod_ex = st.builds(ModEx, st.integers(1, 15), st.binary(min_size=1, max_size=300))
_mod_ex_lists = st.lists(st.one_of(_nanos, _other_mod_ex), max_size=3)


@st.composite
def video_messages(draw: st.DrawFn) -> Tuple[int, int, Optional[int], List[TrackData], List[ModEx]]:
    frame_type = draw(st.integers(1, 4))
    packet_type = draw(st.sampled_from([0, 1, 2, 3, 4, 5]))
    multitrack_type = draw(st.sampled_from([None, 0, 1, 2]))
    count = 1 if multitrack_type in (None, 0) else draw(st.integers(1, 4))
    shared = draw(st.sampled_from(sorted(VIDEO_FOURCCS)))
    tracks = []
    for _ in range(count):
        code = draw(st.sampled_from(sorted(VIDEO_FOURCCS))) if multitrack_type == 2 else shared
        cts = draw(st.integers(-0x800000, 0x7FFFFF)) if packet_type == 1 and code in ("avc1", "hvc1", "vvc1") else 0
        track_id = draw(st.integers(0, 255)) if multitrack_type is not None else 0
        tracks.append(TrackData(code, draw(_bodies), track_id, cts))
    return frame_type, packet_type, multitrack_type, tracks, draw(_mod_ex_lists)


class TestRoundTrips:
    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Multitrack Streaming via Enhanced RTMP")
    @given(video_messages())
    def test_video_build_then_parse(
        self, message: Tuple[int, int, Optional[int], List[TrackData], List[ModEx]]
    ) -> None:
        frame_type, packet_type, multitrack_type, tracks, blocks = message
        data = build_video(frame_type, packet_type, tracks, multitrack_type=multitrack_type, mod_ex=blocks)
        header = parse_video(data)
        assert (header.frame_type, header.packet_type, header.multitrack_type) == (
            frame_type, packet_type, multitrack_type)
        assert list(header.mod_ex) == blocks
        got = [TrackData(t.fourcc, t.payload(data), t.track_id, t.composition_time) for t in header.tracks]
        assert got == tracks
        assert rebuild_video(data) == data
        assert flv.is_sequence_header(flv.Tag(9, 0, data)) == (packet_type in (0, 5))
        assert flv.is_keyframe(flv.Tag(9, 0, data)) == (frame_type == 1 and packet_type != 4)

    @pytest.mark.spec("ERTMP Enhanced Audio", "ERTMP Multitrack Streaming via Enhanced RTMP")
    @given(
        st.sampled_from([0, 1, 2]),
        st.sampled_from([None, 0, 1, 2]),
        st.lists(st.tuples(st.sampled_from(sorted(AUDIO_FOURCCS)), _bodies, st.integers(0, 255)),
                 min_size=1, max_size=4),
        _mod_ex_lists,
    )
    def test_audio_build_then_parse(
        self, packet_type: int, multitrack_type: Optional[int],
        raw: List[Tuple[str, bytes, int]], blocks: List[ModEx],
    ) -> None:
        if multitrack_type in (None, 0):
            raw = raw[:1]
        if multitrack_type == 1:
            raw = [(raw[0][0], body, track_id) for _, body, track_id in raw]
        tracks = [TrackData(code, body, track_id if multitrack_type is not None else 0)
                  for code, body, track_id in raw]
        data = build_audio(packet_type, tracks, multitrack_type=multitrack_type, mod_ex=blocks)
        header = parse_audio(data)
        assert (header.packet_type, header.multitrack_type, list(header.mod_ex)) == (
            packet_type, multitrack_type, blocks)
        assert [TrackData(t.fourcc, t.payload(data), t.track_id) for t in header.tracks] == tracks
        assert flv.is_sequence_header(flv.Tag(8, 0, data)) == (packet_type == 0)

    @pytest.mark.spec("ERTMP Enhanced Audio")
    @given(st.sampled_from([0, 1, 2]), st.integers(0, 255), st.binary(max_size=8), st.integers(0, 0xFFFFFFFF))
    def test_multichannel_config_round_trip(self, order: int, count: int, mapping: bytes, flags: int) -> None:
        if order == 2:
            config = MultichannelConfig(order, len(mapping), mapping=tuple(mapping))
        elif order == 1:
            config = MultichannelConfig(order, count, flags=flags)
        else:
            config = MultichannelConfig(order, count)
        assert MultichannelConfig.decode(config.encode()) == config


class TestArbitraryBytes:
    """Whatever the bytes: a DecodeError or a header whose offsets lie inside the message."""

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio")
    @given(st.sampled_from([b"\x80", b"\x90", b"\x96", b"\x97", b"\xd0", b"\x95"]), st.binary(max_size=40))
    def test_parsers_raise_only_decode_error(self, first: bytes, rest: bytes) -> None:
        data = first + rest
        for parse, allow in ((parse_video, False), (parse_video, True), (parse_audio, True)):
            try:
                header = parse(data, allow_unknown=allow)
            except DecodeError as exc:
                assert exc.clause.startswith("ERTMP ")
                continue
            previous_end = 0
            for track in header.tracks:
                assert previous_end <= track.start <= track.offset <= track.end <= len(data)
                previous_end = track.end
            assert 1 <= header.header_size <= len(data)
        assert isinstance(video_tracks(data), tuple) and isinstance(audio_tracks(data), tuple)


class TestSplit:
    """ERTMP Multitrack: one message per track, for caches keyed by (FourCC, trackId)."""

    @pytest.mark.spec("ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_split_many_codecs_sequence_start(self) -> None:
        data = (video_first(1, 7) + mod_ex(ui24(9), 6) + multitrack(2, 0)
                + fourcc("hvc1") + b"\x00" + ui24(3) + b"hvC"
                + fourcc("av01") + b"\x05" + ui24(2) + b"aC")
        parts = split_video(data)
        assert [(t.fourcc, t.track_id) for t, _ in parts] == [("hvc1", 0), ("av01", 5)]
        # Each part is OneTrack (no size), with the ModEx block kept, built by hand here.
        assert parts[0][1] == video_first(1, 7) + mod_ex(ui24(9), 6) + multitrack(0, 0) + fourcc("hvc1") + b"\x00hvC"
        assert parts[1][1] == video_first(1, 7) + mod_ex(ui24(9), 6) + multitrack(0, 0) + fourcc("av01") + b"\x05aC"
        for track, message in parts:
            assert track.is_sequence_start and parse_video(message).nano_offset == 9

    @pytest.mark.spec("ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_split_keeps_composition_times_and_single_messages(self) -> None:
        data = (video_first(2, 6) + multitrack(1, 1) + fourcc("avc1")
                + b"\x00" + ui24(4) + si24(-7) + b"a" + b"\x01" + ui24(5) + si24(40) + b"bb")
        parts = split_video(data)
        assert [(t.track_id, t.composition_time, t.payload(m)) for t, m in parts] == [
            (0, -7, b"a"), (1, 40, b"bb")]
        single = video_first(1, 0) + fourcc("vp09") + b"cfg"
        assert [m for _, m in split_video(single)] == [single]
        audio = audio_first(5) + multitrack(1, 0) + fourcc("Opus") + b"\x00" + ui24(0) + b"\x02" + ui24(1) + b"x"
        assert [(t.track_id, m) for t, m in split_audio(audio)] == [
            (0, audio_first(5) + multitrack(0, 0) + fourcc("Opus") + b"\x00"),
            (2, audio_first(5) + multitrack(0, 0) + fourcc("Opus") + b"\x02x")]
        with pytest.raises(DecodeError):
            split_audio(audio_first(5) + multitrack(1, 0) + fourcc("Opus") + b"\x00" + ui24(9))
