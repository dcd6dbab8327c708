"""RTMP 7.2.1.1 (tcUrl, app) and RTMP 7.2.2.1 / 7.2.2.6 (stream names): RTMP URLs.

``rtmp://[user[:password]@]host[:port]/app[/instance][/stream][?query]`` and the same
with ``rtmps://`` (RTMP over TLS).  The spec defines no URL syntax; it only names the
``app`` and ``tcUrl`` properties of ``connect`` (RTMP 7.2.1.1,
``protocol://servername:port/appName/appInstance``) and the stream name of ``play`` and
``publish``.  How a URL splits into those is what ffmpeg (``rtmp_open`` in
``libavformat/rtmpproto.c``) and librtmp (``RTMP_ParseURL``) do, and we follow ffmpeg:

* the first path segment is the application; when three or more segments follow the
  host, the second one is the application *instance* and belongs to ``app``
  (``/live/inst/name`` -> app ``live/inst``, stream ``name``) unless it contains a
  ``:`` (``/vod/mp4:dir/file.mp4`` -> app ``vod``);
* ``/ondemand/...`` keeps ``ondemand`` as the whole application;
* a stream ending in ``.flv`` loses the extension, one ending in ``.mp4``/``.f4v`` gets
  the ``mp4:`` prefix (RTMP 7.2.2.1 stream-name forms);
* a query string travels with the stream name when there is one (``name?key=abc``, as
  stream keys do), otherwise with the application;
* ``tcUrl`` is ``scheme://host:port/app`` with the port always written.

Credentials (``user:pass@``) are percent-decoded and never appear in ``tcUrl``.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

__all__ = ["DEFAULT_PORTS", "RTMPURL", "parse_url", "parse_addr", "is_loopback"]

logger = logging.getLogger(__name__)

#: Default ports: 1935 for RTMP (IANA "macromedia-fcs"), 443 for RTMP over TLS.
DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443}

#: Stream-name prefix for MP4-family files (RTMP 7.2.2.1).
_MP4_PREFIX = "mp4:"


@dataclass(frozen=True)
class RTMPURL:
    """A parsed RTMP URL: where to connect and the ``connect``/``publish``/``play`` names."""

    scheme: str
    """``"rtmp"`` or ``"rtmps"``."""
    host: str
    """Host name or address (IPv6 without brackets)."""
    port: int
    """TCP port (1935 or 443 when the URL gives none)."""
    app: str
    """The ``app`` property of ``connect`` (RTMP 7.2.1.1), instance included, query
    included when the URL has no stream name."""
    stream: str | None = None
    """The stream name for ``publish``/``play`` with its query, or None."""
    username: str | None = None
    """User name from ``user:pass@``, percent-decoded."""
    password: str | None = None
    """Password from ``user:pass@``, percent-decoded."""

    @property
    def tls(self) -> bool:
        """True for ``rtmps://``."""
        return self.scheme == "rtmps"

    @property
    def netloc(self) -> str:
        """``host:port`` with IPv6 addresses bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def tc_url(self) -> str:
        """The ``tcUrl`` of ``connect`` (RTMP 7.2.1.1): ``scheme://host:port/app``."""
        return f"{self.scheme}://{self.netloc}/{self.app}"

    def with_names(self, app: str | None = None, stream: str | None = None) -> RTMPURL:
        """A copy whose app and/or stream are replaced where given (config fallbacks)."""
        return replace(
            self,
            app=self.app if app is None else app,
            stream=self.stream if stream is None else stream,
        )

    def __str__(self) -> str:
        """The URL without credentials (safe to log)."""
        tail = f"/{self.stream}" if self.stream else ""
        return f"{self.scheme}://{self.netloc}/{self.app}{tail}"


def _split_app_stream(path: str) -> tuple[str, str | None]:
    """Split a URL path (no query, no leading slash) the way ffmpeg's ``rtmp_open`` does."""
    if path.startswith("ondemand/"):
        return "ondemand", path[len("ondemand/"):] or None
    first = path.find("/")
    if first < 0:
        return path, None
    second = path.find("/", first + 1)
    colon = path.find(":", first + 1)
    if second < 0 or (0 <= colon < second):
        # "app/stream", or an instance-looking segment that is really "mp4:dir/file".
        return path[:first], path[first + 1:] or None
    return path[:second], path[second + 1:] or None


def _normalise_stream(name: str) -> str:
    """RTMP 7.2.2.1: FLV names drop ``.flv``; MP4-family names get the ``mp4:`` prefix."""
    if ":" not in name and name.lower().endswith((".mp4", ".f4v")):
        return _MP4_PREFIX + name
    if name.lower().endswith(".flv"):
        return name[:-4]
    return name


def parse_url(url: str) -> RTMPURL:
    """Parse an ``rtmp://`` or ``rtmps://`` URL into :class:`RTMPURL`.

    Raises :class:`ValueError` for another scheme, a missing host or a bad port (a
    local mistake, not a protocol error).  The application may be empty when the URL
    has no path; the client then takes it from its configuration.
    """
    if not isinstance(url, str):
        raise TypeError(f"URL must be a str, not {type(url).__name__}")
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"unsupported URL scheme {parts.scheme!r} in {url!r}: use rtmp:// or rtmps://")
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in RTMP URL {url!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in RTMP URL {url!r}") from exc
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if port == 0:
        raise ValueError(f"port 0 in RTMP URL {url!r}")

    path = parts.path.lstrip("/")
    app, stream = _split_app_stream(path)
    if stream is not None:
        stream = _normalise_stream(stream)
    query = parts.query
    if query:
        # Query strings are passed through: with the stream (stream keys, tokens) when
        # there is one, else with the application, as ffmpeg's playpath/app carry them.
        if stream is not None:
            stream = f"{stream}?{query}"
        else:
            app = f"{app}?{query}"
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return RTMPURL(
        scheme=scheme,
        host=host,
        port=port,
        app=app,
        stream=stream,
        username=username,
        password=password,
    )


def parse_addr(addr: str, default_port: int | None = None) -> tuple[str, int]:
    """A listening or connecting address -> ``(host, port)``; ValueError if malformed.

    ``"host:port"``, ``"[v6]:port"`` and ``":port"`` (host ``""``: every interface).  With
    a ``default_port``, ``"1936"`` alone is a port and ``"host:"`` takes the default;
    without one the ``:port`` is required (the server's ``ServerConfig.addr``).
    """
    host, sep, port_text = addr.rpartition(":")
    if not sep:
        if default_port is None:
            raise ValueError(f"bad address {addr!r}: not host:port")
        host, port_text = "", addr
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if port_text or default_port is None:
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(f"bad address {addr!r}: port must be a number") from None
    else:
        port = default_port
    if not 0 <= port <= 65535:
        raise ValueError(f"bad address {addr!r}: port out of range (0..65535)")
    return host, port


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) names this machine only (RFC 1122
    3.2.1.3: 127.0.0.0/8, and ``::1``); ``""`` (every interface) and other names are not."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
