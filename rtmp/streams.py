"""RTMP 7.2.2.1 / 7.2.2.6: live streams: one publisher, many players, per app and name.

Theory of operation
-------------------
A :class:`StreamHub` maps ``(app, stream name)`` to a :class:`LiveStream`.  A
stream has at most one publisher (RTMP 7.2.2.6; a second one is refused with
``NetStream.Publish.BadName`` by the server) and any number of
:class:`LivePlayer` subscribers.  It remembers what a player needs to start
decoding in the middle of a broadcast:

* the last metadata (``onMetaData``, from ``@setDataFrame``, FLV E.5),
* the latest configuration of every track (:class:`ConfigCache`): the video and audio
  sequence headers (AVC/HEVC decoder configuration, AAC AudioSpecificConfig, FLV
  E.4.2.2 / E.4.3.2), and of Enhanced RTMP the SequenceStart of every FourCC, Opus
  MultichannelConfig and video Metadata (colorInfo), per codec and per track of a
  multitrack stream, and
* the current group of pictures: every video and audio message since the last
  video keyframe (the "GOP cache" of nginx-rtmp and SRS; of a multitrack stream, since the
  last keyframe of its lowest track).

A player that joins gets those first (with their timestamps moved to where the
GOP starts, as nginx-rtmp does), then the live messages.

Fan-out costs one chunking per message, not one per player: the publisher's
thread chunks each message once per (chunk size, message stream id) pair in
use (:func:`rtmp.chunk.encode_type0`) and hands the same ``bytes`` object to
every player's queue.  Each player has its own writer thread, which takes everything
queued in one lock round and sends it with one ``transport.write_fanout`` (one system
call per batch, not per message), which keeps the connection's chunk encoder in step.
A publisher's connection thread does better for a player that keeps up (:func:`defer_writes`):
it does not wake the player's writer per message, but sends what it queued for it itself,
without waiting, each time before it reads its socket again (one system call per read, no
thread hand-off); what does not fit at once is left to the writer thread.  It does so for
:data:`MAX_DEFERRED_PLAYERS` players (one) per read: the others' writers are woken as
above, so they send in parallel and a long fan-out does not delay the last players.

A player's queue is judged by how long its oldest item has waited, not by its size (the
queue's *sojourn time*, as CoDel judges a router's queue).  A publisher may send faster
than real time (a reconnect with a backlog, an encoder catching up, a relay of a relay):
then every queue holds seconds of media at once, for a player that reads as fast as its
link allows as much as for a slow one, and a byte budget cannot tell them apart.  How long
the oldest queued item has waited can: a player that keeps up drains any burst within
moments, one that reads slower than the stream falls behind by a second more every few
seconds, and one that does not read at all falls behind by a second a second.  So a
player is *slow* while its oldest queued item has waited more than ``max_queue_delay``
seconds (:data:`DEFAULT_MAX_QUEUE_DELAY`, 2 s: more than any burst takes to drain at line
rate, less than a viewer's patience); only then does it lose frames, whole frames, never
parts of them, and it never slows the publisher or the other players:

1. a slow player's inter-frames and audio frames are dropped, and once an inter-frame is
   dropped so is every following one until the next keyframe (a decoder cannot use the
   frames of a GOP whose earlier frame is missing);
2. a keyframe for a slow player flushes its queued media: it skips ahead to the new GOP,
   which leaves it with no lag left (a player that does not read at all so holds at most
   ``max_queue_delay`` seconds of media and one GOP);
3. sequence headers, metadata, data and status messages are never dropped, slow or not.

``max_queue_bytes`` (:data:`DEFAULT_MAX_QUEUE_BYTES`, 32 MiB) stays as a hard memory cap,
past which the same rules apply whatever the delay (media past it, and everything past
four times it: a player that far gone is stalled).  A queue holds references to the bytes
the publisher's thread chunked once for every player, so a burst queued for ten players
costs its size once, not ten times; the cap bounds what one player can keep alive after
the others took it (and ``players x max_queue_bytes`` is the worst case, for players that
dropped different frames).
"""

from __future__ import annotations

import collections
import enum
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, Generic, List, Optional, Protocol, Sequence, Tuple, TypeVar

from . import ertmp, flv
from .chunk import RAW_BYTES, encode_type0
from .logs import AnyLogger
from .message import DATA_TYPES, RELAYED_TYPES, Message, MessageType

__all__ = [
    "CONFIG_METADATA",
    "CONFIG_MULTICHANNEL",
    "CONFIG_SEQUENCE",
    "ConfigCache",
    "ConfigKey",
    "FrameKind",
    "GopAnchor",
    "MAX_CONFIGS",
    "classify",
    "config_keys",
    "keyframe_tracks",
    "FanoutSink",
    "LivePlayer",
    "LiveStream",
    "StreamHub",
    "StreamBusyError",
    "PlayerStats",
    "DEFAULT_MAX_QUEUE_BYTES",
    "DEFAULT_MAX_QUEUE_DELAY",
    "DEFAULT_MAX_GOP_BYTES",
    "HANDOVER_WINDOW",
    "defer_writes",
    "flush_deferred_writes",
    "MAX_DEFERRED_PLAYERS",
    "end_deferred_writes",
]

logger = logging.getLogger(__name__)

#: Default hard cap of one player's send queue, in bytes (about 20 s of a 12 Mbit/s stream):
#: media past it is dropped whatever the delay (see the module docstring).
DEFAULT_MAX_QUEUE_BYTES = 32 * 1024 * 1024
#: Default ``max_queue_delay``: seconds a player's oldest queued item may wait before the
#: player counts as slow and loses frames (see the module docstring).
DEFAULT_MAX_QUEUE_DELAY = 2.0
#: Seconds after a reconnect request during which a publisher's stream may be taken over by
#: the next publisher of its name (ERTMP Reconnect Request; :meth:`LiveStream.allow_handover`).
HANDOVER_WINDOW = 30.0
#: Default limit of the GOP cache; a longer GOP is not cached (late joiners wait).
DEFAULT_MAX_GOP_BYTES = 16 * 1024 * 1024
#: A player whose queue holds this many times its ``max_queue_bytes`` is stalled: even
#: headers and status messages are dropped for it.
_HARD_LIMIT_FACTOR = 4


class FrameKind(enum.IntEnum):
    """How a media or data message is treated by the GOP cache and the drop policy."""

    CONFIG = 0
    """Sequence header or metadata: cached, never dropped."""
    KEYFRAME = 1
    """Video keyframe: starts a GOP."""
    INTERFRAME = 2
    """Any other video frame: needs the frames before it back to the keyframe."""
    AUDIO = 3
    """An audio frame: decodable on its own once the sequence header is known."""
    DATA = 4
    """Other data messages (cue points, text) and video command frames (FLV E.4.3.1
    FrameType 5): small, kept in order, not cached."""
    CONTROL = 5
    """Status and user control messages queued for a player: never dropped."""


# The kinds as module constants for the per-message paths: on Python 3.11 an attribute of
# an Enum class costs ~0.15 us (EnumType has a __getattr__), a global ~0.02 us.
_CONFIG = FrameKind.CONFIG
_KEYFRAME = FrameKind.KEYFRAME
_INTERFRAME = FrameKind.INTERFRAME
_AUDIO = FrameKind.AUDIO
_DATA = FrameKind.DATA
_CONTROL = FrameKind.CONTROL
_VIDEO_TYPE = MessageType.VIDEO
_AUDIO_TYPE = MessageType.AUDIO

# FLV E.4.3.1 / E.4.2.1: the first bytes of the common legacy headers, classified
# without parsing: AVC keyframe (0x17) and inter-frame (0x27), AAC (0xAF); for all three
# the second byte is the AVCPacketType / AACPacketType (0 = sequence header).
_AVC_KEY_BYTE = 0x17
_AVC_INTER_BYTE = 0x27
_AAC_BYTE = 0xAF
_SEQUENCE_HEADER = 0
_END_OF_SEQUENCE = flv.AVC_END_OF_SEQUENCE
#: ERTMP Enhanced Video / Audio: the packet types of one track's coded frames, read from
#: the first byte (no ModEx, no Multitrack): the fast path of nearly every enhanced message.
_EX_VIDEO_FRAMES = frozenset({ertmp.VideoPacketType.CODED_FRAMES, ertmp.VideoPacketType.CODED_FRAMES_X})
_EX_AUDIO_FRAMES = ertmp.AudioPacketType.CODED_FRAMES
_SINGLE_TRACK = (0,)


def _classify_video(data: bytes) -> FrameKind:
    """FLV E.4.3.1 / ERTMP Enhanced Video: the kind of one video payload."""
    first = data[0] if data else 0
    if (first == _AVC_KEY_BYTE or first == _AVC_INTER_BYTE) and len(data) > 1:
        packet_type = data[1]  # the fast path, for nearly every message
        if packet_type == _SEQUENCE_HEADER:
            return _CONFIG  # FLV E.4.3.1: AVCDecoderConfigurationRecord
        if packet_type == _END_OF_SEQUENCE or first == _AVC_INTER_BYTE:
            return _INTERFRAME
        return _KEYFRAME
    if first & 0x80:
        return _classify_enhanced_video(data)
    try:
        header = flv.VideoTagHeader.parse(data)
    except flv.FLVError:
        return _INTERFRAME  # undecodable: relayed, never starts a GOP
    if header.frame_type == flv.FRAME_COMMAND:
        return _DATA  # FLV E.4.3.1 FrameType 5: not a picture; relayed in order
    if header.is_sequence_header:
        return _CONFIG
    if header.packet_type == _END_OF_SEQUENCE:
        return _INTERFRAME  # end of sequence: no picture, never starts a GOP
    return _KEYFRAME if header.is_keyframe else _INTERFRAME


def _classify_enhanced_video(data: bytes) -> FrameKind:
    """ERTMP Enhanced Video: CONFIG for a SequenceStart or a Metadata packet (colorInfo, which
    "MUST be processed in time to affect the first frame", ERTMP Metadata Frame), DATA for a
    command frame, KEYFRAME for coded frames of VideoFrameType 1, else INTERFRAME."""
    first = data[0]
    frame_type = (first >> 4) & 0x07
    if first & 0x0F in _EX_VIDEO_FRAMES and len(data) >= 5 and 1 <= frame_type <= 4:
        # One track's CodedFrames(X): no ModEx, no Multitrack; the frame type decides.
        return _KEYFRAME if frame_type == flv.FRAME_KEY else _INTERFRAME
    try:  # ModEx, Multitrack, sequence starts, Metadata, commands: the whole header
        header = ertmp.parse_video(data, allow_unknown=True)  # a relay forwards any FourCC
    except ertmp.DecodeError:
        return _INTERFRAME  # undecodable: relayed, never starts a GOP
    if header.is_command:
        return _DATA  # VideoFrameType 5 with a VideoCommand: not a picture
    if any(track.is_config for track in header.tracks):
        return _CONFIG
    # SequenceEnd carries no picture; a Metadata packet's frame type means nothing.
    return _KEYFRAME if header.is_keyframe else _INTERFRAME


def _classify_audio(data: bytes) -> FrameKind:
    """FLV E.4.2.1 / ERTMP Enhanced Audio: configuration (CONFIG: an AAC sequence header, a
    SequenceStart of any FourCC, a MultichannelConfig) or a frame (AUDIO)."""
    if len(data) > 1 and data[0] == _AAC_BYTE:  # the fast path: AAC 44 kHz stereo
        return _CONFIG if data[1] == _SEQUENCE_HEADER else _AUDIO
    if data and data[0] >> 4 == flv.SOUND_FORMAT_EX_HEADER:
        if data[0] & 0x0F == _EX_AUDIO_FRAMES and len(data) >= 5:
            return _AUDIO  # one track's CodedFrames: the fast path
        tracks = ertmp.audio_tracks(data)  # () when malformed: relayed as a frame
        return _CONFIG if any(t.is_config for t in tracks) else _AUDIO
    try:
        header = flv.AudioTagHeader.parse(data)
    except flv.FLVError:
        return _AUDIO
    return _CONFIG if header.is_sequence_header else _AUDIO


def classify(message: Message) -> FrameKind:
    """FLV E.4.2 / E.4.3 (and ERTMP): the :class:`FrameKind` of a media or data message."""
    kind = message.type
    if kind == _VIDEO_TYPE:
        return _classify_video(message.data)
    if kind == _AUDIO_TYPE:
        return _classify_audio(message.data)
    if kind in DATA_TYPES:
        return _DATA
    return _CONTROL


# -- codec configuration per track -------------------------------------------------------------

#: What a configuration message configures (the second part of a :data:`ConfigKey`).
CONFIG_SEQUENCE = "sequence"
"""A decoder configuration: AVC/HEVC/AAC sequence header, ERTMP SequenceStart."""
CONFIG_METADATA = "metadata"
"""ERTMP Metadata Frame (video): colorInfo."""
CONFIG_MULTICHANNEL = "multichannel"
"""ERTMP Enhanced Audio MultichannelConfig."""
#: ``(message type, what, track id)``: one configuration of one track.
ConfigKey = Tuple[int, str, int]
#: The most configurations a :class:`ConfigCache` keeps (3 per track: 5 tracks of each type).
MAX_CONFIGS = 32


def config_keys(message_type: int, data: bytes) -> Tuple[ConfigKey, ...]:
    """FLV E.4.2.2 / E.4.3.2 and ERTMP: the configurations an audio or video payload carries,
    one :data:`ConfigKey` per track (ERTMP Multitrack: one message may configure many); ``()``
    for anything else.  A legacy header configures track 0, as a single-track enhanced one
    does (ERTMP Multitrack Streaming: "trackId 0 be used for the default track")."""
    if message_type == MessageType.VIDEO:
        if data and data[0] & 0x80:
            tracks = ertmp.video_tracks(data)
        else:
            return ((message_type, CONFIG_SEQUENCE, 0),) if (
                _classify_video(data) == FrameKind.CONFIG) else ()
    elif message_type == MessageType.AUDIO:
        if data and data[0] >> 4 == flv.SOUND_FORMAT_EX_HEADER:
            tracks = ertmp.audio_tracks(data)
        else:
            return ((message_type, CONFIG_SEQUENCE, 0),) if (
                _classify_audio(data) == FrameKind.CONFIG) else ()
    else:
        return ()
    keys: Dict[ConfigKey, None] = {}
    for track in tracks:
        if track.is_sequence_start:
            keys[(message_type, CONFIG_SEQUENCE, track.track_id)] = None
        elif track.is_config:
            what = CONFIG_METADATA if message_type == MessageType.VIDEO else CONFIG_MULTICHANNEL
            keys[(message_type, what, track.track_id)] = None
    return tuple(keys)


def keyframe_tracks(data: bytes) -> Tuple[int, ...]:
    """ERTMP Enhanced Video: the track ids whose coded frames in ``data`` are keyframes
    (``(0,)`` for a legacy or single-track message: the default track)."""
    if not data or not data[0] & 0x80 or data[0] & 0x0F in _EX_VIDEO_FRAMES:
        return _SINGLE_TRACK
    return tuple(track.track_id for track in ertmp.video_tracks(data) if track.is_keyframe) \
        or _SINGLE_TRACK


class GopAnchor:
    """ERTMP Multitrack: which keyframes start a group of pictures -- those of the lowest
    track that has keyframes (track 0, the default, for every single-track stream).  Another
    track's keyframe joins the current GOP, so the default track stays decodable from its
    start.  Used by the live GOP cache and by the recording parts' cut points."""

    def __init__(self) -> None:
        self.track: Optional[int] = None

    def starts_gop(self, data: bytes) -> bool:
        """Whether a video keyframe payload starts a new GOP (and remember its track)."""
        tracks = keyframe_tracks(data)
        lowest = min(tracks)
        if self.track is None or lowest < self.track:
            self.track = lowest
        return self.track in tracks

    def reset(self) -> None:
        self.track = None


class _Media(Protocol):
    """A message or an FLV tag: its type (8 audio, 9 video) and payload."""

    @property
    def type(self) -> int: ...
    @property
    def data(self) -> bytes: ...


_MediaT = TypeVar("_MediaT", bound=_Media)


class ConfigCache(Generic[_MediaT]):
    """FLV E.4.2.2 / E.4.3.2 and ERTMP: the latest configuration of every track, which a
    player that starts in the middle (a late joiner, a new recording part, a VOD seek)
    needs before the first frame.

    Kept per :data:`ConfigKey` -- (type, what, track): sequence headers of every codec
    (AVC, HEVC, AAC, and the SequenceStart of any FourCC: Opus, FLAC, AC-3, AV1, VP9, ...),
    Opus MultichannelConfig and video Metadata (colorInfo), each per track.  A later one
    with the same key replaces the earlier; one multitrack message may hold several keys.
    Not thread-safe: its owner locks.
    """

    def __init__(self, limit: int = MAX_CONFIGS) -> None:
        self.limit = limit
        self._items: Dict[ConfigKey, _MediaT] = {}

    def __len__(self) -> int:
        return len(self._items)

    def note(self, item: _MediaT, keys: Optional[Sequence[ConfigKey]] = None) -> bool:
        """Keep ``item`` if it carries configuration (``keys``, or :func:`config_keys`);
        True if it did."""
        if keys is None:
            keys = config_keys(item.type, item.data)
        for key in keys:
            self._items.pop(key, None)  # the latest one, last in order
            self._items[key] = item
        while len(self._items) > self.limit:
            del self._items[next(iter(self._items))]
        return bool(keys)

    def clear(self) -> None:
        self._items.clear()

    def items(self) -> List[_MediaT]:
        """Each kept message once: video before audio, each in the order they arrived."""
        ordered: Dict[int, _MediaT] = {}
        for key in sorted(self._items, key=lambda k: -k[0]):  # stable: video (9) first
            item = self._items[key]
            ordered[id(item)] = item
        return list(ordered.values())

    def get(self, message_type: int, what: str = CONFIG_SEQUENCE,
            track_id: Optional[int] = None) -> Optional[_MediaT]:
        """The configuration of one track (``track_id`` None: the lowest, the default)."""
        if track_id is not None:
            return self._items.get((message_type, what, track_id))
        found = [key for key in self._items if key[0] == message_type and key[1] == what]
        return self._items[min(found, key=lambda k: k[2])] if found else None

    def pairs(self) -> List[Tuple[ConfigKey, _MediaT]]:
        """``(key, message)`` of every kept configuration, video first, in arrival order."""
        return sorted(self._items.items(), key=lambda pair: -pair[0][0])


class FanoutSink(Protocol):
    """What a player writes to: a :class:`rtmp.transport.Transport` (or anything alike)."""

    @property
    def out_chunk_size(self) -> int: ...

    def write_fanout(self, items: Sequence[Tuple[Optional[bytes], Message, int]]) -> None:
        """Send ``(bytes or None, message, chunk size of the bytes)`` items in order, at once.

        A sink may also have ``write_fanout_nowait(items) -> Optional[int]`` (see
        :meth:`rtmp.transport.Transport.write_fanout_nowait`; used under
        :func:`defer_writes`); its ``write_fanout`` then also takes items of chunk size
        :data:`rtmp.chunk.RAW_BYTES`, sent as they are.
        """


@dataclass
class PlayerStats:
    """Counters of one player (read them under no lock: they are only indicative)."""

    sent_messages: int = 0
    sent_bytes: int = 0
    sent_batches: int = 0
    dropped_messages: int = 0
    dropped_bytes: int = 0
    filtered_messages: int = 0
    max_queued_bytes: int = 0


# One queued item: pre-chunked bytes (or None: the sink chunks the message), the message,
# its kind, its size in the queue, the chunk size the bytes were made with, and when it
# was queued (``time.monotonic()``: the drop policy's sojourn time).
_Item = Tuple[Optional[bytes], Message, FrameKind, int, int, float]

#: The most bytes the writer sends in one write (one lock round, one system call): large
#: enough to cost one call per many messages, small enough for a send to finish well
#: within a write timeout.
MAX_BATCH_BYTES = 256 * 1024


class LivePlayer:
    """RTMP 7.2.2.1: one subscriber of a live stream, with a bounded queue and a writer thread.

    ``offer`` never blocks: it queues or drops (see the module docstring): frames are
    dropped once the oldest queued item waited over ``max_queue_delay`` seconds, or past
    the hard cap ``max_queue_bytes``.  The
    writer thread takes everything queued (up to ``MAX_BATCH_BYTES``) in one lock
    round and sends it with one :meth:`FanoutSink.write_fanout`; if sending fails (the
    peer went away, or a send outlived the transport's write timeout), ``on_failure``
    is called once with the exception and the player stops.
    """

    def __init__(
        self,
        sink: FanoutSink,
        message_stream_id: int,
        *,
        name: str = "player",
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        log: Optional[AnyLogger] = None,
        on_failure: Optional[Callable[[BaseException], None]] = None,
        max_queue_delay: float = DEFAULT_MAX_QUEUE_DELAY,
    ) -> None:
        if max_queue_bytes <= 0:
            raise ValueError("max_queue_bytes must be positive")
        if not max_queue_delay > 0:
            raise ValueError("max_queue_delay must be positive")
        self.sink = sink
        self.message_stream_id = message_stream_id
        self.name = name
        self.max_queue_bytes = max_queue_bytes
        #: Seconds the oldest queued item may wait before the player counts as slow.
        self.max_queue_delay = max_queue_delay
        self.log: AnyLogger = log or logger
        self.on_failure = on_failure
        self.stats = PlayerStats()
        #: When the player was made (``time.monotonic()``; the HTTP API's uptime).
        self.created = time.monotonic()
        #: RTMP 7.2.2.4 / 7.2.2.5: receiveAudio / receiveVideo flags.
        self.receive_audio = True
        self.receive_video = True
        #: The chunk size the player's connection sends with (RTMP 5.4.1), as last seen
        #: by the writer: fan-out chunks for it; a stale value costs a re-chunking only.
        self.chunk_size = sink.out_chunk_size
        self._cond = threading.Condition(threading.Lock())
        self._queue: Deque[_Item] = collections.deque()
        self._queued_bytes = 0
        self._writer_waiting = False  # notify only then: a notify per message is costly
        self._drain_waiters = 0
        self._writing = False  # the writer took a batch and is sending it
        self._flushing = False  # another thread sends a batch (flush_deferred_writes)
        self._flush_pending = False  # ... will, before it waits for input
        self._write_nowait: Optional[Callable[[Sequence[Tuple[Optional[bytes], Message, int]]],
                                              Optional[int]]] = getattr(
            sink, "write_fanout_nowait", None)
        self._lazy = False  # start(lazy=True): the writer starts with the next item
        self._await_keyframe = False
        self._skipped_at = 0.0  # when queued media was last flushed (_purge_media)
        self._paused = False
        self._closed = False
        self._failed: Optional[BaseException] = None
        self._thread: Optional[threading.Thread] = None

    # -- state ----------------------------------------------------------------------------

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting in the queue now."""
        return self._queued_bytes

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self, lazy: bool = False) -> None:
        """Start the writer thread (named after the player).

        ``lazy``: write what is queued now on the calling thread, and start the
        writer only once more is queued: a player that waits for a publisher, or
        leaves before one comes, costs no thread (a probing session's play is one
        write and no thread start or join).
        """
        with self._cond:
            if self._thread is not None or self._lazy or self._closed:
                return
            if not lazy:
                self._start_writer()
                return
            self._lazy = True
            batch = self._take_locked() if self._queue else None
        if batch is not None:
            self._write_batch(batch)
        with self._cond:
            self._writing = False
            if self._queue and not self._closed:
                self._start_writer()
            elif self._drain_waiters:
                self._cond.notify_all()

    def _start_writer(self) -> None:
        """Start the writer thread (with the lock held)."""
        self._thread = threading.Thread(target=self._run, name=f"rtmp-play-{self.name}")
        self._thread.start()

    # -- queueing -------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Queue a control or status message, in order with the media; never dropped."""
        with self._cond:
            self._put(None, message, FrameKind.CONTROL, 0)

    def offer(self, data: Optional[bytes], message: Message, kind: FrameKind,
              chunk_size: int = 0) -> bool:
        """Queue a media/data message, or drop it; returns whether it was queued.

        ``data``: its pre-chunked bytes, made with ``chunk_size`` (default: the
        player's :attr:`chunk_size`), or None to have the sink chunk it.
        """
        with self._cond:
            return self._put(data, message, kind, chunk_size or self.chunk_size)

    def _put(self, data: Optional[bytes], message: Message, kind: FrameKind,
             chunk_size: int) -> bool:
        """Queue one item if the drop policy admits it (with the lock held)."""
        if self._closed:
            return False
        size = len(data) if data is not None else len(message.data) + 12
        if not self._admit(kind, size):
            return False
        if kind == _KEYFRAME:
            self._await_keyframe = False
        self._queue.append((data, message, kind, size, chunk_size, time.monotonic()))
        self._queued_bytes += size
        if self._queued_bytes > self.stats.max_queued_bytes:
            self.stats.max_queued_bytes = self._queued_bytes
        if self._writer_waiting:
            deferred = getattr(_deferred, "players", None)
            if deferred is None or (len(deferred) >= MAX_DEFERRED_PLAYERS
                                    and not self._flush_pending):
                self._writer_waiting = False
                self._cond.notify()
            elif not self._flush_pending:
                # defer_writes(): this thread sends it itself before it waits for input.
                self._flush_pending = True
                deferred.append(self)
        elif self._lazy and self._thread is None and not self._writing:
            self._start_writer()  # the first item after a lazy start
        return True

    def _admit(self, kind: FrameKind, size: int) -> bool:
        """The drop policy (see the module docstring); called with the lock held."""
        if kind == _CONFIG or kind == _CONTROL or kind == _DATA:
            if self._queued_bytes + size > self.max_queue_bytes * _HARD_LIMIT_FACTOR:
                return self._drop(size)  # stalled far beyond its cap
            return True
        # Media from here on (module constants: this runs per message per player).
        if kind == _AUDIO:
            if not self.receive_audio:
                self.stats.filtered_messages += 1
                return False
        elif not self.receive_video:
            self.stats.filtered_messages += 1
            self._await_keyframe = True
            return False
        if self._paused:
            self.stats.filtered_messages += 1
            self._await_keyframe = True  # RTMP 7.2.2.8: resume at a keyframe
            return False
        if kind == _INTERFRAME and self._await_keyframe:
            return self._drop(size)
        over_cap = self._queued_bytes + size > self.max_queue_bytes
        if not over_cap and not self._slow():
            return True
        if kind == _KEYFRAME:
            # A new GOP for a slow player: everything queued is stale; skip ahead.
            self._purge_media("over %d bytes" % self.max_queue_bytes if over_cap
                              else "waited over %g s" % self.max_queue_delay)
            return True
        if kind == _INTERFRAME:
            self._await_keyframe = True  # the rest of this GOP is undecodable now
        return self._drop(size)

    def _slow(self) -> bool:
        """Whether the oldest queued item waited over ``max_queue_delay`` (lock held)."""
        queue = self._queue
        if not queue:
            return False
        # After a skip the lag counts from the skip: the headers and statuses kept at the
        # head of the queue are older, but the player has just caught up with the stream.
        since = max(queue[0][5], self._skipped_at)
        return time.monotonic() - since > self.max_queue_delay

    def _drop(self, size: int) -> bool:
        self.stats.dropped_messages += 1
        self.stats.dropped_bytes += size
        return False

    def _purge_media(self, why: str = "paused") -> None:
        kept: Deque[_Item] = collections.deque()
        kept_bytes = 0
        for item in self._queue:
            if item[2] in (_KEYFRAME, _INTERFRAME, _AUDIO):
                self._drop(item[3])
            else:
                kept.append(item)
                kept_bytes += item[3]
        self.log.debug("%s: queue %s, skipped to the next keyframe", self.name, why)
        self._queue.clear()  # in place: the writer may hold a reference to the deque
        self._queue.extend(kept)
        self._queued_bytes = kept_bytes
        self._skipped_at = time.monotonic()

    def await_keyframe(self) -> None:
        """Drop video inter-frames until the next keyframe (nginx-rtmp's ``wait_key``).

        For a player that starts without a cached GOP: the frames before the next
        keyframe reference pictures it never got.
        """
        with self._cond:
            self._await_keyframe = True

    # -- control --------------------------------------------------------------------------

    def pause(self, paused: bool, statuses: Sequence[Message] = ()) -> None:
        """RTMP 7.2.2.8: while paused, live media is skipped; it resumes at a keyframe.

        ``statuses`` (Pause.Notify, or StreamBegin + Unpause.Notify) are queued in the
        same step, after the media sent before the pause and before any sent after
        the resume.
        """
        with self._cond:
            self._paused = paused
            if paused:
                self._purge_media()
                self._await_keyframe = True
            for message in statuses:
                self._put(None, message, FrameKind.CONTROL, 0)

    def close(self, timeout: Optional[float] = 5.0) -> None:
        """Stop the writer thread after discarding the queue; idempotent."""
        with self._cond:
            self._close_queue()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def drain(self, timeout: float) -> bool:
        """Wait until everything queued has been written (for orderly ends); True if so."""
        flush_deferred_writes()  # (what this thread queued and has not sent yet)
        with self._cond:
            self._drain_waiters += 1
            try:
                return self._cond.wait_for(
                    lambda: (not self._queue and not self._writing) or self._closed,
                    timeout=timeout,
                ) and not self._queue and not self._writing
            finally:
                self._drain_waiters -= 1

    # -- writer thread --------------------------------------------------------------------

    def _take_batch(self) -> Optional[List[_Item]]:
        """Wait for items and take up to MAX_BATCH_BYTES of them; None once closed."""
        with self._cond:
            self._writing = False  # the previous batch (if any) is written
            if not self._queue and self._drain_waiters:
                self._cond.notify_all()
            while (not self._queue or self._flushing) and not self._closed:  # (order)
                self._writer_waiting = True
                self._cond.wait()
            self._writer_waiting = False
            if self._closed:
                return None
            return self._take_locked()

    def _take_locked(self) -> List[_Item]:
        """Take up to MAX_BATCH_BYTES of the queue (with the lock held, queue not empty)."""
        queue = self._queue
        if self._queued_bytes <= MAX_BATCH_BYTES:
            batch = list(queue)  # the usual case: everything
            queue.clear()
            self._queued_bytes = 0
        else:
            batch, taken = [], 0
            while queue and taken < MAX_BATCH_BYTES:
                item = queue.popleft()
                batch.append(item)
                taken += item[3]
            self._queued_bytes -= taken
        self._writing = True
        return batch

    def _write_deferred(self) -> None:
        """Send what is queued from the calling thread (see :func:`defer_writes`), never
        waiting, with the sink's ``write_fanout_nowait``; what does not fit is the sink's
        to send first, and the writer is woken to do it.  If the sink cannot try now, the
        writer is woken for the batch."""
        with self._cond:
            self._flush_pending = False
            if not self._queue or self._closed:
                return
            if self._write_nowait is None or not self._writer_waiting or self._writing:
                self._writer_waiting = False
                self._cond.notify()
                return
            batch = self._take_locked()
            self._flushing = True  # the writer stays asleep meanwhile (message order)
        left: Optional[int] = None
        try:
            left = self._write_nowait([(item[0], item[1], item[4]) for item in batch])
        except Exception:  # noqa: BLE001 - nothing sent: the writer meets the error itself
            pass
        self.chunk_size = self.sink.out_chunk_size
        with self._cond:
            self._flushing = self._writing = False
            if left is None:  # not tried: the batch goes back where it was, for the writer
                self._queue.extendleft(reversed(batch))
                self._queued_bytes += sum(item[3] for item in batch)
            else:
                self._count_sent(batch)
                if left and not self._queue:
                    # The sink holds the rest: an empty item makes the writer send it.
                    self._queue.append((b"", batch[-1][1], _CONTROL, 0, RAW_BYTES, batch[-1][5]))
                    self.stats.sent_messages -= 1  # (the writer counts the empty item)
            if self._queue:
                self._writer_waiting = False
                self._cond.notify()
            elif self._drain_waiters:
                self._cond.notify_all()

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None or not self._write_batch(batch):
                return

    def _write_batch(self, batch: List[_Item]) -> bool:
        """Send one batch; False (and the player stopped) if that failed."""
        sink = self.sink
        try:
            sink.write_fanout([(item[0], item[1], item[4]) for item in batch])
        except Exception as exc:  # noqa: BLE001 - any failure ends this player only
            self._fail(exc)
            return False
        self.chunk_size = sink.out_chunk_size  # once per batch, not per message
        self._count_sent(batch)
        return True

    def _count_sent(self, batch: List[_Item]) -> None:
        stats = self.stats
        stats.sent_batches += 1
        stats.sent_messages += len(batch)
        stats.sent_bytes += sum(item[3] for item in batch)

    def _close_queue(self) -> None:
        """Closed, the queue discarded, every waiter woken (with the lock held)."""
        self._closed = True
        self._queue.clear()
        self._queued_bytes = 0
        self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            self._close_queue()
        self._failed = exc
        self.log.info("%s: send failed, player stopped: %s", self.name, exc)
        if self.on_failure is not None:
            try:
                self.on_failure(exc)
            except Exception:  # noqa: BLE001
                self.log.exception("%s: on_failure callback raised", self.name)


#: The most players one thread in :func:`defer_writes` writes to itself per flush; the
#: writers of the others are woken as usual.  Its sends are serial, and each waits for the
#: GIL again after the system call: writing to all of 10 players this way, the latency
#: benchmark's p99 was worse than before in 5 of 6 paired runs (3.5-552 ms against
#: 5.1-17 ms, a loaded machine); with one, as good as before (3.3-55 ms against 5.1-65).
MAX_DEFERRED_PLAYERS = 1
#: The players whose writer a thread in :func:`defer_writes` did not wake (``players``).
_deferred = threading.local()


def defer_writes() -> None:
    """From now on, the calling thread does not wake the writer thread of an idle player it
    queues a message for: :func:`flush_deferred_writes`, which the thread must call before
    it waits for anything, sends what it queued itself, without waiting (what does not fit
    at once is left to the writer).  A publisher's connection thread does this around its
    read loop: a player that keeps up gets one system call per read of the publisher's
    socket and no thread hand-off."""
    _deferred.players = []


def flush_deferred_writes() -> None:
    """Send what the calling thread queued since its last flush (see :func:`defer_writes`)."""
    players = getattr(_deferred, "players", None)
    if players:
        for player in players:
            player._write_deferred()
        players.clear()


def end_deferred_writes() -> None:
    """Flush, and wake writers at once again (the end of :func:`defer_writes`)."""
    flush_deferred_writes()
    _deferred.players = None


class StreamBusyError(Exception):
    """RTMP 7.2.2.6: the stream already has a publisher (``NetStream.Publish.BadName``)."""


@dataclass
class LiveStream:
    """One live stream: its publisher, its players and what late joiners need first."""

    app: str
    name: str
    publisher: Optional[object] = None
    """An opaque token of the publishing session (None while nobody publishes)."""
    metadata: Optional[Message] = None
    """The last ``onMetaData`` data message (FLV E.5), as players receive it."""
    configs: ConfigCache[Message] = field(default_factory=ConfigCache)
    """The latest configuration of every track (sequence headers of every codec, ERTMP
    SequenceStart, MultichannelConfig and Metadata, per track): late joiners get them all."""
    messages_in: int = 0
    """Messages the publisher sent since the stream was created."""
    bytes_in: int = 0
    video_frames_in: int = 0
    """Video frames (key and inter) the publisher sent (the HTTP API's measured frame rate)."""
    published_at: float = 0.0
    """When the current publisher started (``time.monotonic()``)."""
    max_gop_bytes: int = DEFAULT_MAX_GOP_BYTES
    players: List[LivePlayer] = field(default_factory=list)
    relays: List[LivePlayer] = field(default_factory=list)
    """Players that republish the stream elsewhere (:mod:`rtmp.push`): fed like players,
    not counted or told as players."""
    _gop: List[Tuple[Message, FrameKind]] = field(default_factory=list)
    _gop_bytes: int = 0
    _gop_valid: bool = False
    _gop_anchor: GopAnchor = field(default_factory=GopAnchor)  # ERTMP Multitrack
    _handover_from: Optional[object] = None  # ERTMP Reconnect Request: may be taken over
    _handover_until: float = 0.0  # ... until this time.monotonic()
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def key(self) -> Tuple[str, str]:
        return (self.app, self.name)

    @property
    def live(self) -> bool:
        """Whether someone publishes now."""
        return self.publisher is not None

    @property
    def gop_length(self) -> int:
        """Messages in the GOP cache now."""
        return len(self._gop)

    @property
    def video_config(self) -> Optional[Message]:
        """The default video track's sequence header (FLV E.4.3.2 / ERTMP SequenceStart)."""
        with self._lock:
            return self.configs.get(MessageType.VIDEO)

    @property
    def audio_config(self) -> Optional[Message]:
        """The default audio track's sequence header (FLV E.4.2.2 / ERTMP SequenceStart)."""
        with self._lock:
            return self.configs.get(MessageType.AUDIO)

    def track_configs(self) -> List[Tuple[ConfigKey, Message]]:
        """Every kept configuration with its (type, what, track) key, in arrival order."""
        with self._lock:
            return self.configs.pairs()

    def config_messages(self) -> List[Message]:
        """Every track's latest configuration, as a late joiner gets them (video first)."""
        with self._lock:
            return self.configs.items()

    # -- the publisher's side --------------------------------------------------------------

    def allow_handover(self, owner: object, seconds: float = HANDOVER_WINDOW) -> None:
        """ERTMP Reconnect Request: the server asked ``owner``, the publisher, to reconnect;
        the next publisher of this name within ``seconds`` takes the stream over
        (:meth:`StreamHub.publish`) and players see one stream go on, without
        UnpublishNotify or Stream EOF."""
        with self._lock:
            if self.publisher is owner:
                self._handover_from = owner
                self._handover_until = time.monotonic() + seconds

    def handover_open(self) -> bool:
        """True while the publisher the server asked to reconnect may be taken over."""
        return (self.publisher is not None and self.publisher is self._handover_from
                and time.monotonic() < self._handover_until)


    def set_metadata(self, message: Optional[Message]) -> None:
        """FLV E.5: the ``onMetaData`` (from ``@setDataFrame``) late joiners get; None clears it."""
        with self._lock:
            self.metadata = message
        if message is not None:
            self.broadcast(message, FrameKind.CONFIG)

    def publish_message(self, message: Message) -> FrameKind:
        """Cache (sequence headers, GOP) and fan out one media or data message.

        ValueError for any other type (RTMP 7.1: control messages and commands belong
        to one session; relayed, they would act on every player's).
        """
        if message.type not in RELAYED_TYPES:
            raise ValueError(f"only audio, video and data messages are relayed, "
                             f"not type {message.type}")
        kind = classify(message)
        with self._lock:
            self.messages_in += 1
            self.bytes_in += len(message.data)
            if kind == _CONFIG:
                if not self.configs.note(message):
                    # Classified by its first bytes but no header parses: kept whole.
                    self.configs.note(message, ((int(message.type), CONFIG_SEQUENCE, 0),))
            elif kind == _KEYFRAME and self._gop_anchor.starts_gop(message.data):
                self.video_frames_in += 1
                self._gop_bytes = len(message.data)
                self._gop_valid = self._gop_bytes <= self.max_gop_bytes
                self._gop = [(message, kind)] if self._gop_valid else []
            elif kind != _DATA:  # frames: into the GOP (DATA is not cached)
                if kind != _AUDIO:
                    self.video_frames_in += 1
                if self._gop_valid:
                    self._gop_bytes += len(message.data)
                    if self._gop_bytes > self.max_gop_bytes:
                        # Too long to cache: late joiners wait for the next keyframe.
                        self._gop, self._gop_bytes, self._gop_valid = [], 0, False
                    else:
                        self._gop.append((message, kind))
            self._fan_out(message, kind)
        return kind

    def broadcast(self, message: Message, kind: FrameKind) -> None:
        """Fan out one message without caching it."""
        with self._lock:
            self._fan_out(message, kind)

    def _fan_out(self, message: Message, kind: FrameKind) -> None:
        """Chunk once per (chunk size, msid) in use; queue the same bytes for every player."""
        encoded: Dict[Tuple[int, int], Tuple[bytes, Message]] = {}
        for player in (self.players + self.relays) if self.relays else self.players:
            chunk_size = player.chunk_size
            key = (chunk_size, player.message_stream_id)
            entry = encoded.get(key)
            if entry is None:
                out = message
                if message.message_stream_id != key[1]:
                    out = message.replace(message_stream_id=key[1])
                entry = encoded[key] = (encode_type0(out, chunk_size), out)
            player.offer(entry[0], entry[1], kind, chunk_size)

    def reset_publisher_state(self) -> None:
        """Forget headers, metadata and the GOP (the publisher left)."""
        with self._lock:
            self._handover_from = None
            self.metadata = None
            self.configs.clear()
            self._gop, self._gop_bytes, self._gop_valid = [], 0, False
            self._gop_anchor.reset()

    # -- the players' side -----------------------------------------------------------------

    def attach(self, player: LivePlayer, first: Sequence[Message] = (), relay: bool = False) -> None:
        """Add a player; queue ``first``, then metadata, sequence headers and the current GOP.

        ``relay``: the player republishes the stream elsewhere (:mod:`rtmp.push`): it is
        kept in ``relays``, not ``players``.

        ``first`` are the player's status messages (RTMP 7.2.2.1: StreamBegin,
        Play.Reset, Play.Start).  They are queued under the stream's lock, so no media
        can reach the player before them and none published after them is missed.
        """
        with self._lock:
            for message in first:
                player.send(message)
            if self.publisher is not None:
                if not self._gop:
                    # No GOP to start from (too long to cache, or the publisher began
                    # mid-GOP): the player starts at the next keyframe.
                    player.await_keyframe()
                msid = player.message_stream_id
                chunk_size = player.chunk_size
                start = self._gop[0][0].timestamp if self._gop else None
                for cached, kind in self._late_join_messages():
                    out = cached.replace(message_stream_id=msid)
                    if cached.type in DATA_TYPES:
                        # As nginx-rtmp: metadata at time 0 (ffmpeg's FLV demuxer turns a
                        # script tag with a later time into a data stream of its own).
                        out = out.replace(timestamp=0)
                    elif start is not None and kind == FrameKind.CONFIG:
                        out = out.replace(timestamp=start)  # as nginx-rtmp: at the GOP's time
                    player.offer(encode_type0(out, chunk_size), out, kind, chunk_size)
            (self.relays if relay else self.players).append(player)

    def _late_join_messages(self) -> List[Tuple[Message, FrameKind]]:
        first: List[Tuple[Message, FrameKind]] = []
        if self.metadata is not None:
            first.append((self.metadata, FrameKind.CONFIG))
        first.extend((config, FrameKind.CONFIG) for config in self.configs.items())
        return first + list(self._gop)

    def detach(self, player: LivePlayer) -> None:
        with self._lock:
            if player in self.players:
                self.players.remove(player)
            elif player in self.relays:
                self.relays.remove(player)

    def snapshot_players(self) -> List[LivePlayer]:
        with self._lock:
            return list(self.players)


class StreamHub:
    """The live streams of a server, by ``(app, stream name)``; thread-safe."""

    def __init__(self, max_gop_bytes: int = DEFAULT_MAX_GOP_BYTES) -> None:
        self.max_gop_bytes = max_gop_bytes
        self._lock = threading.Lock()
        self._streams: Dict[Tuple[str, str], LiveStream] = {}
        #: Frames dropped for players that have left (the HTTP API's running total).
        self.ended_players_dropped = 0

    def _get_or_create(self, app: str, name: str) -> LiveStream:
        stream = self._streams.get((app, name))
        if stream is None:
            stream = LiveStream(app, name, max_gop_bytes=self.max_gop_bytes)
            self._streams[(app, name)] = stream
        return stream

    def _discard_if_idle(self, stream: LiveStream) -> None:
        if stream.publisher is None and not stream.players:
            if self._streams.get(stream.key) is stream:
                del self._streams[stream.key]

    def get(self, app: str, name: str) -> Optional[LiveStream]:
        with self._lock:
            return self._streams.get((app, name))

    def is_live(self, app: str, name: str) -> bool:
        """Whether ``app/name`` has a publisher now."""
        stream = self.get(app, name)
        return stream is not None and stream.live

    def streams(self) -> List[LiveStream]:
        with self._lock:
            return list(self._streams.values())

    def publish(
        self,
        app: str,
        name: str,
        owner: object,
        on_start: Optional[Callable[[LivePlayer], None]] = None,
    ) -> LiveStream:
        """RTMP 7.2.2.6: make ``owner`` the publisher; :class:`StreamBusyError` if taken.

        ``on_start(player)`` is called for every player already waiting (to queue
        ``NetStream.Play.PublishNotify``).
        """
        with self._lock:
            stream = self._get_or_create(app, name)
            handover = stream.handover_open()
            if stream.publisher is not None and stream.publisher is not owner and not handover:
                raise StreamBusyError(f"stream {app}/{name} is already being published")
            stream.reset_publisher_state()
            stream.publisher = owner  # reset_publisher_state closed any handover window
            stream.published_at = time.monotonic()
            waiting = stream.snapshot_players()
        for player in waiting:
            player.await_keyframe()  # the publisher may start in the middle of a GOP
        if handover:  # ERTMP Reconnect Request: the same stream goes on for its players
            return stream
        if on_start is not None:
            for player in waiting:
                on_start(player)
        return stream

    def unpublish(
        self,
        stream: LiveStream,
        owner: object,
        on_stop: Optional[Callable[[LivePlayer], None]] = None,
    ) -> None:
        """The publisher left: players stay subscribed, ``on_stop(player)`` tells each."""
        with self._lock:
            if stream.publisher is not owner:
                return
            stream.publisher = None
            stream.reset_publisher_state()
            players = stream.snapshot_players()
            self._discard_if_idle(stream)
        if on_stop is not None:
            for player in players:
                on_stop(player)

    def subscribe(self, app: str, name: str, player: LivePlayer,
                  first: Sequence[Message] = ()) -> LiveStream:
        """RTMP 7.2.2.1: add a player (live now or waiting for a publisher).

        ``first`` goes to the player before anything of the stream (see
        :meth:`LiveStream.attach`).
        """
        with self._lock:
            stream = self._get_or_create(app, name)
            stream.attach(player, first)
            return stream

    def unsubscribe(self, stream: LiveStream, player: LivePlayer) -> None:
        with self._lock:
            if player in stream.players:
                self.ended_players_dropped += player.stats.dropped_messages
            stream.detach(player)
            self._discard_if_idle(stream)
