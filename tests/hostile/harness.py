"""RTMP 5 / 7: the hostile-client harness: a live server, a healthy pair, a raw peer.

Every hostile case runs against a live :class:`rtmp.Server` while a *healthy pair* keeps
streaming through it: our :class:`rtmp.Client` publishing a sample FLV in a loop (paced at
real time, timestamps growing across loops) and another :class:`rtmp.Client` playing it and
hashing every audio and video payload.  After each case :meth:`HostileEnv.assert_healthy`
proves the case cost nothing but the offending session:

* the healthy player received exactly the messages the publisher sent, in order, byte for
  byte (type, timestamp and SHA-1 of the payload), and is still receiving;
* a new session (handshake, ``connect``, ``createStream``) still works;
* the server's thread count, this process's open file descriptors and the server's
  connection count are back at their baseline within a few seconds;
* no session ended with an unexpected exception (``server.stats.errors`` is 0).

:class:`RawPeer` is the hostile client: a plain socket driven byte by byte, with an optional
valid handshake (:class:`rtmp.handshake.ClientHandshake`) and ``connect`` before the garbage.
Its :meth:`RawPeer.wait_closed` measures how long the server takes to hang up.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import rtmp
from rtmp import commands, flv
from rtmp.chunk import ChunkDecoder, ChunkEncoder
from rtmp.handshake import ClientHandshake
from rtmp.message import Message, MessageType
from rtmp.server import MAX_SPARE_THREADS

logger = logging.getLogger(__name__)

__all__ = [
    "HOSTILE_CONFIG",
    "HealthyPair",
    "HostileEnv",
    "LogCapture",
    "RawPeer",
    "fd_count",
    "running_server",
    "server_threads",
    "wait_until",
]

#: The shared server's limits: short timeouts so that silent hostile peers are cut in a
#: few seconds (the defaults are minutes), every other limit at its default.
HOSTILE_CONFIG: Dict[str, Any] = dict(
    handshake_timeout=2.0,
    read_timeout=3.0,
    write_timeout=3.0,
    idle_timeout=6.0,
)

#: The stream name the healthy pair uses.
HEALTHY_STREAM = "healthy"


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def fd_count() -> int:
    """Open file descriptors of this process (Linux /proc)."""
    return len(os.listdir("/proc/self/fd"))


def server_threads() -> List[str]:
    """Names of the live threads the server started (``rtmp-*``) that serve something.

    Spare connection threads (``rtmp-spare``, waiting to accept the next client) are left
    out: how many wait depends on the past load; :func:`spare_threads` bounds them.
    """
    return sorted(t.name for t in threading.enumerate()
                  if t.name.startswith("rtmp-") and t.name != "rtmp-spare")


def spare_threads() -> int:
    """Connection threads waiting for a client (``rtmp.server.MAX_SPARE_THREADS`` at most)."""
    return sum(1 for t in threading.enumerate() if t.name == "rtmp-spare")


@contextlib.contextmanager
def running_server(**overrides: Any) -> Iterator[rtmp.Server]:
    """A started :class:`rtmp.Server` on 127.0.0.1 and a free port; stopped on exit."""
    options: Dict[str, Any] = dict(HOSTILE_CONFIG)
    options.update(overrides)
    server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", **options))
    server.start()
    try:
        yield server
    finally:
        server.stop(timeout=10.0)


class LogCapture(logging.Handler):
    """Collects the records of the ``rtmp`` loggers from every thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            self.records.append(record)

    def mark(self) -> int:
        """A position; :meth:`since` returns the text logged after it."""
        with self._lock:
            return len(self.records)

    def since(self, mark: int) -> str:
        with self._lock:
            records = self.records[mark:]
        return "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}" for r in records)

    def wait_for(self, mark: int, *needles: str, timeout: float = 5.0) -> str:
        """Wait until every ``needle`` appears in the log after ``mark``; return that text."""
        wait_until(lambda: all(n in self.since(mark) for n in needles), timeout)
        text = self.since(mark)
        missing = [n for n in needles if n not in text]
        assert not missing, f"server never logged {missing!r}; it logged:\n{text[-3000:]}"
        return text


# -- the raw, hand-driven peer ---------------------------------------------------------------


class RawPeer:
    """A hostile client: a TCP socket we drive by hand (RTMP 5.2 / 5.3 as bytes)."""

    def __init__(self, address: Tuple[str, int], timeout: float = 5.0,
                 rcvbuf: Optional[int] = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Each send goes out at once, as our transport's (rtmp/transport.py) do: without
        # it, C2 and the connect command behind it waited out the server's delayed ACK
        # (some 40 ms a connection; 500 of them in test_resources.py).
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.address = address
        self.encoder = ChunkEncoder()
        self.decoder = ChunkDecoder(max_chunk_streams=1000)
        self.received: List[Message] = []
        #: How many messages of each type arrived (kept when ``received`` is consumed).
        self.counts: "collections.Counter[int]" = collections.Counter()
        self.eof = False

    # -- sending ---------------------------------------------------------------------------

    def send(self, data: bytes) -> bool:
        """Send raw bytes; False if the server already hung up (EPIPE / reset)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.eof = True
            return False

    def send_message(self, message: Message) -> bool:
        """Chunk ``message`` with our encoder (RTMP 5.3) and send it."""
        return self.send(self.encoder.encode(message))

    def handshake(self) -> None:
        """RTMP 5.2: a valid simple handshake (C0+C1, read S0+S1+S2, send C2)."""
        shaker = ClientHandshake(digest=False)
        self.sock.sendall(shaker.data_to_send())
        deadline = time.monotonic() + 5.0
        while not shaker.complete:
            assert time.monotonic() < deadline, "server did not finish the handshake"
            data = self.sock.recv(65536)
            assert data, "server closed during the handshake"
            shaker.receive_data(data)
            out = shaker.data_to_send()
            if out:
                self.sock.sendall(out)
        out = shaker.data_to_send()
        if out:
            self.sock.sendall(out)
        if shaker.trailing_data:
            self.decoder.receive_data(shaker.trailing_data)

    def connect(self, app: str = "live", object_encoding: int = 0) -> commands.Command:
        """RTMP 7.2.1.1: handshake, ``connect``, wait for ``_result``."""
        self.handshake()
        tc_url = f"rtmp://{self.address[0]}:{self.address[1]}/{app}"
        obj = commands.connect_command_object(app, tc_url, object_encoding=object_encoding)
        self.send_message(commands.connect(obj))
        return self.expect_command("_result")

    def create_stream(self, transaction_id: float = 2) -> int:
        """RTMP 7.2.1.3: ``createStream``; returns the message stream id."""
        self.send_message(commands.create_stream(transaction_id))
        reply = self.expect_command("_result")
        return int(reply.arguments[0])

    # -- receiving -------------------------------------------------------------------------

    def _pump(self, timeout: float) -> bool:
        """Receive once (up to ``timeout``); False at EOF or reset."""
        if self.eof:
            return False
        self.sock.settimeout(max(0.01, timeout))
        try:
            data = self.sock.recv(262144)
        except socket.timeout:
            return True
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.decoder.receive_data(data)
        for message in self.decoder.messages():
            self.counts[int(message.type)] += 1
            self.received.append(message)
        return True

    def read_until(self, predicate: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        """The first received message matching ``predicate`` (AssertionError otherwise)."""
        deadline = time.monotonic() + timeout
        index = 0
        while True:
            while index < len(self.received):
                message = self.received[index]
                index += 1
                if predicate(message):
                    del self.received[:index]
                    return message
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no matching message within {timeout} s"
            assert self._pump(remaining), "the server closed the connection"

    def expect_command(self, name: str, timeout: float = 5.0) -> commands.Command:
        """The next command called ``name`` (``_result``, ``onStatus``, ...)."""
        def match(message: Message) -> bool:
            if message.type not in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
                return False
            return commands.decode_command(message).name == name

        return commands.decode_command(self.read_until(match, timeout))

    def wait_closed(self, timeout: float) -> float:
        """Seconds until the server closes the connection; AssertionError after ``timeout``."""
        start = time.monotonic()
        deadline = start + timeout
        while not self.eof:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"the server kept the connection open for {timeout} s"
            try:
                self._pump(min(remaining, 0.5))
            except rtmp.RTMPError:
                # The server's own bytes need not parse (after our garbage); keep reading raw.
                self.decoder = ChunkDecoder(max_chunk_streams=1000)
        return time.monotonic() - start

    def is_open(self, wait: float = 0.3) -> bool:
        """True if the server has not closed the connection within ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not self._pump(deadline - time.monotonic()):
                return False
        return not self.eof

    def reset(self) -> None:
        """Close with SO_LINGER 0: the kernel sends a TCP RST instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:  # pragma: no cover
            pass

    def __enter__(self) -> "RawPeer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- the healthy pair ------------------------------------------------------------------------


def load_media(path: Path) -> List[Tuple[int, int, bytes]]:
    """The audio and video tags of an FLV as ``(type, timestamp, data)`` (FLV E.4)."""
    out: List[Tuple[int, int, bytes]] = []
    with flv.Reader(path) as reader:
        for tag in reader:
            if tag.type in (MessageType.AUDIO, MessageType.VIDEO):
                out.append((tag.type, tag.timestamp, bytes(tag.data)))
    if not out:
        raise RuntimeError(f"{path} has no audio or video tags")
    return out


Key = Tuple[int, int, str]


def _key(kind: int, timestamp: int, data: bytes) -> Key:
    return int(kind), timestamp & 0xFFFFFFFF, hashlib.sha1(data).hexdigest()


@dataclass
class HealthyPair:
    """A publisher looping a sample FLV and a player hashing what it receives."""

    url: str
    media: List[Tuple[int, int, bytes]]
    sent: List[Key] = field(default_factory=list)
    received: List[Key] = field(default_factory=list)
    errors: List[BaseException] = field(default_factory=list)
    checked: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.publisher = rtmp.Client(rtmp.ClientConfig(connect_timeout=10, read_timeout=10))
        self.player = rtmp.Client(rtmp.ClientConfig(connect_timeout=10, read_timeout=10))
        self._threads: List[threading.Thread] = []

    def start(self) -> None:
        # The player subscribes first, so it must get every message from the first one.
        self.player.connect(self.url)
        self.player.play(HEALTHY_STREAM)
        self.publisher.connect(self.url)
        self.publisher.publish(HEALTHY_STREAM)
        for target, name in ((self._play, "healthy-player"), (self._publish, "healthy-publisher")):
            thread = threading.Thread(target=self._guard, args=(target,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _guard(self, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:  # reported by check()
            if not self._stop.is_set():
                logger.exception("healthy pair failed")
                self.errors.append(exc)

    def _publish(self) -> None:
        """Send the sample in a loop at real-time pace; timestamps keep growing."""
        span = self.media[-1][1] + 40
        offset = 0
        start = time.monotonic()
        while not self._stop.is_set():
            for kind, timestamp, data in self.media:
                if self._stop.is_set():
                    return
                ts = offset + timestamp
                delay = start + ts / 1000.0 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                with self._lock:
                    self.sent.append(_key(kind, ts, data))
                message = Message(type=MessageType(kind), data=data, timestamp=ts,
                                  message_stream_id=self.publisher.stream_id or 1)
                self.publisher.write_message(message)
            offset += span

    def _play(self) -> None:
        while not self._stop.is_set():
            try:
                message = self.player.read_message(timeout=0.5)
            except (rtmp.TimeoutError, rtmp.StreamEnded):  # the healthy stream goes on
                continue
            if message.type in (MessageType.AUDIO, MessageType.VIDEO):
                with self._lock:
                    self.received.append(_key(message.type, message.timestamp, message.data))

    def check(self, min_new: int = 5, timeout: float = 10.0) -> None:
        """Every received message equals the sent one at its position; and more keep coming."""
        assert not self.errors, f"healthy pair failed: {self.errors[0]!r}"
        target = self.checked + min_new
        assert wait_until(lambda: len(self.received) >= target, timeout), (
            f"healthy player stalled at {len(self.received)} messages "
            f"(publisher sent {len(self.sent)})"
        )
        with self._lock:
            received = list(self.received)
            sent = list(self.sent[: len(received)])
        for index, (got, want) in enumerate(zip(received, sent)):
            assert got == want, f"healthy message {index}: received {got}, sent {want}"
        assert len(sent) == len(received), "the player received messages nobody sent"
        self.checked = len(received)
        assert not self.errors, f"healthy pair failed: {self.errors[0]!r}"

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5.0)
        self.publisher.close()
        self.player.close()


# -- the environment -------------------------------------------------------------------------


@dataclass
class HostileEnv:
    """The shared server, the healthy pair, the log, and the baseline to come back to."""

    server: rtmp.Server
    pair: HealthyPair
    log: LogCapture
    baseline_threads: List[str] = field(default_factory=list)
    baseline_fds: int = 0
    baseline_connections: int = 0

    @property
    def address(self) -> Tuple[str, int]:
        host, port = self.server.address
        return host, port

    @property
    def url(self) -> str:
        return f"rtmp://{self.address[0]}:{self.address[1]}/live"

    def peer(self, **kwargs: Any) -> RawPeer:
        return RawPeer(self.address, **kwargs)

    def take_baseline(self) -> None:
        self.baseline_threads = server_threads()
        self.baseline_fds = fd_count()
        self.baseline_connections = self.server.connection_count

    def assert_healthy(self, settle: float = 8.0) -> None:
        """The checks of the module docstring; ``settle`` bounds the wait for the baseline."""
        assert wait_until(lambda: self.server.connection_count <= self.baseline_connections,
                          settle), (
            f"server still has {self.server.connection_count} connections "
            f"(baseline {self.baseline_connections}): {self.server.connections}"
        )
        assert wait_until(lambda: server_threads() == self.baseline_threads, settle), (
            f"server threads {server_threads()} != baseline {self.baseline_threads}"
        )
        assert spare_threads() <= MAX_SPARE_THREADS, f"{spare_threads()} spare threads"
        assert wait_until(lambda: fd_count() <= self.baseline_fds, settle), (
            f"{fd_count()} file descriptors open, baseline {self.baseline_fds}"
        )
        assert self.server.stats.errors == 0, "a session crashed with an unexpected exception"
        # A new session still works end to end.
        with RawPeer(self.address) as fresh:
            fresh.connect()
            assert fresh.create_stream() >= 1
        self.pair.check()
        assert wait_until(lambda: fd_count() <= self.baseline_fds, settle)
