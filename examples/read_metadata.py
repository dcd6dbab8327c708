#!/usr/bin/env python3
"""Print a live stream's metadata (onMetaData) and its first audio and video tag headers.

    python examples/read_metadata.py rtmp://127.0.0.1/live/mystream
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict

import rtmp
from rtmp import commands, flv


def read_metadata(url: str, timeout: float = 10.0) -> Dict[str, Any]:
    """Play ``url`` until metadata and one audio and one video message have arrived."""
    found: Dict[str, Any] = {}
    with rtmp.Client(rtmp.ClientConfig(read_timeout=timeout)) as client:
        client.connect(url)
        client.play()
        for _ in range(1000):
            message = client.read_message(timeout=timeout)
            if message.type == rtmp.MessageType.DATA_AMF0 and "metadata" not in found:
                values = commands.strip_set_data_frame(commands.decode_data(message))
                if values and values[0] == "onMetaData":
                    found["metadata"] = dict(values[1]) if len(values) > 1 else {}
            elif message.type == rtmp.MessageType.AUDIO and "audio" not in found:
                found["audio"] = flv.describe_audio(message.data)
            elif message.type == rtmp.MessageType.VIDEO and "video" not in found:
                found["video"] = flv.describe_video(message.data)
            if len(found) == 3:
                break
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description="Print a stream's metadata.")
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    try:
        found = read_metadata(args.url, args.timeout)
    except rtmp.RTMPError as exc:
        print(f"read_metadata: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the session was closed on the way out
        print("read_metadata: interrupted", file=sys.stderr)
        return 0
    print(json.dumps(found, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
