"""The ``rtmp`` command line: serve, publish, play, probe and proxy.

Exit codes: 0 success, 1 failure (a network or protocol error, reported in
one line), 2 usage errors (argparse's convention).  ``--trace`` on every
subcommand prints the teaching trace of :mod:`rtmp.trace`; ``-v`` and
``--log-level`` control stdlib logging.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import ssl
import sys
import time
from types import FrameType
from typing import Any, Callable, List, Optional, Sequence, Tuple

from . import __version__
from .config import parse_duration, parse_size
from .errors import RTMPError, seconds_text
from .url import is_loopback
from .url import parse_addr as _parse_addr

__all__ = ["main", "build_parser"]

logger = logging.getLogger("rtmp.cli")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class _Progress:
    """A one-line progress display on a terminal (time, bitrate, frames); silent otherwise."""

    def __init__(self, stream: Any = None, interval: float = 0.5) -> None:
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self._last = 0.0

    def __call__(self, stats: Any) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        self.stream.write("\r" + self.line(stats))
        self.stream.flush()

    @staticmethod
    def line(stats: Any) -> str:
        seconds = stats.duration_ms / 1000.0
        kbits = stats.bytes * 8 / 1000.0 / stats.elapsed if stats.elapsed > 0 else 0.0
        return (f"time {int(seconds // 60):02d}:{seconds % 60:04.1f}  "
                f"{kbits:8.0f} kbit/s  video frames {stats.video}  audio frames {stats.audio}")

    def finish(self, stats: Any) -> None:
        if self.enabled:
            self.stream.write("\r" + self.line(stats) + "\n")
            self.stream.flush()


def parse_addr(text: str, default_port: int) -> tuple[str, int]:
    """``":1935"``, ``"127.0.0.1:1936"`` or ``"1936"`` -> (host, port); no host is 0.0.0.0."""
    try:
        host, port = _parse_addr(text, default_port)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return (host or "0.0.0.0", port)


def _parsed_arg(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type=`` from a parser that raises ValueError (a usage error, exit 2)."""
    def check(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return check


def _record_all_arg(text: str) -> Any:
    """``--record-all live,tv``: the applications to record."""
    apps = frozenset(part.strip() for part in text.split(",") if part.strip())
    if not apps:
        raise argparse.ArgumentTypeError("--record-all takes application names, e.g. live,tv")
    return apps


def _addr_arg(default_port: int) -> Callable[[str], str]:
    def check(text: str) -> str:
        parse_addr(text, default_port)
        return text

    return check


def _http_addr_arg(text: str) -> str:
    """``--http``: ``host:port``, ``[v6]:port``, ``:port`` (every interface) or a port
    alone (loopback: 127.0.0.1)."""
    _, port = parse_addr(text, 8080)
    if ":" not in text:
        return f"127.0.0.1:{port}"
    return text if text.rpartition(":")[2] else f"{text}{port}"


# -- subcommands ------------------------------------------------------------------------


class _StopRequest:
    """Set by SIGTERM or SIGINT (Ctrl-C); the serving loop polls it.

    A plain flag, no lock: Python runs a signal handler in the main thread between two
    bytecodes, and a ``threading.Event`` there deadlocks when the signal lands while the
    main thread holds the event's own lock inside ``Event.wait`` (``set`` takes that
    lock again).  Seen once: ``rtmp serve`` ignored SIGTERM until it was killed.
    """

    def __init__(self) -> None:
        self.requested = False

    def set(self) -> None:
        self.requested = True

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` s unless already requested; whether it is now."""
        if not self.requested:
            time.sleep(timeout)  # a signal's handler runs during it; the sleep goes on
        return self.requested


def _install_stop_signals() -> _StopRequest:
    stop = _StopRequest()

    def handler(signum: int, frame: Optional[FrameType]) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _push_rule(text: str) -> str:
    """``--push [APP=]URL``: checked at start (rtmp.push.parse_push_rule), kept as given."""
    from .push import parse_push_rule

    parse_push_rule(text)
    return text


def _pull_rule(text: str) -> str:
    """``--pull [APP=]URL``: checked at start (rtmp.pull.parse_pull_rule), kept as given."""
    from .pull import parse_pull_rule

    parse_pull_rule(text)
    return text


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import Server, ServerConfig

    context = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise _UsageError("--tls-cert and --tls-key go together")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    require_auth = args.require_auth or args.require_auth_players
    if require_auth and not (args.username and args.password):
        flag = "--require-auth" if args.require_auth else "--require-auth-players"
        raise _UsageError(f"{flag} needs --username and --password")
    recording = args.record_all or args.record_segment or args.record_max_size
    if recording and not args.record_dir:
        flag = ("--record-all" if args.record_all else
                "--record-segment" if args.record_segment else "--record-max-size")
        raise _UsageError(f"{flag} needs --record-dir")
    http_token = args.http_token or os.environ.get("RTMP_HTTP_TOKEN") or None
    if args.http is not None and not is_loopback(_parse_addr(args.http)[0]) and not http_token:
        raise _UsageError(f"--http {args.http} is not a loopback address: it needs --http-token "
                          "(or RTMP_HTTP_TOKEN)")
    config = ServerConfig(
        addr=args.addr,
        http_addr=args.http,
        http_token=http_token,
        record_dir=args.record_dir,
        record_all=args.record_all,
        record_segment_seconds=args.record_segment,
        record_segment_bytes=args.record_max_size,
        shared_objects_dir=args.shared_objects_dir,
        max_connections=args.max_connections,
        require_auth=require_auth,
        require_auth_players=args.require_auth_players,
        username=args.username,
        password=args.password,
        ssl_context=context,
        chunk_size=args.chunk_size,
        push=args.push,
        push_reconnect=args.push_reconnect,
        pull=args.pull,
        pull_idle=args.pull_idle,
        pull_reconnect=args.pull_reconnect,
    )
    _lean_log_records()
    flush = _hold_log_lines()
    server = Server(config)
    stop = _install_stop_signals()
    server.start()
    host, port = server.address
    scheme = "rtmps" if context else "rtmp"
    shown = f"[{host}]" if ":" in host else host
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else shown
    print(f"rtmp: serving on {scheme}://{shown}:{port}/ (publish to "
          f"{scheme}://{local}:{port}/live/<key>; Ctrl-C stops)", file=sys.stderr, flush=True)
    if server.http is not None:
        http_host, http_port = server.http.address
        http_shown = f"[{http_host}]" if ":" in http_host else http_host
        print(f"rtmp: HTTP API and status page on http://{http_shown}:{http_port}/",
              file=sys.stderr, flush=True)
    try:
        while not stop.wait(LOG_FLUSH_INTERVAL):
            flush()
    finally:
        flush()
        print("rtmp: stopping", file=sys.stderr, flush=True)
        server.stop()
        flush()
    return EXIT_OK


def _hold_log_lines() -> Callable[[], None]:
    """``rtmp serve``: the root logger's plain stderr handler becomes a
    :class:`_ServeLogHandler` (stderr no longer line-buffered); returns what writes out
    the lines it holds (nothing to do when logging goes elsewhere)."""
    root = logging.getLogger()
    reconfigure = getattr(sys.stderr, "reconfigure", None)
    plain = [h for h in root.handlers
             if type(h) is logging.StreamHandler and h.stream is sys.stderr]
    held: List[_ServeLogHandler] = []
    if reconfigure is not None and plain:
        reconfigure(line_buffering=False)
        for old in plain:
            new = _ServeLogHandler()
            new.setFormatter(old.formatter)
            new.setLevel(old.level)
            root.removeHandler(old)
            root.addHandler(new)
            held.append(new)

    def flush() -> None:
        for handler in held:
            handler.flush_now()

    return flush


def _client_config(args: argparse.Namespace) -> Any:
    from .client import ClientConfig

    return ClientConfig(
        connect_timeout=args.timeout,
        read_timeout=args.timeout,
        write_timeout=args.timeout,
        close_timeout=min(args.timeout, ClientConfig.close_timeout),
        username=getattr(args, "user", None),
        password=getattr(args, "password", None),
        ca_file=getattr(args, "ca_file", None),
        tls_insecure=getattr(args, "insecure", False),
        follow_reconnect_request=getattr(args, "follow_reconnect", True),
        reconnect=getattr(args, "reconnect", False),
        reconnect_attempts=getattr(args, "reconnect_attempts", ClientConfig.reconnect_attempts),
    )


def _check_url(url: str) -> None:
    """The URL of ``play``/``publish`` names a host, an application and a stream."""
    from .url import parse_url

    try:
        parsed = parse_url(url)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    if not parsed.app:
        raise _UsageError(f"the URL {url!r} names no application: "
                          "use rtmp://host[:port]/app/stream")
    if not parsed.stream:
        raise _UsageError(f"the URL {url!r} names no stream: use rtmp://host[:port]/app/stream")


def flv_has_tags(path: str) -> bool:
    """FLV E.2-E.4: whether the file at ``path`` holds a tag after its header (only the
    first is read).  Raises :class:`_Failure` with one line when it cannot be read or is
    not FLV."""
    from .flv import FLVError, Reader

    try:
        with Reader(path) as reader:
            return reader.read_tag() is not None
    except FLVError as exc:
        raise _Failure(f"{path} is not an FLV file: {exc}") from exc
    except OSError as exc:
        raise _Failure(f"cannot read {path}: {exc.strerror or exc}") from exc


def summary(verb: str, stats: Any) -> str:
    """The closing line of ``play``/``publish``: counts, bytes, media time and the rate."""
    seconds = stats.elapsed
    rate = stats.bytes * 8 / 1000.0 / seconds if seconds > 0 else 0.0
    return (f"rtmp: {verb} {stats.messages} messages ({stats.video} video, {stats.audio} audio, "
            f"{stats.data} data), {stats.bytes} bytes, {stats.duration_ms} ms of media "
            f"in {seconds_text(seconds)} s ({rate:.0f} kbit/s)")


def cmd_publish(args: argparse.Namespace) -> int:
    from .flvio import publish_flv

    _check_url(args.url)
    if not flv_has_tags(args.file):
        print(f"rtmp: warning: {args.file} has an FLV header but no tags: nothing to publish",
              file=sys.stderr)
        return EXIT_FAILURE
    progress = _Progress()
    stats = publish_flv(args.url, args.file, realtime=args.realtime, loop=args.loop,
                        config=_client_config(args), progress=progress,
                        stream_type=args.type)
    progress.finish(stats)
    print(summary("sent", stats), file=sys.stderr)
    if stats.messages == 0:
        print(f"rtmp: warning: {args.file} has no audio, video or data tags: nothing was sent",
              file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_play(args: argparse.Namespace) -> int:
    from .flvio import play_to_flv

    _check_url(args.url)
    progress = _Progress()
    target: Any = args.output if args.output else _NullFile()
    def waiting(text: str) -> None:
        print(f"rtmp: {text}", file=sys.stderr, flush=True)

    stats = play_to_flv(args.url, target, duration=args.duration, config=_client_config(args),
                        progress=progress, on_waiting=waiting)
    progress.finish(stats)
    if stats.end_reason:
        print(f"rtmp: play ended: {stats.end_reason}", file=sys.stderr)
    print(summary("received", stats), file=sys.stderr)
    return EXIT_OK


class _NullFile:
    """A write-only binary sink for ``rtmp play`` without ``-o`` (count only)."""

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def tell(self) -> int:
        return 0

    def seekable(self) -> bool:
        return False


def cmd_probe(args: argparse.Namespace) -> int:
    from . import conformance

    code: int = conformance.main_from_args(args)  # type: ignore[attr-defined]
    return code


def cmd_proxy(args: argparse.Namespace) -> int:
    from .proxy import Proxy

    host, port = parse_addr(args.listen, 1936)
    proxy = Proxy(host, port, args.url, chunks=args.trace)
    stop = _install_stop_signals()
    proxy.start()
    lhost, lport = proxy.address
    print(f"rtmp: proxy listening on rtmp://{lhost}:{lport}/ -> {args.url} (Ctrl-C stops)",
          file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        proxy.stop()
    return EXIT_OK


# -- parser -----------------------------------------------------------------------------


class _UsageError(Exception):
    """A usage mistake found after parsing (exit code 2, one line)."""


class _Failure(Exception):
    """A failure already worded for the user (exit code 1, one line)."""


def error_text(exc: BaseException) -> str:
    """One line, in the command line's terms, for an error of the library.

    The library's own text (the server's raw description, for instance) stays in the
    debug log.
    """
    from . import auth
    from .errors import CommandError

    if isinstance(exc, auth.AuthenticationError):
        if exc.reason.startswith("incorrect username/"):
            return "authentication failed: wrong user name or password"
        if exc.reason.startswith("incorrect username"):
            return "authentication failed: unknown user name"
        if "no credentials" in exc.reason:
            return ("the server requires authentication: give --user and --password "
                    "(or rtmp://user:pass@host/app/stream)")
        return f"authentication failed: {exc.reason}"
    if isinstance(exc, CommandError) and auth.parse_description(exc.description).authmod:
        if exc.code == "NetStream.Publish.BadName":
            return ("the server requires authentication to publish: give --user and --password "
                    "(or rtmp://user:pass@host/app/stream)")
    if isinstance(exc, RTMPError) and isinstance(exc.__cause__, ssl.SSLCertVerificationError):
        cause = exc.__cause__
        return (f"TLS: the server's certificate is not trusted "
                f"({cause.verify_message or cause.reason}): trust it with --ca-file FILE, "
                f"or skip the check with --insecure")
    return str(exc)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trace", action="store_true",
                        help="print every handshake block, chunk and message, decoded, "
                             "with the clause that defines it")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging (-v info, -vv debug)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        help="logging level (overrides -v)")


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="connect, read and write timeout in seconds (default 30)")
    parser.add_argument("--user", help="user name for authmod=adobe/llnw (or user:pass@ in URL)")
    parser.add_argument("--password", help="password for authmod=adobe/llnw")
    _tls_options(parser)


def _reconnect_options(parser: argparse.ArgumentParser) -> None:
    """ERTMP Reconnect Request and reconnection after a loss, for publish and play."""
    parser.add_argument("--reconnect", action="store_true",
                        help="when the connection is lost, reconnect (with backoff) and go on "
                             "with the same stream")
    parser.add_argument("--reconnect-attempts", type=int, default=5, metavar="N",
                        help="connections tried per reconnection (default 5)")
    parser.add_argument("--no-follow-reconnect", dest="follow_reconnect", action="store_false",
                        help="ignore the server's NetConnection.Connect.ReconnectRequest (by "
                             "default the client moves where it says, without a gap)")


def _tls_options(parser: argparse.ArgumentParser) -> None:
    """rtmps trust, for play, publish and probe (rtmp.transport.client_ssl_context)."""
    parser.add_argument("--ca-file", metavar="FILE",
                        help="rtmps: also trust the certificates in this PEM file "
                             "(a self-signed server or a private CA)")
    parser.add_argument("--insecure", action="store_true",
                        help="rtmps: do not check the server's certificate (still encrypted, "
                             "but not authenticated)")


def _subcommand(sub: Any, name: str, func: Callable[[argparse.Namespace], int], **texts: str
                ) -> argparse.ArgumentParser:
    """The parser of ``rtmp NAME`` (``help`` and ``description`` in ``texts``), running ``func``."""
    parser: argparse.ArgumentParser = sub.add_parser(name, **texts)
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtmp",
        description="A pure-Python RTMP toolkit: media server, publisher, player, "
                    "conformance probe and tracing proxy.",
    )
    parser.add_argument("--version", action="version", version=f"rtmp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    serve = _subcommand(sub, "serve", cmd_serve, help="run the media server",
                        description="Run the embedded media server. With no flags it listens "
                                    "on :1935; publish to rtmp://127.0.0.1/live/KEY and play "
                                    "the same URL.")
    serve.add_argument("--addr", default=":1935", type=_addr_arg(1935),
                       help="listen address host:port (default :1935; port 0 picks one)")
    serve.add_argument("--record-dir", metavar="DIR",
                       help="where record/append publishing writes FLV and VOD play reads")
    serve.add_argument("--record-all", nargs="?", const=True, default=False, metavar="APPS",
                       type=_record_all_arg,
                       help="record every publish, type live included (ffmpeg, OBS), as parts "
                            "<name>-<UTC start>-<NNNN>.flv; optionally only these "
                            "applications (comma-separated)")
    serve.add_argument("--record-segment", type=_parsed_arg(parse_duration), metavar="DURATION",
                       help="with --record-all: a new part after this much media, at a "
                            "keyframe (30s, 10m, 1h)")
    serve.add_argument("--record-max-size", type=_parsed_arg(parse_size), metavar="SIZE",
                       help="with --record-all: a new part once this size is reached, at a "
                            "keyframe (500M, 2G; 1K = 1024)")
    serve.add_argument("--shared-objects-dir", metavar="DIR",
                       help="where persistent remote shared objects are kept (RTMP 7.3.2); "
                            "without it they are refused")
    serve.add_argument("--max-connections", type=int, default=1000, metavar="N")
    serve.add_argument("--chunk-size", type=int, default=4096, metavar="N",
                       help="outgoing chunk size (RTMP 5.4.1), default 4096")
    serve.add_argument("--require-auth", action="store_true",
                       help="require authmod=adobe authentication (AUTH-ADOBE) from publishers; "
                            "players need none")
    serve.add_argument("--require-auth-players", action="store_true",
                       help="require it from players too (implies --require-auth; librtmp "
                            "players such as rtmpdump cannot answer it)")
    serve.add_argument("--username", help="user name for --require-auth")
    serve.add_argument("--password", help="password for --require-auth")
    serve.add_argument("--tls-cert", metavar="FILE", help="PEM certificate: serve rtmps")
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key for --tls-cert")
    serve.add_argument("--http", metavar="ADDR", type=_http_addr_arg,
                       help="serve the HTTP API, /metrics and a status page on host:port "
                            "(a port alone means 127.0.0.1; off by default; see refs/http-api.md)")
    serve.add_argument("--push", action="append", default=[], metavar="[APP=]URL",
                       type=_parsed_arg(_push_rule),
                       help="push every live stream (of application APP only, with APP=) to "
                            "rtmp[s]://host[:port]/app, as app/<name> there; repeatable")
    serve.add_argument("--push-reconnect", type=_parsed_arg(parse_duration), default=3.0,
                       metavar="DURATION",
                       help="longest wait between a lost push target's retries (default 3s)")
    serve.add_argument("--pull", action="append", default=[], metavar="[APP=]URL",
                       type=_parsed_arg(_pull_rule),
                       help="play the streams nobody publishes here (of application APP only, "
                            "with APP=) from the origin rtmp[s]://host[:port]/app, as "
                            "app/<name> there (an edge); repeatable")
    serve.add_argument("--pull-idle", type=_parsed_arg(parse_duration), default=5.0,
                       metavar="DURATION",
                       help="close a pull this long after its last player left (default 5s)")
    serve.add_argument("--pull-reconnect", type=_parsed_arg(parse_duration), default=3.0,
                       metavar="DURATION",
                       help="longest wait between a lost pull's retries (default 3s)")
    serve.add_argument("--http-token", metavar="TOKEN",
                       help="bearer token for the HTTP API (default: $RTMP_HTTP_TOKEN): needed "
                            "to drop connections, and for everything off loopback")

    publish = _subcommand(sub, "publish", cmd_publish, help="publish an FLV file to a URL",
                          description="Publish FILE.flv to URL (rtmp://host[:port]/app/stream).")
    publish.add_argument("file", metavar="FILE")
    publish.add_argument("url", metavar="URL")
    pace = publish.add_mutually_exclusive_group()
    pace.add_argument("--realtime", dest="realtime", action="store_true", default=True,
                      help="pace by the file's timestamps (default)")
    pace.add_argument("--fast", dest="realtime", action="store_false",
                      help="send as fast as the server takes it")
    publish.add_argument("--loop", type=int, default=1, metavar="N",
                         help="play the file N times (0 = until interrupted)")
    publish.add_argument("--type", choices=["live", "record", "append"], default="live",
                         help="publishing type (RTMP 7.2.2.6), default live")
    _client_options(publish)
    _reconnect_options(publish)

    play = _subcommand(sub, "play", cmd_play, help="play a URL, saving or counting what arrives",
                       description="Play URL; with -o, save it as FLV.")
    play.add_argument("url", metavar="URL")
    play.add_argument("-o", "--output", metavar="FILE", help="write an FLV file")
    play.add_argument("--duration", type=float, metavar="S",
                      help="stop after S seconds of media")
    _client_options(play)
    _reconnect_options(play)

    probe = _subcommand(sub, "probe", cmd_probe, help="check a server against the specification",
                        description="Run the conformance checks against a server URL "
                                    "(rtmp://host[:port]/app, or rtmps:// through TLS).")
    probe.add_argument("url", metavar="URL", nargs="?",
                       help="rtmp://host[:port]/app or rtmps://... (not needed with --list)")
    probe.add_argument("--json", action="store_true", help="print results as JSON")
    probe.add_argument("--only", action="append", default=[], metavar="CHECK_OR_CLAUSE",
                       help="run only these checks (name or clause; repeatable)")
    probe.add_argument("--skip", action="append", default=[], metavar="CHECK_OR_CLAUSE",
                       help="skip these checks (name or clause; repeatable)")
    probe.add_argument("--list", action="store_true", help="list the checks and exit")
    probe.add_argument("--timeout", type=float, default=10.0, metavar="S")
    probe.add_argument("--wide", action="store_true",
                       help="print every detail whole (the table is cut to 120 columns)")
    _tls_options(probe)

    proxy = _subcommand(sub, "proxy", cmd_proxy, help="relay a client to a server, printing every message",
                        description="Listen for RTMP clients and relay each to URL's server, "
                                    "printing every message in both directions, decoded "
                                    "(--trace adds every chunk).")
    proxy.add_argument("--listen", default=":1936", type=_addr_arg(1936),
                       help="listen address (default :1936)")
    proxy.add_argument("url", metavar="URL", help="the real server, rtmp://host[:port]")
    for command in (serve, publish, play, probe, proxy):
        _common(command)  # last in each --help
    return parser


def _lean_log_records() -> None:
    """The format of :func:`_configure_logging` names neither the caller nor the thread
    nor the process: a long-running server does not collect them for every record (the
    logging HOWTO, "Optimization"), so a session's lines cost less CPU (issue 21)."""
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


#: How often ``rtmp serve`` writes out the log lines below WARNING it holds (seconds).
LOG_FLUSH_INTERVAL = 0.1


class _SecondCachingFormatter(logging.Formatter):
    """A :class:`logging.Formatter` with the default time format whose ``asctime``
    reuses the date and time text of the record's second: a busy server logs many
    lines per second, each otherwise a ``localtime`` and a ``strftime`` (issue 21).
    The command line's log lines use it."""

    _cached: Tuple[int, str] = (-1, "")  # (second, its text): replaced whole, thread-safe

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:
        if datefmt is not None:  # pragma: no cover - made only without a datefmt
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached_second, text = self._cached
        if second != cached_second:
            text = time.strftime(self.default_time_format, self.converter(second))
            self._cached = (second, text)
        return "%s,%03d" % (text, record.msecs)  # logging.Formatter.default_msec_format


class _ServeLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """``rtmp serve``'s stderr: lines below WARNING stay in stderr's buffer until
    :meth:`flush_now` (the serve loop calls it every :data:`LOG_FLUSH_INTERVAL` s, and
    at the end), so a busy server writes its session lines in batches, not with a
    system call each (issue 21); WARNING and above are written at once."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self._urgent = True

    def emit(self, record: logging.LogRecord) -> None:
        self._urgent = record.levelno >= logging.WARNING  # under the handler's lock
        super().emit(record)

    def flush(self) -> None:
        if self._urgent:
            super().flush()

    def flush_now(self) -> None:
        """Write out every line held."""
        super().flush()

    def close(self) -> None:
        self.flush_now()
        super().close()


def _configure_logging(args: argparse.Namespace) -> None:
    if args.log_level:
        level = getattr(logging, args.log_level.upper())
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_SecondCachingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    if args.trace and args.command != "proxy":
        from . import trace

        trace.enable(sys.stdout)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    try:
        result: int = args.func(args)
        return result
    except _UsageError as exc:
        print(f"rtmp {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rtmp: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except _Failure as exc:
        logger.debug("failure", exc_info=True)
        print(f"rtmp: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except (RTMPError, OSError, ValueError) as exc:
        logger.debug("failure: %s", exc, exc_info=True)
        print(f"rtmp: error: {error_text(exc)}", file=sys.stderr)
        return EXIT_FAILURE

