"""One :class:`rtmp.chunk.Limits` carried config -> transport -> session -> chunk decoder."""

from __future__ import annotations

import socket
from typing import Any, Dict

import pytest

from rtmp import LimitExceededError
from rtmp.chunk import DEFAULT_LIMITS, ChunkDecoder, Limits
from rtmp.client import ClientConfig
from rtmp.server import ServerConfig
from rtmp.session import Session
from rtmp.transport import Transport

#: A type 0 header announcing a 0xFFFFFF-byte video message on chunk stream 3.
HUGE_HEADER = bytes.fromhex("03" "000000" "ffffff" "09" "01000000")


@pytest.mark.spec("RTMP 5.3.1.2.5")
def test_decoder_enforces_the_limits_object() -> None:
    decoder = ChunkDecoder(limits=Limits(max_message_size=1 << 20))
    decoder.receive_data(HUGE_HEADER)
    with pytest.raises(LimitExceededError, match="max_message_size"):
        decoder.next_message()


def test_keywords_override_the_limits_object() -> None:
    decoder = ChunkDecoder(limits=Limits(max_message_size=10, max_chunk_streams=5),
                           max_chunk_streams=7)
    assert decoder.limits == Limits(max_message_size=10, max_chunk_streams=7)
    assert (decoder.max_message_size, decoder.max_chunk_streams) == (10, 7)
    assert ChunkDecoder().limits is DEFAULT_LIMITS
    assert Limits.of(None, max_chunk_size=4096).max_chunk_size == 4096


def test_session_and_transport_pass_it_down() -> None:
    limits = Limits(max_message_size=1234, max_chunk_streams=9, max_pending_bytes=99_999,
                    max_chunk_size=65536)
    assert Session(limits=limits).decoder.limits == limits
    a, b = socket.socketpair()
    try:
        transport = Transport(a, role="client", limits=limits)
        assert transport.session.decoder.limits == limits
        old_style = Transport(b, role="server", max_chunk_size=4096)
        assert old_style.session.decoder.limits == Limits(max_chunk_size=4096)
    finally:
        a.close()
        b.close()


def test_server_config_offers_its_limits() -> None:
    config = ServerConfig(max_message_size=1000, max_chunk_streams=8, max_pending_bytes=5000,
                          max_chunk_size=4096)
    assert config.limits == Limits(1000, 8, 5000, 4096)


def test_client_config_takes_a_limits_object() -> None:
    assert ClientConfig().limits is None
    limits = Limits(max_message_size=1 << 16)
    assert ClientConfig(limits=limits).limits is limits


@pytest.mark.parametrize("limits", [
    Limits(max_message_size=0), Limits(max_chunk_streams=0), Limits(max_pending_bytes=-1),
    Limits(max_chunk_size=0), Limits(max_chunk_size=0x80000000),
])
def test_both_configs_refuse_bad_limits(limits: Limits) -> None:
    with pytest.raises(ValueError):
        ClientConfig(limits=limits)
    fields: Dict[str, Any] = {
        "max_message_size": limits.max_message_size,
        "max_chunk_streams": limits.max_chunk_streams,
        "max_pending_bytes": limits.max_pending_bytes,
        "max_chunk_size": limits.max_chunk_size,
    }
    with pytest.raises(ValueError):
        ServerConfig(**fields)


@pytest.mark.parametrize("field, value", [
    ("chunk_size", 0), ("chunk_size", 0x80000000), ("window_ack_size", 0),
    ("window_ack_size", 0x100000000), ("read_timeout", 0), ("write_timeout", -1),
])
def test_both_configs_check_shared_fields_alike(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        ClientConfig(**{field: value})
    with pytest.raises(ValueError, match=field):
        ServerConfig(**{field: value})


@pytest.mark.spec("RTMP 5.3.1.2.5")
def test_client_applies_its_limits_to_what_the_server_sends() -> None:
    """A client whose limits refuse the server's onMetaData (late joiner cache) ends."""
    from rtmp import commands
    from rtmp.client import Client
    from rtmp.errors import RTMPError
    from rtmp.server import Server

    with Server(ServerConfig(addr="127.0.0.1:0")) as server:
        host, port = server.address
        url = f"rtmp://{host}:{port}/live/big"
        with Client(ClientConfig(read_timeout=5)) as publisher:
            publisher.connect(url)
            publisher.publish("big")
            publisher.write_message(commands.metadata({"blob": "x" * 4000}, 1))
            small = ClientConfig(read_timeout=5, limits=Limits(max_message_size=2000))
            with Client(small) as player:
                player.connect(url)
                with pytest.raises(RTMPError):
                    player.play("big")
                    for _ in range(50):
                        player.read_message(timeout=5)
            with Client(ClientConfig(read_timeout=5)) as player:
                player.connect(url)
                player.play("big")
                sizes = []
                for _ in range(5):
                    got = player.read_message(timeout=5)
                    assert got is not None
                    sizes.append(len(got.data))
                    if sizes[-1] > 2000:
                        break
                assert max(sizes) > 2000  # the same metadata passes the default limits
