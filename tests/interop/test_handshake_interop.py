"""RTMP 5.2 / HS-FP9 against real peers: ffmpeg, rtmpdump (librtmp) and nginx-rtmp.

Each test drives our sans-IO handshake over a plain loopback socket written here, so
only ``rtmp.handshake`` is under test.  After the handshake the peers must carry on:
ours sends a hand-made ``connect`` and expects ``NetConnection.Connect.Success``; theirs
must send their ``connect`` command (the first chunk after C2), which they only do once
they accepted S0/S1/S2.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from rtmp.digest import swf_verification
from rtmp.handshake import ClientHandshake, ServerHandshake
from tests.conftest import IN_CI, require_peer
from tests.peers import FfmpegListen, NginxRtmp, run, wait_port

pytestmark = pytest.mark.interop

IO_TIMEOUT = 10.0
#: AMF0 string "connect": marker 0x02, length 7 (AMF0 2.4), as every client's connect starts.
CONNECT_NAME = b"\x02\x00\x07connect"
#: HS-FP9 swfverify: User Control (type 4) event 26 on csid 2, fmt 0, 6-byte payload.
SWF_VERIFY_REQUEST = (
    b"\x02" + bytes(3) + (6).to_bytes(3, "big") + b"\x04" + bytes(4) + b"\x00\x1a" + bytes(4)
)
#: HS-FP9 swfverify: event 27, then the 42 bytes of verification data starting 01 01.
SWF_VERIFY_REPLY_START = b"\x00\x1b\x01\x01"
#: A made-up SWF hash and size given to the clients (-w/-x, -rtmp_swfhash/-rtmp_swfsize).
SWF_SHA = bytes(range(32))
SWF_SIZE = 12345
#: librtmp's complaints about a server's S1/S2 (rtmp.c / handshake.h log lines).
LIBRTMP_COMPLAINTS = (
    "not genuine",
    "Couldn't verify",
    "does not match",
    "Trying different position",
    "handshake failed",
    "Type mismatch",
)
#: ffmpeg's complaints about S1/S2 (player) and C2 (listen mode), rtmpproto.c.
FFMPEG_COMPLAINTS = (
    "Server response validating failed",
    "Signature mismatch",
    "Erroneous C2 Message",
    "Cannot read RTMP handshake",
    "RTMP protocol version mismatch",
)


# -- helpers -----------------------------------------------------------------------------


def _amf0_string(text: str) -> bytes:
    data = text.encode()
    return b"\x02" + len(data).to_bytes(2, "big") + data


def connect_command(tc_url: str, app: str = "live") -> bytes:
    """A ``connect`` command message (RTMP 7.2.1.1) in 128-byte chunks on csid 3."""
    fields = {
        "app": app,
        "type": "nonprivate",
        "flashVer": "FMLE/3.0 (compatible; rtmp-py handshake test)",
        "tcUrl": tc_url,
    }
    payload = _amf0_string("connect") + b"\x00" + struct.pack(">d", 1.0) + b"\x03"
    for key, value in fields.items():
        payload += len(key).to_bytes(2, "big") + key.encode() + _amf0_string(value)
    payload += b"\x00\x00\x09"
    # fmt 0, csid 3 | timestamp 0 | length | type 20 | message stream id 0 (little-endian)
    header = b"\x03" + bytes(3) + len(payload).to_bytes(3, "big") + b"\x14" + bytes(4)
    pieces = [payload[i : i + 128] for i in range(0, len(payload), 128)]
    return header + b"\xc3".join(pieces)  # fmt 3 headers between 128-byte chunks


def read_until(
    sock: socket.socket,
    needles: tuple[bytes, ...],
    initial: bytes = b"",
    timeout: float = IO_TIMEOUT,
) -> bytes:
    """Read until every needle was seen (or EOF / timeout); return everything read."""
    data = initial
    deadline = time.monotonic() + timeout
    while not all(n in data for n in needles):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:  # noqa: UP041 - not TimeoutError on Python 3.9
            break
        if not chunk:
            break
        data += chunk
    return data


def shake(
    sock: socket.socket, hs: ClientHandshake | ServerHandshake, timeout: float = IO_TIMEOUT
) -> None:
    """Run ``hs`` over ``sock`` until it completes (HandshakeError / TimeoutError otherwise)."""
    deadline = time.monotonic() + timeout
    while True:
        out = hs.data_to_send()
        if out:
            sock.sendall(out)
        if hs.complete:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"handshake incomplete after {timeout}s: {hs!r}")
        sock.settimeout(remaining)
        hs.receive_data(sock.recv(65536))


def connect_retrying(port: int, timeout: float = IO_TIMEOUT) -> socket.socket:
    """Connect to 127.0.0.1:port, retrying while refused (the peer is still starting).

    Used for one-shot listeners (ffmpeg -listen), which a separate probe would consume.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        except ConnectionRefusedError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def tolerated(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "rtmp.handshake" and r.levelno >= logging.WARNING
    ]


class OneShotServer:
    """Our ServerHandshake on a listening socket, for one connection, in a thread.

    After the handshake it keeps reading until the client's connect command arrives,
    then closes.  ``handshake``, ``after`` (bytes after C2) and ``error`` are filled in.
    """

    def __init__(
        self, digest: bool = True, strict: bool = False, swf_request: bool = False
    ) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.handshake = ServerHandshake(digest=digest, strict=strict, now_ms=1234)
        self.swf_request = swf_request
        self.after = b""
        self.swf_reply = b""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, name="hs-interop-server")

    def url(self) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/x"

    def __enter__(self) -> OneShotServer:  # noqa: PYI034
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self.thread.join(IO_TIMEOUT + 5)
        assert not self.thread.is_alive()

    def _serve(self) -> None:
        try:
            self.listener.settimeout(IO_TIMEOUT + 5)
            conn, _ = self.listener.accept()
            with conn:
                shake(conn, self.handshake)
                self.after = read_until(conn, (CONNECT_NAME,), self.handshake.trailing_data)
                if self.swf_request:
                    conn.sendall(SWF_VERIFY_REQUEST)
                    self.swf_reply = read_until(conn, (SWF_VERIFY_REPLY_START,))
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def check_connect(self) -> None:
        """The first bytes after C2 are a type 0 chunk on csid 3 carrying "connect"."""
        assert self.error is None, repr(self.error)
        assert self.handshake.complete
        after = self.after
        assert len(after) >= 12 + len(CONNECT_NAME), after[:64]
        assert after[0] == 0x03  # RTMP 5.3.1.1: fmt 0, csid 3
        assert after[7] == 0x14  # RTMP 5.3.1.2.1: message type 20, AMF0 command
        assert after[12 : 12 + len(CONNECT_NAME)] == CONNECT_NAME


# -- (a) our client against ffmpeg's listen mode ---------------------------------------


class TestClientAgainstFfmpegListen:
    """ffmpeg -listen: always the simple handshake; warns when C2 does not echo S1."""

    @pytest.mark.spec("RTMP 5.2.4", "HS-FP9 detect [impl: ffmpeg rtmp_server_handshake]")
    @pytest.mark.parametrize("digest", [True, False], ids=["digest-c1", "simple-c1"])
    @pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
    def test_handshake_and_connect(
        self, digest: bool, strict: bool, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, "rtmp.handshake")
        listener = FfmpegListen(output_args=("-c", "copy"), listen_timeout=int(IO_TIMEOUT))
        listener.start(wait=False, startup_delay=0.2)
        try:
            with connect_retrying(listener.port) as sock:
                hs = ClientHandshake(digest=digest, strict=strict, now_ms=4321)
                shake(sock, hs)
                assert not hs.digest_used  # S1 has a zero version: simple answer
                assert hs.peer_version == 3 and hs.peer_flash_version is None
                sock.sendall(connect_command(f"rtmp://127.0.0.1:{listener.port}/live"))
                reply = read_until(
                    sock, (b"_result", b"NetConnection.Connect.Success"), hs.trailing_data
                )
            assert b"NetConnection.Connect.Success" in reply, reply[:300]
            listener.wait(timeout=20)
            log = listener.log()  # before stop(), which removes the log's directory
        finally:
            listener.stop()
        assert "rtmp://" in log  # the log was read
        assert "Erroneous C2" not in log, log
        assert tolerated(caplog) == []


# -- (b) rtmpdump and ffmpeg against our server -----------------------------------------


class TestRtmpdumpAgainstOurServer:
    """librtmp: simple handshake by default; FP9 (digest) when given a SWF hash and size."""

    def _rtmpdump(self, server: OneShotServer, *extra: str) -> str:
        rtmpdump = require_peer("rtmpdump")
        completed = run(
            [rtmpdump, "-z", "-r", server.url(), "-o", "/dev/null", "-m", "5", *extra], timeout=30
        )
        return completed.stderr.decode("utf-8", "replace")

    @pytest.mark.spec("RTMP 5.2.4", "RTMP 5.2.1")
    @pytest.mark.parametrize("digest", [True, False], ids=["digest-server", "simple-server"])
    def test_simple(self, digest: bool, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.WARNING, "rtmp.handshake")
        with OneShotServer(digest=digest) as server:
            log = self._rtmpdump(server)
        server.check_connect()
        assert not server.handshake.digest_used
        assert server.handshake.peer_flash_version is None
        for complaint in LIBRTMP_COMPLAINTS:
            assert complaint not in log, log
        assert "Handshaking finished" in log, log
        assert tolerated(caplog) == []

    @pytest.mark.spec("HS-FP9 detect", "HS-FP9 C1", "HS-FP9 S2/C2")
    def test_fp9(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.WARNING, "rtmp.handshake")
        with OneShotServer(digest=True, strict=True) as server:
            # -w/-x (SWF hash and size) switch librtmp to the FP9 handshake
            log = self._rtmpdump(server, "-w", SWF_SHA.hex(), "-x", str(SWF_SIZE))
        server.check_connect()
        assert server.handshake.digest_used  # strict: librtmp's C2 signature checked too
        assert server.handshake.peer_flash_version is not None
        for complaint in LIBRTMP_COMPLAINTS:
            assert complaint not in log, log
        assert "Genuine Adobe Flash Media Server" in log, log  # S2 signature verified
        assert tolerated(caplog) == []


class TestSwfVerification:
    """HS-FP9 swfverify: the client's event 27 data, keyed on the last 32 bytes of our S1."""

    @staticmethod
    def _reply_data(server: OneShotServer) -> bytes:
        assert server.error is None, repr(server.error)
        start = server.swf_reply.find(SWF_VERIFY_REPLY_START)
        assert start >= 0, server.swf_reply[:200]
        data = server.swf_reply[start + 2 : start + 2 + 42]
        assert len(data) == 42
        return data

    @pytest.mark.spec("HS-FP9 swfverify")
    def test_rtmpdump(self) -> None:
        rtmpdump = require_peer("rtmpdump")
        with OneShotServer(digest=True, swf_request=True) as server:
            run([rtmpdump, "-z", "-r", server.url(), "-o", "/dev/null", "-m", "5",
                 "-w", SWF_SHA.hex(), "-x", str(SWF_SIZE)], timeout=30)  # fmt: skip
        expected = swf_verification(server.handshake.local_block, SWF_SHA, SWF_SIZE)
        assert self._reply_data(server) == expected

    @pytest.mark.spec("HS-FP9 swfverify")
    def test_ffmpeg(self) -> None:
        ffmpeg = require_peer("ffmpeg")
        with OneShotServer(digest=True, swf_request=True) as server:
            run([ffmpeg, "-hide_banner", "-nostdin", "-rw_timeout", "5000000",
                 "-rtmp_swfhash", SWF_SHA.hex(), "-rtmp_swfsize", str(SWF_SIZE),
                 "-i", server.url(), "-f", "null", "-"], timeout=30)  # fmt: skip
        expected = swf_verification(server.handshake.local_block, SWF_SHA, SWF_SIZE)
        assert self._reply_data(server) == expected


class TestFfmpegAgainstOurServer:
    """ffmpeg as player validates a versioned S1's digest and S2's signature; as publisher it
    echoes S1 verbatim."""

    def _ffmpeg(self, args: list[str]) -> str:
        ffmpeg = require_peer("ffmpeg")
        completed = run([ffmpeg, "-hide_banner", "-nostdin", "-v", "debug", *args], timeout=30)
        return completed.stderr.decode("utf-8", "replace")

    @pytest.mark.spec("HS-FP9 detect", "HS-FP9 S2/C2", "HS-FP9 C1")
    @pytest.mark.parametrize("digest", [True, False], ids=["digest-server", "simple-server"])
    def test_player(self, digest: bool, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.WARNING, "rtmp.handshake")
        with OneShotServer(digest=digest, strict=digest) as server:
            log = self._ffmpeg(["-rw_timeout", "5000000", "-i", server.url(), "-f", "null", "-"])
        server.check_connect()
        assert server.handshake.digest_used == digest
        assert server.handshake.peer_flash_version == (9, 0, 124, 2)
        for complaint in FFMPEG_COMPLAINTS:
            assert complaint not in log, log
        # ffmpeg read our S1 version, passed its checks and went on to connect
        assert ("Server version 3.5.1.1" if digest else "Server version 0.0.0.0") in log, log
        assert "Proto = rtmp, path = /live/x" in log, log
        # a simple-only server tolerates ffmpeg's versioned C1, with a warning
        assert bool(tolerated(caplog)) == (not digest)

    @pytest.mark.spec("HS-FP9 detect", "RTMP 5.2.4")
    def test_publisher(self, caplog: pytest.LogCaptureFixture) -> None:
        """ffmpeg as publisher answers our digest S1 with a verbatim copy: accepted, strict."""
        caplog.set_level(logging.WARNING, "rtmp.handshake")
        with OneShotServer(digest=True, strict=True) as server:
            log = self._ffmpeg(
                ["-re", "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-t", "1",
                 "-c:a", "aac", "-rw_timeout", "5000000", "-f", "flv", server.url()]
            )  # fmt: skip
        server.check_connect()
        assert server.handshake.digest_used
        assert server.handshake.peer_time2 is not None  # the C2 was an echo, not a signature
        for complaint in FFMPEG_COMPLAINTS:
            assert complaint not in log, log


class TestGstreamerAgainstOurServer:
    """GStreamer rtmp2src: a simple C1; it checks that S2 echoes C1's random bytes."""

    @pytest.mark.spec("RTMP 5.2.4", "RTMP 5.2.3")
    @pytest.mark.parametrize("digest", [True, False], ids=["digest-server", "simple-server"])
    def test_rtmp2src(self, digest: bool, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.WARNING, "rtmp.handshake")
        gst_launch = require_peer("gst-launch-1.0")
        inspect = subprocess.run(
            [require_peer("gst-inspect-1.0"), "rtmp2src"],
            check=False,
            capture_output=True,
            timeout=30,
        )
        if inspect.returncode != 0:
            if IN_CI:
                pytest.fail("GStreamer rtmp2src (gst-plugins-bad) is missing; CI must have it")
            pytest.skip("GStreamer rtmp2src (gst-plugins-bad) is not installed")
        env = dict(os.environ, GST_DEBUG="rtmphandshake:5", GST_DEBUG_NO_COLOR="1")
        with OneShotServer(digest=digest, strict=True) as server:
            completed = subprocess.run(
                [gst_launch, "-q", "rtmp2src", f"location={server.url()}", "timeout=5",
                 "!", "fakesink"],
                check=False, capture_output=True, timeout=30, env=env, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        log = completed.stderr.decode("utf-8", "replace")
        server.check_connect()
        assert not server.handshake.digest_used  # rtmp2src sends a zero version field
        assert "S2 random data matches C1" in log, log[-3000:]
        assert "Client handshake finished" in log, log[-3000:]
        assert tolerated(caplog) == []


# -- (c) our client against nginx-rtmp --------------------------------------------------


class _DebugNginx(NginxRtmp):
    """nginx-rtmp with its error log at debug level, which shows the handshake steps."""

    def config_text(self) -> str:
        return super().config_text().replace(" info;\n", " debug;\n", 1)


class TestClientAgainstNginx:
    """nginx-rtmp: complex answer to a digest C1 (scheme 1 then 0), S1 = C1 copy otherwise."""

    @pytest.mark.spec("HS-FP9 detect", "HS-FP9 C1", "HS-FP9 S2/C2", "RTMP 5.2.4")
    @pytest.mark.parametrize("digest", [True, False], ids=["digest", "simple"])
    @pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
    def test_handshake_and_connect(
        self, digest: bool, strict: bool, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, "rtmp.handshake")
        with _DebugNginx() as nginx:
            wait_port(nginx.port)
            with socket.create_connection(("127.0.0.1", nginx.port), timeout=IO_TIMEOUT) as sock:
                hs = ClientHandshake(digest=digest, strict=strict, now_ms=99)
                shake(sock, hs)
                sock.sendall(connect_command(f"rtmp://127.0.0.1:{nginx.port}/live"))
                reply = read_until(
                    sock, (b"_result", b"NetConnection.Connect.Success"), hs.trailing_data
                )
            log = nginx.error_log()
        assert b"NetConnection.Connect.Success" in reply, (reply[:300], log[-3000:])
        assert hs.digest_used == digest
        if digest:
            assert hs.peer_flash_version == (13, 14, 10, 13)  # nginx-rtmp's server version
            assert "handshake: digest found" in log, log[-3000:]
        else:
            assert hs.peer_flash_version is None
            assert "digest found" not in log
        assert tolerated(caplog) == []
