"""Relaying to and from other RTMP servers (issue 19): what push and pull share.

Theory of operation
-------------------
A relay is one *upstream session*: an :class:`rtmp.client.Client` that a server runs
against another server (nginx-rtmp, node-media-server, SRS, another of ours), on a
thread of its own, reconnected with backoff when it is lost.  :class:`UpstreamSession`
is that loop; a subclass says what one session does once connected
(:meth:`UpstreamSession.serve`): :class:`rtmp.push.PushTarget` publishes a local
stream to the far side, :class:`rtmp.pull.PullSession` plays a stream of the far side
(an origin) and publishes it into the local live hub.  :class:`UpstreamGroup` keeps
the sessions of one direction (the server API lists them, the server stops them).
The loop keeps the counters the server API shows (:class:`RelayInfo`: state, bytes,
messages, drops, reconnects, the last error).

The media of a relay never waits for the far side on the local publisher's thread: a
pushing session reads the live hub through a :class:`rtmp.streams.LivePlayer` (a
bounded queue with the players' drop policy and a writer thread) whose sink is the
client (:class:`ClientSink`).

Loops.  Every relay's ``connect`` carries the command-object property
:data:`RELAY_PROPERTY` (``rtmpRelayVia``): the comma-separated ids of the servers the
stream went through, the sender's last (RTMP 7.2.1.1 lets a client add properties to
the command object; servers that do not know it ignore it).  A server refuses a publish
whose connect names the server itself, or more than :data:`MAX_RELAY_HOPS` servers
(:func:`loop_reason`), with ``NetStream.Publish.BadName`` and a description that starts
with :data:`RELAY_LOOP`; a relay refused that way stops for good (state ``looped``)
instead of retrying, so a loop is logged on both sides and never amplified.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Generic, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

from .client import Client, ClientConfig
from .errors import CommandError, RTMPError
from .reconnect import Backoff
from .logs import connection_logger
from .message import Message
from .url import RTMPURL, parse_url

__all__ = [
    "RELAY_PROPERTY",
    "RELAY_LOOP",
    "MAX_RELAY_HOPS",
    "RelayState",
    "RelayInfo",
    "Backoff",
    "ClientSink",
    "UpstreamSession",
    "UpstreamGroup",
    "check_relay_url",
    "display_url",
    "relay_chain",
    "loop_reason",
    "new_session_log",
]

logger = logging.getLogger(__name__)

_Logger = Union[logging.Logger, logging.LoggerAdapter]  # type: ignore[type-arg]

#: The ``connect`` command-object property that lists the servers a relayed stream
#: went through (comma-separated server ids, RTMP 7.2.1.1 command object).
RELAY_PROPERTY = "rtmpRelayVia"
#: How a refused relay's description starts when the refusal is a loop.
RELAY_LOOP = "relay loop"
#: The most servers one stream may be relayed through.
MAX_RELAY_HOPS = 8


class RelayState(str, enum.Enum):
    """Where an upstream session is (its ``value`` is what the server API shows)."""

    CONNECTING = "connecting"
    """Connecting (TCP, TLS, handshake, ``connect``, ``publish``/``play``)."""
    LIVE = "live"
    """Connected: media flows."""
    RETRYING = "retrying"
    """Lost or refused: waiting out the backoff before the next attempt."""
    LOOPED = "looped"
    """Refused as a relay loop: stopped for good (no retry)."""
    STOPPED = "stopped"
    """Ended (the local stream ended, or the server stops)."""


@dataclass(frozen=True)
class RelayInfo:
    """A snapshot of one relay for the server API (``Server.relays``, ``/api/streams``)."""

    direction: str
    """``"push"`` (or ``"pull"``)."""
    app: str
    """The local application."""
    stream: str
    """The local stream name."""
    url: str
    """The far side, as ``scheme://host:port/app/stream`` (no credentials)."""
    state: str
    """A :class:`RelayState` value."""
    bytes_sent: int
    """Bytes sent to the far side, every session together."""
    bytes_received: int
    """Bytes received from the far side, every session together."""
    messages: int
    """Media and data messages relayed."""
    dropped: int
    """Messages dropped because the far side could not keep up (bounded queue)."""
    reconnects: int
    """Sessions started after the first one (lost or refused ones)."""
    last_error: Optional[str]
    """Why the last session ended or was refused, or None."""
    uptime: float
    """Seconds since the current session went live (0 when not live)."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of refs/http-api.md."""
        return {field: getattr(self, field) for field in self.__dataclass_fields__}


def check_relay_url(url: str, what: str = "relay") -> RTMPURL:
    """Parse a relay target or origin (``rtmp[s]://[user:pass@]host[:port]/app[/name]``).

    ValueError naming ``what``, the URL and the reason: another scheme, no host, a bad
    port, no application.  Checked when the server is configured, so a typo stops
    ``rtmp serve`` at start instead of failing at the first publish.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{what} URL {url!r}: empty; use rtmp://host[:port]/app or rtmps://...")
    try:
        parsed = parse_url(url)
    except ValueError as exc:
        raise ValueError(f"{what} URL {url!r}: {exc}") from None
    app = parsed.app.partition("?")[0]
    if not app:
        raise ValueError(f"{what} URL {url!r} names no application: "
                         "use rtmp://host[:port]/app or rtmps://...")
    if any(ch.isspace() for ch in url.strip()):
        raise ValueError(f"{what} URL {url!r} contains white space")
    return parsed


def display_url(url: RTMPURL, stream: Optional[str] = None) -> str:
    """``scheme://host:port/app[/stream]`` without credentials or query strings (which
    often carry stream keys): what logs and the server API show of a relay's far side."""
    app = url.app.partition("?")[0]
    name = (url.stream if stream is None else stream) or ""
    name = name.partition("?")[0]
    return f"{url.scheme}://{url.netloc}/{app}" + (f"/{name}" if name else "")


def relay_chain(params: Mapping[str, Any]) -> List[str]:
    """The server ids in a ``connect`` command object's :data:`RELAY_PROPERTY` ([] if none)."""
    value = params.get(RELAY_PROPERTY) if isinstance(params, Mapping) else None
    if not isinstance(value, str):
        return []
    return [part for part in value.split(",") if part]


def loop_reason(params: Mapping[str, Any], server_id: str) -> Optional[str]:
    """Why a publish on a connection with ``connect`` properties ``params`` is a relay
    loop on the server ``server_id`` (its description, starting with :data:`RELAY_LOOP`),
    or None."""
    chain = relay_chain(params)
    if server_id in chain:
        return f"{RELAY_LOOP}: this server already relayed the stream (via {','.join(chain)})"
    if len(chain) >= MAX_RELAY_HOPS:
        return f"{RELAY_LOOP}: relayed through {len(chain)} servers (max {MAX_RELAY_HOPS})"
    return None


class ClientSink:
    """A :class:`rtmp.streams.FanoutSink` that writes through a :class:`rtmp.client.Client`.

    The hub's pre-chunked bytes are not used: the client chunks each batch for its
    own connection with one ``write_messages`` (one system call per batch), which also
    answers the far side's pings and notices its refusals.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        transport = client.transport
        self._chunk_size = transport.out_chunk_size if transport is not None else 128
        self.messages = 0

    @property
    def out_chunk_size(self) -> int:
        """The client's outgoing chunk size (the hub chunks once per size in use)."""
        return self._chunk_size

    def write_fanout(self, items: Sequence[Tuple[Optional[bytes], Message, int]]) -> None:
        """Send the batch's messages in order (RTMPError if the session is lost)."""
        self.client.write_messages([item[1] for item in items])
        self.messages += len(items)


class UpstreamSession:
    """One relay: a client session to ``url``, on its own thread, reconnected with backoff.

    Subclasses implement :meth:`serve`: run one connected session until
    :meth:`stopping` (return) or until it is lost (raise).  ``chain`` is the
    :data:`RELAY_PROPERTY` list sent in ``connect`` (this server's id last).
    """

    direction = "relay"

    def __init__(
        self,
        url: str,
        *,
        app: str,
        stream: str,
        chain: Sequence[str],
        client_config: Optional[ClientConfig] = None,
        backoff: Optional[Backoff] = None,
        log: Optional[_Logger] = None,
    ) -> None:
        self.target = check_relay_url(url, self.direction)
        self.url = url
        self.app = app
        self.stream = stream
        self.chain = list(chain)
        self.client_config = client_config or ClientConfig()
        self.backoff = backoff or Backoff()
        self.log: _Logger = log or logger
        self.state = RelayState.CONNECTING
        self.reconnects = 0
        self.last_error: Optional[str] = None
        self.live_since = 0.0
        self._bytes_sent = 0
        self._bytes_received = 0
        self._client: Optional[Client] = None
        self._wake = threading.Condition()
        self._stop = False
        self._thread: Optional[threading.Thread] = None

    # -- what a subclass does -----------------------------------------------------------------

    @property
    def remote_url(self) -> str:
        """The far side's URL for logs and the API: no credentials, no query (stream keys)."""
        return display_url(self.target)

    def serve(self, client: Client) -> None:
        """Run one connected session; return once :meth:`stopping`, raise when lost."""
        raise NotImplementedError

    def counters(self) -> Tuple[int, int]:
        """``(messages relayed, messages dropped)`` so far (subclasses count)."""
        return 0, 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the session thread (``rtmp-<direction>-<app>/<stream>``)."""
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"rtmp-{self.direction}-{self.app}/{self.stream}")
        self._thread.start()

    def stop(self) -> None:
        """Ask the session to end; does not wait.  A live session ends its far-side stream
        politely on its own thread; one still connecting (a far side that does not answer
        its handshake or ``connect``) has its socket shut, so it ends at once."""
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        client = self._client
        if self.state is RelayState.CONNECTING and client is not None:
            transport = client.transport
            if transport is not None:
                transport.shutdown()  # wakes the blocked handshake or connect

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait for the thread to end; True if it has."""
        thread = self._thread
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(timeout)
        return not thread.is_alive()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop

    @property
    def client(self) -> Optional[Client]:
        """The current session's client (None between sessions); for tests and tools."""
        return self._client

    @property
    def ended(self) -> bool:
        """Stopped and its thread has ended (or never started)."""
        return self._stop and self.join(0)

    def wait(self, timeout: Optional[float]) -> bool:
        """Sleep until :meth:`wake`/:meth:`stop` or ``timeout``; True if stopping."""
        with self._wake:
            if not self._stop:
                self._wake.wait(timeout)
            return self._stop

    def wake(self) -> None:
        """Wake :meth:`wait` (e.g. the session was lost)."""
        with self._wake:
            self._wake.notify_all()

    def info(self) -> RelayInfo:
        """A snapshot of the counters for the server API."""
        client = self._client
        sent, received = self._bytes_sent, self._bytes_received
        transport = client.transport if client is not None else None
        if transport is not None:
            sent += transport.bytes_sent
            received += transport.bytes_received
        messages, dropped = self.counters()
        live = self.state is RelayState.LIVE and self.live_since
        return RelayInfo(
            direction=self.direction, app=self.app, stream=self.stream, url=self.remote_url,
            state=self.state.value, bytes_sent=sent, bytes_received=received,
            messages=messages, dropped=dropped, reconnects=self.reconnects,
            last_error=self.last_error,
            uptime=round(time.monotonic() - self.live_since, 3) if live else 0.0,
        )

    # -- the session thread ---------------------------------------------------------------

    def _make_client(self) -> Client:
        config = self.client_config
        properties = dict(config.connect_properties)
        properties[RELAY_PROPERTY] = ",".join(self.chain)
        return Client(replace(config, connect_properties=properties))

    def _run(self) -> None:
        attempt = 0
        while not self._stop:
            self.state = RelayState.CONNECTING
            client = self._client = self._make_client()
            error: Optional[BaseException] = None
            try:
                client.connect(self.url)
                self.serve(client)
            except CommandError as exc:
                error = exc
                if exc.description.startswith(RELAY_LOOP):
                    self.state = RelayState.LOOPED
                    self.last_error = str(exc)
                    self.log.warning("%s to %s stopped: %s", self.direction, self.remote_url, exc)
                    self._forget(client)
                    return
            except (RTMPError, OSError, ValueError) as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - a bug ends this session, not the relay
                error = exc
                self.log.exception("%s to %s: session crashed", self.direction, self.remote_url)
            finally:
                if self.state is not RelayState.LOOPED:
                    self._forget(client)
            if self._stop:
                break
            attempt += 1
            self.reconnects += 1
            self.last_error = str(error) if error is not None else "session ended"
            delay = self.backoff.next()
            self.state = RelayState.RETRYING
            self.log.warning("%s to %s %s: %s; retry %d in %.1f s", self.direction,
                             self.remote_url, "lost" if self.live_since else "failed",
                             self.last_error, attempt, delay)
            self.live_since = 0.0
            if self.wait(delay):
                break
        self.state = RelayState.STOPPED
        self.live_since = 0.0

    def went_live(self) -> None:
        """A subclass calls this once its session carries media."""
        self.backoff.reset()
        self.live_since = time.monotonic()
        self.state = RelayState.LIVE
        self.log.info("%s to %s live", self.direction, self.remote_url)

    def _forget(self, client: Client) -> None:
        """Close the client (quietly: it may be lost) and keep its byte counts."""
        transport = client.transport
        try:
            client.close()
        except (RTMPError, OSError) as exc:
            self.log.debug("%s to %s: close: %s", self.direction, self.remote_url, exc)
        self._client = None
        if transport is not None:
            self._bytes_sent += transport.bytes_sent
            self._bytes_received += transport.bytes_received


def new_session_log(kind: str, app: str, stream: str) -> _Logger:
    """The logger of one relay (``rtmp.relay`` with ``[push:app/stream]``)."""
    return connection_logger(__name__, f"{kind}:{app}/{stream}")


_S = TypeVar("_S", bound=UpstreamSession)


class UpstreamGroup(Generic[_S]):
    """The relays of one direction of a server (:class:`rtmp.push.Pusher`,
    :class:`rtmp.pull.Puller`): listed for the server API, stopped with the server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: List[_S] = []

    def _add(self, started: Sequence[_S]) -> None:
        """Keep ``started`` (and forget the sessions that have ended)."""
        with self._lock:
            self._sessions = [s for s in self._sessions if not s.ended]
            self._sessions.extend(started)

    @property
    def sessions(self) -> List[_S]:
        with self._lock:
            return list(self._sessions)

    def infos(self) -> List[RelayInfo]:
        """The sessions' :class:`RelayInfo` (those of ended streams left out; a ``looped``
        one stays while its stream is live)."""
        return [s.info() for s in self.sessions
                if s.state is not RelayState.STOPPED and not s.ended]

    def close(self, timeout: float) -> None:
        """Stop every session and wait (at most ``timeout``) for their threads."""
        deadline = time.monotonic() + timeout
        sessions = self.sessions
        for session in sessions:
            session.stop()
        for session in sessions:
            if not session.join(max(0.0, deadline - time.monotonic())):
                session.log.warning("%s to %s did not end within the stop timeout",
                                    session.direction, session.remote_url)
        with self._lock:
            self._sessions = [s for s in self._sessions if s not in sessions]
