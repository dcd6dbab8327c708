"""The command line and the examples, driven as a user would, with real peers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from tests.conftest import require_peer
from tests.media import sample_flv
from tests.peers import NginxRtmp, free_port, run, stop_process, wait_port

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ENV = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


def rtmp_cmd(*args: str) -> List[str]:
    return [sys.executable, "-m", "rtmp", *args]


def start(cmd: List[str], port: int, log: Path) -> "subprocess.Popen[bytes]":
    handle = open(log, "wb")
    process = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=ENV,
                               stdin=subprocess.DEVNULL, cwd=ROOT)
    handle.close()
    try:
        wait_port(port, timeout=15, process=process)
    except Exception:
        stop_process(process)
        raise
    return process


@pytest.fixture
def rtmp_server(tmp_path: Path) -> Iterator[int]:
    """``rtmp serve`` on a free loopback port; yields the port."""
    port = free_port()
    process = start(rtmp_cmd("serve", "--addr", f"127.0.0.1:{port}", "--record-dir",
                             str(tmp_path / "rec")), port, tmp_path / "serve.log")
    yield port
    assert stop_process(process, timeout=10) == 0, (tmp_path / "serve.log").read_text()


def ffmpeg_publish(url: str, path: Path, realtime: bool = True) -> "subprocess.Popen[bytes]":
    ffmpeg = require_peer("ffmpeg")
    args = [ffmpeg, "-hide_banner", "-loglevel", "error"]
    if realtime:
        args.append("-re")
    args += ["-i", str(path), "-c", "copy", "-f", "flv", url]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def probe_counts(path: Path) -> dict:  # type: ignore[type-arg]
    ffprobe = require_peer("ffprobe")
    out = run([ffprobe, "-v", "error", "-count_frames", "-show_entries",
               "stream=codec_name,nb_read_frames", "-of", "csv=p=0", str(path)], timeout=60,
              check=True).stdout.decode()
    return {line.split(",")[0]: int(line.split(",")[1]) for line in out.split()}


class TestServeAndPlay:
    def test_ffmpeg_publishes_rtmp_play_saves(self, rtmp_server: int, tmp_path: Path) -> None:
        source = sample_flv(seconds=4)
        url = f"rtmp://127.0.0.1:{rtmp_server}/live/cli"
        out = tmp_path / "out.flv"
        player = subprocess.Popen(rtmp_cmd("play", url, "-o", str(out), "--duration", "2.5",
                                           "--timeout", "20"),
                                  env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.0)
        publisher = ffmpeg_publish(url, source)
        try:
            _, err = player.communicate(timeout=60)
        finally:
            stop_process(publisher)
        assert player.returncode == 0, err.decode()
        assert b"received" in err
        counts = probe_counts(out)
        assert counts.get("h264", 0) >= 40 and counts.get("aac", 0) >= 60

    def test_trace_shows_every_layer(self, rtmp_server: int, tmp_path: Path) -> None:
        source = sample_flv(seconds=4)
        url = f"rtmp://127.0.0.1:{rtmp_server}/live/traced"
        publisher = subprocess.run(
            rtmp_cmd("publish", str(source), url, "--fast", "--trace"), env=ENV,
            capture_output=True, timeout=120)
        assert publisher.returncode == 0, publisher.stderr.decode()
        text = publisher.stdout.decode()
        for needle in ("C0  version 3  (RTMP 5.2.2)", "(RTMP 5.2.3", "(RTMP 5.2.4",
                       "command connect txn=1", "(RTMP 7.2.1.1)", "command publish",
                       "Set Chunk Size", "chunk fmt=0", "(RTMP 5.3.1.2.1)",
                       "Window Acknowledgement Size", "NetStream.Publish.Start",
                       "video", "H.264", "audio", "AAC", "(RTMP 7.1.5, FLV E.4.3.1)"):
            assert needle in text, needle


class TestPublishToNginx:
    def test_rtmp_publish_to_nginx_rtmp(self, tmp_path: Path) -> None:
        require_peer("nginx")
        source = sample_flv(seconds=4)
        with NginxRtmp() as nginx:
            url = nginx.url(stream="fromcli")
            publisher = subprocess.Popen(rtmp_cmd("publish", str(source), url, "--loop", "2"),
                                         env=ENV, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
            time.sleep(1.0)
            out = tmp_path / "back.flv"
            ffmpeg = require_peer("ffmpeg")
            result = run([ffmpeg, "-hide_banner", "-loglevel", "error", "-i", url, "-t", "2",
                          "-c", "copy", "-y", str(out)], timeout=60)
            _, err = publisher.communicate(timeout=60)
            assert publisher.returncode == 0, err.decode()
        assert result.returncode == 0, result.stderr.decode()
        counts = probe_counts(out)
        assert counts.get("h264", 0) >= 20 and counts.get("aac", 0) >= 20


class TestProxy:
    def test_proxy_between_ffmpeg_and_our_server(self, rtmp_server: int, tmp_path: Path) -> None:
        port = free_port()
        log = tmp_path / "proxy.log"
        proxy = start(rtmp_cmd("proxy", "--listen", f"127.0.0.1:{port}",
                               f"rtmp://127.0.0.1:{rtmp_server}", "--trace"), port, log)
        try:
            publisher = ffmpeg_publish(f"rtmp://127.0.0.1:{port}/live/proxied",
                                       sample_flv(seconds=3), realtime=False)
            _, err = publisher.communicate(timeout=60)
            assert publisher.returncode == 0, err.decode()
            time.sleep(0.5)
        finally:
            stop_process(proxy)
        text = log.read_text()
        for needle in ("C->S  C0  version 3", "S->C  S0  version 3",
                       "C->S  message command connect", "S->C  message command _result",
                       "NetConnection.Connect.Success", "C->S  message command publish",
                       "NetStream.Publish.Start", "C->S  message video", "C->S  message audio",
                       "C->S  chunk fmt=", "@setDataFrame"):
            assert needle in text, needle


class TestErrorsAndExitCodes:
    def test_bad_flag_is_a_usage_error(self) -> None:
        result = subprocess.run(rtmp_cmd("serve", "--no-such-flag"), env=ENV,
                                capture_output=True, timeout=30)
        assert result.returncode == 2
        assert b"unrecognized arguments" in result.stderr

    def test_bad_address(self) -> None:
        result = subprocess.run(rtmp_cmd("serve", "--addr", "host:notaport"), env=ENV,
                                capture_output=True, timeout=30)
        assert result.returncode == 2 and b"port must be a number" in result.stderr

    def test_unreachable_url_one_line_exit_1(self) -> None:
        port = free_port()
        result = subprocess.run(rtmp_cmd("play", f"rtmp://127.0.0.1:{port}/live/x",
                                         "--timeout", "3"),
                                env=ENV, capture_output=True, timeout=30)
        assert result.returncode == 1
        lines = result.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rtmp: error:"), lines

    def test_missing_file(self, rtmp_server: int) -> None:
        result = subprocess.run(rtmp_cmd("publish", "/nonexistent.flv",
                                         f"rtmp://127.0.0.1:{rtmp_server}/live/x"),
                                env=ENV, capture_output=True, timeout=30)
        assert result.returncode == 1 and b"rtmp: error:" in result.stderr

    def test_help_everywhere(self) -> None:
        for sub in ("serve", "publish", "play", "probe", "proxy"):
            result = subprocess.run(rtmp_cmd(sub, "--help"), env=ENV, capture_output=True,
                                    timeout=30)
            assert result.returncode == 0 and b"--trace" in result.stdout


class TestExamples:
    def test_client_and_server_examples_with_original_flags(self, tmp_path: Path) -> None:
        port = free_port()
        server = start([sys.executable, str(EXAMPLES / "rtmp_server.py"), "-addr",
                        f"127.0.0.1:{port}", "-max-connections", "10"], port,
                       tmp_path / "server.log")
        try:
            for flags in (["-url", f"rtmp://127.0.0.1:{port}/live", "-stream", "ex1",
                           "-conn-timeout", "10s", "-duration", "1s"],
                          ["--url", f"rtmp://127.0.0.1:{port}/live", "--stream", "ex2",
                           "--conn-timeout", "10", "--duration", "1"]):
                result = subprocess.run([sys.executable, str(EXAMPLES / "rtmp_client.py"),
                                         *flags], env=ENV, capture_output=True, timeout=60)
                assert result.returncode == 0, result.stderr.decode()
                assert b"published" in result.stdout
        finally:
            assert stop_process(server, timeout=10) == 0
        log = (tmp_path / "server.log").read_text()
        assert "stream published: ex1" in log and "stream published: ex2" in log
        assert "client connected" in log

    def test_auth_flags(self, tmp_path: Path) -> None:
        port = free_port()
        server = start([sys.executable, str(EXAMPLES / "rtmp_server.py"), "--addr",
                        f"127.0.0.1:{port}", "-require-auth", "-username", "admin",
                        "-password", "secret"], port, tmp_path / "server.log")
        base = [sys.executable, str(EXAMPLES / "rtmp_client.py"), "-url",
                f"rtmp://127.0.0.1:{port}/live", "-stream", "auth", "-duration", "0.5s"]
        try:
            good = subprocess.run(base + ["-user", "admin", "-pass", "secret"], env=ENV,
                                  capture_output=True, timeout=60)
            bad = subprocess.run(base + ["-user", "admin", "-pass", "wrong"], env=ENV,
                                 capture_output=True, timeout=60)
        finally:
            stop_process(server, timeout=10)
        assert good.returncode == 0, good.stderr.decode()
        assert bad.returncode == 1 and b"rtmp_client:" in bad.stderr

    def test_synthetic_stream_decodes(self, rtmp_server: int, tmp_path: Path) -> None:
        url = f"rtmp://127.0.0.1:{rtmp_server}/live/synthetic"
        out = tmp_path / "synthetic.flv"
        ffmpeg = require_peer("ffmpeg")
        reader = subprocess.Popen([ffmpeg, "-hide_banner", "-loglevel", "error", "-i", url,
                                   "-t", "1.5", "-c", "copy", "-y", str(out)],
                                  stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)
        result = subprocess.run([sys.executable, str(EXAMPLES / "publish_synthetic.py"), url,
                                 "--seconds", "4"], env=ENV, capture_output=True, timeout=60)
        _, err = reader.communicate(timeout=60)
        assert result.returncode == 0, result.stderr.decode()
        assert reader.returncode == 0, err.decode()
        counts = probe_counts(out)
        assert counts.get("flashsv", 0) >= 5 and counts.get("pcm_s16le", 0) >= 10

    def test_relay_custom_server_and_metadata(self, rtmp_server: int, tmp_path: Path) -> None:
        port = free_port()
        custom = start([sys.executable, str(EXAMPLES / "custom_server.py"), "--addr",
                        f"127.0.0.1:{port}", "--keys", "good"], port, tmp_path / "custom.log")
        try:
            source = f"rtmp://127.0.0.1:{rtmp_server}/live/origin"
            # Long enough that a loaded machine cannot finish it before the readers join.
            publisher = ffmpeg_publish(source, sample_flv(seconds=10))
            time.sleep(1.0)
            meta = subprocess.run([sys.executable, str(EXAMPLES / "read_metadata.py"), source],
                                  env=ENV, capture_output=True, timeout=60)
            assert meta.returncode == 0, meta.stderr.decode()
            assert b'"metadata"' in meta.stdout and b"H.264" in meta.stdout
            relay = subprocess.run([sys.executable, str(EXAMPLES / "relay.py"), source,
                                    f"rtmp://127.0.0.1:{port}/live/good", "--seconds", "2"],
                                   env=ENV, capture_output=True, timeout=60)
            assert relay.returncode == 0, relay.stderr.decode()
            assert b"relayed" in relay.stdout
            refused = subprocess.run([sys.executable, str(EXAMPLES / "relay.py"), source,
                                      f"rtmp://127.0.0.1:{port}/live/bad", "--seconds", "1"],
                                     env=ENV, capture_output=True, timeout=60)
            assert refused.returncode == 1 and b"BadName" in refused.stderr
            stop_process(publisher)
        finally:
            stop_process(custom, timeout=10)


def one_line(result: "subprocess.CompletedProcess[bytes]") -> str:
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


class TestClearAnswers:
    """Issue 22: each failure a new user meets gets one line in the command line's terms."""

    def test_require_auth_without_credentials(self) -> None:
        for flag in ("--require-auth", "--require-auth-players"):
            result = subprocess.run(rtmp_cmd("serve", "--addr", "127.0.0.1:0", flag), env=ENV,
                                    capture_output=True, timeout=30)
            assert result.returncode == 2
            assert one_line(result) == f"rtmp serve: error: {flag} needs --username and --password"

    def test_require_auth_help_says_whom(self) -> None:
        result = subprocess.run(rtmp_cmd("serve", "--help"), env=ENV, capture_output=True,
                                timeout=30)
        text = " ".join(result.stdout.decode().split())
        assert "from publishers; players need none" in text
        assert "--require-auth-players" in text

    def test_url_without_application_or_stream(self) -> None:
        for url, what in (("rtmp://127.0.0.1:1935/", "no application"),
                          ("rtmp://127.0.0.1:1935/live", "no stream")):
            result = subprocess.run(rtmp_cmd("play", url), env=ENV, capture_output=True,
                                    timeout=30)
            assert result.returncode == 2
            line = one_line(result)
            assert what in line and "rtmp://host[:port]/app/stream" in line, line
            assert "ClientConfig" not in line

    def test_unreadable_not_flv_and_empty_flv(self, tmp_path: Path) -> None:
        url = f"rtmp://127.0.0.1:{free_port()}/live/x"  # never reached: the file is checked first
        text = tmp_path / "notes.txt"
        text.write_bytes(b"hello, not a video\n")
        empty = tmp_path / "empty.flv"
        empty.write_bytes(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00")  # header, no tags
        for path, needle in ((tmp_path / "missing.flv", "cannot read"),
                             (text, "is not an FLV file"),
                             (empty, "has an FLV header but no tags")):
            result = subprocess.run(rtmp_cmd("publish", str(path), url), env=ENV,
                                    capture_output=True, timeout=30)
            assert result.returncode == 1
            assert needle in one_line(result)

    def test_wrong_password_and_publish_summary(self, tmp_path: Path) -> None:
        port = free_port()
        server = start(rtmp_cmd("serve", "--addr", f"127.0.0.1:{port}", "--require-auth",
                                "--username", "bob", "--password", "s3cret"), port,
                       tmp_path / "serve.log")
        source = str(sample_flv(seconds=1))
        try:
            wrong = subprocess.run(rtmp_cmd("publish", source,
                                            f"rtmp://bob:guess@127.0.0.1:{port}/live/x", "--fast"),
                                   env=ENV, capture_output=True, timeout=60)
            anonymous = subprocess.run(rtmp_cmd("publish", source,
                                                f"rtmp://127.0.0.1:{port}/live/x", "--fast"),
                                       env=ENV, capture_output=True, timeout=60)
            good = subprocess.run(rtmp_cmd("publish", source,
                                           f"rtmp://127.0.0.1:{port}/live/x", "--fast",
                                           "--user", "bob", "--password", "s3cret"),
                                  env=ENV, capture_output=True, timeout=60)
        finally:
            assert stop_process(server, timeout=10) == 0
        assert wrong.returncode == 1
        assert one_line(wrong) == "rtmp: error: authentication failed: wrong user name or password"
        assert anonymous.returncode == 1
        assert "requires authentication to publish" in one_line(anonymous)
        assert good.returncode == 0, good.stderr.decode()
        summary = one_line(good)
        assert summary.startswith("rtmp: sent ") and " video, " in summary, summary
        assert " ms of media in " in summary and "kbit/s" in summary, summary

    def test_durations_are_rounded(self) -> None:
        import socket

        with socket.socket() as mute:  # accepts TCP (the kernel does) and never answers
            mute.bind(("127.0.0.1", 0))
            mute.listen(1)
            port = mute.getsockname()[1]
            result = subprocess.run(rtmp_cmd("play", f"rtmp://127.0.0.1:{port}/live/x",
                                             "--timeout", "1.3"),
                                    env=ENV, capture_output=True, timeout=30)
        assert result.returncode == 1
        line = one_line(result)
        assert re.search(r"\b1\.3 s\b", line), line
        assert not re.search(r"\d\.\d{3,}", line), line


class TestExamplesStop:
    """The examples end on Ctrl-C as ``rtmp serve`` does: no traceback, exit 0."""

    def test_server_examples(self, tmp_path: Path) -> None:
        for name in ("rtmp_server.py", "custom_server.py"):
            port = free_port()
            log = tmp_path / f"{name}.log"
            process = start([sys.executable, str(EXAMPLES / name), "--addr",
                             f"127.0.0.1:{port}"], port, log)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=15) == 0
            text = log.read_text()
            assert "Traceback" not in text, text
            assert text.count("listening on") == 1, text

    def test_client_examples(self, rtmp_server: int, tmp_path: Path) -> None:
        url = f"rtmp://127.0.0.1:{rtmp_server}/live"
        source = f"rtmp://127.0.0.1:{rtmp_server}/live/origin"
        publisher = ffmpeg_publish(source, sample_flv(seconds=10))
        try:
            for cmd in ([str(EXAMPLES / "rtmp_client.py"), "-url", url, "-stream", "ctrlc",
                         "-duration", "30s"],
                        [str(EXAMPLES / "publish_synthetic.py"), url + "/ctrlc2", "--seconds", "30"],
                        [str(EXAMPLES / "relay.py"), source, url + "/copy", "--seconds", "30"]):
                process = subprocess.Popen([sys.executable, *cmd], env=ENV,
                                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE)
                time.sleep(2.5)  # connected and sending by now
                process.send_signal(signal.SIGINT)
                _, err = process.communicate(timeout=30)
                assert process.returncode == 0, err.decode()
                assert b"Traceback" not in err and b"interrupted" in err, err.decode()
        finally:
            stop_process(publisher)
