"""RTMP 7.2.2.1 / FLV E.3: playing a recorded FLV file to one player (VOD).

:class:`VodPlayer` plays a recorded FLV to one player on its own thread (RTMP 7.2.2.1),
paced by the tag timestamps, with seek (RTMP 7.2.2.7) and pause (RTMP 7.2.2.8), and
ends with Stream EOF (RTMP 7.1.7), ``onStatus NetStream.Play.Stop`` and
``onPlayStatus NetStream.Play.Complete`` as nginx-rtmp does.  :class:`FlvIndex` is what
it knows of the file (seek points, sequence headers, metadata) from one pass.

The other jobs recording has live in their own modules, re-exported here so
``from rtmp.vod import Recorder`` keeps working: record-path safety in
:mod:`rtmp.record_path`, the recorder in :mod:`rtmp.recorder`, the onMetaData
duration patch in :mod:`rtmp.flvmeta`.

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
import threading
import time
from typing import (
    Callable,
    Iterable,
    Iterator,
    List,
    Optional,
    Protocol,
    Tuple,
    Union,
)

from . import commands, flv, user_control
from .flvmeta import ON_METADATA_TAG, patch_metadata_duration
from .logs import AnyLogger
from .message import MEDIA_TYPES, Message, MessageType
from .record_path import RECORD_SUFFIX, find_recording, safe_record_path
from .recorder import Recorder, script_payload
from .streams import ConfigCache, ConfigKey, config_keys, keyframe_tracks

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


# --------------------------------------------------------------------------------------
# Index of a recorded file
# --------------------------------------------------------------------------------------


class FlvIndex:
    """FLV E.3: what playback needs to know about a file, from one pass over its tags.

    * ``seek_times`` / ``seek_offsets``: the timestamps and file offsets of the seek
      points, in file order: video keyframes (FLV E.4.3.1 frame type 1, sequence headers,
      ERTMP Metadata and command frames excluded; in an ERTMP multitrack file those of
      the lowest track), or every audio tag when the file has no video;
    * ``headers``: ``(offset, tag)`` of every codec configuration (AVC/HEVC decoder
      configuration, AAC AudioSpecificConfig, ERTMP SequenceStart of any FourCC,
      MultichannelConfig and Metadata, per track), which a player needs before the first
      frame it decodes after a seek (:meth:`headers_before`);
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
        self._header_keys: List[Tuple[ConfigKey, ...]] = []
        audio_points: List[Tuple[int, int]] = []
        video_points: List[Tuple[int, int, Tuple[int, ...]]] = []
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
                keys = config_keys(tag.type, tag.data)
                if keys:
                    self.headers.append((offset, tag))
                    self._header_keys.append(keys)
                elif _is_seek_point(tag):
                    video_points.append((tag.timestamp, offset, keyframe_tracks(tag.data)))
            elif tag.type == flv.TAG_AUDIO:
                self.has_audio = True
                if _plain_aac_frame(tag.data):
                    if not self.has_video:
                        audio_points.append((tag.timestamp, offset))
                    continue
                keys = config_keys(tag.type, tag.data)
                if keys:
                    self.headers.append((offset, tag))
                    self._header_keys.append(keys)
                elif not self.has_video:
                    audio_points.append((tag.timestamp, offset))
            elif self.metadata is None and tag.data.startswith(ON_METADATA_TAG):
                self.metadata = tag
                self.metadata_offset = offset
        self.first_timestamp = max(self.first_timestamp, 0)
        if video_points:
            # ERTMP Multitrack: seek to keyframes of the lowest track that has them (the
            # default track, 0, in every single-track file), as the live GOP cache starts.
            anchor = min(min(tracks) for _, _, tracks in video_points)
            points = [(t, o) for t, o, tracks in video_points if anchor in tracks]
            self.seek_times = [t for t, _ in points]
            self.seek_offsets = [o for _, o in points]
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
        """The latest configuration of every track located before ``offset`` (sequence
        headers, ERTMP SequenceStart, MultichannelConfig, Metadata), video first."""
        latest: ConfigCache[flv.Tag] = ConfigCache()
        for (header_offset, tag), keys in zip(self.headers, self._header_keys):
            if header_offset >= offset:
                break
            latest.note(tag, keys)
        return latest.items()


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
                (tag_type == flv.TAG_SCRIPT and data.startswith(ON_METADATA_TAG))
                or flv.is_sequence_header(tag) or _needs_whole_body(tag_type, data)
            ):
                data += file.read(size - len(data))
                tag = flv.Tag(tag_type, timestamp, data, offset)
            index.end_offset = body_end + 4
            if tag_type in flv.TAG_TYPES:
                yield tag
            offset = body_end + 4  # FLV E.3: skip the PreviousTagSize after the body
        if offset < file_size and not index.truncated:
            index.truncated = True


def _needs_whole_body(tag_type: int, data: bytes) -> bool:
    """ERTMP Enhanced Video / Audio: anything but one track's coded frames (configuration,
    Metadata, multitrack, ModEx) is read whole, to find its tracks and configurations."""
    if not data:
        return False
    first = data[0]
    if tag_type == flv.TAG_VIDEO and first & 0x80:
        single_frames = first & 0x0F in (flv.PACKET_CODED_FRAMES, flv.PACKET_CODED_FRAMES_X)
        return not (single_frames and 1 <= (first >> 4) & 0x07 <= 4)
    if tag_type == flv.TAG_AUDIO and first >> 4 == flv.SOUND_FORMAT_EX_HEADER:
        return first & 0x0F != flv.PACKET_CODED_FRAMES  # AudioPacketType 1: CodedFrames
    return False


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
        logger: Optional[AnyLogger] = None,
        clock: Callable[[], float] = time.monotonic,
        buffer_ms: int = DEFAULT_BUFFER_MS,
    ) -> None:
        self.transport = transport
        self.path = pathlib.Path(path)
        self.message_stream_id = message_stream_id
        self.log: AnyLogger = logger if logger is not None else _module_logger
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
        #: Set once the end of the file has been played and announced; a seek clears it.
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
        self._reader_offset = self._offset + flv.TAG_OVERHEAD + len(tag.data)
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
                next_offset = self._offset + flv.TAG_OVERHEAD + len(tag.data)
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
