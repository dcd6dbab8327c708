"""Benchmark: memory of 500 idle connections (RTMP 5.2 handshake and RTMP 7.2.1.1 connect).

Issue 21 (keep): 500 idle connections under 60 MB.  A fresh server process; one client
thread opens ``COUNT`` connections one after the other, each through the handshake and
``connect`` up to its ``_result`` (:class:`tests.hostile.harness.RawPeer`, as the hostile
suite's 500-idle test in :mod:`tests.hostile.rss_probe` does), and holds them open without
a word.  Once the last has its ``_result``, and half a second more, the server's peak
resident set (``VmHWM``) is read; every connection must still be open then (and, for our
server, have its thread), else the run fails.  nginx-rtmp gets the same connections in the
same round, for comparison.

Our server runs as ``rtmp serve`` does by default, so a connection that says nothing is
cut after ``read_timeout`` (30 s): the connections must all be made within
:data:`CONNECT_DEADLINE`, or the run fails instead of measuring fewer.
"""

from __future__ import annotations

import logging
import select
import socket
import statistics
import time
from typing import Any, Dict, List, Optional, Tuple

from tests.bench import harness
from tests.hostile.harness import RawPeer
from tests.hostile.rss_probe import proc_status

logger = logging.getLogger(__name__)

#: Idle connections per run (``--quick``: :data:`QUICK_COUNT`).
COUNT = 500
QUICK_COUNT = 50
#: Seconds all the connections may take (our server cuts a silent one after 30 s).
CONNECT_DEADLINE = 25.0
#: Seconds between the last ``_result`` and the reading of the server's memory.
SETTLE = 0.5
#: Issue 21's target for our server's peak RSS with 500 idle connections.
TARGET = "< 60"
PEERS = ("nginx-rtmp",)
_QUICKACK = getattr(socket, "TCP_QUICKACK", 0)


def open_count(socks: List[socket.socket]) -> int:
    """How many of ``socks`` the server has not closed (no EOF, no reset): one ``poll``
    over all of them, then a peek at those with something to read."""
    poller = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    closed = 0
    for fd, events in poller.poll(0):
        if events & (select.POLLERR | select.POLLHUP):
            closed += 1
            continue
        try:
            if not by_fd[fd].recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return len(socks) - closed


class IdlePeer(RawPeer):
    """:class:`tests.hostile.harness.RawPeer` with TCP_NODELAY, and TCP_QUICKACK before
    each read: C2 and ``connect`` go out at once, and a server that writes its replies
    without TCP_NODELAY (nginx-rtmp) does not wait for our delayed ACK (40 ms per
    connection otherwise; refs/benchmarks.md, notes: the load generator does the same)."""

    def __init__(self, address: Tuple[str, int]) -> None:
        super().__init__(address, timeout=10.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _pump(self, timeout: float) -> bool:
        if _QUICKACK:
            self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        return super()._pump(timeout)


def measure(server_name: str, count: int, deadline: float = CONNECT_DEADLINE) -> Dict[str, float]:
    """One run against a fresh server: its peak RSS with ``count`` idle connections."""
    server = harness.SERVERS[server_name]()
    peers: List[IdlePeer] = []
    with server:
        before = proc_status(server.pid)
        start = time.monotonic()
        try:
            for index in range(count):
                if time.monotonic() - start > deadline:
                    raise RuntimeError(f"only {index} of {count} connections made in "
                                       f"{deadline:.0f} s")
                peer = IdlePeer(("127.0.0.1", server.port))
                peers.append(peer)
                peer.connect()
            elapsed = time.monotonic() - start
            time.sleep(SETTLE)
            status = proc_status(server.pid)
            alive = open_count([p.sock for p in peers])
        except (AssertionError, OSError, RuntimeError) as exc:
            raise RuntimeError(f"idle connections to {server_name}: {exc}\n"
                               f"{server.log_tail()[-1500:]}") from exc
        finally:
            for peer in peers:
                peer.close()
    if alive < count:
        raise RuntimeError(f"idle connections to {server_name}: {count - alive} of {count} "
                           "were closed before the measurement")
    if server_name == "ours" and status["Threads"] < count:
        raise RuntimeError(f"our server has {status['Threads']} threads for {count} idle "
                           "connections: some sessions ended")
    return {"peak_rss_mb": status["VmHWM"] * 1024 / 1e6,
            "rss_mb": status["VmRSS"] * 1024 / 1e6,
            "idle_server_mb": before["VmRSS"] * 1024 / 1e6,
            "threads": float(status["Threads"]),
            "seconds": elapsed}


def run(quick: bool = False, repeat: int = 3,
        servers: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    count = QUICK_COUNT if quick else COUNT
    available = harness.available_servers()
    names = [n for n in (servers or ["ours", *PEERS]) if not available.get(n)]
    results: Dict[str, List[Dict[str, float]]] = {name: [] for name in names}
    for run_index in range(repeat):
        for name in names:  # interleaved: the same machine load for both
            figures = measure(name, count)
            results[name].append(figures)
            logger.info("idle %s run %d: %d connections in %.1f s, peak RSS %.1f MB",
                        name, run_index + 1, count, figures["seconds"], figures["peak_rss_mb"])

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    note = "; ".join(
        f"{name}: idle server {median(name, 'idle_server_mb'):.1f} MB, RSS at the end "
        f"{median(name, 'rss_mb'):.1f} MB, connections made in {median(name, 'seconds'):.1f} s"
        for name in names)
    label = f"{count} idle connections (handshake + connect each, held open): server peak RSS"
    ours = [r["peak_rss_mb"] for r in results.get("ours", [])]
    peers = [p for p in PEERS if p in results]
    rows = []
    for index, peer in enumerate(peers or [""]):
        rows.append(harness.row(
            "idle", label, "MB", ours, peer=[r["peak_rss_mb"] for r in results[peer]]
            if peer else None, peer_name=peer, target=TARGET if index == 0 else "",
            note=note))
    return rows
