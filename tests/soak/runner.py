"""One soak run: start our server, measure it, drive the load, stop, judge, report."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Set

from tests.bench.harness import OurServer, ServerProcess, machine_info
from tests.soak.load import KEEPING_UP, Ledger, Load, Profile, PublisherSession, Segment
from tests.soak.monitor import (ProcessSample, Rules, Sample, judge_growth, judge_return,
                                read_process, rules_for, send_queues, settled)

logger = logging.getLogger(__name__)

__all__ = ["SoakResult", "run_soak", "write_section"]

SECTION_BEGIN = "<!-- soak: written by python -m tests.soak -->"
SECTION_END = "<!-- soak: end -->"
#: Seconds the server gets to settle before the first reading (the start-up probe
#: connection of wait_port must be gone).
_SETTLE_START = 10.0
#: Seconds over which idle CPU is measured once every client left.
_IDLE_SECONDS = 3.0


@dataclass
class SoakResult:
    """Everything one run measured, and its verdict."""

    duration: float
    interval: float
    profile: Profile
    samples: List[Sample] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    publishers: Dict[str, List[PublisherSession]] = field(default_factory=dict)
    failures: List[str] = field(default_factory=list)
    idle_cpu_share: float = 0.0
    wall_seconds: float = 0.0
    server_log: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures


def _wait_steady(pid: int, limit: float) -> ProcessSample:
    """A reading once threads and descriptors held still for a second (within ``limit``)."""
    deadline = time.monotonic() + limit
    previous = read_process(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = read_process(pid)
        if (current.threads, current.fds) == (previous.threads, previous.fds):
            time.sleep(0.5)
            again = read_process(pid)
            if (again.threads, again.fds) == (current.threads, current.fds):
                return again
            current = again
        previous = current
    return previous


def _wait_back(pid: int, before: ProcessSample, rules: Rules) -> ProcessSample:
    """Poll until threads and descriptors are back to ``before`` (or the rules' settle
    time passed)."""
    deadline = time.monotonic() + rules.settle_seconds
    current = read_process(pid)
    while time.monotonic() < deadline:
        if settled(before, current, rules):
            break
        time.sleep(0.25)
        current = read_process(pid)
    return current


def run_soak(duration: float, interval: float, profile: Profile, rules: Rules = Rules(),
             emit: Callable[[str], None] = print,
             server_factory: Callable[[], ServerProcess] = OurServer) -> SoakResult:
    """Run the soak for ``duration`` seconds of load, a table row every ``interval`` s,
    against ``server_factory()`` (our ``python -m rtmp serve``)."""
    result = SoakResult(duration, interval, profile)
    rules = rules_for(rules, profile.stall_seconds[1], profile.streams * profile.stalled)
    started = time.monotonic()
    server = server_factory()
    server.start()
    try:
        _run(server, result, rules, emit)
    finally:
        result.server_log = server.log_tail()
        server.stop()
    result.wall_seconds = time.monotonic() - started
    if result.failures and result.server_log:
        logger.info("server log tail:\n%s", result.server_log)
    return result


def _sample(server: ServerProcess, t: float, phase: str, ledger: Ledger,
            previous: Optional[Sample]) -> Sample:
    process = read_process(server.pid)
    sample = Sample(t, phase, process, clients=sum(ledger.active.values()),
                    connections=sum(ledger.connections.values()), sent=ledger.frames_sent(),
                    delivered=ledger.frames_delivered(), lost=ledger.frames_lost(),
                    unread_kb=send_queues(server.port)[1] / 1024.0)
    if previous is not None and t > previous.t:
        sample.cpu_percent = 100.0 * (process.cpu_s - previous.process.cpu_s) / (t - previous.t)
    return sample


def _run(server: ServerProcess, result: SoakResult, rules: Rules, emit: Callable[[str], None]) -> None:
    pid = server.pid
    ledger = result.ledger
    before = _wait_steady(pid, _SETTLE_START)
    emit(TABLE_HEAD)
    first = Sample(0.0, "before", before)
    result.samples.append(first)
    emit(_row(first))
    load = Load("127.0.0.1", server.port, result.profile, ledger).start()
    result.publishers = load.publishers
    t0 = time.monotonic()
    previous = first
    stuck: List[str] = []
    try:
        for n in range(1, int(result.duration / result.interval) + 2):  # bounded by duration
            target = min(n * result.interval, result.duration)
            time.sleep(max(0.0, t0 + target - time.monotonic()))
            if not server.running():
                result.failures.append("the server process died during the load")
                return
            previous = _sample(server, time.monotonic() - t0, "load", ledger, previous)
            result.samples.append(previous)
            emit(_row(previous))
            if target >= result.duration:
                break
    finally:
        load.stop()
        stuck = load.join(timeout=60.0)
    if stuck:
        result.failures.append(f"client slots still running 60 s after the end: {stuck}")
    if not server.running():
        result.failures.append("the server process died")
        return
    after = _wait_back(pid, before, rules)
    cpu_start = read_process(pid).cpu_s
    time.sleep(_IDLE_SECONDS)
    result.idle_cpu_share = (read_process(pid).cpu_s - cpu_start) / _IDLE_SECONDS
    last = _sample(server, time.monotonic() - t0, "after", ledger, previous)
    last.process = ProcessSample(last.process.rss_mb, after.threads, after.fds,
                                 last.process.cpu_s)
    result.samples.append(last)
    emit(_row(last))
    result.failures += judge_growth(result.samples, rules)
    result.failures += judge_return(before, after, result.idle_cpu_share, rules)
    result.failures += ledger.frame_failures()
    if ledger.error_count:
        result.failures.append(f"{ledger.error_count} client error(s): "
                               + "; ".join(ledger.errors[:5]))
    checks = ledger.check()
    if not any(c.complete for c in checks):
        result.failures.append("no player saw a whole publication to its end: nothing "
                               "proved that a player that keeps up gets every frame")


# -- the report ---------------------------------------------------------------------------

TABLE_HEAD = ("| t (s) | phase | clients | connections | server RSS (MB) | threads | fds "
              "| CPU (s) | CPU (% of a core) | unread in the kernel (KB) | frames sent | delivered "
              "| lost |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def _row(s: Sample) -> str:
    cpu_pct = f"{s.cpu_percent:.0f}" if s.cpu_percent is not None else ""
    return (f"| {s.t:.0f} | {s.phase} | {s.clients} | {s.connections} | "
            f"{s.process.rss_mb:.1f} | {s.process.threads} | {s.process.fds} | "
            f"{s.process.cpu_s:.1f} | {cpu_pct} | {s.unread_kb:.0f} | {s.sent} | {s.delivered} | {s.lost} |")


def _span(values: List[int]) -> str:
    return f"{min(values)}-{max(values)}" if values else "-"


def player_table(result: SoakResult) -> str:
    """Per player: connections, publications seen whole or in part, frames sent in its
    windows (from its first keyframe to the publisher's last, or its own last), got, lost."""
    ledger = result.ledger
    checks = ledger.check()
    stalled = ledger.stalled()
    lines = ["| player | kind | publications whole / in part | joined mid-publication "
             "(GOP cache) / at its start | frames sent in its windows | delivered | lost |",
             "|---|---|---|---|---|---|---|"]
    names = sorted({s.player for s in ledger.segments} | _stalled_names(result))
    for name in names:
        mine = [c for c in checks if c.segment.player == name]
        kind = mine[0].segment.kind if mine else name.split("-", 1)[0]
        if kind not in KEEPING_UP:
            lines.append(_stalled_row(name, kind, [s for s in stalled if s.player == name]))
            continue
        whole = sum(c.complete for c in mine)
        mid = sum(c.segment.first > 0 for c in mine)
        lines.append(f"| {name} | {kind} | {whole} / {len(mine) - whole} | {mid} / "
                     f"{len(mine) - mid} | {sum(c.sent for c in mine)} | "
                     f"{sum(c.delivered for c in mine)} | {sum(c.lost for c in mine)} |")
    return "\n".join(lines)


def _stalled_row(name: str, kind: str, segments: List[Segment]) -> str:
    """A player that does not read: what it got when it resumed, and what the server
    dropped for it (allowed, in whole GOPs)."""
    got = [s for s in segments if s.first >= 0]
    window = sum(s.last - s.first + 1 for s in got)
    received = sum(s.received for s in got)
    broken = sum(s.broken for s in segments)
    return (f"| {name} | {kind} | - / {len(segments)} | - | {window} | {received} | "
            f"{window - received} dropped by the server (allowed: stalled), "
            f"{broken} broken GOPs |")


def _stalled_names(result: SoakResult) -> Set[str]:
    p = result.profile
    return {f"stalled-s{i}-{n}" for i in range(p.streams) for n in range(p.stalled)}


def publisher_table(result: SoakResult) -> str:
    lines = ["| publisher | publications (closed / dropped) | frames sent | "
             "most a frame left late (ms) |", "|---|---|---|---|"]
    for name, sessions in sorted(result.publishers.items()):
        dropped = sum(s.abrupt for s in sessions)
        lines.append(f"| {name} | {len(sessions) - dropped} / {dropped} | "
                     f"{sum(s.sent for s in sessions)} | "
                     f"{max((s.max_lag_ms for s in sessions), default=0):.0f} |")
    return "\n".join(lines)


def report(result: SoakResult, command: str, note: str = "") -> str:
    """The whole result as Markdown: over time, per player, per publisher, verdict;
    ``note`` follows the first line."""
    ledger = result.ledger
    rows = [TABLE_HEAD] + [_row(s) for s in result.samples]
    conns = ", ".join(f"{k} {v}" for k, v in sorted(ledger.connections.items()))
    verdict = "PASS" if result.passed else "FAIL:\n\n" + "\n".join(
        f"- {f}" for f in result.failures)
    return (
        f"Command: `{command}` ({result.duration:.0f} s of load, a row every "
        f"{result.interval:g} s; wall time {result.wall_seconds:.0f} s).  Load: "
        f"{result.profile.clients} client slots over {result.profile.streams} streams; "
        f"connections made: {conns}; stalled players the server had disconnected when "
        f"they resumed: {ledger.cut_by_server}.  Idle CPU after the load: "
        f"{result.idle_cpu_share:.1%} of a core.{' ' + note if note else ''}\n\n"
        + "\n".join(rows) + "\n\n" + player_table(result) + "\n\n" + publisher_table(result)
        + f"\n\nVerdict: {verdict}\n"
    )


RULES_TEXT = (
    "The server (`python -m rtmp serve`) is driven by publishers (one per stream, real-time "
    "25 fps video with a keyframe a second, and AAC-sized audio; every few publications one "
    "drops its connection instead of closing) and players that keep up (steady ones watch "
    "one or two publications to their end, leavers leave after a few seconds, reconnecters "
    "drop the connection and connect again), and players that never read.  A run fails "
    "when, after a warm-up (20 % of the run, at least the longest stall), the last third's "
    "RSS maximum exceeds the first third's by 10 % + 8 MB + 2 MB (what the server may queue for it) per "
    "player that never reads, or the last third's median of threads or descriptors the first third's by "
    "25 % + 6; when descriptors (exactly) and threads (give or take the server's idle "
    "accept threads) are not back to their value before the first client once all left; "
    "when the idle server uses over 5 % of a core; or when a player that keeps up misses "
    "a frame between the first keyframe it gets and the publisher's last (or its own last "
    "received, if it left first), or when a player that stalled gets, once it reads again, "
    "part of a GOP (an inter-frame right after a missing video frame).  *Frames sent* "
    "counts what the publishers sent, *delivered* what the players that keep up received "
    "(a frame reaches several players), *lost* the gaps they saw; *unread in the kernel* is "
    "what the server's sockets hold for their peers, mostly the players that never read "
    "(in the *after* row: sockets the server has closed whose last bytes the kernel still "
    "holds for a while)."
)


def write_section(path: Path, body: str) -> None:
    """Put ``body`` as the "Soak" section of ``path`` (refs/benchmarks.md), replacing the
    previous one; it goes below the benchmark runner's notes marker, which keeps it."""
    info = machine_info()
    machine = ", ".join(f"{k} {info[k]}" for k in ("date", "nproc", "cpu", "python",
                                                   "load average when written (1, 5, 15 min)"))
    section = (f"{SECTION_BEGIN}\n## Soak\n\nWritten by `python -m tests.soak` (`tox -e soak`);"
               f" machine: {machine}.\n\n{RULES_TEXT}\n\n{body}{SECTION_END}\n")
    text = path.read_text("utf-8") if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(re.escape(SECTION_BEGIN) + ".*?" + re.escape(SECTION_END) + "\n?",
                         re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, "utf-8")
