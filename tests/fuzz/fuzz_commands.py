"""RTMP 7.1 / 7.2: fuzz target for the server's message dispatcher.

The input is a run of records ``[kind][msid][length u16][payload]``: ``kind`` picks the
message type (commands 20/17, media 8/9, data 18/15, user control 4, aggregate 22), the
payload is what a peer would put in it.  A :class:`rtmp.server.ServerConnection` over a
``socketpair`` first gets a valid ``connect``, then every record, through the same
``_dispatch`` the session thread uses.

Contract: the only exceptions are :class:`rtmp.RTMPError` subclasses (which end a real
session cleanly); anything else would be a session "crashed" with
``server.stats.errors`` counting it.  Replies are drained after every message and the
connection is torn down after every input, so no thread outlives one example.
"""

from __future__ import annotations

import itertools
import logging
import socket
import struct
from typing import Iterator, Tuple

from rtmp import commands
from rtmp.errors import RTMPError
from rtmp.message import Message, MessageType
from rtmp.server import Server, ServerConfig, ServerConnection
from rtmp.transport import Transport
from tests.fuzz._common import atheris_main

logger = logging.getLogger(__name__)

KINDS = (
    MessageType.COMMAND_AMF0,
    MessageType.COMMAND_AMF3,
    MessageType.AUDIO,
    MessageType.VIDEO,
    MessageType.DATA_AMF0,
    MessageType.DATA_AMF3,
    MessageType.USER_CONTROL,
    MessageType.AGGREGATE,
)

_server = Server(ServerConfig(addr="127.0.0.1:0", read_timeout=1.0, write_timeout=1.0,
                              handshake_timeout=1.0))
_ids = itertools.count(1)


def records(data: bytes) -> Iterator[Tuple[MessageType, int, bytes]]:
    """Split the fuzz input into ``(type, message stream id, payload)`` records."""
    pos = 0
    while pos + 4 <= len(data):
        kind, msid, length = data[pos], data[pos + 1], struct.unpack_from(">H", data, pos + 2)[0]
        pos += 4
        yield KINDS[kind % len(KINDS)], msid % 4, data[pos:pos + length]
        pos += length


def encode_records(items: "list[Tuple[int, int, bytes]]") -> bytes:
    """The inverse of :func:`records` (for structured strategies)."""
    return b"".join(bytes([kind, msid]) + struct.pack(">H", len(payload)) + payload
                    for kind, msid, payload in items)


def _drain(sock: socket.socket) -> None:
    while True:
        try:
            if not sock.recv(1 << 20):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return


def fuzz_one(data: bytes) -> None:
    """One fuzz input: connect, then every record through the dispatcher."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    conn = ServerConnection(_server, ours, f"fuzz-{next(_ids)}", ("127.0.0.1", 1))
    conn._transport = Transport(ours, role="server", conn_id=conn.id, read_timeout=1.0,
                                write_timeout=1.0)
    try:
        connect = commands.connect(commands.connect_command_object("live", "rtmp://h/live"))
        conn._dispatch(connect)
        _drain(theirs)
        for kind, msid, payload in records(data):
            if conn._closing.is_set():
                break
            try:
                conn._dispatch(Message(type=kind, data=payload, message_stream_id=msid))
            except RTMPError:
                break  # a real session ends here, cleanly
            finally:
                _drain(theirs)
    finally:
        conn.teardown()
        _drain(theirs)
        theirs.close()


if __name__ == "__main__":
    atheris_main(fuzz_one)
