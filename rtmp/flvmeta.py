"""FLV E.5: the ``onMetaData`` script tag of a file, found and patched in place.

A live publisher's metadata says ``duration: 0`` (it cannot know the length); when a
recording (or ``rtmp play -o``) is finished, :func:`patch_metadata_numbers` writes the
real ``duration`` and ``filesize`` into the first onMetaData tag without moving a byte,
as ffmpeg's FLV muxer does.  The scan is by bytes (the AMF0 name and property
prefixes), so no AMF codec is needed.
"""

from __future__ import annotations

import os
import struct
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import ertmp, flv

__all__ = [
    "ON_METADATA_TAG",
    "metadata_codec",
    "metadata_duration_offset",
    "patch_metadata_duration",
    "patch_metadata_numbers",
]

#: FLV E.5: a script tag whose name (AMF0 string) is onMetaData.
ON_METADATA_TAG = b"\x02\x00\x0aonMetaData"

def metadata_codec(value: Any, *, video: bool) -> Optional[Dict[str, Any]]:
    """FLV E.5 / ERTMP Enhancing onMetaData: what ``videocodecid`` / ``audiocodecid`` names.

    A legacy CodecID / SoundFormat number (FLV E.4.3.1 / E.4.2.1) gives ``{"codec":
    "H.264", "codec_id": 7}``; a FOURCC, "big-endian relative to the underlying ASCII
    character sequence" (``"av01" == 1635135537.0``) or written as its four characters,
    gives ``{"codec": "AV1", "fourcc": "av01"}`` (a FourCC the document does not define
    keeps its characters as the name).  None for anything else (booleans, NaN, fractions,
    negative numbers, other strings).
    """
    names = ertmp.VIDEO_FOURCCS if video else ertmp.AUDIO_FOURCCS
    if isinstance(value, str):
        fourcc = value if len(value) == 4 and value.isascii() and value.isprintable() else None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not (0 <= value < 2**32 and float(value).is_integer()):
            return None
        number = int(value)
        legacy = flv.CODEC_IDS if video else flv.SOUND_FORMATS
        if number in legacy:
            return {"codec": legacy[number], "codec_id": number}
        raw = number.to_bytes(4, "big")
        fourcc = raw.decode("ascii") if all(0x20 < b < 0x7F for b in raw) else None
    else:
        return None
    if fourcc is None:
        return None
    return {"codec": names.get(fourcc, fourcc), "fourcc": fourcc}


#: FLV E.5: a numeric property inside an onMetaData ECMA array is its UTF-8 name with a
#: 16-bit length, then the AMF0 number marker 0x00 and an 8-byte double.
_DOUBLE = struct.Struct(">d")


def _number_property(name: str) -> bytes:
    encoded = name.encode()
    return struct.pack(">H", len(encoded)) + encoded + b"\x00"


#: FLV E.5: the ``duration`` property (seconds), as :func:`_number_property` writes it.
DURATION_PROPERTY = _number_property("duration")


def _metadata_number_offsets(
    path: Union[str, "os.PathLike[str]"], names: Sequence[str]
) -> Optional[Dict[str, int]]:
    """FLV E.5: where the first onMetaData tag stores the numbers ``names``: the file
    offsets of their 8-byte doubles (names the tag lacks are left out), ``None`` if there
    is no onMetaData among the first 16 tags (muxers put it first)."""
    with flv.Reader(path) as reader:
        for count, tag in enumerate(reader):
            if count >= 16:
                break
            if tag.type == flv.TAG_SCRIPT and tag.data.startswith(ON_METADATA_TAG):
                offsets: Dict[str, int] = {}
                for name in names:
                    needle = _number_property(name)
                    where = tag.data.find(needle)
                    if where >= 0:
                        offsets[name] = tag.offset + flv.TAG_HEADER_SIZE + where + len(needle)
                return offsets
    return None


def metadata_duration_offset(path: Union[str, "os.PathLike[str]"]) -> Optional[int]:
    """FLV E.5: the file offset of the first onMetaData's ``duration`` double, ``-1`` if
    that tag has no duration, ``None`` if there is no onMetaData among the first 16 tags."""
    offsets = _metadata_number_offsets(path, ("duration",))
    return None if offsets is None else offsets.get("duration", -1)


def patch_metadata_numbers(path: Union[str, "os.PathLike[str]"],
                           values: Mapping[str, float]) -> List[str]:
    """FLV E.5: set numeric properties (``duration`` in seconds, ``filesize`` in bytes)
    in the file's first onMetaData tag, in place; returns the names found and written.

    The numbers are rewritten where they are (same size, no tag moves), as ffmpeg's
    FLV muxer does when it finishes a file; properties the tag lacks are not added.
    """
    offsets = _metadata_number_offsets(path, list(values))
    if not offsets:
        return []
    with open(path, "r+b") as file:
        for name, offset in offsets.items():
            file.seek(offset)
            file.write(_DOUBLE.pack(float(values[name])))
        file.flush()
        os.fsync(file.fileno())
    return list(offsets)


def patch_metadata_duration(path: Union[str, "os.PathLike[str]"], duration_ms: int) -> bool:
    """FLV E.5: set ``duration`` in the file's first onMetaData tag, in place.

    A live publisher sends ``duration: 0`` (it cannot know); players use the value for
    their seek bar and ffprobe reports it.  Returns whether a duration property was
    found (see :func:`patch_metadata_numbers`).
    """
    return bool(patch_metadata_numbers(path, {"duration": duration_ms / 1000.0}))
