"""AMF0/AMF3 codec speed, side by side with py3amf (``pyamf``) in the same run.

Two typical RTMP payloads, each encoded and decoded in both formats:

* ffmpeg's ``connect`` command (RTMP 7.2.1.1): name, transaction id 1 and the
  command object with app, flashVer, tcUrl, fpad, capabilities, audioCodecs,
  videoCodecs, videoFunction and objectEncoding;
* ``@setDataFrame onMetaData`` with a 20-key ECMA array (FLV E.5, AMF0 2.10;
  in AMF3 an array with an associative part, AMF3 3.11).

Run ``python -m tests.bench.bench_amf`` (or this file).  :func:`run` returns the
rows, :func:`main` prints them.  Not collected by pytest; speed is measured
here, never asserted in tests.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional

from rtmp import amf0, amf3

try:  # the reference implementation; the bench still runs our side without it
    import pyamf
except ImportError:  # pragma: no cover - py3amf is in the test extras
    pyamf = None

CONNECT: List[Any] = [
    "connect",
    1,
    {
        "app": "live",
        "flashVer": "FMLE/3.0 (compatible; Lavf61.7.100)",
        "tcUrl": "rtmp://127.0.0.1:1935/live",
        "fpad": False,
        "capabilities": 15.0,
        "audioCodecs": 4071.0,
        "videoCodecs": 252.0,
        "videoFunction": 1.0,
        "objectEncoding": 0.0,
    },
]

METADATA_FIELDS: Dict[str, Any] = {
    "duration": 0.0,
    "width": 1280.0,
    "height": 720.0,
    "videodatarate": 2500.0,
    "framerate": 30.0,
    "videocodecid": 7.0,
    "audiodatarate": 128.0,
    "audiosamplerate": 44100.0,
    "audiosamplesize": 16.0,
    "stereo": True,
    "audiocodecid": 10.0,
    "major_brand": "isom",
    "minor_version": "512",
    "compatible_brands": "isomiso2avc1mp41",
    "encoder": "Lavf61.7.100",
    "filesize": 0.0,
    "hasVideo": True,
    "hasAudio": True,
    "hasMetadata": True,
    "canSeekToEnd": False,
}
assert len(METADATA_FIELDS) == 20

METADATA: List[Any] = ["@setDataFrame", "onMetaData", amf0.ECMAArray(METADATA_FIELDS)]


def _pyamf_values(values: List[Any]) -> List[Any]:
    """The same values in pyamf's types (its ECMA array is MixedArray)."""
    assert pyamf is not None
    return [pyamf.MixedArray(v) if isinstance(v, amf0.ECMAArray) else v for v in values]


def _ops_per_second(func: Callable[[], Any], budget: float = 0.25, repeat: int = 3) -> float:
    """Best of ``repeat`` timed runs of about ``budget`` seconds each."""
    func()
    count = 1
    while True:  # calibrate: how many calls fill the budget (bounded by the doubling)
        start = time.perf_counter()
        for _ in range(count):
            func()
        elapsed = time.perf_counter() - start
        if elapsed >= budget / 4 or count >= 1 << 20:
            break
        count *= 2
    count = max(1, int(count * budget / max(elapsed, 1e-9)))
    best = float("inf")
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(count):
                func()
            best = min(best, time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return count / best


def _cases() -> List[Dict[str, Any]]:
    cases = []
    for label, values in (("connect", CONNECT), ("onMetaData", METADATA)):
        for fmt, ours_encode, ours_decode in (
            ("amf0", amf0.encode_all, amf0.decode_all),
            ("amf3", amf3.encode_all, amf3.decode_all),
        ):
            wire = ours_encode(values)
            case: Dict[str, Any] = {
                "label": label,
                "format": fmt,
                "encode": (lambda e=ours_encode, v=values: e(v)),
                "decode": (lambda d=ours_decode, w=wire: d(w)),
                "py3amf_encode": None,
                "py3amf_decode": None,
            }
            if pyamf is not None:
                encoding = pyamf.AMF0 if fmt == "amf0" else pyamf.AMF3
                theirs_values = _pyamf_values(values)
                theirs_wire = pyamf.encode(*theirs_values, encoding=encoding).getvalue()
                case["py3amf_encode"] = lambda t=theirs_values, e=encoding: pyamf.encode(
                    *t, encoding=e
                ).getvalue()
                case["py3amf_decode"] = lambda w=theirs_wire, e=encoding: list(
                    pyamf.decode(w, encoding=e)
                )
            cases.append(case)
    return cases


#: Issue 21 (keep): our codec at least 3.8x py3amf's speed, every payload and direction.
TARGET = "ratio >= 3.8"


def run(budget: float = 0.25, quick: bool = False, repeat: int = 3) -> List[Dict[str, Any]]:
    """One row per (payload, format, direction): ops/s of ours and of py3amf, and the ratio.

    Each row has the keys of the issue (``name``, ``ops_per_s_ours``, ``ops_per_s_py3amf``,
    ``ratio``: medians of ``repeat`` timed runs) and those of the ``python -m tests.bench``
    runner (``group``, ``unit``, ``ours``, ``peer``, ``peer_name``, ``target``: per-run values).
    """
    if quick:
        budget, repeat = 0.02, 1
    rows = []
    for case in _cases():
        for direction in ("encode", "decode"):
            ours = [_ops_per_second(case[direction], budget, 1) for _ in range(repeat)]
            theirs_func: Optional[Callable[[], Any]] = case[f"py3amf_{direction}"]
            theirs = [_ops_per_second(theirs_func, budget, 1) for _ in range(repeat)] if theirs_func else []
            ours_median = statistics.median(ours)
            theirs_median = statistics.median(theirs) if theirs else None
            rows.append(
                {
                    "name": f"{case['format']} {direction} {case['label']}",
                    "ops_per_s_ours": round(ours_median),
                    "ops_per_s_py3amf": round(theirs_median) if theirs_median else None,
                    "ratio": round(ours_median / theirs_median, 2) if theirs_median else None,
                    "group": "amf",
                    "unit": "ops/s",
                    "ours": ours,
                    "peer": theirs,
                    "peer_name": "py3amf",
                    "target": TARGET,
                }
            )
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    """Print the table (a Markdown table, as refs/benchmarks.md collects them)."""
    budget = float(argv[0]) if argv else 0.25
    rows = run(budget)
    print("| case | ours ops/s | py3amf ops/s | ratio |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['name']} | {row['ops_per_s_ours']:,} | "
            f"{row['ops_per_s_py3amf'] or 0:,} | {row['ratio']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
