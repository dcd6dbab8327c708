"""Enhanced RTMP on the server side (issue 18): what connect's ``_result`` states, what each
client stated (``ServerConnection.client_caps``), sequence starts cached per codec and track
for late joiners, the GOP cache, the recorder and VOD on E-FLV."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from rtmp import Client, ClientConfig, Server, ServerConfig, ServerConnection
from rtmp.netconnection import server_caps
from rtmp.requests import (
    CAPS_EX_MOD_EX,
    CAPS_EX_MULTITRACK,
    CAPS_EX_RECONNECT,
    CAPS_EX_TIMESTAMP_NANO_OFFSET,
    FOURCC_CAN_FORWARD,
    EnhancedCaps,
)

CONNECT = "ERTMP Enhancing NetConnection connect Command"


def url_of(server: Server, path: str = "live/key") -> str:
    host, port = server.address
    return f"rtmp://{host}:{port}/{path}"


# -- connect: what the server states, what the client stated -----------------------------------


@pytest.mark.spec(CONNECT, "RTMP 7.2.1.1")
@pytest.mark.parametrize("encoding", [0, 3])
def test_result_states_the_server_caps_and_the_api_shows_the_clients(encoding: int) -> None:
    seen: List[EnhancedCaps] = []
    sent: Dict[str, Any] = {"fourCcList": ["hvc1", "av01", "Opus"],
                            "videoFourCcInfoMap": {"hvc1": 1.0, "*": 4.0},
                            "audioFourCcInfoMap": {"Opus": 3.0}, "capsEx": 7.0}
    config = ServerConfig(addr="127.0.0.1:0", on_connect=lambda c: seen.append(c.client_caps))
    with Server(config) as server:
        with Client(ClientConfig(connect_properties=sent, object_encoding=encoding)) as client:
            client.connect(url_of(server))
            props = client.server_properties
            conn: ServerConnection = server.connections[0]
            assert conn.client_caps == EnhancedCaps.from_object(sent) == seen[0]
            assert conn.client_caps.fourcc_list == ("hvc1", "av01", "Opus")
            assert conn.client_caps.has(CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK | CAPS_EX_MOD_EX)
    # The _result's properties: the legacy ones and the E-RTMP ones.
    assert props["fmsVer"].startswith("FMS/") and props["capabilities"] == 31
    stated = EnhancedCaps.from_object(props)
    assert stated == server_caps(reconnect=stated.has(CAPS_EX_RECONNECT))
    for fourcc in ("avc1", "hvc1", "av01", "vp09", "vp08", "vvc1"):
        assert fourcc in stated.fourcc_list
        assert stated.fourcc_flags(fourcc, video=True) == FOURCC_CAN_FORWARD
    for fourcc in ("mp4a", "Opus", "fLaC", ".mp3", "ac-3", "ec-3"):
        assert fourcc in stated.fourcc_list
        assert stated.fourcc_flags(fourcc, video=False) == FOURCC_CAN_FORWARD
    assert stated.video_fourcc_info_map["*"] == stated.audio_fourcc_info_map["*"] == FOURCC_CAN_FORWARD
    assert stated.has(CAPS_EX_MULTITRACK | CAPS_EX_MOD_EX | CAPS_EX_TIMESTAMP_NANO_OFFSET)
    # Reconnect is stated exactly when a connection can ask for one (issue 18 item 3).
    assert stated.has(CAPS_EX_RECONNECT) == callable(getattr(conn, "request_reconnect", None))


@pytest.mark.spec(CONNECT)
def test_a_legacy_client_has_empty_caps() -> None:
    with Server(ServerConfig(addr="127.0.0.1:0")) as server, Client() as client:
        client.connect(url_of(server))
        caps = server.connections[0].client_caps
        assert caps == EnhancedCaps() and not caps.enhanced


@pytest.mark.spec(CONNECT)
def test_server_caps_reconnect_bit() -> None:
    assert server_caps(reconnect=True).caps_ex == 0x0F
    assert server_caps(reconnect=False).caps_ex == 0x0E
