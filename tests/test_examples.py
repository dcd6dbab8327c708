"""examples/rtmp_server.py and examples/rtmp_client.py end cleanly on Ctrl-C.

The server says "listening on" once and exits 0 on SIGINT; the client, interrupted while
publishing, says so in one line and exits 1. Neither prints a traceback.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rtmp

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def env() -> dict:
    path = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    return dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1")


@pytest.mark.slow
def test_server_example_says_listening_once_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / "rtmp_server.py"), "-addr",
                             "127.0.0.1:0"], cwd=tmp_path, env=env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert re.search(r"listening on 127\.0\.0\.1:\d+", first), first
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    output = first + rest
    assert proc.returncode == 0, output
    assert output.count("listening on") == 1, output
    assert "Traceback" not in output, output


@pytest.mark.slow
def test_client_example_interrupted_while_publishing(tmp_path: Path) -> None:
    with rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0")) as server:
        port = server.address[1]
        proc = subprocess.Popen([sys.executable, str(EXAMPLES / "rtmp_client.py"), "-url",
                                 f"rtmp://127.0.0.1:{port}/live", "-duration", "20s"],
                                cwd=tmp_path, env=env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 15
            while not any("mystream" in conn.stream_names.values()
                          for conn in server.connections):
                assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err  # issue 22: Ctrl-C is a clean stop, exit 0
    assert "rtmp_client: interrupted" in err
    assert "Traceback" not in err, err


def _counter(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / "shared_counter.py"), *args],
                          cwd=cwd, env=env(), text=True, capture_output=True, timeout=180)


@pytest.mark.spec("RTMP 7.3.2 [de-facto]")
def test_shared_counter_example_two_clients_take_turns(tmp_path: Path) -> None:
    done = _counter("--rounds", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if "->" in line] == [
        "alice: count 0 -> 1", "bob: count 1 -> 2", "alice: count 2 -> 3",
        "bob: count 3 -> 4", "alice: count 4 -> 5", "bob: count 5 -> 6"]
    assert sorted(line for line in lines if "sees" in line) == [
        "alice sees count = 6 (version 6)", "bob sees count = 6 (version 6)"]
    for who in ("alice", "bob"):  # SendMessage reaches every user, the sender too
        for sender in ("alice", "bob"):
            assert f"{who} heard chat('hello from {sender}',)" in lines
    assert list(tmp_path.iterdir()) == []


@pytest.mark.spec("RTMP 7.3.2 [de-facto]")
def test_shared_counter_example_persistent_on_a_server(tmp_path: Path) -> None:
    store = tmp_path / "objects"
    with rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", shared_objects_dir=store)) as server:
        url = f"rtmp://127.0.0.1:{server.address[1]}/app"
        first = _counter("--url", url, "--rounds", "2", "--persistent", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert "alice sees count = 4 (version 4)" in first.stdout
        again = _counter("--url", url, "--rounds", "2", "--persistent", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert "bob: count 7 -> 8" in again.stdout  # went on from the stored 4
    assert (store / "app" / "counter.rso").is_file()
