"""Shared helpers of the fuzz targets: splitting input, and running a target under atheris."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
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
    """``python -m tests.fuzz.fuzz_X [libFuzzer flags] [corpus dirs]``: run one target.

    With atheris installed this is an ordinary libFuzzer run (``-max_total_time=600``,
    ``-runs=N``, a corpus directory, a crash file to reproduce).  Without it, every file
    named on the command line is replayed once through the target (a crash reproducer).
    """
    try:
        atheris = importlib.import_module("atheris")  # optional: pip install atheris
    except ImportError:
        paths = [Path(a) for a in sys.argv[1:] if not a.startswith("-")]
        files = [p for path in paths for p in (sorted(path.iterdir()) if path.is_dir() else [path])]
        if not files:
            sys.exit("atheris is not installed (pip install atheris); without it, name input "
                     "files or corpus directories to replay them through the target")
        for path in files:
            fuzz_one(path.read_bytes())
        print(f"replayed {len(files)} input(s): no failure")
        return
    atheris.instrument_all()
    atheris.Setup(sys.argv, fuzz_one)
    atheris.Fuzz()
