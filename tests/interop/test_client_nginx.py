"""rtmp.Client against nginx with libnginx-mod-rtmp, checked with ffmpeg/ffprobe.

* what our client publishes, nginx records (or relays to an ffmpeg reader) and ffprobe
  reads back with the same codecs, packet counts and timestamps as the source file;
* what ``ffmpeg -re`` publishes, our client plays: sequence headers first, audio and video
  in order with sane timestamps;
* AMF3 connect, a taken stream name, an unknown application: a result or a clear error
  within the configured timeout.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from rtmp import commands, flv
from rtmp.client import Client, ClientConfig, ClientState, play_to_flv, publish_flv
from rtmp.errors import CommandError, ConnectionClosedError
from rtmp.message import Message, MessageType
from tests.conftest import require_peer
from tests.media import sample_flv
from tests.peers import NginxRtmp, ffprobe_json, stop_process

pytestmark = pytest.mark.interop

TIMEOUT = 10.0


def client_config(**changes: Any) -> ClientConfig:
    values: Dict[str, Any] = {
        "connect_timeout": TIMEOUT, "read_timeout": TIMEOUT, "write_timeout": TIMEOUT,
    }  # fmt: skip
    values.update(changes)
    return ClientConfig(**values)


def packets_by_type(info: Dict[str, Any]) -> Dict[str, List[Tuple[Any, Any, str]]]:
    """ffprobe packets grouped by codec type: (pts, dts, size) in file order."""
    kinds = {s["index"]: s["codec_type"] for s in info["streams"]}
    out: Dict[str, List[Tuple[Any, Any, str]]] = {}
    for packet in info["packets"]:
        kind = kinds[packet["stream_index"]]
        out.setdefault(kind, []).append((packet.get("pts"), packet.get("dts"), packet["size"]))
    return out


def codecs(info: Dict[str, Any]) -> Dict[str, str]:
    return {s["codec_type"]: s["codec_name"] for s in info["streams"]}


def wait_for_log(nginx: NginxRtmp, text: str, after: str = "", timeout: float = TIMEOUT) -> None:
    """Wait until nginx's error log has ``text`` (in a line after the first ``after``).

    ``after`` matters for lines any session logs: NginxRtmp's readiness probe connects
    and disconnects first, and nginx logs ``deleteStream`` for it too.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = nginx.error_log()
        start = log.find(after)
        if start >= 0 and text in log[start:]:
            return
        time.sleep(0.05)
    raise AssertionError(f"nginx never logged {text!r}:\n{nginx.error_log()[-3000:]}")


def start_ffmpeg_publisher(source: Path, url: str) -> "subprocess.Popen[bytes]":
    """``ffmpeg -re -i source -c copy -f flv url`` in the background (stop with stop_process)."""
    ffmpeg = require_peer("ffmpeg")
    return subprocess.Popen(
        [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", str(source),
         "-c", "copy", "-f", "flv", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


class TestPublishToNginx:
    """RTMP 7.2.2.6 / 7.3.1: our publisher, nginx's recorder and relay, ffprobe's verdict."""

    @pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.3.1", "RTMP 7.1.4", "RTMP 7.1.5")
    def test_recorded_stream_matches_source(self, tmp_path: Path) -> None:
        source = sample_flv(seconds=3)
        record = f"application rec {{ live on; record all; record_path {tmp_path}; record_unique off; }}"
        with NginxRtmp(server_config=record) as nginx:
            stats = publish_flv(nginx.url("rec", "movie"), source, realtime=False,
                                config=client_config())
            # nginx writes the recording until it handles our deleteStream.
            wait_for_log(nginx, "deleteStream", after="publish: name='movie'")
        recorded = tmp_path / "movie.flv"
        deadline = time.monotonic() + TIMEOUT  # nginx closes the file when the stream ends
        while time.monotonic() < deadline and not recorded.exists():
            time.sleep(0.05)
        want, got = ffprobe_json(source), ffprobe_json(recorded)
        assert codecs(got) == codecs(want) == {"video": "h264", "audio": "aac"}
        assert got["packet_counts"] == want["packet_counts"]
        assert packets_by_type(got) == packets_by_type(want)  # timestamps and sizes
        source_tags = flv.read_all(source)
        assert stats.messages == len(source_tags)
        assert stats.video == sum(t.type == 9 for t in source_tags)

    @pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.1.2")
    def test_realtime_publish_read_live_by_ffmpeg(self, tmp_path: Path) -> None:
        source = sample_flv(seconds=3)
        output = tmp_path / "relayed.flv"
        ffmpeg = require_peer("ffmpeg")
        with NginxRtmp() as nginx:
            reader = subprocess.Popen(
                [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout",
                 "3000000", "-i", nginx.url("live", "key"), "-c", "copy", "-f", "flv",
                 str(output)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                # ffmpeg keeps playing after the publisher leaves (nginx waits for a new
                # one); -rw_timeout 3 s ends it cleanly once the data stops.
                wait_for_log(nginx, "play: name='key'")
                started = time.monotonic()
                stats = publish_flv(nginx.url("live", "key"), source, realtime=True,
                                    config=client_config())
                elapsed = time.monotonic() - started
                reader.wait(timeout=TIMEOUT)
            finally:
                stop_process(reader)
        # Paced by timestamps: about as long as the media, not as fast as possible.
        assert stats.duration_ms / 1000 - 0.5 <= elapsed <= stats.duration_ms / 1000 + 3
        want, got = ffprobe_json(source), ffprobe_json(output)
        assert codecs(got) == codecs(want)
        assert got["packet_counts"] == want["packet_counts"]
        want_video = [p[2] for p in packets_by_type(want)["video"]]
        assert [p[2] for p in packets_by_type(got)["video"]] == want_video

    @pytest.mark.spec("RTMP 7.2.1.1", "ERTMP Action Message Format (AMF): AMF0 and AMF3")
    def test_amf3_connect_and_publish(self) -> None:
        source = sample_flv(seconds=3)
        with NginxRtmp() as nginx, Client(client_config(object_encoding=3)) as client:
            client.connect(nginx.url("live", "amf3"))
            assert client.object_encoding == 3  # nginx echoes objectEncoding 3
            client.publish()  # createStream and publish travel as type 17
            assert client.state is ClientState.PUBLISHING
            for tag in flv.read_all(source)[:20]:
                client.write_message(tag.to_message(client.stream_id or 1))
            client.close()
            log = nginx.error_log()
        assert "object_encoding=3" in log
        assert "publish: name='amf3'" in log

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_publish_to_taken_name(self) -> None:
        with NginxRtmp() as nginx, Client(client_config()) as first, \
                Client(client_config()) as second:
            first.connect(nginx.url("live", "taken"))
            first.publish()
            second.connect(nginx.url("live", "taken"))
            started = time.monotonic()
            with pytest.raises(CommandError) as info:
                second.publish()
            assert time.monotonic() - started < TIMEOUT
            assert info.value.code == "NetStream.Publish.BadName"
            assert first.state is ClientState.PUBLISHING

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_unknown_application_is_a_clear_error(self) -> None:
        with NginxRtmp() as nginx, Client(client_config(connect_timeout=5.0)) as client:
            started = time.monotonic()
            with pytest.raises((ConnectionClosedError, CommandError)):
                client.connect(nginx.url("nosuchapp", "x"))
            assert time.monotonic() - started < 5.0
            assert client.state is ClientState.ERROR


class TestPlayFromNginx:
    """RTMP 7.2.2.1: play what ``ffmpeg -re`` publishes into nginx."""

    @pytest.mark.spec("RTMP 7.2.2.1", "RTMP 7.1.4", "RTMP 7.1.5")
    def test_media_arrives_in_order(self) -> None:
        source = sample_flv(seconds=6)
        with NginxRtmp() as nginx:
            publisher = start_ffmpeg_publisher(source, nginx.url("live", "cam"))
            try:
                wait_for_log(nginx, "publish: name='cam'")
                with Client(client_config()) as client:
                    client.connect(nginx.url("live", "cam"))
                    client.play()
                    assert client.state is ClientState.SUBSCRIBING
                    messages: List[Message] = []
                    deadline = time.monotonic() + 2.5
                    while time.monotonic() < deadline:
                        messages.append(client.read_message(timeout=TIMEOUT))
            finally:
                stop_process(publisher)
        video = [m for m in messages if m.type == MessageType.VIDEO]
        audio = [m for m in messages if m.type == MessageType.AUDIO]
        assert len(video) >= 20 and len(audio) >= 30
        assert flv.is_sequence_header(video[0])  # nginx sends the AVC header first
        assert flv.is_sequence_header(audio[0])
        assert all(m.message_stream_id in (client.stream_id or 1, 0) for m in video + audio)
        for stream in (video, audio):
            stamps = [m.timestamp for m in stream]
            assert stamps == sorted(stamps)
        # Sane timestamps: about 2.5 s of media for 2.5 s of wall-clock time.
        span = video[-1].timestamp - video[1].timestamp
        assert 1000 <= span <= 4500

    @pytest.mark.spec("RTMP 7.2.2.1", "FLV E.4.1")
    def test_play_to_flv(self, tmp_path: Path) -> None:
        source = sample_flv(seconds=6)
        output = tmp_path / "copy.flv"
        with NginxRtmp() as nginx:
            publisher = start_ffmpeg_publisher(source, nginx.url("live", "rec"))
            try:
                wait_for_log(nginx, "publish: name='rec'")
                stats = play_to_flv(nginx.url("live", "rec"), output, duration=2.0,
                                    config=client_config())
            finally:
                stop_process(publisher)
        assert 2000 <= stats.duration_ms <= 3000
        info = ffprobe_json(output)
        assert codecs(info) == {"video": "h264", "audio": "aac"}
        # nginx relays audio at once but video only from the next keyframe (up to 1 s
        # later with this sample), so there is less video than audio.
        assert info["packet_counts"]["video"] >= 10
        assert info["packet_counts"]["audio"] >= 60
        tags = flv.read_all(output)
        video = [t for t in tags if t.type == 9]
        assert flv.is_sequence_header(video[0]) and flv.is_keyframe(video[1])
        for kind in (8, 9):
            stamps = [t.timestamp for t in tags if t.type == kind]
            assert stamps == sorted(stamps)
        assert stats.video == len(video)


def vod_file(directory: Path, name: str = "movie") -> Path:
    """The 6 s sample remuxed with a keyframe index (onMetaData ``keyframes``), which
    nginx-rtmp's FLV player needs to seek; written as ``directory/name.flv``."""
    ffmpeg = require_peer("ffmpeg")
    target = directory / f"{name}.flv"
    subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i",
         str(sample_flv(seconds=6)), "-c", "copy", "-flvflags", "add_keyframe_index", str(target)],
        check=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return target


def first_media(client: Client, count: int = 4) -> List[Message]:
    out: List[Message] = []
    while len(out) < count:
        message = client.read_message(timeout=TIMEOUT)
        if message.type in (MessageType.AUDIO, MessageType.VIDEO):
            out.append(message)
    return out


class TestVodOnNginx:
    """RTMP 7.2.2.1 / 7.2.2.7 / 7.2.2.8 against nginx-rtmp's FLV player (``play DIR``)."""

    @pytest.mark.spec("RTMP 7.2.2.7", "RTMP 7.2.2.8", "RTMP 7.2.2.1")
    def test_play_seek_pause_resume(self, tmp_path: Path) -> None:
        vod_file(tmp_path)
        with NginxRtmp(server_config=f"application vod {{ play {tmp_path}; }}") as nginx, \
                Client(client_config()) as client:
            client.connect(nginx.url("vod", "movie.flv"))  # ".flv" is dropped (RTMP 7.2.2.1)
            client.play(start=0)
            assert first_media(client)[0].timestamp == 0
            client.seek(3000)  # returns on NetStream.Seek.Notify
            # nginx still flushes what it had queued, then jumps to a keyframe >= 3 s.
            deadline = time.monotonic() + TIMEOUT
            stamps: List[int] = []
            while not stamps or stamps[-1] < 3000:
                assert time.monotonic() < deadline, stamps[-20:]
                stamps += [m.timestamp for m in first_media(client, 1)]
            client.pause(True)  # NetStream.Pause.Notify
            client.pause(False)  # NetStream.Unpause.Notify
            after = first_media(client, 10)
            assert max(m.timestamp for m in after) >= 3000
            # The end of the file: NetStream.Play.Stop reaches read_message.
            codes = []
            while "NetStream.Play.Stop" not in codes:
                message = client.read_message(timeout=TIMEOUT)
                if message.type == MessageType.COMMAND_AMF0:
                    codes.append(commands.decode_command(message).code)
            log = nginx.error_log()
        assert "seek: offset=3000" in log

    @pytest.mark.spec("RTMP 7.2.2.1 [impl: Flash, ffmpeg, nginx-rtmp start in ms]")
    def test_play_start_travels_in_milliseconds(self, tmp_path: Path) -> None:
        vod_file(tmp_path)
        starts = {}
        with NginxRtmp(server_config=f"application vod {{ play {tmp_path}; }}") as nginx:
            for strict in (False, True):
                with Client(client_config(strict=strict)) as client:
                    client.connect(nginx.url("vod", "movie"))
                    client.play(start=2)  # seconds, as RTMP 7.2.2.1 and AS3 describe
                    starts[strict] = first_media(client, 1)[0].timestamp
            log = nginx.error_log()
        assert "start=2000" in log and "start=2 " in log
        assert starts[False] >= 2000  # nginx seeks to a keyframe at or after 2 s
        assert starts[True] < starts[False]  # strict sends 2, which nginx reads as 2 ms
