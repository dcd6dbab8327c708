"""AMF3: byte-exact vectors for every marker, the three reference tables, limits, API."""

from __future__ import annotations

import datetime as dt
import struct

import pytest

from rtmp import amf0, amf3
from rtmp.amf3 import (
    UNDEFINED,
    XML,
    ArrayCollection,
    DecodeError,
    Decoder,
    Dictionary,
    ECMAArray,
    EncodeError,
    Encoder,
    ObjectProxy,
    TypedObject,
    VectorDouble,
    VectorInt,
    VectorObject,
    VectorUInt,
    XMLDocument,
)

UTC = dt.timezone.utc

# Worked byte examples of AMF3, labelled with their clause (refs/clauses.md).
U29_EXAMPLES = [  # AMF3 1.3.1
    (0, "00"),
    (127, "7F"),
    (128, "8100"),
    (16383, "FF7F"),
    (16384, "818000"),
    (2097151, "FFFF7F"),
    (2097152, "80C08000"),
    (0x1FFFFFFF, "FFFFFFFF"),
]
INTEGER_EXAMPLES = [  # AMF3 3.6
    (0, "04 00"),
    (1, "04 01"),
    (128, "04 8100"),
    (-1, "04 FFFFFFFF"),
    (268435455, "04 BFFFFFFF"),
    (-268435456, "04 C0808000"),
    (268435456, "05 41B0000000000000"),  # out of range: a double
]
EMPTY_ARRAY = bytes.fromhex("09 01 01")  # AMF3 3.11: []
ARRAY_1_2 = bytes.fromhex("09 05 01 0401 0402")  # AMF3 3.11: [1, 2]
ASSOC_A_1 = bytes.fromhex("09 01 0361 0401 01")  # AMF3 3.11: {a: 1} as an associative array
OBJECT_A_1 = bytes.fromhex("0A 0B 01 0361 0401 01")  # AMF3 3.12: anonymous {a: 1}
DATE_EPOCH = bytes.fromhex("08 01 0000000000000000")  # AMF3 3.10
BYTES_0102 = bytes.fromhex("0C 05 0102")  # AMF3 3.14


def roundtrip(value: object, wire: bytes) -> None:
    assert amf3.encode(value) == wire
    assert amf3.decode(wire) == value


class TestU29:
    @pytest.mark.spec("AMF3 1.3", "AMF3 1.3.1")
    @pytest.mark.parametrize(("value", "wire"), U29_EXAMPLES)
    def test_examples(self, value: int, wire: str) -> None:
        encoder = Encoder()
        encoder.write_u29(value)
        assert encoder.getvalue() == bytes.fromhex(wire)
        decoder = Decoder(bytes.fromhex(wire))
        assert decoder.read_u29() == value and decoder.at_end()

    @pytest.mark.spec("AMF3 1.3.1")
    def test_fourth_byte_carries_eight_bits(self) -> None:
        assert Decoder(bytes.fromhex("80808001")).read_u29() == 1
        assert Decoder(bytes.fromhex("808080FF")).read_u29() == 0xFF

    @pytest.mark.spec("AMF3 1.3.1")
    def test_beyond_29_bits_is_refused(self) -> None:
        # The spec's table says 0x3FFFFFFF: an erratum; 29 bits end at 0x1FFFFFFF.
        with pytest.raises(EncodeError, match="U29"):
            Encoder().write_u29(0x20000000)

    @pytest.mark.spec("AMF3 1.3.1")
    def test_truncated(self) -> None:
        with pytest.raises(DecodeError, match="truncated U29"):
            Decoder(b"\x81\x80").read_u29()


class TestSimpleMarkers:
    @pytest.mark.spec("AMF3 3.2")
    def test_undefined(self) -> None:
        roundtrip(UNDEFINED, b"\x00")
        assert amf3.decode(b"\x00") is amf0.UNDEFINED

    @pytest.mark.spec("AMF3 3.3")
    def test_null(self) -> None:
        roundtrip(None, b"\x01")

    @pytest.mark.spec("AMF3 3.4")
    def test_false(self) -> None:
        roundtrip(False, b"\x02")

    @pytest.mark.spec("AMF3 3.5")
    def test_true(self) -> None:
        roundtrip(True, b"\x03")
        assert amf3.decode(b"\x03") is True


class TestInteger:
    @pytest.mark.spec("AMF3 3.6")
    @pytest.mark.parametrize(("value", "wire"), INTEGER_EXAMPLES)
    def test_examples(self, value: int, wire: str) -> None:
        roundtrip(value, bytes.fromhex(wire))

    @pytest.mark.spec("AMF3 3.6")
    def test_sign_extension_from_bit_28(self) -> None:
        assert amf3.decode(bytes.fromhex("04 C0808000")) == -(2**28)
        assert amf3.decode(bytes.fromhex("04 BFFFFFFF")) == 2**28 - 1

    @pytest.mark.spec("AMF3 3.6", "AMF3 3.7")
    def test_below_range_is_a_double(self) -> None:
        assert amf3.encode(-(2**28) - 1) == b"\x05" + struct.pack(">d", -(2.0**28) - 1)

    @pytest.mark.spec("AMF3 3.7")
    def test_too_large_for_a_double(self) -> None:
        with pytest.raises(EncodeError, match="double"):
            amf3.encode(10**400)


class TestDouble:
    @pytest.mark.spec("AMF3 3.7")
    def test_double(self) -> None:
        roundtrip(1.5, bytes.fromhex("05 3FF8000000000000"))
        value = amf3.decode(bytes.fromhex("05 3FF0000000000000"))
        assert value == 1 and type(value) is float

    @pytest.mark.spec("AMF3 3.7")
    def test_truncated(self) -> None:
        with pytest.raises(DecodeError, match="offset 0: truncated"):
            amf3.decode(b"\x05\x3f")


class TestString:
    @pytest.mark.spec("AMF3 3.8", "AMF3 1.3.2")
    def test_second_occurrence_is_a_reference(self) -> None:
        assert amf3.encode_all(["hi", "hi"]) == bytes.fromhex("06 05 6869 06 00")
        assert amf3.decode_all(bytes.fromhex("06 05 6869 06 00")) == ["hi", "hi"]

    @pytest.mark.spec("AMF3 1.3.2")
    def test_empty_string_is_never_referenced(self) -> None:
        assert amf3.encode(["", "", "a", "a"]) == bytes.fromhex("09 09 01 0601 0601 060361 0600")
        # An empty literal takes no table slot: "a" is still index 0.
        assert amf3.decode(bytes.fromhex("09 07 01 0601 060361 0600")) == ["", "a", "a"]

    @pytest.mark.spec("AMF3 1.3.2")
    def test_names_and_values_share_the_string_table(self) -> None:
        wire = amf3.encode({"app": "app"})
        assert wire == bytes.fromhex("0A 0B 01 07617070 06 00 01")
        assert amf3.decode(wire) == {"app": "app"}

    @pytest.mark.spec("AMF3 1.3.2")
    def test_utf8_byte_length(self) -> None:
        roundtrip("é", bytes.fromhex("06 05 C3A9"))

    @pytest.mark.spec("AMF3 1.3.2")
    def test_reference_out_of_range(self) -> None:
        with pytest.raises(DecodeError, match="offset 1: string reference 2 out of range: 0 strings"):
            amf3.decode(b"\x06\x04")

    @pytest.mark.spec("AMF3 1.3.2")
    def test_length_beyond_input(self) -> None:
        with pytest.raises(DecodeError, match="offset 3: 100-byte string runs past"):
            amf3.decode(bytes.fromhex("06 8149 6869"))

    @pytest.mark.spec("AMF3 1.3.2")
    def test_invalid_utf8(self) -> None:
        with pytest.raises(DecodeError, match="UTF-8"):
            amf3.decode(bytes.fromhex("06 05 FFFE"))

    @pytest.mark.spec("AMF3 1.3.2")
    def test_many_strings_use_multi_byte_references(self) -> None:
        values = [f"s{i}" for i in range(200)]
        assert amf3.decode(amf3.encode(values + values)) == values + values


class TestXML:
    @pytest.mark.spec("AMF3 3.9")
    def test_xml_document(self) -> None:
        roundtrip(XMLDocument("<a/>"), bytes.fromhex("07 09 3C612F3E"))
        assert type(amf3.decode(bytes.fromhex("07 01"))) is XMLDocument

    @pytest.mark.spec("AMF3 3.13")
    def test_xml(self) -> None:
        roundtrip(XML("<a/>"), bytes.fromhex("0B 09 3C612F3E"))
        assert repr(XML("x")) == "XML('x')"

    @pytest.mark.spec("AMF3 3.9", "AMF3 3.13", "AMF3 2.2")
    def test_xml_uses_the_object_table_not_the_string_table(self) -> None:
        doc = XMLDocument("<a/>")
        xml = XML("<b/>")
        wire = amf3.encode([doc, xml, doc, xml, "<a/>"])
        # table: 0 the list, 1 doc, 2 xml
        assert wire == bytes.fromhex("09 0B 01 07093C612F3E 0B093C622F3E 0702 0B04 06093C612F3E")
        decoded = amf3.decode(wire)
        assert decoded[0] is decoded[2] and decoded[1] is decoded[3]

    @pytest.mark.spec("AMF3 3.13")
    def test_truncated(self) -> None:
        with pytest.raises(DecodeError, match="AMF3 3.13"):
            amf3.decode(bytes.fromhex("0B 09 3C61"))


class TestDate:
    @pytest.mark.spec("AMF3 3.10")
    def test_epoch(self) -> None:
        roundtrip(dt.datetime(1970, 1, 1, tzinfo=UTC), DATE_EPOCH)

    @pytest.mark.spec("AMF3 3.10", "AMF3 2.2")
    def test_repeated_date_is_an_object_reference(self) -> None:
        when = dt.datetime(2020, 5, 17, 8, 30, tzinfo=UTC)
        wire = amf3.encode([when, when])
        assert wire.endswith(b"\x08\x02")
        first, second = amf3.decode(wire)
        assert first == when and first is second

    @pytest.mark.spec("AMF3 3.10")
    def test_naive_and_unrepresentable(self) -> None:
        with pytest.raises(EncodeError, match="naive"):
            amf3.encode(dt.datetime(2020, 1, 1))
        with pytest.raises(DecodeError, match="offset 2: date"):
            amf3.decode(b"\x08\x01" + struct.pack(">d", float("nan")))


class TestArray:
    @pytest.mark.spec("AMF3 3.11")
    def test_examples(self) -> None:
        roundtrip([], EMPTY_ARRAY)
        roundtrip([1, 2], ARRAY_1_2)
        roundtrip(ECMAArray(a=1), ASSOC_A_1)
        assert type(amf3.decode(ASSOC_A_1)) is ECMAArray

    @pytest.mark.spec("AMF3 3.11")
    def test_mixed_array(self) -> None:
        value = ECMAArray({0: "x", 1: "y", "name": "n", 5: "sparse"})
        wire = amf3.encode(value)
        # dense count 2, associative: name, "5"; then the two dense values.
        assert wire == bytes.fromhex("09 05 096E616D65 06036E 0335 06 0D737061727365 01 060378 060379")
        assert amf3.decode(wire) == ECMAArray({"name": "n", "5": "sparse", 0: "x", 1: "y"})

    @pytest.mark.spec("AMF3 3.11")
    def test_dense_only_ecma_array_decodes_as_a_list(self) -> None:
        assert amf3.decode(amf3.encode(ECMAArray({0: "x"}))) == ["x"]

    @pytest.mark.spec("AMF3 3.11")
    def test_bad_keys(self) -> None:
        with pytest.raises(EncodeError, match="neither str nor int"):
            amf3.encode(ECMAArray({1.5: 1}))
        with pytest.raises(EncodeError, match="cannot be empty"):
            amf3.encode(ECMAArray({"": 1}))

    @pytest.mark.spec("AMF3 3.11")
    def test_huge_count_fails_fast(self) -> None:
        with pytest.raises(DecodeError, match="array count 268435455 exceeds the 1 bytes left"):
            amf3.decode(bytes.fromhex("09 FFFFFFFF 01"))

    @pytest.mark.spec("AMF3 3.11", "AMF3 2.2")
    def test_array_enters_the_table_before_its_members(self) -> None:
        cyclic: list = [1]
        cyclic.append(cyclic)
        wire = amf3.encode(cyclic)
        assert wire == bytes.fromhex("09 05 01 0401 0900")
        decoded = amf3.decode(wire)
        assert decoded[1] is decoded
        mixed = amf3.decode(bytes.fromhex("09 01 0373 0900 01"))
        assert mixed["s"] is mixed


class TestObject:
    @pytest.mark.spec("AMF3 3.12")
    def test_anonymous(self) -> None:
        roundtrip({"a": 1}, OBJECT_A_1)
        roundtrip({}, bytes.fromhex("0A 0B 01 01"))

    @pytest.mark.spec("AMF3 3.12", "AMF3 2.2")
    def test_traits_are_referenced_the_second_time(self) -> None:
        wire = amf3.encode([{"a": 1}, {"b": 2}])
        assert wire == bytes.fromhex("09 05 01 0A0B01 0361 0401 01 0A01 0362 0402 01")
        assert amf3.decode(wire) == [{"a": 1}, {"b": 2}]

    @pytest.mark.spec("AMF3 3.12", "AMF3 2.2")
    def test_repeated_instance_and_cycle(self) -> None:
        node: dict = {}
        node["me"] = node
        wire = amf3.encode([node, node])
        assert wire == bytes.fromhex("09 05 01 0A0B01 05 6D65 0A02 01 0A02")
        first, second = amf3.decode(wire)
        assert first is second and first["me"] is first

    @pytest.mark.spec("AMF3 3.12")
    def test_sealed_anonymous_traits(self) -> None:
        # inline, not dynamic, two sealed members "x", "y": 0x23 = 2 << 4 | 0b0011
        wire = bytes.fromhex("0A 23 01 0378 0379 0401 0402")
        assert amf3.decode(wire) == {"x": 1, "y": 2}

    @pytest.mark.spec("AMF3 3.12")
    def test_sealed_and_dynamic_traits(self) -> None:
        wire = bytes.fromhex("0A 1B 01 0378 0401 037A 0403 01")  # 1 sealed, dynamic
        assert amf3.decode(wire) == {"x": 1, "z": 3}

    @pytest.mark.spec("AMF3 3.12")
    def test_typed_object(self) -> None:
        wire = amf3.encode(TypedObject("Foo", a=1))
        assert wire == bytes.fromhex("0A 0B 07466F6F 0361 0401 01")
        decoded = amf3.decode(wire)
        assert decoded == TypedObject("Foo", a=1) and decoded.class_name == "Foo"

    @pytest.mark.spec("AMF3 3.12")
    def test_member_names_must_be_non_empty_strings(self) -> None:
        with pytest.raises(EncodeError, match="cannot be empty"):
            amf3.encode({"": 1})
        with pytest.raises(EncodeError, match="not a str"):
            amf3.encode({1: 1})

    @pytest.mark.spec("AMF3 3.12")
    def test_references_out_of_range(self) -> None:
        with pytest.raises(DecodeError, match="offset 1: object reference 0 out of range"):
            amf3.decode(b"\x0a\x00")
        with pytest.raises(DecodeError, match="offset 1: traits reference 0 out of range"):
            amf3.decode(b"\x0a\x01")

    @pytest.mark.spec("AMF3 3.12")
    def test_sealed_count_beyond_input(self) -> None:
        with pytest.raises(DecodeError, match="sealed member count"):
            amf3.decode(bytes.fromhex("0A FFFFFF73 01"))


class Point:
    def __init__(self, x: int, y: int, **extra: object) -> None:
        self.x = x
        self.y = y
        self.__dict__.update(extra)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and vars(self) == vars(other)


class Blob:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload


def read_blob(decoder: Decoder) -> Blob:
    return Blob(decoder.read_bytes(decoder.read_u29()))


def write_blob(encoder: Encoder, blob: Blob) -> None:
    encoder.write_u29(len(blob.payload))
    encoder.write_bytes(blob.payload)


class TestRegisteredClasses:
    @pytest.mark.spec("AMF3 3.12")
    def test_sealed_and_dynamic_members(self) -> None:
        amf3.register_class(Point, "geo.Point", sealed=("x", "y"))
        try:
            wire = amf3.encode(Point(1, 2, label="p"))
            # 0x2B: inline traits, dynamic, 2 sealed members
            assert wire == bytes.fromhex("0A 2B 13") + b"geo.Point" + bytes.fromhex(
                "0378 0379 0401 0402 0B6C6162656C 060370 01"
            )
            decoded = amf3.decode(wire)
            assert type(decoded) is Point and decoded == Point(1, 2, label="p")
        finally:
            amf3.unregister_class(Point)

    @pytest.mark.spec("AMF3 3.12")
    def test_sealed_only(self) -> None:
        amf3.register_class(Point, "P", sealed=("x", "y"), dynamic=False)
        try:
            point = Point(1, 2, ignored=3)
            wire = amf3.encode([point, Point(3, 4)])
            assert wire == bytes.fromhex("09 05 01 0A 23 0350 0378 0379 0401 0402 0A 01 0403 0404")
            assert amf3.decode(wire) == [Point(1, 2), Point(3, 4)]
        finally:
            amf3.unregister_class("P")

    @pytest.mark.spec("AMF3 3.12")
    def test_externalizable(self) -> None:
        amf3.register_externalizable(Blob, "my.Blob", read_blob, write_blob)
        try:
            blob = Blob(b"xyz")
            wire = amf3.encode([blob, blob])
            assert wire == bytes.fromhex("09 05 01 0A 07 0F") + b"my.Blob" + bytes.fromhex("03 78797A 0A02")
            first, second = amf3.decode(wire)
            assert first is second and first.payload == b"xyz"
        finally:
            amf3.unregister_class(Blob)

    @pytest.mark.spec("AMF3 3.12")
    def test_unknown_externalizable_class(self) -> None:
        with pytest.raises(DecodeError, match="externalizable class 'x.Y' has no registered reader"):
            amf3.decode(bytes.fromhex("0A 07 07 782E59 00"))

    @pytest.mark.spec("AMF3 3.12")
    def test_externalizable_alias_sent_with_plain_traits(self) -> None:
        wire = bytes.fromhex("0A 0B 43") + b"flex.messaging.io.ArrayCollection" + bytes.fromhex("01")
        assert amf3.decode(wire) == TypedObject("flex.messaging.io.ArrayCollection")

    @pytest.mark.spec("AMF3 3.12 [impl: flex ArrayCollection]")
    def test_array_collection(self) -> None:
        wire = amf3.encode(ArrayCollection([1, 2]))
        assert wire == bytes.fromhex("0A 07 43") + b"flex.messaging.io.ArrayCollection" + ARRAY_1_2
        decoded = amf3.decode(wire)
        assert type(decoded) is ArrayCollection and decoded == [1, 2]
        assert repr(decoded) == "ArrayCollection([1, 2])"
        assert amf3.decode(wire[:-len(ARRAY_1_2)] + ASSOC_A_1) == [1]

    @pytest.mark.spec("AMF3 3.12 [impl: flex ObjectProxy]")
    def test_object_proxy(self) -> None:
        wire = amf3.encode(ObjectProxy(a=1))
        assert wire == bytes.fromhex("0A 07 3B") + b"flex.messaging.io.ObjectProxy" + OBJECT_A_1
        decoded = amf3.decode(wire)
        assert type(decoded) is ObjectProxy and decoded == {"a": 1}
        assert repr(decoded) == "ObjectProxy({'a': 1})"

    @pytest.mark.spec("AMF3 3.12 [impl: flex ArrayCollection]")
    def test_flex_sources_of_the_wrong_type(self) -> None:
        head = bytes.fromhex("0A 07 43") + b"flex.messaging.io.ArrayCollection"
        with pytest.raises(DecodeError, match="ArrayCollection source is a int"):
            amf3.decode(head + b"\x04\x01")
        head = bytes.fromhex("0A 07 3B") + b"flex.messaging.io.ObjectProxy"
        with pytest.raises(DecodeError, match="ObjectProxy source is a list"):
            amf3.decode(head + EMPTY_ARRAY)


class TestByteArray:
    @pytest.mark.spec("AMF3 3.14")
    def test_bytes(self) -> None:
        roundtrip(b"\x01\x02", BYTES_0102)
        assert amf3.encode(bytearray(b"\x01\x02")) == BYTES_0102
        assert amf3.encode(memoryview(b"\x01\x02")) == BYTES_0102

    @pytest.mark.spec("AMF3 3.14")
    def test_length_beyond_input(self) -> None:
        with pytest.raises(DecodeError, match="ByteArray of 2 bytes runs past"):
            amf3.decode(bytes.fromhex("0C 05 01"))

    @pytest.mark.spec("AMF3 3.14", "AMF3 2.2")
    def test_reference(self) -> None:
        blob = b"\x01\x02"
        assert amf3.encode([blob, blob]) == bytes.fromhex("09 05 01 0C050102 0C02")


class TestVector:
    @pytest.mark.spec("AMF3 3.15")
    def test_int(self) -> None:
        roundtrip(VectorInt([1, -2]), bytes.fromhex("0D 05 00 00000001 FFFFFFFE"))

    @pytest.mark.spec("AMF3 3.15")
    def test_uint_fixed(self) -> None:
        roundtrip(VectorUInt([0xFFFFFFFE], fixed=True), bytes.fromhex("0E 03 01 FFFFFFFE"))

    @pytest.mark.spec("AMF3 3.15")
    def test_double(self) -> None:
        roundtrip(VectorDouble([1.0]), bytes.fromhex("0F 03 00 3FF0000000000000"))

    @pytest.mark.spec("AMF3 3.15")
    def test_object(self) -> None:
        value = VectorObject([{"a": 1}, None], type_name="Foo")
        roundtrip(value, bytes.fromhex("10 05 00 07466F6F") + OBJECT_A_1 + b"\x01")
        assert value != VectorObject([{"a": 1}, None])
        assert repr(VectorObject()) == "VectorObject([], type_name='*', fixed=False)"

    @pytest.mark.spec("AMF3 3.15")
    def test_types_and_flags_take_part_in_equality(self) -> None:
        assert VectorInt([1]) != VectorUInt([1])
        assert VectorInt([1]) != VectorInt([1], fixed=True)
        assert VectorInt([1]) != [1]
        assert repr(VectorInt([1])) == "VectorInt([1], fixed=False)"

    @pytest.mark.spec("AMF3 3.15")
    def test_item_out_of_range(self) -> None:
        with pytest.raises(EncodeError, match="VectorInt item out of range"):
            amf3.encode(VectorInt([2**31]))
        with pytest.raises(EncodeError, match="VectorUInt item out of range"):
            amf3.encode(VectorUInt([-1]))

    @pytest.mark.spec("AMF3 3.15")
    def test_huge_count_fails_fast(self) -> None:
        with pytest.raises(DecodeError, match="vector of 268435455 items needs 1073741820 bytes"):
            amf3.decode(bytes.fromhex("0D FFFFFFFF 00 00000001"))
        with pytest.raises(DecodeError, match="vector of 268435455 items"):
            amf3.decode(bytes.fromhex("10 FFFFFFFF 00 01"))

    @pytest.mark.spec("AMF3 3.15", "AMF3 2.2")
    def test_references(self) -> None:
        vector = VectorDouble([1.0])
        objects = VectorObject([])
        wire = amf3.encode([vector, vector, objects, objects])
        assert wire.endswith(bytes.fromhex("0F02 10 01 00 032A 1004"))
        decoded = amf3.decode(wire)
        assert decoded[0] is decoded[1] and decoded[2] is decoded[3]


class TestDictionary:
    @pytest.mark.spec("AMF3 3.16")
    def test_string_keys(self) -> None:
        roundtrip(Dictionary({"k": 1}), bytes.fromhex("11 03 00 06036B 0401"))

    @pytest.mark.spec("AMF3 3.16")
    def test_integer_keys_are_written_as_strings(self) -> None:
        wire = amf3.encode(Dictionary({7: "seven"}, weak_keys=True))
        assert wire == bytes.fromhex("11 03 01 060337 060B736576656E")
        assert amf3.decode(wire) == Dictionary({"7": "seven"}, weak_keys=True)

    @pytest.mark.spec("AMF3 3.16")
    def test_object_keys(self) -> None:
        key = {"id": 1}
        value = amf3.decode(amf3.encode(Dictionary([(key, "a"), (key, "b")])))
        (k1, v1), (k2, v2) = value.items()
        assert k1 == {"id": 1} and k1 is k2 and (v1, v2) == ("a", "b")
        assert len(value) == 2
        assert repr(Dictionary({"a": 1})) == "Dictionary([('a', 1)], weak_keys=False)"

    @pytest.mark.spec("AMF3 3.16")
    def test_huge_count_fails_fast(self) -> None:
        with pytest.raises(DecodeError, match="AMF3 3.16"):
            amf3.decode(bytes.fromhex("11 FFFFFFFF 00 0101"))

    @pytest.mark.spec("AMF3 3.16", "AMF3 2.2")
    def test_reference(self) -> None:
        dictionary = Dictionary()
        assert amf3.encode([dictionary, dictionary]) == bytes.fromhex("09 05 01 110100 1102")


class TestErrorsAndLimits:
    @pytest.mark.spec("AMF3 3.1")
    @pytest.mark.parametrize("marker", [0x12, 0x80, 0xFF])
    def test_unknown_marker(self, marker: int) -> None:
        with pytest.raises(DecodeError, match=f"offset 0: unknown AMF3 marker 0x{marker:02x}"):
            amf3.decode(bytes([marker]))

    @pytest.mark.spec("AMF3 3.1")
    def test_empty_and_trailing(self) -> None:
        with pytest.raises(DecodeError, match="truncated input"):
            amf3.decode(b"")
        with pytest.raises(DecodeError, match="1 bytes left after the value"):
            amf3.decode(b"\x01\x01")

    @pytest.mark.spec("AMF3 3.11")
    def test_nesting_limit(self) -> None:
        with pytest.raises(DecodeError, match="max_depth=64"):
            amf3.decode(bytes.fromhex("09 03 01") * 65 + b"\x01")
        assert amf3.decode(bytes.fromhex("09 03 01") * 64 + b"\x01") is not None
        with pytest.raises(DecodeError, match="max_depth"):
            amf3.decode(bytes.fromhex("0A 0B 01 0361") * 50_000)

    @pytest.mark.spec("AMF3 3.11")
    def test_encode_nesting_limit(self) -> None:
        value: dict = {}
        for _ in range(70):
            value = {"a": value}
        with pytest.raises(EncodeError, match="max_depth"):
            amf3.encode(value)

    def test_errors_are_amf0_errors(self) -> None:
        assert issubclass(amf3.DecodeError, amf0.DecodeError)
        assert issubclass(amf3.EncodeError, amf0.EncodeError)

    def test_unencodable(self) -> None:
        with pytest.raises(EncodeError, match="cannot encode a set as AMF3"):
            amf3.encode({1})
        with pytest.raises(EncodeError, match="Unsupported"):
            amf3.encode(amf0.UNSUPPORTED)

    def test_read_bytes_bounds(self) -> None:
        decoder = Decoder(b"abc")
        with pytest.raises(DecodeError, match="4 bytes wanted, 3 left"):
            decoder.read_bytes(4)
        assert decoder.read_bytes(2) == b"ab" and decoder.remaining == 1
        with pytest.raises(ValueError):
            Decoder(b"", 5)


class TestIncremental:
    @pytest.mark.spec("AMF3 2.2")
    def test_decoder_tables_span_values(self) -> None:
        decoder = Decoder(bytes.fromhex("06 05 6869 06 00 0A0B01 0361 0401 01 0A01 0361 0402 01"))
        assert decoder.read_value() == "hi"
        assert decoder.read_value() == "hi"
        assert decoder.read_all() == [{"a": 1}, {"a": 2}]

    @pytest.mark.spec("AMF3 2.2", "AMF3 4.2")
    def test_encode_uses_fresh_tables_each_call(self) -> None:
        assert amf3.encode("hi") == amf3.encode("hi") == bytes.fromhex("06 05 6869")
        encoder = Encoder()
        encoder.write_value("hi")
        encoder.write_value("hi")
        assert encoder.getvalue() == bytes.fromhex("06 05 6869 06 00")

    @pytest.mark.spec("AMF3 3.6", "AMF3 3.8", "AMF3 3.12")
    def test_subclasses(self) -> None:
        class MyInt(int):
            pass

        class MyDict(dict):
            pass

        class MyStr(str):
            pass

        assert amf3.encode(MyInt(1)) == b"\x04\x01"
        assert amf3.encode(MyDict(a=1)) == OBJECT_A_1
        assert amf3.encode(MyStr("x")) == b"\x06\x03x"
        assert amf3.encode(True) == b"\x03"


class TestReferencesOfEveryObjectType:
    @pytest.mark.spec("AMF3 2.2", "AMF3 3.9", "AMF3 3.10", "AMF3 3.13", "AMF3 3.14", "AMF3 3.15", "AMF3 3.16")
    @pytest.mark.parametrize(
        "value",
        [
            XMLDocument("<a/>"),
            XML("<b/>"),
            dt.datetime(2000, 1, 1, tzinfo=UTC),
            b"xy",
            VectorInt([1]),
            VectorUInt([1]),
            VectorDouble([1.0]),
            VectorObject([1]),
            Dictionary({"a": 1}),
        ],
        ids=lambda v: type(v).__name__,
    )
    def test_second_occurrence_decodes_to_the_same_object(self, value: object) -> None:
        wire = amf3.encode([value, value])
        assert wire.endswith(bytes([wire[3], 0x02]))  # same marker, object reference 1
        first, second = amf3.decode(wire)
        assert first == value and first is second

    @pytest.mark.spec("AMF3 3.12", "AMF3 2.2")
    def test_many_traits_use_multi_byte_references(self) -> None:
        values = [TypedObject(f"C{i}", a=i) for i in range(40)] + [{"x": 1} for _ in range(2)]
        values += [TypedObject("C39", b=1)]
        wire = amf3.encode(values)
        assert amf3.decode(wire) == values

    @pytest.mark.spec("AMF3 3.12")
    def test_str_subclass_member_names(self) -> None:
        class Name(str):
            pass

        assert amf3.encode({Name("a"): 1}) == OBJECT_A_1


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)
_leaves = st.one_of(
    st.none(), st.just(UNDEFINED), st.booleans(), st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False), _text, st.binary(max_size=8),
    st.builds(XML, _text), st.builds(XMLDocument, _text),
    st.lists(st.integers(-(2**31), 2**31 - 1), max_size=4).map(VectorInt),
    st.lists(st.integers(0, 2**32 - 1), max_size=4).map(lambda v: VectorUInt(v, fixed=True)),
    st.lists(st.floats(allow_nan=False), max_size=4).map(VectorDouble),
    st.datetimes(timezones=st.just(UTC), min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)).map(
        lambda d: d.replace(microsecond=0)
    ),
)
_values = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_text.filter(bool), children, max_size=4),
        st.builds(TypedObject, st.sampled_from(["a.B", "C"]),
                  st.dictionaries(_text.filter(bool), children, max_size=3)),
        st.lists(children, max_size=3).map(lambda v: VectorObject(v, "*")),
        st.lists(st.tuples(_text, children), max_size=3).map(Dictionary),
    ),
    max_leaves=10,
)


class TestRoundTripProperty:
    @pytest.mark.spec("AMF3 3.1", "AMF3 2.2")
    @given(_values)
    def test_decode_inverts_encode(self, value: object) -> None:
        assert amf3.decode(amf3.encode(value)) == value

    @pytest.mark.spec("AMF3 2.2")
    @given(st.lists(_values, min_size=1, max_size=4))
    def test_shared_instances_survive_as_shared(self, values: list) -> None:
        wire = amf3.encode([values, values])
        first, second = amf3.decode(wire)
        assert first is second and first == values
