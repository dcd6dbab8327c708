"""The benchmark record and the regression gate (issue 21: "the bench env fails on a
regression beyond noise").

Every full run of ``python -m tests.bench`` leaves a machine-readable record next to its
Markdown table (``refs/benchmarks.json`` beside ``refs/benchmarks.md``): for each row its
per-run series (ours and the peer's), the median ratio, the unit, the direction in which
the figure is better, the target and its verdict.  Before writing a new record, the runner
compares each row it ran with the recorded one (:func:`compare`):

* **The figure.**  A row with a peer is judged on its ratio to the peer, run by run
  (``ours[i] / peer[i]``: the two were measured in the same round, under the same machine
  load, so the ratio cancels the load); a row without a peer on its own figure, and so is
  a row whose target is a plain bound ("< 10", ">= 0.999"): the target is about our own
  figure, and a peer beside it may swing on its own (nginx-rtmp's p99 latency moves
  between 11 and 30 ms from run to run, which made our steady p99 look 1.2x worse).
* **Direction.**  Rates (``MB/s``, ``ops/s``, ``sessions/s``) and fractions are better
  higher; times, CPU per unit of work and memory (``ms``, ``s/GB``, ``MB``) lower
  (:func:`tests.bench.harness.direction_of`); a row may say ``direction: "none"`` (rows
  about the load generator or the thread floor), and is then not judged.
* **Noise.**  The spread of a series (min to max) is its noise.  A row *regressed* when
  the new run's best figure is worse than the recorded run's worst by more than the
  tolerance: 25% for ratios, 50% for raw figures, whose absolute level moves with the
  shared machine's load (``--tolerance`` sets the first; the second is twice it); the
  noisier groups have their own (:data:`GROUP_TOLERANCE`: AMF 60%, latency and shared
  objects 100%), set from two full runs of the same tree.
  Symmetrically it *improved* when the new run's worst beats the recorded best by as much;
  anything between is *within noise*.

The record is a JSON object::

    {"format": "rtmp-bench-record 1", "written": "2026-12-04 17:30 UTC",
     "command": "python -m tests.bench", "machine": {"nproc": "2", ...},
     "rows": [{"bench": "relay", "group": "relay", "name": "relay, 1 player(s): ...",
               "unit": "MB/s", "direction": "higher", "ours": [360.1, 290.4, 364.0],
               "peer_name": "nginx-rtmp", "peer": [491.2, 312.0, 537.5], "paired": true,
               "ratio": 0.73, "target": "ratio >= 0.8", "met": "NO: ratio 0.73, 9.6% short",
               "written": "2026-12-04 17:30 UTC"}, ...]}

``paired`` is false when the series cannot be matched run by run (different lengths, or
a record made from a Markdown table, which keeps only median, min and max:
:func:`parse_markdown`); the ratio's spread is then the widest the two spreads allow,
``min(ours) / max(peer)`` to ``max(ours) / min(peer)``.

Pure functions only (no timing, no I/O but :func:`load` and :func:`save`): the runner
(:mod:`tests.bench.__main__`) calls them and ``tests/test_bench_harness.py`` tests them.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from tests.bench import harness

FORMAT = "rtmp-bench-record 1"
#: How much worse than the recorded worst the new best may be (ratios; raw figures: 2x).
#: Set from two full runs of the same tree (2026-12-04 18:36 and 18:45 UTC, machine
#: otherwise idle): the medians of the relay, client and topology ratios moved by up to
#: 1.2x between them.
TOLERANCE = 0.25
#: The multiple of :data:`TOLERANCE` for rows judged on their raw figure (no peer).
RAW_TOLERANCE_FACTOR = 2.0
#: Groups whose figures swing more between runs of the same tree, and their tolerance
#: (for ``--tolerance`` other than the default, scaled alike).  In the two runs above the
#: AMF ratios to Py3AMF moved by up to 1.58x (micro-benchmarks of a few ms each, the peer's
#: side as noisy as ours), p99 latency 2.3-4.2 ms and shared-object changes/s 3,946-7,622
#: (no peer to cancel the load).
GROUP_TOLERANCE = {"amf": 0.6, "latency": 1.0, "shared-object": 1.0}

RowKey = Tuple[str, str, str]


def row_key(row: Dict[str, Any]) -> RowKey:
    """A row's identity: group, name and peer (one benchmark has a row per peer)."""
    return (str(row.get("group", "")), str(row.get("name", "")), str(row.get("peer_name", "")))


def direction(row: Dict[str, Any]) -> str:
    """The row's own ``direction`` if it gives one, else its unit's."""
    return str(row.get("direction") or harness.direction_of(str(row.get("unit", ""))))


def _finite(values: Iterable[Any]) -> List[float]:
    out = []
    for value in values or []:
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out.append(number)
    return out


def figures(row: Dict[str, Any]) -> Tuple[List[float], str]:
    """The series a row is judged on, and what it is ("ratio" or "ours").

    With a peer: the per-run ratios ``ours[i] / peer[i]`` when the row is ``paired`` (the
    default) and both series have the same length; else the two bounds of the ratio
    (``min(ours) / max(peer)``, ``max(ours) / min(peer)``).  Without one, or with a
    plain target (not ``ratio ...``): ``ours``.
    NaN, infinite and zero-peer values are left out.
    """
    ours = row.get("ours") or []
    peer = row.get("peer") or []
    target = str(row.get("target") or "")
    if not peer or (target and not target.startswith("ratio")):
        return _finite(ours), "ours"
    if row.get("paired", True) and len(ours) == len(peer):
        pairs = [(o, p) for o, p in zip(_as_floats(ours), _as_floats(peer))]
        return _finite(o / p for o, p in pairs if p and math.isfinite(p)), "ratio"
    mine, theirs = _finite(ours), [p for p in _finite(peer) if p]
    if not mine or not theirs:
        return [], "ratio"
    return [min(mine) / max(theirs), max(mine) / min(theirs)], "ratio"


def _as_floats(values: Sequence[Any]) -> List[float]:
    out = []
    for value in values:
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


@dataclass
class Comparison:
    """How one row of the new run compares with the recorded run.

    ``status``: "regressed", "improved", "same" (within noise), "new" (no recorded row),
    or "not judged" (direction "none", or no usable figures on one side).
    ``factor``: how many times worse the new best is than the recorded worst (above 1:
    worse), for "regressed" and "same"; how many times better for "improved".
    """

    status: str
    what: str = ""
    new: Tuple[float, float] = (math.nan, math.nan)
    old: Tuple[float, float] = (math.nan, math.nan)
    factor: float = math.nan
    tolerance: float = TOLERANCE

    @property
    def regressed(self) -> bool:
        return self.status == "regressed"

    def cell(self) -> str:
        """The table's "vs recorded" cell."""
        if self.status in ("new", "not judged"):
            return self.status
        if self.status == "same":
            return "within noise"
        figure = "ratio " if self.what == "ratio" else ""
        span = f"{figure}{_span(self.new)} vs recorded {_span(self.old)}"
        if self.status == "improved":
            return f"improved {self.factor:.2f}x ({span})"
        return f"REGRESSED {self.factor:.2f}x ({span})"


def _span(bounds: Tuple[float, float]) -> str:
    low, high = bounds
    return harness.summary([low]) if low == high else f"{harness._fmt(low)}-{harness._fmt(high)}"


def compare_row(new: Dict[str, Any], old: Optional[Dict[str, Any]],
                tolerance: float = TOLERANCE) -> Comparison:
    """Judge ``new`` against the recorded ``old`` row (see the module docstring)."""
    if old is None:
        return Comparison("new")
    way = direction(new)
    if way not in ("higher", "lower"):
        return Comparison("not judged")
    new_figures, what = figures(new)
    old_figures, old_what = figures(old)
    if not new_figures or not old_figures or what != old_what:
        return Comparison("not judged", what)
    group = str(new.get("group", ""))
    if group in GROUP_TOLERANCE:
        tolerance *= GROUP_TOLERANCE[group] / TOLERANCE
    elif what == "ours":
        tolerance *= RAW_TOLERANCE_FACTOR
    new_span = (min(new_figures), max(new_figures))
    old_span = (min(old_figures), max(old_figures))
    if way == "higher":
        new_best, new_worst = new_span[1], new_span[0]
        old_best, old_worst = old_span[1], old_span[0]
        worse = _times(old_worst, new_best)   # > 1: the new best is below the old worst
        better = _times(new_worst, old_best)  # > 1: the new worst is above the old best
    else:
        new_best, new_worst = new_span[0], new_span[1]
        old_best, old_worst = old_span[0], old_span[1]
        worse = _times(new_best, old_worst)
        better = _times(old_best, new_worst)
    if worse > 1 + tolerance:
        return Comparison("regressed", what, new_span, old_span, worse, tolerance)
    if better > 1 + tolerance:
        return Comparison("improved", what, new_span, old_span, better, tolerance)
    return Comparison("same", what, new_span, old_span, worse, tolerance)


def _times(big: float, small: float) -> float:
    """``big / small`` for positive figures; infinite when only ``small`` is not positive."""
    if small > 0:
        return big / small
    return math.inf if big > 0 else 1.0


@dataclass
class Verdict:
    """The comparison of a whole run: per row, and the recorded rows it did not make."""

    rows: Dict[RowKey, Comparison]
    missing: List[RowKey]

    @property
    def regressed(self) -> List[RowKey]:
        return [key for key, c in self.rows.items() if c.regressed]


def compare(new_rows: Sequence[Dict[str, Any]], old_rows: Sequence[Dict[str, Any]],
            ran: Optional[Iterable[str]] = None, tolerance: float = TOLERANCE) -> Verdict:
    """Compare every new row (rows with an ``error`` are not figures) with the recorded
    row of the same key.  ``missing``: recorded rows of the benchmarks that ran (``ran``,
    module names such as ``relay``; None: every recorded row) that this run did not make,
    so an ``--only`` run does not report the rest as missing."""
    recorded = {row_key(r): r for r in old_rows}
    comparisons = {row_key(r): compare_row(r, recorded.get(row_key(r)), tolerance)
                   for r in new_rows if not r.get("error")}
    benches = None if ran is None else set(ran)
    missing = [key for key, r in recorded.items() if key not in comparisons
               and (benches is None or bench_of(r) in benches)]
    return Verdict(comparisons, missing)


def bench_of(row: Dict[str, Any]) -> str:
    """The benchmark module (``bench_<name>.py``) a row came from: its ``bench`` field,
    else its group with dashes as underscores (``shared-object``: ``shared_object``)."""
    return str(row.get("bench") or str(row.get("group", "")).replace("-", "_"))


# -- the record ----------------------------------------------------------------------------


def record_row(row: Dict[str, Any], written: str) -> Dict[str, Any]:
    """The recorded form of a table row (see the module docstring)."""
    out: Dict[str, Any] = {
        "bench": bench_of(row),
        "group": row.get("group", ""),
        "name": row.get("name", ""),
        "unit": row.get("unit", ""),
        "direction": direction(row),
        "ours": [_json_number(v) for v in row.get("ours") or []],
    }
    if row.get("peer"):
        out["peer_name"] = row.get("peer_name", "")
        out["peer"] = [_json_number(v) for v in row["peer"]]
        out["paired"] = bool(row.get("paired", True)) and len(row["peer"]) == len(out["ours"])
        ours, peer = _finite(row["ours"]), _finite(row["peer"])
        ratio = statistics.median(ours) / statistics.median(peer) if ours and peer and \
            statistics.median(peer) else None
        out["ratio"] = None if ratio is None else round(ratio, 4)
    if row.get("target"):
        out["target"] = row["target"]
        ours = _finite(row.get("ours") or [])
        peer = _finite(row.get("peer") or [])
        met = harness.check_target(row["target"], statistics.median(ours),
                                   statistics.median(peer) if peer else None) if ours else None
        out["met"] = met or ""
    out["written"] = row.get("written") or written
    return out


def _json_number(value: Any) -> Optional[float]:
    """JSON has no NaN: a figure that is not finite is recorded as null."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return float(f"{number:.6g}") if math.isfinite(number) else None


def new_record(rows: Sequence[Dict[str, Any]], previous: Optional[Dict[str, Any]],
               written: str, command: str, machine: Dict[str, str]) -> Dict[str, Any]:
    """The record after this run: its rows (rows with an ``error`` are left out), and the
    previous record's rows of every benchmark that did not run to the end here (an
    ``--only`` run, or a benchmark that raised), which keep the date they were made."""
    done = {bench_of(r) for r in rows if not r.get("error")}
    done -= {bench_of(r) for r in rows if r.get("error")}
    fresh = [record_row(r, written) for r in rows
             if not r.get("error") and bench_of(r) in done]
    kept = [r for r in (previous or {}).get("rows", []) if bench_of(r) not in done]
    return {"format": FORMAT, "written": written, "command": command, "machine": machine,
            "rows": kept + fresh}


def load(path: Path) -> Optional[Dict[str, Any]]:
    """The record at ``path``, or None when there is none; ValueError if it is not one."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != FORMAT or \
            not isinstance(data.get("rows"), list):
        raise ValueError(f"{path} is not a benchmark record ({FORMAT})")
    return data


def dumps(record: Dict[str, Any]) -> str:
    """The record as JSON text, one row per line (so a diff shows the rows that moved)."""
    head = json.dumps({k: v for k, v in record.items() if k != "rows"}, indent=1)
    rows = ",\n".join("  " + json.dumps(r, allow_nan=False) for r in record.get("rows", []))
    return f'{head[:-2]},\n "rows": [\n{rows}\n ]\n}}\n'


def save(path: Path, record: Dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(record), "utf-8")


# -- a record from a Markdown table ----------------------------------------------------------


_SUMMARY = re.compile(r"\s*([-0-9.e+]+|nan)(?:\s*\(([-0-9.e+]+|nan)-([-0-9.e+]+|nan)\))?\s*")


def parse_summary(cell: str) -> List[float]:
    """``"609 (511-767)"`` -> ``[511, 609, 767]``; ``"360"`` -> ``[360]``; else ``[]``."""
    match = _SUMMARY.fullmatch(cell)
    if not match:
        return []
    median, low, high = match.groups()
    if low is None:
        return [float(median)]
    return [float(low), float(median), float(high)]


def parse_markdown(text: str) -> List[Dict[str, Any]]:
    """The rows of the table ``python -m tests.bench`` writes (refs/benchmarks.md), as
    unpaired rows: each series is its min, median and max (for 3 runs, the runs' values
    rounded to 3 figures, but not in run order).  Failed rows are left out."""
    rows: List[Dict[str, Any]] = []
    header: Optional[List[str]] = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None  # the table ended (the file has other tables: the soak's)
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            if cells[:2] == ["group", "benchmark"]:
                header = cells
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        cell = dict(zip(header, cells))
        ours = parse_summary(cell.get("ours: median (min-max)", ""))
        if not ours:
            continue  # FAILED, or not a figure
        row: Dict[str, Any] = {"group": cell["group"], "name": cell["benchmark"],
                               "unit": cell.get("unit", ""), "ours": ours, "paired": False}
        peer = parse_summary(cell.get("peer median (min-max)", ""))
        if peer:
            row["peer"] = peer
            row["peer_name"] = cell.get("peer", "")
        if cell.get("target"):
            row["target"] = cell["target"]
        rows.append(row)
    return rows


def parse_machine(text: str) -> Dict[str, str]:
    """The "Machine and versions" list of a written refs/benchmarks.md (``- key: value``
    lines above the table)."""
    machine: Dict[str, str] = {}
    for line in text.partition("\n| group | benchmark |")[0].splitlines():
        key, colon, value = line[2:].partition(": ") if line.startswith("- ") else ("", "", "")
        if colon:
            machine[key] = value.strip()
    return machine


def from_markdown(text: str, source: str) -> Dict[str, Any]:
    """A record made from a table the runner wrote (the first record, made from the last
    Markdown table; its rows are unpaired: see :func:`parse_markdown`)."""
    machine = parse_machine(text)
    written = machine.get("date", "")
    rows = parse_markdown(text)
    if not rows:
        raise ValueError(f"{source}: no benchmark table found")
    command = f"python -m tests.bench.record {source} (from the table of {written})"
    return new_record(rows, None, written, command, machine)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m tests.bench.record [MARKDOWN [JSON]]``: write the record of a table
    the runner wrote (default: refs/benchmarks.md to refs/benchmarks.json)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.bench.record",
                                     description=main.__doc__)
    default = harness.REPO / "refs" / "benchmarks.md"
    parser.add_argument("markdown", nargs="?", type=Path, default=default)
    parser.add_argument("json", nargs="?", type=Path)
    args = parser.parse_args(argv)
    target = args.json or args.markdown.with_suffix(".json")
    try:
        shown = args.markdown.resolve().relative_to(harness.REPO)
    except ValueError:
        shown = args.markdown
    data = from_markdown(args.markdown.read_text("utf-8"), str(shown))
    save(target, data)
    print(f"{len(data['rows'])} rows recorded in {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
