#!/usr/bin/env python3
"""Example RTMP client: connect, publish a stream, send media (the original description's example).

    python examples/rtmp_client.py -url rtmp://localhost:1935/live -stream mystream
    python examples/rtmp_client.py -url rtmp://localhost:1935/live -stream mystream -user u -pass p
    python examples/rtmp_client.py -url rtmp://localhost:1935/live -stream mystream -conn-timeout 60s

Without ``-file`` it publishes a synthetic stream (colour bars and a tone, see
publish_synthetic.py) for ``-duration``; with ``-file x.flv`` it publishes that file.
Each flag also has its ``--`` form.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys

import rtmp
from rtmp.client import publish_flv

import publish_synthetic


def duration(text: str) -> float:
    """Go-style durations: ``60s``, ``1m30s``, ``500ms``, or plain seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (use 30s, 1m, 500ms)")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description="Example RTMP client (publishes a stream).")
    parser.add_argument("-url", "--url", default="rtmp://localhost:1935/live",
                        help="server URL with the application, e.g. rtmp://localhost:1935/live")
    parser.add_argument("-stream", "--stream", default="mystream", help="stream name")
    parser.add_argument("-user", "--user", help="user name (authmod=adobe)")
    parser.add_argument("-pass", "--pass", dest="password", help="password")
    parser.add_argument("-conn-timeout", "--conn-timeout", type=duration, default=30.0,
                        help="connect timeout, e.g. 30s or 1m")
    parser.add_argument("-file", "--file", help="publish this FLV file instead")
    parser.add_argument("-duration", "--duration", type=duration, default=5.0,
                        help="seconds of synthetic media (default 5s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    config = rtmp.ClientConfig(connect_timeout=args.conn_timeout, stream_name=args.stream,
                               username=args.user, password=args.password)
    url = args.url.rstrip("/") + "/" + args.stream
    try:
        if args.file:
            stats = publish_flv(url, args.file, realtime=True, config=config)
            count = stats.messages
        else:
            count = publish_synthetic.publish(url, args.duration, config=config)
    except (rtmp.RTMPError, OSError) as exc:  # network failures and unreadable files alike
        print(f"rtmp_client: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the client closed the session on the way out
        print("rtmp_client: interrupted", file=sys.stderr)
        return 0
    print(f"published {count} messages to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
