"""RTMP 7.2.1 and 7.3: the message exchanges of the spec, checked against our server.

A hand-driven client (a bare :class:`~rtmp.transport.Transport` that shows every
protocol control message) records what the server sends, in order, and compares
it with the flows of RTMP 7.2.1.1, 7.3.1 and 7.3.3.
"""

from __future__ import annotations

import socket
from typing import Iterator, List

import pytest

import rtmp
from rtmp import Message, MessageType, commands, user_control
from rtmp.transport import Transport


@pytest.fixture
def server() -> Iterator[rtmp.Server]:
    with rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0")) as srv:
        yield srv


def describe(message: Message) -> str:
    """A short label: control messages by name, commands by name and status code."""
    if message.type == MessageType.USER_CONTROL:
        return user_control.decode(message.data).name
    if message.type in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
        command = commands.decode_command(message)
        return command.code or command.name
    return MessageType(message.type).name


def read_until(transport: Transport, label: str, limit: int = 20) -> List[str]:
    seen: List[str] = []
    for _ in range(limit):
        seen.append(describe(transport.read_message(timeout=5)))
        if seen[-1] == label:
            return seen
    raise AssertionError(f"{label} not among {seen}")


def open_client(server: rtmp.Server) -> Transport:
    host, port = server.address
    transport = Transport(socket.create_connection((host, port), timeout=5), role="client")
    transport.handshake(5)
    transport.session.deliver_control = True
    return transport


@pytest.mark.spec("RTMP 7.2.1", "RTMP 7.2.1.1", "RTMP 7.3", "RTMP 7.3.1", "RTMP 7.3.3")
def test_connect_create_stream_publish_flow(server: rtmp.Server) -> None:
    client = open_client(server)
    host, port = server.address
    client.write_message(commands.connect(commands.connect_command_object(
        "live", f"rtmp://{host}:{port}/live")))
    connect_flow = read_until(client, "NetConnection.Connect.Success")
    # RTMP 7.2.1.1 / 7.3.1: Window Acknowledgement Size, Set Peer Bandwidth, Stream Begin,
    # then the _result (Set Chunk Size between them is the [impl] addition of nginx/ffmpeg).
    assert connect_flow.index("WINDOW_ACK_SIZE") < connect_flow.index("SET_PEER_BANDWIDTH")
    assert connect_flow.index("SET_PEER_BANDWIDTH") < connect_flow.index("STREAM_BEGIN")
    assert connect_flow[-1] == "NetConnection.Connect.Success"
    # The client answers Set Peer Bandwidth with its Window Acknowledgement Size (step 4).
    client.send_window_ack_size(2_500_000)

    client.write_message(commands.create_stream(2))
    for _ in range(20):
        reply = client.read_message(timeout=5)
        if reply.type in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
            created = commands.decode_command(reply)
            if created.name != "onBWDone":  # [impl] ffmpeg/FMS call after connect
                break
    assert created.name == "_result" and created.transaction_id == 2  # RTMP 7.2.1.3
    stream_id = int(created.arguments[0])
    assert stream_id > 0

    client.write_message(commands.publish("flowtest", "live", stream_id))
    publish_flow = read_until(client, commands.NETSTREAM_PUBLISH_START)
    assert "STREAM_BEGIN" in publish_flow  # RTMP 7.3.3: Stream Begin before the status
    # RTMP 7.3.3: the publisher then sends metadata and media.
    client.write_message(commands.metadata({"width": 320}, stream_id))
    client.write_message(Message(type=MessageType.AUDIO, data=b"\xaf\x01abc", timestamp=0,
                                 message_stream_id=stream_id))
    client.write_message(commands.delete_stream(stream_id))  # RTMP 7.2.2.3: no reply
    client.close()


@pytest.mark.spec("RTMP 7.2.1", "RTMP 7.2.1.2")
def test_unknown_call_gets_an_error_with_its_transaction_id(server: rtmp.Server) -> None:
    client = open_client(server)
    host, port = server.address
    client.write_message(commands.connect(commands.connect_command_object(
        "live", f"rtmp://{host}:{port}/live")))
    read_until(client, "NetConnection.Connect.Success")
    client.write_message(commands.encode_command("noSuchProcedure", 7, None, "arg"))
    for _ in range(20):
        message = client.read_message(timeout=5)
        if message.type == MessageType.COMMAND_AMF0:
            command = commands.decode_command(message)
            if command.name == "_error":
                assert command.transaction_id == 7
                break
    else:
        raise AssertionError("no _error for an unknown call")
    client.close()
