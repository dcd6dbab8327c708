"""RTMP 5.2: the handshake (C0/C1/C2 and S0/S1/S2), both roles, as sans-IO state machines.

Theory of operation
-------------------
Each side sends three fixed-size blocks with no chunk headers (RTMP 5.2): a one-byte
version (C0/S0, RTMP 5.2.2), a 1536-byte block of time, zero field and random bytes
(C1/S1, RTMP 5.2.3) and a 1536-byte echo of the peer's block (C2/S2, RTMP 5.2.4).  The
objects here never touch a socket or a clock: like h11, they take bytes in with
:meth:`receive_data` (``b""`` meaning end of file), hand bytes out with
:meth:`data_to_send`, and expose ``state``, ``complete`` and
``trailing_data`` (the bytes that followed the last handshake block, which belong to
the chunk decoder: a client may send C2 and its ``connect`` in one TCP segment).

States follow the diagram of RTMP 5.2.5::

    client                                  server
    UNINITIALIZED  -- C0+C1 handed out -->  UNINITIALIZED  -- C0 read, S0 queued -->
    VERSION_SENT   -- S1 read, C2 queued -> VERSION_SENT   -- C1 read, S1+S2 queued -->
    ACK_SENT       -- S2 read ---------->  ACK_SENT       -- C2 read -->
    DONE                                    DONE

Any error moves to ``ERROR`` and further input is refused.  The client sends C2 as soon
as S1 is in (RTMP 5.2.1 allows it) and nothing else before S2; the server sends S0 on C0
and S1+S2 together once C1 is in, because C1 decides between the two handshakes:

* the simple handshake of RTMP 5.2.3/5.2.4 (zero field, echoes), and
* the Flash Player 9 digest handshake (``HS-FP9``, :mod:`rtmp.digest`), which ffmpeg,
  librtmp, nginx-rtmp and Flash speak: a version in the zero field and HMAC digests
  instead of echoes.  The server answers in kind when C1 carries a valid digest
  (``HS-FP9 detect``); the client offers it by default, as ffmpeg does, and falls back
  to the simple handshake when S1 has a zero version field.

Strictness: the peer's echo (or signature) is always checked.  With ``strict=False`` (the
default, as ffmpeg and nginx-rtmp behave) a bad one is logged as a warning; with
``strict=True`` it raises :class:`~rtmp.errors.HandshakeError`.
"""

from __future__ import annotations

import enum
import logging
import os
import random as _random_module
from collections.abc import Callable

from ._bytes import U32, ReceiveBuffer
from .digest import (
    DIGEST_SIZE,
    FFMPEG_CLIENT_VERSION,
    LIBRTMP_SERVER_VERSION,
    PLAYER_KEY,
    PLAYER_KEY_PARTIAL,
    SERVER_KEY,
    SERVER_KEY_PARTIAL,
    DigestMatch,
    DigestScheme,
    find_digest,
    imprint_digest,
    make_response,
    response_is_valid,
)
from .errors import HandshakeError

__all__ = [
    "HANDSHAKE_SIZE",
    "RTMPE_VERSIONS",
    "RTMP_VERSION",
    "ClientHandshake",
    "HandshakeState",
    "ServerHandshake",
    "filler_bytes",
]

logger = logging.getLogger(__name__)

#: RTMP 5.2.2: the only version this specification defines.
RTMP_VERSION = 3
#: RTMP 5.2.3 / 5.2.4: C1, S1, C2 and S2 are 1536 bytes.
HANDSHAKE_SIZE = 1536
#: RTMP 5.2.3: the random field fills the block after time (4) and zero (4).
RANDOM_SIZE = HANDSHAKE_SIZE - 8
#: RTMP 5.2.2 [impl: librtmp]: C0 values of RTMPE (encrypted RTMP), which we do not speak.
RTMPE_VERSIONS = (6, 8)
#: RTMP 5.2.2: versions 32..255 are never RTMP, so text protocols can be told apart.
FIRST_DISALLOWED_VERSION = 32

_ZERO4 = bytes(4)

#: A clock: milliseconds on the sender's own epoch (RTMP 5.2.3), wrapped to 32 bits.
Clock = Callable[[], int]
#: A source of random bytes, called with a byte count (default :func:`os.urandom`).
RandomSource = Callable[[int], bytes]

#: Random bytes drawn once per process; :func:`filler_bytes` hands out windows of them.
_FILLER_POOL = os.urandom(64 * 1024)
#: Picks the windows (seeded from the system's random source).
_FILLER_OFFSETS = _random_module.Random(os.urandom(16))


def filler_bytes(count: int) -> bytes:
    """RTMP 5.2.3: ``count`` bytes for the random field of our C1/S1 (and HS-FP9's random
    S2/C2 body).  The spec asks for "something sufficiently random" to tell the two
    handshakes apart, with "no need for cryptographically-secure randomness or even
    dynamic values": a window at a random offset of a pool drawn from :func:`os.urandom`
    once gives that without a system call per handshake (the server's default; the
    client keeps :func:`os.urandom`).  Longer requests than the pool go to
    :func:`os.urandom`."""
    pool = _FILLER_POOL
    if count > len(pool) // 2:
        return os.urandom(count)
    start = _FILLER_OFFSETS.randrange(len(pool) - count + 1)
    return pool[start:start + count]
FlashVersion = tuple[int, int, int, int]


class HandshakeState(enum.Enum):
    """RTMP 5.2.5: the states of the handshake diagram, plus ERROR after a failure."""

    #: RTMP 5.2.5: nothing exchanged yet; the client's C0 is still to be sent.
    UNINITIALIZED = "uninitialized"
    #: RTMP 5.2.5: versions exchanged; client waits for S1, server for C1.
    VERSION_SENT = "version sent"
    #: RTMP 5.2.5: C2/S2 sent; client waits for S2, server for C2.
    ACK_SENT = "ack sent"
    #: RTMP 5.2.5: handshake done; chunks flow from here (RTMP 5.3).
    DONE = "handshake done"
    #: The handshake failed; the connection must be closed.
    ERROR = "error"


def _check_flash_version(version: FlashVersion) -> bytes:
    data = bytes(version)  # ValueError on a component outside 0..255
    if len(data) != 4 or data == _ZERO4:
        raise ValueError("a HS-FP9 version is four bytes, not all zero, e.g. (9, 0, 124, 2)")
    return data


class _Handshake:
    """The parts both roles share: input buffering, EOF, error state, echo checks."""

    #: Names and sizes of the peer's three blocks, in order; set by the subclasses.
    _expected: tuple[tuple[str, int], ...] = ()
    #: HS-FP9: whether we speak the digest handshake; set by the subclasses.
    digest: bool

    def __init__(
        self,
        *,
        strict: bool,
        now_ms: int | Clock,
        random: RandomSource,
    ) -> None:
        if not callable(now_ms) and not isinstance(now_ms, int):
            raise TypeError("now_ms must be an int or a callable returning milliseconds")
        self.strict = strict
        self._now_ms = now_ms
        self._random = random
        self._buffer = ReceiveBuffer()
        self._outgoing = bytearray()
        self._step = 0
        #: RTMP 5.2.5: where the handshake stands.
        self.state = HandshakeState.UNINITIALIZED
        #: Bytes received after the peer's last handshake block: the start of the chunk
        #: stream (RTMP 5.3), for the chunk decoder.
        self.trailing_data = b""
        #: RTMP 5.2.2: the version byte the peer sent (C0 or S0).
        self.peer_version: int | None = None
        #: RTMP 5.2.3: the time field of the peer's C1/S1 (its epoch).
        self.peer_time: int | None = None
        #: RTMP 5.2.4: the time2 field of the peer's C2/S2 echo (when it read our block),
        #: or None for a HS-FP9 signed response.
        self.peer_time2: int | None = None
        #: HS-FP9 C1: bytes 4..7 of the peer's C1/S1 when not zero (e.g. ``(9, 0, 124, 2)``).
        self.peer_flash_version: FlashVersion | None = None
        #: HS-FP9: True when both sides exchanged valid digests (the complex handshake).
        self.digest_used = False
        #: HS-FP9 schemes: where the peer put its digest, when :attr:`digest_used`.
        self.peer_digest_scheme: DigestScheme | None = None
        self._sent_block = b""  # our C1/S1, which the peer's C2/S2 answers
        self._peer_block = b""  # the peer's C1/S1
        self._own_digest: bytes | None = None  # HS-FP9: digest in our C1/S1
        self._peer_digest: bytes | None = None  # HS-FP9: digest in the peer's C1/S1

    # -- public sans-IO interface ---------------------------------------------------

    @property
    def complete(self) -> bool:
        """RTMP 5.2.5: True once the handshake is done."""
        return self.state is HandshakeState.DONE

    @property
    def local_block(self) -> bytes:
        """RTMP 5.2.3: the C1/S1 we sent (HS-FP9 swfverify keys on a server's S1)."""
        return self._sent_block

    @property
    def peer_block(self) -> bytes:
        """RTMP 5.2.3: the C1/S1 the peer sent, once received (else ``b""``)."""
        return self._peer_block

    def data_to_send(self) -> bytes:
        """The bytes to write to the peer now (possibly empty); each byte is returned once."""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the peer; ``b""`` means the peer closed the connection.

        Raises :class:`~rtmp.errors.HandshakeError` when the peer breaks RTMP 5.2 (and
        then refuses further input).  Bytes arriving after the handshake is done are
        appended to :attr:`trailing_data`; end of file after that is not an error.
        """
        if self.state is HandshakeState.ERROR:
            raise HandshakeError("the handshake already failed; close the connection (RTMP 5.2)")
        if self.state is HandshakeState.DONE:
            if data:
                self.trailing_data += bytes(data)
            return
        try:
            if not data:
                self._eof()
            self._buffer.feed(data)
            self._advance()
        except HandshakeError:
            self.state = HandshakeState.ERROR
            raise
        finally:
            self._buffer.compact()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} state={self.state.name} "
            f"digest_used={self.digest_used} strict={self.strict}>"
        )

    # -- machinery ------------------------------------------------------------------

    def _eof(self) -> None:
        name, size = self._expected[self._step]
        raise HandshakeError(
            f"connection closed during the handshake: got {len(self._buffer)} of {size} "
            f"bytes of {name} (RTMP 5.2.1)"
        )

    def _advance(self) -> None:
        while self._step < len(self._expected):
            name, size = self._expected[self._step]
            if len(self._buffer) < size:
                return
            block = self._buffer.take(size)
            self._step += 1
            logger.debug("handshake: received %s (%d bytes)", name, size)
            self._handle(name, block)
        # RTMP 5.2.5: done; whatever followed the last block is chunk stream data.
        self.state = HandshakeState.DONE
        self.trailing_data = self._buffer.take(len(self._buffer))
        logger.debug(
            "handshake done (digest=%s), %d trailing bytes",
            self.digest_used,
            len(self.trailing_data),
        )

    def _handle(self, name: str, block: bytes) -> None:
        raise NotImplementedError

    def _now(self) -> int:
        value = self._now_ms() if callable(self._now_ms) else self._now_ms
        return value & 0xFFFFFFFF  # RTMP 4: timestamps are 32-bit and wrap

    def _random_bytes(self, count: int) -> bytes:
        data = self._random(count)
        if len(data) != count:
            raise ValueError(f"random source returned {len(data)} bytes, wanted {count}")
        return bytes(data)

    def _tolerate(self, problem: str) -> None:
        """Strict: raise; lenient (ffmpeg, nginx-rtmp): log the deviation and go on."""
        if self.strict:
            raise HandshakeError(problem)
        logger.warning("handshake: tolerated: %s", problem)

    def _check_version(self, version: int, name: str) -> None:
        """RTMP 5.2.2: only version 3 is spoken; anything else ends the handshake."""
        self.peer_version = version
        if version == RTMP_VERSION:
            return
        if version in RTMPE_VERSIONS:
            raise HandshakeError(
                f"{name} is {version}, RTMPE (encrypted RTMP), which is not supported: "
                f"only plain RTMP version {RTMP_VERSION} is (RTMP 5.2.2)"
            )
        if version >= FIRST_DISALLOWED_VERSION:
            raise HandshakeError(
                f"{name} is 0x{version:02x} ({chr(version)!r}): versions 32-255 are not "
                f"allowed, this is not an RTMP peer (another protocol?) (RTMP 5.2.2)"
            )
        kind = "deprecated" if version < RTMP_VERSION else "reserved"
        # RTMP 5.2.5: an unsupported version ends the connection.  RTMP 5.2.2 lets a
        # server answer 3 instead, but a peer that asked for another version would not
        # speak version 3 afterwards, so failing here gives the clearer error.
        raise HandshakeError(
            f"{name} is {kind} version {version}; only version {RTMP_VERSION} "
            f"is supported (RTMP 5.2.2)"
        )

    def _read_challenge(self, block: bytes) -> bytes:
        """RTMP 5.2.3: record the time and version fields of the peer's C1/S1."""
        self._peer_block = block
        (self.peer_time,) = U32.unpack_from(block, 0)
        version = block[4:8]
        if version != _ZERO4:
            self.peer_flash_version = (version[0], version[1], version[2], version[3])
        return version

    def _read_peer_digest(
        self, block: bytes, name: str, key: bytes, peer: str, fallback: str
    ) -> DigestMatch | None:
        """RTMP 5.2.3 / HS-FP9 detect: read the peer's C1/S1 (``name``); when bytes 4-7
        carry a version, find its ``peer`` digest under ``key`` (HS-FP9 schemes: 1, then
        0) and use the digest handshake, else tolerate it (``fallback`` says what we do)."""
        version = self._read_challenge(block)
        if version == _ZERO4:
            return None  # RTMP 5.2.3: the simple handshake
        match = find_digest(block, key) if self.digest else None
        if match is not None:
            self.digest_used = True
            self.peer_digest_scheme = match.scheme
            self._peer_digest = match.digest
        elif self.digest:
            # Deviation (nginx-rtmp): a version without a valid digest gets the simple
            # handshake instead of a rejection (strict: a HandshakeError).
            self._tolerate(
                f"{name} announces version {'.'.join(map(str, version))} but carries no "
                f"valid HS-FP9 {peer} digest (HS-FP9 schemes); {fallback}"
            )
        else:
            # Deviation (ffmpeg listen mode): with digest=False any block gets the simple one.
            self._tolerate(f"{name} bytes 4-7 are {version.hex()}, not zero (RTMP 5.2.3)")
        return match

    def _make_challenge(self, version: bytes | None, key: bytes, scheme: DigestScheme) -> bytes:
        """RTMP 5.2.3 / HS-FP9 C1: our C1/S1, with a digest when ``version`` is given."""
        block = bytearray(U32.pack(self._now()))  # RTMP 5.2.3: time, our epoch
        block += version if version is not None else _ZERO4  # RTMP 5.2.3: zero
        block += self._random_bytes(RANDOM_SIZE)  # RTMP 5.2.3: random bytes
        if version is not None:
            self._own_digest = imprint_digest(block, key, scheme).digest  # HS-FP9 C1
        self._sent_block = bytes(block)
        return self._sent_block

    def _make_echo(self, peer_block: bytes) -> bytes:
        """RTMP 5.2.4: C2/S2 as an echo of the peer's S1/C1."""
        if self.strict:
            # RTMP 5.2.4: time2 is the time at which we read the peer's block.
            return peer_block[:4] + U32.pack(self._now()) + peer_block[8:]
        # Deviation (nginx-rtmp, librtmp, ffmpeg publisher): echo the block byte for byte,
        # so time2 repeats the peer's bytes 4..7.  librtmp compares all 1536 bytes of its
        # C1 with S2 and warns "client signature does not match!" otherwise.
        return peer_block

    def _make_signed_response(self, full_key: bytes) -> bytes:
        """HS-FP9 S2/C2: 1504 random bytes and a signature keyed on the peer's digest."""
        assert self._peer_digest is not None
        body = self._random_bytes(HANDSHAKE_SIZE - DIGEST_SIZE)
        return make_response(body, self._peer_digest, full_key)

    def _is_echo(self, response: bytes) -> bool:
        """RTMP 5.2.4: the time and random fields repeat our C1/S1 (time2 is free)."""
        sent = self._sent_block
        return response[:4] == sent[:4] and response[8:] == sent[8:]

    def _check_response(self, response: bytes, name: str, ours: str, full_key: bytes) -> None:
        """RTMP 5.2.4 / HS-FP9 S2/C2: check the peer's answer to our C1/S1.

        A valid HS-FP9 signature (when the digest handshake is in use) or a valid RTMP
        5.2.4 echo is accepted; ffmpeg as a publisher echoes even in the digest handshake.
        """
        if self.digest_used:
            assert self._own_digest is not None
            if response_is_valid(response, self._own_digest, full_key):  # HS-FP9 S2/C2
                return
            if self._is_echo(response):
                (self.peer_time2,) = U32.unpack_from(response, 4)
                logger.debug("handshake: %s is a plain echo of %s (RTMP 5.2.4)", name, ours)
                return
            self._tolerate(
                f"{name} carries neither the HS-FP9 signature derived from our {ours} "
                f"digest nor an echo of {ours} (HS-FP9 S2/C2)"
            )
            return
        (self.peer_time2,) = U32.unpack_from(response, 4)
        if response[:4] != self._sent_block[:4]:
            self._tolerate(
                f"{name} time {U32.unpack_from(response, 0)[0]} does not echo the time "
                f"{U32.unpack_from(self._sent_block, 0)[0]} of our {ours} (RTMP 5.2.4)"
            )
        if response[8:] != self._sent_block[8:]:
            self._tolerate(f"{name} random bytes do not echo those of our {ours} (RTMP 5.2.4)")


class ClientHandshake(_Handshake):
    """RTMP 5.2: the client side (sends C0, C1, C2; reads S0, S1, S2).

    ``digest=True`` (the default, as ffmpeg) sends an HS-FP9 C1 announcing
    ``flash_version`` with a player-key digest placed by ``scheme``, validates the server's
    S1 digest and S2 signature when S1 has a version, and falls back to the simple
    handshake when it does not.  ``digest=False`` sends the RTMP 5.2.3 C1 (zero field).

    ``version`` is the C0 byte; only 3 is spoken (RTMP 5.2.2), other values exist to
    probe servers.  ``now_ms`` is an int or a callable giving our epoch in milliseconds
    (C1's time, C2's time2); ``random`` returns n random bytes (default :func:`os.urandom`).
    C0+C1 are ready in :meth:`data_to_send` right away.
    """

    _expected = (("S0", 1), ("S1", HANDSHAKE_SIZE), ("S2", HANDSHAKE_SIZE))

    def __init__(
        self,
        digest: bool = True,
        version: int = RTMP_VERSION,
        *,
        flash_version: FlashVersion = FFMPEG_CLIENT_VERSION,
        scheme: DigestScheme = DigestScheme.DIGEST_FIRST,
        strict: bool = False,
        now_ms: int | Clock = 0,
        random: RandomSource = os.urandom,
    ) -> None:
        super().__init__(strict=strict, now_ms=now_ms, random=random)
        if not 0 <= version <= 255:
            raise ValueError(f"C0 version is one byte, got {version}")
        self.version = version
        self.digest = digest
        announced = _check_flash_version(flash_version) if digest else None
        c1 = self._make_challenge(announced, PLAYER_KEY_PARTIAL, DigestScheme(scheme))
        self._outgoing += bytes((version,)) + c1  # RTMP 5.2.1: C0 and C1 together

    def data_to_send(self) -> bytes:
        """The bytes to write now; the first call returns C0+C1 (RTMP 5.2.1)."""
        if self.state is HandshakeState.UNINITIALIZED:
            self.state = HandshakeState.VERSION_SENT  # RTMP 5.2.5: C0 is on its way
        return super().data_to_send()

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the server (S0, S1, S2, then chunk data); ``b""`` is EOF."""
        if self.state is HandshakeState.UNINITIALIZED and data:
            # The server answered, so our C0 was sent even if data_to_send() was not
            # drained through this object.
            self.state = HandshakeState.VERSION_SENT
        super().receive_data(data)

    def _handle(self, name: str, block: bytes) -> None:
        if name == "S0":
            self._check_version(block[0], "S0")
        elif name == "S1":
            self._on_s1(block)
        else:
            self._check_response(block, "S2", "C1", SERVER_KEY)

    def _on_s1(self, s1: bytes) -> None:
        """RTMP 5.2.3 / HS-FP9: read S1, queue C2 (RTMP 5.2.1: C2 only after S1)."""
        self._read_peer_digest(s1, "S1", SERVER_KEY_PARTIAL, "server", "answering with an echo")
        if self.digest_used:
            c2 = self._make_signed_response(PLAYER_KEY)  # HS-FP9 S2/C2
        else:
            c2 = self._make_echo(s1)  # RTMP 5.2.4
        self._outgoing += c2
        self.state = HandshakeState.ACK_SENT  # RTMP 5.2.5
        logger.debug("handshake: S1 read (digest=%s), C2 queued", self.digest_used)


class ServerHandshake(_Handshake):
    """RTMP 5.2: the server side (reads C0, C1, C2; sends S0, S1, S2).

    With ``digest=True`` (the default) a C1 that carries a valid HS-FP9 player digest
    (either scheme) gets a digest S1 announcing ``server_version`` (placed with the
    client's scheme) and a signed S2 (``HS-FP9 detect``); any other C1 gets the simple
    handshake of RTMP 5.2.3/5.2.4.  ``digest=False`` always answers simply, as ffmpeg's
    listen mode does.  ``now_ms`` and ``random`` as for :class:`ClientHandshake`, but
    ``random`` defaults to :func:`filler_bytes` (one handshake per session: no system call).
    """

    _expected = (("C0", 1), ("C1", HANDSHAKE_SIZE), ("C2", HANDSHAKE_SIZE))

    def __init__(
        self,
        digest: bool = True,
        *,
        server_version: FlashVersion = LIBRTMP_SERVER_VERSION,
        strict: bool = False,
        now_ms: int | Clock = 0,
        random: RandomSource = filler_bytes,
    ) -> None:
        super().__init__(strict=strict, now_ms=now_ms, random=random)
        self.digest = digest
        self._server_version = _check_flash_version(server_version)

    def _handle(self, name: str, block: bytes) -> None:
        if name == "C0":
            self._check_version(block[0], "C0")
            # RTMP 5.2.1: S0 may go as soon as C0 is in; S1 waits for C1 (RTMP 5.2.1
            # allows that), which decides between the simple and the digest handshake.
            self._outgoing += bytes((RTMP_VERSION,))
            self.state = HandshakeState.VERSION_SENT  # RTMP 5.2.5
        elif name == "C1":
            self._on_c1(block)
        else:
            self._check_response(block, "C2", "S1", PLAYER_KEY)

    def _on_c1(self, c1: bytes) -> None:
        """RTMP 5.2.3 / HS-FP9 detect: read C1, queue S1 and S2 together."""
        match = self._read_peer_digest(c1, "C1", PLAYER_KEY_PARTIAL, "player", "answering simply")
        if match is not None:
            s1 = self._make_challenge(self._server_version, SERVER_KEY_PARTIAL, match.scheme)
            s2 = self._make_signed_response(SERVER_KEY)  # HS-FP9 S2/C2
        else:
            s1 = self._make_challenge(None, SERVER_KEY_PARTIAL, DigestScheme.DIGEST_FIRST)
            s2 = self._make_echo(c1)  # RTMP 5.2.4
        self._outgoing += s1 + s2  # RTMP 5.2.1: S2 only after C1
        self.state = HandshakeState.ACK_SENT  # RTMP 5.2.5
        logger.debug("handshake: C1 read (digest=%s), S1+S2 queued", self.digest_used)
