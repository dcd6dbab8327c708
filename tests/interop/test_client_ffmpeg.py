"""rtmp.Client against ffmpeg as an RTMP server (``-listen 1``), both directions.

* publish: ffmpeg receives what our client publishes and copies it into an FLV; ffprobe
  finds the same codecs, packet counts, timestamps and sizes as in the source file;
* play: ffmpeg serves a file (``-re ... -f flv -listen 1``) and our client plays it: every
  audio and video message arrives, in order, byte for byte as in the source.  ffmpeg sends
  a player's media on message stream 0, the deviation the client accepts.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from rtmp import commands, flv
from rtmp.client import Client, ClientConfig, ClientState, publish_flv
from rtmp.errors import ConnectionClosedError
from rtmp.message import Message
from tests.conftest import require_peer
from tests.media import sample_flv
from tests.peers import FfmpegListen, ffprobe_json, free_port, stop_process

pytestmark = pytest.mark.interop

TIMEOUT = 10.0


def client_config(**changes: Any) -> ClientConfig:
    values: Dict[str, Any] = {
        "connect_timeout": TIMEOUT, "read_timeout": TIMEOUT, "write_timeout": TIMEOUT,
    }  # fmt: skip
    values.update(changes)
    return ClientConfig(**values)


def packets_by_type(info: Dict[str, Any]) -> Dict[str, List[Any]]:
    kinds = {s["index"]: s["codec_type"] for s in info["streams"]}
    out: Dict[str, List[Any]] = {}
    for packet in info["packets"]:
        out.setdefault(kinds[packet["stream_index"]], []).append(
            (packet.get("pts"), packet.get("dts"), packet["size"]))
    return out


class TestPublishToFfmpeg:
    """RTMP 7.2.2.6: ffmpeg's listen mode records what our client publishes."""

    @pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.1.1", "RTMP 5.4.1")
    @pytest.mark.parametrize("chunk_size", [128, 4096, 65536])
    def test_published_file_matches_source(self, chunk_size: int) -> None:
        source = sample_flv(seconds=3)
        with FfmpegListen() as listener:
            stats = publish_flv(listener.url(), source, realtime=False,
                                config=client_config(chunk_size=chunk_size))
            status = listener.wait(TIMEOUT * 2)
            assert listener.output.exists(), listener.log()
            want, got = ffprobe_json(source), ffprobe_json(listener.output)
        # ffmpeg exits 0, or reports the end of its input as an I/O error after our close.
        assert status in (0, 1), listener.log()
        assert {s["codec_type"]: s["codec_name"] for s in got["streams"]} == {
            "video": "h264", "audio": "aac"}
        assert got["packet_counts"] == want["packet_counts"]
        assert packets_by_type(got) == packets_by_type(want)
        tags = flv.read_all(source)
        assert (stats.audio, stats.video) == (sum(t.type == 8 for t in tags),
                                              sum(t.type == 9 for t in tags))

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_amf3_offer_falls_back_to_amf0(self) -> None:
        source = sample_flv(seconds=3)
        with FfmpegListen() as listener, Client(client_config(object_encoding=3)) as client:
            client.connect(listener.url())
            assert client.object_encoding == 0  # ffmpeg answers objectEncoding 0
            client.publish()
            assert client.state is ClientState.PUBLISHING
            for tag in flv.read_all(source):
                client.write_message(tag.to_message(client.stream_id or 1))
            client.close()
            listener.wait(TIMEOUT * 2)
            got = ffprobe_json(listener.output)
        assert got["packet_counts"]["video"] == ffprobe_json(source)["packet_counts"]["video"]


class TestPlayFromFfmpeg:
    """RTMP 7.2.2.1: ffmpeg serves a file; our client plays every message of it."""

    @pytest.mark.spec("RTMP 7.2.2.1", "RTMP 7.1.4", "RTMP 7.1.5",
                      "RTMP 7.2.2 [impl: ffmpeg media on msid 0]")
    def test_every_message_arrives_in_order(self, tmp_path: Path) -> None:
        source = sample_flv(seconds=3)
        ffmpeg = require_peer("ffmpeg")
        port = free_port()
        log_path = tmp_path / "ffmpeg.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "info", "-re", "-i",
                 str(source), "-c", "copy", "-f", "flv", "-listen", "1", "-timeout", "20",
                 f"rtmp://127.0.0.1:{port}/live/key"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        messages: List[Message] = []
        try:
            deadline = time.monotonic() + TIMEOUT
            with Client(client_config()) as client:
                while True:  # ffmpeg opens its port a moment after starting
                    try:
                        client.connect(f"rtmp://127.0.0.1:{port}/live/key")
                        break
                    except ConnectionClosedError:
                        if time.monotonic() > deadline:
                            raise
                        client.close()
                        time.sleep(0.1)
                client.play()
                assert client.state is ClientState.SUBSCRIBING
                started = time.monotonic()
                while time.monotonic() - started < TIMEOUT:
                    try:
                        messages.append(client.read_message(timeout=5.0))
                    except ConnectionClosedError:
                        break  # ffmpeg hangs up at the end of its file
        finally:
            stop_process(server)
        tags = [t for t in flv.read_all(source) if t.type in (8, 9)]
        media = [m for m in messages if m.type in (8, 9)]
        assert [(m.type, m.timestamp, m.data) for m in media] == [
            (t.type, t.timestamp, t.data) for t in tags]
        # ffmpeg passes the publisher's "@setDataFrame" prefix on to players as well.
        data = [commands.strip_set_data_frame(commands.decode_data(m))
                for m in messages if m.type == 18]
        assert any(values and values[0] == "onMetaData" for values in data), data
        # Paced by ffmpeg -re: the 3 s file takes about 3 s.
        assert time.monotonic() - started >= 2.0
        assert log_path.exists()
