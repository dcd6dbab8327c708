"""rtmp.Server against real clients: ffmpeg publishes; ffmpeg, ffprobe, rtmpdump and GStreamer play.

Every test starts its own :class:`rtmp.Server` on ``127.0.0.1:0`` and its peers as child
processes with bounded timeouts, stopped by their own pid.  Frame counts and timestamps
are compared with what ffprobe reads from the source file.
"""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

import pytest

from rtmp import Server, ServerConfig
from tests.conftest import require_peer
from tests.media import sample_flv
from tests.peers import ffprobe_json, run, stop_process

pytestmark = pytest.mark.interop

PLAYER_TIMEOUT = 40.0


def packet_times(info: Dict[str, Any]) -> Dict[str, List[int]]:
    """ffprobe JSON -> {"video": [pts...], "audio": [pts...]} in file order."""
    kinds = {s["index"]: s.get("codec_type") for s in info.get("streams", [])}
    out: Dict[str, List[int]] = {}
    for packet in info.get("packets", []):
        kind = kinds.get(packet.get("stream_index"))
        if kind in ("video", "audio") and packet.get("pts") is not None:
            out.setdefault(kind, []).append(int(packet["pts"]))
    return out


def codecs(info: Dict[str, Any]) -> Dict[str, str]:
    return {s["codec_type"]: s["codec_name"] for s in info.get("streams", [])
            if s.get("codec_type") in ("video", "audio")}


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def player_count(server: Server, app: str = "live", name: str = "key") -> int:
    stream = server.hub.get(app, name)
    return len(stream.snapshot_players()) if stream is not None else 0


class Proc:
    """A child process with its stderr in a file; stopped by pid."""

    def __init__(self, cmd: Sequence[str], log: Path) -> None:
        self.log = log
        self.program = Path(cmd[0]).name
        self._file = open(log, "wb")
        self.process = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self._file)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.process)
            raise AssertionError(f"{self.program} did not finish: {self.stderr()}") from None
        finally:
            self._file.close()

    def stop(self) -> None:
        stop_process(self.process)
        self._file.close()

    def stderr(self) -> str:
        return self.log.read_text("utf-8", "replace")[-3000:]


def ffmpeg_publish(url: str, source: Path, paced: bool = True,
                   extra: Sequence[str] = ()) -> List[str]:
    ffmpeg = require_peer("ffmpeg")
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error"]
    if paced:
        cmd.append("-re")
    return cmd + ["-i", str(source), "-c", "copy", *extra, "-f", "flv", url]


def ffmpeg_copy(url: str, out: Path, extra_in: Sequence[str] = ()) -> List[str]:
    ffmpeg = require_peer("ffmpeg")
    return [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-rw_timeout", "20000000", *extra_in, "-i", url, "-c", "copy", "-f", "flv", str(out)]


def rtmpdump_copy(url: str, out: Path) -> List[str]:
    return [require_peer("rtmpdump"), "-q", "-r", url, "--live", "-m", "20", "-o", str(out)]


def gst_copy(url: str, out: Path) -> List[str]:
    return [require_peer("gst-launch-1.0"), "-q", "rtmp2src", f"location={url}", "timeout=20",
            "!", "filesink", f"location={out}"]


@pytest.fixture
def source() -> Path:
    return sample_flv()  # 4 s, H.264 25 fps (keyframe each second) + AAC 44.1 kHz


@pytest.fixture
def server() -> Any:
    with Server(ServerConfig(addr="127.0.0.1:0")) as srv:
        yield srv


def url_of(server: Server, path: str = "live/key", scheme: str = "rtmp") -> str:
    host, port = server.address
    return f"{scheme}://{host}:{port}/{path}"


class TestPublishPlay:
    """RTMP 7.2.2.6 publish by ffmpeg; RTMP 7.2.2.1 play by four different players."""

    @pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.1", "RTMP 7.3.1")
    @pytest.mark.parametrize("paced", [True, False], ids=["ffmpeg-re", "ffmpeg-unpaced"])
    def test_every_player_gets_every_frame(self, server: Server, source: Path, tmp_path: Path,
                                           paced: bool) -> None:
        url = url_of(server)
        want = ffprobe_json(source)
        want_times = packet_times(want)
        players = {
            "ffmpeg": Proc(ffmpeg_copy(url, tmp_path / "ffmpeg.flv"), tmp_path / "ffmpeg.log"),
            "rtmpdump": Proc(rtmpdump_copy(url, tmp_path / "rtmpdump.flv"),
                             tmp_path / "rtmpdump.log"),
            "gst": Proc(gst_copy(url, tmp_path / "gst.flv"), tmp_path / "gst.log"),
        }
        probe: Dict[str, Any] = {}

        def run_probe() -> None:
            try:
                probe["info"] = ffprobe_json(url, "-rw_timeout", "20000000",
                                             timeout=PLAYER_TIMEOUT)
            except Exception as exc:  # reported by the assertion below
                probe["error"] = exc

        prober = threading.Thread(target=run_probe, name="ffprobe-player")
        prober.start()
        try:
            # RTMP 7.2.2.1: start -2 waits for a live stream that is not there yet.
            wait_until(lambda: player_count(server) == 4, 20, "four players to subscribe")
            published = run(ffmpeg_publish(url, source, paced), timeout=60)
            assert published.returncode == 0, published.stderr.decode(errors="replace")
            for name, proc in players.items():
                assert proc.wait(PLAYER_TIMEOUT) == 0, f"{name}: {proc.stderr()}"
            prober.join(PLAYER_TIMEOUT)
        finally:
            for proc in players.values():
                if proc.process.poll() is None:
                    proc.stop()
            prober.join(5)
        assert "error" not in probe, probe.get("error")
        results = {name: ffprobe_json(tmp_path / f"{name}.flv") for name in players}
        results["ffprobe"] = probe["info"]
        for name, info in results.items():
            got = packet_times(info)
            assert codecs(info) == {"video": "h264", "audio": "aac"}, name
            assert got["video"] == want_times["video"], name
            if name == "gst":
                # GStreamer's rtmp2src does not push the very last buffer before EOS on
                # UnpublishNotify (the other players show the server sent it).
                assert got["audio"] == want_times["audio"][: len(got["audio"])]
                assert len(got["audio"]) >= len(want_times["audio"]) - 1
            else:
                assert got["audio"] == want_times["audio"], name
        stream_stats = server.hub.get("live", "key")
        assert stream_stats is None  # everyone left: the stream is forgotten

    @pytest.mark.spec("RTMP 7.2.2.1", "RTMP 7.1.2")
    @pytest.mark.parametrize("delay", [1.5, 0.0], ids=["publish-after-1.5s", "publish-at-once"])
    def test_waiting_player_gets_metadata_headers_and_media(
        self, server: Server, source: Path, tmp_path: Path, delay: float
    ) -> None:
        """A player (our client, start -2) waits; ffmpeg starts publishing ``delay`` s later."""
        from rtmp import Client, ClientConfig, MessageType, commands

        url = url_of(server)
        got: Dict[str, Any] = {}

        def play() -> None:
            try:
                with Client(ClientConfig(read_timeout=15)) as client:
                    client.connect(url)
                    client.play()
                    while len(got) < 4:
                        msg = client.read_message()
                        if msg.type == MessageType.DATA_AMF0:
                            values = commands.strip_set_data_frame(commands.decode_data(msg))
                            if values and values[0] == commands.ON_METADATA:
                                got.setdefault("metadata", values[1])
                        elif msg.type == MessageType.VIDEO and msg.data[1:2] == b"\x00":
                            got.setdefault("video header", msg.timestamp)
                        elif msg.type == MessageType.AUDIO and msg.data[1:2] == b"\x00":
                            got.setdefault("audio header", msg.timestamp)
                        elif msg.type in (MessageType.AUDIO, MessageType.VIDEO):
                            got.setdefault("media", msg.timestamp)
            except Exception as exc:  # reported by the assertion below
                got["error"] = exc

        player = threading.Thread(target=play, name="waiting-player")
        player.start()
        publisher = None
        try:
            wait_until(lambda: player_count(server) == 1, 15, "the player to subscribe")
            time.sleep(delay)
            publisher = Proc(ffmpeg_publish(url, source), tmp_path / "pub.log")
            player.join(PLAYER_TIMEOUT)
        finally:
            if publisher is not None:
                publisher.stop()
        assert not player.is_alive()
        assert "error" not in got, f"{got['error']!r}; got {sorted(got)}"
        assert sorted(got) == ["audio header", "media", "metadata", "video header"]
        assert got["metadata"].get("width") == 320

    @pytest.mark.spec("RTMP 7.2.2.1", "FLV E.4.3.1")
    def test_late_joiner_decodes_its_first_frame(self, server: Server, tmp_path: Path) -> None:
        source = sample_flv(seconds=10)
        url = url_of(server)
        publisher = Proc(ffmpeg_publish(url, source), tmp_path / "pub.log")
        try:
            wait_until(lambda: server.hub.is_live("live", "key"), 15, "the publisher")
            time.sleep(2.5)  # join mid-GOP, well after the first keyframe
            ffmpeg = require_peer("ffmpeg")
            # Both late joiners at once: one after the other, on a loaded machine the
            # second could come after the 10 s source had ended.
            with ThreadPoolExecutor(2) as players:
                decoding = players.submit(
                    run, [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
                          "-rw_timeout", "20000000", "-i", url, "-frames:v", "30",
                          "-f", "null", "-"], timeout=PLAYER_TIMEOUT)
                copying = players.submit(
                    run, [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                          "-rw_timeout", "20000000", "-i", url, "-frames:v", "10", "-copyts",
                          "-c", "copy", "-f", "flv", str(tmp_path / "late.flv")],
                    timeout=PLAYER_TIMEOUT)
                decoded, copied = decoding.result(), copying.result()
        finally:
            publisher.stop()
        # No "non-existing PPS", "no frame!" or similar: the decoder had what it needed.
        assert decoded.returncode == 0 and decoded.stderr == b"", decoded.stderr.decode()
        assert copied.returncode == 0, copied.stderr.decode()
        info = ffprobe_json(tmp_path / "late.flv")
        video = [p for p in info["packets"]
                 if info["streams"][p["stream_index"]]["codec_type"] == "video"]
        assert video and "K" in video[0]["flags"]  # the cached GOP starts with its keyframe
        assert int(video[0]["pts"]) >= 1000  # it really joined late

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_second_publisher_gets_bad_name(self, server: Server, tmp_path: Path) -> None:
        source = sample_flv(seconds=10)
        url = url_of(server)
        first = Proc(ffmpeg_publish(url, source), tmp_path / "first.log")
        try:
            wait_until(lambda: server.hub.is_live("live", "key"), 15, "the first publisher")
            second = run(ffmpeg_publish(url, source), timeout=30)
            assert first.process.poll() is None  # the first one is unaffected
        finally:
            first.stop()
        assert second.returncode != 0
        assert b"BadName" in second.stderr or b"already" in second.stderr, second.stderr
