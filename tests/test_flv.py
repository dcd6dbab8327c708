"""FLV E.2-E.5 and ERTMP Enhanced Video/Audio: rtmp.flv reader, writer and tag headers."""

from __future__ import annotations

import io
import logging
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtmp import Message, MessageType
from rtmp import flv
from rtmp.errors import RTMPError
from rtmp.flv import (
    AudioTagHeader,
    FLVError,
    Reader,
    Tag,
    VideoTagHeader,
    Writer,
    describe_audio,
    describe_tag,
    describe_video,
    is_keyframe,
    is_sequence_header,
    strip_set_data_frame_bytes,
)

# FLV E.2: canonical audio+video header, then FLV E.3 PreviousTagSize0.
CANONICAL_HEADER = bytes.fromhex("464C5601 05 00000009")
PREVIOUS_TAG_SIZE_0 = bytes(4)


def tag_bytes(tag_type: int, timestamp: int, data: bytes, stream_id: int = 0, back: int = -1) -> bytes:
    """One tag built by hand from the FLV E.4.1 table (independent of rtmp.flv)."""
    header = bytes([tag_type]) + len(data).to_bytes(3, "big")
    header += (timestamp & 0xFFFFFF).to_bytes(3, "big") + bytes([(timestamp >> 24) & 0xFF])
    header += stream_id.to_bytes(3, "big")
    size = 11 + len(data) if back < 0 else back
    return header + data + struct.pack(">I", size)


def flv_bytes(*tags: bytes, header: bytes = CANONICAL_HEADER) -> bytes:
    return header + PREVIOUS_TAG_SIZE_0 + b"".join(tags)


def write_to_bytes(tags: list[Tag], **kwargs: object) -> bytes:
    out = io.BytesIO()
    writer = Writer(out, **kwargs)  # type: ignore[arg-type]
    for tag in tags:
        writer.write(tag)
    writer.close()
    return out.getvalue()


tags_strategy = st.lists(
    st.builds(
        Tag,
        st.sampled_from([8, 9, 18]),
        st.integers(min_value=0, max_value=0xFFFFFFFF),
        st.binary(max_size=64),
    ),
    max_size=12,
)


class TestHeader:
    """FLV E.2: signature, version, TypeFlags, DataOffset."""

    @pytest.mark.spec("FLV E.2", "FLV E.3")
    def test_writer_canonical_header(self) -> None:
        assert write_to_bytes([]) == CANONICAL_HEADER + PREVIOUS_TAG_SIZE_0

    @pytest.mark.spec("FLV E.2")
    @pytest.mark.parametrize(
        "has_audio, has_video, flags", [(True, False, 0x04), (False, True, 0x01), (False, False, 0)]
    )
    def test_writer_type_flags(self, has_audio: bool, has_video: bool, flags: int) -> None:
        data = write_to_bytes([], has_audio=has_audio, has_video=has_video)
        assert data[4] == flags
        reader = Reader(io.BytesIO(data))
        assert (reader.has_audio, reader.has_video) == (has_audio, has_video)

    @pytest.mark.spec("FLV E.2")
    def test_bad_signature(self) -> None:
        with pytest.raises(FLVError, match="FLV E.2"):
            Reader(io.BytesIO(b"FLX\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"))

    @pytest.mark.spec("FLV E.2")
    def test_short_file(self) -> None:
        with pytest.raises(FLVError, match="too short"):
            Reader(io.BytesIO(b"FLV\x01"))

    @pytest.mark.spec("FLV E.2")
    def test_flv_error_is_rtmp_error(self) -> None:
        assert issubclass(FLVError, RTMPError)

    @pytest.mark.spec("FLV E.2")
    def test_data_offset_below_nine(self) -> None:
        with pytest.raises(FLVError, match="DataOffset"):
            Reader(io.BytesIO(bytes.fromhex("464C5601 05 00000008") + bytes(4)))

    @pytest.mark.spec("FLV E.2")
    def test_reader_seeks_to_data_offset(self) -> None:
        header = bytes.fromhex("464C5601 05 0000000C") + b"xyz"  # 3 bytes of future header
        data = flv_bytes(tag_bytes(9, 5, b"\x17\x01\x00\x00\x00"), header=header)
        reader = Reader(io.BytesIO(data))
        assert reader.data_offset == 12
        assert [(t.type, t.timestamp) for t in reader] == [(9, 5)]

    @pytest.mark.spec("FLV E.2")
    def test_version_and_reserved_bits_lenient_or_strict(self, caplog: pytest.LogCaptureFixture) -> None:
        data = flv_bytes(header=bytes.fromhex("464C5602 0D 00000009"))
        with caplog.at_level(logging.WARNING, logger="rtmp.flv"):
            reader = Reader(io.BytesIO(data))
        assert reader.version == 2
        assert "tolerated" in caplog.text
        with pytest.raises(FLVError, match="FLV E.2"):
            Reader(io.BytesIO(data), strict=True)


class TestBody:
    """FLV E.3: PreviousTagSize back pointers."""

    @pytest.mark.spec("FLV E.3")
    def test_writer_back_pointers(self) -> None:
        data = write_to_bytes([Tag(8, 0, b"\xaf\x01abc"), Tag(9, 40, b"\x27\x01\x00\x00\x00xy")])
        body = data[13:]
        assert struct.unpack(">I", body[11 + 5 : 11 + 5 + 4])[0] == 16  # 11 + DataSize
        assert struct.unpack(">I", data[-4:])[0] == 11 + 7

    @pytest.mark.spec("FLV E.3")
    def test_bad_back_pointer_tolerated_and_counted(self) -> None:
        data = flv_bytes(tag_bytes(8, 0, b"\xaf\x01x", back=0), tag_bytes(8, 23, b"\xaf\x01y", back=99))
        reader = Reader(io.BytesIO(data))
        assert [t.data for t in reader] == [b"\xaf\x01x", b"\xaf\x01y"]
        assert reader.bad_back_pointers == 2
        assert not reader.truncated

    @pytest.mark.spec("FLV E.3")
    def test_bad_back_pointer_strict(self) -> None:
        data = flv_bytes(tag_bytes(8, 0, b"\xaf\x01x", back=5))
        with pytest.raises(FLVError, match="PreviousTagSize 5, expected 14"):
            list(Reader(io.BytesIO(data), strict=True))

    @pytest.mark.spec("FLV E.3")
    def test_nonzero_previous_tag_size_0(self) -> None:
        data = CANONICAL_HEADER + b"\x00\x00\x00\x07" + tag_bytes(9, 0, b"\x17")
        reader = Reader(io.BytesIO(data))
        assert len(list(reader)) == 1
        assert reader.bad_back_pointers == 1


class TestTag:
    """FLV E.4.1: the 11-byte tag header."""

    @pytest.mark.spec("FLV E.4.1")
    def test_timestamp_extended_is_the_upper_byte(self) -> None:
        data = write_to_bytes([Tag(9, 0x12345678, b"\x17")])
        header = data[13 : 13 + 11]
        assert header[0] == 9
        assert header[1:4] == b"\x00\x00\x01"  # DataSize
        assert header[4:8] == b"\x34\x56\x78\x12"  # Timestamp low 24 bits, then TimestampExtended
        assert header[8:11] == b"\x00\x00\x00"  # StreamID
        assert next(iter(Reader(io.BytesIO(data)))).timestamp == 0x12345678

    @pytest.mark.spec("FLV E.4.1")
    def test_hand_built_tags_parse(self) -> None:
        data = flv_bytes(
            tag_bytes(18, 0, b"\x02\x00\x0aonMetaData\x05"),
            tag_bytes(9, 0xFF000001, b"\x17\x00\x00\x00\x00"),
            tag_bytes(8, 0xFFFFFF, b"\xaf\x00\x12\x10"),
        )
        reader = Reader(io.BytesIO(data))
        tags = list(reader)
        assert [(t.type, t.timestamp) for t in tags] == [(18, 0), (9, 0xFF000001), (8, 0xFFFFFF)]
        assert tags[1].offset == 13 + 11 + 14 + 4
        assert reader.tag_count == 3 and not reader.truncated and reader.bad_back_pointers == 0

    @pytest.mark.spec("FLV E.4.1")
    def test_stream_id_must_be_zero(self, caplog: pytest.LogCaptureFixture) -> None:
        data = flv_bytes(tag_bytes(9, 0, b"\x17", stream_id=1))
        with caplog.at_level(logging.WARNING, logger="rtmp.flv"):
            assert len(list(Reader(io.BytesIO(data)))) == 1
        assert "StreamID 1" in caplog.text
        with pytest.raises(FLVError, match="StreamID"):
            list(Reader(io.BytesIO(data), strict=True))

    @pytest.mark.spec("FLV E.4.1")
    def test_filter_bit_marks_encrypted(self) -> None:
        data = flv_bytes(tag_bytes(0x20 | 9, 0, b"\x17"))
        (tag,) = list(Reader(io.BytesIO(data)))
        assert tag.type == 9 and tag.encrypted

    @pytest.mark.spec("FLV E.4.1")
    def test_unknown_tag_type(self) -> None:
        data = flv_bytes(tag_bytes(7, 0, b"?"))
        assert [t.type for t in Reader(io.BytesIO(data))] == [7]
        with pytest.raises(FLVError, match="TagType 7"):
            list(Reader(io.BytesIO(data), strict=True))

    @pytest.mark.spec("FLV E.4.1")
    @given(tags_strategy)
    def test_round_trip(self, tags: list[Tag]) -> None:
        data = write_to_bytes(tags, strip_set_data_frame=False)
        reader = Reader(io.BytesIO(data), strict=True)
        assert list(reader) == tags
        assert not reader.truncated
        assert len(data) == 13 + sum(11 + len(t.data) + 4 for t in tags)

    @pytest.mark.spec("FLV E.4.1")
    @given(tags_strategy.filter(bool), st.data())
    def test_truncated_file_stops_at_last_complete_tag(self, tags: list[Tag], data: st.DataObject) -> None:
        encoded = write_to_bytes(tags, strip_set_data_frame=False)
        cut = data.draw(st.integers(min_value=13, max_value=len(encoded) - 1))
        reader = Reader(io.BytesIO(encoded[:cut]))
        got = list(reader)
        # Tag i is complete when its header and body fit before the cut.
        ends, position = [], 13
        for tag in tags:
            ends.append(position + 11 + len(tag.data))
            position += 11 + len(tag.data) + 4
        complete = sum(1 for end in ends if end <= cut)
        assert got == tags[:complete]
        assert reader.truncated == (cut not in [13] + [end + 4 for end in ends])

    @pytest.mark.spec("FLV E.4.1")
    def test_message_and_tag_conversion(self) -> None:
        msg = Message(type=MessageType.VIDEO, data=b"\x17\x01\x00\x00\x00", timestamp=80, message_stream_id=1)
        tag = Tag.from_message(msg)
        assert (tag.type, tag.timestamp, tag.data) == (9, 80, msg.data)
        assert tag.to_message(1) == msg
        with pytest.raises(ValueError):
            Tag.from_message(Message(type=MessageType.COMMAND_AMF0, data=b"\x05"))

    @pytest.mark.spec("FLV E.4.1")
    def test_writer_accepts_messages_and_rejects_other_types(self) -> None:
        out = io.BytesIO()
        with Writer(out) as writer:
            writer.write(Message(type=MessageType.AUDIO, data=b"\xaf\x01z", timestamp=7, message_stream_id=1))
            with pytest.raises(ValueError, match="FLV E.4.1"):
                writer.write(Message(type=MessageType.COMMAND_AMF0, data=b"\x05"))
            with pytest.raises(TypeError):
                writer.write(b"raw")  # type: ignore[arg-type]
        assert [(t.type, t.timestamp, t.data) for t in Reader(io.BytesIO(out.getvalue()))] == [
            (8, 7, b"\xaf\x01z")
        ]

    @pytest.mark.spec("FLV E.4.1", "RTMP 7.1.2 [impl: @setDataFrame]")
    def test_writer_strips_set_data_frame(self) -> None:
        amf = b"\x02\x00\x0d@setDataFrame" + b"\x02\x00\x0aonMetaData\x03\x00\x00\x09"
        assert strip_set_data_frame_bytes(amf) == amf[16:]
        data = write_to_bytes([Tag(18, 0, amf)])
        (tag,) = list(Reader(io.BytesIO(data)))
        assert tag.data.startswith(b"\x02\x00\x0aonMetaData")
        data = write_to_bytes([Tag(18, 0, amf)], strip_set_data_frame=False)
        assert next(iter(Reader(io.BytesIO(data)))).data == amf


class TestAppend:
    """RTMP 7.2.2.6 ``append`` on FLV E.3 files: validate, repair the tail, continue the timeline."""

    @pytest.mark.spec("RTMP 7.2.2.6", "FLV E.3")
    def test_append_creates_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "new.flv"
        with Writer.open_append(path) as writer:
            writer.write(Tag(9, 0, b"\x17"))
        assert [t.timestamp for t in Reader(path)] == [0]

    @pytest.mark.spec("RTMP 7.2.2.6", "FLV E.3")
    def test_append_continues_timestamps(self, tmp_path: Path) -> None:
        path = tmp_path / "a.flv"
        with Writer(path) as writer:
            for ts in (0, 40, 80):
                writer.write(Tag(9, ts, b"\x27\x01\x00\x00\x00"))
        with Writer.open_append(path) as writer:
            assert writer.last_timestamp == 80
            for ts in (0, 40):
                writer.write(Tag(9, ts, b"\x27\x01\x00\x00\x00"))
        reader = Reader(path, strict=True)
        assert [t.timestamp for t in reader] == [0, 40, 80, 80, 120]

    @pytest.mark.spec("RTMP 7.2.2.6", "FLV E.3")
    def test_append_cuts_truncated_tail(self, tmp_path: Path) -> None:
        path = tmp_path / "cut.flv"
        full = flv_bytes(tag_bytes(9, 0, b"\x17abc"), tag_bytes(9, 40, b"\x27defgh"))
        path.write_bytes(full[:-7])  # the second tag loses its last bytes and back pointer
        with Writer.open_append(path, continue_timestamps=False) as writer:
            writer.write(Tag(8, 50, b"\xaf\x01"))
        reader = Reader(path, strict=True)
        assert [(t.type, t.timestamp) for t in reader] == [(9, 0), (8, 50)]
        assert not reader.truncated

    @pytest.mark.spec("RTMP 7.2.2.6", "FLV E.3")
    def test_append_restores_missing_back_pointer(self, tmp_path: Path) -> None:
        path = tmp_path / "noback.flv"
        path.write_bytes(flv_bytes(tag_bytes(9, 0, b"\x17"), tag_bytes(9, 40, b"\x27"))[:-4])
        with Writer.open_append(path) as writer:
            writer.write(Tag(9, 0, b"\x27"))
        assert [t.timestamp for t in Reader(path, strict=True)] == [0, 40, 40]

    @pytest.mark.spec("RTMP 7.2.2.6", "FLV E.2")
    def test_append_refuses_non_flv(self, tmp_path: Path) -> None:
        path = tmp_path / "junk.flv"
        path.write_bytes(b"not an flv file at all")
        with pytest.raises(FLVError):
            Writer.open_append(path)
        assert path.read_bytes() == b"not an flv file at all"

    @pytest.mark.spec("RTMP 7.2.2.6", "FLV E.3")
    def test_append_to_header_only_file(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.flv"
        path.write_bytes(CANONICAL_HEADER)  # no PreviousTagSize0 yet
        with Writer.open_append(path) as writer:
            writer.write(Tag(8, 10, b"\xaf\x01"))
        assert path.read_bytes()[:13] == CANONICAL_HEADER + PREVIOUS_TAG_SIZE_0
        assert [t.timestamp for t in Reader(path, strict=True)] == [10]

    @pytest.mark.spec("FLV E.3")
    def test_closed_writer_refuses(self, tmp_path: Path) -> None:
        writer = Writer(tmp_path / "c.flv")
        writer.write(Tag(9, 0, b"\x17"))
        writer.flush(fsync=True)
        writer.close()
        writer.close()
        with pytest.raises(ValueError, match="closed"):
            writer.write(Tag(9, 0, b"\x17"))


class TestAudioTagHeader:
    """FLV E.4.2.1 AUDIODATA and ERTMP Enhanced Audio."""

    @pytest.mark.spec("FLV E.4.2.1", "FLV E.4.2.2")
    def test_aac_sequence_header(self) -> None:
        header = AudioTagHeader.parse(b"\xaf\x00\x12\x10")
        assert (header.sound_format, header.sound_rate, header.sound_size, header.sound_type) == (10, 3, 1, 1)
        assert header.aac_packet_type == 0 and header.is_sequence_header
        assert header.header_size == 2 and header.codec_name == "AAC"
        assert not AudioTagHeader.parse(b"\xaf\x01\x21").is_sequence_header

    @pytest.mark.spec("FLV E.4.2.1")
    @pytest.mark.parametrize(
        "first, fmt, rate, size, kind, name",
        [(0x2F, 2, 3, 1, 1, "MP3"), (0xB2, 11, 0, 1, 0, "Speex"), (0x52, 5, 0, 1, 0, "Nellymoser 8kHz"),
         (0x30, 3, 0, 0, 0, "PCM-LE")],
    )  # fmt: skip
    def test_legacy_fields(self, first: int, fmt: int, rate: int, size: int, kind: int, name: str) -> None:
        header = AudioTagHeader.parse(bytes([first]) + b"data")
        assert (header.sound_format, header.sound_rate, header.sound_size, header.sound_type) == (
            fmt, rate, size, kind,
        )  # fmt: skip
        assert header.codec_name == name and header.header_size == 1 and not header.is_sequence_header

    @pytest.mark.spec("FLV E.4.2.1")
    def test_short_payloads(self) -> None:
        with pytest.raises(FLVError, match="FLV E.4.2.1"):
            AudioTagHeader.parse(b"")
        with pytest.raises(FLVError, match="AACPacketType"):
            AudioTagHeader.parse(b"\xaf")

    @pytest.mark.spec("ERTMP Enhanced Audio")
    def test_enhanced_audio(self) -> None:
        header = AudioTagHeader.parse(b"\x90Opus" + b"\x01\x02")  # ExHeader | SequenceStart
        assert header.is_enhanced and header.fourcc == "Opus" and header.packet_type == 0
        assert header.is_sequence_header and header.header_size == 5 and header.codec_name == "Opus"
        coded = AudioTagHeader.parse(b"\x91mp4a\x21\x00")
        assert coded.codec_name == "AAC" and not coded.is_sequence_header
        with pytest.raises(FLVError, match="FourCC"):
            AudioTagHeader.parse(b"\x90Op")


class TestVideoTagHeader:
    """FLV E.4.3.1 VIDEODATA and ERTMP Enhanced Video."""

    @pytest.mark.spec("FLV E.4.3.1", "FLV E.4.3.2")
    def test_avc_sequence_header(self) -> None:
        header = VideoTagHeader.parse(bytes.fromhex("1700000000") + b"\x01\x64")
        assert (header.frame_type, header.codec_id, header.packet_type) == (1, 7, 0)
        assert header.is_keyframe and header.is_sequence_header and header.fourcc == "avc1"
        assert header.header_size == 5 and header.codec_name == "H.264"

    @pytest.mark.spec("FLV E.4.3.1")
    @pytest.mark.parametrize("raw, cts", [("1701000028", 40), ("2701fffff6", -10), ("27017fffff", 0x7FFFFF)])
    def test_composition_time_is_signed(self, raw: str, cts: int) -> None:
        header = VideoTagHeader.parse(bytes.fromhex(raw))
        assert header.composition_time == cts and header.packet_type == 1
        assert not header.is_sequence_header

    @pytest.mark.spec("FLV E.4.3.1")
    def test_legacy_hevc_codec_12(self) -> None:
        header = VideoTagHeader.parse(bytes.fromhex("1C00000000"))
        assert header.codec_id == 12 and header.fourcc == "hvc1" and header.is_sequence_header
        assert header.codec_name == "HEVC"

    @pytest.mark.spec("FLV E.4.3.1")
    def test_other_codecs_and_command_frame(self) -> None:
        vp6 = VideoTagHeader.parse(b"\x24rest")
        assert (vp6.frame_type, vp6.codec_id, vp6.codec_name) == (2, 4, "VP6")
        assert not vp6.is_sequence_header and vp6.header_size == 1
        command = VideoTagHeader.parse(b"\x57\x00")
        assert command.frame_type == 5 and command.command == 0 and not command.is_sequence_header
        with pytest.raises(FLVError, match="FLV E.4.3.1"):
            VideoTagHeader.parse(b"\x17\x01")

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_enhanced_hevc(self) -> None:
        start = VideoTagHeader.parse(b"\x90hvc1" + b"config")  # 0x80 | key<<4 | SequenceStart
        assert start.is_enhanced and start.fourcc == "hvc1" and start.is_sequence_header
        assert start.is_keyframe and start.header_size == 5 and start.codec_name == "HEVC"
        coded = VideoTagHeader.parse(b"\x91hvc1\x00\x00\x50nalus")
        assert coded.composition_time == 80 and coded.header_size == 8 and not coded.is_sequence_header
        frames_x = VideoTagHeader.parse(b"\x93hvc1nalus")  # CodedFramesX: no SI24
        assert frames_x.composition_time == 0 and frames_x.header_size == 5

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_enhanced_av1_inter(self) -> None:
        header = VideoTagHeader.parse(b"\xa1av01obus")
        assert header.frame_type == 2 and header.packet_type == 1 and header.header_size == 5
        assert not header.is_keyframe and header.codec_name == "AV1"

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_mod_ex_and_multitrack(self) -> None:
        # ModEx: size byte 2 (=3 bytes of data), data, then ModExType 0 | CodedFramesX.
        header = VideoTagHeader.parse(b"\x97" + b"\x02" + b"\x00\x01\x02" + b"\x03" + b"vp09frame")
        assert header.packet_type == 3 and header.fourcc == "vp09" and header.header_size == 10
        multi = VideoTagHeader.parse(b"\x96\x00avc1\x00payload")  # OneTrack | SequenceStart
        assert multi.multitrack and multi.fourcc == "avc1" and multi.is_sequence_header
        with pytest.raises(FLVError):
            VideoTagHeader.parse(b"\x97\x05\x00")

    @pytest.mark.spec("FLV E.4.3.1", "ERTMP Enhanced Video")
    def test_classify_messages_and_tags(self) -> None:
        key = Message(type=MessageType.VIDEO, data=bytes.fromhex("1701000000aa"), message_stream_id=1)
        inter = Tag(9, 40, bytes.fromhex("2701000000bb"))
        assert is_keyframe(key) and not is_keyframe(inter)
        assert is_keyframe(Tag(9, 0, b"\x91hvc1\x00\x00\x00")) and not is_keyframe(Tag(9, 0, b"\xa1av01"))
        assert not is_keyframe(Tag(8, 0, b"\x1f")) and not is_keyframe(Tag(9, 0, b""))
        assert is_sequence_header(Tag(9, 0, bytes.fromhex("1700000000")))
        assert is_sequence_header(Tag(8, 0, b"\xaf\x00\x12\x10"))
        assert not is_sequence_header(key) and not is_sequence_header(Tag(8, 0, b""))
        assert not is_sequence_header(Tag(9, 0, b"\x17\x00"))  # malformed: not a header
        assert not is_sequence_header(Tag(18, 0, b"\x02"))


class TestDescribe:
    """Short human descriptions for the protocol trace (FLV E.4.2.1, E.4.3.1)."""

    @pytest.mark.spec("FLV E.4.2.1", "FLV E.4.3.1")
    def test_descriptions(self) -> None:
        assert describe_audio(b"\xaf\x00\x12\x10") == "AAC sequence header, 2 bytes (44 kHz 16-bit stereo)"
        assert describe_audio(b"") == "audio silence (empty payload)"
        assert "malformed" in describe_audio(b"\xaf")
        assert describe_video(bytes.fromhex("1701000028") + b"xx") == "H.264 keyframe, NALU, 2 bytes, cts 40"
        assert describe_video(b"\x90hvc1cfg") == "HEVC keyframe, SequenceStart, 3 bytes (enhanced hvc1)"
        assert "start of seek" in describe_video(b"\x57\x00")
        assert describe_tag(Tag(18, 0, b"abc")) == "script data, 3 bytes"
        assert describe_tag(Tag(8, 0, b"\x2fxyz")).startswith("MP3, 3 bytes")


class TestArbitraryInput:
    """FLV E.4.1, E.4.2.1, E.4.3.1: malformed input fails cleanly, with FLVError or not at all."""

    @pytest.mark.spec("FLV E.4.1")
    @given(st.binary(max_size=200))
    def test_reader_never_crashes_on_a_corrupt_body(self, body: bytes) -> None:
        reader = Reader(io.BytesIO(CANONICAL_HEADER + PREVIOUS_TAG_SIZE_0 + body))
        tags = list(reader)  # lenient: no exception, whatever the bytes
        assert sum(11 + len(t.data) for t in tags) <= len(body)
        try:
            list(Reader(io.BytesIO(CANONICAL_HEADER + PREVIOUS_TAG_SIZE_0 + body), strict=True))
        except FLVError:
            pass

    @pytest.mark.spec("FLV E.4.2.1", "FLV E.4.3.1", "ERTMP Enhanced Video")
    @given(st.binary(max_size=24))
    def test_header_parsers_raise_only_flv_error(self, data: bytes) -> None:
        for parse in (AudioTagHeader.parse, VideoTagHeader.parse):
            try:
                header = parse(data)
            except FLVError:
                continue
            assert 1 <= header.header_size <= len(data)
        for kind in (8, 9, 18):
            tag = Tag(kind, 0, data)
            assert isinstance(describe_tag(tag), str)
            assert isinstance(is_sequence_header(tag), bool) and isinstance(is_keyframe(tag), bool)

    @pytest.mark.spec("FLV E.4.2.1", "FLV E.4.3.1", "ERTMP Enhanced Video", "ERTMP Enhanced Audio")
    @given(
        st.sampled_from([8, 9]),
        st.integers(0, 255),
        st.one_of(st.just(b""), st.sampled_from([b"\x00", b"\x01", b"\x02"]).map(lambda b: b + b"\x00")),
        st.binary(max_size=12),
    )
    def test_sequence_header_fast_path_agrees_with_parsers(
        self, kind: int, first: int, second: bytes, tail: bytes
    ) -> None:
        data = bytes([first]) + second + tail
        parse = AudioTagHeader.parse if kind == 8 else VideoTagHeader.parse
        try:
            expected = parse(data).is_sequence_header
        except FLVError:
            expected = False
        assert is_sequence_header(Tag(kind, 0, data)) == expected


class TestEnhancedHeaderOrder:
    """ERTMP: ModEx packets come before Multitrack and the FourCC; command frames have none."""

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_command_frame_has_no_fourcc(self) -> None:
        header = flv.VideoTagHeader.parse(b"\xd1\x00")  # enhanced, Command frame, CodedFrames
        assert header.frame_type == 5 and header.command == 0 and header.fourcc is None
        assert not header.is_sequence_header

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_mod_ex_before_multitrack(self) -> None:
        # ModEx (size 3: TimestampOffsetNano needs at least 3 bytes, 42 ns), then Multitrack,
        # OneTrack + SequenceStart, FourCC, trackId 0.
        data = bytes([0x90 | 7, 0x02, 0x00, 0x00, 0x2A, 0x06, 0x00]) + b"hvc1" + b"\x00"
        header = flv.VideoTagHeader.parse(data)
        assert header.multitrack and header.fourcc == "hvc1" and header.packet_type == 0
        assert header.header_size == len(data) - 1  # the trackId follows the header

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_mod_ex_sequence_start(self) -> None:
        data = bytes([0x97, 0x02, 0x00, 0x00, 0x05, 0x00]) + b"hvc1"
        header = flv.VideoTagHeader.parse(data)
        assert header.fourcc == "hvc1" and header.is_sequence_header

    @pytest.mark.spec("ERTMP Enhanced Audio")
    def test_audio_mod_ex_before_multitrack(self) -> None:
        data = bytes([0x90 | 7, 0x02, 0x00, 0x00, 0x11, 0x05, 0x00]) + b"mp4a" + b"\x00"
        header = flv.AudioTagHeader.parse(data)
        assert header.fourcc == "mp4a" and header.packet_type == 0
        assert header.header_size == len(data) - 1  # the trackId follows the header
