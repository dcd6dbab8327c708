"""Timestamps at their boundaries with real programs (issue 20, item 4).

* ffmpeg publishes with ``-output_ts_offset`` so its timestamps cross 0xFFFFFF ms (it
  then writes RTMP 5.3.1.3 extended timestamps): an rtmp.Client player gets every frame
  with exactly the timestamp ffmpeg writes to a file with the same options, ffmpeg plays
  the stream back from the server, and the record_all parts add up to the source.
* ffmpeg cannot cross the 32-bit wrap (its FLV muxer keeps 31 bits), so rtmp.Client
  publishes the sample from 2^32 - 2 s: ffmpeg plays it live across the wrap (RTMP 3:
  the timeline goes on), and ffprobe reads every recorded part from 0 without a jump.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from rtmp import Client, Server, ServerConfig, flv
from rtmp.message import Message
from rtmp.record_path import list_parts
from tests.conftest import require_peer
from tests.interop.test_record_vod import source_messages
from tests.interop.test_server_ffmpeg import (
    Proc,
    ffmpeg_copy,
    ffmpeg_publish,
    packet_times,
    player_count,
    wait_until,
)
from tests.media import sample_flv
from tests.peers import ffprobe_json, run

pytestmark = pytest.mark.interop

#: ffmpeg's -output_ts_offset (seconds): 2.215 s before 0xFFFFFF ms = 16777.215 s.
EXTENDED_OFFSET = "16775"

Frame = Tuple[int, int, bytes]


def is_frame(item: "flv.Tag | Message") -> bool:
    return int(item.type) in (8, 9) and not flv.is_sequence_header(item)


def media_counts(path: Path) -> Dict[str, int]:
    counts = ffprobe_json(path)["packet_counts"]
    return {k: v for k, v in counts.items() if k in ("video", "audio")}


def record_server(tmp_path: Path) -> Server:
    return Server(ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path / "rec", record_all=True,
                               record_segment_seconds=2))


def start_player(url: str, got: List[Message]) -> Tuple[threading.Thread, threading.Event]:
    """An rtmp.Client playing ``url``'s stream ``cam`` (waiting for it) on a thread."""
    playing = threading.Event()

    def play() -> None:
        with Client() as player:
            player.connect(url)
            player.play("cam")
            playing.set()
            got.extend(player.messages(timeout=20))

    thread = threading.Thread(target=play)
    thread.start()
    assert playing.wait(10)
    return thread, playing


def check_parts(record_dir: Path, want: Dict[str, int]) -> None:
    """Every part probes from 0 with monotonic packets; together they hold ``want``."""
    parts = [p for _, p in list_parts(record_dir, "live", "cam")]
    assert len(parts) == 2  # 4 s cut every 2 s
    total: Dict[str, int] = {}
    for path in parts:
        info = ffprobe_json(path)
        assert float(info["format"]["start_time"]) < 0.05, path.name
        assert float(info["format"]["duration"]) < 2.5, path.name
        assert info["packet_counts"].get("video") == 50, path.name  # two whole GOPs
        for kind, times in packet_times(info).items():
            assert times == sorted(times), (path.name, kind)
            total[kind] = total.get(kind, 0) + len(times)
    assert total == want


@pytest.mark.spec("RTMP 5.3.1.3", "RTMP 7.2.2.1", "RTMP 7.2.2.6")
def test_ffmpeg_publishes_across_0xffffff(tmp_path: Path) -> None:
    ffmpeg = require_peer("ffmpeg")
    require_peer("ffprobe")
    source = sample_flv(seconds=4)
    reference = tmp_path / "reference.flv"  # what ffmpeg sends: the same options, to a file
    run([ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(source),
         "-c", "copy", "-output_ts_offset", EXTENDED_OFFSET, "-f", "flv", str(reference)],
        check=True)
    want = [(t.type, t.timestamp, t.data) for t in flv.read_all(reference) if is_frame(t)]
    assert min(ts for _, ts, _ in want) < 0xFFFFFF < max(ts for _, ts, _ in want)
    with record_server(tmp_path) as server:
        host, port = server.address
        got: List[Message] = []
        thread, _ = start_player(f"rtmp://{host}:{port}/live", got)
        copy = Proc(ffmpeg_copy(f"rtmp://{host}:{port}/live/cam", tmp_path / "copy.flv"),
                    tmp_path / "copy.log")
        try:
            wait_until(lambda: player_count(server, name="cam") == 2, 15, "two players")
            publisher = Proc(ffmpeg_publish(f"rtmp://{host}:{port}/live/cam", source,
                                            paced=False,
                                            extra=["-output_ts_offset", EXTENDED_OFFSET]),
                             tmp_path / "publish.log")
            assert publisher.wait(60) == 0, publisher.stderr()
            assert copy.wait(60) == 0, copy.stderr()
        finally:
            copy.stop()
            thread.join(30)
    assert not thread.is_alive()
    assert [(int(m.type), m.timestamp, bytes(m.data)) for m in got if is_frame(m)] == want
    # ffmpeg as the player reads the extended timestamps back: every packet, in order.
    played = ffprobe_json(tmp_path / "copy.flv")
    assert {k: len(v) for k, v in packet_times(played).items()} == media_counts(source)
    for kind, times in packet_times(played).items():
        assert times == sorted(times), kind
    check_parts(tmp_path / "rec", media_counts(source))


@pytest.mark.spec("RTMP 3", "RTMP 5.3.1", "RTMP 7.2.2.6")
def test_wrap_of_the_32_bit_clock_to_ffmpeg_and_the_recording(tmp_path: Path) -> None:
    require_peer("ffmpeg")
    require_peer("ffprobe")
    source = sample_flv(seconds=4)
    base = 0x100000000 - 2000  # 2 s before the wrap: about 49.7 days into the stream
    messages = list(source_messages(source, base=base))
    times = [m.timestamp for m in messages if is_frame(m)]
    assert max(times) > 0xFFFF0000 and min(times) < 2000  # the timeline wraps
    with record_server(tmp_path) as server:
        host, port = server.address
        got: List[Message] = []
        thread, _ = start_player(f"rtmp://{host}:{port}/live", got)
        copy = Proc(ffmpeg_copy(f"rtmp://{host}:{port}/live/cam", tmp_path / "copy.flv"),
                    tmp_path / "copy.log")
        try:
            wait_until(lambda: player_count(server, name="cam") == 2, 15, "two players")
            with Client() as publisher:
                publisher.connect(f"rtmp://{host}:{port}/live")
                publisher.publish("cam")
                for msg in messages:
                    publisher.write_message(msg.replace(message_stream_id=publisher.stream_id))
            assert copy.wait(60) == 0, copy.stderr()
        finally:
            copy.stop()
            thread.join(30)
    assert not thread.is_alive()
    want = [(int(m.type), m.timestamp, bytes(m.data)) for m in messages if is_frame(m)]
    assert [(int(m.type), m.timestamp, bytes(m.data)) for m in got if is_frame(m)] == want
    played = packet_times(ffprobe_json(tmp_path / "copy.flv"))
    assert {k: len(v) for k, v in played.items()} == media_counts(source)
    for kind, kind_times in played.items():  # ffmpeg's player carries on past the wrap
        assert kind_times == sorted(kind_times), kind
        assert kind_times[-1] - kind_times[0] < 4100, kind
    check_parts(tmp_path / "rec", media_counts(source))
