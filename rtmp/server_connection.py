"""RTMP 7.2 / 7.3: one session of the server, from the handshake to teardown.

:class:`ServerConnection` is what the application's callbacks receive.  Its
thread (started by :class:`rtmp.server.Server`) runs (TLS,) the handshake
(RTMP 5.2), then a loop that reads one message at a time and dispatches it:
commands to their handlers by chapter (:mod:`rtmp.netconnection` for RTMP
7.2.1, :mod:`rtmp.netstream` for RTMP 7.2.2), which reach the session only
through the narrow :class:`rtmp.netstream.ConnectionContext` implemented here;
published media and data to the live hub; anything else to ``on_message`` or
:meth:`ServerConnection.read_message`.  A live player that stays silent is
pinged (RTMP 7.1.7) and dropped after ``idle_timeout``.  Teardown closes the
published streams (and their recordings) before the socket, then the rest.
"""

from __future__ import annotations

import enum
import logging
import queue
import socket
import ssl
import struct
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Union

from . import commands, netconnection, netstream, user_control
from .commands import Command
from .errors import ConnectionClosedError, ProtocolError, RTMPError, TimeoutError, seconds_text
from .logs import ConnectionLoggerAdapter, connection_logger
from .message import DATA_TYPES, MEDIA_TYPES, SHARED_OBJECT_TYPES, Message, MessageType
from .netstream import NetStream, ServerServices, StreamLimit
from .requests import CAPS_EX_RECONNECT, EnhancedCaps, check_depth
from .streams import defer_writes, end_deferred_writes, flush_deferred_writes
from .transport import Transport, close_socket, shutdown_socket, transport_from_config, wait_readable

if TYPE_CHECKING:
    from .server import Server, ServerConfig

__all__ = ["ServerConnection", "ConnectionState", "wrap_tls", "tls_handshake", "linger_close"]

#: How often a blocked wait looks at the stop flag (socketserver's poll_interval).
POLL_INTERVAL = 0.25
#: How long a refused connection may linger to receive its ``_error`` (seconds).
REJECT_LINGER = 2.0
#: Messages kept for :meth:`ServerConnection.read_message` before the oldest is dropped.
INBOX_SIZE = 1024

#: RTMP 7.2.1 and 7.2.2: every command the server handles, and its handler.
_HANDLERS: Dict[str, netstream.Handler] = {**netconnection.HANDLERS, **netstream.HANDLERS}

_PUBLISHED_TYPES = MEDIA_TYPES | DATA_TYPES | {MessageType.AGGREGATE}
_COMMAND_TYPES = frozenset({MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3})
#: RTMP 7.1.7: Set Buffer Length's event type, and its stream id and milliseconds.
_SET_BUFFER_LENGTH = struct.pack(">H", user_control.UserControlEvent.SET_BUFFER_LENGTH)
_STREAM_AND_LENGTH = struct.Struct(">II")


class ConnectionState(enum.Enum):
    """The life of one server connection."""

    HANDSHAKING = "handshaking"
    """TLS and RTMP 5.2 handshakes."""
    CONNECTING = "connecting"
    """Handshake done; waiting for ``connect`` (RTMP 7.2.1.1)."""
    CONNECTED = "connected"
    """``connect`` accepted."""
    PUBLISHING = "publishing"
    """At least one stream is being published (RTMP 7.2.2.6)."""
    PLAYING = "playing"
    """At least one stream is being played (RTMP 7.2.2.1)."""
    CLOSED = "closed"
    """The session ended."""


#: The status that refuses a NetStream command when the stream cap is reached.
_STREAM_LIMIT_CODES = {
    commands.PLAY: commands.NETSTREAM_PLAY_FAILED,
    commands.PLAY2: commands.NETSTREAM_PLAY_FAILED,
    commands.PUBLISH: commands.NETSTREAM_PUBLISH_BAD_NAME,
}


class _Flag:
    """A switch that only goes on: ``set``/``is_set`` of a :class:`threading.Event`, which
    nothing here waits on, without the Event's Condition (a session makes one)."""

    __slots__ = ("_on",)

    def __init__(self) -> None:
        self._on = False

    def set(self) -> None:
        self._on = True  # one attribute store: atomic under the GIL

    def is_set(self) -> bool:
        return self._on


class ServerConnection:
    """One client of the :class:`rtmp.server.Server` (refs/api.md ``ServerConnection``).

    ``id`` is unique within the server; ``state``, ``remote_addr``, ``app`` and
    ``connect_params`` describe the session.  ``write_message`` sends any message
    (thread-safe); ``read_message`` returns the messages the built-in handling does
    not consume when the server has no ``on_message``; ``close`` ends the session.
    """

    def __init__(
        self,
        server: "Server",
        sock: socket.socket,
        conn_id: str,
        remote_addr: Optional[Tuple[str, int]],
        *,
        over_limit: str = "",
    ) -> None:
        self.server: ServerServices = server
        self.config: "ServerConfig" = server.config
        self.id = conn_id
        self.remote_addr = remote_addr
        self.app = ""
        """The application name from ``connect`` (RTMP 7.2.1.1), auth query removed."""
        self.connect_params: Dict[str, Any] = {}
        """The command object of ``connect``."""
        self.tc_url = ""
        self.client_caps = EnhancedCaps()
        """What the client stated it can do in ``connect`` (ERTMP Enhancing NetConnection
        connect Command: ``fourCcList``, the FourCC info maps, ``capsEx``)."""
        self.user: Optional[str] = None
        """The user name this connection authenticated as (AUTH-ADOBE), or None."""
        self.object_encoding = commands.AMF0
        """0 (AMF0) or 3 (AMF3), as agreed in ``connect`` (RTMP 7.2.1.1)."""
        self.log: ConnectionLoggerAdapter = connection_logger("rtmp.server", conn_id)  # the name users configure
        self.created = time.monotonic()
        self._sock = sock
        self._transport: Optional[Transport] = None
        self._state = ConnectionState.HANDSHAKING
        self._state_lock = threading.Lock()
        self._over_limit = over_limit
        self._accepted = False
        self._closing = _Flag()
        self._streams: Dict[int, NetStream] = {}
        self._inbox: "Optional[queue.Queue[Message]]" = None  # made at first use (_mailbox)
        self._torn_down = False
        self._warned: "set[str]" = set()  # first_warning's keys
        self._published = False  # a publish started on this connection
        self.reconnect_requested: Optional[float] = None
        """When :meth:`request_reconnect` last asked the client (``time.monotonic()``)."""

    # -- public API -----------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<ServerConnection {self.id} {self._state.value} {self.remote_addr} app={self.app!r}>"

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def transport(self) -> Optional[Transport]:
        """The connection's :class:`rtmp.transport.Transport` (None before the handshake)."""
        return self._transport

    @property
    def stream_names(self) -> Dict[int, str]:
        """Message stream id -> the name it publishes or plays."""
        return {msid: ns.name for msid, ns in list(self._streams.items()) if ns.name}

    def write_message(self, msg: Message) -> None:
        """Send one message to the peer (thread-safe)."""
        transport = self._transport
        if transport is None or transport.closed:
            raise ConnectionClosedError(f"connection {self.id} is not open")
        transport.write_message(msg)

    def read_message(self, timeout: Optional[float] = None) -> Message:
        """The next message the server did not consume (only without ``on_message``).

        Raises :class:`rtmp.TimeoutError` after ``timeout`` seconds and
        :class:`rtmp.ConnectionClosedError` once the connection is closed and drained.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return self._mailbox().get(timeout=POLL_INTERVAL)
            except queue.Empty:
                if self._state == ConnectionState.CLOSED:
                    raise ConnectionClosedError(f"connection {self.id} is closed") from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"no message from {self.id} within {seconds_text(timeout)} s") from None

    def request_reconnect(self, tc_url: Optional[str] = None, description: str = "") -> bool:
        """ERTMP Reconnect Request: ask the client to reconnect, to ``tc_url`` (absolute,
        or relative to its tcUrl; None: the same server) -- ``onStatus``
        ``NetConnection.Connect.ReconnectRequest``, level ``status``.

        The session goes on until the client leaves (the v2 document: the old server
        "SHOULD continue processing messages from the client until the client
        disconnects"); when the client stated ``capsEx`` Reconnect, a stream it publishes
        may be taken over by the next publisher of the same name within
        ``rtmp.streams.HANDOVER_WINDOW`` seconds (:meth:`rtmp.streams.LiveStream.allow_handover`),
        so players see one stream.  Returns whether the client stated ``capsEx`` Reconnect in connect (the
        request is sent either way: a client that cannot follow it ignores a status).
        Raises :class:`rtmp.ConnectionClosedError` when the session is not connected.
        """
        if tc_url is not None and not isinstance(tc_url, str):
            raise TypeError(f"tc_url must be a string or None, not {type(tc_url).__name__}")
        transport = self._transport
        if not self._accepted or transport is None or transport.closed \
                or self._state == ConnectionState.CLOSED:
            raise ConnectionClosedError(f"connection {self.id} has no NetConnection to reconnect")
        stated = self.client_caps.has(CAPS_EX_RECONNECT)
        for ns in list(self._streams.values()) if stated else ():
            live = ns.live if ns.state.publishing else None
            if live is not None:  # a client that cannot follow keeps its stream to itself
                live.allow_handover(ns)
        transport.write_message(commands.reconnect_request(tc_url, description))
        self.reconnect_requested = time.monotonic()
        self.log.info("asked the client to reconnect%s", f" to {tc_url}" if tc_url else "")
        return stated

    def close(self) -> None:
        """End the session: the connection's thread cleans up and calls ``on_disconnect``."""
        self._closing.set()
        transport = self._transport
        if transport is not None:
            transport.shutdown()
        else:
            shutdown_socket(self._sock)

    # -- state ------------------------------------------------------------------------------

    def set_state(self, state: ConnectionState) -> None:
        with self._state_lock:
            if self._state != ConnectionState.CLOSED:
                self._state = state

    def update_state(self) -> None:
        """PUBLISHING / PLAYING / CONNECTED from what the message streams do."""
        playing = False
        for ns in self._streams.values():
            state = ns.state
            if state.publishing:
                self.set_state(ConnectionState.PUBLISHING)
                return
            playing = playing or state.playing
        if playing:
            self.set_state(ConnectionState.PLAYING)
        elif self._accepted:
            self.set_state(ConnectionState.CONNECTED)

    @property
    def _playing(self) -> bool:
        """A player, or a user of shared objects (RTMP 7.3.2): it may listen in silence."""
        return (any(ns.state.playing for ns in self._streams.values())
                or self.server.shared_objects.uses_objects(self))

    # -- the session thread ----------------------------------------------------------------

    def run(self) -> None:
        """The body of the connection's thread (:class:`rtmp.server.Server` calls it)."""
        config = self.config
        sock = self._sock
        if config.ssl_context is not None:
            tls = wrap_tls(sock, config.ssl_context, self.log)
            if tls is None:
                return
            sock = self._sock = tls  # close() and teardown reach the TLS socket from now on
            if not tls_handshake(tls, config.handshake_timeout, self.log):
                return
        transport = transport_from_config(sock, config, role="server", conn_id=self.id, log=self.log)
        self._transport = transport
        if self._closing.is_set():
            return
        transport.handshake(config.handshake_timeout)  # RTMP 5.2
        self.set_state(ConnectionState.CONNECTING)
        if self._over_limit:
            self._refuse_over_limit()
            return
        self._loop(transport)

    def _loop(self, transport: Transport) -> None:
        # A publisher's thread writes to the players that keep up itself, once per read of
        # its socket, instead of waking their writer threads per message (issue 21).
        defer_writes()
        transport.before_wait = flush_deferred_writes
        try:
            self._read_loop(transport)
        finally:
            end_deferred_writes()

    def _read_loop(self, transport: Transport) -> None:
        config = self.config
        last_heard = time.monotonic()
        heard_bytes = transport.bytes_received
        while not self._closing.is_set():
            try:
                msg = transport.read_message(timeout=config.read_timeout)
            except TimeoutError:
                now = time.monotonic()
                if transport.bytes_received != heard_bytes:
                    heard_bytes, last_heard = transport.bytes_received, now
                if not self._playing:
                    raise
                decoder = transport.session.decoder
                if decoder.pending_bytes or decoder.buffered:
                    # RTMP 5.3.1: a player may be silent, but a message it began and did
                    # not finish within read_timeout is a drip that holds memory.
                    raise TimeoutError(
                        f"a message from a player stayed incomplete for {seconds_text(config.read_timeout)} s"
                    ) from None
                if config.idle_timeout is not None and now - last_heard > config.idle_timeout:
                    raise TimeoutError(
                        f"player silent for {now - last_heard:.0f} s (idle_timeout)"
                    ) from None
                # RTMP 7.1.7: a Ping Request makes a live player answer (and proves it alive).
                transport.write_message(user_control.ping_request(int(now * 1000)))
                continue
            heard_bytes, last_heard = transport.bytes_received, time.monotonic()
            try:
                self._dispatch(msg)
            except ConnectionClosedError as exc:
                if transport.closed or self._closing.is_set():
                    raise
                # A reply found the peer gone for reading (a publisher closes right after
                # deleteStream, as ffmpeg does).  What it sent before is in our buffer and
                # may be the tail of a recording: read on until its end of file.
                if transport.write_error is None:
                    transport.write_error = exc
                    self.log.debug("reply not sent (%s); reading on", exc)

    # -- dispatch ----------------------------------------------------------------------------

    def _dispatch(self, msg: Message) -> None:
        kind = msg.type
        if kind in _PUBLISHED_TYPES:  # first: media is nearly every message
            netstream.on_published(self, msg)
        elif kind in _COMMAND_TYPES:
            cmd = commands.decode_command(msg)
            check_depth(cmd, self.config.max_amf_depth, msg.data)
            self._on_command(cmd, msg)
        elif kind == MessageType.USER_CONTROL:
            self._on_user_control(msg)
        elif kind in SHARED_OBJECT_TYPES:  # RTMP 7.1.3 / 7.3.2 (rtmp.shared_object_store)
            self.server.shared_objects.receive(self, msg)
        else:
            self.unhandled(msg)

    def unhandled(self, msg: Message) -> bool:
        """Give ``msg`` to ``on_message`` (or the inbox); False if the callback raised."""
        callback = self.config.on_message
        if callback is None:
            if not self._accepted:
                return True
            inbox = self._mailbox()
            try:
                inbox.put_nowait(msg)
            except queue.Full:
                inbox.get_nowait()  # drop the oldest: nobody reads the inbox
                inbox.put_nowait(msg)
            return True
        try:
            callback(self, msg)
        except Exception:
            self.log.exception("on_message raised; message type %d dropped", msg.type)
            return False
        return True

    def _mailbox(self) -> "queue.Queue[Message]":
        """The inbox of :meth:`read_message`, made at first use: most sessions never
        need one (a queue is four locks)."""
        inbox = self._inbox
        if inbox is None:
            with self._state_lock:
                if self._inbox is None:
                    self._inbox = queue.Queue(INBOX_SIZE)
                inbox = self._inbox
        return inbox

    def _on_user_control(self, msg: Message) -> None:
        data = msg.data
        if data[:2] == _SET_BUFFER_LENGTH and len(data) >= 10:
            # RTMP 7.1.7: the player's buffer, read in place (Session.next_message has
            # decoded this message once already: no second UserControl).
            stream_id, length = _STREAM_AND_LENGTH.unpack_from(data, 2)
            ns = self._streams.get(stream_id)
            if ns is not None:
                ns.buffer_ms = length
            return
        event = user_control.decode(data)  # a short Set Buffer Length raises ProtocolError
        self.log.debug("user control event %s ignored", event.name)

    def _on_command(self, cmd: Command, msg: Message) -> None:
        name = cmd.name
        if not self._accepted and name != commands.CONNECT:
            # RTMP 7.2.1.1: connect comes first; anything before it is a broken client.
            raise ProtocolError(f"command {name!r} before connect", "RTMP 7.2.1.1")
        handler = _HANDLERS.get(name)
        if handler is None:
            netconnection.call(self, cmd, msg)
            return
        self.log.debug("command %s txn=%g msid=%d", name, cmd.transaction_id,
                       cmd.message_stream_id)
        try:
            handler(self, cmd)
        except StreamLimit as exc:
            # Warned once per connection: a flood must not flood the log too.
            level = logging.WARNING if self.first_warning("stream limit") else logging.DEBUG
            self.log.log(level, "refused: %s", exc)
            code = _STREAM_LIMIT_CODES.get(name, commands.NETSTREAM_FAILED)
            self.send(self.status(cmd.message_stream_id, code, str(exc)))

    # -- the context of the command handlers (rtmp.netstream.ConnectionContext) -------------

    @property
    def connection(self) -> "ServerConnection":
        """The object the application's callbacks receive: this connection."""
        return self

    @property
    def streams(self) -> Dict[int, NetStream]:
        """Message stream id -> its :class:`rtmp.netstream.NetStream`."""
        return self._streams

    @property
    def accepted(self) -> bool:
        """``connect`` was accepted (RTMP 7.2.1.1)."""
        return self._accepted

    @property
    def over_limit(self) -> str:
        """Why the server refuses this connection (max_connections), or ""."""
        return self._over_limit

    def accept(self) -> None:
        """``connect`` accepted: the connection is CONNECTED."""
        self._accepted = True
        self.set_state(ConnectionState.CONNECTED)

    def mark_published(self) -> None:
        """A publish started on this connection (its end of file is the publisher's)."""
        self._published = True

    def first_warning(self, key: str) -> bool:
        """True the first time ``key`` is asked for: a flood must not flood the log too."""
        if key in self._warned:
            return False
        self._warned.add(key)
        return True

    def end_after_reply(self) -> None:
        """End the session after a polite linger, so the peer reads the ``_error``."""
        self._closing.set()
        if self._transport is not None:
            linger_close(self._transport.sock)

    def request_close(self) -> None:
        """End the session once the current message is handled."""
        self._closing.set()

    def reply(self, cmd: Command, msg: Message) -> None:
        """Write the reply ``msg`` to ``cmd``."""
        assert self._transport is not None
        self._transport.write_message(msg)

    def status(self, ns_or_msid: Union[NetStream, int], code: str, description: str,
               **extra: Any) -> Message:
        """RTMP 7.2.2: an ``onStatus`` on a stream, with this connection's client id."""
        msid = ns_or_msid.message_stream_id if isinstance(ns_or_msid, NetStream) else ns_or_msid
        return commands.client_status(self.id, code, description, msid, **extra)

    def send(self, *messages: Message) -> None:
        """Write ``messages`` in one go."""
        assert self._transport is not None
        self._transport.write_messages(messages)

    def result(self, cmd: Command, *values: Any) -> None:
        """RTMP 7.2.1: ``_result`` to ``cmd`` (nothing when its transaction id is 0)."""
        if cmd.transaction_id:
            self.reply(cmd, commands.result(
                cmd.transaction_id, *values,
                message_stream_id=cmd.message_stream_id, object_encoding=cmd.object_encoding,
            ))

    def try_send(self, *messages: Message) -> None:
        """Write ``messages`` unless the connection is closed or the write fails."""
        transport = self._transport
        if transport is None or transport.closed:
            return
        try:
            transport.write_messages(messages)
        except RTMPError as exc:
            self.log.debug("could not send while stopping: %s", exc)

    def teardown(self) -> None:
        """End every stream, close the socket, tell on_disconnect (once)."""
        if self._torn_down:
            return
        self._torn_down = True
        # Published streams first: the recording is complete and closed before the
        # socket is, so a client waiting for our end of file knows its stream is
        # stored (nothing here waits on the peer).
        for ns in list(self._streams.values()):
            if ns.state.publishing:
                try:
                    netstream.stop_netstream(self, ns, notify=False)
                except Exception:
                    self.log.exception("error while stopping stream %d", ns.message_stream_id)
        transport = self._transport
        if transport is not None:
            # Wake writers blocked on a stalled peer first, so stopping them is immediate.
            transport.shutdown()
        for ns in list(self._streams.values()):
            try:
                netstream.stop_netstream(self, ns, notify=False)
            except Exception:
                self.log.exception("error while stopping stream %d", ns.message_stream_id)
        self._streams.clear()
        try:
            self.server.shared_objects.release_connection(self)  # RTMP 7.3.2: ends its uses
        except Exception:
            self.log.exception("error while releasing shared objects")
        transport = self._transport
        if transport is not None:
            transport.close(shutdown=False)  # shut down above already
        else:
            close_socket(self._sock)
        with self._state_lock:
            self._state = ConnectionState.CLOSED
        if self._accepted and self.config.on_disconnect is not None:
            try:
                self.config.on_disconnect(self)
            except Exception:
                self.log.exception("on_disconnect raised")

    def ended(self, exc: BaseException) -> str:
        """How a session that ended with ``exc`` is logged: the peer's ordinary end of
        file (after its goodbye, or a reply it no longer read) is no failure."""
        transport = self._transport
        if isinstance(exc, ConnectionClosedError) and transport is not None and transport.eof:
            who = "publisher" if self._published else "client"
            return f"{who} closed the connection"
        return f"session ended: {exc}"

    # -- refusing -------------------------------------------------------------------------

    def _refuse_over_limit(self) -> None:
        """max_connections: wait for connect, answer NetConnection.Connect.Rejected, close."""
        transport = self._transport
        assert transport is not None
        deadline = time.monotonic() + self.config.handshake_timeout
        while not self._closing.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            msg = transport.read_message(timeout=remaining)
            if msg.type in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
                cmd = commands.decode_command(msg)
                if cmd.name == commands.CONNECT:
                    netconnection.connect(self, cmd)
                    return



def wrap_tls(sock: socket.socket, context: ssl.SSLContext,
             log: ConnectionLoggerAdapter) -> Optional[ssl.SSLSocket]:
    """The server side of TLS on an accepted socket (rtmps), not yet shaken; None on failure."""
    try:
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    except (ssl.SSLError, OSError) as exc:
        log.info("TLS setup failed: %s", exc)
        return None


def tls_handshake(tls: ssl.SSLSocket, timeout: float, log: ConnectionLoggerAdapter) -> bool:
    """The TLS handshake within ``timeout`` seconds; False (logged) when it fails."""
    try:
        tls.settimeout(timeout)
        tls.do_handshake()
    except (ssl.SSLError, OSError) as exc:
        log.info("TLS handshake failed: %s", exc)
        return False
    return True


def linger_close(sock: socket.socket, seconds: float = REJECT_LINGER) -> None:
    """Half-close and wait up to ``seconds`` for the peer to close, so the ``_error`` is read.

    Closing with unread input would make the kernel send a reset, which may
    destroy the reply before the client reads it.
    """
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        return
    deadline = time.monotonic() + seconds
    try:
        sock.setblocking(False)
        while True:
            remaining = deadline - time.monotonic()
            # poll(), not select(): descriptors past 1023 are common on a busy server.
            if remaining <= 0 or not wait_readable(sock, remaining):
                break
            try:
                if not sock.recv(65536):
                    break
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
    except (OSError, ValueError):
        pass
