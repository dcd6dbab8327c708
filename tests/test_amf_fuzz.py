"""AMF0/AMF3 decoders under random and mutated input: only DecodeError escapes, fast, bounded.

The promise checked here (AMF0 2, AMF3 3, and the hardening notes of the spec
files): whatever the bytes, ``decode``/``decode_all``/``decode_payload`` return
or raise ``rtmp.amf0.DecodeError`` (``rtmp.amf3.DecodeError`` is a subclass);
they never hang, never hit the recursion limit and never allocate more than a
small multiple of the input.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any, Callable, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtmp import amf0, amf3
from rtmp.amf import decode_payload

#: Upper bound of what decoding may allocate: a decoded empty dict or list costs
#: ~60-100 bytes for 2-3 input bytes, so 200x plus a constant is generous but
#: still catches any allocation driven by a count field (those ask for gigabytes).
ALLOWANCE_PER_BYTE = 200
ALLOWANCE_CONSTANT = 256 * 1024


def seeds() -> List[bytes]:
    """Valid encodings touching every marker of both formats, to mutate."""
    import datetime as dt

    when = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    shared = {"k": "v"}
    amf3_value = [
        None, amf3.UNDEFINED, True, False, 1, -5, 2**40, 1.5, "s", "s", "", when, when,
        amf3.XMLDocument("<a/>"), amf3.XML("<b/>"), b"\x00\x01", amf3.ECMAArray({0: 1, "x": 2}),
        shared, shared, amf0.TypedObject("T", a=1), amf3.ArrayCollection([1]), amf3.ObjectProxy(a=1),
        amf3.VectorInt([1, -1]), amf3.VectorUInt([2]), amf3.VectorDouble([0.5]),
        amf3.VectorObject([shared], "T"), amf3.Dictionary({"d": 1}),
    ]
    amf0_value = [
        1.0, True, "connect", {"app": "live"}, None, amf0.UNDEFINED, shared, shared,
        amf0.ECMAArray(duration=0.0), [1.0, 2.0], when, "x" * 70000, amf0.UNSUPPORTED,
        amf0.XMLDocument("<a/>"), amf0.TypedObject("T", b=2.0), amf0.AVMPlus({"z": [1]}),
    ]
    return [amf0.encode(amf0_value), amf3.encode(amf3_value)]


SEEDS = seeds()
DECODERS: List[Callable[[bytes], Any]] = [
    amf0.decode_all,
    amf3.decode_all,
    lambda data: amf0.decode(data, strict=True),
    lambda data: decode_payload(data, 17),
    lambda data: decode_payload(data, 20),
]


def check(data: bytes) -> None:
    """Every decoder returns or raises DecodeError, quickly."""
    for decode in DECODERS:
        start = time.perf_counter()
        try:
            decode(data)
        except amf0.DecodeError:
            pass
        assert time.perf_counter() - start < 2.0


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed with a few bytes flipped, inserted, deleted or overwritten with extremes."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "insert", "delete", "max", "truncate"]))
        if action == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete" and len(data) > 1:
            del data[position]
        elif action == "max":
            data[position : position + 4] = b"\xff\xff\xff\xff"
        elif action == "truncate":
            del data[max(1, position) :]
    return bytes(data)


class TestFuzz:
    @pytest.mark.spec("AMF0 2.1", "AMF3 3.1")
    @given(st.binary(max_size=200))
    def test_random_bytes(self, data: bytes) -> None:
        check(data)

    @pytest.mark.spec("AMF0 2.1", "AMF3 3.1")
    @given(st.lists(st.sampled_from(range(0x13)), max_size=60).map(bytes))
    def test_random_marker_soup(self, data: bytes) -> None:
        # Bytes drawn from the marker range reach deep into the parsers more often.
        check(data)

    @pytest.mark.spec("AMF0 2.1", "AMF3 3.1")
    @settings(suppress_health_check=[HealthCheck.too_slow])
    @given(mutated())
    def test_mutated_valid_encodings(self, data: bytes) -> None:
        check(data)

    @pytest.mark.spec("AMF0 2.1", "AMF3 3.1")
    @given(st.sampled_from(SEEDS), st.data())
    def test_every_truncation_is_a_decode_error(self, seed: bytes, data: st.DataObject) -> None:
        cut = data.draw(st.integers(0, len(seed) - 1))
        with pytest.raises(amf0.DecodeError):
            (amf0.decode if seed is SEEDS[0] else amf3.decode)(seed[:cut])

    def test_seeds_are_valid(self) -> None:
        assert len(amf0.decode(SEEDS[0])) == 16
        assert len(amf3.decode(SEEDS[1])) == 27


# Inputs whose count or length fields ask for far more than the input holds.
HOSTILE = [
    bytes.fromhex("0A FFFFFFFF 05"),  # AMF0 2.12 strict array of 2**32-1
    bytes.fromhex("08 FFFFFFFF 0001 61 05"),  # AMF0 2.10 ECMA count (a hint only)
    bytes.fromhex("0C FFFFFFFF 00"),  # AMF0 2.14 long string
    bytes.fromhex("0F FFFFFFFF 00"),  # AMF0 2.17 XML document
    bytes.fromhex("11 09 FFFFFFFF 01"),  # AMF3 3.11 array via AVM+
    bytes.fromhex("11 0D FFFFFFFF 00 00"),  # AMF3 3.15 vector int
    bytes.fromhex("11 0F FFFFFFFF 00 00"),  # AMF3 3.15 vector double
    bytes.fromhex("11 10 FFFFFFFF 00 01"),  # AMF3 3.15 vector object
    bytes.fromhex("11 11 FFFFFFFF 00 01"),  # AMF3 3.16 dictionary
    bytes.fromhex("11 0A FFFFFFF3 01"),  # AMF3 3.12 sealed member count
    bytes.fromhex("11 0C FFFFFFFF 00"),  # AMF3 3.14 ByteArray length
    bytes.fromhex("11 06 FFFFFFFF 00"),  # AMF3 1.3.2 string length
    b"\x0a\x00\x00\xff\xff" + b"\x0a\x00\x00\xff\xff" * 1000,  # nested huge arrays
    b"\x11" + b"\x09\x03\x01" * 10_000,  # AMF3 nesting
    b"\x03\x00\x01a" * 10_000,  # AMF0 nesting
]


class TestResourceBounds:
    @pytest.mark.spec("AMF0 2.12", "AMF3 3.11", "AMF3 3.15", "AMF3 3.16")
    @pytest.mark.parametrize("data", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
    def test_hostile_counts_fail_fast_without_allocating(self, data: bytes) -> None:
        tracemalloc.start()
        try:
            start = time.perf_counter()
            with pytest.raises(amf0.DecodeError):
                amf0.decode(data, strict=True)
            elapsed = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert elapsed < 1.0
        assert peak < ALLOWANCE_PER_BYTE * len(data) + ALLOWANCE_CONSTANT

    @pytest.mark.spec("AMF0 2.1", "AMF3 3.1")
    @settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated())
    def test_mutated_inputs_allocate_a_bounded_amount(self, data: bytes) -> None:
        tracemalloc.start()
        try:
            for decode in (amf0.decode_all, amf3.decode_all):
                try:
                    decode(data)
                except amf0.DecodeError:
                    pass
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < ALLOWANCE_PER_BYTE * len(data) + ALLOWANCE_CONSTANT

    @pytest.mark.spec("AMF0 2.9", "AMF3 2.2")
    def test_reference_fanout_shares_objects(self) -> None:
        # 20,000 references to one object: a list of pointers, not 20,000 copies.
        wire = bytes.fromhex("0A 00004E21") + b"\x03\x00\x01a\x05\x00\x00\x09" + b"\x07\x00\x01" * 20_000
        tracemalloc.start()
        try:
            value = amf0.decode(wire)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert value[0] is value[-1]
        assert peak < ALLOWANCE_PER_BYTE * len(wire) + ALLOWANCE_CONSTANT
