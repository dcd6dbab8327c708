"""The soak runner: ``python -m tests.soak`` (``tox -e soak``), issue 20.

Starts ``python -m rtmp serve`` on 127.0.0.1 and a free port, drives it for ``--duration``
seconds (600 by default) with publishers and players that join and leave, prints a table
row every ``--interval`` seconds (server RSS, threads, descriptors, CPU; frames sent,
delivered to the players that keep up, lost), then a table per player and per publisher
and the verdict.  Exit status 0 when the run passed, 1 when it failed (growth, a lost
frame, a client error; see :mod:`tests.soak.monitor` and :mod:`tests.soak.load`).

``--short`` is the CI-sized form: 40 s of a smaller load, a row every 4 s.  The result
goes to the "Soak" section of ``refs/benchmarks.md`` (``--output FILE`` elsewhere); a
``--short`` run writes nothing unless ``--output`` is given.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from tests.bench.harness import REPO
from tests.soak.load import Profile
from tests.soak.runner import report, run_soak, write_section

DEFAULT_DURATION = 600.0
DEFAULT_INTERVAL = 10.0
SHORT_DURATION = 40.0
SHORT_INTERVAL = 4.0
DEFAULT_OUTPUT = REPO / "refs" / "benchmarks.md"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true",
                        help=f"the CI-sized form: {SHORT_DURATION:.0f} s, a smaller load")
    parser.add_argument("--duration", type=float, metavar="S",
                        help=f"seconds of load (default {DEFAULT_DURATION:.0f}; "
                             f"--short: {SHORT_DURATION:.0f})")
    parser.add_argument("--interval", type=float, metavar="S",
                        help=f"seconds between rows (default {DEFAULT_INTERVAL:.0f}; "
                             f"--short: {SHORT_INTERVAL:.0f})")
    parser.add_argument("--seed", type=int, default=1, help="seed of the load's choices")
    parser.add_argument("--output", metavar="FILE",
                        help="where the Soak section goes (default refs/benchmarks.md; "
                             "--short writes nothing unless this is given)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log client errors")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(asctime)s %(name)s: %(message)s")
    duration = args.duration or (SHORT_DURATION if args.short else DEFAULT_DURATION)
    interval = args.interval or (SHORT_INTERVAL if args.short else DEFAULT_INTERVAL)
    if duration <= 0 or interval <= 0:
        parser.error("--duration and --interval must be positive")
    profile = Profile.short(args.seed) if args.short else Profile(seed=args.seed)
    output = Path(args.output) if args.output else (None if args.short else DEFAULT_OUTPUT)
    command = "python -m tests.soak " + " ".join(sys.argv[1:] if argv is None else argv)
    result = run_soak(duration, interval, profile, emit=lambda line: print(line, flush=True))
    note = ""
    if duration != DEFAULT_DURATION or args.short:
        note = (f"A shortened run: the default form, `python -m tests.soak` (`tox -e soak`), "
                f"runs {DEFAULT_DURATION:.0f} s{'' if args.short else ' of the same load'}.")
    text = report(result, command.strip(), note)
    print("\n" + text)
    if not result.passed and result.server_log:
        print("server log (tail):\n" + result.server_log, file=sys.stderr)
    if output is not None:
        write_section(output, text)
        print(f"written to {output}", file=sys.stderr)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
