"""RTMP 7.2 / 7.3: the server side: connections, the command set, live streams, record and VOD.

Theory of operation
-------------------
:class:`Server` owns one listening socket.  Every session runs on a thread of
its own (non-daemon, named ``rtmp-conn-<id>`` while it serves): (TLS,) the
handshake (RTMP 5.2), then a loop that reads one message at a time
(:meth:`rtmp.transport.Transport.read_message` handles protocol control and
pings) and dispatches it.  The threads accept for themselves, one at a time
(the leader/follower pattern): a spare thread (``rtmp-spare``) waits in
``accept()``; the one that gets a client first makes sure another spare waits,
then runs the session, then becomes a spare again, or ends if
``MAX_SPARE_THREADS`` are already waiting.  No hand-off from an accept thread and
no thread start per client: together they cost more CPU than a whole RTMP
session's commands (see refs/benchmarks.md).  What each session does (the command
handlers live by chapter in :mod:`rtmp.netconnection` and :mod:`rtmp.netstream`, reached
through the narrow :class:`rtmp.netstream.ConnectionContext` this module's
:class:`ServerConnection` implements):

* NetConnection commands (RTMP 7.2.1): ``connect`` (with the Window
  Acknowledgement Size / Set Peer Bandwidth / Set Chunk Size / Stream Begin /
  ``_result`` sequence of RTMP 7.2.1.1 and ffmpeg's ``onBWDone``),
  ``createStream``, ``close``, and the non-spec calls encoders send
  (``releaseStream``, ``FCPublish``, ``FCUnpublish``, ``_checkbw``,
  ``getStreamLength``, ``FCSubscribe``);
* NetStream commands (RTMP 7.2.2): ``publish``, ``play``, ``play2``,
  ``deleteStream``, ``closeStream``, ``receiveAudio``, ``receiveVideo``,
  ``seek``, ``pause``;
* media and data messages of a publisher go to the live hub
  (:mod:`rtmp.streams`) and, when recording, to :class:`rtmp.recorder.Recorder`;
* anything else reaches ``on_message`` (or :meth:`ServerConnection.read_message`).

Live players do not write from the publisher's thread: every player has a
bounded queue and a writer thread (:class:`rtmp.streams.LivePlayer`).  VOD
players have their own thread too (:class:`rtmp.vod.VodPlayer`).

:meth:`Server.stop` sets an event, closes the listener, shuts every session
socket down (so a blocked ``recv`` returns at once) and joins every thread
within a timeout.
"""

from __future__ import annotations

import enum
import ipaddress
import itertools
import logging
import os
import queue
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Tuple,
    Type,
    Union,
)

from . import commands, user_control
from .chunk import MAX_CHUNK_SIZE, Limits
from .commands import Command
from .config import check_connection_settings
from .errors import (
    ConnectionClosedError,
    HandshakeError,
    ProtocolError,
    RTMPError,
    TimeoutError,
    seconds_text,
)
from .logs import ConnectionLoggerAdapter, connection_logger
from . import netconnection, netstream
from .netconnection import Rejected
from .netstream import MAX_STREAMS_PER_CONNECTION as MAX_STREAMS_PER_CONNECTION
from .netstream import ConnectionContext, NetStream, StreamLimit
from .message import DATA_TYPES as _DATA_TYPES
from .requests import CONTAINER_MARKERS as _CONTAINER_MARKERS  # noqa: F401  (tests)
from .requests import check_depth as _check_depth
from .requests import nesting as _nesting  # noqa: F401  (tests)
from .message import MEDIA_TYPES as _MEDIA_TYPES
from .message import Message, MessageType, StreamType
from .streams import (
    DEFAULT_MAX_GOP_BYTES,
    DEFAULT_MAX_QUEUE_BYTES,
    StreamHub,
)
from .url import parse_addr as parse_addr  # rtmp.server.parse_addr stays importable
from .transport import KERNEL_TIMEOUTS, Transport, set_kernel_timeout, wait_readable

__all__ = ["Server", "ServerConfig", "ServerConnection", "ConnectionState"]

logger = logging.getLogger(__name__)

#: How often a thread waiting in ``accept()`` looks at the stop event (socketserver's poll_interval).
POLL_INTERVAL = 0.25
#: Threads that may wait for the next client once their session ended; more end.
MAX_SPARE_THREADS = 4
#: How long a refused connection may linger to receive its ``_error`` (seconds).
REJECT_LINGER = 2.0
#: Connections beyond ``max_connections`` that may be in the middle of being
#: refused politely at once; past that, sockets are closed on accept.
REJECT_BACKLOG = 32
#: Messages kept for :meth:`ServerConnection.read_message` before the oldest is dropped.
INBOX_SIZE = 1024


#: RTMP 7.2.1 and 7.2.2: every command the server handles, and its handler.
_HANDLERS: Dict[str, netstream.Handler] = {**netconnection.HANDLERS, **netstream.HANDLERS}

_PUBLISHED_TYPES = _MEDIA_TYPES | _DATA_TYPES | {MessageType.AGGREGATE}

OnConnect = Callable[["ServerConnection"], Any]
OnDisconnect = Callable[["ServerConnection"], Any]
OnPublish = Callable[["ServerConnection", str, StreamType], Any]
OnPlay = Callable[["ServerConnection", str], Any]
OnMessage = Callable[["ServerConnection", Message], Any]


@dataclass
class ServerConfig:
    """Configuration of :class:`Server` (refs/api.md names first, then limits and switches)."""

    addr: str = ":1935"
    """``"host:port"`` to listen on; an empty host means every interface, port 0 a free port."""
    read_timeout: float = 30.0
    """Seconds to wait for the next message from a peer that is not playing."""
    write_timeout: float = 30.0
    """Seconds a send may block; a player that stalls longer is disconnected."""
    handshake_timeout: float = 10.0
    """Seconds for the TLS and RTMP 5.2 handshakes, and for a refused client's ``connect``."""
    chunk_size: int = 4096
    """Outgoing chunk size announced after ``connect`` (RTMP 5.4.1)."""
    window_ack_size: int = 2_500_000
    """Window Acknowledgement Size and Set Peer Bandwidth sent after ``connect`` (RTMP 5.4.4/5)."""
    max_connections: int = 1000
    """Concurrent connections; the next one is refused with ``NetConnection.Connect.Rejected``."""
    on_connect: Optional[OnConnect] = None
    """``on_connect(conn)`` after a valid ``connect``; raising rejects the connection."""
    on_disconnect: Optional[OnDisconnect] = None
    """``on_disconnect(conn)`` when a connection that was accepted ends."""
    on_publish: Optional[OnPublish] = None
    """``on_publish(conn, stream_name, stream_type)``; raising sends ``NetStream.Publish.BadName``."""
    on_play: Optional[OnPlay] = None
    """``on_play(conn, stream_name)``; raising sends ``NetStream.Play.Failed``."""
    on_message: Optional[OnMessage] = None
    """``on_message(conn, msg)``: publishers' media/data and the commands the server does
    not handle; raising drops that message (or answers the call with ``_error``)."""
    require_auth: bool = False
    """Require the ``authmod=adobe`` challenge-response (AUTH-ADOBE) from publishers: a
    ``connect`` that presents an auth query or calls itself a publisher (``type:
    "nonprivate"``, as ffmpeg, OBS and librtmp send) is challenged; any other connect is
    accepted, and its ``publish`` refused with ``NetStream.Publish.BadName`` and the
    AUTH-ADOBE stage-0 text, so players (rtmpdump, ffplay) need no credentials."""
    require_auth_players: bool = False
    """Challenge every ``connect``, players' too (implies ``require_auth``).  librtmp
    players (rtmpdump, GStreamer) do not answer the challenge and cannot play then."""
    username: Optional[str] = None
    """The user name accepted when ``require_auth`` is set."""
    password: Optional[str] = None
    """The password of ``username``."""
    record_dir: Optional[Union[str, "os.PathLike[str]"]] = None
    """Where ``record``/``append`` publishing writes FLV files and where VOD play reads them."""
    ssl_context: Optional[ssl.SSLContext] = None
    """Serve ``rtmps`` (RTMP over TLS) with this server-side context."""
    idle_timeout: Optional[float] = 300.0
    """Seconds a playing connection may stay silent (it is pinged every ``read_timeout``)."""
    max_message_size: int = 16 * 1024 * 1024
    """Largest message a peer may send (bytes); larger ones end the connection."""
    max_chunk_streams: int = 64
    """Chunk streams a peer may have open at once (RTMP 5.3.1.1)."""
    max_pending_bytes: int = 16 * 1024 * 1024
    """Bytes all of a peer's partly received messages may announce together (RTMP
    5.3.1.1: one per chunk stream); past it the session ends.  Bounds a connection's
    reassembly memory, which ``max_message_size`` x ``max_chunk_streams`` does not."""
    max_chunk_size: int = MAX_CHUNK_SIZE
    """Largest Set Chunk Size a peer may announce (RTMP 5.4.1); a larger one ends the
    session.  The default is the protocol's own bound, 0x7FFFFFFF: message sizes are
    bounded by ``max_message_size`` whatever the chunk size."""
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES
    """Byte budget of one live player's send queue; beyond it whole frames are dropped."""
    max_gop_bytes: int = DEFAULT_MAX_GOP_BYTES
    """Largest GOP kept for late joiners; a longer one is not cached."""
    max_connections_per_ip: Optional[int] = None
    """Concurrent connections from one address (None: no limit)."""
    max_amf_depth: int = 32
    """Deepest nesting of objects/arrays accepted in a command (AMF0 2.5, AMF3 3.12);
    deeper commands end the session.  The AMF decoders' own limit (64) bounds the work
    done before this check."""
    strict: bool = False
    """Refuse the deviations real peers force (media on msid 0, publish without
    createStream, ...) instead of tolerating them with a warning."""

    def __post_init__(self) -> None:
        check_connection_settings(
            self, timeouts=("read_timeout", "write_timeout", "handshake_timeout"),
            positive=("max_queue_bytes",), limits=self.limits,
        )  # fmt: skip
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.require_auth_players:
            self.require_auth = True
        if self.require_auth and (not self.username or self.password is None):
            raise ValueError("require_auth needs username and password")
        parse_addr(self.addr)

    @property
    def limits(self) -> Limits:
        """The four chunk-decoder limits above as one :class:`rtmp.chunk.Limits`."""
        return Limits(
            max_message_size=self.max_message_size,
            max_chunk_streams=self.max_chunk_streams,
            max_pending_bytes=self.max_pending_bytes,
            max_chunk_size=self.max_chunk_size,
        )


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


class ServerConnection:
    """One client of the :class:`Server` (refs/api.md ``ServerConnection``).

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
        self.server = server
        self.config = server.config
        self.id = conn_id
        self.remote_addr = remote_addr
        self.app = ""
        """The application name from ``connect`` (RTMP 7.2.1.1), auth query removed."""
        self.connect_params: Dict[str, Any] = {}
        """The command object of ``connect``."""
        self.tc_url = ""
        self.user: Optional[str] = None
        """The user name this connection authenticated as (AUTH-ADOBE), or None."""
        self.object_encoding = commands.AMF0
        """0 (AMF0) or 3 (AMF3), as agreed in ``connect`` (RTMP 7.2.1.1)."""
        self.log: ConnectionLoggerAdapter = connection_logger(__name__, conn_id)
        self.created = time.monotonic()
        self._sock = sock
        self._transport: Optional[Transport] = None
        self._state = ConnectionState.HANDSHAKING
        self._state_lock = threading.Lock()
        self._over_limit = over_limit
        self._accepted = False
        self._closing = threading.Event()
        self._streams: Dict[int, NetStream] = {}
        self._inbox: "queue.Queue[Message]" = queue.Queue(INBOX_SIZE)
        self._torn_down = False
        self._warned: "set[str]" = set()  # first_warning's keys
        self._published = False  # a publish started on this connection

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
                return self._inbox.get(timeout=POLL_INTERVAL)
            except queue.Empty:
                if self._state == ConnectionState.CLOSED:
                    raise ConnectionClosedError(f"connection {self.id} is closed") from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"no message from {self.id} within {seconds_text(timeout)} s") from None

    def close(self) -> None:
        """End the session: the connection's thread cleans up and calls ``on_disconnect``."""
        self._closing.set()
        transport = self._transport
        if transport is not None:
            transport.shutdown()
        else:
            _shutdown(self._sock)

    # -- state ------------------------------------------------------------------------------

    def set_state(self, state: ConnectionState) -> None:
        with self._state_lock:
            if self._state != ConnectionState.CLOSED:
                self._state = state

    def update_state(self) -> None:
        """PUBLISHING / PLAYING / CONNECTED from what the message streams do."""
        states = [ns.state for ns in self._streams.values()]
        if any(state.publishing for state in states):
            self.set_state(ConnectionState.PUBLISHING)
        elif any(state.playing for state in states):
            self.set_state(ConnectionState.PLAYING)
        elif self._accepted:
            self.set_state(ConnectionState.CONNECTED)

    @property
    def _playing(self) -> bool:
        return any(ns.state.playing for ns in self._streams.values())

    # -- the session thread ----------------------------------------------------------------

    def run(self) -> None:
        """The body of the connection's thread (:class:`Server` calls it)."""
        config = self.config
        sock = self._sock
        if config.ssl_context is not None:
            tls = self._tls_handshake(sock)
            if tls is None:
                return
            sock = self._sock = tls
        transport = Transport(
            sock,
            role="server",
            conn_id=self.id,
            read_timeout=config.read_timeout,
            write_timeout=config.write_timeout,
            strict=config.strict,
            log=self.log,
            limits=config.limits,
        )
        self._transport = transport
        if self._closing.is_set():
            return
        transport.handshake(config.handshake_timeout)  # RTMP 5.2
        self.set_state(ConnectionState.CONNECTING)
        if self._over_limit:
            self._refuse_over_limit()
            return
        self._loop(transport)

    def _tls_handshake(self, sock: socket.socket) -> Optional[socket.socket]:
        context = self.config.ssl_context
        assert context is not None
        try:
            tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (ssl.SSLError, OSError) as exc:
            self.log.info("TLS setup failed: %s", exc)
            return None
        self._sock = tls
        try:
            tls.settimeout(self.config.handshake_timeout)
            tls.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self.log.info("TLS handshake failed: %s", exc)
            return None
        return tls

    def _loop(self, transport: Transport) -> None:
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
        if kind in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
            cmd = commands.decode_command(msg)
            _check_depth(cmd, self.config.max_amf_depth, msg.data)
            self._on_command(cmd, msg)
        elif kind in _PUBLISHED_TYPES:
            netstream.on_published(self, msg)
        elif kind == MessageType.USER_CONTROL:
            self._on_user_control(msg)
        else:
            self.unhandled(msg)

    def unhandled(self, msg: Message) -> bool:
        """Give ``msg`` to ``on_message`` (or the inbox); False if the callback raised."""
        callback = self.config.on_message
        if callback is None:
            if not self._accepted:
                return True
            try:
                self._inbox.put_nowait(msg)
            except queue.Full:
                self._inbox.get_nowait()  # drop the oldest: nobody reads the inbox
                self._inbox.put_nowait(msg)
            return True
        try:
            callback(self, msg)
        except Exception:
            self.log.exception("on_message raised; message type %d dropped", msg.type)
            return False
        return True

    def _on_user_control(self, msg: Message) -> None:
        event = user_control.decode(msg.data)
        if event.event == user_control.UserControlEvent.SET_BUFFER_LENGTH:
            # RTMP 7.1.7: the player's buffer; kept for information.
            ns = self._streams.get(event.stream_id or 0)
            if ns is not None and event.buffer_length is not None:
                ns.buffer_ms = event.buffer_length
            return
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
        self._linger_close()

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
        return commands.on_status(code, description, msid, clientid=self.id, **extra)

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
        transport = self._transport
        if transport is not None:
            transport.close()
        else:
            _close(self._sock)
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

    def _linger_close(self) -> None:
        """Half-close and wait briefly for the peer to close, so the ``_error`` is read.

        Closing with unread input would make the kernel send a reset, which may
        destroy the reply before the client reads it.
        """
        transport = self._transport
        if transport is None:
            return
        sock = transport.sock
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        deadline = time.monotonic() + REJECT_LINGER
        try:
            sock.setblocking(False)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # poll(), not select(): descriptors past 1023 are common on a busy server.
                if not wait_readable(sock, remaining):
                    break
                try:
                    if not sock.recv(65536):
                        break
                except ssl.SSLWantReadError:
                    continue
                except BlockingIOError:
                    continue
        except (OSError, ValueError):
            pass


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    _shutdown(sock)
    try:
        sock.close()
    except OSError:  # pragma: no cover
        pass


@dataclass
class ServerStats:
    """Counters of a :class:`Server` (for tests, logs and the command line)."""

    accepted: int = 0
    """Sockets accepted."""
    rejected_max_connections: int = 0
    """Clients refused because of ``max_connections`` or ``max_connections_per_ip``."""
    dropped_on_accept: int = 0
    """Sockets closed at once because too many refusals were already in progress."""
    auth_failures: int = 0
    """``connect`` attempts refused by authentication (challenges not counted)."""
    errors: int = 0
    """Sessions that ended with an unexpected exception."""


class Server:
    """rtmp.Server (refs/api.md): accept RTMP clients and run the built-in stream management."""

    def __init__(self, config: Optional[ServerConfig] = None) -> None:
        self.config = config or ServerConfig()
        self.hub = StreamHub(max_gop_bytes=self.config.max_gop_bytes)
        """The live streams (:class:`rtmp.streams.StreamHub`)."""
        self.stats = ServerStats()
        self._listener: Optional[socket.socket] = None
        self._address: Optional[Tuple[str, int]] = None
        self._accept_lock = threading.Lock()  # the leader: one thread in accept() at a time
        self._spares = 0  # threads waiting for a client (guarded by _lock)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._connections: Dict[str, ServerConnection] = {}
        self._threads: List[threading.Thread] = []
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(2)
        self._authenticator: Any = None
        self._auth_lock = threading.Lock()
        if self.config.require_auth:
            from .auth import AdobeAuthenticator

            self._authenticator = AdobeAuthenticator(self.config.username, self.config.password)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Bind, listen and start accepting on a background thread; returns once listening."""
        if self._listener is not None:
            raise RuntimeError("server already started")
        if self._stopping.is_set():
            raise RuntimeError("a stopped server cannot be restarted")
        host, port = parse_addr(self.config.addr)
        family = socket.AF_INET
        if host:
            try:
                if ipaddress.ip_address(host).version == 6:
                    family = socket.AF_INET6
            except ValueError:
                pass  # a host name: IPv4 resolution via bind
        if not host and socket.has_dualstack_ipv6():
            listener = socket.create_server(("", port), family=socket.AF_INET6,
                                            dualstack_ipv6=True, backlog=128)
        else:
            listener = socket.create_server((host, port), family=family, backlog=128)
        if KERNEL_TIMEOUTS:  # one accept() system call per client, not poll() + accept()
            listener.settimeout(None)
            set_kernel_timeout(listener, socket.SO_RCVTIMEO, POLL_INTERVAL)
        else:
            listener.settimeout(POLL_INTERVAL)
        self._listener = listener
        self._address = listener.getsockname()[:2]
        with self._lock:
            self._new_spare()
        logger.info("listening on %s:%d%s", self._address[0], self._address[1],
                    " (rtmps)" if self.config.ssl_context else "")

    def serve_forever(self) -> None:
        """Start if needed, then block until :meth:`stop` (from another thread or a signal)."""
        if self._listener is None and not self._stopping.is_set():
            self.start()
        try:
            while not self._stopped.wait(POLL_INTERVAL):
                pass
        except KeyboardInterrupt:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Close the listener, end every session and join every thread within ``timeout``."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.close()
            except OSError:  # pragma: no cover
                pass
        with self._lock:
            connections = list(self._connections.values())
            threads = list(self._threads)
        for conn in connections:
            conn.close()
        for thread in threads:
            if thread is threading.current_thread():
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("thread %s did not end within the stop timeout", thread.name)
        self._stopped.set()
        logger.info("server stopped")

    def __enter__(self) -> "Server":
        if self._listener is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    # -- properties -------------------------------------------------------------------------

    @property
    def address(self) -> Tuple[str, int]:
        """The bound ``(host, port)``."""
        if self._address is None:
            raise RuntimeError("server not started")
        return self._address

    @property
    def connections(self) -> List[ServerConnection]:
        """The live connections (not those being refused)."""
        with self._lock:
            return [c for c in self._connections.values() if not c._over_limit]

    @property
    def connection_count(self) -> int:
        return len(self.connections)

    # -- accepting ----------------------------------------------------------------------------

    def _new_spare(self) -> None:
        """Start a connection thread, counted as a spare (call with ``_lock`` held, so that
        :meth:`stop` never sees a thread it cannot join yet)."""
        thread = threading.Thread(target=self._connection_thread, name="rtmp-spare")
        thread.start()
        self._threads.append(thread)
        self._spares += 1

    def _connection_thread(self) -> None:
        """A connection thread: accept a client, serve its session, and again while wanted."""
        me = threading.current_thread()
        try:
            while True:
                accepted = self._accept()
                with self._lock:
                    self._spares -= 1
                    if accepted is not None and self._spares == 0 and not self._stopping.is_set():
                        try:
                            self._new_spare()  # never leave the listener without a thread
                        except RuntimeError as exc:  # out of threads: accept again after this session
                            logger.warning("no thread for the next client: %s", exc)
                if accepted is None:
                    return
                try:
                    self._start_connection(*accepted)
                except Exception:  # one bad socket never stops the server
                    logger.exception("could not start a connection for %s", accepted[1])
                    _close(accepted[0])
                with self._lock:
                    if self._stopping.is_set() or self._spares >= MAX_SPARE_THREADS:
                        return
                    self._spares += 1
                me.name = "rtmp-spare"
        finally:
            with self._lock:
                self._threads.remove(me)

    def _accept(self) -> Optional[Tuple[socket.socket, Any]]:
        """Wait for the next client (one thread at a time); None once the server stops."""
        while not self._stopping.is_set():
            with self._accept_lock:
                listener = self._listener
                if listener is None or self._stopping.is_set():
                    return None
                try:
                    return listener.accept()
                except (socket.timeout, BlockingIOError):  # POLL_INTERVAL passed: look at _stopping
                    continue
                except OSError as exc:
                    if self._stopping.is_set():
                        return None
                    logger.warning("accept failed: %s", exc)  # EMFILE and friends: back off
            time.sleep(POLL_INTERVAL)
        return None

    def _start_connection(self, sock: socket.socket, addr: Any) -> None:
        """Admit (or politely refuse) the client and run its session on this thread."""
        if sock.gettimeout() is not None:
            sock.settimeout(None)
        remote = (str(addr[0]), int(addr[1])) if addr else None
        config = self.config
        with self._lock:
            self.stats.accepted += 1
            active = [c for c in self._connections.values() if not c._over_limit]
            refusing = len(self._connections) - len(active)
            over = ""
            if len(active) >= config.max_connections:
                over = f"Too many connections (max_connections={config.max_connections})"
            elif config.max_connections_per_ip is not None and remote is not None:
                same = sum(1 for c in active if c.remote_addr and c.remote_addr[0] == remote[0])
                if same >= config.max_connections_per_ip:
                    over = (f"Too many connections from {remote[0]} "
                            f"(max_connections_per_ip={config.max_connections_per_ip})")
            if over:
                self.stats.rejected_max_connections += 1
                if refusing >= REJECT_BACKLOG:
                    self.stats.dropped_on_accept += 1
                    logger.warning("%s; closing %s at once", over, remote)
                    _close(sock)
                    return
            conn_id = f"{self._prefix}-{next(self._ids)}"
            conn = ServerConnection(self, sock, conn_id, remote, over_limit=over)
            self._connections[conn_id] = conn
        threading.current_thread().name = f"rtmp-conn-{conn_id}"
        conn.log.info("accepted from %s%s", remote, f" (refusing: {over})" if over else "")
        self._serve(conn)

    def _serve(self, conn: ServerConnection) -> None:
        """One connection's thread: run the session; whatever happens, clean up."""
        try:
            conn.run()
        except (ConnectionClosedError, HandshakeError) as exc:
            conn.log.info("%s", conn.ended(exc))
        except TimeoutError as exc:
            conn.log.info("session timed out: %s", exc)
        except ProtocolError as exc:
            conn.log.warning("protocol error, closing: %s", exc)
        except RTMPError as exc:
            conn.log.warning("session failed: %s", exc)
        except Exception:
            self.stats.errors += 1
            conn.log.exception("session crashed")
        finally:
            try:
                conn.teardown()
            except Exception:
                conn.log.exception("teardown failed")
            with self._lock:
                self._connections.pop(conn.id, None)
            conn.log.info("closed")

    # -- services for connections -------------------------------------------------------

    def authenticate(self, conn: ConnectionContext, app_text: str, query: str) -> None:
        """AUTH-ADOBE: raise rtmp.netconnection.Rejected with the challenge/failure description, or return."""
        auth = self._authenticator
        assert auth is not None
        with self._auth_lock:  # one authenticator serves every connection's thread
            decision = auth.check(app_text, conn.tc_url or None)
        if decision.accepted:
            conn.log.info("authenticated as %r (AUTH-ADOBE)", decision.user)
            conn.user = decision.user
            return
        if decision.stage == "failed":
            self.stats.auth_failures += 1
        conn.log.info("AUTH-ADOBE %s for user %r", decision.stage, decision.user)
        raise Rejected(decision.description)

    def recording(self, app: str, name: str) -> Optional["os.PathLike[str]"]:
        """The recorded FLV for ``app/name`` if ``record_dir`` is set and it exists."""
        if self.config.record_dir is None or not name:
            return None
        from .record_path import find_recording

        try:
            return find_recording(self.config.record_dir, app, name)
        except (ValueError, TypeError):
            return None

    def open_recorder(self, conn: ConnectionContext, name: str, stream_type: StreamType) -> Any:
        """RTMP 7.2.2.6: a Recorder for ``record`` (truncate) or ``append``."""
        if self.config.record_dir is None:
            raise ValueError("recording is not enabled on this server (record_dir is not set)")
        from .record_path import safe_record_path
        from .recorder import Recorder

        path = safe_record_path(self.config.record_dir, conn.app, name)
        return Recorder(path, append=stream_type == StreamType.APPEND, logger=conn.log)
