"""The server's configuration (:class:`ServerConfig`) and a connection's life
(:class:`ConnectionState`); both are importable from :mod:`rtmp.server` as before."""

from __future__ import annotations

import enum
import os
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from .chunk import MAX_CHUNK_SIZE, Limits
from .config import check_connection_settings
from .message import Message, StreamType
from .streams import DEFAULT_MAX_GOP_BYTES, DEFAULT_MAX_QUEUE_BYTES
from .url import parse_addr

if TYPE_CHECKING:
    from .server import ServerConnection

__all__ = ["ServerConfig", "ConnectionState", "OnConnect", "OnDisconnect", "OnPublish",
           "OnPlay", "OnMessage"]

OnConnect = Callable[["ServerConnection"], Any]
OnDisconnect = Callable[["ServerConnection"], Any]
OnPublish = Callable[["ServerConnection", str, StreamType], Any]
OnPlay = Callable[["ServerConnection", str], Any]
OnMessage = Callable[["ServerConnection", Message], Any]


@dataclass
class ServerConfig:
    """Configuration of :class:`Server` (refs/api.md names first, then limits and switches)."""

    addr: str = ":1935"
    """``"host:port"`` to listen on; an empty host means every interface, port 0 a free port."""
    read_timeout: float = 30.0
    """Seconds to wait for the next message from a peer that is not playing."""
    write_timeout: float = 30.0
    """Seconds a send may block; a player that stalls longer is disconnected."""
    handshake_timeout: float = 10.0
    """Seconds for the TLS and RTMP 5.2 handshakes, and for a refused client's ``connect``."""
    chunk_size: int = 4096
    """Outgoing chunk size announced after ``connect`` (RTMP 5.4.1)."""
    window_ack_size: int = 2_500_000
    """Window Acknowledgement Size and Set Peer Bandwidth sent after ``connect`` (RTMP 5.4.4/5)."""
    max_connections: int = 1000
    """Concurrent connections; the next one is refused with ``NetConnection.Connect.Rejected``."""
    on_connect: Optional[OnConnect] = None
    """``on_connect(conn)`` after a valid ``connect``; raising rejects the connection."""
    on_disconnect: Optional[OnDisconnect] = None
    """``on_disconnect(conn)`` when a connection that was accepted ends."""
    on_publish: Optional[OnPublish] = None
    """``on_publish(conn, stream_name, stream_type)``; raising sends ``NetStream.Publish.BadName``."""
    on_play: Optional[OnPlay] = None
    """``on_play(conn, stream_name)``; raising sends ``NetStream.Play.Failed``."""
    on_message: Optional[OnMessage] = None
    """``on_message(conn, msg)``: publishers' media/data and the commands the server does
    not handle; raising drops that message (or answers the call with ``_error``)."""
    require_auth: bool = False
    """Require the ``authmod=adobe`` challenge-response (AUTH-ADOBE) from publishers: a
    ``connect`` that presents an auth query or calls itself a publisher (``type:
    "nonprivate"``, as ffmpeg, OBS and librtmp send) is challenged; any other connect is
    accepted, and its ``publish`` refused with ``NetStream.Publish.BadName`` and the
    AUTH-ADOBE stage-0 text, so players (rtmpdump, ffplay) need no credentials."""
    require_auth_players: bool = False
    """Challenge every ``connect``, players' too (implies ``require_auth``).  librtmp
    players (rtmpdump, GStreamer) do not answer the challenge and cannot play then."""
    username: Optional[str] = None
    """The user name accepted when ``require_auth`` is set."""
    password: Optional[str] = None
    """The password of ``username``."""
    record_dir: Optional[Union[str, "os.PathLike[str]"]] = None
    """Where ``record``/``append`` publishing writes FLV files and where VOD play reads them."""
    ssl_context: Optional[ssl.SSLContext] = None
    """Serve ``rtmps`` (RTMP over TLS) with this server-side context."""
    idle_timeout: Optional[float] = 300.0
    """Seconds a playing connection may stay silent (it is pinged every ``read_timeout``)."""
    max_message_size: int = 16 * 1024 * 1024
    """Largest message a peer may send (bytes); larger ones end the connection."""
    max_chunk_streams: int = 64
    """Chunk streams a peer may have open at once (RTMP 5.3.1.1)."""
    max_pending_bytes: int = 16 * 1024 * 1024
    """Bytes all of a peer's partly received messages may announce together (RTMP
    5.3.1.1: one per chunk stream); past it the session ends.  Bounds a connection's
    reassembly memory, which ``max_message_size`` x ``max_chunk_streams`` does not."""
    max_chunk_size: int = MAX_CHUNK_SIZE
    """Largest Set Chunk Size a peer may announce (RTMP 5.4.1); a larger one ends the
    session.  The default is the protocol's own bound, 0x7FFFFFFF: message sizes are
    bounded by ``max_message_size`` whatever the chunk size."""
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES
    """Byte budget of one live player's send queue; beyond it whole frames are dropped."""
    max_gop_bytes: int = DEFAULT_MAX_GOP_BYTES
    """Largest GOP kept for late joiners; a longer one is not cached."""
    max_connections_per_ip: Optional[int] = None
    """Concurrent connections from one address (None: no limit)."""
    max_amf_depth: int = 32
    """Deepest nesting of objects/arrays accepted in a command (AMF0 2.5, AMF3 3.12);
    deeper commands end the session.  The AMF decoders' own limit (64) bounds the work
    done before this check."""
    strict: bool = False
    """Refuse the deviations real peers force (media on msid 0, publish without
    createStream, ...) instead of tolerating them with a warning."""

    def __post_init__(self) -> None:
        check_connection_settings(
            self, timeouts=("read_timeout", "write_timeout", "handshake_timeout"),
            positive=("max_queue_bytes",), limits=self.limits,
        )  # fmt: skip
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.require_auth_players:
            self.require_auth = True
        if self.require_auth and (not self.username or self.password is None):
            raise ValueError("require_auth needs username and password")
        parse_addr(self.addr)

    @property
    def limits(self) -> Limits:
        """The four chunk-decoder limits above as one :class:`rtmp.chunk.Limits`."""
        return Limits(
            max_message_size=self.max_message_size,
            max_chunk_streams=self.max_chunk_streams,
            max_pending_bytes=self.max_pending_bytes,
            max_chunk_size=self.max_chunk_size,
        )


class ConnectionState(enum.Enum):
    """The life of one server connection."""

    HANDSHAKING = "handshaking"
    """TLS and RTMP 5.2 handshakes."""
    CONNECTING = "connecting"
    """Handshake done; waiting for ``connect`` (RTMP 7.2.1.1)."""
    CONNECTED = "connected"
    """``connect`` accepted."""
    PUBLISHING = "publishing"
    """At least one stream is being published (RTMP 7.2.2.6)."""
    PLAYING = "playing"
    """At least one stream is being played (RTMP 7.2.2.1)."""
    CLOSED = "closed"
    """The session ended."""
