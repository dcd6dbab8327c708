"""RTMP 7.2 client flows against a tiny scripted server speaking RTMP through rtmp.transport.

Each test runs a server thread that accepts one (or, for authentication, several)
connections on 127.0.0.1, does the RTMP 5.2 handshake with :class:`rtmp.transport.Transport`
and plays a script: it checks what the client sends and answers as real servers do.  The
real-server tests (nginx-rtmp, ffmpeg) are in ``tests/interop``.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rtmp
from rtmp import commands, flv, user_control
from rtmp.client import Client, ClientConfig, ClientState, play_to_flv, publish_flv
from rtmp.commands import Command
from rtmp.errors import (
    CommandError,
    ConnectionClosedError,
    HandshakeError,
    LimitExceededError,
)
from rtmp.message import Message, MessageType, StreamType, build_aggregate
from rtmp.transport import Transport
from tests.conftest import require_peer
from tests.peers import run

Script = Callable[[Transport, int], None]

#: Bounds every wait in these tests.
WAIT = 5.0


class ScriptedServer:
    """Accept up to ``connections`` clients in turn and run ``script(transport, index)``."""

    def __init__(self, script: Script, connections: int = 1, handshake: bool = True) -> None:
        self.script = script
        self.connections = connections
        self.handshake = handshake
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(WAIT)
        self.port = self.listener.getsockname()[1]
        self.error: Optional[BaseException] = None
        self.received: List[Message] = []
        self.thread = threading.Thread(target=self._run, name="scripted-server", daemon=True)

    def url(self, path: str = "live/key") -> str:
        return f"rtmp://127.0.0.1:{self.port}/{path}"

    def __enter__(self) -> "ScriptedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(WAIT * 2)
        self.listener.close()
        assert not self.thread.is_alive(), "scripted server did not finish"
        if self.error is not None and exc[0] is None:
            raise self.error

    def _run(self) -> None:
        try:
            for index in range(self.connections):
                conn, _ = self.listener.accept()
                transport = Transport(conn, role="server", conn_id=f"srv{index}",
                                      read_timeout=WAIT, write_timeout=WAIT)
                try:
                    if self.handshake:
                        transport.handshake(WAIT)
                    self.script(transport, index)
                finally:
                    transport.close()
        except BaseException as exc:  # reported by __exit__
            self.error = exc

    # -- helpers for scripts ----------------------------------------------------------------

    def expect(self, transport: Transport, name: str) -> Command:
        """Read until the command ``name`` arrives; other messages are kept in ``received``."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            message = transport.read_message(timeout=WAIT)
            self.received.append(message)
            if message.type in commands.COMMAND_TYPES:
                command = commands.decode_command(message)
                if command.name == name:
                    return command
        raise AssertionError(f"no {name} from the client")

    def accept_connect(self, transport: Transport, object_encoding: int = 0,
                       extra: Optional[Callable[[], None]] = None) -> Command:
        """RTMP 7.2.1.1 server side: Window Ack Size, Set Peer Bandwidth, StreamBegin, _result."""
        connect = self.expect(transport, "connect")
        transport.send_window_ack_size(2_500_000)
        transport.send_set_peer_bandwidth(2_500_000, 2)
        transport.write_message(user_control.stream_begin(0))
        if extra is not None:
            extra()
        transport.write_message(commands.connect_result(object_encoding))
        return connect

    def answer_create_stream(self, transport: Transport, stream_id: int = 1,
                             object_encoding: int = 0) -> Command:
        command = self.expect(transport, "createStream")
        transport.write_message(commands.result(command.transaction_id, None, stream_id,
                                                object_encoding=object_encoding))
        return command

    def drain(self, transport: Transport, seconds: float = 1.0) -> None:
        """Read what the client still sends until it closes (or ``seconds`` pass)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.received.append(transport.read_message(timeout=deadline - time.monotonic()))
            except (rtmp.TimeoutError, ConnectionClosedError):
                return

    def command_names(self) -> List[str]:
        return [commands.decode_command(m).name for m in self.received
                if m.type in commands.COMMAND_TYPES]


def config(**changes: Any) -> ClientConfig:
    values: Dict[str, Any] = {"connect_timeout": WAIT, "read_timeout": WAIT, "write_timeout": WAIT}
    values.update(changes)
    return ClientConfig(**values)


class TestConnect:
    """RTMP 7.2.1.1: the connect command and its reply."""

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_connect_object_and_server_info(self) -> None:
        seen: Dict[str, Any] = {}

        def script(t: Transport, _: int) -> None:
            connect = server.accept_connect(t)
            seen["connect"] = connect
            seen["in_chunk_size"] = t.in_chunk_size
            seen["window"] = t.session.ack_window
            server.drain(t)

        cfg = config(connect_properties={"type": "nonprivate"}, connect_arguments=["extra-arg"],
                     page_url="http://page", swf_url="http://swf")
        with ScriptedServer(script) as server, Client(cfg) as client:
            assert client.state is ClientState.DISCONNECTED
            client.connect(server.url("live/inst/key"))
            assert client.state is ClientState.CONNECTED  # type: ignore[comparison-overlap]
            assert client.server_info["code"] == "NetConnection.Connect.Success"
            assert client.server_properties["fmsVer"] == commands.DEFAULT_FMS_VERSION
            assert client.object_encoding == 0
            client.close()
            assert client.state is ClientState.DISCONNECTED
        connect = seen["connect"]
        assert connect.transaction_id == 1  # RTMP 7.2.1.1: always 1
        obj = connect.command_object
        assert obj["app"] == "live/inst"
        assert obj["tcUrl"] == f"rtmp://127.0.0.1:{server.port}/live/inst"
        assert obj["flashVer"] == cfg.flash_ver
        assert obj["fpad"] is False
        assert obj["capabilities"] == 15
        assert obj["audioCodecs"] == 4071 and obj["videoCodecs"] == 252
        assert obj["videoFunction"] == 1
        assert obj["objectEncoding"] == 0
        assert obj["type"] == "nonprivate"
        assert obj["pageUrl"] == "http://page" and obj["swfUrl"] == "http://swf"
        assert connect.arguments == ["extra-arg"]
        assert seen["in_chunk_size"] == 4096  # RTMP 5.4.1: Set Chunk Size came first
        assert seen["window"] == 2_500_000  # RTMP 5.4.4: our Window Acknowledgement Size

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_app_from_config_when_url_has_none(self) -> None:
        seen: Dict[str, Any] = {}

        def script(t: Transport, _: int) -> None:
            seen["connect"] = server.accept_connect(t)
            server.drain(t)

        with ScriptedServer(script) as server, Client(config(app_name="myapp")) as client:
            client.connect(f"rtmp://127.0.0.1:{server.port}")
        assert seen["connect"].command_object["app"] == "myapp"
        assert seen["connect"].command_object["tcUrl"].endswith(f":{server.port}/myapp")

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_error_surfaces_code_and_description(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.expect(t, "connect")
            t.write_message(commands.error(1, commands.status_info(
                commands.NETCONNECTION_CONNECT_REJECTED, "go away")))
            server.drain(t)

        with ScriptedServer(script) as server, Client(config()) as client:
            with pytest.raises(CommandError) as info:
                client.connect(server.url())
            assert info.value.code == "NetConnection.Connect.Rejected"
            assert info.value.description == "go away"
            assert client.state is ClientState.ERROR
            client.close()
            client.close()  # safe twice
            assert client.state is ClientState.DISCONNECTED  # type: ignore[comparison-overlap]

    @pytest.mark.spec("RTMP 7.2.1.1 [impl: ffmpeg onBWDone]")
    def test_onbwdone_answered_with_checkbw(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.accept_connect(t, extra=lambda: t.write_message(
                commands.encode_command("onBWDone", 0, None, 8192)))
            server.expect(t, "_checkbw")
            t.write_message(commands.error(2, "NetConnection.Call.Failed"))  # ignored by client
            t.write_message(user_control.stream_eof(7))  # user control: consumed inside
            t.write_message(commands.encode_data("hello", 1, message_stream_id=0))
            server.drain(t)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url())
            message = client.read_message()
            assert message.type == MessageType.DATA_AMF0
            assert commands.decode_data(message) == ["hello", 1]

    @pytest.mark.spec("RTMP 7.2.1.1", "ERTMP Action Message Format (AMF): AMF0 and AMF3")
    def test_amf3_negotiated(self) -> None:
        seen: Dict[str, Any] = {}

        def script(t: Transport, _: int) -> None:
            seen["connect"] = server.accept_connect(t, object_encoding=3)
            command = server.answer_create_stream(t, 5, object_encoding=3)
            seen["create"] = command
            call = server.expect(t, "echo")
            t.write_message(commands.result(call.transaction_id, None, {"a": [1, 2]}, "x",
                                            object_encoding=3))
            server.drain(t)

        with ScriptedServer(script) as server, Client(config(object_encoding=3)) as client:
            client.connect(server.url())
            assert client.object_encoding == 3
            assert client.create_stream() == 5
            assert client.call("echo", {"k": "v"}) == [{"a": [1, 2]}, "x"]
        connect = seen["connect"]
        assert connect.message_type == MessageType.COMMAND_AMF0  # connect itself is AMF0
        assert connect.command_object["objectEncoding"] == 3
        assert seen["create"].message_type == MessageType.COMMAND_AMF3  # RTMP 7.1.1: type 17

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_amf3_refused_falls_back_to_amf0(self) -> None:
        seen: Dict[str, Any] = {}

        def script(t: Transport, _: int) -> None:
            server.accept_connect(t, object_encoding=0)
            seen["create"] = server.answer_create_stream(t)
            server.drain(t)

        with ScriptedServer(script) as server, Client(config(object_encoding=3)) as client:
            client.connect(server.url())
            assert client.object_encoding == 0
            client.create_stream()
        assert seen["create"].message_type == MessageType.COMMAND_AMF0


class TestFailures:
    """Network failures: a clear exception within the configured timeout, never a hang."""

    @pytest.mark.spec("RTMP 5.2.1")
    def test_refused_port(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # bound, not listening: connections are refused
            started = time.monotonic()
            with Client(config()) as client, pytest.raises(ConnectionClosedError):
                client.connect(f"rtmp://127.0.0.1:{port}/live")
            assert time.monotonic() - started < WAIT
            assert client.state is ClientState.DISCONNECTED  # closed by the with block

    @pytest.mark.spec("RTMP 5.2.1")
    def test_unresolvable_host(self) -> None:
        with Client(config(connect_timeout=3.0)) as client, pytest.raises(rtmp.RTMPError):
            client.connect("rtmp://no-such-host.invalid/live")

    @pytest.mark.spec("RTMP 5.2.1")
    def test_unroutable_address(self) -> None:
        """TEST-NET-1 (RFC 5737): refused, unreachable or silent -- an error within the timeout."""
        started = time.monotonic()
        with Client(config(connect_timeout=1.0)) as client, pytest.raises(rtmp.RTMPError):
            client.connect("rtmp://192.0.2.1/live")
        assert time.monotonic() - started < 2.0

    @pytest.mark.spec("RTMP 5.2.1")
    def test_server_closes_mid_handshake(self) -> None:
        def script(t: Transport, _: int) -> None:
            t.sock.recv(1)  # C0 arrives; hang up before S0/S1
            t.close()

        with ScriptedServer(script, handshake=False) as server, Client(config()) as client:
            with pytest.raises(HandshakeError):
                client.connect(server.url())
            assert client.state is ClientState.ERROR

    @pytest.mark.spec("RTMP 5.2.1")
    def test_server_silent_during_handshake(self) -> None:
        def script(t: Transport, _: int) -> None:
            time.sleep(2.0)  # accept, then say nothing

        with ScriptedServer(script, handshake=False) as server, \
                Client(config(connect_timeout=1.0)) as client:
            started = time.monotonic()
            with pytest.raises(rtmp.TimeoutError):
                client.connect(server.url())
            assert time.monotonic() - started < 2.0
            assert client.state is ClientState.ERROR

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_connect_reply_never_comes(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.expect(t, "connect")
            server.drain(t, 3.0)

        with ScriptedServer(script) as server, Client(config(connect_timeout=1.0)) as client:
            started = time.monotonic()
            with pytest.raises(rtmp.TimeoutError):
                client.connect(server.url())
            assert time.monotonic() - started < 2.5
            assert client.state is ClientState.ERROR

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_server_closes_after_connect(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url())
            with pytest.raises(ConnectionClosedError):
                client.read_message()
            assert client.state is ClientState.ERROR
            with pytest.raises(ConnectionClosedError):
                client.create_stream()

    def test_operations_need_a_connection(self) -> None:
        client = Client(config())
        with pytest.raises(ConnectionClosedError):
            client.read_message()
        with pytest.raises(ConnectionClosedError):
            client.call("x")
        with pytest.raises(ValueError):
            client.send_audio(b"\xaf\x01", 0)
        with pytest.raises(ValueError):
            ClientConfig(object_encoding=1)


class TestPublish:
    """RTMP 7.2.2.6: publish, preceded by releaseStream/FCPublish ([impl] OBS, ffmpeg)."""

    @pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.1.3", "RTMP 7.3.1")
    def test_publish_flow_and_media(self) -> None:
        seen: Dict[str, Any] = {}

        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 1)
            publish = server.expect(t, "publish")
            seen["publish"] = publish
            # Deviation (ffmpeg listen mode): a bare command name, no transaction id.
            t.write_message(Message(type=20, data=b"\x02\x00\x0bonFCPublish"))
            t.write_message(user_control.stream_begin(1))
            t.write_message(commands.on_status(commands.NETSTREAM_PUBLISH_START, "go", 1))
            server.drain(t)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url("live/key"))
            client.publish(stream_type=StreamType.RECORD)
            assert client.state is ClientState.PUBLISHING
            assert client.stream_id == 1
            client.send_metadata({"width": 320.0})
            client.send_video(b"\x17\x00\x00\x00\x00", 0)
            client.send_audio(b"\xaf\x00\x12\x10", 0)
            client.write_message(Message(type=MessageType.AUDIO, data=b"\xaf\x01ab",
                                         timestamp=23, message_stream_id=1))
            client.close()
        names = server.command_names()
        assert names[:4] == ["connect", "releaseStream", "FCPublish", "createStream"]
        assert names[-2:] == ["FCUnpublish", "deleteStream"]  # close() says goodbye
        publish = seen["publish"]
        assert publish.arguments == ["key", "record"]
        assert publish.message_stream_id == 1 and publish.transaction_id == 0
        media = [m for m in server.received if m.type in (8, 9, 18)]
        assert [m.type for m in media] == [18, 9, 8, 8]
        assert all(m.message_stream_id == 1 for m in media)
        assert commands.decode_data(media[0]) == ["@setDataFrame", "onMetaData", {"width": 320.0}]
        assert media[3].timestamp == 23

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_publish_bad_name(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 1)
            server.expect(t, "publish")
            t.write_message(commands.on_status(commands.NETSTREAM_PUBLISH_BAD_NAME,
                                               "Already publishing", 1))
            server.drain(t)

        with ScriptedServer(script) as server, Client(config(publish_preamble=False)) as client:
            client.connect(server.url())
            with pytest.raises(CommandError) as info:
                client.publish("taken")
            assert info.value.code == "NetStream.Publish.BadName"
            assert info.value.description == "Already publishing"
            assert client.state is ClientState.CONNECTED  # the connection survives

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_publish_status_never_comes(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 1)
            server.drain(t, 3.0)

        with ScriptedServer(script) as server, Client(config(read_timeout=1.0)) as client:
            client.connect(server.url())
            started = time.monotonic()
            with pytest.raises(rtmp.TimeoutError):
                client.publish()
            assert time.monotonic() - started < 2.5

    @pytest.mark.spec("RTMP 7.1.7", "RTMP 5.4.3")
    def test_publisher_answers_pings_while_only_writing(self) -> None:
        seen: Dict[str, Any] = {}

        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 1)
            server.expect(t, "publish")
            t.write_message(commands.on_status(commands.NETSTREAM_PUBLISH_START, "", 1))
            t.write_message(user_control.ping_request(1234))
            deadline = time.monotonic() + WAIT
            while t.session.last_ping_response is None and time.monotonic() < deadline:
                t.read_message(timeout=WAIT)
            seen["pong"] = t.session.last_ping_response
            t.write_message(commands.on_status(commands.NETSTREAM_PUBLISH_IDLE, "", 1))
            server.drain(t)

        with ScriptedServer(script) as server, Client(config(service_interval=0.05)) as client:
            client.connect(server.url())
            client.publish()
            for i in range(40):  # 2 s of audio at most; the pong comes well before
                client.send_audio(b"\xaf\x01" + bytes(10), i * 50)
                time.sleep(0.05)
                if "pong" in seen:
                    break
            # What the server said meanwhile waits for read_message.
            status = commands.decode_command(client.read_message(timeout=WAIT))
            assert status.code == "NetStream.Publish.Idle"
        assert seen["pong"] == 1234

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_publisher_notices_server_hangup(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 1)
            server.expect(t, "publish")
            t.write_message(commands.on_status(commands.NETSTREAM_PUBLISH_START, "", 1))

        with ScriptedServer(script) as server, Client(config(service_interval=0.05)) as client:
            client.connect(server.url())
            client.publish()
            started = time.monotonic()
            with pytest.raises(ConnectionClosedError):
                for i in range(100):
                    client.send_audio(b"\xaf\x01", i * 20)
                    time.sleep(0.02)
            assert time.monotonic() - started < 2.0
            assert client.state is ClientState.ERROR

    @pytest.mark.spec("RTMP 7.2.2.6")
    def test_concurrent_writes_do_not_interleave(self) -> None:
        count = 200
        got: List[Message] = []

        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 1)
            server.expect(t, "publish")
            t.write_message(commands.on_status(commands.NETSTREAM_PUBLISH_START, "", 1))
            deadline = time.monotonic() + WAIT
            while len(got) < 2 * count and time.monotonic() < deadline:
                message = t.read_message(timeout=WAIT)
                if message.type in (8, 9):
                    got.append(message)
            server.drain(t)  # read the goodbye to the client's EOF, so close() confirms

        with ScriptedServer(script) as server, Client(config(chunk_size=128)) as client:
            client.connect(server.url())
            client.publish(stream_type="live")

            def writer(kind: int) -> None:
                for i in range(count):
                    payload = bytes([kind]) * 300 + i.to_bytes(2, "big")
                    client.write_message(Message(type=kind, data=payload, timestamp=i,
                                                 message_stream_id=1))

            threads = [threading.Thread(target=writer, args=(k,)) for k in (8, 9)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(WAIT)
        for kind in (8, 9):
            mine = [m for m in got if m.type == kind]
            assert len(mine) == count
            for i, message in enumerate(mine):
                assert message.data == bytes([kind]) * 300 + i.to_bytes(2, "big")
                assert message.timestamp == i


class TestPlay:
    """RTMP 7.2.2.1: play, the Play.Reset/Play.Start statuses, media delivery."""

    @pytest.mark.spec("RTMP 7.2.2.1", "RTMP 7.1.7")
    def test_play_flow_buffers_media_in_order(self) -> None:
        seen: Dict[str, Any] = {}

        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 3)
            seen["play"] = server.expect(t, "play")
            t.write_message(user_control.stream_is_recorded(3))
            t.write_message(user_control.stream_begin(3))
            t.write_message(commands.on_status(commands.NETSTREAM_PLAY_RESET, "", 3))
            # Media before Play.Start: kept for read_message, in order.
            t.write_message(commands.encode_data("|RtmpSampleAccess", False, False,
                                                 message_stream_id=3))
            t.write_message(Message(type=9, data=b"\x17\x00v0", timestamp=0, message_stream_id=3))
            t.write_message(commands.on_status(commands.NETSTREAM_PLAY_START, "", 3))
            t.write_message(Message(type=8, data=b"\xaf\x01a1", timestamp=10, message_stream_id=3))
            # Deviation: media on message stream 0 is accepted.
            t.write_message(Message(type=9, data=b"\x27\x01v2", timestamp=40, message_stream_id=0))
            t.write_message(commands.on_status(commands.NETSTREAM_PLAY_STOP, "", 3))
            server.drain(t)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url("vod/movie.flv"))
            client.play(start=1.5, duration=-1)
            assert client.state is ClientState.SUBSCRIBING
            types = []
            for _ in range(5):
                types.append(client.read_message())
            assert [m.type for m in types] == [18, 9, 8, 9, 20]
            assert [m.timestamp for m in types[1:4]] == [0, 10, 40]
            assert commands.decode_command(types[4]).code == "NetStream.Play.Stop"
        play = seen["play"]
        # Deviation (Flash, ffmpeg, nginx-rtmp): seconds on the API, milliseconds on the wire.
        assert play.arguments == ["movie", 1500, -1000, True]
        assert play.message_stream_id == 3
        buffer = [user_control.decode(m.data) for m in server.received if m.type == 4]
        assert any(e.event == 3 and e.stream_id == 3 and e.buffer_length == 3000 for e in buffer)

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_strict_sends_seconds_and_refuses_msid0_media(self) -> None:
        seen: Dict[str, Any] = {}

        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 1)
            seen["play"] = server.expect(t, "play")
            t.write_message(commands.on_status(commands.NETSTREAM_PLAY_START, "", 1))
            t.write_message(Message(type=8, data=b"\xaf\x01", timestamp=0, message_stream_id=0))
            server.drain(t)

        with ScriptedServer(script) as server, Client(config(strict=True)) as client:
            client.connect(server.url())
            client.play(start=-2, duration=-1)
            with pytest.raises(rtmp.ProtocolError):
                client.read_message()
            assert client.state is ClientState.ERROR
        assert seen["play"].arguments == ["key", -2, -1, True]

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_stream_not_found(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 1)
            server.expect(t, "play")
            t.write_message(commands.on_status(commands.NETSTREAM_PLAY_STREAM_NOT_FOUND,
                                               "No such stream", 1))
            server.drain(t)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url())
            with pytest.raises(CommandError) as info:
                client.subscribe("missing")
            assert info.value.code == "NetStream.Play.StreamNotFound"

    @pytest.mark.spec("RTMP 7.2.2.7", "RTMP 7.2.2.8", "RTMP 7.2.2.4", "RTMP 7.2.2.5")
    def test_seek_pause_receive(self) -> None:
        seen: Dict[str, Command] = {}

        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 1)
            server.expect(t, "play")
            t.write_message(commands.on_status(commands.NETSTREAM_PLAY_START, "", 1))
            seen["seek"] = server.expect(t, "seek")
            t.write_message(commands.on_status(commands.NETSTREAM_SEEK_NOTIFY, "", 1))
            seen["pause"] = server.expect(t, "pause")
            t.write_message(commands.on_status(commands.NETSTREAM_PAUSE_NOTIFY, "", 1))
            seen["resume"] = server.expect(t, "pause")
            t.write_message(commands.on_status(commands.NETSTREAM_UNPAUSE_NOTIFY, "", 1))
            seen["audio"] = server.expect(t, "receiveAudio")
            seen["video"] = server.expect(t, "receiveVideo")
            t.write_message(commands.on_status(commands.NETSTREAM_SEEK_NOTIFY, "", 1))
            seen["seek2"] = server.expect(t, "seek")
            t.write_message(commands.on_status(commands.NETSTREAM_SEEK_FAILED, "nope", 1))
            server.drain(t)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url())
            client.play("vod1", start=0)
            client.seek(5000)
            client.pause(True, 5100)
            client.pause(False, 5100)
            client.receive_audio(False)
            client.receive_video(True, wait=True)
            with pytest.raises(CommandError) as info:
                client.seek(1)
            assert info.value.code == "NetStream.Seek.Failed"
        assert seen["seek"].arguments == [5000]
        assert seen["pause"].arguments == [True, 5100]
        assert seen["resume"].arguments == [False, 5100]
        assert seen["audio"].arguments == [False] and seen["video"].arguments == [True]
        assert all(c.message_stream_id == 1 for c in seen.values())

    @pytest.mark.spec("RTMP 7.2.2.7")
    @pytest.mark.parametrize("flush", [True, False])
    def test_seek_drops_media_from_before_the_seek(self, flush: bool) -> None:
        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 1)
            server.expect(t, "play")
            t.write_message(commands.on_status(commands.NETSTREAM_PLAY_START, "", 1))
            server.expect(t, "seek")
            for ts in (100, 123):  # still on its way when the seek arrived
                t.write_message(Message(type=8, data=b"\xaf\x01", timestamp=ts, message_stream_id=1))
            t.write_message(commands.encode_data("cue"))  # not media: kept
            t.write_message(commands.on_status(commands.NETSTREAM_SEEK_NOTIFY, "", 1))
            t.write_message(Message(type=8, data=b"\xaf\x01", timestamp=5000, message_stream_id=1))
            server.drain(t)

        with ScriptedServer(script) as server, Client(config(flush_on_seek=flush)) as client:
            client.connect(server.url())
            client.play()
            client.seek(5000)
            got = [client.read_message() for _ in range(2 if flush else 4)]
        if flush:
            assert [(m.type, m.timestamp) for m in got] == [(18, 0), (8, 5000)]
        else:
            assert [m.timestamp for m in got if m.type == 8] == [100, 123, 5000]

    @pytest.mark.spec("RTMP 7.2.2.1")
    def test_buffer_is_bounded(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 1)
            server.expect(t, "play")
            try:
                for i in range(20):
                    t.write_message(Message(type=8, data=b"\xaf\x01", timestamp=i,
                                            message_stream_id=1))
                t.write_message(commands.on_status(commands.NETSTREAM_PLAY_START, "", 1))
            except ConnectionClosedError:
                return  # the client gave up first, as it should
            server.drain(t)

        with ScriptedServer(script) as server, Client(config(max_buffered_messages=5)) as client:
            client.connect(server.url())
            with pytest.raises(LimitExceededError) as info:
                client.play()
            assert info.value.limit == "client.max_buffered_messages"
            assert client.state is ClientState.ERROR


class TestCallsAndStreams:
    """RTMP 7.2.1.2 / 7.2.1.3 / 7.2.2.3: calls matched by transaction id; stream teardown."""

    @pytest.mark.spec("RTMP 7.2.1.2", "RTMP 7.2")
    def test_call_results_matched_by_transaction(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            first = server.expect(t, "add")
            # An unrelated _result and a server call arrive before the real answer.
            t.write_message(commands.result(99, None, "stray"))
            t.write_message(commands.encode_command("serverPing", 0, None, "hi"))
            t.write_message(commands.result(first.transaction_id, None, sum(first.arguments)))
            failing = server.expect(t, "fail")
            t.write_message(commands.error(failing.transaction_id, commands.status_info(
                commands.NETCONNECTION_CALL_FAILED, "bad call")))
            nothing = server.expect(t, "nothing")
            t.write_message(commands.result(nothing.transaction_id))
            server.drain(t)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url())
            assert client.call("add", 2, 3) == 5
            with pytest.raises(CommandError) as info:
                client.call("fail")
            assert info.value.code == "NetConnection.Call.Failed"
            assert client.call("nothing") is None
            stray = commands.decode_command(client.read_message())
            assert (stray.name, stray.arguments) == ("_result", ["stray"])
            ping = commands.decode_command(client.read_message())
            assert (ping.name, ping.arguments) == ("serverPing", ["hi"])

    @pytest.mark.spec("RTMP 7.2.1.2", "RTMP 7.1.4")
    @settings(max_examples=15, deadline=None)
    @given(others=st.lists(st.sampled_from(["audio", "data", "status"]), max_size=12),
           position=st.integers(0, 12))
    def test_messages_around_a_reply_keep_their_order(self, others: List[str],
                                                      position: int) -> None:
        """Whatever arrives before and after a call's _result reaches read_message in order."""
        plan = list(others)
        plan.insert(min(position, len(plan)), "reply")

        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            call = server.expect(t, "work")
            for i, step in enumerate(plan):
                if step == "audio":
                    t.write_message(Message(type=8, data=bytes([0xAF, 1, i]), timestamp=i,
                                            message_stream_id=1))
                elif step == "data":
                    t.write_message(commands.encode_data("cue", i))
                elif step == "status":
                    t.write_message(commands.on_status(commands.NETSTREAM_PLAY_PUBLISH_NOTIFY,
                                                       str(i), 1))
                else:
                    t.write_message(commands.result(call.transaction_id, None, i))
            t.write_message(commands.encode_data("end"))
            server.drain(t)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url())
            assert client.call("work") == plan.index("reply")
            got = []
            while True:
                message = client.read_message()
                if message.type == 18 and commands.decode_data(message) == ["end"]:
                    break
                got.append(message)
        expected = [(step, i) for i, step in enumerate(plan) if step != "reply"]
        kinds = {8: "audio", 18: "data", 20: "status"}
        assert [kinds[m.type] for m in got] == [step for step, _ in expected]
        for message, (step, i) in zip(got, expected):
            if step == "audio":
                assert message.data[2] == i
            elif step == "data":
                assert commands.decode_data(message) == ["cue", i]
            else:
                info = commands.decode_command(message).info
                assert info is not None and info["description"] == str(i)

    @pytest.mark.spec("RTMP 7.2.2.3")
    def test_close_and_delete_stream(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 4)
            server.expect(t, "closeStream")
            server.expect(t, "deleteStream")
            server.drain(t)

        with ScriptedServer(script) as server, Client(config()) as client:
            client.connect(server.url())
            assert client.create_stream() == 4
            client.close_stream()
            client.delete_stream()
            assert client.stream_id is None
        deletes = [commands.decode_command(m) for m in server.received
                   if m.type == 20 and commands.decode_command(m).name == "deleteStream"]
        assert deletes[0].arguments == [4]
        assert len(deletes) == 1  # close() had no stream left to delete


def _adobe_response(user: str, password: str, salt: str, opaque: str, client_challenge: str) -> str:
    """AUTH-ADOBE hash, written out here independently of rtmp.auth."""
    h1 = base64.b64encode(hashlib.md5((user + salt + password).encode()).digest())
    return base64.b64encode(hashlib.md5(h1 + opaque.encode() + client_challenge.encode()).digest()
                            ).decode()


class TestAuthentication:
    """AUTH-ADOBE / AUTH-LLNW: the three-connection challenge flow ffmpeg speaks."""

    @pytest.mark.spec("AUTH-ADOBE", "AUTH-ADOBE hash")
    def test_adobe_challenge_response(self) -> None:
        apps: List[str] = []
        tc_urls: List[str] = []

        def script(t: Transport, index: int) -> None:
            connect = server.expect(t, "connect")
            app = connect.command_object["app"]
            apps.append(app)
            tc_urls.append(connect.command_object["tcUrl"])
            if index == 0:
                description = "[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : "
            elif index == 1:
                description = ("[ AccessManager.Reject ] : [ authmod=adobe ] : "
                               "?reason=needauth&user=bob&salt=s4lt&challenge=ch4l&opaque=0paq")
            else:
                query = dict(p.split("=", 1) for p in app.split("?", 1)[1].split("&"))
                expected = _adobe_response("bob", "secret", "s4lt", "0paq", query["challenge"])
                assert query["response"] == expected
                assert query["opaque"] == "0paq"
                t.send_window_ack_size(2_500_000)
                t.write_message(commands.connect_result())
                server.drain(t)
                return
            t.write_message(commands.error(1, commands.status_info(
                commands.NETCONNECTION_CONNECT_REJECTED, description)))

        with ScriptedServer(script, connections=3) as server, Client(config()) as client:
            client.connect(server.url("live/key").replace("rtmp://", "rtmp://bob:secret@"))
            assert client.state is ClientState.CONNECTED
        assert apps[0] == "live"
        assert apps[1] == "live?authmod=adobe&user=bob"
        assert apps[2].startswith("live?authmod=adobe&user=bob&challenge=")
        assert all(tc.endswith(app) for tc, app in zip(tc_urls, apps))
        assert "secret" not in "".join(apps)

    @pytest.mark.spec("AUTH-ADOBE")
    def test_adobe_wrong_password(self) -> None:
        def script(t: Transport, index: int) -> None:
            server.expect(t, "connect")
            description = {
                0: "[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : ",
                1: "[ AccessManager.Reject ] : [ authmod=adobe ] : "
                   "?reason=needauth&user=bob&salt=s&challenge=c&opaque=o",
                2: "[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=authfailed&opaque=o",
            }[index]
            t.write_message(commands.error(1, commands.status_info(
                commands.NETCONNECTION_CONNECT_REJECTED, description)))

        cfg = config(username="bob", password="wrong")
        with ScriptedServer(script, connections=3) as server, Client(cfg) as client:
            with pytest.raises(CommandError) as info:
                client.connect(server.url())
            assert "authfailed" in info.value.description
            assert client.state is ClientState.ERROR

    @pytest.mark.spec("AUTH-ADOBE")
    def test_challenge_without_credentials(self) -> None:
        def script(t: Transport, index: int) -> None:
            server.expect(t, "connect")
            t.write_message(commands.error(1, commands.status_info(
                commands.NETCONNECTION_CONNECT_REJECTED,
                "[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : ")))

        with ScriptedServer(script) as server, Client(config()) as client:
            with pytest.raises(CommandError) as info:
                client.connect(server.url())
            assert "authmod=adobe" in info.value.description

    @pytest.mark.spec("AUTH-LLNW")
    def test_llnw_challenge_response(self) -> None:
        apps: List[str] = []

        def script(t: Transport, index: int) -> None:
            connect = server.expect(t, "connect")
            app = connect.command_object["app"]
            apps.append(app)
            if index < 2:
                description = ("[ AccessManager.Reject ] : [ code=403 need auth; authmod=llnw ] : "
                               if index == 0 else
                               "[ AccessManager.Reject ] : [ authmod=llnw ] : "
                               "?reason=needauth&user=bob&nonce=n0nce")
                t.write_message(commands.error(1, commands.status_info(
                    commands.NETCONNECTION_CONNECT_REJECTED, description)))
                return
            query = dict(p.split("=", 1) for p in app.split("?", 1)[1].split("&"))
            ha1 = hashlib.md5(b"bob:live:secret").hexdigest()
            ha2 = hashlib.md5(b"publish:/live/_definst_").hexdigest()
            expected = hashlib.md5(
                f"{ha1}:n0nce:00000001:{query['cnonce']}:auth:{ha2}".encode()).hexdigest()
            assert query["response"] == expected
            t.write_message(commands.connect_result())
            server.drain(t)

        cfg = config(username="bob", password="secret")
        with ScriptedServer(script, connections=3) as server, Client(cfg) as client:
            client.connect(server.url("live/key"))
        assert apps[1] == "live?authmod=llnw&user=bob"
        assert apps[2].startswith("live?authmod=llnw&user=bob&nonce=n0nce&cnonce=")


@pytest.fixture
def our_server() -> Any:
    """rtmp.Server on 127.0.0.1:0 with AUTH-ADOBE required of every connect, players' too
    (user bob, password secret)."""
    server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", require_auth_players=True,
                                           username="bob", password="secret",
                                           read_timeout=WAIT, handshake_timeout=WAIT))
    server.start()
    try:
        yield server
    finally:
        server.stop()


class TestAgainstOurServer:
    """The client and rtmp.Server together: authentication, relay, AMF3, rtmps."""

    @pytest.mark.spec("AUTH-ADOBE", "AUTH-ADOBE hash")
    def test_adobe_auth_with_url_credentials(self, our_server: Any) -> None:
        port = our_server.address[1]
        with Client(config()) as client:
            client.connect(f"rtmp://bob:secret@127.0.0.1:{port}/live/key")
            assert client.server_info["code"] == "NetConnection.Connect.Success"
            client.publish()
            assert client.state is ClientState.PUBLISHING

    @pytest.mark.spec("AUTH-ADOBE")
    def test_adobe_auth_wrong_password_and_no_credentials(self, our_server: Any) -> None:
        url = f"rtmp://127.0.0.1:{our_server.address[1]}/live/key"
        with Client(config(username="bob", password="wrong")) as client:
            with pytest.raises(CommandError) as info:
                client.connect(url)
            assert "authfailed" in info.value.description
        with Client(config()) as client:
            with pytest.raises(CommandError) as info:
                client.connect(url)
            assert "authmod=adobe" in info.value.description

    @pytest.mark.spec("RTMP 7.2.2.6", "RTMP 7.2.2.1", "RTMP 7.2.1.1")
    @pytest.mark.parametrize("object_encoding", [0, 3])
    def test_publish_and_play_through_our_server(self, our_server: Any,
                                                 object_encoding: int) -> None:
        url = f"rtmp://127.0.0.1:{our_server.address[1]}/live/relay"
        cfg = config(username="bob", password="secret", object_encoding=object_encoding)
        with Client(cfg) as publisher, Client(cfg) as player:
            publisher.connect(url)
            assert publisher.object_encoding == object_encoding
            publisher.publish()
            player.connect(url)
            player.play()
            publisher.send_metadata({"width": 320.0, "height": 240.0})
            publisher.send_video(b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f", 0)  # AVC header
            publisher.send_video(b"\x17\x01\x00\x00\x00\x00\x00\x00\x01\x65", 0)  # keyframe
            for i in range(10):
                publisher.send_audio(b"\xaf\x01" + bytes([i]), i * 23)
            received: List[Message] = []
            while len([m for m in received if m.type == 8]) < 10:
                try:
                    received.append(player.read_message(timeout=WAIT))
                except rtmp.TimeoutError:
                    raise AssertionError([(m.type, m.data[:60]) for m in received]) from None
        audio = [m for m in received if m.type == 8]
        assert [m.data[2] for m in audio] == list(range(10))
        assert [m.timestamp for m in audio] == [i * 23 for i in range(10)]
        metadata = [commands.decode_data(m) for m in received if m.type in (15, 18)]
        assert any(v[:1] == ["onMetaData"] and v[1]["width"] == 320 for v in metadata)

    @pytest.mark.spec("RTMP 7.2.1.1")
    def test_rtmps(self, tmp_path: Any) -> None:
        openssl = require_peer("openssl")
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], timeout=30, check=True)
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(str(cert), str(key))
        server = rtmp.Server(rtmp.ServerConfig(addr="127.0.0.1:0", ssl_context=server_context,
                                               read_timeout=WAIT, handshake_timeout=WAIT))
        server.start()
        try:
            port = server.address[1]
            client_context = ssl.create_default_context(cafile=str(cert))
            with Client(config(ssl_context=client_context)) as client:
                client.connect(f"rtmps://localhost:{port}/live/secure")
                assert client.url is not None and client.url.tc_url.startswith("rtmps://")
                client.publish()
                assert client.state is ClientState.PUBLISHING
            # The default context does not trust a self-signed certificate.
            with Client(config()) as client, pytest.raises(rtmp.RTMPError):
                client.connect(f"rtmps://localhost:{port}/live/secure")
        finally:
            server.stop()


class TestFlvHelpers:
    """FLV E.4.1 <-> RTMP 7.1: publish_flv and play_to_flv."""

    @staticmethod
    def _write_flv(path: Any) -> List[Any]:
        tags: List[Any] = [
            flv.Tag(18, 0, b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09"),
            flv.Tag(9, 0, b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f"),
            flv.Tag(8, 0, b"\xaf\x00\x12\x10"),
            flv.Tag(9, 40, b"\x17\x01\x00\x00\x00\x00\x00\x00\x01\x65"),
            flv.Tag(8, 23, b"\xaf\x01\x01"),
            flv.Tag(9, 80, b"\x27\x01\x00\x00\x00\x00\x00\x00\x01\x41"),
        ]
        with flv.Writer(str(path)) as writer:
            writer.write_all(tags)
        return tags

    @pytest.mark.spec("FLV E.4.1", "RTMP 7.1.2")
    def test_publish_flv_loops_with_continuing_timestamps(self, tmp_path: Any) -> None:
        source = tmp_path / "in.flv"
        tags = self._write_flv(source)
        media: List[Message] = []

        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 1)
            server.expect(t, "publish")
            t.write_message(commands.on_status(commands.NETSTREAM_PUBLISH_START, "", 1))
            while len(media) < 2 * len(tags):
                message = t.read_message(timeout=WAIT)
                if message.type in (8, 9, 18):
                    media.append(message)
            server.drain(t)

        seen: List[int] = []
        with ScriptedServer(script) as server:
            stats = publish_flv(server.url("live/looped"), source, realtime=True, loop=2,
                                config=config(), progress=lambda s: seen.append(s.messages))
        assert seen == list(range(1, 2 * len(tags) + 1))
        assert (stats.audio, stats.video, stats.data) == (4, 6, 2)
        first, second = media[: len(tags)], media[len(tags):]
        assert [m.data for m in second[1:]] == [t.data for t in tags[1:]]
        # RTMP 7.1.2 [impl]: script data goes out as @setDataFrame onMetaData.
        assert commands.decode_data(first[0])[:2] == ["@setDataFrame", "onMetaData"]
        assert [m.timestamp for m in first] == [t.timestamp for t in tags]
        assert [m.timestamp for m in second] == [t.timestamp + 80 + 40 for t in tags]
        assert stats.elapsed >= 0.2  # paced: the second loop starts 120 ms of media later

    @pytest.mark.spec("FLV E.4.1", "RTMP 7.2.2.1", "RTMP 7.1.6")
    def test_play_to_flv_until_play_stop(self, tmp_path: Any) -> None:
        output = tmp_path / "out.flv"

        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            server.answer_create_stream(t, 1)
            server.expect(t, "play")
            t.write_message(commands.on_status(commands.NETSTREAM_PLAY_START, "", 1))
            t.write_message(commands.encode_data("|RtmpSampleAccess", True, True,
                                                 message_stream_id=1))
            t.write_message(commands.metadata({"width": 2.0}, 1, set_data_frame=False))
            t.write_message(Message(type=9, data=b"\x17\x00\x00\x00\x00\x01", timestamp=1000,
                                    message_stream_id=1))
            # RTMP 7.1.6: an aggregate of two audio messages.
            t.write_message(build_aggregate([
                Message(type=8, data=b"\xaf\x01\x01", timestamp=1010),
                Message(type=8, data=b"\xaf\x01\x02", timestamp=1033),
            ], message_stream_id=1))
            t.write_message(commands.on_status(commands.NETSTREAM_PLAY_STOP, "", 1))
            server.drain(t)

        with ScriptedServer(script) as server:
            stats = play_to_flv(server.url("live/x"), output, config=config())
        tags = flv.read_all(output)
        assert [(t.type, t.timestamp) for t in tags] == [(18, 0), (9, 1000), (8, 1010), (8, 1033)]
        assert tags[3].data == b"\xaf\x01\x02"
        assert (stats.audio, stats.video, stats.data) == (2, 1, 1)
        # The span starts at the first frame, not at the AVC sequence header (issue 22).
        assert stats.duration_ms == 23


class TestImports:
    """rtmp.client re-exports the FLV helpers of rtmp.flvio: either module imports first."""

    @pytest.mark.parametrize("statement", [
        "import rtmp.flvio",
        "import rtmp.client",
        "from rtmp.flvio import publish_flv, play_to_flv",
        "from rtmp.client import publish_flv, play_to_flv",
        "import rtmp.flvio, rtmp.client; assert rtmp.client.publish_flv is rtmp.flvio.publish_flv",
    ])
    def test_fresh_interpreter(self, statement: str) -> None:
        import pathlib
        import subprocess
        import sys

        root = pathlib.Path(__file__).resolve().parents[1]
        result = subprocess.run([sys.executable, "-c", statement], cwd=root,
                                capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr.decode()


class TestConfigAndMisuse:
    """Local mistakes are ValueError/TypeError, never a protocol error."""

    @pytest.mark.parametrize("changes", [
        {"object_encoding": 1}, {"chunk_size": 0}, {"window_ack_size": 0},
        {"connect_timeout": 0}, {"read_timeout": -1}, {"max_buffered_messages": 0},
    ])
    def test_bad_config(self, changes: Dict[str, Any]) -> None:
        with pytest.raises(ValueError):
            ClientConfig(**changes)

    def test_strict_turns_deviations_off(self) -> None:
        cfg = ClientConfig(strict=True)
        assert not cfg.play_times_in_milliseconds and not cfg.accept_media_on_stream_zero

    def test_no_app_anywhere(self) -> None:
        with Client(config()) as client, pytest.raises(ValueError):
            client.connect("rtmp://127.0.0.1:1")

    @pytest.mark.spec("RTMP 7.2.1.3", "RTMP 7.2.1.2")
    def test_misuse_on_a_live_connection(self) -> None:
        def script(t: Transport, _: int) -> None:
            server.accept_connect(t)
            create = server.expect(t, "createStream")
            t.write_message(commands.result(create.transaction_id, None, "not-a-number"))
            # An FMS-style bandwidth probe is answered with _result.
            t.write_message(commands.encode_command("onBWCheck", 9, None))
            seen["bwcheck"] = server.expect(t, "_result")
            server.drain(t)

        seen: Dict[str, Command] = {}
        with ScriptedServer(script) as server, Client(config(stream_name=None)) as client:
            client.connect(server.url("live"))
            with pytest.raises(ValueError):
                client.connect(server.url("live"))  # already connected
            with pytest.raises(ValueError):
                client.publish()  # no stream name in the URL or the config
            with pytest.raises(ValueError):
                client.call("")
            with pytest.raises(TypeError):
                client.write_message(b"raw")  # type: ignore[arg-type]
            with pytest.raises(ValueError):
                client.seek(0)  # no stream yet
            with pytest.raises(rtmp.ProtocolError):
                client.create_stream()
            with pytest.raises(rtmp.TimeoutError):
                client.read_message(timeout=0.5)  # meanwhile the probe is answered
        assert seen["bwcheck"].transaction_id == 9
