"""Issue 22: a publisher that writes as fast as it can and closes loses nothing.

Closing with unread input makes the kernel reset the connection, and a reset throws away
what the server had not read yet (the tail of the stream).  ``Client.close()`` of a
publisher therefore sends its goodbye (FCUnpublish, deleteStream: RTMP 7.2.2.3), half-closes
and reads until the server closes its side; the server finishes the recording (RTMP 7.2.2.6
``record``) before it closes.  These tests publish a few MB unpaced, then count every tag.
"""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import rtmp
from rtmp import flv
from rtmp.client import Client, ClientConfig, publish_flv
from rtmp.transport import Transport, client_ssl_context
from rtmp.vod import safe_record_path
from tests.conftest import require_peer
from tests.peers import run

#: Bounds every wait here.
WAIT = 10.0
#: Publish-then-close rounds per test (the issue asks for 20 in a row).
ROUNDS = 20
#: The synthetic stream: 60 s at 30 fps of ~3 KB video frames plus AAC-sized audio, about
#: 6 MB: far more than the socket buffers hold, so a reset at close cuts the tail.
VIDEO_FRAMES = 1800
VIDEO_BYTES = 3000
AUDIO_FRAMES = 2580
AUDIO_BYTES = 180


def make_flv(path: Path) -> Dict[int, int]:
    """Write the synthetic FLV (FLV E.4.1 tags, H.264/AAC-shaped payloads); its tag counts."""
    tags: List[flv.Tag] = [
        flv.Tag(9, 0, b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f\xff\xe1\x00\x04\x67\x64\x00\x1f"),
        flv.Tag(8, 0, b"\xaf\x00\x12\x10"),
    ]
    filler = bytes(range(256)) * (VIDEO_BYTES // 256 + 1)
    events: List[Tuple[int, int, bytes]] = []
    for i in range(VIDEO_FRAMES):
        head = b"\x17\x01" if i % 30 == 0 else b"\x27\x01"
        body = i.to_bytes(4, "big") + filler[: VIDEO_BYTES - 4 - (i % 97)]
        events.append((i * 1000 // 30, 9, head + b"\x00\x00\x00" + body))
    for i in range(AUDIO_FRAMES):
        events.append((i * 1024 * 1000 // 44100, 8, b"\xaf\x01" + i.to_bytes(4, "big")
                       + filler[: AUDIO_BYTES - (i % 13)]))
    events.sort(key=lambda e: (e[0], e[1]))
    tags += [flv.Tag(kind, ts, data) for ts, kind, data in events]
    with flv.Writer(str(path)) as writer:
        writer.write_all(tags)
    return count_tags(path)


def count_tags(path: Path) -> Dict[int, int]:
    """Audio (8) and video (9) frames in an FLV, sequence headers (AAC/AVC packet type 0)
    left out: a recorder may write its own copy of those (nginx-rtmp does)."""
    counts = {8: 0, 9: 0}
    with flv.Reader(str(path)) as reader:
        for tag in reader:
            if tag.type in counts and tag.data[1:2] != b"\x00":
                counts[tag.type] += 1
    return counts


@pytest.fixture(scope="module")
def big_flv(tmp_path_factory: Any) -> Tuple[Path, Dict[int, int]]:
    path = tmp_path_factory.mktemp("media") / "fast.flv"
    return path, make_flv(path)


def make_cert(directory: Path) -> Tuple[Path, Path]:
    """A self-signed certificate for localhost/127.0.0.1 (openssl, as the other TLS tests)."""
    openssl = require_peer("openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], timeout=30, check=True)
    return cert, key


@pytest.fixture
def recording_server(tmp_path: Path) -> Iterator[rtmp.Server]:
    server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", record_dir=tmp_path / "rec",
                                           read_timeout=WAIT, handshake_timeout=WAIT))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def client_config(**changes: Any) -> ClientConfig:
    values: Dict[str, Any] = {"connect_timeout": WAIT, "read_timeout": WAIT,
                              "write_timeout": WAIT, "close_timeout": WAIT}
    values.update(changes)
    return ClientConfig(**values)


def publish_rounds(url_of: Any, record_dir: Path, source: Path, expected: Dict[int, int],
                   config: ClientConfig, rounds: int = ROUNDS) -> List[Dict[int, int]]:
    """Publish ``source`` unpaced as ``record`` ``rounds`` times; the tag counts recorded."""
    short: List[Dict[int, int]] = []
    tags_in_source = len(flv.read_all(str(source)))
    started = time.monotonic()
    for index in range(rounds):
        name = f"fast{index}"
        stats = publish_flv(url_of(name), source, realtime=False, config=config,
                            stream_type="record")
        assert stats.messages == tags_in_source
        got = count_tags(safe_record_path(record_dir, "live", name))
        if got != expected:
            short.append(got)
        assert time.monotonic() - started < 120, "rounds take too long"
    return short


class TestFastPublishThenClose:
    """RTMP 7.2.2.6 record + RTMP 7.2.2.3 deleteStream: every tag written is recorded."""

    @pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.3")
    def test_twenty_fast_publishes_record_every_frame(
            self, recording_server: rtmp.Server, big_flv: Any, tmp_path: Path) -> None:
        source, expected = big_flv
        port = recording_server.address[1]
        short = publish_rounds(lambda name: f"rtmp://127.0.0.1:{port}/live/{name}",
                               tmp_path / "rec", source, expected, client_config())
        assert short == [], f"{len(short)} of {ROUNDS} recordings short of {expected}: {short}"

    @pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.3")
    def test_twenty_fast_publishes_through_tls(self, big_flv: Any, tmp_path: Path) -> None:
        cert, key = make_cert(tmp_path)
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(str(cert), str(key))
        server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", ssl_context=server_context,
                                               record_dir=tmp_path / "rec", read_timeout=WAIT,
                                               handshake_timeout=WAIT))
        server.start()
        try:
            port = server.address[1]
            config = client_config(ssl_context=client_ssl_context(ca_file=str(cert)))
            source, expected = big_flv
            short = publish_rounds(lambda name: f"rtmps://localhost:{port}/live/{name}",
                                   tmp_path / "rec", source, expected, config)
        finally:
            server.stop()
        assert short == [], f"{len(short)} of {ROUNDS} recordings short of {expected}: {short}"

    @pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.1", "RTMP 7.2.2.3")
    def test_readme_quick_start_shape(self, recording_server: rtmp.Server, big_flv: Any,
                                      tmp_path: Path) -> None:
        """A ``with rtmp.Client(...)`` block that writes every tag and leaves: a live
        player connected before gets every video frame, and the recording holds all."""
        source, expected = big_flv
        port = recording_server.address[1]
        url = f"rtmp://127.0.0.1:{port}/live/quick"
        videos: List[int] = []
        ready = threading.Event()
        errors: List[BaseException] = []

        def play() -> None:
            try:
                with Client(client_config()) as player:
                    player.connect(url)
                    player.play(start=-1)  # live only (RTMP 7.2.2.1)
                    ready.set()
                    while len(videos) < expected[9] + 1:
                        message = player.read_message(timeout=WAIT)
                        if message.type == 9:
                            videos.append(int.from_bytes(message.data[5:9], "big"))
            except BaseException as exc:  # reported below
                errors.append(exc)
                ready.set()

        thread = threading.Thread(target=play, name="quick-start-player")
        thread.start()
        assert ready.wait(WAIT)
        with flv.Reader(str(source)) as reader, \
                rtmp.Client(rtmp.ClientConfig(stream_name="quick")) as client:
            client.connect(f"rtmp://127.0.0.1:{port}/live")
            client.publish(stream_type="record")
            for tag in reader:
                if tag.type == 9:
                    client.send_video(bytes(tag.data), tag.timestamp)
                elif tag.type == 8:
                    client.send_audio(bytes(tag.data), tag.timestamp)
        thread.join(WAIT * 3)
        assert not thread.is_alive() and not errors, errors
        # The sequence header (first tag) carries no frame number; frames 0..1799 follow.
        assert len(videos) == expected[9] + 1
        assert videos[1:] == list(range(expected[9]))
        assert count_tags(safe_record_path(tmp_path / "rec", "live", "quick")) == expected


class _SilentServer:
    """A fake RTMP server that completes the handshake and connect/publish, then reads
    everything and never closes its side (so a close cannot be confirmed)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from rtmp import commands

        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        t = Transport(conn, role="server", read_timeout=WAIT, write_timeout=WAIT)
        try:
            t.handshake(WAIT)
            while not self.stop.is_set():
                try:
                    message = t.read_message(timeout=0.2)
                except rtmp.TimeoutError:
                    continue
                except rtmp.ConnectionClosedError:
                    break  # the client's FIN: read on, but never close
                if message.type not in commands.COMMAND_TYPES:
                    continue
                command = commands.decode_command(message)
                if command.name == "connect":
                    t.write_message(commands.connect_result(0))
                elif command.name == "createStream":
                    t.write_message(commands.result(command.transaction_id, None, 1))
                elif command.name == "publish":
                    t.write_message(commands.on_status(commands.NETSTREAM_PUBLISH_START, "", 1))
            self.stop.wait(WAIT * 3)
        finally:
            t.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(WAIT)
        self.listener.close()


class TestUnconfirmedClose:
    """A server that never closes: close() of a publisher says it could not confirm."""

    @pytest.mark.spec("RTMP 7.2.2.3")
    def test_close_raises_when_the_server_never_closes(self) -> None:
        server = _SilentServer()
        try:
            client = Client(client_config(close_timeout=0.5))
            client.connect(f"rtmp://127.0.0.1:{server.port}/live/stuck")
            client.publish()
            client.send_video(b"\x17\x01\x00\x00\x00" + b"x" * 100, 0)
            started = time.monotonic()
            with pytest.raises(rtmp.ConnectionClosedError,
                               match="could not confirm the server received the whole stream"):
                client.close()
            assert time.monotonic() - started < 3
            assert client.state is rtmp.ClientState.DISCONNECTED
            client.close()  # a second close is a no-op
        finally:
            server.close()

    @pytest.mark.spec("RTMP 7.2.2.3")
    def test_with_block_exception_is_not_replaced(self) -> None:
        server = _SilentServer()
        try:
            with pytest.raises(KeyError):
                with Client(client_config(close_timeout=0.5)) as client:
                    client.connect(f"rtmp://127.0.0.1:{server.port}/live/stuck")
                    client.publish()
                    raise KeyError("the caller's own error")
        finally:
            server.close()

    @pytest.mark.spec("RTMP 7.2.2.3")
    def test_cli_publish_exits_non_zero(self, big_flv: Any, tmp_path: Path) -> None:
        server = _SilentServer()
        small = tmp_path / "small.flv"
        with flv.Writer(str(small)) as writer:
            writer.write_all([flv.Tag(9, 0, b"\x17\x01\x00\x00\x00abc"),
                              flv.Tag(9, 40, b"\x27\x01\x00\x00\x00def")])
        try:
            completed = subprocess.run(
                [sys.executable, "-m", "rtmp", "publish", str(small),
                 f"rtmp://127.0.0.1:{server.port}/live/stuck", "--fast",
                 "--timeout", "1"],
                capture_output=True, timeout=WAIT * 3)
        finally:
            server.close()
        stderr = completed.stderr.decode()
        assert completed.returncode == 1, stderr
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert lines[-1].startswith("rtmp: error: could not confirm the server received the whole stream"), stderr


@pytest.mark.spec("RTMP 7.2.2.3")
def test_server_logs_no_broken_pipe_when_publisher_leaves(recording_server: rtmp.Server,
                                                          big_flv: Any,
                                                          caplog: Any) -> None:
    """Our own publisher's ordinary end logs as one (info), never as a lost connection."""
    caplog.set_level(logging.DEBUG, logger="rtmp.server")
    port = recording_server.address[1]
    publish_flv(f"rtmp://127.0.0.1:{port}/live/plain", big_flv[0], realtime=False,
                config=client_config())
    deadline = time.monotonic() + WAIT
    while recording_server.connection_count and time.monotonic() < deadline:
        time.sleep(0.05)
    text = [r.getMessage() for r in caplog.records if r.name == "rtmp.server"]
    assert any("publisher closed the connection" in line for line in text), text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], text
