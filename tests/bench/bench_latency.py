"""Benchmark: publish-to-play latency per message (RTMP 7.2.2.6 to RTMP 7.2.2.1), 10 players.

The publisher sends the FLV at its real frame rate (each message when its timestamp is
due) and notes ``time.monotonic()`` after each ``sendall``; each of 10 player processes
notes the same clock when the read that completed a message returned.  The delay of
every audio and video message at every player gives p50 and p99 per run.  All payloads
are also counted and hashed, as in the relay benchmark.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

from tests.bench import harness, loadgen

logger = logging.getLogger(__name__)

PLAYERS = 10
#: Seconds of media per run (the start of the benchmark FLV).
SECONDS = 10.0


def measure(server_name: str, plan: loadgen.MediaPlan, players: int) -> Dict[str, float]:
    server = harness.SERVERS[server_name]()
    with server, loadgen.quiet_handshake_warnings():
        outcome = loadgen.run_relay(loadgen.Endpoint("127.0.0.1", server.port), plan, players,
                                    realtime=True, timeout=120.0)
        if outcome.failures:
            raise RuntimeError(f"latency run through {server_name} lost integrity: "
                               + "; ".join(outcome.failures[:5]))
    delays = outcome.latencies_ms()
    return {"p50": loadgen.percentile(delays, 0.50), "p99": loadgen.percentile(delays, 0.99),
            "max": max(delays)}


def run(quick: bool = False, repeat: int = 3, seconds: Optional[float] = None,
        servers: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    seconds = seconds or (2.0 if quick else SECONDS)
    media = harness.bench_media(quick)
    plan = loadgen.MediaPlan.from_flv(media).truncated(seconds)
    available = harness.available_servers()
    everyone = [n for n in harness.SERVERS if n not in harness.FLOORS]  # no media floors
    names = [n for n in (servers or everyone) if not available.get(n)]
    results: Dict[str, List[Dict[str, float]]] = {name: [] for name in names}
    for run_index in range(repeat):
        for name in names:
            figures = measure(name, plan, PLAYERS)
            results[name].append(figures)
            logger.info("latency %s run %d: p50 %.2f ms, p99 %.2f ms", name, run_index + 1,
                        figures["p50"], figures["p99"])
    rows = []
    note = (f"the first {seconds:g} s of {media.name} sent at its frame rate, "
            f"{PLAYERS} players, every message at every player")
    for key, target in (("p50", ""), ("p99", "< 10")):  # issue 21: p99 under 10 ms
        ours = [r[key] for r in results["ours"]]
        peers = [p for p in ("nginx-rtmp", "rtmplite3") if p in results]
        for index, peer in enumerate(peers or [""]):
            rows.append(harness.row(
                "latency", f"publish-to-play {key}, {PLAYERS} players", "ms", ours,
                peer=[r[key] for r in results[peer]] if peer else None, peer_name=peer,
                target=target if index == 0 else "", note=note if key == "p50" else ""))
    return rows
