"""AMF3 3 / RTMP 7.1.1: fuzz target for :func:`rtmp.amf3.decode_all` and type 17/15 payloads.

Contract: the only exception is :class:`rtmp.amf3.DecodeError` / :class:`rtmp.amf0.DecodeError`
(both ``RTMPError`` and ``ValueError``); reference loops decode to cyclic values without
hanging; whatever decodes encodes again or raises ``EncodeError``.
"""

from __future__ import annotations

import logging

from rtmp import amf, amf0, amf3
from rtmp.message import MessageType
from tests.fuzz._common import atheris_main

logger = logging.getLogger(__name__)


def fuzz_one(data: bytes) -> None:
    """One fuzz input: AMF3 values, also read as an AMF3 command payload (selector byte)."""
    try:
        values = amf3.decode_all(data)
    except amf0.DecodeError:  # amf3.DecodeError is a subclass
        values = None
    if values is not None:
        try:
            amf3.decode_all(amf3.encode_all(values))
        except amf0.EncodeError:
            pass
    for message_type in (MessageType.COMMAND_AMF3, MessageType.DATA_AMF3):
        try:
            amf.decode_payload(data, message_type)
        except amf0.DecodeError:
            pass


if __name__ == "__main__":
    atheris_main(fuzz_one)
