"""The teaching trace: every line names what it shows and the clause that defines it."""

from __future__ import annotations

import io
import logging
import struct
from typing import List

import pytest

from rtmp import Message, MessageType
from rtmp import commands, control, user_control
from rtmp.chunk import ChunkEncoder
from rtmp.handshake import ClientHandshake, ServerHandshake
from rtmp.message import build_aggregate
from rtmp.trace import ProtocolTracer, describe_message, enable, explain_message, tracing_enabled
from rtmp.logs import trace_logger


class TestDescribeMessage:
    @pytest.mark.spec("RTMP 5.4.1", "RTMP 5.4.2", "RTMP 5.4.3", "RTMP 5.4.4", "RTMP 5.4.5")
    @pytest.mark.parametrize("message, expected", [
        (control.set_chunk_size(4096), "Set Chunk Size 4096  (RTMP 5.4.1)"),
        (control.abort(7), "Abort Message csid=7  (RTMP 5.4.2)"),
        (control.acknowledgement(99), "Acknowledgement sequence=99  (RTMP 5.4.3)"),
        (control.window_ack_size(2500000), "Window Acknowledgement Size 2500000  (RTMP 5.4.4)"),
        (control.set_peer_bandwidth(5000, 2), "Set Peer Bandwidth 5000 limit=dynamic  (RTMP 5.4.5)"),
    ])
    def test_protocol_control(self, message: Message, expected: str) -> None:
        assert describe_message(message) == expected

    @pytest.mark.spec("RTMP 7.1.7")
    def test_user_control(self) -> None:
        assert describe_message(user_control.stream_begin(1)) == \
            "User Control STREAM_BEGIN msid=1  (RTMP 7.1.7)"
        assert describe_message(user_control.set_buffer_length(1, 3000)).startswith(
            "User Control SET_BUFFER_LENGTH msid=1 buffer=3000ms")
        assert "PING_REQUEST timestamp=5" in describe_message(user_control.ping_request(5))

    @pytest.mark.spec("RTMP 7.2.1.1", "RTMP 7.2.2.6", "RTMP 7.1.2")
    def test_commands_and_data(self) -> None:
        connect = commands.encode_command("connect", 1, {"app": "live"})
        assert describe_message(connect) == "command connect txn=1 {'app': 'live'}  (RTMP 7.2.1.1)"
        publish = commands.encode_command("publish", 0, None, "key", "live", message_stream_id=1)
        assert describe_message(publish).endswith("'key' 'live'  (RTMP 7.2.2.6)")
        data = commands.encode_data("onMetaData", {"width": 320}, message_stream_id=1)
        assert describe_message(data) == "data 'onMetaData' {'width': 320.0}  (RTMP 7.1.2)"
        amf3 = commands.encode_command("custom", 5, None, [1, 2], object_encoding=3)
        assert describe_message(amf3) == "command custom txn=5 None [1, 2]  (RTMP 7.2)"

    @pytest.mark.spec("RTMP 7.1.4", "RTMP 7.1.5", "RTMP 7.1.6", "RTMP 7.1.3")
    def test_media_and_others(self) -> None:
        aac = Message(type=MessageType.AUDIO, data=b"\xaf\x00\x12\x10")
        assert "AAC" in describe_message(aac) and "(RTMP 7.1.4, FLV E.4.2.1)" in describe_message(aac)
        avc = Message(type=MessageType.VIDEO, data=b"\x27\x01\x00\x00\x00abc")
        assert "H.264" in describe_message(avc)
        agg = build_aggregate([aac, avc])
        assert describe_message(agg) == "aggregate of 2 sub-messages  (RTMP 7.1.6)"
        so = Message(type=MessageType.SHARED_OBJECT_AMF0, data=b"abc")
        assert describe_message(so).startswith("SHARED_OBJECT_AMF0 3 bytes, undecodable: ")
        assert "RTMP 7.1.3" in describe_message(so)
        assert "not defined" in describe_message(Message(type=7, data=b""))

    def test_undecodable_payload_is_described_not_raised(self) -> None:
        broken = Message(type=MessageType.COMMAND_AMF0, data=b"\x02\x00\x10ab")
        assert "undecodable" in describe_message(broken)
        assert "undecodable" in describe_message(Message(type=1, data=b"\x00"))


def _so_body(name: str, version: int, *events: bytes, amf3: bool = False) -> bytes:
    """RTMP 7.1.3 [de-facto] layout, by hand: name, version, flags, then the events."""
    raw = name.encode()
    head = b"\x00" if amf3 else b""
    return head + struct.pack(">H", len(raw)) + raw + struct.pack(">III", version, 0, 0) + b"".join(events)


def _so_event(kind: int, data: bytes = b"") -> bytes:
    return struct.pack(">BI", kind, len(data)) + data


class TestSharedObjectLines:
    @pytest.mark.spec("RTMP 7.1.3", "RTMP 7.1.3 [de-facto]")
    def test_event_by_event_with_clause(self) -> None:
        key = struct.pack(">H", 1) + b"n"
        body = _so_body("chat", 4, _so_event(11), _so_event(4, key + b"\x00" + struct.pack(">d", 2.0)),
                        _so_event(13, b"\x01\x02"))
        lines = explain_message(Message(type=MessageType.SHARED_OBJECT_AMF0, data=body))
        assert lines == [
            "shared object 'chat' version 4 transient AMF0, 3 events  (RTMP 7.1.3 [de-facto])",
            "  event 1: Use Success  (RTMP 7.1.3 [de-facto])",
            "  event 2: Change 'n' = 2.0  (RTMP 7.1.3 [de-facto])",
            "  event 3: unknown event 13, 2 data bytes skipped  (RTMP 7.1.3 [de-facto])",
        ]
        assert describe_message(Message(type=MessageType.SHARED_OBJECT_AMF0, data=body)) == lines[0]

    @pytest.mark.spec("RTMP 7.1.3", "RTMP 7.1.3 [de-facto]")
    def test_tracer_prints_each_event_of_a_type16_message(self) -> None:
        lines: List[str] = []
        tracer = ProtocolTracer("C->S", lines.append, handshake_first=False)
        handler = b"\x02" + struct.pack(">H", 4) + b"ping"
        body = _so_body("room", 0, _so_event(1), _so_event(6, handler), amf3=True)
        tracer.feed(ChunkEncoder().encode(Message(type=MessageType.SHARED_OBJECT_AMF3, data=body)))
        messages = [line for line in lines if "chunk fmt" not in line]
        assert messages == [
            "C->S  message shared object 'room' version 0 transient AMF3, 2 events"
            "  (RTMP 7.1.3 [de-facto])",
            "C->S    event 1: Use  (RTMP 7.1.3 [de-facto])",
            "C->S    event 2: SendMessage ping()  (RTMP 7.1.3 [de-facto])",
        ]

    @pytest.mark.spec("RTMP 7.1.3 [de-facto]")
    def test_lying_event_length_is_described_not_raised(self) -> None:
        body = _so_body("o", 0, struct.pack(">BI", 4, 99))
        lines = explain_message(Message(type=MessageType.SHARED_OBJECT_AMF0, data=body))
        assert len(lines) == 1 and "undecodable" in lines[0] and "claims 99 data bytes" in lines[0]


class TestTracer:
    @pytest.mark.spec("RTMP 5.2.2", "RTMP 5.2.3", "RTMP 5.2.4", "RTMP 5.3.1.2.1",
                      "RTMP 5.3.1.2.4", "RTMP 5.3.1.3")
    def test_follows_handshake_then_chunks(self) -> None:
        lines: List[str] = []
        tracer = ProtocolTracer("C->S", lines.append, client_side=True)
        client = ClientHandshake(digest=False)
        server = ServerHandshake()
        c0c1 = client.data_to_send()
        server.receive_data(c0c1)
        client.receive_data(server.data_to_send())
        encoder = ChunkEncoder(128)
        stream = c0c1 + client.data_to_send()
        stream += encoder.encode(Message(type=MessageType.VIDEO, data=b"\x17\x01" + bytes(300),
                                         timestamp=0x1000000, message_stream_id=1))
        stream += encoder.encode(control.set_chunk_size(4096))
        # Fed in awkward pieces, as the network would.
        for i in range(0, len(stream), 700):
            tracer.feed(stream[i : i + 700])
        text = "\n".join(lines)
        assert lines[0] == "C->S  C0  version 3  (RTMP 5.2.2)"
        assert "C1  time=0 zero=0, 1528 random bytes  (RTMP 5.2.3)" in lines[1]
        assert lines[2].startswith("C->S  C2  time=")
        assert "chunk fmt=0 csid=6 timestamp=16777216 length=302 type=9 msid=1 " \
               "extended-timestamp data=128  (RTMP 5.3.1.2.1, RTMP 5.3.1.3)" in text
        assert "chunk fmt=3 csid=6 continuation extended-timestamp data=128" in text
        assert "message video 302 bytes: H.264 keyframe" in text
        assert text.endswith("message Set Chunk Size 4096  (RTMP 5.4.1)")

    @pytest.mark.spec("RTMP 5.3.1.2.2", "RTMP 5.3.1.2.3", "HS-FP9 C1")
    def test_header_types_and_digest_handshake(self) -> None:
        lines: List[str] = []
        tracer = ProtocolTracer("C->S", lines.append)
        client = ClientHandshake(digest=True)
        tracer.feed(client.data_to_send())
        assert "digest handshake  (RTMP 5.2.3, HS-FP9 C1)" in lines[1]
        tracer2 = ProtocolTracer("S->C", lines.append, client_side=False, handshake_first=False)
        encoder = ChunkEncoder()
        for ts, size in ((0, 10), (20, 12), (50, 12), (80, 12)):
            tracer2.feed(encoder.encode(Message(type=8, data=bytes(size), timestamp=ts,
                                                message_stream_id=1)))
        text = "\n".join(lines)
        assert "chunk fmt=1 csid=4 delta=20 length=12 type=8" in text
        assert "chunk fmt=2 csid=4 delta=30 data=12  (RTMP 5.3.1.2.3)" in text
        assert "chunk fmt=3 csid=4 new message, delta=30 data=12  (RTMP 5.3.1.2.4)" in text

    def test_garbage_stops_the_tracer_once(self) -> None:
        lines: List[str] = []
        tracer = ProtocolTracer("C->S", lines.append, handshake_first=False)
        tracer.feed(b"\x45" + bytes(20))
        tracer.feed(b"more")
        assert len(lines) == 1 and "cannot follow" in lines[0]

    def test_enable_routes_transport_lines(self) -> None:
        stream = io.StringIO()
        assert not tracing_enabled()
        handler = enable(stream)
        try:
            assert tracing_enabled()
            trace_logger.debug("hello")
            assert stream.getvalue() == "hello\n"
        finally:
            trace_logger.removeHandler(handler)
            trace_logger.setLevel(logging.NOTSET)
        assert not tracing_enabled()


def _vid(data: bytes) -> Message:
    return Message(type=MessageType.VIDEO, data=data, message_stream_id=1)


def _aud(data: bytes) -> Message:
    return Message(type=MessageType.AUDIO, data=data, message_stream_id=1)


class TestEnhancedRtmpLines:
    """ERTMP: every extended-header field gets a line that names its section of the v2 document."""

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_mod_ex_multitrack_and_tracks(self) -> None:
        # Hand-built: 0x80|key<<4|ModEx, ModEx size 3 = 250000 ns then Multitrack,
        # ManyTracks|CodedFrames, 'hvc1', then trackId, UI24 size, SI24 cts, NALUs per track.
        data = (b"\x97" + b"\x02" + (250_000).to_bytes(3, "big") + b"\x06" + b"\x11" + b"hvc1"
                + b"\x00" + (5).to_bytes(3, "big") + (40).to_bytes(3, "big") + b"AB"
                + b"\x01" + (4).to_bytes(3, "big") + (-3).to_bytes(3, "big", signed=True) + b"C")
        lines = explain_message(_vid(data))
        assert lines[0].startswith("video 28 bytes: HEVC keyframe, CodedFrames, 2 tracks")
        assert lines[0].endswith("(RTMP 7.1.5, ERTMP Enhanced Video)")
        assert lines[1:] == [
            "  ExVideoTagHeader: IsExVideoHeader 1, VideoFrameType 1 (KeyFrame), VideoPacketType 7"
            " (ModEx)  (ERTMP Enhanced Video)",
            "  ModEx 1: size UI8 2 -> 3 bytes, VideoPacketModExType 0 (TimestampOffsetNano) ="
            " 250000 ns; next VideoPacketType 6 (Multitrack)  (ERTMP Enhanced Video)",
            "  Multitrack: AvMultitrackType 1 (ManyTracks), VideoPacketType 1 (CodedFrames) for every"
            " track, 2 track(s), VideoFourCc 'hvc1' (HEVC)  (ERTMP Enhanced Video, ERTMP Multitrack"
            " Streaming via Enhanced RTMP)",
            "  track 0: videoTrackId 0, sizeOfVideoTrack 5, compositionTimeOffset 40 ms (SI24),"
            " 2 bytes: NALUs (full frames)  (ERTMP Multitrack Streaming via Enhanced RTMP)",
            "  track 1: videoTrackId 1, sizeOfVideoTrack 4, compositionTimeOffset -3 ms (SI24),"
            " 1 bytes: NALUs (full frames)  (ERTMP Multitrack Streaming via Enhanced RTMP)",
        ]

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Metadata Frame")
    def test_metadata_is_not_called_a_command_frame(self) -> None:
        # Frame type 5 with packet type 4 (what FFmpeg sends for colorInfo): Metadata.
        body = b"\x02\x00\x09colorInfo\x03\x00\x0bcolorConfig\x03\x00\x08bitDepth\x00" + \
            struct.pack(">d", 10.0) + b"\x00\x00\x09\x00\x00\x09"
        lines = explain_message(_vid(b"\xd4hvc1" + body))
        text = "\n".join(lines)
        assert "seek" not in text and "VideoCommand" not in text
        assert lines[0].startswith("video ") and "HEVC Metadata" in lines[0]
        assert "  VideoPacketType Metadata: VideoFrameType is ignored  (ERTMP Enhanced Video)" in lines
        assert "  Metadata colorInfo = {'colorConfig': {'bitDepth': 10.0}}  (ERTMP Metadata Frame)" in lines

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_command_frame(self) -> None:
        lines = explain_message(_vid(b"\xd1\x01"))
        assert lines[-1] == "  VideoCommand 1 (EndSeek): no FourCC, no video data  (ERTMP Enhanced Video)"
        assert "end of seek" in lines[0]

    @pytest.mark.spec("ERTMP Enhanced Audio", "ERTMP Multitrack Streaming via Enhanced RTMP")
    def test_audio_many_codecs_and_multichannel(self) -> None:
        data = (b"\x95" + b"\x20" + b"Opus" + b"\x00" + (0).to_bytes(3, "big")
                + b"mp4a" + b"\x01" + (2).to_bytes(3, "big") + b"\x12\x10")
        lines = explain_message(_aud(data))
        assert lines[0].endswith("(RTMP 7.1.4, ERTMP Enhanced Audio)") and "Opus/AAC" in lines[0]
        assert ("  track 1: AudioFourCc 'mp4a' (AAC), audioTrackId 1, sizeOfAudioTrack 2, 2 bytes:"
                " AudioSpecificConfig (ISO/IEC 14496-3)  (ERTMP Multitrack Streaming via Enhanced RTMP)"
                ) in lines
        config = explain_message(_aud(b"\x94Opus" + struct.pack(">BBI", 1, 2, 0x3)))
        assert config[-1] == ("  MultichannelConfig: audioChannelOrder 1 (Native), channelCount 2,"
                              " audioChannelFlags 0x000003 (FrontLeft FrontRight)  (ERTMP Enhanced Audio)")

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio")
    def test_hostile_headers_are_explained_not_raised(self) -> None:
        over = explain_message(_vid(b"\x97\x02" + (1_000_000).to_bytes(3, "big") + b"\x01hvc1"))
        assert over[-1] == ("  malformed: video TimestampOffsetNano 1000000 ns exceeds 999999"
                            " (ERTMP Enhanced Video)")
        lying = explain_message(_aud(b"\x95\x11Opus\x00" + (999).to_bytes(3, "big") + b"x"))
        assert "says 999 bytes but 1 remain (ERTMP Multitrack Streaming via Enhanced RTMP)" in lying[-1]
        unknown = explain_message(_vid(b"\x91xyz1abc"))
        assert "  VideoFourCc 'xyz1' (xyz1, not in v2)  (ERTMP Enhanced Video)" in unknown
        assert explain_message(_vid(b"\x17\x01\x00\x00\x00")) == [describe_message(_vid(b"\x17\x01\x00\x00\x00"))]

    @pytest.mark.spec("ERTMP Enhanced Video")
    def test_tracer_prints_the_field_lines(self) -> None:
        lines: List[str] = []
        tracer = ProtocolTracer("C->S", lines.append, handshake_first=False)
        tracer.feed(ChunkEncoder().encode(_vid(b"\x90av01" + b"\x81\x00\x0c\x00")))
        messages = [line for line in lines if "chunk fmt" not in line]
        assert messages[0].startswith("C->S  message video 9 bytes: AV1 keyframe, SequenceStart")
        assert messages[-1] == ("C->S    track 0: 4 bytes: AV1CodecConfigurationRecord"
                                "  (ERTMP Enhanced Video)")
