"""RTMP 7.1.1-7.1.2: AMF payloads of command and data messages, in one call each.

An RTMP command (types 20 and 17) or data message (types 18 and 15) carries a
sequence of AMF values: for a command, the name, the transaction id, the
command object and the arguments (RTMP 7.2).  The two families differ:

* types 20 and 18 (AMF0): the payload is plain AMF0 values (AMF0 2), one
  reference context for the whole payload (AMF0 4.1.3 by analogy).
* types 17 and 15 (AMF3): the payload starts with a format selector byte, 0x00
  (the only value defined, [impl] Enhanced RTMP v2; librtmp skips it too), and
  then AMF0 values, any of which may switch to AMF3 for one value with the AVM+
  marker 0x11 (AMF0 3.1).  Each switched value has fresh AMF3 tables.

Encoding with ``object_encoding=3``: scalars (null, undefined, booleans,
numbers, strings) stay AMF0 and every other value (objects, arrays, dates,
ByteArrays...) is written as 0x11 + AMF3.  The command name and transaction id
are therefore readable by any parser that skips the selector byte and expects
AMF0 (librtmp, nginx-rtmp, ffmpeg), while objects gain AMF3's compact traits
and references.  This is how Flash Player writes AMF3 commands [unverified].

Decoding types 17/15 is lenient in two documented ways (``strict=False``):

* Deviation (peers that omit the selector): a payload whose first byte is 0x02
  (an AMF0 string, the command or handler name) is read as AMF0 values without a
  selector.  0x00 cannot be told apart this way (it is also the AMF0 number
  marker), so a 0x00 first byte is always taken as the selector.
* Deviation (pure AMF3 writers): if, after the selector, the first value starts
  with 0x06 it is read as a pure AMF3 payload (one set of AMF3 tables for the
  whole payload).  This is safe: 0x06 is AMF0 ``undefined``, which never names
  a command or handler, while it is the AMF3 string marker.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, List

from . import amf0, amf3
from .message import MessageType

__all__ = ["encode_payload", "decode_payload", "FORMAT_SELECTOR_AMF0"]

logger = logging.getLogger(__name__)

#: [impl] Enhanced RTMP v2: the only defined format selector of types 15/16/17: AMF0 values follow.
FORMAT_SELECTOR_AMF0 = 0x00

_AMF0_TYPES = frozenset({MessageType.COMMAND_AMF0, MessageType.DATA_AMF0})
_AMF3_TYPES = frozenset({MessageType.COMMAND_AMF3, MessageType.DATA_AMF3})
#: Values that stay AMF0 in an object_encoding=3 payload (see the module docstring).
_SCALARS = (type(None), amf0.Undefined, bool, int, float, str)


def encode_payload(
    values: Iterable[Any], object_encoding: int, *, use_references: bool = False
) -> bytes:
    """RTMP 7.1.1: the payload for ``values``.

    ``object_encoding`` 0: plain AMF0 for message types 20/18.  3: the selector
    byte 0x00 then AMF0 values, non-scalars switched to AMF3 (AMF0 3.1), for
    message types 17/15.  Raises :class:`rtmp.amf0.EncodeError` for values that
    cannot be encoded (a reference cycle among them) and ``ValueError`` for
    another ``object_encoding``.

    Deviation (ffmpeg, nginx-rtmp): AMF0 2.9 asks for a repeated instance to be
    sent as a reference, but ffmpeg's AMF0 walker (``ff_amf_tag_size``) has no
    case for the reference marker and stops there.  So by default an RTMP AMF0
    payload repeats such objects in full and refuses cycles;
    ``use_references=True`` follows the spec.  AMF3 references are always used:
    every AMF3 peer reads them.
    """
    if object_encoding == 0:
        return amf0.encode_all(values, use_references=use_references)
    if object_encoding == 3:
        encoder = amf0.Encoder(use_references=use_references)
        for value in values:
            if type(value) in _SCALARS:
                encoder.write_value(value)
            else:
                encoder.write_value(amf0.AVMPlus(value))  # AMF0 3.1
        return bytes((FORMAT_SELECTOR_AMF0,)) + encoder.getvalue()
    raise ValueError(f"object_encoding must be 0 (AMF0) or 3 (AMF3), not {object_encoding!r}")


def decode_payload(data: bytes, message_type: int, *, strict: bool = False) -> List[Any]:
    """RTMP 7.1.1 / 7.1.2: every AMF value of a command or data message payload.

    ``message_type`` 20/18: plain AMF0.  17/15: the 0x00 selector, then AMF0
    values with AVM+ switches; see the module docstring for what ``strict=False``
    also accepts.  Raises :class:`rtmp.amf0.DecodeError` (or its AMF3 subclass)
    on malformed bytes and ``ValueError`` for another message type.
    """
    if message_type in _AMF0_TYPES:
        return amf0.decode_all(data, strict=strict)
    if message_type not in _AMF3_TYPES:
        raise ValueError(f"message type {message_type} does not carry AMF command or data values")
    if not data:
        return []
    first = data[0]
    if first != FORMAT_SELECTOR_AMF0:
        if strict or first != amf0.Marker.STRING:
            raise amf0.DecodeError(
                f"type {message_type} payload starts with 0x{first:02x}, not the 0x00 format"
                " selector (RTMP 7.1.1)",
                0,
            )
        # Deviation (peers that omit the selector): the payload already starts with an AMF0 string.
        logger.warning("type %d payload without format selector accepted", message_type)
        return amf0.decode_all(data, strict=strict)
    if len(data) > 1 and data[1] == amf3.Marker.STRING and not strict:
        # Deviation (pure AMF3 writers): 0x06 is an AMF3 string here, never AMF0 undefined.
        logger.debug("type %d payload read as pure AMF3", message_type)
        return amf3.Decoder(data, 1).read_all()
    return amf0.Decoder(data, 1, strict=strict).read_all()
