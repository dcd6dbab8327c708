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
from typing import Dict, List, Mapping, Optional, Sequence, Union

from . import flv

__all__ = [
    "ON_METADATA_TAG",
    "metadata_duration_offset",
    "patch_metadata_duration",
    "patch_metadata_numbers",
]

#: FLV E.5: a script tag whose name (AMF0 string) is onMetaData.
ON_METADATA_TAG = b"\x02\x00\x0aonMetaData"

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
