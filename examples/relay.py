#!/usr/bin/env python3
"""Relay one server's stream to another: play from SOURCE, publish to TARGET.

    python examples/relay.py rtmp://origin/live/cam1 rtmp://edge/live/cam1 --seconds 60

Metadata, audio and video are copied message by message; timestamps are kept.  A server
that restreams every live stream it receives is built in: ``rtmp serve --push URL``
(``ServerConfig(push=[...])``, see the README, "Growing past one machine").
"""

from __future__ import annotations

import argparse
import sys
import time

import rtmp
from rtmp import commands


def relay(source: str, target: str, seconds: float = 0.0) -> int:
    """Copy media from ``source`` to ``target``; stops when the source ends (or after seconds)."""
    copied = 0
    deadline = time.monotonic() + seconds if seconds else None
    with rtmp.Client() as player, rtmp.Client() as publisher:
        player.connect(source)
        player.play()
        publisher.connect(target)
        publisher.publish()
        stream_id = publisher.stream_id
        try:
            # messages() ends when the source stream ends (Stream EOF, Play.Stop,
            # UnpublishNotify: rtmp.StreamEnded); a silent source times out.
            for message in player.messages(timeout=10):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if message.type in (rtmp.MessageType.AUDIO, rtmp.MessageType.VIDEO):
                    publisher.write_message(message.replace(message_stream_id=stream_id,
                                                            chunk_stream_id=None))
                    copied += 1
                elif message.type == rtmp.MessageType.DATA_AMF0:
                    values = commands.strip_set_data_frame(commands.decode_data(message))
                    if values and values[0] == "onMetaData" and len(values) > 1:
                        publisher.send_metadata(dict(values[1]))
        except (rtmp.TimeoutError, rtmp.ConnectionClosedError):
            pass
    return copied


def main() -> int:
    parser = argparse.ArgumentParser(description="Relay a stream from one server to another.")
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long")
    args = parser.parse_args()
    try:
        count = relay(args.source, args.target, args.seconds)
    except rtmp.RTMPError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: both sessions were closed on the way out
        print("relay: interrupted", file=sys.stderr)
        return 0
    print(f"relayed {count} media messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
