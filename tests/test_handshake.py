"""RTMP 5.2 and HS-FP9: the sans-IO handshake state machines of ``rtmp.handshake``."""

from __future__ import annotations

import ast
import logging
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtmp import HandshakeError
from rtmp.digest import (
    PLAYER_KEY,
    PLAYER_KEY_PARTIAL,
    SERVER_KEY,
    SERVER_KEY_PARTIAL,
    DigestScheme,
    find_digest,
    imprint_digest,
    make_response,
    response_is_valid,
)
from rtmp.handshake import (
    HANDSHAKE_SIZE,
    ClientHandshake,
    HandshakeState,
    ServerHandshake,
)
from tests.test_digest import FFMPEG_C0C1, NGINX_S0S1S2, OUR_C0C1

ROOT = Path(__file__).resolve().parent.parent


def seeded(seed: int) -> Callable[[int], bytes]:
    """A deterministic random source (``random.Random.randbytes``)."""
    rng = random.Random(seed)
    return rng.randbytes


def client(**kwargs: object) -> ClientHandshake:
    kwargs.setdefault("random", seeded(1))
    return ClientHandshake(**kwargs)  # type: ignore[arg-type]


def server(**kwargs: object) -> ServerHandshake:
    kwargs.setdefault("random", seeded(2))
    return ServerHandshake(**kwargs)  # type: ignore[arg-type]


def run(c: ClientHandshake, s: ServerHandshake, after_c2: bytes = b"") -> tuple[bytes, bytes]:
    """Drive both sides to the end in memory; return what each side sent."""
    c0c1 = c.data_to_send()
    s.receive_data(c0c1)
    s0s1s2 = s.data_to_send()
    c.receive_data(s0s1s2)
    c2 = c.data_to_send()
    s.receive_data(c2 + after_c2)
    return c0c1 + c2, s0s1s2


def simple_block(time: int, fill: int) -> bytes:
    """An RTMP 5.2.3 block: time, zero field, 1528 bytes of ``fill``."""
    return time.to_bytes(4, "big") + bytes(4) + bytes([fill]) * 1528


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]  # noqa: RUF007 - Python 3.9


class TestVersion:
    """RTMP 5.2.2: C0 and S0, the version byte."""

    @pytest.mark.spec("RTMP 5.2.2")
    def test_client_sends_version_3(self) -> None:
        c0c1 = client().data_to_send()
        assert c0c1[0] == 3 and len(c0c1) == 1 + HANDSHAKE_SIZE

    @pytest.mark.spec("RTMP 5.2.2")
    def test_server_answers_version_3(self) -> None:
        s = server()
        s.receive_data(b"\x03")
        assert s.data_to_send() == b"\x03"
        assert s.peer_version == 3

    @pytest.mark.spec("RTMP 5.2.2")
    @pytest.mark.parametrize("version", [6, 8])
    def test_rtmpe_is_refused_clearly(self, version: int) -> None:
        s = server()
        with pytest.raises(HandshakeError, match=r"RTMPE.*RTMP 5\.2\.2"):
            s.receive_data(bytes([version]) + bytes(HANDSHAKE_SIZE))
        assert s.state is HandshakeState.ERROR
        assert s.data_to_send() == b""

    @pytest.mark.spec("RTMP 5.2.2")
    def test_text_protocol_is_not_rtmp(self) -> None:
        """Versions 32-255 are not allowed, so an HTTP request is told apart."""
        with pytest.raises(HandshakeError, match=r"0x47 \('G'\).*not an RTMP peer"):
            server().receive_data(b"GET / HTTP/1.1\r\n\r\n")

    @pytest.mark.spec("RTMP 5.2.2", "RTMP 5.2.5")
    @given(version=st.integers(0, 255).filter(lambda v: v != 3))
    def test_any_other_version_ends_the_handshake(self, version: int) -> None:
        s = server()
        with pytest.raises(HandshakeError, match="RTMP 5.2.2"):
            s.receive_data(bytes([version]))
        assert s.peer_version == version
        assert s.state is HandshakeState.ERROR

    @pytest.mark.spec("RTMP 5.2.2")
    @pytest.mark.parametrize(
        ("version", "word"),
        [(0, "deprecated"), (2, "deprecated"), (4, "reserved"), (31, "reserved")],
    )
    def test_deprecated_and_reserved(self, version: int, word: str) -> None:
        with pytest.raises(HandshakeError, match=word):
            server().receive_data(bytes([version]))

    @pytest.mark.spec("RTMP 5.2.2")
    @pytest.mark.parametrize("version", [4, 6, 0x48])
    def test_client_refuses_other_server_version(self, version: int) -> None:
        c = client()
        c.data_to_send()
        with pytest.raises(HandshakeError, match="S0"):
            c.receive_data(bytes([version]))
        assert c.state is HandshakeState.ERROR

    @pytest.mark.spec("RTMP 5.2.2")
    def test_probing_client_with_another_version(self) -> None:
        """The C0 byte is a parameter so a probe can ask for another version."""
        c = client(version=4)
        assert c.data_to_send()[0] == 4
        with pytest.raises(ValueError):
            client(version=256)


class TestC1S1:
    """RTMP 5.2.3: C1/S1 = time, zero field, 1528 random bytes."""

    @pytest.mark.spec("RTMP 5.2.3")
    def test_simple_c1_layout(self) -> None:
        c = client(digest=False, now_ms=0x01020304, random=lambda n: b"\xab" * n)
        c1 = c.data_to_send()[1:]
        assert c1 == b"\x01\x02\x03\x04" + bytes(4) + b"\xab" * 1528

    @pytest.mark.spec("RTMP 5.2.3")
    def test_simple_s1_layout(self) -> None:
        s = server(now_ms=77, random=lambda n: b"\xcd" * n)
        s.receive_data(b"\x03" + simple_block(5, 0x11))
        s1 = s.data_to_send()[1 : 1 + HANDSHAKE_SIZE]
        assert s1 == simple_block(77, 0xCD)
        assert s.peer_time == 5 and s.peer_flash_version is None

    @pytest.mark.spec("RTMP 5.2.3")
    def test_server_random_field_by_default(self) -> None:
        """The server fills S1 from :func:`filler_bytes` (no system call per handshake):
        windows of a random pool, at random offsets, so two S1s differ."""
        from rtmp.handshake import _FILLER_POOL, filler_bytes

        blocks = set()
        for _ in range(20):
            s = ServerHandshake(now_ms=0)
            s.receive_data(b"\x03" + simple_block(5, 0x11))
            s1 = s.data_to_send()[1 : 1 + HANDSHAKE_SIZE]
            assert s1[:8] == bytes(8) and s1[8:] in _FILLER_POOL
            blocks.add(s1)
        assert len(blocks) > 1
        assert len(filler_bytes(1528)) == 1528 and filler_bytes(0) == b""
        big = filler_bytes(len(_FILLER_POOL))  # longer than half the pool: os.urandom
        assert len(big) == len(_FILLER_POOL) and big not in _FILLER_POOL

    @pytest.mark.spec("RTMP 5.2.3")
    def test_clock_is_called_and_wraps(self) -> None:
        ticks = iter([2**32 + 9, 123])
        c = client(digest=False, now_ms=lambda: next(ticks), strict=True)
        assert c.data_to_send()[1:5] == (9).to_bytes(4, "big")  # RTMP 4: 32-bit wrap
        c.receive_data(b"\x03" + simple_block(1, 0x22))
        c2 = c.data_to_send()
        assert c2[4:8] == (123).to_bytes(4, "big")  # strict: time2 = when S1 was read

    @pytest.mark.spec("RTMP 5.2.3")
    def test_blocks_exposed(self) -> None:
        """Both C1/S1 blocks stay available (HS-FP9 swfverify keys on S1)."""
        c, s = client(), server()
        assert c.peer_block == b"" and s.peer_block == b""
        run(c, s)
        assert c.local_block == s.peer_block and len(c.local_block) == HANDSHAKE_SIZE
        assert s.local_block == c.peer_block and len(s.local_block) == HANDSHAKE_SIZE

    @pytest.mark.spec("RTMP 5.2.3")
    def test_peer_time_recorded(self) -> None:
        c = client()
        c.data_to_send()
        c.receive_data(b"\x03" + simple_block(0xDEADBEEF, 1))
        assert c.peer_time == 0xDEADBEEF

    @pytest.mark.spec("RTMP 5.2.3")
    def test_non_zero_field_from_simple_peer_lenient(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A simple-mode client tolerates a version in S1 (FMS-like servers) with a warning."""
        c = client(digest=False)
        c.data_to_send()
        s1 = bytearray(simple_block(1, 2))
        s1[4:8] = b"\x03\x05\x01\x01"
        with caplog.at_level(logging.WARNING, "rtmp.handshake"):
            c.receive_data(b"\x03" + bytes(s1))
        assert "RTMP 5.2.3" in caplog.text
        assert c.state is HandshakeState.ACK_SENT
        assert c.peer_flash_version == (3, 5, 1, 1)

    @pytest.mark.spec("RTMP 5.2.3")
    def test_non_zero_field_strict(self) -> None:
        c = client(digest=False, strict=True)
        s1 = bytearray(simple_block(1, 2))
        s1[4] = 1
        with pytest.raises(HandshakeError, match="RTMP 5.2.3"):
            c.receive_data(b"\x03" + bytes(s1))
        s = server(digest=False, strict=True)
        with pytest.raises(HandshakeError, match="RTMP 5.2.3"):
            s.receive_data(FFMPEG_C0C1)

    def test_random_source_is_checked(self) -> None:
        with pytest.raises(ValueError, match="random source"):
            client(random=lambda n: b"x")
        with pytest.raises(TypeError):
            client(now_ms="soon")


class TestC2S2Echo:
    """RTMP 5.2.4: C2/S2 echo the peer's time and random bytes."""

    @pytest.mark.spec("RTMP 5.2.4")
    def test_s2_echoes_c1(self) -> None:
        c1 = simple_block(42, 0x5A)
        for strict, time2 in ((False, bytes(4)), (True, (900).to_bytes(4, "big"))):
            s = server(strict=strict, now_ms=900)
            s.receive_data(b"\x03" + c1)
            s2 = s.data_to_send()[1 + HANDSHAKE_SIZE :]
            assert s2[:4] == c1[:4] and s2[8:] == c1[8:]
            # lenient echoes C1 byte for byte (nginx-rtmp, librtmp); strict puts its time
            assert s2[4:8] == time2

    @pytest.mark.spec("RTMP 5.2.4")
    def test_c2_echoes_s1(self) -> None:
        c = client(digest=False, now_ms=5, strict=True)
        c.data_to_send()
        s1 = simple_block(31337, 0x77)
        c.receive_data(b"\x03" + s1)
        c2 = c.data_to_send()
        assert c2 == s1[:4] + (5).to_bytes(4, "big") + s1[8:]

    @pytest.mark.spec("RTMP 5.2.4")
    def test_peer_time2_recorded(self) -> None:
        c = client(digest=False, now_ms=10, strict=True)
        s = server(digest=False, now_ms=20, strict=True)
        run(c, s)
        assert c.peer_time2 == 20 and s.peer_time2 == 10

    @pytest.mark.spec("RTMP 5.2.4")
    @pytest.mark.parametrize("field", ["time", "random"])
    def test_bad_s2_echo_strict(self, field: str) -> None:
        c = client(digest=False, strict=True, now_ms=1)
        c1 = c.data_to_send()[1:]
        s2 = bytearray(c1)
        if field == "time":
            s2[0] ^= 0xFF
        else:
            s2[1000] ^= 0xFF
        with pytest.raises(HandshakeError, match=rf"S2 {field}.*RTMP 5\.2\.4"):
            c.receive_data(b"\x03" + simple_block(0, 0) + bytes(s2))
        assert c.state is HandshakeState.ERROR
        with pytest.raises(HandshakeError, match="already failed"):
            c.receive_data(b"more")

    @pytest.mark.spec("RTMP 5.2.4")
    def test_bad_s2_echo_lenient(self, caplog: pytest.LogCaptureFixture) -> None:
        c = client(digest=False)
        c.data_to_send()
        with caplog.at_level(logging.WARNING, "rtmp.handshake"):
            c.receive_data(b"\x03" + simple_block(0, 0) + simple_block(9, 9))
        assert c.complete
        assert "S2 time" in caplog.text and "S2 random" in caplog.text

    @pytest.mark.spec("RTMP 5.2.4")
    def test_bad_c2_echo(self, caplog: pytest.LogCaptureFixture) -> None:
        for strict in (True, False):
            s = server(strict=strict)
            s.receive_data(b"\x03" + simple_block(0, 1))
            s.data_to_send()
            if strict:
                with pytest.raises(HandshakeError, match=r"C2 random.*RTMP 5\.2\.4"):
                    s.receive_data(simple_block(0, 3))
            else:
                with caplog.at_level(logging.WARNING, "rtmp.handshake"):
                    s.receive_data(simple_block(0, 3))
                assert s.complete and "C2 random" in caplog.text


class TestSequence:
    """RTMP 5.2.1: who waits for what."""

    @pytest.mark.spec("RTMP 5.2.1")
    def test_client_waits_for_s1_before_c2(self) -> None:
        c = client(digest=False)
        assert len(c.data_to_send()) == 1 + HANDSHAKE_SIZE  # C0 and C1 together
        c.receive_data(b"\x03")
        c.receive_data(simple_block(0, 1)[:-1])
        assert c.data_to_send() == b""  # no C2 before all of S1
        c.receive_data(simple_block(0, 1)[-1:])
        assert len(c.data_to_send()) == HANDSHAKE_SIZE  # C2, before S2 arrives
        assert c.state is HandshakeState.ACK_SENT

    @pytest.mark.spec("RTMP 5.2.1")
    def test_server_waits_for_c0_then_c1(self) -> None:
        s = server()
        assert s.data_to_send() == b""
        s.receive_data(b"\x03")
        assert s.data_to_send() == b"\x03"  # S0 on C0
        s.receive_data(simple_block(0, 1)[:100])
        assert s.data_to_send() == b""  # S1/S2 wait for C1
        s.receive_data(simple_block(0, 1)[100:])
        assert len(s.data_to_send()) == 2 * HANDSHAKE_SIZE  # S1 + S2
        s.receive_data(s.local_block)  # C2 = echo of S1
        assert s.complete and s.data_to_send() == b""  # nothing more from the handshake


class TestStates:
    """RTMP 5.2.5: UNINITIALIZED -> VERSION_SENT -> ACK_SENT -> DONE."""

    @pytest.mark.spec("RTMP 5.2.5")
    def test_client_states(self) -> None:
        c = client(digest=False)
        seen = [c.state]
        assert not c.complete
        c.data_to_send()
        seen.append(c.state)
        c.receive_data(b"\x03" + simple_block(0, 1))
        seen.append(c.state)
        c.receive_data(c.local_block)
        seen.append(c.state)
        assert seen == [
            HandshakeState.UNINITIALIZED,
            HandshakeState.VERSION_SENT,
            HandshakeState.ACK_SENT,
            HandshakeState.DONE,
        ]
        assert c.complete

    @pytest.mark.spec("RTMP 5.2.5")
    def test_client_receiving_first_counts_as_version_sent(self) -> None:
        c = client(digest=False)
        c.receive_data(b"\x03")
        assert c.state is HandshakeState.VERSION_SENT

    @pytest.mark.spec("RTMP 5.2.5")
    def test_server_states(self) -> None:
        s = server()
        seen = [s.state]
        s.receive_data(b"\x03")
        seen.append(s.state)
        s.receive_data(simple_block(0, 1))
        seen.append(s.state)
        s.receive_data(s.local_block)
        seen.append(s.state)
        assert seen == [
            HandshakeState.UNINITIALIZED,
            HandshakeState.VERSION_SENT,
            HandshakeState.ACK_SENT,
            HandshakeState.DONE,
        ]
        assert "DONE" in repr(s)

    @pytest.mark.spec("RTMP 5.2.5")
    def test_data_after_done_is_trailing(self) -> None:
        c, s = client(), server()
        run(c, s, after_c2=b"\x03chunk")
        assert s.trailing_data == b"\x03chunk"
        s.receive_data(b"-more")
        s.receive_data(b"")  # EOF after the handshake is not a handshake error
        assert s.trailing_data == b"\x03chunk-more"
        assert c.trailing_data == b""


class TestTruncated:
    """RTMP 5.2.1: end of file before the last block is a HandshakeError."""

    @pytest.mark.spec("RTMP 5.2.1")
    @given(cut=st.integers(0, 1 + 2 * HANDSHAKE_SIZE - 1))
    def test_server_eof_anywhere(self, cut: int) -> None:
        c = client(digest=False)
        s = server()
        s.receive_data(c.data_to_send())
        c.receive_data(s.data_to_send())
        whole = b"\x03" + c.local_block + c.data_to_send()
        fresh = server()
        if cut:
            fresh.receive_data(whole[:cut])
        with pytest.raises(
            HandshakeError, match=r"closed during the handshake: got \d+ of \d+ bytes of C[012]"
        ):
            fresh.receive_data(b"")
        assert fresh.state is HandshakeState.ERROR

    @pytest.mark.spec("RTMP 5.2.1")
    def test_client_eof_in_s2(self) -> None:
        c = client()
        c.receive_data(b"\x03" + simple_block(0, 1) + bytes(100))
        with pytest.raises(HandshakeError, match="got 100 of 1536 bytes of S2"):
            c.receive_data(b"")

    @pytest.mark.spec("RTMP 5.2.1")
    def test_server_eof_before_anything(self) -> None:
        with pytest.raises(HandshakeError, match="got 0 of 1 bytes of C0"):
            server().receive_data(b"")


class TestLoops:
    """Client against server in memory, in all four digest/simple combinations."""

    @pytest.mark.spec("RTMP 5.2.1", "RTMP 5.2.5", "HS-FP9 detect")
    @pytest.mark.parametrize("client_digest", [True, False])
    @pytest.mark.parametrize("server_digest", [True, False])
    @pytest.mark.parametrize("strict", [True, False])
    def test_loop(
        self,
        client_digest: bool,
        server_digest: bool,
        strict: bool,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        c = client(digest=client_digest, strict=strict, now_ms=1000)
        s = server(digest=server_digest, strict=strict, now_ms=2000)
        if strict and client_digest and not server_digest:
            # a strict RTMP 5.2.3 server refuses a C1 whose zero field is not zero
            with pytest.raises(HandshakeError, match="RTMP 5.2.3"):
                run(c, s)
            return
        with caplog.at_level(logging.WARNING, "rtmp.handshake"):
            run(c, s, after_c2=b"connect")
        assert c.complete and s.complete
        both = client_digest and server_digest
        assert c.digest_used == s.digest_used == both
        assert s.trailing_data == b"connect" and c.trailing_data == b""
        assert c.peer_time == 2000 and s.peer_time == 1000
        assert c.peer_version == s.peer_version == 3
        # the only tolerated deviation: an ffmpeg-style C1 at a simple-only server
        assert bool(caplog.records) == (client_digest and not server_digest)


class TestSplits:
    """Feeding the peer's bytes in any pieces gives the same result as all at once."""

    @pytest.mark.spec("RTMP 5.2.1")
    @given(
        cuts=st.lists(st.integers(0, 4000), max_size=12),
        client_digest=st.booleans(),
        server_digest=st.booleans(),
        extra=st.binary(max_size=40),
    )
    def test_arbitrary_splits(
        self, cuts: list[int], client_digest: bool, server_digest: bool, extra: bytes
    ) -> None:
        ref_c = client(digest=client_digest)
        ref_s = server(digest=server_digest)
        ref_sent_by_c, ref_sent_by_s = run(ref_c, ref_s, after_c2=extra)

        c = client(digest=client_digest)
        s = server(digest=server_digest)
        sent_by_c = c.data_to_send()
        for piece in pieces(sent_by_c, cuts):
            s.receive_data(piece)
        sent_by_s = s.data_to_send()
        for piece in pieces(sent_by_s + b"trailer", cuts):
            c.receive_data(piece)
        c2 = c.data_to_send()
        for piece in pieces(c2 + extra, cuts):
            s.receive_data(piece)
        assert sent_by_c + c2 == ref_sent_by_c
        assert sent_by_s == ref_sent_by_s
        assert c.complete and s.complete
        assert s.trailing_data == extra and c.trailing_data == b"trailer"
        assert c.digest_used == s.digest_used == (client_digest and server_digest)

    @pytest.mark.spec("RTMP 5.2.1")
    def test_one_byte_at_a_time(self) -> None:
        c, s = client(), server()
        data = c.data_to_send()
        for i in range(len(data)):
            s.receive_data(data[i : i + 1])
        reply = s.data_to_send()
        for i in range(len(reply)):
            c.receive_data(reply[i : i + 1])
        c2 = c.data_to_send()
        for i in range(len(c2)):
            s.receive_data(memoryview(c2)[i : i + 1])
        assert c.complete and s.complete and c.digest_used


class TestDigestServer:
    """HS-FP9 detect: the server answers a digest C1 with a digest S1 and a signed S2."""

    @pytest.mark.spec("HS-FP9 detect", "HS-FP9 C1", "HS-FP9 S2/C2")
    def test_answers_ffmpeg_c1(self) -> None:
        s = server(now_ms=5)
        s.receive_data(FFMPEG_C0C1)
        reply = s.data_to_send()
        assert reply[0] == 3 and len(reply) == 1 + 2 * HANDSHAKE_SIZE
        s1, s2 = reply[1 : 1 + HANDSHAKE_SIZE], reply[1 + HANDSHAKE_SIZE :]
        assert s.digest_used and s.peer_flash_version == (9, 0, 124, 2)
        assert s.peer_digest_scheme is DigestScheme.DIGEST_FIRST
        assert s1[:4] == (5).to_bytes(4, "big") and s1[4:8] == bytes((3, 5, 1, 1))
        # what ffmpeg's player checks: S1 byte 4 >= 3, a server digest, S2 signed from its C1
        assert s1[4] >= 3
        server_digest = find_digest(s1, SERVER_KEY_PARTIAL)
        assert server_digest is not None and server_digest.scheme is DigestScheme.DIGEST_FIRST
        ffmpeg_digest = find_digest(FFMPEG_C0C1[1:], PLAYER_KEY_PARTIAL)
        assert ffmpeg_digest is not None
        assert response_is_valid(s2, ffmpeg_digest.digest, SERVER_KEY)
        # ffmpeg's C2 as a player: random + signature from our S1 digest
        s.receive_data(make_response(bytes(1504), server_digest.digest, PLAYER_KEY))
        assert s.complete

    @pytest.mark.spec("HS-FP9 schemes")
    def test_s1_uses_the_client_scheme(self) -> None:
        """librtmp looks for the S1 digest with its own scheme first (and warns otherwise)."""
        c = client(scheme=DigestScheme.KEY_FIRST)
        s = server()
        run(c, s)
        assert s.peer_digest_scheme is DigestScheme.KEY_FIRST
        assert c.peer_digest_scheme is DigestScheme.KEY_FIRST
        assert c.digest_used and c.complete

    @pytest.mark.spec("HS-FP9 detect", "RTMP 5.2.4")
    def test_echo_c2_accepted(self) -> None:
        """ffmpeg as a publisher answers any S1 with a verbatim copy: accepted, even strict."""
        s = server(strict=True)
        s.receive_data(FFMPEG_C0C1)
        s1 = s.data_to_send()[1 : 1 + HANDSHAKE_SIZE]
        s.receive_data(s1)
        assert s.complete and s.digest_used and s.peer_time2 is not None

    @pytest.mark.spec("HS-FP9 S2/C2")
    def test_bad_c2_signature(self, caplog: pytest.LogCaptureFixture) -> None:
        for strict in (True, False):
            s = server(strict=strict)
            s.receive_data(FFMPEG_C0C1)
            s.data_to_send()
            bad = bytes(HANDSHAKE_SIZE)
            if strict:
                with pytest.raises(HandshakeError, match="HS-FP9 S2/C2"):
                    s.receive_data(bad)
            else:
                with caplog.at_level(logging.WARNING, "rtmp.handshake"):
                    s.receive_data(bad)
                assert s.complete and "HS-FP9 signature" in caplog.text

    @pytest.mark.spec("HS-FP9 detect")
    def test_version_without_valid_digest_falls_back(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """nginx-rtmp: a C1 with a version but no valid digest gets the simple handshake."""
        c1 = bytearray(FFMPEG_C0C1)
        c1[100] ^= 1  # breaks the digest
        s = server()
        with caplog.at_level(logging.WARNING, "rtmp.handshake"):
            s.receive_data(bytes(c1))
        reply = s.data_to_send()
        assert not s.digest_used
        assert reply[5:9] == bytes(4)  # simple S1
        assert reply[1 + HANDSHAKE_SIZE :] == bytes(c1[1:])  # S2 echoes C1
        assert "no valid HS-FP9 player digest" in caplog.text
        with pytest.raises(HandshakeError, match="HS-FP9 schemes"):
            server(strict=True).receive_data(bytes(c1))

    @pytest.mark.spec("HS-FP9 detect")
    def test_simple_only_server(self, caplog: pytest.LogCaptureFixture) -> None:
        """digest=False answers every C1 simply, as ffmpeg's listen mode does."""
        s = server(digest=False)
        with caplog.at_level(logging.WARNING, "rtmp.handshake"):
            s.receive_data(FFMPEG_C0C1)
        assert not s.digest_used and s.data_to_send()[5:9] == bytes(4)

    def test_bad_server_version(self) -> None:
        with pytest.raises(ValueError):
            server(server_version=(0, 0, 0, 0))
        with pytest.raises(ValueError):
            server(server_version=(256, 0, 0, 0))


class TestDigestClient:
    """HS-FP9 C1 / S2/C2 from the client side."""

    @pytest.mark.spec("HS-FP9 C1")
    def test_c1_carries_a_digest(self) -> None:
        c = client(now_ms=7)
        c1 = c.data_to_send()[1:]
        assert c1[:4] == (7).to_bytes(4, "big")
        assert tuple(c1[4:8]) == (9, 0, 124, 2)  # as ffmpeg
        match = find_digest(c1, PLAYER_KEY_PARTIAL)
        assert match is not None and match.scheme is DigestScheme.DIGEST_FIRST
        assert client(flash_version=(10, 0, 45, 2)).data_to_send()[5:9] == bytes((10, 0, 45, 2))

    @pytest.mark.spec("HS-FP9 S2/C2", "HS-FP9 C1")
    def test_replay_of_nginx(self) -> None:
        """Our recorded C1, then nginx-rtmp's recorded answer: valid S1 digest and S2 signature."""
        recorded_c1 = OUR_C0C1[1:]
        c = client(now_ms=1000, random=lambda n: recorded_c1[8 : 8 + n])
        assert c.data_to_send() == OUR_C0C1
        c.receive_data(NGINX_S0S1S2)
        assert c.complete and c.digest_used
        assert c.peer_flash_version == (13, 14, 10, 13)
        c2 = c.data_to_send()
        s1_digest = find_digest(NGINX_S0S1S2[1:1537], SERVER_KEY_PARTIAL)
        assert s1_digest is not None
        assert response_is_valid(c2, s1_digest.digest, PLAYER_KEY)

    @pytest.mark.spec("HS-FP9 S2/C2")
    def test_bad_s2_signature(self, caplog: pytest.LogCaptureFixture) -> None:
        bad = bytearray(NGINX_S0S1S2)
        bad[-1] ^= 1
        recorded_c1 = OUR_C0C1[1:]
        with pytest.raises(HandshakeError, match="S2 carries neither"):
            client(now_ms=1000, random=lambda n: recorded_c1[8 : 8 + n], strict=True).receive_data(
                bytes(bad)
            )
        c = client(now_ms=1000, random=lambda n: recorded_c1[8 : 8 + n])
        with caplog.at_level(logging.WARNING, "rtmp.handshake"):
            c.receive_data(bytes(bad))
        assert c.complete and "S2 carries neither" in caplog.text

    @pytest.mark.spec("HS-FP9 S2/C2", "RTMP 5.2.4")
    def test_simple_server_accepted(self) -> None:
        """ffmpeg's listen mode: S1 with a zero field, S2 = C1 time, 0, C1 random."""
        c = client(strict=True)
        c1 = c.data_to_send()[1:]
        s2 = c1[:4] + bytes(4) + c1[8:]
        c.receive_data(b"\x03" + simple_block(0, 0x42) + s2)
        assert c.complete and not c.digest_used
        assert c.data_to_send() == simple_block(0, 0x42)  # C2 echoes S1

    @pytest.mark.spec("HS-FP9 S2/C2")
    def test_signed_s1_with_echo_s2(self) -> None:
        """A server that signs S1 but echoes C1 in S2 is accepted."""
        c = client(strict=True)
        c1 = c.data_to_send()[1:]
        s1 = bytearray(simple_block(0, 0x10))
        s1[4:8] = b"\x03\x05\x01\x01"
        imprint_digest(s1, SERVER_KEY_PARTIAL, DigestScheme.KEY_FIRST)
        c.receive_data(b"\x03" + bytes(s1) + c1)
        assert c.complete and c.digest_used

    @pytest.mark.spec("HS-FP9 detect")
    def test_s1_version_without_digest(self, caplog: pytest.LogCaptureFixture) -> None:
        s1 = bytearray(simple_block(0, 0x10))
        s1[4:8] = b"\x03\x05\x01\x01"
        with pytest.raises(HandshakeError, match="no valid HS-FP9 server digest"):
            client(strict=True).receive_data(b"\x03" + bytes(s1))
        c = client()
        with caplog.at_level(logging.WARNING, "rtmp.handshake"):
            c.receive_data(b"\x03" + bytes(s1))
        assert not c.digest_used and c.data_to_send()[1 + HANDSHAKE_SIZE :] == bytes(s1)

    def test_bad_flash_version(self) -> None:
        with pytest.raises(ValueError):
            client(flash_version=(0, 0, 0, 0))
        client(digest=False, flash_version=(0, 0, 0, 0))  # not used without a digest


class TestSansIO:
    @pytest.mark.spec("RTMP 5.2")
    @pytest.mark.parametrize("module", ["handshake.py", "digest.py"])
    def test_no_io_imports(self, module: str) -> None:
        """The handshake core imports no socket, threading, select or time."""
        tree = ast.parse((ROOT / "rtmp" / module).read_text(encoding="utf-8"))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        assert not names & {"socket", "threading", "select", "selectors", "time", "asyncio"}
