"""Test helpers for remote shared objects (RTMP 7.1.3 / 7.3.2): a raw peer and a server.

:class:`RawPeer` is our :class:`rtmp.Client` used below its shared-object API: it sends
shared-object messages it builds itself and reads the server's as they come (messages for
objects a client did not open through ``client.shared_object`` reach ``read_message``).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Iterator, List, Optional, Union

import rtmp
from rtmp.message import SHARED_OBJECT_TYPES, Message
from rtmp.shared_object import SharedObjectMessage, SOEvent, SOEventType, SOLimits, from_message, to_message

__all__ = ["RawPeer", "serve", "url_of", "event_types", "WAIT"]

#: The server sends a whole object in one message: read it without the client-side caps.
_READ_LIMITS = SOLimits(max_events=1 << 20, max_message_size=1 << 26)

#: Seconds to wait for a message that must come: a bound for a broken run, not a pace
#: (a loaded 2-core CI machine can take seconds for 100,000 slots).
WAIT = 30.0


def url_of(server: rtmp.Server, app: str = "app") -> str:
    host, port = server.address
    return f"rtmp://{host}:{port}/{app}"


def serve(**config: Any) -> rtmp.Server:
    """A started server on a free loopback port (stop it with ``server.stop()``)."""
    server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", **config))
    server.start()
    return server


def event_types(so: SharedObjectMessage) -> List[int]:
    return [int(event.type) for event in so.events]


class RawPeer:
    """A connection that speaks shared-object messages by hand."""

    def __init__(self, server: rtmp.Server, amf3: bool = False, app: str = "app") -> None:
        self.amf3 = amf3
        self.client = rtmp.Client(rtmp.ClientConfig(object_encoding=3 if amf3 else 0))
        self.client.connect(url_of(server, app))
        self._inbox: "Optional[queue.Queue[Union[Message, BaseException]]]" = None
        self._stop = threading.Event()
        self._reader: Optional[threading.Thread] = None

    def listen(self) -> "RawPeer":
        """Read on a thread of its own from now on, as a real user does while another
        peer is busy: a user that stops reading stops answering the server's pings and
        is ended after ``idle_timeout`` (RTMP 7.1.7).  :meth:`message` then takes what
        that thread read."""
        self._inbox = queue.Queue()
        self._reader = threading.Thread(target=self._read_on, name="so-peer-reader", daemon=True)
        self._reader.start()
        return self

    def _read_on(self) -> None:
        assert self._inbox is not None
        while not self._stop.is_set():
            try:
                msg = self.client.read_message(timeout=0.2)
            except rtmp.TimeoutError:
                continue
            except Exception as exc:  # noqa: BLE001 - handed to the test's next message()
                self._inbox.put(exc)
                return
            if msg.type in SHARED_OBJECT_TYPES:
                self._inbox.put(msg)

    def __enter__(self) -> "RawPeer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(WAIT)
        self.client.close()

    def drop(self) -> None:
        """Close the socket at once, without a goodbye (a peer that vanished)."""
        transport = self.client.transport
        if transport is not None:
            transport.close()

    def send(self, name: str, *events: SOEvent, persistent: bool = False, version: int = 0) -> None:
        self.client.write_message(to_message(SharedObjectMessage(
            name, version, persistent, tuple(events), self.amf3)))

    def send_raw(self, body: bytes, amf3: Optional[bool] = None) -> None:
        kind = rtmp.MessageType.SHARED_OBJECT_AMF3 if (self.amf3 if amf3 is None else amf3) \
            else rtmp.MessageType.SHARED_OBJECT_AMF0
        self.client.write_message(Message(kind, body))

    def message(self, timeout: float = WAIT) -> Message:
        """The next shared-object message (others are skipped)."""
        if self._inbox is not None:
            try:
                item = self._inbox.get(timeout=timeout)
            except queue.Empty:
                raise rtmp.TimeoutError(f"no shared-object message within {timeout} s") from None
            if isinstance(item, BaseException):
                raise item
            return item
        deadline = time.monotonic() + timeout
        while True:
            msg = self.client.read_message(timeout=max(0.01, deadline - time.monotonic()))
            if msg.type in SHARED_OBJECT_TYPES:
                return msg

    def recv(self, timeout: float = WAIT) -> SharedObjectMessage:
        return from_message(self.message(timeout), _READ_LIMITS)

    def use(self, name: str, persistent: bool = False) -> SharedObjectMessage:
        self.send(name, SOEvent.use(), persistent=persistent)
        return self.recv()

    def status(self, timeout: float = WAIT) -> SOEvent:
        """The next message, which must be one Status event."""
        so = self.recv(timeout)
        assert event_types(so) == [SOEventType.STATUS], so
        return so.events[0]

    def quiet(self, within: float = 0.3) -> bool:
        """True if no shared-object message arrives within ``within`` seconds."""
        try:
            self.message(within)
        except rtmp.TimeoutError:
            return True
        return False

    def drain(self, within: float = 0.3) -> Iterator[SharedObjectMessage]:
        while True:
            try:
                yield self.recv(within)
            except rtmp.TimeoutError:
                return
