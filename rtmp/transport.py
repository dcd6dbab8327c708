"""The blocking-socket layer: every read and write of an RTMP session's socket.

A :class:`Transport` drives the sans-IO handshake (RTMP 5.2) and
:class:`~rtmp.session.Session` (RTMP 5.3-6.2) over one TCP (or TLS) socket:

* reading happens on one thread at a time (:meth:`Transport.read_message`):
  ``recv_into`` a preallocated buffer, feed the session, hand back the next
  application message; protocol control replies the session queues
  (acknowledgements, ping responses) are written at once;
* writing is thread-safe (:meth:`Transport.write_message`): one lock guards
  the chunk encoder and ``sendall``, so chunks of two messages never mix
  (RTMP 5.3: a chunk is sent whole before the next one starts);
* closing can be graceful (:meth:`Transport.finish`): TLS close_notify, TCP
  half-close, then reading to the peer's end of file, which confirms that it read
  everything we sent.

The client's socket is opened here too (:func:`open_connection`, with
:func:`client_ssl_context` for ``rtmps://``); the server's listening socket, the
probe's raw sockets and the proxy's relay are their own.

Timeouts cost no extra system call on the usual path.  On Linux a plain TCP socket
stays in blocking mode: a read is one ``recv_into`` bounded by the kernel's
``SO_RCVTIMEO``, and a write is first tried at once with ``MSG_DONTWAIT`` (a reply
fits the socket buffer); only what does not fit waits with ``poll`` for room, within
``write_timeout`` for the whole write.  (A Python socket timeout would ``poll`` before
every ``recv`` and ``send``: two system calls each, and two hand-offs of the GIL
between the connection threads.)  TLS sockets, and other platforms, wait with
``poll`` before each read and use the socket timeout for writes.  ``poll``, not
``select``: descriptors past 1023 are common on a busy server.  ``socket.timeout``
(not yet the built-in ``TimeoutError`` on Python 3.9) and a timed-out kernel wait
become :class:`rtmp.TimeoutError`.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import ssl
import struct
import sys
import threading
import time
from typing import Callable, Dict, Iterable, List, Optional, Protocol, Sequence, Tuple, Union

from . import control, handshake
from .chunk import RAW_BYTES, Limits
from .errors import ConnectionClosedError, HandshakeError, RTMPError, TimeoutError, seconds_text
from .logs import connection_logger, trace_logger
from .message import Message
from .session import Session
from .trace import ProtocolTracer, tracing_enabled

__all__ = ["Transport", "TransportSettings", "transport_from_config", "READ_BUFFER_SIZE",
           "INITIAL_READ_BUFFER_SIZE", "client_ssl_context", "open_connection", "shutdown_socket",
           "close_socket"]

logger = logging.getLogger(__name__)

#: The most bytes asked of the kernel per ``recv_into`` (the read buffer's largest size).
READ_BUFFER_SIZE = 256 * 1024
#: The read buffer's size at first: it grows (x4, up to ``READ_BUFFER_SIZE``) each time a
#: read fills it, so idle sessions cost 16 KiB instead of 256 KiB and busy ones still get
#: large reads (500 idle sessions: 175 MB -> 55 MB peak RSS, see refs/hostile.md).
INITIAL_READ_BUFFER_SIZE = 16 * 1024

_Logger = Union[logging.Logger, logging.LoggerAdapter]  # type: ignore[type-arg]


class TransportSettings(Protocol):
    """What :func:`transport_from_config` reads of a client's or a server's config."""

    @property
    def read_timeout(self) -> float: ...
    @property
    def write_timeout(self) -> float: ...
    @property
    def strict(self) -> bool: ...
    @property
    def limits(self) -> Optional[Limits]: ...


def transport_from_config(
    sock: socket.socket, config: TransportSettings, *, role: str, conn_id: str, log: _Logger,
    digest: bool = True,
) -> Transport:
    """A :class:`Transport` with the timeouts, strictness and chunk limits of a
    :class:`~rtmp.client.ClientConfig` or :class:`~rtmp.server.ServerConfig`."""
    return Transport(sock, role=role, conn_id=conn_id, read_timeout=config.read_timeout,
                     write_timeout=config.write_timeout, digest=digest, strict=config.strict,
                     log=log, limits=config.limits)  # fmt: skip


class Transport:
    """One RTMP connection over a connected blocking socket (client or server role)."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        role: str,
        conn_id: str = "-",
        read_timeout: Optional[float] = 30.0,
        write_timeout: Optional[float] = 30.0,
        digest: bool = True,
        strict: bool = False,
        log: Optional[_Logger] = None,
        limits: Optional[Limits] = None,
        **limit_overrides: int,
    ) -> None:
        if role not in ("client", "server"):
            raise ValueError(f"role must be 'client' or 'server', not {role!r}")
        self.sock = sock
        self.role = role
        self.conn_id = conn_id
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.digest = digest
        self.strict = strict
        self.log: _Logger = log or connection_logger(__name__, conn_id)
        self.session = Session(
            strict=strict,
            log=self.log,
            limits=Limits.of(limits, **limit_overrides),  # the four Limits keywords still work
        )
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._buffer = bytearray(INITIAL_READ_BUFFER_SIZE)
        self._view = memoryview(self._buffer)
        self._closed = False
        self._eof = False
        #: The error of the write that found the peer gone (EPIPE, reset); reads go on.
        self.write_error: Optional[ConnectionClosedError] = None
        self.bytes_sent = 0
        self._unsent: Optional[bytes] = None  # what write_fanout_nowait could not send
        #: Called on the reading thread before each wait for bytes (fan-out flushes).
        self.before_wait: Optional[Callable[[], None]] = None
        self._trace_in: Optional[ProtocolTracer] = None
        self._trace_out: Optional[ProtocolTracer] = None
        if tracing_enabled():
            self.enable_trace()
        try:
            self.remote_addr: Optional[Tuple[str, int]] = sock.getpeername()[:2]
        except OSError:
            self.remote_addr = None
        #: Kernel timeouts on a blocking socket (see the module docstring), else poll.
        self._kernel_waits = KERNEL_TIMEOUTS and not isinstance(sock, ssl.SSLSocket)
        # SO_RCVTIMEO as last set; -1: unknown (an accepted socket inherits the listener's),
        # so the first read always sets it.
        self._armed_read_timeout: Optional[float] = -1.0
        if self._kernel_waits:
            if sock.gettimeout() is not None:
                sock.settimeout(None)
            # A per-call bound for anyone writing on ``sock`` directly (the probe's raw chunks).
            set_kernel_timeout(sock, socket.SO_SNDTIMEO, write_timeout)
        else:
            sock.settimeout(write_timeout)  # sendall's limit; reads wait in wait_readable()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover - not TCP (socketpair in tests)
            pass

    def enable_trace(self) -> None:
        """Explain every byte both ways on the ``rtmp.trace`` logger (the teaching trace)."""
        is_client = self.role == "client"

        def emit(line: str) -> None:
            trace_logger.debug("[%s] %s", self.conn_id, line)

        self._trace_in = ProtocolTracer("S->C" if is_client else "C->S", emit,
                                        client_side=not is_client)
        self._trace_out = ProtocolTracer("C->S" if is_client else "S->C", emit,
                                         client_side=is_client)

    # -- state --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_chunk_size(self) -> int:
        return self.session.in_chunk_size

    @property
    def out_chunk_size(self) -> int:
        return self.session.out_chunk_size

    @property
    def bytes_received(self) -> int:
        return self.session.bytes_received

    # -- handshake ----------------------------------------------------------------------

    def handshake(self, timeout: Optional[float] = 10.0) -> None:
        """RTMP 5.2: run the handshake for our role, within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        def now_ms() -> int:
            return int(time.monotonic() * 1000) & 0xFFFFFFFF

        shaker: Union[handshake.ClientHandshake, handshake.ServerHandshake]
        if self.role == "client":
            shaker = handshake.ClientHandshake(digest=self.digest, now_ms=now_ms,
                                               strict=self.strict)
        else:
            shaker = handshake.ServerHandshake(now_ms=now_ms, strict=self.strict)
        try:
            while True:
                out = shaker.data_to_send()
                if out:
                    self._sendall(out)
                if shaker.complete:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"handshake not complete after {seconds_text(timeout)} s (RTMP 5.2)")
                data = self._recv(remaining, during="handshake")
                shaker.receive_data(data)
        except TimeoutError as exc:
            raise TimeoutError(f"handshake not complete after {seconds_text(timeout)} s (RTMP 5.2)") from exc
        except ConnectionClosedError as exc:
            raise HandshakeError(f"peer closed the connection during the handshake: {exc}") from exc
        self.handshake_info = shaker
        trailing = shaker.trailing_data
        if trailing:
            self.session.receive_data(trailing)
        self.log.debug("handshake complete (RTMP 5.2.5)")

    # -- reading ------------------------------------------------------------------------

    def read_message(self, timeout: Optional[float] = None) -> Message:
        """The next application message; protocol control is handled inside.

        ``timeout`` defaults to ``read_timeout``; raises :class:`rtmp.TimeoutError`,
        :class:`ConnectionClosedError` at a clean EOF, :class:`ProtocolError`
        for a broken peer.
        """
        if timeout is None:
            timeout = self.read_timeout
        deadline: Optional[float] = None  # set before the first wait (not per message)
        with self._read_lock:
            session = self.session
            while True:
                message = session.next_message()
                if session.has_replies() and self.write_error is None:
                    try:
                        self._flush_replies()
                    except ConnectionClosedError as exc:
                        # The peer stopped reading (it closed after its last message): what
                        # it sent before is still in our buffer, so read on to its EOF.
                        self.write_error = exc
                        self.log.debug("reply not sent (%s); reading on", exc)
                if message is not None:
                    return message
                if self.before_wait is not None:
                    self.before_wait()  # (fan-out: wakes or writes to the players)
                if self._eof:
                    raise ConnectionClosedError("connection closed by peer")
                remaining: Optional[float] = None
                if timeout is not None:
                    if deadline is None:
                        deadline = time.monotonic() + timeout
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"no message within {seconds_text(timeout)} s")
                session.receive_data(self._recv(remaining, during="read"))

    def _arm_read_timeout(self, timeout: Optional[float]) -> None:
        """Set ``SO_RCVTIMEO`` for the next ``recv``, unless the armed value is within 1%."""
        armed = self._armed_read_timeout
        if timeout is None:
            if armed is None:
                return
        elif armed is not None and abs(armed - timeout) <= armed * 0.01:
            return
        set_kernel_timeout(self.sock, socket.SO_RCVTIMEO, timeout)
        self._armed_read_timeout = timeout

    def _recv(self, timeout: Optional[float], *, during: str) -> Union[bytes, memoryview]:
        """Wait up to ``timeout`` for bytes; b"" marks EOF (and sets ``_eof``).

        The result is a view of the read buffer, valid until the next read: every
        consumer (handshake, chunk decoder) copies what it keeps."""
        if self._closed:
            raise ConnectionClosedError("transport is closed")
        sock = self.sock
        deadline = None if timeout is None else time.monotonic() + timeout
        wait = timeout
        while self._kernel_waits:
            self._arm_read_timeout(wait)
            try:
                count = sock.recv_into(self._buffer)
                break
            except BlockingIOError:  # SO_RCVTIMEO expired (EAGAIN)
                if deadline is not None:
                    wait = deadline - time.monotonic()
                    if wait > 0:  # woken early (the armed value was rounded): wait the rest
                        continue
                raise TimeoutError(f"no data within {seconds_text(timeout)} s during {during}") from None
            except OSError as exc:
                raise self._lost(exc, during) from exc
        while not self._kernel_waits:
            pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
            if not pending:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    readable = wait_readable(sock, wait)
                except (OSError, ValueError) as exc:
                    raise ConnectionClosedError(f"socket closed during {during}") from exc
                if not readable:
                    raise TimeoutError(f"no data within {seconds_text(timeout)} s during {during}")
            try:
                count = sock.recv_into(self._buffer)
                break
            except ssl.SSLWantReadError:
                continue  # a TLS record is incomplete: wait for the rest
            except socket.timeout as exc:  # pragma: no cover - select said readable
                raise TimeoutError(f"recv timed out during {during}") from exc
            except OSError as exc:
                raise self._lost(exc, during) from exc
        if self._trace_in is not None and count:
            self._trace_in.feed(bytes(self._view[:count]))
        if count == 0:
            self._eof = True
            if during == "handshake":
                raise ConnectionClosedError("EOF")
        data = self._view[:count]
        if count == len(self._buffer) and count < READ_BUFFER_SIZE:
            # The peer sends faster than we read: a bigger buffer for the next reads
            # (``data`` keeps the old one alive until its consumer is done with it).
            self._buffer = bytearray(min(4 * count, READ_BUFFER_SIZE))
            self._view = memoryview(self._buffer)
        return data

    def _lost(self, exc: OSError, during: str) -> ConnectionClosedError:
        """What a failed ``recv`` means: our own close, or the connection gone."""
        if self._closed:
            return ConnectionClosedError("transport is closed")
        return ConnectionClosedError(f"connection lost during {during}: {exc}")

    # -- writing ------------------------------------------------------------------------

    def _sendall(self, data: bytes) -> None:
        if self._unsent is not None:  # the rest of a write_fanout_nowait goes first
            data, self._unsent = self._unsent + data, None
        try:
            if self._kernel_waits:
                _send_within(self.sock, data, self.write_timeout)
            else:
                self.sock.sendall(data)
        except OSError as exc:
            raise self._send_failed(exc) from exc
        self.bytes_sent += len(data)
        if self._trace_out is not None:
            self._trace_out.feed(data)

    def _send_parts(self, parts: List[bytes]) -> None:
        """Send ``parts`` in order as one stream of bytes: with ``sendmsg`` (no joined
        copy) on the kernel-timeout path, else joined."""
        if self._unsent is not None:  # the rest of a write_fanout_nowait goes first
            parts.insert(0, self._unsent)
            self._unsent = None
        if len(parts) == 1 or not self._kernel_waits:
            self._sendall(parts[0] if len(parts) == 1 else b"".join(parts))
            return
        try:
            self.bytes_sent += _sendmsg_within(self.sock, parts, self.write_timeout)
        except OSError as exc:
            raise self._send_failed(exc) from exc
        if self._trace_out is not None:
            for part in parts:
                self._trace_out.feed(part)

    def _send_failed(self, exc: OSError) -> RTMPError:
        """The error a failed send raises: :class:`rtmp.TimeoutError` (the transport is
        unusable then: a partial chunk may be on the wire) or ConnectionClosedError."""
        if isinstance(exc, socket.timeout):
            self._closed = True
            return TimeoutError(f"send did not finish within {seconds_text(self.write_timeout)} s")
        if exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.EBADF) or self._closed:
            return ConnectionClosedError(f"connection lost while sending: {exc}")
        return ConnectionClosedError(f"send failed: {exc}")

    def _flush_replies(self) -> None:
        with self._write_lock:
            data = self.session.pending_replies()
            if data:
                self._sendall(data)

    def write_message(self, message: Message) -> None:
        """Chunk and send one message (thread-safe)."""
        with self._write_lock:
            self._sendall(self.session.send(message))

    def write_messages(self, messages: Iterable[Message]) -> None:
        """Chunk several messages and send them with one ``sendall``."""
        with self._write_lock:
            send = self.session.send
            self._sendall(b"".join([send(m) for m in messages]))

    def write_repeated(self, messages: Tuple[Message, ...]) -> None:
        """:meth:`write_messages` for a batch that many sessions send alike (connect's
        replies): chunked once per chunk size (:meth:`rtmp.session.Session.send_repeated`)."""
        with self._write_lock:
            self._sendall(self.session.send_repeated(messages))

    def write_prechunked(self, data: bytes, message: Message) -> None:
        """Send bytes from ``chunk.encode_type0(message, self.out_chunk_size)`` (fan-out)."""
        with self._write_lock:
            self.session.note_sent(message)
            self._sendall(data)

    def write_fanout_nowait(self, items: Sequence[Tuple[Optional[bytes], Message, int]]
                            ) -> Optional[int]:
        """:meth:`write_fanout` without ever waiting (a publisher's thread writes to its
        players this way, :func:`rtmp.streams.defer_writes`).

        One ``sendmsg`` with ``MSG_DONTWAIT``.  Returns None when it did not try (another
        thread holds the write lock, or the socket has no kernel waits: TLS, other
        platforms), else how many bytes did not fit: those the transport keeps and sends
        before anything else written later, whichever thread writes (a chunk begun is
        never interleaved), so the caller must see that something writes again.
        """
        if not self._kernel_waits or self._closed:
            return None
        lock = self._write_lock
        if not lock.acquire(False):
            return None  # a write is running, maybe waiting for room: never wait on it
        try:
            parts = self._fanout_parts(items)
            if self._unsent is not None:
                parts.insert(0, self._unsent)
                self._unsent = None
            try:
                sent = self.sock.sendmsg(parts[:_IOV_MAX], (), _MSG_DONTWAIT)
            except OSError:  # full (EAGAIN), or broken: the next blocking write reports it
                sent = 0
            self.bytes_sent += sent
            index = 0
            while index < len(parts) and sent >= len(parts[index]):
                sent -= len(parts[index])
                if self._trace_out is not None:
                    self._trace_out.feed(parts[index])
                index += 1
            if index == len(parts):
                return 0
            first = memoryview(parts[index])
            if self._trace_out is not None and sent:
                self._trace_out.feed(first[:sent].tobytes())
            self._unsent = b"".join([first[sent:], *parts[index + 1:]])
            return len(self._unsent)
        finally:
            lock.release()

    def _fanout_parts(self, items: Sequence[Tuple[Optional[bytes], Message, int]]) -> List[bytes]:
        session = self.session
        chunk_size = session.encoder.chunk_size
        parts: List[bytes] = []
        sent_as_is: Dict[int, Message] = {}
        for data, message, made_for in items:
            if data is not None and made_for == chunk_size:
                sent_as_is[message.csid] = message
                parts.append(data)
                continue
            if data is not None and made_for == RAW_BYTES:
                parts.append(data)  # as they are: nothing for the encoder
                continue
            for noted in sent_as_is.values():
                session.note_sent(noted)
            sent_as_is.clear()
            parts.append(session.send(message))
            chunk_size = session.out_chunk_size
        for noted in sent_as_is.values():
            session.note_sent(noted)
        return parts

    def write_fanout(self, items: Sequence[Tuple[Optional[bytes], Message, int]]) -> None:
        """Send a live player's queued messages with one ``sendmsg`` (fan-out, thread-safe).

        Each item is ``(data, message, chunk_size)``: ``data`` from
        ``chunk.encode_type0(message, chunk_size)``, or None to chunk ``message`` here
        (so are bytes made for another chunk size than ours now).  The chunk encoder is
        told of pre-chunked messages once per chunk stream, with the last one (RTMP
        5.3.1.2.1: a type 0 header leaves nothing of the previous state).
        """
        with self._write_lock:
            self._send_parts(self._fanout_parts(items))

    def set_chunk_size(self, size: int) -> None:
        """RTMP 5.4.1: announce and switch to a new outgoing chunk size."""
        self.write_message(control.set_chunk_size(size))

    def send_window_ack_size(self, size: int) -> None:
        """RTMP 5.4.4: tell the peer how often to acknowledge."""
        self.write_message(control.window_ack_size(size))

    def send_set_peer_bandwidth(self, size: int, limit_type: int = 2) -> None:
        """RTMP 5.4.5: limit the peer's output."""
        self.write_message(control.set_peer_bandwidth(size, limit_type))

    # -- closing ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Wake a blocked reader on another thread (``SHUT_RDWR``); idempotent."""
        shutdown_socket(self.sock)

    @property
    def eof(self) -> bool:
        """True once the peer closed its side (a read returned end of file)."""
        return self._eof

    def finish(self, timeout: float) -> None:
        """End our side gracefully: no more writes, then read until the peer closes.

        Everything written so far is in the kernel's send buffer.  Closing now with
        unread input (acknowledgements, replies) makes the kernel send a reset, which
        throws away what the peer has not read yet.  Instead: on rtmps a TLS
        close_notify, then a TCP half-close (a FIN after our last byte), then read and
        discard until the peer's end of file, which confirms that it read everything we
        sent.  Raises :class:`rtmp.TimeoutError` after ``timeout`` seconds, or
        :class:`ConnectionClosedError` when the connection is lost (a reset).
        """
        deadline = time.monotonic() + timeout
        if self._eof:
            raise ConnectionClosedError("the peer had closed the connection before our end")
        if not self._write_lock.acquire(timeout=timeout):
            raise TimeoutError(f"a write still running after {timeout} s")
        try:
            self._half_close(deadline)
        finally:
            self._write_lock.release()
        if not self._read_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise TimeoutError(f"another reader still busy after {timeout} s")
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                try:
                    _discard_raw_until_eof(self.sock, self._buffer, deadline, timeout)
                except RTMPError:  # rtmp.TimeoutError is an OSError too
                    raise
                except OSError as exc:
                    raise self._lost(exc, "close") from exc
                self._eof = True
            while not self._eof:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the peer did not close within {timeout} s")
                try:
                    self._recv(remaining, during="close")
                except TimeoutError:
                    raise TimeoutError(f"the peer did not close within {timeout} s") from None
        finally:
            self._read_lock.release()
        _check_no_reset(self.sock)

    def _half_close(self, deadline: float) -> None:
        """(TLS close_notify, then) ``SHUT_WR``: the peer reads everything, then EOF."""
        sock = self.sock
        if self._unsent is not None:
            self._sendall(b"")  # the rest of a write_fanout_nowait
        try:
            if isinstance(sock, ssl.SSLSocket):
                _send_close_notify(sock, deadline)
                # socket.socket.shutdown, not SSLSocket.shutdown (which would drop the
                # TLS state): the FIN goes out after the close_notify record.
                socket.socket.shutdown(sock, socket.SHUT_WR)
            else:
                sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise self._lost(exc, "close") from exc

    def close(self, shutdown: bool = True) -> None:
        """Close the socket; safe to call twice and from any thread.  ``shutdown=False``
        when :meth:`shutdown` was called already (a second one is a failing system call)."""
        if self._closed and self.sock.fileno() == -1:
            return
        self._closed = True
        if shutdown:
            close_socket(self.sock)
            return
        try:
            self.sock.close()
        except OSError:  # pragma: no cover
            pass


_POLL_EVENTS = getattr(select, "POLLIN", 1) | getattr(select, "POLLPRI", 2) | \
    getattr(select, "POLLERR", 8) | getattr(select, "POLLHUP", 16)


def _poll(sock: socket.socket, events: int, timeout: Optional[float]) -> bool:
    """One ``poll`` of ``sock`` for ``events``, rounding ``timeout`` up to milliseconds."""
    poller = select.poll()
    poller.register(sock.fileno(), events)
    return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000 + 0.999))))


def wait_writable(sock: socket.socket, timeout: Optional[float]) -> bool:
    """Wait until ``sock`` has room to send (or an error, which ``send`` then reports);
    False after ``timeout`` seconds."""
    return _poll(sock, select.POLLOUT, timeout)


#: Linux: the kernel bounds a blocking ``recv``/``send`` (``SO_RCVTIMEO``/``SO_SNDTIMEO``)
#: and ``send`` takes ``MSG_DONTWAIT``; the fast path of :class:`Transport` needs both.
KERNEL_TIMEOUTS = sys.platform.startswith("linux") and hasattr(socket, "MSG_DONTWAIT")
_MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)


def set_kernel_timeout(sock: socket.socket, option: int, timeout: Optional[float]) -> None:
    """``SO_RCVTIMEO``/``SO_SNDTIMEO`` as a ``struct timeval``: None waits forever, any
    other value at least a microsecond (a zero timeval would mean forever too)."""
    if timeout is None:
        seconds, micros = 0, 0
    else:
        seconds, micros = divmod(max(1, int(timeout * 1_000_000 + 0.5)), 1_000_000)
    sock.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", seconds, micros))


def wait_readable(sock: socket.socket, timeout: Optional[float]) -> bool:
    """Wait until ``sock`` has data, EOF or an error; False after ``timeout`` seconds.

    Uses ``poll`` where the platform has it: ``select`` raises ValueError for
    descriptors above 1023, which a busy server reaches.
    """
    if hasattr(select, "poll"):
        return _poll(sock, _POLL_EVENTS, timeout)
    readable, _, _ = select.select([sock], [], [], timeout)  # pragma: no cover - no poll
    return bool(readable)


def shutdown_socket(sock: socket.socket) -> None:
    """Shut both directions, which wakes a thread blocked on ``sock``; errors ignored."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def close_socket(sock: socket.socket) -> None:
    """:func:`shutdown_socket`, then close; the errors of a socket already gone are ignored."""
    shutdown_socket(sock)
    try:
        sock.close()
    except OSError:  # pragma: no cover
        pass


def client_ssl_context(ca_file: Optional[str] = None, insecure: bool = False) -> ssl.SSLContext:
    """The TLS settings of an ``rtmps://`` client.

    The system's trusted certificates, plus ``ca_file`` (a PEM file, for a server with a
    self-signed or private certificate) when given.  ``insecure=True`` turns certificate and
    host name checks off: the connection is still encrypted but anyone may be on the other end.
    """
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load CA file {ca_file!r}: {exc}") from exc
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def open_connection(
    host: str,
    port: int,
    *,
    timeout: float,
    ssl_context: Optional[ssl.SSLContext] = None,
    server_hostname: Optional[str] = None,
) -> socket.socket:
    """Connect a TCP (or TLS, for rtmps) socket within ``timeout`` seconds."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.timeout as exc:
        raise TimeoutError(f"connect to {host}:{port} timed out after {seconds_text(timeout)} s") from exc
    except OSError as exc:
        raise ConnectionClosedError(f"cannot connect to {host}:{port}: {exc}") from exc
    if ssl_context is not None:
        try:
            sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise RTMPError(
                f"TLS: the certificate of {host}:{port} is not trusted "
                f"({exc.verify_message or exc.reason}); trust it with ClientConfig.ca_file "
                f"or skip the check with ClientConfig.tls_insecure") from exc
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            raise RTMPError(f"TLS handshake with {host}:{port} failed: {exc}") from exc
    return sock


def _send_within(sock: socket.socket, data: bytes, timeout: Optional[float]) -> None:
    """Send ``data`` on a blocking socket: at once if it fits (``MSG_DONTWAIT``), else as
    room appears, all of it within ``timeout`` (the kernel-timeout path of
    :class:`Transport`; raises ``socket.timeout`` or OSError)."""
    try:
        sent = sock.send(data, _MSG_DONTWAIT)
    except BlockingIOError:
        sent = 0
    if sent == len(data):
        return
    deadline = None if timeout is None else time.monotonic() + timeout
    view = memoryview(data)[sent:]
    while view:
        _await_writable(sock, deadline)
        try:
            view = view[sock.send(view, _MSG_DONTWAIT):]
        except BlockingIOError:
            continue


#: The most buffers one ``sendmsg`` takes (POSIX IOV_MAX; Linux: 1024).
_IOV_MAX = 1024


def _sendmsg_within(sock: socket.socket, parts: List[bytes], timeout: Optional[float]) -> int:
    """:func:`_send_within` for several buffers in order, with ``sendmsg`` (the kernel
    gathers them: no joined copy); returns the bytes sent (all of them)."""
    total = sum(len(part) for part in parts)
    deadline: Optional[float] = None
    pending: List[Union[bytes, memoryview]] = list(parts)
    left = total
    while True:
        try:
            sent = sock.sendmsg(pending[:_IOV_MAX], (), _MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        left -= sent
        if not left:
            return total
        # Drop what went out; the first part left may have gone out in part.
        index = 0
        while sent >= len(pending[index]):
            sent -= len(pending[index])
            index += 1
        del pending[:index]
        if sent:
            pending[0] = memoryview(pending[0])[sent:]
        if deadline is None and timeout is not None:
            deadline = time.monotonic() + timeout
        _await_writable(sock, deadline)


def _await_writable(sock: socket.socket, deadline: Optional[float]) -> None:
    """Wait until ``sock`` can take more bytes, until ``deadline`` (``time.monotonic()``;
    None: no limit); raises ``socket.timeout`` past it, OSError if the socket was closed."""
    wait = None if deadline is None else deadline - time.monotonic()
    try:
        writable = (wait is None or wait > 0) and wait_writable(sock, wait)
    except ValueError as exc:  # closed by another thread: no descriptor left to poll
        raise OSError(errno.EBADF, "socket closed") from exc
    if not writable:
        raise socket.timeout("timed out")


# -- the graceful close of Transport.finish ------------------------------------------------


def _check_no_reset(sock: socket.socket) -> None:
    """After the peer's end of file: a reset that came with it means our last bytes met a
    closed socket (the peer closed on its own, not after reading them)."""
    try:
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    except OSError:  # pragma: no cover - the socket is open here
        return
    if error:
        raise ConnectionClosedError(f"connection lost during close: {os.strerror(error)}")


def _send_close_notify(sock: ssl.SSLSocket, deadline: float) -> None:
    """TLS 1.2 7.2.1 / TLS 1.3 6.1: send close_notify without waiting for the peer's.

    A TCP FIN alone is a truncation to the peer's TLS layer (OpenSSL answers it with a
    ``decode_error`` alert).  ``unwrap()`` on a non-blocking socket sends the alert and
    stops at ``SSLWantReadError``: the peer's close_notify is not there yet, and will not
    be before the peer read ours.
    """
    previous = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        while True:
            try:
                sock.unwrap()
                return  # the peer's close_notify had come already
            except ssl.SSLWantReadError:
                return  # ours is sent
            except ssl.SSLError as exc:
                if exc.reason != "APPLICATION_DATA_AFTER_CLOSE_NOTIFY":
                    raise
                return  # ours is sent; unwrap() then met the peer's replies
            except ssl.SSLWantWriteError:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not wait_writable(sock, remaining):
                    raise TimeoutError("no room to send the TLS close_notify") from None
    finally:
        sock.settimeout(previous)


def _discard_raw_until_eof(sock: ssl.SSLSocket, buffer: bytearray, deadline: float,
                          timeout: float) -> None:
    """After our close_notify, read the TCP stream undecrypted (into ``buffer``) until the
    peer's FIN.

    OpenSSL refuses application data once close_notify is sent
    (``APPLICATION_DATA_AFTER_CLOSE_NOTIFY``), and what the peer still sends
    (acknowledgements, replies, its own close_notify) is discarded anyway: only its end
    of file matters.  A failed read raises OSError, ``deadline`` passing
    :class:`rtmp.TimeoutError` (its message names ``timeout``).
    """
    raw_recv = socket.socket.recv_into  # the plain TCP read under the TLS layer
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not wait_readable(sock, remaining):
            raise TimeoutError(f"the peer did not close within {timeout} s")
        try:
            count = raw_recv(sock, buffer, 0, socket.MSG_DONTWAIT)
        except BlockingIOError:
            continue
        if count == 0:
            return
