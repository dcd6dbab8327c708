"""RTMP 5.3 / 7.1: hypothesis-chosen garbage sent to the live server after a valid connect.

Where ``tests/fuzz`` drives each parser in-process, this sends mutated chunk streams over
real sockets to the shared server, then closes: every session must end (promptly, since
the peer has gone) without an unexpected exception, and the healthy pair must not notice.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtmp import commands
from rtmp.chunk import ChunkEncoder
from rtmp.message import Message, MessageType
from tests.hostile.harness import HostileEnv, wait_until

logger = logging.getLogger(__name__)

_payloads = st.binary(max_size=300) | st.sampled_from([
    commands.create_stream(2).data,
    commands.publish("fuzz", "live", message_stream_id=1).data,
    commands.play("fuzz", message_stream_id=1).data,
    b"\x00\x00\x00\x00\x00\x01",
])


@st.composite
def hostile_streams(draw: st.DrawFn) -> bytes:
    """Valid chunks of random messages, then byte-level mutations."""
    encoder = ChunkEncoder(draw(st.sampled_from([1, 64, 128, 4096])))
    messages = draw(st.lists(st.builds(
        lambda type_id, data, msid, csid: Message(type=MessageType(type_id), data=data,
                                                  message_stream_id=msid, chunk_stream_id=csid),
        st.sampled_from([1, 2, 3, 4, 5, 6, 8, 9, 15, 17, 18, 20, 22]),
        _payloads,
        st.integers(0, 2),
        st.sampled_from([None, 2, 3, 8, 64, 320]),
    ), max_size=6))
    data = bytearray(b"".join(encoder.encode(m) for m in messages))
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@pytest.mark.timeout(240)
@pytest.mark.spec("RTMP 5.3.1", "RTMP 7.1")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=hostile_streams())
def test_mutated_streams_after_connect(hostile: HostileEnv, data: bytes) -> None:
    with hostile.peer() as peer:
        peer.connect()
        peer.send(data)
    # The peer has gone: its session must end promptly (EOF mid-chunk is a ProtocolError).
    assert wait_until(
        lambda: hostile.server.connection_count <= hostile.baseline_connections, 5
    ), "a session outlived its peer"
    assert hostile.server.stats.errors == 0, "a session crashed"


@pytest.mark.timeout(60)
@pytest.mark.spec("RTMP 5.3.1", "RTMP 7.1")
def test_healthy_after_live_fuzzing(hostile: HostileEnv) -> None:
    """Runs after the fuzz test in file order: everything is back at the baseline."""
    hostile.assert_healthy()
