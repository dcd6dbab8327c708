"""Benchmark: connection rate, full sessions per second (RTMP 5.2, 7.2.1.1, 7.2.1.3, 7.2.2.1).

A pool of client threads runs full player sessions back to back for a fixed time:
TCP connect, RTMP 5.2 handshake, ``connect`` and its ``_result``, ``createStream`` and its
``_result``, ``play`` until ``NetStream.Play.Start``, close.  Sessions per second are
counted against each server in turn, in every repetition.  A session that fails counts
as an error; any error fails the benchmark.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from tests.bench import harness, loadgen

logger = logging.getLogger(__name__)

#: Client threads in the pool, and how long each measurement lasts.
THREADS = 4
SECONDS = 3.0


def measure(server_name: str, seconds: float, threads: int = THREADS) -> Tuple[float, str]:
    """Sessions per second against a fresh server process, and what went wrong if anything.

    Any failed session against our server raises.  A peer server that dies under the load
    (rtmplite3 does: its multitask loop selects on a closed descriptor) is measured up to
    that moment and the crash is reported in the row's note.
    """
    server = harness.SERVERS[server_name]()
    with server, loadgen.quiet_handshake_warnings():
        endpoint = loadgen.Endpoint("127.0.0.1", server.port)
        loadgen.session_once(endpoint)  # warm-up: imports, first stream, caches
        counts = [0] * threads
        errors: List[str] = []
        start = time.monotonic()
        deadline = start + seconds
        last_success = [start]

        def worker(slot: int) -> None:
            while time.monotonic() < deadline and not errors:
                try:
                    loadgen.session_once(endpoint, timeout=10.0)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                counts[slot] += 1
                last_success[0] = time.monotonic()

        pool = [threading.Thread(target=worker, args=(i,), name=f"bench-conn-{i}")
                for i in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(seconds + 30)
        elapsed = time.monotonic() - start
        problem = ""
        if errors:
            crashed = not server.running()
            if server_name == "ours" or not crashed:
                raise RuntimeError(f"connection rate against {server_name}: {len(errors)} "
                                   f"failed sessions, first: {errors[0]}\n{server.log_tail()}")
            elapsed = last_success[0] - start
            problem = (f"{server_name} crashed after {sum(counts)} sessions in "
                       f"{elapsed:.1f} s ({errors[0][:60]}); rate measured until then")
            logger.warning("%s\n%s", problem, server.log_tail()[-600:])
    return sum(counts) / max(elapsed, 1e-9), problem


def run(quick: bool = False, repeat: int = 3,
        servers: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    seconds = 0.5 if quick else SECONDS
    available = harness.available_servers()
    names = [n for n in (servers or list(harness.SERVERS)) if not available.get(n)]
    results: Dict[str, List[float]] = {name: [] for name in names}
    problems: List[str] = []
    for run_index in range(repeat):
        for name in names:
            rate, problem = measure(name, seconds)
            if problem:
                problems.append(f"run {run_index + 1}: {problem}")
            results[name].append(rate)
            logger.info("connections %s run %d: %.0f sessions/s", name, run_index + 1, rate)
    rows = []
    targets = {"rtmplite3": "ratio >= 3"}
    note = "handshake, connect, createStream, play until Play.Start, deleteStream, close"
    for peer in [p for p in ("rtmplite3", "nginx-rtmp") if p in results]:
        crashes = [p for p in problems if peer in p]
        rows.append(harness.row(
            "connections", f"full sessions/s, {THREADS} client threads", "sessions/s",
            results["ours"], peer=results[peer], peer_name=peer, target=targets.get(peer, ""),
            note="; ".join([note] + crashes) if peer == "rtmplite3" else note))
    if len(rows) == 0:
        rows.append(harness.row("connections", f"full sessions/s, {THREADS} client threads",
                                "sessions/s", results["ours"]))
    return rows
