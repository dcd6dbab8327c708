"""RTMP 5.2: hostile handshakes against a live server: garbage, wrong versions, slow peers.

Each case checks how quickly the server hangs up (promptly for bytes that can never be RTMP,
at ``handshake_timeout`` for a peer that is merely slow) and that the case cost nothing but
its own session (:meth:`tests.hostile.harness.HostileEnv.assert_healthy`).
"""

from __future__ import annotations

import logging
import os
import time

import pytest

from tests.hostile.harness import HOSTILE_CONFIG, HostileEnv

logger = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = float(HOSTILE_CONFIG["handshake_timeout"])
#: A hang-up "at once": the server reacts to the bytes, not to a timer.
PROMPT = 1.0

pytestmark = pytest.mark.timeout(60)


class TestGarbageHandshake:
    """RTMP 5.2.2: C0 must be version 3; versions 32-255 are never RTMP."""

    @pytest.mark.spec("RTMP 5.2.2")
    @pytest.mark.parametrize(
        ("garbage", "complaint"),
        [
            (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", "versions 32-255 are not allowed"),
            # rtmps:// spoken to a plain rtmp:// port: a TLS ClientHello (0x16 = 22).
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 1600,
             "reserved version 22"),
            (b"\xff" * 1537, "versions 32-255 are not allowed"),
        ],
        ids=["http", "tls", "ff"],
    )
    def test_garbage_instead_of_c0_c1(
        self, hostile: HostileEnv, garbage: bytes, complaint: str
    ) -> None:
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.send(garbage)
            assert peer.wait_closed(HANDSHAKE_TIMEOUT + 3) < PROMPT
        hostile.log.wait_for(mark, complaint, "RTMP 5.2.2")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.2.2")
    @pytest.mark.parametrize("version", [0, 2, 6, 8, 31])
    def test_wrong_version(self, hostile: HostileEnv, version: int) -> None:
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.send(bytes([version]) + os.urandom(1536))
            assert peer.wait_closed(HANDSHAKE_TIMEOUT + 3) < PROMPT
        text = hostile.log.wait_for(mark, f"is {version}" if version in (6, 8) else
                                    f"version {version}")
        assert "RTMP 5.2.2" in text
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.2.5")
    def test_eof_in_the_middle_of_c1(self, hostile: HostileEnv) -> None:
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            peer.send(b"\x03" + os.urandom(700))
        hostile.log.wait_for(mark, "closed the connection during the handshake")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.2.5")
    def test_reset_in_the_middle_of_c1(self, hostile: HostileEnv) -> None:
        mark = hostile.log.mark()
        peer = hostile.peer()
        peer.send(b"\x03" + os.urandom(700))
        time.sleep(0.1)
        peer.reset()
        hostile.log.wait_for(mark, "handshake")
        hostile.assert_healthy()


class TestSlowHandshake:
    """RTMP 5.2.5: the handshake has one deadline, which trickling bytes do not extend."""

    @pytest.mark.spec("RTMP 5.2.5")
    def test_one_byte_at_a_time(self, hostile: HostileEnv) -> None:
        """A slowloris: valid C0+C1 bytes, one every 0.4 s; cut at handshake_timeout."""
        mark = hostile.log.mark()
        with hostile.peer() as peer:
            start = time.monotonic()
            payload = b"\x03" + bytes(1536)
            sent = 0
            while peer.is_open(0.4) and sent < len(payload):
                if not peer.send(payload[sent:sent + 1]):
                    break
                sent += 1
            elapsed = time.monotonic() - start
        assert sent < 20, "the trickle was never cut"
        assert HANDSHAKE_TIMEOUT - 0.5 <= elapsed <= HANDSHAKE_TIMEOUT + 2.0, elapsed
        hostile.log.wait_for(mark, "handshake not complete", "RTMP 5.2")
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.2.5")
    def test_c2_never_sent(self, hostile: HostileEnv) -> None:
        """C0+C1 sent, S0+S1+S2 read, and then silence instead of C2."""
        with hostile.peer() as peer:
            peer.send(b"\x03" + bytes(1536))
            start = time.monotonic()
            elapsed = peer.wait_closed(HANDSHAKE_TIMEOUT + 3)
            assert HANDSHAKE_TIMEOUT - 0.5 <= time.monotonic() - start
            assert elapsed <= HANDSHAKE_TIMEOUT + 2.0
        hostile.assert_healthy()

    @pytest.mark.spec("RTMP 5.2.5")
    def test_silent_after_tcp_connect(self, hostile: HostileEnv) -> None:
        with hostile.peer() as peer:
            elapsed = peer.wait_closed(HANDSHAKE_TIMEOUT + 3)
            assert HANDSHAKE_TIMEOUT - 0.5 <= elapsed <= HANDSHAKE_TIMEOUT + 2.0
        hostile.assert_healthy()
