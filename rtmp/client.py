"""RTMP 7.2 (NetConnection and NetStream commands) over RTMP 5-6: the blocking client.

:class:`Client` is the scripting face of the library::

    with rtmp.Client(rtmp.ClientConfig(stream_name="key")) as client:
        client.connect("rtmp://localhost/live")
        client.publish()
        client.send_video(frame, timestamp)

Theory of operation
-------------------
A client owns one :class:`~rtmp.transport.Transport` and reads in the caller's thread.
Every blocking operation (``connect``, ``createStream``, ``publish``, ``play``,
``call`` ...) writes its command and then *pumps* the connection until the reply it
expects arrives or its deadline passes:

* ``_result`` / ``_error`` (RTMP 7.2) are matched to the request by transaction id;
  replies to fire-and-forget calls (``releaseStream``, ``FCPublish``, ``_checkbw``) are
  dropped;
* ``onStatus`` (RTMP 7.2.2) is matched by code: the expected code completes the
  operation, an ``error`` level raises :class:`~rtmp.errors.CommandError`;
* server calls real servers make after connect (``onBWDone``, ``onFCPublish``) are
  answered or ignored as ffmpeg does;
* user control events (RTMP 7.1.7) are noted and consumed; protocol control (RTMP 5.4)
  and pings never reach this module (the session handles them);
* media, data and unhandled commands that arrive meanwhile are kept, in order, in a
  bounded buffer that :meth:`Client.read_message` drains first;
* every ``onStatus`` becomes a :class:`~rtmp.commands.StatusEvent` (``last_status``,
  ``ClientConfig.on_status``); the end of a play (Stream EOF, RTMP 7.1.7; Play.Stop,
  Play.Complete, Play.UnpublishNotify, RTMP 7.2.2.1) takes its place in that buffer, and
  ``read_message`` raises :class:`~rtmp.errors.StreamEnded` there, once per end;
* an error-level ``onStatus`` for the stream we publish (a refusal after Publish.Start)
  makes the next write raise :class:`~rtmp.errors.CommandError`.

Writes go straight to the transport, whose lock makes them thread-safe, so one thread
may read (``read_message``) while another publishes.  A client that only writes (a
publisher) takes a short look at incoming traffic every ``service_interval`` seconds
from inside its writes, so pings are answered and a hang-up is noticed.

Authentication (AUTH-ADOBE, AUTH-LLNW) reconnects: when ``connect`` is refused with an
``authmod=`` description, the client opens a new connection whose ``app`` and ``tcUrl``
carry the next query of the challenge, as ffmpeg does.  A server that lets anyone connect
and asks for credentials only to publish (``rtmp.Server(require_auth=True)``) refuses
``publish`` with the same ``authmod=`` text: ``publish`` then reconnects through the
challenge and publishes again.
"""

from __future__ import annotations

import enum
import itertools
import logging
import math
import ssl
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from . import amf, auth, commands, control, user_control
from .calls import CallError, CallResult, Calls, Outgoing, ReplyMode, StatusFailed, Unhandled
from .chunk import Limits
from .commands import Command, StatusEvent
from .config import check_connection_settings
from .errors import (
    CommandError,
    ConnectionClosedError,
    ProtocolError,
    RTMPError,
    StreamEnded,
    TimeoutError,
)
from .logs import connection_logger
from .message import (
    COMMAND_TYPES,
    DATA_TYPES,
    MEDIA_TYPES,
    SHARED_OBJECT_TYPES,
    Message,
    MessageType,
    StreamType,
    split_aggregate,
)
from .playback import (
    END_OF_PLAY_CODES,
    END_SIGNAL_GRACE,
    RESTART_CODES,
    STREAM_EOF_REASON,
    EndOfPlay,
    PlayEnds,
    ReadBuffer,
    play_status_end,
)
from .requests import (
    CloseStream,
    Connect,
    DeleteStream,
    FCPublish,
    FCUnpublish,
    Pause,
    Play,
    Publish,
    ReceiveAudio,
    ReceiveVideo,
    ReleaseStream,
    Seek,
)
from .remote_shared_object import RemoteSharedObject, SharedObjects
from .transport import Transport, client_ssl_context, open_connection, transport_from_config
from .url import RTMPURL, parse_url

__all__ = [
    "Client",
    "ClientConfig",
    "ClientState",
    "publish_flv",  # noqa: F822 - module __getattr__ (PEP 562)
    "play_to_flv",  # noqa: F822 - module __getattr__ (PEP 562)
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: [impl] ffmpeg's player capabilities in connect (RTMP 7.2.1.1 flag tables).
FFMPEG_AUDIO_CODECS = 4071  # SUPPORT_SND_ALL without INTEL and UNUSED
FFMPEG_VIDEO_CODECS = 252  # SORENSON | HOMEBREW | VP6 | VP6ALPHA | HOMEBREWV | H264

#: RTMP 7.1.2 / 7.1.3: data and shared-object messages, handed to the application as they are.
_APPLICATION_DATA_TYPES = DATA_TYPES | SHARED_OBJECT_TYPES

_connection_ids = itertools.count(1)


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

    def __post_init__(self) -> None:
        if self.object_encoding not in (0, 3):
            raise ValueError(f"object_encoding must be 0 or 3 (RTMP 7.2.1.1), not {self.object_encoding}")
        check_connection_settings(self, timeouts=("connect_timeout", "read_timeout", "write_timeout",
                                                              "close_timeout"),
                                  limits=self.limits)
        if self.max_buffered_messages < 1 or self.max_buffered_bytes < 1:
            raise ValueError("the read buffer limits must be positive")
        if self.strict:
            self.play_times_in_milliseconds = False
            self.accept_media_on_stream_zero = False


class Client:
    """An RTMP client: ``connect``, then ``publish`` or ``play`` (RTMP 7.2)."""

    def __init__(self, config: Optional[ClientConfig] = None) -> None:
        self.config = config or ClientConfig()
        self.id = f"c{next(_connection_ids)}"
        self.log = connection_logger(__name__, self.id)
        self._state = ClientState.DISCONNECTED
        self._state_lock = threading.Lock()
        self._read_lock = threading.RLock()
        self._transport: Optional[Transport] = None
        self._url: Optional[RTMPURL] = None
        self._server_info: Dict[str, Any] = {}
        self._server_properties: Dict[str, Any] = {}
        self._stream_id: Optional[int] = None
        self._stream_name: Optional[str] = None
        # RTMP 7.2: transactions and status waits (connect is 1, our calls count from 2).
        self._calls = Calls(answer_bandwidth_check=self.config.answer_bandwidth_check, log=self.log)
        self._buffer = ReadBuffer(self.config.max_buffered_messages, self.config.max_buffered_bytes)
        self._warned: Set[str] = set()
        self._last_media_timestamp = 0
        self._stream_eof = False
        self._next_service = 0.0
        self._published = False  # publish() succeeded on this connection: close() confirms
        self._last_status: Optional[StatusEvent] = None
        self._ends = PlayEnds(self.log)  # RTMP 7.1.7 / 7.2.2.1: the ends of our play
        self._refusal: Optional[StatusEvent] = None
        self._unpublish_requested = False
        self._authenticated = False
        # RTMP 7.3.2: remote shared objects, serviced wherever we read (rtmp.remote_shared_object).
        self._shared = SharedObjects(self._send, self._pump_until,
                                     lambda: self._calls.object_encoding == commands.AMF3,
                                     lambda: self.config.read_timeout, self.log)

    # -- properties -----------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The current :class:`ClientState`."""
        return self._state

    @property
    def stream_id(self) -> Optional[int]:
        """The message stream id from createStream (RTMP 7.2.1.3), or None."""
        return self._stream_id

    @property
    def object_encoding(self) -> int:
        """The object encoding the server agreed in its connect ``_result`` (0 or 3)."""
        return self._calls.object_encoding

    @property
    def server_info(self) -> Dict[str, Any]:
        """The information object of the connect ``_result`` (RTMP 7.2.1.1)."""
        return self._server_info

    @property
    def server_properties(self) -> Dict[str, Any]:
        """The properties object of the connect ``_result`` (``fmsVer``, ``capabilities``)."""
        return self._server_properties

    @property
    def url(self) -> Optional[RTMPURL]:
        """The URL of the current connection (app and stream resolved)."""
        return self._url

    @property
    def transport(self) -> Optional[Transport]:
        """The underlying transport (for statistics: ``bytes_sent``, chunk sizes)."""
        return self._transport

    @property
    def stream_eof(self) -> bool:
        """True once the server sent Stream EOF (RTMP 7.1.7 event 1) for our stream."""
        return self._stream_eof

    @property
    def last_status(self) -> Optional[StatusEvent]:
        """The last ``onStatus`` (RTMP 7.2.2) received, as a :class:`rtmp.StatusEvent`."""
        return self._last_status

    def _set_state(self, state: ClientState) -> None:
        with self._state_lock:
            if state is not self._state:
                self.log.debug("state %s -> %s", self._state.name, state.name)
                self._state = state

    # -- context manager ------------------------------------------------------------------

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        # With an exception in flight, that one is the news: close without raising.
        self._close(confirm=exc_type is None)

    # -- connect --------------------------------------------------------------------------

    def connect(self, url: str) -> None:
        """RTMP 7.2.1.1: open the connection, handshake and send ``connect``.

        Returns once ``_result`` arrives; raises :class:`CommandError` on ``_error``
        (after answering an AUTH-ADOBE/AUTH-LLNW challenge when credentials are known),
        :class:`rtmp.TimeoutError` when ``connect_timeout`` passes, and
        :class:`ConnectionClosedError` / :class:`HandshakeError` for network failures.
        """
        if self._state not in (ClientState.DISCONNECTED, ClientState.ERROR):
            raise ValueError(f"connect() in state {self._state.name}: close() first")
        if self._transport is not None:
            self._close_transport()
        parsed = parse_url(url)
        cfg = self.config
        app = parsed.app or cfg.app_name
        if not app:
            raise ValueError(f"no application in {url!r} and no ClientConfig.app_name")
        parsed = parsed.with_names(app=app, stream=parsed.stream or cfg.stream_name)
        self._url = parsed
        self._authenticated = False
        self._connect_with_auth(parsed, None)

    def _credentials(self, url: RTMPURL) -> "tuple[Optional[str], Optional[str]]":
        cfg = self.config
        username = cfg.username if cfg.username is not None else url.username
        password = cfg.password if cfg.password is not None else url.password
        return username, password

    def _connect_with_auth(self, parsed: RTMPURL, refusal: Optional[str]) -> None:
        """Connect, answering AUTH-ADOBE / AUTH-LLNW challenges: each step is a new
        connection (as ffmpeg).  ``refusal`` is a description that already asked for
        authentication (a refused ``publish``): the first connect answers it."""
        cfg = self.config
        username, password = self._credentials(parsed)
        authenticator = auth.ClientAuth(username, password)
        auth_query = "" if refusal is None else authenticator.next_query(refusal, parsed.app)
        for attempt in range(1, max(1, cfg.max_auth_attempts) + 1):
            try:
                self._connect_once(parsed, auth_query)
                self._authenticated = bool(auth_query)
                return
            except CommandError as exc:
                self._close_transport()
                self._set_state(ClientState.ERROR)
                challenge = auth.parse_description(exc.description)
                if challenge.authmod is None or attempt >= cfg.max_auth_attempts:
                    raise
                try:
                    auth_query = authenticator.next_query(exc.description, parsed.app)
                except auth.AuthenticationError as failure:
                    raise failure from exc
                self.log.info("authentication (authmod=%s%s): reconnecting",
                              challenge.authmod, f", {challenge.reason}" if challenge.reason else "")
                self._set_state(ClientState.DISCONNECTED)
            except BaseException:
                self._close_transport()
                self._set_state(ClientState.ERROR)
                raise

    def _connect_once(self, url: RTMPURL, auth_query: str) -> None:
        """One connection attempt: TCP/TLS, handshake, connect command, its reply."""
        cfg = self.config
        deadline = time.monotonic() + cfg.connect_timeout
        self._reset_connection_state()
        self._set_state(ClientState.HANDSHAKING)
        context = None
        if url.tls:
            context = cfg.ssl_context or client_ssl_context(cfg.ca_file, cfg.tls_insecure)
        self.log.info("connecting to %s", url)
        sock = open_connection(url.host, url.port, timeout=cfg.connect_timeout, ssl_context=context)
        transport = transport_from_config(sock, cfg, role="client", conn_id=self.id, log=self.log,
                                          digest=cfg.digest_handshake)
        self._transport = transport
        transport.handshake(timeout=max(0.001, deadline - time.monotonic()))

        self._set_state(ClientState.CONNECTING)
        app = url.app + auth_query
        tc_url = url.tc_url + auth_query  # AUTH-ADOBE: the query goes on app and tcUrl
        request = Connect.create(
            app, tc_url, *cfg.connect_arguments, flash_ver=cfg.flash_ver,
            object_encoding=cfg.object_encoding, audio_codecs=FFMPEG_AUDIO_CODECS,
            video_codecs=FFMPEG_VIDEO_CODECS, swf_url=cfg.swf_url, page_url=cfg.page_url,
            extra=dict(cfg.connect_properties),
        )  # fmt: skip
        opening: List[Message] = []
        if cfg.chunk_size != 128:
            opening.append(control.set_chunk_size(cfg.chunk_size))  # RTMP 5.4.1
        opening.append(control.window_ack_size(cfg.window_ack_size))  # RTMP 5.4.4
        message, txn = self._calls.request(request)
        opening.append(message)  # RTMP 7.2.1.1
        transport.write_messages(opening)
        outcome = self._wait_for_result(txn, "connect", deadline)
        if isinstance(outcome, CallError):
            raise outcome.error()
        reply = outcome.command
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
        encoding = info.get("objectEncoding", properties.get("objectEncoding", 0))
        self._calls.object_encoding = 3 if encoding == 3 and cfg.object_encoding == 3 else 0
        if cfg.object_encoding == 3 and self._calls.object_encoding != 3:
            self.log.info("server did not agree to AMF3 (objectEncoding %r); using AMF0", encoding)
        self._set_state(ClientState.CONNECTED)
        self.log.info("connected to %s (%s)", url, code or "no code")

    def _reset_connection_state(self) -> None:
        self._calls.reset()
        self._calls.object_encoding = commands.AMF0
        self._buffer.clear()
        self._stream_id = None
        self._stream_name = None
        self._server_info = {}
        self._server_properties = {}
        self._stream_eof = False
        self._published = False
        self._ends.forget()
        self._refusal = None
        self._last_status = None
        self._shared.close()

    # -- the pump -------------------------------------------------------------------------

    def _require_connection(self) -> Transport:
        transport = self._transport
        if self._state in (ClientState.DISCONNECTED, ClientState.ERROR) or transport is None:
            raise ConnectionClosedError(
                f"client is {self._state.name.lower()}: connect() first"
            )
        return transport

    def _pump_until(self, check: Callable[[], Optional[_T]], what: str, deadline: float) -> _T:
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
        """Read one message (``rtmp.TimeoutError`` if none), dispatch it, keep what the
        application should see; any other error leaves the client in ``ERROR``."""
        try:
            message = transport.read_message(timeout=timeout)
        except TimeoutError:
            raise
        except RTMPError:
            self._fail()
            raise
        try:
            for app_message in self._dispatch(message):
                self._buffer.keep(app_message)  # bounded: LimitExceededError
        except RTMPError:
            self._fail()  # a broken peer or an overflowing buffer: unusable now
            raise
        end = self._ends.take_new()
        if end is not None:  # after the message that ended the play, if it is kept
            self._buffer.keep_end(end)

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

    def _fail(self) -> None:
        self._set_state(ClientState.ERROR)
        self._close_transport()

    def _warn_once(self, key: str, text: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.warning(text, *args)

    def _dispatch(self, message: Message) -> List[Message]:
        """Handle one incoming message; return what the application should see."""
        kind = message.type
        if kind in MEDIA_TYPES or kind == MessageType.AGGREGATE:
            return self._media(message)
        if kind in COMMAND_TYPES:
            return self._command(self._decode_command(message), message)
        if kind == MessageType.USER_CONTROL:
            self._user_control(message)
            return []
        if kind in SHARED_OBJECT_TYPES and self._shared.receive(message):
            return []  # RTMP 7.3.2: one of our shared objects
        if kind in _APPLICATION_DATA_TYPES:
            reason = play_status_end(message)
            if reason is not None and message.message_stream_id in (self._stream_id, 0):
                self._ends.signal(reason, None, time.monotonic())
            return [message]
        self.log.debug("message of unknown type %d passed to the application", kind)
        return [message]

    def _decode_command(self, message: Message) -> Command:
        """RTMP 7.1.1: decode a command, tolerating one that carries only its name."""
        try:
            return commands.decode_command(message)
        except ProtocolError:
            values = amf.decode_payload(message.data, message.type)
            if self.config.strict or len(values) != 1 or not isinstance(values[0], str):
                raise
            # Deviation (ffmpeg listen mode): its onFCPublish is the bare name, without
            # the transaction id and command object RTMP 7.1.1 requires.  Harmless.
            self._warn_once(f"bare:{values[0]}", "server sent command %r without a transaction "
                            "id (RTMP 7.1.1); accepting it (deviation)", values[0])
            return Command(name=values[0], transaction_id=0,
                           message_stream_id=message.message_stream_id,
                           message_type=int(message.type), timestamp=message.timestamp)

    def _media(self, message: Message) -> List[Message]:
        """RTMP 7.1.4-7.1.6: media for the application, msid checked and aggregates split."""
        self._ends.resume()  # media after an end: the stream goes on (a new publisher)
        if message.message_stream_id == 0 and self._stream_id:
            if not self.config.accept_media_on_stream_zero:
                raise ProtocolError(
                    f"media message (type {int(message.type)}) on message stream 0, "
                    f"expected stream {self._stream_id}",
                    "RTMP 7.2.2",
                )
            # Deviation (ffmpeg listen mode): a player's media arrives on msid 0, not on
            # the stream it plays; harmless, so accept it (accept_media_on_stream_zero).
            self._warn_once("msid0", "server sends media on message stream 0 instead of %d; "
                            "accepting it (deviation)", self._stream_id)
        if message.type == MessageType.AGGREGATE and self.config.split_aggregates:
            parts = split_aggregate(message)  # RTMP 7.1.6
            if parts:
                self._last_media_timestamp = parts[-1].timestamp
            return parts
        self._last_media_timestamp = message.timestamp
        return [message]

    def _user_control(self, message: Message) -> None:
        """RTMP 7.1.7: stream events are noted; none is an error."""
        event = user_control.decode(message.data)
        self.log.debug("user control %s stream=%s", event.name, event.stream_id)
        if event.stream_id != self._stream_id or self._stream_id is None:
            return
        if event.event == user_control.UserControlEvent.STREAM_EOF:
            self._stream_eof = True
            self._ends.signal(STREAM_EOF_REASON, None, time.monotonic())
        elif event.event == user_control.UserControlEvent.STREAM_BEGIN:
            self._ends.resume()  # RTMP 7.1.7 event 0: the stream (re)starts

    def _status_event(self, command: Command) -> StatusEvent:
        """RTMP 7.2.2: note an onStatus, tell ``ClientConfig.on_status``, classify it."""
        event = StatusEvent.from_command(command)
        self._last_status = event
        callback = self.config.on_status
        if callback is not None:
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - the application's bug must not break the read
                self.log.exception("ClientConfig.on_status raised for %s", event.code)
        ours = event.stream_id in (self._stream_id, 0) and self._stream_id is not None
        if not ours:
            return event
        if self._ends.playing and event.code in RESTART_CODES:
            self._ends.resume()
        elif self._state is ClientState.PUBLISHING and not self._calls.waits and (
            event.is_error or (event.code == commands.NETSTREAM_UNPUBLISH_SUCCESS
                               and not self._unpublish_requested)
        ):
            # The server refused or stopped our publishing mid-stream: the next write says so.
            self.log.warning("server ended our publishing: %s", event)
            self._refusal = event
        return event

    def _command(self, command: Command, message: Message) -> List[Message]:
        """RTMP 7.2: account for a command (:class:`rtmp.calls.Calls`); what the
        application should see: unmatched statuses and commands."""
        if command.name == commands.ON_STATUS:
            self._status_event(command)
        keep: List[Message] = []
        for event in self._calls.receive(command):
            if isinstance(event, Outgoing):  # _checkbw after onBWDone, onBWCheck's _result
                self._send(event.message)
            elif isinstance(event, Unhandled):
                keep.append(message)
            elif isinstance(event, StatusEvent):
                if event.code in END_OF_PLAY_CODES and event.stream_id in (self._stream_id, 0):
                    self._ends.signal(f"{END_OF_PLAY_CODES[event.code]} ({event.code})", event,
                                      time.monotonic())
                keep.append(message)
        return keep

    # -- sending --------------------------------------------------------------------------

    def _send(self, message: Message) -> None:
        transport = self._require_connection()
        try:
            transport.write_message(message)
        except RTMPError:
            self._fail()
            raise

    def _wait_for_result(self, txn: int, what: str, deadline: float) -> Union[CallResult, CallError]:
        """Pump until the ``_result``/``_error`` of ``txn`` (RTMP 7.2.1.2)."""
        try:
            return self._pump_until(partial(self._calls.take, txn), f"reply to {what}",
                                    deadline)  # type: ignore[return-value]  # mypy joins the union
        finally:
            self._calls.cancel(txn)

    def _deadline(self, timeout: Optional[float] = None) -> float:
        return time.monotonic() + (self.config.read_timeout if timeout is None else timeout)

    def _wait_for_status(
        self,
        stream_id: int,
        expected: Set[str],
        what: str,
        also_consumed: Optional[Set[str]] = None,
        timeout: Optional[float] = None,
    ) -> Command:
        """Pump until an onStatus with one of ``expected`` codes (RTMP 7.2.2)."""
        wait = self._calls.expect_status(stream_id, expected, also_consumed=also_consumed or (),
                                         what=what)
        try:
            self._pump_until(lambda: wait.outcome, f"{' or '.join(sorted(expected))} for {what}",
                             self._deadline(timeout))
        finally:
            self._calls.cancel_status(wait)
        if isinstance(wait.outcome, StatusFailed):
            raise wait.outcome.error()
        assert wait.outcome is not None
        return wait.outcome.command

    # -- NetConnection calls --------------------------------------------------------------

    def call(self, name: str, *args: Any, command_object: Any = None,
             timeout: Optional[float] = None) -> Any:
        """RTMP 7.2.1.2: call ``name(*args)`` on the server and wait for its reply.

        Returns the ``_result`` values after the command object: the single value when
        there is one, None when there is none, else a list.  Raises
        :class:`CommandError` on ``_error`` and :class:`rtmp.TimeoutError`.
        """
        if not isinstance(name, str) or not name:
            raise ValueError("the procedure name must be a non-empty string")
        self._require_connection()
        message, txn = self._calls.call(name, *args, command_object=command_object)
        self._send(message)
        outcome = self._wait_for_result(txn, name, self._deadline(timeout))
        if isinstance(outcome, CallError):
            raise outcome.error()
        return outcome.value

    def create_stream(self, timeout: Optional[float] = None) -> int:
        """RTMP 7.2.1.3: ``createStream``; returns (and remembers) the message stream id."""
        result = self.call(commands.CREATE_STREAM, timeout=timeout)
        if isinstance(result, list):
            result = result[0]
        if (isinstance(result, bool) or not isinstance(result, (int, float))
                or not math.isfinite(result) or result != int(result)):
            raise ProtocolError(f"createStream _result carries {result!r}, not a stream id",
                                "RTMP 7.2.1.3")
        stream_id = int(result)
        if not 0 < stream_id <= 0xFFFFFFFF:
            raise ProtocolError(f"createStream returned stream id {stream_id}", "RTMP 7.2.1.3")
        self._stream_id = stream_id
        self._stream_eof = False
        self._ends.forget()
        self.log.debug("created stream %d", stream_id)
        return stream_id

    def _stream_name_or_default(self, stream_name: Optional[str]) -> str:
        name = stream_name or (self._url.stream if self._url else None) or self.config.stream_name
        if not name:
            raise ValueError("no stream name: pass one, put it in the URL or in ClientConfig.stream_name")
        return name

    # -- publishing -----------------------------------------------------------------------

    def publish(
        self,
        stream_name: Optional[str] = None,
        stream_type: Union[StreamType, str] = StreamType.LIVE,
        timeout: Optional[float] = None,
    ) -> None:
        """RTMP 7.2.2.6: publish ``stream_name`` (live, record or append).

        Sends ``releaseStream`` and ``FCPublish`` first ([impl] OBS, ffmpeg), creates a
        stream if there is none, and returns once ``NetStream.Publish.Start`` arrives.
        Raises :class:`CommandError` (e.g. ``NetStream.Publish.BadName``).
        """
        if self._state is not ClientState.CONNECTED:
            self._require_connection()
            raise ValueError(f"publish() in state {self._state.name}: needs CONNECTED")
        name = self._stream_name_or_default(stream_name)
        kind = StreamType(stream_type)
        try:
            stream_id = self._publish_once(name, kind, timeout)
        except CommandError as exc:
            if not self._publish_wants_auth(exc):
                raise
            # AUTH-ADOBE: the server accepted our connect as a player's and wants the
            # challenge for publishing: reconnect through it, then publish again.
            self.log.info("publish of %r needs authentication: reconnecting", name)
            assert self._url is not None
            self._close_transport()
            self._set_state(ClientState.DISCONNECTED)
            self._connect_with_auth(self._url, exc.description)
            stream_id = self._publish_once(name, kind, timeout)
        self._stream_name = name
        self._set_state(ClientState.PUBLISHING)
        self._published = True
        self.log.info("publishing %r (%s) on stream %d", name, kind.value, stream_id)

    def _publish_once(self, name: str, kind: StreamType, timeout: Optional[float]) -> int:
        if self.config.publish_preamble:
            # [impl] FMLE/OBS/ffmpeg: servers answer these or not; either is fine.
            self._send(self._calls.request(ReleaseStream(name), reply=ReplyMode.IGNORE)[0])
            self._send(self._calls.request(FCPublish(name), reply=ReplyMode.IGNORE)[0])
        stream_id = self._stream_id or self.create_stream(timeout)
        self._ends.forget()
        self._refusal = None
        self._unpublish_requested = False
        self._send(self._calls.request(Publish(name, kind), stream_id=stream_id)[0])
        self._wait_for_status(stream_id, {commands.NETSTREAM_PUBLISH_START}, f"publish {name!r}",
                              timeout=timeout)
        return stream_id

    def _publish_wants_auth(self, exc: CommandError) -> bool:
        """A refused publish that asks for AUTH-ADOBE/LLNW, which we can still answer."""
        if self._authenticated or self._url is None:
            return False
        username, password = self._credentials(self._url)
        if not username or password is None:
            return False
        return auth.parse_description(exc.description).authmod is not None

    def write_message(self, message: Message) -> None:
        """Send one message as is (thread-safe)."""
        if not isinstance(message, Message):
            raise TypeError(f"write_message() takes a rtmp.Message, not {type(message).__name__}")
        self._send_and_service(message)

    def write_messages(self, messages: Sequence[Message]) -> None:
        """Send several messages with one write (thread-safe): fewer system calls when
        publishing faster than real time."""
        for message in messages:
            if not isinstance(message, Message):
                raise TypeError(
                    f"write_messages() takes rtmp.Message items, not {type(message).__name__}")
        self._raise_refusal()
        transport = self._require_connection()
        try:
            transport.write_messages(messages)
        except RTMPError:
            self._fail()
            raise
        self._maybe_service()

    def _send_and_service(self, message: Message) -> None:
        """Send an application message; now and then handle incoming traffic too."""
        self._raise_refusal()
        self._send(message)
        self._maybe_service()

    def _maybe_service(self) -> None:
        if self.config.service_interval and time.monotonic() >= self._next_service:
            self._service_incoming()

    def _raise_refusal(self) -> None:
        """RTMP 7.2.2.6: the server refused or ended our publishing after it started (an
        error-level onStatus such as ``NetStream.Publish.BadName``, or an unrequested
        ``NetStream.Unpublish.Success``): the write after it raises :class:`CommandError`
        with that code and description, once; the connection stays up (CONNECTED)."""
        if self._refusal is None:
            return
        event, self._refusal = self._refusal, None
        if self._state is ClientState.PUBLISHING:
            self._set_state(ClientState.CONNECTED)
        raise CommandError(event.code, event.description, event.info)

    def _stream_for_media(self) -> int:
        if self._stream_id is None:
            raise ValueError("no stream: publish() first")
        return self._stream_id

    def send_audio(self, data: bytes, timestamp: int) -> None:
        """RTMP 7.1.4: one audio message (FLV AUDIODATA) on our stream."""
        self._send_and_service(Message(type=MessageType.AUDIO, data=data, timestamp=timestamp,
                                       message_stream_id=self._stream_for_media()))

    def send_video(self, data: bytes, timestamp: int) -> None:
        """RTMP 7.1.5: one video message (FLV VIDEODATA) on our stream."""
        self._send_and_service(Message(type=MessageType.VIDEO, data=data, timestamp=timestamp,
                                       message_stream_id=self._stream_for_media()))

    def send_metadata(self, metadata: Mapping[str, Any], timestamp: int = 0) -> None:
        """RTMP 7.1.2: ``@setDataFrame, onMetaData, {...}`` ([impl] as ffmpeg and OBS send it)."""
        self._send_and_service(commands.metadata(metadata, self._stream_for_media(),
                                                 timestamp=timestamp))

    # -- playing --------------------------------------------------------------------------

    def _play_time(self, value: float) -> float:
        if self.config.play_times_in_milliseconds:
            # Deviation (Flash Player, ffmpeg, nginx-rtmp): play's start and duration
            # travel in milliseconds (-2 -> -2000); RTMP 7.2.2.1 describes seconds.
            return value * 1000
        return value

    def play(
        self,
        stream_name: Optional[str] = None,
        start: float = -2,
        duration: float = -1,
        reset: bool = True,
        timeout: Optional[float] = None,
    ) -> None:
        """RTMP 7.2.2.1: play ``stream_name``; returns once ``NetStream.Play.Start`` arrives.

        ``start`` is -2 (live, else recorded), -1 (live only) or seconds into a
        recording; ``duration`` -1 (to the end), 0 (one frame) or seconds.  Raises
        :class:`CommandError` for ``NetStream.Play.StreamNotFound`` and other errors.
        """
        if self._state is not ClientState.CONNECTED:
            self._require_connection()
            raise ValueError(f"play() in state {self._state.name}: needs CONNECTED")
        name = self._stream_name_or_default(stream_name)
        stream_id = self._stream_id or self.create_stream(timeout)
        self._ends.start()  # Stream EOF and the end statuses count from here
        request = Play(name, self._play_time(start), self._play_time(duration), reset)
        self._send(self._calls.request(request, stream_id=stream_id)[0])
        # RTMP 7.1.7 event 3: tell the server how much we buffer ([impl] ffmpeg sends it
        # right after play).
        self._send(user_control.set_buffer_length(stream_id, self.config.buffer_length))
        self._wait_for_status(stream_id, {commands.NETSTREAM_PLAY_START}, f"play {name!r}",
                              also_consumed={commands.NETSTREAM_PLAY_RESET}, timeout=timeout)
        self._stream_name = name
        self._set_state(ClientState.SUBSCRIBING)
        self.log.info("playing %r on stream %d", name, stream_id)

    subscribe = play

    def _stream_command(self, what: str) -> int:
        self._require_connection()
        if self._stream_id is None:
            raise ValueError(f"{what}() needs a stream: play() or publish() first")
        return self._stream_id

    def seek(self, milliseconds: float, timeout: Optional[float] = None) -> None:
        """RTMP 7.2.2.7: seek to ``milliseconds``; returns once ``NetStream.Seek.Notify``
        arrives.  Media buffered until then is dropped (``ClientConfig.flush_on_seek``)."""
        stream_id = self._stream_command("seek")
        self._send(self._calls.request(Seek(milliseconds), stream_id=stream_id)[0])
        self._wait_for_status(stream_id, {commands.NETSTREAM_SEEK_NOTIFY}, "seek",
                              also_consumed={commands.NETSTREAM_PLAY_RESET,
                                             commands.NETSTREAM_PLAY_START}, timeout=timeout)
        if self.config.flush_on_seek:
            dropped = self._buffer.flush_media(stream_id)
            if dropped:
                self.log.debug("seek: dropped %d buffered media messages from before the seek",
                               dropped)

    def pause(self, paused: bool, milliseconds: Optional[float] = None,
              timeout: Optional[float] = None) -> None:
        """RTMP 7.2.2.8: pause (True) or resume (False) at ``milliseconds`` (default: the
        timestamp of the last media message received); waits for Pause/Unpause.Notify."""
        stream_id = self._stream_command("pause")
        if milliseconds is None:
            milliseconds = self._last_media_timestamp
        self._send(self._calls.request(Pause(paused, milliseconds), stream_id=stream_id)[0])
        code = commands.NETSTREAM_PAUSE_NOTIFY if paused else commands.NETSTREAM_UNPAUSE_NOTIFY
        self._wait_for_status(stream_id, {code}, "pause" if paused else "resume",
                              also_consumed={commands.NETSTREAM_PLAY_START,
                                             commands.NETSTREAM_PLAY_RESET}, timeout=timeout)

    def _receive(self, request: Union[ReceiveAudio, ReceiveVideo], wait: bool,
                 timeout: Optional[float]) -> None:
        command, flag = request.name, request.flag
        stream_id = self._stream_command(command)
        self._send(self._calls.request(request, stream_id=stream_id)[0])
        if flag and wait:
            # RTMP 7.2.2.4: true is answered with Seek.Notify and Play.Start.
            self._wait_for_status(stream_id, {commands.NETSTREAM_SEEK_NOTIFY}, command,
                                  also_consumed={commands.NETSTREAM_PLAY_START}, timeout=timeout)

    def receive_audio(self, flag: bool, wait: bool = False, timeout: Optional[float] = None) -> None:
        """RTMP 7.2.2.4: ask for (True) or stop (False) the stream's audio.

        ``wait=True`` waits for the ``NetStream.Seek.Notify`` the spec promises for True
        (many servers, nginx-rtmp among them, send nothing).
        """
        self._receive(ReceiveAudio(flag), wait, timeout)

    def receive_video(self, flag: bool, wait: bool = False, timeout: Optional[float] = None) -> None:
        """RTMP 7.2.2.5: as :meth:`receive_audio`, for video."""
        self._receive(ReceiveVideo(flag), wait, timeout)

    def fc_unpublish(self, stream_name: Optional[str] = None) -> None:
        """[impl] ``FCUnpublish(name)`` as ffmpeg sends before deleteStream (no reply awaited)."""
        self._require_connection()
        self._unpublish_requested = True  # its Unpublish.Success is no refusal
        name = self._stream_name_or_default(stream_name or self._stream_name)
        self._send(self._calls.request(FCUnpublish(name), reply=ReplyMode.IGNORE)[0])

    def close_stream(self) -> None:
        """RTMP 7.2.2 ``closeStream`` on our stream (no reply); the stream id stays valid."""
        stream_id = self._stream_command("close_stream")
        self._send(self._calls.request(CloseStream(), stream_id=stream_id)[0])
        if self._state in (ClientState.PUBLISHING, ClientState.SUBSCRIBING):
            self._set_state(ClientState.CONNECTED)
        self._ends.forget()

    def delete_stream(self, stream_id: Optional[int] = None) -> None:
        """RTMP 7.2.2.3: ``deleteStream`` (no reply); forgets our stream when it is ours."""
        self._require_connection()
        stream_id = self._stream_id if stream_id is None else stream_id
        if stream_id is None:
            raise ValueError("delete_stream() needs a stream id")
        self._send(self._calls.request(DeleteStream(stream_id))[0])
        if stream_id == self._stream_id:
            self._stream_id = None
            self._stream_name = None
            self._ends.forget()
            if self._state in (ClientState.PUBLISHING, ClientState.SUBSCRIBING):
                self._set_state(ClientState.CONNECTED)

    def shared_object(
        self,
        name: str,
        persistent: bool = False,
        *,
        on_change: Optional[Callable[[str, Any], Any]] = None,
        on_remove: Optional[Callable[[str], Any]] = None,
        on_message: Optional[Callable[[str, Tuple[Any, ...]], Any]] = None,
        on_status: Optional[Callable[[str, str], Any]] = None,
    ) -> RemoteSharedObject:
        """RTMP 7.3.2: use the remote shared object ``name`` of our application (sends Use
        and returns at once; :meth:`rtmp.remote_shared_object.RemoteSharedObject.wait_synced`
        waits for the server's answer).  Released by ``close``; the same name twice gives
        the same object.  ``persistent`` asks for an object the server keeps (flag 2)."""
        self._require_connection()
        so = self._shared.open(name, persistent)
        for attribute, callback in (("on_change", on_change), ("on_remove", on_remove),
                                    ("on_message", on_message), ("on_status", on_status)):
            if callback is not None:
                setattr(so, attribute, callback)
        return so

    # -- reading --------------------------------------------------------------------------

    def read_message(self, timeout: Optional[float] = None) -> Message:
        """The next media, data or unhandled command message.

        Protocol control, user control, pings and the replies of our own commands are
        handled inside; every ``onStatus`` is also reported to ``ClientConfig.on_status``
        and kept in :attr:`last_status`, and those not consumed by a command (e.g.
        ``NetStream.Play.UnpublishNotify``) are returned as messages too.

        When the played stream ends (User Control Stream EOF, RTMP 7.1.7 / RTMP 6.2
        event 1; ``onStatus`` ``NetStream.Play.Stop``, ``.Complete`` or
        ``.UnpublishNotify``, RTMP 7.2.2.1), the messages received before the end are
        returned first, with the status messages that came along with it, then
        :class:`rtmp.StreamEnded` is raised once for that end.  Signals of one end are
        raised once; a later call waits again (a live stream may be published anew).

        Raises :class:`rtmp.TimeoutError` after ``timeout`` (default ``read_timeout``)
        seconds without a message; :class:`ConnectionClosedError` when the server
        closed the connection.
        """
        with self._read_lock:
            deadline = self._deadline(timeout)
            if not self._buffer:
                self._require_connection()
                self._pump_until(lambda: True if self._buffer else None, "message", deadline)
            head = self._buffer.head()
            if isinstance(head, EndOfPlay):
                companion = self._end_companion(head, deadline)
                if companion is not None:
                    return companion
                self._buffer.drop_head()
                raise head.error()
            return self._buffer.take()

    def messages(self, timeout: Optional[float] = None) -> Iterator[Message]:
        """Iterate over :meth:`read_message` until the played stream ends.

        Returns normally on :class:`rtmp.StreamEnded`; a timeout (``timeout`` seconds,
        default ``read_timeout``, without a message) and connection errors propagate::

            for message in client.messages():
                ...
        """
        while True:
            try:
                message = self.read_message(timeout)
            except StreamEnded as end:
                self.log.debug("messages(): %s", end.reason)
                return
            yield message

    def _end_companion(self, end: EndOfPlay, deadline: float) -> Optional[Message]:
        """A status message that travels with ``end`` (Play.Stop after nginx-rtmp's Stream
        EOF, Stream EOF after UnpublishNotify): returned before StreamEnded, so that one
        end raises once, after all of them.  Waits ``END_SIGNAL_GRACE`` at most."""
        until = min(deadline, end.received + END_SIGNAL_GRACE)
        for _ in range(64):  # bounded: a few messages travel with an end
            if self._buffer.has_follower:
                return self._buffer.take_end_follower()
            transport = self._transport
            remaining = until - time.monotonic()
            if remaining <= 0 or transport is None or transport.closed:
                return None
            try:
                self._receive_one(transport, remaining)
            except RTMPError:  # a timeout, or a hang-up the next read reports
                return None
        return None

    # -- closing --------------------------------------------------------------------------

    def close(self) -> None:
        """End the session: goodbye commands, then a graceful, bounded close.

        A publisher sends ``FCUnpublish`` ([impl]) and ``deleteStream`` (RTMP 7.2.2.3),
        stops writing (TLS close_notify, TCP half-close) and reads, discarding, until the
        server closes its side, within ``ClientConfig.close_timeout``: the server's end of
        file confirms that it read every byte before it.  (Closing at once while replies
        sit unread makes the kernel reset the connection, and a reset throws away what
        the server had not read yet: the tail of the stream.)  When that cannot be
        confirmed (timeout, reset), raises :class:`ConnectionClosedError`, after closing.

        Other sessions (players, a connection with no stream) close at once.  A second
        call does nothing; after a failure (state ``ERROR``) it only closes the socket
        and raises nothing.  Leaving a ``with`` block because of an exception never
        raises from here (that exception is the one that matters).
        """
        self._close(confirm=True)

    def _close(self, confirm: bool) -> None:
        transport = self._transport
        unconfirmed: Optional[BaseException] = None
        if transport is not None and not transport.closed and self._state not in (
            ClientState.ERROR, ClientState.DISCONNECTED
        ):
            goodbye: List[Message] = self._shared.goodbye()  # RTMP 7.1.3: Release
            if self._state is ClientState.PUBLISHING and self._stream_name:
                goodbye.append(self._calls.request(FCUnpublish(self._stream_name),
                                                   reply=ReplyMode.UNTRACKED)[0])
            if self._stream_id is not None:
                goodbye.append(self._calls.request(DeleteStream(self._stream_id))[0])
            try:
                if goodbye:
                    transport.write_messages(goodbye)
                if self._published:
                    started = time.monotonic()
                    transport.finish(self.config.close_timeout)
                    self.log.debug("server closed its side %.3f s after ours: stream confirmed",
                                   time.monotonic() - started)
            except (RTMPError, OSError) as exc:
                if self._published:
                    unconfirmed = exc
                self.log.debug("graceful close failed: %s", exc)
        self._close_transport()
        self._shared.close()
        self._stream_id = None
        self._stream_name = None
        self._published = False
        self._set_state(ClientState.DISCONNECTED)
        if unconfirmed is not None:
            if confirm:
                raise ConnectionClosedError(
                    f"could not confirm the server received the whole stream: {unconfirmed}"
                ) from unconfirmed
            self.log.warning("could not confirm the server received the whole stream: %s",
                             unconfirmed)

    def _close_transport(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            try:
                transport.close()
            except OSError:  # pragma: no cover - close() already swallows these
                pass


def __getattr__(name: str) -> Any:
    """PEP 562: ``publish_flv``/``play_to_flv`` live in rtmp.flvio (which imports this module)."""
    if name in ("publish_flv", "play_to_flv"):
        from . import flvio

        return getattr(flvio, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
