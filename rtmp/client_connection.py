"""RTMP 7.2 over RTMP 5-6: the connection under :class:`rtmp.client.Client`, and its settings.

:class:`ClientConfig` holds what a client may be told, :class:`ClientState` where its
connection is in its lifecycle, and :class:`ClientConnection` does the connection's I/O:
``Client`` is the API a script calls and asks this class for every byte it sends or reads.

Theory of operation
-------------------
A connection owns one :class:`~rtmp.transport.Transport` and reads in the caller's
thread.  Every blocking operation writes its command and then *pumps* the connection
(:meth:`ClientConnection.pump_until`) until the reply it expects arrives or its deadline
passes.  Each message read goes to the connection's
:class:`~rtmp.client_inbox.ClientInbox`, which matches ``_result``/``_error`` to our
requests by transaction id and ``onStatus`` to the status awaited by code
(:class:`rtmp.calls.Calls`), notes user control events and the ends of play, and keeps
media, data and unmatched commands for ``read_message``; the replies it asks for
(``_checkbw`` after ``onBWDone``) are sent from here.  An awaited ``_error`` or an
error-level ``onStatus`` raises :class:`~rtmp.errors.CommandError`.

Writes go straight to the transport, whose lock makes them thread-safe, so one thread
may read while another publishes.  A connection that only writes (a publisher) takes a
short look at incoming traffic every ``service_interval`` seconds from inside its writes,
so pings are answered and a hang-up is noticed.

Authentication (AUTH-ADOBE, AUTH-LLNW) reconnects: when ``connect`` is refused with an
``authmod=`` description, :meth:`ClientConnection.connect` opens a new connection whose
``app`` and ``tcUrl`` carry the next query of the challenge, as ffmpeg does.

Closing a publisher is confirmed (:meth:`ClientConnection.close`): after the goodbye
commands the transport half-closes and reads until the server's end of file
(:meth:`rtmp.transport.Transport.finish`).
"""

from __future__ import annotations

import enum
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, TypeVar, Union

from . import auth, commands, control
from .calls import CallError, CallResult, Calls, ReplyMode, StatusFailed
from .chunk import Limits
from .client_inbox import ClientInbox
from .commands import Command, StatusEvent
from .config import check_connection_settings
from .errors import CommandError, ConnectionClosedError, RTMPError, TimeoutError
from .message import SHARED_OBJECT_TYPES, Message
from .playback import END_SIGNAL_GRACE, EndOfPlay
from .remote_shared_object import SharedObjects
from .requests import CAPS_EX_RECONNECT, Connect, EnhancedCaps, Request
from .transport import Transport, client_ssl_context, open_connection, transport_from_config
from .url import RTMPURL

__all__ = ["ClientConfig", "ClientConnection", "ClientState"]

_T = TypeVar("_T")
_Logger = Union[logging.Logger, logging.LoggerAdapter]  # type: ignore[type-arg]

#: [impl] ffmpeg's player capabilities in connect (RTMP 7.2.1.1 flag tables).
FFMPEG_AUDIO_CODECS = 4071  # SUPPORT_SND_ALL without INTEL and UNUSED
FFMPEG_VIDEO_CODECS = 252  # SORENSON | HOMEBREW | VP6 | VP6ALPHA | HOMEBREWV | H264



class ClientState(enum.Enum):
    """The client's lifecycle (refs/api.md), after h11's explicit state machine."""

    DISCONNECTED = "disconnected"
    """No connection: before ``connect`` and after ``close``."""
    HANDSHAKING = "handshaking"
    """TCP (or TLS) is up; the RTMP 5.2 handshake is running."""
    CONNECTING = "connecting"
    """``connect`` (RTMP 7.2.1.1) was sent; waiting for ``_result``."""
    CONNECTED = "connected"
    """The NetConnection is up; streams can be created."""
    PUBLISHING = "publishing"
    """``NetStream.Publish.Start`` arrived (RTMP 7.2.2.6)."""
    SUBSCRIBING = "subscribing"
    """``NetStream.Play.Start`` arrived (RTMP 7.2.2.1)."""
    ERROR = "error"
    """The connection failed; only ``close`` (and a new ``connect``) are allowed."""


@dataclass
class ClientConfig:
    """Configuration of a :class:`Client` (refs/api.md names first, then ours)."""

    connect_timeout: float = 30.0
    """Seconds for the whole of ``connect``: TCP/TLS, handshake and the connect reply."""
    read_timeout: float = 30.0
    """Seconds ``read_message`` and each command reply may take."""
    write_timeout: float = 30.0
    """Seconds one write may block before the connection is given up."""
    close_timeout: float = 10.0
    """Seconds ``close()`` of a publisher waits for the server to close its side after
    ours, which confirms that the server read the whole stream."""
    chunk_size: int = 4096
    """Our outgoing chunk size, announced with Set Chunk Size right after the handshake
    (RTMP 5.4.1); 128 keeps the default and sends nothing."""
    window_ack_size: int = 2_500_000
    """The acknowledgement window we ask of the server (RTMP 5.4.4)."""
    app_name: Optional[str] = None
    """The application when the URL has none (``rtmp://host:1935`` + ``app_name``)."""
    stream_name: Optional[str] = None
    """The stream for ``publish()``/``play()`` called without a name, when the URL has none."""
    username: Optional[str] = None
    """User for a server's authentication challenge (AUTH-ADOBE / AUTH-LLNW); the URL's
    ``user:pass@`` is used when this is None."""
    password: Optional[str] = None
    """Password for the challenge (see ``username``)."""
    object_encoding: int = 0
    """0 = AMF0, 3 = AMF3: the ``objectEncoding`` offered in connect (RTMP 7.2.1.1)."""
    ssl_context: Optional[ssl.SSLContext] = None
    """TLS settings for ``rtmps://``; when None, the system's trusted certificates plus
    ``ca_file``, checked unless ``tls_insecure`` (:func:`rtmp.transport.client_ssl_context`)."""
    ca_file: Optional[str] = None
    """A PEM file of certificates to trust for ``rtmps://`` (a self-signed or private CA);
    ignored when ``ssl_context`` is given."""
    tls_insecure: bool = False
    """Skip the certificate and host name checks of ``rtmps://`` (still encrypted, but anyone
    may be on the other end); ignored when ``ssl_context`` is given."""
    flash_ver: str = commands.DEFAULT_FLASH_VERSION
    """The ``flashVer`` property of connect (RTMP 7.2.1.1)."""
    swf_url: Optional[str] = None
    """The ``swfUrl`` property of connect, sent only when set."""
    page_url: Optional[str] = None
    """The ``pageUrl`` property of connect, sent only when set."""
    connect_properties: Dict[str, Any] = field(default_factory=dict)
    """Extra properties merged into (and overriding) the connect command object."""
    connect_arguments: List[Any] = field(default_factory=list)
    """Optional user arguments sent after the connect command object (RTMP 7.2.1.1)."""
    digest_handshake: bool = True
    """Send an FP9 digest C1 (HS-FP9), which servers that verify clients require."""
    publish_preamble: bool = True
    """Send ``releaseStream`` and ``FCPublish`` before publishing, as OBS and ffmpeg do
    ([impl]; servers like FMS/Wowza/CDNs expect them)."""
    answer_bandwidth_check: bool = True
    """Answer ``onBWDone`` with ``_checkbw`` as ffmpeg does ([impl])."""
    buffer_length: int = 3000
    """Milliseconds announced with Set Buffer Length after ``play`` (RTMP 7.1.7 event 3)."""
    play_times_in_milliseconds: bool = True
    """Send play's start/duration in milliseconds, as Flash Player, ffmpeg and nginx-rtmp
    do; False sends the seconds RTMP 7.2.2.1 describes."""
    flush_on_seek: bool = True
    """After ``seek``, drop the audio and video (and the ends of play, see
    ``read_message``) already buffered for ``read_message``: they precede the seek
    point, and Flash Player flushes its buffer."""
    split_aggregates: bool = True
    """Hand Aggregate messages (RTMP 7.1.6) out as their sub-messages."""
    accept_media_on_stream_zero: bool = True
    """Accept a player's media on message stream id 0 (some servers send it there)."""
    service_interval: float = 0.25
    """Seconds between the looks a writing-only client (a publisher) takes at incoming
    traffic, so pings are answered and a server hang-up is noticed; 0 disables."""
    max_buffered_messages: int = 10_000
    """Messages kept for ``read_message`` while a command waits for its reply."""
    max_buffered_bytes: int = 64 * 1024 * 1024
    """Bytes kept for ``read_message`` while a command waits for its reply."""
    max_auth_attempts: int = 3
    """Connections one ``connect`` may open for an authentication challenge (ffmpeg: 3)."""
    on_status: Optional[Callable[[StatusEvent], None]] = None
    """Called (on the reading thread) with every ``onStatus`` (RTMP 7.2.2) the client
    receives, as a :class:`rtmp.StatusEvent`; an exception it raises is logged."""
    strict: bool = False
    """Refuse every tolerated deviation (for the conformance probe): media on msid 0,
    milliseconds in play, lenient chunk parsing."""
    limits: Optional[Limits] = None
    """What the server may make our chunk decoder hold (RTMP 5.3); None: the defaults."""
    fourcc_list: Sequence[str] = ()
    """ERTMP Enhancing NetConnection connect Command: the ``fourCcList`` sent in connect
    (codecs we handle, e.g. ``("hvc1", "av01", "Opus")``; ``"*"``: any); empty: not sent."""
    video_fourcc_info_map: Dict[str, int] = field(default_factory=dict)
    """``videoFourCcInfoMap`` sent in connect: FourCC -> FourCcInfoMask bits (CanDecode 1,
    CanEncode 2, CanForward 4: ``rtmp.requests.FOURCC_CAN_*``); empty: not sent."""
    audio_fourcc_info_map: Dict[str, int] = field(default_factory=dict)
    """``audioFourCcInfoMap`` sent in connect, as ``video_fourcc_info_map``."""
    caps_ex: Optional[int] = None
    """``capsEx`` bits sent in connect (``rtmp.requests.CAPS_EX_*``); Reconnect (1) is added
    while ``follow_reconnect_request`` is on.  None and not following: not sent."""
    follow_reconnect_request: bool = True
    """ERTMP Reconnect Request: follow the server's ``NetConnection.Connect.ReconnectRequest``
    (a publisher at its next keyframe, a player at once) to the ``tcUrl`` it names, and
    publish or play the same stream there (:mod:`rtmp.reconnect`); stated in ``capsEx``."""
    reconnect: bool = False
    """Reconnect by itself when the connection is lost while publishing or playing, and go
    on with the same stream (:mod:`rtmp.reconnect`); off by default."""
    reconnect_attempts: int = 5
    """Connections tried, one after another, for one reconnection before giving up."""
    reconnect_backoff: float = 0.5
    """Seconds before the second attempt; doubled for each next one, up to
    ``reconnect_backoff_max`` (the first attempt goes at once)."""
    reconnect_backoff_max: float = 10.0
    """The longest wait between two attempts (seconds)."""

    def __post_init__(self) -> None:
        if self.object_encoding not in (0, 3):
            raise ValueError(f"object_encoding must be 0 or 3 (RTMP 7.2.1.1), not {self.object_encoding}")
        check_connection_settings(self, timeouts=("connect_timeout", "read_timeout", "write_timeout",
                                                              "close_timeout"),
                                  limits=self.limits)
        if self.max_buffered_messages < 1 or self.max_buffered_bytes < 1:
            raise ValueError("the read buffer limits must be positive")
        if self.reconnect_attempts < 1 or not 0 <= self.reconnect_backoff <= self.reconnect_backoff_max:
            raise ValueError("reconnect_attempts must be at least 1 and "
                             "0 <= reconnect_backoff <= reconnect_backoff_max")
        if self.strict:
            self.play_times_in_milliseconds = False
            self.accept_media_on_stream_zero = False


    def enhanced_caps(self) -> EnhancedCaps:
        """ERTMP Enhancing NetConnection connect Command: what connect states we can do."""
        caps = self.caps_ex
        if self.follow_reconnect_request:
            caps = (caps or 0) | CAPS_EX_RECONNECT
        return EnhancedCaps(tuple(self.fourcc_list), dict(self.video_fourcc_info_map),
                            dict(self.audio_fourcc_info_map), caps)


class ClientConnection:
    """One NetConnection of a client (RTMP 7.2.1) and all of its I/O: connect with the
    authentication reconnects, the pump that reads until a reply or status arrives,
    writes, ``read_message``, the confirmed close.

    :class:`rtmp.client.Client` is the API over it and keeps what a NetStream is (its
    name, whether it published); this class keeps the state, the transport and the
    transactions (:class:`rtmp.calls.Calls`), and hands every message it reads to
    :attr:`inbox` (:class:`~rtmp.client_inbox.ClientInbox`: the stream in use, the
    ends of play, the read buffer).
    """

    def __init__(self, config: ClientConfig, conn_id: str, log: _Logger) -> None:
        self.config = config
        self.id = conn_id
        self.log = log
        self._state = ClientState.DISCONNECTED
        self._state_lock = threading.Lock()
        self._read_lock = threading.RLock()
        self._transport: Optional[Transport] = None
        self._url: Optional[RTMPURL] = None
        self._server_info: Dict[str, Any] = {}
        self._server_properties: Dict[str, Any] = {}
        # RTMP 7.2: transactions and status waits (connect is 1, our calls count from 2).
        self._calls = Calls(answer_bandwidth_check=config.answer_bandwidth_check, log=log)
        #: What arrives, dispatched: the read buffer, the stream in use, the ends of play.
        self.inbox = ClientInbox(config, self._calls, log)
        #: RTMP 7.3.2: remote shared objects, serviced wherever we read.
        self.shared = SharedObjects(self.send, self.pump_until,
                                    lambda: self._calls.object_encoding == commands.AMF3,
                                    lambda: config.read_timeout, log)
        self._next_service = 0.0
        self._authenticated = False

    # -- what the client reads ------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        # Undocumented on purpose: Client.state is the one the API reference shows.
        return self._state

    @property
    def transport(self) -> Optional[Transport]:
        """The transport of the current connection, None when there is none."""
        return self._transport

    @property
    def url(self) -> Optional[RTMPURL]:
        """The URL of the last ``connect`` (app and stream resolved)."""
        return self._url

    @property
    def object_encoding(self) -> int:
        """The encoding agreed in the connect ``_result`` (0 or 3), that of our calls."""
        return self._calls.object_encoding

    @property
    def server_info(self) -> Dict[str, Any]:
        """The information object of the connect ``_result`` (RTMP 7.2.1.1)."""
        return self._server_info

    @property
    def server_properties(self) -> Dict[str, Any]:
        """The properties object of the connect ``_result``."""
        return self._server_properties

    @property
    def is_open(self) -> bool:
        """Connected (or connecting) on a transport that is not closed."""
        transport = self._transport
        return transport is not None and not transport.closed and self._state not in (
            ClientState.ERROR, ClientState.DISCONNECTED)

    def set_state(self, state: ClientState) -> None:
        """Move to ``state`` (logged at debug level)."""
        with self._state_lock:
            if state is not self._state:
                self.log.debug("state %s -> %s", self._state.name, state.name)
                self._state = state

    # -- connect --------------------------------------------------------------------------

    def connect(self, url: RTMPURL, refusal: Optional[str] = None) -> None:
        """Connect to ``url``, answering AUTH-ADOBE / AUTH-LLNW challenges: each step is a
        new connection (as ffmpeg).  ``refusal`` is a description that already asked for
        authentication (a refused ``publish``): the first connect answers it, and the
        connection in use is closed first."""
        self.close_transport()
        if refusal is not None:  # (a refused publish is refused while CONNECTED)
            self.set_state(ClientState.DISCONNECTED)
        self._url = url
        self._authenticated = False
        cfg = self.config
        username, password = self._credentials(url)
        authenticator = auth.ClientAuth(username, password)
        auth_query = "" if refusal is None else authenticator.next_query(refusal, url.app)
        for attempt in range(1, max(1, cfg.max_auth_attempts) + 1):
            try:
                self._connect_once(url, auth_query)
                self._authenticated = bool(auth_query)
                return
            except CommandError as exc:
                self._fail()
                challenge = auth.parse_description(exc.description)
                if challenge.authmod is None or attempt >= cfg.max_auth_attempts:
                    raise
                try:
                    auth_query = authenticator.next_query(exc.description, url.app)
                except auth.AuthenticationError as failure:
                    raise failure from exc
                self.log.info("authentication (authmod=%s%s): reconnecting",
                              challenge.authmod, f", {challenge.reason}" if challenge.reason else "")
                self.set_state(ClientState.DISCONNECTED)
            except BaseException:
                self._fail()
                raise

    def _credentials(self, url: RTMPURL) -> "tuple[Optional[str], Optional[str]]":
        cfg = self.config
        username = cfg.username if cfg.username is not None else url.username
        password = cfg.password if cfg.password is not None else url.password
        return username, password

    def wants_auth(self, exc: CommandError) -> bool:
        """A refusal that asks for AUTH-ADOBE/LLNW, which we can still answer (we have
        credentials and did not authenticate on this connection yet)."""
        if self._authenticated or self._url is None:
            return False
        username, password = self._credentials(self._url)
        if not username or password is None:
            return False
        return auth.parse_description(exc.description).authmod is not None

    def _connect_once(self, url: RTMPURL, auth_query: str) -> None:
        """One connection attempt: TCP/TLS, handshake, connect command, its reply."""
        cfg = self.config
        deadline = time.monotonic() + cfg.connect_timeout
        self._reset()
        self.set_state(ClientState.HANDSHAKING)
        context = None
        if url.tls:
            context = cfg.ssl_context or client_ssl_context(cfg.ca_file, cfg.tls_insecure)
        self.log.info("connecting to %s", url)
        sock = open_connection(url.host, url.port, timeout=cfg.connect_timeout, ssl_context=context)
        transport = transport_from_config(sock, cfg, role="client", conn_id=self.id, log=self.log,
                                          digest=cfg.digest_handshake)
        self._transport = transport
        transport.handshake(timeout=max(0.001, deadline - time.monotonic()))

        self.set_state(ClientState.CONNECTING)
        app = url.app + auth_query
        tc_url = url.tc_url + auth_query  # AUTH-ADOBE: the query goes on app and tcUrl
        request = Connect.create(
            app, tc_url, *cfg.connect_arguments, flash_ver=cfg.flash_ver,
            object_encoding=cfg.object_encoding, audio_codecs=FFMPEG_AUDIO_CODECS,
            video_codecs=FFMPEG_VIDEO_CODECS, swf_url=cfg.swf_url, page_url=cfg.page_url,
            extra={**cfg.enhanced_caps().to_properties(), **cfg.connect_properties},
        )  # fmt: skip
        opening: List[Message] = []
        if cfg.chunk_size != 128:
            opening.append(control.set_chunk_size(cfg.chunk_size))  # RTMP 5.4.1
        opening.append(control.window_ack_size(cfg.window_ack_size))  # RTMP 5.4.4
        message, txn = self._calls.request(request)
        opening.append(message)  # RTMP 7.2.1.1
        transport.write_messages(opening)
        reply = self._await_result(txn, "connect", deadline).command
        self._agree(reply)
        self.set_state(ClientState.CONNECTED)
        self.log.info("connected to %s (%s)", url, self._server_info.get("code") or "no code")

    def _agree(self, reply: Command) -> None:
        """RTMP 7.2.1.1: read the connect ``_result``: the server's information and
        properties, and the object encoding both sides agree on."""
        info = reply.info or {}
        properties = reply.command_object if isinstance(reply.command_object, dict) else {}
        self._server_info = dict(info)
        self._server_properties = dict(properties)
        code = info.get("code")
        if code is not None and code != commands.NETCONNECTION_CONNECT_SUCCESS:
            # A _result whose info says otherwise is a refusal all the same.
            if info.get("level") == commands.LEVEL_ERROR:
                raise commands.command_error(reply)
            self.log.warning("connect _result with code %r; treating it as success", code)
        wanted = self.config.object_encoding
        encoding = info.get("objectEncoding", properties.get("objectEncoding", 0))
        self._calls.object_encoding = 3 if encoding == 3 and wanted == 3 else 0
        if wanted == 3 and self._calls.object_encoding != 3:
            self.log.info("server did not agree to AMF3 (objectEncoding %r); using AMF0", encoding)

    def _reset(self) -> None:
        self._calls.reset()
        self._calls.object_encoding = commands.AMF0
        self.inbox.reset()
        self.shared.close()
        self._server_info = {}
        self._server_properties = {}

    # -- requests and their replies -------------------------------------------------------

    def require(self) -> Transport:
        """The transport; :class:`ConnectionClosedError` when there is no connection."""
        transport = self._transport
        if self._state in (ClientState.DISCONNECTED, ClientState.ERROR) or transport is None:
            raise ConnectionClosedError(
                f"client is {self._state.name.lower()}: connect() first"
            )
        return transport

    def message(self, request: Request, *, stream_id: Optional[int] = None,
                reply: ReplyMode = ReplyMode.AWAIT) -> Message:
        """``request`` as a message of this connection (its transaction recorded as
        ``reply`` says, :meth:`rtmp.calls.Calls.request`)."""
        return self._calls.request(request, stream_id=stream_id, reply=reply)[0]

    def send_request(self, request: Request, *, stream_id: Optional[int] = None,
                     reply: ReplyMode = ReplyMode.AWAIT) -> None:
        """Send ``request``; a NetStream command's reply is a status (:meth:`wait_for_status`)."""
        self.send(self.message(request, stream_id=stream_id, reply=reply))

    def send(self, *messages: Message) -> None:
        """Write ``messages`` with one write; a failure leaves the client in ``ERROR``."""
        transport = self.require()
        try:
            if len(messages) == 1:
                transport.write_message(messages[0])
            else:
                transport.write_messages(messages)
        except RTMPError:
            self._fail()
            raise

    def call(self, name: str, *args: Any, command_object: Any = None,
             timeout: Optional[float] = None) -> Any:
        """RTMP 7.2.1.2: send ``name(*args)`` and return its ``_result`` value
        (:attr:`rtmp.calls.CallResult.value`); :class:`CommandError` on ``_error``."""
        self.require()
        message, txn = self._calls.call(name, *args, command_object=command_object)
        self.send(message)
        return self._await_result(txn, name, self.deadline(timeout)).value

    def _await_result(self, txn: int, what: str, deadline: float) -> CallResult:
        """Pump until the ``_result``/``_error`` of ``txn`` (RTMP 7.2.1.2); raise the latter."""
        try:
            outcome: Union[CallResult, CallError] = self.pump_until(  # type: ignore[assignment]
                lambda: self._calls.take(txn), f"reply to {what}", deadline)  # mypy joins the union
        finally:
            self._calls.cancel(txn)
        if isinstance(outcome, CallError):
            raise outcome.error()
        return outcome

    def deadline(self, timeout: Optional[float] = None) -> float:
        """The monotonic time ``timeout`` seconds (default ``read_timeout``) from now."""
        return time.monotonic() + (self.config.read_timeout if timeout is None else timeout)

    def wait_for_status(
        self,
        stream_id: int,
        expected: Set[str],
        what: str,
        also_consumed: Optional[Set[str]] = None,
        timeout: Optional[float] = None,
    ) -> Command:
        """Pump until an onStatus with one of ``expected`` codes (RTMP 7.2.2); an
        error-level status for the stream raises :class:`CommandError`."""
        wait = self._calls.expect_status(stream_id, expected, also_consumed=also_consumed or (),
                                         what=what)
        try:
            self.pump_until(lambda: wait.outcome, f"{' or '.join(sorted(expected))} for {what}",
                            self.deadline(timeout))
        finally:
            self._calls.cancel_status(wait)
        if isinstance(wait.outcome, StatusFailed):
            raise wait.outcome.error()
        assert wait.outcome is not None
        return wait.outcome.command

    # -- writing --------------------------------------------------------------------------

    def write(self, *messages: Message) -> None:
        """Send application messages (one write); now and then handle incoming traffic."""
        if self.inbox.refusal is not None:
            self._raise_refusal()
        self.send(*messages)
        if self.config.service_interval and time.monotonic() >= self._next_service:
            self._service_incoming()

    def _raise_refusal(self) -> None:
        """RTMP 7.2.2.6: the server refused or ended our publishing after it started (an
        error-level onStatus such as ``NetStream.Publish.BadName``, or an unrequested
        ``NetStream.Unpublish.Success``): the write after it raises :class:`CommandError`
        with that code and description, once; the connection stays up (CONNECTED)."""
        event = self.inbox.take_refusal()
        if event is None:
            return
        if self._state is ClientState.PUBLISHING:
            self.set_state(ClientState.CONNECTED)
        raise CommandError(event.code, event.description, event.info)

    def _service_incoming(self) -> None:
        """Handle what the server sent while we only wrote (a publisher never reads).

        Pings get answered and acknowledgements sent (the session does that as it
        reads), a server that hung up is noticed, and status messages are kept for
        ``read_message``.  Skipped when another thread is reading: it does all this.
        """
        self._next_service = time.monotonic() + self.config.service_interval
        if not self._read_lock.acquire(blocking=False):
            return
        try:
            for _ in range(64):  # bounded: at most this many messages per visit
                transport = self._transport
                if transport is None or transport.closed:
                    return
                try:
                    self._receive_one(transport, 0.001)
                except TimeoutError:
                    return
        finally:
            self._read_lock.release()

    # -- reading --------------------------------------------------------------------------

    def read_message(self, timeout: Optional[float] = None) -> Message:
        """The next kept message, or :class:`rtmp.StreamEnded` at an end of play (see
        :meth:`rtmp.client.Client.read_message`)."""
        buffer = self.inbox.buffer
        with self._read_lock:
            deadline = self.deadline(timeout)
            if not buffer:
                self.require()
                self.pump_until(lambda: True if buffer else None, "message", deadline)
            head = buffer.head()
            if isinstance(head, EndOfPlay):
                companion = self._end_companion(head, deadline)
                if companion is not None:
                    return companion
                buffer.drop_head()
                raise head.error()
            return buffer.take()

    def _end_companion(self, end: EndOfPlay, deadline: float) -> Optional[Message]:
        """A status message that travels with ``end`` (Play.Stop after nginx-rtmp's Stream
        EOF, Stream EOF after UnpublishNotify): returned before StreamEnded, so that one
        end raises once, after all of them.  Waits ``END_SIGNAL_GRACE`` at most."""
        until = min(deadline, end.received + END_SIGNAL_GRACE)
        for _ in range(64):  # bounded: a few messages travel with an end
            if self.inbox.buffer.has_follower:
                return self.inbox.buffer.take_end_follower()
            transport = self._transport
            remaining = until - time.monotonic()
            if remaining <= 0 or transport is None or transport.closed:
                return None
            try:
                self._receive_one(transport, remaining)
            except RTMPError:  # a timeout, or a hang-up the next read reports
                return None
        return None

    def pump_until(self, check: Callable[[], Optional[_T]], what: str, deadline: float) -> _T:
        """Read and dispatch messages until ``check()`` returns a value or ``deadline``."""
        transport = self._transport
        if transport is None:
            raise ConnectionClosedError("not connected")
        with self._read_lock:
            while True:
                value = check()
                if value is not None:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {what} within the timeout")
                try:
                    self._receive_one(transport, remaining)
                except TimeoutError as exc:
                    raise TimeoutError(f"no {what} within the timeout") from exc

    def _receive_one(self, transport: Transport, timeout: float) -> None:
        """Read one message (``rtmp.TimeoutError`` if none) and hand it to the inbox,
        which keeps what the application should see; any other error leaves the client
        in ``ERROR``."""
        try:
            message = transport.read_message(timeout=timeout)
        except TimeoutError:
            raise
        except RTMPError:
            self._fail()
            raise
        try:
            if message.type in SHARED_OBJECT_TYPES and self.shared.receive(message):
                return  # RTMP 7.3.2: one of our shared objects
            replies = self.inbox.receive(message, time.monotonic(),
                                         publishing=self._state is ClientState.PUBLISHING)
            if replies:  # _checkbw after onBWDone, onBWCheck's _result
                self.send(*replies)
        except RTMPError:
            self._fail()  # a broken peer or an overflowing buffer: unusable now
            raise

    def _fail(self) -> None:
        self.set_state(ClientState.ERROR)
        self.close_transport()

    # -- closing --------------------------------------------------------------------------

    def close(self, goodbye: Sequence[Message], confirm: bool) -> Optional[BaseException]:
        """Send ``goodbye`` (when still connected, after the Release of our shared
        objects) and close.

        ``confirm`` (a publisher): half-close and read until the server's end of file,
        within ``ClientConfig.close_timeout`` (:meth:`rtmp.transport.Transport.finish`);
        the error that kept it from confirming is returned, after closing.
        """
        transport = self._transport
        unconfirmed: Optional[BaseException] = None
        if transport is not None and self.is_open:
            goodbye = [*self.shared.goodbye(), *goodbye]  # RTMP 7.1.3: Release first
            try:
                if goodbye:
                    transport.write_messages(goodbye)
                if confirm:
                    started = time.monotonic()
                    transport.finish(self.config.close_timeout)
                    self.log.debug("server closed its side %.3f s after ours: stream confirmed",
                                   time.monotonic() - started)
            except (RTMPError, OSError) as exc:
                if confirm:
                    unconfirmed = exc
                self.log.debug("graceful close failed: %s", exc)
        self.close_transport()
        self.shared.close()
        self.inbox.leave_stream(forget=True)
        self.set_state(ClientState.DISCONNECTED)
        return unconfirmed

    def close_transport(self) -> None:
        """Close the socket at once (no goodbye); the state is the caller's to set."""
        transport, self._transport = self._transport, None
        if transport is not None:
            try:
                transport.close()
            except OSError:  # pragma: no cover - close() already swallows these
                pass
