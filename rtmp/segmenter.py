"""RTMP 7.2.2.6 / FLV E.3: a recording in parts, each a whole FLV, cut at keyframes.

:class:`SegmentedRecorder` records one published stream through
:class:`rtmp.recorder.Recorder`, one file per *part*, and cuts a new part once the
current one holds ``max_ms`` of media (publisher time) or ``max_bytes`` of file, at the
next video keyframe (FLV E.4.3.1 frame type 1; in a stream without video, at the next
audio frame, FLV E.4.2).  Every part starts with its own FLV header, the stream's
latest ``onMetaData`` (FLV E.5) and every codec sequence header seen so far (AVC/HEVC
configuration, AAC AudioSpecificConfig, ERTMP SequenceStart per codec and track, ERTMP
audio MultichannelConfig and video Metadata), so each part plays on its own; its
timestamps start at 0.  No frame is dropped or repeated at a cut: the frames of the
parts add up to the frames published.

Each part keeps the recorder's crash safety (whole tags reach the OS at every keyframe
and every second, fsync on the recorder's thread).  At a cut the finished part's tags
are handed to the OS on the publisher's thread; its fsync, its ``duration`` patch and
then ``on_done(path)`` run on a thread of this recording (``rtmp-rec-done-<name>``),
one part after the other in order, so neither a slow disk nor a slow callback holds up
the publisher and its players.  :meth:`SegmentedRecorder.close` (unpublish) closes the
last part on the calling thread, as a single recording always was, and waits at most
:data:`DONE_JOIN_TIMEOUT` seconds for the callbacks.

:func:`open_recording` is the server's decision of what a publish records (publishing
type ``record``/``append``, or ``ServerConfig.record_all`` for ``live``).
"""

from __future__ import annotations

import itertools
import logging
import pathlib
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Collection, List, Optional, Union

from . import flv
from .flvmeta import ON_METADATA_TAG
from .message import DATA_TYPES, MEDIA_TYPES, Message, MessageType, StreamType, split_aggregate, timestamp_delta
from .record_path import PART_STAMP_FORMAT, list_parts, part_path, safe_record_path
from .recorder import Recorder, script_payload
from .streams import ConfigCache, FrameKind, GopAnchor, classify

if TYPE_CHECKING:
    from .netstream import ConnectionContext

__all__ = ["DONE_JOIN_TIMEOUT", "SegmentedRecorder", "open_recording", "records_app"]

logger = logging.getLogger(__name__)
_module_logger = logger  # the default for classes whose ``logger=`` argument shadows the name

_Logger = Union[logging.Logger, "logging.LoggerAdapter[Any]"]

#: How long :meth:`SegmentedRecorder.close` waits for the ``on_done`` callbacks (seconds).
DONE_JOIN_TIMEOUT = 5.0
OnDone = Callable[[pathlib.Path], Any]


def _is_clear_data_frame(message: Message) -> bool:
    """RTMP 7.1.2 [impl]: ``@clearDataFrame`` (script_payload gives None for it)."""
    return b"@clearDataFrame" in bytes(message.data[:20])


class SegmentedRecorder:
    """RTMP 7.2.2.6 / FLV E.3: record one published stream as one or more FLV parts.

    ``open_part()`` opens the next part's :class:`Recorder` (called at the first message,
    and at every cut); ``first`` is an already open first part (publishing types
    ``record``/``append``, whose file must exist once the publish is accepted).  With
    ``max_ms`` or ``max_bytes`` a part is cut at the first cut point (video keyframe;
    audio frame in a stream without video) at or after that much media time or file
    size, so a part exceeds the limit by at most one group of pictures.  ``on_done(path)``
    runs for each finished part on the recording's own thread (module docstring).
    ``announce`` says whether the publisher is told with ``NetStream.Record.*``
    statuses (False for ``record_all``, as nginx-rtmp's ``record_notify off``).

    :meth:`write` is called from the publisher's thread; :meth:`close` may come from
    any thread and is idempotent; after it, ``write`` drops messages.
    """

    def __init__(
        self,
        open_part: Callable[[], Recorder],
        *,
        first: Optional[Recorder] = None,
        max_ms: Optional[int] = None,
        max_bytes: Optional[int] = None,
        on_done: Optional[OnDone] = None,
        announce: bool = True,
        logger: Optional[_Logger] = None,
    ) -> None:
        if (max_ms is not None and max_ms <= 0) or (max_bytes is not None and max_bytes <= 0):
            raise ValueError("max_ms and max_bytes must be positive")
        self._open_part = open_part
        self.max_ms = max_ms
        self.max_bytes = max_bytes
        self.on_done = on_done
        self.announce = announce
        self.log: _Logger = logger if logger is not None else _module_logger
        self._lock = threading.Lock()
        self._closed = False
        self._part: Optional[Recorder] = first
        self._part_start: Optional[int] = None  # publisher time of the part's first media
        self._has_video = False
        self._anchor = GopAnchor()  # which keyframes may begin a part
        self._metadata: Optional[Message] = None
        self._configs: ConfigCache[Message] = ConfigCache()  # every track's, latest
        self.parts: List[pathlib.Path] = []
        """The parts finished so far (the last one once :meth:`close` ran), in order."""
        self.cuts = 0
        self._done: "queue.Queue[Optional[Recorder]]" = queue.Queue()
        self._thread: Optional[threading.Thread] = None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    @property
    def path(self) -> Optional[pathlib.Path]:
        """The file of the part being written (None before the first message)."""
        part = self._part
        return part.path if part is not None else None

    # -- the publisher's thread ---------------------------------------------------------

    def write(self, message: Message) -> bool:
        """Record one message (audio, video, data or an aggregate, RTMP 7.1.6); True when
        a tag was written.  OSError or ValueError when a part cannot be opened or written."""
        if message.type == MessageType.AGGREGATE:
            written = False
            for sub in split_aggregate(message):
                written = self.write(sub) or written
            return written
        if message.type not in MEDIA_TYPES and message.type not in DATA_TYPES:
            return False
        with self._lock:
            if self._closed:
                return False
            cut_point = self._note(message)
            part = self._part
            if part is None:
                part = self._part = self._open_part()
            elif cut_point and self._due(message, part):
                part = self._cut(message, part)
            if self._part_start is None and message.type in MEDIA_TYPES and not (
                flv.is_sequence_header(message)  # ffmpeg sends them at 0 whatever follows
            ):
                self._part_start = message.timestamp  # the part's length counts from here
            return part.write(message)

    def _note(self, message: Message) -> bool:
        """Remember metadata and codec configuration; True if ``message`` may begin a part."""
        if message.type in DATA_TYPES:
            payload = script_payload(message)
            if payload is not None and payload.startswith(ON_METADATA_TAG):
                self._metadata = message  # FLV E.5: the latest onMetaData starts each part
            elif payload is None and _is_clear_data_frame(message):
                self._metadata = None
            return False
        if message.type == MessageType.VIDEO:
            self._has_video = True
        kind = classify(message)
        if kind == FrameKind.KEYFRAME:
            return self._anchor.starts_gop(message.data)  # ERTMP Multitrack: lowest track's
        if kind == FrameKind.INTERFRAME:
            return False
        if kind == FrameKind.CONFIG:
            self._configs.note(message)
            return False
        return kind == FrameKind.AUDIO and not self._has_video  # FLV E.4.2: decodes alone

    def _due(self, message: Message, part: Recorder) -> bool:
        """Whether the part is full: ``max_ms`` of media or ``max_bytes`` of file."""
        if self._part_start is None:
            return False  # no media in this part yet
        if self.max_ms is not None and timestamp_delta(message.timestamp,
                                                     self._part_start) >= self.max_ms:
            return True
        return self.max_bytes is not None and part.bytes_written >= self.max_bytes

    def _cut(self, message: Message, old: Recorder) -> Recorder:
        """End ``old`` before ``message`` and start the next part with the configuration."""
        old.flush()  # crash safety: the finished part's last tags reach the OS now
        new = self._open_part()
        self._part = new
        self._part_start = message.timestamp
        self.cuts += 1
        if self._metadata is not None:
            new.write(self._metadata)  # FLV E.5: written at the part's time 0
        # FLV E.4.3.1 / E.4.2.2: the decoder configuration at the cut's time (the part's 0).
        for config in self._configs.items():  # every track's; video before audio
            new.write(config.replace(timestamp=message.timestamp))
        self.log.info("recording: %s continues in %s", old.path.name, new.path.name)
        self._finish(old)
        return new

    # -- finishing parts ------------------------------------------------------------------

    def _finish(self, part: Recorder) -> None:
        """Queue ``part`` for closing and ``on_done`` on the recording's thread."""
        self.parts.append(part.path)
        if self._thread is None:
            thread = threading.Thread(target=self._run_done, name=f"rtmp-rec-done-{part.path.stem}")
            try:
                thread.start()
            except RuntimeError as exc:  # out of threads: finish here rather than never
                self.log.warning("recording: no thread to finish parts (%s)", exc)
                self._finish_one(part)
                return
            self._thread = thread
        self._done.put(part)

    def _run_done(self) -> None:
        while True:
            part = self._done.get()
            if part is None:
                return
            self._finish_one(part)

    def _finish_one(self, part: Recorder) -> None:
        try:
            part.close()  # fsync and the duration patch (a no-op if already closed)
        except OSError as exc:
            self.log.error("recording: closing %s failed: %s", part.path, exc)
        callback = self.on_done
        if callback is None:
            return
        try:
            callback(part.path)
        except Exception:
            self.log.exception("on_record_done(%s) raised", part.path)

    def close(self) -> None:
        """Close the last part (fsync, duration) here, then let ``on_done`` run for it after
        the earlier parts'; waits at most :data:`DONE_JOIN_TIMEOUT` for the callbacks."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            part, self._part = self._part, None
        if part is not None:
            try:
                part.close()
            except OSError as exc:
                self.log.error("recording: closing %s failed: %s", part.path, exc)
            self._finish(part)
        thread = self._thread
        if thread is not None:
            self._done.put(None)
            if thread is not threading.current_thread():
                thread.join(DONE_JOIN_TIMEOUT)
                if thread.is_alive():
                    self.log.warning("recording: on_record_done still running after %.0f s; "
                                     "not waiting for it", DONE_JOIN_TIMEOUT)

    def __enter__(self) -> "SegmentedRecorder":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def records_app(record_all: Union[bool, str, Collection[str], None], app: str) -> bool:
    """Whether ``ServerConfig.record_all`` covers application ``app``: True (every
    application), a name, or a collection of names."""
    if record_all is None or isinstance(record_all, bool):
        return bool(record_all)
    if isinstance(record_all, str):
        return app == record_all
    return app in record_all


def open_recording(conn: "ConnectionContext", name: str,
                   stream_type: StreamType) -> Optional[SegmentedRecorder]:
    """RTMP 7.2.2.6: what a publish of ``name`` on ``conn`` records, or None.

    * ``record``/``append``: always ``<record_dir>/<app>/<name>.flv`` (truncated or
      appended to), one file, announced with ``NetStream.Record.*``; OSError or ValueError
      (no ``record_dir``, a bad name) refuse the publish, as before.
    * ``live``: parts (``<name>-<stamp>-<NNNN>.flv``, :func:`rtmp.record_path.part_path`)
      when ``record_all`` covers the application and ``on_record(conn, app, name)``, if
      set, returns true; cut by ``record_segment_seconds`` / ``record_segment_bytes``;
      not announced.  A failure here is logged and the publish goes on unrecorded: an
      encoder (ffmpeg, OBS) gives up on an error status.
    """
    config = conn.config
    record_dir = config.record_dir
    done = config.on_record_done
    if stream_type in (StreamType.RECORD, StreamType.APPEND):
        if record_dir is None:
            raise ValueError("recording is not enabled on this server (record_dir is not set)")
        path = safe_record_path(record_dir, conn.app, name)
        first = Recorder(path, append=stream_type == StreamType.APPEND, logger=conn.log)
        return SegmentedRecorder(lambda: first, first=first, on_done=done, logger=conn.log)
    if record_dir is None or not records_app(config.record_all, conn.app):
        return None
    callback = config.on_record
    if callback is not None:
        try:
            if not callback(conn.connection, conn.app, name):
                conn.log.info("on_record: %s/%s not recorded", conn.app, name)
                return None
        except Exception:
            conn.log.exception("on_record raised; %s/%s not recorded", conn.app, name)
            return None
    app = conn.app
    try:
        existing = list_parts(record_dir, app, name)
        first_index = existing[-1][0] + 1 if existing else 1
        part_path(record_dir, app, name, time.strftime(PART_STAMP_FORMAT, time.gmtime()),
                  first_index)  # a name that cannot be recorded is found now
    except (OSError, ValueError) as exc:
        conn.log.warning("cannot record %s/%s: %s", app, name, exc)
        return None
    indexes = itertools.count(first_index)
    log = conn.log

    def open_part() -> Recorder:
        stamp = time.strftime(PART_STAMP_FORMAT, time.gmtime())
        return Recorder(part_path(record_dir, app, name, stamp, next(indexes)), logger=log)

    seconds, size = config.record_segment_seconds, config.record_segment_bytes
    return SegmentedRecorder(
        open_part, max_ms=None if seconds is None else max(1, round(seconds * 1000)),
        max_bytes=size, on_done=done, announce=False, logger=log,
    )  # fmt: skip
