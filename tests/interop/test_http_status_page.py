"""Issue 20: the status page in a real browser (Chromium from Debian's packages).

``rtmp serve --http`` runs as a user would start it; ffmpeg publishes H.264 + AAC and two
ffmpeg players read it; our client publishes an Enhanced RTMP stream (hvc1 + Opus).
Headless Chromium loads ``/``, runs its script (``--virtual-time-budget``), and the DOM it
dumps must show the stream names, their codecs and their player counts.
"""

from __future__ import annotations

import html.parser
import json
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import rtmp
from rtmp.message import Message, MessageType
from tests.conftest import require_peer
from tests.interop.test_cli import rtmp_cmd, start
from tests.media import sample_flv
from tests.peers import free_port, stop_process, wait_port
from tests.test_http_api import OPUS_EX_FRAME, OPUS_EX_HEADER
from tests.test_streams import HEVC_EX_HEADER, HEVC_EX_KEY

pytestmark = pytest.mark.interop


class Rows(html.parser.HTMLParser):
    """The ``<tr class="stream">`` rows of the page: data-name -> the texts of its cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: Dict[str, List[str]] = {}
        self._current: Optional[str] = None
        self._cell: Optional[List[str]] = None

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        attributes = dict(attrs)
        if tag == "tr":
            self._current = attributes.get("data-name") if attributes.get("class") == "stream" \
                else None
            if self._current is not None:
                self.rows[self._current] = []
        elif tag == "td" and self._current is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._current is not None:
            self.rows[self._current].append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            self._current = None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Tuple[int, int]]:
    """``rtmp serve --http`` on free loopback ports: (RTMP port, HTTP port)."""
    port, http_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    process = start(rtmp_cmd("serve", "--addr", f"127.0.0.1:{port}", "--http",
                             f"127.0.0.1:{http_port}"), port, log)
    try:
        wait_port(http_port, timeout=15, process=process)
        yield port, http_port
    finally:
        assert stop_process(process, timeout=10) == 0, log.read_text()


def _streams(http_port: int) -> Dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/streams", timeout=10) as r:
        doc: Dict[str, Any] = json.loads(r.read())
    return {s["name"]: s for app in doc["applications"].values() for s in app["streams"]}


@pytest.mark.timeout(180)
@pytest.mark.spec("FLV E.4.3.1", "FLV E.4.2.1", "ERTMP Enhanced Video", "ERTMP Enhanced Audio")
def test_status_page_in_headless_chromium(served: Tuple[int, int], tmp_path: Path) -> None:
    chromium = require_peer("chromium")
    ffmpeg = require_peer("ffmpeg")
    port, http_port = served
    url = f"rtmp://127.0.0.1:{port}/live"
    media = sample_flv(seconds=4, width=320, height=240)
    processes: List["subprocess.Popen[bytes]"] = []
    stop = threading.Event()
    enhanced = rtmp.Client(rtmp.ClientConfig(connect_timeout=10, read_timeout=10))
    try:
        publisher = subprocess.Popen(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i",
             str(media), "-c", "copy", "-f", "flv", f"{url}/page-cam"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(publisher)
        assert _wait(lambda: "page-cam" in _streams(http_port)
                     and _streams(http_port)["page-cam"]["video"] is not None, 20)
        for _ in range(2):
            processes.append(subprocess.Popen(
                [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", f"{url}/page-cam",
                 "-f", "null", "-"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        enhanced.connect(url)
        enhanced.publish("page-ex")
        msid = enhanced.stream_id or 1
        enhanced.write_message(Message(type=MessageType.VIDEO, data=HEVC_EX_HEADER,
                                       message_stream_id=msid))
        enhanced.write_message(Message(type=MessageType.AUDIO, data=OPUS_EX_HEADER,
                                       message_stream_id=msid))

        def feed() -> None:
            ts = 0
            while not stop.wait(0.04):
                ts += 40
                try:
                    enhanced.write_message(Message(type=MessageType.VIDEO, data=HEVC_EX_KEY,
                                                   timestamp=ts, message_stream_id=msid))
                    enhanced.write_message(Message(type=MessageType.AUDIO, data=OPUS_EX_FRAME,
                                                   timestamp=ts, message_stream_id=msid))
                except rtmp.RTMPError:
                    return

        feeder = threading.Thread(target=feed, name="test-enhanced-feed", daemon=True)
        feeder.start()
        assert _wait(lambda: _streams(http_port)["page-cam"]["player_count"] == 2, 30), \
            _streams(http_port)
        # The rates need two samples (one a second) with the players there.
        assert _wait(lambda: _streams(http_port)["page-cam"]["bitrate_out"] > 0, 15)
        result = subprocess.run(
            [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}",
             "--virtual-time-budget=10000", "--dump-dom", f"http://127.0.0.1:{http_port}/"],
            capture_output=True, text=True, timeout=120)
        dom = result.stdout
        assert "<tbody" in dom, result.stderr[-2000:]
        parser = Rows()
        parser.feed(dom)
        rows = parser.rows
        assert set(rows) >= {"page-cam", "page-ex"}, dom[-3000:]
        # App, Stream, Publisher, Video, Audio, Size, FPS, In, Out, Players, Dropped.
        cam, ex = rows["page-cam"], rows["page-ex"]
        assert (cam[0], cam[1]) == ("live", "page-cam")
        assert (cam[3], cam[4], cam[5], cam[9]) == ("H.264 (avc1)", "AAC", "320x240", "2"), cam
        assert cam[8] != "0 kbit/s"  # the players receive
        assert (ex[1], ex[3], ex[4], ex[9]) == ("page-ex", "HEVC (hvc1)", "Opus (Opus)", "0"), ex
        assert ">updated " in dom  # the script ran and fetched /api/streams
    finally:
        stop.set()
        enhanced.close()
        for process in processes:
            stop_process(process, timeout=10)


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (KeyError, OSError):
            pass
        time.sleep(0.25)
    return False
