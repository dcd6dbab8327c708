"""Recording and VOD against real programs: ffprobe reads what rtmp.vod records (also after
a SIGKILL mid-stream), and ffmpeg / rtmpdump play recordings from rtmp.Server."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, Iterator

import pytest

import rtmp
from rtmp import flv
from rtmp.message import Message
from rtmp.vod import Recorder
from tests.conftest import require_peer
from tests.media import sample_flv
from tests.peers import ffprobe_json, run

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]


def is_frame(tag: flv.Tag) -> bool:
    """Whether ffprobe reports the tag as a packet (media, not codec configuration)."""
    if tag.type not in (flv.TAG_AUDIO, flv.TAG_VIDEO) or flv.is_sequence_header(tag):
        return False
    if tag.type == flv.TAG_VIDEO:
        return flv.VideoTagHeader.parse(tag.data).packet_type != flv.AVC_END_OF_SEQUENCE
    return True


def frame_counts(path: Path) -> Dict[str, int]:
    """Frames per kind, counted with rtmp.flv (comparable to ffprobe's packet_counts)."""
    with flv.Reader(path) as reader:
        return dict(Counter("video" if t.type == flv.TAG_VIDEO else "audio"
                            for t in reader if is_frame(t)))


def source_messages(path: Path, base: int = 0) -> Iterator[Message]:
    """A publisher's messages from an FLV: script data as ``@setDataFrame`` metadata."""
    with flv.Reader(path) as reader:
        for tag in reader:
            data = tag.data
            if tag.type == flv.TAG_SCRIPT:
                data = b"\x02\x00\x0d@setDataFrame" + data  # RTMP 7.1.2 [impl] as ffmpeg sends
            yield Message(type=tag.type, data=data, timestamp=(tag.timestamp + base) & 0xFFFFFFFF,
                          message_stream_id=1)


# A recorder process: feeds the sample at 4x speed, says "synced N" after each video
# keyframe (the recorder fsyncs there), and is SIGKILLed by the test mid-stream.
_RECORDER_SCRIPT = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
from rtmp import flv
from rtmp.message import Message
from rtmp.vod import Recorder

recorder = Recorder(sys.argv[2])
began = time.monotonic()
keyframes = 0
with flv.Reader(sys.argv[1]) as reader:
    for tag in reader:
        due = began + tag.timestamp / 4000.0
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        data = tag.data
        if tag.type == 18:
            data = b"\x02\x00\x0d@setDataFrame" + data
        recorder.write(Message(type=tag.type, data=data, timestamp=1000 + tag.timestamp))
        if tag.type == 9 and flv.is_keyframe(tag) and not flv.is_sequence_header(tag):
            keyframes += 1
            print("synced", keyframes, flush=True)
print("done", flush=True)
time.sleep(60)
"""


def wait_for_line(process: "subprocess.Popen[bytes]", prefix: str, count: int,
                  timeout: float = 30.0) -> None:
    """Read the process's stdout until ``prefix count`` (bounded by ``timeout``).

    The pipe is unbuffered (``bufsize=0``), so ``select`` sees every line not yet read.
    """
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([process.stdout], [], [], remaining)[0]:
            break  # no output in time: never block past the deadline
        line = process.stdout.readline().decode()
        if not line:
            break
        if line.startswith(prefix) and int(line.split()[1]) >= count:
            return
    process.kill()
    process.wait(timeout=10)
    stderr = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
    raise AssertionError(f"the child never printed '{prefix} {count}': {stderr[-2000:]}")


def kill(process: "subprocess.Popen[bytes]") -> None:
    """Kill a child by its own pid (if still running) and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


@pytest.mark.spec("FLV E.3", "FLV E.4.1")
def test_sigkill_mid_stream_leaves_a_file_ffprobe_reads(tmp_path: Path) -> None:
    """Recording survives faults: a recorder killed with SIGKILL loses at most the tags since
    its last sync, and ffprobe reads the file to the last complete tag without an error."""
    require_peer("ffprobe")
    source = sample_flv(seconds=10)
    target = tmp_path / "live" / "killed.flv"
    process = subprocess.Popen(
        [sys.executable, "-c", _RECORDER_SCRIPT, str(source), str(target), str(ROOT)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, bufsize=0,
    )  # fmt: skip
    try:
        wait_for_line(process, "synced", 4)
        time.sleep(0.3)  # a few more tags, some still in the writer's buffer
        assert process.poll() is None, "the recorder finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        kill(process)
    assert process.returncode == -signal.SIGKILL

    with flv.Reader(target) as reader:
        tags = list(reader)
    # Everything up to the 4th keyframe had been fsynced before the kill.
    keyframes = [t for t in tags if t.type == flv.TAG_VIDEO and is_frame(t) and flv.is_keyframe(t)]
    assert len(keyframes) >= 4
    assert tags[0].type == flv.TAG_SCRIPT and tags[0].timestamp == 0
    assert max(t.timestamp for t in tags) < 9000  # really cut mid-stream
    probe = ffprobe_json(target)
    assert {s["codec_name"] for s in probe["streams"]} == {"h264", "aac"}
    assert probe["packet_counts"] == frame_counts(target)


@pytest.mark.spec("FLV E.2", "FLV E.3", "FLV E.4.1")
def test_recording_probes_like_the_source(tmp_path: Path) -> None:
    source = sample_flv()
    target = tmp_path / "rec.flv"
    with Recorder(target) as recorder:
        for msg in source_messages(source, base=123_456):
            recorder.write(msg)
    probe, original = ffprobe_json(target), ffprobe_json(source)
    assert probe["packet_counts"] == original["packet_counts"]
    assert [p["pts"] for p in probe["packets"]] == [p["pts"] for p in original["packets"]]
    assert abs(float(probe["format"]["duration"]) - float(original["format"]["duration"])) < 0.1


@pytest.mark.spec("RTMP 7.2.2.6", "FLV E.4.1")
def test_append_probes_as_one_monotonic_stream(tmp_path: Path) -> None:
    source = sample_flv()
    target = tmp_path / "app.flv"
    for append in (False, True):
        with Recorder(target, append=append) as recorder:
            for msg in source_messages(source, base=50_000 if append else 0):
                recorder.write(msg)
    probe = ffprobe_json(target)
    assert probe["packet_counts"] == {k: 2 * v for k, v in frame_counts(source).items()}
    for stream in probe["streams"]:
        dts = [int(p["dts"]) for p in probe["packets"] if p["stream_index"] == stream["index"]]
        assert dts == sorted(dts) and len(set(dts)) == len(dts)
    assert float(probe["format"]["duration"]) > 7.5


# -- Recording through rtmp.Server --------------------------------------------------------

# A publisher process: rtmp.Client publishes the sample with publishing type "record" at
# 4x speed and prints "keyframe N" after each video keyframe it sent.
_PUBLISHER_SCRIPT = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
import rtmp
from rtmp import flv

client = rtmp.Client(rtmp.ClientConfig(connect_timeout=10))
client.connect(sys.argv[2])
client.publish("cam", rtmp.StreamType.RECORD)
began = time.monotonic()
keyframes = 0
with flv.Reader(sys.argv[1]) as reader:
    for tag in reader:
        delay = began + tag.timestamp / 4000.0 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        data = tag.data
        if tag.type == 18:
            data = b"\x02\x00\x0d@setDataFrame" + data
        client.write_message(rtmp.Message(type=tag.type, data=data, timestamp=tag.timestamp,
                                          message_stream_id=client.stream_id))
        if tag.type == 9 and flv.is_keyframe(tag) and not flv.is_sequence_header(tag):
            keyframes += 1
            print("keyframe", keyframes, flush=True)
print("done", flush=True)
time.sleep(60)
"""


def start_publisher(url: str, source: Path) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(
        [sys.executable, "-c", _PUBLISHER_SCRIPT, str(source), url, str(ROOT)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, bufsize=0,
    )  # fmt: skip


def wait_no_connections(server: "rtmp.Server", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while server.connection_count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.connection_count == 0


def check_recording(path: Path, min_keyframes: int) -> None:
    """ffprobe reads the file to its last tag; the metadata duration was updated."""
    tags = flv.read_all(path)
    keyframes = [t for t in tags if t.type == flv.TAG_VIDEO and is_frame(t) and flv.is_keyframe(t)]
    assert len(keyframes) >= min_keyframes
    assert max(t.timestamp for t in tags) < 9000  # cut mid-stream
    probe = ffprobe_json(path)
    assert {s["codec_name"] for s in probe["streams"]} == {"h264", "aac"}
    assert probe["packet_counts"] == frame_counts(path)
    metadata = flv.read_metadata(path)
    assert metadata is not None
    assert metadata["duration"] == max(t.timestamp for t in tags) / 1000.0


@pytest.mark.spec("RTMP 7.2.2.6", "FLV E.3")
def test_publisher_killed_while_recording(tmp_path: Path) -> None:
    """Recording survives faults: the publisher dies (SIGKILL, no FCUnpublish/deleteStream);
    the server closes the recording and the file is whole."""
    require_peer("ffprobe")
    server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", record_dir=str(tmp_path)))
    server.start()
    try:
        host, port = server.address[:2]
        publisher = start_publisher(f"rtmp://{host}:{port}/live", sample_flv(seconds=10))
        try:
            wait_for_line(publisher, "keyframe", 3)
            time.sleep(0.2)
        finally:
            kill(publisher)
        wait_no_connections(server)
    finally:
        server.stop()
    check_recording(tmp_path / "live" / "cam.flv", 3)


@pytest.mark.spec("RTMP 7.2.2.6", "FLV E.3")
def test_server_stopped_while_recording(tmp_path: Path) -> None:
    """Recording survives faults: Server.stop() mid-stream closes the file cleanly."""
    require_peer("ffprobe")
    server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", record_dir=str(tmp_path)))
    server.start()
    host, port = server.address[:2]
    publisher = start_publisher(f"rtmp://{host}:{port}/live", sample_flv(seconds=10))
    try:
        wait_for_line(publisher, "keyframe", 3)
        server.stop()
    finally:
        server.stop()
        kill(publisher)
    check_recording(tmp_path / "live" / "cam.flv", 3)


# -- VOD through rtmp.Server ------------------------------------------------------------


@pytest.fixture
def vod_server(tmp_path: Path) -> Iterator["rtmp.Server"]:
    """rtmp.Server on 127.0.0.1 with record_dir holding vod/sample.flv (4 s, A+V)."""
    record_dir = tmp_path / "records"
    (record_dir / "vod").mkdir(parents=True)
    shutil.copyfile(sample_flv(), record_dir / "vod" / "sample.flv")
    server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", record_dir=str(record_dir)))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.spec("RTMP 7.2.2.1", "RTMP 7.1.7")
def test_ffmpeg_plays_a_recording_to_the_end(vod_server: "rtmp.Server", tmp_path: Path) -> None:
    ffmpeg = require_peer("ffmpeg")
    host, port = vod_server.address[:2]
    out = tmp_path / "played.flv"
    began = time.monotonic()
    completed = run(
        [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-i", f"rtmp://{host}:{port}/vod/sample", "-c", "copy", "-f", "flv", str(out)],
        timeout=60,
    )  # fmt: skip
    elapsed = time.monotonic() - began
    assert completed.returncode == 0, completed.stderr.decode("utf-8", "replace")[-2000:]
    # The stream ended by itself (Stream EOF / Play.Stop), paced in real time: ~4 s of media
    # sent 1 s ahead of the clock.
    assert 2.0 < elapsed < 30
    assert ffprobe_json(out)["packet_counts"] == frame_counts(sample_flv())


@pytest.mark.spec("RTMP 7.2.2.1")
def test_rtmpdump_plays_from_a_start_time(vod_server: "rtmp.Server", tmp_path: Path) -> None:
    rtmpdump = require_peer("rtmpdump")
    host, port = vod_server.address[:2]
    out = tmp_path / "from2s.flv"
    completed = run(
        [rtmpdump, "-q", "-r", f"rtmp://{host}:{port}/vod/sample", "-A", "2", "-o", str(out)],
        timeout=60,
    )  # fmt: skip
    assert completed.returncode in (0, 2), completed.stderr.decode("utf-8", "replace")[-2000:]
    with flv.Reader(out) as reader:
        tags = list(reader)
    video = [t for t in tags if t.type == flv.TAG_VIDEO and is_frame(t)]
    # RTMP 7.2.2.1: playback starts at the keyframe at or before 2 s (rtmpdump sends
    # milliseconds) and runs to the end.
    assert video and flv.is_keyframe(video[0])
    source = [t for t in flv.read_all(sample_flv()) if t.type == flv.TAG_VIDEO and is_frame(t)]
    start = max(t.timestamp for t in source if flv.is_keyframe(t) and t.timestamp <= 2000)
    assert start > 0
    assert len(video) == sum(1 for t in source if t.timestamp >= start)
    assert [t.data for t in video] == [t.data for t in source if t.timestamp >= start]
    assert ffprobe_json(out)["packet_counts"]["video"] == len(video)


@pytest.mark.spec("RTMP 7.2.2.7")
def test_ffmpeg_seeks_in_a_recording(vod_server: "rtmp.Server", tmp_path: Path) -> None:
    """ffmpeg's ``-ss`` on an rtmp:// input sends ``seek``: playback jumps to the keyframe
    at or before the time and runs from there to the end."""
    ffmpeg = require_peer("ffmpeg")
    host, port = vod_server.address[:2]
    out = tmp_path / "seeked.flv"
    completed = run(
        [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-ss", "2.5",
         "-i", f"rtmp://{host}:{port}/vod/sample", "-c", "copy", "-f", "flv", str(out)],
        timeout=60,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr.decode("utf-8", "replace")[-2000:]
    source = [t for t in flv.read_all(sample_flv()) if t.type == flv.TAG_VIDEO and is_frame(t)]
    start = max(t.timestamp for t in source if flv.is_keyframe(t) and t.timestamp <= 2500)
    video = [t for t in flv.read_all(out) if t.type == flv.TAG_VIDEO and is_frame(t)]
    assert [t.data for t in video] == [t.data for t in source if t.timestamp >= start]
    assert ffprobe_json(out)["packet_counts"]["video"] == len(video)
