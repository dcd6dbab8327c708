"""ERTMP Enhanced Video / Enhanced Audio: typed parse and build of the extended tag headers.

Enhanced RTMP (v2) reuses the first byte of a video or audio message (the FLV
VideoTagHeader / AudioTagHeader, FLV E.4.3.1 / E.4.2.1) to switch into FourCC mode:

* video: bit 7 (IsExVideoHeader) set; bits 6-4 are the VideoFrameType, bits 3-0 the
  VideoPacketType;
* audio: SoundFormat 9 (ExHeader); bits 3-0 are the AudioPacketType.

Then, in this order (the document's pseudo-code, ERTMP Enhanced Video / Enhanced Audio):

1. while the packet type is ModEx (7): a size (UI8 + 1; 256 means a UI16 + 1 follows), that
   many bytes of modifier data, then a byte ``ModExType UB[4] | PacketType UB[4]``.  ModEx
   type 0 is TimestampOffsetNano: the first three data bytes are a UI24 of nanoseconds
   (0..999,999) added to the message's millisecond timestamp;
2. video only: a command frame (VideoFrameType 5) whose packet type is not Metadata carries
   one UI8 VideoCommand and nothing else -- no FourCC, no body;
3. Multitrack (video 6, audio 5): a byte ``AvMultitrackType UB[4] | PacketType UB[4]``, then
   one FourCC for all tracks unless the type is ManyTracksManyCodecs;
4. otherwise the FourCC (UI32, four ASCII bytes);
5. the body, per track: [FourCC if ManyTracksManyCodecs] [trackId UI8 if multitrack]
   [sizeOfTrack UI24 unless OneTrack], then the codec data.  CodedFrames of ``avc1``,
   ``hvc1`` and ``vvc1`` begin with an SI24 composition time offset (ms); CodedFramesX
   implies 0.  Audio MultichannelConfig has its own small layout (:class:`MultichannelConfig`);
   video Metadata is AMF ``[name, value]`` pairs, today ``colorInfo`` (ERTMP Metadata Frame).

:func:`parse_video` / :func:`parse_audio` return a :class:`VideoHeader` / :class:`AudioHeader`
whose ``tracks`` are :class:`Track` values (FourCC, trackId, packet type,
keyframe / sequence-start flags, and the offsets of the codec payload in the message), so a
server can key sequence headers by ``(fourcc, track_id)``.  :func:`build_video` /
:func:`build_audio` write the same layouts.  Anything malformed raises :class:`DecodeError`
naming the section; every loop is bounded by the message length.  Sans-IO: bytes in, values out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .errors import FLVError

__all__ = [
    "AUDIO_FOURCCS",
    "AUDIO_PACKET_NAMES",
    "VIDEO_PACKET_NAMES",
    "VIDEO_FOURCCS",
    "AudioChannelOrder",
    "AudioHeader",
    "AudioPacketType",
    "AvMultitrackType",
    "DecodeError",
    "ModEx",
    "ModExType",
    "MultichannelConfig",
    "Track",
    "TrackData",
    "VideoCommand",
    "VideoFrameType",
    "VideoHeader",
    "VideoPacketType",
    "audio_tracks",
    "build_audio",
    "build_video",
    "decode_metadata",
    "encode_metadata",
    "explain_audio",
    "explain_video",
    "is_enhanced_audio",
    "is_enhanced_video",
    "make_fourcc",
    "packet_type_name",
    "split_audio",
    "split_video",
    "parse_audio",
    "parse_video",
    "video_tracks",
]

VIDEO = "ERTMP Enhanced Video"
AUDIO = "ERTMP Enhanced Audio"
METADATA = "ERTMP Metadata Frame"
MULTITRACK = "ERTMP Multitrack Streaming via Enhanced RTMP"

#: ERTMP Enhanced Video: VideoFourCc values and the codec each names.
VIDEO_FOURCCS = {
    "avc1": "H.264",
    "hvc1": "HEVC",
    "av01": "AV1",
    "vp09": "VP9",
    "vp08": "VP8",
    "vvc1": "VVC",
}
#: ERTMP Enhanced Audio: AudioFourCc values and the codec each names.
AUDIO_FOURCCS = {
    "ac-3": "AC-3",
    "ec-3": "E-AC-3",
    "Opus": "Opus",
    ".mp3": "MP3",
    "fLaC": "FLAC",
    "mp4a": "AAC",
}
#: ERTMP Enhanced Video: CodedFrames of these FourCCs start with an SI24 composition time.
FOURCCS_WITH_COMPOSITION_TIME = frozenset({"avc1", "hvc1", "vvc1"})

#: ERTMP Enhanced Video/Audio: TimestampOffsetNano holds at most 999,999 ns.
MAX_NANO_OFFSET = 999_999
#: Not in the document: at most this many ModEx blocks in one message (each costs >= 2 bytes,
#: so the loop is linear anyway; the cap keeps a hostile message from building a huge tuple).
MAX_MOD_EX_BLOCKS = 64

_U16 = struct.Struct(">H")
_U24_MAX = 0xFFFFFF


class DecodeError(FLVError, ValueError):
    """A malformed Enhanced RTMP header; the message names the section (ERTMP ...)."""

    def __init__(self, message: str, clause: str) -> None:
        super().__init__(f"{message} ({clause})")
        self.clause = clause


class VideoFrameType(IntEnum):
    """ERTMP Enhanced Video VideoFrameType (UB[3]; 0, 6 and 7 are reserved)."""

    KEY = 1
    INTER = 2
    DISPOSABLE_INTER = 3
    GENERATED_KEY = 4
    COMMAND = 5


class VideoCommand(IntEnum):
    """ERTMP Enhanced Video VideoCommand (UI8 of a command frame)."""

    START_SEEK = 0
    END_SEEK = 1


class VideoPacketType(IntEnum):
    """ERTMP Enhanced Video VideoPacketType (UB[4]; 8-15 are reserved)."""

    SEQUENCE_START = 0
    CODED_FRAMES = 1
    SEQUENCE_END = 2
    CODED_FRAMES_X = 3
    METADATA = 4
    MPEG2TS_SEQUENCE_START = 5
    MULTITRACK = 6
    MOD_EX = 7


class AudioPacketType(IntEnum):
    """ERTMP Enhanced Audio AudioPacketType (UB[4]; 3, 6 and 8-15 are reserved).

    Multitrack is 5 here but 6 for video."""

    SEQUENCE_START = 0
    CODED_FRAMES = 1
    SEQUENCE_END = 2
    MULTICHANNEL_CONFIG = 4
    MULTITRACK = 5
    MOD_EX = 7


class AvMultitrackType(IntEnum):
    """ERTMP Enhanced Video/Audio AvMultitrackType (UB[4]; 3-15 are reserved)."""

    ONE_TRACK = 0
    MANY_TRACKS = 1
    MANY_TRACKS_MANY_CODECS = 2


class ModExType(IntEnum):
    """ERTMP Enhanced Video/Audio Video/AudioPacketModExType (UB[4]; 1-15 are reserved)."""

    TIMESTAMP_OFFSET_NANO = 0


class AudioChannelOrder(IntEnum):
    """ERTMP Enhanced Audio AudioChannelOrder (UI8 of MultichannelConfig)."""

    UNSPECIFIED = 0
    NATIVE = 1
    CUSTOM = 2


#: ERTMP Enhanced Video: the document's names of the VideoPacketType values.
VIDEO_PACKET_NAMES = {
    0: "SequenceStart",
    1: "CodedFrames",
    2: "SequenceEnd",
    3: "CodedFramesX",
    4: "Metadata",
    5: "MPEG2TSSequenceStart",
    6: "Multitrack",
    7: "ModEx",
}
#: ERTMP Enhanced Audio: the document's names of the AudioPacketType values.
AUDIO_PACKET_NAMES = {
    0: "SequenceStart",
    1: "CodedFrames",
    2: "SequenceEnd",
    4: "MultichannelConfig",
    5: "Multitrack",
    7: "ModEx",
}


def make_fourcc(text: str) -> int:
    """ERTMP Simple Data Types: a FOURCC as its UI32 (``make_fourcc("hvc1") == 0x68766331``)."""
    raw = text.encode("latin-1")
    if len(raw) != 4:
        raise ValueError(f"a FourCC is four characters, not {text!r}")
    return int.from_bytes(raw, "big")


@dataclass(frozen=True)
class ModEx:
    """One ModEx block: ``type`` (:class:`ModExType`, or a reserved value kept as read)
    and its ``data`` (1 to 65,536 bytes)."""

    type: int
    data: bytes

    @property
    def nano_offset(self) -> Optional[int]:
        """TimestampOffsetNano: the UI24 of the first three data bytes (None for other types)."""
        if self.type != ModExType.TIMESTAMP_OFFSET_NANO:
            return None
        return int.from_bytes(self.data[:3], "big")

    @classmethod
    def timestamp_offset_nano(cls, nanoseconds: int) -> ModEx:
        """The TimestampOffsetNano block for ``nanoseconds`` (0..999,999), three bytes."""
        if not 0 <= nanoseconds <= MAX_NANO_OFFSET:
            raise ValueError(f"TimestampOffsetNano {nanoseconds} outside 0..{MAX_NANO_OFFSET}")
        return cls(ModExType.TIMESTAMP_OFFSET_NANO, nanoseconds.to_bytes(3, "big"))


@dataclass(frozen=True)
class MultichannelConfig:
    """ERTMP Enhanced Audio MultichannelConfig: channel order, count and layout.

    ``mapping`` (one AudioChannel per channel) is present for order Custom, ``flags`` (an
    AudioChannelMask) for order Native; both are empty/None otherwise.
    """

    order: int
    channel_count: int
    mapping: Tuple[int, ...] = ()
    flags: Optional[int] = None

    def encode(self) -> bytes:
        """The body bytes of a MultichannelConfig packet."""
        out = bytes([self.order & 0xFF, self.channel_count & 0xFF])
        if self.order == AudioChannelOrder.CUSTOM:
            if len(self.mapping) != self.channel_count:
                raise ValueError("a Custom channel order maps every channel")
            out += bytes(self.mapping)
        elif self.order == AudioChannelOrder.NATIVE:
            out += (self.flags or 0).to_bytes(4, "big")
        return out

    @classmethod
    def decode(cls, data: bytes) -> MultichannelConfig:
        """Parse a MultichannelConfig body; :class:`DecodeError` if it is short."""
        if len(data) < 2:
            raise DecodeError(
                f"MultichannelConfig of {len(data)} bytes: order and channel count need 2", AUDIO
            )
        order, count = data[0], data[1]
        if order == AudioChannelOrder.CUSTOM:
            if len(data) < 2 + count:
                raise DecodeError(
                    f"MultichannelConfig Custom order maps {count} channels but has "
                    f"{len(data) - 2} bytes", AUDIO,
                )  # fmt: skip
            return cls(order, count, mapping=tuple(data[2 : 2 + count]))
        if order == AudioChannelOrder.NATIVE:
            if len(data) < 6:
                raise DecodeError("MultichannelConfig Native order without its UI32 flags", AUDIO)
            return cls(order, count, flags=int.from_bytes(data[2:6], "big"))
        return cls(order, count)


@dataclass(frozen=True)
class Track:
    """One track of an enhanced video or audio message.

    ``fourcc`` and ``track_id`` (0 when the message is not multitrack) identify it;
    ``packet_type`` is the Video/AudioPacketType every track of the message shares;
    ``frame_type`` is the message's VideoFrameType (None for audio).  The codec payload is
    ``data[offset:end]`` of the message (:meth:`payload`): after the SI24 composition time
    of CodedFrames (``composition_time``, ms), which starts at ``start``.  ``known`` is
    False for a FourCC the document does not define (parsed with ``allow_unknown=True``).
    """

    fourcc: str
    track_id: int
    packet_type: int
    start: int
    offset: int
    end: int
    frame_type: Optional[int] = None
    composition_time: int = 0
    known: bool = True
    multichannel: Optional[MultichannelConfig] = None

    @property
    def is_video(self) -> bool:
        return self.frame_type is not None

    @property
    def size(self) -> int:
        """Bytes of codec payload."""
        return self.end - self.offset

    def payload(self, data: bytes) -> bytes:
        """This track's codec payload, cut from the message ``data`` it was parsed from."""
        return bytes(data[self.offset : self.end])

    @property
    def is_sequence_start(self) -> bool:
        """SequenceStart (or video MPEG2TSSequenceStart): the decoder configuration."""
        if self.is_video:
            return self.packet_type in (
                VideoPacketType.SEQUENCE_START, VideoPacketType.MPEG2TS_SEQUENCE_START,
            )  # fmt: skip
        return self.packet_type == AudioPacketType.SEQUENCE_START

    @property
    def is_config(self) -> bool:
        """What a late joiner needs before frames: a sequence start, audio
        MultichannelConfig, or video Metadata (colorInfo, ERTMP Metadata Frame)."""
        if self.is_sequence_start:
            return True
        if self.is_video:
            return self.packet_type == VideoPacketType.METADATA
        return self.packet_type == AudioPacketType.MULTICHANNEL_CONFIG

    @property
    def is_coded_frames(self) -> bool:
        """CodedFrames (or video CodedFramesX): media samples."""
        if self.is_video:
            return self.packet_type in (VideoPacketType.CODED_FRAMES, VideoPacketType.CODED_FRAMES_X)
        return self.packet_type == AudioPacketType.CODED_FRAMES

    @property
    def is_keyframe(self) -> bool:
        """Video coded frames of a keyframe (VideoFrameType 1): a point a player can start at.

        Sequence starts, Metadata, SequenceEnd and command frames are not keyframes."""
        return self.frame_type == VideoFrameType.KEY and self.is_coded_frames

    @property
    def codec_name(self) -> str:
        names = VIDEO_FOURCCS if self.is_video else AUDIO_FOURCCS
        return names.get(self.fourcc, self.fourcc)


@dataclass(frozen=True)
class VideoHeader:
    """A parsed ExVideoTagHeader and the layout of its body (ERTMP Enhanced Video).

    ``packet_type`` is the real VideoPacketType after the ModEx blocks (for a multitrack
    message: the one every track shares, and ``multitrack_type`` is set).  A command frame
    has ``command`` set and no tracks.  ``header_size`` is where the body (the first track's
    fields, or a single track's codec data) starts.
    """

    frame_type: int
    packet_type: int
    mod_ex: Tuple[ModEx, ...] = ()
    command: Optional[int] = None
    multitrack_type: Optional[int] = None
    tracks: Tuple[Track, ...] = ()
    header_size: int = 1

    @property
    def is_multitrack(self) -> bool:
        return self.multitrack_type is not None

    @property
    def is_command(self) -> bool:
        """A command frame (VideoFrameType 5 with a VideoCommand, no video data)."""
        return self.command is not None

    @property
    def is_metadata(self) -> bool:
        return self.packet_type == VideoPacketType.METADATA

    @property
    def nano_offset(self) -> int:
        """TimestampOffsetNano in ns (the last such ModEx block wins, as in the pseudo-code; 0)."""
        value = 0
        for block in self.mod_ex:
            if block.nano_offset is not None:
                value = block.nano_offset
        return value

    @property
    def fourcc(self) -> Optional[str]:
        """The FourCC of the first track (None for a command frame)."""
        return self.tracks[0].fourcc if self.tracks else None

    @property
    def is_keyframe(self) -> bool:
        """Keyframe coded frames in at least one track (never a command or Metadata)."""
        return any(t.is_keyframe for t in self.tracks)

    @property
    def is_sequence_start(self) -> bool:
        return any(t.is_sequence_start for t in self.tracks)


@dataclass(frozen=True)
class AudioHeader:
    """A parsed ExAudioTagHeader and the layout of its body (ERTMP Enhanced Audio);
    fields as in :class:`VideoHeader`, without frame type and command."""

    packet_type: int
    mod_ex: Tuple[ModEx, ...] = ()
    multitrack_type: Optional[int] = None
    tracks: Tuple[Track, ...] = ()
    header_size: int = 1

    @property
    def is_multitrack(self) -> bool:
        return self.multitrack_type is not None

    @property
    def nano_offset(self) -> int:
        """TimestampOffsetNano in ns (the last such ModEx block wins; 0 without one)."""
        value = 0
        for block in self.mod_ex:
            if block.nano_offset is not None:
                value = block.nano_offset
        return value

    @property
    def fourcc(self) -> Optional[str]:
        return self.tracks[0].fourcc if self.tracks else None

    @property
    def is_sequence_start(self) -> bool:
        return any(t.is_sequence_start for t in self.tracks)


# ----------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------
def is_enhanced_video(data: bytes) -> bool:
    """ERTMP Enhanced Video: IsExVideoHeader (bit 7 of the first byte)."""
    return bool(data) and bool(data[0] & 0x80)


def is_enhanced_audio(data: bytes) -> bool:
    """ERTMP Enhanced Audio: SoundFormat 9 (ExHeader)."""
    return bool(data) and data[0] >> 4 == 9


def _mod_ex_loop(
    data: bytes, packet_type: int, clause: str, kind: str
) -> Tuple[int, int, Tuple[ModEx, ...]]:
    """Step 1: consume the ModEx blocks; (real packet type, offset after them, blocks)."""
    offset = 1
    blocks: List[ModEx] = []
    length = len(data)
    while packet_type == 7:  # ModEx is 7 for both media
        if len(blocks) >= MAX_MOD_EX_BLOCKS:
            raise DecodeError(f"more than {MAX_MOD_EX_BLOCKS} ModEx blocks in one {kind} message", clause)
        if offset >= length:
            raise DecodeError(f"{kind} ModEx block without its size byte", clause)
        size = data[offset] + 1  # UI8 + 1
        offset += 1
        if size == 256:  # the escape: a UI16 + 1 follows
            if offset + 2 > length:
                raise DecodeError(f"{kind} ModEx size escape (256) without its UI16", clause)
            size = _U16.unpack_from(data, offset)[0] + 1
            offset += 2
        if offset + size + 1 > length:
            raise DecodeError(
                f"{kind} ModEx block of {size} bytes overruns the message "
                f"({length - offset} bytes left, the ModExType byte included)", clause,
            )  # fmt: skip
        block_data = bytes(data[offset : offset + size])
        offset += size
        mod_ex_type, packet_type = data[offset] >> 4, data[offset] & 0x0F
        offset += 1
        if mod_ex_type == ModExType.TIMESTAMP_OFFSET_NANO:
            if size < 3:
                raise DecodeError(
                    f"{kind} TimestampOffsetNano has {size} bytes of data; it needs at least 3", clause
                )
            nano = int.from_bytes(block_data[:3], "big")
            if nano > MAX_NANO_OFFSET:
                raise DecodeError(
                    f"{kind} TimestampOffsetNano {nano} ns exceeds {MAX_NANO_OFFSET}", clause
                )
        blocks.append(ModEx(mod_ex_type, block_data))
    return packet_type, offset, tuple(blocks)


def _fourcc(data: bytes, offset: int, known: Dict[str, str], allow_unknown: bool, clause: str, kind: str) -> str:
    if offset + 4 > len(data):
        raise DecodeError(f"{kind} header ends before its FourCC (UI32)", clause)
    fourcc = bytes(data[offset : offset + 4]).decode("latin-1")
    if fourcc not in known and not allow_unknown:
        raise DecodeError(
            f"unknown {kind} FourCC {fourcc!r} (known: {', '.join(known)})", clause
        )
    return fourcc


def _tracks(
    data: bytes,
    offset: int,
    *,
    packet_type: int,
    multitrack_type: Optional[int],
    shared_fourcc: str,
    frame_type: Optional[int],
    known: Dict[str, str],
    allow_unknown: bool,
    clause: str,
    kind: str,
) -> Tuple[Track, ...]:
    """Step 5: the body, one track after another until the message is used up."""
    length = len(data)
    tracks: List[Track] = []
    while True:
        index = len(tracks)
        if multitrack_type == AvMultitrackType.MANY_TRACKS_MANY_CODECS:
            fourcc = _fourcc(data, offset, known, allow_unknown, clause, kind)
            offset += 4
        else:
            fourcc = shared_fourcc
        track_id = 0
        end = length
        if multitrack_type is not None:
            if offset >= length:
                raise DecodeError(f"{kind} multitrack track {index} without its trackId (UI8)", MULTITRACK)
            track_id = data[offset]
            offset += 1
            if multitrack_type != AvMultitrackType.ONE_TRACK:
                if offset + 3 > length:
                    raise DecodeError(
                        f"{kind} track {index} (trackId {track_id}) without its UI24 size", MULTITRACK
                    )
                size = int.from_bytes(data[offset : offset + 3], "big")
                offset += 3
                end = offset + size
                if end > length:
                    raise DecodeError(
                        f"{kind} track {index} (trackId {track_id}) says {size} bytes but "
                        f"{length - offset} remain", MULTITRACK,
                    )  # fmt: skip
        start = offset
        composition_time = 0
        multichannel = None
        if (
            frame_type is not None
            and packet_type == VideoPacketType.CODED_FRAMES
            and fourcc in FOURCCS_WITH_COMPOSITION_TIME
        ):
            if start + 3 > end:
                raise DecodeError(
                    f"{fourcc} CodedFrames (track {track_id}) without its SI24 composition time", clause
                )
            composition_time = int.from_bytes(data[start : start + 3], "big", signed=True)
            offset = start + 3
        elif frame_type is None and packet_type == AudioPacketType.MULTICHANNEL_CONFIG:
            multichannel = MultichannelConfig.decode(bytes(data[start:end]))
        tracks.append(Track(
            fourcc, track_id, packet_type, start, offset, end, frame_type, composition_time,
            fourcc in known, multichannel,
        ))  # fmt: skip
        offset = end
        if multitrack_type in (None, AvMultitrackType.ONE_TRACK) or offset >= length:
            return tuple(tracks)


def parse_video(data: bytes, *, allow_unknown: bool = False) -> VideoHeader:
    """ERTMP Enhanced Video: parse an enhanced video message (IsExVideoHeader set).

    ``allow_unknown=True`` accepts a FourCC the document does not define (its tracks have
    ``known=False`` and no composition time is read): a relay forwards such codecs
    (``fourCcList`` ``"*"``, ERTMP Enhancing NetConnection connect Command).  Anything
    else malformed raises :class:`DecodeError`.
    """
    if not data:
        raise DecodeError("empty video message: no ExVideoTagHeader", VIDEO)
    first = data[0]
    if not first & 0x80:
        raise DecodeError(f"first byte 0x{first:02x}: IsExVideoHeader is 0 (legacy header, FLV E.4.3.1)", VIDEO)
    frame_type = (first >> 4) & 0x07
    packet_type, offset, mod_ex = _mod_ex_loop(data, first & 0x0F, VIDEO, "video")
    if packet_type > VideoPacketType.MOD_EX:
        raise DecodeError(f"reserved VideoPacketType {packet_type}", VIDEO)
    if frame_type == VideoFrameType.COMMAND and packet_type != VideoPacketType.METADATA:
        if offset >= len(data):
            raise DecodeError("command frame without its VideoCommand (UI8)", VIDEO)
        return VideoHeader(frame_type, packet_type, mod_ex, command=data[offset], header_size=offset + 1)
    multitrack_type = None
    shared_fourcc = ""  # ManyTracksManyCodecs: a FourCC per track instead
    if packet_type == VideoPacketType.MULTITRACK:
        if offset >= len(data):
            raise DecodeError("Multitrack video without its AvMultitrackType byte", VIDEO)
        multitrack_type, packet_type = data[offset] >> 4, data[offset] & 0x0F
        offset += 1
        if multitrack_type > AvMultitrackType.MANY_TRACKS_MANY_CODECS:
            raise DecodeError(f"reserved AvMultitrackType {multitrack_type}", VIDEO)
        if packet_type in (VideoPacketType.MULTITRACK, VideoPacketType.MOD_EX) or packet_type > 7:
            raise DecodeError(
                f"VideoPacketType {packet_type} inside Multitrack (must be a plain packet type)", VIDEO
            )
        if multitrack_type != AvMultitrackType.MANY_TRACKS_MANY_CODECS:
            shared_fourcc = _fourcc(data, offset, VIDEO_FOURCCS, allow_unknown, VIDEO, "video")
            offset += 4
    else:
        shared_fourcc = _fourcc(data, offset, VIDEO_FOURCCS, allow_unknown, VIDEO, "video")
        offset += 4
    if packet_type != VideoPacketType.METADATA and not 1 <= frame_type <= 5:
        raise DecodeError(f"reserved VideoFrameType {frame_type}", VIDEO)  # ignored for Metadata
    if multitrack_type is not None and multitrack_type != AvMultitrackType.ONE_TRACK and offset >= len(data):
        raise DecodeError("multitrack video message with no track", MULTITRACK)
    tracks = _tracks(
        data, offset, packet_type=packet_type, multitrack_type=multitrack_type,
        shared_fourcc=shared_fourcc, frame_type=frame_type, known=VIDEO_FOURCCS,
        allow_unknown=allow_unknown, clause=VIDEO, kind="video",
    )  # fmt: skip
    return VideoHeader(frame_type, packet_type, mod_ex, None, multitrack_type, tracks, offset)


def parse_audio(data: bytes, *, allow_unknown: bool = False) -> AudioHeader:
    """ERTMP Enhanced Audio: parse an enhanced audio message (SoundFormat 9, ExHeader);
    ``allow_unknown`` as in :func:`parse_video`."""
    if not data:
        raise DecodeError("empty audio message: no ExAudioTagHeader", AUDIO)
    first = data[0]
    if first >> 4 != 9:
        raise DecodeError(f"SoundFormat {first >> 4} is not 9 (ExHeader)", AUDIO)
    packet_type, offset, mod_ex = _mod_ex_loop(data, first & 0x0F, AUDIO, "audio")
    if packet_type not in AUDIO_PACKET_NAMES:
        raise DecodeError(f"reserved AudioPacketType {packet_type}", AUDIO)
    multitrack_type = None
    shared_fourcc = ""  # ManyTracksManyCodecs: a FourCC per track instead
    if packet_type == AudioPacketType.MULTITRACK:
        if offset >= len(data):
            raise DecodeError("Multitrack audio without its AvMultitrackType byte", AUDIO)
        multitrack_type, packet_type = data[offset] >> 4, data[offset] & 0x0F
        offset += 1
        if multitrack_type > AvMultitrackType.MANY_TRACKS_MANY_CODECS:
            raise DecodeError(f"reserved AvMultitrackType {multitrack_type}", AUDIO)
        if packet_type in (AudioPacketType.MULTITRACK, AudioPacketType.MOD_EX) or (
            packet_type not in AUDIO_PACKET_NAMES
        ):
            raise DecodeError(
                f"AudioPacketType {packet_type} inside Multitrack (must be a plain packet type)", AUDIO
            )
        if multitrack_type != AvMultitrackType.MANY_TRACKS_MANY_CODECS:
            shared_fourcc = _fourcc(data, offset, AUDIO_FOURCCS, allow_unknown, AUDIO, "audio")
            offset += 4
    else:
        shared_fourcc = _fourcc(data, offset, AUDIO_FOURCCS, allow_unknown, AUDIO, "audio")
        offset += 4
    if multitrack_type is not None and multitrack_type != AvMultitrackType.ONE_TRACK and offset >= len(data):
        raise DecodeError("multitrack audio message with no track", MULTITRACK)
    tracks = _tracks(
        data, offset, packet_type=packet_type, multitrack_type=multitrack_type,
        shared_fourcc=shared_fourcc, frame_type=None, known=AUDIO_FOURCCS,
        allow_unknown=allow_unknown, clause=AUDIO, kind="audio",
    )  # fmt: skip
    return AudioHeader(packet_type, mod_ex, multitrack_type, tracks, offset)


def video_tracks(data: bytes, *, allow_unknown: bool = True) -> Tuple[Track, ...]:
    """The tracks of an enhanced video message; ``()`` for a legacy, empty, command or
    malformed one.  Never raises: for servers that classify every message they relay."""
    if not is_enhanced_video(data):
        return ()
    try:
        return parse_video(data, allow_unknown=allow_unknown).tracks
    except DecodeError:
        return ()


def audio_tracks(data: bytes, *, allow_unknown: bool = True) -> Tuple[Track, ...]:
    """The tracks of an enhanced audio message; ``()`` for a legacy, empty or malformed one."""
    if not is_enhanced_audio(data):
        return ()
    try:
        return parse_audio(data, allow_unknown=allow_unknown).tracks
    except DecodeError:
        return ()


# ----------------------------------------------------------------------------------------
# Building
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrackData:
    """One track to build: ``fourcc``, codec ``body`` (without the SI24), ``track_id``
    (written only for multitrack messages) and ``composition_time`` (ms, SI24, written for
    CodedFrames of avc1/hvc1/vvc1)."""

    fourcc: str
    body: bytes = b""
    track_id: int = 0
    composition_time: int = 0


def _fourcc_bytes(fourcc: str) -> bytes:
    raw = fourcc.encode("latin-1")
    if len(raw) != 4:
        raise ValueError(f"a FourCC is four characters, not {fourcc!r}")
    return raw


def _mod_ex_bytes(blocks: Sequence[ModEx], packet_type: int) -> Tuple[int, bytes]:
    """The first nibble's packet type (7 if there are blocks) and the ModEx bytes; each
    block's trailing byte names the next block's type, or ``packet_type`` after the last."""
    if not blocks:
        return packet_type, b""
    if len(blocks) > MAX_MOD_EX_BLOCKS:
        raise ValueError(f"at most {MAX_MOD_EX_BLOCKS} ModEx blocks")
    out = bytearray()
    for index, block in enumerate(blocks):
        size = len(block.data)
        if not 1 <= size <= 0x10000:
            raise ValueError(f"ModEx data is 1..65536 bytes, not {size}")
        if size < 256:
            out.append(size - 1)
        else:
            out.append(255)
            out += _U16.pack(size - 1)
        out += block.data
        following = packet_type if index == len(blocks) - 1 else 7
        out.append(((block.type & 0x0F) << 4) | following)
    return 7, bytes(out)


def _body(
    packet_type: int, tracks: Sequence[TrackData], multitrack_type: Optional[int], video: bool
) -> bytes:
    out = bytearray()
    if multitrack_type is not None and multitrack_type != AvMultitrackType.MANY_TRACKS_MANY_CODECS:
        out += _fourcc_bytes(tracks[0].fourcc)
    for track in tracks:
        data = track.body
        if video and packet_type == VideoPacketType.CODED_FRAMES and track.fourcc in FOURCCS_WITH_COMPOSITION_TIME:
            if not -0x800000 <= track.composition_time <= 0x7FFFFF:
                raise ValueError(f"composition time {track.composition_time} does not fit an SI24")
            data = track.composition_time.to_bytes(3, "big", signed=True) + data
        if multitrack_type is None:
            out += _fourcc_bytes(track.fourcc)
            out += data
            continue
        if multitrack_type == AvMultitrackType.MANY_TRACKS_MANY_CODECS:
            out += _fourcc_bytes(track.fourcc)
        if not 0 <= track.track_id <= 255:
            raise ValueError(f"trackId {track.track_id} is not a UI8")
        out.append(track.track_id)
        if multitrack_type != AvMultitrackType.ONE_TRACK:
            if len(data) > _U24_MAX:
                raise ValueError(f"track of {len(data)} bytes does not fit sizeOfTrack (UI24)")
            out += len(data).to_bytes(3, "big")
        out += data
    return bytes(out)


def _check_tracks(tracks: Sequence[TrackData], multitrack_type: Optional[int]) -> None:
    if not tracks:
        raise ValueError("a media message needs at least one track")
    if multitrack_type is None or multitrack_type == AvMultitrackType.ONE_TRACK:
        if len(tracks) != 1:
            raise ValueError("only ManyTracks and ManyTracksManyCodecs carry several tracks")
    elif multitrack_type == AvMultitrackType.MANY_TRACKS:
        if len({t.fourcc for t in tracks}) != 1:
            raise ValueError("ManyTracks shares one FourCC; use ManyTracksManyCodecs")
    elif multitrack_type != AvMultitrackType.MANY_TRACKS_MANY_CODECS:
        raise ValueError(f"AvMultitrackType {multitrack_type} is reserved")


def build_video(
    frame_type: int,
    packet_type: int,
    tracks: Iterable[TrackData] = (),
    *,
    multitrack_type: Optional[int] = None,
    mod_ex: Sequence[ModEx] = (),
    command: Optional[int] = None,
) -> bytes:
    """ERTMP Enhanced Video: the bytes of an enhanced video message.

    ``build_video(VideoFrameType.KEY, VideoPacketType.SEQUENCE_START, [TrackData("hvc1",
    hvcc)])``; several tracks need ``multitrack_type``; ``mod_ex`` blocks (for example
    ``[ModEx.timestamp_offset_nano(500)]``) come first; a command frame is
    ``build_video(VideoFrameType.COMMAND, VideoPacketType.CODED_FRAMES, command=0)``.
    """
    if not 0 <= frame_type <= 7 or not 0 <= packet_type <= 15:
        raise ValueError("VideoFrameType is UB[3] and VideoPacketType UB[4]")
    if command is not None:
        if frame_type != VideoFrameType.COMMAND or packet_type == VideoPacketType.METADATA:
            raise ValueError("a VideoCommand needs VideoFrameType 5 and a packet type other than Metadata")
        first_type, modex = _mod_ex_bytes(mod_ex, packet_type)
        return bytes([0x80 | (frame_type << 4) | first_type]) + modex + bytes([command & 0xFF])
    items = list(tracks)
    _check_tracks(items, multitrack_type)
    if packet_type in (VideoPacketType.MULTITRACK, VideoPacketType.MOD_EX):
        raise ValueError("give the real packet type; Multitrack and ModEx are written from the arguments")
    inner = packet_type
    if multitrack_type is not None:
        packet_type = VideoPacketType.MULTITRACK
    first_type, modex = _mod_ex_bytes(mod_ex, packet_type)
    out = bytes([0x80 | (frame_type << 4) | first_type]) + modex
    if multitrack_type is not None:
        out += bytes([(multitrack_type << 4) | inner])
    return out + _body(inner, items, multitrack_type, video=True)


def build_audio(
    packet_type: int,
    tracks: Iterable[TrackData] = (),
    *,
    multitrack_type: Optional[int] = None,
    mod_ex: Sequence[ModEx] = (),
) -> bytes:
    """ERTMP Enhanced Audio: the bytes of an enhanced audio message (SoundFormat 9), as
    :func:`build_video` (a MultichannelConfig body is :meth:`MultichannelConfig.encode`)."""
    if not 0 <= packet_type <= 15:
        raise ValueError("AudioPacketType is UB[4]")
    if packet_type in (AudioPacketType.MULTITRACK, AudioPacketType.MOD_EX):
        raise ValueError("give the real packet type; Multitrack and ModEx are written from the arguments")
    items = list(tracks)
    _check_tracks(items, multitrack_type)
    inner = packet_type
    if multitrack_type is not None:
        packet_type = AudioPacketType.MULTITRACK
    first_type, modex = _mod_ex_bytes(mod_ex, packet_type)
    out = bytes([0x90 | first_type]) + modex
    if multitrack_type is not None:
        out += bytes([(multitrack_type << 4) | inner])
    return out + _body(inner, items, multitrack_type, video=False)


def split_video(data: bytes, *, allow_unknown: bool = True) -> List[Tuple[Track, bytes]]:
    """ERTMP Multitrack: each track of a video message as a message of its own.

    A multitrack message becomes one OneTrack message per track (same frame type, packet
    type, ModEx blocks and trackId); any other message is returned as it is.  For a server
    that keeps the latest sequence start per ``(fourcc, track_id)``.  :class:`DecodeError`
    if the message does not parse."""
    header = parse_video(data, allow_unknown=allow_unknown)
    if not header.is_multitrack:
        return [(track, bytes(data)) for track in header.tracks]
    out = []
    for track in header.tracks:
        single = TrackData(track.fourcc, data[track.offset : track.end], track.track_id,
                           track.composition_time)
        message = build_video(header.frame_type, header.packet_type, [single],
                              multitrack_type=AvMultitrackType.ONE_TRACK, mod_ex=header.mod_ex)
        out.append((parse_video(message, allow_unknown=True).tracks[0], message))
    return out


def split_audio(data: bytes, *, allow_unknown: bool = True) -> List[Tuple[Track, bytes]]:
    """ERTMP Multitrack: each track of an audio message as a message of its own
    (see :func:`split_video`)."""
    header = parse_audio(data, allow_unknown=allow_unknown)
    if not header.is_multitrack:
        return [(track, bytes(data)) for track in header.tracks]
    out = []
    for track in header.tracks:
        single = TrackData(track.fourcc, data[track.offset : track.end], track.track_id)
        message = build_audio(header.packet_type, [single],
                              multitrack_type=AvMultitrackType.ONE_TRACK, mod_ex=header.mod_ex)
        out.append((parse_audio(message, allow_unknown=True).tracks[0], message))
    return out


# ----------------------------------------------------------------------------------------
# Metadata (ERTMP Metadata Frame)
# ----------------------------------------------------------------------------------------
def decode_metadata(body: bytes, amf3: bool = False) -> List[Tuple[str, Any]]:
    """ERTMP Metadata Frame: the ``[name, value]`` pairs of a video Metadata body (AMF0, or
    AMF3 when the connection negotiated it), e.g. ``[("colorInfo", {...})]``.

    :class:`DecodeError` if the body is not AMF or not name/value pairs."""
    from . import amf0, amf3 as amf3_codec  # the AMF codecs load only for Metadata

    try:
        values = (amf3_codec.decode_all if amf3 else amf0.decode_all)(bytes(body))
    except ValueError as exc:  # amf0/amf3 DecodeError are ValueErrors
        raise DecodeError(f"Metadata body is not AMF: {exc}", METADATA) from None
    if len(values) % 2 or not all(isinstance(name, str) for name in values[::2]):
        raise DecodeError("Metadata body is not a series of [name, value] pairs", METADATA)
    return list(zip(values[::2], values[1::2]))


def encode_metadata(pairs: Iterable[Tuple[str, Any]]) -> bytes:
    """ERTMP Metadata Frame: AMF0 ``name, value, ...`` for a video Metadata body."""
    from . import amf0

    out = bytearray()
    for name, value in pairs:
        out += amf0.encode(name) + amf0.encode(value)
    return bytes(out)


def packet_type_name(packet_type: int, video: bool) -> str:
    """The document's name of a Video/AudioPacketType (``"reserved 9"`` for the others)."""
    names = VIDEO_PACKET_NAMES if video else AUDIO_PACKET_NAMES
    return names.get(packet_type, f"reserved {packet_type}")


# ----------------------------------------------------------------------------------------
# Explaining (the protocol trace and the proxy)
# ----------------------------------------------------------------------------------------
_FRAME_NAMES = {1: "KeyFrame", 2: "InterFrame", 3: "DisposableInterFrame", 4: "GeneratedKeyFrame",
                5: "Command"}
_MULTITRACK_NAMES = {0: "OneTrack", 1: "ManyTracks", 2: "ManyTracksManyCodecs"}
_CHANNEL_ORDER_NAMES = {0: "Unspecified", 1: "Native", 2: "Custom"}
_CHANNEL_MASK_NAMES = (
    "FrontLeft", "FrontRight", "FrontCenter", "LowFrequency1", "BackLeft", "BackRight",
    "FrontLeftCenter", "FrontRightCenter", "BackCenter", "SideLeft", "SideRight", "TopCenter",
    "TopFrontLeft", "TopFrontCenter", "TopFrontRight", "TopBackLeft", "TopBackCenter",
    "TopBackRight", "LowFrequency2", "TopSideLeft", "TopSideRight", "BottomFrontCenter",
    "BottomFrontLeft", "BottomFrontRight",
)
#: What the body of each (packet type, FourCC) is, in the document's words.
_VIDEO_CONFIG = {"avc1": "AVCDecoderConfigurationRecord", "hvc1": "HEVCDecoderConfigurationRecord",
                 "vvc1": "VVCDecoderConfigurationRecord", "av01": "AV1CodecConfigurationRecord",
                 "vp09": "VPCodecConfigurationRecord", "vp08": "VPCodecConfigurationRecord"}
_VIDEO_CODED = {"avc1": "NALUs (full frames)", "hvc1": "NALUs (full frames)",
                "vvc1": "NALUs (full frames)", "av01": "OBUs of one temporal unit",
                "vp09": "coded full frames", "vp08": "coded full frames"}
_AUDIO_CONFIG = {"mp4a": "AudioSpecificConfig (ISO/IEC 14496-3)",
                 "Opus": "Opus ID header (RFC 7845 5.1)",
                 "fLaC": "'fLaC' signature and STREAMINFO block"}
_AUDIO_CODED = {"mp4a": "raw AAC frame", "Opus": "Opus packets", "fLaC": "FLAC frames",
                ".mp3": "MP3 frames", "ac-3": "AC-3 coded data", "ec-3": "E-AC-3 coded data"}


def _with(text: str, clause: str) -> str:
    return f"{text}  ({clause})"


def _mod_ex_lines(blocks: Tuple[ModEx, ...], video: bool, final_type: int) -> List[str]:
    media = "Video" if video else "Audio"
    clause = VIDEO if video else AUDIO
    lines = []
    for index, block in enumerate(blocks, 1):
        following = 7 if index < len(blocks) else final_type
        size = len(block.data)
        escape = f"size UI8 255 + UI16 {size - 1}" if size >= 256 else f"size UI8 {size - 1}"
        if block.type == ModExType.TIMESTAMP_OFFSET_NANO:
            what = f"{media}PacketModExType 0 (TimestampOffsetNano) = {block.nano_offset} ns"
        else:
            what = f"{media}PacketModExType {block.type} (reserved: {size} bytes passed over)"
        lines.append(_with(
            f"ModEx {index}: {escape} -> {size} bytes, {what}; next {media}PacketType "
            f"{following} ({packet_type_name(following, video)})", clause,
        ))  # fmt: skip
    return lines


def _track_line(track: Track, index: int, header: Any, data: bytes, video: bool) -> List[str]:
    media = "Video" if video else "Audio"
    clause = VIDEO if video else AUDIO
    parts = []
    if header.multitrack_type == AvMultitrackType.MANY_TRACKS_MANY_CODECS:
        parts.append(f"{media}FourCc {track.fourcc!r} ({track.codec_name})")
    if header.multitrack_type is not None:
        parts.append(f"{media.lower()}TrackId {track.track_id}")
        if header.multitrack_type != AvMultitrackType.ONE_TRACK:
            parts.append(f"sizeOf{media}Track {track.end - track.start}")
    if video and track.offset != track.start:
        parts.append(f"compositionTimeOffset {track.composition_time} ms (SI24)")
    fourcc = track.fourcc
    if not track.known:
        body = f"{track.size} bytes of an unknown codec, passed through"
    elif video:
        kinds = {0: _VIDEO_CONFIG.get(fourcc, "configuration record"),
                 1: _VIDEO_CODED.get(fourcc, "coded frames"), 3: _VIDEO_CODED.get(fourcc, "coded frames"),
                 2: "end of sequence", 4: "AMF [name, value] pairs",
                 5: "AV1VideoDescriptor" if fourcc == "av01" else "MPEG-2 TS descriptor"}
        body = f"{track.size} bytes: {kinds.get(track.packet_type, 'body')}"
    else:
        kinds = {0: _AUDIO_CONFIG.get(fourcc, "sequence start"), 1: _AUDIO_CODED.get(fourcc, "coded frames"),
                 2: "end of sequence", 4: "MultichannelConfig"}
        body = f"{track.size} bytes: {kinds.get(track.packet_type, 'body')}"
    parts.append(body)
    lines = [_with(f"track {index}: " + ", ".join(parts), MULTITRACK if header.multitrack_type is not None else clause)]
    if track.multichannel is not None:
        config = track.multichannel
        text = (f"MultichannelConfig: audioChannelOrder {config.order} "
                f"({_CHANNEL_ORDER_NAMES.get(config.order, 'reserved')}), channelCount {config.channel_count}")
        if config.flags is not None:
            names = [n for bit, n in enumerate(_CHANNEL_MASK_NAMES) if config.flags >> bit & 1]
            text += f", audioChannelFlags 0x{config.flags:06x} ({' '.join(names) or 'none'})"
        if config.mapping:
            text += ", audioChannelMapping " + " ".join(
                _CHANNEL_MASK_NAMES[c] if c < len(_CHANNEL_MASK_NAMES) else
                {0xFE: "Unused", 0xFF: "Unknown"}.get(c, f"reserved {c}") for c in config.mapping
            )
        lines.append(_with(text, AUDIO))
    if video and track.packet_type == VideoPacketType.METADATA:
        body_bytes = track.payload(data)
        try:
            pairs = decode_metadata(body_bytes)
        except DecodeError:
            try:
                pairs = decode_metadata(body_bytes, amf3=True)
            except DecodeError as exc:
                return lines + [_with(f"Metadata body undecodable: {exc}", METADATA)]
        for name, value in pairs:
            shown = repr(value)
            lines.append(_with(f"Metadata {name} = {shown[:300]}", METADATA))
    return lines


def explain_video(data: bytes) -> List[str]:
    """One line per field of an enhanced video header, each ending with its section
    (ERTMP Enhanced Video, Multitrack, Metadata Frame); ``[]`` for a legacy payload."""
    if not is_enhanced_video(data):
        return []
    first = data[0]
    frame_type, first_type = (first >> 4) & 0x07, first & 0x0F
    lines = [_with(
        f"ExVideoTagHeader: IsExVideoHeader 1, VideoFrameType {frame_type} "
        f"({_FRAME_NAMES.get(frame_type, 'reserved')}), VideoPacketType {first_type} "
        f"({packet_type_name(first_type, True)})", VIDEO,
    )]  # fmt: skip
    try:
        header = parse_video(data, allow_unknown=True)
    except DecodeError as exc:
        return lines + [f"malformed: {exc}"]
    after_mod_ex = VideoPacketType.MULTITRACK if header.is_multitrack else header.packet_type
    lines += _mod_ex_lines(header.mod_ex, True, after_mod_ex)
    if header.command is not None:
        name = {0: "StartSeek", 1: "EndSeek"}.get(header.command, "reserved")
        return lines + [_with(f"VideoCommand {header.command} ({name}): no FourCC, no video data", VIDEO)]
    if header.is_metadata:
        lines.append(_with("VideoPacketType Metadata: VideoFrameType is ignored", VIDEO))
    lines += _shared_lines(header, True)
    for index, track in enumerate(header.tracks):
        lines += _track_line(track, index, header, data, True)
    return lines


def _shared_lines(header: Any, video: bool) -> List[str]:
    media = "Video" if video else "Audio"
    clause = VIDEO if video else AUDIO
    tracks = header.tracks
    fourcc = tracks[0].fourcc
    codec = f"{media}FourCc {fourcc!r} ({tracks[0].codec_name}{'' if tracks[0].known else ', not in v2'})"
    if header.multitrack_type is None:
        return [_with(codec, clause)]
    text = (f"Multitrack: AvMultitrackType {header.multitrack_type} "
            f"({_MULTITRACK_NAMES[header.multitrack_type]}), {media}PacketType {header.packet_type} "
            f"({packet_type_name(header.packet_type, video)}) for every track, {len(tracks)} track(s)")
    if header.multitrack_type != AvMultitrackType.MANY_TRACKS_MANY_CODECS:
        text += f", {codec}"
    return [_with(text, f"{clause}, {MULTITRACK}")]


def explain_audio(data: bytes) -> List[str]:
    """One line per field of an enhanced audio header (ERTMP Enhanced Audio); ``[]`` for
    a legacy payload."""
    if not is_enhanced_audio(data):
        return []
    first_type = data[0] & 0x0F
    lines = [_with(
        f"ExAudioTagHeader: SoundFormat 9 (ExHeader), AudioPacketType {first_type} "
        f"({packet_type_name(first_type, False)})", AUDIO,
    )]  # fmt: skip
    try:
        header = parse_audio(data, allow_unknown=True)
    except DecodeError as exc:
        return lines + [f"malformed: {exc}"]
    after_mod_ex = AudioPacketType.MULTITRACK if header.is_multitrack else header.packet_type
    lines += _mod_ex_lines(header.mod_ex, False, after_mod_ex)
    lines += _shared_lines(header, False)
    for index, track in enumerate(header.tracks):
        lines += _track_line(track, index, header, data, False)
    return lines
