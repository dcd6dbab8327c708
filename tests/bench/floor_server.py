"""A floor for the connection-rate benchmark: the least a thread-per-connection CPython RTMP
server can do for one player session.  NOT a server to use: it exists to be measured.

``python -m tests.bench.floor_server --port N`` (``harness.FloorServer``, "py-thread-floor").

The project's design is one thread per connection on blocking sockets.  Its cost per session
in CPython is mostly thread wake-ups and GIL hand-offs around every blocking call, whatever the
RTMP code does between them.  This module keeps that skeleton and removes everything else, so
its sessions/s and server CPU per session in ``bench_connections`` show the ceiling of the
design on the machine of the run, next to our server and rtmplite3.

What it does, per session, on blocking socket calls:

* threads as our server runs them (``rtmp/server.py``, leader/follower): a few threads block
  in ``accept()`` one at a time under a lock; the one that gets a client starts another if
  none is left waiting, serves the whole session, then returns to ``accept()`` (or ends when
  enough are waiting already);
* RTMP 5.2 handshake: reads C0+C1, writes S0+S1+S2 in one ``sendall`` (S1: zero time, zero,
  1528 random bytes, RTMP 5.2.3; S2: the echo of C1, RTMP 5.2.4), skips C2;
* reassembles the client's chunks with :class:`rtmp.chunk.ChunkDecoder` (RTMP 5.3, applying
  the client's Set Chunk Size, RTMP 5.4.1) and recognises AMF0 commands (RTMP 7.1.1) by the
  name bytes at the start of the payload;
* replies with bytes chunked once at start-up: ``connect`` (RTMP 7.2.1.1) gets Window
  Acknowledgement Size, Set Peer Bandwidth, Set Chunk Size 4096 and ``_result`` txn 1 with
  NetConnection.Connect.Success; ``createStream`` (RTMP 7.2.1.3) gets ``_result`` with the
  request's transaction id (encoded once per transaction id, then cached) and stream id 1;
  ``play`` (RTMP 7.2.2.1) gets Stream Begin (RTMP 7.1.7) and onStatus NetStream.Play.Reset
  and NetStream.Play.Start on message stream 1;
* ends the session at EOF (or on any socket or chunk-stream error) and closes the socket.

What it leaves out (all of which our server does): AMF decoding of commands and their
arguments, connection state and callbacks, per-connection limits and timeouts,
acknowledgements (RTMP 5.4.3), stream names and the stream hub, publishing and media, any
other command (``deleteStream``, ``releaseStream`` ... are read and ignored), logging, and an
orderly stop (it runs until its process is terminated).
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import threading
from typing import Dict, List, Optional

from rtmp import commands, control, user_control
from rtmp.chunk import ChunkDecoder, ChunkEncoder
from rtmp.errors import RTMPError
from rtmp.message import Message
from rtmp.server import MAX_SPARE_THREADS  # our server's figure: threads waiting in accept()

__all__ = ["FloorServer", "main"]

CHUNK_SIZE = 4096
WINDOW = 2_500_000
#: RTMP 5.2: C0 + C1, and C2.
C0C1 = 1537
C2 = 1536
READ_SIZE = 65536
#: RTMP 7.1.1: an AMF0 command payload starts with its name as an AMF0 string (marker 2,
#: 16-bit length); the transaction id follows as an AMF0 number (marker 0, 8-byte double).
_CONNECT = b"\x02\x00\x07connect"
_CREATE_STREAM = b"\x02\x00\x0ccreateStream"
_PLAY = b"\x02\x00\x04play"
_COMMAND_AMF0 = 20
_STREAM_ID = 1


def _chunked(messages: List[Message], chunk_size: int = CHUNK_SIZE) -> bytes:
    """Messages as chunks from a fresh encoder (type 0 headers first, RTMP 5.3.1.2)."""
    encoder = ChunkEncoder(chunk_size)
    return b"".join(encoder.encode(m) for m in messages)


class FloorServer:
    """The listener, the leader/follower threads and the pre-chunked replies."""

    def __init__(self, host: str, port: int, max_spares: int = MAX_SPARE_THREADS) -> None:
        self.listener = socket.create_server((host, port), backlog=128)
        self.max_spares = max_spares
        self._accept_lock = threading.Lock()
        self._lock = threading.Lock()
        self._spares = 0
        # RTMP 5.4.1: the connect reply is chunked at 128 until its Set Chunk Size, then 4096.
        greeting = ChunkEncoder()
        self.connect_reply = b"".join(greeting.encode(m) for m in (
            control.window_ack_size(WINDOW), control.set_peer_bandwidth(WINDOW, 2),
            control.set_chunk_size(CHUNK_SIZE)))
        greeting.set_chunk_size(CHUNK_SIZE)
        self.connect_reply += greeting.encode(commands.connect_result())
        self.play_reply = _chunked([
            user_control.stream_begin(_STREAM_ID),
            commands.on_status(commands.NETSTREAM_PLAY_RESET, "Playing and resetting.",
                               message_stream_id=_STREAM_ID),
            commands.on_status(commands.NETSTREAM_PLAY_START, "Started playing.",
                               message_stream_id=_STREAM_ID),
        ])
        self._create_replies: Dict[bytes, bytes] = {}

    def create_stream_reply(self, txn: bytes) -> bytes:
        """RTMP 7.2.1.3: ``_result, txn, null, 1`` for the 8 bytes of a transaction id."""
        reply = self._create_replies.get(txn)
        if reply is None:
            (number,) = struct.unpack(">d", txn)
            reply = _chunked([commands.result(number, None, _STREAM_ID)])
            self._create_replies[txn] = reply  # a dict store: atomic under the GIL
        return reply

    # -- threads --------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            self._new_spare()

    def _new_spare(self) -> None:
        """Start a thread that waits in accept() (call with ``_lock`` held)."""
        threading.Thread(target=self._connection_thread, name="floor-spare", daemon=True).start()
        self._spares += 1

    def _connection_thread(self) -> None:
        """Accept a client, serve its session, and again while wanted (leader/follower)."""
        while True:
            with self._accept_lock:  # one thread at a time blocks in accept()
                try:
                    sock, _ = self.listener.accept()
                except OSError:
                    sock = None
            with self._lock:
                self._spares -= 1
                if sock is not None and self._spares == 0:
                    self._new_spare()  # never leave the listener without a thread
            if sock is None:
                return
            self.serve(sock)
            with self._lock:
                if self._spares >= self.max_spares:
                    return
                self._spares += 1

    # -- one session ------------------------------------------------------------------------

    def serve(self, sock: socket.socket) -> None:
        """One session on blocking calls; returns at EOF or on any error."""
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buffer = bytearray(READ_SIZE)
            view = memoryview(buffer)
            got = 0
            while got < C0C1:  # RTMP 5.2.5: the server waits for C0 and C1
                n = sock.recv_into(view[got:])
                if not n:
                    return
                got += n
            # RTMP 5.2.2-5.2.4: S0 (version 3), S1 (time 0, zero, random), S2 (C1 echoed).
            sock.sendall(b"\x03" + bytes(8) + os.urandom(1528) + view[1:C0C1])
            decoder = ChunkDecoder()
            skip = C2  # C2 bytes still to drop before the chunk stream starts
            data = view[C0C1:got]
            while True:
                if skip:
                    dropped = min(skip, len(data))
                    skip -= dropped
                    data = data[dropped:]
                if data:
                    decoder.receive_data(data)
                    for message in decoder.messages():
                        if message.type == _COMMAND_AMF0:
                            self._answer(sock, message.data)
                n = sock.recv_into(buffer)
                if not n:
                    return
                data = view[:n]
        except (OSError, RTMPError):
            return
        finally:
            sock.close()

    def _answer(self, sock: socket.socket, payload: bytes) -> None:
        """Reply to connect, createStream and play, recognised by their AMF0 name bytes."""
        if payload.startswith(_CONNECT):
            sock.sendall(self.connect_reply)
        elif payload.startswith(_CREATE_STREAM):
            at = len(_CREATE_STREAM)
            if payload[at:at + 1] == b"\x00" and len(payload) >= at + 9:
                sock.sendall(self.create_stream_reply(bytes(payload[at + 1:at + 9])))
        elif payload.startswith(_PLAY):
            sock.sendall(self.play_reply)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.floor_server",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-spares", type=int, default=MAX_SPARE_THREADS,
                        help="threads that may wait in accept() at once")
    args = parser.parse_args(argv)
    server = FloorServer(args.host, args.port, args.max_spares)
    server.start()
    threading.Event().wait()  # until the process is terminated


if __name__ == "__main__":
    main()
