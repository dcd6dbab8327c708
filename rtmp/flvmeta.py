"""FLV E.5: the ``onMetaData`` script tag of a file, found and patched in place.

A live publisher's metadata says ``duration: 0`` (it cannot know the length); when a
recording is finished :func:`patch_metadata_duration` writes the real value into the
first onMetaData tag without moving a byte, as ffmpeg's FLV muxer does.  The scan is
by bytes (the AMF0 name and property prefixes), so no AMF codec is needed.
"""

from __future__ import annotations

import os
import struct
from typing import Optional, Union

from . import flv

__all__ = ["ON_METADATA_TAG", "metadata_duration_offset", "patch_metadata_duration"]

#: FLV E.5: a script tag whose name (AMF0 string) is onMetaData.
ON_METADATA_TAG = b"\x02\x00\x0aonMetaData"

#: FLV E.5: the ``duration`` property inside an onMetaData ECMA array: UTF-8 name with a
#: 16-bit length, then the AMF0 number marker 0x00 and an 8-byte double (seconds).
DURATION_PROPERTY = b"\x00\x08duration\x00"
_DOUBLE = struct.Struct(">d")


def metadata_duration_offset(path: Union[str, "os.PathLike[str]"]) -> Optional[int]:
    """FLV E.5: where the first onMetaData tag stores its duration: the file offset of the
    8-byte double, ``-1`` if that tag has no duration, ``None`` if there is no onMetaData
    among the first 16 tags (muxers put it first)."""
    with flv.Reader(path) as reader:
        for count, tag in enumerate(reader):
            if count >= 16:
                break
            if tag.type == flv.TAG_SCRIPT and tag.data.startswith(ON_METADATA_TAG):
                where = tag.data.find(DURATION_PROPERTY)
                if where < 0:
                    return -1
                return tag.offset + flv.TAG_HEADER_SIZE + where + len(DURATION_PROPERTY)
    return None


def patch_metadata_duration(path: Union[str, "os.PathLike[str]"], duration_ms: int) -> bool:
    """FLV E.5: set ``duration`` in the file's first onMetaData tag, in place.

    A live publisher sends ``duration: 0`` (it cannot know); players use the value for
    their seek bar and ffprobe reports it.  The number is rewritten where it is (same
    size, no tag moves), as ffmpeg's FLV muxer does when it finishes a file.  Returns
    whether a duration property was found.
    """
    offset = metadata_duration_offset(path)
    if offset is None or offset < 0:
        return False
    with open(path, "r+b") as file:
        file.seek(offset)
        file.write(_DOUBLE.pack(duration_ms / 1000.0))
        file.flush()
        os.fsync(file.fileno())
    return True
