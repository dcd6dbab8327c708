"""Seed corpora for the atheris targets: valid inputs our own encoders produce.

    python -m tests.fuzz.seeds corpus/          # corpus/chunk, corpus/handshake, ...
    python -m tests.fuzz.fuzz_chunk corpus/chunk -max_total_time=600

libFuzzer mutates from these, so it starts inside the protocol instead of at random bytes.
Each seed is also replayed through its target here, so a seed that fails is caught at once.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Callable, Dict, List

from rtmp import amf0, amf3, commands, control, user_control
from rtmp.chunk import ChunkEncoder
from rtmp.handshake import ClientHandshake, ServerHandshake
from rtmp.message import Message, MessageType
from tests.fuzz import (
    fuzz_amf0,
    fuzz_ertmp,
    fuzz_amf3,
    fuzz_chunk,
    fuzz_commands,
    fuzz_handshake,
    fuzz_session,
)

logger = logging.getLogger(__name__)

VALUES = [None, True, 1.5, "live", [1, "a", None], {"app": "live", "n": [1, {"x": 2}]}]


def _chunk_streams() -> List[bytes]:
    connect = commands.connect(commands.connect_command_object("live", "rtmp://h/live"))
    media = [Message(type=MessageType.VIDEO, data=b"\x17\x01" + bytes(300), timestamp=t,
                     message_stream_id=1) for t in (0, 40, 0xFFFFFF + 5)]
    out = []
    for size in (1, 128, 4096):
        encoder = ChunkEncoder(size)
        parts = [encoder.encode(m) for m in [connect, *media]]
        out.append(bytes([size & 0x7F]) + b"".join(parts))
    controls = ChunkEncoder(128)
    out.append(b"\x00" + b"".join(controls.encode(m) for m in (
        control.set_chunk_size(64), control.abort(5), control.window_ack_size(1000),
        control.set_peer_bandwidth(1000, 2), user_control.ping_request(7))))
    return out


def _handshakes() -> List[bytes]:
    out = []
    for digest in (False, True):
        client = ClientHandshake(digest=digest, now_ms=1, random=bytes)
        server = ServerHandshake(now_ms=2, random=bytes)
        c01 = client.data_to_send()
        server.receive_data(c01)
        s012 = server.data_to_send()
        client.receive_data(s012)
        c2 = client.data_to_send()
        flag = 0x20 if digest else 0
        out.append(bytes([0x80 | flag]) + c01 + c2)  # for our server
        out.append(bytes([flag]) + s012)  # for our client
    return out


def _commands() -> List[bytes]:
    records = []
    for name, args in (("createStream", []), ("publish", ["x", "live"]), ("play", ["x", -2]),
                       ("seek", [1000]), ("pause", [True, 0]), ("deleteStream", [1])):
        records.append((0, 1, commands.encode_command(name, 2, None, *args).data))
    records.append((2, 1, b"\xaf\x00\x12\x10"))
    records.append((3, 1, b"\x17\x00\x00\x00\x00\x01\x64"))
    return [fuzz_commands.encode_records(records)]


def _ertmp_messages() -> List[bytes]:
    """ERTMP: enhanced video (selector 0) and audio (selector 1) messages of every layout."""
    from rtmp import ertmp

    nano = [ertmp.ModEx.timestamp_offset_nano(500_000)]
    video = [
        ertmp.build_video(1, 0, [ertmp.TrackData("hvc1", b"hvcC")]),
        ertmp.build_video(2, 1, [ertmp.TrackData("avc1", b"NAL", 0, -40)], mod_ex=nano),
        ertmp.build_video(5, 4, [ertmp.TrackData("av01", ertmp.encode_metadata([("colorInfo", {})]))]),
        ertmp.build_video(5, 1, command=1),
        ertmp.build_video(1, 1, [ertmp.TrackData("hvc1", b"a", 0, 3), ertmp.TrackData("hvc1", b"b", 1)],
                          multitrack_type=1),
        ertmp.build_video(1, 0, [ertmp.TrackData("vp09", b"c"), ertmp.TrackData("av01", b"d", 2)],
                          multitrack_type=2, mod_ex=[ertmp.ModEx(3, bytes(300))]),
    ]
    audio = [
        ertmp.build_audio(0, [ertmp.TrackData("Opus", b"")]),
        ertmp.build_audio(4, [ertmp.TrackData("fLaC", ertmp.MultichannelConfig(2, 2, (0, 1)).encode())]),
        ertmp.build_audio(1, [ertmp.TrackData("mp4a", b"x", 0), ertmp.TrackData("ac-3", b"y", 1)],
                          multitrack_type=2, mod_ex=nano),
    ]
    return [b"\x00" + v for v in video] + [b"\x01" + a for a in audio]


SEEDS: Dict[str, Callable[[], List[bytes]]] = {
    "chunk": _chunk_streams,
    "session": _chunk_streams,
    "handshake": _handshakes,
    "amf0": lambda: [amf0.encode_all(VALUES)] + [amf0.encode(v) for v in VALUES],
    "amf3": lambda: [amf3.encode_all(VALUES)] + [amf3.encode(v) for v in VALUES],
    "commands": _commands,
    "ertmp": _ertmp_messages,
}

TARGETS: Dict[str, Callable[[bytes], None]] = {
    "chunk": fuzz_chunk.fuzz_one,
    "session": fuzz_session.fuzz_one,
    "handshake": fuzz_handshake.fuzz_one,
    "amf0": fuzz_amf0.fuzz_one,
    "amf3": fuzz_amf3.fuzz_one,
    "commands": fuzz_commands.fuzz_one,
    "ertmp": fuzz_ertmp.fuzz_one,
}


def write(root: Path) -> int:
    """Write every seed under ``root/<target>/seed-N``, replaying each; the count written."""
    written = 0
    for name, make in SEEDS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index, seed in enumerate(make()):
            TARGETS[name](seed)
            (folder / f"seed-{index}").write_bytes(seed)
            written += 1
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.fuzz.seeds OUTPUT_DIR")
    print(f"{write(Path(sys.argv[1]))} seeds written under {sys.argv[1]}")
