"""The soak's measurements of the server process, and the rules that judge them.

Every ``interval`` seconds :func:`read_process` reads the server's resident memory and
thread count (``/proc/PID/status``: ``VmRSS``, ``Threads``), its open descriptors (the
entries of ``/proc/PID/fd``) and its CPU seconds (``/proc/PID/stat`` fields 14 and 15,
utime + stime).  :class:`Rules` says when a run fails:

* **Growth during the load.**  The first ``warmup`` fraction of the load, and at least
  ``warmup_seconds``, is left out (the allocator, the first connections and thread stacks
  settle; :func:`rules_for` makes it at least the longest stall of the load, by when a
  player that does not read has filled its queue).  The rest is cut in thirds;
  the last third is compared with the first: RSS by its maximum (the last third's max may
  exceed the first third's by ``rss_tolerance`` plus ``rss_slack_mb``, to which
  :func:`rules_for` adds the queue budget of every player that does not read: whether
  their queues are full or empty at the moment of a sample is chance), threads and
  descriptors by their median (by ``count_tolerance`` plus ``count_slack``; the number of
  clients connected at one moment varies, the median smooths that).  A leak of a thread,
  a descriptor or a buffer per connection grows with the connections made, so it shows in
  the last third; a bounded load does not.
* **Back to the start.**  After every client left, descriptors must return to their value
  before the first client within ``settle_seconds``, exactly, and threads too, give or take
  the server's pool of idle accept threads: it keeps up to
  :data:`rtmp.server.MAX_SPARE_THREADS` of them (one before the first client) for the
  next clients, so up to ``spare_threads`` more than before are no leak.
* **Idle.**  With no client the server must use at most ``idle_cpu`` of a core (a thread
  left spinning shows here).
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

from rtmp.server import MAX_SPARE_THREADS

__all__ = ["ProcessSample", "Rules", "Sample", "judge_growth", "judge_return", "read_process", "rules_for",
           "send_queues",
           "settled"]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class ProcessSample:
    """One reading of the server process."""

    rss_mb: float
    threads: int
    fds: int
    cpu_s: float


def read_process(pid: int) -> ProcessSample:
    """RSS (MB), threads, open descriptors and CPU seconds of ``pid``, from ``/proc``."""
    rss_kb = 0
    threads = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return ProcessSample(rss_kb / 1024.0, threads, fds, cpu)


def send_queues(port: int) -> Tuple[int, int]:
    """``(largest, total)`` bytes waiting in the kernel's send queues of the sockets whose
    local port is ``port`` (the server's side of every connection; ``/proc/net/tcp``
    ``tx_queue``): what the players that do not read have left unread."""
    largest = total = 0
    local = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines, None)
                for line in lines:
                    fields = line.split()
                    if len(fields) > 4 and fields[1].endswith(local):
                        queued = int(fields[4].split(":")[0], 16)
                        largest = max(largest, queued)
                        total += queued
        except OSError:
            continue
    return largest, total


@dataclass
class Sample:
    """One row of the table: the server and the load at ``t`` seconds into the load."""

    t: float
    phase: str
    """``before`` (no client yet), ``load``, or ``after`` (every client left)."""
    process: ProcessSample
    clients: int = 0
    connections: int = 0
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    unread_kb: float = 0.0
    """Bytes the server's kernel holds for its peers (mostly the players that never read)."""
    cpu_percent: Optional[float] = None
    """CPU used since the previous row, in percent of one core."""


@dataclass
class Rules:
    """When a soak fails (see the module docstring)."""

    warmup: float = 0.2
    warmup_seconds: float = 0.0
    rss_tolerance: float = 0.10
    rss_slack_mb: float = 8.0
    count_tolerance: float = 0.25
    count_slack: int = 6
    settle_seconds: float = 20.0
    spare_threads: int = MAX_SPARE_THREADS - 1
    idle_cpu: float = 0.05
    min_samples: int = 6


def _thirds(samples: Sequence[Sample], rules: Rules) -> Optional[Tuple[List[Sample], List[Sample]]]:
    load = [s for s in samples if s.phase == "load"]
    if not load:
        return None
    end = load[-1].t
    judged = [s for s in load if s.t >= max(rules.warmup * end, rules.warmup_seconds)]
    if len(judged) < rules.min_samples:
        return None
    third = len(judged) // 3
    return judged[:third], judged[-third:]


#: What the server may keep for a player that does not read (issue 21): rtmp.streams drops
#: its media once its oldest queued item waited ``max_queue_delay`` (2 s) and skips to the
#: next keyframe, so its queue holds at most that and a GOP (1 s) of the soak's stream
#: (2 Mbit/s at most, tests/soak/load.py): 0.75 MB; with the batch its writer holds in a
#: blocked send (256 KiB) and the queue's own overhead, within 2 MiB -- the live players'
#: former byte budget, no longer the queue's cap (``max_queue_bytes`` is 32 MiB now).
STALLED_QUEUE_BYTES = 2 * 1024 * 1024


def rules_for(rules: Rules, longest_stall: float, stalled_players: int) -> Rules:
    """``rules`` for a load whose players that do not read stall up to ``longest_stall``
    seconds, ``stalled_players`` of them at once (see the module docstring)."""
    budget_mb = stalled_players * STALLED_QUEUE_BYTES / (1024 * 1024)
    return replace(rules, warmup_seconds=max(rules.warmup_seconds, longest_stall),
                   rss_slack_mb=rules.rss_slack_mb + budget_mb)


def judge_growth(samples: Sequence[Sample], rules: Rules = Rules()) -> List[str]:
    """Failures of RSS, threads or descriptors growing during the load (empty: none)."""
    thirds = _thirds(samples, rules)
    if thirds is None:
        return [f"too few samples after the warm-up to judge growth (need {rules.min_samples}:"
                " a longer --duration or a shorter --interval)"]
    first, last = thirds
    failures = []
    rss_first = max(s.process.rss_mb for s in first)
    rss_last = max(s.process.rss_mb for s in last)
    rss_limit = rss_first * (1 + rules.rss_tolerance) + rules.rss_slack_mb
    if rss_last > rss_limit:
        failures.append(f"RSS grew: max {rss_first:.1f} MB in the first third after the "
                        f"warm-up, {rss_last:.1f} MB in the last (limit {rss_limit:.1f} MB)")
    for name in ("threads", "fds"):
        a = statistics.median(getattr(s.process, name) for s in first)
        b = statistics.median(getattr(s.process, name) for s in last)
        limit = a * (1 + rules.count_tolerance) + rules.count_slack
        if b > limit:
            what = "threads" if name == "threads" else "open descriptors"
            failures.append(f"{what} grew: median {a:g} in the first third after the "
                            f"warm-up, {b:g} in the last (limit {limit:g})")
    return failures


def settled(before: ProcessSample, now: ProcessSample, rules: Rules = Rules()) -> bool:
    """Whether threads and descriptors are back where :func:`judge_return` wants them."""
    return (now.fds == before.fds
            and before.threads <= now.threads <= before.threads + rules.spare_threads)


def judge_return(before: ProcessSample, after: ProcessSample, idle_cpu_share: float,
                 rules: Rules = Rules()) -> List[str]:
    """Failures of threads or descriptors not back to ``before`` once every client left,
    or of CPU use while idle (``idle_cpu_share``: CPU seconds per second)."""
    failures = []
    if not before.threads <= after.threads <= before.threads + rules.spare_threads:
        failures.append(f"threads did not return to their value before the first client: "
                        f"{before.threads} before, {after.threads} {rules.settle_seconds:g} s "
                        f"after every client left (allowed: up to {rules.spare_threads} idle "
                        "accept threads more)")
    if after.fds != before.fds:
        failures.append(f"open descriptors did not return to their value before the first "
                        f"client: {before.fds} before, {after.fds} after every client left")
    if idle_cpu_share > rules.idle_cpu:
        failures.append(f"the idle server used {idle_cpu_share:.1%} of a core with no client "
                        f"(limit {rules.idle_cpu:.0%})")
    return failures
