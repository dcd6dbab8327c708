"""Benchmark: an origin with nginx-rtmp edges pulling from it (issue 19, a topology).

Two layouts carry the same stream to the same number of players (30 by default):

* *direct*: 1 publisher -> our server -> 30 players;
* *edges*: 1 publisher -> our server (the origin) -> 3 nginx-rtmp edges (``pull`` from the
  origin) -> 10 players each.

Measured per run: MB/s of media payload delivered to all players together, and the
origin's CPU seconds per delivered GB (``/proc/PID/stat``; the edges' CPU is reported
too).  With edges the origin serves 3 players (the edges' pulls) instead of 30: its cost
per delivered byte falls by about the fan-out of the edges.  Every player must get every
payload byte intact (counted and hashed, :mod:`tests.bench.loadgen`), or the run fails.

On one machine the edges, the origin and the load generator share the same cores, so the
delivered MB/s here is bounded by the machine, not by the layout; spread over machines (an
origin per ingest, N edges per region) each edge adds its own cores and uplink, and the
origin's load grows with the number of edges, not of players.

``python -m tests.bench --only topology`` runs it; ``--quick`` uses the 4 s test media.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Dict, List, Optional

from tests.bench import harness, loadgen
from tests.peers import NginxRtmp, free_port

logger = logging.getLogger(__name__)

PLAYERS = 30
EDGES = 3
#: How long the edges' pulls may take to reach the origin before the publisher starts.
PULL_TIMEOUT = 20.0


class Origin(harness.OurServer):
    """Our server with its HTTP API on, to see the edges' pulls arrive."""

    name = "ours-origin"

    def __init__(self) -> None:
        super().__init__()
        self.http_port = free_port()

    def command(self, port: int, directory: Path) -> List[str]:
        return [*super().command(port, directory), "--http", f"127.0.0.1:{self.http_port}"]

    def player_count(self, app: str, stream: str) -> int:
        """How many players ``app/stream`` has (``GET /api/streams``)."""
        url = f"http://127.0.0.1:{self.http_port}/api/streams"
        with urllib.request.urlopen(url, timeout=5) as reply:
            report = json.load(reply)
        for entry in report.get("applications", {}).get(app, {}).get("streams", []):
            if entry.get("name") == stream:
                return int(entry.get("player_count", 0))
        return 0


def _nginx_cpu(edge: NginxRtmp) -> float:
    assert edge.process is not None
    with open(f"/proc/{edge.process.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / harness._CLOCK_TICKS


def measure(plan: loadgen.MediaPlan, players: int, edges: int,
            timeout: float = 600.0) -> Dict[str, float]:
    """One run: ``edges`` = 0 is the direct layout."""
    with ExitStack() as stack:
        origin = stack.enter_context(Origin())
        endpoint = loadgen.Endpoint("127.0.0.1", origin.port)
        edge_servers: List[NginxRtmp] = []
        for _ in range(edges):
            edge = NginxRtmp(app_config=f"pull {endpoint.tc_url};", chunk_size=4096)
            edge_servers.append(stack.enter_context(edge))
        player_endpoints = [loadgen.Endpoint("127.0.0.1", e.port) for e in edge_servers]

        def pulls_arrived() -> None:
            deadline = time.monotonic() + PULL_TIMEOUT
            while origin.player_count(endpoint.app, endpoint.stream) < edges:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the {edges} edges did not pull within "
                                       f"{PULL_TIMEOUT:.0f} s")
                time.sleep(0.1)

        edge_cpu_before = sum(_nginx_cpu(e) for e in edge_servers)
        cpu_before = origin.cpu_seconds()
        with loadgen.quiet_handshake_warnings():
            outcome = loadgen.run_relay(endpoint, plan, players, timeout=timeout,
                                        player_endpoints=player_endpoints,
                                        before_publish=pulls_arrived if edges else None)
        cpu = origin.cpu_seconds() - cpu_before
        edge_cpu = sum(_nginx_cpu(e) for e in edge_servers) - edge_cpu_before
        if outcome.failures:
            raise RuntimeError(
                f"topology with {edges} edge(s), {players} players lost integrity: "
                + "; ".join(outcome.failures[:5]) + f"\norigin log tail:\n{origin.log_tail()}")
    gigabytes = outcome.delivered_bytes / 1e9
    return {"mb_s": outcome.delivered_bytes / 1e6 / outcome.elapsed,
            "cpu_s_per_gb": cpu / gigabytes, "cpu_s": cpu,
            "edge_cpu_s_per_gb": edge_cpu / gigabytes, "seconds": outcome.elapsed}


def run(quick: bool = False, repeat: int = 3, players: int = PLAYERS,
        edges: int = EDGES) -> List[Dict[str, Any]]:
    """Rows: delivered MB/s and the origin's CPU per GB, direct and through the edges."""
    reason = harness.Nginx.available()
    if reason:
        raise RuntimeError(f"topology needs nginx-rtmp edges: {reason}")
    media = harness.bench_media(quick)
    plan = loadgen.MediaPlan.from_flv(media, 1)
    results: Dict[int, List[Dict[str, float]]] = {0: [], edges: []}
    for run_index in range(repeat):
        for layout in (0, edges):  # interleaved: both see the same machine load
            figures = measure(plan, players, layout)
            results[layout].append(figures)
            logger.info("topology %d edge(s), %d players, run %d: %.1f MB/s, origin %.2f "
                        "CPU s/GB", layout, players, run_index + 1, figures["mb_s"],
                        figures["cpu_s_per_gb"])

    def series(layout: int, key: str) -> List[float]:
        return [r[key] for r in results[layout]]

    note = (f"{plan.media_bytes / 1e6:.0f} MB per player per run, {players} players; "
            f"one machine: origin, edges and load generator share its cores")
    via = f"1 -> ours -> {edges} nginx-rtmp edges -> {players} players"
    direct = f"{players} players on ours"
    return [
        harness.row("topology", f"{via}: MB/s delivered", "MB/s", series(edges, "mb_s"),
                    peer=series(0, "mb_s"), peer_name=direct, note=note),
        harness.row("topology", f"{via}: origin CPU s per delivered GB", "s/GB",
                    series(edges, "cpu_s_per_gb"), peer=series(0, "cpu_s_per_gb"),
                    peer_name=direct, target="ratio <= 0.5",
                    note=f"the origin serves {edges} pulls instead of {players} players"),
        harness.row("topology", f"{via}: the edges' CPU s per delivered GB (nginx, together)",
                    "s/GB", series(edges, "edge_cpu_s_per_gb")),
    ]


def main(argv: Optional[List[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO)
    for r in run(quick=True, repeat=1):
        print(r["name"], r["ours"], r.get("peer_name", ""), r.get("peer", ""))


if __name__ == "__main__":
    main()
