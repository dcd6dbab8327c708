"""HS-FP9: the Flash Player 9 digest handshake helpers of ``rtmp.digest``.

Vectors: the offset arithmetic of the digest schemes (``HS-FP9 schemes``), and blocks
recorded from real peers here (ffmpeg 5.1.9's C1, nginx-rtmp 1.2.2's S1/S2), kept at the
end of this file as labelled constants.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtmp import digest
from rtmp.digest import (
    BLOCK_SIZE,
    DIGEST_SIZE,
    PLAYER_KEY,
    PLAYER_KEY_PARTIAL,
    SERVER_KEY,
    SERVER_KEY_PARTIAL,
    DigestScheme,
    compute_digest,
    digest_offset,
    find_digest,
    imprint_digest,
    make_response,
    response_is_valid,
    response_key,
    response_signature,
)

blocks = st.binary(min_size=BLOCK_SIZE, max_size=BLOCK_SIZE)
schemes = st.sampled_from(list(DigestScheme))


def _b64(*lines: str) -> bytes:
    return base64.b64decode("".join(lines))


def _block_with(position: int, four: bytes) -> bytearray:
    block = bytearray(BLOCK_SIZE)
    block[position : position + 4] = four
    return block


def _reference_digest(block: bytes, offset: int, key: bytes) -> bytes:
    """HS-FP9 C1 written out plainly: HMAC-SHA256 over the block with the 32 bytes cut out."""
    message = block[:offset] + block[offset + 32 :]
    assert len(message) == 1504
    return hmac.new(key, message, hashlib.sha256).digest()


class TestKeys:
    @pytest.mark.spec("HS-FP9 keys")
    def test_player_keys(self) -> None:
        """The partial player key is the 30 ASCII bytes; the full key adds the 32-byte tail."""
        assert PLAYER_KEY_PARTIAL == b"Genuine Adobe Flash Player 001"
        assert len(PLAYER_KEY_PARTIAL) == 30
        assert len(PLAYER_KEY) == 62
        assert PLAYER_KEY.startswith(PLAYER_KEY_PARTIAL)

    @pytest.mark.spec("HS-FP9 keys")
    def test_server_keys(self) -> None:
        assert SERVER_KEY_PARTIAL == b"Genuine Adobe Flash Media Server 001"
        assert len(SERVER_KEY_PARTIAL) == 36
        assert len(SERVER_KEY) == 68
        assert SERVER_KEY.startswith(SERVER_KEY_PARTIAL)

    @pytest.mark.spec("HS-FP9 keys")
    def test_shared_tail(self) -> None:
        tail = PLAYER_KEY[30:]
        assert tail == SERVER_KEY[36:] == digest.KEY_TAIL
        assert tail[:4] == b"\xf0\xee\xc2\x4a" and tail[-4:] == b"\xcf\xeb\x31\xae"


class TestSchemes:
    @pytest.mark.spec("HS-FP9 schemes")
    def test_scheme0_vector(self) -> None:
        """Bytes 8..11 = FF FF FF FF: (1020 % 728) + 12 = 304."""
        assert digest_offset(_block_with(8, b"\xff" * 4), DigestScheme.DIGEST_FIRST) == 304

    @pytest.mark.spec("HS-FP9 schemes")
    def test_scheme1_vector(self) -> None:
        """Bytes 772..775 = FF FF FF FF: (1020 % 728) + 776 = 1068."""
        assert digest_offset(_block_with(772, b"\xff" * 4), DigestScheme.KEY_FIRST) == 1068

    @pytest.mark.spec("HS-FP9 schemes")
    @pytest.mark.parametrize(
        ("scheme", "position", "four", "offset"),
        [
            (DigestScheme.DIGEST_FIRST, 8, b"\x00\x00\x00\x00", 12),
            (DigestScheme.DIGEST_FIRST, 8, b"\xff\xff\xd9\x00", 739),  # sum 727
            (DigestScheme.DIGEST_FIRST, 8, b"\xff\xff\xda\x00", 12),  # sum 728 wraps
            (DigestScheme.KEY_FIRST, 772, b"\x00\x00\x00\x00", 776),
            (DigestScheme.KEY_FIRST, 772, b"\xff\xff\xd9\x00", 1503),
        ],
    )
    def test_offset_bounds(
        self, scheme: DigestScheme, position: int, four: bytes, offset: int
    ) -> None:
        assert digest_offset(_block_with(position, four), scheme) == offset

    @pytest.mark.spec("HS-FP9 schemes")
    @given(block=blocks, scheme=schemes)
    def test_offset_range_and_no_overlap(self, block: bytes, scheme: DigestScheme) -> None:
        """The digest stays inside its half and never covers the bytes that locate it."""
        offset = digest_offset(block, scheme)
        low, high = (12, 739) if scheme is DigestScheme.DIGEST_FIRST else (776, 1503)
        assert low <= offset <= high
        assert offset + DIGEST_SIZE <= BLOCK_SIZE
        assert offset >= scheme.base + 4

    @pytest.mark.spec("HS-FP9 schemes")
    def test_scheme_bases(self) -> None:
        assert DigestScheme.DIGEST_FIRST.base == 8
        assert DigestScheme.KEY_FIRST.base == 772
        assert digest.VALIDATION_ORDER == (DigestScheme.KEY_FIRST, DigestScheme.DIGEST_FIRST)


class TestDigest:
    @pytest.mark.spec("HS-FP9 C1")
    @given(block=blocks, scheme=schemes)
    def test_imprint_matches_reference(self, block: bytes, scheme: DigestScheme) -> None:
        """The digest is HMAC-SHA256(partial key, block minus the 32 digest bytes)."""
        work = bytearray(block)
        match = imprint_digest(work, PLAYER_KEY_PARTIAL, scheme)
        assert match.offset == digest_offset(block, scheme)
        assert match.digest == _reference_digest(block, match.offset, PLAYER_KEY_PARTIAL)
        assert bytes(work[match.offset : match.offset + 32]) == match.digest
        # everything but the digest is untouched
        assert work[: match.offset] == block[: match.offset]
        assert work[match.offset + 32 :] == block[match.offset + 32 :]

    @pytest.mark.spec("HS-FP9 C1", "HS-FP9 schemes")
    @given(block=blocks, scheme=schemes)
    def test_round_trip(self, block: bytes, scheme: DigestScheme) -> None:
        work = bytearray(block)
        made = imprint_digest(work, SERVER_KEY_PARTIAL, scheme)
        assert find_digest(work, SERVER_KEY_PARTIAL) == made
        assert find_digest(work, PLAYER_KEY_PARTIAL) is None  # wrong key

    @pytest.mark.spec("HS-FP9 schemes")
    def test_scheme0_found_after_scheme1_fails(self) -> None:
        """Validators try scheme 1 first; a scheme-0 digest is found on the second try."""
        work = bytearray(bytes(range(256)) * 6)
        imprint_digest(work, PLAYER_KEY_PARTIAL, DigestScheme.DIGEST_FIRST)
        scheme1 = find_digest(work, PLAYER_KEY_PARTIAL, schemes=(DigestScheme.KEY_FIRST,))
        assert scheme1 is None
        match = find_digest(work, PLAYER_KEY_PARTIAL)
        assert match is not None and match.scheme is DigestScheme.DIGEST_FIRST

    @pytest.mark.spec("HS-FP9 C1")
    @given(
        block=blocks,
        scheme=schemes,
        position=st.integers(0, BLOCK_SIZE - 1),
        flip=st.integers(1, 255),
    )
    def test_any_changed_byte_breaks_the_digest(
        self, block: bytes, scheme: DigestScheme, position: int, flip: int
    ) -> None:
        work = bytearray(block)
        imprint_digest(work, PLAYER_KEY_PARTIAL, scheme)
        work[position] ^= flip
        assert find_digest(work, PLAYER_KEY_PARTIAL) is None

    @pytest.mark.spec("HS-FP9 C1")
    def test_ffmpeg_c1_validates(self) -> None:
        """ffmpeg's C1: version 9.0.124.2, time 0, a player-key digest with scheme 0."""
        assert FFMPEG_C0C1[0] == 3
        c1 = FFMPEG_C0C1[1:]
        assert c1[:4] == bytes(4)
        assert tuple(c1[4:8]) == digest.FFMPEG_CLIENT_VERSION
        match = find_digest(c1, PLAYER_KEY_PARTIAL)
        assert match is not None
        assert match.scheme is DigestScheme.DIGEST_FIRST
        assert match.offset == digest_offset(c1, DigestScheme.DIGEST_FIRST)
        assert match.digest == _reference_digest(c1, match.offset, PLAYER_KEY_PARTIAL)
        assert find_digest(c1, SERVER_KEY_PARTIAL) is None

    @pytest.mark.spec("HS-FP9 C1")
    def test_nginx_s1_validates(self) -> None:
        """nginx-rtmp's S1: version 13.14.10.13, a server-key digest with scheme 0."""
        s1 = NGINX_S0S1S2[1:1537]
        assert tuple(s1[4:8]) == (13, 14, 10, 13)
        match = find_digest(s1, SERVER_KEY_PARTIAL)
        assert match is not None and match.scheme is DigestScheme.DIGEST_FIRST
        assert find_digest(s1, PLAYER_KEY_PARTIAL) is None

    @pytest.mark.spec("HS-FP9 C1")
    def test_our_c1_validates(self) -> None:
        match = find_digest(OUR_C0C1[1:], PLAYER_KEY_PARTIAL)
        assert match is not None and match.scheme is DigestScheme.DIGEST_FIRST


class TestResponses:
    @pytest.mark.spec("HS-FP9 S2/C2")
    def test_response_key_is_hmac_of_the_peer_digest(self) -> None:
        peer = bytes(range(32))
        assert response_key(peer, SERVER_KEY) == hmac.new(SERVER_KEY, peer, hashlib.sha256).digest()

    @pytest.mark.spec("HS-FP9 S2/C2")
    @given(body=st.binary(min_size=1504, max_size=1504), peer=st.binary(min_size=32, max_size=32))
    def test_round_trip(self, body: bytes, peer: bytes) -> None:
        response = make_response(body, peer, PLAYER_KEY)
        assert len(response) == BLOCK_SIZE and response[:1504] == body
        key = hmac.new(PLAYER_KEY, peer, hashlib.sha256).digest()
        assert response[1504:] == hmac.new(key, body, hashlib.sha256).digest()
        assert response_signature(body, peer, PLAYER_KEY) == response[1504:]
        assert response_is_valid(response, peer, PLAYER_KEY)
        assert not response_is_valid(response, peer, SERVER_KEY)
        tampered = bytearray(response)
        tampered[0] ^= 1
        assert not response_is_valid(tampered, peer, PLAYER_KEY)

    @pytest.mark.spec("HS-FP9 S2/C2")
    def test_nginx_s2_is_signed_from_our_c1_digest(self) -> None:
        """nginx's S2 = 1504 random bytes + HMAC(HMAC(full server key, our C1 digest), them)."""
        ours = find_digest(OUR_C0C1[1:], PLAYER_KEY_PARTIAL)
        assert ours is not None
        s2 = NGINX_S0S1S2[1537:]
        assert len(s2) == BLOCK_SIZE
        assert response_is_valid(s2, ours.digest, SERVER_KEY)
        assert not response_is_valid(s2, ours.digest, PLAYER_KEY)
        other = find_digest(FFMPEG_C0C1[1:], PLAYER_KEY_PARTIAL)
        assert other is not None
        assert not response_is_valid(s2, other.digest, SERVER_KEY)


class TestSwfVerification:
    @pytest.mark.spec("HS-FP9 swfverify")
    def test_swf_hash(self) -> None:
        swf = b"FWS\x0a" + bytes(100)
        assert (
            digest.swf_hash(swf)
            == hmac.new(b"Genuine Adobe Flash Player 001", swf, hashlib.sha256).digest()
        )

    @pytest.mark.spec("HS-FP9 swfverify")
    def test_layout(self) -> None:
        """01 01, size twice (big-endian), HMAC keyed with the last 32 bytes of S1."""
        s1 = NGINX_S0S1S2[1:1537]
        sha = bytes(range(32))
        data = digest.swf_verification(s1, sha, 0x01020304)
        assert len(data) == digest.SWF_VERIFICATION_SIZE == 42
        assert data[:10] == b"\x01\x01\x01\x02\x03\x04\x01\x02\x03\x04"
        assert data[10:] == hmac.new(s1[-32:], sha, hashlib.sha256).digest()

    def test_misuse(self) -> None:
        s1 = bytes(BLOCK_SIZE)
        with pytest.raises(ValueError, match="SWF hash"):
            digest.swf_verification(s1, bytes(31), 1)
        with pytest.raises(ValueError, match="32 bits"):
            digest.swf_verification(s1, bytes(32), 2**32)
        with pytest.raises(ValueError, match="1536"):
            digest.swf_verification(bytes(10), bytes(32), 1)


class TestMisuse:
    @pytest.mark.parametrize("size", [0, 1535, 1537])
    def test_wrong_block_size(self, size: int) -> None:
        with pytest.raises(ValueError, match="1536"):
            digest_offset(bytes(size), DigestScheme.DIGEST_FIRST)
        with pytest.raises(ValueError):
            find_digest(bytes(size), PLAYER_KEY_PARTIAL)
        with pytest.raises(ValueError):
            response_is_valid(bytes(size), bytes(32), PLAYER_KEY)

    def test_imprint_needs_a_bytearray(self) -> None:
        with pytest.raises(TypeError):
            block = bytes(BLOCK_SIZE)
            imprint_digest(block, PLAYER_KEY_PARTIAL, DigestScheme.DIGEST_FIRST)  # type: ignore[arg-type]

    @pytest.mark.parametrize("offset", [-1, BLOCK_SIZE - 31])
    def test_offset_outside_block(self, offset: int) -> None:
        with pytest.raises(ValueError, match="outside"):
            compute_digest(bytes(BLOCK_SIZE), offset, PLAYER_KEY_PARTIAL)

    def test_bad_digest_and_body_lengths(self) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            response_key(bytes(31), SERVER_KEY)
        with pytest.raises(ValueError, match="1504"):
            response_signature(bytes(1503), bytes(32), SERVER_KEY)

    def test_unknown_scheme(self) -> None:
        with pytest.raises(ValueError):
            digest_offset(bytes(BLOCK_SIZE), 2)  # type: ignore[arg-type]


# -- recorded vectors (base64) ---------------------------------------------------------

#: HS-FP9 C1 [impl: ffmpeg 5.1.9 rtmp_handshake]: C0+C1 that `ffmpeg -i rtmp://...` sent.
#: Version 9.0.124.2, time 0, digest placed with scheme 0 and the player key.
FFMPEG_C0C1 = _b64(
    "AwAAAAAJAHwC93hVHs6rjh42LwfFhopwsmbUAiDlCGEYoi42l9X8K2Mpwi7nx8mwtbNF36g5j+o7yHkgihBoQlqh"
    "F0y1cljP6+JNpC7E/52hnHtAbxjJW/3QTuSLb4MyFKR7i/aOsFJU4lrpqai0lsVJb26c18aMtrzIQWnmfz43L/4Y"
    "bahROGLFr961oSGKhguszdhpslPbq4oO+1mkjEQgmYdeVbdP0Hobaa8wPgmYc8t34tnixHQesfUGp/Cylir5H1BR"
    "yJCjIJlPTIs2oB+pwPFfS3z3tsOBfaYJGGEdOwL/fMlAOJN1N9M4LkFr1XV3g035yvdINSFQzpLQ27QOhx/DZOGL"
    "fjVp45h2wa4Mt5/216sy+fARhpyNpBke9G08G8a3LYOBLyJD0XUqQSYy1mogdfXTAvRc3yuYuAK3mAXcSDfYTt7R"
    "zELLp+7DE3v4bdCy1/Yk1SGj/2Vbzw30EBNB0jDpRlFijkWnq/gYMQHOmB5ehqb67Fx5qn7HGB6kWe2WbgyTKm+e"
    "S/VUq3sckFzeBU7UDS+4m7/GV1LljP3k8qBNw60eXvT8ZNV7BxwUFGpFH2oEMVbSiA9ZV9eN/T/yuID2JKxw8nCU"
    "83c06vGST2asPWSK4jKTBUSkQgtl7tRpb39Q/gX8lIUWZQv7m2X5U9hI40VpZdDXa2J6hONendq9i0Pw+truRYzf"
    "WevXc5IuCuUH1eZAkukOxn7YQ56PIhx1Op+SFvHLhbUQe8fMfE+yw+7Rr8cJsZL1DeacH/ylZQ77Ujtfq1mXysS3"
    "71ryv1lz5ik7rh/B2kmb5VFQd95N2z9/vNdBcRxit9gDuNBUz1eBgnFNHERb1pK6G4OaCecmb8hdqo+tQz2rvSBs"
    "3h6lcXcMa/p5VsJm7oQ16wHKpvWDwNg8M+788/l9uRe9spn4qJ+4hgqxzWRMHoLM4TI6nredJfXcVwtwtAuyAGF0"
    "M1PQU27Nq9gvInd1YijLVP5pMsTJvRMNK/xwC/XYXaaUbpb4Lgr9jpwgz+q/mmoYm7F7vvU50dnnPulm/LXWvb+Y"
    "RE3oZb4WBeNAh7NM3wTjr/Vb1BN8Ui0uPHvyY02zJrIqR023+KCVKrNRDeVVOWwYo3ioOQtzv/d3L7J2D6V4ajsE"
    "WcRaHRsN/0y7tl2g7TTzIRbDwswrlYJREbz7skbBUFqgDJcNBtdsyVDONosiDbIEh8ugK7H8VLNlZ7QpE9a4hQYs"
    "13lWAdMaSo5tVkZ/pcUhYmdv1SYSJRPD5H8ubZ1qGcT4eVQxqUztA5Ih0nrGinp3DpMFJSJxRZtx0FUFxJd7cOlo"
    "USCLrNzffmgrOEiECIDx/sKjL7FAaGK8g8rYmt9ynzum/9P+gI6EA+fGoPbc2jIRiY9vFlBbB4zHi4DbYA3tLyAP"
    "Jf9dyzHTLL4gVri9wxCRYxq70qwo1h/jJIDsUDW7818XM5Pw1Zoh0jALLbS1nqpj/+D5PWXcAoUWkF8iqcff84fE"
    "63jGMA5+u7KmZjz75amXfK9XZLo/CrpX205gUeCuxuBbG9qmSal4de28QLzEIUu3/vcnMNQ2isvT4Qq0x2QqHFP5"
    "PKJtucdmVVvib9/w4qchQluVdisLd2/T4+sXMT1TEpyfNAA8maUZaoxqrLbWS1HdmLJ8W1mnC9lBoboDAPt0TPxJ"
    "nZl+bZM5LSinZ9EW37wsuetAVA0R6zBK2TIjhv3Fl9VdPRxnvFTfNUea+xnqLNIE3TMe+0nB4XL2u4n79YIH3K5s"
    "EvinWYvvHocsDDXyK0wp3xD5uxrdOuuIerX7OMA2uING92HELyld/gtDfftPMKcSdqt9QJzkJJY/nrtPH0flKxh4"
    "byebWocib2aYHdbQrRH0mvMQVf9pcQ/aNFfEt4UtsuOTbQd4v4efFzStOiT/sa6VhHYLnLBFKlO6CWL/4vYFr1KD"
    "C9IRpUiIlMwLBSJVBIcRzRmFEKnpQ7+Lg5GYRV+9QQcwBdMDmQuI2bY2VtQ8/sjtg3SPSw8PxRICFnlLIqBU5bxY"
    "q9jEEJYHCIQ5NFPOUJaUr76r4A=="
)

#: HS-FP9 C1: C0+C1 of ClientHandshake(digest=True, now_ms=1000) as sent to nginx-rtmp.
OUR_C0C1 = _b64(
    "AwAAA+gJAHwCJqOCtgdSZqqZxslnNs2nuyWC/B8IWSzOq3uO6jqfMb/3QXD2JLNu59jmF69VIr6yd0Zh1SCEvpIv"
    "JbYHEU5gR35s3fGBI3Ceh1CINcSnTgm2TlCUA9anYQ0EhjWqkZYIf68OyUG1BNiNPaEJduVfakjI6kkd8qvLNj9o"
    "YfLQh3Squm30NvAcHkjaJyFwQNlKwmqmz2ak9jI9FuwR4HUyXO3IZ+YiJJFDt6ZbLkFCdKc/BiwLc2Bfb9stOJiL"
    "0GfuwpzdIacJJXFy/H/gTxTtstJ74Y80Oa/QE0ZnLXRDFbjMOkuJ/4Q5SXFauFXzkbe6G3IySvuLdCLd/l+zV0Wz"
    "8HYOvH8/ysTV2kCmFtPIEI/JXlWdBIk0G/PJftGviVFKWn7HCupbO7c1DBy5+e4Qc0cCaG1k+uTwex7n2KEr2v3p"
    "7IpWD45zfT0dErLy2wFx0eKBRwdAI9CrOUXBeWV2z68rbctclxhmuoRneyK/mwK44pt7tLgzqSstIg3ZnEarrnrJ"
    "5V0rpfP5vKHVwNA6Yc0A0sdam91lbwda0Xl+ibBwkbxfLHng6QzAGoV0gKbX6/4HKwmnXF7rbq7JRw/0n4FurSyU"
    "CAfLvx4T3zPQzfPVsQ98i9TmP6QVDSSrPNx6/WcYpO9RRgHt8xx0I+Zr3L4ibN+GpFTM232FehxBPDHAFIKibnn8"
    "7uNJbxHNMR9gyNgMavonGbyjqHjhg7o5rvvE4YUbVmJgl5V/W8JRhVcs1SSV0JuHsucN+N+NpAXngMjigY2oEH03"
    "irGQTPwyWFXJouxPH/qKnW+AM8kJMMNa5KoO1aJDZ/NfezjdriUl+WI7/upGDjeQjlAUOrqp7JhzTl/6acDcm7ip"
    "CpWB4Km4At/JufvGWrJ0heubhMJsT7konSTA4OonqzlVGeEoRqOc5KZUCNpGtThqoa+QxisxgztbJbMxxzr9P8Hw"
    "aNI6OOh3MYId/Yk0YjrZzic/bUjBImlrFDQ5F4hEvqTWs6CMNSoEJg5nyD197Rvaf0dRvgIdKInwAoJkhPMoeHEX"
    "Yzv9jOgaM6V9F396wA3MvhHvE5qOjsUShMgMvx03iKZxU9gi028B1gJnA4xCwX5iQF4LiKtQQ1J9YnCgYIehyz2c"
    "GA9yciA9b7LmaIDIFQRQiZmr/R7VlCLE+hgIsr0xnf4DKQKYmqHf9P4wUjJdwjkC5hM0xuZSjVJcGEgEYpIflVab"
    "ODzI9ZPydoDkpm39VaR6yAw31ALs8ujD5kIzOFY3kt0tpzRtSGEDJpgS1kiqvkG+Nj8SeeWOwW9c3oP/obHHe8GS"
    "In+P5TU0DfFJIWqdx6/vySIvq94p9X1MSJ+H8Z+nrhXu1uXtmk99W7QUKACmLOPO7TYHrESiBuQIhzXma3mSsMCM"
    "dRFRzjboM+oXYF21vBvQaK6Dc/5UnbxtmeDY8T/lkcXGXuNJbUkOLaI+sWUvTanZBH2COAMosZmgY7bqqN30Xw6I"
    "ixElFmzG4Y/bWcLdDmus5VE1mlEjKPwtugnjiCg2IjuwEmbRLGJ/cGxsj9XQeAcDKDfMLfCr+/YTNC8kjFscSADc"
    "PKXmx6vWvqdEtXRC0dez1Eo+a61FSWsXeiOJ+zkNgh5THKHH1EAcwC/UnVmgBSaPc/6VWnaYT27c8/CKtR4ie2ec"
    "9lnREkriAMrPCWRQU5yc79TPeEwaYPXprlZ34p2nfq/R/8bMfG75BBUPz+t/1sx7vseGjIFvn78RL+Ukal6y3jk2"
    "4bnhzjgPy//Jb6pf8r5n0jez69uc8BO2s6Gifv3r7xqQ3fZZV68TUIe8yAeZOpnsQuenzuCQdiWuUPQvn/LQqMte"
    "ymRvMlX2o+lsHtfI+KCB91UcZCWM2OTnwLP2ykgIVyBnil+GwwGcj61g+1RNxdyl87yz4iQL2YcqeWgZstPAnICy"
    "4WCT+G/AlVhcxuyq2ysodqLKlKHgR3x/HZIV0c1XrX+Qk5LDGJbSZp8Y+sz7wCOQpacFaJ/nzfQAzpaCpHSEqdnT"
    "407zyPrN2yVfLUKeRnfKFvTjnw=="
)

#: HS-FP9 S2/C2 [impl: nginx-rtmp 1.2.2]: S0+S1+S2 that nginx-rtmp answered to OUR_C0C1:
#: S1 announces 13.14.10.13 with a scheme-0 server digest, S2 is signed from our C1 digest.
NGINX_S0S1S2 = _b64(
    "AwARcbcNDgoNtkYvOFDFdz4IUX0DOYzpkoanSLKEr5f8appLZ/YlRqxrdeS7Olz5Qq12ReYCLnmI1sE6WnDSVtts"
    "oUJixogPMf3z7TdP5nr9Xb/jX+5c6MQdIh6O9HRpYBWrw9s00gwxxflpFeDjEj2i9ZyQUoRUb6dy/ZvmZvz7Er/W"
    "RpHjd1bc4Gu8w335ZnOW9sUaSzTBvTJdpJhZn6oYdvCpWWj/NUhr8gzo63JbgWggnLNVXXGHuhUfE7TKKyq61IMi"
    "1LlrP6t3J5bpgxhRo7QF+BF2f8yLn98/aQtqI9/tRrOmsfJRKBroEZ0AYkC0ZznF3biRaFdxqMB8EuRb/yoPptsB"
    "9wMb3xS433b5k94yWbvq6iRCW8wC197mM90QQoPrQ3vuX1oCFzp5EM1XQiYSLRE2b2wCcUTgWHe+aLlBVPy8QlsX"
    "RXNRvoMeFcZFJ/NWXmLCYNMGQSt9/5Q2QOgz/SqOFG8BZS2Fg0K3lIH6P/tFxT57e1prZvjcPjtF6Nxlx7kC4ikb"
    "12jnumuPbIlXDGp/gFLpH7dRUlL6bSGgsn5aZ9x5SsAcb+6H/lsQVWd71OfNvQaED1jWCcX3qnh1BN9SfikSmpgA"
    "IZZbMevDrMCqeX2x/YwJ1JbPy0BHQUQmk8JQpVzopX1/Aa9qxFsqbtWoH9I0KabK+HIKP7NPZUYRtetunpDrHZGa"
    "h1X2ssTLWuOdjgxEWQS2Y0NpsqmvxF6aMvwqHRm8uKERrlPVea25FjvFWpTKEPgNeaq2KG4VwqAR7b4rqXbMuiQf"
    "kJ3MSbMHDg6c2B6U5pg+nMCtsYNNw3AL7hmButOl2WNCpaz2rLsESJMi3Hm6GxZ7yMf+FYpuIXiHojJaSAu+irBq"
    "gF0lhKW5p4IyYZ1I3GUQ2nqaSJsTzz5FKoZR6BABUpFeeBUEMbyGYx4jrPqIvNUCVh2eae3crxdiAP9yAVEDYMkZ"
    "ZPrV6l7zDQrulcbDlxzgNYbNETXkczXj5jY16Zb+Avr52ORXy/FhuYYnfB5DXVPJKmX+D9gz8r5qJ6gAJqr7H4Lf"
    "dk7R1wdX/oR1QeHJCwsuCRoGPQ3FpzRtp1oXonmagu/oU8bvqsRzIAZU6RFgFxp6HVeH4v68T6YWZ0iQAcp/6R1G"
    "2MgKTOgQoNEhAOg8ewWTAuiSvjc41Z6AZZ9L5IhoKmEwNa0YRU3pZ07Ro8nXNsu/yIr2AF+VgcQ0zKi9NNMeZQjL"
    "fU0YZ7RmOFcvD477zlaFxVfkWtiojqRQS9gjaT0rNLt5TSIts1qF42oT3jhpY/3AR1eY7+Y8PzEVY5tSjs8NBxwv"
    "NdCKurP0zZEsNvQq9zuBjypnzGmZ4cw0M1sDQWIgcJfw+lGj7h40G1UoRUxjxtuNLqf2x4jD+7we/v2AHm0YDmhp"
    "sVaI5XHdDbYpcH0E/aus9HI0t23w1WvtVYpbbZjD10oZXy+LPD1BZa2+aatpFZ/bSlZIOiu0KIA+g+7WRsUgXyRQ"
    "6mCNLMU66i7lVESEL47aeMgFLPCGanN0QLk5YRldsQO9Pi+CeBqwXm704p2CvRVLwkE7SKuvvOxo9U2BUv6FDzy0"
    "kbTOQhI8NvXaubLvBHQxP73c7nnIV28V2METXdFPEmIE4KQWHdsL95S95pgyF9fv9MZovB3X0vWZ5VNqNWXMOUVx"
    "T2JMW1ngGEB4SldPOUsVoggyedooEr97fPTgSS0lun2IBtjh5vAhXjt5rXTEwxbM9ZCmHaJmmB9aeGiIniIFJijd"
    "Bw7NKWwIohl9ZtyTM9Ij2e/GP4jlmgBNIp5vJ8SXBMyl0fUR2pcqV/0H6jDZDgrI1ElQueNRBgXvdSy0DDCAsQJ1"
    "wtwM7DMJ8x06zCtElf+N5bhxNr52JjOj2j/TWvDVz7Kx25/k5JICHl8tYvQt8NnlYRCk1zbXehAXTmoHIzm61RRZ"
    "ufjruxdK6Xk+FmkY+8oon6JedxxujmrYlY4RT2MlqBwdlNg03sGuHdcXNdLiXXKEu+mgKXcLAQyZElz8NwQYVJjw"
    "iXexN5SITslbMCbNtOG2VQotYAs5+R2V9VSaDagy/jGpr2g9OLcGk+csYJwNFvEXQ1EifEo/Ej+TrEw83kptiPrW"
    "xTKNzMV0+CUQBjsBHX5SQPqcfwzbE7goT5dyvB9skuSeH7BjlKmIpK/DpsxB+Aw8lYxIcJ8BmO6YC6q3dz2bFlxM"
    "efD1ApWkxTtwBzN9Q8gJizmojNGWJNxA21R9d2raw+PKuOVfXKuazLLOSfWWUoDP+g2hkDF90Q3RToQ7KEcf8/8E"
    "Uluv7Sdhu3FWUcPXIb7kwk4VPx8iEW6mTJbta4nscNxHH8lvgYTg19WjrvZhkriwqPjPygk9cVXUXsFdSzE5klAC"
    "AdGG4alchVdS5uoLlpIDZlwMo81hdywi1XdTDgmkEQt1l+we83F2RlhgUe7yVFROYPgcwW9I5ES/N1PI22TTUfvA"
    "b+8x5TWJRYZ4N9rMhjrEovs06t94qRfLcfIvRUMrBbMaNphPwN7VOBWvBJvpyT3k/SfEddDbQULNcIcRm4zEtcJc"
    "BII62bpQiL/rcYgpVoVQGvoh9Ttjwqzq00d2l/049AG7Ltt1fmM0atW8kytB40U8BDp3Z/wjUdBrx2doAFtpu4pE"
    "MAioZXJ9IQWoY+ntn+0nFlUjOqbzpW5bDW62dilAu1lJY7674ODBiEOqdeKXnPjsvzKTs9cBDuRvxFuYBRbxTnmw"
    "CVmQyuHTdFa1DPKt+LHgi2S3jHKc+zf3kzwNhYqGNZPfxV7AmNIWTd4I+te52mIeku+QLurHJX4DMgONuDghl/1/"
    "V5VRbeIwddwHLrdpTElY3XdDpJzBqM7ENYb8Vh351XSOJ+FwV1ZMXoQDx9FMIK7DY1JfJPot6DCz5IbQ3VxEa4Ml"
    "29p7JzgAK//Rdx9/O4LRmqbMyI78e3KCTE/ekLphtpU7Mb1zMehzAl+SgZoVUzW7H/1KG3i8ncQMfFXG3QtcGTwZ"
    "jG4B/3BgkvL7p0UwYmQtrH+laRxqdZi/O3bKl48GsBt0sRvlEq3XDVQcPbaAamP/D8wbeUG0OHwqAhS5CcTUfXbv"
    "YoicOZXwVdKn1TwK1EvW8MUXpP2TzgCnhwlsW4biS+lq5yL/2HjRf00NiSJYXxIddrYbCYQbsQskHWaq/7GTaZm2"
    "aHEuOfB7RnmdntivvE5l11fp8gj0FiVbwCQMVI2lCvUWOC4Gs3R/URNXAM+lZqb9T5gFRK4rn25Pq8LdUczSZwQB"
    "brh17QmIRQlX6m/957+V7QNDGKKyZ010RJ5BFwZFGHT9jWEGFqYQbZF/a3g+AGVBRH3j9uUxainPq0DV8VhJ7uar"
    "9fxRBWnihNRbw9XABBk+6A8jGXlM6CWNvhblBwTLsvnHBP4x5oMFQUbaAkrzQDICY0t8rzShPPK3Ivm77ay1tbCz"
    "5pY269h8xtrHuRr5vH1FOCx52WlrkItkS3gQAC3AtBNX6v8vZ8UJLn4jJzqgbHLM5Us1UNvAtSc5xSdmhtt63cZ5"
    "DC0+FVu8OIL32O9ppNS12iWQmtq305/fOiW6tAKALQ6tayMIJ1uLHjN6iNhOPbJzzUxNhSDtZFoSHg4VnzsjTKZH"
    "Vc2i4OzWWnSuqLFgHH6saQPMVmcmaYY0fiVvoXEV6Mbji6bPYQBDD6n0b8VyGy526IXdDu5jQ2yIsg36yPbAq4Fn"
    "euJnvfEQsWDVI3sEmWOJd3J32rXjY2fwXS/mHdpnhFRJ7BE6/MKa0uYW1n95X/br1tGguTQIqZE3kK4S9zNmQR94"
    "exs6Fu0gLMOgpSKWkfhnMbGbOVsscevbg+IO6SMtYZ9InLU2vOH5XIYc8xcUWknG9oIhIvMM/XbuC2ASOMGxgV1m"
    "txpHsHbNzGnl4cQup7qwyNyk1NoawuV61B48hZ+Z61azMgYqANOT5bRXE1sRwyPuZ/fIgrmt/I7LOBNq0v/AhTHH"
    "rzGaQxZOmimprO3MmlTDYtZ8D9MK2wseRd0dBmNOzRKAZ1WWtfDAXpytKjYB7ZjYaaerdIK2ksiUr873/ZsJfQJf"
    "FLdP1BX/AVKMW7Yu1GR5ePw/CTxs2zMnEFi6otezz97rY0n2tg=="
)
