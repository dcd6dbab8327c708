#!/usr/bin/env python3
"""Example RTMP server with logging callbacks (the original description's example).

    python examples/rtmp_server.py
    python examples/rtmp_server.py -addr :1935 -max-connections 100
    python examples/rtmp_server.py -require-auth -username admin -password secret

Each flag also has its ``--`` form. Ctrl-C (or SIGTERM) stops it gracefully.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

import rtmp

log = logging.getLogger("rtmp_server")


def on_connect(conn: rtmp.ServerConnection) -> None:
    log.info("client connected: %s from %s (app %r)", conn.id, conn.remote_addr, conn.app)


def on_disconnect(conn: rtmp.ServerConnection) -> None:
    log.info("client disconnected: %s", conn.id)


def on_publish(conn: rtmp.ServerConnection, stream_name: str,
               stream_type: rtmp.StreamType) -> None:
    log.info("stream published: %s (%s) by %s", stream_name, stream_type.value, conn.id)


def on_play(conn: rtmp.ServerConnection, stream_name: str) -> None:
    log.info("stream requested: %s by %s", stream_name, conn.id)


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description="Example RTMP server.")
    parser.add_argument("-addr", "--addr", default=":1935", help="listen address host:port")
    parser.add_argument("-max-connections", "--max-connections", type=int, default=1000)
    parser.add_argument("-require-auth", "--require-auth", action="store_true",
                        help="require authmod=adobe authentication from publishers")
    parser.add_argument("-require-auth-players", "--require-auth-players", action="store_true",
                        help="require it from players too")
    parser.add_argument("-username", "--username", help="user name for -require-auth")
    parser.add_argument("-password", "--password", help="password for -require-auth")
    parser.add_argument("-record-dir", "--record-dir", help="where recordings go")
    args = parser.parse_args(argv)
    require_auth = args.require_auth or args.require_auth_players
    if require_auth and not (args.username and args.password):
        parser.error("-require-auth needs -username and -password")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    server = rtmp.Server(rtmp.ServerConfig(
        addr=args.addr, max_connections=args.max_connections,
        require_auth=require_auth, require_auth_players=args.require_auth_players,
        username=args.username, password=args.password,
        record_dir=args.record_dir,
        on_connect=on_connect, on_disconnect=on_disconnect,
        on_publish=on_publish, on_play=on_play,
    ))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()  # logs "listening on HOST:PORT"
    while not stop.wait(0.5):
        pass
    server.stop()  # logs "server stopped"
    return 0


if __name__ == "__main__":
    sys.exit(main())
