"""FLV E.4 over RTMP 7.1.2-7.1.5: publish an FLV file, or record a played stream to FLV.

Two helpers for the few-lines-of-Python case, built on :class:`rtmp.client.Client`::

    rtmp.client.publish_flv("rtmp://localhost/live/key", "movie.flv")
    rtmp.client.play_to_flv("rtmp://localhost/live/key", "copy.flv", duration=10)

An FLV tag and an RTMP message carry the same thing (FLV E.4.1: type 8 audio, 9 video,
18 script data; the tag body is the message payload and the tag timestamp the message
timestamp), so publishing is reading tags and writing messages, and recording is the
reverse.  Script data becomes ``@setDataFrame`` + ``onMetaData`` on the way out, as
ffmpeg and OBS send it (RTMP 7.1.2 [impl]); servers strip that prefix when relaying.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterator, List, Optional, Union

from . import commands, flv
from .client import Client, ClientConfig
from .errors import ConnectionClosedError, TimeoutError
from .message import DATA_TYPES, MEDIA_TYPES, SET_DATA_FRAME_AMF0, Message, MessageType, StreamType

__all__ = ["TransferStats", "publish_flv", "play_to_flv"]

logger = logging.getLogger(__name__)

PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]
Progress = Callable[["TransferStats"], Any]

#: FLV E.4.1 tag types, which are also the RTMP message types (RTMP 7.1.2, 7.1.4, 7.1.5).
_TAG_TYPES = (MessageType.AUDIO, MessageType.VIDEO, MessageType.DATA_AMF0)
#: Status codes after which a played stream has ended (Appendix B; ffmpeg treats the
#: first two as end of stream).
_END_CODES = frozenset({
    commands.NETSTREAM_PLAY_STOP,
    commands.NETSTREAM_PLAY_UNPUBLISH_NOTIFY,
    commands.NETSTREAM_PLAY_COMPLETE,
})  # fmt: skip
#: Unpaced publishing writes this much media per system call.
_BATCH_BYTES = 256 * 1024
#: The gap put between the last tag of one loop and the first of the next.
_LOOP_GAP_MS = 40


@dataclass
class TransferStats:
    """What a transfer moved: message counts, payload bytes and the media timestamp span."""

    messages: int = 0
    audio: int = 0
    video: int = 0
    data: int = 0
    bytes: int = 0
    first_timestamp: Optional[int] = None
    last_timestamp: Optional[int] = None
    elapsed: float = 0.0
    """Wall-clock seconds."""

    @property
    def duration_ms(self) -> int:
        """Milliseconds between the first and the last timestamp."""
        if self.first_timestamp is None or self.last_timestamp is None:
            return 0
        return self.last_timestamp - self.first_timestamp

    def count(self, message: Message) -> None:
        self.messages += 1
        self.bytes += len(message.data)
        if message.type == MessageType.AUDIO:
            self.audio += 1
        elif message.type == MessageType.VIDEO:
            self.video += 1
        else:
            self.data += 1
        if message.type in MEDIA_TYPES:
            # The span counts media only: metadata may carry timestamp 0 on a live
            # stream whose media timestamps started long ago.
            if self.first_timestamp is None:
                self.first_timestamp = message.timestamp
            self.last_timestamp = message.timestamp


def _messages_from_flv(path: PathOrFile, loop: int, stream_id: int) -> Iterator[Message]:
    """FLV E.4: the file's tags as RTMP messages, repeated ``loop`` times (0 = forever)
    with timestamps continuing across repetitions."""
    offset = 0
    iteration = 0
    while loop <= 0 or iteration < loop:
        iteration += 1
        last = None
        with flv.Reader(path) as reader:
            for tag in reader:
                if tag.type not in _TAG_TYPES:
                    logger.debug("skipping FLV tag of type %d", tag.type)
                    continue
                data = bytes(tag.data)
                if tag.type == MessageType.DATA_AMF0 and not data.startswith(SET_DATA_FRAME_AMF0):
                    data = SET_DATA_FRAME_AMF0 + data  # RTMP 7.1.2 [impl]: @setDataFrame onMetaData
                timestamp = tag.timestamp + offset
                last = timestamp if last is None else max(last, timestamp)
                yield Message(type=tag.type, data=data, timestamp=timestamp,
                              message_stream_id=stream_id)
        if last is None:
            return  # an empty file: nothing to loop
        offset = last + _LOOP_GAP_MS


def publish_flv(
    url: str,
    path: PathOrFile,
    realtime: bool = True,
    loop: int = 1,
    config: Optional[ClientConfig] = None,
    progress: Optional[Progress] = None,
    stream_type: Union[StreamType, str] = StreamType.LIVE,
) -> TransferStats:
    """Publish the FLV file at ``path`` to ``url`` (``rtmp://host/app/stream``).

    ``realtime=True`` paces messages by their timestamps (as ``ffmpeg -re``); False
    sends as fast as the connection takes them.  ``loop`` plays the file that many
    times (0 = until interrupted).  ``progress(stats)`` is called after each message.
    Returns the :class:`TransferStats`.
    """
    stats = TransferStats()
    started = time.monotonic()
    with Client(config) as client:
        client.connect(url)
        client.publish(stream_type=stream_type)
        stream_id = client.stream_id
        assert stream_id is not None
        base: Optional[int] = None
        clock = 0.0
        batch: List[Message] = []
        batch_bytes = 0
        for message in _messages_from_flv(path, loop, stream_id):
            if realtime:
                if base is None:  # the first message sets the clock: media time 0 = now
                    base, clock = message.timestamp, time.monotonic()
                due = clock + (message.timestamp - base) / 1000.0
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                client.write_message(message)
            else:
                # As fast as possible: one write per ~256 KiB instead of one per message.
                batch.append(message)
                batch_bytes += len(message.data)
                if batch_bytes >= _BATCH_BYTES:
                    client.write_messages(batch)
                    batch, batch_bytes = [], 0
            stats.count(message)
            if progress is not None:
                stats.elapsed = time.monotonic() - started
                progress(stats)
        if batch:
            client.write_messages(batch)
    stats.elapsed = time.monotonic() - started
    logger.info("published %d messages (%d bytes, %d ms of media) in %.2f s",
                stats.messages, stats.bytes, stats.duration_ms, stats.elapsed)
    return stats


def play_to_flv(
    url: str,
    path: PathOrFile,
    duration: Optional[float] = None,
    config: Optional[ClientConfig] = None,
    progress: Optional[Progress] = None,
) -> TransferStats:
    """Play ``url`` and write what arrives into the FLV file at ``path``.

    Stops after ``duration`` seconds of media (timestamps), when the server ends the
    stream (``NetStream.Play.Stop``/``UnpublishNotify``, Stream EOF, closing the
    connection) or when no message arrives for ``read_timeout`` after media started.
    Raises :class:`rtmp.TimeoutError` if nothing arrives at all.
    """
    stats = TransferStats()
    started = time.monotonic()
    limit_ms = None if duration is None else int(duration * 1000)
    with Client(config) as client, flv.Writer(path) as writer:
        client.connect(url)
        client.play()
        while True:
            try:
                message = client.read_message()
            except ConnectionClosedError:
                logger.info("server closed the connection; recording ends")
                break
            except TimeoutError:
                if stats.messages:
                    logger.info("no message for %.1f s; recording ends", client.config.read_timeout)
                    break
                raise
            if message.type in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
                command = commands.decode_command(message)
                if command.code in _END_CODES:
                    logger.info("%s: recording ends", command.code)
                    break
                continue
            if message.type in DATA_TYPES:
                values = commands.strip_set_data_frame(commands.decode_data(message))
                if not values or not isinstance(values[0], str) or values[0].startswith("|"):
                    continue  # |RtmpSampleAccess and other player hints are not file data
                # The writer drops a leading @setDataFrame itself (RTMP 7.1.2 [impl]).
            elif message.type not in MEDIA_TYPES:
                continue
            writer.write(message)
            stats.count(message)
            if progress is not None:
                stats.elapsed = time.monotonic() - started
                progress(stats)
            if limit_ms is not None and stats.duration_ms >= limit_ms:
                break
            if client.stream_eof:
                break
    stats.elapsed = time.monotonic() - started
    logger.info("recorded %d messages (%d bytes, %d ms of media) in %.2f s",
                stats.messages, stats.bytes, stats.duration_ms, stats.elapsed)
    return stats
