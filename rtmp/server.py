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
through the narrow :class:`rtmp.netstream.ConnectionContext` that
:class:`rtmp.server_connection.ServerConnection` implements; that module has the
session's read loop, ping/idle policy, dispatch and teardown; this one keeps
accept, threads, limits, shutdown and the services the handlers call):

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
  (:mod:`rtmp.streams`) and, when recording, to :class:`rtmp.segmenter.SegmentedRecorder`;
* anything else reaches ``on_message`` (or :meth:`rtmp.server_connection.ServerConnection.read_message`).

Live players do not write from the publisher's thread: every player has a
bounded queue and a writer thread (:class:`rtmp.streams.LivePlayer`).  VOD
players have their own thread too (:class:`rtmp.vod.VodPlayer`).

:meth:`Server.stop` sets an event, closes the listener, shuts every session
socket down (so a blocked ``recv`` returns at once) and joins every thread
within a timeout.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import os
import pathlib
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Collection,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
)

from .chunk import MAX_CHUNK_SIZE, Limits
from .client import ClientConfig
from .config import check_connection_settings, check_record_settings
from .errors import (
    ConnectionClosedError,
    HandshakeError,
    ProtocolError,
    RTMPError,
    TimeoutError,
)
from .netconnection import Rejected
from .pull import DEFAULT_PULL_IDLE, OnPull, Puller, parse_pull_rule
from .push import Pusher, PushTarget, parse_push_rule
from .record_path import find_recording
from .relay import RelayInfo, loop_reason, relay_chain
from .netstream import MAX_STREAMS_PER_CONNECTION as MAX_STREAMS_PER_CONNECTION
from .netstream import ConnectionContext
from .requests import CONTAINER_MARKERS as _CONTAINER_MARKERS  # noqa: F401  (tests)
from .requests import check_depth as _check_depth  # noqa: F401  (tests)
from .requests import nesting as _nesting  # noqa: F401  (tests)
from .message import Message, StreamType
from .streams import (
    DEFAULT_MAX_GOP_BYTES,
    DEFAULT_MAX_QUEUE_BYTES,
    DEFAULT_MAX_QUEUE_DELAY,
    StreamHub,
)
from .shared_object import SOEvent
from .shared_object_store import OUTBOX_QUEUE_BYTES, ServerSharedObject, SharedObjectStore
from .server_connection import POLL_INTERVAL, ConnectionState, ServerConnection
from .url import is_loopback
from .url import parse_addr as parse_addr  # rtmp.server.parse_addr stays importable
from .transport import KERNEL_TIMEOUTS, close_socket, set_kernel_timeout

if TYPE_CHECKING:  # pragma: no cover
    from .httpapi import HTTPServer

__all__ = ["Server", "ServerConfig", "ServerConnection", "ConnectionState"]

logger = logging.getLogger(__name__)

#: Threads that may wait for the next client once their session ended; more end.
MAX_SPARE_THREADS = 4
#: Connections beyond ``max_connections`` that may be in the middle of being
#: refused politely at once; past that, sockets are closed on accept.
REJECT_BACKLOG = 32

OnConnect = Callable[["ServerConnection"], Any]
OnDisconnect = Callable[["ServerConnection"], Any]
OnPublish = Callable[["ServerConnection", str, StreamType], Any]
OnPlay = Callable[["ServerConnection", str], Any]
OnMessage = Callable[["ServerConnection", Message], Any]
OnRecord = Callable[["ServerConnection", str, str], Any]
OnRecordDone = Callable[[pathlib.Path], Any]
OnSharedObject = Callable[["ServerConnection", str, SOEvent], Any]


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
    record_all: Union[bool, Collection[str]] = False
    """Record every publish, type ``live`` included (what ffmpeg and OBS send), as parts
    ``<record_dir>/<app>/<name>-<UTC start>-<NNNN>.flv``: True for every application, or
    the names of the applications to record.  Needs ``record_dir``."""
    on_record: Optional[OnRecord] = None
    """``on_record(conn, app, stream_name) -> bool``: asked for each ``live`` publish that
    ``record_all`` covers; false (or raising) leaves that stream unrecorded."""
    record_segment_seconds: Optional[float] = None
    """Cut ``record_all`` recordings into parts of this much media time, at keyframes."""
    record_segment_bytes: Optional[int] = None
    """Cut ``record_all`` recordings into parts of this many bytes, at keyframes."""
    on_record_done: Optional[OnRecordDone] = None
    """``on_record_done(path)`` for each finished recording and part, on the recording's
    own thread (never the publisher's), parts in order."""
    shared_objects_dir: Optional[Union[str, "os.PathLike[str]"]] = None
    """Where persistent shared objects (RTMP 7.1.3) are kept, as ``<app>/<name>.rso``;
    None: a persistent Use gets Status ``SharedObject.BadPersistence``."""
    on_shared_object: Optional[OnSharedObject] = None
    """``on_shared_object(conn, name, event)`` before a shared object's Use, Request
    Change, Request Remove or SendMessage (an :class:`rtmp.shared_object.SOEvent`);
    raising refuses it (the requester gets a Status event with an error code)."""
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
    """Hard cap of one live player's send queue (bytes, 32 MiB): past it whole frames are
    dropped, past four times it everything (a stalled player).  Queued bytes are shared by
    the players of a stream (chunked once), so it bounds what one player keeps alive.  A
    shared-object user's outbox uses at most 2 MiB of it (:mod:`rtmp.shared_object_store`)."""
    max_queue_delay: float = DEFAULT_MAX_QUEUE_DELAY
    """Seconds the oldest item of a live player's queue may wait before the player counts
    as slow and loses whole frames until it has caught up (:mod:`rtmp.streams`); a player
    that keeps up gets the whole stream, however fast the publisher sends."""
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
    http_addr: Optional[str] = None
    """``"host:port"`` of the HTTP API, metrics and status page (refs/http-api.md); None
    (the default): no HTTP side.  Beyond loopback it needs ``http_token``."""
    http_token: Optional[str] = None
    """Bearer token of the HTTP API: needed for ``POST /api/connections/<id>/drop``
    always, and for every endpoint when ``http_addr`` is not a loopback address."""
    push: Sequence[str] = ()
    """Push every live stream to other servers (:mod:`rtmp.push`): ``"rtmp[s]://host[:port]/app"``
    (every application's streams, as ``app/<name>`` there) or ``"APP=rtmp[s]://..."`` (only
    application ``APP``); a stream part in the URL is a name template (``{app}``,
    ``{name}``).  A malformed entry is a ValueError here."""
    push_reconnect: float = 3.0
    """The longest wait between a lost push target's reconnect attempts (seconds; the
    first waits 0.5 s, each next one twice as long up to this)."""
    push_client: Optional[ClientConfig] = None
    """The :class:`rtmp.client.ClientConfig` of the push sessions (timeouts, chunk size, rtmps
    trust: ``ca_file``, ``ssl_context``, ``tls_insecure``); None: :data:`rtmp.push.PUSH_CLIENT`."""
    pull: Sequence[str] = ()
    """Play the live streams nobody publishes here from an origin (:mod:`rtmp.pull`, an
    edge): ``"rtmp[s]://origin[:port]/app"`` (every application's streams, as
    ``app/<name>`` there) or ``"APP=rtmp[s]://..."`` (only application ``APP``); a stream
    part in the URL is a name template (``{app}``, ``{name}``).  A malformed entry is a
    ValueError here."""
    on_pull: Optional[OnPull] = None
    """``on_pull(conn, app, name) -> Optional[str]``: the origin URL to pull ``app/name``
    from (a stream part names it there, else ``name``), or None not to pull; when set,
    it decides instead of ``pull``.  Raising refuses the play (``NetStream.Play.Failed``)."""
    pull_idle: float = DEFAULT_PULL_IDLE
    """Seconds a pull stays open after its last local player left."""
    pull_reconnect: float = 3.0
    """The longest wait between a lost pull's reconnect attempts (seconds)."""
    pull_client: Optional[ClientConfig] = None
    """The :class:`rtmp.client.ClientConfig` of the pull sessions; None:
    :data:`rtmp.pull.PULL_CLIENT`."""

    def __post_init__(self) -> None:
        check_connection_settings(
            self, timeouts=("read_timeout", "write_timeout", "handshake_timeout"),
            positive=("max_queue_bytes", "max_queue_delay"), limits=self.limits,
        )  # fmt: skip
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.require_auth_players:
            self.require_auth = True
        if self.require_auth and (not self.username or self.password is None):
            raise ValueError("require_auth needs username and password")
        parse_addr(self.addr)
        check_record_settings(self)
        if isinstance(self.push, str):
            raise ValueError("push takes a list of URLs, not one string")
        self.push = tuple(self.push)
        for entry in self.push:
            parse_push_rule(entry)
        if not self.push_reconnect > 0:
            raise ValueError("push_reconnect must be positive")
        if isinstance(self.pull, str):
            raise ValueError("pull takes a list of URLs, not one string")
        self.pull = tuple(self.pull)
        for entry in self.pull:
            parse_pull_rule(entry)
        if not self.pull_idle >= 0 or not self.pull_reconnect > 0:
            raise ValueError("pull_idle must be at least 0 and pull_reconnect positive")
        if self.http_addr is not None:
            http_host, _ = parse_addr(self.http_addr)
            if not is_loopback(http_host) and not self.http_token:
                raise ValueError(f"http_addr {self.http_addr!r} is not a loopback address: "
                                 "it needs http_token (refs/http-api.md)")

    @property
    def limits(self) -> Limits:
        """The four chunk-decoder limits above as one :class:`rtmp.chunk.Limits`."""
        return Limits(
            max_message_size=self.max_message_size,
            max_chunk_streams=self.max_chunk_streams,
            max_pending_bytes=self.max_pending_bytes,
            max_chunk_size=self.max_chunk_size,
        )


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
    timeouts: int = 0
    """Sessions that ended on a timeout (read, handshake, idle)."""
    handshake_failures: int = 0
    """Sessions that ended in the handshake (RTMP 5.2: a port scan, a TCP health check...)."""
    protocol_errors: int = 0
    """Sessions that ended on a protocol error."""
    failures: int = 0
    """Sessions that ended on another :class:`rtmp.RTMPError` (a limit exceeded, ...)."""
    bytes_received: int = 0
    """Bytes received by the connections that have ended."""
    bytes_sent: int = 0
    """Bytes sent by the connections that have ended."""

    def errors_by_kind(self) -> List[Tuple[str, int]]:
        """``(kind, count)`` for /metrics' ``rtmp_errors_total`` (refs/http-api.md)."""
        return [("rejected", self.rejected_max_connections),
                ("dropped_on_accept", self.dropped_on_accept), ("auth", self.auth_failures),
                ("handshake", self.handshake_failures), ("timeout", self.timeouts),
                ("protocol", self.protocol_errors),
                ("failed", self.failures), ("crash", self.errors)]


class Server:
    """rtmp.Server (refs/api.md): accept RTMP clients and run the built-in stream management."""

    def __init__(self, config: Optional[ServerConfig] = None) -> None:
        self.config = config or ServerConfig()
        self.hub = StreamHub(max_gop_bytes=self.config.max_gop_bytes)
        """The live streams (:class:`rtmp.streams.StreamHub`)."""
        self.shared_objects = SharedObjectStore(
            self.config.shared_objects_dir, on_event=self.config.on_shared_object,
            max_queue_bytes=min(self.config.max_queue_bytes, OUTBOX_QUEUE_BYTES), log=logger)
        """The remote shared objects (:class:`rtmp.shared_object_store.SharedObjectStore`)."""
        self.stats = ServerStats()
        self.relay_id = secrets.token_hex(6)
        """This server's id in relayed streams' ``rtmpRelayVia`` (:mod:`rtmp.relay`)."""
        self.pusher = Pusher([parse_push_rule(e) for e in self.config.push], self.relay_id,
                             max_queue_bytes=self.config.max_queue_bytes,
                             reconnect=self.config.push_reconnect,
                             client_config=self.config.push_client)
        """The push targets of the live streams (:class:`rtmp.push.Pusher`)."""
        self.puller = Puller([parse_pull_rule(e) for e in self.config.pull], self.hub,
                             self.relay_id, idle=self.config.pull_idle,
                             reconnect=self.config.pull_reconnect,
                             client_config=self.config.pull_client,
                             on_pull=self.config.on_pull)
        """The pulls from origins of the streams played here (:class:`rtmp.pull.Puller`)."""
        self.started_at = time.monotonic()
        """When the server was made, then started (``time.monotonic()``)."""
        self.http: Optional["HTTPServer"] = None
        """The HTTP side (:class:`rtmp.httpapi.HTTPServer`) once started with ``http_addr``."""
        self._listener: Optional[socket.socket] = None
        self._address: Optional[Tuple[str, int]] = None
        self._accept_lock = threading.Lock()  # the leader: one thread in accept() at a time
        self._spares = 0  # threads waiting for a client (guarded by _lock)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._connections: Dict[str, ServerConnection] = {}
        self._refusing = 0  # of _connections, those over a limit (guarded by _lock)
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
        if self.config.http_addr is not None:
            self._start_http(listener)
        self._listener = listener
        self._address = listener.getsockname()[:2]
        self.started_at = time.monotonic()
        with self._lock:
            self._new_spare()
        logger.info("listening on %s:%d%s", self._address[0], self._address[1],
                    " (rtmps)" if self.config.ssl_context else "")

    def _start_http(self, listener: socket.socket) -> None:
        """Start the HTTP side (refs/http-api.md); if it cannot bind, close ``listener``."""
        from .httpapi import HTTPServer

        assert self.config.http_addr is not None
        try:
            http = HTTPServer(self, self.config.http_addr, self.config.http_token)
            http.start()
        except (OSError, ValueError):
            listener.close()
            raise
        self.http = http

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
        if self.http is not None:
            self.http.stop(max(0.0, deadline - time.monotonic()))
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
        self.pusher.close(max(0.0, deadline - time.monotonic()))
        self.puller.close(max(0.0, deadline - time.monotonic()))
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
            return [c for c in self._connections.values() if not c.over_limit]

    def request_reconnect_all(self, tc_url: Optional[str] = None,
                              description: str = "") -> List[str]:
        """ERTMP Reconnect Request: ask every connected client to reconnect (before a
        planned restart, or to move them to ``tc_url``); see
        :meth:`rtmp.server_connection.ServerConnection.request_reconnect`.  Returns the
        ids of the connections asked (those closing meanwhile are skipped)."""
        asked = []
        for conn in self.connections:
            try:
                conn.request_reconnect(tc_url, description)
            except RTMPError as exc:  # not connected yet, or gone meanwhile
                conn.log.debug("no reconnect request: %s", exc)
                continue
            asked.append(conn.id)
        logger.info("asked %d clients to reconnect", len(asked))
        return asked

    @property
    def connection_count(self) -> int:
        return len(self.connections)

    @property
    def relays(self) -> List[RelayInfo]:
        """Every push target and pull: state, bytes, reconnects (:mod:`rtmp.relay`)."""
        return self.pusher.infos() + self.puller.infos()

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
                    close_socket(accepted[0])
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
            refusing = self._refusing  # counted, not walked: an accept costs O(1)
            over = ""
            if len(self._connections) - refusing >= config.max_connections:
                over = f"Too many connections (max_connections={config.max_connections})"
            elif config.max_connections_per_ip is not None and remote is not None:
                same = sum(1 for c in self._connections.values() if not c.over_limit
                           and c.remote_addr and c.remote_addr[0] == remote[0])
                if same >= config.max_connections_per_ip:
                    over = (f"Too many connections from {remote[0]} "
                            f"(max_connections_per_ip={config.max_connections_per_ip})")
            if over:
                self.stats.rejected_max_connections += 1
                if refusing >= REJECT_BACKLOG:
                    self.stats.dropped_on_accept += 1
                    logger.warning("%s; closing %s at once", over, remote)
                    close_socket(sock)
                    return
            conn_id = f"{self._prefix}-{next(self._ids)}"
            conn = ServerConnection(self, sock, conn_id, remote, over_limit=over)
            self._connections[conn_id] = conn
            if over:
                self._refusing += 1
        threading.current_thread().name = f"rtmp-conn-{conn_id}"
        if over:  # refused: worth a line of its own (the closing line follows)
            conn.log.info("accepted from %s (refusing: %s)", remote, over)
        else:  # the "connected" line names the client; the closing line sums up
            conn.log.debug("accepted from %s", remote)
        self._serve(conn)

    def _serve(self, conn: ServerConnection) -> None:
        """One connection's thread: run the session; whatever happens, clean up.

        At INFO a session logs a line when it connects, one per publish or play, and
        one when it closes (how it ended, its length and bytes): what an operator
        needs, and no more (each log record costs about as much CPU as a command).
        Failures that need attention log a warning of their own first."""
        outcome = "session ended"
        try:
            conn.run()
        except HandshakeError as exc:
            self.stats.handshake_failures += 1
            outcome = conn.ended(exc)
        except ConnectionClosedError as exc:
            outcome = conn.ended(exc)
        except TimeoutError as exc:
            self.stats.timeouts += 1
            outcome = f"session timed out: {exc}"
        except ProtocolError as exc:
            self.stats.protocol_errors += 1
            conn.log.warning("protocol error, closing: %s", exc)
            outcome = "protocol error"
        except RTMPError as exc:
            self.stats.failures += 1
            conn.log.warning("session failed: %s", exc)
            outcome = "session failed"
        except Exception:
            self.stats.errors += 1
            conn.log.exception("session crashed")
            outcome = "session crashed"
        finally:
            try:
                conn.teardown()
            except Exception:
                conn.log.exception("teardown failed")
            transport = conn.transport
            with self._lock:
                if self._connections.pop(conn.id, None) is not None and conn.over_limit:
                    self._refusing -= 1
                if transport is not None:  # /metrics' totals stay monotonic
                    self.stats.bytes_received += transport.bytes_received
                    self.stats.bytes_sent += transport.bytes_sent
            if conn.log.isEnabledFor(logging.INFO):
                received, sent = ((transport.bytes_received, transport.bytes_sent)
                                  if transport is not None else (0, 0))
                conn.log.info("closed: %s (%s, %.1f s, %d bytes in, %d out)", outcome,
                              conn.remote_addr, time.monotonic() - conn.created, received, sent)

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

    def relay_loop(self, conn: ConnectionContext) -> Optional[str]:
        """Why a publish on ``conn`` would close a relay loop (:func:`rtmp.relay.loop_reason`),
        or None."""
        return loop_reason(conn.connect_params, self.relay_id)

    def start_push(self, conn: ConnectionContext, live: Any, plan: Any = None) -> List[PushTarget]:
        """Start pushing the stream ``conn`` publishes (``plan``: what ``on_publish`` returned)."""
        return self.pusher.start(live, relay_chain(conn.connect_params), plan)

    def start_pull(self, conn: ConnectionContext, name: str) -> Optional[str]:
        """Pull ``conn.app/name`` from its origin for a waiting player (:mod:`rtmp.pull`);
        why the play is refused, or None."""
        return self.puller.want(conn.connection, conn.connect_params, conn.app, name)

    def shared_object(self, app: str, name: str, persistent: bool = False) -> ServerSharedObject:
        """RTMP 7.3.2: the server's handle on shared object ``name`` of application ``app``
        (made if needed), with ``get``/``set``/``delete``/``send`` that every user hears."""
        return self.shared_objects.open(app, name, persistent)

    def recording(self, app: str, name: str) -> Optional["os.PathLike[str]"]:
        """The recorded FLV for ``app/name`` if ``record_dir`` is set: ``<name>.flv``, else
        the newest part of a ``record_all`` recording (or None)."""
        if self.config.record_dir is None or not name:
            return None
        try:
            return find_recording(self.config.record_dir, app, name)
        except (ValueError, TypeError):
            return None

    def open_recorder(self, conn: ConnectionContext, name: str, stream_type: StreamType) -> Any:
        """RTMP 7.2.2.6: what this publish records (:func:`rtmp.segmenter.open_recording`)."""
        from .segmenter import open_recording

        return open_recording(conn, name, stream_type)
