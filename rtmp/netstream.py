"""RTMP 7.2.2: the server's NetStream commands, and the media a publisher sends.

Every handler is a short function ``handler(conn, cmd)`` over a
:class:`ConnectionContext`, the narrow view of one server connection it needs (send,
status, the message streams, the stream hub, recordings, config, log); :data:`HANDLERS`
maps the command names to them.  ``play``, ``play2``, ``deleteStream``,
``closeStream``, ``receiveAudio``, ``receiveVideo``, ``publish``, ``seek``, ``pause``
and the [impl] ``getStreamLength``; :func:`on_published` routes a publisher's media and
data (RTMP 7.1.2, 7.1.4-7.1.6) to the live hub and the recorder, with the
``@setDataFrame`` rewrite.  No socket I/O here: :mod:`rtmp.server` reads and dispatches.

What a message stream does is one state object (:class:`Idle`, :class:`Publishing`,
:class:`PlayingLive`, :class:`PlayingRecording`) with ``stop``, ``pause``, ``seek`` and
``receive``: :func:`stop_netstream` swaps in a fresh :class:`Idle` and stops the old one.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Protocol, Tuple, Union

from . import commands, user_control
from .auth import stage0_description
from .commands import Command
from .errors import ProtocolError, RTMPError
from .logs import ConnectionLoggerAdapter
from .message import DATA_TYPES as _DATA_TYPES
from .message import RELAYED_TYPES as _RELAYED_TYPES
from .message import SET_DATA_FRAME_AMF0 as _SET_DATA_FRAME_AMF0
from .message import Message, MessageType, StreamType, split_aggregate
from .requests import (
    DeleteStream,
    EnhancedCaps,
    GetStreamLength,
    Pause,
    Play,
    Play2,
    Publish,
    ReceiveAudio,
    ReceiveVideo,
    Seek,
)
from .streams import FrameKind, LivePlayer, LiveStream, StreamBusyError, StreamHub
from .transport import Transport

if TYPE_CHECKING:
    from .server import ServerConfig
    from .server_connection import ConnectionState, ServerConnection
    from .shared_object_store import SharedObjectStore

__all__ = ["ConnectionContext", "ServerServices", "NetStream", "StreamState", "Idle",
           "Publishing", "PlayingLive", "PlayingRecording", "HANDLERS",
           "MAX_STREAMS_PER_CONNECTION", "on_published", "stop_netstream"]

#: Message streams one connection may create (RTMP 7.2.1.3).
MAX_STREAMS_PER_CONNECTION = 64
#: (A global: on Python 3.11 an Enum class attribute costs ~0.15 us, per message here.)
_AGGREGATE = MessageType.AGGREGATE


class _MediaSwitches(Protocol):
    """Whatever keeps the receiveAudio / receiveVideo flags (a NetStream, a player)."""

    receive_audio: bool
    receive_video: bool


def _set_receive(target: _MediaSwitches, audio: bool, flag: bool) -> None:
    """RTMP 7.2.2.4 / 7.2.2.5: set ``target``'s receive_audio (``audio``) or receive_video."""
    if audio:
        target.receive_audio = flag
    else:
        target.receive_video = flag


class Idle:
    """RTMP 7.2.2: a message stream that neither publishes nor plays."""

    publishing = False
    playing = False

    def stop(self, conn: "ConnectionContext", ns: "NetStream", notify: bool) -> None:
        """Nothing to stop."""

    def pause(self, paused: bool, ms: Optional[int], statuses: List[Message]) -> bool:
        """RTMP 7.2.2.8: False: nothing plays here."""
        return False

    def seek(self, ms: int, notify: Callable[[int], List[Message]]) -> bool:
        """RTMP 7.2.2.7: False: only a recording can seek."""
        return False

    def receive(self, audio: bool, flag: bool) -> None:
        """RTMP 7.2.2.4 / 7.2.2.5: nothing plays; the stream remembers the flag."""


class Publishing(Idle):
    """RTMP 7.2.2.6: the stream publishes ``live`` (and records with ``recorder``)."""

    publishing = True

    def __init__(self, live: LiveStream, recorder: Any) -> None:
        self.live = live
        self.recorder = recorder
        self.pushes: List[Any] = []  # rtmp.push.PushTarget: this stream's push targets

    def stop(self, conn: "ConnectionContext", ns: "NetStream", notify: bool) -> None:
        """Unpublish: end the pushes (their queues drain, then FCUnpublish/deleteStream
        there), UnpublishNotify to the players, Record.Stop and Unpublish.Success."""
        pushes, self.pushes = self.pushes, []
        for target in pushes:
            target.stop()  # does not wait: the target's own thread ends its session
        conn.server.hub.unpublish(self.live, ns, on_stop=notify_unpublish)
        recorder, self.recorder = self.recorder, None
        replies = []
        if recorder is not None:
            recorder.close()
            if recorder.announce:
                replies.append(conn.status(ns, commands.NETSTREAM_RECORD_STOP,
                                           f"{ns.name} is no longer recorded.", details=ns.name))
        replies.append(conn.status(ns, commands.NETSTREAM_UNPUBLISH_SUCCESS,
                                   f"{ns.name} is now unpublished.", details=ns.name))
        conn.log.info("unpublished %s/%s", conn.app, ns.name)
        if notify:
            conn.try_send(*replies)


class PlayingLive(Idle):
    """RTMP 7.2.2.1: the stream plays a live stream through ``player``'s queue."""

    playing = True

    def __init__(self, player: LivePlayer) -> None:
        self.player = player
        self.live: Optional[LiveStream] = None  # set once subscribed

    def stop(self, conn: "ConnectionContext", ns: "NetStream", notify: bool) -> None:
        """Unsubscribe and close the player (its writer thread ends)."""
        if self.live is not None:
            conn.server.hub.unsubscribe(self.live, self.player)
        self.player.close()

    def pause(self, paused: bool, ms: Optional[int], statuses: List[Message]) -> bool:
        """RTMP 7.2.2.8: the player drops media while paused; statuses go first."""
        self.player.pause(paused, statuses)
        return True

    def receive(self, audio: bool, flag: bool) -> None:
        _set_receive(self.player, audio, flag)


class PlayingRecording(Idle):
    """RTMP 7.2.2.1: the stream plays a recorded FLV with ``vod`` (a VodPlayer)."""

    playing = True

    def __init__(self, vod: Any) -> None:
        self.vod = vod

    def stop(self, conn: "ConnectionContext", ns: "NetStream", notify: bool) -> None:
        self.vod.stop()

    def pause(self, paused: bool, ms: Optional[int], statuses: List[Message]) -> bool:
        """RTMP 7.2.2.8: written by the VOD player under its lock, so Unpause.Notify
        precedes the resumed media."""
        self.vod.pause(paused, ms, notify=lambda _position: statuses)
        return True

    def seek(self, ms: int, notify: Callable[[int], List[Message]]) -> bool:
        """RTMP 7.2.2.7: to the keyframe at or before ``ms``; the player writes the
        statuses under its lock, before any media of the new position."""
        self.vod.seek(ms, notify=notify)
        return True

    def receive(self, audio: bool, flag: bool) -> None:
        _set_receive(self.vod, audio, flag)


#: One of the four states of a message stream (RTMP 7.2.2).
StreamState = Union[Idle, Publishing, PlayingLive, PlayingRecording]


@dataclass(eq=False)
class NetStream:
    """RTMP 7.2.2: what one message stream of a connection is doing (its ``state``)."""

    message_stream_id: int
    name: str = ""
    query: str = ""
    publish_type: StreamType = StreamType.LIVE
    receive_audio: bool = True
    receive_video: bool = True
    buffer_ms: int = 0
    state: StreamState = field(default_factory=Idle)

    @property
    def live(self) -> Optional[LiveStream]:
        """The live stream published or played here, if any."""
        state = self.state
        return state.live if isinstance(state, (Publishing, PlayingLive)) else None

    @property
    def player(self) -> Optional[LivePlayer]:
        """The live player, when playing live."""
        return self.state.player if isinstance(self.state, PlayingLive) else None

    @property
    def vod(self) -> Any:
        """The VOD player, when playing a recording."""
        return self.state.vod if isinstance(self.state, PlayingRecording) else None


class StreamLimit(Exception):
    """A NetStream command on a new stream id past MAX_STREAMS_PER_CONNECTION."""


class ServerServices(Protocol):
    """What the command handlers use of the :class:`rtmp.server.Server`."""

    @property
    def hub(self) -> StreamHub:
        """The live streams (:class:`rtmp.streams.StreamHub`)."""

    def recording(self, app: str, name: str) -> Optional["os.PathLike[str]"]:
        """The recorded FLV for ``app/name``, if recording is on and it exists."""

    def open_recorder(self, conn: "ConnectionContext", name: str,
                      stream_type: StreamType) -> Any:
        """RTMP 7.2.2.6: the recorder of this publish (:func:`rtmp.segmenter.open_recording`):
        one for ``record`` or ``append`` (OSError, ValueError), one for ``live`` under
        ``record_all``, else None."""

    def authenticate(self, conn: "ConnectionContext", app_text: str, query: str) -> None:
        """AUTH-ADOBE: set ``conn.user`` or raise :class:`rtmp.netconnection.Rejected`."""

    def relay_loop(self, conn: "ConnectionContext") -> Optional[str]:
        """Issue 19: why a publish on ``conn`` closes a relay loop (:mod:`rtmp.relay`), or None."""

    def start_push(self, conn: "ConnectionContext", live: LiveStream, plan: Any = None) -> List[Any]:
        """Issue 19: start the push targets of ``live`` (``plan``: ``on_publish``'s return)."""

    def start_pull(self, conn: "ConnectionContext", name: str) -> Optional[str]:
        """Issue 19: a player waits for ``conn.app/name``, which nobody publishes here:
        pull it from its origin, if one is configured (:mod:`rtmp.pull`).  Returns why
        the play is refused (a relay loop, ``on_pull`` raised), or None."""

    @property
    def shared_objects(self) -> "SharedObjectStore":
        """RTMP 7.3.2: the remote shared objects (:mod:`rtmp.shared_object_store`)."""


class ConnectionContext(Protocol):
    """The narrow view of one server connection the command handlers work through."""

    app: str
    tc_url: str
    user: Optional[str]
    connect_params: Dict[str, Any]
    object_encoding: int
    client_caps: EnhancedCaps

    @property
    def id(self) -> str: ...
    @property
    def config(self) -> "ServerConfig": ...
    @property
    def log(self) -> ConnectionLoggerAdapter: ...
    @property
    def server(self) -> ServerServices: ...
    @property
    def connection(self) -> "ServerConnection":
        """The object the application's callbacks receive."""
    @property
    def transport(self) -> Optional[Transport]: ...
    @property
    def streams(self) -> Dict[int, NetStream]:
        """Message stream id -> its :class:`NetStream` (the handlers add and remove)."""
    @property
    def accepted(self) -> bool:
        """``connect`` was accepted (RTMP 7.2.1.1)."""
    @property
    def over_limit(self) -> str:
        """Why the server refuses this connection (max_connections), or ""."""

    def send(self, *messages: Message) -> None:
        """Write ``messages`` in one go."""
    def try_send(self, *messages: Message) -> None:
        """Write ``messages`` unless the connection is closed or the write fails."""
    def reply(self, cmd: Command, msg: Message) -> None:
        """Write the reply ``msg`` to ``cmd``."""
    def result(self, cmd: Command, *values: Any) -> None:
        """RTMP 7.2.1: ``_result`` to ``cmd`` (nothing when its transaction id is 0)."""
    def status(self, ns_or_msid: Union[NetStream, int], code: str, description: str,
               **extra: Any) -> Message:
        """RTMP 7.2.2: an ``onStatus`` on a stream, with this connection's client id."""
    def set_state(self, state: "ConnectionState") -> None: ...
    def update_state(self) -> None:
        """PUBLISHING / PLAYING / CONNECTED from what the message streams do."""
    def accept(self) -> None:
        """``connect`` accepted: the connection is CONNECTED."""
    def mark_published(self) -> None:
        """A publish started on this connection."""
    def first_warning(self, key: str) -> bool:
        """True the first time ``key`` is asked for on this connection (warn once)."""
    def unhandled(self, msg: Message) -> bool:
        """Give ``msg`` to ``on_message`` (or the inbox); False if the callback raised."""
    def end_after_reply(self) -> None:
        """End the session after a polite linger (the reply is read)."""
    def request_close(self) -> None:
        """End the session once the current message is handled."""
    def close(self) -> None: ...


Handler = Callable[[ConnectionContext, Command], None]


def _netstream(conn: ConnectionContext, cmd: Command, create: bool = True) -> Optional[NetStream]:
    msid = cmd.message_stream_id
    ns = conn.streams.get(msid)
    if ns is None and create:
        if msid == 0 or conn.config.strict:
            raise ProtocolError(
                f"{cmd.name} on message stream {msid}, which createStream did not return",
                "RTMP 7.2.2",
            )
        if len(conn.streams) >= MAX_STREAMS_PER_CONNECTION:
            # The same cap as createStream: every adopted id may cost a thread.
            raise StreamLimit(f"{cmd.name} on message stream {msid}: at most "
                               f"{MAX_STREAMS_PER_CONNECTION} streams per connection")
        # Deviation (librtmp, old encoders): a command on a stream id we never handed
        # out; adopt the id instead of failing the session.
        conn.log.warning("%s on unknown message stream %d: adopted", cmd.name, msid)
        ns = conn.streams[msid] = NetStream(msid)
    return ns


def publish(conn: ConnectionContext, cmd: Command) -> None:
    """RTMP 7.2.2.6: publish(name, type): StreamBegin + NetStream.Publish.Start."""
    ns = _netstream(conn, cmd)
    assert ns is not None
    req = Publish.from_command(cmd)
    name, query, stream_type = req.base_name, req.query, req.type
    if req.unknown_type is not None:
        if conn.config.strict:
            conn.send(conn.status(ns, commands.NETSTREAM_PUBLISH_BAD_NAME,
                                    f"unknown publishing type {req.unknown_type!r}"))
            return
        # Deviation (FMLE): unknown types are published live, as nginx-rtmp does.
        conn.log.warning("publish type %r unknown; publishing live", req.unknown_type)
    if type(ns.state) is not Idle:
        stop_netstream(conn, ns, notify=False)
    if not name:
        conn.send(conn.status(ns, commands.NETSTREAM_PUBLISH_BAD_NAME, "empty stream name"))
        return
    if conn.config.require_auth and conn.user is None:
        # AUTH-ADOBE: this connect was not challenged (it looked like a player's).  The
        # stage-0 text tells a client that knows the exchange to reconnect with it.
        conn.log.info("publish of %r refused: not authenticated", name)
        conn.send(conn.status(ns, commands.NETSTREAM_PUBLISH_BAD_NAME,
                                stage0_description() + "publishing needs authentication",
                                details=name))
        return
    loop = conn.server.relay_loop(conn)
    if loop is not None:  # issue 19: a relay loop is stopped here, never amplified
        conn.log.warning("publish of %r refused: %s", name, loop)
        conn.send(conn.status(ns, commands.NETSTREAM_PUBLISH_BAD_NAME, loop, details=name))
        return
    callback = conn.config.on_publish
    plan: Any = None
    if callback is not None:
        try:
            plan = callback(conn.connection, name, stream_type)
        except Exception as exc:
            conn.log.exception("on_publish raised; publish of %r rejected", name)
            conn.send(conn.status(ns, commands.NETSTREAM_PUBLISH_BAD_NAME,
                                    str(exc) or type(exc).__name__, details=name))
            return
    try:
        recorder = conn.server.open_recorder(conn, name, stream_type)
    except (OSError, ValueError) as exc:  # record/append only: record_all logs and goes on
        conn.log.warning("cannot record %r: %s", name, exc)
        conn.send(conn.status(ns, commands.NETSTREAM_RECORD_FAILED,
                                f"cannot record {name}: {exc}", details=name))
        return
    try:
        live = conn.server.hub.publish(conn.app, name, ns, on_start=notify_publish)
    except StreamBusyError as exc:
        if recorder is not None:
            recorder.on_done = None  # not a recording: on_record_done is not told
            recorder.close()
        conn.log.info("publish %r refused: %s", name, exc)
        conn.send(conn.status(ns, commands.NETSTREAM_PUBLISH_BAD_NAME,
                                f"Stream {name} is already being published", details=name))
        return
    ns.name, ns.query, ns.publish_type = name, query, stream_type
    ns.state = state = Publishing(live, recorder)
    state.pushes = conn.server.start_push(conn, live, plan)
    conn.mark_published()
    conn.update_state()
    replies = [
        user_control.stream_begin(ns.message_stream_id),  # RTMP 7.3.1
        conn.status(ns, commands.NETSTREAM_PUBLISH_START,
                     f"{name} is now published.", details=name),
    ]
    if recorder is not None and recorder.announce:
        replies.append(conn.status(ns, commands.NETSTREAM_RECORD_START,
                                    f"{name} is now being recorded.", details=name))
    conn.send(*replies)
    conn.log.info("publishing %s/%s (%s)", conn.app, name, stream_type.value)


def notify_publish(player: LivePlayer) -> None:
    """A publisher arrived on a stream a player waits for (nginx-rtmp: PublishNotify)."""
    msid = player.message_stream_id
    player.send(user_control.stream_begin(msid))
    player.send(commands.on_status(commands.NETSTREAM_PLAY_PUBLISH_NOTIFY,
                                   "Stream is now published.", msid))


def notify_unpublish(player: LivePlayer) -> None:
    """The publisher left: UnpublishNotify (and Stream EOF) to every player."""
    msid = player.message_stream_id
    player.send(commands.on_status(commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY,
                                   "Stream is now unpublished.", msid))
    player.send(user_control.stream_eof(msid))  # RTMP 7.1.7


def play(conn: ConnectionContext, cmd: Command) -> None:
    """RTMP 7.2.2.1: play(name, start, duration, reset): live, recorded, or wait for live."""
    _play(conn, cmd, Play.from_command(cmd))


def play2(conn: ConnectionContext, cmd: Command) -> None:
    """RTMP 7.2.2.2: play2(params): switch this stream to ``params.streamName``."""
    req = Play2.from_command(cmd)
    name = req.stream_name
    if name is None:
        ns = _netstream(conn, cmd)
        assert ns is not None
        conn.send(conn.status(ns, commands.NETSTREAM_PLAY_FAILED,
                                "play2 without streamName"))
        return
    if req.transition == "stop":
        ns = _netstream(conn, cmd, create=False)
        if ns is not None:
            stop_netstream(conn, ns, notify=True)
        return
    _play(conn, cmd, Play(name, req.start, req.duration, True))


def _play(conn: ConnectionContext, cmd: Command, req: Play) -> None:
    ns = _netstream(conn, cmd)
    assert ns is not None
    # RTMP 7.2.2.1: base_name drops an "flv:" prefix (it names the default file type).
    name, query = req.base_name, req.query
    start, duration, reset = req.start, req.duration, bool(req.reset)
    if type(ns.state) is not Idle:
        stop_netstream(conn, ns, notify=False)
    if not name:
        conn.send(conn.status(ns, commands.NETSTREAM_PLAY_STREAM_NOT_FOUND,
                                "empty stream name"))
        return
    callback = conn.config.on_play
    if callback is not None:
        try:
            callback(conn.connection, name)
        except Exception as exc:
            conn.log.exception("on_play raised; play of %r rejected", name)
            conn.send(conn.status(ns, commands.NETSTREAM_PLAY_FAILED,
                                    str(exc) or type(exc).__name__, details=name))
            return
    hub = conn.server.hub
    live_now = hub.is_live(conn.app, name)
    # RTMP 7.2.2.1: start -2 = live, else recorded, else wait for live; -1 = live
    # only; >= 0 = recorded from there.
    # Deviation (ffmpeg): start is sent as rtmp_live * 1000 (-2000, -1000, 0), and
    # Flash sends milliseconds; both are read as milliseconds, like nginx-rtmp does.
    live_only = start in (-1, -1000)
    # The recording is looked for only when it can be played (file system calls).
    recording = (conn.server.recording(conn.app, name)
                 if not live_only and (start >= 0 or not live_now) else None)
    if start >= 0 and recording is None and not live_now and conn.config.strict:
        conn.send(conn.status(ns, commands.NETSTREAM_PLAY_STREAM_NOT_FOUND,
                                f"No such stream: {name}", details=name))
        return
    ns.name, ns.query = name, query
    if recording is not None:  # looked for only when it is to be played (above)
        _play_vod(conn, ns, recording, max(0, int(start)), int(duration), reset)
    else:
        _play_live(conn, ns, reset)
    conn.update_state()


def _play_start_messages(conn: ConnectionContext, ns: NetStream, reset: bool, recorded: bool,
                         waiting: bool = False) -> List[Message]:
    """RTMP 7.2.2.1: what answers a play; ``waiting``: nobody publishes the live
    stream yet, which Play.Start's description says ([impl]; PublishNotify follows
    when a publisher comes, as nginx-rtmp does)."""
    msid = ns.message_stream_id
    stream_begin, sample_access = _play_constants(msid)
    out: List[Message] = []
    if recorded:
        out.append(user_control.stream_is_recorded(msid))  # RTMP 7.2.2.1
    out.append(stream_begin)  # RTMP 7.2.2.1
    if reset:
        out.append(conn.status(ns, commands.NETSTREAM_PLAY_RESET,
                                f"Playing and resetting {ns.name}.", details=ns.name))
    started = f"Started playing {ns.name}"
    started += f"; {commands.WAITING_FOR_PUBLISHER}." if waiting else "."
    out.append(conn.status(ns, commands.NETSTREAM_PLAY_START, started, details=ns.name))
    out.append(sample_access)
    return out


@functools.lru_cache(maxsize=MAX_STREAMS_PER_CONNECTION)
def _play_constants(msid: int) -> Tuple[Message, Message]:
    """Stream Begin and ``|RtmpSampleAccess`` of a play on ``msid``: the same for every
    session, so made once (messages are immutable)."""
    return (user_control.stream_begin(msid),  # RTMP 7.2.2.1
            # [impl] nginx-rtmp and FMS: allow the Flash player to read the media's samples.
            commands.encode_data("|RtmpSampleAccess", True, True, message_stream_id=msid))


def _play_live(conn: ConnectionContext, ns: NetStream, reset: bool) -> None:
    """RTMP 7.2.2.1: subscribe, with the play statuses first in the player's queue.

    The statuses go through the player's writer, queued under the stream's lock
    before any cached or live media: once the client has Play.Start, every
    message published after it reaches the client, after the statuses.  A stream
    nobody publishes here is pulled from its origin first, if one is configured.
    """
    waiting = not conn.server.hub.is_live(conn.app, ns.name)
    refused = conn.server.start_pull(conn, ns.name) if waiting else None
    if refused is not None:  # issue 19: a pull loop, or on_pull refused
        conn.log.warning("play of %r refused: %s", ns.name, refused)
        conn.send(conn.status(ns, commands.NETSTREAM_PLAY_FAILED, refused, details=ns.name))
        return
    player = LivePlayer(
        conn.transport,  # type: ignore[arg-type]
        ns.message_stream_id,
        name=f"{conn.id}-{ns.message_stream_id}",
        max_queue_bytes=conn.config.max_queue_bytes,
        max_queue_delay=conn.config.max_queue_delay,
        log=conn.log,
        on_failure=functools.partial(_player_failed, conn),
    )
    player.receive_audio, player.receive_video = ns.receive_audio, ns.receive_video
    state = ns.state = PlayingLive(player)
    conn.update_state()  # PLAYING before the client can see Play.Start
    live = state.live = conn.server.hub.subscribe(
        conn.app, ns.name, player,
        first=_play_start_messages(conn, ns, reset, recorded=False, waiting=waiting))
    # The statuses (and a cached GOP) leave from this thread in one write; the
    # writer thread starts with the first message queued after them.
    player.start(lazy=True)
    conn.log.info("playing live %s/%s%s", conn.app, ns.name,
                  "" if live.live else " (waiting for a publisher)")


def _player_failed(conn: ConnectionContext, exc: BaseException) -> None:
    """A live player's writer failed (peer gone or stalled past write_timeout)."""
    conn.log.info("closing: live player could not send: %s", exc)
    conn.close()


def _play_vod(conn: ConnectionContext, ns: NetStream, path: "os.PathLike[str]", start_ms: int,
              duration_ms: int, reset: bool) -> None:
    from .vod import VodPlayer

    try:
        vod = VodPlayer(conn.transport, path, ns.message_stream_id,  # type: ignore[arg-type]
                        start_ms=start_ms, duration_ms=duration_ms, logger=conn.log)
    except (OSError, ValueError, RTMPError) as exc:
        conn.log.warning("cannot play recording %s: %s", path, exc)
        conn.send(conn.status(ns, commands.NETSTREAM_PLAY_FAILED,
                                f"cannot play {ns.name}: {exc}", details=ns.name))
        return
    vod.receive_audio, vod.receive_video = ns.receive_audio, ns.receive_video
    ns.state = PlayingRecording(vod)
    conn.update_state()  # PLAYING before the client can see Play.Start
    conn.send(*_play_start_messages(conn, ns, reset, recorded=True))
    vod.start()
    conn.log.info("playing recorded %s/%s from %d ms (%d ms long)", conn.app, ns.name,
                  start_ms, vod.duration_ms)


def delete_stream(conn: ConnectionContext, cmd: Command) -> None:
    """RTMP 7.2.2.3: deleteStream(id): stop what the stream does and free the id; no reply."""
    msid = DeleteStream.from_command(cmd).stream_id
    ns = conn.streams.pop(msid, None)
    if ns is not None:
        stop_netstream(conn, ns, notify=True)
    conn.update_state()


def close_stream(conn: ConnectionContext, cmd: Command) -> None:
    """RTMP 7.2.2 [spec gap]: closeStream: stop playing/publishing, keep the stream id."""
    ns = conn.streams.get(cmd.message_stream_id)
    if ns is not None:
        stop_netstream(conn, ns, notify=True)
    conn.update_state()


def _receive(conn: ConnectionContext, cmd: Command, audio: bool) -> None:
    """RTMP 7.2.2.4 / 7.2.2.5: receiveAudio / receiveVideo(flag)."""
    ns = _netstream(conn, cmd)
    assert ns is not None
    flag = (ReceiveAudio if audio else ReceiveVideo).from_command(cmd).flag
    _set_receive(ns, audio, flag)
    ns.state.receive(audio, flag)  # the live or the recorded stream's player
    if flag:  # RTMP 7.2.2.4: true is answered with Seek.Notify and Play.Start
        _stream_send(conn, ns,
            conn.status(ns, commands.NETSTREAM_SEEK_NOTIFY, "Receiving media again."),
            conn.status(ns, commands.NETSTREAM_PLAY_START, f"Started playing {ns.name}."),
        )


def receive_audio(conn: ConnectionContext, cmd: Command) -> None:
    _receive(conn, cmd, audio=True)


def receive_video(conn: ConnectionContext, cmd: Command) -> None:
    _receive(conn, cmd, audio=False)


def _stream_send(conn: ConnectionContext, ns: NetStream, *messages: Message) -> None:
    """Send on a stream in order with its media (through a live player's queue)."""
    player = ns.player
    if player is not None:
        for message in messages:
            player.send(message)
    else:
        conn.send(*messages)


def seek(conn: ConnectionContext, cmd: Command) -> None:
    """RTMP 7.2.2.7: seek(ms): recorded streams jump to the keyframe at or before ms."""
    ns = _netstream(conn, cmd)
    assert ns is not None
    ms = Seek.from_command(cmd).position

    def notify(position: int) -> List[Message]:
        return [
            user_control.stream_begin(ns.message_stream_id),
            conn.status(ns, commands.NETSTREAM_SEEK_NOTIFY,
                        f"Seeking {position} (stream ID {ns.message_stream_id}).",
                        details=ns.name),
            conn.status(ns, commands.NETSTREAM_PLAY_START,
                        f"Started playing {ns.name}.", details=ns.name),
        ]

    # The player drops what precedes Seek.Notify: the VOD player writes these
    # statuses under its lock, before any media of the new position.
    if ns.state.seek(ms, notify):
        return
    # RTMP 7.2.2.7: failure is an _error; a live stream has nowhere to seek to.
    conn.send(commands.error(
        cmd.transaction_id,
        commands.status_info(commands.NETSTREAM_SEEK_FAILED,
                             "seek is only possible on recorded streams"),
        message_stream_id=ns.message_stream_id,
    ))


def pause(conn: ConnectionContext, cmd: Command) -> None:
    """RTMP 7.2.2.8: pause(flag, ms): Pause.Notify / Unpause.Notify."""
    ns = _netstream(conn, cmd)
    assert ns is not None
    req = Pause.from_command(cmd)
    paused, ms = req.paused, req.position
    if paused:
        statuses = [conn.status(ns, commands.NETSTREAM_PAUSE_NOTIFY,
                                 f"Pausing {ns.name}.", details=ns.name)]
    else:
        statuses = [user_control.stream_begin(ns.message_stream_id),
                    conn.status(ns, commands.NETSTREAM_UNPAUSE_NOTIFY,
                                 f"Unpausing {ns.name}.", details=ns.name)]
    if not ns.state.pause(paused, ms, statuses):
        conn.send(commands.error(
            cmd.transaction_id,
            commands.status_info(commands.NETSTREAM_FAILED, "nothing is playing"),
            message_stream_id=ns.message_stream_id,
        ))


def get_stream_length(conn: ConnectionContext, cmd: Command) -> None:
    """[impl] getStreamLength(name): the recording's duration in seconds, 0 when live."""
    req = GetStreamLength.from_command(cmd)
    name = req.stream_name
    duration = 0.0
    path = conn.server.recording(conn.app, name)
    if path is not None and not conn.server.hub.is_live(conn.app, req.base_name):
        from .vod import FlvIndex

        try:
            duration = FlvIndex(path).duration_ms / 1000.0
        except (OSError, ValueError, RTMPError) as exc:
            conn.log.info("getStreamLength(%r): %s", name, exc)
    conn.result(cmd, None, duration)


def _publishing_stream(conn: ConnectionContext, msid: int) -> Optional[NetStream]:
    ns = conn.streams.get(msid)
    if ns is not None and ns.state.publishing:
        return ns
    if conn.config.strict:
        return None
    publishing = [s for s in conn.streams.values() if s.state.publishing]
    if len(publishing) == 1:
        # Deviation (old encoders): media on msid 0 (or another id) while exactly one
        # stream publishes belongs to that stream.
        return publishing[0]
    return None


def on_published(conn: ConnectionContext, msg: Message) -> None:
    """RTMP 7.1.2, 7.1.4-7.1.6: a publisher's audio, video, data or aggregate message to
    its live stream (and recorder); anything without a publishing stream is unhandled."""
    ns = _publishing_stream(conn, msg.message_stream_id)
    if ns is None:
        conn.unhandled(msg)
        return
    if msg.type == _AGGREGATE:
        for sub in split_aggregate(msg):  # RTMP 7.1.6
            if sub.type in _RELAYED_TYPES:
                _publish_one(conn, ns, sub)
            else:
                _refuse_sub_message(conn, sub)
        return
    _publish_one(conn, ns, msg)


def _refuse_sub_message(conn: ConnectionContext, sub: Message) -> None:
    """RTMP 7.1.6 / FLV E.4.1: an aggregate carries tags (audio, video, data) only.

    Anything else (a Set Chunk Size, a command) relayed to the players would break
    their decoders or act on their sessions: it is dropped, with a warning once per
    connection, or ends the session when ``strict``.
    """
    if conn.config.strict:
        raise ProtocolError(f"type {sub.type} sub-message in an aggregate", "RTMP 7.1.6")
    level = logging.WARNING if conn.first_warning("aggregate") else logging.DEBUG
    conn.log.log(level, "type %d sub-message of an aggregate dropped (RTMP 7.1.6: "
                 "only audio, video and data are relayed)", sub.type)


def _publish_one(conn: ConnectionContext, ns: NetStream, msg: Message) -> None:
    callback = conn.config.on_message
    if callback is not None:
        try:
            callback(conn.connection, msg)
        except Exception:
            conn.log.exception("on_message raised; type %d message not relayed", msg.type)
            return
    state = ns.state
    assert isinstance(state, Publishing)
    if state.live.publisher is not ns:
        # ERTMP Reconnect Request: the client's new connection took the stream over;
        # what the old one still sends would go out of order: dropped.
        return
    if state.recorder is not None:
        try:
            state.recorder.write(msg)
        except (OSError, ValueError) as exc:
            conn.log.error("recording of %s failed: %s", ns.name, exc)
            recorder, state.recorder = state.recorder, None
            recorder.close()
            if recorder.announce:  # record_all: an encoder would give up on the error
                conn.send(conn.status(ns, commands.NETSTREAM_RECORD_FAILED,
                                      f"recording failed: {exc}", details=ns.name))
    live = state.live
    if msg.type in _DATA_TYPES:
        _publish_data(conn.log, live, msg)
    else:
        live.publish_message(msg)


def feed_live(live: LiveStream, msg: Message, log: Any) -> bool:
    """RTMP 7.1.2, 7.1.4-7.1.6: give ``live`` one audio, video, data or aggregate message
    as its publisher would (what a pull from an origin receives, :mod:`rtmp.pull`);
    False for any other type (ignored)."""
    if msg.type == MessageType.AGGREGATE:
        for sub in split_aggregate(msg):  # RTMP 7.1.6: tags, never another aggregate
            if sub.type != MessageType.AGGREGATE:  # (nested ones: no recursion to exhaust)
                feed_live(live, sub, log)
            else:
                log.warning("aggregate inside an aggregate dropped (RTMP 7.1.6)")
        return True
    if msg.type in _DATA_TYPES:
        _publish_data(log, live, msg)
    elif msg.type in _RELAYED_TYPES:
        live.publish_message(msg)
    else:
        return False
    return True


def _publish_data(log: Any, live: LiveStream, msg: Message) -> None:
    """RTMP 7.1.2: ``@setDataFrame`` sets the metadata, ``@clearDataFrame`` clears it."""
    data = msg.data
    if msg.type == MessageType.DATA_AMF0 and data.startswith(_SET_DATA_FRAME_AMF0):
        # The rest of the payload already is "onMetaData", {...}: relay it as is.
        meta = msg.replace(data=data[len(_SET_DATA_FRAME_AMF0):])
        live.set_metadata(meta)
        return
    try:
        values = commands.decode_data(msg)
    except ProtocolError as exc:
        log.warning("undecodable data message dropped: %s", exc)
        return
    first = values[0] if values else None
    if first == commands.SET_DATA_FRAME:
        rewritten: Optional[Message] = None
        if len(values) > 1:
            rewritten = commands.encode_data(*values[1:], message_stream_id=msg.message_stream_id,
                                             timestamp=msg.timestamp)
        live.set_metadata(rewritten)
    elif first == commands.CLEAR_DATA_FRAME:
        live.set_metadata(None)
    elif first == commands.ON_METADATA:
        live.set_metadata(msg)  # some encoders send onMetaData directly
    else:
        live.broadcast(msg, FrameKind.DATA)


def stop_netstream(conn: ConnectionContext, ns: NetStream, notify: bool) -> None:
    """Stop publishing or playing on ``ns`` (idempotent): the stream is idle after."""
    state, ns.state = ns.state, Idle()
    state.stop(conn, ns, notify)


#: RTMP 7.2.2: the NetStream commands (and the [impl] getStreamLength) and their handlers.
HANDLERS: Dict[str, Handler] = {
    commands.GET_STREAM_LENGTH: get_stream_length,
    commands.PUBLISH: publish,
    commands.PLAY: play,
    commands.PLAY2: play2,
    commands.DELETE_STREAM: delete_stream,
    commands.CLOSE_STREAM: close_stream,
    commands.RECEIVE_AUDIO: receive_audio,
    commands.RECEIVE_VIDEO: receive_video,
    commands.SEEK: seek,
    commands.PAUSE: pause,
}
