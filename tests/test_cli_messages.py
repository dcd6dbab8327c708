"""rtmp.cli's wording (issue 22): rounded durations, auth failures in plain words, summaries."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from rtmp import auth, cli
from rtmp.errors import CommandError, RTMPError, seconds_text
from rtmp.flvio import TransferStats
from tests.media import sample_flv


@pytest.mark.parametrize(("value", "text"), [
    (1.9987626719994296, "2.0"), (30.0, "30.0"), (0.25, "0.2"), (0.005, "0.005"),
    (0.0, "0.0"), (None, "unlimited"),
])  # fmt: skip
def test_seconds_text(value: float, text: str) -> None:
    assert seconds_text(value) == text


@pytest.mark.spec("AUTH-ADOBE")
def test_auth_failures_in_plain_words() -> None:
    client = auth.ClientAuth("bob", "guess")
    client.tried = True
    with pytest.raises(auth.AuthenticationError) as failed:
        client.next_query(auth.authfailed_description("o"), "live")
    assert cli.error_text(failed.value) == "authentication failed: wrong user name or password"
    assert "AccessManager" in str(failed.value)  # the library keeps the server's text
    anonymous = auth.ClientAuth(None, None)
    with pytest.raises(auth.AuthenticationError) as missing:
        anonymous.next_query(auth.stage0_description(), "live")
    assert "give --user and --password" in cli.error_text(missing.value)
    refused = CommandError("NetStream.Publish.BadName",
                           auth.stage0_description() + "publishing needs authentication")
    assert "requires authentication to publish" in cli.error_text(refused)
    other = CommandError("NetStream.Publish.BadName", "Stream key is already being published")
    assert cli.error_text(other) == str(other)


def test_untrusted_certificate_names_the_options() -> None:
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "self-signed certificate"
    error = RTMPError("TLS: the certificate of h:1 is not trusted")
    error.__cause__ = cause
    text = cli.error_text(error)
    assert "self-signed certificate" in text and "--ca-file FILE" in text and "--insecure" in text


def test_summary_line() -> None:
    stats = TransferStats(messages=3, audio=1, video=1, data=1, bytes=1000,
                          first_timestamp=0, last_timestamp=40, elapsed=2.0000123)
    assert cli.summary("sent", stats) == ("rtmp: sent 3 messages (1 video, 1 audio, 1 data), "
                                          "1000 bytes, 40 ms of media in 2.0 s (4 kbit/s)")


def test_flv_has_tags(tmp_path: Path) -> None:
    empty = tmp_path / "empty.flv"
    empty.write_bytes(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00")
    assert not cli.flv_has_tags(str(empty))
    text = tmp_path / "a.txt"
    text.write_bytes(b"not a video at all")
    assert cli.flv_has_tags(str(sample_flv(seconds=1)))
    with pytest.raises(cli._Failure, match="is not an FLV file"):
        cli.flv_has_tags(str(text))
    with pytest.raises(cli._Failure, match="cannot read"):
        cli.flv_has_tags(str(tmp_path / "missing.flv"))


@pytest.mark.spec("RTMP 7.2.1.1", "RTMP 7.2.2.1")
def test_serve_log_lines_are_held_briefly_and_all_written() -> None:
    """``rtmp serve -v`` holds INFO lines in stderr's buffer for up to
    ``cli.LOG_FLUSH_INTERVAL`` (issue 21): a session's lines still arrive while it
    serves, and every line is written by the time the server stops."""
    import os
    import queue
    import re
    import signal
    import subprocess
    import sys
    import threading
    import time

    from rtmp import Client

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, "-m", "rtmp", "serve", "-v", "--addr", "127.0.0.1:0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    lines: "queue.Queue[str]" = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr or ()],
                              daemon=True)
    reader.start()
    seen: list = []  # type: ignore[type-arg]

    def wait_for(pattern: str, timeout: float = 10.0) -> "re.Match[str]":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in seen:
                found = re.search(pattern, line)
                if found:
                    return found
            try:
                seen.append(lines.get(timeout=0.1))
            except queue.Empty:
                pass
        raise AssertionError(f"no {pattern!r} in {seen!r}")

    try:
        port = int(wait_for(r"serving on rtmp://127\.0\.0\.1:(\d+)/").group(1))
        with Client() as client:
            client.connect(f"rtmp://127.0.0.1:{port}/live")
            client.play("key")
        closed = wait_for(r"INFO rtmp\.server: \[([0-9a-f]+-1)\] closed: client closed", 5.0)
        conn_id = closed.group(1)
        assert [line for line in seen if f"[{conn_id}] connected from" in line]
        assert [line for line in seen if f"[{conn_id}] playing live live/key" in line]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        reader.join(timeout=5)
    wait_for(r"INFO rtmp\.server: server stopped", 1.0)


def test_serve_log_handler_flushes_warnings_at_once() -> None:
    """Lines below WARNING wait for ``flush_now``; a WARNING flushes everything at once."""
    import io
    import logging

    class Stream(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1

    stream = Stream()
    handler = cli._ServeLogHandler()
    handler.setStream(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    record = logging.LogRecord("rtmp.server", logging.INFO, __file__, 1, "[c-1] playing", (), None)
    before = stream.flushes
    handler.handle(record)
    assert stream.flushes == before and stream.getvalue() == "INFO [c-1] playing\n"
    warning = logging.LogRecord("rtmp.server", logging.WARNING, __file__, 1, "[c-1] bad", (), None)
    handler.handle(warning)
    assert stream.flushes == before + 1
    handler.handle(record)
    handler.flush_now()
    assert stream.flushes == before + 2
    handler.close()
    assert stream.flushes == before + 3


def test_serve_formatter_time_is_the_standard_one() -> None:
    """``rtmp serve``'s formatter reuses the text of a second: the same asctime as
    logging.Formatter's, whatever the second and milliseconds."""
    import logging

    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    cached, plain = cli._SecondCachingFormatter(fmt), logging.Formatter(fmt)
    for created in (1_700_000_000.123, 1_700_000_000.987, 1_700_000_001.0, 1_700_000_000.5,
                    1_800_000_059.999):
        record = logging.LogRecord("rtmp.server", logging.INFO, __file__, 1, "[c-1] x", (), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert cached.format(record) == plain.format(record)


def test_stop_signals_set_a_lock_free_request() -> None:
    """SIGTERM (as SIGINT) sets the serving loop's stop request.  The request is a plain
    flag: a handler that took a lock could find it held by the main thread it interrupts
    (threading.Event.set inside Event.wait: ``rtmp serve`` once ignored SIGTERM that way)."""
    import os
    import signal
    import threading

    old = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        stop = cli._install_stop_signals()
        assert not stop.wait(0.01)
        lock = threading.Lock()
        with lock:  # whatever the main thread holds, the handler does not need it
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.wait(0.01)  # the handler has run by the end of the sleep
        assert not [name for name, value in vars(stop).items()
                    if not isinstance(value, (bool, int, float))]
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
