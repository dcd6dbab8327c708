"""RTMP 7.1-7.2: what a client does with each message that arrives, sans-IO.

:class:`ClientInbox` takes the messages a :class:`~rtmp.client_connection.ClientConnection`
reads and returns the replies to send; bytes and clock are the caller's:

* commands go to :class:`rtmp.calls.Calls`, which matches ``_result``/``_error`` to
  requests and ``onStatus`` to status waits, and answers ``onBWDone``/``onBWCheck``
  ([impl] as ffmpeg does);
* every ``onStatus`` (RTMP 7.2.2) becomes :attr:`ClientInbox.last_status` and goes to
  ``ClientConfig.on_status``; an error-level one (or an unrequested
  ``NetStream.Unpublish.Success``) for the stream we publish is kept as a refusal that
  the next write raises (:meth:`ClientInbox.take_refusal`);
* user control events (RTMP 7.1.7) are noted and consumed: Stream EOF ends the play,
  Stream Begin resumes it;
* media, data and commands nobody waited for are kept, in order and bounded, in
  :attr:`ClientInbox.buffer` (:class:`rtmp.playback.ReadBuffer`), with the ends of play
  (:class:`rtmp.playback.PlayEnds`) in their place among them.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, List, Optional, Protocol, Set, Union

from . import amf, commands, user_control
from .calls import Calls, Outgoing, Unhandled
from .commands import Command, StatusEvent
from .errors import ProtocolError
from .message import (
    COMMAND_TYPES,
    DATA_TYPES,
    MEDIA_TYPES,
    SHARED_OBJECT_TYPES,
    Message,
    MessageType,
    split_aggregate,
)
from .playback import (
    END_OF_PLAY_CODES,
    RESTART_CODES,
    STREAM_EOF_REASON,
    PlayEnds,
    ReadBuffer,
    play_status_end,
)

__all__ = ["ClientInbox", "InboxSettings"]

_Logger = Union[logging.Logger, logging.LoggerAdapter]  # type: ignore[type-arg]

#: RTMP 7.1.2 / 7.1.3: data and shared-object messages, handed to the application as they are.
_APPLICATION_DATA_TYPES = DATA_TYPES | SHARED_OBJECT_TYPES


class InboxSettings(Protocol):
    """What :class:`ClientInbox` reads of its settings (:class:`rtmp.client.ClientConfig`)."""

    strict: bool
    accept_media_on_stream_zero: bool
    split_aggregates: bool
    max_buffered_messages: int
    max_buffered_bytes: int
    on_status: Optional[Callable[[StatusEvent], None]]
    follow_reconnect_request: bool


class ClientInbox:
    """The messages that arrive at one client connection, dispatched (RTMP 7.1, 7.2).

    ``calls`` is the connection's :class:`rtmp.calls.Calls` (the requests it sent);
    :meth:`receive` takes one message and returns the replies to send.  The state of
    the stream in use lives here because what arrives is read against it:
    :attr:`stream_id`, :attr:`stream_eof`, :attr:`last_status`,
    :attr:`last_media_timestamp`, :attr:`refusal` and the ends of play.
    """

    def __init__(self, settings: InboxSettings, calls: Calls, log: _Logger) -> None:
        self.settings = settings
        self.calls = calls
        self.log = log
        #: What the application has not read yet (``read_message`` drains it).
        self.buffer = ReadBuffer(settings.max_buffered_messages, settings.max_buffered_bytes)
        #: The message stream id in use (RTMP 7.2.1.3), or None.
        self.stream_id: Optional[int] = None
        #: True once the server sent Stream EOF (RTMP 7.1.7 event 1) for our stream.
        self.stream_eof = False
        #: The last ``onStatus`` received (RTMP 7.2.2).
        self.last_status: Optional[StatusEvent] = None
        #: The timestamp of the last media message received (``pause`` resumes there).
        self.last_media_timestamp = 0
        #: The status that refused or ended our publishing, not yet raised by a write.
        self.refusal: Optional[StatusEvent] = None
        #: ERTMP Reconnect Request: the server's request, not yet followed
        #: (:mod:`rtmp.reconnect` takes it); only with ``follow_reconnect_request``.
        self.reconnect_request: Optional[StatusEvent] = None
        self._ends = PlayEnds(log)  # RTMP 7.1.7 / 7.2.2.1: the ends of our play
        self._unpublish_requested = False
        self._warned: Set[str] = set()

    # -- the stream, as the client's NetStream commands change it ------------------------

    def reset(self) -> None:
        """A new connection: nothing buffered, no stream, no status."""
        self.buffer.clear()
        self.stream_id = None
        self.stream_eof = False
        self.last_status = None
        self._ends.forget()
        self.refusal = None
        self.reconnect_request = None

    def use_stream(self, stream_id: int) -> None:
        """createStream gave ``stream_id`` (RTMP 7.2.1.3): ours from now on."""
        self.stream_id = stream_id
        self.stream_eof = False
        self._ends.forget()

    def leave_stream(self, forget: bool = False) -> None:
        """closeStream, or (``forget``) deleteStream: the stream's ends are forgotten."""
        if forget:
            self.stream_id = None
        self._ends.forget()

    def start_play(self) -> None:
        """play is sent: Stream EOF and the end statuses count from here (RTMP 7.2.2.1)."""
        self._ends.start()

    def start_publish(self) -> None:
        """publish is sent (RTMP 7.2.2.6): a later refusal or Unpublish.Success is news."""
        self._ends.forget()
        self.refusal = None
        self._unpublish_requested = False

    def note_unpublish(self) -> None:
        """FCUnpublish is sent: the Unpublish.Success it brings is no refusal."""
        self._unpublish_requested = True

    def take_refusal(self) -> Optional[StatusEvent]:
        """:attr:`refusal`, once (it is forgotten)."""
        event, self.refusal = self.refusal, None
        return event

    # -- what arrives ---------------------------------------------------------------------

    def receive(self, message: Message, now: float, *, publishing: bool) -> List[Message]:
        """Dispatch one message read at ``now`` (``publishing``: we publish on our
        stream); keep what the application should see; the replies to send.

        Raises :class:`rtmp.ProtocolError` for a broken message and
        :class:`rtmp.LimitExceededError` when the buffer is full.
        """
        replies: List[Message] = []
        kind = message.type
        if kind in MEDIA_TYPES or kind == MessageType.AGGREGATE:
            kept = self._media(message)
        elif kind in COMMAND_TYPES:
            kept = self._command(self._decode_command(message), message, now, publishing, replies)
        elif kind == MessageType.USER_CONTROL:
            self._user_control(message, now)
            kept = []
        else:
            if kind in _APPLICATION_DATA_TYPES:
                reason = play_status_end(message)
                if reason is not None and message.message_stream_id in (self.stream_id, 0):
                    self._ends.signal(reason, None, now)
            else:
                self.log.debug("message of unknown type %d passed to the application", kind)
            kept = [message]
        for app_message in kept:
            self.buffer.keep(app_message)  # bounded: LimitExceededError
        end = self._ends.take_new()
        if end is not None:  # after the message that ended the play, if it is kept
            self.buffer.keep_end(end)
        return replies

    def _warn_once(self, key: str, text: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.warning(text, *args)

    def _decode_command(self, message: Message) -> Command:
        """RTMP 7.1.1: decode a command, tolerating one that carries only its name."""
        try:
            return commands.decode_command(message)
        except ProtocolError:
            values = amf.decode_payload(message.data, message.type)
            if self.settings.strict or len(values) != 1 or not isinstance(values[0], str):
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
        if message.message_stream_id == 0 and self.stream_id:
            if not self.settings.accept_media_on_stream_zero:
                raise ProtocolError(
                    f"media message (type {int(message.type)}) on message stream 0, "
                    f"expected stream {self.stream_id}",
                    "RTMP 7.2.2",
                )
            # Deviation (ffmpeg listen mode): a player's media arrives on msid 0, not on
            # the stream it plays; harmless, so accept it (accept_media_on_stream_zero).
            self._warn_once("msid0", "server sends media on message stream 0 instead of %d; "
                            "accepting it (deviation)", self.stream_id)
        if message.type == MessageType.AGGREGATE and self.settings.split_aggregates:
            parts = split_aggregate(message)  # RTMP 7.1.6
            if parts:
                self.last_media_timestamp = parts[-1].timestamp
            return parts
        self.last_media_timestamp = message.timestamp
        return [message]

    def _user_control(self, message: Message, now: float) -> None:
        """RTMP 7.1.7: stream events are noted; none is an error."""
        event = user_control.decode(message.data)
        self.log.debug("user control %s stream=%s", event.name, event.stream_id)
        if event.stream_id != self.stream_id or self.stream_id is None:
            return
        if event.event == user_control.UserControlEvent.STREAM_EOF:
            self.stream_eof = True
            self._ends.signal(STREAM_EOF_REASON, None, now)
        elif event.event == user_control.UserControlEvent.STREAM_BEGIN:
            self._ends.resume()  # RTMP 7.1.7 event 0: the stream (re)starts

    def _status_event(self, command: Command, publishing: bool) -> None:
        """RTMP 7.2.2: note an onStatus, tell ``ClientConfig.on_status``, classify it."""
        event = StatusEvent.from_command(command)
        self.last_status = event
        callback = self.settings.on_status
        if callback is not None:
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - the application's bug must not break the read
                self.log.exception("ClientConfig.on_status raised for %s", event.code)
        if (event.code == commands.NETCONNECTION_CONNECT_RECONNECT_REQUEST
                and event.stream_id == 0 and self.settings.follow_reconnect_request):
            self.log.info("server asks us to reconnect%s: %s",
                          f" to {event.info.get('tcUrl')!r}" if "tcUrl" in event.info else "",
                          event.description)
            self.reconnect_request = event
            return
        ours = event.stream_id in (self.stream_id, 0) and self.stream_id is not None
        if not ours:
            return
        if self._ends.playing and event.code in RESTART_CODES:
            self._ends.resume()
        elif publishing and not self.calls.waits and (
            event.is_error or (event.code == commands.NETSTREAM_UNPUBLISH_SUCCESS
                               and not self._unpublish_requested)
        ):
            # The server refused or stopped our publishing mid-stream: the next write says so.
            self.log.warning("server ended our publishing: %s", event)
            self.refusal = event

    def _command(self, command: Command, message: Message, now: float, publishing: bool,
                 replies: List[Message]) -> List[Message]:
        """RTMP 7.2: account for a command (:class:`rtmp.calls.Calls`); what the
        application should see: unmatched statuses and commands."""
        if command.name == commands.ON_STATUS:
            self._status_event(command, publishing)
        keep: List[Message] = []
        for event in self.calls.receive(command):
            if isinstance(event, Outgoing):  # _checkbw after onBWDone, onBWCheck's _result
                replies.append(event.message)
            elif isinstance(event, Unhandled):
                keep.append(message)
            elif isinstance(event, StatusEvent):
                if self.reconnect_request is not None \
                        and event.code == commands.NETCONNECTION_CONNECT_RECONNECT_REQUEST:
                    continue  # followed (rtmp.reconnect), not handed to the application
                if event.code in END_OF_PLAY_CODES and event.stream_id in (self.stream_id, 0):
                    self._ends.signal(f"{END_OF_PLAY_CODES[event.code]} ({event.code})", event,
                                      now)
                keep.append(message)
        return keep
