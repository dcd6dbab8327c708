"""Real peers for interop tests: nginx-rtmp, ffmpeg as an RTMP listener, ffprobe, helpers.

Every process started here is bounded by a timeout and stopped by its own pid (terminate,
wait, kill), never by name.  Programs are located with :func:`tests.conftest.require_peer`,
so a missing peer skips locally and fails under ``CI=true``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Union

from tests.conftest import IN_CI, require_peer

logger = logging.getLogger(__name__)

__all__ = [
    "NGINX_RTMP_MODULE",
    "NODE_MEDIA_SERVER_APP",
    "FfmpegListen",
    "NginxRtmp",
    "NodeMediaServer",
    "ffprobe_json",
    "free_port",
    "run",
    "stop_process",
    "wait_port",
]

#: Debian's libnginx-mod-rtmp installs the dynamic module here.
NGINX_RTMP_MODULE_CANDIDATES = (
    "/usr/lib/nginx/modules/ngx_rtmp_module.so",
    "/usr/lib64/nginx/modules/ngx_rtmp_module.so",
    "/usr/local/nginx/modules/ngx_rtmp_module.so",
)
NGINX_RTMP_MODULE = next(
    (p for p in NGINX_RTMP_MODULE_CANDIDATES if os.path.exists(p)), NGINX_RTMP_MODULE_CANDIDATES[0]
)

#: node-media-server's command line, installed by scripts/test with npm into the project's
#: git-ignored .peers folder (the version scripts/test pins).
NODE_MEDIA_SERVER_APP = (Path(__file__).resolve().parent.parent / ".peers" / "node_modules"
                         / "node-media-server" / "bin" / "app.js")

PathLike = Union[str, "os.PathLike[str]"]
_PeerT = TypeVar("_PeerT", bound="_PeerProcess")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(
    port: int,
    timeout: float = 10.0,
    host: str = "127.0.0.1",
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Wait until something accepts TCP connections on ``host:port``.

    Raises :class:`TimeoutError` after ``timeout`` seconds, or :class:`RuntimeError` at once
    if ``process`` (the program expected to listen) has exited.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.pid} exited with {process.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.1f}s")
        time.sleep(0.05)


def stop_process(process: subprocess.Popen[Any], timeout: float = 5.0) -> int | None:
    """Stop one process by its own pid: terminate, wait up to ``timeout``, then kill."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("pid %d ignored SIGTERM for %.1fs; killing it", process.pid, timeout)
            process.kill()
            process.wait(timeout=timeout)
    return process.returncode


def run(
    cmd: Sequence[PathLike],
    timeout: float = 60.0,
    check: bool = False,
    input: bytes | None = None,
    cwd: PathLike | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a program with a hard timeout; on timeout it is killed and TimeoutError is raised.

    stdout and stderr are captured as bytes.  ``check=True`` raises
    :class:`subprocess.CalledProcessError` on a non-zero exit, with stderr attached.
    """
    args = [os.fspath(c) for c in cmd]
    logger.debug("run: %s", " ".join(args))
    try:
        # subprocess.run kills the child itself when the timeout expires.
        completed = subprocess.run(
            args,
            check=False,  # the caller decides; see ``check`` below
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = (exc.stderr or b"")[-2000:].decode("utf-8", "replace")
        raise TimeoutError(f"{args[0]} did not finish within {timeout}s; stderr tail:\n{stderr}") from exc
    if check and completed.returncode != 0:
        raise subprocess.CalledProcessError(
            completed.returncode, args, completed.stdout, completed.stderr
        )
    return completed


def ffprobe_json(
    path_or_url: PathLike,
    *extra: str,
    packets: bool = True,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Run ffprobe and return its JSON, with ``streams``, ``format`` and (by default) ``packets``.

    Convenience keys are added: ``packet_counts`` maps codec_type ("video", "audio", "data")
    to the number of packets ffprobe read for streams of that type.
    """
    ffprobe = require_peer("ffprobe")
    cmd: list[str] = [ffprobe, "-v", "error", "-print_format", "json", "-show_streams", "-show_format"]
    if packets:
        cmd += ["-show_entries", "packet=stream_index,pts,dts,size,flags"]
        cmd += ["-show_packets"]
    cmd += list(extra)
    cmd.append(os.fspath(path_or_url))
    completed = run(cmd, timeout=timeout)
    if completed.returncode != 0:
        raise RuntimeError(
            f"ffprobe failed ({completed.returncode}) on {path_or_url}: "
            + completed.stderr.decode("utf-8", "replace")[-2000:]
        )
    info: dict[str, Any] = json.loads(completed.stdout.decode("utf-8", "replace") or "{}")
    streams = info.get("streams", [])
    kinds = {s.get("index"): s.get("codec_type", "unknown") for s in streams}
    counts: dict[str, int] = {}
    for packet in info.get("packets", []):
        kind = kinds.get(packet.get("stream_index"), "unknown")
        counts[kind] = counts.get(kind, 0) + 1
    info["packet_counts"] = counts
    return info


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text("utf-8", "replace")[-limit:]
    except OSError:
        return ""


class _PeerProcess:
    """A peer program run for a test: :meth:`start` in a subclass, stopped by its own pid
    (:meth:`stop`), its private temp dir removed; a context manager."""

    stop_timeout: float = 5.0
    process: subprocess.Popen[bytes] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def start(self: _PeerT) -> _PeerT:
        raise NotImplementedError

    def _close_files(self) -> None:
        """Close the log files the subclass opened (none by default)."""

    def stop(self) -> None:
        """Stop the program by its pid if it still runs; remove the temp dir if we made one."""
        if self.process is not None:
            stop_process(self.process, self.stop_timeout)
        self._close_files()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self: _PeerT) -> _PeerT:  # noqa: PYI019 - no typing.Self on 3.9
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _RtmpServerPeer(_PeerProcess):
    """A peer RTMP server on 127.0.0.1: ``app`` and ``port`` make its URLs."""

    app = "live"
    port = 0

    def url(self, app: str | None = None, stream: str = "x") -> str:
        """``rtmp://127.0.0.1:PORT/app/stream``."""
        return f"rtmp://127.0.0.1:{self.port}/{app or self.app}/{stream}"


class NginxRtmp(_RtmpServerPeer):
    """nginx with the RTMP module, on 127.0.0.1 and a free port, in a private temp dir.

    ``app_config`` is extra text placed inside ``application <app> { ... }`` (for example
    ``"record all; record_path /tmp/x;"``); ``server_config`` goes inside ``server { ... }``
    after the application.  Use as a context manager::

        with NginxRtmp() as nginx:
            url = nginx.url("live", "key")
    """

    def __init__(
        self,
        app: str = "live",
        app_config: str = "",
        server_config: str = "",
        chunk_size: int = 4096,
        startup_timeout: float = 10.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.app = app
        self.app_config = app_config
        self.server_config = server_config
        self.chunk_size = chunk_size
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.dir = Path()

    def config_text(self) -> str:
        """The nginx.conf used: no http block, every path under the private directory."""
        return (
            f"load_module {NGINX_RTMP_MODULE};\n"
            "daemon off;\n"
            "master_process off;\n"
            "worker_processes 1;\n"
            f"error_log {self.dir / 'error.log'} info;\n"
            f"pid {self.dir / 'nginx.pid'};\n"
            "events { worker_connections 1024; }\n"
            "rtmp {\n"
            "  server {\n"
            f"    listen 127.0.0.1:{self.port};\n"
            f"    chunk_size {self.chunk_size};\n"
            f"    application {self.app} {{\n"
            "      live on;\n"
            "      record off;\n"
            f"      {self.app_config}\n"
            "    }\n"
            f"    {self.server_config}\n"
            "  }\n"
            "}\n"
        )

    def start(self) -> NginxRtmp:
        """Write the config, start nginx in the foreground and wait for its port."""
        nginx = require_peer("nginx")
        if not os.path.exists(NGINX_RTMP_MODULE):
            import pytest

            pytest.skip(f"nginx RTMP module not found at {NGINX_RTMP_MODULE}")
        self._tmp = tempfile.TemporaryDirectory(prefix="rtmp-nginx-")
        self.dir = Path(self._tmp.name)
        self.port = free_port()
        conf = self.dir / "nginx.conf"
        conf.write_text(self.config_text())
        # -e: the startup error log, which nginx opens before reading the config
        # (otherwise it wants /var/log/nginx, which an unprivileged user cannot write).
        self.process = subprocess.Popen(
            [nginx, "-e", str(self.dir / "error.log"), "-c", str(conf), "-p", str(self.dir) + "/"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(self.port, self.startup_timeout, process=self.process)
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            raise RuntimeError(f"nginx did not start: {exc}\n{self.error_log()}") from exc
        logger.info("nginx-rtmp pid %d on 127.0.0.1:%d", self.process.pid, self.port)
        return self

    def error_log(self, limit: int = 20000) -> str:
        """The last ``limit`` characters of nginx's error log (info level), for assertions
        and failure messages."""
        return _tail(self.dir / "error.log", limit)



class NodeMediaServer(_RtmpServerPeer):
    """node-media-server 4 (npm), on 127.0.0.1 and free ports (RTMP and HTTP), with a config
    and its data in a private temp dir; no web console, no recording, no authentication.
    Stopped by its own pid.  Use as a context manager::

        with NodeMediaServer() as nms:
            url = nms.url("live", "key")
    """

    def __init__(self, app: str = "live", startup_timeout: float = 15.0,
                 stop_timeout: float = 5.0) -> None:
        self.app = app
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        self.http_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log: Any = None
        self.dir = Path()

    def config(self) -> dict[str, Any]:
        """node-media-server's config.json (bin/config.json's keys): every path relative to
        the private directory; an auth secret is set so that nothing is written back."""
        return {
            "bind": "127.0.0.1",
            "notify": {"url": ""},
            "store": {"path": "./data", "maxHistory": 100},
            "auth": {"play": False, "publish": False, "secret": "rtmp-tests"},
            "rtmp": {"port": self.port},
            "http": {"port": self.http_port},
            "webadmin": {"enable": False},
            "record": {"auto": False, "path": "./record"},
        }

    def start(self) -> NodeMediaServer:
        """Write the config, start ``node bin/app.js -c config.json`` and wait for its port."""
        node = require_peer("node")
        if not NODE_MEDIA_SERVER_APP.exists():
            import pytest

            message = (f"node-media-server is not installed at {NODE_MEDIA_SERVER_APP} "
                       f"(scripts/test installs it with npm)")
            if IN_CI:
                pytest.fail(message + "; CI must have every peer")
            pytest.skip(message)
        self._tmp = tempfile.TemporaryDirectory(prefix="rtmp-nms-")
        self.dir = Path(self._tmp.name)
        self.port, self.http_port = free_port(), free_port()
        conf = self.dir / "config.json"
        conf.write_text(json.dumps(self.config(), indent=2))
        self._log = open(self.dir / "nms.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [node, str(NODE_MEDIA_SERVER_APP), "-c", str(conf)],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_port(self.port, self.startup_timeout, process=self.process)
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            raise RuntimeError(f"node-media-server did not start: {exc}") from exc
        logger.info("node-media-server pid %d on 127.0.0.1:%d", self.process.pid, self.port)
        return self

    def log(self) -> str:
        """The tail of the server's own log (stdout and stderr)."""
        return _tail(self.dir / "nms.log", 20000)

    def _close_files(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class FfmpegListen(_PeerProcess):
    """ffmpeg as a one-shot RTMP server that copies what it receives into an FLV file.

    ``ffmpeg -listen 1 -timeout T -f flv -i rtmp://127.0.0.1:PORT/app/key -c copy -f flv OUT``.
    Start it, point a publisher at :meth:`url`, then call :meth:`wait` for ffmpeg to exit
    after the publisher closes.  ffmpeg opens the listening socket only after it starts, so
    :meth:`start` waits until the port accepts connections; note that this probe connection
    is itself seen by ffmpeg, so ``start(wait=False)`` is available when a probe would disturb
    the test (ffmpeg then needs a moment before the publisher may connect).
    """

    def __init__(
        self,
        output: PathLike | None = None,
        app: str = "live",
        key: str = "key",
        listen_timeout: int = 20,
        input_args: Sequence[str] = (),
        output_args: Sequence[str] = ("-c", "copy"),
        output_format: str = "flv",
    ) -> None:
        self.app = app
        self.key = key
        self.listen_timeout = listen_timeout
        self.input_args = list(input_args)
        self.output_args = list(output_args)
        self.output_format = output_format
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if output is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rtmp-ffmpeg-")
            output = Path(self._tmp.name) / "received.flv"
        self.output = Path(output)
        self.log_path = self.output.with_suffix(self.output.suffix + ".log")
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: Any | None = None

    def url(self) -> str:
        """The URL a publisher connects to."""
        return f"rtmp://127.0.0.1:{self.port}/{self.app}/{self.key}"

    def command(self) -> list[str]:
        """The ffmpeg command line (for failure messages)."""
        ffmpeg = require_peer("ffmpeg")
        return [
            ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "info", "-y",
            "-listen", "1", "-timeout", str(self.listen_timeout),
            *self.input_args,
            "-f", "flv", "-i", f"rtmp://127.0.0.1:{self.port}/{self.app}/{self.key}",
            *self.output_args, "-f", self.output_format, str(self.output),
        ]  # fmt: skip

    def start(self, wait: bool = False, startup_delay: float = 0.5) -> FfmpegListen:
        """Start ffmpeg.  By default sleep ``startup_delay`` instead of probing the port.

        ``wait=True`` polls the port instead; ffmpeg treats that probe as its one client, so
        only use it with programs that tolerate it (it is off by default for that reason).
        """
        self.port = free_port()
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in wait()/stop()
        self.process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        if wait:
            wait_port(self.port, 10.0, process=self.process)
        else:
            deadline = time.monotonic() + 10.0
            # ffmpeg logs nothing when it starts listening; give it a moment, but fail fast
            # if it died (bad arguments) and make sure the port is actually bound (ss-free check).
            time.sleep(startup_delay)
            while not _port_is_listening(self.port) and time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"ffmpeg exited early:\n{self.log()}")
                time.sleep(0.05)
        logger.info("ffmpeg listener pid %d on %s", self.process.pid, self.url())
        return self

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for ffmpeg to exit (after the publisher disconnects); kill it after ``timeout``.

        Returns ffmpeg's exit status; raises TimeoutError (after killing it) if it hung.
        """
        assert self.process is not None, "start() first"
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            stop_process(self.process, 5.0)
            raise TimeoutError(f"ffmpeg listener still running after {timeout}s:\n{self.log()}") from exc
        finally:
            self._close_files()

    def log(self) -> str:
        """ffmpeg's stderr so far."""
        return _tail(self.log_path, 8000)

    def _close_files(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _port_is_listening(port: int) -> bool:
    """Whether a TCP socket listens on 127.0.0.1:port, read from /proc/net/tcp (no connect).

    Connecting would be taken by a one-shot listener (ffmpeg -listen 1) as its client.
    Falls back to True where /proc is unavailable.
    """
    target = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as table:
            for line in table:
                fields = line.split()
                # local_address is field 1, state is field 3 ("0A" = LISTEN).
                if len(fields) > 3 and fields[1] == target and fields[3] == "0A":
                    return True
        return False
    except OSError:
        return True
