"""AMF0: byte-exact vectors for every marker, references, limits and the incremental API."""

from __future__ import annotations

import datetime as dt
import struct

import pytest

from rtmp import RTMPError, amf0, amf3
from rtmp.amf0 import (
    UNDEFINED,
    UNSUPPORTED,
    AVMPlus,
    DecodeError,
    Decoder,
    ECMAArray,
    EncodeError,
    Encoder,
    TypedObject,
    XMLDocument,
)

UTC = dt.timezone.utc

# Worked byte examples of AMF0, labelled with their clause (refs/clauses.md).
NULL = bytes.fromhex("05")  # AMF0 2.7
TRUE = bytes.fromhex("0101")  # AMF0 2.3
FALSE = bytes.fromhex("0100")  # AMF0 2.3
NUMBER_1 = bytes.fromhex("00 3FF0000000000000")  # AMF0 2.2: 1.0
STRING_CONNECT = bytes.fromhex("02 0007 636F6E6E656374")  # AMF0 2.4: "connect"
EMPTY_OBJECT = bytes.fromhex("03 000009")  # AMF0 2.5 / 2.11
OBJECT_A_1 = bytes.fromhex("03 0001 61 00 3FF0000000000000 000009")  # AMF0 2.5: {a: 1}
# AMF0 2.10: ECMA array {duration: 0}, count 1
ECMA_DURATION = bytes.fromhex("08 00000001 0008 6475726174696F6E 00 0000000000000000 000009")
STRICT_ARRAY_1 = bytes.fromhex("0A 00000001 00 3FF0000000000000")  # AMF0 2.12: [1]
DATE_EPOCH = bytes.fromhex("0B 0000000000000000 0000")  # AMF0 2.13: 0 ms, time-zone 0


def roundtrip(value: object, wire: bytes) -> None:
    assert amf0.encode(value) == wire
    assert amf0.decode(wire) == value


class TestNumber:
    @pytest.mark.spec("AMF0 2.2")
    def test_one(self) -> None:
        roundtrip(1.0, NUMBER_1)

    @pytest.mark.spec("AMF0 2.2")
    def test_int_is_written_as_double_and_read_as_float(self) -> None:
        assert amf0.encode(1) == NUMBER_1
        value = amf0.decode(NUMBER_1)
        assert value == 1 and type(value) is float

    @pytest.mark.spec("AMF0 2.2")
    def test_negative_and_special(self) -> None:
        assert amf0.encode(-2.5) == b"\x00" + struct.pack(">d", -2.5)
        assert amf0.decode(b"\x00" + struct.pack(">d", float("inf"))) == float("inf")
        assert amf0.encode(2**53) == b"\x00" + struct.pack(">d", 2.0**53)

    @pytest.mark.spec("AMF0 2.2")
    def test_int_too_large_for_a_double(self) -> None:
        with pytest.raises(EncodeError, match="double"):
            amf0.encode(10**400)

    @pytest.mark.spec("AMF0 2.2")
    def test_truncated(self) -> None:
        with pytest.raises(DecodeError, match="offset 0: truncated"):
            amf0.decode(NUMBER_1[:5])


class TestBoolean:
    @pytest.mark.spec("AMF0 2.3")
    def test_true_false(self) -> None:
        roundtrip(True, TRUE)
        roundtrip(False, FALSE)

    @pytest.mark.spec("AMF0 2.3")
    def test_any_nonzero_byte_is_true(self) -> None:
        assert amf0.decode(b"\x01\x7f") is True

    @pytest.mark.spec("AMF0 2.3")
    def test_truncated(self) -> None:
        with pytest.raises(DecodeError, match="boolean"):
            amf0.decode(b"\x01")


class TestString:
    @pytest.mark.spec("AMF0 2.4")
    def test_connect(self) -> None:
        roundtrip("connect", STRING_CONNECT)

    @pytest.mark.spec("AMF0 2.4", "AMF0 1.3.1")
    def test_length_is_in_utf8_bytes(self) -> None:
        roundtrip("é€", bytes.fromhex("02 0005 C3A9 E282AC"))

    @pytest.mark.spec("AMF0 2.4")
    def test_empty(self) -> None:
        roundtrip("", b"\x02\x00\x00")

    @pytest.mark.spec("AMF0 2.4", "AMF0 2.14")
    def test_65535_bytes_is_the_largest_short_string(self) -> None:
        wire = amf0.encode("x" * 0xFFFF)
        assert wire[:3] == b"\x02\xff\xff"
        assert amf0.encode("x" * 0x10000)[:5] == b"\x0c\x00\x01\x00\x00"

    @pytest.mark.spec("AMF0 2.4")
    def test_declared_length_beyond_input(self) -> None:
        with pytest.raises(DecodeError, match="offset 1: string of 16 bytes runs past"):
            amf0.decode(b"\x02\x00\x10abc")

    @pytest.mark.spec("AMF0 1.3.1")
    def test_invalid_utf8(self) -> None:
        with pytest.raises(DecodeError, match="UTF-8"):
            amf0.decode(b"\x02\x00\x02\xff\xfe")


class TestObject:
    @pytest.mark.spec("AMF0 2.5", "AMF0 2.11")
    def test_empty(self) -> None:
        roundtrip({}, EMPTY_OBJECT)

    @pytest.mark.spec("AMF0 2.5")
    def test_a_1(self) -> None:
        roundtrip({"a": 1.0}, OBJECT_A_1)

    @pytest.mark.spec("AMF0 2.5")
    def test_order_is_kept(self) -> None:
        value = amf0.decode(amf0.encode({"b": 1, "a": 2, "c": None}))
        assert list(value) == ["b", "a", "c"]

    @pytest.mark.spec("AMF0 2.5", "AMF0 2.11")
    def test_missing_end_marker(self) -> None:
        with pytest.raises(DecodeError, match="truncated"):
            amf0.decode(OBJECT_A_1[:-3])

    @pytest.mark.spec("AMF0 2.11")
    def test_object_end_after_a_name(self) -> None:
        with pytest.raises(DecodeError, match="object-end marker after the non-empty name 'a'"):
            amf0.decode(bytes.fromhex("03 0001 61 09"))

    @pytest.mark.spec("AMF0 2.11")
    def test_object_end_alone_is_not_a_value(self) -> None:
        with pytest.raises(DecodeError, match="0x09"):
            amf0.decode(b"\x09")

    @pytest.mark.spec("AMF0 2.5")
    def test_non_str_key(self) -> None:
        with pytest.raises(EncodeError, match="not a str"):
            amf0.encode({1: 2})

    @pytest.mark.spec("AMF0 2.5")
    def test_nested(self) -> None:
        value = {"app": "live", "inner": {"list": [1.0, "x", None], "flag": True}}
        assert amf0.decode(amf0.encode(value)) == value


class TestReservedMarkers:
    @pytest.mark.spec("AMF0 2.6")
    def test_movieclip(self) -> None:
        with pytest.raises(DecodeError, match="offset 0: marker 0x04 .movieclip. is reserved"):
            amf0.decode(b"\x04")

    @pytest.mark.spec("AMF0 2.16")
    def test_recordset(self) -> None:
        with pytest.raises(DecodeError, match="0x0e .recordset. is reserved"):
            amf0.decode(b"\x0e")

    @pytest.mark.spec("AMF0 2.1")
    @pytest.mark.parametrize("marker", [0x12, 0x40, 0xFF])
    def test_unknown(self, marker: int) -> None:
        with pytest.raises(DecodeError, match=f"unknown AMF0 marker 0x{marker:02x}"):
            amf0.decode(bytes([marker]))


class TestNullUndefinedUnsupported:
    @pytest.mark.spec("AMF0 2.7")
    def test_null(self) -> None:
        roundtrip(None, NULL)

    @pytest.mark.spec("AMF0 2.8")
    def test_undefined(self) -> None:
        roundtrip(UNDEFINED, b"\x06")
        assert amf0.decode(b"\x06") is UNDEFINED is amf3.UNDEFINED
        assert amf0.Undefined() is UNDEFINED and not UNDEFINED

    @pytest.mark.spec("AMF0 2.15")
    def test_unsupported(self) -> None:
        roundtrip(UNSUPPORTED, b"\x0d")
        assert amf0.decode(b"\x0d") is UNSUPPORTED


class TestReference:
    @pytest.mark.spec("AMF0 2.9")
    def test_repeated_instance_is_a_reference(self) -> None:
        inner = {"a": 1.0}
        wire = amf0.encode([inner, inner])
        assert wire == bytes.fromhex("0A 00000002") + OBJECT_A_1 + bytes.fromhex("07 0001")
        first, second = amf0.decode(wire)
        assert first is second and first == inner

    @pytest.mark.spec("AMF0 2.9")
    def test_equal_but_distinct_objects_are_written_twice(self) -> None:
        wire = amf0.encode([{"a": 1.0}, {"a": 1.0}])
        assert wire.count(OBJECT_A_1) == 2

    @pytest.mark.spec("AMF0 2.9")
    def test_table_order_counts_every_complex_type(self) -> None:
        # Table: 0 outer list, 1 object, 2 ECMA array, 3 strict array, 4 typed object.
        typed = TypedObject("T")
        ecma = ECMAArray()
        inner: list = []
        value = [{}, ecma, inner, typed, typed, ecma, inner]
        wire = amf0.encode(value)
        assert wire.endswith(bytes.fromhex("07 0004 07 0002 07 0003"))
        decoded = amf0.decode(wire)
        assert decoded[3] is decoded[4] and decoded[1] is decoded[5] and decoded[2] is decoded[6]

    @pytest.mark.spec("AMF0 2.9")
    def test_strings_and_dates_are_not_referenced(self) -> None:
        when = dt.datetime(2020, 1, 1, tzinfo=UTC)
        text = "repeated"
        wire = amf0.encode([text, text, when, when])
        assert wire == bytes.fromhex("0A 00000004") + amf0.encode(text) * 2 + amf0.encode(when) * 2

    @pytest.mark.spec("AMF0 2.9")
    def test_cycle_is_written_with_a_reference(self) -> None:
        node: dict = {"name": "root"}
        node["self"] = node
        wire = amf0.encode(node)
        assert wire.endswith(bytes.fromhex("0004 73656C66 07 0000 000009"))
        decoded = amf0.decode(wire)
        assert decoded["self"] is decoded

    @pytest.mark.spec("AMF0 2.9")
    def test_cycle_without_references_is_an_encode_error(self) -> None:
        node: list = []
        node.append(node)
        with pytest.raises(EncodeError, match="cycle"):
            amf0.encode(node, use_references=False)

    @pytest.mark.spec("AMF0 2.9")
    def test_repeats_without_references_are_written_in_full(self) -> None:
        inner = {"a": 1.0}
        wire = amf0.encode([inner, inner], use_references=False)
        assert wire.count(OBJECT_A_1) == 2 and b"\x07\x00" not in wire

    @pytest.mark.spec("AMF0 2.9")
    def test_out_of_range(self) -> None:
        with pytest.raises(DecodeError, match="offset 1: reference 0 out of range: 0 objects"):
            amf0.decode(b"\x07\x00\x00")
        with pytest.raises(DecodeError, match="reference 1 out of range: 1 objects"):
            amf0.decode(bytes.fromhex("0A 00000001 07 0001"))

    @pytest.mark.spec("AMF0 2.9")
    def test_references_span_values_of_one_context(self) -> None:
        decoder = Decoder(EMPTY_OBJECT + b"\x07\x00\x00")
        first = decoder.read_value()
        assert decoder.read_value() is first


class TestECMAArray:
    @pytest.mark.spec("AMF0 2.10")
    def test_duration(self) -> None:
        roundtrip(ECMAArray(duration=0.0), ECMA_DURATION)
        assert type(amf0.decode(ECMA_DURATION)) is ECMAArray

    @pytest.mark.spec("AMF0 2.10")
    def test_count_is_only_a_hint(self) -> None:
        wire = bytearray(ECMA_DURATION)
        wire[1:5] = b"\xff\xff\xff\xff"
        assert amf0.decode(bytes(wire)) == {"duration": 0.0}

    @pytest.mark.spec("AMF0 2.10")
    def test_int_keys_are_written_as_decimal_strings(self) -> None:
        assert amf0.decode(amf0.encode(ECMAArray({0: "a", 1: "b"}))) == {"0": "a", "1": "b"}

    @pytest.mark.spec("AMF0 2.10 [impl: ffmpeg onMetaData without end marker]")
    def test_missing_end_marker_tolerated_at_end_of_input(self) -> None:
        assert amf0.decode(ECMA_DURATION[:-3]) == {"duration": 0.0}
        with pytest.raises(DecodeError):
            amf0.decode(ECMA_DURATION[:-3], strict=True)

    @pytest.mark.spec("AMF0 2.10")
    def test_missing_end_marker_with_too_few_entries(self) -> None:
        wire = bytearray(ECMA_DURATION[:-3])
        wire[4] = 2  # claims two entries, has one
        with pytest.raises(DecodeError, match="truncated"):
            amf0.decode(bytes(wire))


class TestStrictArray:
    @pytest.mark.spec("AMF0 2.12")
    def test_one(self) -> None:
        roundtrip([1.0], STRICT_ARRAY_1)

    @pytest.mark.spec("AMF0 2.12")
    def test_empty_and_tuple(self) -> None:
        roundtrip([], bytes.fromhex("0A 00000000"))
        assert amf0.encode((1.0,)) == STRICT_ARRAY_1

    @pytest.mark.spec("AMF0 2.12")
    def test_huge_count_fails_fast(self) -> None:
        with pytest.raises(DecodeError, match="strict array count 4294967295 exceeds the 0 bytes"):
            amf0.decode(bytes.fromhex("0A FFFFFFFF"))

    @pytest.mark.spec("AMF0 2.12")
    def test_count_beyond_values(self) -> None:
        with pytest.raises(DecodeError, match="truncated"):
            amf0.decode(bytes.fromhex("0A 00000003 05 05 00 3F"))


class TestDate:
    @pytest.mark.spec("AMF0 2.13")
    def test_epoch(self) -> None:
        roundtrip(dt.datetime(1970, 1, 1, tzinfo=UTC), DATE_EPOCH)

    @pytest.mark.spec("AMF0 2.13")
    def test_time_zone_field_is_written_zero_and_ignored_on_read(self) -> None:
        moment = dt.datetime(2021, 6, 1, 12, 30, 15, 250000, tzinfo=UTC)
        wire = amf0.encode(moment)
        assert wire == b"\x0b" + struct.pack(">d", 1622550615250.0) + b"\x00\x00"
        assert amf0.decode(wire[:-2] + b"\xff\x88") == moment  # time-zone -120 is not applied

    @pytest.mark.spec("AMF0 2.13")
    def test_other_time_zones_are_converted_to_utc(self) -> None:
        paris = dt.timezone(dt.timedelta(hours=2))
        moment = dt.datetime(2021, 6, 1, 14, 0, tzinfo=paris)
        decoded = amf0.decode(amf0.encode(moment))
        assert decoded == moment and decoded.tzinfo == UTC

    @pytest.mark.spec("AMF0 2.13")
    def test_naive_datetime_is_refused(self) -> None:
        with pytest.raises(EncodeError, match="naive"):
            amf0.encode(dt.datetime(2020, 1, 1))

    @pytest.mark.spec("AMF0 2.13")
    @pytest.mark.parametrize("ms", [float("nan"), float("inf"), 1e300])
    def test_unrepresentable_date(self, ms: float) -> None:
        with pytest.raises(DecodeError, match="offset 1: date"):
            amf0.decode(b"\x0b" + struct.pack(">d", ms) + b"\x00\x00")


class TestLongString:
    @pytest.mark.spec("AMF0 2.14")
    def test_long_string(self) -> None:
        text = "ab" * 40000
        wire = amf0.encode(text)
        assert wire[:5] == b"\x0c" + struct.pack(">I", 80000)
        assert amf0.decode(wire) == text

    @pytest.mark.spec("AMF0 2.14")
    def test_short_long_string_is_read(self) -> None:
        assert amf0.decode(bytes.fromhex("0C 00000002 6869")) == "hi"

    @pytest.mark.spec("AMF0 2.14")
    def test_declared_length_beyond_input(self) -> None:
        with pytest.raises(DecodeError, match="string of 4294967295 bytes runs past"):
            amf0.decode(bytes.fromhex("0C FFFFFFFF 6869"))


class TestXMLDocument:
    @pytest.mark.spec("AMF0 2.17")
    def test_xml_document(self) -> None:
        roundtrip(XMLDocument("<a/>"), bytes.fromhex("0F 00000004 3C612F3E"))
        assert type(amf0.decode(bytes.fromhex("0F 00000000"))) is XMLDocument

    @pytest.mark.spec("AMF0 2.17")
    def test_truncated(self) -> None:
        with pytest.raises(DecodeError, match="AMF0 2.17"):
            amf0.decode(bytes.fromhex("0F 00000009 3C612F3E"))


class Point:
    def __init__(self, x: float, y: float) -> None:
        self.x = x
        self.y = y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


class Frozen:
    __slots__ = ()


class TestTypedObject:
    @pytest.mark.spec("AMF0 2.18")
    def test_unregistered_class_decodes_to_typed_object(self) -> None:
        wire = bytes.fromhex("10 0003 466F6F 0001 61 00 3FF0000000000000 000009")
        roundtrip(TypedObject("Foo", a=1.0), wire)
        assert amf0.decode(wire).class_name == "Foo"
        assert TypedObject("Foo", a=1.0) != TypedObject("Bar", a=1.0)
        assert TypedObject("Foo", a=1.0) != {"a": 1.0}

    @pytest.mark.spec("AMF0 2.18")
    def test_registered_class(self) -> None:
        amf0.register_class(Point, "geo.Point")
        try:
            wire = amf0.encode(Point(1.0, 2.0))
            assert wire.startswith(bytes.fromhex("10 0009") + b"geo.Point")
            decoded = amf0.decode(wire)
            assert type(decoded) is Point and decoded == Point(1.0, 2.0)
            assert amf0.get_class_alias("geo.Point") is amf0.get_class_alias(Point)
        finally:
            amf0.unregister_class(Point)
        assert amf0.get_class_alias("geo.Point") is None
        assert amf0.decode(wire) == TypedObject("geo.Point", x=1.0, y=2.0)

    @pytest.mark.spec("AMF0 2.18")
    def test_class_that_cannot_take_the_members(self) -> None:
        amf0.register_class(Frozen, "Frozen")
        try:
            with pytest.raises(DecodeError, match="cannot set the members of a Frozen"):
                amf0.decode(bytes.fromhex("10 0006") + b"Frozen" + bytes.fromhex("0001 61 05 000009"))
        finally:
            amf0.unregister_class("Frozen")

    @pytest.mark.spec("AMF0 2.18")
    def test_unregistered_plain_class_is_refused(self) -> None:
        with pytest.raises(EncodeError, match="cannot encode a Point as AMF0"):
            amf0.encode(Point(1.0, 2.0))

    def test_registration_arguments(self) -> None:
        with pytest.raises(ValueError):
            amf0.register_class(Point, "")
        with pytest.raises(TypeError):
            amf0.register_class("Point", "x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="both"):
            amf0.register_class(Point, "x", reader=lambda d: None)


class TestAVMPlus:
    @pytest.mark.spec("AMF0 3.1")
    def test_switch_for_one_value(self) -> None:
        # 0x11 then AMF3 {a: 1}, then AMF0 continues with a number.
        wire = bytes.fromhex("11 0A0B0103610401 01") + NUMBER_1
        assert amf0.decode_all(wire) == [{"a": 1}, 1.0]

    @pytest.mark.spec("AMF0 3.1")
    def test_wrapper_writes_the_switch(self) -> None:
        assert amf0.encode(AVMPlus({"a": 1})) == bytes.fromhex("11 0A0B0103610401 01")
        assert repr(AVMPlus(1)) == "AVMPlus(1)" and AVMPlus(1) == AVMPlus(1)

    @pytest.mark.spec("AMF0 3.1")
    def test_amf3_only_values_switch_automatically(self) -> None:
        assert amf0.encode(b"\x01\x02") == bytes.fromhex("11 0C05 0102")
        assert amf0.encode(amf3.XML("<a/>")) == bytes.fromhex("11 0B09") + b"<a/>"
        assert amf0.decode(amf0.encode(amf3.ArrayCollection([1, 2]))) == [1, 2]

    @pytest.mark.spec("AMF0 3.1", "AMF3 2.2")
    def test_every_switch_has_fresh_amf3_tables(self) -> None:
        # The second switched value may not reference a string of the first.
        wire = bytes.fromhex("11 06 03 61 11 06 00")
        with pytest.raises(DecodeError, match="string reference 0 out of range"):
            amf0.decode_all(wire)
        assert amf0.encode_all([AVMPlus("a"), AVMPlus("a")]) == bytes.fromhex("11 060361 11 060361")

    @pytest.mark.spec("AMF0 3.1")
    def test_amf3_errors_are_amf0_decode_errors(self) -> None:
        with pytest.raises(amf0.DecodeError) as info:
            amf0.decode(b"\x11\x20")
        assert isinstance(info.value, amf3.DecodeError)


class TestLimitsAndErrors:
    @pytest.mark.spec("AMF0 2.12")
    def test_nesting_limit(self) -> None:
        wire = bytes.fromhex("0A 00000001") * 65 + b"\x05"
        with pytest.raises(DecodeError, match="nesting deeper than max_depth=64"):
            amf0.decode(wire)
        assert amf0.decode(bytes.fromhex("0A 00000001") * 64 + b"\x05") is not None

    @pytest.mark.spec("AMF0 2.5")
    def test_deep_input_never_reaches_the_recursion_limit(self) -> None:
        wire = b"\x03\x00\x01a" * 100_000
        with pytest.raises(DecodeError, match="max_depth"):
            amf0.decode(wire)
        with pytest.raises(DecodeError, match="max_depth=200"):
            amf0.decode(wire, max_depth=amf0.MAX_DEPTH_LIMIT)

    def test_max_depth_is_validated(self) -> None:
        with pytest.raises(ValueError):
            Decoder(b"", max_depth=0)
        with pytest.raises(ValueError):
            Encoder(max_depth=10_000)

    @pytest.mark.spec("AMF0 2.12")
    def test_encode_nesting_limit(self) -> None:
        value: list = []
        for _ in range(70):
            value = [value]
        with pytest.raises(EncodeError, match="max_depth"):
            amf0.encode(value)

    def test_errors_are_value_and_rtmp_errors(self) -> None:
        assert issubclass(DecodeError, ValueError) and issubclass(DecodeError, RTMPError)
        assert issubclass(EncodeError, ValueError) and issubclass(EncodeError, RTMPError)
        error = DecodeError("bad", 7)
        assert error.offset == 7 and str(error) == "offset 7: bad"

    @pytest.mark.spec("AMF0 2.1")
    def test_trailing_bytes(self) -> None:
        with pytest.raises(DecodeError, match="offset 1: 1 bytes left after the value"):
            amf0.decode(b"\x05\x05")

    @pytest.mark.spec("AMF0 2.1")
    def test_empty_input(self) -> None:
        with pytest.raises(DecodeError, match="offset 0: truncated input"):
            amf0.decode(b"")

    def test_unencodable_type(self) -> None:
        with pytest.raises(EncodeError, match="cannot encode a set"):
            amf0.encode({1, 2})


class TestIncremental:
    @pytest.mark.spec("AMF0 2.1")
    def test_decoder_reads_value_by_value(self) -> None:
        payload = STRING_CONNECT + NUMBER_1 + NULL
        decoder = Decoder(bytearray(payload))
        assert decoder.read_value() == "connect"
        assert decoder.offset == len(STRING_CONNECT)
        assert decoder.read_value() == 1.0
        assert decoder.remaining == 1 and not decoder.at_end()
        assert decoder.read_value() is None
        assert decoder.at_end()

    def test_decoder_starts_at_an_offset(self) -> None:
        assert Decoder(b"\xff" + NULL, 1).read_all() == [None]
        with pytest.raises(ValueError):
            Decoder(b"", 1)

    @pytest.mark.spec("AMF0 2.9")
    def test_encoder_keeps_one_context(self) -> None:
        encoder = Encoder()
        inner = {"a": 1.0}
        encoder.write_value(inner)
        encoder.write_value(inner)
        assert encoder.getvalue() == OBJECT_A_1 + b"\x07\x00\x00"

    @pytest.mark.spec("AMF0 2.1")
    def test_decode_all(self) -> None:
        assert amf0.decode_all(memoryview(STRING_CONNECT + NUMBER_1)) == ["connect", 1.0]
        assert amf0.decode_all(b"") == []

    @pytest.mark.spec("AMF0 2.2", "AMF0 2.4", "AMF0 2.5")
    def test_subclasses_of_mapped_types(self) -> None:
        class MyStr(str):
            pass

        class MyDict(dict):
            pass

        class MyInt(int):
            pass

        assert amf0.encode(MyStr("connect")) == STRING_CONNECT
        assert amf0.encode(MyDict(a=1.0)) == OBJECT_A_1
        assert amf0.encode(MyInt(1)) == NUMBER_1
        assert amf0.encode({MyStr("a"): 1.0}) == OBJECT_A_1

    def test_reprs(self) -> None:
        assert repr(UNDEFINED) == "UNDEFINED" and repr(UNSUPPORTED) == "UNSUPPORTED"
        assert repr(ECMAArray(a=1)) == "ECMAArray({'a': 1})"
        assert repr(TypedObject("T", a=1)) == "TypedObject('T', {'a': 1})"
        assert repr(XMLDocument("<a/>")) == "XMLDocument('<a/>')"
        assert repr(amf0.get_class_alias("flex.messaging.io.ArrayCollection")).startswith("ClassAlias(")


class TestInlinePropertyPaths:
    """AMF0 2.5: the property loop reads numbers, strings and booleans inline; same checks."""

    HEAD = bytes.fromhex("03 0001 61")  # object, name "a"

    @pytest.mark.spec("AMF0 2.2", "AMF0 2.5")
    def test_truncated_number(self) -> None:
        with pytest.raises(DecodeError, match="offset 4: truncated number"):
            amf0.decode(self.HEAD + b"\x00\x3f\xf0")

    @pytest.mark.spec("AMF0 2.4", "AMF0 2.5")
    def test_truncated_string_header(self) -> None:
        with pytest.raises(DecodeError, match="offset 4: truncated string"):
            amf0.decode(self.HEAD + b"\x02\x00")

    @pytest.mark.spec("AMF0 2.4", "AMF0 2.5")
    def test_string_past_the_end(self) -> None:
        with pytest.raises(DecodeError, match="offset 5: string of 9 bytes runs past"):
            amf0.decode(self.HEAD + b"\x02\x00\x09abc")

    @pytest.mark.spec("AMF0 1.3.1", "AMF0 2.5")
    def test_invalid_utf8_value_and_name(self) -> None:
        with pytest.raises(DecodeError, match="offset 7: string is not valid UTF-8"):
            amf0.decode(self.HEAD + b"\x02\x00\x01\xff\x00\x00\x09")
        with pytest.raises(DecodeError, match="offset 3: property name is not valid UTF-8"):
            amf0.decode(bytes.fromhex("03 0001 FF 05 000009"))

    @pytest.mark.spec("AMF0 2.5")
    def test_name_past_the_end(self) -> None:
        with pytest.raises(DecodeError, match="offset 1: property name of 16 bytes runs past"):
            amf0.decode(bytes.fromhex("03 0010 61"))

    @pytest.mark.spec("AMF0 2.3", "AMF0 2.5")
    def test_booleans_inline_and_truncated(self) -> None:
        assert amf0.decode(self.HEAD + b"\x01\x02\x00\x00\x09") == {"a": True}
        with pytest.raises(DecodeError, match="truncated boolean"):
            amf0.decode(self.HEAD + b"\x01")

    @pytest.mark.spec("AMF0 2.5")
    def test_empty_name_with_a_value(self) -> None:
        wire = amf0.encode({"": 1.0})
        assert wire == bytes.fromhex("03 0000 00 3FF0000000000000 000009")
        assert amf0.decode(wire) == {"": 1.0}

    @pytest.mark.spec("AMF0 2.5")
    def test_names_and_class_names_longer_than_a_u16(self) -> None:
        with pytest.raises(EncodeError, match="property name longer than 65535"):
            amf0.encode({"x" * 70000: 1})
        with pytest.raises(EncodeError, match="class name longer than 65535"):
            amf0.encode(TypedObject("x" * 70000))

    @pytest.mark.spec("AMF0 2.5")
    def test_long_string_values_inside_objects(self) -> None:
        value = {"a": "é" * 30000, "b": 2**60}
        assert amf0.decode(amf0.encode(value)) == value


class Broken:
    def __new__(cls) -> "Broken":
        raise RuntimeError("no")


class TestMiscellany:
    def test_sentinels_pickle_to_themselves(self) -> None:
        import pickle

        assert pickle.loads(pickle.dumps(UNDEFINED)) is UNDEFINED
        assert pickle.loads(pickle.dumps(UNSUPPORTED)) is UNSUPPORTED
        assert amf0.Unsupported() is UNSUPPORTED

    @pytest.mark.spec("AMF0 2.18")
    def test_sealed_only_alias_sends_only_sealed(self) -> None:
        alias = amf0.register_class(Point, "P", sealed=("x",), dynamic=False)
        try:
            assert alias.properties(Point(1.0, 2.0)) == {"x": 1.0}
            assert alias.dynamic_properties(Point(1.0, 2.0)) == {}
            assert amf0.decode(amf0.encode(Point(1.0, 2.0))).__dict__ == {"x": 1.0}
        finally:
            amf0.unregister_class("P")

    @pytest.mark.spec("AMF0 2.18")
    def test_class_that_cannot_be_created(self) -> None:
        amf0.register_class(Broken, "Broken")
        try:
            with pytest.raises(DecodeError, match="cannot create a Broken: no"):
                amf0.decode(bytes.fromhex("10 0006") + b"Broken" + bytes.fromhex("000009"))
        finally:
            amf0.unregister_class(Broken)

    @pytest.mark.spec("AMF0 3.1")
    def test_avmplus_at_the_depth_limit(self) -> None:
        value: object = AVMPlus(1)
        for _ in range(64):
            value = [value]
        with pytest.raises(EncodeError, match="max_depth"):
            amf0.encode(value)

    @pytest.mark.spec("AMF0 2.9")
    def test_more_than_65536_objects_are_not_referenced_past_the_u16(self) -> None:
        objects = [{} for _ in range(65540)]
        wire = amf0.encode([objects, objects[-1]])
        assert wire.endswith(EMPTY_OBJECT * 2)  # the last one is written again, not referenced
        decoded = amf0.decode(wire)
        assert len(decoded[0]) == 65540 and decoded[1] == {}


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)
_leaves = st.one_of(
    st.none(), st.just(UNDEFINED), st.booleans(),  # UNSUPPORTED has no AMF3 form
    st.floats(allow_nan=False), _text, st.builds(XMLDocument, _text),
    st.datetimes(timezones=st.just(UTC), min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)).map(
        lambda d: d.replace(microsecond=0)
    ),
)
_values = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        # Non-empty names and arrays: AMF3 (behind AVMPlus) has no empty member name,
        # and an empty AMF3 array reads back as a list.
        st.dictionaries(_text.filter(bool), children, max_size=4),
        st.dictionaries(_text.filter(bool), children, min_size=1, max_size=4).map(ECMAArray),
        st.builds(
            TypedObject, st.sampled_from(["a.B", "C"]),
            st.dictionaries(_text.filter(bool), children, max_size=3),
        ),
        children.map(AVMPlus),
    ),
    max_leaves=10,
)


def _unwrap(value: object) -> object:
    """What decoding gives back: AVMPlus wrappers disappear, AMF3 ints stay ints."""
    if isinstance(value, AVMPlus):
        return _unwrap(value.value)
    if isinstance(value, TypedObject):
        return TypedObject(value.class_name, {k: _unwrap(v) for k, v in value.items()})
    if isinstance(value, dict):
        return type(value)({k: _unwrap(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


class TestRoundTripProperty:
    @pytest.mark.spec("AMF0 2.1", "AMF0 3.1")
    @given(_values)
    def test_decode_inverts_encode(self, value: object) -> None:
        assert amf0.decode(amf0.encode(value)) == _unwrap(value)
        assert amf0.decode(amf0.encode(value, use_references=False)) == _unwrap(value)
