"""HS-FP9: the Flash Player 9 "digest" (complex) handshake, which no Adobe document defines.

Flash Player 9 and later, Flash Media Server, librtmp, ffmpeg and nginx-rtmp reuse the
RTMP 5.2 framing (C0/S0 one byte, C1/S1/C2/S2 1536 bytes each) but fill the blocks
differently (our notes: ``refs/handshake-notes.md``; the label: ``refs/clauses.md``):

* C1/S1 (``HS-FP9 C1``): bytes 0..3 are the time, bytes 4..7 a non-zero *version*
  (where RTMP 5.2.3 wants zeros), and the 1528 "random" bytes carry a 32-byte
  HMAC-SHA256 *digest* at an offset computed from four bytes of the block itself
  (``HS-FP9 schemes``).  The client signs C1 with the player key, the server signs S1
  with the server key (``HS-FP9 keys``).
* C2/S2 (``HS-FP9 S2/C2``): 1504 random bytes followed by a 32-byte signature whose key is
  derived from the digest the peer put in its C1/S1.  This replaces the RTMP 5.2.4 echo.

This module holds the keys and the pure functions over blocks; the state machines that
decide when to use them live in :mod:`rtmp.handshake`.  Nothing here does I/O.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
from collections.abc import Sequence
from typing import NamedTuple, Union

__all__ = [
    "BLOCK_SIZE",
    "DIGEST_SIZE",
    "FFMPEG_CLIENT_VERSION",
    "KEY_TAIL",
    "LIBRTMP_SERVER_VERSION",
    "PLAYER_KEY",
    "PLAYER_KEY_PARTIAL",
    "SERVER_KEY",
    "SERVER_KEY_PARTIAL",
    "VALIDATION_ORDER",
    "DigestMatch",
    "DigestScheme",
    "compute_digest",
    "digest_offset",
    "find_digest",
    "imprint_digest",
    "make_response",
    "response_is_valid",
    "response_key",
    "response_signature",
    "swf_hash",
    "swf_verification",
]

logger = logging.getLogger(__name__)

Buffer = Union[bytes, bytearray, memoryview]  # noqa: UP007 - a runtime alias, Python 3.9

#: RTMP 5.2.3 / HS-FP9 C1: C1, S1, C2 and S2 are all 1536 bytes.
BLOCK_SIZE = 1536
#: HS-FP9 C1: the digest and the C2/S2 signature are HMAC-SHA256 values.
DIGEST_SIZE = 32
#: HS-FP9 schemes: the digest offset is reduced modulo 728 (= 764 - 32 - 4).
OFFSET_MODULUS = 728

#: HS-FP9 keys: the 32-byte constant both keys end with.
KEY_TAIL = bytes.fromhex("F0EEC24A8068BEE82E00D0D1029E7E576EEC5D2D29806FAB93B8E636CFEB31AE")
#: HS-FP9 keys: the player (client) key, 30 bytes, signs C1.
PLAYER_KEY_PARTIAL = b"Genuine Adobe Flash Player 001"
#: HS-FP9 keys: the full player key, 62 bytes, derives the key that signs C2.
PLAYER_KEY = PLAYER_KEY_PARTIAL + KEY_TAIL
#: HS-FP9 keys: the server key, 36 bytes, signs S1.
SERVER_KEY_PARTIAL = b"Genuine Adobe Flash Media Server 001"
#: HS-FP9 keys: the full server key, 68 bytes, derives the key that signs S2.
SERVER_KEY = SERVER_KEY_PARTIAL + KEY_TAIL

#: HS-FP9 C1 [impl: ffmpeg RTMP_CLIENT_VER1..4]: the version ffmpeg's client announces, 9.0.124.2.
FFMPEG_CLIENT_VERSION = (9, 0, 124, 2)
#: HS-FP9 C1 [impl: librtmp SHandShake]: the server version librtmp's server announces, 3.5.1.1.
#: Any first byte >= 3 makes ffmpeg's player validate S1, which we pass.
LIBRTMP_SERVER_VERSION = (3, 5, 1, 1)


class DigestScheme(enum.IntEnum):
    """HS-FP9 schemes: where the 32-byte digest sits in a C1/S1 block.

    The value is librtmp's ``offalg`` index; :attr:`base` is the first of the four
    bytes whose sum selects the offset.
    """

    #: Scheme 0 ("digest first", librtmp ``GetDigestOffset1``): bytes 8..11, offset 12..739.
    DIGEST_FIRST = 0
    #: Scheme 1 ("key first", librtmp ``GetDigestOffset2``): bytes 772..775, offset 776..1503.
    KEY_FIRST = 1

    @property
    def base(self) -> int:
        """Position of the four bytes summed to find the digest offset."""
        return 8 if self is DigestScheme.DIGEST_FIRST else 772


#: HS-FP9 schemes [impl: ffmpeg rtmp_validate_digest, nginx ngx_rtmp_find_digest]:
#: validators try scheme 1 first, then scheme 0.
VALIDATION_ORDER: tuple[DigestScheme, ...] = (DigestScheme.KEY_FIRST, DigestScheme.DIGEST_FIRST)


class DigestMatch(NamedTuple):
    """HS-FP9 schemes: a digest found in a C1/S1 block."""

    scheme: DigestScheme
    offset: int
    digest: bytes


def _check_block(block: Buffer, size: int = BLOCK_SIZE) -> None:
    if len(block) != size:
        raise ValueError(f"handshake block must be {size} bytes, got {len(block)}")


def digest_offset(block: Buffer, scheme: DigestScheme) -> int:
    """HS-FP9 schemes: offset of the digest in ``block`` under ``scheme``.

    ``sum(block[base:base+4]) % 728 + base + 4``: 12..739 for scheme 0, 776..1503 for
    scheme 1, so the digest never overlaps the four bytes that locate it.
    """
    _check_block(block)
    base = DigestScheme(scheme).base
    return sum(bytes(block[base : base + 4])) % OFFSET_MODULUS + base + 4  # HS-FP9 schemes


def compute_digest(block: Buffer, offset: int, key: bytes) -> bytes:
    """HS-FP9 C1: HMAC-SHA256 with ``key`` over ``block`` minus the 32 bytes at ``offset``."""
    _check_block(block)
    if not 0 <= offset <= BLOCK_SIZE - DIGEST_SIZE:
        raise ValueError(f"digest offset {offset} outside the block")
    view = memoryview(block)
    mac = hmac.new(key, view[:offset], hashlib.sha256)
    mac.update(view[offset + DIGEST_SIZE :])  # HS-FP9 C1: the digest itself is left out
    return mac.digest()


def imprint_digest(block: bytearray, key: bytes, scheme: DigestScheme) -> DigestMatch:
    """HS-FP9 C1: write the digest of ``block`` into it at the offset ``scheme`` selects.

    ``key`` is :data:`PLAYER_KEY_PARTIAL` for a C1 and :data:`SERVER_KEY_PARTIAL` for an
    S1.  The block is changed in place; the returned match carries the digest, which the
    peer's C2/S2 signature will be derived from.
    """
    if not isinstance(block, bytearray):
        raise TypeError("imprint_digest needs a bytearray to write into")
    scheme = DigestScheme(scheme)
    offset = digest_offset(block, scheme)
    digest = compute_digest(block, offset, key)
    block[offset : offset + DIGEST_SIZE] = digest
    return DigestMatch(scheme, offset, digest)


def find_digest(
    block: Buffer, key: bytes, schemes: Sequence[DigestScheme] = VALIDATION_ORDER
) -> DigestMatch | None:
    """HS-FP9 schemes: the first scheme under which ``block`` carries a valid digest, or None.

    ``key`` is :data:`PLAYER_KEY_PARTIAL` to check a C1 and :data:`SERVER_KEY_PARTIAL`
    to check an S1.  Comparison is constant-time (``hmac.compare_digest``).
    """
    _check_block(block)
    for scheme in schemes:
        offset = digest_offset(block, scheme)
        expected = compute_digest(block, offset, key)
        found = bytes(block[offset : offset + DIGEST_SIZE])
        if hmac.compare_digest(expected, found):
            logger.debug("HS-FP9: valid digest with scheme %d at offset %d", scheme, offset)
            return DigestMatch(DigestScheme(scheme), offset, found)
    return None


def response_key(peer_digest: bytes, full_key: bytes) -> bytes:
    """HS-FP9 S2/C2: the key that signs a response, derived from the peer's C1/S1 digest.

    S2 uses :data:`SERVER_KEY` with the client's C1 digest; C2 uses :data:`PLAYER_KEY`
    with the server's S1 digest.
    """
    if len(peer_digest) != DIGEST_SIZE:
        raise ValueError(f"a digest is {DIGEST_SIZE} bytes, got {len(peer_digest)}")
    return hmac.new(full_key, peer_digest, hashlib.sha256).digest()


def response_signature(body: Buffer, peer_digest: bytes, full_key: bytes) -> bytes:
    """HS-FP9 S2/C2: the 32-byte signature over the first 1504 bytes of a response."""
    if len(body) != BLOCK_SIZE - DIGEST_SIZE:
        raise ValueError(f"response body must be {BLOCK_SIZE - DIGEST_SIZE} bytes")
    key = response_key(peer_digest, full_key)
    return hmac.new(key, body, hashlib.sha256).digest()


def make_response(random_body: Buffer, peer_digest: bytes, full_key: bytes) -> bytes:
    """HS-FP9 S2/C2: a 1536-byte response, ``random_body`` (1504 bytes) + its signature."""
    body = bytes(random_body)
    return body + response_signature(body, peer_digest, full_key)


def response_is_valid(response: Buffer, peer_digest: bytes, full_key: bytes) -> bool:
    """HS-FP9 S2/C2: whether the last 32 bytes of ``response`` sign its first 1504."""
    _check_block(response)
    split = BLOCK_SIZE - DIGEST_SIZE
    view = memoryview(response)
    expected = response_signature(view[:split], peer_digest, full_key)
    return hmac.compare_digest(expected, bytes(view[split:]))


#: HS-FP9 swfverify: the data of User Control event 27 after its event type is 42 bytes.
SWF_VERIFICATION_SIZE = 42


def swf_hash(swf: Buffer) -> bytes:
    """HS-FP9 swfverify: HMAC-SHA256 of the *decompressed* SWF file with the partial player key.

    A compressed file (``CWS``) must be inflated first (``FWS`` + header bytes 3..7 +
    ``zlib.decompress(data[8:])``), as ffmpeg's ``rtmp_calc_swfhash`` does.
    """
    return hmac.new(PLAYER_KEY_PARTIAL, swf, hashlib.sha256).digest()


def swf_verification(s1: Buffer, swf_sha: bytes, swf_size: int) -> bytes:
    """HS-FP9 swfverify: the 42 bytes a client sends in User Control event 27.

    ``01 01 | size (UI32) | size (UI32) | HMAC-SHA256(key = last 32 bytes of S1,
    message = the SWF hash)``.  A client computes it from the S1 it received, a server
    from the S1 it sent (``local_block`` / ``peer_block`` of the handshake objects).
    """
    _check_block(s1)
    if len(swf_sha) != DIGEST_SIZE:
        raise ValueError(f"a SWF hash is {DIGEST_SIZE} bytes, got {len(swf_sha)}")
    if not 0 <= swf_size <= 0xFFFFFFFF:
        raise ValueError(f"SWF size {swf_size} does not fit 32 bits")
    key = bytes(s1[BLOCK_SIZE - DIGEST_SIZE :])  # HS-FP9 swfverify: the last 32 bytes of S1
    size = swf_size.to_bytes(4, "big")
    return b"\x01\x01" + size + size + hmac.new(key, swf_sha, hashlib.sha256).digest()
