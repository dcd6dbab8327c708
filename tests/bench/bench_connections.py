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
from typing import Any, Dict, List, Optional

from tests.bench import harness, loadgen

logger = logging.getLogger(__name__)

#: Client threads in the pool, and how long each measurement lasts.
THREADS = 4
SECONDS = 3.0


def measure(server_name: str, seconds: float, threads: int = THREADS) -> float:
    """Sessions per second against a fresh server process."""
    server = harness.SERVERS[server_name]()
    with server, loadgen.quiet_handshake_warnings():
        endpoint = loadgen.Endpoint("127.0.0.1", server.port)
        loadgen.session_once(endpoint)  # warm-up: imports, first stream, caches
        counts = [0] * threads
        errors: List[str] = []
        start = time.monotonic()
        deadline = start + seconds

        def worker(slot: int) -> None:
            while time.monotonic() < deadline:
                try:
                    loadgen.session_once(endpoint, timeout=10.0)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                counts[slot] += 1

        pool = [threading.Thread(target=worker, args=(i,), name=f"bench-conn-{i}")
                for i in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(seconds + 30)
        elapsed = time.monotonic() - start
        if errors:
            raise RuntimeError(f"connection rate against {server_name}: {len(errors)} failed "
                               f"sessions, first: {errors[0]}\n{server.log_tail()}")
    return sum(counts) / elapsed


def run(quick: bool = False, repeat: int = 3,
        servers: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    seconds = 0.5 if quick else SECONDS
    available = harness.available_servers()
    names = [n for n in (servers or list(harness.SERVERS)) if not available.get(n)]
    results: Dict[str, List[float]] = {name: [] for name in names}
    for run_index in range(repeat):
        for name in names:
            rate = measure(name, seconds)
            results[name].append(rate)
            logger.info("connections %s run %d: %.0f sessions/s", name, run_index + 1, rate)
    rows = []
    targets = {"rtmplite3": "ratio >= 3"}
    for peer in [p for p in ("rtmplite3", "nginx-rtmp") if p in results]:
        rows.append(harness.row(
            "connections", f"full sessions/s, {THREADS} client threads", "sessions/s",
            results["ours"], peer=results[peer], peer_name=peer, target=targets.get(peer, ""),
            note="handshake, connect, createStream, play until Play.Start, close"))
    if len(rows) == 0:
        rows.append(harness.row("connections", f"full sessions/s, {THREADS} client threads",
                                "sessions/s", results["ours"]))
    return rows
