#!/usr/bin/env python3
"""Publish a stream built entirely in Python: moving colour bars and a sine tone.

No encoder is needed: the video is FLV "Screen video" (codec 3: zlib-compressed
blocks of BGR pixels, FLV E.4.3.1) and the audio is 16-bit little-endian PCM
(sound format 3, FLV E.4.2.1); ffmpeg, ffplay and VLC decode both.

    python examples/publish_synthetic.py rtmp://127.0.0.1/live/synthetic --seconds 10
    ffplay rtmp://127.0.0.1/live/synthetic
"""

from __future__ import annotations

import argparse
import math
import struct
import sys
import time
import zlib
from typing import Iterator, List, Tuple

import rtmp

WIDTH, HEIGHT, BLOCK = 320, 240, 32
FPS = 10
SAMPLE_RATE = 44100
#: FLV E.4.2.1: SoundFormat 3 (PCM LE) | SoundRate 3 (44 kHz) | SoundSize 1 (16 bit) | mono.
AUDIO_HEADER = bytes([(3 << 4) | (3 << 2) | (1 << 1) | 0])
#: FLV E.4.3.1: FrameType 1 (keyframe) | CodecID 3 (Screen video).
VIDEO_KEYFRAME = bytes([(1 << 4) | 3])
COLOURS: List[Tuple[int, int, int]] = [  # BGR
    (255, 255, 255), (0, 255, 255), (255, 255, 0), (0, 255, 0),
    (255, 0, 255), (0, 0, 255), (255, 0, 0), (0, 0, 0),
]


def screen_video_frame(frame: int) -> bytes:
    """One Screen video keyframe: every block present, colour bars shifted by ``frame``."""
    header = struct.pack(">HH", ((BLOCK // 16 - 1) << 12) | WIDTH,
                         ((BLOCK // 16 - 1) << 12) | HEIGHT)
    blocks = []
    # Blocks go left to right, bottom row first; pixels in a block bottom-up, BGR.
    # Edge blocks are smaller when the image size is not a multiple of the block size.
    for top in range(0, HEIGHT, BLOCK):
        rows = min(BLOCK, HEIGHT - top)
        for col, left in enumerate(range(0, WIDTH, BLOCK)):
            columns = min(BLOCK, WIDTH - left)
            b, g, r = COLOURS[(col + frame) % len(COLOURS)]
            pixels = bytes((b, g, r)) * (columns * rows)
            packed = zlib.compress(pixels)
            blocks.append(struct.pack(">H", len(packed)) + packed)
    return VIDEO_KEYFRAME + header + b"".join(blocks)


def pcm_tone(start_sample: int, count: int, frequency: float = 440.0) -> bytes:
    """``count`` samples of a sine tone, 16-bit little-endian mono."""
    step = 2 * math.pi * frequency / SAMPLE_RATE
    samples = [int(8000 * math.sin(step * (start_sample + i))) for i in range(count)]
    return AUDIO_HEADER + struct.pack(f"<{count}h", *samples)


def synthetic_messages(seconds: float, stream_id: int) -> Iterator[rtmp.Message]:
    """Audio every 50 ms and video every 100 ms, in timestamp order."""
    total_ms = int(seconds * 1000)
    for ts in range(0, total_ms, 50):
        samples = SAMPLE_RATE * 50 // 1000
        yield rtmp.Message(type=rtmp.MessageType.AUDIO, data=pcm_tone(ts * SAMPLE_RATE // 1000,
                                                                     samples),
                           timestamp=ts, message_stream_id=stream_id)
        if ts % (1000 // FPS) == 0:
            yield rtmp.Message(type=rtmp.MessageType.VIDEO,
                               data=screen_video_frame(ts // (1000 // FPS)),
                               timestamp=ts, message_stream_id=stream_id)


def publish(url: str, seconds: float, realtime: bool = True,
            config: "rtmp.ClientConfig | None" = None) -> int:
    """Publish ``seconds`` of synthetic media to ``url``; returns the messages sent."""
    sent = 0
    with rtmp.Client(config) as client:
        client.connect(url)
        client.publish()
        assert client.stream_id is not None
        client.send_metadata({"width": WIDTH, "height": HEIGHT, "framerate": FPS,
                              "videocodecid": 3, "audiocodecid": 3,
                              "audiosamplerate": SAMPLE_RATE, "audiosamplesize": 16,
                              "stereo": False, "encoder": "rtmp examples/publish_synthetic.py"})
        start = time.monotonic()
        for message in synthetic_messages(seconds, client.stream_id):
            if realtime:
                delay = start + message.timestamp / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            client.write_message(message)
            sent += 1
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="rtmp://host[:port]/app/stream")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fast", action="store_true", help="do not pace in real time")
    args = parser.parse_args()
    try:
        count = publish(args.url, args.seconds, realtime=not args.fast)
    except rtmp.RTMPError as exc:
        print(f"publish_synthetic: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the session was closed on the way out
        print("publish_synthetic: interrupted", file=sys.stderr)
        return 0
    print(f"published {count} messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
