"""Sample media for tests and benchmarks: H.264 + AAC FLV files generated with ffmpeg.

Files are produced from lavfi sources (``testsrc2`` video, ``sine`` audio) and cached under
``tests/.cache/``, keyed by every parameter, so a test session generates each variant once.
Generation writes to a temp name and renames, so concurrent test processes never see a
half-written file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from tests.conftest import require_peer
from tests.peers import run

logger = logging.getLogger(__name__)

__all__ = ["CACHE_DIR", "bench_flv", "ffmpeg_flv_command", "sample_flv"]

#: Where generated media is kept between runs (ignored by git).
CACHE_DIR = Path(__file__).resolve().parent / ".cache"


def ffmpeg_flv_command(
    output: Path,
    seconds: float = 4,
    fps: int = 25,
    width: int = 320,
    height: int = 240,
    keyframe_interval: float = 1.0,
    audio: bool = True,
    video: bool = True,
    video_bitrate: str | None = None,
    audio_rate: int = 44100,
    noise: int = 0,
    preset: str = "ultrafast",
) -> list[str]:
    """The ffmpeg command line that generates one sample FLV (for reading and for logs).

    ``noise`` (0-100) adds temporal noise to the video, so the encoder cannot predict frames
    from each other: use it to make benchmark streams with realistic, large P-frames.
    """
    if not (audio or video):
        raise ValueError("a sample needs audio, video or both")
    ffmpeg = require_peer("ffmpeg")
    cmd: list[str] = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    if video:
        cmd += ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={audio_rate}"]
    cmd += ["-t", f"{seconds:g}"]
    if video:
        if noise:
            cmd += ["-vf", f"noise=alls={int(noise)}:allf=t+u"]
        gop = max(1, round(fps * keyframe_interval))
        cmd += ["-c:v", "libx264", "-preset", preset, "-tune", "zerolatency", "-pix_fmt", "yuv420p"]
        cmd += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-bf", "0"]
        if video_bitrate:
            cmd += ["-b:v", video_bitrate, "-maxrate", video_bitrate, "-bufsize", video_bitrate]
    if audio:
        cmd += ["-c:a", "aac", "-b:a", "64k", "-ar", str(audio_rate), "-ac", "1"]
    cmd += ["-f", "flv", str(output)]
    return cmd


def sample_flv(
    seconds: float = 4,
    fps: int = 25,
    width: int = 320,
    height: int = 240,
    keyframe_interval: float = 1.0,
    audio: bool = True,
    video: bool = True,
    video_bitrate: str | None = None,
    audio_rate: int = 44100,
    noise: int = 0,
    preset: str = "ultrafast",
    timeout: float = 300.0,
) -> Path:
    """The path of a cached H.264/AAC FLV with these parameters, generating it if needed.

    Defaults: 4 s of 320x240 ``testsrc2`` at 25 fps with a keyframe every second, and a 440 Hz
    mono AAC sine at 44.1 kHz.  Skips the test (fails in CI) when ffmpeg is missing.
    """
    key_text = repr(
        (seconds, fps, width, height, keyframe_interval, audio, video, video_bitrate,
         audio_rate, noise, preset, 1)  # the trailing 1 is the recipe version
    )  # fmt: skip
    digest = hashlib.sha256(key_text.encode()).hexdigest()[:12]
    kinds = ("v" if video else "") + ("a" if audio else "")
    name = f"sample-{kinds}-{width}x{height}-{fps}fps-{seconds:g}s-{digest}.flv"
    path = CACHE_DIR / name
    if path.exists() and path.stat().st_size > 13:
        return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".flv", dir=CACHE_DIR)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        cmd = ffmpeg_flv_command(
            tmp, seconds, fps, width, height, keyframe_interval, audio, video,
            video_bitrate, audio_rate, noise, preset,
        )  # fmt: skip
        completed = run(cmd, timeout=timeout)
        if completed.returncode != 0 or tmp.stat().st_size <= 13:
            raise RuntimeError(
                "ffmpeg could not generate the sample: "
                + completed.stderr.decode("utf-8", "replace")[-2000:]
            )
        os.replace(tmp, path)  # atomic: concurrent runs see the old file or the whole new one
    finally:
        if tmp.exists():
            tmp.unlink()
    logger.info("generated %s (%d bytes)", path, path.stat().st_size)
    return path


def bench_flv(
    seconds: float = 30,
    fps: int = 30,
    width: int = 1280,
    height: int = 720,
    video_bitrate: str = "4M",
    noise: int = 20,
    keyframe_interval: float = 2.0,
) -> Path:
    """A bigger FLV for benchmarks: 720p at a fixed bitrate, noisy so every frame is large."""
    return sample_flv(
        seconds=seconds,
        fps=fps,
        width=width,
        height=height,
        keyframe_interval=keyframe_interval,
        video_bitrate=video_bitrate,
        noise=noise,
        audio_rate=48000,
        timeout=900.0,
    )
