"""Server CPU per full session, ours against the floor, with little noise (issue 21).

``python -m tests.bench.session_cost [--rounds 10] [--sessions 400] [--verbose-too]
[--baseline DIR]``

``bench_connections`` measures sessions/s under a pool of 2 x 2 client threads, a fresh
server per run; on this shared 2-core machine its CPU-per-session figures swing by
+-30% from run to run.  This tool measures the one figure of issue 21's first target, the
server's CPU per session, with less noise:

* every server runs once for the whole measurement (start-up not counted): ours
  (``python -m rtmp serve --chunk-size 4096 --record-dir DIR``, as the benchmark starts it),
  ours with ``-v`` (INFO logging) when ``--verbose-too``, the same two from the checkout
  at ``--baseline DIR`` (an older tree, to compare before and after a change), and
  ``py-thread-floor`` (:mod:`tests.bench.floor_server`);
* one client runs :func:`tests.bench.loadgen.light_session` back to back (handshake,
  connect, createStream, play until Play.Start, deleteStream, close), ``--sessions`` per
  server per round, the servers interleaved round by round;
* a server's CPU is ``/proc/PID/stat`` utime + stime before and after its sessions; the
  medians over the rounds, and their ratio to the floor's, are printed.

Sessions one after another are not the benchmark's load (4 at once), so the figures are
lower than ``bench_connections``' and the ratios somewhat different; what they are for is
telling a change of 10% from the noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from tests.bench import harness, loadgen

__all__ = ["main", "measure"]

_TICKS = os.sysconf("SC_CLK_TCK")


class _Verbose(harness.OurServer):
    """Ours with ``-v``: INFO logging on stderr (into the run's log file)."""

    name = "ours -v"

    def command(self, port: int, directory: Path) -> List[str]:
        return super().command(port, directory) + ["-v"]


def _baseline(server: type, root: Path) -> type:
    """``server`` (ours or ours -v) importing ``rtmp`` from the checkout at ``root``."""

    class Baseline(server):  # type: ignore[valid-type,misc]
        name = f"baseline {server.name}"

        def environment(self) -> Optional[Dict[str, str]]:
            return dict(os.environ, PYTHONPATH=str(root))

    return Baseline


def _cpu(pid: int) -> Tuple[float, float]:
    """User and system CPU seconds of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS


def measure(servers: Sequence[type], rounds: int, sessions: int
            ) -> Dict[str, List[Tuple[float, float]]]:
    """Per server name, per round: (user, system) CPU milliseconds per session."""
    started = [server().start() for server in servers]
    try:
        scripts = [loadgen.SessionScript(loadgen.Endpoint("127.0.0.1", s.port)) for s in started]
        for script in scripts:  # warm up: imports, first-use caches, spare threads
            for _ in range(50):
                loadgen.light_session(script)
        figures: Dict[str, List[Tuple[float, float]]] = {s.name: [] for s in started}
        for _ in range(rounds):
            for server, script in zip(started, scripts):
                user, system = _cpu(server.pid)
                for _ in range(sessions):
                    loadgen.light_session(script)
                user_after, system_after = _cpu(server.pid)
                figures[server.name].append((1000 * (user_after - user) / sessions,
                                             1000 * (system_after - system) / sessions))
        return figures
    finally:
        for server in started:
            server.stop()


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.session_cost",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=400, help="per server per round")
    parser.add_argument("--verbose-too", action="store_true", help="also ours with -v")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also the rtmp package of the checkout at DIR")
    args = parser.parse_args(argv)
    ours: List[type] = [harness.OurServer] + ([_Verbose] if args.verbose_too else [])
    servers = [_baseline(s, args.baseline.resolve()) for s in ours] if args.baseline else []
    servers += ours + [harness.ThreadFloor]
    figures = measure(servers, args.rounds, args.sessions)
    floor = statistics.median(u + s for u, s in figures[harness.ThreadFloor.name])
    print(f"server CPU per session, {args.rounds} rounds of {args.sessions} sequential light "
          f"sessions; load average {os.getloadavg()[0]:.1f}")
    for name, runs in figures.items():
        total = statistics.median(u + s for u, s in runs)
        user = statistics.median(u for u, _ in runs)
        system = statistics.median(s for _, s in runs)
        print(f"  {name:22s} {total:.3f} ms (user {user:.3f}, system {system:.3f}), "
              f"{total / floor:.2f}x the floor")


if __name__ == "__main__":
    main()
