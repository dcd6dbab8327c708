"""AMF3 1-3: the Action Message Format version 3 (Adobe, January 2013), encoder and decoder.

AMF3 is what an RTMP peer speaks after ``objectEncoding`` 3 (RTMP 7.2.1.1): a
value switched in from AMF0 with the 0x11 marker (AMF0 3.1), or the values of a
type 17/15 payload.  It saves space with variable-length integers (U29, AMF3
1.3.1) and three implicit reference tables (AMF3 2.2), built identically by the
encoder and the decoder in order of first occurrence:

* strings - every non-empty string literal (values, member names, class names);
  the empty string is never entered nor referenced (AMF3 1.3.2);
* objects - objects, arrays, dates, XML, XMLDocument, ByteArray, vectors and
  dictionaries, entered *before* their members so members may point back;
* traits - the class description (name, sealed member names, dynamic or
  externalizable) of each object written with inline traits (AMF3 3.12).

Python mapping (the public contract, ``refs/api.md``)::

    AMF3                    Python
    undefined      0x00     UNDEFINED (the same object as rtmp.amf0.UNDEFINED)
    null           0x01     None
    false / true   0x02/03  bool
    integer        0x04     int in -2**28 .. 2**28-1 (other ints are written as doubles)
    double         0x05     float
    string         0x06     str
    XMLDocument    0x07     rtmp.amf0.XMLDocument
    date           0x08     datetime, timezone-aware, UTC
    array          0x09     list (dense only) or ECMAArray (with an associative part)
    object         0x0A     dict (anonymous), a registered class, TypedObject, or an
                            externalizable class (ArrayCollection, ObjectProxy built in)
    XML            0x0B     XML (a str)
    ByteArray      0x0C     bytes (bytearray and memoryview encode too)
    vectors        0x0D-10  VectorInt, VectorUInt, VectorDouble, VectorObject (lists)
    dictionary     0x11     Dictionary

A :class:`Decoder` or :class:`Encoder` is one set of tables (one context); AMF3
4.2 gives every top-level ``readObject``/``writeObject`` fresh tables, and so
do :func:`encode` and :func:`decode`.  Decoding is bounded like ``rtmp.amf0``:
lengths and counts are checked against the bytes left before anything is
allocated, nesting is limited by ``max_depth``, and every failure is a
:class:`DecodeError` (a subclass of ``rtmp.amf0.DecodeError``).
"""

from __future__ import annotations

import datetime as _dt
import enum
import struct
from typing import Any, Callable, Dict, Iterable, List, Tuple, Union

from . import amf_types as _shared
from .amf_types import (
    Buffer,
    DecoderBase,
    DEFAULT_MAX_DEPTH,
    UNDEFINED,
    AVMPlus,
    ClassAlias,
    ECMAArray,
    TypedObject,
    Undefined,
    XMLDocument,
    datetime_to_ms,
    get_class_alias,
    ms_to_datetime,
    register_class,
    unregister_class,
)

__all__ = [
    "Marker",
    "UNDEFINED",
    "Undefined",
    "ECMAArray",
    "TypedObject",
    "XMLDocument",
    "XML",
    "VectorInt",
    "VectorUInt",
    "VectorDouble",
    "VectorObject",
    "Dictionary",
    "ArrayCollection",
    "ObjectProxy",
    "ClassAlias",
    "register_class",
    "register_externalizable",
    "unregister_class",
    "get_class_alias",
    "DecodeError",
    "EncodeError",
    "Decoder",
    "Encoder",
    "encode",
    "encode_all",
    "decode",
    "decode_all",
    "is_amf3_only",
    "MIN_INTEGER",
    "MAX_INTEGER",
    "MAX_U29",
]


class Marker(enum.IntEnum):
    """AMF3 3.1: the one-byte type markers."""

    UNDEFINED = 0x00  # AMF3 3.2
    NULL = 0x01  # AMF3 3.3
    FALSE = 0x02  # AMF3 3.4
    TRUE = 0x03  # AMF3 3.5
    INTEGER = 0x04  # AMF3 3.6
    DOUBLE = 0x05  # AMF3 3.7
    STRING = 0x06  # AMF3 3.8
    XML_DOCUMENT = 0x07  # AMF3 3.9
    DATE = 0x08  # AMF3 3.10
    ARRAY = 0x09  # AMF3 3.11
    OBJECT = 0x0A  # AMF3 3.12
    XML = 0x0B  # AMF3 3.13
    BYTE_ARRAY = 0x0C  # AMF3 3.14
    VECTOR_INT = 0x0D  # AMF3 3.15
    VECTOR_UINT = 0x0E  # AMF3 3.15
    VECTOR_DOUBLE = 0x0F  # AMF3 3.15
    VECTOR_OBJECT = 0x10  # AMF3 3.15
    DICTIONARY = 0x11  # AMF3 3.16


#: AMF3 1.3.1: the largest U29 is 2**29 - 1 (the spec's table says 0x3FFFFFFF: a known erratum).
MAX_U29 = 0x1FFFFFFF
#: AMF3 3.6: the integer type holds a signed 29-bit value.
MIN_INTEGER = -(1 << 28)
MAX_INTEGER = (1 << 28) - 1
#: AMF3 1.3.2, 3.9, 3.14: lengths, counts and indices leave one flag bit of the U29.
MAX_LENGTH = (1 << 28) - 1

_DOUBLE = struct.Struct(">d")
_DOUBLE_PACK = struct.Struct(">Bd").pack
_EMPTY = 0x01  # AMF3 1.3.2: UTF-8-empty, also the end of dynamic members / associative part


class DecodeError(_shared.DecodeError):
    """The bytes are not valid AMF3; also an ``rtmp.amf0.DecodeError``."""


class EncodeError(_shared.EncodeError):
    """A Python value cannot be written as AMF3; also an ``rtmp.amf0.EncodeError``."""


# ---------------------------------------------------------------------------
# Value types


class XML(str):
    """AMF3 3.13: an E4X ``XML`` value, carried as its text."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"XML({str.__repr__(self)})"


class _Vector(_shared.ValueEquality, List[Any]):
    """AMF3 3.15: a dense typed array; ``fixed`` is the fixed-length flag."""

    __slots__ = ("fixed",)

    def __init__(self, items: Iterable[Any] = (), fixed: bool = False) -> None:
        super().__init__(items)
        self.fixed = fixed

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and self.fixed == other.fixed
            and list.__eq__(self, other)
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list.__repr__(self)}, fixed={self.fixed})"


class VectorInt(_Vector):
    """AMF3 3.15: ``Vector.<int>``, items are signed 32-bit."""

    __slots__ = ()


class VectorUInt(_Vector):
    """AMF3 3.15: ``Vector.<uint>``, items are unsigned 32-bit."""

    __slots__ = ()


class VectorDouble(_Vector):
    """AMF3 3.15: ``Vector.<Number>``, items are doubles."""

    __slots__ = ()


class VectorObject(_Vector):
    """AMF3 3.15: ``Vector.<T>`` of any AMF3 values; ``type_name`` is T ("*" for any)."""

    __slots__ = ("type_name",)

    def __init__(self, items: Iterable[Any] = (), type_name: str = "*", fixed: bool = False) -> None:
        super().__init__(items, fixed)
        self.type_name = type_name

    def __eq__(self, other: object) -> bool:
        return _Vector.__eq__(self, other) and self.type_name == other.type_name  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"VectorObject({list.__repr__(self)}, type_name={self.type_name!r}, fixed={self.fixed})"


class Dictionary:
    """AMF3 3.16: a ``flash.utils.Dictionary``: (key, value) pairs whose keys may be any value.

    Keys are matched by identity in ActionScript and may be unhashable here (an
    object used as a key), so the entries are kept as a list of pairs.
    """

    __slots__ = ("entries", "weak_keys")

    def __init__(
        self,
        entries: Union[Iterable[Tuple[Any, Any]], Dict[Any, Any]] = (),
        weak_keys: bool = False,
    ) -> None:
        if isinstance(entries, dict):
            entries = entries.items()
        self.entries: List[Tuple[Any, Any]] = [(key, value) for key, value in entries]
        self.weak_keys = weak_keys

    def __len__(self) -> int:
        return len(self.entries)

    def items(self) -> List[Tuple[Any, Any]]:
        """The (key, value) pairs, in wire order."""
        return list(self.entries)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Dictionary)
            and self.weak_keys == other.weak_keys
            and self.entries == other.entries
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Dictionary({self.entries!r}, weak_keys={self.weak_keys})"


class ArrayCollection(List[Any]):
    """``flex.messaging.io.ArrayCollection``: externalizable, its bytes are one AMF3 array."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"ArrayCollection({list.__repr__(self)})"


class ObjectProxy(Dict[Any, Any]):
    """``flex.messaging.io.ObjectProxy``: externalizable, its bytes are one AMF3 object."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"ObjectProxy({dict.__repr__(self)})"


def register_externalizable(
    cls: type,
    alias: str,
    reader: Callable[[Decoder], Any],
    writer: Callable[[Encoder, Any], None],
) -> ClassAlias:
    """AMF3 3.12: register an IExternalizable class.

    ``reader(decoder)`` must read the class's bytes from the :class:`Decoder`
    (with ``read_value``, ``read_bytes``, ``read_u29``...) and return the instance;
    ``writer(encoder, obj)`` writes them with the matching :class:`Encoder` calls.
    """
    return register_class(cls, alias, dynamic=False, reader=reader, writer=writer)


def _read_array_collection(decoder: Decoder) -> ArrayCollection:
    offset = decoder.offset
    source = decoder.read_value()
    if not isinstance(source, (list, dict)):
        raise DecodeError(f"ArrayCollection source is a {type(source).__name__}, not an array", offset)
    return ArrayCollection(source if isinstance(source, list) else source.values())


def _write_array_collection(encoder: Encoder, value: ArrayCollection) -> None:
    encoder.write_value(list(value))


def _read_object_proxy(decoder: Decoder) -> ObjectProxy:
    offset = decoder.offset
    source = decoder.read_value()
    if not isinstance(source, dict):
        raise DecodeError(f"ObjectProxy source is a {type(source).__name__}, not an object", offset)
    return ObjectProxy(source)


def _write_object_proxy(encoder: Encoder, value: ObjectProxy) -> None:
    encoder.write_value(dict(value))


register_externalizable(
    ArrayCollection, "flex.messaging.io.ArrayCollection", _read_array_collection, _write_array_collection
)
register_externalizable(ObjectProxy, "flex.messaging.io.ObjectProxy", _read_object_proxy, _write_object_proxy)


_AMF3_ONLY_TYPES = (bytes, bytearray, memoryview, XML, _Vector, Dictionary)


def is_amf3_only(value: Any) -> bool:
    """True for values AMF0 cannot express: ByteArray, XML, vectors, dictionaries, externalizables."""
    if isinstance(value, _AMF3_ONLY_TYPES):
        return True
    alias = _shared.CLASSES.get(type(value))
    return alias is not None and alias.externalizable


# ---------------------------------------------------------------------------
# Decoding

#: Traits (AMF3 3.12): class name, sealed member names, dynamic, externalizable.
_Traits = Tuple[str, Tuple[str, ...], bool, bool]
_ANONYMOUS_TRAITS: _Traits = ("", (), True, False)


class Decoder(DecoderBase):
    """AMF3 3: read values from ``data`` at ``offset``, with one set of reference tables.

    :meth:`read_value`, :meth:`read_u29` and :meth:`read_bytes` are also what an
    externalizable reader (:func:`register_externalizable`) uses.  After a
    :class:`DecodeError` the decoder must not be used again.
    """

    __slots__ = ("_strings", "_objects", "_traits")
    error = DecodeError
    _PAST_END = "{length}-byte string runs past the end of the input ({clause})"

    def __init__(self, data: Buffer, offset: int = 0, *, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        super().__init__(data, offset, max_depth)
        self._strings: List[str] = []
        self._objects: List[Any] = []
        self._traits: List[_Traits] = []

    def read_value(self) -> Any:
        """Read one value at :attr:`offset` and move past it."""
        start = self.offset
        try:
            return self._read_value()
        except (struct.error, IndexError):
            raise DecodeError("truncated value: input ends inside it", start) from None

    def read_u29(self) -> int:
        """AMF3 1.3.1: one variable-length unsigned 29-bit integer."""
        try:
            return self._read_u29()
        except IndexError:
            raise DecodeError("truncated U29 (AMF3 1.3.1)", self.offset) from None

    def read_bytes(self, count: int) -> bytes:
        """``count`` raw bytes."""
        end = self.offset + count
        if count < 0 or end > len(self.data):
            raise DecodeError(f"{count} bytes wanted, {self.remaining} left", self.offset)
        start, self.offset = self.offset, end
        return self.data[start:end]

    # -- internals ----------------------------------------------------------

    def _read_value(self) -> Any:
        data = self.data
        offset = self.offset
        if offset >= len(data):
            raise self._error("truncated input: a value marker was expected (AMF3 3.1)")
        marker = data[offset]
        self.offset = offset + 1
        # The most frequent markers are read inline, without a table lookup and call.
        if marker == 0x06:  # AMF3 3.8
            return self._read_string_vr()
        if marker == 0x05:  # AMF3 3.7
            self.offset = offset + 9
            return _DOUBLE.unpack_from(data, offset + 1)[0]
        if marker < 0x04:  # AMF3 3.2-3.5: undefined, null, false, true
            return _CONSTANTS[marker]
        if marker == 0x04:
            return self._read_integer()
        if marker >= _READERS_END:
            raise self._error(f"unknown AMF3 marker 0x{marker:02x} (AMF3 3.1)", offset)
        # AMF3 2.2: every other type starts with a U29 whose low bit says value or reference.
        offset += 1
        header = data[offset]
        if header < 0x80:  # the common one-byte U29, read inline
            self.offset = offset + 1
        else:
            header = self._read_u29()
        if header & 1:
            return _TABLED_READERS[marker - _FIRST_TABLED](self, header, offset)
        index = header >> 1
        objects = self._objects
        if index < len(objects):
            return objects[index]
        raise self._bad_reference("object", index, len(objects), "AMF3 2.2", offset)

    def _read_u29(self) -> int:
        """AMF3 1.3.1: 7 bits per byte while the high bit is set; a 4th byte gives all 8."""
        data = self.data
        offset = self.offset
        byte = data[offset]
        if byte < 0x80:
            self.offset = offset + 1
            return byte
        value = (byte & 0x7F) << 7
        byte = data[offset + 1]
        if byte < 0x80:
            self.offset = offset + 2
            return value | byte
        value = (value | (byte & 0x7F)) << 7
        byte = data[offset + 2]
        if byte < 0x80:
            self.offset = offset + 3
            return value | byte
        value = (value | (byte & 0x7F)) << 8  # AMF3 1.3.1: the 4th byte is a full 8 bits
        self.offset = offset + 4
        return value | data[offset + 3]

    def _read_string_vr(self) -> str:
        """AMF3 1.3.2: UTF-8-vr, a string-table reference or a literal."""
        data = self.data
        offset = self.offset
        header = data[offset]
        if header < 0x80:  # the common one-byte U29, read inline
            self.offset = offset + 1
        else:
            header = self._read_u29()
        if not header & 1:  # U29S-ref
            index = header >> 1
            strings = self._strings
            if index < len(strings):
                return strings[index]
            raise self._bad_reference("string", index, len(strings), "AMF3 1.3.2", offset)
        if header == 1:  # AMF3 1.3.2: the empty string is never a table entry
            return ""
        # The usual literal is read inline; _read_text reads a faulty one to report it.
        start = self.offset
        end = start + (header >> 1)
        try:
            text = data[start:end].decode("utf-8") if end <= len(data) else None
        except UnicodeDecodeError:
            text = None
        if text is None:
            return self._read_text(header >> 1, "AMF3 1.3.2")  # raises
        self.offset = end
        self._strings.append(text)
        return text

    def _bad_reference(self, what: str, index: int, size: int, clause: str, offset: int) -> _shared.DecodeError:
        """AMF3 2.2: the error for a reference past the end of a table of ``size`` entries."""
        entries = what.rstrip("s") + "s"
        return self._error(f"{what} reference {index} out of range: {size} {entries} so far ({clause})", offset)

    def _read_integer(self) -> int:
        """AMF3 3.6: a U29 holding a signed 29-bit value."""
        value = self._read_u29()
        if value & 0x10000000:  # AMF3 3.6: sign-extend from bit 28
            value -= 0x20000000
        return value

    # The readers below get the U29 header of a value (not a reference, AMF3 2.2) and
    # its offset; _read_value read it.

    def _read_xml_document(self, header: int, offset: int) -> Any:
        """AMF3 3.9: U29X-value then UTF-8 bytes; object table, not string table."""
        return self._new_object(XMLDocument(self._read_text(header >> 1, "AMF3 3.9")))

    def _read_xml(self, header: int, offset: int) -> Any:
        """AMF3 3.13: as XMLDocument."""
        return self._new_object(XML(self._read_text(header >> 1, "AMF3 3.13")))

    def _read_date(self, header: int, offset: int) -> Any:
        """AMF3 3.10: U29D-value (flag only) then a double of ms since the epoch, UTC."""
        ms_offset = self.offset
        (ms,) = _DOUBLE.unpack_from(self.data, ms_offset)
        self.offset = ms_offset + 8
        return self._new_object(ms_to_datetime(ms, ms_offset, DecodeError, "AMF3 3.10"))

    def _read_byte_array(self, header: int, offset: int) -> Any:
        """AMF3 3.14: U29B-value (length) then raw bytes."""
        length = header >> 1
        start = self.offset
        end = start + length
        if end > len(self.data):
            raise self._error(f"ByteArray of {length} bytes runs past the end (AMF3 3.14)", offset)
        self.offset = end
        return self._new_object(self.data[start:end])

    def _new_object(self, value: Any) -> Any:
        """AMF3 2.2: ``value`` joins the object table."""
        self._objects.append(value)
        return value

    def _read_array(self, header: int, offset: int) -> Any:
        """AMF3 3.11: dense count, associative (key, value)* up to 0x01, then dense values."""
        count = header >> 1
        if count > len(self.data) - self.offset:  # each dense value takes >= 1 byte
            raise self._error(
                f"array count {count} exceeds the {len(self.data) - self.offset} bytes left"
                " (AMF3 3.11)",
                offset,
            )
        self._enter()
        objects = self._objects
        slot = len(objects)
        objects.append(None)  # AMF3 2.2: the table slot is taken before the members
        read_value = self._read_value
        key = self._read_string_vr()
        result: Union[List[Any], ECMAArray]
        if not key:
            dense: List[Any] = []
            objects[slot] = result = dense
            self._read_values(dense.append, count)
        else:
            mixed = ECMAArray()
            objects[slot] = result = mixed
            read_key = self._read_string_vr
            while key:
                mixed[key] = read_value()
                key = read_key()
            for index in range(count):
                mixed[index] = read_value()
        self._depth -= 1
        return result

    def _read_traits(self, header: int, offset: int) -> _Traits:
        """AMF3 3.12: a traits reference, externalizable traits, or inline traits."""
        if not header & 2:  # U29O-traits-ref
            index = header >> 2
            traits = self._traits
            if index < len(traits):
                return traits[index]
            raise self._bad_reference("traits", index, len(traits), "AMF3 3.12", offset)
        if header & 4:  # U29O-traits-ext
            entry: _Traits = (self._read_string_vr(), (), False, True)
        else:  # U29O-traits: bit 3 is the dynamic flag, the rest the sealed count
            sealed_count = header >> 4
            class_name = self._read_string_vr()
            if sealed_count > len(self.data) - self.offset:  # each name takes >= 1 byte
                raise self._error(
                    f"sealed member count {sealed_count} exceeds the bytes left (AMF3 3.12)",
                    offset,
                )
            read = self._read_string_vr
            sealed = tuple([read() for _ in range(sealed_count)])
            entry = (class_name, sealed, bool(header & 8), False)
        if entry == _ANONYMOUS_TRAITS:
            entry = _ANONYMOUS_TRAITS  # share the common tuple
        self._traits.append(entry)
        return entry

    def _read_object(self, header: int, offset: int) -> Any:
        """AMF3 3.12: traits, then sealed values, then dynamic members."""
        class_name, sealed, dynamic, externalizable = self._read_traits(header, offset)
        self._enter()
        objects = self._objects
        alias = _shared.ALIASES.get(class_name) if class_name else None
        if alias is not None and alias.externalizable and not externalizable:
            alias = None  # sent with ordinary traits: keep it as a TypedObject
        if externalizable:
            if alias is None or alias.reader is None:
                raise self._error(
                    f"externalizable class {class_name!r} has no registered reader (AMF3 3.12)",
                    offset,
                )
            slot = len(objects)
            objects.append(None)
            value = alias.reader(self)
            objects[slot] = value
            self._depth -= 1
            return value
        read_value = self._read_value
        target: Dict[str, Any]
        if alias is not None:
            instance = _shared.new_alias_instance(alias, offset, DecodeError)
            objects.append(instance)
            target = {}
        else:
            instance = target = TypedObject(class_name) if class_name else {}
            objects.append(instance)
        for name in sealed:
            target[name] = read_value()
        if dynamic:  # dynamic members: (UTF-8-vr name, value)* up to UTF-8-empty
            read_key = self._read_string_vr
            name = read_key()
            while name:
                target[name] = read_value()
                name = read_key()
        if alias is not None:
            _shared.apply_alias(alias, instance, target, offset, DecodeError)
        self._depth -= 1
        return instance

    def _read_vector_header(self, header: int, item_size: int, clause: str) -> Tuple[int, bool]:
        """AMF3 3.15, 3.16: the count of a vector or dictionary, then its U8 flag."""
        count = header >> 1
        fixed = self.data[self.offset]  # fixed-vector U8
        self.offset += 1
        if count * item_size > len(self.data) - self.offset:
            raise self._error(
                f"vector of {count} items needs {count * item_size} bytes,"
                f" {len(self.data) - self.offset} left ({clause})"
            )
        return count, fixed != 0

    def _read_numeric_vector(self, header: int, kind: type, code: str) -> Any:
        """AMF3 3.15: Vector.<int>, <uint> or <Number>, unpacked from the buffer at once."""
        size = struct.calcsize(">" + code)
        count, fixed = self._read_vector_header(header, size, "AMF3 3.15")
        start = self.offset
        self.offset = start + count * size
        return self._new_object(kind(struct.unpack_from(f">{count}{code}", self.data, start), fixed))

    def _read_vector_object(self, header: int, offset: int) -> Any:
        """AMF3 3.15: Vector.<T>: type name then full AMF3 values."""
        count, fixed = self._read_vector_header(header, 1, "AMF3 3.15")
        self._enter()
        vector = self._new_object(VectorObject((), self._read_string_vr(), fixed))
        self._read_values(vector.append, count)
        self._depth -= 1
        return vector

    def _read_dictionary(self, header: int, offset: int) -> Any:
        """AMF3 3.16: entry count, weak-keys U8, then (key, value) pairs."""
        count, weak = self._read_vector_header(header, 2, "AMF3 3.16")  # a pair takes >= 2 bytes
        self._enter()
        dictionary = self._new_object(Dictionary((), weak))
        entries = dictionary.entries
        read_value = self._read_value
        for _ in range(count):
            key = read_value()
            entries.append((key, read_value()))
        self._depth -= 1
        return dictionary


_Reader = Callable[[Decoder, int, int], Any]

#: The values AMF3 3.2-3.5 stand for (markers 0x00-0x03); 0x04-0x06 are read in _read_value.
_CONSTANTS: Tuple[Any, ...] = (UNDEFINED, None, False, True)
#: Markers from here on start with a U29 that is a reference or a value (AMF3 2.2).
_FIRST_TABLED = 0x07
#: Readers of those values, indexed by marker - 0x07 (AMF3 3.1).
_TABLED_READERS: Tuple[_Reader, ...] = (
    Decoder._read_xml_document,  # 0x07 AMF3 3.9
    Decoder._read_date,  # 0x08 AMF3 3.10
    Decoder._read_array,  # 0x09 AMF3 3.11
    Decoder._read_object,  # 0x0A AMF3 3.12
    Decoder._read_xml,  # 0x0B AMF3 3.13
    Decoder._read_byte_array,  # 0x0C AMF3 3.14
    lambda decoder, header, _: decoder._read_numeric_vector(header, VectorInt, "i"),  # 0x0D AMF3 3.15
    lambda decoder, header, _: decoder._read_numeric_vector(header, VectorUInt, "I"),  # 0x0E AMF3 3.15
    lambda decoder, header, _: decoder._read_numeric_vector(header, VectorDouble, "d"),  # 0x0F AMF3 3.15
    Decoder._read_vector_object,  # 0x10 AMF3 3.15
    Decoder._read_dictionary,  # 0x11 AMF3 3.16
)
_READERS_END = _FIRST_TABLED + len(_TABLED_READERS)


# ---------------------------------------------------------------------------
# Encoding


def _u29(value: int) -> bytes:
    """AMF3 1.3.1: the 1-4 byte form of 0 <= value <= 0x1FFFFFFF."""
    if value < 0x80:
        return bytes((value,))
    if value < 0x4000:
        return bytes((value >> 7 | 0x80, value & 0x7F))
    if value < 0x200000:
        return bytes((value >> 14 | 0x80, (value >> 7) & 0x7F | 0x80, value & 0x7F))
    if value <= MAX_U29:
        return bytes(
            (value >> 22 | 0x80, (value >> 15) & 0x7F | 0x80, (value >> 8) & 0x7F | 0x80, value & 0xFF)
        )
    raise EncodeError(f"{value} does not fit a U29 (at most 0x1FFFFFFF, AMF3 1.3.1)")


#: One-byte U29s, the common case for lengths and small references.
_U29_SMALL = tuple(bytes((n,)) for n in range(0x80))
#: Traits key of a plain dict: anonymous, dynamic, no sealed members.
_ANONYMOUS_KEY = ("", (), True, False)


class Encoder:
    """AMF3 3: write values into one buffer with one set of reference tables (AMF3 2.2).

    The tables are used automatically: repeated strings, repeated instances
    (including cycles) and repeated traits are written as references.
    :meth:`write_value`, :meth:`write_u29` and :meth:`write_bytes` are also what an
    externalizable writer uses.  After an :class:`EncodeError` discard the encoder.
    """

    __slots__ = ("max_depth", "_buffer", "_strings", "_objects", "_keep", "_traits", "_depth")

    def __init__(self, *, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.max_depth = _shared.check_depth(max_depth)
        self._buffer = bytearray()
        self._strings: Dict[str, int] = {}
        self._objects: Dict[int, int] = {}  # id(obj) -> index
        self._keep: List[Any] = []  # keeps ids valid while the table lives
        self._traits: Dict[Tuple[Any, ...], int] = {}
        self._depth = 0

    def write_value(self, value: Any) -> None:
        """Append the encoding of ``value``."""
        (_WRITERS.get(type(value)) or _writer_for(value))(self, value)

    def write_u29(self, value: int) -> None:
        """AMF3 1.3.1: one variable-length unsigned 29-bit integer."""
        self._buffer += _u29(value)

    def write_bytes(self, data: Buffer) -> None:
        """Raw bytes."""
        self._buffer += data

    def getvalue(self) -> bytes:
        """Everything written so far."""
        return bytes(self._buffer)

    # -- internals ----------------------------------------------------------

    def _write_string_vr(self, value: str) -> None:
        """AMF3 1.3.2: a string-table reference, or a literal that joins the table."""
        if not value:
            self._buffer.append(_EMPTY)  # never referenced (AMF3 1.3.2)
            return
        strings = self._strings
        index = strings.get(value)
        if index is not None:
            self._buffer += _U29_SMALL[index << 1] if index < 0x40 else _u29(index << 1)
            return
        raw = value.encode("utf-8")
        length = len(raw)
        if length > MAX_LENGTH:  # pragma: no cover - needs a 256 MiB string
            raise EncodeError("string longer than 2**28-1 bytes (AMF3 1.3.2)")
        if len(strings) <= MAX_LENGTH:
            strings[value] = len(strings)
        self._buffer += (_U29_SMALL[length << 1 | 1] if length < 0x40 else _u29(length << 1 | 1)) + raw

    def _begin_object(self, marker: int, value: Any) -> bool:
        """AMF3 2.2: write ``marker``, then U29O-ref and return True if this instance was
        written before."""
        self._buffer.append(marker)
        key = id(value)
        index = self._objects.get(key)
        if index is not None:
            self._buffer += _u29(index << 1)
            return True
        index = len(self._keep)
        self._keep.append(value)
        if index <= MAX_LENGTH:
            self._objects[key] = index
        return False

    def _enter(self) -> None:
        if self._depth >= self.max_depth:
            raise EncodeError(f"value nested deeper than max_depth={self.max_depth}")
        self._depth += 1

    def _write_undefined(self, value: Any) -> None:
        """AMF3 3.2."""
        self._buffer.append(0x00)

    def _write_null(self, value: None) -> None:
        """AMF3 3.3."""
        self._buffer.append(0x01)

    def _write_bool(self, value: bool) -> None:
        """AMF3 3.4 / 3.5."""
        self._buffer.append(0x03 if value else 0x02)

    def _write_int(self, value: int) -> None:
        """AMF3 3.6: 29-bit signed when it fits, else a double (AMF3 3.7)."""
        if MIN_INTEGER <= value <= MAX_INTEGER:
            self._buffer += b"\x04" + _u29(value & MAX_U29)
            return
        try:
            self._buffer += _DOUBLE_PACK(0x05, float(value))  # AMF3 3.6: out of range
        except OverflowError:
            raise EncodeError(f"{value!r} does not fit a double (AMF3 3.7)") from None

    def _write_float(self, value: float) -> None:
        """AMF3 3.7."""
        self._buffer += _DOUBLE_PACK(0x05, value)

    def _write_str(self, value: str) -> None:
        """AMF3 3.8."""
        self._buffer.append(0x06)
        self._write_string_vr(value)

    def _write_xml(self, value: str) -> None:
        """AMF3 3.9 (XMLDocument, marker 0x07) and 3.13 (XML, 0x0B): U29X-value, UTF-8."""
        kind, marker, clause = ("XMLDocument", 0x07, "3.9") if isinstance(value, XMLDocument) else ("XML", 0x0B, "3.13")
        if self._begin_object(marker, value):
            return
        raw = value.encode("utf-8")
        if len(raw) > MAX_LENGTH:  # pragma: no cover - needs 256 MiB
            raise EncodeError(f"{kind} longer than 2**28-1 bytes (AMF3 {clause})")
        self._buffer += _u29(len(raw) << 1 | 1) + raw

    def _write_date(self, value: _dt.datetime) -> None:
        """AMF3 3.10: flag 0x01, then ms since the epoch."""
        ms = datetime_to_ms(value, EncodeError, "AMF3 3.10")
        if self._begin_object(0x08, value):
            return
        self._buffer += _DOUBLE_PACK(0x01, ms)  # U29D-value: only the low bit is used

    def _write_byte_array(self, value: Buffer) -> None:
        """AMF3 3.14."""
        if self._begin_object(0x0C, value):
            return
        length = len(value) if not isinstance(value, memoryview) else value.nbytes
        self._buffer += _u29(length << 1 | 1)
        self._buffer += value

    def _write_list(self, value: Union[List[Any], Tuple[Any, ...]]) -> None:
        """AMF3 3.11: a dense array (empty associative part)."""
        if self._begin_object(0x09, value):
            return
        self._enter()
        self._buffer += _u29(len(value) << 1 | 1) + b"\x01"
        write = self.write_value
        for item in value:
            write(item)
        self._depth -= 1

    def _write_ecma_array(self, value: Dict[Any, Any]) -> None:
        """AMF3 3.11: keys 0..n-1 form the dense part, the others the associative part."""
        if self._begin_object(0x09, value):
            return
        self._enter()
        dense = 0
        while dense in value:
            dense += 1
        self._buffer += _u29(dense << 1 | 1)
        write = self.write_value
        for key, item in value.items():
            if type(key) is int and 0 <= key < dense:
                continue
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise EncodeError(f"array key {key!r} is neither str nor int (AMF3 3.11)")
            name = str(key)
            if not name:
                raise EncodeError("an associative array key cannot be empty (AMF3 3.11)")
            self._write_string_vr(name)
            write(item)
        self._buffer.append(_EMPTY)
        for index in range(dense):
            write(value[index])
        self._depth -= 1

    def _write_traits(self, key: Tuple[Any, ...]) -> None:
        """AMF3 3.12: a traits reference if these traits were sent, else inline traits."""
        index = self._traits.get(key)
        if index is not None:
            self._buffer += _u29(index << 2 | 1)  # U29O-traits-ref
            return
        self._traits[key] = len(self._traits)
        class_name, sealed, dynamic, externalizable = key
        if externalizable:
            self._buffer.append(0x07)  # U29O-traits-ext
        else:
            self._buffer += _u29(len(sealed) << 4 | (0x08 if dynamic else 0) | 0x03)
        self._write_string_vr(class_name)
        for name in sealed:
            self._write_string_vr(name)

    def _write_dynamic(self, items: Iterable[Tuple[Any, Any]]) -> None:
        """AMF3 3.12: (UTF-8-vr name, value)* then UTF-8-empty."""
        write_name = self._write_string_vr
        write = self.write_value
        strings = self._strings
        buffer = self._buffer
        for name, item in items:
            if type(name) is not str:
                if not isinstance(name, str):
                    raise EncodeError(f"object member name {name!r} is not a str (AMF3 3.12)")
                name = str(name)
            if not name:
                raise EncodeError("an object member name cannot be empty (AMF3 3.12)")
            index = strings.get(name)
            if index is not None and index < 0x40:  # fast path: a short string reference
                buffer += _U29_SMALL[index << 1]
            else:
                write_name(name)
            write(item)
        buffer.append(_EMPTY)

    def _write_dict(self, value: Dict[Any, Any]) -> None:
        """AMF3 3.12: an anonymous dynamic object (traits "" with no sealed members)."""
        buffer = self._buffer
        if self._begin_object(0x0A, value):
            return
        self._enter()
        index = self._traits.get(_ANONYMOUS_KEY)
        if index is not None and index < 0x20:
            buffer += _U29_SMALL[index << 2 | 1]
        else:
            self._write_traits(_ANONYMOUS_KEY)
        self._write_dynamic(value.items())
        self._depth -= 1

    def _write_typed_object(self, value: TypedObject) -> None:
        """AMF3 3.12: a typed object, every property dynamic."""
        if self._begin_object(0x0A, value):
            return
        self._enter()
        self._write_traits((value.class_name, (), True, False))
        self._write_dynamic(value.items())
        self._depth -= 1

    def _write_registered(self, value: Any) -> None:
        """AMF3 3.12: an instance of a registered class (typed or externalizable)."""
        alias = _shared.CLASSES[type(value)]
        if self._begin_object(0x0A, value):
            return
        self._enter()
        if alias.writer is not None:
            self._write_traits((alias.alias, (), False, True))
            alias.writer(self, value)
        else:
            self._write_traits((alias.alias, alias.sealed, alias.dynamic, False))
            write = self.write_value
            for name in alias.sealed:
                write(getattr(value, name))
            if alias.dynamic:
                self._write_dynamic(alias.dynamic_properties(value).items())
        self._depth -= 1

    def _write_avmplus(self, value: AVMPlus) -> None:
        """AMF0 3.1's wrapper means nothing inside AMF3: write the wrapped value."""
        self.write_value(value.value)

    def _write_vector(self, value: _Vector) -> None:
        """AMF3 3.15: count, fixed flag, then the items (numeric ones packed at once)."""
        marker, code = _VECTOR_CODES[type(value)]
        if self._begin_object(marker, value):
            return
        count = len(value)
        if count > MAX_LENGTH:  # pragma: no cover - needs 2**28 items
            raise EncodeError("vector longer than 2**28-1 items (AMF3 3.15)")
        self._buffer += _u29(count << 1 | 1) + (b"\x01" if value.fixed else b"\x00")
        try:
            self._buffer += struct.pack(f">{count}{code}", *value)
        except struct.error as exc:
            raise EncodeError(f"{type(value).__name__} item out of range: {exc} (AMF3 3.15)") from None

    def _write_vector_object(self, value: VectorObject) -> None:
        """AMF3 3.15: Vector.<T>: count, fixed flag, type name, then full values."""
        if self._begin_object(0x10, value):
            return
        self._enter()
        self._buffer += _u29(len(value) << 1 | 1) + (b"\x01" if value.fixed else b"\x00")
        self._write_string_vr(value.type_name)
        write = self.write_value
        for item in value:
            write(item)
        self._depth -= 1

    def _write_dictionary(self, value: Dictionary) -> None:
        """AMF3 3.16: count, weak-keys flag, then pairs; int keys are sent as strings."""
        if self._begin_object(0x11, value):
            return
        self._enter()
        self._buffer += _u29(len(value.entries) << 1 | 1) + (b"\x01" if value.weak_keys else b"\x00")
        write = self.write_value
        for key, item in value.entries:
            if type(key) is int:
                key = str(key)  # AMF3 3.16: integer keys go as their decimal string
            write(key)
            write(item)
        self._depth -= 1


_VECTOR_CODES: Dict[type, Tuple[int, str]] = {
    VectorInt: (0x0D, "i"),
    VectorUInt: (0x0E, "I"),
    VectorDouble: (0x0F, "d"),
}

_Writer = Callable[[Encoder, Any], None]

#: Writers keyed by exact type; subclasses and registered classes go through _writer_for.
_WRITERS: Dict[type, _Writer] = {
    type(None): Encoder._write_null,
    Undefined: Encoder._write_undefined,
    bool: Encoder._write_bool,
    int: Encoder._write_int,
    float: Encoder._write_float,
    str: Encoder._write_str,
    XMLDocument: Encoder._write_xml,
    XML: Encoder._write_xml,
    _dt.datetime: Encoder._write_date,
    list: Encoder._write_list,
    tuple: Encoder._write_list,
    ECMAArray: Encoder._write_ecma_array,
    dict: Encoder._write_dict,
    TypedObject: Encoder._write_typed_object,
    bytes: Encoder._write_byte_array,
    bytearray: Encoder._write_byte_array,
    memoryview: Encoder._write_byte_array,
    VectorInt: Encoder._write_vector,
    VectorUInt: Encoder._write_vector,
    VectorDouble: Encoder._write_vector,
    VectorObject: Encoder._write_vector_object,
    Dictionary: Encoder._write_dictionary,
    AVMPlus: Encoder._write_avmplus,
}

#: The types whose subclasses are written as they are, most specific first (bool before int).
_SUBCLASS_WRITERS: Tuple[Tuple[type, _Writer], ...] = tuple((base, _WRITERS[base]) for base in (
    bool, int, float, XMLDocument, XML, str, ECMAArray, TypedObject, dict, list, tuple, _dt.datetime,
    bytes, bytearray, memoryview,
))  # fmt: skip


def _writer_for(value: Any) -> _Writer:
    """The writer for a value whose exact type is not in the table."""
    kind = type(value)
    if kind in _shared.CLASSES:
        return Encoder._write_registered
    for base, writer in _SUBCLASS_WRITERS:
        if isinstance(value, base):
            return writer
    raise EncodeError(f"cannot encode a {kind.__qualname__} as AMF3")


# ---------------------------------------------------------------------------
# One-call helpers


def encode(value: Any) -> bytes:
    """AMF3 3: the bytes of one value, with fresh reference tables (AMF3 4.2)."""
    return encode_all((value,))


def encode_all(values: Iterable[Any]) -> bytes:
    """AMF3 3: several values sharing one set of reference tables."""
    encoder = Encoder()
    for value in values:
        encoder.write_value(value)
    return bytes(encoder._buffer)


def decode(data: Buffer, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """AMF3 3: exactly one value; bytes left after it are a :class:`DecodeError`."""
    return Decoder(data, max_depth=max_depth).read_exactly_one()


def decode_all(data: Buffer, *, max_depth: int = DEFAULT_MAX_DEPTH) -> List[Any]:
    """AMF3 3: every value in ``data``, sharing one set of reference tables."""
    return Decoder(data, max_depth=max_depth).read_all()
