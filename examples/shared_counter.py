#!/usr/bin/env python3
"""Two clients share a counter and a chat through a remote shared object (RTMP 7.3.2).

    python examples/shared_counter.py                       # starts its own server
    python examples/shared_counter.py --url rtmp://127.0.0.1/app --rounds 5

Alice and Bob use the shared object ``counter`` of the application.  They take turns:
each waits until the count is the one it expects, then sets it one higher (Request Change;
the server answers Success to the writer and Change to the other).  Each also says hello
with ``send`` (SendMessage reaches every user, the sender too).  The last line is the
final count, ``2 * rounds``.  ``--persistent`` asks for an object the server keeps
(``rtmp serve --shared-objects-dir DIR``); the count then goes on from the stored value.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any, List, Optional, Tuple

import rtmp

#: Seconds to wait for the other user (a bound for a stuck peer, not a pace: every wait
#: ends as soon as the value it waits for arrives).
WAIT = 60.0


def take_turns(url: str, name: str, first: bool, rounds: int, persistent: bool,
               ready: threading.Barrier, log: List[str]) -> None:
    """One user: ``rounds`` increments, alternating with the other user."""
    with rtmp.Client() as client:
        client.connect(url)

        def heard(handler: str, args: Tuple[Any, ...]) -> None:
            log.append(f"{name} heard {handler}{args}")

        counter = client.shared_object("counter", persistent, on_message=heard)
        counter.wait_synced(timeout=WAIT)
        ready.wait(WAIT)  # both see the same starting value
        start = int(counter.data.get("count", 0))
        counter.send("chat", f"hello from {name}")
        for turn in range(rounds):
            mine = start + 2 * turn + (0 if first else 1)  # the value it waits for
            counter.wait_until(lambda data, mine=mine: int(data.get("count", 0)) == mine,
                               timeout=WAIT)
            # logged before the change is sent: once it is, the other user may go on
            log.append(f"{name}: count {mine} -> {mine + 1}")
            counter.set("count", mine + 1)
        # wait for the final value (the other user's last change; its hello came before
        # its first change: the server sends one user's events in order)
        counter.wait_until(lambda data: int(data.get("count", 0)) == start + 2 * rounds,
                           timeout=WAIT)
        log.append(f"{name} sees count = {int(counter.data['count'])} (version {counter.version})")


def run(url: str, rounds: int, persistent: bool) -> int:
    ready = threading.Barrier(2)
    log: List[str] = []
    errors: List[BaseException] = []

    def user(name: str, first: bool) -> None:
        try:
            take_turns(url, name, first, rounds, persistent, ready, log)
        except BaseException as exc:  # reported below
            errors.append(exc)
            ready.abort()

    threads = [threading.Thread(target=user, args=("alice", True)),
               threading.Thread(target=user, args=("bob", False))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for line in log:
        print(line)
    if errors:
        print(f"shared_counter: {errors[0]}", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an RTMP application URL (default: start a local server)")
    parser.add_argument("--rounds", type=int, default=3, help="increments per user (default 3)")
    parser.add_argument("--persistent", action="store_true",
                        help="a persistent object (the server needs --shared-objects-dir)")
    args = parser.parse_args(argv)
    if args.url:
        return run(args.url, args.rounds, args.persistent)
    with rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0")) as server:
        host, port = server.address
        return run(f"rtmp://{host}:{port}/app", args.rounds, args.persistent)


if __name__ == "__main__":
    sys.exit(main())
