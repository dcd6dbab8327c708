"""RTMP 7.2.1 and 7.2.2: each request a peer sends, as a small typed value.

A :class:`rtmp.commands.Command` carries an RPC's envelope (name, transaction id,
message stream id, AMF0 or AMF3) and its values as sent.  This module reads those
values into frozen dataclasses, one per command (:class:`Connect`, :class:`Publish`,
:class:`Play`, ...), and encodes them back with one method, :meth:`Request.to_message`
(the bytes :mod:`rtmp.commands`' encoders write: values, not encoders, differ).

``from_command`` is the one place where the lenient defaults live, the ones real peers
need and the server has always applied: a missing or non-string stream name reads as
"", a missing or non-finite number as the clause's default (play: start -2, duration
-1; pause: -1; seek: 0), a missing flag as true.  :func:`decode_request` maps a command
name to its type through one table (:data:`REQUEST_TYPES`) and returns ``None`` for
any other name (replies, ``onStatus``, application calls).  :func:`check_depth`
refuses a decoded command nested deeper than a limit (AMF0 2.5 / AMF3 3.12).

It is sans-IO: no sockets, no clock.  (Kept apart from :mod:`rtmp.commands`, which it
imports, so that no import cycle arises.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, TypeVar

from .commands import (
    AMF0,
    AMF3,
    CLOSE,
    CLOSE_STREAM,
    CONNECT,
    CREATE_STREAM,
    DELETE_STREAM,
    FC_PUBLISH,
    FC_SUBSCRIBE,
    FC_UNPUBLISH,
    GET_STREAM_LENGTH,
    PAUSE,
    PLAY,
    PLAY2,
    PUBLISH,
    RECEIVE_AUDIO,
    RECEIVE_VIDEO,
    RELEASE_STREAM,
    SEEK,
    Command,
    connect_command_object,
    encode_command,
)
from .errors import LimitExceededError
from .message import Message, StreamType

__all__ = [
    "CONTAINER_MARKERS",
    "REQUEST_TYPES",
    "Close",
    "CloseStream",
    "CAPS_EX_MOD_EX",
    "CAPS_EX_MULTITRACK",
    "CAPS_EX_RECONNECT",
    "CAPS_EX_TIMESTAMP_NANO_OFFSET",
    "FOURCC_CAN_DECODE",
    "FOURCC_CAN_ENCODE",
    "FOURCC_CAN_FORWARD",
    "FOURCC_WILDCARD",
    "Connect",
    "CreateStream",
    "EnhancedCaps",
    "DeleteStream",
    "FCPublish",
    "FCSubscribe",
    "FCUnpublish",
    "GetStreamLength",
    "Pause",
    "Play",
    "Play2",
    "Publish",
    "ReceiveAudio",
    "ReceiveVideo",
    "ReleaseStream",
    "Request",
    "Seek",
    "check_depth",
    "decode_request",
    "finite_number",
    "nesting",
    "split_query",
]

_R = TypeVar("_R", bound="Request")


def split_query(value: str) -> tuple[str, str]:
    """``"name?a=b"`` -> ``("name", "a=b")`` (stream and app names may carry a query)."""
    name, _, query = value.partition("?")
    return name, query


def finite_number(value: Any, default: float) -> float:
    """An AMF Number argument as a float; ``default`` when absent, not a number (booleans
    included) or not finite: AMF0 2.2 Infinity and NaN mean nothing as an id or a time."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    number = float(value)
    return number if math.isfinite(number) else default


def _arg(cmd: Command, index: int) -> Any:
    return cmd.arguments[index] if len(cmd.arguments) > index else None


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _optional_number(value: Any) -> float | None:
    number = finite_number(value, math.nan)
    return None if math.isnan(number) else number


class Request:
    """A decoded RTMP 7.2 request; the subclasses are frozen dataclasses.

    ``name`` is the command name.  ``netstream`` is True for the RTMP 7.2.2
    commands, sent with transaction id 0 on the stream's message stream id (default 1);
    NetConnection calls (RTMP 7.2.1) go on message stream 0 with a transaction id.
    """

    name: ClassVar[str]
    netstream: ClassVar[bool] = False

    def __init_subclass__(cls, name: str = "", **kwargs: Any) -> None:
        """``class Play(Request, name=PLAY)``: the command name of a request type."""
        super().__init_subclass__(**kwargs)
        if name:
            cls.name = name

    @classmethod
    def from_command(cls: type[_R], cmd: Command) -> _R:
        """Read ``cmd`` (whose name is ``name``) with today's lenient defaults; a request
        without values (close, createStream, closeStream) ignores any that came."""
        return cls()

    def arguments(self) -> list[Any]:
        """The values after the (null) command object, as they are sent."""
        return []

    def to_message(
        self,
        transaction_id: float = 0,
        *,
        object_encoding: int = AMF0,
        message_stream_id: int | None = None,
    ) -> Message:
        """RTMP 7.1.1: this request as a command message (type 20, or 17 for AMF3):
        ``name, transaction_id, command object, *arguments()``, as the encoders of
        :mod:`rtmp.commands` (``publish``, ``play``, ...) write it.

        ``message_stream_id`` defaults to 1 for a NetStream command, else 0.
        """
        return encode_command(
            self.name, transaction_id, self._command_value(), *self.arguments(),
            message_stream_id=self._stream(message_stream_id), object_encoding=object_encoding,
        )  # fmt: skip

    def _command_value(self) -> Any:
        """The command object as it is sent: null (RTMP 7.2.2; connect sends its object)."""
        return None

    def _stream(self, message_stream_id: int | None) -> int:
        if message_stream_id is not None:
            return message_stream_id
        return 1 if self.netstream else 0


# -- NetConnection (RTMP 7.2.1) ----------------------------------------------------------------


# -- Enhanced RTMP: what each side of connect can do --------------------------------------

#: ERTMP Enhancing NetConnection connect Command: ``enum CapsExMask`` (the ``capsEx`` bits).
CAPS_EX_RECONNECT = 0x01
"""Support for reconnection (``NetConnection.Connect.ReconnectRequest``)."""
CAPS_EX_MULTITRACK = 0x02
"""Support for multitrack (ERTMP Multitrack Streaming via Enhanced RTMP)."""
CAPS_EX_MOD_EX = 0x04
"""Can parse the ModEx signal (ERTMP Enhanced Video / Enhanced Audio)."""
CAPS_EX_TIMESTAMP_NANO_OFFSET = 0x08
"""Support for the TimestampOffsetNano ModEx."""
#: ERTMP Enhancing NetConnection connect Command: ``enum FourCcInfoMask``.
FOURCC_CAN_DECODE = 0x01
FOURCC_CAN_ENCODE = 0x02
FOURCC_CAN_FORWARD = 0x04
#: The FourCC that stands for every codec (in ``fourCcList`` and as an info map key).
FOURCC_WILDCARD = "*"

_FOURCC_MASKS = FOURCC_CAN_DECODE | FOURCC_CAN_ENCODE | FOURCC_CAN_FORWARD


def _dense_values(value: Any) -> list[Any]:
    """An AMF strict array as a list (an ECMA array of indices, as some encoders write
    arrays, in index order); [] for anything else."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        # ASCII digits only ("²".isdigit() is true), and short: int() of a 5,000-digit
        # string raises, and no array a peer sends has a billion entries.
        indexed = [(int(key), item) for key, item in value.items()
                   if isinstance(key, (str, int)) and _index_text(str(key))]
        return [item for _, item in sorted(indexed, key=lambda pair: pair[0])]
    return []


def _index_text(text: str) -> bool:
    """True for an array index written as text: 1 to 9 ASCII digits."""
    return 0 < len(text) <= 9 and text.isascii() and text.isdigit()


def _fourcc_text(value: Any) -> str | None:
    """A FourCC string (four characters, or the wildcard "*"), else None."""
    if isinstance(value, str) and (len(value) == 4 or value == FOURCC_WILDCARD):
        return value
    return None


def _info_map(value: Any) -> dict[str, int]:
    """``[audio|video]FourCcInfoMap``: FourCC -> FourCcInfoMask bits; entries whose key is
    no FourCC or whose value is no finite number are left out."""
    if not isinstance(value, dict):
        return {}
    result: dict[str, int] = {}
    for key, flags in value.items():
        fourcc = _fourcc_text(key)
        number = finite_number(flags, -1.0)
        if fourcc is not None and 0 <= number < 2**32:
            result[fourcc] = int(number)
    return result


@dataclass(frozen=True)
class EnhancedCaps:
    """ERTMP Enhancing NetConnection connect Command: ``fourCcList``, the
    ``videoFourCcInfoMap`` / ``audioFourCcInfoMap`` and ``capsEx`` of one side.

    A client sends them in connect's command object, a server in its ``_result``'s
    properties.  :meth:`from_object` reads them leniently (a wrong type reads as absent,
    entries that are no FourCC are skipped); :meth:`to_properties` writes them back.
    ``caps_ex`` is ``None`` when it was not sent; the maps and the list are empty then.
    """

    fourcc_list: tuple[str, ...] = ()
    video_fourcc_info_map: Mapping[str, int] = field(default_factory=dict, hash=False)
    audio_fourcc_info_map: Mapping[str, int] = field(default_factory=dict, hash=False)
    caps_ex: int | None = None

    @classmethod
    def from_object(cls, obj: Any) -> EnhancedCaps:
        """Read the four properties from a command object (or ``_result`` properties)."""
        if not isinstance(obj, dict):
            return cls()
        fourccs = (_fourcc_text(item) for item in _dense_values(obj.get("fourCcList")))
        caps = finite_number(obj.get("capsEx"), -1.0)
        return cls(
            tuple(item for item in fourccs if item is not None),
            _info_map(obj.get("videoFourCcInfoMap")),
            _info_map(obj.get("audioFourCcInfoMap")),
            int(caps) & 0xFFFFFFFF if caps >= 0 else None,
        )

    def to_properties(self) -> dict[str, Any]:
        """The properties to put in connect's command object or the ``_result``: only
        those that say something (an empty list or map is left out)."""
        props: dict[str, Any] = {}
        if self.fourcc_list:
            props["fourCcList"] = list(self.fourcc_list)  # an AMF0 strict array
        if self.video_fourcc_info_map:
            props["videoFourCcInfoMap"] = dict(self.video_fourcc_info_map)
        if self.audio_fourcc_info_map:
            props["audioFourCcInfoMap"] = dict(self.audio_fourcc_info_map)
        if self.caps_ex is not None:
            props["capsEx"] = self.caps_ex
        return props

    @property
    def enhanced(self) -> bool:
        """Whether any Enhanced RTMP capability was stated."""
        return bool(self.fourcc_list or self.video_fourcc_info_map
                    or self.audio_fourcc_info_map or self.caps_ex is not None)

    def has(self, mask: int) -> bool:
        """Whether every ``capsEx`` bit of ``mask`` is set (``CAPS_EX_RECONNECT`` ...)."""
        return self.caps_ex is not None and self.caps_ex & mask == mask

    def fourcc_flags(self, fourcc: str, *, video: bool) -> int:
        """The FourCcInfoMask bits stated for ``fourcc``: the wildcard's, when present,
        override the codec's own (ERTMP connect table); 0 when the map does not name it."""
        info = self.video_fourcc_info_map if video else self.audio_fourcc_info_map
        if FOURCC_WILDCARD in info:
            return info[FOURCC_WILDCARD] & _FOURCC_MASKS
        return info.get(fourcc, 0) & _FOURCC_MASKS

    def supports(self, fourcc: str, *, video: bool) -> bool:
        """Whether the side stated it handles ``fourcc`` at all: named (or the wildcard)
        in ``fourCcList`` or given any flag in the matching info map."""
        listed = fourcc in self.fourcc_list or FOURCC_WILDCARD in self.fourcc_list
        return listed or self.fourcc_flags(fourcc, video=video) != 0


def _number_property(key: str, doc: str) -> property:
    def get(self: Connect) -> float | None:
        return _optional_number(self.command_object.get(key))

    return property(get, doc=doc)


def _text_property(key: str, doc: str) -> property:
    def get(self: Connect) -> str | None:
        return _optional_text(self.command_object.get(key))

    return property(get, doc=doc)


@dataclass(frozen=True)
class Connect(Request, name=CONNECT):
    """RTMP 7.2.1.1: ``connect, 1, command_object, *optional_user_arguments``.

    The command object is kept as sent ({} when it is not an object); the properties
    of the RTMP 7.2.1.1 table read it leniently (a wrong type reads as ``None``, or ""
    for ``app`` and ``tcUrl``).  Build one with :meth:`create`.
    """

    command_object: dict[str, Any] = field(default_factory=dict, hash=False)
    user_arguments: tuple[Any, ...] = field(default=(), hash=False)

    @classmethod
    def create(cls, app: str, tc_url: str, *user_arguments: Any, **options: Any) -> Connect:
        """A connect whose command object :func:`rtmp.commands.connect_command_object`
        builds (same keyword options: ``flash_ver``, ``object_encoding``, ``extra``, ...)."""
        return cls(connect_command_object(app, tc_url, **options), tuple(user_arguments))

    @classmethod
    def from_command(cls, cmd: Command) -> Connect:
        obj = cmd.command_object
        return cls(dict(obj) if isinstance(obj, dict) else {}, tuple(cmd.arguments))

    def arguments(self) -> list[Any]:
        return list(self.user_arguments)

    def to_message(self, transaction_id: float = 1, **options: Any) -> Message:
        """RTMP 7.2.1.1: transaction id 1 and AMF0 unless told otherwise (options as
        :meth:`Request.to_message`)."""
        return super().to_message(transaction_id, **options)

    def _command_value(self) -> dict[str, Any]:
        return dict(self.command_object)

    @property
    def app(self) -> str:
        """``app`` as sent, query included ("" when missing or not a string)."""
        return _text(self.command_object.get("app"))

    @property
    def app_name(self) -> str:
        """The application: ``app`` without the slashes around it and without its query."""
        return split_query(self.app.strip("/"))[0].strip("/")

    @property
    def query(self) -> str:
        """What follows ``?`` in ``app`` (AUTH-ADOBE and AUTH-LLNW put their fields there)."""
        return split_query(self.app.strip("/"))[1]

    @property
    def tc_url(self) -> str:
        """``tcUrl`` ("" when missing or not a string)."""
        return _text(self.command_object.get("tcUrl"))

    @property
    def flash_ver(self) -> str | None:
        """``flashVer`` ([impl] the clients' spelling), else the table's ``flashver``."""
        obj = self.command_object
        return _optional_text(obj.get("flashVer", obj.get("flashver")))

    @property
    def object_encoding(self) -> int:
        """``objectEncoding``: 3 (AMF3) when it is exactly 3, else 0 (AMF0)."""
        return AMF3 if self.command_object.get("objectEncoding") == 3 else AMF0

    @property
    def fpad(self) -> bool | None:
        """``fpad`` (a proxy is used), when a boolean."""
        value = self.command_object.get("fpad")
        return value if isinstance(value, bool) else None

    swf_url = _text_property("swfUrl", "``swfUrl``, when a string.")
    page_url = _text_property("pageUrl", "``pageUrl``, when a string.")
    capabilities = _number_property("capabilities", "[impl] ``capabilities``, when a number.")
    audio_codecs = _number_property("audioCodecs", "``audioCodecs`` (SUPPORT_SND_*), if a number.")
    video_codecs = _number_property("videoCodecs", "``videoCodecs`` (SUPPORT_VID_*), if a number.")
    video_function = _number_property("videoFunction", "``videoFunction``, when a number.")

    @property
    def enhanced_caps(self) -> EnhancedCaps:
        """ERTMP Enhancing NetConnection connect Command: ``fourCcList``, the FourCC info
        maps and ``capsEx`` the client stated (all empty for a legacy client)."""
        return EnhancedCaps.from_object(self.command_object)


@dataclass(frozen=True)
class Close(Request, name=CLOSE):
    """RTMP 7.2.1 [spec gap]: ``close`` ends the NetConnection (named, no structure given)."""


@dataclass(frozen=True)
class CreateStream(Request, name=CREATE_STREAM):
    """RTMP 7.2.1.3: ``createStream, txn, null``; the ``_result`` carries the stream id."""


@dataclass(frozen=True)
class _NamedCall(Request):
    """A NetConnection call whose one argument is a stream name ("" when missing or
    not a string)."""

    stream_name: str = ""

    @classmethod
    def from_command(cls: type[_R], cmd: Command) -> _R:
        return cls(_text(_arg(cmd, 0)))  # type: ignore[call-arg]

    def arguments(self) -> list[Any]:
        return [self.stream_name]

    @property
    def base_name(self) -> str:
        """The stream name without its query (``"key?token=1"`` -> ``"key"``)."""
        return split_query(self.stream_name)[0]


@dataclass(frozen=True)
class ReleaseStream(_NamedCall, name=RELEASE_STREAM):
    """[impl] ffmpeg/OBS: ``releaseStream, txn, null, name`` before publishing (RTMP 7.2.1.2
    call shape)."""


@dataclass(frozen=True)
class FCPublish(_NamedCall, name=FC_PUBLISH):
    """[impl] FMLE/ffmpeg/OBS: ``FCPublish, txn, null, name``; servers answer onFCPublish."""


@dataclass(frozen=True)
class FCUnpublish(_NamedCall, name=FC_UNPUBLISH):
    """[impl] ``FCUnpublish, txn, null, name``; servers answer onFCUnpublish."""


@dataclass(frozen=True)
class FCSubscribe(_NamedCall, name=FC_SUBSCRIBE):
    """[impl] Akamai-style ``FCSubscribe, txn, null, name``; servers answer onFCSubscribe."""


@dataclass(frozen=True)
class GetStreamLength(_NamedCall, name=GET_STREAM_LENGTH):
    """[impl] ``getStreamLength, txn, null, name``: the recording's length in seconds."""


# -- NetStream (RTMP 7.2.2) --------------------------------------------------------------------


@dataclass(frozen=True)
class Publish(Request, name=PUBLISH):
    """RTMP 7.2.2.6: ``publish, 0, null, name, type`` (live, record or append).

    A missing or non-string name reads as "", a missing or non-string type as live (in
    any letter case).  Another type text reads as live with ``unknown_type`` holding
    it (Deviation (FMLE): published live, as nginx-rtmp does; a strict server refuses).
    """

    netstream: ClassVar[bool] = True
    stream_name: str = ""
    type: StreamType = StreamType.LIVE
    unknown_type: str | None = None

    @classmethod
    def from_command(cls, cmd: Command) -> Publish:
        name = _text(_arg(cmd, 0))
        type_text = _text(_arg(cmd, 1), "live")
        try:
            return cls(name, StreamType(type_text.lower()))
        except ValueError:
            return cls(name, StreamType.LIVE, type_text)

    def arguments(self) -> list[Any]:
        if self.unknown_type is not None:  # as it came
            return [self.stream_name, self.unknown_type]
        return [self.stream_name, StreamType(self.type).value]  # ValueError for another type

    @property
    def base_name(self) -> str:
        """The stream name without its query (``"key?token=1"`` -> ``"key"``)."""
        return split_query(self.stream_name)[0]

    @property
    def query(self) -> str:
        return split_query(self.stream_name)[1]


@dataclass(frozen=True)
class Play(Request, name=PLAY):
    """RTMP 7.2.2.1: ``play, 0, null, name, start, duration, reset``.

    Defaults: start -2 (live, else recorded), duration -1 (to the end), reset true.  A
    start or duration that is not a finite number reads as its default, a reset that is
    not a boolean as true.  ``reset=None`` leaves the flag out when encoding.
    """

    netstream: ClassVar[bool] = True
    stream_name: str = ""
    start: float = -2
    duration: float = -1
    reset: bool | None = True

    @classmethod
    def from_command(cls, cmd: Command) -> Play:
        reset = _arg(cmd, 3)
        return cls(
            _text(_arg(cmd, 0)),
            finite_number(_arg(cmd, 1), -2),
            finite_number(_arg(cmd, 2), -1),
            reset if isinstance(reset, bool) else True,
        )

    def arguments(self) -> list[Any]:
        args: list[Any] = [self.stream_name, self.start, self.duration]
        return args if self.reset is None else [*args, bool(self.reset)]

    @property
    def base_name(self) -> str:
        """The stream name without its query and without an ``flv:`` prefix (RTMP 7.2.2.1:
        it names the default file type)."""
        name = split_query(self.stream_name)[0]
        return name[4:] if name.lower().startswith("flv:") else name

    @property
    def query(self) -> str:
        return split_query(self.stream_name)[1]


@dataclass(frozen=True)
class Play2(Request, name=PLAY2):
    """RTMP 7.2.2.2: ``play2, 0, null, parameters``, a NetStreamPlayOptions object
    (streamName, oldStreamName, start, len, offset, transition).

    The object is kept as sent ({} when it is not an object); the properties read it
    leniently: start -2 and len -1 when absent, as play's.
    """

    netstream: ClassVar[bool] = True
    parameters: dict[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_command(cls, cmd: Command) -> Play2:
        params = _arg(cmd, 0)
        return cls(dict(params) if isinstance(params, dict) else {})

    def arguments(self) -> list[Any]:
        return [dict(self.parameters)]

    @property
    def stream_name(self) -> str | None:
        """``streamName`` when a non-empty string, else ``None``."""
        name = self.parameters.get("streamName")
        return name if isinstance(name, str) and name else None

    @property
    def old_stream_name(self) -> str | None:
        return _optional_text(self.parameters.get("oldStreamName"))

    @property
    def start(self) -> float:
        return finite_number(self.parameters.get("start"), -2)

    @property
    def duration(self) -> float:
        """``len``."""
        return finite_number(self.parameters.get("len"), -1)

    @property
    def offset(self) -> float | None:
        return _optional_number(self.parameters.get("offset"))

    @property
    def transition(self) -> Any:
        """``transition`` as sent ("switch", "swap", "stop", ...)."""
        return self.parameters.get("transition")


@dataclass(frozen=True)
class DeleteStream(Request, name=DELETE_STREAM):
    """RTMP 7.2.2.3: ``deleteStream, 0, null, stream_id``.

    A missing or non-numeric id reads as the message stream the command came on; a
    fraction is cut.  [impl] ffmpeg and librtmp send it on message stream 0, so that is
    :meth:`Request.to_message`'s default.
    """

    netstream: ClassVar[bool] = True
    stream_id: int = 0

    @classmethod
    def from_command(cls, cmd: Command) -> DeleteStream:
        default = cmd.message_stream_id
        value = cmd.arguments[0] if cmd.arguments else default
        return cls(int(finite_number(value, default)))

    def arguments(self) -> list[Any]:
        return [self.stream_id]

    def _stream(self, message_stream_id: int | None) -> int:
        return message_stream_id or 0  # [impl] the NetConnection's stream, unless told


@dataclass(frozen=True)
class CloseStream(Request, name=CLOSE_STREAM):
    """RTMP 7.2.2 [spec gap]: ``closeStream, 0, null`` on the stream: stop playing or
    publishing, keep the stream id."""

    netstream: ClassVar[bool] = True


@dataclass(frozen=True)
class _Receive(Request):
    netstream: ClassVar[bool] = True
    flag: bool = True

    @classmethod
    def from_command(cls: type[_R], cmd: Command) -> _R:
        return cls(bool(cmd.arguments[0]) if cmd.arguments else True)  # type: ignore[call-arg]

    def arguments(self) -> list[Any]:
        return [bool(self.flag)]


@dataclass(frozen=True)
class ReceiveAudio(_Receive, name=RECEIVE_AUDIO):
    """RTMP 7.2.2.4: ``receiveAudio, 0, null, flag``; a missing flag reads as true, any
    other value by its truth."""


@dataclass(frozen=True)
class ReceiveVideo(_Receive, name=RECEIVE_VIDEO):
    """RTMP 7.2.2.5: ``receiveVideo, 0, null, flag`` (read as :class:`ReceiveAudio`)."""


@dataclass(frozen=True)
class Seek(Request, name=SEEK):
    """RTMP 7.2.2.7: ``seek, 0, null, milliseconds``; not a finite number reads as 0."""

    netstream: ClassVar[bool] = True
    milliseconds: float = 0

    @classmethod
    def from_command(cls, cmd: Command) -> Seek:
        return cls(finite_number(_arg(cmd, 0), 0))

    def arguments(self) -> list[Any]:
        return [self.milliseconds]

    @property
    def position(self) -> int:
        """Where to seek to: whole milliseconds, never negative."""
        return int(max(0.0, self.milliseconds))


@dataclass(frozen=True)
class Pause(Request, name=PAUSE):
    """RTMP 7.2.2.8: ``pause, 0, null, flag, milliseconds`` (true pauses, false resumes).

    A missing flag reads as true (pause), any other value by its truth; a time that is
    not a finite number reads as -1 (none given).
    """

    netstream: ClassVar[bool] = True
    paused: bool = True
    milliseconds: float = -1

    @classmethod
    def from_command(cls, cmd: Command) -> Pause:
        paused = bool(cmd.arguments[0]) if cmd.arguments else True
        return cls(paused, finite_number(_arg(cmd, 1), -1))

    def arguments(self) -> list[Any]:
        return [bool(self.paused), self.milliseconds]

    @property
    def position(self) -> int | None:
        """The pause or resume point in whole milliseconds; ``None`` when not given (< 0)."""
        return int(self.milliseconds) if self.milliseconds >= 0 else None


#: The one table from command name to request type (RTMP 7.2.1, 7.2.2 and [impl] names).
REQUEST_TYPES: dict[str, type[Request]] = {
    cls.name: cls
    for cls in (
        Connect, Close, CreateStream, ReleaseStream, FCPublish, FCUnpublish, FCSubscribe,
        GetStreamLength, Publish, Play, Play2, DeleteStream, CloseStream, ReceiveAudio,
        ReceiveVideo, Seek, Pause,
    )
}  # fmt: skip


def decode_request(cmd: Command) -> Request | None:
    """The typed request for ``cmd`` (RTMP 7.2.1, 7.2.2); ``None`` for any other name
    (``_result``, ``onStatus``, ``_checkbw``, application calls, ...)."""
    cls = REQUEST_TYPES.get(cmd.name)
    return None if cls is None else cls.from_command(cmd)


def nesting(value: Any, limit: int) -> int:
    """How deep objects and arrays nest in ``value`` (stops counting past ``limit``)."""
    if not isinstance(value, (dict, list, tuple)):
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]  # containers only, with their depth
    seen: set[int] = set()  # AMF3 references can make cycles
    while stack:
        item, depth = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list, tuple)))
    return deepest


#: Every byte value that can start a container (a decoded dict or list): AMF0 object, ECMA
#: array, strict array, typed object (AMF0 2.1); AMF3 array, object, the vectors and
#: dictionary (AMF3 3.1).  A path through references still visits distinct containers.
CONTAINER_MARKERS = bytes((0x03, 0x08, 0x09, 0x0A, 0x0D, 0x0E, 0x0F, 0x10, 0x11))
#: Every other byte value: ``len(payload.translate(None, _NON_MARKERS))`` counts the markers.
_NON_MARKERS = bytes(b for b in range(256) if b not in CONTAINER_MARKERS)


def check_depth(cmd: Command, limit: int, payload: bytes = b"") -> None:
    """AMF0 2.5 / AMF3 3.12: refuse commands nested deeper than ``max_amf_depth``.

    Every level of nesting starts with a container marker byte, so a ``payload`` with at
    most ``limit`` such bytes cannot nest deeper and the decoded values need no walk.
    """
    if payload and len(payload.translate(None, _NON_MARKERS)) <= limit:
        return
    depth = nesting([cmd.command_object, *cmd.arguments], limit + 1) - 1
    if depth > limit:
        raise LimitExceededError("max_amf_depth", depth, limit,
                                 f"command {cmd.name!r} nests objects too deeply (RTMP 7.1.1)")
