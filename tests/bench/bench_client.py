"""Benchmark: our client against ffmpeg and rtmpdump, with nginx-rtmp as the server.

* Publishing (RTMP 7.2.2.6): the benchmark FLV sent as fast as possible to a fresh
  nginx-rtmp, by ``python -m rtmp publish FILE URL --fast`` and by
  ``ffmpeg -i FILE -c copy -f flv URL`` (no ``-re``).
* Playing (RTMP 7.2.2.1): the same file played back from nginx-rtmp's VOD application
  (``play DIR``) into an FLV file, by our client (:func:`rtmp.client.play_to_flv`), by
  ``ffmpeg -i URL -c copy -f flv`` and by ``rtmpdump -r URL -o``.  Every player announces
  a 10-hour buffer (RTMP 7.1.7 Set Buffer Length; rtmpdump's default), so nginx-rtmp sends
  as fast as the player reads instead of pacing to the clock.

Figures are MB/s of the FLV file over the wall time of the whole program (start-up
included, for all of them alike).  A player whose output is not the whole file (at
least 99% of its bytes) fails the benchmark.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

from tests.bench import harness

logger = logging.getLogger(__name__)

#: RTMP 7.1.7 Set Buffer Length announced by every player: 10 hours, as rtmpdump does.
BUFFER_MS = 36_000_000

_OUR_PLAYER = (
    "import sys, rtmp\n"
    "from rtmp.client import ClientConfig, play_to_flv\n"
    "play_to_flv(sys.argv[1], sys.argv[2], config=ClientConfig(buffer_length=int(sys.argv[3])))\n"
)


def _timed(cmd: Sequence[str], timeout: float = 300.0) -> float:
    """Run ``cmd`` and return its wall time; raise with its stderr if it failed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(harness.REPO) + (os.pathsep + env["PYTHONPATH"]
                                            if env.get("PYTHONPATH") else "")
    start = time.monotonic()
    done = subprocess.run(list(cmd), capture_output=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - start
    # rtmpdump exits with 2 ("incomplete, resume may get the rest") at the end of some
    # VOD streams even when every byte arrived; the output size is checked instead.
    if done.returncode not in (0, 2) or (done.returncode == 2 and "rtmpdump" not in cmd[0]):
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): "
                           + done.stderr.decode("utf-8", "replace")[-1500:])
    return elapsed


def publish_rates(media: Path, repeat: int) -> Dict[str, List[float]]:
    size_mb = media.stat().st_size / 1e6
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    rates: Dict[str, List[float]] = {"ours": [], "ffmpeg": []}
    for index in range(repeat):
        for name in rates:
            with harness.Nginx() as nginx:
                url = f"rtmp://127.0.0.1:{nginx.port}/live/pub{index}{name}"
                if name == "ours":
                    cmd = [sys.executable, "-m", "rtmp", "publish", str(media), url, "--fast"]
                else:
                    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
                           "-i", str(media), "-c", "copy", "-f", "flv", url]
                rates[name].append(size_mb / _timed(cmd))
            logger.info("client publish %s run %d: %.1f MB/s", name, index + 1, rates[name][-1])
    return rates


def play_rates(media: Path, repeat: int) -> Dict[str, List[float]]:
    size = media.stat().st_size
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    rtmpdump = shutil.which("rtmpdump")
    rates: Dict[str, List[float]] = {"ours": [], "ffmpeg": []}
    if rtmpdump:
        rates["rtmpdump"] = []
    with tempfile.TemporaryDirectory(prefix="rtmp-bench-vod-") as tmp:
        vod = Path(tmp) / "vod"
        vod.mkdir()
        os.symlink(media, vod / "bench.flv")
        server_config = f"application vod {{ play {vod}; }}"
        for index in range(repeat):
            for name in rates:
                out = Path(tmp) / f"{name}.flv"
                with harness.Nginx(server_config=server_config) as nginx:
                    url = f"rtmp://127.0.0.1:{nginx.port}/vod/bench.flv"
                    if name == "ours":
                        cmd = [sys.executable, "-c", _OUR_PLAYER, url, str(out), str(BUFFER_MS)]
                    elif name == "ffmpeg":
                        cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
                               "-rtmp_buffer", str(BUFFER_MS), "-i", url, "-c", "copy",
                               "-f", "flv", "-y", str(out)]
                    else:
                        assert rtmpdump is not None
                        cmd = [rtmpdump, "-q", "-b", str(BUFFER_MS), "-r", url, "-o", str(out)]
                    elapsed = _timed(cmd)
                got = out.stat().st_size if out.exists() else 0
                if got < 0.99 * size:
                    raise RuntimeError(f"{name} played {got} of {size} bytes from nginx-rtmp")
                out.unlink()
                rates[name].append(size / 1e6 / elapsed)
                logger.info("client play %s run %d: %.1f MB/s", name, index + 1, rates[name][-1])
    return rates


def run(quick: bool = False, repeat: int = 3) -> List[Dict[str, Any]]:
    reason = harness.Nginx.available()
    if reason:
        logger.warning("client benchmark skipped: %s", reason)
        return []
    media = harness.bench_media(quick)
    note = f"{media.stat().st_size / 1e6:.0f} MB FLV, whole program wall time"
    rows = []
    published = publish_rates(media, repeat)
    rows.append(harness.row("client", "publish FLV to nginx-rtmp as fast as possible", "MB/s",
                            published["ours"], peer=published["ffmpeg"],
                            peer_name="ffmpeg -c copy -f flv", target="ratio >= 1", note=note))
    played = play_rates(media, repeat)
    for peer in [p for p in ("ffmpeg", "rtmpdump") if p in played]:
        rows.append(harness.row("client", "play FLV back from nginx-rtmp (VOD) to a file",
                                "MB/s", played["ours"], peer=played[peer], peer_name=peer,
                                note=note if peer == "ffmpeg" else ""))
    return rows
