"""AMF0 2 / 4: fuzz target for :func:`rtmp.amf0.decode_all`.

Contract: the only exception is :class:`rtmp.amf0.DecodeError` (an ``RTMPError`` and a
``ValueError``); whatever decodes can be encoded again (or raises ``EncodeError``) and that
encoding decodes without error: the decoder never builds a value the codec cannot carry.
"""

from __future__ import annotations

import logging

from rtmp import amf0
from tests.fuzz._common import atheris_main

logger = logging.getLogger(__name__)


def fuzz_one(data: bytes) -> None:
    """One fuzz input: the bytes of a run of AMF0 values."""
    try:
        values = amf0.decode_all(data)
    except amf0.DecodeError:
        return
    try:
        again = amf0.encode_all(values)
    except amf0.EncodeError:
        return
    amf0.decode_all(again)
    try:
        amf0.decode_all(data, strict=True)
    except amf0.DecodeError:
        pass


if __name__ == "__main__":
    atheris_main(fuzz_one)
