"""ERTMP Enhanced Video / Audio: hostile extended headers from a publisher.

ModEx size escapes chained without end, multitrack sizes and counts that lie, nano offsets
over 999,999, unknown FourCCs and reserved values: the header parser (:mod:`rtmp.ertmp`)
refuses each with a DecodeError naming the section, in time linear in the message, and the
server -- which forwards media untouched -- relays them byte for byte as opaque frames (never
a keyframe, never a cached sequence header), ends no session and loses nothing for the
healthy pair or for this stream's player.
"""

from __future__ import annotations

import time
from typing import List

import pytest

import rtmp
from rtmp import ertmp, flv
from rtmp.message import Message, MessageType
from tests.hostile.harness import HostileEnv
from tests.hostile.test_load_hostile import raw_publisher

pytestmark = pytest.mark.timeout(60)


def ui24(value: int) -> bytes:
    return value.to_bytes(3, "big")


#: Hand-built by the v2 layout; each is refused by the strict parser.
HOSTILE_VIDEO = {
    # 0x80|key<<4|ModEx, then 20,000 ModEx blocks (size 3, nano 1) that each announce another.
    "mod-ex-chain": b"\x97" + (b"\x02" + ui24(1) + b"\x07") * 20_000,
    # size escape 256 -> UI16 0xFFFF: 65,536 bytes announced, 10 present.
    "mod-ex-escape-overrun": b"\x97\xff\xff\xff" + bytes(10),
    "nano-over-999999": b"\x97\x02" + ui24(1_000_000) + b"\x01hvc1" + ui24(0) + b"N",
    "nano-two-bytes": b"\x97\x01\x00\x01\x01hvc1" + ui24(0),
    # Multitrack ManyTracks, CodedFramesX, 'hvc1', one track claiming 16 MiB - 1.
    "track-size-lies": b"\x96\x13hvc1\x00" + ui24(0xFFFFFF) + b"short",
    # the second of two tracks lies.
    "second-track-lies": b"\x96\x13hvc1\x00" + ui24(1) + b"a\x01" + ui24(500) + b"b",
    "track-without-size": b"\x96\x13hvc1\x00\x00",
    "many-tracks-no-track": b"\x96\x13hvc1",
    "reserved-multitrack-type": b"\x96\x33hvc1\x00" + ui24(0),
    "multitrack-inside-multitrack": b"\x96\x16hvc1",
    "unknown-fourcc": b"\x91xyz1" + ui24(0) + b"frame",
    "reserved-packet-type": b"\x9chvc1",
    "reserved-frame-type": b"\xf1hvc1" + ui24(0),
    "command-without-byte": b"\xd1",
    "cts-cut-short": b"\x91avc1\x00",
}
HOSTILE_AUDIO = {
    "audio-mod-ex-chain": b"\x97" + (b"\x02" + ui24(1) + b"\x07") * 20_000,
    "audio-nano-over": b"\x97\x02" + ui24(999_999 + 1) + b"\x01Opus",
    "audio-track-lies": b"\x95\x21Opus\x00" + ui24(99) + b"x",
    "audio-reserved-6": b"\x96Opus",
    "audio-unknown-fourcc": b"\x90abcd",
    "multichannel-short": b"\x94Opus\x01\x06\x00",
}
HEVC_START = b"\x90hvc1" + b"hvcC-config"
HEVC_KEY = b"\x91hvc1" + ui24(0) + b"K" * 2000
HEVC_INTER = b"\xa3hvc1" + b"i" * 300


@pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio",
                  "ERTMP Multitrack Streaming via Enhanced RTMP")
def test_hostile_extended_headers_are_refused_by_the_parser_in_bounded_time() -> None:
    started = time.perf_counter()
    for name, data in HOSTILE_VIDEO.items():
        unknown_ok = name == "unknown-fourcc"
        with pytest.raises(ertmp.DecodeError, match=r"\(ERTMP "):
            ertmp.parse_video(data)
        if unknown_ok:  # passed through: a keyframe of a codec the relay does not know
            assert not ertmp.video_tracks(data)[0].known and flv.is_keyframe(flv.Tag(9, 0, data))
        else:
            with pytest.raises(ertmp.DecodeError):
                ertmp.parse_video(data, allow_unknown=True)
            assert ertmp.video_tracks(data) == ()
            assert not flv.is_keyframe(flv.Tag(9, 0, data)), name
        assert not flv.is_sequence_header(flv.Tag(9, 0, data)), name
    for name, data in HOSTILE_AUDIO.items():
        with pytest.raises(ertmp.DecodeError, match=r"\(ERTMP "):
            ertmp.parse_audio(data)
        # An unknown FourCC is the one pass-through: a relay keeps its SequenceStart
        # ("*" in fourCcList, ERTMP Enhancing NetConnection connect Command).
        unknown = name == "audio-unknown-fourcc"
        assert flv.is_sequence_header(flv.Tag(8, 0, data)) == unknown, name
        assert bool(ertmp.audio_tracks(data)) == unknown, name
    # Two 100 KB chains among them: bounded by the ModEx cap, not by the message length.
    assert time.perf_counter() - started < 2.0


@pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio",
                  "ERTMP Multitrack Streaming via Enhanced RTMP")
def test_server_relays_hostile_headers_untouched(hostile: HostileEnv) -> None:
    name = "ertmp-hostile"
    player = rtmp.Client(rtmp.ClientConfig(connect_timeout=5, read_timeout=5))
    player.connect(hostile.url)
    player.play(name)
    peer, msid = raw_publisher(hostile.address, name)
    try:
        sent = [Message(type=MessageType.VIDEO, data=HEVC_START, message_stream_id=msid),
                Message(type=MessageType.VIDEO, data=HEVC_KEY, message_stream_id=msid)]
        timestamp = 0
        for data in list(HOSTILE_VIDEO.values()):
            timestamp += 10
            sent.append(Message(type=MessageType.VIDEO, data=data, timestamp=timestamp,
                                message_stream_id=msid))
        for data in HOSTILE_AUDIO.values():
            timestamp += 10
            sent.append(Message(type=MessageType.AUDIO, data=data, timestamp=timestamp,
                                message_stream_id=msid))
        sent.append(Message(type=MessageType.VIDEO, data=HEVC_INTER, timestamp=timestamp + 10,
                            message_stream_id=msid))
        for message in sent:
            assert peer.send_message(message)
        received: List[Message] = []
        for _ in range(len(sent) + 20):  # bounded: data messages may come first
            message = player.read_message(timeout=5)
            if message.type in (MessageType.AUDIO, MessageType.VIDEO):
                received.append(message)
            if len(received) == len(sent):
                break
        assert [(m.type, m.data) for m in received] == [(m.type, m.data) for m in sent]
        assert peer.is_open(0.5), "the server ended a session over a header it need not parse"
        # The live stream cached the real video sequence start, not a hostile message.
        stream = hostile.server.hub.get("live", name)
        assert stream is not None and stream.video_config is not None
        assert stream.video_config.data == HEVC_START
    finally:
        peer.close()
        player.close()
    hostile.assert_healthy()
