"""Issue 10, item 1: every denial-of-service limit exists in ServerConfig, is documented, has
a sane default and is enforced (the enforcement tests are named next to each limit).

=========================  ===============================================================
limit                      enforced by
=========================  ===============================================================
handshake_timeout          test_handshake_hostile.py::TestSlowHandshake
read_timeout               test_chunk_hostile.py::test_stops_mid_message
idle_timeout               test_load_hostile.py::test_player_that_never_reads
write_timeout              test_load_hostile.py::test_player_that_never_reads
max_message_size           test_chunk_hostile.py::test_message_larger_than_max_message_size
max_chunk_size             test_limits.py::test_max_chunk_size_is_enforced
max_pending_bytes          test_limits.py::test_max_pending_bytes_is_enforced
max_chunk_streams          test_chunk_hostile.py::test_thousands_of_partial_chunk_streams
max_queue_bytes            test_load_hostile.py::test_player_that_never_reads
max_queue_delay            test_player_lag.py::TestSojournRule (issue 21)
max_connections            test_load_hostile.py::TestConnectionLimits
max_connections_per_ip     test_load_hostile.py::TestConnectionLimits
max_amf_depth              test_commands_hostile.py::TestNesting
=========================  ===============================================================
"""

from __future__ import annotations

import ast
import inspect
import logging
import struct
import textwrap
from typing import Dict

import pytest

import rtmp
from tests.hostile.harness import RawPeer, running_server
from tests.hostile.test_chunk_hostile import assert_still_serving, chunk

logger = logging.getLogger(__name__)

#: limit -> (smallest sane default, largest sane default); None: must not be None.
SANE_DEFAULTS: Dict[str, "tuple[float, float]"] = {
    "handshake_timeout": (1, 60),
    "read_timeout": (1, 300),
    "write_timeout": (1, 300),
    "idle_timeout": (10, 3600),
    "max_message_size": (64 * 1024, 16 * 1024 * 1024),
    "max_chunk_size": (4096, 0x7FFFFFFF),
    "max_chunk_streams": (8, 1024),
    "max_pending_bytes": (1024 * 1024, 64 * 1024 * 1024),
    "max_queue_bytes": (64 * 1024, 256 * 1024 * 1024),
    "max_queue_delay": (0.5, 30),
    "max_connections": (10, 100_000),
    "max_amf_depth": (8, 200),
}


def documented_fields() -> Dict[str, str]:
    """ServerConfig fields and the docstring written under each one."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(rtmp.ServerConfig)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: Dict[str, str] = {}
    for node, after in zip(body, body[1:] + [None]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = ""
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                text = str(after.value.value)
            docs[node.target.id] = text
    return docs


@pytest.mark.spec("RTMP 5.3.1.1")
@pytest.mark.parametrize("name", sorted(SANE_DEFAULTS) + ["max_connections_per_ip"])
def test_limit_exists_and_is_documented(name: str) -> None:
    docs = documented_fields()
    assert name in docs, f"ServerConfig has no {name}"
    assert len(docs[name]) > 15, f"ServerConfig.{name} has no docstring"


@pytest.mark.spec("RTMP 5.3.1.1")
@pytest.mark.parametrize("name", sorted(SANE_DEFAULTS))
def test_default_is_sane(name: str) -> None:
    config = rtmp.ServerConfig()
    value = getattr(config, name, None)
    assert value is not None, f"ServerConfig.{name} defaults to no limit"
    low, high = SANE_DEFAULTS[name]
    assert low <= value <= high, f"ServerConfig.{name} = {value}, outside {low}..{high}"


@pytest.mark.spec("RTMP 5.4.1")
@pytest.mark.timeout(30)
def test_max_chunk_size_is_enforced() -> None:
    """A Set Chunk Size above ServerConfig.max_chunk_size ends the session (LimitExceeded)."""
    with running_server(max_chunk_size=65536) as server:
        with RawPeer(server.address) as peer:
            peer.connect()
            peer.send(chunk(0, 2, length=4, type_id=1, data=struct.pack(">I", 65536)))
            assert_still_serving(peer)
            peer.send(chunk(0, 2, length=4, type_id=1, data=struct.pack(">I", 65537)))
            assert peer.wait_closed(5.0) < 1.0
        assert server.stats.errors == 0


@pytest.mark.spec("RTMP 5.3.1.2.1")
@pytest.mark.timeout(30)
def test_max_pending_bytes_is_enforced() -> None:
    """ServerConfig.max_pending_bytes bounds what partial messages may announce in total:
    without it a peer holds 4 x 16 MiB per connection (see test_resources.py)."""
    with running_server(max_message_size=1024 * 1024, max_pending_bytes=1536 * 1024) as server:
        with RawPeer(server.address) as peer:
            peer.connect()
            # 1 MiB announced on chunk stream 6: its first 128-byte chunk only.
            peer.send(chunk(0, 6, length=1024 * 1024, type_id=9, msid=1, data=bytes(128)))
            assert_still_serving(peer)
            # Another 1 MiB on chunk stream 7: 2 MiB pending > 1.5 MiB.
            peer.send(chunk(0, 7, length=1024 * 1024, type_id=9, msid=1, data=bytes(128)))
            assert peer.wait_closed(5.0) < 1.0
        assert server.stats.errors == 0
