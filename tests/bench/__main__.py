"""The benchmark runner: ``python -m tests.bench`` (``tox -e bench``).

Imports every ``tests/bench/bench_*.py`` module, calls its ``run()``, and prints one table:
for every row the median of the runs with min and max, the peer's median, the ratio of the
two (measured in the same run of the benchmark), the target and whether it is met (and by
how much it is missed).  The table is written to ``refs/benchmarks.md`` with the machine
(nproc, CPU model, memory), the versions of Python, ffmpeg, nginx, rtmpdump and rtmplite3,
and the date.  Hand-written notes below the ``<!-- notes -->`` line of that file (the
profile findings) are kept when it is rewritten.

A row is a dict: ``group``, ``name``, ``unit``, ``ours`` (list of per-run values), and
optionally ``peer`` (list), ``peer_name``, ``target`` (``"ratio >= 5"``, ``"< 50"`` ...) and
``note``.  ``run()`` may accept ``quick`` and ``repeat``; the runner passes what it accepts.

Options: ``--quick`` (small sizes, one run; used by ``tests/test_bench_harness.py``),
``--only NAME`` (repeatable: ``relay``, ``chunk`` ...), ``--repeat N`` (default 3),
``--output FILE`` (default ``refs/benchmarks.md``; ``--quick`` writes nothing unless given).
A benchmark that raises (for example a relay that lost integrity) is reported in the table
and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tests.bench import harness

logger = logging.getLogger("tests.bench")

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = harness.REPO / "refs" / "benchmarks.md"
NOTES_MARKER = "<!-- notes: everything below is kept when the runner rewrites this file -->"
#: Modules run in this order; any other bench_*.py follows alphabetically.
ORDER = ("chunk", "amf", "relay", "burst", "connections", "latency", "shared_object", "client")
#: bench_chunk sizes for --quick (its run() takes total_bytes).
QUICK_TOTAL_BYTES = 4 * 1024 * 1024
#: bench_amf's time budget per figure for --quick (its run() takes budget).
QUICK_BUDGET = 0.05


def discover(only: Sequence[str]) -> List[str]:
    names = sorted(p.stem[len("bench_"):] for p in BENCH_DIR.glob("bench_*.py"))
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    if only:
        wanted = {o[len("bench_"):] if o.startswith("bench_") else o for o in only}
        unknown = wanted - set(names)
        if unknown:
            raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; "
                             f"have: {', '.join(names)}")
        names = [n for n in names if n in wanted]
    return names


def call_run(module: Any, quick: bool, repeat: int, group: str) -> List[Dict[str, Any]]:
    """Call ``module.run`` with the keyword arguments it accepts; a ``run()`` that takes no
    ``repeat`` is called ``repeat`` times and its rows merged, so every figure has its runs."""
    params = inspect.signature(module.run).parameters
    kwargs: Dict[str, Any] = {}
    if "quick" in params:
        kwargs["quick"] = quick
    if "repeat" in params:
        kwargs["repeat"] = 1 if quick else repeat
    if quick and "total_bytes" in params:
        kwargs["total_bytes"] = QUICK_TOTAL_BYTES
    if quick and "budget" in params:
        kwargs["budget"] = QUICK_BUDGET
    calls = 1 if quick or "repeat" in params else repeat
    merged: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
    for _ in range(calls):
        for row in normalise(module.run(**kwargs), group):
            key = (row["group"], row["name"], row.get("peer_name", ""))
            if key not in merged:
                merged[key] = row
                continue
            for field in ("ours", "peer"):
                if field in row:
                    merged[key].setdefault(field, []).extend(row[field])
    return list(merged.values())


def normalise(result: Any, group: str) -> List[Dict[str, Any]]:
    """Accept the row list described above, a ``{name: values}`` mapping, or rows that
    name their figures ``<metric>_ours`` / ``<metric>_<peer>`` (bench_amf:
    ``ops_per_s_ours``, ``ops_per_s_py3amf``)."""
    if isinstance(result, dict):
        result = [{"name": k, "ours": v} for k, v in result.items()]
    rows = []
    for item in result or []:
        row = dict(item)
        for key in [k for k in item if k.endswith("_ours") and "ours" not in item]:
            metric = key[: -len("_ours")]
            row["ours"] = row.pop(key)
            row.setdefault("unit", metric.replace("_per_", "/"))
            for other in [k for k in item if k.startswith(metric + "_") and k != key]:
                value = row.pop(other)
                if value is not None:
                    row["peer"] = value
                    row["peer_name"] = other[len(metric) + 1:]
            row.pop("ratio", None)  # recomputed from the medians
        row.setdefault("group", group)
        row.setdefault("unit", "")
        for key in ("ours", "peer"):
            value = row.get(key)
            if isinstance(value, (int, float)):
                row[key] = [float(value)]
        rows.append(row)
    return rows


def _ratio(row: Dict[str, Any]) -> Optional[float]:
    if not row.get("ours") or not row.get("peer"):
        return None
    peer = statistics.median(row["peer"])
    return statistics.median(row["ours"]) / peer if peer else None


def verdict(row: Dict[str, Any]) -> str:
    """"yes", or "NO" and by how much, or "" when the row has no target."""
    target = row.get("target") or ""
    if not target or row.get("error") or not row.get("ours"):
        return ""
    peer = statistics.median(row["peer"]) if row.get("peer") else None
    return harness.check_target(target, statistics.median(row["ours"]), peer) or "?"


def render(rows: List[Dict[str, Any]]) -> str:
    """The table, as Markdown (readable on a terminal too)."""
    head = ("| group | benchmark | unit | ours: median (min-max) | peer | peer median (min-max) "
            "| ratio | target | met? |")
    lines = [head, "|" + "---|" * 9]
    for row in rows:
        if row.get("error"):
            lines.append(f"| {row['group']} | {row['name']} | | FAILED: {row['error']} "
                         "| | | | | NO |")
            continue
        ratio = _ratio(row)
        cells = [
            row["group"], row["name"], row.get("unit", ""), harness.summary(row.get("ours", [])),
            row.get("peer_name", ""), harness.summary(row["peer"]) if row.get("peer") else "",
            f"{ratio:.2f}" if ratio is not None else "", row.get("target", ""), verdict(row),
        ]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    notes = list(dict.fromkeys(f"- {r['name']}: {r['note']}" for r in rows if r.get("note")))
    if notes:
        lines += ["", "Row notes:", ""] + notes
    return "\n".join(lines)


def document(table: str, info: Dict[str, str], args: argparse.Namespace, seconds: float,
             notes: str) -> str:
    machine = "\n".join(f"- {k}: {v}" for k, v in info.items())
    runs = ("a single run (--quick)" if args.quick or args.repeat == 1
            else f"median of {args.repeat} runs")
    return (
        "# Benchmarks\n\n"
        "Written by `python -m tests.bench` (`tox -e bench`); do not edit above the notes "
        f"marker.  Each figure is the {runs}, with min and max; every ratio compares ours "
        "with the peer measured in the same run of the benchmark, on the same machine, "
        "interleaved run by run.  The machine is shared with other work, so absolute "
        "figures move from run to run; the ratios are the result.\n\n"
        f"Machine and versions:\n\n{machine}\n- benchmark wall time: {seconds:.0f} s\n"
        f"- command: `python -m tests.bench {args.command_line}`\n\n"
        f"{table}\n\n{NOTES_MARKER}\n{notes}"
    )


def existing_notes(path: Path) -> str:
    try:
        text = path.read_text("utf-8")
    except OSError:
        return ""
    _, marker, notes = text.partition(NOTES_MARKER)
    return notes.lstrip("\n") if marker else ""


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="runs per figure (at least 3 for published figures)")
    parser.add_argument("--output", metavar="FILE",
                        help="where to write the Markdown (default refs/benchmarks.md; "
                             "--quick writes nothing unless this is given)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every run")
    args = parser.parse_args(argv)
    args.command_line = " ".join(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    output = Path(args.output) if args.output else (None if args.quick else DEFAULT_OUTPUT)

    started = time.monotonic()
    rows: List[Dict[str, Any]] = []
    failed = False
    for name in discover(args.only):
        print(f"running bench_{name} ...", file=sys.stderr, flush=True)
        begun = time.monotonic()
        try:
            module = importlib.import_module(f"tests.bench.bench_{name}")
            rows += call_run(module, args.quick, args.repeat, name)
        except Exception as exc:
            failed = True
            traceback.print_exc()
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            rows.append({"group": name, "name": f"bench_{name}",
                         "error": f"{type(exc).__name__}: {first_line}"[:300]})
        print(f"  bench_{name}: {time.monotonic() - begun:.0f} s", file=sys.stderr, flush=True)
    seconds = time.monotonic() - started
    table = render(rows)
    print(table)
    if output is not None:
        info = harness.machine_info()
        output.parent.mkdir(parents=True, exist_ok=True)
        text = document(table, info, args, seconds, existing_notes(output))
        output.write_text(text, "utf-8")
        print(f"\nwritten to {output}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
