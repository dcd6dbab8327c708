"""RTMP 7.3.2 [de-facto]: the client's remote shared objects (Flash's ``SharedObject.getRemote``).

:meth:`rtmp.Client.shared_object` sends Use (RTMP 7.1.3 event 1) and returns a
:class:`RemoteSharedObject`, whose :attr:`~RemoteSharedObject.data` the server keeps in
step: its answer to Use (Use Success, Clear, one Change per slot), then a Change or
Remove whenever any user changes a slot, and a Success when our own change was accepted.
``set``, ``delete`` and ``send`` send Request Change, Request Remove and SendMessage.

No thread of its own: the shared-object messages are handled wherever the client reads
(``read_message``, ``messages()``, the replies of commands, a publisher's look at incoming
traffic, and :meth:`RemoteSharedObject.wait_synced` / :meth:`~RemoteSharedObject.wait_until`),
and the callbacks (``on_change``, ``on_remove``, ``on_message``, ``on_status``) run on that
thread.  :attr:`~RemoteSharedObject.data` holds what the server confirmed: our own
``set`` shows there once its Success arrives.

The server answers one connection's requests in order (Success, or Status with level
``error`` for a refusal; Remove; the SendMessage echo), so the requests not yet answered
are a queue and :attr:`~RemoteSharedObject.synced` is "Use answered and nothing
pending".  An AMF3 connection (``objectEncoding`` 3) speaks message type 16, an AMF0 one
type 19 (RTMP 7.1.3).  Messages for objects never used through this API go to the
application as before; those for an object we released (or whose Use was refused) that
were on their way are dropped.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple, TypeVar, Union

from .errors import CommandError, ConnectionClosedError, ProtocolError
from .message import Message
from .shared_object import (
    FLOW_CLAUSE,
    SharedObjectMessage,
    SOEvent,
    SOEventType,
    SOLimits,
    from_message,
    to_message,
)

__all__ = ["RemoteSharedObject", "SharedObjects", "SERVER_LIMITS"]

_T = TypeVar("_T")
_Logger = Union[logging.Logger, logging.LoggerAdapter]  # type: ignore[type-arg]

#: What a server's shared-object message may hold: the whole object arrives in one (the
#: answer to Use), so more events than a server accepts from a client.
SERVER_LIMITS = SOLimits(max_events=1 << 20, max_message_size=64 * 1024 * 1024)

Pump = Callable[[Callable[[], Optional[bool]], str, float], Any]
"""``pump(check, what, deadline)``: read and dispatch messages until ``check()`` is not
None (:meth:`rtmp.client_connection.ClientConnection.pump_until`)."""

# One request not yet answered: ("change", key, value), ("remove", key, None),
# ("send", handler, the event as encoded by SharedObjects.encoded).
_Pending = Tuple[str, str, Any]


class RemoteSharedObject:
    """One shared object as the client sees it (RTMP 7.1.3, 7.3.2 [de-facto]).

    ``data`` is the object's slots as the server confirmed them (read it, change it with
    :meth:`set` and :meth:`delete`); ``version`` the server's version; ``synced`` is true
    once the server answered Use and every request of ours.  Callbacks (set them as
    attributes, or through :meth:`rtmp.Client.shared_object`): ``on_change(key, value)``,
    ``on_remove(key)``, ``on_message(handler, args)``, ``on_status(code, level)``.
    """

    def __init__(self, owner: "SharedObjects", name: str, persistent: bool) -> None:
        self._owner = owner
        self.name = name
        self.persistent = persistent
        self.data: Dict[str, Any] = {}
        """The slots, as the server last said (do not change it directly)."""
        self.version = 0
        """The object's version in the server's last message (RTMP 7.1.3 [de-facto])."""
        self.last_status: Optional[Tuple[str, str]] = None
        """The last Status event: ``(code, level)``."""
        self.on_change: Optional[Callable[[str, Any], Any]] = None
        self.on_remove: Optional[Callable[[str], Any]] = None
        self.on_message: Optional[Callable[[str, Tuple[Any, ...]], Any]] = None
        self.on_status: Optional[Callable[[str, str], Any]] = None
        self._used = False  # Use Success received
        self._refused: Optional[Tuple[str, str]] = None  # the Status that refused our Use
        self._released = False
        self._lock = threading.Lock()
        self._pending: Deque[_Pending] = collections.deque()

    def __repr__(self) -> str:
        state = "released" if self._released else "synced" if self.synced else "syncing"
        return f"<RemoteSharedObject {self.name!r} v{self.version} {len(self.data)} slots {state}>"

    # -- state ----------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """The server answered Use, and every ``set``/``delete``/``send`` since."""
        return self._used and not self._pending

    @property
    def released(self) -> bool:
        """:meth:`release` was called or the connection closed."""
        return self._released

    @property
    def pending(self) -> int:
        """Requests the server has not answered yet."""
        return len(self._pending)

    # -- requests -------------------------------------------------------------------------

    def _request(self, event: SOEvent, pending: _Pending) -> None:
        if self._released:
            raise ConnectionClosedError(f"shared object {self.name!r} was released")
        with self._lock:
            self._pending.append(pending)
        try:
            self._owner.send(self, event)
        except BaseException:
            with self._lock:
                if self._pending and self._pending[-1] is pending:
                    self._pending.pop()
            raise

    def set(self, key: str, value: Any) -> None:
        """Request Change (RTMP 7.1.3 event 3): ``data[key]`` becomes ``value`` once the
        server's Success arrives; every other user gets a Change."""
        if not isinstance(key, str):
            raise TypeError("shared object slot names are str")
        self._request(SOEvent.request_change(key, value), ("change", key, value))

    def delete(self, key: str) -> None:
        """Request Remove (RTMP 7.1.3 event 10): every user, we too, gets a Remove."""
        if not isinstance(key, str):
            raise TypeError("shared object slot names are str")
        self._request(SOEvent.request_remove(key), ("remove", key, None))

    def send(self, handler: str, *args: Any) -> None:
        """SendMessage (RTMP 7.1.3 event 6): ``handler(*args)`` on every user, we too."""
        event = SOEvent.send_message(handler, *args)
        # Every user gets the same event: our echo is told from another user's SendMessage
        # of the same handler by its arguments, compared as encoded (a tuple arrives as
        # an array, 2 as 2.0, and NaN is not == NaN).
        self._request(event, ("send", handler, self._owner.encoded(self, event)))

    def release(self) -> None:
        """Release (RTMP 7.1.3 event 2): stop using the object (also done by ``close``)."""
        if self._released:
            return
        self._released = True
        self._owner.forget(self)
        try:
            self._owner.send(self, SOEvent.release())
        except (ConnectionClosedError, OSError):
            pass

    # -- waiting --------------------------------------------------------------------------

    def wait_synced(self, timeout: Optional[float] = None) -> "RemoteSharedObject":
        """Read (and dispatch) until :attr:`synced`; returns self.

        Raises :class:`rtmp.CommandError` (``.code``) when the server refused the Use,
        :class:`rtmp.TimeoutError` after ``timeout`` (default ``read_timeout``) seconds.
        """
        self.wait_until(lambda data: True, timeout)
        return self

    def wait_until(self, predicate: Callable[[Dict[str, Any]], Any],
                   timeout: Optional[float] = None) -> "RemoteSharedObject":
        """Read until :attr:`synced` and ``predicate(data)`` is true; see :meth:`wait_synced`."""

        def check() -> Optional[bool]:
            if self._refused is not None:
                code, level = self._refused
                raise CommandError(code, f"the server refused Use of {self.name!r} ({level})")
            if self._released:
                raise ConnectionClosedError(f"shared object {self.name!r} was released")
            return True if self.synced and predicate(self.data) else None

        self._owner.pump(check, f"sync of shared object {self.name!r}", self._owner.deadline(timeout))
        return self

    # -- what the server says (RTMP 7.3.2 [de-facto]) -------------------------------------

    def _call(self, callback: Optional[Callable[..., Any]], *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - the application's bug must not break the read
            self._owner.log.exception("shared object %r: callback raised", self.name)

    def _answered(self, kind: str, key: str) -> Optional[_Pending]:
        """The oldest pending request if it is ``kind`` on ``key`` (then taken off)."""
        with self._lock:
            if self._pending and self._pending[0][0] == kind and self._pending[0][1] == key:
                return self._pending.popleft()
        return None

    def receive(self, so: SharedObjectMessage) -> None:
        """Apply one message of the server."""
        self.version = so.version
        for event in so.events:
            self._event(event)

    def _event(self, event: SOEvent) -> None:
        kind = event.type
        key = event.key or ""
        if kind == SOEventType.USE_SUCCESS:
            self._used = True
        elif kind == SOEventType.CLEAR:
            self.data.clear()
        elif kind == SOEventType.CHANGE:
            self.data[key] = event.value
            self._call(self.on_change, key, event.value)
        elif kind == SOEventType.SUCCESS:
            with self._lock:  # answers come in order: older entries were answered
                while self._pending and self._pending[0][:2] != ("change", key):
                    self._pending.popleft()
                taken = self._pending.popleft() if self._pending else None
            if taken is not None:
                self.data[key] = taken[2]
                self._call(self.on_change, key, taken[2])
        elif kind == SOEventType.REMOVE:
            self._answered("remove", key)
            if key in self.data:
                del self.data[key]
            self._call(self.on_remove, key)
        elif kind == SOEventType.SEND_MESSAGE:
            handler = event.handler or ""
            with self._lock:
                head = self._pending[0] if self._pending else None
            if head is not None and head[:2] == ("send", handler) \
                    and head[2] == self._owner.encoded(self, event):
                self._answered("send", handler)
            self._call(self.on_message, handler, event.args)
        elif kind == SOEventType.STATUS:
            self._status(event.code or "", event.level or "")
        else:
            self._owner.log.debug("shared object %r: %s ignored", self.name, event.name)

    def _status(self, code: str, level: str) -> None:
        self.last_status = (code, level)
        if level == "error":
            if not self._used and self._refused is None:
                self._refused = (code, level)  # our Use was refused: a new one may be tried
                self._owner.forget(self)
            else:
                with self._lock:
                    if self._pending:
                        self._pending.popleft()  # the oldest request was refused
            self._owner.log.info("shared object %r: %s (%s)", self.name, code, FLOW_CLAUSE)
        self._call(self.on_status, code, level)


class SharedObjects:
    """A client's shared objects by name (``ClientConnection.shared``): what
    :class:`rtmp.Client` delegates to."""

    def __init__(self, send: Callable[[Message], None], pump: Pump, amf3: Callable[[], bool],
                 read_timeout: Callable[[], float], log: _Logger) -> None:
        self._send = send
        self._pump = pump
        self._amf3 = amf3
        self._read_timeout = read_timeout
        self.log = log
        self._objects: Dict[str, RemoteSharedObject] = {}
        # Names we stopped using (released, or Use refused) on this connection: what the
        # server sent before it read our Release is theirs, not the application's.
        self._left: Set[str] = set()

    def __len__(self) -> int:
        return len(self._objects)

    def open(self, name: str, persistent: bool = False) -> RemoteSharedObject:
        """Use ``name`` (RTMP 7.1.3 event 1), or the object already in use."""
        if not isinstance(name, str) or not name:
            raise ValueError("a shared object needs a name")
        so = self._objects.get(name)
        if so is not None:
            if so.persistent != persistent:
                raise ValueError(f"shared object {name!r} is in use as "
                                 f"{'persistent' if so.persistent else 'transient'}")
            return so
        so = self._objects[name] = RemoteSharedObject(self, name, persistent)
        self._left.discard(name)
        try:
            self.send(so, SOEvent.use())
        except BaseException:
            del self._objects[name]
            raise
        return so

    def send(self, so: RemoteSharedObject, event: SOEvent) -> None:
        self._send(self.message(so, event))

    def message(self, so: RemoteSharedObject, event: SOEvent) -> Message:
        """One event of ``so`` as a message of our connection's type (16 or 19)."""
        return to_message(SharedObjectMessage(so.name, so.version, so.persistent, (event,),
                                              self._amf3()))

    def encoded(self, so: RemoteSharedObject, event: SOEvent) -> Optional[bytes]:
        """``event`` as our connection carries it, through a decode and a new encode:
        what a faithful relay of it looks like (None if it does not encode)."""
        def encode(one: SOEvent) -> Message:  # version 0: the object's moves on meanwhile
            return to_message(SharedObjectMessage(so.name, 0, so.persistent, (one,), self._amf3()))

        try:
            return encode(from_message(encode(event), SERVER_LIMITS).events[0]).data
        except (ValueError, ProtocolError):
            return None

    def pump(self, check: Callable[[], Optional[bool]], what: str, deadline: float) -> None:
        self._pump(check, what, deadline)

    def deadline(self, timeout: Optional[float]) -> float:
        return time.monotonic() + (self._read_timeout() if timeout is None else timeout)

    def forget(self, so: RemoteSharedObject) -> None:
        if self._objects.get(so.name) is so:
            del self._objects[so.name]
            self._left.add(so.name)

    def receive(self, message: Message) -> bool:
        """Handle a shared-object message for one of our objects; False if it is not ours
        (the application gets it).  ProtocolError for a message that does not decode.
        Messages for an object we released are dropped: they were on their way before
        the server read our Release (or answer requests made before it)."""
        if not self._objects and not self._left:
            return False
        so = from_message(message, SERVER_LIMITS)  # ProtocolError: a broken server
        target = self._objects.get(so.name)
        if target is None:
            if so.name in self._left:
                self.log.debug("shared object %r: %d events after its release dropped",
                               so.name, len(so.events))
                return True
            return False
        target.receive(so)
        return True

    def goodbye(self) -> List[Message]:
        """Release of every object (RTMP 7.1.3 event 2), for ``close``; they are released."""
        messages = []
        for so in list(self._objects.values()):
            try:
                messages.append(self.message(so, SOEvent.release()))
            except ValueError:  # pragma: no cover - names were encodable when used
                pass
            so._released = True
        self._objects.clear()
        return messages

    def close(self) -> None:
        """The connection is gone: every object is released without a word."""
        for so in self._objects.values():
            so._released = True
        self._objects.clear()
        self._left.clear()
