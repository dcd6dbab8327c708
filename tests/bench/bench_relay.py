"""Benchmark: live relay throughput (RTMP 7.2.2.6 publish to RTMP 7.2.2.1 players).

One publisher sends the ~90 MB H.264 + AAC FLV five times over, as fast as the slowest
player allows (see :mod:`tests.bench.loadgen` for why that is the lossless maximum);
1 and then 10 players receive it.  Measured per run and per server: MB/s of media
payload delivered to all players together, the server's CPU seconds per delivered GB
(``/proc/PID/stat``) and its peak RSS (``VmHWM``).  The three servers run in turn inside
each repetition, so every ratio compares runs made under the same machine load.

Issue 18's measure: at 10 players our server also relays the same stream signalled as
Enhanced RTMP HEVC (:func:`hevc_plan`: every video tag rewritten as an ExVideoTagHeader
``hvc1`` SequenceStart / CodedFrames(X) / SequenceEnd with the same frame type, composition
time, payload bytes and timing), in the same repetition as its H.264 run; the rows compare
the two.  The server does not decode either bitstream, so what differs is exactly its
handling of the extended header (classification, GOP cache, configuration per track).

Every player must get every payload byte intact (counted and hashed), or the benchmark
raises and the run fails.
"""

from __future__ import annotations

import logging
import statistics
from typing import Any, Dict, List, Optional, Tuple

from rtmp.ertmp import TrackData, VideoPacketType, build_video
from rtmp.message import MessageType
from tests.bench import harness, loadgen

logger = logging.getLogger(__name__)

#: How many times over the FLV is sent (rtmplite3 gets fewer passes: it is ~5x slower).
PASSES = 5
RTMPLITE_PASSES = 1
PLAYER_COUNTS = (1, 10)
#: The run of our server with the Enhanced RTMP HEVC stream, and its player count.
HEVC = "ours (HEVC)"
HEVC_PLAYERS = 10


#: FLV E.4.3.1 AVCPacketType -> ERTMP Enhanced Video VideoPacketType.
_HEVC_PACKET_TYPES = {0: VideoPacketType.SEQUENCE_START, 1: VideoPacketType.CODED_FRAMES,
                      2: VideoPacketType.SEQUENCE_END}


def _as_hevc(item: Tuple[int, int, bytes]) -> Tuple[int, int, bytes]:
    """One AVC video tag (FLV E.4.3.1) as an ERTMP ``hvc1`` one: same frame type, packet
    kind, composition time and codec payload; audio and other video pass unchanged."""
    kind, timestamp, data = item
    if kind != MessageType.VIDEO or len(data) < 5 or data[0] & 0x0F != 7:
        return item
    packet_type = _HEVC_PACKET_TYPES.get(data[1])
    if packet_type is None:
        return item
    cts = int.from_bytes(data[2:5], "big", signed=True)
    if packet_type == VideoPacketType.CODED_FRAMES and cts == 0:
        packet_type = VideoPacketType.CODED_FRAMES_X  # ERTMP: composition time 0 implied
    body = b"" if packet_type == VideoPacketType.SEQUENCE_END else data[5:]
    return kind, timestamp, build_video(data[0] >> 4, packet_type,
                                        [TrackData("hvc1", body, composition_time=cts)])


def hevc_plan(plan: loadgen.MediaPlan) -> loadgen.MediaPlan:
    """``plan`` signalled as Enhanced RTMP HEVC (see the module docstring)."""
    return loadgen.MediaPlan(plan.metadata, [_as_hevc(h) for h in plan.headers],
                             [_as_hevc(f) for f in plan.frames], plan.passes)


def measure(server_name: str, plan: loadgen.MediaPlan, players: int,
            timeout: float = 600.0) -> Dict[str, float]:
    """One run against a fresh server process: MB/s, CPU s/GB, peak RSS, load generator CPU."""
    server = harness.SERVERS[server_name]()
    with server, loadgen.quiet_handshake_warnings():
        cpu_before = server.cpu_seconds()
        outcome = loadgen.run_relay(loadgen.Endpoint("127.0.0.1", server.port), plan, players,
                                    timeout=timeout)
        cpu = server.cpu_seconds() - cpu_before
        rss = server.peak_rss_mb()
        failures = outcome.failures
        if failures:
            raise RuntimeError(
                f"relay through {server_name} with {players} player(s) lost integrity: "
                + "; ".join(failures[:5]) + f"\nserver log tail:\n{server.log_tail()}")
    gigabytes = outcome.delivered_bytes / 1e9
    return {
        "mb_s": outcome.delivered_bytes / 1e6 / outcome.elapsed,
        "cpu_s_per_gb": cpu / gigabytes,
        "cpu_s": cpu,
        "rss_mb": rss,
        "loadgen_cpu_s_per_gb": outcome.loadgen_cpu_seconds / gigabytes,
        "seconds": outcome.elapsed,
    }


def run(quick: bool = False, repeat: int = 3, passes: Optional[int] = None,
        servers: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """Rows for the table: relay MB/s at 1 and 10 players, CPU per GB, peak RSS."""
    media = harness.bench_media(quick)
    passes = passes or (1 if quick else PASSES)
    available = harness.available_servers()
    everyone = [n for n in harness.SERVERS if n not in harness.FLOORS]  # no media floors
    names = [n for n in (servers or everyone) if not available.get(n)]
    skipped = {n: available[n] for n in harness.SERVERS if available.get(n)}
    for name, reason in skipped.items():
        logger.warning("relay: %s skipped: %s", name, reason)
    plans = {
        name: loadgen.MediaPlan.from_flv(media, RTMPLITE_PASSES if name == "rtmplite3"
                                         and not quick else passes)
        for name in names
    }
    results: Dict[Tuple[str, int], List[Dict[str, float]]] = {}
    runs = {name: (name, plans[name]) for name in names}
    if "ours" in plans:
        runs[HEVC] = ("ours", hevc_plan(plans["ours"]))
    for players in PLAYER_COUNTS:
        for run_index in range(repeat):
            for name, (server_name, plan) in runs.items():  # interleaved: same machine load
                if name == HEVC and players != HEVC_PLAYERS:
                    continue
                figures = measure(server_name, plan, players)
                results.setdefault((name, players), []).append(figures)
                logger.info("relay %s %d players run %d: %.1f MB/s, %.2f CPU s/GB, %.1f MB RSS",
                            name, players, run_index + 1, figures["mb_s"],
                            figures["cpu_s_per_gb"], figures["rss_mb"])

    def series(name: str, players: int, key: str) -> Optional[List[float]]:
        runs = results.get((name, players))
        return [r[key] for r in runs] if runs else None

    size_mb = plans["ours"].media_bytes / 1e6
    note = f"{size_mb:.0f} MB per player per run"
    if "rtmplite3" in plans and plans["rtmplite3"].passes != plans["ours"].passes:
        note += (f" (rtmplite3: {plans['rtmplite3'].media_bytes / 1e6:.0f} MB, "
                 f"{plans['rtmplite3'].passes} pass)")
    rows: List[Dict[str, Any]] = []
    targets = {  # issue 21 (nginx-rtmp), issue 9 (rtmplite3)
        ("mb_s", 1, "nginx-rtmp"): "ratio >= 0.8",
        ("mb_s", 10, "nginx-rtmp"): "ratio >= 0.85",
        ("cpu_s_per_gb", 1, "nginx-rtmp"): "ratio <= 1.2",
        ("cpu_s_per_gb", 10, "nginx-rtmp"): "ratio <= 1.2",
        ("mb_s", 10, "rtmplite3"): "ratio >= 5",
    }
    metrics = (("mb_s", "relay, {p} player(s): MB/s delivered", "MB/s"),
               ("cpu_s_per_gb", "relay, {p} player(s): server CPU s per delivered GB", "s/GB"),
               ("rss_mb", "relay, {p} player(s): server peak RSS", "MB"))
    for players in PLAYER_COUNTS:
        for key, label, unit in metrics:
            ours = series("ours", players, key) or []
            peers = [p for p in ("nginx-rtmp", "rtmplite3") if (p, players) in results]
            for peer in peers or [""]:
                peer_values = series(peer, players, key) if peer else None
                rows.append(harness.row(
                    "relay", label.format(p=players), unit, ours, peer=peer_values,
                    peer_name=peer, target=targets.get((key, players, peer), ""),
                    note=note if key == "mb_s" else ""))
    # Issue 18: HEVC (E-RTMP hvc1) against H.264, both through ours, same repetitions.
    hevc_note = "the H.264 stream re-signalled as E-RTMP hvc1: same bytes and timing"
    for key, label, unit, target in (
            ("mb_s", "MB/s delivered", "MB/s", "ratio >= 0.9"),
            ("cpu_s_per_gb", "server CPU s per delivered GB", "s/GB", "ratio <= 1.1")):
        hevc = series(HEVC, HEVC_PLAYERS, key)
        h264 = series("ours", HEVC_PLAYERS, key)
        if hevc and h264:
            rows.append(harness.row(
                "relay", f"relay HEVC (E-RTMP), {HEVC_PLAYERS} players: {label}", unit, hevc,
                peer=h264, peer_name="ours, H.264", target=target, note=hevc_note))
    # The load generator is not the bottleneck: it drives nginx-rtmp faster than ours.
    for players in PLAYER_COUNTS:
        via_nginx = series("nginx-rtmp", players, "mb_s")
        via_ours = series("ours", players, "mb_s")
        if via_nginx and via_ours:
            rows.append(harness.row(
                "relay", f"load generator, {players} player(s): MB/s through nginx-rtmp",
                "MB/s", via_nginx, peer=via_ours, peer_name="through ours",
                target="ratio >= 1", direction="none",  # about the generator, not ours
                note="same generator; ratio > 1 shows it is not what limits our server"))
        lg = series("nginx-rtmp", players, "loadgen_cpu_s_per_gb")
        if lg:
            rows.append(harness.row(
                "relay", f"load generator, {players} player(s): its CPU s per GB (nginx run)",
                "s/GB", lg, direction="none"))
    return rows


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    for r in run(quick=True, repeat=1):
        print(r["name"], statistics.median(r["ours"]), r.get("peer_name", ""),
              statistics.median(r["peer"]) if r.get("peer") else "")


if __name__ == "__main__":
    main()
