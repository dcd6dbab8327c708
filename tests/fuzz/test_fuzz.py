"""Hypothesis runs of the fuzz targets (RTMP 5.2, 5.3, 7.1, AMF0, AMF3).

Each target gets two strategies: arbitrary bytes, and *valid* input (built with our own
encoders) with a few mutations (byte flips, cuts, insertions), which reaches far deeper
into the parsers than random bytes do.  Example counts follow the hypothesis profile:
``ci`` (200, under CI=true), ``dev`` (100) or ``--hypothesis-profile=long`` (20,000).
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Any, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtmp import amf0, amf3, commands
from rtmp.chunk import ChunkDecoder, ChunkEncoder
from rtmp.handshake import ClientHandshake, ServerHandshake
from rtmp.message import Message, MessageType
from tests.fuzz import (
    fuzz_amf0,
    fuzz_amf3,
    fuzz_chunk,
    fuzz_commands,
    fuzz_ertmp,
    fuzz_handshake,
    fuzz_session,
)

logger = logging.getLogger(__name__)


def _ertmp_seeds() -> List[bytes]:
    from tests.fuzz.seeds import SEEDS

    return SEEDS["ertmp"]()

#: --hypothesis-profile=long (20,000 examples) runs for many minutes per test.
_LONG_RUN = settings.default is not None and settings.default.max_examples > 1000
pytestmark = pytest.mark.timeout(7200 if _LONG_RUN else 300)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """Valid bytes from ``base`` with 0-4 mutations: flip, cut, insert, duplicate."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        at = draw(st.integers(0, max(0, len(data))))
        if op == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "dup" and data:
            data[at:at] = data[at:at + draw(st.integers(1, 64))]
    return bytes(data)


# -- AMF values --------------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**31), 2**31)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.datetimes(timezones=st.just(datetime.timezone.utc),
                   min_value=datetime.datetime(1970, 1, 1), max_value=datetime.datetime(2100, 1, 1))
)
amf_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(min_size=1, max_size=10), inner, max_size=5),
    max_leaves=20,
)


def _amf0_bytes(values: List[Any]) -> bytes:
    return amf0.encode_all(values)


def _amf3_bytes(values: List[Any]) -> bytes:
    return amf3.encode_all(values)


# -- chunk streams -----------------------------------------------------------------------------

_message_types = st.sampled_from([MessageType.AUDIO, MessageType.VIDEO, MessageType.COMMAND_AMF0,
                                  MessageType.DATA_AMF0, MessageType.USER_CONTROL])


@st.composite
def messages(draw: st.DrawFn) -> Message:
    return Message(
        type=draw(_message_types),
        data=draw(st.binary(max_size=600)),
        timestamp=draw(st.integers(0, 0xFFFFFFFF)),
        message_stream_id=draw(st.integers(0, 3)),
        chunk_stream_id=draw(st.sampled_from([None, 3, 4, 5, 63, 64, 319, 320, 65599])),
    )


@st.composite
def chunk_streams(draw: st.DrawFn) -> bytes:
    encoder = ChunkEncoder(draw(st.sampled_from([1, 7, 128, 4096])))
    return b"".join(encoder.encode(m) for m in draw(st.lists(messages(), max_size=8)))


control_byte = st.integers(0, 255).map(lambda b: bytes([b]))


class TestChunkDecoderFuzz:
    """RTMP 5.3: arbitrary and mutated chunk streams: ProtocolError or messages, nothing else."""

    @pytest.mark.spec("RTMP 5.3.1")
    @given(control_byte, st.binary(max_size=2048))
    def test_arbitrary_bytes(self, control: bytes, data: bytes) -> None:
        fuzz_chunk.fuzz_one(control + data)

    @pytest.mark.spec("RTMP 5.3.1.2")
    @given(control_byte, mutated(chunk_streams()))
    def test_mutated_streams(self, control: bytes, data: bytes) -> None:
        fuzz_chunk.fuzz_one(control + data)

    @pytest.mark.spec("RTMP 5.3.1.2")
    @given(st.lists(messages(), max_size=8), st.sampled_from([1, 7, 128, 4096]),
           st.integers(0, 255))
    def test_valid_streams_decode_exactly_at_any_cut(
        self, sent: List[Message], chunk_size: int, seed: int
    ) -> None:
        from tests.fuzz._common import split_points

        encoder = ChunkEncoder(chunk_size)
        data = b"".join(encoder.encode(m) for m in sent)
        decoder = ChunkDecoder(chunk_size)
        got: List[Message] = []
        for piece in split_points(data, seed):
            decoder.receive_data(piece)
            got.extend(decoder.messages())
        assert [(m.type, m.data, m.timestamp, m.message_stream_id) for m in got] == [
            (m.type, m.data, m.timestamp, m.message_stream_id) for m in sent]


_control_messages = st.builds(
    lambda type_id, data, csid: Message(type=MessageType(type_id), data=data, chunk_stream_id=csid),
    st.sampled_from([1, 2, 3, 4, 5, 6]),
    st.binary(max_size=12) | st.integers(0, 0xFFFFFFFF).map(lambda v: v.to_bytes(4, "big")),
    st.sampled_from([2, 3]),
)


@st.composite
def control_streams(draw: st.DrawFn) -> bytes:
    encoder = ChunkEncoder(128)
    items = draw(st.lists(_control_messages | messages(), max_size=10))
    return b"".join(encoder.encode(m) for m in items)


class TestSessionFuzz:
    """RTMP 5.4 / 6.2: protocol control from a peer: ProtocolError or bounded replies."""

    @pytest.mark.spec("RTMP 5.4")
    @given(control_byte, mutated(control_streams()))
    def test_control_messages(self, control: bytes, data: bytes) -> None:
        fuzz_session.fuzz_one(control + data)


class TestHandshakeFuzz:
    """RTMP 5.2: what a peer sends during the handshake: HandshakeError or completion."""

    @pytest.mark.spec("RTMP 5.2.5")
    @given(control_byte, st.binary(max_size=4000))
    def test_arbitrary_bytes(self, control: bytes, data: bytes) -> None:
        fuzz_handshake.fuzz_one(control + data)

    @pytest.mark.spec("RTMP 5.2.2", "HS-FP9")
    @given(st.integers(0, 255), st.booleans(), st.data())
    def test_mutated_peer_blocks(self, control: int, digest: bool, data: st.DataObject) -> None:
        # A genuine peer's three blocks, then mutated: C0+C1+C2 from a client for our server
        # (control bit 7 set), S0+S1+S2 from a server for our client.
        client = ClientHandshake(digest=digest, now_ms=5, random=bytes)
        server = ServerHandshake(now_ms=7, random=bytes)
        c01 = client.data_to_send()
        server.receive_data(c01)
        s012 = server.data_to_send()
        client.receive_data(s012)
        c2 = client.data_to_send()
        peer_bytes = (c01 + c2) if control & 0x80 else s012
        payload = data.draw(mutated(st.just(peer_bytes + data.draw(st.binary(max_size=8)))))
        fuzz_handshake.fuzz_one(bytes([control]) + payload)


class TestAmfFuzz:
    """AMF0 / AMF3: DecodeError or values that encode again; deep and cyclic input included."""

    @pytest.mark.spec("AMF0 2")
    @given(st.binary(max_size=1024))
    def test_amf0_arbitrary(self, data: bytes) -> None:
        fuzz_amf0.fuzz_one(data)

    @pytest.mark.spec("AMF0 2")
    @given(mutated(st.lists(amf_values, max_size=4).map(_amf0_bytes)))
    def test_amf0_mutated(self, data: bytes) -> None:
        fuzz_amf0.fuzz_one(data)

    @pytest.mark.spec("AMF3 3")
    @given(st.binary(max_size=1024))
    def test_amf3_arbitrary(self, data: bytes) -> None:
        fuzz_amf3.fuzz_one(data)

    @pytest.mark.spec("AMF3 3")
    @given(mutated(st.lists(amf_values, max_size=4).map(_amf3_bytes)))
    def test_amf3_mutated(self, data: bytes) -> None:
        fuzz_amf3.fuzz_one(data)

    @pytest.mark.spec("AMF0 2.12", "AMF3 3.11")
    @pytest.mark.parametrize("depth", [100, 10_000])
    def test_deep_nesting_is_a_decode_error(self, depth: int) -> None:
        with pytest.raises(amf0.DecodeError):
            amf0.decode(b"\x0a\x00\x00\x00\x01" * depth + b"\x05")
        with pytest.raises(amf0.DecodeError):
            amf3.decode(b"\x09\x03\x01" * depth + b"\x01")

    @pytest.mark.spec("AMF3 2.2")
    def test_amf3_self_reference_is_a_cycle(self) -> None:
        value = amf3.decode(b"\x0a\x0b\x01\x09self\x0a\x00\x01")
        assert value["self"] is value


_command_names = st.sampled_from([
    "connect", "createStream", "publish", "play", "play2", "deleteStream", "closeStream",
    "receiveAudio", "receiveVideo", "seek", "pause", "releaseStream", "FCPublish",
    "FCUnpublish", "FCSubscribe", "_checkbw", "getStreamLength", "close", "_result", "x",
])
_finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def command_records(draw: st.DrawFn) -> bytes:
    items = []
    for _ in range(draw(st.integers(1, 6))):
        encoding = draw(st.sampled_from([0, 3]))
        name = draw(_command_names)
        args = draw(st.lists(amf_values | st.sampled_from(["live", "record", "append", "x"]),
                             max_size=4))
        msg = commands.encode_command(name, draw(_finite), draw(st.none() | amf_values), *args,
                                      object_encoding=encoding)
        items.append((0 if encoding == 0 else 1, draw(st.integers(0, 3)), msg.data))
        if draw(st.booleans()):  # some media or data after a command
            items.append((draw(st.integers(2, 7)), draw(st.integers(0, 3)),
                          draw(st.binary(max_size=64))))
    return fuzz_commands.encode_records(items)


class TestCommandDispatcherFuzz:
    """RTMP 7.2: the server's dispatcher under arbitrary commands: RTMPError or an answer."""

    @pytest.mark.spec("RTMP 7.2")
    @settings(deadline=None)
    @given(command_records())
    def test_structured_commands(self, data: bytes) -> None:
        fuzz_commands.fuzz_one(data)

    @pytest.mark.spec("RTMP 7.1.1")
    @settings(deadline=None)
    @given(mutated(command_records()))
    def test_mutated_commands(self, data: bytes) -> None:
        fuzz_commands.fuzz_one(data)



_ERTMP_SEEDS = _ertmp_seeds()


class TestErtmpFuzz:
    """ERTMP: DecodeError or a header that rebuilds to itself; the classifiers never raise."""

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio")
    @given(st.sampled_from([b"\x00", b"\x01"]), st.sampled_from([b"\x80", b"\x90", b"\x96", b"\x97", b"\x95", b"\xd4"]),
           st.binary(max_size=300))
    def test_arbitrary_headers(self, medium: bytes, first: bytes, rest: bytes) -> None:
        fuzz_ertmp.fuzz_one(medium + first + rest)

    @pytest.mark.spec("ERTMP Enhanced Video", "ERTMP Enhanced Audio",
                      "ERTMP Multitrack Streaming via Enhanced RTMP")
    @given(mutated(st.sampled_from(_ERTMP_SEEDS)))
    def test_mutated_messages(self, data: bytes) -> None:
        fuzz_ertmp.fuzz_one(data)


@pytest.mark.spec("RTMP 5.3.1", "RTMP 5.2.5", "RTMP 7.2")
def test_seed_corpora_replay(tmp_path: Path) -> None:
    """The atheris seed corpora are written and every seed passes its own target."""
    from tests.fuzz import seeds

    assert seeds.write(tmp_path) >= 20
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(seeds.TARGETS)
