"""Benchmark: remote shared objects (RTMP 7.3.2 [de-facto]) on our server, beside the relay latency.

Two figures, each on a fresh ``python -m rtmp serve`` (:class:`tests.bench.harness.OurServer`):

* **change round trip** (p50, p99): two clients of this process use one object; A sets slot
  ``n`` to a new number and B reads until its copy shows it.  The time from A's ``set`` to
  B's ``data`` holding the value covers A's Request Change, the server's Success and Change,
  and B's decoding.  A reads its Success between rounds, outside the timed span.
* **changes per second** one object sustains with 10 users: 10 client processes use one
  object and each sets its own slot as fast as the server answers, 16 requests in flight
  (``set`` 16 times, then ``wait_synced``); every accepted change goes to the 9 other users
  as a Change.  The rate is the accepted changes (each answered with Success) of all users
  over the window.  Afterwards every user must hold every other user's last value
  (integrity: a lost or reordered Change fails the run).

nginx-rtmp and rtmplite3 have no shared objects (``rtmp probe``: SKIP "not supported"), so
these rows have no peer.  The media relay's publish-to-play latency (``bench_latency``) is
the figure to read them against: it runs just before, on the same machine.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import time
from typing import Any, Dict, List, Optional, Tuple

from rtmp import Client, ClientConfig
from tests.bench import harness, loadgen

logger = logging.getLogger(__name__)

USERS = 10
#: Requests each user keeps in flight in the throughput run.
WINDOW = 16
#: Round trips per run, and seconds of the throughput window.
ROUNDS, QUICK_ROUNDS = 300, 30
SECONDS, QUICK_SECONDS = 5.0, 1.0
OBJECT = "bench-counter"


def _client(url: str) -> Client:
    client = Client(ClientConfig(read_timeout=30.0))
    client.connect(url)
    return client


def round_trips(url: str, rounds: int) -> List[float]:
    """Milliseconds from A's ``set`` to B's copy showing the value, ``rounds`` times."""
    with _client(url) as first, _client(url) as second:
        a = first.shared_object(OBJECT).wait_synced(10)
        b = second.shared_object(OBJECT).wait_synced(10)
        delays = []
        for n in range(rounds):
            start = time.perf_counter()
            a.set("n", n)
            b.wait_until(lambda data, n=n: data.get("n") == n, 10)
            delays.append((time.perf_counter() - start) * 1000)
            a.wait_synced(10)  # A's Success, outside the timed span
        return delays


def _user(url: str, index: int, seconds: float, ready: Any, go: Any, out: Any,
          finals: Any) -> None:
    """One of the 10 users (its own process): set slot ``u<index>`` as fast as answered."""
    try:
        with _client(url) as client:
            so = client.shared_object(OBJECT).wait_synced(10)
            key = f"u{index}"
            ready.put(index)
            go.wait(30)
            end = time.monotonic() + seconds
            sent = 0
            while time.monotonic() < end:
                for _ in range(WINDOW):
                    so.set(key, sent)
                    sent += 1
                so.wait_synced(30)  # every request answered with Success
            out.put(("done", index, sent))
            expected: Dict[str, int] = finals.get(timeout=60)
            so.wait_until(lambda data: all(data.get(k) == v for k, v in expected.items()), 30)
            out.put(("synced", index, 0))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        out.put(("error", index, f"{type(exc).__name__}: {exc}"))


def changes_per_second(url: str, seconds: float, users: int = USERS) -> float:
    """Accepted changes per second on one object with ``users`` users each changing it."""
    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    finals = [ctx.Queue() for _ in range(users)]
    procs = [ctx.Process(target=_user, args=(url, i, seconds, ready, go, out, finals[i]),
                         name=f"so-user-{i}", daemon=True) for i in range(users)]
    for proc in procs:
        proc.start()
    try:
        for _ in range(users):
            ready.get(timeout=60)
        go.set()
        sent: Dict[int, int] = {}
        errors: List[str] = []
        while len(sent) + len(errors) < users:
            kind, index, value = out.get(timeout=seconds + 60)
            if kind == "done":
                sent[index] = int(value)
            elif kind == "error":
                errors.append(f"user {index}: {value}")
        if errors:
            raise RuntimeError("shared object run failed: " + "; ".join(errors[:3]))
        expected = {f"u{i}": count - 1 for i, count in sent.items()}
        for box in finals:
            box.put(expected)
        synced = 0
        while synced < users:
            kind, index, value = out.get(timeout=60)
            if kind == "error":
                raise RuntimeError(f"user {index} never saw every last value: {value}")
            synced += kind == "synced"
        return sum(sent.values()) / seconds
    except queue.Empty:
        raise RuntimeError("shared object run: a user did not answer in time") from None
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


def measure(rounds: int, seconds: float) -> Tuple[Dict[str, float], float]:
    with harness.OurServer() as server:
        url = f"rtmp://127.0.0.1:{server.port}/live"
        delays = round_trips(url, rounds)
        rate = changes_per_second(url, seconds)
        if not server.running():
            raise RuntimeError("our server died during the shared object run:\n"
                               + server.log_tail())
    figures = {"p50": loadgen.percentile(delays, 0.50), "p99": loadgen.percentile(delays, 0.99)}
    return figures, rate


def run(quick: bool = False, repeat: int = 3, rounds: Optional[int] = None,
        seconds: Optional[float] = None) -> List[Dict[str, Any]]:
    rounds = rounds or (QUICK_ROUNDS if quick else ROUNDS)
    seconds = seconds or (QUICK_SECONDS if quick else SECONDS)
    p50s, p99s, rates = [], [], []
    for run_index in range(repeat):
        figures, rate = measure(rounds, seconds)
        p50s.append(figures["p50"])
        p99s.append(figures["p99"])
        rates.append(rate)
        logger.info("shared object run %d: round trip p50 %.2f ms, p99 %.2f ms, %.0f changes/s",
                    run_index + 1, figures["p50"], figures["p99"], rate)
    return [
        harness.row("shared-object", "change round trip p50, 2 users", "ms", p50s,
                    note=f"A sets a slot, B's copy shows it; {rounds} changes per run; beside "
                         "the publish-to-play latency rows (no peer: nginx-rtmp and rtmplite3 "
                         "have no shared objects)"),
        harness.row("shared-object", "change round trip p99, 2 users", "ms", p99s),
        harness.row("shared-object", f"changes/s on one object, {USERS} users", "changes/s",
                    rates,
                    note=f"{USERS} client processes, {WINDOW} requests in flight each, "
                         f"{seconds:g} s; every change also goes to the 9 other users; every "
                         "user ends with every last value"),
    ]
