"""RTMP 7.2.2.1 benchmark harness: the servers under test, their CPU and memory, the media.

Each server runs as its own process on ``127.0.0.1`` and a free port, so its CPU time and
peak resident memory can be read from ``/proc/PID/stat`` and ``/proc/PID/status`` while the
load generator (:mod:`tests.bench.loadgen`) runs in other processes.  A fresh server is
started for every measured run, so the peak RSS belongs to that run alone.

* ``ours``: ``python -m rtmp serve --addr 127.0.0.1:PORT`` (chunk size 4096).
* ``nginx-rtmp``: Debian's nginx with libnginx-mod-rtmp, one process, ``chunk_size 4096``
  (:class:`tests.peers.NginxRtmp`).
* ``rtmplite3``: the pure-Python server from PyPI, ``python -m rtmplite3 -i 127.0.0.1 -p PORT``.
* ``py-thread-floor``: ``python -m tests.bench.floor_server --port PORT``, not a server but the
  least work a thread-per-connection CPython server can do for the connection-rate session
  (:mod:`tests.bench.floor_server`); it answers nothing else, so only ``bench_connections``
  measures it (see :data:`FLOORS`).
"""

from __future__ import annotations

import datetime
import importlib.util
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Dict, List, Optional, Sequence

from tests.peers import NGINX_RTMP_MODULE, NginxRtmp, free_port, stop_process, wait_port

logger = logging.getLogger(__name__)

__all__ = [
    "DIRECTIONS",
    "FLOORS",
    "SERVERS",
    "ServerProcess",
    "available_servers",
    "bench_media",
    "check_target",
    "direction_of",
    "machine_info",
    "row",
    "summary",
]

REPO = Path(__file__).resolve().parents[2]
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- servers -----------------------------------------------------------------------------


class ServerProcess:
    """One server under test: start it on a free port, read its CPU and peak RSS, stop it."""

    name = ""

    def __init__(self) -> None:
        self.port = 0
        self.pid = 0
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._tmp: Optional[tempfile.TemporaryDirectory[str]] = None

    @staticmethod
    def available() -> Optional[str]:
        """None if this server can run here, else the reason it cannot."""
        return None

    def command(self, port: int, directory: Path) -> List[str]:
        raise NotImplementedError

    def environment(self) -> Optional[Dict[str, str]]:
        """The server's environment (None: inherit ours)."""
        return None

    def start(self) -> "ServerProcess":
        self._tmp = tempfile.TemporaryDirectory(prefix=f"rtmp-bench-{self.name}-")
        directory = Path(self._tmp.name)
        self.port = free_port()
        self._log = open(directory / "server.log", "wb")
        self._process = subprocess.Popen(
            self.command(self.port, directory), cwd=directory, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, env=self.environment(),
        )
        self.pid = self._process.pid
        try:
            wait_port(self.port, 15.0, process=self._process)
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {exc}") from exc
        return self

    def log_tail(self) -> str:
        if self._tmp is None:
            return ""
        path = Path(self._tmp.name) / "server.log"
        try:
            return path.read_text("utf-8", "replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process, 5.0)
            self._process = None
            self._log.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def running(self) -> bool:
        """Whether the server process is still alive."""
        try:
            with open(f"/proc/{self.pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server so far (``/proc/PID/stat`` fields 14, 15)."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def peak_rss_mb(self) -> float:
        """The server's peak resident set (``VmHWM`` in ``/proc/PID/status``), in MB."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
        return float("nan")

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, exc_type: Optional[type], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.stop()


class OurServer(ServerProcess):
    """``python -m rtmp serve`` from this checkout."""

    name = "ours"

    def __init__(self, log_level: str = "") -> None:
        """``log_level``: ``rtmp serve --log-level`` (``"info"``: a line per session event,
        written to the run's log file); empty: the command's default."""
        super().__init__()
        self.log_level = log_level

    def command(self, port: int, directory: Path) -> List[str]:
        logging_options = ["--log-level", self.log_level] if self.log_level else []
        return [sys.executable, "-m", "rtmp", "serve", "--addr", f"127.0.0.1:{port}",
                "--chunk-size", "4096", "--record-dir", str(directory), *logging_options]

    def environment(self) -> Optional[Dict[str, str]]:
        """Ours is imported from this checkout, whatever the current directory."""
        return _checkout_environment()


def _checkout_environment() -> Dict[str, str]:
    """Our environment with this checkout first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


class ThreadFloor(ServerProcess):
    """``python -m tests.bench.floor_server`` from this checkout: the floor of the
    thread-per-connection design (connection-rate session only)."""

    name = "py-thread-floor"

    def command(self, port: int, directory: Path) -> List[str]:
        return [sys.executable, "-m", "tests.bench.floor_server", "--port", str(port)]

    def environment(self) -> Optional[Dict[str, str]]:
        return _checkout_environment()


class Rtmplite3(ServerProcess):
    """rtmplite3 from PyPI (``pip install rtmplite3``), a pure-Python multitask server."""

    name = "rtmplite3"

    @staticmethod
    def available() -> Optional[str]:
        if importlib.util.find_spec("rtmplite3") is None:
            return "rtmplite3 is not installed (pip install rtmplite3)"
        return None

    def command(self, port: int, directory: Path) -> List[str]:
        return [sys.executable, "-m", "rtmplite3", "-i", "127.0.0.1", "-p", str(port),
                "-r", str(directory) + "/"]


class Nginx(ServerProcess):
    """nginx + libnginx-mod-rtmp, single process (``master_process off``), chunk_size 4096."""

    name = "nginx-rtmp"

    def __init__(self, server_config: str = "") -> None:
        super().__init__()
        self.server_config = server_config
        self._nginx: Optional[NginxRtmp] = None

    @staticmethod
    def available() -> Optional[str]:
        if shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"):
            return "nginx is not installed"
        if not os.path.exists(NGINX_RTMP_MODULE):
            return f"the nginx RTMP module is not at {NGINX_RTMP_MODULE}"
        return None

    def start(self) -> "ServerProcess":
        self._nginx = NginxRtmp(server_config=self.server_config, chunk_size=4096)
        self._nginx.start()
        assert self._nginx.process is not None
        self.port = self._nginx.port
        self.pid = self._nginx.process.pid
        return self

    def log_tail(self) -> str:
        return self._nginx.error_log()[-3000:] if self._nginx else ""

    def stop(self) -> None:
        if self._nginx is not None:
            self._nginx.stop()
            self._nginx = None


SERVERS: Dict[str, Callable[[], ServerProcess]] = {
    "ours": OurServer,
    "nginx-rtmp": Nginx,
    "rtmplite3": Rtmplite3,
    "py-thread-floor": ThreadFloor,
}
#: Entries of SERVERS that only answer the connection-rate session (no publish, no media):
#: the relay and latency benchmarks leave them out.
FLOORS = ("py-thread-floor",)


def available_servers() -> Dict[str, str]:
    """Server name -> "" if it can run here, else why not."""
    checks = {"ours": None, "nginx-rtmp": Nginx.available(), "rtmplite3": Rtmplite3.available(),
              "py-thread-floor": None}
    return {name: reason or "" for name, reason in checks.items()}


# -- media -----------------------------------------------------------------------------


def bench_media(quick: bool) -> Path:
    """The benchmark FLV: ~90 MB of 720p30 H.264 at 12 Mbit/s + AAC, keyframe every 2 s,
    with temporal noise so the encoder spends the bits; ``quick``: 4 s at 2 Mbit/s."""
    from tests.media import bench_flv

    if quick:
        return bench_flv(seconds=4, fps=30, width=640, height=360, video_bitrate="2M",
                         noise=30, keyframe_interval=2.0)
    return bench_flv(seconds=60, fps=30, width=1280, height=720, video_bitrate="12M",
                     noise=30, keyframe_interval=2.0)


# -- the machine --------------------------------------------------------------------------


def _first_line(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (out.stdout or out.stderr).decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else "unknown"


def machine_info() -> Dict[str, str]:
    """nproc, CPU model, memory, OS, and the versions of Python and the peers."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo") as meminfo:
            kb = int(meminfo.readline().split()[1])
            memory = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    try:
        from importlib.metadata import version

        rtmplite = version("rtmplite3")
    except Exception:
        rtmplite = "not installed"
    rtmpdump = _first_line(["rtmpdump", "-h"])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": memory,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "ffmpeg": _first_line(["ffmpeg", "-hide_banner", "-version"]).split(" Copyright")[0],
        "nginx": _first_line([nginx, "-v"]),
        "rtmpdump": rtmpdump,
        "rtmplite3": rtmplite,
        "load average when written (1, 5, 15 min)": _load_average(),
    }


def _load_average() -> str:
    try:
        with open("/proc/loadavg") as loadavg:
            return " ".join(loadavg.read().split()[:3])
    except OSError:
        return "unknown"


# -- rows and summaries -----------------------------------------------------------------


def row(group: str, name: str, unit: str, ours: List[float], *,
        peer: Optional[List[float]] = None, peer_name: str = "", target: str = "",
        note: str = "", direction: str = "") -> Dict[str, Any]:
    """A table row in the shape every ``bench_*.py`` returns (see ``tests/bench/__main__``).

    ``direction`` ("higher", "lower" or "none") says which way the row's figure is better
    when the runner compares it with the recorded run; by default it follows the unit
    (:func:`direction_of`).  "none" leaves a row out of the regression gate (a row about
    the load generator or the floor, not about our code).
    """
    out: Dict[str, Any] = {"group": group, "name": name, "unit": unit, "ours": list(ours)}
    if peer is not None:
        out["peer"] = list(peer)
        out["peer_name"] = peer_name
    if target:
        out["target"] = target
    if note:
        out["note"] = note
    if direction:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction {direction!r} is not one of {DIRECTIONS}")
        out["direction"] = direction
    return out


#: Which way a figure is better: "higher", "lower", or "none" (not compared).
DIRECTIONS = ("higher", "lower", "none")
#: Units whose figures are better lower; rates (``.../s``) and fractions are better higher.
LOWER_IS_BETTER = ("ms", "ms/session", "s", "s/GB", "MB", "KB")
HIGHER_IS_BETTER = ("fraction",)


def direction_of(unit: str) -> str:
    """"higher" for rates (``MB/s``, ``ops/s``, ``sessions/s``...) and fractions, "lower"
    for times, CPU per work and memory (``ms``, ``s/GB``, ``MB``), "none" otherwise."""
    unit = unit.strip()
    if unit in LOWER_IS_BETTER:
        return "lower"
    if unit in HIGHER_IS_BETTER or unit.endswith("/s"):
        return "higher"
    return "none"


def summary(values: Sequence[float]) -> str:
    """``median (min-max)`` with three significant figures."""
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return _fmt(med)
    return f"{_fmt(med)} ({_fmt(min(values))}-{_fmt(max(values))})"


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "nan"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def check_target(target: str, ours: float, peer: Optional[float]) -> Optional[str]:
    """Evaluate a target such as ``ratio >= 5``, ``<= 50``, ``< 60`` or ``>= 0.999``.

    A ``ratio`` target compares ``ours / peer``; a plain one compares ``ours`` itself (a
    fraction, a latency, a size).  Returns "yes", or "NO: <figure>, <by how much>", or None
    when the target cannot be evaluated (no peer for a ratio, or not a target).  The figure
    is shown with one decimal more than the bound has, so 0.9987 against ``>= 0.999`` does
    not read as 0.999; a miss by less than 1.5x is given in percent.
    """
    match = re.fullmatch(r"\s*(ratio\s*)?(>=|<=|<|>)\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*",
                         target)
    if not match:
        return None
    is_ratio, op, bound_text = match.groups()
    bound = float(bound_text)
    decimals = len(bound_text.partition(".")[2])
    if is_ratio:
        if peer is None or peer == 0:
            return None
        value = ours / peer
    else:
        value = ours
    if value != value:  # NaN: nothing to compare
        return None
    ok = {">=": value >= bound, "<=": value <= bound, ">": value > bound, "<": value < bound}[op]
    if ok:
        return "yes"
    if is_ratio:
        shown = f"ratio {value:.{max(2, decimals + 1)}f}"
    else:
        shown = f"{value:.{decimals + 1}f}" if decimals else _fmt(value)
    if op in (">=", ">"):
        return f"NO: {shown}{_missed_by(bound, value, 'short')}"
    return f"NO: {shown}{_missed_by(value, bound, 'over')}"


def _missed_by(want: float, have: float, word: str) -> str:
    """", 2.0x short" / ", 1.5x over", or in percent below 1.5x: ", 25% over"."""
    if have <= 0 or want <= 0:
        return ""
    factor = want / have
    if factor < 1.5:
        return f", {(factor - 1) * 100:.2g}% {word}"
    return f", {factor:.1f}x {word}"
