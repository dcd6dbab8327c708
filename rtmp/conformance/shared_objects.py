"""RTMP 7.3.2 (conformance): remote shared objects, checked against a live server.

The exchange of RTMP 7.3.2, with the message layout of RTMP 7.1.3 [de-facto]
(``refs/shared-objects.md``): a Use is answered with Use Success (then Clear and the
slots); a Request Change with Success to the requester and Change to every other user; a
SendMessage reaches every user, the sender included.

Many servers do not implement shared objects (nginx-rtmp, node-media-server).  A server
that does not answer the first Use within a bounded wait (or closes the connection on
it) is reported SKIP "not supported", never FAIL and never a hang: these checks can only
fail a server that answers shared object messages and answers them wrongly.  Each check
uses its own transient object, named like the probe's streams (``probe-<run>-so-<n>``),
so nothing is stored on the server.
"""

from __future__ import annotations

import random
import time
from typing import List, Optional, Tuple

from ..errors import ConnectionClosedError, RTMPError
from ..message import SHARED_OBJECT_TYPES, MessageType
from ..shared_object import SharedObjectMessage, SOEvent, SOEventType, from_message, to_message
from .context import Context, ProbeConnection
from .registry import Result, check, fail, skip, warn

__all__: List[str] = []  # the checks register themselves in registry.CHECKS

#: How long the first Use may go unanswered before the server counts as one without
#: shared objects (seconds, capped by the probe timeout).
USE_WAIT = 3.0

_NOT_SUPPORTED = "shared objects not supported"


def _send(conn: ProbeConnection, name: str, event: SOEvent, amf3: bool = False) -> None:
    """Send one event about the transient object ``name`` (version 0, RTMP 7.1.3)."""
    conn.send(to_message(SharedObjectMessage(name, 0, False, (event,), amf3)))


def _read_so(conn: ProbeConnection, name: str, deadline: float,
             what: str = "the server's shared object message") -> Optional[SharedObjectMessage]:
    """The next shared object message about ``name`` before ``deadline``, or None.

    FAIL when the server sends one that does not decode (RTMP 7.1.3 [de-facto]); the
    failure begins with ``what``."""
    while True:
        item = conn.poll(lambda r: r.message.type in SHARED_OBJECT_TYPES, deadline - time.monotonic())
        if item is None:
            return None
        try:
            so = from_message(item.message)
        except RTMPError as exc:
            fail(f"{what} does not decode: {exc}")
        if so.name == name:
            return so


def _events_until(conn: ProbeConnection, name: str, wanted: SOEventType, timeout: float
                  ) -> Tuple[List[SharedObjectMessage], Optional[SOEvent]]:
    """Read messages about ``name`` until one holds an event of type ``wanted``; return
    every message read and that event (None at the deadline)."""
    deadline = time.monotonic() + timeout
    seen: List[SharedObjectMessage] = []
    while True:
        so = _read_so(conn, name, deadline)
        if so is None:
            return seen, None
        seen.append(so)
        for event in so.events:
            if event.type == wanted:
                return seen, event


def _status_of(seen: List[SharedObjectMessage]) -> Optional[SOEvent]:
    return next((e for so in seen for e in so.events if e.type == SOEventType.STATUS), None)


def _use(ctx: Context, conn: ProbeConnection, name: str, *, amf3: bool = False
         ) -> List[SharedObjectMessage]:
    """Send Use; return the messages up to the one with Use Success.

    SKIP ("not supported") when nothing answers within :data:`USE_WAIT` or the server
    closes the connection; FAIL when the server answers without Use Success."""
    _send(conn, name, SOEvent.use(), amf3)
    wait = min(USE_WAIT, ctx.timeout)
    try:
        seen, found = _events_until(conn, name, SOEventType.USE_SUCCESS, wait)
    except ConnectionClosedError:
        skip(f"{_NOT_SUPPORTED}: the server closed the connection on a Use")
    if found is None:
        if not seen:
            after = ("then the server closed the connection" if conn.closed_by_server()
                     else "the connection stays usable")
            skip(f"{_NOT_SUPPORTED}: no answer to a Use within {wait:g} s; {after}")
        status = _status_of(seen)
        if status is not None:
            fail(f"Use answered with Status {status.code} ({status.level}), no Use Success")
        kinds = ", ".join(e.name for so in seen for e in so.events)
        fail(f"Use answered with {kinds or 'no events'}, no Use Success")
    return seen


def _two_users(ctx: Context, label: str
               ) -> Tuple[str, ProbeConnection, ProbeConnection, List[SharedObjectMessage]]:
    """A fresh object name, two connections (``<label>-a``, ``<label>-b``) that both use it,
    and what the second one's Use brought."""
    name = ctx.stream_name("so")
    first = ctx.connection(f"{label}-a")
    _use(ctx, first, name)
    second = ctx.connection(f"{label}-b")
    return name, first, second, _use(ctx, second, name)


def _token() -> float:
    return float(random.randrange(1, 1 << 30))


@check("so.use", "RTMP 7.3.2 [de-facto]",
       "a shared object Use is answered with Use Success, then Clear")
def so_use(ctx: Context) -> Result:
    conn = ctx.connection("so-use")
    name = ctx.stream_name("so")
    start = time.monotonic()
    seen = _use(ctx, conn, name)
    ctx.metrics["use_ms"] = (time.monotonic() - start) * 1000
    events = [e for so in seen for e in so.events]
    kinds = [e.type for e in events]
    first = kinds.index(SOEventType.USE_SUCCESS)
    if SOEventType.CLEAR not in kinds[first:]:
        # Clear may come in the next message; wait a little for it.
        more, clear = _events_until(conn, name, SOEventType.CLEAR, min(1.0, ctx.timeout))
        if clear is None:
            return Result.warning("Use Success without Clear (RTMP 7.3.2 [de-facto] sends both)")
        events += [e for so in more for e in so.events]
    changes = sum(1 for e in events if e.type == SOEventType.CHANGE)
    return Result.passed(f"Use Success, Clear, {changes} slot(s), version {seen[-1].version}")


@check("so.change", "RTMP 7.3.2 [de-facto]",
       "a Request Change gets Success to the requester and Change to the other user")
def so_change(ctx: Context) -> Result:
    name, first, second, used = _two_users(ctx, "so-change")
    before = used[-1].version
    value = _token()
    start = time.monotonic()
    _send(first, name, SOEvent.request_change("probe", value))
    seen, success = _events_until(first, name, SOEventType.SUCCESS, ctx.timeout)
    if success is None:
        status = _status_of(seen)
        fail("no Success for a Request Change within the timeout"
             + (f" (Status {status.code})" if status is not None else ""))
    if success.key != "probe":
        fail(f"Success names slot {success.key!r}, not 'probe'")
    got, change = _events_until(second, name, SOEventType.CHANGE, ctx.timeout)
    while change is not None and change.key != "probe":  # other slots of a shared name
        more, change = _events_until(second, name, SOEventType.CHANGE, ctx.timeout)
        got += more
    if change is None:
        fail("the other user got no Change for the slot within the timeout")
    ctx.metrics["change_ms"] = (time.monotonic() - start) * 1000
    if change.value != value:
        fail(f"the other user's Change carries {change.value!r}, not {value!r}")
    echoed = [e for so in seen for e in so.events
              if e.type == SOEventType.CHANGE and e.key == "probe"]
    detail = f"Success to the requester, Change to the other in {ctx.metrics['change_ms']:.1f} ms"
    if echoed:
        return Result.warning(detail + "; the requester also got a Change of its own slot")
    after = got[-1].version
    if after <= before:
        return Result.warning(detail + f"; the version stayed {after} (was {before} at Use): "
                              "servers raise it with every change")
    return Result.passed(detail + f", version {before} -> {after}")


@check("so.send-message", "RTMP 7.3.2 [de-facto]",
       "a shared object SendMessage reaches every user, the sender included")
def so_send_message(ctx: Context) -> Result:
    name, sender, other, _ = _two_users(ctx, "so-send")
    token = _token()
    _send(sender, name, SOEvent.send_message("probeEcho", token))
    missing = []
    for who, conn in (("the other user", other), ("the sender", sender)):
        deadline = time.monotonic() + ctx.timeout
        found = None
        while found is None and time.monotonic() < deadline:
            _, event = _events_until(conn, name, SOEventType.SEND_MESSAGE,
                                     deadline - time.monotonic())
            if event is None:
                break
            if event.handler == "probeEcho":
                found = event
        if found is None:
            missing.append(who)
        elif found.args != (token,):
            fail(f"{who} got probeEcho{found.args!r}, not probeEcho(({token!r},))")
    if missing:
        fail(f"SendMessage did not reach {' and '.join(missing)}")
    return Result.passed("probeEcho reached both users")


@check("so.amf3", "RTMP 7.3.2 [de-facto]",
       "on an objectEncoding 3 connection a type 16 Use is answered with Use Success")
def so_amf3(ctx: Context) -> Result:
    conn = ctx.connection("so-amf3", object_encoding=3)
    name = ctx.stream_name("so")
    answered = False
    _send(conn, name, SOEvent.use(), amf3=True)
    wait = min(USE_WAIT, ctx.timeout)
    deadline = time.monotonic() + wait
    try:
        while (so := _read_so(conn, name, deadline, "the answer to a type 16 Use")) is not None:
            answered = True
            if any(e.type == SOEventType.USE_SUCCESS for e in so.events):
                if so.message_type != MessageType.SHARED_OBJECT_AMF3:
                    warn(f"a type 16 Use answered with type {int(so.message_type)}")
                return Result.passed("type 16 Use answered with type 16 Use Success")
            status = _status_of([so])
            if status is not None:
                fail(f"type 16 Use answered with Status {status.code}, no Use Success")
    except ConnectionClosedError:
        skip(f"{_NOT_SUPPORTED}: the server closed the connection on a type 16 Use")
    if not answered:
        after = ("then the server closed the connection" if conn.closed_by_server()
                 else "the connection stays usable")
        skip(f"{_NOT_SUPPORTED}: no answer to a type 16 Use within {wait:g} s; {after}")
    fail("type 16 Use answered without Use Success")
