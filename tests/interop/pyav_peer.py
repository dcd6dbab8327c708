"""An Enhanced RTMP peer: FFmpeg 8 through PyAV (``pip install av``), run as a child process.

Debian's ffmpeg 5.1 predates Enhanced RTMP; the PyAV wheel bundles libavformat 62 (FFmpeg 8),
whose FLV muxer writes the ExVideoTagHeader / ExAudioTagHeader for HEVC, AV1, VP9 and Opus and
whose RTMP client sends ``fourCcList`` at connect when asked (``rtmp_enhanced_codecs``).  It
runs in a process of its own because PyAV keeps the GIL while libavformat blocks on the network,
which would starve a server in the same process.

``python -m tests.interop.pyav_peer encode TARGET --video libx265 --audio aac --seconds 2``
encodes small synthetic frames (160x120, a keyframe every ``--gop`` frames) to an FLV file or
an ``rtmp://`` URL (paced in real time with ``--paced``).  ``... decode SOURCE`` reads a file
or plays a URL (``--fourcc-list`` sends fourCcList; ``--seek MS`` seeks first) and prints one
JSON line: the codecs, how many frames decoded, decode errors, the first video timestamp, and
whether the first video packet was a keyframe.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, List, Optional

import os

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only (read when the encoder starts)

import av  # noqa: E402

WIDTH, HEIGHT = 160, 120
#: Fast settings per encoder: the CI machine has two cores.
ENCODER_OPTIONS: Dict[str, Dict[str, str]] = {
    "libx265": {"preset": "ultrafast", "x265-params": "log-level=error"},
    "libx264": {"preset": "ultrafast", "tune": "zerolatency"},
    "libsvtav1": {"preset": "12", "svtav1-params": "lp=1"},
    "libaom-av1": {"cpu-used": "8", "usage": "realtime"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"},
}
AUDIO_RATES = {"libopus": 48000, "opus": 48000}


def _picture(index: int) -> av.VideoFrame:
    """A moving gradient (cheap to make, cheap to encode)."""
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    for plane_index, plane in enumerate(frame.planes):
        size = plane.buffer_size
        shift = (index * 4 + plane_index * 64) % 256
        row = bytes((x + shift) % 256 for x in range(256))
        plane.update((row * (size // 256 + 1))[:size])
    return frame


def encode(args: argparse.Namespace) -> int:
    target: str = args.target
    live = target.startswith("rtmp")
    out = av.open(target, mode="w", format="flv")
    video = out.add_stream(args.video, rate=args.fps)
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.codec_context.gop_size = args.gop
    video.options = dict(ENCODER_OPTIONS.get(args.video, {}))
    audio = None
    rate = AUDIO_RATES.get(args.audio, 44100)
    if args.audio:
        audio = out.add_stream(args.audio, rate=rate)
        audio.layout = "stereo"
    frames = int(args.seconds * args.fps)
    samples = 960 if rate == 48000 else 1024
    audio_pts = 0
    began = time.monotonic()
    for index in range(frames):
        if args.paced and live:
            delay = began + index / args.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        picture = _picture(index)
        picture.pts = index
        for packet in video.encode(picture):
            out.mux(packet)
        while audio is not None and audio_pts < (index + 1) * rate // args.fps:
            sound = av.AudioFrame(format="s16", layout="stereo", samples=samples)
            for plane in sound.planes:
                plane.update(bytes(plane.buffer_size))
            sound.sample_rate, sound.pts = rate, audio_pts
            audio_pts += samples
            for packet in audio.encode(sound):
                out.mux(packet)
    for packet in video.encode():
        out.mux(packet)
    if audio is not None:
        for packet in audio.encode():
            out.mux(packet)
    out.close()
    print(json.dumps({"frames": frames, "seconds": round(time.monotonic() - began, 3)}), flush=True)
    return 0


def decode(args: argparse.Namespace) -> int:
    options: Dict[str, str] = {}
    if args.fourcc_list:
        options["rtmp_enhanced_codecs"] = args.fourcc_list  # FFmpeg: fourCcList at connect
    if args.source.startswith("rtmp"):
        options["rtmp_live"] = "any"
    container = av.open(args.source, options=options, timeout=args.timeout)
    report: Dict[str, Any] = {"video_codec": None, "audio_codec": None, "video_frames": 0,
                              "audio_frames": 0, "errors": 0, "first_video_ms": None,
                              "first_video_key": None, "width": None, "height": None}
    if container.streams.video:
        report["video_codec"] = container.streams.video[0].codec_context.name
    if container.streams.audio:
        report["audio_codec"] = container.streams.audio[0].codec_context.name
    if args.seek is not None:
        # In AV_TIME_BASE units (microseconds); over RTMP, FFmpeg sends seek (RTMP 7.2.2.7).
        container.seek(int(args.seek * 1_000_000), any_frame=False)
    deadline = time.monotonic() + args.seconds
    packets = container.demux()
    while time.monotonic() < deadline and report["video_frames"] < args.frames:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except IndexError:
            # FFmpeg's FLV demuxer adds a data stream for a script tag that comes after the
            # start (over RTMP: onPlayStatus at the end of a recording), which PyAV's demux
            # cannot index: the end of what this peer can read.
            report["new_stream"] = True
            break
        kind = packet.stream.type
        if packet.size == 0 or kind not in ("video", "audio"):
            continue
        if kind == "video" and report["first_video_ms"] is None:
            report["first_video_ms"] = round(float(packet.pts * packet.time_base * 1000))
            report["first_video_key"] = bool(packet.is_keyframe)
        try:
            decoded = packet.decode()
        except av.error.FFmpegError:
            report["errors"] += 1
            continue
        for frame in decoded:
            if kind == "video":
                report["video_frames"] += 1
                report["width"], report["height"] = frame.width, frame.height
            else:
                report["audio_frames"] += 1
    container.close()
    print(json.dumps(report), flush=True)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="pyav_peer")
    commands = parser.add_subparsers(dest="command", required=True)
    enc = commands.add_parser("encode")
    enc.add_argument("target")
    enc.add_argument("--video", default="libx265")
    enc.add_argument("--audio", default="aac")
    enc.add_argument("--seconds", type=float, default=2.0)
    enc.add_argument("--fps", type=int, default=25)
    enc.add_argument("--gop", type=int, default=10)
    enc.add_argument("--paced", action="store_true")
    dec = commands.add_parser("decode")
    dec.add_argument("source")
    dec.add_argument("--fourcc-list", default="")
    dec.add_argument("--seek", type=float, default=None, help="seconds")
    dec.add_argument("--frames", type=int, default=10**9)
    dec.add_argument("--seconds", type=float, default=20.0, help="stop after this long")
    dec.add_argument("--timeout", type=float, default=10.0, help="network timeout")
    args = parser.parse_args(argv)
    return encode(args) if args.command == "encode" else decode(args)


if __name__ == "__main__":
    sys.exit(main())
