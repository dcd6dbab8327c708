"""RTMP 7.3.2 [de-facto]: the server's remote shared objects, per application.

Theory of operation
-------------------
A :class:`SharedObjectStore` (one per :class:`rtmp.Server`, ``server.shared_objects``)
maps ``(application, name)`` to a :class:`SharedObject`: named slots, a version, the
connections that use it.  The connection threads hand it every shared-object message
(types 19 and 16, decoded by :mod:`rtmp.shared_object`) and it answers as the exchange of
RTMP 7.3.2 [de-facto] goes:

* Use -> Use Success + Clear + one Change per slot (one message: the whole object);
* Request Change -> Success to the requester, Change to every other user;
* Request Remove -> Remove to every user;
* SendMessage -> SendMessage to every user, the sender included;
* Release, and the end of a session, stop the use.

Each accepted change or removal raises the version by one.  ``on_shared_object(conn,
name, event)`` (``ServerConfig``) sees Use, Request Change, Request Remove and
SendMessage first; raising refuses the event: the requester gets a Status event with an
error code (``SharedObject.NoReadAccess`` for a Use, ``SharedObject.NoWriteAccess``
otherwise) and the other users see nothing.

Transient objects live while someone uses them (a connection, or the server itself
through :meth:`SharedObjectStore.open`).  Persistent ones (flag 2, RTMP 7.1.3
[de-facto]) live in ``shared_objects_dir`` as ``<app>/<name>.rso``: the object's state as
one shared-object message body (its slots as Change events), written to a temporary
file, ``fsync``-ed and renamed over the old file before the requester hears Success, so
a crash (even ``kill -9``) leaves the last acknowledged version or the one before it,
never a torn file.  They are read back on their first use after a restart.  Without the
directory, a persistent Use gets ``SharedObject.BadPersistence`` and nothing is written.

Threads and slow peers: every object has its own lock; the store's lock only guards the
map of objects and is never taken on the media path.  Nothing here writes to a socket:
each connection that uses objects has an outbox (:class:`rtmp.streams.LivePlayer` on
message stream 0, with its own writer thread), so a change is queued for every user
under the object's lock and nobody waits for a slow reader.  A user whose outbox passes
the hard budget of a live player (4 x ``max_queue_bytes``, at most :data:`OUTBOX_QUEUE_BYTES`
from the server, and never less than twice
``StoreLimits.max_object_bytes``: a whole object, the answer to a Use, is one message),
or whose socket stays full for ``write_timeout``, is disconnected: dropping one of its
events would leave its copy silently wrong.

Bad input never ends the session: a message that does not decode (or breaks
:class:`rtmp.shared_object.SOLimits`) is answered with Status ``SharedObject.BadMessage``,
an unknown event type with Status ``SharedObject.UnknownEvent`` (level ``warning``), a name
that cannot be a file with ``SharedObject.BadName``.  Codes are the Status event's only
text, so each says its reason (the constants below).
"""

from __future__ import annotations

import functools
import logging
import os
import pathlib
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Set, Tuple, Union

from .errors import ProtocolError, RTMPError
from .logs import AnyLogger
from .message import Message, MessageType
from .record_path import safe_data_path
from .shared_object import (
    CLAUSE,
    FLOW_CLAUSE,
    SharedObjectMessage,
    SOEvent,
    SOEventType,
    SOLimits,
    decode,
    encode,
    from_message,
    to_message,
)
from .streams import FrameKind, LivePlayer

if TYPE_CHECKING:
    from .netstream import ConnectionContext

__all__ = [
    "SharedObjectStore",
    "SharedObject",
    "ServerSharedObject",
    "StoreLimits",
    "OnSharedObject",
    "FILE_SUFFIX",
    "NO_READ_ACCESS",
    "NO_WRITE_ACCESS",
    "BAD_PERSISTENCE",
    "BAD_NAME",
    "BAD_MESSAGE",
    "NOT_IN_USE",
    "UNKNOWN_EVENT",
    "OBJECT_FULL",
    "CREATION_FAILED",
    "FLUSH_FAILED",
    "OUTBOX_QUEUE_BYTES",
]

logger = logging.getLogger(__name__)

#: The default (and the server's most) ``max_queue_bytes`` of a user's outbox: its events
#: are its own, not bytes shared with other players as live media are, so it stays at the
#: live players' former budget whatever the server's ``max_queue_bytes`` (issue 21).
OUTBOX_QUEUE_BYTES = 2 * 1024 * 1024

#: ``on_shared_object(conn, name, event)``: raise to refuse the event.
OnSharedObject = Callable[[Any, str, SOEvent], Any]

# Status event codes (RTMP 7.1.3 event 7: a code and a level, nothing else).
NO_READ_ACCESS = "SharedObject.NoReadAccess"
"""A Use refused by ``on_shared_object``."""
NO_WRITE_ACCESS = "SharedObject.NoWriteAccess"
"""A Request Change, Request Remove or SendMessage refused by ``on_shared_object``."""
BAD_PERSISTENCE = "SharedObject.BadPersistence"
"""A persistent Use on a server without ``shared_objects_dir``, or a Use whose persistence
differs from the existing object's."""
BAD_NAME = "SharedObject.BadName"
"""An empty name, or a persistent object's name that cannot be a file in the directory
(``/``, ``..``, NUL and other control characters, over 255 bytes)."""
BAD_MESSAGE = "SharedObject.BadMessage"
"""A message that does not decode (lying lengths, bad AMF) or breaks the decoder's limits."""
NOT_IN_USE = "SharedObject.NotInUse"
"""An event (other than Use) for an object this connection does not use."""
UNKNOWN_EVENT = "SharedObject.UnknownEvent"
"""An event type outside 1..11 (level ``warning``: skipped, the rest of the message is handled)."""
OBJECT_FULL = "SharedObject.ObjectFull"
"""A change that would make the object larger than ``StoreLimits.max_object_bytes``."""
CREATION_FAILED = "SharedObject.ObjectCreationFailed"
"""Too many objects (per connection or on disk), or a persistent file that cannot be read."""
FLUSH_FAILED = "SharedObject.Flush.Failed"
"""A persistent object could not be written; the change is undone."""

#: The file name suffix of a persistent object in ``shared_objects_dir``.
FILE_SUFFIX = ".rso"
#: The first bytes of a persistent object's file (then one RTMP 7.1.3 message body).
_MAGIC = b"RTMP-SO 1\n"
#: A persistent file is read back with these limits: it is our own, but may be large.
_FILE_LIMITS = SOLimits(max_events=1 << 24, max_message_size=1 << 30)
#: What a slot costs beyond its key and value (event type, length, key length).
_SLOT_OVERHEAD = 7


@dataclass(frozen=True)
class StoreLimits:
    """Bounds of the store (what one peer may make the server hold)."""

    max_objects_per_connection: int = 64
    """Objects one connection may use at once; the next Use gets ``CREATION_FAILED``."""
    max_object_bytes: int = 4 * 1024 * 1024
    """Encoded size of one object's slots; a larger change gets ``OBJECT_FULL``."""
    max_persistent_objects: int = 100_000
    """Persistent objects the directory may hold; the next new one gets ``CREATION_FAILED``."""
    decode: SOLimits = SOLimits()
    """Limits of one incoming message (:class:`rtmp.shared_object.SOLimits`)."""


class _Refused(Exception):
    """An event is refused with Status ``code``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class _Session:
    """One connection's use of shared objects: its objects and its outbox."""

    def __init__(self, conn: "ConnectionContext", max_queue_bytes: int) -> None:
        self.conn = conn
        self.objects: Dict[str, SharedObject] = {}
        self.amf3 = conn.object_encoding == 3
        self.failed = False
        transport = conn.transport
        if transport is None:
            raise RTMPError(f"connection {conn.id} has no transport")
        self.outbox = LivePlayer(
            transport, 0, name=f"{conn.id}-so", max_queue_bytes=max_queue_bytes, log=conn.log,
            on_failure=functools.partial(_outbox_failed, conn),
        )
        self.outbox.start(lazy=True)

    @property
    def id(self) -> str:
        return self.conn.id

    def post(self, message: Message) -> None:
        """Queue ``message`` (never blocks); a peer too far behind is disconnected."""
        if self.failed:
            return
        if not self.outbox.offer(None, message, FrameKind.CONTROL):
            self.failed = True
            self.conn.log.warning(
                "shared objects: peer does not read (over %d bytes queued); closing (%s)",
                self.outbox.queued_bytes, FLOW_CLAUSE)
            self.conn.close()

    def status(self, name: str, code: str, level: str = "error", obj: Optional["SharedObject"] = None) -> None:
        """RTMP 7.1.3 event 7: a Status for object ``name`` to this connection."""
        version = obj.version if obj is not None else 0
        persistent = obj.persistent if obj is not None else False
        self.post(to_message(SharedObjectMessage(
            name, version, persistent, (SOEvent.status(code, level),), self.amf3)))


def _outbox_failed(conn: "ConnectionContext", exc: BaseException) -> None:
    """The writer of a connection's outbox failed (peer gone, or stalled past write_timeout)."""
    conn.log.info("closing: shared-object updates could not be sent: %s", exc)
    conn.close()


class _Broadcast:
    """One outgoing message of an object, encoded at most once per AMF flavour."""

    def __init__(self, obj: "SharedObject", events: Tuple[SOEvent, ...]) -> None:
        self.obj = obj
        self.events = events
        self._made: Dict[bool, Optional[Message]] = {}

    def message(self, amf3: bool) -> Optional[Message]:
        if amf3 not in self._made:
            obj = self.obj
            try:
                self._made[amf3] = to_message(SharedObjectMessage(
                    obj.name, obj.version, obj.persistent, self.events, amf3))
            except ValueError as exc:  # a value one AMF cannot write
                logger.error("shared object %s/%s: cannot encode an update: %s", obj.app, obj.name, exc)
                self._made[amf3] = None
        return self._made[amf3]

    def send(self, sessions: "Iterator[_Session]") -> None:
        for session in sessions:
            message = self.message(session.amf3)
            if message is not None:
                session.post(message)


class SharedObject:
    """RTMP 7.1.3: one named object of an application: slots, version, users.

    Everything here runs with ``lock`` held by the caller (the store).
    """

    def __init__(self, app: str, name: str, persistent: bool,
                 path: Optional[pathlib.Path] = None) -> None:
        self.app = app
        self.name = name
        self.persistent = persistent
        self.path = path
        self.version = 0
        self.lock = threading.Lock()
        self.data: Dict[str, Any] = {}
        self.sizes: Dict[str, int] = {}
        self.size = 0
        self.users: Dict[str, _Session] = {}
        self.refs = 0  # users + server handles + uses being set up (the store's lock)

    def __repr__(self) -> str:
        kind = "persistent" if self.persistent else "transient"
        return f"<SharedObject {self.app}/{self.name} {kind} v{self.version} {len(self.data)} slots>"

    # -- state ------------------------------------------------------------------------------

    def snapshot(self, amf3: bool) -> Message:
        """RTMP 7.3.2 [de-facto]: Use Success, Clear, one Change per slot: the whole object."""
        events = [SOEvent.use_success(), SOEvent.clear()]
        events.extend(SOEvent.change(key, value) for key, value in self.data.items())
        return to_message(SharedObjectMessage(self.name, self.version, self.persistent,
                                              tuple(events), amf3))

    def _bump(self) -> None:
        self.version = (self.version + 1) & 0xFFFFFFFF  # RTMP 7.1.3 [de-facto]: a U32

    def apply(self, changes: List[Tuple[str, bool, Any]], limit: int) -> List[Tuple[str, bool, Any]]:
        """Set (``(key, True, value)``) or delete (``(key, False, None)``) slots; returns
        the undo list.  Raises :class:`_Refused` (``OBJECT_FULL``) before changing
        anything if the object would grow past ``limit`` bytes."""
        sizes: Dict[str, int] = {}
        grown = self.size
        for key, present, value in changes:
            old = sizes.get(key, self.sizes.get(key, 0))
            new = _slot_size(key, value) if present else 0
            sizes[key] = new
            grown += new - old
        if grown > limit:
            raise _Refused(OBJECT_FULL, f"the object would hold {grown} bytes (limit {limit})")
        undo: List[Tuple[str, bool, Any]] = []
        for key, present, value in changes:
            undo.append((key, key in self.data, self.data.get(key)))
            if present:
                self.data[key] = value
            else:
                self.data.pop(key, None)
            self._bump()
        for key, size in sizes.items():
            if size:
                self.sizes[key] = size
            else:
                self.sizes.pop(key, None)
        self.size = grown
        return undo

    def undo(self, undo: List[Tuple[str, bool, Any]]) -> None:
        """Take back what :meth:`apply` did (a persistent write failed)."""
        for key, present, value in reversed(undo):
            if present:
                self.data[key] = value
            else:
                self.data.pop(key, None)
            self.version = (self.version - 1) & 0xFFFFFFFF
        self.sizes = {key: _slot_size(key, value) for key, value in self.data.items()}
        self.size = sum(self.sizes.values())

    # -- persistence -------------------------------------------------------------------------

    def save(self) -> None:
        """Write the object to ``path`` atomically: temporary file, fsync, rename, fsync
        of the directory (OSError, ValueError)."""
        if not self.persistent or self.path is None:
            return
        body = encode(SharedObjectMessage(
            self.name, self.version, True,
            tuple(SOEvent.change(key, value) for key, value in self.data.items())))
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        # short, whatever the name's length (a file name is at most 255 bytes); the
        # store's start removes any such file a crash left (see SharedObjectStore._scan)
        tmp = path.with_name(f".{secrets.token_hex(8)}.tmp")
        try:
            with open(tmp, "wb") as file:
                file.write(_MAGIC)
                file.write(body)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _fsync_directory(path.parent)

    def load(self) -> None:
        """Read ``path`` (written by :meth:`save`); ValueError if it is not one."""
        assert self.path is not None
        raw = self.path.read_bytes()
        if not raw.startswith(_MAGIC):
            raise ValueError(f"{self.path} is not a shared object file")
        try:
            message = decode(raw[len(_MAGIC):], False, _FILE_LIMITS)
        except ProtocolError as exc:
            raise ValueError(f"{self.path}: {exc}") from exc
        data = {event.key: event.value for event in message.events
                if event.type == SOEventType.CHANGE and event.key is not None}
        self.data = data
        self.sizes = {key: _slot_size(key, value) for key, value in data.items()}
        self.size = sum(self.sizes.values())
        self.version = message.version


def _slot_size(key: str, value: Any) -> int:
    """What slot ``key`` costs in a Change event (AMF0)."""
    try:
        return len(encode(SharedObjectMessage("", events=(SOEvent.change(key, value),)))) - 14
    except ValueError:
        return len(key) + _SLOT_OVERHEAD  # unencodable values are refused when sent


def _fsync_directory(directory: pathlib.Path) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op where directories cannot open)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ServerSharedObject:
    """The server's own handle on a shared object (:meth:`rtmp.Server.shared_object`).

    ``get``/``set``/``delete``/``send`` act as a client's Request Change, Request Remove
    and SendMessage do, without ``on_shared_object``: every user hears the change, the
    version goes up, a persistent object is saved first.  While the handle is open it
    keeps a transient object alive; :meth:`release` (or leaving a ``with`` block) lets go.
    """

    def __init__(self, store: "SharedObjectStore", obj: SharedObject) -> None:
        self._store = store
        self._obj: Optional[SharedObject] = obj
        self.app = obj.app
        self.name = obj.name
        self.persistent = obj.persistent

    def __repr__(self) -> str:
        return f"<ServerSharedObject {self.app}/{self.name} {'open' if self._obj else 'released'}>"

    def __enter__(self) -> "ServerSharedObject":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def _object(self) -> SharedObject:
        obj = self._obj
        if obj is None:
            raise ValueError(f"shared object {self.name!r} was released")
        return obj

    @property
    def version(self) -> int:
        """The object's version (RTMP 7.1.3 [de-facto]: +1 per accepted change)."""
        return self._object().version

    @property
    def data(self) -> Dict[str, Any]:
        """A copy of the slots."""
        obj = self._object()
        with obj.lock:
            return dict(obj.data)

    @property
    def users(self) -> List[str]:
        """The ids of the connections that use the object."""
        obj = self._object()
        with obj.lock:
            return list(obj.users)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of slot ``key``, or ``default``."""
        obj = self._object()
        with obj.lock:
            return obj.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Set slot ``key``: Change to every user (OSError if a persistent write fails,
        ValueError past ``StoreLimits.max_object_bytes`` or for a value AMF cannot write)."""
        self._change(key, True, value)

    def _change(self, key: str, present: bool, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError("shared object slot names are str")
        try:
            self._store.change(self._object(), [(key, present, value)])
        except _Refused as exc:
            raise ValueError(f"{exc.code}: {exc}") from None

    def delete(self, key: str) -> bool:
        """Delete slot ``key``: Remove to every user; False if there was no such slot."""
        if not isinstance(key, str):
            raise TypeError("shared object slot names are str")
        # checked under the object's lock with the change: a delete racing another one
        # removes the slot once (one Remove, one version step)
        try:
            return self._store.change(self._object(), [(key, False, None)], only_present=True)
        except _Refused as exc:
            raise ValueError(f"{exc.code}: {exc}") from None

    def send(self, handler: str, *args: Any) -> None:
        """RTMP 7.1.3 event 6: SendMessage ``handler(*args)`` to every user."""
        obj = self._object()
        with obj.lock:
            _Broadcast(obj, (SOEvent.send_message(handler, *args),)).send(iter(list(obj.users.values())))

    def release(self) -> None:
        """Let go of the object (a transient one without users is then dropped)."""
        obj, self._obj = self._obj, None
        if obj is not None:
            self._store._unref(obj)


class SharedObjectStore:
    """RTMP 7.3.2 [de-facto]: the shared objects of one server, by application and name."""

    def __init__(
        self,
        directory: Optional[Union[str, "os.PathLike[str]"]] = None,
        *,
        on_event: Optional[OnSharedObject] = None,
        limits: StoreLimits = StoreLimits(),
        max_queue_bytes: int = OUTBOX_QUEUE_BYTES,
        log: Optional[AnyLogger] = None,
    ) -> None:
        self.directory = pathlib.Path(directory) if directory is not None else None
        self.on_event = on_event
        self.limits = limits
        self.max_queue_bytes = max_queue_bytes
        self.log: AnyLogger = log or logger
        self._lock = threading.Lock()  # the map below and every object's refs
        self._objects: Dict[Tuple[str, str], SharedObject] = {}
        self._sessions: Dict[str, _Session] = {}  # each touched by its own connection's thread
        self._on_disk: Set[Tuple[str, str]] = set()
        if self.directory is not None:
            self._scan()

    # -- persistence directory ----------------------------------------------------------------

    def _scan(self) -> None:
        """At start: know the persistent objects on disk; remove temporary files a crash left."""
        root = self.directory
        assert root is not None
        root.mkdir(parents=True, exist_ok=True)
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                try:
                    path.unlink()  # a write that a crash interrupted: the old file stands
                    self.log.info("removed an interrupted shared-object write: %s", path)
                except OSError:
                    pass
            elif path.name.endswith(FILE_SUFFIX):
                rel = path.relative_to(root)
                app = "/".join(rel.parts[:-1])
                self._on_disk.add((app, rel.name[: -len(FILE_SUFFIX)]))
        self.log.info("%d persistent shared objects in %s", len(self._on_disk), root)

    def persistent_names(self, app: str) -> List[str]:
        """The names of the persistent objects of ``app`` (in memory or on disk)."""
        with self._lock:
            return sorted(name for a, name in self._on_disk if a == app)

    def _path(self, app: str, name: str) -> pathlib.Path:
        """The file of a persistent object; _Refused for names that cannot be one."""
        if self.directory is None:
            raise _Refused(BAD_PERSISTENCE, "persistent shared objects need shared_objects_dir")
        try:
            return safe_data_path(self.directory, app, name, FILE_SUFFIX, "shared object name")
        except (ValueError, TypeError) as exc:
            raise _Refused(BAD_NAME, str(exc)) from None

    # -- objects --------------------------------------------------------------------------------

    def get(self, app: str, name: str) -> Optional[SharedObject]:
        """The object ``app/name`` if it is in memory (someone uses it)."""
        with self._lock:
            return self._objects.get((app, name))

    @property
    def objects(self) -> List[SharedObject]:
        """The objects in memory."""
        with self._lock:
            return list(self._objects.values())

    def _ref(self, app: str, name: str, persistent: bool) -> SharedObject:
        """Find or make (or load) ``app/name`` and count one more reference (_Refused)."""
        if not name:
            raise _Refused(BAD_NAME, "the shared object name is empty")
        path = self._path(app, name) if persistent else None
        with self._lock:
            key = (app, name)
            obj = self._objects.get(key)
            if obj is None:
                if not persistent and key in self._on_disk:
                    raise _Refused(BAD_PERSISTENCE, f"{name!r} is a persistent object")
                obj = SharedObject(app, name, persistent, path)
                if persistent and key in self._on_disk:
                    try:
                        obj.load()
                    except (OSError, ValueError) as exc:
                        self.log.error("shared object %s/%s: cannot read %s: %s", app, name, path, exc)
                        raise _Refused(CREATION_FAILED, f"cannot read {path}") from None
                elif persistent and len(self._on_disk) >= self.limits.max_persistent_objects:
                    raise _Refused(CREATION_FAILED, "max_persistent_objects reached")
                self._objects[key] = obj
            elif obj.persistent != persistent:
                raise _Refused(BAD_PERSISTENCE, f"{name!r} exists and is "
                               f"{'persistent' if obj.persistent else 'transient'}")
            obj.refs += 1
            return obj

    def _unref(self, obj: SharedObject) -> None:
        with self._lock:
            obj.refs -= 1
            if obj.refs <= 0 and self._objects.get((obj.app, obj.name)) is obj:
                del self._objects[(obj.app, obj.name)]

    def open(self, app: str, name: str, persistent: bool = False) -> ServerSharedObject:
        """The server's handle on ``app/name`` (made if needed); ValueError for a name or
        persistence the store refuses, with the Status code in the message."""
        try:
            return ServerSharedObject(self, self._ref(app, name, persistent))
        except _Refused as exc:
            raise ValueError(f"{exc.code}: {exc}") from None

    def change(self, obj: SharedObject, changes: List[Tuple[str, bool, Any]],
               requester: Optional[_Session] = None, only_present: bool = False) -> bool:
        """Apply accepted changes, save a persistent object, then tell the users: the
        requester Success (its removals: Remove), the others Change/Remove (_Refused, OSError).
        ``only_present``: removals of slots that do not exist are left out; returns
        whether anything was left to do."""
        with obj.lock:
            if only_present:
                changes = [c for c in changes if c[1] or c[0] in obj.data]
                if not changes:
                    return False
            undo = obj.apply(changes, self.limits.max_object_bytes)
            if obj.persistent:
                try:
                    obj.save()
                except (OSError, ValueError):
                    obj.undo(undo)
                    raise
                with self._lock:
                    self._on_disk.add((obj.app, obj.name))
            others = _Broadcast(obj, tuple(
                SOEvent.change(key, value) if present else SOEvent.remove(key)
                for key, present, value in changes))
            others.send(s for s in list(obj.users.values()) if s is not requester)
            if requester is not None:
                _Broadcast(obj, tuple(
                    SOEvent.success(key) if present else SOEvent.remove(key)
                    for key, present, _ in changes)).send(iter((requester,)))
        return True

    # -- a connection's messages ----------------------------------------------------------------

    def _session(self, conn: "ConnectionContext") -> _Session:
        session = self._sessions.get(conn.id)
        if session is None:
            # The outbox's hard budget (4 x its max_queue_bytes) bounds how far a user may
            # fall behind; it must hold one whole object (the answer to a Use), however
            # small the server's max_queue_bytes, or a user that reads would be dropped.
            budget = max(self.max_queue_bytes, self.limits.max_object_bytes // 2)
            session = self._sessions[conn.id] = _Session(conn, budget)
        return session

    def uses_objects(self, conn: "ConnectionContext") -> bool:
        """``conn`` uses at least one object: like a player, it may stay silent and listen
        (the server pings it, RTMP 7.1.7, and ``idle_timeout`` applies)."""
        session = self._sessions.get(conn.id)
        return session is not None and bool(session.objects)

    def receive(self, conn: "ConnectionContext", msg: Message) -> None:
        """RTMP 7.3.2 [de-facto]: handle one shared-object message of ``conn`` (its thread)."""
        if not conn.accepted:
            raise ProtocolError("shared object message before connect", "RTMP 7.2.1.1")
        session = self._session(conn)
        amf3 = msg.type == MessageType.SHARED_OBJECT_AMF3
        try:
            so = from_message(msg, self.limits.decode)
        except ProtocolError as exc:
            level = logging.WARNING if conn.first_warning("so-decode") else logging.DEBUG
            conn.log.log(level, "bad shared object message: %s", exc)
            session.amf3 = amf3
            session.status(_peek_name(msg.data, amf3), BAD_MESSAGE)
            return
        session.amf3 = amf3  # answer in the flavour the peer speaks (RTMP 7.1.3)
        batch: List[SOEvent] = []
        for event in so.events:
            if event.type in (SOEventType.REQUEST_CHANGE, SOEventType.REQUEST_REMOVE):
                batch.append(event)
                continue
            if batch:
                self._changes(session, so, batch)
                batch = []
            self._event(session, so, event)
        if batch:
            self._changes(session, so, batch)

    def _refusal(self, session: _Session, name: str, exc: _Refused,
                 obj: Optional[SharedObject] = None) -> None:
        session.conn.log.info("shared object %r: %s: %s", name, exc.code, exc)
        session.status(name, exc.code, obj=obj)

    def _ask(self, session: _Session, name: str, event: SOEvent, code: str) -> None:
        """``on_shared_object``: _Refused with ``code`` if it raises."""
        callback = self.on_event
        if callback is None:
            return
        try:
            callback(session.conn.connection, name, event)
        except Exception as exc:  # noqa: BLE001 - the application's refusal
            raise _Refused(code, f"on_shared_object refused {event.name}: {exc}") from None

    def _event(self, session: _Session, so: SharedObjectMessage, event: SOEvent) -> None:
        name = so.name
        kind = event.type
        if kind == SOEventType.USE:
            self._use(session, so)
            return
        if kind == SOEventType.RELEASE:
            self._release(session, name)
            return
        if not isinstance(kind, SOEventType):
            session.conn.log.debug("shared object %r: %s skipped (%s)", name, event.name, CLAUSE)
            session.status(name, UNKNOWN_EVENT, "warning")
            return
        obj = session.objects.get(name)
        if obj is None:
            self._refusal(session, name, _Refused(NOT_IN_USE, f"{event.name} without Use"))
            return
        if kind != SOEventType.SEND_MESSAGE:  # Change, Success, ... are the server's to send
            self._refusal(session, name, _Refused(NO_WRITE_ACCESS, f"{event.name} is a server event"), obj)
            return
        try:
            self._ask(session, name, event, NO_WRITE_ACCESS)
        except _Refused as exc:
            self._refusal(session, name, exc, obj)
            return
        with obj.lock:
            _Broadcast(obj, (event,)).send(iter(list(obj.users.values())))

    def _use(self, session: _Session, so: SharedObjectMessage) -> None:
        name = so.name
        obj = session.objects.get(name)
        try:
            if obj is not None:
                if obj.persistent != so.persistent:
                    raise _Refused(BAD_PERSISTENCE, "used already with the other persistence")
            else:
                if len(session.objects) >= self.limits.max_objects_per_connection:
                    raise _Refused(CREATION_FAILED, "max_objects_per_connection reached")
                self._ask(session, name, SOEvent.use(), NO_READ_ACCESS)
                obj = self._ref(session.conn.app, name, so.persistent)
                session.objects[name] = obj
        except _Refused as exc:
            self._refusal(session, name, exc, obj)
            return
        with obj.lock:
            obj.users[session.id] = session
            session.post(obj.snapshot(session.amf3))
        session.conn.log.debug("uses shared object %r (%d slots, version %d)", name,
                               len(obj.data), obj.version)

    def _release(self, session: _Session, name: str) -> None:
        obj = session.objects.pop(name, None)
        if obj is None:
            return
        with obj.lock:
            obj.users.pop(session.id, None)
        self._unref(obj)

    def _changes(self, session: _Session, so: SharedObjectMessage, events: List[SOEvent]) -> None:
        """Request Change / Request Remove events of one message: one save, one broadcast."""
        name = so.name
        obj = session.objects.get(name)
        if obj is None:
            self._refusal(session, name, _Refused(NOT_IN_USE, "Request Change without Use"))
            return
        accepted: List[Tuple[str, bool, Any]] = []
        for event in events:
            try:
                self._ask(session, name, event, NO_WRITE_ACCESS)
            except _Refused as exc:
                if accepted:  # keep the replies in the order of the requests
                    self._commit(session, obj, accepted)
                    accepted = []
                self._refusal(session, name, exc, obj)
                continue
            assert event.key is not None
            accepted.append((event.key, event.type == SOEventType.REQUEST_CHANGE, event.value))
        if accepted:
            self._commit(session, obj, accepted)

    def _commit(self, session: _Session, obj: SharedObject,
                accepted: List[Tuple[str, bool, Any]]) -> None:
        try:
            self.change(obj, accepted, session)
        except _Refused as exc:
            self._refusal(session, obj.name, exc, obj)
        except (OSError, ValueError) as exc:
            self.log.error("shared object %s/%s: cannot save: %s", obj.app, obj.name, exc)
            session.status(obj.name, FLUSH_FAILED, obj=obj)

    def release_connection(self, conn: "ConnectionContext") -> None:
        """A session ended: it stops using every object, and its outbox stops."""
        session = self._sessions.pop(conn.id, None)
        if session is None:
            return
        for name in list(session.objects):
            self._release(session, name)
        session.outbox.close()


def _peek_name(body: bytes, amf3: bool) -> str:
    """The object name of a message that does not decode, if its first field is whole
    (RTMP 7.1.3 [de-facto]: UI16 length + UTF-8) and fits one again, else ``""``: the
    Status needs a name."""
    start = 1 if amf3 else 0
    if len(body) < start + 2:
        return ""
    length = int.from_bytes(body[start:start + 2], "big")
    raw = body[start + 2:start + 2 + length]
    if len(raw) != length:
        return ""
    name = raw.decode("utf-8", "replace")
    # A replaced byte takes 3: a name that no longer fits its U16 is not echoed.
    return name if len(name.encode("utf-8")) <= 0xFFFF else ""
