"""Enhanced RTMP v2 (conformance): what a server does with E-RTMP clients and streams.

* ``ertmp.connect-caps``: a client that states ``fourCcList``, the FourCC info maps and
  ``capsEx`` at connect is accepted, and the ``_result`` states the server's support
  ("The server SHOULD state its support via attributes such as videoFourCcInfoMap,
  capsEx", ERTMP Enhancing NetConnection connect Command): WARN when it states none.
* ``ertmp.late-joiner``: a player joining an HEVC + Opus stream gets both SequenceStart
  packets, byte for byte, before the first coded frames of each.
* ``ertmp.multitrack-relay``: multitrack video (HEVC and AV1 tracks) and audio (two Opus
  tracks), and a TimestampOffsetNano ModEx message, pass byte-identical.

The payloads are built with :mod:`rtmp.ertmp` (the codec data is random: servers relay it,
they do not decode it).
"""

from __future__ import annotations

import random
from typing import List, Tuple

from ..ertmp import (
    AudioPacketType,
    AvMultitrackType,
    ModEx,
    TrackData,
    VideoFrameType,
    VideoPacketType,
    build_audio,
    build_video,
)
from ..message import DATA_TYPES, MessageType
from ..requests import (
    CAPS_EX_MOD_EX,
    CAPS_EX_MULTITRACK,
    CAPS_EX_RECONNECT,
    CAPS_EX_TIMESTAMP_NANO_OFFSET,
    FOURCC_CAN_DECODE,
    FOURCC_CAN_FORWARD,
    Connect,
    EnhancedCaps,
)
from .checks import Pair, Write, other_data, relay_compare, is_sync
from .context import Context, MediaSample
from .registry import Result, check, fail

__all__: List[str] = []  # the checks register themselves in registry.CHECKS

#: What the probe states at connect: every capability, so a server has something to answer.
PROBE_CAPS = EnhancedCaps(
    ("hvc1", "av01", "vp09", "avc1", "Opus", "mp4a"),
    {"*": FOURCC_CAN_FORWARD, "hvc1": FOURCC_CAN_DECODE},
    {"*": FOURCC_CAN_FORWARD, "Opus": FOURCC_CAN_DECODE},
    CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK | CAPS_EX_MOD_EX | CAPS_EX_TIMESTAMP_NANO_OFFSET,
)

_KEY, _INTER = VideoFrameType.KEY, VideoFrameType.INTER
_OPUS_HEAD = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"  # RFC 7845 5.1, stereo


@check("ertmp.connect-caps", "ERTMP Enhancing NetConnection connect Command",
       "a connect with fourCcList, FourCC info maps and capsEx is accepted; _result states capsEx")
def connect_caps(ctx: Context) -> Result:
    conn = ctx.connection("ertmp-caps", connect=False)
    url = ctx.url
    request = Connect.create(url.app, url.tc_url, extra=PROBE_CAPS.to_properties())
    conn.send(conn.calls.request(request, transaction_id=1)[0])
    reply = conn.wait_reply(1, "_result to an Enhanced RTMP connect")
    if reply.name != "_result":
        fail(f"a connect stating E-RTMP capabilities is refused: {reply.name} {reply.info}")
    found = [(where, value) for where, value in (("properties", reply.command_object),
                                                 ("information", reply.info))
             if isinstance(value, dict) and "capsEx" in value]
    if not found:
        stated = EnhancedCaps.from_object(reply.command_object)
        if stated.enhanced:
            return Result.warning(f"no capsEx, but {sorted(stated.to_properties())}")
        return Result.warning("the _result states no E-RTMP support (no capsEx, FourCC "
                              "info maps or fourCcList): the document says SHOULD")
    where, obj = found[0]
    caps = EnhancedCaps.from_object(obj)
    if caps.caps_ex is None:
        fail(f"capsEx in the {where} object is {obj.get('capsEx')!r}, not a number")
    names = [name for name, bit in (("Reconnect", CAPS_EX_RECONNECT),
                                    ("Multitrack", CAPS_EX_MULTITRACK), ("ModEx", CAPS_EX_MOD_EX),
                                    ("TimestampNanoOffset", CAPS_EX_TIMESTAMP_NANO_OFFSET))
             if caps.has(bit)]
    maps = [key for key in ("videoFourCcInfoMap", "audioFourCcInfoMap", "fourCcList") if key in obj]
    return Result.passed(f"capsEx {caps.caps_ex} ({', '.join(names) or 'no bit'}) in the "
                         f"{where} object; also {', '.join(maps) or 'nothing else'}")


def _hevc(frame_type: int, packet_type: int, body: bytes) -> bytes:
    return build_video(frame_type, packet_type, [TrackData("hvc1", body)])


def _opus(packet_type: int, body: bytes) -> bytes:
    return build_audio(packet_type, [TrackData("Opus", body)])


def _coded(message_type: int, data: bytes) -> bool:
    """An E-RTMP message of coded frames (not a sequence start)."""
    return bool(data) and data[0] & 0x0F in (
        (VideoPacketType.CODED_FRAMES, VideoPacketType.CODED_FRAMES_X)
        if message_type == MessageType.VIDEO else (AudioPacketType.CODED_FRAMES,))


@check("ertmp.late-joiner", "ERTMP Enhanced Video",
       "a player joining an HEVC + Opus stream gets both SequenceStart packets first")
def late_joiner(ctx: Context) -> Result:
    rng = random.Random("ertmp-late")
    hvcc = b"\x01\x01\x60\x00\x00\x00" + rng.randbytes(40)
    video_start = _hevc(_KEY, VideoPacketType.SEQUENCE_START, hvcc)
    audio_start = _opus(AudioPacketType.SEQUENCE_START, _OPUS_HEAD)

    def frames(start: int, count: int) -> List[MediaSample]:
        out = []
        for index in range(count):
            ts = start + index * 40
            kind = _KEY if index == 0 else _INTER
            out.append(MediaSample(MessageType.VIDEO, ts, build_video(kind, VideoPacketType.CODED_FRAMES, [
                TrackData("hvc1", rng.randbytes(300), composition_time=0)])))
            out.append(MediaSample(MessageType.AUDIO, ts, _opus(AudioPacketType.CODED_FRAMES,
                                                                b"\xfc" + rng.randbytes(60))))
        return out

    def start_stream(pair: Pair) -> None:
        pair.send([MediaSample(MessageType.VIDEO, 0, video_start),
                   MediaSample(MessageType.AUDIO, 0, audio_start), *frames(0, 4)])
        pair.publisher.create_stream()  # a round trip: the server has read all of it

    pair = Pair(ctx, "ertmp-late", before_play=start_stream)
    # A new keyframe after the player joined (servers without a GOP cache start there).
    pair.send(frames(1000, 4))

    def received() -> List[Tuple[int, bytes]]:
        return [(m.type, m.data) for m in pair.media()
                if not is_sync(m) and not other_data(m) and m.type not in DATA_TYPES]

    def has_frames(kind: int) -> bool:
        return any(_coded(t, d) for t, d in received() if t == kind)

    if pair.player.poll(lambda _: has_frames(MessageType.VIDEO) and has_frames(MessageType.AUDIO),
                        ctx.timeout) is None:
        missing = [name for kind, name in ((MessageType.VIDEO, "HEVC"), (MessageType.AUDIO, "Opus"))
                   if not has_frames(kind)]
        videos = sum(1 for t, _ in received() if t == MessageType.VIDEO)
        fail(f"no {' and no '.join(missing)} frame reached the late joiner within "
             f"{ctx.timeout:g} s ({videos} video messages arrived)")
    got = received()
    problems = []
    for kind, start, name in ((MessageType.VIDEO, video_start, "HEVC"),
                              (MessageType.AUDIO, audio_start, "Opus")):
        first = next(i for i, (t, d) in enumerate(got) if t == kind and _coded(t, d))
        starts = [d for t, d in got[:first] if t == kind]
        if not starts:
            problems.append(f"no {name} SequenceStart before the first {name} frame")
        elif starts[-1] != start:
            problems.append(f"the {name} SequenceStart differs from the published one")
    if problems:
        fail("; ".join(problems))
    return Result.passed("HEVC and Opus SequenceStart byte-identical before the first frames")


@check("ertmp.multitrack-relay", "ERTMP Multitrack Streaming via Enhanced RTMP",
       "multitrack video and audio messages, and a ModEx message, pass byte-identical")
def multitrack_relay(ctx: Context) -> Result:
    pair = Pair(ctx, "ertmp-mt")
    rng = random.Random("ertmp-multitrack")
    many_codecs = AvMultitrackType.MANY_TRACKS_MANY_CODECS
    samples: List[MediaSample] = [
        MediaSample(MessageType.VIDEO, 0, build_video(_KEY, VideoPacketType.SEQUENCE_START, [
            TrackData("hvc1", b"\x01" + rng.randbytes(30), track_id=0),
            TrackData("av01", b"\x81\x00\x0c\x00", track_id=1)], multitrack_type=many_codecs)),
        MediaSample(MessageType.AUDIO, 0, build_audio(AudioPacketType.SEQUENCE_START, [
            TrackData("Opus", _OPUS_HEAD, track_id=0), TrackData("Opus", _OPUS_HEAD, track_id=1)],
            multitrack_type=AvMultitrackType.MANY_TRACKS)),
    ]
    for index in range(4):
        ts = index * 40
        kind = _KEY if index == 0 else _INTER
        samples.append(MediaSample(MessageType.VIDEO, ts, build_video(
            kind, VideoPacketType.CODED_FRAMES, [
                TrackData("hvc1", rng.randbytes(2000 if index == 1 else 200), track_id=0),
                TrackData("av01", rng.randbytes(150), track_id=1)], multitrack_type=many_codecs)))
        samples.append(MediaSample(MessageType.AUDIO, ts, build_audio(
            AudioPacketType.CODED_FRAMES, [TrackData("Opus", rng.randbytes(40), track_id=t)
                                           for t in (0, 1)],
            multitrack_type=AvMultitrackType.MANY_TRACKS)))
    # One track per message (OneTrack) and a TimestampOffsetNano ModEx.
    samples.append(MediaSample(MessageType.VIDEO, 160, build_video(
        _INTER, VideoPacketType.CODED_FRAMES, [TrackData("av01", rng.randbytes(90), track_id=1)],
        multitrack_type=AvMultitrackType.ONE_TRACK)))
    samples.append(MediaSample(MessageType.VIDEO, 200, build_video(
        _INTER, VideoPacketType.CODED_FRAMES, [TrackData("hvc1", rng.randbytes(90))],
        mod_ex=[ModEx.timestamp_offset_nano(500_000)])))
    writes: List[Write] = [(pair.message(s), s) for s in samples]
    return Result.passed(relay_compare(pair, writes, "multitrack"))
