"""Recording what ffmpeg publishes (type ``live``) in parts (issue 20), against real programs.

``rtmp serve --record-dir D --record-all --record-segment 2s`` runs as a child process;
ffmpeg publishes the sample live; ffprobe counts the frames of every part, which add up
to the source's; a server killed with SIGKILL mid-part leaves its finished parts whole
and the current one readable; ffmpeg plays the newest part and a named one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Sequence

import pytest

from rtmp import flv
from rtmp.record_path import list_parts
from rtmp.vod import FlvIndex
from tests.conftest import require_peer
from tests.interop.test_record_vod import frame_counts
from tests.interop.test_server_ffmpeg import Proc, ffmpeg_copy, ffmpeg_publish, wait_until
from tests.media import sample_flv
from tests.peers import ffprobe_json, free_port, stop_process, wait_port

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]


class Serve:
    """``python -m rtmp serve`` on a free loopback port, stopped (or killed) by its pid."""

    def __init__(self, tmp_path: Path, *flags: str) -> None:
        self.port = free_port()
        self.record_dir = tmp_path / "rec"
        self.log = tmp_path / "serve.log"
        self._file = open(self.log, "wb")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rtmp", "serve", "--addr", f"127.0.0.1:{self.port}",
             "--record-dir", str(self.record_dir), *flags, "-v"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._file, env=env,
        )  # fmt: skip
        try:
            wait_port(self.port, timeout=20, process=self.process)
        except (TimeoutError, RuntimeError):
            self.stop()
            raise AssertionError(f"rtmp serve did not listen: {self.stderr()}") from None

    def url(self, path: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/{path}"

    def parts(self, name: str = "cam") -> List[Path]:
        return [p for _, p in list_parts(self.record_dir, "live", name)]

    def stop(self) -> None:
        stop_process(self.process)
        self._file.close()

    def stderr(self) -> str:
        return self.log.read_text("utf-8", "replace")[-3000:]


@pytest.fixture
def source() -> Path:
    require_peer("ffmpeg")
    require_peer("ffprobe")
    return sample_flv(seconds=8)  # H.264 25 fps, a keyframe each second, AAC 44.1 kHz


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path, "--record-all", "--record-segment", "2s")
    try:
        yield server
    finally:
        server.stop()


def publish(serve: Serve, source: Path, tmp_path: Path, paced: bool = False,
            extra: Sequence[str] = ()) -> Proc:
    return Proc(ffmpeg_publish(serve.url("live/cam"), source, paced=paced, extra=extra),
                tmp_path / "publish.log")


@pytest.mark.spec("RTMP 7.2.2.6", "FLV E.4.3.1", "FLV E.3")
def test_ffmpeg_live_publish_is_recorded_in_parts(serve: Serve, source: Path,
                                                  tmp_path: Path) -> None:
    """ffmpeg publishes live (as it always does); the parts, cut every 2 s at keyframes,
    are each a whole FLV ffprobe reads from 0 with both codecs, and their packets add
    up to the source's, kind by kind."""
    publisher = publish(serve, source, tmp_path)
    assert publisher.wait(60) == 0, publisher.stderr()
    wait_until(lambda: len(serve.parts()) == 4 and not any(
        FlvIndex(p).truncated for p in serve.parts()), 20, "four finished parts")
    want = ffprobe_json(source)["packet_counts"]
    total: Dict[str, int] = {}
    for path in serve.parts():
        info = ffprobe_json(path)
        assert {s["codec_type"]: s["codec_name"] for s in info["streams"]} == {
            "video": "h264", "audio": "aac"}, path.name
        counts = info["packet_counts"]
        assert counts == frame_counts(path), path.name  # ffprobe and rtmp.flv agree
        assert counts["video"] == 50, path.name  # two GOPs of 25 frames
        assert float(info["format"]["start_time"]) < 0.05, path.name
        assert 1.9 < float(info["format"]["duration"]) < 2.2, path.name
        meta = flv.read_metadata(path)
        assert meta is not None and meta["width"] == 320.0, path.name
        for kind, count in counts.items():
            total[kind] = total.get(kind, 0) + count
    assert total == {k: v for k, v in want.items() if k in ("video", "audio")}


@pytest.mark.spec("FLV E.3", "FLV E.4.1")
def test_sigkill_mid_part_keeps_finished_parts_whole(tmp_path: Path) -> None:
    """A server killed with SIGKILL while ffmpeg publishes in real time: every finished
    part is complete (two whole GOPs, not truncated), and the part being written is
    readable by ffprobe up to its last complete tag."""
    require_peer("ffprobe")
    source = sample_flv(seconds=8)
    serve = Serve(tmp_path, "--record-all", "--record-segment", "2s")
    publisher = publish(serve, source, tmp_path, paced=True)
    try:
        wait_until(lambda: len(serve.parts()) >= 3, 30, "a third part")
        time.sleep(0.7)  # mid-part: some of its tags are written, some buffered
        os.kill(serve.process.pid, signal.SIGKILL)
        serve.process.wait(timeout=10)
    finally:
        publisher.stop()
        serve.stop()
    parts = serve.parts()
    assert len(parts) == 3, serve.stderr()
    for path in parts[:-1]:
        index = FlvIndex(path)
        assert not index.truncated, path.name
        assert ffprobe_json(path)["packet_counts"]["video"] == 50, path.name
    current = ffprobe_json(parts[-1])  # no error: readable to its last whole tag
    assert current["packet_counts"].get("video", 0) > 0, parts[-1].name
    assert {s["codec_type"] for s in current["streams"]} == {"video", "audio"}


@pytest.mark.spec("RTMP 7.2.2.1")
def test_ffmpeg_plays_the_newest_part_and_a_named_one(serve: Serve, source: Path,
                                                      tmp_path: Path) -> None:
    publisher = publish(serve, source, tmp_path)
    assert publisher.wait(60) == 0, publisher.stderr()
    wait_until(lambda: len(serve.parts()) == 4 and not any(
        FlvIndex(p).truncated for p in serve.parts()), 20, "four finished parts")
    parts = serve.parts()
    for name, part in [("cam", parts[-1]), (parts[1].stem, parts[1])]:
        out = tmp_path / f"{name}.flv"
        player = Proc(ffmpeg_copy(serve.url(f"live/{name}"), out), tmp_path / f"{name}.log")
        assert player.wait(60) == 0, player.stderr()
        assert ffprobe_json(out)["packet_counts"] == ffprobe_json(part)["packet_counts"], name


@pytest.mark.spec("FLV E.4.3.1", "FLV E.3")
def test_compared_with_nginx_rtmp_record_interval(tmp_path: Path) -> None:
    """One ffmpeg publish (tee) to both servers, in real time.  nginx-rtmp's ``record all;
    record_interval 2s`` also cuts at video keyframes and keeps every frame, but times its
    parts by the wall clock since the file opened (here 2 or 3 GOPs each); ours are cut by
    media time, two GOPs each, whatever the network did to the arrival times."""
    from tests.peers import NginxRtmp

    ffmpeg = require_peer("ffmpeg")
    require_peer("ffprobe")
    source = sample_flv(seconds=8)
    want = ffprobe_json(source)["packet_counts"]
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    ours = Serve(tmp_path, "--record-all", "--record-segment", "2s")
    try:
        config = (f"application rec {{ live on; record all; record_path {nginx_dir}; "
                  "record_unique on; record_interval 2s; }")
        with NginxRtmp(server_config=config) as nginx:
            outputs = f"[f=flv]{ours.url('live/cam')}|[f=flv]{nginx.url('rec', 'cam')}"
            publisher = Proc([ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
                              "-i", str(source), "-c", "copy", "-map", "0", "-f", "tee",
                              outputs], tmp_path / "tee.log")
            assert publisher.wait(60) == 0, publisher.stderr()
            wait_until(lambda: len(ours.parts()) == 4 and not any(
                FlvIndex(p).truncated for p in ours.parts()), 20, "our four parts")
            time.sleep(1.0)  # nginx closes its last file when the publisher's stream ends
    finally:
        ours.stop()
    nginx_parts = sorted(nginx_dir.glob("cam-*.flv"))
    assert len(nginx_parts) >= 3, sorted(p.name for p in nginx_dir.iterdir())
    for servers_parts in (ours.parts(), nginx_parts):
        for path in servers_parts:
            video = [t for t in flv.read_all(path)
                     if t.type == flv.TAG_VIDEO and not flv.is_sequence_header(t)]
            assert flv.is_keyframe(video[0]), path  # both cut at keyframes
    ours_video = [ffprobe_json(p)["packet_counts"]["video"] for p in ours.parts()]
    nginx_video = [ffprobe_json(p)["packet_counts"].get("video", 0) for p in nginx_parts]
    assert ours_video == [50, 50, 50, 50]
    assert sum(nginx_video) == sum(ours_video) == want["video"]  # neither loses a frame
