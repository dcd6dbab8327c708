"""RTMP 7.2 (NetConnection and NetStream commands) over RTMP 5-6: the blocking client.

:class:`Client` is the scripting face of the library::

    with rtmp.Client(rtmp.ClientConfig(stream_name="key")) as client:
        client.connect("rtmp://localhost/live")
        client.publish()
        client.send_video(frame, timestamp)

Theory of operation
-------------------
``Client`` is the API: each method checks the state, builds its typed request
(:mod:`rtmp.requests`) and says which reply ends it; the bytes are the business of its
:class:`~rtmp.client_connection.ClientConnection` (the transport, connect with the
authentication reconnects, the pump that reads until the reply arrives, the confirmed
close), and what arrives meanwhile is sorted by the connection's
:class:`~rtmp.client_inbox.ClientInbox` (replies matched by :class:`rtmp.calls.Calls`,
statuses, user control events, the ends of play of :mod:`rtmp.playback`, the buffer
:meth:`Client.read_message` drains).  ``ClientConfig`` and ``ClientState`` live with the
connection and are this module's names too.

* ``connect``, ``createStream`` and ``call`` (RTMP 7.2.1) wait for ``_result`` /
  ``_error``, matched by transaction id; replies to fire-and-forget calls
  (``releaseStream``, ``FCPublish``, ``_checkbw``) are dropped;
* ``publish``, ``play``, ``seek``, ``pause`` (RTMP 7.2.2) wait for the ``onStatus`` code
  that completes them; an ``error`` level raises :class:`~rtmp.errors.CommandError`;
* every ``onStatus`` becomes a :class:`~rtmp.commands.StatusEvent` (``last_status``,
  ``ClientConfig.on_status``); the end of a play (Stream EOF, RTMP 7.1.7; Play.Stop,
  Play.Complete, Play.UnpublishNotify, RTMP 7.2.2.1) takes its place among the messages
  kept, and ``read_message`` raises :class:`~rtmp.errors.StreamEnded` there, once per end;
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

import itertools
import math
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
    Union,
)

from . import commands, user_control
from .calls import ReplyMode
from .client_connection import ClientConfig, ClientConnection, ClientState
from .commands import StatusEvent
from .errors import CommandError, ConnectionClosedError, ProtocolError, StreamEnded
from .logs import connection_logger
from .message import Message, MessageType, StreamType
from .requests import (
    CloseStream,
    DeleteStream,
    FCPublish,
    FCUnpublish,
    Pause,
    Play,
    Publish,
    ReceiveAudio,
    ReceiveVideo,
    ReleaseStream,
    Request,
    Seek,
)
from .reconnect import Reconnector, goodbye_messages
from .remote_shared_object import RemoteSharedObject
from .transport import Transport
from .url import RTMPURL, parse_url

__all__ = [
    "Client",
    "ClientConfig",
    "ClientState",
    "publish_flv",  # noqa: F822 - module __getattr__ (PEP 562)
    "play_to_flv",  # noqa: F822 - module __getattr__ (PEP 562)
]

_connection_ids = itertools.count(1)


class Client:
    """An RTMP client: ``connect``, then ``publish`` or ``play`` (RTMP 7.2)."""

    def __init__(self, config: Optional[ClientConfig] = None) -> None:
        self.config = config or ClientConfig()
        self.id = f"c{next(_connection_ids)}"
        self.log = connection_logger(__name__, self.id)
        self._connection = ClientConnection(self.config, self.id, self.log)
        self._inbox = self._connection.inbox
        self._stream_name: Optional[str] = None
        self._published = False  # publish() succeeded on this connection: close() confirms
        #: ERTMP Reconnect Request and ``ClientConfig.reconnect`` (:mod:`rtmp.reconnect`).
        self._reconnect = Reconnector(self)

    # -- properties -----------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The current :class:`ClientState`."""
        return self._connection.state

    @property
    def connection(self) -> ClientConnection:
        """The current connection (a new one after a reconnection, :mod:`rtmp.reconnect`)."""
        return self._connection

    @property
    def reconnections(self) -> int:
        """Times the client moved to a new connection by itself (:mod:`rtmp.reconnect`)."""
        return self._reconnect.reconnections

    def use_connection(self, connection: ClientConnection) -> None:
        """Make ``connection`` the current one (:mod:`rtmp.reconnect` moves the client)."""
        self._connection, self._inbox = connection, connection.inbox

    @property
    def stream_id(self) -> Optional[int]:
        """The message stream id from createStream (RTMP 7.2.1.3), or None."""
        return self._inbox.stream_id

    @property
    def object_encoding(self) -> int:
        """The object encoding the server agreed in its connect ``_result`` (0 or 3)."""
        return self._connection.object_encoding

    @property
    def server_info(self) -> Dict[str, Any]:
        """The information object of the connect ``_result`` (RTMP 7.2.1.1)."""
        return self._connection.server_info

    @property
    def server_properties(self) -> Dict[str, Any]:
        """The properties object of the connect ``_result`` (``fmsVer``, ``capabilities``)."""
        return self._connection.server_properties

    @property
    def url(self) -> Optional[RTMPURL]:
        """The URL of the current connection (app and stream resolved)."""
        return self._connection.url

    @property
    def transport(self) -> Optional[Transport]:
        """The underlying transport (for statistics: ``bytes_sent``, chunk sizes)."""
        return self._connection.transport

    @property
    def stream_eof(self) -> bool:
        """True once the server sent Stream EOF (RTMP 7.1.7 event 1) for our stream."""
        return self._inbox.stream_eof

    @property
    def last_status(self) -> Optional[StatusEvent]:
        """The last ``onStatus`` (RTMP 7.2.2) received, as a :class:`rtmp.StatusEvent`."""
        return self._inbox.last_status

    # -- context manager ------------------------------------------------------------------

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], *exc_info: object) -> None:
        # With an exception in flight, that one is the news: close without raising.
        self._close(confirm=exc_type is None)

    # -- NetConnection --------------------------------------------------------------------

    def connect(self, url: str) -> None:
        """RTMP 7.2.1.1: open the connection, handshake and send ``connect``.

        Returns once ``_result`` arrives; raises :class:`CommandError` on ``_error``
        (after answering an AUTH-ADOBE/AUTH-LLNW challenge when credentials are known),
        :class:`rtmp.TimeoutError` when ``connect_timeout`` passes, and
        :class:`ConnectionClosedError` / :class:`HandshakeError` for network failures.
        """
        if self.state not in (ClientState.DISCONNECTED, ClientState.ERROR):
            raise ValueError(f"connect() in state {self.state.name}: close() first")
        parsed = parse_url(url)
        app = parsed.app or self.config.app_name
        if not app:
            raise ValueError(f"no application in {url!r} and no ClientConfig.app_name")
        self._stream_name = None
        self._published = False
        self._reconnect.started(None)
        self._connection.connect(parsed.with_names(
            app=app, stream=parsed.stream or self.config.stream_name))

    def call(self, name: str, *args: Any, command_object: Any = None,
             timeout: Optional[float] = None) -> Any:
        """RTMP 7.2.1.2: call ``name(*args)`` on the server and wait for its reply.

        Returns the ``_result`` values after the command object: the single value when
        there is one, None when there is none, else a list.  Raises
        :class:`CommandError` on ``_error`` and :class:`rtmp.TimeoutError`.
        """
        if not isinstance(name, str) or not name:
            raise ValueError("the procedure name must be a non-empty string")
        return self._connection.call(name, *args, command_object=command_object, timeout=timeout)

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
        self._inbox.use_stream(stream_id)
        self.log.debug("created stream %d", stream_id)
        return stream_id

    def _stream_name_or_default(self, stream_name: Optional[str]) -> str:
        url = self._connection.url
        name = stream_name or (url.stream if url else None) or self.config.stream_name
        if not name:
            raise ValueError("no stream name: pass one, put it in the URL or in ClientConfig.stream_name")
        return name

    def _name_when_connected(self, what: str, stream_name: Optional[str]) -> str:
        """publish and play start from CONNECTED; the stream name they use."""
        if self.state is not ClientState.CONNECTED:
            self._connection.require()
            raise ValueError(f"{what}() in state {self.state.name}: needs CONNECTED")
        return self._stream_name_or_default(stream_name)

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
        name = self._name_when_connected("publish", stream_name)
        kind = StreamType(stream_type)
        try:
            stream_id = self._publish_once(name, kind, timeout)
        except CommandError as exc:
            if not self._connection.wants_auth(exc):
                raise
            # AUTH-ADOBE: the server accepted our connect as a player's and wants the
            # challenge for publishing: reconnect through it, then publish again.
            self.log.info("publish of %r needs authentication: reconnecting", name)
            url = self._connection.url
            assert url is not None
            self._connection.connect(url, exc.description)
            stream_id = self._publish_once(name, kind, timeout)
        self._stream_name = name
        self._connection.set_state(ClientState.PUBLISHING)
        self._published = True
        self._reconnect.started("publish", name, kind)
        self.log.info("publishing %r (%s) on stream %d", name, kind.value, stream_id)

    def _publish_once(self, name: str, kind: StreamType, timeout: Optional[float]) -> int:
        connection = self._connection
        if self.config.publish_preamble:
            # [impl] FMLE/OBS/ffmpeg: servers answer these or not; either is fine.
            connection.send_request(ReleaseStream(name), reply=ReplyMode.IGNORE)
            connection.send_request(FCPublish(name), reply=ReplyMode.IGNORE)
        stream_id = self._inbox.stream_id or self.create_stream(timeout)
        self._inbox.start_publish()
        connection.send_request(Publish(name, kind), stream_id=stream_id)
        connection.wait_for_status(stream_id, {commands.NETSTREAM_PUBLISH_START},
                                   f"publish {name!r}", timeout=timeout)
        return stream_id

    def write_message(self, message: Message) -> None:
        """Send one message as is (thread-safe)."""
        if not isinstance(message, Message):
            raise TypeError(f"write_message() takes a rtmp.Message, not {type(message).__name__}")
        self._reconnect.write((message,))

    def write_messages(self, messages: Sequence[Message]) -> None:
        """Send several messages with one write (thread-safe): fewer system calls when
        publishing faster than real time."""
        for message in messages:
            if not isinstance(message, Message):
                raise TypeError(
                    f"write_messages() takes rtmp.Message items, not {type(message).__name__}")
        self._reconnect.write(messages)

    def _stream_for_media(self) -> int:
        if self._inbox.stream_id is None:
            raise ValueError("no stream: publish() first")
        return self._inbox.stream_id

    def send_audio(self, data: bytes, timestamp: int) -> None:
        """RTMP 7.1.4: one audio message (FLV AUDIODATA) on our stream."""
        self._reconnect.write((Message(type=MessageType.AUDIO, data=data, timestamp=timestamp,
                                       message_stream_id=self._stream_for_media()),))

    def send_video(self, data: bytes, timestamp: int) -> None:
        """RTMP 7.1.5: one video message (FLV VIDEODATA) on our stream."""
        self._reconnect.write((Message(type=MessageType.VIDEO, data=data, timestamp=timestamp,
                                       message_stream_id=self._stream_for_media()),))

    def send_metadata(self, metadata: Mapping[str, Any], timestamp: int = 0) -> None:
        """RTMP 7.1.2: ``@setDataFrame, onMetaData, {...}`` ([impl] as ffmpeg and OBS send it)."""
        self._reconnect.write((commands.metadata(metadata, self._stream_for_media(),
                                                 timestamp=timestamp),))

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
        name = self._name_when_connected("play", stream_name)
        stream_id = self._inbox.stream_id or self.create_stream(timeout)
        self._inbox.start_play()  # Stream EOF and the end statuses count from here
        connection = self._connection
        connection.send_request(Play(name, self._play_time(start), self._play_time(duration),
                                     reset), stream_id=stream_id)
        # RTMP 7.1.7 event 3: tell the server how much we buffer ([impl] ffmpeg sends it
        # right after play).
        connection.send(user_control.set_buffer_length(stream_id, self.config.buffer_length))
        connection.wait_for_status(stream_id, {commands.NETSTREAM_PLAY_START}, f"play {name!r}",
                                   also_consumed={commands.NETSTREAM_PLAY_RESET}, timeout=timeout)
        self._stream_name = name
        connection.set_state(ClientState.SUBSCRIBING)
        self._reconnect.started("play", name, play_args=(start, duration, reset))
        self.log.info("playing %r on stream %d", name, stream_id)

    subscribe = play

    def _stream_command(self, what: str, request: Request, expected: Optional[str],
                        also_consumed: Set[str], timeout: Optional[float]) -> int:
        """Send a NetStream command on our stream; wait for ``expected`` when given."""
        self._connection.require()
        stream_id = self._inbox.stream_id
        if stream_id is None:
            raise ValueError(f"{what}() needs a stream: play() or publish() first")
        self._connection.send_request(request, stream_id=stream_id)
        if expected is not None:
            self._connection.wait_for_status(stream_id, {expected}, what,
                                             also_consumed=also_consumed, timeout=timeout)
        return stream_id

    def seek(self, milliseconds: float, timeout: Optional[float] = None) -> None:
        """RTMP 7.2.2.7: seek to ``milliseconds``; returns once ``NetStream.Seek.Notify``
        arrives.  Media buffered until then is dropped (``ClientConfig.flush_on_seek``)."""
        stream_id = self._stream_command(
            "seek", Seek(milliseconds), commands.NETSTREAM_SEEK_NOTIFY,
            {commands.NETSTREAM_PLAY_RESET, commands.NETSTREAM_PLAY_START}, timeout)
        if self.config.flush_on_seek:
            dropped = self._inbox.buffer.flush_media(stream_id)
            if dropped:
                self.log.debug("seek: dropped %d buffered media messages from before the seek",
                               dropped)

    def pause(self, paused: bool, milliseconds: Optional[float] = None,
              timeout: Optional[float] = None) -> None:
        """RTMP 7.2.2.8: pause (True) or resume (False) at ``milliseconds`` (default: the
        timestamp of the last media message received); waits for Pause/Unpause.Notify."""
        if milliseconds is None:
            milliseconds = self._inbox.last_media_timestamp
        code = commands.NETSTREAM_PAUSE_NOTIFY if paused else commands.NETSTREAM_UNPAUSE_NOTIFY
        self._stream_command("pause" if paused else "resume", Pause(paused, milliseconds), code,
                             {commands.NETSTREAM_PLAY_START, commands.NETSTREAM_PLAY_RESET},
                             timeout)

    def receive_audio(self, flag: bool, wait: bool = False, timeout: Optional[float] = None) -> None:
        """RTMP 7.2.2.4: ask for (True) or stop (False) the stream's audio.

        ``wait=True`` waits for the ``NetStream.Seek.Notify`` the spec promises for True
        (many servers, nginx-rtmp among them, send nothing).
        """
        self._receive(ReceiveAudio(flag), wait, timeout)

    def receive_video(self, flag: bool, wait: bool = False, timeout: Optional[float] = None) -> None:
        """RTMP 7.2.2.5: as :meth:`receive_audio`, for video."""
        self._receive(ReceiveVideo(flag), wait, timeout)

    def _receive(self, request: Union[ReceiveAudio, ReceiveVideo], wait: bool,
                 timeout: Optional[float]) -> None:
        # RTMP 7.2.2.4: true is answered with Seek.Notify and Play.Start.
        expected = commands.NETSTREAM_SEEK_NOTIFY if request.flag and wait else None
        self._stream_command(request.name, request, expected, {commands.NETSTREAM_PLAY_START},
                             timeout)

    def fc_unpublish(self, stream_name: Optional[str] = None) -> None:
        """[impl] ``FCUnpublish(name)`` as ffmpeg sends before deleteStream (no reply awaited)."""
        self._connection.require()
        self._inbox.note_unpublish()  # its Unpublish.Success is no refusal
        name = self._stream_name_or_default(stream_name or self._stream_name)
        self._connection.send_request(FCUnpublish(name), reply=ReplyMode.IGNORE)

    def close_stream(self) -> None:
        """RTMP 7.2.2 ``closeStream`` on our stream (no reply); the stream id stays valid."""
        self._stream_command("close_stream", CloseStream(), None, set(), None)
        self._leave_stream(forget=False)

    def delete_stream(self, stream_id: Optional[int] = None) -> None:
        """RTMP 7.2.2.3: ``deleteStream`` (no reply); forgets our stream when it is ours."""
        self._connection.require()
        ours = self._inbox.stream_id
        stream_id = ours if stream_id is None else stream_id
        if stream_id is None:
            raise ValueError("delete_stream() needs a stream id")
        self._connection.send_request(DeleteStream(stream_id))
        if stream_id == ours:
            self._stream_name = None
            self._leave_stream(forget=True)

    def _leave_stream(self, forget: bool) -> None:
        self._reconnect.started(None)
        self._inbox.leave_stream(forget)
        if self.state in (ClientState.PUBLISHING, ClientState.SUBSCRIBING):
            self._connection.set_state(ClientState.CONNECTED)

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
        self._connection.require()
        so = self._connection.shared.open(name, persistent)
        for attribute, callback in (("on_change", on_change), ("on_remove", on_remove),
                                    ("on_message", on_message), ("on_status", on_status)):
            if callback is not None:
                setattr(so, attribute, callback)
        return so

    # -- reading --------------------------------------------------------------------------

    def read_message(self, timeout: Optional[float] = None) -> Message:
        """The next media, data or unhandled command message.

        Protocol control, user control, pings and our commands' replies are handled
        inside; every ``onStatus`` goes to ``ClientConfig.on_status`` and :attr:`last_status`,
        and those no command consumed (``NetStream.Play.UnpublishNotify``) are returned too.

        When the played stream ends (Stream EOF, RTMP 7.1.7 / 6.2 event 1; ``onStatus``
        ``NetStream.Play.Stop``, ``.Complete`` or ``.UnpublishNotify``, RTMP 7.2.2.1), the
        messages received before the end are returned first, with the statuses that came
        along, then :class:`rtmp.StreamEnded` is raised once for that end; a later call
        waits again (a live stream may be published anew).

        Raises :class:`rtmp.TimeoutError` after ``timeout`` (default ``read_timeout``)
        seconds without a message; :class:`ConnectionClosedError` when the server closed
        the connection (and, with ``ClientConfig.reconnect``, no reconnection succeeded).
        """
        return self._reconnect.read_message(timeout)

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

        Other sessions (players, no stream) close at once.  A second call does nothing;
        after a failure (state ``ERROR``) it only closes the socket and raises nothing.
        Leaving a ``with`` block because of an exception never raises from here.
        """
        self._close(confirm=True)

    def _close(self, confirm: bool) -> None:
        connection = self._connection
        self._reconnect.started(None)
        publishing = self.state is ClientState.PUBLISHING
        unconfirmed = connection.close(goodbye_messages(connection, self._stream_name, publishing),
                                       confirm=self._published)
        self._stream_name = None
        self._published = False
        if unconfirmed is not None:
            if confirm:
                raise ConnectionClosedError(
                    f"could not confirm the server received the whole stream: {unconfirmed}"
                ) from unconfirmed
            self.log.warning("could not confirm the server received the whole stream: %s",
                             unconfirmed)


def __getattr__(name: str) -> Any:
    """PEP 562: ``publish_flv``/``play_to_flv`` live in rtmp.flvio (which imports this module)."""
    if name in ("publish_flv", "play_to_flv"):
        from . import flvio

        return getattr(flvio, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
