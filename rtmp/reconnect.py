"""ERTMP Reconnect Request, and reconnection after a lost connection, for :class:`rtmp.Client`.

A server may ask a client to move (``onStatus`` ``NetConnection.Connect.ReconnectRequest``,
level ``status``, with an optional ``tcUrl``: Enhanced RTMP v2, Reconnect Request).  The
client "persists in streaming to/from the current server up to the next appropriate media
boundary, such as a keyframe.  Subsequently, it establishes a connection with a new server
and disconnects from the old server"; without ``tcUrl`` it reconnects to its current one.

Theory of operation
-------------------
:class:`Reconnector` sits between :class:`rtmp.client.Client` and its
:class:`~rtmp.client_connection.ClientConnection`: every write of a publisher and every
read of a player goes through it.

* A **publisher** remembers what a new connection needs first (:class:`PublishMemory`:
  the last ``onMetaData`` and the configuration of every track, sequence headers and
  ERTMP SequenceStart, MultichannelConfig and Metadata, kept by
  :class:`rtmp.streams.ConfigCache`).  Once a request is pending, the next video keyframe
  (any message when the stream has no video, or after :data:`SWITCH_WITHIN` seconds) is
  the boundary: a new connection is opened to the resolved tcUrl, publishes the same name
  (``record`` goes on as ``append``), gets the metadata and configurations, then the
  keyframe; the old one then says goodbye (FCUnpublish, deleteStream) and closes.  On
  :class:`rtmp.Server` the new publisher takes the stream over
  (:meth:`rtmp.streams.LiveStream.allow_handover`): its players see one stream.
* A **player** hands out what the old connection already delivered, then switches at
  once (the server chooses the media) and drops what it receives twice: media at or
  before the last timestamp delivered of its type, and configuration or metadata equal to
  what was delivered (a late joiner's GOP repeats the frames since the last keyframe).
* With ``ClientConfig.reconnect``, a connection lost while publishing or playing is
  replaced the same way, trying ``reconnect_attempts`` times with a doubling backoff
  (:func:`backoff_delays`) before the error reaches the caller.

A move happens in the thread that meets the boundary: the writing one for a publisher, the
reading one for a player (a client that publishes and reads at once from two threads should
not also expect to move).  A request whose ``tcUrl`` is no ``rtmp://``/``rtmps://`` URL with
a host and an application is logged and not followed; a move that fails leaves the client on
the old connection, tried again at the next boundary, ``reconnect_attempts`` times in all.

:func:`resolve_tc_url`, :func:`reconnect_url`, :func:`backoff_delays` and
:class:`PublishMemory` are sans-IO; the driver sleeps and opens connections.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Set, Tuple
from urllib.parse import urljoin, urlsplit

from . import commands
from .calls import ReplyMode
from .client_connection import ClientConnection
from .errors import ConnectionClosedError, RTMPError, TimeoutError
from .message import DATA_TYPES, MEDIA_TYPES, Message, StreamType, timestamp_delta
from .requests import DeleteStream, FCUnpublish
from .streams import CONFIG_SEQUENCE, ConfigCache, FrameKind, classify, config_keys
from .url import RTMPURL, parse_url

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "SWITCH_WITHIN",
    "PublishMemory",
    "Reconnector",
    "Backoff",
    "backoff_delays",
    "goodbye_messages",
    "reconnect_url",
    "resolve_tc_url",
]

#: Seconds a publisher waits for a keyframe after a reconnect request before it switches
#: at the next message anyway (a stream with rare keyframes still moves).
SWITCH_WITHIN = 10.0


# -- sans-IO: where to, when, and what to send first ------------------------------------------


def resolve_tc_url(current: str, reference: Optional[str]) -> str:
    """ERTMP Reconnect Request: the tcUrl to reconnect to.  ``reference`` is absolute
    (``rtmp://host/app``), network-path (``//host/app``), absolute-path (``/app``) or
    relative, resolved against ``current`` as RFC 3986 section 5 says; None or "": ``current``.

    ``urljoin`` resolves references only for schemes it knows; the resolution itself does
    not depend on the scheme, so it runs on an ``http`` copy and the scheme is put back.
    """
    if not reference:
        return current
    if urlsplit(reference).scheme:
        return reference
    scheme, sep, rest = current.partition("://")
    if not sep:
        raise ValueError(f"the current tcUrl {current!r} is not absolute")
    joined = urljoin("http://" + rest, reference)
    return scheme + joined[len("http"):]


def reconnect_url(current: RTMPURL, tc_url: str) -> RTMPURL:
    """The URL a client connects to for ``tc_url``: its whole path is the application (a
    tcUrl is ``scheme://host:port/app``, RTMP 7.2.1.1), the stream name stays ours.
    Credentials of the URL are kept for the same host only."""
    parsed = urlsplit(tc_url)
    if parsed.scheme not in ("rtmp", "rtmps") or not parsed.hostname:
        raise ValueError(f"cannot reconnect to {tc_url!r}: not an rtmp:// or rtmps:// URL")
    target = parse_url(tc_url)
    app = parsed.path.strip("/") + (f"?{parsed.query}" if parsed.query else "")
    if not app:
        raise ValueError(f"cannot reconnect to {tc_url!r}: no application")
    same_host = (target.host, target.port) == (current.host, current.port)
    return replace(target, app=app, stream=current.stream,
                   username=target.username or (current.username if same_host else None),
                   password=target.password or (current.password if same_host else None))


@dataclass
class Backoff:
    """Delays between attempts: ``initial``, doubled each time up to ``maximum``."""

    initial: float = 0.5
    maximum: float = 3.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError("backoff needs 0 < initial <= maximum")
        if self.factor < 1:
            raise ValueError("backoff factor must be at least 1")
        self._next = self.initial

    def next(self) -> float:
        """The delay before the next attempt (and grow the one after)."""
        delay = self._next
        self._next = min(self.maximum, self._next * self.factor)
        return delay

    def reset(self) -> None:
        """A session went live: the next loss waits ``initial`` again."""
        self._next = self.initial


def backoff_delays(attempts: int, first: float, maximum: float) -> List[float]:
    """Seconds to wait before each of ``attempts`` attempts: 0, then :class:`Backoff`'s
    delays from ``first`` doubling up to ``maximum`` (0, 0.5, 1, 2, 4, ... for 0.5)."""
    if first <= 0:
        return [0.0] * attempts
    backoff = Backoff(first, max(first, maximum))
    return [0.0 if attempt == 0 else backoff.next() for attempt in range(attempts)]


def _is_metadata(values: Sequence[Any]) -> Optional[bool]:
    """True for ``[@setDataFrame,] onMetaData``, False for ``@clearDataFrame``, else None."""
    if values and values[0] == commands.CLEAR_DATA_FRAME:
        return False
    values = commands.strip_set_data_frame(values)
    return True if values and values[0] == commands.ON_METADATA else None


class PublishMemory:
    """What a publisher has sent that a new connection must get first (FLV E.5 onMetaData,
    FLV E.4.2.2 / E.4.3.2 and ERTMP configuration of every track), and whether the
    stream has video (the boundary to switch at is then a keyframe)."""

    def __init__(self) -> None:
        self.metadata: Optional[Message] = None
        self.configs: ConfigCache[Message] = ConfigCache()
        self.has_video = False
        self.has_media = False

    def note(self, message: Message) -> FrameKind:
        """Remember ``message`` if it matters to a new connection; its kind."""
        kind = classify(message)
        if kind == FrameKind.CONFIG:
            if not self.configs.note(message):
                self.configs.note(message, ((int(message.type), CONFIG_SEQUENCE, 0),))
        elif message.type in DATA_TYPES:
            try:
                metadata = _is_metadata(commands.decode_data(message))
            except RTMPError:
                metadata = None
            if metadata is not None:
                self.metadata = message if metadata else None
        elif message.type in MEDIA_TYPES:
            self.has_media = True
            self.has_video = self.has_video or kind in (FrameKind.KEYFRAME, FrameKind.INTERFRAME)
        return kind

    def replay(self, stream_id: int, timestamp: int) -> List[Message]:
        """Metadata (at its own time: a script tag later than 0 becomes a data stream of
        its own in FFmpeg's FLV demuxer), then every configuration at ``timestamp``, all on
        ``stream_id``."""
        first = [] if self.metadata is None else [
            self.metadata.replace(message_stream_id=stream_id)]
        return first + [m.replace(message_stream_id=stream_id, timestamp=timestamp)
                        for m in self.configs.items()]

    def is_boundary(self, kind: FrameKind, message: Message, waited: float) -> bool:
        """ERTMP Reconnect Request: whether to switch before ``message``: a video keyframe;
        any media when the stream has no video (yet) or after ``SWITCH_WITHIN`` seconds."""
        if kind == FrameKind.KEYFRAME:
            return True
        if message.type not in MEDIA_TYPES or kind == FrameKind.CONFIG:
            return not self.has_media or waited >= SWITCH_WITHIN
        return not self.has_video or waited >= SWITCH_WITHIN


class _PlayFilter:
    """After a player's switch: what was delivered already is dropped (see the module)."""

    def __init__(self) -> None:
        self.last_media: Dict[int, int] = {}
        self.configs: Dict[Tuple[int, str, int], bytes] = {}
        self.metadata: Optional[bytes] = None
        self.pending: Set[int] = set()  # the media types still checked since the switch
        self.active = False  # a switch happened and not every media type went on yet

    def delivered(self, message: Message) -> None:
        if message.type in MEDIA_TYPES:
            keys = config_keys(message.type, message.data)
            for key in keys:
                self.configs[key] = message.data
            if not keys:
                self.last_media[message.type] = message.timestamp
        elif message.type in DATA_TYPES:
            self.metadata = message.data

    def switched(self) -> None:
        self.pending = set(self.last_media)
        self.active = True

    def duplicate(self, message: Message) -> bool:
        """Only right after a switch, until new media of every type came: a sequence header
        repeated at other times (after a seek, a new publisher) is news."""
        if not self.active:
            return False
        if not self.pending:
            self.active = False
            return False
        if message.type in MEDIA_TYPES:
            keys = config_keys(message.type, message.data)
            if keys:
                return all(self.configs.get(key) == message.data for key in keys)
            if message.type in self.pending:
                if timestamp_delta(message.timestamp, self.last_media[message.type]) <= 0:
                    return True
                self.pending.discard(message.type)
            return False
        return message.type in DATA_TYPES and message.data == self.metadata


def goodbye_messages(connection: ClientConnection, stream_name: Optional[str],
                     publishing: bool) -> List[Message]:
    """A session's last commands: ``FCUnpublish`` ([impl]) for a publisher, ``deleteStream``
    (RTMP 7.2.2.3) for its stream; none when the connection is not open."""
    goodbye: List[Message] = []
    if connection.is_open:
        if publishing and stream_name:
            goodbye.append(connection.message(FCUnpublish(stream_name), reply=ReplyMode.UNTRACKED))
        if connection.inbox.stream_id is not None:
            goodbye.append(connection.message(DeleteStream(connection.inbox.stream_id)))
    return goodbye


# -- the driver ----------------------------------------------------------------------------


class Reconnector:
    """Follows reconnect requests and replaces lost connections for one :class:`Client`."""

    def __init__(self, client: "Client") -> None:
        self.client = client
        self.memory = PublishMemory()
        self._mode: Optional[str] = None  # "publish" or "play" once started
        self._name: Optional[str] = None
        self._publish_type = StreamType.LIVE
        self._play_args: Tuple[float, float, bool] = (-2, -1, True)
        self._former_ids: Set[int] = set()
        self._requested_at: Optional[float] = None
        self._failed_switches = 0
        self._filter = _PlayFilter()
        #: How many times the client moved to a new connection (requests and recoveries).
        self.reconnections = 0

    def started(self, mode: Optional[str], name: Optional[str] = None,
                stream_type: StreamType = StreamType.LIVE,
                play_args: Tuple[float, float, bool] = (-2, -1, True)) -> None:
        """``publish``/``play`` of ``name`` succeeded (``mode``), or the stream was left
        (None)."""
        if mode != self._mode or name != self._name:
            self.memory = PublishMemory()
            self._filter = _PlayFilter()
        self._mode, self._name = mode, name
        self._publish_type = stream_type
        self._play_args = play_args

    # -- publishing ----------------------------------------------------------------------

    def write(self, messages: Sequence[Message]) -> None:
        """Send ``messages``; a publisher follows a pending request at the first boundary
        among them and recovers a lost connection (``ClientConfig.reconnect``)."""
        client = self.client
        if self._mode != "publish":
            client.connection.write(*messages)
            return
        pending: List[Message] = []
        for message in messages:
            message = self._own(message)
            kind = self.memory.note(message)
            if self._request_pending() and self.memory.is_boundary(kind, message, self._waited()):
                if pending:
                    self._send(pending)
                    pending = []
                if self._follow_request(message.timestamp):
                    message = self._own(message)
            pending.append(message)
        self._send(pending)

    def _send(self, messages: List[Message]) -> None:
        try:
            self.client.connection.write(*messages)
        except (ConnectionClosedError, TimeoutError) as exc:
            self._recover(exc, messages[0].timestamp if messages else 0)
            self.client.connection.write(*[self._own(m) for m in messages])

    def _own(self, message: Message) -> Message:
        """A message for a former connection's stream goes on the current one's."""
        current = self.client.stream_id
        if current is not None and message.message_stream_id in self._former_ids \
                and message.message_stream_id != current:
            return message.replace(message_stream_id=current)
        return message

    # -- playing ---------------------------------------------------------------------------

    def read_message(self, timeout: Optional[float]) -> Message:
        """The next message for the application; a player follows a pending request once
        what the old connection delivered is handed out, and recovers a lost connection."""
        for _ in range(10_000):  # bounded: duplicates dropped after a switch
            connection = self.client.connection
            if self._mode == "play" and self._request_pending() and not connection.inbox.buffer:
                self._follow_request(0)
                connection = self.client.connection
            try:
                message = connection.read_message(timeout)
            except ConnectionClosedError as exc:
                if self._mode != "play":
                    raise
                self._recover(exc, 0)
                continue
            if self._mode != "play":
                return message
            if self._filter.duplicate(message):
                continue
            self._filter.delivered(message)
            return message
        raise TimeoutError("only repeated messages after a reconnection")

    # -- switching -------------------------------------------------------------------------

    def _request_pending(self) -> bool:
        inbox = self.client.connection.inbox
        if inbox.reconnect_request is None:
            self._requested_at = None
            return False
        if self._requested_at is None:
            self._requested_at = time.monotonic()
        return True

    def _waited(self) -> float:
        return 0.0 if self._requested_at is None else time.monotonic() - self._requested_at

    def _follow_request(self, timestamp: int) -> bool:
        """ERTMP Reconnect Request: move to the tcUrl the request names (or ours)."""
        connection = self.client.connection
        event = connection.inbox.reconnect_request
        url = connection.url
        assert event is not None and url is not None
        reference = event.info.get("tcUrl")
        try:
            target = reconnect_url(url, resolve_tc_url(
                url.tc_url, reference if isinstance(reference, str) else None))
        except ValueError as exc:
            self.client.log.warning("reconnect request not followed: %s", exc)
            connection.inbox.reconnect_request = None
            return False
        try:
            self._switch(target, timestamp)
        except RTMPError as exc:
            self._failed_switches += 1
            if self._failed_switches >= self.client.config.reconnect_attempts:
                self.client.log.warning("reconnect request to %s given up after %d attempts: %s",
                                        target, self._failed_switches, exc)
                connection.inbox.reconnect_request = None
            else:
                self.client.log.warning("reconnect to %s failed (%s); staying, trying again at "
                                        "the next boundary", target, exc)
            return False
        self._failed_switches = 0
        return True

    def _recover(self, exc: RTMPError, timestamp: int) -> None:
        """``ClientConfig.reconnect``: replace a lost connection, with backoff; re-raise
        ``exc`` when it is off or every attempt failed."""
        client = self.client
        config = client.config
        url = client.connection.url
        if not config.reconnect or url is None:
            raise exc
        client.log.warning("connection lost (%s): reconnecting", exc)
        last: RTMPError = exc
        for delay in backoff_delays(config.reconnect_attempts, config.reconnect_backoff,
                                    config.reconnect_backoff_max):
            time.sleep(delay)
            try:
                self._switch(url, timestamp)
                return
            except RTMPError as failure:
                client.log.info("reconnection to %s failed: %s", url, failure)
                last = failure
        raise ConnectionClosedError(
            f"connection lost and {config.reconnect_attempts} reconnections failed: {last}"
        ) from exc

    def _switch(self, target: RTMPURL, timestamp: int) -> None:
        """Open a connection to ``target``, publish or play our stream there, then close
        the old connection (politely when it is still open)."""
        client = self.client
        old = client.connection
        name = self._name
        publishing = self._mode == "publish"
        old_stream = old.inbox.stream_id
        new = ClientConnection(client.config, client.id, client.log)
        client.use_connection(new)
        try:
            new.connect(target)
            if publishing:
                stream_type = self._publish_type
                if stream_type is StreamType.RECORD:
                    stream_type = StreamType.APPEND  # the recording goes on, not over
                client.publish(name, stream_type)
                assert new.inbox.stream_id is not None
                replay = self.memory.replay(new.inbox.stream_id, timestamp)
                if replay:
                    new.write(*replay)
            else:
                start, duration, reset = self._play_args
                if start >= 0:  # a recording: on from what was delivered
                    start = max(self._filter.last_media.values(), default=0) / 1000.0
                client.play(name, start, duration, reset)
                self._filter.switched()
        except BaseException:
            new.close([], confirm=False)
            client.use_connection(old)
            raise
        if old_stream is not None:
            self._former_ids.add(old_stream)
        self.reconnections += 1
        client.log.info("moved to %s (%s %r)", target, "publishing" if publishing else "playing",
                        name)
        unconfirmed = old.close(goodbye_messages(old, name, publishing),
                                confirm=publishing and old.is_open)
        if unconfirmed is not None:
            client.log.warning("old connection: the server did not confirm the end of the "
                               "stream: %s", unconfirmed)

