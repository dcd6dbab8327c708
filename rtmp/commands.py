"""RTMP 7.2: NetConnection and NetStream commands, data messages and onStatus codes.

A command message (RTMP 7.1.1, type 20 for AMF0, 17 for AMF3) carries an AMF-encoded
RPC: the command name, a transaction id, a command object (or null) and optional
arguments.  Replies (``_result``, ``_error``, ``onStatus``) share that shape.  A data
message (RTMP 7.1.2, type 18 / 15) is a plain list of AMF values, such as
``"onMetaData", {...}``.

This module turns those payloads into :class:`Command` values and back, names the
status codes of our notes' Appendix B as constants with their levels, and builds the
usual requests and replies (``connect``, ``createStream``, ``publish``, ``play``,
``_result``, ``_error``, ``onStatus``).  AMF encoding itself is ``rtmp.amf``'s job.
:mod:`rtmp.requests` reads each request into a typed value and encodes it back with
the encoders here; :mod:`rtmp.calls` matches replies to calls.
It is sans-IO: no sockets, no clock.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import amf0
from .amf import decode_payload, encode_payload
from .errors import CommandError, ProtocolError
from .message import (  # the type sets and data-frame names live with the message types
    CLEAR_DATA_FRAME,
    COMMAND_TYPES,
    DATA_TYPES,
    SET_DATA_FRAME,
    Message,
    MessageType,
    StreamType,
)

logger = logging.getLogger(__name__)

__all__ = [
    "COMMAND_TYPES",
    "DATA_TYPES",
    "SET_DATA_FRAME",
    "CLEAR_DATA_FRAME",
    "LEVELS",
    "Command",
    "StatusEvent",
    "client_status",
    "command_error",
    "connect",
    "connect_command_object",
    "connect_result",
    "create_stream",
    "decode_command",
    "decode_data",
    "delete_stream",
    "encode_command",
    "encode_data",
    "error",
    "metadata",
    "on_status",
    "reconnect_request",
    "pause",
    "play",
    "publish",
    "result",
    "seek",
    "status_info",
    "status_level",
    "strip_set_data_frame",
]


#: RTMP 7.2.1.1 objectEncoding values.
AMF0 = 0
AMF3 = 3

# --------------------------------------------------------------------------------------
# Command names (RTMP 7.2.1, 7.2.2) and the non-spec ones real peers send.
# --------------------------------------------------------------------------------------
CONNECT = "connect"  # RTMP 7.2.1.1
CALL = "call"  # RTMP 7.2.1.2 (the AS3 method; on the wire the procedure name is the command)
CLOSE = "close"  # RTMP 7.2.1 [spec gap]: named, no structure given
CREATE_STREAM = "createStream"  # RTMP 7.2.1.3
RESULT = "_result"  # RTMP 7.2
ERROR = "_error"  # RTMP 7.2
ON_STATUS = "onStatus"  # RTMP 7.2.2
PLAY = "play"  # RTMP 7.2.2.1
PLAY2 = "play2"  # RTMP 7.2.2.2
DELETE_STREAM = "deleteStream"  # RTMP 7.2.2.3
CLOSE_STREAM = "closeStream"  # RTMP 7.2.2 [spec gap]: named, no subsection
RECEIVE_AUDIO = "receiveAudio"  # RTMP 7.2.2.4
RECEIVE_VIDEO = "receiveVideo"  # RTMP 7.2.2.5
PUBLISH = "publish"  # RTMP 7.2.2.6
SEEK = "seek"  # RTMP 7.2.2.7
PAUSE = "pause"  # RTMP 7.2.2.8
# [impl] ffmpeg / FMLE / OBS: tolerated, answered or ignored by servers.
RELEASE_STREAM = "releaseStream"
FC_PUBLISH = "FCPublish"
FC_UNPUBLISH = "FCUnpublish"
FC_SUBSCRIBE = "FCSubscribe"  # [impl] Akamai-style players
ON_FC_PUBLISH = "onFCPublish"
ON_FC_UNPUBLISH = "onFCUnpublish"
ON_FC_SUBSCRIBE = "onFCSubscribe"
ON_BW_DONE = "onBWDone"
CHECK_BW = "_checkbw"
GET_STREAM_LENGTH = "getStreamLength"
ON_PLAY_STATUS = "onPlayStatus"

# Data message names (RTMP 7.1.2).
ON_METADATA = "onMetaData"

# --------------------------------------------------------------------------------------
# RTMP 7.2.1.1: connect command object flags.
# --------------------------------------------------------------------------------------
SUPPORT_SND_NONE = 0x0001
SUPPORT_SND_ADPCM = 0x0002
SUPPORT_SND_MP3 = 0x0004
SUPPORT_SND_INTEL = 0x0008
SUPPORT_SND_UNUSED = 0x0010
SUPPORT_SND_NELLY8 = 0x0020
SUPPORT_SND_NELLY = 0x0040
SUPPORT_SND_G711A = 0x0080
SUPPORT_SND_G711U = 0x0100
SUPPORT_SND_NELLY16 = 0x0200
SUPPORT_SND_AAC = 0x0400
SUPPORT_SND_SPEEX = 0x0800
SUPPORT_SND_ALL = 0x0FFF

SUPPORT_VID_UNUSED = 0x0001
SUPPORT_VID_JPEG = 0x0002
SUPPORT_VID_SORENSON = 0x0004
SUPPORT_VID_HOMEBREW = 0x0008
SUPPORT_VID_VP6 = 0x0010
SUPPORT_VID_VP6ALPHA = 0x0020
SUPPORT_VID_HOMEBREWV = 0x0040
SUPPORT_VID_H264 = 0x0080
SUPPORT_VID_ALL = 0x00FF

#: RTMP 7.2.1.1 videoFunction: the client can do frame-accurate seeks.
SUPPORT_VID_CLIENT_SEEK = 1

# --------------------------------------------------------------------------------------
# Appendix B: status codes and their levels.
# --------------------------------------------------------------------------------------
LEVEL_STATUS = "status"
LEVEL_WARNING = "warning"
LEVEL_ERROR = "error"

NETCONNECTION_CONNECT_SUCCESS = "NetConnection.Connect.Success"
NETCONNECTION_CONNECT_REJECTED = "NetConnection.Connect.Rejected"
NETCONNECTION_CONNECT_CLOSED = "NetConnection.Connect.Closed"
NETCONNECTION_CONNECT_FAILED = "NetConnection.Connect.Failed"
NETCONNECTION_CONNECT_INVALID_APP = "NetConnection.Connect.InvalidApp"
NETCONNECTION_CONNECT_APP_SHUTDOWN = "NetConnection.Connect.AppShutdown"
NETCONNECTION_CALL_FAILED = "NetConnection.Call.Failed"
NETCONNECTION_CONNECT_RECONNECT_REQUEST = "NetConnection.Connect.ReconnectRequest"
NETSTREAM_PUBLISH_START = "NetStream.Publish.Start"
NETSTREAM_PUBLISH_BAD_NAME = "NetStream.Publish.BadName"
NETSTREAM_PUBLISH_IDLE = "NetStream.Publish.Idle"
NETSTREAM_UNPUBLISH_SUCCESS = "NetStream.Unpublish.Success"
NETSTREAM_PLAY_START = "NetStream.Play.Start"
NETSTREAM_PLAY_RESET = "NetStream.Play.Reset"
NETSTREAM_PLAY_STOP = "NetStream.Play.Stop"
NETSTREAM_PLAY_STREAM_NOT_FOUND = "NetStream.Play.StreamNotFound"
NETSTREAM_PLAY_FAILED = "NetStream.Play.Failed"
NETSTREAM_PLAY_PUBLISH_NOTIFY = "NetStream.Play.PublishNotify"
NETSTREAM_PLAY_UNPUBLISH_NOTIFY = "NetStream.Play.UnpublishNotify"
NETSTREAM_PLAY_COMPLETE = "NetStream.Play.Complete"
NETSTREAM_SEEK_NOTIFY = "NetStream.Seek.Notify"
NETSTREAM_SEEK_FAILED = "NetStream.Seek.Failed"
NETSTREAM_PAUSE_NOTIFY = "NetStream.Pause.Notify"
NETSTREAM_UNPAUSE_NOTIFY = "NetStream.Unpause.Notify"
NETSTREAM_RECORD_START = "NetStream.Record.Start"
NETSTREAM_RECORD_STOP = "NetStream.Record.Stop"
NETSTREAM_RECORD_FAILED = "NetStream.Record.Failed"
NETSTREAM_BUFFER_EMPTY = "NetStream.Buffer.Empty"
NETSTREAM_BUFFER_FULL = "NetStream.Buffer.Full"
NETSTREAM_BUFFER_FLUSH = "NetStream.Buffer.Flush"
NETSTREAM_FAILED = "NetStream.Failed"

#: Appendix B: the level each status code is sent with.
LEVELS: dict[str, str] = {
    NETCONNECTION_CONNECT_SUCCESS: LEVEL_STATUS,
    NETCONNECTION_CONNECT_REJECTED: LEVEL_ERROR,
    NETCONNECTION_CONNECT_CLOSED: LEVEL_STATUS,
    NETCONNECTION_CONNECT_FAILED: LEVEL_ERROR,
    NETCONNECTION_CONNECT_INVALID_APP: LEVEL_ERROR,
    NETCONNECTION_CONNECT_APP_SHUTDOWN: LEVEL_ERROR,
    NETCONNECTION_CALL_FAILED: LEVEL_ERROR,
    NETCONNECTION_CONNECT_RECONNECT_REQUEST: LEVEL_STATUS,
    NETSTREAM_PUBLISH_START: LEVEL_STATUS,
    NETSTREAM_PUBLISH_BAD_NAME: LEVEL_ERROR,
    NETSTREAM_PUBLISH_IDLE: LEVEL_STATUS,
    NETSTREAM_UNPUBLISH_SUCCESS: LEVEL_STATUS,
    NETSTREAM_PLAY_START: LEVEL_STATUS,
    NETSTREAM_PLAY_RESET: LEVEL_STATUS,
    NETSTREAM_PLAY_STOP: LEVEL_STATUS,
    NETSTREAM_PLAY_STREAM_NOT_FOUND: LEVEL_ERROR,
    NETSTREAM_PLAY_FAILED: LEVEL_ERROR,
    NETSTREAM_PLAY_PUBLISH_NOTIFY: LEVEL_STATUS,
    NETSTREAM_PLAY_UNPUBLISH_NOTIFY: LEVEL_STATUS,
    NETSTREAM_PLAY_COMPLETE: LEVEL_STATUS,
    NETSTREAM_SEEK_NOTIFY: LEVEL_STATUS,
    NETSTREAM_SEEK_FAILED: LEVEL_ERROR,
    NETSTREAM_PAUSE_NOTIFY: LEVEL_STATUS,
    NETSTREAM_UNPAUSE_NOTIFY: LEVEL_STATUS,
    NETSTREAM_RECORD_START: LEVEL_STATUS,
    NETSTREAM_RECORD_STOP: LEVEL_STATUS,
    NETSTREAM_RECORD_FAILED: LEVEL_ERROR,
    NETSTREAM_BUFFER_EMPTY: LEVEL_STATUS,
    NETSTREAM_BUFFER_FULL: LEVEL_STATUS,
    NETSTREAM_BUFFER_FLUSH: LEVEL_STATUS,
    NETSTREAM_FAILED: LEVEL_ERROR,
}

#: [impl] Our server's NetStream.Play.Start description, when nobody publishes the stream
#: yet, contains this (lower case); ``rtmp play`` says so at once.
WAITING_FOR_PUBLISHER = "waiting for a publisher"

#: [impl] The reply ffmpeg's listen mode and nginx-rtmp send to a successful connect.
DEFAULT_FMS_VERSION = "FMS/3,0,1,123"
DEFAULT_SERVER_CAPABILITIES = 31
#: [impl] What ffmpeg publishes as; our client's default flashVer.
DEFAULT_FLASH_VERSION = "FMLE/3.0 (compatible; rtmp-py)"


@dataclass
class Command:
    """RTMP 7.1.1: a decoded command message.

    ``command_object`` is the third value (an object or ``None``); ``arguments`` are the
    values after it.  ``message_type`` is 20 (AMF0) or 17 (AMF3).
    """

    name: str
    transaction_id: float
    command_object: Any = None
    arguments: list[Any] = field(default_factory=list)
    message_stream_id: int = 0
    message_type: int = MessageType.COMMAND_AMF0
    timestamp: int = 0

    @property
    def object_encoding(self) -> int:
        """0 for a type 20 message, 3 for type 17 (RTMP 7.1.1)."""
        return AMF3 if self.message_type == MessageType.COMMAND_AMF3 else AMF0

    @property
    def info(self) -> dict[str, Any] | None:
        """RTMP 7.2: the information object of a reply (``_result``/``_error``/``onStatus``).

        That is the first object among the arguments, or the command object when it has a
        ``code`` (some servers put the info object there), else ``None``.
        """
        for value in self.arguments:
            if isinstance(value, dict):
                return value
        if isinstance(self.command_object, dict) and "code" in self.command_object:
            return self.command_object
        return None

    @property
    def code(self) -> str | None:
        """The ``code`` of :attr:`info`, if any (e.g. ``"NetStream.Publish.Start"``)."""
        info = self.info
        code = info.get("code") if info else None
        return code if isinstance(code, str) else None

    @property
    def is_error(self) -> bool:
        """An ``_error`` reply, or an ``onStatus`` whose level is ``error`` (Appendix B [impl])."""
        if self.name == ERROR:
            return True
        info = self.info
        return self.name == ON_STATUS and info is not None and info.get("level") == LEVEL_ERROR

    def to_message(self, timestamp: int | None = None) -> Message:
        """Encode back into a :class:`Message` with the same type and stream id."""
        return encode_command(
            self.name,
            self.transaction_id,
            self.command_object,
            *self.arguments,
            message_stream_id=self.message_stream_id,
            object_encoding=self.object_encoding,
            timestamp=self.timestamp if timestamp is None else timestamp,
        )


#: RTMP 7.1.1, 7.1.2: (command, data) message types for each object encoding.
_MESSAGE_TYPES = {
    AMF0: (MessageType.COMMAND_AMF0, MessageType.DATA_AMF0),  # types 20, 18
    AMF3: (MessageType.COMMAND_AMF3, MessageType.DATA_AMF3),  # types 17, 15
}


def _amf_message(
    values: list[Any], object_encoding: int, data: bool, timestamp: int, message_stream_id: int,
    chunk_stream_id: int | None,
) -> Message:
    """RTMP 7.1.1 / 7.1.2: a command (``data`` false) or data message carrying ``values``."""
    if object_encoding not in (AMF0, AMF3):
        raise ValueError(f"object_encoding must be 0 (AMF0) or 3 (AMF3), not {object_encoding!r}")
    return Message(
        type=_MESSAGE_TYPES[object_encoding][data],
        data=encode_payload(values, object_encoding),
        timestamp=timestamp,
        message_stream_id=message_stream_id,
        chunk_stream_id=chunk_stream_id,
    )


def encode_command(
    name: str,
    transaction_id: float,
    command_object: Any = None,
    *args: Any,
    message_stream_id: int = 0,
    object_encoding: int = AMF0,
    timestamp: int = 0,
    chunk_stream_id: int | None = None,
) -> Message:
    """RTMP 7.1.1: a command message ``name, transaction_id, command_object, *args``.

    The type is 20 for ``object_encoding=0`` and 17 for ``object_encoding=3``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("a command name must be a non-empty string (RTMP 7.1.1)")
    if isinstance(transaction_id, bool) or not isinstance(transaction_id, (int, float)):
        raise TypeError(f"transaction id must be a number (RTMP 7.1.1), not {transaction_id!r}")
    return _amf_message([name, transaction_id, command_object, *args], object_encoding, False,
                        timestamp, message_stream_id, chunk_stream_id)


def _decode(msg: Message, expected: frozenset, what: str, clause: str) -> list[Any]:  # type: ignore[type-arg]
    if msg.type not in expected:
        raise ValueError(f"message type {int(msg.type)} is not a {what} message ({clause})")
    try:
        return decode_payload(msg.data, msg.type)
    except ProtocolError:
        raise
    except (ValueError, IndexError) as exc:  # amf0/amf3.DecodeError are ValueErrors
        raise ProtocolError(f"undecodable {what} message payload: {exc}", clause) from exc


def decode_command(msg: Message) -> Command:
    """RTMP 7.1.1: decode a type 20 or 17 message into a :class:`Command`.

    Raises :class:`rtmp.ProtocolError` when the payload does not start with a command
    name (string) and a transaction id (number).  A missing command object reads as
    ``None`` (some peers end the payload after the transaction id).
    """
    values = _decode(msg, COMMAND_TYPES, "command", "RTMP 7.1.1")
    if len(values) < 2:
        raise ProtocolError(
            f"command payload has {len(values)} value(s); a name and a transaction id are required",
            "RTMP 7.1.1",
        )
    name, transaction_id = values[0], values[1]
    if not isinstance(name, str):
        raise ProtocolError(f"command name is {type(name).__name__}, not a string", "RTMP 7.1.1")
    if isinstance(transaction_id, bool) or not isinstance(transaction_id, (int, float)):
        raise ProtocolError(
            f"command {name!r}: transaction id is {type(transaction_id).__name__}, not a number",
            "RTMP 7.1.1",
        )
    if isinstance(transaction_id, float) and not math.isfinite(transaction_id):
        raise ProtocolError(f"command {name!r}: transaction id {transaction_id}", "RTMP 7.1.1")
    return Command(
        name=name,
        transaction_id=float(transaction_id),
        command_object=values[2] if len(values) > 2 else None,
        arguments=list(values[3:]),
        message_stream_id=msg.message_stream_id,
        message_type=int(msg.type),
        timestamp=msg.timestamp,
    )


def encode_data(
    name: str,
    *values: Any,
    message_stream_id: int = 0,
    object_encoding: int = AMF0,
    timestamp: int = 0,
    chunk_stream_id: int | None = None,
) -> Message:
    """RTMP 7.1.2: a data message ``name, *values`` (type 18, or 15 for AMF3)."""
    return _amf_message([name, *values], object_encoding, True, timestamp, message_stream_id, chunk_stream_id)


def decode_data(msg: Message) -> list[Any]:
    """RTMP 7.1.2: the AMF values of a type 18 or 15 message (``@setDataFrame`` kept)."""
    return _decode(msg, DATA_TYPES, "data", "RTMP 7.1.2")


def strip_set_data_frame(values: Sequence[Any]) -> list[Any]:
    """RTMP 7.1.2 [impl]: drop a leading ``"@setDataFrame"`` (``[@setDataFrame, onMetaData, {...}]``
    becomes ``[onMetaData, {...}]``), as servers do before relaying or recording metadata."""
    if values and values[0] == SET_DATA_FRAME:
        return list(values[1:])
    return list(values)


def metadata(
    properties: Mapping[str, Any],
    message_stream_id: int,
    *,
    set_data_frame: bool = True,
    object_encoding: int = AMF0,
    timestamp: int = 0,
) -> Message:
    """RTMP 7.1.2: an ``onMetaData`` data message; publishers send it as
    ``@setDataFrame, onMetaData, {...}`` ([impl] ffmpeg, OBS), players receive it without.

    The properties travel as an ECMA array, as FLV E.4.4.1 prescribes for script data and
    as ffmpeg writes them; pass an :class:`rtmp.amf0.ECMAArray` or a typed value to keep
    your own choice.
    """
    value: Any = properties
    if type(properties) is dict or not isinstance(properties, dict):
        value = amf0.ECMAArray(properties)  # FLV E.4.4.1: the value is an ECMA array
    values: list[Any] = [ON_METADATA, value]
    if set_data_frame:
        return encode_data(
            SET_DATA_FRAME, *values, message_stream_id=message_stream_id,
            object_encoding=object_encoding, timestamp=timestamp,
        )  # fmt: skip
    return encode_data(
        values[0], values[1], message_stream_id=message_stream_id,
        object_encoding=object_encoding, timestamp=timestamp,
    )  # fmt: skip


# --------------------------------------------------------------------------------------
# Replies: status information objects, onStatus, _result, _error.
# --------------------------------------------------------------------------------------
def status_level(code: str) -> str:
    """Appendix B: the level of a status code; unknown codes are guessed from their last
    word ("Failed", "Rejected", "BadName", "NotFound" → error), else ``status``."""
    level = LEVELS.get(code)
    if level is not None:
        return level
    tail = code.rsplit(".", 1)[-1]
    if tail in ("Failed", "Rejected", "BadName", "StreamNotFound", "InvalidApp", "Error"):
        return LEVEL_ERROR
    return LEVEL_STATUS


def status_info(code: str, description: str = "", **extra: Any) -> dict[str, Any]:
    """RTMP 7.2.2: an information object ``{level, code, description, **extra}``.

    The level comes from :data:`LEVELS` (override it with ``level=...``).
    """
    info: dict[str, Any] = {
        "level": extra.pop("level", None) or status_level(code),
        "code": code,
        "description": description,
    }
    info.update(extra)
    return info


def on_status(
    code: str,
    description: str = "",
    message_stream_id: int = 0,
    *,
    object_encoding: int = AMF0,
    **extra: Any,
) -> Message:
    """RTMP 7.2.2: ``onStatus, 0, null, {level, code, description, **extra}`` on a stream."""
    return encode_command(
        ON_STATUS,
        0,  # RTMP 7.2.2: transaction id 0
        None,  # RTMP 7.2.2: command object null
        status_info(code, description, **extra),
        message_stream_id=message_stream_id,
        object_encoding=object_encoding,
    )


#: Stands for the client id while a status template is encoded (NUL bytes: never an id).
_CLIENT_ID_MARK = "\x00rtmp-clientid\x00"


@functools.lru_cache(maxsize=512)
def _status_template(code: str, description: str, message_stream_id: int,
                     extra: tuple[tuple[str, Any], ...]) -> tuple[Message, bytes, bytes] | None:
    """An AMF0 onStatus for the mark as client id, and its payload split around it."""
    message = on_status(code, description, message_stream_id, clientid=_CLIENT_ID_MARK,
                        **dict(extra))
    mark = amf0.encode_string(_CLIENT_ID_MARK)
    head, found, tail = message.data.partition(mark)
    if not found or mark in tail:  # the mark in a description too: no template
        return None
    return message, head, tail


def client_status(clientid: str, code: str, description: str = "", message_stream_id: int = 0,
                  **extra: Any) -> Message:
    """RTMP 7.2.2: ``on_status(code, description, message_stream_id, clientid=clientid,
    **extra)`` (AMF0), the same message, but encoded once per code, description, stream
    and ``extra``: only ``clientid`` (a server's connection id) is encoded per call."""
    try:
        template = _status_template(code, description, message_stream_id, tuple(extra.items()))
    except TypeError:  # an unhashable value in extra: no template
        template = None
    if template is None:
        return on_status(code, description, message_stream_id, clientid=clientid, **extra)
    message, head, tail = template
    return message.with_data(head + amf0.encode_string(clientid) + tail)


def reconnect_request(tc_url: str | None = None, description: str = "") -> Message:
    """ERTMP Reconnect Request: the NetConnection ``onStatus, 0, null, {level: "status",
    code: "NetConnection.Connect.ReconnectRequest", description, tcUrl}`` a server sends
    to ask a client to reconnect (to ``tc_url``, absolute or relative to the current
    tcUrl; when None, to the current one: no ``tcUrl`` is sent).  On stream 0, AMF0."""
    extra: dict[str, Any] = {} if tc_url is None else {"tcUrl": tc_url}
    return on_status(NETCONNECTION_CONNECT_RECONNECT_REQUEST,
                     description or "The server asks the client to reconnect.", 0, **extra)


def result(
    transaction_id: float,
    *values: Any,
    message_stream_id: int = 0,
    object_encoding: int = AMF0,
) -> Message:
    """RTMP 7.2: ``_result, transaction_id, *values``.

    ``values`` start with the command object: ``result(1, properties, info)`` answers a
    connect (RTMP 7.2.1.1); ``result(txn, None, stream_id)`` a createStream (RTMP 7.2.1.3).
    With no values the command object is null.
    """
    command_object = values[0] if values else None
    return encode_command(
        RESULT, transaction_id, command_object, *values[1:],
        message_stream_id=message_stream_id, object_encoding=object_encoding,
    )  # fmt: skip


def error(
    transaction_id: float,
    info: Any,
    *,
    command_object: Any = None,
    message_stream_id: int = 0,
    object_encoding: int = AMF0,
) -> Message:
    """RTMP 7.2: ``_error, transaction_id, command_object (null), info``.

    ``info`` is an information object (see :func:`status_info`) or a status code string,
    which is expanded with an empty description.  The info object comes right after the
    null command object: ffmpeg reads the description from the first object it finds
    (AUTH-ADOBE), so nothing object-like may precede it.
    """
    if isinstance(info, str):
        info = status_info(info)
    return encode_command(
        ERROR, transaction_id, command_object, info,
        message_stream_id=message_stream_id, object_encoding=object_encoding,
    )  # fmt: skip


@dataclass(frozen=True)
class StatusEvent:
    """RTMP 7.2.2: one ``onStatus`` the peer sent, typed.

    ``info`` is the whole information object; ``code``, ``level`` and ``description``
    are its usual properties (empty strings when missing or not strings), and
    ``stream_id`` the message stream it arrived on.  Built with :meth:`from_command`.
    """

    code: str
    level: str
    description: str
    stream_id: int
    info: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_error(self) -> bool:
        """The level is ``error`` (Appendix B): a refusal or a failure."""
        return self.level == LEVEL_ERROR

    @classmethod
    def from_command(cls, command: Command) -> StatusEvent:
        """The event of a decoded ``onStatus`` command (RTMP 7.2.2)."""
        info = dict(command.info or {})

        def text(key: str) -> str:
            value = info.get(key)
            return value if isinstance(value, str) else ""

        return cls(text("code"), text("level"), text("description"),
                   int(command.message_stream_id), info)

    def __str__(self) -> str:
        return f"{self.code}: {self.description}" if self.description else self.code


def command_error(cmd: Command) -> CommandError:
    """The :class:`rtmp.CommandError` describing an ``_error`` or failing ``onStatus`` reply."""
    info = cmd.info or {}
    code = info.get("code")
    description = info.get("description")
    return CommandError(
        code if isinstance(code, str) else cmd.name,
        description if isinstance(description, str) else "",
        info,
    )


# --------------------------------------------------------------------------------------
# Requests.
# --------------------------------------------------------------------------------------
def _call(name: str, transaction_id: float, message_stream_id: int, object_encoding: int, *args: Any) -> Message:
    """RTMP 7.2.1.2, 7.2.2: the request ``name, transaction_id, null, *args``."""
    return encode_command(
        name, transaction_id, None, *args, message_stream_id=message_stream_id, object_encoding=object_encoding
    )


def connect_command_object(
    app: str,
    tc_url: str,
    *,
    flash_ver: str = DEFAULT_FLASH_VERSION,
    object_encoding: int = AMF0,
    fpad: bool = False,
    capabilities: int = 15,
    audio_codecs: int = SUPPORT_SND_ALL,
    video_codecs: int = SUPPORT_VID_ALL,
    video_function: int = SUPPORT_VID_CLIENT_SEEK,
    swf_url: str | None = None,
    page_url: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """RTMP 7.2.1.1: the command object of ``connect``.

    ``flashVer`` is spelled with a capital V, as real clients send it ([impl] ffmpeg, OBS;
    the spec table writes ``flashver``).  ``swfUrl``/``pageUrl`` appear only when given.
    ``extra`` adds or overrides properties (e.g. ``{"type": "nonprivate"}``, ffmpeg's
    publish marker, or Enhanced RTMP's ``fourCcList``).
    """
    if object_encoding not in (AMF0, AMF3):
        raise ValueError(f"objectEncoding must be 0 or 3 (RTMP 7.2.1.1), not {object_encoding!r}")
    obj: dict[str, Any] = {
        "app": app,
        "flashVer": flash_ver,  # Deviation (ffmpeg, nginx-rtmp): "flashVer", not "flashver"
    }
    if swf_url is not None:
        obj["swfUrl"] = swf_url
    obj["tcUrl"] = tc_url
    obj["fpad"] = bool(fpad)
    obj["capabilities"] = capabilities
    obj["audioCodecs"] = audio_codecs
    obj["videoCodecs"] = video_codecs
    obj["videoFunction"] = video_function
    if page_url is not None:
        obj["pageUrl"] = page_url
    obj["objectEncoding"] = object_encoding
    if extra:
        obj.update(extra)
    return obj


def connect(
    command_object: Mapping[str, Any],
    *user_arguments: Any,
    transaction_id: float = 1,
    object_encoding: int = AMF0,
    message_stream_id: int = 0,
) -> Message:
    """RTMP 7.2.1.1: ``connect, 1, command_object, *user_arguments`` (AMF0, type 20, unless
    told otherwise: the object encoding is only negotiated by this very command)."""
    return encode_command(
        CONNECT, transaction_id, dict(command_object), *user_arguments,
        message_stream_id=message_stream_id, object_encoding=object_encoding,
    )  # fmt: skip


def connect_result(
    object_encoding: int = AMF0,
    *,
    transaction_id: float = 1,
    description: str = "Connection succeeded.",
    fms_version: str = DEFAULT_FMS_VERSION,
    capabilities: int = DEFAULT_SERVER_CAPABILITIES,
    properties: Mapping[str, Any] | None = None,
    **info_extra: Any,
) -> Message:
    """RTMP 7.2.1.1: the server's ``_result`` for connect: properties ``{fmsVer, capabilities}``
    and info ``{level: status, code: NetConnection.Connect.Success, description,
    objectEncoding}`` ([impl] as ffmpeg's listen mode and nginx-rtmp send it)."""
    props: dict[str, Any] = {"fmsVer": fms_version, "capabilities": capabilities}
    if properties:
        props.update(properties)
    info = status_info(
        NETCONNECTION_CONNECT_SUCCESS, description, objectEncoding=object_encoding, **info_extra
    )
    return result(transaction_id, props, info)


def create_stream(
    transaction_id: float, object_encoding: int = AMF0, *, message_stream_id: int = 0
) -> Message:
    """RTMP 7.2.1.3: ``createStream, txn, null`` on the NetConnection (msid 0)."""
    return _call(CREATE_STREAM, transaction_id, message_stream_id, object_encoding)


def delete_stream(
    stream_id: int,
    object_encoding: int = AMF0,
    *,
    transaction_id: float = 0,
    message_stream_id: int = 0,
) -> Message:
    """RTMP 7.2.2.3: ``deleteStream, 0, null, stream_id``.

    [impl] ffmpeg and librtmp send it on msid 0 (the NetConnection); servers accept both.
    """
    return _call(DELETE_STREAM, transaction_id, message_stream_id, object_encoding, stream_id)


def publish(
    stream_name: str,
    stream_type: StreamType | str = StreamType.LIVE,
    message_stream_id: int = 1,
    *,
    transaction_id: float = 0,
    object_encoding: int = AMF0,
) -> Message:
    """RTMP 7.2.2.6: ``publish, 0, null, name, type`` on the stream (type live/record/append)."""
    type_text = StreamType(stream_type).value  # ValueError for anything else
    return _call(PUBLISH, transaction_id, message_stream_id, object_encoding, stream_name, type_text)


def play(
    stream_name: str,
    message_stream_id: int = 1,
    start: float = -2,
    duration: float = -1,
    reset: bool | None = True,
    *,
    transaction_id: float = 0,
    object_encoding: int = AMF0,
) -> Message:
    """RTMP 7.2.2.1: ``play, 0, null, name, start, duration[, reset]``.

    ``start`` -2 (live, else recorded), -1 (live only) or seconds; ``duration`` -1 (to the
    end), 0 (one frame) or seconds; ``reset=None`` leaves the flag out.
    """
    args: list[Any] = [stream_name, start, duration]
    if reset is not None:
        args.append(bool(reset))
    return _call(PLAY, transaction_id, message_stream_id, object_encoding, *args)


def seek(
    milliseconds: float,
    message_stream_id: int = 1,
    *,
    transaction_id: float = 0,
    object_encoding: int = AMF0,
) -> Message:
    """RTMP 7.2.2.7: ``seek, 0, null, milliseconds``."""
    return _call(SEEK, transaction_id, message_stream_id, object_encoding, milliseconds)


def pause(
    paused: bool,
    milliseconds: float,
    message_stream_id: int = 1,
    *,
    transaction_id: float = 0,
    object_encoding: int = AMF0,
) -> Message:
    """RTMP 7.2.2.8: ``pause, 0, null, flag, milliseconds`` (true pauses, false resumes)."""
    return _call(PAUSE, transaction_id, message_stream_id, object_encoding, bool(paused), milliseconds)
