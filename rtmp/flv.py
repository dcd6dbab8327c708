"""FLV E.2-E.4: the FLV file format (Annex E of the Video File Format v10.1), plus E-RTMP headers.

An FLV file is a 9-byte header (FLV E.2) followed by a body (FLV E.3) of tags, each preceded
by a 4-byte back pointer (PreviousTagSize)::

    header | PreviousTagSize0 = 0 | tag 1 | PreviousTagSize1 | tag 2 | ... | PreviousTagSizeN

A tag (FLV E.4.1) is an 11-byte header -- type, 24-bit data size, 24-bit timestamp plus an
8-bit extension holding the *upper* bits, 24-bit stream id (always 0) -- and a body that is
byte for byte the payload of the matching RTMP message (audio 8, video 9, AMF0 data 18), so
converting between RTMP and FLV is only a header rewrite.

This module reads (:class:`Reader`) and writes (:class:`Writer`, including APPEND with
:meth:`Writer.open_append`) such files, and classifies audio and video payloads: the legacy
AUDIODATA / VIDEODATA headers (FLV E.4.2.1, E.4.3.1) and the Enhanced RTMP ExVideoTagHeader /
ExAudioTagHeader with FourCC codecs (ERTMP Enhanced Video, ERTMP Enhanced Audio), which
:mod:`rtmp.ertmp` parses and builds in full.  It does file I/O only when given a path;
everything else works on bytes.
"""

from __future__ import annotations

import io
import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any, TypeVar, Union

from . import ertmp
from .errors import FLVError, RTMPError
from .message import Message, strip_set_data_frame_bytes

logger = logging.getLogger(__name__)

__all__ = [
    "TAG_OVERHEAD",
    "TAG_AUDIO",
    "TAG_SCRIPT",
    "TAG_SCRIPT_AMF3",
    "TAG_VIDEO",
    "AudioTagHeader",
    "FLVError",
    "Reader",
    "Tag",
    "VideoTagHeader",
    "Writer",
    "describe_audio",
    "describe_tag",
    "describe_video",
    "is_keyframe",
    "is_sequence_header",
    "read_metadata",
    "strip_set_data_frame_bytes",
]

#: FLV E.4.1: tag types.
TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18
#: ERTMP "Enabling AMF3 in FLV": SCRIPTDATA encoded in AMF3.
TAG_SCRIPT_AMF3 = 15
TAG_TYPES = frozenset({TAG_AUDIO, TAG_VIDEO, TAG_SCRIPT, TAG_SCRIPT_AMF3})

#: FLV E.2: signature, version 1, flags, DataOffset.
SIGNATURE = b"FLV"
VERSION = 1
HEADER_SIZE = 9
FLAG_AUDIO = 0x04  # FLV E.2: TypeFlagsAudio
FLAG_VIDEO = 0x01  # FLV E.2: TypeFlagsVideo
_FLAGS_RESERVED = 0xFA  # FLV E.2: the five high bits and bit 1 must be 0
#: FLV E.4.1: the tag header is 11 bytes; FLV E.3: PreviousTagSize = 11 + DataSize.
TAG_HEADER_SIZE = 11
#: FLV E.3 / E.4.1: bytes around a tag body: the 11-byte header and the 4-byte back pointer.
TAG_OVERHEAD = TAG_HEADER_SIZE + 4
MAX_DATA_SIZE = 0xFFFFFF

_HEADER = struct.Struct(">3sBBI")  # FLV E.2
_U32 = struct.Struct(">I")
# FLV E.4.1 tag header read as three words: type|size, ts24|ts_ext, stream id (16+8 bits).
_TAG_HEADER = struct.Struct(">IIHB")
# The same header, plus the PreviousTagSize after the body, for writing in one pack.
_SI24_SIGN = 0x800000

PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]
_ClosingT = TypeVar("_ClosingT", bound="_Closing")


class _Closing:
    """A context manager that calls :meth:`close` on exit (the FLV reader and writer)."""

    def close(self) -> None:  # pragma: no cover - both subclasses have their own
        raise NotImplementedError

    def __enter__(self: _ClosingT) -> _ClosingT:  # noqa: PYI019 - no typing.Self on 3.9
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class Tag:
    """FLV E.4.1: one tag: ``type`` (8, 9, 18), ``timestamp`` (ms, unsigned 32-bit), ``data``.

    ``offset`` is where the tag header starts in the file it was read from (-1 otherwise);
    ``encrypted`` is the Filter bit (Annex F).  Neither takes part in equality.
    """

    type: int
    timestamp: int
    data: bytes
    offset: int = field(default=-1, compare=False)
    encrypted: bool = field(default=False, compare=False)

    @property
    def size(self) -> int:
        """FLV E.4.1 DataSize: the body length."""
        return len(self.data)

    @classmethod
    def from_message(cls, msg: Message) -> Tag:
        """FLV E.4.1: an RTMP audio/video/data message body is the tag body."""
        if msg.type not in TAG_TYPES:
            raise ValueError(f"message type {int(msg.type)} has no FLV tag (FLV E.4.1: 8, 9, 18)")
        return cls(int(msg.type), msg.timestamp, msg.data)

    def to_message(self, message_stream_id: int = 1) -> Message:
        """The RTMP message carrying this tag's body on ``message_stream_id``."""
        return Message(
            type=self.type, data=self.data, timestamp=self.timestamp,
            message_stream_id=message_stream_id,
        )  # fmt: skip


def _open(path_or_file: PathOrFile, mode: str) -> tuple[IO[bytes], bool, str]:
    """(file, owned, name) for a path or an already-open binary file."""
    if isinstance(path_or_file, (str, os.PathLike)):
        name = os.fspath(path_or_file)
        handle: IO[bytes] = open(name, mode)  # noqa: SIM115 - the caller owns it
        return handle, True, name
    name = str(getattr(path_or_file, "name", "<stream>"))
    return path_or_file, False, name


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads (pipes, sockets)."""
    data = stream.read(size)
    if data is None:
        data = b""
    if len(data) == size or not data:
        return data
    parts = [data]
    remaining = size - len(data)
    while remaining > 0:
        more = stream.read(remaining)
        if not more:
            break
        parts.append(more)
        remaining -= len(more)
    return b"".join(parts)


class Reader(_Closing):
    """FLV E.2-E.4.1: iterate the tags of an FLV file or binary stream.

    ``Reader(path_or_file)`` parses the header at once (raising :class:`FLVError` for a file
    that is not FLV); iterating yields :class:`Tag` values.  A truncated last tag ends the
    iteration quietly and sets :attr:`truncated` -- files being recorded, or cut by a crash,
    end that way.  Back pointers are checked leniently: a PreviousTagSize of 0 (which some
    muxers write) or a wrong value is counted in :attr:`bad_back_pointers` and logged once.
    With ``strict=True`` every departure (reserved bits, stream id, back pointers, unknown
    tag types) raises :class:`FLVError` instead.
    """

    def __init__(self, path_or_file: PathOrFile, *, strict: bool = False) -> None:
        self._file, self._owned, self.name = _open(path_or_file, "rb")
        self.strict = strict
        #: Whether the file ended inside a tag (or right after one, without its back pointer).
        self.truncated = False
        #: How many PreviousTagSize fields did not match the tag before them.
        self.bad_back_pointers = 0
        #: Number of tags yielded so far.
        self.tag_count = 0
        #: Byte offset just past the last complete tag body (its back pointer follows).
        self.last_tag_end = 0
        #: Size (11 + DataSize) of the last complete tag, i.e. its PreviousTagSize.
        self.last_tag_size = 0
        #: Whether the last complete tag's back pointer was present in the file.
        self.last_back_pointer_present = True
        self._warned: set = set()  # type: ignore[type-arg]
        try:
            self._read_header()
        except BaseException:
            self.close()
            raise

    # FLV E.2 ---------------------------------------------------------------------------
    def _read_header(self) -> None:
        raw = _read_exact(self._file, HEADER_SIZE)
        if len(raw) < HEADER_SIZE:
            raise FLVError(f"{self.name}: {len(raw)} bytes, too short for the FLV header (FLV E.2)")
        signature, version, flags, data_offset = _HEADER.unpack(raw)
        if signature != SIGNATURE:
            raise FLVError(f"{self.name}: signature {signature!r} is not b'FLV' (FLV E.2)")
        if version != VERSION:
            self._depart(f"FLV version {version}, expected 1", "FLV E.2")
        if flags & _FLAGS_RESERVED:
            self._depart(f"reserved header flag bits set (0x{flags:02x})", "FLV E.2")
        if data_offset < HEADER_SIZE:
            raise FLVError(f"{self.name}: DataOffset {data_offset} < 9 (FLV E.2)")
        #: FLV E.2 header fields.
        self.version = version
        self.has_audio = bool(flags & FLAG_AUDIO)
        self.has_video = bool(flags & FLAG_VIDEO)
        self.data_offset = data_offset
        if data_offset > HEADER_SIZE:  # FLV E.2: seek to DataOffset, do not assume 9
            skipped = _read_exact(self._file, data_offset - HEADER_SIZE)
            if len(skipped) < data_offset - HEADER_SIZE:
                raise FLVError(f"{self.name}: file ends before DataOffset {data_offset} (FLV E.2)")
        self._position = data_offset
        self.last_tag_end = data_offset
        # FLV E.3: PreviousTagSize0 is always 0.
        back = _read_exact(self._file, 4)
        if len(back) < 4:
            self.truncated = bool(back)
            self.last_back_pointer_present = False
            self._done = True
            return
        self._position += 4
        (size0,) = _U32.unpack(back)
        if size0 != 0:
            self._bad_back_pointer(f"PreviousTagSize0 is {size0}, not 0")
        self._done = False

    def _depart(self, text: str, clause: str) -> None:
        """A departure from the format: an error when strict, else one warning per kind."""
        if self.strict:
            raise FLVError(f"{self.name}: {text} ({clause})")
        key = text.split(" ", 1)[0] + clause
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("%s: %s (%s); tolerated", self.name, text, clause)

    def _bad_back_pointer(self, text: str) -> None:
        self.bad_back_pointers += 1
        self._depart(text, "FLV E.3")

    # FLV E.3 / E.4.1 -------------------------------------------------------------------
    def __iter__(self) -> Iterator[Tag]:
        return self

    def __next__(self) -> Tag:
        tag = self.read_tag()
        if tag is None:
            raise StopIteration
        return tag

    def read_tag(self) -> Tag | None:
        """The next tag, or ``None`` at the end of the file (or of its last complete tag)."""
        if self._done:
            return None
        start = self._position
        header = _read_exact(self._file, TAG_HEADER_SIZE)
        if len(header) < TAG_HEADER_SIZE:
            self._finish(truncated=bool(header), where=start)
            return None
        word0, word1, sid_hi, sid_lo = _TAG_HEADER.unpack(header)
        first = word0 >> 24
        tag_type = first & 0x1F  # FLV E.4.1: TagType UB[5]
        encrypted = bool(first & 0x20)  # FLV E.4.1: Filter UB[1]
        size = word0 & 0xFFFFFF  # FLV E.4.1: DataSize UI24
        # FLV E.4.1: Timestamp UI24 holds the low bits, TimestampExtended the upper 8.
        timestamp = (word1 >> 8) | ((word1 & 0xFF) << 24)
        stream_id = (sid_hi << 8) | sid_lo
        if first & 0xC0:
            self._depart(f"tag at offset {start}: reserved bits set (0x{first:02x})", "FLV E.4.1")
        if stream_id != 0:
            self._depart(f"tag at offset {start}: StreamID {stream_id}, not 0", "FLV E.4.1")
        if tag_type not in TAG_TYPES:
            self._depart(f"tag at offset {start}: unknown TagType {tag_type}", "FLV E.4.1")
        # Body and the back pointer after it, in one read.
        body = _read_exact(self._file, size + 4)
        if len(body) < size:
            self._finish(truncated=True, where=start)
            return None
        self._position = start + TAG_HEADER_SIZE + len(body)
        self.last_tag_end = start + TAG_HEADER_SIZE + size
        self.last_tag_size = TAG_HEADER_SIZE + size
        if len(body) < size + 4:
            # The tag is whole but its back pointer is missing (or cut): keep the tag.
            self.truncated = True
            self.last_back_pointer_present = False
            self._done = True
            logger.info("%s: file ends without the back pointer of its last tag", self.name)
        else:
            self.last_back_pointer_present = True
            (back,) = _U32.unpack_from(body, size)
            if back != TAG_HEADER_SIZE + size:  # FLV E.3: PreviousTagSize = 11 + DataSize
                self._bad_back_pointer(
                    f"tag at offset {start}: PreviousTagSize {back}, expected {TAG_HEADER_SIZE + size}"
                )
        self.tag_count += 1
        return Tag(tag_type, timestamp, body[:size], start, encrypted)

    def _finish(self, truncated: bool, where: int) -> None:
        self._done = True
        if truncated:
            self.truncated = True
            logger.warning(
                "%s: truncated tag at offset %d; stopping after %d complete tags",
                self.name, where, self.tag_count,
            )  # fmt: skip

    def close(self) -> None:
        """Close the file if this reader opened it."""
        if self._owned:
            self._file.close()


def _encode_header(has_audio: bool, has_video: bool) -> bytes:
    """FLV E.2 header and FLV E.3 PreviousTagSize0."""
    flags = (FLAG_AUDIO if has_audio else 0) | (FLAG_VIDEO if has_video else 0)
    return _HEADER.pack(SIGNATURE, VERSION, flags, HEADER_SIZE) + _U32.pack(0)


class Writer(_Closing):
    """FLV E.2-E.4.1: write an FLV file: header, PreviousTagSize0, then tag + back pointer.

    ``write()`` takes a :class:`Tag` or an :class:`rtmp.Message` of type 8, 9 or 18 (15 is
    written as the E-RTMP AMF3 script tag).  ``timestamp_offset`` is added to every timestamp
    (APPEND continues a file's timeline with it).  ``strip_set_data_frame`` drops the
    ``@setDataFrame`` prefix of data messages, as recording servers do (RTMP 7.1.2 [impl]).
    """

    def __init__(
        self,
        path_or_file: PathOrFile,
        has_audio: bool = True,
        has_video: bool = True,
        *,
        write_header: bool = True,
        timestamp_offset: int = 0,
        strip_set_data_frame: bool = True,
    ) -> None:
        self._file, self._owned, self.name = _open(path_or_file, "wb")
        self.has_audio = has_audio
        self.has_video = has_video
        self.timestamp_offset = timestamp_offset
        self.strip_set_data_frame = strip_set_data_frame
        #: Timestamp (after the offset) of the last tag written; -1 before any.
        self.last_timestamp = -1
        self.tag_count = 0
        self.bytes_written = 0
        self.closed = False
        if write_header:
            header = _encode_header(has_audio, has_video)
            self._file.write(header)
            self.bytes_written += len(header)

    @classmethod
    def open_append(
        cls,
        path: str | os.PathLike[str],
        *,
        continue_timestamps: bool = True,
        strip_set_data_frame: bool = True,
    ) -> Writer:
        """RTMP 7.2.2.6 ``append``: open an FLV for appending, creating it if missing.

        The existing file is validated (:class:`FLVError` if it is not FLV); a truncated
        last tag is cut off, a missing final back pointer is restored, and the file is
        positioned at its end.  With ``continue_timestamps`` the writer's
        ``timestamp_offset`` becomes the file's last timestamp, so a new stream whose
        timestamps start at 0 continues the old timeline monotonically (nginx-rtmp's
        ``record_append`` does the same).
        """
        name = os.fspath(path)
        if not os.path.exists(name) or os.path.getsize(name) == 0:
            return cls(name, strip_set_data_frame=strip_set_data_frame)
        last_timestamp, end, last_size, has_back, flags = _scan_for_append(name)
        handle = open(name, "r+b")  # noqa: SIM115 - handed to the Writer, which closes it
        try:
            handle.truncate(end)
            handle.seek(end)
            if not has_back:
                handle.write(_U32.pack(last_size))  # FLV E.3: restore PreviousTagSizeN
            writer = cls(
                handle, has_audio=bool(flags & FLAG_AUDIO), has_video=bool(flags & FLAG_VIDEO),
                write_header=False, strip_set_data_frame=strip_set_data_frame,
                timestamp_offset=max(last_timestamp, 0) if continue_timestamps else 0,
            )  # fmt: skip
        except BaseException:
            handle.close()
            raise
        writer._owned = True
        writer.name = name
        writer.last_timestamp = last_timestamp
        return writer

    def write(self, item: Tag | Message) -> None:
        """FLV E.4.1: append one tag and its PreviousTagSize."""
        if self.closed:
            raise ValueError(f"{self.name}: write to a closed FLV writer")
        if isinstance(item, Message):
            tag_type, timestamp, data = int(item.type), item.timestamp, item.data
        elif isinstance(item, Tag):
            tag_type, timestamp, data = item.type, item.timestamp, item.data
        else:
            raise TypeError(f"Writer.write takes a Tag or a Message, not {type(item).__name__}")
        if tag_type not in TAG_TYPES:
            raise ValueError(f"type {tag_type} cannot be an FLV tag (FLV E.4.1: 8, 9, 18)")
        if self.strip_set_data_frame and tag_type == TAG_SCRIPT:
            data = strip_set_data_frame_bytes(data)
        size = len(data)
        if size > MAX_DATA_SIZE:
            raise ValueError(f"tag body of {size} bytes exceeds the UI24 DataSize (FLV E.4.1)")
        timestamp = (timestamp + self.timestamp_offset) & 0xFFFFFFFF
        header = _TAG_HEADER.pack(
            (tag_type << 24) | size,
            # FLV E.4.1: low 24 bits, then TimestampExtended = the upper 8 bits.
            ((timestamp & 0xFFFFFF) << 8) | (timestamp >> 24),
            0,  # FLV E.4.1: StreamID always 0
            0,
        )
        self._file.write(b"".join((header, data, _U32.pack(TAG_HEADER_SIZE + size))))
        self.bytes_written += TAG_HEADER_SIZE + size + 4
        self.tag_count += 1
        self.last_timestamp = timestamp

    def write_all(self, items: Iterator[Tag | Message] | list[Tag | Message]) -> None:
        """Write every tag or message of an iterable."""
        for item in items:
            self.write(item)

    def flush(self, fsync: bool = False) -> None:
        """Flush buffered tags to the OS; ``fsync=True`` also forces them to disk."""
        self._file.flush()
        if fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Flush, and close the file if this writer opened it.  Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            self._file.flush()
        finally:
            if self._owned:
                self._file.close()


def _scan_for_append(name: str) -> tuple[int, int, int, bool, int]:
    """Validate an FLV for APPEND: (last timestamp, end offset, last tag size,
    back pointer present, header flags).

    The fast path follows the final back pointer to the last tag (FLV E.3) and checks it
    is consistent; otherwise every tag is read.
    """
    file_size = os.path.getsize(name)
    with open(name, "rb") as handle:
        reader = Reader(handle)
        flags = (FLAG_AUDIO if reader.has_audio else 0) | (FLAG_VIDEO if reader.has_video else 0)
        body_start = reader.data_offset + 4
        if file_size >= body_start + TAG_HEADER_SIZE + 4:
            handle.seek(file_size - 4)
            (back,) = _U32.unpack(handle.read(4))
            start = file_size - 4 - back
            if back >= TAG_HEADER_SIZE and start >= body_start:
                handle.seek(start)
                word0, word1, sid_hi, sid_lo = _TAG_HEADER.unpack(handle.read(TAG_HEADER_SIZE))
                size = word0 & 0xFFFFFF
                if (
                    (word0 >> 24) & 0x1F in TAG_TYPES
                    and TAG_HEADER_SIZE + size == back
                    and (sid_hi, sid_lo) == (0, 0)
                ):
                    timestamp = (word1 >> 8) | ((word1 & 0xFF) << 24)
                    return timestamp, file_size, back, True, flags
            # Not consistent: fall back to a full scan from the first tag.
            handle.seek(0)
            reader = Reader(handle)
        last_timestamp = -1
        for tag in reader:
            last_timestamp = tag.timestamp
        if reader.truncated:
            logger.warning("%s: cutting a truncated last tag before appending", name)
        if reader.tag_count == 0:
            return -1, reader.data_offset + 4, 0, True, flags
        return (
            last_timestamp,
            reader.last_tag_end,
            reader.last_tag_size,
            False,  # the back pointer is (re)written after truncating at last_tag_end
            flags,
        )


# --------------------------------------------------------------------------------------
# FLV E.4.2.1 AUDIODATA / ERTMP Enhanced Audio.
# --------------------------------------------------------------------------------------
#: FLV E.4.2.1 SoundFormat names.
SOUND_FORMATS: dict[int, str] = {
    0: "PCM",
    1: "ADPCM",
    2: "MP3",
    3: "PCM-LE",
    4: "Nellymoser 16kHz",
    5: "Nellymoser 8kHz",
    6: "Nellymoser",
    7: "G.711 A-law",
    8: "G.711 mu-law",
    9: "ExHeader",
    10: "AAC",
    11: "Speex",
    14: "MP3 8kHz",
    15: "Device-specific",
}
SOUND_FORMAT_AAC = 10
SOUND_FORMAT_EX_HEADER = 9  # ERTMP Enhanced Audio
#: FLV E.4.2.1 SoundRate (kHz as the spec names them).
SOUND_RATES = ("5.5 kHz", "11 kHz", "22 kHz", "44 kHz")
AAC_SEQUENCE_HEADER = 0  # FLV E.4.2.1 AACPacketType
AAC_RAW = 1

#: ERTMP Enhanced Audio AudioPacketType names (the tables live in :mod:`rtmp.ertmp`).
AUDIO_PACKET_TYPES = ertmp.AUDIO_PACKET_NAMES
#: ERTMP Enhanced Audio FourCC codec names.
AUDIO_FOURCC_NAMES = ertmp.AUDIO_FOURCCS


@dataclass(frozen=True)
class AudioTagHeader:
    """FLV E.4.2.1: the AudioTagHeader (and ERTMP Enhanced Audio ExAudioTagHeader).

    Legacy: ``sound_format``, ``sound_rate``, ``sound_size``, ``sound_type`` and, for AAC,
    ``aac_packet_type``.  Enhanced (SoundFormat 9): ``packet_type`` is the AudioPacketType
    and ``fourcc`` the codec (:attr:`ex` is the whole :class:`rtmp.ertmp.AudioHeader`, with
    one :class:`rtmp.ertmp.Track` per track).  ``header_size`` is where the codec payload starts.
    """

    sound_format: int
    sound_rate: int = 0
    sound_size: int = 0
    sound_type: int = 0
    aac_packet_type: int | None = None
    packet_type: int | None = None
    fourcc: str | None = None
    header_size: int = 1
    #: The full Enhanced RTMP header (tracks, ModEx, multitrack type); None when legacy.
    ex: ertmp.AudioHeader | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, data: bytes) -> AudioTagHeader:
        """Parse the header at the start of an audio payload; :class:`FLVError` if short."""
        if not data:
            raise FLVError("empty audio payload: no AudioTagHeader (FLV E.4.2.1)")
        first = data[0]
        sound_format = first >> 4  # FLV E.4.2.1: SoundFormat UB[4]
        if sound_format == SOUND_FORMAT_EX_HEADER:  # ERTMP Enhanced Audio
            ex = ertmp.parse_audio(data, allow_unknown=True)  # DecodeError is an FLVError
            track = ex.tracks[0]
            return cls(
                sound_format, packet_type=ex.packet_type,
                fourcc=None if ex.multitrack_type == ertmp.AvMultitrackType.MANY_TRACKS_MANY_CODECS
                else track.fourcc,
                header_size=ex.header_size if ex.is_multitrack else track.offset, ex=ex,
            )  # fmt: skip
        header = cls(
            sound_format,
            sound_rate=(first >> 2) & 0x03,  # FLV E.4.2.1: SoundRate UB[2]
            sound_size=(first >> 1) & 0x01,  # FLV E.4.2.1: SoundSize UB[1]
            sound_type=first & 0x01,  # FLV E.4.2.1: SoundType UB[1]
        )
        if sound_format == SOUND_FORMAT_AAC:
            if len(data) < 2:
                raise FLVError("AAC audio without its AACPacketType byte (FLV E.4.2.1)")
            return cls(
                sound_format, header.sound_rate, header.sound_size, header.sound_type,
                aac_packet_type=data[1], header_size=2,
            )  # fmt: skip
        return header

    @property
    def is_enhanced(self) -> bool:
        """ERTMP Enhanced Audio: SoundFormat 9 (ExHeader)."""
        return self.sound_format == SOUND_FORMAT_EX_HEADER

    @property
    def tracks(self) -> tuple[ertmp.Track, ...]:
        """ERTMP Enhanced Audio: the message's tracks (``()`` for a legacy header)."""
        return self.ex.tracks if self.ex is not None else ()

    @property
    def is_sequence_header(self) -> bool:
        """AAC sequence header (FLV E.4.2.2) or enhanced SequenceStart."""
        if self.is_enhanced:
            return self.packet_type == 0
        return self.sound_format == SOUND_FORMAT_AAC and self.aac_packet_type == AAC_SEQUENCE_HEADER

    @property
    def codec_name(self) -> str:
        """A short codec name ("AAC", "MP3", "Opus", ...)."""
        if self.is_enhanced:
            return AUDIO_FOURCC_NAMES.get(self.fourcc or "", self.fourcc or "enhanced")
        return SOUND_FORMATS.get(self.sound_format, f"format {self.sound_format}")


# --------------------------------------------------------------------------------------
# FLV E.4.3.1 VIDEODATA / ERTMP Enhanced Video.
# --------------------------------------------------------------------------------------
#: FLV E.4.3.1 FrameType (also the VideoFrameType of ERTMP Enhanced Video).
FRAME_KEY = 1
FRAME_INTER = 2
FRAME_DISPOSABLE_INTER = 3
FRAME_GENERATED_KEY = 4
FRAME_COMMAND = 5
FRAME_TYPES = {
    1: "keyframe",
    2: "inter frame",
    3: "disposable inter frame",
    4: "generated keyframe",
    5: "command frame",
}
#: FLV E.4.3.1 CodecID.
CODEC_AVC = 7
#: Not in the spec: the legacy "FLV HEVC" CodecID 12 of Chinese CDNs [impl].
CODEC_HEVC_LEGACY = 12
CODEC_IDS: dict[int, str] = {
    2: "Sorenson H.263",
    3: "Screen video",
    4: "VP6",
    5: "VP6 alpha",
    6: "Screen video v2",
    7: "H.264",
    12: "HEVC",
}
#: FLV E.4.3.1 AVCPacketType.
AVC_SEQUENCE_HEADER = 0
AVC_NALU = 1
AVC_END_OF_SEQUENCE = 2
#: ERTMP Enhanced Video VideoPacketType.
PACKET_SEQUENCE_START = 0
PACKET_CODED_FRAMES = 1
PACKET_SEQUENCE_END = 2
PACKET_CODED_FRAMES_X = 3
PACKET_METADATA = 4
PACKET_MPEG2TS_SEQUENCE_START = 5
PACKET_MULTITRACK = 6
PACKET_MOD_EX = 7
VIDEO_PACKET_TYPES = ertmp.VIDEO_PACKET_NAMES
#: ERTMP Enhanced Video FourCC codec names.
VIDEO_FOURCC_NAMES = ertmp.VIDEO_FOURCCS
_LEGACY_FOURCC = {CODEC_AVC: "avc1", CODEC_HEVC_LEGACY: "hvc1"}
#: ERTMP Enhanced Video: FourCCs whose CodedFrames carry an SI24 composition time.
_CTS_FOURCCS = frozenset(f.encode("latin-1") for f in ertmp.FOURCCS_WITH_COMPOSITION_TIME)


def _si24(data: bytes, offset: int) -> int:
    """A signed 24-bit big-endian integer (FLV E.4.3.1 CompositionTime SI24)."""
    value = int.from_bytes(data[offset : offset + 3], "big")
    return value - 0x1000000 if value & _SI24_SIGN else value


@dataclass(frozen=True)
class VideoTagHeader:
    """FLV E.4.3.1: the VideoTagHeader, or ERTMP Enhanced Video's ExVideoTagHeader.

    ``frame_type`` (1 key, 2 inter, ...); legacy headers have ``codec_id`` and, for AVC
    (7) and legacy HEVC (12), ``packet_type`` = AVCPacketType and ``composition_time``;
    enhanced headers have ``packet_type`` = VideoPacketType and ``fourcc``.  ``fourcc`` is
    also filled in for legacy AVC ("avc1") and HEVC ("hvc1"), so callers can test one
    field.  ``header_size`` is where the codec payload (NALUs, config record) starts.
    """

    frame_type: int
    codec_id: int | None = None
    packet_type: int | None = None
    composition_time: int = 0
    fourcc: str | None = None
    is_enhanced: bool = False
    multitrack: bool = False
    command: int | None = None
    header_size: int = 1
    #: The full Enhanced RTMP header (tracks, ModEx, multitrack type); None when legacy.
    ex: ertmp.VideoHeader | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, data: bytes) -> VideoTagHeader:
        """Parse the header at the start of a video payload; :class:`FLVError` if short."""
        if not data:
            raise FLVError("empty video payload: no VideoTagHeader (FLV E.4.3.1)")
        first = data[0]
        if first & 0x80:  # ERTMP Enhanced Video: IsExVideoHeader
            return cls._parse_enhanced(data)
        frame_type = first >> 4  # FLV E.4.3.1: FrameType UB[4]
        codec_id = first & 0x0F  # FLV E.4.3.1: CodecID UB[4]
        if frame_type == FRAME_COMMAND:
            command = data[1] if len(data) > 1 else None  # FLV E.4.3.1: UI8 seek marker
            return cls(frame_type, codec_id, command=command, header_size=min(len(data), 2))
        if codec_id in (CODEC_AVC, CODEC_HEVC_LEGACY):
            if len(data) < 5:
                raise FLVError(
                    f"{CODEC_IDS[codec_id]} video of {len(data)} bytes: AVCPacketType and "
                    "CompositionTime need 5 (FLV E.4.3.1)"
                )
            return cls(
                frame_type, codec_id,
                packet_type=data[1],  # FLV E.4.3.1: AVCPacketType
                composition_time=_si24(data, 2),  # FLV E.4.3.1: CompositionTime SI24
                fourcc=_LEGACY_FOURCC[codec_id], header_size=5,
            )  # fmt: skip
        return cls(frame_type, codec_id)

    @classmethod
    def _parse_enhanced(cls, data: bytes) -> VideoTagHeader:
        """ERTMP Enhanced Video, read by :func:`rtmp.ertmp.parse_video` in the v2 order
        (ModEx, command, Multitrack, FourCC); unknown FourCCs pass (a relay forwards them)."""
        ex = ertmp.parse_video(data, allow_unknown=True)  # DecodeError is an FLVError
        if ex.command is not None:
            return cls(
                ex.frame_type, packet_type=ex.packet_type, is_enhanced=True,
                command=ex.command, header_size=ex.header_size, ex=ex,
            )  # fmt: skip
        track = ex.tracks[0]
        many_codecs = ex.multitrack_type == ertmp.AvMultitrackType.MANY_TRACKS_MANY_CODECS
        return cls(
            ex.frame_type, packet_type=ex.packet_type,
            composition_time=0 if ex.is_multitrack else track.composition_time,
            fourcc=None if many_codecs else track.fourcc, is_enhanced=True,
            multitrack=ex.is_multitrack,
            header_size=ex.header_size if ex.is_multitrack else track.offset, ex=ex,
        )  # fmt: skip

    @property
    def tracks(self) -> tuple[ertmp.Track, ...]:
        """ERTMP Enhanced Video: the message's tracks (``()`` for legacy or command frames)."""
        return self.ex.tracks if self.ex is not None else ()

    @property
    def is_keyframe(self) -> bool:
        """FLV E.4.3.1 FrameType 1: a seekable frame (sequence headers included); never a
        command frame or an ERTMP Metadata packet, whose frame type is ignored."""
        if self.is_enhanced and (self.command is not None or self.packet_type == PACKET_METADATA):
            return False
        return self.frame_type == FRAME_KEY

    @property
    def is_sequence_header(self) -> bool:
        """An AVC/HEVC sequence header (FLV E.4.3.1 AVCPacketType 0) or enhanced
        SequenceStart / MPEG2TSSequenceStart: the decoder configuration record."""
        if self.is_enhanced:
            return self.command is None and self.packet_type in (
                PACKET_SEQUENCE_START, PACKET_MPEG2TS_SEQUENCE_START,
            )  # fmt: skip
        if self.frame_type == FRAME_COMMAND:
            return False
        return self.codec_id in _LEGACY_FOURCC and self.packet_type == AVC_SEQUENCE_HEADER

    @property
    def codec_name(self) -> str:
        """A short codec name ("H.264", "HEVC", "AV1", "VP6", ...)."""
        if self.fourcc is not None:
            return VIDEO_FOURCC_NAMES.get(self.fourcc, self.fourcc)
        if self.codec_id is not None:
            return CODEC_IDS.get(self.codec_id, f"codec {self.codec_id}")
        return "enhanced"


# --------------------------------------------------------------------------------------
# Quick classification for servers (GOP cache, late joiners) and the protocol trace.
# --------------------------------------------------------------------------------------
def _type_and_data(item: Tag | Message) -> tuple[int, bytes]:
    return int(item.type), item.data


def is_keyframe(item: Tag | Message) -> bool:
    """FLV E.4.3.1 / ERTMP Enhanced Video: a video message or tag whose frame type is 1.

    Usually only the first bytes are read; an ERTMP Metadata packet (whatever its frame
    type), a command frame and an enhanced header that does not parse are not keyframes;
    anything that is not video is ``False``.
    """
    kind, data = _type_and_data(item)
    if kind != TAG_VIDEO or not data:
        return False
    first = data[0]
    if first & 0x80:  # ERTMP: VideoFrameType is UB[3] after IsExVideoHeader
        if (first >> 4) & 0x07 != FRAME_KEY:
            return False
        packet_type = first & 0x0F
        if packet_type <= PACKET_MPEG2TS_SEQUENCE_START:  # one track: FourCC [+ SI24], no parse
            if packet_type == PACKET_METADATA:  # ERTMP Metadata: the frame type is ignored
                return False
            if packet_type == PACKET_CODED_FRAMES and data[1:5] in _CTS_FOURCCS:
                return len(data) >= 8
            return len(data) >= 5
        try:  # ModEx or Multitrack (or reserved): read the whole header
            header = ertmp.parse_video(data, allow_unknown=True)
        except FLVError:
            return False
        return header.command is None and not header.is_metadata
    return first >> 4 == FRAME_KEY


def is_sequence_header(item: Tag | Message) -> bool:
    """Whether a message or tag carries decoder configuration that late joiners need first:
    AAC AudioSpecificConfig (FLV E.4.2.2), AVC/HEVC config (FLV E.4.3.1 AVCPacketType 0),
    or an enhanced SequenceStart (ERTMP Enhanced Video / Audio)."""
    kind, data = _type_and_data(item)
    if not data:
        return False
    first = data[0]
    # Fast paths on the first bytes (this runs for every media message a server relays);
    # multitrack and ModEx headers fall through to the full parse.
    if kind == TAG_VIDEO:
        if not first & 0x80:  # FLV E.4.3.1 legacy header
            if first & 0x0F in _LEGACY_FOURCC and first >> 4 != FRAME_COMMAND:
                return len(data) >= 5 and data[1] == AVC_SEQUENCE_HEADER
            return False
        packet_type = first & 0x0F  # ERTMP Enhanced Video
        if packet_type not in (PACKET_MULTITRACK, PACKET_MOD_EX):
            # VideoFrameType 1-4 (5 is a command frame, 0, 6 and 7 are reserved).
            return 1 <= (first >> 4) & 0x07 <= 4 and len(data) >= 5 and packet_type in (
                PACKET_SEQUENCE_START, PACKET_MPEG2TS_SEQUENCE_START,
            )  # fmt: skip
    elif kind == TAG_AUDIO:
        sound_format = first >> 4
        if sound_format == SOUND_FORMAT_AAC:  # FLV E.4.2.1 AACPacketType
            return len(data) >= 2 and data[1] == AAC_SEQUENCE_HEADER
        if sound_format != SOUND_FORMAT_EX_HEADER:
            return False
        if first & 0x0F not in (5, 7):  # ERTMP Enhanced Audio, not Multitrack/ModEx
            return first & 0x0F == 0 and len(data) >= 5
    else:
        return False
    try:
        if kind == TAG_VIDEO and data:
            return VideoTagHeader.parse(data).is_sequence_header
        if kind == TAG_AUDIO and data:
            return AudioTagHeader.parse(data).is_sequence_header
    except FLVError:
        return False
    return False


_HeaderT = TypeVar("_HeaderT", "AudioTagHeader", "VideoTagHeader")


def _parsed(kind: type[_HeaderT], data: bytes, empty: str) -> _HeaderT | str:
    """The tag header at the start of ``data``, or what the trace says instead (``empty``
    for no bytes)."""
    if not data:
        return empty
    try:
        return kind.parse(data)
    except FLVError as exc:
        return f"malformed {'audio' if kind is AudioTagHeader else 'video'} ({exc})"


def _track_codecs(tracks: tuple[ertmp.Track, ...]) -> tuple[str, str]:
    """("HEVC/AV1", "hvc1/av01"): the distinct codecs and FourCCs of a message's tracks."""
    fourccs = list(dict.fromkeys(t.fourcc for t in tracks))
    names = list(dict.fromkeys(t.codec_name for t in tracks))
    return "/".join(names), "/".join(fourccs)


def describe_audio(data: bytes) -> str:
    """A short human description of an audio payload, for the protocol trace."""
    header = _parsed(AudioTagHeader, data, "audio silence (empty payload)")
    if isinstance(header, str):
        return header
    body = len(data) - header.header_size
    if header.is_enhanced:
        kind = AUDIO_PACKET_TYPES.get(header.packet_type or 0, f"packet type {header.packet_type}")
        codecs, fourccs = _track_codecs(header.tracks)
        if header.ex is not None and header.ex.is_multitrack:
            return f"{codecs} {kind}, {len(header.tracks)} tracks (enhanced {fourccs}, multitrack)"
        return f"{codecs} {kind}, {body} bytes (enhanced {fourccs})"
    params = (
        f"{SOUND_RATES[header.sound_rate]} {8 << header.sound_size}-bit "
        f"{'stereo' if header.sound_type else 'mono'}"
    )
    if header.sound_format == SOUND_FORMAT_AAC:
        kind = "sequence header" if header.is_sequence_header else "raw"
        return f"AAC {kind}, {body} bytes ({params})"
    return f"{header.codec_name}, {body} bytes ({params})"


def describe_video(data: bytes) -> str:
    """A short human description of a video payload, for the protocol trace."""
    header = _parsed(VideoTagHeader, data, "empty video payload")
    if isinstance(header, str):
        return header
    frame = FRAME_TYPES.get(header.frame_type, f"frame type {header.frame_type}")
    body = len(data) - header.header_size
    if header.command is not None or (not header.is_enhanced and header.frame_type == FRAME_COMMAND):
        marker = {0: "start of seek", 1: "end of seek"}.get(header.command or 0, "command")
        return f"{header.codec_name} {frame} ({marker})"
    if header.is_enhanced:
        kind = VIDEO_PACKET_TYPES.get(header.packet_type or 0, f"packet type {header.packet_type}")
        codecs, fourccs = _track_codecs(header.tracks)
        size = f"{len(header.tracks)} tracks" if header.multitrack else f"{body} bytes"
        if header.packet_type == PACKET_METADATA:  # ERTMP: the frame type is ignored
            text = f"{codecs} {kind}, {size} (enhanced {fourccs}"
        else:
            text = f"{codecs} {frame}, {kind}, {size} (enhanced {fourccs}"
        if header.multitrack:
            text += ", multitrack"
        if header.composition_time:
            text += f", cts {header.composition_time}"
        return text + ")"
    if header.codec_id in _LEGACY_FOURCC:
        kind = {0: "sequence header", 1: "NALU", 2: "end of sequence"}.get(
            header.packet_type or 0, f"packet type {header.packet_type}"
        )
        cts = f", cts {header.composition_time}" if header.composition_time else ""
        return f"{header.codec_name} {frame}, {kind}, {body} bytes{cts}"
    return f"{header.codec_name} {frame}, {body} bytes"


def describe_tag(item: Tag | Message) -> str:
    """A one-line description of a tag or media message (audio, video or script data)."""
    kind, data = _type_and_data(item)
    if kind == TAG_AUDIO:
        return describe_audio(data)
    if kind == TAG_VIDEO:
        return describe_video(data)
    if kind in (TAG_SCRIPT, TAG_SCRIPT_AMF3):
        return f"script data, {len(data)} bytes"
    return f"type {kind}, {len(data)} bytes"


def read_metadata(path_or_file: PathOrFile, max_tags: int = 64) -> dict[str, Any] | None:
    """FLV E.5: the ``onMetaData`` properties of a file, or ``None`` if it has none.

    Only the first ``max_tags`` tags are searched (muxers put metadata first).  A leading
    ``@setDataFrame`` (RTMP 7.1.2 [impl]) is skipped; ECMA arrays come back as plain dicts.
    """
    from .amf import decode_payload  # imported here: reading tags needs no AMF codec

    with Reader(path_or_file) as reader:
        for index, tag in enumerate(reader):
            if index >= max_tags:
                break
            if tag.type not in (TAG_SCRIPT, TAG_SCRIPT_AMF3):
                continue
            try:
                values = decode_payload(strip_set_data_frame_bytes(tag.data), tag.type)
            except (ValueError, RTMPError) as exc:
                logger.warning("%s: undecodable script tag at %d: %s", reader.name, tag.offset, exc)
                continue
            if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
                return dict(values[1])
    return None


def read_all(path_or_file: PathOrFile) -> list[Tag]:
    """Every tag of a (small) file, as a list."""
    with Reader(path_or_file) as reader:
        return list(reader)


def open_bytes(data: bytes) -> Reader:
    """A :class:`Reader` over an in-memory FLV."""
    return Reader(io.BytesIO(data))
