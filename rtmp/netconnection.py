"""RTMP 7.2.1: the server's NetConnection commands.

Every handler is a short function ``handler(conn, cmd)`` over the narrow
:class:`rtmp.netstream.ConnectionContext`; :data:`HANDLERS` maps the command names to
them: ``connect`` (with the Window Acknowledgement Size / Set Peer Bandwidth / Set
Chunk Size / Stream Begin / ``_result`` sequence of RTMP 7.2.1.1 and ffmpeg's
``onBWDone``), ``createStream``, ``close``, the [impl] calls encoders send
(``releaseStream``, ``FCPublish``, ``FCUnpublish``, ``FCSubscribe``, ``_checkbw``)
and :func:`call` for every call the server does not implement (RTMP 7.2.1.2).
"""

from __future__ import annotations

import functools
from typing import Any, Dict, Tuple

from . import commands, control, ertmp, user_control
from .commands import Command
from .errors import ProtocolError
from .message import Message
from .netstream import MAX_STREAMS_PER_CONNECTION, ConnectionContext, Handler, NetStream
from .requests import (
    CAPS_EX_MOD_EX,
    CAPS_EX_MULTITRACK,
    CAPS_EX_RECONNECT,
    CAPS_EX_TIMESTAMP_NANO_OFFSET,
    FOURCC_CAN_FORWARD,
    FOURCC_WILDCARD,
    Connect,
    EnhancedCaps,
    FCPublish,
    FCSubscribe,
    FCUnpublish,
    decode_request,
)

__all__ = ["HANDLERS", "Rejected", "call", "connect", "server_caps"]

_PROPERTIES = {"fmsVer": commands.DEFAULT_FMS_VERSION, "capabilities": 31, "mode": 1}


def server_caps(reconnect: bool = False) -> EnhancedCaps:
    """ERTMP Enhancing NetConnection connect Command: what this server states in connect's
    ``_result`` (the document: "The server SHOULD state its support via attributes such as
    videoFourCcInfoMap, capsEx, and similar properties").

    The server forwards every codec untouched (the wildcard's CanForward, also given to each
    FourCC of the document, whose headers it reads to cache sequence starts per track and
    to find keyframes), reads ModEx (TimestampOffsetNano included) and multitrack messages,
    and asks clients to reconnect only when ``reconnect`` (the connection can send
    ``NetConnection.Connect.ReconnectRequest``).
    """
    caps = CAPS_EX_MULTITRACK | CAPS_EX_MOD_EX | CAPS_EX_TIMESTAMP_NANO_OFFSET
    if reconnect:
        caps |= CAPS_EX_RECONNECT
    video = {FOURCC_WILDCARD: FOURCC_CAN_FORWARD,
             **{fourcc: FOURCC_CAN_FORWARD for fourcc in ertmp.VIDEO_FOURCCS}}
    audio = {FOURCC_WILDCARD: FOURCC_CAN_FORWARD,
             **{fourcc: FOURCC_CAN_FORWARD for fourcc in ertmp.AUDIO_FOURCCS}}
    fourccs = (*ertmp.VIDEO_FOURCCS, *ertmp.AUDIO_FOURCCS)
    return EnhancedCaps(fourccs, video, audio, caps)

#: [impl] The FC* calls' notification and its status code, by call.
_FC_REPLIES: Dict[str, Tuple[str, str]] = {
    commands.FC_PUBLISH: (commands.ON_FC_PUBLISH, commands.NETSTREAM_PUBLISH_START),
    commands.FC_UNPUBLISH: (commands.ON_FC_UNPUBLISH, commands.NETSTREAM_UNPUBLISH_SUCCESS),
    commands.FC_SUBSCRIBE: (commands.ON_FC_SUBSCRIBE, commands.NETSTREAM_PLAY_START),
}


class Rejected(Exception):
    """``connect`` is refused (RTMP 7.2.1.1): the ``_error`` carries ``description`` and
    ``code``."""

    def __init__(self, description: str, code: str = commands.NETCONNECTION_CONNECT_REJECTED):
        super().__init__(description)
        self.description = description
        self.code = code


@functools.lru_cache(maxsize=32)
def _connect_replies(window_ack_size: int, chunk_size: int, encoding: int,
                     transaction_id: float, reconnect: bool) -> Tuple[Message, ...]:
    """RTMP 7.2.1.1: the server's messages after an accepted ``connect``, in order.

    The same for every session with the same settings and transaction id (nearly
    always 1), so they are built and AMF-encoded once (messages are immutable).
    ``reconnect``: whether the ``_result`` states ``capsEx`` Reconnect (:func:`server_caps`).
    """
    return (
        control.window_ack_size(window_ack_size),  # RTMP 7.2.1.1 step 2
        # Step 3.  [impl] nginx-rtmp and ffmpeg send limit type 2 (dynamic), which a client
        # following RTMP 5.4.5 to the letter ignores as a first limit: harmless either way.
        control.set_peer_bandwidth(window_ack_size, 2),
        # Deviation (ffmpeg, nginx-rtmp): both servers announce their chunk size here.
        control.set_chunk_size(chunk_size),
        user_control.stream_begin(0),  # step 5
        # Step 6: _result with the server's properties and the info object.  The reply
        # to connect is AMF0 (type 20): AMF3 only applies once agreed.
        # ERTMP Enhancing NetConnection connect Command: the server's E-RTMP support.
        commands.connect_result(encoding, transaction_id=transaction_id,
                                properties={**_PROPERTIES,
                                            **server_caps(reconnect).to_properties()}),
        # [impl] ffmpeg's and FMS's servers call onBWDone; clients answer with _checkbw.
        commands.encode_command(commands.ON_BW_DONE, 0, None, 8192),
    )


def connect(conn: ConnectionContext, cmd: Command) -> None:
    """RTMP 7.2.1.1: connect: check, then Window Ack Size, Peer Bandwidth, ..., _result."""
    if conn.accepted:
        raise ProtocolError("second connect on one connection", "RTMP 7.2.1.1")
    req = Connect.from_command(cmd)
    params = req.command_object
    app_text, app, query = req.app, req.app_name, req.query
    encoding = req.object_encoding
    conn.connect_params = dict(params)
    conn.client_caps = req.enhanced_caps  # ERTMP Enhancing NetConnection connect Command
    conn.app = app
    conn.tc_url = req.tc_url
    conn.object_encoding = encoding
    try:
        if conn.over_limit:
            raise Rejected(conn.over_limit)
        if conn.config.require_auth and _challenge_at_connect(conn, params, app_text):
            conn.server.authenticate(conn, app_text, query)
        callback = conn.config.on_connect
        if callback is not None:
            try:
                callback(conn.connection)
            except Exception as exc:
                conn.log.exception("on_connect raised; connection rejected")
                raise Rejected(str(exc) or type(exc).__name__) from exc
    except Rejected as rejected:
        conn.log.info("connect to app %r rejected: %s", app, rejected.description)
        conn.reply(cmd, commands.error(
            cmd.transaction_id,
            commands.status_info(rejected.code, rejected.description),
        ))
        conn.end_after_reply()  # the caller ends the session after a polite linger
        return
    transport = conn.transport
    assert transport is not None
    conn.accept()  # CONNECTED
    config = conn.config
    # One write for the whole sequence: one system call and one packet, not six.
    # ERTMP Reconnect Request: stated only when this connection can ask for a reconnect.
    reconnect = callable(getattr(conn.connection, "request_reconnect", None))
    transport.write_repeated(_connect_replies(
        config.window_ack_size, config.chunk_size, encoding, cmd.transaction_id, reconnect))
    caps = conn.client_caps
    conn.log.info("connected from %s: app=%r tcUrl=%r flashVer=%r objectEncoding=%d%s",
                  conn.connection.remote_addr, app, conn.tc_url, req.flash_ver, encoding,
                  f"; E-RTMP caps: fourCcList={list(caps.fourcc_list)} "
                  f"videoFourCcInfoMap={dict(caps.video_fourcc_info_map)} "
                  f"audioFourCcInfoMap={dict(caps.audio_fourcc_info_map)} "
                  f"capsEx={caps.caps_ex}" if caps.enhanced else "")


def _challenge_at_connect(conn: ConnectionContext, params: Dict[str, Any], app_text: str) -> bool:
    """AUTH-ADOBE happens in ``connect``, which players and publishers both send: the
    challenge goes to every connect under ``require_auth_players``, else to those that
    present an auth query (``?authmod=``, in app or tcUrl) or call themselves
    publishers (``type: "nonprivate"``: ffmpeg, OBS, librtmp when publishing)."""
    if conn.config.require_auth_players or params.get("type") == "nonprivate":
        return True
    return "authmod=" in app_text or "authmod=" in conn.tc_url.partition("?")[2]


def create_stream(conn: ConnectionContext, cmd: Command) -> None:
    """RTMP 7.2.1.3: allocate a message stream id (1, 2, ...; freed ids are reused)."""
    if len(conn.streams) >= MAX_STREAMS_PER_CONNECTION:
        conn.reply(cmd, commands.error(
            cmd.transaction_id,
            commands.status_info(commands.NETCONNECTION_CALL_FAILED,
                                 f"at most {MAX_STREAMS_PER_CONNECTION} streams"),
            object_encoding=cmd.object_encoding,
        ))
        return
    msid = 1
    while msid in conn.streams:
        msid += 1
    conn.streams[msid] = NetStream(msid)
    if cmd.transaction_id:  # RTMP 7.2.1: no _result for transaction id 0
        conn.reply(cmd, _stream_created(cmd.transaction_id, msid, cmd.message_stream_id,
                                        cmd.object_encoding))


@functools.lru_cache(maxsize=256)
def _stream_created(transaction_id: float, msid: int, on_stream: int,
                    encoding: int) -> Message:
    """RTMP 7.2.1.3: ``_result, txn, null, msid``, the same for every session that asks
    with the same transaction id (nearly always 2), so encoded once."""
    return commands.result(transaction_id, None, msid, message_stream_id=on_stream,
                           object_encoding=encoding)


def close(conn: ConnectionContext, cmd: Command) -> None:
    """RTMP 7.2.1 [spec gap]: ``close`` ends the NetConnection."""
    conn.log.info("client sent close")
    conn.request_close()


def release_stream(conn: ConnectionContext, cmd: Command) -> None:
    """[impl] ffmpeg/OBS: releaseStream(name) before publishing; nothing to release here."""
    conn.result(cmd, None)


def fc_call(conn: ConnectionContext, cmd: Command) -> None:
    """[impl] FCPublish(name) -> onFCPublish (FMLE/ffmpeg/OBS, as FMS and Wowza send);
    FCUnpublish(name) -> onFCUnpublish (deleteStream does the work); Akamai-style
    FCSubscribe(name) -> onFCSubscribe."""
    req = decode_request(cmd)
    assert isinstance(req, (FCPublish, FCUnpublish, FCSubscribe))
    event, code = _FC_REPLIES[cmd.name]
    conn.send(commands.encode_command(
        event, 0, None, commands.status_info(code, req.stream_name),
    ))
    conn.result(cmd, None)


def ignore(conn: ConnectionContext, cmd: Command) -> None:
    """[impl] ``_checkbw``, ``_result``/``_error`` from clients: nothing to do (nginx-rtmp)."""


def call(conn: ConnectionContext, cmd: Command, msg: Message) -> None:
    """RTMP 7.2.1.2: a call the server does not implement."""
    if conn.config.on_message is not None:
        try:
            conn.config.on_message(conn.connection, msg)
            return
        except Exception as exc:
            conn.log.exception("on_message raised for call %r", cmd.name)
            description = str(exc) or type(exc).__name__
    else:
        conn.unhandled(msg)
        description = f"Method not found ({cmd.name})"
    if cmd.transaction_id:
        conn.reply(cmd, commands.error(
            cmd.transaction_id,
            commands.status_info(commands.NETCONNECTION_CALL_FAILED, description),
            message_stream_id=cmd.message_stream_id,
            object_encoding=cmd.object_encoding,
        ))



#: RTMP 7.2.1: the NetConnection commands (and the [impl] calls) and their handlers.
HANDLERS: Dict[str, Handler] = {
    commands.CONNECT: connect,
    commands.CREATE_STREAM: create_stream,
    commands.CLOSE: close,
    commands.RELEASE_STREAM: release_stream,
    commands.FC_PUBLISH: fc_call,
    commands.FC_UNPUBLISH: fc_call,
    commands.FC_SUBSCRIBE: fc_call,
    commands.CHECK_BW: ignore,
    commands.RESULT: ignore,
    commands.ERROR: ignore,
}
