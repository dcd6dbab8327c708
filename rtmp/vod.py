"""RTMP 7.2.2.6 / FLV E.2-E.4: recording published streams to FLV, and playing them back.

Three pieces, all used by :mod:`rtmp.server`:

* :func:`safe_record_path` maps an ``(app, stream name)`` pair to the file under
  ``ServerConfig.record_dir`` (``<record_dir>/<app>/<name>.flv``) and refuses names that
  could leave that directory; :func:`find_recording` is the same lookup for playback.
* :class:`Recorder` writes a publisher's audio, video and metadata messages as FLV tags
  (publishing type ``record`` or ``append``, RTMP 7.2.2.6), syncing the file to disk at
  every video keyframe and at least once per second of media, so a crash leaves a file
  that players read up to the last complete tag.
* :class:`VodPlayer` plays a recorded FLV to one player on its own thread (RTMP 7.2.2.1),
  paced by the tag timestamps, with seek (RTMP 7.2.2.7) and pause (RTMP 7.2.2.8), and
  ends with Stream EOF (RTMP 7.1.7), ``onStatus NetStream.Play.Stop`` and
  ``onPlayStatus NetStream.Play.Complete`` as nginx-rtmp does.

Theory of operation of the player
---------------------------------
Opening the file reads every tag header once (FLV E.3: a tag is an 11-byte header, the
body and a 4-byte back pointer) and keeps, with their file offsets: the seek points
(video keyframes; every audio tag when the file has no video), the codec sequence
headers, and the first ``onMetaData``.  A seek is then a binary search over the seek
points followed by one ``file.seek``.

Playback state is a read offset plus a clock anchor: the message at timestamp ``t`` is
due at ``anchor_clock + (t - anchor_ts) / 1000 - buffer_ms / 1000``, so the player
stays ``buffer_ms`` ahead of real time, as nginx-rtmp keeps the client's buffer length
plus a second ahead.  :meth:`VodPlayer.pump` sends what is due and returns how long to
wait; the thread started by :meth:`VodPlayer.start` only calls ``pump`` and waits on an
event that ``seek``/``pause``/``stop`` set, so every control call takes effect at once.
"""

from __future__ import annotations

import bisect
import logging
import os
import pathlib
import struct
import threading
import time
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Protocol,
    Tuple,
    Union,
)

from . import commands, flv, user_control
from .message import (
    CLEAR_DATA_FRAME,
    DATA_TYPES,
    MEDIA_TYPES,
    Message,
    MessageType,
    split_aggregate,
    strip_set_data_frame_bytes,
)

__all__ = [
    "RECORD_SUFFIX",
    "FlvIndex",
    "Recorder",
    "VodPlayer",
    "patch_metadata_duration",
    "safe_record_path",
    "find_recording",
    "script_payload",
]

logger = logging.getLogger(__name__)
_module_logger = logger  # the default for classes whose ``logger=`` argument shadows the name

_Logger = Union[logging.Logger, "logging.LoggerAdapter[Any]"]

#: The file name suffix of recordings (nginx-rtmp's ``record_suffix`` default).
RECORD_SUFFIX = ".flv"

#: The longest single path component accepted (common file-system limit, in bytes).
_MAX_COMPONENT_BYTES = 255

#: Characters that never appear in a recorded stream's path: NUL and other C0 controls
#: (they break logs and some file systems) and the Windows separator.
_FORBIDDEN_CHARS = frozenset(chr(c) for c in range(0x20)) | {"\x7f", "\\"}
#: What Windows reads as a drive before ``:`` (``pathlib.PureWindowsPath``'s drive letters).
_DRIVE_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


# --------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------


def _check_components(label: str, value: str) -> List[str]:
    """Split ``value`` on ``/`` and refuse anything but plain names (no ``.``/``..``/empty)."""
    if not value:
        raise ValueError(f"{label} is empty")
    bad = _FORBIDDEN_CHARS.intersection(value)
    if bad:
        shown = ", ".join(sorted(repr(c) for c in bad))
        raise ValueError(f"{label} {value!r} contains forbidden characters ({shown})")
    if value.startswith("/"):
        raise ValueError(f"{label} {value!r} is an absolute path")
    parts = value.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"{label} {value!r} has an empty, '.' or '..' path component")
        if part[1:2] == ":" and part[0] in _DRIVE_LETTERS:  # "C:x" names a drive on Windows
            raise ValueError(f"{label} {value!r} names a drive")
        if len(part.encode("utf-8", "surrogatepass")) > _MAX_COMPONENT_BYTES:
            raise ValueError(f"{label} {value!r} has a component over {_MAX_COMPONENT_BYTES} bytes")
    return parts


def safe_record_path(
    record_dir: Union[str, "os.PathLike[str]"], app: str, stream_name: str
) -> pathlib.Path:
    """RTMP 7.2.2.6 / 7.2.2.1: the FLV file of stream ``stream_name`` in application ``app``.

    The result is ``<record_dir>/<app>/<name>.flv``.  The name is what the peer sent in
    ``publish`` or ``play``, so it is untrusted:

    * a query string (``name?key=secret``, as ffmpeg and OBS append tokens) is dropped;
    * an ``flv:`` prefix (RTMP 7.2.2.1 names files by type prefix) is dropped, and a
      trailing ``.flv`` is not doubled;
    * ``app`` and the name may be nested (``a/b``) as long as every component is a plain
      name: empty, ``.``, ``..``, absolute paths, backslashes, NUL and other control
      characters, Windows drive names and components over 255 bytes raise
      :class:`ValueError`;
    * finally the resolved path (symbolic links followed) must still lie inside
      ``record_dir``, so a link planted in the directory cannot redirect a recording.
    """
    root, path = _record_path(record_dir, app, stream_name)
    _check_inside(root, path, app, stream_name)
    return path


def find_recording(
    record_dir: Union[str, "os.PathLike[str]"], app: str, stream_name: str
) -> Optional[pathlib.Path]:
    """RTMP 7.2.2.1: :func:`safe_record_path` if that file exists, else None.

    Whether the file exists is asked first: a ``play`` of a stream that has no
    recording (the live case) costs one ``stat``, not the resolution of every link.
    """
    parts = _record_parts(app, stream_name)
    if not os.path.isfile(os.path.join(record_dir, *parts)):  # no Path objects for a miss
        return None
    root = pathlib.Path(record_dir)
    path = root.joinpath(*parts)
    _check_inside(root, path, app, stream_name)
    return path


def _record_path(
    record_dir: Union[str, "os.PathLike[str]"], app: str, stream_name: str
) -> Tuple[pathlib.Path, pathlib.Path]:
    """``(record_dir, <record_dir>/<app>/<name>.flv)`` with every component checked."""
    root = pathlib.Path(record_dir)
    return root, root.joinpath(*_record_parts(app, stream_name))


def _record_parts(app: str, stream_name: str) -> List[str]:
    """The checked path components of ``<app>/<name>.flv`` under the record directory."""
    if not isinstance(app, str) or not isinstance(stream_name, str):
        raise TypeError("app and stream_name must be str")
    name = stream_name.split("?", 1)[0]
    if name[:4].lower() == "flv:":
        name = name[4:]
    app_parts = _check_components("application name", app)
    name_parts = _check_components("stream name", name)
    if not name_parts[-1].lower().endswith(RECORD_SUFFIX):
        name_parts[-1] += RECORD_SUFFIX
    return app_parts + name_parts


def _check_inside(root: pathlib.Path, path: pathlib.Path, app: str, stream_name: str) -> None:
    """ValueError unless ``path``, links followed, lies inside ``root``."""
    resolved_root = root.resolve()
    resolved = path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise ValueError(f"stream {app}/{stream_name!r} resolves outside the record directory")


# --------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------

#: RTMP 7.1.2 [impl]: ``@clearDataFrame`` as the first AMF0 value (marker, U16 length, bytes).
_CLEAR_DATA_FRAME = b"\x02\x00\x0f" + CLEAR_DATA_FRAME.encode()

#: Sync the file to disk at least this often, in milliseconds of media.
SYNC_INTERVAL_MS = 1000


#: FLV E.3 / E.4.1: bytes around a tag body: the 11-byte header and the 4-byte back pointer.
_TAG_OVERHEAD = flv.TAG_HEADER_SIZE + 4
#: FLV E.5: a script tag whose name (AMF0 string) is onMetaData.
_ON_METADATA = b"\x02\x00\x0aonMetaData"


def _signed_delta(later: int, earlier: int) -> int:
    """RTMP 5.3.1 (serial arithmetic): ``later - earlier`` on 32-bit wrapping timestamps."""
    return ((later - earlier + 0x80000000) & 0xFFFFFFFF) - 0x80000000


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
            if end < flv.HEADER_SIZE + 4 + _TAG_OVERHEAD:
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


#: FLV E.5: the ``duration`` property inside an onMetaData ECMA array: UTF-8 name with a
#: 16-bit length, then the AMF0 number marker 0x00 and an 8-byte double (seconds).
_DURATION_PROPERTY = b"\x00\x08duration\x00"
_DOUBLE = struct.Struct(">d")


def _metadata_duration_offset(path: Union[str, "os.PathLike[str]"]) -> Optional[int]:
    """FLV E.5: where the first onMetaData tag stores its duration: the file offset of the
    8-byte double, ``-1`` if that tag has no duration, ``None`` if there is no onMetaData
    among the first 16 tags (muxers put it first)."""
    with flv.Reader(path) as reader:
        for count, tag in enumerate(reader):
            if count >= 16:
                break
            if tag.type == flv.TAG_SCRIPT and tag.data.startswith(_ON_METADATA):
                where = tag.data.find(_DURATION_PROPERTY)
                if where < 0:
                    return -1
                return tag.offset + flv.TAG_HEADER_SIZE + where + len(_DURATION_PROPERTY)
    return None


def patch_metadata_duration(path: Union[str, "os.PathLike[str]"], duration_ms: int) -> bool:
    """FLV E.5: set ``duration`` in the file's first onMetaData tag, in place.

    A live publisher sends ``duration: 0`` (it cannot know); players use the value for
    their seek bar and ffprobe reports it.  The number is rewritten where it is (same
    size, no tag moves), as ffmpeg's FLV muxer does when it finishes a file.  Returns
    whether a duration property was found.
    """
    offset = _metadata_duration_offset(path)
    if offset is None or offset < 0:
        return False
    with open(path, "r+b") as file:
        file.seek(offset)
        file.write(_DOUBLE.pack(duration_ms / 1000.0))
        file.flush()
        os.fsync(file.fileno())
    return True


class _Syncer:
    """FLV E.3: force a file's written bytes to disk on a thread of its own.

    ``fsync`` can take seconds on a slow or busy disk; on the publisher's thread it
    would stall the publisher and, through it, every player of the stream.  Requests
    made while a sync runs are merged into the next one.  ``fsync`` of a second
    descriptor of the same file syncs the file's data whoever wrote it (POSIX).
    """

    def __init__(self, path: pathlib.Path, log: _Logger) -> None:
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
        logger: Optional[_Logger] = None,
    ) -> None:
        self.path = pathlib.Path(path)
        self.log: _Logger = logger if logger is not None else _module_logger
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
            self._keep_metadata = _metadata_duration_offset(self.path) is None
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

    def _file_timestamp(self, message: Message) -> int:
        """FLV E.4.1: map a publisher timestamp to file time (first media at ``_base_ts``)."""
        if self._first_media_ts is None:
            if message.type not in MEDIA_TYPES:
                return self._base_ts  # metadata before the first frame goes at the start
            self._first_media_ts = message.timestamp
        delta = _signed_delta(message.timestamp, self._first_media_ts)
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
            if data is not None and data.startswith(_ON_METADATA):
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


# --------------------------------------------------------------------------------------
# Index of a recorded file
# --------------------------------------------------------------------------------------




class FlvIndex:
    """FLV E.3: what playback needs to know about a file, from one pass over its tags.

    * ``seek_times`` / ``seek_offsets``: the timestamps and file offsets of the seek
      points, in file order: video keyframes (FLV E.4.3.1 frame type 1, sequence headers
      excluded), or every audio tag when the file has no video;
    * ``headers``: ``(offset, tag)`` of every codec sequence header (AVC/HEVC decoder
      configuration, AAC AudioSpecificConfig, enhanced sequence starts), which a player
      needs before the first frame it decodes after a seek;
    * ``metadata``: the first ``onMetaData`` script tag (FLV E.5) and its offset;
    * ``end_offset``: where the last complete tag ends (a file cut short by a crash is
      played up to there), and ``duration_ms``: the largest timestamp seen.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"]) -> None:
        self.path = pathlib.Path(path)
        self.seek_times: List[int] = []
        self.seek_offsets: List[int] = []
        self.headers: List[Tuple[int, "flv.Tag"]] = []
        self.metadata: Optional["flv.Tag"] = None
        self.metadata_offset = -1
        self.first_offset = 0
        self.end_offset = 0
        self.duration_ms = 0
        self.tag_count = 0
        self.first_timestamp = -1
        self.truncated = False
        self.has_audio = False
        self.has_video = False
        audio_points: List[Tuple[int, int]] = []
        for tag in _scan_tags(self):
            offset = tag.offset
            self.tag_count += 1
            self.duration_ms = max(self.duration_ms, tag.timestamp)
            if self.first_timestamp < 0 and tag.type in MEDIA_TYPES:
                self.first_timestamp = tag.timestamp
            if tag.type == flv.TAG_VIDEO:
                self.has_video = True
                if _plain_inter_frame(tag.data):
                    continue  # the common case, decided from the first byte
                if flv.is_sequence_header(tag):
                    self.headers.append((offset, tag))
                elif _is_seek_point(tag):
                    self.seek_times.append(tag.timestamp)
                    self.seek_offsets.append(offset)
            elif tag.type == flv.TAG_AUDIO:
                self.has_audio = True
                if _plain_aac_frame(tag.data):
                    if not self.has_video:
                        audio_points.append((tag.timestamp, offset))
                    continue
                if flv.is_sequence_header(tag):
                    self.headers.append((offset, tag))
                elif not self.has_video:
                    audio_points.append((tag.timestamp, offset))
            elif self.metadata is None and tag.data.startswith(_ON_METADATA):
                self.metadata = tag
                self.metadata_offset = offset
        self.first_timestamp = max(self.first_timestamp, 0)
        if not self.seek_times and audio_points:
            # FLV E.4.2: every audio frame can be decoded on its own; an audio-only file
            # can start anywhere.
            self.seek_times = [t for t, _ in audio_points]
            self.seek_offsets = [o for _, o in audio_points]
        # A file may carry timestamps that step back (interleaving); bisect needs order.
        if any(b < a for a, b in zip(self.seek_times, self.seek_times[1:])):
            self.seek_times = list(_running_max(self.seek_times))

    def seek_point(self, ms: int) -> Tuple[int, int]:
        """RTMP 7.2.2.7: ``(timestamp, offset)`` of the seek point at or before ``ms``.

        Up to the first seek point, and in a file without any, playback starts at the
        first tag, so the audio and metadata before the first keyframe are not lost.
        """
        i = bisect.bisect_right(self.seek_times, ms) - 1
        if i <= 0:
            return self.first_timestamp, self.first_offset
        return self.seek_times[i], self.seek_offsets[i]

    def headers_before(self, offset: int) -> List["flv.Tag"]:
        """The latest audio and latest video sequence header located before ``offset``."""
        latest: Dict[int, "flv.Tag"] = {}
        for header_offset, tag in self.headers:
            if header_offset >= offset:
                break
            latest[tag.type] = tag
        return [latest[t] for t in sorted(latest, reverse=True)]  # video (9) first


#: How much of each tag body the index reads to classify it (FLV E.4.2.1 / E.4.3.1 and the
#: ERTMP ExVideoTagHeader fit easily); sequence headers and metadata are read whole.
_TAG_PROBE = 32


def _scan_tags(index: FlvIndex) -> Iterator["flv.Tag"]:
    """FLV E.3 / E.4.1: walk a file's tags by their DataSize, reading only the tag header
    and the first bytes of the body (whole bodies for sequence headers and onMetaData).

    Sets ``first_offset``, ``end_offset`` and ``truncated`` on ``index``.  Reading only
    the headers keeps opening an hour-long recording fast: the bodies are skipped with a
    ``seek`` instead of being read.
    """
    with open(index.path, "rb") as file:
        reader = flv.Reader(file)  # FLV E.2: validates the header (FLVError if not FLV)
        file_size = os.fstat(file.fileno()).st_size
        offset = reader.data_offset + 4  # FLV E.3: after PreviousTagSize0
        index.first_offset = index.end_offset = offset
        while offset + flv.TAG_HEADER_SIZE <= file_size:
            file.seek(offset)
            head = file.read(flv.TAG_HEADER_SIZE + _TAG_PROBE)
            tag_type = head[0] & 0x1F  # FLV E.4.1: TagType UB[5]
            size = int.from_bytes(head[1:4], "big")  # FLV E.4.1: DataSize UI24
            # FLV E.4.1: Timestamp UI24 is the low part, TimestampExtended the upper 8 bits.
            timestamp = int.from_bytes(head[4:7], "big") | (head[7] << 24)
            body_end = offset + flv.TAG_HEADER_SIZE + size
            if body_end > file_size:
                index.truncated = True  # a crash cut this tag: play up to the one before
                break
            data = head[flv.TAG_HEADER_SIZE:flv.TAG_HEADER_SIZE + size]
            tag = flv.Tag(tag_type, timestamp, data, offset)
            if len(data) < size and (
                (tag_type == flv.TAG_SCRIPT and data.startswith(_ON_METADATA))
                or flv.is_sequence_header(tag)
            ):
                data += file.read(size - len(data))
                tag = flv.Tag(tag_type, timestamp, data, offset)
            index.end_offset = body_end + 4
            if tag_type in flv.TAG_TYPES:
                yield tag
            offset = body_end + 4  # FLV E.3: skip the PreviousTagSize after the body
        if offset < file_size and not index.truncated:
            index.truncated = True


def _plain_inter_frame(data: bytes) -> bool:
    """FLV E.4.3.1: a legacy (not ERTMP) video header whose frame type is not 1 (key):
    neither a seek point nor a sequence header, whatever the codec."""
    return bool(data) and not data[0] & 0x80 and data[0] >> 4 != flv.FRAME_KEY


def _plain_aac_frame(data: bytes) -> bool:
    """FLV E.4.2.1 / E.4.2.2: SoundFormat 10 (AAC) with AACPacketType 1 (raw frame)."""
    return len(data) > 1 and data[0] >> 4 == flv.SOUND_FORMAT_AAC and data[1] == flv.AAC_RAW


def _is_seek_point(tag: "flv.Tag") -> bool:
    """FLV E.4.3.1: a key frame that carries a picture (frame type 1), not the AVC/HEVC
    end-of-sequence marker (packet type 2, also flagged as a key frame by muxers)."""
    if not flv.is_keyframe(tag):
        return False
    try:
        header = flv.VideoTagHeader.parse(tag.data)
    except flv.FLVError:
        return False
    # AVCPacketType 2 / ERTMP VideoPacketType SequenceEnd (both 2): no picture to start from.
    end_types = (flv.AVC_END_OF_SEQUENCE, flv.PACKET_SEQUENCE_END)
    return header.fourcc is None or header.packet_type not in end_types


def _running_max(values: List[int]) -> List[int]:
    out: List[int] = []
    top = -1
    for value in values:
        top = max(top, value)
        out.append(top)
    return out


# --------------------------------------------------------------------------------------
# Playback
# --------------------------------------------------------------------------------------

#: How far ahead of real time the player sends (nginx-rtmp: the client's buffer + 1 s).
DEFAULT_BUFFER_MS = 1000
#: At most this many messages per ``pump`` call, so control calls never wait long.
MAX_BATCH = 64
#: The thread never sleeps longer than this (it is woken early by every control call).
MAX_IDLE_SECONDS = 0.5
#: How long ``stop()`` waits for the playback thread.
JOIN_TIMEOUT = 5.0

#: [impl: nginx-rtmp]: the data message that tells a player the file is over.
ON_PLAY_STATUS = "onPlayStatus"

_SCRIPT_MESSAGE_TYPE = {18: MessageType.DATA_AMF0, 15: MessageType.DATA_AMF3}
_PLAYABLE_TAG_TYPES = frozenset({8, 9, 18, 15})  # FLV E.4.1 + ERTMP AMF3 script tags


class _Transport(Protocol):
    """What the player needs of :class:`rtmp.transport.Transport`: send messages in order."""

    def write_messages(self, __messages: List[Message]) -> None: ...


#: ``notify(position_ms) -> messages`` for :meth:`VodPlayer.seek` and :meth:`VodPlayer.pause`.
_Notify = Callable[[int], Iterable[Message]]


class VodPlayer:
    """RTMP 7.2.2.1: play a recorded FLV to one player, paced in real time, on a thread.

    Sends the ``onMetaData`` data message (FLV E.5) and the codec sequence headers, then
    the tags from the keyframe at or before ``start_ms``, each ``buffer_ms`` ahead of its
    due time, on message stream ``message_stream_id`` (audio, video and data on their
    conventional chunk streams).  ``duration_ms >= 0`` stops at media time
    ``start_ms + duration_ms`` (``0``: only the frames up to ``start_ms``, RTMP 7.2.2.1's
    "single frame"); ``-1`` (or any other negative value) plays to the end.

    At the end: User Control Stream EOF (RTMP 7.1.7), ``onPlayStatus
    NetStream.Play.Complete`` and ``onStatus NetStream.Play.Stop``, in nginx-rtmp's order;
    then :attr:`finished` is set and the thread ends.  A :meth:`seek` afterwards plays on
    (on a new thread).  The thread is not a daemon: :meth:`stop` ends and joins it.

    The property :attr:`duration_ms` is the file's duration; :attr:`position_ms` the
    timestamp of the last message sent.  ``clock`` (seconds, monotonic) is injectable
    for tests; :meth:`pump` is the single step the thread repeats.
    """

    def __init__(
        self,
        transport: "_Transport",
        path: Union[str, "os.PathLike[str]"],
        message_stream_id: int,
        *,
        start_ms: int = 0,
        duration_ms: int = -1,
        logger: Optional[_Logger] = None,
        clock: Callable[[], float] = time.monotonic,
        buffer_ms: int = DEFAULT_BUFFER_MS,
    ) -> None:
        self.transport = transport
        self.path = pathlib.Path(path)
        self.message_stream_id = message_stream_id
        self.log: _Logger = logger if logger is not None else _module_logger
        self.clock = clock
        self.buffer_ms = max(0, int(buffer_ms))
        self.index = FlvIndex(self.path)
        self.start_ms = max(0, int(start_ms))
        self.play_duration_ms = int(duration_ms)
        self._end_ts: Optional[int] = (
            self.start_ms + self.play_duration_ms if self.play_duration_ms >= 0 else None
        )
        #: RTMP 7.2.2.4 / 7.2.2.5: receiveAudio / receiveVideo false stops that kind of media.
        self.receive_audio = True
        self.receive_video = True
        self.finished = threading.Event()
        self.error: Optional[BaseException] = None
        self.bytes_sent = 0
        self._file = open(self.path, "rb")  # noqa: SIM115 - lives as long as the player
        self._reader = flv.Reader(self._file)
        self._reader_offset = self.index.first_offset  # where the reader's next read starts
        self._peeked: Optional[Tuple[int, "flv.Tag"]] = None  # (offset, tag) read, not sent
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._running = False  # a playback thread is in its loop (changed under _lock)
        self._paused = False
        self._offset = self.index.first_offset
        self._send_metadata = True
        self._send_headers = True
        self._skip_through: Optional[int] = None  # RTMP 7.2.2.8: resume after this time
        self._anchor: Optional[Tuple[float, int]] = None  # (clock, timestamp) pairing
        self._position = 0
        self._reposition(self.start_ms)

    # -- properties -------------------------------------------------------------------

    @property
    def duration_ms(self) -> int:
        """FLV E.4.1: the largest timestamp in the file, in milliseconds."""
        return self.index.duration_ms

    @property
    def position_ms(self) -> int:
        """The timestamp of the last message sent (or the seek position before any)."""
        return self._position

    @property
    def paused(self) -> bool:
        """True between ``pause(True)`` and ``pause(False)``."""
        return self._paused

    # -- control ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the playback thread (once; later calls do nothing)."""
        with self._lock:
            if self._thread is not None or self._stopping.is_set():
                return
            self._spawn()

    def _spawn(self) -> None:
        """Start a playback thread (under the lock; non-daemon: :meth:`stop` joins it)."""
        self._running = True
        self._thread = threading.Thread(target=self._run, name=f"rtmp-vod-{self.message_stream_id}")
        self._thread.start()

    def seek(self, ms: int, notify: Optional[_Notify] = None) -> int:
        """RTMP 7.2.2.7: jump to the keyframe at or before ``ms``; returns its timestamp.

        The server answers with ``NetStream.Seek.Notify`` and ``NetStream.Play.Start``.
        A player drops what it receives before Seek.Notify, so pass those messages as
        ``notify(position) -> messages``: they are written before any media of the new
        position (sending them after ``seek`` returns races with the playback thread).
        Sequence headers are sent again before the keyframe; a pause stays in force.
        After the end of the file, a seek plays on.
        """
        with self._lock:
            position = self._reposition(max(0, int(ms)))
            self._send_headers = True
            if notify is not None:
                self._write(list(notify(position)))
            if self.finished.is_set() and not self._stopping.is_set():
                self.finished.clear()
                # The thread decides to end under this lock (``_running``): either it has
                # not decided yet and sees ``finished`` cleared, or it has and a new one runs.
                if self._thread is not None and not self._running:
                    self._spawn()
        self._wake.set()
        self.log.info("vod: seek to %d ms -> keyframe at %d ms", ms, position)
        return position

    def pause(
        self, paused: bool, ms: Optional[int] = None, notify: Optional[_Notify] = None
    ) -> None:
        """RTMP 7.2.2.8: stop sending (``True``) or resume (``False``).

        On resume with ``ms`` (the player's current time), playback restarts at the
        keyframe at or before ``ms`` but sends only messages with a timestamp greater
        than ``ms``: the player already has the ones it showed.  Without ``ms`` playback
        continues where the file was left.  ``notify(position) -> messages`` (the
        Pause.Notify / Unpause.Notify status) is written in order with the media.
        """
        with self._lock:
            if notify is not None:
                self._write(list(notify(self._position if ms is None else int(ms))))
            if paused:
                self._paused = True
            elif self._paused:
                self._paused = False
                if ms is not None:
                    self._reposition(max(0, int(ms)))
                    self._skip_through = int(ms)
                self._anchor = None  # the clock restarts at the next message
        self._wake.set()
        self.log.info("vod: %s at %s ms", "pause" if paused else "resume", ms)

    def stop(self) -> None:
        """End playback: the thread exits promptly and is joined; the file is closed."""
        self._stopping.set()
        self._wake.set()
        joined = None
        while True:  # a seek that raced with this stop may have started one more thread
            thread = self._thread
            if thread is None or thread is joined or thread is threading.current_thread():
                break
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                self.log.warning("vod: playback thread did not stop within %.1fs", JOIN_TIMEOUT)
                return  # it closes the file itself when its write returns
            joined = thread
        with self._lock:
            self._file.close()

    def __enter__(self) -> "VodPlayer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the pump ---------------------------------------------------------------------

    def _reposition(self, ms: int) -> int:
        """Move the read offset to the seek point at or before ``ms`` (under the lock)."""
        timestamp, offset = self.index.seek_point(ms)
        self._offset = offset
        self._position = timestamp
        self._anchor = None
        self._skip_through = None
        return timestamp

    def _peek(self) -> Optional["flv.Tag"]:
        """FLV E.4.1: the tag at the read offset (read once, kept until it is sent)."""
        if self._peeked is not None and self._peeked[0] == self._offset:
            return self._peeked[1]
        if self._reader_offset != self._offset:
            # A seek: a fresh Reader (it parses the FLV E.2 header), then jump the file.
            self._file.seek(0)
            self._reader = flv.Reader(self._file)
            self._file.seek(self._offset)
        tag = self._reader.read_tag()
        if tag is None:
            return None
        self._reader_offset = self._offset + _TAG_OVERHEAD + len(tag.data)
        self._peeked = (self._offset, tag)
        return tag

    def _message(self, tag: "flv.Tag", timestamp: Optional[int] = None) -> Message:
        """FLV E.4.1 -> RTMP 7.1: a tag becomes a message on this stream."""
        msg_type = _SCRIPT_MESSAGE_TYPE.get(tag.type, tag.type)
        return Message(
            type=msg_type,
            data=tag.data,
            timestamp=tag.timestamp if timestamp is None else timestamp,
            message_stream_id=self.message_stream_id,
        )

    def _preamble(self) -> List[Message]:
        """FLV E.5 and E.4.3.2/E.4.2.2: metadata and sequence headers the player needs first."""
        out: List[Message] = []
        if self._send_metadata:
            self._send_metadata = False
            if self.index.metadata is not None:
                out.append(self._message(self.index.metadata, self._position))
        if self._send_headers:
            self._send_headers = False
            for tag in self.index.headers_before(self._offset):
                out.append(self._message(tag, self._position))
        return out

    def pump(self) -> Optional[float]:
        """Send every message that is due; return seconds until the next one is due.

        Returns ``None`` when there is nothing to wait for (paused, finished, stopped).
        """
        with self._lock:
            if self._stopping.is_set() or self.finished.is_set() or self._paused:
                return None
            now = self.clock()
            batch = self._preamble()
            delay: Optional[float] = 0.0
            while len(batch) < MAX_BATCH:
                if self._offset >= self.index.end_offset:
                    delay = None
                    break
                tag = self._peek()
                if tag is None:  # the file shrank under us
                    delay = None
                    break
                next_offset = self._offset + _TAG_OVERHEAD + len(tag.data)
                timestamp = tag.timestamp
                if self._end_ts is not None and timestamp > self._end_ts:
                    delay = None
                    break
                if (
                    self._offset == self.index.metadata_offset  # sent first, by _preamble
                    or tag.type not in _PLAYABLE_TAG_TYPES  # FLV E.4.1: unknown tag type
                    or (  # RTMP 7.2.2.8: on resume the player already has these
                        self._skip_through is not None and timestamp <= self._skip_through
                        and tag.type in MEDIA_TYPES
                    )
                    or (tag.type == MessageType.AUDIO and not self.receive_audio)  # 7.2.2.4
                    or (tag.type == MessageType.VIDEO and not self.receive_video)  # 7.2.2.5
                ):
                    self._offset = next_offset
                    continue
                if self._anchor is None:
                    self._anchor = (now, timestamp)
                due = self._anchor[0] + (timestamp - self._anchor[1] - self.buffer_ms) / 1000.0
                if due > now:
                    delay = due - now
                    break
                batch.append(self._message(tag))
                self._offset = next_offset
                if tag.type in MEDIA_TYPES:
                    self._position = timestamp
            if batch:
                self._write(batch)
            if delay is None:
                self._complete()
            return delay

    def _write(self, messages: List[Message]) -> None:
        self.transport.write_messages(messages)
        self.bytes_sent += sum(len(m.data) for m in messages)

    def _complete(self) -> None:
        """RTMP 7.1.7 + [impl: nginx-rtmp]: Stream EOF, onPlayStatus Complete, Play.Stop."""
        msid = self.message_stream_id
        info = {
            "code": commands.NETSTREAM_PLAY_COMPLETE,
            "level": "status",
            "duration": self._position / 1000.0,
            "bytes": float(self.bytes_sent),
        }
        play_status = commands.encode_data(
            ON_PLAY_STATUS, info, message_stream_id=msid, timestamp=self._position
        )
        self._write([
            user_control.stream_eof(msid),
            play_status,
            commands.on_status(commands.NETSTREAM_PLAY_STOP, f"Stopped playing {self.path.stem}", msid),
        ])
        self.finished.set()
        self.log.info("vod: %s complete at %d ms (%d bytes)", self.path, self._position,
                      self.bytes_sent)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                delay = self.pump()
                with self._lock:  # decided under the lock that seek() takes (see there)
                    if self.finished.is_set():
                        self._running = False
                        break
                self._wake.wait(MAX_IDLE_SECONDS if delay is None else min(delay, MAX_IDLE_SECONDS))
        except Exception as exc:  # noqa: BLE001 - a dead player connection ends playback only
            self.error = exc
            self._stopping.set()
            self.log.info("vod: playback of %s ended: %s", self.path, exc)
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._running = False
            if self._stopping.is_set():
                with self._lock:
                    self._file.close()
