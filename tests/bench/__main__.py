"""The benchmark runner: ``python -m tests.bench`` (``tox -e bench``).

Imports every ``tests/bench/bench_*.py`` module, calls its ``run()``, and prints one table:
for every row the median of the runs with min and max, the peer's median, the ratio of the
two (measured in the same run of the benchmark), the target and whether it is met (and by
how much it is missed).  The table is written to ``refs/benchmarks.md`` with the machine
(nproc, CPU model, memory), the versions of Python, ffmpeg, nginx, rtmpdump and rtmplite3,
and the date.  Hand-written notes below the ``<!-- notes -->`` line of that file (the
profile findings) are kept when it is rewritten.

A row is a dict: ``group``, ``name``, ``unit``, ``ours`` (list of per-run values), and
optionally ``peer`` (list), ``peer_name``, ``target`` (``"ratio >= 5"``, ``"< 60"``,
``">= 0.999"`` ...), ``note`` and ``direction`` (``"higher"``, ``"lower"`` or ``"none"``: which
way the figure is better, by default from the unit; see :func:`tests.bench.harness.row`).
``run()`` may accept ``quick`` and ``repeat``; the runner passes what it accepts.

Options: ``--quick`` (small sizes, one run; used by ``tests/test_bench_harness.py``),
``--only NAME`` (repeatable: ``relay``, ``chunk`` ...), ``--repeat N`` (default 3),
``--output FILE`` (default ``refs/benchmarks.md``; ``--quick`` writes nothing unless given),
``--baseline FILE``, ``--no-compare`` and ``--tolerance F`` (the regression gate, below).
A benchmark that raises (for example a relay that lost integrity) is reported in the table
and makes the exit status 1.

The regression gate (issue 21; the rules are in :mod:`tests.bench.record`): a run that
writes its table also writes a machine-readable record next to it (``refs/benchmarks.json``
beside ``refs/benchmarks.md``: every row's series, ratio, unit and direction).  Before
that, every row the run made is compared with the recorded run (``--baseline FILE``,
default ``refs/benchmarks.json``): a row whose figure (its ratio to the peer, run by run,
where it has a peer and no plain target; its own figure otherwise) got worse beyond noise
(the new best worse than the recorded worst by over 25% for ratios, 50% for raw figures;
the noisier groups' own in ``record.GROUP_TOLERANCE``) is *regressed*: the
runner prints it, marks it in the table's "vs recorded" column, keeps the recorded run as
it was (the new record is not written) and exits 1, so ``tox -e bench`` fails.  A
deliberate change of the figures is recorded with ``--no-compare``.  ``--only`` runs
compare only the rows they ran and replace only those in the record; ``--quick`` runs
never compare and never write a record.  Rows of the recorded run that a benchmark which
ran no longer makes are listed, not failed.
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

from tests.bench import harness, record

logger = logging.getLogger("tests.bench")

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = harness.REPO / "refs" / "benchmarks.md"
#: The recorded run new runs are compared with (written next to the output as ``.json``).
DEFAULT_BASELINE = DEFAULT_OUTPUT.with_suffix(".json")
NOTES_MARKER = "<!-- notes: everything below is kept when the runner rewrites this file -->"
#: Modules run in this order; any other bench_*.py follows alphabetically.
ORDER = ("chunk", "amf", "relay", "burst", "connections", "idle", "latency", "shared_object", "client")
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


def render(rows: List[Dict[str, Any]],
           comparisons: Optional[record.Verdict] = None) -> str:
    """The table, as Markdown (readable on a terminal too); with ``comparisons``, a last
    column "vs recorded" says how each row compares with the recorded run."""
    columns = 10 if comparisons is not None else 9
    head = ("| group | benchmark | unit | ours: median (min-max) | peer | peer median (min-max) "
            "| ratio | target | met? |" + (" vs recorded |" if comparisons is not None else ""))
    lines = [head, "|" + "---|" * columns]
    for row in rows:
        if row.get("error"):
            lines.append(f"| {row['group']} | {row['name']} | | FAILED: {row['error']} "
                         "| | | | | NO |" + (" |" if comparisons is not None else ""))
            continue
        ratio = _ratio(row)
        cells = [
            row["group"], row["name"], row.get("unit", ""), harness.summary(row.get("ours", [])),
            row.get("peer_name", ""), harness.summary(row["peer"]) if row.get("peer") else "",
            f"{ratio:.2f}" if ratio is not None else "", row.get("target", ""), verdict(row),
        ]
        if comparisons is not None:
            comparison = comparisons.rows.get(record.row_key(row))
            cells.append(comparison.cell() if comparison else "")
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    notes = list(dict.fromkeys(f"- {r['name']}: {r['note']}" for r in rows if r.get("note")))
    if notes:
        lines += ["", "Row notes:", ""] + notes
    return "\n".join(lines)


def document(table: str, info: Dict[str, str], args: argparse.Namespace, seconds: float,
             notes: str, comparison: str = "") -> str:
    machine = "\n".join(f"- {k}: {v}" for k, v in info.items())
    runs = ("a single run (--quick)" if args.quick or args.repeat == 1
            else f"median of {args.repeat} runs")
    compared = f"- compared with the recorded run: {comparison}\n" if comparison else ""
    return (
        "# Benchmarks\n\n"
        "Written by `python -m tests.bench` (`tox -e bench`); do not edit above the notes "
        f"marker.  Each figure is the {runs}, with min and max; every ratio compares ours "
        "with the peer measured in the same run of the benchmark, on the same machine, "
        "interleaved run by run.  The machine is shared with other work, so absolute "
        "figures move from run to run; the ratios are the result.\n\n"
        f"Machine and versions:\n\n{machine}\n- benchmark wall time: {seconds:.0f} s\n"
        f"- command: `python -m tests.bench {args.command_line}`\n{compared}\n"
        f"{table}\n\n{NOTES_MARKER}\n{notes}"
    )


def existing_notes(path: Path) -> str:
    try:
        text = path.read_text("utf-8")
    except OSError:
        return ""
    _, marker, notes = text.partition(NOTES_MARKER)
    return notes.lstrip("\n") if marker else ""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, one run; never compared, never recorded")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this benchmark (repeatable); only its rows are "
                             "compared and recorded")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="runs per figure (at least 3 for published figures)")
    parser.add_argument("--output", metavar="FILE",
                        help="where to write the Markdown (default refs/benchmarks.md; "
                             "--quick writes nothing unless this is given); the record "
                             "goes next to it, as .json")
    parser.add_argument("--baseline", metavar="FILE", type=Path, default=DEFAULT_BASELINE,
                        help="the recorded run to compare with (default refs/benchmarks.json)")
    parser.add_argument("--no-compare", action="store_true",
                        help="do not compare with the recorded run; record this one as it is")
    parser.add_argument("--tolerance", type=float, default=record.TOLERANCE, metavar="F",
                        help="how much worse than the recorded worst a ratio's new best may "
                             "be before it is a regression (default 0.25; raw figures: 2x; "
                             "noisier groups: record.GROUP_TOLERANCE)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every run")
    args = parser.parse_args(argv)
    args.command_line = " ".join(sys.argv[1:] if argv is None else argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.tolerance < 0:
        parser.error("--tolerance must not be negative")
    return args


def run_benchmarks(names: Sequence[str], args: argparse.Namespace
                   ) -> Tuple[List[Dict[str, Any]], bool]:
    """Every named benchmark's rows (each tagged with its ``bench``), and whether one raised."""
    rows: List[Dict[str, Any]] = []
    failed = False
    for name in names:
        print(f"running bench_{name} ...", file=sys.stderr, flush=True)
        begun = time.monotonic()
        try:
            module = importlib.import_module(f"tests.bench.bench_{name}")
            made = call_run(module, args.quick, args.repeat, name)
        except Exception as exc:
            failed = True
            traceback.print_exc()
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            made = [{"group": name, "name": f"bench_{name}",
                     "error": f"{type(exc).__name__}: {first_line}"[:300]}]
        for row in made:
            row["bench"] = name
        rows += made
        print(f"  bench_{name}: {time.monotonic() - begun:.0f} s", file=sys.stderr, flush=True)
    return rows, failed


def finish(rows: List[Dict[str, Any]], args: argparse.Namespace, seconds: float,
           failed: bool, ran: Sequence[str],
           info: Optional[Dict[str, str]] = None) -> int:
    """Compare with the recorded run, print and write the table, write the record.

    The exit status: 1 if a benchmark raised, a row regressed or the recorded run could
    not be read; else 0.  The record is written (next to the Markdown output, as .json)
    for runs that are not ``--quick``, unless a row regressed (the recorded run stays the
    reference until the regression is fixed, or accepted with ``--no-compare``)."""
    output = Path(args.output) if args.output else (None if args.quick else DEFAULT_OUTPUT)
    previous: Optional[Dict[str, Any]] = None
    verdict_: Optional[record.Verdict] = None
    summary_line = ""
    unreadable = False
    if not args.quick:
        try:
            previous = record.load(args.baseline)
        except (ValueError, OSError) as exc:
            print(f"\nthe recorded run cannot be read: {exc}", file=sys.stderr)
            unreadable = not args.no_compare
        if previous is not None and not args.no_compare:
            verdict_ = record.compare(rows, previous["rows"], ran, args.tolerance)
            summary_line = _summarise(verdict_, previous, args.baseline)
        elif previous is None and not args.no_compare and not unreadable:
            print(f"\nno recorded run at {args.baseline}: nothing to compare with; this run "
                  "is recorded", file=sys.stderr)
    table = render(rows, verdict_)
    print(table)
    regressed = verdict_.regressed if verdict_ else []
    if verdict_ is not None:
        print(f"\ncompared with the recorded run: {summary_line}", file=sys.stderr)
        for key in regressed:
            print(f"  REGRESSED: {' / '.join(k for k in key if k)}: "
                  f"{verdict_.rows[key].cell()}", file=sys.stderr)
        for key in verdict_.missing:
            print(f"  recorded but not made by this run: {' / '.join(k for k in key if k)}",
                  file=sys.stderr)
    if output is not None:
        info = info if info is not None else harness.machine_info()
        output.parent.mkdir(parents=True, exist_ok=True)
        text = document(table, info, args, seconds, existing_notes(output), summary_line)
        output.write_text(text, "utf-8")
        print(f"\nwritten to {output}", file=sys.stderr)
        if not args.quick and not unreadable:
            target = output.with_suffix(".json")
            if regressed:
                print(f"{len(regressed)} row(s) regressed: {args.baseline} stays the recorded "
                      f"run and {target} is not written; to accept these figures, run again "
                      "with --no-compare", file=sys.stderr)
            else:
                record.save(target, record.new_record(
                    rows, previous, info.get("date", ""),
                    f"python -m tests.bench {args.command_line}".strip(), info))
                print(f"recorded in {target}", file=sys.stderr)
    return 1 if failed or regressed or unreadable else 0


def _summarise(verdict_: record.Verdict, previous: Dict[str, Any], path: Path) -> str:
    counts: Dict[str, int] = {}
    for comparison in verdict_.rows.values():
        counts[comparison.status] = counts.get(comparison.status, 0) + 1
    order = ("regressed", "improved", "same", "new", "not judged")
    parts = [f"{counts[s]} {'within noise' if s == 'same' else s}" for s in order if s in counts]
    if verdict_.missing:
        parts.append(f"{len(verdict_.missing)} recorded row(s) not made")
    return (f"{path.name} of {previous.get('written', '?')}: " + ", ".join(parts)
            + " (a row regressed when its new best is worse than the recorded worst by more "
              "than the tolerance)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    started = time.monotonic()
    names = discover(args.only)
    rows, failed = run_benchmarks(names, args)
    return finish(rows, args, time.monotonic() - started, failed, names)


if __name__ == "__main__":
    sys.exit(main())
