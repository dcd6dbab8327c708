"""The server's optional HTTP side (issue 20): JSON API, Prometheus metrics, status page.

Theory of operation
-------------------
:class:`HTTPServer` runs in the RTMP server's process (``ServerConfig.http_addr``,
``rtmp serve --http 127.0.0.1:8080``) on threads of its own, with the standard
library only.  It is a small HTTP/1.1 server of its own rather than
``http.server``, so that every resource it spends is bounded:

* one accept thread (``rtmp-http``), which also samples the streams' byte counters
  once a second (:class:`rtmp.stats.RateMeter`);
* at most ``max_connections`` request threads (``rtmp-http-conn``); a connection
  beyond that, or beyond ``max_requests_per_second``, gets a canned ``503`` / ``429``
  from the accept thread and is closed at once;
* a request head (request line and headers) of at most ``max_header_bytes``
  (``431``), read within ``request_timeout`` seconds in total, however slowly
  it trickles in (slowloris: ``408``); a body of at most ``max_body_bytes`` (``413``);
* one request per connection (``Connection: close``), so nothing lingers.

Anything that is not an HTTP/1.x request gets ``400`` and a close; a path with a
``..`` segment, a NUL or a backslash (encoded or not) gets ``400``; an unknown path
``404``; a known path with the wrong method ``405``.

Authorization (refs/http-api.md): ``POST /api/connections/<id>/drop`` always needs
``Authorization: Bearer <http_token>``.  The read-only endpoints need it only when
the server is bound beyond loopback (and :class:`rtmp.ServerConfig` refuses such an
address without a token).  On loopback without a token, a request must name a
loopback host in ``Host`` (no DNS rebinding from a web page).  The page ``GET /``
holds no data; its script sends the token it finds in the address's fragment.

Nothing here touches the media path: the reports read the counters the publisher and
player threads keep anyway (:mod:`rtmp.stats`).
"""

from __future__ import annotations

import hmac
import itertools
import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple
from urllib.parse import unquote

from . import stats, statuspage
from .errors import RTMPError
from .transport import close_socket, shutdown_socket
from .url import is_loopback, parse_addr

if TYPE_CHECKING:  # pragma: no cover
    from .server import Server

__all__ = ["HTTPServer", "HTTPLimits", "HTTPError", "ROUTES"]

logger = logging.getLogger(__name__)

#: How often the accept thread looks at the stop event, and samples rates at most.
POLL_INTERVAL = 0.25
#: Seconds between two samples of the streams' byte counters.
SAMPLE_INTERVAL = 1.0

#: Every path served, and its methods (the connection paths have an id in the middle).
ROUTES = {
    "/": ("GET", "HEAD"),
    "/api/streams": ("GET", "HEAD"),
    "/api/connections": ("GET", "HEAD"),
    "/api/server": ("GET", "HEAD"),
    "/metrics": ("GET", "HEAD"),
    "/api/connections/<id>/drop": ("POST",),
    "/api/connections/<id>/reconnect": ("POST",),
}
_CONNECTION_ACTION = re.compile(r"^/api/connections/([A-Za-z0-9_.-]{1,64})/(drop|reconnect)$")
_REQUEST_START = re.compile(rb"^[A-Z]{1,16} ")
_DIGITS = re.compile(r"[0-9]+")
_TOKEN_CHARS = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 5.6.2 token
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

_REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 411: "Length Required",
    413: "Content Too Large", 421: "Misdirected Request", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
}


class HTTPError(RTMPError):
    """An HTTP request refused with ``status`` (4xx/5xx) and a short reason."""

    def __init__(self, status: int, message: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class _PeerGone(Exception):
    """The client closed before sending a whole request: nothing to answer."""


@dataclass(frozen=True)
class HTTPLimits:
    """The bounds of the HTTP side (refs/http-api.md, "Limits")."""

    max_connections: int = 16
    """HTTP connections served at once; more get ``503`` and a close."""
    max_requests_per_second: float = 100.0
    """Requests accepted per second (a token bucket as deep as one second); more get ``429``."""
    max_header_bytes: int = 8192
    """Request line and headers together; more get ``431``."""
    max_headers: int = 64
    """Header fields in one request; more get ``431``."""
    max_body_bytes: int = 1024
    """A request body (POST); larger ones get ``413``."""
    request_timeout: float = 5.0
    """Seconds to receive a whole request (head and body) and to send the answer."""


@dataclass
class _Request:
    method: str
    path: str
    version: str
    headers: Dict[str, str]
    peer: Optional[Tuple[str, int]] = None
    body: bytes = b""


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Dict[str, str] = field(default_factory=dict)


def _reconnect_options(body: bytes) -> Tuple[Optional[str], str]:
    """The optional JSON body of ``/reconnect``: ``{"tcUrl": str, "description": str}``."""
    if not body.strip():
        return None, ""
    try:
        options = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPError(400, "the body must be a JSON object") from None
    if not isinstance(options, dict) or set(options) - {"tcUrl", "description"}:
        raise HTTPError(400, 'the body may hold only "tcUrl" and "description"')
    tc_url, description = options.get("tcUrl"), options.get("description", "")
    if not isinstance(tc_url, (str, type(None))) or not isinstance(description, str):
        raise HTTPError(400, '"tcUrl" and "description" must be strings')
    return tc_url, description


def _json(doc: Any, status: int = 200) -> _Response:
    return _Response(status, (json.dumps(doc, sort_keys=False) + "\n").encode())


def _canned(status: int, message: str) -> bytes:
    """A whole response for the accept thread's refusals (no per-request work)."""
    body = (json.dumps({"error": message}) + "\n").encode()
    return (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
            f"Retry-After: 1\r\n\r\n").encode() + body


class HTTPServer:
    """The HTTP API of one :class:`rtmp.Server` (refs/http-api.md); bounded (:class:`HTTPLimits`).

    ``token``: the bearer token of ``--http-token``; without it, ``drop`` is refused
    (403) and ``addr`` must be a loopback address (ValueError otherwise).
    """

    def __init__(self, server: "Server", addr: str, token: Optional[str] = None,
                 limits: Optional[HTTPLimits] = None) -> None:
        host, _ = parse_addr(addr)
        self.loopback = is_loopback(host)
        if not self.loopback and not token:
            raise ValueError(f"HTTP address {addr!r} is not loopback: it needs an http_token")
        self.server = server
        self.addr = addr
        self.token = token
        self.limits = limits or HTTPLimits()
        self.meter = stats.RateMeter()
        self._listener: Optional[socket.socket] = None
        self._address: Optional[Tuple[str, int]] = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: Set[threading.Thread] = set()
        self._sockets: Set[socket.socket] = set()
        self._accept_thread: Optional[threading.Thread] = None
        self._ids = itertools.count(1)
        self._bucket = self.limits.max_requests_per_second
        self._bucket_time = time.monotonic()
        #: Answers by status code, and connections refused by the accept thread by reason.
        self.responses: Dict[int, int] = {}
        self.refused: Dict[str, int] = {"busy": 0, "rate": 0}

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def address(self) -> Tuple[str, int]:
        """The bound ``(host, port)``."""
        if self._address is None:
            raise RuntimeError("HTTP server not started")
        return self._address

    def start(self) -> None:
        """Bind, listen, and start the accept thread."""
        host, port = parse_addr(self.addr)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if not host and socket.has_dualstack_ipv6():
            listener = socket.create_server(("", port), family=socket.AF_INET6,
                                            dualstack_ipv6=True, backlog=64)
        else:
            listener = socket.create_server((host, port), family=family, backlog=64)
        listener.settimeout(POLL_INTERVAL)
        self._listener = listener
        self._address = listener.getsockname()[:2]
        thread = threading.Thread(target=self._accept_loop, name="rtmp-http")
        self._accept_thread = thread
        thread.start()
        logger.info("HTTP API on http://%s", stats.format_address(self._address))

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener, cut every request short and join every thread."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.close()
            except OSError:  # pragma: no cover
                pass
        with self._lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            shutdown_socket(sock)
        accept = self._accept_thread
        for thread in ([accept] if accept else []) + threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    # -- accepting ------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        next_sample = time.monotonic()
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= next_sample:
                self._sample()
                next_sample = now + SAMPLE_INTERVAL
            listener = self._listener
            if listener is None:
                return
            try:
                sock, peer = listener.accept()
            except (socket.timeout, BlockingIOError):
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    return
                logger.warning("HTTP accept failed: %s", exc)  # EMFILE and friends: back off
                time.sleep(POLL_INTERVAL)
                continue
            self._admit(sock, peer)

    def _sample(self) -> None:
        try:
            self.meter.sample(self.server.hub.streams())
        except Exception:  # noqa: BLE001 - a report never stops the server
            logger.exception("sampling the streams' counters failed")

    def _take_token(self) -> bool:
        """The request-rate token bucket (the accept thread only)."""
        now = time.monotonic()
        rate = self.limits.max_requests_per_second
        self._bucket = min(rate, self._bucket + (now - self._bucket_time) * rate)
        self._bucket_time = now
        if self._bucket < 1:
            return False
        self._bucket -= 1
        return True

    def _admit(self, sock: socket.socket, peer: Any) -> None:
        with self._lock:
            busy = len(self._threads) >= self.limits.max_connections
        reason = "busy" if busy else "" if self._take_token() else "rate"
        if reason:
            self.refused[reason] += 1
            response = _canned(503, "too many HTTP connections") if busy else \
                _canned(429, "too many HTTP requests")
            try:
                sock.setblocking(False)
                sock.send(response)
            except OSError:
                pass
            close_socket(sock)
            return
        thread = threading.Thread(target=self._serve, args=(sock, peer),
                                  name=f"rtmp-http-conn-{next(self._ids)}")
        with self._lock:
            self._threads.add(thread)
            self._sockets.add(sock)
        try:
            thread.start()
        except RuntimeError as exc:  # out of threads
            logger.warning("no thread for an HTTP request: %s", exc)
            with self._lock:
                self._threads.discard(thread)
                self._sockets.discard(sock)
            close_socket(sock)

    # -- one connection -------------------------------------------------------------------

    def _serve(self, sock: socket.socket, peer: Any) -> None:
        deadline = time.monotonic() + self.limits.request_timeout
        method, path = "", "-"
        try:
            try:
                request = self._read_request(sock, deadline)
                request.peer = (str(peer[0]), int(peer[1])) if peer else None
                method, path = request.method, request.path
                response = self._route(request)
            except HTTPError as exc:
                response = _json({"error": str(exc)}, exc.status)
                response.headers.update(exc.headers)
            except _PeerGone:
                return
            except Exception:  # noqa: BLE001 - one bad request never stops the server
                logger.exception("HTTP request failed")
                response = _json({"error": "internal error"}, 500)
            with self._lock:
                self.responses[response.status] = self.responses.get(response.status, 0) + 1
            if logger.isEnabledFor(logging.DEBUG):  # per request: debug only (floods)
                logger.debug("HTTP %s %s from %s: %d", method or "-", path,
                             stats.format_address(request.peer if method else None),
                             response.status)
            self._send(sock, response, deadline, head_only=method == "HEAD")
        finally:
            close_socket(sock)
            with self._lock:
                self._sockets.discard(sock)
                self._threads.discard(threading.current_thread())

    def _recv(self, sock: socket.socket, deadline: float, what: str) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HTTPError(408, f"{what} not received within "
                                 f"{self.limits.request_timeout:g} s")
        sock.settimeout(remaining)
        try:
            data = sock.recv(4096)
        except socket.timeout:
            raise HTTPError(408, f"{what} not received within "
                                 f"{self.limits.request_timeout:g} s") from None
        except OSError:
            raise _PeerGone() from None
        if not data:
            raise _PeerGone()
        return data

    def _read_request(self, sock: socket.socket, deadline: float) -> _Request:
        """RFC 9112 2-3: read and parse one request head (and a small body)."""
        limits = self.limits
        buf = bytearray()
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buf) > limits.max_header_bytes:
                raise HTTPError(431, f"request head over {limits.max_header_bytes} bytes")
            if len(buf) >= 17 and not _REQUEST_START.match(buf):
                raise HTTPError(400, "not an HTTP request")
            buf += self._recv(sock, deadline, "request head")
        if end > limits.max_header_bytes:
            raise HTTPError(431, f"request head over {limits.max_header_bytes} bytes")
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not _TOKEN_CHARS.match(parts[0]):
            raise HTTPError(400, "malformed request line")
        method, target, version = parts
        if not re.match(r"^HTTP/\d\.\d$", version):
            raise HTTPError(400, "not an HTTP request")
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            raise HTTPError(505, f"{version} is not supported")
        if len(lines) - 1 > limits.max_headers:
            raise HTTPError(431, f"more than {limits.max_headers} header fields")
        headers: Dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not _TOKEN_CHARS.match(name):
                raise HTTPError(400, "malformed header field")  # obs-fold included (RFC 9112 5.2)
            key = name.lower()
            if key in ("host", "content-length", "authorization") and key in headers:
                raise HTTPError(400, f"more than one {name} header")
            headers[key] = value.strip(" \t")
        body = bytes(buf[end + 4:])
        if "transfer-encoding" in headers:
            raise HTTPError(411, "chunked bodies are not accepted; send Content-Length")
        length_text = headers.get("content-length", "0")
        if not _DIGITS.fullmatch(length_text):  # ASCII only: str.isdigit() takes "²" (RFC 9110 8.6)
            raise HTTPError(400, "malformed Content-Length")
        significant = length_text.lstrip("0") or "0"
        if len(significant) > 18:  # too large anyway (and past 4,300 digits int() refuses it)
            raise HTTPError(413, f"body over {limits.max_body_bytes} bytes")
        length = int(significant)
        if length > limits.max_body_bytes:
            raise HTTPError(413, f"body over {limits.max_body_bytes} bytes")
        while len(body) < length:
            body += self._recv(sock, deadline, "request body")
        if not target.startswith("/"):
            raise HTTPError(400, "the request target must be a path")
        return _Request(method, target.partition("?")[0].partition("#")[0], version, headers,
                        body=body[:length])

    # -- routing --------------------------------------------------------------------------

    def _authorized(self, request: _Request) -> bool:
        """RFC 6750 2.1: ``Authorization: Bearer <token>``, compared in constant time."""
        if not self.token:
            return False
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), self.token.encode())

    def _check_read_access(self, request: _Request, authorized: bool) -> None:
        if authorized:
            return
        if not self.loopback:
            raise HTTPError(401, "this endpoint needs Authorization: Bearer <http_token>",
                            {"WWW-Authenticate": 'Bearer realm="rtmp"'})
        host = request.headers.get("host")
        if host is not None:
            name = host.rpartition(":")[0] if host.rpartition(":")[2].isdigit() else host
            name = name.strip("[]").lower()
            if name not in _LOOPBACK_NAMES and not is_loopback(name):
                raise HTTPError(421, f"Host {host!r} is not this loopback server")

    def _route(self, request: _Request) -> _Response:
        raw = request.path
        path = unquote(raw)
        segments = path.split("/")
        if ".." in segments or "\x00" in path or "\\" in path or "//" in path:
            raise HTTPError(400, "bad path")
        authorized = self._authorized(request)
        action = _CONNECTION_ACTION.match(path)
        route = "/api/connections/<id>/" + action.group(2) if action else path
        methods = ROUTES.get(route)
        if methods is None:
            raise HTTPError(404, "no such path")
        if request.method not in methods:
            raise HTTPError(405, f"{request.method} is not allowed here",
                            {"Allow": ", ".join(methods)})
        if action is not None:
            return self._connection_action(action.group(1), action.group(2), authorized,
                                           request.body)
        if path == "/":
            return _Response(200, statuspage.PAGE, "text/html; charset=utf-8",
                             {"Content-Security-Policy": statuspage.CONTENT_SECURITY_POLICY})
        self._check_read_access(request, authorized)
        handlers: Dict[str, Callable[[], _Response]] = {
            "/api/streams": lambda: _json(stats.streams_report(self.server, self.meter)),
            "/api/connections": lambda: _json(stats.connections_report(self.server)),
            "/api/server": lambda: _json(stats.server_report(self.server, self._address)),
            "/metrics": self._metrics,
        }
        return handlers[path]()

    def _connection_action(self, conn_id: str, action: str, authorized: bool,
                           body: bytes = b"") -> _Response:
        if not self.token:
            raise HTTPError(403, "no http_token is configured: connection actions are disabled")
        if not authorized:
            raise HTTPError(401, "this endpoint needs Authorization: Bearer <http_token>",
                            {"WWW-Authenticate": 'Bearer realm="rtmp"'})
        tc_url, description = _reconnect_options(body) if action == "reconnect" else (None, "")
        for conn in self.server.connections:
            if conn.id != conn_id:
                continue
            if action == "drop":
                logger.info("HTTP API: dropping connection %s", conn_id)
                conn.close()
                return _json({"dropped": conn_id})
            logger.info("HTTP API: asking connection %s to reconnect", conn_id)
            try:  # ERTMP Reconnect Request
                stated = conn.request_reconnect(tc_url, description)
            except RTMPError as exc:
                raise HTTPError(409, str(exc)) from None
            return _json({"reconnect": conn_id, "tcUrl": tc_url, "capsExReconnect": stated})
        raise HTTPError(404, f"no connection {conn_id}")

    def _metrics(self) -> _Response:
        with self._lock:
            responses = sorted(self.responses.items())
            refused = sorted(self.refused.items())
        extra: List[Tuple[str, str, str, List[Tuple[Dict[str, str], float]]]] = [
            ("rtmp_http_responses_total", "counter", "HTTP answers sent, by status code.",
             [({"code": str(code)}, count) for code, count in responses]),
            ("rtmp_http_refused_total", "counter",
             "HTTP connections refused at accept (busy: max_connections, rate: "
             "max_requests_per_second).",
             [({"reason": reason}, count) for reason, count in refused]),
        ]
        text = stats.prometheus_text(self.server, extra)
        return _Response(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")

    def _send(self, sock: socket.socket, response: _Response, deadline: float,
              head_only: bool = False) -> None:
        headers = {
            "Content-Type": response.content_type,
            "Content-Length": str(len(response.body)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Connection": "close",
            **response.headers,
        }
        head = f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Error')}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        try:
            sock.settimeout(max(0.1, deadline - time.monotonic() + self.limits.request_timeout))
            sock.sendall(head.encode("latin-1") + (b"" if head_only else response.body))
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        # Let the client read the answer before the close: drain what it still sends
        # (briefly and boundedly; a reset would destroy the answer).
        try:
            sock.settimeout(0.2)
            for _ in range(16):
                if not sock.recv(65536):
                    break
        except OSError:
            pass
