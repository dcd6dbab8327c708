"""RTMP 7.1.7 / 7.2.2.1: the end of a play and the client's read buffer, sans-IO.

Theory of operation
-------------------
A played stream ends with one or more signals that travel together: User Control
Stream EOF (RTMP 7.1.7 event 1), ``onStatus`` ``NetStream.Play.Stop``,
``.Complete`` or ``.UnpublishNotify`` (RTMP 7.2.2.1), ``onPlayStatus`` ``Play.Complete``
([impl: nginx-rtmp, FMS]).  :class:`PlayEnds` groups them into one :class:`EndOfPlay`;
a new end starts only after the stream went on (media, Stream Begin, Play.Start/Reset,
PublishNotify).  :class:`ReadBuffer` keeps, in order and bounded, the messages the
application has not read yet with those ends in their place among them.

:class:`rtmp.Client` feeds both from its reads; the clock is the caller's (``now``).
"""

from __future__ import annotations

import collections
import logging
from typing import Deque, Dict, List, Optional, Tuple, Union

from . import commands
from .commands import StatusEvent
from .errors import LimitExceededError, ProtocolError, StreamEnded
from .message import COMMAND_TYPES, MEDIA_TYPES, Message, MessageType

__all__ = [
    "END_OF_PLAY_CODES",
    "END_SIGNAL_GRACE",
    "EndOfPlay",
    "PlayEnds",
    "ReadBuffer",
    "is_end_status",
    "play_status_end",
]

_Logger = Union[logging.Logger, logging.LoggerAdapter]  # type: ignore[type-arg]

#: RTMP 7.2.2.1: the onStatus codes that end a play, and how a person would say it.
END_OF_PLAY_CODES: Dict[str, str] = {
    commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY: "the publisher stopped",
    commands.NETSTREAM_PLAY_STOP: "the server stopped the stream",
    commands.NETSTREAM_PLAY_COMPLETE: "the recording is complete",
}
#: RTMP 7.2.2.1 / [impl: nginx-rtmp]: the codes that (re)start a play, closing an end.
RESTART_CODES = frozenset({
    commands.NETSTREAM_PLAY_START,
    commands.NETSTREAM_PLAY_RESET,
    commands.NETSTREAM_PLAY_PUBLISH_NOTIFY,
})  # fmt: skip
#: Seconds an end of stream waits for the signals that travel with it (nginx-rtmp sends
#: Stream EOF, onPlayStatus and Play.Stop back to back) before StreamEnded is raised.
END_SIGNAL_GRACE = 0.05
STREAM_EOF_REASON = "end of stream (User Control Stream EOF)"
#: AMF0 2.4: the string "onPlayStatus" that starts an onPlayStatus data message.
ON_PLAY_STATUS = b"\x02\x00\x0c" + commands.ON_PLAY_STATUS.encode()


class EndOfPlay:
    """The place of a play's end among the buffered messages (see ``read_message``):
    the signals that ended it, in arrival order; ``received`` is the caller's clock."""

    __slots__ = ("signals", "received")

    def __init__(self, reason: str, status: Optional[StatusEvent], received: float) -> None:
        self.signals: List[Tuple[str, Optional[StatusEvent]]] = [(reason, status)]
        self.received = received

    def error(self) -> StreamEnded:
        """The first signal's reason, and the first ending onStatus among the signals."""
        status = next((event for _, event in self.signals if event is not None), None)
        return StreamEnded(self.signals[0][0], status)


def play_status_end(message: Message) -> Optional[str]:
    """[impl: nginx-rtmp, FMS] the reason when ``message`` is ``onPlayStatus {code:
    NetStream.Play.Complete}`` (a data message), which ends a recorded play as the
    onStatus of that code does (RTMP 7.2.2.1); else None."""
    if not message.data.startswith(ON_PLAY_STATUS):
        return None
    try:
        values = commands.decode_data(message)
    except ProtocolError:
        return None
    info = values[1] if len(values) > 1 and isinstance(values[1], dict) else {}
    code = info.get("code")
    if code != commands.NETSTREAM_PLAY_COMPLETE:
        return None
    return f"{END_OF_PLAY_CODES[code]} (onPlayStatus {code})"


def is_end_status(message: Message) -> bool:
    """An onStatus / onPlayStatus message that ends a play (RTMP 7.2.2.1)."""
    if message.type in COMMAND_TYPES:
        try:
            command = commands.decode_command(message)
        except ProtocolError:
            return False
        return command.name == commands.ON_STATUS and command.code in END_OF_PLAY_CODES
    return message.type == MessageType.DATA_AMF0 and message.data.startswith(ON_PLAY_STATUS)


class PlayEnds:
    """RTMP 7.1.7 / 7.2.2.1: the ends of the play in progress, one per group of signals."""

    def __init__(self, log: _Logger) -> None:
        self.log = log
        self.playing = False
        self._open: Optional[EndOfPlay] = None
        self._new: Optional[EndOfPlay] = None

    def start(self) -> None:
        """A play begins: Stream EOF and the end statuses count from here."""
        self.forget()
        self.playing = True

    def forget(self) -> None:
        """No stream is played any more: forget its ends (those buffered stay)."""
        self.playing = False
        self._open = self._new = None

    def resume(self) -> None:
        """The stream goes on (media, Stream Begin, a restart status): the next signal
        is a new end."""
        self._open = None

    def signal(self, reason: str, status: Optional[StatusEvent], now: float) -> None:
        """A signal that the played stream ended.

        Signals that arrive together (Stream EOF and Play.Stop from nginx-rtmp,
        UnpublishNotify and Stream EOF from ffmpeg-style servers) are one end.
        """
        if not self.playing:
            return
        if self._open is not None:
            self._open.signals.append((reason, status))
            self.log.debug("end of play (again): %s", reason)
            return
        self.log.info("end of play: %s", reason)
        self._open = self._new = EndOfPlay(reason, status, now)

    def take_new(self) -> Optional[EndOfPlay]:
        """The end that began with the last message read, once (it goes after it)."""
        end, self._new = self._new, None
        return end


Item = Union[Message, EndOfPlay]


class ReadBuffer:
    """The messages kept for ``read_message``, in order, with the ends of play among
    them; bounded in count and bytes (:class:`rtmp.LimitExceededError`)."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._items: Deque[Item] = collections.deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0

    def keep(self, message: Message) -> None:
        """Buffer a message (bounded)."""
        if len(self._items) >= self.max_messages:
            raise LimitExceededError(
                "client.max_buffered_messages", len(self._items) + 1, self.max_messages,
                "messages arrived faster than read_message() consumed them",
            )
        if self._bytes + len(message.data) > self.max_bytes:
            raise LimitExceededError(
                "client.max_buffered_bytes", self._bytes + len(message.data),
                self.max_bytes, "messages arrived faster than read_message() consumed them",
            )  # fmt: skip
        self._items.append(message)
        self._bytes += len(message.data)

    def keep_end(self, end: EndOfPlay) -> None:
        self._items.append(end)

    def head(self) -> Item:
        return self._items[0]

    def drop_head(self) -> None:
        item = self._items.popleft()
        if isinstance(item, Message):
            self._bytes -= len(item.data)

    def take(self) -> Message:
        """The oldest item, a message."""
        message = self._items.popleft()
        assert isinstance(message, Message)
        self._bytes -= len(message.data)
        return message

    @property
    def has_follower(self) -> bool:
        """Something is buffered behind the head."""
        return len(self._items) > 1

    def take_end_follower(self) -> Optional[Message]:
        """The message behind the head when it is an end status (:func:`is_end_status`),
        removed; else None."""
        follower = self._items[1]
        if not isinstance(follower, Message) or not is_end_status(follower):
            return None
        del self._items[1]
        self._bytes -= len(follower.data)
        return follower

    def flush_media(self, stream_id: int) -> int:
        """Drop buffered audio/video of ``stream_id`` (or stream 0) and ends of play (they
        are from before a seek point); how many were dropped."""
        keep: Deque[Item] = collections.deque()
        dropped = 0
        for item in self._items:
            if isinstance(item, EndOfPlay):
                dropped += 1  # a recording's end before the seek point is no end now
            elif item.type in MEDIA_TYPES and item.message_stream_id in (stream_id, 0):
                dropped += 1
                self._bytes -= len(item.data)
            else:
                keep.append(item)
        self._items = keep
        return dropped
