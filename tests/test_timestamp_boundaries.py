"""Timestamps at their two boundaries, end to end (issue 20, item 4).

A stream that has run 4.66 hours reaches 0xFFFFFF ms: from there on every chunk header
carries the timestamp in the Extended Timestamp field, type 3 continuation chunks
included (RTMP 5.3.1.3).  One that has run about 49.7 days passes 0xFFFFFFFF ms and wraps
to 0 (RTMP 3: serial arithmetic on timestamps; RTMP 5.3.1: timestamps are 32 bits).  The
chunk-level rules are tested in tests/test_chunk.py; here streams that start just before
each boundary go publisher -> rtmp.Server -> player, and into a record_all recording cut
into parts across the boundary: the player gets every frame with the publisher's exact
timestamp, and each part holds its frames from 0, monotonic.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from rtmp import Client, ClientConfig, Server, ServerConfig, commands, flv
from rtmp.message import Message, MessageType
from rtmp.record_path import list_parts
from tests.test_vod import AAC_SEQUENCE_HEADER, AVC_SEQUENCE_HEADER, read_tags

#: (id, first timestamp): 0.6 s before the extended-timestamp threshold, and before the wrap.
STARTS = [("extended-0xFFFFFF", 0xFFFFFF - 600), ("wrap-2^32", 0x100000000 - 600)]

Frame = Tuple[int, int, bytes]  # (type, timestamp, data)


def stream(start: int, seconds: float = 1.2, size: int = 300) -> List[Message]:
    """Metadata, sequence headers, then 25 fps video (a keyframe every 0.4 s, frames of
    ``size`` bytes, so several chunks each at the default 128) and AAC every 23 ms, with
    publisher timestamps from ``start`` (mod 2^32)."""
    out = [commands.metadata({"width": 320.0}, 1, timestamp=start & 0xFFFFFFFF),
           Message(type=MessageType.VIDEO, data=AVC_SEQUENCE_HEADER, timestamp=start & 0xFFFFFFFF),
           Message(type=MessageType.AUDIO, data=AAC_SEQUENCE_HEADER, timestamp=start & 0xFFFFFFFF)]
    events = []
    end = int(seconds * 1000)
    for i, t in enumerate(range(0, end, 40)):
        head = b"\x17\x01\x00\x00\x00" if t % 400 == 0 else b"\x27\x01\x00\x00\x00"
        events.append((t, 1, head + i.to_bytes(4, "big") + bytes(size)))
    for i, t in enumerate(range(0, end, 23)):
        events.append((t, 0, b"\xaf\x01" + i.to_bytes(4, "big") + b"A" * 40))
    for t, kind, data in sorted(events):
        out.append(Message(type=MessageType.VIDEO if kind else MessageType.AUDIO, data=data,
                           timestamp=(start + t) & 0xFFFFFFFF))
    return out


def frames(messages: List[Message]) -> List[Frame]:
    return [(int(m.type), m.timestamp, bytes(m.data)) for m in messages
            if m.type in (MessageType.AUDIO, MessageType.VIDEO) and not flv.is_sequence_header(m)]


def crosses(values: List[int], start: int) -> bool:
    """Whether the timestamps pass the boundary ``start`` was chosen before."""
    if start >= 0x100000000 - 600:
        return min(values) < 1000 and max(values) > 0xFFFF0000
    return min(values) < 0xFFFFFF <= max(values)


@pytest.mark.spec("RTMP 5.3.1.3", "RTMP 5.3.1", "RTMP 3", "RTMP 7.2.2.1")
@pytest.mark.parametrize("start", [s for _, s in STARTS], ids=[i for i, _ in STARTS])
@pytest.mark.parametrize("chunk_size", [128, 4096])
def test_publish_play_and_record_across_the_boundary(tmp_path: Path, start: int,
                                                     chunk_size: int) -> None:
    """The player gets every frame with the publisher's timestamp across the boundary,
    whatever chunk header types carried it (frames of 300 bytes span type 3 chunks at
    chunk size 128, each repeating the extended timestamp); the record_all parts (cut
    every 0.4 s, so cuts fall on both sides of it) add up to the frames, each from 0."""
    source = stream(start)
    want = frames(source)
    assert crosses([f[1] for f in want], start)
    config = ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path, record_all=True,
                          record_segment_seconds=0.4, chunk_size=chunk_size)
    with Server(config) as server:
        host, port = server.address
        url = f"rtmp://{host}:{port}/live"
        got: List[Message] = []
        playing = threading.Event()

        def play() -> None:
            with Client() as player:
                player.connect(url)
                player.play("cam")
                playing.set()
                got.extend(player.messages(timeout=10))

        thread = threading.Thread(target=play)
        thread.start()
        try:
            assert playing.wait(10)
            with Client(ClientConfig(chunk_size=chunk_size)) as publisher:
                publisher.connect(url)
                publisher.publish("cam")
                for msg in source:
                    publisher.write_message(msg.replace(message_stream_id=publisher.stream_id))
        finally:
            thread.join(20)
        assert not thread.is_alive()
        parts = [p for _, p in list_parts(tmp_path, "live", "cam")]
    assert frames(got) == want
    recorded: List[Tuple[int, bytes]] = []
    for path in parts:
        tags = [t for t in read_tags(path) if t.type in (8, 9)]
        times = [t.timestamp for t in tags]
        assert times[0] == 0 and max(times) < 600, path.name
        assert [t.data for t in tags[:2]] == [AVC_SEQUENCE_HEADER, AAC_SEQUENCE_HEADER]
        media = [t for t in tags if not flv.is_sequence_header(t)]
        for kind in (8, 9):  # FLV E.4.1: each kind's timestamps never go back in a file
            kind_times = [t.timestamp for t in media if t.type == kind]
            assert kind_times == sorted(kind_times), path.name
        recorded += [(t.type, t.data) for t in media]
    assert len(parts) == 3
    assert recorded == [(kind, data) for kind, _, data in want]


@pytest.mark.spec("RTMP 5.3.1.3", "RTMP 3", "FLV E.4.1")
@pytest.mark.parametrize("start", [s for _, s in STARTS], ids=[i for i, _ in STARTS])
def test_record_type_across_the_boundary_plays_back(tmp_path: Path, start: int) -> None:
    """Publishing type record across the boundary: the file's timeline is the
    publisher's, from 0 and without a jump; played back (VOD) it gives every frame."""
    source = stream(start)
    with Server(ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path)) as server:
        host, port = server.address
        with Client() as publisher:
            publisher.connect(f"rtmp://{host}:{port}/live")
            publisher.publish("movie", "record")
            for msg in source:
                publisher.write_message(msg.replace(message_stream_id=publisher.stream_id))
        tags = [t for t in read_tags(tmp_path / "live" / "movie.flv") if t.type in (8, 9)]
        expected = [((ts - start) & 0xFFFFFFFF, data) for _, ts, data in frames(source)]
        assert [(t.timestamp, t.data) for t in tags if not flv.is_sequence_header(t)] == expected
        started = time.monotonic()
        with Client() as player:
            player.connect(f"rtmp://{host}:{port}/live")
            player.play("movie", start=0)
            played = frames(list(player.messages(timeout=10)))
        assert [(ts, data) for _, ts, data in played] == expected
        assert time.monotonic() - started < 10
