"""The README's quick starts run as written, against a real server.

Each ```python block of README.md is taken out of the file (not copied here, so an edit of
the README is what gets tested) and run in a child process with ``PYTHONPATH`` pointing at
this checkout; only the address and the input file are replaced.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest

import rtmp
from rtmp import flv
from rtmp.client import publish_flv

from tests.media import sample_flv

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def snippets() -> Dict[str, str]:
    """The README's python code blocks, by what they do: client, play, server, shared."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    found: Dict[str, str] = {}
    for block in blocks:
        if ".shared_object(" in block:
            found["shared"] = block
        elif "rtmp.Server(" in block:
            found["server"] = block
        elif ".publish(" in block:
            found["client"] = block
        elif ".play(" in block:
            found["play"] = block
    return found


def env() -> Dict[str, str]:
    path = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    return dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1")


def run_snippet(code: str, cwd: Path, timeout: float) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=timeout)


def test_the_readme_has_the_three_quick_starts() -> None:
    assert set(snippets()) == {"client", "play", "server", "shared"}


@pytest.mark.slow
@pytest.mark.spec("RTMP 7.2.2.6")
def test_client_quick_start_publishes_every_frame(tmp_path: Path) -> None:
    """The publish snippet, paced, against our server: every audio and video tag arrives."""
    source = sample_flv(seconds=1)
    with flv.Reader(source) as reader:
        expected = [(tag.type, tag.timestamp, bytes(tag.data)) for tag in reader
                    if tag.type in (flv.TAG_AUDIO, flv.TAG_VIDEO)]
    received: List[rtmp.Message] = []
    done = threading.Event()

    def on_message(conn: object, msg: rtmp.Message) -> None:
        if msg.type in (rtmp.MessageType.AUDIO, rtmp.MessageType.VIDEO):
            received.append(msg)

    config = rtmp.ServerConfig(addr="127.0.0.1:0", on_message=on_message,
                               on_disconnect=lambda conn: done.set())
    with rtmp.Server(config) as server:
        port = server.address[1]
        code = snippets()["client"]
        assert "rtmp://localhost:1935/live" in code and '"input.flv"' in code
        code = code.replace("rtmp://localhost:1935/live", f"rtmp://127.0.0.1:{port}/live")
        code = code.replace('"input.flv"', repr(str(source)))
        started = time.monotonic()
        result = run_snippet(code, tmp_path, timeout=60)
        elapsed = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        assert done.wait(10), "the server never saw the publisher leave"
    assert [(m.type, m.timestamp, m.data) for m in received] == expected
    assert elapsed >= 0.8, f"the snippet paces by timestamps; 1 s of media took {elapsed:.2f} s"


@pytest.mark.slow
@pytest.mark.spec("RTMP 7.2.2.1", "RTMP 7.1.7")
@pytest.mark.skipif(not hasattr(rtmp, "StreamEnded"),
                    reason="the play snippet uses rtmp.StreamEnded / Client.messages (issue 22, "
                           "added by another branch)")
def test_play_quick_start_ends_with_the_stream(tmp_path: Path) -> None:
    """The play snippet returns by itself once the publisher leaves, having printed media."""
    source = sample_flv(seconds=1)
    with rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0")) as server:
        port = server.address[1]
        code = snippets()["play"].replace("rtmp://localhost:1935/live",
                                          f"rtmp://127.0.0.1:{port}/live")
        player = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 15
            while not any("mystream" in conn.stream_names.values()
                          for conn in server.connections):
                assert time.monotonic() < deadline, "the play snippet never started playing"
                assert player.poll() is None, player.communicate()
                time.sleep(0.05)
            publish_flv(f"rtmp://127.0.0.1:{port}/live/mystream", source, realtime=False)
            out, err = player.communicate(timeout=20)  # well under the snippet's 10-s timeout x2
        finally:
            if player.poll() is None:
                player.kill()
                player.communicate()
    assert player.returncode == 0, err
    assert "ended:" in out
    assert len(out.splitlines()) > 10, out  # the media lines came before the end


@pytest.mark.slow
@pytest.mark.spec("RTMP 7.2.2.6")
def test_server_quick_start_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """The server snippet: the key check works, and SIGINT ends it with 0 and no traceback."""
    code = snippets()["server"]
    assert '"127.0.0.1:1935"' in code
    code = code.replace('"127.0.0.1:1935"', '"127.0.0.1:0"')
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the snippet prints its address
        match = re.search(r"rtmp://([\d.]+):(\d+)/", line)
        assert match, (line, proc.stderr.read() if proc.stderr else "")
        url = f"rtmp://{match.group(1)}:{match.group(2)}/live"
        with rtmp.Client(rtmp.ClientConfig(connect_timeout=10, read_timeout=10)) as client:
            client.connect(url)
            with pytest.raises(rtmp.CommandError) as refused:
                client.publish("other")
            assert refused.value.code == "NetStream.Publish.BadName"
        with rtmp.Client(rtmp.ClientConfig(connect_timeout=10, read_timeout=10)) as client:
            client.connect(url)
            client.publish("secret")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err


@pytest.mark.spec("RTMP 7.3.2 [de-facto]")
def test_shared_object_snippet(tmp_path: Path) -> None:
    """The shared-object snippet: its change is accepted and its message comes back to it."""
    with rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0")) as server:
        with server.shared_object("live", "room") as room:
            room.set("visitors", 41)
            code = snippets()["shared"]
            assert "rtmp://localhost:1935/live" in code
            code = code.replace("rtmp://localhost:1935/live",
                                f"rtmp://127.0.0.1:{server.address[1]}/live")
            result = run_snippet(code, tmp_path, timeout=60)
            assert result.returncode == 0, result.stderr
            assert "message: say ('hello',)" in result.stdout
            assert "{'visitors': 42.0} version 2" in result.stdout
            assert room.get("visitors") == 42.0
