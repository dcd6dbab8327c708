#!/usr/bin/env python3
"""A server with custom callbacks: a stream-key check and a custom command.

    python examples/custom_server.py --addr 127.0.0.1:1935 --keys secret1,secret2

Publishing to ``rtmp://host/live/secret1`` works; any other key is refused with
``NetStream.Publish.BadName``. A client calling ``serverTime`` (``client.call("serverTime")``)
gets the server's clock back through ``on_message``.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from typing import Set

import rtmp
from rtmp import commands


def make_server(addr: str, keys: Set[str]) -> rtmp.Server:
    def on_publish(conn: rtmp.ServerConnection, stream_name: str,
                   stream_type: rtmp.StreamType) -> None:
        if stream_name.split("?")[0] not in keys:
            raise PermissionError(f"stream key {stream_name!r} is not allowed")

    def on_message(conn: rtmp.ServerConnection, msg: rtmp.Message) -> None:
        if msg.type not in (rtmp.MessageType.COMMAND_AMF0, rtmp.MessageType.COMMAND_AMF3):
            return
        command = commands.decode_command(msg)
        if command.name == "serverTime":  # RTMP 7.2.1.2: a call with a transaction id
            conn.write_message(commands.result(command.transaction_id, None, time.time()))
        else:
            raise ValueError(f"unknown command {command.name!r}")  # answered with _error

    return rtmp.Server(rtmp.ServerConfig(addr=addr, on_publish=on_publish,
                                         on_message=on_message))


def main() -> None:
    parser = argparse.ArgumentParser(description="RTMP server with a key check and a command.")
    parser.add_argument("--addr", default=":1935")
    parser.add_argument("--keys", default="secret", help="comma-separated stream keys")
    args = parser.parse_args()
    server = make_server(args.addr, set(args.keys.split(",")))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    print(f"listening on {server.address[0]}:{server.address[1]}", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()


if __name__ == "__main__":
    main()
