"""The pieces AMF0 and AMF3 share: value types, the class-alias registry, errors, dates.

Both codecs import this module and neither imports the other's private names
(rtmp.amf0 imports rtmp.amf3 for the AVM+ switch of AMF0 3.1; rtmp.amf3 needs
nothing from rtmp.amf0).  ``rtmp.amf0`` and ``rtmp.amf3`` re-export every public
name here, so ``rtmp.amf0.UNDEFINED is rtmp.amf3.UNDEFINED``.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, TypeVar, Union

from .errors import RTMPError

#: Nesting allowed by default (objects and arrays inside each other).
DEFAULT_MAX_DEPTH = 64
#: The largest ``max_depth`` accepted: each level costs a few Python frames, and
#: this keeps the deepest decode well below the interpreter's recursion limit.
MAX_DEPTH_LIMIT = 200

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MILLISECOND = _dt.timedelta(milliseconds=1)


# ---------------------------------------------------------------------------
# Errors


class DecodeError(RTMPError, ValueError):
    """The bytes are not valid AMF; ``offset`` is where the problem was found."""

    def __init__(self, message: str, offset: Optional[int] = None) -> None:
        if offset is not None:
            message = f"offset {offset}: {message}"
        super().__init__(message)
        self.offset = offset


class EncodeError(RTMPError, ValueError):
    """A Python value cannot be written as AMF (unsupported type, cycle, limit)."""


# ---------------------------------------------------------------------------
# Value types shared by AMF0 and AMF3


_S = TypeVar("_S", bound="_Sentinel")


class _Sentinel:
    """A class with one instance, which pickles and prints as its module-level name."""

    __slots__ = ()
    _name = ""
    _instance: Optional[Any] = None

    def __new__(cls: type[_S]) -> _S:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        instance: _S = cls._instance
        return instance

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name


class Undefined(_Sentinel):
    """AMF0 2.8 / AMF3 3.2: ActionScript ``undefined``; use the ``rtmp.amf0.UNDEFINED`` singleton."""

    __slots__ = ()
    _name = "UNDEFINED"

    def __bool__(self) -> bool:
        return False


class Unsupported(_Sentinel):
    """AMF0 2.15: the placeholder for a value that could not be serialised (``rtmp.amf0.UNSUPPORTED``)."""

    __slots__ = ()
    _name = "UNSUPPORTED"


#: The undefined value (AMF0 2.8, AMF3 3.2): one object for both codecs.
UNDEFINED = Undefined()
#: The unsupported marker (AMF0 2.15), decoded and encoded as this sentinel.
UNSUPPORTED = Unsupported()


class ValueEquality:
    """For the ``dict`` and ``list`` subclasses whose ``__eq__`` compares more than the items:
    ``!=`` negates that ``__eq__`` (the built-in ``__ne__`` would not call it) and, being
    mutable, they have no hash."""

    __slots__ = ()

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]


class ECMAArray(Dict[Any, Any]):
    """AMF0 2.10: an associative array (``onMetaData`` is usually one); a ``dict``.

    In AMF0 every key goes on the wire as a string (ints are written in base 10).
    In AMF3 (AMF3 3.11) the keys ``0..n-1`` form the dense part and the others the
    associative part; an AMF3 array with an associative part decodes to this type.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"ECMAArray({dict.__repr__(self)})"


class TypedObject(ValueEquality, Dict[str, Any]):
    """AMF0 2.18 / AMF3 3.12: an object of a named class that has no registered Python class.

    A ``dict`` of its properties with the ActionScript class name in ``class_name``;
    two typed objects are equal when both the class name and the properties are.
    """

    __slots__ = ("class_name",)

    def __init__(self, class_name: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.class_name = class_name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TypedObject):
            return self.class_name == other.class_name and dict.__eq__(self, other)
        return False

    def __repr__(self) -> str:
        return f"TypedObject({self.class_name!r}, {dict.__repr__(self)})"


class XMLDocument(str):
    """AMF0 2.17 / AMF3 3.9: a legacy ``flash.xml.XMLDocument``, carried as its text."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"XMLDocument({str.__repr__(self)})"


class AVMPlus:
    """AMF0 3.1: wrap a value to write it as 0x11 followed by its AMF3 encoding."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AVMPlus) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"AVMPlus({self.value!r})"


# ---------------------------------------------------------------------------
# Class aliases (AMF0 2.18, AMF3 3.12)


class ClassAlias:
    """The mapping between a Python class and an ActionScript class name.

    ``sealed`` lists the attributes sent as AMF3 sealed members, in order; when
    ``dynamic`` is true every other instance attribute (``vars(obj)``) is sent as a
    dynamic member.  ``reader``/``writer`` make the class externalizable (AMF3
    3.12): ``reader(decoder)`` returns a new instance read from an
    ``rtmp.amf3.Decoder``, ``writer(encoder, obj)`` writes it to an
    ``rtmp.amf3.Encoder``.  AMF0 has no externalizable form, so AMF0 writes such
    objects through the AVM+ switch.
    """

    __slots__ = ("cls", "alias", "sealed", "dynamic", "reader", "writer")

    def __init__(
        self,
        cls: type,
        alias: str,
        sealed: Iterable[str] = (),
        dynamic: bool = True,
        reader: Optional[Callable[[Any], Any]] = None,
        writer: Optional[Callable[[Any, Any], None]] = None,
    ) -> None:
        if not isinstance(alias, str) or not alias:
            raise ValueError("a class alias must be a non-empty string")
        if (reader is None) != (writer is None):
            raise ValueError("an externalizable class needs both a reader and a writer")
        self.cls = cls
        self.alias = alias
        self.sealed: Tuple[str, ...] = tuple(sealed)
        self.dynamic = dynamic
        self.reader = reader
        self.writer = writer

    @property
    def externalizable(self) -> bool:
        """AMF3 3.12: the class writes its own bytes (IExternalizable)."""
        return self.reader is not None

    def properties(self, obj: Any) -> Dict[str, Any]:
        """All members of ``obj`` to send: sealed ones first, then its other attributes."""
        props = {name: getattr(obj, name) for name in self.sealed}
        props.update(self.dynamic_properties(obj))
        return props

    def dynamic_properties(self, obj: Any) -> Dict[str, Any]:
        """AMF3 3.12: the members sent after the sealed ones (none unless ``dynamic``)."""
        if not self.dynamic:
            return {}
        sealed = self.sealed
        return {
            name: value
            for name, value in getattr(obj, "__dict__", {}).items()
            if name not in sealed and not name.startswith("_")
        }

    def new_instance(self) -> Any:
        """A blank instance, filled in by :meth:`apply` (``__init__`` is not called)."""
        cls: Any = self.cls
        return cls.__new__(cls)

    def apply(self, obj: Any, props: Dict[str, Any]) -> None:
        """Set the decoded members on ``obj``."""
        for name, value in props.items():
            setattr(obj, name, value)

    def __repr__(self) -> str:
        return f"ClassAlias({self.cls.__qualname__}, {self.alias!r})"


#: The registry (AMF0 2.18, AMF3 3.12): ActionScript name -> alias, Python class -> alias.
ALIASES: Dict[str, ClassAlias] = {}
CLASSES: Dict[type, ClassAlias] = {}


def register_class(
    cls: type,
    alias: str,
    *,
    sealed: Iterable[str] = (),
    dynamic: bool = True,
    reader: Optional[Callable[[Any], Any]] = None,
    writer: Optional[Callable[[Any, Any], None]] = None,
) -> ClassAlias:
    """AMF0 2.18 / AMF3 3.12: send instances of ``cls`` as typed objects named ``alias``.

    Decoding an object of that class name creates an instance of ``cls`` without
    calling ``__init__`` and sets its members as attributes.  Registering the same
    alias or class again replaces the earlier registration.
    """
    if not isinstance(cls, type):
        raise TypeError("register_class needs a class")
    entry = ClassAlias(cls, alias, sealed, dynamic, reader, writer)
    unregister_class(alias)
    unregister_class(cls)
    ALIASES[alias] = entry
    CLASSES[cls] = entry
    return entry


def unregister_class(alias_or_class: Union[str, type]) -> None:
    """Forget a registration, by alias or by class (no error if there is none)."""
    if isinstance(alias_or_class, str):
        entry = ALIASES.pop(alias_or_class, None)
        if entry is not None:
            CLASSES.pop(entry.cls, None)
    else:
        entry = CLASSES.pop(alias_or_class, None)
        if entry is not None:
            ALIASES.pop(entry.alias, None)


def get_class_alias(alias_or_class: Union[str, type]) -> Optional[ClassAlias]:
    """The registration for an ActionScript class name or a Python class, if any."""
    if isinstance(alias_or_class, str):
        return ALIASES.get(alias_or_class)
    return CLASSES.get(alias_or_class)


def new_alias_instance(
    alias: ClassAlias, offset: int, error: type[DecodeError] = DecodeError
) -> Any:
    """A blank instance of a registered class, or a DecodeError if it cannot be made."""
    try:
        return alias.new_instance()
    except Exception as exc:  # the class is the user's: report, do not crash the decoder
        raise error(f"cannot create a {alias.cls.__qualname__}: {exc}", offset) from exc


def apply_alias(
    alias: ClassAlias,
    obj: Any,
    props: Dict[str, Any],
    offset: int,
    error: type[DecodeError] = DecodeError,
) -> None:
    """Set decoded members on an instance of a registered class, as a DecodeError on failure."""
    try:
        alias.apply(obj, props)
    except Exception as exc:  # read-only attribute, __slots__ mismatch...
        raise error(
            f"cannot set the members of a {alias.cls.__qualname__}: {exc}", offset
        ) from exc


# ---------------------------------------------------------------------------
# Limits and dates


def check_depth(max_depth: int) -> int:
    """A valid ``max_depth`` (1..MAX_DEPTH_LIMIT), else ValueError."""
    if not isinstance(max_depth, int) or not 1 <= max_depth <= MAX_DEPTH_LIMIT:
        raise ValueError(f"max_depth must be an int in 1..{MAX_DEPTH_LIMIT}")
    return max_depth


def ms_to_datetime(
    ms: float, offset: int, error: type[DecodeError] = DecodeError, clause: str = "AMF0 2.13"
) -> _dt.datetime:
    """AMF0 2.13 / AMF3 3.10: milliseconds since 1970-01-01 UTC to an aware datetime."""
    try:
        return _EPOCH + _dt.timedelta(milliseconds=ms)
    except (OverflowError, ValueError):  # NaN, infinities, beyond year 1..9999
        raise error(f"date {ms!r} ms is outside what datetime can hold ({clause})", offset) from None


def datetime_to_ms(
    value: _dt.datetime, error: type[EncodeError] = EncodeError, clause: str = "AMF0 2.13"
) -> float:
    """AMF0 2.13 / AMF3 3.10: an aware datetime to milliseconds since the epoch."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise error(f"cannot encode naive datetime {value!r}: AMF dates are UTC instants ({clause})")
    return float((value - _EPOCH) / _MILLISECOND)


# ---------------------------------------------------------------------------
# What both decoders do the same way

Buffer = Union[bytes, bytearray, memoryview]


class DecoderBase:
    """The input, position and nesting bookkeeping the AMF0 and AMF3 decoders share.

    Subclasses set :attr:`error` to their :class:`DecodeError` class and implement
    ``read_value``.
    """

    __slots__ = ("data", "offset", "max_depth", "_depth")

    error: type[DecodeError] = DecodeError

    def __init__(self, data: Buffer, offset: int, max_depth: int) -> None:
        self.data: bytes = data if type(data) is bytes else bytes(data)
        if not 0 <= offset <= len(self.data):
            raise ValueError(f"offset {offset} is outside the {len(self.data)}-byte input")
        self.offset = offset
        self.max_depth = check_depth(max_depth)
        self._depth = 0

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self.data) - self.offset

    def at_end(self) -> bool:
        """True when every byte has been read."""
        return self.offset >= len(self.data)

    def read_value(self) -> Any:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def read_all(self) -> List[Any]:
        """Read values until the input ends (all in this decoder's context)."""
        values = []
        while self.offset < len(self.data):
            values.append(self.read_value())
        return values

    def read_exactly_one(self) -> Any:
        """One value; bytes left after it are a :class:`DecodeError` (AMF0 2, AMF3 3)."""
        value = self.read_value()
        if self.offset != len(self.data):
            raise self.error(f"{len(self.data) - self.offset} bytes left after the value", self.offset)
        return value

    def _error(self, message: str, offset: Optional[int] = None) -> DecodeError:
        return self.error(message, self.offset if offset is None else offset)

    #: How :meth:`_read_text` words a string that runs past the input.
    _PAST_END = "string of {length} bytes runs past the end of the input ({clause})"

    def _read_text(
        self, length: int, clause: str, at: Optional[int] = None, utf8_clause: Optional[str] = None
    ) -> str:
        """AMF0 1.3.1 / AMF3 1.3.2: ``length`` bytes of UTF-8 at :attr:`offset`, as text.

        An overrun is reported at ``at`` (where the length was read; the text's start by
        default) citing ``clause``; invalid UTF-8 cites ``utf8_clause`` (``clause`` by default).
        """
        data = self.data
        start = self.offset
        end = start + length
        if end > len(data):
            raise self._error(self._PAST_END.format(length=length, clause=clause), start if at is None else at)
        self.offset = end
        try:
            return data[start:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._error(f"string is not valid UTF-8: {exc.reason} ({utf8_clause or clause})", start) from None

    def _read_values(self, append: Callable[[Any], Any], count: int) -> None:
        """``count`` values one after another (an array's or vector's items), each to ``append``."""
        read_value = self._read_value
        for _ in range(count):
            append(read_value())

    def _read_value(self) -> Any:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def _enter(self) -> None:
        if self._depth >= self.max_depth:
            raise self._error(f"nesting deeper than max_depth={self.max_depth}", self.offset - 1)
        self._depth += 1

