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
from .commands import StatusEvent
from .errors import ConnectionClosedError, StreamEnded, TimeoutError
from .flvmeta import patch_metadata_numbers
from .message import DATA_TYPES, MEDIA_TYPES, SET_DATA_FRAME_AMF0, Message, MessageType, StreamType

__all__ = ["TransferStats", "publish_flv", "play_to_flv"]

logger = logging.getLogger(__name__)

PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]
Progress = Callable[["TransferStats"], Any]

#: FLV E.4.1 tag types, which are also the RTMP message types (RTMP 7.1.2, 7.1.4, 7.1.5).
_TAG_TYPES = (MessageType.AUDIO, MessageType.VIDEO, MessageType.DATA_AMF0)
#: Data messages a player gets that are not the stream's data (not written to the file).
_NOT_FILE_DATA = frozenset({"onPlayStatus"})
#: Seconds after Play.Start without media before a player says it waits for a publisher
#: (when the server did not say so itself).
WAITING_AFTER = 1.5
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
    end_reason: Optional[str] = None
    """Why a play ended (``play_to_flv``), in words; None when it did not end by itself."""

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
        if message.type in MEDIA_TYPES and not flv.is_sequence_header(message):
            # The span counts media frames only: metadata and sequence headers may carry
            # timestamp 0 on a live stream whose media started long ago (ffmpeg
            # -output_ts_offset: headers at 0, frames at 16,772,000 ms).
            if self.first_timestamp is None:
                self.first_timestamp = message.timestamp
            self.last_timestamp = message.timestamp

    @property
    def media_started(self) -> bool:
        """Whether an audio or video frame (not a sequence header) was counted."""
        return self.first_timestamp is not None


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
    Returns the :class:`TransferStats` once the server confirmed, by closing its side
    after ours, that it read the whole stream (:meth:`Client.close`); raises
    :class:`ConnectionClosedError` when it could not be confirmed.
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
    on_waiting: Optional[Callable[[str], Any]] = None,
) -> TransferStats:
    """Play ``url`` and write what arrives into the FLV file at ``path``.

    Stops after ``duration`` seconds of media (timestamps from the first audio/video
    frame, not the sequence headers), when the server ends the stream
    (:class:`rtmp.StreamEnded`: Stream EOF, ``NetStream.Play.Stop``/``UnpublishNotify``/
    ``Complete``), when it closes the connection, or when no message arrives for
    ``read_timeout`` after media started (:attr:`TransferStats.end_reason` says which).
    ``on_waiting(text)`` is called once when nobody publishes the stream yet: at once
    when the server says so in ``NetStream.Play.Start``, else when no media came
    ``WAITING_AFTER`` seconds after it.  Raises :class:`rtmp.TimeoutError` if no media
    arrives at all.  A file written at ``path`` gets its onMetaData ``duration`` and
    ``filesize`` rewritten at the end (FLV E.5), as a recorder does.
    """
    stats = TransferStats()
    started = time.monotonic()
    limit_ms = None if duration is None else int(duration * 1000)
    with Client(config) as client, flv.Writer(path) as writer:
        client.connect(url)
        client.play()
        read_timeout = client.config.read_timeout
        stream = f"{client.url.app}/{client.url.stream}" if client.url else url
        waiting = f"waiting for a publisher of {stream}"
        announced = _server_says_waiting(client.last_status)
        if announced and on_waiting is not None:
            on_waiting(waiting)
        quiet_since = time.monotonic()
        while True:
            timeout = read_timeout
            if not stats.media_started:  # read_timeout in all for the first frame
                quiet = time.monotonic() - quiet_since
                timeout = read_timeout - quiet
                if not announced:
                    # Servers that do not say: a quiet start looks like nobody publishing.
                    timeout = min(timeout, WAITING_AFTER - quiet)
                timeout = max(0.001, timeout)
            try:
                message = client.read_message(timeout=timeout)
            except StreamEnded as end:
                stats.end_reason = end.reason
                logger.info("%s: recording ends", end.reason)
                break
            except ConnectionClosedError:
                stats.end_reason = "the server closed the connection"
                logger.info("server closed the connection; recording ends")
                break
            except TimeoutError:
                if not stats.media_started and not announced and (
                    time.monotonic() - quiet_since < read_timeout
                ):
                    announced = True
                    if on_waiting is not None:
                        on_waiting(waiting)
                    continue
                if stats.media_started:
                    stats.end_reason = (f"no end-of-stream signal from the server; stopped after "
                                        f"{read_timeout:g} s without media")
                    logger.info("%s", stats.end_reason)
                    break
                if announced:
                    raise TimeoutError(f"{waiting}: nobody published within "
                                       f"{time.monotonic() - quiet_since:.1f} s") from None
                raise
            if message.type in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
                command = commands.decode_command(message)
                if command.code == commands.NETSTREAM_PLAY_PUBLISH_NOTIFY:
                    logger.info("%s: the publisher started", stream)
                continue  # the ends come as StreamEnded (rtmp.Client.read_message)
            if message.type in DATA_TYPES:
                values = commands.strip_set_data_frame(commands.decode_data(message))
                if not values or not isinstance(values[0], str) or values[0].startswith("|") \
                        or values[0] in _NOT_FILE_DATA:
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
                stats.end_reason = f"played the requested {duration:g} s"
                break
    _finish_metadata(path, stats)
    stats.elapsed = time.monotonic() - started
    logger.info("recorded %d messages (%d bytes, %d ms of media) in %.2f s",
                stats.messages, stats.bytes, stats.duration_ms, stats.elapsed)
    return stats


def _server_says_waiting(status: Optional[StatusEvent]) -> bool:
    """Our server's ``NetStream.Play.Start`` says when nobody publishes the stream yet."""
    return (status is not None and status.code == commands.NETSTREAM_PLAY_START
            and commands.WAITING_FOR_PUBLISHER in status.description.lower())


def _finish_metadata(path: PathOrFile, stats: TransferStats) -> None:
    """FLV E.5: put the played duration and the file size into the written onMetaData
    (as :class:`rtmp.vod.Recorder` does); skipped for what is not a regular file."""
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        return
    try:
        patched = patch_metadata_numbers(path, {"duration": stats.duration_ms / 1000.0,
                                                "filesize": float(os.path.getsize(path))})
    except (OSError, flv.FLVError) as exc:
        logger.warning("cannot update the onMetaData of %s: %s", path, exc)
        return
    if patched:
        logger.debug("onMetaData of %s: %s rewritten", path, ", ".join(patched))
