"""RTMP 7.2.2.6 / FLV E.3: recording a published stream to an FLV file.

:class:`Recorder` writes a publisher's audio, video and metadata messages as FLV tags
(publishing type ``record`` or ``append``, RTMP 7.2.2.6), syncing the file to disk at
every video keyframe and at least once per second of media (on a thread of its own,
:class:`_Syncer`), so a crash leaves a file that players read up to the last complete
tag.  On close the metadata's duration is patched (:mod:`rtmp.flvmeta`).
"""

from __future__ import annotations

import logging
import os
import pathlib
import struct
import threading
from typing import Optional, Union

from . import flv
from .flvmeta import ON_METADATA_TAG, metadata_duration_offset, patch_metadata_duration
from .logs import AnyLogger
from .message import (
    CLEAR_DATA_FRAME,
    DATA_TYPES,
    MEDIA_TYPES,
    Message,
    MessageType,
    split_aggregate,
    strip_set_data_frame_bytes,
    timestamp_delta,
)
from .streams import config_keys

__all__ = ["SYNC_INTERVAL_MS", "Recorder", "script_payload"]

logger = logging.getLogger(__name__)
_module_logger = logger  # the default for classes whose ``logger=`` argument shadows the name

#: RTMP 7.1.2 [impl]: ``@clearDataFrame`` as the first AMF0 value (marker, U16 length, bytes).
_CLEAR_DATA_FRAME = b"\x02\x00\x0f" + CLEAR_DATA_FRAME.encode()

#: Sync the file to disk at least this often, in milliseconds of media.
SYNC_INTERVAL_MS = 1000


def script_payload(message: Message) -> Optional[bytes]:
    """RTMP 7.1.2 -> FLV E.4.4.1: the SCRIPTDATA body to store for a data message, or None.

    ``@setDataFrame`` is a server instruction, not part of the stream: it is stripped so the
    file holds ``onMetaData`` itself, as players expect (FLV E.5).  ``@clearDataFrame`` is
    not recorded.  An AMF3 data message (type 15) has a leading format byte 0 before its
    AMF0 values; it is dropped so the tag is a plain type-18 script tag.
    """
    data = message.data
    if message.type == MessageType.DATA_AMF3:
        data = data[1:] if data[:1] == b"\x00" else data
    if data.startswith(_CLEAR_DATA_FRAME):
        return None
    return strip_set_data_frame_bytes(data) or None


#: How far back :func:`_tail_max_timestamp` looks, in tags and in milliseconds.
_TAIL_TAGS = 512
_TAIL_MS = 10_000


def _tail_max_timestamp(path: pathlib.Path) -> int:
    """FLV E.3: the largest timestamp among the file's last tags, walking back pointers.

    Audio and video are interleaved, so the last tag may be a few ms older than the
    latest one; appending after the latest keeps every stream monotonic.  The walk
    stops after :data:`_TAIL_TAGS` tags, :data:`_TAIL_MS` of media, or a back pointer
    that does not lead to a tag header.
    """
    latest = -1
    with open(path, "rb") as file:
        end = file.seek(0, os.SEEK_END)
        for _ in range(_TAIL_TAGS):
            if end < flv.HEADER_SIZE + 4 + flv.TAG_OVERHEAD:
                break
            file.seek(end - 4)
            (size,) = struct.unpack(">I", file.read(4))  # FLV E.3: PreviousTagSize
            start = end - 4 - size
            if size < flv.TAG_HEADER_SIZE or start < flv.HEADER_SIZE + 4:
                break
            file.seek(start)
            header = file.read(flv.TAG_HEADER_SIZE)
            if header[0] & 0x1F not in flv.TAG_TYPES:
                break
            # FLV E.4.1: UI24 timestamp, then TimestampExtended holding the upper 8 bits.
            timestamp = int.from_bytes(header[4:7], "big") | (header[7] << 24)
            latest = max(latest, timestamp)
            if timestamp < latest - _TAIL_MS:
                break
            end = start
    return latest



class _Syncer:
    """FLV E.3: force a file's written bytes to disk on a thread of its own.

    ``fsync`` can take seconds on a slow or busy disk; on the publisher's thread it
    would stall the publisher and, through it, every player of the stream.  Requests
    made while a sync runs are merged into the next one.  ``fsync`` of a second
    descriptor of the same file syncs the file's data whoever wrote it (POSIX).
    """

    def __init__(self, path: pathlib.Path, log: AnyLogger) -> None:
        self.path = path
        self.log = log
        self.syncs = 0
        self._fd = os.open(path, os.O_RDONLY)
        self._cond = threading.Condition(threading.Lock())
        self._due = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"rtmp-rec-sync-{path.stem}")
        self._thread.start()

    def request(self) -> None:
        """Ask for an fsync soon (never blocks)."""
        with self._cond:
            self._due = True
            self._cond.notify()

    def close(self) -> None:
        """Stop the thread (after the sync in progress) and join it."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        os.close(self._fd)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return  # the closer syncs the last bytes itself
                self._due = False
            try:
                os.fsync(self._fd)
                self.syncs += 1
            except OSError as exc:
                self.log.warning("recording: fsync of %s failed: %s", self.path, exc)


class Recorder:
    """RTMP 7.2.2.6 / FLV E.3: write one published stream to an FLV file.

    ``append=False`` (publishing type ``record``) truncates the file and starts its
    timestamps at 0; ``append=True`` (type ``append``) keeps the existing tags and
    continues the timestamps right after the last one (:meth:`rtmp.flv.Writer.open_append`).
    Messages are written from the publisher's thread; :meth:`close` may come from any
    thread (``Server.stop``) and is idempotent.  After ``close``, ``write`` drops messages.

    At every video keyframe, and whenever a second of media has passed since the last
    sync, the buffered tags are written to the OS (a killed process loses at most about
    a second and leaves whole tags behind) and an ``fsync`` is requested from a
    background thread (:class:`_Syncer`), so that a slow disk never stalls the
    publisher; :meth:`close` syncs the rest itself.
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        append: bool = False,
        logger: Optional[AnyLogger] = None,
    ) -> None:
        self.path = pathlib.Path(path)
        self.log: AnyLogger = logger if logger is not None else _module_logger
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._closed = False
        self._first_media_ts: Optional[int] = None  # publisher time of the first media message
        self._base_ts = 0  # file time that the first media message maps to
        self._last_ts = 0  # file time of the latest tag written
        self._last_sync_ts: Optional[int] = None
        self.tags_written = 0
        self._keep_metadata = True  # whether the next onMetaData is written
        if append:
            # RTMP 7.2.2.6 append: keep the tags (a truncated last one is cut off) and add ours.
            self._writer = flv.Writer.open_append(self.path, continue_timestamps=False)
            # FLV E.5: one onMetaData per file; its duration is updated on close.
            self._keep_metadata = metadata_duration_offset(self.path) is None
            last = self._writer.last_timestamp
            if last >= 0:
                # The last tag is not always the latest: audio and video interleave.
                last = max(last, _tail_max_timestamp(self.path))
                # FLV E.4.1: the timeline goes on strictly after the file's latest tag.
                self._base_ts = last + 1
                self._last_ts = last
            self.log.info("recording: appending to %s after %d ms", self.path, last)
        else:
            # RTMP 7.2.2.6 record: a new file (an existing one is overwritten).
            self._writer = flv.Writer(self.path, has_audio=True, has_video=True)
            self.log.info("recording: writing %s", self.path)
        try:
            self._syncer = _Syncer(self.path, self.log)
        except OSError:
            self._writer.close()
            raise

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    @property
    def last_timestamp(self) -> int:
        """FLV E.4.1: the file timestamp of the latest tag written (ms)."""
        return self._last_ts

    @property
    def bytes_written(self) -> int:
        """FLV E.3: the bytes this recorder wrote (header and tags; not an appended-to
        file's earlier bytes)."""
        return self._writer.bytes_written

    def flush(self) -> None:
        """Hand the buffered tags to the OS now (no fsync; a killed process keeps them)."""
        with self._lock:
            if not self._closed:
                self._writer.flush()

    def _file_timestamp(self, message: Message) -> int:
        """FLV E.4.1: map a publisher timestamp to file time (first frame at ``_base_ts``).

        The origin is the first audio or video *frame*: metadata and codec configuration
        (sequence headers, ERTMP MultichannelConfig and Metadata) before it go at the start,
        whatever their timestamps (ffmpeg sends its sequence headers at 0 even when its
        frames start hours later, ``-output_ts_offset``).
        """
        if self._first_media_ts is None:
            if message.type not in MEDIA_TYPES or config_keys(message.type, message.data):
                return self._base_ts  # configuration before the first frame: at the start
            self._first_media_ts = message.timestamp
        delta = timestamp_delta(message.timestamp, self._first_media_ts)
        if delta < 0:
            # A frame older than the first one (audio/video interleaving): clamp to the start.
            self.log.debug("recording: timestamp %d before the first (%d); clamped",
                           message.timestamp, self._first_media_ts)
            delta = 0
        return self._base_ts + delta

    def write(self, message: Message) -> bool:
        """Record one message: audio (8), video (9), data (18/15) or an aggregate (22).

        Returns True when a tag was written; other message types are ignored (False), and
        so is everything after :meth:`close`.
        """
        if message.type == MessageType.AGGREGATE:
            written = False
            for sub in split_aggregate(message):  # RTMP 7.1.6
                written = self.write(sub) or written
            return written
        if message.type in MEDIA_TYPES:
            data: Optional[bytes] = message.data
            tag_type = int(message.type)
        elif message.type in DATA_TYPES:
            data = script_payload(message)
            tag_type = flv.TAG_SCRIPT  # FLV E.4.1: 18
            if data is not None and data.startswith(ON_METADATA_TAG):
                if not self._keep_metadata:
                    self.log.debug("recording: %s already has onMetaData; not repeated", self.path)
                    return False
                self._keep_metadata = False
        else:
            return False
        if not data:
            return False
        with self._lock:
            if self._closed:
                self.log.debug("recording: %s closed; dropping a type %d message", self.path,
                               message.type)
                return False
            timestamp = self._file_timestamp(message)
            tag = flv.Tag(tag_type, timestamp, data)
            self._writer.write(tag)
            self.tags_written += 1
            self._last_ts = max(self._last_ts, timestamp)
            if self._last_sync_ts is None:
                self._last_sync_ts = timestamp
            if (tag_type == MessageType.VIDEO and flv.is_keyframe(tag)) or (
                timestamp - self._last_sync_ts >= SYNC_INTERVAL_MS
            ):
                self._writer.flush()  # crash safety: whole tags reach the OS now ...
                self._syncer.request()  # ... and the disk soon, off this thread
                self._last_sync_ts = timestamp
        return True

    def close(self) -> None:
        """Flush, fsync and close the file; safe to call twice and from another thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._syncer.close()
                self._writer.flush(fsync=True)
            finally:
                self._writer.close()
            if self.tags_written:
                try:
                    patch_metadata_duration(self.path, self._last_ts)
                except (OSError, flv.FLVError) as exc:
                    self.log.warning("recording: cannot update the duration in %s: %s",
                                     self.path, exc)
        self.log.info("recording: closed %s (%d tags, last at %d ms)", self.path,
                      self.tags_written, self._last_ts)

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
