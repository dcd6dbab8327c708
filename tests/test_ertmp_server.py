"""Enhanced RTMP on the server side (issue 18): what connect's ``_result`` states, what each
client stated (``ServerConnection.client_caps``), sequence starts cached per codec and track
for late joiners, the GOP cache, the recorder and VOD on E-FLV."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import pytest

from rtmp import Client, ClientConfig, Server, ServerConfig, ServerConnection, commands, flv, stats, trace
from rtmp.flvmeta import metadata_codec
from rtmp.ertmp import (
    AudioChannelOrder,
    AudioPacketType,
    AvMultitrackType,
    ModEx,
    MultichannelConfig,
    TrackData,
    VideoFrameType,
    VideoPacketType,
    build_audio,
    build_video,
    encode_metadata,
)
from rtmp.message import Message, MessageType
from rtmp.netconnection import server_caps
from rtmp.requests import (
    CAPS_EX_MOD_EX,
    CAPS_EX_MULTITRACK,
    CAPS_EX_RECONNECT,
    CAPS_EX_TIMESTAMP_NANO_OFFSET,
    FOURCC_CAN_FORWARD,
    EnhancedCaps,
)
from rtmp.recorder import Recorder
from rtmp.streams import (
    CONFIG_METADATA,
    CONFIG_MULTICHANNEL,
    CONFIG_SEQUENCE,
    MAX_CONFIGS,
    FrameKind,
    LivePlayer,
    LiveStream,
    StreamHub,
    classify,
    config_keys,
    keyframe_tracks,
)
from rtmp.vod import FlvIndex
from tests.test_streams import Sink, audio, video, wait_for

CONNECT = "ERTMP Enhancing NetConnection connect Command"


def url_of(server: Server, path: str = "live/key") -> str:
    host, port = server.address
    return f"rtmp://{host}:{port}/{path}"


# -- connect: what the server states, what the client stated -----------------------------------


@pytest.mark.spec(CONNECT, "RTMP 7.2.1.1")
@pytest.mark.parametrize("encoding", [0, 3])
def test_result_states_the_server_caps_and_the_api_shows_the_clients(encoding: int) -> None:
    seen: List[EnhancedCaps] = []
    sent: Dict[str, Any] = {"fourCcList": ["hvc1", "av01", "Opus"],
                            "videoFourCcInfoMap": {"hvc1": 1.0, "*": 4.0},
                            "audioFourCcInfoMap": {"Opus": 3.0}, "capsEx": 7.0}
    config = ServerConfig(addr="127.0.0.1:0", on_connect=lambda c: seen.append(c.client_caps))
    with Server(config) as server:
        with Client(ClientConfig(connect_properties=sent, object_encoding=encoding)) as client:
            client.connect(url_of(server))
            props = client.server_properties
            conn: ServerConnection = server.connections[0]
            assert conn.client_caps == EnhancedCaps.from_object(sent) == seen[0]
            assert conn.client_caps.fourcc_list == ("hvc1", "av01", "Opus")
            assert conn.client_caps.has(CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK | CAPS_EX_MOD_EX)
            # GET /api/connections shows it too.
            report = stats.connections_report(server)["connections"][0]
            assert report["ertmp"] == EnhancedCaps.from_object(sent).to_properties()
    # The _result's properties: the legacy ones and the E-RTMP ones.
    assert props["fmsVer"].startswith("FMS/") and props["capabilities"] == 31
    stated = EnhancedCaps.from_object(props)
    assert stated == server_caps(reconnect=stated.has(CAPS_EX_RECONNECT))
    for fourcc in ("avc1", "hvc1", "av01", "vp09", "vp08", "vvc1"):
        assert fourcc in stated.fourcc_list
        assert stated.fourcc_flags(fourcc, video=True) == FOURCC_CAN_FORWARD
    for fourcc in ("mp4a", "Opus", "fLaC", ".mp3", "ac-3", "ec-3"):
        assert fourcc in stated.fourcc_list
        assert stated.fourcc_flags(fourcc, video=False) == FOURCC_CAN_FORWARD
    assert stated.video_fourcc_info_map["*"] == stated.audio_fourcc_info_map["*"] == FOURCC_CAN_FORWARD
    assert stated.has(CAPS_EX_MULTITRACK | CAPS_EX_MOD_EX | CAPS_EX_TIMESTAMP_NANO_OFFSET)
    # Reconnect is stated exactly when a connection can ask for one (issue 18 item 3).
    assert stated.has(CAPS_EX_RECONNECT) == callable(getattr(conn, "request_reconnect", None))


@pytest.mark.spec(CONNECT)
def test_a_legacy_client_has_empty_caps() -> None:
    # Our client states capsEx Reconnect while it follows reconnect requests (the default).
    legacy = ClientConfig(follow_reconnect_request=False)
    with Server(ServerConfig(addr="127.0.0.1:0")) as server, Client(legacy) as client:
        client.connect(url_of(server))
        caps = server.connections[0].client_caps
        assert caps == EnhancedCaps() and not caps.enhanced
        assert stats.connections_report(server)["connections"][0]["ertmp"] is None


@pytest.mark.spec(CONNECT)
def test_server_caps_reconnect_bit() -> None:
    assert server_caps(reconnect=True).caps_ex == 0x0F
    assert server_caps(reconnect=False).caps_ex == 0x0E


# -- configuration per codec and per track; the GOP cache -------------------------------------

VIDEO_CLAUSE = "ERTMP Enhanced Video"
AUDIO_CLAUSE = "ERTMP Enhanced Audio"
MULTITRACK = "ERTMP Multitrack Streaming via Enhanced RTMP"
METADATA_FRAME = "ERTMP Metadata Frame"

KEY, INTER, COMMAND = VideoFrameType.KEY, VideoFrameType.INTER, VideoFrameType.COMMAND
HVCC = b"\x01\x01\x60" + b"C" * 20  # an HEVCDecoderConfigurationRecord's first bytes
HEVC_START = build_video(KEY, VideoPacketType.SEQUENCE_START, [TrackData("hvc1", HVCC)])
HEVC_KEY = build_video(KEY, VideoPacketType.CODED_FRAMES, [TrackData("hvc1", b"K" * 40)])
HEVC_INTER = build_video(INTER, VideoPacketType.CODED_FRAMES_X, [TrackData("hvc1", b"P" * 20)])
HEVC_END = build_video(KEY, VideoPacketType.SEQUENCE_END, [TrackData("hvc1")])
# As FFmpeg 8 writes colorInfo: VideoFrameType 5 (the frame type of Metadata means nothing).
COLOR_INFO = build_video(COMMAND, VideoPacketType.METADATA, [TrackData(
    "hvc1", encode_metadata([("colorInfo", {"colorConfig": {"bitDepth": 10.0}})]))])
SEEK_START = build_video(COMMAND, VideoPacketType.CODED_FRAMES, command=0)
OPUS_HEAD = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
OPUS_START = build_audio(AudioPacketType.SEQUENCE_START, [TrackData("Opus", OPUS_HEAD)])
OPUS_CHANNELS = build_audio(AudioPacketType.MULTICHANNEL_CONFIG, [TrackData(
    "Opus", MultichannelConfig(AudioChannelOrder.UNSPECIFIED, 2).encode())])
OPUS_FRAME = build_audio(AudioPacketType.CODED_FRAMES, [TrackData("Opus", b"\xfc" + b"o" * 10)])
FLAC_START = build_audio(AudioPacketType.SEQUENCE_START, [TrackData("fLaC", b"fLaC" + b"S" * 34)])
AC3_START = build_audio(AudioPacketType.SEQUENCE_START, [TrackData("ac-3", b"")])
# ERTMP Multitrack: tracks 1 and 2 with their own codecs, in one message.
MANY_CODECS = AvMultitrackType.MANY_TRACKS_MANY_CODECS
TRACKS_START = build_video(KEY, VideoPacketType.SEQUENCE_START, [
    TrackData("av01", b"\x81\x00\x0c\x00", track_id=1),
    TrackData("vp09", b"\x01\x00\x00\x00", track_id=2)], multitrack_type=MANY_CODECS)
TRACK1_START = build_video(KEY, VideoPacketType.SEQUENCE_START, [
    TrackData("av01", b"\x81\x00\x0c\x08", track_id=1)], multitrack_type=AvMultitrackType.ONE_TRACK)
TRACKS_KEY = build_video(KEY, VideoPacketType.CODED_FRAMES, [
    TrackData("av01", b"A" * 30, track_id=1),
    TrackData("vp09", b"V" * 30, track_id=2)], multitrack_type=MANY_CODECS)
TRACK_AUDIO_START = build_audio(AudioPacketType.SEQUENCE_START, [
    TrackData("Opus", OPUS_HEAD, track_id=3)], multitrack_type=AvMultitrackType.ONE_TRACK)


def one_track(frame_type: int, track_id: int, body: bytes = b"F" * 20) -> bytes:
    return build_video(frame_type, VideoPacketType.CODED_FRAMES,
                       [TrackData("av01", body, track_id=track_id)],
                       multitrack_type=AvMultitrackType.ONE_TRACK)


@pytest.mark.spec(VIDEO_CLAUSE, AUDIO_CLAUSE, MULTITRACK, METADATA_FRAME)
def test_config_keys_name_every_track_a_message_configures() -> None:
    v, a = int(MessageType.VIDEO), int(MessageType.AUDIO)
    assert config_keys(v, HEVC_START) == ((v, CONFIG_SEQUENCE, 0),)
    assert config_keys(v, COLOR_INFO) == ((v, CONFIG_METADATA, 0),)
    assert config_keys(v, TRACKS_START) == ((v, CONFIG_SEQUENCE, 1), (v, CONFIG_SEQUENCE, 2))
    assert config_keys(a, OPUS_START) == ((a, CONFIG_SEQUENCE, 0),)
    assert config_keys(a, OPUS_CHANNELS) == ((a, CONFIG_MULTICHANNEL, 0),)
    assert config_keys(a, FLAC_START) == config_keys(a, AC3_START) == ((a, CONFIG_SEQUENCE, 0),)
    assert config_keys(a, TRACK_AUDIO_START) == ((a, CONFIG_SEQUENCE, 3),)
    assert config_keys(v, bytes([0x17, 0x00, 0, 0, 0, 1])) == ((v, CONFIG_SEQUENCE, 0),)  # AVC
    assert config_keys(a, bytes([0xAF, 0x00, 0x12, 0x10])) == ((a, CONFIG_SEQUENCE, 0),)  # AAC
    for frames in (HEVC_KEY, HEVC_INTER, HEVC_END, SEEK_START, TRACKS_KEY, b"", b"\x90"):
        assert config_keys(v, frames) == ()
    assert config_keys(a, OPUS_FRAME) == config_keys(18, HEVC_START) == ()


@pytest.mark.spec(VIDEO_CLAUSE, METADATA_FRAME)
def test_metadata_and_command_frames_are_not_keyframes() -> None:
    kinds = {name: classify(video(data, 0)) for name, data in {
        "start": HEVC_START, "key": HEVC_KEY, "inter": HEVC_INTER, "end": HEVC_END,
        "color": COLOR_INFO, "command": SEEK_START, "tracks": TRACKS_KEY,
        "nano key": build_video(KEY, VideoPacketType.CODED_FRAMES, [TrackData("hvc1", b"K")],
                                mod_ex=[ModEx.timestamp_offset_nano(500)]),
    }.items()}
    assert kinds == {"start": FrameKind.CONFIG, "key": FrameKind.KEYFRAME,
                     "inter": FrameKind.INTERFRAME, "end": FrameKind.INTERFRAME,
                     "color": FrameKind.CONFIG, "command": FrameKind.DATA,
                     "tracks": FrameKind.KEYFRAME, "nano key": FrameKind.KEYFRAME}
    assert classify(audio(OPUS_CHANNELS, 0)) == FrameKind.CONFIG  # kept for late joiners
    assert classify(audio(OPUS_FRAME, 0)) == FrameKind.AUDIO
    assert keyframe_tracks(TRACKS_KEY) == (1, 2) and keyframe_tracks(HEVC_KEY) == (0,)


def late_join(stream: LiveStream) -> List[Message]:
    """What a player that subscribes now receives first."""
    sink = Sink()
    player = LivePlayer(sink, 1)
    player.start()
    try:
        stream.attach(player)
        expected = len(stream.config_messages()) + stream.gop_length + (stream.metadata is not None)
        assert wait_for(lambda: len(sink.written) >= expected)
        return sink.messages()
    finally:
        player.close()


@pytest.mark.spec("RTMP 7.2.2.1", VIDEO_CLAUSE, AUDIO_CLAUSE, MULTITRACK, METADATA_FRAME)
def test_a_late_joiner_gets_every_tracks_configuration() -> None:
    hub = StreamHub()
    stream = hub.publish("live", "s", owner="pub")
    for kind, data, ts in [
        (MessageType.VIDEO, HEVC_START, 0), (MessageType.AUDIO, OPUS_START, 0),
        (MessageType.AUDIO, OPUS_CHANNELS, 0), (MessageType.VIDEO, COLOR_INFO, 0),
        (MessageType.VIDEO, TRACKS_START, 0), (MessageType.AUDIO, TRACK_AUDIO_START, 0),
        (MessageType.VIDEO, SEEK_START, 0), (MessageType.VIDEO, HEVC_KEY, 0),
        (MessageType.AUDIO, OPUS_FRAME, 10), (MessageType.VIDEO, HEVC_INTER, 40),
        (MessageType.VIDEO, COLOR_INFO, 1000),  # the next GOP: colorInfo, then its keyframe
        (MessageType.VIDEO, HEVC_KEY, 1000), (MessageType.VIDEO, TRACKS_KEY, 1000),
        (MessageType.AUDIO, OPUS_FRAME, 1010), (MessageType.VIDEO, HEVC_INTER, 1040),
    ]:
        stream.publish_message(Message(type=kind, data=data, timestamp=ts, message_stream_id=1))
    got = late_join(stream)
    # Every configuration once, video first (in the order they came), then the GOP from the
    # keyframe of the default track (track 1/2's keyframe joined it; colorInfo is no GOP
    # start, the command frame is not cached).
    assert [m.data for m in got] == [
        HEVC_START, TRACKS_START, COLOR_INFO, OPUS_START, OPUS_CHANNELS, TRACK_AUDIO_START,
        HEVC_KEY, TRACKS_KEY, OPUS_FRAME, HEVC_INTER,
    ]
    assert [m.timestamp for m in got[:6]] == [1000] * 6  # at the GOP's start, as nginx-rtmp
    assert stream.video_config is not None and stream.video_config.data == HEVC_START
    assert stream.audio_config is not None and stream.audio_config.data == OPUS_START
    # A new configuration of track 1 alone replaces track 1's and comes after the message
    # that still configures track 2.
    stream.publish_message(video(TRACK1_START, 1100))
    got = late_join(stream)
    assert [m.data for m in got[:4]] == [HEVC_START, TRACKS_START, COLOR_INFO, TRACK1_START]
    # The publisher leaves: nothing is kept for the next one.
    hub.unpublish(stream, "pub")
    assert stream.config_messages() == [] and stream.video_config is None


@pytest.mark.spec("RTMP 7.2.2.1", MULTITRACK)
def test_the_gop_starts_at_keyframes_of_the_lowest_track() -> None:
    stream = StreamHub().publish("live", "mt", owner="pub")
    stream.publish_message(video(TRACKS_START, 0))
    for ts, data in [(0, one_track(KEY, 1)), (0, one_track(KEY, 2)), (40, one_track(INTER, 1)),
                     (40, one_track(INTER, 2)), (80, one_track(KEY, 2)),
                     (80, one_track(INTER, 1))]:
        assert stream.publish_message(video(data, ts)) in (FrameKind.KEYFRAME, FrameKind.INTERFRAME)
    # Track 2's keyframes join the GOP that track 1's keyframe began.
    assert stream.gop_length == 6
    stream.publish_message(video(one_track(KEY, 1), 120))
    assert stream.gop_length == 1
    # A lower track appearing later becomes the one whose keyframes start GOPs.
    stream.publish_message(video(HEVC_KEY, 160))
    stream.publish_message(video(one_track(KEY, 1), 200))
    assert stream.gop_length == 2


# -- record and VOD ------------------------------------------------------------------------------


def write_flv(path: Path, tags: Sequence[Tuple[int, bytes, int]]) -> None:
    with flv.Writer(path) as writer:
        for tag_type, data, ts in tags:
            writer.write(flv.Tag(tag_type, ts, data))


@pytest.mark.spec("RTMP 7.2.2.7", VIDEO_CLAUSE, MULTITRACK, METADATA_FRAME)
def test_vod_index_keeps_every_tracks_configuration_and_real_keyframes(tmp_path: Path) -> None:
    path = tmp_path / "e.flv"
    v, a = flv.TAG_VIDEO, flv.TAG_AUDIO
    big = b"B" * 200  # longer than the index's probe: read whole when it is configuration
    tracks_start = build_video(KEY, VideoPacketType.SEQUENCE_START, [
        TrackData("av01", big, track_id=1), TrackData("vp09", big, track_id=2)],
        multitrack_type=MANY_CODECS)
    write_flv(path, [
        (v, HEVC_START, 0), (a, OPUS_START, 0), (a, OPUS_CHANNELS, 0), (v, tracks_start, 0),
        (v, COLOR_INFO, 0), (v, SEEK_START, 0), (v, HEVC_KEY, 0), (v, TRACKS_KEY, 0),
        (v, HEVC_INTER, 40), (a, OPUS_FRAME, 40), (v, COLOR_INFO, 500), (v, TRACKS_KEY, 500),
        (v, HEVC_END, 600), (v, HEVC_KEY, 1000), (v, TRACK1_START, 1000), (v, HEVC_INTER, 1040),
    ])
    index = FlvIndex(path)
    # Seek points: the default track's keyframes only (not colorInfo, the command frame,
    # track 1/2's keyframe at 500 or the SequenceEnd flagged as a key frame).
    assert index.seek_times == [0, 1000]
    first = [t.data for t in index.headers_before(index.seek_offsets[0])]
    assert first == [HEVC_START, tracks_start, COLOR_INFO, OPUS_START, OPUS_CHANNELS]
    later = [t.data for t in index.headers_before(index.end_offset)]
    assert later == [HEVC_START, tracks_start, COLOR_INFO, TRACK1_START, OPUS_START, OPUS_CHANNELS]


@pytest.mark.spec("FLV E.4.1", AUDIO_CLAUSE, METADATA_FRAME)
def test_recorder_puts_configuration_before_the_first_frame_at_the_start(tmp_path: Path) -> None:
    path = tmp_path / "r.flv"
    recorder = Recorder(path)
    # ffmpeg sends configuration at 0 even when its frames start much later.
    for kind, data, ts in [(MessageType.VIDEO, HEVC_START, 0), (MessageType.AUDIO, OPUS_START, 0),
                           (MessageType.AUDIO, OPUS_CHANNELS, 0), (MessageType.VIDEO, COLOR_INFO, 3),
                           (MessageType.VIDEO, HEVC_KEY, 3_600_000),
                           (MessageType.AUDIO, OPUS_FRAME, 3_600_020)]:
        recorder.write(Message(type=kind, data=data, timestamp=ts, message_stream_id=1))
    recorder.close()
    assert [(t.timestamp, t.data) for t in flv.Reader(path)] == [
        (0, HEVC_START), (0, OPUS_START), (0, OPUS_CHANNELS), (0, COLOR_INFO), (0, HEVC_KEY),
        (20, OPUS_FRAME)]


# -- onMetaData with FourCC codec ids (ERTMP Enhancing onMetaData) -----------------------------


@pytest.mark.spec("ERTMP Enhancing onMetaData", "FLV E.5")
@pytest.mark.parametrize(("value", "video", "expected"), [
    (1635135537.0, True, {"codec": "AV1", "fourcc": "av01"}),  # the document's example
    (1332770163.0, False, {"codec": "Opus", "fourcc": "Opus"}),  # the document's example
    (1752589105.0, True, {"codec": "HEVC", "fourcc": "hvc1"}),  # what FFmpeg 8 writes
    ("vp09", True, {"codec": "VP9", "fourcc": "vp09"}),
    (0x2E6D7033, False, {"codec": "MP3", "fourcc": ".mp3"}),
    ("abcd", True, {"codec": "abcd", "fourcc": "abcd"}),  # unknown FourCC: kept as itself
    (7.0, True, {"codec": "H.264", "codec_id": 7}),
    (10.0, False, {"codec": "AAC", "codec_id": 10}),
    (True, True, None), (float("nan"), True, None), (7.5, True, None), (-1.0, False, None),
    (2.0**32, True, None), ("hvc", True, None), (0x01020304, True, None), (None, True, None),
])
def test_metadata_codec_reads_codec_ids_and_fourccs(value: Any, video: bool,
                                                    expected: Any) -> None:
    assert metadata_codec(value, video=video) == expected


@pytest.mark.spec("ERTMP Enhancing onMetaData")
def test_trace_names_the_fourcc_codec_ids_of_onmetadata() -> None:
    line = trace.describe_message(commands.metadata(
        {"width": 160.0, "videocodecid": 1635135537.0, "audiocodecid": "Opus"}, 1))
    assert "videocodecid = FourCC av01: AV1; audiocodecid = FourCC Opus: Opus" in line
    assert "(ERTMP Enhancing onMetaData)" in line
    legacy = trace.describe_message(commands.metadata({"videocodecid": 7.0}, 1))
    assert "videocodecid = CodecID 7: H.264 (FLV E.5)" in legacy
    plain = trace.describe_message(commands.metadata({"width": 1.0}, 1))
    assert "FLV E.5" not in plain and "ERTMP" not in plain


# -- hostile publishers ------------------------------------------------------------------------


@pytest.mark.spec(MULTITRACK, VIDEO_CLAUSE)
def test_a_publisher_cannot_grow_the_configuration_cache_or_break_classification() -> None:
    stream = StreamHub().publish("live", "h", owner="pub")
    # 256 tracks' sequence starts, one message each: the cache keeps the latest MAX_CONFIGS.
    for track in range(256):
        stream.publish_message(video(build_video(KEY, VideoPacketType.SEQUENCE_START, [
            TrackData("av01", b"\x81", track_id=track)],
            multitrack_type=AvMultitrackType.ONE_TRACK), 0))
    keys = [key for key, _ in stream.track_configs()]
    assert len(keys) == MAX_CONFIGS and keys[-1] == (int(MessageType.VIDEO), CONFIG_SEQUENCE, 255)
    # A multitrack message whose sizeOfTrack lies, an unknown FourCC, a nano offset over
    # 999,999: relayed as frames (never a configuration or a GOP start), nothing raises.
    lying = bytearray(TRACKS_START)
    lying[7:10] = (0xFFFFFF).to_bytes(3, "big")  # the first track's sizeOfTrack
    too_late = (bytes([0x97, 0x02]) + (1_000_000).to_bytes(3, "big") + bytes([0x01]) + b"hvc1"
                + b"\x00\x00\x00K")
    unknown = build_video(KEY, VideoPacketType.SEQUENCE_START, [TrackData("abcd", b"x")])
    assert config_keys(int(MessageType.VIDEO), bytes(lying)) == ()
    assert stream.publish_message(video(bytes(lying), 10)) == FrameKind.INTERFRAME
    assert stream.publish_message(video(too_late, 10)) == FrameKind.INTERFRAME
    # An unknown FourCC is forwarded ("*": CanForward) and its configuration kept.
    assert stream.publish_message(video(unknown, 10)) == FrameKind.CONFIG
    assert stream.config_messages()[-1].data == unknown
