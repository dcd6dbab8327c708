"""Pull: play the streams this server does not have from an origin (issue 19, an edge;
nginx-rtmp ``pull``).

Theory of operation
-------------------
``ServerConfig(pull=[...])`` (``rtmp serve --pull URL``, repeatable) lists *rules*, as
push does (:func:`rtmp.push.parse_push_rule`): ``rtmp[s]://origin[:port]/app`` serves
the streams of every local application from the origin's application ``app``, and
``APP=rtmp[s]://...`` only those of the local application ``APP``; a stream part in the
URL is a name template (``{app}``, ``{name}``).  ``ServerConfig.on_pull(conn, app,
name)`` may choose the origin per stream instead: it returns the origin's URL (a
stream part names the stream there, else the local name is used) or None (no pull).

When a player asks for a live stream nobody publishes here, the server starts one
:class:`PullSession` for it (RTMP 7.2.2.1): a :class:`rtmp.relay.UpstreamSession` that
plays the stream on the origin (live only, ``start = -1``) and, from the first media
message on, publishes what it receives into the local live hub as a local publisher
would: the players, later ones too, share that one upstream session and get headers,
metadata and the GOP from the hub as usual.  The session closes ``pull_idle`` seconds
after the last local player left.

When the origin's stream ends (``NetStream.Play.UnpublishNotify`` or Stream EOF) or the
origin goes away, the local stream is unpublished: the local players get
``NetStream.Play.UnpublishNotify`` and stay, waiting.  A lost session is retried with
backoff; once media flows again the stream is published anew (the players get
``NetStream.Play.PublishNotify`` and resume at a keyframe, the headers first).

Loops: the pull's ``connect`` carries :data:`rtmp.relay.RELAY_PROPERTY` (the chain of
the player that started it, then this server).  A server that would start a pull for a
player whose chain names it, or is too long (:func:`rtmp.relay.loop_reason`), refuses
that play with ``NetStream.Play.Failed`` (description ``relay loop: ...``) instead of
pulling, and the pulling session stops for good (state ``looped``): it is not shared,
a player that comes later starts a pull of its own.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple

from .client import Client, ClientConfig
from .errors import RTMPError, StreamEnded, TimeoutError
from .message import DATA_TYPES, RELAYED_TYPES, MessageType
from .netstream import notify_publish, notify_unpublish, feed_live
from .push import PushRule, parse_push_rule, remote_name
from .relay import (
    Backoff,
    RelayState,
    UpstreamGroup,
    UpstreamSession,
    check_relay_url,
    display_url,
    loop_reason,
    new_session_log,
    relay_chain,
)
from .streams import LiveStream, StreamBusyError, StreamHub

__all__ = ["PullSession", "Puller", "PULL_CLIENT", "DEFAULT_PULL_IDLE", "parse_pull_rule"]

#: Seconds a pull stays open after the last local player left (``ServerConfig.pull_idle``).
DEFAULT_PULL_IDLE = 5.0
#: The client settings of pull sessions unless ``ServerConfig.pull_client`` says otherwise.
PULL_CLIENT = ClientConfig(connect_timeout=10.0, read_timeout=10.0, write_timeout=10.0,
                           close_timeout=3.0)
#: How often a pull session looks for local players (seconds).
_POLL = 0.25

#: What a pull takes from the origin (RTMP 7.1.4-7.1.6): media, data, aggregates.
_PULLED = RELAYED_TYPES | {MessageType.AGGREGATE}

#: [impl] The data message servers send after Play.Start (nginx-rtmp, FMS, ours): not relayed.
_SAMPLE_ACCESS = b"|RtmpSampleAccess"

#: ``on_pull(conn, app, name) -> Optional[url]``: the origin of one stream, or None.
OnPull = Callable[[Any, str, str], Optional[str]]


def parse_pull_rule(text: str) -> PushRule:
    """``"rtmp[s]://origin[:port]/app[/template]"`` or ``"APP=rtmp[s]://..."``: the
    origin and the local application it serves (None: all), as for push.

    ValueError with the reason (a malformed URL, an empty application name).
    """
    return parse_push_rule(text, "pull")


class PullSession(UpstreamSession):
    """The pull of one local stream ``app/stream`` from ``remote`` on the origin ``url``."""

    direction = "pull"

    def __init__(self, url: str, hub: StreamHub, app: str, stream: str, remote: str, *,
                 chain: Sequence[str], idle: float = DEFAULT_PULL_IDLE,
                 client_config: Optional[ClientConfig] = None,
                 backoff: Optional[Backoff] = None) -> None:
        super().__init__(url, app=app, stream=stream, chain=chain,
                         client_config=client_config, backoff=backoff,
                         log=new_session_log("pull", app, stream))
        self.hub = hub
        self.remote = remote
        self.idle = idle
        self.publishes = 0
        """How many times the pull published the stream locally (1 + the origin's returns)."""
        self._messages = 0
        self._live: Optional[LiveStream] = None
        self._idle_lock = threading.Lock()
        self._idle_since: Optional[float] = None

    @property
    def remote_url(self) -> str:
        return display_url(self.target, self.remote)

    def counters(self) -> Tuple[int, int]:
        return self._messages, 0  # the local players' queues drop, not the pull

    # -- local players ------------------------------------------------------------------

    def players(self) -> int:
        """The local players of the stream now."""
        live = self.hub.get(self.app, self.stream)
        return len(live.snapshot_players()) if live is not None else 0

    def claim(self) -> bool:
        """A new local player will share this pull: False if it is already stopping, or
        has stopped for good as a loop (the player then starts a pull of its own)."""
        with self._idle_lock:
            if self.state is RelayState.LOOPED:
                self.stop()  # its thread has ended: now the group forgets it
            if self.stopping:
                return False
            self._idle_since = None
            return True

    def idle_expired(self) -> bool:
        """Stop (and True) once no local player has been seen for ``idle`` seconds."""
        with self._idle_lock:
            if self.stopping:
                return True
            if self.players():
                self._idle_since = None
                return False
            now = time.monotonic()
            if self._idle_since is None:
                self._idle_since = now
            if now - self._idle_since < max(self.idle, _POLL):  # a new player subscribes
                return False                                   # just after it starts us
            self.log.info("pull of %s: no player for %.1f s, closing", self.remote_url, self.idle)
            self.stop()
            return True

    def wait(self, timeout: Optional[float]) -> bool:
        """Wait out a retry's backoff, closing meanwhile if the players are gone."""
        deadline = time.monotonic() + (timeout or 0.0)
        for _ in range(100_000):  # bounded: a step is at least _POLL unless stopping
            if self.idle_expired():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if super().wait(min(_POLL, remaining)):
                return True
        return self.stopping

    # -- the session --------------------------------------------------------------------

    def serve(self, client: Client) -> None:
        """RTMP 7.2.2.1: play ``remote`` live and publish what comes into the local hub."""
        client.play(self.remote, start=-1)
        next_check = 0.0
        try:
            while True:
                now = time.monotonic()
                if now >= next_check:  # the players, a few times a second (not per message)
                    if self.idle_expired():
                        return
                    next_check = now + _POLL
                try:
                    message = client.read_message(_POLL)
                except TimeoutError:
                    continue
                except StreamEnded as end:  # the origin's publisher left: players wait
                    self.log.info("pull of %s: the origin ended the stream (%s)",
                                  self.remote_url, end.reason)
                    self._unpublish_local()
                    self.state, self.live_since = RelayState.CONNECTING, 0.0
                    continue
                if message.type not in _PULLED or not message.data:
                    continue  # statuses and calls; nginx-rtmp's empty audio (wait_video)
                if message.type in DATA_TYPES and _SAMPLE_ACCESS in message.data[:24]:
                    continue  # the origin's answer to our play, not the stream's data
                live = self._live
                if live is None:
                    if message.type in DATA_TYPES and b"onMetaData" not in message.data[:16]:
                        continue  # before the stream starts (media or metadata)
                    live = self._publish_local()
                    if live is None:
                        return
                if feed_live(live, message, self.log):
                    self._messages += 1
        finally:
            self._unpublish_local()

    def _publish_local(self) -> Optional[LiveStream]:
        """The first media: the stream is live here (waiting players get PublishNotify);
        None (and the pull stops) if a local publisher has it."""
        try:
            live = self.hub.publish(self.app, self.stream, self, on_start=notify_publish)
        except StreamBusyError as exc:
            current = self.hub.get(self.app, self.stream)
            if current is not None and not isinstance(current.publisher, PullSession):
                # A local publisher took the name first: it wins, the pull ends.
                self.log.info("pull of %s stopped: %s/%s is published here", self.remote_url,
                              self.app, self.stream)
                self.stop()
                return None
            # The previous pull of the stream is still ending: retried after the backoff.
            raise RTMPError(f"cannot publish the pulled stream here: {exc}") from exc
        self._live = live
        self.publishes += 1
        self.went_live()
        return live

    def _unpublish_local(self) -> None:
        """The origin's stream ended or was lost: UnpublishNotify to the local players."""
        live, self._live = self._live, None
        if live is not None:
            self.hub.unpublish(live, self, on_stop=notify_unpublish)


class Puller(UpstreamGroup[PullSession]):
    """The pull side of a server: the rules (or ``on_pull``), and the pulls running now."""

    def __init__(self, rules: Sequence[PushRule], hub: StreamHub, server_id: str, *,
                 idle: float = DEFAULT_PULL_IDLE, reconnect: float = 3.0,
                 client_config: Optional[ClientConfig] = None,
                 on_pull: Optional[OnPull] = None) -> None:
        super().__init__()
        self.rules = list(rules)
        self.hub = hub
        self.server_id = server_id
        self.idle = idle
        self.reconnect = reconnect
        self.client_config = client_config or PULL_CLIENT
        self.on_pull = on_pull
        self._start_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether any stream may be pulled (rules or ``on_pull``)."""
        return bool(self.rules) or self.on_pull is not None

    def origin_for(self, connection: Any, app: str, name: str) -> Optional[Tuple[str, str]]:
        """``(origin URL, the stream's name there)`` for ``app/name``, or None (no pull).

        ``on_pull`` decides alone when set (its exceptions propagate); a URL it returns
        that is malformed is a ValueError."""
        if self.on_pull is not None:
            chosen = self.on_pull(connection, app, name)
            if not chosen:
                return None
            stream = check_relay_url(chosen, "pull").stream
            return chosen, stream or name
        for rule in self.rules:
            if rule.covers(app):
                return rule.url, remote_name(rule.template, app, name)
        return None

    def _running(self, app: str, name: str) -> Optional[PullSession]:
        for session in self.sessions:
            if session.app == app and session.stream == name and session.claim():
                return session
        return None

    def want(self, connection: Any, params: Mapping[str, Any], app: str,
             name: str) -> Optional[str]:
        """A local player waits for ``app/name`` (its ``connect`` properties ``params``):
        start its pull, or share the running one.  Returns why the play is refused (a
        relay loop, ``on_pull`` raised or named a malformed URL), or None."""
        if not self.enabled:
            return None
        loop = loop_reason(params, self.server_id)  # a relay this pull would feed
        if self._running(app, name) is not None:
            return loop
        try:
            origin = self.origin_for(connection, app, name)
        except Exception as exc:  # noqa: BLE001 - the application's callback
            return f"on_pull: {exc or type(exc).__name__}"
        if origin is None:
            return None
        if loop is not None:
            return loop
        url, remote = origin
        with self._start_lock:  # two first players at once start one pull
            if self._running(app, name) is not None:
                return None
            session = PullSession(url, self.hub, app, name, remote,
                                  chain=[*relay_chain(params), self.server_id],
                                  idle=self.idle, client_config=self.client_config,
                                  backoff=Backoff(maximum=max(0.5, self.reconnect)))
            self._add([session])
            session.log.info("pulling %s/%s from %s", app, name, session.remote_url)
            session.start()
        return None
