"""Benchmark: connection rate, full sessions per second (RTMP 5.2, 7.2.1.1, 7.2.1.3, 7.2.2.1).

A pool of client threads runs full player sessions back to back for a fixed time:
TCP connect, RTMP 5.2 handshake, ``connect`` and its ``_result``, ``createStream`` and its
``_result``, ``play`` until ``NetStream.Play.Start``, ``deleteStream``, close.  Sessions per
second are counted against each server in turn, in every repetition.  A session that fails
counts as an error; any error against our server fails the benchmark.

The sessions are :func:`tests.bench.loadgen.light_session` (pre-encoded requests, replies
checked on their AMF0 bytes: ~0.4 ms of generator CPU per session instead of ~1 ms for
:func:`~tests.bench.loadgen.session_once`), and the pool is spread over processes so one
generator GIL is not the limit.  Measured against nginx-rtmp on the 2-core machine, five
3 s runs of each layout (processes x threads: median sessions/s (min-max), generator CPU
per session)::

    1 x 4   1480 (1330-1580)   0.63-0.73 ms  (one GIL: the threads contend for it)
    2 x 2   2660 (1930-2750)   0.40-0.44 ms
    2 x 4   2420 (1430-2750)   0.36-0.44 ms

so the pool is 2 processes x 2 threads (the session_once generator, 1 x 4, reached
~600-900 sessions/s against every server).
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any, Dict, List, Optional, Tuple

from tests.bench import harness, loadgen

logger = logging.getLogger(__name__)

#: Client processes, threads per process, and how long each measurement lasts.
PROCESSES = 2
THREADS = 2
SECONDS = 3.0
#: How long a peer whose sessions failed may take to exit before it counts as crashed.
CRASH_GRACE = 2.0


def _exits(server: harness.ServerProcess, grace: float) -> bool:
    """Whether the server process is gone within ``grace`` seconds (a crashing rtmplite3
    resets its connections a moment before its process exits)."""
    end = time.monotonic() + grace
    while server.running():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def measure(server_name: str, seconds: float, processes: int = PROCESSES,
            threads: int = THREADS) -> Tuple[float, str, float]:
    """Sessions per second against a fresh server process, what went wrong if anything,
    and the generator's CPU milliseconds per session.

    Any failed session against our server raises.  A peer server that dies under the load
    (rtmplite3 does: its multitask loop selects on a closed descriptor) is measured up to
    that moment and the crash is reported in the row's note.
    """
    server = harness.SERVERS[server_name]()
    with server:
        endpoint = loadgen.Endpoint("127.0.0.1", server.port)
        pools = loadgen.run_connection_pool(endpoint, processes, threads, seconds)
        sessions = sum(p.sessions for p in pools)
        errors = [e for p in pools for e in p.errors]
        started = [p for p in pools if p.start]
        start = min((p.start for p in started), default=0.0)
        elapsed = max((p.end for p in started), default=start) - start
        cpu_ms = 1000.0 * sum(p.cpu_seconds for p in pools) / max(sessions, 1)
        problem = ""
        if errors:
            crashed = server_name != "ours" and _exits(server, CRASH_GRACE)
            if not crashed or not started:
                raise RuntimeError(f"connection rate against {server_name}: {len(errors)} "
                                   f"failed sessions, first: {errors[0]}\n{server.log_tail()}")
            elapsed = max(p.last_success for p in started) - start
            problem = (f"{server_name} crashed after {sessions} sessions in "
                       f"{elapsed:.1f} s ({errors[0][:60]}); rate measured until then")
            logger.warning("%s\n%s", problem, server.log_tail()[-600:])
    return sessions / max(elapsed, 1e-9), problem, cpu_ms


def run(quick: bool = False, repeat: int = 3,
        servers: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    seconds = 0.5 if quick else SECONDS
    available = harness.available_servers()
    names = [n for n in (servers or list(harness.SERVERS)) if not available.get(n)]
    results: Dict[str, List[float]] = {name: [] for name in names}
    cpu: Dict[str, List[float]] = {name: [] for name in names}
    problems: List[str] = []
    for run_index in range(repeat):
        for name in names:
            rate, problem, cpu_ms = measure(name, seconds)
            if problem:
                problems.append(f"run {run_index + 1}: {problem}")
            results[name].append(rate)
            cpu[name].append(cpu_ms)
            logger.info("connections %s run %d: %.0f sessions/s, generator %.2f ms CPU/session",
                        name, run_index + 1, rate, cpu_ms)
    rows = []
    targets = {"rtmplite3": "ratio >= 3"}
    label = f"full sessions/s, {PROCESSES} processes x {THREADS} client threads"
    note = "handshake, connect, createStream, play until Play.Start, deleteStream, close"

    def generator(name: str) -> str:
        return f"{statistics.median(cpu[name]):.2f} ms ({name})"

    for peer in [p for p in ("rtmplite3", "nginx-rtmp") if p in results]:
        crashes = [p for p in problems if peer in p]
        cost = "generator CPU/session " + ", ".join(generator(n) for n in ("ours", peer))
        rows.append(harness.row(
            "connections", label, "sessions/s", results["ours"], peer=results[peer],
            peer_name=peer, target=targets.get(peer, ""), note="; ".join([note, cost] + crashes)))
    if len(rows) == 0:
        rows.append(harness.row("connections", label, "sessions/s", results["ours"],
                                note=f"{note}; generator CPU/session {generator('ours')}"))
    return rows
