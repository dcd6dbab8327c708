"""RTMP 7.2: the request/reply bookkeeping of one connection, sans-IO.

Theory of operation
-------------------
A NetConnection call (RTMP 7.2.1.2) carries a transaction id; the peer answers with
``_result`` or ``_error`` carrying the same id.  A NetStream command (RTMP 7.2.2) goes
with transaction id 0 and is answered, if at all, by ``onStatus`` messages on the
stream's message stream id.  :class:`Calls` keeps that bookkeeping for the client side
of a connection (our client and the conformance probe):

* :meth:`Calls.call` and :meth:`Calls.request` build the command message, allocate the
  transaction id and record whether the reply is awaited (an outcome event when it
  comes), ignored (consumed quietly: fire-and-forget calls such as ``releaseStream``)
  or untracked (passed on like any unmatched reply).  NetStream requests get
  transaction id 0 and are never recorded.
* :meth:`Calls.expect_status` registers a status wait: the first ``onStatus`` on the
  stream with a success code completes it, a failure code fails it; the codes named
  ``also_consumed`` on the way (``NetStream.Play.Reset`` before ``Play.Start``) are
  consumed.
* :meth:`Calls.receive` takes one incoming command (a :class:`rtmp.Message` or a
  decoded :class:`rtmp.commands.Command`) and returns events: exactly one saying what
  the command was (:class:`CallResult`, :class:`CallError`, :class:`StatusReached`,
  :class:`StatusFailed`, :class:`StatusEvent` for an onStatus no wait took,
  :class:`Consumed`, :class:`Unhandled`) and, for the server's own calls that want an
  answer, an :class:`Outgoing` message to send (``_checkbw`` after ``onBWDone``, the
  ``_result`` of ``onBWCheck``).

What the caller does with the events stays its business: the client passes
:class:`StatusEvent` and :class:`Unhandled` commands to the application and raises on
failures; time-outs stay in the socket layer above.  No sockets, threads or clocks.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any, Collection, Dict, List, Optional, Set, Tuple, Union

from . import commands
from .commands import Command, StatusEvent
from .errors import CommandError
from .logs import AnyLogger
from .message import Message
from .requests import Connect, Request

__all__ = [
    "BANDWIDTH_CHECKS",
    "CONNECT_TRANSACTION_ID",
    "CallError",
    "CallResult",
    "Calls",
    "Consumed",
    "Event",
    "Outgoing",
    "ReplyMode",
    "StatusFailed",
    "StatusReached",
    "StatusWait",
    "Unhandled",
]

logger = logging.getLogger(__name__)

#: RTMP 7.2.1.1: connect is transaction 1.
CONNECT_TRANSACTION_ID = 1
#: [impl] FMS's bandwidth probe, answered with ``_result`` (librtmp SendCheckBWResult).
BANDWIDTH_CHECKS = frozenset({"onBWCheck", "_onbwcheck"})


class ReplyMode(enum.Enum):
    """What to do with the ``_result``/``_error`` of a call (RTMP 7.2.1.2)."""

    AWAIT = "await"  #: an outcome event (CallResult / CallError), kept for take()
    IGNORE = "ignore"  #: consumed quietly (fire-and-forget: releaseStream, FCPublish, ...)
    UNTRACKED = "untracked"  #: not recorded: a reply is Unhandled, like any unmatched one


# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallResult:
    """RTMP 7.2.1.2: the ``_result`` of an awaited call."""

    transaction_id: int
    command_object: Any
    values: Tuple[Any, ...]
    command: Command = field(compare=False, hash=False, repr=False)

    @property
    def value(self) -> Any:
        """The values after the command object: ``None`` when there is none, the value
        when there is one, else a list (what :meth:`rtmp.Client.call` returns)."""
        if not self.values:
            return None
        return self.values[0] if len(self.values) == 1 else list(self.values)


@dataclass(frozen=True)
class CallError:
    """RTMP 7.2.1.2: the ``_error`` of an awaited call, with its information object."""

    transaction_id: int
    code: str
    description: str
    info: Dict[str, Any] = field(hash=False)
    command: Command = field(compare=False, hash=False, repr=False)

    def error(self) -> CommandError:
        """The :class:`rtmp.CommandError` to raise."""
        return commands.command_error(self.command)


@dataclass(eq=False)
class StatusWait:
    """One wait for an ``onStatus`` (RTMP 7.2.2) on ``stream_id``, from
    :meth:`Calls.expect_status`.  ``outcome`` is set when it completes or fails."""

    stream_id: int
    success: Optional[frozenset[str]]
    failure: Optional[frozenset[str]]
    also_consumed: frozenset[str]
    stream_zero: bool
    error_replies: bool
    what: str = ""
    outcome: Union[StatusReached, StatusFailed, None] = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def _fails(self, cmd: Command) -> bool:
        if self.failure is None:
            return cmd.is_error  # Appendix B: level "error" (or an _error reply)
        return cmd.code in self.failure


@dataclass(frozen=True)
class StatusReached:
    """A status wait completed: an ``onStatus`` with one of its success codes came."""

    wait: StatusWait = field(compare=False)
    status: StatusEvent
    command: Command = field(compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class StatusFailed:
    """A status wait failed: a failure ``onStatus`` (or, when asked, an ``_error`` with
    transaction id 0, RTMP 7.2.2.7) came first."""

    wait: StatusWait = field(compare=False)
    status: StatusEvent
    command: Command = field(compare=False, hash=False, repr=False)

    def error(self) -> CommandError:
        """The :class:`rtmp.CommandError` to raise."""
        return commands.command_error(self.command)


@dataclass(frozen=True)
class Consumed:
    """A command handled here that the application need not see (why: ``reason``)."""

    command: Command = field(repr=False)
    reason: str


@dataclass(frozen=True)
class Unhandled:
    """A command nothing here expected: a reply to no pending call, a call from the
    server this layer does not answer.  The application's."""

    command: Command = field(repr=False)


@dataclass(frozen=True)
class Outgoing:
    """A message to send in answer to the server (``transaction_id`` 0 when none was
    allocated)."""

    message: Message
    transaction_id: int = 0


Event = Union[CallResult, CallError, StatusReached, StatusFailed, StatusEvent, Consumed,
              Unhandled, Outgoing]


# -- the layer -------------------------------------------------------------------------------


class Calls:
    """The transactions and status waits of one connection (RTMP 7.2), without I/O.

    ``object_encoding`` (0 or 3, settable once connect agreed on it) is the encoding of
    the calls built here.  Transaction ids count up from ``first_transaction_id``
    (connect keeps 1).  ``answer_bandwidth_check`` answers ``onBWDone`` with
    ``_checkbw`` ([impl] as ffmpeg does).  A reply matches a call by the integer part of
    its transaction id (as our client always did); ``exact_ids=True`` asks for the exact
    number (the conformance probe).
    """

    def __init__(
        self,
        object_encoding: int = commands.AMF0,
        *,
        first_transaction_id: int = CONNECT_TRANSACTION_ID + 1,
        answer_bandwidth_check: bool = True,
        exact_ids: bool = False,
        log: Optional[AnyLogger] = None,
    ) -> None:
        if first_transaction_id < 1:
            raise ValueError("transaction ids of calls start at 1 (0 means no reply)")
        self.object_encoding = object_encoding
        self.answer_bandwidth_check = answer_bandwidth_check
        self.exact_ids = exact_ids
        self.log: AnyLogger = log if log is not None else logger
        self._first = first_transaction_id
        self._next = first_transaction_id
        self._awaited: Set[int] = set()
        self._ignored: Set[int] = set()
        self._outcomes: Dict[int, Union[CallResult, CallError]] = {}
        self._waits: List[StatusWait] = []

    # -- state ---------------------------------------------------------------------------

    @property
    def pending(self) -> frozenset[int]:
        """Transaction ids whose reply is awaited."""
        return frozenset(self._awaited)

    @property
    def ignored(self) -> frozenset[int]:
        """Transaction ids whose reply will be consumed quietly."""
        return frozenset(self._ignored)

    @property
    def waits(self) -> Tuple[StatusWait, ...]:
        """The status waits not yet completed, oldest first."""
        return tuple(self._waits)

    def reset(self) -> None:
        """Forget everything (a new connection): ids count from the start again."""
        self._next = self._first
        self._awaited.clear()
        self._ignored.clear()
        self._outcomes.clear()
        self._waits.clear()

    # -- sending -------------------------------------------------------------------------

    def next_transaction(self) -> int:
        """A fresh transaction id (RTMP 7.2.1.2)."""
        txn = self._next
        self._next += 1
        return txn

    def track(self, transaction_id: int, reply: ReplyMode = ReplyMode.AWAIT) -> None:
        """Record a call sent by other means (a hand-built message) as ``reply`` says."""
        if transaction_id == 0:
            raise ValueError("transaction id 0 asks for no reply (RTMP 7.2.1.2)")
        self._awaited.discard(transaction_id)
        self._ignored.discard(transaction_id)
        self._outcomes.pop(transaction_id, None)
        if reply is ReplyMode.AWAIT:
            self._awaited.add(transaction_id)
        elif reply is ReplyMode.IGNORE:
            self._ignored.add(transaction_id)

    def call(
        self,
        name: str,
        *args: Any,
        command_object: Any = None,
        stream_id: int = 0,
        reply: ReplyMode = ReplyMode.AWAIT,
        transaction_id: Optional[int] = None,
        object_encoding: Optional[int] = None,
    ) -> Tuple[Message, int]:
        """RTMP 7.2.1.2: ``name, txn, command_object, *args``; (the message, its txn).

        ``transaction_id`` and ``object_encoding`` override the fresh id and
        ``object_encoding`` (the probe sends odd ones on purpose).
        """
        txn = self.next_transaction() if transaction_id is None else transaction_id
        message = commands.encode_command(
            name, txn, command_object, *args, message_stream_id=stream_id,
            object_encoding=self.object_encoding if object_encoding is None else object_encoding,
        )  # fmt: skip
        if txn:
            self.track(txn, reply)
        return message, txn

    def request(
        self,
        request: Request,
        *,
        stream_id: Optional[int] = None,
        reply: ReplyMode = ReplyMode.AWAIT,
        transaction_id: Optional[int] = None,
        object_encoding: Optional[int] = None,
    ) -> Tuple[Message, int]:
        """A typed request as a message; (the message, its txn).

        NetStream commands (RTMP 7.2.2) go with transaction id 0 and nothing is recorded;
        :class:`~rtmp.requests.Connect` takes id 1 and AMF0 (RTMP 7.2.1.1); any other
        NetConnection call a fresh id, recorded as ``reply`` says.  ``transaction_id``
        and ``object_encoding`` override those choices.
        """
        if transaction_id is not None:
            txn = transaction_id
        elif request.netstream:
            txn = 0
        elif isinstance(request, Connect):
            txn = CONNECT_TRANSACTION_ID
        else:
            txn = self.next_transaction()
        if object_encoding is not None:
            encoding = object_encoding
        else:
            encoding = commands.AMF0 if isinstance(request, Connect) else self.object_encoding
        message = request.to_message(txn, object_encoding=encoding, message_stream_id=stream_id)
        if txn and not request.netstream:
            self.track(txn, reply)
        return message, txn

    def cancel(self, transaction_id: int) -> None:
        """Stop awaiting ``transaction_id`` (e.g. after a time-out): a late reply is then
        :class:`Unhandled`."""
        self._awaited.discard(transaction_id)
        self._ignored.discard(transaction_id)
        self._outcomes.pop(transaction_id, None)

    def take(self, transaction_id: int) -> Union[CallResult, CallError, None]:
        """The outcome of an awaited call once its reply came (then forgotten), else None."""
        return self._outcomes.pop(transaction_id, None)

    # -- status waits --------------------------------------------------------------------

    def expect_status(
        self,
        stream_id: int,
        success: Optional[Collection[str]] = None,
        failure: Optional[Collection[str]] = None,
        *,
        also_consumed: Collection[str] = (),
        stream_zero: bool = True,
        error_replies: bool = False,
        what: str = "",
    ) -> StatusWait:
        """Wait for an ``onStatus`` (RTMP 7.2.2) on ``stream_id``.

        ``success``: the codes that complete the wait (None: any code that does not fail
        it).  ``failure``: the codes that fail it (None: any status at level ``error``,
        Appendix B).  ``also_consumed``: codes consumed on the way.  ``stream_zero``:
        statuses on message stream 0 count too ([impl] some servers send them there).
        ``error_replies``: an ``_error`` with transaction id 0 fails the wait (RTMP
        7.2.2.7: seek and pause fail that way).
        """
        wait = StatusWait(
            stream_id,
            None if success is None else frozenset(success),
            None if failure is None else frozenset(failure),
            frozenset(also_consumed),
            stream_zero,
            error_replies,
            what,
        )
        self._waits.append(wait)
        return wait

    def cancel_status(self, wait: StatusWait) -> None:
        """Stop waiting (e.g. after a time-out); later statuses are :class:`StatusEvent`."""
        if wait in self._waits:
            self._waits.remove(wait)

    # -- receiving -----------------------------------------------------------------------

    def receive(self, item: Union[Message, Command]) -> List[Event]:
        """Account for one incoming command; the events it gives (see the module doc).

        A :class:`Message` is decoded first (:class:`rtmp.ProtocolError` when it is not
        a well-formed command, RTMP 7.1.1).
        """
        cmd = item if isinstance(item, Command) else commands.decode_command(item)
        name = cmd.name
        if name in (commands.RESULT, commands.ERROR):
            return [self._reply(cmd)]
        if name == commands.ON_STATUS:
            return [self._status(cmd)]
        if name == commands.ON_BW_DONE:
            # [impl] nginx-rtmp and ffmpeg's server call onBWDone after connect; ffmpeg
            # answers with _checkbw, fire-and-forget.
            events: List[Event] = []
            if self.answer_bandwidth_check:
                message, txn = self.call(commands.CHECK_BW, reply=ReplyMode.IGNORE)
                events.append(Outgoing(message, txn))
            events.append(Consumed(cmd, "onBWDone"))
            return events
        txn = int(cmd.transaction_id)
        if name in BANDWIDTH_CHECKS and txn:
            # [impl] FMS's bandwidth probe (librtmp SendCheckBWResult): answer _result.
            answer = commands.result(txn, None, 0, object_encoding=self.object_encoding)
            return [Outgoing(answer, txn), Consumed(cmd, name)]
        if name in (commands.ON_FC_PUBLISH, commands.ON_FC_UNPUBLISH):
            self.log.debug("%s %s", name, cmd.info)
            return [Consumed(cmd, name)]
        return [Unhandled(cmd)]  # onPlayStatus, the server's own calls: the application's

    def _reply(self, cmd: Command) -> Event:
        """RTMP 7.2: a ``_result``/``_error`` is matched to its call by transaction id."""
        txn = int(cmd.transaction_id)
        if self.exact_ids and txn != cmd.transaction_id:
            txn = 0  # 2.5 answers no call
        if txn and txn in self._awaited:
            self._awaited.discard(txn)
            outcome: Union[CallResult, CallError]
            if cmd.name == commands.RESULT:
                outcome = CallResult(txn, cmd.command_object, tuple(cmd.arguments), cmd)
            else:
                error = commands.command_error(cmd)
                outcome = CallError(txn, error.code, error.description, dict(cmd.info or {}), cmd)
            self._outcomes[txn] = outcome
            return outcome
        if txn and txn in self._ignored:
            self._ignored.discard(txn)
            self.log.debug("%s to fire-and-forget transaction %d ignored", cmd.name, txn)
            return Consumed(cmd, "reply to a call that needs none")
        if cmd.name == commands.ERROR and cmd.transaction_id == 0:
            for wait in self._waits:
                if wait.error_replies:
                    return self._finish(wait, StatusFailed(wait, StatusEvent.from_command(cmd), cmd))
        self.log.debug("%s for unknown transaction %d passed on", cmd.name, txn)
        return Unhandled(cmd)

    def _status(self, cmd: Command) -> Event:
        """RTMP 7.2.2: an ``onStatus`` completes or fails the first wait on its stream,
        is consumed on the way, or is passed on as a :class:`StatusEvent`."""
        status = StatusEvent.from_command(cmd)
        self.log.debug("onStatus %s (%s) on stream %d", status.code or None,
                       status.level or None, status.stream_id)
        msid = cmd.message_stream_id
        for wait in self._waits:
            if msid != wait.stream_id and not (wait.stream_zero and msid == 0):
                continue
            code = cmd.code
            if wait.success is not None and code in wait.success:
                return self._finish(wait, StatusReached(wait, status, cmd))
            if wait._fails(cmd):
                return self._finish(wait, StatusFailed(wait, status, cmd))
            if wait.success is None:
                return self._finish(wait, StatusReached(wait, status, cmd))
            if code in wait.also_consumed:
                return Consumed(cmd, f"{code} while waiting for {wait.what or 'a status'}")
        return status

    def _finish(self, wait: StatusWait, outcome: Union[StatusReached, StatusFailed]) -> Event:
        wait.outcome = outcome
        self._waits.remove(wait)
        return outcome
