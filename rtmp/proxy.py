"""A transparent RTMP proxy that prints every message in both directions, decoded.

Each accepted client gets a connection to the real server; two threads copy
bytes unchanged, one per direction, and a :class:`~rtmp.trace.ProtocolTracer`
watches each direction (handshake blocks, messages, and with ``chunks=True``
every chunk header).  Because the bytes are relayed untouched, the proxy shows
exactly what two third-party programs say to each other.
"""

from __future__ import annotations

import itertools
import logging
import socket
import sys
import threading
from typing import Callable, List, Optional, TextIO, Tuple

from .trace import ProtocolTracer
from .url import parse_url

__all__ = ["Proxy"]

logger = logging.getLogger(__name__)


class Proxy:
    """Listen on ``host:port`` and relay every client to the server of ``upstream_url``."""

    def __init__(
        self,
        host: str,
        port: int,
        upstream_url: str,
        *,
        chunks: bool = False,
        output: Optional[TextIO] = None,
        connect_timeout: float = 10.0,
    ) -> None:
        parsed = parse_url(upstream_url)
        self.upstream = (parsed.host, parsed.port)
        self.chunks = chunks
        self.output = output or sys.stdout
        self.connect_timeout = connect_timeout
        self._listener = socket.create_server((host or "0.0.0.0", port))
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._accept_thread: Optional[threading.Thread] = None

    @property
    def address(self) -> Tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return host, port

    def start(self) -> None:
        self._listener.settimeout(0.2)
        self._accept_thread = threading.Thread(target=self._accept_loop, name="rtmp-proxy-accept")
        self._accept_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        for thread in list(self._threads):
            thread.join(timeout)

    def _print(self, line: str) -> None:
        with self._lock:
            self.output.write(line + "\n")
            self.output.flush()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, addr = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn_id = f"p{next(self._ids)}"
            thread = threading.Thread(target=self._session, args=(client, addr, conn_id),
                                      name=f"rtmp-proxy-{conn_id}")
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            thread.start()

    def _session(self, client: socket.socket, addr: Tuple[str, int], conn_id: str) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=self.connect_timeout)
        except OSError as exc:
            self._print(f"[{conn_id}] cannot reach {self.upstream[0]}:{self.upstream[1]}: {exc}")
            client.close()
            return
        server.settimeout(None)
        client.settimeout(None)
        with self._lock:
            self._sockets += [client, server]
        self._print(f"[{conn_id}] {addr[0]}:{addr[1]} <-> {self.upstream[0]}:{self.upstream[1]}")

        def emit(line: str) -> None:
            if self.chunks or "  chunk " not in line:
                self._print(f"[{conn_id}] {line}")

        up = ProtocolTracer("C->S", emit, client_side=True)
        down = ProtocolTracer("S->C", emit, client_side=False)
        other = threading.Thread(target=self._pump, args=(server, client, down.feed),
                                 name=f"rtmp-proxy-{conn_id}-down")
        other.start()
        self._pump(client, server, up.feed)
        other.join()
        for sock in (client, server):
            sock.close()
        with self._lock:
            self._sockets = [s for s in self._sockets if s not in (client, server)]
        self._print(f"[{conn_id}] closed")

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, observe: Callable[[bytes], None]) -> None:
        buffer = bytearray(65536)
        view = memoryview(buffer)
        try:
            while True:
                count = source.recv_into(buffer)
                if not count:
                    break
                data = bytes(view[:count])
                sink.sendall(data)
                observe(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass
