"""Resource use of rtmp.Server under load: peak RSS with many idle sessions and a csid flood.

The server runs in a subprocess (so its memory is its own); this process opens the
connections and reads the child's ``/proc/PID/status`` (``VmHWM`` is the peak resident set
size, ``VmRSS`` the current one).  Used by ``test_resources.py`` and runnable by hand::

    python -m tests.hostile.rss_probe --idle 500 --flood 20

prints one line per measurement (the numbers in refs/hostile.md come from here).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, Iterator, List, Tuple

from tests.hostile.harness import RawPeer
from tests.peers import stop_process

logger = logging.getLogger(__name__)

#: The server child: long timeouts (idle sessions must stay), default limits otherwise.
SERVER_SCRIPT = """
import sys, rtmp, rtmp.server
# No spare connection threads: the thread count is then the main thread, the one thread
# waiting in accept() and one per live session, so it tells whether sessions were cut.
rtmp.server.MAX_SPARE_THREADS = 0
server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", read_timeout=300.0,
                                       idle_timeout=300.0, handshake_timeout=60.0,
                                       max_connections=5000))
server.start()
print(server.address[1], flush=True)
sys.stdin.read()
server.stop(timeout=20.0)
print("stopped", server.stats.errors, flush=True)
"""


@dataclass
class Measure:
    """What one scenario cost the server process."""

    scenario: str
    connections: int
    seconds: float
    vm_hwm_kb: int
    vm_rss_kb: int
    threads: int
    baseline_rss_kb: int

    @classmethod
    def of(cls, scenario: str, connections: int, seconds: float, status: Dict[str, int],
           baseline_rss_kb: int) -> "Measure":
        """From the child's ``/proc/PID/status`` fields (:func:`proc_status`)."""
        return cls(scenario, connections, seconds, status["VmHWM"], status["VmRSS"],
                   status["Threads"], baseline_rss_kb)

    def line(self) -> str:
        return (f"{self.scenario}: {self.connections} connections in {self.seconds:.1f} s; "
                f"peak RSS (VmHWM) {self.vm_hwm_kb / 1024:.1f} MB, RSS now "
                f"{self.vm_rss_kb / 1024:.1f} MB, {self.threads} threads "
                f"(idle server {self.baseline_rss_kb / 1024:.1f} MB)")


def proc_status(pid: int) -> Dict[str, int]:
    """The numeric ``kB`` fields of /proc/PID/status that matter here."""
    fields: Dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "Threads"):
                fields[key] = int(value.split()[0])
    return fields


def settled_status(server: "ServerProcess", threads: int = 3, timeout: float = 5.0) -> dict:  # type: ignore[type-arg]
    """The server's status once its session threads have finished tearing down.

    A peer sees its socket closed a moment before the session thread exits, so the
    thread count is read after it settles (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    status = server.status()
    while status["Threads"] > threads and time.monotonic() < deadline:
        time.sleep(0.05)
        status = server.status()
    return status


class ServerProcess:
    """rtmp.Server in a child Python process; ``stop()`` ends it through its stdin."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            stop_process(self.process)
            raise RuntimeError(f"server child did not start: {line!r}")
        self.address = ("127.0.0.1", int(line))

    def status(self) -> Dict[str, int]:
        return proc_status(self.process.pid)

    def stop(self, timeout: float = 30.0) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.close()
            self.process.wait(timeout)
            return self.process.stdout.read().decode(errors="replace").strip()
        except subprocess.TimeoutExpired:
            stop_process(self.process)
            return "killed"
        finally:
            self.process.stdout.close()


@contextlib.contextmanager
def _scenario() -> Iterator[Tuple[ServerProcess, List[RawPeer], int]]:
    """A server child, the list its clients go in, and its RSS before them; on exit every
    client is closed and the server stopped."""
    server = ServerProcess()
    peers: List[RawPeer] = []
    try:
        yield server, peers, server.status()["VmRSS"]
    finally:
        for peer in peers:
            peer.close()
        server.stop()


def _connect_peers(server: ServerProcess, peers: List[RawPeer], count: int) -> None:
    """``count`` clients through the handshake and ``connect``, added to ``peers``."""
    for _ in range(count):
        peer = RawPeer(server.address, timeout=30.0)
        peer.connect()
        peers.append(peer)


def idle_sessions(count: int) -> Measure:
    """``count`` clients that complete the handshake and ``connect``, then stay silent."""
    with _scenario() as (server, peers, baseline):
        start = time.monotonic()
        _connect_peers(server, peers, count)
        elapsed = time.monotonic() - start
        time.sleep(0.5)
        return Measure.of("idle sessions", count, elapsed, server.status(), baseline)


def chunk_stream_flood(count: int, csids: int = 1000) -> Measure:
    """``count`` clients at once, each opening ``csids`` chunk streams with a partial
    message that announces 16 MiB - 1 (RTMP 5.3.1.2.1): bounded by max_chunk_streams and
    max_pending_bytes, each session is cut and its buffers freed."""
    from tests.hostile.test_chunk_hostile import chunk

    with _scenario() as (server, peers, baseline):
        start = time.monotonic()
        _connect_peers(server, peers, count)
        burst = b"".join(chunk(0, csid, length=0xFFFFFF, type_id=9, msid=1, data=bytes(128))
                         for csid in range(64, 64 + csids))
        for peer in peers:
            peer.send(burst)
        for peer in peers:
            peer.wait_closed(30.0)
        elapsed = time.monotonic() - start
        return Measure.of(f"{csids}-chunk-stream flood", count, elapsed, settled_status(server),
                          baseline)


def partial_message_hoard(count: int, messages: int = 4) -> Measure:
    """``count`` clients each announce ``messages`` messages of 16 MiB - 1 on separate chunk
    streams and send all of each but its last chunk (chunk size 16 MiB - 2), then wait.
    Without a budget the server holds it all until ``read_timeout`` (~65 MB per client);
    ``ServerConfig.max_pending_bytes`` (16 MiB by default) ends such sessions at once."""
    import struct

    from tests.hostile.test_chunk_hostile import chunk

    with _scenario() as (server, peers, baseline):
        start = time.monotonic()
        size = 0xFFFFFF
        first = size - 1  # the chunk size: every message lacks its 1-byte second chunk
        body = bytes(first)
        for _ in range(count):
            peer = RawPeer(server.address, timeout=60.0)
            peer.connect()
            peer.send(chunk(0, 2, length=4, type_id=1, data=struct.pack(">I", first)))
            for csid in range(6, 6 + messages):
                peer.send(chunk(0, csid, length=size, type_id=9, msid=1, data=body))
            peers.append(peer)
        time.sleep(1.0)
        elapsed = time.monotonic() - start
        status = settled_status(server)
        alive = sum(1 for p in peers if p.is_open(0.05))
        return Measure.of(f"{messages} x 16 MiB partial messages each ({alive} kept)", count,
                          elapsed, status, baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=500, help="idle sessions (0: skip)")
    parser.add_argument("--flood", type=int, default=20, help="flooding clients (0: skip)")
    parser.add_argument("--hoard", type=int, default=0,
                        help="clients hoarding 4 partial 16 MiB messages each (0: skip)")
    args = parser.parse_args()
    if args.idle:
        print(idle_sessions(args.idle).line(), flush=True)
    if args.flood:
        print(chunk_stream_flood(args.flood).line(), flush=True)
    if args.hoard:
        print(partial_message_hoard(args.hoard).line(), flush=True)


if __name__ == "__main__":
    main()
