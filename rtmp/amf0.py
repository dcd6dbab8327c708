"""AMF0 2-3: the Action Message Format version 0 (Adobe, December 2007), encoder and decoder.

AMF0 is the value format of RTMP command and data messages (types 20 and 18).
Every value starts with a one-byte marker (AMF0 2.1); all integers are
big-endian (AMF0 1.3).  Objects, typed objects, ECMA arrays and strict arrays
are "complex objects": they enter a reference table in the order their
serialisation begins, and a later occurrence of the same instance may be sent
as a two-byte index (AMF0 2.9).  The AVM+ marker 0x11 switches to AMF3 for
exactly one value (AMF0 3.1).

Python mapping (the public contract, ``refs/api.md``)::

    AMF0                   Python
    number        0x00     float (int and float encode as numbers)
    boolean       0x01     bool
    string        0x02     str (encoded as long string 0x0C above 65535 bytes)
    object        0x03     dict (str keys, order kept)
    null          0x05     None
    undefined     0x06     UNDEFINED
    reference     0x07     the very object referenced (identity is kept)
    ECMA array    0x08     ECMAArray (a dict)
    strict array  0x0A     list (tuples encode too)
    date          0x0B     datetime, timezone-aware, UTC
    long string   0x0C     str
    unsupported   0x0D     UNSUPPORTED
    XML document  0x0F     XMLDocument (a str)
    typed object  0x10     an instance of the registered class, else TypedObject
    AVM+          0x11     the AMF3 value that follows (rtmp.amf3)

Values that only AMF3 can express (``bytes``, AMF3 XML, vectors, dictionaries,
externalizable classes) and values wrapped in :class:`AVMPlus` are written as
0x11 followed by one AMF3 value, as Flash Player does (AMF0 3.1).

The pieces both formats share (the ``UNDEFINED`` sentinel, the value types, the
class-alias registry and the error classes) live in :mod:`rtmp.amf_types` and
are re-exported here (``rtmp.amf3.DecodeError`` is a subclass of
:class:`DecodeError`, so one ``except`` covers a value that switched to AMF3).
This module imports :mod:`rtmp.amf3` for the AVM+ switch; AMF3 never imports AMF0.

The decoder is hardened for hostile input: every length and count is checked
against the bytes that remain before anything is allocated, nesting is bounded
(``max_depth``, default 64) so recursion never reaches Python's limit, and every
failure is a :class:`DecodeError` naming the offset and the clause.
"""

from __future__ import annotations

import datetime as _dt
import enum
import logging
import struct
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from . import amf3 as _amf3
from .amf_types import ALIASES as _ALIASES
from .amf_types import CLASSES as _CLASSES
from .amf_types import (
    Buffer,
    DecoderBase,
    DEFAULT_MAX_DEPTH,
    MAX_DEPTH_LIMIT,
    UNDEFINED,
    UNSUPPORTED,
    AVMPlus,
    ClassAlias,
    DecodeError,
    ECMAArray,
    EncodeError,
    TypedObject,
    Undefined,
    Unsupported,
    XMLDocument,
    apply_alias,
    datetime_to_ms,
    get_class_alias,
    ms_to_datetime,
    new_alias_instance,
    register_class,
    unregister_class,
)
from .amf_types import check_depth as _check_depth

__all__ = [
    "Marker",
    "UNDEFINED",
    "UNSUPPORTED",
    "Undefined",
    "Unsupported",
    "ECMAArray",
    "TypedObject",
    "XMLDocument",
    "AVMPlus",
    "ClassAlias",
    "register_class",
    "unregister_class",
    "get_class_alias",
    "DecodeError",
    "EncodeError",
    "Decoder",
    "Encoder",
    "encode",
    "encode_all",
    "encode_string",
    "decode",
    "decode_all",
    "DEFAULT_MAX_DEPTH",
    "MAX_DEPTH_LIMIT",
]

logger = logging.getLogger(__name__)


class Marker(enum.IntEnum):
    """AMF0 2.1: the one-byte type markers (and AMF0 3.1, the AVM+ switch)."""

    NUMBER = 0x00  # AMF0 2.2
    BOOLEAN = 0x01  # AMF0 2.3
    STRING = 0x02  # AMF0 2.4
    OBJECT = 0x03  # AMF0 2.5
    MOVIECLIP = 0x04  # AMF0 2.6, reserved
    NULL = 0x05  # AMF0 2.7
    UNDEFINED = 0x06  # AMF0 2.8
    REFERENCE = 0x07  # AMF0 2.9
    ECMA_ARRAY = 0x08  # AMF0 2.10
    OBJECT_END = 0x09  # AMF0 2.11
    STRICT_ARRAY = 0x0A  # AMF0 2.12
    DATE = 0x0B  # AMF0 2.13
    LONG_STRING = 0x0C  # AMF0 2.14
    UNSUPPORTED = 0x0D  # AMF0 2.15
    RECORDSET = 0x0E  # AMF0 2.16, reserved
    XML_DOCUMENT = 0x0F  # AMF0 2.17
    TYPED_OBJECT = 0x10  # AMF0 2.18
    AVMPLUS = 0x11  # AMF0 3.1


#: AMF0 1.3.1: UTF-8 strings carry a U16 byte length, long strings a U32.
MAX_U16 = 0xFFFF
MAX_U32 = 0xFFFFFFFF

_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE = struct.Struct(">dh")  # AMF0 2.13: ms since epoch, then the S16 time-zone
_NUMBER_PACK = struct.Struct(">Bd").pack  # marker and double in one call
_STRING_HEAD = struct.Struct(">BH").pack
_LONG_HEAD = struct.Struct(">BI").pack
_REFERENCE_PACK = struct.Struct(">BH").pack
_DATE_PACK = struct.Struct(">Bdh").pack

_OBJECT_END = b"\x00\x00\x09"  # AMF0 2.11: UTF-8-empty then the object-end marker


# ---------------------------------------------------------------------------
# Decoding


class Decoder(DecoderBase):
    """AMF0 2: read values one after another from ``data``, starting at ``offset``.

    The complex-object reference table (AMF0 2.9) lives as long as the decoder, so
    a decoder is one AMF0 context; RTMP uses one per message payload.  After a
    :class:`DecodeError` the decoder must not be used again.

    ``strict=False`` tolerates an ECMA array whose end marker is missing at the end
    of the input (see :meth:`_read_ecma_array`).
    """

    __slots__ = ("strict", "_references")
    error = DecodeError

    def __init__(
        self,
        data: Buffer,
        offset: int = 0,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        strict: bool = False,
    ) -> None:
        super().__init__(data, offset, max_depth)
        self.strict = strict
        self._references: List[Any] = []

    def read_value(self) -> Any:
        """Read one value at :attr:`offset` and move past it."""
        self._depth = 0
        start = self.offset
        try:
            return self._read_value()
        except (struct.error, IndexError):
            raise DecodeError("truncated value: input ends inside it", start) from None
        except RecursionError:  # pragma: no cover - max_depth keeps us far from it
            raise DecodeError("value nested too deeply", start) from None

    def read_all(self) -> List[Any]:
        """Read values until the input ends (all in this decoder's context): what
        :meth:`read_value` gives for each, in one loop (a command payload's few values)."""
        values: List[Any] = []
        append = values.append
        read = self._read_value
        size = len(self.data)
        start = self.offset
        try:
            while self.offset < size:
                start = self.offset
                self._depth = 0
                append(read())
        except (struct.error, IndexError):
            raise DecodeError("truncated value: input ends inside it", start) from None
        except RecursionError:  # pragma: no cover - max_depth keeps us far from it
            raise DecodeError("value nested too deeply", start) from None
        return values

    # -- internals ----------------------------------------------------------

    def _read_value(self) -> Any:
        offset = self.offset
        try:
            marker = self.data[offset]
        except IndexError:
            raise self._error("truncated input: a value marker was expected (AMF0 2.1)") from None
        self.offset = offset + 1
        if marker < _READERS_LEN:
            reader = _READERS[marker]
            if reader is not None:
                return reader(self)
            raise self._error(
                f"marker 0x{marker:02x} ({Marker(marker).name.lower()}) is reserved"
                f" and not supported (AMF0 2.6, 2.16)",
                offset,
            )
        raise self._error(f"unknown AMF0 marker 0x{marker:02x} (AMF0 2.1)", offset)

    def _read_utf8(self) -> str:
        """AMF0 1.3.1: U16 byte length, then that many UTF-8 bytes."""
        offset = self.offset
        (length,) = _U16.unpack_from(self.data, offset)
        self.offset = offset + 2
        return self._read_text(length, "AMF0 2.4", offset, "AMF0 1.3.1")

    def _read_utf8_long(self, clause: str) -> str:
        """AMF0 1.3.1: U32 byte length, then that many UTF-8 bytes."""
        offset = self.offset
        (length,) = _U32.unpack_from(self.data, offset)
        self.offset = offset + 4
        return self._read_text(length, clause, offset)

    def _read_number(self) -> float:
        """AMF0 2.2: an 8-byte IEEE-754 double."""
        offset = self.offset
        self.offset = offset + 8
        value: float = _DOUBLE.unpack_from(self.data, offset)[0]
        return value

    def _read_boolean(self) -> bool:
        """AMF0 2.3: one byte, zero is false and anything else true."""
        offset = self.offset
        value = self.data[offset : offset + 1]
        if not value:
            raise self._error("truncated boolean (AMF0 2.3)")
        self.offset = offset + 1
        return value != b"\x00"

    def _read_long_string(self) -> str:
        """AMF0 2.14."""
        return self._read_utf8_long("AMF0 2.14")

    def _read_xml_document(self) -> XMLDocument:
        """AMF0 2.17: always the long string form."""
        return XMLDocument(self._read_utf8_long("AMF0 2.17"))

    def _read_properties(
        self, target: Dict[Any, Any], clause: str, end_optional_after: Optional[int] = None
    ) -> None:
        """AMF0 2.5: (UTF-8 name, value)* up to UTF-8-empty + object-end (AMF0 2.11).

        Number, string and boolean values are read inline: they are nearly every
        property of RTMP command objects and onMetaData.  ``end_optional_after``
        lets the input end without the end marker once that many properties were
        read (the ECMA array deviation of :meth:`_read_ecma_array`).
        """
        data = self.data
        size = len(data)
        offset = self.offset
        while True:
            if offset + 2 > size:
                if (
                    offset == size
                    and end_optional_after is not None
                    and len(target) >= end_optional_after
                ):
                    logger.warning("ECMA array without end marker at offset %d accepted", offset)
                    self.offset = offset
                    return
                raise self._error(f"truncated property list: no end marker ({clause})", offset)
            length = data[offset] << 8 | data[offset + 1]  # the UTF-8 name's U16 length
            start = offset + 2
            if length:
                end = start + length
                if end > size:
                    raise self._error(
                        f"property name of {length} bytes runs past the end of the input"
                        f" ({clause})",
                        offset,
                    )
                try:
                    name = data[start:end].decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise self._error(
                        f"property name is not valid UTF-8: {exc.reason} (AMF0 1.3.1)", start
                    ) from None
            else:
                end = start
                name = ""
            if end >= size:
                raise self._error(f"truncated property list: no end marker ({clause})", end)
            marker = data[end]
            if marker == 0x00:  # AMF0 2.2
                offset = end + 9
                if offset > size:
                    raise self._error("truncated number (AMF0 2.2)", end)
                target[name] = _DOUBLE.unpack_from(data, end + 1)[0]
            elif marker == 0x02:  # AMF0 2.4
                start = end + 3
                if start > size:
                    raise self._error("truncated string (AMF0 2.4)", end)
                offset = start + (data[end + 1] << 8 | data[end + 2])
                if offset > size:
                    raise self._error(
                        f"string of {offset - start} bytes runs past the end of the input"
                        " (AMF0 2.4)",
                        end + 1,
                    )
                try:
                    target[name] = data[start:offset].decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise self._error(
                        f"string is not valid UTF-8: {exc.reason} (AMF0 1.3.1)", start
                    ) from None
            elif marker == 0x01 and end + 2 <= size:  # AMF0 2.3
                target[name] = data[end + 1] != 0
                offset = end + 2
            elif marker == 0x09:  # AMF0 2.11
                if length:  # the object end may only follow the empty name
                    raise self._error(
                        f"object-end marker after the non-empty name {name!r} (AMF0 2.11)", end
                    )
                self.offset = end + 1
                return
            else:
                self.offset = end
                target[name] = self._read_value()
                offset = self.offset

    def _read_object(self) -> Dict[str, Any]:
        """AMF0 2.5: an anonymous object; it enters the reference table first (AMF0 2.9)."""
        self._enter()
        obj: Dict[str, Any] = {}
        self._references.append(obj)
        self._read_properties(obj, "AMF0 2.5")
        self._depth -= 1
        return obj

    def _read_typed_object(self) -> Any:
        """AMF0 2.18: class name, then properties; a registered class is instantiated."""
        self._enter()
        class_name = self._read_utf8()
        alias = _ALIASES.get(class_name)
        if alias is None or alias.externalizable:
            typed = TypedObject(class_name)
            self._references.append(typed)
            self._read_properties(typed, "AMF0 2.18")
            self._depth -= 1
            return typed
        obj = new_alias_instance(alias, self.offset)
        self._references.append(obj)
        props: Dict[str, Any] = {}
        self._read_properties(props, "AMF0 2.18")
        apply_alias(alias, obj, props, self.offset)
        self._depth -= 1
        return obj

    def _read_ecma_array(self) -> ECMAArray:
        """AMF0 2.10: U32 associative-count (a hint only), then properties and the end marker."""
        self._enter()
        (count,) = _U32.unpack_from(self.data, self.offset)
        self.offset += 4
        array = ECMAArray()
        self._references.append(array)
        # Deviation (ffmpeg, FLV writers): some onMetaData arrays end with the input
        # instead of 00 00 09 once `count` entries are read; accepted unless strict.
        self._read_properties(array, "AMF0 2.10", None if self.strict else count)
        self._depth -= 1
        return array

    def _read_strict_array(self) -> List[Any]:
        """AMF0 2.12: U32 count, then exactly that many values."""
        self._enter()
        offset = self.offset
        (count,) = _U32.unpack_from(self.data, offset)
        self.offset = offset + 4
        if count > len(self.data) - self.offset:  # every value takes at least one byte
            raise self._error(
                f"strict array count {count} exceeds the {len(self.data) - self.offset}"
                f" bytes left (AMF0 2.12)",
                offset,
            )
        array: List[Any] = []
        self._references.append(array)
        self._read_values(array.append, count)
        self._depth -= 1
        return array

    def _read_reference(self) -> Any:
        """AMF0 2.9: U16 index into the complex-object table, from 0."""
        offset = self.offset
        (index,) = _U16.unpack_from(self.data, offset)
        self.offset = offset + 2
        if index >= len(self._references):
            raise self._error(
                f"reference {index} out of range: {len(self._references)} objects so far"
                f" (AMF0 2.9)",
                offset,
            )
        return self._references[index]

    def _read_date(self) -> _dt.datetime:
        """AMF0 2.13: a double of ms since the epoch, then the S16 time-zone, ignored."""
        offset = self.offset
        ms, _timezone = _DATE.unpack_from(self.data, offset)
        self.offset = offset + 10
        return ms_to_datetime(ms, offset)  # AMF0 2.13: time-zone should not be used on read

    def _read_avmplus(self) -> Any:
        """AMF0 3.1: exactly one AMF3 value follows, with fresh AMF3 reference tables."""
        self._enter()
        decoder = _amf3.Decoder(
            self.data, self.offset, max_depth=max(1, self.max_depth - self._depth)
        )
        value = decoder.read_value()
        self.offset = decoder.offset
        self._depth -= 1
        return value


_Reader = Callable[[Decoder], Any]

#: Readers indexed by marker (AMF0 2.1); None marks the reserved markers.
_READERS: Tuple[Optional[_Reader], ...] = (
    Decoder._read_number,  # 0x00 AMF0 2.2
    Decoder._read_boolean,  # 0x01 AMF0 2.3
    Decoder._read_utf8,  # 0x02 AMF0 2.4
    Decoder._read_object,  # 0x03 AMF0 2.5
    None,  # 0x04 movieclip, reserved (AMF0 2.6)
    lambda decoder: None,  # 0x05 null, AMF0 2.7
    lambda decoder: UNDEFINED,  # 0x06 AMF0 2.8
    Decoder._read_reference,  # 0x07 AMF0 2.9
    Decoder._read_ecma_array,  # 0x08 AMF0 2.10
    None,  # 0x09 object end: only valid inside a property list (AMF0 2.11)
    Decoder._read_strict_array,  # 0x0A AMF0 2.12
    Decoder._read_date,  # 0x0B AMF0 2.13
    Decoder._read_long_string,  # 0x0C AMF0 2.14
    lambda decoder: UNSUPPORTED,  # 0x0D AMF0 2.15
    None,  # 0x0E recordset, reserved (AMF0 2.16)
    Decoder._read_xml_document,  # 0x0F AMF0 2.17
    Decoder._read_typed_object,  # 0x10 AMF0 2.18
    Decoder._read_avmplus,  # 0x11 AMF0 3.1
)
_READERS_LEN = len(_READERS)


# ---------------------------------------------------------------------------
# Encoding


class Encoder:
    """AMF0 2: write values one after another into one buffer and one AMF0 context.

    With ``use_references`` (the default, as AMF0 2.9 asks) a complex object met a
    second time - including through a cycle - is written as a reference marker.
    Without it every occurrence is written in full and a cycle is an
    :class:`EncodeError`; that suits peers whose AMF0 parser has no reference type.
    """

    __slots__ = ("use_references", "max_depth", "_buffer", "_references", "_keep", "_depth", "_active")

    def __init__(self, *, use_references: bool = True, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.use_references = use_references
        self.max_depth = _check_depth(max_depth)
        self._buffer = bytearray()
        self._references: Dict[int, int] = {}  # id(obj) -> index (AMF0 2.9)
        self._keep: List[Any] = []  # keeps ids valid while the table lives
        self._active: Dict[int, Any] = {}  # objects being written (cycle check)
        self._depth = 0

    def write_value(self, value: Any) -> None:
        """Append the encoding of ``value``."""
        self._depth = 0
        self._active.clear()
        self._write(value)

    def getvalue(self) -> bytes:
        """Everything written so far."""
        return bytes(self._buffer)

    # -- internals ----------------------------------------------------------

    def _write(self, value: Any) -> None:
        (_WRITERS.get(type(value)) or _writer_for(value))(self, value)

    def _write_number(self, value: float) -> None:
        """AMF0 2.2."""
        self._buffer += _NUMBER_PACK(0x00, value)

    def _write_int(self, value: int) -> None:
        """AMF0 2.2: ints go as doubles (exact up to 2**53)."""
        try:
            number = float(value)
        except OverflowError:
            raise EncodeError(f"{value!r} does not fit a double (AMF0 2.2)") from None
        self._buffer += _NUMBER_PACK(0x00, number)

    def _write_bool(self, value: bool) -> None:
        """AMF0 2.3."""
        self._buffer += b"\x01\x01" if value else b"\x01\x00"

    def _write_str(self, value: str) -> None:
        """AMF0 2.4, or AMF0 2.14 when the UTF-8 form needs more than 65535 bytes."""
        self._buffer += encode_string(value)

    def _write_xml_document(self, value: str) -> None:
        """AMF0 2.17: always with a U32 length."""
        raw = value.encode("utf-8")
        if len(raw) > MAX_U32:  # pragma: no cover - needs a 4 GiB string
            raise EncodeError("XML document longer than 4 GiB (AMF0 2.17)")
        self._buffer += _LONG_HEAD(0x0F, len(raw)) + raw

    def _write_null(self, value: None) -> None:
        """AMF0 2.7."""
        self._buffer.append(0x05)

    def _write_undefined(self, value: Undefined) -> None:
        """AMF0 2.8."""
        self._buffer.append(0x06)

    def _write_unsupported(self, value: Unsupported) -> None:
        """AMF0 2.15."""
        self._buffer.append(0x0D)

    def _write_date(self, value: _dt.datetime) -> None:
        """AMF0 2.13: time-zone written as 0x0000, as the spec asks."""
        self._buffer += _DATE_PACK(0x0B, datetime_to_ms(value), 0)

    def _begin_complex(self, value: Any) -> bool:
        """AMF0 2.9: write a reference and return True if ``value`` was seen before."""
        key = id(value)
        if self.use_references:
            index = self._references.get(key)
            if index is not None:
                self._buffer += _REFERENCE_PACK(0x07, index)
                return True
            index = len(self._keep)
            self._keep.append(value)
            if index <= MAX_U16:  # later objects are never referenced, but still counted
                self._references[key] = index
        elif key in self._active:
            raise EncodeError(
                f"reference cycle through a {type(value).__name__}: cannot encode"
                " without references (AMF0 2.9)"
            )
        if self._depth >= self.max_depth:
            raise EncodeError(f"value nested deeper than max_depth={self.max_depth}")
        self._depth += 1
        self._active[key] = value
        return False

    def _end_complex(self, value: Any) -> None:
        self._depth -= 1
        del self._active[id(value)]

    def _write_properties(self, items: Iterable[Tuple[Any, Any]], keys_as_str: bool) -> None:
        """AMF0 2.5: (UTF-8 name, value)* then 00 00 09 (AMF0 2.11)."""
        buffer = self._buffer
        write = self._write
        for key, item in items:
            if type(key) is not str:
                if isinstance(key, str) or (
                    keys_as_str and isinstance(key, int) and not isinstance(key, bool)
                ):
                    key = str(key)
                else:
                    raise EncodeError(f"object key {key!r} is not a str (AMF0 2.5)")
            raw = key.encode("utf-8")
            if len(raw) > MAX_U16:
                raise EncodeError("property name longer than 65535 bytes (AMF0 1.3.1)")
            buffer += _U16.pack(len(raw)) + raw
            # Fast paths for the usual property values of RTMP commands.
            kind = type(item)
            if kind is str and len(item) < 16384:  # at most 3 bytes per char: fits a U16
                raw = item.encode("utf-8")
                buffer += _STRING_HEAD(0x02, len(raw)) + raw
            elif kind is float:
                buffer += _NUMBER_PACK(0x00, item)
            else:
                write(item)
        buffer += _OBJECT_END

    def _write_dict(self, value: Dict[Any, Any]) -> None:
        """AMF0 2.5: an anonymous object."""
        if self._begin_complex(value):
            return
        self._buffer.append(0x03)
        self._write_properties(value.items(), False)
        self._end_complex(value)

    def _write_ecma_array(self, value: Dict[Any, Any]) -> None:
        """AMF0 2.10: the count is the number of entries; int keys go as decimal strings."""
        if self._begin_complex(value):
            return
        self._buffer += _LONG_HEAD(0x08, len(value))
        self._write_properties(value.items(), True)
        self._end_complex(value)

    def _write_typed_object(self, value: TypedObject) -> None:
        """AMF0 2.18: class name, then the properties."""
        self._write_typed(value, value.class_name, value.items())

    def _write_typed(self, value: Any, class_name: str, items: Iterable[Tuple[Any, Any]]) -> None:
        if self._begin_complex(value):
            return
        raw = class_name.encode("utf-8")
        if len(raw) > MAX_U16:
            raise EncodeError("class name longer than 65535 bytes (AMF0 2.18)")
        self._buffer += _STRING_HEAD(0x10, len(raw)) + raw
        self._write_properties(items, False)
        self._end_complex(value)

    def _write_registered(self, value: Any) -> None:
        """AMF0 2.18: an instance of a class registered with :func:`register_class`."""
        alias = _CLASSES[type(value)]
        if alias.externalizable:  # AMF3 3.12 only: switch (AMF0 3.1)
            self._write_avmplus(AVMPlus(value))
            return
        self._write_typed(value, alias.alias, alias.properties(value).items())

    def _write_list(self, value: Union[List[Any], Tuple[Any, ...]]) -> None:
        """AMF0 2.12: U32 count, then every element."""
        if self._begin_complex(value):
            return
        if len(value) > MAX_U32:  # pragma: no cover - needs 4 billion elements
            raise EncodeError("strict array longer than 2**32-1 (AMF0 2.12)")
        self._buffer += _LONG_HEAD(0x0A, len(value))
        write = self._write
        for item in value:
            write(item)
        self._end_complex(value)

    def _write_avmplus(self, value: Any) -> None:
        """AMF0 3.1: 0x11 then one AMF3 value with fresh AMF3 tables."""
        inner = value.value if type(value) is AVMPlus else value
        if self._depth >= self.max_depth:
            raise EncodeError(f"value nested deeper than max_depth={self.max_depth}")
        encoder = _amf3.Encoder(max_depth=max(1, self.max_depth - self._depth))
        encoder.write_value(inner)
        self._buffer.append(0x11)
        self._buffer += encoder.getvalue()


_Writer = Callable[[Encoder, Any], None]

#: Writers keyed by exact type; subclasses and registered classes go through _writer_for.
_WRITERS: Dict[type, _Writer] = {
    float: Encoder._write_number,
    int: Encoder._write_int,
    bool: Encoder._write_bool,
    str: Encoder._write_str,
    type(None): Encoder._write_null,
    Undefined: Encoder._write_undefined,
    Unsupported: Encoder._write_unsupported,
    dict: Encoder._write_dict,
    ECMAArray: Encoder._write_ecma_array,
    TypedObject: Encoder._write_typed_object,
    list: Encoder._write_list,
    tuple: Encoder._write_list,
    _dt.datetime: Encoder._write_date,
    XMLDocument: Encoder._write_xml_document,
    AVMPlus: Encoder._write_avmplus,
}


def _writer_for(value: Any) -> _Writer:
    """The writer for a value whose exact type is not in the table."""
    kind = type(value)
    if kind in _CLASSES:
        return Encoder._write_registered
    if _amf3.is_amf3_only(value):  # AMF0 3.1: ByteArray, XML, vectors, dictionaries
        return Encoder._write_avmplus
    # Subclasses of the mapped types, most specific first (bool before int).
    for base, writer in _SUBCLASS_WRITERS:
        if isinstance(value, base):
            return writer
    raise EncodeError(f"cannot encode a {kind.__qualname__} as AMF0")


#: The types whose subclasses are written as they are, most specific first (bool before int).
_SUBCLASS_WRITERS: Tuple[Tuple[type, _Writer], ...] = tuple((base, _WRITERS[base]) for base in (
    bool, int, float, XMLDocument, str, ECMAArray, TypedObject, dict, list, tuple, _dt.datetime,
))  # fmt: skip


# ---------------------------------------------------------------------------
# One-call helpers


def encode(value: Any, *, use_references: bool = True) -> bytes:
    """AMF0 2: the bytes of one value."""
    return encode_all((value,), use_references=use_references)


def encode_string(value: str) -> bytes:
    """AMF0 2.4: the bytes of one string (AMF0 2.14, a long string, when its UTF-8 form
    needs more than 65535 bytes); what :func:`encode` gives for a ``str``, without an
    :class:`Encoder` (strings are never referenced, AMF0 2.9)."""
    raw = value.encode("utf-8")
    length = len(raw)
    if length <= MAX_U16:
        return _STRING_HEAD(0x02, length) + raw
    if length <= MAX_U32:
        return _LONG_HEAD(0x0C, length) + raw
    raise EncodeError("string longer than 4 GiB (AMF0 2.14)")  # pragma: no cover - 4 GiB


def encode_all(values: Iterable[Any], *, use_references: bool = True) -> bytes:
    """AMF0 2: several values in one context (references may span them), as in an RTMP payload."""
    encoder = Encoder(use_references=use_references)
    for value in values:
        encoder.write_value(value)
    return bytes(encoder._buffer)


def decode(data: Buffer, *, max_depth: int = DEFAULT_MAX_DEPTH, strict: bool = False) -> Any:
    """AMF0 2: exactly one value; bytes left after it are a :class:`DecodeError`."""
    return Decoder(data, max_depth=max_depth, strict=strict).read_exactly_one()


def decode_all(data: Buffer, *, max_depth: int = DEFAULT_MAX_DEPTH, strict: bool = False) -> List[Any]:
    """AMF0 2: every value in ``data``, in one context (one reference table)."""
    return Decoder(data, max_depth=max_depth, strict=strict).read_all()

