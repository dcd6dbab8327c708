"""Push: republish every live stream to other RTMP servers (issue 19, nginx-rtmp ``push``).

Theory of operation
-------------------
``ServerConfig(push=[...])`` (``rtmp serve --push URL``, repeatable) lists *rules*:
``rtmp[s]://host[:port]/app`` pushes the streams of every local application, and
``APP=rtmp[s]://...`` only those of the local application ``APP``.  A stream published
as ``app/name`` goes to each target as ``target-app/name``; a target URL with a stream
part uses it as a *name template* instead (``rtmp://host/app/{app}-{name}``: ``{app}``
and ``{name}`` are replaced).  Per stream, ``on_publish`` may return a :class:`Push` to
choose the targets or the template for that publish.

Each target is a :class:`PushTarget`: a :class:`rtmp.relay.UpstreamSession` (a client
session on its own thread, reconnected with backoff) that, once ``publish`` is
answered, attaches a :class:`rtmp.streams.LivePlayer` to the local stream as a
*relay* (not listed as a player).  The player gets what a late joiner gets (metadata,
the sequence headers, then the current GOP, RTMP 7.2.2.1 / FLV E.4.3.1) and then every
message, through its own bounded queue: a slow or dead target drops whole frames and
never slows the publisher or the local players.  When the target is lost, the next
session attaches again: it resumes at a keyframe with the headers sent again.  When the
local publisher leaves, each target's queue is drained (a bounded wait), then the
client closes with ``FCUnpublish`` and ``deleteStream`` (RTMP 7.2.2.3): the end of the
stream reaches the far side.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from .client import Client, ClientConfig
from .errors import RTMPError
from .relay import (
    Backoff,
    ClientSink,
    RelayInfo,
    RelayState,
    UpstreamSession,
    check_relay_url,
    display_url,
    new_session_log,
)
from .streams import DEFAULT_MAX_QUEUE_BYTES, LivePlayer, LiveStream

__all__ = ["Push", "PushRule", "PushTarget", "Pusher", "PUSH_CLIENT", "parse_push_rule",
           "remote_name"]

#: Seconds a target may take to send what is queued when its local stream ends.
DRAIN_TIMEOUT = 5.0
#: The default name template: the local stream name.
DEFAULT_TEMPLATE = "{name}"
#: The client settings of push sessions unless ``ServerConfig.push_client`` says otherwise:
#: a dead target is given up on within 10 s, and the end of a stream is confirmed within 3 s.
PUSH_CLIENT = ClientConfig(connect_timeout=10.0, read_timeout=10.0, write_timeout=10.0,
                           close_timeout=3.0)


@dataclass(frozen=True)
class Push:
    """What ``on_publish`` may return to choose where one stream is pushed.

    ``targets``: the URLs to push this stream to, instead of the configured rules that
    cover its application (None: those rules; ``[]``: push nowhere).  ``name``: the
    name template for the far side (``{app}`` and ``{name}`` are replaced), instead of
    each target's own (None: keep them).
    """

    targets: Optional[Sequence[str]] = None
    name: Optional[str] = None

    def __post_init__(self) -> None:
        if isinstance(self.targets, str):
            raise ValueError("Push(targets=...) takes a list of URLs, not one string")
        for url in self.targets or ():
            check_relay_url(url, "push")
        if self.name is not None:
            _check_template(self.name)


@dataclass(frozen=True)
class PushRule:
    """One ``push`` entry: the target URL and the local application it covers (None: all)."""

    url: str
    app: Optional[str] = None

    @property
    def template(self) -> str:
        """The far-side name template: the URL's stream part, else ``{name}``."""
        stream = check_relay_url(self.url, "push").stream
        return stream or DEFAULT_TEMPLATE

    def covers(self, app: str) -> bool:
        return self.app is None or self.app == app


def _check_template(template: str) -> None:
    if not isinstance(template, str) or not template.strip():
        raise ValueError(f"push name template {template!r} is empty")
    if any(ch.isspace() for ch in template):
        raise ValueError(f"push name template {template!r} contains white space")


def parse_push_rule(text: str) -> PushRule:
    """``"rtmp[s]://host[:port]/app[/template]"`` or ``"APP=rtmp[s]://..."`` -> PushRule.

    ValueError with the reason (a malformed URL, an empty application name).
    """
    if not isinstance(text, str):
        raise ValueError(f"push entry {text!r} is not a string")
    app: Optional[str] = None
    url = text.strip()
    head, sep, rest = url.partition("=")
    if sep and "://" not in head:
        app, url = head.strip(), rest.strip()
        if not app or "/" in app:
            raise ValueError(f"push entry {text!r}: bad application name {app!r} before '='")
    check_relay_url(url, "push")
    return PushRule(url=url, app=app)


def remote_name(template: str, app: str, name: str) -> str:
    """The far-side stream name: ``template`` with ``{app}`` and ``{name}`` replaced."""
    return template.replace("{app}", app).replace("{name}", name)


class PushTarget(UpstreamSession):
    """One push target of one local stream: publish it there, again after each loss."""

    direction = "push"

    def __init__(self, url: str, live: LiveStream, remote: str, *, chain: Sequence[str],
                 max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
                 client_config: Optional[ClientConfig] = None,
                 backoff: Optional[Backoff] = None) -> None:
        super().__init__(url, app=live.app, stream=live.name, chain=chain,
                         client_config=client_config, backoff=backoff,
                         log=new_session_log("push", live.app, live.name))
        self.live = live
        self.remote = remote
        self.max_queue_bytes = max_queue_bytes
        self._messages = 0
        self._dropped = 0
        self._player: Optional[LivePlayer] = None
        self._sink: Optional[ClientSink] = None
        self._failure: Optional[BaseException] = None

    @property
    def remote_url(self) -> str:
        return display_url(self.target, self.remote)

    def counters(self) -> Tuple[int, int]:
        player, sink = self._player, self._sink
        messages, dropped = self._messages, self._dropped
        if player is not None and sink is not None:
            messages += sink.messages
            dropped += player.stats.dropped_messages
        return messages, dropped

    def _lost(self, exc: BaseException) -> None:
        self._failure = exc
        self.wake()

    def serve(self, client: Client) -> None:
        """RTMP 7.2.2.6: publish ``remote`` and relay the local stream until stopped or lost."""
        client.publish(self.remote)
        if self.stopping:
            return
        stream_id = client.stream_id
        assert stream_id is not None
        sink = ClientSink(client)
        self._failure = None
        player = LivePlayer(sink, stream_id, name=f"push-{self.live.app}/{self.live.name}",
                            max_queue_bytes=self.max_queue_bytes, log=self.log,
                            on_failure=self._lost)
        self._player, self._sink = player, sink
        # Headers, metadata and the current GOP first (or the next keyframe): attach.
        self.live.attach(player, relay=True)
        try:
            player.start()
            self.went_live()
            while not player.closed and not self.wait(1.0):
                pass
            if not player.closed:  # stopping: the local stream ended, or the server stops
                if not player.drain(DRAIN_TIMEOUT):
                    self.log.warning("push to %s: queue not sent within %.0f s at the end",
                                     self.remote_url, DRAIN_TIMEOUT)
            failure = self._failure
        finally:
            self.live.detach(player)
            player.close()
            self._messages += sink.messages
            self._dropped += player.stats.dropped_messages
            self._player = self._sink = None
        if failure is not None:
            if isinstance(failure, RTMPError):
                raise failure
            raise RTMPError(f"push session lost: {failure}") from failure


class Pusher:
    """The push side of a server: the rules, and the targets of the streams live now."""

    def __init__(self, rules: Sequence[PushRule], server_id: str, *,
                 max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES, reconnect: float = 3.0,
                 client_config: Optional[ClientConfig] = None) -> None:
        self.rules = list(rules)
        self.server_id = server_id
        self.max_queue_bytes = max_queue_bytes
        self.reconnect = reconnect
        self.client_config = client_config or PUSH_CLIENT
        self._lock = threading.Lock()
        self._targets: List[PushTarget] = []

    def targets_for(self, app: str, name: str, plan: Any = None) -> List[Tuple[str, str]]:
        """``(url, far-side name)`` for each place ``app/name`` goes (``plan``: what
        ``on_publish`` returned; only a :class:`Push` counts)."""
        chosen = plan if isinstance(plan, Push) else Push()
        if chosen.targets is not None:
            rules = [PushRule(url) for url in chosen.targets]
        else:
            rules = [rule for rule in self.rules if rule.covers(app)]
        return [(rule.url, remote_name(chosen.name or rule.template, app, name))
                for rule in rules]

    def start(self, live: LiveStream, via: Sequence[str], plan: Any = None) -> List[PushTarget]:
        """Start pushing ``live`` (published through the servers ``via``) to its targets."""
        chain = [*via, self.server_id]
        started = []
        for url, remote in self.targets_for(live.app, live.name, plan):
            target = PushTarget(url, live, remote, chain=chain,
                                max_queue_bytes=self.max_queue_bytes,
                                client_config=self.client_config,
                                backoff=Backoff(maximum=max(0.5, self.reconnect)))
            started.append(target)
        with self._lock:
            self._targets = [t for t in self._targets if not t.ended]
            self._targets.extend(started)
        for target in started:
            target.log.info("pushing %s/%s to %s", live.app, live.name, target.remote_url)
            target.start()
        return started

    @property
    def sessions(self) -> List[PushTarget]:
        with self._lock:
            return list(self._targets)

    def infos(self) -> List[RelayInfo]:
        """The targets' :class:`rtmp.relay.RelayInfo` (those of ended streams left out; a
        ``looped`` one stays while its stream is live)."""
        return [t.info() for t in self.sessions
                if t.state is not RelayState.STOPPED and not t.ended]

    def close(self, timeout: float) -> None:
        """Stop every target and wait (at most ``timeout``) for their threads."""
        deadline = time.monotonic() + timeout
        sessions = self.sessions
        for target in sessions:
            target.stop()
        for target in sessions:
            if not target.join(max(0.0, deadline - time.monotonic())):
                target.log.warning("push to %s did not end within the stop timeout",
                                   target.remote_url)
        with self._lock:
            self._targets = [t for t in self._targets if t not in sessions]
