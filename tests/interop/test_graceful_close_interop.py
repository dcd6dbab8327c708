"""Issue 22 against real peers: nginx-rtmp records every tag of a fast publisher that
closes at once, and our server ends an ffmpeg publish without a lost-connection warning."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from rtmp.client import publish_flv
from rtmp.server import Server, ServerConfig
from tests.conftest import require_peer
from tests.media import sample_flv
from tests.peers import NginxRtmp, run
from tests.test_graceful_close import ROUNDS, WAIT, client_config, count_tags, make_flv

pytestmark = pytest.mark.interop


@pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.3")
def test_twenty_fast_publishes_recorded_whole_by_nginx(tmp_path: Path) -> None:
    source = tmp_path / "fast.flv"
    expected = make_flv(source)
    record = (f"application rec {{ live on; record all; record_path {tmp_path}; "
              "record_unique off; }")
    short = []
    with NginxRtmp(server_config=record) as nginx:
        started = time.monotonic()
        for index in range(ROUNDS):
            name = f"fast{index}"
            publish_flv(nginx.url("rec", name), source, realtime=False, config=client_config(),
                        stream_type="record")
            # close() returned: nginx read our deleteStream and closed; its file is done.
            got = count_tags(tmp_path / f"{name}.flv")
            if got != expected:
                short.append(got)
            assert time.monotonic() - started < 120, "rounds take too long"
    assert short == [], f"{len(short)} of {ROUNDS} recordings short of {expected}: {short}"


@pytest.mark.spec("RTMP 7.2.2.3", "RTMP 7.2.2.6")
def test_ffmpeg_publish_end_logs_no_broken_pipe(tmp_path: Path, caplog: Any) -> None:
    """ffmpeg sends FCUnpublish and deleteStream and closes at once; our answers then
    meet a closed socket.  That is an ordinary end: logged as one, no warning."""
    ffmpeg = require_peer("ffmpeg")
    source = sample_flv(seconds=2)
    caplog.set_level(logging.DEBUG, logger="rtmp")
    with Server(ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path,
                             read_timeout=WAIT, handshake_timeout=WAIT)) as server:
        port = server.address[1]
        completed = run([ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
                         "-i", str(source), "-c", "copy", "-f", "flv",
                         f"rtmp://127.0.0.1:{port}/live/ff"], timeout=WAIT * 3)
        assert completed.returncode == 0, completed.stderr
        deadline = time.monotonic() + WAIT
        while server.connection_count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.connection_count == 0
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("rtmp")]
    assert any("publisher closed the connection" in text for _, text in lines), lines
    assert not [text for level, text in lines if level >= logging.WARNING], lines
    assert not [text for level, text in lines if level >= logging.INFO and "Broken pipe" in text]
