"""Shared helpers of the fuzz targets: splitting input, and running a target under atheris."""

from __future__ import annotations

import sys
from typing import Callable, List


def split_points(data: bytes, seed: int) -> List[bytes]:
    """Cut ``data`` into pieces whose sizes come from ``seed`` (1..16 bytes, then the rest).

    The targets feed their sans-IO parsers piece by piece: the result must not depend on
    where TCP happened to cut the stream.
    """
    pieces: List[bytes] = []
    pos = 0
    state = seed or 1
    while pos < len(data) and len(pieces) < 64:
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF  # a tiny LCG: deterministic cuts
        size = 1 + (state >> 16) % 16 if state & 1 else 1 + (state >> 8) % 2048
        pieces.append(data[pos:pos + size])
        pos += size
    if pos < len(data):
        pieces.append(data[pos:])
    return pieces


def atheris_main(fuzz_one: Callable[[bytes], None]) -> None:
    """``python -m tests.fuzz.fuzz_X [atheris/libFuzzer flags]``: run one target forever."""
    import atheris  # type: ignore[import-not-found]  # optional: pip install atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, fuzz_one)
    atheris.Fuzz()
