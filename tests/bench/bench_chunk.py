"""Benchmark: chunk encode and decode throughput (RTMP 5.3) at chunk sizes 128 and 4096.

The decoder is compared with the cheapest thing that can move the same bytes
through Python: a ``socket.recv_into`` loop copying each read out of a
preallocated buffer.  Target (issue 3): decode at 4096 within 3x of that loop.
"""

from __future__ import annotations

import random
import socket
import statistics
import threading
import time
from typing import Callable, Dict, List

from rtmp.chunk import ChunkDecoder, ChunkEncoder
from rtmp.message import Message, MessageType

READ_SIZE = 256 * 1024


def sample_messages(total_bytes: int = 48 * 1024 * 1024) -> List[Message]:
    """A video-like mix: a 200 KB keyframe every 50 messages, 5-40 KB inter frames, audio."""
    rng = random.Random(1)
    blob = rng.randbytes(256 * 1024) if hasattr(rng, "randbytes") else bytes(256 * 1024)
    messages: List[Message] = []
    size = 0
    ts = 0
    i = 0
    while size < total_bytes:
        if i % 50 == 0:
            length = 200_000
        else:
            length = rng.randint(5_000, 40_000)
        messages.append(Message(type=MessageType.VIDEO, data=blob[:length], timestamp=ts,
                                message_stream_id=1))
        messages.append(Message(type=MessageType.AUDIO, data=blob[:400], timestamp=ts + 3,
                                message_stream_id=1))
        size += length + 400
        ts += 33
        i += 1
    return messages


def _timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def encode_seconds(messages: List[Message], chunk_size: int) -> float:
    encoder = ChunkEncoder(chunk_size)
    return _timed(lambda: [encoder.encode(m) for m in messages])


def decode_seconds(wire: bytes, chunk_size: int) -> float:
    def run() -> None:
        decoder = ChunkDecoder(chunk_size)
        view = memoryview(wire)
        count = 0
        for offset in range(0, len(wire), READ_SIZE):
            decoder.receive_data(view[offset : offset + READ_SIZE])
            for _ in decoder.messages():
                count += 1
        assert decoder.buffered == 0

    return _timed(run)


def recv_copy_seconds(wire: bytes) -> float:
    """The baseline: receive ``wire`` over a socketpair with recv_into and copy each read."""
    a, b = socket.socketpair()
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sender = threading.Thread(target=a.sendall, args=(wire,))
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    received = 0
    start = time.perf_counter()
    sender.start()
    chunks = []
    while received < len(wire):
        n = b.recv_into(buffer)
        chunks.append(bytes(view[:n]))
        received += n
    elapsed = time.perf_counter() - start
    sender.join()
    a.close()
    b.close()
    return elapsed


def decode_over_socket_seconds(wire: bytes, chunk_size: int) -> float:
    """The decoder fed by the same socket loop (what a server really does)."""
    a, b = socket.socketpair()
    sender = threading.Thread(target=a.sendall, args=(wire,))
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    decoder = ChunkDecoder(chunk_size)
    received = 0
    start = time.perf_counter()
    sender.start()
    while received < len(wire):
        n = b.recv_into(buffer)
        decoder.receive_data(view[:n])
        for _ in decoder.messages():
            pass
        received += n
    elapsed = time.perf_counter() - start
    sender.join()
    a.close()
    b.close()
    return elapsed


def run(repeat: int = 3, total_bytes: int = 48 * 1024 * 1024) -> List[Dict[str, object]]:
    """Rows for the benchmark table: MB/s per run, ours and the baseline."""
    messages = sample_messages(total_bytes)
    payload = sum(len(m.data) for m in messages) / 1e6
    rows: List[Dict[str, object]] = []
    for chunk_size in (128, 4096):
        encoder = ChunkEncoder(chunk_size)
        wire = b"".join(encoder.encode(m) for m in messages)
        enc = [payload / encode_seconds(messages, chunk_size) for _ in range(repeat)]
        rows.append({"group": "chunk", "name": f"encode, chunk size {chunk_size}",
                     "unit": "MB/s", "ours": enc})
        baseline = [len(wire) / 1e6 / recv_copy_seconds(wire) for _ in range(repeat)]
        dec = [len(wire) / 1e6 / decode_over_socket_seconds(wire, chunk_size)
               for _ in range(repeat)]
        rows.append({"group": "chunk", "name": f"decode from socket, chunk size {chunk_size}",
                     "unit": "MB/s", "ours": dec, "peer": baseline,
                     "peer_name": "recv_into copy loop", "target": "ratio >= 0.33"
                     if chunk_size == 4096 else ""})
        pure = [len(wire) / 1e6 / decode_seconds(wire, chunk_size) for _ in range(repeat)]
        rows.append({"group": "chunk", "name": f"decode in memory, chunk size {chunk_size}",
                     "unit": "MB/s", "ours": pure})
    return rows


def main() -> None:
    for row in run():
        ours = statistics.median(row["ours"])  # type: ignore[arg-type]
        line = f"{row['name']:<40} {ours:10.1f} {row['unit']}"
        if "peer" in row:
            peer = statistics.median(row["peer"])  # type: ignore[arg-type]
            line += f"   {row['peer_name']}: {peer:.1f}  ratio {ours / peer:.2f}"
        print(line)


if __name__ == "__main__":
    main()
